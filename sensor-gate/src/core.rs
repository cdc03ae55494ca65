//! The gate: every decision sensor-gate makes, as a synchronous state machine.
//!
//! Events in ([`Event`]: a host phase update, a timer tick, a finished read, a finished fan
//! write), with the time passed in ([`Now`]); [`Action`]s out (start this read, publish that
//! sensor state, set that zone manual, publish the gate status). No I/O, no clock.
//!
//! Rules (each is tested below):
//!
//! * **Gate.** Open only while the host phase is `Working` and has been for the settle delay
//!   (measured from when the update reached us). Any other phase (`FirmwareInit`,
//!   `Sleeping`, `Off`, `Unknown`) closes it at once, as does losing the phase source. At
//!   start the phase is unknown: closed. With the gate disabled by configuration (the control
//!   experiment), reads run whatever the phase, and nothing else of the gate applies.
//! * **Transfers.** No read starts while closed; a read that falls due is refused and counted.
//!   The count is kept from elapsed time, brought up to date by the next event (a phase update,
//!   the gate opening, any tick), so a closed gate needs no timer: the daemon sleeps while the
//!   host is off. A read in
//!   flight when the gate closes finishes on the wire (we cannot abort an SMBus transfer), but
//!   its result is **discarded**: it was taken across a phase change, and publishing it would
//!   flip `Available` back to true while the host may be enumerating memory. Reads carry the
//!   open-window number they were started in, so a result from an earlier window is discarded
//!   even if the gate has reopened since. At most one read per sensor is in flight.
//! * **Stale input.** Each phase update carries the phase source's `Generation`; an update with
//!   a lower generation than one already seen is out of order and ignored. Losing the source
//!   (its bus name vanished) closes the gate and forgets the generation (a restarted source
//!   counts from zero).
//! * **Sensor states.** Gate closed: `Value=NaN`, `Available=false`. In `Off`/`Sleeping`,
//!   host-powered sensors are marked per [`OffMarking`] instead. Open: each good read
//!   publishes the value, `Available=true`, `Functional=true`; `error_threshold` failed reads
//!   in a row make it `Functional=false` and `Value=NaN` (as dbus-sensors does). The count is
//!   reset when the gate closes, so errors never accumulate while gated.
//! * **Thresholds.** A high alarm asserts at `value >= high` and deasserts below
//!   `high - hysteresis` (low alarms mirrored). Closing the gate deasserts every alarm: there is
//!   no value left to alarm on.
//! * **Fans.** In the hold phases (default: `FirmwareInit`) the configured zones go
//!   `Manual=true` and their PWMs get the fixed target; the hold lasts through the settle delay
//!   and through `Unknown` (a phase source lost mid-boot), and ends when the gate opens
//!   (`Manual=false`) or the phase becomes one that is not held.
//!   Fan writes never delay the gate; a failed write is retried every `fan_retry` while still
//!   wanted.

use std::time::{Duration, Instant};

use openbmc_vocab::acpigate::HostPhase;

use crate::decode::DeviceKind;
use crate::smbus::SmbusError;

/// The time, passed in by the edge: monotonic for deadlines, wall clock for what is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    /// Microseconds since the epoch.
    pub wall_us: u64,
}

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

/// One fan zone held while gated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSpec {
    pub zone: u32,
    /// PWM object names and the fixed target (0–255) written while held.
    pub pwms: Vec<(String, u8)>,
}

/// Policy knobs (from the configuration file).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub gate_enabled: bool,
    pub settle: Duration,
    pub poll_interval: Duration,
    pub error_threshold: u32,
    pub off_marking: OffMarking,
    pub fan_hold_phases: Vec<HostPhase>,
    pub fan_retry: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            gate_enabled: true,
            settle: Duration::from_secs(2),
            poll_interval: Duration::from_secs(1),
            error_threshold: 5,
            off_marking: OffMarking::Unavailable,
            fan_hold_phases: vec![HostPhase::FirmwareInit],
            fan_retry: Duration::from_secs(5),
        }
    }
}

/// A host phase update from acpi-state-daemon's `org.acpigate.HostPhase`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseUpdate {
    pub phase: HostPhase,
    /// When the phase began, µs since the epoch (the source's `Since`).
    pub since_us: u64,
    /// The source's `Generation`, if it has one.
    pub generation: Option<u64>,
    pub reason: String,
}

