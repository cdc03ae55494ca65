//! D-Bus reads and writes for the platform view and the external effects, and the caller's
//! channel. Every call has a deadline: a stuck service costs one command 0xFF, never the
//! whole IPMI server.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use openbmc_vocab::DbusEnum;
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::names::{bus, iface, path, prop};
use openbmc_vocab::state::ChassisPowerState;
use zbus::fdo::PropertiesProxy;
use zbus::message::Sequence;
use zbus::names::InterfaceName;
use zbus::{Connection, OwnedVariant, Variant};

use super::config::Config;
use crate::core::{Channel, ChannelKind, Effect};

/// How long one D-Bus call to another service may take: `call_timeout_ms`, set once at start
/// ([`set_call_deadline`]); 3 s until then.
static CALL_DEADLINE: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// Take the deadline from the configuration (the first call wins; the daemon makes one).
pub fn set_call_deadline(d: Duration) {
    let _ = CALL_DEADLINE.set(d);
}

pub fn call_deadline() -> Duration {
    CALL_DEADLINE
        .get()
        .copied()
        .unwrap_or(Duration::from_secs(3))
}

async fn props(conn: &Connection, dest: &str, obj: &str) -> Result<PropertiesProxy<'static>> {
    Ok(PropertiesProxy::builder(conn)
        .destination(dest.to_owned())
        .path(obj.to_owned())
        .build()
        .await?)
}

async fn with_deadline<T>(what: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
    let deadline = call_deadline();
    tokio::time::timeout(deadline, f)
        .await
        .map_err(|_| anyhow!("{what}: no answer within {deadline:?}"))?
}

