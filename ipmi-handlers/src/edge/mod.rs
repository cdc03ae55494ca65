//! The I/O around the core: configuration, state files, D-Bus.

pub mod bus;
pub mod config;
pub mod sel_disk;
pub mod sensors;
pub mod server;
pub mod store;

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use std::collections::HashMap;

use daemon_kit::supervisor;
use futures_util::StreamExt;
use openbmc_vocab::DbusEnum;
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::names::{bus as busname, iface, path, prop};
use tokio::sync::mpsc;
use zbus::fdo::NameOwnerChangedStream;
use zbus::message::Type as MsgType;
use zbus::{MatchRule, MessageStream, OwnedVariant, Variant};

use crate::core::{Core, CoreConfig};
use config::Config;
use sel_disk::SelDisk;
use server::{App, IpmiServer, SelObject};
use store::Store;

/// Follows `SysACPIStatus` of acpi-state-daemon: its PropertiesChanged signals, and a fresh
/// read whenever the daemon (re)appears on the bus.
struct AcpiFollower {
    conn: zbus::Connection,
    changes: MessageStream,
    owners: NameOwnerChangedStream,
}

impl AcpiFollower {
    async fn subscribe(conn: &zbus::Connection) -> Result<Self> {
        let rule = MatchRule::builder()
            .msg_type(MsgType::Signal)
            .sender(busname::ACPI_POWER_STATE)
            .path(path::ACPI_POWER_STATE)
            .interface(iface::PROPERTIES)
            .member("PropertiesChanged")
            .arg(0, iface::ACPI_POWER_STATE)
            .build()?;
        let changes = daemon_kit::bus::match_stream(rule, conn).await?;
        let dbus = daemon_kit::bus::dbus_proxy(conn).await?;
        let owners = daemon_kit::bus::owner_changes(&dbus, busname::ACPI_POWER_STATE).await?;
        Ok(Self {
            conn: conn.clone(),
            changes,
            owners,
        })
    }

    async fn run(self, app: Arc<App>) -> Result<()> {
        use zbus::export::ordered_stream::OrderedStreamExt;
        // In the order the bus sent them: a state the old owner announced just before it left
        // must not be taken after the new owner's state has been read.
        let mut signals = daemon_kit::bus::in_bus_order(
            OrderedStreamExt::map(self.changes, AcpiSignal::Changed),
            OrderedStreamExt::map(self.owners, AcpiSignal::Owner),
        );
        while let Some(signal) = signals.next().await {
            match signal {
                AcpiSignal::Changed(m) => {
                    let Ok(m) = m else { continue };
                    let at = m.recv_position();
                    let Ok((_, changed, _)) =
                        m.body()
                            .deserialize::<(String, HashMap<String, OwnedVariant>, Vec<String>)>()
                    else {
                        continue;
                    };
                    let state = |name: &str| {
                        changed.get(name).and_then(|v| match &**v {
                            Variant::Str(s) => AcpiState::from_dbus_str(s.as_str()).ok(),
                            _ => None,
                        })
                    };
                    let (sys, dev) = (state(prop::SYS_ACPI_STATUS), state(prop::DEV_ACPI_STATUS));
                    // What Get ACPI answers from, before the SEL (which may wait for the disk).
                    app.acpi_changed(sys, dev, at);
                    if let Some(s) = sys {
                        app.acpi_published(s).await;
                    }
                }
                AcpiSignal::Owner(o) => {
                    // (Re)appeared: its state now may differ from the last one we saw. Asked
                    // of that owner itself: if it has already left, there is nothing to take.
                    let owner = o
                        .args()
                        .ok()
                        .and_then(|a| a.new_owner().as_ref().map(|n| n.to_string()));
                    let at = o.message().recv_position();
                    let Some(owner) = owner else {
                        // Gone: Get ACPI answers 0xFF until an owner is back.
                        app.follow_acpi(None, at);
                        continue;
                    };
                    match bus::read_acpi_from(&self.conn, &owner).await {
                        Ok((state, read_at)) => {
                            app.follow_acpi(Some(state), read_at);
                            app.acpi_published(state.0).await;
                        }
                        Err(_) => app.follow_acpi(None, at),
                    }
                }
            }
        }
        Ok(())
    }
}

/// One signal [`AcpiFollower`] follows.
enum AcpiSignal {
    Changed(zbus::Result<zbus::Message>),
    Owner(zbus::fdo::NameOwnerChanged),
}

/// Keeps [`bus::ChannelOwners`] current: subscribe to `NameOwnerChanged` for the channel
/// names first, then read who owns them now, so no change falls between the two.
struct ChannelFollower {
    changes: MessageStream,
    owners: Arc<std::sync::Mutex<bus::ChannelOwners>>,
}

impl ChannelFollower {
    async fn subscribe(conn: &zbus::Connection) -> Result<Self> {
        let namespace = busname::IPMI_CHANNEL_PREFIX.trim_end_matches('.');
        let rule = MatchRule::builder()
            .msg_type(MsgType::Signal)
            .sender(busname::DBUS)
            .interface(busname::DBUS)
            .member("NameOwnerChanged")
            .arg0ns(namespace)
            .build()?;
        let changes = daemon_kit::bus::match_stream(rule, conn).await?;
        let owners = Arc::new(std::sync::Mutex::new(bus::scan_channel_owners(conn).await?));
        Ok(Self { changes, owners })
    }

