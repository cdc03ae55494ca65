//! `xyz.openbmc_project.Ipmi.Server.execute`: resolve the caller's channel and privilege, read
//! what the command needs, let the core decide, carry out the effects, persist, answer.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::ipmi::option;
use serde::Serialize;
use zbus::message::{Header, Sequence};
use zbus::{Connection, OwnedVariant, interface};

use super::bus::{self, CallerChannel};
use super::config::Config;
use super::sel_disk::{SelDisk, SelIoStats};
use super::sensors::{self, SharedCache};
use super::store::Store;
use crate::core::platform::PlatformView;
use crate::core::{
    AcpiUse, Cc, ChannelKind, Core, Decision, Effect, Privilege, Request, Response,
    caller_privilege,
};

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
///
/// Commands run concurrently. What must not interleave is serialized by what it touches, so
/// that nothing waits for I/O it does not need: the core only for synchronous steps, the SEL
/// file for a SEL change, the ACPI object for a Set ACPI.
pub struct App {
    pub conn: Connection,
    pub cfg: Config,
    pub store: Store,
    /// Locked only for synchronous steps (decide, commit, a count), never across an await:
    /// a slow disk or a stalled service holds up the command waiting for it, no other.
    pub core: std::sync::Mutex<Core>,
    /// Every change of the SEL holds this from deciding it to committing it, across its
    /// write to the disk, so changes reach the file in the order they were made. Commands
    /// that do not change the SEL never wait for it.
    pub sel_disk: tokio::sync::Mutex<SelDisk>,
    /// What the SEL file has cost, readable while a write is in progress.
    pub sel_io: Arc<SelIoStats>,
    /// Set ACPI holds this for writing across its writes (and their undo); Get ACPI and the
    /// ACPI sensor's reading for reading: an IPMI caller never reads half of a Set.
    pub acpi_io: tokio::sync::RwLock<()>,
    /// `(SysACPIStatus, DevACPIStatus)` as followed from acpi-state-daemon's signals, a read
    /// when it appears and a read after each Set; `None` while it is not on the bus. What Get
    /// ACPI answers from: no D-Bus call per request.
    pub acpi: std::sync::Mutex<FollowedAcpi>,
    /// Saving the sensor number map, one save at a time.
    pub numbers_io: tokio::sync::Mutex<()>,
    pub sensors: SharedCache,
    /// Who owns which channel name, followed from the bus.
    pub channel_owners: Arc<std::sync::Mutex<bus::ChannelOwners>>,
}

/// The ACPI state as last heard, with where in this connection's incoming messages it was
/// heard. Signals and read answers come through different tasks and may be handled out of
/// order; an older message never overwrites what a newer one said.
#[derive(Debug, Default)]
pub struct FollowedAcpi {
    state: Option<(AcpiState, AcpiState)>,
    at: Option<Sequence>,
}

impl FollowedAcpi {
    pub fn state(&self) -> Option<(AcpiState, AcpiState)> {
        self.state
    }

    fn newer(&mut self, at: Sequence) -> bool {
        if self.at.is_some_and(|had| had >= at) {
            return false;
        }
        self.at = Some(at);
        true
    }

    /// What a read answered (or `None`: the owner left, or did not answer).
    pub fn read(&mut self, state: Option<(AcpiState, AcpiState)>, at: Sequence) {
        if self.newer(at) {
            self.state = state;
        }
    }

    /// What a PropertiesChanged said; either value may be absent from it.
    pub fn changed(&mut self, sys: Option<AcpiState>, dev: Option<AcpiState>, at: Sequence) {
        if !self.newer(at) {
            return;
        }
        self.state = match (self.state, sys, dev) {
            (Some((s, d)), _, _) => Some((sys.unwrap_or(s), dev.unwrap_or(d))),
            // Not known before (the read at its arrival failed): both at once make it known.
            (None, Some(s), Some(d)) => Some((s, d)),
            (None, _, _) => None,
        };
    }
}

