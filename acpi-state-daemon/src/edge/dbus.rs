//! The objects we serve: the standard ACPIPowerState interface and acpigate's HostPhase.
//!
//! Both read from the core; a property write becomes an [`Input::AcpiWrite`] fed to the core
//! right here (so a refusal is the D-Bus reply), and the resulting actions go to the executor,
//! which alone announces what changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use openbmc_vocab::DbusEnum;
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::acpigate::HostPhase;
use openbmc_vocab::errors::CommonError;
use openbmc_vocab::names::{iface, prop};
use zbus::message::{Header, Message};
use zbus::names::{InterfaceName, MemberName};
use zbus::object_server::{DispatchResult, Interface, SignalEmitter};
use zbus::{BoxDBusError, Connection, ObjectServer, OwnedVariant, Variant, interface};

use super::Feeder;
use crate::core::{AcpiCore, Action, Input};

/// The core, shared between the D-Bus handlers and the input tasks. Only ever locked for the
/// length of one synchronous `handle` call or one read.
pub type SharedCore = Arc<Mutex<AcpiCore>>;

/// Lock the core, surviving a poisoned lock (a panic aborts in release builds anyway).
pub fn lock(core: &SharedCore) -> MutexGuard<'_, AcpiCore> {
    core.lock().unwrap_or_else(|p| p.into_inner())
}

/// A batch of actions for the executor.
pub struct Batch {
    pub actions: Vec<Action>,
    /// The input behind the actions, for a debug line written after they are carried out (a
    /// journal write ahead of them would delay a closing announcement).
    pub cause: Option<String>,
}

/// `xyz.openbmc_project.Control.Power.ACPIPowerState`.
///
/// Served through a hand-written [`Interface`] rather than `#[zbus::interface]`, for one
/// reason: zbus's generated property setter emits a PropertiesChanged of its own once the
/// setter returns, and the executor emits one too — it is the one place our announcements
/// come from, in the order the core decided them (phase first) and carrying the values the
/// core decided. Marking the properties `emits_changed_signal = "false"` would silence zbus's,
/// but would also tell every client in the introspection data that the properties never
/// announce a change: untrue, and not what upstream's object says.
pub struct AcpiPowerState {
    pub feeder: Feeder,
}

impl AcpiPowerState {
    fn value(&self, name: &str) -> Option<AcpiState> {
        let core = lock(self.feeder.core());
        match name {
            prop::SYS_ACPI_STATUS => Some(core.sys()),
            prop::DEV_ACPI_STATUS => Some(core.dev()),
            _ => None,
        }
    }

    /// A `Set` of one of our properties: fed to the core right here, so a refusal is the
    /// reply. Nothing is emitted here; the executor announces what changed.
    fn set_value(&self, name: &str, value: &Variant<'_>) -> Option<Result<(), BoxDBusError>> {
        let is_sys = match name {
            prop::SYS_ACPI_STATUS => true,
            prop::DEV_ACPI_STATUS => false,
            _ => return None,
        };
        let state = match acpi_state(value) {
            Ok(s) => s,
            Err(e) => return Some(Err(Box::new(zbus::fdo::Error::InvalidArgs(e)))),
        };
        let (sys, dev) = if is_sys {
            (Some(state), None)
        } else {
            (None, Some(state))
        };
        Some(
            self.feeder
                .try_feed(Input::AcpiWrite { sys, dev })
                .map_err(|r| {
                    log::warn!("refused ACPI write: {r}");
                    Box::new(CommonError::NotAllowed(r.to_string())) as BoxDBusError
                }),
        )
    }
}

/// A written value: one of the enum's full strings, nothing else.
fn acpi_state(value: &Variant<'_>) -> Result<AcpiState, String> {
    match value {
        Variant::Str(s) => AcpiState::from_dbus_str(s.as_str()).map_err(|e| e.to_string()),
        other => Err(format!(
            "expected a string (s), got a value of type {}",
            other.value_signature()
        )),
    }
}

