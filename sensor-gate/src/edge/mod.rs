//! The edge: everything sensor-gate does to the world, and nothing it decides. It turns
//! D-Bus signals, timers and finished transfers into core events and carries out the core's
//! actions in the order the core gives them.
//!
//! * [`config`] — the configuration file, validated at start (`file:line: reason`);
//! * [`em_records`] — entity-manager's `AcpigateDimmTemp` records read into sensors, and
//!   `entity_manager` — following them while running (with `"sensors_from":
//!   "entity-manager"`); the main loop applies each new set (`Update`);
//! * `phase` — following acpi-state-daemon's `org.acpigate.HostPhase` as core events;
//! * `fan_zones` — the fan controller (re)creating its zones, as core events;
//! * [`other_masters`] — the scan for other masters on the real DIMM buses, as core events;
//! * `executor` — carrying out the core's actions: reads, sensor and gate properties, fan
//!   writes, log lines;
//! * [`dbus`] — the sensor and gate objects served, and `sensor_objects` — creating and
//!   removing a sensor's object, every interface at once;
//! * [`smbus`] — the narrow SMBus trait, the bus threads, the i2c-dev and simulator backends.

pub mod config;
pub mod dbus;
pub mod em_records;
mod entity_manager;
mod executor;
mod fan_zones;
pub mod other_masters;
mod phase;
mod sensor_objects;
pub mod smbus;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use daemon_kit::supervisor::Lifecycle;
use openbmc_vocab::names::{bus, path};
use tokio::sync::{mpsc, watch};

use crate::core::{Core, Event, SensorSpec};
use config::{BusConfig, Config, SensorConfig, SensorsFrom};
use dbus::GateIface;
use em_records::Record;
use entity_manager::Records;
use executor::{Executor, SensorSlot};
use other_masters::ScannedBus;
use smbus::Backend;
use smbus::worker::{BusHandle, Latch};

