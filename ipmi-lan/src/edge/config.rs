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

use daemon_kit::bound;
use daemon_kit::config::{AbsolutePath, ConfigError, Millis, checked_str, within};
use serde::Deserialize;

use crate::core::{self, LockoutPolicy, Privilege};
use crate::crypto::{self, CipherSuite};

pub const DEFAULT_USERS_FILE: &str = "/etc/acpigate/ipmi-lan-users.json";
/// Read when no `--config` is given; built-in defaults apply if it does not exist.
pub const DEFAULT_CONFIG: &str = "/etc/acpigate/ipmi-lan.json";

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

// Every value is checked while the file is parsed (the types below), so an error carries
// serde's line and column of the offending value.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct File {
    listen: Listen,
    channel_name: ChannelName,
    #[serde(deserialize_with = "within::<LanChannel, _, _>")]
    channel_number: u8,
    users_file: AbsolutePath,
    guid: Option<Guid>,
    cipher_suites: Suites,
    max_privilege: SessionLimit,
    #[serde(deserialize_with = "within::<IdleTimeout, _, _>")]
    idle_timeout_secs: u64,
    #[serde(deserialize_with = "within::<SetupTimeout, _, _>")]
    setup_timeout_secs: u64,
    #[serde(deserialize_with = "within::<MaxSessions, _, _>")]
    max_sessions: usize,
    #[serde(deserialize_with = "within::<MaxSessionsPerUser, _, _>")]
    max_sessions_per_user: usize,
    execute_timeout_ms: Millis<ExecuteTimeout>,
    lockout: LockoutFile,
}

bound!(
    /// LAN channels are 1..=11 (0 is IPMB, 0x0E/0x0F the current and system interfaces).
    LanChannel, "channel_number", 1..=0x0B
);
bound!(IdleTimeout, "idle_timeout_secs", 1..=86_400);
bound!(SetupTimeout, "setup_timeout_secs", 1..=3_600);
bound!(
    /// Get Session Info counts sessions in 6 bits.
    MaxSessions, "max_sessions", 1..=63
);
bound!(MaxSessionsPerUser, "max_sessions_per_user", 1..=63);
bound!(
    /// The command server's deadline: as every other D-Bus call, ten seconds at most.
    ExecuteTimeout, "execute_timeout_ms", 10..=60_000
);
bound!(LockoutDuration, "duration_secs", 1..=86_400);

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LockoutFile {
    user_failures: u32,
    source_failures: u32,
    #[serde(deserialize_with = "within::<LockoutDuration, _, _>")]
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
            listen: Listen(SocketAddr::from(([0, 0, 0, 0], 623))),
            // netipmid is started per interface (`-c eth0`) and owns
            // xyz.openbmc_project.Ipmi.Channel.eth0; we default to the same.
            channel_name: ChannelName("eth0".into()),
            channel_number: 1,
            users_file: AbsolutePath(PathBuf::from(DEFAULT_USERS_FILE)),
            guid: None,
            cipher_suites: Suites(vec![CipherSuite::Suite17, CipherSuite::Suite3]),
            max_privilege: SessionLimit(Privilege::Admin),
            idle_timeout_secs: 60,
            setup_timeout_secs: 5,
            max_sessions: 15,
            max_sessions_per_user: 4,
            execute_timeout_ms: Millis::from_const(Duration::from_millis(5000)),
            lockout: LockoutFile::default(),
        }
    }
}

/// `ADDRESS:PORT`.
struct Listen(SocketAddr);

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "ADDRESS:PORT", |s| {
            s.parse()
                .map(Listen)
                .map_err(|e| format!("`{s}`: {e} (want ADDRESS:PORT)"))
        })
    }
}

/// The channel's name, which becomes part of a D-Bus bus name.
struct ChannelName(String);

impl<'de> Deserialize<'de> for ChannelName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a channel name", |s| {
            let ok = s
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if ok {
                Ok(ChannelName(s.to_owned()))
            } else {
                Err(format!(
                    "`{s}` cannot be part of a D-Bus name (letters, digits, `_`; no leading digit)"
                ))
            }
        })
    }
}

/// A configured system GUID: 32 hex digits.
struct Guid([u8; 16]);

impl<'de> Deserialize<'de> for Guid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "32 hex digits", |s| {
            hex::decode(s)
                .ok()
                .and_then(|v| <[u8; 16]>::try_from(v).ok())
                .map(Guid)
                .ok_or_else(|| format!("guid `{s}`: want 32 hex digits"))
        })
    }
}

/// One offered cipher suite.
struct SuiteId(CipherSuite);

