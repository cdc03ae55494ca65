//! Golden byte tests: every command, every error path, and a randomized property sweep.

use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::state::{ChassisPowerState, ChassisTransition, HostTransition};
use openbmc_vocab::time::Now;

use super::numbering::SensorNumbers;
use super::platform::{PlatformView, SensorSnapshot};
use super::sel::SelStore;
use super::types::{cmd, netfn};
use super::*;

const ACPI_KEY: &str = "/xyz/openbmc_project/control/host0/acpi_power_state";
const DIMM_A0: &str = "/xyz/openbmc_project/sensors/temperature/DIMM_A0";
const DIMM_B0: &str = "/xyz/openbmc_project/sensors/temperature/DIMM_B0";
const NOW: u32 = 0x6000_0000;

/// Virtual time: wall clock `secs`, monotonic `mono_ms` after one fixed origin.
fn at(secs: u32, mono_ms: u64) -> Now {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    Now {
        mono: *ORIGIN.get_or_init(std::time::Instant::now)
            + std::time::Duration::from_millis(mono_ms),
        wall_usec: u64::from(secs) * 1_000_000,
    }
}

fn config() -> CoreConfig {
    CoreConfig {
        device_id: DeviceId {
            id: 0x20,
            revision: 0x01,
            fw_major: 2,
            fw_minor: 14,
            addn_dev_support: 0x87,
            manuf_id: 0x00_A0A1,
            prod_id: 0x4243,
            aux: 0x0403_0201,
        },
        system_guid: std::array::from_fn(|i| i as u8),
        device_guid: std::array::from_fn(|i| 0xF0 | i as u8),
        acpi_sensor_key: ACPI_KEY.to_owned(),
        acpi_sensor_name: "ACPI_STATUS".to_owned(),
        temperature_entity: (0x20, 0x01),
        acpi_entity: (0x07, 0x01),
        sel_capacity: 4,
        sel_rate: RATE,
    }
}

/// The tests' SEL rate limit: a burst of 8, then 2 a second.
const RATE: limit::SelRateLimit = limit::SelRateLimit {
    per_second: 2,
    burst: 8,
};

fn core() -> Core {
    Core::new(config(), SelStore::new(4), SensorNumbers::default())
}

fn dimm(path: &str, value: f64) -> SensorSnapshot {
    let mut s = SensorSnapshot::new(path, value);
    s.min = -128.0;
    s.max = 127.0;
    s.warning_high = 85.0;
    s.critical_high = 95.0;
    s
}

fn view() -> PlatformView {
    PlatformView {
        acpi: Some((AcpiState::S0G0D0, AcpiState::S0G0D0)),
        chassis_power: Some(ChassisPowerState::On),
        sensors: vec![dimm(DIMM_A0, 30.0), dimm(DIMM_B0, 40.0)],
        now: at(NOW, 0),
    }
}

/// A core that has seen the two DIMMs (ACPI 1, DIMM_A0 2, DIMM_B0 3).
fn core_with_sensors() -> Core {
    let mut c = core();
    c.observe_sensors([DIMM_A0, DIMM_B0], NOW);
    c
}

fn req(netfn: u8, cmd: u8, data: &[u8]) -> Request {
    Request {
        netfn,
        lun: 0,
        cmd,
        data: data.to_vec(),
        channel: Channel {
            number: 15,
            kind: ChannelKind::SystemInterface,
        },
        privilege: Privilege::Admin,
        rq_sa: None,
    }
}

/// Decide and, on success, commit; returns (cc, data, effects).
fn run(c: &mut Core, v: &PlatformView, r: &Request) -> (u8, Vec<u8>, Vec<Effect>) {
    // `decide` takes `&self` and the core has no interior mutability: it cannot change it.
    let d = c.decide(r, v);
    if d.cc != 0 {
        assert!(d.effects.is_empty(), "rejection with effects: {d:?}");
        assert!(d.data.is_empty(), "rejection with data: {d:?}");
    } else {
        c.commit(&d.effects);
    }
    (d.cc, d.data, d.effects)
}

fn call(c: &mut Core, netfn: u8, cmd: u8, data: &[u8]) -> (u8, Vec<u8>, Vec<Effect>) {
    run(c, &view(), &req(netfn, cmd, data))
}

fn cc_of(c: &mut Core, netfn: u8, cmd: u8, data: &[u8]) -> u8 {
    call(c, netfn, cmd, data).0
}

// ---- routing and privilege ----

#[test]
fn unknown_commands_are_c1() {
    let mut c = core();
    assert_eq!(cc_of(&mut c, netfn::APP, 0x99, &[]), 0xC1);
    assert_eq!(cc_of(&mut c, 0x2E, 0x01, &[]), 0xC1);
    let r = req(netfn::APP, 0x99, &[]).clone();
    let resp = c.decide(&r, &view()).response(&r);
    assert_eq!((resp.netfn, resp.cmd, resp.cc), (0x07, 0x99, 0xC1));
}

#[test]
fn privilege_levels_per_command() {
    let table: &[(u8, u8, &[u8], Privilege)] = &[
        (netfn::APP, cmd::app::GET_DEVICE_ID, &[], Privilege::User),
        (
            netfn::APP,
            cmd::app::SET_ACPI_POWER_STATE,
            &[0x82, 0x82],
            Privilege::Admin,
        ),
        (
            netfn::APP,
            cmd::app::GET_ACPI_POWER_STATE,
            &[],
            Privilege::User,
        ),
        (
            netfn::CHASSIS,
            cmd::chassis::CHASSIS_CONTROL,
            &[1],
            Privilege::Operator,
        ),
        (
            netfn::STORAGE,
            cmd::storage::ADD_SEL_ENTRY,
            &[0x02; 16],
            Privilege::Operator,
        ),
        (
            netfn::STORAGE,
            cmd::storage::SET_SEL_TIME,
            &[0; 4],
            Privilege::Operator,
        ),
        (
            netfn::STORAGE,
            cmd::storage::GET_SEL_INFO,
            &[],
            Privilege::User,
        ),
    ];
    for &(n, cm, data, need) in table {
        for p in [
            Privilege::None,
            Privilege::Callback,
            Privilege::User,
            Privilege::Operator,
            Privilege::Admin,
        ] {
            let mut r = req(n, cm, data);
            r.privilege = p;
            let d = core().decide(&r, &view());
            if p < need {
                assert_eq!(d.cc, 0xD4, "{n:#x}/{cm:#x} at {p:?}");
                assert!(d.effects.is_empty());
            } else {
                assert_eq!(d.cc, 0x00, "{n:#x}/{cm:#x} at {p:?}");
            }
        }
        assert_eq!(required_privilege(n, cm), Some(need));
    }
}

