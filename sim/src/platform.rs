//! Simulated platform services, shaped like the upstream daemons they stand for:
//! chassis power and host state as x86-power-control publishes them, a host object with a
//! writable Boot.Progress as phosphor-state-manager has, POST codes as phosphor-host-postd
//! publishes them, and a systemd manager that records `StartUnit` and applies the targets'
//! `Conflicts=` from `units/`.
//!
//! These are acpi-state-daemon's inputs and outputs on a real BMC; a test sets power, host
//! state and POST codes as the hardware would move them, and reads back what the daemon
//! started and wrote. The flavours and failure modes ([`HostFlavour`], [`Answer`]) are the
//! upstream variants and hangs the daemon has to live with.
//!
//! Each service has its own connection, so a test can make it vanish and come back. The
//! machine tier's `machine-platform` serves [`ChassisIface`] and [`BootProgressIface`] on a
//! VM's system bus.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use openbmc_vocab::boot::ProgressStage;
use openbmc_vocab::names::{bus, path};
use openbmc_vocab::state::{
    ChassisPowerState, ChassisTransition, HostState, HostTransition, OsStatus,
};
use zbus::object_server::{InterfaceRef, SignalEmitter};
use zbus::{Connection, OwnedObjectPath, interface};

use crate::BusAddress;

pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------- chassis

/// `xyz.openbmc_project.State.Chassis` at `/xyz/openbmc_project/state/chassis0`.
pub struct ChassisIface {
    power: ChassisPowerState,
    requested: ChassisTransition,
    last_change_ms: u64,
}

#[interface(name = "xyz.openbmc_project.State.Chassis")]
impl ChassisIface {
    #[zbus(property)]
    fn current_power_state(&self) -> ChassisPowerState {
        self.power
    }
    #[zbus(property)]
    fn requested_power_transition(&self) -> ChassisTransition {
        self.requested
    }
    /// Like x86-power-control once power-good follows: a request moves the power state at
    /// once; `PowerCycle` goes off and on again, each step signalled.
    #[zbus(property)]
    async fn set_requested_power_transition(
        &mut self,
        t: ChassisTransition,
        #[zbus(signal_emitter)] e: SignalEmitter<'_>,
    ) -> zbus::Result<()> {
        self.requested = t;
        let steps: &[ChassisPowerState] = match t {
            ChassisTransition::Off => &[ChassisPowerState::Off],
            ChassisTransition::On => &[ChassisPowerState::On],
            ChassisTransition::PowerCycle => &[ChassisPowerState::Off, ChassisPowerState::On],
        };
        for &to in steps {
            if to != self.power {
                self.power = to;
                self.last_change_ms = epoch_ms();
                self.current_power_state_changed(&e).await?;
                self.last_state_change_time_changed(&e).await?;
            }
        }
        Ok(())
    }
    #[zbus(property)]
    fn last_state_change_time(&self) -> u64 {
        self.last_change_ms
    }
}

impl ChassisIface {
    /// At rest in `power` since `last_change_ms` (ms since the epoch).
    pub fn new(power: ChassisPowerState, last_change_ms: u64) -> Self {
        Self {
            power,
            requested: if power.is_on() {
                ChassisTransition::On
            } else {
                ChassisTransition::Off
            },
            last_change_ms,
        }
    }
}

/// The simulated chassis power service.
pub struct Chassis {
    conn: Option<Connection>,
    power: ChassisPowerState,
    last_change_ms: u64,
}

impl Chassis {
    pub async fn start(bus: &impl BusAddress, power: ChassisPowerState) -> Result<Self> {
        let mut c = Self {
            conn: None,
            power,
            last_change_ms: epoch_ms(),
        };
        c.appear(bus).await?;
        Ok(c)
    }

    /// (Re)claim the name and serve the object.
    pub async fn appear(&mut self, bus: &impl BusAddress) -> Result<()> {
        let conn = zbus::connection::Builder::address(bus.address())
            .serve_at(
                path::CHASSIS0,
                ChassisIface::new(self.power, self.last_change_ms),
            )
            .name(bus::STATE_CHASSIS)
            .build()
            .await
            .context("chassis service")?;
        self.conn = Some(conn);
        Ok(())
    }

