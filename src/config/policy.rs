//! `[policy]`: which policy runs, with what site variables, and its [`Limits`]: what one call
//! of it may cost.

use super::Source;
use super::timeouts::{SETTLE, Timeouts};
use crate::error::ConfigError;
use serde::Deserialize;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

#[derive(Clone, Debug, PartialEq)]
pub struct PolicyConfig {
    /// A site policy; the built-in `policies/default.rhai` when not set.
    pub file: Option<PathBuf>,
    /// What one policy call may cost.
    pub limits: Limits,
    /// Spread the links of a cluster that replicates from several remotes across its nodes.
    pub distribute: bool,
    /// Site variables handed to the policy as `settings().vars`.
    pub vars: toml::Table,
}

/// The sandbox's bounds on the policy (`[policy]`): a mistake in a site policy costs at most one
/// clear error, never the host's memory, a held lock or a flooded mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most Rhai operations one call (one link's `manage_link`, or a hook) may take.
    pub max_operations: u64,
    /// The most memory one call may hold, in bytes, counted by the process's allocator: map
    /// keys, strings built by formatting and what host calls return all count.
    pub max_memory: usize,
    /// The wall-clock deadline of one call, host calls that touch the network included.
    pub max_seconds: Duration,
    /// The most lines a run's policy may log (`log`, `warn`, `print`, `debug`)...
    pub max_log_lines: usize,
    /// ... and their total size in bytes; past either, one line says how much was dropped.
    pub max_log_bytes: usize,
    /// The most mails the policy may send per link and run (`notify`).
    pub max_mails: usize,
    /// A policy's own mails (`notify` outside a host event) go out at most once per link in
    /// this time; those in between are counted, and the next says how many were held back.
    pub notify_every: Duration,
}

/// `[policy] max_operations` when not set: the most Rhai operations one link's call may take.
pub const DEFAULT_MAX_OPERATIONS: u64 = 200_000;

/// `[policy]` limits when not set.
pub const DEFAULT_MAX_MEMORY_MIB: u64 = 32;
pub const DEFAULT_MAX_SECONDS: u64 = 45;
pub const DEFAULT_MAX_LOG_LINES: usize = 200;
pub const DEFAULT_MAX_LOG_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_MAILS: usize = 5;
pub const DEFAULT_NOTIFY_EVERY: u64 = 600;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_operations: DEFAULT_MAX_OPERATIONS,
            max_memory: (DEFAULT_MAX_MEMORY_MIB as usize) << 20,
            max_seconds: Duration::from_secs(DEFAULT_MAX_SECONDS),
            max_log_lines: DEFAULT_MAX_LOG_LINES,
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            max_mails: DEFAULT_MAX_MAILS,
            notify_every: Duration::from_secs(DEFAULT_NOTIFY_EVERY),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    file: Option<PathBuf>,
    max_operations: Option<Spanned<u64>>,
    max_memory_mib: Option<Spanned<u64>>,
    max_seconds: Option<Spanned<u64>>,
    max_log_lines: Option<Spanned<u64>>,
    max_log_bytes: Option<Spanned<u64>>,
    max_mails: Option<Spanned<u64>>,
    notify_every: Option<Spanned<u64>>,
    distribute: Option<bool>,
    vars: Option<toml::Table>,
}

impl RawPolicy {
    /// `[policy]`; the time limit must leave room for one source attempt of `timeouts`.
    pub(super) fn check(
        self,
        src: &Source,
        timeouts: &Timeouts,
    ) -> Result<PolicyConfig, ConfigError> {
        let max_seconds = self.max_seconds(src, timeouts)?;
        let limits = self.limits(max_seconds, src)?;
        Ok(PolicyConfig {
            file: self.file.map(|p| src.rel(p)),
            limits,
            distribute: self.distribute.unwrap_or(true),
            vars: self.vars.unwrap_or_default(),
        })
    }

