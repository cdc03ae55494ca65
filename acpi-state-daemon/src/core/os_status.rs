//! `OperatingSystemState` on the host object, for platforms where nobody else writes it.
//!
//! dbus-sensors' `PowerState: "BiosPost"` sensors read only while `OperatingSystemState` on
//! `xyz.openbmc_project.State.Host0` `/xyz/openbmc_project/state/host0` is not `Inactive` and
//! the host has been `Running` for 10 s (openbmc/dbus-sensors fc2953c5, `src/Utils.hpp`
//! namespaces `power`/`post`). x86-power-control drives the property from the POST_COMPLETE
//! GPIO: `Standby` while it is asserted, `Inactive` otherwise, read-only (942e92b4,
//! `src/power_control.cpp`). phosphor-state-manager serves the same property writable and only
//! ever sets `Inactive` itself (when the host-off target completes; a518bd39,
//! `host_state_manager.cpp`): without a writer a BiosPost sensor there never reads.
//!
//! Where the configuration says so (`write_os_status`), acpi-state-daemon is that writer:
//! * entering `Working` (S0, the phase that opens our own gate) it writes `Standby`, the value
//!   x86-power-control gives POST complete, so a consumer sees one meaning on every platform;
//! * entering any other phase (firmware init, sleep, off, unknown) it writes `Inactive`;
//! * it writes on its own phase changes only and never fights: a value someone else writes
//!   meanwhile stands until our next phase change (see the README);
//! * a host object where the property is read-only, or that is x86-power-control's (its
//!   owner also owns `xyz.openbmc_project.State.OperatingSystem`), ends the writes for good,
//!   with one warning: the platform already has its writer and it is not us;
//! * a write that fails otherwise (no host service, no answer in time) is logged, and the next
//!   phase change is written as usual.

use openbmc_vocab::acpigate::HostPhase;
use openbmc_vocab::state::OsStatus;

use super::Action;

/// How an `OperatingSystemState` write ended, when it did not simply succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OsStatusOutcome {
    /// The property cannot be written by us (read-only, or access refused): another daemon
    /// owns its meaning.
    ReadOnly { error: String },
    /// The host object is x86-power-control's: it drives the property from POST_COMPLETE.
    PowerControl { owner: String },
    /// Anything else (no host service, no answer in time): the next phase is still written.
    Failed { value: OsStatus, error: String },
}

/// What to tell the journal about the `OperatingSystemState` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OsStatusNote {
    /// The writes stop for good (said once).
    GaveUp(OsStatusOutcome),
    /// One write failed; later ones are still made.
    Failed { value: OsStatus, error: String },
}

/// The `OperatingSystemState` part of the core's state.
#[derive(Debug, Clone, Default)]
pub(super) struct OsStatusWriter {
    /// Writes have ended for good: the platform has its own writer.
    stopped: bool,
}

impl OsStatusWriter {
    /// The value a phase means for a BiosPost consumer.
    pub(super) fn value_for(phase: HostPhase) -> OsStatus {
        match phase {
            HostPhase::Working => OsStatus::Standby,
            HostPhase::FirmwareInit | HostPhase::Sleeping | HostPhase::Off | HostPhase::Unknown => {
                OsStatus::Inactive
            }
        }
    }

    /// We entered `phase`: write its value, unless writes have ended.
    pub(super) fn phase_entered(&mut self, phase: HostPhase, out: &mut Vec<Action>) {
        if !self.stopped {
            out.push(Action::SetOsStatus(Self::value_for(phase)));
        }
    }

    pub(super) fn outcome(&mut self, outcome: OsStatusOutcome, out: &mut Vec<Action>) {
        match outcome {
            OsStatusOutcome::Failed { value, error } => {
                if !self.stopped {
                    out.push(Action::OsStatusNote(OsStatusNote::Failed { value, error }));
                }
            }
            // Once: writes already queued may still report the same after the first.
            give_up => {
                if !self.stopped {
                    self.stopped = true;
                    out.push(Action::OsStatusNote(OsStatusNote::GaveUp(give_up)));
                }
            }
        }
    }
}
