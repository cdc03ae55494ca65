//! The whole simulated server around the real daemons: a private bus, simulated systemd,
//! chassis power, host state with Boot.Progress, POST codes, the shared DIMM SMBus with the
//! host firmware as second master, and phosphor-pid-control (all from `acpigate-sim`) — plus
//! the real `acpi-state-daemon` and `sensor-gate` (and, on request, `ipmi-handlers`) as
//! systemd would run them.
//!
//! The world is the [`Board`] the simulated host firmware runs on: it carries the firmware's
//! ACPI states to the real daemons (over KCS, or written as ipmid writes them), and keeps
//! the record. Everything that happens is on one timeline ([`Mark`]s plus the SMBus transfer
//! log), which the soak checks and the demo draws; the windows in which the host was in S0
//! are the truth the BMC's transfers are checked against.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use acpigate_sim::fans::{FanSim, ZoneConfig};
use acpigate_sim::host_firmware::{self, Board, BootReport, HostEvent, Timing};
use acpigate_sim::platform::{Answer, Chassis, Host, HostFlavour, PostCodes, Systemd};
use acpigate_sim::smbus::frudevice::FruDeviceProbe;
use acpigate_sim::smbus::{Master, SimServer, SimSmbus, Transfer};
use anyhow::{Context, Result};
use daemon_kit::watch::{self, Target, Update};
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::acpigate::HostPhase;
use openbmc_vocab::ipmi::{cmd, netfn};
use openbmc_vocab::names::{bus, iface, path};
use openbmc_vocab::state::{ChassisPowerState, HostState};

use crate::acpi_client::AcpiClient;
use crate::harness::{Daemon, PrivateBus, acpi_state_config, ipmi_handlers_config};
use crate::ipmi_client::IpmiCaller;

/// How the simulated server is built.
#[derive(Debug, Clone)]
pub struct WorldOptions {
    /// DIMMs fitted (a TSOD at 0x18+i and an SPD EEPROM at 0x50+i each).
    pub dimms: u8,
    /// sensor-gate's gate; `false` is the control experiment that shows the bug.
    pub gate: bool,
    /// sensor-gate settle delay after S0, ms.
    pub settle_ms: u64,
    /// sensor-gate poll period, ms.
    pub poll_ms: u64,
    /// pid-control `InputUnavailableAsFailed` for the DIMM zone.
    pub unavailable_as_failed: bool,
    /// Also run the real ipmi-handlers, so the host can report its state over IPMI (KCS).
    pub ipmi: bool,
    /// How the simulated systemd answers `StartUnit`.
    pub systemd: Answer,
    /// entity-manager's FruDevice on the BMC (`None`: not installed), probing the DIMM bus at
    /// every power-on unless its blocklist holds the bus as a whole.
    pub frudevice: Option<FruDeviceProbe>,
}

impl Default for WorldOptions {
    fn default() -> Self {
        Self {
            dimms: 4,
            gate: true,
            settle_ms: 20,
            poll_ms: 10,
            unavailable_as_failed: false,
            ipmi: false,
            systemd: Answer::AtOnce,
            frudevice: None,
        }
    }
}

/// Something that happened, for the checks and the picture.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    /// acpi-state-daemon published this phase.
    Phase(HostPhase),
    /// sensor-gate opened (`true`) or closed its gate.
    Gate(bool),
    /// The simulated host did something (power on, S2, S0, reset, …).
    Host(String),
    /// A daemon was killed and restarted, or the bus restarted.
    Fault(String),
}

/// The fixed PWM sensor-gate writes while it holds the fans.
pub const HOLD_PWM: u64 = 153;
/// The PWM objects of the simulated fan zone.
pub const PWMS: [&str; 2] = ["Pwm_1", "Pwm_2"];

/// A window in which the BMC may use the DIMM bus: from the moment the host sent S0 (plus
/// the settle delay) to the moment the host left S0 (plus the allowed close latency).
#[derive(Debug, Clone, Copy)]
pub struct S0Window {
    pub from: Instant,
    pub to: Option<Instant>,
}

