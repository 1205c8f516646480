//! The daemon's messages to systemd (`Type=notify`, `WatchdogSec=`): `READY=1` after the first
//! iteration, `WATCHDOG=1` after every iteration (and while it waits for the next one, at half
//! the watchdog period, so a long `[daemon] interval` is not mistaken for a hang),
//! `RELOADING=1` then `READY=1` around a SIGHUP reload, `STOPPING=1` at SIGTERM, and `STATUS=`
//! with a one-line summary of the last iteration. The socket protocol is the `sd-notify`
//! crate's.
//!
//! Without `NOTIFY_SOCKET` in the environment (not started by systemd, or by a unit that is not
//! `Type=notify`) every call does nothing. A message that cannot be sent is logged once and
//! never stops the daemon: replication matters more than the service manager's view of it.

use sd_notify::NotifyState;
use std::time::Duration;

/// The longest `STATUS=` text sent (systemd shows it in `systemctl status`).
const STATUS_MAX: usize = 200;

/// Sends the daemon's state to systemd.
#[derive(Debug)]
pub struct Notifier {
    /// `NOTIFY_SOCKET` was set when the daemon started.
    enabled: bool,
    /// Half the watchdog period systemd asked for (`WATCHDOG_USEC`), if any.
    ping_every: Option<Duration>,
    /// A send failed and was logged: later failures are not.
    failed: bool,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` once.
    pub fn from_env() -> Notifier {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        Notifier {
            enabled,
            ping_every: sd_notify::watchdog_enabled()
                .filter(|_| enabled)
                .map(|d| (d / 2).max(Duration::from_millis(100))),
            failed: false,
        }
    }

    /// How often to send `WATCHDOG=1` while waiting between iterations; `None` when systemd
    /// set no watchdog.
    pub fn ping_every(&self) -> Option<Duration> {
        self.ping_every
    }

    /// After the first iteration (whether or not it succeeded: the daemon runs and retries).
    pub fn ready(&mut self, status: &str) {
        let status = one_line(status);
        self.send(&[NotifyState::Ready, NotifyState::Status(&status)]);
    }

    /// After every iteration: the loop is alive, and what it last did.
    pub fn iteration(&mut self, status: &str) {
        let status = one_line(status);
        self.send(&[NotifyState::Watchdog, NotifyState::Status(&status)]);
    }

    /// While waiting for the next iteration.
    pub fn watchdog(&mut self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// SIGHUP received: the config and the policy are being reloaded.
    pub fn reloading(&mut self) {
        let mut states = vec![NotifyState::Reloading];
        // systemd 253 and later want the time of the reload with it (sd_notify(3)).
        if let Ok(t) = NotifyState::monotonic_usec_now() {
            states.push(t);
        }
        self.send(&states);
    }

    /// The reload is over (whether the new files loaded or the old ones were kept).
    pub fn reloaded(&mut self, status: &str) {
        self.ready(status);
    }

    /// SIGTERM or SIGINT received: the daemon ends.
    pub fn stopping(&mut self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    fn send(&mut self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states)
            && !self.failed
        {
            log::warn!(
                "daemon: cannot notify systemd (NOTIFY_SOCKET): {e}; later failures are not logged"
            );
            self.failed = true;
        }
    }
}

/// One printable line of at most [`STATUS_MAX`] characters: a newline would end the `STATUS=`
/// field and start another.
fn one_line(s: &str) -> String {
    let s = crate::error::printable(s);
    if s.chars().count() <= STATUS_MAX {
        return s;
    }
    let mut cut: String = s.chars().take(STATUS_MAX - 3).collect();
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_one_line_and_bounded() {
        assert_eq!(one_line("a\nREADY=1"), "a\\nREADY=1");
        let long = "x".repeat(500);
        let s = one_line(&long);
        assert_eq!(s.chars().count(), STATUS_MAX);
        assert!(s.ends_with("..."));
        assert_eq!(one_line("short"), "short");
    }
}
