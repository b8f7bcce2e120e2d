//! systemd's `Type=notify` protocol: READY=1 once serving, WATCHDOG=1 while the runtime
//! turns. Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op, so `serve`
//! calls it unconditionally.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Tells the service manager the host is serving, and if the unit sets `WatchdogSec=`,
/// pings it at half that period from a runtime task until `shutdown`: a wedged runtime stops
/// the pings and systemd restarts the service.
pub fn ready(shutdown: &CancellationToken) {
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "could not tell systemd the host is ready");
    }
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = Duration::from_micros(usec / 2);
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}

/// Tells the service manager the host is stopping (so it does not count a slow drain as a
/// hang).
pub fn stopping() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
}
