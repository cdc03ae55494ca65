//! Bus tier: acpi-state-daemon beside consumers that are not ours — a dbus-sensors
//! `PowerState: "BiosPost"` sensor on a phosphor-state-manager platform (`write_os_status`),
//! and phosphor-sel-logger taking an IPMI SEL record for every transition
//! (`sel_logger_records`). The real `acpigate` binary; the neighbours from `acpigate-sim`.

use std::time::Duration;

use acpigate_sim::bios_post::BiosPostSensor;
use acpigate_sim::platform::{Chassis, Host, HostFlavour, PostCodes, Systemd};
use acpigate_sim::sel_logger::{SelAdd, SelLogger};
use acpigate_tests::acpi_client::AcpiClient;
use acpigate_tests::harness::{Daemon, PrivateBus, acpi_state_config, eventually};
use anyhow::Result;
use openbmc_vocab::DbusEnum;
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::names::{bus, iface, method, path};
use openbmc_vocab::state::{ChassisPowerState, HostState, OsStatus};

const WAIT: Duration = Duration::from_secs(10);
/// dbus-sensors waits 10 s after `Running` before it takes power as on; short here.
const POWER_ON_DELAY: Duration = Duration::from_millis(300);
/// Longer than the power-on delay: a sensor that were to read would have started by then.
const PAST_DELAY: Duration = Duration::from_millis(600);

/// A phosphor-state-manager platform (chassis, host, postd, systemd) with the daemon on
/// `extra` config, settled in S5, and a BiosPost sensor watching.
struct Platform {
    _bus_keep: PrivateBus,
    _systemd: Systemd,
    chassis: Chassis,
    host: Host,
    postd: PostCodes,
    acpi: AcpiClient,
    sensor: BiosPostSensor,
    daemon: Daemon,
}

impl Platform {
    async fn start(extra: &str) -> Result<Self> {
        Self::start_on(PrivateBus::start()?, extra).await
    }

    /// The platform on `bus`, where a test may have started other services first.
    async fn start_on(bus: PrivateBus, extra: &str) -> Result<Self> {
        let systemd = Systemd::start(&bus).await?;
        let chassis = Chassis::start(&bus, ChassisPowerState::Off).await?;
        let host = Host::start(&bus, HostFlavour::StateManager, HostState::Off).await?;
        let postd = PostCodes::start(&bus).await?;
        let sensor = BiosPostSensor::start(&bus, POWER_ON_DELAY).await?;
        let config = acpi_state_config(&bus, "acpi.json", extra)?;
        let daemon = Daemon::spawn_with_config(&bus, "acpi-state-daemon", &config)?;
        let acpi = AcpiClient::new(bus.connect().await?);
        acpi.wait_sys(AcpiState::S5G2).await?;
        // Its first code is a baseline; a later one is news (a warm reset in S0).
        eventually(WAIT, "postd's code read", || async {
            (postd.reads() > 0).then_some(())
        })
        .await?;
        Ok(Self {
            _bus_keep: bus,
            _systemd: systemd,
            chassis,
            host,
            postd,
            acpi,
            sensor,
            daemon,
        })
    }

    /// Power on as the platform moves: chassis on, the host state manager says Running.
    async fn power_on(&mut self) -> Result<()> {
        self.chassis.set_power(ChassisPowerState::On).await?;
        self.host.set_state(HostState::Running).await?;
        self.acpi.wait_sys(AcpiState::S2D2).await
    }

    async fn power_off(&mut self) -> Result<()> {
        self.chassis.set_power(ChassisPowerState::Off).await?;
        self.host.set_state(HostState::Off).await?;
        self.acpi.wait_sys(AcpiState::S5G2).await
    }

    async fn s0(&self) -> Result<()> {
        self.acpi.set_sys(AcpiState::S0G0D0).await?;
        self.acpi.wait_sys(AcpiState::S0G0D0).await
    }

    async fn warm_reset(&self) -> Result<()> {
        self.postd.post(0x19).await?;
        self.acpi.wait_sys(AcpiState::S2D2).await
    }

