//! The pure IPMI core: requests in, response bytes and effects out. No I/O, no clock.
//!
//! A command is handled in two steps so that a rejected request can change nothing:
//! [`Core::decide`] looks at the request, the core's own state and a read-only
//! [`PlatformView`] and returns the response plus the [`Effect`]s it asks for, without
//! touching anything; the edge performs the external effects (D-Bus writes) and, if they all
//! succeed, hands the internal ones (SEL, reservations, SEL time) to [`Core::commit`].
//!
//! Records that arrive over IPMI are rate limited per channel ([`limit`]); a refused one is
//! answered 0xC0 and counted through [`Core::throttled`]. acpigate's own records are never
//! refused.

mod app;
mod chassis;
pub mod limit;
pub mod numbering;
pub mod platform;
pub mod sdr;
pub mod sel;
mod sensor;
mod storage;
pub mod types;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::state::{ChassisTransition, HostTransition};

use limit::{RefusalReport, SelLimiter, SelRateLimit};
use numbering::SensorNumbers;
use platform::PlatformView;
use sel::{Record, SelChange, SelStore, SystemEvent};
pub use types::{Cc, Channel, ChannelKind, Privilege, Request, Response};
use types::{cmd, netfn};

/// Get Device ID content (upstream keeps it in `dev_id.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId {
    pub id: u8,
    /// Bits 3:0 device revision; bit 7 "provides device SDRs".
    pub revision: u8,
    /// Major firmware revision, 7 bits (bit 7 of the byte is "device available").
    pub fw_major: u8,
    /// Minor firmware revision, as BCD on the wire (e.g. 14 → 0x14).
    pub fw_minor: u8,
    pub addn_dev_support: u8,
    /// 20-bit IANA enterprise number.
    pub manuf_id: u32,
    pub prod_id: u16,
    pub aux: u32,
}

/// What the core is told at start and never changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreConfig {
    pub device_id: DeviceId,
    pub system_guid: [u8; 16],
    pub device_guid: [u8; 16],
    /// Key of the ACPI sensor in the number map (the ACPI object's path).
    pub acpi_sensor_key: String,
    /// ID string of the ACPI sensor's SDR (what `ipmitool sel elist` prints after the type).
    pub acpi_sensor_name: String,
    /// Entity ID and instance for temperature sensor records.
    pub temperature_entity: (u8, u8),
    /// Entity ID and instance for the ACPI sensor record.
    pub acpi_entity: (u8, u8),
    /// Most records the SEL holds.
    pub sel_capacity: usize,
    /// How many records each IPMI channel may add.
    pub sel_rate: SelRateLimit,
}

/// A record that arrived over IPMI counts against its channel's rate limit, at monotonic
/// time `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub channel: u8,
    pub at: std::time::Instant,
}

/// What a command asks the world (external) or the core (internal) to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Write `SysACPIStatus`.
    SetSysAcpi(AcpiState),
    /// Write `DevACPIStatus`.
    SetDevAcpi(AcpiState),
    /// Write `RequestedPowerTransition` on the chassis.
    Chassis(ChassisTransition),
    /// Write `RequestedHostTransition` on the host.
    Host(HostTransition),
    /// Append a record stamped `at` (SEL time); `quota` for records that came over IPMI.
    SelAdd {
        record: Record,
        at: u32,
        quota: Option<Quota>,
    },
    SelDelete(u16),
    SelClear {
        at: u32,
    },
    SelReserve(u16),
    SdrReserve(u16),
    /// SEL time = BMC time + offset (seconds).
    SelTimeOffset(i64),
}

impl Effect {
    /// Whether the edge carries it out (D-Bus), rather than [`Core::commit`].
    pub fn is_external(&self) -> bool {
        matches!(
            self,
            Self::SetSysAcpi(_) | Self::SetDevAcpi(_) | Self::Chassis(_) | Self::Host(_)
        )
    }

    /// Whether it changes the SEL (which the edge writes to the disk before committing).
    pub fn changes_sel(&self) -> bool {
        matches!(
            self,
            Self::SelAdd { .. } | Self::SelDelete(_) | Self::SelClear { .. }
        )
    }
}