pub struct World {
    pub opts: WorldOptions,
    pub bus: PrivateBus,
    pub systemd: Systemd,
    pub chassis: Chassis,
    pub host: Host,
    pub postd: PostCodes,
    pub smbus: SimSmbus,
    _smbus_server: SimServer,
    pub fans: FanSim,
    pub acpi_daemon: Daemon,
    pub gate_daemon: Daemon,
    pub acpi: AcpiClient,
    /// ipmi-handlers, when `WorldOptions::ipmi`.
    pub ipmi_daemon: Option<Daemon>,
    /// The host's KCS channel into ipmi-handlers (owns `…Ipmi.Channel.ipmi_kcs3`).
    pub kcs: Option<IpmiCaller>,
    ipmi_args: Vec<String>,
    acpi_args: Vec<String>,
    gate_args: Vec<String>,
    pub t0: Instant,
    marks: Arc<Mutex<Vec<(Instant, Mark)>>>,
    pub windows: Vec<S0Window>,
    /// Fail-safe entries counted by fan controllers replaced by a bus restart.
    failsafe_before: u64,
    failsafe_log_before: Vec<(Instant, String)>,
    /// When FruDevice starts probing after the next power-on ([`World::set_frudevice_delay`]).
    frudevice_delay: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// DIMM sensor object name for slot `i`.
pub fn sensor_name(i: u8) -> String {
    format!("DIMM_{}_Temp", (b'A' + i) as char)
}

impl World {
    /// Build and start everything with the host off.
    pub async fn start(opts: WorldOptions) -> Result<Self> {
        let bus = PrivateBus::start()?;
        let systemd = Systemd::start_answering(&bus, opts.systemd).await?;
        let chassis = Chassis::start(&bus, ChassisPowerState::Off).await?;
        let host = Host::start(&bus, HostFlavour::StateManager, HostState::Off).await?;
        let postd = PostCodes::start(&bus).await?;
        let smbus = SimSmbus::ddr4_board(opts.dimms, 38.0);
        smbus.set_powered(false);
        let sock = bus.dir().join("smbus.sock");
        let server = smbus.serve(&sock)?;
        let names: Vec<String> = (0..opts.dimms).map(sensor_name).collect();
        let fans = FanSim::start(
            &bus,
            vec![ZoneConfig {
                zone: 0,
                inputs: names.clone(),
                unavailable_as_failed: opts.unavailable_as_failed,
            }],
            &PWMS,
        )
        .await?;

        let acpi_cfg = acpi_state_config(&bus, "acpi-state-daemon.json", "")?;
        let sensors: Vec<String> = (0..opts.dimms)
            .map(|i| {
                format!(
                    r#"{{ "name": "{}", "bus": "dimm", "type": "jc42", "address": "{:#x}", "min": 0, "max": 125,
       "thresholds": {{ "warning_high": 85, "critical_high": 95 }} }}"#,
                    sensor_name(i),
                    0x18 + i
                )
            })
            .collect();
        let gate_cfg = bus.write_config(
            "sensor-gate.json",
            &format!(
                r#"{{
  "gate": {{ "enabled": {}, "settle_ms": {} }},
  "poll_ms": {},
  "buses": [ {{ "name": "dimm", "backend": "sim:{}" }} ],
  "sensors": [ {} ],
  "fans": {{ "hold_phases": ["FirmwareInit"], "retry_ms": 200,
            "zones": [ {{ "zone": 0, "pwms": [ {{ "name": "{}", "target": {HOLD_PWM} }}, {{ "name": "{}", "target": {HOLD_PWM} }} ] }} ] }}
}}"#,
                opts.gate,
                opts.settle_ms,
                opts.poll_ms,
                sock.display(),
                sensors.join(",\n    "),
                PWMS[0],
                PWMS[1]
            ),
        )?;
        let acpi_args = vec![
            "--config".to_owned(),
            acpi_cfg.to_string_lossy().into_owned(),
        ];
        let gate_args = vec![
            "--config".to_owned(),
            gate_cfg.to_string_lossy().into_owned(),
        ];
        let acpi_daemon = Daemon::spawn(&bus, "acpi-state-daemon", &strs(&acpi_args))?;
        let gate_daemon = Daemon::spawn(&bus, "sensor-gate", &strs(&gate_args))?;
        let ipmi_cfg = ipmi_handlers_config(
            &bus,
            "ipmi-handlers.json",
            "ipmi-state",
            ", \"sel_capacity\": 256",
        )?;
        let ipmi_args = vec![
            "--config".to_owned(),
            ipmi_cfg.to_string_lossy().into_owned(),
        ];
        let (ipmi_daemon, kcs) = if opts.ipmi {
            let d = Daemon::spawn(&bus, "ipmi-handlers", &strs(&ipmi_args))?;
            (
                Some(d),
                Some(IpmiCaller::new(&bus, Some("ipmi_kcs3")).await?),
            )
        } else {
            (None, None)
        };
        let acpi = AcpiClient::new(bus.connect().await?);
        let marks = Arc::new(Mutex::new(Vec::new()));
        let world = Self {
            opts,
            t0: Instant::now(),
            marks,
            acpi,
            ipmi_daemon,
            kcs,
            ipmi_args,
            acpi_daemon,
            gate_daemon,
            acpi_args,
            gate_args,
            fans,
            _smbus_server: server,
            smbus,
            postd,
            host,
            chassis,
            systemd,
            bus,
            windows: Vec::new(),
            failsafe_before: 0,
            failsafe_log_before: Vec::new(),
            frudevice_delay: Duration::ZERO,
        };
        world.record_signals().await?;
        Ok(world)
    }

    /// Follow the phase and gate signals onto the timeline.
    async fn record_signals(&self) -> Result<()> {
        let conn = self.bus.connect().await?;
        let marks = self.marks.clone();
        let conn2 = conn.clone();
        tokio::spawn(async move {
            let _ = watch::watch(
                &conn2,
                Target {
                    bus: bus::ACPI_POWER_STATE,
                    path: path::ACPI_POWER_STATE,
                    iface: iface::ACPIGATE_HOST_PHASE,
                },
                |u| {
                    if let Update::Values(v) = u
                        && let Some(p) = v.get("Phase").and_then(watch::enum_value::<HostPhase>)
                    {
                        lock(&marks).push((Instant::now(), Mark::Phase(p)));
                    }
                },
            )
            .await;
        });
        let marks = self.marks.clone();
        tokio::spawn(async move {
            let _ = watch::watch(
                &conn,
                Target {
                    bus: bus::DIMM_TEMP_SENSOR,
                    path: path::ACPIGATE_GATE,
                    iface: iface::ACPIGATE_GATE,
                },
                |u| {
                    if let Update::Values(v) = u
                        && let Some(open) = v.get("Open").and_then(|x| bool::try_from(x).ok())
                    {
                        lock(&marks).push((Instant::now(), Mark::Gate(open)));
                    }
                },
            )
            .await;
        });
        Ok(())
    }

    /// Put a mark on the timeline.
    pub fn mark(&self, m: Mark) {
        lock(&self.marks).push((Instant::now(), m));
    }

    /// The timeline so far, in time order.
    pub fn marks(&self) -> Vec<(Instant, Mark)> {
        let mut v = lock(&self.marks).clone();
        v.sort_by_key(|(t, _)| *t);
        v
    }

    /// The host sent S0: a BMC window opens after the settle delay.
    pub fn open_window(&mut self, at: Instant) {
        self.windows.push(S0Window { from: at, to: None });
    }

    /// The host left S0 (reset, shutdown, power loss).
    pub fn close_window(&mut self, at: Instant) {
        if let Some(w) = self.windows.last_mut()
            && w.to.is_none()
        {
            w.to = Some(at);
        }
    }

    /// BMC transfers to DIMM addresses that started outside every settled-S0 window (with
    /// `grace` allowed after the host left S0 for the phase change to reach the gate).
    pub fn late_bmc_transfers(&self, grace: Duration) -> Vec<Transfer> {
        let settle = Duration::from_millis(self.opts.settle_ms);
        self.smbus
            .transfers()
            .into_iter()
            .filter(|t| matches!(t.master, Master::Bmc(_)))
            .filter(|t| {
                !self.windows.iter().any(|w| {
                    t.start >= w.from + settle && w.to.is_none_or(|to| t.start <= to + grace)
                })
            })
            .collect()
    }

    /// The latest start of a BMC transfer after the host left S0, within `grace` of it.
    pub fn max_close_lag(&self, grace: Duration) -> Duration {
        let transfers = self.smbus.bmc_transfers();
        self.windows
            .iter()
            .filter_map(|w| w.to)
            .flat_map(|to| {
                transfers
                    .iter()
                    .filter(move |t| t.start > to && t.start <= to + grace)
                    .map(move |t| t.start - to)
            })
            .max()
            .unwrap_or_default()
    }

    /// SIGKILL acpi-state-daemon and start it again, as systemd's `Restart=always` would.
    pub fn crash_acpi_daemon(&mut self) -> Result<()> {
        self.mark(Mark::Fault("acpi-state-daemon SIGKILL".into()));
        self.acpi_daemon.kill();
        self.acpi_daemon.restart(&self.bus, &strs(&self.acpi_args))
    }

    /// SIGKILL sensor-gate and start it again.
    pub fn crash_sensor_gate(&mut self) -> Result<()> {
        self.mark(Mark::Fault("sensor-gate SIGKILL".into()));
        self.gate_daemon.kill();
        self.gate_daemon.restart(&self.bus, &strs(&self.gate_args))
    }

    /// Restart the dbus-daemon, and with it every service, as systemd would after
    /// `systemctl restart dbus`: the platform services and both daemons reconnect from scratch
    /// (our daemons exit when their bus goes away; `Restart=always` brings them back).
    pub async fn restart_bus(&mut self) -> Result<()> {
        self.mark(Mark::Fault("dbus-daemon restart".into()));
        self.acpi_daemon.kill();
        self.gate_daemon.kill();
        self.failsafe_before += self.fans.failsafe_entries();
        self.failsafe_log_before.extend(self.fans.failsafe_log());
        self.bus.restart()?;
        self.systemd = Systemd::start_answering(&self.bus, self.opts.systemd).await?;
        self.chassis.appear(&self.bus).await?;
        self.host = Host::start(
            &self.bus,
            HostFlavour::StateManager,
            if self.chassis.power().is_on() {
                HostState::Running
            } else {
                HostState::Off
            },
        )
        .await?;
        self.postd = PostCodes::start(&self.bus).await?;
        self.fans = FanSim::start(&self.bus, self.zone_config(), &PWMS).await?;
        self.acpi = AcpiClient::new(self.bus.connect().await?);
        self.acpi_daemon
            .restart(&self.bus, &strs(&self.acpi_args))?;
        if let Some(d) = self.ipmi_daemon.as_mut() {
            d.restart(&self.bus, &strs(&self.ipmi_args))?;
            self.kcs = Some(IpmiCaller::new(&self.bus, Some("ipmi_kcs3")).await?);
        }
        self.gate_daemon
            .restart(&self.bus, &strs(&self.gate_args))?;
        self.record_signals().await
    }

    /// The last `n` lines of each daemon's log, for a step that failed.
    pub fn log_tails(&self, n: usize) -> String {
        let mut out = vec![self.acpi_daemon.log_tail(n), self.gate_daemon.log_tail(n)];
        out.extend(self.ipmi_daemon.as_ref().map(|d| d.log_tail(n)));
        out.join("\n")
    }

    fn zone_config(&self) -> Vec<ZoneConfig> {
        vec![ZoneConfig {
            zone: 0,
            inputs: (0..self.opts.dimms).map(sensor_name).collect(),
            unavailable_as_failed: self.opts.unavailable_as_failed,
        }]
    }

    /// Fan fail-safe entries over the whole run (across bus restarts).
    pub fn failsafe_entries(&self) -> u64 {
        self.failsafe_before + self.fans.failsafe_entries()
    }

    /// When each fan fail-safe entry happened and why, over the whole run.
    pub fn failsafe_log(&self) -> Vec<(Instant, String)> {
        let mut v = self.failsafe_log_before.clone();
        v.extend(self.fans.failsafe_log());
        v
    }

    /// The host's power as the simulated chassis reports it.
    pub fn power_on(&self) -> bool {
        self.chassis.power().is_on()
    }

    /// Wait until acpi-state-daemon shows `phase`.
    pub async fn wait_phase(&self, phase: HostPhase) -> Result<()> {
        self.acpi
            .wait_phase(phase)
            .await
            .with_context(|| format!("waiting for phase {phase}"))
    }

    /// Seconds since the world started, for printing.
    pub fn secs(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.t0).as_secs_f64()
    }
}

