//! The slow side effects of a transition: starting the per-state target, writing BootProgress
//! and saving the state file. Each runs in a task of its own, so nothing they wait on —
//! systemd, the host state manager, the flash — can hold up the announcements that move the
//! gate (the executor sends those itself, in order, without waiting on any of these).
//!
//! Each effect keeps only its newest request (latest wins): when S5 arrives while S0's target
//! is still waiting to be sent, S0's is dropped and S5's is the one sent. What is sent is sent
//! in the order of the transitions, one call at a time, each with its own deadline.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openbmc_vocab::DbusEnum;
use openbmc_vocab::names::{bus, iface, path, prop};
use openbmc_vocab::systemd::{HostTarget, START_MODE_REPLACE};
use tokio::sync::watch;
use zbus::Connection;

use super::Feeder;
use crate::core::{Input, Persisted, ProgressOutcome, ProgressWrite};

/// First wait before a failed target start is tried again; doubled up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The handles the executor submits requests through. Dropping it ends the tasks.
pub struct SideEffects {
    target: watch::Sender<Option<HostTarget>>,
    progress: watch::Sender<Option<ProgressWrite>>,
    /// Save requests, numbered in the order they were made.
    persist: watch::Sender<Option<(u64, Persisted)>>,
    persist_seq: AtomicU64,
    /// The number of the newest request whose file is in place (written and renamed; the
    /// flush to the disk may still be under way).
    saved: watch::Receiver<u64>,
}

impl SideEffects {
    /// Start the three tasks on the current runtime. How a BootProgress write failed goes
    /// back to the core through `feeder` (whether to keep writing is the core's rule).
    pub fn spawn(
        conn: Connection,
        feeder: Feeder,
        state_file: PathBuf,
        deadline: Duration,
    ) -> Self {
        let (target, rx) = watch::channel(None);
        tokio::spawn(start_targets(conn.clone(), rx, deadline));
        let (progress, rx) = watch::channel(None);
        tokio::spawn(write_boot_progress(conn, feeder, rx, deadline));
        let (persist, rx) = watch::channel(None);
        let (saved_tx, saved) = watch::channel(0);
        tokio::spawn(save_state(state_file, rx, saved_tx, deadline));
        Self {
            target,
            progress,
            persist,
            persist_seq: AtomicU64::new(0),
            saved,
        }
    }

    pub fn start_target(&self, t: HostTarget) {
        self.target.send_replace(Some(t));
    }

    pub fn set_boot_progress(&self, w: ProgressWrite) {
        self.progress.send_replace(Some(w));
    }

    /// Ask for `p` to be saved; returns the request's number for [`SideEffects::saved`].
    pub fn persist(&self, p: Persisted) -> u64 {
        let seq = self.persist_seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.persist.send_replace(Some((seq, p)));
        seq
    }

    /// Done when request `seq` (or a newer one, which replaces it) is in place, or when saving
    /// has stopped for good.
    pub async fn saved(&self, seq: u64) {
        let mut rx = self.saved.clone();
        let _ = rx.wait_for(|s| *s >= seq).await;
    }
}

/// The next request: the newest value once it changes. `None` when the sender is gone.
async fn next<T: Copy>(rx: &mut watch::Receiver<Option<T>>) -> Option<T> {
    loop {
        rx.changed().await.ok()?;
        if let Some(v) = *rx.borrow_and_update() {
            return Some(v);
        }
    }
}