/// The outcome of [`Core::decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub cc: u8,
    pub data: Vec<u8>,
    pub effects: Vec<Effect>,
    /// For the external effect at the same index, the one that takes it back should a later
    /// external effect of this decision fail (`None`, or a short list: nothing to take back).
    /// The edge carries them out newest first, so a command is all or nothing where the
    /// platform lets it be.
    pub undo: Vec<Option<Effect>>,
    /// A record the channel's rate limit refused (the channel): hand it to
    /// [`Core::throttled`], which counts it.
    pub throttled: Option<u8>,
}

impl Decision {
    fn reject(cc: Cc) -> Self {
        Self {
            cc: cc.code(),
            data: Vec::new(),
            effects: Vec::new(),
            undo: Vec::new(),
            throttled: None,
        }
    }

    /// What takes back the effect at `index`, if anything must.
    pub fn undo_of(&self, index: usize) -> Option<&Effect> {
        self.undo.get(index).and_then(Option::as_ref)
    }

    /// Whether the decision changes the SEL.
    pub fn changes_sel(&self) -> bool {
        self.effects.iter().any(Effect::changes_sel)
    }
    pub fn response(&self, req: &Request) -> Response {
        Response::to(req, self.cc, self.data.clone())
    }
}

/// A handler's success: response data and effects.
pub(crate) struct Reply {
    data: Vec<u8>,
    effects: Vec<Effect>,
    undo: Vec<Option<Effect>>,
}

impl Reply {
    fn data(data: Vec<u8>) -> Self {
        Self::with(data, Vec::new())
    }
    fn with(data: Vec<u8>, effects: Vec<Effect>) -> Self {
        Self {
            data,
            effects,
            undo: Vec::new(),
        }
    }
    /// See [`Decision::undo`].
    fn with_undo(mut self, undo: Vec<Option<Effect>>) -> Self {
        self.undo = undo;
        self
    }
}

type Handler = fn(&Core, &Request, &PlatformView) -> Result<Reply, Cc>;

/// How a command uses the ACPI object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiUse {
    None,
    /// Reads it: Get ACPI Power State, a reading of the ACPI sensor.
    Read,
    /// Writes it, and needs the state before (to put back should the second write fail).
    Write,
}

/// What of the platform a command looks at: the edge fills only these parts of the
/// [`PlatformView`] (no D-Bus read, no copy of the sensor list, for a command that does not
/// need them). Per route; [`Core::reads`] resolves the part that depends on the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    pub acpi: AcpiUse,
    /// Only when the request's sensor number is the ACPI sensor's (Get Sensor Reading): a
    /// temperature reading does not read the ACPI object (`sdr elist` reads every sensor).
    acpi_if_acpi_sensor: bool,
    pub chassis_power: bool,
    pub sensors: bool,
}

impl Reads {
    pub const NOTHING: Self = Self {
        acpi: AcpiUse::None,
        acpi_if_acpi_sensor: false,
        chassis_power: false,
        sensors: false,
    };
    const ACPI: Self = Self {
        acpi: AcpiUse::Read,
        ..Self::NOTHING
    };
    const ACPI_WRITE: Self = Self {
        acpi: AcpiUse::Write,
        ..Self::NOTHING
    };
    const CHASSIS: Self = Self {
        chassis_power: true,
        ..Self::NOTHING
    };
    const SENSORS: Self = Self {
        sensors: true,
        ..Self::NOTHING
    };
    const SENSORS_AND_ACPI_SENSOR: Self = Self {
        sensors: true,
        acpi_if_acpi_sensor: true,
        ..Self::NOTHING
    };
}

/// One command we implement.
struct Route {
    netfn: u8,
    cmd: u8,
    /// The least privilege it needs.
    privilege: Privilege,
    reads: Reads,
    handler: Handler,
}

