//! The host's side of a run: the rules that hold whatever the policy does.
//!
//! For each link, on every run, the host
//! 1. **before the policy** ([`phases::before`]): stops the channel of a node that is not
//!    Primary and Synced/Donor, and keeps a paused node reporting (and nothing else); neither
//!    calls the policy. On an acting replica it checks the current source once
//!    (reachable, Primary, Synced);
//! 2. calls the policy's `manage_link(node, link)`, whose primitives are interlocked
//!    ([`primitives`]): `Proposed` only through `propose`, `Yes` only for the winner of the
//!    proposal or an uncontested node whose channel runs healthy, `connect` only for the holder,
//!    after a health check of the candidate and after fencing every silent holder;
//! 3. **after the policy** ([`phases::after`]), even when it failed: a channel runs only under
//!    a `Yes` row with a healthy channel and source, and a `Yes` row only with such a channel;
//!    of two fresh replicas that both run healthy, one stops; a silent node whose report says
//!    its channel runs is fenced once another node holds the link; and the node reports once.
//!
//! "Silent" has one meaning everywhere: [`crate::db::clock::Freshness`] with the larger of
//! `[timeouts] heartbeat` and the policy's `silent_after`.
//!
//! This module does not know Rhai: the policy is reached through [`PolicyHooks`].

pub mod facts;
pub mod fence;
pub mod hooks;
pub mod output;
pub mod parts;
pub mod phases;
pub mod primitives;
pub mod switchover;

use crate::config::topology::Link;
use crate::db::clock::{Freshness, Observations};
use crate::db::state::{
    ChannelState, FailureKind, FenceNote, LinkKey, Position, ReportValues, Role, StateRow,
};
use crate::error::Result;
use crate::exec::{Action, Backend, Outcome, SourceUpdate};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// Run-wide settings a policy reads through `settings()`.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `[timeouts] heartbeat`: the shortest "silent" threshold a policy may use.
    pub heartbeat_timeout: i64,
    pub failed_timeout: i64,
    pub connect_timeout: Duration,
    pub distribute: bool,
    pub vars: rhai::Map,
    /// The threshold every rule uses: the larger of `heartbeat_timeout` and the policy's
    /// `silent_after`, set once at the start of a run.
    pub silent_after: i64,
    /// `[timeouts] probe`: what a probe may take.
    pub probe_timeout: Duration,
    /// What the policy may cost (`[policy]`).
    pub limits: crate::config::Limits,
    /// The operator's commands per event (`[hooks]`).
    pub hooks: crate::config::hooks::Hooks,
}

/// Why a node's channel does not carry data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoData {
    /// The node has no channel for the link.
    NoChannel,
    /// A thread does not run healthily (what `exec::stalled` says).
    Stalled(String),
    /// The current source failed its check in this run.
    Source(String),
}

impl NoData {
    /// The failure a replica records when it gives the link up for this reason (an SQL
    /// error on the channel is recorded as such before this is asked).
    pub fn kind(&self) -> FailureKind {
        match self {
            NoData::Source(_) => FailureKind::Unreachable,
            NoData::NoChannel | NoData::Stalled(_) => FailureKind::Connect,
        }
    }
}

impl std::fmt::Display for NoData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoData::NoChannel => write!(f, "it has no channel"),
            NoData::Stalled(why) => write!(f, "its channel does not run healthily ({why})"),
            NoData::Source(why) => write!(f, "its source {why}"),
        }
    }
}

/// What the host asks of the policy: its entry point and the choices it makes.
pub trait PolicyHooks {
    /// `manage_link(node, link)`.
    fn manage_link(&self, link: &Link) -> std::result::Result<(), String>;
    /// `silent_after(settings)`: the policy's threshold, in seconds.
    fn silent_after(&self) -> std::result::Result<i64, String>;
    /// `mail(node, link, event, subject, body)`: every notification passes the policy.
    fn mail(
        &self,
        link: &Link,
        event: &str,
        subject: &str,
        body: &str,
    ) -> std::result::Result<(), String>;
}

