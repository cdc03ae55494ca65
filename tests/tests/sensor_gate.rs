//! Bus tier for sensor-gate: the real acpi-state-daemon and the real sensor-gate (one
//! `acpigate` binary) on a private dbus-daemon, the simulated chassis/host/POST codes driving
//! the host phase, the simulated two-master SMBus, and the simulated pid-control and PWMs.
//!
//! The firmware's SPD scan starts `FIRMWARE_DELAY` after the reset or power-on that begins
//! firmware init (memory training does not begin the instant power is good), so the gate has
//! that long to close; a gated run must show no BMC transfer on the wire during the scan and
//! no collision at all.

use std::time::{Duration, Instant};

use acpigate_sim::fans::{FanSim, ZoneConfig};
use acpigate_sim::platform::{Chassis, PostCodes, Systemd};
use acpigate_sim::smbus::firmware::{ScanReport, SpdScan};
use acpigate_sim::smbus::{Faults, Master, SimServer, SimSmbus, Spd5118, Transfer};
use acpigate_tests::acpi_client::AcpiClient;
use acpigate_tests::harness::{
    Daemon, PrivateBus, announce_on_acpi_object_and_leave, eventually, run_config_without_bus,
    spawn_acpi_state_daemon,
};
use anyhow::{Context, Result, ensure};
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::acpigate::{HostPhase, gate_prop};
use openbmc_vocab::names::{bus, iface, path, prop, signal};
use openbmc_vocab::state::ChassisPowerState;
use zbus::OwnedVariant;

const DIMMS: u8 = 4;
const FIRMWARE_DELAY: Duration = Duration::from_millis(200);
const WAIT: Duration = Duration::from_secs(10);
const GATE: &str = "{ \"settle_ms\": 300 }";

struct Rig {
    bus: PrivateBus,
    _systemd: Systemd,
    acpi: AcpiClient,
    smbus: SimSmbus,
    _server: SimServer,
    acpi_daemon: Option<Daemon>,
    gate: Option<Daemon>,
    conn: zbus::Connection,
}

fn sensor_names() -> Vec<String> {
    (0..DIMMS).map(|i| format!("DIMM_{i}_Temp")).collect()
}

impl Rig {
    async fn new() -> Result<Self> {
        let bus = PrivateBus::start()?;
        let systemd = Systemd::start(&bus).await?;
        let smbus = SimSmbus::ddr4_board(DIMMS, 35.0);
        smbus.set_powered(false);
        let server = smbus.serve(&bus.dir().join("smbus.sock"))?;
        Ok(Self {
            acpi: AcpiClient::new(bus.connect().await?),
            conn: bus.connect().await?,
            _systemd: systemd,
            smbus,
            _server: server,
            acpi_daemon: None,
            gate: None,
            bus,
        })
    }

    /// A rig with the host off: chassis off, acpi-state-daemon started and in `Off` (the
    /// chassis is returned to be kept alive and driven).
    async fn host_off() -> Result<(Self, Chassis)> {
        let mut rig = Self::new().await?;
        let chassis = Chassis::start(&rig.bus, ChassisPowerState::Off).await?;
        rig.launch_acpi()?;
        rig.wait_phase(HostPhase::Off).await?;
        Ok((rig, chassis))
    }

    /// A rig with the host powered: chassis on, DIMMs powered (the chassis is returned to be
    /// kept alive).
    async fn host_on() -> Result<(Self, Chassis)> {
        let rig = Self::new().await?;
        rig.smbus.set_powered(true);
        let chassis = Chassis::start(&rig.bus, ChassisPowerState::On).await?;
        Ok((rig, chassis))
    }

    /// [`Rig::host_on`] with acpi-state-daemon started and in firmware init.
    async fn in_firmware_init() -> Result<(Self, Chassis)> {
        let (mut rig, chassis) = Self::host_on().await?;
        rig.launch_acpi_in_firmware_init().await?;
        Ok((rig, chassis))
    }

    /// acpi-state-daemon started with the chassis on: wait for its firmware-init phase.
    async fn launch_acpi_in_firmware_init(&mut self) -> Result<()> {
        self.launch_acpi()?;
        self.wait_phase(HostPhase::FirmwareInit).await
    }

    fn launch_acpi(&mut self) -> Result<()> {
        self.acpi_daemon = Some(spawn_acpi_state_daemon(&self.bus)?);
        Ok(())
    }

    /// SIGKILL acpi-state-daemon (the phase source).
    fn kill_acpi(&mut self) -> Result<()> {
        self.acpi_daemon.as_mut().context("acpi daemon")?.kill();
        Ok(())
    }

    /// Start the killed acpi-state-daemon again on the same config and state file.
    fn restart_acpi(&mut self) -> Result<()> {
        self.acpi_daemon
            .as_mut()
            .context("acpi daemon")?
            .restart_as_before(&self.bus)
    }

