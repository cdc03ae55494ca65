//! `BootProgress` on the host object: which stage to write, and when to stop and start again.
//!
//! * A stage is written only when it changes.
//! * A host service without `Boot.Progress` (x86-power-control has none), or no host service
//!   at all, stops the writes, with one warning, until a host service appears again: a new
//!   owner of `xyz.openbmc_project.State.Host` may implement it, and it then gets the newest
//!   stage.
//! * A value the host refuses (one stage it does not take) or a call that fails or is not
//!   answered is logged; the next stage is still written.
//!
//! Each write carries the number of the host service it was meant for (counting its
//! appearances), so an outcome from a service that has since been replaced is not taken as
//! the new one's.

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
    /// Writes are stopped until a host service appears.
    stopped: bool,
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
        if !self.stopped {
            out.push(self.write(stage));
        }
    }

    /// A host service appeared (at start, or after one left).
    pub(super) fn host_appeared(&mut self, out: &mut Vec<Action>) {
        self.host_epoch += 1;
        if self.stopped {
            self.stopped = false;
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
        let stop = match outcome {
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
            ProgressOutcome::NoInterface { error } => ProgressNote::NoInterface { error },
            ProgressOutcome::NoHost { error } => ProgressNote::NoHost { error },
        };
        if host_epoch != self.host_epoch {
            // Meant for a host service that has since been replaced: this says nothing about
            // the one there now, which has not been given the newest stage yet.
            if !self.stopped
                && let Some(stage) = self.wanted
            {
                out.push(self.write(stage));
            }
            return;
        }
        if !self.stopped {
            self.stopped = true;
            out.push(Action::BootProgressNote(stop));
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