/// What a notification is about: the `event` the policy's `mail` hook receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    NewReplica,
    Failed,
    StillFailing,
    SilentReplica,
    SourceSwitch,
    Resumed,
    Stopped,
    Adopted,
    UnexpectedReplica,
    NotReplicating,
    TwoReplicas,
    Fenced,
    ClockSkew,
    /// A takeover waits on a peer that could not be fenced.
    FenceBlocked,
    /// The check of the peers' fence logins found one that would fail.
    FenceUnready,
    /// A planned move of the replica (`switchover`) happened, or did not.
    Switchover,
}

impl Event {
    pub const ALL: [Event; 16] = [
        Event::NewReplica,
        Event::Failed,
        Event::StillFailing,
        Event::SilentReplica,
        Event::SourceSwitch,
        Event::Resumed,
        Event::Stopped,
        Event::Adopted,
        Event::UnexpectedReplica,
        Event::NotReplicating,
        Event::TwoReplicas,
        Event::Fenced,
        Event::ClockSkew,
        Event::FenceBlocked,
        Event::FenceUnready,
        Event::Switchover,
    ];

    /// As the policy receives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::NewReplica => "new-replica",
            Event::Failed => "failed",
            Event::StillFailing => "still-failing",
            Event::SilentReplica => "silent-replica",
            Event::SourceSwitch => "source-switch",
            Event::Resumed => "resumed",
            Event::Stopped => "stopped",
            Event::Adopted => "adopted",
            Event::UnexpectedReplica => "unexpected-replica",
            Event::NotReplicating => "not-replicating",
            Event::TwoReplicas => "two-replicas",
            Event::Fenced => "fenced",
            Event::ClockSkew => "clock-skew",
            Event::FenceBlocked => "fence-blocked",
            Event::FenceUnready => "fence-unready",
            Event::Switchover => "switchover",
        }
    }

    /// Its key in the policy's `EVENT` constant: `EVENT.still_failing`.
    pub fn key(self) -> String {
        self.as_str().replace('-', "_")
    }
}

/// A notification the host raised, sent through the policy's `mail` hook.
#[derive(Clone, Debug)]
pub struct HostMail {
    pub event: Event,
    /// The peer the event is about, when one kind of event may concern several (a fence of
    /// each peer): with the kind and the link, what makes it one event for the mail's
    /// once-per-outage rule.
    pub about: Option<String>,
    pub subject: String,
    pub body: String,
}

impl HostMail {
    /// What the once-per-outage rule knows the event by.
    pub fn key(&self) -> String {
        match &self.about {
            Some(peer) => format!("{} {peer}", self.event.as_str()),
            None => self.event.as_str().to_string(),
        }
    }
}

/// The state of one run, shared by the host and the policy's primitives: the backend it
/// acts through, its links and settings, the memory of peers, and its named parts
/// ([`parts`]).
pub struct RunCtx {
    pub backend: Box<dyn Backend>,
    pub links: Vec<Link>,
    pub settings: Settings,
    /// What this node remembers of its peers' reports between runs.
    pub observations: Observations,
    /// What this run did, link by link.
    book: parts::Book,
    /// The peers fenced, the fence records and the checks of fence logins.
    pub fencing: parts::Fencing,
    /// What the run logs and mails.
    pub notices: parts::Notices,
    /// The hooks and history written at the end of the run.
    pending: parts::Pending,
    /// The policy call under way.
    pub call: parts::Call,
    /// What pauses the run.
    pub pause: parts::Pause,
    /// Which host runs: the real one, but for the model checker.
    pub variant: parts::Variant,
}

pub type Shared = Rc<RefCell<RunCtx>>;

impl RunCtx {
    pub fn new(
        backend: Box<dyn Backend>,
        links: Vec<Link>,
        settings: Settings,
        observations: Observations,
        paused_since: Option<i64>,
    ) -> RunCtx {
        RunCtx {
            backend,
            links,
            settings,
            observations,
            book: parts::Book::default(),
            fencing: parts::Fencing::default(),
            notices: parts::Notices::default(),
            pending: parts::Pending::default(),
            call: parts::Call::default(),
            pause: parts::Pause {
                since: paused_since,
                cluster: None,
            },
            variant: parts::Variant::default(),
        }
    }

