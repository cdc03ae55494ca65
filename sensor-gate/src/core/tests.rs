//! The core's rules, driven with virtual time: events in, actions out, nothing real.

use super::decode::DeviceKind;
use super::*;
use HostPhase::*;

const T0_WALL: u64 = 1_700_000_000_000_000;

/// Drives a core with virtual time, the way the edge does: ticks at every deadline.
struct Rig {
    core: Core,
    base: Instant,
    at: Duration,
    /// Every action, with the virtual time (ms) it came out at.
    log: Vec<(u64, Action)>,
    generation: u64,
}

fn sensor(name: &str, kind: DeviceKind, addr: u8) -> SensorSpec {
    SensorSpec {
        name: name.to_owned(),
        kind,
        bus: usize::from(addr >= 0x50),
        address: addr,
        host_powered: true,
        thresholds: Thresholds {
            warning_high: Some(80.0),
            critical_high: Some(90.0),
            warning_low: Some(5.0),
            critical_low: None,
            hysteresis: 2.0,
        },
    }
}

fn policy() -> Policy {
    Policy {
        settle: Duration::from_millis(500),
        poll_interval: Duration::from_millis(100),
        error_threshold: 3,
        fan_retry: Duration::from_millis(1000),
        ..Policy::default()
    }
}

fn zones() -> Vec<ZoneSpec> {
    vec![
        ZoneSpec {
            zone: 0,
            pwms: vec![("Pwm_1".to_owned(), 153), ("Pwm_2".to_owned(), 153)],
        },
        ZoneSpec {
            zone: 1,
            pwms: vec![],
        },
    ]
}

// 25 °C as a TSOD sends it over read-word.
const W25: u16 = 0x9001;

impl Rig {
    /// A DDR4 sensor on bus 0 and a DDR5 one on bus 1, the zones of [`zones`].
    fn new(policy: Policy) -> Self {
        Self::with_zones(policy, zones())
    }

    fn with_sensors(policy: Policy, sensors: Vec<SensorSpec>) -> Self {
        Self::with(policy, sensors, zones())
    }

    /// The two sensors of [`Rig::new`] and the given zones.
    fn with_zones(policy: Policy, zones: Vec<ZoneSpec>) -> Self {
        let sensors = vec![
            sensor("DIMM_A0", DeviceKind::Jc42, 0x18),
            sensor("DIMM_B0", DeviceKind::Spd5118, 0x50),
        ];
        Self::with(policy, sensors, zones)
    }

    fn with(policy: Policy, sensors: Vec<SensorSpec>, zones: Vec<ZoneSpec>) -> Self {
        let base = Instant::now();
        let now = Now {
            mono: base,
            wall_usec: T0_WALL,
        };
        let mut core = Core::new(policy, sensors, zones, now);
        let first = core.start(now);
        let mut r = Self {
            core,
            base,
            at: Duration::ZERO,
            log: Vec::new(),
            generation: 0,
        };
        r.record(first);
        r
    }

    fn now(&self) -> Now {
        Now {
            mono: self.base + self.at,
            wall_usec: T0_WALL + self.at.as_micros() as u64,
        }
    }

    fn record(&mut self, acts: Vec<Action>) -> Vec<Action> {
        let ms = self.at.as_millis() as u64;
        for a in &acts {
            self.log.push((ms, a.clone()));
        }
        acts
    }

    fn ev(&mut self, e: Event) -> Vec<Action> {
        let now = self.now();
        let acts = self.core.handle(now, e);
        self.record(acts)
    }

    /// Phase change whose source stamped it `lag_ms` before it reached us.
    fn phase_lag(&mut self, p: HostPhase, lag_ms: u64) -> Vec<Action> {
        self.generation += 1;
        let since = self.now().wall_usec - lag_ms * 1000;
        self.ev(Event::Phase(PhaseUpdate {
            phase: p,
            since_us: since,
            generation: Some(self.generation),
            reason: "test".to_owned(),
        }))
    }

    fn phase(&mut self, p: HostPhase) -> Vec<Action> {
        self.phase_lag(p, 0)
    }

    /// Advance virtual time, ticking at each deadline on the way; reads started on the
    /// way are left in flight (complete them with `done`).
    fn advance(&mut self, ms: u64) -> Vec<Action> {
        let end = self.at + Duration::from_millis(ms);
        let mut all = Vec::new();
        while let Some(d) = self.core.next_deadline() {
            let d = d.saturating_duration_since(self.base);
            if d > end {
                break;
            }
            self.at = self.at.max(d);
            all.extend(self.ev(Event::Tick));
            if self.core.next_deadline() == Some(self.base + self.at) {
                // A deadline that does not move would loop forever: a bug.
                panic!("deadline did not advance at {:?}", self.at);
            }
        }
        self.at = end;
        all
    }

    /// Advance, answering every read with `word` at once.
    fn run(&mut self, ms: u64, word: Result<u16, SmbusError>) -> Vec<Action> {
        let end = self.at + Duration::from_millis(ms);
        let mut all = Vec::new();
        loop {
            let step = match self.core.next_deadline() {
                Some(d) if d.saturating_duration_since(self.base) <= end => {
                    d.saturating_duration_since(self.base)
                }
                _ => break,
            };
            self.at = self.at.max(step);
            let acts = self.ev(Event::Tick);
            all.extend(acts.clone());
            // Reads started by a finished read (the next one on its bus) are answered too.
            let mut pending = acts;
            while !pending.is_empty() {
                let mut next = Vec::new();
                for a in pending {
                    if let Action::StartRead { sensor, .. } = a {
                        let acts = self.ev(Event::ReadDone {
                            sensor,
                            result: word.clone(),
                        });
                        all.extend(acts.clone());
                        next.extend(acts);
                    }
                }
                pending = next;
            }
        }
        self.at = end;
        all
    }

    fn view(&self, i: usize) -> SensorView {
        self.core.sensor_view(i).expect("sensor")
    }
}

fn reads(acts: &[Action]) -> usize {
    acts.iter()
        .filter(|a| matches!(a, Action::StartRead { .. }))
        .count()
}

