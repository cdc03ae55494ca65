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
//!   [`edge::side_effects`] — systemd, BootProgress, the state file — in tasks of their own
//!   with deadlines; how a BootProgress write ended goes back to the core as an input).

pub mod core;
pub mod edge;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use daemon_kit::supervisor::StallSwitch;

const USAGE: &str = "usage: acpi-state-daemon [--config FILE] [--test-stall-signal]\n\
  Serves xyz.openbmc_project.Control.Power.ACPIPowerState on the system bus\n\
  (DBUS_SYSTEM_BUS_ADDRESS is honoured). Default config: /etc/acpigate/acpi-state-daemon.json\n\
  --test-stall-signal  for tests only: SIGUSR2 stalls the event loop (the watchdog must act)";

struct Args {
    config: Option<PathBuf>,
    test_stall: bool,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let mut config = None;
    let mut test_stall = false;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => {
                config = Some(PathBuf::from(it.next().context("--config needs a file")?));
            }
            StallSwitch::OPTION => test_stall = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    Ok(Args { config, test_stall })
}

/// Entry point for the multi-call binary.
pub fn main_with_args(args: Vec<String>) -> Result<()> {
    let args = parse_args(&args)?;
    daemon_kit::logging::init("acpi-state-daemon");
    // A bad config stops us here, before we own any name, with file, line and reason.
    let cfg = edge::config::load(args.config.as_deref())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")?;
    let result = rt.block_on(edge::run(cfg, args.test_stall));
    // A state save stuck on a hung flash must not keep the process from exiting: give
    // blocking work a moment to finish, then leave it.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
