//! The node's counters for monitoring: failovers by cause, fences, and the outcome and duration
//! of its runs. They live in the node's state file (`[files] state`, inside the memory of
//! peers, `Observations` in `db/clock.rs`), so they survive restarts of the daemon and go on from
//! one cron run to the next; `status --format prometheus` and the daemon's `/metrics` render
//! them (`app/prometheus.rs`).
//!
//! Counters only grow (a Prometheus counter); a state file that is lost or unreadable starts
//! them again from zero, which `rate()` and `increase()` treat as a counter reset.
//!
//! What counts:
//! * [`Counters::failover`]: this node took a link over or moved it to another source, with
//!   its cause (one of [`FAILOVER_CAUSES`], or any other short word);
//! * [`Counters::fence`]: this node stopped another node's channel before taking a link;
//! * [`Counters::fence_blocked`]: a fence failed on a peer that may still replicate, so this
//!   node's takeover of a link waited (once per run and link);
//! * [`Counters::run_finished`]: a run ended. A run is **successful** when its exit code is 0:
//!   no link's policy call or rules failed, every mail went out, and the state file was read.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The failover causes rendered with a 0 series for every link even before one happened, so
/// that `increase(pxcrm_failovers_total[1h])` sees the first failover too. A cause not listed
/// here (read from an older state file) is counted and rendered all the same, from its first
/// occurrence.
pub const FAILOVER_CAUSES: [&str; 6] = [
    Cause::SourceLost.as_str(),
    Cause::SourceCheck.as_str(),
    Cause::SilentReplica.as_str(),
    Cause::FailedReplica.as_str(),
    Cause::Election.as_str(),
    Cause::Switchover.as_str(),
];

/// Why this node failed a link over: took it, or moved it to another source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The replica's IO thread lost its source; it moved to another one.
    SourceLost,
    /// The replica's source failed the check (not Primary and Synced, or not answering).
    SourceCheck,
    /// The replica stopped reporting or left the view; this node took the link over.
    SilentReplica,
    /// The replica reported Failed (e.g. its SQL thread stopped on an error); this node took
    /// over.
    FailedReplica,
    /// Nobody held the link; this node was elected.
    Election,
    /// An operator moved the replica here (`switchover`).
    Switchover,
}

impl Cause {
    /// Its label value in the metrics and its name in the state file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Cause::SourceLost => "source_lost",
            Cause::SourceCheck => "source_check",
            Cause::SilentReplica => "silent_replica",
            Cause::FailedReplica => "failed_replica",
            Cause::Election => "election",
            Cause::Switchover => "switchover",
        }
    }
}

/// The longest cause kept; a longer one is cut (a label value must stay short).
const MAX_CAUSE: usize = 64;

/// What a node counts, kept in its state file.
///
/// Its [`Hash`] hashes nothing: the model checker (`check/`) fingerprints each node's memory
/// to tell states apart, and counters that only grow, which no decision reads, would make
/// every run a new state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Link key -> cause -> failovers.
    #[serde(default)]
    failovers: BTreeMap<String, BTreeMap<String, u64>>,
    /// Link key -> fences this node did before taking the link.
    #[serde(default)]
    fences: BTreeMap<String, u64>,
    /// Link key -> runs whose takeover of the link waited on a peer that could not be fenced.
    #[serde(default)]
    fences_blocked: BTreeMap<String, u64>,
    /// Runs that ended, successful or not.
    #[serde(default)]
    runs: u64,
    /// Runs that ended with a non-zero exit code.
    #[serde(default)]
    failed_runs: u64,
    /// The last run: when it ended (Unix time), how long it took (ms), whether it succeeded.
    #[serde(default)]
    last_run: Option<LastRun>,
    /// When the last successful run ended (Unix time).
    #[serde(default)]
    last_success: Option<i64>,
}

/// The last run, as [`Counters::run_finished`] recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LastRun {
    /// When it ended, Unix time.
    pub at: i64,
    /// How long it took, in milliseconds.
    pub millis: u64,
    pub ok: bool,
}

impl std::hash::Hash for Counters {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl Counters {
    /// This node failed a link over (took it, or moved it to another source), for `cause`.
    pub fn failover(&mut self, link: &str, cause: &str) {
        let cause: String = cause.chars().take(MAX_CAUSE).collect();
        *self
            .failovers
            .entry(link.to_string())
            .or_default()
            .entry(cause)
            .or_default() += 1;
    }

    /// This node stopped another node's channel for `link`.
    pub fn fence(&mut self, link: &str) {
        *self.fences.entry(link.to_string()).or_default() += 1;
    }

    /// A takeover of `link` waited on a peer that could not be fenced.
    pub fn fence_blocked(&mut self, link: &str) {
        *self.fences_blocked.entry(link.to_string()).or_default() += 1;
    }

    /// A run ended at `now` (Unix time) after `took`; `ok`: its exit code is 0.
    pub fn run_finished(&mut self, took: Duration, ok: bool, now: i64) {
        self.runs += 1;
        if !ok {
            self.failed_runs += 1;
        }
        self.last_run = Some(LastRun {
            at: now,
            millis: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            ok,
        });
        if ok {
            self.last_success = Some(now);
        }
    }

