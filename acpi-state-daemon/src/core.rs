//! The decisions of acpi-state-daemon: a synchronous state machine.
//!
//! Inputs arrive as [`Input`]s with the time they were seen ([`Now`]); [`AcpiCore::handle`]
//! returns the [`Action`]s the edge must carry out. No I/O, no clock, no async: every rule of
//! DESIGN.md §3 is in this file.
//!
//! The rules, in short:
//! * Chassis power off drives the state to `S5_G2` by itself (the host says nothing when power
//!   is cut).
//! * Early signs of firmware init — chassis power coming on, POST_COMPLETE deasserting while on,
//!   POST codes while working (unless POST_COMPLETE is asserted) — drive the state to
//!   `S2_D2` at once, before the host's own S2 arrives.
//! * POST_COMPLETE asserting during firmware init means the firmware is done with memory:
//!   `S0_G0_D0` (configurable), for firmware that never sends S0.
//! * Host writes (IPMI Set ACPI Power State through ipmid) set the state, except that a running
//!   state is refused while chassis power is known to be off.
//! * After a restart the state is re-derived from chassis power; a persisted state is trusted
//!   only where the inputs agree with it.
//! * Targets start once per real transition; BootProgress is written only when it changes.

use std::fmt;

use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::acpigate::HostPhase;
use openbmc_vocab::boot::ProgressStage;
use openbmc_vocab::state::{ChassisPowerState, HostState, OsStatus};
use openbmc_vocab::systemd::HostTarget;

use crate::config::Policy;

/// The time an input was seen: monotonic for durations, wall clock for what we publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic microseconds (any origin).
    pub mono_usec: u64,
    /// Microseconds since the Unix epoch.
    pub wall_usec: u64,
}

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
    /// A POST code from `Boot.Raw` (primary code, little-endian bytes folded to an integer).
    PostCode(u64),
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
    SetBootProgress(ProgressStage),
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

/// Per-boot timing, published on D-Bus and logged at S0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Boots (firmware init → working) seen since start.
    pub boot_count: u64,
    /// Last boot: total time spent in firmware init, µs.
    pub firmware_init_usec: u64,
    /// Last boot: from the start of the boot (first firmware-init sign) to S0, µs.
    pub time_to_working_usec: u64,
    /// Last boot: how many firmware-init windows (gate closures) it took.
    pub gate_windows: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct BootInProgress {
    started_mono: u64,
    init_entered_mono: Option<u64>,
    init_usec: u64,
    windows: u64,
}

