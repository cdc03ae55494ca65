//! [`CycleTracker`]: one cycle's state machine. Observations in, [`Step`]s out.

use std::collections::BTreeSet;
use std::time::Duration;

use super::config::{ConfigError, CycleConfig, Mode, chassis_control};
use super::result::{CycleResult, Entry, FailKind, Milestone, Source, Verdict};
use crate::observe::{AcpiState, HostPhase, Observation, boot_restart_cause};

/// An S2 this long after power came back on is noted as late.
pub const LATE_S2: Duration = Duration::from_secs(1);

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send Chassis Control with this data byte, now, and report the answer as
    /// [`Observation::CommandAnswered`].
    SendCommand(u8),
    /// A line for the log (already in the result's notes too).
    Note(String),
    /// The cycle is over. Always the last step; the tracker ignores everything after it.
    Done(CycleResult),
}

/// The off-on cycle's second command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PowerUp {
    /// Not an off-on cycle.
    NotNeeded,
    /// Waiting for the first sign of S5.
    AwaitingS5,
    /// To be sent at this time (since the run started).
    Due(Duration),
    Sent,
}

/// One cycle, from the command to S0 or a failure. See the crate documentation for the
/// rules; all times are [`Duration`]s since the run started, as the caller's clock gives them.
#[derive(Debug)]
pub struct CycleTracker {
    cfg: CycleConfig,
    /// When the command was asked for: time zero of the timeline.
    origin: Duration,
    mode: Mode,
    timeline: Vec<Entry>,
    notes: Vec<String>,
    /// Steps decided by the helpers while one observation is handled.
    out: Vec<Step>,
    verdict: Option<Verdict>,
    done: bool,
    last_answer: Duration,
    /// Set by the first unanswered request after an answer, for the notes.
    silent_since: Option<Duration>,
    /// An ACPI report (poll or SEL) showed the host out of S0 since the command. Until then a
    /// poll answering S0 is the state before the command took effect (or a BMC whose ACPI
    /// state does not follow the host), not the end of the cycle.
    acpi_left_s0: bool,
    /// The last phase an ACPI report (poll or SEL) gave, for noting what changed. Chassis
    /// power keeps its own account: a BMC whose ACPI state lags power must not make the
    /// host seem to go down twice.
    last_acpi_phase: Option<HostPhase>,
    power_off_seen: bool,
    /// Chassis power first seen back on after off, and last seen on since.
    power_on: Option<(Duration, Duration)>,
    /// An ACPI SEL record arrived this cycle: the BMC logs them, so the fallback waits for
    /// the SEL's S0 instead of assuming one.
    sel_acpi_seen: bool,
    sel_ids: BTreeSet<u16>,
    power_up: PowerUp,
}

impl CycleTracker {
    /// Starts a cycle at `at`: the first step is the command to send.
    pub fn start(config: CycleConfig, at: Duration) -> Result<(Self, Vec<Step>), ConfigError> {
        config.validate()?;
        let command = config.action.command();
        let power_up = if command == chassis_control::POWER_DOWN {
            PowerUp::AwaitingS5
        } else {
            PowerUp::NotNeeded
        };
        let mut t = Self {
            mode: config.mode,
            cfg: config,
            origin: at,
            timeline: Vec::new(),
            notes: Vec::new(),
            out: Vec::new(),
            verdict: None,
            done: false,
            last_answer: at,
            silent_since: None,
            acpi_left_s0: false,
            last_acpi_phase: None,
            power_off_seen: false,
            power_on: None,
            sel_acpi_seen: false,
            sel_ids: BTreeSet::new(),
            power_up,
        };
        t.record(Milestone::CommandSent, at, Source::Command);
        Ok((t, vec![Step::SendCommand(command)]))
    }

