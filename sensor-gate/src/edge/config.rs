//! The configuration file (`/etc/acpigate/sensor-gate.json`), validated at start.
//!
//! ```json
//! {
//!   "gate": { "enabled": true, "settle_ms": 2000 },
//!   "poll_ms": 1000,
//!   "call_timeout_ms": 2000,
//!   "error_threshold": 5,
//!   "off_marking": "unavailable",
//!   "board": "/xyz/openbmc_project/inventory/system/board/Acme_Board",
//!   "buses": [
//!     { "name": "dimm", "backend": "i2c-dev", "bus": 3 },
//!     { "name": "sim", "backend": "sim:/run/acpigate-sim/smbus0.sock" }
//!   ],
//!   "sensors": [
//!     { "name": "DIMM_A0_Temp", "bus": "dimm", "type": "jc42", "address": "0x18",
//!       "thresholds": { "warning_high": 85, "critical_high": 95, "hysteresis": 1 } },
//!     { "name": "DIMM_B0_Temp", "bus": "dimm", "type": "spd5118", "address": "0x50",
//!       "min": 0, "max": 125, "host_powered": true }
//!   ],
//!   "fans": {
//!     "hold_phases": ["FirmwareInit"],
//!     "retry_ms": 5000,
//!     "zones": [ { "zone": 0, "pwms": [ { "name": "Pwm_1", "target": 153 } ] } ]
//!   }
//! }
//! ```
//!
//! * `gate.enabled` (default true): `false` reads whatever the host does — only for the
//!   control experiment that reproduces the collisions; the daemon warns loudly.
//! * `gate.settle_ms` (default 2000, at most an hour): how long `Working` must last before
//!   reads start.
//! * `other_masters_check_ms` (default 10000, 1000 to an hour): how often the real DIMM buses
//!   are scanned for other masters (bound drivers, eeprom devices, processes holding
//!   `/dev/i2c-N`, FruDevice not blocked); the first scan runs at start.
//! * `call_timeout_ms` (default 2000, 10–60000): the deadline of each D-Bus call the daemon
//!   makes (fan writes, reads of the phase); the gate never waits on either.
//! * `poll_ms` (default 1000, 10 to an hour), `error_threshold` (default 5, at least 1): failed
//!   reads in a row, while the gate is open, before `Functional=false`.
//! * `off_marking`: `"unavailable"` (default) or `"nonfunctional"` — how host-powered sensors
//!   show while the host is off or asleep (see the README for the pid-control trade-off).
//! * `board` (optional): the inventory object of the board the DIMMs sit on (one that
//!   implements `Inventory.Item.Board` or `Item.Chassis`, e.g. entity-manager's
//!   `/xyz/openbmc_project/inventory/system/board/<Board>`). Each sensor then carries the
//!   association `("chassis", "all_sensors", board)`, through which bmcweb lists it under that
//!   chassis in Redfish; without it the sensors serve D-Bus and IPMI but no Redfish chassis.
//! * `sensors_from`: `"file"` (default: the `sensors` below) or `"entity-manager"`: the
//!   sensors come from entity-manager's `AcpigateDimmTemp` records instead, followed while
//!   the daemon runs (see `em_records`); the file then lists no `sensors` and no `board`
//!   (each record's board is its parent object). One source, never a mix.
//! * `buses[].backend`: `"i2c-dev"` (with `"bus": N` for `/dev/i2c-N`) or `"sim:<socket>"`
//!   (optionally with `"bus": N`: the simulated bus standing for `/dev/i2c-N` where
//!   records name bus N). There is no default and no fallback: a typo is an error, never a
//!   silent simulator. With entity-manager, `buses` is optional: a record's bus N that no
//!   entry stands for is `/dev/i2c-N`. Two entries may not stand for one number.
//! * `sensors[]`: `name` (the D-Bus object name: letters, digits, `_`), `bus`, `type`
//!   (`jc42` for DDR4 TSODs at 0x18–0x1F, `spd5118` for DDR5 hubs at 0x50–0x57), `address`
//!   (number or `"0x.."` string), optional `min`/`max` (°C; default: what the part can
//!   represent), `host_powered` (default true), `thresholds` (`warning_high`, `warning_low`,
//!   `critical_high`, `critical_low`, `hysteresis` (default 1 °C); omitted = none).
//! * `fans` (optional): `hold_phases` (default `["FirmwareInit"]`; phases from `Working`
//!   `FirmwareInit` `Sleeping` `Off` `Unknown`, `Working` not allowed), `retry_ms` (default
//!   5000, at least 100), `zones[]` of pid-control zone numbers, each with the PWM objects
//!   (`/xyz/openbmc_project/control/fanpwm/<name>`) and their fixed `target` (0–255).
//!
//! Unknown keys are errors. Every error names the file, the line and the reason.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use daemon_kit::bound;
use daemon_kit::config::{self, CallTimeout, ConfigError, Int, Keyed, Millis, checked_str, unique};
use openbmc_vocab::DbusEnum;
use openbmc_vocab::acpigate::HostPhase;
use serde::Deserialize;
use serde::de::Deserializer;

