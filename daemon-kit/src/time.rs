//! The edges' clocks. Cores never read a clock: the edge reads both here and passes a
//! [`Now`] in with every input.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use openbmc_vocab::time::Now;

/// Microseconds since the Unix epoch (the unit of `BootProgressLastUpdate`).
pub fn epoch_usec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Both clocks, now.
pub fn now() -> Now {
    Now {
        mono: Instant::now(),
        wall_usec: epoch_usec(),
    }
}
