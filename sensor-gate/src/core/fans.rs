//! The fan hold: pid-control's zones in manual mode at a fixed PWM while the gate is closed
//! in a hold phase, handed back when it opens; failed writes retried while still wanted.

use std::time::Instant;

use openbmc_vocab::acpigate::HostPhase;

use super::{Action, Core, Now};

/// One fan zone held while gated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSpec {
    pub zone: u32,
    /// PWM object names and the fixed target (0–255) written while held.
    pub pwms: Vec<(String, u8)>,
}

/// A fan command (what the edge writes on D-Bus).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FanCommand {
    /// `xyz.openbmc_project.Control.Mode.Manual` on pid-control's zone.
    ZoneManual { zone: u32, manual: bool },
    /// `xyz.openbmc_project.Control.FanPwm.Target` on a PWM object.
    PwmTarget { pwm: String, target: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FanState {
    InFlight,
    Applied,
    Failed { retry_at: Instant },
}

/// One write target (a zone or a PWM) and where its wanted command stands.
pub(super) struct FanSlot {
    /// The command currently wanted for this target (zone or PWM), if any.
    wanted: Option<FanCommand>,
    state: FanState,
}

impl FanSlot {
    /// Nothing wanted, nothing to do.
    pub(super) fn idle() -> Self {
        Self {
            wanted: None,
            state: FanState::Applied,
        }
    }
}

impl Core {
    pub(super) fn update_fan_hold(&mut self, out: &mut Vec<Action>) {
        // Unknown (e.g. the phase source died mid-boot) keeps a hold that is in place: the
        // last thing known was firmware init, and the fixed PWM is the safe side.
        let hold = self.policy.fan_hold_phases.contains(&self.phase)
            || (self.phase == HostPhase::Unknown && self.holding);
        if hold && !self.holding {
            self.holding = true;
            out.push(Action::Log {
                warn: false,
                message: format!(
                    "host phase {}: fan zones to manual at the fixed PWM while the gate is closed",
                    self.phase
                ),
            });
            self.want_zones(Some(true), out);
            let mut slot = self.zones.len();
            let mut cmds = Vec::new();
            for z in &self.zones {
                for (pwm, target) in &z.pwms {
                    cmds.push((
                        slot,
                        FanCommand::PwmTarget {
                            pwm: pwm.clone(),
                            target: *target,
                        },
                    ));
                    slot += 1;
                }
            }
            for (slot, c) in cmds {
                self.want(slot, Some(c), out);
            }
        } else if !hold && self.holding {
            self.holding = false;
            self.want_zones(Some(false), out);
            self.clear_pwms();
        }
    }

    /// The gate opened: hand the zones back. `Manual=false` is written at every open, held
    /// or not, so a daemon that died mid-hold does not leave the zones manual.
    pub(super) fn release_fans_on_open(&mut self, out: &mut Vec<Action>) {
        if self.holding {
            self.holding = false;
            out.push(Action::Log {
                warn: false,
                message: "gate open: handing the fans back to the fan controller".to_owned(),
            });
        }
        self.want_zones(Some(false), out);
    }

    fn clear_pwms(&mut self) {
        for slot in self.zones.len()..self.fans.len() {
            self.fans[slot].wanted = None;
            self.fans[slot].state = FanState::Applied;
        }
    }

    fn want_zones(&mut self, manual: Option<bool>, out: &mut Vec<Action>) {
        if manual == Some(false) {
            self.clear_pwms();
        }
        for i in 0..self.zones.len() {
            let cmd = manual.map(|m| FanCommand::ZoneManual {
                zone: self.zones[i].zone,
                manual: m,
            });
            self.want(i, cmd, out);
        }
    }

    fn want(&mut self, slot: usize, cmd: Option<FanCommand>, out: &mut Vec<Action>) {
        let f = &mut self.fans[slot];
        // Already wanted and in flight or applied: nothing to do. A failed one is sent again
        // now, since a phase change is a good moment to try.
        if f.wanted == cmd && matches!(f.state, FanState::InFlight | FanState::Applied) {
            return;
        }
        f.wanted = cmd.clone();
        match cmd {
            Some(c) => {
                f.state = FanState::InFlight;
                out.push(Action::Fan(c));
            }
            None => f.state = FanState::Applied,
        }
    }

    pub(super) fn on_fan_done(
        &mut self,
        now: Now,
        command: FanCommand,
        ok: bool,
        out: &mut Vec<Action>,
    ) {
        let Some(f) = self
            .fans
            .iter_mut()
            .find(|f| f.wanted.as_ref() == Some(&command))
        else {
            return; // superseded
        };
        if ok {
            f.state = FanState::Applied;
        } else {
            f.state = FanState::Failed {
                retry_at: now.mono + self.policy.fan_retry,
            };
            out.push(Action::Log {
                warn: true,
                message: format!(
                    "fan command {command:?} failed; the gate stays as it is, retrying in {} ms",
                    self.policy.fan_retry.as_millis()
                ),
            });
        }
    }

    /// The fan controller (re)created `zone`'s mode object. phosphor-pid-control clears and
    /// rebuilds every zone, `Manual=false`, when it starts and when it restarts its control
    /// loops (ca3d666e: `main.cpp` `restartControlLoops`, `pid/builder.cpp` `buildZones`,
    /// `pid/zone.hpp` `_manualMode`), and it does the latter 2 s after any sensor object under
    /// `/xyz/openbmc_project/sensors` is added or removed. A zone we hold would then run its
    /// loop on inputs that are unavailable by design, so it is held again: `Manual=true` and
    /// the zone's PWM targets, whatever their earlier writes' state. A zone we do not hold is
    /// left alone: rebuilt automatic is what we want of it.
    pub(super) fn on_zone_appeared(&mut self, zone: u32, out: &mut Vec<Action>) {
        if !self.holding {
            return;
        }
        let Some(index) = self.zones.iter().position(|z| z.zone == zone) else {
            return;
        };
        out.push(Action::Log {
            warn: true,
            message: format!(
                "the fan controller re-created zone {zone} in automatic mode during the hold: \
                 holding it again"
            ),
        });
        // Slots: one per zone, then one per PWM in zone order.
        let first_pwm = self.zones.len()
            + self.zones[..index]
                .iter()
                .map(|z| z.pwms.len())
                .sum::<usize>();
        let slots =
            std::iter::once(index).chain(first_pwm..first_pwm + self.zones[index].pwms.len());
        for slot in slots {
            let f = &mut self.fans[slot];
            if let Some(c) = f.wanted.clone() {
                f.state = FanState::InFlight;
                out.push(Action::Fan(c));
            }
        }
    }

    /// The earliest retry of a failed fan write.
    pub(super) fn fan_retry_deadline(&self) -> Option<Instant> {
        self.fans
            .iter()
            .filter_map(|f| match f.state {
                FanState::Failed { retry_at } => Some(retry_at),
                FanState::InFlight | FanState::Applied => None,
            })
            .min()
    }

    /// Send again every failed write whose retry time has come.
    pub(super) fn retry_failed_fans(&mut self, now: Now, out: &mut Vec<Action>) {
        for f in &mut self.fans {
            if let FanState::Failed { retry_at } = f.state
                && retry_at <= now.mono
                && let Some(c) = f.wanted.clone()
            {
                f.state = FanState::InFlight;
                out.push(Action::Fan(c));
            }
        }
    }
}
