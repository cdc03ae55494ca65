//! Following entity-manager's `AcpigateDimmTemp` records while the daemon runs
//! (`"sensors_from": "entity-manager"`): every change ends in the whole set of good records
//! sent to the main loop, which works out what to add, remove or change.
//!
//! Subscribed first (entity-manager's signals under `/xyz/openbmc_project/inventory`, and its
//! name's owner changes, taken in the order the bus delivered them), listed second
//! (`GetManagedObjects`, under the call deadline): a signal that came in before the listing's
//! answer is already in it and is dropped; one after it is applied on top. entity-manager
//! initialises each interface on its own (one InterfacesAdded each, a record's sub-objects
//! before the record), so changes are gathered until [`SETTLE`] passes without one before the
//! set is taken.
//!
//! entity-manager leaving the bus leaves the sensors as they are; when it is back, it is
//! listed again and only what differs changes. A restarted entity-manager takes its name
//! before it has scanned and published its boards, so a record missing from its listing is
//! not taken as removed: its sensor is kept (and this is said once) until entity-manager
//! removes the record (InterfacesRemoved) or publishes it changed. Removing a sensor makes
//! pid-control restart every control loop in fail-safe; keeping one a little too long
//! costs nothing.
//!
//! Nothing here can delay the gate: this task only sends record sets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use openbmc_vocab::names::{bus, iface, method, path, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;
use zbus::export::ordered_stream::OrderedStreamExt;
use zbus::message::Sequence;
use zbus::{Connection, Message, OwnedObjectPath, OwnedVariant};

use super::em_records::{Objects, Record, select};

/// How long changes are gathered before the record set is taken: entity-manager publishes
/// a record's interfaces one by one, and a board's records one after another.
pub const SETTLE: Duration = Duration::from_millis(200);

/// Changes that never pause are taken this long after the first of them.
const SETTLE_AT_MOST: Duration = Duration::from_secs(1);

/// After a listing that failed, try again this late.
const RETRY: Duration = Duration::from_secs(5);

/// The good records, by sensor name.
pub type Records = BTreeMap<String, Record>;