    pub fn node(&self) -> String {
        self.backend.facts().name.clone()
    }

    /// The one "silent" threshold.
    pub fn threshold(&self) -> i64 {
        self.settings.silent_after
    }

    /// The threshold as a message says it: in a run that did not ask the policy (see
    /// [`run_links`]), the peers' may be longer.
    pub fn threshold_said(&self) -> String {
        let t = self.threshold();
        if self.call.threshold_asked {
            format!("{t} s")
        } else {
            format!("{t} s (or the policy's silent_after, if longer)")
        }
    }

    /// Reads a link's rows, records what they show of the peers' reports, and returns them
    /// with their judge.
    pub fn read_rows(&mut self, link: &Link) -> Result<(Vec<StateRow>, Freshness)> {
        let rows = self.backend.rows(link)?;
        let me = self.node();
        let t = self.threshold();
        let skews = self.observations.observe(&link.key, &me, &rows, t);
        self.notices.skews.extend(skews);
        if let Some(own) = rows.iter().find(|r| r.host == me) {
            if let Some(rep) = &own.report {
                self.fencing.notes.insert(
                    link.key.clone(),
                    FenceNote {
                        blocked: rep.blocked.clone(),
                        unfenceable: rep.unfenceable.clone(),
                    },
                );
            }
            self.book.has_row.insert(link.key.clone());
            self.book.own_roles.insert(link.key.clone(), own.role);
        }
        let fresh = self.observations.freshness(&link.key, &me, t).seeing(&rows);
        let condition = match rows.iter().find(|r| fresh.holds(r)) {
            Some(r) => format!(
                "{} holds it{}",
                r.host,
                r.current_source
                    .as_ref()
                    .map_or(String::new(), |s| format!(" from {s}"))
            ),
            None => "nobody holds it".into(),
        };
        self.notices.conditions.insert(link.key.clone(), condition);
        Ok((rows, fresh))
    }

    /// What this node reports for a link now: its channel, its source, its pause, the fences
    /// not yet counted.
    pub fn report_values(&mut self, link: &Link) -> Result<ReportValues> {
        let ch = self.backend.replica(link)?;
        let fence = self.fence_note_pending(link);
        if let Some(n) = &fence {
            let before = self.fencing.notes.insert(link.key.clone(), n.clone());
            if let Some(b) = n
                .blocked
                .clone()
                .filter(|b| before.is_none_or(|x| x.blocked.as_ref() != Some(b)))
            {
                self.history(Some(link), crate::db::history::event::FENCE_BLOCKED, b);
            }
        }
        let position = Position {
            state: self.backend.facts().local_state_comment.clone(),
            lag: ch
                .as_ref()
                .and_then(|s| s.lag_seconds)
                .map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
            gtid: ch
                .as_ref()
                .and_then(|s| s.executed_gtid())
                .map(str::to_string),
        };
        Ok(ReportValues {
            channel: ChannelState::of(ch.as_ref()),
            source: ch.map(|s| s.source()),
            paused_since: self.pause.since,
            new_fences: self.fencing.uncounted.remove(&link.key).unwrap_or(0),
            fence,
            position: Some(position),
        })
    }

    /// The link's fence record as this run found it, when it differs from what the table says:
    /// the peer that holds the takeover (blocks found in this run), and the peers the checks
    /// of the fence logins found this node cannot fence.
    pub fn fence_note_pending(&self, link: &Link) -> Option<FenceNote> {
        let noted = self
            .fencing
            .notes
            .get(&link.key)
            .cloned()
            .unwrap_or_default();
        let now = FenceNote {
            blocked: self
                .fencing
                .verdicts
                .iter()
                .filter(|((key, _), _)| *key == link.key)
                .find_map(|(_, v)| match v {
                    fence::Verdict::Blocked(b) => Some(b.describe()),
                    _ => None,
                }),
            unfenceable: self.observations.fence_checks.unfenceable(),
        };
        (now != noted).then_some(now)
    }