/// Sensor 0's alarm changes among `acts`: (severity, direction, asserted).
fn alarms(acts: &[Action]) -> Vec<(Severity, Direction, bool)> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Alarm {
                sensor: 0,
                severity,
                direction,
                asserted,
                ..
            } => Some((*severity, *direction, *asserted)),
            _ => None,
        })
        .collect()
}

/// Zone `zone` put in manual mode (`true`) or handed back to the controller.
fn manual(zone: u32, on: bool) -> FanCommand {
    FanCommand::ZoneManual { zone, manual: on }
}

/// Both zones of [`zones`] handed back, in order: what a gate opening sends.
fn handed_back() -> Vec<FanCommand> {
    vec![manual(0, false), manual(1, false)]
}

fn fans(acts: &[Action]) -> Vec<FanCommand> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Fan(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn unavailable() -> SensorView {
    SensorView {
        value: NAN,
        available: false,
        functional: true,
    }
}

#[test]
fn at_start_the_gate_is_closed_and_sensors_unavailable() {
    let mut r = Rig::new(policy());
    assert!(!r.core.is_open());
    assert_eq!(r.view(0), unavailable());
    let published: Vec<_> = r
        .log
        .iter()
        .filter(|(_, a)| matches!(a, Action::PublishSensor { .. }))
        .collect();
    assert_eq!(published.len(), 2);
    let acts = r.advance(5_000);
    assert_eq!(reads(&acts), 0, "no read before the phase is known");
    // Any event brings the count up to date: two sensors refused every 100 ms.
    r.ev(Event::Tick);
    assert!(
        (100..=102).contains(&r.core.gate_status().refused),
        "{:?}",
        r.core.gate_status()
    );
    assert!(
        fans(&acts).is_empty(),
        "unknown phase is not a fan-hold phase"
    );
}

#[test]
fn working_opens_only_after_the_settle_delay() {
    let mut r = Rig::new(policy());
    r.phase(Working);
    assert!(!r.core.is_open());
    let acts = r.advance(499);
    assert_eq!(reads(&acts), 0);
    assert!(!r.core.is_open());
    let acts = r.advance(1);
    assert!(r.core.is_open());
    assert_eq!(reads(&acts), 2, "both sensors read as soon as it opens");
    assert!(
        acts.contains(&Action::StartRead {
            sensor: 1,
            addr: 0x50,
            reg: 0x31
        }),
        "SPD5118 temperature is MR49"
    );
    // Zones are handed back (idempotently) when the gate opens.
    assert_eq!(fans(&acts), handed_back());
}

#[test]
fn good_reads_publish_values_then_every_non_working_phase_closes_at_once() {
    for closing in [FirmwareInit, Sleeping, Off, Unknown] {
        let mut r = Rig::new(policy());
        r.phase(Working);
        r.run(1_000, Ok(W25));
        assert_eq!(
            r.view(0),
            SensorView {
                value: 25.0,
                available: true,
                functional: true
            }
        );
        let acts = r.phase_lag(closing, 7);
        assert!(!r.core.is_open(), "{closing}");
        assert_eq!(reads(&acts), 0);
        let st = r.core.gate_status().clone();
        assert_eq!(st.closes, 1);
        assert_eq!(st.last_close_latency_us, 7_000, "Since → close");
        assert_eq!(st.phase, closing);
        assert!(!st.open);
        assert!(st.reason.contains(&closing.to_string()), "{}", st.reason);
        assert!(r.view(0).value.is_nan());
        assert!(
            !r.view(0).available,
            "{closing}: default marking is Available=false"
        );
        assert!(r.view(0).functional);
        let acts = r.run(3_000, Ok(W25));
        assert_eq!(reads(&acts), 0, "{closing}: nothing read while closed");
    }
}

/// The edge closes its bus latch when it carries out `CloseBus`; anything carried out before
/// it (a publication awaits the bus daemon) would leave a read queued behind a bus thread free
/// to start after the close.
#[test]
fn every_close_of_an_open_gate_starts_with_close_bus() {
    fn closes_first(acts: &[Action], what: &str) {
        assert_eq!(acts.first(), Some(&Action::CloseBus), "{what}: {acts:?}");
        let n = acts.iter().filter(|a| **a == Action::CloseBus).count();
        assert_eq!(n, 1, "{what}: {acts:?}");
    }
    for closing in [FirmwareInit, Sleeping, Off, Unknown] {
        let mut r = Rig::new(policy());
        r.phase(Working);
        r.run(1_000, Ok(W25));
        closes_first(&r.phase(closing), &closing.to_string());
    }
    let mut r = Rig::new(policy());
    r.phase(Working);
    r.run(1_000, Ok(W25));
    closes_first(&r.ev(Event::PhaseSourceLost), "source lost");
    // A reset seen only as a higher generation: its warning is listed after the close.
    r.generation = 0;
    r.phase(Working);
    r.run(1_000, Ok(W25));
    r.generation += 1;
    closes_first(&r.phase(Working), "missed change");
    // With no settle delay the gate reopens within the same event: still closed first, and
    // the new window's reads come after the latch has moved on.
    let mut p = policy();
    p.settle = Duration::ZERO;
    let mut r = Rig::new(p);
    r.phase(Working);
    // Opened at once: answer the reads it started (`run` answers only those it ticks).
    for sensor in 0..2 {
        r.ev(Event::ReadDone {
            sensor,
            result: Ok(W25),
        });
    }
    r.run(1_000, Ok(W25));
    r.generation += 1;
    let acts = r.phase(Working);
    assert!(r.core.is_open());
    assert!(reads(&acts) > 0, "{acts:?}");
    closes_first(&acts, "missed change, no settle delay");
    // A gate that is closed or settling has no read to stop, and a disabled one never closes.
    let mut r = Rig::new(policy());
    for ph in [FirmwareInit, Working, Off, Unknown] {
        let acts = r.phase(ph);
        assert!(!acts.contains(&Action::CloseBus), "{ph}: {acts:?}");
    }
    let mut p = policy();
    p.gate_enabled = false;
    let mut r = Rig::new(p);
    for ph in [Working, FirmwareInit, Working, Off] {
        r.phase(ph);
        r.run(200, Ok(W25));
    }
    assert!(!r.log.iter().any(|(_, a)| *a == Action::CloseBus));
}

/// What a fan controller sampling between two PropertiesChanged signals can see while `view`
/// is written over `before` in `order`: the state after each write.
fn states_between(
    before: SensorView,
    view: SensorView,
    order: [SensorProperty; 3],
) -> Vec<SensorView> {
    let mut shown = before;
    order
        .iter()
        .map(|p| {
            match p {
                SensorProperty::Value => shown.value = view.value,
                SensorProperty::Available => shown.available = view.available,
                SensorProperty::Functional => shown.functional = view.functional,
            }
            shown
        })
        .collect()
}

/// pid-control's rule: a NaN on an input that says `Available=true` is a bad reading (fail-
/// safe). No publication may show one on the way, unless the sensor is going there (a
/// failed sensor, which `Functional=false` marks anyway). Returns what was wrong.
fn nan_on_an_available_input(
    before: SensorView,
    view: SensorView,
    order: [SensorProperty; 3],
) -> Option<SensorView> {
    let bad = |v: &SensorView| v.available && v.value.is_nan();
    if bad(&view) {
        return None;
    }
    states_between(before, view, order).into_iter().find(bad)
}

#[test]
fn availability_and_value_go_out_in_the_order_that_keeps_pid_control_out_of_fail_safe() {
    let mut r = Rig::new(policy());
    for ph in [
        Working,
        FirmwareInit,
        Working,
        Off,
        Working,
        Unknown,
        Working,
    ] {
        r.phase(ph);
        r.run(1_000, Ok(W25));
    }
    // The objects are created unavailable, with no value, before the first publication.
    let mut shown = [unavailable(); 2];
    let (mut went, mut came) = (0, 0);
    for (ms, a) in &r.log {
        let Action::PublishSensor {
            sensor,
            view,
            order,
        } = a
        else {
            continue;
        };
        let before = shown[*sensor];
        let at = |p| order.iter().position(|o| *o == p).expect("every property");
        if before.available && !view.available {
            went += 1;
            assert!(
                at(SensorProperty::Available) < at(SensorProperty::Value),
                "at {ms} ms, going unavailable: {order:?}"
            );
        }
        if !before.available && view.available {
            came += 1;
            assert!(
                at(SensorProperty::Value) < at(SensorProperty::Available),
                "at {ms} ms, coming back: {order:?}"
            );
        }
        if let Some(seen) = nan_on_an_available_input(before, *view, *order) {
            panic!("at {ms} ms: {before:?} -> {view:?} in {order:?} shows {seen:?}");
        }
        shown[*sensor] = *view;
    }
    // Both sensors went away three times and came back four: the checks above ran.
    assert_eq!((went, came), (6, 8));
}

#[test]
fn a_close_mid_transfer_discards_the_result() {
    let mut r = Rig::new(policy());
    r.phase(Working);
    let acts = r.advance(500);
    assert_eq!(reads(&acts), 2);
    assert_eq!(r.core.in_flight(), 2);
    r.phase(FirmwareInit);
    assert_eq!(r.core.in_flight(), 2, "in flight may finish");
    let acts = r.ev(Event::ReadDone {
        sensor: 0,
        result: Ok(W25),
    });
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::PublishSensor { .. })),
        "a value read across the close is not published: {acts:?}"
    );
    assert_eq!(r.view(0), unavailable());
    // An error from the in-flight read does not count either.
    r.ev(Event::ReadDone {
        sensor: 1,
        result: Err(SmbusError::Nack),
    });
    let st = r.core.gate_status();
    assert_eq!(st.discarded, 2);
    assert_eq!(r.core.in_flight(), 0);
}

