//! The decisions of acpi-state-daemon: a synchronous state machine.
//!
//! Inputs arrive as [`Input`]s with the time they were seen ([`Now`]); [`AcpiCore::handle`]
//! returns the [`Action`]s the edge must carry out. No I/O, no clock, no async: every rule the
//! daemon follows is in this module, and nowhere else.
//!
//! The rules, in short:
//! * Chassis power off drives the state to `S5_G2` by itself (the host says nothing when power
//!   is cut).
//! * Early signs of firmware init — chassis power coming on, POST_COMPLETE deasserting while on,
//!   POST codes while working (unless POST_COMPLETE is asserted) — drive the state to
//!   `S2_D2` at once, before the host's own S2 arrives. The first POST code read after a
//!   (re)start, or after postd (re)appears, is a baseline, not news.
//! * POST_COMPLETE asserting during firmware init means the firmware is done with memory:
//!   `S0_G0_D0` (configurable), for firmware that never sends S0.
//! * Host writes (IPMI Set ACPI Power State through ipmid) set the state, except that a running
//!   state is refused while chassis power is known to be off.
//! * After a restart the state is re-derived from chassis power; a persisted state is trusted
//!   only where the inputs agree with it.
//! * Targets start once per real transition; BootProgress is written only when it changes,
//!   and not at all while the host service lacks it (until a host service appears again).
//! * Where configured: `OperatingSystemState` is written on each phase change for dbus-sensors'
//!   BiosPost sensors (`os_status`), and each transition after the first derivation becomes an
//!   IPMI SEL record through phosphor-sel-logger.

use std::fmt;

use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::acpigate::HostPhase;
use openbmc_vocab::state::{ChassisPowerState, HostState, OsStatus};
use openbmc_vocab::systemd::HostTarget;

mod boot_progress;
mod inputs;
mod os_status;
mod policy;
mod timeline;
mod transition;

use boot_progress::BootProgress;
pub use boot_progress::{ProgressNote, ProgressOutcome, ProgressWrite};
use os_status::OsStatusWriter;
pub use os_status::{OsStatusNote, OsStatusOutcome};
pub use policy::Policy;
use timeline::BootInProgress;
pub use timeline::Timeline;

pub use openbmc_vocab::time::Now;

/// Something that happened outside.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Chassis `CurrentPowerState`, with `LastStateChangeTime` (epoch ms) where known;
    /// `None` when the chassis service is gone.
    ChassisPower {
        state: Option<ChassisPowerState>,
        last_change_ms: Option<u64>,
    },
    /// Host `CurrentHostState`; `None` when the service is gone.
    HostState(Option<HostState>),
    /// `OperatingSystemState` (POST complete); `None` when the service is gone.
    OsState(Option<OsStatus>),
    /// A POST code read from postd's `Boot.Raw` (primary code, little-endian bytes folded to
    /// an integer): its value on arrival and every change after. Whether it is news is the
    /// core's call: the first read after a (re)start, or after postd (re)appears, is the last
    /// code of some earlier moment, a baseline.
    PostCode(u64),
    /// postd left the bus: its next read is a baseline again.
    PostCodeSourceGone,
    /// A `BootProgress` write the core asked for did not succeed (success needs no word).
    BootProgress {
        host_epoch: u64,
        outcome: ProgressOutcome,
    },
    /// An `OperatingSystemState` write the core asked for did not succeed.
    OsStatusWrite(OsStatusOutcome),
    /// A write to our ACPI object (IPMI Set ACPI Power State lands here).
    AcpiWrite {
        sys: Option<AcpiState>,
        dev: Option<AcpiState>,
    },
}

/// What the edge must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Announce new ACPI property values (PropertiesChanged with the ones that changed).
    /// The values travel with the action: a second transition decided before this one is
    /// announced must not make observers see its value twice and this one never.
    PublishAcpi {
        sys: Option<AcpiState>,
        dev: Option<AcpiState>,
    },
    /// Announce the host phase (one PropertiesChanged with all four), values as decided.
    PublishPhase(PhaseView),
    /// Announce the boot timeline properties, values as decided.
    PublishTimeline(Timeline),
    /// `StartUnit(target, "replace")`.
    StartTarget(HostTarget),
    /// Write `BootProgress` on the host object.
    SetBootProgress(ProgressWrite),
    /// Tell the journal how `BootProgress` writes are going.
    BootProgressNote(ProgressNote),
    /// Write `OperatingSystemState` on the host object (for BiosPost consumers).
    SetOsStatus(OsStatus),
    /// Tell the journal how `OperatingSystemState` writes are going.
    OsStatusNote(OsStatusNote),
    /// Add a "System ACPI Power State" record for entering this state to the IPMI SEL
    /// (phosphor-sel-logger). Every one is a record: none may be dropped or reordered.
    AddSelRecord(AcpiState),
    /// Save this record to the state file.
    Persist(Persisted),
    /// Log a state change.
    LogTransition {
        from: AcpiState,
        to: AcpiState,
        reason: Reason,
        phase: HostPhase,
        generation: u64,
    },
    /// A boot reached S0: log the one-line boot summary.
    LogBootSummary(Timeline),
}

impl Action {
    /// A PropertiesChanged on our object: what observers (sensor-gate above all) act on.
    pub fn is_announcement(&self) -> bool {
        matches!(
            self,
            Self::PublishAcpi { .. } | Self::PublishPhase(_) | Self::PublishTimeline(_)
        )
    }
}