// ---- App ----

#[test]
fn get_device_id_golden() {
    let mut c = core();
    let (cc, data, fx) = call(&mut c, netfn::APP, cmd::app::GET_DEVICE_ID, &[]);
    assert_eq!(cc, 0);
    assert!(fx.is_empty());
    assert_eq!(
        data,
        [
            0x20, 0x01, 0x02, 0x14, 0x02, 0x87, 0xA1, 0xA0, 0x00, 0x43, 0x42, 0x01, 0x02, 0x03,
            0x04
        ]
    );
    assert_eq!(
        cc_of(&mut c, netfn::APP, cmd::app::GET_DEVICE_ID, &[0]),
        0xC7
    );
}

#[test]
fn self_test_and_guids() {
    let mut c = core();
    assert_eq!(
        call(&mut c, netfn::APP, cmd::app::GET_SELF_TEST_RESULTS, &[]).1,
        [0x55, 0x00]
    );
    assert_eq!(
        call(&mut c, netfn::APP, cmd::app::GET_SYSTEM_GUID, &[]).1,
        (0u8..16).collect::<Vec<_>>()
    );
    assert_eq!(
        call(&mut c, netfn::APP, cmd::app::GET_DEVICE_GUID, &[]).1,
        (0u8..16).map(|i| 0xF0 | i).collect::<Vec<_>>()
    );
    for cm in [
        cmd::app::GET_SELF_TEST_RESULTS,
        cmd::app::GET_SYSTEM_GUID,
        cmd::app::GET_DEVICE_GUID,
    ] {
        assert_eq!(cc_of(&mut c, netfn::APP, cm, &[1]), 0xC7);
    }
}

#[test]
fn set_acpi_power_state_table() {
    use AcpiState::*;
    use Effect::{SetDevAcpi as D, SetSysAcpi as S};
    let cases: &[(&[u8], u8, &[Effect])] = &[
        (&[0x82, 0x82], 0x00, &[S(S2D2), D(S2D2)]),
        (&[0x80, 0x80], 0x00, &[S(S0G0D0), D(S0G0D0)]),
        (&[0x85, 0x03], 0x00, &[S(S5G2)]), // device bit 7 clear: left alone
        (&[0x05, 0x83], 0x00, &[D(S3D3)]),
        (&[0x05, 0x03], 0x00, &[]),
        (&[0xFF, 0xFF], 0x00, &[]), // 0x7F: no change
        (&[0xFF, 0x81], 0x00, &[D(S1D1)]),
        (&[0x8A, 0xAA], 0x00, &[S(Override), D(Unknown)]),
        (&[0xA0, 0x80], 0x00, &[S(LegacyOn), D(S0G0D0)]),
        (&[0xA1, 0xFF], 0x00, &[S(LegacyOff)]),
        (&[0xAA, 0xFF], 0x00, &[S(Unknown)]),
        // Invalid system code, valid device code: nothing is written.
        (&[0x8B, 0x82], 0xC9, &[]),
        (&[0x9F, 0x82], 0xC9, &[]),
        (&[0xA2, 0x82], 0xC9, &[]),
        (&[0xFE, 0x82], 0xC9, &[]),
        // Valid system code, invalid device code: the system state is NOT written either.
        (&[0x82, 0x84], 0xC9, &[]),
        (&[0x82, 0x85], 0xC9, &[]),
        (&[0x82, 0xA0], 0xC9, &[]),
        (&[0x82, 0xFE], 0xC9, &[]),
        // Invalid code with bit 7 clear is ignored, like any unset byte.
        (&[0x0B, 0x84], 0xC9, &[]),
        (&[0x82, 0x04], 0x00, &[S(S2D2)]),
        (&[], 0xC7, &[]),
        (&[0x82], 0xC7, &[]),
        (&[0x82, 0x82, 0x00], 0xC7, &[]),
    ];
    for (data, cc, effects) in cases {
        let (got_cc, got_data, got_fx) = call(
            &mut core(),
            netfn::APP,
            cmd::app::SET_ACPI_POWER_STATE,
            data,
        );
        assert_eq!(
            (got_cc, &got_fx[..]),
            (*cc, *effects),
            "request {data:02x?}"
        );
        assert!(got_data.is_empty());
    }
}

#[test]
fn set_acpi_accepts_exactly_the_documented_codes() {
    for code in 0u8..0x80 {
        let sys_ok = code <= 0x0A || matches!(code, 0x20 | 0x21 | 0x2A | 0x7F);
        let dev_ok = code <= 0x03 || matches!(code, 0x2A | 0x7F);
        let cc = cc_of(
            &mut core(),
            netfn::APP,
            cmd::app::SET_ACPI_POWER_STATE,
            &[0x80 | code, 0x7F],
        );
        assert_eq!(cc == 0, sys_ok, "system {code:#x}");
        let cc = cc_of(
            &mut core(),
            netfn::APP,
            cmd::app::SET_ACPI_POWER_STATE,
            &[0x7F, 0x80 | code],
        );
        assert_eq!(cc == 0, dev_ok, "device {code:#x}");
    }
}

#[test]
fn get_acpi_power_state() {
    let mut c = core();
    let mut v = view();
    let r = req(netfn::APP, cmd::app::GET_ACPI_POWER_STATE, &[]);
    for (sys, dev, bytes) in [
        (AcpiState::S2D2, AcpiState::S2D2, [0x02, 0x02]),
        (AcpiState::S0G0D0, AcpiState::S0G0D0, [0x00, 0x00]),
        (AcpiState::S5G2, AcpiState::S3D3, [0x05, 0x03]),
        (AcpiState::LegacyOff, AcpiState::Unknown, [0x21, 0x2A]),
        (AcpiState::Unknown, AcpiState::S5G2, [0x2A, 0x2A]),
    ] {
        v.acpi = Some((sys, dev));
        assert_eq!(run(&mut c, &v, &r), (0, bytes.to_vec(), vec![]));
    }
    v.acpi = None;
    assert_eq!(run(&mut c, &v, &r).0, 0xFF);
    assert_eq!(
        cc_of(&mut c, netfn::APP, cmd::app::GET_ACPI_POWER_STATE, &[0]),
        0xC7
    );
}

// ---- Chassis ----