    /// The sensor does not read now, nor once the power-on delay has passed (a deliberate
    /// pause: what it checks is that a read does NOT start, and no event marks that).
    async fn stays_unavailable(&self, when: &str) -> Result<()> {
        anyhow::ensure!(!self.sensor.reads(), "{when}: BiosPost sensor reads");
        tokio::time::sleep(PAST_DELAY).await;
        anyhow::ensure!(
            !self.sensor.reads(),
            "{when}: BiosPost sensor reads after the power-on delay (OperatingSystemState {:?})",
            self.sensor.os_status()
        );
        Ok(())
    }

    async fn reads_eventually(&self, when: &str) -> Result<()> {
        eventually(
            WAIT,
            &format!("{when}: BiosPost sensor reading"),
            || async { self.sensor.reads().then_some(()) },
        )
        .await
    }

    async fn stops_reading(&self, when: &str) -> Result<()> {
        eventually(
            WAIT,
            &format!("{when}: BiosPost sensor stopping"),
            || async { (!self.sensor.reads()).then_some(()) },
        )
        .await
    }
}

const WRITER: &str = r#", "write_os_status": true, "post_complete_means_working": false"#;

/// With the writer, a BiosPost sensor on a phosphor-state-manager platform reads in settled
/// S0 only: not in S5, not from S5 into S2, not through a warm reset's firmware init.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bios_post_sensor_reads_only_in_settled_s0() -> Result<()> {
    let mut p = Platform::start(WRITER).await?;
    p.stays_unavailable("S5").await?;

    p.power_on().await?;
    p.stays_unavailable("S5 -> S2, firmware init").await?;

    p.s0().await?;
    p.reads_eventually("S0").await?;

    p.warm_reset().await?;
    p.stops_reading("warm reset").await?;
    p.stays_unavailable("firmware init after a warm reset")
        .await?;

    p.s0().await?;
    p.reads_eventually("S0 after the reset").await?;

    p.power_off().await?;
    p.stops_reading("S5").await?;
    p.stays_unavailable("S5 again").await?;

    // What the daemon wrote: one value per phase change, Standby only for S0. The host-off
    // target's own Inactive is the state manager's, not a write.
    use OsStatus::{Inactive, Standby};
    eventually(WAIT, "every write in", || async {
        (p.host.os_status_writes().len() >= 6).then_some(())
    })
    .await?;
    assert_eq!(
        p.host.os_status_writes(),
        [Inactive, Inactive, Standby, Inactive, Standby, Inactive]
    );
    let log = p.daemon.log_text();
    for warning in [
        "cannot set OperatingSystemState",
        "cannot be written",
        "x86-power-control's",
    ] {
        assert!(!log.contains(warning), "{log}");
    }
    Ok(())
}

/// The control: without the writer nothing on a phosphor-state-manager platform writes the
/// property, and a BiosPost sensor never reads, S0 included (what `write_os_status` is for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_writer_a_bios_post_sensor_never_reads() -> Result<()> {
    let mut p = Platform::start("").await?;
    p.power_on().await?;
    p.s0().await?;
    p.stays_unavailable("S0 without a writer").await?;
    assert!(p.host.os_status_writes().is_empty());
    Ok(())
}

/// A host object whose `OperatingSystemState` is read-only (not x86-power-control's names, so
/// only the write itself can tell): one warning, then no more tries, whatever follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_os_status_is_said_once_and_left_alone() -> Result<()> {
    let bus = PrivateBus::start()?;
    let _systemd = Systemd::start(&bus).await?;
    let mut chassis = Chassis::start(&bus, ChassisPowerState::Off).await?;
    let host = Host::start(&bus, HostFlavour::StateManagerReadOnlyOs, HostState::Off).await?;
    let config = acpi_state_config(&bus, "acpi.json", WRITER)?;
    let daemon = Daemon::spawn_with_config(&bus, "acpi-state-daemon", &config)?;
    let acpi = AcpiClient::new(bus.connect().await?);
    acpi.wait_sys(AcpiState::S5G2).await?;
    let warning = "cannot be written";
    eventually(WAIT, "the read-only property logged", || async {
        daemon.log_text().contains(warning).then_some(())
    })
    .await?;
    for _ in 0..2 {
        chassis.set_power(ChassisPowerState::On).await?;
        acpi.wait_sys(AcpiState::S2D2).await?;
        acpi.set_sys(AcpiState::S0G0D0).await?;
        acpi.wait_sys(AcpiState::S0G0D0).await?;
        chassis.set_power(ChassisPowerState::Off).await?;
        acpi.wait_sys(AcpiState::S5G2).await?;
    }
    // A deliberate pause before a negative check: a second try would be logged within it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = daemon.log_text();
    assert_eq!(log.matches(warning).count(), 1, "{log}");
    assert!(log.contains("PropertyReadOnly"), "{log}");
    assert_eq!(host.os_status().await?, OsStatus::Inactive);
    Ok(())
}

