//! `acpigate-soak [--boots N] [--seed S] [--gate-off] [--ipmi] [--verbose]`: many boots of the simulated
//! server around the real daemons; prints one summary line and fails if any counter that
//! must be zero is not (with `--gate-off`, the control run, it fails if nothing was lost).
//! `--ipmi` also runs the real ipmi-handlers and has the firmware report half of its boots with
//! IPMI Set ACPI Power State over the KCS channel.

use acpigate_tests::soak::{self, SoakOptions};
use acpigate_tests::world::WorldOptions;
use anyhow::{Context, Result, bail};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut opts = SoakOptions {
        boots: 50,
        seed: 1,
        world: WorldOptions::default(),
        verbose: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--boots" => opts.boots = args.next().context("--boots N")?.parse()?,
            "--seed" => opts.seed = args.next().context("--seed S")?.parse()?,
            "--gate-off" => opts.world.gate = false,
            "--ipmi" => opts.world.ipmi = true,
            "--verbose" => opts.verbose = true,
            other => bail!("unknown argument `{other}`"),
        }
    }
    let s = soak::run(&opts).await?;
    println!(
        "{s} | seed={} gate={}",
        opts.seed,
        if opts.world.gate { "on" } else { "off" }
    );
    match (opts.world.gate, s.clean()) {
        (true, true) => Ok(()),
        (true, false) => bail!("soak failed: a counter that must be zero is not"),
        (false, _) if s.dimms_lost > 0 => Ok(()),
        (false, _) => bail!("control run without the gate lost no DIMM: the model shows no bug"),
    }
}
