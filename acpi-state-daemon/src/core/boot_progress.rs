//! `BootProgress` on the host object: which stage to write, and when to stop and start again.
//!
//! * A stage is written only when it changes.
//! * A host service without `Boot.Progress` (x86-power-control has none), or no host service
//!   at all, stops the writes, with one warning, until a host service appears again: a new
//!   owner of `xyz.openbmc_project.State.Host` may implement it, and it then gets the newest
//!   stage. A service without it is tried, and warned about, once per appearance.
//! * A value the host refuses (one stage it does not take) or a call that fails or is not
//!   answered is logged; the next stage is still written.
//!
//! Each write carries the number of the host service it was meant for (counting its
//! appearances, 0 before the first), so an outcome from a service that has since been
//! replaced is not taken as the new one's. A write made before the first appearance (the
//! first stage is decided as soon as chassis power is read, perhaps before the host service's
//! state is) is answered by whoever owns the name. If a service answered that it lacks the
//! interface, that service is the first to appear: the input watch follows the name's owner
//! from before it reads it, so a replacement after that shows as a departure and an arrival.
//! Its appearance therefore does not start the writes again: it was tried and warned about.

use openbmc_vocab::boot::ProgressStage;

use super::Action;

/// One `BootProgress` write for the edge to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressWrite {
    pub stage: ProgressStage,
    /// Which appearance of the host service this was meant for; its outcome carries it back.
    pub host_epoch: u64,
}

/// How a [`ProgressWrite`] ended, when it did not simply succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressOutcome {
    /// The host object refused this value (`InvalidArgs`): the interface is there.
    Rejected { stage: ProgressStage, error: String },
    /// No answer in time, or a failure that says nothing about the interface.
    Failed { stage: ProgressStage, error: String },
    /// The host service has no `Boot.Progress` (unknown interface, object or property).
    NoInterface { error: String },
    /// No host service on the bus.
    NoHost { error: String },
}

/// What to tell the journal about `BootProgress`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressNote {
    /// Writes stop until a host service appears: it has no `Boot.Progress`.
    NoInterface { error: String },
    /// Writes stop until a host service appears: there is none.
    NoHost { error: String },
    /// This stage was refused; later stages are still written.
    Rejected { stage: ProgressStage, error: String },
    /// This write failed or was not answered; later stages are still written.
    Failed { stage: ProgressStage, error: String },
    /// A host service appeared after writes had stopped: writing again, from this stage.
    Resumed(Option<ProgressStage>),
}

/// The `BootProgress` part of the core's state.
#[derive(Debug, Clone, Default)]
pub(super) struct BootProgress {
    /// The newest stage decided, written or not.
    wanted: Option<ProgressStage>,
    /// Writes are stopped until the host service's appearance with this number: the one after
    /// the service that refused, or after the moment there was none.
    stopped_until: Option<u64>,
    /// How often a host service has appeared.
    host_epoch: u64,
}

impl BootProgress {
    /// The newest stage is `stage`: write it, unless it is already the newest or writes are
    /// stopped (then it waits for a host service).
    pub(super) fn want(&mut self, stage: ProgressStage, out: &mut Vec<Action>) {
        if self.wanted == Some(stage) {
            return;
        }
        self.wanted = Some(stage);
        if self.stopped_until.is_none() {
            out.push(self.write(stage));
        }
    }

    /// A host service appeared (at start, or after one left).
    pub(super) fn host_appeared(&mut self, out: &mut Vec<Action>) {
        self.host_epoch += 1;
        // Not yet the appearance writes wait for: this is the service that refused before it
        // was first seen, and it has been warned about.
        if self.stopped_until.is_some_and(|n| self.host_epoch < n) {
            return;
        }
        if self.stopped_until.take().is_some() {
            out.push(Action::BootProgressNote(ProgressNote::Resumed(self.wanted)));
            if let Some(stage) = self.wanted {
                out.push(self.write(stage));
            }
        }
    }

    pub(super) fn outcome(
        &mut self,
        host_epoch: u64,
        outcome: ProgressOutcome,
        out: &mut Vec<Action>,
    ) {
        // Which appearance of a host service may take writes again.
        let (until, note) = match outcome {
            ProgressOutcome::Rejected { stage, error } => {
                out.push(Action::BootProgressNote(ProgressNote::Rejected {
                    stage,
                    error,
                }));
                return;
            }
            ProgressOutcome::Failed { stage, error } => {
                out.push(Action::BootProgressNote(ProgressNote::Failed {
                    stage,
                    error,
                }));
                return;
            }
            // A service answered, so one was there: before the first appearance, the one
            // that first appears (see the module doc). The next one after it may have it.
            ProgressOutcome::NoInterface { error } => {
                (host_epoch.max(1) + 1, ProgressNote::NoInterface { error })
            }
            // Nobody there after appearance `host_epoch`: the next one may have it.
            ProgressOutcome::NoHost { error } => (host_epoch + 1, ProgressNote::NoHost { error }),
        };
        if until <= self.host_epoch {
            // About a host service that has since been replaced: this says nothing about the
            // one there now, which has not been given the newest stage yet.
            if self.stopped_until.is_none()
                && let Some(stage) = self.wanted
            {
                out.push(self.write(stage));
            }
            return;
        }
        // One note per stop; a second only for news: a service that came after a "no host"
        // answer, and lacks the interface.
        if self.stopped_until.is_none_or(|n| n < until) {
            self.stopped_until = Some(until);
            out.push(Action::BootProgressNote(note));
        }
    }

    /// For the model tests: the host service an outcome must name to count.
    #[cfg(test)]
    pub(super) fn host_epoch(&self) -> u64 {
        self.host_epoch
    }

    fn write(&self, stage: ProgressStage) -> Action {
        Action::SetBootProgress(ProgressWrite {
            stage,
            host_epoch: self.host_epoch,
        })
    }
}
