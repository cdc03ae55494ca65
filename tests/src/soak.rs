//! The soak: many boots of the simulated server with randomized timing and faults, checking
//! after every boot what a fleet would check.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::acpigate::HostPhase;

use crate::world::{World, WorldOptions};
use acpigate_sim::host_firmware::Timing;

/// The soak's seeded generator, so a failing seed can be replayed.
#[derive(Debug, Clone)]
pub struct Rng(fastrand::Rng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(fastrand::Rng::with_seed(seed))
    }
    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.0.f64() < p
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0.u64(lo..=hi)
    }
}

/// Soak parameters.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub boots: u64,
    pub seed: u64,
    pub world: WorldOptions,
    /// Print one line per boot.
    pub verbose: bool,
}

/// The counts the soak reports; every one but `boots` and the fault counts must be 0 with the
/// gate on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoakSummary {
    pub boots: u64,
    pub warm_resets: u64,
    pub late_s2: u64,
    /// Boots whose firmware reported over IPMI (KCS → ipmi-handlers) rather than the object.
    pub via_ipmi: u64,
    pub shutdowns: u64,
    pub power_losses: u64,
    pub acpi_kills: u64,
    pub gate_kills: u64,
    pub bus_restarts: u64,
    pub dimms_present: u64,
    pub dimms_lost: u64,
    pub collisions: u64,
    pub late_bmc_transfers: u64,
    /// The latest start of a BMC transfer after the host left S0 (within the grace), µs.
    pub max_close_lag_us: u64,
    pub failsafe_entries: u64,
    pub state_errors: u64,
    pub wall_secs: u64,
}

impl fmt::Display for SoakSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "soak: boots={} (warm={} late_s2={} via_ipmi={}) shutdowns={} power_losses={} kills(acpi={} gate={}) bus_restarts={} \
             | dimms_present={} dimms_lost={} collisions={} late_bmc_transfers={} max_close_lag_us={} failsafe_entries={} state_errors={} | {} s",
            self.boots,
            self.warm_resets,
            self.late_s2,
            self.via_ipmi,
            self.shutdowns,
            self.power_losses,
            self.acpi_kills,
            self.gate_kills,
            self.bus_restarts,
            self.dimms_present,
            self.dimms_lost,
            self.collisions,
            self.late_bmc_transfers,
            self.max_close_lag_us,
            self.failsafe_entries,
            self.state_errors,
            self.wall_secs
        )
    }
}

impl SoakSummary {
    /// Whether every bad counter is zero.
    pub fn clean(&self) -> bool {
        self.dimms_lost == 0
            && self.collisions == 0
            && self.late_bmc_transfers == 0
            && self.failsafe_entries == 0
            && self.state_errors == 0
    }
}

/// How long after the host leaves S0 a BMC transfer may still start: the phase change has to
/// travel host → acpi-state-daemon → bus → sensor-gate. The firmware waits longer than this
/// before touching the bus (`Timing::to_enum`, at least 60 ms here; real firmware takes
/// seconds). The largest lag actually seen is reported as `max_close_lag_us`.
pub const CLOSE_GRACE: Duration = Duration::from_millis(50);

async fn check_state(
    w: &World,
    want: AcpiState,
    target: &str,
    errors: &mut u64,
    what: &str,
) -> Result<()> {
    // The property changes first, the target start follows from the same batch of actions.
    let ok = crate::harness::eventually(Duration::from_secs(5), what, || async {
        let state = w.acpi.sys().await.ok();
        (state == Some(want) && w.systemd.active().contains(target)).then_some(())
    })
    .await;
    if ok.is_err() {
        *errors += 1;
        eprintln!(
            "soak: {what}: wanted {want} and {target}; have {:?}, active {:?}",
            w.acpi.sys().await.ok(),
            w.systemd.active()
        );
    }
    Ok(())
}

