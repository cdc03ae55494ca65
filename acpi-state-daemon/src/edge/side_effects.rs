//! The slow side effects of a transition: starting the per-state target, writing BootProgress
//! and `OperatingSystemState`, saving the state file, and adding SEL records. Each runs in a
//! task of its own, so nothing they wait on — systemd, the host state manager, sel-logger, the
//! flash — can hold up the announcements that move the gate (the executor sends those itself,
//! in order, without waiting on any of these).
//!
//! Each effect but one keeps only its newest request (latest wins): when S5 arrives while S0's
//! target is still waiting to be sent, S0's is dropped and S5's is the one sent. What is sent
//! is sent in the order of the transitions, one call at a time, each with its own deadline.
//! The exception is the SEL: every transition is a record, so its requests wait in one
//! ordered queue and none is dropped for a newer one.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openbmc_vocab::DbusEnum;
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::ipmi::GENERATOR_ID_BMC;
use openbmc_vocab::names::{bus, error, iface, method, path, prop};
use openbmc_vocab::state::OsStatus;
use openbmc_vocab::systemd::{HostTarget, START_MODE_REPLACE};
use tokio::sync::{mpsc, watch};
use zbus::Connection;

use super::Feeder;
use crate::core::{Input, OsStatusOutcome, Persisted, ProgressOutcome, ProgressWrite};

/// First wait before a failed target start is tried again; doubled up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The handles the executor submits requests through. Dropping it ends the tasks.
pub struct SideEffects {
    target: watch::Sender<Option<HostTarget>>,
    progress: watch::Sender<Option<ProgressWrite>>,
    os_status: watch::Sender<Option<OsStatus>>,
    /// SEL records, in the order of the transitions; none is ever replaced. Unbounded: one
    /// entry per ACPI transition, which hosts make a few times per boot, while a sel-logger
    /// that never answers still takes one off per call deadline.
    sel: mpsc::UnboundedSender<AcpiState>,
    /// Save requests, numbered in the order they were made.
    persist: watch::Sender<Option<(u64, Persisted)>>,
    persist_seq: AtomicU64,
    /// The number of the newest request whose file is in place (written and renamed; the
    /// flush to the disk may still be under way).
    saved: watch::Receiver<u64>,
}