    /// Leave the bus (the service crashed or is not installed).
    pub async fn vanish(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = c.close().await;
        }
    }

    async fn iface(&self) -> Result<InterfaceRef<ChassisIface>> {
        let conn = self.conn.as_ref().context("chassis is not on the bus")?;
        Ok(conn
            .object_server()
            .interface::<_, ChassisIface>(path::CHASSIS0)
            .await?)
    }

    /// Change the power state (a button press, a power cut, a PSU coming up).
    pub async fn set_power(&mut self, p: ChassisPowerState) -> Result<()> {
        self.power = p;
        self.last_change_ms = epoch_ms();
        if self.conn.is_none() {
            return Ok(());
        }
        let r = self.iface().await?;
        let mut i = r.get_mut().await;
        i.power = p;
        i.last_change_ms = self.last_change_ms;
        i.last_state_change_time_changed(r.signal_emitter()).await?;
        i.current_power_state_changed(r.signal_emitter()).await?;
        Ok(())
    }

    pub fn power(&self) -> ChassisPowerState {
        self.power
    }
}

// ---------------------------------------------------------------- host

/// `xyz.openbmc_project.State.Host`.
pub struct HostIface {
    state: HostState,
    requested: HostTransition,
}

#[interface(name = "xyz.openbmc_project.State.Host")]
impl HostIface {
    #[zbus(property)]
    fn current_host_state(&self) -> HostState {
        self.state
    }
    #[zbus(property)]
    fn requested_host_transition(&self) -> HostTransition {
        self.requested
    }
    #[zbus(property)]
    fn set_requested_host_transition(&mut self, t: HostTransition) {
        self.requested = t;
    }
}

/// `xyz.openbmc_project.State.Boot.Progress`, writable as on phosphor-state-manager, which
/// stamps `BootProgressLastUpdate` on every write and records each write here for tests.
pub struct BootProgressIface {
    progress: ProgressStage,
    last_update: u64,
    writes: Arc<Mutex<Vec<ProgressStage>>>,
    /// A state manager that has hung: a write of `BootProgress` is never answered.
    hung: bool,
}

impl BootProgressIface {
    /// `Unspecified`, never written; writes are recorded in `writes`.
    pub fn new(writes: Arc<Mutex<Vec<ProgressStage>>>) -> Self {
        Self {
            progress: ProgressStage::Unspecified,
            last_update: 0,
            writes,
            hung: false,
        }
    }
}

#[interface(name = "xyz.openbmc_project.State.Boot.Progress")]
impl BootProgressIface {
    #[zbus(property)]
    fn boot_progress(&self) -> ProgressStage {
        self.progress
    }
    #[zbus(property)]
    async fn set_boot_progress(&mut self, p: ProgressStage) {
        if self.hung {
            std::future::pending::<()>().await;
        }
        self.progress = p;
        self.last_update = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        if let Ok(mut w) = self.writes.lock() {
            w.push(p);
        }
    }
    #[zbus(property)]
    fn boot_progress_last_update(&self) -> u64 {
        self.last_update
    }
    #[zbus(property)]
    fn set_boot_progress_last_update(&mut self, t: u64) {
        self.last_update = t;
    }
}

/// `xyz.openbmc_project.State.OperatingSystem.Status` as x86-power-control registers it:
/// read-only, driven by the POST_COMPLETE GPIO (942e92b4, `src/power_control.cpp`). A `Set`
/// is refused with `org.freedesktop.DBus.Error.PropertyReadOnly`, as sd-bus refuses it.
pub struct OsIface {
    state: OsStatus,
}

#[interface(name = "xyz.openbmc_project.State.OperatingSystem.Status")]
impl OsIface {
    #[zbus(property)]
    fn operating_system_state(&self) -> OsStatus {
        self.state
    }
    /// zbus answers a `Set` of a property without a setter with `UnknownProperty`; sd-bus, for
    /// a property registered read-only, with `PropertyReadOnly`. This setter gives sd-bus's
    /// answer (at the cost of a "readwrite" in the introspection, which no client here reads).
    #[zbus(property)]
    fn set_operating_system_state(&mut self, _s: OsStatus) -> zbus::fdo::Result<()> {
        Err(zbus::fdo::Error::PropertyReadOnly(
            "OperatingSystemState is read-only".into(),
        ))
    }
}

/// `xyz.openbmc_project.State.OperatingSystem.Status` as phosphor-state-manager serves it on
/// the host object (a518bd39, `host_state_manager.{hpp,cpp}`): writable by anyone, announced
/// on change, `Inactive` until someone writes it and again when the host-off target completes.
/// Every write is recorded for tests.
pub struct OsWritableIface {
    state: OsStatus,
    writes: Arc<Mutex<Vec<OsStatus>>>,
}