/// Print incidents grouped by episode (incidents within 300 ms of each other), each episode
/// with the timeline from 400 ms before it.
fn print_incidents(w: &World, incidents: &[(Instant, String)]) {
    let marks = w.marks();
    let bmc = w.smbus.bmc_transfers();
    let mut i = 0;
    while i < incidents.len() {
        let first = incidents[i].0;
        let mut last = first;
        let mut j = i;
        while j < incidents.len() && incidents[j].0 <= last + Duration::from_millis(300) {
            last = incidents[j].0;
            j += 1;
        }
        eprintln!("soak: incident at {:.4} s", w.secs(first));
        for (t, what) in &incidents[i..j] {
            eprintln!("  {:.4} ** {what}", w.secs(*t));
        }
        let from = first
            .checked_sub(Duration::from_millis(400))
            .unwrap_or(first);
        let mut lines: Vec<(Instant, String)> = marks
            .iter()
            .filter(|(t, _)| *t >= from && *t <= last)
            .map(|(t, m)| (*t, format!("{m:?}")))
            .chain(
                bmc.iter()
                    .filter(|t| t.start >= from && t.start <= last)
                    .map(|t| (t.start, format!("BMC {:#04x} {:?}", t.addr, t.outcome))),
            )
            .collect();
        lines.sort_by_key(|(t, _)| *t);
        for (t, l) in lines.iter().rev().take(60).rev() {
            eprintln!("  {:.4} {l}", w.secs(*t));
        }
        i = j;
    }
}

/// How many lines of each daemon's log a failed step shows.
const LOG_TAIL_LINES: usize = 40;

/// The boots, on `w`, counted into `s`.
async fn boots(w: &mut World, opts: &SoakOptions, s: &mut SoakSummary) -> Result<()> {
    let mut rng = Rng::new(opts.seed);
    w.wait_phase(HostPhase::Off).await?;
    let mut boot_no = 0u64;
    while boot_no < opts.boots {
        let timing = Timing {
            to_enum: Duration::from_millis(rng.range(60, 100)),
            s2_first: !rng.chance(0.3),
            to_s0: Duration::from_millis(rng.range(2, 10)),
            spd_bytes: 16,
            via_ipmi: opts.world.ipmi && rng.chance(0.5),
        };
        if timing.via_ipmi {
            s.via_ipmi += 1;
        }
        if opts.world.frudevice.is_some() {
            // Anywhere from power-on to past the end of the SPD scan (drawn only with
            // FruDevice, so the other soaks keep their seeded sequences).
            w.set_frudevice_delay(Duration::from_millis(rng.range(0, 140)));
        }
        if !timing.s2_first {
            s.late_s2 += 1;
        }
        // A crash of either daemon at a random point of the boot.
        let kill_acpi_at = rng.chance(0.08).then(|| rng.range(0, 2));
        let kill_gate_at = rng.chance(0.08).then(|| rng.range(0, 2));
        let restart_bus_at = rng.chance(0.03).then(|| rng.range(0, 2));
        async fn maybe_kill(
            w: &mut World,
            point: u64,
            s: &mut SoakSummary,
            at: (Option<u64>, Option<u64>, Option<u64>),
        ) -> Result<()> {
            let (kill_acpi_at, kill_gate_at, restart_bus_at) = at;
            if restart_bus_at == Some(point) {
                s.bus_restarts += 1;
                w.restart_bus().await?;
            }
            if kill_acpi_at == Some(point) {
                s.acpi_kills += 1;
                w.crash_acpi_daemon()?;
            }
            if kill_gate_at == Some(point) {
                s.gate_kills += 1;
                w.crash_sensor_gate()?;
            }
            Ok(())
        }
        let at = (kill_acpi_at, kill_gate_at, restart_bus_at);

        maybe_kill(w, 0, s, at).await?;
        let mut reports = vec![w.cold_boot(&timing).await?];
        boot_no += 1;
        check_state(
            w,
            AcpiState::S0G0D0,
            "host-s0-state.target",
            &mut s.state_errors,
            "after boot",
        )
        .await?;
        // Stay in S0 long enough for the gate to open and the BMC to poll.
        tokio::time::sleep(Duration::from_millis(
            opts.world.settle_ms + rng.range(10, 40),
        ))
        .await;
        maybe_kill(w, 1, s, at).await?;
        if boot_no < opts.boots && rng.chance(0.3) {
            reports.push(w.warm_reset(&timing).await?);
            boot_no += 1;
            s.warm_resets += 1;
            check_state(
                w,
                AcpiState::S0G0D0,
                "host-s0-state.target",
                &mut s.state_errors,
                "after warm reset",
            )
            .await?;
            tokio::time::sleep(Duration::from_millis(
                opts.world.settle_ms + rng.range(5, 20),
            ))
            .await;
        }
        maybe_kill(w, 2, s, at).await?;
        if rng.chance(0.4) {
            w.power_loss().await?;
            s.power_losses += 1;
        } else {
            w.shutdown(timing.via_ipmi).await?;
            s.shutdowns += 1;
        }
        check_state(
            w,
            AcpiState::S5G2,
            "host-s5-state.target",
            &mut s.state_errors,
            "after power off",
        )
        .await?;
        for r in &reports {
            if r.lost() > 0 {
                // Enough to replay the case: what the firmware did and which faults hit.
                eprintln!(
                    "soak: boot {} ({}) lost {} DIMM(s): s2_first={} to_enum={:?} via_ipmi={} \
                     acpi_kill_at={kill_acpi_at:?} gate_kill_at={kill_gate_at:?} bus_restart_at={restart_bus_at:?}",
                    s.boots + 1,
                    if r.warm { "warm" } else { "cold" },
                    r.lost(),
                    timing.s2_first,
                    timing.to_enum,
                    timing.via_ipmi
                );
                let from = r
                    .scan
                    .start
                    .checked_sub(Duration::from_millis(400))
                    .unwrap_or(r.scan.start);
                for (t, m) in w
                    .marks()
                    .iter()
                    .filter(|(t, _)| *t >= from && *t <= r.scan.end)
                {
                    eprintln!("  {:.4} {m:?}", w.secs(*t));
                }
                for t in w
                    .smbus
                    .bmc_transfers()
                    .iter()
                    .filter(|t| t.overlaps(r.scan.start, r.scan.end))
                {
                    eprintln!(
                        "  {:.4} BMC transfer {:#04x} {:?}",
                        w.secs(t.start),
                        t.addr,
                        t.outcome
                    );
                }
                eprintln!(
                    "  {:.4}..{:.4} SPD scan",
                    w.secs(r.scan.start),
                    w.secs(r.scan.end)
                );
            }
            s.boots += 1;
            s.dimms_present += r.present as u64;
            s.dimms_lost += r.lost() as u64;
            if opts.verbose {
                println!(
                    "boot {:>5} {:<4} found {}/{} failed_reads {}",
                    s.boots,
                    if r.warm { "warm" } else { "cold" },
                    r.scan.found.len(),
                    r.present,
                    r.scan.failed_reads
                );
            }
        }
        if !opts.world.gate && s.boots >= opts.boots {
            break;
        }
    }
    Ok(())
}

