//! Wall-clock and monotonic time for the edges. Cores never read a clock: the edge passes
//! [`Instant`]s (monotonic) and wall-clock microseconds in.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch (the unit of `BootProgressLastUpdate`).
pub fn epoch_usec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
