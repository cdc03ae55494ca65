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

use anyhow::Result;
use daemon_kit::startup::Applet;

/// What the shared start-up needs to know about this daemon.
pub const APPLET: Applet = Applet {
    name: "sensor-gate",
    about: "  DIMM temperature sensors over SMBus, read only while the host is settled in S0.\n  \
            The configuration file is required (there is no default sensor).",
    default_config: edge::config::DEFAULT_CONFIG,
    options: &[],
};

/// Entry point for the multi-call binary.
pub fn main_with_args(args: Vec<String>) -> Result<()> {
    // A bad file is fatal at start: better no daemon than one that guesses.
    APPLET.main(
        &args,
        |inv| Ok(edge::config::load(APPLET.config_path(inv))?),
        |cfg| match cfg.sensors_from {
            edge::config::SensorsFrom::File => format!("{} sensors", cfg.sensors.len()),
            edge::config::SensorsFrom::EntityManager => {
                "sensors from entity-manager's AcpigateDimmTemp records".to_owned()
            }
        },
        |cfg, _| edge::run(cfg),
    )
}
