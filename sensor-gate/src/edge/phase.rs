//! Following acpi-state-daemon's `org.acpigate.HostPhase`: its appearance, its changes and
//! its disappearance, as core events.

use std::time::Duration;

use anyhow::Result;
use futures_util::StreamExt;
use openbmc_vocab::acpigate::{HostPhase, prop as phase_prop};
use openbmc_vocab::names::{bus, iface, path};
use tokio::sync::mpsc;
use zbus::Connection;
use zbus::names::InterfaceName;

use crate::core::{Event, PhaseUpdate};

/// Follow `org.acpigate.HostPhase` on acpi-state-daemon: its appearance, its changes and its
/// disappearance, as core events. Each read of it may take up to `deadline`. The gate is
/// closed while we wait (we read only on start and when the source (re)appears, after closing
/// it), so this bounds how long a hung source can keep us from following its signals.
pub(super) async fn follow_phase(
    conn: Connection,
    tx: mpsc::UnboundedSender<Event>,
    deadline: Duration,
) {
    loop {
        if let Err(e) = follow_phase_inner(&conn, &tx, deadline).await {
            log::warn!("following the host phase failed: {e:#}; gate closed, retrying in 1 s");
        }
        // Whatever broke, we no longer know the phase: fail closed until we do again.
        if tx.send(Event::PhaseSourceLost).is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The phase update that one set of HostPhase properties (a PropertiesChanged, or the answer
/// to GetAll) carries, if it carries a phase.
///
/// acpi-state-daemon announces a transition's `Phase`, `Reason`, `Since` and `Generation` in
/// one PropertiesChanged (the bus test `phase_change_is_one_signal_with_all_four_properties`
/// in `tests/tests/acpi_state.rs` holds it to that), so each signal stands on its own and
/// nothing is merged with what came before. A signal without `Phase` (the boot timeline:
/// `BootCount`, `GateWindows`, ...) is not a phase update. A missing `Since` is 0 (no close
/// latency is measured from it) and a missing `Generation` is none (no ordering check).
fn phase_update<'a>(
    props: impl Iterator<Item = (&'a str, &'a zbus::Variant<'a>)>,
) -> Result<Option<PhaseUpdate>> {
    let mut phase: Option<HostPhase> = None;
    let mut since_us = 0;
    let mut generation = None;
    let mut reason = String::new();
    for (k, v) in props {
        match k {
            phase_prop::PHASE => {
                let s: &str = v.downcast_ref()?;
                phase = Some(s.parse().map_err(|e| anyhow::anyhow!("{e}"))?);
            }
            phase_prop::SINCE => since_us = v.downcast_ref()?,
            phase_prop::GENERATION => generation = Some(v.downcast_ref()?),
            phase_prop::REASON => {
                let s: &str = v.downcast_ref()?;
                s.clone_into(&mut reason);
            }
            _ => {}
        }
    }
    Ok(phase.map(|phase| PhaseUpdate {
        phase,
        since_us,
        generation,
        reason,
    }))
}

/// Read every HostPhase property from `source` (the well-known name at start, the unique name
/// of the owner that just appeared afterwards: a read sent to the well-known name while it
/// changes hands would be answered by a later owner and taken as this one's word) and send
/// the phase, or report the source missing.
async fn read_phase(
    conn: &Connection,
    source: &str,
    deadline: Duration,
    tx: &mpsc::UnboundedSender<Event>,
) {
    let all = async {
        let i = InterfaceName::try_from(iface::ACPIGATE_HOST_PHASE)?;
        let props = zbus::fdo::PropertiesProxy::builder(conn)
            .destination(source.to_owned())
            .path(path::ACPI_POWER_STATE)
            .build()
            .await?;
        match tokio::time::timeout(deadline, props.get_all(i)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(anyhow::anyhow!(
                "no answer within {} ms",
                deadline.as_millis()
            )),
        }
    }
    .await;
    match all.and_then(|all| phase_update(all.iter().map(|(k, v)| (k.as_str(), &**v)))) {
        Ok(Some(update)) => {
            let _ = tx.send(Event::Phase(update));
        }
        other => {
            let why = match other {
                Err(e) => format!("{e:#}"),
                _ => "no Phase property".to_owned(),
            };
            log::warn!(
                "host phase not readable ({} on {} {}: {why}): gate closed until it is",
                iface::ACPIGATE_HOST_PHASE,
                bus::ACPI_POWER_STATE,
                path::ACPI_POWER_STATE
            );
            let _ = tx.send(Event::PhaseSourceLost);
        }
    }
}

/// One signal from the phase source's side of the bus.
enum SourceSignal {
    Owner(zbus::fdo::NameOwnerChanged),
    Properties(zbus::fdo::PropertiesChanged),
}

async fn follow_phase_inner(
    conn: &Connection,
    tx: &mpsc::UnboundedSender<Event>,
    deadline: Duration,
) -> Result<()> {
    use zbus::export::ordered_stream::OrderedStreamExt;

    let dbus = daemon_kit::bus::dbus_proxy(conn).await?;
    let owners = daemon_kit::bus::owner_changes(&dbus, bus::ACPI_POWER_STATE).await?;
    let props = zbus::fdo::PropertiesProxy::builder(conn)
        .destination(bus::ACPI_POWER_STATE)
        .path(path::ACPI_POWER_STATE)
        .build()
        .await?;
    // Subscribe before reading, so no change falls between the read and the subscription
    // (an older read arriving after a signal is dropped by the core's generation check).
    let changes = daemon_kit::bus::properties_changes(&props).await?;
    // Owner changes and property changes in the order the bus sent them: a source that
    // announces `Working` and dies must be seen announcing first, or its last word would open
    // the gate with nobody there.
    let mut signals = daemon_kit::bus::in_bus_order(
        OrderedStreamExt::map(owners, SourceSignal::Owner),
        OrderedStreamExt::map(changes, SourceSignal::Properties),
    );
    let phase_iface = InterfaceName::try_from(iface::ACPIGATE_HOST_PHASE)?;
    read_phase(conn, bus::ACPI_POWER_STATE, deadline, tx).await;
    loop {
        match signals.next().await {
            None => anyhow::bail!("phase source signal streams ended"),
            Some(SourceSignal::Properties(sig)) => {
                let args = sig.args()?;
                if args.interface_name() != &phase_iface {
                    continue;
                }
                let changed = args.changed_properties().iter().map(|(k, v)| (*k, v));
                match phase_update(changed) {
                    Ok(Some(update)) => {
                        let _ = tx.send(Event::Phase(update));
                    }
                    Ok(None) => {}
                    Err(e) => log::warn!("bad host phase update: {e:#}"),
                }
            }
            Some(SourceSignal::Owner(o)) => {
                let args = o.args()?;
                // Any change of owner: forget the old source (its generation counter too).
                let _ = tx.send(Event::PhaseSourceLost);
                if args.new_owner().is_none() {
                    log::warn!("{} left the bus: gate closed", bus::ACPI_POWER_STATE);
                } else if let Some(owner) = args.new_owner().as_ref() {
                    log::info!("{} (re)appeared", bus::ACPI_POWER_STATE);
                    read_phase(conn, owner.as_str(), deadline, tx).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openbmc_vocab::DbusEnum;
    use zbus::Variant;

    fn update<'a>(props: &'a [(&'a str, Variant<'a>)]) -> Result<Option<PhaseUpdate>> {
        phase_update(props.iter().map(|(k, v)| (*k, v)))
    }

    #[test]
    fn one_signal_is_one_whole_update() {
        let phase = HostPhase::FirmwareInit.dbus_str();
        let got = update(&[
            (phase_prop::PHASE, Variant::from(phase.as_str())),
            (phase_prop::REASON, Variant::from("chassis power on")),
            (phase_prop::SINCE, Variant::from(1_700_000_000_000_000u64)),
            (phase_prop::GENERATION, Variant::from(7u64)),
        ])
        .expect("well formed");
        assert_eq!(
            got,
            Some(PhaseUpdate {
                phase: HostPhase::FirmwareInit,
                since_us: 1_700_000_000_000_000,
                generation: Some(7),
                reason: "chassis power on".to_owned(),
            })
        );
    }

    #[test]
    fn a_signal_without_a_phase_is_no_update_and_a_bad_one_is_an_error() {
        let timeline = update(&[
            ("BootCount", Variant::from(3u32)),
            (phase_prop::GENERATION, Variant::from(8u64)),
        ]);
        assert_eq!(timeline.expect("well formed"), None);
        assert!(update(&[(phase_prop::PHASE, Variant::from("Working"))]).is_err());
        assert!(update(&[(phase_prop::SINCE, Variant::from("soon"))]).is_err());
    }
}
