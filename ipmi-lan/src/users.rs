//! LAN users: names, passwords (RAKP needs the clear password as the HMAC key, so it cannot
//! be stored hashed), IPMI user IDs and privilege limits. They come from a root-only file; there
//! is no built-in user and no default password anywhere.

#[cfg(feature = "daemon")]
use std::os::unix::fs::MetadataExt;
#[cfg(feature = "daemon")]
use std::path::Path;

#[cfg(feature = "daemon")]
use serde::Deserialize;
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::session::Privilege;

/// Longest user name RAKP 1 can carry.
pub const MAX_NAME: usize = 16;
/// Longest IPMI 2.0 password.
pub const MAX_PASSWORD: usize = 20;

/// A password or key; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: Vec<u8>,
    pub password: Secret,
    /// The IPMI user ID passed to the command server as `userId`.
    pub id: u8,
    pub privilege: Privilege,
}

/// The user table and the optional BMC key K_G.
#[derive(Clone, Debug, Default)]
pub struct UserDb {
    users: Vec<User>,
    kg: Option<Secret>,
}

impl UserDb {
    pub fn new(users: Vec<User>, kg: Option<Vec<u8>>) -> Self {
        UserDb {
            users,
            kg: kg.map(Secret),
        }
    }

    pub fn kg(&self) -> Option<&[u8]> {
        self.kg.as_ref().map(|k| k.0.as_slice())
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Find a user by name, touching every entry the same way whether or not (and wherever)
    /// the name matches, so the lookup time does not tell which names exist.
    pub fn lookup(&self, name: &[u8]) -> Option<&User> {
        let mut probe = [0u8; MAX_NAME];
        let n = name.len().min(MAX_NAME);
        probe[..n].copy_from_slice(&name[..n]);
        let probe_len = name.len() as u64;
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, u) in self.users.iter().enumerate() {
            let mut cand = [0u8; MAX_NAME];
            let m = u.name.len().min(MAX_NAME);
            cand[..m].copy_from_slice(&u.name[..m]);
            let hit = cand.ct_eq(&probe) & (u.name.len() as u64).ct_eq(&probe_len);
            index.conditional_assign(&(i as u64), hit);
            found |= hit;
        }
        if bool::from(found) {
            self.users.get(usize::try_from(index).ok()?)
        } else {
            None
        }
    }
}

#[cfg(feature = "daemon")]
/// Why the user file was refused.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: mode {mode:04o} lets group or others access it; it holds clear-text IPMI passwords: chmod 600 it"
    )]
    Permissions { path: String, mode: u32 },
    #[error(
        "{path}: owned by uid {owner}, not by the daemon's uid {me}; only the daemon's owner may hold the IPMI passwords"
    )]
    Owner { path: String, owner: u32, me: u32 },
    #[error("{path}: not a regular file")]
    NotAFile { path: String },
    #[error("{0}")]
    Config(#[from] daemon_kit::config::ConfigError),
}

#[cfg(feature = "daemon")]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: Vec<UserEntry>,
    /// BMC key K_G as hex (optional; two-key login when set).
    #[serde(default)]
    kg_hex: Option<String>,
}

#[cfg(feature = "daemon")]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    password: String,
    id: u8,
    privilege: Privilege,
}

#[cfg(feature = "daemon")]
/// Load and check the user file: a regular file, owned by the daemon's own uid (root in
/// production), with no group/other permission bits.
pub fn load(path: &Path) -> Result<UserDb, UsersError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| UsersError::Read {
        path: shown.clone(),
        source,
    })?;
    if !meta.is_file() {
        return Err(UsersError::NotAFile { path: shown });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(UsersError::Permissions { path: shown, mode });
    }
    // /proc/self belongs to the process's effective uid: no libc call (and no unsafe) needed.
    let me = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|source| UsersError::Read {
            path: "/proc/self".into(),
            source,
        })?;
    if meta.uid() != me {
        return Err(UsersError::Owner {
            path: shown,
            owner: meta.uid(),
            me,
        });
    }
    let (file, text) = daemon_kit::config::load::<UsersFile>(path)?;
    parse_checked(path, &text, file)
}

#[cfg(feature = "daemon")]
/// Parse user-file text (tests; `load` adds the permission checks).
pub fn parse(path: &Path, text: &str) -> Result<UserDb, UsersError> {
    let file = daemon_kit::config::parse::<UsersFile>(path, text)?;
    parse_checked(path, text, file)
}

