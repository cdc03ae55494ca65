//! zbus calls that every daemon makes, compiled once.
//!
//! An `async fn`'s body is compiled into every crate that awaits it: its future type counts as
//! generic, and a release build does not share generic code between crates. Awaiting
//! `Builder::build()` in each daemon therefore put one copy of zbus's whole connection set-up
//! (handshake, socket reader, object server start) into the binary per daemon. Boxing the
//! future behind a non-generic function here compiles it once, in this crate; the cost is one
//! allocation per call.

use std::future::Future;
use std::pin::Pin;

use zbus::Connection;

/// A boxed future; the type erasure is what keeps the body out of the caller's crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `builder.build()`, compiled here only.
#[inline(never)]
pub fn build(builder: zbus::connection::Builder<'_>) -> BoxFuture<'_, zbus::Result<Connection>> {
    Box::pin(builder.build())
}