/// Run the soak.
pub async fn run(opts: &SoakOptions) -> Result<SoakSummary> {
    let started = Instant::now();
    let mut w = World::start(opts.world.clone()).await?;
    let mut s = SoakSummary::default();
    if let Err(e) = boots(&mut w, opts, &mut s).await {
        // The daemons' logs live in the bus directory, which goes with the world: say what
        // they said now, or a failed step of a long soak cannot be explained afterwards.
        eprintln!("soak: step failed after {} boots: {e:#}", s.boots);
        eprintln!("{}", w.log_tails(LOG_TAIL_LINES));
        return Err(e);
    }
    // Let the last signals settle, then count what the bus and the fan controller saw.
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.collisions = w.smbus.collisions().len() as u64;
    s.max_close_lag_us = w.max_close_lag(CLOSE_GRACE).as_micros() as u64;
    let late = w.late_bmc_transfers(CLOSE_GRACE);
    s.late_bmc_transfers = late.len() as u64;
    if opts.world.gate || opts.verbose {
        // Each incident with what led to it: the phase and gate signals, the host's actions
        // and the faults injected around it.
        let mut incidents: Vec<(Instant, String)> = late
            .iter()
            .map(|t| {
                let what = format!(
                    "BMC transfer {:#04x} {:?} outside settled S0",
                    t.addr, t.outcome
                );
                (t.start, what)
            })
            .collect();
        for (t, cause) in w.failsafe_log() {
            incidents.push((t, format!("fan fail-safe entered ({cause})")));
        }
        incidents.sort_by_key(|(t, _)| *t);
        print_incidents(&w, &incidents);
    }
    // The first few, with who was clobbered (all of them with --verbose): an unblocked
    // FruDevice makes hundreds.
    let collisions = w.smbus.collisions();
    let shown = if opts.verbose { collisions.len() } else { 20 };
    if opts.verbose || opts.world.gate {
        for c in collisions.iter().take(shown) {
            eprintln!(
                "soak: collision at {:.4} s: {:?} {:#04x}",
                w.secs(c.start),
                c.master,
                c.addr
            );
        }
        if collisions.len() > shown {
            eprintln!("soak: … and {} more collisions", collisions.len() - shown);
        }
    }
    s.failsafe_entries = w.failsafe_entries();
    s.wall_secs = started.elapsed().as_secs();
    if !w.acpi_daemon.running() || !w.gate_daemon.running() {
        bail!(
            "a daemon died during the soak:\n{}\n{}",
            w.acpi_daemon.log_text(),
            w.gate_daemon.log_text()
        );
    }
    Ok(s)
}
