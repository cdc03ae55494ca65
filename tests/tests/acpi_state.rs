//! Bus tier: the real acpi-state-daemon on a real (private) dbus-daemon with simulated
//! platform services.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use acpigate_sim::platform::{Answer, Chassis, Host, HostFlavour, PostCodes, Systemd, epoch_ms};
use acpigate_sim::sel_logger::SelLogger;
use acpigate_tests::acpi_client::AcpiClient;
use acpigate_tests::harness::{
    ACPI_STATE_FILE, Daemon, PrivateBus, acpi_state_config, eventually, run_config_without_bus,
};
use anyhow::{Context, Result};
use openbmc_vocab::DbusEnum;
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::acpigate::HostPhase;
use openbmc_vocab::boot::ProgressStage;
use openbmc_vocab::state::{ChassisPowerState, HostState};

const S0: &str = "host-s0-state.target";
const S2: &str = "host-s2-state.target";
const S5: &str = "host-s5-state.target";
const WAIT: Duration = Duration::from_secs(10);

/// One bus, simulated systemd, a config, and (after `launch`) the daemon.
struct Rig {
    bus: PrivateBus,
    systemd: Systemd,
    acpi: AcpiClient,
    config: PathBuf,
    daemon: Option<Daemon>,
    /// A sel-logger kept for the rig's life, where a test has one.
    sel_logger: Option<SelLogger>,
}

impl Rig {
    async fn new() -> Result<Self> {
        Self::with_config("").await
    }

    async fn with_config(extra: &str) -> Result<Self> {
        Self::with_systemd(Answer::AtOnce, extra).await
    }

    /// A rig whose systemd answers `StartUnit` as `answer` says.
    async fn with_systemd(answer: Answer, extra: &str) -> Result<Self> {
        let bus = PrivateBus::start()?;
        let systemd = Systemd::start_answering(&bus, answer).await?;
        let config = acpi_state_config(&bus, "acpi.json", extra)?;
        Ok(Self {
            acpi: AcpiClient::new(bus.connect().await?),
            config,
            bus,
            systemd,
            daemon: None,
            sel_logger: None,
        })
    }

    /// A rig with the daemon launched and no platform service on the bus yet.
    async fn launched() -> Result<Self> {
        let mut rig = Self::new().await?;
        rig.launch()?;
        Ok(rig)
    }

    /// A rig with the chassis at `power` and the daemon launched and settled in `first`
    /// (the chassis is returned to be kept alive and driven).
    async fn launched_with_chassis(
        power: ChassisPowerState,
        first: AcpiState,
    ) -> Result<(Self, Chassis)> {
        let mut rig = Self::new().await?;
        let chassis = Chassis::start(&rig.bus, power).await?;
        rig.launch()?;
        rig.acpi.wait_sys(first).await?;
        Ok((rig, chassis))
    }

    /// A rig with the chassis and a `flavour` host both off, and the daemon launched and
    /// settled in S5.
    async fn launched_off_with_host(flavour: HostFlavour) -> Result<(Self, Chassis, Host)> {
        let mut rig = Self::new().await?;
        let chassis = Chassis::start(&rig.bus, ChassisPowerState::Off).await?;
        let host = Host::start(&rig.bus, flavour, HostState::Off).await?;
        rig.launch()?;
        rig.acpi.wait_sys(AcpiState::S5G2).await?;
        Ok((rig, chassis, host))
    }

    fn launch(&mut self) -> Result<()> {
        self.daemon = Some(Daemon::spawn_with_config(
            &self.bus,
            "acpi-state-daemon",
            &self.config,
        )?);
        Ok(())
    }

    fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("launched")
    }

    /// Wait until the state file records `want` (it is written just before the change is
    /// announced, so a kill right after the announcement can still find the old one).
    async fn wait_saved(&self, want: AcpiState) -> Result<()> {
        let file = self.bus.dir().join(ACPI_STATE_FILE);
        eventually(Duration::from_secs(5), &format!("saved {want}"), || async {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            text.contains(&want.dbus_str()).then_some(())
        })
        .await
    }

    /// SIGKILL the daemon and start it again with the same configuration.
    fn crash_and_restart(&mut self) -> Result<()> {
        self.daemon
            .as_mut()
            .expect("launched")
            .restart_as_before(&self.bus)
    }

    /// Wait until systemd has been asked for exactly `want` (in order).
    async fn wait_started(&self, want: &[&str]) -> Result<()> {
        let got = eventually(
            Duration::from_secs(10),
            &format!("StartUnit {want:?}"),
            || async {
                let s = self.systemd.started();
                (s.len() >= want.len()).then_some(s)
            },
        )
        .await?;
        anyhow::ensure!(got == want, "StartUnit calls: {got:?}, wanted {want:?}");
        // Only one host state target may be active: Conflicts= applied.
        let active = self.systemd.active();
        let last = want.last().copied().context("no target")?;
        anyhow::ensure!(
            active.contains(last)
                && [S0, S2, S5].iter().filter(|t| active.contains(**t)).count() == 1,
            "active: {active:?}"
        );
        Ok(())
    }

    /// Give stray actions a moment to show, then check nothing else was started. A deliberate
    /// pause, not a wait: what it checks is that something does NOT happen, and there is no
    /// event to wait on for that (150 ms is many times what a start takes on the rig).
    async fn settle_and_expect_started(&self, want: &[&str]) -> Result<()> {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let got = self.systemd.started();
        anyhow::ensure!(got == want, "StartUnit calls: {got:?}, wanted {want:?}");
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_boot_s5_s2_s0_with_targets_and_boot_progress() -> Result<()> {
    let (mut rig, mut chassis, host) =
        Rig::launched_off_with_host(HostFlavour::StateManager).await?;
    assert_eq!(rig.acpi.phase().await?, HostPhase::Off);
    rig.wait_started(&[S5]).await?;

    // Power on: firmware init at once, before the host says S2.
    chassis.set_power(ChassisPowerState::On).await?;
    rig.acpi.wait_sys(AcpiState::S2D2).await?;
    assert_eq!(rig.acpi.phase().await?, HostPhase::FirmwareInit);
    assert_eq!(rig.acpi.reason().await?, "chassis power on: firmware init");
    rig.wait_started(&[S5, S2]).await?;

    // The host's own S2 (IPMI Set ACPI via ipmid) is a rewrite: no new target.
    rig.acpi.set_sys(AcpiState::S2D2).await?;
    rig.settle_and_expect_started(&[S5, S2]).await?;

    // OS hand-off.
    let gen_before = rig.acpi.generation().await?;
    rig.acpi.set_sys(AcpiState::S0G0D0).await?;
    rig.acpi.wait_phase(HostPhase::Working).await?;
    rig.wait_started(&[S5, S2, S0]).await?;
    assert_eq!(rig.acpi.generation().await?, gen_before + 1);
    let (boots, init_us, to_s0_us, windows) = rig.acpi.timeline().await?;
    assert_eq!((boots, windows), (1, 1));
    assert!(init_us > 0 && to_s0_us >= init_us, "{init_us} {to_s0_us}");

    let writes = eventually(Duration::from_secs(5), "BootProgress writes", || async {
        let w = host.boot_progress_writes();
        (w.len() >= 3).then_some(w)
    })
    .await?;
    assert_eq!(
        writes,
        [
            ProgressStage::Unspecified,
            ProgressStage::PrimaryProcInit,
            ProgressStage::OsRunning
        ]
    );
    // The boot summary line for the fleet.
    let log = rig.daemon().log_text();
    assert!(log.contains("host reached S0: firmware init"), "{log}");
    assert!(log.contains("gate_windows=1"), "{log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abrupt_power_loss_in_s0_derives_s5() -> Result<()> {
    // On at start with no saved state: assume firmware init (gate closed).
    let (rig, mut chassis) =
        Rig::launched_with_chassis(ChassisPowerState::On, AcpiState::S2D2).await?;
    rig.acpi.set_sys(AcpiState::S0G0D0).await?;
    rig.acpi.wait_sys(AcpiState::S0G0D0).await?;
    // S0's target is started before the power goes (a target still waiting to be sent when
    // a newer transition comes is replaced by it: see the slow-neighbour tests).
    rig.wait_started(&[S2, S0]).await?;
    chassis.set_power(ChassisPowerState::Off).await?;
    rig.acpi.wait_sys(AcpiState::S5G2).await?;
    assert_eq!(rig.acpi.reason().await?, "chassis power off");
    rig.wait_started(&[S2, S0, S5]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_reset_in_s0_via_post_complete() -> Result<()> {
    let (mut rig, mut chassis, host) =
        Rig::launched_off_with_host(HostFlavour::X86PowerControl).await?;
    chassis.set_power(ChassisPowerState::On).await?;
    host.set_state(HostState::Running).await?;
    rig.acpi.wait_sys(AcpiState::S2D2).await?;
    // POST complete stands in for a firmware that never sends S0.
    host.set_post_complete(true).await?;
    rig.acpi.wait_sys(AcpiState::S0G0D0).await?;
    assert_eq!(rig.acpi.reason().await?, "POST complete");
    // Each target reaches systemd before the next transition (a start still waiting to be
    // sent is replaced by a newer one).
    rig.wait_started(&[S5, S2, S0]).await?;
    // Warm reset: POST_COMPLETE drops while power stays on.
    host.set_post_complete(false).await?;
    rig.acpi.wait_sys(AcpiState::S2D2).await?;
    assert_eq!(
        rig.acpi.reason().await?,
        "POST complete deasserted while on: warm reset"
    );
    rig.wait_started(&[S5, S2, S0, S2]).await?;
    host.set_post_complete(true).await?;
    rig.acpi.wait_sys(AcpiState::S0G0D0).await?;
    rig.wait_started(&[S5, S2, S0, S2, S0]).await?;
    let (boots, _, _, windows) = rig.acpi.timeline().await?;
    assert_eq!((boots, windows), (2, 1));
    // x86-power-control has no Boot.Progress: one clear warning, not one per boot.
    let log = rig.daemon().log_text();
    assert_eq!(
        log.matches("does not implement xyz.openbmc_project.State.Boot.Progress")
            .count(),
        1,
        "{log}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_reset_in_s0_via_post_codes_without_post_complete() -> Result<()> {
    let mut rig = Rig::new().await?;
    let _chassis = Chassis::start(&rig.bus, ChassisPowerState::On).await?;
    let postd = PostCodes::start(&rig.bus).await?;
    rig.launch()?;
    rig.acpi.wait_sys(AcpiState::S2D2).await?;
    rig.acpi.set_sys(AcpiState::S0G0D0).await?;
    rig.acpi.wait_sys(AcpiState::S0G0D0).await?;
    rig.wait_started(&[S2, S0]).await?;
    postd.post(0x19).await?;
    rig.acpi.wait_sys(AcpiState::S2D2).await?;
    assert_eq!(
        rig.acpi.reason().await?,
        "POST code while working: warm reset"
    );
    rig.wait_started(&[S2, S0, S2]).await?;
    // The debug line for the input is written after its actions, not ahead of them.
    let log = rig.daemon().log_text();
    let at = |needle: &str| {
        log.find(needle)
            .with_context(|| format!("no `{needle}` in the log:\n{log}"))
    };
    let (change, input) = (
        at("ACPI state S0_G0_D0 -> S2_D2")?,
        at("input: PostCode(25) (carried out)")?,
    );
    anyhow::ensure!(change < input, "input logged before its actions:\n{log}");
    Ok(())
}

/// postd announces a POST code and leaves the bus at once: the code still means a warm reset.
/// Taken after the departure (which makes the next read of a POST code a mere baseline), the
/// code would instead become that baseline and the reset would be missed, leaving the gate
/// open through the firmware's memory scan. Repeated, because the order only goes wrong when
/// both signals are waiting at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_code_announced_as_postd_leaves_still_means_a_reset() -> Result<()> {
    const ROUNDS: usize = 8;
    let mut rig = Rig::new().await?;
    let _chassis = Chassis::start(&rig.bus, ChassisPowerState::On).await?;
    rig.launch()?;
    rig.acpi.wait_sys(AcpiState::S2D2).await?;
    for round in 1..=ROUNDS {
        let postd = PostCodes::start(&rig.bus).await?;
        // The daemon reads the code on postd's arrival (the baseline): only then is a new
        // code news.
        eventually(WAIT, "postd's code read", || async {
            (postd.reads() > 0).then_some(())
        })
        .await?;
        rig.acpi.set_sys(AcpiState::S0G0D0).await?;
        rig.acpi.wait_sys(AcpiState::S0G0D0).await?;
        postd.post_and_leave(0x19).await?;
        rig.acpi
            .wait_sys(AcpiState::S2D2)
            .await
            .with_context(|| format!("round {round}: the POST code was not taken as a reset"))?;
        assert_eq!(
            rig.acpi.reason().await?,
            "POST code while working: warm reset"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmi_style_writes_of_every_state() -> Result<()> {
    let (rig, _chassis) =
        Rig::launched_with_chassis(ChassisPowerState::On, AcpiState::S2D2).await?;
    for &s in AcpiState::ALL {
        rig.acpi
            .set_sys(s)
            .await
            .with_context(|| format!("set {s}"))?;
        assert_eq!(rig.acpi.sys().await?, s);
        assert_eq!(rig.acpi.phase().await?, HostPhase::for_state(s), "{s}");
        rig.acpi.set_dev(s).await?;
        assert_eq!(rig.acpi.dev().await?, s);
    }
    // Targets: one per change of target, never for a state that maps to the same target.
    let started = rig.systemd.started();
    assert!(started.windows(2).all(|w| w[0] != w[1]), "{started:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_writes_are_refused_and_change_nothing() -> Result<()> {
    let (mut rig, _chassis) =
        Rig::launched_with_chassis(ChassisPowerState::Off, AcpiState::S5G2).await?;
    let before = (rig.acpi.sys().await?, rig.acpi.dev().await?);

    // Not an enum value; a bare value; the wrong type.
    for bad in [
        zbus::Variant::from("xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI.S9"),
        zbus::Variant::from("S0_G0_D0"),
        zbus::Variant::from(5u32),
    ] {
        let err = rig
            .acpi
            .set_raw("SysACPIStatus", bad)
            .await
            .expect_err("bad write accepted");
        assert!(
            err.to_string().contains("InvalidArgs") || err.to_string().contains("Invalid"),
            "{err}"
        );
    }
    // A running state while power is off.
    let err = rig
        .acpi
        .set_sys(AcpiState::S0G0D0)
        .await
        .expect_err("S0 with power off accepted");
    assert!(
        err.to_string()
            .contains("xyz.openbmc_project.Common.Error.NotAllowed"),
        "{err}"
    );
    assert_eq!((rig.acpi.sys().await?, rig.acpi.dev().await?), before);
    assert!(rig.daemon().running());
    rig.settle_and_expect_started(&[S5]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_boot_restores_agreeing_state_and_rejects_stale_state() -> Result<()> {
    let (mut rig, mut chassis) =
        Rig::launched_with_chassis(ChassisPowerState::Off, AcpiState::S5G2).await?;
    chassis.set_power(ChassisPowerState::On).await?;
    rig.acpi.wait_sys(AcpiState::S2D2).await?;
    rig.acpi.set_sys(AcpiState::S0G0D0).await?;
    rig.acpi.wait_sys(AcpiState::S0G0D0).await?;
    rig.wait_saved(AcpiState::S0G0D0).await?;

    // Killed in S0, power unchanged: S0 again, from the saved state.
    rig.crash_and_restart()?;
    // The name appears (and READY comes) only with the state already derived: no Unknown for
    // followers such as the SEL to record.
    assert_eq!(rig.acpi.sys().await?, AcpiState::S0G0D0);
    assert_eq!(
        rig.acpi.reason().await?,
        "restored saved state (chassis power agrees)"
    );

    // Killed in S0; power cycled while it was down: the saved S0 is stale.
    rig.daemon().kill();
    chassis.set_power(ChassisPowerState::Off).await?;
    // The chassis stamps its changes in ms, the saved state is in µs: power must come back on
    // in a later millisecond than the save, or the stamp cannot show it changed since.
    let file = rig.bus.dir().join(ACPI_STATE_FILE);
    let saved_usec =
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&file)?)?["since_usec"]
            .as_u64()
            .context("since_usec in the saved state")?;
    eventually(WAIT, "a millisecond after the save", || async {
        (epoch_ms() * 1000 > saved_usec).then_some(())
    })
    .await?;
    chassis.set_power(ChassisPowerState::On).await?;
    rig.crash_and_restart()?;
    rig.acpi.wait_sys(AcpiState::S2D2).await?;
    assert_eq!(
        rig.acpi.reason().await?,
        "chassis power on at start, state unknown: assuming firmware init"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_missing_at_start_and_appearing_later() -> Result<()> {
    let rig = Rig::launched().await?;
    // Nothing known: Unknown, gate closed, no target. The daemon takes its name only once
    // every input is followed and what is there has been fed to the core, so its first answer
    // is its settled view.
    let sys = eventually(WAIT, "the daemon answering", || async {
        rig.acpi.sys().await.ok()
    })
    .await?;
    assert_eq!(sys, AcpiState::Unknown);
    assert_eq!(rig.acpi.phase().await?, HostPhase::Unknown);
    assert!(rig.systemd.started().is_empty());

    let mut chassis = Chassis::start(&rig.bus, ChassisPowerState::On).await?;
    rig.acpi.wait_sys(AcpiState::S2D2).await?;
    // The service vanishes and comes back with power off meanwhile.
    chassis.vanish().await;
    chassis.set_power(ChassisPowerState::Off).await?;
    chassis.appear(&rig.bus).await?;
    rig.acpi.wait_sys(AcpiState::S5G2).await?;
    rig.wait_started(&[S2, S5]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_state_stands_in_when_there_is_no_chassis() -> Result<()> {
    let mut rig = Rig::new().await?;
    let host = Host::start(&rig.bus, HostFlavour::StateManager, HostState::Off).await?;
    rig.launch()?;
    rig.acpi.wait_sys(AcpiState::S5G2).await?;
    host.set_state(HostState::Running).await?;
    rig.acpi.wait_sys(AcpiState::S2D2).await?;
    host.set_state(HostState::Off).await?;
    rig.acpi.wait_sys(AcpiState::S5G2).await?;
    rig.wait_started(&[S5, S2, S5]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_upstream_names_on_the_bus() -> Result<()> {
    let rig = Rig::launched().await?;
    let xml: String = rig
        .acpi
        .connection()
        .call_method(
            Some("xyz.openbmc_project.Control.Power.ACPIPowerState"),
            "/xyz/openbmc_project/control/host0/acpi_power_state",
            Some("org.freedesktop.DBus.Introspectable"),
            "Introspect",
            &(),
        )
        .await?
        .body()
        .deserialize()?;
    for needle in [
        "<interface name=\"xyz.openbmc_project.Control.Power.ACPIPowerState\">",
        "<property name=\"SysACPIStatus\" type=\"s\" access=\"readwrite\"/>",
        "<property name=\"DevACPIStatus\" type=\"s\" access=\"readwrite\"/>",
        "<interface name=\"org.acpigate.HostPhase\">",
    ] {
        assert!(xml.contains(needle), "missing {needle} in\n{xml}");
    }
    // Defaults as upstream: Unknown.
    assert_eq!(
        rig.acpi.sys().await?.dbus_str(),
        "xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI.Unknown"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_cleanly() -> Result<()> {
    let mut rig = Rig::launched().await?;
    let status = rig.daemon().terminate()?;
    assert!(status.success(), "{status}");
    assert!(rig.daemon().log_text().contains("stopping (SIGTERM)"));
    Ok(())
}

#[test]
fn bad_config_stops_the_daemon_with_file_line_and_reason() -> Result<()> {
    let (cfg, out) = run_config_without_bus(
        "acpi-state-daemon",
        "{\n  \"boot_progress\": {\n    \"firmware_init_stage\": \"Warp\"\n  }\n}\n",
    )?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:3:33: `Warp` is not a BootProgress stage",
            cfg.display()
        )),
        "{err}"
    );
    Ok(())
}

/// The OperatingSystemState writer beside the POST_COMPLETE input would feed itself: refused
/// before the bus is touched, at the end of the object that holds both.
#[test]
fn os_status_writer_with_post_complete_input_is_refused_at_start() -> Result<()> {
    let (cfg, out) =
        run_config_without_bus("acpi-state-daemon", "{\n  \"write_os_status\": true\n}\n")?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:3:1: \"write_os_status\": true needs \"post_complete_means_working\": false",
            cfg.display()
        )),
        "{err}"
    );
    Ok(())
}

/// What an operator types: `busctl` shows the upstream names and refuses a bad value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busctl_shows_upstream_names_and_refuses_bad_values() -> Result<()> {
    let (mut rig, _chassis) =
        Rig::launched_with_chassis(ChassisPowerState::On, AcpiState::S2D2).await?;
    let address = format!("--address={}", rig.bus.address());
    let busctl = |args: &[&str]| {
        std::process::Command::new("busctl")
            .arg(&address)
            .args(args)
            .output()
    };
    let obj = [
        "xyz.openbmc_project.Control.Power.ACPIPowerState",
        "/xyz/openbmc_project/control/host0/acpi_power_state",
    ];
    let out = busctl(&["introspect", obj[0], obj[1]])?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for needle in [
        ".SysACPIStatus",
        ".DevACPIStatus",
        "\"xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI.S2_D2\"",
        "org.acpigate.HostPhase",
        "\"org.acpigate.HostPhase.Phase.FirmwareInit\"",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    let iface = "xyz.openbmc_project.Control.Power.ACPIPowerState";
    for bad in [
        vec!["s", "S0_G0_D0"],
        vec![
            "s",
            "xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI.Bogus",
        ],
        vec!["u", "0"],
    ] {
        let mut args = vec!["set-property", obj[0], obj[1], iface, "SysACPIStatus"];
        args.extend(bad.iter().copied());
        let out = busctl(&args)?;
        assert!(!out.status.success(), "busctl accepted {bad:?}");
        assert!(!out.stderr.is_empty(), "no error text for {bad:?}");
    }
    assert!(rig.daemon().running());
    assert_eq!(rig.acpi.sys().await?, AcpiState::S2D2);
    let ok = busctl(&[
        "set-property",
        obj[0],
        obj[1],
        iface,
        "SysACPIStatus",
        "s",
        "xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI.S0_G0_D0",
    ])?;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    rig.acpi.wait_sys(AcpiState::S0G0D0).await?;
    Ok(())
}

/// A phase change is one PropertiesChanged carrying the phase with its reason, time and
/// generation, so consumers never see a new phase with an old reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_change_is_one_signal_with_all_four_properties() -> Result<()> {
    use futures_util::StreamExt;
    let (rig, mut chassis) =
        Rig::launched_with_chassis(ChassisPowerState::Off, AcpiState::S5G2).await?;
    let conn = rig.bus.connect().await?;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .path("/xyz/openbmc_project/control/host0/acpi_power_state")
        .interface("org.freedesktop.DBus.Properties")
        .member("PropertiesChanged")
        .arg(0, "org.acpigate.HostPhase")
        .build()?;
    let mut stream = zbus::MessageStream::for_match_rule(rule, &conn, None).await?;
    chassis.set_power(ChassisPowerState::On).await?;
    let msg = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await?
        .context("stream ended")??;
    let (_, changed, _): (
        String,
        std::collections::HashMap<String, zbus::OwnedVariant>,
        Vec<String>,
    ) = msg.body().deserialize()?;
    let mut keys: Vec<&str> = changed.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["Generation", "Phase", "Reason", "Since"]);
    let phase: String = changed["Phase"].try_clone()?.try_into()?;
    assert_eq!(phase, "org.acpigate.HostPhase.Phase.FirmwareInit");
    Ok(())
}

/// PropertiesChanged signals of the ACPIPowerState interface, each as its sorted
/// (property, value) pairs.
struct AcpiSignals(zbus::MessageStream);

impl AcpiSignals {
    async fn subscribe(bus: &PrivateBus) -> Result<Self> {
        let conn = bus.connect().await?;
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .path("/xyz/openbmc_project/control/host0/acpi_power_state")
            .interface("org.freedesktop.DBus.Properties")
            .member("PropertiesChanged")
            .arg(0, "xyz.openbmc_project.Control.Power.ACPIPowerState")
            .build()?;
        Ok(Self(
            zbus::MessageStream::for_match_rule(rule, &conn, None).await?,
        ))
    }

    /// Every signal up to and including the first that carries `prop` = `want`.
    async fn until(&mut self, prop: &str, want: AcpiState) -> Result<Vec<Vec<(String, String)>>> {
        use futures_util::StreamExt;
        let mut seen = Vec::new();
        loop {
            let msg = tokio::time::timeout(WAIT, self.0.next())
                .await
                .with_context(|| format!("{prop} = {want} never announced; saw {seen:?}"))?
                .context("signal stream ended")??;
            let (_, changed, _): (
                String,
                std::collections::HashMap<String, zbus::OwnedVariant>,
                Vec<String>,
            ) = msg.body().deserialize()?;
            let mut pairs = Vec::new();
            for (k, v) in changed {
                let v: String = v.try_clone()?.try_into()?;
                pairs.push((k, v));
            }
            pairs.sort();
            let done = pairs
                .iter()
                .any(|(k, v)| k == prop && *v == want.dbus_str());
            seen.push(pairs);
            if done {
                return Ok(seen);
            }
        }
    }
}

/// One write of SysACPIStatus is one PropertiesChanged carrying it (the executor's: the object
/// does not announce its own writes), and a refused write — a value that is not a state, or a
/// running state while power is off — is none. Each check ends on a later change that takes
/// the same road, so a second signal for the write, had there been one, is already in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_one_properties_changed_and_a_refused_write_none() -> Result<()> {
    let (rig, mut chassis) =
        Rig::launched_with_chassis(ChassisPowerState::On, AcpiState::S2D2).await?;
    let mut signals = AcpiSignals::subscribe(&rig.bus).await?;
    let one = |prop: &str, s: AcpiState| vec![(prop.to_owned(), s.dbus_str())];

    rig.acpi.set_sys(AcpiState::S0G0D0).await?;
    rig.acpi
        .set_raw(
            "SysACPIStatus",
            zbus::Variant::from("xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI.S9"),
        )
        .await
        .expect_err("a value that is not a state was accepted");
    chassis.set_power(ChassisPowerState::Off).await?;
    let seen = signals.until("SysACPIStatus", AcpiState::S5G2).await?;
    assert_eq!(
        seen,
        [
            one("SysACPIStatus", AcpiState::S0G0D0),
            one("SysACPIStatus", AcpiState::S5G2)
        ]
    );

    rig.acpi
        .set_sys(AcpiState::S0G0D0)
        .await
        .expect_err("S0 with power off accepted");
    rig.acpi.set_dev(AcpiState::S3D3).await?;
    let seen = signals.until("DevACPIStatus", AcpiState::S3D3).await?;
    assert_eq!(seen, [one("DevACPIStatus", AcpiState::S3D3)]);
    Ok(())
}

// ---------------------------------------------------------------- slow neighbours

/// The bound a closing announcement must meet whatever a neighbour is doing: far below the
/// call deadline (3 s by default), so waiting on any neighbour would show, and far above what
/// a healthy rig takes on a loaded 2-core builder (a few ms).
const ANNOUNCE_BOUND: Duration = Duration::from_millis(500);

/// What a neighbour does wrong in [`boot_reset_and_power_loss_beside`].
#[derive(Debug, Clone, Copy)]
enum Neighbour {
    Healthy,
    /// systemd answers each StartUnit only after this long.
    SystemdBusy(Duration),
    /// systemd never answers.
    SystemdHung,
    /// the host state manager never answers a BootProgress write.
    BootProgressHung,
    /// the state directory's temp file is a FIFO nobody reads: opening it blocks forever,
    /// as a write to a stuck flash does.
    StateFileHung,
    /// SEL records through sel-logger configured, and no sel-logger on the bus.
    SelLoggerAbsent,
    /// SEL records through sel-logger configured, and a sel-logger that never answers.
    SelLoggerHung,
    /// The OperatingSystemState writer configured on x86-power-control's host object.
    OsStatusOwnedByPowerControl,
}

/// HostPhase PropertiesChanged signals, as they arrive.
struct PhaseSignals(zbus::MessageStream);

impl PhaseSignals {
    async fn subscribe(bus: &PrivateBus) -> Result<Self> {
        let conn = bus.connect().await?;
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .path("/xyz/openbmc_project/control/host0/acpi_power_state")
            .interface("org.freedesktop.DBus.Properties")
            .member("PropertiesChanged")
            .arg(0, "org.acpigate.HostPhase")
            .build()?;
        Ok(Self(
            zbus::MessageStream::for_match_rule(rule, &conn, None).await?,
        ))
    }

    /// Wait for the phase to be announced as `want`; the time it took from `since`.
    async fn announced(&mut self, want: HostPhase, since: Instant) -> Result<Duration> {
        use futures_util::StreamExt;
        loop {
            let msg = tokio::time::timeout(WAIT, self.0.next())
                .await
                .with_context(|| format!("Phase {want} never announced"))?
                .context("signal stream ended")??;
            let (_, changed, _): (
                String,
                std::collections::HashMap<String, zbus::OwnedVariant>,
                Vec<String>,
            ) = msg.body().deserialize()?;
            let Some(v) = changed.get("Phase") else {
                continue;
            };
            let phase: String = v.try_clone()?.try_into()?;
            if phase == want.dbus_str() {
                return Ok(since.elapsed());
            }
        }
    }
}

/// Cold boot, OS hand-off, warm reset and abrupt power loss beside `neighbour`. Returns the
/// time from each closing input (power on, POST code while working, power off) to its phase
/// announcement, and the rig for the caller's checks on targets. Every target start must
/// reach systemd before the next step (so each transition's target is requested, none is
/// replaced by a later one).
async fn boot_reset_and_power_loss_beside(
    neighbour: Neighbour,
) -> Result<(Rig, Vec<(&'static str, Duration)>)> {
    let answer = match neighbour {
        Neighbour::SystemdBusy(d) => Answer::After(d),
        Neighbour::SystemdHung => Answer::Never,
        _ => Answer::AtOnce,
    };
    let extra = match neighbour {
        Neighbour::SelLoggerAbsent | Neighbour::SelLoggerHung => r#", "sel_logger_records": true"#,
        Neighbour::OsStatusOwnedByPowerControl => {
            r#", "write_os_status": true, "post_complete_means_working": false"#
        }
        _ => "",
    };
    let mut rig = Rig::with_systemd(answer, extra).await?;
    if let Neighbour::SelLoggerHung = neighbour {
        rig.sel_logger = Some(SelLogger::start_hung(&rig.bus).await?);
    }
    if let Neighbour::StateFileHung = neighbour {
        let fifo = rig.bus.dir().join(format!(".{ACPI_STATE_FILE}.tmp"));
        let st = std::process::Command::new("mkfifo").arg(&fifo).status()?;
        anyhow::ensure!(st.success(), "mkfifo {}", fifo.display());
    }
    let flavour = match neighbour {
        Neighbour::BootProgressHung => HostFlavour::StateManagerHung,
        Neighbour::OsStatusOwnedByPowerControl => HostFlavour::X86PowerControl,
        _ => HostFlavour::StateManager,
    };
    let mut chassis = Chassis::start(&rig.bus, ChassisPowerState::Off).await?;
    let _host = Host::start(&rig.bus, flavour, HostState::Off).await?;
    let postd = PostCodes::start(&rig.bus).await?;
    let mut signals = PhaseSignals::subscribe(&rig.bus).await?;
    rig.launch()?;
    rig.acpi.wait_sys(AcpiState::S5G2).await?;
    rig.wait_requested(1).await?;
    eventually(WAIT, "postd's code read", || async {
        (postd.reads() > 0).then_some(())
    })
    .await?;
    let mut took = Vec::new();

    let t = Instant::now();
    chassis.set_power(ChassisPowerState::On).await?;
    took.push((
        "power on",
        signals.announced(HostPhase::FirmwareInit, t).await?,
    ));
    rig.wait_requested(2).await?;

    rig.acpi.set_sys(AcpiState::S0G0D0).await?;
    signals
        .announced(HostPhase::Working, Instant::now())
        .await?;
    rig.wait_requested(3).await?;

    let t = Instant::now();
    postd.post(0x19).await?;
    took.push((
        "warm reset",
        signals.announced(HostPhase::FirmwareInit, t).await?,
    ));
    rig.wait_requested(4).await?;

    let t = Instant::now();
    chassis.set_power(ChassisPowerState::Off).await?;
    took.push(("power loss", signals.announced(HostPhase::Off, t).await?));
    rig.wait_requested(5).await?;
    Ok((rig, took))
}

impl Rig {
    /// Wait until systemd has received `n` StartUnit calls (answered or not).
    async fn wait_requested(&self, n: usize) -> Result<Vec<String>> {
        eventually(WAIT, &format!("{n} StartUnit calls"), || async {
            let r = self.systemd.requested();
            (r.len() >= n).then_some(r)
        })
        .await
    }
}

fn assert_announced_within_bound(neighbour: Neighbour, took: &[(&str, Duration)]) {
    for (what, d) in took {
        assert!(
            *d < ANNOUNCE_BOUND,
            "{neighbour:?}: {what} announced after {d:?} (bound {ANNOUNCE_BOUND:?}); all: {took:?}"
        );
    }
}

const EVERY_TRANSITION: [&str; 5] = [S5, S2, S0, S2, S5];

/// The baseline the stalls are compared with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_announcements_with_healthy_neighbours() -> Result<()> {
    let (rig, took) = boot_reset_and_power_loss_beside(Neighbour::Healthy).await?;
    assert_announced_within_bound(Neighbour::Healthy, &took);
    rig.wait_started(&EVERY_TRANSITION).await?;
    Ok(())
}

/// systemd answering each StartUnit only after 2 s (a busy BMC core): the gate's
/// announcements are not held up, and once systemd catches up every target has started once,
/// in the order of the transitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_systemd_never_delays_the_phase() -> Result<()> {
    let n = Neighbour::SystemdBusy(Duration::from_secs(2));
    let (rig, took) = boot_reset_and_power_loss_beside(n).await?;
    assert_announced_within_bound(n, &took);
    let started = eventually(Duration::from_secs(20), "systemd catching up", || async {
        let s = rig.systemd.started();
        (s.len() >= EVERY_TRANSITION.len()).then_some(s)
    })
    .await?;
    assert_eq!(started, EVERY_TRANSITION, "started in transition order");
    rig.settle_and_expect_started(&EVERY_TRANSITION).await?;
    assert_eq!(rig.systemd.requested(), EVERY_TRANSITION, "none sent twice");
    Ok(())
}

/// systemd that never answers: announcements on time; each target asked for once (a call
/// that timed out is not sent again), and the timeout is logged with what it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_systemd_never_delays_the_phase() -> Result<()> {
    let (rig, took) = boot_reset_and_power_loss_beside(Neighbour::SystemdHung).await?;
    assert_announced_within_bound(Neighbour::SystemdHung, &took);
    let daemon = rig.daemon.as_ref().context("launched")?;
    eventually(WAIT, "the S0 start's timeout logged", || async {
        daemon
            .log_text()
            .contains("StartUnit(host-s0-state.target) not answered within 3000 ms")
            .then_some(())
    })
    .await?;
    // A deliberate pause before a negative check: a call sent twice would show within it
    // (there is no event to wait on for a call that must not come).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.systemd.requested(), EVERY_TRANSITION, "none sent twice");
    assert!(rig.systemd.started().is_empty());
    Ok(())
}

/// A host state manager that never answers a BootProgress write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_boot_progress_host_never_delays_the_phase() -> Result<()> {
    let (rig, took) = boot_reset_and_power_loss_beside(Neighbour::BootProgressHung).await?;
    assert_announced_within_bound(Neighbour::BootProgressHung, &took);
    rig.wait_started(&EVERY_TRANSITION).await?;
    Ok(())
}

/// A state file that can never be written (its temp file blocks on open, like a stuck flash):
/// announcements on time, targets started, and the slow save is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_state_file_never_delays_the_phase() -> Result<()> {
    let (mut rig, took) = boot_reset_and_power_loss_beside(Neighbour::StateFileHung).await?;
    assert_announced_within_bound(Neighbour::StateFileHung, &took);
    rig.wait_started(&EVERY_TRANSITION).await?;
    // The save stuck since the first transition is reported once it passes the deadline.
    let daemon = rig.daemon.as_ref().context("launched")?;
    eventually(WAIT, "the stuck save logged", || async {
        daemon
            .log_text()
            .contains("(slow or stuck storage)")
            .then_some(())
    })
    .await?;
    assert!(rig.daemon().running());
    Ok(())
}

/// A sel-logger that takes every call and answers none: the announcements are on time, the
/// targets start, and the first record's missed deadline is logged, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_sel_logger_never_delays_the_phase_and_is_said_once() -> Result<()> {
    let (rig, took) = boot_reset_and_power_loss_beside(Neighbour::SelLoggerHung).await?;
    assert_announced_within_bound(Neighbour::SelLoggerHung, &took);
    rig.wait_started(&EVERY_TRANSITION).await?;
    let daemon = rig.daemon.as_ref().context("launched")?;
    let warning = "no answer within 3000 ms); transitions go on without SEL records";
    eventually(WAIT, "the hung sel-logger logged", || async {
        daemon.log_text().contains(warning).then_some(())
    })
    .await?;
    // A deliberate pause before a negative check: a second warning would need another
    // deadline to pass (there is no event to wait on for a line that must not come).
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        daemon
            .log_text()
            .matches("cannot add the SEL record")
            .count(),
        1,
        "{}",
        daemon.log_text()
    );
    Ok(())
}

/// No sel-logger on the bus while SEL records are configured: announcements on time, targets
/// started, and one warning for all the records that could not be added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_sel_logger_never_delays_the_phase_and_is_said_once() -> Result<()> {
    let (rig, took) = boot_reset_and_power_loss_beside(Neighbour::SelLoggerAbsent).await?;
    assert_announced_within_bound(Neighbour::SelLoggerAbsent, &took);
    rig.wait_started(&EVERY_TRANSITION).await?;
    let daemon = rig.daemon.as_ref().context("launched")?;
    let warning = "through xyz.openbmc_project.Logging.IPMI";
    eventually(WAIT, "the missing sel-logger logged", || async {
        daemon.log_text().contains(warning).then_some(())
    })
    .await?;
    assert_eq!(
        daemon.log_text().matches(warning).count(),
        1,
        "{}",
        daemon.log_text()
    );
    Ok(())
}

