//! A simulated phosphor-pid-control (zones with `Control.Mode`) that follows upstream's
//! fail-safe rules for its thermal inputs and counts fail-safe entries, and simulated
//! dbus-sensors PWM objects (`Control.FanPwm`).
//!
//! sensor-gate marks the DIMM sensors unavailable while the host is off and holds the zones
//! in manual mode at a fixed PWM during firmware init; whether that keeps the fans out of
//! fail-safe is decided by pid-control's rules, so they are modelled here as upstream has
//! them and every entry is counted (the soak requires none).
//!
//! Upstream rules modelled (openbmc/phosphor-pid-control, `dbus/dbuspassive.cpp` `getFailed`
//! and `pid/zone.cpp`, read at ca3d666e), per thermal input, in this order:
//! 1. the object is missing → failed;
//! 2. `Available=false` with `InputUnavailableAsFailed=false` → **not** failed;
//! 3. `Value` NaN or infinite → failed;
//! 4. a Critical alarm asserted → failed;
//! 5. `Available=false` → failed;
//! 6. `Functional=false` → failed.
//!
//! A zone is in fail-safe while any input is failed. Zones start in fail-safe (every input
//! missing until read). In manual mode the loop neither reads inputs nor writes fans, so the
//! fail-safe state is not re-evaluated until the zone is automatic again. Unlike the real
//! loop, which samples every cycle, this model evaluates on every signal, so even a transient
//! bad combination (a NaN before `Available=false`) counts as a fail-safe entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use anyhow::Result;
use futures_util::StreamExt;
use openbmc_vocab::names::{bus, iface, path, prop};
use zbus::interface;

use crate::BusAddress;

/// One thermal input's last known state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Input {
    pub missing: bool,
    pub value: f64,
    pub available: bool,
    pub functional: bool,
    pub critical_alarm: bool,
}

impl Default for Input {
    fn default() -> Self {
        Self {
            missing: true,
            value: f64::NAN,
            available: true,
            functional: true,
            critical_alarm: false,
        }
    }
}

/// Per-zone configuration, as the zone's PIDs would have it.
#[derive(Debug, Clone)]
pub struct ZoneConfig {
    pub zone: u32,
    /// Sensor object names (under /xyz/openbmc_project/sensors/temperature).
    pub inputs: Vec<String>,
    /// entity-manager `InputUnavailableAsFailed` (JSON `unavailableAsFailed`); upstream default
    /// true.
    pub unavailable_as_failed: bool,
}

impl Input {
    /// `DbusPassive::getFailed`, in upstream's order.
    pub fn failed(&self, unavailable_as_failed: bool) -> bool {
        if self.missing {
            return true;
        }
        if !self.available && !unavailable_as_failed {
            return false;
        }
        if !self.value.is_finite() {
            return true;
        }
        if self.critical_alarm {
            return true;
        }
        !self.available || !self.functional
    }
}

#[derive(Debug, Clone)]
pub struct ZoneState {
    pub config: ZoneConfig,
    pub manual: bool,
    pub failsafe: bool,
    /// Transitions into fail-safe after start-up.
    pub failsafe_entries: u64,
    /// Why it last entered fail-safe (input name and state).
    pub last_cause: Option<String>,
    /// Every entry after start-up: when, and why.
    pub entries: Vec<(Instant, String)>,
    /// Manual mode writes, with their time.
    pub manual_writes: Vec<(Instant, bool)>,
}

#[derive(Default)]
struct Shared {
    /// A fan controller that has hung: a write of a zone's `Manual` is never answered.
    hung: bool,
    inputs: HashMap<String, Input>,
    zones: Vec<ZoneState>,
    pwm_writes: HashMap<String, Vec<(Instant, u64)>>,
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn evaluate(&mut self) {
        for z in &mut self.zones {
            if z.manual {
                continue;
            }
            let cause = z.config.inputs.iter().find_map(|n| {
                let i = self.inputs.get(n).copied().unwrap_or_default();
                i.failed(z.config.unavailable_as_failed)
                    .then(|| format!("{n}: {i:?}"))
            });
            let fs = cause.is_some();
            if fs && !z.failsafe {
                z.failsafe_entries += 1;
                if let Some(c) = &cause {
                    z.entries.push((Instant::now(), c.clone()));
                }
                z.last_cause = cause;
            }
            z.failsafe = fs;
        }
    }
}

struct ZoneIface {
    shared: Arc<Mutex<Shared>>,
    index: usize,
}

#[interface(name = "xyz.openbmc_project.Control.Mode", introspection_docs = false)]
impl ZoneIface {
    #[zbus(property, name = "Manual")]
    fn manual(&self) -> bool {
        lock(&self.shared).zones[self.index].manual
    }
    #[zbus(property, name = "Manual")]
    async fn set_manual(&mut self, v: bool) {
        if lock(&self.shared).hung {
            std::future::pending::<()>().await;
        }
        let mut s = lock(&self.shared);
        let z = &mut s.zones[self.index];
        z.manual = v;
        z.manual_writes.push((Instant::now(), v));
        if !v {
            s.evaluate();
        }
    }
    #[zbus(property, name = "FailSafe")]
    fn fail_safe(&self) -> bool {
        lock(&self.shared).zones[self.index].failsafe
    }
}

