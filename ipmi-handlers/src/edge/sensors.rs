//! The temperature sensors on the bus, kept current by signals. There is no object mapper on
//! every image (nor on our test bus), so services are found by listing bus names and asking
//! each for its objects under `/xyz/openbmc_project/sensors` (where every Sensor.Value
//! service must serve an ObjectManager); after that, InterfacesAdded/Removed and
//! NameOwnerChanged trigger a rescan of that one service and PropertiesChanged updates values.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use openbmc_vocab::names::{bus, iface, path, prop};
use zbus::message::{Sequence, Type as MsgType};
use zbus::{Connection, MatchRule, OwnedObjectPath, OwnedVariant, Variant};

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

/// What one connection serves under `/xyz/openbmc_project/sensors`, as GetManagedObjects
/// answers it.
type ManagedObjects = HashMap<OwnedObjectPath, HashMap<String, HashMap<String, OwnedVariant>>>;

/// One connection's temperature sensors, and where the answer came in among the messages this
/// connection received (so it can be ordered against that connection's signals).
type Scanned = (Vec<SensorSnapshot>, Sequence);

/// Ask one connection for its temperature sensors; `None` if it has no sensor tree (or does
/// not answer in time).
async fn scan_owner(conn: &Connection, owner: &str) -> Option<Scanned> {
    let call = conn.call_method(
        Some(owner),
        path::SENSORS,
        Some(iface::OBJECT_MANAGER),
        "GetManagedObjects",
        &(),
    );
    let reply = tokio::time::timeout(call_deadline(), call)
        .await
        .ok()?
        .ok()?;
    let objects: ManagedObjects = reply.body().deserialize().ok()?;
    let mut out = Vec::new();
    for (obj, ifaces) in objects {
        let obj = obj.as_str();
        if !is_temperature(obj) {
            continue;
        }
        let Some(value) = ifaces.get(iface::SENSOR_VALUE) else {
            continue;
        };
        let mut s = SensorSnapshot::new(obj, f64::NAN);
        apply(&mut s, iface::SENSOR_VALUE, value);
        for (i, p) in &ifaces {
            if i != iface::SENSOR_VALUE {
                apply(&mut s, i, p);
            }
        }
        out.push(s);
    }
    Some((out, reply.recv_position()))
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
                let list = scan_owner(conn, &o).await.map(|(list, _)| list);
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

/// A PropertiesChanged of a connection whose scan is under way, kept to be applied again over
/// that scan's answer if it came in after the answer was sent.
struct Held {
    at: Sequence,
    obj: String,
    iface: String,
    changed: HashMap<String, OwnedVariant>,
}

/// A connection being scanned (at most one scan of it at a time).
#[derive(Default)]
struct Scanning {
    /// Asked to scan again while this scan was under way (InterfacesAdded and the like): its
    /// answer may predate the change, so one more scan follows it.
    again: bool,
    held: Vec<Held>,
}

/// What the follower waits for besides signals.
enum Work {
    /// The owners of well-known names when the follower started.
    Listed(zbus::Result<Vec<String>>),
    /// A connection's scan: `None` if it has no sensor tree or did not answer in time.
    Scanned(String, Option<Scanned>),
}

type WorkFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Work> + Send>>;

fn scan(conn: &Connection, owner: String) -> WorkFuture {
    let conn = conn.clone();
    Box::pin(async move {
        let found = scan_owner(&conn, &owner).await;
        Work::Scanned(owner, found)
    })
}

/// The scans under way, by the unique name of the connection scanned.
#[derive(Default)]
struct Scans {
    by_owner: HashMap<String, Scanning>,
}

impl Scans {
    /// Scan `owner`, unless a scan of it is under way (then once more after that one).
    fn want(&mut self, conn: &Connection, owner: String, work: &FuturesUnordered<WorkFuture>) {
        if let Some(s) = self.by_owner.get_mut(&owner) {
            s.again = true;
            return;
        }
        self.by_owner.insert(owner.clone(), Scanning::default());
        work.push(scan(conn, owner));
    }
}

/// Follow the bus forever, calling `membership_changed` whenever sensors come or go.
///
/// Signals are taken the whole time, also while a service is being asked for its sensors:
/// zbus stops reading the connection while one of its signal streams is full, so a loop that
/// awaited a scan with a busy sensor service flooding PropertiesChanged would stop the answer
/// it waits for from being read (every scan then times out, and the sensors of a service that
/// appeared are never seen), and with it every IPMI request to this daemon. A service that
/// does not answer at all would hold up the whole IPMI server for the call deadline, once per
/// name it takes. So scans run beside the signals, and each scan's answer is ordered against
/// the signals by where it came in: changes newer than the answer are applied again over it,
/// changes older than it and taken after it are dropped, and so is an answer from a
/// connection that has left meanwhile.
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
    let own = conn
        .unique_name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    // Subscribed first, listed and scanned second: nothing between the two is missed. The
    // listing, too, runs beside the signals.
    let mut work: FuturesUnordered<WorkFuture> = FuturesUnordered::new();
    {
        let (conn, ignored, own) = (conn.clone(), ignored.clone(), own.clone());
        work.push(Box::pin(async move {
            Work::Listed(owners(&conn, &ignored, &own).await)
        }));
    }
    let mut scans = Scans::default();
    // Per connection, where the answer of its last applied scan came in.
    let mut scanned_at: HashMap<String, Sequence> = HashMap::new();
    loop {
        tokio::select! {
            signal = signals.next() => {
                let Some(signal) = signal else { break };
                match signal {
                    SensorSignal::Objects(m) => {
                        let Ok(m) = m else { continue };
                        let Some(sender) = m.header().sender().map(|s| s.to_string()) else {
                            continue;
                        };
                        if sender != own {
                            scans.want(&conn, sender, &work);
                        }
                    }
                    SensorSignal::Properties(m) => {
                        let Ok(m) = m else { continue };
                        let hdr = m.header();
                        let (Some(sender), Some(obj)) = (hdr.sender(), hdr.path()) else {
                            continue;
                        };
                        let Ok((ifc, changed, _)) = m
                            .body()
                            .deserialize::<(String, HashMap<String, OwnedVariant>, Vec<String>)>()
                        else {
                            continue;
                        };
                        let at = m.recv_position();
                        // Older than the answer already applied: that answer said more.
                        if scanned_at.get(sender.as_str()).is_some_and(|p| at < *p) {
                            continue;
                        }
                        lock(&cache).update(sender.as_str(), obj.as_str(), &ifc, &changed);
                        if let Some(s) = scans.by_owner.get_mut(sender.as_str()) {
                            s.held.push(Held {
                                at,
                                obj: obj.to_string(),
                                iface: ifc,
                                changed,
                            });
                        }
                    }
                    SensorSignal::Owner(s) => {
                        let Ok(args) = s.args() else { continue };
                        let name = args.name().to_string();
                        match args.new_owner().as_ref() {
                            // A connection left: everything it served is gone, and a scan
                            // of it still under way answers for nobody.
                            None if name.starts_with(':') => {
                                scans.by_owner.remove(&name);
                                scanned_at.remove(&name);
                                if lock(&cache).replace_owner(&name, Vec::new()) {
                                    membership_changed();
                                }
                            }
                            Some(new)
                                if !name.starts_with(':')
                                    && !ignored.contains(&name)
                                    && name != bus::DBUS =>
                            {
                                let new = new.to_string();
                                if new != own {
                                    scans.want(&conn, new, &work);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            Some(done) = work.next(), if !work.is_empty() => match done {
                Work::Listed(found) => {
                    for o in found? {
                        scans.want(&conn, o, &work);
                    }
                }
                Work::Scanned(owner, found) => {
                    // Gone: it left while being scanned.
                    let Some(s) = scans.by_owner.remove(&owner) else { continue };
                    if let Some((list, at)) = found {
                        let mut c = lock(&cache);
                        let changed = c.replace_owner(&owner, list);
                        // The changes it announced after it answered (they are in the cache
                        // already, and the answer has just overwritten them).
                        for h in s.held.iter().filter(|h| h.at > at) {
                            c.update(&owner, &h.obj, &h.iface, &h.changed);
                        }
                        drop(c);
                        scanned_at.insert(owner.clone(), at);
                        if changed {
                            membership_changed();
                        }
                    }
                    if s.again {
                        scans.want(&conn, owner, &work);
                    }
                }
            },
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