    /// sensor-gate with DIMMS TSODs on the simulated bus; `gate` is the `"gate"` object,
    /// `extra` is spliced into the top level.
    fn launch_gate(&mut self, gate: &str, extra: &str) -> Result<()> {
        let sensors: Vec<String> = sensor_names()
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "{{ \"name\": \"{n}\", \"bus\": \"dimm\", \"type\": \"jc42\", \"address\": {}, \
                     \"thresholds\": {{ \"warning_high\": 85, \"critical_high\": 95 }} }}",
                    0x18 + i
                )
            })
            .collect();
        let cfg = format!(
            "{{\n  \"gate\": {gate},\n  \"poll_ms\": 20,\n  \"buses\": [ {{ \"name\": \"dimm\", \"backend\": \"sim:{}\" }} ],\n  \"sensors\": [ {} ],\n  \"fans\": {{ \"retry_ms\": 500, \"zones\": [ {{ \"zone\": 0, \"pwms\": [ {{ \"name\": \"Pwm_1\", \"target\": 153 }}, {{ \"name\": \"Pwm_2\", \"target\": 153 }} ] }} ] }}{extra}\n}}\n",
            self.bus.dir().join("smbus.sock").display(),
            sensors.join(",\n    ")
        );
        self.launch_gate_with(&cfg)
    }

    fn launch_gate_with(&mut self, cfg: &str) -> Result<()> {
        let file = self.bus.write_config("sensor-gate.json", cfg)?;
        self.gate = Some(Daemon::spawn_with_config(&self.bus, "sensor-gate", &file)?);
        Ok(())
    }

    /// sensor-gate with `gate`, then the simulated fan controller.
    async fn launch_gate_and_fans(&mut self, gate: &str) -> Result<FanSim> {
        self.launch_gate(gate, "")?;
        self.fans().await
    }

    async fn fans(&self) -> Result<FanSim> {
        FanSim::start(&self.bus, zone0(), &["Pwm_1", "Pwm_2"]).await
    }

    async fn get(&self, p: &str, interface: &str, name: &str) -> Result<OwnedVariant> {
        let reply = self
            .conn
            .call_method(
                Some(bus::DIMM_TEMP_SENSOR),
                p,
                Some(iface::PROPERTIES),
                "Get",
                &(interface, name),
            )
            .await
            .with_context(|| format!("Get {p} {name}"))?;
        Ok(reply.body().deserialize::<OwnedVariant>()?)
    }

    async fn gate_open(&self) -> Result<bool> {
        Ok(bool::try_from(
            self.get(path::ACPIGATE_GATE, iface::ACPIGATE_GATE, gate_prop::OPEN)
                .await?,
        )?)
    }

    async fn gate_u64(&self, name: &str) -> Result<u64> {
        Ok(u64::try_from(
            self.get(path::ACPIGATE_GATE, iface::ACPIGATE_GATE, name)
                .await?,
        )?)
    }

    /// (Value, Available, Functional) of a sensor.
    async fn sensor(&self, name: &str) -> Result<(f64, bool, bool)> {
        let p = path::temperature_sensor(name);
        Ok((
            f64::try_from(self.get(&p, iface::SENSOR_VALUE, prop::VALUE).await?)?,
            bool::try_from(self.get(&p, iface::AVAILABILITY, prop::AVAILABLE).await?)?,
            bool::try_from(
                self.get(&p, iface::OPERATIONAL_STATUS, prop::FUNCTIONAL)
                    .await?,
            )?,
        ))
    }

    async fn wait_gate(&self, open: bool) -> Result<Instant> {
        eventually(WAIT, &format!("gate open={open}"), || async {
            (self.gate_open().await.ok() == Some(open)).then(Instant::now)
        })
        .await
    }

    async fn wait_phase(&self, want: HostPhase) -> Result<()> {
        eventually(WAIT, &format!("phase {want}"), || async {
            (self.acpi.phase().await.ok() == Some(want)).then_some(())
        })
        .await
    }

    /// The host writes S0: wait for the gate to open (the instant it was seen open) and every
    /// sensor to be live.
    async fn s0_until_live(&self) -> Result<Instant> {
        self.acpi.set_sys(AcpiState::S0G0D0).await?;
        let open = self.wait_gate(true).await?;
        self.wait_all_live().await?;
        Ok(open)
    }

    /// Every sensor unavailable but functional (`when` for the message): what the closed gate
    /// shows, with no read errors.
    async fn ensure_all_unavailable(&self, when: &str) -> Result<()> {
        for n in sensor_names() {
            let (v, avail, func) = self.sensor(&n).await?;
            ensure!(
                v.is_nan() && !avail && func,
                "{n} {when}: {v} {avail} {func}"
            );
        }
        Ok(())
    }

    /// Wait until every sensor shows a live value.
    async fn wait_all_live(&self) -> Result<()> {
        for n in sensor_names() {
            eventually(WAIT, &format!("{n} live"), || async {
                matches!(self.sensor(&n).await, Ok((v, true, true)) if v == 35.0).then_some(())
            })
            .await?;
        }
        Ok(())
    }

    /// The firmware's SPD scan, `FIRMWARE_DELAY` after `from` (the sleep is the firmware
    /// model's timing, not a wait for sensor-gate).
    async fn firmware_scan(&self, from: Instant) -> Result<ScanReport> {
        tokio::time::sleep_until((from + FIRMWARE_DELAY).into()).await;
        let mut scan = SpdScan::ddr4(DIMMS);
        scan.bytes = 128;
        let h = scan.spawn(&self.smbus);
        tokio::task::spawn_blocking(move || h.join())
            .await?
            .map_err(|_| anyhow::anyhow!("scan thread panicked"))
    }

    /// Wait until the sensor at `p` publishes `WarningHigh` = `want`.
    async fn wait_warning_high(&self, p: &str, want: f64) -> Result<()> {
        eventually(WAIT, &format!("{p} WarningHigh {want}"), || async {
            let v = self
                .get(p, iface::THRESHOLD_WARNING, prop::WARNING_HIGH)
                .await
                .ok()?;
            (f64::try_from(v).ok()? == want).then_some(())
        })
        .await
        .with_context(|| self.gate_log())
    }

    fn gate_log(&self) -> String {
        self.gate.as_ref().map(Daemon::log_text).unwrap_or_default()
    }
}

fn ensure_no_failsafe(fans: &FanSim) -> Result<()> {
    ensure!(
        fans.failsafe_entries() == 0,
        "fail-safe entered: {:?}",
        fans.zones()
    );
    Ok(())
}

fn bmc_in(t: &[Transfer], from: Instant, to: Instant) -> Vec<Transfer> {
    t.iter()
        .filter(|x| matches!(x.master, Master::Bmc(_)) && x.overlaps(from, to))
        .copied()
        .collect()
}

/// How long the one transfer in flight at a close may take to leave the wire. It takes
/// ~0.5 ms on the simulated bus; the rest is scheduling slack for a loaded 2-core machine
/// (several test binaries at once delay the bus and simulator threads by tens of ms). It stays
/// below `FIRMWARE_DELAY`, and a separate check allows only one such transfer.
const IN_FLIGHT_BOUND: Duration = Duration::from_millis(150);

fn wall_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The gated run's promises for one firmware-init window, with the gate closed at `closed`
/// (its close after a reset; for a cold boot the power-on, the gate being closed since start)
/// and S0 written at `end`:
/// * the firmware found every DIMM and nothing collided;
/// * at most `in_flight` BMC transfers (the one in flight at the close) started after the
///   close, and no BMC transfer was on the wire after `closed + IN_FLIGHT_BOUND`;
/// * no BMC transfer overlapped the firmware's scan.
fn check_window(
    rig: &Rig,
    closed: Instant,
    in_flight: usize,
    end: Instant,
    scan: &ScanReport,
) -> Result<()> {
    let log = rig.smbus.transfers();
    ensure!(
        scan.lost.is_empty() && scan.failed_reads == 0,
        "firmware lost DIMMs: {scan:?}"
    );
    ensure!(
        scan.found.len() == usize::from(DIMMS),
        "firmware found {:?}",
        scan.found
    );
    let collisions = rig.smbus.collisions();
    ensure!(collisions.is_empty(), "collisions: {collisions:?}");
    let during_scan = bmc_in(&log, scan.start, scan.end);
    ensure!(
        during_scan.is_empty(),
        "BMC transfers during the SPD scan: {during_scan:?}"
    );
    let late = bmc_in(&log, closed + IN_FLIGHT_BOUND, end);
    ensure!(
        late.is_empty(),
        "BMC transfers during firmware init: {late:?}"
    );
    let started_after = log
        .iter()
        .filter(|x| matches!(x.master, Master::Bmc(_)) && x.start >= closed && x.start < end)
        .count();
    ensure!(
        started_after <= in_flight,
        "{started_after} BMC transfers started after the close\n{}",
        rig.gate_log()
    );
    Ok(())
}

