//! The tracker against scripted BMCs, on virtual time.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use openbmc_vocab::DbusEnum;

use super::*;
use crate::observe::{AcpiState as A, Observation as O};

/// The run had been going for a while when the cycle started: every time in a script is
/// after the command, and the harness adds this.
const START: u64 = 7_000;

fn at(ms: u64) -> Duration {
    Duration::from_millis(START + ms)
}
fn poll(ms: u64, state: A) -> O {
    O::Acpi { at: at(ms), state }
}
fn sel(ms: u64, state: A, record_id: u16) -> O {
    O::SelAcpi {
        at: at(ms),
        state,
        record_id,
    }
}
fn power(ms: u64, on: bool) -> O {
    O::ChassisPower { at: at(ms), on }
}
fn ack(ms: u64, code: u8) -> O {
    O::CommandAnswered {
        at: at(ms),
        code,
        cc: 0,
    }
}
fn unsupported(ms: u64) -> O {
    O::AcpiUnsupported { at: at(ms) }
}
fn silence(ms: u64) -> O {
    O::NoAnswer { at: at(ms) }
}
fn answered(ms: u64) -> O {
    O::Answered { at: at(ms) }
}

/// What a cycle came to, as the caller saw it.
#[derive(Debug)]
struct Run {
    /// Commands sent, with their times after the command.
    sends: Vec<(u64, u8)>,
    /// Notes as they came out as steps.
    notes: Vec<String>,
    result: CycleResult,
}

/// Plays `script` as a caller would: each observation in turn, and a tick at every deadline
/// the tracker names before the next one; after the script, ticks until it is done.
fn run(cfg: CycleConfig, script: &[O]) -> Run {
    let (mut t, first) = CycleTracker::start(cfg, at(0)).expect("valid configuration");
    let mut sends = Vec::new();
    let mut notes = Vec::new();
    let mut result = None;
    let mut take = |steps: Vec<Step>, now: Duration| {
        for s in steps {
            assert!(result.is_none(), "a step after Done: {s:?}");
            match s {
                Step::SendCommand(code) => {
                    sends.push(((now - at(0)).as_millis() as u64, code));
                }
                Step::Note(n) => notes.push(n),
                Step::Done(r) => result = Some(r),
            }
        }
    };
    take(first, at(0));
    for &o in script {
        while let Some(d) = t.next_deadline()
            && d <= o.at()
        {
            take(t.handle(O::Tick { at: d }), d);
        }
        take(t.handle(o), o.at());
    }
    for _ in 0..1000 {
        let Some(d) = t.next_deadline() else { break };
        take(t.handle(O::Tick { at: d }), d);
    }
    assert!(t.is_done(), "not done after the script and its deadlines");
    Run {
        sends,
        notes,
        result: result.expect("Done"),
    }
}

fn cfg(action: Action) -> CycleConfig {
    CycleConfig {
        s0_timeout: Duration::from_secs(60),
        ..CycleConfig::new(action)
    }
}

struct Case {
    name: &'static str,
    cfg: CycleConfig,
    script: Vec<O>,
    verdict: Verdict,
    /// Milestones after the command (the command itself, at 0, is checked for every case).
    timeline: Vec<(Milestone, u64, Source)>,
    sends: Vec<(u64, u8)>,
    ended: u64,
    /// Each must be part of some note.
    notes: Vec<&'static str>,
    /// None may be part of any note.
    not_notes: Vec<&'static str>,
}

impl Default for Case {
    fn default() -> Self {
        Self {
            name: "",
            cfg: cfg(Action::Cycle),
            script: Vec::new(),
            verdict: Verdict::Pass,
            timeline: Vec::new(),
            sends: vec![(0, chassis_control::POWER_CYCLE)],
            ended: 0,
            notes: Vec::new(),
            not_notes: Vec::new(),
        }
    }
}