#[test]
fn a_result_from_an_earlier_window_is_discarded_after_a_reopen() {
    let mut p = policy();
    p.settle = Duration::ZERO;
    let mut r = Rig::new(p);
    r.phase(Working);
    assert!(r.core.is_open());
    let acts = r.advance(0);
    let started = reads(&r.log.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>());
    assert_eq!(started, 2, "{acts:?}");
    r.phase(FirmwareInit);
    r.phase(Working);
    assert!(r.core.is_open());
    // The old reads still hold the sensors; their results must not be published.
    let acts = r.ev(Event::ReadDone {
        sensor: 0,
        result: Ok(W25),
    });
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::PublishSensor { .. }))
    );
    assert_eq!(r.core.gate_status().discarded, 1);
    // The freed bus starts the due read of the new window at once, and it publishes.
    assert_eq!(
        acts.iter()
            .filter(|a| matches!(a, Action::StartRead { sensor: 0, .. }))
            .count(),
        1
    );
    r.ev(Event::ReadDone {
        sensor: 0,
        result: Ok(W25),
    });
    assert_eq!(r.view(0).value, 25.0);
}

#[test]
fn errors_count_only_while_open_and_reset_on_close() {
    let mut r = Rig::new(policy());
    r.phase(Working);
    r.run(600, Ok(W25));
    // Two errors (threshold 3), then the gate closes: the count must not carry over.
    r.run(200, Err(SmbusError::Timeout));
    assert!(r.view(0).functional);
    assert_eq!(
        r.view(0).value,
        25.0,
        "the last value stays below the threshold"
    );
    r.phase(FirmwareInit);
    r.run(10_000, Err(SmbusError::Nack));
    assert!(r.view(0).functional, "nothing accumulates while gated");
    r.phase(Working);
    r.run(500, Ok(W25));
    r.run(200, Err(SmbusError::Nack));
    assert!(r.view(0).functional, "2 < 3");
    r.run(100, Err(SmbusError::Nack));
    let v = r.view(0);
    assert!(!v.functional && v.value.is_nan() && v.available);
    assert!(r.log.iter().any(|(_, a)| matches!(a,
        Action::Log { warn: true, message } if message.contains("Functional=false"))));
    // It keeps being polled and recovers with a good read.
    r.run(100, Ok(W25));
    assert!(r.view(0).functional);
    assert_eq!(r.view(0).value, 25.0);
}