#[cfg(feature = "daemon")]
fn parse_checked(path: &Path, text: &str, file: UsersFile) -> Result<UserDb, UsersError> {
    use daemon_kit::config::invalid;
    let bad = |key: &str, hint: Option<&str>, reason: String| -> UsersError {
        invalid(path, text, key, hint, reason).into()
    };
    if file.users.is_empty() {
        return Err(bad(
            "users",
            None,
            "no users: the LAN channel would accept nobody".into(),
        ));
    }
    let mut users: Vec<User> = Vec::new();
    for e in file.users {
        let hint = format!("\"{}\"", e.name);
        if e.name.is_empty() || e.name.len() > MAX_NAME {
            return Err(bad(
                "name",
                Some(&hint),
                format!("user name must be 1..={MAX_NAME} bytes"),
            ));
        }
        if !e.name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "name",
                Some(&hint),
                "user name must be printable ASCII without spaces".into(),
            ));
        }
        if e.password.is_empty() || e.password.len() > MAX_PASSWORD {
            return Err(bad(
                "password",
                None,
                format!("user {}: password must be 1..={MAX_PASSWORD} bytes", e.name),
            ));
        }
        if !(1..=63).contains(&e.id) {
            return Err(bad(
                "id",
                None,
                format!("user {}: id must be 1..=63", e.name),
            ));
        }
        if users.iter().any(|u| u.name == e.name.as_bytes()) {
            return Err(bad("name", Some(&hint), "duplicate user name".into()));
        }
        if users.iter().any(|u| u.id == e.id) {
            return Err(bad(
                "id",
                None,
                format!("user {}: duplicate id {}", e.name, e.id),
            ));
        }
        if e.privilege < Privilege::User || e.privilege > Privilege::Admin {
            return Err(bad(
                "privilege",
                None,
                format!("user {}: privilege must be user, operator or admin", e.name),
            ));
        }
        users.push(User {
            name: e.name.into_bytes(),
            password: Secret(e.password.into_bytes()),
            id: e.id,
            privilege: e.privilege,
        });
    }
    let kg = match file.kg_hex {
        None => None,
        Some(h) => {
            let k = decode_hex(&h)
                .filter(|k| !k.is_empty() && k.len() <= MAX_PASSWORD)
                .ok_or_else(|| bad("kg_hex", None, "kg_hex must be 1..=20 bytes of hex".into()))?;
            // An all-zero K_G means "not set" on the wire (Get Channel Auth Caps KG status).
            if k.iter().all(|&b| b == 0) {
                None
            } else {
                Some(k)
            }
        }
    };
    Ok(UserDb::new(users, kg))
}

/// Decode a hex string (even length, no separators).
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

#[cfg(feature = "daemon")]
#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const GOOD: &str = r#"{ "users": [
        { "name": "alice", "password": "s3cret-pass", "id": 2, "privilege": "admin" },
        { "name": "bob", "password": "hunter22", "id": 3, "privilege": "user" }
    ] }"#;

    #[test]
    fn lookup_finds_exact_names_only() -> Result<(), UsersError> {
        let db = parse(Path::new("u.json"), GOOD)?;
        assert_eq!(db.lookup(b"alice").map(|u| u.id), Some(2));
        assert_eq!(
            db.lookup(b"bob").map(|u| u.privilege),
            Some(Privilege::User)
        );
        assert!(db.lookup(b"alic").is_none());
        assert!(db.lookup(b"alice\0").is_none());
        assert!(db.lookup(b"").is_none());
        assert!(db.lookup(&[b'a'; 40]).is_none());
        assert!(db.kg().is_none());
        Ok(())
    }

    #[test]
    fn bad_entries_name_the_line() {
        let cases = [
            (r#"{ "users": [] }"#, "no users"),
            (
                "{ \"users\": [\n { \"name\": \"x\", \"password\": \"\", \"id\": 2, \"privilege\": \"admin\" } ] }",
                "password must be",
            ),
            (
                "{ \"users\": [\n { \"name\": \"x\", \"password\": \"p\", \"id\": 0, \"privilege\": \"admin\" } ] }",
                "id must be",
            ),
            (
                "{ \"users\": [\n { \"name\": \"a b\", \"password\": \"p\", \"id\": 2, \"privilege\": \"admin\" } ] }",
                "printable",
            ),
            (
                "{ \"users\": [\n { \"name\": \"x\", \"password\": \"p\", \"id\": 2, \"privilege\": \"admin\" },\n { \"name\": \"x\", \"password\": \"q\", \"id\": 3, \"privilege\": \"admin\" } ] }",
                "duplicate user name",
            ),
            (
                "{ \"users\": [\n { \"name\": \"x\", \"password\": \"p\", \"id\": 2, \"privilege\": \"callback\" } ] }",
                "privilege must be",
            ),
            (
                "{ \"users\": [\n { \"name\": \"x\", \"password\": \"p\", \"id\": 2, \"privilege\": \"admin\" } ],\n \"kg_hex\": \"zz\" }",
                "kg_hex",
            ),
            (
                "{ \"users\": [\n { \"name\": \"x\", \"pasword\": \"p\", \"id\": 2, \"privilege\": \"admin\" } ] }",
                "unknown field",
            ),
        ];
        for (text, want) in cases {
            let msg = parse(Path::new("/etc/u.json"), text)
                .map(|_| String::from("accepted"))
                .unwrap_or_else(|e| e.to_string());
            assert!(msg.starts_with("/etc/u.json:"), "{msg}");
            assert!(msg.contains(want), "{text}: {msg}");
        }
    }

    #[test]
    fn file_readable_by_others_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("ipmi-lan-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let f = dir.join("users.json");
        std::fs::write(&f, GOOD)?;
        for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode))?;
            let err = load(&f).map(|_| ()).map_err(|e| e.to_string());
            assert!(
                err.as_ref().is_err_and(|e| e.contains("chmod 600")),
                "{mode:o}: {err:?}"
            );
        }
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))?;
        assert_eq!(load(&f)?.len(), 2);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o400))?;
        assert_eq!(load(&f)?.len(), 2);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
