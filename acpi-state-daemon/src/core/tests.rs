//! Table-driven tests of every transition, with virtual time.

use super::*;
use AcpiState as A;
use HostTarget as T;
use ProgressStage as P;
use openbmc_vocab::DbusEnum;
use openbmc_vocab::boot::ProgressStage;

/// A step: the input and what must follow.
struct Step {
    input: Input,
    sys: AcpiState,
    targets: &'static [HostTarget],
}

fn chassis(s: ChassisPowerState) -> Input {
    Input::ChassisPower {
        state: Some(s),
        last_change_ms: None,
    }
}
fn on() -> Input {
    chassis(ChassisPowerState::On)
}
fn off() -> Input {
    chassis(ChassisPowerState::Off)
}
fn write(s: AcpiState) -> Input {
    Input::AcpiWrite {
        sys: Some(s),
        dev: None,
    }
}
/// postd's current code, read when it arrives (or when we start): the baseline.
fn postd_arrives() -> Input {
    Input::PostCode(0x00)
}
fn os(s: OsStatus) -> Input {
    Input::OsState(Some(s))
}
fn step(input: Input, sys: AcpiState, targets: &'static [HostTarget]) -> Step {
    Step {
        input,
        sys,
        targets,
    }
}

/// Virtual time: `usec` after one fixed origin on both clocks.
fn at_usec(usec: u64) -> Now {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(std::time::Instant::now);
    Now {
        mono: origin + std::time::Duration::from_micros(usec),
        wall_usec: 1_700_000_000_000_000 + usec,
    }
}

/// A clock that advances 1 ms per input.
struct Clock(u64);
impl Clock {
    fn tick(&mut self) -> Now {
        self.0 += 1_000;
        at_usec(self.0)
    }
}

fn targets_of(actions: &[Action]) -> Vec<HostTarget> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StartTarget(t) => Some(*t),
            _ => None,
        })
        .collect()
}

fn run(name: &str, policy: Policy, persisted: Option<Persisted>, steps: &[Step]) -> AcpiCore {
    let mut core = AcpiCore::new(policy, persisted);
    let mut clock = Clock(0);
    for (i, s) in steps.iter().enumerate() {
        let actions = core
            .handle(clock.tick(), s.input.clone())
            .unwrap_or_else(|e| panic!("{name} step {i}: refused: {e}"));
        assert_eq!(core.sys(), s.sys, "{name} step {i}: {:?}", s.input);
        assert_eq!(core.phase(), HostPhase::for_state(s.sys), "{name} step {i}");
        assert_eq!(
            targets_of(&actions),
            s.targets,
            "{name} step {i}: {:?}",
            s.input
        );
        // Invariants: every change is saved; into Working it is saved before it is announced,
        // anywhere else the announcement (the gate's close) comes first, phase before ACPI.
        if let Some(p) = actions
            .iter()
            .position(|a| matches!(a, Action::PublishAcpi { sys: Some(_), .. }))
        {
            let saved = actions.iter().position(|a| matches!(a, Action::Persist(_)));
            let Some(q) = saved else {
                panic!("{name} step {i}: not saved: {actions:?}");
            };
            if core.phase() == HostPhase::Working {
                assert!(
                    q < p,
                    "{name} step {i}: announced before saved: {actions:?}"
                );
            } else {
                assert!(
                    p < q,
                    "{name} step {i}: close waited for the save: {actions:?}"
                );
                if let Some(ph) = actions
                    .iter()
                    .position(|a| matches!(a, Action::PublishPhase(_)))
                {
                    assert!(ph < p, "{name} step {i}: phase after ACPI: {actions:?}");
                }
            }
        }
        // What is announced is what was decided: the last values match the core after it.
        let last_sys = actions.iter().rev().find_map(|a| match a {
            Action::PublishAcpi { sys, .. } => *sys,
            _ => None,
        });
        if let Some(sys) = last_sys {
            assert_eq!(sys, core.sys(), "{name} step {i}");
        }
        if let Some(v) = actions.iter().rev().find_map(|a| match a {
            Action::PublishPhase(v) => Some(*v),
            _ => None,
        }) {
            assert_eq!(v, core.phase_view(), "{name} step {i}");
        }
    }
    core
}

