//! The daemon's configuration file, and the `dev_id.json` it may point at.

use std::path::{Path, PathBuf};

use daemon_kit::bound;
use daemon_kit::config::{self, CallTimeout, ConfigError, Int, Keyed, unique, within};
use serde::Deserialize;

use crate::core::limit::SelRateLimit;
use crate::core::{ChannelKind, DeviceId};

pub const DEFAULT_CONFIG: &str = "/etc/acpigate/ipmi-handlers.json";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/acpigate";

/// How a named channel carries requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionSupport {
    /// A system interface (KCS, BT): session-less, host firmware.
    SystemInterface,
    /// Another session-less channel.
    SessionLess,
    /// RMCP+ and friends: each request carries its session's privilege.
    SessionBased,
}

impl SessionSupport {
    pub fn kind(self) -> ChannelKind {
        match self {
            Self::SystemInterface => ChannelKind::SystemInterface,
            Self::SessionLess => ChannelKind::SessionLess,
            Self::SessionBased => ChannelKind::SessionBased,
        }
    }
}

/// A channel a caller selects by owning `xyz.openbmc_project.Ipmi.Channel.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    #[serde(deserialize_with = "within::<ChannelNumber, _, _>")]
    pub number: u8,
    pub session: SessionSupport,
}

impl Keyed for ChannelConfig {
    const WHAT: &'static str = "channel";
    fn key(&self) -> String {
        self.name.clone()
    }
}

// Each bounded key with its range; checked while the file is parsed.

bound!(
    /// IPMI channel numbers are 4 bits.
    ChannelNumber, "number", 0..=15
);

bound!(
    /// Record IDs 0x0000 and 0xFFFF (and 0xFFFE, "last") are reserved.
    SelCapacity, "sel_capacity", 1..=0xFFFD
);

bound!(
    /// Beyond this a "limit" would not limit anything a KCS interface can send.
    SelAddRate, "sel_add_rate", 1..=100_000
);

bound!(
    /// More than a full SEL at once would not be a burst any more.
    SelAddBurst, "sel_add_burst", 1..=0xFFFD
);

/// The ACPI sensor's SDR ID string: 1 to 16 bytes (the type/length byte's limit).
fn sdr_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an SDR ID string")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<String, E> {
            if s.is_empty() || s.len() > 16 {
                return Err(E::custom(
                    "acpi_sensor_name must be 1 to 16 bytes (the SDR ID string)",
                ));
            }
            Ok(s.to_owned())
        }
    }
    d.deserialize_str(V)
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// SEL, sensor-number map and GUIDs live here.
    pub state_dir: PathBuf,
    /// An upstream-style `dev_id.json` for Get Device ID; built-in defaults without one.
    pub dev_id: Option<PathBuf>,
    /// Most SEL records kept; the oldest make room for new ones.
    #[serde(deserialize_with = "within::<SelCapacity, _, _>")]
    pub sel_capacity: usize,
    /// SEL records (Add SEL Entry, Platform Event Message) each IPMI channel may add per
    /// second, sustained, after its burst; more are refused with 0xC0 (node busy).
    #[serde(deserialize_with = "within::<SelAddRate, _, _>")]
    pub sel_add_rate: u32,
    /// SEL records each IPMI channel may add at once.
    #[serde(deserialize_with = "within::<SelAddBurst, _, _>")]
    pub sel_add_burst: u32,
    /// ID string of the ACPI state sensor's SDR.
    #[serde(deserialize_with = "sdr_id")]
    pub acpi_sensor_name: String,
    /// Entity ID and instance of temperature sensor SDRs (0x07 = system board).
    pub temperature_entity: (u8, u8),
    /// Entity ID and instance of the ACPI state sensor SDR (0x07 = system board).
    pub acpi_entity: (u8, u8),
    /// Named channels; callers owning no channel name are the session-less INTRABMC channel.
    #[serde(deserialize_with = "unique")]
    pub channels: Vec<ChannelConfig>,
    /// Channel number of callers without a channel name (upstream's INTRABMC).
    pub intrabmc_channel: u8,
    /// Bus names never asked for sensors (slow or unrelated services).
    pub sensor_services_ignored: Vec<String>,
    /// The deadline of each D-Bus call to another service, in ms: a stuck service costs the
    /// command waiting for it 0xFF, never the server.
    #[serde(deserialize_with = "within::<CallTimeout, _, _>")]
    pub call_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            dev_id: None,
            sel_capacity: 1024,
            sel_add_rate: SelRateLimit::default().per_second,
            sel_add_burst: SelRateLimit::default().burst,
            call_timeout_ms: 3000,
            acpi_sensor_name: "ACPI_STATUS".to_owned(),
            temperature_entity: (0x07, 0x01),
            acpi_entity: (0x07, 0x01),
            // Upstream's channel_config.json numbering: KCS is channel 15, LAN 1 and 2.
            channels: vec![
                ChannelConfig {
                    name: "ipmi_kcs3".to_owned(),
                    number: 15,
                    session: SessionSupport::SystemInterface,
                },
                ChannelConfig {
                    name: "eth0".to_owned(),
                    number: 1,
                    session: SessionSupport::SessionBased,
                },
                ChannelConfig {
                    name: "eth1".to_owned(),
                    number: 2,
                    session: SessionSupport::SessionBased,
                },
            ],
            intrabmc_channel: 8,
            sensor_services_ignored: Vec::new(),
        }
    }
}

