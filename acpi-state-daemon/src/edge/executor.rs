//! Carrying out the core's actions, one batch at a time, in order.
//!
//! The announcements (PropertiesChanged of the phase, the ACPI properties and the timeline)
//! go out here, at once: they are what moves the gate. Everything slow — target starts,
//! BootProgress, the state file — is handed to [`SideEffects`], which runs it in tasks of its
//! own with deadlines, so a stalled systemd, state manager or flash never delays the next
//! announcement. No failure changes what state we report: failures are logged, and the only
//! one fed back to the core is a BootProgress write's (whether to keep writing is its rule).

use std::collections::HashMap;
use std::time::Duration;

use daemon_kit::supervisor::StallSwitch;
use openbmc_vocab::DbusEnum;
use openbmc_vocab::acpigate;
use openbmc_vocab::names::{bus, iface, path, prop};
use tokio::sync::mpsc::{Receiver, UnboundedReceiver};
use tokio::sync::oneshot;
use zbus::Connection;
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;

use super::dbus::Batch;
use super::side_effects::SideEffects;
use crate::core::{Action, OsStatusNote, OsStatusOutcome, ProgressNote, Timeline};

/// How long an opening change waits for its state file to be written (renamed into place, not
/// flushed) before it is announced anyway. A healthy flash takes microseconds; a stuck one
/// must not keep the gate shut for long either, and any newer input ends the wait at once.
pub const SAVE_FIRST_MAX: Duration = Duration::from_millis(200);

pub struct Executor {
    conn: Connection,
    effects: SideEffects,
}

impl Executor {
    pub fn new(conn: Connection, effects: SideEffects) -> Self {
        Self { conn, effects }
    }

    /// Carry out batches until the senders are gone. Each watchdog probe from `probes` is
    /// answered between batches, so it shows the loop is moving; `stall` stops the loop for
    /// good (the machine tier's watchdog test).
    pub async fn run(
        self,
        mut rx: UnboundedReceiver<Batch>,
        mut probes: Receiver<oneshot::Sender<()>>,
        mut stall: StallSwitch,
    ) {
        // A batch that arrived while an opening change waited for its save.
        let mut next: Option<Batch> = None;
        loop {
            let batch = match next.take() {
                Some(b) => b,
                None => tokio::select! {
                    biased;
                    b = rx.recv() => match b {
                        Some(b) => b,
                        None => return,
                    },
                    Some(done) = probes.recv() => {
                        let _ = done.send(());
                        continue;
                    }
                    () = stall.pulled() => std::future::pending().await,
                },
            };
            let mut actions = batch.actions.into_iter().peekable();
            while let Some(action) = actions.next() {
                let Action::Persist(p) = action else {
                    self.carry_out(action).await;
                    continue;
                };
                let seq = self.effects.persist(p);
                // The core puts the save ahead of the announcements only for an opening
                // change (a crash right after announcing S0 must not restore the closed state
                // on a running host): wait for it, briefly, unless newer input is waiting.
                let save_first = actions.peek().is_some_and(Action::is_announcement);
                if save_first && next.is_none() {
                    tokio::select! {
                        () = self.effects.saved(seq) => {}
                        () = tokio::time::sleep(SAVE_FIRST_MAX) => log::warn!(
                            "the state file was not written within {} ms; announcing anyway",
                            SAVE_FIRST_MAX.as_millis()
                        ),
                        b = rx.recv() => next = b,
                    }
                }
            }
            if let Some(line) = batch.cause {
                log::debug!("{line} (carried out)");
            }
        }
    }

    /// One PropertiesChanged on our object, with the values given (never re-read from the
    /// core: it may already have moved on to a later state).
    async fn announce(&self, interface: &'static str, changed: HashMap<&str, zbus::Variant<'_>>) {
        if changed.is_empty() {
            return;
        }
        let res = async {
            let emitter = SignalEmitter::new(&self.conn, path::ACPI_POWER_STATE)?;
            zbus::fdo::Properties::properties_changed(
                &emitter,
                InterfaceName::try_from(interface)?,
                changed,
                std::borrow::Cow::Borrowed(&[]),
            )
            .await
        }
        .await;
        log_err(interface, res);
    }