    /// Writes this node's row (its heartbeat, and its role when `role` is set) and its report.
    pub fn refresh(&mut self, link: &Link, role: Option<Role>, source: SourceUpdate) -> Result<()> {
        let report = self.report_values(link)?;
        let channel = report.channel;
        self.backend.apply(&Action::UpdateOwnRow {
            key: link.key.clone(),
            role,
            source,
            report,
        })?;
        self.book.refreshed.insert(link.key.clone());
        self.book.reported.insert(link.key.clone(), channel);
        // When the report was handed over: a heartbeat-only report may be committed a little
        // later, with the next links' (`exec/joined.rs`), so this time is never later than
        // the commit, and the daemon's self-fence, which counts from it, errs early.
        self.book
            .reported_at
            .insert(link.key.clone(), std::time::Instant::now());
        if let Some(r) = role {
            self.notices.events.push(format!("{}: now {r}", link.name));
            self.role_written(link, r);
        }
        Ok(())
    }

    /// Adds this node's row for a link, with its first report.
    pub fn insert_own_row(&mut self, link: &Link, role: Role) -> Result<()> {
        let report = self.report_values(link)?;
        let channel = report.channel;
        self.backend.apply(&Action::InsertRow {
            key: link.key.clone(),
            role,
            report,
        })?;
        self.book.reported.insert(link.key.clone(), channel);
        self.book
            .reported_at
            .insert(link.key.clone(), std::time::Instant::now());
        self.book.has_row.insert(link.key.clone());
        self.book.refreshed.insert(link.key.clone());
        self.notices
            .events
            .push(format!("{}: added {} as {role}", link.name, self.node()));
        if role == Role::No {
            // A node's first row, holding nothing: no role changed.
            self.book.own_roles.insert(link.key.clone(), role);
        } else {
            self.role_written(link, role);
        }
        Ok(())
    }

    /// Refreshes this node's heartbeat on every link where it has a row, so a long failover
    /// never lets it look silent.
    pub fn refresh_all(&mut self) -> Result<()> {
        let links: Vec<Link> = self
            .links
            .iter()
            .filter(|l| self.book.has_row.contains(&l.key))
            .cloned()
            .collect();
        for l in links {
            let source = self.current_source(&l)?;
            self.refresh(&l, None, source)?;
        }
        Ok(())
    }

    /// The source this node replicates from for a link, as an own-row write records it.
    pub fn current_source(&mut self, link: &Link) -> Result<SourceUpdate> {
        if let Some(s) = self.book.connected.get(&link.key) {
            return Ok(SourceUpdate::Set(s.clone()));
        }
        Ok(match self.backend.replica(link)? {
            Some(s) => SourceUpdate::Set(s.source()),
            None => SourceUpdate::Clear,
        })
    }

    /// `STOP` and `RESET ... ALL` the link's channel, if it has one.
    pub fn stop_and_reset(&mut self, link: &Link) -> Result<bool> {
        let Some(last) = self.backend.replica(link)? else {
            return Ok(false);
        };
        self.book.reset_channels.insert(link.key.clone(), last);
        self.backend.apply(&Action::StopReplica {
            channel: link.channel.clone(),
        })?;
        self.backend.apply(&Action::ResetReplica {
            channel: link.channel.clone(),
        })?;
        self.book.connected.remove(&link.key);
        self.notices
            .events
            .push(format!("{}: replication stopped and reset", link.name));
        Ok(true)
    }

    /// Whether this node's channel carries data: both threads run healthily, and the source
    /// passed its check in this run (or was connected in this run).
    pub fn carries_data(&mut self, link: &Link) -> Result<std::result::Result<(), NoData>> {
        match self.backend.replica(link)? {
            None => return Ok(Err(NoData::NoChannel)),
            Some(s) if !s.is_healthy() => {
                return Ok(Err(NoData::Stalled(crate::exec::stalled(&s))));
            }
            Some(_) => {}
        }
        Ok(match self.book.source_check.get(&link.key) {
            Some(Err(why)) if !self.book.connected.contains_key(&link.key) => {
                Err(NoData::Source(why.clone()))
            }
            _ => Ok(()),
        })
    }

