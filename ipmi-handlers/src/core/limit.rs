//! The rate limit on SEL records that arrive over IPMI (Add SEL Entry, Platform Event
//! Message), so that a host flooding the SEL cannot wear out the flash or starve the SEL of
//! the BMC's own records.
//!
//! One token bucket per channel: the host's KCS channel, each LAN channel and INTRABMC fill
//! their own, so a flooding host cannot lock an operator out of the SEL, nor the other way
//! round. acpigate's own records (System ACPI Power State) never go through here: they are
//! never refused. Time is passed in (monotonic), never read.

use std::time::{Duration, Instant};

/// How many records per channel: `burst` at once, then `per_second` sustained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelRateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for SelRateLimit {
    /// Room for the few dozen events a host logs during POST or a crash, then 4 a second:
    /// at most 120 bytes a second of SEL file per channel (see `sel::bytes_per_change`).
    fn default() -> Self {
        Self {
            per_second: 4,
            burst: 64,
        }
    }
}

/// Channel numbers are 4 bits.
const CHANNELS: usize = 16;
/// A token, in the thousandths the buckets count in (so `per_second` tokens a second is
/// `per_second` thousandths a millisecond, with no rounding).
const TOKEN: u64 = 1000;
/// Refusals are reported (logged) at most this often, so a flood does not flood the journal.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    /// Thousandths of a token, as of `at` (full, with no time yet: the start).
    level: u64,
    at: Option<Instant>,
}

/// Refusals since the last report, for one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalReport {
    /// Refused since the previous report.
    pub new: u64,
    /// Refused since the start.
    pub total: u64,
    /// (channel, refused since the start), for the channels that had any.
    pub by_channel: Vec<(u8, u64)>,
}

/// The buckets, and what they refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelLimiter {
    limit: SelRateLimit,
    buckets: [Bucket; CHANNELS],
    refused: [u64; CHANNELS],
    reported: u64,
    last_report: Option<Instant>,
}

fn index(channel: u8) -> usize {
    usize::from(channel & 0x0F)
}

impl SelLimiter {
    /// Every bucket full: a freshly started BMC takes a burst at once.
    pub fn new(limit: SelRateLimit) -> Self {
        let full = Bucket {
            level: u64::from(limit.burst) * TOKEN,
            at: None,
        };
        Self {
            limit,
            buckets: [full; CHANNELS],
            refused: [0; CHANNELS],
            reported: 0,
            last_report: None,
        }
    }

    pub fn limit(&self) -> SelRateLimit {
        self.limit
    }

    /// The bucket's level at `now`. A time before the bucket's own refills nothing.
    fn level(&self, channel: u8, now: Instant) -> u64 {
        let b = &self.buckets[index(channel)];
        let elapsed_ms = b.at.map_or(0, |at| {
            u64::try_from(now.saturating_duration_since(at).as_millis()).unwrap_or(u64::MAX)
        });
        let refill = elapsed_ms.saturating_mul(u64::from(self.limit.per_second));
        b.level
            .saturating_add(refill)
            .min(u64::from(self.limit.burst) * TOKEN)
    }

    /// Whether a record from `channel` may be added at `now`.
    pub fn admits(&self, channel: u8, now: Instant) -> bool {
        self.level(channel, now) >= TOKEN
    }

    /// A record from `channel` was added at `now`: it takes its token.
    pub fn take(&mut self, channel: u8, now: Instant) {
        let level = self.level(channel, now).saturating_sub(TOKEN);
        let b = &mut self.buckets[index(channel)];
        // Never move the bucket's clock back: a late commit must not refill it twice.
        b.at = Some(b.at.map_or(now, |at| at.max(now)));
        b.level = level;
    }

    /// A record from `channel` was refused.
    pub fn refused(&mut self, channel: u8) {
        self.refused[index(channel)] += 1;
    }

    pub fn refused_total(&self) -> u64 {
        self.refused.iter().sum()
    }