/// Every command we implement.
const ROUTES: &[Route] = &[
    Route {
        netfn: netfn::APP,
        cmd: cmd::app::GET_DEVICE_ID,
        privilege: Privilege::User,
        reads: Reads::NOTHING,
        handler: app::get_device_id,
    },
    Route {
        netfn: netfn::APP,
        cmd: cmd::app::GET_SELF_TEST_RESULTS,
        privilege: Privilege::User,
        reads: Reads::NOTHING,
        handler: app::get_self_test,
    },
    Route {
        netfn: netfn::APP,
        cmd: cmd::app::SET_ACPI_POWER_STATE,
        privilege: Privilege::Admin,
        reads: Reads::ACPI_WRITE,
        handler: app::set_acpi,
    },
    Route {
        netfn: netfn::APP,
        cmd: cmd::app::GET_ACPI_POWER_STATE,
        privilege: Privilege::User,
        reads: Reads::ACPI,
        handler: app::get_acpi,
    },
    Route {
        netfn: netfn::APP,
        cmd: cmd::app::GET_DEVICE_GUID,
        privilege: Privilege::User,
        reads: Reads::NOTHING,
        handler: app::get_device_guid,
    },
    Route {
        netfn: netfn::APP,
        cmd: cmd::app::GET_SYSTEM_GUID,
        privilege: Privilege::User,
        reads: Reads::NOTHING,
        handler: app::get_system_guid,
    },
    Route {
        netfn: netfn::CHASSIS,
        cmd: cmd::chassis::GET_CHASSIS_STATUS,
        privilege: Privilege::User,
        reads: Reads::CHASSIS,
        handler: chassis::status,
    },
    Route {
        netfn: netfn::CHASSIS,
        cmd: cmd::chassis::CHASSIS_CONTROL,
        privilege: Privilege::Operator,
        reads: Reads::NOTHING,
        handler: chassis::control,
    },
    Route {
        netfn: netfn::SENSOR_EVENT,
        cmd: cmd::sensor::PLATFORM_EVENT,
        privilege: Privilege::Operator,
        reads: Reads::NOTHING,
        handler: sensor::platform_event,
    },
    Route {
        netfn: netfn::SENSOR_EVENT,
        cmd: cmd::sensor::GET_SENSOR_READING,
        privilege: Privilege::User,
        reads: Reads::SENSORS_AND_ACPI_SENSOR,
        handler: sensor::get_reading,
    },
    Route {
        netfn: netfn::SENSOR_EVENT,
        cmd: cmd::sensor::GET_SENSOR_THRESHOLDS,
        privilege: Privilege::User,
        reads: Reads::SENSORS,
        handler: sensor::get_thresholds,
    },
    Route {
        netfn: netfn::STORAGE,
        cmd: cmd::storage::GET_SEL_INFO,
        privilege: Privilege::User,
        reads: Reads::NOTHING,
        handler: storage::sel_info,
    },
    Route {
        netfn: netfn::STORAGE,
        cmd: cmd::storage::GET_SEL_ALLOCATION_INFO,
        privilege: Privilege::User,
        reads: Reads::NOTHING,
        handler: storage::sel_alloc_info,
    },
    Route {
        netfn: netfn::STORAGE,
        cmd: cmd::storage::RESERVE_SEL,
        privilege: Privilege::User,
        reads: Reads::NOTHING,
        handler: storage::reserve_sel,
    },
    Route {
        netfn: netfn::STORAGE,
        cmd: cmd::storage::GET_SEL_ENTRY,
        privilege: Privilege::User,
        reads: Reads::NOTHING,
        handler: storage::get_sel_entry,
    },
    Route {
        netfn: netfn::STORAGE,
        cmd: cmd::storage::ADD_SEL_ENTRY,
        privilege: Privilege::Operator,
        reads: Reads::NOTHING,
        handler: storage::add_sel_entry,
    },
    Route {
        netfn: netfn::STORAGE,
        cmd: cmd::storage::DELETE_SEL_ENTRY,
        privilege: Privilege::Operator,
        reads: Reads::NOTHING,
        handler: storage::delete_sel_entry,
    },
    Route {
        netfn: netfn::STORAGE,
        cmd: cmd::storage::CLEAR_SEL,
        privilege: Privilege::Operator,
        reads: Reads::NOTHING,
        handler: storage::clear_sel,
    },
    Route {
        netfn: netfn::STORAGE,
        cmd: cmd::storage::GET_SEL_TIME,
        privilege: Privilege::User,
        reads: Reads::NOTHING,
        handler: storage::get_sel_time,
    },
    Route {
        netfn: netfn::STORAGE,
        cmd: cmd::storage::SET_SEL_TIME,
        privilege: Privilege::Operator,
        reads: Reads::NOTHING,
        handler: storage::set_sel_time,
    },
    Route {
        netfn: netfn::STORAGE,
        cmd: cmd::storage::GET_SDR_REPOSITORY_INFO,
        privilege: Privilege::User,
        reads: Reads::SENSORS,
        handler: storage::sdr_info,
    },
    Route {
        netfn: netfn::STORAGE,
        cmd: cmd::storage::RESERVE_SDR_REPOSITORY,
        privilege: Privilege::User,
        reads: Reads::SENSORS,
        handler: storage::reserve_sdr,
    },
    Route {
        netfn: netfn::STORAGE,
        cmd: cmd::storage::GET_SDR,
        privilege: Privilege::User,
        reads: Reads::SENSORS,
        handler: storage::get_sdr,
    },
];

