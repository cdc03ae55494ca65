//! `cargo xtask demo`: see the bug happen and see it fixed.
//!
//! Starts the real acpi-state-daemon and sensor-gate on a private bus with the simulated
//! server (host firmware, shared DIMM SMBus, pid-control, systemd, chassis power), runs the
//! same boots twice — with the gate, and without it — and prints what happened: DIMMs lost,
//! collisions, fan fail-safe entries, a per-boot timeline; and writes an SVG timeline.
//!
//! `--keep` leaves the gated run's bus and daemons running for `busctl`; `--svg FILE` chooses
//! where the picture goes (default `target/acpigate-demo.svg`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use acpigate_sim::host_firmware::{BootReport, Timing};
use acpigate_sim::smbus::Master;
use acpigate_tests::soak::CLOSE_GRACE;
use acpigate_tests::timeline_svg::{self, Panel};
use acpigate_tests::world::{Mark, World, WorldOptions};
use anyhow::{Context, Result};
use openbmc_vocab::acpigate::HostPhase;

struct Run {
    world: World,
    boots: Vec<(String, BootReport)>,
    end: Instant,
}

async fn run(gate: bool) -> Result<Run> {
    let mut w = World::start(WorldOptions {
        gate,
        ..WorldOptions::default()
    })
    .await
    .context("starting the simulated server")?;
    w.wait_phase(HostPhase::Off).await?;
    let hold = Duration::from_millis(150);
    let mut boots = Vec::new();
    tokio::time::sleep(Duration::from_millis(40)).await;

    let t = Timing::default();
    boots.push((
        "cold boot, firmware sends S2 first".to_owned(),
        w.cold_boot(&t).await?,
    ));
    tokio::time::sleep(hold).await;
    boots.push(("warm reset (no S5)".to_owned(), w.warm_reset(&t).await?));
    tokio::time::sleep(hold).await;
    w.power_loss().await?;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let late = Timing {
        s2_first: false,
        ..Timing::default()
    };
    boots.push((
        "cold boot, firmware enumerates before it sends S2".to_owned(),
        w.cold_boot(&late).await?,
    ));
    tokio::time::sleep(hold).await;
    w.shutdown(false).await?;
    tokio::time::sleep(Duration::from_millis(60)).await;
    Ok(Run {
        end: Instant::now(),
        world: w,
        boots,
    })
}

fn report(name: &str, r: &Run) -> (usize, usize, u64, usize) {
    let w = &r.world;
    println!("\n== {name}");
    for (t, m) in w.marks() {
        let what = match m {
            Mark::Host(s) => format!("host      {s}"),
            Mark::Phase(p) => format!("acpigate  phase -> {p}"),
            Mark::Gate(open) => format!(
                "acpigate  DIMM gate {}",
                if open { "OPEN" } else { "closed" }
            ),
            Mark::Fault(s) => format!("fault     {s}"),
        };
        println!("  {:>7.3}s  {what}", w.secs(t));
    }
    let transfers = w.smbus.transfers();
    let mut lost = 0;
    for (label, b) in &r.boots {
        let during = transfers
            .iter()
            .filter(|t| matches!(t.master, Master::Bmc(_)) && t.overlaps(b.scan.start, b.scan.end))
            .count();
        lost += b.lost();
        println!(
            "  boot: {label}: DIMMs found {}/{}, failed SPD reads {}, BMC transfers during enumeration {during}",
            b.scan.found.len(),
            b.present,
            b.scan.failed_reads
        );
    }
    let collisions = w.smbus.collisions().len();
    let late = w.late_bmc_transfers(CLOSE_GRACE).len();
    (lost, collisions, w.fans.failsafe_entries(), late)
}

fn panel(title: &str, r: &Run, summary: String) -> Panel {
    let w = &r.world;
    let marks = w.marks();
    let mut phases = vec![(w.t0, HostPhase::Unknown)];
    let mut gate = vec![(w.t0, false)];
    let mut host = Vec::new();
    for (t, m) in &marks {
        match m {
            Mark::Phase(p) => phases.push((*t, *p)),
            Mark::Gate(o) => gate.push((*t, *o)),
            Mark::Host(s) | Mark::Fault(s) => host.push((*t, s.clone())),
        }
    }
    let mut fan_manual = vec![(w.t0, false)];
    if let Some(z) = w.fans.zones().first() {
        fan_manual.extend(z.manual_writes.iter().copied());
    }
    Panel {
        title: title.to_owned(),
        t0: w.t0,
        end: r.end,
        phases,
        gate,
        transfers: w.smbus.transfers(),
        fan_manual,
        targets: w.systemd.started_at(),
        host,
        summary,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut keep = false;
    let mut svg = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
        .join("target/acpigate-demo.svg");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--keep" => keep = true,
            "--svg" => svg = PathBuf::from(args.next().context("--svg FILE")?),
            other => anyhow::bail!("unknown argument `{other}` (--keep, --svg FILE)"),
        }
    }
    println!("acpigate demo: the real acpi-state-daemon and sensor-gate on a private dbus-daemon,");
    println!(
        "a simulated server: host firmware, 4 DDR4 DIMMs on a shared SMBus, pid-control, systemd."
    );
    println!("The same three boots run twice: with the gate, and without it (the bug).");

    let off = run(false).await?;
    let on = run(true).await?;
    let r_off = report(
        "WITHOUT the gate (sensor-gate polls whatever the host does)",
        &off,
    );
    let r_on = report("WITH the gate (acpigate)", &on);

    println!("\n{:<34} {:>12} {:>12}", "", "without gate", "with gate");
    for (label, a, b) in [
        ("DIMMs lost at boot (of 12)", r_off.0 as u64, r_on.0 as u64),
        ("SMBus collisions", r_off.1 as u64, r_on.1 as u64),
        ("fan fail-safe entries", r_off.2, r_on.2),
        (
            "BMC transfers outside settled S0",
            r_off.3 as u64,
            r_on.3 as u64,
        ),
    ] {
        println!("{label:<34} {a:>12} {b:>12}");
    }

    let summary = |r: (usize, usize, u64, usize)| {
        format!(
            "DIMMs lost {}, collisions {}, fan fail-safe entries {}, BMC transfers outside settled S0 {}",
            r.0, r.1, r.2, r.3
        )
    };
    let picture = timeline_svg::render(
        &[
            panel("Without the gate", &off, summary(r_off)),
            panel("With the gate (acpigate)", &on, summary(r_on)),
        ],
        "acpigate demo timeline",
    );
    if let Some(dir) = svg.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&svg, picture).with_context(|| format!("writing {}", svg.display()))?;
    println!("\ntimeline picture: {}", svg.display());

    if keep {
        drop(off);
        println!(
            "\nkept running (the gated run). In another shell:\n  export DBUS_SYSTEM_BUS_ADDRESS={}\n  busctl --system tree xyz.openbmc_project.Control.Power.ACPIPowerState\n  busctl --system tree xyz.openbmc_project.AcpigateDimmSensor\n  busctl --system introspect xyz.openbmc_project.AcpigateDimmSensor /xyz/openbmc_project/acpigate/gate\nCtrl-C to stop.",
            on.world.bus.address()
        );
        tokio::signal::ctrl_c().await?;
    }
    anyhow::ensure!(r_on.0 == 0, "the gated run lost DIMMs");
    anyhow::ensure!(
        r_off.0 > 0,
        "the run without the gate lost no DIMM: the model shows no bug"
    );
    Ok(())
}
