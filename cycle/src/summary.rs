//! The closing summary of a run: how many cycles passed, how the others failed, and how
//! long the passes took.
//!
//! Percentiles are nearest-rank: the p-th percentile of n sorted values is the value at rank
//! ⌈p·n/100⌉ (1-based, at least 1). Every reported value is one that was measured, never an
//! interpolation; the median of an even count is the lower of the middle two.
//!
//! Times come from passes only, and not from passes whose S0 was assumed by the fallback
//! rule (those times are the rule's, not the host's; they are counted apart).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::cycle::{CycleResult, FailKind};

/// Min, median, 95th percentile and max of some durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub count: usize,
    pub min: Duration,
    pub median: Duration,
    pub p95: Duration,
    pub max: Duration,
}

impl Stats {
    /// `None` for no values.
    pub fn of(values: &[Duration]) -> Option<Self> {
        let mut v = values.to_vec();
        v.sort();
        Some(Self {
            count: v.len(),
            min: *v.first()?,
            median: percentile(&v, 50)?,
            p95: percentile(&v, 95)?,
            max: *v.last()?,
        })
    }
}

/// The nearest-rank `p`-th percentile (0–100) of `sorted` (ascending); `None` if empty.
pub fn percentile(sorted: &[Duration], p: u32) -> Option<Duration> {
    let n = sorted.len();
    let p = p.min(100) as usize;
    // ⌈p·n/100⌉ in integers; rank 0 (p = 0) means the first value.
    let rank = (p * n).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The run in numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub cycles: usize,
    pub passes: usize,
    /// Passes whose S0 the fallback rule assumed (included in `passes`).
    pub s0_assumed: usize,
    /// Each failure kind with the cycles (numbered from 1) that failed so.
    pub failures: BTreeMap<FailKind, Vec<usize>>,
    /// Command to S0.
    pub time_to_s0: Option<Stats>,
    /// Firmware init to S0.
    pub firmware_init: Option<Stats>,
}

impl Summary {
    /// Over the results in run order (cycle n is `results[n - 1]`).
    pub fn of(results: &[CycleResult]) -> Self {
        let mut failures: BTreeMap<FailKind, Vec<usize>> = BTreeMap::new();
        for (i, r) in results.iter().enumerate() {
            if let Some(kind) = r.failure() {
                failures.entry(kind).or_default().push(i + 1);
            }
        }
        let to_s0: Vec<Duration> = results.iter().filter_map(|r| r.time_to_s0()).collect();
        let fw: Vec<Duration> = results
            .iter()
            .filter_map(|r| r.firmware_init_time())
            .collect();
        Self {
            cycles: results.len(),
            passes: results.iter().filter(|r| r.passed()).count(),
            s0_assumed: results.iter().filter(|r| r.s0_assumed()).count(),
            failures,
            time_to_s0: Stats::of(&to_s0),
            firmware_init: Stats::of(&fw),
        }
    }

    pub fn failed(&self) -> usize {
        self.cycles - self.passes
    }
}

/// Seconds with milliseconds.
fn s(d: Duration) -> String {
    format!("{}.{:03} s", d.as_secs(), d.subsec_millis())
}

fn stats_line(f: &mut fmt::Formatter<'_>, label: &str, st: Option<Stats>) -> fmt::Result {
    match st {
        Some(st) => writeln!(
            f,
            "{label}: min {}  median {}  p95 {}  max {}  ({} cycles)",
            s(st.min),
            s(st.median),
            s(st.p95),
            s(st.max),
            st.count
        ),
        None => writeln!(f, "{label}: no measured cycles"),
    }
}

