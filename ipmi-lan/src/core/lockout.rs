//! Lockout after repeated RAKP failures, per user name and per source address.
//!
//! What counts as a failure: every RAKP 2 we hand out is charged as a failed attempt at once,
//! and only a RAKP 3 that proves the password refunds it (by clearing the count). This matters
//! because ipmitool checks the RAKP 2 HMAC itself and, with a wrong password, gives up without
//! ever sending RAKP 3 — and because an attacker only needs RAKP 2 to guess passwords offline.
//! Charging at RAKP 2 bounds both to `threshold` tries per lockout period. Unknown names are
//! tracked exactly like real ones, so the lockout reveals nothing about which names exist.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Thresholds and duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures that lock a user name (0 = never lock).
    pub user_threshold: u32,
    /// Failures that lock a source address (0 = never lock).
    pub source_threshold: u32,
    /// How long a lock lasts; also how long failures are remembered.
    pub duration: Duration,
}

#[derive(Clone, Debug)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

/// Outcome of a charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charge {
    Counted,
    /// This failure engaged the lock.
    Locked,
}

/// Failure counts and locks for one kind of key, bounded in size.
#[derive(Clone, Debug)]
pub struct LockTable<K: Eq + Hash + Clone> {
    entries: HashMap<K, Entry>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone> LockTable<K> {
    pub fn new(capacity: usize) -> Self {
        LockTable {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Is `key` locked at `now`?
    pub fn is_locked(&self, key: &K, now: Instant) -> bool {
        self.entries
            .get(key)
            .and_then(|e| e.locked_until)
            .is_some_and(|until| now < until)
    }

    /// Count one failure for `key`.
    pub fn charge(&mut self, key: &K, now: Instant, threshold: u32, duration: Duration) -> Charge {
        if threshold == 0 {
            return Charge::Counted;
        }
        if !self.entries.contains_key(key) && self.entries.len() >= self.capacity {
            self.evict(now);
        }
        let e = self.entries.entry(key.clone()).or_insert(Entry {
            failures: 0,
            last_failure: now,
            locked_until: None,
        });
        // Failures older than the lockout period are forgotten; a lock that ran out is over.
        if e.locked_until.is_some_and(|u| now >= u)
            || now.saturating_duration_since(e.last_failure) >= duration
        {
            e.failures = 0;
            e.locked_until = None;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_failure = now;
        if e.failures >= threshold && e.locked_until.is_none() {
            e.locked_until = Some(now + duration);
            return Charge::Locked;
        }
        Charge::Counted
    }

    /// A proven login: forget the failures and lift the lock.
    pub fn clear(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Drop entries whose lock ran out and whose failures are forgotten; returns the keys
    /// whose lock ran out (for the log).
    pub fn expire(&mut self, now: Instant, duration: Duration) -> Vec<K> {
        let mut released = Vec::new();
        self.entries.retain(|k, e| {
            if let Some(until) = e.locked_until {
                if now < until {
                    return true;
                }
                released.push(k.clone());
                return false;
            }
            now.saturating_duration_since(e.last_failure) < duration
        });
        released
    }

    /// When [`LockTable::expire`] next has something to drop: a lock running out, or failures
    /// being forgotten.
    pub fn next_expiry(&self, duration: Duration) -> Option<Instant> {
        self.entries
            .values()
            .map(|e| e.locked_until.unwrap_or(e.last_failure + duration))
            .min()
    }

    /// When the next lock runs out.
    pub fn next_release(&self) -> Option<Instant> {
        self.entries.values().filter_map(|e| e.locked_until).min()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    // Make room: an unlocked entry with the oldest failure goes first; if everything is
    // locked (a flood of names), the lock that would end soonest goes.
    fn evict(&mut self, now: Instant) {
        let victim = self
            .entries
            .iter()
            .filter(|(_, e)| e.locked_until.is_none_or(|u| now >= u))
            .min_by_key(|(_, e)| e.last_failure)
            .or_else(|| {
                // Every entry is locked here, so every `locked_until` is set.
                self.entries.iter().min_by_key(|(_, e)| e.locked_until)
            })
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            self.entries.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// `n` seconds after a fixed start (monotonic time, as the edge passes it in).
    fn at(n: u32) -> Instant {
        static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *T0.get_or_init(Instant::now) + n * S
    }

    #[test]
    fn locks_at_threshold_and_releases_after_duration() {
        let mut t = LockTable::<&str>::new(8);
        let d = 60 * S;
        assert_eq!(t.charge(&"a", at(0), 3, d), Charge::Counted);
        assert_eq!(t.charge(&"a", at(1), 3, d), Charge::Counted);
        assert!(!t.is_locked(&"a", at(2)));
        assert_eq!(t.charge(&"a", at(2), 3, d), Charge::Locked);
        assert!(t.is_locked(&"a", at(2)));
        assert!(t.is_locked(&"a", at(61)));
        assert!(!t.is_locked(&"a", at(62)));
        assert!(!t.is_locked(&"b", at(2)));
        assert_eq!(t.expire(at(62), d), vec!["a"]);
        assert!(t.is_empty());
    }

    #[test]
    fn old_failures_are_forgotten_and_success_clears() {
        let mut t = LockTable::<u8>::new(8);
        let d = 10 * S;
        t.charge(&1, at(0), 3, d);
        t.charge(&1, at(1), 3, d);
        // 11 s after the last failure: the count starts again.
        assert_eq!(t.charge(&1, at(12), 3, d), Charge::Counted);
        assert_eq!(t.charge(&1, at(13), 3, d), Charge::Counted);
        t.clear(&1);
        assert_eq!(t.charge(&1, at(14), 3, d), Charge::Counted);
        assert_eq!(t.charge(&1, at(15), 3, d), Charge::Counted);
        assert_eq!(t.charge(&1, at(16), 3, d), Charge::Locked);
        // Threshold 0 disables locking.
        assert_eq!(t.charge(&2, at(0), 0, d), Charge::Counted);
        assert!(!t.is_locked(&2, at(0)));
    }

    #[test]
    fn bounded_and_evicts_unlocked_first() {
        let mut t = LockTable::<u32>::new(3);
        let d = 100 * S;
        assert_eq!(t.charge(&1, at(0), 1, d), Charge::Locked);
        t.charge(&2, at(1), 5, d);
        t.charge(&3, at(2), 5, d);
        t.charge(&4, at(3), 5, d);
        assert_eq!(t.len(), 3);
        // 2 was the oldest unlocked entry; the lock on 1 survives the flood.
        assert!(t.is_locked(&1, at(4)));
        for k in 10..100 {
            t.charge(&k, at(5), 5, d);
        }
        assert!(t.is_locked(&1, at(6)));
        assert_eq!(t.len(), 3);
    }
}