impl Config {
    pub fn sel_rate(&self) -> SelRateLimit {
        SelRateLimit {
            per_second: self.sel_add_rate,
            burst: self.sel_add_burst,
        }
    }
}

/// Load the configuration: the default file if present, else built-in defaults; a named file
/// must exist.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let (path, required) = match path {
        Some(p) => (p.to_owned(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    if !required && !path.exists() {
        return Ok(Config::default());
    }
    Ok(config::load::<Config>(&path)?.0)
}

/// Upstream's `dev_id.json` (same keys), plus optional firmware revision keys, since we do
/// not read it from os-release.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevIdFile {
    #[serde(default)]
    id: u8,
    #[serde(default)]
    revision: u8,
    #[serde(default)]
    addn_dev_support: u8,
    #[serde(default, deserialize_with = "within::<ManufId, _, _>")]
    manuf_id: u32,
    #[serde(default)]
    prod_id: u16,
    #[serde(default)]
    aux: u32,
    firmware_major: Option<Int<FirmwareMajor>>,
    firmware_minor: Option<Int<FirmwareMinor>>,
}

bound!(
    /// The manufacturer's IANA enterprise number: 20 bits in Get Device ID.
    ManufId, "manuf_id (a 20-bit IANA number)", 0..=0x000F_FFFF
);

bound!(
    /// Get Device ID's firmware revision: 7 bits of major, minor as two BCD digits.
    FirmwareMajor, "firmware_major", 0..=0x7F
);

bound!(FirmwareMinor, "firmware_minor", 0..=99);

