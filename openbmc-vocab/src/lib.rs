//! The OpenBMC vocabulary acpigate speaks, defined once.
//!
//! Every bus name, object path, interface name and enum that crosses D-Bus lives here, so the
//! daemons never spell an OpenBMC string by hand. Enums serialize to the full dotted OpenBMC
//! form (`xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI.S2_D2`) with D-Bus signature
//! `s`, exactly as sdbusplus-based services put them on the bus.
//!
//! The zbus glue (`zbus::Type` for the enums, the `errors` module) is behind the `zbus` feature: the
//! D-Bus edges turn it on, while a pure core that only needs names and IPMI numbers (ipmi-lan's
//! session layer, fuzzed without zbus and tokio) leaves it off.

#[macro_use]
mod dbus_enum;

pub mod acpi;
pub mod acpigate;
pub mod boot;
#[cfg(feature = "zbus")]
pub mod errors;
pub mod ipmi;
pub mod names;
pub mod sensor;
pub mod state;
pub mod systemd;
pub mod time;

pub use dbus_enum::{DbusEnum, UnknownEnumValue};
