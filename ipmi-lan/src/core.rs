//! The RMCP+ session layer as a pure state machine: datagrams, execute replies and clock
//! ticks in (with the time passed in), datagrams to send, `execute` calls and log notes out.
//! No I/O, no clock, no global state; randomness comes through [`Random`].
//!
//! Every rule lives here: which packets are answered before a session exists, how a session
//! is opened and authenticated (RAKP 1–4), what is refused (cipher suite 0, unauthenticated or
//! unencrypted packets inside a session, replays), lockout, session limits and timeouts, and
//! which commands the session layer answers itself rather than forwarding.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::crypto::{CipherSuite, RakpParams, SessionKeys, ct_eq};
use crate::lockout::{Charge, LockTable, LockoutPolicy};
use crate::session::{Privilege, ReplayWindow};
use crate::users::{Secret, UserDb};
use crate::wire::{self, IpmiRequest, Packet, RmcppPacket};

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

/// RAKP / Open Session status codes (Table 13-15).
pub mod status {
    pub const NO_ERRORS: u8 = 0x00;
    pub const INSUFFICIENT_RESOURCES: u8 = 0x01;
    pub const INVALID_SESSION_ID: u8 = 0x02;
    pub const INVALID_AUTH_ALGORITHM: u8 = 0x04;
    pub const INVALID_INTEGRITY_ALGORITHM: u8 = 0x05;
    pub const INVALID_ROLE: u8 = 0x09;
    pub const UNAUTHORIZED_ROLE: u8 = 0x0A;
    pub const INVALID_NAME_LENGTH: u8 = 0x0C;
    pub const UNAUTHORIZED_NAME: u8 = 0x0D;
    pub const INVALID_INTEGRITY_CHECK: u8 = 0x0F;
    pub const INVALID_CONFIDENTIALITY_ALGORITHM: u8 = 0x10;
    pub const NO_CIPHER_SUITE_MATCH: u8 = 0x11;
    pub const ILLEGAL_PARAMETER: u8 = 0x12;
}

/// IPMI completion codes used by the session layer.
pub mod cc {
    pub const OK: u8 = 0x00;
    pub const NODE_BUSY: u8 = 0xC0;
    pub const REQ_DATA_LEN_INVALID: u8 = 0xC7;
    pub const INVALID_DATA_FIELD: u8 = 0xCC;
    pub const UNSPECIFIED: u8 = 0xFF;
    /// Set Session Privilege Level: level not available for this user.
    pub const PRIV_NOT_AVAILABLE: u8 = 0x80;
    /// Set Session Privilege Level: level exceeds the channel/user limit.
    pub const PRIV_EXCEEDS_LIMIT: u8 = 0x81;
    /// Close Session: invalid session ID.
    pub const INVALID_SESSION_ID: u8 = 0x87;
    /// Close Session: invalid session handle.
    pub const INVALID_SESSION_HANDLE: u8 = 0x88;
}

pub const NETFN_APP: u8 = 0x06;
pub const CMD_GET_CHANNEL_AUTH_CAPS: u8 = 0x38;
pub const CMD_SET_SESSION_PRIVILEGE: u8 = 0x3B;
pub const CMD_CLOSE_SESSION: u8 = 0x3C;
pub const CMD_GET_SESSION_INFO: u8 = 0x3D;
pub const CMD_GET_CHANNEL_CIPHER_SUITES: u8 = 0x54;

/// Largest response data we forward (ipmitool's receive buffer is 1 KiB, whole packet).
const MAX_RESPONSE_DATA: usize = 900;
/// Bounds of the lockout tables (unknown names are tracked too, so they must be bounded).
const LOCK_TABLE_CAPACITY: usize = 1024;

struct Session {
    id: u32,
    console_id: u32,
    peer: SocketAddr,
    suite: CipherSuite,
    /// Privilege granted by Open Session.
    max_priv: Privilege,
    state: State,
    last_activity: Duration,
    outstanding: usize,
}

enum State {
    AwaitRakp1,
    AwaitRakp3(Box<Handshake>),
    Active(Box<Active>),
}

