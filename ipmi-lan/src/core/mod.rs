//! The RMCP+ session layer as a pure state machine: datagrams, execute replies and clock
//! ticks in (with the time passed in, [`Now`]), datagrams to send, `execute` calls and log
//! notes out. No I/O, no clock, no global state; randomness comes through [`Random`]. Every
//! timeout and lock is measured on the monotonic clock (`Now::mono`); nothing here needs
//! the wall clock.
//!
//! This file holds the types the edge sees, the session table and the dispatch; the rules
//! live by concern, each tested in `tests.rs`:
//!
//! * `pre_session` — what is answered without a session: the ASF presence ping, and Get
//!   Channel Authentication Capabilities and Get Channel Cipher Suites (IPMI 1.5 framing with
//!   auth type NONE, or RMCP+ without integrity). Anything else without a session is dropped.
//! * `handshake` — Open Session and RAKP 1–4: cipher suite choice (3 and 17 only; suite 0
//!   and "none" are refused), privilege negotiation, the RAKP HMACs, unknown user ≡ wrong
//!   password, lockout charging (every RAKP 2 is charged, a proven RAKP 3 refunds it), the
//!   session table limits.
//! * `session` — an established session: every packet authenticated and encrypted, the
//!   replay window, packets bound to the peer address, Set Session Privilege Level, Close
//!   Session, Get Session Info, forwarding everything else to `execute` (bounded per
//!   session) and sealing the answers.
//! * here: the idle and setup timeouts and lock expiry ([`Core::on_tick`],
//!   [`Core::next_deadline`]).
//!
//! Building blocks: [`lockout`] (failure counts and locks per name and per source),
//! `replay` (the inbound sequence-number window), [`users`] (the user table and its rules).
//! The byte layouts are in [`crate::wire`], the cryptography in [`crate::crypto`].

mod handshake;
pub mod lockout;
mod pre_session;
mod replay;
mod session;
pub mod users;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

pub use openbmc_vocab::ipmi::Privilege;
pub use openbmc_vocab::time::Now;

use crate::crypto::CipherSuite;
use crate::wire::{self, Packet, RmcppPacket};
use handshake::Handshake;
use lockout::LockTable;
pub use lockout::LockoutPolicy;
use pre_session::Framing;
use session::{Active, PendingExec};
use users::UserDb;

/// A source of unpredictable bytes (the OS CSPRNG in the daemon, a fixed stream in tests).
pub trait Random {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError>;
}

#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("the random number generator failed")]
pub struct RandomError;

/// The operating system's CSPRNG (getrandom(2)).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        getrandom::fill(buf).map_err(|_| RandomError)
    }
}

/// Session-layer configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The channel number this LAN channel answers to (Get Channel Auth Caps, Cipher Suites).
    pub channel_number: u8,
    /// The managed system GUID sent in RAKP 2 and hashed into RAKP 2/4.
    pub guid: [u8; 16],
    /// The channel privilege limit.
    pub max_privilege: Privilege,
    /// Cipher suites offered, in order of preference.
    pub cipher_suites: Vec<CipherSuite>,
    /// An active session with no valid packet for this long is closed.
    pub idle_timeout: Duration,
    /// A session still in setup (Open Session / RAKP) for this long is dropped.
    pub setup_timeout: Duration,
    /// Sessions in the table, in setup or active.
    pub max_sessions: usize,
    /// Active sessions per user.
    pub max_sessions_per_user: usize,
    pub lockout: LockoutPolicy,
    /// `execute` calls in flight per session; more get "node busy".
    pub max_outstanding_per_session: usize,
}

impl Config {
    /// Defaults (the daemon's configuration file overrides them), for a given GUID.
    pub fn defaults(guid: [u8; 16]) -> Self {
        Config {
            channel_number: 1,
            guid,
            max_privilege: Privilege::Admin,
            cipher_suites: CipherSuite::ALL.to_vec(),
            idle_timeout: Duration::from_secs(60),
            setup_timeout: Duration::from_secs(5),
            max_sessions: 15,
            max_sessions_per_user: 4,
            lockout: LockoutPolicy {
                user_threshold: 5,
                source_threshold: 10,
                duration: Duration::from_secs(300),
            },
            max_outstanding_per_session: 8,
        }
    }
}