/// Run the daemon until SIGTERM.
pub async fn run(cfg: Config) -> Result<()> {
    let conn = daemon_kit::bus::build(zbus::connection::Builder::system())
        .await
        .context("connecting to the system bus")?;
    let server = conn.object_server();

    // Sensor objects before the name, so a client that sees the name sees the objects.
    for s in &cfg.sensors {
        sensor_objects::create(server, &path::temperature_sensor(&s.spec.name), s).await?;
    }
    match cfg.sensors_from {
        SensorsFrom::EntityManager => log::info!(
            "sensors from entity-manager's AcpigateDimmTemp records (each associated with its \
             record's board)"
        ),
        SensorsFrom::File => match cfg.sensors.iter().find_map(|s| s.board.as_deref()) {
            Some(board) => log::info!(
                "sensors associated with the chassis {board} (Redfish lists them under it)"
            ),
            None => log::warn!(
                "no \"board\" configured: the DIMM sensors carry no chassis association, so \
                 bmcweb lists them under no Redfish chassis"
            ),
        },
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
    let mut buses = Buses::open(&cfg.buses, latch.clone())?;

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
        buses.scanned.subscribe(),
        cfg.other_masters_every,
        tx.clone(),
    ));
    let (records_tx, mut records_rx) = mpsc::unbounded_channel::<Records>();
    if cfg.sensors_from == SensorsFrom::EntityManager {
        tokio::spawn(entity_manager::follow(
            conn.clone(),
            records_tx,
            cfg.call_timeout,
        ));
    } else {
        drop(records_tx);
    }
    // Signals caught from here on; the watchdog is supervised from READY on.
    let mut life = Lifecycle::start(daemon_kit::supervisor::bus_probe(conn.clone()))
        .context("cannot install signal handlers")?;

    let mut ex = Executor {
        conn: conn.clone(),
        slots: cfg
            .sensors
            .iter()
            .map(|s| SensorSlot {
                path: path::temperature_sensor(&s.spec.name),
                name: s.spec.name.clone(),
                bus: buses.handle(s.bus),
            })
            .collect(),
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

    // Sensors configured from entity-manager's records: by name, their number and record.
    let mut live: BTreeMap<String, (usize, Record)> = BTreeMap::new();
    let mut records_open = cfg.sensors_from == SensorsFrom::EntityManager;
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
            records = records_rx.recv(), if records_open => {
                match records {
                    Some(records) => {
                        let mut update = Update { core: &mut core, ex: &mut ex, buses: &mut buses, live: &mut live };
                        update.apply(records).await;
                    }
                    None => records_open = false,
                }
                continue;
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

/// The buses: those the file lists, and a `/dev/i2c-N` for each bus number a record names
/// that no listed bus stands for. One thread each, opened once, kept.
struct Buses {
    configs: Vec<BusConfig>,
    handles: Vec<BusHandle>,
    latch: Latch,
    /// The real buses, for the scan for other masters.
    scanned: watch::Sender<Vec<ScannedBus>>,
}

impl Buses {
    fn open(configs: &[BusConfig], latch: Latch) -> Result<Self> {
        let mut buses = Self {
            configs: Vec::new(),
            handles: Vec::new(),
            latch,
            scanned: watch::Sender::new(Vec::new()),
        };
        for b in configs {
            buses.add(b.clone())?;
        }
        Ok(buses)
    }

    fn add(&mut self, b: BusConfig) -> Result<usize> {
        log::info!("bus {}: {}", b.name, b.backend.describe());
        self.handles.push(BusHandle::spawn(
            &b.name,
            b.backend.open(),
            self.latch.clone(),
        )?);
        if let Some(number) = b.backend.i2c_number() {
            let name = b.name.clone();
            self.scanned
                .send_modify(|v| v.push(ScannedBus { name, number }));
        }
        self.configs.push(b);
        Ok(self.configs.len() - 1)
    }

    fn handle(&self, i: usize) -> BusHandle {
        self.handles[i].clone()
    }

    /// The bus a record's bus number means, opened if it is new.
    fn for_record(&mut self, number: u32) -> Result<usize> {
        if let Some(i) = self
            .configs
            .iter()
            .position(|b| b.backend.record_bus() == Some(number))
        {
            return Ok(i);
        }
        self.add(BusConfig {
            name: format!("i2c-{number}"),
            backend: Backend::I2cDev { bus: number },
        })
    }
}

/// Applying a new set of entity-manager records.
struct Update<'a> {
    core: &'a mut Core,
    ex: &'a mut Executor,
    buses: &'a mut Buses,
    live: &'a mut BTreeMap<String, (usize, Record)>,
}

impl Update<'_> {
    /// Carry out [`em_records::changes`]: removals first, then thresholds in place, then
    /// the new objects.
    async fn apply(&mut self, records: Records) {
        let c = em_records::changes(self.live.values().map(|(_, r)| r), &records);
        for name in c.remove {
            if let Some((i, old)) = self.live.remove(&name) {
                self.remove(i, &old).await;
            }
        }
        for r in c.thresholds {
            if let Some((i, old)) = self.live.get_mut(&r.name) {
                let acts = self
                    .core
                    .set_thresholds(daemon_kit::time::now(), *i, r.thresholds);
                *old = r;
                self.ex.execute(acts).await;
            }
        }
        for r in c.add {
            match self.add(&r).await {
                Ok(i) => {
                    self.live.insert(r.name.clone(), (i, r));
                }
                Err(e) => log::warn!("sensor {} from {}: {e:#}", r.name, r.path),
            }
        }
    }

    async fn remove(&mut self, i: usize, r: &Record) {
        let acts = self.core.remove_sensor(daemon_kit::time::now(), i);
        self.ex.execute(acts).await;
        let p = path::temperature_sensor(&r.name);
        match sensor_objects::remove(self.ex.conn.object_server(), &p).await {
            Ok(()) => log::info!(
                "sensor {} removed: its record {} went or changed",
                r.name,
                r.path
            ),
            Err(e) => log::warn!("sensor {}: {e:#}", r.name),
        }
    }

    async fn add(&mut self, r: &Record) -> Result<usize> {
        let bus = self.buses.for_record(r.bus)?;
        let s = SensorConfig {
            spec: SensorSpec {
                name: r.name.clone(),
                kind: r.kind,
                bus,
                address: r.address,
                host_powered: r.host_powered,
                thresholds: r.thresholds,
            },
            bus,
            min: r.min,
            max: r.max,
            board: Some(r.board.clone()),
        };
        let p = path::temperature_sensor(&r.name);
        // The whole object first, then the core: its first actions publish on it.
        sensor_objects::create(self.ex.conn.object_server(), &p, &s).await?;
        let (i, acts) = self.core.add_sensor(daemon_kit::time::now(), s.spec);
        debug_assert_eq!(i, self.ex.slots.len(), "sensor numbers follow the slots");
        self.ex.slots.push(SensorSlot {
            path: p,
            name: r.name.clone(),
            bus: self.buses.handle(bus),
        });
        log::info!(
            "sensor {} from {}: {} at {:#04x} on {} (chassis {})",
            r.name,
            r.path,
            r.kind.config_name(),
            r.address,
            self.buses.configs[bus].name,
            r.board
        );
        self.ex.execute(acts).await;
        Ok(i)
    }
}