#[test]
fn off_marking_nonfunctional_marks_host_powered_sensors() {
    let mut p = policy();
    p.off_marking = OffMarking::NonFunctional;
    let mut r = Rig::new(p);
    r.phase(Working);
    r.run(1_000, Ok(W25));
    r.phase(Off);
    let v = r.view(0);
    assert!(v.value.is_nan() && v.available && !v.functional);
    // Firmware init (host powered, just not readable): unavailable, not broken.
    r.phase(FirmwareInit);
    assert_eq!(r.view(0), unavailable());
    r.phase(Off);
    r.phase(Working);
    r.run(1_000, Ok(W25));
    assert_eq!(r.view(0).value, 25.0);
    assert!(r.view(0).functional);
}

#[test]
fn fans_held_in_firmware_init_until_the_gate_opens() {
    let mut r = Rig::new(policy());
    r.phase(Off);
    let acts = r.phase(FirmwareInit);
    assert_eq!(
        fans(&acts),
        vec![
            manual(0, true),
            manual(1, true),
            FanCommand::PwmTarget {
                pwm: "Pwm_1".to_owned(),
                target: 153
            },
            FanCommand::PwmTarget {
                pwm: "Pwm_2".to_owned(),
                target: 153
            },
        ]
    );
    for c in fans(&acts) {
        r.ev(Event::FanDone {
            command: c,
            ok: true,
        });
    }
    // Working, but settling: still held.
    let acts = r.phase(Working);
    assert!(fans(&acts).is_empty(), "{acts:?}");
    let acts = r.advance(500);
    assert_eq!(fans(&acts), handed_back());
}

fn pwm(name: &str, target: u8) -> FanCommand {
    FanCommand::PwmTarget {
        pwm: name.to_owned(),
        target,
    }
}

/// pid-control rebuilds its zones in automatic mode (at its start and on every control-loop
/// restart): a zone re-created during the hold is held again, Manual and its own PWMs only,
/// whatever the state of the earlier writes; outside the hold a re-created zone is left alone.
#[test]
fn a_zone_the_fan_controller_re_creates_during_the_hold_is_held_again() {
    let zones = vec![
        ZoneSpec {
            zone: 3,
            pwms: vec![("Pwm_A".to_owned(), 100)],
        },
        ZoneSpec {
            zone: 5,
            pwms: vec![("Pwm_B".to_owned(), 120), ("Pwm_C".to_owned(), 140)],
        },
    ];
    let mut r = Rig::with_zones(policy(), zones);
    let appeared = |zone| Event::FanZoneAppeared { zone };
    // Not holding (phase unknown at start, then off): nothing.
    assert!(fans(&r.ev(appeared(3))).is_empty());
    r.phase(Off);
    assert!(fans(&r.ev(appeared(5))).is_empty());

    let acts = r.phase(FirmwareInit);
    for c in fans(&acts) {
        r.ev(Event::FanDone {
            command: c,
            ok: true,
        });
    }
    let acts = r.ev(appeared(5));
    assert_eq!(
        fans(&acts),
        vec![manual(5, true), pwm("Pwm_B", 120), pwm("Pwm_C", 140)]
    );
    assert!(acts.iter().any(|a| matches!(a,
        Action::Log { warn: true, message } if message.contains("re-created zone 5"))));
    // Re-created again before those writes are answered: written again all the same.
    assert_eq!(
        fans(&r.ev(appeared(5))),
        vec![manual(5, true), pwm("Pwm_B", 120), pwm("Pwm_C", 140)]
    );
    assert_eq!(
        fans(&r.ev(appeared(3))),
        vec![manual(3, true), pwm("Pwm_A", 100)]
    );
    // A zone we were not told to hold, or a failed write's answer: nothing new.
    assert!(fans(&r.ev(appeared(4))).is_empty());
    // The re-sent writes are tracked like the first ones: a failure is retried.
    r.ev(Event::FanDone {
        command: manual(3, true),
        ok: false,
    });
    let acts = r.advance(1_000);
    assert_eq!(fans(&acts), vec![manual(3, true)]);
    // The gate opens: every zone handed back, and a rebuild after that is left alone.
    r.phase(Working);
    let acts = r.advance(500);
    assert_eq!(fans(&acts), vec![manual(3, false), manual(5, false)]);
    assert!(fans(&r.ev(appeared(5))).is_empty());
}

#[test]
fn losing_the_phase_source_mid_boot_keeps_the_fans_held() {
    let mut r = Rig::new(policy());
    r.phase(FirmwareInit);
    let acts = r.ev(Event::PhaseSourceLost);
    assert!(fans(&acts).is_empty(), "{acts:?}");
    r.advance(10_000);
    assert!(!r.core.is_open());
    r.generation = 0;
    r.phase(Working);
    let acts = r.advance(500);
    assert!(fans(&acts).contains(&manual(0, false)));
}

#[test]
fn firmware_init_then_off_releases_the_fans() {
    let mut r = Rig::new(policy());
    r.phase(FirmwareInit);
    let acts = r.phase(Off);
    assert_eq!(fans(&acts), handed_back());
}

#[test]
fn failed_fan_writes_never_hold_the_gate_and_are_retried() {
    let mut r = Rig::new(policy());
    let acts = r.phase(FirmwareInit);
    for c in fans(&acts) {
        let ok = !matches!(c, FanCommand::ZoneManual { zone: 0, .. });
        r.ev(Event::FanDone { command: c, ok });
    }
    assert!(r.log.iter().any(|(_, a)| matches!(a,
        Action::Log { warn: true, message } if message.contains("failed"))));
    let acts = r.advance(999);
    assert!(fans(&acts).is_empty());
    let acts = r.advance(1);
    assert_eq!(fans(&acts), vec![manual(0, true)]);
    // Still failing; the gate opens on time regardless.
    r.ev(Event::FanDone {
        command: manual(0, true),
        ok: false,
    });
    r.phase(Working);
    let acts = r.advance(500);
    assert!(r.core.is_open());
    assert!(fans(&acts).contains(&manual(0, false)));
    // The superseded failure does not come back.
    let acts = r.advance(5_000);
    assert!(!fans(&acts).contains(&manual(0, true)), "{:?}", fans(&acts));
}