/// Why the state changed. Shown on D-Bus (`Reason`) and in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    HostWrite,
    ChassisOff,
    ChassisOn,
    ChassisOffAtStart,
    PowerOnAtStartUnknown,
    PowerOnAtStartPostComplete,
    RestoredPersisted,
    HostOff,
    HostOn,
    PostCompleteDeasserted,
    PostComplete,
    PostCodeWhileWorking,
    PostCodeWhileUnknown,
}

impl Reason {
    /// The human string on D-Bus and in logs.
    pub fn text(self) -> &'static str {
        match self {
            Self::HostWrite => "set by host (ACPI property write)",
            Self::ChassisOff => "chassis power off",
            Self::ChassisOn => "chassis power on: firmware init",
            Self::ChassisOffAtStart => "chassis power off at start",
            Self::PowerOnAtStartUnknown => {
                "chassis power on at start, state unknown: assuming firmware init"
            }
            Self::PowerOnAtStartPostComplete => "chassis power on and POST complete at start",
            Self::RestoredPersisted => "restored saved state (chassis power agrees)",
            Self::HostOff => "host state off (no chassis input)",
            Self::HostOn => "host state running (no chassis input): firmware init",
            Self::PostCompleteDeasserted => "POST complete deasserted while on: warm reset",
            Self::PostComplete => "POST complete",
            Self::PostCodeWhileWorking => "POST code while working: warm reset",
            Self::PostCodeWhileUnknown => "POST code while power state unknown: firmware init",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("host power is off: refusing {0} while chassis power is off")]
    PowerOff(AcpiState),
}

/// What survives a restart (the state file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Persisted {
    pub sys: AcpiState,
    pub dev: AcpiState,
    /// When the system state last changed, µs since the epoch.
    pub since_usec: u64,
    /// The phase generation, so `Generation` keeps counting up across restarts (consumers
    /// drop an update whose generation is lower than one they have seen).
    #[serde(default)]
    pub generation: u64,
}

/// The `org.acpigate.HostPhase` properties that change together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseView {
    pub phase: HostPhase,
    /// The reason text ("" before the first change).
    pub reason: &'static str,
    /// When the phase last changed, µs since the epoch.
    pub since_usec: u64,
    pub generation: u64,
}

/// The acpi-state-daemon state machine.
#[derive(Debug, Clone)]
pub struct AcpiCore {
    policy: Policy,
    sys: AcpiState,
    dev: AcpiState,
    phase: HostPhase,
    reason: Option<Reason>,
    since_usec: u64,
    generation: u64,
    chassis: Option<ChassisPowerState>,
    chassis_seen: bool,
    host: Option<HostState>,
    os: Option<OsStatus>,
    /// A POST code read since we started or postd (re)appeared: later reads are news.
    post_code_baseline: bool,
    persisted: Option<Persisted>,
    last_target: Option<HostTarget>,
    progress: BootProgress,
    os_writer: OsStatusWriter,
    /// The first transition since start has happened: the state derived at start is a
    /// baseline, not an event for the SEL (as ipmi-handlers takes its first read).
    derived: bool,
    boot: Option<BootInProgress>,
    timeline: Timeline,
}

impl AcpiCore {
    /// A core at start: everything Unknown. `persisted` is what the state file held; it is
    /// only used once chassis power confirms it.
    pub fn new(policy: Policy, persisted: Option<Persisted>) -> Self {
        Self {
            policy,
            sys: AcpiState::Unknown,
            dev: persisted.map(|p| p.dev).unwrap_or(AcpiState::Unknown),
            phase: HostPhase::Unknown,
            reason: None,
            since_usec: 0,
            generation: persisted.map_or(0, |p| p.generation),
            chassis: None,
            chassis_seen: false,
            host: None,
            os: None,
            post_code_baseline: false,
            persisted,
            last_target: None,
            progress: BootProgress::default(),
            os_writer: OsStatusWriter::default(),
            derived: false,
            boot: None,
            timeline: Timeline::default(),
        }
    }

    pub fn sys(&self) -> AcpiState {
        self.sys
    }
    pub fn dev(&self) -> AcpiState {
        self.dev
    }
    pub fn phase(&self) -> HostPhase {
        self.phase
    }
    /// The reason text of the last phase change ("" before the first).
    pub fn reason(&self) -> &'static str {
        self.reason.map(Reason::text).unwrap_or("")
    }
    pub fn since_usec(&self) -> u64 {
        self.since_usec
    }
    pub fn generation(&self) -> u64 {
        self.generation
    }
    pub fn phase_view(&self) -> PhaseView {
        PhaseView {
            phase: self.phase,
            reason: self.reason(),
            since_usec: self.since_usec,
            generation: self.generation,
        }
    }
    pub fn timeline(&self) -> Timeline {
        self.timeline
    }

    /// Feed one input. `Err` only for refused ACPI writes, which change nothing.
    pub fn handle(&mut self, now: Now, input: Input) -> Result<Vec<Action>, Refusal> {
        let mut out = Vec::new();
        match input {
            Input::ChassisPower {
                state,
                last_change_ms,
            } => self.on_chassis(now, state, last_change_ms, &mut out),
            Input::HostState(h) => self.on_host(now, h, &mut out),
            Input::OsState(os) => self.on_os(now, os, &mut out),
            Input::PostCode(code) => self.on_post_code(now, code, &mut out),
            Input::PostCodeSourceGone => self.post_code_baseline = false,
            Input::BootProgress {
                host_epoch,
                outcome,
            } => self.progress.outcome(host_epoch, outcome, &mut out),
            Input::OsStatusWrite(outcome) => self.os_writer.outcome(outcome, &mut out),
            Input::AcpiWrite { sys, dev } => self.on_write(now, sys, dev, &mut out)?,
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
