//! The edge: everything sensor-gate does to the world, and nothing it decides. It turns
//! D-Bus signals, timers and finished transfers into core events and carries out the core's
//! actions in the order the core gives them.
//!
//! * [`config`] — the configuration file, validated at start (`file:line: reason`);
//! * `phase` — following acpi-state-daemon's `org.acpigate.HostPhase` as core events;
//! * `fan_zones` — the fan controller (re)creating its zones, as core events;
//! * [`other_masters`] — the scan for other masters on the real DIMM buses, as core events;
//! * `executor` — carrying out the core's actions: reads, sensor and gate properties, fan
//!   writes, log lines;
//! * [`dbus`] — the sensor and gate objects served;
//! * [`smbus`] — the narrow SMBus trait, the bus threads, the i2c-dev and simulator backends.

pub mod config;
pub mod dbus;
mod executor;
mod fan_zones;
pub mod other_masters;
mod phase;
pub mod smbus;

use std::time::Duration;

use anyhow::{Context, Result};
use daemon_kit::supervisor::Lifecycle;
use openbmc_vocab::names::{bus, path};
use tokio::sync::mpsc;

use crate::core::{Core, Event};
use config::Config;
use dbus::{
    AssociationIface, AvailabilityIface, CriticalIface, GateIface, OperationalIface, ValueIface,
    WarningIface,
};
use executor::Executor;
use smbus::worker::{BusHandle, Latch};

/// Run the daemon until SIGTERM.
pub async fn run(cfg: Config) -> Result<()> {
    let conn = daemon_kit::bus::build(zbus::connection::Builder::system())
        .await
        .context("connecting to the system bus")?;
    let server = conn.object_server();

    // Sensor objects before the name, so a client that sees the name sees the objects.
    let mut paths = Vec::new();
    for s in &cfg.sensors {
        let p = path::temperature_sensor(&s.spec.name);
        let t = s.spec.thresholds;
        let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
        server
            .at(
                p.as_str(),
                ValueIface {
                    value: f64::NAN,
                    min: s.min,
                    max: s.max,
                },
            )
            .await?;
        server
            .at(p.as_str(), AvailabilityIface { available: false })
            .await?;
        server
            .at(p.as_str(), OperationalIface { functional: true })
            .await?;
        server
            .at(
                p.as_str(),
                WarningIface {
                    high: nan(t.warning_high),
                    low: nan(t.warning_low),
                    alarm_high: false,
                    alarm_low: false,
                },
            )
            .await?;
        server
            .at(
                p.as_str(),
                CriticalIface {
                    high: nan(t.critical_high),
                    low: nan(t.critical_low),
                    alarm_high: false,
                    alarm_low: false,
                },
            )
            .await?;
        // Set now or never: bmcweb finds the sensor through it, and pid-control restarts
        // its loops on any interface added to a sensor later.
        if let Some(board) = &s.board {
            server
                .at(p.as_str(), AssociationIface::chassis(board))
                .await?;
        }
        paths.push(p);
    }
    match cfg.sensors.iter().find_map(|s| s.board.as_deref()) {
        Some(board) => {
            log::info!("sensors associated with the chassis {board} (Redfish lists them under it)")
        }
        None => log::warn!(
            "no \"board\" configured: the DIMM sensors carry no chassis association, so \
             bmcweb lists them under no Redfish chassis"
        ),
    }
    server
        .at(path::SENSORS, zbus::fdo::ObjectManager)
        .await
        .context("ObjectManager")?;

    let mut core = Core::new(
        cfg.policy.clone(),
        cfg.sensors.iter().map(|s| s.spec.clone()).collect(),
        cfg.zones.clone(),
        daemon_kit::time::now(),
    );
    server
        .at(
            path::ACPIGATE_GATE,
            GateIface {
                status: core.gate_status().clone(),
            },
        )
        .await?;
    daemon_kit::bus::request_name(&conn, bus::DIMM_TEMP_SENSOR)
        .await
        .with_context(|| format!("requesting bus name {}", bus::DIMM_TEMP_SENSOR))?;

    let latch = Latch::default();
    let mut buses = Vec::new();
    for b in &cfg.buses {
        log::info!("bus {}: {}", b.name, b.backend.describe());
        buses.push(BusHandle::spawn(&b.name, b.backend.open(), latch.clone())?);
    }
    let sensor_bus: Vec<BusHandle> = cfg.sensors.iter().map(|s| buses[s.bus].clone()).collect();

    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    tokio::spawn(phase::follow_phase(
        conn.clone(),
        tx.clone(),
        cfg.call_timeout,
    ));
    if !cfg.zones.is_empty() {
        tokio::spawn(fan_zones::follow_fan_zones(conn.clone(), tx.clone()));
    }
    // The gate covers only our transfers: find, name and publish every other master.
    tokio::spawn(other_masters::watch(
        other_masters::Scanner::system(),
        other_masters::scanned_buses(&cfg),
        cfg.other_masters_every,
        tx.clone(),
    ));
    // Signals caught from here on; the watchdog is supervised from READY on.
    let mut life = Lifecycle::start(daemon_kit::supervisor::bus_probe(conn.clone()))
        .context("cannot install signal handlers")?;

    let ex = Executor {
        conn: conn.clone(),
        paths,
        names: cfg.sensors.iter().map(|s| s.spec.name.clone()).collect(),
        sensor_bus,
        tx: tx.clone(),
        latch,
        call_timeout: cfg.call_timeout,
    };
    let first = core.start(daemon_kit::time::now());
    ex.execute(first).await;
    life.ready();
    log::info!(
        "serving {} DIMM sensors on {}; gate {}",
        cfg.sensors.len(),
        bus::DIMM_TEMP_SENSOR,
        if cfg.policy.gate_enabled {
            "enabled"
        } else {
            "DISABLED"
        }
    );

    let reason = loop {
        let deadline = core
            .next_deadline()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let ev = tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => ev,
                None => break "event channel closed",
            },
            _ = tokio::time::sleep_until(deadline) => Event::Tick,
            sig = life.stop_requested() => break sig,
        };
        // In order: a close starts with `CloseBus`, so the latch closes before anything else.
        let actions = core.handle(daemon_kit::time::now(), ev);
        ex.execute(actions).await;
    };
    life.stopping(reason);
    Ok(())
}