#[zbus::export::async_trait::async_trait]
impl Interface for AcpiPowerState {
    fn name() -> InterfaceName<'static> {
        InterfaceName::from_static_str_unchecked(iface::ACPI_POWER_STATE)
    }

    async fn get(
        &self,
        property_name: &str,
        _server: &ObjectServer,
        _connection: &Connection,
        _header: Option<&Header<'_>>,
        _emitter: &SignalEmitter<'_>,
    ) -> Option<Result<OwnedVariant, BoxDBusError>> {
        self.value(property_name).map(|s| Ok(owned(s)))
    }

    async fn get_all(
        &self,
        _server: &ObjectServer,
        _connection: &Connection,
        _header: Option<&Header<'_>>,
        _emitter: &SignalEmitter<'_>,
    ) -> zbus::fdo::Result<HashMap<String, OwnedVariant>> {
        let core = lock(self.feeder.core());
        Ok(HashMap::from([
            (prop::SYS_ACPI_STATUS.to_owned(), owned(core.sys())),
            (prop::DEV_ACPI_STATUS.to_owned(), owned(core.dev())),
        ]))
    }

    fn set<'call>(
        &'call self,
        property_name: &'call str,
        value: &'call Variant<'_>,
        _server: &'call ObjectServer,
        _connection: &'call Connection,
        _header: Option<&'call Header<'_>>,
        _emitter: &'call SignalEmitter<'_>,
    ) -> DispatchResult<'call> {
        match self.set_value(property_name, value) {
            Some(result) => DispatchResult::Async(Box::pin(std::future::ready(result))),
            None => DispatchResult::NotFound,
        }
    }

    /// Never reached: [`Self::set`] answers for every property, `&self` is enough.
    async fn set_mut(
        &mut self,
        property_name: &str,
        value: &Variant<'_>,
        _server: &ObjectServer,
        _connection: &Connection,
        _header: Option<&Header<'_>>,
        _emitter: &SignalEmitter<'_>,
    ) -> Option<Result<(), BoxDBusError>> {
        self.set_value(property_name, value)
    }

    fn call<'call>(
        &'call self,
        _server: &'call ObjectServer,
        _connection: &'call Connection,
        _msg: &'call Message,
        _name: MemberName<'call>,
    ) -> DispatchResult<'call> {
        DispatchResult::NotFound
    }

    fn call_mut<'call>(
        &'call mut self,
        _server: &'call ObjectServer,
        _connection: &'call Connection,
        _msg: &'call Message,
        _name: MemberName<'call>,
    ) -> DispatchResult<'call> {
        DispatchResult::NotFound
    }

    /// As upstream's object introspects: both properties read-write, no annotation (they do
    /// announce their changes, through the executor).
    fn introspect_to_writer(&self, writer: &mut dyn std::fmt::Write, level: usize) {
        let pad = level + 2;
        let _ = writeln!(
            writer,
            "{:level$}<interface name=\"{}\">",
            "",
            iface::ACPI_POWER_STATE
        );
        for name in [prop::SYS_ACPI_STATUS, prop::DEV_ACPI_STATUS] {
            let _ = writeln!(
                writer,
                "{:pad$}<property name=\"{name}\" type=\"s\" access=\"readwrite\"/>",
                ""
            );
        }
        let _ = writeln!(writer, "{:level$}</interface>", "");
    }
}

fn owned(s: AcpiState) -> OwnedVariant {
    OwnedVariant::from(zbus::Str::from(s.dbus_str()))
}

/// `org.acpigate.HostPhase` (documented in `openbmc_vocab::acpigate`).
pub struct HostPhaseIface {
    pub core: SharedCore,
}

#[interface(name = "org.acpigate.HostPhase", introspection_docs = false)]
impl HostPhaseIface {
    #[zbus(property, name = "Phase")]
    fn phase(&self) -> HostPhase {
        lock(&self.core).phase()
    }
    #[zbus(property, name = "Reason")]
    fn reason(&self) -> String {
        lock(&self.core).reason().to_owned()
    }
    #[zbus(property, name = "Since")]
    fn since(&self) -> u64 {
        lock(&self.core).since_usec()
    }
    #[zbus(property, name = "Generation")]
    fn generation(&self) -> u64 {
        lock(&self.core).generation()
    }
    #[zbus(property, name = "BootCount")]
    fn boot_count(&self) -> u64 {
        lock(&self.core).timeline().boot_count
    }
    #[zbus(property, name = "FirmwareInitUsec")]
    fn firmware_init_usec(&self) -> u64 {
        lock(&self.core).timeline().firmware_init_usec
    }
    #[zbus(property, name = "TimeToWorkingUsec")]
    fn time_to_working_usec(&self) -> u64 {
        lock(&self.core).timeline().time_to_working_usec
    }
    #[zbus(property, name = "GateWindows")]
    fn gate_windows(&self) -> u64 {
        lock(&self.core).timeline().gate_windows
    }
}