/// Follow entity-manager until the main loop goes away.
pub(super) async fn follow(
    conn: Connection,
    tx: mpsc::UnboundedSender<Records>,
    call_timeout: Duration,
) {
    let mut said = Said::default();
    loop {
        match follow_once(&conn, &tx, call_timeout, &mut said).await {
            Ok(()) => return,
            Err(e) => log::warn!("following entity-manager failed: {e:#}; again in 1 s"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What was last said and sent, so each refusal is logged once and an unchanged set is not
/// sent again.
#[derive(Default)]
struct Said {
    lines: HashSet<String>,
    sent: Option<Records>,
    waiting: bool,
    /// Records whose removal entity-manager announced since the last set was taken.
    removed: HashSet<String>,
}

enum Signal {
    FromEm(zbus::Result<Message>),
    Owner(zbus::fdo::NameOwnerChanged),
}

type Listing =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(Sequence, Objects)>> + Send>>;

fn list(conn: &Connection, deadline: Duration) -> Listing {
    let conn = conn.clone();
    Box::pin(async move {
        let call = conn.call_method(
            Some(bus::ENTITY_MANAGER),
            path::INVENTORY,
            Some(iface::OBJECT_MANAGER),
            method::GET_MANAGED_OBJECTS,
            &(),
        );
        let reply = tokio::time::timeout(deadline, call)
            .await
            .map_err(|_| anyhow::anyhow!("no answer in {} ms", deadline.as_millis()))??;
        let all: HashMap<OwnedObjectPath, HashMap<String, HashMap<String, OwnedVariant>>> = reply
            .body()
            .deserialize()
            .context("GetManagedObjects answer")?;
        let mut objects = Objects::new();
        for (p, interfaces) in all {
            for (name, props) in interfaces {
                if ours(&name) {
                    objects
                        .entry(p.to_string())
                        .or_default()
                        .insert(name, props);
                }
            }
        }
        Ok((reply.recv_position(), objects))
    })
}

/// A record interface of ours (the record or one of its sub-objects): the only ones kept.
fn ours(interface: &str) -> bool {
    interface
        .strip_prefix(iface::ACPIGATE_DIMM_TEMP_RECORD)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

async fn follow_once(
    conn: &Connection,
    tx: &mpsc::UnboundedSender<Records>,
    deadline: Duration,
    said: &mut Said,
) -> Result<()> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(bus::ENTITY_MANAGER)
        .path_namespace(path::INVENTORY)
        .build()?;
    let from_em = daemon_kit::bus::match_stream(rule, conn)
        .await
        .context("subscribing to entity-manager's signals")?;
    let dbus = daemon_kit::bus::dbus_proxy(conn).await?;
    let owners = daemon_kit::bus::owner_changes(&dbus, bus::ENTITY_MANAGER)
        .await
        .context("subscribing to entity-manager's owner changes")?;
    let mut signals = daemon_kit::bus::in_bus_order(
        OrderedStreamExt::map(from_em, Signal::FromEm),
        OrderedStreamExt::map(owners, Signal::Owner),
    );
    let mut objects = Objects::new();
    let mut listing: Option<Listing> = Some(list(conn, deadline));
    // Changes that came in while a listing is under way, with where they came in.
    let mut held: Vec<(Sequence, Message)> = Vec::new();
    let mut retry_at: Option<Instant> = None;
    let mut settle = Settle::default();
    loop {
        tokio::select! {
            s = signals.next() => match s {
                None => bail!("the signal stream ended"),
                Some(Signal::FromEm(Ok(m))) => {
                    if listing.is_some() {
                        held.push((m.recv_position(), m));
                    } else if apply(&mut objects, &m, &mut said.removed) {
                        settle.changed();
                    }
                }
                Some(Signal::FromEm(Err(e))) => log::debug!("unreadable signal: {e}"),
                Some(Signal::Owner(o)) => {
                    let Ok(args) = o.args() else { continue };
                    if args.new_owner().is_some() {
                        log::info!("entity-manager is on the bus: reading its records");
                        held.clear();
                        retry_at = None;
                        listing = Some(list(conn, deadline));
                    } else {
                        log::warn!(
                            "entity-manager left the bus: the DIMM sensors stay as they are \
                             until it is back"
                        );
                    }
                }
            },
            r = async { listing.as_mut().expect("guarded").await }, if listing.is_some() => {
                listing = None;
                match r {
                    Ok((at, listed)) => {
                        said.waiting = false;
                        objects = listed;
                        for (pos, m) in held.drain(..) {
                            // Older than the answer: already in it.
                            if pos > at {
                                apply(&mut objects, &m, &mut said.removed);
                            }
                        }
                        settle.changed();
                    }
                    Err(e) => {
                        held.clear();
                        if !said.waiting {
                            said.waiting = true;
                            log::warn!(
                                "waiting for entity-manager ({e:#}): no DIMM sensor is served \
                                 until it lists its records"
                            );
                        }
                        // Asked again later (its arrival on the bus asks at once). No call
                        // is awaited here: this loop must keep draining its signal streams,
                        // or zbus stops reading the whole connection.
                        retry_at = Some(Instant::now() + RETRY);
                    }
                }
            },
            _ = sleep_until(retry_at), if retry_at.is_some() => {
                retry_at = None;
                listing = Some(list(conn, deadline));
            },
            _ = sleep_until(settle.at()), if settle.at().is_some() => {
                settle = Settle::default();
                if !publish(&objects, tx, said) {
                    return Ok(());
                }
            },
        }
    }
}

/// When to take the record set: [`SETTLE`] after the last change, at most
/// [`SETTLE_AT_MOST`] after the first.
#[derive(Default)]
struct Settle {
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Settle {
    fn changed(&mut self) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    fn at(&self) -> Option<Instant> {
        Some((self.last? + SETTLE).min(self.first? + SETTLE_AT_MOST))
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// Apply one signal to the objects; whether a record interface of ours changed. A record
/// whose own interface is announced removed is noted in `removed`.
fn apply(objects: &mut Objects, m: &Message, removed: &mut HashSet<String>) -> bool {
    let header = m.header();
    let (Some(member), Some(obj)) = (header.member(), header.path()) else {
        return false;
    };
    let body = m.body();
    match member.as_str() {
        signal::INTERFACES_ADDED => {
            let Ok((p, interfaces)) = body.deserialize::<(
                OwnedObjectPath,
                HashMap<String, HashMap<String, OwnedVariant>>,
            )>() else {
                return false;
            };
            let mut changed = false;
            removed.remove(p.as_str());
            for (name, props) in interfaces.into_iter().filter(|(n, _)| ours(n)) {
                objects
                    .entry(p.to_string())
                    .or_default()
                    .insert(name, props);
                changed = true;
            }
            changed
        }
        signal::INTERFACES_REMOVED => {
            let Ok((p, names)) = body.deserialize::<(OwnedObjectPath, Vec<String>)>() else {
                return false;
            };
            if names.iter().any(|n| n == iface::ACPIGATE_DIMM_TEMP_RECORD) {
                removed.insert(p.to_string());
            }
            let Some(interfaces) = objects.get_mut(p.as_str()) else {
                return false;
            };
            let before = interfaces.len();
            interfaces.retain(|name, _| !names.contains(name));
            let changed = interfaces.len() != before;
            if interfaces.is_empty() {
                objects.remove(p.as_str());
            }
            changed
        }
        signal::PROPERTIES_CHANGED => {
            let Ok((name, changed, _)) =
                body.deserialize::<(String, HashMap<String, OwnedVariant>, Vec<String>)>()
            else {
                return false;
            };
            match objects
                .get_mut(obj.as_str())
                .and_then(|interfaces| interfaces.get_mut(&name))
            {
                Some(props) if !changed.is_empty() => {
                    props.extend(changed);
                    true
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// Take the record set, say what is new about it, and send it if it changed. False when the
/// main loop is gone.
fn publish(objects: &Objects, tx: &mpsc::UnboundedSender<Records>, said: &mut Said) -> bool {
    let mut sel = select(objects);
    let mut lines: Vec<String> = sel.refused.iter().chain(&sel.ignored).cloned().collect();
    // A sensor whose record is simply not there (not announced removed, not refused) is kept:
    // a restarted entity-manager publishes its boards some time after taking its name.
    if let Some(sent) = &said.sent {
        for (name, r) in sent {
            let place_taken = sel
                .records
                .values()
                .any(|o| o.name == *name || (o.bus, o.address) == (r.bus, r.address));
            if !objects.contains_key(&r.path) && !said.removed.contains(&r.path) && !place_taken {
                lines.push(format!(
                    "record {} is not published (entity-manager restarted?): sensor {name} is \
                     kept until entity-manager removes the record",
                    r.path
                ));
                sel.records.insert(name.clone(), r.clone());
            }
        }
    }
    said.removed.clear();
    for line in &lines {
        if !said.lines.contains(line) {
            log::warn!("entity-manager {line}");
        }
    }
    // A problem that went and comes back is said again.
    said.lines = lines.into_iter().collect();
    if said.sent.as_ref() == Some(&sel.records) {
        return true;
    }
    log::info!(
        "entity-manager: {} DIMM sensor record(s) in use{}",
        sel.records.len(),
        if sel.refused.is_empty() {
            String::new()
        } else {
            format!(", {} refused", sel.refused.len())
        }
    );
    said.sent = Some(sel.records.clone());
    tx.send(sel.records).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::em_records::tests::{BOARD, published};

    fn objects(records: &[(&str, u64)]) -> Objects {
        records
            .iter()
            .map(|(name, address)| {
                (
                    format!("{BOARD}/{}", name.replace(' ', "_")),
                    published(name, *address),
                )
            })
            .collect()
    }

    fn take(objects: &Objects, said: &mut Said) -> Option<Vec<String>> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        assert!(publish(objects, &tx, said));
        rx.try_recv().ok().map(|r| r.into_keys().collect())
    }

    #[test]
    fn a_record_missing_from_a_new_listing_keeps_its_sensor_until_it_is_removed() {
        let mut said = Said::default();
        let both = objects(&[("DIMM A0", 0x18), ("DIMM A1", 0x19)]);
        assert_eq!(
            take(&both, &mut said),
            Some(vec!["DIMM_A0".into(), "DIMM_A1".into()])
        );
        // Unchanged: nothing sent.
        assert_eq!(take(&both, &mut said), None);
        // A restarted entity-manager has listed only one so far: both are kept, nothing sent.
        let one = objects(&[("DIMM A0", 0x18)]);
        assert_eq!(take(&one, &mut said), None);
        assert!(
            said.lines
                .iter()
                .any(|l| l.contains("DIMM_A1") && l.contains("is kept")),
            "{:?}",
            said.lines
        );
        // Announced removed: it goes.
        said.removed.insert(format!("{BOARD}/DIMM_A1"));
        assert_eq!(take(&one, &mut said), Some(vec!["DIMM_A0".into()]));
        assert!(said.removed.is_empty());
    }

    #[test]
    fn a_record_that_turns_bad_loses_its_sensor_and_a_clash_is_not_kept() {
        let mut said = Said::default();
        let mut objs = objects(&[("DIMM A0", 0x18), ("DIMM A1", 0x19)]);
        take(&objs, &mut said);
        // DIMM A1's record now names an SPD5118 at a JC42 address: refused, so not kept.
        let a1 = format!("{BOARD}/DIMM_A1");
        objs.get_mut(&a1)
            .and_then(|i| i.get_mut(iface::ACPIGATE_DIMM_TEMP_RECORD))
            .map(|m| {
                m.insert(
                    "DeviceType".into(),
                    OwnedVariant::from(zbus::Str::from("SPD5118")),
                )
            });
        assert_eq!(take(&objs, &mut said), Some(vec!["DIMM_A0".into()]));
        assert!(
            said.lines
                .iter()
                .any(|l| l.contains(&a1) && l.contains("Address")),
            "{:?}",
            said.lines
        );
        // A missing record whose address another record now takes is not kept beside it.
        let mut said = Said::default();
        take(&objects(&[("DIMM A0", 0x18), ("DIMM A1", 0x19)]), &mut said);
        let moved = objects(&[("DIMM A0", 0x18), ("DIMM B0", 0x19)]);
        assert_eq!(
            take(&moved, &mut said),
            Some(vec!["DIMM_A0".into(), "DIMM_B0".into()])
        );
    }

    #[test]
    fn changes_settle_after_a_pause_and_never_wait_past_the_cap() {
        let mut s = Settle::default();
        assert_eq!(s.at(), None);
        s.changed();
        let first = s.at().expect("due");
        assert!(first <= Instant::now() + SETTLE);
        // A change a little later pushes it back, but never past first + SETTLE_AT_MOST.
        s.last = s.first.map(|f| f + SETTLE_AT_MOST);
        assert_eq!(s.at(), s.first.map(|f| f + SETTLE_AT_MOST));
    }
}