#[test]
fn chassis_status() {
    let mut c = core();
    let mut v = view();
    let r = req(netfn::CHASSIS, cmd::chassis::GET_CHASSIS_STATUS, &[]);
    assert_eq!(run(&mut c, &v, &r).1, [0x61, 0x00, 0x00]);
    v.chassis_power = Some(ChassisPowerState::Off);
    assert_eq!(run(&mut c, &v, &r).1, [0x60, 0x00, 0x00]);
    v.chassis_power = Some(ChassisPowerState::TransitioningToOn);
    assert_eq!(run(&mut c, &v, &r).1, [0x61, 0x00, 0x00]);
    v.chassis_power = None;
    assert_eq!(run(&mut c, &v, &r).0, 0xFF);
    assert_eq!(
        cc_of(
            &mut c,
            netfn::CHASSIS,
            cmd::chassis::GET_CHASSIS_STATUS,
            &[1]
        ),
        0xC7
    );
}

#[test]
fn chassis_control() {
    let cases: &[(&[u8], u8, &[Effect])] = &[
        (&[0x00], 0, &[Effect::Chassis(ChassisTransition::Off)]),
        (&[0x01], 0, &[Effect::Host(HostTransition::On)]),
        (
            &[0x02],
            0,
            &[Effect::Chassis(ChassisTransition::PowerCycle)],
        ),
        (&[0x03], 0, &[Effect::Host(HostTransition::ForceWarmReboot)]),
        (&[0x05], 0, &[Effect::Host(HostTransition::Off)]),
        (&[0x04], 0xCC, &[]),
        (&[0x06], 0xCC, &[]),
        (&[0x11], 0xCC, &[]),
        (&[], 0xC7, &[]),
        (&[0x01, 0x00], 0xC7, &[]),
    ];
    for (data, cc, fx) in cases {
        let (got_cc, _, got_fx) = call(
            &mut core(),
            netfn::CHASSIS,
            cmd::chassis::CHASSIS_CONTROL,
            data,
        );
        assert_eq!((got_cc, &got_fx[..]), (*cc, *fx), "{data:02x?}");
    }
}

// ---- SEL ----

const S: u8 = netfn::STORAGE;

fn event(sensor_number: u8) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[2] = 0x02;
    r[7] = 0x41;
    r[9] = 0x04;
    r[10] = 0x22;
    r[11] = sensor_number;
    r[12] = 0x6F;
    r[13..16].copy_from_slice(&[0x05, 0xFF, 0xFF]);
    r
}

#[test]
fn sel_info_alloc_and_time() {
    let mut c = core();
    assert_eq!(
        call(&mut c, S, cmd::storage::GET_SEL_INFO, &[]).1,
        [
            0x51, 0, 0, 64, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x0B
        ]
    );
    assert_eq!(
        call(&mut c, S, cmd::storage::GET_SEL_ALLOCATION_INFO, &[]).1,
        [4, 0, 16, 0, 4, 0, 4, 0, 1]
    );
    assert_eq!(
        call(&mut c, S, cmd::storage::GET_SEL_TIME, &[]).1,
        NOW.to_le_bytes()
    );
    let (cc, _, fx) = call(
        &mut c,
        S,
        cmd::storage::SET_SEL_TIME,
        &0x6000_0100u32.to_le_bytes(),
    );
    assert_eq!((cc, fx), (0, vec![Effect::SelTimeOffset(0x100)]));
    assert_eq!(
        call(&mut c, S, cmd::storage::GET_SEL_TIME, &[]).1,
        0x6000_0100u32.to_le_bytes()
    );
    // Records are stamped with SEL time.
    call(&mut c, S, cmd::storage::ADD_SEL_ENTRY, &event(1));
    let info = call(&mut c, S, cmd::storage::GET_SEL_INFO, &[]).1;
    assert_eq!(
        info,
        [
            0x51, 1, 0, 48, 0, 0x00, 0x01, 0x00, 0x60, 0xFF, 0xFF, 0xFF, 0xFF, 0x0B
        ]
    );
    for cm in [
        cmd::storage::GET_SEL_INFO,
        cmd::storage::GET_SEL_ALLOCATION_INFO,
        cmd::storage::GET_SEL_TIME,
        cmd::storage::RESERVE_SEL,
    ] {
        assert_eq!(cc_of(&mut c, S, cm, &[0]), 0xC7);
    }
    assert_eq!(cc_of(&mut c, S, cmd::storage::SET_SEL_TIME, &[0; 3]), 0xC7);
    assert_eq!(cc_of(&mut c, S, cmd::storage::SET_SEL_TIME, &[0; 5]), 0xC7);
}

