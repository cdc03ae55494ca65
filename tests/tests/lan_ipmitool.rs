//! The "done when": the real `ipmitool -I lanplus` (Debian package), with `-C 17` and
//! `-C 3`, against the real `acpigate ipmi-lan` on loopback, backed by the real ipmi-handlers
//! and acpi-state-daemon on a private bus with the simulated chassis and systemd. One ipmitool
//! process per batch (`exec FILE`).

mod lan_common;

use std::time::Duration;

use acpigate_sim::platform::{Chassis, Systemd};
use acpigate_sim::sensors::TempSensors;
use acpigate_tests::acpi_client::AcpiClient;
use acpigate_tests::harness::{
    Daemon, PrivateBus, eventually, spawn_acpi_state_daemon, spawn_ipmi_handlers,
};
use acpigate_tests::ipmi_client::IpmiCaller;
use anyhow::{Result, ensure};
use lan_common::*;
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::state::ChassisPowerState;

struct Rig {
    bus: PrivateBus,
    _systemd: Systemd,
    _chassis: Chassis,
    _sensors: TempSensors,
    _acpi: Daemon,
    _ipmi: Daemon,
    lan: Daemon,
    port: u16,
}

impl Rig {
    /// Chassis on, acpi-state-daemon (in firmware init, S2), ipmi-handlers with default
    /// channels (eth0 = LAN channel 1, session-based), one DIMM sensor, and the front end.
    async fn start(lan_extra: &str) -> Result<Self> {
        let bus = PrivateBus::start()?;
        let systemd = Systemd::start(&bus).await?;
        let chassis = Chassis::start(&bus, ChassisPowerState::On).await?;
        let sensors = TempSensors::start(&bus, "xyz.openbmc_project.HwmonTempSensor").await?;
        sensors.add("DIMM_A0", 31.0, 85.0).await?;
        let acpi = spawn_acpi_state_daemon(&bus)?;
        AcpiClient::new(bus.connect().await?)
            .wait_sys(AcpiState::S2D2)
            .await?;
        let ipmi = spawn_ipmi_handlers(&bus)?;
        // No fixed GUID: the front end must take the command server's.
        let (lan, port) = start_lan_guid(&bus, lan_extra, false)?;
        Ok(Rig {
            bus,
            _systemd: systemd,
            _chassis: chassis,
            _sensors: sensors,
            _acpi: acpi,
            _ipmi: ipmi,
            lan,
            port,
        })
    }

    async fn ipmitool(&self, t: Ipmitool, cmds: &[&str]) -> Result<std::process::Output> {
        t.exec_async(self.bus.dir().to_owned(), cmds).await
    }

    async fn ok(&self, t: Ipmitool, cmds: &[&str]) -> Result<String> {
        let o = self.ipmitool(t, cmds).await?;
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        ensure!(
            o.status.success(),
            "ipmitool {cmds:?}: {}\nstdout:\n{out}\nstderr:\n{}\nfront end:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            self.lan.log_text()
        );
        Ok(out)
    }
}