    /// The current source's health as checked in this run, if it was.
    pub fn source_check(&self, link: &Link) -> Option<&std::result::Result<(), String>> {
        self.book.source_check.get(&link.key)
    }

    /// Whether this node may make its row `Yes` now: its channel carries data, and it won the
    /// proposal in this run or no other node holds the link. `Ok(Err(why))` when it may not.
    pub fn may_be_yes(&mut self, link: &Link) -> Result<std::result::Result<(), String>> {
        if let Err(why) = self.carries_data(link)? {
            return Ok(Err(why.to_string()));
        }
        if self.book.won.contains(&link.key) || !self.variant.claim {
            return Ok(Ok(()));
        }
        let (rows, fresh) = self.read_rows(link)?;
        Ok(match rows.iter().find(|r| fresh.holds(r)) {
            Some(o) => Err(format!("{} holds the link ({})", o.host, fresh.describe(o))),
            None => Ok(()),
        })
    }

    /// Whether a primitive may change something now: only while the policy's `manage_link`
    /// runs. `silent_after` and `mail` may read, log and notify.
    pub fn policy_may_change(&self) -> bool {
        self.call.in_manage_link
    }

    /// The links whose report this run wrote (its heartbeat moved), with the channel state it
    /// reported. A daemon's replica that misses its reports for long stops its channel.
    pub fn reported(&self) -> &HashMap<LinkKey, ChannelState> {
        &self.book.reported
    }

    /// Commits the reports still waiting (`exec/joined.rs`); a link whose report failed did
    /// not report in this run, and its error is returned.
    pub fn settle_reports(&mut self) -> Vec<(LinkKey, crate::error::Error)> {
        let failed = self.backend.settle_reports();
        for (key, _) in &failed {
            self.book.reported.remove(key);
            self.book.reported_at.remove(key);
            self.book.refreshed.remove(key);
        }
        failed
    }

    /// When this run wrote each link's report.
    pub fn reported_at(&self) -> &HashMap<LinkKey, std::time::Instant> {
        &self.book.reported_at
    }

    /// Whether this run wrote the node's row and report for the link.
    pub fn reported_in_run(&self, link: &Link) -> bool {
        self.book.refreshed.contains(&link.key)
    }

    /// The verdict of this run's fence of a peer for a link, if it was fenced.
    pub fn fence_verdict(&self, link: &Link, host: &str) -> Option<&fence::Verdict> {
        self.fencing
            .verdicts
            .get(&(link.key.clone(), host.to_string()))
    }

    fn note_verdict(&mut self, link: &Link, host: &str, v: fence::Verdict) {
        self.fencing
            .verdicts
            .insert((link.key.clone(), host.to_string()), v);
    }

    /// Queues a notification for the policy's `mail` hook.
    pub fn mail(&mut self, event: Event, subject: String, body: String) {
        self.notices.host_mail.push(HostMail {
            event,
            about: None,
            subject,
            body,
        });
    }

    /// Queues a host mail about one peer (see [`HostMail::about`]).
    pub fn mail_about(&mut self, event: Event, peer: &str, subject: String, body: String) {
        self.notices.host_mail.push(HostMail {
            event,
            about: Some(peer.to_string()),
            subject,
            body,
        });
    }

    /// Whether the node may write the state table (the Primary component).
    pub fn writable(&self) -> bool {
        self.backend.facts().is_primary()
    }

    /// Applies an action; the outcome.
    pub fn apply(&mut self, action: Action) -> Result<Outcome> {
        let outcome = self.backend.apply(&action)?;
        if let Action::RecordFailure { key, kind, detail } = &action {
            self.book
                .failures
                .insert(key.clone(), format!("{}: {detail}", kind.as_str()));
        }
        Ok(outcome)
    }
}

/// Why a link's turn did not end well: the policy failed, the host's rules failed (a server
/// error: the rules themselves never give way), or both.
#[derive(Debug)]
pub enum LinkError {
    /// The policy's error (its `manage_link`, or `silent_after` for every link), as the
    /// engine reported it.
    Policy(String),
    /// The host's rules could not read or write what they needed.
    Host(crate::error::Error),
    /// The policy failed, then the host's rules.
    Both {
        policy: String,
        host: crate::error::Error,
    },
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Policy(p) => f.write_str(p),
            LinkError::Host(e) => write!(f, "{e}"),
            LinkError::Both { policy, host } => {
                write!(f, "{policy}; then the host's rules failed: {host}")
            }
        }
    }
}

