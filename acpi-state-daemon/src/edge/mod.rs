//! The edge: everything that touches the world around the core.
//!
//! * [`config`] — reading and checking the configuration file;
//! * [`dbus`] — the objects we serve (a property write is fed to the core right there, so a
//!   refusal is the D-Bus reply);
//! * [`inputs`] — following the chassis, host, POST_COMPLETE and POST-code services;
//! * [`executor`] — carrying out the core's actions in order: the announcements at once;
//! * [`side_effects`] — the slow actions (target starts, BootProgress, OperatingSystemState,
//!   SEL records, the state file) in tasks of their own, with deadlines.

pub mod config;
pub mod dbus;
pub mod executor;
pub mod inputs;
pub mod side_effects;

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use daemon_kit::supervisor::{Lifecycle, StallSwitch, loop_and_bus_probe};
use openbmc_vocab::names::{bus, path};
use tokio::sync::mpsc;

use crate::core::{AcpiCore, Input, Persisted, Refusal};
use dbus::{AcpiPowerState, Batch, HostPhaseIface, SharedCore, lock};

/// Feeds inputs to the core and queues their actions for the executor, from wherever they
/// arise: the services we follow, and the outcomes of our own side effects.
#[derive(Clone)]
pub struct Feeder {
    core: SharedCore,
    tx: mpsc::UnboundedSender<Batch>,
}

impl Feeder {
    pub fn new(core: SharedCore, tx: mpsc::UnboundedSender<Batch>) -> Self {
        Self { core, tx }
    }

    /// The core, for reading.
    pub fn core(&self) -> &SharedCore {
        &self.core
    }

    /// Feed one input to the core and queue its actions. Only ACPI writes can be refused, and
    /// those come through [`Feeder::try_feed`], where the refusal is the caller's reply.
    pub fn feed(&self, input: Input) {
        if let Err(r) = self.try_feed(input) {
            log::warn!("input refused: {r}");
        }
    }

    /// Feed one input; a refused one changes nothing and comes back.
    pub fn try_feed(&self, input: Input) -> Result<(), Refusal> {
        // Described now, logged after the actions: at debug level a journal write ahead of them
        // would delay a closing announcement.
        let shown = log::log_enabled!(log::Level::Debug).then(|| format!("input: {input:?}"));
        let actions = lock(&self.core).handle(daemon_kit::time::now(), input)?;
        if actions.is_empty() {
            if let Some(line) = shown {
                log::debug!("{line}");
            }
        } else {
            // The executor outlives every feeder; a send error means we are stopping.
            let _ = self.tx.send(Batch {
                actions,
                cause: shown,
            });
        }
        Ok(())
    }
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

/// Serve, follow and carry out until SIGTERM or a fatal error.
pub async fn run(cfg: config::Config, test_stall: bool) -> Result<()> {
    let persisted = load_persisted(&cfg.state_file);
    let core = Arc::new(Mutex::new(AcpiCore::new(cfg.policy.clone(), persisted)));
    let (tx, rx) = mpsc::unbounded_channel();
    let feeder = Feeder::new(core.clone(), tx.clone());

    let conn = daemon_kit::bus::build(
        zbus::connection::Builder::system()
            .serve_at(
                path::ACPI_POWER_STATE,
                AcpiPowerState {
                    feeder: feeder.clone(),
                },
            )
            .serve_at(
                path::ACPI_POWER_STATE,
                HostPhaseIface { core: core.clone() },
            )
            // At the parent: GetManagedObjects lists the objects below the manager's path,
            // so this is where it lists the ACPI object with its interfaces.
            .serve_at(path::CONTROL_HOST0, zbus::fdo::ObjectManager),
    )
    .await
    .context("cannot connect to the system bus")?;

    log::info!(
        "serving {} at {} (saved state: {})",
        bus::ACPI_POWER_STATE,
        path::ACPI_POWER_STATE,
        persisted.map_or("none".to_owned(), |p| p.sys.to_string())
    );

    let effects = side_effects::SideEffects::spawn(
        conn.clone(),
        feeder.clone(),
        cfg.state_file.clone(),
        cfg.call_timeout,
    );
    let exec = executor::Executor::new(conn.clone(), effects);
    // Before each watchdog pet: a probe through the executor's queue (answered between
    // batches, so a loop stuck on anything fails it) and a round trip through the bus.
    let (probe, probes) = loop_and_bus_probe(conn.clone());
    let stall = StallSwitch::new(test_stall).context("cannot arm the test stall switch")?;
    let executor_task = tokio::spawn(exec.run(rx, probes, stall));
    // Signals caught from here on, before the slow start (the watchdog is supervised from
    // READY on, when systemd arms it).
    let mut life = Lifecycle::start(probe).context("cannot install signal handlers")?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut inputs_task = tokio::spawn(inputs::follow_all(conn.clone(), feeder, ready_tx));

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
        sig = life.stop_requested() => {
            life.stopping(&format!("{sig} before ready"));
            return Ok(());
        }
    }
    // Take the well-known name only now, with the state derived from the inputs: whoever
    // follows the name (ipmid, ipmi-handlers' SEL, sensor-gate) never sees a start-up Unknown
    // that is not the truth.
    daemon_kit::bus::request_name(&conn, bus::ACPI_POWER_STATE)
        .await
        .with_context(|| format!("cannot own {} on the system bus", bus::ACPI_POWER_STATE))?;
    life.ready();
    let reason = tokio::select! {
        r = life.stop_requested() => r,
        r = &mut inputs_task => {
            match r {
                Ok(Err(e)) => return Err(e.context("following inputs failed")),
                _ => "input task ended",
            }
        }
    };
    life.stopping(reason);
    drop(tx);
    executor_task.abort();
    Ok(())
}
