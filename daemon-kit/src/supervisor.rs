//! systemd readiness, watchdog and termination signals.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Tell systemd we are ready (no-op without `NOTIFY_SOCKET`). It takes the [`Termination`]
/// handle so that no daemon can say READY before it catches SIGTERM: a stop sent right after
/// READY would otherwise kill it outright instead of letting it shut down cleanly.
pub fn notify_ready(_caught: &Termination) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
}

/// Tell systemd we are stopping.
pub fn notify_stopping() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
}

/// Report a status line (`systemctl status` shows it).
pub fn notify_status(status: &str) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(status)]);
}

/// The interval at which to pet the watchdog (half of `WatchdogSec=`), if enabled.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}

/// Pet the watchdog.
pub fn pet_watchdog() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
}

/// SIGTERM and SIGINT, caught from the moment this exists (not from the first poll).
pub struct Termination {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Termination {
    /// Install the handlers; call inside the tokio runtime, before [`notify_ready`].
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves with the signal's name when one arrives.
    pub async fn wait(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// A daemon's life under systemd, in the order that keeps it safe: [`Lifecycle::start`]
/// catches SIGTERM/SIGINT before the daemon does anything slow; [`Lifecycle::ready`] says
/// READY once it serves and from then on pets the watchdog while the probe answers;
/// [`Lifecycle::stop_requested`] resolves on a signal; [`Lifecycle::stopping`] says STOPPING.
pub struct Lifecycle {
    termination: Termination,
    watchdog: tokio::task::JoinHandle<()>,
    arm: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Lifecycle {
    /// Catch the termination signals and prepare the watchdog supervision with `probe` (see
    /// [`Probe`]; without `WATCHDOG_USEC` there is none), which begins at [`Lifecycle::ready`];
    /// call inside the runtime.
    pub fn start(probe: Probe) -> std::io::Result<Self> {
        let termination = Termination::install()?;
        let (arm, armed) = tokio::sync::oneshot::channel();
        let watchdog = tokio::spawn(async move {
            if let Some(every) = watchdog_interval() {
                supervise_once_armed(armed, every, probe, pet_watchdog).await;
            }
        });
        Ok(Self {
            termination,
            watchdog,
            arm: Some(arm),
        })
    }

    /// Tell systemd we are ready (the signals are already caught, see [`notify_ready`]) and
    /// start the watchdog supervision. Not earlier: systemd arms `WatchdogSec=` only once
    /// start-up completes (systemd.service(5)), and before the daemon owns its well-known
    /// name the bus policy refuses the probe's call to our own connection, so probing sooner
    /// would only log false "not petting" errors.
    pub fn ready(&mut self) {
        notify_ready(&self.termination);
        if let Some(arm) = self.arm.take() {
            let _ = arm.send(());
        }
    }

    /// Resolves with the signal's name when SIGTERM or SIGINT arrives.
    pub async fn stop_requested(&mut self) -> &'static str {
        self.termination.wait().await
    }

    /// Tell systemd we are stopping, and why (logged); the watchdog is no longer petted.
    pub fn stopping(self, why: &str) {
        notify_stopping();
        log::info!("stopping ({why})");
        self.watchdog.abort();
    }
}

/// What a daemon proves before each pet of the watchdog: typically a round trip through its
/// own event loop (a message its loop must take and answer) and through its bus connection
/// ([`bus_round_trip`]). `Err` says what did not answer.
pub type Probe =
    Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send>;

/// [`supervise`], from the moment `armed` fires; a sender dropped unsent means the daemon
/// stopped before it was ready, and there is nothing to pet.
async fn supervise_once_armed(
    armed: tokio::sync::oneshot::Receiver<()>,
    every: Duration,
    probe: Probe,
    pet: impl FnMut(),
) {
    if armed.await.is_ok() {
        supervise(every, probe, pet).await;
    }
}

/// Pet systemd's watchdog only while the daemon shows progress: every half `WatchdogSec` the
/// probe runs, with that half as its deadline, and only a probe that succeeds is followed by a
/// pet. A stalled loop or a dead bus connection therefore stops the petting even though this
/// task itself keeps running, and systemd restarts the daemon once `WatchdogSec` passes.
async fn supervise(every: Duration, mut probe: Probe, mut pet: impl FnMut()) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let outcome = match tokio::time::timeout(every, probe()).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} ms", every.as_millis())),
        };
        match outcome {
            Ok(()) => {
                if failing {
                    log::info!("watchdog: the daemon answers again; petting resumes");
                    failing = false;
                }
                pet();
            }
            Err(why) => {
                if !failing {
                    log::error!(
                        "watchdog: not petting, the daemon did not show progress ({why}); \
                         systemd restarts it if this lasts WatchdogSec"
                    );
                    failing = true;
                }
            }
        }
    }
}

