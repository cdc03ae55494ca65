//! sensor-gate: DIMM temperature sensors over SMBus, gated by the host phase (issue 3).
//!
//! * [`core`] — every decision: the gate, sensor states, thresholds, fan hold (pure);
//! * [`decode`] — JC-42.4 (DDR4) and SPD5118 (DDR5) register facts (pure);
//! * [`config`] — the configuration file, validated at start;
//! * [`smbus`] — the narrow SMBus trait, the bus threads, the i2c-dev and simulator backends;
//! * [`dbus`] — the sensor and gate objects;
//! * [`daemon`] — the async edge that connects them.
//!
//! See `sensor-gate/README.md` for the D-Bus contract and the fan-controller trade-offs.

pub mod config;
pub mod core;
pub mod daemon;
pub mod dbus;
pub mod decode;
pub mod smbus;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: sensor-gate [--config FILE] [--check]\n\
  DIMM temperature sensors over SMBus, read only while the host is settled in S0.\n\
  Default config: /etc/acpigate/sensor-gate.json. --check validates the file and exits.";

/// Entry point for the multi-call binary.
pub fn main_with_args(args: Vec<String>) -> Result<()> {
    let mut config = PathBuf::from(config::DEFAULT_CONFIG);
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
    let cfg = config::load(&config).map_err(|e| {
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
    rt.block_on(daemon::run(cfg))
}