/// `StartUnit(target, "replace")`, one at a time, newest first.
///
/// A start that systemd refuses (or that finds no systemd) is tried again, with growing pauses,
/// until a newer transition replaces it. A start that gets no answer within the deadline is
/// not sent again: systemd has it queued and runs queued calls in the order they came, so a
/// second call would only start the target twice; the next target is sent behind it.
async fn start_targets(
    conn: Connection,
    mut rx: watch::Receiver<Option<HostTarget>>,
    deadline: Duration,
) {
    let mut pending = None;
    loop {
        let t = match pending.take() {
            Some(t) => t,
            None => match next(&mut rx).await {
                Some(t) => t,
                None => return,
            },
        };
        let mut pause = RETRY_FIRST;
        loop {
            let args = (t.unit(), START_MODE_REPLACE);
            let call = conn.call_method(
                Some(bus::SYSTEMD),
                path::SYSTEMD,
                Some(iface::SYSTEMD_MANAGER),
                "StartUnit",
                &args,
            );
            match tokio::time::timeout(deadline, call).await {
                Ok(Ok(_)) => {
                    log::info!(target_unit = t.unit(); "started {}", t.unit());
                    break;
                }
                Err(_) => {
                    log::warn!(
                        target_unit = t.unit();
                        "StartUnit({}) not answered within {} ms; left queued at systemd, \
                         not sent again", t.unit(), deadline.as_millis()
                    );
                    break;
                }
                Ok(Err(e)) => log::error!(
                    target_unit = t.unit();
                    "cannot start {}: {e}; trying again in {} s unless the state changes first",
                    t.unit(), pause.as_secs()
                ),
            }
            tokio::select! {
                newer = next(&mut rx) => {
                    match newer {
                        Some(n) => pending = Some(n),
                        None => return,
                    }
                    break;
                }
                () = tokio::time::sleep(pause) => pause = (pause * 2).min(RETRY_MAX),
            }
        }
    }
}

/// `BootProgress` (and `BootProgressLastUpdate`) on the host object, newest stage only. A
/// write that does not succeed is reported to the core as what it says about the host: the
/// value refused, the interface or the service not there, or no answer.
async fn write_boot_progress(
    conn: Connection,
    feeder: Feeder,
    mut rx: watch::Receiver<Option<ProgressWrite>>,
    deadline: Duration,
) {
    while let Some(w) = next(&mut rx).await {
        let stage = w.stage;
        let outcome = match set_host_prop(
            &conn,
            prop::BOOT_PROGRESS,
            stage.dbus_str().into(),
            deadline,
        )
        .await
        {
            Ok(()) => {
                log::debug!("BootProgress = {stage}");
                // phosphor-state-manager stamps LastUpdate itself; others may not, so we do
                // too. A refusal here is harmless.
                let t = daemon_kit::time::epoch_usec();
                if let Err(e) =
                    set_host_prop(&conn, prop::BOOT_PROGRESS_LAST_UPDATE, t.into(), deadline).await
                {
                    log::debug!("BootProgressLastUpdate not written: {e}");
                }
                continue;
            }
            Err(SetError::Timeout(ms)) => ProgressOutcome::Failed {
                stage,
                error: format!("no answer within {ms} ms"),
            },
            Err(SetError::Call(e)) => {
                let error = e.to_string();
                match classify(&e) {
                    Refused::Value => ProgressOutcome::Rejected { stage, error },
                    Refused::NoInterface => ProgressOutcome::NoInterface { error },
                    Refused::NoHost => ProgressOutcome::NoHost { error },
                    Refused::Other => ProgressOutcome::Failed { stage, error },
                }
            }
        };
        feeder.feed(Input::BootProgress {
            host_epoch: w.host_epoch,
            outcome,
        });
    }
}

#[derive(Debug, thiserror::Error)]
enum SetError {
    #[error("{0}")]
    Call(zbus::Error),
    #[error("no answer within {0} ms")]
    Timeout(u128),
}

async fn set_host_prop(
    conn: &Connection,
    name: &'static str,
    value: zbus::Variant<'static>,
    deadline: Duration,
) -> Result<(), SetError> {
    let args = (iface::BOOT_PROGRESS, name, value);
    let call = conn.call_method(
        Some(bus::STATE_HOST),
        path::HOST0,
        Some(iface::PROPERTIES),
        "Set",
        &args,
    );
    match tokio::time::timeout(deadline, call).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(SetError::Call(e)),
        Err(_) => Err(SetError::Timeout(deadline.as_millis())),
    }
}

