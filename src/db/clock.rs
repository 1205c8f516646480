//! One notion of "silent", judged on one clock.
//!
//! Every report a node writes advances its sequence number in `percona.replication_node`. A
//! reader does not trust the `lastHeartbeat` timestamp, which another node's clock wrote: it
//! remembers, on its own server's clock, since when it has seen each peer's sequence stand
//! still ([`Observations`], kept in `[files] state` between cron runs). A peer is silent when
//! its sequence has not moved for longer than the threshold (`[timeouts] heartbeat`, or
//! longer if the policy's `silent_after` says so). The age so measured is a lower bound of
//! the real one, so a peer is never judged silent early, whatever the clocks say.
//!
//! Rows of nodes that do not report (the original script) have no sequence: they are judged
//! by their `lastHeartbeat` age, as the script judges them, which needs the clocks in step.
//!
//! A reader also notices a peer whose clock is off by more than a quarter of the threshold
//! (see [`Observations::observe`]), for `status` and one mail.

use crate::db::state::{Role, StateRow};
use crate::error::StateFileError;
use crate::metrics::Counters;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What this node has watched of one peer's report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Seen {
    /// The sequence last seen.
    pub seq: u64,
    /// This node's clock when it first saw that sequence.
    pub since: i64,
    /// This node's clock when it last read the row.
    pub checked: i64,
}

/// A peer whose clock is off by more than a quarter of the threshold.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Skew {
    pub host: String,
    /// `true`: the peer's clock is ahead of this node's; `false`: behind.
    pub ahead: bool,
    /// By at least this many seconds.
    pub at_least: i64,
}

impl Skew {
    pub fn describe(&self) -> String {
        format!(
            "the clock of {} is {} this node's by at least {} s",
            self.host,
            if self.ahead { "ahead of" } else { "behind" },
            self.at_least
        )
    }
}

/// A fence this node tried on a silent peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FenceMemo {
    /// The peer's report sequence then: a peer that reports again is judged afresh.
    pub seq: u64,
    /// This node's clock then.
    pub at: i64,
    /// The peer answered (its channel was stopped, or was not running): no need to try again.
    pub reached: bool,
}

/// What this node's last check of a peer's fence login found (see `host::fence::check_logins`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FenceCheck {
    /// Why a fence of the peer would fail (`None`: it would work).
    pub problem: Option<String>,
    /// What would not stop a fence of the peer while it is Primary (a session that cannot
    /// turn Galera off), as last logged.
    #[serde(default)]
    pub notes: Vec<String>,
    /// When it was checked (Unix time, this host's clock).
    pub at: i64,
}

/// The schedule of the fence-login checks, kept between runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FenceChecks {
    /// Peer -> its last check.
    #[serde(default)]
    pub peers: BTreeMap<String, FenceCheck>,
    /// The peer checked last (cron checks one per run, in turn).
    #[serde(default)]
    pub last: Option<String>,
    /// When every peer was last checked (a daemon checks them all each heartbeat timeout).
    #[serde(default)]
    pub all_at: Option<i64>,
}

impl FenceChecks {
    fn is_empty(&self) -> bool {
        *self == FenceChecks::default()
    }

    /// The peers to check now, among `targets` (the other members of the view, by name, with
    /// their address), at `now`: every one when `every` seconds have passed since they were
    /// all checked (a daemon), else none; or, with `every` unset (cron), the one after the
    /// last checked, in name order, wrapping. Peers no longer in the view are forgotten.
    pub fn due(
        &mut self,
        targets: &[(String, String)],
        every: Option<i64>,
        now: i64,
    ) -> Vec<(String, String)> {
        self.peers
            .retain(|p, _| targets.iter().any(|(t, _)| t == p));
        match every {
            Some(secs) if self.all_at.is_some_and(|t| now - t < secs) => Vec::new(),
            Some(_) => {
                self.all_at = Some(now);
                targets.to_vec()
            }
            None => {
                let last = self.last.clone();
                let next = targets
                    .iter()
                    .find(|(p, _)| last.as_ref().is_none_or(|l| p > l))
                    .or(targets.first())
                    .cloned();
                self.last = next.as_ref().map(|(p, _)| p.clone());
                next.into_iter().collect()
            }
        }
    }