/// The host firmware's boots and power events, on this world.
impl World {
    /// Power on from off and boot to S0. With FruDevice on the BMC, its probe of the DIMM
    /// bus starts [`World::set_frudevice_delay`] after power-on, whatever the firmware does
    /// (FruDevice rescans when the host state changes once the host has run; nothing tells it
    /// about memory enumeration).
    pub async fn cold_boot(&mut self, t: &Timing) -> Result<BootReport> {
        let probe = self.opts.frudevice.map(|probe| {
            let (bus, delay, marks) =
                (self.smbus.clone(), self.frudevice_delay, self.marks.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                lock(&marks).push((Instant::now(), Mark::Host("FruDevice probe".to_owned())));
                let _ = tokio::task::spawn_blocking(move || probe.run(&bus)).await;
            })
        });
        let report = host_firmware::cold_boot(self, t).await;
        // Joined here, so the probe of this power-on is on the record before the boot is.
        if let Some(probe) = probe {
            let _ = probe.await;
        }
        report
    }

    /// When FruDevice starts probing after the next power-on.
    pub fn set_frudevice_delay(&mut self, d: Duration) {
        self.frudevice_delay = d;
    }

    /// Reset while working: memory is enumerated again, without S5.
    pub async fn warm_reset(&mut self, t: &Timing) -> Result<BootReport> {
        host_firmware::warm_reset(self, t).await
    }

    /// The OS shuts down: S5 (over KCS when `via_ipmi`), then power off.
    pub async fn shutdown(&mut self, via_ipmi: bool) -> Result<()> {
        host_firmware::shutdown(self, via_ipmi).await
    }

    /// Power is cut: nobody says S5.
    pub async fn power_loss(&mut self) -> Result<()> {
        host_firmware::power_loss(self).await
    }
}

