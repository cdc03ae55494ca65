//! What a cycle comes to: its timeline of milestones and its verdict.

use std::fmt;
use std::time::Duration;

use super::config::Mode;

/// A point a cycle passes. Declared in the order a boot passes them; `Ord` is that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Milestone {
    /// The tool asked for the chassis control (time zero of the cycle).
    CommandSent,
    /// The host is off: an off state (S5, S4/S5, G3, S4, override, legacy off) reported, or
    /// chassis power seen off.
    S5,
    /// Firmware init: S2 reported, or, when the host reports no S2, chassis power seen back
    /// on after off.
    FirmwareInit,
    /// The host is working again.
    S0,
}

impl Milestone {
    /// The spelling in the JSON lines and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::CommandSent => "command",
            Self::S5 => "s5",
            Self::FirmwareInit => "firmware-init",
            Self::S0 => "s0",
        }
    }
}

impl fmt::Display for Milestone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What told the tool a milestone was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// The tool itself: the command it sent.
    Command,
    /// A Get ACPI Power State poll.
    AcpiPoll,
    /// A "System ACPI Power State" SEL record, by record ID.
    Sel(u16),
    /// Get Chassis Status: power off (S5), power back on (firmware init when no S2 is
    /// reported), or on and staying on (S0 by the fallback rule).
    ChassisPower,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Command => f.write_str("command"),
            Self::AcpiPoll => f.write_str("acpi-poll"),
            Self::Sel(id) => write!(f, "sel:{id:#06x}"),
            Self::ChassisPower => f.write_str("chassis-power"),
        }
    }
}

/// One milestone of a cycle: when it was first seen, after the command, and by what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub milestone: Milestone,
    pub after: Duration,
    pub source: Source,
}

/// Why a cycle failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailKind {
    /// S0 not seen within the S0 timeout; `last_seen` is the furthest milestone reached, in
    /// boot order (the command, at least).
    S0Timeout { last_seen: Milestone },
    /// S0 was reached without passing this expected milestone (the first one missing).
    SkippedState(Milestone),
    /// The host passed a milestone the action rules out: S5 in a warm reset.
    UnexpectedState(Milestone),
    /// The BMC answered nothing for the silence limit.
    BmcSilent,
    /// The BMC refused a chassis control the tool sent.
    CommandRefused { code: u8, cc: u8 },
    /// The BMC locked the user out. Decided by the transport, which ends the cycle with
    /// [`super::CycleTracker::abort`].
    LockedOut,
}

impl FailKind {
    /// The kind's name in the JSON lines.
    pub fn name(&self) -> &'static str {
        match self {
            Self::S0Timeout { .. } => "s0-timeout",
            Self::SkippedState(_) => "skipped-state",
            Self::UnexpectedState(_) => "unexpected-state",
            Self::BmcSilent => "bmc-silent",
            Self::CommandRefused { .. } => "command-refused",
            Self::LockedOut => "locked-out",
        }
    }
}

impl fmt::Display for FailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::S0Timeout { last_seen } => write!(f, "no S0 in time (last seen: {last_seen})"),
            Self::SkippedState(m) => write!(f, "skipped {m}"),
            Self::UnexpectedState(m) => write!(f, "unexpected {m}"),
            Self::BmcSilent => f.write_str("BMC silent"),
            Self::CommandRefused { code, cc } => {
                write!(f, "chassis control {code:#04x} refused (cc {cc:#04x})")
            }
            Self::LockedOut => f.write_str("locked out"),
        }
    }
}

/// A cycle's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Pass,
    Fail(FailKind),
}

/// One finished cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleResult {
    pub verdict: Verdict,
    /// Milestones in the order they were seen (by time; a tie in the boot order).
    pub timeline: Vec<Entry>,
    /// What else the log should say, in order, each starting with its time after the command.
    pub notes: Vec<String>,
    /// When the cycle ended, after the command: S0, or the moment it failed.
    pub ended: Duration,
    /// How the state was learned when it ended: the next cycle's [`super::CycleConfig::mode`].
    pub mode: Mode,
}

impl CycleResult {
    /// A result made up for a test: `(milestone, ms after the command, source)` entries.
    #[cfg(test)]
    pub(crate) fn made_up(
        verdict: Verdict,
        entries: &[(Milestone, u64, Source)],
        ended_ms: u64,
    ) -> Self {
        Self {
            verdict,
            timeline: entries
                .iter()
                .map(|&(milestone, t, source)| Entry {
                    milestone,
                    after: Duration::from_millis(t),
                    source,
                })
                .collect(),
            notes: Vec::new(),
            ended: Duration::from_millis(ended_ms),
            mode: Mode::Acpi,
        }
    }

    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }

    pub fn failure(&self) -> Option<FailKind> {
        match self.verdict {
            Verdict::Pass => None,
            Verdict::Fail(kind) => Some(kind),
        }
    }

    /// The entry of a milestone, if it was reached.
    pub fn entry(&self, milestone: Milestone) -> Option<&Entry> {
        self.timeline.iter().find(|e| e.milestone == milestone)
    }

    /// A pass whose S0 came from the fallback rule (chassis power staying on), not from the
    /// host: its times say nothing about the boot, so the statistics leave it out.
    pub fn s0_assumed(&self) -> bool {
        self.passed()
            && self
                .entry(Milestone::S0)
                .is_some_and(|e| e.source == Source::ChassisPower)
    }

    /// Command to S0, for a pass whose S0 the host or BMC reported.
    pub fn time_to_s0(&self) -> Option<Duration> {
        if !self.passed() || self.s0_assumed() {
            return None;
        }
        self.entry(Milestone::S0).map(|e| e.after)
    }

    /// Firmware init to S0, for a pass with both.
    pub fn firmware_init_time(&self) -> Option<Duration> {
        let s0 = self.time_to_s0()?;
        let fw = self.entry(Milestone::FirmwareInit)?;
        Some(s0.saturating_sub(fw.after))
    }
}