    /// Remembers a peer's check; returns the one before it (default: none).
    pub fn note(&mut self, peer: &str, check: FenceCheck) -> FenceCheck {
        self.peers
            .insert(peer.to_string(), check)
            .unwrap_or_default()
    }

    /// The fence record's `unfenceable`: every peer whose check failed, and why.
    pub fn unfenceable(&self) -> Option<String> {
        let v: Vec<String> = self
            .peers
            .iter()
            .filter_map(|(p, c)| c.problem.as_ref().map(|why| format!("{p} {why}")))
            .collect();
        (!v.is_empty()).then(|| v.join("; "))
    }
}

/// What a node remembers between runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, Hash)]
pub struct Observations {
    #[serde(skip)]
    path: Option<PathBuf>,
    /// Link key -> peer -> what was seen.
    #[serde(default)]
    links: BTreeMap<String, BTreeMap<String, Seen>>,
    /// Peers with a skewed clock, and whether it was mailed.
    #[serde(default)]
    skewed: BTreeMap<String, Skew>,
    #[serde(default)]
    skew_mailed: BTreeSet<String>,
    /// Link key -> peer -> the fence this node tried at a report sequence.
    #[serde(default)]
    fenced: BTreeMap<String, BTreeMap<String, FenceMemo>>,
    /// Link key -> the events mailed in the link's current condition (one outage).
    #[serde(default)]
    mailed: BTreeMap<String, Mailed>,
    /// Link key -> the policy's own mails (`notify` outside a host event).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    policy_mailed: BTreeMap<String, PolicyMailed>,
    /// What this node counts for monitoring (failovers, fences, runs): kept here so that it
    /// survives restarts.
    #[serde(default)]
    counters: Counters,
    /// The checks of the peers' fence logins.
    #[serde(default, skip_serializing_if = "FenceChecks::is_empty")]
    pub fence_checks: FenceChecks,
    /// Since when the node was paused at its last run, while it was (kept only while a pause
    /// hook is configured: see `host::hooks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    paused: Option<i64>,
}

/// What was mailed about a link while it stayed in one condition.
#[derive(Clone, Debug, Default, Serialize, Deserialize, Hash, PartialEq, Eq)]
pub struct Mailed {
    /// Who held the link and from which source, or that nobody did.
    condition: String,
    /// The events (subjects without their quantities) mailed in it.
    events: BTreeSet<String>,
}

/// The policy's own mails about a link: when the last went out, and how many were held back
/// since.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, Hash, PartialEq, Eq)]
pub struct PolicyMailed {
    at: i64,
    held: u64,
}

impl Observations {
    /// Nothing remembered, nothing saved (dry-run without a file, simulate, tests).
    pub fn in_memory() -> Observations {
        Observations::default()
    }

