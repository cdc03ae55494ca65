//! The boot timeline: how long firmware init took and how many gate windows a boot needed.

use std::time::Instant;

use openbmc_vocab::acpigate::HostPhase;

use super::{AcpiCore, Action, Now};

/// Per-boot timing, published on D-Bus and logged at S0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Boots (firmware init → working) seen since start.
    pub boot_count: u64,
    /// Last boot: total time spent in firmware init, µs.
    pub firmware_init_usec: u64,
    /// Last boot: from the start of the boot (first firmware-init sign) to S0, µs.
    pub time_to_working_usec: u64,
    /// Last boot: how many firmware-init windows (gate closures) it took.
    pub gate_windows: u64,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct BootInProgress {
    started: Instant,
    init_entered: Option<Instant>,
    init_usec: u64,
    windows: u64,
}

impl AcpiCore {
    pub(super) fn track_boot(
        &mut self,
        now: Now,
        from: HostPhase,
        to: HostPhase,
        out: &mut Vec<Action>,
    ) {
        if from == HostPhase::FirmwareInit
            && let Some(b) = self.boot.as_mut()
            && let Some(entered) = b.init_entered.take()
        {
            b.init_usec += usec_between(entered, now.mono);
        }
        match to {
            HostPhase::FirmwareInit => {
                let b = self.boot.get_or_insert(BootInProgress {
                    started: now.mono,
                    init_entered: None,
                    init_usec: 0,
                    windows: 0,
                });
                b.windows += 1;
                b.init_entered = Some(now.mono);
            }
            HostPhase::Working => {
                if let Some(b) = self.boot.take() {
                    self.timeline = Timeline {
                        boot_count: self.timeline.boot_count + 1,
                        firmware_init_usec: b.init_usec,
                        time_to_working_usec: usec_between(b.started, now.mono),
                        gate_windows: b.windows,
                    };
                    out.push(Action::PublishTimeline(self.timeline));
                    out.push(Action::LogBootSummary(self.timeline));
                }
            }
            // A boot that ends in off was not a boot; the next power-on starts afresh.
            HostPhase::Off => self.boot = None,
            HostPhase::Sleeping | HostPhase::Unknown => {}
        }
    }
}

/// Microseconds from `a` to `b` (0 if `b` is earlier: an edge never passes time backwards,
/// but a core must not panic or wrap if one did).
fn usec_between(a: Instant, b: Instant) -> u64 {
    u64::try_from(b.saturating_duration_since(a).as_micros()).unwrap_or(u64::MAX)
}
