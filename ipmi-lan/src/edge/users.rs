//! The users file: reading it (only if it is a regular file owned by the daemon's uid with no
//! group/other permission bits: it holds clear-text passwords) and turning its JSON into the
//! core's user table. The rules a table must keep are the core's
//! ([`crate::core::users::UserTable`]); here they run while the file is parsed, so each
//! refusal carries the position of the entry that broke the rule.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Deserialize;

use crate::core::users::{MAX_PASSWORD, UserDb, UserSpec, UserTable};

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: Users,
    /// BMC key K_G as hex (optional; two-key login when set).
    #[serde(default)]
    kg_hex: Option<Kg>,
}

/// The user table, its rules (the core's [`UserTable`]) applied entry by entry as the file
/// is parsed, so a refusal carries the position of the entry that broke the rule.
struct Users(UserDb);

impl<'de> Deserialize<'de> for Users {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut table = UserTable::default();
        daemon_kit::config::each_entry(d, "user", |spec: UserSpec| {
            table.add(spec).map_err(|e| e.reason)
        })?;
        table
            .finish()
            .map(Users)
            .map_err(|e| serde::de::Error::custom(e.reason))
    }
}

/// K_G: 1..=20 bytes as hex digits.
struct Kg(Vec<u8>);

impl<'de> Deserialize<'de> for Kg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Kg;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("K_G as hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, h: &str) -> Result<Kg, E> {
                hex::decode(h)
                    .ok()
                    .filter(|k| !k.is_empty() && k.len() <= MAX_PASSWORD)
                    .map(Kg)
                    .ok_or_else(|| {
                        E::custom(format!("kg_hex must be 1..={MAX_PASSWORD} bytes of hex"))
                    })
            }
        }
        d.deserialize_str(V)
    }
}

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
    Ok(table(daemon_kit::config::load::<UsersFile>(path)?.0))
}

/// Parse user-file text (tests; `load` adds the permission checks).
pub fn parse(path: &Path, text: &str) -> Result<UserDb, UsersError> {
    Ok(table(daemon_kit::config::parse::<UsersFile>(path, text)?))
}

fn table(file: UsersFile) -> UserDb {
    file.users.0.with_kg(file.kg_hex.map(|k| k.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Privilege;
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
    fn a_refusal_is_placed_at_the_entry_that_broke_the_rule() {
        let text = "{ \"users\": [\n { \"name\": \"x\", \"password\": \"p\", \"id\": 2, \"privilege\": \"admin\" },\n { \"name\": \"y\", \"password\": \"q\", \"id\": 2, \"privilege\": \"admin\" },\n { \"name\": \"z\", \"password\": \"r\", \"id\": 4, \"privilege\": \"admin\" } ] }";
        let msg = parse(Path::new("/etc/u.json"), text)
            .map(|_| String::from("accepted"))
            .unwrap_or_else(|e| e.to_string());
        assert!(
            msg.starts_with("/etc/u.json:3:") && msg.contains("user y: duplicate id 2"),
            "{msg}"
        );
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