/// A request the edge must forward to `xyz.openbmc_project.Ipmi.Server.execute`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecuteRequest {
    pub token: u64,
    pub netfn: u8,
    pub lun: u8,
    pub cmd: u8,
    pub data: Vec<u8>,
    /// Options, as netipmid passes them.
    pub privilege: Privilege,
    pub user_id: u8,
    pub session_id: u32,
}

/// What the command server answered (or that it could not be reached).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecuteReply {
    Ok { cc: u8, data: Vec<u8> },
    Failed,
}

/// Things worth a log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    SessionOpened {
        session_id: u32,
        user: String,
        user_id: u8,
        peer: SocketAddr,
        suite: u8,
    },
    SessionClosed {
        session_id: u32,
        reason: CloseReason,
    },
    /// A login attempt failed (wrong password and unknown user look the same here too).
    AuthFailed {
        user: String,
        peer: SocketAddr,
        why: &'static str,
    },
    /// A login was refused before authentication (locked, limits).
    LoginRefused {
        user: String,
        peer: SocketAddr,
        why: &'static str,
    },
    LockEngaged(LockKey),
    LockReleased(LockKey),
    /// A packet was dropped without an answer.
    Dropped {
        peer: SocketAddr,
        why: &'static str,
    },
    RandomFailed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    CloseSession,
    ClosedByAdmin,
    IdleTimeout,
    SetupTimeout,
    Evicted,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockKey {
    User(String),
    Source(IpAddr),
}

/// Output of the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Send { to: SocketAddr, data: Vec<u8> },
    Execute(ExecuteRequest),
    Note(Note),
}

/// Bounds of the lockout tables (unknown names are tracked too, so they must be bounded).
const LOCK_TABLE_CAPACITY: usize = 1024;

/// The longest timeout or lockout the core keeps. Deadlines are `Instant + Duration`, which
/// panics on overflow; a configured span beyond this (a century) is cut to it, which nobody
/// can tell from "never".
const LONGEST_SPAN: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// One entry of the session table, from Open Session on.
struct Session {
    id: u32,
    console_id: u32,
    peer: SocketAddr,
    suite: CipherSuite,
    /// Privilege granted by Open Session.
    max_priv: Privilege,
    state: State,
    last_activity: Instant,
    outstanding: usize,
}

enum State {
    AwaitRakp1,
    AwaitRakp3(Box<Handshake>),
    Active(Box<Active>),
}

/// The session layer.
pub struct Core<R: Random> {
    cfg: Config,
    users: UserDb,
    rng: R,
    sessions: HashMap<u32, Session>,
    user_locks: LockTable<Vec<u8>>,
    source_locks: LockTable<IpAddr>,
    pending: HashMap<u64, PendingExec>,
    next_token: u64,
}

fn name_for_log(name: &[u8]) -> String {
    // The name is attacker-chosen: escape it so it cannot forge log lines.
    String::from_utf8_lossy(name).escape_debug().to_string()
}

fn drop_note(out: &mut Vec<Action>, peer: SocketAddr, why: &'static str) {
    out.push(Action::Note(Note::Dropped { peer, why }));
}

/// A privilege level named in a request's privilege field. 0 there is never the level
/// `None`: each message gives it its own meaning (Open Session "highest available", Set
/// Session Privilege Level "present level") or calls it reserved (RAKP 1, Get Channel Auth
/// Caps), and the code reading the field says which.
fn requested_level(nibble: u8) -> Option<Privilege> {
    Privilege::from_level(nibble).filter(|p| *p != Privilege::None)
}

