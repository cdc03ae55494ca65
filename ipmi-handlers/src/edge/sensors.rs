//! The temperature sensors on the bus, kept current by signals. There is no object mapper on
//! every image (nor on our test bus), so services are found by listing bus names and asking
//! each for its objects under `/xyz/openbmc_project/sensors` (where every Sensor.Value
//! service must serve an ObjectManager); after that, InterfacesAdded/Removed and
//! NameOwnerChanged trigger a rescan of that one service and PropertiesChanged updates values.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::StreamExt;
use openbmc_vocab::names::{bus, iface, path, prop};
use zbus::fdo::ObjectManagerProxy;
use zbus::message::Type as MsgType;
use zbus::{Connection, MatchRule, OwnedVariant, Variant};

use super::bus::call_deadline;
use crate::core::platform::SensorSnapshot;

/// Sensors by object path, with the unique name of the connection serving each.
#[derive(Debug, Default)]
pub struct SensorCache {
    by_path: BTreeMap<String, (String, SensorSnapshot)>,
}

pub type SharedCache = Arc<Mutex<SensorCache>>;

pub fn lock(c: &SharedCache) -> MutexGuard<'_, SensorCache> {
    // A panic while holding the lock cannot leave the map half-updated in a harmful way.
    c.lock().unwrap_or_else(|e| e.into_inner())
}

impl SensorCache {
    pub fn snapshot(&self) -> Vec<SensorSnapshot> {
        self.by_path.values().map(|(_, s)| s.clone()).collect()
    }

    pub fn paths(&self) -> Vec<String> {
        self.by_path.keys().cloned().collect()
    }

    /// Replace everything `owner` serves; returns whether the set of paths changed.
    fn replace_owner(&mut self, owner: &str, sensors: Vec<SensorSnapshot>) -> bool {
        let before: Vec<String> = self.paths();
        self.by_path.retain(|_, (o, _)| o != owner);
        for s in sensors {
            self.by_path.insert(s.path.clone(), (owner.to_owned(), s));
        }
        before != self.paths()
    }

    fn update(
        &mut self,
        owner: &str,
        obj: &str,
        iface_name: &str,
        changed: &HashMap<String, OwnedVariant>,
    ) {
        if let Some((o, s)) = self.by_path.get_mut(obj)
            && o == owner
        {
            apply(s, iface_name, changed);
        }
    }
}

fn f64_of(v: &OwnedVariant) -> Option<f64> {
    match &**v {
        Variant::F64(x) => Some(*x),
        Variant::I64(x) => Some(*x as f64),
        Variant::I32(x) => Some(f64::from(*x)),
        _ => None,
    }
}

fn bool_of(v: &OwnedVariant) -> Option<bool> {
    match &**v {
        Variant::Bool(b) => Some(*b),
        _ => None,
    }
}

/// Fold one interface's properties into a snapshot.
fn apply(s: &mut SensorSnapshot, iface_name: &str, props: &HashMap<String, OwnedVariant>) {
    let f = |k: &str| props.get(k).and_then(f64_of);
    let b = |k: &str| props.get(k).and_then(bool_of);
    match iface_name {
        iface::SENSOR_VALUE => {
            if let Some(v) = f(prop::VALUE) {
                s.value = v;
            }
            if let Some(v) = f(prop::MIN_VALUE) {
                s.min = v;
            }
            if let Some(v) = f(prop::MAX_VALUE) {
                s.max = v;
            }
        }
        iface::AVAILABILITY => {
            if let Some(v) = b(prop::AVAILABLE) {
                s.available = v;
            }
        }
        iface::OPERATIONAL_STATUS => {
            if let Some(v) = b(prop::FUNCTIONAL) {
                s.functional = v;
            }
        }
        iface::THRESHOLD_WARNING => {
            if let Some(v) = f(prop::WARNING_HIGH) {
                s.warning_high = v;
            }
            if let Some(v) = f(prop::WARNING_LOW) {
                s.warning_low = v;
            }
            if let Some(v) = b(prop::WARNING_ALARM_HIGH) {
                s.warning_alarm_high = v;
            }
            if let Some(v) = b(prop::WARNING_ALARM_LOW) {
                s.warning_alarm_low = v;
            }
        }
        iface::THRESHOLD_CRITICAL => {
            if let Some(v) = f(prop::CRITICAL_HIGH) {
                s.critical_high = v;
            }
            if let Some(v) = f(prop::CRITICAL_LOW) {
                s.critical_low = v;
            }
            if let Some(v) = b(prop::CRITICAL_ALARM_HIGH) {
                s.critical_alarm_high = v;
            }
            if let Some(v) = b(prop::CRITICAL_ALARM_LOW) {
                s.critical_alarm_low = v;
            }
        }
        _ => {}
    }
}