fn string_of(v: &OwnedVariant) -> Option<String> {
    match &**v {
        Variant::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

/// `(SysACPIStatus, DevACPIStatus)` of acpi-state-daemon's object, and where its answer came
/// in among the messages this connection received (so it can be ordered against the
/// object's signals: an answer is newer than every signal its sender sent before it).
pub async fn read_acpi(conn: &Connection) -> Result<((AcpiState, AcpiState), Sequence)> {
    read_acpi_from(conn, bus::ACPI_POWER_STATE).await
}

/// [`read_acpi`] from one owner, named by its unique name: the state *that* owner serves. A
/// read sent to the well-known name while it changes hands would be answered by whoever owns
/// it by then, and taken as the word of the owner that just appeared.
pub async fn read_acpi_from(
    conn: &Connection,
    owner: &str,
) -> Result<((AcpiState, AcpiState), Sequence)> {
    with_deadline("reading the ACPI state", async {
        let reply = conn
            .call_method(
                Some(owner),
                path::ACPI_POWER_STATE,
                Some(iface::PROPERTIES),
                "GetAll",
                &(iface::ACPI_POWER_STATE,),
            )
            .await?;
        let all: HashMap<String, OwnedVariant> = reply.body().deserialize()?;
        let get = |name: &str| -> Result<AcpiState> {
            let s = all
                .get(name)
                .and_then(string_of)
                .with_context(|| format!("{name} missing or not a string"))?;
            Ok(AcpiState::from_dbus_str(&s)?)
        };
        let state = (get(prop::SYS_ACPI_STATUS)?, get(prop::DEV_ACPI_STATUS)?);
        Ok((state, reply.recv_position()))
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

/// Where an external effect writes: (service, object, interface, property, value as sent,
/// value for people).
type Target = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    String,
    String,
);

fn target(effect: &Effect) -> Result<Target> {
    Ok(match effect {
        Effect::SetSysAcpi(s) => (
            bus::ACPI_POWER_STATE,
            path::ACPI_POWER_STATE,
            iface::ACPI_POWER_STATE,
            prop::SYS_ACPI_STATUS,
            s.dbus_str(),
            s.to_string(),
        ),
        Effect::SetDevAcpi(s) => (
            bus::ACPI_POWER_STATE,
            path::ACPI_POWER_STATE,
            iface::ACPI_POWER_STATE,
            prop::DEV_ACPI_STATUS,
            s.dbus_str(),
            s.to_string(),
        ),
        Effect::Chassis(t) => (
            bus::STATE_CHASSIS,
            path::CHASSIS0,
            iface::STATE_CHASSIS,
            prop::REQUESTED_POWER_TRANSITION,
            t.dbus_str(),
            t.to_string(),
        ),
        Effect::Host(t) => (
            bus::STATE_HOST,
            path::HOST0,
            iface::STATE_HOST,
            prop::REQUESTED_HOST_TRANSITION,
            t.dbus_str(),
            t.to_string(),
        ),
        other => return Err(anyhow!("{other:?} is not an external effect")),
    })
}

/// An external effect for a log line: `SysACPIStatus := S0_G0_D0`.
pub fn describe(effect: &Effect) -> String {
    match target(effect) {
        Ok((_, _, _, name, _, short)) => format!("{name} := {short}"),
        Err(_) => format!("{effect:?}"),
    }
}

/// Carry out one external effect.
pub async fn perform(conn: &Connection, effect: &Effect) -> Result<()> {
    let (dest, obj, ifc, name, value, _) = target(effect)?;
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

/// Which connection owns which IPMI channel name (`xyz.openbmc_project.Ipmi.Channel.<name>`),
/// kept from `NameOwnerChanged` so that `execute` does not ask the bus on every request.
///
/// Only ever consulted for a sender it knows: a sender it does not know gets the full lookup
/// from the bus ([`caller_channel`]). That matters for privilege: a front end that acquired a
/// session-based channel name a moment ago, before its signal reached us, must not pass for an
/// unnamed (INTRABMC, Admin) caller.
#[derive(Debug, Default)]
pub struct ChannelOwners {
    /// Unique name → the channel names (short form) it owns.
    by_owner: HashMap<String, BTreeSet<String>>,
}

impl ChannelOwners {
    /// A `NameOwnerChanged` for `name`; other names are ignored.
    pub fn owner_changed(&mut self, name: &str, old: Option<&str>, new: Option<&str>) {
        let Some(short) = name.strip_prefix(bus::IPMI_CHANNEL_PREFIX) else {
            return;
        };
        if let Some(old) = old
            && let Some(names) = self.by_owner.get_mut(old)
        {
            names.remove(short);
            if names.is_empty() {
                self.by_owner.remove(old);
            }
        }
        if let Some(new) = new {
            self.by_owner
                .entry(new.to_owned())
                .or_default()
                .insert(short.to_owned());
        }
    }

    /// The channel of `sender`, if it owns a channel name.
    pub fn channel_of(&self, sender: &str, cfg: &Config) -> Option<CallerChannel> {
        // One connection owning two channel names is a misconfiguration; the first in name
        // order wins, the same on every lookup.
        let short = self.by_owner.get(sender)?.first()?;
        Some(match cfg.channels.iter().find(|c| &c.name == short) {
            Some(c) => CallerChannel::Known(Channel {
                number: c.number,
                kind: c.session.kind(),
            }),
            None => CallerChannel::Unknown(short.clone()),
        })
    }
}

pub fn lock_owners(
    m: &std::sync::Mutex<ChannelOwners>,
) -> std::sync::MutexGuard<'_, ChannelOwners> {
    // A poisoned lock only means a panic elsewhere mid-update; the map is still a valid map.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The channel of an unnamed caller (owning no channel name): INTRABMC.
fn intrabmc(cfg: &Config) -> CallerChannel {
    CallerChannel::Known(Channel {
        number: cfg.intrabmc_channel,
        kind: ChannelKind::SessionLess,
    })
}

/// The channel of `sender` (a unique name): from `known` if it is there, else from the bus:
/// the configured channel whose `xyz.openbmc_project.Ipmi.Channel.<name>` it owns, else
/// INTRABMC.
pub async fn caller_channel(
    conn: &Connection,
    cfg: &Config,
    known: &std::sync::Mutex<ChannelOwners>,
    sender: &str,
) -> Result<CallerChannel> {
    if let Some(c) = lock_owners(known).channel_of(sender, cfg) {
        return Ok(c);
    }
    let owned = with_deadline("resolving the caller's channel", scan_channel_owners(conn)).await?;
    Ok(owned
        .channel_of(sender, cfg)
        .unwrap_or_else(|| intrabmc(cfg)))
}

/// Who owns which channel name now, asked of the bus (ListNames, then GetNameOwner for each
/// channel name).
pub async fn scan_channel_owners(conn: &Connection) -> Result<ChannelOwners> {
    let dbus = daemon_kit::bus::dbus_proxy(conn).await?;
    let mut owners = ChannelOwners::default();
    for n in daemon_kit::bus::list_names(&dbus).await? {
        if n.starts_with(bus::IPMI_CHANNEL_PREFIX)
            && let Ok(owner) = daemon_kit::bus::name_owner(&dbus, n.as_ref()).await
        {
            owners.owner_changed(n.as_str(), None, Some(owner.as_str()));
        }
    }
    Ok(owners)
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

#[cfg(test)]
mod tests {
    use super::*;

    const LAN: &str = "xyz.openbmc_project.Ipmi.Channel.eth0";
    const KCS: &str = "xyz.openbmc_project.Ipmi.Channel.ipmi_kcs3";

    fn known(number: u8, kind: ChannelKind) -> Option<CallerChannel> {
        Some(CallerChannel::Known(Channel { number, kind }))
    }

    #[test]
    fn owners_follow_acquire_move_and_release() {
        let cfg = Config::default();
        let mut o = ChannelOwners::default();
        assert_eq!(o.channel_of(":1.5", &cfg), None, "unknown: ask the bus");
        o.owner_changed(LAN, None, Some(":1.5"));
        o.owner_changed(KCS, None, Some(":1.6"));
        assert_eq!(
            o.channel_of(":1.5", &cfg),
            known(1, ChannelKind::SessionBased)
        );
        assert_eq!(
            o.channel_of(":1.6", &cfg),
            known(15, ChannelKind::SystemInterface)
        );
        // The LAN name moves to a restarted front end: the old connection is no longer LAN.
        o.owner_changed(LAN, Some(":1.5"), Some(":1.9"));
        assert_eq!(o.channel_of(":1.5", &cfg), None);
        assert_eq!(
            o.channel_of(":1.9", &cfg),
            known(1, ChannelKind::SessionBased)
        );
        // Released: forgotten, so the next request from it is looked up afresh.
        o.owner_changed(KCS, Some(":1.6"), None);
        assert_eq!(o.channel_of(":1.6", &cfg), None);
        assert!(!o.by_owner.contains_key(":1.6"), "no empty entries left");
    }

    #[test]
    fn unconfigured_and_unrelated_names() {
        let cfg = Config::default();
        let mut o = ChannelOwners::default();
        o.owner_changed(
            "xyz.openbmc_project.Ipmi.Channel.ipmi_bt9",
            None,
            Some(":1.7"),
        );
        assert_eq!(
            o.channel_of(":1.7", &cfg),
            Some(CallerChannel::Unknown("ipmi_bt9".to_owned()))
        );
        // Not a channel name at all (the arg0 namespace also matches the bare prefix).
        o.owner_changed("xyz.openbmc_project.Ipmi.Channel", None, Some(":1.8"));
        o.owner_changed("org.example.Other", None, Some(":1.8"));
        assert_eq!(o.channel_of(":1.8", &cfg), None);
    }

    #[test]
    fn two_names_on_one_connection_resolve_the_same_way_every_time() {
        let cfg = Config::default();
        let mut o = ChannelOwners::default();
        o.owner_changed("xyz.openbmc_project.Ipmi.Channel.eth1", None, Some(":1.3"));
        o.owner_changed(LAN, None, Some(":1.3"));
        assert_eq!(
            o.channel_of(":1.3", &cfg),
            known(1, ChannelKind::SessionBased)
        );
    }
}
