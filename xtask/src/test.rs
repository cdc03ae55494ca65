//! `cargo xtask test`: every tier, in order, each step owned by its tier's module.

use std::time::Instant;

use anyhow::{Result, bail};

use crate::resources::{self, Needs};
use crate::{cache, setup, sh};

/// One step of the test run.
pub struct Step {
    pub name: &'static str,
    pub what: &'static str,
    /// Checked before the step starts: disk and memory in MiB, about 1.5 times what the step
    /// was measured to leave on disk in a fresh clone (BENCHMARKS.md, "CI on a shared
    /// builder"), and memory for its largest process (a fat-LTO link, qemu with 1 GiB).
    pub needs: Needs,
    pub run: fn() -> Result<()>,
}

/// The steps, in the order CI runs them (cheap and most telling first).
pub fn steps() -> Vec<Step> {
    vec![
        Step {
            name: "fmt",
            what: "cargo fmt --check",
            needs: Needs::new(256, 256),
            run: fmt,
        },
        Step {
            name: "clippy",
            what: "cargo clippy -D warnings",
            needs: Needs::new(1024, 2048),
            run: clippy,
        },
        Step {
            name: "units",
            what: "systemd-analyze verify on units/",
            needs: Needs::new(2048, 2048),
            run: crate::units::verify,
        },
        Step {
            name: "ci-clean",
            what: "CI=true .ci/run in a fresh clone leaves no build output, passing or failing",
            needs: Needs::new(512, 1024),
            run: crate::clean::ci_leaves_nothing,
        },
        Step {
            name: "unit",
            what: "core, unit and bus-tier tests (real dbus-daemon)",
            needs: Needs::new(4096, 2048),
            run: unit_and_bus,
        },
        Step {
            name: "fuzz",
            what: "ipmi-lan fuzz targets, ACPIGATE_FUZZ_SECS (60) s each (nightly, cargo-fuzz)",
            needs: Needs::new(1024, 2048),
            run: crate::fuzz::step,
        },
        Step {
            name: "oelint",
            what: "Yocto layer: crates file and licences current, applets = features and build alone, oelint-adv",
            needs: Needs::new(512, 1024),
            run: crate::cross::oelint,
        },
        Step {
            name: "cross",
            what: "AST2500/AST2600 cross builds, tests + one daemon under qemu-arm, sizes",
            needs: Needs::new(4608, 2048),
            run: crate::cross::ci,
        },
        Step {
            name: "vm",
            what: "machine tier: installed suite, systemd PID 1, i2c-stub + tracepoints (qemu)",
            needs: Needs::new(2560, 2048),
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
    eprintln!("xtask test: {}", resources::summary());
    cache::prune_to_cap()?;
    let mut timings = Vec::new();
    for s in selected {
        eprintln!("\n=== xtask test: {} — {}", s.name, s.what);
        let fail = |e: anyhow::Error| e.context(format!("test step `{}` failed", s.name));
        resources::require(s.name, s.needs).map_err(fail)?;
        let free_before = resources::outputs_free_mib();
        let t = Instant::now();
        (s.run)().map_err(fail)?;
        timings.push((s.name, t.elapsed()));
        // What the step left on disk (other writers on a shared disk blur this a little).
        let used = free_before
            .zip(resources::outputs_free_mib())
            .map_or(0, |(b, a)| b.saturating_sub(a));
        eprintln!(
            "xtask test: `{}` left {used} MiB on disk; now {}",
            s.name,
            resources::summary()
        );
    }
    eprintln!("\n=== xtask test: all passed");
    for (n, d) in timings {
        eprintln!("  {n:<12} {:>7.1} s", d.as_secs_f64());
    }
    Ok(())
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