/// A round trip through the bus: `org.freedesktop.DBus.GetId` to the bus daemon goes out
/// through this connection and its reply comes back in through the connection's reader.
///
/// Why the bus daemon and not a `Peer.Ping` to our own unique name: the standard system bus
/// policy (dbus's `system.conf`: `<deny send_type="method_call"/>`, holes punched per name)
/// refuses a call to a connection unless it owns a name the policy opens for sending. A
/// daemon that owns no such name (ipmi-lan) would then never pet, and systemd would kill it
/// every `WatchdogSec`; the calls to `org.freedesktop.DBus` every client needs are open in
/// every policy.
pub async fn bus_round_trip(conn: &zbus::Connection) -> Result<(), String> {
    use openbmc_vocab::names::{bus, iface, method, path};
    conn.call_method(
        Some(bus::DBUS),
        path::DBUS,
        Some(iface::DBUS),
        method::GET_ID,
        &(),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("bus round trip: {e}"))
}

/// A probe of the bus connection alone, for daemons whose loop is the object server itself.
pub fn bus_probe(conn: zbus::Connection) -> Probe {
    Box::new(move || {
        let conn = conn.clone();
        Box::pin(async move { bus_round_trip(&conn).await })
    })
}

/// What a daemon's loop receives from [`loop_and_bus_probe`]: it answers each probe
/// (`let _ = done.send(())`) between pieces of work.
pub type ProbeRequests = tokio::sync::mpsc::Receiver<tokio::sync::oneshot::Sender<()>>;

/// A probe through the daemon's own loop, then through its bus connection: the watchdog is
/// petted only while the loop takes each probe (so a loop stuck on an await, not just one
/// that blocks the thread, stops the petting) and the bus answers.
pub fn loop_and_bus_probe(conn: zbus::Connection) -> (Probe, ProbeRequests) {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let probe: Probe = Box::new(move || {
        let tx = tx.clone();
        let conn = conn.clone();
        Box::pin(async move {
            let (done, answered) = tokio::sync::oneshot::channel();
            tx.try_send(done)
                .map_err(|_| "the loop has not taken the last probe".to_owned())?;
            answered.await.map_err(|_| "the loop is gone".to_owned())?;
            bus_round_trip(&conn).await
        })
    });
    (probe, rx)
}

/// The machine tier's way to stall a daemon's event loop, as a bug would, and see systemd's
/// watchdog restart it: only with the command-line option `--test-stall-signal`, never by
/// default. With it, SIGUSR2 makes [`StallSwitch::pulled`] resolve; the daemon's loop then
/// stops for good.
pub struct StallSwitch(Option<tokio::signal::unix::Signal>);

impl StallSwitch {
    /// The option on the command line that arms the switch.
    pub const OPTION: &'static str = "--test-stall-signal";