#[test]
fn flapping_never_opens_before_a_full_settle() {
    let mut r = Rig::new(policy());
    // Working for 400 ms, then a blip, many times: never open.
    for _ in 0..20 {
        r.phase(Working);
        let acts = r.advance(400);
        assert_eq!(reads(&acts), 0);
        r.phase(FirmwareInit);
        r.advance(10);
    }
    assert!(!r.core.is_open());
    assert_eq!(
        r.core.gate_status().closes,
        0,
        "never opened, so never closed"
    );
    r.phase(Working);
    r.advance(500);
    assert!(r.core.is_open());
    // Fan commands while flapping: held once, no storm of writes.
    let zone0_manual: usize = r
        .log
        .iter()
        .filter(|(_, a)| *a == Action::Fan(manual(0, true)))
        .count();
    assert_eq!(zone0_manual, 1);
}

#[test]
fn every_phase_pair_behaves() {
    let all = [Working, FirmwareInit, Sleeping, Off, Unknown];
    for from in all {
        for to in all {
            let mut r = Rig::new(policy());
            r.phase(from);
            r.run(1_000, Ok(W25));
            let was_open = r.core.is_open();
            assert_eq!(was_open, from == Working, "{from}");
            r.phase(to);
            let acts = r.run(1_000, Ok(W25));
            let open = r.core.is_open();
            assert_eq!(open, to == Working, "{from} -> {to}");
            if to != Working {
                assert_eq!(reads(&acts), 0, "{from} -> {to}");
                assert!(r.view(0).value.is_nan());
                assert!(!r.view(0).available);
            } else if from == Working {
                assert!(reads(&acts) >= 10, "still reading: {from} -> {to}");
            }
            let held = to == FirmwareInit || (from == FirmwareInit && to == Unknown);
            let last_zone0 = r.log.iter().rev().find_map(|(_, a)| match a {
                Action::Fan(FanCommand::ZoneManual { zone: 0, manual }) => Some(*manual),
                _ => None,
            });
            if held {
                assert_eq!(last_zone0, Some(true), "{from} -> {to}");
            } else if last_zone0.is_some() {
                assert_eq!(last_zone0, Some(false), "{from} -> {to}");
            }
        }
    }
}

#[test]
fn out_of_order_updates_are_ignored() {
    let mut r = Rig::new(policy());
    let upd = |phase, generation| {
        Event::Phase(PhaseUpdate {
            phase,
            since_us: T0_WALL,
            generation: Some(generation),
            reason: String::new(),
        })
    };
    r.ev(upd(FirmwareInit, 7));
    // A stale Working (e.g. an old GetAll reply) must not open the gate.
    r.ev(upd(Working, 6));
    r.advance(2_000);
    assert!(!r.core.is_open());
    r.ev(upd(Working, 8));
    r.advance(500);
    assert!(r.core.is_open());
    // A stale FirmwareInit is ignored too (we already know better).
    r.ev(upd(FirmwareInit, 7));
    assert!(r.core.is_open());
    // Only a lower generation is stale: an equal one is taken as it comes.
    r.ev(upd(Off, 8));
    assert!(!r.core.is_open());
    assert!(r.log.iter().any(|(_, a)| matches!(a,
        Action::Log { message, .. } if message.contains("out-of-order"))));
}

#[test]
fn losing_the_source_closes_and_forgets_the_generation() {
    let mut r = Rig::new(policy());
    r.generation = 40;
    r.phase(Working);
    r.advance(500);
    assert!(r.core.is_open());
    r.ev(Event::PhaseSourceLost);
    assert!(!r.core.is_open());
    assert_eq!(r.core.gate_status().phase, Unknown);
    // A restarted source that lost its state file counts from 1 again.
    r.generation = 0;
    r.phase(Working);
    r.advance(500);
    assert!(r.core.is_open());
}

#[test]
fn thresholds_assert_and_deassert_with_hysteresis() {
    let mut r = Rig::new(policy());
    r.phase(Working);
    let at = |c: f64| Ok(((c * 16.0) as u16).swap_bytes());
    r.run(500, at(50.0));
    let acts = r.run(100, at(80.0));
    assert_eq!(
        alarms(&acts),
        vec![(Severity::Warning, Direction::High, true)]
    );
    let acts = r.run(100, at(91.0));
    assert_eq!(
        alarms(&acts),
        vec![(Severity::Critical, Direction::High, true)]
    );
    let acts = r.run(100, at(88.5));
    assert!(alarms(&acts).is_empty(), "within hysteresis");
    let acts = r.run(100, at(87.0));
    assert_eq!(
        alarms(&acts),
        vec![(Severity::Critical, Direction::High, false)]
    );
    let acts = r.run(100, at(79.0));
    assert!(alarms(&acts).is_empty(), "78 < 79 < 80");
    let acts = r.run(100, at(3.0));
    assert_eq!(
        alarms(&acts),
        vec![
            (Severity::Warning, Direction::High, false),
            (Severity::Warning, Direction::Low, true)
        ]
    );
    // Closing clears alarms: there is no value to alarm on.
    let acts = r.phase(FirmwareInit);
    assert_eq!(
        alarms(&acts),
        vec![(Severity::Warning, Direction::Low, false)]
    );
}

#[test]
fn gate_disabled_reads_in_every_phase() {
    let mut p = policy();
    p.gate_enabled = false;
    let mut r = Rig::new(p);
    assert!(r.log.iter().any(|(_, a)| matches!(a,
        Action::Log { warn: true, message } if message.contains("DISABLED"))));
    for ph in [Unknown, FirmwareInit, Off, Working] {
        r.phase(ph);
        let acts = r.run(1_000, Ok(W25));
        assert!(reads(&acts) >= 20, "{ph}");
        assert!(fans(&acts).is_empty(), "no fan hold without the gate");
    }
    assert!(r.core.gate_status().open && !r.core.gate_status().enabled);
}

