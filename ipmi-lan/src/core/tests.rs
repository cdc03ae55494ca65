//! Core tests: the session layer driven with virtual time (a fixed base [`Now`] moved on by
//! offsets), a deterministic "random" stream and the independent remote console in
//! [`crate::client`].

use std::net::SocketAddr;
use std::time::Duration;

use openbmc_vocab::ipmi::cc::{self, close_session, set_session_privilege_level};
use openbmc_vocab::ipmi::{cmd, netfn};

use super::users::{Secret, User, UserDb};
use super::*;
use crate::client::{Client, ClientError};
use crate::crypto::CipherSuite;
use crate::wire::{IpmiRequest, status};

/// A deterministic byte stream (a counter): tests are reproducible, and different draws
/// still differ, so session IDs and nonces are distinct.
struct Counter(u8);

impl Random for Counter {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        for b in buf {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
        Ok(())
    }
}

const S: Duration = Duration::from_secs(1);
const ADMIN_ROLE: u8 = 0x14; // administrator, name-only lookup: what ipmitool sends

fn peer() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 7], 40000))
}

fn users() -> UserDb {
    UserDb::new(
        vec![
            User {
                name: b"admin".to_vec(),
                password: Secret(b"0penBmc-secret".to_vec()),
                id: 2,
                privilege: Privilege::Admin,
            },
            User {
                name: b"viewer".to_vec(),
                password: Secret(b"look-only".to_vec()),
                id: 3,
                privilege: Privilege::User,
            },
        ],
        None,
    )
}

struct Rig {
    core: Core<Counter>,
    /// Time zero of the test: the core sees only `t0` moved on by an offset.
    t0: Now,
    now: Now,
}

impl Rig {
    fn new(tweak: impl FnOnce(&mut Config)) -> Self {
        let mut cfg = Config::defaults([0x42; 16]);
        tweak(&mut cfg);
        let t0 = Now {
            mono: Instant::now(),
            wall_usec: 1_700_000_000_000_000,
        };
        Rig {
            core: Core::new(cfg, users(), Counter(0)),
            t0,
            now: t0,
        }
    }

    /// `d` after time zero.
    fn at(&self, d: Duration) -> Now {
        self.t0.after(d)
    }

    fn feed_from(&mut self, from: SocketAddr, d: &[u8]) -> Vec<Action> {
        self.core.on_datagram(self.now, from, d)
    }

    /// Feed a datagram from the usual peer; return what is sent back to it.
    fn send(&mut self, d: &[u8]) -> Vec<Vec<u8>> {
        let from = peer();
        sent_to(&self.feed_from(from, d), from)
    }

    /// Exactly one answer.
    fn one(&mut self, d: &[u8]) -> Vec<u8> {
        let mut r = self.send(d);
        assert_eq!(r.len(), 1, "expected exactly one answer");
        r.pop().unwrap_or_default()
    }

    fn advance(&mut self, d: Duration) -> Vec<Action> {
        self.now = self.now.after(d);
        self.core.on_tick(self.now)
    }

    /// Open Session + RAKP 1 + RAKP 2 check (client side).
    fn handshake_to_rakp2(
        &mut self,
        suite: CipherSuite,
        name: &str,
        pw: &str,
    ) -> (Client, Result<(), ClientError>) {
        let mut c = Client::new(suite, name.as_bytes(), pw.as_bytes(), ADMIN_ROLE);
        let r = self.one(&c.open_session());
        if let Err(e) = c.on_open_session_response(&r) {
            return (c, Err(e));
        }
        let r = self.one(&c.rakp1([0x33; 16]));
        let res = c.on_rakp2(&r);
        (c, res)
    }

    /// A full login; Err says at which step it failed.
    fn login(&mut self, suite: CipherSuite, name: &str, pw: &str) -> Result<Client, ClientError> {
        let (mut c, r) = self.handshake_to_rakp2(suite, name, pw);
        r?;
        let r = self.one(&c.rakp3(0));
        c.on_rakp4(&r)?;
        Ok(c)
    }

    /// A sealed request; returns the decrypted response.
    fn call(&mut self, c: &mut Client, netfn: u8, cmd: u8, data: &[u8]) -> IpmiResponseT {
        let d = c.request(netfn, cmd, data);
        let r = self.one(&d);
        c.on_response(&r).map(|r| (r.cc, r.data))
    }
}

type IpmiResponseT = Result<(u8, Vec<u8>), ClientError>;

