//! A client for acpi-state-daemon's object, as ipmid and tests use it.

use std::time::Duration;

use anyhow::{Context, Result};
use openbmc_vocab::DbusEnum;
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::acpigate::{self, HostPhase};
use openbmc_vocab::names::{bus, iface, path, prop};
use zbus::{Connection, OwnedVariant};

use crate::harness::eventually;

/// Reads and writes the ACPI object through `org.freedesktop.DBus.Properties`, the way
/// ipmid's Set/Get ACPI Power State handlers do.
#[derive(Clone)]
pub struct AcpiClient {
    conn: Connection,
}

impl AcpiClient {
    pub fn new(conn: Connection) -> Self {
        Self { conn }
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    async fn get(&self, interface: &str, name: &str) -> Result<OwnedVariant> {
        let reply = self
            .conn
            .call_method(
                Some(bus::ACPI_POWER_STATE),
                path::ACPI_POWER_STATE,
                Some(iface::PROPERTIES),
                "Get",
                &(interface, name),
            )
            .await
            .with_context(|| format!("Get {name}"))?;
        Ok(reply.body().deserialize::<OwnedVariant>()?)
    }

    async fn get_string(&self, interface: &str, name: &str) -> Result<String> {
        let v = self.get(interface, name).await?;
        Ok(String::try_from(v)?)
    }

    async fn get_u64(&self, name: &str) -> Result<u64> {
        let v = self.get(iface::ACPIGATE_HOST_PHASE, name).await?;
        Ok(u64::try_from(v)?)
    }

    pub async fn sys(&self) -> Result<AcpiState> {
        let s = self
            .get_string(iface::ACPI_POWER_STATE, prop::SYS_ACPI_STATUS)
            .await?;
        Ok(s.parse()?)
    }

    pub async fn dev(&self) -> Result<AcpiState> {
        let s = self
            .get_string(iface::ACPI_POWER_STATE, prop::DEV_ACPI_STATUS)
            .await?;
        Ok(s.parse()?)
    }

    pub async fn phase(&self) -> Result<HostPhase> {
        let s = self
            .get_string(iface::ACPIGATE_HOST_PHASE, acpigate::prop::PHASE)
            .await?;
        Ok(s.parse()?)
    }

    pub async fn reason(&self) -> Result<String> {
        self.get_string(iface::ACPIGATE_HOST_PHASE, acpigate::prop::REASON)
            .await
    }

    pub async fn generation(&self) -> Result<u64> {
        self.get_u64(acpigate::prop::GENERATION).await
    }

    pub async fn since(&self) -> Result<u64> {
        self.get_u64(acpigate::prop::SINCE).await
    }

    /// `(BootCount, FirmwareInitUsec, TimeToWorkingUsec, GateWindows)`.
    pub async fn timeline(&self) -> Result<(u64, u64, u64, u64)> {
        Ok((
            self.get_u64(acpigate::prop::BOOT_COUNT).await?,
            self.get_u64(acpigate::prop::FIRMWARE_INIT_USEC).await?,
            self.get_u64(acpigate::prop::TIME_TO_WORKING_USEC).await?,
            self.get_u64(acpigate::prop::GATE_WINDOWS).await?,
        ))
    }

    /// Write a property with an arbitrary variant (tests use this for bad writes).
    pub async fn set_raw(&self, name: &str, value: zbus::Variant<'_>) -> zbus::Result<()> {
        self.conn
            .call_method(
                Some(bus::ACPI_POWER_STATE),
                path::ACPI_POWER_STATE,
                Some(iface::PROPERTIES),
                "Set",
                &(iface::ACPI_POWER_STATE, name, value),
            )
            .await
            .map(|_| ())
    }

    /// What ipmid does for Set ACPI Power State (system byte).
    pub async fn set_sys(&self, s: AcpiState) -> zbus::Result<()> {
        self.set_raw(prop::SYS_ACPI_STATUS, zbus::Variant::from(s.dbus_str()))
            .await
    }

    /// What ipmid does for Set ACPI Power State (device byte).
    pub async fn set_dev(&self, s: AcpiState) -> zbus::Result<()> {
        self.set_raw(prop::DEV_ACPI_STATUS, zbus::Variant::from(s.dbus_str()))
            .await
    }

    /// Wait until the system state is `want`.
    pub async fn wait_sys(&self, want: AcpiState) -> Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.sys().await.ok();
            if s == Some(want) {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!("SysACPIStatus never became {want}; last seen {s:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Wait until the phase is `want`.
    pub async fn wait_phase(&self, want: HostPhase) -> Result<()> {
        eventually(Duration::from_secs(10), &format!("Phase {want}"), || {
            let me = self.clone();
            async move { (me.phase().await.ok() == Some(want)).then_some(()) }
        })
        .await
    }
}