fn route(netfn: u8, cmd: u8) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.netfn == netfn && r.cmd == cmd)
}

/// The least privilege a command needs, if we implement it.
pub fn required_privilege(netfn: u8, cmd: u8) -> Option<Privilege> {
    route(netfn, cmd).map(|r| r.privilege)
}

/// The privilege a request runs at: session-less channels (the host's KCS, the BMC's own
/// callers) at Admin, as upstream ipmid runs them; session-based ones at the session's
/// privilege, which the front end passes with every request (`privilege` option, upstream's
/// numbering). A session-based request without a valid one cannot be checked: `None`, refuse.
pub fn caller_privilege(kind: ChannelKind, session_privilege: Option<i64>) -> Option<Privilege> {
    match kind {
        ChannelKind::SystemInterface | ChannelKind::SessionLess => Some(Privilege::Admin),
        ChannelKind::SessionBased => session_privilege
            .and_then(|n| u8::try_from(n).ok())
            .and_then(Privilege::from_level),
    }
}

/// The IPMI server's own state: SEL, stable sensor numbers, reservations, SEL time.
#[derive(Debug, Clone, PartialEq)]
pub struct Core {
    cfg: CoreConfig,
    sel: SelStore,
    numbers: SensorNumbers,
    /// Temperature sensor paths present at the last [`Core::observe_sensors`].
    present: BTreeSet<String>,
    /// SEL time of the last change to the set of SDRs.
    sdr_changed_at: u32,
    sel_reservation: Option<u16>,
    sdr_reservation: Option<u16>,
    /// The last reservation ID handed out (SEL and SDR share the counter).
    last_reservation: u16,
    sel_time_offset: i64,
    /// The last system ACPI state seen, to record transitions only.
    last_acpi: Option<AcpiState>,
    limiter: SelLimiter,
    /// Records added over IPMI, and acpigate's own, since the start.
    ipmi_records: u64,
    own_records: u64,
}

/// The SEL a decision's effects would make, and the changes that make it: what the edge
/// writes to the disk before it commits.
#[derive(Debug, Clone, PartialEq)]
pub struct StagedSel {
    pub sel: SelStore,
    pub changes: Vec<SelChange>,
}

/// The SEL's counters since the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelCounts {
    /// Records added over IPMI (Add SEL Entry, Platform Event Message).
    pub ipmi_added: u64,
    /// Records over IPMI the rate limit refused.
    pub ipmi_refused: u64,
    /// acpigate's own records (System ACPI Power State).
    pub own_added: u64,
}