fn has(out: &str, what: &str) -> Result<()> {
    ensure!(out.contains(what), "`{what}` not in:\n{out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmitool_lanplus_reaches_the_suite_with_suites_17_and_3() -> Result<()> {
    let rig = Rig::start("").await?;
    let kcs_like = IpmiCaller::new(&rig.bus, None).await?;
    for (round, suite) in [17u8, 3].into_iter().enumerate() {
        let t = || Ipmitool::new(rig.port, ADMIN, ADMIN_PW, Some(suite));
        // Working state, then S2 again: two transitions for the SEL.
        let out = rig
            .ok(
                t(),
                &[
                    "mc info",
                    "raw 0x06 0x06 0x80 0x80",
                    "raw 0x06 0x06 0x82 0x82",
                    "raw 0x06 0x07",
                    "chassis status",
                    "power status",
                ],
            )
            .await?;
        has(&out, "IPMI Version")?;
        has(&out, " 02 02")?;
        has(&out, "System Power         : on")?;
        has(&out, "Chassis Power is on")?;
        // The transitions reach the SEL asynchronously (ipmi-handlers follows the ACPI
        // object's signals); wait for them before reading it over the LAN.
        let want = 2 * (round + 1);
        eventually(Duration::from_secs(10), "ACPI SEL records", || async {
            let recs = kcs_like.sel_records().await.ok()?;
            (recs.iter().filter(|r| r[10] == 0x22).count() >= want).then_some(())
        })
        .await?;
        let out = rig.ok(t(), &["sel info", "sel elist", "sdr elist"]).await?;
        // Shown with --nocapture: what an operator sees.
        eprintln!("ipmitool -C {suite}:\n{out}");
        has(&out, "SEL Information")?;
        has(&out, "System ACPI Power State")?;
        has(&out, "S0/G0: working")?;
        has(&out, "S2: sleeping")?;
        has(&out, "ACPI_STATUS")?;
        has(&out, "DIMM_A0")?;
    }
    let log = rig.lan.log_text();
    has(&log, "cipher suite 17")?;
    has(&log, "cipher suite 3")?;
    // The GUID in RAKP 2 is the system GUID the command server reports (as with netipmid
    // and ipmid): compare the captured RAKP 2 with `raw 0x06 0x37`.
    let relay = Relay::start(rig.port)?;
    let out = rig
        .ok(
            Ipmitool::new(relay.port, ADMIN, ADMIN_PW, Some(17)),
            &["raw 0x06 0x37"],
        )
        .await?;
    let rakp2 = relay
        .take()
        .into_iter()
        .filter(|(from_client, _)| !from_client)
        .find_map(|(_, d)| match ipmi_lan::wire::parse(&d) {
            Ok(ipmi_lan::wire::Packet::Rmcpp(p))
                if p.payload_type == ipmi_lan::wire::PAYLOAD_RAKP2 && p.payload.len() >= 40 =>
            {
                Some(p.payload[24..40].to_vec())
            }
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("no RAKP 2 captured"))?;
    let shown: Vec<u8> = out
        .split_whitespace()
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    ensure!(
        shown == rakp2,
        "Get System GUID {shown:02x?} vs RAKP 2 GUID {rakp2:02x?}"
    );
    ensure!(shown.iter().any(|&b| b != 0), "GUID is all zero");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_suite_0_and_lockout_against_the_real_server() -> Result<()> {
    let rig = Rig::start(LOCKOUT_3_FAILURES_3_S).await?;
    let get = ["raw 0x06 0x07"];
    let o = rig
        .ipmitool(
            Ipmitool::new(rig.port, ADMIN, "wrong-password", Some(17)),
            &get,
        )
        .await?;
    ensure!(!o.status.success(), "wrong password accepted");
    let o = rig
        .ipmitool(Ipmitool::new(rig.port, ADMIN, ADMIN_PW, Some(0)), &get)
        .await?;
    ensure!(!o.status.success(), "-C 0 accepted");
    has(
        &String::from_utf8_lossy(&o.stderr),
        "invalid authentication algorithm",
    )?;
    // Two more wrong passwords: three failures lock the name.
    for _ in 0..2 {
        let o = rig
            .ipmitool(
                Ipmitool::new(rig.port, ADMIN, "wrong-password", Some(3)),
                &get,
            )
            .await?;
        ensure!(!o.status.success());
    }
    let o = rig
        .ipmitool(Ipmitool::new(rig.port, ADMIN, ADMIN_PW, Some(17)), &get)
        .await?;
    ensure!(!o.status.success(), "locked name logged in");
    has(&rig.lan.log_text(), "lockout engaged")?;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let out = rig
        .ok(
            Ipmitool::new(rig.port, ADMIN, ADMIN_PW, Some(17)),
            &["raw 0x06 0x06 0x82 0x82", "raw 0x06 0x07"],
        )
        .await?;
    has(&out, " 02 02")?;
    Ok(())
}
