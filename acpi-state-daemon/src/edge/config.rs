//! The configuration file (`/etc/acpigate/acpi-state-daemon.json`): reading and checking it,
//! and the core's [`Policy`] it yields (the type is the core's; turning a file into one is
//! the edge's job, like every other read from outside).
//!
//! ```json
//! {
//!   "state_file": "/var/lib/acpigate/acpi-state.json",
//!   "call_timeout_ms": 3000,
//!   "post_complete_means_working": true,
//!   "post_codes_mean_firmware_init": true,
//!   "boot_progress": {
//!     "enabled": true,
//!     "firmware_init_stage": "PrimaryProcInit",
//!     "post_codes": [
//!       { "first": "0x10", "last": "0x2f", "stage": "MemoryInit" },
//!       { "first": 96, "last": 127, "stage": "PCIInit" }
//!     ]
//!   },
//!   "write_os_status": false,
//!   "sel_logger_records": false
//! }
//! ```
//! Every key is optional. Unknown keys are errors (a typo must not silently change policy).
//!
//! * `write_os_status` (default `false`): write `OperatingSystemState` on the host object —
//!   `Standby` in S0, `Inactive` in every other phase — so dbus-sensors' `PowerState:
//!   "BiosPost"` sensors read on phosphor-state-manager platforms, where nothing else writes it
//!   (see `core::os_status`). Leave it off where x86-power-control runs: it drives the property
//!   from POST_COMPLETE. It needs `"post_complete_means_working": false`, stated in the file:
//!   that option takes `OperatingSystemState` as the POST_COMPLETE input, and with both the
//!   daemon would read back its own writes as the host's word (a restart would find its own
//!   `Standby` and restore S0 from it). A file with both is refused, at the end of its object.
//! * `sel_logger_records` (default `false`): add a "System ACPI Power State" record to the IPMI
//!   SEL for every transition through phosphor-sel-logger's `IpmiSelAdd`, for images that run
//!   upstream phosphor-host-ipmid rather than acpigate's ipmi-handlers (which records the
//!   transitions itself: enabling both would record each twice).

use std::path::{Path, PathBuf};
use std::time::Duration;

use daemon_kit::bound;
use daemon_kit::config::{self, AbsolutePath, CallTimeout, ConfigError, Int, Millis};
use openbmc_vocab::DbusEnum;
use openbmc_vocab::boot::ProgressStage;
use serde::Deserialize;

use crate::core::Policy;

/// Where the packaged daemon looks when no `--config` is given.
pub const DEFAULT_CONFIG: &str = "/etc/acpigate/acpi-state-daemon.json";
/// Where the state survives restarts (systemd `StateDirectory=acpigate`).
pub const DEFAULT_STATE_FILE: &str = "/var/lib/acpigate/acpi-state.json";
/// How long an outgoing D-Bus call (StartUnit, the BootProgress writes) may take before it is
/// given up and logged. systemd on a busy single-core BMC answers within a second; a peer
/// that has not answered in three is stalled, not slow.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Everything the daemon needs from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub policy: Policy,
    pub state_file: PathBuf,
    /// The deadline of each outgoing D-Bus call (`call_timeout_ms`).
    pub call_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            state_file: PathBuf::from(DEFAULT_STATE_FILE),
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

// Every value is checked while the file is parsed (the types below refuse what makes no
// sense), so each error carries serde's line and column of the offending value.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFields {
    state_file: Option<AbsolutePath>,
    call_timeout_ms: Option<Millis<CallTimeout>>,
    post_complete_means_working: Option<bool>,
    post_codes_mean_firmware_init: Option<bool>,
    boot_progress: Option<BootProgressFile>,
    write_os_status: Option<bool>,
    sel_logger_records: Option<bool>,
}

/// The file, with the one relation between its keys checked where the parser ends the object
/// (inside serde_json's visit of the object, so the error carries that line and column; a
/// `try_from` on the top-level value would come back without a position).
struct File(FileFields);

impl<'de> Deserialize<'de> for File {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = File;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an acpi-state-daemon configuration object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<File, A::Error> {
                let f = FileFields::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                check_relations(&f).map_err(serde::de::Error::custom)?;
                Ok(File(f))
            }
        }
        d.deserialize_map(V)
    }
}