/// The acpi-state-daemon state machine.
#[derive(Debug)]
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
    persisted: Option<Persisted>,
    last_target: Option<HostTarget>,
    last_progress: Option<ProgressStage>,
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
            persisted,
            last_target: None,
            last_progress: None,
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
            Input::AcpiWrite { sys, dev } => self.on_write(now, sys, dev, &mut out)?,
        }
        Ok(out)
    }

    fn power_known_off(&self) -> bool {
        match self.chassis {
            Some(c) => !c.is_on(),
            // Host state stands in for chassis power only where the platform has no chassis.
            None => !self.chassis_seen && matches!(self.host, Some(HostState::Off)),
        }
    }

    fn on_write(
        &mut self,
        now: Now,
        sys: Option<AcpiState>,
        dev: Option<AcpiState>,
        out: &mut Vec<Action>,
    ) -> Result<(), Refusal> {
        // Validate everything before changing anything.
        if let Some(s) = sys
            && self.power_known_off()
            && matches!(
                HostPhase::for_state(s),
                HostPhase::Working | HostPhase::FirmwareInit | HostPhase::Sleeping
            )
        {
            return Err(Refusal::PowerOff(s));
        }
        let dev_changed = dev.is_some_and(|d| d != self.dev);
        if let Some(d) = dev {
            self.dev = d;
        }
        match sys {
            Some(s) if s != self.sys => {
                self.transition(now, s, Reason::HostWrite, out);
                if dev_changed {
                    // transition() published sys; add dev.
                    if let Some(Action::PublishAcpi { dev: d, .. }) = out
                        .iter_mut()
                        .find(|a| matches!(a, Action::PublishAcpi { .. }))
                    {
                        *d = Some(self.dev);
                    }
                }
            }
            _ if dev_changed => {
                out.push(Action::Persist(self.persisted_record()));
                out.push(Action::PublishAcpi {
                    sys: None,
                    dev: Some(self.dev),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn on_chassis(
        &mut self,
        now: Now,
        state: Option<ChassisPowerState>,
        last_change_ms: Option<u64>,
        out: &mut Vec<Action>,
    ) {
        let prev = self.chassis;
        self.chassis = state;
        let Some(state) = state else {
            // The chassis service went away: keep what we know, it is still the best guess.
            return;
        };
        let first = !self.chassis_seen;
        self.chassis_seen = true;
        if first {
            self.derive_at_start(now, state, last_change_ms, out);
            return;
        }
        match (prev.map(ChassisPowerState::is_on), state.is_on()) {
            (_, false) => {
                if self.phase != HostPhase::Off {
                    self.transition(now, AcpiState::S5G2, Reason::ChassisOff, out);
                }
            }
            (Some(false), true) => {
                self.transition(now, AcpiState::S2D2, Reason::ChassisOn, out);
            }
            // The service came back after vanishing: power may have changed meanwhile.
            (None, true) => {
                if matches!(self.phase, HostPhase::Off | HostPhase::Unknown) {
                    self.transition(now, AcpiState::S2D2, Reason::ChassisOn, out);
                }
            }
            (Some(true), true) => {}
        }
    }

    fn derive_at_start(
        &mut self,
        now: Now,
        state: ChassisPowerState,
        last_change_ms: Option<u64>,
        out: &mut Vec<Action>,
    ) {
        if !state.is_on() {
            if self.phase != HostPhase::Off {
                self.transition(now, AcpiState::S5G2, Reason::ChassisOffAtStart, out);
            }
            return;
        }
        // Power is on. Trust the saved state only if it is a powered state and power has not
        // changed since it was saved (when the chassis tells us when it last changed).
        if let Some(p) = self.persisted.take() {
            let powered = HostPhase::for_state(p.sys).host_powered()
                || HostPhase::for_state(p.sys) == HostPhase::Sleeping;
            let unchanged_since =
                last_change_ms.is_none_or(|ms| ms.saturating_mul(1000) <= p.since_usec);
            let os_agrees = match (HostPhase::for_state(p.sys), self.os) {
                (HostPhase::Working, Some(os)) => os.post_complete(),
                (HostPhase::FirmwareInit, Some(os)) => !os.post_complete(),
                _ => true,
            };
            if powered && unchanged_since && os_agrees {
                self.transition(now, p.sys, Reason::RestoredPersisted, out);
                return;
            }
        }
        if self.policy.post_complete_means_working && self.os.is_some_and(OsStatus::post_complete) {
            self.transition(
                now,
                AcpiState::S0G0D0,
                Reason::PowerOnAtStartPostComplete,
                out,
            );
        } else if self.phase != HostPhase::FirmwareInit {
            self.transition(now, AcpiState::S2D2, Reason::PowerOnAtStartUnknown, out);
        }
    }

    fn on_host(&mut self, now: Now, h: Option<HostState>, out: &mut Vec<Action>) {
        let prev = self.host;
        self.host = h;
        // Chassis power is the better input; host state only stands in where it is absent.
        if self.chassis_seen {
            return;
        }
        let on = |s: HostState| {
            matches!(
                s,
                HostState::Running
                    | HostState::TransitioningToRunning
                    | HostState::Quiesced
                    | HostState::DiagnosticMode
            )
        };
        match h {
            Some(HostState::Off) if self.phase != HostPhase::Off => {
                self.transition(now, AcpiState::S5G2, Reason::HostOff, out);
            }
            Some(s)
                if on(s)
                    && !prev.is_some_and(on)
                    && !matches!(self.phase, HostPhase::Working | HostPhase::FirmwareInit) =>
            {
                self.transition(now, AcpiState::S2D2, Reason::HostOn, out);
            }
            _ => {}
        }
    }

    fn on_os(&mut self, now: Now, os: Option<OsStatus>, out: &mut Vec<Action>) {
        let prev = self.os;
        self.os = os;
        let (Some(prev), Some(os)) = (prev, os) else {
            return;
        };
        let power_on = self.chassis.is_some_and(ChassisPowerState::is_on)
            || (!self.chassis_seen && !self.power_known_off() && self.host.is_some());
        if !power_on {
            return;
        }
        match (prev.post_complete(), os.post_complete()) {
            (true, false) if self.phase != HostPhase::FirmwareInit => {
                self.transition(now, AcpiState::S2D2, Reason::PostCompleteDeasserted, out);
            }
            (false, true)
                if self.policy.post_complete_means_working
                    && self.phase == HostPhase::FirmwareInit =>
            {
                self.transition(now, AcpiState::S0G0D0, Reason::PostComplete, out);
            }
            _ => {}
        }
    }

    fn on_post_code(&mut self, now: Now, code: u64, out: &mut Vec<Action>) {
        if self.power_known_off() {
            return;
        }
        match self.phase {
            // While POST_COMPLETE is asserted it is the reliable warm-reset signal (a reset
            // deasserts it first); some OSes write port 80 at run time, so codes alone must not
            // close the gate then.
            HostPhase::Working
                if self.policy.post_codes_mean_firmware_init
                    && !self.os.is_some_and(OsStatus::post_complete) =>
            {
                self.transition(now, AcpiState::S2D2, Reason::PostCodeWhileWorking, out);
            }
            HostPhase::Unknown if self.policy.post_codes_mean_firmware_init => {
                self.transition(now, AcpiState::S2D2, Reason::PostCodeWhileUnknown, out);
            }
            _ => {}
        }
        if self.phase == HostPhase::FirmwareInit
            && let Some(stage) = self.policy.stage_for_post_code(code)
        {
            self.set_progress(stage, out);
        }
    }

    /// Move to `to`: publish, persist, start the target, update BootProgress and timeline.
    fn transition(&mut self, now: Now, to: AcpiState, reason: Reason, out: &mut Vec<Action>) {
        let from = self.sys;
        if from == to {
            return;
        }
        self.sys = to;
        let phase = HostPhase::for_state(to);
        let old_phase = self.phase;
        if phase != old_phase {
            self.phase = phase;
            self.reason = Some(reason);
            self.since_usec = now.wall_usec;
            self.generation += 1;
        }
        let persist = Action::Persist(Persisted {
            sys: self.sys,
            dev: self.dev,
            since_usec: now.wall_usec,
            generation: self.generation,
        });
        let mut announce = vec![Action::PublishAcpi {
            sys: Some(to),
            dev: None,
        }];
        if phase != old_phase {
            // Phase first: it is what closes the gate.
            announce.insert(0, Action::PublishPhase(self.phase_view()));
        }
        if phase == HostPhase::Working {
            // Saved before it is announced: a crash right after the announcement must not
            // bring back the older, closed state (the gate would shut on a running host).
            out.push(persist);
            out.extend(announce);
        } else {
            // Announced before it is saved: a write to a slow or busy flash must never hold
            // the gate open while the firmware may already be reading SPDs. A crash between the
            // two leaves the older record, which a restart trusts only while chassis power,
            // its last change and POST_COMPLETE all still agree with it.
            out.extend(announce);
            out.push(persist);
        }
        out.push(Action::LogTransition {
            from,
            to,
            reason,
            phase,
            generation: self.generation,
        });
        if phase != old_phase {
            self.track_boot(now, old_phase, phase, out);
            match phase {
                HostPhase::FirmwareInit => self.set_progress(self.policy.firmware_init_stage, out),
                HostPhase::Working => self.set_progress(ProgressStage::OsRunning, out),
                HostPhase::Off => self.set_progress(ProgressStage::Unspecified, out),
                HostPhase::Sleeping | HostPhase::Unknown => {}
            }
        }
        if let Some(t) = HostTarget::for_state(to)
            && self.last_target != Some(t)
        {
            self.last_target = Some(t);
            out.push(Action::StartTarget(t));
        }
    }

    fn persisted_record(&self) -> Persisted {
        Persisted {
            sys: self.sys,
            dev: self.dev,
            since_usec: self.since_usec,
            generation: self.generation,
        }
    }

    fn set_progress(&mut self, stage: ProgressStage, out: &mut Vec<Action>) {
        if self.policy.boot_progress && self.last_progress != Some(stage) {
            self.last_progress = Some(stage);
            out.push(Action::SetBootProgress(stage));
        }
    }

    fn track_boot(&mut self, now: Now, from: HostPhase, to: HostPhase, out: &mut Vec<Action>) {
        if from == HostPhase::FirmwareInit
            && let Some(b) = self.boot.as_mut()
            && let Some(entered) = b.init_entered_mono.take()
        {
            b.init_usec += now.mono_usec.saturating_sub(entered);
        }
        match to {
            HostPhase::FirmwareInit => {
                let b = self.boot.get_or_insert(BootInProgress {
                    started_mono: now.mono_usec,
                    ..BootInProgress::default()
                });
                b.windows += 1;
                b.init_entered_mono = Some(now.mono_usec);
            }
            HostPhase::Working => {
                if let Some(b) = self.boot.take() {
                    self.timeline = Timeline {
                        boot_count: self.timeline.boot_count + 1,
                        firmware_init_usec: b.init_usec,
                        time_to_working_usec: now.mono_usec.saturating_sub(b.started_mono),
                        gate_windows: b.windows,
                    };
                    out.push(Action::PublishTimeline(self.timeline));
                    out.push(Action::LogBootSummary(self.timeline));
                }
            }
            // A boot that ends in off was not a boot; the next power-on starts afresh.
            HostPhase::Off => self.boot = None,
            HostPhase::Sleeping | HostPhase::Unknown => {}
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