    /// Reads the file; a missing file is an empty memory.
    pub fn load(path: &Path) -> Result<Observations, StateFileError> {
        let mut o = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str::<Observations>(&text).map_err(|source| {
                StateFileError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                }
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Observations::default(),
            Err(source) => {
                return Err(StateFileError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        o.path = Some(path.to_path_buf());
        Ok(o)
    }

    /// Reads the file for a run that must not write it (dry-run, status): an unreadable file
    /// is an empty memory.
    pub fn peek(path: &Path) -> Observations {
        let mut o = Observations::load(path).unwrap_or_default();
        o.path = None;
        o
    }

    /// A run's memory: the file, or, when it cannot be read, an empty memory that will
    /// replace it. The error says why.
    pub fn open(path: &Path) -> (Observations, Option<StateFileError>) {
        match Observations::load(path) {
            Ok(o) => (o, None),
            Err(e) => {
                let o = Observations {
                    path: Some(path.to_path_buf()),
                    ..Observations::default()
                };
                (o, Some(e))
            }
        }
    }

    /// The counters kept for monitoring.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The counters, to count in (saved with the rest by [`Observations::save`]).
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    /// Writes the file atomically (a temporary file renamed over it), creating its directory.
    pub fn save(&self) -> Result<(), StateFileError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let write = |p: &Path, source| StateFileError::Write {
            path: p.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| write(dir, e))?;
        }
        let text =
            serde_json::to_string_pretty(self).map_err(|source| StateFileError::Unreadable {
                path: path.clone(),
                source,
            })?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| write(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| write(path, e))
    }

    /// Records what one read of a link's rows shows, and returns the peers whose clock was
    /// newly found skewed by more than `threshold / 4`.
    ///
    /// When a peer's sequence moved since this node last read it (at `checked`), the report
    /// was written in between, so its true age is within `[0, now - checked]`; the age the
    /// servers' clocks give is the true age minus the skew. That bounds the skew on both sides.
    pub fn observe(&mut self, key: &str, me: &str, rows: &[StateRow], threshold: i64) -> Vec<Skew> {
        let quarter = (threshold / 4).max(1);
        if let Some(f) = self.fenced.get_mut(key) {
            f.retain(|host, _| rows.iter().any(|r| &r.host == host));
        }
        let seen = self.links.entry(key.to_string()).or_default();
        seen.retain(|host, _| rows.iter().any(|r| &r.host == host));
        let mut found = Vec::new();
        for r in rows.iter().filter(|r| r.host != me) {
            let Some(rep) = &r.report else {
                seen.remove(&r.host);
                continue;
            };
            let now = r.read_at;
            match seen.get_mut(&r.host) {
                Some(s) if s.seq == rep.seq => s.checked = now,
                Some(s) => {
                    if let Some(age) = r.heartbeat_age {
                        let (lo, hi) = (-age, (now - s.checked) - age);
                        let skew = if lo > quarter {
                            Some(Skew {
                                host: r.host.clone(),
                                ahead: true,
                                at_least: lo,
                            })
                        } else if hi < -quarter {
                            Some(Skew {
                                host: r.host.clone(),
                                ahead: false,
                                at_least: -hi,
                            })
                        } else {
                            None
                        };
                        match skew {
                            Some(k) => {
                                if !self.skewed.contains_key(&r.host) {
                                    found.push(k.clone());
                                }
                                self.skewed.insert(r.host.clone(), k);
                            }
                            None => {
                                self.skewed.remove(&r.host);
                                self.skew_mailed.remove(&r.host);
                            }
                        }
                    }
                    *s = Seen {
                        seq: rep.seq,
                        since: now,
                        checked: now,
                    };
                }
                None => {
                    seen.insert(
                        r.host.clone(),
                        Seen {
                            seq: rep.seq,
                            since: now,
                            checked: now,
                        },
                    );
                }
            }
        }
        found
    }

    /// The judge of one link's rows, from what was observed so far.
    pub fn freshness(&self, key: &str, me: &str, threshold: i64) -> Freshness {
        Freshness {
            me: me.to_string(),
            threshold,
            seen: self.links.get(key).cloned().unwrap_or_default(),
            gone: BTreeSet::new(),
        }
    }

    /// Peers whose clock is known to be skewed.
    pub fn skewed(&self) -> impl Iterator<Item = &Skew> {
        self.skewed.values()
    }

    /// Records whether this run is paused (`since`): `Some(true)` when the last run was not,
    /// `Some(false)` when the last run was and this one is not, `None` when nothing changed.
    pub fn note_paused(&mut self, since: Option<i64>) -> Option<bool> {
        let was = self.paused.is_some();
        self.paused = since;
        (was != since.is_some()).then_some(since.is_some())
    }

    /// Whether `event` may be mailed for link `key` now that the link is in `condition`: not
    /// when it was already mailed in that condition. A new condition forgets what was mailed.
    /// Records the event.
    pub fn may_mail(&mut self, key: &str, condition: &str, event: &str) -> bool {
        let m = self.mailed.entry(key.to_string()).or_default();
        if m.condition != condition {
            m.condition = condition.to_string();
            m.events.clear();
        }
        m.events.insert(event.to_string())
    }

    /// Whether one of the policy's own mails about link `key` may go out at `now` (Unix
    /// seconds): at most one every `every` seconds. `Some(held)` when it may, with how many
    /// were held back since the last; `None` when it is held back (and counted). A clock that
    /// went back lets the mail go.
    pub fn may_policy_mail(&mut self, key: &str, now: i64, every: i64) -> Option<u64> {
        let m = self.policy_mailed.entry(key.to_string()).or_default();
        if m.at > 0 && now >= m.at && now - m.at < every {
            m.held += 1;
            return None;
        }
        let held = m.held;
        *m = PolicyMailed { at: now, held: 0 };
        Some(held)
    }

    /// Forgets when the policy's own mails went out: the model checker's canonical form (it
    /// checks the host events' mails, once per outage, but not the policy's own, whose pace
    /// `[policy] notify_every` reads the wall clock).
    pub fn forget_policy_mailed(&mut self) {
        self.policy_mailed.clear();
    }

    /// Forgets what was mailed in the link's current condition: the model checker's broken
    /// host that mails an event again at every run (`Mutant::NoMailOnce`).
    pub fn forget_mailed(&mut self) {
        self.mailed.clear();
    }

    /// Marks a skew as mailed; `true` the first time.
    pub fn mark_skew_mailed(&mut self, host: &str) -> bool {
        self.skew_mailed.insert(host.to_string())
    }

    /// Whether this node already fenced `host` for `key` at this report sequence: it reached
    /// it, or tried less than `retry_after` seconds ago.
    pub fn already_fenced(
        &self,
        key: &str,
        host: &str,
        seq: u64,
        now: i64,
        retry_after: i64,
    ) -> bool {
        self.fenced
            .get(key)
            .and_then(|m| m.get(host))
            .is_some_and(|f| f.seq == seq && (f.reached || now - f.at < retry_after))
    }

    /// The fence this node last tried on `host` for `key`, if it remembers one.
    pub fn fence_memo(&self, key: &str, host: &str) -> Option<FenceMemo> {
        self.fenced.get(key).and_then(|m| m.get(host)).copied()
    }

    pub fn note_fenced(&mut self, key: &str, host: &str, memo: FenceMemo) {
        self.fenced
            .entry(key.to_string())
            .or_default()
            .insert(host.to_string(), memo);
    }

    /// For the model checker, which keeps its worlds finite: rewrites every remembered time
    /// with `time` and every remembered report sequence with `seq(link key, host, seq)`.
    pub fn rewrite(&mut self, time: impl Fn(i64) -> i64, seq: impl Fn(&str, &str, u64) -> u64) {
        for (key, peers) in &mut self.links {
            for (host, s) in peers.iter_mut() {
                s.seq = seq(key, host, s.seq);
                s.since = time(s.since);
                s.checked = time(s.checked);
            }
        }
        for (key, peers) in &mut self.fenced {
            for (host, f) in peers.iter_mut() {
                f.seq = seq(key, host, f.seq);
                f.at = time(f.at);
            }
        }
    }

    /// For the model checker: every time [`Observations::rewrite`] rewrites.
    pub fn times(&self) -> Vec<i64> {
        let seen = self
            .links
            .values()
            .flat_map(|p| p.values())
            .flat_map(|s| [s.since, s.checked]);
        let fenced = self.fenced.values().flat_map(|p| p.values()).map(|f| f.at);
        seen.chain(fenced).collect()
    }

    /// For the model checker, whose clocks agree: forgets what no rule can read again. A
    /// remembered sequence that the peer's report has moved past (`current` gives the
    /// reported one) reads as "moved" like no memory at all, and `checked` only bounds a
    /// clock skew, so it is set to `since`.
    pub fn forget_stale(&mut self, current: impl Fn(&str, &str) -> Option<u64>) {
        for (key, peers) in &mut self.links {
            peers.retain(|host, s| current(key, host) == Some(s.seq));
            for s in peers.values_mut() {
                s.checked = s.since;
            }
        }
        for (key, peers) in &mut self.fenced {
            peers.retain(|host, f| current(key, host) == Some(f.seq));
        }
        self.links.retain(|_, m| !m.is_empty());
        self.fenced.retain(|_, m| !m.is_empty());
    }

    /// Every remembered report sequence, as `(link key, host, seq)`.
    pub fn sequences(&self) -> Vec<(String, String, u64)> {
        let seen = self
            .links
            .iter()
            .flat_map(|(k, m)| m.iter().map(move |(h, s)| (k.clone(), h.clone(), s.seq)));
        let fenced = self
            .fenced
            .iter()
            .flat_map(|(k, m)| m.iter().map(move |(h, f)| (k.clone(), h.clone(), f.seq)));
        seen.chain(fenced).collect()
    }

    /// For scenarios: this node has seen `host`'s sequence `seq` stand still since `since`.
    pub fn remember(&mut self, key: &str, host: &str, seen: Seen) {
        self.links
            .entry(key.to_string())
            .or_default()
            .insert(host.to_string(), seen);
    }
}

/// Judges one link's rows: the one notion of "silent" every rule uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Freshness {
    /// This node: always fresh to itself.
    pub me: String,
    /// Seconds: the larger of `[timeouts] heartbeat` and the policy's `silent_after`.
    pub threshold: i64,
    pub seen: BTreeMap<String, Seen>,
    /// Peers that have left the Primary view (their rows were read with `in_view` false):
    /// silent now, whatever their sequence says, so a holder that crashed or was cut off is
    /// replaced as soon as Galera drops it from the view, not a heartbeat timeout later.
    pub gone: BTreeSet<String>,
}

