//! LAN users: names, passwords (RAKP needs the clear password as the HMAC key, so it cannot
//! be stored hashed), IPMI user IDs and privilege limits, and the rules a user table must
//! meet. Where the table comes from (a root-only file, read by the edge) is not this
//! module's business; there is no built-in user and no default password anywhere.

use serde::Deserialize;
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::Privilege;
use crate::wire::MAX_USER_NAME;

/// Longest user name RAKP 1 can carry.
pub const MAX_NAME: usize = MAX_USER_NAME;
/// Longest IPMI 2.0 password (and K_G).
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

/// One user as a users file states it, before the rules are applied
/// ([`UserDb::from_specs`]). No `Debug`: it holds a clear-text password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub name: String,
    pub password: String,
    pub id: u8,
    pub privilege: Privilege,
}

/// Which part of a user table broke a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserField {
    /// The list itself (empty).
    Users,
    Name,
    Password,
    Id,
    Privilege,
}

/// A user table that breaks a rule: where (the field, and the entry's name when an entry is
/// at fault) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct UserTableError {
    pub field: UserField,
    /// The offending entry's name as written (empty for [`UserField::Users`]).
    pub user: String,
    pub reason: String,
}

/// A user table being built entry by entry, so that a reader can report a broken rule at
/// the entry that broke it (the users file's reader does, while it parses).
#[derive(Default)]
pub struct UserTable {
    users: Vec<User>,
}

impl UserTable {
    /// Take one entry, if it keeps the rules: a name of 1..=16 printable ASCII bytes without
    /// spaces, not taken; a password of 1..=20 bytes; an ID 1..=63, not taken; privilege
    /// user, operator or admin.
    pub fn add(&mut self, e: UserSpec) -> Result<(), UserTableError> {
        let bad = |field, user: &str, reason: String| UserTableError {
            field,
            user: user.to_owned(),
            reason,
        };
        let n = e.name.as_str();
        if e.name.is_empty() || e.name.len() > MAX_NAME {
            return Err(bad(
                UserField::Name,
                n,
                format!("user name must be 1..={MAX_NAME} bytes"),
            ));
        }
        if !e.name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                UserField::Name,
                n,
                "user name must be printable ASCII without spaces".into(),
            ));
        }
        if e.password.is_empty() || e.password.len() > MAX_PASSWORD {
            return Err(bad(
                UserField::Password,
                n,
                format!("user {n}: password must be 1..={MAX_PASSWORD} bytes"),
            ));
        }
        if !(1..=63).contains(&e.id) {
            return Err(bad(
                UserField::Id,
                n,
                format!("user {n}: id must be 1..=63"),
            ));
        }
        if self.users.iter().any(|u| u.name == e.name.as_bytes()) {
            return Err(bad(UserField::Name, n, "duplicate user name".into()));
        }
        if self.users.iter().any(|u| u.id == e.id) {
            return Err(bad(
                UserField::Id,
                n,
                format!("user {n}: duplicate id {}", e.id),
            ));
        }
        if e.privilege < Privilege::User || e.privilege > Privilege::Admin {
            return Err(bad(
                UserField::Privilege,
                n,
                format!("user {n}: privilege must be user, operator or admin"),
            ));
        }
        self.users.push(User {
            name: e.name.into_bytes(),
            password: Secret(e.password.into_bytes()),
            id: e.id,
            privilege: e.privilege,
        });
        Ok(())
    }

    /// The table, unless it is empty (a LAN channel that would accept nobody).
    pub fn finish(self) -> Result<UserDb, UserTableError> {
        if self.users.is_empty() {
            return Err(UserTableError {
                field: UserField::Users,
                user: String::new(),
                reason: "no users: the LAN channel would accept nobody".into(),
            });
        }
        Ok(UserDb::new(self.users, None))
    }
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

    /// The table a users file describes, if it keeps the rules of [`UserTable::add`] and
    /// [`UserTable::finish`]. No K_G ([`UserDb::with_kg`]).
    pub fn from_specs(specs: Vec<UserSpec>) -> Result<Self, UserTableError> {
        let mut t = UserTable::default();
        for e in specs {
            t.add(e)?;
        }
        t.finish()
    }

    /// The table with the BMC key K_G (at most [`MAX_PASSWORD`] bytes). An all-zero key
    /// means "not set", as Get Channel Auth Caps reports it: no two-key login then.
    pub fn with_kg(self, kg: Option<Vec<u8>>) -> Self {
        UserDb {
            kg: kg.filter(|k| k.iter().any(|&b| b != 0)).map(Secret),
            ..self
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