    /// `max_seconds`, within its range and longer than one source attempt of `timeouts`: a
    /// policy call that could never connect is refused here rather than at every run.
    fn max_seconds(&self, src: &Source, timeouts: &Timeouts) -> Result<u64, ConfigError> {
        let max_seconds = limit(
            src,
            &self.max_seconds,
            "max_seconds",
            DEFAULT_MAX_SECONDS,
            1..=3600,
            "seconds",
        )?;
        let attempt = timeouts.longest_silence().as_secs();
        if max_seconds <= attempt {
            return Err(src.at(
                self.max_seconds.as_ref().map(|s| s.span()),
                format!(
                    "[policy] max_seconds ({max_seconds} s) must be longer than one source attempt, [timeouts] probe ({} s) + connect ({} s) + {} s for the channel to settle = {attempt} s: otherwise no policy call could ever connect",
                    timeouts.probe.as_secs(),
                    timeouts.connect.as_secs(),
                    SETTLE.as_secs()
                ),
            ));
        }
        Ok(max_seconds)
    }

    /// The [`Limits`], each within its range; `max_seconds` is already checked.
    fn limits(&self, max_seconds: u64, src: &Source) -> Result<Limits, ConfigError> {
        Ok(Limits {
            max_operations: limit(
                src,
                &self.max_operations,
                "max_operations",
                DEFAULT_MAX_OPERATIONS,
                1_000..=1_000_000_000,
                "operations",
            )?,
            max_memory: (limit(
                src,
                &self.max_memory_mib,
                "max_memory_mib",
                DEFAULT_MAX_MEMORY_MIB,
                1..=4096,
                "MiB",
            )? as usize)
                << 20,
            max_seconds: Duration::from_secs(max_seconds),
            max_log_lines: limit(
                src,
                &self.max_log_lines,
                "max_log_lines",
                DEFAULT_MAX_LOG_LINES as u64,
                1..=1_000_000,
                "lines",
            )? as usize,
            max_log_bytes: limit(
                src,
                &self.max_log_bytes,
                "max_log_bytes",
                DEFAULT_MAX_LOG_BYTES as u64,
                1024..=1 << 30,
                "bytes",
            )? as usize,
            max_mails: limit(
                src,
                &self.max_mails,
                "max_mails",
                DEFAULT_MAX_MAILS as u64,
                1..=1000,
                "mails per link and run; to send none, set [mail] transport = \"none\"",
            )? as usize,
            notify_every: Duration::from_secs(limit(
                src,
                &self.notify_every,
                "notify_every",
                DEFAULT_NOTIFY_EVERY,
                0..=86_400,
                "seconds between two of the policy's own mails about one link",
            )?),
        })
    }
}

/// One limit: a whole number within `range`, `default` when not set; out of the range, the
/// error names the key and why.
fn limit(
    src: &Source,
    v: &Option<Spanned<u64>>,
    key: &str,
    default: u64,
    range: RangeInclusive<u64>,
    what: &str,
) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) if range.contains(s.get_ref()) => Ok(*s.get_ref()),
        Some(s) => Err(src.at(
            Some(s.span()),
            format!(
                "[policy] {key} = {}: must be from {} to {} {what} (default {default})",
                s.get_ref(),
                range.start(),
                range.end()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    #[test]
    fn a_limit_out_of_range_names_its_key_its_range_and_its_default() {
        let e = parse("[policy]\nmax_mails = 0\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert_eq!(
            e.message,
            "[policy] max_mails = 0: must be from 1 to 1000 mails per link and run; to send none, set [mail] transport = \"none\" (default 5)"
        );
        let e = parse("[policy]\nmax_log_bytes = 1073741825\n").unwrap_err();
        assert_eq!(
            e.message,
            "[policy] max_log_bytes = 1073741825: must be from 1024 to 1073741824 bytes (default 65536)"
        );
        let c = parse("[policy]\nmax_memory_mib = 2\nnotify_every = 0\n").unwrap();
        assert_eq!(c.policy.limits.max_memory, 2 << 20);
        assert_eq!(c.policy.limits.notify_every, Duration::ZERO);
        assert_eq!(parse("").unwrap().policy.limits, Limits::default());
    }

    #[test]
    fn the_time_limit_must_outlast_one_source_attempt() {
        let e = parse("[policy]\nmax_seconds = 36\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert_eq!(
            e.message,
            "[policy] max_seconds (36 s) must be longer than one source attempt, [timeouts] probe (5 s) + connect (30 s) + 1 s for the channel to settle = 36 s: otherwise no policy call could ever connect"
        );
        let c = parse("[policy]\nmax_seconds = 37\n").unwrap();
        assert_eq!(c.policy.limits.max_seconds, Duration::from_secs(37));
    }
}