// ---------------------------------------------------------------- SEL through sel-logger

fn record(state: AcpiState) -> (Vec<u8>, String) {
    (
        vec![state.sel_offset(), 0xFF, 0xFF],
        path::ACPI_POWER_STATE.to_owned(),
    )
}

/// One `IpmiSelAdd` per transition, in order, with upstream's signature and ipmi-handlers'
/// bytes; the state derived at start is a baseline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transition_is_one_ipmi_sel_add_in_order() -> Result<()> {
    let bus = PrivateBus::start()?;
    let sel = SelLogger::start(&bus).await?;
    let mut p = Platform::start_on(bus, r#", "sel_logger_records": true"#).await?;
    p.power_on().await?;
    p.s0().await?;
    p.warm_reset().await?;
    p.s0().await?;
    p.power_off().await?;
    let want = [
        AcpiState::S2D2,
        AcpiState::S0G0D0,
        AcpiState::S2D2,
        AcpiState::S0G0D0,
        AcpiState::S5G2,
    ];
    let calls: Vec<SelAdd> = eventually(WAIT, "five SEL records", || async {
        let c = sel.calls();
        (c.len() >= want.len()).then_some(c)
    })
    .await?;
    assert_eq!(calls.len(), want.len(), "{calls:#?}");
    for (i, (call, state)) in calls.iter().zip(want).enumerate() {
        let (data, sensor_path) = record(state);
        assert_eq!(call.sel_data, data, "record {i}: {call:?}");
        assert_eq!(call.path, sensor_path, "record {i}");
        assert!(call.assert, "record {i}");
        assert_eq!(call.generator_id, 0x0020, "record {i}");
        assert!(call.message.contains(state.short()), "record {i}: {call:?}");
    }
    assert!(!p.daemon.log_text().contains(bus::LOGGING_IPMI));
    Ok(())
}

/// The stand-in is upstream's signature and nothing else: `path` sent as an object path is
/// refused (so the test above would catch a daemon sending `o`), as are 4 data bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sel_logger_stand_in_refuses_an_object_path_for_path() -> Result<()> {
    let bus = PrivateBus::start()?;
    let sel = SelLogger::start(&bus).await?;
    let conn = bus.connect().await?;
    let as_string = conn
        .call_method(
            Some(bus::LOGGING_IPMI),
            path::LOGGING_IPMI,
            Some(iface::LOGGING_IPMI),
            method::IPMI_SEL_ADD,
            &(
                "m",
                path::ACPI_POWER_STATE,
                vec![0u8, 0xFF, 0xFF],
                true,
                0x20u16,
            ),
        )
        .await?;
    let id: u16 = as_string.body().deserialize()?;
    assert_eq!(id, 1);
    let object_path = zbus::ObjectPath::try_from(path::ACPI_POWER_STATE)?;
    let refused = conn
        .call_method(
            Some(bus::LOGGING_IPMI),
            path::LOGGING_IPMI,
            Some(iface::LOGGING_IPMI),
            method::IPMI_SEL_ADD,
            &("m", object_path, vec![0u8, 0xFF, 0xFF], true, 0x20u16),
        )
        .await;
    assert!(refused.is_err(), "an `o` path accepted");
    let too_long = conn
        .call_method(
            Some(bus::LOGGING_IPMI),
            path::LOGGING_IPMI,
            Some(iface::LOGGING_IPMI),
            method::IPMI_SEL_ADD,
            &("m", path::ACPI_POWER_STATE, vec![0u8; 4], true, 0x20u16),
        )
        .await;
    assert!(too_long.is_err(), "4 data bytes accepted");
    assert_eq!(sel.calls().len(), 1);
    Ok(())
}