impl Freshness {
    /// The judge, told which of `rows` left the Primary view when they were read.
    pub fn seeing(mut self, rows: &[StateRow]) -> Freshness {
        self.gone = rows
            .iter()
            .filter(|r| r.host != self.me && r.in_view == Some(false))
            .map(|r| r.host.clone())
            .collect();
        self
    }

    /// The peer has left the Primary view.
    pub fn left_view(&self, r: &StateRow) -> bool {
        self.gone.contains(&r.host)
    }

    /// Seconds the row has been silent: for a reporting node, how long this node has seen
    /// its sequence stand still (0 when it has just moved or was never seen before); for a
    /// node that does not report, the age of its heartbeat by the servers' clocks.
    pub fn age(&self, r: &StateRow) -> Option<i64> {
        if r.host == self.me {
            return Some(0);
        }
        match &r.report {
            Some(rep) => match self.seen.get(&r.host) {
                Some(s) if s.seq == rep.seq => Some((r.read_at - s.since).max(0)),
                _ => Some(0),
            },
            None => r.heartbeat_age,
        }
    }

    /// Reported within the threshold, and still a member of the Primary view (as far as
    /// membership is known).
    pub fn is_fresh(&self, r: &StateRow) -> bool {
        !self.left_view(r) && matches!(self.age(r), Some(a) if a <= self.threshold)
    }

