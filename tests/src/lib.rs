//! The bus-tier harness and the end-to-end tests: our real daemons, run as the `acpigate`
//! binary on a private bus, against the simulator (`acpigate-sim`), driven and watched from
//! here.
//!
//! * [`harness`] — a private system-like `dbus-daemon` and the real `acpigate` binary;
//! * [`acpi_client`], [`ipmi_client`] — acpi-state-daemon's object and ipmi-handlers'
//!   `execute` as ipmid, kcsbridge, ipmitool and operators use them;
//! * [`world`] — the whole simulated server around the real daemons, with one timeline;
//! * [`soak`] — many boots of it with randomized timing and faults;
//! * [`timeline_svg`] — the demo's picture of a run.
//!
//! What stands for hardware or for other daemons is in `acpigate-sim`; what drives or
//! observes our own daemons is here.

pub mod acpi_client;
pub mod harness;
pub mod ipmi_client;
pub mod soak;
pub mod timeline_svg;
pub mod world;
