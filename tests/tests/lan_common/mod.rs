//! Shared pieces of the LAN (RMCP+) scenarios: the ipmi-lan front end on loopback, the real
//! `ipmitool -I lanplus` in `exec` batches, a recording UDP relay, and (for session-layer
//! tests only) a stand-in `execute` responder.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acpigate_tests::harness::{Daemon, PrivateBus};
use anyhow::{Context, Result, bail};
use openbmc_vocab::ipmi::option;
use openbmc_vocab::names::{bus, path};

pub const ADMIN: &str = "admin";
pub const ADMIN_PW: &str = "Adm1n-lan-test";
pub const VIEWER: &str = "viewer";
pub const VIEWER_PW: &str = "v1ewer-lan-test";
/// The GUID the front end is configured with in tests.
pub const GUID_HEX: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";

/// Front-end config members (for `extra`): three failures lock a name out for 3 s.
pub const LOCKOUT_3_FAILURES_3_S: &str =
    r#", "lockout": { "user_failures": 3, "source_failures": 100, "duration_secs": 3 }"#;

/// A free UDP port on loopback (bound and released; the kernel does not hand it out again
/// at once).
pub fn free_udp_port() -> Result<u16> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    Ok(s.local_addr()?.port())
}

/// The front end (`acpigate ipmi-lan`) on 127.0.0.1:`port`, with a root-only users file.
/// `extra` is appended to the JSON config (e.g. `, "lockout": {...}`).
pub fn start_lan(bus: &PrivateBus, extra: &str) -> Result<(Daemon, u16)> {
    start_lan_guid(bus, extra, true)
}

/// [`start_lan`]; with `fixed_guid` false the front end takes the command server's GUID.
pub fn start_lan_guid(bus: &PrivateBus, extra: &str, fixed_guid: bool) -> Result<(Daemon, u16)> {
    let port = free_udp_port()?;
    let config = write_lan_config(bus, port, extra, fixed_guid)?;
    let d = Daemon::spawn_with_config(bus, "ipmi-lan", &config)?;
    Ok((d, port))
}

/// The front end's config for 127.0.0.1:`port` and its root-only users file (admin and
/// viewer), written into the bus's directory; returns the config's path.
pub fn write_lan_config(
    bus: &PrivateBus,
    port: u16,
    extra: &str,
    fixed_guid: bool,
) -> Result<std::path::PathBuf> {
    let users = bus.write_config(
        "ipmi-lan-users.json",
        &format!(
            r#"{{ "users": [
  {{ "name": "{ADMIN}", "password": "{ADMIN_PW}", "id": 2, "privilege": "admin" }},
  {{ "name": "{VIEWER}", "password": "{VIEWER_PW}", "id": 3, "privilege": "user" }}
] }}"#
        ),
    )?;
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600))?;
    bus.write_config(
        "ipmi-lan.json",
        &format!(
            r#"{{ "listen": "127.0.0.1:{port}", "users_file": "{}"{}{extra} }}"#,
            users.display(),
            if fixed_guid {
                format!(r#", "guid": "{GUID_HEX}""#)
            } else {
                String::new()
            }
        ),
    )
}

/// One `ipmitool -I lanplus … exec FILE` run (one process for many commands).
pub struct Ipmitool {
    pub port: u16,
    pub user: String,
    pub password: String,
    /// `-C` value; `None` lets ipmitool pick from Get Channel Cipher Suites.
    pub suite: Option<u8>,
    /// `-L` value (ipmitool's default is ADMINISTRATOR).
    pub level: Option<&'static str>,
}

impl Ipmitool {
    pub fn new(port: u16, user: &str, password: &str, suite: Option<u8>) -> Self {
        Ipmitool {
            port,
            user: user.into(),
            password: password.into(),
            suite,
            level: None,
        }
    }

    pub fn level(mut self, level: &'static str) -> Self {
        self.level = Some(level);
        self
    }

    /// Run `commands` as one exec batch; returns the process output.
    pub fn exec(&self, dir: &std::path::Path, commands: &[&str]) -> Result<Output> {
        let file = dir.join(format!("batch-{}", free_udp_port()?));
        std::fs::write(&file, commands.join("\n") + "\n")?;
        let mut cmd = Command::new("ipmitool");
        cmd.args(["-I", "lanplus", "-H", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", &self.user, "-E", "-N", "2", "-R", "2"]);
        if let Some(c) = self.suite {
            cmd.args(["-C", &c.to_string()]);
        }
        if let Some(l) = self.level {
            cmd.args(["-L", l]);
        }
        cmd.arg("exec").arg(&file);
        // -E: the password comes from the environment, not the command line.
        cmd.env("IPMI_PASSWORD", &self.password);
        cmd.output()
            .context("cannot run ipmitool (apt-get install ipmitool)")
    }

    /// [`Ipmitool::exec`] on a blocking thread, for the async scenarios.
    pub async fn exec_async(self, dir: std::path::PathBuf, commands: &[&str]) -> Result<Output> {
        let commands: Vec<String> = commands.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let c: Vec<&str> = commands.iter().map(String::as_str).collect();
            self.exec(&dir, &c)
        })
        .await?
    }

