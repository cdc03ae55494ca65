//! The objects sensor-gate serves. Values are set by the edge from the core's actions; no
//! policy here.
//!
//! Per sensor, at `/xyz/openbmc_project/sensors/temperature/<Name>`: `Sensor.Value`,
//! `State.Decorator.Availability`, `State.Decorator.OperationalStatus`,
//! `Sensor.Threshold.Warning`, `Sensor.Threshold.Critical` (NaN = no threshold) and, when a
//! board is configured, `Association.Definitions` (`chassis`/`all_sensors`/board), with an
//! ObjectManager at `/xyz/openbmc_project/sensors`. Every interface is added when the object
//! is created and stays: pid-control restarts its loops on any interface added or removed
//! under the sensors path.
//!
//! The gate, at `/xyz/openbmc_project/acpigate/gate`, interface `org.acpigate.Gate`: its
//! contract (every property, type and meaning) is the table in `sensor-gate/README.md`; the
//! names are `openbmc_vocab::acpigate::gate_prop`.

use openbmc_vocab::acpigate::HostPhase;
use openbmc_vocab::sensor::Unit;
use zbus::interface;
use zbus::object_server::SignalEmitter;

use crate::core::GateStatus;

/// `xyz.openbmc_project.Sensor.Value`.
pub struct ValueIface {
    pub value: f64,
    pub min: f64,
    pub max: f64,
}

#[interface(name = "xyz.openbmc_project.Sensor.Value", introspection_docs = false)]
impl ValueIface {
    #[zbus(property, name = "Value")]
    fn value(&self) -> f64 {
        self.value
    }
    #[zbus(property, name = "MaxValue")]
    fn max_value(&self) -> f64 {
        self.max
    }
    #[zbus(property, name = "MinValue")]
    fn min_value(&self) -> f64 {
        self.min
    }
    #[zbus(property, name = "Unit")]
    fn unit(&self) -> Unit {
        Unit::DegreesC
    }
}

/// `xyz.openbmc_project.State.Decorator.Availability`.
pub struct AvailabilityIface {
    pub available: bool,
}

#[interface(
    name = "xyz.openbmc_project.State.Decorator.Availability",
    introspection_docs = false
)]
impl AvailabilityIface {
    #[zbus(property, name = "Available")]
    fn available(&self) -> bool {
        self.available
    }
}

/// `xyz.openbmc_project.State.Decorator.OperationalStatus`.
pub struct OperationalIface {
    pub functional: bool,
}

#[interface(
    name = "xyz.openbmc_project.State.Decorator.OperationalStatus",
    introspection_docs = false
)]
impl OperationalIface {
    #[zbus(property, name = "Functional")]
    fn functional(&self) -> bool {
        self.functional
    }
}

/// `xyz.openbmc_project.Sensor.Threshold.Warning`.
pub struct WarningIface {
    pub high: f64,
    pub low: f64,
    pub alarm_high: bool,
    pub alarm_low: bool,
}

