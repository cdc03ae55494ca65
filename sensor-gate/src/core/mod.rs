//! The core: every decision sensor-gate makes, as a synchronous state machine.
//!
//! Events in ([`Event`]: a host phase update, a timer tick, a finished read, a finished fan
//! write), with the time passed in ([`Now`]); [`Action`]s out (start this read, publish that
//! sensor state, set that zone manual, publish the gate status). No I/O, no clock.
//!
//! This file holds the types the edge sees and the dispatch; the rules live by concern:
//! `gate` (open, settle, close, stale input), `sensors` (reads, sensor states,
//! thresholds), `fans` (the hold and its retries), [`decode`] (the register facts of the
//! parts). Each rule is tested in `tests.rs`.
//!
//! Rules:
//!
//! * **Gate.** Open only while the host phase is `Working` and has been for the settle delay
//!   (measured from when the update reached us). Any other phase (`FirmwareInit`,
//!   `Sleeping`, `Off`, `Unknown`) closes it at once, as does losing the phase source. At
//!   start the phase is unknown: closed. With the gate disabled by configuration (the control
//!   experiment), reads run whatever the phase, and nothing else of the gate applies.
//! * **Transfers.** No read starts while closed; a read that falls due is refused and counted.
//!   The count is kept from elapsed time, brought up to date by the next event (a phase update,
//!   the gate opening, any tick), so a closed gate needs no timer: the daemon sleeps while the
//!   host is off. A read in flight when the gate closes finishes on the wire (we cannot abort
//!   an SMBus transfer), but its result is **discarded**: it was taken across a phase change,
//!   and publishing it would flip `Available` back to true while the host may be enumerating
//!   memory. Reads carry the open-window number they were started in, so a result from an
//!   earlier window is discarded even if the gate has reopened since. At most one read per
//!   sensor, and one per bus, is in flight.
//! * **Stale input.** Each phase update carries the phase source's `Generation`; an update with
//!   a lower generation than one already seen is out of order and ignored. Losing the source
//!   (its bus name vanished) closes the gate and forgets the generation (a restarted source
//!   may count lower: acpi-state-daemon carries on from its state file, but not without one).
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
//!   wanted. A held zone that the fan controller re-creates (pid-control rebuilds its zones
//!   in automatic mode when it restarts its control loops) is held again at once: its
//!   `Manual=true` and PWM targets are written anew.
//! * **Sensors come and go.** Sensors configured while running (entity-manager records) are
//!   added with a number of their own, never reused, and shown as every other sensor is in
//!   the gate's current state. A removed sensor is never read or published again; a read in
//!   flight for it finishes on the wire (the bus stays busy until then) and is dropped.
//!   Changed thresholds are published in place; an alarm whose threshold is gone is
//!   deasserted at once.
//! * **Other masters.** The gate covers only sensor-gate's own transfers. Each scan of the
//!   DIMM buses for other masters (bound drivers, eeprom devices, processes holding the bus
//!   open, FruDevice not blocked) is published whole on the gate; a finding is logged as a
//!   warning, with what to change, when it first appears, and once more when it is gone.

pub mod decode;
mod fans;
mod gate;
mod masters;
mod sensors;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use openbmc_vocab::acpigate::HostPhase;

use fans::FanSlot;
pub use fans::{FanCommand, ZoneSpec};
use gate::Gate;
pub use masters::{MasterKind, OtherMaster};
use sensors::Sensor;
pub use sensors::{
    Direction, OffMarking, SensorProperty, SensorSpec, SensorView, Severity, SmbusError, Thresholds,
};

pub use openbmc_vocab::time::Now;

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
    /// The fan controller (re)created a zone's mode object: pid-control builds every zone
    /// anew, in automatic mode, when it starts and whenever it restarts its control loops.
    FanZoneAppeared {
        zone: u32,
    },
    /// A complete scan of the DIMM buses for other masters (every finding, none if clean).
    OtherMasters(Vec<OtherMaster>),
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
    /// Other masters on the DIMM buses, from the last scan, sorted.
    pub other_masters: Vec<OtherMaster>,
    pub enabled: bool,
}