#[test]
fn add_and_get_sel_entries() {
    let mut c = core();
    // Empty SEL: nothing to get.
    assert_eq!(
        cc_of(
            &mut c,
            S,
            cmd::storage::GET_SEL_ENTRY,
            &[0, 0, 0, 0, 0, 0xFF]
        ),
        0xCB
    );
    let (cc, id, _) = call(&mut c, S, cmd::storage::ADD_SEL_ENTRY, &event(7));
    assert_eq!((cc, id), (0, vec![1, 0]));
    assert_eq!(
        call(&mut c, S, cmd::storage::ADD_SEL_ENTRY, &event(8)).1,
        [2, 0]
    );
    let mut expected = event(7);
    expected[0] = 1;
    expected[3..7].copy_from_slice(&NOW.to_le_bytes());
    let (cc, data, _) = call(
        &mut c,
        S,
        cmd::storage::GET_SEL_ENTRY,
        &[0, 0, 0, 0, 0, 0xFF],
    );
    assert_eq!(cc, 0);
    assert_eq!(data, [&[2u8, 0][..], &expected].concat());
    // Last record: next is 0xFFFF.
    let data = call(
        &mut c,
        S,
        cmd::storage::GET_SEL_ENTRY,
        &[0, 0, 0xFF, 0xFF, 0, 0xFF],
    )
    .1;
    assert_eq!(&data[..4], &[0xFF, 0xFF, 2, 0]);
    // By ID; 16 as count is a whole read too.
    assert_eq!(
        call(&mut c, S, cmd::storage::GET_SEL_ENTRY, &[0, 0, 2, 0, 0, 16]).0,
        0
    );
    assert_eq!(
        cc_of(
            &mut c,
            S,
            cmd::storage::GET_SEL_ENTRY,
            &[0, 0, 3, 0, 0, 0xFF]
        ),
        0xCB
    );
    // Partial reads need the current reservation.
    assert_eq!(
        cc_of(&mut c, S, cmd::storage::GET_SEL_ENTRY, &[0, 0, 1, 0, 0, 5]),
        0xC5
    );
    assert_eq!(
        cc_of(
            &mut c,
            S,
            cmd::storage::GET_SEL_ENTRY,
            &[0, 0, 1, 0, 10, 0xFF]
        ),
        0xC5
    );
    let res = call(&mut c, S, cmd::storage::RESERVE_SEL, &[]).1;
    assert_eq!(res, [1, 0]);
    let (cc, data, _) = call(&mut c, S, cmd::storage::GET_SEL_ENTRY, &[1, 0, 1, 0, 10, 3]);
    assert_eq!((cc, data), (0, vec![2, 0, 0x22, 7, 0x6F]));
    let (_, data, _) = call(
        &mut c,
        S,
        cmd::storage::GET_SEL_ENTRY,
        &[1, 0, 1, 0, 14, 0xFF],
    );
    assert_eq!(data, [2, 0, 0xFF, 0xFF]);
    let (_, data, _) = call(
        &mut c,
        S,
        cmd::storage::GET_SEL_ENTRY,
        &[1, 0, 1, 0, 16, 0xFF],
    );
    assert_eq!(data, [2, 0]);
    assert_eq!(
        cc_of(&mut c, S, cmd::storage::GET_SEL_ENTRY, &[1, 0, 1, 0, 17, 1]),
        0xC9
    );
    // A new reservation cancels the old one.
    assert_eq!(call(&mut c, S, cmd::storage::RESERVE_SEL, &[]).1, [2, 0]);
    assert_eq!(
        cc_of(&mut c, S, cmd::storage::GET_SEL_ENTRY, &[1, 0, 1, 0, 10, 3]),
        0xC5
    );
    for len in [0usize, 5, 7] {
        assert_eq!(
            cc_of(&mut c, S, cmd::storage::GET_SEL_ENTRY, &vec![0; len]),
            0xC7
        );
    }
    assert_eq!(
        cc_of(&mut c, S, cmd::storage::ADD_SEL_ENTRY, &[0; 15]),
        0xC7
    );
    assert_eq!(
        cc_of(&mut c, S, cmd::storage::ADD_SEL_ENTRY, &[0; 17]),
        0xC7
    );
}

#[test]
fn oem_non_timestamped_records_keep_their_bytes() {
    let mut c = core();
    let mut r = [0xAB; 16];
    r[2] = 0xF0;
    call(&mut c, S, cmd::storage::ADD_SEL_ENTRY, &r);
    let data = call(
        &mut c,
        S,
        cmd::storage::GET_SEL_ENTRY,
        &[0, 0, 0, 0, 0, 0xFF],
    )
    .1;
    assert_eq!(&data[2..4], &[1, 0]);
    assert_eq!(&data[4..], &r[2..]);
}

#[test]
fn sel_is_bounded() {
    let mut c = core();
    for n in 1..=5 {
        call(&mut c, S, cmd::storage::ADD_SEL_ENTRY, &event(n));
    }
    let info = call(&mut c, S, cmd::storage::GET_SEL_INFO, &[]).1;
    assert_eq!(&info[1..5], &[4, 0, 0, 0]);
    assert_eq!(info[13], 0x8B, "overflow flag");
    let first = call(
        &mut c,
        S,
        cmd::storage::GET_SEL_ENTRY,
        &[0, 0, 0, 0, 0, 0xFF],
    )
    .1;
    assert_eq!(&first[2..4], &[2, 0], "oldest dropped");
}

#[test]
fn delete_and_clear_need_the_reservation() {
    let mut c = core();
    for n in 1..=3 {
        call(&mut c, S, cmd::storage::ADD_SEL_ENTRY, &event(n));
    }
    assert_eq!(
        cc_of(&mut c, S, cmd::storage::DELETE_SEL_ENTRY, &[0, 0, 2, 0]),
        0xC5
    );
    let res = call(&mut c, S, cmd::storage::RESERVE_SEL, &[]).1;
    assert_eq!(
        cc_of(
            &mut c,
            S,
            cmd::storage::DELETE_SEL_ENTRY,
            &[res[0], res[1], 9, 0]
        ),
        0xCB
    );
    let (cc, data, fx) = call(
        &mut c,
        S,
        cmd::storage::DELETE_SEL_ENTRY,
        &[res[0], res[1], 2, 0],
    );
    assert_eq!((cc, data, fx), (0, vec![2, 0], vec![Effect::SelDelete(2)]));
    // Deleting cancelled the reservation.
    assert_eq!(
        cc_of(
            &mut c,
            S,
            cmd::storage::DELETE_SEL_ENTRY,
            &[res[0], res[1], 3, 0]
        ),
        0xC5
    );
    let res = call(&mut c, S, cmd::storage::RESERVE_SEL, &[]).1;
    // 0xFFFF: the last record.
    assert_eq!(
        call(
            &mut c,
            S,
            cmd::storage::DELETE_SEL_ENTRY,
            &[res[0], res[1], 0xFF, 0xFF]
        )
        .1,
        [3, 0]
    );
    assert_eq!(
        cc_of(&mut c, S, cmd::storage::DELETE_SEL_ENTRY, &[0; 3]),
        0xC7
    );

    let res = call(&mut c, S, cmd::storage::RESERVE_SEL, &[]).1;
    let clr = |action: u8| [res[0], res[1], b'C', b'L', b'R', action];
    assert_eq!(
        cc_of(
            &mut c,
            S,
            cmd::storage::CLEAR_SEL,
            &[res[0], res[1], b'C', b'L', b'X', 0xAA]
        ),
        0xCC
    );
    assert_eq!(cc_of(&mut c, S, cmd::storage::CLEAR_SEL, &clr(0x55)), 0xCC);
    assert_eq!(
        cc_of(
            &mut c,
            S,
            cmd::storage::CLEAR_SEL,
            &[0, 0, b'C', b'L', b'R', 0xAA]
        ),
        0xC5
    );
    assert_eq!(
        cc_of(&mut c, S, cmd::storage::CLEAR_SEL, &clr(0xAA)[..5]),
        0xC7
    );
    assert_eq!(
        call(&mut c, S, cmd::storage::CLEAR_SEL, &clr(0x00)),
        (0, vec![1], vec![])
    );
    assert_eq!(c.sel().len(), 1);
    let (cc, data, fx) = call(&mut c, S, cmd::storage::CLEAR_SEL, &clr(0xAA));
    assert_eq!(
        (cc, data, fx),
        (0, vec![1], vec![Effect::SelClear { at: NOW }])
    );
    assert!(c.sel().is_empty());
    assert_eq!(c.sel().last_erase(), NOW);
    assert_eq!(cc_of(&mut c, S, cmd::storage::CLEAR_SEL, &clr(0xAA)), 0xC5);
}

