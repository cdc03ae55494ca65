//! `acpigate-cycle` against the real suite: acpigate's ipmi-lan, ipmi-handlers and
//! acpi-state-daemon on a private bus, the simulated chassis power service (Chassis Control
//! moves it), and a simulated host whose firmware reports S0 (as the BIOS does over KCS, here
//! written as ipmid writes it) a firmware-init time after acpi-state-daemon has seen power
//! come on. The tool runs in-process (its `run`), over real UDP and RMCP+.

mod lan_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use acpigate_cycle::cycle::{Action, FailKind, Milestone, Source};
use acpigate_cycle::run::{Options, Outcome, run};
use acpigate_sim::platform::{Chassis, Systemd};
use acpigate_tests::acpi_client::AcpiClient;
use acpigate_tests::harness::{Daemon, PrivateBus, spawn_acpi_state_daemon, spawn_ipmi_handlers};
use anyhow::{Result, ensure};
use ipmi_lan::console::Target;
use ipmi_lan::crypto::CipherSuite;
use lan_common::*;
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::acpigate::HostPhase;
use openbmc_vocab::state::ChassisPowerState;

/// The simulated firmware's time from power-on (S2) to S0.
const FIRMWARE: Duration = Duration::from_millis(300);

struct Rig {
    _bus: PrivateBus,
    _systemd: Systemd,
    _chassis: Chassis,
    _acpi: Daemon,
    _ipmi: Daemon,
    _lan: Daemon,
    port: u16,
    /// Boots the simulated host has made (S0 reported or, for a hung one, not).
    boots: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Rig {
    /// The suite with the host in S0; the host hangs in firmware init on boot `hang_on`.
    async fn start(hang_on: Option<u32>) -> Result<Self> {
        let bus = PrivateBus::start()?;
        let systemd = Systemd::start(&bus).await?;
        let chassis = Chassis::start(&bus, ChassisPowerState::On).await?;
        let acpi_daemon = spawn_acpi_state_daemon(&bus)?;
        let acpi = AcpiClient::new(bus.connect().await?);
        acpi.wait_sys(AcpiState::S2D2).await?;
        acpi.set_sys(AcpiState::S0G0D0).await?;
        let ipmi = spawn_ipmi_handlers(&bus)?;
        let (lan, port) = start_lan_guid(&bus, "", false)?;
        let (boots, stop) = (
            Arc::new(AtomicU32::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        // The host: each time acpi-state-daemon enters firmware init (power came on; a new
        // phase generation, so an instant off/on is not missed), the firmware reports S0
        // after FIRMWARE — except on the boot it hangs in.
        let (b, s) = (boots.clone(), stop.clone());
        tokio::spawn(async move {
            let mut handled = None;
            while !s.load(Ordering::SeqCst) {
                // Phase and generation are two reads: take them only when the generation did
                // not move between them, so one boot is never counted twice.
                let generation = acpi.generation().await.ok();
                let phase = acpi.phase().await.ok();
                let settled = generation.is_some() && acpi.generation().await.ok() == generation;
                if settled && phase == Some(HostPhase::FirmwareInit) && generation != handled {
                    handled = generation;
                    let n = b.fetch_add(1, Ordering::SeqCst) + 1;
                    if Some(n) != hang_on {
                        tokio::time::sleep(FIRMWARE).await;
                        let _ = acpi.set_sys(AcpiState::S0G0D0).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        Ok(Self {
            _bus: bus,
            _systemd: systemd,
            _chassis: chassis,
            _acpi: acpi_daemon,
            _ipmi: ipmi,
            _lan: lan,
            port,
            boots,
            stop,
        })
    }

    fn options(&self, cycles: usize, password: &str) -> Options {
        Options {
            target: Target {
                addr: std::net::SocketAddr::from(([127, 0, 0, 1], self.port)),
                user: ADMIN.as_bytes().to_vec(),
                password: password.as_bytes().to_vec(),
                suite: CipherSuite::Suite17,
                role: 0x14,
                timeout: Duration::from_millis(500),
                tries: 3,
            },
            cycles,
            action: Action::Cycle,
            s0_timeout: Duration::from_secs(3),
            expected: None,
            poll: Duration::from_millis(50),
            out: None,
            svg: None,
            fail_fast: false,
            tty: false,
        }
    }
}

/// Run the tool off the async runtime (it blocks); its log as text.
async fn run_tool(
    opts: Options,
) -> Result<(
    Result<(Outcome, Vec<acpigate_cycle::CycleResult>), acpigate_cycle::run::RunError>,
    String,
)> {
    Ok(tokio::task::spawn_blocking(move || {
        let mut log = Vec::new();
        let r = run(&opts, &mut log);
        (r, String::from_utf8_lossy(&log).into_owned())
    })
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cycles_pass_with_every_state_seen_in_order_and_in_the_simulated_times() -> Result<()>
{
    const CYCLES: usize = 8;
    let rig = Rig::start(None).await?;
    let dir = std::env::temp_dir().join(format!("acpigate-cycle-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut opts = rig.options(CYCLES, ADMIN_PW);
    opts.out = Some(dir.join("run.jsonl"));
    opts.svg = Some(dir.join("run.svg"));
    let (r, log) = run_tool(opts).await?;
    let (outcome, results) = r.map_err(|e| anyhow::anyhow!("{e}\n{log}"))?;
    ensure!(outcome == Outcome::AllPassed, "{log}");
    ensure!(
        results.len() == CYCLES && rig.boots.load(Ordering::SeqCst) as usize == CYCLES,
        "{log}"
    );
    for (i, r) in results.iter().enumerate() {
        let at = |m| r.entry(m).map(|e| e.after);
        let (s5, fw, s0) = (
            at(Milestone::S5),
            at(Milestone::FirmwareInit),
            at(Milestone::S0),
        );
        // S5 and firmware init follow each other within a poll here (an instant off/on), so
        // their order in the timeline is whichever source told first; both come before S0.
        ensure!(
            matches!((s5, fw, s0), (Some(a), Some(b), Some(c)) if a < c && b < c),
            "cycle {}: {:?}\n{log}",
            i + 1,
            r.timeline
        );
        // Firmware init lasts the simulated firmware's time, give or take a poll round at
        // each end (each is seen when a poll or a SEL read sees it).
        let fw_time = r.firmware_init_time().unwrap_or_default();
        ensure!(
            fw_time >= FIRMWARE / 2 && fw_time < FIRMWARE + Duration::from_secs(1),
            "cycle {}: firmware init {fw_time:?}\n{log}",
            i + 1
        );
        // The instant off/on of the simulated power cycle is too short for a poll: S5 is
        // known from the SEL record ipmi-handlers logs.
        ensure!(
            r.entry(Milestone::S5).is_some_and(|e| matches!(
                e.source,
                Source::Sel(_) | Source::AcpiPoll | Source::ChassisPower
            )),
            "{:?}",
            r.timeline
        );
    }
    let jsonl = std::fs::read_to_string(dir.join("run.jsonl"))?;
    ensure!(jsonl.lines().count() == CYCLES, "{jsonl}");
    for line in jsonl.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        ensure!(v["verdict"] == "pass", "{line}");
    }
    let svg = std::fs::read_to_string(dir.join("run.svg"))?;
    ensure!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{svg}");
    ensure!(log.contains(&format!("cycle {CYCLES}/{CYCLES}")), "{log}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_hangs_in_firmware_init_fails_exactly_that_cycle_with_its_timeline()
-> Result<()> {
    let rig = Rig::start(Some(2)).await?;
    let (r, log) = run_tool(rig.options(3, ADMIN_PW)).await?;
    let (outcome, results) = r.map_err(|e| anyhow::anyhow!("{e}\n{log}"))?;
    ensure!(
        outcome == Outcome::SomeFailed && results.len() == 3,
        "{log}"
    );
    ensure!(results[0].passed() && results[2].passed(), "{log}");
    ensure!(
        matches!(
            results[1].failure(),
            Some(FailKind::S0Timeout {
                last_seen: Milestone::FirmwareInit
            })
        ),
        "{:?}\n{log}",
        results[1]
    );
    ensure!(log.contains("cycle 2/3: FAILED"), "{log}");
    ensure!(
        log.contains("firmware-init"),
        "the failure's timeline: {log}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_once_and_an_absent_bmc_is_reported_silent() -> Result<()> {
    let rig = Rig::start(None).await?;
    let (r, log) = run_tool(rig.options(1, "guess")).await?;
    let e = r
        .err()
        .ok_or_else(|| anyhow::anyhow!("logged in with a wrong password: {log}"))?;
    ensure!(
        e.is_login_refusal() && e.to_string().contains("password"),
        "{e}"
    );
    ensure!(
        rig.boots.load(Ordering::SeqCst) == 0,
        "a refused run cycled the host"
    );

    let mut opts = rig.options(1, ADMIN_PW);
    opts.target.addr.set_port(free_udp_port()?);
    opts.target.tries = 2;
    opts.target.timeout = Duration::from_millis(200);
    let (r, _) = run_tool(opts).await?;
    let e = r
        .err()
        .ok_or_else(|| anyhow::anyhow!("a run without a BMC passed"))?;
    ensure!(
        !e.is_login_refusal() && e.to_string().contains("no answer"),
        "{e}"
    );
    Ok(())
}
