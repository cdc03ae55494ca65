//! The read-only view of the platform a command is decided against. The edge fills it from
//! D-Bus (fresh for ACPI and chassis state, from its signal-fed cache for sensors).

use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::state::ChassisPowerState;
use openbmc_vocab::time::Now;

/// One D-Bus sensor as last seen.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorSnapshot {
    /// Full object path, e.g. `/xyz/openbmc_project/sensors/temperature/DIMM_A0`; the key of
    /// the stable number map.
    pub path: String,
    pub value: f64,
    pub min: f64,
    pub max: f64,
    /// `Availability.Available` (true when the interface is absent, as upstream defaults).
    pub available: bool,
    /// `OperationalStatus.Functional` (true when absent). Not used for the reading byte, as
    /// upstream dbus-sdr does not use it either; kept for completeness of the view.
    pub functional: bool,
    pub warning_high: f64,
    pub warning_low: f64,
    pub critical_high: f64,
    pub critical_low: f64,
    pub warning_alarm_high: bool,
    pub warning_alarm_low: bool,
    pub critical_alarm_high: bool,
    pub critical_alarm_low: bool,
}

impl SensorSnapshot {
    /// A sensor with a value and no thresholds, limits or alarms.
    pub fn new(path: &str, value: f64) -> Self {
        Self {
            path: path.to_owned(),
            value,
            min: f64::NEG_INFINITY,
            max: f64::INFINITY,
            available: true,
            functional: true,
            warning_high: f64::NAN,
            warning_low: f64::NAN,
            critical_high: f64::NAN,
            critical_low: f64::NAN,
            warning_alarm_high: false,
            warning_alarm_low: false,
            critical_alarm_high: false,
            critical_alarm_low: false,
        }
    }

    /// The last path segment: the SDR ID string (cut to 16 bytes there).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// What a handler may look at. `None` means "could not be read" (no such object, or the
/// call failed); handlers that need it answer 0xFF.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformView {
    /// `(SysACPIStatus, DevACPIStatus)` of the ACPI object.
    pub acpi: Option<(AcpiState, AcpiState)>,
    pub chassis_power: Option<ChassisPowerState>,
    /// Temperature sensors currently on the bus.
    pub sensors: Vec<SensorSnapshot>,
    /// When the request is decided: rate limits count on the monotonic clock, the SEL stamps
    /// with the wall clock's seconds.
    pub now: Now,
}

impl PlatformView {
    /// Nothing read yet, at `now`.
    pub fn at(now: Now) -> Self {
        Self {
            acpi: None,
            chassis_power: None,
            sensors: Vec::new(),
            now,
        }
    }

    pub fn sensor(&self, path: &str) -> Option<&SensorSnapshot> {
        self.sensors.iter().find(|s| s.path == path)
    }
}