// ---- SDR ----

#[test]
fn sdr_repository_walk() {
    let mut c = core_with_sensors();
    let info = call(&mut c, S, cmd::storage::GET_SDR_REPOSITORY_INFO, &[]).1;
    assert_eq!(info[..5], [0x51, 3, 0, 0, 0]);
    assert_eq!(info[5..9], NOW.to_le_bytes());
    assert_eq!(info[13], 0x02);
    // Whole-record reads need no reservation: ACPI (1) → DIMM_A0 (2) → DIMM_B0 (3) → end.
    let r1 = call(&mut c, S, cmd::storage::GET_SDR, &[0, 0, 0, 0, 0, 0xFF]).1;
    assert_eq!(&r1[..2], &[2, 0]);
    assert_eq!(&r1[2..7], &[1, 0, 0x51, 0x02, 38]);
    assert_eq!(&r1[2 + 5 + 2], &1, "ACPI sensor number");
    let r2 = call(&mut c, S, cmd::storage::GET_SDR, &[0, 0, 2, 0, 0, 0xFF]).1;
    assert_eq!(&r2[..7], &[3, 0, 2, 0, 0x51, 0x01, 50]);
    assert_eq!(&r2[r2.len() - 7..], b"DIMM_A0");
    let r3 = call(
        &mut c,
        S,
        cmd::storage::GET_SDR,
        &[0, 0, 0xFF, 0xFF, 0, 0xFF],
    )
    .1;
    assert_eq!(&r3[..4], &[0xFF, 0xFF, 3, 0]);
    assert_eq!(
        cc_of(&mut c, S, cmd::storage::GET_SDR, &[0, 0, 9, 0, 0, 0xFF]),
        0xCB
    );
    // ipmitool's way: reserve, read the header, then the rest at an offset.
    assert_eq!(
        cc_of(&mut c, S, cmd::storage::GET_SDR, &[0, 0, 2, 0, 5, 16]),
        0xC5
    );
    let res = call(&mut c, S, cmd::storage::RESERVE_SDR_REPOSITORY, &[]).1;
    assert_eq!(res, [1, 0]);
    let head = call(&mut c, S, cmd::storage::GET_SDR, &[1, 0, 2, 0, 0, 5]).1;
    assert_eq!(head, [3, 0, 2, 0, 0x51, 0x01, 50]);
    let mut body = Vec::new();
    let mut off = 5u8;
    while usize::from(off) < 55 {
        let d = call(&mut c, S, cmd::storage::GET_SDR, &[1, 0, 2, 0, off, 16]).1;
        body.extend_from_slice(&d[2..]);
        off += 16;
    }
    assert_eq!(body, r2[7..]);
    assert_eq!(
        cc_of(&mut c, S, cmd::storage::GET_SDR, &[1, 0, 2, 0, 56, 1]),
        0xC9
    );
    // A sensor leaving changes the repository: the reservation is cancelled.
    c.observe_sensors([DIMM_A0], NOW + 1);
    let mut v = view();
    v.sensors.truncate(1);
    assert_eq!(
        run(
            &mut c,
            &v,
            &req(S, cmd::storage::GET_SDR, &[1, 0, 2, 0, 5, 16])
        )
        .0,
        0xC5
    );
    assert_eq!(
        run(
            &mut c,
            &v,
            &req(S, cmd::storage::GET_SDR_REPOSITORY_INFO, &[])
        )
        .1[1],
        2
    );
    assert_eq!(cc_of(&mut c, S, cmd::storage::GET_SDR, &[0; 5]), 0xC7);
    assert_eq!(
        cc_of(&mut c, S, cmd::storage::GET_SDR_REPOSITORY_INFO, &[0]),
        0xC7
    );
    assert_eq!(
        cc_of(&mut c, S, cmd::storage::RESERVE_SDR_REPOSITORY, &[0]),
        0xC7
    );
}

#[test]
fn sel_and_sdr_reservations_are_independent() {
    let mut c = core();
    let sel = call(&mut c, S, cmd::storage::RESERVE_SEL, &[]).1;
    let sdr = call(&mut c, S, cmd::storage::RESERVE_SDR_REPOSITORY, &[]).1;
    assert_ne!(sel, sdr);
    call(&mut c, S, cmd::storage::ADD_SEL_ENTRY, &event(1));
    // The SEL reservation still stands after the SDR one.
    assert_eq!(
        call(
            &mut c,
            S,
            cmd::storage::GET_SEL_ENTRY,
            &[sel[0], sel[1], 0, 0, 2, 2]
        )
        .0,
        0
    );
}

// ---- Sensors ----

const SE: u8 = netfn::SENSOR_EVENT;

#[test]
fn sensor_readings() {
    let mut c = core_with_sensors();
    let mut v = view();
    let read = |c: &mut Core, v: &PlatformView, n: u8| {
        run(c, v, &req(SE, cmd::sensor::GET_SENSOR_READING, &[n]))
    };
    // 30 °C on -128..127 → raw 158, events and scanning enabled.
    assert_eq!(read(&mut c, &v, 2).1, [158, 0xC0, 0x00]);
    assert_eq!(read(&mut c, &v, 3).1, [168, 0xC0, 0x00]);
    // Gated: Available=false → reading unavailable (ipmitool prints "ns").
    v.sensors[0].available = false;
    assert_eq!(read(&mut c, &v, 2).1, [0, 0xE0, 0x00]);
    v.sensors[0].available = true;
    v.sensors[0].value = f64::NAN;
    assert_eq!(read(&mut c, &v, 2).1, [0, 0xE0, 0x00]);
    // Alarms → threshold status bits.
    v.sensors[1].warning_alarm_high = true;
    v.sensors[1].critical_alarm_high = true;
    assert_eq!(read(&mut c, &v, 3).1, [168, 0xC0, 0x18]);
    v.sensors[1] = dimm(DIMM_B0, 40.0);
    v.sensors[1].warning_alarm_low = true;
    v.sensors[1].critical_alarm_low = true;
    assert_eq!(read(&mut c, &v, 3).1[2], 0x03);
    // The ACPI sensor asserts the offset of the current state.
    v.acpi = Some((AcpiState::S5G2, AcpiState::Unknown));
    assert_eq!(read(&mut c, &v, 1).1, [0, 0xC0, 0x20, 0x80]);
    v.acpi = Some((AcpiState::Unknown, AcpiState::Unknown));
    assert_eq!(read(&mut c, &v, 1).1, [0, 0xC0, 0x00, 0xC0]);
    v.acpi = None;
    assert_eq!(read(&mut c, &v, 1).1, [0, 0xE0, 0x00, 0x80]);
    // Unknown numbers, and a number whose sensor left, are not present.
    assert_eq!(read(&mut c, &v, 0x40).0, 0xCB);
    v.sensors.remove(1);
    assert_eq!(read(&mut c, &v, 3).0, 0xCB);
    assert_eq!(
        cc_of(&mut c, SE, cmd::sensor::GET_SENSOR_READING, &[]),
        0xC7
    );
    assert_eq!(
        cc_of(&mut c, SE, cmd::sensor::GET_SENSOR_READING, &[2, 0]),
        0xC7
    );
}

