//! `cargo xtask demo [--keep]`: the README's main job. Installs what it needs, builds the
//! daemons and runs the simulated platform against them on a private bus.

use anyhow::Result;

use crate::{setup, sh};

pub fn run(args: &[String]) -> Result<()> {
    setup::host_packages(setup::BASE_PACKAGES)?;
    sh::run(sh::cargo().args(["build", "--locked", "-p", "acpigate"]))?;
    sh::run(
        sh::cargo()
            .args([
                "run",
                "--quiet",
                "--locked",
                "-p",
                "acpigate-tests",
                "--bin",
                "acpigate-demo",
                "--",
            ])
            .args(args),
    )
}