/// Save the newest state on a blocking thread: write and rename (then tell the executor, which
/// may be waiting to announce an opening change), then flush. A flash that hangs holds up only
/// this task; the newest record is written once it answers again.
async fn save_state(
    file: PathBuf,
    mut rx: watch::Receiver<Option<(u64, Persisted)>>,
    saved: watch::Sender<u64>,
    slow: Duration,
) {
    while let Some((seq, p)) = next(&mut rx).await {
        let bytes = match serde_json::to_vec(&p) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("cannot encode state: {e}");
                saved.send_replace(seq);
                continue;
            }
        };
        let f = file.clone();
        let placed = blocking(&file, slow, "writing", move || {
            daemon_kit::state_file::replace(&f, &bytes)
        })
        .await;
        // Whatever the outcome, this request is finished: nobody waits on it any longer.
        saved.send_replace(seq);
        if placed {
            let f = file.clone();
            blocking(&file, slow, "flushing", move || {
                daemon_kit::state_file::sync(&f)
            })
            .await;
        }
    }
}

/// Run a file operation on a blocking thread, saying when it is slow and when it fails.
async fn blocking(
    file: &std::path::Path,
    slow: Duration,
    what: &str,
    op: impl FnOnce() -> std::io::Result<()> + Send + 'static,
) -> bool {
    let mut task = tokio::task::spawn_blocking(op);
    let done = match tokio::time::timeout(slow, &mut task).await {
        Ok(done) => done,
        Err(_) => {
            log::warn!(
                "{}: {what} the state is taking over {} ms (slow or stuck storage); \
                 announcements go on without it",
                file.display(),
                slow.as_millis()
            );
            task.await
        }
    };
    match done {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            log::warn!("{}: {what} the state failed: {e}", file.display());
            false
        }
        Err(e) => {
            log::warn!("{}: {what} the state: task failed: {e}", file.display());
            false
        }
    }
}

/// What a refused `Set` says about the host service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// This value is not acceptable; the interface is there.
    Value,
    /// The service is there without the object, interface or property.
    NoInterface,
    /// No service owns the name.
    NoHost,
    /// Anything else: says nothing about the interface.
    Other,
}

/// Sort a `Set` error by its D-Bus error name.
fn classify(e: &zbus::Error) -> Refused {
    let name = match e {
        zbus::Error::MethodError(name, _, _) => name.as_str().to_owned(),
        zbus::Error::FDO(fdo) => {
            use zbus::DBusError;
            fdo.name().as_str().to_owned()
        }
        _ => return Refused::Other,
    };
    refused_by_name(&name)
}

fn refused_by_name(name: &str) -> Refused {
    match name {
        "org.freedesktop.DBus.Error.InvalidArgs"
        | "xyz.openbmc_project.Common.Error.InvalidArgument"
        | "xyz.openbmc_project.sdbusplus.Error.InvalidEnumString" => Refused::Value,
        "org.freedesktop.DBus.Error.UnknownObject"
        | "org.freedesktop.DBus.Error.UnknownInterface"
        | "org.freedesktop.DBus.Error.UnknownProperty"
        | "org.freedesktop.DBus.Error.UnknownMethod" => Refused::NoInterface,
        "org.freedesktop.DBus.Error.ServiceUnknown"
        | "org.freedesktop.DBus.Error.NameHasNoOwner" => Refused::NoHost,
        _ => Refused::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::{Refused, refused_by_name};

    #[test]
    fn a_refused_value_is_not_a_missing_interface() {
        let cases = [
            ("org.freedesktop.DBus.Error.InvalidArgs", Refused::Value),
            (
                "xyz.openbmc_project.sdbusplus.Error.InvalidEnumString",
                Refused::Value,
            ),
            (
                "org.freedesktop.DBus.Error.UnknownInterface",
                Refused::NoInterface,
            ),
            (
                "org.freedesktop.DBus.Error.UnknownProperty",
                Refused::NoInterface,
            ),
            (
                "org.freedesktop.DBus.Error.UnknownObject",
                Refused::NoInterface,
            ),
            ("org.freedesktop.DBus.Error.ServiceUnknown", Refused::NoHost),
            ("org.freedesktop.DBus.Error.NameHasNoOwner", Refused::NoHost),
            ("org.freedesktop.DBus.Error.Failed", Refused::Other),
        ];
        for (name, want) in cases {
            assert_eq!(refused_by_name(name), want, "{name}");
        }
    }
}
