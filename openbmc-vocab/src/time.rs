//! The time an edge hands its core with every input — one type for every core, so that a
//! core never reads a clock and its tests drive it with virtual time.

use std::time::Instant;

/// When an input was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic: every duration and deadline a core keeps is measured on it, so a wall-clock
    /// step (NTP, an operator's Set SEL Time) never shortens or stretches one.
    pub mono: Instant,
    /// Microseconds since the Unix epoch: the unit OpenBMC publishes times in
    /// (`BootProgressLastUpdate`), for what a core stamps and publishes, never for durations.
    pub wall_usec: u64,
}

impl Now {
    /// The wall clock in whole seconds since the epoch (the IPMI SEL's unit), saturating at
    /// the end of `u32` rather than wrapping to 1970.
    pub fn wall_secs(&self) -> u32 {
        u32::try_from(self.wall_usec / 1_000_000).unwrap_or(u32::MAX)
    }

    /// `self` moved on by `d` on both clocks (tests and simulations step time with it).
    pub fn after(&self, d: std::time::Duration) -> Self {
        Self {
            mono: self.mono + d,
            wall_usec: self.wall_usec.saturating_add(d.as_micros() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn both_clocks_move_together_and_seconds_saturate() {
        let t0 = Now {
            mono: Instant::now(),
            wall_usec: 1_700_000_000_500_000,
        };
        let t1 = t0.after(Duration::from_millis(1_600));
        assert_eq!(t1.mono - t0.mono, Duration::from_millis(1_600));
        assert_eq!(t1.wall_usec - t0.wall_usec, 1_600_000);
        assert_eq!(
            (t0.wall_secs(), t1.wall_secs()),
            (1_700_000_000, 1_700_000_002)
        );
        let far = Now {
            mono: t0.mono,
            wall_usec: u64::MAX,
        };
        assert_eq!(far.wall_secs(), u32::MAX);
    }
}