/// Cycle numbers, the first few of them.
fn cycle_list(cycles: &[usize]) -> String {
    const SHOWN: usize = 10;
    let mut out: Vec<String> = cycles.iter().take(SHOWN).map(|c| c.to_string()).collect();
    if cycles.len() > SHOWN {
        out.push(format!("… {} more", cycles.len() - SHOWN));
    }
    out.join(", ")
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cycles: {}  passed: {}  failed: {}",
            self.cycles,
            self.passes,
            self.failed()
        )?;
        if self.s0_assumed > 0 {
            write!(f, "  (S0 assumed from chassis power: {})", self.s0_assumed)?;
        }
        writeln!(f)?;
        for (kind, cycles) in &self.failures {
            let n = cycles.len();
            let word = if n == 1 { "cycle" } else { "cycles" };
            writeln!(f, "  {kind}: {n} ({word} {})", cycle_list(cycles))?;
        }
        stats_line(f, "time to S0", self.time_to_s0)?;
        stats_line(f, "time in firmware init", self.firmware_init)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle::{Milestone, Source, Verdict};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=10).map(|i| ms(i * 100)).collect();
        let cases: &[(&[Duration], u32, Option<u64>)] = &[
            (&[], 50, None),
            (&v[..1], 0, Some(100)),
            (&v[..1], 50, Some(100)),
            (&v[..1], 100, Some(100)),
            (&v[..2], 50, Some(100)),
            (&v[..3], 50, Some(200)),
            (&v[..4], 50, Some(200)),
            (&v, 0, Some(100)),
            (&v, 10, Some(100)),
            (&v, 11, Some(200)),
            (&v, 50, Some(500)),
            (&v, 95, Some(1000)),
            (&v, 90, Some(900)),
            (&v, 100, Some(1000)),
            (&v, 250, Some(1000)),
        ];
        for &(values, p, want) in cases {
            assert_eq!(
                percentile(values, p),
                want.map(ms),
                "p{p} of {} values",
                values.len()
            );
        }
        // 20 values: p95 is rank 19, not the maximum.
        let twenty: Vec<Duration> = (1..=20).map(ms).collect();
        assert_eq!(percentile(&twenty, 95), Some(ms(19)));
        assert_eq!(Stats::of(&[]), None);
        assert_eq!(
            Stats::of(&[ms(3), ms(1), ms(2)]),
            Some(Stats {
                count: 3,
                min: ms(1),
                median: ms(2),
                p95: ms(3),
                max: ms(3)
            })
        );
    }

    fn result(verdict: Verdict, entries: &[(Milestone, u64, Source)]) -> CycleResult {
        CycleResult::made_up(verdict, entries, entries.last().map_or(0, |e| e.1))
    }

    #[test]
    fn summary_of_a_run() {
        use Milestone::*;
        let pass = |fw: u64, s0: u64| {
            result(
                Verdict::Pass,
                &[
                    (CommandSent, 0, Source::Command),
                    (S5, 500, Source::AcpiPoll),
                    (FirmwareInit, fw, Source::AcpiPoll),
                    (S0, s0, Source::AcpiPoll),
                ],
            )
        };
        let hang = FailKind::S0Timeout {
            last_seen: FirmwareInit,
        };
        let results = vec![
            pass(2000, 8000),
            pass(2000, 9000),
            result(
                Verdict::Fail(hang),
                &[
                    (CommandSent, 0, Source::Command),
                    (FirmwareInit, 2000, Source::AcpiPoll),
                ],
            ),
            pass(3000, 10_000),
            // An assumed S0: a pass, but no times.
            result(
                Verdict::Pass,
                &[
                    (CommandSent, 0, Source::Command),
                    (S5, 500, Source::ChassisPower),
                    (FirmwareInit, 2500, Source::ChassisPower),
                    (S0, 12_500, Source::ChassisPower),
                ],
            ),
            result(
                Verdict::Fail(FailKind::BmcSilent),
                &[(CommandSent, 0, Source::Command)],
            ),
            result(
                Verdict::Fail(hang),
                &[
                    (CommandSent, 0, Source::Command),
                    (FirmwareInit, 2000, Source::AcpiPoll),
                ],
            ),
        ];
        let s = Summary::of(&results);
        assert_eq!((s.cycles, s.passes, s.failed(), s.s0_assumed), (7, 4, 3, 1));
        assert_eq!(s.failures.get(&hang), Some(&vec![3, 7]));
        assert_eq!(s.failures.get(&FailKind::BmcSilent), Some(&vec![6]));
        assert_eq!(
            s.time_to_s0,
            Some(Stats {
                count: 3,
                min: ms(8000),
                median: ms(9000),
                p95: ms(10_000),
                max: ms(10_000)
            })
        );
        assert_eq!(
            s.firmware_init,
            Some(Stats {
                count: 3,
                min: ms(6000),
                median: ms(7000),
                p95: ms(7000),
                max: ms(7000)
            })
        );
        let text = s.to_string();
        assert_eq!(
            text,
            "cycles: 7  passed: 4  failed: 3  (S0 assumed from chassis power: 1)\n\
             \x20 no S0 in time (last seen: firmware-init): 2 (cycles 3, 7)\n\
             \x20 BMC silent: 1 (cycle 6)\n\
             time to S0: min 8.000 s  median 9.000 s  p95 10.000 s  max 10.000 s  (3 cycles)\n\
             time in firmware init: min 6.000 s  median 7.000 s  p95 7.000 s  max 7.000 s  (3 cycles)\n"
        );
    }

    #[test]
    fn an_empty_run_and_long_failure_lists() {
        let s = Summary::of(&[]);
        assert_eq!(
            s.to_string(),
            "cycles: 0  passed: 0  failed: 0\n\
             time to S0: no measured cycles\n\
             time in firmware init: no measured cycles\n"
        );
        let silent = result(Verdict::Fail(FailKind::BmcSilent), &[]);
        let s = Summary::of(&vec![silent; 12]);
        assert!(
            s.to_string()
                .contains("BMC silent: 12 (cycles 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, … 2 more)"),
            "{s}"
        );
    }
}
