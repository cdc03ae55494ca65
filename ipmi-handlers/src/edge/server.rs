//! `xyz.openbmc_project.Ipmi.Server.execute`: resolve the caller's channel and privilege, read
//! what the command needs, let the core decide, carry out the effects, persist, answer.

use std::collections::HashMap;
use std::sync::Arc;

use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::ipmi::option;
use serde::Serialize;
use tokio::sync::Mutex;
use zbus::message::Header;
use zbus::{Connection, OwnedVariant, interface};

use super::bus::{self, CallerChannel};
use super::config::Config;
use super::sensors::{self, SharedCache};
use super::store::Store;
use crate::core::platform::PlatformView;
use crate::core::types::{cmd, netfn};
use crate::core::{Cc, ChannelKind, Core, Privilege, Request, Response};

/// The reply: ONE struct `(yyyyay)`, as sdbusplus sends a returned tuple and kcsbridge and
/// netipmid read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, zbus::Type)]
pub struct Reply(pub u8, pub u8, pub u8, pub u8, pub Vec<u8>);

impl From<Response> for Reply {
    fn from(r: Response) -> Self {
        Self(r.netfn, r.lun, r.cmd, r.cc, r.data)
    }
}

/// Everything the server shares between `execute` calls and its background tasks.
pub struct App {
    pub conn: Connection,
    pub cfg: Config,
    pub store: Store,
    /// Held for a whole command, so commands run one at a time, as in upstream ipmid.
    pub core: Mutex<Core>,
    pub sensors: SharedCache,
    /// Who owns which channel name, followed from the bus.
    pub channel_owners: Arc<std::sync::Mutex<bus::ChannelOwners>>,
}

/// The edge's wall clock, in the core's unit.
pub fn now() -> u32 {
    (daemon_kit::time::epoch_usec() / 1_000_000).min(u64::from(u32::MAX)) as u32
}

/// Get ACPI Power State, and a reading of the ACPI sensor, need the ACPI object read (a
/// temperature reading does not: `sdr elist` reads every sensor).
fn needs_acpi(req: &Request, acpi_sensor: u8) -> bool {
    (req.netfn == netfn::APP && req.cmd == cmd::app::GET_ACPI_POWER_STATE)
        || (req.netfn == netfn::SENSOR_EVENT
            && req.cmd == cmd::sensor::GET_SENSOR_READING
            && req.data.first() == Some(&acpi_sensor))
}

fn needs_chassis(netfn_: u8, cmd_: u8) -> bool {
    netfn_ == netfn::CHASSIS && cmd_ == cmd::chassis::GET_CHASSIS_STATUS
}

impl App {
    /// Give sensors numbers (persisting the map if it grew) and cancel stale SDR reservations.
    pub async fn sensors_changed(&self) {
        let paths = sensors::lock(&self.sensors).paths();
        let mut core = self.core.lock().await;
        if core.observe_sensors(paths.iter().map(String::as_str), now())
            && let Err(e) = self.store.save_numbers(core.numbers())
        {
            // Numbers stay right in memory; a restart before the next save could renumber
            // the new sensors only (older ones are in the file already).
            log::error!("cannot save sensor numbers: {e:#}");
        }
    }

    /// acpi-state-daemon published a system state.
    pub async fn acpi_published(&self, state: AcpiState) {
        let mut core = self.core.lock().await;
        if core.acpi_observed(state, now()) {
            log::info!("SEL: System ACPI Power State {state}");
            if let Err(e) = self.store.save_sel_off_loop(core.sel()).await {
                log::error!("cannot save the SEL: {e}");
            }
        }
    }

