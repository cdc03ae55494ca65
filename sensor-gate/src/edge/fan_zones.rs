//! Following the fan controller's zones: every zone mode object phosphor-pid-control
//! (re)creates, as a core event, so a hold in place survives pid-control rebuilding its zones
//! (it builds them anew, in automatic mode, at start and on every control-loop restart).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use openbmc_vocab::names::{bus, iface, path, signal};
use tokio::sync::mpsc;
use zbus::Connection;
use zbus::{ObjectPath, Variant as Value};

use crate::core::Event;

/// Send [`Event::FanZoneAppeared`] for every zone whose `Control.Mode` object the fan
/// controller announces. Only signals are followed (never a call to the controller), so a
/// hung fan controller costs nothing here.
pub(super) async fn follow_fan_zones(conn: Connection, tx: mpsc::UnboundedSender<Event>) {
    loop {
        match follow(&conn, &tx).await {
            Ok(()) => return, // the core's channel closed: the daemon is stopping
            Err(e) => {
                log::warn!("following the fan controller's zones failed: {e:#}; retrying in 1 s")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn follow(conn: &Connection, tx: &mpsc::UnboundedSender<Event>) -> Result<()> {
    // pid-control announces each zone it builds with InterfacesAdded from its ObjectManager
    // (the sender rule follows the name to whichever process owns it, a restarted one too).
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(bus::FAN_CTRL)
        .interface(iface::OBJECT_MANAGER)
        .member(signal::INTERFACES_ADDED)
        .path(path::FANCTRL)
        .build()?;
    let mut added = daemon_kit::bus::match_stream(rule, conn)
        .await
        .context("subscribing to the fan controller's InterfacesAdded")?;
    while let Some(msg) = added.next().await {
        let msg = msg.context("fan controller signal stream")?;
        match zone_added(&msg) {
            Ok(Some(zone)) => {
                if tx.send(Event::FanZoneAppeared { zone }).is_err() {
                    return Ok(());
                }
            }
            Ok(None) => {}
            Err(e) => log::warn!("unreadable InterfacesAdded from {}: {e:#}", bus::FAN_CTRL),
        }
    }
    anyhow::bail!("the signal stream ended")
}

/// The zone whose mode interface one InterfacesAdded announces, if it announces one.
fn zone_added(msg: &zbus::Message) -> Result<Option<u32>> {
    let body = msg.body();
    let (object, interfaces): (ObjectPath<'_>, HashMap<String, HashMap<String, Value<'_>>>) =
        body.deserialize()?;
    Ok(interfaces
        .contains_key(iface::CONTROL_MODE)
        .then(|| path::fanctrl_zone_number(object.as_str()))
        .flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(object: &str, interfaces: &[&str]) -> zbus::Message {
        let body: HashMap<String, HashMap<String, Value<'_>>> = interfaces
            .iter()
            .map(|i| ((*i).to_owned(), HashMap::new()))
            .collect();
        zbus::Message::signal(
            path::FANCTRL,
            iface::OBJECT_MANAGER,
            signal::INTERFACES_ADDED,
        )
        .build(&(ObjectPath::try_from(object).expect("path"), body))
        .expect("message")
    }

    #[test]
    fn only_a_zone_mode_object_is_a_zone() {
        let zone7 = path::fanctrl_zone(7);
        assert_eq!(
            zone_added(&added(&zone7, &[iface::CONTROL_MODE])).ok(),
            Some(Some(7))
        );
        // A PID's process object under the zone, or the zone without its mode interface.
        let pid = format!("{zone7}/CPU_Temp");
        assert_eq!(
            zone_added(&added(&pid, &[iface::CONTROL_MODE])).ok(),
            Some(None)
        );
        assert_eq!(
            zone_added(&added(&zone7, &["org.example.Other"])).ok(),
            Some(None)
        );
    }
}
