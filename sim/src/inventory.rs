//! entity-manager's inventory as bmcweb meets it: a board object implementing
//! `Inventory.Item.Board` under `/xyz/openbmc_project/inventory/system/board/<Board>`, on
//! `xyz.openbmc_project.EntityManager`, with its ObjectManager at
//! `/xyz/openbmc_project/inventory` (openbmc/entity-manager 3b745d22, `entity_manager.cpp`).
//!
//! And the mapper's view of it (phosphor-objmgr): which services implement what at a path,
//! found by introspection, as the mapper builds its tree. bmcweb takes a chassis to be an
//! object with `Item.Board` or `Item.Chassis` (openbmc/bmcweb 7debb892, `getChassis`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use openbmc_vocab::names::{bus, iface, path, signal};
use serde_json::Value;

use zbus::{ObjectPath, OwnedObjectPath, OwnedVariant, interface};

use crate::BusAddress;

/// `xyz.openbmc_project.Inventory.Item.Board`: no members; implementing it is the point.
struct ItemBoard;

#[interface(
    name = "xyz.openbmc_project.Inventory.Item.Board",
    introspection_docs = false
)]
impl ItemBoard {}

/// The inventory service, holding one board object while it runs.
pub struct Inventory {
    _conn: zbus::Connection,
}

impl Inventory {
    /// Serve the board object `board` (a path below `/xyz/openbmc_project/inventory/`) and
    /// own entity-manager's name.
    pub async fn start(bus: &impl BusAddress, board: &str) -> Result<Self> {
        let conn = zbus::connection::Builder::address(bus.address())
            .serve_at(board, ItemBoard)
            .serve_at(path::INVENTORY, zbus::fdo::ObjectManager)
            .name(bus::ENTITY_MANAGER)
            .build()
            .await
            .context("inventory service")?;
        Ok(Self { _conn: conn })
    }
}

/// The well-known names whose object at `object` implements any of `interfaces`, sorted:
/// what the mapper's `GetObject` would answer, found the way the mapper finds it (every
/// well-known name on the bus, introspected).
pub async fn providers(
    conn: &zbus::Connection,
    object: &str,
    interfaces: &[&str],
) -> Result<Vec<String>> {
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let mut found = Vec::new();
    for name in dbus.list_names().await? {
        if name.starts_with(':') || name.as_str() == bus::DBUS {
            continue;
        }
        let Ok(proxy) = zbus::fdo::IntrospectableProxy::builder(conn)
            .destination(name.to_string())
            .path(object)
            .build()
            .await
        else {
            continue;
        };
        // A service without the object answers an empty node or an error: not a provider.
        let Ok(xml) = proxy.introspect().await else {
            continue;
        };
        if interfaces
            .iter()
            .any(|i| xml.contains(&format!("<interface name=\"{i}\"")))
        {
            found.push(name.to_string());
        }
    }
    found.sort();
    Ok(found)
}

/// The interfaces bmcweb accepts as a chassis.
pub const CHASSIS_INTERFACES: [&str; 2] = [iface::ITEM_BOARD, iface::ITEM_CHASSIS];

/// entity-manager publishing board configuration files: each board an object with
/// `Inventory.Item.Board`, each Exposes record an object below it, with the interfaces and
/// value types entity-manager gives them (openbmc/entity-manager 3b745d22):
///
/// * board at `/xyz/openbmc_project/inventory/system/<lowercase Type>/<Name>`, record at
///   `<board>/<Name>`, every non-alphanumeric character of a name made `_`
///   (`buildInventorySystemPath`, `sanitizeForDBusPathSegment`); `"Status": "disabled"`
///   records are not published;
/// * the record's own keys on `xyz.openbmc_project.Configuration.<Type>`, an object value
///   on `….<Type>.<Key>`, an array of objects on `….<Type>.<Key><i>`; each interface is
///   announced on its own, sub-objects before the record (`postExposesRecordsToDBus`);
/// * a JSON number as `t` (`x` if negative, `d` with a fraction), a string that reads as a
///   number (`0x` hex, or decimal not starting `00`) as `t` (`templateCharReplace`,
///   `parseAsNumber`), and every number of a writable sub-object (`Thresholds`, `Polling`,
///   `Pid`, …) as `d` (`getDBusType`).
///
/// `GetManagedObjects` at `/xyz/openbmc_project/inventory` lists it all; changes go out as
/// InterfacesAdded/Removed from there and PropertiesChanged from the record.
pub struct EntityManager {
    conn: zbus::Connection,
    objects: Shared,
}