struct PwmIface {
    shared: Arc<Mutex<Shared>>,
    name: String,
    target: u64,
}

#[interface(
    name = "xyz.openbmc_project.Control.FanPwm",
    introspection_docs = false
)]
impl PwmIface {
    #[zbus(property, name = "Target")]
    fn target(&self) -> u64 {
        self.target
    }
    #[zbus(property, name = "Target")]
    fn set_target(&mut self, v: u64) -> zbus::fdo::Result<()> {
        if v > 255 {
            return Err(zbus::fdo::Error::InvalidArgs(format!("{v} > 255")));
        }
        self.target = v;
        lock(&self.shared)
            .pwm_writes
            .entry(self.name.clone())
            .or_default()
            .push((Instant::now(), v));
        Ok(())
    }
}

/// The simulated fan controller and PWM objects.
pub struct FanSim {
    shared: Arc<Mutex<Shared>>,
    ctrl: zbus::Connection,
    _pwm: zbus::Connection,
}

impl FanSim {
    /// Serve the zones on `xyz.openbmc_project.State.FanCtrl`, the PWMs on
    /// `xyz.openbmc_project.FanSensor`, and follow the inputs on the DIMM sensor service.
    pub async fn start(
        bus: &impl BusAddress,
        zones: Vec<ZoneConfig>,
        pwms: &[&str],
    ) -> Result<Self> {
        Self::start_with(bus, zones, pwms, false).await
    }

    /// [`FanSim::start`] for a fan controller that never answers a write of `Manual`.
    pub async fn start_hung(
        bus: &impl BusAddress,
        zones: Vec<ZoneConfig>,
        pwms: &[&str],
    ) -> Result<Self> {
        Self::start_with(bus, zones, pwms, true).await
    }

    async fn start_with(
        bus: &impl BusAddress,
        zones: Vec<ZoneConfig>,
        pwms: &[&str],
        hung: bool,
    ) -> Result<Self> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        {
            let mut s = lock(&shared);
            s.hung = hung;
            for z in &zones {
                for n in &z.inputs {
                    s.inputs.insert(n.clone(), Input::default());
                }
            }
            s.zones = zones
                .iter()
                .map(|c| ZoneState {
                    config: c.clone(),
                    manual: false,
                    failsafe: true,
                    failsafe_entries: 0,
                    last_cause: None,
                    entries: Vec::new(),
                    manual_writes: Vec::new(),
                })
                .collect();
        }
        let ctrl = crate::connect(bus).await?;
        // pid-control's ObjectManager (`main.cpp` `modeRoot`): zones added below it are
        // announced with InterfacesAdded, removed ones with InterfacesRemoved.
        ctrl.object_server()
            .at(path::FANCTRL, zbus::fdo::ObjectManager)
            .await?;
        for (i, z) in zones.iter().enumerate() {
            ctrl.object_server()
                .at(
                    path::fanctrl_zone(z.zone),
                    ZoneIface {
                        shared: shared.clone(),
                        index: i,
                    },
                )
                .await?;
        }
        ctrl.request_name(bus::FAN_CTRL).await?;
        let pwm = crate::connect(bus).await?;
        for p in pwms {
            pwm.object_server()
                .at(
                    path::fanpwm(p),
                    PwmIface {
                        shared: shared.clone(),
                        name: (*p).to_owned(),
                        target: 0,
                    },
                )
                .await?;
        }
        pwm.request_name(bus::FAN_SENSOR).await?;

