//! The hardware-free BMC simulator and the bus-tier harness.
//!
//! * [`harness`] — a private system-like `dbus-daemon` and the real `acpigate` binary;
//! * [`platform`] — simulated chassis/host power, POST codes, systemd;
//! * [`acpi_client`] — the ACPI object as ipmid and operators use it.

pub mod acpi_client;
pub mod fans;
pub mod harness;
pub mod platform;
pub mod smbus;