fn check_relations(f: &FileFields) -> Result<(), String> {
    if f.write_os_status == Some(true) && f.post_complete_means_working != Some(false) {
        return Err(
            "\"write_os_status\": true needs \"post_complete_means_working\": false \
             in the same file: the daemon would take the OperatingSystemState it writes for \
             the host's POST_COMPLETE and feed itself (a platform with a POST_COMPLETE signal \
             runs x86-power-control, which writes the property itself: leave write_os_status \
             off there)"
                .to_owned(),
        );
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BootProgressFile {
    enabled: Option<bool>,
    firmware_init_stage: Option<Stage>,
    #[serde(default)]
    post_codes: Vec<PostCodeRange>,
}

bound!(
    /// A POST code: any 64-bit value, as a number or a `"0x…"` string.
    PostCode, "POST code", 0..=u64::MAX
);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeFile {
    first: Int<PostCode>,
    last: Int<PostCode>,
    stage: Stage,
}

/// POST codes `first..=last` mean `stage`; an empty range is refused (at the end of its
/// object, where the parser is when both ends are known).
#[derive(Deserialize)]
#[serde(try_from = "RangeFile")]
struct PostCodeRange(u64, u64, ProgressStage);

impl TryFrom<RangeFile> for PostCodeRange {
    type Error = String;
    fn try_from(r: RangeFile) -> Result<Self, String> {
        let (first, last) = (r.first.get(), r.last.get());
        if first > last {
            return Err(format!(
                "POST code range {first:#x}..={last:#x} is empty (first > last)"
            ));
        }
        Ok(Self(first, last, r.stage.0))
    }
}

/// A BootProgress stage by its short name (`MemoryInit`).
struct Stage(ProgressStage);

impl<'de> Deserialize<'de> for Stage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ProgressStage;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a BootProgress stage name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<ProgressStage, E> {
                ProgressStage::from_short(name).ok_or_else(|| {
                    let all: Vec<&str> = ProgressStage::ALL.iter().map(|s| s.short()).collect();
                    E::custom(format!(
                        "`{name}` is not a BootProgress stage (one of: {})",
                        all.join(", ")
                    ))
                })
            }
        }
        d.deserialize_str(V).map(Stage)
    }
}

/// Parse a configuration file's text.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let File(f) = config::parse(path, text)?;
    let mut cfg = Config::default();
    if let Some(p) = f.state_file {
        cfg.state_file = p.0;
    }
    if let Some(t) = f.call_timeout_ms {
        cfg.call_timeout = t.get();
    }
    if let Some(b) = f.post_complete_means_working {
        cfg.policy.post_complete_means_working = b;
    }
    if let Some(b) = f.post_codes_mean_firmware_init {
        cfg.policy.post_codes_mean_firmware_init = b;
    }
    if let Some(b) = f.write_os_status {
        cfg.policy.write_os_status = b;
    }
    if let Some(b) = f.sel_logger_records {
        cfg.policy.sel_records = b;
    }
    if let Some(bp) = f.boot_progress {
        if let Some(e) = bp.enabled {
            cfg.policy.boot_progress = e;
        }
        if let Some(s) = bp.firmware_init_stage {
            cfg.policy.firmware_init_stage = s.0;
        }
        cfg.policy.post_code_stages = bp
            .post_codes
            .into_iter()
            .map(|PostCodeRange(first, last, stage)| (first, last, stage))
            .collect();
    }
    Ok(cfg)
}

