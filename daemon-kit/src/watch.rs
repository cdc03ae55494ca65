//! Following another service's properties: present or not, now or later.
//!
//! [`watch`] reports the full property set of one interface whenever its owner appears, each
//! `PropertiesChanged` while it is there, and [`Update::Gone`] when it leaves. Inputs that a
//! platform lacks simply never report; inputs that start late report when they start.

use std::collections::HashMap;

use futures_util::StreamExt;
use zbus::fdo::PropertiesProxy;
use zbus::message::Type as MsgType;
use zbus::names::InterfaceName;
use zbus::{Connection, MatchRule, OwnedVariant};

use crate::bus;

/// What a watched interface reported.
#[derive(Debug)]
pub enum Update {
    /// These properties have (or now have) these values.
    Values(HashMap<String, OwnedVariant>),
    /// The owning service left the bus.
    Gone,
}

/// Which interface to follow.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub bus: &'static str,
    pub path: &'static str,
    pub iface: &'static str,
}

/// Follow `target` for as long as the connection lives, calling `report` for every update.
/// Returns only on a connection error.
pub async fn watch(
    conn: &Connection,
    target: Target,
    report: impl FnMut(Update) + Send,
) -> zbus::Result<()> {
    watch_ready(conn, target, None, report).await
}

/// [`watch`], sending on `ready` once the subscriptions are in place and the current values
/// (if the service is there) have been reported — from then on no change can be missed. A
/// daemon tells systemd it is ready only after all its inputs are ready.
pub async fn watch_ready(
    conn: &Connection,
    target: Target,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
    mut report: impl FnMut(Update) + Send,
) -> zbus::Result<()> {
    follow(conn, target, ready, &mut report).await
}

/// The body of [`watch_ready`], not generic: compiled once in this crate rather than once per
/// caller and closure (see [`crate::bus`]).
#[inline(never)]
fn follow<'a>(
    conn: &'a Connection,
    target: Target,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
    report: &'a mut (dyn FnMut(Update) + Send),
) -> bus::BoxFuture<'a, zbus::Result<()>> {
    Box::pin(follow_inner(conn, target, ready, report))
}

async fn follow_inner(
    conn: &Connection,
    target: Target,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
    mut report: &mut (dyn FnMut(Update) + Send),
) -> zbus::Result<()> {
    let dbus = bus::dbus_proxy(conn).await?;
    // Subscribe before reading, so no change between the read and the subscription is lost.
    let owners = bus::owner_changes(&dbus, target.bus).await?;
    let rule = MatchRule::builder()
        .msg_type(MsgType::Signal)
        .sender(target.bus)
        .path(target.path)
        .interface("org.freedesktop.DBus.Properties")
        .member("PropertiesChanged")
        .arg(0, target.iface)
        .build()?;
    let changes = bus::match_stream(rule, conn).await?;
    let iface = InterfaceName::try_from(target.iface)?;

    let mut owner: Option<String> = match bus::name_owner(&dbus, target.bus.try_into()?).await {
        Ok(o) => Some(o.to_string()),
        Err(_) => None,
    };
    if let Some(o) = &owner {
        read_all(conn, o, target, &iface, &mut report).await;
    }
    if let Some(r) = ready {
        let _ = r.send(());
    }
    // Owner changes and property changes in the order the bus sent them: a service's last
    // announcement before it left must be taken before its departure, or it is taken as the
    // first word of a service that is not there (and a POST code becomes a mere baseline).
    use zbus::export::ordered_stream::OrderedStreamExt;
    let mut signals = bus::in_bus_order(
        OrderedStreamExt::map(owners, Signal::Owner),
        OrderedStreamExt::map(changes, Signal::Changed),
    );
    while let Some(signal) = signals.next().await {
        match signal {
            Signal::Owner(sig) => {
                let Ok(args) = sig.args() else { continue };
                let new = args.new_owner().as_ref().map(|n| n.to_string());
                match new {
                    Some(n) => {
                        read_all(conn, &n, target, &iface, &mut report).await;
                        owner = Some(n);
                    }
                    None => {
                        if owner.take().is_some() {
                            report(Update::Gone);
                        }
                    }
                }
            }
            Signal::Changed(msg) => {
                let Ok(msg) = msg else { continue };
                // Only the current owner speaks for the name (the local filter cannot check a
                // well-known sender; the bus already did, this guards against stale queues).
                let from = msg.header().sender().map(|s| s.to_string());
                if owner.is_some() && from != owner {
                    continue;
                }
                let body = msg.body();
                let Ok((_, changed, invalidated)) =
                    body.deserialize::<(String, HashMap<String, OwnedVariant>, Vec<String>)>()
                else {
                    continue;
                };
                if !changed.is_empty() {
                    report(Update::Values(changed));
                }
                if !invalidated.is_empty()
                    && let Some(o) = &owner
                {
                    read_all(conn, o, target, &iface, &mut report).await;
                }
            }
        }
    }
    Ok(())
}

/// One signal [`follow_inner`] follows.
enum Signal {
    Owner(zbus::fdo::NameOwnerChanged),
    Changed(zbus::Result<zbus::Message>),
}

/// How long a read of a followed service may take: a hung service must not stop us following
/// the signals that come after (its departure above all).
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Read every property from `owner`, the unique name of the service that owns `target.bus`
/// now: a read sent to the well-known name while it changes hands would be answered by
/// whoever owns it by then, and taken as this owner's word.
async fn read_all(
    conn: &Connection,
    owner: &str,
    target: Target,
    iface: &InterfaceName<'_>,
    report: &mut impl FnMut(Update),
) {
    let props = match PropertiesProxy::builder(conn)
        .destination(owner.to_owned())
        .path(target.path)
        .build()
        .await
    {
        Ok(p) => p,
        Err(e) => {
            log::warn!("{} {}: cannot build proxy: {e}", target.bus, target.path);
            return;
        }
    };
    let read = tokio::time::timeout(READ_TIMEOUT, props.get_all(iface.clone())).await;
    let Ok(read) = read else {
        log::warn!(
            "{} {} {}: GetAll not answered within {} ms",
            target.bus,
            target.path,
            target.iface,
            READ_TIMEOUT.as_millis()
        );
        return;
    };
    match read {
        Ok(all) => report(Update::Values(all)),
        // The service is there but does not (yet) serve the object: nothing to report.
        Err(e) => log::debug!(
            "{} {} {}: GetAll: {e}",
            target.bus,
            target.path,
            target.iface
        ),
    }
}

/// Decode a string property as an OpenBMC enum; `None` (with a warning) if it is not one.
pub fn enum_value<E: openbmc_like::Parse>(v: &OwnedVariant) -> Option<E> {
    let s: String = v.try_clone().ok()?.try_into().ok()?;
    match E::parse(&s) {
        Some(e) => Some(e),
        None => {
            log::warn!("ignoring unexpected value `{s}`");
            None
        }
    }
}

/// A seam so this crate does not depend on the vocabulary crate.
pub mod openbmc_like {
    /// Anything that parses from its D-Bus string.
    pub trait Parse: Sized {
        fn parse(s: &str) -> Option<Self>;
    }
    impl<T: std::str::FromStr> Parse for T {
        fn parse(s: &str) -> Option<Self> {
            s.parse().ok()
        }
    }
}
