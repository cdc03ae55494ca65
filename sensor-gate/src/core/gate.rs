//! The gate itself: following the host phase, settling, opening and closing, and ignoring
//! stale phase updates.

use std::time::Instant;

use openbmc_vocab::acpigate::HostPhase;

use super::{Action, Core, Now, PhaseUpdate};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Gate {
    Closed,
    Settling { opens_at: Instant },
    Open,
}

impl Core {
    pub(super) fn on_phase_source_lost(&mut self, now: Now, out: &mut Vec<Action>) {
        // A restarted source may count lower than the one that left: acpi-state-daemon carries
        // on from its state file, but starts over without one (or another daemon may own the
        // name).
        self.generation = None;
        self.on_phase(
            now,
            PhaseUpdate {
                phase: HostPhase::Unknown,
                since_us: now.wall_usec,
                generation: None,
                reason: "host phase source left the bus".to_owned(),
            },
            out,
        );
    }

    pub(super) fn on_phase(&mut self, now: Now, u: PhaseUpdate, out: &mut Vec<Action>) {
        if let (Some(seen), Some(got)) = (self.generation, u.generation)
            && got < seen
        {
            out.push(Action::Log {
                warn: false,
                message: format!(
                    "ignoring out-of-order phase update {} (generation {got} < {seen})",
                    u.phase
                ),
            });
            return;
        }
        // The generation counts phase changes. Working again with a higher generation means
        // the host left Working and came back between two updates we saw (a reset faster than
        // the updates reached us): the firmware may have touched the bus meanwhile, so this is
        // a fresh entry into Working, not a repeat.
        let missed_change = u.phase == HostPhase::Working
            && self.phase == HostPhase::Working
            && matches!((self.generation, u.generation), (Some(seen), Some(got)) if got > seen);
        if missed_change {
            out.push(Action::Log {
                warn: true,
                message: format!(
                    "host phase generation went from {} to {} while working: a reset came and \
                     went unseen; closing the gate and settling again",
                    self.generation.unwrap_or_default(),
                    u.generation.unwrap_or_default()
                ),
            });
        }
        if u.generation.is_some() {
            self.generation = u.generation;
        }
        let changed = u.phase != self.phase;
        self.phase = u.phase;
        self.phase_since_us = u.since_us;
        self.phase_reason = u.reason;
        self.status.phase = u.phase;
        if !self.policy.gate_enabled {
            return;
        }
        if u.phase == HostPhase::Working && !missed_change {
            if self.gate == Gate::Closed {
                self.settle(now, out);
            }
            // Working → Working (a repeated update) changes nothing.
            return;
        }
        let was_open = self.gate == Gate::Open;
        let was_closed = self.gate == Gate::Closed;
        self.gate = Gate::Closed;
        self.status.open = false;
        self.status.reason = if self.phase_reason.is_empty() {
            format!("host phase {}", self.phase)
        } else {
            format!("host phase {} ({})", self.phase, self.phase_reason)
        };
        if was_open {
            // First, before the log line of a missed change or anything else already listed:
            // nothing the edge does for this event may come before the latch closes.
            out.insert(0, Action::CloseBus);
            self.status.closes += 1;
            self.status.since_us = now.wall_usec;
            if self.phase_since_us != 0 {
                self.status.last_close_latency_us =
                    now.wall_usec.saturating_sub(self.phase_since_us);
            }
        }
        if changed || !was_closed {
            self.mark_gated(out);
        }
        self.update_fan_hold(out);
        if missed_change {
            self.settle(now, out);
        }
    }

    /// Working, gate closed: open after the settle delay.
    fn settle(&mut self, now: Now, out: &mut Vec<Action>) {
        if self.policy.settle.is_zero() {
            self.open(now, out);
        } else {
            self.gate = Gate::Settling {
                opens_at: now.mono + self.policy.settle,
            };
            self.status.reason = format!(
                "host working, settling for {} ms",
                self.policy.settle.as_millis()
            );
        }
    }

    /// When a settling gate opens.
    pub(super) fn settle_deadline(&self) -> Option<Instant> {
        match self.gate {
            Gate::Settling { opens_at } => Some(opens_at),
            Gate::Closed | Gate::Open => None,
        }
    }

    pub(super) fn open_if_settled(&mut self, now: Now, out: &mut Vec<Action>) {
        if let Gate::Settling { opens_at } = self.gate
            && now.mono >= opens_at
        {
            self.open(now, out);
        }
    }

    fn open(&mut self, now: Now, out: &mut Vec<Action>) {
        self.gate = Gate::Open;
        self.window += 1;
        self.status.open = true;
        self.status.since_us = now.wall_usec;
        self.status.reason = format!("host working for {} ms", self.policy.settle.as_millis());
        self.restart_sensors(now);
        self.release_fans_on_open(out);
        self.start_due_reads(now, out);
    }
}