fn sent_to(actions: &[Action], to: SocketAddr) -> Vec<Vec<u8>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to: t, data } if *t == to => Some(data.clone()),
            _ => None,
        })
        .collect()
}

fn executes(actions: &[Action]) -> Vec<ExecuteRequest> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Execute(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn notes(actions: &[Action]) -> Vec<Note> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Note(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

/// The payload of an unauthenticated RMCP+ setup message.
fn setup_payload(d: &[u8]) -> Vec<u8> {
    match wire::parse(d) {
        Ok(Packet::Rmcpp(p)) => p.payload.to_vec(),
        other => panic!("not RMCP+: {other:?}"),
    }
}

fn get_auth_caps_v15(chan: u8, privilege: u8) -> Vec<u8> {
    let req = IpmiRequest {
        rs_addr: 0x20,
        netfn: netfn::APP,
        rs_lun: 0,
        rq_addr: 0x81,
        rq_seq: 0,
        rq_lun: 0,
        cmd: cmd::app::GET_CHANNEL_AUTH_CAPABILITIES,
        data: vec![chan, privilege],
    };
    wire::ipmi15_packet(&req.encode())
}

fn ipmi15_response(d: &[u8]) -> (u8, Vec<u8>) {
    match wire::parse(d) {
        Ok(Packet::Ipmi15 { message, .. }) => {
            let r = wire::IpmiResponse::decode(message);
            assert!(r.is_ok(), "{r:?}");
            r.map(|r| (r.cc, r.data)).unwrap_or_default()
        }
        other => panic!("not IPMI 1.5: {other:?}"),
    }
}

#[test]
fn asf_presence_ping_gets_pong() {
    let mut rig = Rig::new(|_| {});
    let r = rig.one(&wire::asf_ping(9));
    assert_eq!(r, wire::asf_pong(9));
}

#[test]
fn get_channel_auth_caps_before_a_session() {
    let mut rig = Rig::new(|_| {});
    let cases: [(u8, u8, u8, Vec<u8>); 6] = [
        // v2 data requested on "this channel": RMCP+ only, no 1.5 auth type, non-null users.
        (0x8E, 4, 0x00, vec![1, 0x80, 0x04, 0x02, 0, 0, 0, 0]),
        (0x81, 2, 0x00, vec![1, 0x80, 0x04, 0x02, 0, 0, 0, 0]),
        // A plain IPMI 1.5 request: no authentication type offered at all ("none" refused).
        (0x0E, 4, 0x00, vec![1, 0x00, 0x04, 0x00, 0, 0, 0, 0]),
        (0x85, 4, cc::INVALID_FIELD_REQUEST, vec![]),
        (0x8E, 0, cc::INVALID_FIELD_REQUEST, vec![]),
        (0x8E, 6, cc::INVALID_FIELD_REQUEST, vec![]),
    ];
    for (chan, pr, code, data) in cases {
        let r = rig.one(&get_auth_caps_v15(chan, pr));
        assert_eq!(
            ipmi15_response(&r),
            (code, data),
            "chan {chan:#x} priv {pr}"
        );
    }
    // Anything else before a session is ignored.
    let req = IpmiRequest {
        rs_addr: 0x20,
        netfn: 6,
        rs_lun: 0,
        rq_addr: 0x81,
        rq_seq: 1,
        rq_lun: 0,
        cmd: 0x01,
        data: vec![],
    };
    assert!(rig.send(&wire::ipmi15_packet(&req.encode())).is_empty());
    assert!(
        rig.send(&wire::rmcpp_plain(0, 0, 0, &req.encode()))
            .is_empty()
    );
}

#[test]
fn get_channel_cipher_suites_lists_3_and_17() {
    let mut rig = Rig::new(|_| {});
    let ask = |index: u8| {
        let req = IpmiRequest {
            rs_addr: 0x20,
            netfn: 6,
            rs_lun: 0,
            rq_addr: 0x81,
            rq_seq: 2,
            rq_lun: 0,
            cmd: cmd::app::GET_CHANNEL_CIPHER_SUITES,
            data: vec![0x0E, 0x00, index],
        };
        wire::rmcpp_plain(wire::PAYLOAD_IPMI, 0, 0, &req.encode())
    };
    let resp = |d: Vec<u8>| wire::IpmiResponse::decode(&setup_payload(&d)).map(|r| (r.cc, r.data));
    assert_eq!(
        resp(rig.one(&ask(0x80))),
        Ok((
            0,
            vec![1, 0xC0, 17, 0x03, 0x44, 0x81, 0xC0, 3, 0x01, 0x41, 0x81]
        ))
    );
    assert_eq!(resp(rig.one(&ask(0x81))), Ok((0, vec![1])));
    assert_eq!(
        resp(rig.one(&ask(0x00))),
        Ok((0, vec![1, 0x03, 0x01, 0x44, 0x41, 0x81]))
    );
}

#[test]
fn full_login_and_forwarding_with_both_suites() -> Result<(), ClientError> {
    for suite in CipherSuite::ALL {
        let mut rig = Rig::new(|_| {});
        let mut c = rig.login(suite, "admin", "0penBmc-secret")?;
        assert_eq!(rig.core.active_sessions(), 1);
        // Sessions start at User; ipmitool then asks for Administrator.
        assert_eq!(
            rig.call(&mut c, 6, cmd::app::SET_SESSION_PRIVILEGE_LEVEL, &[0])?,
            (0, vec![2])
        );
        assert_eq!(
            rig.call(&mut c, 6, cmd::app::SET_SESSION_PRIVILEGE_LEVEL, &[4])?,
            (0, vec![4])
        );
        // Anything else goes to the command server with netipmid's options.
        let d = c.request(0x06, 0x07, &[]);
        let acts = rig.feed_from(peer(), &d);
        let ex = executes(&acts);
        assert_eq!(ex.len(), 1);
        let e = &ex[0];
        assert_eq!((e.netfn, e.lun, e.cmd, e.data.clone()), (6, 0, 7, vec![]));
        assert_eq!((e.privilege, e.user_id), (Privilege::Admin, 2));
        assert_eq!(e.session_id, c.bmc_id);
        assert!(sent_to(&acts, peer()).is_empty());
        let acts = rig.core.on_execute_reply(
            e.token,
            ExecuteReply::Ok {
                cc: 0,
                data: vec![0x02, 0x02],
            },
        );
        let out = sent_to(&acts, peer());
        assert_eq!(out.len(), 1);
        let r = c.on_response(&out[0])?;
        assert_eq!((r.netfn, r.cmd, r.cc, r.data), (7, 7, 0, vec![2, 2]));
        // A failed call is an unspecified error, as netipmid answers.
        let d = c.request(0x0A, 0x40, &[]);
        let token = executes(&rig.feed_from(peer(), &d))[0].token;
        let out = sent_to(
            &rig.core.on_execute_reply(token, ExecuteReply::Failed),
            peer(),
        );
        assert_eq!(c.on_response(&out[0])?.cc, 0xFF);
        // Close Session ends it.
        let id = c.bmc_id.to_le_bytes();
        assert_eq!(
            rig.call(&mut c, 6, cmd::app::CLOSE_SESSION, &id)?,
            (0, vec![])
        );
        assert_eq!(rig.core.session_count(), 0);
        assert!(rig.send(&c.request(6, 1, &[])).is_empty());
    }
    Ok(())
}

#[test]
fn weak_or_unknown_cipher_suites_are_refused() {
    let mut rig = Rig::new(|_| {});
    let c = Client::new(CipherSuite::Suite3, b"admin", b"x", ADMIN_ROLE);
    let cases = [
        ((0, 0, 0), status::INVALID_AUTH_ALGORITHM), // cipher suite 0
        ((2, 2, 0), status::INVALID_AUTH_ALGORITHM), // MD5 (suite 6/7/8)
        ((1, 0, 0), status::INVALID_INTEGRITY_ALGORITHM), // suite 1
        ((1, 1, 0), status::INVALID_CONFIDENTIALITY_ALGORITHM), // suite 2
        ((3, 4, 0), status::INVALID_CONFIDENTIALITY_ALGORITHM), // suite 16
        ((1, 4, 1), status::NO_CIPHER_SUITE_MATCH),  // a mix no suite has
    ];
    for (algs, want) in cases {
        let r = rig.one(&c.open_session_with(4, algs));
        let p = setup_payload(&r);
        assert_eq!(p.len(), 8, "{algs:?}: errors carry no session");
        assert_eq!(p[1], want, "{algs:?}");
    }
    assert_eq!(rig.core.session_count(), 0);
    // A suite the configuration does not offer is refused too.
    let mut rig = Rig::new(|c| c.cipher_suites = vec![CipherSuite::Suite17]);
    let r = rig.one(&c.open_session());
    assert_eq!(setup_payload(&r)[1], status::INVALID_AUTH_ALGORITHM);
}

#[test]
fn open_session_privilege_and_parameters() {
    let mut rig = Rig::new(|c| c.max_privilege = Privilege::Operator);
    let c = Client::new(CipherSuite::Suite17, b"admin", b"x", 0x13);
    let algs = CipherSuite::Suite17.algorithms();
    let cases = [
        (0u8, status::NO_ERRORS, 3u8), // "highest available" = the channel limit
        (3, status::NO_ERRORS, 3),
        (2, status::NO_ERRORS, 2),
        (4, status::UNAUTHORIZED_ROLE, 0),
        (7, status::INVALID_ROLE, 0),
    ];
    for (req, st, granted) in cases {
        let p = setup_payload(&rig.one(&c.open_session_with(req, algs)));
        assert_eq!((p[1], p[2]), (st, granted), "requested {req}");
    }
    let mut bad = c.open_session();
    let n = bad.len();
    bad[n - 5] = 9; // confidentiality payload length
    assert_eq!(setup_payload(&rig.one(&bad))[1], status::ILLEGAL_PARAMETER);
    let mut zero = Client::new(CipherSuite::Suite17, b"admin", b"x", 0x13);
    zero.console_id = 0;
    assert_eq!(
        setup_payload(&rig.one(&zero.open_session()))[1],
        status::INVALID_SESSION_ID
    );
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let mut rig = Rig::new(|_| {});
    // The real client detects a wrong password itself from RAKP 2 ...
    let (_, r) = rig.handshake_to_rakp2(CipherSuite::Suite17, "admin", "wrong");
    assert_eq!(r, Err(ClientError::Rakp2Mismatch));
    // ... and so it does for an unknown name: RAKP 2 is well formed, status 0, same size.
    let (_, r) = rig.handshake_to_rakp2(CipherSuite::Suite17, "mallory", "wrong");
    assert_eq!(r, Err(ClientError::Rakp2Mismatch));

    // An attacker who goes on to RAKP 3 gets the same RAKP 4 error and the same log line.
    let mut answers = Vec::new();
    for name in ["admin", "mallory"] {
        let mut rig = Rig::new(|_| {});
        let (mut c, _) = rig.handshake_to_rakp2(CipherSuite::Suite3, name, "guess");
        let rm = c.rm;
        let rakp2 = setup_payload(&rig.one(&c.rakp1(rm))); // retransmit: same RAKP 2
        assert_eq!(rakp2.len(), 40 + 20);
        assert_eq!(rakp2[1], 0);
        let acts = rig.feed_from(peer(), &c.rakp3(0));
        let out = sent_to(&acts, peer());
        assert_eq!(out.len(), 1);
        let p = setup_payload(&out[0]);
        assert_eq!(p[1], status::INVALID_INTEGRITY_CHECK);
        let why: Vec<&'static str> = notes(&acts)
            .into_iter()
            .filter_map(|n| match n {
                Note::AuthFailed { why, .. } => Some(why),
                _ => None,
            })
            .collect();
        answers.push((out[0].clone(), why));
        assert_eq!(rig.core.session_count(), 0);
    }
    assert_eq!(answers[0], answers[1]);
}

#[test]
fn lockout_engages_per_user_and_releases() -> Result<(), ClientError> {
    let mut rig = Rig::new(|c| {
        c.lockout = LockoutPolicy {
            user_threshold: 3,
            source_threshold: 100,
            duration: 60 * S,
        }
    });
    for _ in 0..3 {
        let (_, r) = rig.handshake_to_rakp2(CipherSuite::Suite17, "admin", "wrong");
        assert_eq!(r, Err(ClientError::Rakp2Mismatch));
        rig.now = rig.now.after(S);
    }
    // Locked: even the right password is refused, before any HMAC is handed out.
    let (_, r) = rig.handshake_to_rakp2(CipherSuite::Suite17, "admin", "0penBmc-secret");
    assert_eq!(r, Err(ClientError::Status(status::UNAUTHORIZED_NAME)));
    // Other users are not affected.
    rig.login(CipherSuite::Suite17, "viewer", "look-only")?;
    // 60 s after the lock engaged it is released (and the tick says so).
    let acts = rig.advance(58 * S);
    assert!(
        !notes(&acts)
            .iter()
            .any(|n| matches!(n, Note::LockReleased(_)))
    );
    let acts = rig.advance(S);
    assert!(
        notes(&acts)
            .iter()
            .any(|n| *n == Note::LockReleased(LockKey::User("admin".into())))
    );
    rig.login(CipherSuite::Suite17, "admin", "0penBmc-secret")?;
    Ok(())
}

#[test]
fn unknown_names_lock_the_same_way() {
    let mut rig = Rig::new(|c| c.lockout.user_threshold = 2);
    for _ in 0..2 {
        let (_, r) = rig.handshake_to_rakp2(CipherSuite::Suite3, "nobody", "x");
        assert_eq!(r, Err(ClientError::Rakp2Mismatch));
    }
    let (_, r) = rig.handshake_to_rakp2(CipherSuite::Suite3, "nobody", "x");
    assert_eq!(r, Err(ClientError::Status(status::UNAUTHORIZED_NAME)));
}

#[test]
fn lockout_per_source_address() -> Result<(), ClientError> {
    let mut rig = Rig::new(|c| {
        c.lockout.user_threshold = 100;
        c.lockout.source_threshold = 3;
    });
    for name in ["a", "b", "c"] {
        let _ = rig.handshake_to_rakp2(CipherSuite::Suite17, name, "x");
    }
    let (_, r) = rig.handshake_to_rakp2(CipherSuite::Suite17, "admin", "0penBmc-secret");
    assert_eq!(r, Err(ClientError::Status(status::UNAUTHORIZED_NAME)));
    // Another address may still log in.
    let other = SocketAddr::from(([192, 0, 2, 8], 40000));
    let mut c = Client::new(
        CipherSuite::Suite17,
        b"admin",
        b"0penBmc-secret",
        ADMIN_ROLE,
    );
    let r = sent_to(&rig.feed_from(other, &c.open_session()), other);
    c.on_open_session_response(&r[0])?;
    let r = sent_to(&rig.feed_from(other, &c.rakp1([1; 16])), other);
    c.on_rakp2(&r[0])?;
    let r = sent_to(&rig.feed_from(other, &c.rakp3(0)), other);
    c.on_rakp4(&r[0])?;
    Ok(())
}

#[test]
fn success_clears_the_failure_count() -> Result<(), ClientError> {
    let mut rig = Rig::new(|c| c.lockout.user_threshold = 3);
    for _ in 0..2 {
        let _ = rig.handshake_to_rakp2(CipherSuite::Suite17, "admin", "typo");
    }
    rig.login(CipherSuite::Suite17, "admin", "0penBmc-secret")?;
    for _ in 0..2 {
        let _ = rig.handshake_to_rakp2(CipherSuite::Suite17, "admin", "typo");
    }
    rig.login(CipherSuite::Suite17, "admin", "0penBmc-secret")?;
    Ok(())
}

#[test]
fn console_reported_rakp2_failure_ends_the_handshake() {
    let mut rig = Rig::new(|_| {});
    let (c, r) = rig.handshake_to_rakp2(CipherSuite::Suite17, "admin", "wrong");
    assert_eq!(r, Err(ClientError::Rakp2Mismatch));
    let acts = rig.feed_from(peer(), &c.rakp3(status::INVALID_INTEGRITY_CHECK));
    assert!(sent_to(&acts, peer()).is_empty());
    assert!(
        notes(&acts)
            .iter()
            .any(|n| matches!(n, Note::AuthFailed { .. }))
    );
    assert_eq!(rig.core.session_count(), 0);
}

#[test]
fn rakp1_checks() {
    let mut rig = Rig::new(|_| {});
    let mut c = Client::new(CipherSuite::Suite17, &[b'x'; 17], b"x", ADMIN_ROLE);
    c.on_open_session_response(&rig.one(&c.open_session()))
        .unwrap_or_default();
    let r1 = c.rakp1([1; 16]);
    assert_eq!(
        c.on_rakp2(&rig.one(&r1)),
        Err(ClientError::Status(status::INVALID_NAME_LENGTH))
    );
    let mut c = Client::new(CipherSuite::Suite17, b"admin", b"x", 0x12);
    c.on_open_session_response(&rig.one(&c.open_session_with(2, c.suite.algorithms())))
        .unwrap_or_default();
    c.role = 0x14; // more than Open Session granted
    let r1 = c.rakp1([1; 16]);
    assert_eq!(
        c.on_rakp2(&rig.one(&r1)),
        Err(ClientError::Status(status::UNAUTHORIZED_ROLE))
    );
    // RAKP 1 for a session that does not exist, or from another address: no answer.
    assert!(rig.send(&c.rakp1([1; 16])).is_empty());
}

#[test]
fn session_packets_must_be_sealed_fresh_and_from_the_peer() -> Result<(), ClientError> {
    let mut rig = Rig::new(|_| {});
    let mut c = rig.login(CipherSuite::Suite3, "admin", "0penBmc-secret")?;
    let d = c.request(6, cmd::app::SET_SESSION_PRIVILEGE_LEVEL, &[0]);
    assert_eq!(rig.send(&d).len(), 1);
    // Replay: dropped.
    assert!(rig.send(&d).is_empty());
    // Tampered AuthCode or payload: dropped.
    let mut t = c.request(6, cmd::app::SET_SESSION_PRIVILEGE_LEVEL, &[0]);
    let n = t.len();
    t[n - 1] ^= 1;
    assert!(rig.send(&t).is_empty());
    let mut t = c.request(6, cmd::app::SET_SESSION_PRIVILEGE_LEVEL, &[0]);
    t[20] ^= 1;
    assert!(rig.send(&t).is_empty());
    // Not authenticated/encrypted inside a session: dropped.
    let plain = wire::rmcpp_plain(wire::PAYLOAD_IPMI, c.bmc_id, 50, &[0x20, 0x18, 0xc8]);
    assert!(rig.send(&plain).is_empty());
    // From another address: dropped.
    let d = c.request(6, cmd::app::SET_SESSION_PRIVILEGE_LEVEL, &[0]);
    let other = SocketAddr::from(([192, 0, 2, 9], 1));
    assert!(sent_to(&rig.feed_from(other, &d), other).is_empty());
    // Too far ahead: dropped; a late but unseen number within the window: accepted.
    let far = c.request_at(
        c.out_seq + 40,
        6,
        cmd::app::SET_SESSION_PRIVILEGE_LEVEL,
        &[0],
    );
    assert!(rig.send(&far).is_empty());
    let next = c.request_at(
        c.out_seq + 10,
        6,
        cmd::app::SET_SESSION_PRIVILEGE_LEVEL,
        &[0],
    );
    assert_eq!(rig.send(&next).len(), 1);
    let late = c.request_at(
        c.out_seq + 5,
        6,
        cmd::app::SET_SESSION_PRIVILEGE_LEVEL,
        &[0],
    );
    assert_eq!(rig.send(&late).len(), 1);
    Ok(())
}

#[test]
fn privilege_limits() -> Result<(), ClientError> {
    let mut rig = Rig::new(|_| {});
    let mut v = rig.login(CipherSuite::Suite17, "viewer", "look-only")?;
    let cases = [
        (
            4u8,
            set_session_privilege_level::REQUESTED_LEVEL_EXCEEDS_LIMIT,
            vec![],
        ),
        (
            3,
            set_session_privilege_level::REQUESTED_LEVEL_EXCEEDS_LIMIT,
            vec![],
        ),
        (
            5,
            set_session_privilege_level::REQUESTED_LEVEL_NOT_AVAILABLE_FOR_USER,
            vec![],
        ),
        (
            1,
            set_session_privilege_level::REQUESTED_LEVEL_NOT_AVAILABLE_FOR_USER,
            vec![],
        ),
        (9, cc::INVALID_FIELD_REQUEST, vec![]),
        (2, cc::SUCCESS, vec![2]),
        (0, cc::SUCCESS, vec![2]),
    ];
    for (lvl, code, data) in cases {
        assert_eq!(
            rig.call(&mut v, 6, cmd::app::SET_SESSION_PRIVILEGE_LEVEL, &[lvl])?,
            (code, data),
            "level {lvl}"
        );
    }
    assert_eq!(
        rig.call(&mut v, 6, cmd::app::SET_SESSION_PRIVILEGE_LEVEL, &[])?,
        (cc::REQ_DATA_LEN_INVALID, vec![])
    );
    // The forwarded privilege is the session's current one.
    let d = v.request(0x0A, 0x40, &[]);
    let ex = executes(&rig.feed_from(peer(), &d));
    assert_eq!((ex[0].privilege, ex[0].user_id), (Privilege::User, 3));
    // A user-level session may not close someone else's session; an admin may.
    let mut a = rig.login(CipherSuite::Suite17, "admin", "0penBmc-secret")?;
    let aid = a.bmc_id.to_le_bytes();
    assert_eq!(
        rig.call(&mut v, 6, cmd::app::CLOSE_SESSION, &aid)?,
        (close_session::INVALID_SESSION_ID, vec![])
    );
    rig.call(&mut a, 6, cmd::app::SET_SESSION_PRIVILEGE_LEVEL, &[4])?;
    let vid = v.bmc_id.to_le_bytes();
    assert_eq!(
        rig.call(&mut a, 6, cmd::app::CLOSE_SESSION, &vid)?,
        (0, vec![])
    );
    assert_eq!(rig.core.active_sessions(), 1);
    assert_eq!(
        rig.call(&mut a, 6, cmd::app::CLOSE_SESSION, &[0, 0, 0, 0, 1])?,
        (close_session::INVALID_SESSION_HANDLE, vec![])
    );
    Ok(())
}

#[test]
fn timeouts() -> Result<(), ClientError> {
    let mut rig = Rig::new(|c| {
        c.idle_timeout = 10 * S;
        c.setup_timeout = 3 * S;
    });
    let mut c = rig.login(CipherSuite::Suite17, "admin", "0penBmc-secret")?;
    let _half_open = rig.handshake_to_rakp2(CipherSuite::Suite17, "admin", "0penBmc-secret");
    assert_eq!(rig.core.session_count(), 2);
    let acts = rig.advance(3 * S);
    assert!(notes(&acts).iter().any(|n| matches!(
        n,
        Note::SessionClosed {
            reason: CloseReason::SetupTimeout,
            ..
        }
    )));
    assert_eq!(rig.core.session_count(), 1);
    // Activity keeps the session alive ...
    rig.call(&mut c, 6, cmd::app::SET_SESSION_PRIVILEGE_LEVEL, &[0])?;
    rig.advance(9 * S);
    rig.call(&mut c, 6, cmd::app::SET_SESSION_PRIVILEGE_LEVEL, &[0])?;
    rig.advance(9 * S);
    assert_eq!(rig.core.active_sessions(), 1);
    // ... idleness ends it.
    let acts = rig.advance(S);
    assert!(notes(&acts).iter().any(|n| matches!(
        n,
        Note::SessionClosed {
            reason: CloseReason::IdleTimeout,
            ..
        }
    )));
    assert!(
        rig.send(&c.request(6, cmd::app::SET_SESSION_PRIVILEGE_LEVEL, &[0]))
            .is_empty()
    );
    Ok(())
}

#[test]
fn the_core_wants_a_tick_only_while_something_can_expire() -> Result<(), ClientError> {
    let mut rig = Rig::new(|c| {
        c.idle_timeout = 10 * S;
        c.setup_timeout = 3 * S;
        c.lockout.duration = 60 * S;
    });
    // An idle channel sets no timer at all.
    assert_eq!(rig.core.next_deadline(), None);
    rig.now = rig.at(5 * S);
    let _c = rig.login(CipherSuite::Suite17, "admin", "0penBmc-secret")?;
    assert_eq!(
        rig.core.next_deadline(),
        Some(rig.at(15 * S).mono),
        "idle timeout"
    );
    rig.now = rig.at(7 * S);
    let (_, r) = rig.handshake_to_rakp2(CipherSuite::Suite17, "viewer", "wrong");
    assert_eq!(r, Err(ClientError::Rakp2Mismatch));
    assert_eq!(
        rig.core.next_deadline(),
        Some(rig.at(10 * S).mono),
        "setup timeout first"
    );
    // Ticking at each deadline, the way the edge does, empties the core and the timer stops.
    let mut closed = 0;
    while let Some(d) = rig.core.next_deadline() {
        assert!(
            d > rig.now.mono,
            "a deadline that does not move would spin the edge"
        );
        rig.now = rig.t0.after(d - rig.t0.mono);
        closed += notes(&rig.core.on_tick(rig.now))
            .iter()
            .filter(|n| matches!(n, Note::SessionClosed { .. }))
            .count();
    }
    assert_eq!(closed, 2);
    // The failed RAKP 2 was charged at 7 s and is forgotten 60 s later: the last deadline.
    assert_eq!(rig.now, rig.at(67 * S));
    Ok(())
}

#[test]
fn session_limits() -> Result<(), ClientError> {
    let mut rig = Rig::new(|c| {
        c.max_sessions = 2;
        c.max_sessions_per_user = 1;
    });
    rig.login(CipherSuite::Suite17, "admin", "0penBmc-secret")?;
    // A second session for the same user: refused after the password is proven.
    let (mut c, r) = rig.handshake_to_rakp2(CipherSuite::Suite17, "admin", "0penBmc-secret");
    r?;
    let out = rig.one(&c.rakp3(0));
    assert_eq!(
        c.on_rakp4(&out),
        Err(ClientError::Status(status::INSUFFICIENT_RESOURCES))
    );
    rig.login(CipherSuite::Suite17, "viewer", "look-only")?;
    // Table full of active sessions: Open Session is refused.
    let c = Client::new(CipherSuite::Suite17, b"viewer", b"x", ADMIN_ROLE);
    assert_eq!(
        setup_payload(&rig.one(&c.open_session()))[1],
        status::INSUFFICIENT_RESOURCES
    );
    // Sessions still in setup make room for new ones (oldest first).
    let mut rig = Rig::new(|c| c.max_sessions = 2);
    for _ in 0..5 {
        let p = setup_payload(&rig.one(&c.open_session()));
        assert_eq!(p[1], status::NO_ERRORS);
    }
    assert_eq!(rig.core.session_count(), 2);
    Ok(())
}

#[test]
fn outstanding_requests_are_bounded_and_late_replies_dropped() -> Result<(), ClientError> {
    let mut rig = Rig::new(|c| c.max_outstanding_per_session = 2);
    let mut c = rig.login(CipherSuite::Suite17, "admin", "0penBmc-secret")?;
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let d = c.request(0x0A, 0x40, &[]);
        tokens.push(executes(&rig.feed_from(peer(), &d))[0].token);
    }
    assert_eq!(rig.call(&mut c, 0x0A, 0x40, &[])?, (cc::NODE_BUSY, vec![]));
    let ok = ExecuteReply::Ok {
        cc: 0,
        data: vec![],
    };
    assert_eq!(
        sent_to(&rig.core.on_execute_reply(tokens[0], ok.clone()), peer()).len(),
        1
    );
    // Unknown token, or the session is gone: nothing is sent.
    assert!(rig.core.on_execute_reply(999, ok.clone()).is_empty());
    let id = c.bmc_id.to_le_bytes();
    rig.call(&mut c, 6, cmd::app::CLOSE_SESSION, &id)?;
    assert!(sent_to(&rig.core.on_execute_reply(tokens[1], ok), peer()).is_empty());
    Ok(())
}

#[test]
fn garbage_is_dropped_quietly() {
    let mut rig = Rig::new(|_| {});
    for d in [
        &b""[..],
        &[6, 0, 0xff, 7, 6, 0x10][..],
        &[6, 0, 0xff, 6, 0, 0, 0x11, 0xbe, 0x40][..],
        &[6, 0, 0xff, 7, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
    ] {
        assert!(rig.send(d).is_empty(), "{d:?}");
    }
}

#[test]
fn get_session_info_describes_the_sessions() -> Result<(), ClientError> {
    let mut rig = Rig::new(|c| c.max_sessions = 5);
    let mut a = rig.login(CipherSuite::Suite17, "admin", "0penBmc-secret")?;
    rig.call(&mut a, 6, cmd::app::SET_SESSION_PRIVILEGE_LEVEL, &[4])?;
    let mut v = rig.login(CipherSuite::Suite3, "viewer", "look-only")?;
    let port = peer().port().to_le_bytes();
    let mine = |handle: u8, user: u8, privilege: u8| {
        let mut d = vec![
            handle, 5, 2, user, privilege, 0x11, 192, 0, 2, 7, 0, 0, 0, 0, 0, 0,
        ];
        d.extend_from_slice(&port);
        d
    };
    let vid = v.bmc_id.to_le_bytes();
    let cases: [(&[u8], u8, Vec<u8>); 7] = [
        (&[0x00], 0, mine(2, 3, 2)),
        (&[0x01], 0, mine(1, 2, 4)),
        (&[0x02], 0, mine(2, 3, 2)),
        (&[0x03], 0, vec![0, 5, 2]),
        (&[0xFE, 1], 0, mine(1, 2, 4)),
        (&[0xFF, vid[0], vid[1], vid[2], vid[3]], 0, mine(2, 3, 2)),
        (&[0xFE, 9], cc::INVALID_FIELD_REQUEST, vec![]),
    ];
    for (req, code, data) in cases {
        assert_eq!(
            rig.call(&mut v, 6, cmd::app::GET_SESSION_INFO, req)?,
            (code, data),
            "{req:02x?}"
        );
    }
    assert_eq!(
        rig.call(&mut v, 6, cmd::app::GET_SESSION_INFO, &[])?,
        (cc::REQ_DATA_LEN_INVALID, vec![])
    );
    Ok(())
}

#[test]
fn privilege_levels() {
    assert_eq!(Privilege::from_level(4), Some(Privilege::Admin));
    // 0 in a request's privilege field is never the level None (see `requested_level`).
    assert_eq!(requested_level(0), None);
    assert_eq!(Privilege::from_level(6), None);
    assert_eq!(requested_level(6), None);
    assert!(Privilege::User < Privilege::Operator);
    assert_eq!(Privilege::Operator.level(), 3);
}
