//! The simulator: the hardware and the platform services that are not on this machine,
//! shaped like what a BMC running acpigate meets on a real board, so the real daemons can be
//! run against them on a private bus (the bus tier, the demo, the soak in `acpigate-tests`)
//! or on a VM's system bus (the machine tier, `machine-platform`).
//!
//! * [`smbus`] — the DIMM SMBus with two masters, the BMC (sensor-gate's `sim:` backend)
//!   and the host firmware, and the DIMMs on it: JC-42.4 TSODs, SPD EEPROMs, SPD5118 hubs;
//! * [`host_firmware`] — the host firmware: power-on, POST codes, SPD enumeration over the
//!   shared bus, the ACPI states it reports, warm resets, shutdown and power loss;
//! * [`platform`] — power control and host state as x86-power-control and
//!   phosphor-state-manager publish them, POST codes as phosphor-host-postd does, and a
//!   systemd manager;
//! * [`fans`] — phosphor-pid-control's zones and fail-safe rules, and the PWM objects of
//!   dbus-sensors;
//! * [`sensors`] — a third-party temperature sensor service shaped like dbus-sensors;
//! * [`inventory`] — entity-manager's board object, and the mapper's view of who serves it;
//! * [`bios_post`] — a dbus-sensors `PowerState: "BiosPost"` sensor's view of the host;
//! * [`sel_logger`] — phosphor-sel-logger's `IpmiSelAdd`.
//!
//! The rule: everything here stands for hardware or for somebody else's daemon, never for
//! acpigate's own code. A test that needs our daemons runs the real `acpigate` binary
//! (`acpigate-tests`' harness); what drives and observes them lives there too, so this crate
//! depends on no acpigate daemon crate and on nothing of the harness.

use anyhow::{Context, Result};

pub mod bios_post;
pub mod fans;
pub mod host_firmware;
pub mod inventory;
pub mod platform;
pub mod sel_logger;
pub mod sensors;
pub mod smbus;

/// A D-Bus bus that a simulated service can join: the harness's private `dbus-daemon`, or
/// any other bus whose address is known. Each service makes its own connection from it, so
/// a test can make one vanish and come back, as a crashed daemon would.
pub trait BusAddress {
    /// The address clients connect to (`unix:path=…,guid=…`).
    fn address(&self) -> &str;
}

/// A new connection to `bus`.
pub async fn connect(bus: &impl BusAddress) -> Result<zbus::Connection> {
    zbus::connection::Builder::address(bus.address())
        .build()
        .await
        .with_context(|| format!("connecting to the bus at {}", bus.address()))
}
