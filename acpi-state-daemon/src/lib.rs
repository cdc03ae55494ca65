//! acpi-state-daemon: the host's ACPI power state for OpenBMC.
//!
//! Split like every acpigate daemon:
//! * [`core`] — every decision: a synchronous state machine fed inputs with the time they were
//!   seen, returning actions (no I/O, no clock), tested with virtual time; its [`core::Policy`]
//!   is what the configuration says about the rules;
//! * [`edge`] — everything that touches the world: the configuration file
//!   ([`edge::config`]), the objects we serve ([`edge::dbus`]), following the chassis, host,
//!   POST_COMPLETE and POST-code services ([`edge::inputs`]), and carrying out the core's
//!   actions ([`edge::executor`]: the announcements at once, the slow rest handed to
//!   [`edge::side_effects`] — systemd, BootProgress, OperatingSystemState, the SEL through
//!   sel-logger, the state file — in tasks of their own with deadlines; how a BootProgress or
//!   OperatingSystemState write ended goes back to the core as an input).

pub mod core;
pub mod edge;

use anyhow::Result;
use daemon_kit::startup::{Applet, Opt};
use daemon_kit::supervisor::StallSwitch;

/// What the shared start-up needs to know about this daemon.
pub const APPLET: Applet = Applet {
    name: "acpi-state-daemon",
    about: "  Serves xyz.openbmc_project.Control.Power.ACPIPowerState on the system bus\n  \
            (DBUS_SYSTEM_BUS_ADDRESS is honoured); built-in defaults if the default file is absent.",
    default_config: edge::config::DEFAULT_CONFIG,
    options: &[Opt {
        name: StallSwitch::OPTION,
        value: None,
        help: "for tests only: SIGUSR2 stalls the event loop (the watchdog must act)",
    }],
};

/// Entry point for the multi-call binary.
pub fn main_with_args(args: Vec<String>) -> Result<()> {
    APPLET.main(
        &args,
        |inv| Ok(edge::config::load(inv.config.as_deref())?),
        |cfg| format!("state file {}", cfg.state_file.display()),
        |cfg, inv| edge::run(cfg, inv.flag(StallSwitch::OPTION)),
    )
}
