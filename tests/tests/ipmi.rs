//! Bus tier for ipmi-handlers: the real daemon and the real acpi-state-daemon on a private
//! dbus-daemon, called the way the KCS bridge calls upstream ipmid (owning
//! `xyz.openbmc_project.Ipmi.Channel.ipmi_kcs3`).

use std::time::Duration;

use acpigate_tests::acpi_client::AcpiClient;
use acpigate_tests::harness::{
    Daemon, PrivateBus, announce_on_acpi_object_and_leave, eventually, spawn_acpi_state_daemon,
    spawn_ipmi_handlers,
};
use acpigate_tests::ipmi_sim::{IpmiCaller, TempSensors};
use acpigate_tests::platform::{Chassis, Systemd};
use acpigate_tests::smbus::SimSmbus;
use anyhow::{Context, Result};
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::state::ChassisPowerState;

const APP: u8 = 0x06;
const CHASSIS: u8 = 0x00;
const STORAGE: u8 = 0x0A;
const SENSOR: u8 = 0x04;
const SET_ACPI: u8 = 0x06;
const GET_ACPI: u8 = 0x07;
const WAIT: Duration = Duration::from_secs(10);

struct Rig {
    bus: PrivateBus,
    _systemd: Systemd,
    acpi_daemon: Option<Daemon>,
    ipmi: Option<Daemon>,
}

impl Rig {
    async fn new() -> Result<Self> {
        let bus = PrivateBus::start()?;
        let systemd = Systemd::start(&bus).await?;
        Ok(Self {
            bus,
            _systemd: systemd,
            acpi_daemon: None,
            ipmi: None,
        })
    }

    fn start_acpi(&mut self) -> Result<()> {
        self.acpi_daemon = Some(spawn_acpi_state_daemon(&self.bus)?);
        Ok(())
    }

    /// acpi-state-daemon, and a client once it has settled in `state`.
    async fn start_acpi_until(&mut self, state: AcpiState) -> Result<AcpiClient> {
        self.start_acpi()?;
        let acpi = AcpiClient::new(self.bus.connect().await?);
        acpi.wait_sys(state).await?;
        Ok(acpi)
    }

    fn start_ipmi(&mut self) -> Result<()> {
        self.ipmi = Some(spawn_ipmi_handlers(&self.bus)?);
        Ok(())
    }

    /// SIGKILL and start again: what a crash and `Restart=always` do.
    fn crash_ipmi(&mut self) -> Result<()> {
        self.ipmi
            .as_mut()
            .context("not started")?
            .restart_as_before(&self.bus)
    }

    async fn kcs(&self) -> Result<IpmiCaller> {
        IpmiCaller::new(&self.bus, Some("ipmi_kcs3")).await
    }
}

/// The chassis at `power`, acpi-state-daemon settled in `state`, then ipmi-handlers: the rig,
/// the chassis (kept alive), an ACPI client and the host's KCS channel.
async fn acpi_then_ipmi(
    power: ChassisPowerState,
    state: AcpiState,
) -> Result<(Rig, Chassis, AcpiClient, IpmiCaller)> {
    let mut rig = Rig::new().await?;
    let chassis = Chassis::start(&rig.bus, power).await?;
    let acpi = rig.start_acpi_until(state).await?;
    rig.start_ipmi()?;
    let kcs = rig.kcs().await?;
    Ok((rig, chassis, acpi, kcs))
}