#[interface(
    name = "xyz.openbmc_project.Sensor.Threshold.Warning",
    introspection_docs = false
)]
impl WarningIface {
    #[zbus(property, name = "WarningHigh")]
    fn warning_high(&self) -> f64 {
        self.high
    }
    #[zbus(property, name = "WarningLow")]
    fn warning_low(&self) -> f64 {
        self.low
    }
    #[zbus(property, name = "WarningAlarmHigh")]
    fn warning_alarm_high(&self) -> bool {
        self.alarm_high
    }
    #[zbus(property, name = "WarningAlarmLow")]
    fn warning_alarm_low(&self) -> bool {
        self.alarm_low
    }
    #[zbus(signal, name = "WarningHighAlarmAsserted")]
    pub async fn high_asserted(e: &SignalEmitter<'_>, sensor_value: f64) -> zbus::Result<()>;
    #[zbus(signal, name = "WarningHighAlarmDeasserted")]
    pub async fn high_deasserted(e: &SignalEmitter<'_>, sensor_value: f64) -> zbus::Result<()>;
    #[zbus(signal, name = "WarningLowAlarmAsserted")]
    pub async fn low_asserted(e: &SignalEmitter<'_>, sensor_value: f64) -> zbus::Result<()>;
    #[zbus(signal, name = "WarningLowAlarmDeasserted")]
    pub async fn low_deasserted(e: &SignalEmitter<'_>, sensor_value: f64) -> zbus::Result<()>;
}

/// `xyz.openbmc_project.Sensor.Threshold.Critical`.
pub struct CriticalIface {
    pub high: f64,
    pub low: f64,
    pub alarm_high: bool,
    pub alarm_low: bool,
}

#[interface(
    name = "xyz.openbmc_project.Sensor.Threshold.Critical",
    introspection_docs = false
)]
impl CriticalIface {
    #[zbus(property, name = "CriticalHigh")]
    fn critical_high(&self) -> f64 {
        self.high
    }
    #[zbus(property, name = "CriticalLow")]
    fn critical_low(&self) -> f64 {
        self.low
    }
    #[zbus(property, name = "CriticalAlarmHigh")]
    fn critical_alarm_high(&self) -> bool {
        self.alarm_high
    }
    #[zbus(property, name = "CriticalAlarmLow")]
    fn critical_alarm_low(&self) -> bool {
        self.alarm_low
    }
    #[zbus(signal, name = "CriticalHighAlarmAsserted")]
    pub async fn high_asserted(e: &SignalEmitter<'_>, sensor_value: f64) -> zbus::Result<()>;
    #[zbus(signal, name = "CriticalHighAlarmDeasserted")]
    pub async fn high_deasserted(e: &SignalEmitter<'_>, sensor_value: f64) -> zbus::Result<()>;
    #[zbus(signal, name = "CriticalLowAlarmAsserted")]
    pub async fn low_asserted(e: &SignalEmitter<'_>, sensor_value: f64) -> zbus::Result<()>;
    #[zbus(signal, name = "CriticalLowAlarmDeasserted")]
    pub async fn low_deasserted(e: &SignalEmitter<'_>, sensor_value: f64) -> zbus::Result<()>;
}

/// `org.acpigate.Gate` (see the module documentation).
pub struct GateIface {
    pub status: GateStatus,
}

#[interface(name = "org.acpigate.Gate", introspection_docs = false)]
impl GateIface {
    #[zbus(property, name = "Open")]
    fn open(&self) -> bool {
        self.status.open
    }
    #[zbus(property, name = "Enabled")]
    fn enabled(&self) -> bool {
        self.status.enabled
    }
    #[zbus(property, name = "Since")]
    fn since(&self) -> u64 {
        self.status.since_us
    }
    #[zbus(property, name = "Reason")]
    fn reason(&self) -> String {
        self.status.reason.clone()
    }
    #[zbus(property, name = "Phase")]
    fn phase(&self) -> HostPhase {
        self.status.phase
    }
    #[zbus(property, name = "Refused")]
    fn refused(&self) -> u64 {
        self.status.refused
    }
    #[zbus(property, name = "Closes")]
    fn closes(&self) -> u64 {
        self.status.closes
    }
    #[zbus(property, name = "LastCloseLatencyUsec")]
    fn last_close_latency_usec(&self) -> u64 {
        self.status.last_close_latency_us
    }
    #[zbus(property, name = "Discarded")]
    fn discarded(&self) -> u64 {
        self.status.discarded
    }
    /// `a(sss)`: (bus name, kind, detail) per other master found on a DIMM bus.
    #[zbus(property, name = "OtherMasters")]
    fn other_masters(&self) -> Vec<(String, String, String)> {
        self.status
            .other_masters
            .iter()
            .map(|m| (m.bus.clone(), m.kind.as_str().to_owned(), m.detail.clone()))
            .collect()
    }
}

/// `xyz.openbmc_project.Association.Definitions`: the sensor's chassis association, set
/// once when the object is created.
pub struct AssociationIface {
    pub associations: Vec<(String, String, String)>,
}

impl AssociationIface {
    /// The one association a DIMM sensor carries: it belongs to `board`'s chassis.
    pub fn chassis(board: &str) -> Self {
        use openbmc_vocab::names::association;
        Self {
            associations: vec![(
                association::CHASSIS.to_owned(),
                association::ALL_SENSORS.to_owned(),
                board.to_owned(),
            )],
        }
    }
}

#[interface(
    name = "xyz.openbmc_project.Association.Definitions",
    introspection_docs = false
)]
impl AssociationIface {
    #[zbus(property, name = "Associations")]
    fn associations(&self) -> Vec<(String, String, String)> {
        self.associations.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openbmc_vocab::names::iface;
    use zbus::object_server::Interface;

    #[test]
    fn interface_names_match_the_vocabulary() {
        // The macro needs literals; this keeps them equal to the one vocabulary.
        assert_eq!(ValueIface::name().as_str(), iface::SENSOR_VALUE);
        assert_eq!(AvailabilityIface::name().as_str(), iface::AVAILABILITY);
        assert_eq!(OperationalIface::name().as_str(), iface::OPERATIONAL_STATUS);
        assert_eq!(WarningIface::name().as_str(), iface::THRESHOLD_WARNING);
        assert_eq!(CriticalIface::name().as_str(), iface::THRESHOLD_CRITICAL);
        assert_eq!(GateIface::name().as_str(), iface::ACPIGATE_GATE);
        assert_eq!(
            AssociationIface::name().as_str(),
            iface::ASSOCIATION_DEFINITIONS
        );
    }

    #[test]
    fn the_association_property_is_read_only_and_named_upstream_s_way() {
        use openbmc_vocab::names::prop;
        let mut xml = String::new();
        AssociationIface::chassis("/xyz/openbmc_project/inventory/system/board/B")
            .introspect_to_writer(&mut xml, 0);
        assert!(
            xml.contains(&format!(
                "<property name=\"{}\" type=\"a(sss)\" access=\"read\"",
                prop::ASSOCIATIONS
            )),
            "{xml}"
        );
    }

    #[test]
    fn gate_property_names_match_the_vocabulary() {
        use openbmc_vocab::acpigate::gate_prop as g;
        let gate = GateIface {
            status: GateStatus {
                open: false,
                since_us: 0,
                reason: String::new(),
                phase: HostPhase::Unknown,
                refused: 0,
                closes: 0,
                last_close_latency_us: 0,
                discarded: 0,
                enabled: true,
                other_masters: Vec::new(),
            },
        };
        let mut xml = String::new();
        gate.introspect_to_writer(&mut xml, 0);
        let names = [
            g::OPEN,
            g::ENABLED,
            g::SINCE,
            g::REASON,
            g::PHASE,
            g::REFUSED,
            g::CLOSES,
            g::LAST_CLOSE_LATENCY_USEC,
            g::DISCARDED,
            g::OTHER_MASTERS,
        ];
        for n in names {
            assert!(
                xml.contains(&format!("name=\"{n}\"")),
                "{n} missing in {xml}"
            );
        }
        assert_eq!(xml.matches("<property ").count(), names.len(), "{xml}");
    }
}
