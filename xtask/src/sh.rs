//! Running commands with their command line echoed, failing loudly.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where cargo writes: `$CARGO_TARGET_DIR` (relative to the workspace when relative) or the
/// workspace's `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(d) if d.is_absolute() => d,
        Some(d) => root().join(d),
        None => root().join("target"),
    }
}

/// Run `cmd`, echoing it; error if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {}", display(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {}", display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed: {status}", display(cmd));
    }
    Ok(())
}

/// Run `cmd` and return its stdout.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {}", display(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed: {}\n{}",
            display(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cargo` as invoked by `cargo xtask` (honours `$CARGO`).
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Build the `acpigate` binary, then run `bin` of the test harness (`acpigate-tests`) against
/// it with `args`: release-built where a figure must reflect the shipped build.
pub fn run_harness_bin(release: bool, bin: &str, args: &[String]) -> Result<()> {
    let profile: &[&str] = if release { &["--release"] } else { &[] };
    run(cargo()
        .args(["build", "--locked", "-p", "acpigate"])
        .args(profile))?;
    run(cargo()
        .args([
            "run",
            "--quiet",
            "--locked",
            "-p",
            "acpigate-tests",
            "--bin",
            bin,
        ])
        .args(profile)
        .arg("--")
        .args(args))
}

/// Whether `args` is empty (false) or exactly `flag` (true); anything else is an error that
/// shows `usage` (the `cargo xtask <cmd> [--flag]` commands share this).
pub fn only_flag(args: &[String], flag: &str, usage: &str) -> anyhow::Result<bool> {
    let mut on = false;
    for a in args {
        if a == flag {
            on = true;
        } else {
            anyhow::bail!("usage: {usage} (unknown argument `{a}`)");
        }
    }
    Ok(on)
}