use super::smbus::Backend;
use crate::core::decode::DeviceKind;
use crate::core::{OffMarking, Policy, SensorSpec, Thresholds, ZoneSpec};

/// Where the packaged daemon looks when no `--config` is given.
pub const DEFAULT_CONFIG: &str = "/etc/acpigate/sensor-gate.json";

/// One bus, by name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "BusFile")]
pub struct BusConfig {
    pub name: String,
    pub backend: Backend,
}

/// One sensor: what the core needs plus where it lives and its published range.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorConfig {
    pub spec: SensorSpec,
    /// Index into [`Config::buses`].
    pub bus: usize,
    pub min: f64,
    pub max: f64,
    /// The inventory object whose chassis the sensor belongs to (its association), if any.
    pub board: Option<String>,
}

/// Where the sensors are configured (`sensors_from`): one source, never a mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SensorsFrom {
    /// The file's `sensors` (default).
    #[default]
    File,
    /// entity-manager's `AcpigateDimmTemp` records, followed while running.
    EntityManager,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub policy: Policy,
    pub sensors_from: SensorsFrom,
    pub buses: Vec<BusConfig>,
    pub sensors: Vec<SensorConfig>,
    pub zones: Vec<ZoneSpec>,
    /// The deadline of each outgoing D-Bus call (`call_timeout_ms`).
    pub call_timeout: Duration,
    /// How often the real buses are scanned for other masters (`other_masters_check_ms`).
    pub other_masters_every: Duration,
}

/// Default of `other_masters_check_ms`.
pub const DEFAULT_OTHER_MASTERS_EVERY: Duration = Duration::from_secs(10);

/// A sensor's hysteresis when none is given, °C.
pub const DEFAULT_HYSTERESIS: f64 = 1.0;

/// Default of `call_timeout_ms`.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(2);

// Every value is checked while the file is parsed: the types below refuse what makes no
// sense, so each error carries serde's line and column (a value's own error points at the
// value, an entry's at the end of that entry). What relates two places in the file (a
// sensor naming a bus, two sensors at one address) is checked after parsing and names the
// line of the key that refers.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    gate: Option<GateFile>,
    poll_ms: Option<Millis<PollMs>>,
    call_timeout_ms: Option<Millis<CallTimeout>>,
    other_masters_check_ms: Option<Millis<OtherMastersMs>>,
    error_threshold: Option<Int<ErrorThreshold>>,
    off_marking: Option<OffMarkingFile>,
    board: Option<InventoryPath>,
    sensors_from: Option<SensorsFrom>,
    #[serde(default, deserialize_with = "unique")]
    buses: Vec<BusConfig>,
    #[serde(default, deserialize_with = "unique")]
    sensors: Vec<SensorEntry>,
    fans: Option<FansFile>,
}

bound!(PollMs, "poll_ms", 10..=3_600_000);

bound!(SettleMs, "settle_ms", 0..=3_600_000);

