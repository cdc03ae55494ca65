//! systemd readiness, watchdog and termination signals.

use std::time::Duration;

/// Tell systemd we are ready (no-op without `NOTIFY_SOCKET`).
pub fn notify_ready() {
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

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn terminated() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => Ok("SIGTERM"),
        _ = int.recv() => Ok("SIGINT"),
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