/// The monotonic instant of the gate's last change, from its wall-clock `Since`, given one
/// (Instant, wall µs) pair taken together.
async fn gate_since(rig: &Rig, at: Instant, at_wall_us: u64) -> Result<Instant> {
    let since = rig.gate_u64(gate_prop::SINCE).await?;
    Ok(if since >= at_wall_us {
        at + Duration::from_micros(since - at_wall_us)
    } else {
        at - Duration::from_micros(at_wall_us - since)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_boot_and_abrupt_power_loss_gated() -> Result<()> {
    let (mut rig, mut chassis) = Rig::host_off().await?;
    let fans = rig.launch_gate_and_fans(GATE).await?;
    ensure!(!rig.gate_open().await?);
    rig.ensure_all_unavailable("off").await?;

    // Power on: firmware init; the firmware reads every SPD.
    let t_on = Instant::now();
    rig.smbus.set_powered(true);
    chassis.set_power(ChassisPowerState::On).await?;
    rig.wait_phase(HostPhase::FirmwareInit).await?;
    let scan = rig.firmware_scan(t_on).await?;
    let t_s0 = Instant::now();
    let t_open = rig.s0_until_live().await?;
    // Closed since start: nothing may start at all before S0.
    check_window(&rig, t_on, 0, t_s0, &scan)?;
    let first = rig
        .smbus
        .bmc_transfers()
        .first()
        .copied()
        .context("no BMC transfers at all")?;
    ensure!(
        first.start >= t_s0 + Duration::from_millis(300),
        "a BMC read before the settle delay ended"
    );
    ensure!(
        first.start <= t_open + IN_FLIGHT_BOUND,
        "reads start when the gate opens"
    );

    // Fans: held in firmware init (manual, fixed PWM written before S0), handed back at open.
    let zone = &fans.zones()[0];
    let writes: Vec<bool> = zone.manual_writes.iter().map(|(_, m)| *m).collect();
    ensure!(writes == [true, false], "Manual writes {writes:?}");
    ensure!(zone.manual_writes[0].0 < t_s0 && zone.manual_writes[1].0 >= t_s0);
    for pwm in ["Pwm_1", "Pwm_2"] {
        let w = fans.pwm_writes(pwm);
        ensure!(
            w.len() == 1 && w[0].1 == 153 && w[0].0 < t_s0,
            "{pwm}: {w:?}"
        );
    }

    // Abrupt power loss: S5 from the chassis, no word from the host.
    let (t_off, t_off_wall) = (Instant::now(), wall_us());
    rig.smbus.set_powered(false);
    chassis.set_power(ChassisPowerState::Off).await?;
    rig.wait_gate(false).await?;
    // Until the close reaches us the host is still working to the gate: reads may go on (and
    // NACK). After it, at most the one in flight, gone within the bound.
    let closed = gate_since(&rig, t_off, t_off_wall).await?;
    // A negative check: nothing may happen now, so there is no condition to wait for; give a
    // stray read half a second to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t_end = Instant::now();
    let after: Vec<Transfer> = rig
        .smbus
        .bmc_transfers()
        .into_iter()
        .filter(|t| t.start >= closed)
        .collect();
    ensure!(after.len() <= 1, "BMC transfers after the close: {after:?}");
    ensure!(
        bmc_in(&rig.smbus.transfers(), closed + IN_FLIGHT_BOUND, t_end).is_empty(),
        "BMC on the bus while off"
    );
    // Unpowered parts NACK, but the gate keeps us from reading them: no errors, no
    // Functional=false, just unavailable.
    rig.ensure_all_unavailable("after power loss").await?;
    ensure!(rig.gate_u64(gate_prop::CLOSES).await? == 1);
    ensure!(rig.gate_u64(gate_prop::REFUSED).await? > 0);
    let latency = rig.gate_u64(gate_prop::LAST_CLOSE_LATENCY_USEC).await?;
    ensure!(latency < 2_000_000, "close latency {latency} µs");
    ensure_no_failsafe(&fans)?;
    eprintln!(
        "cold boot: scan {} reads in {:?}, first BMC read {:?} after S0, close latency {latency} µs",
        scan.reads,
        scan.end - scan.start,
        first.start - t_s0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_reset_in_s0_closes_before_the_firmware_rescans() -> Result<()> {
    let (mut rig, _chassis) = Rig::host_on().await?;
    let postd = PostCodes::start(&rig.bus).await?;
    rig.launch_acpi_in_firmware_init().await?;
    let fans = rig.launch_gate_and_fans(GATE).await?;
    rig.s0_until_live().await?;
    // The poller at full rate is on the bus most of the time: wait until it has been for a
    // while, so the reset is likely to find a read in flight.
    eventually(WAIT, "20 BMC reads while working", || async {
        (rig.smbus.bmc_transfers().len() >= 20).then_some(())
    })
    .await?;

    // Warm reset: a POST code while working.
    let (t_reset, t_reset_wall) = (Instant::now(), wall_us());
    postd.post(0x19).await?;
    let scan = rig.firmware_scan(t_reset).await?;
    ensure!(!rig.gate_open().await?, "gate open in firmware init");
    // While closed, the gate's `Since` is the close: map it onto the monotonic clock.
    let closed = gate_since(&rig, t_reset, t_reset_wall).await?;
    let t_s0 = Instant::now();
    rig.s0_until_live().await?;
    ensure!(closed >= t_reset, "closed before the reset?");
    check_window(&rig, closed, 1, t_s0, &scan)?;
    let discarded = rig.gate_u64(gate_prop::DISCARDED).await?;
    ensure!(discarded <= 1, "discarded {discarded}");
    ensure_no_failsafe(&fans)?;
    // Before the reset the zone was handed back (the hold at start may race the fan
    // controller's own start, so only the last write counts); the reset holds, the reopen
    // hands back.
    let zone = &fans.zones()[0];
    let split = |after: bool| -> Vec<bool> {
        zone.manual_writes
            .iter()
            .filter(|(t, _)| (*t >= t_reset) == after)
            .map(|(_, m)| *m)
            .collect()
    };
    let (before, after) = (split(false), split(true));
    ensure!(
        before.last() == Some(&false),
        "Manual writes before reset {before:?}"
    );
    ensure!(
        after == [true, false],
        "Manual writes after reset {after:?}"
    );
    eprintln!(
        "warm reset: close latency {} µs, {} reads refused",
        rig.gate_u64(gate_prop::LAST_CLOSE_LATENCY_USEC).await?,
        rig.gate_u64(gate_prop::REFUSED).await?
    );
    Ok(())
}

/// Zone 0 with every DIMM sensor as input, as the README asks pid-control to be set up:
/// unavailable DIMM sensors are not failures.
fn zone0() -> Vec<ZoneConfig> {
    vec![ZoneConfig {
        zone: 0,
        inputs: sensor_names(),
        unavailable_as_failed: false,
    }]
}

/// A fan controller that never answers a zone write: the gate still closes on each warm
/// reset as fast as beside a healthy one (sensor-gate never waits on a fan write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_fan_controller_never_delays_the_gate() -> Result<()> {
    // The same bound as the acpi-state-daemon rigs: far below the 2 s fan write deadline.
    const CLOSE_BOUND_US: u64 = 500_000;
    let (mut rig, _chassis) = Rig::host_on().await?;
    let postd = PostCodes::start(&rig.bus).await?;
    rig.launch_acpi_in_firmware_init().await?;
    rig.launch_gate(GATE, "")?;
    let _fans = FanSim::start_hung(&rig.bus, zone0(), &["Pwm_1", "Pwm_2"]).await?;
    rig.s0_until_live().await?;
    for round in 1..=3 {
        postd.post(0x19).await?;
        rig.wait_gate(false).await?;
        let latency = rig.gate_u64(gate_prop::LAST_CLOSE_LATENCY_USEC).await?;
        ensure!(
            latency < CLOSE_BOUND_US,
            "round {round}: close latency {latency} µs beside a hung fan controller"
        );
        rig.s0_until_live().await?;
    }
    // The hung writes are given up after their deadline (2 s), and said so.
    let gate = rig.gate.as_ref().context("gate")?;
    eventually(WAIT, "a fan write given up", || async {
        gate.log_text().contains("no answer in time").then_some(())
    })
    .await?;
    Ok(())
}

/// The control experiment: the same cold boot with the gate disabled reproduces the field
/// bug — BMC polls collide with the firmware's SPD reads and DIMMs go missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_disabled_reproduces_collisions_and_lost_dimms() -> Result<()> {
    let (mut rig, mut chassis) = Rig::host_off().await?;
    rig.launch_gate("{ \"enabled\": false }", ",\n  \"error_threshold\": 3")?;
    ensure!(rig.gate_log().contains("DISABLED"), "{}", rig.gate_log());
    let fans = rig.fans().await?;
    let t_on = Instant::now();
    rig.smbus.set_powered(true);
    chassis.set_power(ChassisPowerState::On).await?;
    let scan = rig.firmware_scan(t_on).await?;
    rig.acpi.set_sys(AcpiState::S0G0D0).await?;
    let collisions = rig.smbus.collisions();
    let fw_hit = collisions
        .iter()
        .filter(|t| t.master == Master::Firmware)
        .count();
    eprintln!(
        "gate disabled: {} collisions ({fw_hit} on firmware reads), DIMMs lost {:?}, found {:?}",
        collisions.len(),
        scan.lost,
        scan.found
    );
    ensure!(
        fw_hit > 0,
        "no firmware read collided: the model did not show the bug"
    );
    ensure!(!scan.lost.is_empty(), "no DIMM lost: {scan:?}");
    // Reading unpowered DIMMs while off made them non-functional: what the gate avoids.
    ensure!(
        rig.gate_log().contains("Functional=false"),
        "{}",
        rig.gate_log()
    );
    // No fan hold without the gate.
    ensure!(fans.zones()[0].manual_writes.is_empty());
    Ok(())
}

/// A NACKing device, a stuck bus, a missing `/dev/i2c-N` and an absent fan controller: each
/// gives a clear log line and a defined sensor state, and the good sensor keeps being served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_give_clear_logs_and_defined_states() -> Result<()> {
    let (mut rig, _chassis) = Rig::host_on().await?;
    rig.smbus.set_faults(Faults {
        nack: [0x19].into(),
        ..Faults::default()
    });
    let stuck = SimSmbus::ddr4_board(1, 35.0);
    stuck.set_faults(Faults {
        stuck: true,
        ..Faults::default()
    });
    let _stuck_server = stuck.serve(&rig.bus.dir().join("stuck.sock"))?;
    rig.launch_acpi_in_firmware_init().await?;
    rig.smbus.add(0x57, Box::new(Spd5118::new(7, 47.25)));
    let dir = rig.bus.dir().to_owned();
    let cfg = format!(
        r#"{{
  "gate": {{ "settle_ms": 100 }},
  "poll_ms": 50,
  "error_threshold": 3,
  "buses": [
    {{ "name": "a", "backend": "sim:{a}" }},
    {{ "name": "stuck", "backend": "sim:{b}" }},
    {{ "name": "missing", "backend": "i2c-dev", "bus": 250 }}
  ],
  "sensors": [
    {{ "name": "Good", "bus": "a", "type": "jc42", "address": "0x18" }},
    {{ "name": "Nacking", "bus": "a", "type": "jc42", "address": "0x19" }},
    {{ "name": "OnStuckBus", "bus": "stuck", "type": "jc42", "address": "0x18" }},
    {{ "name": "NoDevNode", "bus": "missing", "type": "jc42", "address": "0x18" }},
    {{ "name": "Ddr5", "bus": "a", "type": "spd5118", "address": "0x57",
       "thresholds": {{ "warning_high": 50, "critical_high": 60, "hysteresis": 2 }} }}
  ],
  "fans": {{ "retry_ms": 200, "zones": [ {{ "zone": 0, "pwms": [ {{ "name": "Pwm_1", "target": 153 }} ] }} ] }}
}}
"#,
        a = dir.join("smbus.sock").display(),
        b = dir.join("stuck.sock").display()
    );
    rig.launch_gate_with(&cfg)?;
    // No fan controller on the bus: the hold fails, is logged, and the gate does not care.
    eventually(WAIT, "fan failure logged", || async {
        rig.gate_log().contains("fan command").then_some(())
    })
    .await?;
    rig.acpi.set_sys(AcpiState::S0G0D0).await?;
    rig.wait_gate(true).await?;
    eventually(WAIT, "Good live", || async {
        matches!(rig.sensor("Good").await, Ok((v, true, true)) if v == 35.0).then_some(())
    })
    .await?;
    for bad in ["Nacking", "OnStuckBus", "NoDevNode"] {
        eventually(WAIT, &format!("{bad} non-functional"), || async {
            matches!(rig.sensor(bad).await, Ok((v, false, false)) if v.is_nan()).then_some(())
        })
        .await?;
    }
    let log = rig.gate_log();
    for want in [
        "Nacking: read failed: no acknowledge from the device",
        "OnStuckBus: read failed: transfer timed out",
        "NoDevNode: read failed: I/O error: /dev/i2c-250 does not exist",
        "Nacking: 3 reads in a row failed",
        "Functional=false",
    ] {
        ensure!(log.contains(want), "missing `{want}` in:\n{log}");
    }
    // DDR5: SPD5118 decoding end to end, and a threshold crossing with its signal.
    eventually(WAIT, "Ddr5 live", || async {
        matches!(rig.sensor("Ddr5").await, Ok((v, true, true)) if v == 47.25).then_some(())
    })
    .await?;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(iface::THRESHOLD_WARNING)
        .member("WarningHighAlarmAsserted")
        .path(path::temperature_sensor("Ddr5"))
        .build()?;
    let mut alarms = zbus::MessageStream::for_match_rule(rule, &rig.conn, None).await?;
    rig.smbus.set_celsius(0x57, 52.5);
    let msg = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut alarms))
        .await
        .context("no WarningHighAlarmAsserted")?
        .context("stream ended")??;
    let value: f64 = msg.body().deserialize()?;
    ensure!(value == 52.5, "alarm value {value}");
    let p = path::temperature_sensor("Ddr5");
    ensure!(bool::try_from(
        rig.get(&p, iface::THRESHOLD_WARNING, prop::WARNING_ALARM_HIGH)
            .await?
    )?);
    ensure!(!bool::try_from(
        rig.get(&p, iface::THRESHOLD_CRITICAL, prop::CRITICAL_ALARM_HIGH)
            .await?
    )?);
    ensure!(
        f64::try_from(
            rig.get(&p, iface::THRESHOLD_CRITICAL, prop::CRITICAL_HIGH)
                .await?
        )? == 60.0
    );
    // Still serving the good one: a change of temperature shows.
    rig.smbus.set_celsius(0x18, 41.5);
    eventually(WAIT, "Good follows the temperature", || async {
        matches!(rig.sensor("Good").await, Ok((v, true, true)) if v == 41.5).then_some(())
    })
    .await?;
    ensure!(rig.gate.as_mut().is_some_and(Daemon::running));
    let status = rig.gate.as_mut().context("gate daemon")?.terminate()?;
    ensure!(status.success(), "SIGTERM: {status}");
    Ok(())
}

