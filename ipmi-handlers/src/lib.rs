//! ipmi-handlers: the IPMI command server behind `xyz.openbmc_project.Ipmi.Server`.
//!
//! [`core`] decides every command without I/O; [`edge`] serves `execute` on D-Bus, keeps the
//! platform view fresh, carries out effects and persists the SEL, the sensor number map and
//! the GUIDs.

pub mod core;
pub mod edge;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: ipmi-handlers [--config FILE]\n\
  Serves xyz.openbmc_project.Ipmi.Server (execute) as xyz.openbmc_project.Ipmi.Host on the\n\
  system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured). Default config:\n\
  /etc/acpigate/ipmi-handlers.json (built-in defaults if absent).";

/// Entry point for the multi-call binary.
pub fn main_with_args(args: Vec<String>) -> Result<()> {
    let mut config: Option<PathBuf> = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => {
                config = Some(PathBuf::from(it.next().context("--config needs a file")?));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    daemon_kit::logging::init("ipmi-handlers");
    let cfg = edge::config::load(config.as_deref())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")?;
    rt.block_on(edge::run(cfg))
}