use Milestone::{FirmwareInit, S0, S5};
use Source::{AcpiPoll, ChassisPower, Sel};

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "power cycle on an acpigate BMC: polls and SEL records both tell",
            script: vec![
                ack(10, 0x02),
                // Answered before the host went down: the state before the command.
                poll(100, A::S0G0D0),
                power(100, true),
                poll(600, A::S5G2),
                power(600, false),
                sel(650, A::S5G2, 0x0010),
                poll(1100, A::S5G2),
                power(2600, true),
                poll(2600, A::S2D2),
                sel(2650, A::S2D2, 0x0011),
                poll(5100, A::S2D2),
                poll(8100, A::S0G0D0),
            ],
            timeline: vec![
                (S5, 600, AcpiPoll),
                (FirmwareInit, 2600, AcpiPoll),
                (S0, 8100, AcpiPoll),
            ],
            ended: 8100,
            // Power on and S2 in the same round of polls: nothing to say.
            not_notes: vec!["S2 reported", "no S2"],
            ..Case::default()
        },
        Case {
            name: "late S2: the first sign of firmware init is power, the S2 replaces it",
            script: vec![
                poll(600, A::S5G2),
                power(600, false),
                power(2500, true),
                poll(2500, A::S5G2),
                poll(3000, A::S5G2),
                sel(4500, A::S2D2, 0x0013),
                poll(4500, A::S2D2),
                poll(9000, A::S0G0D0),
            ],
            timeline: vec![
                (S5, 600, AcpiPoll),
                (FirmwareInit, 4500, Sel(0x0013)),
                (S0, 9000, AcpiPoll),
            ],
            ended: 9000,
            notes: vec![
                "4.500 s: S2 reported (sel:0x0013) 2.000 s after chassis power came back on (at 2.500 s)",
            ],
            not_notes: vec!["no S2"],
            ..Case::default()
        },
        Case {
            name: "off-on: power up only after the off time, S0 from the SEL",
            cfg: cfg(Action::OffOn),
            script: vec![
                ack(10, 0x00),
                power(500, false),
                poll(1000, A::S5G2),
                answered(5000),
                ack(5510, 0x01),
                power(6000, true),
                sel(7000, A::S2D2, 0x0020),
                sel(12000, A::S0G0D0, 0x0021),
            ],
            timeline: vec![
                (S5, 500, ChassisPower),
                (FirmwareInit, 7000, Sel(0x0020)),
                (S0, 12000, Sel(0x0021)),
            ],
            // Power went off at 500; the default off time is 5 s.
            sends: vec![(0, 0x00), (5500, 0x01)],
            ended: 12000,
            notes: vec!["power up sent"],
            not_notes: vec!["came back on by itself"],
            ..Case::default()
        },
        Case {
            name: "off-on: the host comes back before the power up (passes, noted)",
            cfg: cfg(Action::OffOn),
            script: vec![
                poll(400, A::S5G2),
                poll(1400, A::S2D2),
                poll(3000, A::S0G0D0),
            ],
            timeline: vec![
                (S5, 400, AcpiPoll),
                (FirmwareInit, 1400, AcpiPoll),
                (S0, 3000, AcpiPoll),
            ],
            sends: vec![(0, 0x00)],
            ended: 3000,
            notes: vec!["came back on by itself"],
            ..Case::default()
        },
        Case {
            name: "reset: S0, S2, S0 with power on",
            cfg: cfg(Action::Reset),
            script: vec![
                poll(100, A::S0G0D0),
                power(100, true),
                poll(600, A::S2D2),
                power(600, true),
                poll(5000, A::S0G0D0),
            ],
            timeline: vec![(FirmwareInit, 600, AcpiPoll), (S0, 5000, AcpiPoll)],
            sends: vec![(0, 0x03)],
            ended: 5000,
            ..Case::default()
        },
        Case {
            name: "reset on a platform that power cycles for it: the S5 is allowed",
            cfg: cfg(Action::Reset),
            script: vec![
                power(500, false),
                poll(500, A::S5G2),
                power(2500, true),
                poll(2500, A::S2D2),
                poll(6000, A::S0G0D0),
            ],
            timeline: vec![
                (S5, 500, ChassisPower),
                (FirmwareInit, 2500, AcpiPoll),
                (S0, 6000, AcpiPoll),
            ],
            sends: vec![(0, 0x03)],
            ended: 6000,
            ..Case::default()
        },
        Case {
            name: "warm reset: firmware init to S0 without S5, boot record noted",
            cfg: cfg(Action::Warm),
            script: vec![
                poll(100, A::S0G0D0),
                sel(400, A::S2D2, 0x0040),
                O::SelBootRestart {
                    at: at(400),
                    offset: 2,
                    record_id: 0x0041,
                },
                poll(600, A::S2D2),
                poll(4000, A::S0G0D0),
            ],
            timeline: vec![(FirmwareInit, 400, Sel(0x0040)), (S0, 4000, AcpiPoll)],
            sends: vec![(0, 0x03)],
            ended: 4000,
            notes: vec!["SEL 0x0041: system boot/restart initiated by warm reset (0x02)"],
            ..Case::default()
        },
        Case {
            name: "warm reset that powers off: unexpected S5, at once",
            cfg: cfg(Action::Warm),
            script: vec![poll(100, A::S0G0D0), power(700, false), poll(1200, A::S5G2)],
            verdict: Verdict::Fail(FailKind::UnexpectedState(S5)),
            timeline: vec![(S5, 700, ChassisPower)],
            sends: vec![(0, 0x03)],
            ended: 700,
            ..Case::default()
        },
        Case {
            name: "the host never reports S2: firmware init from chassis power, noted",
            script: vec![
                poll(500, A::S5G2),
                power(500, false),
                power(2500, true),
                poll(3000, A::S5G2),
                poll(9000, A::S0G0D0),
            ],
            timeline: vec![
                (S5, 500, AcpiPoll),
                (FirmwareInit, 2500, ChassisPower),
                (S0, 9000, AcpiPoll),
            ],
            ended: 9000,
            notes: vec![
                "no S2 reported: firmware init seen only from chassis power (on at 2.500 s)",
            ],
            // The BMC's ACPI state lagging power is not the host going down again.
            not_notes: vec!["down again"],
            ..Case::default()
        },
        Case {
            name: "hangs in firmware init: S0 timeout, last seen firmware init",
            script: vec![
                poll(500, A::S5G2),
                power(2500, true),
                poll(2600, A::S2D2),
                poll(30_000, A::S2D2),
                poll(59_999, A::S2D2),
                // After the deadline: too late to count.
                poll(61_000, A::S0G0D0),
            ],
            verdict: Verdict::Fail(FailKind::S0Timeout {
                last_seen: FirmwareInit,
            }),
            timeline: vec![(S5, 500, AcpiPoll), (FirmwareInit, 2600, AcpiPoll)],
            ended: 60_000,
            ..Case::default()
        },
        Case {
            name: "an instant off/on: the S5 record read after the S2 poll, last seen firmware init",
            script: vec![
                poll(3, A::S2D2),
                sel(6, A::S5G2, 4),
                sel(6, A::S2D2, 5),
                poll(25_000, A::S2D2),
                poll(50_000, A::S2D2),
                poll(59_999, A::S2D2),
            ],
            verdict: Verdict::Fail(FailKind::S0Timeout {
                last_seen: FirmwareInit,
            }),
            timeline: vec![(FirmwareInit, 3, AcpiPoll), (S5, 6, Sel(4))],
            ended: 60_000,
            ..Case::default()
        },
        Case {
            name: "S0 exactly at the timeout is too late",
            cfg: CycleConfig {
                s0_timeout: Duration::from_secs(10),
                ..cfg(Action::Reset)
            },
            script: vec![poll(500, A::S2D2), poll(10_000, A::S0G0D0)],
            verdict: Verdict::Fail(FailKind::S0Timeout {
                last_seen: FirmwareInit,
            }),
            timeline: vec![(FirmwareInit, 500, AcpiPoll)],
            sends: vec![(0, 0x03)],
            ended: 10_000,
            ..Case::default()
        },
        Case {
            name: "the command has no effect: S0 timeout after the command, noted",
            cfg: CycleConfig {
                s0_timeout: Duration::from_secs(20),
                ..cfg(Action::Cycle)
            },
            script: (0..40)
                .flat_map(|i| [poll(i * 500, A::S0G0D0), power(i * 500, true)])
                .collect(),
            verdict: Verdict::Fail(FailKind::S0Timeout {
                last_seen: Milestone::CommandSent,
            }),
            ended: 20_000,
            notes: vec!["the command seems to have had no effect"],
            ..Case::default()
        },
        Case {
            name: "a BMC whose ACPI state does not follow power: polls of S0 never count",
            cfg: CycleConfig {
                s0_timeout: Duration::from_secs(20),
                ..cfg(Action::Cycle)
            },
            script: vec![
                poll(100, A::S0G0D0),
                power(500, false),
                poll(600, A::S0G0D0),
                power(2500, true),
                poll(3000, A::S0G0D0),
                poll(15_000, A::S0G0D0),
            ],
            verdict: Verdict::Fail(FailKind::S0Timeout {
                last_seen: FirmwareInit,
            }),
            timeline: vec![(S5, 500, ChassisPower), (FirmwareInit, 2500, ChassisPower)],
            ended: 20_000,
            notes: vec!["the ACPI state never left S0"],
            ..Case::default()
        },
        Case {
            name: "the polls miss S5 and the SEL has none: skipped S5",
            script: vec![
                poll(100, A::S0G0D0),
                poll(3000, A::S2D2),
                poll(8000, A::S0G0D0),
            ],
            verdict: Verdict::Fail(FailKind::SkippedState(S5)),
            timeline: vec![(FirmwareInit, 3000, AcpiPoll), (S0, 8000, AcpiPoll)],
            ended: 8000,
            ..Case::default()
        },
        Case {
            name: "reset straight back to S0 by the SEL: skipped firmware init",
            cfg: cfg(Action::Reset),
            script: vec![poll(100, A::S0G0D0), sel(4000, A::S0G0D0, 0x0050)],
            verdict: Verdict::Fail(FailKind::SkippedState(FirmwareInit)),
            timeline: vec![(S0, 4000, Sel(0x0050))],
            sends: vec![(0, 0x03)],
            ended: 4000,
            ..Case::default()
        },
        Case {
            name: "an operator who expects only S0 passes a reset without S2",
            cfg: CycleConfig {
                expected: vec![S0],
                ..cfg(Action::Reset)
            },
            script: vec![sel(4000, A::S0G0D0, 0x0050)],
            timeline: vec![(S0, 4000, Sel(0x0050))],
            sends: vec![(0, 0x03)],
            ended: 4000,
            ..Case::default()
        },
        Case {
            name: "the BMC goes silent: fails at the silence limit after its last answer",
            script: vec![
                ack(10, 0x02),
                poll(500, A::S5G2),
                silence(5000),
                silence(10_000),
            ],
            verdict: Verdict::Fail(FailKind::BmcSilent),
            timeline: vec![(S5, 500, AcpiPoll)],
            ended: 30_500,
            notes: vec!["BMC not answering (last answer at 0.500 s)"],
            ..Case::default()
        },
        Case {
            name: "silence shorter than the limit is only noted",
            script: vec![
                poll(500, A::S5G2),
                silence(5000),
                silence(15_000),
                power(20_000, true),
                poll(20_000, A::S2D2),
                poll(25_000, A::S0G0D0),
            ],
            timeline: vec![
                (S5, 500, AcpiPoll),
                (FirmwareInit, 20_000, AcpiPoll),
                (S0, 25_000, AcpiPoll),
            ],
            ended: 25_000,
            notes: vec![
                "BMC not answering (last answer at 0.500 s)",
                "BMC answering again after 19.500 s without an answer",
            ],
            ..Case::default()
        },
        Case {
            name: "silence that would outlast the S0 timeout is a timeout",
            cfg: CycleConfig {
                s0_timeout: Duration::from_secs(40),
                ..cfg(Action::Cycle)
            },
            script: vec![poll(500, A::S5G2), poll(25_000, A::S2D2), silence(30_000)],
            verdict: Verdict::Fail(FailKind::S0Timeout {
                last_seen: FirmwareInit,
            }),
            timeline: vec![(S5, 500, AcpiPoll), (FirmwareInit, 25_000, AcpiPoll)],
            ended: 40_000,
            ..Case::default()
        },
        Case {
            name: "the BMC refuses the command",
            script: vec![O::CommandAnswered {
                at: at(20),
                code: 0x02,
                cc: 0xD5,
            }],
            verdict: Verdict::Fail(FailKind::CommandRefused {
                code: 0x02,
                cc: 0xD5,
            }),
            ended: 20,
            ..Case::default()
        },
        Case {
            name: "duplicates keep the earliest; a record read twice is one record",
            script: vec![
                sel(450, A::S5G2, 0x0060),
                poll(500, A::S5G2),
                power(500, false),
                sel(450, A::S5G2, 0x0060),
                poll(2400, A::S2D2),
                sel(2450, A::S2D2, 0x0061),
                power(2500, true),
                // The same record ID again, now saying S0: still the record already read.
                sel(3000, A::S0G0D0, 0x0061),
                poll(7000, A::S0G0D0),
                sel(7050, A::S0G0D0, 0x0062),
            ],
            timeline: vec![
                (S5, 450, Sel(0x0060)),
                (FirmwareInit, 2400, AcpiPoll),
                (S0, 7000, AcpiPoll),
            ],
            ended: 7000,
            not_notes: vec!["S2 reported"],
            ..Case::default()
        },
        Case {
            name: "fallback: 0xC1, then chassis power; S0 assumed after power stays on",
            script: vec![
                unsupported(100),
                power(100, true),
                power(600, false),
                power(1100, false),
                power(2600, true),
                power(7000, true),
                power(12_000, true),
                power(12_600, true),
            ],
            timeline: vec![
                (S5, 600, ChassisPower),
                (FirmwareInit, 2600, ChassisPower),
                (S0, 12_600, ChassisPower),
            ],
            ended: 12_600,
            notes: vec![
                "the BMC has no Get ACPI Power State (0xC1): following chassis power and the SEL",
                "S0 assumed: chassis power on for 10.000 s",
                "no S2 reported",
            ],
            ..Case::default()
        },
        Case {
            name: "fallback on a BMC that logs ACPI records: S0 only from the SEL",
            script: vec![
                unsupported(100),
                power(600, false),
                sel(700, A::S5G2, 0x0070),
                power(2600, true),
                sel(2700, A::S2D2, 0x0071),
                power(15_000, true),
                power(20_000, true),
                sel(21_000, A::S0G0D0, 0x0072),
            ],
            timeline: vec![
                (S5, 600, ChassisPower),
                (FirmwareInit, 2700, Sel(0x0071)),
                (S0, 21_000, Sel(0x0072)),
            ],
            ended: 21_000,
            not_notes: vec!["S0 assumed"],
            ..Case::default()
        },
        Case {
            name: "fallback, already known: no second announcement",
            cfg: CycleConfig {
                mode: Mode::Fallback,
                ..cfg(Action::Cycle)
            },
            script: vec![
                unsupported(100),
                power(600, false),
                power(2600, true),
                power(12_600, true),
            ],
            timeline: vec![
                (S5, 600, ChassisPower),
                (FirmwareInit, 2600, ChassisPower),
                (S0, 12_600, ChassisPower),
            ],
            ended: 12_600,
            not_notes: vec!["0xC1"],
            ..Case::default()
        },
        Case {
            name: "fallback reset with power on throughout cannot be seen: timeout, noted",
            cfg: CycleConfig {
                s0_timeout: Duration::from_secs(20),
                ..cfg(Action::Reset)
            },
            script: std::iter::once(unsupported(0))
                .chain((0..30).map(|i| power(i * 500, true)))
                .collect(),
            verdict: Verdict::Fail(FailKind::S0Timeout {
                last_seen: Milestone::CommandSent,
            }),
            sends: vec![(0, 0x03)],
            ended: 20_000,
            notes: vec!["a reset cannot be seen"],
            ..Case::default()
        },
        Case {
            name: "down again during firmware init: noted, the first times stand",
            script: vec![
                poll(500, A::S5G2),
                power(500, false),
                power(2500, true),
                poll(2500, A::S2D2),
                power(4000, false),
                poll(4000, A::S5G2),
                power(6000, true),
                poll(6000, A::S2D2),
                poll(9000, A::S0G0D0),
            ],
            // The S2 poll at the same instant as power on replaces the stand-in.
            timeline: vec![
                (S5, 500, AcpiPoll),
                (FirmwareInit, 2500, AcpiPoll),
                (S0, 9000, AcpiPoll),
            ],
            ended: 9000,
            notes: vec![
                "host down again during firmware init (chassis-power)",
                "host down again during firmware init (acpi-poll)",
            ],
            ..Case::default()
        },
        Case {
            name: "a sleep state on the way is noted once and counts as leaving S0",
            cfg: cfg(Action::Reset),
            script: vec![
                poll(300, A::S3D3),
                poll(800, A::S3D3),
                poll(1300, A::S2D2),
                poll(4000, A::S0G0D0),
            ],
            timeline: vec![(FirmwareInit, 1300, AcpiPoll), (S0, 4000, AcpiPoll)],
            sends: vec![(0, 0x03)],
            ended: 4000,
            notes: vec!["host reported S3_D3 (acpi-poll)"],
            ..Case::default()
        },
        Case {
            name: "Unknown says nothing: the S0 after it is still the state before",
            cfg: CycleConfig {
                s0_timeout: Duration::from_secs(5),
                ..cfg(Action::Reset)
            },
            script: vec![poll(300, A::Unknown), poll(800, A::S0G0D0)],
            verdict: Verdict::Fail(FailKind::S0Timeout {
                last_seen: Milestone::CommandSent,
            }),
            sends: vec![(0, 0x03)],
            ended: 5000,
            ..Case::default()
        },
    ]
}

