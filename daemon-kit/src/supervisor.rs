//! systemd readiness, watchdog and termination signals.

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

/// A task that pets the watchdog while the runtime is responsive. Because it runs on the same
/// single-threaded runtime as the daemon, a stalled event loop stops the petting and systemd
/// restarts us. `ACPIGATE_TEST_FREEZE_FILE`, if set, names a file whose existence makes the
/// task stop petting: the machine-tier test's way to freeze a daemon.
pub async fn watchdog_task() {
    let Some(every) = watchdog_interval() else {
        return std::future::pending().await;
    };
    let freeze = std::env::var_os("ACPIGATE_TEST_FREEZE_FILE").map(std::path::PathBuf::from);
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if freeze.as_ref().is_some_and(|f| f.exists()) {
            log::warn!("watchdog: freeze file present, no longer petting the watchdog");
            return std::future::pending().await;
        }
        pet_watchdog();
    }
}
