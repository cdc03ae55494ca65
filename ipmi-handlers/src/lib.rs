//! ipmi-handlers: the IPMI command server behind `xyz.openbmc_project.Ipmi.Server`.
//!
//! [`core`] decides every command without I/O; [`edge`] serves `execute` on D-Bus, keeps the
//! platform view fresh, carries out effects and persists the SEL, the sensor number map and
//! the GUIDs.

pub mod core;
pub mod edge;

use anyhow::Result;
use daemon_kit::startup::Applet;

/// What the shared start-up needs to know about this daemon.
pub const APPLET: Applet = Applet {
    name: "ipmi-handlers",
    about: "  Serves xyz.openbmc_project.Ipmi.Server (execute) as xyz.openbmc_project.Ipmi.Host on\n  \
            the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured); built-in defaults if the\n  \
            default file is absent.",
    default_config: edge::config::DEFAULT_CONFIG,
    options: &[],
};

/// Entry point for the multi-call binary.
pub fn main_with_args(args: Vec<String>) -> Result<()> {
    APPLET.main(
        &args,
        |inv| Ok(edge::config::load(inv.config.as_deref())?),
        |cfg| format!("SEL capacity {}", cfg.sel_capacity),
        |cfg, _| edge::run(cfg),
    )
}
