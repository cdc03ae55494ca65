//! The daemon's configuration file (JSON; every key optional).
//!
//! ```json
//! { "listen": "0.0.0.0:623", "channel_name": "eth0", "channel_number": 1,
//!   "users_file": "/etc/acpigate/ipmi-lan-users.json", "cipher_suites": [17, 3],
//!   "max_privilege": "admin", "idle_timeout_secs": 60, "setup_timeout_secs": 5,
//!   "max_sessions": 15, "max_sessions_per_user": 4, "execute_timeout_ms": 5000,
//!   "lockout": { "user_failures": 5, "source_failures": 10, "duration_secs": 300 },
//!   "guid": "<32 hex digits; default: the command server's Get System GUID, else derived
//!            from /etc/machine-id>" }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use daemon_kit::config::{ConfigError, invalid};
use serde::Deserialize;

use super::decode_hex;
use crate::core::{self, LockoutPolicy, Privilege};
use crate::crypto::{self, CipherSuite};

pub const DEFAULT_USERS_FILE: &str = "/etc/acpigate/ipmi-lan-users.json";
/// Read when no `--config` is given; built-in defaults apply if it does not exist.
pub const DEFAULT_CONFIG: &str = "/etc/acpigate/ipmi-lan.json";

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, default)]
struct File {
    listen: String,
    channel_name: String,
    channel_number: u8,
    users_file: PathBuf,
    guid: Option<String>,
    cipher_suites: Vec<u8>,
    max_privilege: Privilege,
    idle_timeout_secs: u64,
    setup_timeout_secs: u64,
    max_sessions: usize,
    max_sessions_per_user: usize,
    execute_timeout_ms: u64,
    lockout: LockoutFile,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, default)]
struct LockoutFile {
    user_failures: u32,
    source_failures: u32,
    duration_secs: u64,
}

impl Default for LockoutFile {
    fn default() -> Self {
        LockoutFile {
            user_failures: 5,
            source_failures: 10,
            duration_secs: 300,
        }
    }
}

impl Default for File {
    fn default() -> Self {
        File {
            listen: "0.0.0.0:623".into(),
            // netipmid is started per interface (`-c eth0`) and owns
            // xyz.openbmc_project.Ipmi.Channel.eth0; we default to the same.
            channel_name: "eth0".into(),
            channel_number: 1,
            users_file: PathBuf::from(DEFAULT_USERS_FILE),
            guid: None,
            cipher_suites: vec![17, 3],
            max_privilege: Privilege::Admin,
            idle_timeout_secs: 60,
            setup_timeout_secs: 5,
            max_sessions: 15,
            max_sessions_per_user: 4,
            execute_timeout_ms: 5000,
            lockout: LockoutFile::default(),
        }
    }
}

/// Everything the daemon needs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub channel_name: String,
    pub users_file: PathBuf,
    pub execute_timeout: Duration,
    /// Whether `guid` was configured; if not, the edge asks the command server for the
    /// system GUID (so RAKP and Get System GUID agree, as with netipmid and ipmid) and keeps
    /// the machine-id-derived one in `core.guid` as the fallback.
    pub guid_configured: bool,
    pub core: core::Config,
}