#[test]
fn a_bad_config_names_file_line_and_reason_and_starts_nothing() -> Result<()> {
    let (file, out) = run_config_without_bus(
        "sensor-gate",
        "{\n  \"buses\": [ { \"name\": \"b\", \"backend\": \"i2c-dev\", \"bus\": 3 } ],\n  \"sensors\": [\n    { \"name\": \"D0\", \"bus\": \"b\", \"type\": \"jc42\", \"address\": \"0x50\" }\n  ]\n}\n",
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "started with a bad config");
    ensure!(
        err.contains(&format!(
            "{}:4:67: sensor `D0`: address 0x50 is not a jc42 address",
            file.display()
        )),
        "{err}"
    );
    Ok(())
}

/// acpi-state-daemon killed while the host works: the phase source is gone, so the gate
/// closes (fail closed) and stays closed until the restarted daemon says `Working` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_source_killed_and_restarted_closes_then_reopens() -> Result<()> {
    let (mut rig, _chassis) = Rig::in_firmware_init().await?;
    let fans = rig.launch_gate_and_fans(GATE).await?;
    rig.s0_until_live().await?;

    let (t_kill, t_kill_wall) = (Instant::now(), wall_us());
    rig.kill_acpi()?;
    rig.wait_gate(false).await?;
    // The close happens when the name's owner change reaches sensor-gate; reads before it
    // are legitimate (the host works), after it at most the one in flight.
    let closed = gate_since(&rig, t_kill, t_kill_wall).await?;
    rig.ensure_all_unavailable("with no phase source").await?;
    // Gone for a while: nothing may be read meanwhile (a negative check, so a fixed time).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let t_restart = Instant::now();
    rig.restart_acpi()?;
    rig.wait_phase(HostPhase::Working).await?;
    rig.wait_gate(true).await?;
    rig.wait_all_live().await?;
    let quiet = bmc_in(&rig.smbus.transfers(), closed + IN_FLIGHT_BOUND, t_restart);
    ensure!(quiet.is_empty(), "BMC read with no phase source: {quiet:?}");
    let started = rig
        .smbus
        .bmc_transfers()
        .iter()
        .filter(|t| t.start >= closed && t.start < t_restart)
        .count();
    ensure!(started <= 1, "{started} reads started after the close");
    ensure!(
        rig.gate_log().contains("left the bus"),
        "{}",
        rig.gate_log()
    );
    ensure_no_failsafe(&fans)?;
    Ok(())
}