impl SideEffects {
    /// Start the five tasks on the current runtime (targets, BootProgress,
    /// OperatingSystemState, SEL records, the state file). How a BootProgress or
    /// OperatingSystemState write failed goes back to the core through `feeder` (whether to
    /// keep writing is the core's rule).
    pub fn spawn(
        conn: Connection,
        feeder: Feeder,
        state_file: PathBuf,
        deadline: Duration,
    ) -> Self {
        let (target, rx) = watch::channel(None);
        tokio::spawn(start_targets(conn.clone(), rx, deadline));
        let (progress, rx) = watch::channel(None);
        tokio::spawn(write_boot_progress(
            conn.clone(),
            feeder.clone(),
            rx,
            deadline,
        ));
        let (os_status, rx) = watch::channel(None);
        tokio::spawn(write_os_status(conn.clone(), feeder, rx, deadline));
        let (sel, rx) = mpsc::unbounded_channel();
        tokio::spawn(add_sel_records(conn, rx, deadline));
        let (persist, rx) = watch::channel(None);
        let (saved_tx, saved) = watch::channel(0);
        tokio::spawn(save_state(state_file, rx, saved_tx, deadline));
        Self {
            target,
            progress,
            os_status,
            sel,
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

    pub fn set_os_status(&self, value: OsStatus) {
        self.os_status.send_replace(Some(value));
    }

    /// Queue a SEL record for entering `state` (after every one queued before it).
    pub fn add_sel_record(&self, state: AcpiState) {
        // The task outlives the executor's use of us; a send error means we are stopping.
        let _ = self.sel.send(state);
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
            match within(deadline, call).await {
                Ok(_) => {
                    log::info!(target_unit = t.unit(); "started {}", t.unit());
                    break;
                }
                Err(CallError::Timeout(_)) => {
                    log::warn!(
                        target_unit = t.unit();
                        "StartUnit({}) not answered within {} ms; left queued at systemd, \
                         not sent again", t.unit(), deadline.as_millis()
                    );
                    break;
                }
                Err(CallError::Call(e)) => log::error!(
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
            Err(CallError::Timeout(ms)) => ProgressOutcome::Failed {
                stage,
                error: format!("no answer within {ms} ms"),
            },
            Err(CallError::Call(e)) => {
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

/// `OperatingSystemState` on host 0, newest value only, written to the name dbus-sensors reads
/// it from (`xyz.openbmc_project.State.Host0`). Before each write: whether that name's owner
/// also owns `xyz.openbmc_project.State.OperatingSystem` — x86-power-control owns both on one
/// connection and drives the property from POST_COMPLETE (942e92b4, `src/power_control.cpp`),
/// so the platform has its writer and it is not us. What a failed write says goes back to the
/// core (whether to keep writing is its rule).
async fn write_os_status(
    conn: Connection,
    feeder: Feeder,
    mut rx: watch::Receiver<Option<OsStatus>>,
    deadline: Duration,
) {
    while let Some(value) = next(&mut rx).await {
        let outcome = if let Some(owner) = power_control_owner(&conn, deadline).await {
            OsStatusOutcome::PowerControl { owner }
        } else {
            match set_prop(
                &conn,
                bus::STATE_HOST0,
                iface::OS_STATUS,
                prop::OPERATING_SYSTEM_STATE,
                value.dbus_str().into(),
                deadline,
            )
            .await
            {
                Ok(()) => {
                    log::debug!("OperatingSystemState = {value}");
                    continue;
                }
                Err(CallError::Call(e)) if is_read_only(&e) => OsStatusOutcome::ReadOnly {
                    error: e.to_string(),
                },
                Err(e) => OsStatusOutcome::Failed {
                    value,
                    error: e.to_string(),
                },
            }
        };
        feeder.feed(Input::OsStatusWrite(outcome));
    }
}

/// Host 0's owner, when it is x86-power-control's connection (it also owns
/// `xyz.openbmc_project.State.OperatingSystem`); `None` when it is not, or that cannot be told.
async fn power_control_owner(conn: &Connection, deadline: Duration) -> Option<String> {
    let check = async {
        let dbus = daemon_kit::bus::dbus_proxy(conn).await.ok()?;
        let host = daemon_kit::bus::name_owner(&dbus, bus::STATE_HOST0.try_into().ok()?)
            .await
            .ok()?;
        let os = daemon_kit::bus::name_owner(&dbus, bus::STATE_OPERATING_SYSTEM.try_into().ok()?)
            .await
            .ok()?;
        (host == os).then(|| host.to_string())
    };
    // No answer in time, or no owner: the write itself will say what is wrong.
    tokio::time::timeout(deadline, check).await.ok().flatten()
}

/// A `Set` refused because the property is not ours to write (sd-bus's read-only error, as
/// x86-power-control's read-only registration answers, or an access refusal).
fn is_read_only(e: &zbus::Error) -> bool {
    error_name(e).is_some_and(|n| read_only_by_name(&n))
}

fn read_only_by_name(name: &str) -> bool {
    matches!(name, error::PROPERTY_READ_ONLY | error::ACCESS_DENIED)
}

/// One SEL record per transition through phosphor-sel-logger's `IpmiSelAdd`, in order, one
/// call at a time, each with the deadline. A missing or slow sel-logger is logged once (until
/// a record goes through again) and the queue moves on: a record that failed is not retried,
/// since a late record would land out of order behind newer ones.
async fn add_sel_records(
    conn: Connection,
    mut rx: mpsc::UnboundedReceiver<AcpiState>,
    deadline: Duration,
) {
    let mut failing = false;
    while let Some(state) = rx.recv().await {
        match within(deadline, ipmi_sel_add(&conn, state)).await {
            Ok(id) => {
                if failing {
                    log::info!("{} answers again: SEL records resume", bus::LOGGING_IPMI);
                    failing = false;
                }
                log::debug!("SEL record {id}: ACPI state {state}");
            }
            Err(e) if !failing => {
                failing = true;
                log::warn!(
                    "cannot add the SEL record for {state} through {} ({e}); transitions go on \
                     without SEL records until it answers (said once)",
                    bus::LOGGING_IPMI
                );
            }
            Err(e) => log::debug!("SEL record for {state} not added: {e}"),
        }
    }
}

/// The sensor path given to sel-logger (its `IPMI_SEL_SENSOR_PATH` journal field): the object
/// whose change the record is, our ACPI object. See the README on what ipmitool shows.
pub const SEL_SENSOR_PATH: &str = path::ACPI_POWER_STATE;

/// `IpmiSelAdd(s message, s path, ay sel_data, b assert, q generator_id) -> q record_id`
/// (phosphor-sel-logger 9b3b0da9, `src/sel_logger.cpp`). `path` is sent as a string: sent as
/// an object path (`o`) the call would not match upstream's signature and be refused.
async fn ipmi_sel_add(conn: &Connection, state: AcpiState) -> zbus::Result<u16> {
    let message = format!("Host ACPI power state: {}", state.short());
    let args: (String, &str, Vec<u8>, bool, u16) = (
        message,
        SEL_SENSOR_PATH,
        state.sel_event_data().to_vec(),
        true,
        GENERATOR_ID_BMC,
    );
    let reply = conn
        .call_method(
            Some(bus::LOGGING_IPMI),
            path::LOGGING_IPMI,
            Some(iface::LOGGING_IPMI),
            method::IPMI_SEL_ADD,
            &args,
        )
        .await?;
    reply.body().deserialize::<u16>()
}

#[derive(Debug, thiserror::Error)]
enum CallError {
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
) -> Result<(), CallError> {
    set_prop(
        conn,
        bus::STATE_HOST,
        iface::BOOT_PROGRESS,
        name,
        value,
        deadline,
    )
    .await
}

/// `Set` of one property on host 0 through `service`, with the deadline.
async fn set_prop(
    conn: &Connection,
    service: &'static str,
    interface: &'static str,
    name: &'static str,
    value: zbus::Variant<'static>,
    deadline: Duration,
) -> Result<(), CallError> {
    let args = (interface, name, value);
    let call = conn.call_method(
        Some(service),
        path::HOST0,
        Some(iface::PROPERTIES),
        "Set",
        &args,
    );
    within(deadline, call).await.map(drop)
}

/// An outgoing call given up at `deadline`: its answer, its error, or the timeout.
async fn within<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = zbus::Result<T>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(deadline, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(CallError::Call(e)),
        Err(_) => Err(CallError::Timeout(deadline.as_millis())),
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

/// The D-Bus error name of a failed call, if it has one.
fn error_name(e: &zbus::Error) -> Option<String> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str().to_owned()),
        zbus::Error::FDO(fdo) => {
            use zbus::DBusError;
            Some(fdo.name().as_str().to_owned())
        }
        _ => None,
    }
}

/// Sort a `Set` error by its D-Bus error name.
fn classify(e: &zbus::Error) -> Refused {
    error_name(e).map_or(Refused::Other, |name| refused_by_name(&name))
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
    use super::{Refused, is_read_only, read_only_by_name, refused_by_name};

    #[test]
    fn a_read_only_or_refused_property_is_told_from_other_failures() {
        assert!(read_only_by_name(
            "org.freedesktop.DBus.Error.PropertyReadOnly"
        ));
        assert!(read_only_by_name("org.freedesktop.DBus.Error.AccessDenied"));
        // zbus's own answer for a property it serves read-only.
        assert!(is_read_only(&zbus::Error::FDO(Box::new(
            zbus::fdo::Error::PropertyReadOnly("ro".into())
        ))));
        for other in [
            "org.freedesktop.DBus.Error.ServiceUnknown",
            "org.freedesktop.DBus.Error.InvalidArgs",
            "org.freedesktop.DBus.Error.Failed",
        ] {
            assert!(!read_only_by_name(other), "{other}");
        }
        assert!(!is_read_only(&zbus::Error::InvalidReply));
    }

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