#[test]
fn scripted_cycles() {
    for case in cases() {
        let r = run(case.cfg.clone(), &case.script);
        let name = case.name;
        assert_eq!(r.result.verdict, case.verdict, "{name}: {r:#?}");
        let mut want = vec![Entry {
            milestone: Milestone::CommandSent,
            after: Duration::ZERO,
            source: Source::Command,
        }];
        want.extend(case.timeline.iter().map(|&(milestone, ms, source)| Entry {
            milestone,
            after: Duration::from_millis(ms),
            source,
        }));
        assert_eq!(r.result.timeline, want, "{name}: {r:#?}");
        assert_eq!(r.sends, case.sends, "{name}");
        assert_eq!(r.result.ended, Duration::from_millis(case.ended), "{name}");
        // Every note came out as a step, and the result keeps them all.
        assert_eq!(r.notes, r.result.notes, "{name}");
        for n in &case.notes {
            assert!(
                r.notes.iter().any(|x| x.contains(n)),
                "{name}: no note with `{n}` in {:#?}",
                r.notes
            );
        }
        for n in &case.not_notes {
            assert!(
                !r.notes.iter().any(|x| x.contains(n)),
                "{name}: a note with `{n}` in {:#?}",
                r.notes
            );
        }
    }
}

#[test]
fn the_fallback_switch_is_announced_once_and_carried_in_the_result() {
    let r = run(
        cfg(Action::Cycle),
        &[
            unsupported(100),
            unsupported(600),
            power(600, false),
            unsupported(1100),
            power(2600, true),
            power(12_600, true),
        ],
    );
    assert_eq!(r.result.mode, Mode::Fallback);
    assert_eq!(r.notes.iter().filter(|n| n.contains("0xC1")).count(), 1);
    assert!(r.result.s0_assumed());
    assert_eq!(r.result.time_to_s0(), None, "an assumed S0 has no time");
}

