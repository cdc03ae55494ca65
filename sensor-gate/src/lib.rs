//! sensor-gate: DIMM temperature sensors over SMBus, gated by the host phase (issue 3).
//!
//! Split as every acpigate daemon is:
//!
//! * [`core`] — every decision, pure and synchronous (events in, actions out, time passed
//!   in): the gate, sensor states and thresholds, the fan hold, and the register facts of the
//!   DDR4/DDR5 parts ([`core::decode`]), with the tests that pin them down;
//! * [`edge`] — the I/O that carries the decisions out: the configuration file, following
//!   the host phase, the D-Bus objects, the SMBus threads and backends, fan writes.
//!
//! See `sensor-gate/README.md` for the D-Bus contract and the fan-controller trade-offs.

pub mod core;
pub mod edge;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: sensor-gate [--config FILE] [--check]\n\
  DIMM temperature sensors over SMBus, read only while the host is settled in S0.\n\
  Default config: /etc/acpigate/sensor-gate.json. --check validates the file and exits.";

/// Entry point for the multi-call binary.
pub fn main_with_args(args: Vec<String>) -> Result<()> {
    let mut config = PathBuf::from(edge::config::DEFAULT_CONFIG);
    let mut check = false;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => {
                config = PathBuf::from(it.next().context("--config needs a file")?);
            }
            "--check" => check = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    daemon_kit::logging::init("sensor-gate");
    // A bad file is fatal at start: better no daemon than one that guesses.
    let cfg = edge::config::load(&config).map_err(|e| {
        log::error!("{e}");
        anyhow::anyhow!("{e}")
    })?;
    if check {
        println!("{}: ok ({} sensors)", config.display(), cfg.sensors.len());
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(edge::run(cfg))
}