/// Runs every link: the host's phases around the policy's `manage_link`. A link whose policy
/// call or rules fail does not stop the others; its error is returned.
pub fn run_links(
    shared: &Shared,
    hooks: &dyn PolicyHooks,
) -> Vec<(LinkKey, std::result::Result<(), LinkError>)> {
    shared.borrow_mut().note_pause();
    let floor = shared.borrow().settings.heartbeat_timeout;
    // A node outside the Primary component (or not Synced/Donor) leaves, and a paused node
    // reports: the host's own rules, which need no policy. Such a run asks the policy nothing
    // (its mail hook aside, after the rule acted), so a slow, failing or unloadable policy
    // never delays them; the threshold they mention is then [timeouts] heartbeat.
    let host_only = {
        let c = shared.borrow();
        !c.backend.facts().can_act() || c.pause.since.is_some()
    };
    let failed = if host_only {
        None
    } else {
        let policy_threshold = hooks.silent_after();
        // A silent_after that fails is the policy's error (the run exits non-zero), though the
        // run goes on safely with [timeouts] heartbeat.
        let failed = policy_threshold.as_ref().err().map(|e| {
            format!("silent_after failed, so every rule used [timeouts] heartbeat ({floor} s): {e}")
        });
        let (threshold, warning) = silent_threshold(floor, policy_threshold);
        if let Some(w) = warning {
            log::warn!("{}: {w}", shared.borrow().node());
        }
        let mut c = shared.borrow_mut();
        c.settings.silent_after = threshold;
        c.call.threshold_asked = true;
        failed
    };
    let links = shared.borrow().links.clone();
    phases::check_sources(&mut shared.borrow_mut(), &links);
    let mut results = Vec::new();
    for link in &links {
        let r = run_link(shared, hooks, link);
        shared.borrow_mut().link_done(link);
        let r = match (r, &failed) {
            (Ok(()), Some(e)) => Err(LinkError::Policy(e.clone())),
            (r, _) => r,
        };
        results.push((link.key.clone(), r));
    }
    // The reports that waited to be committed together, before anything else is done: a
    // link whose report failed has that error.
    let failed = shared.borrow_mut().settle_reports();
    for (key, e) in failed {
        if let Some((_, r)) = results.iter_mut().find(|(k, _)| *k == key) {
            *r = match std::mem::replace(r, Ok(())) {
                Ok(()) => Err(LinkError::Host(e)),
                Err(LinkError::Policy(policy)) => Err(LinkError::Both { policy, host: e }),
                Err(other) => {
                    log::error!("{}: link {key}: its report: {e}", shared.borrow().node());
                    Err(other)
                }
            };
        }
    }
    mail_skews(shared, hooks, &links);
    fence::check_logins(shared, hooks, &links);
    shared.borrow_mut().write_history();
    shared.borrow_mut().run_hooks();
    results
}

/// One notion of silent: the threshold is the policy's `silent_after`, never below
/// `[timeouts] heartbeat` (`floor`): a policy may lengthen it, never shorten it. Also says
/// why the policy's value was not taken, when it was not.
pub fn silent_threshold(
    floor: i64,
    policy: std::result::Result<i64, String>,
) -> (i64, Option<String>) {
    match policy {
        Ok(t) if t >= floor => (t, None),
        Ok(t) => (
            floor,
            Some(format!(
                "the policy's silent_after ({t} s) is shorter than [timeouts] heartbeat ({floor} s); using {floor} s: a policy may lengthen the threshold, never shorten it"
            )),
        ),
        Err(e) => (
            floor,
            Some(format!(
                "the policy's silent_after failed ({e}); using [timeouts] heartbeat ({floor} s)"
            )),
        ),
    }
}

