//! One power cycle: what to send, what to watch for, and the verdict.
//!
//! [`CycleTracker`] is the state machine; [`CycleConfig`] says what the cycle does and must
//! see; [`CycleResult`] is what it comes to. The rules are in the crate documentation.

mod config;
mod result;
mod tracker;

pub use config::{
    Action, ConfigError, CycleConfig, DEFAULT_BMC_SILENCE_LIMIT, DEFAULT_FALLBACK_S0_AFTER,
    DEFAULT_OFF_TIME, DEFAULT_S0_TIMEOUT, Mode, chassis_control, parse_expected,
};
pub use result::{CycleResult, Entry, FailKind, Milestone, Source, Verdict};
pub use tracker::{CycleTracker, LATE_S2, Step};

#[cfg(test)]
mod tests;
