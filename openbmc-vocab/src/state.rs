//! `xyz.openbmc_project.State.*` enums: chassis, host, operating system.

dbus_enum! {
    /// `xyz.openbmc_project.State.Chassis.PowerState` (`CurrentPowerState`).
    pub enum ChassisPowerState = "xyz.openbmc_project.State.Chassis.PowerState" {
        Off = "Off",
        TransitioningToOff = "TransitioningToOff",
        On = "On",
        TransitioningToOn = "TransitioningToOn",
    }
}

dbus_enum! {
    /// `xyz.openbmc_project.State.Chassis.Transition` (`RequestedPowerTransition`).
    pub enum ChassisTransition = "xyz.openbmc_project.State.Chassis.Transition" {
        Off = "Off",
        On = "On",
        PowerCycle = "PowerCycle",
    }
}

dbus_enum! {
    /// `xyz.openbmc_project.State.Host.HostState` (`CurrentHostState`).
    pub enum HostState = "xyz.openbmc_project.State.Host.HostState" {
        Off = "Off",
        TransitioningToOff = "TransitioningToOff",
        Standby = "Standby",
        Running = "Running",
        TransitioningToRunning = "TransitioningToRunning",
        Quiesced = "Quiesced",
        DiagnosticMode = "DiagnosticMode",
    }
}

dbus_enum! {
    /// `xyz.openbmc_project.State.Host.Transition` (`RequestedHostTransition`).
    pub enum HostTransition = "xyz.openbmc_project.State.Host.Transition" {
        Off = "Off",
        On = "On",
        Reboot = "Reboot",
        GracefulWarmReboot = "GracefulWarmReboot",
        ForceWarmReboot = "ForceWarmReboot",
    }
}

dbus_enum! {
    /// `xyz.openbmc_project.State.OperatingSystem.Status.OSStatus` (`OperatingSystemState`).
    /// x86-power-control reports `Standby` while POST_COMPLETE is asserted, `Inactive` otherwise.
    pub enum OsStatus = "xyz.openbmc_project.State.OperatingSystem.Status.OSStatus" {
        CBoot = "CBoot",
        PxeBoot = "PXEBoot",
        DiagBoot = "DiagBoot",
        CdromBoot = "CDROMBoot",
        RomBoot = "ROMBoot",
        BootComplete = "BootComplete",
        Inactive = "Inactive",
        Standby = "Standby",
    }
}

impl ChassisPowerState {
    /// Power is on or coming on: the host may be running firmware.
    pub fn is_on(self) -> bool {
        matches!(self, Self::On | Self::TransitioningToOn)
    }
}

/// The short form of `Inactive` that dbus-sensors also accepts as "not in POST"
/// (openbmc/dbus-sensors fc2953c5, `src/Utils.hpp` namespace `post`): a BiosPost sensor reads
/// only while `OperatingSystemState` is neither this nor [`OsStatus::Inactive`]'s full string.
pub const OS_STATUS_INACTIVE_SHORT: &str = "Inactive";

impl OsStatus {
    /// Whether POST has completed (x86-power-control's POST_COMPLETE GPIO asserted, or a boot
    /// stage past POST reported by another implementation).
    pub fn post_complete(self) -> bool {
        !matches!(self, Self::Inactive)
    }
}
