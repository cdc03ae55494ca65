//! The I/O edge (feature `daemon`): a UDP socket, the system bus (owning
//! `xyz.openbmc_project.Ipmi.Channel.<channel>` so the command server knows which channel
//! calls it), `execute` calls, a timer only while the core has something to expire
//! ([`crate::core::Core::next_deadline`]), the clocks the core is told
//! (`daemon_kit::time::now`), and logging of the core's notes. No policy decision is made
//! here.
//!
//! * [`config`] — the configuration file, validated at start (`file:line: reason`);
//! * [`users`] — the root-only users file: permission checks, then the core's rules;
//! * `execute` — the `execute` calls, with netipmid's options, and Get System GUID at start.

pub mod config;
mod execute;
pub mod users;

use anyhow::{Context, Result};
use daemon_kit::startup::{Applet, Opt};
use daemon_kit::supervisor::Lifecycle;
use openbmc_vocab::names::bus;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::core::users::UserDb;
use crate::core::{Action, Core, ExecuteReply, Note, OsRandom};
use config::Settings;

/// What the shared start-up needs to know about this daemon.
pub const APPLET: Applet = Applet {
    name: "ipmi-lan",
    about: "  RMCP+ (IPMI 2.0 LAN) front end: answers ipmitool -I lanplus on UDP and forwards\n  \
            requests to xyz.openbmc_project.Ipmi.Server.execute on the system bus\n  \
            (DBUS_SYSTEM_BUS_ADDRESS is honoured); built-in defaults if the default file is\n  \
            absent. Users come from a root-only file (default /etc/acpigate/ipmi-lan-users.json).",
    default_config: config::DEFAULT_CONFIG,
    options: &[Opt {
        name: "--listen",
        value: Some("ADDRESS:PORT"),
        help: "listen here instead of the configured address",
    }],
};

/// The `ipmi-lan` applet.
pub fn main_with_args(args: Vec<String>) -> Result<()> {
    APPLET.main(
        &args,
        |inv| {
            let mut settings = config::load(inv.config.as_deref())?;
            if let Some(l) = inv.value("--listen") {
                settings.listen = l
                    .parse()
                    .with_context(|| format!("--listen `{l}`: want ADDRESS:PORT"))?;
            }
            let users = users::load(&settings.users_file)?;
            // Fail now, not at the first login, if the OS cannot give us random numbers.
            getrandom::u32()
                .map_err(|e| anyhow::anyhow!("the OS random number generator fails: {e}"))?;
            Ok((settings, users))
        },
        |(settings, users)| format!("{} users, listening on {}", users.len(), settings.listen),
        |(settings, users), _| run(settings, users),
    )
}

async fn run(settings: Settings, users: UserDb) -> Result<()> {
    let sock = match UdpSocket::bind(settings.listen).await {
        Ok(s) => s,
        // The usual cause on a BMC: upstream netipmid holds the port on some interface.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => anyhow::bail!(
            "cannot listen on UDP {}: the port is taken; on OpenBMC usually by netipmid \
             (see `systemctl list-units 'phosphor-ipmi-net@*'`), which the drop-ins installed \
             with ipmi-lan keep from starting unless it was started by hand",
            settings.listen
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot listen on UDP {}", settings.listen));
        }
    };
    let channel_bus_name = format!("{}{}", bus::IPMI_CHANNEL_PREFIX, settings.channel_name);
    let conn =
        daemon_kit::bus::build(zbus::connection::Builder::system().name(channel_bus_name.as_str()))
            .await
            .with_context(|| format!("cannot own {channel_bus_name} on the system bus"))?;
    log::info!(
        "listening on UDP {} as {} ({} users, cipher suites {:?})",
        sock.local_addr().unwrap_or(settings.listen),
        channel_bus_name,
        users.len(),
        settings
            .core
            .cipher_suites
            .iter()
            .map(|s| s.id())
            .collect::<Vec<_>>()
    );
    let mut core_cfg = settings.core.clone();
    if !settings.guid_configured {
        match execute::system_guid(&conn, settings.execute_timeout).await {
            Ok(g) => core_cfg.guid = g,
            Err(e) => log::warn!(
                "no system GUID from the command server ({e:#}); RAKP uses one derived from /etc/machine-id"
            ),
        }
    }
    let mut core = Core::new(core_cfg, users, OsRandom);
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, ExecuteReply)>();
    let mut buf = vec![0u8; 2048];
    // The watchdog is petted only while this loop takes its probes and the bus answers.
    let (probe, mut probes) = daemon_kit::supervisor::loop_and_bus_probe(conn.clone());
    let mut life = Lifecycle::start(probe).context("cannot install signal handlers")?;
    life.ready();
    loop {
        // Sleep until the core has something to expire; with nothing to expire, no timer.
        let deadline = core.next_deadline();
        let expiry = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        let actions = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, from)) => core.on_datagram(daemon_kit::time::now(), from, &buf[..n]),
                Err(e) => {
                    // ICMP errors from an earlier send surface here on Linux; not fatal.
                    log::debug!("recv: {e}");
                    continue;
                }
            },
            Some((token, reply)) = rx.recv() => core.on_execute_reply(token, reply),
            () = expiry => core.on_tick(daemon_kit::time::now()),
            Some(done) = probes.recv() => {
                let _ = done.send(());
                continue;
            }
            sig = life.stop_requested() => {
                life.stopping(sig);
                return Ok(());
            }
        };
        for a in actions {
            match a {
                Action::Send { to, data } => {
                    if let Err(e) = sock.send_to(&data, to).await {
                        log::debug!("send to {to}: {e}");
                    }
                }
                Action::Execute(req) => {
                    tokio::spawn(execute::execute(
                        conn.clone(),
                        req,
                        settings.execute_timeout,
                        tx.clone(),
                    ));
                }
                Action::Note(n) => log_note(&n),
            }
        }
    }
}

fn log_note(n: &Note) {
    match n {
        Note::SessionOpened {
            session_id,
            user,
            user_id,
            peer,
            suite,
        } => log::info!(
            "session {session_id:#010x} opened: user \"{user}\" (id {user_id}) from {peer}, cipher suite {suite}"
        ),
        Note::SessionClosed { session_id, reason } => {
            log::info!("session {session_id:#010x} closed: {reason:?}")
        }
        Note::AuthFailed { user, peer, why } => {
            log::warn!("login failed: user \"{user}\" from {peer}: {why}")
        }
        Note::LoginRefused { user, peer, why } => {
            log::warn!("login refused: user \"{user}\" from {peer}: {why}")
        }
        Note::LockEngaged(k) => log::warn!("lockout engaged for {k:?}"),
        Note::LockReleased(k) => log::info!("lockout released for {k:?}"),
        Note::Dropped { peer, why } => log::debug!("dropped packet from {peer}: {why}"),
        Note::RandomFailed => log::error!("the OS random number generator failed"),
    }
}