impl<R: Random> Core<R> {
    pub fn new(mut cfg: Config, users: UserDb, rng: R) -> Self {
        cfg.idle_timeout = cfg.idle_timeout.min(LONGEST_SPAN);
        cfg.setup_timeout = cfg.setup_timeout.min(LONGEST_SPAN);
        cfg.lockout.duration = cfg.lockout.duration.min(LONGEST_SPAN);
        Core {
            cfg,
            users,
            rng,
            sessions: HashMap::new(),
            user_locks: LockTable::new(LOCK_TABLE_CAPACITY),
            source_locks: LockTable::new(LOCK_TABLE_CAPACITY),
            pending: HashMap::new(),
            next_token: 1,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Sessions in the table (setup and active).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Active (authenticated) sessions.
    pub fn active_sessions(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| matches!(s.state, State::Active(_)))
            .count()
    }

    /// The user name of an active session (tests, logs).
    pub fn session_user(&self, id: u32) -> Option<String> {
        match self.sessions.get(&id).map(|s| &s.state) {
            Some(State::Active(a)) => Some(name_for_log(&a.user_name)),
            _ => None,
        }
    }

    /// A datagram arrived from `from` at `now`.
    pub fn on_datagram(&mut self, now: Now, from: SocketAddr, data: &[u8]) -> Vec<Action> {
        let now = now.mono;
        let mut out = Vec::new();
        match wire::parse(data) {
            Err(_) => drop_note(&mut out, from, "malformed RMCP packet"),
            Ok(Packet::AsfPing { tag }) => self.asf_ping(from, tag, &mut out),
            Ok(Packet::Ipmi15 {
                session_id,
                message,
                ..
            }) => {
                if session_id != 0 {
                    drop_note(&mut out, from, "IPMI 1.5 sessions are not supported");
                } else {
                    self.presession(from, message, Framing::V15, &mut out);
                }
            }
            Ok(Packet::Rmcpp(p)) => {
                if p.session_id == 0 {
                    self.setup_packet(now, from, &p, &mut out);
                } else {
                    self.session_packet(now, from, &p, &mut out);
                }
            }
        }
        out
    }

    /// The command server answered request `token`.
    pub fn on_execute_reply(&mut self, token: u64, reply: ExecuteReply) -> Vec<Action> {
        let mut out = Vec::new();
        self.forward_reply(token, reply, &mut out);
        out
    }

    /// When [`Core::on_tick`] next has something to expire, if anything (monotonic): the
    /// edge sleeps until then, so an idle channel (no sessions, no failures remembered) never
    /// wakes.
    pub fn next_deadline(&self) -> Option<Instant> {
        let (idle, setup) = (self.cfg.idle_timeout, self.cfg.setup_timeout);
        let d = self.cfg.lockout.duration;
        self.sessions
            .values()
            .map(|s| {
                s.last_activity
                    + match s.state {
                        State::Active(_) => idle,
                        _ => setup,
                    }
            })
            .chain(self.user_locks.next_expiry(d))
            .chain(self.source_locks.next_expiry(d))
            .min()
    }

    /// Time passed: expire sessions and locks.
    pub fn on_tick(&mut self, now: Now) -> Vec<Action> {
        let now = now.mono;
        let mut out = Vec::new();
        let (idle, setup) = (self.cfg.idle_timeout, self.cfg.setup_timeout);
        let mut expired = Vec::new();
        self.sessions.retain(|id, s| {
            let (limit, reason) = match s.state {
                State::Active(_) => (idle, CloseReason::IdleTimeout),
                _ => (setup, CloseReason::SetupTimeout),
            };
            let keep = now.saturating_duration_since(s.last_activity) < limit;
            if !keep {
                expired.push((*id, reason));
            }
            keep
        });
        for (session_id, reason) in expired {
            out.push(Action::Note(Note::SessionClosed { session_id, reason }));
        }
        self.pending
            .retain(|_, p| self.sessions.contains_key(&p.session_id));
        let d = self.cfg.lockout.duration;
        for k in self.user_locks.expire(now, d) {
            out.push(Action::Note(Note::LockReleased(LockKey::User(
                name_for_log(&k),
            ))));
        }
        for k in self.source_locks.expire(now, d) {
            out.push(Action::Note(Note::LockReleased(LockKey::Source(k))));
        }
        out
    }

    /// A session-less RMCP+ packet (session ID 0): a pre-session command or a setup message.
    fn setup_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        p: &RmcppPacket<'_>,
        out: &mut Vec<Action>,
    ) {
        if p.encrypted || p.authenticated || !p.trailer.is_empty() {
            return drop_note(
                out,
                from,
                "session-less packet with integrity or encryption",
            );
        }
        match p.payload_type {
            wire::PAYLOAD_IPMI => self.presession(from, p.payload, Framing::V20, out),
            wire::PAYLOAD_OPEN_SESSION_REQUEST => self.open_session(now, from, p.payload, out),
            wire::PAYLOAD_RAKP1 => self.rakp1(now, from, p.payload, out),
            wire::PAYLOAD_RAKP3 => self.rakp3(now, from, p.payload, out),
            _ => drop_note(out, from, "unexpected payload type"),
        }
    }

    fn random<const N: usize>(&mut self, out: &mut Vec<Action>) -> Option<[u8; N]> {
        let mut b = [0u8; N];
        match self.rng.fill(&mut b) {
            Ok(()) => Some(b),
            Err(_) => {
                out.push(Action::Note(Note::RandomFailed));
                None
            }
        }
    }
}
