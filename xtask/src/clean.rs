//! `cargo xtask clean [--all]`, and the `ci-clean` test step that proves a CI run leaves its
//! clone as it found it.
//!
//! A CI builder runs every submission in a new clone and keeps what earlier runs left; a run
//! that leaves gigabytes behind fills it within days. `.ci/run` under `CI=true` calls
//! `cargo xtask clean` when it ends, passed or failed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cache, sh};

/// Every path the project writes inside a clone, relative to the workspace root. The
/// `.gitignore` files list exactly these (a test keeps the two in step), so `git status
/// --ignored` shows any output this list has forgotten.
pub const OUTPUTS: &[&str] = &[
    // cargo: host, cross (target/cross), fuzz (target/fuzz), corpora, bench and demo output
    "target",
    // the VM tier: kernel link, rootfs tree, image, share with the console log
    ".vmtest",
    // cargo fuzz run by hand in the fuzz crate (xtask points it at target/fuzz instead)
    "ipmi-lan/fuzz/target",
    "ipmi-lan/fuzz/corpus",
    "ipmi-lan/fuzz/artifacts",
    "ipmi-lan/fuzz/coverage",
    // ... and its lock (xtask keeps the fuzz lock in the cache: see fuzz.rs for why)
    "ipmi-lan/fuzz/Cargo.lock",
];

/// Prefixes of the scratch directories tests and xtask make under `$TMPDIR`; each is removed
/// by whoever made it, so only a killed run leaves one. `clean --all` removes those.
const TEMP_PREFIXES: &[&str] = &["ag-", "acpigate-", "xtask-"];

pub fn run(args: &[String]) -> Result<()> {
    let all = sh::only_flag(args, "--all", "cargo xtask clean [--all]")?;
    outputs()?;
    if all {
        let d = cache::dir()?;
        remove_reporting(&d)?;
        temp_leftovers()?;
    } else {
        cache::prune_to_cap()?;
    }
    Ok(())
}

/// Remove every output of this clone, saying what each held.
pub fn outputs() -> Result<()> {
    let root = sh::root();
    let mut any = false;
    for rel in OUTPUTS {
        any |= remove_reporting(&root.join(rel))?;
    }
    if !any {
        eprintln!("xtask clean: {} holds no build outputs", root.display());
    }
    Ok(())
}

/// Remove `path` (after unmounting anything mounted below it); true if it existed.
fn remove_reporting(path: &Path) -> Result<bool> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(false);
    }
    unmount_below(path)?;
    let bytes = cache::tree_bytes(path).unwrap_or(0);
    let r = if path.is_dir() && !path.is_symlink() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    r.with_context(|| format!("removing {}", path.display()))?;
    eprintln!(
        "xtask clean: removed {} ({} MiB)",
        path.display(),
        bytes >> 20
    );
    Ok(true)
}

/// A test that died inside the VM tier can leave the image's staging overlay mounted; deleting
/// through a mount would delete what it shows, so unmount first (deepest first) and refuse to
/// go on if something stays mounted.
fn unmount_below(path: &Path) -> Result<()> {
    let Ok(canon) = path.canonicalize() else {
        return Ok(());
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Ok(());
    };
    let mut below: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(unescape_mount_path)
        .filter(|m| m.starts_with(&canon))
        .collect();
    below.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for m in below {
        sh::run(Command::new("umount").arg(&m)).with_context(|| {
            format!(
                "{} is mounted; not removing {}",
                m.display(),
                path.display()
            )
        })?;
    }
    Ok(())
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(s: &str) -> PathBuf {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4);
        if b[i] == b'\\' && octal.is_some_and(|o| o.iter().all(|c| (b'0'..=b'7').contains(c))) {
            let v = octal.map_or(0, |o| {
                o.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0'))
            });
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    PathBuf::from(String::from_utf8_lossy(&out).into_owned())
}

fn temp_leftovers() -> Result<()> {
    let tmp = std::env::temp_dir();
    let Ok(rd) = std::fs::read_dir(&tmp) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if TEMP_PREFIXES.iter().any(|p| name.starts_with(p)) && e.path().is_dir() {
            remove_reporting(&e.path())?;
        }
    }
    Ok(())
}

/// The `ci-clean` step: `CI=true .ci/run fmt` in a fresh clone leaves nothing git ignores,
/// when the step passes and when it fails.
pub fn ci_leaves_nothing() -> Result<()> {
    let base = std::env::temp_dir().join(format!("acpigate-ci-clean-{}", std::process::id()));
    let result = ci_runs_in(&base);
    let _ = std::fs::remove_dir_all(&base);
    result
}