/// The edge's wall clock, in the SEL's unit (seconds).
pub fn now() -> u32 {
    daemon_kit::time::now().wall_secs()
}

/// A held [`App::acpi_io`].
#[allow(dead_code)] // held for its drop
enum AcpiGuard<'a> {
    Read(tokio::sync::RwLockReadGuard<'a, ()>),
    Write(tokio::sync::RwLockWriteGuard<'a, ()>),
}

impl App {
    /// The core, for one synchronous step. A poisoned lock only means a panic elsewhere
    /// mid-step; the core is still a valid core.
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn followed_acpi(&self) -> std::sync::MutexGuard<'_, FollowedAcpi> {
        self.acpi.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ACPI state as read from its owner, answered at `at` (`None`: no owner, or
    /// unreadable).
    pub fn follow_acpi(&self, state: Option<(AcpiState, AcpiState)>, at: Sequence) {
        self.followed_acpi().read(state, at);
    }

    /// acpi-state-daemon announced a new system and/or device state, in a signal received
    /// at `at`.
    pub fn acpi_changed(&self, sys: Option<AcpiState>, dev: Option<AcpiState>, at: Sequence) {
        self.followed_acpi().changed(sys, dev, at);
    }

    /// Read the ACPI object into the followed state.
    pub async fn reread_acpi(&self) {
        match bus::read_acpi(&self.conn).await {
            Ok((state, at)) => self.follow_acpi(Some(state), at),
            Err(e) => log::warn!("{e:#}"),
        }
    }

    /// Give sensors numbers (persisting the map if it grew) and cancel stale SDR reservations.
    pub async fn sensors_changed(&self) {
        let paths = sensors::lock(&self.sensors).paths();
        let grew = self
            .core()
            .observe_sensors(paths.iter().map(String::as_str), now());
        if grew {
            self.save_numbers().await;
        }
    }

    /// Save the sensor number map off the event loop, the latest one: a save that waited
    /// for another writes what the core holds now, never an older map over a newer one.
    async fn save_numbers(&self) {
        let _one_at_a_time = self.numbers_io.lock().await;
        let numbers = self.core().numbers().clone();
        if let Err(e) = self.store.save_numbers_off_loop(numbers).await {
            // Numbers stay right in memory; a restart before the next save could renumber
            // the new sensors only (older ones are in the file already).
            log::error!("cannot save sensor numbers: {e:#}");
        }
    }

    /// acpi-state-daemon published a system state. A transition is our own record: never
    /// rate limited, kept in memory even if the disk refuses it.
    pub async fn acpi_published(&self, state: AcpiState) {
        let mut disk = self.sel_disk.lock().await;
        let staged = self.core().acpi_observed_staged(state, now());
        if let Some(staged) = staged {
            log::info!("SEL: System ACPI Power State {state}");
            if let Err(e) = disk.persist(&staged).await {
                log::error!("cannot save the SEL: {e}");
            }
        }
    }

    /// Log the rate limit's refusals, at most once every 10 s (and the first at once).
    pub fn report_refusals(&self) {
        let (report, rate) = {
            let mut core = self.core();
            (
                core.refusal_report(std::time::Instant::now()),
                core.sel_rate(),
            )
        };
        if let Some(r) = report {
            let channels: Vec<String> = r
                .by_channel
                .iter()
                .map(|(ch, n)| format!("channel {ch}: {n}"))
                .collect();
            log::warn!(
                "SEL: refused {} records over the limit of {} a second after a burst of {} \
                 (completion code 0xC0); {} since the start ({})",
                r.new,
                rate.per_second,
                rate.burst,
                r.total,
                channels.join(", ")
            );
        }
    }

    /// Decide `req` against `view` in one short hold of the core. A refusal by the rate
    /// limit is counted (and reported) here.
    fn decide(&self, req: &Request, view: &PlatformView) -> Decision {
        let decision = self.core().decide(req, view);
        if let Some(channel) = decision.throttled {
            self.core().throttled(channel);
            self.report_refusals();
        }
        decision
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
        let session_privilege = bus::int_option(options, option::PRIVILEGE);
        req.privilege = match caller_privilege(req.channel.kind, session_privilege) {
            Some(p) => p,
            None => {
                log::warn!("session-based request from {sender} without a valid privilege option");
                return fail(&req, Cc::InsufficientPrivilege);
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

        // Only what the command looks at (the core says which): no D-Bus call and no copy of
        // the sensor list for a command that does not need them.
        let reads = self.core().reads(&req);
        // Held until the writes (and any undo) are done, or the read is.
        let _acpi_guard = match reads.acpi {
            AcpiUse::None => None,
            AcpiUse::Read => Some(AcpiGuard::Read(self.acpi_io.read().await)),
            AcpiUse::Write => Some(AcpiGuard::Write(self.acpi_io.write().await)),
        };
        let mut view = PlatformView::at(daemon_kit::time::now());
        if reads.sensors {
            view.sensors = sensors::lock(&self.sensors).snapshot();
        }
        match reads.acpi {
            AcpiUse::None => {}
            AcpiUse::Read => view.acpi = self.followed_acpi().state(),
            // The state to put back should the second write fail: read from the object
            // itself, not from signals that may still be on their way.
            AcpiUse::Write => {
                view.acpi = bus::read_acpi(&self.conn)
                    .await
                    .map_err(|e| log::warn!("{e:#}"))
                    .ok()
                    .map(|(state, _)| state);
            }
        }
        if reads.chassis_power {
            view.chassis_power = bus::read_chassis_power(&self.conn)
                .await
                .map_err(|e| log::warn!("{e:#}"))
                .ok();
        }

        let mut decision = self.decide(&req, &view);
        // A SEL change waits its turn for the disk, then is decided again: the SEL (its next
        // record ID, a reservation) and the rate limit may have moved meanwhile. A refusal
        // never waits.
        let mut sel_disk = None;
        if decision.cc == Cc::Success.code() && decision.changes_sel() {
            sel_disk = Some(self.sel_disk.lock().await);
            view.now = daemon_kit::time::now();
            decision = self.decide(&req, &view);
        }
        if decision.cc != Cc::Success.code() {
            return decision.response(&req);
        }
        let performed = self.perform_external(&req, &decision).await;
        if reads.acpi == AcpiUse::Write {
            // The state now, read after our writes (and any taking back): newer than every
            // signal the object sent about them, so a Get right after this Set answers it even
            // while those signals are still on their way to the follower.
            self.reread_acpi().await;
        }
        if let Err(cc) = performed {
            return fail(&req, cc);
        }

        let internal: Vec<Effect> = decision
            .effects
            .iter()
            .filter(|e| !e.is_external())
            .cloned()
            .collect();
        if internal.is_empty() {
            return decision.response(&req);
        }
        let staged = self.core().stage_sel(&internal);
        if let Some(staged) = staged {
            // Decided without the SEL writer (the first decision changed nothing in the SEL,
            // the second does): the SEL may have moved meanwhile, so do not guess.
            let Some(disk) = sel_disk.as_mut() else {
                log::error!("{req:?}: a SEL change decided without the SEL writer; refused");
                return fail(&req, Cc::UnspecifiedError);
            };
            // Only a change that reached the disk is answered for and becomes the SEL.
            if let Err(e) = disk.persist(&staged).await {
                log::error!("cannot save the SEL: {e}");
                return fail(&req, Cc::UnspecifiedError);
            }
        }
        self.core().commit(&internal);
        decision.response(&req)
    }

    /// Carry out the external effects in order. Should one fail, the ones before it that the
    /// core says how to take back are taken back (newest first), and the command fails with
    /// 0xFF. Every step is logged, naming the property and the value.
    async fn perform_external(&self, req: &Request, decision: &Decision) -> Result<(), Cc> {
        let what = format!("netfn {:#04x} cmd {:#04x}", req.netfn, req.cmd);
        // (index among all effects, which `Decision::undo` is aligned with; effect)
        let external: Vec<(usize, &Effect)> = decision
            .effects
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_external())
            .collect();
        for (k, (_, e)) in external.iter().enumerate() {
            let err = match bus::perform(&self.conn, e).await {
                Ok(()) => {
                    log::info!("{what}: {}", bus::describe(e));
                    continue;
                }
                Err(err) => err,
            };
            if k == 0 {
                log::error!("{what}: {err:#}; nothing was written");
                return Err(Cc::UnspecifiedError);
            }
            let done: Vec<String> = external[..k]
                .iter()
                .map(|(_, d)| bus::describe(d))
                .collect();
            log::error!(
                "{what}: {} written, then {err:#}; taking it back",
                done.join(", ")
            );
            for (i, done) in external[..k].iter().rev() {
                let Some(undo) = decision.undo_of(*i) else {
                    continue;
                };
                match bus::perform(&self.conn, undo).await {
                    Ok(()) => log::warn!(
                        "{what}: taken back: {} (the request is refused, nothing of it stays)",
                        bus::describe(undo)
                    ),
                    Err(e) => log::error!(
                        "{what}: could not take back {} ({e:#}): it stays",
                        bus::describe(done)
                    ),
                }
            }
            return Err(Cc::UnspecifiedError);
        }
        Ok(())
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

/// `org.acpigate.Sel`: what the SEL holds and what it cost, for operators and tests. Counters
/// since the start; read on demand (no change signals: a flood must not become a signal
/// storm on the bus).
pub struct SelObject(pub Arc<App>);

#[interface(name = "org.acpigate.Sel", introspection_docs = false)]
impl SelObject {
    /// Records in the SEL.
    #[zbus(property(emits_changed_signal = "false"), name = "Entries")]
    fn entries(&self) -> u32 {
        self.0.core().sel().len() as u32
    }
    /// Records added over IPMI (Add SEL Entry, Platform Event Message).
    #[zbus(property(emits_changed_signal = "false"), name = "IpmiRecordsAdded")]
    fn ipmi_added(&self) -> u64 {
        self.0.core().sel_counts().ipmi_added
    }
    /// Records over IPMI refused by the rate limit (answered 0xC0).
    #[zbus(property(emits_changed_signal = "false"), name = "IpmiRecordsRefused")]
    fn ipmi_refused(&self) -> u64 {
        self.0.core().sel_counts().ipmi_refused
    }
    /// acpigate's own records (System ACPI Power State), never refused.
    #[zbus(property(emits_changed_signal = "false"), name = "OwnRecordsAdded")]
    fn own_added(&self) -> u64 {
        self.0.core().sel_counts().own_added
    }
    /// The limit: records a second per channel, and the burst.
    #[zbus(property(emits_changed_signal = "false"), name = "RatePerSecond")]
    fn rate(&self) -> u32 {
        self.0.core().sel_rate().per_second
    }
    #[zbus(property(emits_changed_signal = "false"), name = "Burst")]
    fn burst(&self) -> u32 {
        self.0.core().sel_rate().burst
    }
    /// Bytes written to the SEL file (appended frames and rewritten snapshots).
    #[zbus(property(emits_changed_signal = "false"), name = "FileBytesWritten")]
    fn bytes_written(&self) -> u64 {
        SelIoStats::get(&self.0.sel_io.bytes_written)
    }
    /// Frames appended to the SEL file (one per change).
    #[zbus(property(emits_changed_signal = "false"), name = "FileFramesAppended")]
    fn frames_appended(&self) -> u64 {
        SelIoStats::get(&self.0.sel_io.frames_appended)
    }
    /// Times the SEL file was rewritten as a fresh snapshot (compactions).
    #[zbus(property(emits_changed_signal = "false"), name = "FileRewrites")]
    fn rewrites(&self) -> u64 {
        SelIoStats::get(&self.0.sel_io.rewrites)
    }
    /// The SEL file's length now.
    #[zbus(property(emits_changed_signal = "false"), name = "FileBytes")]
    fn file_bytes(&self) -> u64 {
        SelIoStats::get(&self.0.sel_io.file_len)
    }
}