#[test]
fn one_transfer_per_bus_so_a_close_leaves_at_most_one_in_flight() {
    let base = Instant::now();
    let now = |ms: u64| Now {
        mono: base + Duration::from_millis(ms),
        wall_usec: T0_WALL + ms * 1000,
    };
    let specs: Vec<SensorSpec> = (0..4u8)
        .map(|i| SensorSpec {
            bus: 0,
            ..sensor(&format!("S{i}"), DeviceKind::Jc42, 0x18 + i)
        })
        .collect();
    let mut p = policy();
    p.settle = Duration::ZERO;
    let mut c = Core::new(p, specs, vec![], now(0));
    c.start(now(0));
    let acts = c.handle(
        now(0),
        Event::Phase(PhaseUpdate {
            phase: Working,
            since_us: T0_WALL,
            generation: Some(1),
            reason: String::new(),
        }),
    );
    assert_eq!(
        reads(&acts),
        1,
        "four sensors on one bus: one read at a time"
    );
    // Its completion starts the next one at once (no timer needed).
    let acts = c.handle(
        now(1),
        Event::ReadDone {
            sensor: 0,
            result: Ok(W25),
        },
    );
    assert_eq!(
        acts.iter()
            .filter_map(|a| match a {
                Action::StartRead { sensor, .. } => Some(*sensor),
                _ => None,
            })
            .collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(
        c.next_deadline(),
        None,
        "the bus is busy: the completion drives it"
    );
    // Close with sensor 1 on the wire: nothing else starts, even when it finishes.
    c.handle(
        now(2),
        Event::Phase(PhaseUpdate {
            phase: FirmwareInit,
            since_us: T0_WALL,
            generation: Some(2),
            reason: String::new(),
        }),
    );
    assert_eq!(c.in_flight(), 1);
    let acts = c.handle(
        now(3),
        Event::ReadDone {
            sensor: 1,
            result: Ok(W25),
        },
    );
    assert_eq!(reads(&acts), 0);
}

#[test]
fn refused_reads_are_counted_per_due_sensor() {
    let mut r = Rig::new(policy());
    r.phase(FirmwareInit);
    let before = r.core.gate_status().refused;
    r.advance(1_000);
    // Nothing happened meanwhile, so nothing was counted yet...
    assert_eq!(r.core.gate_status().refused, before);
    // ...until the next event: 2 sensors × 10 polls (± the boundary poll).
    r.phase(Working);
    let refused = r.core.gate_status().refused - before;
    assert!((20..=22).contains(&refused), "{refused}");
    // Counting stops once open: the settle delay passes and reads start.
    r.run(1_000, Ok(W25));
    let settled = r.core.gate_status().refused;
    r.run(1_000, Ok(W25));
    assert_eq!(r.core.gate_status().refused, settled);
}

#[test]
fn working_again_with_a_higher_generation_is_a_fresh_entry() {
    let mut r = Rig::new(policy());
    r.phase(Working);
    r.run(1_000, Ok(W25));
    assert!(r.core.is_open());
    let closes = r.core.gate_status().closes;
    // The same update again (same generation) changes nothing.
    let g = r.generation;
    let acts = r.ev(Event::Phase(PhaseUpdate {
        phase: Working,
        since_us: 0,
        generation: Some(g),
        reason: "repeat".to_owned(),
    }));
    assert!(r.core.is_open(), "{acts:?}");
    // A reset came and went between two updates: Working, two generations on.
    r.generation += 1;
    let acts = r.phase(Working);
    assert!(!r.core.is_open(), "{acts:?}");
    assert_eq!(r.core.gate_status().closes, closes + 1);
    assert_eq!(r.view(0), unavailable());
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Log { warn: true, .. }))
    );
    // One readable sentence (a string continuation once left a run of spaces in it).
    assert!(
        acts.iter().any(|a| matches!(a, Action::Log { message, .. }
            if message.contains("a reset came and went unseen; closing the gate"))),
        "{acts:?}"
    );
    // Closed for the whole settle delay, then open again.
    assert_eq!(reads(&r.run(499, Ok(W25))), 0);
    assert!(reads(&r.run(2, Ok(W25))) > 0);
    assert!(r.core.is_open());
}

#[test]
fn a_closed_gate_sets_no_timer() {
    // While the host is off the daemon must sleep: no deadline, whatever the phase.
    for p in [Off, Sleeping, FirmwareInit, Unknown] {
        let mut r = Rig::new(policy());
        r.phase(Working);
        r.run(1_000, Ok(W25));
        assert!(r.core.is_open());
        r.phase(p);
        // Reads in flight at the close still report back; after that, nothing is due.
        r.run(10, Ok(W25));
        let fan_retry = r.core.next_deadline();
        assert_eq!(fan_retry, None, "{p:?}: deadline {fan_retry:?}");
    }
}

#[test]
fn the_gate_status_is_published_only_on_change() {
    let mut r = Rig::new(policy());
    r.phase(Working);
    r.run(500, Ok(W25));
    let n = r
        .log
        .iter()
        .filter(|(_, a)| matches!(a, Action::PublishGate(_)))
        .count();
    r.run(5_000, Ok(W25));
    let m = r
        .log
        .iter()
        .filter(|(_, a)| matches!(a, Action::PublishGate(_)))
        .count();
    // Open and reading: reads come and go, but the published status does not change.
    assert_eq!(n, m);
}

