//! `[daemon]`: how often the daemon runs (the interval timeouts may count in) and where it
//! serves its metrics.

use super::{Source, duration_text};
use crate::error::ConfigError;
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// `[daemon]`: how `pxc-replication-manager daemon` runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Daemon {
    /// Time between the starts of two runs, 1 s to 60 s. Timeouts written as a number of
    /// intervals (`heartbeat = "5 intervals"`) count in it, in cron mode too (set it to the
    /// cron period there).
    pub interval: Duration,
    /// Where the daemon serves Prometheus metrics (`/metrics`), if anywhere; the command
    /// line's `--metrics-listen` overrides it.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// The shortest and longest `[daemon] interval`.
pub const INTERVAL_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

impl Daemon {
    /// A replica daemon that has not refreshed its own report for this long stops its channel
    /// itself (see `app::daemon`): two thirds of the silent threshold, so that it has stopped
    /// before any peer, which waits for the whole threshold on its own clock, replaces it.
    pub fn self_fence_after(threshold_secs: i64) -> Duration {
        Duration::from_millis((threshold_secs.max(1) as u64) * 2000 / 3)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    interval: Option<Spanned<toml::Value>>,
    metrics_listen: Option<Spanned<String>>,
}

impl RawDaemon {
    /// `[daemon]`.
    pub(super) fn check(self, src: &Source) -> Result<Daemon, ConfigError> {
        let metrics_listen = match self.metrics_listen {
            None => None,
            Some(a) => Some(a.get_ref().trim().parse().map_err(|_| {
                src.at(
                    Some(a.span()),
                    format!(
                        "[daemon] metrics_listen: {:?} is not an IP address and port (e.g. \"127.0.0.1:9333\", or \"[::1]:9333\")",
                        a.get_ref()
                    ),
                )
            })?),
        };
        let Some(v) = self.interval else {
            return Ok(Daemon {
                interval: DEFAULT_INTERVAL,
                metrics_listen,
            });
        };
        let secs = duration_text(v.get_ref(), None)
            .map_err(|e| src.at(Some(v.span()), format!("[daemon] interval: {e}")))?;
        let (lo, hi) = INTERVAL_RANGE;
        if secs < lo.as_secs() as i64 || secs > hi.as_secs() as i64 {
            return Err(src.at(
                Some(v.span()),
                format!(
                    "[daemon] interval: {secs} s is outside {} s to {} s",
                    lo.as_secs(),
                    hi.as_secs()
                ),
            ));
        }
        Ok(Daemon {
            interval: Duration::from_secs(secs as u64),
            metrics_listen,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    #[test]
    fn metrics_listen_is_an_address_and_a_bad_one_names_key_and_line() {
        let c = parse("[daemon]\nmetrics_listen = \"127.0.0.1:9333\"\n").unwrap();
        assert_eq!(
            c.daemon.metrics_listen,
            Some("127.0.0.1:9333".parse().unwrap())
        );
        assert_eq!(parse("").unwrap().daemon.metrics_listen, None);
        let e = parse("[daemon]\ninterval = 5\nmetrics_listen = \"localhost\"\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.starts_with("[daemon] metrics_listen:"), "{e}");
    }

    #[test]
    fn a_replica_fences_itself_at_two_thirds_of_the_silent_threshold() {
        assert_eq!(Daemon::self_fence_after(6), Duration::from_secs(4));
        assert_eq!(
            Daemon::self_fence_after(179),
            Duration::from_millis(119_333)
        );
    }
}
