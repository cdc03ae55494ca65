//! The async edge: turns D-Bus signals, timers and finished transfers into core events, and
//! carries out the core's actions. No decisions here.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use openbmc_vocab::acpigate::{HostPhase, prop as phase_prop};
use openbmc_vocab::names::{bus, iface, path, prop};
use tokio::sync::mpsc;
use zbus::Connection;
use zbus::names::InterfaceName;

use crate::config::Config;
use crate::core::{Action, Core, Direction, Event, FanCommand, Now, PhaseUpdate, Severity};
use crate::dbus::{
    AvailabilityIface, CriticalIface, GateIface, OperationalIface, ValueIface, WarningIface,
};
use crate::smbus::worker::{BusHandle, Latch, Op};

fn now() -> Now {
    Now {
        mono: Instant::now(),
        wall_us: daemon_kit::time::epoch_usec(),
    }
}

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
        paths.push(p);
    }
    server
        .at(path::SENSORS, zbus::fdo::ObjectManager)
        .await
        .context("ObjectManager")?;

    let mut core = Core::new(
        cfg.policy.clone(),
        cfg.sensors.iter().map(|s| s.spec.clone()).collect(),
        cfg.zones.clone(),
        now(),
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
    tokio::spawn(follow_phase(conn.clone(), tx.clone(), cfg.call_timeout));
    tokio::spawn(daemon_kit::supervisor::watchdog_task(
        daemon_kit::supervisor::bus_probe(conn.clone()),
    ));

    let ex = Executor {
        conn: conn.clone(),
        paths,
        names: cfg.sensors.iter().map(|s| s.spec.name.clone()).collect(),
        sensor_bus,
        tx: tx.clone(),
        latch: latch.clone(),
        call_timeout: cfg.call_timeout,
    };
    let first = core.start(now());
    ex.execute(first).await;
    // Catch SIGTERM before READY: a stop right after READY must still shut down cleanly.
    let mut termination =
        daemon_kit::supervisor::Termination::install().context("cannot install signal handlers")?;
    daemon_kit::supervisor::notify_ready(&termination);
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

    loop {
        let deadline = core
            .next_deadline()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let ev = tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => ev,
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => Event::Tick,
            sig = termination.wait() => {
                log::info!("{sig}: stopping");
                break;
            }
        };
        let was_open = core.is_open();
        let actions = core.handle(now(), ev);
        if was_open && !core.is_open() {
            // Before anything else is done for this close: queued reads must not start.
            latch.close();
        }
        ex.execute(actions).await;
    }
    daemon_kit::supervisor::notify_stopping();
    Ok(())
}

struct Executor {
    conn: Connection,
    paths: Vec<String>,
    names: Vec<String>,
    sensor_bus: Vec<BusHandle>,
    tx: mpsc::UnboundedSender<Event>,
    latch: Latch,
    /// A fan write that takes longer than this counts as failed (the gate never waits on it).
    call_timeout: Duration,
}

impl Executor {
    async fn set_value(&self, p: &str, value: f64) -> Result<()> {
        let v = self
            .conn
            .object_server()
            .interface::<_, ValueIface>(p)
            .await?;
        let changed = {
            let mut g = v.get_mut().await;
            let same = g.value == value || (g.value.is_nan() && value.is_nan());
            g.value = value;
            !same
        };
        if changed {
            v.get().await.value_changed(v.signal_emitter()).await?;
        }
        Ok(())
    }

    async fn set_available(&self, p: &str, available: bool) -> Result<()> {
        let a = self
            .conn
            .object_server()
            .interface::<_, AvailabilityIface>(p)
            .await?;
        let changed = std::mem::replace(&mut a.get_mut().await.available, available) != available;
        if changed {
            a.get().await.available_changed(a.signal_emitter()).await?;
        }
        Ok(())
    }

    async fn set_functional(&self, p: &str, functional: bool) -> Result<()> {
        let o = self
            .conn
            .object_server()
            .interface::<_, OperationalIface>(p)
            .await?;
        let changed =
            std::mem::replace(&mut o.get_mut().await.functional, functional) != functional;
        if changed {
            o.get().await.functional_changed(o.signal_emitter()).await?;
        }
        Ok(())
    }

    async fn execute(&self, actions: Vec<Action>) {
        for a in actions {
            if let Err(e) = self.one(a).await {
                log::warn!("carrying out an action failed: {e:#}");
            }
        }
    }