impl Board for World {
    fn smbus(&self) -> &SimSmbus {
        &self.smbus
    }

    fn dimms(&self) -> u8 {
        self.opts.dimms
    }

    async fn post(&self, code: u8) -> Result<()> {
        self.postd.post(code).await
    }

    async fn set_power(&mut self, p: ChassisPowerState) -> Result<()> {
        self.chassis.set_power(p).await
    }

    /// Through IPMI Set ACPI Power State on the KCS channel when `via_ipmi` (and
    /// ipmi-handlers runs), else by writing the ACPI object the way ipmid's handler does.
    async fn report(&self, s: AcpiState, via_ipmi: bool) -> Result<()> {
        if via_ipmi && let Some(kcs) = self.kcs.as_ref() {
            self.mark(Mark::Host(format!("IPMI Set ACPI {s}")));
            // Byte 1: bit 7 "set system state" + code; byte 2: bit 7 clear, device unchanged.
            let data = [0x80 | s.ipmi_system_code(), 0x00];
            kcs.ok(netfn::APP, cmd::app::SET_ACPI_POWER_STATE, &data)
                .await
                .with_context(|| format!("host reporting {s} over IPMI"))?;
            return Ok(());
        }
        self.mark(Mark::Host(format!("sends {s}")));
        self.acpi
            .set_sys(s)
            .await
            .with_context(|| format!("host reporting {s}"))
    }

    /// Steps go on the timeline; S0 entered and left are the windows the BMC's transfers are
    /// checked against.
    fn record(&mut self, e: HostEvent) {
        match e {
            HostEvent::Step(what) => self.mark(Mark::Host(what.to_owned())),
            HostEvent::EnteredS0(at) => self.open_window(at),
            HostEvent::LeftS0(at) => self.close_window(at),
        }
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
