//! acpi-state-daemon: the host's ACPI power state for OpenBMC.
//!
//! * [`core`] — every decision (pure, synchronous, tested with virtual time);
//! * [`config`] — the configuration file and the policy it yields;
//! * [`dbus`] — the objects we serve;
//! * [`inputs`] — following chassis/host/OS/POST-code services;
//! * [`executor`] — carrying out the core's actions (signals, systemd, BootProgress, state file).

pub mod config;
pub mod core;
pub mod dbus;
pub mod executor;
pub mod inputs;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use openbmc_vocab::names::{bus, path};
use tokio::sync::mpsc;

use crate::core::{AcpiCore, Now, Persisted};
use crate::dbus::{AcpiPowerState, HostPhaseIface};

const USAGE: &str = "usage: acpi-state-daemon [--config FILE]\n\
  Serves xyz.openbmc_project.Control.Power.ACPIPowerState on the system bus\n\
  (DBUS_SYSTEM_BUS_ADDRESS is honoured). Default config: /etc/acpigate/acpi-state-daemon.json";

struct Args {
    config: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let mut config = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => {
                config = Some(PathBuf::from(it.next().context("--config needs a file")?));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    Ok(Args { config })
}

/// Monotonic origin for [`now`]; the core only ever sees differences.
static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// The edge's clock, handed to the core with every input.
pub fn now() -> Now {
    let origin = *ORIGIN.get_or_init(Instant::now);
    Now {
        mono_usec: origin.elapsed().as_micros() as u64,
        wall_usec: daemon_kit::time::epoch_usec(),
    }
}

/// Entry point for the multi-call binary.
pub fn main_with_args(args: Vec<String>) -> Result<()> {
    let args = parse_args(&args)?;
    daemon_kit::logging::init("acpi-state-daemon");
    // A bad config stops us here, before we own any name, with file, line and reason.
    let cfg = config::load(args.config.as_deref())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")?;
    rt.block_on(run(cfg))
}

fn load_persisted(file: &std::path::Path) -> Option<Persisted> {
    match daemon_kit::state_file::read(file) {
        Ok(Some(bytes)) => match serde_json::from_slice::<Persisted>(&bytes) {
            Ok(p) => Some(p),
            Err(e) => {
                log::warn!("{}: ignoring unreadable saved state: {e}", file.display());
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            log::warn!("{}: cannot read saved state: {e}", file.display());
            None
        }
    }
}

async fn run(cfg: config::Config) -> Result<()> {
    let persisted = load_persisted(&cfg.state_file);
    let core = Arc::new(Mutex::new(AcpiCore::new(cfg.policy.clone(), persisted)));
    let (tx, rx) = mpsc::unbounded_channel();

    let conn = daemon_kit::bus::build(
        zbus::connection::Builder::system()
            .serve_at(
                path::ACPI_POWER_STATE,
                AcpiPowerState {
                    core: core.clone(),
                    tx: tx.clone(),
                    now,
                },
            )
            .serve_at(
                path::ACPI_POWER_STATE,
                HostPhaseIface { core: core.clone() },
            )
            .serve_at(path::ACPI_POWER_STATE, zbus::fdo::ObjectManager),
    )
    .await
    .context("cannot connect to the system bus")?;

    log::info!(
        "serving {} at {} (saved state: {})",
        bus::ACPI_POWER_STATE,
        path::ACPI_POWER_STATE,
        persisted.map_or("none".to_owned(), |p| p.sys.to_string())
    );

    let exec = executor::Executor::new(conn.clone(), cfg.state_file.clone());
    let executor_task = tokio::spawn(exec.run(rx));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut inputs_task = tokio::spawn(inputs::follow_all(
        conn.clone(),
        core.clone(),
        tx.clone(),
        ready_tx,
    ));

    // Ready (for systemd, and for whoever waits on us) only once every input is followed:
    // a POST code or power change arriving earlier would otherwise be missed.
    tokio::select! {
        _ = ready_rx => {}
        r = &mut inputs_task => {
            return Err(match r {
                Ok(Err(e)) => e.context("following inputs failed"),
                _ => anyhow::anyhow!("input task ended before it was ready"),
            });
        }
    }
    // Take the well-known name only now, with the state derived from the inputs: whoever
    // follows the name (ipmid, ipmi-handlers' SEL, sensor-gate) never sees a start-up Unknown
    // that is not the truth.
    daemon_kit::bus::request_name(&conn, bus::ACPI_POWER_STATE)
        .await
        .with_context(|| format!("cannot own {} on the system bus", bus::ACPI_POWER_STATE))?;
    // Catch SIGTERM before READY: a stop right after READY must still shut down cleanly.
    let mut termination =
        daemon_kit::supervisor::Termination::install().context("cannot install signal handlers")?;
    daemon_kit::supervisor::notify_ready(&termination);
    let reason = tokio::select! {
        r = termination.wait() => r,
        _ = daemon_kit::supervisor::watchdog_task() => "watchdog task ended",
        r = &mut inputs_task => {
            match r {
                Ok(Err(e)) => return Err(e.context("following inputs failed")),
                _ => "input task ended",
            }
        }
    };
    daemon_kit::supervisor::notify_stopping();
    log::info!("stopping ({reason})");
    drop(tx);
    executor_task.abort();
    Ok(())
}