    /// Another node that holds the link: fresh, and its row says `Yes` or `Proposed`, or its
    /// report says its channel runs. Nobody may propose, connect or become `Yes` beside it.
    pub fn holds(&self, r: &StateRow) -> bool {
        r.host != self.me && self.is_fresh(r) && claims(r)
    }

    /// The row holds the link, this node's own included (which [`Freshness::holds`], the
    /// judge of the others, leaves out): for views of the whole cluster.
    pub fn holds_any(&self, r: &StateRow) -> bool {
        if r.host == self.me {
            claims(r)
        } else {
            self.holds(r)
        }
    }

    /// Another node that held the link and went silent: before this node replicates, it is
    /// fenced.
    pub fn silent_holder(&self, r: &StateRow) -> bool {
        r.host != self.me && !self.is_fresh(r) && claims(r)
    }

    /// Another fresh node whose report says its channel runs healthy.
    pub fn runs_healthy(&self, r: &StateRow) -> bool {
        r.host != self.me
            && self.is_fresh(r)
            && r.report
                .as_ref()
                .is_some_and(|p| p.channel == crate::db::state::ChannelState::Healthy)
    }

    /// How a row looks to this judge, for messages.
    pub fn describe(&self, r: &StateRow) -> String {
        let age = fmt_age(self.age(r));
        let left = if self.left_view(r) {
            ", not a member of the Primary view"
        } else {
            ""
        };
        let text = match &r.report {
            Some(p) => format!(
                "{}, channel {}, report sequence unchanged for {age}",
                r.role, p.channel
            ),
            None => format!("{}, heartbeat {age} ago", r.role),
        };
        text + left
    }
}

/// A member of the current view: `(node_name, node_incoming_address)`.
pub type Member = (String, Option<String>);

/// Marks which rows' nodes are members of the reading node's Primary view, given the view's
/// members as `(node_name, node_incoming_address)`. A reporting row is a member when its host
/// is a member's name or its reported address a member's address. Returns `false`, and marks
/// nothing, when this node (`me`) is not in the list under its own name: then the list's
/// names are not the rows' (`[local] node` set otherwise) and membership cannot be used. Rows
/// without a report (the original script, which names its row by `hostname`) are not marked.
pub fn mark_view(rows: &mut [StateRow], me: &str, members: &[Member]) -> bool {
    if !members.iter().any(|(name, _)| name == me) {
        return false;
    }
    for r in rows.iter_mut().filter(|r| r.host != me) {
        let Some(rep) = &r.report else { continue };
        let member = members.iter().any(|(name, address)| {
            *name == r.host || (address.is_some() && *address == rep.address)
        });
        r.in_view = Some(member);
    }
    true
}