/// IPMI-style writes of every ACPI state (what ipmid does for Set ACPI Power State): the gate
/// is open exactly when acpi-state-daemon's phase is `Working`, and no BMC transfer is on the
/// wire in any other phase once the close has had its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acpi_state_written_opens_only_in_working() -> Result<()> {
    use openbmc_vocab::DbusEnum;
    let (mut rig, _chassis) = Rig::in_firmware_init().await?;
    let fans = rig.launch_gate_and_fans("{ \"settle_ms\": 100 }").await?;
    let mut opened = 0;
    for &state in AcpiState::ALL {
        // From working each time, so every write is a change the gate must follow.
        rig.acpi.set_sys(AcpiState::S0G0D0).await?;
        rig.wait_phase(HostPhase::Working).await?;
        rig.wait_gate(true).await?;
        let (t, t_wall) = (Instant::now(), wall_us());
        rig.acpi.set_sys(state).await?;
        let phase = eventually(WAIT, &format!("phase after {state}"), || async {
            let p = rig.acpi.phase().await.ok()?;
            let s = rig.acpi.sys().await.ok()?;
            (s == state || p != HostPhase::Working).then_some(p)
        })
        .await?;
        if phase == HostPhase::Working {
            opened += 1;
            // A negative check: give a stray close a moment to show.
            tokio::time::sleep(Duration::from_millis(150)).await;
            ensure!(rig.gate_open().await?, "{state}: working but closed");
            continue;
        }
        rig.wait_gate(false).await?;
        let closed = gate_since(&rig, t, t_wall).await?;
        // A negative check: let the read in flight leave the wire, then give a stray one a
        // moment to show.
        tokio::time::sleep(IN_FLIGHT_BOUND + Duration::from_millis(150)).await;
        let late = bmc_in(
            &rig.smbus.transfers(),
            closed + IN_FLIGHT_BOUND,
            Instant::now(),
        );
        ensure!(
            late.is_empty(),
            "{state} ({phase}): BMC on the bus: {late:?}"
        );
        let started = rig
            .smbus
            .bmc_transfers()
            .iter()
            .filter(|x| x.start >= closed)
            .count();
        ensure!(
            started <= 1,
            "{state} ({phase}): {started} reads after the close"
        );
        ensure!(!rig.gate_open().await?, "{state} ({phase}): gate reopened");
        eprintln!("{:<10} -> {phase}: closed", state.short());
    }
    ensure!(opened >= 1, "no state kept the host working");
    ensure_no_failsafe(&fans)?;
    ensure!(rig.smbus.collisions().is_empty());
    Ok(())
}

