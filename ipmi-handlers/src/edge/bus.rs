//! D-Bus reads and writes for the platform view and the external effects, and the caller's
//! channel. Every call has a deadline: a stuck service costs one command 0xFF, never the
//! whole IPMI server.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use openbmc_vocab::DbusEnum;
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::names::{bus, iface, path, prop};
use openbmc_vocab::state::ChassisPowerState;
use zbus::fdo::{DBusProxy, PropertiesProxy};
use zbus::names::InterfaceName;
use zbus::{Connection, OwnedVariant, Variant};

use super::config::Config;
use crate::core::{Channel, ChannelKind, Effect};

/// How long one D-Bus call to another service may take.
pub const CALL_DEADLINE: Duration = Duration::from_secs(3);

async fn props(conn: &Connection, dest: &str, obj: &str) -> Result<PropertiesProxy<'static>> {
    Ok(PropertiesProxy::builder(conn)
        .destination(dest.to_owned())
        .path(obj.to_owned())
        .build()
        .await?)
}

async fn with_deadline<T>(what: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(CALL_DEADLINE, f)
        .await
        .map_err(|_| anyhow!("{what}: no answer within {CALL_DEADLINE:?}"))?
}

fn string_of(v: &OwnedVariant) -> Option<String> {
    match &**v {
        Variant::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

/// `(SysACPIStatus, DevACPIStatus)` of acpi-state-daemon's object.
pub async fn read_acpi(conn: &Connection) -> Result<(AcpiState, AcpiState)> {
    with_deadline("reading the ACPI state", async {
        let p = props(conn, bus::ACPI_POWER_STATE, path::ACPI_POWER_STATE).await?;
        let all = p
            .get_all(InterfaceName::try_from(iface::ACPI_POWER_STATE)?)
            .await?;
        let get = |name: &str| -> Result<AcpiState> {
            let s = all
                .get(name)
                .and_then(string_of)
                .with_context(|| format!("{name} missing or not a string"))?;
            Ok(AcpiState::from_dbus_str(&s)?)
        };
        Ok((get(prop::SYS_ACPI_STATUS)?, get(prop::DEV_ACPI_STATUS)?))
    })
    .await
}

pub async fn read_chassis_power(conn: &Connection) -> Result<ChassisPowerState> {
    with_deadline("reading chassis power", async {
        let p = props(conn, bus::STATE_CHASSIS, path::CHASSIS0).await?;
        let v = p
            .get(
                InterfaceName::try_from(iface::STATE_CHASSIS)?,
                prop::CURRENT_POWER_STATE,
            )
            .await?;
        let s = string_of(&v).context("CurrentPowerState is not a string")?;
        Ok(ChassisPowerState::from_dbus_str(&s)?)
    })
    .await
}

/// Carry out one external effect.
pub async fn perform(conn: &Connection, effect: &Effect) -> Result<()> {
    let (dest, obj, ifc, name, value) = match effect {
        Effect::SetSysAcpi(s) => (
            bus::ACPI_POWER_STATE,
            path::ACPI_POWER_STATE,
            iface::ACPI_POWER_STATE,
            prop::SYS_ACPI_STATUS,
            s.dbus_str(),
        ),
        Effect::SetDevAcpi(s) => (
            bus::ACPI_POWER_STATE,
            path::ACPI_POWER_STATE,
            iface::ACPI_POWER_STATE,
            prop::DEV_ACPI_STATUS,
            s.dbus_str(),
        ),
        Effect::Chassis(t) => (
            bus::STATE_CHASSIS,
            path::CHASSIS0,
            iface::STATE_CHASSIS,
            prop::REQUESTED_POWER_TRANSITION,
            t.dbus_str(),
        ),
        Effect::Host(t) => (
            bus::STATE_HOST,
            path::HOST0,
            iface::STATE_HOST,
            prop::REQUESTED_HOST_TRANSITION,
            t.dbus_str(),
        ),
        other => return Err(anyhow!("{other:?} is not an external effect")),
    };
    with_deadline(&format!("setting {name} on {dest}"), async {
        let p = props(conn, dest, obj).await?;
        p.set(
            InterfaceName::try_from(ifc)?,
            name,
            &Variant::from(value.as_str()),
        )
        .await
        .with_context(|| format!("setting {name} on {dest} {obj}"))?;
        Ok(())
    })
    .await
}

/// What a caller's bus names say about its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerChannel {
    Known(Channel),
    /// Owns a channel name that is not configured (upstream answers 0xD3).
    Unknown(String),
}

/// The channel of `sender` (a unique name): the configured channel whose
/// `xyz.openbmc_project.Ipmi.Channel.<name>` it owns, else INTRABMC.
pub async fn caller_channel(
    conn: &Connection,
    cfg: &Config,
    sender: &str,
) -> Result<CallerChannel> {
    with_deadline("resolving the caller's channel", async {
        let dbus = DBusProxy::new(conn).await?;
        let names = dbus.list_names().await?;
        for n in names
            .iter()
            .filter(|n| n.starts_with(bus::IPMI_CHANNEL_PREFIX))
        {
            let Ok(owner) = dbus.get_name_owner(n.as_ref()).await else {
                continue;
            };
            if owner.as_str() != sender {
                continue;
            }
            let short = &n[bus::IPMI_CHANNEL_PREFIX.len()..];
            return Ok(match cfg.channels.iter().find(|c| c.name == short) {
                Some(c) => CallerChannel::Known(Channel {
                    number: c.number,
                    kind: c.session.kind(),
                }),
                None => CallerChannel::Unknown(short.to_owned()),
            });
        }
        Ok(CallerChannel::Known(Channel {
            number: cfg.intrabmc_channel,
            kind: ChannelKind::SessionLess,
        }))
    })
    .await
}

/// An integer option (`privilege`, `userId`, `rqSA`…) in whatever integer type it came.
pub fn int_option(options: &HashMap<String, OwnedVariant>, key: &str) -> Option<i64> {
    match &**options.get(key)? {
        Variant::U8(x) => Some(i64::from(*x)),
        Variant::I16(x) => Some(i64::from(*x)),
        Variant::U16(x) => Some(i64::from(*x)),
        Variant::I32(x) => Some(i64::from(*x)),
        Variant::U32(x) => Some(i64::from(*x)),
        Variant::I64(x) => Some(*x),
        Variant::U64(x) => i64::try_from(*x).ok(),
        _ => None,
    }
}
