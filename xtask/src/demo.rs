//! `cargo xtask demo [--keep]`: the README's main job. Installs what it needs, builds the
//! daemons and runs the simulated platform against them on a private bus.

use anyhow::Result;

use crate::{setup, sh};

pub fn run(args: &[String]) -> Result<()> {
    setup::host_packages(setup::BASE_PACKAGES)?;
    sh::run_harness_bin(false, "acpigate-demo", args)
}