#[test]
fn the_transport_ends_a_cycle_locked_out() {
    let (mut t, _) = CycleTracker::start(cfg(Action::Cycle), at(0)).expect("start");
    assert!(t.handle(poll(500, A::S5G2)).is_empty());
    let steps = t.abort(at(900), FailKind::LockedOut);
    let [Step::Done(r)] = &steps[..] else {
        panic!("{steps:?}")
    };
    assert_eq!(r.verdict, Verdict::Fail(FailKind::LockedOut));
    assert_eq!(r.ended, Duration::from_millis(900));
    assert_eq!(
        r.entry(S5).map(|e| e.after),
        Some(Duration::from_millis(500))
    );
    assert!(t.is_done());
    assert_eq!(t.next_deadline(), None);
    assert!(t.abort(at(1000), FailKind::BmcSilent).is_empty());
    assert!(t.handle(poll(1000, A::S0G0D0)).is_empty());
}

#[test]
fn deadlines_named_are_the_ones_that_act() {
    let (mut t, _) = CycleTracker::start(cfg(Action::OffOn), at(0)).expect("start");
    // Nothing seen yet: the silence limit (30 s) comes before the S0 timeout (60 s).
    assert_eq!(t.next_deadline(), Some(at(30_000)));
    t.handle(power(1000, false));
    assert_eq!(t.next_deadline(), Some(at(6000)), "the power up");
    assert_eq!(t.handle(O::Tick { at: at(5999) }), vec![]);
    let steps = t.handle(O::Tick { at: at(6000) });
    assert_eq!(steps.first(), Some(&Step::SendCommand(0x01)));
    assert_eq!(
        t.next_deadline(),
        Some(at(31_000)),
        "silence, after the last answer"
    );
}