    async fn run(mut self) -> Result<()> {
        while let Some(m) = self.changes.next().await {
            let Ok(m) = m else { continue };
            let Ok((name, old, new)) = m.body().deserialize::<(String, String, String)>() else {
                continue;
            };
            // An empty owner means none.
            fn some(s: &str) -> Option<&str> {
                (!s.is_empty()).then_some(s)
            }
            bus::lock_owners(&self.owners).owner_changed(&name, some(&old), some(&new));
        }
        Ok(())
    }
}

/// The rate limit's refusals reach the log with the first one and then every 10 s while they
/// go on; this brings out the last count of a flood that stopped.
async fn report_refusals(app: &App) {
    let every = crate::core::limit::REPORT_EVERY;
    loop {
        tokio::time::sleep(every).await;
        app.report_refusals();
    }
}

/// Build the core from the configuration and the state directory, with the writer of the
/// SEL file.
pub fn build_core(cfg: &Config, store: &Store) -> Result<(Core, SelDisk)> {
    let device_id = config::load_device_id(cfg.dev_id.as_deref())?;
    let guids = store.guids()?;
    let core_cfg = CoreConfig {
        device_id,
        system_guid: store::wire_order(&guids.system),
        device_guid: store::wire_order(&guids.device),
        acpi_sensor_key: path::ACPI_POWER_STATE.to_owned(),
        acpi_sensor_name: cfg.acpi_sensor_name.clone(),
        temperature_entity: cfg.temperature_entity,
        acpi_entity: cfg.acpi_entity,
        sel_capacity: cfg.sel_capacity,
        sel_rate: cfg.sel_rate(),
    };
    let (sel, disk) = store.open_sel(cfg.sel_capacity)?;
    let numbers = store.load_numbers()?;
    let core = Core::new(core_cfg, sel, numbers);
    // The ACPI sensor's number may be new: keep it from the first start on.
    store.save_numbers(core.numbers())?;
    Ok((core, disk))
}

pub async fn run(cfg: Config) -> Result<()> {
    bus::set_call_deadline(std::time::Duration::from_millis(cfg.call_timeout_ms));
    let store = Store::new(&cfg.state_dir);
    let (core, sel_disk) = build_core(&cfg, &store)?;
    let conn = daemon_kit::bus::build(zbus::connection::Builder::system())
        .await
        .context("cannot connect to the system bus")?;
    let channels = ChannelFollower::subscribe(&conn)
        .await
        .context("following the IPMI channel names")?;
    let app = Arc::new(App {
        conn: conn.clone(),
        cfg: cfg.clone(),
        store,
        core: Mutex::new(core),
        sel_io: sel_disk.stats(),
        sel_disk: tokio::sync::Mutex::new(sel_disk),
        acpi_io: tokio::sync::RwLock::new(()),
        acpi: Mutex::new(server::FollowedAcpi::default()),
        numbers_io: tokio::sync::Mutex::new(()),
        sensors: Arc::new(Mutex::new(sensors::SensorCache::default())),
        channel_owners: channels.owners.clone(),
    });
    let channel_task = channels.run();

    // Sensors first: once we answer, the SDR repository is complete.
    sensors::full_scan(&conn, &app.sensors, &cfg.sensor_services_ignored)
        .await
        .context("scanning the bus for sensors")?;
    app.sensors_changed().await;
    let sensor_task = {
        let app2 = app.clone();
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let follow = sensors::follow(
            conn.clone(),
            app.sensors.clone(),
            cfg.sensor_services_ignored.clone(),
            move || {
                let _ = tx.send(());
            },
        );
        let apply = async move {
            while rx.recv().await.is_some() {
                app2.sensors_changed().await;
            }
        };
        async move { tokio::join!(follow, apply).0.context("following sensors") }
    };

    // ACPI transitions into the SEL. Subscribe, then read the baseline, both before READY: a
    // transition right after we answer our first command is then never missed.
    let acpi_follower = AcpiFollower::subscribe(&conn).await?;
    if let Ok((state, at)) = bus::read_acpi(&conn).await {
        app.core().acpi_baseline(state.0);
        app.follow_acpi(Some(state), at);
    }
    let acpi_task = acpi_follower.run(app.clone());

    conn.object_server()
        .at(path::IPMI, IpmiServer(app.clone()))
        .await
        .context("serving the IPMI object")?;
    conn.object_server()
        .at(
            openbmc_vocab::names::path::ACPIGATE_SEL,
            SelObject(app.clone()),
        )
        .await
        .context("serving the SEL object")?;
    daemon_kit::bus::request_name(&conn, busname::IPMI_HOST)
        .await
        .with_context(|| format!("cannot own {}", busname::IPMI_HOST))?;
    let mut life = supervisor::Lifecycle::start(supervisor::bus_probe(conn.clone()))
        .context("cannot install signal handlers")?;
    life.ready();
    log::info!(
        "serving {} on {} ({} SEL records, {} sensors)",
        iface::IPMI_SERVER,
        busname::IPMI_HOST,
        app.core().sel().len(),
        sensors::lock(&app.sensors).paths().len()
    );

    tokio::select! {
        // Both followers only end when the bus connection does: exit non-zero, so systemd
        // restarts us onto the new bus.
        r = sensor_task => {
            r?;
            anyhow::bail!("the system bus connection ended");
        }
        r = acpi_task => {
            r?;
            anyhow::bail!("the system bus connection ended");
        }
        r = channel_task => {
            r?;
            anyhow::bail!("the system bus connection ended");
        }
        _ = report_refusals(&app) => {}
        sig = life.stop_requested() => life.stopping(sig),
    }
    Ok(())
}