        // Follow the inputs: subscribe first, then read what is there.
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(iface::PROPERTIES)
            .member("PropertiesChanged")
            .path_namespace(path::TEMPERATURE_SENSORS)
            .build()?;
        let mut stream = zbus::MessageStream::for_match_rule(rule, &ctrl, None).await?;
        for z in &zones {
            for n in &z.inputs {
                let state = read_input(&ctrl, n).await;
                lock(&shared).inputs.insert(n.clone(), state);
            }
        }
        lock(&shared).evaluate();
        let sh = shared.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Some(p) = msg.header().path().map(|p| p.to_string()) else {
                    continue;
                };
                let Some(name) = p.rsplit('/').next().map(str::to_owned) else {
                    continue;
                };
                let Ok((_iface, changed, _inv)) =
                    msg.body()
                        .deserialize::<(String, HashMap<String, zbus::OwnedVariant>, Vec<String>)>(
                        )
                else {
                    continue;
                };
                let mut s = lock(&sh);
                let Some(i) = s.inputs.get_mut(&name) else {
                    continue;
                };
                i.missing = false;
                apply(i, &changed);
                s.evaluate();
            }
        });
        Ok(Self {
            shared,
            ctrl,
            _pwm: pwm,
        })
    }

    pub fn zones(&self) -> Vec<ZoneState> {
        lock(&self.shared).zones.clone()
    }

    pub fn input(&self, name: &str) -> Option<Input> {
        lock(&self.shared).inputs.get(name).copied()
    }

    /// Every fail-safe entry of every zone: when, and the input that caused it.
    pub fn failsafe_log(&self) -> Vec<(Instant, String)> {
        self.zones().into_iter().flat_map(|z| z.entries).collect()
    }

    /// Fail-safe entries of every zone, summed.
    pub fn failsafe_entries(&self) -> u64 {
        self.zones().iter().map(|z| z.failsafe_entries).sum()
    }

    pub fn pwm_writes(&self, name: &str) -> Vec<(Instant, u64)> {
        lock(&self.shared)
            .pwm_writes
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Restart the control loops as pid-control does 2 s after a sensor object is added or
    /// removed (ca3d666e, `main.cpp` `restartControlLoops`, `pid/builder.cpp`): every zone
    /// object is removed (InterfacesRemoved) and built anew in automatic mode with every input
    /// missing, i.e. in fail-safe, and announced (InterfacesAdded); its inputs are then read
    /// again and the zone evaluated, as its first loop cycles would.
    pub async fn restart_control_loops(&self) -> Result<()> {
        let zones: Vec<u32> = self.zones().iter().map(|z| z.config.zone).collect();
        for &z in &zones {
            self.ctrl
                .object_server()
                .remove::<ZoneIface, _>(path::fanctrl_zone(z))
                .await?;
        }
        let inputs: Vec<String> = {
            let mut s = lock(&self.shared);
            for z in &mut s.zones {
                z.manual = false;
                if !z.failsafe {
                    z.failsafe = true;
                    z.failsafe_entries += 1;
                    let cause = "control loops restarted: every input missing".to_owned();
                    z.entries.push((Instant::now(), cause.clone()));
                    z.last_cause = Some(cause);
                }
            }
            s.inputs.keys().cloned().collect()
        };
        for (index, &z) in zones.iter().enumerate() {
            self.ctrl
                .object_server()
                .at(
                    path::fanctrl_zone(z),
                    ZoneIface {
                        shared: self.shared.clone(),
                        index,
                    },
                )
                .await?;
        }
        for n in inputs {
            let state = read_input(&self.ctrl, &n).await;
            lock(&self.shared).inputs.insert(n, state);
        }
        lock(&self.shared).evaluate();
        Ok(())
    }

    /// Leave the start-up fail-safe the way pid-control does once it has good readings of
    /// every input: re-evaluate now (used after the inputs are known).
    pub fn evaluate(&self) {
        lock(&self.shared).evaluate();
    }
}

fn apply(i: &mut Input, changed: &HashMap<String, zbus::OwnedVariant>) {
    for (k, v) in changed {
        match k.as_str() {
            prop::VALUE => {
                if let Ok(x) = v.downcast_ref::<f64>() {
                    i.value = x;
                }
            }
            prop::AVAILABLE => {
                if let Ok(b) = v.downcast_ref::<bool>() {
                    i.available = b;
                    if !b {
                        // Upstream forces the value to NaN when the input becomes unavailable.
                        i.value = f64::NAN;
                    }
                }
            }
            prop::FUNCTIONAL => {
                if let Ok(b) = v.downcast_ref::<bool>() {
                    i.functional = b;
                }
            }
            prop::CRITICAL_ALARM_HIGH | prop::CRITICAL_ALARM_LOW => {
                if let Ok(b) = v.downcast_ref::<bool>() {
                    i.critical_alarm = b;
                }
            }
            _ => {}
        }
    }
}

async fn read_input(conn: &zbus::Connection, name: &str) -> Input {
    let mut i = Input::default();
    let Ok(props) = zbus::fdo::PropertiesProxy::builder(conn)
        .destination(bus::DIMM_TEMP_SENSOR)
        .path(path::temperature_sensor(name))
        .build()
        .await
    else {
        return i;
    };
    let mut all = HashMap::new();
    for ifc in [
        iface::SENSOR_VALUE,
        iface::AVAILABILITY,
        iface::OPERATIONAL_STATUS,
        iface::THRESHOLD_CRITICAL,
    ] {
        let Ok(n) = zbus::names::InterfaceName::try_from(ifc) else {
            continue;
        };
        match props.get_all(n).await {
            Ok(m) => all.extend(m),
            Err(_) => return i, // missing object or interface
        }
    }
    i.missing = false;
    apply(&mut i, &all);
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Input {
        Input {
            missing: false,
            value: 40.0,
            available: true,
            functional: true,
            critical_alarm: false,
        }
    }

    #[test]
    fn upstream_order_of_rules() {
        assert!(!ok().failed(true));
        assert!(Input::default().failed(false), "missing");
        let unavailable = Input {
            available: false,
            value: f64::NAN,
            ..ok()
        };
        assert!(unavailable.failed(true), "default: unavailable is failed");
        assert!(!unavailable.failed(false), "InputUnavailableAsFailed=false");
        let nonfunctional = Input {
            functional: false,
            ..ok()
        };
        assert!(nonfunctional.failed(false), "Functional=false always fails");
        let nan = Input {
            value: f64::NAN,
            ..ok()
        };
        assert!(nan.failed(false), "a NaN while still available fails");
        let crit = Input {
            critical_alarm: true,
            ..ok()
        };
        assert!(crit.failed(false));
    }
}