#[test]
fn transitions() {
    use ChassisPowerState::{On, TransitioningToOff, TransitioningToOn};
    let d = Policy::default;
    let cases: Vec<(&str, Policy, Vec<Step>)> = vec![
        (
            "cold boot",
            d(),
            vec![
                step(off(), A::S5G2, &[T::S5]),
                step(on(), A::S2D2, &[T::S2]),
                step(write(A::S2D2), A::S2D2, &[]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(write(A::S5G2), A::S5G2, &[T::S5]),
                step(off(), A::S5G2, &[]),
            ],
        ),
        (
            "abrupt power loss in S0",
            d(),
            vec![
                step(off(), A::S5G2, &[T::S5]),
                step(on(), A::S2D2, &[T::S2]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(off(), A::S5G2, &[T::S5]),
            ],
        ),
        (
            "transitioning states count as their destination",
            d(),
            vec![
                step(off(), A::S5G2, &[T::S5]),
                step(chassis(TransitioningToOn), A::S2D2, &[T::S2]),
                step(chassis(On), A::S2D2, &[]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(chassis(TransitioningToOff), A::S5G2, &[T::S5]),
            ],
        ),
        (
            "duplicate inputs change nothing",
            d(),
            vec![
                step(off(), A::S5G2, &[T::S5]),
                step(off(), A::S5G2, &[]),
                step(on(), A::S2D2, &[T::S2]),
                step(on(), A::S2D2, &[]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(write(A::S0G0D0), A::S0G0D0, &[]),
                step(on(), A::S0G0D0, &[]),
            ],
        ),
        (
            "host S2 before chassis is known, then chassis arrives on",
            d(),
            vec![
                step(write(A::S2D2), A::S2D2, &[T::S2]),
                step(on(), A::S2D2, &[]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
            ],
        ),
        (
            "host S0 before chassis is known, chassis then says off",
            d(),
            vec![
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(off(), A::S5G2, &[T::S5]),
            ],
        ),
        (
            "warm reset by POST_COMPLETE, then POST complete again",
            d(),
            vec![
                step(os(OsStatus::Inactive), A::Unknown, &[]),
                step(off(), A::S5G2, &[T::S5]),
                step(on(), A::S2D2, &[T::S2]),
                step(os(OsStatus::Standby), A::S0G0D0, &[T::S0]),
                step(os(OsStatus::Inactive), A::S2D2, &[T::S2]),
                step(os(OsStatus::Inactive), A::S2D2, &[]),
                step(os(OsStatus::Standby), A::S0G0D0, &[T::S0]),
            ],
        ),
        (
            "POST complete ignored as S0 when configured so",
            Policy {
                post_complete_means_working: false,
                ..d()
            },
            vec![
                step(os(OsStatus::Inactive), A::Unknown, &[]),
                step(off(), A::S5G2, &[T::S5]),
                step(on(), A::S2D2, &[T::S2]),
                step(os(OsStatus::Standby), A::S2D2, &[]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
            ],
        ),
        (
            "POST_COMPLETE while power off is ignored",
            d(),
            vec![
                step(off(), A::S5G2, &[T::S5]),
                step(os(OsStatus::Inactive), A::S5G2, &[]),
                step(os(OsStatus::Standby), A::S5G2, &[]),
            ],
        ),
        (
            "POST code while working is a warm reset without POST_COMPLETE",
            d(),
            vec![
                step(postd_arrives(), A::Unknown, &[]),
                step(off(), A::S5G2, &[T::S5]),
                step(on(), A::S2D2, &[T::S2]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(Input::PostCode(0x19), A::S2D2, &[T::S2]),
                step(Input::PostCode(0x20), A::S2D2, &[]),
            ],
        ),
        (
            "POST code while working is ignored when POST_COMPLETE exists",
            d(),
            vec![
                step(postd_arrives(), A::Unknown, &[]),
                step(os(OsStatus::Standby), A::Unknown, &[]),
                step(on(), A::S0G0D0, &[T::S0]),
                step(Input::PostCode(0x19), A::S0G0D0, &[]),
            ],
        ),
        (
            "POST code while working counts when the OS status does not track POST",
            d(),
            vec![
                step(postd_arrives(), A::Unknown, &[]),
                step(os(OsStatus::Inactive), A::Unknown, &[]),
                step(on(), A::S2D2, &[T::S2]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(Input::PostCode(0x19), A::S2D2, &[T::S2]),
            ],
        ),
        (
            "POST codes can be told to mean nothing",
            Policy {
                post_codes_mean_firmware_init: false,
                ..d()
            },
            vec![
                step(postd_arrives(), A::Unknown, &[]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(Input::PostCode(0x19), A::S0G0D0, &[]),
            ],
        ),
        (
            "POST code with power off is ignored",
            d(),
            vec![
                step(postd_arrives(), A::Unknown, &[]),
                step(off(), A::S5G2, &[T::S5]),
                step(Input::PostCode(0x19), A::S5G2, &[]),
            ],
        ),
        (
            "POST code while unknown means firmware init",
            d(),
            vec![
                step(postd_arrives(), A::Unknown, &[]),
                step(Input::PostCode(0x01), A::S2D2, &[T::S2]),
            ],
        ),
        (
            "host state stands in for a missing chassis",
            d(),
            vec![
                step(Input::HostState(Some(HostState::Off)), A::S5G2, &[T::S5]),
                step(
                    Input::HostState(Some(HostState::TransitioningToRunning)),
                    A::S2D2,
                    &[T::S2],
                ),
                step(Input::HostState(Some(HostState::Running)), A::S2D2, &[]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(Input::HostState(Some(HostState::Off)), A::S5G2, &[T::S5]),
            ],
        ),
        (
            "host state is ignored once chassis power is known",
            d(),
            vec![
                step(on(), A::S2D2, &[T::S2]),
                step(Input::HostState(Some(HostState::Off)), A::S2D2, &[]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
            ],
        ),
        (
            "chassis vanishing keeps the state; coming back on from off re-enters firmware init",
            d(),
            vec![
                step(off(), A::S5G2, &[T::S5]),
                step(
                    Input::ChassisPower {
                        state: None,
                        last_change_ms: None,
                    },
                    A::S5G2,
                    &[],
                ),
                step(on(), A::S2D2, &[T::S2]),
            ],
        ),
        (
            "chassis vanishing in S0 and coming back on keeps S0",
            d(),
            vec![
                step(on(), A::S2D2, &[T::S2]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(
                    Input::ChassisPower {
                        state: None,
                        last_change_ms: None,
                    },
                    A::S0G0D0,
                    &[],
                ),
                step(on(), A::S0G0D0, &[]),
            ],
        ),
        (
            "sleep states close the gate and start no target",
            d(),
            vec![
                step(on(), A::S2D2, &[T::S2]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(write(A::S3D3), A::S3D3, &[]),
                step(write(A::S0G0D0), A::S0G0D0, &[]),
                step(write(A::G3), A::G3, &[T::S5]),
                step(write(A::S5G2), A::S5G2, &[]),
            ],
        ),
    ];
    for (name, policy, steps) in cases {
        run(name, policy, None, &steps);
    }
}

/// The first POST code read after a (re)start, or after postd (re)appears, is whatever the
/// host wrote last, maybe long ago: a baseline, never news (no reset, no firmware init, no
/// BootProgress stage). Every later read is news, including one postd announced just before
/// it left.
#[test]
fn the_first_post_code_read_after_a_start_or_postd_arriving_is_a_baseline() {
    let code = Input::PostCode;
    let gone = || Input::PostCodeSourceGone;
    let cases: Vec<(&str, Vec<Step>)> = vec![
        (
            "first read after start, while working: no reset; the next code is one",
            vec![
                step(on(), A::S2D2, &[T::S2]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(code(0x19), A::S0G0D0, &[]),
                step(code(0x19), A::S2D2, &[T::S2]),
            ],
        ),
        (
            "first read after start, state unknown: nothing; the next code is firmware init",
            vec![
                step(code(0x19), A::Unknown, &[]),
                step(code(0x01), A::S2D2, &[T::S2]),
            ],
        ),
        (
            "postd leaves and comes back: its first read is a baseline again",
            vec![
                step(on(), A::S2D2, &[T::S2]),
                step(postd_arrives(), A::S2D2, &[]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(gone(), A::S0G0D0, &[]),
                step(code(0x19), A::S0G0D0, &[]),
                step(code(0x19), A::S2D2, &[T::S2]),
            ],
        ),
        (
            "a code postd announced just before it left is news",
            vec![
                step(on(), A::S2D2, &[T::S2]),
                step(postd_arrives(), A::S2D2, &[]),
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(code(0x19), A::S2D2, &[T::S2]),
                step(gone(), A::S2D2, &[]),
            ],
        ),
        (
            "postd leaving twice without a read in between: still one baseline",
            vec![
                step(write(A::S0G0D0), A::S0G0D0, &[T::S0]),
                step(gone(), A::S0G0D0, &[]),
                step(gone(), A::S0G0D0, &[]),
                step(code(0x19), A::S0G0D0, &[]),
                step(code(0x20), A::S2D2, &[T::S2]),
            ],
        ),
    ];
    for (name, steps) in cases {
        run(name, Policy::default(), None, &steps);
    }
    // A baseline names no BootProgress stage either; the same code read again does.
    let mut core = AcpiCore::new(
        Policy {
            post_code_stages: vec![(0x10, 0x2F, P::MemoryInit)],
            ..Policy::default()
        },
        None,
    );
    let mut clock = Clock(0);
    core.handle(clock.tick(), on()).expect("on");
    let stages = |core: &mut AcpiCore, clock: &mut Clock, i: Input| -> Vec<ProgressStage> {
        core.handle(clock.tick(), i)
            .expect("ok")
            .into_iter()
            .filter_map(|a| match a {
                Action::SetBootProgress(w) => Some(w.stage),
                _ => None,
            })
            .collect()
    };
    assert_eq!(stages(&mut core, &mut clock, code(0x11)), []);
    assert_eq!(stages(&mut core, &mut clock, code(0x11)), [P::MemoryInit]);
}

#[test]
fn running_states_are_refused_while_power_is_off_and_change_nothing() {
    let mut core = AcpiCore::new(Policy::default(), None);
    let mut clock = Clock(0);
    core.handle(clock.tick(), off()).expect("off");
    for &s in AcpiState::ALL {
        let before = (core.sys(), core.dev(), core.phase(), core.generation());
        let r = core.handle(
            clock.tick(),
            Input::AcpiWrite {
                sys: Some(s),
                dev: Some(A::S3D3),
            },
        );
        let running = matches!(
            HostPhase::for_state(s),
            HostPhase::Working | HostPhase::FirmwareInit | HostPhase::Sleeping
        );
        if running {
            assert_eq!(r, Err(Refusal::PowerOff(s)));
            // Neither byte was applied.
            assert_eq!(
                (core.sys(), core.dev(), core.phase(), core.generation()),
                before
            );
        } else {
            assert!(r.is_ok(), "{s}");
        }
    }
}

#[test]
fn device_state_writes_are_stored_and_published_alone() {
    let mut core = AcpiCore::new(Policy::default(), None);
    let a = core
        .handle(
            Clock(0).tick(),
            Input::AcpiWrite {
                sys: None,
                dev: Some(A::S3D3),
            },
        )
        .expect("ok");
    assert_eq!(core.dev(), A::S3D3);
    assert_eq!(core.sys(), A::Unknown);
    assert!(a.contains(&Action::PublishAcpi {
        sys: None,
        dev: Some(A::S3D3)
    }));
    assert!(matches!(a.first(), Some(Action::Persist(p)) if p.dev == A::S3D3));
    assert!(targets_of(&a).is_empty());
    // Both at once: one publish flags both.
    let a = core
        .handle(
            Clock(5).tick(),
            Input::AcpiWrite {
                sys: Some(A::S0G0D0),
                dev: Some(A::S0G0D0),
            },
        )
        .expect("ok");
    assert!(a.contains(&Action::PublishAcpi {
        sys: Some(A::S0G0D0),
        dev: Some(A::S0G0D0)
    }));
}

/// Two transitions decided before the first is announced (a power cycle with a short off
/// time): each announcement carries its own values, so observers see S5 and then S2, with
/// generations counting up, never the later state twice.
#[test]
fn each_transition_announces_its_own_values() {
    let mut core = AcpiCore::new(Policy::default(), None);
    let power = |on: bool| Input::ChassisPower {
        state: Some(if on {
            ChassisPowerState::On
        } else {
            ChassisPowerState::Off
        }),
        last_change_ms: None,
    };
    core.handle(Clock(0).tick(), power(true)).expect("ok");
    let g = core.generation();
    let off = core.handle(Clock(10).tick(), power(false)).expect("ok");
    let on = core.handle(Clock(20).tick(), power(true)).expect("ok");
    let announced = |acts: &[Action]| {
        let sys = acts.iter().find_map(|a| match a {
            Action::PublishAcpi { sys, .. } => *sys,
            _ => None,
        });
        let phase = acts.iter().find_map(|a| match a {
            Action::PublishPhase(v) => Some((v.phase, v.generation)),
            _ => None,
        });
        let logged = acts.iter().find_map(|a| match a {
            Action::LogTransition {
                to,
                phase,
                generation,
                ..
            } => Some((*to, *phase, *generation)),
            _ => None,
        });
        (sys, phase, logged)
    };
    assert_eq!(
        announced(&off),
        (
            Some(A::S5G2),
            Some((HostPhase::Off, g + 1)),
            Some((A::S5G2, HostPhase::Off, g + 1))
        )
    );
    assert_eq!(
        announced(&on),
        (
            Some(A::S2D2),
            Some((HostPhase::FirmwareInit, g + 2)),
            Some((A::S2D2, HostPhase::FirmwareInit, g + 2))
        )
    );
}

fn saved(sys: AcpiState, since_usec: u64) -> Option<Persisted> {
    Some(Persisted {
        sys,
        dev: A::Unknown,
        since_usec,
        generation: 40,
    })
}

#[test]
fn generation_keeps_counting_across_restarts() {
    let mut core = AcpiCore::new(Policy::default(), saved(A::S0G0D0, 1));
    assert_eq!(core.generation(), 40);
    let a = core.handle(Clock(0).tick(), off()).expect("ok");
    assert_eq!(core.generation(), 41);
    // What is saved is what is announced, so the next restart continues from it.
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Persist(p) if p.generation == 41))
    );
    // A file from before generations were saved reads as 0.
    let old: Persisted = serde_json::from_str(
        r#"{"sys":"xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI.S5_G2","dev":"xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI.Unknown","since_usec":5}"#,
    )
    .expect("old file");
    assert_eq!(old.generation, 0);
}

#[test]
fn restart_trusts_saved_state_only_where_inputs_agree() {
    let wall0 = 1_700_000_000_000_000u64;
    let on_changed = |ms: Option<u64>| Input::ChassisPower {
        state: Some(ChassisPowerState::On),
        last_change_ms: ms,
    };
    // (name, saved, inputs before chassis, chassis input, expected)
    type Case = (
        &'static str,
        Option<Persisted>,
        Vec<Input>,
        Input,
        AcpiState,
    );
    let cases: Vec<Case> = vec![
        ("no saved state, power on", None, vec![], on(), A::S2D2),
        ("no saved state, power off", None, vec![], off(), A::S5G2),
        (
            "saved S0, power on",
            saved(A::S0G0D0, wall0),
            vec![],
            on(),
            A::S0G0D0,
        ),
        (
            "saved S0, power off",
            saved(A::S0G0D0, wall0),
            vec![],
            off(),
            A::S5G2,
        ),
        (
            "saved S5, power on: stale",
            saved(A::S5G2, wall0),
            vec![],
            on(),
            A::S2D2,
        ),
        (
            "saved S2, power on",
            saved(A::S2D2, wall0),
            vec![],
            on(),
            A::S2D2,
        ),
        (
            "saved S3, power on",
            saved(A::S3D3, wall0),
            vec![],
            on(),
            A::S3D3,
        ),
        (
            "saved S0, power changed after it was saved",
            saved(A::S0G0D0, wall0),
            vec![],
            on_changed(Some(wall0 / 1000 + 5)),
            A::S2D2,
        ),
        (
            "saved S0, power changed before it was saved",
            saved(A::S0G0D0, wall0),
            vec![],
            on_changed(Some(wall0 / 1000 - 5)),
            A::S0G0D0,
        ),
        (
            "saved S0 but POST_COMPLETE deasserted: firmware init",
            saved(A::S0G0D0, wall0),
            vec![os(OsStatus::Inactive)],
            on(),
            A::S2D2,
        ),
        (
            "saved S2 but POST complete: working",
            saved(A::S2D2, wall0),
            vec![os(OsStatus::Standby)],
            on(),
            A::S0G0D0,
        ),
        (
            "no saved state, POST complete: working",
            None,
            vec![os(OsStatus::Standby)],
            on(),
            A::S0G0D0,
        ),
    ];
    for (name, persisted, before, chassis_input, want) in cases {
        let mut core = AcpiCore::new(Policy::default(), persisted);
        let mut clock = Clock(0);
        for i in before {
            core.handle(clock.tick(), i).expect("input");
        }
        assert_eq!(
            core.phase(),
            HostPhase::Unknown,
            "{name}: decided before chassis"
        );
        let a = core.handle(clock.tick(), chassis_input).expect("chassis");
        assert_eq!(core.sys(), want, "{name}");
        // A restart into a known state starts its target once, so the platform's units follow.
        assert_eq!(
            targets_of(&a),
            HostTarget::for_state(want).into_iter().collect::<Vec<_>>(),
            "{name}"
        );
    }
}

#[test]
fn boot_progress_follows_phases_and_post_codes_once_each() {
    let policy = Policy {
        post_code_stages: vec![(0x10, 0x2F, P::MemoryInit), (0x60, 0x7F, P::PciInit)],
        ..Policy::default()
    };
    let mut core = AcpiCore::new(policy, None);
    let mut clock = Clock(0);
    let mut writes = Vec::new();
    for i in [
        postd_arrives(),
        off(),
        on(),
        Input::PostCode(0x05),
        Input::PostCode(0x11),
        Input::PostCode(0x12),
        Input::PostCode(0x61),
        write(A::S2D2),
        write(A::S0G0D0),
        write(A::S0G0D0),
        off(),
    ] {
        for a in core.handle(clock.tick(), i).expect("ok") {
            if let Action::SetBootProgress(w) = a {
                writes.push(w.stage);
            }
        }
    }
    assert_eq!(
        writes,
        [
            P::Unspecified,
            P::PrimaryProcInit,
            P::MemoryInit,
            P::PciInit,
            P::OsRunning,
            P::Unspecified
        ]
    );
    let mut quiet = AcpiCore::new(
        Policy {
            boot_progress: false,
            ..Policy::default()
        },
        None,
    );
    let a = quiet.handle(Clock(0).tick(), on()).expect("ok");
    assert!(!a.iter().any(|a| matches!(a, Action::SetBootProgress(_))));
}

#[test]
fn timeline_counts_windows_and_times_with_virtual_time() {
    let mut core = AcpiCore::new(Policy::default(), None);
    let at = |ms: u64| at_usec(ms * 1000);
    core.handle(at(0), off()).expect("ok");
    core.handle(at(100), on()).expect("ok"); // boot starts, window 1
    core.handle(at(300), write(A::Unknown)).expect("ok"); // firmware wobble: gate stays shut
    core.handle(at(400), write(A::S2D2)).expect("ok"); // window 2
    let a = core.handle(at(1_100), write(A::S0G0D0)).expect("ok");
    let t = core.timeline();
    assert_eq!(
        t,
        Timeline {
            boot_count: 1,
            firmware_init_usec: 200_000 + 700_000,
            time_to_working_usec: 1_000_000,
            gate_windows: 2,
        }
    );
    assert!(a.contains(&Action::LogBootSummary(t)));
    assert!(a.contains(&Action::PublishTimeline(t)));
    // Resume from sleep is not a boot.
    core.handle(at(2_000), write(A::S3D3)).expect("ok");
    core.handle(at(2_500), write(A::S0G0D0)).expect("ok");
    assert_eq!(core.timeline().boot_count, 1);
    // A boot abandoned by power loss does not count.
    core.handle(at(3_000), off()).expect("ok");
    core.handle(at(3_100), on()).expect("ok");
    core.handle(at(3_200), off()).expect("ok");
    core.handle(at(4_000), on()).expect("ok");
    core.handle(at(4_500), write(A::S0G0D0)).expect("ok");
    assert_eq!(core.timeline().boot_count, 2);
    assert_eq!(core.timeline().gate_windows, 1);
    assert_eq!(core.timeline().time_to_working_usec, 500_000);
}

#[test]
fn phase_metadata_changes_only_with_the_phase() {
    let mut core = AcpiCore::new(Policy::default(), None);
    let mut clock = Clock(0);
    core.handle(clock.tick(), on()).expect("ok");
    let (g, since) = (core.generation(), core.since_usec());
    assert_eq!(
        core.reason(),
        "chassis power on at start, state unknown: assuming firmware init"
    );
    // S4 and S5 are both Off: sys changes, phase does not.
    core.handle(clock.tick(), write(A::S5G2)).expect("ok");
    let g2 = core.generation();
    assert_eq!(g2, g + 1);
    core.handle(clock.tick(), write(A::S4)).expect("ok");
    assert_eq!(core.generation(), g2);
    assert!(core.since_usec() > since);
}

/// Where the triple test starts: each state the core can be in, reached the way the daemon
/// reaches it.
fn starting_states() -> Vec<(&'static str, Option<Persisted>, Vec<Input>)> {
    use HostState::{Off, Running};
    let no_interface = |host_epoch| Input::BootProgress {
        host_epoch,
        outcome: ProgressOutcome::NoInterface { error: "e".into() },
    };
    vec![
        ("fresh, nothing known", None, vec![]),
        (
            "fresh, a saved S0 not confirmed yet",
            saved(A::S0G0D0, 1),
            vec![],
        ),
        ("saved S0 restored", saved(A::S0G0D0, 1), vec![on()]),
        ("off", None, vec![off()]),
        ("firmware init", None, vec![off(), on()]),
        ("working", None, vec![off(), on(), write(A::S0G0D0)]),
        (
            "working, POST_COMPLETE asserted, postd's baseline read",
            None,
            vec![
                os(OsStatus::Inactive),
                off(),
                on(),
                os(OsStatus::Standby),
                postd_arrives(),
            ],
        ),
        (
            "sleeping",
            None,
            vec![on(), write(A::S0G0D0), write(A::S3D3)],
        ),
        (
            "chassis gone while working",
            None,
            vec![
                on(),
                write(A::S0G0D0),
                Input::ChassisPower {
                    state: None,
                    last_change_ms: None,
                },
            ],
        ),
        (
            "no chassis, host off",
            None,
            vec![Input::HostState(Some(Off))],
        ),
        (
            "no chassis, host running",
            None,
            vec![Input::HostState(Some(Off)), Input::HostState(Some(Running))],
        ),
        (
            "BootProgress stopped: a host without it",
            None,
            vec![Input::HostState(Some(Off)), off(), no_interface(1)],
        ),
        (
            "BootProgress stopped: a host without it, before it was seen",
            None,
            vec![off(), no_interface(0)],
        ),
    ]
}

/// Every sequence of three inputs from every starting state in [`starting_states`]: no panic,
/// and the invariants hold after each input.
#[test]
fn every_triple_of_inputs_from_every_starting_state_keeps_invariants() {
    let outcome = |host_epoch, outcome| Input::BootProgress {
        host_epoch,
        outcome,
    };
    let mut inputs: Vec<Input> = vec![
        on(),
        off(),
        chassis(ChassisPowerState::TransitioningToOn),
        Input::ChassisPower {
            state: None,
            last_change_ms: None,
        },
        Input::HostState(Some(HostState::Running)),
        Input::HostState(Some(HostState::Off)),
        Input::HostState(None),
        os(OsStatus::Standby),
        os(OsStatus::Inactive),
        Input::OsState(None),
        Input::PostCode(0x33),
        Input::PostCodeSourceGone,
        outcome(1, ProgressOutcome::NoInterface { error: "e".into() }),
        outcome(0, ProgressOutcome::NoInterface { error: "e".into() }),
        outcome(0, ProgressOutcome::NoHost { error: "e".into() }),
        outcome(
            1,
            ProgressOutcome::Rejected {
                stage: P::OsRunning,
                error: "e".into(),
            },
        ),
    ];
    for &s in AcpiState::ALL {
        inputs.push(write(s));
    }
    let starts = starting_states();
    let mut covered = std::collections::BTreeSet::new();
    for (start, persisted, prefix) in &starts {
        // The start is built once; each triple runs on a copy of it.
        let mut base = AcpiCore::new(Policy::default(), *persisted);
        let mut clock = Clock(0);
        let mut base_target = None;
        for i in prefix {
            let a = base.handle(clock.tick(), i.clone()).expect("prefix");
            if let Some(t) = targets_of(&a).last() {
                base_target = Some(*t);
            }
        }
        covered.insert(format!("{:?}", base.phase()));
        for a in &inputs {
            for b in &inputs {
                for c in &inputs {
                    let mut core = base.clone();
                    let mut clock = Clock(clock.0);
                    let mut last_target = base_target;
                    for i in [a, b, c] {
                        let before = (core.sys(), core.dev(), core.phase(), core.generation());
                        let what = || format!("from {start}: {a:?} {b:?} {c:?}, at {i:?}");
                        match core.handle(clock.tick(), i.clone()) {
                            Ok(actions) => {
                                for t in targets_of(&actions) {
                                    assert_ne!(
                                        Some(t),
                                        last_target,
                                        "same target twice: {}",
                                        what()
                                    );
                                    last_target = Some(t);
                                }
                                if core.sys() == before.0 {
                                    assert!(
                                        !actions.iter().any(|x| matches!(
                                            x,
                                            Action::PublishAcpi { sys: Some(_), .. }
                                        )),
                                        "publish without change: {}",
                                        what()
                                    );
                                }
                                // A phase announcement is a new phase with the next generation.
                                for x in &actions {
                                    if let Action::PublishPhase(v) = x {
                                        assert_ne!(v.phase, before.2, "{}", what());
                                        assert_eq!(v.generation, before.3 + 1, "{}", what());
                                    }
                                }
                            }
                            Err(_) => assert_eq!(
                                (core.sys(), core.dev(), core.phase(), core.generation()),
                                before,
                                "a refusal changed something: {}",
                                what()
                            ),
                        }
                        assert_eq!(core.phase(), HostPhase::for_state(core.sys()));
                        // Power known off => the phase is off or unknown, never a running one.
                        if core.chassis == Some(ChassisPowerState::Off) {
                            assert!(
                                matches!(core.phase(), HostPhase::Off | HostPhase::Unknown),
                                "{} -> {:?}",
                                what(),
                                core.sys()
                            );
                        }
                    }
                }
            }
        }
    }
    // The starts cover every phase the core has.
    assert_eq!(
        covered.len(),
        HostPhase::ALL.len(),
        "phases covered by the starts: {covered:?}"
    );
}

/// Long random sequences of every input against what observers rely on: each phase
/// announcement is a new phase with the next generation (never the same generation twice,
/// none skipped), and is saved with that generation; no target is started twice in a row;
/// the ACPI value announced last is the core's; and no BootProgress write goes out while the
/// writes are stopped (a missing interface or host, until a host service appears). Seeded,
/// so a failure names its seed.
#[test]
fn random_sequences_keep_what_observers_rely_on() {
    for seed in 1..=300u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let persisted = (seed % 3 == 0).then_some(Persisted {
            sys: A::S0G0D0,
            dev: A::Unknown,
            since_usec: 1,
            generation: seed,
        });
        let mut core = AcpiCore::new(
            Policy {
                post_code_stages: vec![(0x10, 0x2F, P::MemoryInit)],
                ..Policy::default()
            },
            persisted,
        );
        let mut clock = Clock(0);
        let mut announced = (core.phase(), core.generation());
        let mut last_target = None;
        // The model of the BootProgress rule: writes stop until this appearance of a host
        // service (the one after the service that refused, which before the first appearance
        // is the first; or after the moment there was none).
        let mut stopped_until: Option<u64> = None;
        let mut appearances: u64 = 0;
        let mut host_there = false;
        let mut last_epoch: u64 = 0;
        for step in 0..400 {
            let input = match rng.u64(..12) {
                0 => chassis(
                    [
                        ChassisPowerState::On,
                        ChassisPowerState::Off,
                        ChassisPowerState::TransitioningToOn,
                        ChassisPowerState::TransitioningToOff,
                    ][rng.u64(..4) as usize],
                ),
                1 => Input::ChassisPower {
                    state: None,
                    last_change_ms: None,
                },
                2 => Input::HostState(
                    [None, Some(HostState::Off), Some(HostState::Running)][rng.u64(..3) as usize],
                ),
                3 => Input::OsState(
                    [None, Some(OsStatus::Standby), Some(OsStatus::Inactive)]
                        [rng.u64(..3) as usize],
                ),
                4 | 5 => Input::PostCode(rng.u64(..0x40)),
                6 => Input::PostCodeSourceGone,
                7 | 8 => write(AcpiState::ALL[rng.u64(..AcpiState::ALL.len() as u64) as usize]),
                _ => {
                    // An outcome for the newest write, or now and then for an older host.
                    let host_epoch = last_epoch.saturating_sub(rng.u64(..2));
                    let outcome = match rng.u64(..4) {
                        0 => ProgressOutcome::NoInterface { error: "e".into() },
                        1 => ProgressOutcome::NoHost { error: "e".into() },
                        2 => ProgressOutcome::Rejected {
                            stage: P::OsRunning,
                            error: "e".into(),
                        },
                        _ => ProgressOutcome::Failed {
                            stage: P::OsRunning,
                            error: "e".into(),
                        },
                    };
                    Input::BootProgress {
                        host_epoch,
                        outcome,
                    }
                }
            };
            let at = || format!("seed {seed} step {step}: {input:?}");
            // What the model expects of this input.
            let appears = matches!(input, Input::HostState(Some(_))) && !host_there;
            match &input {
                Input::HostState(h) => host_there = h.is_some(),
                Input::BootProgress {
                    host_epoch,
                    outcome,
                } => {
                    let until = match outcome {
                        ProgressOutcome::NoInterface { .. } => Some(host_epoch.max(&1) + 1),
                        ProgressOutcome::NoHost { .. } => Some(host_epoch + 1),
                        _ => None,
                    };
                    if let Some(u) = until.filter(|u| *u > appearances) {
                        stopped_until = Some(stopped_until.map_or(u, |n| n.max(u)));
                    }
                }
                _ => {}
            }
            if appears {
                appearances += 1;
                if stopped_until.is_some_and(|n| n <= appearances) {
                    stopped_until = None;
                }
            }
            let stopped = stopped_until.is_some();
            let Ok(actions) = core.handle(clock.tick(), input.clone()) else {
                continue;
            };
            assert_eq!(core.progress.host_epoch(), appearances, "{}", at());
            for a in &actions {
                match a {
                    Action::PublishPhase(v) => {
                        assert_ne!(v.phase, announced.0, "{}", at());
                        assert_eq!(v.generation, announced.1 + 1, "{}", at());
                        announced = (v.phase, v.generation);
                    }
                    Action::Persist(p) => assert_eq!(p.generation, core.generation(), "{}", at()),
                    Action::StartTarget(t) => {
                        assert_ne!(Some(*t), last_target, "{}", at());
                        last_target = Some(*t);
                    }
                    Action::SetBootProgress(w) => {
                        assert!(!stopped, "a write while stopped: {}", at());
                        last_epoch = w.host_epoch;
                    }
                    _ => {}
                }
            }
            assert_eq!(announced, (core.phase(), core.generation()), "{}", at());
            if let Some(sys) = actions.iter().rev().find_map(|a| match a {
                Action::PublishAcpi { sys, .. } => *sys,
                _ => None,
            }) {
                assert_eq!(sys, core.sys(), "{}", at());
            }
        }
    }
}

/// A host service as the BootProgress writes find it, answering each write at once.
#[derive(Debug, Clone, Copy)]
enum FakeHost {
    /// No service owns the name.
    Missing,
    /// x86-power-control: State.Host without Boot.Progress.
    WithoutBootProgress,
    /// phosphor-state-manager, refusing one stage's value if told to.
    WithBootProgress { refuses: Option<ProgressStage> },
    /// There, but never answers in time.
    Silent,
}

impl FakeHost {
    fn answer(self, stage: ProgressStage) -> Option<ProgressOutcome> {
        let error = "e".to_owned();
        match self {
            Self::Missing => Some(ProgressOutcome::NoHost { error }),
            Self::WithoutBootProgress => Some(ProgressOutcome::NoInterface { error }),
            Self::WithBootProgress { refuses } if refuses == Some(stage) => {
                Some(ProgressOutcome::Rejected { stage, error })
            }
            Self::WithBootProgress { .. } => None,
            Self::Silent => Some(ProgressOutcome::Failed { stage, error }),
        }
    }
}

/// A BootProgress note as the tables spell it.
fn note_text(n: &ProgressNote) -> String {
    match n {
        ProgressNote::NoInterface { .. } => "no interface".to_owned(),
        ProgressNote::NoHost { .. } => "no host".to_owned(),
        ProgressNote::Rejected { stage, .. } => format!("rejected {stage}"),
        ProgressNote::Failed { stage, .. } => format!("failed {stage}"),
        ProgressNote::Resumed(stage) => format!("resumed {stage:?}"),
    }
}

/// The core with an edge that carries out BootProgress writes against a [`FakeHost`] and
/// feeds every outcome back, as the daemon's side effects do.
struct ProgressRig {
    core: AcpiCore,
    clock: Clock,
    host: FakeHost,
    attempted: Vec<ProgressStage>,
    written: Vec<ProgressStage>,
    notes: Vec<String>,
}

impl ProgressRig {
    fn new(host: FakeHost) -> Self {
        Self {
            core: AcpiCore::new(Policy::default(), None),
            clock: Clock(0),
            host,
            attempted: Vec::new(),
            written: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn input(&mut self, i: Input) {
        let mut queue = std::collections::VecDeque::from([i]);
        while let Some(i) = queue.pop_front() {
            for a in self.core.handle(self.clock.tick(), i).expect("ok") {
                match a {
                    Action::SetBootProgress(w) => {
                        self.attempted.push(w.stage);
                        match self.host.answer(w.stage) {
                            None => self.written.push(w.stage),
                            Some(outcome) => queue.push_back(Input::BootProgress {
                                host_epoch: w.host_epoch,
                                outcome,
                            }),
                        }
                    }
                    Action::BootProgressNote(n) => self.notes.push(note_text(&n)),
                    _ => {}
                }
            }
        }
    }

    /// A host service (re)appears: the `CurrentHostState` read on its arrival.
    fn host_appears(&mut self, host: FakeHost) {
        self.host = host;
        self.input(Input::HostState(Some(HostState::Off)));
    }

    fn host_leaves(&mut self) {
        self.host = FakeHost::Missing;
        self.input(Input::HostState(None));
    }

    /// Off, on, S0: Unspecified, PrimaryProcInit, OsRunning.
    fn boot(&mut self) {
        for i in [off(), on(), write(A::S0G0D0)] {
            self.input(i);
        }
    }
}

/// Only an absent interface or host stops the writes (one note), and only until a host
/// service appears; a refused value or a failed write is noted and the next stage written.
#[test]
fn boot_progress_stops_for_a_missing_interface_or_host_and_not_for_a_refused_value() {
    use FakeHost::*;
    // (name, host at start, script, attempted, written, notes)
    type Script = fn(&mut ProgressRig);
    type Case = (
        &'static str,
        FakeHost,
        Script,
        &'static [ProgressStage],
        &'static [ProgressStage],
        &'static [&'static str],
    );
    let cases: &[Case] = &[
        (
            "healthy host: every stage",
            WithBootProgress { refuses: None },
            |r| {
                r.host_appears(WithBootProgress { refuses: None });
                r.boot();
            },
            &[P::Unspecified, P::PrimaryProcInit, P::OsRunning],
            &[P::Unspecified, P::PrimaryProcInit, P::OsRunning],
            &[],
        ),
        (
            "x86-power-control: one try, one note, then nothing through a whole boot",
            WithoutBootProgress,
            |r| {
                r.host_appears(WithoutBootProgress);
                r.boot();
                r.input(off());
            },
            &[P::Unspecified],
            &[],
            &["no interface"],
        ),
        (
            "one value refused: noted, and the next stages are still written",
            WithBootProgress {
                refuses: Some(P::PrimaryProcInit),
            },
            |r| {
                r.host_appears(WithBootProgress {
                    refuses: Some(P::PrimaryProcInit),
                });
                r.boot();
                r.input(off());
            },
            &[
                P::Unspecified,
                P::PrimaryProcInit,
                P::OsRunning,
                P::Unspecified,
            ],
            &[P::Unspecified, P::OsRunning, P::Unspecified],
            &["rejected PrimaryProcInit"],
        ),
        (
            "a write not answered: noted, and the next stages are still written",
            Silent,
            |r| {
                r.host_appears(Silent);
                r.input(off());
                r.input(on());
            },
            &[P::Unspecified, P::PrimaryProcInit],
            &[],
            &["failed Unspecified", "failed PrimaryProcInit"],
        ),
        (
            "no host service at first: stopped; its arrival gets the newest stage",
            Missing,
            |r| {
                r.boot();
                r.host_appears(WithBootProgress { refuses: None });
                r.input(off());
            },
            &[P::Unspecified, P::OsRunning, P::Unspecified],
            &[P::OsRunning, P::Unspecified],
            &["no host", "resumed Some(OsRunning)"],
        ),
        (
            "x86-power-control replaced by a host with Boot.Progress: written again",
            WithoutBootProgress,
            |r| {
                r.host_appears(WithoutBootProgress);
                r.boot();
                r.host_leaves();
                r.host_appears(WithBootProgress { refuses: None });
                r.input(off());
            },
            &[P::Unspecified, P::OsRunning, P::Unspecified],
            &[P::OsRunning, P::Unspecified],
            &["no interface", "resumed Some(OsRunning)"],
        ),
        (
            "a host that comes back still without Boot.Progress: one more try, one more note",
            WithoutBootProgress,
            |r| {
                r.host_appears(WithoutBootProgress);
                r.boot();
                r.host_leaves();
                r.host_appears(WithoutBootProgress);
                r.input(off());
            },
            &[P::Unspecified, P::OsRunning],
            &[],
            &["no interface", "resumed Some(OsRunning)", "no interface"],
        ),
        (
            "a host that leaves while writes go on: stopped, not for good",
            WithBootProgress { refuses: None },
            |r| {
                r.host_appears(WithBootProgress { refuses: None });
                r.input(off());
                r.host_leaves();
                r.input(on());
                r.input(write(A::S0G0D0));
                r.host_appears(WithBootProgress { refuses: None });
            },
            &[P::Unspecified, P::PrimaryProcInit, P::OsRunning],
            &[P::Unspecified, P::OsRunning],
            &["no host", "resumed Some(OsRunning)"],
        ),
    ];
    for (name, host, script, attempted, written, notes) in cases {
        let mut r = ProgressRig::new(*host);
        script(&mut r);
        assert_eq!(r.attempted, *attempted, "{name}: attempted");
        assert_eq!(r.written, *written, "{name}: written");
        assert_eq!(r.notes, *notes, "{name}: notes");
    }
}

/// An outcome about a host service that has since been replaced says nothing about the new
/// one: it stops nothing, and the new one is given the newest stage.
#[test]
fn boot_progress_outcome_from_a_replaced_host_stops_nothing() {
    let mut core = AcpiCore::new(Policy::default(), None);
    let mut clock = Clock(0);
    let writes = |a: &[Action]| -> Vec<ProgressWrite> {
        a.iter()
            .filter_map(|x| match x {
                Action::SetBootProgress(w) => Some(*w),
                _ => None,
            })
            .collect()
    };
    core.handle(clock.tick(), off()).expect("off");
    core.handle(clock.tick(), Input::HostState(Some(HostState::Off)))
        .expect("host");
    let a = core.handle(clock.tick(), on()).expect("on");
    let [sent] = writes(&a)[..] else {
        panic!("one write: {a:?}")
    };
    // The host leaves and a new owner arrives before the write's outcome comes back.
    core.handle(clock.tick(), Input::HostState(None))
        .expect("gone");
    core.handle(clock.tick(), Input::HostState(Some(HostState::Off)))
        .expect("back");
    let a = core
        .handle(
            clock.tick(),
            Input::BootProgress {
                host_epoch: sent.host_epoch,
                outcome: ProgressOutcome::NoInterface { error: "e".into() },
            },
        )
        .expect("outcome");
    let again = writes(&a);
    assert_eq!(again.len(), 1, "{a:?}");
    assert_eq!(again[0].stage, P::PrimaryProcInit);
    assert_ne!(again[0].host_epoch, sent.host_epoch);
    assert!(
        !a.iter().any(|x| matches!(x, Action::BootProgressNote(_))),
        "{a:?}"
    );
    // And the next stage goes out as usual.
    let a = core.handle(clock.tick(), write(A::S0G0D0)).expect("S0");
    assert_eq!(
        writes(&a).iter().map(|w| w.stage).collect::<Vec<_>>(),
        [P::OsRunning]
    );
}

/// One step of [`boot_progress_gives_up_once_per_appearance_of_the_service_that_refused`].
enum Race {
    /// From now on this service owns the host name and answers the writes sent to it; the
    /// daemon's watch has not said so (that is `Seen` and `Left`).
    Owner(FakeHost),
    /// The watch reports the host service: its `CurrentHostState`, read on its arrival.
    Seen,
    /// The watch reports the host service gone.
    Left,
    /// Any other input.
    In(Input),
    /// The writes sent so far are answered, in order, each by the service that owned the name
    /// when it was sent; so are the writes those answers cause.
    Answer,
}

/// A give-up is tied to the host service that refused, whichever comes first at start: the
/// watch's first sighting of the service, or its answer to a write made before that sighting
/// (the first write goes out as soon as chassis power is read, while the host service is
/// still being read). The service that answered is the one the first sighting reports: the
/// watch follows the name's owner from before it reads it, so a replacement after that shows
/// as a departure and an arrival. A service without Boot.Progress gets one try and one
/// warning per appearance, not one more for being seen after it answered.
#[test]
fn boot_progress_gives_up_once_per_appearance_of_the_service_that_refused() {
    use FakeHost::*;
    use Race::*;
    let with = WithBootProgress { refuses: None };
    // (name, script, attempted, written, notes); whatever is unanswered at the end is answered.
    type Case = (
        &'static str,
        Vec<Race>,
        &'static [ProgressStage],
        &'static [ProgressStage],
        &'static [&'static str],
    );
    let cases: Vec<Case> = vec![
        (
            "x86-power-control answers the write made before it was seen: one try, one note",
            vec![
                Owner(WithoutBootProgress),
                In(off()),
                Answer,
                Seen,
                In(on()),
                In(write(A::S0G0D0)),
                In(off()),
            ],
            &[P::Unspecified],
            &[],
            &["no interface"],
        ),
        (
            "x86-power-control is seen before its answer comes: one try, one note",
            vec![
                Owner(WithoutBootProgress),
                In(off()),
                Seen,
                Answer,
                In(on()),
                In(write(A::S0G0D0)),
            ],
            &[P::Unspecified],
            &[],
            &["no interface"],
        ),
        (
            "a host with Boot.Progress, seen after the first write: every stage, once",
            vec![
                Owner(with),
                In(off()),
                Answer,
                Seen,
                In(on()),
                In(write(A::S0G0D0)),
            ],
            &[P::Unspecified, P::PrimaryProcInit, P::OsRunning],
            &[P::Unspecified, P::PrimaryProcInit, P::OsRunning],
            &[],
        ),
        (
            "no host service for the first write; one with Boot.Progress arrives: newest stage",
            vec![In(off()), Answer, Owner(with), Seen, In(on())],
            &[P::Unspecified, P::Unspecified, P::PrimaryProcInit],
            &[P::Unspecified, P::PrimaryProcInit],
            &["no host", "resumed Some(Unspecified)"],
        ),
        (
            "no host service for the first write; one is seen before the answer: no note",
            vec![In(off()), Owner(with), Seen, Answer, In(on())],
            &[P::Unspecified, P::Unspecified, P::PrimaryProcInit],
            &[P::Unspecified, P::PrimaryProcInit],
            &[],
        ),
        (
            "x86-power-control leaves and comes back: one try and one note per appearance",
            vec![
                Owner(WithoutBootProgress),
                In(off()),
                Answer,
                Seen,
                In(on()),
                Owner(Missing),
                Left,
                Owner(WithoutBootProgress),
                Seen,
                Answer,
                In(write(A::S0G0D0)),
            ],
            &[P::Unspecified, P::PrimaryProcInit],
            &[],
            &[
                "no interface",
                "resumed Some(PrimaryProcInit)",
                "no interface",
            ],
        ),
        (
            "x86-power-control replaced as the watch starts (seen, gone, seen): the new one written",
            vec![
                Owner(WithoutBootProgress),
                In(off()),
                Answer,
                Owner(with),
                Seen,
                Left,
                Seen,
                In(on()),
            ],
            &[P::Unspecified, P::Unspecified, P::PrimaryProcInit],
            &[P::Unspecified, P::PrimaryProcInit],
            &["no interface", "resumed Some(Unspecified)"],
        ),
    ];
    let mut wrong = Vec::new();
    for (name, script, attempted, written, notes) in cases {
        let mut core = AcpiCore::new(Policy::default(), None);
        let mut clock = Clock(0);
        let mut owner = Missing;
        // Writes sent and not answered yet, with the service that received each.
        let mut pending = std::collections::VecDeque::new();
        let (mut tried, mut took, mut said) = (Vec::new(), Vec::new(), Vec::new());
        let mut feed = |core: &mut AcpiCore,
                        owner: FakeHost,
                        pending: &mut std::collections::VecDeque<(ProgressWrite, FakeHost)>,
                        input: Input| {
            for a in core.handle(clock.tick(), input).expect("ok") {
                match a {
                    Action::SetBootProgress(w) => {
                        tried.push(w.stage);
                        pending.push_back((w, owner));
                    }
                    Action::BootProgressNote(n) => said.push(note_text(&n)),
                    _ => {}
                }
            }
        };
        for step in script.into_iter().chain([Answer]) {
            match step {
                Owner(h) => owner = h,
                Seen => feed(
                    &mut core,
                    owner,
                    &mut pending,
                    Input::HostState(Some(HostState::Off)),
                ),
                Left => feed(&mut core, owner, &mut pending, Input::HostState(None)),
                In(i) => feed(&mut core, owner, &mut pending, i),
                Answer => {
                    while let Some((w, host)) = pending.pop_front() {
                        match host.answer(w.stage) {
                            None => took.push(w.stage),
                            Some(outcome) => feed(
                                &mut core,
                                owner,
                                &mut pending,
                                Input::BootProgress {
                                    host_epoch: w.host_epoch,
                                    outcome,
                                },
                            ),
                        }
                    }
                }
            }
        }
        if tried != attempted || took != written || said != notes {
            wrong.push(format!(
                "{name}:\n  attempted {tried:?}, want {attempted:?}\n  written {took:?}, \
                 want {written:?}\n  notes {said:?}, want {notes:?}"
            ));
        }
    }
    // Every case's outcome at once: a broken rule usually shows in several.
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ------------------------------------------------------------ OperatingSystemState, SEL

/// What `pick` takes from each action that has it, in order.
fn picked<T>(actions: &[Action], pick: impl Fn(&Action) -> Option<T>) -> Vec<T> {
    actions.iter().filter_map(pick).collect()
}

fn os_writes_of(actions: &[Action]) -> Vec<OsStatus> {
    picked(actions, |a| match a {
        Action::SetOsStatus(v) => Some(*v),
        _ => None,
    })
}

fn os_notes_of(actions: &[Action]) -> Vec<OsStatusNote> {
    picked(actions, |a| match a {
        Action::OsStatusNote(n) => Some(n.clone()),
        _ => None,
    })
}

fn sel_records_of(actions: &[Action]) -> Vec<AcpiState> {
    picked(actions, |a| match a {
        Action::AddSelRecord(s) => Some(*s),
        _ => None,
    })
}

fn writer_policy() -> Policy {
    Policy {
        write_os_status: true,
        post_complete_means_working: false,
        ..Policy::default()
    }
}

/// A BiosPost consumer's view: `Standby` only in settled S0, `Inactive` on entering every
/// other phase (off, firmware init, warm reset, sleep), once per phase change.
#[test]
fn os_status_is_standby_in_working_and_inactive_on_entering_every_other_phase() {
    use OsStatus::{Inactive, Standby};
    let cases: &[(&str, Input, AcpiState, &[OsStatus])] = &[
        ("off at start", off(), A::S5G2, &[Inactive]),
        ("postd's baseline", postd_arrives(), A::S5G2, &[]),
        ("power on: firmware init", on(), A::S2D2, &[Inactive]),
        (
            "host's own S2: no phase change",
            write(A::S2D2),
            A::S2D2,
            &[],
        ),
        ("S0", write(A::S0G0D0), A::S0G0D0, &[Standby]),
        ("S0 again", write(A::S0G0D0), A::S0G0D0, &[]),
        (
            "warm reset (POST code)",
            Input::PostCode(0x19),
            A::S2D2,
            &[Inactive],
        ),
        (
            "S0 after the reset",
            write(A::S0G0D0),
            A::S0G0D0,
            &[Standby],
        ),
        ("sleep", write(A::S3D3), A::S3D3, &[Inactive]),
        ("wake", write(A::S0G0D0), A::S0G0D0, &[Standby]),
        ("power loss", off(), A::S5G2, &[Inactive]),
        ("S5 to S2", on(), A::S2D2, &[Inactive]),
    ];
    let mut core = AcpiCore::new(writer_policy(), None);
    let mut clock = Clock(0);
    for (what, input, sys, want) in cases {
        let actions = core.handle(clock.tick(), input.clone()).expect(what);
        assert_eq!(core.sys(), *sys, "{what}");
        assert_eq!(os_writes_of(&actions), *want, "{what}: {actions:?}");
        // Never ahead of the announcements: the write is a side effect of the transition.
        if let (Some(w), Some(p)) = (
            actions
                .iter()
                .position(|a| matches!(a, Action::SetOsStatus(_))),
            actions.iter().rposition(Action::is_announcement),
        ) {
            assert!(p < w, "{what}: written before announced: {actions:?}");
        }
    }
}

#[test]
fn os_status_is_never_written_unless_configured() {
    let mut core = AcpiCore::new(Policy::default(), None);
    let mut clock = Clock(0);
    for input in [off(), on(), write(A::S0G0D0), off()] {
        let actions = core.handle(clock.tick(), input).expect("ok");
        assert!(os_writes_of(&actions).is_empty(), "{actions:?}");
    }
}

/// A read-only property or x86-power-control's object ends the writes for good, said once; a
/// write that merely failed is said each time and the next phase is still written.
#[test]
fn os_status_gives_up_once_for_a_writer_that_is_not_us_and_never_for_a_failure() {
    use OsStatus::{Inactive, Standby};
    let failed = || {
        Input::OsStatusWrite(OsStatusOutcome::Failed {
            value: Inactive,
            error: "no answer within 3000 ms".into(),
        })
    };
    let read_only = || {
        Input::OsStatusWrite(OsStatusOutcome::ReadOnly {
            error: "org.freedesktop.DBus.Error.PropertyReadOnly".into(),
        })
    };
    let x86 = || {
        Input::OsStatusWrite(OsStatusOutcome::PowerControl {
            owner: ":1.7".into(),
        })
    };
    for (name, give_up) in [("read-only", read_only()), ("x86-power-control", x86())] {
        // (input, writes, notes: "F" a failure, "G" the give-up)
        let steps: Vec<(Input, &[OsStatus], &[&str])> = vec![
            (off(), &[Inactive], &[]),
            (failed(), &[], &["F"]),
            (on(), &[Inactive], &[]),
            (failed(), &[], &["F"]),
            (write(A::S0G0D0), &[Standby], &[]),
            (give_up.clone(), &[], &["G"]),
            // The writes already queued answer the same: nothing more is said.
            (give_up.clone(), &[], &[]),
            (read_only(), &[], &[]),
            (failed(), &[], &[]),
            (off(), &[], &[]),
            (on(), &[], &[]),
            (write(A::S0G0D0), &[], &[]),
        ];
        let mut core = AcpiCore::new(writer_policy(), None);
        let mut clock = Clock(0);
        for (i, (input, writes, notes)) in steps.into_iter().enumerate() {
            let actions = core.handle(clock.tick(), input).expect("ok");
            assert_eq!(os_writes_of(&actions), writes, "{name} step {i}");
            let got: Vec<&str> = os_notes_of(&actions)
                .iter()
                .map(|n| match n {
                    OsStatusNote::Failed { .. } => "F",
                    OsStatusNote::GaveUp(_) => "G",
                })
                .collect();
            assert_eq!(got, notes, "{name} step {i}: {actions:?}");
        }
    }
}

/// Every transition after the state derived at start is one record, in order, with the state
/// entered; the derived state itself is a baseline (as ipmi-handlers takes its first read).
#[test]
fn every_transition_after_the_start_is_one_sel_record() {
    let policy = Policy {
        sel_records: true,
        ..Policy::default()
    };
    let cases: &[(&str, Input, &[AcpiState])] = &[
        ("off at start: baseline", off(), &[]),
        ("postd's baseline", postd_arrives(), &[]),
        ("power on", on(), &[A::S2D2]),
        ("S0", write(A::S0G0D0), &[A::S0G0D0]),
        ("S0 again: no transition", write(A::S0G0D0), &[]),
        ("warm reset", Input::PostCode(0x19), &[A::S2D2]),
        ("S0", write(A::S0G0D0), &[A::S0G0D0]),
        ("host says S5 while on", write(A::S5G2), &[A::S5G2]),
        // Same phase, other state: still a transition of the system state.
        ("then G3", write(A::G3), &[A::G3]),
        ("power loss: already off", off(), &[]),
        ("power on", on(), &[A::S2D2]),
    ];
    let mut core = AcpiCore::new(policy, None);
    let mut clock = Clock(0);
    for (what, input, want) in cases {
        let actions = core.handle(clock.tick(), input.clone()).expect(what);
        assert_eq!(sel_records_of(&actions), *want, "{what}: {actions:?}");
    }

    // A restart in S0: the restored state is the baseline too.
    let mut core = AcpiCore::new(
        Policy {
            sel_records: true,
            ..Policy::default()
        },
        saved(A::S0G0D0, 1_700_000_000_000_000),
    );
    let actions = core.handle(clock.tick(), on()).expect("ok");
    assert_eq!(core.sys(), A::S0G0D0);
    assert!(sel_records_of(&actions).is_empty(), "{actions:?}");
    let actions = core.handle(clock.tick(), off()).expect("ok");
    assert_eq!(sel_records_of(&actions), [A::S5G2]);

    // Off by default.
    let mut core = AcpiCore::new(Policy::default(), None);
    for input in [off(), on(), write(A::S0G0D0)] {
        let actions = core.handle(clock.tick(), input).expect("ok");
        assert!(sel_records_of(&actions).is_empty());
    }
}