fn run_link(
    shared: &Shared,
    hooks: &dyn PolicyHooks,
    link: &Link,
) -> std::result::Result<(), LinkError> {
    shared.borrow_mut().call.current_link = Some(link.key.clone());
    let decision = phases::before(&mut shared.borrow_mut(), link);
    send_host_mail(shared, hooks, link);
    let act = match decision {
        Ok(phases::Decision::Act) => true,
        Ok(phases::Decision::Done) => return Ok(()),
        Err(e) => return Err(LinkError::Host(e)),
    };
    shared.borrow_mut().call.in_manage_link = true;
    let policy = hooks.manage_link(link);
    shared.borrow_mut().call.in_manage_link = false;
    send_host_mail(shared, hooks, link);
    // The rules hold whatever the policy did, also when it failed; but a node whose policy
    // fails does not report, so it looks silent, like a node whose manager does not run.
    let rules = if act {
        phases::after(&mut shared.borrow_mut(), link, policy.is_ok())
    } else {
        Ok(())
    };
    send_host_mail(shared, hooks, link);
    match (policy, rules) {
        (Err(policy), Err(host)) => Err(LinkError::Both { policy, host }),
        (Err(p), Ok(())) => Err(LinkError::Policy(p)),
        (Ok(()), Err(e)) => Err(LinkError::Host(e)),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// Sends the host's notifications through the policy's `mail` hook.
fn send_host_mail(shared: &Shared, hooks: &dyn PolicyHooks, link: &Link) {
    let pending = std::mem::take(&mut shared.borrow_mut().notices.host_mail);
    for m in pending {
        mail_through_policy(shared, hooks, link, m);
    }
}

/// One host notification through the policy's `mail` hook. When the hook fails, the alarm is
/// not lost: the host sends it as it is, saying why.
pub(super) fn mail_through_policy(
    shared: &Shared,
    hooks: &dyn PolicyHooks,
    link: &Link,
    m: HostMail,
) {
    // Whatever the hook sends is this event's mail: one per outage, whatever its subject.
    shared.borrow_mut().notices.mail_event = Some(m.key());
    let r = hooks.mail(link, m.event.as_str(), &m.subject, &m.body);
    let Err(e) = r else {
        shared.borrow_mut().notices.mail_event = None;
        return;
    };
    let node = shared.borrow().node();
    log::error!(
        "{node}: the policy's mail hook failed for {:?}: {e}; sending the host's mail as it is",
        m.subject
    );
    let mail = crate::exec::mail::Mail {
        subject: m.subject,
        body: format!(
            "{}\n\n(Sent by the host as it is: the policy's mail hook failed: {e})",
            m.body
        ),
        once: None,
    };
    if let Err(e) = shared.borrow_mut().notify(mail) {
        log::error!("{node}: the host's mail could not be sent either: {e}");
    }
    shared.borrow_mut().notices.mail_event = None;
}

/// One mail per peer whose clock was found skewed.
fn mail_skews(shared: &Shared, hooks: &dyn PolicyHooks, links: &[Link]) {
    let skews = std::mem::take(&mut shared.borrow_mut().notices.skews);
    let Some(link) = links.first() else {
        return;
    };
    shared.borrow_mut().call.current_link = Some(link.key.clone());
    for k in skews {
        let node = shared.borrow().node();
        log::warn!(
            "{node}: {}; silence is judged by report sequences on this node's clock, so elections are safe, but set up NTP: the heartbeat ages shown in status and the failure ages are off",
            k.describe()
        );
        if shared.borrow_mut().observations.mark_skew_mailed(&k.host) {
            let subject = format!("clock of {} is off by at least {} s", k.host, k.at_least);
            let body = format!(
                "Seen from {node}, {}. Silence is judged by report sequences on one clock, so no replica is replaced early, but heartbeat ages shown by status, the failed timeout of records written by {} and nodes that still run replication_manager.sh depend on clocks in step. Check NTP on {}.",
                k.describe(),
                k.host,
                k.host
            );
            let m = HostMail {
                event: Event::ClockSkew,
                about: Some(k.host.clone()),
                subject,
                body,
            };
            mail_through_policy(shared, hooks, link, m);
        }
    }
}