impl OsWritableIface {
    /// `Inactive`, as phosphor-state-manager starts it; every write is pushed to `writes`.
    pub fn new(writes: Arc<Mutex<Vec<OsStatus>>>) -> Self {
        Self {
            state: OsStatus::Inactive,
            writes,
        }
    }
}

#[interface(name = "xyz.openbmc_project.State.OperatingSystem.Status")]
impl OsWritableIface {
    #[zbus(property)]
    fn operating_system_state(&self) -> OsStatus {
        self.state
    }
    #[zbus(property)]
    fn set_operating_system_state(&mut self, s: OsStatus) {
        self.state = s;
        if let Ok(mut w) = self.writes.lock() {
            w.push(s);
        }
    }
}

/// x86-power-control's fourth name on its host connection (not one acpigate uses).
const X86_OPERATING_SYSTEM0: &str = "xyz.openbmc_project.State.OperatingSystem0";

/// Which upstream host daemon to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostFlavour {
    /// phosphor-state-manager: State.Host + Boot.Progress + a writable OperatingSystem.Status
    /// under `xyz.openbmc_project.State.Host` and `…State.Host0`.
    StateManager,
    /// x86-power-control: State.Host and a read-only OperatingSystem.Status on one connection
    /// owning `…State.Host`, `…State.Host0`, `…State.OperatingSystem` and
    /// `…State.OperatingSystem0`; no Boot.Progress.
    X86PowerControl,
    /// phosphor-state-manager hung in the middle of a write: a `BootProgress` write is never
    /// answered, nor is anything on Boot.Progress after it.
    StateManagerHung,
    /// A host service under phosphor-state-manager's names whose `OperatingSystemState` is
    /// read-only (a build or fork that registers it so): a `Set` is refused with
    /// `PropertyReadOnly`, and nothing owns `…State.OperatingSystem`.
    StateManagerReadOnlyOs,
}

impl HostFlavour {
    /// `OperatingSystemState` is served read-only.
    fn os_read_only(self) -> bool {
        matches!(self, Self::X86PowerControl | Self::StateManagerReadOnlyOs)
    }
}

/// The simulated host-state service.
pub struct Host {
    conn: Connection,
    writes: Arc<Mutex<Vec<ProgressStage>>>,
    os_writes: Arc<Mutex<Vec<OsStatus>>>,
    flavour: HostFlavour,
}

impl Host {
    pub async fn start(
        bus: &impl BusAddress,
        flavour: HostFlavour,
        state: HostState,
    ) -> Result<Self> {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let os_writes = Arc::new(Mutex::new(Vec::new()));
        let mut b = zbus::connection::Builder::address(bus.address())
            .serve_at(
                path::HOST0,
                HostIface {
                    state,
                    requested: HostTransition::Off,
                },
            )
            .name(bus::STATE_HOST)
            .name(bus::STATE_HOST0);
        match flavour {
            HostFlavour::StateManager | HostFlavour::StateManagerHung => {
                let mut bp = BootProgressIface::new(writes.clone());
                bp.hung = flavour == HostFlavour::StateManagerHung;
                b = b
                    .serve_at(path::HOST0, bp)
                    .serve_at(path::HOST0, OsWritableIface::new(os_writes.clone()));
            }
            HostFlavour::StateManagerReadOnlyOs => {
                b = b
                    .serve_at(path::HOST0, BootProgressIface::new(writes.clone()))
                    .serve_at(
                        path::HOST0,
                        OsIface {
                            state: OsStatus::Inactive,
                        },
                    );
            }
            HostFlavour::X86PowerControl => {
                b = b
                    .serve_at(
                        path::HOST0,
                        OsIface {
                            state: OsStatus::Inactive,
                        },
                    )
                    .name(bus::STATE_OPERATING_SYSTEM)
                    .name(X86_OPERATING_SYSTEM0);
            }
        }
        let conn = b.build().await.context("host service")?;
        Ok(Self {
            conn,
            writes,
            os_writes,
            flavour,
        })
    }

    pub fn flavour(&self) -> HostFlavour {
        self.flavour
    }