#[test]
fn configurations_that_cannot_work_are_refused() {
    let refused = [
        (
            CycleConfig {
                s0_timeout: Duration::ZERO,
                ..CycleConfig::new(Action::Cycle)
            },
            ConfigError::Zero("S0 timeout"),
        ),
        (
            CycleConfig {
                bmc_silence_limit: Duration::ZERO,
                ..CycleConfig::new(Action::Cycle)
            },
            ConfigError::Zero("BMC silence limit"),
        ),
        (
            CycleConfig {
                expected: vec![Milestone::CommandSent, S0],
                ..CycleConfig::new(Action::Cycle)
            },
            ConfigError::CommandExpected,
        ),
        (
            CycleConfig {
                expected: vec![S5, S0],
                ..CycleConfig::new(Action::Warm)
            },
            ConfigError::S5OnWarmReset,
        ),
    ];
    for (c, want) in refused {
        assert_eq!(c.validate(), Err(want.clone()));
        assert_eq!(CycleTracker::start(c, at(0)).err(), Some(want));
    }
    for a in Action::ALL {
        assert_eq!(CycleConfig::new(a).validate(), Ok(()), "{a}");
        assert_eq!(a.name().parse::<Action>(), Ok(a));
    }
    assert_eq!(
        "warm-ish".parse::<Action>(),
        Err(ConfigError::UnknownAction("warm-ish".into()))
    );
    assert_eq!(
        parse_expected("s5, firmware-init,s0"),
        Ok(vec![S5, FirmwareInit, S0])
    );
    assert_eq!(parse_expected("s2,s0"), Ok(vec![FirmwareInit, S0]));
    assert_eq!(
        parse_expected("s5,s3"),
        Err(ConfigError::UnknownMilestone("s3".into()))
    );
}

