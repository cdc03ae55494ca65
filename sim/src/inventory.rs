//! entity-manager's inventory as bmcweb meets it: a board object implementing
//! `Inventory.Item.Board` under `/xyz/openbmc_project/inventory/system/board/<Board>`, on
//! `xyz.openbmc_project.EntityManager`, with its ObjectManager at
//! `/xyz/openbmc_project/inventory` (openbmc/entity-manager 3b745d22, `entity_manager.cpp`).
//!
//! And the mapper's view of it (phosphor-objmgr): which services implement what at a path,
//! found by introspection, as the mapper builds its tree. bmcweb takes a chassis to be an
//! object with `Item.Board` or `Item.Chassis` (openbmc/bmcweb 7debb892, `getChassis`).

use anyhow::{Context, Result};
use openbmc_vocab::names::{bus, iface, path};
use zbus::interface;

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
