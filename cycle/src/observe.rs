//! What the tool learns from the BMC, as the cycle tracker takes it in.
//!
//! The transport turns each answer into one [`Observation`] (the byte-level decoding is in
//! [`crate::decode`]), stamped with the time it was seen: a [`Duration`] since the run
//! started, from the caller's monotonic clock. Nothing here reads a clock.
//!
//! What the BMC says of the host is an [`AcpiState`], the IPMI system power state table as
//! `openbmc-vocab` encodes it once for the whole suite (Get ACPI Power State codes and the
//! sensor type 0x22 SEL offsets are different numbers for the same states; that crate maps
//! both). [`HostPhase`] sorts the states into what a power cycle cares about: working,
//! firmware init (S2), off, sleeping, unknown.

use std::time::Duration;

pub use openbmc_vocab::acpi::AcpiState;
pub use openbmc_vocab::acpigate::HostPhase;

/// One thing seen, at `at` (since the run started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// A Get ACPI Power State poll (App 0x06, cmd 0x07) was answered with this system state.
    Acpi { at: Duration, state: AcpiState },
    /// The BMC answered Get ACPI Power State with completion code 0xC1 (invalid command), as
    /// OpenIPMI's `ipmi_sim` does: the tracker falls back to chassis power and the SEL.
    AcpiUnsupported { at: Duration },
    /// A Get Chassis Status poll (Chassis 0x00, cmd 0x01) was answered: byte 1 bit 0.
    ChassisPower { at: Duration, on: bool },
    /// A new "System ACPI Power State" SEL record (sensor type 0x22, an assertion), read at
    /// `at`. The caller passes only records added after the cycle's command was sent: every
    /// such record is a transition the BMC logged.
    SelAcpi {
        at: Duration,
        state: AcpiState,
        record_id: u16,
    },
    /// A new "System Boot / Restart Initiated" SEL record (sensor type 0x1D) with its event
    /// offset (0 power up, 1 hard reset, 2 warm reset, …). A note in the timeline, never a
    /// milestone: BMCs log these inconsistently.
    SelBootRestart {
        at: Duration,
        offset: u8,
        record_id: u16,
    },
    /// The BMC answered a Chassis Control request the tracker asked for (`code` is the
    /// request's data byte) with completion code `cc`.
    CommandAnswered { at: Duration, code: u8, cc: u8 },
    /// A request went unanswered after the transport's own retries.
    NoAnswer { at: Duration },
    /// Some other request was answered (whatever it said): the BMC is alive.
    Answered { at: Duration },
    /// Nothing happened; time passed. The caller sends one at
    /// [`crate::cycle::CycleTracker::next_deadline`] at the latest.
    Tick { at: Duration },
}

impl Observation {
    /// When it was seen, since the run started.
    pub fn at(&self) -> Duration {
        match *self {
            Self::Acpi { at, .. }
            | Self::AcpiUnsupported { at }
            | Self::ChassisPower { at, .. }
            | Self::SelAcpi { at, .. }
            | Self::SelBootRestart { at, .. }
            | Self::CommandAnswered { at, .. }
            | Self::NoAnswer { at }
            | Self::Answered { at }
            | Self::Tick { at } => at,
        }
    }

    /// Whether the BMC answered something: everything but silence and the passing of time.
    pub fn is_answer(&self) -> bool {
        !matches!(self, Self::NoAnswer { .. } | Self::Tick { .. })
    }
}

/// What a "System Boot / Restart Initiated" (sensor type 0x1D) offset says, in words for the
/// log (IPMI 2.0 table 42-3); `None` for offsets the table leaves reserved.
pub fn boot_restart_cause(offset: u8) -> Option<&'static str> {
    Some(match offset {
        0x00 => "initiated by power up",
        0x01 => "initiated by hard reset",
        0x02 => "initiated by warm reset",
        0x03 => "PXE boot requested by the user",
        0x04 => "automatic boot to diagnostics",
        0x05 => "hard reset initiated by OS or run-time software",
        0x06 => "warm reset initiated by OS or run-time software",
        0x07 => "system restart",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_observation_gives_its_time_and_only_silence_and_ticks_are_not_answers() {
        let at = Duration::from_millis(1234);
        let all = [
            (
                Observation::Acpi {
                    at,
                    state: AcpiState::S5G2,
                },
                true,
            ),
            (Observation::AcpiUnsupported { at }, true),
            (Observation::ChassisPower { at, on: true }, true),
            (
                Observation::SelAcpi {
                    at,
                    state: AcpiState::S2D2,
                    record_id: 7,
                },
                true,
            ),
            (
                Observation::SelBootRestart {
                    at,
                    offset: 1,
                    record_id: 8,
                },
                true,
            ),
            (Observation::CommandAnswered { at, code: 2, cc: 0 }, true),
            (Observation::NoAnswer { at }, false),
            (Observation::Answered { at }, true),
            (Observation::Tick { at }, false),
        ];
        for (o, answer) in all {
            assert_eq!(o.at(), at, "{o:?}");
            assert_eq!(o.is_answer(), answer, "{o:?}");
        }
    }

    #[test]
    fn boot_restart_offsets_zero_to_seven_have_words() {
        for offset in 0u8..=0xFF {
            assert_eq!(
                boot_restart_cause(offset).is_some(),
                offset <= 7,
                "{offset}"
            );
        }
        assert_eq!(boot_restart_cause(2), Some("initiated by warm reset"));
    }

    #[test]
    fn phases_of_the_states_a_cycle_meets() {
        for (state, phase) in [
            (AcpiState::S0G0D0, HostPhase::Working),
            (AcpiState::LegacyOn, HostPhase::Working),
            (AcpiState::S2D2, HostPhase::FirmwareInit),
            (AcpiState::S5G2, HostPhase::Off),
            (AcpiState::S4S5, HostPhase::Off),
            (AcpiState::G3, HostPhase::Off),
            (AcpiState::S3D3, HostPhase::Sleeping),
            (AcpiState::Unknown, HostPhase::Unknown),
        ] {
            assert_eq!(HostPhase::for_state(state), phase, "{state:?}");
        }
    }
}
