//! acpigate's own D-Bus vocabulary: the host phase the suite acts on.
//!
//! `org.acpigate.HostPhase` sits on the ACPI object beside the standard interface:
//!
//! | property | type | meaning |
//! |---|---|---|
//! | `Phase` | s | `org.acpigate.HostPhase.Phase.<Working\|FirmwareInit\|Sleeping\|Off\|Unknown>` |
//! | `Reason` | s | why the phase last changed, for people (e.g. `chassis power off`) |
//! | `Since` | t | when the phase last changed, µs since the epoch (as `BootProgressLastUpdate`) |
//! | `Generation` | t | incremented on every phase change, so a consumer can tell a new S0 from an old one |
//! | `FirmwareInitUsec` | t | last boot: time from the start of firmware init to S0 (0 if none yet) |
//! | `BootCount` | t | firmware-init → working transitions seen since the daemon started |
//! | `GateWindows` | t | last boot: number of firmware-init windows before it reached S0 |
//!
//! The gate (sensor-gate) opens only while `Phase` is `Working` and has been for its settle
//! delay; every other phase closes it.

use crate::acpi::AcpiState;

dbus_enum! {
    /// The derived host phase.
    pub enum HostPhase = "org.acpigate.HostPhase.Phase" {
        /// S0: the OS owns the host; the BMC may use the DIMM SMBus.
        Working = "Working",
        /// Power-on, warm reset or S2: the firmware may be enumerating memory over the SMBus.
        FirmwareInit = "FirmwareInit",
        /// S1/S3 and other sleep states: not working, sensors may be unpowered.
        Sleeping = "Sleeping",
        /// S4/S5/G3: host off.
        Off = "Off",
        /// Not known yet (daemon start with no inputs).
        Unknown = "Unknown",
    }
}

/// Property names of `org.acpigate.HostPhase`.
pub mod prop {
    pub const PHASE: &str = "Phase";
    pub const REASON: &str = "Reason";
    pub const SINCE: &str = "Since";
    pub const GENERATION: &str = "Generation";
    pub const FIRMWARE_INIT_USEC: &str = "FirmwareInitUsec";
    pub const BOOT_COUNT: &str = "BootCount";
    pub const GATE_WINDOWS: &str = "GateWindows";
    pub const TIME_TO_WORKING_USEC: &str = "TimeToWorkingUsec";
}

/// Property names of `org.acpigate.Gate`, sensor-gate's gate status (all read-only; see
/// `sensor-gate/README.md`).
pub mod gate_prop {
    /// b: DIMM SMBus reads allowed now.
    pub const OPEN: &str = "Open";
    /// b: false only in the gate-disabled control configuration.
    pub const ENABLED: &str = "Enabled";
    /// t: last open/close, µs since the epoch.
    pub const SINCE: &str = "Since";
    /// s: why, for people.
    pub const REASON: &str = "Reason";
    /// s: the last host phase seen.
    pub const PHASE: &str = "Phase";
    /// t: reads due while closed and not started.
    pub const REFUSED: &str = "Refused";
    /// t: times the gate closed.
    pub const CLOSES: &str = "Closes";
    /// t: the phase source's `Since` to the close, µs.
    pub const LAST_CLOSE_LATENCY_USEC: &str = "LastCloseLatencyUsec";
    /// t: reads finished after a close and thrown away.
    pub const DISCARDED: &str = "Discarded";
    /// a(sss): other masters on the DIMM buses, (bus name, kind, detail); kind is
    /// `driver`, `eeprom`, `open` or `frudevice`.
    pub const OTHER_MASTERS: &str = "OtherMasters";
}

impl HostPhase {
    /// The phase an ACPI system state puts the host in.
    pub fn for_state(state: AcpiState) -> Self {
        match state {
            AcpiState::S0G0D0 | AcpiState::LegacyOn => Self::Working,
            AcpiState::S2D2 => Self::FirmwareInit,
            AcpiState::S1D1 | AcpiState::S3D3 | AcpiState::Sleep | AcpiState::G1Sleep => {
                Self::Sleeping
            }
            AcpiState::S4
            | AcpiState::S5G2
            | AcpiState::S4S5
            | AcpiState::G3
            | AcpiState::Override
            | AcpiState::LegacyOff => Self::Off,
            AcpiState::Unknown => Self::Unknown,
        }
    }

    /// Whether the host's own sensors are powered in this phase.
    pub fn host_powered(self) -> bool {
        matches!(self, Self::Working | Self::FirmwareInit)
    }
}
