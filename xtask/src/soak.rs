//! `cargo xtask soak [--boots N] [--seed S] [--gate-off] [--ipmi] [--verbose]`: the many-boot
//! soak of the simulated server around the release-built daemons (`--boots 10000 --ipmi` is
//! the figure in BENCHMARKS.md; `--ipmi` adds ipmi-handlers and has the firmware report half of
//! the boots' states over KCS). CI runs a short soak as a bus-tier test (`tests/tests/soak.rs`).

use anyhow::Result;

use crate::{setup, sh};

pub fn run(args: &[String]) -> Result<()> {
    setup::host_packages(setup::BASE_PACKAGES)?;
    sh::run_harness_bin(true, "acpigate-soak", args)
}
