//! `cargo xtask vm` and the `vm` test step: the machine tier (tests/machine/README.md).
//!
//! Builds the release multi-call binary with every applet and the simulated chassis power
//! service, then runs `tests/machine/run.sh`: a Debian kernel and a debootstrap systemd image
//! (cached in `.vmtest/`), the suite installed as the Yocto recipe installs it, one qemu TCG
//! boot running every scenario. Cost: ~2 min on a fresh machine (packages ~15 s, debootstrap
//! 35–110 s, kernel download ~10 s), then ~1 min per run (boot + scenarios), plus the release
//! build of `acpigate` if no earlier step built it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};

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
];

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(d) if d.is_absolute() => d,
        Some(d) => sh::root().join(d),
        None => sh::root().join("target"),
    }
}

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
    // The suite as shipped: release profile, every applet.
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
        "acpigate-tests",
        "--bin",
        "machine-platform",
    ]))?;
    let target = target_dir();
    let script = sh::root().join("tests/machine/run.sh");
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

/// The `vm` step of `cargo xtask test`.
pub fn step() -> Result<()> {
    run(&[])
}