impl<'de> Deserialize<'de> for SuiteId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = u8::deserialize(d)?;
        match CipherSuite::from_id(id) {
            Some(s) => Ok(SuiteId(s)),
            None if id == 0 => Err(serde::de::Error::custom(
                "cipher suite 0 (no authentication, no integrity) is never offered",
            )),
            None => Err(serde::de::Error::custom(format!(
                "cipher suite {id} is not implemented (3 and 17 are)"
            ))),
        }
    }
}

/// The offered suites, in order, each once; at least one (checked inside the list's own
/// visitor, so an empty list is refused at the list).
struct Suites(Vec<CipherSuite>);

impl<'de> Deserialize<'de> for Suites {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Suites;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of cipher suite IDs")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Suites, A::Error> {
                let mut suites = Vec::new();
                while let Some(SuiteId(s)) = seq.next_element()? {
                    if !suites.contains(&s) {
                        suites.push(s);
                    }
                }
                if suites.is_empty() {
                    return Err(serde::de::Error::custom("no cipher suite offered"));
                }
                Ok(Suites(suites))
            }
        }
        d.deserialize_seq(V)
    }
}

/// The channel's privilege limit: user, operator or admin.
struct SessionLimit(Privilege);

impl<'de> Deserialize<'de> for SessionLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::IntoDeserializer;
        checked_str(d, "a privilege level", |s| {
            // The names are the vocabulary's (`user`, `operator`, `admin`, …).
            let p = Privilege::deserialize(s.into_deserializer())
                .map_err(|e: serde::de::value::Error| e.to_string())?;
            if (Privilege::User..=Privilege::Admin).contains(&p) {
                Ok(SessionLimit(p))
            } else {
                Err("max_privilege must be user, operator or admin".to_owned())
            }
        })
    }
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
            Ok(settings(File::default()))
        }
        Err(source) => Err(ConfigError::Read { path: p, source }),
    }
}

/// Parse configuration text (tests).
pub fn parse(path: &Path, text: &str) -> Result<Settings, ConfigError> {
    Ok(settings(daemon_kit::config::parse::<File>(path, text)?))
}

fn settings(f: File) -> Settings {
    Settings {
        listen: f.listen.0,
        channel_name: f.channel_name.0,
        users_file: f.users_file.0,
        execute_timeout: f.execute_timeout_ms.get(),
        guid_configured: f.guid.is_some(),
        core: core::Config {
            channel_number: f.channel_number,
            guid: f.guid.map_or_else(machine_guid, |g| g.0),
            max_privilege: f.max_privilege.0,
            cipher_suites: f.cipher_suites.0,
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
    }
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
                "c.json:2:",
                "cipher suite 0",
            ),
            (
                "{\n \"cipher_suites\": [2]\n}",
                "c.json:2:",
                "cipher suite 2 is not",
            ),
            (
                "{\n \"cipher_suites\": []\n}",
                "c.json:2:",
                "no cipher suite offered",
            ),
            ("{\n \"listen\": \"623\"\n}", "c.json:2:", "`623`"),
            ("{\n \"channel_name\": \"0eth\"\n}", "c.json:2:", "`0eth`"),
            ("{\n\n \"guid\": \"abc\"\n}", "c.json:3:", "want 32 hex"),
            (
                "{\n \"max_sessions\": 0\n}",
                "c.json:2:",
                "max_sessions 0 is out of range (1..=63)",
            ),
            (
                "{\n \"max_sessions\": 64\n}",
                "c.json:2:",
                "max_sessions 64 is out of range",
            ),
            (
                "{\n \"channel_number\": 12\n}",
                "c.json:2:",
                "channel_number 12 is out of range",
            ),
            (
                "{\n \"execute_timeout_ms\": 0\n}",
                "c.json:2:",
                "execute_timeout_ms 0 is out of range",
            ),
            (
                "{\n \"lockout\": {\"duration_secs\": 0}\n}",
                "c.json:2:",
                "duration_secs 0 is out of range",
            ),
            (
                "{\n \"max_privilege\": \"callback\"\n}",
                "c.json:2:",
                "must be user, operator or admin",
            ),
            (
                "{\n \"users_file\": \"users.json\"\n}",
                "c.json:2:",
                "must be an absolute path",
            ),
            (
                "{\n \"lisen\": \"x\"\n}",
                "c.json:2:",
                "unknown field `lisen`",
            ),
        ];
        for (text, at, want) in cases {
            let msg = parse(Path::new("c.json"), text)
                .map(|_| "accepted".to_string())
                .unwrap_or_else(|e| e.to_string());
            assert!(msg.starts_with(at) && msg.contains(want), "{text}: {msg}");
        }
        Ok(())
    }
}