    /// The failovers of a link by cause: the [`FAILOVER_CAUSES`] (0 when none happened), then
    /// any other cause counted.
    pub fn failovers(&self, link: &str) -> Vec<(String, u64)> {
        let counted = self.failovers.get(link);
        let mut out: Vec<(String, u64)> = FAILOVER_CAUSES
            .iter()
            .map(|c| {
                let n = counted.and_then(|m| m.get(*c)).copied().unwrap_or(0);
                (c.to_string(), n)
            })
            .collect();
        for (c, n) in counted.into_iter().flatten() {
            if !FAILOVER_CAUSES.contains(&c.as_str()) {
                out.push((c.clone(), *n));
            }
        }
        out
    }

    /// The links with a failover or a fence counted (a link no longer configured keeps its
    /// counts, so that they do not go back to zero if it comes back).
    pub fn links(&self) -> impl Iterator<Item = &str> {
        let mut all: Vec<&str> = self
            .failovers
            .keys()
            .chain(self.fences.keys())
            .chain(self.fences_blocked.keys())
            .map(String::as_str)
            .collect();
        all.sort_unstable();
        all.dedup();
        all.into_iter()
    }

    /// The fences this node did for a link.
    pub fn fences(&self, link: &str) -> u64 {
        self.fences.get(link).copied().unwrap_or(0)
    }

    /// The runs whose takeover of a link waited on a peer that could not be fenced.
    pub fn fences_blocked(&self, link: &str) -> u64 {
        self.fences_blocked.get(link).copied().unwrap_or(0)
    }

    /// Runs that ended, and those of them that failed.
    pub fn runs(&self) -> (u64, u64) {
        (self.runs, self.failed_runs)
    }

    pub fn last_run(&self) -> Option<LastRun> {
        self.last_run
    }

    /// When the last successful run ended (Unix time).
    pub fn last_success(&self) -> Option<i64> {
        self.last_success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failovers_count_by_link_and_cause_with_zeros_for_the_known_causes() {
        let mut c = Counters::default();
        assert!(
            c.failovers("dc1-dc2").iter().all(|(_, n)| *n == 0),
            "nothing counted yet"
        );
        assert_eq!(c.failovers("dc1-dc2").len(), FAILOVER_CAUSES.len());
        c.failover("dc1-dc2", "source_lost");
        c.failover("dc1-dc2", "source_lost");
        c.failover("dc1-dc2", "something_new");
        c.failover("dc1-dc3", "silent_replica");
        let f = c.failovers("dc1-dc2");
        assert!(f.contains(&("source_lost".into(), 2)), "{f:?}");
        assert!(f.contains(&("silent_replica".into(), 0)), "{f:?}");
        assert!(f.contains(&("something_new".into(), 1)), "{f:?}");
        assert_eq!(f.len(), FAILOVER_CAUSES.len() + 1);
        assert!(
            c.failovers("dc1-dc3")
                .contains(&("silent_replica".into(), 1))
        );
        assert_eq!(c.links().collect::<Vec<_>>(), vec!["dc1-dc2", "dc1-dc3"]);
    }

    #[test]
    fn counters_do_not_change_the_hash_the_model_checker_compares() {
        use std::hash::{BuildHasher, RandomState};
        let s = RandomState::new();
        let mut c = Counters::default();
        let before = s.hash_one(&c);
        c.failover("l", "election");
        c.fence("l");
        c.run_finished(Duration::from_millis(1), true, 1);
        assert_eq!(s.hash_one(&c), before);
    }

    #[test]
    fn a_long_cause_is_cut() {
        let mut c = Counters::default();
        c.failover("l", &"x".repeat(1000));
        let f = c.failovers("l");
        let other = f.last().unwrap();
        assert_eq!(other.0.len(), MAX_CAUSE);
        assert_eq!(other.1, 1);
    }

    #[test]
    fn fences_count_per_link() {
        let mut c = Counters::default();
        assert_eq!(c.fences("a"), 0);
        c.fence("a");
        c.fence("a");
        c.fence("b");
        assert_eq!((c.fences("a"), c.fences("b")), (2, 1));
        c.fence_blocked("c");
        assert_eq!((c.fences_blocked("c"), c.fences_blocked("a")), (1, 0));
        assert_eq!(c.links().collect::<Vec<_>>(), vec!["a", "b", "c"]);
    }

    #[test]
    fn runs_record_duration_outcome_and_last_success() {
        let mut c = Counters::default();
        c.run_finished(Duration::from_millis(25), true, 1000);
        assert_eq!(c.last_success(), Some(1000));
        c.run_finished(Duration::from_millis(1500), false, 1060);
        assert_eq!(c.runs(), (2, 1));
        assert_eq!(
            c.last_run(),
            Some(LastRun {
                at: 1060,
                millis: 1500,
                ok: false
            })
        );
        // A failed run does not move the last success.
        assert_eq!(c.last_success(), Some(1000));
    }

    #[test]
    fn counters_round_trip_through_json_and_default_when_absent() {
        let mut c = Counters::default();
        c.failover("l", "election");
        c.fence("l");
        c.run_finished(Duration::from_millis(7), true, 42);
        let back: Counters = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let empty: Counters = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, Counters::default());
    }
}