/// An age in seconds as messages and `status` write it: `12s`, or `never`.
pub fn fmt_age(age: Option<i64>) -> String {
    age.map_or("never".into(), |a| format!("{a}s"))
}

/// Whether this node may move to `Proposed`, given the link's rows as read inside the
/// proposal's transaction: its own row must say `No`, and no other node may hold the link
/// (see [`Freshness::holds`]). Every backend runs this same check.
pub fn may_propose(rows: &[StateRow], fresh: &Freshness) -> Result<(), String> {
    match rows.iter().find(|r| r.host == fresh.me) {
        None => return Err("this node has no row for the link".into()),
        Some(r) if r.role != Role::No => {
            return Err(format!("this node's row says {}, not No", r.role));
        }
        Some(_) => {}
    }
    if let Some(other) = rows.iter().find(|r| fresh.holds(r)) {
        return Err(format!(
            "{} already holds the link ({})",
            other.host,
            fresh.describe(other)
        ));
    }
    Ok(())
}

/// The row claims the link: `Yes` or `Proposed`, or a channel that runs.
fn claims(r: &StateRow) -> bool {
    matches!(r.role, Role::Yes | Role::Proposed)
        || r.report.as_ref().is_some_and(|p| p.channel.runs())
}

#[cfg(test)]
mod tests {

    #[test]
    fn cron_checks_one_peer_per_run_in_turn_and_a_daemon_all_each_interval() {
        let t = |names: &[&str]| -> Vec<(String, String)> {
            names
                .iter()
                .map(|n| (n.to_string(), format!("{n}:3306")))
                .collect()
        };
        let peers = t(&["DC1-2", "DC1-3"]);
        let mut c = FenceChecks::default();
        let turns: Vec<String> = (0..3)
            .map(|_| c.due(&peers, None, 0)[0].0.clone())
            .collect();
        assert_eq!(turns, ["DC1-2", "DC1-3", "DC1-2"]);
        // A peer gone from the view is forgotten, and the turn goes on among the others.
        c.note(
            "DC1-3",
            FenceCheck {
                problem: Some("x".into()),
                ..FenceCheck::default()
            },
        );
        assert_eq!(c.unfenceable().as_deref(), Some("DC1-3 x"));
        assert_eq!(c.due(&t(&["DC1-2"]), None, 0), t(&["DC1-2"]));
        assert_eq!(c.unfenceable(), None);
        // A daemon: every peer, then none until `every` seconds have passed.
        let mut d = FenceChecks::default();
        assert_eq!(d.due(&peers, Some(10), 100), peers);
        assert!(d.due(&peers, Some(10), 109).is_empty());
        assert_eq!(d.due(&peers, Some(10), 110), peers);
        assert_eq!(
            d.note("DC1-2", FenceCheck::default()),
            FenceCheck::default()
        );
    }
    use super::*;
    use crate::db::state::{ChannelState, NodeReport};

    fn row(host: &str, role: Role, seq: Option<u64>, server_age: i64, read_at: i64) -> StateRow {
        StateRow {
            host: host.into(),
            local_index: Some(0),
            weight: 0,
            role,
            heartbeat_age: Some(server_age),
            update_age: Some(server_age),
            current_source: None,
            report: seq.map(|seq| NodeReport {
                seq,
                address: None,
                channel: ChannelState::Healthy,
                source: None,
                paused_for: None,
                fences: 0,
                blocked: None,
                blocked_for: None,
                unfenceable: None,
                position: None,
            }),
            read_at,
            in_view: None,
        }
    }