/// Load the configuration. A missing file is an error only when it was named explicitly.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let (p, explicit) = match path {
        Some(p) => (p.to_owned(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    match std::fs::read_to_string(&p) {
        Ok(text) => parse(&p, &text),
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(source) => Err(ConfigError::Read { path: p, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("/etc/acpigate/acpi-state-daemon.json")
    }

    #[test]
    fn empty_object_is_the_default() {
        assert_eq!(parse(p(), "{}").expect("ok"), Config::default());
    }

    #[test]
    fn full_file() {
        let text = r#"{
  "state_file": "/tmp/x.json",
  "call_timeout_ms": 250,
  "post_complete_means_working": false,
  "post_codes_mean_firmware_init": false,
  "boot_progress": {
    "enabled": true,
    "firmware_init_stage": "MemoryInit",
    "post_codes": [ { "first": "0x10", "last": "0x2F", "stage": "MemoryInit" },
                    { "first": 96, "last": 127, "stage": "PCIInit" } ]
  }
}"#;
        let c = parse(p(), text).expect("ok");
        assert_eq!(c.state_file, PathBuf::from("/tmp/x.json"));
        assert_eq!(c.call_timeout, Duration::from_millis(250));
        assert!(!c.policy.post_complete_means_working);
        assert!(!c.policy.post_codes_mean_firmware_init);
        assert_eq!(c.policy.firmware_init_stage, ProgressStage::MemoryInit);
        assert_eq!(
            c.policy.stage_for_post_code(0x20),
            Some(ProgressStage::MemoryInit)
        );
        assert_eq!(
            c.policy.stage_for_post_code(100),
            Some(ProgressStage::PciInit)
        );
        assert_eq!(c.policy.stage_for_post_code(0x90), None);
    }

    #[test]
    fn errors_name_file_line_and_reason() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "{\n \"post_complete_means_working\": 1\n}",
                2,
                "invalid type",
            ),
            ("{\n\n \"typo\": true\n}", 3, "unknown field `typo`"),
            (
                "{\n \"boot_progress\": {\n  \"firmware_init_stage\": \"Booting\"\n }\n}",
                3,
                "`Booting` is not a BootProgress stage",
            ),
            (
                "{\"boot_progress\": {\"post_codes\": [\n{\"first\": \"0x30\",\n \"last\": \"0x10\", \"stage\": \"PCIInit\"}]}}",
                3,
                "is empty",
            ),
            (
                "{\"boot_progress\": {\"post_codes\": [\n{\"first\": \"zz\", \"last\": 1, \"stage\": \"PCIInit\"}]}}",
                2,
                "POST code `zz` is not a number",
            ),
            ("{\n \"state_file\": \"relative.json\"\n}", 2, "absolute"),
            ("{\n\n \"call_timeout_ms\": 0\n}", 3, "out of range"),
            ("{\n \"call_timeout_ms\": 600000\n}", 2, "out of range"),
            ("{\n \"state_file\": \"/x\",\n", 3, "EOF"),
            (
                "{\n \"write_os_status\": true\n}",
                3,
                "needs \"post_complete_means_working\": false",
            ),
            (
                "{\n \"write_os_status\": true,\n \"post_complete_means_working\": true\n}",
                4,
                "feed itself",
            ),
            ("{\n \"sel_logger_records\": \"yes\"\n}", 2, "invalid type"),
        ];
        for (text, line, reason) in cases {
            let msg = parse(p(), text).expect_err(text).to_string();
            let prefix = format!("/etc/acpigate/acpi-state-daemon.json:{line}:");
            assert!(msg.starts_with(&prefix), "{msg} (wanted line {line})");
            assert!(msg.contains(reason), "{msg} (wanted {reason})");
        }
    }

    #[test]
    fn the_os_status_writer_and_sel_records_are_off_unless_asked_for() {
        let c = parse(p(), "{}").expect("ok");
        assert!(!c.policy.write_os_status && !c.policy.sel_records);
        let c = parse(
            p(),
            r#"{ "write_os_status": true, "post_complete_means_working": false,
                 "sel_logger_records": true }"#,
        )
        .expect("ok");
        assert!(c.policy.write_os_status && c.policy.sel_records);
        assert!(!c.policy.post_complete_means_working);
        // Off, it needs nothing of the other option.
        let c = parse(p(), r#"{ "write_os_status": false }"#).expect("ok");
        assert!(!c.policy.write_os_status && c.policy.post_complete_means_working);
    }

    #[test]
    fn missing_default_file_is_fine_missing_explicit_file_is_not() {
        assert!(load(Some(Path::new("/nonexistent/acpigate/a.json"))).is_err());
    }
}
