//! `cargo xtask demo`: the real daemons on a private bus with a simulated platform.
//!
//! Runs a few host power cycles — a cold boot, a warm reset, a clean shutdown, an abrupt
//! power loss — and prints what acpi-state-daemon derived at each step, which systemd target
//! it started and what Redfish would show as BootProgress. `--keep` leaves everything running
//! for exploration with `busctl`.

use std::time::{Duration, Instant};

use acpigate_tests::acpi_client::AcpiClient;
use acpigate_tests::harness::{Daemon, PrivateBus};
use acpigate_tests::platform::{Chassis, Host, HostFlavour, PostCodes, Systemd};
use anyhow::{Context, Result};
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::acpigate::HostPhase;
use openbmc_vocab::state::{ChassisPowerState, HostState};

struct Demo {
    t0: Instant,
    acpi: AcpiClient,
    systemd: Systemd,
    host: Host,
}

impl Demo {
    async fn show(&self, what: &str) -> Result<()> {
        // Let the daemon's actions land before we look.
        tokio::time::sleep(Duration::from_millis(60)).await;
        let sys = self.acpi.sys().await?;
        let phase = self.acpi.phase().await?;
        let targets: Vec<String> = self
            .systemd
            .active()
            .into_iter()
            .filter(|u| u.starts_with("host-"))
            .collect();
        let progress = self
            .host
            .boot_progress_writes()
            .last()
            .map_or("-".to_owned(), |p| p.to_string());
        let gate = if phase == HostPhase::Working {
            "open"
        } else {
            "CLOSED"
        };
        println!(
            "{:>7.3}s  {:<40} {:<9} {:<13} gate {:<6} {:<22} {}",
            self.t0.elapsed().as_secs_f64(),
            what,
            sys.to_string(),
            phase.to_string(),
            gate,
            targets.join(","),
            progress
        );
        Ok(())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let keep = std::env::args().any(|a| a == "--keep");
    let bus = PrivateBus::start()?;
    let systemd = Systemd::start(&bus).await?;
    let mut chassis = Chassis::start(&bus, ChassisPowerState::Off).await?;
    let host = Host::start(&bus, HostFlavour::StateManager, HostState::Off).await?;
    let postd = PostCodes::start(&bus).await?;
    let cfg = bus.dir().join("acpi.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{ "state_file": "{}",
  "boot_progress": {{ "post_codes": [ {{ "first": "0x10", "last": "0x2f", "stage": "MemoryInit" }},
                                      {{ "first": "0x60", "last": "0x7f", "stage": "PCIInit" }} ] }} }}"#,
            bus.dir().join("acpi-state.json").display()
        ),
    )?;
    let mut daemon = Daemon::spawn(
        &bus,
        "acpi-state-daemon",
        &["--config", &cfg.to_string_lossy()],
    )
    .context("starting acpi-state-daemon")?;
    let demo = Demo {
        t0: Instant::now(),
        acpi: AcpiClient::new(bus.connect().await?),
        systemd,
        host,
    };

    println!("acpigate demo: real acpi-state-daemon, private dbus-daemon, simulated platform\n");
    println!(
        "{:>8}  {:<40} {:<9} {:<13} {:<11} {:<22} BootProgress",
        "time", "event", "ACPI", "phase", "DIMM gate", "active target"
    );
    demo.show("BMC boots, host off").await?;

    println!("-- cold boot");
    chassis.set_power(ChassisPowerState::On).await?;
    demo.show("chassis power on (no word from host)").await?;
    postd.post(0x19).await?;
    demo.show("POST code 0x19 (memory init)").await?;
    demo.acpi.set_sys(AcpiState::S2D2).await?;
    demo.show("host sends S2 over IPMI (late)").await?;
    postd.post(0x62).await?;
    demo.show("POST code 0x62 (PCI)").await?;
    demo.acpi.set_sys(AcpiState::S0G0D0).await?;
    demo.show("host sends S0 at OS hand-off").await?;

    println!("-- warm reset (POST codes while working)");
    postd.post(0x01).await?;
    demo.show("POST code 0x01").await?;
    demo.acpi.set_sys(AcpiState::S0G0D0).await?;
    demo.show("host sends S0 again").await?;

    println!("-- clean shutdown");
    demo.acpi.set_sys(AcpiState::S5G2).await?;
    demo.show("host sends S5").await?;
    chassis.set_power(ChassisPowerState::Off).await?;
    demo.show("chassis power off").await?;

    println!("-- boot, then abrupt power loss");
    chassis.set_power(ChassisPowerState::On).await?;
    demo.acpi.set_sys(AcpiState::S0G0D0).await?;
    demo.show("power on, host reaches S0").await?;
    let (boots, init_us, to_s0_us, windows) = demo.acpi.timeline().await?;
    println!(
        "          last boot: firmware init {:.3} s, power-on to S0 {:.3} s, {windows} gate window(s); {boots} boot(s) so far",
        init_us as f64 / 1e6,
        to_s0_us as f64 / 1e6
    );
    chassis.set_power(ChassisPowerState::Off).await?;
    demo.show("power cut: no S5 from host").await?;

    println!("-- acpi-state-daemon killed (SIGKILL) and restarted while the host is off");
    daemon.kill();
    daemon.restart(&bus, &["--config", &cfg.to_string_lossy()])?;
    demo.show("restarted: state re-derived").await?;
    println!();
    println!(
        "StartUnit calls recorded by the simulated systemd: {}",
        demo.systemd.started().join(" → ")
    );

    if keep {
        println!(
            "\nkept running. In another shell:\n  export DBUS_SYSTEM_BUS_ADDRESS={}\n  busctl --system tree xyz.openbmc_project.Control.Power.ACPIPowerState\n  busctl --system introspect xyz.openbmc_project.Control.Power.ACPIPowerState /xyz/openbmc_project/control/host0/acpi_power_state\nCtrl-C to stop.",
            bus.address()
        );
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}