    /// Armed (listening for SIGUSR2) when `armed`; call inside the runtime.
    pub fn new(armed: bool) -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        if !armed {
            return Ok(Self(None));
        }
        log::warn!(
            "{}: SIGUSR2 will stall this daemon's event loop (a test option)",
            Self::OPTION
        );
        Ok(Self(Some(signal(SignalKind::user_defined2())?)))
    }

    /// Resolves when SIGUSR2 arrives on an armed switch; never otherwise.
    pub async fn pulled(&mut self) {
        match &mut self.0 {
            Some(sig) => {
                sig.recv().await;
                log::warn!("SIGUSR2 ({}): stalling the event loop", Self::OPTION);
            }
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

    fn probe_from(f: impl Fn(u32) -> Option<bool> + Send + Sync + 'static) -> Probe {
        let n = Arc::new(AtomicU32::new(0));
        let f = Arc::new(f);
        Box::new(move || {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let f = f.clone();
            Box::pin(async move {
                match f(i) {
                    Some(true) => Ok(()),
                    Some(false) => Err("refused".to_owned()),
                    // Never answers: a stalled loop.
                    None => std::future::pending().await,
                }
            })
        })
    }

    async fn pets_in(probe: Probe, ticks: u32) -> usize {
        let pets = Arc::new(AtomicUsize::new(0));
        let p = pets.clone();
        let every = Duration::from_secs(5);
        let task = tokio::spawn(supervise(every, probe, move || {
            p.fetch_add(1, Ordering::Relaxed);
        }));
        // The first tick is immediate; then one per interval (plus a probe's deadline).
        tokio::time::sleep(every * ticks * 2).await;
        task.abort();
        pets.load(Ordering::Relaxed)
    }

    #[tokio::test(start_paused = true)]
    async fn a_daemon_that_answers_is_petted_every_interval() {
        let pets = pets_in(probe_from(|_| Some(true)), 4).await;
        assert!(pets >= 7, "{pets} pets in 8 intervals");
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_probed_or_petted_before_ready() {
        let probes = Arc::new(AtomicU32::new(0));
        let pets = Arc::new(AtomicUsize::new(0));
        let (n, p) = (probes.clone(), pets.clone());
        let probe: Probe = Box::new(move || {
            n.fetch_add(1, Ordering::Relaxed);
            Box::pin(async { Ok(()) })
        });
        let every = Duration::from_secs(5);
        let (arm, armed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(supervise_once_armed(armed, every, probe, move || {
            p.fetch_add(1, Ordering::Relaxed);
        }));
        tokio::time::sleep(every * 10).await;
        assert_eq!(probes.load(Ordering::Relaxed), 0, "probed before ready");
        assert_eq!(pets.load(Ordering::Relaxed), 0, "petted before ready");
        arm.send(()).expect("the supervisor waits");
        tokio::time::sleep(every * 4).await;
        task.abort();
        assert!(probes.load(Ordering::Relaxed) >= 4);
        assert!(pets.load(Ordering::Relaxed) >= 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_daemon_stopped_before_ready_is_never_probed() {
        let probes = Arc::new(AtomicU32::new(0));
        let n = probes.clone();
        let probe: Probe = Box::new(move || {
            n.fetch_add(1, Ordering::Relaxed);
            Box::pin(async { Ok(()) })
        });
        let (arm, armed) = tokio::sync::oneshot::channel::<()>();
        drop(arm);
        supervise_once_armed(armed, Duration::from_secs(5), probe, || {}).await;
        assert_eq!(probes.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_loop_is_never_petted() {
        assert_eq!(pets_in(probe_from(|_| None), 4).await, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_probe_is_not_petted_and_petting_resumes_when_it_answers() {
        // Answers for the first two probes, fails for the next three, then answers again.
        let pets = pets_in(probe_from(|i| Some(!(2..5).contains(&i))), 4).await;
        let all = pets_in(probe_from(|_| Some(true)), 4).await;
        assert_eq!(
            pets + 3,
            all,
            "exactly the three failed probes went unpetted"
        );
    }
}