#[test]
fn sensor_thresholds() {
    let mut c = core_with_sensors();
    let (cc, data, _) = call(&mut c, SE, cmd::sensor::GET_SENSOR_THRESHOLDS, &[2]);
    assert_eq!((cc, data), (0, vec![0x18, 0, 0, 0, 213, 223, 0]));
    let mut v = view();
    v.sensors[0].warning_low = 5.0;
    v.sensors[0].critical_low = 0.0;
    let data = run(
        &mut c,
        &v,
        &req(SE, cmd::sensor::GET_SENSOR_THRESHOLDS, &[2]),
    )
    .1;
    assert_eq!(data, [0x1B, 133, 128, 0, 213, 223, 0]);
    assert_eq!(
        cc_of(&mut c, SE, cmd::sensor::GET_SENSOR_THRESHOLDS, &[1]),
        0xCD
    );
    assert_eq!(
        cc_of(&mut c, SE, cmd::sensor::GET_SENSOR_THRESHOLDS, &[0x40]),
        0xCB
    );
    assert_eq!(
        cc_of(&mut c, SE, cmd::sensor::GET_SENSOR_THRESHOLDS, &[]),
        0xC7
    );
}

#[test]
fn platform_event_from_the_system_interface_keeps_the_sensor_type() {
    let mut c = core();
    let (cc, _, fx) = call(
        &mut c,
        SE,
        cmd::sensor::PLATFORM_EVENT,
        &[0x41, 0x04, 0x22, 0x09, 0x6F, 0x02],
    );
    assert_eq!(cc, 0);
    assert_eq!(fx.len(), 1);
    let rec = c.sel().get(0).copied().expect("record");
    assert_eq!(
        rec,
        [
            1, 0, 0x02, 0x00, 0x00, 0x00, 0x60, 0x41, 0x00, 0x04, 0x22, 0x09, 0x6F, 0x02, 0xFF,
            0xFF
        ]
    );
    call(
        &mut c,
        SE,
        cmd::sensor::PLATFORM_EVENT,
        &[0x41, 0x04, 0x0F, 0x02, 0x6F, 0xA0, 0x07, 0x01],
    );
    assert_eq!(
        c.sel().get(1).map(|r| r[13..16].to_vec()),
        Some(vec![0xA0, 0x07, 0x01])
    );
    for (data, cc) in [
        (&[0x41, 0x03, 0x22, 0x09, 0x6F, 0x02][..], 0xCC), // EvMRev 3
        (&[0x41, 0x04, 0x00, 0x09, 0x6F, 0x02], 0xCC),     // reserved sensor type
        (&[0x41, 0x04, 0x2D, 0x09, 0x6F, 0x02], 0xCC),
        (&[0x41, 0x04, 0xBF, 0x09, 0x6F, 0x02], 0xCC),
        (&[0x40, 0x04, 0x22, 0x09, 0x6F, 0x02], 0xCC), // not a software ID
        (&[0x41, 0x04, 0x22, 0x09, 0x6F], 0xC7),
        (&[0x41, 0x04, 0x22, 0x09, 0x6F, 1, 2, 3, 4], 0xC7),
        (&[], 0xC7),
    ] {
        assert_eq!(
            cc_of(&mut c, SE, cmd::sensor::PLATFORM_EVENT, data),
            cc,
            "{data:02x?}"
        );
    }
    assert_eq!(c.sel().len(), 2);
    assert_eq!(
        cc_of(
            &mut c,
            SE,
            cmd::sensor::PLATFORM_EVENT,
            &[0x41, 0x04, 0xC0, 0x09, 0x6F, 0x02]
        ),
        0
    );
}

#[test]
fn platform_event_from_a_session_channel_uses_the_requester_address() {
    let mut c = core();
    let mut r = req(
        SE,
        cmd::sensor::PLATFORM_EVENT,
        &[0x04, 0x22, 0x09, 0x6F, 0x00],
    );
    r.channel = Channel {
        number: 1,
        kind: ChannelKind::SessionBased,
    };
    r.rq_sa = Some(0x81);
    assert_eq!(run(&mut c, &view(), &r).0, 0);
    assert_eq!(c.sel().get(0).map(|r| [r[7], r[8]]), Some([0x81, 0x10]));
}

// ---- ACPI transitions into the SEL ----

#[test]
fn acpi_transitions_are_recorded_once_each() {
    let mut c = core();
    c.acpi_baseline(AcpiState::S5G2);
    assert!(!c.acpi_observed(AcpiState::S5G2, NOW));
    assert!(c.acpi_observed(AcpiState::S2D2, NOW + 1));
    assert!(c.acpi_observed(AcpiState::S0G0D0, NOW + 2));
    assert!(!c.acpi_observed(AcpiState::S0G0D0, NOW + 3));
    assert!(c.acpi_observed(AcpiState::LegacyOn, NOW + 4));
    let recs: Vec<[u8; 16]> = c.sel().records().copied().collect();
    assert_eq!(recs.len(), 3);
    assert_eq!(
        recs[0],
        [
            1, 0, 0x02, 0x01, 0x00, 0x00, 0x60, 0x20, 0x00, 0x04, 0x22, 0x01, 0x6F, 0x02, 0xFF,
            0xFF
        ]
    );
    assert_eq!(recs[1][13], 0x00);
    assert_eq!(
        recs[2][13], 0x0B,
        "LEGACY_ON is SEL offset 0x0B, not command code 0x20"
    );
    // Get SEL Entry returns it as a 0x22 record.
    let data = call(
        &mut c,
        S,
        cmd::storage::GET_SEL_ENTRY,
        &[0, 0, 1, 0, 0, 0xFF],
    )
    .1;
    assert_eq!(&data[2..], &recs[0]);
}