/// Wait until the SEL holds records whose 0x22 offsets are `want` (in order).
async fn wait_acpi_records(kcs: &IpmiCaller, want: &[u8]) -> Result<Vec<[u8; 16]>> {
    let got = eventually(WAIT, &format!("ACPI SEL records {want:02x?}"), || async {
        let recs = kcs.sel_records().await.ok()?;
        let acpi: Vec<[u8; 16]> = recs.into_iter().filter(|r| r[10] == 0x22).collect();
        let offsets: Vec<u8> = acpi.iter().map(|r| r[13] & 0x0F).collect();
        (offsets.len() >= want.len()).then_some((offsets, acpi))
    })
    .await?;
    anyhow::ensure!(
        got.0 == want,
        "ACPI SEL offsets {:02x?}, wanted {want:02x?}",
        got.0
    );
    Ok(got.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_and_get_acpi_over_kcs_with_transitions_in_the_sel() -> Result<()> {
    // Chassis on at start: firmware init (S2) until the host says otherwise.
    let (_rig, _chassis, acpi, kcs) =
        acpi_then_ipmi(ChassisPowerState::On, AcpiState::S2D2).await?;

    assert_eq!(
        kcs.ok(APP, SET_ACPI, &[0x80, 0x80]).await?,
        Vec::<u8>::new()
    );
    assert_eq!(kcs.ok(APP, GET_ACPI, &[]).await?, [0x00, 0x00]);
    assert_eq!(
        kcs.ok(APP, SET_ACPI, &[0x82, 0x82]).await?,
        Vec::<u8>::new()
    );
    assert_eq!(kcs.ok(APP, GET_ACPI, &[]).await?, [0x02, 0x02]);
    assert_eq!(acpi.sys().await?, AcpiState::S2D2);

    // A valid system state with an invalid device state: 0xC9 and NOTHING written.
    assert_eq!(
        kcs.cc_data(APP, SET_ACPI, &[0x80, 0x85]).await?,
        (0xC9, vec![])
    );
    assert_eq!(kcs.ok(APP, GET_ACPI, &[]).await?, [0x02, 0x02]);
    assert_eq!(acpi.sys().await?, AcpiState::S2D2);
    assert_eq!(kcs.cc_data(APP, SET_ACPI, &[0x80]).await?, (0xC7, vec![]));
    // Bit 7 clear and 0x7F leave a state alone.
    kcs.ok(APP, SET_ACPI, &[0x00, 0x83]).await?;
    kcs.ok(APP, SET_ACPI, &[0xFF, 0xFF]).await?;
    assert_eq!(kcs.ok(APP, GET_ACPI, &[]).await?, [0x02, 0x03]);

    // S2 (start) → S0 → S2: two transitions, as System ACPI Power State records.
    let recs = wait_acpi_records(&kcs, &[0x00, 0x02]).await?;
    let numbers = kcs.sensor_numbers().await?;
    let acpi_number = *numbers.get("ACPI_STATUS").context("ACPI sensor SDR")?;
    for r in &recs {
        assert_eq!(r[2], 0x02, "system event record");
        assert_eq!(&r[7..10], &[0x20, 0x00, 0x04], "generator 0x0020, EvMRev 4");
        assert_eq!((r[11], r[12]), (acpi_number, 0x6F));
        assert_eq!(&r[14..16], &[0xFF, 0xFF]);
    }
    // The ACPI sensor reads the current state: offset 2 asserted.
    let reading = kcs.ok(SENSOR, 0x2D, &[acpi_number]).await?;
    assert_eq!(reading, [0x00, 0xC0, 0x04, 0x80]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chassis_control_and_status_drive_the_power_services() -> Result<()> {
    let (_rig, _chassis, acpi, kcs) =
        acpi_then_ipmi(ChassisPowerState::On, AcpiState::S2D2).await?;
    assert_eq!(kcs.ok(CHASSIS, 0x01, &[]).await?[0] & 0x01, 0x01);
    // Power cycle (RequestedPowerTransition PowerCycle): off (S5) and on again (firmware init,
    // S2), both seen by acpi-state-daemon and logged.
    kcs.ok(CHASSIS, 0x02, &[0x02]).await?;
    wait_acpi_records(&kcs, &[0x05, 0x02]).await?;
    assert_eq!(kcs.ok(CHASSIS, 0x01, &[]).await?[0] & 0x01, 0x01);
    // Power down → RequestedPowerTransition Off → chassis off → acpi-state-daemon S5.
    kcs.ok(CHASSIS, 0x02, &[0x00]).await?;
    assert_eq!(kcs.ok(CHASSIS, 0x01, &[]).await?[0] & 0x01, 0x00);
    acpi.wait_sys(AcpiState::S5G2).await?;
    wait_acpi_records(&kcs, &[0x05, 0x02, 0x05]).await?;
    // An action with no D-Bus equivalent.
    assert_eq!(kcs.cc_data(CHASSIS, 0x02, &[0x04]).await?.0, 0xCC);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_and_privileges_follow_the_callers_bus_name() -> Result<()> {
    let mut rig = Rig::new().await?;
    // No ACPI object at all: Get answers 0xFF, Set's write fails with 0xFF.
    rig.start_ipmi()?;
    let busctl_like = IpmiCaller::new(&rig.bus, None).await?;
    assert_eq!(busctl_like.cc_data(APP, GET_ACPI, &[]).await?.0, 0xFF);
    assert_eq!(
        busctl_like.cc_data(APP, SET_ACPI, &[0x85, 0xFF]).await?.0,
        0xFF
    );
    // Get Device ID works for an unnamed (INTRABMC, Admin) caller.
    assert_eq!(busctl_like.ok(APP, 0x01, &[]).await?.len(), 15);

    // A LAN session at User privilege may read but not set.
    let mut lan = IpmiCaller::new(&rig.bus, Some("eth0")).await?;
    assert_eq!(
        lan.cc_data(APP, 0x01, &[]).await?.0,
        0xD4,
        "no privilege option"
    );
    lan.option("privilege", 2);
    lan.option("userId", 3);
    lan.option("currentSessionId", 0x1234);
    assert_eq!(lan.cc_data(APP, 0x01, &[]).await?.0, 0x00);
    assert_eq!(lan.cc_data(APP, SET_ACPI, &[0x85, 0xFF]).await?.0, 0xD4);
    assert_eq!(
        lan.cc_data(STORAGE, 0x47, &[0, 0, b'C', b'L', b'R', 0xAA])
            .await?
            .0,
        0xD4
    );

    // A channel name nobody configured: destination unavailable.
    let odd = IpmiCaller::new(&rig.bus, Some("ipmi_bt9")).await?;
    assert_eq!(odd.cc_data(APP, 0x01, &[]).await?.0, 0xD3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdr_and_readings_from_bus_sensors_with_stable_numbers() -> Result<()> {
    let mut rig = Rig::new().await?;
    let sensors = TempSensors::start(&rig.bus, "xyz.openbmc_project.HwmonTempSensor").await?;
    for (n, v) in [("DIMM_A0", 31.0), ("DIMM_B0", 33.0), ("Inlet_Temp", 24.0)] {
        sensors.add(n, v, 85.0).await?;
    }
    rig.start_ipmi()?;
    let kcs = rig.kcs().await?;
    let first = kcs.sensor_numbers().await?;
    assert_eq!(first.len(), 4, "{first:?}");
    let a0 = first["DIMM_A0"];
    let b0 = first["DIMM_B0"];
    // Readings: 31 °C on a -128..127 range is raw 159 (1 °C per count from -128).
    assert_eq!(kcs.ok(SENSOR, 0x2D, &[a0]).await?, [159, 0xC0, 0x00]);
    assert_eq!(
        kcs.ok(SENSOR, 0x27, &[a0]).await?,
        [0x08, 0, 0, 0, 213, 0, 0]
    );

    // Gated: Available=false reads as "unavailable" (ipmitool: ns).
    sensors.set_available("DIMM_A0", false).await?;
    eventually(WAIT, "DIMM_A0 unavailable", || async {
        let r = kcs.ok(SENSOR, 0x2D, &[a0]).await.ok()?;
        (r[1] & 0x20 != 0).then_some(())
    })
    .await?;

    // DIMM_B0 goes; a new sensor that sorts before the others comes: nobody is renumbered.
    sensors.remove("DIMM_B0").await?;
    sensors.add("AAA_New", 20.0, 85.0).await?;
    let second = eventually(WAIT, "SDRs after the change", || async {
        let m = kcs.sensor_numbers().await.ok()?;
        (m.contains_key("AAA_New") && !m.contains_key("DIMM_B0")).then_some(m)
    })
    .await?;
    assert_eq!(second["DIMM_A0"], a0);
    assert_eq!(second["Inlet_Temp"], first["Inlet_Temp"]);
    assert_eq!(second["ACPI_STATUS"], first["ACPI_STATUS"]);
    assert!(
        !first.values().any(|n| *n == second["AAA_New"]),
        "{second:?}"
    );
    assert_eq!(kcs.cc_data(SENSOR, 0x2D, &[b0]).await?.0, 0xCB);

    // A daemon crash and restart keeps every number; DIMM_B0 comes back to its own.
    rig.crash_ipmi()?;
    sensors.add("DIMM_B0", 33.0, 85.0).await?;
    let third = eventually(WAIT, "DIMM_B0 back", || async {
        let m = kcs.sensor_numbers().await.ok()?;
        m.contains_key("DIMM_B0").then_some(m)
    })
    .await?;
    assert_eq!(third["DIMM_B0"], b0);
    for (k, v) in &second {
        assert_eq!(third.get(k), Some(v), "{k}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sel_survives_a_crash_and_keeps_host_event_types() -> Result<()> {
    let mut rig = Rig::new().await?;
    rig.start_ipmi()?;
    let kcs = rig.kcs().await?;
    // A host (system interface) Platform Event: System ACPI Power State, S5, kept as sent.
    kcs.ok(SENSOR, 0x02, &[0x41, 0x04, 0x22, 0x33, 0x6F, 0x05])
        .await?;
    let mut rec = [0u8; 16];
    rec[2] = 0x02;
    rec[7] = 0x41;
    rec[9] = 0x04;
    rec[10] = 0x0F; // System Firmware Progress
    rec[12] = 0x6F;
    rec[13] = 0x02;
    assert_eq!(kcs.ok(STORAGE, 0x44, &rec).await?, [2, 0]);
    let before = kcs.sel_records().await?;
    assert_eq!(before.len(), 2);
    assert_eq!(
        (before[0][10], before[0][11], before[0][13]),
        (0x22, 0x33, 0x05)
    );
    assert_eq!(&before[0][7..9], &[0x41, 0x00]);

    rig.crash_ipmi()?;
    let kcs = rig.kcs().await?;
    assert_eq!(kcs.sel_records().await?, before);
    let info = kcs.ok(STORAGE, 0x40, &[]).await?;
    assert_eq!((info[0], info[1], info[2]), (0x51, 2, 0));

    // Clear needs the reservation, then empties the SEL for good.
    let res = kcs.ok(STORAGE, 0x42, &[]).await?;
    assert_eq!(
        kcs.ok(STORAGE, 0x47, &[res[0], res[1], b'C', b'L', b'R', 0xAA])
            .await?,
        [0x01]
    );
    rig.crash_ipmi()?;
    let kcs = rig.kcs().await?;
    assert!(kcs.sel_records().await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dimm_sensors_from_sensor_gate_read_unavailable_while_gated() -> Result<()> {
    let mut rig = Rig::new().await?;
    let _chassis = Chassis::start(&rig.bus, ChassisPowerState::On).await?;
    // Two DDR4 DIMMs with TSODs at 40 °C on a simulated SMBus, powered with the host.
    let smbus = SimSmbus::ddr4_board(2, 40.0);
    smbus.set_powered(true);
    let sock = rig.bus.dir().join("smbus.sock");
    let _server = smbus.serve(&sock)?;
    let _acpi = rig.start_acpi_until(AcpiState::S2D2).await?;
    let gate_cfg = rig.bus.write_config(
        "sensor-gate.json",
        &format!(
            "{{ \"gate\": {{ \"settle_ms\": 100 }}, \"poll_ms\": 20,\n  \"buses\": [ {{ \"name\": \"dimm\", \"backend\": \"sim:{}\" }} ],\n  \"sensors\": [\n    {{ \"name\": \"DIMM_A0_Temp\", \"bus\": \"dimm\", \"type\": \"jc42\", \"address\": 24, \"min\": 0, \"max\": 125, \"thresholds\": {{ \"warning_high\": 85 }} }},\n    {{ \"name\": \"DIMM_A1_Temp\", \"bus\": \"dimm\", \"type\": \"jc42\", \"address\": 25, \"min\": 0, \"max\": 125 }}\n  ]\n}}\n",
            sock.display()
        ),
    )?;
    let _gate = Daemon::spawn_with_config(&rig.bus, "sensor-gate", &gate_cfg)?;
    rig.start_ipmi()?;
    let kcs = rig.kcs().await?;

    // Both DIMMs are in the SDR (with the ACPI sensor), as full temperature records.
    let numbers = eventually(WAIT, "DIMM SDRs", || async {
        let m = kcs.sensor_numbers().await.ok()?;
        (m.len() == 3).then_some(m)
    })
    .await?;
    let a0 = numbers["DIMM_A0_Temp"];
    let a1 = numbers["DIMM_A1_Temp"];
    let sdrs = kcs.sdrs().await?;
    let rec = &sdrs
        .iter()
        .find(|(_, r)| r[7] == a0)
        .context("A0 record")?
        .1;
    assert_eq!(
        (rec[3], rec[12], rec[13], rec[21]),
        (0x01, 0x01, 0x01, 0x01),
        "full, temperature, threshold, degrees C"
    );
    assert_eq!(rec[18] & 0x08, 0x08, "UNC readable");

    // Firmware init (S2): the gate is closed, the DIMMs read unavailable ("ns").
    for n in [a0, a1] {
        let r = kcs.ok(SENSOR, 0x2D, &[n]).await?;
        assert_eq!(r[1] & 0x20, 0x20, "sensor {n:#x} while gated: {r:02x?}");
    }
    // Working (S0) and settled: live readings, which the SDR's factors turn back into 40 °C
    // (as ipmitool converts them).
    kcs.ok(APP, SET_ACPI, &[0x80, 0x80]).await?;
    for n in [a0, a1] {
        let r = eventually(WAIT, "live DIMM reading", || async {
            let r = kcs.ok(SENSOR, 0x2D, &[n]).await.ok()?;
            (r[1] & 0x20 == 0).then_some(r)
        })
        .await?;
        assert_eq!(r[1], 0xC0, "sensor {n:#x}: {r:02x?}");
        let (value, step) = convert(rec, r[0]);
        assert!(
            (value - 40.0).abs() <= step,
            "sensor {n:#x}: raw {} = {value} °C",
            r[0]
        );
    }
    // Back to S2: unavailable again.
    kcs.ok(APP, SET_ACPI, &[0x82, 0x82]).await?;
    eventually(WAIT, "gated again", || async {
        let r = kcs.ok(SENSOR, 0x2D, &[a0]).await.ok()?;
        (r[1] & 0x20 != 0).then_some(())
    })
    .await?;
    Ok(())
}

/// A full SDR's linear conversion of `raw` (IPMI 2.0 §36.3), and one step of it.
fn convert(rec: &[u8], raw: u8) -> (f64, f64) {
    let ten_bits = |lo: u8, hi: u8| {
        let v = i32::from(lo) | (i32::from(hi >> 6) << 8);
        if v & 0x200 != 0 { v - 0x400 } else { v }
    };
    let nibble = |x: u8| {
        let v = i32::from(x & 0x0F);
        if v & 0x8 != 0 { v - 0x10 } else { v }
    };
    let m = f64::from(ten_bits(rec[24], rec[25]));
    let b = f64::from(ten_bits(rec[26], rec[27]));
    let (r_exp, b_exp) = (nibble(rec[29] >> 4), nibble(rec[29]));
    let scale = 10f64.powi(r_exp);
    (
        (m * f64::from(raw) + b * 10f64.powi(b_exp)) * scale,
        m * scale,
    )
}

/// Not a pass/fail test: prints the `execute` round trip over the bus, as a caller sees it.
/// Run: `ACPIGATE_BIN=target/release/acpigate cargo test -p acpigate-tests --test ipmi -- \
///       --ignored --nocapture execute_latency`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a test"]
async fn execute_latency() -> Result<()> {
    let mut rig = Rig::new().await?;
    let sensors = TempSensors::start(&rig.bus, "xyz.openbmc_project.HwmonTempSensor").await?;
    for i in 0..16 {
        sensors.add(&format!("DIMM_{i}"), 30.0, 85.0).await?;
    }
    rig.start_ipmi()?;
    let kcs = rig.kcs().await?;
    let numbers = kcs.sensor_numbers().await?;
    let mut report = Vec::new();
    for (what, netfn, cmd, data) in [
        ("Get Device ID", APP, 0x01u8, vec![]),
        ("Get Sensor Reading", SENSOR, 0x2D, vec![numbers["DIMM_7"]]),
        ("Get SEL Info", STORAGE, 0x40, vec![]),
        (
            "Platform Event (SEL add, fsync)",
            SENSOR,
            0x02,
            vec![0x41, 0x04, 0x22, 0x01, 0x6F, 0x05],
        ),
    ] {
        let mut t = Vec::new();
        for _ in 0..300 {
            let start = std::time::Instant::now();
            kcs.ok(netfn, cmd, &data).await?;
            t.push(start.elapsed());
        }
        t.sort();
        report.push(format!(
            "{what:<34} median {:>7.3} ms  p99 {:>7.3} ms",
            t[t.len() / 2].as_secs_f64() * 1e3,
            t[t.len() * 99 / 100].as_secs_f64() * 1e3
        ));
    }
    let start = std::time::Instant::now();
    let n = kcs.sdrs().await?.len();
    report.push(format!(
        "SDR walk ({n} records, reserve + partial reads) {:>7.3} ms",
        start.elapsed().as_secs_f64() * 1e3
    ));
    println!("{}", report.join("\n"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_acpi_daemon_refuses_is_0xff_and_changes_nothing() -> Result<()> {
    let (_rig, _chassis, acpi, kcs) =
        acpi_then_ipmi(ChassisPowerState::Off, AcpiState::S5G2).await?;
    let before = kcs.ok(APP, GET_ACPI, &[]).await?;
    // S0 with chassis power off: acpi-state-daemon answers NotAllowed. The system state is
    // written first, so its refusal leaves the device state untouched too.
    assert_eq!(
        kcs.cc_data(APP, SET_ACPI, &[0x80, 0x83]).await?,
        (0xFF, vec![])
    );
    assert_eq!(kcs.ok(APP, GET_ACPI, &[]).await?, before);
    assert_eq!(acpi.sys().await?, AcpiState::S5G2);
    // Nothing happened, so nothing is recorded.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(kcs.sel_records().await?.is_empty());
    Ok(())
}

/// A stand-in for acpi-state-daemon that serves one fixed state (what a restarted daemon
/// serves when ipmi-handlers reads it on its arrival).
struct AcpiStandIn(AcpiState);

#[zbus::interface(name = "xyz.openbmc_project.Control.Power.ACPIPowerState")]
impl AcpiStandIn {
    #[zbus(property, name = "SysACPIStatus")]
    fn sys(&self) -> String {
        use openbmc_vocab::DbusEnum;
        self.0.dbus_str()
    }
    #[zbus(property, name = "DevACPIStatus")]
    fn dev(&self) -> String {
        use openbmc_vocab::DbusEnum;
        self.0.dbus_str()
    }
}

/// The ACPI state's owner hands over: the old owner announces S5 and leaves, and the name
/// passes at once to a queued new owner serving S0. ipmi-handlers must take the announcement
/// before the hand-over, so the SEL ends on S0 (the state the host is in). Taken the other way
/// round, the new owner's S0 is read first and the old S5 logged after it. Repeated, because
/// the order only goes wrong when both signals are waiting at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departing_owners_last_state_is_taken_before_the_next_owners() -> Result<()> {
    use openbmc_vocab::DbusEnum;
    use openbmc_vocab::names::{bus, iface, path, prop};
    use std::collections::HashMap;
    use zbus::Variant;
    use zbus::fdo::RequestNameFlags;

    const ROUNDS: usize = 8;
    let mut rig = Rig::new().await?;
    rig.start_ipmi()?;
    let kcs = rig.kcs().await?;
    for round in 1..=ROUNDS {
        let old = rig.bus.connect().await?;
        let _ = old.object_server();
        old.request_name(bus::ACPI_POWER_STATE).await?;
        let new = rig.bus.connect().await?;
        new.object_server()
            .at(path::ACPI_POWER_STATE, AcpiStandIn(AcpiState::S0G0D0))
            .await?;
        // Queued behind the old owner: the bus hands the name over the moment it leaves.
        new.request_name_with_flags(bus::ACPI_POWER_STATE, RequestNameFlags::empty())
            .await?;
        let s5 = AcpiState::S5G2.dbus_str();
        let changed = HashMap::from([(prop::SYS_ACPI_STATUS, Variant::from(s5.as_str()))]);
        announce_on_acpi_object_and_leave(old, iface::ACPI_POWER_STATE, changed).await?;
        // ipmi-handlers started with no ACPI owner: each state seen is a change and a record.
        let want = 2 * round;
        let offsets = eventually(WAIT, &format!("{want} ACPI records"), || async {
            let recs = kcs.sel_records().await.ok()?;
            let offsets: Vec<u8> = recs
                .iter()
                .filter(|r| r[10] == 0x22)
                .map(|r| r[13] & 0x0F)
                .collect();
            (offsets.len() >= want).then_some(offsets)
        })
        .await;
        let seen = kcs.sel_records().await?;
        let ok = offsets.is_ok_and(|o| o.len() == want && o.last() == Some(&0x00));
        anyhow::ensure!(
            ok,
            "round {round}: wanted {want} ACPI SEL records ending in S0 (offset 00), the SEL \
             holds {:02x?}",
            seen.iter()
                .filter(|r| r[10] == 0x22)
                .map(|r| r[13] & 0x0F)
                .collect::<Vec<_>>()
        );
        new.close().await?;
    }
    Ok(())
}
