//! A sensor with `PowerState: "BiosPost"`, following the host the way dbus-sensors does
//! (openbmc/dbus-sensors fc2953c5fa2b2dba6845c838f6f27a97d56532a7, `src/Utils.hpp` namespaces
//! `power` and `post`, `src/Utils.cpp`): the facts it is built to, not its code.
//!
//! * It reads `OperatingSystemState` (`xyz.openbmc_project.State.OperatingSystem.Status`) and
//!   `CurrentHostState` (`xyz.openbmc_project.State.Host`) at `/xyz/openbmc_project/state/host0`
//!   with a `Get` to `xyz.openbmc_project.State.Host0` first, and follows `PropertiesChanged` on
//!   that path with no sender filter (whoever emits it).
//! * "POST done" is `OperatingSystemState` being neither `Inactive` nor
//!   `xyz.openbmc_project.State.OperatingSystem.Status.OSStatus.Inactive`.
//! * Power is taken as on a delay after `CurrentHostState` ends in `.Running` (10 s upstream;
//!   given here, so tests can keep it short), and as off at once when it does not.
//! * The sensor reads only while both hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use openbmc_vocab::names::{bus, iface, path, prop};
use openbmc_vocab::state::OS_STATUS_INACTIVE_SHORT;
use zbus::{Connection, OwnedVariant};

use crate::BusAddress;

/// What dbus-sensors upstream waits after `Running` before it takes power as on.
pub const UPSTREAM_POWER_ON_DELAY: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct View {
    /// `OperatingSystemState` as last seen, as the string on the bus.
    os: Option<String>,
    /// Since when `CurrentHostState` has been `…Running`.
    running_since: Option<Instant>,
}

impl View {
    fn post_done(&self) -> bool {
        self.os.as_deref().is_some_and(|s| {
            s != OS_STATUS_INACTIVE_SHORT
                && s != "xyz.openbmc_project.State.OperatingSystem.Status.OSStatus.Inactive"
        })
    }

    fn host_state(&mut self, state: &str) {
        if state.ends_with(".Running") {
            self.running_since.get_or_insert_with(Instant::now);
        } else {
            self.running_since = None;
        }
    }
}

/// A BiosPost sensor of a dbus-sensors daemon, watching host 0.
pub struct BiosPostSensor {
    view: Arc<Mutex<View>>,
    power_on_delay: Duration,
    task: tokio::task::JoinHandle<()>,
    _conn: Connection,
}

impl BiosPostSensor {
    /// Subscribe, read both properties, and follow them.
    pub async fn start(bus: &impl BusAddress, power_on_delay: Duration) -> Result<Self> {
        let conn = crate::connect(bus).await?;
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(iface::PROPERTIES)
            .member("PropertiesChanged")
            .path(path::HOST0)
            .build()?;
        let mut stream = zbus::MessageStream::for_match_rule(rule, &conn, None)
            .await
            .context("PropertiesChanged match")?;
        let view = Arc::new(Mutex::new(View::default()));
        // The first reads: a Get on the Host0 name; a missing service leaves them unknown.
        let get = |interface: &'static str, name: &'static str| {
            let conn = conn.clone();
            async move {
                let reply = conn
                    .call_method(
                        Some(bus::STATE_HOST0),
                        path::HOST0,
                        Some(iface::PROPERTIES),
                        "Get",
                        &(interface, name),
                    )
                    .await
                    .ok()?;
                let v: OwnedVariant = reply.body().deserialize().ok()?;
                String::try_from(v).ok()
            }
        };
        let os = get(iface::OS_STATUS, prop::OPERATING_SYSTEM_STATE).await;
        let host = get(iface::STATE_HOST, prop::CURRENT_HOST_STATE).await;
        if let Ok(mut v) = view.lock() {
            v.os = os;
            if let Some(h) = host {
                v.host_state(&h);
            }
        }
        let followed = view.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Ok((interface, changed, _)) =
                    msg.body()
                        .deserialize::<(String, HashMap<String, OwnedVariant>, Vec<String>)>()
                else {
                    continue;
                };
                let Ok(mut v) = followed.lock() else {
                    return;
                };
                let text = |name: &str| -> Option<String> {
                    changed
                        .get(name)
                        .and_then(|x| x.try_clone().ok())
                        .and_then(|x| String::try_from(x).ok())
                };
                if interface == iface::OS_STATUS
                    && let Some(s) = text(prop::OPERATING_SYSTEM_STATE)
                {
                    v.os = Some(s);
                }
                if interface == iface::STATE_HOST
                    && let Some(s) = text(prop::CURRENT_HOST_STATE)
                {
                    v.host_state(&s);
                }
            }
        });
        Ok(Self {
            view,
            power_on_delay,
            task,
            _conn: conn,
        })
    }

    /// Whether the sensor reads now: POST done, and power on for the delay.
    pub fn reads(&self) -> bool {
        self.view.lock().is_ok_and(|v| {
            v.post_done()
                && v.running_since
                    .is_some_and(|t| t.elapsed() >= self.power_on_delay)
        })
    }

    /// `OperatingSystemState` as the sensor last saw it.
    pub fn os_status(&self) -> Option<String> {
        self.view.lock().ok().and_then(|v| v.os.clone())
    }
}

impl Drop for BiosPostSensor {
    fn drop(&mut self) {
        self.task.abort();
    }
}
