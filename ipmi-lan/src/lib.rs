//! ipmi-lan: an RMCP+ (IPMI 2.0 over LAN) front end, so a stock `ipmitool -I lanplus` reaches
//! the acpigate IPMI command server.
//!
//! Split as every acpigate daemon is:
//!
//! * [`core`] — the session layer as a pure state machine (datagrams, execute replies and
//!   ticks in with the time passed in (`Now`, as in every core); datagrams, execute calls
//!   and log notes out;
//!   no I/O), by concern: before a session, the handshake, the established session, and the
//!   building blocks (lockout, replay window, the user table);
//! * `edge` (feature `daemon`) — the UDP socket, the D-Bus `execute` calls, the
//!   configuration and root-only users files.
//!
//! Beside them, used by both sides of the protocol:
//!
//! * [`wire`] — byte layouts, with typed decoders and encoders for every session-setup
//!   payload; [`crypto`] — cipher suites 3 and 17;
//! * [`client`] — a remote console (tests, fuzz seeds, decrypting captures, and tools that
//!   talk to a BMC), and [`console`] — that console over a UDP socket, with deadlines,
//!   retransmission and new logins, for tools (std only, no tokio).
//!
//! Without the `daemon` feature only the pure parts build, with no zbus and no tokio: what
//! the fuzz targets link.

pub mod client;
pub mod console;
pub mod core;
pub mod crypto;
#[cfg(feature = "daemon")]
pub mod edge;
pub mod wire;

#[cfg(feature = "daemon")]
pub use edge::main_with_args;
