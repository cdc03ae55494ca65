//! A third-party temperature sensor service, shaped like dbus-sensors (hwmontemp and its
//! kind): an ObjectManager at `/xyz/openbmc_project/sensors` and, per sensor,
//! `Sensor.Value`, `State.Decorator.Availability` and `Sensor.Threshold.Warning` objects under
//! `/xyz/openbmc_project/sensors/temperature/<name>`, on a connection of its own.
//!
//! ipmi-handlers serves every temperature sensor on the bus, not only sensor-gate's; this is
//! the neighbour it has on a real BMC, so the bus tier can check sensor numbers, readings and
//! thresholds of sensors it did not make, and sensors that come and go.

use anyhow::Result;
use openbmc_vocab::names::path;
use openbmc_vocab::sensor::Unit;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, interface};

use crate::BusAddress;

struct ValueIface {
    value: f64,
}

#[interface(name = "xyz.openbmc_project.Sensor.Value")]
impl ValueIface {
    #[zbus(property)]
    fn value(&self) -> f64 {
        self.value
    }
    #[zbus(property)]
    fn max_value(&self) -> f64 {
        127.0
    }
    #[zbus(property)]
    fn min_value(&self) -> f64 {
        -128.0
    }
    #[zbus(property)]
    fn unit(&self) -> Unit {
        Unit::DegreesC
    }
}

struct AvailabilityIface {
    available: bool,
}

#[interface(name = "xyz.openbmc_project.State.Decorator.Availability")]
impl AvailabilityIface {
    #[zbus(property)]
    fn available(&self) -> bool {
        self.available
    }
}

struct WarningIface {
    high: f64,
    alarm_high: bool,
}

#[interface(name = "xyz.openbmc_project.Sensor.Threshold.Warning")]
impl WarningIface {
    #[zbus(property)]
    fn warning_high(&self) -> f64 {
        self.high
    }
    #[zbus(property)]
    fn warning_low(&self) -> f64 {
        f64::NAN
    }
    #[zbus(property)]
    fn warning_alarm_high(&self) -> bool {
        self.alarm_high
    }
    #[zbus(property)]
    fn warning_alarm_low(&self) -> bool {
        false
    }
}

/// A temperature sensor service (e.g. dbus-sensors' hwmontemp) with its own connection.
pub struct TempSensors {
    conn: Connection,
}

impl TempSensors {
    /// Join `bus` and own `name` (e.g. `xyz.openbmc_project.HwmonTempSensor`).
    pub async fn start(bus: &impl BusAddress, name: &str) -> Result<Self> {
        let conn = crate::connect(bus).await?;
        conn.object_server()
            .at(path::SENSORS, zbus::fdo::ObjectManager)
            .await?;
        conn.request_name(name).await?;
        Ok(Self { conn })
    }

    pub async fn add(&self, name: &str, value: f64, warning_high: f64) -> Result<()> {
        let p = path::temperature_sensor(name);
        let os = self.conn.object_server();
        os.at(p.as_str(), ValueIface { value }).await?;
        os.at(p.as_str(), AvailabilityIface { available: true })
            .await?;
        os.at(
            p.as_str(),
            WarningIface {
                high: warning_high,
                alarm_high: value >= warning_high,
            },
        )
        .await?;
        Ok(())
    }

    pub async fn remove(&self, name: &str) -> Result<()> {
        let p = path::temperature_sensor(name);
        let os = self.conn.object_server();
        os.remove::<WarningIface, _>(p.as_str()).await?;
        os.remove::<AvailabilityIface, _>(p.as_str()).await?;
        os.remove::<ValueIface, _>(p.as_str()).await?;
        Ok(())
    }

    /// Mark a sensor (un)available, as a gated sensor is, with PropertiesChanged.
    pub async fn set_available(&self, name: &str, available: bool) -> Result<()> {
        let p = path::temperature_sensor(name);
        let r = self
            .conn
            .object_server()
            .interface::<_, AvailabilityIface>(p.as_str())
            .await?;
        r.get_mut().await.available = available;
        let e: &SignalEmitter<'_> = r.signal_emitter();
        r.get().await.available_changed(e).await?;
        Ok(())
    }
}