type Interfaces = HashMap<String, HashMap<String, OwnedVariant>>;
type Shared = Arc<Mutex<BTreeMap<String, Interfaces>>>;

/// Keys whose sub-objects entity-manager publishes writable (`getPermission`).
const WRITABLE: [&str; 6] = [
    "FanProfile",
    "Pid",
    "Pid.Zone",
    "Stepwise",
    "Thresholds",
    "Polling",
];

/// The configuration interface prefix.
const CONFIGURATION: &str = "xyz.openbmc_project.Configuration.";

struct ObjectList(Shared);

#[interface(
    name = "org.freedesktop.DBus.ObjectManager",
    introspection_docs = false
)]
impl ObjectList {
    #[zbus(name = "GetManagedObjects")]
    fn get_managed_objects(&self) -> HashMap<OwnedObjectPath, Interfaces> {
        lock(&self.0)
            .iter()
            .filter_map(|(p, i)| Some((OwnedObjectPath::try_from(p.as_str()).ok()?, i.clone())))
            .collect()
    }
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, BTreeMap<String, Interfaces>> {
    // A panicked holder left a map still worth reading.
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What entity-manager makes of a name in a path.
fn path_segment(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// `parseAsNumber`: `0x` hex, or decimal that does not start with `00`.
fn as_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None if s.starts_with("00") || s.is_empty() => None,
        None => s
            .parse()
            .ok()
            .filter(|_| s.bytes().all(|b| b.is_ascii_digit())),
    }
}

fn scalar(v: &Value, writable: bool) -> Result<OwnedVariant> {
    Ok(match v {
        Value::Bool(b) => OwnedVariant::from(*b),
        Value::Number(n) if writable => OwnedVariant::from(n.as_f64().context("number")?),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => OwnedVariant::from(u),
            (None, Some(i)) => OwnedVariant::from(i),
            _ => OwnedVariant::from(n.as_f64().context("number")?),
        },
        Value::String(s) => match as_number(s) {
            Some(n) if writable => OwnedVariant::from(n as f64),
            Some(n) => OwnedVariant::from(n),
            None => OwnedVariant::from(zbus::Str::from(s.clone())),
        },
        Value::Array(items) => {
            let all_strings = items.iter().all(Value::is_string);
            if all_strings {
                let v: Vec<String> = items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect();
                OwnedVariant::try_from(zbus::Variant::from(v))?
            } else {
                let v: Vec<f64> = items
                    .iter()
                    .map(|i| i.as_f64().context("an array of numbers"))
                    .collect::<Result<_>>()?;
                OwnedVariant::try_from(zbus::Variant::from(v))?
            }
        }
        _ => anyhow::bail!("not a scalar: {v}"),
    })
}

/// The properties of one interface: the scalar keys of `obj` (objects are sub-objects).
fn properties(
    obj: &serde_json::Map<String, Value>,
    writable: bool,
) -> Result<HashMap<String, OwnedVariant>> {
    let mut props = HashMap::new();
    for (k, v) in obj {
        let is_object = v.is_object()
            || v.as_array()
                .is_some_and(|a| a.first().is_some_and(Value::is_object));
        if !is_object && !v.as_array().is_some_and(Vec::is_empty) {
            props.insert(k.clone(), scalar(v, writable)?);
        }
    }
    Ok(props)
}

/// A record's interfaces, in the order entity-manager announces them.
pub fn record_interfaces(record: &Value) -> Result<Vec<(String, HashMap<String, OwnedVariant>)>> {
    let obj = record.as_object().context("a record is an object")?;
    let ty = obj.get("Type").and_then(Value::as_str).unwrap_or("unknown");
    let main = format!("{CONFIGURATION}{ty}");
    let mut out = Vec::new();
    for (k, v) in obj {
        let writable = WRITABLE.contains(&k.as_str());
        if let Some(sub) = v.as_object() {
            out.push((format!("{main}.{k}"), properties(sub, writable)?));
        } else if let Some(items) = v
            .as_array()
            .filter(|a| a.first().is_some_and(Value::is_object))
        {
            for (i, item) in items.iter().enumerate() {
                let sub = item.as_object().context("array entries of one type")?;
                out.push((format!("{main}.{k}{i}"), properties(sub, writable)?));
            }
        }
    }
    out.push((main, properties(obj, WRITABLE.contains(&ty))?));
    Ok(out)
}