/// What the core wants done, in the order it must be done: the edge carries the actions of
/// one event out one after the other, as listed.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The gate has just closed: refuse every read that is not on the wire yet. Always the
    /// first action of its list, so the edge closes its bus latch before it does anything
    /// else for the event (awaiting a publication first would leave a read queued behind a
    /// bus thread free to start after the close).
    CloseBus,
    /// Read the temperature word of `sensor` (register per device kind).
    StartRead {
        sensor: usize,
        addr: u8,
        reg: u8,
    },
    /// Set the sensor's properties to `view`, writing them in `order` (each write that
    /// changes something is a PropertiesChanged of its own, so the order is what a fan
    /// controller sampling between two signals can see).
    PublishSensor {
        sensor: usize,
        view: SensorView,
        order: [SensorProperty; 3],
    },
    /// Set the sensor's threshold properties to these (its configuration changed them).
    PublishThresholds {
        sensor: usize,
        thresholds: Thresholds,
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
                .map(|spec| Sensor::new(spec, now))
                .collect(),
            fans: (0..fan_slots).map(|_| FanSlot::idle()).collect(),
            zones,
            gate: if enabled { Gate::Closed } else { Gate::Open },
            window: if enabled { 0 } else { 1 },
            phase: HostPhase::Unknown,
            phase_since_us: 0,
            phase_reason: String::new(),
            generation: None,
            holding: false,
            status: GateStatus {
                open: !enabled,
                since_us: now.wall_usec,
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
                other_masters: Vec::new(),
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
        self.sensors
            .get(sensor)
            .filter(|s| !s.removed)
            .map(|s| s.view)
    }

    /// A sensor configured while running (its entity-manager record appeared): its number,
    /// never reused, and what to do. Its object must exist before the actions are carried out.
    pub fn add_sensor(&mut self, now: Now, spec: SensorSpec) -> (usize, Vec<Action>) {
        let mut out = Vec::new();
        if self.gate != Gate::Open {
            self.count_refused(now);
        }
        let i = self.push_sensor(spec, now, &mut out);
        self.after(now, &mut out);
        (i, out)
    }

    /// A sensor whose configuration went away: never read or published again (a read in
    /// flight finishes on the wire and is dropped). The edge removes its object.
    pub fn remove_sensor(&mut self, now: Now, sensor: usize) -> Vec<Action> {
        let mut out = Vec::new();
        if self.gate != Gate::Open {
            self.count_refused(now);
        }
        self.retire_sensor(sensor);
        self.after(now, &mut out);
        out
    }

    /// New thresholds for a running sensor (its record's thresholds changed), changed in
    /// place: the object keeps its interfaces.
    pub fn set_thresholds(&mut self, now: Now, sensor: usize, t: Thresholds) -> Vec<Action> {
        let mut out = Vec::new();
        self.change_thresholds(sensor, t, &mut out);
        self.after(now, &mut out);
        out
    }

    /// When the core next wants a [`Event::Tick`].
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.settle_deadline(),
            self.read_deadline(),
            self.fan_retry_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle(&mut self, now: Now, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if self.gate != Gate::Open {
            // Before the event can open the gate (which restarts the poll cadence).
            self.count_refused(now);
        }
        match event {
            Event::Phase(u) => self.on_phase(now, u, &mut out),
            Event::PhaseSourceLost => self.on_phase_source_lost(now, &mut out),
            Event::Tick => self.on_tick(now, &mut out),
            Event::ReadDone { sensor, result } => self.on_read(now, sensor, result, &mut out),
            Event::FanDone { command, ok } => self.on_fan_done(now, command, ok, &mut out),
            Event::FanZoneAppeared { zone } => self.on_zone_appeared(zone, &mut out),
            Event::OtherMasters(found) => self.on_other_masters(found, &mut out),
        }
        self.after(now, &mut out);
        out
    }

    fn on_tick(&mut self, now: Now, out: &mut Vec<Action>) {
        self.open_if_settled(now, out);
        if self.gate == Gate::Open {
            self.start_due_reads(now, out);
        }
        self.retry_failed_fans(now, out);
    }

    /// Emit what changed since the last publication.
    fn after(&mut self, _now: Now, out: &mut Vec<Action>) {
        self.publish_sensors(out);
        if self.published_status.as_ref() != Some(&self.status) {
            self.published_status = Some(self.status.clone());
            out.push(Action::PublishGate(self.status.clone()));
        }
    }
}
