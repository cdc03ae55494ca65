//! The sensors: when reads start (one per bus at a time, only while open), what a result or
//! a closed gate makes each sensor show, error counting and threshold alarms.

use std::time::{Duration, Instant};

use openbmc_vocab::acpigate::HostPhase;

use super::decode::DeviceKind;
use super::gate::Gate;
use super::{Action, Core, NAN, Now};

/// How host-powered sensors are marked while the host is off or asleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffMarking {
    /// `Available=false` (default). pid-control treats it as failed unless the zone's PID has
    /// `InputUnavailableAsFailed=false` / `unavailableAsFailed=false`.
    Unavailable,
    /// `Functional=false`, `Available=true`, for fan controllers that drop non-functional
    /// inputs. Upstream pid-control treats it as failed: fail-safe.
    NonFunctional,
}

/// Thresholds of one sensor; `None` = no threshold (NaN on D-Bus).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Thresholds {
    pub warning_high: Option<f64>,
    pub warning_low: Option<f64>,
    pub critical_high: Option<f64>,
    pub critical_low: Option<f64>,
    pub hysteresis: f64,
}

/// One configured sensor, as the core needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorSpec {
    pub name: String,
    pub kind: DeviceKind,
    /// Which physical bus (index); one transfer per bus at a time.
    pub bus: usize,
    pub address: u8,
    /// Loses power with the host (all DIMM sensors do); marked per [`OffMarking`] when off.
    pub host_powered: bool,
    pub thresholds: Thresholds,
}

/// Why a read failed, as the bus reports it. Every kind counts the same (a failed read);
/// the kind is kept for the log line and the tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmbusError {
    /// No device acknowledged the address (absent, unpowered or broken part).
    #[error("no acknowledge from the device")]
    Nack,
    /// The transfer did not complete in time (stuck bus, clock stretching without end).
    #[error("transfer timed out")]
    Timeout,
    /// The bus or address is in use by someone else (kernel driver, arbitration lost).
    #[error("busy: {0}")]
    Busy(String),
    /// Anything else (missing device node, broken socket, protocol error).
    #[error("I/O error: {0}")]
    Io(String),
}

/// What a sensor shows on D-Bus.
#[derive(Debug, Clone, Copy)]
pub struct SensorView {
    pub value: f64,
    pub available: bool,
    pub functional: bool,
}

impl PartialEq for SensorView {
    // NaN == NaN here: "no value" published twice is no change.
    fn eq(&self, o: &Self) -> bool {
        (self.value == o.value || (self.value.is_nan() && o.value.is_nan()))
            && self.available == o.available
            && self.functional == o.functional
    }
}

/// One property of a sensor object, as the edge writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SensorProperty {
    /// `Sensor.Value.Value`.
    Value,
    /// `State.Decorator.Availability.Available`.
    Available,
    /// `State.Decorator.OperationalStatus.Functional`.
    Functional,
}

