//! The configuration file (`/etc/acpigate/sensor-gate.json`), validated at start.
//!
//! ```json
//! {
//!   "gate": { "enabled": true, "settle_ms": 2000 },
//!   "poll_ms": 1000,
//!   "call_timeout_ms": 2000,
//!   "error_threshold": 5,
//!   "off_marking": "unavailable",
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
//! * `gate.settle_ms` (default 2000): how long `Working` must last before reads start.
//! * `call_timeout_ms` (default 2000, 10–60000): the deadline of each D-Bus call the daemon
//!   makes (fan writes, reads of the phase); the gate never waits on either.
//! * `poll_ms` (default 1000, at least 10), `error_threshold` (default 5, at least 1): failed
//!   reads in a row, while the gate is open, before `Functional=false`.
//! * `off_marking`: `"unavailable"` (default) or `"nonfunctional"` — how host-powered sensors
//!   show while the host is off or asleep (see the README for the pid-control trade-off).
//! * `buses[].backend`: `"i2c-dev"` (with `"bus": N` for `/dev/i2c-N`) or `"sim:<socket>"`.
//!   There is no default and no fallback: a typo is an error, never a silent simulator.
//! * `sensors[]`: `name` (the D-Bus object name: letters, digits, `_`), `bus`, `type`
//!   (`jc42` for DDR4 TSODs at 0x18–0x1F, `spd5118` for DDR5 hubs at 0x50–0x57), `address`
//!   (number or `"0x.."` string), optional `min`/`max` (°C; default: what the part can
//!   represent), `host_powered` (default true), `thresholds` (`warning_high`, `warning_low`,
//!   `critical_high`, `critical_low`, `hysteresis` (default 1 °C); omitted = none).
//! * `fans` (optional): `hold_phases` (default `["FirmwareInit"]`; phases from `Working`
//!   `FirmwareInit` `Sleeping` `Off` `Unknown`, `Working` not allowed), `retry_ms` (default
//!   5000), `zones[]` of pid-control zone numbers, each with the PWM objects
//!   (`/xyz/openbmc_project/control/fanpwm/<name>`) and their fixed `target` (0–255).
//!
//! Unknown keys are errors. Every error names the file, the line and the reason.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use daemon_kit::config::{self, ConfigError};
use openbmc_vocab::DbusEnum;
use openbmc_vocab::acpigate::HostPhase;
use serde::Deserialize;

use super::smbus::Backend;
use crate::core::decode::DeviceKind;
use crate::core::{OffMarking, Policy, SensorSpec, Thresholds, ZoneSpec};

/// Where the packaged daemon looks when no `--config` is given.
pub const DEFAULT_CONFIG: &str = "/etc/acpigate/sensor-gate.json";

/// One bus, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub policy: Policy,
    pub buses: Vec<BusConfig>,
    pub sensors: Vec<SensorConfig>,
    pub zones: Vec<ZoneSpec>,
    /// The deadline of each outgoing D-Bus call (`call_timeout_ms`).
    pub call_timeout: Duration,
}