    async fn one(&self, a: Action) -> Result<()> {
        let server = self.conn.object_server();
        match a {
            Action::StartRead { sensor, addr, reg } => {
                let bus = self.sensor_bus[sensor].clone();
                let tx = self.tx.clone();
                // The read is issued now, while the gate is open; the bus thread refuses it if
                // the gate closes before it reaches the wire.
                let generation = self.latch.generation();
                tokio::spawn(async move {
                    let result = bus
                        .transfer_under(Op::ReadWord { addr, reg }, generation)
                        .await;
                    let _ = tx.send(Event::ReadDone { sensor, result });
                });
            }
            Action::PublishSensor { sensor, view } => {
                // Order matters to a fan controller that samples between signals: never show
                // a NaN value on an input that still says Available=true (pid-control would
                // call it a bad reading and go fail-safe). Going unavailable, Available
                // goes first; coming back, the value goes first.
                let p = self.paths[sensor].as_str();
                if view.available {
                    self.set_value(p, view.value).await?;
                    self.set_functional(p, view.functional).await?;
                    self.set_available(p, view.available).await?;
                } else {
                    self.set_available(p, view.available).await?;
                    self.set_value(p, view.value).await?;
                    self.set_functional(p, view.functional).await?;
                }
            }
            Action::Alarm {
                sensor,
                severity,
                direction,
                asserted,
                value,
            } => {
                let p = self.paths[sensor].as_str();
                log::info!(
                    "{}: {severity:?} {direction:?} alarm {} at {value}",
                    self.names[sensor],
                    if asserted { "asserted" } else { "deasserted" }
                );
                match severity {
                    Severity::Warning => {
                        let i = server.interface::<_, WarningIface>(p).await?;
                        let e = i.signal_emitter();
                        match direction {
                            Direction::High => {
                                i.get_mut().await.alarm_high = asserted;
                                i.get().await.warning_alarm_high_changed(e).await?;
                            }
                            Direction::Low => {
                                i.get_mut().await.alarm_low = asserted;
                                i.get().await.warning_alarm_low_changed(e).await?;
                            }
                        }
                        match (direction, asserted) {
                            (Direction::High, true) => {
                                WarningIface::high_asserted(e, value).await?
                            }
                            (Direction::High, false) => {
                                WarningIface::high_deasserted(e, value).await?
                            }
                            (Direction::Low, true) => WarningIface::low_asserted(e, value).await?,
                            (Direction::Low, false) => {
                                WarningIface::low_deasserted(e, value).await?
                            }
                        }
                    }
                    Severity::Critical => {
                        let i = server.interface::<_, CriticalIface>(p).await?;
                        let e = i.signal_emitter();
                        match direction {
                            Direction::High => {
                                i.get_mut().await.alarm_high = asserted;
                                i.get().await.critical_alarm_high_changed(e).await?;
                            }
                            Direction::Low => {
                                i.get_mut().await.alarm_low = asserted;
                                i.get().await.critical_alarm_low_changed(e).await?;
                            }
                        }
                        match (direction, asserted) {
                            (Direction::High, true) => {
                                CriticalIface::high_asserted(e, value).await?
                            }
                            (Direction::High, false) => {
                                CriticalIface::high_deasserted(e, value).await?
                            }
                            (Direction::Low, true) => CriticalIface::low_asserted(e, value).await?,
                            (Direction::Low, false) => {
                                CriticalIface::low_deasserted(e, value).await?
                            }
                        }
                    }
                }
            }
            Action::Fan(command) => {
                let conn = self.conn.clone();
                let tx = self.tx.clone();
                let deadline = self.call_timeout;
                tokio::spawn(async move {
                    let r = tokio::time::timeout(deadline, fan_write(&conn, &command))
                        .await
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer in time")));
                    match &r {
                        Ok(()) => log::info!("fan: {command:?} done"),
                        Err(e) => log::warn!("fan: {command:?} failed: {e:#}"),
                    }
                    let _ = tx.send(Event::FanDone {
                        command,
                        ok: r.is_ok(),
                    });
                });
            }
            Action::PublishGate(status) => {
                let g = server
                    .interface::<_, GateIface>(path::ACPIGATE_GATE)
                    .await?;
                let old = std::mem::replace(&mut g.get_mut().await.status, status.clone());
                let e = g.signal_emitter();
                let i = g.get().await;
                if old.open != status.open {
                    log::info!(
                        "gate {}: {}",
                        if status.open { "OPEN" } else { "CLOSED" },
                        status.reason
                    );
                    i.open_changed(e).await?;
                }
                if old.since_us != status.since_us {
                    i.since_changed(e).await?;
                }
                if old.reason != status.reason {
                    i.reason_changed(e).await?;
                }
                if old.phase != status.phase {
                    i.phase_changed(e).await?;
                }
                if old.refused != status.refused {
                    i.refused_changed(e).await?;
                }
                if old.closes != status.closes {
                    i.closes_changed(e).await?;
                }
                if old.last_close_latency_us != status.last_close_latency_us {
                    i.last_close_latency_usec_changed(e).await?;
                }
                if old.discarded != status.discarded {
                    i.discarded_changed(e).await?;
                }
            }
            Action::Log { warn, message } => {
                if warn {
                    log::warn!("{message}");
                } else {
                    log::info!("{message}");
                }
            }
        }
        Ok(())
    }
}