impl Core {
    pub fn new(cfg: CoreConfig, sel: SelStore, numbers: SensorNumbers) -> Self {
        let limiter = SelLimiter::new(cfg.sel_rate);
        let mut core = Self {
            cfg,
            sel,
            numbers,
            present: BTreeSet::new(),
            sdr_changed_at: sel::NO_TIMESTAMP,
            sel_reservation: None,
            sdr_reservation: None,
            last_reservation: 0,
            sel_time_offset: 0,
            last_acpi: None,
            limiter,
            ipmi_records: 0,
            own_records: 0,
        };
        let key = core.cfg.acpi_sensor_key.clone();
        core.numbers.assign([key.as_str()]);
        core
    }

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }
    pub fn sel(&self) -> &SelStore {
        &self.sel
    }
    pub fn numbers(&self) -> &SensorNumbers {
        &self.numbers
    }

    /// SEL time for BMC time `now`: what timestamps records and Get SEL Time returns.
    pub fn sel_time(&self, now: u32) -> u32 {
        (i64::from(now) + self.sel_time_offset).clamp(0, i64::from(u32::MAX)) as u32
    }

    fn next_reservation(&self) -> u16 {
        match self.last_reservation.wrapping_add(1) {
            0 => 1,
            n => n,
        }
    }

    /// What of the platform `req` looks at ([`Reads`]); nothing for a command we do not
    /// implement.
    pub fn reads(&self, req: &Request) -> Reads {
        let Some(route) = route(req.netfn, req.cmd) else {
            return Reads::NOTHING;
        };
        let mut reads = route.reads;
        if reads.acpi_if_acpi_sensor && req.data.first() == Some(&self.acpi_sensor_number()) {
            reads.acpi = AcpiUse::Read;
        }
        reads
    }

    /// Decide a request. Never mutates; a rejection carries no effects.
    pub fn decide(&self, req: &Request, view: &PlatformView) -> Decision {
        let Some(route) = route(req.netfn, req.cmd) else {
            return Decision::reject(Cc::InvalidCommand);
        };
        if req.privilege < route.privilege {
            return Decision::reject(Cc::InsufficientPrivilege);
        }
        let reply = match (route.handler)(self, req, view) {
            Ok(r) => r,
            Err(cc) => return Decision::reject(cc),
        };
        // A record over the channel's limit is refused with 0xC0, "node busy: command
        // processing resources are temporarily unavailable" (IPMI 2.0 table 5-2): the one
        // completion code that tells the sender to try again later, which is what a rate
        // limit means. Nothing of the command happens.
        for e in &reply.effects {
            if let Effect::SelAdd { quota: Some(q), .. } = e
                && !self.limiter.admits(q.channel, q.at)
            {
                return Decision {
                    throttled: Some(q.channel),
                    ..Decision::reject(Cc::NodeBusy)
                };
            }
        }
        Decision {
            cc: Cc::Success.code(),
            data: reply.data,
            effects: reply.effects,
            undo: reply.undo,
            throttled: None,
        }
    }

    /// Count a record the rate limit refused ([`Decision::throttled`]).
    pub fn throttled(&mut self, channel: u8) {
        self.limiter.refused(channel);
    }

    /// Refusals to log, at most one report every 10 s of the monotonic clock.
    pub fn refusal_report(&mut self, now: std::time::Instant) -> Option<RefusalReport> {
        self.limiter.report(now)
    }

    pub fn sel_counts(&self) -> SelCounts {
        SelCounts {
            ipmi_added: self.ipmi_records,
            ipmi_refused: self.limiter.refused_total(),
            own_added: self.own_records,
        }
    }

    pub fn sel_rate(&self) -> SelRateLimit {
        self.limiter.limit()
    }

    /// The SEL after the SEL effects among `effects`, and the changes that lead there;
    /// `None` if they change nothing.
    pub fn stage_sel(&self, effects: &[Effect]) -> Option<StagedSel> {
        let mut sel = self.sel.clone();
        let mut changes = Vec::new();
        for e in effects {
            match e {
                Effect::SelAdd { record, at, .. } => changes.push(sel.add_change(*record, *at)),
                Effect::SelDelete(id) if sel.delete(*id) => {
                    changes.push(SelChange::Deleted(*id));
                }
                Effect::SelClear { at } => {
                    sel.clear(*at);
                    changes.push(SelChange::Cleared { at: *at });
                }
                _ => {}
            }
        }
        (!changes.is_empty()).then_some(StagedSel { sel, changes })
    }

    /// Apply the internal effects of a decision whose external effects succeeded.
    pub fn commit(&mut self, effects: &[Effect]) {
        for e in effects {
            match e {
                Effect::SelAdd { record, at, quota } => {
                    self.sel.add(*record, *at);
                    if let Some(q) = quota {
                        self.limiter.take(q.channel, q.at);
                        self.ipmi_records += 1;
                    }
                }
                Effect::SelDelete(id) => {
                    self.sel.delete(*id);
                    self.sel_reservation = None;
                }
                Effect::SelClear { at } => {
                    self.sel.clear(*at);
                    self.sel_reservation = None;
                }
                Effect::SelReserve(id) => {
                    self.sel_reservation = Some(*id);
                    self.last_reservation = *id;
                }
                Effect::SdrReserve(id) => {
                    self.sdr_reservation = Some(*id);
                    self.last_reservation = *id;
                }
                Effect::SelTimeOffset(off) => self.sel_time_offset = *off,
                Effect::SetSysAcpi(_)
                | Effect::SetDevAcpi(_)
                | Effect::Chassis(_)
                | Effect::Host(_) => {}
            }
        }
    }

    /// The temperature sensors on the bus now. Gives new ones numbers; a change of the set
    /// cancels an SDR reservation (the repository changed). Returns whether the number map
    /// changed, so the edge persists it.
    pub fn observe_sensors<'a>(
        &mut self,
        paths: impl IntoIterator<Item = &'a str>,
        now: u32,
    ) -> bool {
        let present: BTreeSet<String> = paths.into_iter().map(str::to_owned).collect();
        let changed = self.numbers.assign(present.iter().map(String::as_str));
        if present != self.present {
            self.present = present;
            self.sdr_reservation = None;
            self.sdr_changed_at = self.sel_time(now);
        }
        changed
    }

    /// The ACPI system state as first read at start: no record, just the baseline.
    pub fn acpi_baseline(&mut self, state: AcpiState) {
        self.last_acpi = Some(state);
    }

    /// acpi-state-daemon published a system ACPI state. A change from the last one seen is
    /// recorded as a "System ACPI Power State" event; returns whether the SEL changed.
    pub fn acpi_observed(&mut self, state: AcpiState, now: u32) -> bool {
        self.acpi_observed_staged(state, now).is_some()
    }

    /// [`Core::acpi_observed`], returning the SEL with the record and the change that adds
    /// it, for the edge to write. Our own records are never rate limited: a flooding host
    /// must not hide the power state history.
    pub fn acpi_observed_staged(&mut self, state: AcpiState, now: u32) -> Option<StagedSel> {
        if self.last_acpi == Some(state) {
            return None;
        }
        self.last_acpi = Some(state);
        let record = self.acpi_record(state, now);
        let change = self.sel.add_change(record, self.sel_time(now));
        self.own_records += 1;
        Some(StagedSel {
            sel: self.sel.clone(),
            changes: vec![change],
        })
    }

    /// The SEL record for entering `state` at BMC time `now`.
    pub fn acpi_record(&self, state: AcpiState, now: u32) -> Record {
        SystemEvent {
            timestamp: self.sel_time(now),
            generator_id: u16::from(sdr::BMC_SLAVE_ADDR),
            sensor_type: sdr::SENSOR_TYPE_SYSTEM_ACPI_POWER_STATE,
            sensor_number: self.acpi_sensor_number(),
            event_dir_type: sdr::EVENT_TYPE_SENSOR_SPECIFIC,
            // Bytes 2 and 3 unspecified (0xFF), as data 1 bits 7:4 = 0 say.
            data: state.sel_event_data(),
        }
        .to_record()
    }

    pub fn acpi_sensor_number(&self) -> u8 {
        // The key is assigned in new(), and assign() only reclaims absent sensors' numbers,
        // which the ACPI key never is; 0xFF ("none") is a safe answer should that change.
        self.numbers
            .number(&self.cfg.acpi_sensor_key)
            .unwrap_or(0xFF)
    }

    /// The SDR repository: (record ID, bytes), ordered by ID.
    pub fn sdrs(&self, view: &PlatformView) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        if let Some(n) = self.numbers.number(&self.cfg.acpi_sensor_key) {
            out.push((
                sdr::record_id_for(n),
                sdr::compact_acpi_record(n, self.cfg.acpi_entity, &self.cfg.acpi_sensor_name),
            ));
        }
        for s in &view.sensors {
            if let Some(n) = self.numbers.number(&s.path) {
                out.push((
                    sdr::record_id_for(n),
                    sdr::full_temperature_record(n, self.cfg.temperature_entity, s),
                ));
            }
        }
        out.sort_by_key(|(id, _)| *id);
        out
    }
}