fn is_temperature(obj: &str) -> bool {
    obj.strip_prefix(path::TEMPERATURE_SENSORS)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// Ask one connection for its temperature sensors; `None` if it has no sensor tree (or does
/// not answer in time).
async fn scan_owner(conn: &Connection, owner: &str) -> Option<Vec<SensorSnapshot>> {
    let om = ObjectManagerProxy::builder(conn)
        .destination(owner.to_owned())
        .path(path::SENSORS)
        .build()
        .await
        .ok()?;
    let objects = tokio::time::timeout(call_deadline(), om.get_managed_objects())
        .await
        .ok()?
        .ok()?;
    let mut out = Vec::new();
    for (obj, ifaces) in objects {
        let obj = obj.as_str();
        if !is_temperature(obj) {
            continue;
        }
        let Some(value) = ifaces
            .iter()
            .find(|(i, _)| i.as_str() == iface::SENSOR_VALUE)
            .map(|(_, p)| p)
        else {
            continue;
        };
        let mut s = SensorSnapshot::new(obj, f64::NAN);
        apply(&mut s, iface::SENSOR_VALUE, value);
        for (i, p) in &ifaces {
            if i.as_str() != iface::SENSOR_VALUE {
                apply(&mut s, i.as_str(), p);
            }
        }
        out.push(s);
    }
    Some(out)
}

/// Everyone on the bus worth asking: the owners of well-known names, once each.
async fn owners(conn: &Connection, ignored: &[String], own: &str) -> zbus::Result<Vec<String>> {
    let dbus = daemon_kit::bus::dbus_proxy(conn).await?;
    let mut owners = Vec::new();
    for n in daemon_kit::bus::list_names(&dbus).await? {
        let n = n.as_str();
        if n.starts_with(':') || n == bus::DBUS || ignored.iter().any(|i| i == n) {
            continue;
        }
        if let Ok(o) = daemon_kit::bus::name_owner(&dbus, n.try_into()?).await {
            let o = o.to_string();
            if o != own && !owners.contains(&o) {
                owners.push(o);
            }
        }
    }
    Ok(owners)
}

/// Services asked at once during a full scan, so one slow service does not hold up the rest.
const SCAN_CONCURRENCY: usize = 8;

/// Scan the whole bus once (at start).
pub async fn full_scan(
    conn: &Connection,
    cache: &SharedCache,
    ignored: &[String],
) -> zbus::Result<()> {
    let own = conn
        .unique_name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let found: Vec<(String, Option<Vec<SensorSnapshot>>)> =
        futures_util::stream::iter(owners(conn, ignored, &own).await?)
            .map(|o| async move {
                let list = scan_owner(conn, &o).await;
                (o, list)
            })
            .buffer_unordered(SCAN_CONCURRENCY)
            .collect()
            .await;
    let mut c = lock(cache);
    for (o, list) in found {
        if let Some(list) = list
            && !list.is_empty()
        {
            c.replace_owner(&o, list);
        }
    }
    Ok(())
}

/// Follow the bus forever, calling `membership_changed` whenever sensors come or go.
pub async fn follow(
    conn: Connection,
    cache: SharedCache,
    ignored: Vec<String>,
    membership_changed: impl Fn(),
) -> zbus::Result<()> {
    let om_rule = MatchRule::builder()
        .msg_type(MsgType::Signal)
        .interface(iface::OBJECT_MANAGER)
        .path_namespace(path::SENSORS)
        .build()?;
    let props_rule = MatchRule::builder()
        .msg_type(MsgType::Signal)
        .interface(iface::PROPERTIES)
        .member("PropertiesChanged")
        .path_namespace(path::SENSORS)
        .build()?;
    let om_sigs = daemon_kit::bus::match_stream(om_rule, &conn).await?;
    let prop_sigs = daemon_kit::bus::match_stream(props_rule, &conn).await?;
    let dbus = daemon_kit::bus::dbus_proxy(&conn).await?;
    let owner_changes = daemon_kit::bus::all_owner_changes(&dbus).await?;
    // In the order the bus sent them: a sensor service's last changes before it left must not
    // be applied after its departure emptied its entries.
    let mut signals = {
        use zbus::export::ordered_stream::{OrderedStreamExt, join};
        daemon_kit::bus::in_bus_order(
            join(
                OrderedStreamExt::map(om_sigs, SensorSignal::Objects),
                OrderedStreamExt::map(prop_sigs, SensorSignal::Properties),
            ),
            OrderedStreamExt::map(owner_changes, SensorSignal::Owner),
        )
    };
    // Subscribed first, scanned second: nothing between the two is missed.
    full_scan(&conn, &cache, &ignored).await?;
    membership_changed();
    let own = conn
        .unique_name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    while let Some(signal) = signals.next().await {
        match signal {
            SensorSignal::Objects(m) => {
                let Ok(m) = m else { continue };
                let Some(sender) = m.header().sender().map(|s| s.to_string()) else {
                    continue;
                };
                if sender == own {
                    continue;
                }
                if let Some(list) = scan_owner(&conn, &sender).await
                    && lock(&cache).replace_owner(&sender, list)
                {
                    membership_changed();
                }
            }
            SensorSignal::Properties(m) => {
                let Ok(m) = m else { continue };
                let hdr = m.header();
                let (Some(sender), Some(obj)) = (hdr.sender(), hdr.path()) else {
                    continue;
                };
                let Ok((ifc, changed, _)) =
                    m.body()
                        .deserialize::<(String, HashMap<String, OwnedVariant>, Vec<String>)>()
                else {
                    continue;
                };
                lock(&cache).update(sender.as_str(), obj.as_str(), &ifc, &changed);
            }
            SensorSignal::Owner(s) => {
                let Ok(args) = s.args() else { continue };
                let name = args.name().to_string();
                match args.new_owner().as_ref() {
                    // A connection left: everything it served is gone.
                    None if name.starts_with(':')
                        && lock(&cache).replace_owner(&name, Vec::new()) =>
                    {
                        membership_changed();
                    }
                    Some(new)
                        if !name.starts_with(':')
                            && !ignored.contains(&name)
                            && name != bus::DBUS =>
                    {
                        let new = new.to_string();
                        if new != own
                            && let Some(list) = scan_owner(&conn, &new).await
                            && lock(&cache).replace_owner(&new, list)
                        {
                            membership_changed();
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// One signal the sensor cache follows.
enum SensorSignal {
    Objects(zbus::Result<zbus::Message>),
    Properties(zbus::Result<zbus::Message>),
    Owner(zbus::fdo::NameOwnerChanged),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_direct_temperature_children_count() {
        assert!(is_temperature(
            "/xyz/openbmc_project/sensors/temperature/DIMM_A0"
        ));
        assert!(!is_temperature("/xyz/openbmc_project/sensors/temperature"));
        assert!(!is_temperature("/xyz/openbmc_project/sensors/temperature/"));
        assert!(!is_temperature("/xyz/openbmc_project/sensors/voltage/P3V3"));
        assert!(!is_temperature(
            "/xyz/openbmc_project/sensors/temperature/a/b"
        ));
        assert!(!is_temperature(
            "/xyz/openbmc_project/sensors/temperatureX/a"
        ));
    }

    #[test]
    fn properties_fold_into_the_snapshot() {
        let mut s = SensorSnapshot::new("/p", f64::NAN);
        let v = |x: f64| Variant::F64(x).try_to_owned().expect("owned");
        let b = |x: bool| Variant::Bool(x).try_to_owned().expect("owned");
        apply(
            &mut s,
            iface::SENSOR_VALUE,
            &HashMap::from([
                ("Value".to_owned(), v(41.5)),
                ("MaxValue".to_owned(), v(127.0)),
            ]),
        );
        apply(
            &mut s,
            iface::AVAILABILITY,
            &HashMap::from([("Available".to_owned(), b(false))]),
        );
        apply(
            &mut s,
            iface::THRESHOLD_CRITICAL,
            &HashMap::from([
                ("CriticalHigh".to_owned(), v(95.0)),
                ("CriticalAlarmHigh".to_owned(), b(true)),
            ]),
        );
        assert_eq!((s.value, s.max, s.available), (41.5, 127.0, false));
        assert_eq!((s.critical_high, s.critical_alarm_high), (95.0, true));
        assert!(s.min.is_infinite());
    }

    #[test]
    fn replacing_an_owner_reports_membership_changes_only() {
        let mut c = SensorCache::default();
        assert!(c.replace_owner(":1.5", vec![SensorSnapshot::new("/a", 1.0)]));
        assert!(!c.replace_owner(":1.5", vec![SensorSnapshot::new("/a", 2.0)]));
        assert_eq!(c.snapshot()[0].value, 2.0);
        assert!(!c.replace_owner(":1.6", vec![]));
        assert!(c.replace_owner(":1.5", vec![]));
        assert!(c.paths().is_empty());
    }
}
