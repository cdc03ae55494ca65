//! ipmi-lan: an RMCP+ (IPMI 2.0 over LAN) front end, so a stock `ipmitool -I lanplus` reaches
//! the acpigate IPMI command server.
//!
//! * [`core`] — the session layer as a pure state machine (no I/O, time passed in);
//! * [`wire`] — byte layouts; [`crypto`] — cipher suites 3 and 17;
//! * [`users`] — the root-only credentials file; [`lockout`], [`session`] — building blocks;
//! * [`client`] — a minimal remote console, for tests, fuzz seeds and cross-checks;
//! * [`edge`] — the UDP socket and the D-Bus `execute` calls.

pub mod client;
#[cfg(feature = "daemon")]
pub mod config;
pub mod core;
pub mod crypto;
#[cfg(feature = "daemon")]
pub mod edge;
pub mod lockout;
pub mod session;
pub mod users;
pub mod wire;

#[cfg(feature = "daemon")]
pub use edge::main_with_args;