    /// Every BootProgress write so far, in order.
    pub fn boot_progress_writes(&self) -> Vec<ProgressStage> {
        self.writes.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Every `OperatingSystemState` write a client made (phosphor-state-manager flavours).
    pub fn os_status_writes(&self) -> Vec<OsStatus> {
        self.os_writes.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// `OperatingSystemState` as it is now.
    pub async fn os_status(&self) -> Result<OsStatus> {
        let server = self.conn.object_server();
        Ok(match self.flavour {
            f if f.os_read_only() => {
                server
                    .interface::<_, OsIface>(path::HOST0)
                    .await?
                    .get()
                    .await
                    .state
            }
            _ => {
                server
                    .interface::<_, OsWritableIface>(path::HOST0)
                    .await?
                    .get()
                    .await
                    .state
            }
        })
    }

    /// The host state moves; on phosphor-state-manager, reaching `Off` (the host-off target
    /// completing) also sets `OperatingSystemState` to `Inactive`, as upstream does.
    pub async fn set_state(&self, s: HostState) -> Result<()> {
        let r = self
            .conn
            .object_server()
            .interface::<_, HostIface>(path::HOST0)
            .await?;
        let mut i = r.get_mut().await;
        i.state = s;
        i.current_host_state_changed(r.signal_emitter()).await?;
        drop(i);
        if s == HostState::Off && self.flavour != HostFlavour::X86PowerControl {
            self.set_os_status(OsStatus::Inactive).await?;
        }
        Ok(())
    }

    /// Assert (`Standby`) or deassert (`Inactive`) POST_COMPLETE, as x86-power-control does.
    pub async fn set_post_complete(&self, complete: bool) -> Result<()> {
        self.set_os_status(if complete {
            OsStatus::Standby
        } else {
            OsStatus::Inactive
        })
        .await
    }

    /// The service itself sets `OperatingSystemState` (announced on change).
    async fn set_os_status(&self, s: OsStatus) -> Result<()> {
        let server = self.conn.object_server();
        if self.flavour.os_read_only() {
            let r = server.interface::<_, OsIface>(path::HOST0).await?;
            let mut i = r.get_mut().await;
            if i.state != s {
                i.state = s;
                i.operating_system_state_changed(r.signal_emitter()).await?;
            }
        } else {
            let r = server.interface::<_, OsWritableIface>(path::HOST0).await?;
            let mut i = r.get_mut().await;
            if i.state != s {
                i.state = s;
                i.operating_system_state_changed(r.signal_emitter()).await?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- POST codes

/// `xyz.openbmc_project.State.Boot.Raw`.
pub struct RawIface {
    value: (Vec<u8>, Vec<u8>),
    /// How often a client read `Value` (Get or GetAll).
    reads: Arc<AtomicU64>,
}

#[interface(name = "xyz.openbmc_project.State.Boot.Raw")]
impl RawIface {
    #[zbus(property)]
    fn value(&self) -> (Vec<u8>, Vec<u8>) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.value.clone()
    }
}

/// phosphor-host-postd's snooped POST codes.
pub struct PostCodes {
    conn: Connection,
    reads: Arc<AtomicU64>,
}

impl PostCodes {
    pub async fn start(bus: &impl BusAddress) -> Result<Self> {
        let reads = Arc::new(AtomicU64::new(0));
        let conn = zbus::connection::Builder::address(bus.address())
            .serve_at(
                path::BOOT_RAW0,
                RawIface {
                    value: (vec![0], vec![]),
                    reads: reads.clone(),
                },
            )
            .name(bus::STATE_BOOT_RAW)
            .build()
            .await
            .context("postd service")?;
        Ok(Self { conn, reads })
    }

    /// How often a client has read the current code.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// The host wrote `code` and postd exits right after announcing it (a crash or a stop
    /// racing the snoop): the announcement is its last message on the bus.
    pub async fn post_and_leave(self, code: u8) -> Result<()> {
        self.post(code).await?;
        self.conn.close().await?;
        Ok(())
    }

    /// The host wrote `code` to port 80.
    pub async fn post(&self, code: u8) -> Result<()> {
        let r = self
            .conn
            .object_server()
            .interface::<_, RawIface>(path::BOOT_RAW0)
            .await?;
        let mut i = r.get_mut().await;
        i.value = (vec![code], vec![]);
        i.value_changed(r.signal_emitter()).await?;
        Ok(())
    }
}

// ---------------------------------------------------------------- systemd

/// What the simulated systemd knows: units' `Conflicts=` and the active set.
#[derive(Debug, Default)]
pub struct UnitGraph {
    conflicts: BTreeMap<String, BTreeSet<String>>,
    active: BTreeSet<String>,
    /// `StartUnit` calls as they arrived; `started` holds those carried out.
    requested: Vec<String>,
    started: Vec<String>,
    started_at: Vec<(std::time::Instant, String)>,
}

impl UnitGraph {
    /// Read `Conflicts=` of every `*.target` in `dir` (symmetric, as systemd applies it).
    pub fn from_units_dir(dir: &Path) -> Result<Self> {
        let mut g = Self::default();
        for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let p = e?.path();
            let Some(name) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            if !name.ends_with(".target") {
                continue;
            }
            for line in std::fs::read_to_string(&p)?.lines() {
                if let Some(rest) = line.trim().strip_prefix("Conflicts=") {
                    for other in rest.split_whitespace() {
                        g.conflicts
                            .entry(name.clone())
                            .or_default()
                            .insert(other.to_owned());
                        g.conflicts
                            .entry(other.to_owned())
                            .or_default()
                            .insert(name.clone());
                    }
                }
            }
        }
        Ok(g)
    }

    fn start(&mut self, unit: &str) {
        self.started.push(unit.to_owned());
        self.started_at
            .push((std::time::Instant::now(), unit.to_owned()));
        if let Some(cs) = self.conflicts.get(unit) {
            for c in cs {
                self.active.remove(c);
            }
        }
        self.active.insert(unit.to_owned());
    }
}

/// How the simulated systemd answers `StartUnit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    AtOnce,
    /// Busy: each call is answered (and its unit started) this long after systemd took it
    /// up; calls are taken up one at a time, in the order they came, as systemd does.
    After(Duration),
    /// Hung: no call is ever answered, none is started.
    Never,
}

/// `org.freedesktop.systemd1.Manager`, recording calls.
pub struct ManagerIface {
    graph: Arc<Mutex<UnitGraph>>,
    jobs: AtomicU32,
    answer: Answer,
    /// systemd's job queue: calls are taken up one at a time, first come first served (tokio's
    /// mutex is fair). A call is recorded as requested on arrival, before it queues.
    queue: tokio::sync::Mutex<()>,
}

#[interface(name = "org.freedesktop.systemd1.Manager")]
impl ManagerIface {
    async fn start_unit(&self, name: String, mode: String) -> zbus::fdo::Result<OwnedObjectPath> {
        if mode != "replace" {
            return Err(zbus::fdo::Error::InvalidArgs(format!(
                "unexpected mode {mode}"
            )));
        }
        if let Ok(mut g) = self.graph.lock() {
            g.requested.push(name.clone());
        }
        let _turn = self.queue.lock().await;
        match self.answer {
            Answer::AtOnce => {}
            Answer::After(d) => tokio::time::sleep(d).await,
            Answer::Never => std::future::pending::<()>().await,
        }
        if let Ok(mut g) = self.graph.lock() {
            g.start(&name);
        }
        let job = self.jobs.fetch_add(1, Ordering::Relaxed) + 1;
        OwnedObjectPath::try_from(format!("/org/freedesktop/systemd1/job/{job}"))
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
    }
}

/// The simulated systemd manager.
pub struct Systemd {
    _conn: Connection,
    graph: Arc<Mutex<UnitGraph>>,
}

impl Systemd {
    pub async fn start(bus: &impl BusAddress) -> Result<Self> {
        Self::start_answering(bus, Answer::AtOnce).await
    }

    /// A systemd that answers `StartUnit` as `answer` says.
    pub async fn start_answering(bus: &impl BusAddress, answer: Answer) -> Result<Self> {
        let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../units");
        let graph = Arc::new(Mutex::new(UnitGraph::from_units_dir(&units)?));
        let conn = zbus::connection::Builder::address(bus.address())
            .serve_at(
                path::SYSTEMD,
                ManagerIface {
                    graph: graph.clone(),
                    jobs: AtomicU32::new(0),
                    answer,
                    queue: tokio::sync::Mutex::new(()),
                },
            )
            .name(bus::SYSTEMD)
            .build()
            .await
            .context("systemd service")?;
        Ok(Self { _conn: conn, graph })
    }

    /// Every `StartUnit` name as it arrived (answered or not), in order.
    pub fn requested(&self) -> Vec<String> {
        self.graph
            .lock()
            .map(|g| g.requested.clone())
            .unwrap_or_default()
    }

    /// Every `StartUnit` name, in order.
    pub fn started(&self) -> Vec<String> {
        self.graph
            .lock()
            .map(|g| g.started.clone())
            .unwrap_or_default()
    }

    /// Every `StartUnit` with the time it arrived.
    pub fn started_at(&self) -> Vec<(std::time::Instant, String)> {
        self.graph
            .lock()
            .map(|g| g.started_at.clone())
            .unwrap_or_default()
    }

    /// The active units after applying `Conflicts=`.
    pub fn active(&self) -> BTreeSet<String> {
        self.graph
            .lock()
            .map(|g| g.active.clone())
            .unwrap_or_default()
    }
}
