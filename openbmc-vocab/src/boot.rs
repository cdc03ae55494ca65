//! `xyz.openbmc_project.State.Boot.Progress.ProgressStages`.

dbus_enum! {
    /// Boot progress stages. bmcweb maps the first ten to Redfish `BootProgress.LastState`;
    /// `MotherboardInit` and `OEM` show as `None` there.
    pub enum ProgressStage = "xyz.openbmc_project.State.Boot.Progress.ProgressStages" {
        Unspecified = "Unspecified",
        PrimaryProcInit = "PrimaryProcInit",
        BusInit = "BusInit",
        MemoryInit = "MemoryInit",
        SecondaryProcInit = "SecondaryProcInit",
        PciInit = "PCIInit",
        SystemInitComplete = "SystemInitComplete",
        OsStart = "OSStart",
        OsRunning = "OSRunning",
        SystemSetup = "SystemSetup",
        MotherboardInit = "MotherboardInit",
        Oem = "OEM",
    }
}

impl ProgressStage {
    /// Whether bmcweb shows this stage as something other than `None`.
    pub fn redfish_visible(self) -> bool {
        !matches!(self, Self::Unspecified | Self::MotherboardInit | Self::Oem)
    }
}
