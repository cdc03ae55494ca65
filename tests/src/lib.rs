//! The hardware-free BMC simulator and the bus-tier harness.
//!
//! * [`harness`] — a private system-like `dbus-daemon` and the real `acpigate` binary;
//! * [`platform`] — simulated chassis/host power, POST codes, systemd;
//! * [`acpi_client`] — the ACPI object as ipmid and operators use it;
//! * [`world`], [`host_firmware`], [`soak`] — the whole simulated server around the real
//!   daemons, the host firmware model, and the many-boot soak.

pub mod acpi_client;
pub mod fans;
pub mod harness;
pub mod host_firmware;
pub mod ipmi_sim;
pub mod platform;
pub mod smbus;
pub mod soak;
pub mod timeline_svg;
pub mod world;