    pub async fn execute(
        &self,
        sender: Option<&str>,
        mut req: Request,
        options: &HashMap<String, OwnedVariant>,
    ) -> Response {
        let fail = |req: &Request, cc: Cc| Response::to(req, cc.code(), Vec::new());
        let Some(sender) = sender else {
            return fail(&req, Cc::UnspecifiedError);
        };
        match bus::caller_channel(&self.conn, &self.cfg, &self.channel_owners, sender).await {
            Ok(CallerChannel::Known(ch)) => req.channel = ch,
            Ok(CallerChannel::Unknown(name)) => {
                log::warn!("caller {sender} owns unconfigured channel name `{name}`");
                return fail(&req, Cc::DestinationUnavailable);
            }
            Err(e) => {
                log::error!("{e:#}");
                return fail(&req, Cc::UnspecifiedError);
            }
        }
        // Session-less channels run at Admin; session-based ones at the session's privilege,
        // which the front end passes with every request. Without it we cannot check: refuse.
        req.privilege = match req.channel.kind {
            ChannelKind::SystemInterface | ChannelKind::SessionLess => Privilege::Admin,
            ChannelKind::SessionBased => {
                match bus::int_option(options, option::PRIVILEGE).and_then(Privilege::from_level) {
                    Some(p) => p,
                    None => {
                        log::warn!(
                            "session-based request from {sender} without a valid privilege option"
                        );
                        return fail(&req, Cc::InsufficientPrivilege);
                    }
                }
            }
        };
        req.rq_sa = bus::int_option(options, option::RQ_SA).and_then(|v| u8::try_from(v).ok());
        log::debug!(
            "execute netfn={:#04x} cmd={:#04x} channel={} privilege={:?} user={:?} session={:?} data={:02x?}",
            req.netfn,
            req.cmd,
            req.channel.number,
            req.privilege,
            bus::int_option(options, option::USER_ID),
            bus::int_option(options, option::CURRENT_SESSION_ID),
            req.data
        );

        let mut view = PlatformView {
            now: now(),
            sensors: sensors::lock(&self.sensors).snapshot(),
            ..PlatformView::default()
        };
        let acpi_sensor = self.core.lock().await.acpi_sensor_number();
        if needs_acpi(&req, acpi_sensor) {
            view.acpi = bus::read_acpi(&self.conn)
                .await
                .map_err(|e| log::warn!("{e:#}"))
                .ok();
        }
        if needs_chassis(req.netfn, req.cmd) {
            view.chassis_power = bus::read_chassis_power(&self.conn)
                .await
                .map_err(|e| log::warn!("{e:#}"))
                .ok();
        }

        let mut core = self.core.lock().await;
        let decision = core.decide(&req, &view);
        if decision.cc != Cc::Success.code() {
            return decision.response(&req);
        }
        for e in decision.effects.iter().filter(|e| e.is_external()) {
            if let Err(err) = bus::perform(&self.conn, e).await {
                log::error!("{err:#}");
                return fail(&req, Cc::UnspecifiedError);
            }
            log::info!("netfn {:#04x} cmd {:#04x}: {e:?}", req.netfn, req.cmd);
        }
        let internal: Vec<_> = decision
            .effects
            .iter()
            .filter(|e| !e.is_external())
            .cloned()
            .collect();
        if !internal.is_empty() {
            // Commit on a copy; only a SEL that reached the disk becomes the SEL.
            let mut staged = core.clone();
            staged.commit(&internal);
            if staged.sel() != core.sel()
                && let Err(e) = self.store.save_sel_off_loop(staged.sel()).await
            {
                log::error!("cannot save the SEL: {e}");
                return fail(&req, Cc::UnspecifiedError);
            }
            *core = staged;
        }
        decision.response(&req)
    }
}

/// The D-Bus object.
pub struct IpmiServer(pub Arc<App>);

#[interface(name = "xyz.openbmc_project.Ipmi.Server", introspection_docs = false)]
impl IpmiServer {
    /// `execute(yyyaya{sv}) -> (yyyyay)`; lower-case, as upstream spells it.
    #[zbus(name = "execute")]
    async fn execute(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        netfn: u8,
        lun: u8,
        cmd: u8,
        data: Vec<u8>,
        options: HashMap<String, OwnedVariant>,
    ) -> (Reply,) {
        let req = Request {
            netfn,
            lun,
            cmd,
            data,
            // Filled in from the caller's bus names.
            channel: crate::core::Channel {
                number: 0,
                kind: ChannelKind::SessionLess,
            },
            privilege: Privilege::None,
            rq_sa: None,
        };
        let sender = hdr.sender().map(|s| s.to_string());
        (self
            .0
            .execute(sender.as_deref(), req, &options)
            .await
            .into(),)
    }
}