#[test]
fn actions_send_their_chassis_control_and_expect_their_milestones() {
    let table = [
        (Action::Cycle, 0x02, vec![S5, FirmwareInit, S0]),
        (Action::OffOn, 0x00, vec![S5, FirmwareInit, S0]),
        (Action::Reset, 0x03, vec![FirmwareInit, S0]),
        (Action::Warm, 0x03, vec![FirmwareInit, S0]),
    ];
    for (a, code, expected) in table {
        assert_eq!(a.command(), code, "{a}");
        assert_eq!(a.default_expected(), expected, "{a}");
        let (_, steps) = CycleTracker::start(CycleConfig::new(a), at(0)).expect("start");
        assert_eq!(steps, vec![Step::SendCommand(code)], "{a}");
    }
}

/// Random BMCs: any mix of observations, at random times, in random order. The tracker
/// never panics, says Done exactly once and nothing after, by the S0 timeout at the latest;
/// a pass has S0 before the timeout and every expected milestone; the timeline is in time
/// order with each milestone once. Seeded: a failure names its seed.
#[test]
fn random_observations_always_end_in_time() {
    let mut verdicts = std::collections::BTreeSet::new();
    for seed in 1..=500u64 {
        match catch_unwind(AssertUnwindSafe(|| random_cycle(seed))) {
            Ok(v) => {
                verdicts.insert(match v {
                    Verdict::Pass => "pass",
                    Verdict::Fail(k) => k.name(),
                });
            }
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                panic!("seed {seed}: {msg}");
            }
        }
    }
    // The random BMCs reach every verdict the observations alone can give.
    let all = [
        "pass",
        "s0-timeout",
        "skipped-state",
        "unexpected-state",
        "bmc-silent",
        "command-refused",
    ];
    assert_eq!(verdicts, all.into_iter().collect());
}

