//! Session setup: Open Session Request/Response and RAKP 1–4 (IPMI 2.0 §13.17–13.23), the
//! packets with session ID 0 in the RMCP+ header that carry a setup payload.
//!
//! * Open Session picks the cipher suite (only the configured ones of 3 and 17; anything
//!   else, suite 0 included, is refused naming the first algorithm we do not do) and the
//!   session's privilege limit; it makes room by evicting the oldest session still in setup.
//! * RAKP 1 names the user. An unknown name gets a RAKP 2 built exactly like a real one
//!   (same random draws, same HMAC) keyed by a throw-away password, so wrong password and
//!   unknown user fail the same way. Every RAKP 2 handed out is charged to the name and the
//!   source address at once ([`super::lockout`] says why); a locked name or source gets
//!   status "unauthorized name" before any HMAC is computed. A retransmitted RAKP 1 gets the
//!   same RAKP 2 and is not charged twice.
//! * RAKP 3 proves the password (or not): a proof refunds the charge and opens the session
//!   at User level (Set Session Privilege Level raises it), within the per-user limit.
//!
//! Every message is read by its decoder in [`crate::wire`]; the checks are made in the order
//! they always were, so the status an odd packet gets does not depend on the refactoring.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::lockout::Charge;
use super::replay::ReplayWindow;
use super::session::Active;
use super::users::Secret;
use super::{
    Action, CloseReason, Core, LockKey, Note, Privilege, Random, Session, State, drop_note,
    name_for_log, requested_level,
};
use crate::crypto::{CipherSuite, RakpParams, ct_eq};
use crate::wire::{
    self, OpenSessionRequest, OpenSessionResponse, OpenedSession, Rakp1, Rakp2, Rakp2Body, Rakp3,
    Rakp4, SetupHeader, WireError, status,
};

/// A session between RAKP 2 and RAKP 3.
pub(super) struct Handshake {
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

impl<R: Random> Core<R> {
    pub(super) fn open_session(
        &mut self,
        now: Instant,
        from: SocketAddr,
        p: &[u8],
        out: &mut Vec<Action>,
    ) {
        // Shorter than the header: nobody to address an answer to.
        let Ok(head) = SetupHeader::decode(p) else {
            return drop_note(out, from, "short Open Session Request");
        };
        let error = |status: u8, out: &mut Vec<Action>| {
            let r = OpenSessionResponse::refused(head.tag, status, head.session_id);
            out.push(Action::Send {
                to: from,
                data: wire::rmcpp_plain(wire::PAYLOAD_OPEN_SESSION_RESPONSE, 0, 0, &r.encode()),
            });
        };
        let Ok(req) = OpenSessionRequest::decode(p) else {
            return error(status::ILLEGAL_PARAMETER, out);
        };
        // A zero console ID is named before malformed algorithm payloads.
        if req.console_session_id == 0 {
            return error(status::INVALID_SESSION_ID, out);
        }
        let Ok(proposed) = req.algorithms() else {
            return error(status::ILLEGAL_PARAMETER, out);
        };
        let (a, i, c) = (proposed.auth, proposed.integrity, proposed.confidentiality);
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
        let granted = match req.requested_privilege {
            // Open Session's 0h: the highest level the channel allows.
            0 => self.cfg.max_privilege,
            l => match requested_level(l) {
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
        let console_id = req.console_session_id;
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
        let r = OpenSessionResponse {
            tag: req.tag,
            status: status::NO_ERRORS,
            console_session_id: console_id,
            session: Some(OpenedSession {
                max_privilege: granted.level(),
                bmc_session_id: id,
                algorithms: suite.algorithms().into(),
            }),
        };
        out.push(Action::Send {
            to: from,
            data: wire::rmcpp_plain(wire::PAYLOAD_OPEN_SESSION_RESPONSE, 0, 0, &r.encode()),
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

    pub(super) fn rakp1(
        &mut self,
        now: Instant,
        from: SocketAddr,
        p: &[u8],
        out: &mut Vec<Action>,
    ) {
        let Ok(r1) = Rakp1::decode(p) else {
            return drop_note(out, from, "short RAKP 1");
        };
        let id = r1.bmc_session_id;
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
        let tag = r1.tag;
        let fail = |this: &mut Self, status: u8, out: &mut Vec<Action>| {
            this.sessions.remove(&id);
            let r = Rakp2::refused(tag, status, console_id);
            out.push(Action::Send {
                to: from,
                data: wire::rmcpp_plain(wire::PAYLOAD_RAKP2, 0, 0, &r.encode()),
            });
        };
        let name = match r1.user_name() {
            Ok(n) => n,
            Err(WireError::UserNameTooLong(_)) => {
                return fail(self, status::INVALID_NAME_LENGTH, out);
            }
            Err(_) => return fail(self, status::ILLEGAL_PARAMETER, out),
        };
        let role = r1.role;
        // RAKP 1's 0h is reserved (unlike Open Session's "highest available").
        let requested = match requested_level(r1.requested_privilege()) {
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
        let rm = r1.console_random;
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
        let r = Rakp2 {
            tag,
            status: status::NO_ERRORS,
            console_session_id: console_id,
            body: Some(Rakp2Body {
                bmc_random: rc,
                guid: self.cfg.guid,
                auth_code: &code,
            }),
        };
        let rakp2 = wire::rmcpp_plain(wire::PAYLOAD_RAKP2, 0, 0, &r.encode());
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

    /// Count a handed-out RAKP 2 as a failure of `name` and of `ip` until RAKP 3 proves it.
    fn charge(&mut self, now: Instant, name: &[u8], ip: IpAddr, out: &mut Vec<Action>) {
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

    pub(super) fn rakp3(
        &mut self,
        now: Instant,
        from: SocketAddr,
        p: &[u8],
        out: &mut Vec<Action>,
    ) {
        let Ok(r3) = Rakp3::decode(p) else {
            return drop_note(out, from, "short RAKP 3");
        };
        let id = r3.bmc_session_id;
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
        let tag = r3.tag;
        let user = name_for_log(&h.name);
        if r3.status != status::NO_ERRORS {
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
            let r = Rakp4::refused(tag, st, s.console_id);
            out.push(Action::Send {
                to: from,
                data: wire::rmcpp_plain(wire::PAYLOAD_RAKP4, 0, 0, &r.encode()),
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
        let mac_ok = ct_eq(&expected, r3.auth_code);
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
        let r = Rakp4 {
            tag,
            status: status::NO_ERRORS,
            console_session_id: s.console_id,
            icv: &icv,
        };
        out.push(Action::Send {
            to: from,
            data: wire::rmcpp_plain(wire::PAYLOAD_RAKP4, 0, 0, &r.encode()),
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
}