/// Our own firmware revision: the crate version.
fn own_revision() -> (u8, u8) {
    let mut parts = env!("CARGO_PKG_VERSION").split('.');
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

/// Chassis, SEL, SDR repository and sensor device: what this server implements.
pub const DEFAULT_ADDN_DEV_SUPPORT: u8 = 0x80 | 0x04 | 0x02 | 0x01;

pub fn default_device_id() -> DeviceId {
    let (fw_major, fw_minor) = own_revision();
    DeviceId {
        id: 0,
        revision: 0,
        fw_major,
        fw_minor,
        addn_dev_support: DEFAULT_ADDN_DEV_SUPPORT,
        manuf_id: 0,
        prod_id: 0,
        aux: 0,
    }
}

pub fn load_device_id(path: Option<&Path>) -> Result<DeviceId, ConfigError> {
    let Some(path) = path else {
        return Ok(default_device_id());
    };
    let f: DevIdFile = config::load(path)?.0;
    let (maj, min) = own_revision();
    // Both fit a u8: their bounds are 0x7F and 99.
    let fw_major = f.firmware_major.map_or(maj, |v| v.get() as u8);
    let fw_minor = f.firmware_minor.map_or(min, |v| v.get() as u8);
    Ok(DeviceId {
        id: f.id,
        revision: f.revision,
        fw_major,
        fw_minor,
        addn_dev_support: f.addn_dev_support,
        manuf_id: f.manuf_id,
        prod_id: f.prod_id,
        aux: f.aux,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let p = Path::new("/etc/acpigate/ipmi-handlers.json");
        config::parse(p, text)
    }

    #[test]
    fn empty_object_is_the_defaults() {
        assert_eq!(parse("{}").expect("ok"), Config::default());
    }

    #[test]
    fn errors_name_file_line_and_reason() {
        let e = parse("{\n  \"sel_capacity\": 0\n}")
            .expect_err("bad")
            .to_string();
        assert_eq!(
            e,
            "/etc/acpigate/ipmi-handlers.json:2:19: sel_capacity 0 is out of range (1..=65533)"
        );
        let e = parse("{\n \"channels\": [\n  {\"name\": \"a\", \"number\": 1, \"session\": \"session-less\"},\n  {\"name\": \"a\", \"number\": 2, \"session\": \"session-less\"}\n ]\n}")
            .expect_err("dup")
            .to_string();
        assert!(
            e.contains(":4:") && e.contains("channel `a` appears twice"),
            "{e}"
        );
        let e = parse("{\n \"channels\": [{\"name\": \"x\", \"number\": 16, \"session\": \"session-based\"}]\n}")
            .expect_err("range")
            .to_string();
        assert!(
            e.contains(":2:") && e.contains("number 16 is out of range (0..=15)"),
            "{e}"
        );
        let e = parse("{\n \"chanels\": []\n}")
            .expect_err("typo")
            .to_string();
        assert!(
            e.contains(":2:") && e.contains("unknown field `chanels`"),
            "{e}"
        );
        let e = parse("{\n \"sel_capacity\": 64,\n \"call_timeout_ms\": 0\n}")
            .expect_err("deadline")
            .to_string();
        assert!(
            e.contains(":3:") && e.contains("call_timeout_ms 0 is out of range (10..=60000)"),
            "{e}"
        );
        let e = parse("{\n \"sel_add_rate\": 0\n}")
            .expect_err("rate")
            .to_string();
        assert_eq!(
            e,
            "/etc/acpigate/ipmi-handlers.json:2:18: sel_add_rate 0 is out of range (1..=100000)"
        );
        let e = parse("{\n \"sel_capacity\": 64,\n \"sel_add_burst\": 70000\n}")
            .expect_err("burst")
            .to_string();
        assert!(
            e.contains(":3:") && e.contains("sel_add_burst 70000 is out of range (1..=65533)"),
            "{e}"
        );
        let e = parse("{\"acpi_sensor_name\": \"0123456789abcdefg\"}")
            .expect_err("long")
            .to_string();
        assert!(e.contains("1 to 16 bytes"), "{e}");
    }

    #[test]
    fn example_files_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let cfg_path = dir.join("ipmi-handlers.json.example");
        let text = std::fs::read_to_string(&cfg_path).expect("example config");
        config::parse::<Config>(&cfg_path, &text).expect("valid");
        let dev = load_device_id(Some(&dir.join("dev_id.json.example"))).expect("dev_id");
        assert_eq!(dev.addn_dev_support, DEFAULT_ADDN_DEV_SUPPORT);
    }

    #[test]
    fn dev_id_errors() {
        let dir = std::env::temp_dir().join(format!("ipmi-devid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let p = dir.join("dev_id.json");
        std::fs::write(&p, "{\n \"id\": 32,\n \"manuf_id\": 2000000\n}").expect("write");
        let e = load_device_id(Some(&p)).expect_err("bad").to_string();
        assert!(
            e.contains(":3:")
                && e.ends_with(
                    "manuf_id (a 20-bit IANA number) 2000000 is out of range (0..=1048575)"
                ),
            "{e}"
        );
        std::fs::write(&p, "{\"id\": 300}").expect("write");
        assert!(load_device_id(Some(&p)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