/// acpi-state-daemon killed mid-boot (firmware init): the gate stays closed and the fans stay
/// held while the phase is unknown, and through the restart until S0 has settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_source_killed_mid_boot_keeps_gate_closed_and_fans_held() -> Result<()> {
    let (mut rig, _chassis) = Rig::in_firmware_init().await?;
    let fans = rig.fans().await?;
    rig.launch_gate(GATE, "")?;
    eventually(WAIT, "fans held", || async {
        (fans.zones()[0].manual_writes.last().map(|w| w.1) == Some(true)).then_some(())
    })
    .await?;
    rig.kill_acpi()?;
    eventually(WAIT, "source loss noticed", || async {
        rig.gate_log().contains("left the bus").then_some(())
    })
    .await?;
    // Gone for a while: nothing may be read and the fans must stay held meanwhile (a negative
    // check, so a fixed time).
    tokio::time::sleep(Duration::from_millis(400)).await;
    rig.restart_acpi()?;
    rig.wait_phase(HostPhase::FirmwareInit).await?;
    ensure!(!rig.gate_open().await?);
    ensure!(
        rig.smbus.bmc_transfers().is_empty(),
        "BMC read before S0: {:?}",
        rig.smbus.bmc_transfers()
    );
    let writes: Vec<bool> = fans.zones()[0].manual_writes.iter().map(|w| w.1).collect();
    ensure!(
        !writes.contains(&false),
        "fans released mid-boot: {writes:?}"
    );
    let t_s0 = Instant::now();
    rig.s0_until_live().await?;
    let first = rig.smbus.bmc_transfers()[0];
    ensure!(first.start >= t_s0 + Duration::from_millis(300));
    ensure!(fans.zones()[0].manual_writes.last().map(|w| w.1) == Some(false));
    ensure_no_failsafe(&fans)?;
    Ok(())
}

/// phosphor-pid-control rebuilds its zones in automatic mode whenever it restarts its control
/// loops (2 s after any sensor object under /xyz/openbmc_project/sensors comes or goes): a
/// rebuild in the middle of the firmware-init hold must not end the hold. sensor-gate follows
/// the zones' InterfacesAdded and writes Manual=true and the fixed PWMs again; after S0 the
/// zone is handed back as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_controller_rebuilding_its_zones_mid_hold_is_held_again() -> Result<()> {
    let (mut rig, _chassis) = Rig::in_firmware_init().await?;
    let fans = rig.fans().await?;
    rig.launch_gate(GATE, "")?;
    let pwm_at_hold = |since: Instant| {
        ["Pwm_1", "Pwm_2"].iter().all(|p| {
            fans.pwm_writes(p)
                .iter()
                .any(|&(t, v)| t >= since && v == 153)
        })
    };
    let start = Instant::now();
    eventually(WAIT, "fans held", || async {
        (fans.zones()[0].manual && pwm_at_hold(start)).then_some(())
    })
    .await?;
    for round in 0..3 {
        let rebuilt = Instant::now();
        fans.restart_control_loops().await?;
        eventually(
            WAIT,
            &format!("zone 0 held again after rebuild {round}"),
            || async {
                let z = &fans.zones()[0];
                let again = z.manual_writes.iter().any(|&(t, m)| t >= rebuilt && m);
                (again && z.manual && pwm_at_hold(rebuilt)).then_some(())
            },
        )
        .await
        .with_context(|| format!("{:?}\n{}", fans.zones(), rig.gate_log()))?;
    }
    ensure!(
        rig.gate_log().contains("re-created zone 0"),
        "the re-hold is not logged: {}",
        rig.gate_log()
    );
    // A rebuild starts its zone in fail-safe (upstream's every-input-missing start; not
    // counted when the zone was still in its start-up fail-safe), which sensor-gate cannot
    // prevent; nothing else may put it there.
    let entries = fans.failsafe_log();
    ensure!(
        entries.len() <= 3 && entries.iter().all(|(_, why)| why.contains("restarted")),
        "{entries:?}"
    );
    rig.s0_until_live().await?;
    eventually(WAIT, "zone 0 handed back", || async {
        (!fans.zones()[0].manual).then_some(())
    })
    .await?;
    // Rebuilt after the hand-back: left automatic.
    fans.restart_control_loops().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(!fans.zones()[0].manual, "{:?}", fans.zones());
    ensure!(rig.smbus.collisions().is_empty());
    Ok(())
}

/// sensor-gate up before acpi-state-daemon: closed (phase unknown) with a clear log line,
/// then it follows the source once it appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_source_missing_at_start_then_appearing() -> Result<()> {
    let (mut rig, _chassis) = Rig::host_on().await?;
    rig.launch_gate(GATE, "")?;
    eventually(WAIT, "the missing phase source logged", || async {
        rig.gate_log()
            .contains("host phase not readable")
            .then_some(())
    })
    .await
    .with_context(|| rig.gate_log())?;
    // With no source for a while, nothing may be read (a negative check, so a fixed time; it
    // also gives the refused count below its half second).
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(!rig.gate_open().await?);
    ensure!(rig.smbus.bmc_transfers().is_empty());
    rig.launch_acpi_in_firmware_init().await?;
    rig.s0_until_live().await?;
    // The reads that fell due while closed are counted when the gate opens: at a 20 ms poll,
    // more than 500 ms closed is well over 20 per sensor.
    let refused = rig.gate_u64(gate_prop::REFUSED).await?;
    let sensors = sensor_names().len() as u64;
    ensure!(refused >= 20 * sensors, "refused {refused}");
    Ok(())
}

/// A phase source that announces `Working` and leaves the bus in the same breath: the gate
/// must take the two in the order the bus sent them (announcement, then departure) and stay
/// closed. Taken the other way round, the departure closes the gate and the stale `Working`
/// then opens it with no source on the bus. Repeated, because the order only goes wrong when
/// both messages are waiting at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn working_announced_by_a_departing_source_is_not_followed() -> Result<()> {
    use openbmc_vocab::DbusEnum;
    use openbmc_vocab::acpigate::prop as phase_prop;
    use std::collections::HashMap;
    use zbus::Variant as Value;

    const ROUNDS: u64 = 16;
    const SETTLE: Duration = Duration::from_millis(100);
    let (mut rig, _chassis) = Rig::host_on().await?;
    rig.launch_gate("{ \"settle_ms\": 100 }", "")?;
    eventually(WAIT, "sensor-gate up with no phase source", || async {
        rig.gate_log()
            .contains("host phase not readable")
            .then_some(())
    })
    .await?;
    for round in 1..=ROUNDS {
        let source = rig.bus.connect().await?;
        // An object server that serves nothing answers sensor-gate's read with an error at
        // once (without one, the call would wait for the bus's reply timeout).
        let _ = source.object_server();
        source.request_name(bus::ACPI_POWER_STATE).await?;
        // Wait until sensor-gate has seen this owner arrive (and failed to read its phase:
        // the stand-in serves no objects), so the announcement below is what it follows.
        eventually(WAIT, "the stand-in source noticed", || async {
            (rig.gate_log().matches("(re)appeared").count() as u64 >= round).then_some(())
        })
        .await
        .with_context(|| rig.gate_log())?;
        let phase = HostPhase::Working.dbus_str();
        let changed: HashMap<&str, Value<'_>> = HashMap::from([
            (phase_prop::PHASE, Value::from(phase.as_str())),
            (phase_prop::GENERATION, Value::from(round)),
            (phase_prop::SINCE, Value::from(wall_us())),
            (phase_prop::REASON, Value::from("stand-in")),
        ]);
        announce_on_acpi_object_and_leave(source, iface::ACPIGATE_HOST_PHASE, changed).await?;
        eventually(WAIT, "the stand-in's departure noticed", || async {
            (rig.gate_log().matches("left the bus").count() as u64 >= round).then_some(())
        })
        .await?;
        // A negative check: the stale Working must not open the gate, so give it three settle
        // delays to do so wrongly.
        tokio::time::sleep(SETTLE * 3).await;
        ensure!(
            !rig.gate_open().await?,
            "round {round}: gate open with no phase source on the bus\n{}",
            rig.gate_log()
        );
    }
    ensure!(
        rig.smbus.bmc_transfers().is_empty(),
        "BMC read with no phase source: {:?}",
        rig.smbus.bmc_transfers()
    );
    Ok(())
}

