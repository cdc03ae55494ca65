//! What one cycle does and what it must see: the action, the expected milestones, the limits.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::result::Milestone;

/// Chassis Control (Chassis 0x00, cmd 0x02) request data bytes the tool sends.
pub mod chassis_control {
    pub const POWER_DOWN: u8 = 0x00;
    pub const POWER_UP: u8 = 0x01;
    pub const POWER_CYCLE: u8 = 0x02;
    pub const HARD_RESET: u8 = 0x03;
}

/// What the tool does to the host each cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Chassis control power cycle (0x02): the BMC turns power off and on again.
    Cycle,
    /// Power down (0x00); once the host is seen off (S5) and has stayed off for
    /// [`CycleConfig::off_time`], power up (0x01). The tool, not the BMC, times the off phase.
    OffOn,
    /// Hard reset (0x03). Power may or may not drop on the way (platforms differ); an S5 on
    /// the way is recorded and allowed.
    Reset,
    /// A warm reset. IPMI has no warm reset in Chassis Control, so this sends the same hard
    /// reset (0x03) — which OpenBMC's IPMI servers, ipmi-handlers included, carry out as the
    /// host's `ForceWarmReboot`, the reset line without a power cycle — and asserts what a
    /// warm reset means: the host goes through firmware init to S0 with power on all the
    /// way. Any sign of S5 (an off state reported, or chassis power seen off) fails the cycle
    /// as [`super::FailKind::UnexpectedState`].
    Warm,
}

impl Action {
    pub const ALL: [Self; 4] = [Self::Cycle, Self::OffOn, Self::Reset, Self::Warm];

    /// The command-line spelling: `cycle`, `off-on`, `reset`, `warm`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cycle => "cycle",
            Self::OffOn => "off-on",
            Self::Reset => "reset",
            Self::Warm => "warm",
        }
    }

    /// The Chassis Control data byte that starts the cycle.
    pub fn command(self) -> u8 {
        match self {
            Self::Cycle => chassis_control::POWER_CYCLE,
            Self::OffOn => chassis_control::POWER_DOWN,
            Self::Reset | Self::Warm => chassis_control::HARD_RESET,
        }
    }

    /// The milestones a host must pass by default: through S5 when power goes off, through
    /// firmware init always.
    pub fn default_expected(self) -> Vec<Milestone> {
        match self {
            Self::Cycle | Self::OffOn => {
                vec![Milestone::S5, Milestone::FirmwareInit, Milestone::S0]
            }
            Self::Reset | Self::Warm => vec![Milestone::FirmwareInit, Milestone::S0],
        }
    }

    /// Whether power must stay on through the cycle (an S5 fails it).
    pub fn keeps_power(self) -> bool {
        self == Self::Warm
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Action {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| ConfigError::UnknownAction(s.to_owned()))
    }
}

/// How the tool learns the host's state from this BMC. A property of the BMC, so it lasts
/// the run: each [`super::CycleResult`] carries the mode it ended in, for the next cycle's
/// configuration, and the switch to the fallback is announced once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Get ACPI Power State polls, chassis power and the SEL.
    #[default]
    Acpi,
    /// The BMC has no Get ACPI Power State (it answered 0xC1): chassis power and the SEL only.
    Fallback,
}

/// One cycle's configuration. [`CycleConfig::new`] gives the defaults for an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleConfig {
    pub action: Action,
    /// S0 must be seen before this much time has passed since the command was sent.
    pub s0_timeout: Duration,
    /// The milestones the host must pass, besides the command; S0 is always required, listed
    /// or not. Order does not matter: they are checked as S5, firmware init, S0.
    pub expected: Vec<Milestone>,
    /// No answer from the BMC for this long fails the cycle as BMC silent.
    pub bmc_silence_limit: Duration,
    /// `OffOn`: how long the host stays off (from the first sign of S5) before power up.
    pub off_time: Duration,
    /// Fallback mode with no ACPI SEL records: chassis power on for this long after coming
    /// back counts as S0 (see the crate's fallback rule).
    pub fallback_s0_after: Duration,
    /// How the state is learned (the previous cycle's [`super::CycleResult::mode`]).
    pub mode: Mode,
}

/// Defaults: the issue's `--s0-timeout 300s`.
pub const DEFAULT_S0_TIMEOUT: Duration = Duration::from_secs(300);
/// Long enough for a BMC to ride out a busy moment (a SEL flush, a D-Bus restart), short
/// enough that a dead BMC does not hold the run for the whole S0 timeout.
pub const DEFAULT_BMC_SILENCE_LIMIT: Duration = Duration::from_secs(30);
/// Supplies need a few seconds off to discharge before a power up means a cold start.
pub const DEFAULT_OFF_TIME: Duration = Duration::from_secs(5);
/// See the fallback rule in the crate documentation.
pub const DEFAULT_FALLBACK_S0_AFTER: Duration = Duration::from_secs(10);

impl CycleConfig {
    /// The defaults for `action`.
    pub fn new(action: Action) -> Self {
        Self {
            action,
            s0_timeout: DEFAULT_S0_TIMEOUT,
            expected: action.default_expected(),
            bmc_silence_limit: DEFAULT_BMC_SILENCE_LIMIT,
            off_time: DEFAULT_OFF_TIME,
            fallback_s0_after: DEFAULT_FALLBACK_S0_AFTER,
            mode: Mode::Acpi,
        }
    }

    /// Refuses a configuration no cycle could meet or that says nothing.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.s0_timeout.is_zero() {
            return Err(ConfigError::Zero("S0 timeout"));
        }
        if self.bmc_silence_limit.is_zero() {
            return Err(ConfigError::Zero("BMC silence limit"));
        }
        if self.expected.contains(&Milestone::CommandSent) {
            return Err(ConfigError::CommandExpected);
        }
        if self.action.keeps_power() && self.expected.contains(&Milestone::S5) {
            return Err(ConfigError::S5OnWarmReset);
        }
        Ok(())
    }

    /// The expected milestones other than S0, in the order a boot passes them, once each.
    pub(super) fn expected_before_s0(&self) -> Vec<Milestone> {
        let mut m: Vec<Milestone> = self
            .expected
            .iter()
            .copied()
            .filter(|m| matches!(m, Milestone::S5 | Milestone::FirmwareInit))
            .collect();
        m.sort();
        m.dedup();
        m
    }
}

/// A configuration or command-line value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown action `{0}` (cycle, off-on, reset or warm)")]
    UnknownAction(String),
    #[error("unknown milestone `{0}` (s5, firmware-init or s0)")]
    UnknownMilestone(String),
    #[error("the {0} must be more than zero")]
    Zero(&'static str),
    #[error("the command is not a state the host passes; expect s5, firmware-init or s0")]
    CommandExpected,
    #[error("a warm reset keeps power on: it cannot be expected to pass S5")]
    S5OnWarmReset,
}

/// Parses the proposed `--expect s5,firmware-init,s0` list.
pub fn parse_expected(list: &str) -> Result<Vec<Milestone>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "s5" => Ok(Milestone::S5),
            "firmware-init" | "s2" => Ok(Milestone::FirmwareInit),
            "s0" => Ok(Milestone::S0),
            other => Err(ConfigError::UnknownMilestone(other.to_owned())),
        })
        .collect()
}