    /// Takes in one observation; returns what to do, in order.
    pub fn handle(&mut self, obs: Observation) -> Vec<Step> {
        if self.done {
            return Vec::new();
        }
        let at = obs.at();
        // A deadline that passed before this observation decides the cycle: what arrives
        // after it is too late to count, and the cycle ends at the deadline, however late
        // the observation that found it passed.
        if let Some((kind, deadline)) = self.expired(at) {
            self.fail_timed_out(deadline, kind);
            return self.flush(deadline);
        }
        if obs.is_answer() {
            if let Some(since) = self.silent_since.take() {
                self.note(
                    at,
                    format!(
                        "BMC answering again after {} without an answer",
                        secs(at.saturating_sub(since))
                    ),
                );
            }
            self.last_answer = self.last_answer.max(at);
        }
        match obs {
            Observation::Acpi { state, .. } => self.acpi(at, state, Source::AcpiPoll),
            Observation::AcpiUnsupported { .. } => {
                if self.mode == Mode::Acpi {
                    self.mode = Mode::Fallback;
                    self.note(
                        at,
                        "the BMC has no Get ACPI Power State (0xC1): following chassis power \
                         and the SEL"
                            .to_owned(),
                    );
                }
            }
            Observation::ChassisPower { on, .. } => self.chassis(at, on),
            Observation::SelAcpi {
                state, record_id, ..
            } => {
                // The same record read twice (a re-read after a dropped session) is one record.
                if self.sel_ids.insert(record_id) {
                    self.sel_acpi_seen = true;
                    self.acpi(at, state, Source::Sel(record_id));
                }
            }
            Observation::SelBootRestart {
                offset, record_id, ..
            } => {
                if self.sel_ids.insert(record_id) {
                    let cause = boot_restart_cause(offset).unwrap_or("reserved offset");
                    self.note(
                        at,
                        format!(
                            "SEL {record_id:#06x}: system boot/restart {cause} ({offset:#04x})"
                        ),
                    );
                }
            }
            Observation::CommandAnswered { code, cc, .. } => {
                if cc != 0 {
                    self.conclude(Verdict::Fail(FailKind::CommandRefused { code, cc }));
                }
            }
            Observation::NoAnswer { .. } => {
                if self.silent_since.is_none() {
                    self.silent_since = Some(self.last_answer);
                    let last = self.last_answer.saturating_sub(self.origin);
                    self.note(
                        at,
                        format!("BMC not answering (last answer at {})", secs(last)),
                    );
                }
            }
            Observation::Answered { .. } | Observation::Tick { .. } => {}
        }
        if self.verdict.is_none() {
            self.send_power_up_if_due(at);
        }
        self.flush(at)
    }

    /// Ends the cycle for a reason found outside the tracker (the transport's lockout).
    pub fn abort(&mut self, at: Duration, kind: FailKind) -> Vec<Step> {
        if self.done {
            return Vec::new();
        }
        self.conclude(Verdict::Fail(kind));
        self.flush(at)
    }

