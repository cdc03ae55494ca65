//! `cargo xtask vm` and the `vm` test step: the machine tier (tests/machine/README.md).
//!
//! Builds the release multi-call binary with every applet and the simulated chassis power
//! service while `tests/machine/run.sh -P` prepares the VM pieces in `.vmtest/` (the Debian
//! kernel extract and the debootstrap rootfs come from the shared cache, `scripts/cache-dir.sh`,
//! and are made there the first time; the busybox initramfs), then runs
//! `tests/machine/run.sh`: the suite installed as the Yocto recipe installs it, one qemu TCG
//! boot running every scenario. Cost on 2 cores: packages ~15 s; kernel + debootstrap
//! 45-200 s with an empty cache (in parallel with the release build of `acpigate`, ~1-3 min),
//! ~5 s from the cache; image ~3 s; boot + scenarios 1.5-3 min under TCG.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{setup, sh};

/// Host packages for the VM: qemu, the initramfs tools, debootstrap and image tools.
pub const VM_PACKAGES: &[&str] = &[
    "qemu-system-x86",
    "busybox-static",
    "i2c-tools",
    "debootstrap",
    "e2fsprogs",
    "python3",
    "bc",
    "kmod",
    "file",
    "binutils",
    "systemd",
    "zstd",
];

fn is_root() -> bool {
    sh::output(Command::new("id").arg("-u")).is_ok_and(|o| o.trim() == "0")
}

/// Run the machine tier. `args`: `-v` shows the VM console as it runs.
pub fn run(args: &[String]) -> Result<()> {
    let mut verbose = false;
    for a in args {
        match a.as_str() {
            "-v" | "--verbose" => verbose = true,
            other => bail!("usage: cargo xtask vm [-v]   (unknown argument `{other}`)"),
        }
    }
    if !is_root() {
        bail!(
            "the machine tier needs root (debootstrap, overlay mount); run it as root, e.g. \
             `sudo -E cargo xtask vm`"
        );
    }
    setup::host_packages(VM_PACKAGES)?;
    let script = sh::root().join("tests/machine/run.sh");
    // Kernel download, initramfs and debootstrap (35-170 s on a fresh machine) need no
    // binaries: run them while cargo builds.
    let work = sh::root().join(".vmtest");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let log_path = work.join("prepare.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    eprintln!(
        "+ {} -P   (in the background while cargo builds; log {})",
        script.display(),
        log_path.display()
    );
    let mut prepare = Command::new(&script)
        .arg("-P")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", script.display()))?;
    let built = build();
    let prepared = prepare.wait().context("waiting for the VM preparation")?;
    eprint!("{}", std::fs::read_to_string(&log_path).unwrap_or_default());
    built?;
    if !prepared.success() {
        bail!("preparing the VM pieces failed ({prepared}); see above");
    }
    let target = sh::target_dir();
    let mut cmd = Command::new(&script);
    cmd.arg("-b")
        .arg(target.join("release/acpigate"))
        .arg("-p")
        .arg(target.join("debug/machine-platform"));
    if verbose {
        cmd.arg("-v");
    }
    sh::run(&mut cmd)
}

/// The suite as shipped (release profile, every applet) and the simulated chassis service.
fn build() -> Result<()> {
    sh::run(sh::cargo().args([
        "build",
        "--release",
        "--locked",
        "-p",
        "acpigate",
        "--all-features",
    ]))?;
    // The simulated platform only needs to work; the dev profile reuses the test build.
    sh::run(sh::cargo().args([
        "build",
        "--locked",
        "-p",
        "acpigate-sim",
        "--bin",
        "machine-platform",
    ]))
}

/// The `vm` step of `cargo xtask test`.
pub fn step() -> Result<()> {
    run(&[])
}