fn random_cycle(seed: u64) -> Verdict {
    let mut rng = fastrand::Rng::with_seed(seed);
    let action = Action::ALL[rng.usize(..Action::ALL.len())];
    let config = CycleConfig {
        s0_timeout: Duration::from_millis(rng.u64(1000..120_000)),
        bmc_silence_limit: Duration::from_millis(rng.u64(500..40_000)),
        off_time: Duration::from_millis(rng.u64(0..10_000)),
        fallback_s0_after: Duration::from_millis(rng.u64(0..20_000)),
        mode: if rng.bool() {
            Mode::Acpi
        } else {
            Mode::Fallback
        },
        ..CycleConfig::new(action)
    };
    let timeout = config.s0_timeout;
    let expected = config.expected.clone();
    let (mut t, _) = CycleTracker::start(config, at(0)).expect("start");
    let mut now = at(0);
    let mut done: Option<CycleResult> = None;
    for _ in 0..rng.usize(0..300) {
        // Mostly forwards, sometimes the same instant, now and then backwards (a caller bug
        // must not panic the tracker either).
        now = match rng.u8(..10) {
            0 => now.saturating_sub(Duration::from_millis(rng.u64(..500))),
            1 => now,
            _ => now + Duration::from_millis(rng.u64(..3000)),
        };
        let state = A::ALL[rng.usize(..A::ALL.len())];
        let o = match rng.u8(..11) {
            0 | 1 => O::Acpi { at: now, state },
            2 => O::AcpiUnsupported { at: now },
            3 | 4 => O::ChassisPower {
                at: now,
                on: rng.bool(),
            },
            5 => O::SelAcpi {
                at: now,
                state,
                record_id: rng.u16(..40),
            },
            6 => O::SelBootRestart {
                at: now,
                offset: rng.u8(..),
                record_id: rng.u16(..40),
            },
            7 => O::CommandAnswered {
                at: now,
                code: rng.u8(..4),
                cc: if rng.u8(..20) == 0 { 0xC0 } else { 0 },
            },
            8 => O::NoAnswer { at: now },
            9 => O::Answered { at: now },
            _ => O::Tick { at: now },
        };
        for s in t.handle(o) {
            assert!(done.is_none(), "a step after Done: {s:?}");
            if let Step::Done(r) = s {
                done = Some(r);
            }
        }
    }
    if done.is_none() {
        // The S0 timeout has passed by then, whatever happened.
        for s in t.handle(O::Tick {
            at: at(0) + timeout,
        }) {
            if let Step::Done(r) = s {
                done = Some(r);
            }
        }
    }
    let r = done.expect("Done by the S0 timeout");
    assert!(t.is_done() && t.next_deadline().is_none());
    assert!(
        r.ended <= timeout,
        "ended {:?}, timeout {timeout:?}",
        r.ended
    );
    let mut seen = std::collections::BTreeSet::new();
    for w in r.timeline.windows(2) {
        assert!(
            w[0].after <= w[1].after,
            "timeline out of order: {:?}",
            r.timeline
        );
    }
    for e in &r.timeline {
        assert!(seen.insert(e.milestone), "twice: {:?}", r.timeline);
    }
    if r.passed() {
        let s0 = r.entry(S0).expect("a pass has S0");
        assert!(
            s0.after < timeout,
            "S0 at {:?}, timeout {timeout:?}",
            s0.after
        );
        for m in expected {
            assert!(r.entry(m).is_some(), "pass without {m}: {r:?}");
        }
    }
    if let Verdict::Fail(FailKind::S0Timeout { .. }) = r.verdict {
        assert_eq!(r.ended, timeout);
    }
    r.verdict
}