    #[test]
    fn a_peer_is_silent_only_after_its_sequence_stood_still_for_the_threshold_on_this_clock() {
        let mut o = Observations::in_memory();
        // The peer's clock is an hour behind: by the servers' clocks its heartbeat looks an
        // hour old at every read, yet its sequence moves, so it is fresh.
        for (t, seq) in [(1000, 1), (1060, 2), (1120, 3)] {
            o.observe("L", "me", &[row("p", Role::Yes, Some(seq), 3600, t)], 179);
            let f = o.freshness("L", "me", 179);
            assert!(
                f.is_fresh(&row("p", Role::Yes, Some(seq), 3600, t)),
                "at {t}"
            );
        }
        // Then it stops reporting: silent once its sequence stood still for more than 179 s.
        for (t, fresh) in [(1180, true), (1299, true), (1300, false)] {
            let r = row("p", Role::Yes, Some(3), 3600, t);
            o.observe("L", "me", std::slice::from_ref(&r), 179);
            let f = o.freshness("L", "me", 179);
            assert_eq!(f.is_fresh(&r), fresh, "at {t}: age {:?}", f.age(&r));
            assert_eq!(f.silent_holder(&r), !fresh);
        }
    }

    #[test]
    fn a_peer_first_seen_is_not_silent_whatever_its_timestamp() {
        let mut o = Observations::in_memory();
        let r = row("p", Role::Yes, Some(7), 100_000, 5000);
        o.observe("L", "me", std::slice::from_ref(&r), 179);
        assert_eq!(o.freshness("L", "me", 179).age(&r), Some(0));
    }

    #[test]
    fn a_node_that_does_not_report_is_judged_by_its_heartbeat_age() {
        let o = Observations::in_memory();
        let f = o.freshness("L", "me", 179);
        assert!(f.is_fresh(&row("script", Role::Yes, None, 179, 0)));
        assert!(!f.is_fresh(&row("script", Role::Yes, None, 180, 0)));
    }

    #[test]
    fn holding_the_link_means_fresh_and_yes_proposed_or_a_running_channel() {
        let o = Observations::in_memory();
        let f = o.freshness("L", "me", 179);
        let mut r = row("p", Role::No, None, 10, 0);
        assert!(!f.holds(&r), "a No row without a report does not hold");
        r.role = Role::Proposed;
        assert!(f.holds(&r));
        let mut running_no = row("p", Role::No, Some(1), 10, 0);
        assert!(f.holds(&running_no), "a No row whose channel runs holds");
        running_no.report.as_mut().unwrap().channel = ChannelState::Stopped;
        assert!(!f.holds(&running_no));
        assert!(!f.holds(&row("me", Role::Yes, None, 10, 0)), "never itself");
        assert!(
            !f.holds(&row("p", Role::Yes, None, 500, 0)),
            "a Yes row silent for longer than the threshold does not hold"
        );
    }

    #[test]
    fn a_skewed_clock_is_noticed_once_a_sequence_moves() {
        let mut o = Observations::in_memory();
        o.observe("L", "me", &[row("p", Role::No, Some(1), 0, 1000)], 180);
        // Written within the last 60 s, yet its heartbeat looks 300 s old: its clock is behind
        // by at least 240 s.
        let k = o.observe("L", "me", &[row("p", Role::No, Some(2), 300, 1060)], 180);
        assert_eq!(
            k,
            [Skew {
                host: "p".into(),
                ahead: false,
                at_least: 240
            }]
        );
        // Reported once; still listed.
        assert!(
            o.observe("L", "me", &[row("p", Role::No, Some(3), 300, 1120)], 180)
                .is_empty()
        );
        assert_eq!(o.skewed().count(), 1);
        // A heartbeat 100 s in the future: ahead by at least 100 s.
        let mut o = Observations::in_memory();
        o.observe("L", "me", &[row("p", Role::No, Some(1), 0, 1000)], 180);
        let k = o.observe("L", "me", &[row("p", Role::No, Some(2), -100, 1060)], 180);
        assert!(k[0].ahead && k[0].at_least == 100, "{k:?}");
        // Within a quarter of the threshold: nothing.
        let mut o = Observations::in_memory();
        o.observe("L", "me", &[row("p", Role::No, Some(1), 0, 1000)], 180);
        assert!(
            o.observe("L", "me", &[row("p", Role::No, Some(2), -40, 1060)], 180)
                .is_empty()
        );
    }

