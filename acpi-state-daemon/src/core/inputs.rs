//! How each input moves the state: chassis power, host state, POST_COMPLETE, POST codes and
//! writes to our ACPI properties.

use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::acpigate::HostPhase;
use openbmc_vocab::state::{ChassisPowerState, HostState, OsStatus};

use super::{AcpiCore, Action, Now, Reason, Refusal};

impl AcpiCore {
    fn power_known_off(&self) -> bool {
        match self.chassis {
            Some(c) => !c.is_on(),
            // Host state stands in for chassis power only where the platform has no chassis.
            None => !self.chassis_seen && matches!(self.host, Some(HostState::Off)),
        }
    }

    pub(super) fn on_write(
        &mut self,
        now: Now,
        sys: Option<AcpiState>,
        dev: Option<AcpiState>,
        out: &mut Vec<Action>,
    ) -> Result<(), Refusal> {
        // Validate everything before changing anything.
        if let Some(s) = sys
            && self.power_known_off()
            && matches!(
                HostPhase::for_state(s),
                HostPhase::Working | HostPhase::FirmwareInit | HostPhase::Sleeping
            )
        {
            return Err(Refusal::PowerOff(s));
        }
        let dev_changed = dev.is_some_and(|d| d != self.dev);
        if let Some(d) = dev {
            self.dev = d;
        }
        match sys {
            Some(s) if s != self.sys => {
                self.transition(now, s, Reason::HostWrite, out);
                if dev_changed {
                    // transition() published sys; add dev.
                    if let Some(Action::PublishAcpi { dev: d, .. }) = out
                        .iter_mut()
                        .find(|a| matches!(a, Action::PublishAcpi { .. }))
                    {
                        *d = Some(self.dev);
                    }
                }
            }
            _ if dev_changed => {
                out.push(Action::Persist(self.persisted_record()));
                out.push(Action::PublishAcpi {
                    sys: None,
                    dev: Some(self.dev),
                });
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) fn on_chassis(
        &mut self,
        now: Now,
        state: Option<ChassisPowerState>,
        last_change_ms: Option<u64>,
        out: &mut Vec<Action>,
    ) {
        let prev = self.chassis;
        self.chassis = state;
        let Some(state) = state else {
            // The chassis service went away: keep what we know, it is still the best guess.
            return;
        };
        let first = !self.chassis_seen;
        self.chassis_seen = true;
        if first {
            self.derive_at_start(now, state, last_change_ms, out);
            return;
        }
        match (prev.map(ChassisPowerState::is_on), state.is_on()) {
            (_, false) => {
                if self.phase != HostPhase::Off {
                    self.transition(now, AcpiState::S5G2, Reason::ChassisOff, out);
                }
            }
            (Some(false), true) => {
                self.transition(now, AcpiState::S2D2, Reason::ChassisOn, out);
            }
            // The service came back after vanishing: power may have changed meanwhile.
            (None, true) => {
                if matches!(self.phase, HostPhase::Off | HostPhase::Unknown) {
                    self.transition(now, AcpiState::S2D2, Reason::ChassisOn, out);
                }
            }
            (Some(true), true) => {}
        }
    }

    fn derive_at_start(
        &mut self,
        now: Now,
        state: ChassisPowerState,
        last_change_ms: Option<u64>,
        out: &mut Vec<Action>,
    ) {
        if !state.is_on() {
            if self.phase != HostPhase::Off {
                self.transition(now, AcpiState::S5G2, Reason::ChassisOffAtStart, out);
            }
            return;
        }
        // Power is on. Trust the saved state only if it is a powered state and power has not
        // changed since it was saved (when the chassis tells us when it last changed).
        if let Some(p) = self.persisted.take() {
            let powered = HostPhase::for_state(p.sys).host_powered()
                || HostPhase::for_state(p.sys) == HostPhase::Sleeping;
            let unchanged_since =
                last_change_ms.is_none_or(|ms| ms.saturating_mul(1000) <= p.since_usec);
            let os_agrees = match (HostPhase::for_state(p.sys), self.os) {
                (HostPhase::Working, Some(os)) => os.post_complete(),
                (HostPhase::FirmwareInit, Some(os)) => !os.post_complete(),
                _ => true,
            };
            if powered && unchanged_since && os_agrees {
                self.transition(now, p.sys, Reason::RestoredPersisted, out);
                return;
            }
        }
        if self.policy.post_complete_means_working && self.os.is_some_and(OsStatus::post_complete) {
            self.transition(
                now,
                AcpiState::S0G0D0,
                Reason::PowerOnAtStartPostComplete,
                out,
            );
        } else if self.phase != HostPhase::FirmwareInit {
            self.transition(now, AcpiState::S2D2, Reason::PowerOnAtStartUnknown, out);
        }
    }

    pub(super) fn on_host(&mut self, now: Now, h: Option<HostState>, out: &mut Vec<Action>) {
        let prev = self.host;
        self.host = h;
        // A host service arriving (at start or after one left) may be a new owner of the name
        // that implements Boot.Progress where the last one did not.
        if prev.is_none() && h.is_some() && self.policy.boot_progress {
            self.progress.host_appeared(out);
        }
        // Chassis power is the better input; host state only stands in where it is absent.
        if self.chassis_seen {
            return;
        }
        let on = |s: HostState| {
            matches!(
                s,
                HostState::Running
                    | HostState::TransitioningToRunning
                    | HostState::Quiesced
                    | HostState::DiagnosticMode
            )
        };
        match h {
            Some(HostState::Off) if self.phase != HostPhase::Off => {
                self.transition(now, AcpiState::S5G2, Reason::HostOff, out);
            }
            Some(s)
                if on(s)
                    && !prev.is_some_and(on)
                    && !matches!(self.phase, HostPhase::Working | HostPhase::FirmwareInit) =>
            {
                self.transition(now, AcpiState::S2D2, Reason::HostOn, out);
            }
            _ => {}
        }
    }

    pub(super) fn on_os(&mut self, now: Now, os: Option<OsStatus>, out: &mut Vec<Action>) {
        let prev = self.os;
        self.os = os;
        let (Some(prev), Some(os)) = (prev, os) else {
            return;
        };
        let power_on = self.chassis.is_some_and(ChassisPowerState::is_on)
            || (!self.chassis_seen && !self.power_known_off() && self.host.is_some());
        if !power_on {
            return;
        }
        match (prev.post_complete(), os.post_complete()) {
            (true, false) if self.phase != HostPhase::FirmwareInit => {
                self.transition(now, AcpiState::S2D2, Reason::PostCompleteDeasserted, out);
            }
            (false, true)
                if self.policy.post_complete_means_working
                    && self.phase == HostPhase::FirmwareInit =>
            {
                self.transition(now, AcpiState::S0G0D0, Reason::PostComplete, out);
            }
            _ => {}
        }
    }

    pub(super) fn on_post_code(&mut self, now: Now, code: u64, out: &mut Vec<Action>) {
        // The first read after we start, or after postd (re)appears, is whatever code the host
        // wrote last, maybe long ago (postd keeps it): taken as news it would close the gate on
        // a running host at every restart of either daemon.
        if !self.post_code_baseline {
            self.post_code_baseline = true;
            return;
        }
        if self.power_known_off() {
            return;
        }
        match self.phase {
            // While POST_COMPLETE is asserted it is the reliable warm-reset signal (a reset
            // deasserts it first); some OSes write port 80 at run time, so codes alone must not
            // close the gate then.
            HostPhase::Working
                if self.policy.post_codes_mean_firmware_init
                    && !self.os.is_some_and(OsStatus::post_complete) =>
            {
                self.transition(now, AcpiState::S2D2, Reason::PostCodeWhileWorking, out);
            }
            HostPhase::Unknown if self.policy.post_codes_mean_firmware_init => {
                self.transition(now, AcpiState::S2D2, Reason::PostCodeWhileUnknown, out);
            }
            _ => {}
        }
        if self.phase == HostPhase::FirmwareInit
            && let Some(stage) = self.policy.stage_for_post_code(code)
        {
            self.set_progress(stage, out);
        }
    }
}
