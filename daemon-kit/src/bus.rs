//! zbus calls that every daemon makes, compiled once.
//!
//! An `async fn`'s body is compiled into every crate that awaits it: its future type counts as
//! generic, and a release build does not share generic code between crates. Awaiting
//! `Builder::build()` in each daemon therefore put one copy of zbus's whole connection set-up
//! (handshake, socket reader, object server start) into the binary per daemon. Boxing the
//! future behind a non-generic function here compiles it once, in this crate; the cost is one
//! allocation per call. The same holds for every zbus call below that more than one daemon
//! crate makes: call these instead of the zbus method.

use std::future::Future;
use std::pin::Pin;

use zbus::fdo::{DBusProxy, NameOwnerChangedStream, PropertiesChangedStream, PropertiesProxy};
use zbus::names::{BusName, OwnedBusName, OwnedUniqueName};
use zbus::{Connection, MatchRule, MessageStream};

/// A boxed future; the type erasure is what keeps the body out of the caller's crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `builder.build()`, compiled here only.
#[inline(never)]
pub fn build(builder: zbus::connection::Builder<'_>) -> BoxFuture<'_, zbus::Result<Connection>> {
    Box::pin(builder.build())
}

/// `DBusProxy::new(conn)`, compiled here only.
#[inline(never)]
pub fn dbus_proxy(conn: &Connection) -> BoxFuture<'_, zbus::Result<DBusProxy<'static>>> {
    Box::pin(DBusProxy::new(conn))
}

/// Owner changes of one well-known name (`NameOwnerChanged` with arg0 = `name`), compiled
/// here only.
#[inline(never)]
pub fn owner_changes<'a>(
    dbus: &'a DBusProxy<'_>,
    name: &'a str,
) -> BoxFuture<'a, zbus::Result<NameOwnerChangedStream>> {
    Box::pin(async move {
        dbus.receive_name_owner_changed_with_args(&[(0, name)])
            .await
    })
}

/// Owner changes of every name (`NameOwnerChanged`), compiled here only.
#[inline(never)]
pub fn all_owner_changes<'a>(
    dbus: &'a DBusProxy<'_>,
) -> BoxFuture<'a, zbus::Result<NameOwnerChangedStream>> {
    Box::pin(dbus.receive_name_owner_changed())
}

/// `props.receive_properties_changed()`, compiled here only.
#[inline(never)]
pub fn properties_changes<'a>(
    props: &'a PropertiesProxy<'_>,
) -> BoxFuture<'a, zbus::Result<PropertiesChangedStream>> {
    Box::pin(props.receive_properties_changed())
}

/// `dbus.get_name_owner(name)`, compiled here only.
#[inline(never)]
pub fn name_owner<'a>(
    dbus: &'a DBusProxy<'_>,
    name: BusName<'a>,
) -> BoxFuture<'a, zbus::fdo::Result<OwnedUniqueName>> {
    Box::pin(dbus.get_name_owner(name))
}

/// `dbus.list_names()`, compiled here only.
#[inline(never)]
pub fn list_names<'a>(
    dbus: &'a DBusProxy<'_>,
) -> BoxFuture<'a, zbus::fdo::Result<Vec<OwnedBusName>>> {
    Box::pin(dbus.list_names())
}

/// `MessageStream::for_match_rule(rule, conn, None)`, compiled here only.
#[inline(never)]
pub fn match_stream<'a>(
    rule: MatchRule<'a>,
    conn: &'a Connection,
) -> BoxFuture<'a, zbus::Result<MessageStream>> {
    Box::pin(MessageStream::for_match_rule(rule, conn, None))
}

/// `conn.request_name(name)`, compiled here only.
#[inline(never)]
pub fn request_name<'a>(conn: &'a Connection, name: &'a str) -> BoxFuture<'a, zbus::Result<()>> {
    Box::pin(conn.request_name(name))
}

pub use crate::order::{InBusOrder, in_bus_order};