#[test]
fn acpi_sensor_number_is_stable_and_first() {
    let mut c = core();
    assert_eq!(c.acpi_sensor_number(), 1);
    c.observe_sensors([DIMM_B0], NOW);
    c.observe_sensors([DIMM_A0, DIMM_B0], NOW);
    assert_eq!(c.numbers().number(DIMM_B0), Some(2));
    assert_eq!(c.numbers().number(DIMM_A0), Some(3));
    // A restart with the persisted map keeps them.
    let again = Core::new(config(), SelStore::new(4), c.numbers().clone());
    assert_eq!(again.numbers(), c.numbers());
}

// ---- property sweep ----

#[test]
fn no_request_panics_and_rejections_change_nothing() {
    let routes: Vec<(u8, u8)> = ROUTES.iter().map(|r| (r.netfn, r.cmd)).collect();
    for seed in 1..=40u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut c = core_with_sensors();
        let mut v = view();
        for step in 0..500 {
            // Mostly real commands, some random NetFn/Cmd pairs.
            let (n, cm) = if rng.usize(..10) == 0 {
                (rng.u8(..) & 0x3E, rng.u8(..))
            } else {
                routes[rng.usize(..routes.len())]
            };
            let len = match rng.usize(..4) {
                0 => rng.usize(..3),
                1 => rng.usize(..8),
                2 => 16,
                _ => rng.usize(..40),
            };
            let mut data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            // Aim some at valid reservations and record IDs so deep paths run too.
            if data.len() >= 2 && rng.usize(..2) == 0 {
                data[..2].copy_from_slice(&c.last_reservation.to_le_bytes());
            }
            let mut r = req(n, cm, &data);
            r.privilege = Privilege::from_level(rng.usize(..6) as u8).unwrap_or(Privilege::Admin);
            r.channel.kind =
                [ChannelKind::SystemInterface, ChannelKind::SessionBased][rng.usize(..2)];
            v.now = at(NOW.wrapping_add(step), 0);
            v.acpi = [None, Some((AcpiState::S2D2, AcpiState::S2D2))][rng.usize(..2)];
            let d = c.decide(&r, &v);
            if d.cc != 0 {
                assert!(
                    d.effects.is_empty() && d.data.is_empty(),
                    "seed {seed} step {step}: {d:?}"
                );
            } else {
                c.commit(&d.effects);
            }
            assert!(c.sel().len() <= c.sel().capacity());
            // Responses fit a KCS/LAN message.
            assert!(
                d.data.len() <= 64,
                "seed {seed} step {step}: {} bytes",
                d.data.len()
            );
        }
    }
}

// ---- Set ACPI: all or nothing ----

#[test]
fn set_acpi_says_how_to_take_back_the_system_state() {
    use AcpiState::*;
    let set = |c: &Core, v: &PlatformView, data: &[u8]| {
        c.decide(&req(netfn::APP, cmd::app::SET_ACPI_POWER_STATE, data), v)
    };
    let c = core();
    let mut v = view();
    v.acpi = Some((S2D2, S2D2));
    // Both bytes: should the device write fail, the system state goes back to S2.
    let d = set(&c, &v, &[0x80, 0x80]);
    assert_eq!(
        (d.cc, &d.effects[..]),
        (
            0,
            &[Effect::SetSysAcpi(S0G0D0), Effect::SetDevAcpi(S0G0D0)][..]
        )
    );
    assert_eq!(d.undo_of(0), Some(&Effect::SetSysAcpi(S2D2)));
    assert_eq!(d.undo_of(1), None, "nothing follows the last write");
    // The system state it already has: nothing to take back.
    let d = set(&c, &v, &[0x82, 0x80]);
    assert_eq!((d.cc, d.undo_of(0)), (0, None));
    // One byte: one write, which either happens or not.
    for data in [[0x80, 0x00], [0x80, 0xFF], [0x00, 0x80], [0xFF, 0x83]] {
        let d = set(&c, &v, &data);
        assert_eq!(d.cc, 0, "{data:02x?}");
        assert_eq!((d.undo_of(0), d.undo_of(1)), (None, None), "{data:02x?}");
    }
    // Both bytes but the state before is unknown: nothing could be put back, so nothing is
    // written. One byte needs no state before.
    v.acpi = None;
    let d = set(&c, &v, &[0x80, 0x80]);
    assert_eq!((d.cc, d.effects.len()), (0xFF, 0));
    assert_eq!(set(&c, &v, &[0x80, 0x00]).cc, 0);
    // A bad byte is still 0xC9 first, whatever the view.
    assert_eq!(set(&c, &v, &[0x80, 0x85]).cc, 0xC9);
}

// ---- SEL rate limit ----

/// An Add SEL Entry over `channel` at monotonic `mono_ms`, decided and (if accepted)
/// committed, with a refusal counted as the edge counts it.
fn add_over(c: &mut Core, channel: Channel, mono_ms: u64, n: u8) -> Decision {
    let mut r = req(S, cmd::storage::ADD_SEL_ENTRY, &event(n));
    r.channel = channel;
    let mut v = view();
    v.now = at(NOW, mono_ms);
    let d = c.decide(&r, &v);
    if d.cc == 0 {
        c.commit(&d.effects);
    } else if let Some(ch) = d.throttled {
        c.throttled(ch);
    }
    d
}

const KCS: Channel = Channel {
    number: 15,
    kind: ChannelKind::SystemInterface,
};
const LAN: Channel = Channel {
    number: 1,
    kind: ChannelKind::SessionBased,
};