    /// A report of the refusals not reported yet: the first refusal at once, then at most one
    /// every [`REPORT_EVERY`].
    pub fn report(&mut self, now: Instant) -> Option<RefusalReport> {
        let total = self.refused_total();
        if total == self.reported {
            return None;
        }
        if let Some(last) = self.last_report
            && now.saturating_duration_since(last) < REPORT_EVERY
        {
            return None;
        }
        let new = total - self.reported;
        self.reported = total;
        self.last_report = Some(now);
        Some(RefusalReport {
            new,
            total,
            by_channel: (0..CHANNELS as u8)
                .filter(|c| self.refused[index(*c)] > 0)
                .map(|c| (c, self.refused[index(c)]))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Virtual time: `ms` after one fixed origin.
    fn t(ms: u64) -> Instant {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *ORIGIN.get_or_init(Instant::now) + Duration::from_millis(ms)
    }

    const KCS: u8 = 15;
    const LAN: u8 = 1;

    fn limiter(per_second: u32, burst: u32) -> SelLimiter {
        SelLimiter::new(SelRateLimit { per_second, burst })
    }

    /// Takes records from `channel` at `now_ms` while admitted; how many.
    fn drain(l: &mut SelLimiter, channel: u8, now_ms: u64) -> u32 {
        let now = t(now_ms);
        let mut n = 0;
        while l.admits(channel, now) {
            l.take(channel, now);
            n += 1;
            assert!(n <= 1_000_000, "never refuses");
        }
        n
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let mut l = limiter(4, 10);
        assert_eq!(drain(&mut l, KCS, 5_000), 10, "a full bucket at start");
        assert!(!l.admits(KCS, t(5_000)));
        // 4 a second: one every 250 ms, not before.
        assert!(!l.admits(KCS, t(5_249)));
        assert_eq!(drain(&mut l, KCS, 5_250), 1);
        assert_eq!(drain(&mut l, KCS, 6_250), 4);
        // A long quiet time refills the burst, never more.
        assert_eq!(drain(&mut l, KCS, 600_000), 10);
    }

    #[test]
    fn channels_have_their_own_buckets() {
        let mut l = limiter(1, 3);
        assert_eq!(drain(&mut l, KCS, 0), 3);
        assert!(!l.admits(KCS, t(0)));
        assert_eq!(
            drain(&mut l, LAN, 0),
            3,
            "the host's flood leaves LAN alone"
        );
        // Channel numbers are 4 bits: 0x1F is channel 15.
        assert!(!l.admits(0x1F, t(0)));
    }

    #[test]
    fn a_clock_going_back_refills_nothing() {
        let mut l = limiter(1000, 2);
        assert_eq!(drain(&mut l, KCS, 10_000), 2);
        assert!(!l.admits(KCS, t(5_000)));
        l.take(KCS, t(5_000));
        assert!(
            !l.admits(KCS, t(10_000)),
            "the late take did not rewind the bucket"
        );
        assert!(l.admits(KCS, t(10_002)));
    }

    #[test]
    fn refusals_are_counted_and_reported_at_a_bounded_rate() {
        let mut l = limiter(1, 1);
        assert_eq!(l.report(t(0)), None);
        l.refused(KCS);
        let r = l
            .report(t(100))
            .expect("the first refusal is reported at once");
        assert_eq!((r.new, r.total, r.by_channel), (1, 1, vec![(KCS, 1)]));
        for _ in 0..500 {
            l.refused(KCS);
        }
        l.refused(LAN);
        assert_eq!(l.report(t(100 + 9_999)), None, "not within 10 s");
        let r = l.report(t(100 + 10_000)).expect("report");
        assert_eq!(
            (r.new, r.total, r.by_channel),
            (501, 502, vec![(LAN, 1), (KCS, 501)])
        );
        assert_eq!(l.report(t(86_400_000)), None, "nothing new");
        assert_eq!(l.refused_total(), 502);
    }
}