fn ci_runs_in(base: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(base);
    let clone = base.join("clone");
    let cache_dir = base.join("cache");
    fresh_clone(&clone)?;

    let out = ci_run(&clone, &cache_dir, "fmt")?;
    if !out.0 {
        bail!("CI=true .ci/run fmt failed in a clean clone:\n{}", out.1);
    }
    expect_nothing_left(&clone, &out.1, "after a passing step")?;

    // The same step made to fail: a badly formatted line in a crate fmt checks.
    let victim = clone.join("openbmc-vocab/src/lib.rs");
    let mut text = std::fs::read_to_string(&victim)?;
    text.push_str("\npub fn   badly_formatted( )  {}\n");
    std::fs::write(&victim, text)?;
    let out = ci_run(&clone, &cache_dir, "fmt")?;
    if out.0 {
        bail!(
            "CI=true .ci/run fmt passed with a badly formatted file:\n{}",
            out.1
        );
    }
    if !out.1.contains("test step `fmt` failed") {
        bail!("the failing run did not name its step:\n{}", out.1);
    }
    expect_nothing_left(&clone, &out.1, "after a failing step")?;
    eprintln!("xtask ci-clean: CI=true .ci/run left no build output, passing or failing");
    Ok(())
}

/// A clone of this repository holding the working tree as it is (tracked files as edited and
/// files not yet committed), so the step tests what is on disk, not only the last commit.
fn fresh_clone(dest: &Path) -> Result<()> {
    let root = sh::root();
    sh::run(
        Command::new("git")
            .args(["clone", "--quiet", "--no-checkout"])
            .arg(&root)
            .arg(dest),
    )?;
    sh::run(
        Command::new("git")
            .arg("-C")
            .arg(dest)
            .args(["checkout", "--quiet", "HEAD"]),
    )?;
    let files = sh::output(Command::new("git").arg("-C").arg(&root).args([
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ]))?;
    for rel in files.split('\0').filter(|f| !f.is_empty()) {
        let src = root.join(rel);
        let dst = dest.join(rel);
        if !src.is_file() {
            // deleted in the working tree
            let _ = std::fs::remove_file(&dst);
            continue;
        }
        if let Some(p) = dst.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::copy(&src, &dst)
            .with_context(|| format!("copying {} into the clone", src.display()))?;
    }
    Ok(())
}

/// `CI=true bash .ci/run STEP` in `clone`, with a cargo environment of its own (no target
/// directory or toolchain settings inherited from the outer run). Returns (passed, output).
fn ci_run(clone: &Path, cache_dir: &Path, step: &str) -> Result<(bool, String)> {
    let mut cmd = Command::new("bash");
    cmd.arg(clone.join(".ci/run")).arg(step).current_dir(clone);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO") || k.starts_with("RUSTUP_TOOLCHAIN") || k == "RUSTC" {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd.env("CI", "true").env("ACPIGATE_CACHE", cache_dir);
    eprintln!("+ CI=true bash {}/.ci/run {step}", clone.display());
    let out = cmd.output().context("cannot start bash .ci/run")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

fn expect_nothing_left(clone: &Path, log: &str, when: &str) -> Result<()> {
    if !log.contains("xtask clean: removed") || !log.contains("/target (") {
        bail!("{when}: the run's log does not show target/ being removed:\n{log}");
    }
    let status = sh::output(Command::new("git").arg("-C").arg(clone).args([
        "status",
        "--porcelain",
        "--ignored",
    ]))?;
    let left: Vec<&str> = status.lines().filter(|l| l.starts_with("!!")).collect();
    let target_left = clone.join("target").exists() || clone.join(".vmtest").exists();
    if !left.is_empty() || target_left {
        bail!("{when}: the clone still holds build outputs: {left:?}\nlog:\n{log}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.gitignore` entry of the project is an output `clean` removes, and the other way
    /// round: a new output cannot be ignored by git and forgotten by `clean`.
    #[test]
    fn gitignores_list_exactly_the_outputs() -> Result<()> {
        let root = sh::root();
        let mut ignored = Vec::new();
        for dir in ["", "ipmi-lan/fuzz"] {
            let file = root.join(dir).join(".gitignore");
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let Some(anchored) = line.strip_prefix('/') else {
                    bail!("{}: `{line}` is not anchored at the root", file.display());
                };
                let rel = Path::new(dir).join(anchored);
                ignored.push(rel.to_string_lossy().into_owned());
            }
        }
        ignored.sort();
        let mut outputs: Vec<String> = OUTPUTS.iter().map(|s| s.to_string()).collect();
        outputs.sort();
        assert_eq!(ignored, outputs);
        Ok(())
    }

    #[test]
    fn mountinfo_paths_unescape() {
        assert_eq!(
            unescape_mount_path(r"/a\040b/c\011d"),
            PathBuf::from("/a b/c\td")
        );
        assert_eq!(unescape_mount_path("/plain"), PathBuf::from("/plain"));
        assert_eq!(unescape_mount_path(r"/end\04"), PathBuf::from(r"/end\04"));
    }
}
