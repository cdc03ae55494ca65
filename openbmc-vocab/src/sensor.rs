//! `xyz.openbmc_project.Sensor.Value.Unit`.

dbus_enum! {
    /// Sensor units; temperature sensors must use `DegreesC`.
    pub enum Unit = "xyz.openbmc_project.Sensor.Value.Unit" {
        Amperes = "Amperes",
        Cfm = "CFM",
        DegreesC = "DegreesC",
        Hertz = "Hertz",
        Joules = "Joules",
        Lpm = "LPM",
        AmpereHours = "AmpereHours",
        Meters = "Meters",
        Percent = "Percent",
        PercentRh = "PercentRH",
        Pascals = "Pascals",
        Radians = "Radians",
        Rpms = "RPMS",
        Volts = "Volts",
        Watts = "Watts",
    }
}