/// Load `path`; without one, [`DEFAULT_CONFIG`] if it exists, else the built-in defaults
/// (as the other acpigate daemons do).
pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
    let (p, explicit) = match path {
        Some(p) => (p.to_owned(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    match std::fs::read_to_string(&p) {
        Ok(text) => parse(&p, &text),
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
            validate(Path::new("(defaults)"), "", File::default())
        }
        Err(source) => Err(ConfigError::Read { path: p, source }),
    }
}

/// Parse configuration text (tests).
pub fn parse(path: &Path, text: &str) -> Result<Settings, ConfigError> {
    let file = daemon_kit::config::parse::<File>(path, text)?;
    validate(path, text, file)
}

fn validate(path: &Path, text: &str, f: File) -> Result<Settings, ConfigError> {
    let bad = |key: &str, reason: String| invalid(path, text, key, None, reason);
    let listen: SocketAddr = f
        .listen
        .parse()
        .map_err(|e| bad("listen", format!("`{}`: {e} (want ADDRESS:PORT)", f.listen)))?;
    let name_ok = f
        .channel_name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && f.channel_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !name_ok {
        return Err(bad(
            "channel_name",
            format!(
                "`{}` cannot be part of a D-Bus name (letters, digits, `_`; no leading digit)",
                f.channel_name
            ),
        ));
    }
    if !(1..=0x0B).contains(&f.channel_number) {
        return Err(bad(
            "channel_number",
            "LAN channel numbers are 1..=11".into(),
        ));
    }
    let mut suites = Vec::new();
    for id in &f.cipher_suites {
        match CipherSuite::from_id(*id) {
            Some(s) if !suites.contains(&s) => suites.push(s),
            Some(_) => {}
            None if *id == 0 => {
                return Err(bad(
                    "cipher_suites",
                    "cipher suite 0 (no authentication, no integrity) is never offered".into(),
                ));
            }
            None => {
                return Err(bad(
                    "cipher_suites",
                    format!("cipher suite {id} is not implemented (3 and 17 are)"),
                ));
            }
        }
    }
    if suites.is_empty() {
        return Err(bad("cipher_suites", "no cipher suite offered".into()));
    }
    if f.max_sessions > 63 {
        return Err(bad(
            "max_sessions",
            "at most 63 (Get Session Info counts sessions in 6 bits)".into(),
        ));
    }
    if f.max_privilege < Privilege::User || f.max_privilege > Privilege::Admin {
        return Err(bad(
            "max_privilege",
            "must be user, operator or admin".into(),
        ));
    }
    for (key, v) in [
        ("idle_timeout_secs", f.idle_timeout_secs),
        ("setup_timeout_secs", f.setup_timeout_secs),
        ("execute_timeout_ms", f.execute_timeout_ms),
        ("duration_secs", f.lockout.duration_secs),
        ("max_sessions", f.max_sessions as u64),
        ("max_sessions_per_user", f.max_sessions_per_user as u64),
    ] {
        if v == 0 {
            return Err(bad(key, "must be greater than 0".into()));
        }
    }
    let guid = match &f.guid {
        Some(h) => decode_hex(h)
            .and_then(|v| <[u8; 16]>::try_from(v).ok())
            .ok_or_else(|| bad("guid", "want 32 hex digits".into()))?,
        None => machine_guid(),
    };
    Ok(Settings {
        listen,
        channel_name: f.channel_name,
        users_file: f.users_file,
        execute_timeout: Duration::from_millis(f.execute_timeout_ms),
        guid_configured: f.guid.is_some(),
        core: core::Config {
            channel_number: f.channel_number,
            guid,
            max_privilege: f.max_privilege,
            cipher_suites: suites,
            idle_timeout: Duration::from_secs(f.idle_timeout_secs),
            setup_timeout: Duration::from_secs(f.setup_timeout_secs),
            max_sessions: f.max_sessions,
            max_sessions_per_user: f.max_sessions_per_user,
            lockout: LockoutPolicy {
                user_threshold: f.lockout.user_failures,
                source_threshold: f.lockout.source_failures,
                duration: Duration::from_secs(f.lockout.duration_secs),
            },
            max_outstanding_per_session: core::Config::defaults([0; 16])
                .max_outstanding_per_session,
        },
    })
}

/// A GUID that is stable for this machine but does not expose the machine ID itself (the
/// GUID goes out in every RAKP 2): a hash of /etc/machine-id, application-specific as
/// sd_id128_get_machine_app_specific() recommends.
fn machine_guid() -> [u8; 16] {
    let id = std::fs::read("/etc/machine-id").unwrap_or_default();
    let h = crypto::sha256(&[b"acpigate ipmi-lan system GUID\0", id.trim_ascii()]);
    let mut g = [0u8; 16];
    g.copy_from_slice(&h[..16]);
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_complete() -> Result<(), ConfigError> {
        let s = load(None)?;
        assert_eq!(s.listen.port(), 623);
        assert_eq!(s.channel_name, "eth0");
        assert_eq!(
            s.core.cipher_suites,
            vec![CipherSuite::Suite17, CipherSuite::Suite3]
        );
        assert_eq!(s.users_file, PathBuf::from(DEFAULT_USERS_FILE));
        Ok(())
    }

    #[test]
    fn overrides_and_errors() -> Result<(), ConfigError> {
        let s = parse(
            Path::new("c.json"),
            r#"{ "listen": "127.0.0.1:6230", "cipher_suites": [3],
                 "guid": "00112233445566778899aabbccddeeff",
                 "lockout": { "user_failures": 2, "duration_secs": 3 } }"#,
        )?;
        assert_eq!(s.listen.to_string(), "127.0.0.1:6230");
        assert_eq!(s.core.cipher_suites, vec![CipherSuite::Suite3]);
        assert_eq!(s.core.guid[15], 0xff);
        assert_eq!(s.core.lockout.user_threshold, 2);
        assert_eq!(s.core.lockout.source_threshold, 10);
        let cases = [
            (
                "{\n \"cipher_suites\": [17, 0]\n}",
                "c.json:2: cipher suite 0",
            ),
            (
                "{\n \"cipher_suites\": [2]\n}",
                "c.json:2: cipher suite 2 is not",
            ),
            ("{\n \"listen\": \"623\"\n}", "c.json:2: `623`"),
            ("{\n \"channel_name\": \"0eth\"\n}", "c.json:2: `0eth`"),
            ("{\n\n \"guid\": \"abc\"\n}", "c.json:3: want 32 hex"),
            ("{\n \"max_sessions\": 0\n}", "c.json:2: must be greater"),
            ("{\n \"lisen\": \"x\"\n}", "c.json:2:"),
        ];
        for (text, want) in cases {
            let msg = parse(Path::new("c.json"), text)
                .map(|_| "accepted".to_string())
                .unwrap_or_else(|e| e.to_string());
            assert!(msg.starts_with(want), "{text}: {msg}");
        }
        Ok(())
    }
}
