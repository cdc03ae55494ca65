//! The I/O around the core: configuration, state files, D-Bus.

pub mod bus;
pub mod config;
pub mod sensors;
pub mod server;
pub mod store;

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use daemon_kit::supervisor;
use daemon_kit::watch::{self, Target, Update};
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::names::{bus as busname, iface, path, prop};
use tokio::sync::mpsc;

use crate::core::{Core, CoreConfig};
use config::Config;
use server::{App, IpmiServer};
use store::Store;

const ACPI: Target = Target {
    bus: busname::ACPI_POWER_STATE,
    path: path::ACPI_POWER_STATE,
    iface: iface::ACPI_POWER_STATE,
};

/// Build the core from the configuration and the state directory.
pub fn build_core(cfg: &Config, store: &Store) -> Result<Core> {
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
    };
    let sel = store.load_sel(cfg.sel_capacity)?;
    let numbers = store.load_numbers()?;
    let core = Core::new(core_cfg, sel, numbers);
    // The ACPI sensor's number may be new: keep it from the first start on.
    store.save_numbers(core.numbers())?;
    Ok(core)
}

pub async fn run(cfg: Config) -> Result<()> {
    let store = Store::new(&cfg.state_dir);
    let core = build_core(&cfg, &store)?;
    let conn = zbus::connection::Builder::system()
        .build()
        .await
        .context("cannot connect to the system bus")?;
    let app = Arc::new(App {
        conn: conn.clone(),
        cfg: cfg.clone(),
        store,
        core: tokio::sync::Mutex::new(core),
        sensors: Arc::new(Mutex::new(sensors::SensorCache::default())),
    });

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

    // ACPI transitions into the SEL. The first value seen is the baseline, not a transition.
    let acpi_task = {
        let app2 = app.clone();
        let (tx, mut rx) = mpsc::unbounded_channel::<AcpiState>();
        let follow = watch::watch(&conn, ACPI, move |u| {
            if let Update::Values(v) = u
                && let Some(s) = v
                    .get(prop::SYS_ACPI_STATUS)
                    .and_then(watch::enum_value::<AcpiState>)
            {
                let _ = tx.send(s);
            }
        });
        let apply = async move {
            let mut baseline = true;
            while let Some(s) = rx.recv().await {
                app2.acpi_published(s, baseline).await;
                baseline = false;
            }
        };
        async move {
            tokio::join!(follow, apply)
                .0
                .context("following the ACPI state")
        }
    };

    conn.object_server()
        .at(path::IPMI, IpmiServer(app.clone()))
        .await
        .context("serving the IPMI object")?;
    conn.request_name(busname::IPMI_HOST)
        .await
        .with_context(|| format!("cannot own {}", busname::IPMI_HOST))?;
    supervisor::notify_ready();
    log::info!(
        "serving {} on {} ({} SEL records, {} sensors)",
        iface::IPMI_SERVER,
        busname::IPMI_HOST,
        app.core.lock().await.sel().len(),
        sensors::lock(&app.sensors).paths().len()
    );

    tokio::select! {
        r = sensor_task => r?,
        r = acpi_task => r?,
        _ = supervisor::watchdog_task() => {}
        sig = supervisor::terminated() => {
            log::info!("{}: stopping", sig.context("signal handlers")?);
            supervisor::notify_stopping();
        }
    }
    Ok(())
}
