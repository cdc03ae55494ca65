//! One transition: what is announced, saved, started and logged, in which order.

use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::acpigate::HostPhase;
use openbmc_vocab::boot::ProgressStage;
use openbmc_vocab::systemd::HostTarget;

use super::{AcpiCore, Action, Now, Persisted, Reason};

impl AcpiCore {
    /// Move to `to`: publish, persist, start the target, update BootProgress and timeline.
    pub(super) fn transition(
        &mut self,
        now: Now,
        to: AcpiState,
        reason: Reason,
        out: &mut Vec<Action>,
    ) {
        let from = self.sys;
        if from == to {
            return;
        }
        self.sys = to;
        let phase = HostPhase::for_state(to);
        let old_phase = self.phase;
        if phase != old_phase {
            self.phase = phase;
            self.reason = Some(reason);
            self.since_usec = now.wall_usec;
            self.generation += 1;
        }
        let persist = Action::Persist(Persisted {
            sys: self.sys,
            dev: self.dev,
            since_usec: now.wall_usec,
            generation: self.generation,
        });
        let mut announce = vec![Action::PublishAcpi {
            sys: Some(to),
            dev: None,
        }];
        if phase != old_phase {
            // Phase first: it is what closes the gate.
            announce.insert(0, Action::PublishPhase(self.phase_view()));
        }
        if phase == HostPhase::Working {
            // Saved before it is announced: a crash right after the announcement must not
            // bring back the older, closed state (the gate would shut on a running host).
            out.push(persist);
            out.extend(announce);
        } else {
            // Announced before it is saved: a write to a slow or busy flash must never hold
            // the gate open while the firmware may already be reading SPDs. A crash between the
            // two leaves the older record, which a restart trusts only while chassis power,
            // its last change and POST_COMPLETE all still agree with it.
            out.extend(announce);
            out.push(persist);
        }
        out.push(Action::LogTransition {
            from,
            to,
            reason,
            phase,
            generation: self.generation,
        });
        // The state derived at start is a baseline: the transition into it happened while we
        // were not watching, or was recorded before the restart.
        if self.policy.sel_records && self.derived {
            out.push(Action::AddSelRecord(to));
        }
        self.derived = true;
        if phase != old_phase {
            self.track_boot(now, old_phase, phase, out);
            match phase {
                HostPhase::FirmwareInit => self.set_progress(self.policy.firmware_init_stage, out),
                HostPhase::Working => self.set_progress(ProgressStage::OsRunning, out),
                HostPhase::Off => self.set_progress(ProgressStage::Unspecified, out),
                HostPhase::Sleeping | HostPhase::Unknown => {}
            }
            if self.policy.write_os_status {
                self.os_writer.phase_entered(phase, out);
            }
        }
        if let Some(t) = HostTarget::for_state(to)
            && self.last_target != Some(t)
        {
            self.last_target = Some(t);
            out.push(Action::StartTarget(t));
        }
    }

    pub(super) fn persisted_record(&self) -> Persisted {
        Persisted {
            sys: self.sys,
            dev: self.dev,
            since_usec: self.since_usec,
            generation: self.generation,
        }
    }

    pub(super) fn set_progress(&mut self, stage: ProgressStage, out: &mut Vec<Action>) {
        if self.policy.boot_progress {
            self.progress.want(stage, out);
        }
    }
}