/// Random event sequences against the invariants that matter, with a tiny deterministic
/// generator (no dependency): a read starts only after `Working` has lasted the settle
/// delay with no other phase since; never two reads on one bus, so with two sensors on each
/// of the two buses never more than two in flight, and exactly the reads started and not yet
/// answered; a sensor is published available only while the gate is open, and never shows
/// a NaN on an available input on the way; fans are never held while the gate is open.
#[test]
fn random_sequences_keep_the_invariants() {
    const BUSES: usize = 2;
    // Sensors 0 and 1 on bus 0, 2 and 3 on bus 1 (`sensor` puts 0x50.. on bus 1).
    let bus_of = |i: usize| usize::from(i >= 2);
    let phases = [Working, FirmwareInit, Sleeping, Off, Unknown];
    for seed in 1..=200u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut r = Rig::with_sensors(
            policy(),
            vec![
                sensor("DIMM_A0", DeviceKind::Jc42, 0x18),
                sensor("DIMM_A1", DeviceKind::Jc42, 0x19),
                sensor("DIMM_B0", DeviceKind::Spd5118, 0x50),
                sensor("DIMM_B1", DeviceKind::Spd5118, 0x51),
            ],
        );
        // What the sensor objects show (created unavailable, with no value).
        let mut shown = [unavailable(); 4];
        let settle = Duration::from_millis(500);
        // When the current entry into Working began (None: not working).
        let mut working_since: Option<Duration> = None;
        let mut in_flight: Vec<usize> = Vec::new();
        let mut held = false;
        for step in 0..300 {
            let acts = match rng.u64(..10) {
                0 | 1 => {
                    let p = phases[rng.u64(..5) as usize];
                    // Every update the rig sends has a new generation, so Working after
                    // Working is a reset seen late: a fresh entry that settles again.
                    working_since = (p == Working).then_some(r.at);
                    r.phase(p)
                }
                2 if !in_flight.is_empty() => {
                    let i = in_flight.remove(rng.u64(..in_flight.len() as u64) as usize);
                    let result = if rng.u64(..4) == 0 {
                        Err(SmbusError::Nack)
                    } else {
                        Ok(W25)
                    };
                    r.ev(Event::ReadDone { sensor: i, result })
                }
                3 => r.ev(Event::PhaseSourceLost),
                _ => r.advance(rng.u64(..300)),
            };
            // PhaseSourceLost means Unknown.
            if r.core.gate_status().phase != Working {
                working_since = None;
            }
            for a in &acts {
                match a {
                    Action::StartRead { sensor, .. } => {
                        let since = working_since.unwrap_or_else(|| {
                            panic!("seed {seed} step {step}: read while not working")
                        });
                        assert!(
                            r.at >= since + settle,
                            "seed {seed} step {step}: read {:?} into Working",
                            r.at - since
                        );
                        let bus = bus_of(*sensor);
                        assert!(
                            !in_flight.iter().any(|&i| bus_of(i) == bus),
                            "seed {seed} step {step}: two reads on bus {bus}"
                        );
                        in_flight.push(*sensor);
                    }
                    Action::PublishSensor {
                        sensor,
                        view,
                        order,
                    } => {
                        assert!(
                            !view.available || r.core.is_open(),
                            "seed {seed} step {step}: available while closed"
                        );
                        let before = shown[*sensor];
                        if let Some(seen) = nan_on_an_available_input(before, *view, *order) {
                            panic!(
                                "seed {seed} step {step}: {before:?} -> {view:?} shows {seen:?}"
                            );
                        }
                        shown[*sensor] = *view;
                    }
                    Action::Fan(FanCommand::ZoneManual { manual, .. }) => held = *manual,
                    _ => {}
                }
            }
            assert!(
                !(held && r.core.is_open()),
                "seed {seed} step {step}: fans held with the gate open"
            );
            assert_eq!(
                r.core.in_flight(),
                in_flight.len(),
                "seed {seed} step {step}: the core's reads in flight are not the ones started"
            );
            assert!(
                r.core.in_flight() <= BUSES,
                "seed {seed} step {step}: {} reads in flight on {BUSES} buses",
                r.core.in_flight()
            );
        }
    }
}

fn master(bus: &str, kind: MasterKind, detail: &str) -> OtherMaster {
    OtherMaster {
        bus: bus.to_owned(),
        kind,
        detail: detail.to_owned(),
    }
}

fn logs(acts: &[Action]) -> Vec<(bool, String)> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Log { warn, message } => Some((*warn, message.clone())),
            _ => None,
        })
        .collect()
}

fn published_masters(acts: &[Action]) -> Option<Vec<OtherMaster>> {
    acts.iter().rev().find_map(|a| match a {
        Action::PublishGate(s) => Some(s.other_masters.clone()),
        _ => None,
    })
}

#[test]
fn other_masters_are_logged_once_when_they_appear_and_once_when_they_go() {
    let mut r = Rig::new(policy());
    let jc42 = master("dimm", MasterKind::Driver, "jc42 bound to 3-0018");
    let open = master(
        "dimm",
        MasterKind::OpenDevice,
        "pid 812 (i2cget) holds /dev/i2c-3 open",
    );
    let fru = master("dimm", MasterKind::FruDevice, "bus 3 not blocked");

    // Found in scan order; published sorted, each logged as a warning with its remedy.
    let acts = r.ev(Event::OtherMasters(vec![
        open.clone(),
        jc42.clone(),
        fru.clone(),
    ]));
    let mut sorted = vec![jc42.clone(), open.clone(), fru.clone()];
    sorted.sort();
    assert_eq!(published_masters(&acts), Some(sorted.clone()));
    let l = logs(&acts);
    assert_eq!(l.len(), 3, "{l:?}");
    assert!(l.iter().all(|(warn, _)| *warn));
    assert!(
        l.iter()
            .any(|(_, m)| m.contains("jc42 bound to 3-0018 (driver)") && m.contains("unbind"))
    );
    assert!(
        l.iter()
            .any(|(_, m)| m.contains("(frudevice)")
                && m.contains("ACPIGATE_FRUDEVICE_BLOCKED_BUSES"))
    );

    // The same scan again: nothing logged, nothing republished.
    let acts = r.ev(Event::OtherMasters(vec![
        fru.clone(),
        jc42.clone(),
        open.clone(),
    ]));
    assert!(logs(&acts).is_empty(), "{acts:?}");
    assert_eq!(published_masters(&acts), None);

    // The process went away: one line at info level, the set republished.
    let acts = r.ev(Event::OtherMasters(vec![jc42.clone(), fru.clone()]));
    assert_eq!(
        logs(&acts),
        vec![(
            false,
            format!("no longer on DIMM bus dimm: {} (open)", open.detail)
        )]
    );
    let mut left = vec![jc42.clone(), fru.clone()];
    left.sort();
    assert_eq!(published_masters(&acts), Some(left));
    assert_eq!(r.core.gate_status().other_masters.len(), 2);

    // A clean scan empties it.
    let acts = r.ev(Event::OtherMasters(vec![]));
    assert_eq!(logs(&acts).len(), 2);
    assert_eq!(published_masters(&acts), Some(vec![]));
}

#[test]
fn other_masters_never_move_the_gate() {
    let mut r = Rig::new(policy());
    r.phase(Working);
    r.advance(600);
    assert!(r.core.is_open());
    let acts = r.ev(Event::OtherMasters(vec![master(
        "dimm",
        MasterKind::Eeprom,
        "ee1004 eeprom at 3-0050",
    )]));
    assert!(r.core.is_open(), "a finding closed the gate: {acts:?}");
    assert!(!acts.iter().any(|a| matches!(a, Action::CloseBus)));
    r.phase(FirmwareInit);
    assert!(!r.core.is_open());
    let acts = r.ev(Event::OtherMasters(vec![]));
    assert!(!r.core.is_open(), "a clean scan opened the gate: {acts:?}");
}

