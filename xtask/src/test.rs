//! `cargo xtask test`: every tier, in order, each step owned by its tier's module.

use std::time::Instant;

use anyhow::{Result, bail};

use crate::{setup, sh};

/// One step of the test run.
pub struct Step {
    pub name: &'static str,
    pub what: &'static str,
    pub run: fn() -> Result<()>,
}

/// The steps, in the order CI runs them (cheap and most telling first).
pub fn steps() -> Vec<Step> {
    vec![
        Step {
            name: "fmt",
            what: "cargo fmt --check",
            run: fmt,
        },
        Step {
            name: "clippy",
            what: "cargo clippy -D warnings",
            run: clippy,
        },
        Step {
            name: "units",
            what: "systemd-analyze verify on units/",
            run: crate::units::verify,
        },
        Step {
            name: "unit",
            what: "core, unit and bus-tier tests (real dbus-daemon)",
            run: unit_and_bus,
        },
        Step {
            name: "fuzz",
            what: "ipmi-lan fuzz targets, ACPIGATE_FUZZ_SECS (60) s each (nightly, cargo-fuzz)",
            run: crate::fuzz::step,
        },
        Step {
            name: "oelint",
            what: "Yocto layer: crates file current, applets = features and build alone, oelint-adv",
            run: crate::cross::oelint,
        },
        Step {
            name: "cross",
            what: "AST2500/AST2600 cross builds, tests + one daemon under qemu-arm, sizes",
            run: crate::cross::ci,
        },
        Step {
            name: "vm",
            what: "machine tier: installed suite, systemd PID 1, i2c-stub + tracepoints (qemu)",
            run: crate::vm::step,
        },
    ]
}

pub fn run(args: &[String]) -> Result<()> {
    let all = steps();
    if args.iter().any(|a| a == "--list") {
        for s in &all {
            println!("{:<12} {}", s.name, s.what);
        }
        return Ok(());
    }
    for a in args {
        if !all.iter().any(|s| s.name == a) {
            bail!("no test step `{a}` (see `cargo xtask test --list`)");
        }
    }
    let selected: Vec<&Step> = all
        .iter()
        .filter(|s| args.is_empty() || args.iter().any(|a| a == s.name))
        .collect();
    disk_note();
    let mut timings = Vec::new();
    for s in selected {
        eprintln!("\n=== xtask test: {} — {}", s.name, s.what);
        let t = Instant::now();
        (s.run)().map_err(|e| e.context(format!("test step `{}` failed", s.name)))?;
        timings.push((s.name, t.elapsed()));
    }
    eprintln!("\n=== xtask test: all passed");
    for (n, d) in timings {
        eprintln!("  {n:<12} {:>7.1} s", d.as_secs_f64());
    }
    Ok(())
}

/// What a full run from a fresh clone writes under the workspace (target dirs for the host,
/// both ARM targets, fuzzing and the VM's rootfs and image), measured on a fresh clone.
const FULL_RUN_GIB: u64 = 10;

/// Say up front when the disk is too full for a whole run: a full disk otherwise shows up
/// twenty minutes in as a linker or mkfs error that does not say "disk". A note, not a
/// failure: a partial run or a warm target dir needs far less.
fn disk_note() {
    let root = sh::root();
    let Ok(df) = sh::output(std::process::Command::new("df").arg("-Pk").arg(&root)) else {
        return;
    };
    let Some(free_kib) = df
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    let free_gib = free_kib / (1024 * 1024);
    eprintln!(
        "xtask test: {free_gib} GiB free on the disk holding {}",
        root.display()
    );
    if free_gib < FULL_RUN_GIB {
        eprintln!(
            "xtask test: WARNING: a full run from a fresh clone writes about {FULL_RUN_GIB} GiB; \
             steps may fail with \"No space left on device\""
        );
    }
}

fn fmt() -> Result<()> {
    sh::run(sh::cargo().args(["fmt", "--all", "--check"]))
}

fn clippy() -> Result<()> {
    sh::run(sh::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))
}

fn unit_and_bus() -> Result<()> {
    setup::host_packages(setup::BASE_PACKAGES)?;
    // The bus tier runs the real multi-call binary: build it first.
    sh::run(sh::cargo().args(["build", "--locked", "-p", "acpigate"]))?;
    sh::run(sh::cargo().args(["test", "--workspace", "--locked"]))
}
