//! `[timeouts]`: how long a node may stay silent, a failure is remembered, and a channel or a
//! probe may take; and the one rule between them.

use super::{Source, duration_text};
use crate::error::ConfigError;
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// Timeouts, in seconds unless stated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A node whose report sequence has not moved for this long (on this node's clock; see
    /// `db/clock.rs`) is silent: a `Yes` row is replaced, and the node is not a candidate. A
    /// policy's `silent_after` may lengthen it, never shorten it.
    pub heartbeat: i64,
    /// A `Failed` row clears back to `No` this long after it failed.
    pub failed: i64,
    /// How long to wait, after `START`, for both threads to run.
    pub connect: Duration,
    /// How long a probe of a source candidate, or a connection to a peer to fence it, may take.
    pub probe: Duration,
}

/// How long a freshly started channel must stay healthy before it counts as working.
pub const SETTLE: Duration = Duration::from_secs(1);

impl Timeouts {
    /// The longest a run goes without refreshing its heartbeat: a run refreshes it before every
    /// attempt on a source and after fencing, so the worst case is one attempt, whatever the
    /// number of sources: the probe of the candidate, then `connect` for the threads to run and
    /// `SETTLE` to see them stay up.
    pub fn longest_silence(&self) -> Duration {
        self.probe + self.connect + SETTLE
    }
}

/// The defaults of the original script where it had one.
pub const DEFAULT_HEARTBEAT_TIMEOUT: i64 = 179;
pub const DEFAULT_FAILED_TIMEOUT: i64 = 180;
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 30;
pub const DEFAULT_PROBE_TIMEOUT: u64 = 5;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    heartbeat: Option<Spanned<toml::Value>>,
    failed: Option<Spanned<toml::Value>>,
    connect: Option<Spanned<u64>>,
    probe: Option<Spanned<u64>>,
}

impl RawTimeouts {
    /// `[timeouts]`, and the one rule between them. `heartbeat` and `failed` may count in
    /// `[daemon] interval`.
    pub(super) fn check(self, src: &Source, interval: Duration) -> Result<Timeouts, ConfigError> {
        let t = self;
        let positive = |v: &Option<Spanned<toml::Value>>, key: &str, default: i64| match v {
            Some(s) => match duration_text(s.get_ref(), Some(interval)) {
                Ok(n) if n > 0 => Ok(n),
                Ok(_) => Err(src.at(
                    Some(s.span()),
                    format!("[timeouts] {key}: must be a positive number of seconds"),
                )),
                Err(e) => Err(src.at(Some(s.span()), format!("[timeouts] {key}: {e}"))),
            },
            None => Ok(default),
        };
        let seconds = |v: &Option<Spanned<u64>>, key: &str, default: u64| match v {
            Some(s) if *s.get_ref() == 0 => Err(src.at(
                Some(s.span()),
                format!("[timeouts] {key}: must be a positive number of seconds"),
            )),
            Some(s) => Ok(Duration::from_secs(*s.get_ref())),
            None => Ok(Duration::from_secs(default)),
        };
        let timeouts = Timeouts {
            heartbeat: positive(&t.heartbeat, "heartbeat", DEFAULT_HEARTBEAT_TIMEOUT)?,
            failed: positive(&t.failed, "failed", DEFAULT_FAILED_TIMEOUT)?,
            connect: seconds(&t.connect, "connect", DEFAULT_CONNECT_TIMEOUT)?,
            probe: seconds(&t.probe, "probe", DEFAULT_PROBE_TIMEOUT)?,
        };

        let worst = timeouts.longest_silence().as_secs();
        if worst as i64 >= timeouts.heartbeat {
            return Err(src.at(
            t.heartbeat.as_ref().map(|s| s.span()),
            format!(
                "[timeouts] heartbeat ({} s) must be longer than the longest time a run goes without refreshing its heartbeat: one source attempt, probe ({} s) + connect ({} s) + {} s for the channel to settle = {worst} s. A run refreshes its heartbeat before every attempt, so the number of sources does not add to it; leave room for the cron interval too (the defaults: 179 s > 60 s + {} s)",
                timeouts.heartbeat,
                timeouts.probe.as_secs(),
                timeouts.connect.as_secs(),
                SETTLE.as_secs(),
                DEFAULT_PROBE_TIMEOUT + DEFAULT_CONNECT_TIMEOUT + SETTLE.as_secs(),
            ),
        ));
        }
        Ok(timeouts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_INTERVAL;
    use crate::config::tests::parse;

    #[test]
    fn a_heartbeat_timeout_shorter_than_one_source_attempt_is_refused() {
        let e = parse("[timeouts]\nheartbeat = 20\nconnect = 30\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(
            e.message
                .contains("probe (5 s) + connect (30 s) + 1 s for the channel to settle = 36 s"),
            "{e}"
        );
        // Exactly one attempt is still too long; one second more is enough.
        assert!(parse("[timeouts]\nheartbeat = 8\nconnect = 5\nprobe = 2\n").is_err());
        let c = parse("[timeouts]\nheartbeat = 9\nconnect = 5\nprobe = 2\n").unwrap();
        assert_eq!(c.timeouts.longest_silence(), Duration::from_secs(8));
    }

    #[test]
    fn wrong_type_names_line() {
        let e = parse("[timeouts]\nheartbeat = \"soon\"\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("is not a duration"), "{e}");
        let e = parse("[timeouts]\nconnect = \"soon\"\n").unwrap_err();
        assert!(e.message.contains("invalid type"), "{e}");
    }

    #[test]
    fn timeouts_may_be_durations_or_a_number_of_daemon_intervals() {
        let c = parse("[daemon]\ninterval = \"2s\"\n[timeouts]\nheartbeat = \"5 intervals\"\nfailed = \"3m\"\nconnect = 3\nprobe = 1\n").unwrap();
        assert_eq!(c.daemon.interval, Duration::from_secs(2));
        assert_eq!((c.timeouts.heartbeat, c.timeouts.failed), (10, 180));
        let c = parse("[timeouts]\nheartbeat = \"179s\"\n").unwrap();
        assert_eq!(c.timeouts.heartbeat, 179);
        assert_eq!(c.daemon.interval, DEFAULT_INTERVAL);
        // Relative to the default interval (10 s) when [daemon] does not set it.
        assert_eq!(
            parse("[timeouts]\nheartbeat = \"18 intervals\"\n")
                .unwrap()
                .timeouts
                .heartbeat,
            180
        );
        let e = parse("[daemon]\ninterval = 90\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("outside 1 s to 60 s"), "{e}");
        let e = parse("[daemon]\ninterval = \"2 intervals\"\n").unwrap_err();
        assert!(e.message.starts_with("[daemon] interval:"), "{e}");
        let e = parse("[timeouts]\nfailed = \"0 intervals\"\n").unwrap_err();
        assert!(e.message.contains("positive"), "{e}");
    }
}
