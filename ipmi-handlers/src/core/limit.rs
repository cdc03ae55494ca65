//! The rate limit on SEL records that arrive over IPMI (Add SEL Entry, Platform Event
//! Message), so that a host flooding the SEL cannot wear out the flash or starve the SEL of
//! the BMC's own records.
//!
//! One token bucket per channel: the host's KCS channel, each LAN channel and INTRABMC fill
//! their own, so a flooding host cannot lock an operator out of the SEL, nor the other way
//! round. acpigate's own records (System ACPI Power State) never go through here: they are
//! never refused. Time is passed in (monotonic milliseconds), never read.

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
pub const REPORT_EVERY_MS: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    /// Thousandths of a token, as of `at_ms`.
    level: u64,
    at_ms: u64,
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
    last_report_ms: Option<u64>,
}

fn index(channel: u8) -> usize {
    usize::from(channel & 0x0F)
}

impl SelLimiter {
    /// Every bucket full: a freshly started BMC takes a burst at once.
    pub fn new(limit: SelRateLimit) -> Self {
        let full = Bucket {
            level: u64::from(limit.burst) * TOKEN,
            at_ms: 0,
        };
        Self {
            limit,
            buckets: [full; CHANNELS],
            refused: [0; CHANNELS],
            reported: 0,
            last_report_ms: None,
        }
    }

    pub fn limit(&self) -> SelRateLimit {
        self.limit
    }

    /// The bucket's level at `now_ms`. A clock that seems to go back refills nothing.
    fn level(&self, channel: u8, now_ms: u64) -> u64 {
        let b = &self.buckets[index(channel)];
        let refill = now_ms
            .saturating_sub(b.at_ms)
            .saturating_mul(u64::from(self.limit.per_second));
        b.level
            .saturating_add(refill)
            .min(u64::from(self.limit.burst) * TOKEN)
    }

    /// Whether a record from `channel` may be added at `now_ms`.
    pub fn admits(&self, channel: u8, now_ms: u64) -> bool {
        self.level(channel, now_ms) >= TOKEN
    }

    /// A record from `channel` was added at `now_ms`: it takes its token.
    pub fn take(&mut self, channel: u8, now_ms: u64) {
        let level = self.level(channel, now_ms).saturating_sub(TOKEN);
        let b = &mut self.buckets[index(channel)];
        // Never move the bucket's clock back: a late commit must not refill it twice.
        b.at_ms = b.at_ms.max(now_ms);
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
    /// every [`REPORT_EVERY_MS`].
    pub fn report(&mut self, now_ms: u64) -> Option<RefusalReport> {
        let total = self.refused_total();
        if total == self.reported {
            return None;
        }
        if let Some(last) = self.last_report_ms
            && now_ms.saturating_sub(last) < REPORT_EVERY_MS
        {
            return None;
        }
        let new = total - self.reported;
        self.reported = total;
        self.last_report_ms = Some(now_ms);
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

    const KCS: u8 = 15;
    const LAN: u8 = 1;

    fn limiter(per_second: u32, burst: u32) -> SelLimiter {
        SelLimiter::new(SelRateLimit { per_second, burst })
    }

    /// Takes records from `channel` at `now_ms` while admitted; how many.
    fn drain(l: &mut SelLimiter, channel: u8, now_ms: u64) -> u32 {
        let mut n = 0;
        while l.admits(channel, now_ms) {
            l.take(channel, now_ms);
            n += 1;
            assert!(n <= 1_000_000, "never refuses");
        }
        n
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let mut l = limiter(4, 10);
        assert_eq!(drain(&mut l, KCS, 5_000), 10, "a full bucket at start");
        assert!(!l.admits(KCS, 5_000));
        // 4 a second: one every 250 ms, not before.
        assert!(!l.admits(KCS, 5_249));
        assert_eq!(drain(&mut l, KCS, 5_250), 1);
        assert_eq!(drain(&mut l, KCS, 6_250), 4);
        // A long quiet time refills the burst, never more.
        assert_eq!(drain(&mut l, KCS, 600_000), 10);
    }

    #[test]
    fn channels_have_their_own_buckets() {
        let mut l = limiter(1, 3);
        assert_eq!(drain(&mut l, KCS, 0), 3);
        assert!(!l.admits(KCS, 0));
        assert_eq!(
            drain(&mut l, LAN, 0),
            3,
            "the host's flood leaves LAN alone"
        );
        // Channel numbers are 4 bits: 0x1F is channel 15.
        assert!(!l.admits(0x1F, 0));
    }

    #[test]
    fn a_clock_going_back_refills_nothing() {
        let mut l = limiter(1000, 2);
        assert_eq!(drain(&mut l, KCS, 10_000), 2);
        assert!(!l.admits(KCS, 5_000));
        l.take(KCS, 5_000);
        assert!(
            !l.admits(KCS, 10_000),
            "the late take did not rewind the bucket"
        );
        assert!(l.admits(KCS, 10_002));
    }

    #[test]
    fn refusals_are_counted_and_reported_at_a_bounded_rate() {
        let mut l = limiter(1, 1);
        assert_eq!(l.report(0), None);
        l.refused(KCS);
        let r = l
            .report(100)
            .expect("the first refusal is reported at once");
        assert_eq!((r.new, r.total, r.by_channel), (1, 1, vec![(KCS, 1)]));
        for _ in 0..500 {
            l.refused(KCS);
        }
        l.refused(LAN);
        assert_eq!(l.report(100 + REPORT_EVERY_MS - 1), None, "not within 10 s");
        let r = l.report(100 + REPORT_EVERY_MS).expect("report");
        assert_eq!(
            (r.new, r.total, r.by_channel),
            (501, 502, vec![(LAN, 1), (KCS, 501)])
        );
        assert_eq!(l.report(u64::MAX), None, "nothing new");
        assert_eq!(l.refused_total(), 502);
    }
}