/// A fan command (what the edge writes on D-Bus).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FanCommand {
    /// `xyz.openbmc_project.Control.Mode.Manual` on pid-control's zone.
    ZoneManual { zone: u32, manual: bool },
    /// `xyz.openbmc_project.Control.FanPwm.Target` on a PWM object.
    PwmTarget { pwm: String, target: u8 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Phase(PhaseUpdate),
    /// The phase source left the bus (or never came).
    PhaseSourceLost,
    /// A deadline from [`Core::next_deadline`] passed (spurious ticks are harmless).
    Tick,
    /// A read started by [`Action::StartRead`] finished.
    ReadDone {
        sensor: usize,
        result: Result<u16, SmbusError>,
    },
    /// A fan command finished.
    FanDone {
        command: FanCommand,
        ok: bool,
    },
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

/// The gate as published on `org.acpigate.Gate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateStatus {
    pub open: bool,
    /// When it last opened or closed, µs since the epoch (0: not yet).
    pub since_us: u64,
    pub reason: String,
    pub phase: HostPhase,
    /// Reads that fell due while closed and were not started, counted up to the last event
    /// (not a running clock: a closed gate sets no timer).
    pub refused: u64,
    /// Times the gate closed.
    pub closes: u64,
    /// From the phase source's `Since` to our close, µs, for the last close caused by a phase
    /// change (0 if none yet).
    pub last_close_latency_us: u64,
    /// Reads that finished after the gate closed and were thrown away.
    pub discarded: u64,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Read the temperature word of `sensor` (register per device kind).
    StartRead {
        sensor: usize,
        addr: u8,
        reg: u8,
    },
    PublishSensor {
        sensor: usize,
        view: SensorView,
    },
    Alarm {
        sensor: usize,
        severity: Severity,
        direction: Direction,
        asserted: bool,
        value: f64,
    },
    Fan(FanCommand),
    PublishGate(GateStatus),
    /// Something an operator should read in the journal.
    Log {
        warn: bool,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Gate {
    Closed,
    Settling { opens_at: Instant },
    Open,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FanState {
    InFlight,
    Applied,
    Failed { retry_at: Instant },
}

struct FanSlot {
    /// The command currently wanted for this target (zone or PWM), if any.
    wanted: Option<FanCommand>,
    state: FanState,
}

struct Sensor {
    spec: SensorSpec,
    view: SensorView,
    /// The last view sent out; `None` before the first publication.
    published: Option<SensorView>,
    next_due: Instant,
    /// Window number the in-flight read was started in.
    in_flight: Option<u64>,
    errors: u32,
    /// `Functional=false` came from [`OffMarking::NonFunctional`], not from read errors.
    off_marked: bool,
    alarms: [[bool; 2]; 2], // [severity][direction]
}

/// The state machine.
pub struct Core {
    policy: Policy,
    sensors: Vec<Sensor>,
    zones: Vec<ZoneSpec>,
    fans: Vec<FanSlot>, // one per zone, then one per PWM, in config order
    gate: Gate,
    /// Incremented at every open; reads remember the window they started in.
    window: u64,
    phase: HostPhase,
    phase_since_us: u64,
    phase_reason: String,
    generation: Option<u64>,
    holding: bool,
    /// Wall time of the last close caused by a phase change, so a `Since` that arrives after
    /// the phase itself (a separate PropertiesChanged signal) still yields the right latency.
    last_close_wall: Option<u64>,
    status: GateStatus,
    published_status: Option<GateStatus>,
}

const NAN: f64 = f64::NAN;

impl Core {
    pub fn new(policy: Policy, sensors: Vec<SensorSpec>, zones: Vec<ZoneSpec>, now: Now) -> Self {
        let fan_slots = zones.len() + zones.iter().map(|z| z.pwms.len()).sum::<usize>();
        let enabled = policy.gate_enabled;
        Self {
            sensors: sensors
                .into_iter()
                .map(|spec| Sensor {
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
                })
                .collect(),
            fans: (0..fan_slots)
                .map(|_| FanSlot {
                    wanted: None,
                    state: FanState::Applied,
                })
                .collect(),
            zones,
            gate: if enabled { Gate::Closed } else { Gate::Open },
            window: if enabled { 0 } else { 1 },
            phase: HostPhase::Unknown,
            phase_since_us: 0,
            phase_reason: String::new(),
            generation: None,
            holding: false,
            last_close_wall: None,
            status: GateStatus {
                open: !enabled,
                since_us: now.wall_us,
                reason: if enabled {
                    "waiting for the host phase".to_owned()
                } else {
                    "gate disabled by configuration: reads ignore the host phase".to_owned()
                },
                phase: HostPhase::Unknown,
                refused: 0,
                closes: 0,
                last_close_latency_us: 0,
                discarded: 0,
                enabled,
            },
            published_status: None,
            policy,
        }
    }

    /// The initial publication: every sensor and the gate.
    pub fn start(&mut self, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.policy.gate_enabled {
            out.push(Action::Log {
                warn: true,
                message: "the gate is DISABLED by configuration: DIMM sensors are read whatever \
                          the host does (control experiment only)"
                    .to_owned(),
            });
        }
        self.after(now, &mut out);
        out
    }

    pub fn gate_status(&self) -> &GateStatus {
        &self.status
    }

    /// Reads started and not yet finished (not published: it changes with every poll).
    pub fn in_flight(&self) -> usize {
        self.sensors
            .iter()
            .filter(|s| s.in_flight.is_some())
            .count()
    }

    pub fn is_open(&self) -> bool {
        self.gate == Gate::Open
    }

    /// The sensor's current view (what is, or is about to be, published).
    pub fn sensor_view(&self, sensor: usize) -> Option<SensorView> {
        self.sensors.get(sensor).map(|s| s.view)
    }

    /// When the core next wants a [`Event::Tick`].
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| {
            next = Some(next.map_or(t, |n: Instant| n.min(t)));
        };
        if let Gate::Settling { opens_at } = self.gate {
            consider(opens_at);
        }
        if self.gate == Gate::Open {
            for s in &self.sensors {
                // A sensor whose bus is busy is started when that bus's read finishes, not by
                // a timer. Closed, due reads need no timer: they are counted from elapsed time.
                if s.in_flight.is_none() && !self.bus_busy(s.spec.bus) {
                    consider(s.next_due);
                }
            }
        }
        for f in &self.fans {
            if let FanState::Failed { retry_at } = f.state {
                consider(retry_at);
            }
        }
        next
    }

    pub fn handle(&mut self, now: Now, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if self.gate != Gate::Open {
            // Before the event can open the gate (which restarts the poll cadence).
            self.count_refused(now);
        }
        match event {
            Event::Phase(u) => self.on_phase(now, u, &mut out),
            Event::PhaseSourceLost => {
                self.generation = None;
                self.on_phase(
                    now,
                    PhaseUpdate {
                        phase: HostPhase::Unknown,
                        since_us: now.wall_us,
                        generation: None,
                        reason: "host phase source left the bus".to_owned(),
                    },
                    &mut out,
                );
            }
            Event::Tick => self.on_tick(now, &mut out),
            Event::ReadDone { sensor, result } => self.on_read(now, sensor, result, &mut out),
            Event::FanDone { command, ok } => self.on_fan_done(now, command, ok, &mut out),
        }
        self.after(now, &mut out);
        out
    }

    fn on_phase(&mut self, now: Now, u: PhaseUpdate, out: &mut Vec<Action>) {
        if let (Some(seen), Some(got)) = (self.generation, u.generation)
            && got < seen
        {
            out.push(Action::Log {
                warn: false,
                message: format!(
                    "ignoring out-of-order phase update {} (generation {got} < {seen})",
                    u.phase
                ),
            });
            return;
        }
        // The generation counts phase changes. Working again with a higher generation means
        // the host left Working and came back between two updates we saw (a reset faster than
        // the updates reached us): the firmware may have touched the bus meanwhile, so this is
        // a fresh entry into Working, not a repeat.
        let missed_change = u.phase == HostPhase::Working
            && self.phase == HostPhase::Working
            && matches!((self.generation, u.generation), (Some(seen), Some(got)) if got > seen);
        if missed_change {
            out.push(Action::Log {
                warn: true,
                message: format!(
                    "host phase generation went from {} to {} while working: a reset came and                      went unseen; closing the gate and settling again",
                    self.generation.unwrap_or_default(),
                    u.generation.unwrap_or_default()
                ),
            });
        }
        if u.generation.is_some() {
            self.generation = u.generation;
        }
        let changed = u.phase != self.phase;
        if !changed
            && u.since_us != self.phase_since_us
            && u.since_us != 0
            && let Some(closed_at) = self.last_close_wall
            && u.since_us <= closed_at
        {
            self.status.last_close_latency_us = closed_at - u.since_us;
        }
        self.phase = u.phase;
        self.phase_since_us = u.since_us;
        self.phase_reason = u.reason;
        self.status.phase = u.phase;
        if !self.policy.gate_enabled {
            return;
        }
        if u.phase == HostPhase::Working && !missed_change {
            if self.gate == Gate::Closed {
                self.settle(now, out);
            }
            // Working → Working (a repeated update) changes nothing.
            return;
        }
        let was_open = self.gate == Gate::Open;
        let was_closed = self.gate == Gate::Closed;
        self.gate = Gate::Closed;
        self.status.open = false;
        self.status.reason = if self.phase_reason.is_empty() {
            format!("host phase {}", self.phase)
        } else {
            format!("host phase {} ({})", self.phase, self.phase_reason)
        };
        if was_open {
            self.status.closes += 1;
            self.status.since_us = now.wall_us;
            self.last_close_wall = Some(now.wall_us);
            if self.phase_since_us != 0 {
                self.status.last_close_latency_us = now.wall_us.saturating_sub(self.phase_since_us);
            }
        }
        if changed || !was_closed {
            self.mark_gated(out);
        }
        self.update_fan_hold(now, out);
        if missed_change {
            self.settle(now, out);
        }
    }

    /// Working, gate closed: open after the settle delay.
    fn settle(&mut self, now: Now, out: &mut Vec<Action>) {
        if self.policy.settle.is_zero() {
            self.open(now, out);
        } else {
            self.gate = Gate::Settling {
                opens_at: now.mono + self.policy.settle,
            };
            self.status.reason = format!(
                "host working, settling for {} ms",
                self.policy.settle.as_millis()
            );
        }
    }

    fn open(&mut self, now: Now, out: &mut Vec<Action>) {
        self.gate = Gate::Open;
        self.last_close_wall = None;
        self.window += 1;
        self.status.open = true;
        self.status.since_us = now.wall_us;
        self.status.reason = format!("host working for {} ms", self.policy.settle.as_millis());
        for s in &mut self.sensors {
            s.next_due = now.mono;
            s.errors = 0;
            // Functional=false from the off marking is not a finding about the device.
            if s.off_marked {
                s.off_marked = false;
                s.view.functional = true;
                s.view.available = false;
            }
        }
        if self.holding {
            self.holding = false;
            out.push(Action::Log {
                warn: false,
                message: "gate open: handing the fans back to the fan controller".to_owned(),
            });
        }
        self.want_zones(now, Some(false), out);
        self.start_due_reads(now, out);
    }

    /// Sensor states for the closed gate in the current phase.
    fn mark_gated(&mut self, out: &mut Vec<Action>) {
        let off = matches!(self.phase, HostPhase::Off | HostPhase::Sleeping);
        let marking = self.policy.off_marking;
        for (i, s) in self.sensors.iter_mut().enumerate() {
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
            }
        }
    }

    fn update_fan_hold(&mut self, now: Now, out: &mut Vec<Action>) {
        // Unknown (e.g. the phase source died mid-boot) keeps a hold that is in place: the
        // last thing known was firmware init, and the fixed PWM is the safe side.
        let hold = self.policy.fan_hold_phases.contains(&self.phase)
            || (self.phase == HostPhase::Unknown && self.holding);
        if hold && !self.holding {
            self.holding = true;
            out.push(Action::Log {
                warn: false,
                message: format!(
                    "host phase {}: fan zones to manual at the fixed PWM while the gate is closed",
                    self.phase
                ),
            });
            self.want_zones(now, Some(true), out);
            let mut slot = self.zones.len();
            let mut cmds = Vec::new();
            for z in &self.zones {
                for (pwm, target) in &z.pwms {
                    cmds.push((
                        slot,
                        FanCommand::PwmTarget {
                            pwm: pwm.clone(),
                            target: *target,
                        },
                    ));
                    slot += 1;
                }
            }
            for (slot, c) in cmds {
                self.want(slot, Some(c), out);
            }
        } else if !hold && self.holding {
            self.holding = false;
            self.want_zones(now, Some(false), out);
            self.clear_pwms();
        }
    }

    fn clear_pwms(&mut self) {
        for slot in self.zones.len()..self.fans.len() {
            self.fans[slot].wanted = None;
            self.fans[slot].state = FanState::Applied;
        }
    }

    fn want_zones(&mut self, _now: Now, manual: Option<bool>, out: &mut Vec<Action>) {
        if manual == Some(false) {
            self.clear_pwms();
        }
        for i in 0..self.zones.len() {
            let cmd = manual.map(|m| FanCommand::ZoneManual {
                zone: self.zones[i].zone,
                manual: m,
            });
            self.want(i, cmd, out);
        }
    }

    fn want(&mut self, slot: usize, cmd: Option<FanCommand>, out: &mut Vec<Action>) {
        let f = &mut self.fans[slot];
        // Already wanted and in flight or applied: nothing to do. A failed one is sent again
        // now, since a phase change is a good moment to try.
        if f.wanted == cmd && matches!(f.state, FanState::InFlight | FanState::Applied) {
            return;
        }
        f.wanted = cmd.clone();
        match cmd {
            Some(c) => {
                f.state = FanState::InFlight;
                out.push(Action::Fan(c));
            }
            None => f.state = FanState::Applied,
        }
    }

    fn on_fan_done(&mut self, now: Now, command: FanCommand, ok: bool, out: &mut Vec<Action>) {
        let Some(f) = self
            .fans
            .iter_mut()
            .find(|f| f.wanted.as_ref() == Some(&command))
        else {
            return; // superseded
        };
        if ok {
            f.state = FanState::Applied;
        } else {
            f.state = FanState::Failed {
                retry_at: now.mono + self.policy.fan_retry,
            };
            out.push(Action::Log {
                warn: true,
                message: format!(
                    "fan command {command:?} failed; the gate stays as it is, retrying in {} ms",
                    self.policy.fan_retry.as_millis()
                ),
            });
        }
    }

    fn on_tick(&mut self, now: Now, out: &mut Vec<Action>) {
        if let Gate::Settling { opens_at } = self.gate
            && now.mono >= opens_at
        {
            self.open(now, out);
        }
        if self.gate == Gate::Open {
            self.start_due_reads(now, out);
        }
        for f in &mut self.fans {
            if let FanState::Failed { retry_at } = f.state
                && retry_at <= now.mono
                && let Some(c) = f.wanted.clone()
            {
                f.state = FanState::InFlight;
                out.push(Action::Fan(c));
            }
        }
    }

    /// Count the reads that fell due while closed, strictly before `now`, and move each
    /// sensor's due time past them. A sensor with a read in flight is not due.
    fn count_refused(&mut self, now: Now) {
        let every = self.policy.poll_interval;
        if every.is_zero() {
            return; // rejected by the config; no division by zero here either way
        }
        for s in &mut self.sensors {
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

    /// Start due reads, at most one per bus: a queue of reads behind a slow one could
    /// otherwise go on the wire after the gate has closed.
    fn start_due_reads(&mut self, now: Now, out: &mut Vec<Action>) {
        let mut busy: Vec<usize> = self
            .sensors
            .iter()
            .filter(|s| s.in_flight.is_some())
            .map(|s| s.spec.bus)
            .collect();
        for (i, s) in self.sensors.iter_mut().enumerate() {
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

    fn on_read(
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

    /// Emit what changed since the last publication.
    fn after(&mut self, _now: Now, out: &mut Vec<Action>) {
        for (i, s) in self.sensors.iter_mut().enumerate() {
            if s.published != Some(s.view) {
                s.published = Some(s.view);
                out.push(Action::PublishSensor {
                    sensor: i,
                    view: s.view,
                });
            }
        }
        if self.published_status.as_ref() != Some(&self.status) {
            self.published_status = Some(self.status.clone());
            out.push(Action::PublishGate(self.status.clone()));
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
    let table = [
        (Severity::Warning, Direction::High, t.warning_high),
        (Severity::Warning, Direction::Low, t.warning_low),
        (Severity::Critical, Direction::High, t.critical_high),
        (Severity::Critical, Direction::Low, t.critical_low),
    ];
    for (sev, dir, limit) in table {
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

#[cfg(test)]
mod tests {
    use super::*;
    use HostPhase::*;

    const T0_WALL: u64 = 1_700_000_000_000_000;

    /// Drives a core with virtual time, the way the edge does: ticks at every deadline.
    struct Rig {
        core: Core,
        base: Instant,
        at: Duration,
        /// Every action, with the virtual time (ms) it came out at.
        log: Vec<(u64, Action)>,
        generation: u64,
    }

    fn sensor(name: &str, kind: DeviceKind, addr: u8) -> SensorSpec {
        SensorSpec {
            name: name.to_owned(),
            kind,
            bus: usize::from(addr >= 0x50),
            address: addr,
            host_powered: true,
            thresholds: Thresholds {
                warning_high: Some(80.0),
                critical_high: Some(90.0),
                warning_low: Some(5.0),
                critical_low: None,
                hysteresis: 2.0,
            },
        }
    }

    fn policy() -> Policy {
        Policy {
            settle: Duration::from_millis(500),
            poll_interval: Duration::from_millis(100),
            error_threshold: 3,
            fan_retry: Duration::from_millis(1000),
            ..Policy::default()
        }
    }

    fn zones() -> Vec<ZoneSpec> {
        vec![
            ZoneSpec {
                zone: 0,
                pwms: vec![("Pwm_1".to_owned(), 153), ("Pwm_2".to_owned(), 153)],
            },
            ZoneSpec {
                zone: 1,
                pwms: vec![],
            },
        ]
    }

    // 25 °C as a TSOD sends it over read-word.
    const W25: u16 = 0x9001;

    impl Rig {
        fn new(policy: Policy) -> Self {
            let base = Instant::now();
            let now = Now {
                mono: base,
                wall_us: T0_WALL,
            };
            let mut core = Core::new(
                policy,
                vec![
                    sensor("DIMM_A0", DeviceKind::Jc42, 0x18),
                    sensor("DIMM_B0", DeviceKind::Spd5118, 0x50),
                ],
                zones(),
                now,
            );
            let first = core.start(now);
            let mut r = Self {
                core,
                base,
                at: Duration::ZERO,
                log: Vec::new(),
                generation: 0,
            };
            r.record(first);
            r
        }

        fn now(&self) -> Now {
            Now {
                mono: self.base + self.at,
                wall_us: T0_WALL + self.at.as_micros() as u64,
            }
        }

        fn record(&mut self, acts: Vec<Action>) -> Vec<Action> {
            let ms = self.at.as_millis() as u64;
            for a in &acts {
                self.log.push((ms, a.clone()));
            }
            acts
        }

        fn ev(&mut self, e: Event) -> Vec<Action> {
            let now = self.now();
            let acts = self.core.handle(now, e);
            self.record(acts)
        }

        /// Phase change whose source stamped it `lag_ms` before it reached us.
        fn phase_lag(&mut self, p: HostPhase, lag_ms: u64) -> Vec<Action> {
            self.generation += 1;
            let since = self.now().wall_us - lag_ms * 1000;
            self.ev(Event::Phase(PhaseUpdate {
                phase: p,
                since_us: since,
                generation: Some(self.generation),
                reason: "test".to_owned(),
            }))
        }

        fn phase(&mut self, p: HostPhase) -> Vec<Action> {
            self.phase_lag(p, 0)
        }

        /// Advance virtual time, ticking at each deadline on the way; reads started on the
        /// way are left in flight (complete them with `done`).
        fn advance(&mut self, ms: u64) -> Vec<Action> {
            let end = self.at + Duration::from_millis(ms);
            let mut all = Vec::new();
            while let Some(d) = self.core.next_deadline() {
                let d = d.saturating_duration_since(self.base);
                if d > end {
                    break;
                }
                self.at = self.at.max(d);
                all.extend(self.ev(Event::Tick));
                if self.core.next_deadline() == Some(self.base + self.at) {
                    // A deadline that does not move would loop forever: a bug.
                    panic!("deadline did not advance at {:?}", self.at);
                }
            }
            self.at = end;
            all
        }

        /// Advance, answering every read with `word` at once.
        fn run(&mut self, ms: u64, word: Result<u16, SmbusError>) -> Vec<Action> {
            let end = self.at + Duration::from_millis(ms);
            let mut all = Vec::new();
            loop {
                let step = match self.core.next_deadline() {
                    Some(d) if d.saturating_duration_since(self.base) <= end => {
                        d.saturating_duration_since(self.base)
                    }
                    _ => break,
                };
                self.at = self.at.max(step);
                let acts = self.ev(Event::Tick);
                all.extend(acts.clone());
                for a in acts {
                    if let Action::StartRead { sensor, .. } = a {
                        all.extend(self.ev(Event::ReadDone {
                            sensor,
                            result: word.clone(),
                        }));
                    }
                }
            }
            self.at = end;
            all
        }

        fn view(&self, i: usize) -> SensorView {
            self.core.sensor_view(i).expect("sensor")
        }
    }

    fn reads(acts: &[Action]) -> usize {
        acts.iter()
            .filter(|a| matches!(a, Action::StartRead { .. }))
            .count()
    }

    fn fans(acts: &[Action]) -> Vec<FanCommand> {
        acts.iter()
            .filter_map(|a| match a {
                Action::Fan(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    fn unavailable() -> SensorView {
        SensorView {
            value: NAN,
            available: false,
            functional: true,
        }
    }

    #[test]
    fn at_start_the_gate_is_closed_and_sensors_unavailable() {
        let mut r = Rig::new(policy());
        assert!(!r.core.is_open());
        assert_eq!(r.view(0), unavailable());
        let published: Vec<_> = r
            .log
            .iter()
            .filter(|(_, a)| matches!(a, Action::PublishSensor { .. }))
            .collect();
        assert_eq!(published.len(), 2);
        let acts = r.advance(5_000);
        assert_eq!(reads(&acts), 0, "no read before the phase is known");
        // Any event brings the count up to date: two sensors refused every 100 ms.
        r.ev(Event::Tick);
        assert!(
            (100..=102).contains(&r.core.gate_status().refused),
            "{:?}",
            r.core.gate_status()
        );
        assert!(
            fans(&acts).is_empty(),
            "unknown phase is not a fan-hold phase"
        );
    }

    #[test]
    fn working_opens_only_after_the_settle_delay() {
        let mut r = Rig::new(policy());
        r.phase(Working);
        assert!(!r.core.is_open());
        let acts = r.advance(499);
        assert_eq!(reads(&acts), 0);
        assert!(!r.core.is_open());
        let acts = r.advance(1);
        assert!(r.core.is_open());
        assert_eq!(reads(&acts), 2, "both sensors read as soon as it opens");
        assert!(
            acts.contains(&Action::StartRead {
                sensor: 1,
                addr: 0x50,
                reg: 0x31
            }),
            "SPD5118 temperature is MR49"
        );
        // Zones are handed back (idempotently) when the gate opens.
        assert_eq!(
            fans(&acts),
            vec![
                FanCommand::ZoneManual {
                    zone: 0,
                    manual: false
                },
                FanCommand::ZoneManual {
                    zone: 1,
                    manual: false
                }
            ]
        );
    }

    #[test]
    fn good_reads_publish_values_then_every_non_working_phase_closes_at_once() {
        for closing in [FirmwareInit, Sleeping, Off, Unknown] {
            let mut r = Rig::new(policy());
            r.phase(Working);
            r.run(1_000, Ok(W25));
            assert_eq!(
                r.view(0),
                SensorView {
                    value: 25.0,
                    available: true,
                    functional: true
                }
            );
            let acts = r.phase_lag(closing, 7);
            assert!(!r.core.is_open(), "{closing}");
            assert_eq!(reads(&acts), 0);
            let st = r.core.gate_status().clone();
            assert_eq!(st.closes, 1);
            assert_eq!(st.last_close_latency_us, 7_000, "Since → close");
            assert_eq!(st.phase, closing);
            assert!(!st.open);
            assert!(st.reason.contains(&closing.to_string()), "{}", st.reason);
            assert!(r.view(0).value.is_nan());
            assert!(
                !r.view(0).available,
                "{closing}: default marking is Available=false"
            );
            assert!(r.view(0).functional);
            let acts = r.run(3_000, Ok(W25));
            assert_eq!(reads(&acts), 0, "{closing}: nothing read while closed");
        }
    }

    #[test]
    fn a_since_that_arrives_after_the_phase_corrects_the_close_latency() {
        let mut r = Rig::new(policy());
        r.phase(Working);
        r.advance(600);
        let stamped = r.now().wall_us;
        // Phase first, with the old Since and Generation (separate signals)...
        r.ev(Event::Phase(PhaseUpdate {
            phase: FirmwareInit,
            since_us: T0_WALL,
            generation: Some(r.generation),
            reason: String::new(),
        }));
        assert!(!r.core.is_open());
        r.advance(3);
        // ...then Since and Generation.
        r.ev(Event::Phase(PhaseUpdate {
            phase: FirmwareInit,
            since_us: stamped - 2_000,
            generation: Some(r.generation + 1),
            reason: String::new(),
        }));
        assert_eq!(r.core.gate_status().last_close_latency_us, 2_000);
    }

    #[test]
    fn a_close_mid_transfer_discards_the_result() {
        let mut r = Rig::new(policy());
        r.phase(Working);
        let acts = r.advance(500);
        assert_eq!(reads(&acts), 2);
        assert_eq!(r.core.in_flight(), 2);
        r.phase(FirmwareInit);
        assert_eq!(r.core.in_flight(), 2, "in flight may finish");
        let acts = r.ev(Event::ReadDone {
            sensor: 0,
            result: Ok(W25),
        });
        assert!(
            !acts
                .iter()
                .any(|a| matches!(a, Action::PublishSensor { .. })),
            "a value read across the close is not published: {acts:?}"
        );
        assert_eq!(r.view(0), unavailable());
        // An error from the in-flight read does not count either.
        r.ev(Event::ReadDone {
            sensor: 1,
            result: Err(SmbusError::Nack),
        });
        let st = r.core.gate_status();
        assert_eq!(st.discarded, 2);
        assert_eq!(r.core.in_flight(), 0);
    }

    #[test]
    fn a_result_from_an_earlier_window_is_discarded_after_a_reopen() {
        let mut p = policy();
        p.settle = Duration::ZERO;
        let mut r = Rig::new(p);
        r.phase(Working);
        assert!(r.core.is_open());
        let acts = r.advance(0);
        let started = reads(&r.log.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>());
        assert_eq!(started, 2, "{acts:?}");
        r.phase(FirmwareInit);
        r.phase(Working);
        assert!(r.core.is_open());
        // The old reads still hold the sensors; their results must not be published.
        let acts = r.ev(Event::ReadDone {
            sensor: 0,
            result: Ok(W25),
        });
        assert!(
            !acts
                .iter()
                .any(|a| matches!(a, Action::PublishSensor { .. }))
        );
        assert_eq!(r.core.gate_status().discarded, 1);
        // The freed bus starts the due read of the new window at once, and it publishes.
        assert_eq!(
            acts.iter()
                .filter(|a| matches!(a, Action::StartRead { sensor: 0, .. }))
                .count(),
            1
        );
        r.ev(Event::ReadDone {
            sensor: 0,
            result: Ok(W25),
        });
        assert_eq!(r.view(0).value, 25.0);
    }

    #[test]
    fn errors_count_only_while_open_and_reset_on_close() {
        let mut r = Rig::new(policy());
        r.phase(Working);
        r.run(600, Ok(W25));
        // Two errors (threshold 3), then the gate closes: the count must not carry over.
        r.run(200, Err(SmbusError::Timeout));
        assert!(r.view(0).functional);
        assert_eq!(
            r.view(0).value,
            25.0,
            "the last value stays below the threshold"
        );
        r.phase(FirmwareInit);
        r.run(10_000, Err(SmbusError::Nack));
        assert!(r.view(0).functional, "nothing accumulates while gated");
        r.phase(Working);
        r.run(500, Ok(W25));
        r.run(200, Err(SmbusError::Nack));
        assert!(r.view(0).functional, "2 < 3");
        r.run(100, Err(SmbusError::Nack));
        let v = r.view(0);
        assert!(!v.functional && v.value.is_nan() && v.available);
        assert!(r.log.iter().any(|(_, a)| matches!(a,
            Action::Log { warn: true, message } if message.contains("Functional=false"))));
        // It keeps being polled and recovers with a good read.
        r.run(100, Ok(W25));
        assert!(r.view(0).functional);
        assert_eq!(r.view(0).value, 25.0);
    }

    #[test]
    fn off_marking_nonfunctional_marks_host_powered_sensors() {
        let mut p = policy();
        p.off_marking = OffMarking::NonFunctional;
        let mut r = Rig::new(p);
        r.phase(Working);
        r.run(1_000, Ok(W25));
        r.phase(Off);
        let v = r.view(0);
        assert!(v.value.is_nan() && v.available && !v.functional);
        // Firmware init (host powered, just not readable): unavailable, not broken.
        r.phase(FirmwareInit);
        assert_eq!(r.view(0), unavailable());
        r.phase(Off);
        r.phase(Working);
        r.run(1_000, Ok(W25));
        assert_eq!(r.view(0).value, 25.0);
        assert!(r.view(0).functional);
    }

    #[test]
    fn fans_held_in_firmware_init_until_the_gate_opens() {
        let mut r = Rig::new(policy());
        r.phase(Off);
        let acts = r.phase(FirmwareInit);
        assert_eq!(
            fans(&acts),
            vec![
                FanCommand::ZoneManual {
                    zone: 0,
                    manual: true
                },
                FanCommand::ZoneManual {
                    zone: 1,
                    manual: true
                },
                FanCommand::PwmTarget {
                    pwm: "Pwm_1".to_owned(),
                    target: 153
                },
                FanCommand::PwmTarget {
                    pwm: "Pwm_2".to_owned(),
                    target: 153
                },
            ]
        );
        for c in fans(&acts) {
            r.ev(Event::FanDone {
                command: c,
                ok: true,
            });
        }
        // Working, but settling: still held.
        let acts = r.phase(Working);
        assert!(fans(&acts).is_empty(), "{acts:?}");
        let acts = r.advance(500);
        assert_eq!(
            fans(&acts),
            vec![
                FanCommand::ZoneManual {
                    zone: 0,
                    manual: false
                },
                FanCommand::ZoneManual {
                    zone: 1,
                    manual: false
                }
            ]
        );
    }

    #[test]
    fn losing_the_phase_source_mid_boot_keeps_the_fans_held() {
        let mut r = Rig::new(policy());
        r.phase(FirmwareInit);
        let acts = r.ev(Event::PhaseSourceLost);
        assert!(fans(&acts).is_empty(), "{acts:?}");
        r.advance(10_000);
        assert!(!r.core.is_open());
        r.generation = 0;
        r.phase(Working);
        let acts = r.advance(500);
        assert!(fans(&acts).contains(&FanCommand::ZoneManual {
            zone: 0,
            manual: false
        }));
    }

    #[test]
    fn firmware_init_then_off_releases_the_fans() {
        let mut r = Rig::new(policy());
        r.phase(FirmwareInit);
        let acts = r.phase(Off);
        assert_eq!(
            fans(&acts),
            vec![
                FanCommand::ZoneManual {
                    zone: 0,
                    manual: false
                },
                FanCommand::ZoneManual {
                    zone: 1,
                    manual: false
                }
            ]
        );
    }

    #[test]
    fn failed_fan_writes_never_hold_the_gate_and_are_retried() {
        let mut r = Rig::new(policy());
        let acts = r.phase(FirmwareInit);
        for c in fans(&acts) {
            let ok = !matches!(c, FanCommand::ZoneManual { zone: 0, .. });
            r.ev(Event::FanDone { command: c, ok });
        }
        assert!(r.log.iter().any(|(_, a)| matches!(a,
            Action::Log { warn: true, message } if message.contains("failed"))));
        let acts = r.advance(999);
        assert!(fans(&acts).is_empty());
        let acts = r.advance(1);
        assert_eq!(
            fans(&acts),
            vec![FanCommand::ZoneManual {
                zone: 0,
                manual: true
            }]
        );
        // Still failing; the gate opens on time regardless.
        r.ev(Event::FanDone {
            command: FanCommand::ZoneManual {
                zone: 0,
                manual: true,
            },
            ok: false,
        });
        r.phase(Working);
        let acts = r.advance(500);
        assert!(r.core.is_open());
        assert!(fans(&acts).contains(&FanCommand::ZoneManual {
            zone: 0,
            manual: false
        }));
        // The superseded failure does not come back.
        let acts = r.advance(5_000);
        assert!(
            !fans(&acts).contains(&FanCommand::ZoneManual {
                zone: 0,
                manual: true
            }),
            "{:?}",
            fans(&acts)
        );
    }

    #[test]
    fn flapping_never_opens_before_a_full_settle() {
        let mut r = Rig::new(policy());
        // Working for 400 ms, then a blip, many times: never open.
        for _ in 0..20 {
            r.phase(Working);
            let acts = r.advance(400);
            assert_eq!(reads(&acts), 0);
            r.phase(FirmwareInit);
            r.advance(10);
        }
        assert!(!r.core.is_open());
        assert_eq!(
            r.core.gate_status().closes,
            0,
            "never opened, so never closed"
        );
        r.phase(Working);
        r.advance(500);
        assert!(r.core.is_open());
        // Fan commands while flapping: held once, no storm of writes.
        let zone0_manual: usize = r
            .log
            .iter()
            .filter(|(_, a)| {
                matches!(
                    a,
                    Action::Fan(FanCommand::ZoneManual {
                        zone: 0,
                        manual: true
                    })
                )
            })
            .count();
        assert_eq!(zone0_manual, 1);
    }

    #[test]
    fn every_phase_pair_behaves() {
        let all = [Working, FirmwareInit, Sleeping, Off, Unknown];
        for from in all {
            for to in all {
                let mut r = Rig::new(policy());
                r.phase(from);
                r.run(1_000, Ok(W25));
                let was_open = r.core.is_open();
                assert_eq!(was_open, from == Working, "{from}");
                r.phase(to);
                let acts = r.run(1_000, Ok(W25));
                let open = r.core.is_open();
                assert_eq!(open, to == Working, "{from} -> {to}");
                if to != Working {
                    assert_eq!(reads(&acts), 0, "{from} -> {to}");
                    assert!(r.view(0).value.is_nan());
                    assert!(!r.view(0).available);
                } else if from == Working {
                    assert!(reads(&acts) >= 10, "still reading: {from} -> {to}");
                }
                let held = to == FirmwareInit || (from == FirmwareInit && to == Unknown);
                let last_zone0 = r.log.iter().rev().find_map(|(_, a)| match a {
                    Action::Fan(FanCommand::ZoneManual { zone: 0, manual }) => Some(*manual),
                    _ => None,
                });
                if held {
                    assert_eq!(last_zone0, Some(true), "{from} -> {to}");
                } else if last_zone0.is_some() {
                    assert_eq!(last_zone0, Some(false), "{from} -> {to}");
                }
            }
        }
    }

    #[test]
    fn out_of_order_updates_are_ignored() {
        let mut r = Rig::new(policy());
        let upd = |phase, generation| {
            Event::Phase(PhaseUpdate {
                phase,
                since_us: T0_WALL,
                generation: Some(generation),
                reason: String::new(),
            })
        };
        r.ev(upd(FirmwareInit, 7));
        // A stale Working (e.g. an old GetAll reply) must not open the gate.
        r.ev(upd(Working, 6));
        r.advance(2_000);
        assert!(!r.core.is_open());
        r.ev(upd(Working, 8));
        r.advance(500);
        assert!(r.core.is_open());
        // A stale FirmwareInit is ignored too (we already know better).
        r.ev(upd(FirmwareInit, 7));
        assert!(r.core.is_open());
        // The same generation again (properties arriving in separate signals) is accepted.
        r.ev(upd(Off, 8));
        assert!(!r.core.is_open());
        assert!(r.log.iter().any(|(_, a)| matches!(a,
            Action::Log { message, .. } if message.contains("out-of-order"))));
    }

    #[test]
    fn losing_the_source_closes_and_forgets_the_generation() {
        let mut r = Rig::new(policy());
        r.generation = 40;
        r.phase(Working);
        r.advance(500);
        assert!(r.core.is_open());
        r.ev(Event::PhaseSourceLost);
        assert!(!r.core.is_open());
        assert_eq!(r.core.gate_status().phase, Unknown);
        // The restarted source counts from 1 again.
        r.generation = 0;
        r.phase(Working);
        r.advance(500);
        assert!(r.core.is_open());
    }

    #[test]
    fn thresholds_assert_and_deassert_with_hysteresis() {
        let mut r = Rig::new(policy());
        r.phase(Working);
        let at = |c: f64| Ok(((c * 16.0) as u16).swap_bytes());
        r.run(500, at(50.0));
        let alarms = |acts: &[Action]| -> Vec<(Severity, Direction, bool)> {
            acts.iter()
                .filter_map(|a| match a {
                    Action::Alarm {
                        sensor: 0,
                        severity,
                        direction,
                        asserted,
                        ..
                    } => Some((*severity, *direction, *asserted)),
                    _ => None,
                })
                .collect()
        };
        let acts = r.run(100, at(80.0));
        assert_eq!(
            alarms(&acts),
            vec![(Severity::Warning, Direction::High, true)]
        );
        let acts = r.run(100, at(91.0));
        assert_eq!(
            alarms(&acts),
            vec![(Severity::Critical, Direction::High, true)]
        );
        let acts = r.run(100, at(88.5));
        assert!(alarms(&acts).is_empty(), "within hysteresis");
        let acts = r.run(100, at(87.0));
        assert_eq!(
            alarms(&acts),
            vec![(Severity::Critical, Direction::High, false)]
        );
        let acts = r.run(100, at(79.0));
        assert!(alarms(&acts).is_empty(), "78 < 79 < 80");
        let acts = r.run(100, at(3.0));
        assert_eq!(
            alarms(&acts),
            vec![
                (Severity::Warning, Direction::High, false),
                (Severity::Warning, Direction::Low, true)
            ]
        );
        // Closing clears alarms: there is no value to alarm on.
        let acts = r.phase(FirmwareInit);
        assert_eq!(
            alarms(&acts),
            vec![(Severity::Warning, Direction::Low, false)]
        );
    }

    #[test]
    fn gate_disabled_reads_in_every_phase() {
        let mut p = policy();
        p.gate_enabled = false;
        let mut r = Rig::new(p);
        assert!(r.log.iter().any(|(_, a)| matches!(a,
            Action::Log { warn: true, message } if message.contains("DISABLED"))));
        for ph in [Unknown, FirmwareInit, Off, Working] {
            r.phase(ph);
            let acts = r.run(1_000, Ok(W25));
            assert!(reads(&acts) >= 20, "{ph}");
            assert!(fans(&acts).is_empty(), "no fan hold without the gate");
        }
        assert!(r.core.gate_status().open && !r.core.gate_status().enabled);
    }

    #[test]
    fn one_transfer_per_bus_so_a_close_leaves_at_most_one_in_flight() {
        let base = Instant::now();
        let now = |ms: u64| Now {
            mono: base + Duration::from_millis(ms),
            wall_us: T0_WALL + ms * 1000,
        };
        let specs: Vec<SensorSpec> = (0..4u8)
            .map(|i| SensorSpec {
                bus: 0,
                ..sensor(&format!("S{i}"), DeviceKind::Jc42, 0x18 + i)
            })
            .collect();
        let mut p = policy();
        p.settle = Duration::ZERO;
        let mut c = Core::new(p, specs, vec![], now(0));
        c.start(now(0));
        let acts = c.handle(
            now(0),
            Event::Phase(PhaseUpdate {
                phase: Working,
                since_us: T0_WALL,
                generation: Some(1),
                reason: String::new(),
            }),
        );
        assert_eq!(
            reads(&acts),
            1,
            "four sensors on one bus: one read at a time"
        );
        // Its completion starts the next one at once (no timer needed).
        let acts = c.handle(
            now(1),
            Event::ReadDone {
                sensor: 0,
                result: Ok(W25),
            },
        );
        assert_eq!(
            acts.iter()
                .filter_map(|a| match a {
                    Action::StartRead { sensor, .. } => Some(*sensor),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(
            c.next_deadline(),
            None,
            "the bus is busy: the completion drives it"
        );
        // Close with sensor 1 on the wire: nothing else starts, even when it finishes.
        c.handle(
            now(2),
            Event::Phase(PhaseUpdate {
                phase: FirmwareInit,
                since_us: T0_WALL,
                generation: Some(2),
                reason: String::new(),
            }),
        );
        assert_eq!(c.in_flight(), 1);
        let acts = c.handle(
            now(3),
            Event::ReadDone {
                sensor: 1,
                result: Ok(W25),
            },
        );
        assert_eq!(reads(&acts), 0);
    }

    #[test]
    fn refused_reads_are_counted_per_due_sensor() {
        let mut r = Rig::new(policy());
        r.phase(FirmwareInit);
        let before = r.core.gate_status().refused;
        r.advance(1_000);
        // Nothing happened meanwhile, so nothing was counted yet...
        assert_eq!(r.core.gate_status().refused, before);
        // ...until the next event: 2 sensors × 10 polls (± the boundary poll).
        r.phase(Working);
        let refused = r.core.gate_status().refused - before;
        assert!((20..=22).contains(&refused), "{refused}");
        // Counting stops once open: the settle delay passes and reads start.
        r.run(1_000, Ok(W25));
        let settled = r.core.gate_status().refused;
        r.run(1_000, Ok(W25));
        assert_eq!(r.core.gate_status().refused, settled);
    }

    #[test]
    fn working_again_with_a_higher_generation_is_a_fresh_entry() {
        let mut r = Rig::new(policy());
        r.phase(Working);
        r.run(1_000, Ok(W25));
        assert!(r.core.is_open());
        let closes = r.core.gate_status().closes;
        // The same update again (same generation) changes nothing.
        let g = r.generation;
        let acts = r.ev(Event::Phase(PhaseUpdate {
            phase: Working,
            since_us: 0,
            generation: Some(g),
            reason: "repeat".to_owned(),
        }));
        assert!(r.core.is_open(), "{acts:?}");
        // A reset came and went between two updates: Working, two generations on.
        r.generation += 1;
        let acts = r.phase(Working);
        assert!(!r.core.is_open(), "{acts:?}");
        assert_eq!(r.core.gate_status().closes, closes + 1);
        assert_eq!(r.view(0), unavailable());
        assert!(
            acts.iter()
                .any(|a| matches!(a, Action::Log { warn: true, .. }))
        );
        // Closed for the whole settle delay, then open again.
        assert_eq!(reads(&r.run(499, Ok(W25))), 0);
        assert!(reads(&r.run(2, Ok(W25))) > 0);
        assert!(r.core.is_open());
    }

    #[test]
    fn a_closed_gate_sets_no_timer() {
        // While the host is off the daemon must sleep: no deadline, whatever the phase.
        for p in [Off, Sleeping, FirmwareInit, Unknown] {
            let mut r = Rig::new(policy());
            r.phase(Working);
            r.run(1_000, Ok(W25));
            assert!(r.core.is_open());
            r.phase(p);
            // Reads in flight at the close still report back; after that, nothing is due.
            r.run(10, Ok(W25));
            let fan_retry = r.core.next_deadline();
            assert_eq!(fan_retry, None, "{p:?}: deadline {fan_retry:?}");
        }
    }

    #[test]
    fn the_gate_status_is_published_only_on_change() {
        let mut r = Rig::new(policy());
        r.phase(Working);
        r.run(500, Ok(W25));
        let n = r
            .log
            .iter()
            .filter(|(_, a)| matches!(a, Action::PublishGate(_)))
            .count();
        r.run(5_000, Ok(W25));
        let m = r
            .log
            .iter()
            .filter(|(_, a)| matches!(a, Action::PublishGate(_)))
            .count();
        // Open and reading: reads come and go, but the published status does not change.
        assert_eq!(n, m);
    }

    /// Random event sequences against the invariants that matter, with a tiny deterministic
    /// generator (no dependency): a read starts only after `Working` has lasted the settle
    /// delay with no other phase since; never two reads on one bus; a sensor is published
    /// available only while the gate is open; fans are never held while the gate is open.
    #[test]
    fn random_sequences_keep_the_invariants() {
        struct Xorshift(u64);
        impl Xorshift {
            fn next(&mut self) -> u64 {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0
            }
            fn below(&mut self, n: u64) -> u64 {
                self.next() % n
            }
        }
        let phases = [Working, FirmwareInit, Sleeping, Off, Unknown];
        for seed in 1..=200u64 {
            let mut rng = Xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut r = Rig::new(policy());
            let settle = Duration::from_millis(500);
            // When the current uninterrupted Working stretch began (None: not working).
            let mut working_since: Option<Duration> = None;
            let mut in_flight: Vec<usize> = Vec::new();
            let mut held = false;
            for step in 0..300 {
                let acts = match rng.below(10) {
                    0 | 1 => {
                        let p = phases[rng.below(5) as usize];
                        match (p, working_since) {
                            (Working, None) => working_since = Some(r.at),
                            (Working, Some(_)) => {}
                            _ => working_since = None,
                        }
                        r.phase(p)
                    }
                    2 if !in_flight.is_empty() => {
                        let i = in_flight.remove(rng.below(in_flight.len() as u64) as usize);
                        let result = if rng.below(4) == 0 {
                            Err(SmbusError::Nack)
                        } else {
                            Ok(W25)
                        };
                        r.ev(Event::ReadDone { sensor: i, result })
                    }
                    3 => r.ev(Event::PhaseSourceLost),
                    _ => r.advance(rng.below(300)),
                };
                // PhaseSourceLost means Unknown.
                if r.core.gate_status().phase != Working {
                    working_since = None;
                }
                for a in &acts {
                    match a {
                        Action::StartRead { sensor, .. } => {
                            let since = working_since.unwrap_or_else(|| {
                                panic!("seed {seed} step {step}: read while not working")
                            });
                            assert!(
                                r.at >= since + settle,
                                "seed {seed} step {step}: read {:?} into Working",
                                r.at - since
                            );
                            let bus = usize::from(*sensor == 1);
                            assert!(
                                !in_flight.iter().any(|&i| usize::from(i == 1) == bus),
                                "seed {seed} step {step}: two reads on bus {bus}"
                            );
                            in_flight.push(*sensor);
                        }
                        Action::PublishSensor { view, .. } if view.available => {
                            assert!(
                                r.core.is_open(),
                                "seed {seed} step {step}: available while closed"
                            );
                        }
                        Action::Fan(FanCommand::ZoneManual { manual, .. }) => held = *manual,
                        _ => {}
                    }
                }
                assert!(
                    !(held && r.core.is_open()),
                    "seed {seed} step {step}: fans held with the gate open"
                );
                assert!(r.core.in_flight() <= 2);
            }
        }
    }
}
