//! Carrying out the core's actions, in order, one batch at a time.
//!
//! Failures here are logged, never fed back as policy: a missing systemd or host object must
//! not change what state we report.

use std::path::PathBuf;

use std::collections::HashMap;

use openbmc_vocab::DbusEnum;
use openbmc_vocab::acpigate;
use openbmc_vocab::boot::ProgressStage;
use openbmc_vocab::names::{bus, iface, path, prop};
use openbmc_vocab::systemd::{HostTarget, START_MODE_REPLACE};
use tokio::sync::mpsc::UnboundedReceiver;
use zbus::Connection;
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;

use crate::core::{Action, Persisted, Timeline};
use crate::dbus::{AcpiProp, Batch};

pub struct Executor {
    conn: Connection,
    state_file: PathBuf,
    /// Set once we learned host0 has no Boot.Progress, so we warn once, not per boot.
    boot_progress_unsupported: bool,
}

impl Executor {
    pub fn new(conn: Connection, state_file: PathBuf) -> Self {
        Self {
            conn,
            state_file,
            boot_progress_unsupported: false,
        }
    }

    pub async fn run(mut self, mut rx: UnboundedReceiver<Batch>) {
        while let Some(batch) = rx.recv().await {
            for action in batch.actions {
                self.carry_out(action, batch.already_emitted).await;
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

    async fn carry_out(&mut self, action: Action, already: Option<AcpiProp>) {
        match action {
            Action::PublishAcpi { sys, dev } => {
                // A property written over D-Bus was announced by the write itself.
                let mut changed = HashMap::new();
                if let Some(s) = sys
                    && already != Some(AcpiProp::Sys)
                {
                    changed.insert(prop::SYS_ACPI_STATUS, zbus::Variant::from(s.dbus_str()));
                }
                if let Some(d) = dev
                    && already != Some(AcpiProp::Dev)
                {
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
            Action::StartTarget(t) => self.start_target(t).await,
            Action::SetBootProgress(stage) => self.set_boot_progress(stage).await,
            Action::Persist(p) => self.persist(p).await,
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

    async fn start_target(&self, t: HostTarget) {
        let reply = self
            .conn
            .call_method(
                Some(bus::SYSTEMD),
                path::SYSTEMD,
                Some(iface::SYSTEMD_MANAGER),
                "StartUnit",
                &(t.unit(), START_MODE_REPLACE),
            )
            .await;
        match reply {
            Ok(_) => log::info!(target_unit = t.unit(); "started {}", t.unit()),
            Err(e) => log::error!(target_unit = t.unit(); "cannot start {}: {e}", t.unit()),
        }
    }

    async fn set_boot_progress(&mut self, stage: ProgressStage) {
        if self.boot_progress_unsupported {
            return;
        }
        let set = |name: &'static str, value: zbus::Variant<'static>| {
            let conn = self.conn.clone();
            async move {
                conn.call_method(
                    Some(bus::STATE_HOST),
                    path::HOST0,
                    Some(iface::PROPERTIES),
                    "Set",
                    &(iface::BOOT_PROGRESS, name, value),
                )
                .await
            }
        };
        match set(prop::BOOT_PROGRESS, zbus::Variant::from(stage.dbus_str())).await {
            Ok(_) => {
                log::debug!("BootProgress = {stage}");
                // phosphor-state-manager stamps LastUpdate itself; others may not, so we do
                // too. A refusal here is harmless.
                let t = daemon_kit::time::epoch_usec();
                if let Err(e) = set(prop::BOOT_PROGRESS_LAST_UPDATE, zbus::Variant::from(t)).await {
                    log::debug!("BootProgressLastUpdate not written: {e}");
                }
            }
            Err(e) if is_absent(&e) => {
                self.boot_progress_unsupported = true;
                log::warn!(
                    "{} {} does not implement {} ({e}); BootProgress will not be published \
                     (x86-power-control has no Boot.Progress; see README)",
                    bus::STATE_HOST,
                    path::HOST0,
                    iface::BOOT_PROGRESS
                );
            }
            Err(e) => log::warn!("cannot set BootProgress to {stage}: {e}"),
        }
    }

    /// Save the state (the core puts this before the announcement of an opening change and
    /// after that of a closing one). The write and rename are synchronous: usually
    /// microseconds, so a crash right after an opening announcement still finds the new state.
    /// The flush to disk, which takes milliseconds, runs on a blocking thread afterwards.
    async fn persist(&self, p: Persisted) {
        let bytes = match serde_json::to_vec(&p) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("cannot encode state: {e}");
                return;
            }
        };
        if let Err(e) = daemon_kit::state_file::replace(&self.state_file, &bytes) {
            log::warn!("{}: cannot save state: {e}", self.state_file.display());
            return;
        }
        let file = self.state_file.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = daemon_kit::state_file::sync(&file) {
                log::warn!("{}: cannot flush state: {e}", file.display());
            }
        });
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

/// Errors meaning "that object or interface is not there" rather than "the write failed".
fn is_absent(e: &zbus::Error) -> bool {
    let name = match e {
        zbus::Error::MethodError(name, _, _) => name.as_str().to_owned(),
        zbus::Error::FDO(fdo) => {
            return matches!(
                **fdo,
                zbus::fdo::Error::ServiceUnknown(_)
                    | zbus::fdo::Error::UnknownObject(_)
                    | zbus::fdo::Error::UnknownInterface(_)
                    | zbus::fdo::Error::UnknownProperty(_)
                    | zbus::fdo::Error::NameHasNoOwner(_)
            );
        }
        _ => return false,
    };
    [
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.UnknownObject",
        "org.freedesktop.DBus.Error.UnknownInterface",
        "org.freedesktop.DBus.Error.UnknownProperty",
        "org.freedesktop.DBus.Error.UnknownMethod",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.InvalidArgs",
    ]
    .contains(&name.as_str())
}

fn log_err(what: &str, r: zbus::Result<()>) {
    if let Err(e) = r {
        log::warn!("{what}: {e}");
    }
}
