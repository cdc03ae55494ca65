//! The whole session layer, stateful. The input is a mode byte, then records of
//! `u16 little-endian length + bytes`.
//!
//! * mode bit 0 clear: every record is a datagram from one of two peers (ipmitool captures
//!   are seeds of this kind);
//! * mode bit 0 set: a remote console first logs in properly (suite 17 or 3 by bit 1), then
//!   every record is a plaintext IPMI message it seals and sends, so the fuzzer reaches the
//!   in-session command paths behind integrity and encryption.
//!
//! Time advances 700 ms per record from a base `Now` and the core is ticked; every `execute`
//! is answered.
//! Checked: no panic, the session table stays bounded, and every reply parses.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipmi_lan::client::Client;
use ipmi_lan::core::users::{Secret, User, UserDb};
use ipmi_lan::core::{Action, Config, Core, ExecuteReply, Now, Privilege, Random, RandomError};
use ipmi_lan::crypto::CipherSuite;
use ipmi_lan::wire;
use libfuzzer_sys::fuzz_target;

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

fn records(mut d: &[u8]) -> Vec<&[u8]> {
    let mut v = Vec::new();
    while d.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([d[0], d[1]])).min(d.len() - 2);
        v.push(&d[2..2 + n]);
        d = &d[2 + n..];
    }
    v
}

fn run(core: &mut Core<Counter>, now: Now, from: SocketAddr, d: &[u8]) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    let mut queue = core.on_datagram(now, from, d);
    while let Some(a) = queue.pop() {
        match a {
            Action::Send { data, .. } => {
                assert!(wire::parse(&data).is_ok(), "we sent something unparsable");
                sent.push(data);
            }
            Action::Execute(e) => queue.extend(core.on_execute_reply(
                e.token,
                ExecuteReply::Ok {
                    cc: 0,
                    data: e.data.clone(),
                },
            )),
            Action::Note(_) => {}
        }
    }
    sent
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut cfg = Config::defaults([7; 16]);
    cfg.max_sessions = 4;
    cfg.lockout.user_threshold = 3;
    cfg.lockout.duration = Duration::from_secs(5);
    cfg.idle_timeout = Duration::from_secs(10);
    let users = UserDb::new(
        vec![User {
            name: b"admin".to_vec(),
            password: Secret(b"fuzz-password".to_vec()),
            id: 2,
            privilege: Privilege::Admin,
        }],
        None,
    );
    let mut core = Core::new(cfg, users, Counter(mode));
    let peers = [
        SocketAddr::from(([127, 0, 0, 1], 40000)),
        SocketAddr::from(([127, 0, 0, 2], 40001)),
    ];
    let mut now = Now {
        mono: Instant::now(),
        wall_usec: 0,
    };
    let mut client = None;
    if mode & 1 == 1 {
        let suite = if mode & 2 == 0 {
            CipherSuite::Suite17
        } else {
            CipherSuite::Suite3
        };
        let mut c = Client::new(suite, b"admin", b"fuzz-password", 0x14);
        let r = run(&mut core, now, peers[0], &c.open_session());
        assert!(c.on_open_session_response(&r[0]).is_ok());
        let r = run(&mut core, now, peers[0], &c.rakp1([9; 16]));
        assert!(c.on_rakp2(&r[0]).is_ok());
        let r = run(&mut core, now, peers[0], &c.rakp3(0));
        assert!(c.on_rakp4(&r[0]).is_ok());
        client = Some(c);
    }
    for (i, rec) in records(rest).into_iter().enumerate() {
        now = now.after(Duration::from_millis(700));
        let _ = core.on_tick(now);
        match client.as_mut() {
            Some(c) => {
                // Seal the fuzzed bytes as the whole plaintext IPMI message.
                c.out_seq += 1;
                let d = sealed(c, rec);
                for reply in run(&mut core, now, peers[0], &d) {
                    let _ = c.on_response(&reply);
                }
            }
            None => {
                let _ = run(&mut core, now, peers[i % 2], rec);
            }
        }
        assert!(core.session_count() <= 4);
    }
});

fn sealed(c: &Client, plain: &[u8]) -> Vec<u8> {
    let Some(keys) = &c.keys else {
        return Vec::new();
    };
    let payload = keys.encrypt(&[3; 16], plain);
    wire::rmcpp_authenticated(
        wire::PAYLOAD_IPMI,
        true,
        c.bmc_id,
        c.out_seq,
        &payload,
        |cov| keys.auth_code(cov),
    )
}
