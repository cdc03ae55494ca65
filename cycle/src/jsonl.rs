//! One JSON line per cycle, for `--out run.jsonl`: what a nightly job greps, diffs or loads.
//!
//! ```json
//! {"cycle":3,"verdict":"fail","failure":{"kind":"s0-timeout","last_seen":"firmware-init"},
//!  "ended_ms":300000,"timeline":[{"milestone":"command","ms":0,"source":"command"},
//!  {"milestone":"s5","ms":612,"source":"acpi-poll"},{"milestone":"firmware-init","ms":2604,
//!  "source":"sel:0x0012"}],"notes":["…"]}
//! ```
//!
//! (one line in the file). `failure` is `null` for a pass; otherwise an object whose `kind`
//! is one of `s0-timeout` (with `last_seen`), `skipped-state` and `unexpected-state` (with
//! `milestone`), `bmc-silent`, `command-refused` (with `command` and `cc`, both numbers),
//! `locked-out`. Milestones are `command`, `s5`, `firmware-init`, `s0`; `ms` is whole
//! milliseconds after the command; sources are `command`, `acpi-poll`, `sel:0x<record id>`,
//! `chassis-power`. `ended_ms` is when the cycle ended (S0, or the failure).

use serde::Serialize;

use crate::cycle::{CycleResult, FailKind, Verdict};

/// One cycle as its JSON line's object; borrows the result.
#[derive(Debug, Serialize)]
pub struct CycleLine<'a> {
    pub cycle: usize,
    pub verdict: &'static str,
    pub failure: Option<Failure>,
    pub ended_ms: u64,
    pub timeline: Vec<EntryLine>,
    pub notes: &'a [String],
}

/// A failure in the JSON line: its kind and what goes with it.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Failure {
    S0Timeout { last_seen: &'static str },
    SkippedState { milestone: &'static str },
    UnexpectedState { milestone: &'static str },
    BmcSilent,
    CommandRefused { command: u8, cc: u8 },
    LockedOut,
}

impl From<FailKind> for Failure {
    fn from(k: FailKind) -> Self {
        match k {
            FailKind::S0Timeout { last_seen } => Self::S0Timeout {
                last_seen: last_seen.name(),
            },
            FailKind::SkippedState(m) => Self::SkippedState {
                milestone: m.name(),
            },
            FailKind::UnexpectedState(m) => Self::UnexpectedState {
                milestone: m.name(),
            },
            FailKind::BmcSilent => Self::BmcSilent,
            FailKind::CommandRefused { code, cc } => Self::CommandRefused { command: code, cc },
            FailKind::LockedOut => Self::LockedOut,
        }
    }
}

/// A timeline entry in the JSON line.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct EntryLine {
    pub milestone: &'static str,
    pub ms: u64,
    pub source: String,
}

/// Whole milliseconds, saturating (a cycle is minutes, so it never does).
fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<'a> CycleLine<'a> {
    /// Cycle number `cycle` (from 1) of the run.
    pub fn new(cycle: usize, r: &'a CycleResult) -> Self {
        Self {
            cycle,
            verdict: match r.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail(_) => "fail",
            },
            failure: r.failure().map(Failure::from),
            ended_ms: millis(r.ended),
            timeline: r
                .timeline
                .iter()
                .map(|e| EntryLine {
                    milestone: e.milestone.name(),
                    ms: millis(e.after),
                    source: e.source.to_string(),
                })
                .collect(),
            notes: &r.notes,
        }
    }
}

/// The line for cycle `cycle` (from 1), without the newline.
pub fn line(cycle: usize, r: &CycleResult) -> Result<String, serde_json::Error> {
    serde_json::to_string(&CycleLine::new(cycle, r))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::cycle::{Entry, Milestone, Mode, Source};

    fn result(verdict: Verdict) -> CycleResult {
        let e = |milestone, ms, source| Entry {
            milestone,
            after: Duration::from_millis(ms),
            source,
        };
        CycleResult {
            verdict,
            timeline: vec![
                e(Milestone::CommandSent, 0, Source::Command),
                e(Milestone::S5, 1234, Source::AcpiPoll),
                e(Milestone::FirmwareInit, 3000, Source::Sel(0x0012)),
                e(Milestone::S0, 9876, Source::ChassisPower),
            ],
            notes: vec!["1.000 s: a note with \"quotes\"\nand a newline".to_owned()],
            ended: Duration::from_micros(9_876_999),
            mode: Mode::Acpi,
        }
    }

    #[test]
    fn a_pass_parses_back_with_its_fields() {
        let text = line(4, &result(Verdict::Pass)).expect("serializes");
        assert!(!text.contains('\n'), "one line: {text}");
        let v: Value = serde_json::from_str(&text).expect("parses");
        assert_eq!(v["cycle"], 4);
        assert_eq!(v["verdict"], "pass");
        assert_eq!(v["failure"], Value::Null);
        assert_eq!(v["ended_ms"], 9876);
        assert_eq!(
            v["timeline"],
            json!([
                {"milestone": "command", "ms": 0, "source": "command"},
                {"milestone": "s5", "ms": 1234, "source": "acpi-poll"},
                {"milestone": "firmware-init", "ms": 3000, "source": "sel:0x0012"},
                {"milestone": "s0", "ms": 9876, "source": "chassis-power"},
            ])
        );
        assert_eq!(
            v["notes"],
            json!(["1.000 s: a note with \"quotes\"\nand a newline"])
        );
    }

    #[test]
    fn every_failure_kind_has_its_object() {
        let cases = [
            (
                FailKind::S0Timeout {
                    last_seen: Milestone::FirmwareInit,
                },
                json!({"kind": "s0-timeout", "last_seen": "firmware-init"}),
            ),
            (
                FailKind::SkippedState(Milestone::S5),
                json!({"kind": "skipped-state", "milestone": "s5"}),
            ),
            (
                FailKind::UnexpectedState(Milestone::S5),
                json!({"kind": "unexpected-state", "milestone": "s5"}),
            ),
            (FailKind::BmcSilent, json!({"kind": "bmc-silent"})),
            (
                FailKind::CommandRefused { code: 2, cc: 0xD5 },
                json!({"kind": "command-refused", "command": 2, "cc": 213}),
            ),
            (FailKind::LockedOut, json!({"kind": "locked-out"})),
        ];
        for (kind, want) in cases {
            let text = line(1, &result(Verdict::Fail(kind))).expect("serializes");
            let v: Value = serde_json::from_str(&text).expect("parses");
            assert_eq!(v["verdict"], "fail", "{kind:?}");
            assert_eq!(v["failure"], want, "{kind:?}");
            // The kind is the same word the library uses.
            assert_eq!(v["failure"]["kind"], kind.name(), "{kind:?}");
        }
    }
}