/// Redfish visibility: with a `board` configured, every DIMM sensor carries the chassis
/// association bmcweb follows (`<board>/all_sensors`), set when the object is created, and
/// the sensors with their values are in `GetManagedObjects` at `/xyz/openbmc_project/sensors`
/// (where bmcweb reads them). The endpoint is checked the mapper's way: it exists, and is a
/// chassis to bmcweb (`Item.Board` or `Item.Chassis`); the mapper creates `all_sensors`
/// only for an endpoint that exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensors_carry_the_chassis_association_bmcweb_follows() -> Result<()> {
    use acpigate_sim::inventory::{CHASSIS_INTERFACES, Inventory, providers};
    use openbmc_vocab::names::association;

    const BOARD: &str = "/xyz/openbmc_project/inventory/system/board/Acme_Board";
    let (mut rig, _chassis) = Rig::host_off().await?;
    let _inventory = Inventory::start(&rig.bus, BOARD).await?;
    rig.launch_gate(GATE, &format!(", \"board\": \"{BOARD}\""))?;

    let objects = zbus::fdo::ObjectManagerProxy::builder(&rig.conn)
        .destination(bus::DIMM_TEMP_SENSOR)
        .path(path::SENSORS)
        .build()
        .await?
        .get_managed_objects()
        .await?;
    let want = vec![(
        association::CHASSIS.to_owned(),
        association::ALL_SENSORS.to_owned(),
        BOARD.to_owned(),
    )];
    for name in sensor_names() {
        let p = path::temperature_sensor(&name);
        let ifaces = objects
            .iter()
            .find(|(k, _)| k.as_str() == p)
            .map(|(_, v)| v)
            .with_context(|| format!("{p} not in GetManagedObjects at {}", path::SENSORS))?;
        let get = |i: &str, pr: &str| {
            ifaces
                .iter()
                .find(|(k, _)| k.as_str() == i)
                .and_then(|(_, props)| props.get(pr))
                .cloned()
                .with_context(|| format!("{p}: no {i}.{pr}"))
        };
        let _value: f64 = get(iface::SENSOR_VALUE, prop::VALUE)?.try_into()?;
        let assoc: Vec<(String, String, String)> =
            get(iface::ASSOCIATION_DEFINITIONS, prop::ASSOCIATIONS)?.try_into()?;
        ensure!(assoc == want, "{p}: Associations {assoc:?}, want {want:?}");
    }
    let chassis = providers(&rig.conn, BOARD, &CHASSIS_INTERFACES).await?;
    ensure!(
        chassis == [bus::ENTITY_MANAGER],
        "the association's endpoint {BOARD} is a chassis on {chassis:?}, want [{}]",
        bus::ENTITY_MANAGER
    );
    // The mapper-like lookup answers nothing for an object nobody serves.
    let nobody = providers(&rig.conn, &format!("{BOARD}_Missing"), &CHASSIS_INTERFACES).await?;
    ensure!(nobody.is_empty(), "{nobody:?}");
    ensure!(
        rig.gate_log()
            .contains(&format!("associated with the chassis {BOARD}")),
        "{}",
        rig.gate_log()
    );
    Ok(())
}

// ---- Sensors from entity-manager's records ----