    /// The latest time the caller must hand in an observation (a [`Observation::Tick`] if
    /// nothing else): the S0 timeout, the BMC silence limit, or the off-on power up. `None`
    /// once done.
    pub fn next_deadline(&self) -> Option<Duration> {
        if self.done {
            return None;
        }
        let mut d = self.s0_deadline().min(self.silence_deadline());
        if let PowerUp::Due(t) = self.power_up {
            d = d.min(t);
        }
        Some(d)
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// How the state is learned now (switches to the fallback on the first 0xC1).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The milestones so far, in the order they were recorded.
    pub fn timeline(&self) -> &[Entry] {
        &self.timeline
    }

    fn s0_deadline(&self) -> Duration {
        self.origin.saturating_add(self.cfg.s0_timeout)
    }

    fn silence_deadline(&self) -> Duration {
        self.last_answer.saturating_add(self.cfg.bmc_silence_limit)
    }

    /// The deadline that passed first, if one has by `at`. A BMC gone silent before the S0
    /// timeout is why S0 was not seen, so silence wins a tie.
    fn expired(&self, at: Duration) -> Option<(FailKind, Duration)> {
        let silence = self.silence_deadline();
        let s0 = self.s0_deadline();
        if at >= silence && silence <= s0 {
            Some((FailKind::BmcSilent, silence))
        } else if at >= s0 {
            let last_seen = self.last_seen();
            Some((FailKind::S0Timeout { last_seen }, s0))
        } else {
            None
        }
    }

    /// How far the host got: the furthest milestone in boot order. Not the latest by time:
    /// a SEL record is timed when it is read, so after an off/on shorter than a poll the S5
    /// it reports can be stamped after the firmware init a poll already showed.
    fn last_seen(&self) -> Milestone {
        self.timeline
            .iter()
            .map(|e| e.milestone)
            .max()
            .unwrap_or(Milestone::CommandSent)
    }

    /// A timed-out cycle, with the notes that say what the timeline cannot.
    fn fail_timed_out(&mut self, at: Duration, kind: FailKind) {
        if let FailKind::S0Timeout { .. } = kind {
            let text = if self.mode == Mode::Fallback && !self.power_off_seen && !self.sel_acpi_seen
            {
                Some(
                    "without Get ACPI Power State or ACPI SEL records, and with power on \
                     throughout, a reset cannot be seen",
                )
            } else if !self.acpi_left_s0 && !self.power_off_seen {
                Some("nothing showed the host leaving S0: the command seems to have had no effect")
            } else if self.mode == Mode::Acpi && !self.acpi_left_s0 {
                Some(
                    "chassis power went off but the ACPI state never left S0: this BMC's ACPI \
                     state does not follow the host",
                )
            } else {
                None
            };
            if let Some(text) = text {
                self.note(at, text.to_owned());
            }
        }
        self.conclude(Verdict::Fail(kind));
    }

    /// An ACPI state from a poll or a SEL record.
    fn acpi(&mut self, at: Duration, state: AcpiState, source: Source) {
        let phase = HostPhase::for_state(state);
        match phase {
            HostPhase::Working => {
                // A record is a transition the BMC logged after the command: an S0 entered
                // again, so the host had left it, whether or not that was seen.
                if let Source::Sel(_) = source {
                    self.acpi_left_s0 = true;
                }
                if self.acpi_left_s0 {
                    self.reach_s0(at, source);
                }
            }
            HostPhase::FirmwareInit => {
                self.acpi_left_s0 = true;
                self.firmware_init(at, source);
            }
            HostPhase::Off => {
                self.acpi_left_s0 = true;
                let down_again = self.last_acpi_phase == Some(HostPhase::FirmwareInit);
                self.off(at, source, down_again);
            }
            HostPhase::Sleeping => {
                self.acpi_left_s0 = true;
                if self.last_acpi_phase != Some(phase) {
                    self.note(at, format!("host reported {state} ({source})"));
                }
            }
            // Says nothing about where the host is (acpigate answers it before it knows).
            HostPhase::Unknown => return,
        }
        self.last_acpi_phase = Some(phase);
    }

    fn chassis(&mut self, at: Duration, on: bool) {
        if !on {
            self.power_off_seen = true;
            let down_again = self.power_on.take().is_some();
            self.off(at, Source::ChassisPower, down_again);
            return;
        }
        if !self.power_off_seen {
            return;
        }
        match self.power_on {
            None => {
                self.power_on = Some((at, at));
                // Power coming back is where firmware init starts; an S2 report replaces it.
                if self.entry(Milestone::FirmwareInit).is_none() {
                    self.record(Milestone::FirmwareInit, at, Source::ChassisPower);
                }
            }
            Some((since, _)) => {
                self.power_on = Some((since, at));
                self.assume_s0_if_settled(at, since);
            }
        }
    }

    /// The fallback rule: with no ACPI state from polls and none in the SEL this cycle, power
    /// back on and still on `fallback_s0_after` later (the BMC answering, or the silence limit
    /// would have ended the cycle) counts as S0.
    fn assume_s0_if_settled(&mut self, at: Duration, since: Duration) {
        if self.mode != Mode::Fallback || self.sel_acpi_seen {
            return;
        }
        if at.saturating_sub(since) < self.cfg.fallback_s0_after {
            return;
        }
        self.note(
            at,
            format!(
                "S0 assumed: chassis power on for {} and the BMC logs no ACPI records",
                secs(at.saturating_sub(since))
            ),
        );
        self.reach_s0(at, Source::ChassisPower);
    }

    /// A sign of S5: an off state reported, or chassis power off. `down_again`: the same
    /// source had shown the host booting since an earlier S5.
    fn off(&mut self, at: Duration, source: Source, down_again: bool) {
        if self.entry(Milestone::S5).is_none() {
            self.record(Milestone::S5, at, source);
            if self.power_up == PowerUp::AwaitingS5 {
                self.power_up = PowerUp::Due(at.saturating_add(self.cfg.off_time));
            }
        } else if down_again {
            self.note(
                at,
                format!("host down again during firmware init ({source})"),
            );
        }
        if self.cfg.action.keeps_power() {
            self.conclude(Verdict::Fail(FailKind::UnexpectedState(Milestone::S5)));
        }
    }

    /// S2 reported. It is the firmware init milestone unless one was reported earlier; it
    /// replaces the chassis power stand-in (the time of power on stays in the notes).
    fn firmware_init(&mut self, at: Duration, source: Source) {
        let after = at.saturating_sub(self.origin);
        match self
            .timeline
            .iter_mut()
            .find(|e| e.milestone == Milestone::FirmwareInit)
        {
            None => self.record(Milestone::FirmwareInit, at, source),
            Some(e) if e.source == Source::ChassisPower => {
                let power_on = e.after;
                *e = Entry {
                    milestone: Milestone::FirmwareInit,
                    after,
                    source,
                };
                // Firmware that reports S2 only after a while (it enumerates first) is worth
                // a line; a gap shorter than that is the skew between two polls.
                let late = after.saturating_sub(power_on);
                if late >= LATE_S2 {
                    self.note(
                        at,
                        format!(
                            "S2 reported ({source}) {} after chassis power came back on (at {})",
                            secs(late),
                            secs(power_on)
                        ),
                    );
                }
            }
            Some(_) => {}
        }
    }

    fn reach_s0(&mut self, at: Duration, source: Source) {
        if self.entry(Milestone::S0).is_none() {
            self.record(Milestone::S0, at, source);
        }
        if let Some(fw) = self.entry(Milestone::FirmwareInit)
            && fw.source == Source::ChassisPower
        {
            let on = fw.after;
            self.note(
                at,
                format!(
                    "no S2 reported: firmware init seen only from chassis power (on at {})",
                    secs(on)
                ),
            );
        }
        if matches!(self.power_up, PowerUp::AwaitingS5 | PowerUp::Due(_)) {
            self.note(
                at,
                "host reached S0 before the power up was sent: it came back on by itself"
                    .to_owned(),
            );
        }
        let missing = self
            .cfg
            .expected_before_s0()
            .into_iter()
            .find(|m| self.entry(*m).is_none());
        self.conclude(match missing {
            Some(m) => Verdict::Fail(FailKind::SkippedState(m)),
            None => Verdict::Pass,
        });
    }

    fn send_power_up_if_due(&mut self, at: Duration) {
        if let PowerUp::Due(t) = self.power_up
            && at >= t
        {
            self.power_up = PowerUp::Sent;
            self.out.push(Step::SendCommand(chassis_control::POWER_UP));
            self.note(at, "power up sent (chassis control 0x01)".to_owned());
        }
    }

    fn entry(&self, m: Milestone) -> Option<&Entry> {
        self.timeline.iter().find(|e| e.milestone == m)
    }

    fn record(&mut self, milestone: Milestone, at: Duration, source: Source) {
        self.timeline.push(Entry {
            milestone,
            after: at.saturating_sub(self.origin),
            source,
        });
    }

    fn note(&mut self, at: Duration, text: String) {
        let line = format!("{}: {text}", secs(at.saturating_sub(self.origin)));
        self.notes.push(line.clone());
        self.out.push(Step::Note(line));
    }

    /// The first verdict stands: a later one in the same observation is a consequence.
    fn conclude(&mut self, verdict: Verdict) {
        if self.verdict.is_none() {
            self.verdict = Some(verdict);
        }
    }

    /// The steps decided, ending with `Done` once there is a verdict.
    fn flush(&mut self, at: Duration) -> Vec<Step> {
        let mut out = std::mem::take(&mut self.out);
        if let Some(verdict) = self.verdict {
            self.done = true;
            self.timeline.sort_by_key(|e| (e.after, e.milestone));
            out.push(Step::Done(CycleResult {
                verdict,
                timeline: self.timeline.clone(),
                notes: self.notes.clone(),
                ended: at.saturating_sub(self.origin),
                mode: self.mode,
            }));
        }
        out
    }
}

/// A duration for the notes: seconds with milliseconds.
fn secs(d: Duration) -> String {
    format!("{}.{:03} s", d.as_secs(), d.subsec_millis())
}
