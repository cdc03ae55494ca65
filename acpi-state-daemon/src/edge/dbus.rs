//! The objects we serve: the standard ACPIPowerState interface and acpigate's HostPhase.
//!
//! Both read from the core; a property write becomes an [`Input::AcpiWrite`] fed to the core
//! right here (so a refusal is the D-Bus reply), and the resulting actions go to the executor.

use std::sync::{Arc, Mutex, MutexGuard};

use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::acpigate::HostPhase;
use openbmc_vocab::errors::CommonError;
use tokio::sync::mpsc::UnboundedSender;
use zbus::interface;

use crate::core::{AcpiCore, Action, Input, Now};

/// The core, shared between the D-Bus handlers and the input tasks. Only ever locked for the
/// length of one synchronous `handle` call or one read.
pub type SharedCore = Arc<Mutex<AcpiCore>>;

/// Lock the core, surviving a poisoned lock (a panic aborts in release builds anyway).
pub fn lock(core: &SharedCore) -> MutexGuard<'_, AcpiCore> {
    core.lock().unwrap_or_else(|p| p.into_inner())
}

/// A batch of actions for the executor, with the property the caller already emitted.
pub struct Batch {
    pub actions: Vec<Action>,
    /// A setter's own property: zbus emits PropertiesChanged for it after the setter returns.
    pub already_emitted: Option<AcpiProp>,
    /// The input behind the actions, for a debug line written after they are carried out (a
    /// journal write ahead of them would delay a closing announcement).
    pub cause: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiProp {
    Sys,
    Dev,
}

/// `xyz.openbmc_project.Control.Power.ACPIPowerState`.
pub struct AcpiPowerState {
    pub core: SharedCore,
    pub tx: UnboundedSender<Batch>,
    pub now: fn() -> Now,
}

impl AcpiPowerState {
    fn write(&self, sys: Option<AcpiState>, dev: Option<AcpiState>) -> Result<(), CommonError> {
        let actions = lock(&self.core)
            .handle((self.now)(), Input::AcpiWrite { sys, dev })
            .map_err(|r| {
                log::warn!("refused ACPI write: {r}");
                CommonError::NotAllowed(r.to_string())
            })?;
        let already_emitted = Some(if sys.is_some() {
            AcpiProp::Sys
        } else {
            AcpiProp::Dev
        });
        // The executor outlives the object server; a send error means we are shutting down.
        let _ = self.tx.send(Batch {
            actions,
            already_emitted,
            cause: None,
        });
        Ok(())
    }
}

#[interface(
    name = "xyz.openbmc_project.Control.Power.ACPIPowerState",
    introspection_docs = false
)]
impl AcpiPowerState {
    #[zbus(property, name = "SysACPIStatus")]
    fn sys_acpi_status(&self) -> AcpiState {
        lock(&self.core).sys()
    }

    #[zbus(property, name = "SysACPIStatus")]
    fn set_sys_acpi_status(&mut self, value: AcpiState) -> Result<(), CommonError> {
        self.write(Some(value), None)
    }

    #[zbus(property, name = "DevACPIStatus")]
    fn dev_acpi_status(&self) -> AcpiState {
        lock(&self.core).dev()
    }

    #[zbus(property, name = "DevACPIStatus")]
    fn set_dev_acpi_status(&mut self, value: AcpiState) -> Result<(), CommonError> {
        self.write(None, Some(value))
    }
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
