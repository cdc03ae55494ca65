//! Creating and removing a sensor's D-Bus object, every interface at once.
//!
//! pid-control restarts its control loops on any interface added to or removed from an
//! object under `/xyz/openbmc_project/sensors` (see [`super::dbus`]): an object is created
//! whole when its sensor is configured and removed whole when its configuration goes, and
//! nothing in between adds or removes an interface.

use anyhow::{Context, Result};
use zbus::ObjectServer;

use super::config::SensorConfig;
use super::dbus::{
    AssociationIface, AvailabilityIface, CriticalIface, OperationalIface, ValueIface, WarningIface,
};

/// Serve `s`'s object at `p` with its initial state: no value, not available.
pub(super) async fn create(server: &ObjectServer, p: &str, s: &SensorConfig) -> Result<()> {
    let t = s.spec.thresholds;
    let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let what = || format!("sensor object {p}");
    server
        .at(
            p,
            ValueIface {
                value: f64::NAN,
                min: s.min,
                max: s.max,
            },
        )
        .await
        .with_context(what)?;
    server
        .at(p, AvailabilityIface { available: false })
        .await
        .with_context(what)?;
    server
        .at(p, OperationalIface { functional: true })
        .await
        .with_context(what)?;
    server
        .at(
            p,
            WarningIface {
                high: nan(t.warning_high),
                low: nan(t.warning_low),
                alarm_high: false,
                alarm_low: false,
            },
        )
        .await
        .with_context(what)?;
    server
        .at(
            p,
            CriticalIface {
                high: nan(t.critical_high),
                low: nan(t.critical_low),
                alarm_high: false,
                alarm_low: false,
            },
        )
        .await
        .with_context(what)?;
    // Set now or never: bmcweb finds the sensor through it, and pid-control restarts its
    // loops on any interface added to a sensor later.
    if let Some(board) = &s.board {
        server
            .at(p, AssociationIface::chassis(board))
            .await
            .with_context(what)?;
    }
    Ok(())
}

/// Stop serving the object at `p`: every interface it has (the association only if it was
/// given one).
pub(super) async fn remove(server: &ObjectServer, p: &str) -> Result<()> {
    use zbus::object_server::Interface;
    let names = [
        AssociationIface::name(),
        CriticalIface::name(),
        WarningIface::name(),
        OperationalIface::name(),
        AvailabilityIface::name(),
        ValueIface::name(),
    ];
    for name in names {
        match server.remove_named(p, name.clone()).await {
            Ok(_) | Err(zbus::Error::InterfaceNotFound) => {}
            Err(e) => return Err(e).with_context(|| format!("removing {name} from {p}")),
        }
    }
    Ok(())
}
