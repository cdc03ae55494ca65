//! The policy the core applies: what the configuration file says about the rules.
//!
//! The type lives with the core because it is one of the core's inputs (given once, at start);
//! reading it from the file is the edge's job (`edge::config`).

use openbmc_vocab::boot::ProgressStage;

/// The policy the core applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// POST_COMPLETE asserting during firmware init means S0, for firmware that never sends S0.
    pub post_complete_means_working: bool,
    /// POST codes while working (without a POST_COMPLETE input) mean a warm reset.
    pub post_codes_mean_firmware_init: bool,
    /// Write BootProgress at all.
    pub boot_progress: bool,
    /// The BootProgress stage for firmware init before any POST code says more.
    pub firmware_init_stage: ProgressStage,
    /// POST-code ranges (inclusive) to stages, first match wins.
    pub post_code_stages: Vec<(u64, u64, ProgressStage)>,
    /// Write `OperatingSystemState` on the host object for BiosPost consumers (off by default:
    /// on x86-power-control platforms the GPIO already drives it).
    pub write_os_status: bool,
    /// Log every transition to the IPMI SEL through phosphor-sel-logger (off by default:
    /// acpigate's ipmi-handlers records them itself when it is the IPMI server).
    pub sel_records: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            post_complete_means_working: true,
            post_codes_mean_firmware_init: true,
            boot_progress: true,
            firmware_init_stage: ProgressStage::PrimaryProcInit,
            post_code_stages: Vec::new(),
            write_os_status: false,
            sel_records: false,
        }
    }
}

impl Policy {
    /// The stage a POST code maps to, if any range covers it.
    pub fn stage_for_post_code(&self, code: u64) -> Option<ProgressStage> {
        self.post_code_stages
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&code))
            .map(|(_, _, s)| *s)
    }
}