impl EntityManager {
    /// Own entity-manager's name with nothing published yet.
    pub async fn start(bus: &impl BusAddress) -> Result<Self> {
        Self::start_with(zbus::connection::Builder::address(bus.address())).await
    }

    /// The same on the system bus (the machine tier).
    pub async fn start_on_system_bus() -> Result<Self> {
        Self::start_with(zbus::connection::Builder::system()).await
    }

    async fn start_with(builder: zbus::connection::Builder<'_>) -> Result<Self> {
        let objects = Shared::default();
        let conn = builder
            .serve_at(path::INVENTORY, ObjectList(objects.clone()))
            .name(bus::ENTITY_MANAGER)
            .build()
            .await
            .context("entity-manager stand-in")?;
        Ok(Self { conn, objects })
    }

    /// Leave the bus; the published objects are forgotten with the process.
    pub async fn stop(self) -> Result<()> {
        self.conn.close().await?;
        Ok(())
    }

    async fn added(&self, p: &str, name: &str, props: HashMap<String, OwnedVariant>) -> Result<()> {
        lock(&self.objects)
            .entry(p.to_owned())
            .or_default()
            .insert(name.to_owned(), props.clone());
        let one: Interfaces = [(name.to_owned(), props)].into_iter().collect();
        self.conn
            .emit_signal(
                None::<()>,
                path::INVENTORY,
                iface::OBJECT_MANAGER,
                signal::INTERFACES_ADDED,
                &(ObjectPath::try_from(p)?, one),
            )
            .await?;
        Ok(())
    }

    /// Publish a board configuration file's board and records; the board's path.
    pub async fn publish_board(&self, board: &Value) -> Result<String> {
        let name = board
            .get("Name")
            .and_then(Value::as_str)
            .context("board Name")?;
        let ty = board
            .get("Type")
            .and_then(Value::as_str)
            .context("board Type")?;
        let board_path = format!(
            "{}/system/{}/{}",
            path::INVENTORY,
            ty.to_lowercase(),
            path_segment(name)
        );
        self.conn
            .object_server()
            .at(board_path.as_str(), ItemBoard)
            .await?;
        self.added(&board_path, iface::ITEM_BOARD, HashMap::new())
            .await?;
        let exposes = board
            .get("Exposes")
            .and_then(Value::as_array)
            .context("Exposes")?;
        for record in exposes {
            self.publish_record(&board_path, record).await?;
        }
        Ok(board_path)
    }

    /// Publish one record below `board_path` (as entity-manager does when a record is added);
    /// its path, or None for a disabled one.
    pub async fn publish_record(&self, board_path: &str, record: &Value) -> Result<Option<String>> {
        if record.get("Status").and_then(Value::as_str) == Some("disabled") {
            return Ok(None);
        }
        let name = record
            .get("Name")
            .and_then(Value::as_str)
            .context("record Name")?;
        let p = format!("{board_path}/{}", path_segment(name));
        for (iface_name, props) in record_interfaces(record)? {
            self.added(&p, &iface_name, props).await?;
        }
        Ok(Some(p))
    }

    /// Remove a record's object: one InterfacesRemoved naming all its interfaces.
    pub async fn remove_record(&self, p: &str) -> Result<()> {
        let gone = lock(&self.objects).remove(p).context("no such record")?;
        let names: Vec<String> = gone.into_keys().collect();
        self.conn
            .emit_signal(
                None::<()>,
                path::INVENTORY,
                iface::OBJECT_MANAGER,
                signal::INTERFACES_REMOVED,
                &(ObjectPath::try_from(p)?, names),
            )
            .await?;
        Ok(())
    }

    /// Change one property in place (a write to a writable sub-object, e.g. a threshold).
    pub async fn set_property(
        &self,
        p: &str,
        interface: &str,
        name: &str,
        value: OwnedVariant,
    ) -> Result<()> {
        lock(&self.objects)
            .get_mut(p)
            .and_then(|i| i.get_mut(interface))
            .context("no such interface")?
            .insert(name.to_owned(), value.clone());
        let changed: HashMap<String, OwnedVariant> =
            [(name.to_owned(), value)].into_iter().collect();
        self.conn
            .emit_signal(
                None::<()>,
                p,
                iface::PROPERTIES,
                signal::PROPERTIES_CHANGED,
                &(interface, changed, Vec::<String>::new()),
            )
            .await?;
        Ok(())
    }
}