async fn fan_write(conn: &Connection, c: &FanCommand) -> Result<()> {
    let (dest, p, i, name, value): (&str, String, &str, &str, zbus::Variant<'static>) = match c {
        FanCommand::ZoneManual { zone, manual } => (
            bus::FAN_CTRL,
            path::fanctrl_zone(*zone),
            iface::CONTROL_MODE,
            prop::MANUAL,
            zbus::Variant::from(*manual),
        ),
        FanCommand::PwmTarget { pwm, target } => (
            bus::FAN_SENSOR,
            path::fanpwm(pwm),
            iface::FAN_PWM,
            prop::TARGET,
            zbus::Variant::from(u64::from(*target)),
        ),
    };
    let props = zbus::fdo::PropertiesProxy::builder(conn)
        .destination(dest)
        .path(p)
        .build()
        .await?;
    props
        .set(InterfaceName::try_from(i)?, name, &value)
        .await
        .with_context(|| format!("{dest} {i}.{name}"))?;
    Ok(())
}

/// Follow `org.acpigate.HostPhase` on acpi-state-daemon: its appearance, its changes and
/// its disappearance, as core events.
/// Follow `org.acpigate.HostPhase`; each read of it may take up to `deadline`. The gate is
/// closed while we wait (we read only on start and when the source (re)appears, after closing
/// it), so this bounds how long a hung source can keep us from following its signals.
async fn follow_phase(conn: Connection, tx: mpsc::UnboundedSender<Event>, deadline: Duration) {
    loop {
        if let Err(e) = follow_phase_inner(&conn, &tx, deadline).await {
            log::warn!("following the host phase failed: {e:#}; gate closed, retrying in 1 s");
        }
        // Whatever broke, we no longer know the phase: fail closed until we do again.
        if tx.send(Event::PhaseSourceLost).is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[derive(Default)]
struct Snapshot {
    phase: Option<HostPhase>,
    since: u64,
    generation: Option<u64>,
    reason: String,
}

impl Snapshot {
    /// Take in the HostPhase properties among `changed`; whether any was there.
    fn apply<'a>(
        &mut self,
        changed: impl Iterator<Item = (&'a str, &'a zbus::Variant<'a>)>,
    ) -> Result<bool> {
        let mut any = false;
        for (k, v) in changed {
            match k {
                phase_prop::PHASE => {
                    let s: &str = v.downcast_ref()?;
                    self.phase = Some(s.parse().map_err(|e| anyhow::anyhow!("{e}"))?);
                }
                phase_prop::SINCE => self.since = v.downcast_ref()?,
                phase_prop::GENERATION => self.generation = Some(v.downcast_ref()?),
                phase_prop::REASON => {
                    let s: &str = v.downcast_ref()?;
                    self.reason = s.to_owned();
                }
                _ => continue,
            }
            any = true;
        }
        Ok(any)
    }

    fn event(&self) -> Option<Event> {
        Some(Event::Phase(PhaseUpdate {
            phase: self.phase?,
            since_us: self.since,
            generation: self.generation,
            reason: self.reason.clone(),
        }))
    }
}

/// Read every HostPhase property from `source` (the well-known name at start, the unique name
/// of the owner that just appeared afterwards: a read sent to the well-known name while it
/// changes hands would be answered by a later owner and taken as this one's word) and send
/// the phase, or report the source missing.
async fn read_phase(
    conn: &Connection,
    source: &str,
    deadline: Duration,
    tx: &mpsc::UnboundedSender<Event>,
) -> Snapshot {
    let mut snap = Snapshot::default();
    let all = async {
        let i = InterfaceName::try_from(iface::ACPIGATE_HOST_PHASE)?;
        let props = zbus::fdo::PropertiesProxy::builder(conn)
            .destination(source.to_owned())
            .path(path::ACPI_POWER_STATE)
            .build()
            .await?;
        match tokio::time::timeout(deadline, props.get_all(i)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(anyhow::anyhow!(
                "no answer within {} ms",
                deadline.as_millis()
            )),
        }
    }
    .await;
    let result = all.and_then(|all| snap.apply(all.iter().map(|(k, v)| (k.as_str(), &**v))));
    match result.map(|_| snap.event()) {
        Ok(Some(ev)) => {
            let _ = tx.send(ev);
        }
        other => {
            let why = match other {
                Err(e) => format!("{e:#}"),
                _ => "no Phase property".to_owned(),
            };
            log::warn!(
                "host phase not readable ({} on {} {}: {why}): gate closed until it is",
                iface::ACPIGATE_HOST_PHASE,
                bus::ACPI_POWER_STATE,
                path::ACPI_POWER_STATE
            );
            let _ = tx.send(Event::PhaseSourceLost);
        }
    }
    snap
}

/// One signal from the phase source's side of the bus.
enum SourceSignal {
    Owner(zbus::fdo::NameOwnerChanged),
    Properties(zbus::fdo::PropertiesChanged),
}

async fn follow_phase_inner(
    conn: &Connection,
    tx: &mpsc::UnboundedSender<Event>,
    deadline: Duration,
) -> Result<()> {
    use zbus::export::ordered_stream::OrderedStreamExt;

    let dbus = daemon_kit::bus::dbus_proxy(conn).await?;
    let owners = daemon_kit::bus::owner_changes(&dbus, bus::ACPI_POWER_STATE).await?;
    let props = zbus::fdo::PropertiesProxy::builder(conn)
        .destination(bus::ACPI_POWER_STATE)
        .path(path::ACPI_POWER_STATE)
        .build()
        .await?;
    // Subscribe before reading, so no change falls between the read and the subscription
    // (an older read arriving after a signal is dropped by the core's generation check).
    let changes = daemon_kit::bus::properties_changes(&props).await?;
    // Owner changes and property changes in the order the bus sent them: a source that
    // announces `Working` and dies must be seen announcing first, or its last word would open
    // the gate with nobody there.
    let mut signals = daemon_kit::bus::in_bus_order(
        OrderedStreamExt::map(owners, SourceSignal::Owner),
        OrderedStreamExt::map(changes, SourceSignal::Properties),
    );
    let phase_iface = InterfaceName::try_from(iface::ACPIGATE_HOST_PHASE)?;
    let mut snap = read_phase(conn, bus::ACPI_POWER_STATE, deadline, tx).await;
    loop {
        match signals.next().await {
            None => anyhow::bail!("phase source signal streams ended"),
            Some(SourceSignal::Properties(sig)) => {
                let args = sig.args()?;
                if args.interface_name() != &phase_iface {
                    continue;
                }
                let changed = args.changed_properties().iter().map(|(k, v)| (*k, v));
                match snap.apply(changed) {
                    Ok(true) => {
                        if let Some(ev) = snap.event() {
                            let _ = tx.send(ev);
                        }
                    }
                    Ok(false) => {}
                    Err(e) => log::warn!("bad host phase update: {e:#}"),
                }
            }
            Some(SourceSignal::Owner(o)) => {
                let args = o.args()?;
                // Any change of owner: forget the old source (its generation counter too).
                let _ = tx.send(Event::PhaseSourceLost);
                if args.new_owner().is_none() {
                    log::warn!("{} left the bus: gate closed", bus::ACPI_POWER_STATE);
                    snap = Snapshot::default();
                } else if let Some(owner) = args.new_owner().as_ref() {
                    log::info!("{} (re)appeared", bus::ACPI_POWER_STATE);
                    snap = read_phase(conn, owner.as_str(), deadline, tx).await;
                }
            }
        }
    }
}