#[test]
fn host_records_beyond_the_limit_are_refused_with_node_busy_and_counted() {
    let mut c = core();
    for n in 0..8 {
        assert_eq!(
            add_over(&mut c, KCS, 1_000, n).cc,
            0,
            "record {n} of the burst"
        );
    }
    let d = add_over(&mut c, KCS, 1_000, 9);
    assert_eq!((d.cc, d.throttled), (0xC0, Some(15)));
    assert!(d.effects.is_empty() && d.data.is_empty());
    // A Platform Event Message is a record too.
    let pem = req(
        SE,
        cmd::sensor::PLATFORM_EVENT,
        &[0x41, 0x04, 0x22, 0x09, 0x6F, 0x02],
    );
    let mut v = view();
    v.now = at(NOW, 1_000);
    let d = c.decide(&pem, &v);
    assert_eq!((d.cc, d.throttled), (0xC0, Some(15)));
    c.throttled(15);
    // The host's flood does not touch an operator's channel.
    assert_eq!(add_over(&mut c, LAN, 1_000, 10).cc, 0);
    // 2 a second: one more after 500 ms.
    assert_eq!(add_over(&mut c, KCS, 1_499, 11).cc, 0xC0);
    assert_eq!(add_over(&mut c, KCS, 1_500, 12).cc, 0);
    assert_eq!(add_over(&mut c, KCS, 1_500, 13).cc, 0xC0);
    assert_eq!(
        c.sel_counts(),
        SelCounts {
            ipmi_added: 10,
            ipmi_refused: 4,
            own_added: 0
        }
    );
    let r = c.refusal_report(at(NOW, 1_500).mono).expect("report");
    assert_eq!((r.new, r.total, r.by_channel), (4, 4, vec![(15, 4)]));
    // Reading commands are never limited.
    assert_eq!(cc_of(&mut c, S, cmd::storage::GET_SEL_INFO, &[]), 0);
}

#[test]
fn our_own_acpi_records_are_never_limited() {
    let mut c = core();
    c.acpi_baseline(AcpiState::S5G2);
    let mut n = 0;
    while add_over(&mut c, KCS, 0, n).cc == 0 {
        n += 1;
    }
    let staged = c
        .acpi_observed_staged(AcpiState::S2D2, NOW)
        .expect("a transition is recorded");
    assert_eq!(staged.sel, *c.sel());
    assert!(c.acpi_observed(AcpiState::S0G0D0, NOW + 1));
    let last: Vec<u8> = c.sel().records().map(|r| r[13]).collect();
    assert_eq!(&last[last.len() - 2..], &[0x02, 0x00]);
    assert_eq!(c.sel_counts().own_added, 2);
    assert_eq!(c.sel_counts().ipmi_refused, 1);
}

#[test]
fn staged_sel_is_what_commit_makes() {
    let mut c = core();
    for n in 1..=3 {
        add_over(&mut c, KCS, 0, n);
    }
    // Add, add, delete, clear (delete and clear under a fresh reservation each).
    for step in 0..4 {
        let res = call(&mut c, S, cmd::storage::RESERVE_SEL, &[]).1;
        let r = match step {
            0 | 1 => req(S, cmd::storage::ADD_SEL_ENTRY, &event(4 + step)),
            2 => req(S, cmd::storage::DELETE_SEL_ENTRY, &[res[0], res[1], 3, 0]),
            _ => req(
                S,
                cmd::storage::CLEAR_SEL,
                &[res[0], res[1], b'C', b'L', b'R', 0xAA],
            ),
        };
        let d = c.decide(&r, &view());
        assert_eq!(d.cc, 0, "{r:?}");
        assert!(d.changes_sel());
        let staged = c.stage_sel(&d.effects).expect("a SEL change");
        // The changes replayed on the SEL before make the staged SEL.
        let mut replayed = c.sel().clone();
        for ch in &staged.changes {
            replayed.apply(ch);
        }
        assert_eq!(replayed, staged.sel);
        c.commit(&d.effects);
        assert_eq!(*c.sel(), staged.sel, "{r:?}");
    }
    assert!(c.sel().is_empty());
    // Commands that do not change the SEL stage nothing.
    let d = c.decide(&req(S, cmd::storage::RESERVE_SEL, &[]), &view());
    assert!(!d.changes_sel());
    assert_eq!(c.stage_sel(&d.effects), None);
}

#[test]
fn session_less_channels_run_at_admin_session_based_at_the_session_privilege() {
    use ChannelKind::*;
    let cases: &[(ChannelKind, Option<i64>, Option<Privilege>)] = &[
        (SystemInterface, None, Some(Privilege::Admin)),
        (SystemInterface, Some(2), Some(Privilege::Admin)),
        (SessionLess, None, Some(Privilege::Admin)),
        (SessionBased, Some(2), Some(Privilege::User)),
        (SessionBased, Some(3), Some(Privilege::Operator)),
        (SessionBased, Some(4), Some(Privilege::Admin)),
        // Without a valid session privilege the request cannot be checked.
        (SessionBased, None, None),
        (SessionBased, Some(9), None),
        (SessionBased, Some(-1), None),
    ];
    for (kind, option, want) in cases {
        assert_eq!(
            caller_privilege(*kind, *option),
            *want,
            "{kind:?} {option:?}"
        );
    }
}

/// The view trimmed to what `reads` says a command looks at.
fn trimmed(full: &PlatformView, reads: Reads) -> PlatformView {
    PlatformView {
        acpi: if reads.acpi == AcpiUse::None {
            None
        } else {
            full.acpi
        },
        chassis_power: full.chassis_power.filter(|_| reads.chassis_power),
        sensors: if reads.sensors {
            full.sensors.clone()
        } else {
            Vec::new()
        },
        ..full.clone()
    }
}

/// Every command, given only the parts of the platform `Core::reads` names, decides exactly
/// as with all of it: the edge may skip every other read (and the copy of the sensor list)
/// without changing an answer. A route that forgets a read fails here.
#[test]
fn each_command_decides_the_same_from_what_reads_names() {
    let c = core_with_sensors();
    let full = view();
    let acpi_sensor = c.acpi_sensor_number();
    let datas: &[&[u8]] = &[
        &[],
        &[0x00],
        &[acpi_sensor],
        &[0x02],
        &[0x03, 0x00],
        &[0x82, 0x81],
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0xFF],
        &[0x00, 0x00, 0x01, 0x00, 0x00, 0x10],
    ];
    for r in ROUTES {
        for data in datas {
            let rq = req(r.netfn, r.cmd, data);
            let reads = c.reads(&rq);
            assert_eq!(
                c.decide(&rq, &trimmed(&full, reads)),
                c.decide(&rq, &full),
                "netfn {:#04x} cmd {:#04x} data {data:02x?}: reads {reads:?} leaves out \
                 something it looks at",
                r.netfn,
                r.cmd
            );
        }
    }
    // The ACPI sensor's reading reads the ACPI object; a DIMM's does not.
    let reading = |n: u8| req(netfn::SENSOR_EVENT, cmd::sensor::GET_SENSOR_READING, &[n]);
    assert_eq!(c.reads(&reading(acpi_sensor)).acpi, AcpiUse::Read);
    assert_eq!(c.reads(&reading(2)).acpi, AcpiUse::None);
    assert_eq!(c.reads(&req(0x3E, 0x01, &[])), Reads::NOTHING);
}