    /// Run `commands`; fail unless ipmitool succeeded. Returns stdout.
    pub fn ok(&self, dir: &std::path::Path, commands: &[&str]) -> Result<String> {
        let o = self.exec(dir, commands)?;
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        if !o.status.success() {
            bail!(
                "ipmitool {commands:?} failed ({}):\nstdout:\n{out}\nstderr:\n{}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(out)
    }
}

/// Datagrams a relay saw, in order: (from the client?, bytes).
pub type Datagrams = Arc<Mutex<Vec<(bool, Vec<u8>)>>>;

/// A UDP relay between ipmitool and the front end that records every datagram ipmitool
/// sends and every answer, in order.
pub struct Relay {
    pub port: u16,
    pub log: Datagrams,
}

impl Relay {
    /// Start relaying 127.0.0.1:<new port> → 127.0.0.1:`target` on a thread.
    pub fn start(target: u16) -> Result<Self> {
        let front = UdpSocket::bind("127.0.0.1:0")?;
        let back = UdpSocket::bind("127.0.0.1:0")?;
        back.connect(("127.0.0.1", target))?;
        front.set_read_timeout(Some(Duration::from_millis(20)))?;
        back.set_read_timeout(Some(Duration::from_millis(20)))?;
        let port = front.local_addr()?.port();
        let log: Datagrams = Arc::default();
        let l = log.clone();
        std::thread::spawn(move || {
            let mut client: Option<SocketAddr> = None;
            let mut buf = [0u8; 4096];
            loop {
                if let Ok((n, from)) = front.recv_from(&mut buf) {
                    client = Some(from);
                    if let Ok(mut g) = l.lock() {
                        g.push((true, buf[..n].to_vec()));
                    }
                    let _ = back.send(&buf[..n]);
                }
                if let Ok(n) = back.recv(&mut buf) {
                    if let Ok(mut g) = l.lock() {
                        g.push((false, buf[..n].to_vec()));
                    }
                    if let Some(c) = client {
                        let _ = front.send_to(&buf[..n], c);
                    }
                }
                if Arc::strong_count(&l) == 1 {
                    return;
                }
            }
        });
        Ok(Relay { port, log })
    }

    pub fn take(&self) -> Vec<(bool, Vec<u8>)> {
        self.log
            .lock()
            .map(|mut g| std::mem::take(&mut *g))
            .unwrap_or_default()
    }
}

/// One `execute` call as the stand-in responder saw it.
#[derive(Clone, Debug)]
pub struct Call {
    pub sender: String,
    pub netfn: u8,
    pub cmd: u8,
    pub data: Vec<u8>,
    pub privilege: Option<i32>,
    pub user_id: Option<i32>,
    pub session_id: Option<u32>,
}

#[derive(serde::Serialize, zbus::Type)]
pub struct Reply(u8, u8, u8, u8, Vec<u8>);

/// A stand-in for the command server, for session-layer tests only: it answers Get Device ID
/// with a fixed identity, `0x06 0x07` with `02 02`, and everything else with 0xC1, and
/// records each call with its options. The real scenarios use the real ipmi-handlers.
pub struct StubIpmi {
    pub calls: Arc<Mutex<Vec<Call>>>,
}

#[zbus::interface(name = "xyz.openbmc_project.Ipmi.Server", introspection_docs = false)]
impl StubIpmi {
    #[zbus(name = "execute")]
    async fn execute(
        &self,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        netfn: u8,
        lun: u8,
        cmd: u8,
        data: Vec<u8>,
        options: HashMap<String, zbus::OwnedVariant>,
    ) -> Reply {
        let int = |k: &str| options.get(k).and_then(|v| i32::try_from(v).ok());
        let call = Call {
            sender: hdr.sender().map(|s| s.to_string()).unwrap_or_default(),
            netfn,
            cmd,
            data: data.clone(),
            privilege: int(option::PRIVILEGE),
            user_id: int(option::USER_ID),
            session_id: options
                .get(option::CURRENT_SESSION_ID)
                .and_then(|v| u32::try_from(v).ok()),
        };
        if let Ok(mut g) = self.calls.lock() {
            g.push(call);
        }
        let (cc, out) = match (netfn, cmd) {
            (6, 1) => (
                0,
                vec![
                    0x20, 0x81, 0x01, 0x23, 0x02, 0xBF, 0x57, 0xA1, 0x00, 0x34, 0x12, 0, 0, 0, 0,
                ],
            ),
            (6, 7) => (0, vec![0x02, 0x02]),
            _ => (0xC1, vec![]),
        };
        Reply(netfn | 1, lun, cmd, cc, out)
    }
}

/// Serve the stand-in on the private bus as `xyz.openbmc_project.Ipmi.Host`.
pub async fn start_stub(bus: &PrivateBus) -> Result<(zbus::Connection, Arc<Mutex<Vec<Call>>>)> {
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let conn = zbus::connection::Builder::address(bus.address())
        .serve_at(
            path::IPMI,
            StubIpmi {
                calls: calls.clone(),
            },
        )
        .name(bus::IPMI_HOST)
        .build()
        .await?;
    Ok((conn, calls))
}