bound!(
    /// A scan reads sysfs and every process's fd table: not more than once a second.
    OtherMastersMs, "other_masters_check_ms", 1000..=3_600_000
);

bound!(ErrorThreshold, "error_threshold", 1..=u32::MAX as u64);

bound!(
    /// Below 100 ms a fan controller that refuses writes would be hammered.
    RetryMs, "retry_ms", 100..=3_600_000
);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GateFile {
    enabled: Option<bool>,
    settle_ms: Option<Millis<SettleMs>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum OffMarkingFile {
    Unavailable,
    NonFunctional,
}

/// A name usable as the last element of a D-Bus object path: letters, digits and `_`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PathSafe(String);

impl<'de> Deserialize<'de> for PathSafe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a name of letters, digits and _", |s| {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!(
                    "name `{s}` must be letters, digits and _ (it becomes an object path)"
                ));
            }
            Ok(PathSafe(s.to_owned()))
        })
    }
}

/// An object path below `/xyz/openbmc_project/inventory/`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InventoryPath(String);

impl<'de> Deserialize<'de> for InventoryPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use openbmc_vocab::names::path;
        checked_str(d, "an inventory object path", |s| {
            let below = s
                .strip_prefix(path::INVENTORY)
                .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/'));
            if !below || zbus::ObjectPath::try_from(s).is_err() {
                return Err(format!(
                    "board `{s}` must be an object path below {}/ (letters, digits and _ \
                     between single slashes)",
                    path::INVENTORY
                ));
            }
            Ok(InventoryPath(s.to_owned()))
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BusFile {
    name: PathSafe,
    backend: String,
    bus: Option<u32>,
}

impl TryFrom<BusFile> for BusConfig {
    type Error = String;
    fn try_from(b: BusFile) -> Result<Self, String> {
        let name = b.name.0;
        let backend = if b.backend == "i2c-dev" {
            let Some(n) = b.bus else {
                return Err(format!("bus `{name}`: backend i2c-dev needs \"bus\": N"));
            };
            Backend::I2cDev { bus: n }
        } else if let Some(sock) = b.backend.strip_prefix("sim:") {
            if !sock.starts_with('/') {
                return Err(format!(
                    "bus `{name}`: a sim backend is `sim:/absolute/socket/path`"
                ));
            }
            Backend::Sim {
                socket: PathBuf::from(sock),
                stands_for: b.bus,
            }
        } else {
            return Err(format!(
                "bus `{name}`: backend `{}` is neither `i2c-dev` nor `sim:<socket>`",
                b.backend
            ));
        };
        Ok(BusConfig { name, backend })
    }
}

impl Keyed for BusConfig {
    const WHAT: &'static str = "bus name";
    fn key(&self) -> String {
        self.name.clone()
    }
}

bound!(
    /// Any 7-bit SMBus address; the part's own range is checked with its type.
    SmbusAddress, "address", 0..=0x7F
);

/// A sensor's part, by its configuration name.
struct Kind(DeviceKind);

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a sensor type", |s| {
            DeviceKind::from_config_name(s)
                .map(Kind)
                .ok_or_else(|| format!("type `{s}` is not `jc42` (DDR4) or `spd5118` (DDR5)"))
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SensorFile {
    name: PathSafe,
    bus: String,
    #[serde(rename = "type")]
    kind: Kind,
    address: Int<SmbusAddress>,
    min: Option<f64>,
    max: Option<f64>,
    host_powered: Option<bool>,
    thresholds: Option<ThresholdsChecked>,
}

/// A sensor as the file gives it, checked on its own; its bus is resolved after parsing.
#[derive(Deserialize)]
#[serde(try_from = "SensorFile")]
struct SensorEntry {
    name: String,
    bus: String,
    kind: DeviceKind,
    address: u8,
    min: f64,
    max: f64,
    host_powered: bool,
    thresholds: Thresholds,
}

impl TryFrom<SensorFile> for SensorEntry {
    type Error = String;
    fn try_from(s: SensorFile) -> Result<Self, String> {
        let (name, kind) = (s.name.0, s.kind.0);
        let range = kind.addresses();
        let address = u8::try_from(s.address.get())
            .ok()
            .filter(|a| range.contains(a))
            .ok_or_else(|| {
                format!(
                    "sensor `{name}`: address {:#04x} is not a {} address ({:#04x}–{:#04x})",
                    s.address.get(),
                    kind.config_name(),
                    range.start(),
                    range.end()
                )
            })?;
        let (rmin, rmax) = kind.representable();
        let (min, max) = (s.min.unwrap_or(rmin), s.max.unwrap_or(rmax));
        if !(min.is_finite() && max.is_finite() && min < max) {
            return Err(format!(
                "sensor `{name}`: min {min} must be below max {max}"
            ));
        }
        Ok(Self {
            name,
            bus: s.bus,
            kind,
            address,
            min,
            max,
            host_powered: s.host_powered.unwrap_or(true),
            thresholds: s
                .thresholds
                .map_or_else(|| ThresholdsFile::default().into_thresholds(), |t| t.0),
        })
    }
}

impl Keyed for SensorEntry {
    const WHAT: &'static str = "sensor name";
    fn key(&self) -> String {
        self.name.clone()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ThresholdsFile {
    warning_high: Option<f64>,
    warning_low: Option<f64>,
    critical_high: Option<f64>,
    critical_low: Option<f64>,
    hysteresis: Option<f64>,
}

impl ThresholdsFile {
    fn into_thresholds(self) -> Thresholds {
        Thresholds {
            warning_high: self.warning_high,
            warning_low: self.warning_low,
            critical_high: self.critical_high,
            critical_low: self.critical_low,
            hysteresis: self.hysteresis.unwrap_or(DEFAULT_HYSTERESIS),
        }
    }
}

/// Thresholds that make sense: finite, each warning within its critical, hysteresis >= 0.
#[derive(Deserialize)]
#[serde(try_from = "ThresholdsFile")]
struct ThresholdsChecked(Thresholds);

impl TryFrom<ThresholdsFile> for ThresholdsChecked {
    type Error = &'static str;
    fn try_from(f: ThresholdsFile) -> Result<Self, &'static str> {
        checked_thresholds(f.into_thresholds()).map(Self)
    }
}

/// Thresholds that make sense (finite, each warning within its critical, hysteresis >= 0),
/// or why not: the rule for the file and for entity-manager's records alike.
pub(super) fn checked_thresholds(t: Thresholds) -> Result<Thresholds, &'static str> {
    let finite = [
        t.warning_high,
        t.warning_low,
        t.critical_high,
        t.critical_low,
    ]
    .iter()
    .flatten()
    .all(|v| v.is_finite());
    let ordered = match (t.warning_high, t.critical_high) {
        (Some(w), Some(c)) => w <= c,
        _ => true,
    } && match (t.warning_low, t.critical_low) {
        (Some(w), Some(c)) => c <= w,
        _ => true,
    };
    let hysteresis_ok = t.hysteresis.is_finite() && t.hysteresis >= 0.0;
    if !finite || !ordered || !hysteresis_ok {
        return Err("thresholds must be finite, warning within critical, hysteresis >= 0");
    }
    Ok(t)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FansFile {
    hold_phases: Option<Vec<HoldPhase>>,
    retry_ms: Option<Millis<RetryMs>>,
    #[serde(deserialize_with = "unique")]
    zones: Vec<ZoneFile>,
}

/// A phase in which the fans are held: any but `Working`.
struct HoldPhase(HostPhase);

impl<'de> Deserialize<'de> for HoldPhase {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a host phase", |p| match HostPhase::from_short(p) {
            Some(HostPhase::Working) | None => Err(format!(
                "hold phase `{p}` must be one of FirmwareInit, Sleeping, Off, Unknown"
            )),
            Some(ph) => Ok(HoldPhase(ph)),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneFile {
    zone: u32,
    #[serde(default, deserialize_with = "unique")]
    pwms: Vec<PwmFile>,
}

impl Keyed for ZoneFile {
    const WHAT: &'static str = "zone";
    fn key(&self) -> String {
        self.zone.to_string()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PwmFile {
    name: PathSafe,
    target: u8,
}

impl Keyed for PwmFile {
    const WHAT: &'static str = "PWM name";
    fn key(&self) -> String {
        self.name.0.clone()
    }
}

/// Read and validate a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Parse and validate a configuration file's text.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let f: File = config::parse(path, text)?;
    // Only relations between entries are left to check; they name the referring key's line.
    let bad = |key: &str, hint: Option<&str>, reason: String| {
        config::invalid(path, text, key, hint, reason)
    };
    let mut policy = Policy::default();
    if let Some(g) = f.gate {
        if let Some(e) = g.enabled {
            policy.gate_enabled = e;
        }
        if let Some(ms) = g.settle_ms {
            policy.settle = ms.get();
        }
    }
    if let Some(ms) = f.poll_ms {
        policy.poll_interval = ms.get();
    }
    let call_timeout = f.call_timeout_ms.map_or(DEFAULT_CALL_TIMEOUT, Millis::get);
    let other_masters_every = f
        .other_masters_check_ms
        .map_or(DEFAULT_OTHER_MASTERS_EVERY, Millis::get);
    if let Some(n) = f.error_threshold {
        // Within u32 by its bound.
        policy.error_threshold = n.get() as u32;
    }
    if let Some(m) = f.off_marking {
        policy.off_marking = match m {
            OffMarkingFile::Unavailable => OffMarking::Unavailable,
            OffMarkingFile::NonFunctional => OffMarking::NonFunctional,
        };
    }

    let buses = f.buses;
    let sensors_from = f.sensors_from.unwrap_or_default();
    // Which record bus number a bus stands for: one bus per number.
    let mut numbers = HashSet::new();
    for b in &buses {
        if let Some(n) = b.backend.record_bus()
            && !numbers.insert(n)
        {
            return Err(bad(
                "name",
                Some(&format!("\"{}\"", b.name)),
                format!("bus `{}`: another bus already stands for bus {n}", b.name),
            ));
        }
    }
    if sensors_from == SensorsFrom::EntityManager {
        // One source: a file that also lists sensors would leave it unclear which counts.
        if !f.sensors.is_empty() {
            return Err(bad(
                "sensors",
                None,
                "\"sensors_from\": \"entity-manager\" takes the sensors from entity-manager's \
                 records: the file may not list any"
                    .to_owned(),
            ));
        }
        if f.board.is_some() {
            return Err(bad(
                "board",
                None,
                "\"sensors_from\": \"entity-manager\" takes each sensor's board from its record \
                 (the record's parent object): the file may not name one"
                    .to_owned(),
            ));
        }
    }
    let mut sensors: Vec<SensorConfig> = Vec::new();
    let mut seen_addr = HashSet::new();
    for s in f.sensors {
        let Some(bus) = buses.iter().position(|b| b.name == s.bus) else {
            return Err(bad(
                "bus",
                Some(&format!("\"{}\"", s.bus)),
                format!("sensor `{}`: no bus named `{}`", s.name, s.bus),
            ));
        };
        if !seen_addr.insert((bus, s.address)) {
            return Err(bad(
                "name",
                Some(&format!("\"{}\"", s.name)),
                format!(
                    "sensor `{}`: address {:#04x} on bus `{}` is already configured",
                    s.name, s.address, s.bus
                ),
            ));
        }
        sensors.push(SensorConfig {
            spec: SensorSpec {
                name: s.name,
                kind: s.kind,
                bus,
                address: s.address,
                host_powered: s.host_powered,
                thresholds: s.thresholds,
            },
            bus,
            min: s.min,
            max: s.max,
            board: f.board.as_ref().map(|b| b.0.clone()),
        });
    }
    if sensors.is_empty() && sensors_from == SensorsFrom::File {
        return Err(bad("sensors", None, "no sensors configured".to_owned()));
    }

    let mut zones = Vec::new();
    if let Some(fans) = f.fans {
        if let Some(phases) = fans.hold_phases {
            policy.fan_hold_phases = phases.into_iter().map(|p| p.0).collect();
        }
        if let Some(ms) = fans.retry_ms {
            policy.fan_retry = ms.get();
        }
        // A PWM belongs to one zone: two zones holding one PWM would fight over it.
        let mut pwm_names = HashSet::new();
        for z in fans.zones {
            let mut pwms = Vec::new();
            for p in z.pwms {
                if !pwm_names.insert(p.name.0.clone()) {
                    return Err(bad(
                        "name",
                        Some(&format!("\"{}\"", p.name.0)),
                        format!("PWM `{}` is in two zones", p.name.0),
                    ));
                }
                pwms.push((p.name.0, p.target));
            }
            zones.push(ZoneSpec { zone: z.zone, pwms });
        }
    }
    Ok(Config {
        policy,
        sensors_from,
        buses,
        sensors,
        zones,
        call_timeout,
        other_masters_every,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
  "gate": { "settle_ms": 500 },
  "poll_ms": 250,
  "buses": [
    { "name": "dimm", "backend": "i2c-dev", "bus": 3 },
    { "name": "sim", "backend": "sim:/run/sim/smbus0.sock" }
  ],
  "sensors": [
    { "name": "DIMM_A0", "bus": "dimm", "type": "jc42", "address": "0x18",
      "thresholds": { "warning_high": 85, "critical_high": 95 } },
    { "name": "DIMM_B0", "bus": "sim", "type": "spd5118", "address": 81, "min": 0, "max": 125 }
  ],
  "fans": { "zones": [ { "zone": 0, "pwms": [ { "name": "Pwm_1", "target": 153 } ] } ] }
}"#;

    fn err(text: &str) -> String {
        parse(Path::new("/etc/acpigate/sensor-gate.json"), text)
            .expect_err("must be rejected")
            .to_string()
    }

    #[test]
    fn a_good_file() {
        let c = parse(Path::new("x.json"), GOOD).expect("valid");
        assert_eq!(c.policy.settle, Duration::from_millis(500));
        assert_eq!(c.policy.poll_interval, Duration::from_millis(250));
        assert!(c.policy.gate_enabled);
        assert_eq!(c.buses[0].backend, Backend::I2cDev { bus: 3 });
        assert_eq!(
            c.buses[1].backend,
            Backend::Sim {
                stands_for: None,
                socket: PathBuf::from("/run/sim/smbus0.sock")
            }
        );
        assert_eq!(c.sensors[0].spec.address, 0x18);
        assert_eq!(c.sensors[0].spec.thresholds.critical_high, Some(95.0));
        assert_eq!(c.sensors[0].spec.thresholds.hysteresis, 1.0);
        assert_eq!((c.sensors[0].min, c.sensors[0].max), (-256.0, 255.9375));
        assert_eq!(c.sensors[1].spec.address, 0x51);
        assert_eq!(c.sensors[1].bus, 1);
        assert_eq!((c.sensors[1].min, c.sensors[1].max), (0.0, 125.0));
        assert_eq!(c.zones[0].pwms, vec![("Pwm_1".to_owned(), 153)]);
        assert_eq!(c.policy.fan_hold_phases, vec![HostPhase::FirmwareInit]);
    }

    #[test]
    fn errors_name_file_line_and_reason() {
        let cases: [(&str, &str, &str); 12] = [
            (
                "\"address\": \"0x18\"",
                "\"address\": \"0x50\"",
                ":10:65: sensor `DIMM_A0`: address 0x50 is not a jc42 address (0x18–0x1f)",
            ),
            (
                "\"backend\": \"i2c-dev\"",
                "\"backend\": \"i2cdev\"",
                ":5:53: bus `dimm`: backend `i2cdev` is neither",
            ),
            (
                "\"type\": \"jc42\"",
                "\"type\": \"lm75\"",
                ":9:54: type `lm75` is not `jc42` (DDR4) or `spd5118` (DDR5)",
            ),
            (
                "\"bus\": \"sim\", \"type\"",
                "\"bus\": \"nosuch\", \"type\"",
                ":11: sensor `DIMM_B0`: no bus named `nosuch`",
            ),
            (
                "\"poll_ms\": 250",
                "\"poll_ms\": 5",
                ":3:14: poll_ms 5 is out of range (10..=3600000)",
            ),
            (
                "\"poll_ms\": 250",
                "\"poll_ms\": 250, \"call_timeout_ms\": 0",
                ":3:38: call_timeout_ms 0 is out of range",
            ),
            (
                "\"poll_ms\": 250",
                "\"poll_ms\": 250, \"other_masters_check_ms\": 999",
                ":3:47: other_masters_check_ms 999 is out of range (1000..=3600000)",
            ),
            (
                "\"name\": \"DIMM_B0\"",
                "\"name\": \"DIMM_A0\"",
                "appears twice",
            ),
            (
                "\"name\": \"DIMM_A0\"",
                "\"name\": \"DIMM A0\"",
                ":9:23: name `DIMM A0` must be letters, digits and _",
            ),
            (
                "\"critical_high\": 95",
                "\"critical_high\": 80",
                ":10:65: thresholds must be finite, warning within critical",
            ),
            ("\"target\": 153", "\"target\": 300", ":13:"),
            (
                "\"sim:/run/sim/smbus0.sock\"",
                "\"sim:relative.sock\"",
                ":6:53: bus `sim`: a sim backend",
            ),
        ];
        for (from, to, want) in cases {
            assert!(GOOD.contains(from), "{from}");
            let msg = err(&GOOD.replacen(from, to, 1));
            assert!(msg.starts_with("/etc/acpigate/sensor-gate.json:"), "{msg}");
            assert!(msg.contains(want), "{to}: {msg}");
        }
    }

    const FROM_EM: &str = r#"{
  "sensors_from": "entity-manager",
  "buses": [
    { "name": "dimm", "backend": "sim:/run/sim/smbus0.sock", "bus": 3 }
  ],
  "fans": { "zones": [ { "zone": 0, "pwms": [ { "name": "Pwm_1", "target": 153 } ] } ] }
}"#;

    #[test]
    fn sensors_from_entity_manager_lists_no_sensors_and_no_board() {
        let c = parse(Path::new("x.json"), FROM_EM).expect("valid");
        assert_eq!(c.sensors_from, SensorsFrom::EntityManager);
        assert!(c.sensors.is_empty());
        assert_eq!(c.buses[0].backend.record_bus(), Some(3));
        assert_eq!(
            c.buses[0].backend.i2c_number(),
            None,
            "a simulation is never scanned"
        );
        // Buses are optional: a record's bus is then /dev/i2c-N.
        let bare = "{ \"sensors_from\": \"entity-manager\" }";
        assert!(
            parse(Path::new("x.json"), bare)
                .expect("valid")
                .buses
                .is_empty()
        );
        // The file's default stays the file.
        assert_eq!(
            parse(Path::new("x.json"), GOOD)
                .expect("valid")
                .sensors_from,
            SensorsFrom::File
        );

        let cases = [
            (
                FROM_EM.replacen(
                    "\"buses\"",
                    "\"sensors\": [ { \"name\": \"D\", \"bus\": \"dimm\", \"type\": \"jc42\", \"address\": 24 } ],\n  \"buses\"",
                    1,
                ),
                ":3: \"sensors_from\": \"entity-manager\" takes the sensors from entity-manager's records",
            ),
            (
                FROM_EM.replacen(
                    "\"buses\"",
                    "\"board\": \"/xyz/openbmc_project/inventory/system/board/B\",\n  \"buses\"",
                    1,
                ),
                ":3: \"sensors_from\": \"entity-manager\" takes each sensor's board from its record",
            ),
            (
                FROM_EM.replacen("\"entity-manager\"", "\"inventory\"", 1),
                ":2:",
            ),
            (
                FROM_EM.replacen(
                    "\"bus\": 3 }",
                    "\"bus\": 3 },\n    { \"name\": \"real\", \"backend\": \"i2c-dev\", \"bus\": 3 }",
                    1,
                ),
                ":5: bus `real`: another bus already stands for bus 3",
            ),
        ];
        for (text, want) in cases {
            let msg = err(&text);
            assert!(msg.starts_with("/etc/acpigate/sensor-gate.json:"), "{msg}");
            assert!(msg.contains(want), "want {want:?} in {msg}");
        }
        // A file without sensors_from still needs sensors.
        let msg = err("{ \"buses\": [] }");
        assert!(msg.contains("no sensors configured"), "{msg}");
    }

    #[test]
    fn unknown_keys_and_syntax_errors() {
        let msg = err(&GOOD.replace("\"poll_ms\"", "\"poll_msec\""));
        assert!(
            msg.contains(":3:") && msg.contains("unknown field `poll_msec`"),
            "{msg}"
        );
        let msg = err("{\n  \"buses\": [,]\n}");
        assert!(msg.contains(":2:"), "{msg}");
        let msg = err(r#"{ "buses": [], "sensors": [] }"#);
        assert!(msg.contains("no sensors configured"), "{msg}");
    }

    #[test]
    fn fan_hold_phases_and_markings() {
        let t = GOOD.replace(
            "\"fans\": {",
            "\"off_marking\": \"nonfunctional\", \"fans\": { \"hold_phases\": [\"FirmwareInit\", \"Unknown\"],",
        );
        let c = parse(Path::new("x"), &t).expect("valid");
        assert_eq!(
            c.policy.fan_hold_phases,
            vec![HostPhase::FirmwareInit, HostPhase::Unknown]
        );
        assert_eq!(c.policy.off_marking, OffMarking::NonFunctional);
        let t = GOOD.replace("\"fans\": {", "\"fans\": { \"hold_phases\": [\"Working\"],");
        assert!(err(&t).contains("hold phase `Working`"));
        let t = GOOD.replace(
            "\"gate\": { \"settle_ms\": 500 }",
            "\"gate\": { \"enabled\": false }",
        );
        assert!(
            !parse(Path::new("x"), &t)
                .expect("valid")
                .policy
                .gate_enabled
        );
    }

    #[test]
    fn a_board_gives_every_sensor_its_chassis_and_a_bad_one_is_refused() {
        let board = "/xyz/openbmc_project/inventory/system/board/Acme_Board";
        let t = GOOD.replace(
            "\"poll_ms\": 250",
            &format!("\"poll_ms\": 250, \"board\": \"{board}\""),
        );
        let c = parse(Path::new("x"), &t).expect("valid");
        assert!(c.sensors.iter().all(|s| s.board.as_deref() == Some(board)));
        assert!(
            parse(Path::new("x"), GOOD)
                .expect("valid")
                .sensors
                .iter()
                .all(|s| s.board.is_none())
        );
        for bad in [
            "/xyz/openbmc_project/inventory",
            "/xyz/openbmc_project/inventory/",
            "/xyz/openbmc_project/inventory/system//board",
            "/xyz/openbmc_project/inventory/system/board/Acme-Board",
            "/xyz/openbmc_project/sensors/temperature/X",
            "xyz/openbmc_project/inventory/system/board/B",
        ] {
            let msg = err(&GOOD.replace(
                "\"poll_ms\": 250",
                &format!("\"poll_ms\": 250, \"board\": \"{bad}\""),
            ));
            assert!(
                msg.contains(":3:")
                    && msg.contains(&format!("board `{bad}` must be an object path below")),
                "{bad}: {msg}"
            );
        }
    }

    #[test]
    fn the_example_in_units_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../units/sensor-gate.json.example");
        let text = std::fs::read_to_string(&p).expect("units/sensor-gate.json.example");
        parse(&p, &text).expect("the shipped example is valid");
    }
}