/// The OperatingSystemState writer on x86-power-control's host object (its property is
/// read-only, driven by POST_COMPLETE): announcements on time, the property left alone, and
/// one warning, after which the daemon stops trying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_os_status_writer_on_x86_power_control_says_so_once_and_stops() -> Result<()> {
    let n = Neighbour::OsStatusOwnedByPowerControl;
    let (rig, took) = boot_reset_and_power_loss_beside(n).await?;
    assert_announced_within_bound(n, &took);
    rig.wait_started(&EVERY_TRANSITION).await?;
    let daemon = rig.daemon.as_ref().context("launched")?;
    let warning = "is x86-power-control's";
    eventually(WAIT, "the give-up logged", || async {
        daemon.log_text().contains(warning).then_some(())
    })
    .await?;
    let log = daemon.log_text();
    assert_eq!(log.matches(warning).count(), 1, "{log}");
    assert!(!log.contains("cannot set OperatingSystemState"), "{log}");
    Ok(())
}

/// A StartUnit that systemd refuses is tried again until it succeeds (here: until the
/// systemd service appears on the bus), and a newer transition replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_target_start_is_retried_until_systemd_takes_it() -> Result<()> {
    let bus = PrivateBus::start()?;
    let config = acpi_state_config(&bus, "acpi.json", "")?;
    let _chassis = Chassis::start(&bus, ChassisPowerState::Off).await?;
    let mut daemon = Daemon::spawn_with_config(&bus, "acpi-state-daemon", &config)?;
    let acpi = AcpiClient::new(bus.connect().await?);
    acpi.wait_sys(AcpiState::S5G2).await?;
    // No systemd on the bus yet: the start fails (ServiceUnknown) and is retried.
    eventually(WAIT, "a retry announced", || async {
        daemon
            .log_text()
            .contains("cannot start host-s5-state.target")
            .then_some(())
    })
    .await?;
    let systemd = Systemd::start(&bus).await?;
    let got = eventually(WAIT, "the retried start", || async {
        let s = systemd.started();
        (!s.is_empty()).then_some(s)
    })
    .await?;
    assert_eq!(got, [S5]);
    assert!(daemon.running());
    Ok(())
}

/// `busctl call … GetManagedObjects` on the daemon's ObjectManager lists the ACPI object with
/// both its interfaces and their values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_managed_objects_lists_the_acpi_object() -> Result<()> {
    let (rig, _chassis) =
        Rig::launched_with_chassis(ChassisPowerState::Off, AcpiState::S5G2).await?;
    let out = std::process::Command::new("busctl")
        .args([
            "--address",
            rig.bus.address(),
            "--json=short",
            "call",
            "xyz.openbmc_project.Control.Power.ACPIPowerState",
            "/xyz/openbmc_project/control/host0",
            "org.freedesktop.DBus.ObjectManager",
            "GetManagedObjects",
        ])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "busctl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let obj = &v["data"][0]["/xyz/openbmc_project/control/host0/acpi_power_state"];
    assert_eq!(
        obj["xyz.openbmc_project.Control.Power.ACPIPowerState"]["SysACPIStatus"]["data"],
        "xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI.S5_G2",
        "{text}"
    );
    assert_eq!(
        obj["org.acpigate.HostPhase"]["Phase"]["data"], "org.acpigate.HostPhase.Phase.Off",
        "{text}"
    );
    Ok(())
}