struct Handshake {
    /// The RAKP 1 payload and our RAKP 2 datagram, to answer a retransmission identically.
    rakp1: Vec<u8>,
    rakp2: Vec<u8>,
    rm: [u8; 16],
    rc: [u8; 16],
    role: u8,
    name: Vec<u8>,
    kuid: Secret,
    /// (user id, session privilege limit) when the name is a real user.
    user: Option<(u8, Privilege)>,
}

struct Active {
    /// Session handle (Get Session Info), unique among active sessions, 1-based.
    handle: u8,
    user_id: u8,
    user_name: Vec<u8>,
    keys: SessionKeys,
    limit: Privilege,
    current: Privilege,
    inbound: ReplayWindow,
    out_seq: u32,
}

struct PendingExec {
    session_id: u32,
    request: IpmiRequest,
}

/// How a pre-session request arrived, so the answer goes back the same way.
#[derive(Clone, Copy)]
enum Framing {
    V15,
    V20,
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

fn u32_le(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

impl<R: Random> Core<R> {
    pub fn new(cfg: Config, users: UserDb, rng: R) -> Self {
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

    /// A datagram arrived from `from`.
    pub fn on_datagram(&mut self, now: Duration, from: SocketAddr, data: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        match wire::parse(data) {
            Err(_) => drop_note(&mut out, from, "malformed RMCP packet"),
            Ok(Packet::AsfPing { tag }) => out.push(Action::Send {
                to: from,
                data: wire::asf_pong(tag),
            }),
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
        let Some(p) = self.pending.remove(&token) else {
            return out;
        };
        if let Some(s) = self.sessions.get_mut(&p.session_id) {
            s.outstanding = s.outstanding.saturating_sub(1);
        }
        let (code, data) = match reply {
            ExecuteReply::Ok { cc, data } if data.len() <= MAX_RESPONSE_DATA => (cc, data),
            _ => (cc::UNSPECIFIED, Vec::new()),
        };
        let msg = p.request.response(code, &data);
        self.send_sealed(p.session_id, &msg, &mut out);
        out
    }

    /// When [`Core::on_tick`] next has something to expire, if anything: the edge sleeps
    /// until then, so an idle channel (no sessions, no failures remembered) never wakes.
    pub fn next_deadline(&self) -> Option<Duration> {
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
    pub fn on_tick(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        let (idle, setup) = (self.cfg.idle_timeout, self.cfg.setup_timeout);
        let mut expired = Vec::new();
        self.sessions.retain(|id, s| {
            let (limit, reason) = match s.state {
                State::Active(_) => (idle, CloseReason::IdleTimeout),
                _ => (setup, CloseReason::SetupTimeout),
            };
            let keep = now.saturating_sub(s.last_activity) < limit;
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

    // ---- before a session: Get Channel Auth Caps and Get Channel Cipher Suites only ----

    fn presession(&mut self, from: SocketAddr, message: &[u8], f: Framing, out: &mut Vec<Action>) {
        let Ok(req) = IpmiRequest::decode(message) else {
            return drop_note(out, from, "malformed IPMI message");
        };
        let answer = match (req.netfn, req.cmd) {
            (NETFN_APP, CMD_GET_CHANNEL_AUTH_CAPS) => self.auth_caps(&req),
            (NETFN_APP, CMD_GET_CHANNEL_CIPHER_SUITES) => self.cipher_suites(&req),
            _ => return drop_note(out, from, "command needs a session"),
        };
        let msg = req.response(answer.0, &answer.1);
        let data = match f {
            Framing::V15 => wire::ipmi15_packet(&msg),
            Framing::V20 => wire::rmcpp_plain(wire::PAYLOAD_IPMI, 0, 0, &msg),
        };
        out.push(Action::Send { to: from, data });
    }

    /// Get Channel Authentication Capabilities (§22.13).
    fn auth_caps(&self, req: &IpmiRequest) -> (u8, Vec<u8>) {
        let [chan, priv_byte] = req.data[..] else {
            return (cc::REQ_DATA_LEN_INVALID, vec![]);
        };
        let ch = chan & 0x0F;
        if (ch != 0x0E && ch != self.cfg.channel_number)
            || Privilege::from_level(priv_byte & 0x0F).is_none()
        {
            return (cc::INVALID_DATA_FIELD, vec![]);
        }
        let v2 = chan & 0x80 != 0;
        let kg = if self.users.kg().is_some() { 0x20 } else { 0 };
        // No IPMI 1.5 authentication type is offered (not even "none"): only RMCP+ logins.
        // Byte 3: non-null user names only (no null or anonymous users).
        (
            cc::OK,
            vec![
                self.cfg.channel_number,
                if v2 { 0x80 } else { 0x00 },
                0x04 | kg,
                if v2 { 0x02 } else { 0x00 },
                0,
                0,
                0,
                0,
            ],
        )
    }

    /// Get Channel Cipher Suites (§22.15): 16-byte pages of the record list.
    fn cipher_suites(&self, req: &IpmiRequest) -> (u8, Vec<u8>) {
        let [chan, payload_type, index] = req.data[..] else {
            return (cc::REQ_DATA_LEN_INVALID, vec![]);
        };
        let ch = chan & 0x0F;
        if (ch != 0x0E && ch != self.cfg.channel_number) || payload_type & 0x3F != 0 {
            return (cc::INVALID_DATA_FIELD, vec![]);
        }
        let mut records = Vec::new();
        if index & 0x80 != 0 {
            // By cipher suite: start-of-record 0xC0, suite ID, then tagged algorithms.
            for s in &self.cfg.cipher_suites {
                let (a, i, c) = s.algorithms();
                records.extend_from_slice(&[0xC0, s.id(), a, 0x40 | i, 0x80 | c]);
            }
        } else {
            // Supported algorithms: each tagged algorithm once.
            for tag in [0x00u8, 0x40, 0x80] {
                let mut seen = Vec::new();
                for s in &self.cfg.cipher_suites {
                    let (a, i, c) = s.algorithms();
                    let alg = match tag {
                        0x00 => a,
                        0x40 => i,
                        _ => c,
                    };
                    if !seen.contains(&alg) {
                        seen.push(alg);
                        records.push(tag | alg);
                    }
                }
            }
        }
        let start = usize::from(index & 0x3F) * 16;
        let page = records.get(start..).unwrap_or(&[]);
        let mut data = vec![self.cfg.channel_number];
        data.extend_from_slice(&page[..page.len().min(16)]);
        (cc::OK, data)
    }

    // ---- session setup: Open Session, RAKP 1/3 (session ID 0 in the RMCP+ header) ----

    fn setup_packet(
        &mut self,
        now: Duration,
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

    fn open_session(&mut self, now: Duration, from: SocketAddr, p: &[u8], out: &mut Vec<Action>) {
        if p.len() < 8 {
            return drop_note(out, from, "short Open Session Request");
        }
        let tag = p[0];
        let console_id = u32_le(&p[4..8]);
        let error = |status: u8, out: &mut Vec<Action>| {
            let mut r = vec![tag, status, 0, 0];
            r.extend_from_slice(&console_id.to_le_bytes());
            out.push(Action::Send {
                to: from,
                data: wire::rmcpp_plain(wire::PAYLOAD_OPEN_SESSION_RESPONSE, 0, 0, &r),
            });
        };
        if p.len() < 32 {
            return error(status::ILLEGAL_PARAMETER, out);
        }
        if console_id == 0 {
            return error(status::INVALID_SESSION_ID, out);
        }
        // Each algorithm payload: type, 2 reserved, length 8, algorithm, 3 reserved.
        let alg = |off: usize, kind: u8| -> Option<u8> {
            (p[off] == kind && p[off + 3] == 8).then_some(p[off + 4] & 0x3F)
        };
        let (Some(a), Some(i), Some(c)) = (alg(8, 0), alg(16, 1), alg(24, 2)) else {
            return error(status::ILLEGAL_PARAMETER, out);
        };
        let offered = &self.cfg.cipher_suites;
        let Some(suite) = CipherSuite::from_algorithms(a, i, c).filter(|s| offered.contains(s))
        else {
            // Name the first algorithm we do not do; cipher suite 0 lands here.
            let status = if !offered.iter().any(|s| s.algorithms().0 == a) {
                status::INVALID_AUTH_ALGORITHM
            } else if !offered.iter().any(|s| s.algorithms().1 == i) {
                status::INVALID_INTEGRITY_ALGORITHM
            } else if !offered.iter().any(|s| s.algorithms().2 == c) {
                status::INVALID_CONFIDENTIALITY_ALGORITHM
            } else {
                status::NO_CIPHER_SUITE_MATCH
            };
            drop_note(out, from, "Open Session with an unsupported cipher suite");
            return error(status, out);
        };
        let granted = match p[1] & 0x0F {
            0 => self.cfg.max_privilege,
            l => match Privilege::from_level(l) {
                None => return error(status::INVALID_ROLE, out),
                Some(r) if r > self.cfg.max_privilege => {
                    return error(status::UNAUTHORIZED_ROLE, out);
                }
                Some(r) => r,
            },
        };
        if self.sessions.len() >= self.cfg.max_sessions && !self.evict_setup(out) {
            out.push(Action::Note(Note::LoginRefused {
                user: String::new(),
                peer: from,
                why: "session table full",
            }));
            return error(status::INSUFFICIENT_RESOURCES, out);
        }
        let Some(id) = self.new_session_id(out) else {
            return;
        };
        self.sessions.insert(
            id,
            Session {
                id,
                console_id,
                peer: from,
                suite,
                max_priv: granted,
                state: State::AwaitRakp1,
                last_activity: now,
                outstanding: 0,
            },
        );
        let (a, i, c) = suite.algorithms();
        let mut r = vec![tag, status::NO_ERRORS, granted.level(), 0];
        r.extend_from_slice(&console_id.to_le_bytes());
        r.extend_from_slice(&id.to_le_bytes());
        r.extend_from_slice(&[0, 0, 0, 8, a, 0, 0, 0]);
        r.extend_from_slice(&[1, 0, 0, 8, i, 0, 0, 0]);
        r.extend_from_slice(&[2, 0, 0, 8, c, 0, 0, 0]);
        out.push(Action::Send {
            to: from,
            data: wire::rmcpp_plain(wire::PAYLOAD_OPEN_SESSION_RESPONSE, 0, 0, &r),
        });
    }

    /// Make room for a new session by dropping the oldest one still in setup.
    fn evict_setup(&mut self, out: &mut Vec<Action>) -> bool {
        let victim = self
            .sessions
            .values()
            .filter(|s| !matches!(s.state, State::Active(_)))
            .min_by_key(|s| s.last_activity)
            .map(|s| s.id);
        match victim {
            Some(id) => {
                self.sessions.remove(&id);
                out.push(Action::Note(Note::SessionClosed {
                    session_id: id,
                    reason: CloseReason::Evicted,
                }));
                true
            }
            None => false,
        }
    }

    fn new_session_id(&mut self, out: &mut Vec<Action>) -> Option<u32> {
        for _ in 0..16 {
            let id = u32::from_le_bytes(self.random::<4>(out)?);
            if id != 0 && !self.sessions.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    fn rakp1(&mut self, now: Duration, from: SocketAddr, p: &[u8], out: &mut Vec<Action>) {
        if p.len() < 28 {
            return drop_note(out, from, "short RAKP 1");
        }
        let id = u32_le(&p[4..8]);
        let Some(s) = self.sessions.get(&id).filter(|s| s.peer == from) else {
            return drop_note(out, from, "RAKP 1 for an unknown session");
        };
        let (console_id, suite, max_priv) = (s.console_id, s.suite, s.max_priv);
        match &s.state {
            State::AwaitRakp1 => {}
            // A retransmitted RAKP 1 gets the same RAKP 2 (and is not charged twice).
            State::AwaitRakp3(h) if h.rakp1 == p => {
                let data = h.rakp2.clone();
                out.push(Action::Send { to: from, data });
                return;
            }
            _ => return drop_note(out, from, "RAKP 1 out of sequence"),
        }
        let tag = p[0];
        let fail = |this: &mut Self, status: u8, out: &mut Vec<Action>| {
            this.sessions.remove(&id);
            let mut r = vec![tag, status, 0, 0];
            r.extend_from_slice(&console_id.to_le_bytes());
            out.push(Action::Send {
                to: from,
                data: wire::rmcpp_plain(wire::PAYLOAD_RAKP2, 0, 0, &r),
            });
        };
        let name_len = usize::from(p[27]);
        if name_len > crate::users::MAX_NAME {
            return fail(self, status::INVALID_NAME_LENGTH, out);
        }
        let Some(name) = p.get(28..28 + name_len) else {
            return fail(self, status::ILLEGAL_PARAMETER, out);
        };
        let role = p[24];
        let requested = match Privilege::from_level(role & 0x0F) {
            None => return fail(self, status::INVALID_ROLE, out),
            Some(r) if r > max_priv => return fail(self, status::UNAUTHORIZED_ROLE, out),
            Some(r) => r,
        };
        let name = name.to_vec();
        if self.user_locks.is_locked(&name, now) || self.source_locks.is_locked(&from.ip(), now) {
            out.push(Action::Note(Note::LoginRefused {
                user: name_for_log(&name),
                peer: from,
                why: "locked out after repeated failures",
            }));
            return fail(self, status::UNAUTHORIZED_NAME, out);
        }
        // Both paths draw the same random bytes, so an unknown name costs what a known one
        // does; the unknown name's RAKP 2 is keyed by a throw-away random "password" and so
        // looks like any other until RAKP 3 fails, exactly as a wrong password would.
        let Some(decoy) = self.random::<20>(out) else {
            return;
        };
        let Some(rc) = self.random::<16>(out) else {
            return;
        };
        let (kuid, user) = match self.users.lookup(&name) {
            Some(u) => (u.password.clone(), Some((u.id, requested.min(u.privilege)))),
            None => (Secret(decoy.to_vec()), None),
        };
        let mut rm = [0u8; 16];
        rm.copy_from_slice(&p[8..24]);
        let params = RakpParams {
            suite,
            console_session_id: console_id,
            bmc_session_id: id,
            console_random: &rm,
            bmc_random: &rc,
            guid: &self.cfg.guid,
            role,
            user_name: &name,
        };
        let code = params.rakp2_auth_code(&kuid.0);
        let mut r = vec![tag, status::NO_ERRORS, 0, 0];
        r.extend_from_slice(&console_id.to_le_bytes());
        r.extend_from_slice(&rc);
        r.extend_from_slice(&self.cfg.guid);
        r.extend_from_slice(&code);
        let rakp2 = wire::rmcpp_plain(wire::PAYLOAD_RAKP2, 0, 0, &r);
        self.charge(now, &name, from.ip(), out);
        if let Some(s) = self.sessions.get_mut(&id) {
            s.state = State::AwaitRakp3(Box::new(Handshake {
                rakp1: p.to_vec(),
                rakp2: rakp2.clone(),
                rm,
                rc,
                role,
                name,
                kuid,
                user,
            }));
            s.last_activity = now;
        }
        out.push(Action::Send {
            to: from,
            data: rakp2,
        });
    }

    fn charge(&mut self, now: Duration, name: &[u8], ip: IpAddr, out: &mut Vec<Action>) {
        let pol = self.cfg.lockout;
        if self
            .user_locks
            .charge(&name.to_vec(), now, pol.user_threshold, pol.duration)
            == Charge::Locked
        {
            out.push(Action::Note(Note::LockEngaged(LockKey::User(
                name_for_log(name),
            ))));
        }
        if self
            .source_locks
            .charge(&ip, now, pol.source_threshold, pol.duration)
            == Charge::Locked
        {
            out.push(Action::Note(Note::LockEngaged(LockKey::Source(ip))));
        }
    }

    fn rakp3(&mut self, now: Duration, from: SocketAddr, p: &[u8], out: &mut Vec<Action>) {
        if p.len() < 8 {
            return drop_note(out, from, "short RAKP 3");
        }
        let id = u32_le(&p[4..8]);
        let ok_state = self
            .sessions
            .get(&id)
            .is_some_and(|s| s.peer == from && matches!(s.state, State::AwaitRakp3(_)));
        if !ok_state {
            return drop_note(out, from, "RAKP 3 for an unknown session");
        }
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        let State::AwaitRakp3(h) = s.state else {
            return;
        };
        let (tag, console_status) = (p[0], p[1]);
        let user = name_for_log(&h.name);
        if console_status != status::NO_ERRORS {
            // The console found our RAKP 2 wrong: a wrong password (or unknown name). The
            // attempt was already charged when RAKP 2 went out.
            out.push(Action::Note(Note::AuthFailed {
                user,
                peer: from,
                why: "the console rejected RAKP 2",
            }));
            return;
        }
        let rakp4_error = |st: u8, out: &mut Vec<Action>| {
            let mut r = vec![tag, st, 0, 0];
            r.extend_from_slice(&s.console_id.to_le_bytes());
            out.push(Action::Send {
                to: from,
                data: wire::rmcpp_plain(wire::PAYLOAD_RAKP4, 0, 0, &r),
            });
        };
        let params = RakpParams {
            suite: s.suite,
            console_session_id: s.console_id,
            bmc_session_id: id,
            console_random: &h.rm,
            bmc_random: &h.rc,
            guid: &self.cfg.guid,
            role: h.role,
            user_name: &h.name,
        };
        let expected = params.rakp3_auth_code(&h.kuid.0);
        let mac_ok = ct_eq(&expected, &p[8..]);
        let Some((user_id, limit)) = h.user.filter(|_| mac_ok) else {
            out.push(Action::Note(Note::AuthFailed {
                user,
                peer: from,
                why: "RAKP 3 auth code mismatch",
            }));
            return rakp4_error(status::INVALID_INTEGRITY_CHECK, out);
        };
        // The password is proven: forget this name's and this source's failures.
        self.user_locks.clear(&h.name);
        self.source_locks.clear(&from.ip());
        let active_for_user = self
            .sessions
            .values()
            .filter(|o| matches!(&o.state, State::Active(a) if a.user_id == user_id))
            .count();
        if active_for_user >= self.cfg.max_sessions_per_user {
            out.push(Action::Note(Note::LoginRefused {
                user,
                peer: from,
                why: "too many sessions for this user",
            }));
            return rakp4_error(status::INSUFFICIENT_RESOURCES, out);
        }
        let handle = (1..=u8::MAX)
            .find(|n| {
                !self
                    .sessions
                    .values()
                    .any(|o| matches!(&o.state, State::Active(a) if a.handle == *n))
            })
            .unwrap_or(u8::MAX);
        let keys = params.session_keys(&h.kuid.0, self.users.kg());
        let icv = params.rakp4_icv(&keys.sik);
        let mut r = vec![tag, status::NO_ERRORS, 0, 0];
        r.extend_from_slice(&s.console_id.to_le_bytes());
        r.extend_from_slice(&icv);
        out.push(Action::Send {
            to: from,
            data: wire::rmcpp_plain(wire::PAYLOAD_RAKP4, 0, 0, &r),
        });
        out.push(Action::Note(Note::SessionOpened {
            session_id: id,
            user,
            user_id,
            peer: from,
            suite: s.suite.id(),
        }));
        let session = Session {
            state: State::Active(Box::new(Active {
                handle,
                user_id,
                user_name: h.name.clone(),
                keys,
                limit,
                // Sessions start at User level (or lower, if that is the limit) until Set
                // Session Privilege Level raises them.
                current: limit.min(Privilege::User),
                inbound: ReplayWindow::default(),
                out_seq: 0,
            })),
            last_activity: now,
            ..s
        };
        self.sessions.insert(id, session);
    }

    // ---- inside a session ----

    fn session_packet(
        &mut self,
        now: Duration,
        from: SocketAddr,
        p: &RmcppPacket<'_>,
        out: &mut Vec<Action>,
    ) {
        let Some(s) = self.sessions.get_mut(&p.session_id) else {
            return drop_note(out, from, "unknown session");
        };
        if s.peer != from {
            return drop_note(out, from, "session packet from another address");
        }
        let State::Active(a) = &mut s.state else {
            return drop_note(out, from, "session not yet active");
        };
        if p.payload_type != wire::PAYLOAD_IPMI || !p.authenticated || !p.encrypted {
            return drop_note(out, from, "session packet not authenticated and encrypted");
        }
        let Some((covered, code)) = p.integrity_parts(a.keys.suite.auth_code_len()) else {
            return drop_note(out, from, "malformed session trailer");
        };
        if !a.inbound.check(p.seq) {
            return drop_note(out, from, "sequence number replayed or out of window");
        }
        if !a.keys.verify_auth_code(covered, code) {
            return drop_note(out, from, "integrity check failed");
        }
        a.inbound.commit(p.seq);
        s.last_activity = now;
        let Some(plain) = a.keys.decrypt(p.payload) else {
            return drop_note(out, from, "payload does not decrypt");
        };
        let Ok(req) = IpmiRequest::decode(&plain) else {
            return drop_note(out, from, "malformed IPMI message");
        };
        let id = s.id;
        let (user_id, current) = (a.user_id, a.current);
        match (req.netfn, req.cmd) {
            (NETFN_APP, CMD_SET_SESSION_PRIVILEGE) => {
                let (code, data) = self.set_privilege(id, &req);
                self.send_sealed(id, &req.response(code, &data), out);
            }
            (NETFN_APP, CMD_CLOSE_SESSION) => self.close_session(id, &req, out),
            (NETFN_APP, CMD_GET_CHANNEL_AUTH_CAPS) => {
                let (code, data) = self.auth_caps(&req);
                self.send_sealed(id, &req.response(code, &data), out);
            }
            (NETFN_APP, CMD_GET_SESSION_INFO) => {
                let (code, data) = self.session_info(id, &req);
                self.send_sealed(id, &req.response(code, &data), out);
            }
            (NETFN_APP, CMD_GET_CHANNEL_CIPHER_SUITES) => {
                let (code, data) = self.cipher_suites(&req);
                self.send_sealed(id, &req.response(code, &data), out);
            }
            _ => {
                let busy = self
                    .sessions
                    .get(&id)
                    .is_none_or(|s| s.outstanding >= self.cfg.max_outstanding_per_session);
                if busy {
                    self.send_sealed(id, &req.response(cc::NODE_BUSY, &[]), out);
                    return;
                }
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.outstanding += 1;
                }
                let token = self.next_token;
                self.next_token = self.next_token.wrapping_add(1);
                out.push(Action::Execute(ExecuteRequest {
                    token,
                    netfn: req.netfn,
                    lun: req.rs_lun,
                    cmd: req.cmd,
                    data: req.data.clone(),
                    privilege: current,
                    user_id,
                    session_id: id,
                }));
                self.pending.insert(
                    token,
                    PendingExec {
                        session_id: id,
                        request: req,
                    },
                );
            }
        }
    }

    /// Set Session Privilege Level (§22.18).
    fn set_privilege(&mut self, id: u32, req: &IpmiRequest) -> (u8, Vec<u8>) {
        let Some(State::Active(a)) = self.sessions.get_mut(&id).map(|s| &mut s.state) else {
            return (cc::UNSPECIFIED, vec![]);
        };
        let [level] = req.data[..] else {
            return (cc::REQ_DATA_LEN_INVALID, vec![]);
        };
        match level & 0x0F {
            0 => (cc::OK, vec![a.current.level()]),
            l => match Privilege::from_level(l) {
                None => (cc::INVALID_DATA_FIELD, vec![]),
                Some(p) if p < Privilege::User || p == Privilege::Oem => {
                    (cc::PRIV_NOT_AVAILABLE, vec![])
                }
                Some(p) if p > a.limit => (cc::PRIV_EXCEEDS_LIMIT, vec![]),
                Some(p) => {
                    a.current = p;
                    (cc::OK, vec![p.level()])
                }
            },
        }
    }

    /// Get Session Info (§22.20): the sessions live here, not in the command server.
    fn session_info(&self, id: u32, req: &IpmiRequest) -> (u8, Vec<u8>) {
        let mut active: Vec<(&Session, &Active)> = self
            .sessions
            .values()
            .filter_map(|s| match &s.state {
                State::Active(a) => Some((s, a.as_ref())),
                _ => None,
            })
            .collect();
        active.sort_by_key(|(_, a)| a.handle);
        let slots = (self.cfg.max_sessions.min(63)) as u8;
        let counts = [slots, active.len().min(63) as u8];
        let found = match req.data.first() {
            None => return (cc::REQ_DATA_LEN_INVALID, vec![]),
            Some(0x00) => active.iter().find(|(s, _)| s.id == id),
            Some(0xFE) => match req.data.get(1) {
                Some(h) => active.iter().find(|(_, a)| a.handle == *h),
                None => return (cc::REQ_DATA_LEN_INVALID, vec![]),
            },
            Some(0xFF) => match req.data.get(1..5) {
                Some(b) => active.iter().find(|(s, _)| s.id == u32_le(b)),
                None => return (cc::REQ_DATA_LEN_INVALID, vec![]),
            },
            Some(&n) => match active.get(usize::from(n) - 1) {
                Some(x) => Some(x),
                // An index past the active sessions: handle 0 and the counts only.
                None => return (cc::OK, vec![0, counts[0], counts[1]]),
            },
        };
        let Some((s, a)) = found else {
            return (cc::INVALID_DATA_FIELD, vec![]);
        };
        let mut d = vec![
            a.handle,
            counts[0],
            counts[1],
            a.user_id & 0x3F,
            a.current.level(),
            // Session protocol auxiliary data 1h = IPMI 2.0 / RMCP+, then the channel.
            0x10 | (self.cfg.channel_number & 0x0F),
        ];
        match s.peer.ip() {
            IpAddr::V4(v4) => d.extend_from_slice(&v4.octets()),
            IpAddr::V6(_) => d.extend_from_slice(&[0; 4]),
        }
        // The console's MAC address is not known to a UDP socket.
        d.extend_from_slice(&[0; 6]);
        d.extend_from_slice(&s.peer.port().to_le_bytes());
        (cc::OK, d)
    }

    /// Close Session (§22.19): one's own session, or any session with Administrator privilege.
    fn close_session(&mut self, id: u32, req: &IpmiRequest, out: &mut Vec<Action>) {
        if req.data.len() < 4 {
            return self.send_sealed(id, &req.response(cc::REQ_DATA_LEN_INVALID, &[]), out);
        }
        let target = u32_le(&req.data[..4]);
        let is_admin = matches!(
            self.sessions.get(&id).map(|s| &s.state),
            Some(State::Active(a)) if a.current == Privilege::Admin
        );
        if target == id {
            self.send_sealed(id, &req.response(cc::OK, &[]), out);
            self.sessions.remove(&id);
            self.pending.retain(|_, p| p.session_id != id);
            out.push(Action::Note(Note::SessionClosed {
                session_id: id,
                reason: CloseReason::CloseSession,
            }));
            return;
        }
        if target == 0 {
            // Session handles (ID 0 + handle byte) are not tracked by this front end.
            let code = if req.data.len() >= 5 {
                cc::INVALID_SESSION_HANDLE
            } else {
                cc::REQ_DATA_LEN_INVALID
            };
            return self.send_sealed(id, &req.response(code, &[]), out);
        }
        if is_admin && self.sessions.contains_key(&target) {
            self.sessions.remove(&target);
            self.pending.retain(|_, p| p.session_id != target);
            out.push(Action::Note(Note::SessionClosed {
                session_id: target,
                reason: CloseReason::ClosedByAdmin,
            }));
            return self.send_sealed(id, &req.response(cc::OK, &[]), out);
        }
        self.send_sealed(id, &req.response(cc::INVALID_SESSION_ID, &[]), out);
    }

    /// Encrypt and authenticate `msg` for session `id` and queue it.
    fn send_sealed(&mut self, id: u32, msg: &[u8], out: &mut Vec<Action>) {
        let Some(iv) = self.random::<16>(out) else {
            return;
        };
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let State::Active(a) = &mut s.state else {
            return;
        };
        a.out_seq = a.out_seq.wrapping_add(1).max(1);
        let payload = a.keys.encrypt(&iv, msg);
        let keys = &a.keys;
        let data = wire::rmcpp_authenticated(
            wire::PAYLOAD_IPMI,
            true,
            s.console_id,
            a.out_seq,
            &payload,
            |covered| keys.auth_code(covered),
        );
        out.push(Action::Send { to: s.peer, data });
    }

    /// The user name of an active session (tests, logs).
    pub fn session_user(&self, id: u32) -> Option<String> {
        match self.sessions.get(&id).map(|s| &s.state) {
            Some(State::Active(a)) => Some(name_for_log(&a.user_name)),
            _ => None,
        }
    }
}

fn drop_note(out: &mut Vec<Action>, peer: SocketAddr, why: &'static str) {
    out.push(Action::Note(Note::Dropped { peer, why }));
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
