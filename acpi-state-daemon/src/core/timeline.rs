//! The boot timeline: how long firmware init took and how many gate windows a boot needed.

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

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct BootInProgress {
    started_mono: u64,
    init_entered_mono: Option<u64>,
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
            && let Some(entered) = b.init_entered_mono.take()
        {
            b.init_usec += now.mono_usec.saturating_sub(entered);
        }
        match to {
            HostPhase::FirmwareInit => {
                let b = self.boot.get_or_insert(BootInProgress {
                    started_mono: now.mono_usec,
                    ..BootInProgress::default()
                });
                b.windows += 1;
                b.init_entered_mono = Some(now.mono_usec);
            }
            HostPhase::Working => {
                if let Some(b) = self.boot.take() {
                    self.timeline = Timeline {
                        boot_count: self.timeline.boot_count + 1,
                        firmware_init_usec: b.init_usec,
                        time_to_working_usec: now.mono_usec.saturating_sub(b.started_mono),
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