// ---- Sensors that come and go (entity-manager records appearing and going) ----

impl Rig {
    fn add(&mut self, spec: SensorSpec) -> (usize, Vec<Action>) {
        let now = self.now();
        let (i, acts) = self.core.add_sensor(now, spec);
        (i, self.record(acts))
    }
}

fn published(acts: &[Action], sensor: usize) -> Vec<SensorView> {
    acts.iter()
        .filter_map(|a| match a {
            Action::PublishSensor {
                sensor: s, view, ..
            } if *s == sensor => Some(*view),
            _ => None,
        })
        .collect()
}

#[test]
fn a_sensor_added_while_closed_shows_the_closed_gate_and_is_read_once_open() {
    // Off with the non-functional marking: the new sensor is marked like the others.
    let mut r = Rig::new(Policy {
        off_marking: OffMarking::NonFunctional,
        ..policy()
    });
    r.phase(Off);
    let (i, acts) = r.add(sensor("DIMM_A1", DeviceKind::Jc42, 0x19));
    assert_eq!(i, 2, "numbered after the configured ones");
    assert_eq!(reads(&acts), 0, "no read while closed");
    let marked = SensorView {
        value: NAN,
        available: true,
        functional: false,
    };
    assert_eq!(published(&acts, i), vec![marked]);
    assert_eq!(r.view(i), r.view(0), "shown as the sensors already there");
    r.phase(Working);
    let acts = r.run(600, Ok(W25));
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::StartRead { sensor, addr: 0x19, .. } if *sensor == i)),
        "read once the gate opened: {acts:?}"
    );
    assert_eq!(r.view(i).value, 25.0);
}

#[test]
fn a_sensor_added_while_open_is_read_at_once_but_never_beside_a_read_on_its_bus() {
    let mut r = Rig::new(policy());
    r.phase(Working);
    r.run(600, Ok(W25));
    // A read of DIMM_A0 (bus 0) in flight: the new sensor on bus 0 waits for it.
    let acts = r.advance(100);
    assert_eq!(reads(&acts), 2, "{acts:?}");
    let (i, acts) = r.add(sensor("DIMM_A1", DeviceKind::Jc42, 0x19));
    assert_eq!(reads(&acts), 0, "bus 0 is busy: {acts:?}");
    assert_eq!(published(&acts, i), vec![unavailable()]);
    let acts = r.ev(Event::ReadDone {
        sensor: 0,
        result: Ok(W25),
    });
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::StartRead { sensor, .. } if *sensor == i)),
        "started when the bus came free: {acts:?}"
    );
}

#[test]
fn a_removed_sensor_is_never_read_or_published_and_its_number_is_not_reused() {
    let mut r = Rig::new(policy());
    r.phase(Working);
    r.run(600, Ok(W25));
    let acts = r.advance(100);
    assert_eq!(reads(&acts), 2);
    // Removed with its read on the wire.
    let now = r.now();
    let acts = r.core.remove_sensor(now, 0);
    assert!(acts.is_empty(), "{acts:?}");
    assert_eq!(r.core.sensor_view(0), None);
    let acts = r.ev(Event::ReadDone {
        sensor: 0,
        result: Ok(W25),
    });
    assert!(published(&acts, 0).is_empty(), "{acts:?}");
    assert_eq!(r.core.gate_status().discarded, 0, "not a gating discard");
    r.ev(Event::ReadDone {
        sensor: 1,
        result: Ok(W25),
    });
    // A sensor added later on the same bus gets a new number; the old one stays silent.
    let (i, acts) = r.add(sensor("DIMM_A0", DeviceKind::Jc42, 0x18));
    assert_eq!(i, 2);
    assert_eq!(reads(&acts), 1, "the bus is free: read at once");
    r.ev(Event::ReadDone {
        sensor: 2,
        result: Ok(W25),
    });
    let acts = r.run(1000, Ok(W25));
    assert!(
        !acts.iter().any(|a| matches!(
            a,
            Action::StartRead { sensor: 0, .. } | Action::PublishSensor { sensor: 0, .. }
        )),
        "{acts:?}"
    );
    assert!(reads(&acts) > 0);
    // Closing and reopening never brings it back either.
    let acts = r.phase(Off);
    assert!(published(&acts, 0).is_empty(), "{acts:?}");
    r.phase(Working);
    let acts = r.run(1000, Ok(W25));
    assert!(
        published(&acts, 0).is_empty()
            && !acts
                .iter()
                .any(|a| matches!(a, Action::StartRead { sensor: 0, .. }))
    );
}

#[test]
fn changed_thresholds_are_published_in_place_and_a_dropped_one_deasserts_its_alarm() {
    let mut r = Rig::new(policy());
    r.phase(Working);
    let at = |c: f64| Ok(((c * 16.0) as u16).swap_bytes());
    r.run(600, at(85.0));
    let old = sensor("x", DeviceKind::Jc42, 0x18).thresholds;
    // Unchanged: nothing.
    let now = r.now();
    assert!(r.core.set_thresholds(now, 0, old).is_empty());
    // Warning high dropped, critical high lowered below the value.
    let new = Thresholds {
        warning_high: None,
        critical_high: Some(84.0),
        ..old
    };
    let acts = r.core.set_thresholds(now, 0, new);
    assert_eq!(
        acts[0],
        Action::PublishThresholds {
            sensor: 0,
            thresholds: new
        }
    );
    assert_eq!(
        alarms(&acts),
        vec![(Severity::Warning, Direction::High, false)]
    );
    // The new critical limit is judged at the next read.
    let acts = r.run(100, at(85.0));
    assert_eq!(
        alarms(&acts),
        vec![(Severity::Critical, Direction::High, true)]
    );
    // A removed sensor takes no thresholds.
    r.core.remove_sensor(now, 0);
    assert!(r.core.set_thresholds(now, 0, old).is_empty());
}