impl SensorView {
    /// The order in which to write this view over the one before. pid-control takes a NaN
    /// on an input that says `Available=true` for a bad reading and goes to fail-safe, and
    /// it may sample between two signals: so going unavailable, `Available=false` goes out
    /// before `Value=NaN`; coming back, the value goes out before `Available=true`.
    pub(super) fn publish_order(&self) -> [SensorProperty; 3] {
        use SensorProperty::{Available, Functional, Value};
        if self.available {
            [Value, Functional, Available]
        } else {
            [Available, Value, Functional]
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    High,
    Low,
}

pub(super) struct Sensor {
    spec: SensorSpec,
    pub(super) view: SensorView,
    /// The last view sent out; `None` before the first publication.
    published: Option<SensorView>,
    next_due: Instant,
    /// Window number the in-flight read was started in.
    pub(super) in_flight: Option<u64>,
    errors: u32,
    /// `Functional=false` came from [`OffMarking::NonFunctional`], not from read errors.
    off_marked: bool,
    alarms: [[bool; 2]; 2], // [severity][direction]
    /// Its configuration went away. The slot stays (numbers are never reused: a read in
    /// flight for it must not land on another sensor) but is never read or published again.
    pub(super) removed: bool,
}

impl Sensor {
    /// Before anything is known: no value, not available, due at once (once open).
    pub(super) fn new(spec: SensorSpec, now: Now) -> Self {
        Self {
            spec,
            view: SensorView {
                value: NAN,
                available: false,
                functional: true,
            },
            published: None,
            next_due: now.mono,
            in_flight: None,
            errors: 0,
            off_marked: false,
            alarms: [[false; 2]; 2],
            removed: false,
        }
    }
}

impl Core {
    /// The gate opened: every sensor is due now, with a clean error count.
    pub(super) fn restart_sensors(&mut self, now: Now) {
        for s in self.sensors.iter_mut().filter(|s| !s.removed) {
            s.next_due = now.mono;
            s.errors = 0;
            // Functional=false from the off marking is not a finding about the device.
            if s.off_marked {
                s.off_marked = false;
                s.view.functional = true;
                s.view.available = false;
            }
        }
    }

    /// Sensor states for the closed gate in the current phase.
    pub(super) fn mark_gated(&mut self, out: &mut Vec<Action>) {
        for i in 0..self.sensors.len() {
            self.mark_one_gated(i, out);
        }
    }

    /// One sensor's state for the closed gate in the current phase; asserted alarms go.
    fn mark_one_gated(&mut self, i: usize, out: &mut Vec<Action>) {
        let off = matches!(self.phase, HostPhase::Off | HostPhase::Sleeping);
        let marking = self.policy.off_marking;
        let Some(s) = self.sensors.get_mut(i).filter(|s| !s.removed) else {
            return;
        };
        s.errors = 0;
        s.view.value = NAN;
        if off && s.spec.host_powered && marking == OffMarking::NonFunctional {
            s.view.available = true;
            s.view.functional = false;
            s.off_marked = true;
        } else {
            s.view.available = false;
            if s.off_marked {
                s.off_marked = false;
                s.view.functional = true;
            }
        }
        for sev in [Severity::Warning, Severity::Critical] {
            for dir in [Direction::High, Direction::Low] {
                deassert(i, s, sev, dir, out);
            }
        }
    }

    /// A sensor configured while running (its record appeared): read from the next due
    /// time if the gate is open, shown as the closed gate shows every sensor otherwise.
    /// Returns its number, which is never reused.
    pub(super) fn push_sensor(
        &mut self,
        spec: SensorSpec,
        now: Now,
        out: &mut Vec<Action>,
    ) -> usize {
        self.sensors.push(Sensor::new(spec, now));
        let i = self.sensors.len() - 1;
        if self.gate == Gate::Open {
            self.start_due_reads(now, out);
        } else {
            self.mark_one_gated(i, out);
        }
        i
    }

    /// A sensor whose configuration went away: never read or published again. Its object
    /// goes with it, so its alarms need no deassertion.
    pub(super) fn retire_sensor(&mut self, i: usize) {
        if let Some(s) = self.sensors.get_mut(i) {
            s.removed = true;
        }
    }

    /// New thresholds for a running sensor, published in place. An alarm whose threshold
    /// is gone is deasserted now; the others are judged against the new limits at the next
    /// read.
    pub(super) fn change_thresholds(&mut self, i: usize, t: Thresholds, out: &mut Vec<Action>) {
        let Some(s) = self.sensors.get_mut(i).filter(|s| !s.removed) else {
            return;
        };
        if s.spec.thresholds == t {
            return;
        }
        s.spec.thresholds = t;
        out.push(Action::PublishThresholds {
            sensor: i,
            thresholds: t,
        });
        for (sev, dir, limit) in limits(&t) {
            if limit.is_none() {
                deassert(i, s, sev, dir, out);
            }
        }
    }

    /// Count the reads that fell due while closed, strictly before `now`, and move each
    /// sensor's due time past them. A sensor with a read in flight is not due.
    pub(super) fn count_refused(&mut self, now: Now) {
        let every = self.policy.poll_interval;
        if every.is_zero() {
            return; // rejected by the config; no division by zero here either way
        }
        for s in self.sensors.iter_mut().filter(|s| !s.removed) {
            if s.in_flight.is_some() || s.next_due >= now.mono {
                continue;
            }
            let late = now.mono - s.next_due;
            // Slots at next_due, next_due + every, ... that lie before now.
            let slots = late.as_nanos().div_ceil(every.as_nanos());
            self.status.refused += u64::try_from(slots).unwrap_or(u64::MAX);
            s.next_due += every * u32::try_from(slots).unwrap_or(u32::MAX);
        }
    }

    fn bus_busy(&self, bus: usize) -> bool {
        self.sensors
            .iter()
            .any(|s| s.spec.bus == bus && s.in_flight.is_some())
    }

    /// When the next read falls due, if the gate is open. A sensor whose bus is busy is
    /// started when that bus's read finishes, not by a timer. Closed, due reads need no
    /// timer: they are counted from elapsed time.
    pub(super) fn read_deadline(&self) -> Option<Instant> {
        if self.gate != Gate::Open {
            return None;
        }
        self.sensors
            .iter()
            .filter(|s| !s.removed && s.in_flight.is_none() && !self.bus_busy(s.spec.bus))
            .map(|s| s.next_due)
            .min()
    }

    /// Start due reads, at most one per bus: a queue of reads behind a slow one could
    /// otherwise go on the wire after the gate has closed.
    pub(super) fn start_due_reads(&mut self, now: Now, out: &mut Vec<Action>) {
        let mut busy: Vec<usize> = self
            .sensors
            .iter()
            .filter(|s| s.in_flight.is_some())
            .map(|s| s.spec.bus)
            .collect();
        for (i, s) in self.sensors.iter_mut().enumerate() {
            if s.removed {
                continue;
            }
            if s.in_flight.is_none() && s.next_due <= now.mono && !busy.contains(&s.spec.bus) {
                busy.push(s.spec.bus);
                s.in_flight = Some(self.window);
                s.next_due = advance(s.next_due, now.mono, self.policy.poll_interval);
                out.push(Action::StartRead {
                    sensor: i,
                    addr: s.spec.address,
                    reg: s.spec.kind.temperature_register(),
                });
            }
        }
    }

    pub(super) fn on_read(
        &mut self,
        now: Now,
        sensor: usize,
        result: Result<u16, SmbusError>,
        out: &mut Vec<Action>,
    ) {
        let open = self.gate == Gate::Open;
        let window = self.window;
        let Some(s) = self.sensors.get_mut(sensor) else {
            return;
        };
        let Some(started) = s.in_flight.take() else {
            return; // not ours
        };
        if s.removed {
            // Its configuration went away meanwhile: the bus is free again, nothing to show.
            if open {
                self.start_due_reads(now, out);
            }
            return;
        }
        if !open || started != window {
            self.status.discarded += 1;
            if open {
                // Reopened since: the bus is free for this window's reads.
                self.start_due_reads(now, out);
            }
            return;
        }
        self.read_result(sensor, result, out);
        // The bus is free: the next due read on it may start.
        self.start_due_reads(now, out);
    }

    fn read_result(
        &mut self,
        sensor: usize,
        result: Result<u16, SmbusError>,
        out: &mut Vec<Action>,
    ) {
        let threshold = self.policy.error_threshold;
        let Some(s) = self.sensors.get_mut(sensor) else {
            return;
        };
        match result {
            Ok(word) => {
                let value = s.spec.kind.celsius(word);
                if !s.view.functional {
                    out.push(Action::Log {
                        warn: false,
                        message: format!("{}: reading again ({value} °C)", s.spec.name),
                    });
                }
                s.errors = 0;
                s.view = SensorView {
                    value,
                    available: true,
                    functional: true,
                };
                check_thresholds(sensor, s, value, out);
            }
            Err(e) => {
                s.errors = s.errors.saturating_add(1);
                if s.errors == threshold && s.view.functional {
                    s.view.functional = false;
                    s.view.value = NAN;
                    out.push(Action::Log {
                        warn: true,
                        message: format!(
                            "{}: {threshold} reads in a row failed (last: {e}); Functional=false",
                            s.spec.name
                        ),
                    });
                } else if s.errors == 1 {
                    out.push(Action::Log {
                        warn: false,
                        message: format!("{}: read failed: {e}", s.spec.name),
                    });
                }
            }
        }
    }

    /// Publish every sensor whose view changed since it was last sent out.
    pub(super) fn publish_sensors(&mut self, out: &mut Vec<Action>) {
        for (i, s) in self.sensors.iter_mut().enumerate() {
            if !s.removed && s.published != Some(s.view) {
                s.published = Some(s.view);
                out.push(Action::PublishSensor {
                    sensor: i,
                    view: s.view,
                    order: s.view.publish_order(),
                });
            }
        }
    }
}

/// The next due time after `now`, keeping the cadence (skipping missed slots).
fn advance(due: Instant, now: Instant, every: Duration) -> Instant {
    let mut next = due + every;
    if next <= now {
        next = now + every;
    }
    next
}

fn check_thresholds(i: usize, s: &mut Sensor, value: f64, out: &mut Vec<Action>) {
    let t = s.spec.thresholds;
    let h = t.hysteresis.max(0.0);
    for (sev, dir, limit) in limits(&t) {
        let Some(limit) = limit else { continue };
        let a = &mut s.alarms[sev as usize][dir as usize];
        let next = match dir {
            Direction::High => {
                if *a {
                    value >= limit - h
                } else {
                    value >= limit
                }
            }
            Direction::Low => {
                if *a {
                    value <= limit + h
                } else {
                    value <= limit
                }
            }
        };
        if next != *a {
            *a = next;
            out.push(Action::Alarm {
                sensor: i,
                severity: sev,
                direction: dir,
                asserted: next,
                value,
            });
        }
    }
}

/// Each threshold with its severity and direction.
fn limits(t: &Thresholds) -> [(Severity, Direction, Option<f64>); 4] {
    [
        (Severity::Warning, Direction::High, t.warning_high),
        (Severity::Warning, Direction::Low, t.warning_low),
        (Severity::Critical, Direction::High, t.critical_high),
        (Severity::Critical, Direction::Low, t.critical_low),
    ]
}

/// Deassert one alarm if it is asserted (there is no value to give: NaN).
fn deassert(i: usize, s: &mut Sensor, sev: Severity, dir: Direction, out: &mut Vec<Action>) {
    let a = &mut s.alarms[sev as usize][dir as usize];
    if *a {
        *a = false;
        out.push(Action::Alarm {
            sensor: i,
            severity: sev,
            direction: dir,
            asserted: false,
            value: NAN,
        });
    }
}
