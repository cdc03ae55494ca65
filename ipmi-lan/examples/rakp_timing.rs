//! How long the core takes to answer RAKP 1 and RAKP 3 for a real user with the right
//! password, a real user with a wrong one, and an unknown name — the timing side of "unknown
//! user and wrong password are indistinguishable". Prints medians over many rounds:
//!
//! `cargo run --release -p ipmi-lan --example rakp_timing [ROUNDS]`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipmi_lan::client::Client;
use ipmi_lan::core::users::{Secret, User, UserDb};
use ipmi_lan::core::{Config, Core, Now, OsRandom, Privilege};
use ipmi_lan::crypto::CipherSuite;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let users = UserDb::new(
        (1..=10u8)
            .map(|i| User {
                name: format!("user{i}").into_bytes(),
                password: Secret(format!("password-{i}").into_bytes()),
                id: i + 1,
                privilege: Privilege::Admin,
            })
            .collect(),
        None,
    );
    let mut cfg = Config::defaults([1; 16]);
    cfg.lockout.user_threshold = 0;
    cfg.lockout.source_threshold = 0;
    cfg.max_sessions = 64;
    let peer = SocketAddr::from(([127, 0, 0, 1], 1));
    let t0 = Now {
        mono: Instant::now(),
        wall_usec: 0,
    };
    println!("suite  case                 RAKP1 median   RAKP3 median   ({rounds} rounds)");
    for suite in [CipherSuite::Suite17, CipherSuite::Suite3] {
        for (case, name, pw) in [
            ("right password", "user7", "password-7"),
            ("wrong password", "user7", "guess"),
            ("unknown user", "nobody1", "guess"),
        ] {
            let mut core = Core::new(cfg.clone(), users.clone(), OsRandom);
            let (mut t1, mut t3) = (Vec::new(), Vec::new());
            for i in 0..rounds {
                let now = t0.after(Duration::from_millis(i as u64));
                let mut c = Client::new(suite, name.as_bytes(), pw.as_bytes(), 0x14);
                let r = core.on_datagram(now, peer, &c.open_session());
                let Some(ipmi_lan::core::Action::Send { data, .. }) = r.first() else {
                    panic!("no open session response");
                };
                let _ = c.on_open_session_response(data);
                let d = c.rakp1([i as u8; 16]);
                let t = Instant::now();
                let r = core.on_datagram(now, peer, &d);
                t1.push(t.elapsed());
                if let Some(ipmi_lan::core::Action::Send { data, .. }) = r.first() {
                    let _ = c.on_rakp2(data);
                }
                // An attacker sends RAKP 3 regardless (ipmitool would stop after RAKP 2).
                let d = c.rakp3(0);
                let t = Instant::now();
                let _ = core.on_datagram(now, peer, &d);
                t3.push(t.elapsed());
                let _ = core.on_tick(now.after(Duration::from_secs(3600)));
            }
            println!(
                "{:<6} {case:<20} {:>10.1} µs   {:>10.1} µs",
                suite.id(),
                median(t1).as_secs_f64() * 1e6,
                median(t3).as_secs_f64() * 1e6
            );
        }
    }
}