    async fn carry_out(&self, action: Action) {
        match action {
            Action::PublishAcpi { sys, dev } => {
                // The only PropertiesChanged for these properties, written over D-Bus or not:
                // the object does not announce its own writes.
                let mut changed = HashMap::new();
                if let Some(s) = sys {
                    changed.insert(prop::SYS_ACPI_STATUS, zbus::Variant::from(s.dbus_str()));
                }
                if let Some(d) = dev {
                    changed.insert(prop::DEV_ACPI_STATUS, zbus::Variant::from(d.dbus_str()));
                }
                self.announce(iface::ACPI_POWER_STATE, changed).await;
            }
            Action::PublishPhase(v) => {
                // All four together, so a consumer sees the new phase with its reason, time and
                // generation (and needs one wake-up, not four).
                let changed = HashMap::from([
                    (
                        acpigate::prop::PHASE,
                        zbus::Variant::from(v.phase.dbus_str()),
                    ),
                    (acpigate::prop::REASON, zbus::Variant::from(v.reason)),
                    (acpigate::prop::SINCE, zbus::Variant::from(v.since_usec)),
                    (
                        acpigate::prop::GENERATION,
                        zbus::Variant::from(v.generation),
                    ),
                ]);
                self.announce(iface::ACPIGATE_HOST_PHASE, changed).await;
            }
            Action::PublishTimeline(t) => {
                let changed = HashMap::from([
                    (
                        acpigate::prop::BOOT_COUNT,
                        zbus::Variant::from(t.boot_count),
                    ),
                    (
                        acpigate::prop::FIRMWARE_INIT_USEC,
                        zbus::Variant::from(t.firmware_init_usec),
                    ),
                    (
                        acpigate::prop::TIME_TO_WORKING_USEC,
                        zbus::Variant::from(t.time_to_working_usec),
                    ),
                    (
                        acpigate::prop::GATE_WINDOWS,
                        zbus::Variant::from(t.gate_windows),
                    ),
                ]);
                self.announce(iface::ACPIGATE_HOST_PHASE, changed).await;
            }
            Action::StartTarget(t) => self.effects.start_target(t),
            Action::SetBootProgress(w) => self.effects.set_boot_progress(w),
            Action::BootProgressNote(note) => log_progress_note(note),
            Action::SetOsStatus(v) => self.effects.set_os_status(v),
            Action::OsStatusNote(note) => log_os_status_note(note),
            Action::AddSelRecord(state) => self.effects.add_sel_record(state),
            Action::Persist(p) => {
                self.effects.persist(p);
            }
            Action::LogTransition {
                from,
                to,
                reason,
                phase,
                generation,
            } => {
                log::info!(
                    from = from.short(), to = to.short(), phase = phase.short(),
                    reason = reason.text(), generation = generation;
                    "ACPI state {} -> {} ({})", from.short(), to.short(), reason
                );
            }
            Action::LogBootSummary(t) => log_boot_summary(t),
        }
    }
}

/// The one structured journal line per boot a fleet can search for slow or repeated POSTs.
fn log_boot_summary(t: Timeline) {
    log::info!(
        boot_count = t.boot_count,
        firmware_init_usec = t.firmware_init_usec,
        time_to_working_usec = t.time_to_working_usec,
        gate_windows = t.gate_windows;
        "host reached S0: firmware init {:.3} s, power-on to S0 {:.3} s, {} gate window(s)",
        t.firmware_init_usec as f64 / 1e6,
        t.time_to_working_usec as f64 / 1e6,
        t.gate_windows
    );
}

/// How BootProgress writes are going, in words an operator can act on.
fn log_progress_note(note: ProgressNote) {
    match note {
        ProgressNote::NoInterface { error } => log::warn!(
            "{} {} does not implement {} ({error}); BootProgress is not written until a host \
             service appears again (x86-power-control has no Boot.Progress; see README)",
            bus::STATE_HOST,
            path::HOST0,
            iface::BOOT_PROGRESS
        ),
        ProgressNote::NoHost { error } => log::warn!(
            "no {} on the bus ({error}); BootProgress is written once one appears",
            bus::STATE_HOST
        ),
        ProgressNote::Rejected { stage, error } => log::warn!(
            "{} refused BootProgress {stage} ({error}); later stages are still written",
            bus::STATE_HOST
        ),
        ProgressNote::Failed { stage, error } => {
            log::warn!("cannot set BootProgress to {stage}: {error}")
        }
        ProgressNote::Resumed(stage) => log::info!(
            "{} appeared: writing BootProgress again{}",
            bus::STATE_HOST,
            stage.map_or(String::new(), |s| format!(" ({s})"))
        ),
    }
}

/// How the `OperatingSystemState` writes are going (the give-up is said once, by the core).
fn log_os_status_note(note: OsStatusNote) {
    match note {
        OsStatusNote::GaveUp(OsStatusOutcome::PowerControl { owner }) => log::warn!(
            "{} {} is x86-power-control's ({owner} also owns {}): it drives {} from \
             POST_COMPLETE; not writing it (write_os_status is for platforms without a writer)",
            bus::STATE_HOST0,
            path::HOST0,
            bus::STATE_OPERATING_SYSTEM,
            prop::OPERATING_SYSTEM_STATE
        ),
        OsStatusNote::GaveUp(OsStatusOutcome::ReadOnly { error }) => log::warn!(
            "{} on {} {} cannot be written ({error}): another daemon owns it; not writing it \
             again (write_os_status is for platforms without a writer)",
            prop::OPERATING_SYSTEM_STATE,
            bus::STATE_HOST0,
            path::HOST0
        ),
        OsStatusNote::GaveUp(OsStatusOutcome::Failed { value, error })
        | OsStatusNote::Failed { value, error } => log::warn!(
            "cannot set {} to {value}: {error}; the next phase change is written as usual",
            prop::OPERATING_SYSTEM_STATE
        ),
    }
}

fn log_err(what: &str, r: zbus::Result<()>) {
    if let Err(e) = r {
        log::warn!("{what}: {e}");
    }
}
