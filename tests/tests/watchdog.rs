//! The systemd watchdog on a bus with the standard system policy and the shipped policy files:
//! every applet pets from READY on, and never before.
//!
//! A BMC's system bus refuses any method call the policy does not open. The watchdog's bus
//! round trip once called the daemon's own unique name, which that policy refuses for a
//! connection that owns no name it opens (ipmi-lan): systemd then killed ipmi-lan every
//! `WatchdogSec`. The permissive bus of the other rigs cannot show that; this one can.

mod lan_common;

use std::time::Duration;

use acpigate_tests::harness::{self, Daemon, PrivateBus};
use anyhow::{Context, Result, bail};
use openbmc_vocab::names::error;

/// Half of it is the petting interval: 200 ms, so a couple of seconds show many pets.
const WATCHDOG_USEC: &str = "400000";
const WATCH_FOR: Duration = Duration::from_secs(2);

/// Start `applet` on `config` with a watchdog, watch its notices for [`WATCH_FOR`] and check:
/// READY=1 came first, then regular WATCHDOG=1, and the log has no "not petting".
fn pets_from_ready_on(bus: &PrivateBus, applet: &str, config: &std::path::Path) -> Result<()> {
    let cfg = config.to_string_lossy();
    let mut d = Daemon::spawn_env(
        bus,
        applet,
        &["--config", &cfg],
        &[("WATCHDOG_USEC", WATCHDOG_USEC)],
    )?;
    let notices = d.notices_after(WATCH_FOR);
    let ready = notices
        .iter()
        .position(|l| l == "READY=1")
        .context("no READY=1")?;
    let first_pet = notices.iter().position(|l| l == "WATCHDOG=1");
    let pets = notices.iter().filter(|l| *l == "WATCHDOG=1").count();
    if first_pet.is_some_and(|p| p < ready) {
        bail!("{applet} petted before READY=1: {notices:?}");
    }
    // 2 s at one pet per 200 ms is about 10; 5 leaves room for a slow machine.
    if pets < 5 {
        bail!(
            "{applet} petted {pets} time(s) in {WATCH_FOR:?} (WatchdogSec 400 ms): {notices:?}\n{}",
            d.log_tail(20)
        );
    }
    let log = d.log_text();
    if log.contains("not petting") {
        bail!("{applet} logged a watchdog failure:\n{}", d.log_tail(20));
    }
    Ok(())
}

/// The rig is as strict as a BMC's bus: a connection that owns no name cannot be called, not
/// even by itself (what the old round trip did).
#[tokio::test]
async fn the_system_policy_refuses_a_call_to_a_connection_without_a_name() -> Result<()> {
    let bus = PrivateBus::start_with_system_policy()?;
    let conn = bus.connect().await?;
    let me = conn.unique_name().context("unique name")?.to_owned();
    let refused = conn
        .call_method(
            Some(me),
            "/",
            Some("org.freedesktop.DBus.Peer"),
            "Ping",
            &(),
        )
        .await
        .err()
        .context("the strict bus let a call to a nameless connection through")?;
    match refused {
        zbus::Error::FDO(e) if matches!(*e, zbus::fdo::Error::AccessDenied(_)) => Ok(()),
        other => bail!("expected {}, got {other}", error::ACCESS_DENIED),
    }
}

#[test]
fn acpi_state_daemon_pets_from_ready_on() -> Result<()> {
    let bus = PrivateBus::start_with_system_policy()?;
    let config = harness::acpi_state_config(&bus, "acpi.json", "")?;
    pets_from_ready_on(&bus, "acpi-state-daemon", &config)
}

#[test]
fn ipmi_handlers_pets_from_ready_on() -> Result<()> {
    let bus = PrivateBus::start_with_system_policy()?;
    let config = harness::ipmi_handlers_config(&bus, "ipmi.json", "state", "")?;
    pets_from_ready_on(&bus, "ipmi-handlers", &config)
}

/// ipmi-lan owns only its channel name, which no policy opens for calls: the daemon the old
/// round trip left unpetted.
#[test]
fn ipmi_lan_pets_from_ready_on() -> Result<()> {
    let bus = PrivateBus::start_with_system_policy()?;
    let port = lan_common::free_udp_port()?;
    let config = lan_common::write_lan_config(&bus, port, "", true)?;
    pets_from_ready_on(&bus, "ipmi-lan", &config)
}

#[test]
fn sensor_gate_pets_from_ready_on() -> Result<()> {
    let bus = PrivateBus::start_with_system_policy()?;
    // The gate stays closed (no ACPI state on this bus), so the simulated SMBus socket is
    // never opened: it need not exist.
    let config = bus.write_config(
        "sensor-gate.json",
        &format!(
            r#"{{ "buses": [ {{ "name": "dimm", "backend": "sim:{}" }} ],
  "sensors": [ {{ "name": "DIMM_A0_Temp", "bus": "dimm", "type": "jc42", "address": 24 }} ] }}"#,
            bus.dir().join("smbus.sock").display()
        ),
    )?;
    pets_from_ready_on(&bus, "sensor-gate", &config)
}
