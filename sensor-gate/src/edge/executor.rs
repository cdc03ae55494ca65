//! Carrying out the core's actions, one after the other, in the order the core gives them.

use std::time::Duration;

use anyhow::{Context, Result};
use openbmc_vocab::names::{bus, iface, path, prop};
use tokio::sync::mpsc;
use zbus::Connection;
use zbus::names::InterfaceName;

use super::dbus::{
    AvailabilityIface, CriticalIface, GateIface, OperationalIface, ValueIface, WarningIface,
};
use super::smbus::worker::{BusHandle, Latch, Op};
use crate::core::{Action, Direction, Event, FanCommand, SensorProperty, Severity};

/// Where a sensor's actions go: its object and its bus. Indexed by the core's sensor number;
/// a removed sensor's slot stays (numbers are never reused).
pub(super) struct SensorSlot {
    pub(super) path: String,
    pub(super) name: String,
    pub(super) bus: BusHandle,
}

pub(super) struct Executor {
    pub(super) conn: Connection,
    pub(super) slots: Vec<SensorSlot>,
    pub(super) tx: mpsc::UnboundedSender<Event>,
    pub(super) latch: Latch,
    /// A fan write that takes longer than this counts as failed (the gate never waits on it).
    pub(super) call_timeout: Duration,
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

    fn slot(&self, sensor: usize) -> Result<&SensorSlot> {
        self.slots
            .get(sensor)
            .with_context(|| format!("no sensor number {sensor}"))
    }

    pub(super) async fn execute(&self, actions: Vec<Action>) {
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
                let bus = self.slot(sensor)?.bus.clone();
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
            Action::CloseBus => {
                // The core lists it first: no read issued before this instant starts now.
                self.latch.close();
            }
            Action::PublishSensor {
                sensor,
                view,
                order,
            } => {
                // In the core's order: it is what keeps the fan controller out of fail-safe.
                let p = self.slot(sensor)?.path.as_str();
                for property in order {
                    match property {
                        SensorProperty::Value => self.set_value(p, view.value).await?,
                        SensorProperty::Available => self.set_available(p, view.available).await?,
                        SensorProperty::Functional => {
                            self.set_functional(p, view.functional).await?
                        }
                    }
                }
            }
            Action::PublishThresholds { sensor, thresholds } => {
                let slot = self.slot(sensor)?;
                let p = slot.path.as_str();
                log::info!("{}: thresholds now {thresholds:?}", slot.name);
                let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
                let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
                let w = server.interface::<_, WarningIface>(p).await?;
                let (high, low) = (nan(thresholds.warning_high), nan(thresholds.warning_low));
                let (old_high, old_low) = {
                    let mut g = w.get_mut().await;
                    (
                        std::mem::replace(&mut g.high, high),
                        std::mem::replace(&mut g.low, low),
                    )
                };
                let e = w.signal_emitter();
                if !same(old_high, high) {
                    w.get().await.warning_high_changed(e).await?;
                }
                if !same(old_low, low) {
                    w.get().await.warning_low_changed(e).await?;
                }
                let c = server.interface::<_, CriticalIface>(p).await?;
                let (high, low) = (nan(thresholds.critical_high), nan(thresholds.critical_low));
                let (old_high, old_low) = {
                    let mut g = c.get_mut().await;
                    (
                        std::mem::replace(&mut g.high, high),
                        std::mem::replace(&mut g.low, low),
                    )
                };
                let e = c.signal_emitter();
                if !same(old_high, high) {
                    c.get().await.critical_high_changed(e).await?;
                }
                if !same(old_low, low) {
                    c.get().await.critical_low_changed(e).await?;
                }
            }
            Action::Alarm {
                sensor,
                severity,
                direction,
                asserted,
                value,
            } => {
                let slot = self.slot(sensor)?;
                let p = slot.path.as_str();
                log::info!(
                    "{}: {severity:?} {direction:?} alarm {} at {value}",
                    slot.name,
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
                if old.other_masters != status.other_masters {
                    i.other_masters_changed(e).await?;
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