/// Default of `call_timeout_ms`.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    gate: Option<GateFile>,
    poll_ms: Option<u64>,
    call_timeout_ms: Option<u64>,
    error_threshold: Option<u32>,
    off_marking: Option<String>,
    buses: Vec<BusFile>,
    sensors: Vec<SensorFile>,
    fans: Option<FansFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GateFile {
    enabled: Option<bool>,
    settle_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BusFile {
    name: String,
    backend: String,
    bus: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SensorFile {
    name: String,
    bus: String,
    #[serde(rename = "type")]
    kind: String,
    address: Number,
    min: Option<f64>,
    max: Option<f64>,
    host_powered: Option<bool>,
    thresholds: Option<ThresholdsFile>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FansFile {
    hold_phases: Option<Vec<String>>,
    retry_ms: Option<u64>,
    zones: Vec<ZoneFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneFile {
    zone: u32,
    #[serde(default)]
    pwms: Vec<PwmFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PwmFile {
    name: String,
    target: u8,
}

/// A number or a `"0x.."` string (JSON has no hex literals).
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Num(u64),
    Text(String),
}

impl Number {
    fn value(&self) -> Option<u64> {
        match self {
            Self::Num(n) => Some(*n),
            Self::Text(s) => {
                let t = s.trim();
                match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                    Some(h) => u64::from_str_radix(h, 16).ok(),
                    None => t.parse().ok(),
                }
            }
        }
    }
    fn text(&self) -> String {
        match self {
            Self::Num(n) => n.to_string(),
            Self::Text(s) => s.clone(),
        }
    }
}

/// A name usable as the last element of a D-Bus object path.
fn path_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
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
    let bad = |key: &str, hint: Option<&str>, reason: String| {
        config::invalid(path, text, key, hint, reason)
    };
    let mut policy = Policy::default();
    if let Some(g) = f.gate {
        if let Some(e) = g.enabled {
            policy.gate_enabled = e;
        }
        if let Some(ms) = g.settle_ms {
            policy.settle = Duration::from_millis(ms);
        }
    }
    if let Some(ms) = f.poll_ms {
        if ms < 10 {
            return Err(bad(
                "poll_ms",
                None,
                format!("poll_ms {ms} is below the minimum of 10"),
            ));
        }
        policy.poll_interval = Duration::from_millis(ms);
    }
    let mut call_timeout = DEFAULT_CALL_TIMEOUT;
    if let Some(ms) = f.call_timeout_ms {
        call_timeout =
            config::millis_in(path, text, "call_timeout_ms", ms, config::CALL_TIMEOUT_MS)?;
    }
    if let Some(n) = f.error_threshold {
        if n == 0 {
            return Err(bad(
                "error_threshold",
                None,
                "error_threshold must be at least 1".to_owned(),
            ));
        }
        policy.error_threshold = n;
    }
    if let Some(m) = f.off_marking {
        policy.off_marking = match m.as_str() {
            "unavailable" => OffMarking::Unavailable,
            "nonfunctional" => OffMarking::NonFunctional,
            other => {
                return Err(bad(
                    "off_marking",
                    None,
                    format!("off_marking `{other}` is not `unavailable` or `nonfunctional`"),
                ));
            }
        };
    }

    let mut buses = Vec::new();
    for b in f.buses {
        let hint = format!("\"{}\"", b.name);
        if !path_safe(&b.name) || buses.iter().any(|x: &BusConfig| x.name == b.name) {
            return Err(bad(
                "name",
                Some(&hint),
                format!(
                    "bus name `{}` is empty, has characters other than letters, digits and _, or is a duplicate",
                    b.name
                ),
            ));
        }
        let backend = if b.backend == "i2c-dev" {
            let Some(n) = b.bus else {
                return Err(bad(
                    "backend",
                    Some("i2c-dev"),
                    format!("bus `{}`: backend i2c-dev needs \"bus\": N", b.name),
                ));
            };
            Backend::I2cDev {
                device: PathBuf::from(format!("/dev/i2c-{n}")),
            }
        } else if let Some(sock) = b.backend.strip_prefix("sim:") {
            if b.bus.is_some() || !sock.starts_with('/') {
                return Err(bad(
                    "backend",
                    Some(&b.backend),
                    format!(
                        "bus `{}`: a sim backend is `sim:/absolute/socket/path` and takes no \"bus\"",
                        b.name
                    ),
                ));
            }
            Backend::Sim {
                socket: PathBuf::from(sock),
            }
        } else {
            return Err(bad(
                "backend",
                Some(&b.backend),
                format!(
                    "bus `{}`: backend `{}` is neither `i2c-dev` nor `sim:<socket>`",
                    b.name, b.backend
                ),
            ));
        };
        buses.push(BusConfig {
            name: b.name,
            backend,
        });
    }

    let mut sensors: Vec<SensorConfig> = Vec::new();
    let mut seen_addr = HashSet::new();
    for s in f.sensors {
        let hint = format!("\"{}\"", s.name);
        if !path_safe(&s.name) {
            return Err(bad(
                "name",
                Some(&hint),
                format!(
                    "sensor name `{}` must be letters, digits and _ (it becomes an object path)",
                    s.name
                ),
            ));
        }
        if sensors.iter().any(|x| x.spec.name == s.name) {
            return Err(bad(
                "name",
                Some(&hint),
                format!("sensor name `{}` appears twice", s.name),
            ));
        }
        let Some(bus) = buses.iter().position(|b| b.name == s.bus) else {
            return Err(bad(
                "bus",
                Some(&format!("\"{}\"", s.bus)),
                format!("sensor `{}`: no bus named `{}`", s.name, s.bus),
            ));
        };
        let Some(kind) = DeviceKind::from_config_name(&s.kind) else {
            return Err(bad(
                "type",
                Some(&format!("\"{}\"", s.kind)),
                format!(
                    "sensor `{}`: type `{}` is not `jc42` (DDR4) or `spd5118` (DDR5)",
                    s.name, s.kind
                ),
            ));
        };
        let addr = s
            .address
            .value()
            .and_then(|a| u8::try_from(a).ok())
            .filter(|a| kind.addresses().contains(a));
        let Some(address) = addr else {
            let r = kind.addresses();
            return Err(bad(
                "address",
                Some(&s.address.text()),
                format!(
                    "sensor `{}`: address `{}` is not a {} address ({:#04x}–{:#04x})",
                    s.name,
                    s.address.text(),
                    s.kind,
                    r.start(),
                    r.end()
                ),
            ));
        };
        if !seen_addr.insert((bus, address)) {
            return Err(bad(
                "address",
                Some(&s.address.text()),
                format!(
                    "sensor `{}`: address {address:#04x} on bus `{}` is already configured",
                    s.name, s.bus
                ),
            ));
        }
        let (rmin, rmax) = kind.representable();
        let min = s.min.unwrap_or(rmin);
        let max = s.max.unwrap_or(rmax);
        if !(min.is_finite() && max.is_finite() && min < max) {
            return Err(bad(
                "min",
                None,
                format!("sensor `{}`: min {min} must be below max {max}", s.name),
            ));
        }
        let t = s.thresholds.unwrap_or_default();
        let thresholds = Thresholds {
            warning_high: t.warning_high,
            warning_low: t.warning_low,
            critical_high: t.critical_high,
            critical_low: t.critical_low,
            hysteresis: t.hysteresis.unwrap_or(1.0),
        };
        let finite = [
            thresholds.warning_high,
            thresholds.warning_low,
            thresholds.critical_high,
            thresholds.critical_low,
        ]
        .iter()
        .flatten()
        .all(|v| v.is_finite());
        let ordered = match (thresholds.warning_high, thresholds.critical_high) {
            (Some(w), Some(c)) => w <= c,
            _ => true,
        } && match (thresholds.warning_low, thresholds.critical_low) {
            (Some(w), Some(c)) => c <= w,
            _ => true,
        };
        let hysteresis_ok = thresholds.hysteresis.is_finite() && thresholds.hysteresis >= 0.0;
        if !finite || !ordered || !hysteresis_ok {
            return Err(bad(
                "thresholds",
                None,
                format!(
                    "sensor `{}`: thresholds must be finite, warning within critical, hysteresis >= 0",
                    s.name
                ),
            ));
        }
        sensors.push(SensorConfig {
            spec: SensorSpec {
                name: s.name,
                kind,
                bus,
                address,
                host_powered: s.host_powered.unwrap_or(true),
                thresholds,
            },
            bus,
            min,
            max,
        });
    }
    if sensors.is_empty() {
        return Err(bad("sensors", None, "no sensors configured".to_owned()));
    }

    let mut zones = Vec::new();
    if let Some(fans) = f.fans {
        if let Some(phases) = fans.hold_phases {
            let mut v = Vec::new();
            for p in phases {
                match HostPhase::from_short(&p) {
                    Some(HostPhase::Working) | None => {
                        return Err(bad(
                            "hold_phases",
                            None,
                            format!(
                                "hold phase `{p}` must be one of FirmwareInit, Sleeping, Off, Unknown"
                            ),
                        ));
                    }
                    Some(ph) => v.push(ph),
                }
            }
            policy.fan_hold_phases = v;
        }
        if let Some(ms) = fans.retry_ms {
            policy.fan_retry = Duration::from_millis(ms.max(100));
        }
        let mut pwm_names = HashSet::new();
        for z in fans.zones {
            if zones.iter().any(|x: &ZoneSpec| x.zone == z.zone) {
                return Err(bad(
                    "zone",
                    Some(&z.zone.to_string()),
                    format!("zone {} appears twice", z.zone),
                ));
            }
            let mut pwms = Vec::new();
            for p in z.pwms {
                if !path_safe(&p.name) || !pwm_names.insert(p.name.clone()) {
                    return Err(bad(
                        "name",
                        Some(&format!("\"{}\"", p.name)),
                        format!(
                            "PWM name `{}` must be letters, digits and _, and appear once",
                            p.name
                        ),
                    ));
                }
                pwms.push((p.name, p.target));
            }
            zones.push(ZoneSpec { zone: z.zone, pwms });
        }
    }
    Ok(Config {
        policy,
        buses,
        sensors,
        zones,
        call_timeout,
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
        assert_eq!(
            c.buses[0].backend,
            Backend::I2cDev {
                device: PathBuf::from("/dev/i2c-3")
            }
        );
        assert_eq!(
            c.buses[1].backend,
            Backend::Sim {
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
        let cases: [(&str, &str, &str); 11] = [
            (
                "\"address\": \"0x18\"",
                "\"address\": \"0x50\"",
                ":9: sensor `DIMM_A0`: address `0x50` is not a jc42 address",
            ),
            (
                "\"backend\": \"i2c-dev\"",
                "\"backend\": \"i2cdev\"",
                ":5: bus `dimm`: backend `i2cdev` is neither",
            ),
            (
                "\"type\": \"jc42\"",
                "\"type\": \"lm75\"",
                ":9: sensor `DIMM_A0`: type `lm75`",
            ),
            (
                "\"bus\": \"sim\", \"type\"",
                "\"bus\": \"nosuch\", \"type\"",
                ":11: sensor `DIMM_B0`: no bus named `nosuch`",
            ),
            (
                "\"poll_ms\": 250",
                "\"poll_ms\": 5",
                ":3: poll_ms 5 is below",
            ),
            (
                "\"poll_ms\": 250",
                "\"poll_ms\": 250, \"call_timeout_ms\": 0",
                ":3: call_timeout_ms 0 is out of range",
            ),
            (
                "\"name\": \"DIMM_B0\"",
                "\"name\": \"DIMM_A0\"",
                "appears twice",
            ),
            (
                "\"name\": \"DIMM_A0\"",
                "\"name\": \"DIMM A0\"",
                ":9: sensor name `DIMM A0` must be",
            ),
            (
                "\"critical_high\": 95",
                "\"critical_high\": 80",
                ":10: sensor `DIMM_A0`: thresholds",
            ),
            ("\"target\": 153", "\"target\": 300", ":13:"),
            (
                "\"sim:/run/sim/smbus0.sock\"",
                "\"sim:relative.sock\"",
                ":6: bus `sim`: a sim backend",
            ),
        ];
        for (from, to, want) in cases {
            assert!(GOOD.contains(from), "{from}");
            let msg = err(&GOOD.replacen(from, to, 1));
            assert!(msg.starts_with("/etc/acpigate/sensor-gate.json:"), "{msg}");
            assert!(msg.contains(want), "{to}: {msg}");
        }
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
    fn the_example_in_units_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../units/sensor-gate.json.example");
        let text = std::fs::read_to_string(&p).expect("units/sensor-gate.json.example");
        parse(&p, &text).expect("the shipped example is valid");
    }
}