/// The layer's example board file: four `AcpigateDimmTemp` records on bus 3.
fn example_board() -> Result<serde_json::Value> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../yocto/meta-acpigate/examples/entity-manager/acme-dimm-board.json");
    let text = std::fs::read_to_string(&p).with_context(|| format!("{}", p.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// The sensor names the board's records give (spaces become `_`).
fn record_names(board: &serde_json::Value) -> Vec<String> {
    board["Exposes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["Type"] == "AcpigateDimmTemp")
        .filter_map(|r| r["Name"].as_str().map(|n| n.replace(' ', "_")))
        .collect()
}

/// Every InterfacesAdded/InterfacesRemoved about an object under the sensors path, as
/// phosphor-pid-control's match sees them (any sender): (member, object path).
struct SensorObjectWatch {
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl SensorObjectWatch {
    async fn start(conn: &zbus::Connection) -> Result<Self> {
        use futures_util::StreamExt;
        use std::collections::HashMap;
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(iface::OBJECT_MANAGER)
            .build()?;
        let mut stream =
            zbus::MessageStream::for_match_rule(rule, conn, std::num::NonZeroUsize::new(1024))
                .await?;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let out = seen.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                let member = m
                    .header()
                    .member()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                type Added = HashMap<String, HashMap<String, OwnedVariant>>;
                let body = m.body();
                let p = match member.as_str() {
                    m if m == signal::INTERFACES_ADDED => body
                        .deserialize::<(zbus::OwnedObjectPath, Added)>()
                        .map(|(p, _)| p),
                    _ => body
                        .deserialize::<(zbus::OwnedObjectPath, Vec<String>)>()
                        .map(|(p, _)| p),
                };
                let Ok(p) = p else {
                    continue;
                };
                if p.as_str().starts_with(&format!("{}/", path::SENSORS)) {
                    out.lock().expect("watch").push((member, p.to_string()));
                }
            }
        });
        Ok(Self { seen, _task: task })
    }

    fn count(&self) -> usize {
        self.seen.lock().expect("watch").len()
    }

    fn since(&self, n: usize) -> Vec<(String, String)> {
        self.seen.lock().expect("watch")[n..].to_vec()
    }
}

const FROM_EM: &str = "\"sensors_from\": \"entity-manager\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensors_follow_entity_manager_records_and_unchanged_ones_are_never_touched() -> Result<()>
{
    use acpigate_sim::inventory::EntityManager;
    use openbmc_vocab::names::association;

    let board = example_board()?;
    let names = record_names(&board);
    ensure!(names.len() == usize::from(DIMMS), "{names:?}");
    let (mut rig, _chassis) = Rig::in_firmware_init().await?;
    let em = EntityManager::start(&rig.bus).await?;
    let board_path = em.publish_board(&board).await?;
    let watch = SensorObjectWatch::start(&rig.conn).await?;
    let cfg = format!(
        "{{\n  {FROM_EM},\n  \"gate\": {GATE},\n  \"poll_ms\": 20,\n  \"buses\": [ {{ \"name\": \"dimm\", \"backend\": \"sim:{}\", \"bus\": 3 }} ]\n}}\n",
        rig.bus.dir().join("smbus.sock").display()
    );
    rig.launch_gate_with(&cfg)?;

    // Every record became a sensor, associated with its record's board, read once in S0.
    rig.acpi.set_sys(AcpiState::S0G0D0).await?;
    rig.wait_gate(true).await?;
    for n in &names {
        eventually(WAIT, &format!("{n} live"), || async {
            matches!(rig.sensor(n).await, Ok((v, true, true)) if v == 35.0).then_some(())
        })
        .await
        .with_context(|| rig.gate_log())?;
        let p = path::temperature_sensor(n);
        let assoc: Vec<(String, String, String)> = rig
            .get(&p, iface::ASSOCIATION_DEFINITIONS, prop::ASSOCIATIONS)
            .await?
            .try_into()?;
        let want = (
            association::CHASSIS.to_owned(),
            association::ALL_SENSORS.to_owned(),
            board_path.clone(),
        );
        ensure!(assoc == [want], "{n}: {assoc:?}");
        let high = f64::try_from(
            rig.get(&p, iface::THRESHOLD_WARNING, prop::WARNING_HIGH)
                .await?,
        )?;
        let crit = f64::try_from(
            rig.get(&p, iface::THRESHOLD_CRITICAL, prop::CRITICAL_HIGH)
                .await?,
        )?;
        ensure!(
            (high, crit) == (85.0, 95.0),
            "{n}: thresholds {high} {crit}"
        );
    }
    let start_up = watch.count();
    ensure!(
        start_up >= names.len(),
        "start-up added {start_up} interfaces"
    );

    // Records of other types come, change and go: nothing happens to the sensors.
    let other = serde_json::json!({
        "Address": "0x48", "Bus": 5, "Name": "Inlet Temp", "Type": "TMP75",
        "Thresholds": [ { "Direction": "greater than", "Severity": 0, "Value": 40 } ]
    });
    let other_path = em
        .publish_record(&board_path, &other)
        .await?
        .context("published")?;
    em.set_property(
        &other_path,
        "xyz.openbmc_project.Configuration.TMP75.Thresholds0",
        "Value",
        OwnedVariant::from(45.0f64),
    )
    .await?;
    em.remove_record(&other_path).await?;

    // A threshold written through entity-manager: changed in place on its sensor.
    let first = path::temperature_sensor(&names[0]);
    let record = |n: &str| format!("{board_path}/{}", n);
    em.set_property(
        &record(&names[0]),
        &format!("{}.Thresholds1", iface::ACPIGATE_DIMM_TEMP_RECORD),
        "Value",
        OwnedVariant::from(80.0f64),
    )
    .await?;
    rig.wait_warning_high(&first, 80.0).await?;

    // A bad record is refused, naming the record and the field; the others go on.
    let bad = serde_json::json!({
        "Address": "0x1c", "Bus": 3, "DeviceType": "LM75", "Name": "DIMM C0 Temp",
        "Type": "AcpigateDimmTemp"
    });
    let bad_path = em
        .publish_record(&board_path, &bad)
        .await?
        .context("published")?;
    eventually(WAIT, "the bad record refused", || async {
        rig.gate_log()
            .contains(&format!(
                "record {bad_path}: DeviceType: `LM75` is not JC42"
            ))
            .then_some(())
    })
    .await
    .with_context(|| rig.gate_log())?;

    // One record removed: its sensor goes, and only it.
    let last = names.last().context("names")?;
    em.remove_record(&record(last)).await?;
    eventually(WAIT, "the removed record's sensor gone", || async {
        rig.sensor(last).await.is_err().then_some(())
    })
    .await
    .with_context(|| rig.gate_log())?;

    // entity-manager restarts and publishes the same board again (without the removed
    // record): nothing differs, nothing changes.
    em.stop().await?;
    let em = EntityManager::start(&rig.bus).await?;
    // As the real one: its name first, its boards once scanned (here well past the
    // follower's settle time, so sensor-gate sees an empty listing first).
    eventually(WAIT, "entity-manager listed again", || async {
        rig.gate_log()
            .contains("entity-manager is on the bus")
            .then_some(())
    })
    .await
    .with_context(|| rig.gate_log())?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut again = board.clone();
    if let Some(list) = again["Exposes"].as_array_mut() {
        list.retain(|r| {
            r["Name"].as_str().map(|n| n.replace(' ', "_")).as_deref() != Some(last.as_str())
        });
    }
    ensure!(
        rig.gate_log()
            .contains("is kept until entity-manager removes the record"),
        "{}",
        rig.gate_log()
    );
    em.publish_board(&again).await?;
    // Past the settle time of the follower and a few polls.
    tokio::time::sleep(Duration::from_millis(800)).await;

    let after = watch.since(start_up);
    let last_path = path::temperature_sensor(last);
    ensure!(
        !after.is_empty()
            && after
                .iter()
                .all(|(member, p)| member == signal::INTERFACES_REMOVED && *p == last_path),
        "after start-up, only the removed record's sensor may come or go: {after:?}"
    );
    for n in &names[..names.len() - 1] {
        let (v, avail, func) = rig.sensor(n).await?;
        ensure!(v == 35.0 && avail && func, "{n}: {v} {avail} {func}");
    }
    // The threshold written before the restart was the restarted entity-manager's file
    // value again: back to 85, in place.
    rig.wait_warning_high(&first, 85.0).await?;
    ensure!(
        watch.since(start_up) == after,
        "{:?}",
        watch.since(start_up)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_entity_manager_the_daemon_is_ready_says_it_waits_and_serves_once_it_comes()
-> Result<()> {
    use acpigate_sim::inventory::EntityManager;
    let (mut rig, _chassis) = Rig::in_firmware_init().await?;
    let cfg = format!(
        "{{\n  {FROM_EM},\n  \"gate\": {GATE},\n  \"poll_ms\": 20,\n  \"buses\": [ {{ \"name\": \"dimm\", \"backend\": \"sim:{}\", \"bus\": 3 }} ]\n}}\n",
        rig.bus.dir().join("smbus.sock").display()
    );
    rig.launch_gate_with(&cfg)?;
    // Ready (the gate object answers) with no sensor, saying why.
    eventually(WAIT, "waiting said", || async {
        rig.gate_log()
            .contains("waiting for entity-manager")
            .then_some(())
    })
    .await
    .with_context(|| rig.gate_log())?;
    ensure!(!rig.gate_open().await?, "closed in firmware init");
    rig.acpi.set_sys(AcpiState::S0G0D0).await?;
    rig.wait_gate(true).await?;
    // entity-manager arrives: its records are read without being asked again.
    let em = EntityManager::start(&rig.bus).await?;
    let board = example_board()?;
    em.publish_board(&board).await?;
    for n in record_names(&board) {
        eventually(WAIT, &format!("{n} live"), || async {
            matches!(rig.sensor(&n).await, Ok((v, true, true)) if v == 35.0).then_some(())
        })
        .await
        .with_context(|| rig.gate_log())?;
    }
    ensure!(
        rig.gate_log().matches("waiting for entity-manager").count() == 1,
        "said once: {}",
        rig.gate_log()
    );
    Ok(())
}
