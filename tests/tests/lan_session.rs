//! LAN session layer with the real `ipmitool -I lanplus` against the real `acpigate ipmi-lan`
//! on loopback. The command server here is a stand-in that only echoes fixed answers and
//! records the calls (what these tests check is the session layer and the `execute` contract);
//! lan_ipmitool.rs runs the real ipmi-handlers behind it.

mod lan_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use acpigate_tests::harness::{Daemon, PrivateBus};
use anyhow::{Result, ensure};
use ipmi_lan::client;
use ipmi_lan::wire::{self, IpmiRequest, Packet};
use lan_common::*;
use openbmc_vocab::ipmi::{cmd, netfn};
use openbmc_vocab::names::bus;

fn text(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The commands the front end answers itself (it owns the sessions).
const SESSION_COMMANDS: [u8; 5] = [
    cmd::app::GET_CHANNEL_AUTH_CAPABILITIES,
    cmd::app::SET_SESSION_PRIVILEGE_LEVEL,
    cmd::app::CLOSE_SESSION,
    cmd::app::GET_SESSION_INFO,
    cmd::app::GET_CHANNEL_CIPHER_SUITES,
];

/// Get ACPI Power State: one command, enough for a login attempt.
const GET_ACPI: [&str; 1] = ["raw 0x06 0x07"];

/// A private bus with the stand-in command server and the front end on loopback.
struct Rig {
    bus: PrivateBus,
    _stub: zbus::Connection,
    /// What reached the stand-in's `execute`.
    calls: Arc<Mutex<Vec<Call>>>,
    lan: Daemon,
    port: u16,
}

impl Rig {
    /// `extra` is appended to the front end's JSON config (see [`start_lan`]).
    async fn start(extra: &str) -> Result<Self> {
        let bus = PrivateBus::start()?;
        let (stub, calls) = start_stub(&bus).await?;
        let (lan, port) = start_lan(&bus, extra)?;
        Ok(Self {
            bus,
            _stub: stub,
            calls,
            lan,
            port,
        })
    }

    /// One ipmitool batch, run in the bus directory.
    async fn run(&self, t: Ipmitool, cmds: &[&str]) -> Result<std::process::Output> {
        t.exec_async(self.bus.dir().to_owned(), cmds).await
    }

    /// [`GET_ACPI`] against the front end as `user` with `password` and `-C suite`.
    async fn get_acpi(
        &self,
        user: &str,
        password: &str,
        suite: Option<u8>,
    ) -> Result<std::process::Output> {
        self.run(Ipmitool::new(self.port, user, password, suite), &GET_ACPI)
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suites_17_and_3_reach_execute_with_netipmid_options() -> Result<()> {
    let rig = Rig::start("").await?;
    let watcher = rig.bus.connect().await?;
    for suite in [17u8, 3] {
        let t = Ipmitool::new(rig.port, ADMIN, ADMIN_PW, Some(suite));
        let o = rig
            .run(
                t,
                &["raw 0x06 0x07", "raw 0x06 0x01", "session info active"],
            )
            .await?;
        let (out, err) = text(&o);
        ensure!(
            o.status.success(),
            "-C {suite}: {out}\n{err}\n{}",
            rig.lan.log_text()
        );
        // Get Session Info is answered by the front end, which owns the sessions.
        ensure!(out.contains("user id                       : 2"), "{out}");
        ensure!(
            out.contains("privilege level               : ADMINISTRATOR"),
            "{out}"
        );
        ensure!(out.contains("127.0.0.1"), "{out}");
        ensure!(out.contains(" 02 02"), "-C {suite}: {out}");
        ensure!(
            out.contains("20 81 01 23 02 bf 57 a1 00 34 12"),
            "-C {suite}: {out}"
        );
    }
    // Every forwarded call came from the owner of xyz.openbmc_project.Ipmi.Channel.eth0 and
    // carried the session's privilege (Administrator after ipmitool's Set Session Privilege
    // Level), the user ID from the users file and the BMC session ID — netipmid's options.
    let owner = zbus::fdo::DBusProxy::new(&watcher)
        .await?
        .get_name_owner(
            format!("{}eth0", bus::IPMI_CHANNEL_PREFIX)
                .as_str()
                .try_into()?,
        )
        .await?
        .to_string();
    let calls = rig.calls.lock().map(|g| g.clone()).unwrap_or_default();
    let ours: Vec<&Call> = calls
        .iter()
        .filter(|c| c.netfn == 6 && c.cmd == 7)
        .collect();
    ensure!(ours.len() == 2, "{calls:?}");
    for c in &ours {
        ensure!(c.sender == owner, "{c:?} not from {owner}");
        ensure!(c.privilege == Some(4) && c.user_id == Some(2), "{c:?}");
        ensure!(c.session_id.is_some_and(|id| id != 0), "{c:?}");
    }
    ensure!(
        ours[0].session_id != ours[1].session_id,
        "two sessions, two IDs"
    );
    // Session commands are answered by the front end itself, never forwarded.
    ensure!(
        !calls
            .iter()
            .any(|c| c.netfn == netfn::APP && SESSION_COMMANDS.contains(&c.cmd)),
        "{calls:?}"
    );
    let log = rig.lan.log_text();
    ensure!(
        log.contains("cipher suite 17") && log.contains("cipher suite 3"),
        "{log}"
    );
    ensure!(log.contains("closed: CloseSession"), "{log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_c_ipmitool_picks_suite_17_from_the_list() -> Result<()> {
    let rig = Rig::start("").await?;
    let o = rig.get_acpi(ADMIN, ADMIN_PW, None).await?;
    let (out, err) = text(&o);
    ensure!(o.status.success() && out.contains("02 02"), "{out}\n{err}");
    ensure!(
        rig.lan.log_text().contains("cipher suite 17"),
        "{}",
        rig.lan.log_text()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_unknown_user_and_suite_0_fail() -> Result<()> {
    let rig = Rig::start("").await?;
    let wrong = rig.get_acpi(ADMIN, "not-the-password", Some(17)).await?;
    let unknown = rig
        .get_acpi("mallory", "not-the-password", Some(17))
        .await?;
    for (what, o) in [("wrong password", &wrong), ("unknown user", &unknown)] {
        let (out, err) = text(o);
        ensure!(!o.status.success(), "{what} succeeded: {out}");
        ensure!(
            err.contains("Unable to establish IPMI v2 / RMCP+ session"),
            "{what}: {err}"
        );
    }
    // The client cannot tell the two apart: same exit status, same message.
    ensure!(wrong.status == unknown.status && wrong.stderr == unknown.stderr);
    let zero = rig.get_acpi(ADMIN, ADMIN_PW, Some(0)).await?;
    let (out, err) = text(&zero);
    ensure!(!zero.status.success(), "-C 0 succeeded: {out}");
    ensure!(
        err.contains("invalid authentication algorithm"),
        "-C 0: {err}"
    );
    ensure!(
        rig.calls.lock().map(|g| g.is_empty()).unwrap_or(false),
        "nothing may reach execute without a session"
    );
    ensure!(rig.lan.log_text().contains("unsupported cipher suite"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_engages_and_releases() -> Result<()> {
    let rig = Rig::start(LOCKOUT_3_FAILURES_3_S).await?;
    for _ in 0..3 {
        let o = rig.get_acpi(ADMIN, "guess", Some(17)).await?;
        ensure!(!o.status.success());
    }
    // Locked: the right password no longer gets in, and ipmitool says why.
    let o = rig.get_acpi(ADMIN, ADMIN_PW, Some(17)).await?;
    let (out, err) = text(&o);
    ensure!(!o.status.success(), "locked user logged in: {out}");
    ensure!(
        rig.lan.log_text().contains("lockout engaged"),
        "{}",
        rig.lan.log_text()
    );
    ensure!(rig.lan.log_text().contains("login refused"), "{err}");
    // Another user is not locked out.
    let o = rig
        .run(
            Ipmitool::new(rig.port, VIEWER, VIEWER_PW, Some(3)).level("USER"),
            &GET_ACPI,
        )
        .await?;
    ensure!(o.status.success(), "{:?}", text(&o));
    // After the lockout period the right password works again.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let o = rig.get_acpi(ADMIN, ADMIN_PW, Some(17)).await?;
    let (out, err) = text(&o);
    ensure!(o.status.success() && out.contains("02 02"), "{out}\n{err}");
    Ok(())
}

/// Record real ipmitool traffic through a relay, decrypt it as a passive observer who knows
/// the password (with our key derivation: an independent check that ipmitool and we agree
/// on SIK/K1/K2 and the packet formats), and, if `ACPIGATE_LAN_CORPUS_DIR` is set, save the
/// datagrams and the decrypted IPMI messages as fuzz seeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_ipmitool_traffic_decrypts_with_our_keys() -> Result<()> {
    let rig = Rig::start("").await?;
    let relay = Relay::start(rig.port)?;
    let mut datagrams: Vec<Vec<u8>> = Vec::new();
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for suite in [None, Some(17u8), Some(3)] {
        let o = rig
            .run(
                Ipmitool::new(relay.port, ADMIN, ADMIN_PW, suite),
                &["raw 0x06 0x07", "raw 0x06 0x01", "mc info"],
            )
            .await?;
        let (out, err) = text(&o);
        ensure!(o.status.success(), "{out}\n{err}");
        let log = relay.take();
        let from_client: Vec<Vec<u8>> = log
            .iter()
            .filter(|(c, _)| *c)
            .map(|(_, d)| d.clone())
            .collect();
        let from_bmc: Vec<Vec<u8>> = log
            .iter()
            .filter(|(c, _)| !*c)
            .map(|(_, d)| d.clone())
            .collect();
        let find = |v: &[Vec<u8>], pt: u8| {
            v.iter()
                .find(|d| matches!(wire::parse(d), Ok(Packet::Rmcpp(p)) if p.payload_type == pt))
                .cloned()
        };
        let (Some(open), Some(r1), Some(r2)) = (
            find(&from_client, wire::PAYLOAD_OPEN_SESSION_REQUEST),
            find(&from_client, wire::PAYLOAD_RAKP1),
            find(&from_bmc, wire::PAYLOAD_RAKP2),
        ) else {
            anyhow::bail!("handshake not captured: {log:?}");
        };
        let (keys, bmc_id, _console_id) =
            client::observe(&open, &r1, &r2, ADMIN_PW.as_bytes(), None)
                .map_err(|e| anyhow::anyhow!("observer: {e}"))?;
        let mut cmds = Vec::new();
        for d in &from_client {
            if let Ok(Packet::Rmcpp(p)) = wire::parse(d)
                && p.session_id == bmc_id
            {
                let m = client::unseal(&keys, bmc_id, d)
                    .map_err(|e| anyhow::anyhow!("ipmitool packet does not verify: {e}"))?;
                let req = IpmiRequest::decode(&m)
                    .map_err(|e| anyhow::anyhow!("decrypted message: {e}"))?;
                cmds.push((req.netfn, req.cmd));
                messages.push(m);
            }
        }
        // Set Session Privilege Level, the three commands, Close Session — at least.
        for want in [(6, 0x3B), (6, 7), (6, 1), (6, 0x3C)] {
            ensure!(cmds.contains(&want), "{want:?} not in {cmds:?}");
        }
        datagrams.extend(from_client);
    }
    if let Some(dir) = std::env::var_os("ACPIGATE_LAN_CORPUS_DIR") {
        let dir = std::path::PathBuf::from(dir);
        for (sub, items) in [("packet", &datagrams), ("ipmi_message", &messages)] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d)?;
            for (i, item) in items.iter().enumerate() {
                std::fs::write(d.join(format!("ipmitool-{i:03}")), item)?;
            }
        }
        // The stateful target replays whole conversations: mode byte 0 (raw datagrams), then
        // every client datagram, length-prefixed.
        let d = dir.join("session");
        std::fs::create_dir_all(&d)?;
        let mut all = vec![0u8];
        for dg in &datagrams {
            all.extend_from_slice(&(dg.len() as u16).to_le_bytes());
            all.extend_from_slice(dg);
        }
        std::fs::write(d.join("ipmitool-all"), all)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_without_a_private_users_file() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bus = PrivateBus::start()?;
    let port = free_udp_port()?;
    let users = bus.dir().join("users.json");
    let config = bus.write_config(
        "lan.json",
        &format!(
            r#"{{ "listen": "127.0.0.1:{port}", "users_file": "{}" }}"#,
            users.display()
        ),
    )?;
    // No users file: no built-in user to fall back on.
    let err = Daemon::spawn_with_config(&bus, "ipmi-lan", &config)
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    ensure!(err.contains("cannot read"), "{err}");
    // A users file others can read: refused, with the fix in the message.
    std::fs::write(
        &users,
        format!(
            r#"{{ "users": [ {{ "name": "{ADMIN}", "password": "{ADMIN_PW}", "id": 2, "privilege": "admin" }} ] }}"#
        ),
    )?;
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o644))?;
    let err = Daemon::spawn_with_config(&bus, "ipmi-lan", &config)
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    ensure!(err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600))?;
    let _ok = Daemon::spawn_with_config(&bus, "ipmi-lan", &config)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_stops_the_daemon_naming_netipmid() -> Result<()> {
    let bus = PrivateBus::start()?;
    // Someone else (netipmid, on a BMC) holds the port.
    let holder = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let port = holder.local_addr()?.port();
    let config = write_lan_config(&bus, port, "", true)?;
    let err = Daemon::spawn_with_config(&bus, "ipmi-lan", &config)
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    ensure!(
        err.contains(&format!(
            "cannot listen on UDP 127.0.0.1:{port}: the port is taken"
        )) && err.contains("netipmid"),
        "{err}"
    );
    drop(holder);
    Ok(())
}

// ---- The console library (ipmi_lan::console) against the real front end ----

fn console_target(port: u16, user: &str, password: &str) -> ipmi_lan::console::Target {
    ipmi_lan::console::Target {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        user: user.as_bytes().to_vec(),
        password: password.as_bytes().to_vec(),
        suite: ipmi_lan::crypto::CipherSuite::Suite17,
        role: 0x14,
        timeout: Duration::from_millis(500),
        tries: 2,
    }
}

/// Open a console session and run `f` on it, off the async runtime (the library blocks).
async fn with_console<T: Send + 'static>(
    t: ipmi_lan::console::Target,
    f: impl FnOnce(Result<ipmi_lan::console::Session, ipmi_lan::console::ConsoleError>) -> T
    + Send
    + 'static,
) -> Result<T> {
    Ok(tokio::task::spawn_blocking(move || f(ipmi_lan::console::Session::open(t))).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_library_logs_in_asks_and_names_every_refusal() -> Result<()> {
    use ipmi_lan::console::ConsoleError;
    let rig = Rig::start(LOCKOUT_3_FAILURES_3_S).await?;

    // Logged in with random IDs and IVs, a read answered.
    let answer = with_console(console_target(rig.port, ADMIN, ADMIN_PW), |s| {
        let mut s = s?;
        s.request(netfn::APP, cmd::app::GET_ACPI_POWER_STATE, &[])
    })
    .await?;
    let r = answer.map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!((r.cc, r.data.as_slice()) == (0, &[2u8, 2][..]), "{r:?}");

    // A wrong password: said as such, one attempt (the BMC counts one failure).
    let e = with_console(console_target(rig.port, ADMIN, "guess"), |s| s.err()).await?;
    ensure!(matches!(e, Some(ConsoleError::WrongPassword)), "{e:?}");
    // An unknown user looks the same as a wrong password to the console (the BMC answers
    // an unknown name exactly as a known one, by design).
    let e = with_console(console_target(rig.port, "nobody", "x"), |s| s.err()).await?;
    ensure!(matches!(e, Some(ConsoleError::WrongPassword)), "{e:?}");
    // Two more failures lock the name: the right password is then refused by status, and
    // the error says it may be a lockout.
    for _ in 0..2 {
        with_console(console_target(rig.port, ADMIN, "guess"), |s| s.err()).await?;
    }
    let e = with_console(console_target(rig.port, ADMIN, ADMIN_PW), |s| s.err()).await?;
    ensure!(
        matches!(&e, Some(ConsoleError::UserRefused { status: 0x0D, .. }))
            && e.as_ref()
                .is_some_and(|e| e.to_string().contains("locked out") && e.is_login_refusal()),
        "{e:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_library_reports_silence_and_logs_in_again_after_a_bmc_restart() -> Result<()> {
    use ipmi_lan::console::ConsoleError;
    // Nobody listening: no answer, within tries x timeout.
    let port = free_udp_port()?;
    let started = std::time::Instant::now();
    let e = with_console(console_target(port, ADMIN, ADMIN_PW), |s| s.err()).await?;
    ensure!(
        matches!(e, Some(ConsoleError::NoAnswer { tries: 2, .. })),
        "{e:?}"
    );
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // The front end restarts (its sessions are gone): a read logs in again and is answered.
    let mut rig = Rig::start("").await?;
    let port = rig.port;
    let t = console_target(port, ADMIN, ADMIN_PW);
    let session = with_console(t, |s| s).await??;
    let config = write_lan_config(&rig.bus, port, "", true)?;
    rig.lan.kill();
    rig.lan = Daemon::spawn_with_config(&rig.bus, "ipmi-lan", &config)?;
    let (session, r) = tokio::task::spawn_blocking(move || {
        let mut s = session;
        let r = s.request(netfn::APP, cmd::app::GET_ACPI_POWER_STATE, &[]);
        (s, r)
    })
    .await?;
    let r = r.map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        r.cc == 0 && session.relogins == 1,
        "{r:?}, relogins {}",
        session.relogins
    );
    Ok(())
}
