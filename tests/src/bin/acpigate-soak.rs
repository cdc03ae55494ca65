//! `acpigate-soak [--boots N] [--seed S] [--gate-off] [--ipmi] [--frudevice blocked|unblocked]
//! [--verbose]`: many boots of the simulated server around the real daemons; prints one summary
//! line and fails if any counter that must be zero is not. The control runs, `--gate-off` and
//! `--frudevice unblocked` (entity-manager's FruDevice probing the DIMM bus at power-on, its
//! blocklist not holding the bus), fail instead if nothing was lost. `--frudevice blocked` has
//! FruDevice installed with the bus blocked: it must lose nothing. `--ipmi` also runs the real
//! ipmi-handlers and has the firmware report half of its boots with IPMI Set ACPI Power State
//! over the KCS channel.

use acpigate_sim::smbus::frudevice::FruDeviceProbe;
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
            "--frudevice" => {
                let blocked = match args.next().as_deref() {
                    Some("blocked") => true,
                    Some("unblocked") => false,
                    other => bail!("--frudevice blocked|unblocked, not {other:?}"),
                };
                opts.world.frudevice = Some(FruDeviceProbe { blocked });
            }
            "--verbose" => opts.verbose = true,
            other => bail!("unknown argument `{other}`"),
        }
    }
    let s = soak::run(&opts).await?;
    println!(
        "{s} | seed={} gate={} frudevice={}",
        opts.seed,
        if opts.world.gate { "on" } else { "off" },
        match opts.world.frudevice {
            None => "none",
            Some(p) if p.blocked => "blocked",
            Some(_) => "unblocked",
        }
    );
    let control = !opts.world.gate || opts.world.frudevice.is_some_and(|p| !p.blocked);
    match (control, s.clean()) {
        (false, true) => Ok(()),
        (false, false) => bail!("soak failed: a counter that must be zero is not"),
        (true, _) if s.dimms_lost > 0 => Ok(()),
        (true, _) => bail!("control run lost no DIMM: the model shows no bug"),
    }
}