    #[test]
    fn a_proposal_needs_own_row_at_no_and_nobody_else_holding_the_link() {
        let judge = |me: &str| Observations::in_memory().freshness("L", me, 179);
        let ok = [
            row("a", Role::No, None, 1, 0),
            row("b", Role::No, None, 1, 0),
        ];
        assert!(may_propose(&ok, &judge("a")).is_ok());
        assert!(may_propose(&ok, &judge("c")).is_err());
        let taken = [
            row("a", Role::No, None, 1, 0),
            row("b", Role::Proposed, None, 5, 0),
        ];
        assert!(
            may_propose(&taken, &judge("a"))
                .unwrap_err()
                .contains("b already holds")
        );
        let stale = [
            row("a", Role::No, None, 1, 0),
            row("b", Role::Yes, None, 500, 0),
        ];
        assert!(may_propose(&stale, &judge("a")).is_ok());
        let failed_self = [row("a", Role::Failed, None, 1, 0)];
        assert!(may_propose(&failed_self, &judge("a")).is_err());
    }

    #[test]
    fn a_reporting_peer_that_left_the_view_is_silent_at_once_and_others_are_judged_as_before() {
        let member = |n: &str, a: &str| (n.to_string(), Some(a.to_string()));
        let mut rows = vec![
            row("me", Role::No, Some(1), 0, 1000),
            row("gone", Role::Yes, Some(9), 0, 1000),
            row("renamed", Role::No, Some(3), 0, 1000),
            row("script", Role::Yes, None, 0, 1000),
        ];
        rows[2].report.as_mut().unwrap().address = Some("10.0.0.3:3306".into());
        let view = [
            member("me", "10.0.0.1:3306"),
            member("other-name", "10.0.0.3:3306"),
        ];
        assert!(mark_view(&mut rows, "me", &view));
        let got: Vec<_> = rows.iter().map(|r| r.in_view).collect();
        // Not itself; a member by name or by reported address; never a row without a report.
        assert_eq!(got, [None, Some(false), Some(true), None]);
        let f = Observations::in_memory()
            .freshness("L", "me", 179)
            .seeing(&rows);
        assert!(!f.is_fresh(&rows[1]) && f.silent_holder(&rows[1]) && !f.holds(&rows[1]));
        assert!(
            f.describe(&rows[1])
                .contains("not a member of the Primary view")
        );
        assert!(f.is_fresh(&rows[2]) && f.is_fresh(&rows[3]));
        // A list that does not name this node is not the rows' naming: nothing is marked.
        let mut rows = vec![row("gone", Role::Yes, Some(9), 0, 1000)];
        assert!(!mark_view(
            &mut rows,
            "me",
            &[member("galera-1", "10.0.0.1:3306")]
        ));
        assert_eq!(rows[0].in_view, None);
    }

    #[test]
    fn observations_survive_a_save_and_a_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/observed.json");
        let mut o = Observations::load(&p).unwrap();
        o.observe("L", "me", &[row("p", Role::Yes, Some(4), 0, 1000)], 179);
        o.save().unwrap();
        let back = Observations::load(&p).unwrap();
        assert_eq!(back.freshness("L", "me", 179).seen["p"].since, 1000);
        std::fs::write(&p, "not json").unwrap();
        assert!(
            Observations::load(&p)
                .unwrap_err()
                .to_string()
                .contains("delete it to start afresh")
        );
    }

    #[test]
    fn an_event_is_mailed_once_per_outage_and_remembered_across_runs() {
        let dir = tempfile_dir();
        let path = dir.join("observed.json");
        let mut o = Observations::load(&path).unwrap();
        assert!(o.may_mail("DC1-DC2", "nobody holds it", "DC1-DC2: failed"));
        assert!(!o.may_mail("DC1-DC2", "nobody holds it", "DC1-DC2: failed"));
        assert!(
            o.may_mail("DC1-DC3", "nobody holds it", "DC1-DC2: failed"),
            "per link"
        );
        o.save().unwrap();
        // The next run (cron) remembers it while the link stays as it was.
        let mut o = Observations::load(&path).unwrap();
        assert!(!o.may_mail("DC1-DC2", "nobody holds it", "DC1-DC2: failed"));
        // A new condition (a replica took over) is a new outage.
        assert!(o.may_mail(
            "DC1-DC2",
            "DC1-2 holds it from 10.0.2.1:3306",
            "DC1-DC2: new replica"
        ));
        assert!(o.may_mail("DC1-DC2", "nobody holds it", "DC1-DC2: failed"));
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("pxcrm-mailed-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
