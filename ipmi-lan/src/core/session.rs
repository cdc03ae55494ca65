//! An established session: what a packet with a session ID must be to be read, the commands
//! the session layer answers itself, and everything else forwarded to `execute`.
//!
//! * A packet is read only if it is for an active session, from that session's peer address,
//!   an IPMI payload both authenticated and encrypted, with a well-formed trailer, a sequence
//!   number inside the replay window (checked before the costly integrity check, committed
//!   only after it) and a valid AuthCode. Anything else is dropped unanswered; only a valid
//!   packet counts as activity for the idle timeout.
//! * Set Session Privilege Level, Close Session and Get Session Info are answered here (the
//!   sessions live here, not in the command server), as are Get Channel Auth Caps and Get
//!   Channel Cipher Suites (`pre_session`'s answers, sealed).
//! * Everything else goes to `execute` with the session's current privilege, user ID and
//!   session ID (netipmid's options); at most `max_outstanding_per_session` calls in flight,
//!   more get "node busy". A reply too long for the console's buffer, or a failed call, is
//!   answered "unspecified error", as netipmid answers a failed call.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use openbmc_vocab::ipmi::{cc, cmd, netfn};

use super::replay::ReplayWindow;
use super::{
    Action, CloseReason, Core, ExecuteReply, ExecuteRequest, Note, Privilege, Random, Session,
    State, drop_note, requested_level,
};
use crate::crypto::SessionKeys;
use crate::wire::{self, IpmiRequest, RmcppPacket};

/// Largest response data we forward (ipmitool's receive buffer is 1 KiB, whole packet).
const MAX_RESPONSE_DATA: usize = 900;

/// An authenticated session.
pub(super) struct Active {
    /// Session handle (Get Session Info), unique among active sessions, 1-based.
    pub(super) handle: u8,
    pub(super) user_id: u8,
    pub(super) user_name: Vec<u8>,
    pub(super) keys: SessionKeys,
    /// The session's privilege limit: what Open Session granted, capped by the user's.
    pub(super) limit: Privilege,
    pub(super) current: Privilege,
    pub(super) inbound: ReplayWindow,
    pub(super) out_seq: u32,
}

/// A request forwarded to `execute`, waiting for its reply.
pub(super) struct PendingExec {
    pub(super) session_id: u32,
    request: IpmiRequest,
}

fn u32_le(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

impl<R: Random> Core<R> {
    pub(super) fn session_packet(
        &mut self,
        now: Instant,
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
            (netfn::APP, cmd::app::SET_SESSION_PRIVILEGE_LEVEL) => {
                let (code, data) = self.set_privilege(id, &req);
                self.send_sealed(id, &req.response(code, &data), out);
            }
            (netfn::APP, cmd::app::CLOSE_SESSION) => self.close_session(id, &req, out),
            (netfn::APP, cmd::app::GET_CHANNEL_AUTH_CAPABILITIES) => {
                let (code, data) = self.auth_caps(&req);
                self.send_sealed(id, &req.response(code, &data), out);
            }
            (netfn::APP, cmd::app::GET_SESSION_INFO) => {
                let (code, data) = self.session_info(id, &req);
                self.send_sealed(id, &req.response(code, &data), out);
            }
            (netfn::APP, cmd::app::GET_CHANNEL_CIPHER_SUITES) => {
                let (code, data) = self.cipher_suites(&req);
                self.send_sealed(id, &req.response(code, &data), out);
            }
            _ => self.forward(id, req, user_id, current, out),
        }
    }

    /// Hand `req` to the command server, unless the session has too many calls in flight.
    fn forward(
        &mut self,
        id: u32,
        req: IpmiRequest,
        user_id: u8,
        current: Privilege,
        out: &mut Vec<Action>,
    ) {
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

    /// The command server's answer to `token`, sealed for its session if that still exists.
    pub(super) fn forward_reply(&mut self, token: u64, reply: ExecuteReply, out: &mut Vec<Action>) {
        let Some(p) = self.pending.remove(&token) else {
            return;
        };
        if let Some(s) = self.sessions.get_mut(&p.session_id) {
            s.outstanding = s.outstanding.saturating_sub(1);
        }
        let (code, data) = match reply {
            ExecuteReply::Ok { cc, data } if data.len() <= MAX_RESPONSE_DATA => (cc, data),
            _ => (cc::UNSPECIFIED_ERROR, Vec::new()),
        };
        let msg = p.request.response(code, &data);
        self.send_sealed(p.session_id, &msg, out);
    }

    /// Set Session Privilege Level (§22.18).
    fn set_privilege(&mut self, id: u32, req: &IpmiRequest) -> (u8, Vec<u8>) {
        use cc::set_session_privilege_level::{
            REQUESTED_LEVEL_EXCEEDS_LIMIT, REQUESTED_LEVEL_NOT_AVAILABLE_FOR_USER,
        };
        let Some(State::Active(a)) = self.sessions.get_mut(&id).map(|s| &mut s.state) else {
            return (cc::UNSPECIFIED_ERROR, vec![]);
        };
        let [level] = req.data[..] else {
            return (cc::REQ_DATA_LEN_INVALID, vec![]);
        };
        match level & 0x0F {
            // 0h: no change, just report the present level.
            0 => (cc::SUCCESS, vec![a.current.level()]),
            l => match requested_level(l) {
                None => (cc::INVALID_FIELD_REQUEST, vec![]),
                // Callback and OEM are levels no LAN user of ours has.
                Some(p) if p < Privilege::User || p == Privilege::Oem => {
                    (REQUESTED_LEVEL_NOT_AVAILABLE_FOR_USER, vec![])
                }
                Some(p) if p > a.limit => (REQUESTED_LEVEL_EXCEEDS_LIMIT, vec![]),
                Some(p) => {
                    a.current = p;
                    (cc::SUCCESS, vec![p.level()])
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
                None => return (cc::SUCCESS, vec![0, counts[0], counts[1]]),
            },
        };
        let Some((s, a)) = found else {
            return (cc::INVALID_FIELD_REQUEST, vec![]);
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
        (cc::SUCCESS, d)
    }

    /// Close Session (§22.19): one's own session, or any session with Administrator privilege.
    fn close_session(&mut self, id: u32, req: &IpmiRequest, out: &mut Vec<Action>) {
        use cc::close_session::{INVALID_SESSION_HANDLE, INVALID_SESSION_ID};
        if req.data.len() < 4 {
            return self.send_sealed(id, &req.response(cc::REQ_DATA_LEN_INVALID, &[]), out);
        }
        let target = u32_le(&req.data[..4]);
        let is_admin = matches!(
            self.sessions.get(&id).map(|s| &s.state),
            Some(State::Active(a)) if a.current == Privilege::Admin
        );
        if target == id {
            self.send_sealed(id, &req.response(cc::SUCCESS, &[]), out);
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
                INVALID_SESSION_HANDLE
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
            return self.send_sealed(id, &req.response(cc::SUCCESS, &[]), out);
        }
        self.send_sealed(id, &req.response(INVALID_SESSION_ID, &[]), out);
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
}
