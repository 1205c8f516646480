//! The simulated backend: one node's view of its cluster, in memory. It renders every write
//! with the same [`super::render`] as dry-run (printing `<node>: <statement>` in the node's
//! dialect), decides a proposal with the same check as the other backends, and applies each
//! write to the model. `app::scenario` builds it from a scenario file.

use super::{
    Action, Backend, ConnectOutcome, FenceOutcome, Outcome, PeerFailure, RenderCtx, SourceUpdate,
    proposal_lines, render,
};
use crate::config::topology::Link;
use crate::config::{MailConfig, SourceAddr};
use crate::db::clock::{mark_view, may_propose};
use crate::db::flavor::{ReplicaStatus, Thread};
use crate::db::sql::{Channel, Reveal};
use crate::db::state::{
    LinkFailure, Me, NodeReport, ReportValues, Role, Schema, SilenceGuard, StateRow,
};
use crate::db::switchover::{Phase, Request};
use crate::error::{Error, ProbeError, Result};
use crate::exec::server::{ClusterStatus, LocalState, NodeFacts, Probe};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

/// The clock of a simulated run (Unix seconds); ages are relative to it.
pub const NOW: i64 = 1_000_000;

/// What a fence finds on a peer's server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerServer {
    /// Its channel runs: the fence stops it.
    Replicating,
    /// It answers and runs no channel.
    Idle,
    /// It does not answer.
    Down,
    /// It answers, but refuses the fence (the login is denied, or lacks a privilege).
    Refuses,
}

/// One link in the model.
pub struct SimLink {
    /// Shared: the model checker builds a backend for every host call.
    pub link: std::rc::Rc<Link>,
    /// The candidates that answer.
    pub answering: Vec<String>,
    /// The candidates that answer but are not Primary and Synced.
    pub unhealthy: Vec<String>,
    /// Each row's server as a fence finds it.
    pub servers: BTreeMap<String, PeerServer>,
    /// Current members' addresses.
    pub members: BTreeMap<String, String>,
    /// Whether the node can read the view's members (`mysql.wsrep_cluster_members`): the rows
    /// it reads say which nodes have left the view.
    pub membership: bool,
    /// What the sources report as `wsrep_gtid_domain_id`.
    pub gtid_domain: Option<u32>,
    /// Another node wins any proposal race on this link.
    pub race_lost_to: Option<String>,
    /// The SQL thread stops with this error as soon as the channel starts.
    pub sql_fails: Option<String>,
    pub rows: Vec<StateRow>,
    pub replica: Option<ReplicaStatus>,
    pub failure: Option<LinkFailure>,
    /// The link's switchover request, if one was made.
    pub switchover: Option<Request>,
}

/// The simulated backend.
pub struct SimBackend {
    pub facts: NodeFacts,
    pub me: Me,
    pub schema: Schema,
    pub links: Vec<SimLink>,
    pub mail: std::rc::Rc<MailConfig>,
    pub out: Box<dyn Write>,
    /// Answer the checks of the peers' fence logins from the rows' `servers` (scenarios that
    /// ask for it; the model checker does not).
    pub check_fence_logins: bool,
}

/// A channel's status in the model.
pub fn channel_status(
    ch: &Channel,
    host: &str,
    port: u16,
    io: &str,
    sql: &str,
    io_state: &str,
) -> ReplicaStatus {
    ReplicaStatus {
        channel: ch.as_str().to_string(),
        source_host: host.to_string(),
        source_port: port,
        source_user: "repl".into(),
        io_running: Thread::parse(io),
        sql_running: Thread::parse(sql),
        io_state: io_state.to_string(),
        last_io_error: String::new(),
        last_sql_error: String::new(),
        last_sql_errno: 0,
        lag_seconds: None,
        // Nothing executed yet; a scenario may say a position, or that none is known.
        gtid: vec![("Gtid_Slave_Pos".into(), String::new())],
    }
}

/// Whether a list of candidates names an address.
fn listed(list: &[String], addr: &str) -> bool {
    list.iter().any(|a| {
        a == addr
            || SourceAddr::parse(a, 3306)
                .map(|s| s.address() == addr)
                .unwrap_or(false)
    })
}

/// A node's report after a write of this node.
fn next_report(me: &Me, prev: Option<&NodeReport>, v: &ReportValues) -> NodeReport {
    NodeReport {
        seq: prev.map_or(1, |p| p.seq + 1),
        address: me.address.clone(),
        channel: v.channel,
        source: v.source.clone(),
        paused_for: v.paused_since.map(|t| NOW - t),
        fences: prev.map_or(0, |p| p.fences) + v.new_fences,
        blocked: match &v.fence {
            Some(n) => n.blocked.clone(),
            None => prev.and_then(|p| p.blocked.clone()),
        },
        // Since when is not modelled: a fence record carries its text only.
        blocked_for: None,
        unfenceable: match &v.fence {
            Some(n) => n.unfenceable.clone(),
            None => prev.and_then(|p| p.unfenceable.clone()),
        },
        // Not kept: no decision reads it, and the model checker's worlds would tell apart
        // states that differ only in a channel's lag.
        position: None,
    }
}

impl SimBackend {
    fn link(&mut self, key: &str) -> Result<&mut SimLink> {
        self.links
            .iter_mut()
            .find(|l| l.link.key == key)
            .ok_or_else(|| Error::Scenario(format!("no link {key}")))
    }

    fn by_channel(&mut self, ch: &Channel) -> Result<&mut SimLink> {
        self.links
            .iter_mut()
            .find(|l| &l.link.channel == ch)
            .ok_or_else(|| Error::Scenario(format!("no link uses channel {ch}")))
    }

    fn print(&mut self, line: &str) {
        let _ = writeln!(
            self.out,
            "{}: {}",
            crate::error::printable(&self.facts.name),
            crate::error::printable(line)
        );
    }

    /// Prints an action's statements, rendered as dry-run renders them.
    fn print_rendered(&mut self, action: &Action) -> Result<()> {
        let ctx = RenderCtx {
            schema: Some(&self.schema),
            me: &self.me,
            dialect: self.facts.flavor.dialect(),
        };
        for s in render(action, &ctx, Reveal::Masked)? {
            self.print(&s);
        }
        Ok(())
    }

    fn propose(&mut self, key: &str, fresh: &crate::db::clock::Freshness) -> Result<Outcome> {
        let me = self.me.clone();
        let l = self.link(key)?;
        let verdict = match &l.race_lost_to {
            Some(winner) => Err(format!(
                "{winner} proposed at the same moment and won (certification conflict)"
            )),
            None => may_propose(&l.rows, fresh).and_then(|()| {
                match l
                    .switchover
                    .as_ref()
                    .and_then(|r| r.bars(&me.host, fresh.threshold))
                {
                    Some(why) => Err(why),
                    None => Ok(()),
                }
            }),
        };
        if verdict.is_ok()
            && let Some(r) = l.rows.iter_mut().find(|r| r.host == me.host)
        {
            r.role = Role::Proposed;
            r.heartbeat_age = Some(0);
            r.update_age = Some(0);
        }
        for line in proposal_lines(&self.schema, key, &me, verdict.is_ok()) {
            self.print(&line);
        }
        Ok(match verdict {
            Ok(()) => Outcome::Done { affected: 1 },
            Err(why) => Outcome::Lost(why),
        })
    }

    fn fence(&mut self, peer: &str, action: &Action) -> Result<Outcome> {
        let Action::Fence { channel, .. } = action else {
            return Err(Error::Scenario(format!("not a fence: {action:?}")));
        };
        let server = self.by_channel(channel)?.servers.get_mut(peer);
        let outcome = match server {
            Some(s) if *s == PeerServer::Replicating => {
                *s = PeerServer::Idle;
                FenceOutcome::Stopped
            }
            Some(s) if *s == PeerServer::Idle => FenceOutcome::NotRunning,
            Some(PeerServer::Refuses) => FenceOutcome::Failed(PeerFailure::Refused(
                "Access denied for user 'pxcrm' (error 1045) (scenario: refuses)".into(),
            )),
            _ => FenceOutcome::Failed(PeerFailure::Unreachable(
                "no TCP connection (scenario: down)".into(),
            )),
        };
        if outcome == FenceOutcome::Stopped {
            self.print_rendered(action)?;
        }
        Ok(Outcome::Fenced(outcome))
    }

    /// This node's own row: added, refreshed (with a new role or source), or marked paused.
    fn write_own(&mut self, action: &Action) -> Result<Outcome> {
        let me = self.me.clone();
        match action {
            Action::InsertRow { key, role, report } => {
                let l = self.link(key)?;
                l.rows.push(StateRow {
                    host: me.host.clone(),
                    local_index: Some(me.local_index),
                    weight: me.weight,
                    role: *role,
                    heartbeat_age: Some(0),
                    update_age: Some(0),
                    current_source: None,
                    report: Some(next_report(&me, None, report)),
                    read_at: NOW,
                    in_view: None,
                });
                l.rows.sort_by(|a, b| a.host.cmp(&b.host));
                Ok(Outcome::Done { affected: 1 })
            }
            Action::UpdateOwnRow {
                key,
                role,
                source,
                report,
            } => {
                let l = self.link(key)?;
                let Some(r) = l.rows.iter_mut().find(|r| r.host == me.host) else {
                    return Ok(Outcome::Done { affected: 0 });
                };
                r.heartbeat_age = Some(0);
                r.local_index = Some(me.local_index);
                if let Some(role) = role {
                    r.role = *role;
                    r.update_age = Some(0);
                }
                match source {
                    SourceUpdate::Keep => {}
                    SourceUpdate::Set(a) => r.current_source = Some(a.clone()),
                    SourceUpdate::Clear => r.current_source = None,
                }
                r.report = Some(next_report(&me, r.report.as_ref(), report));
                Ok(Outcome::Done { affected: 1 })
            }
            Action::PauseMark { key, report } => {
                let l = self.link(key)?;
                if let Some(r) = l.rows.iter_mut().find(|r| r.host == me.host) {
                    let mut p = next_report(&me, r.report.as_ref(), report);
                    p.seq = r.report.as_ref().map_or(0, |p| p.seq);
                    r.report = Some(p);
                }
                Ok(Outcome::Done { affected: 1 })
            }
            other => Err(Error::Scenario(format!("not an own-row write: {other:?}"))),
        }
    }

    fn demote(&mut self, key: &str, peer: &str, guard: &SilenceGuard) -> Result<Outcome> {
        let l = self.link(key)?;
        let still_silent = |r: &StateRow| match guard {
            SilenceGuard::Seq(s) => r.report.as_ref().is_some_and(|p| p.seq == *s),
            SilenceGuard::OlderThan(t) => r.heartbeat_age.is_none_or(|a| a > *t),
        };
        let mut n = 0;
        if let Some(r) = l
            .rows
            .iter_mut()
            .find(|r| r.host == peer && r.role == Role::Yes && still_silent(r))
        {
            r.role = Role::No;
            r.update_age = Some(0);
            n = 1;
        }
        Ok(Outcome::Done { affected: n })
    }

    /// `CHANGE`, `START`, `STOP`, `RESET` on this node's channel.
    fn channel(&mut self, action: &Action) -> Result<Outcome> {
        match action {
            Action::ChangeSource { channel, spec } => {
                let l = self.by_channel(channel)?;
                l.replica = Some(channel_status(
                    channel, &spec.host, spec.port, "No", "No", "",
                ));
            }
            Action::StartReplica { channel } => {
                let l = self.by_channel(channel)?;
                if let Some(r) = l.replica.clone() {
                    let up = listed(&l.answering, &r.source());
                    let (io, state) = if up {
                        ("Yes", "Waiting for master to send event")
                    } else {
                        ("Connecting", "Connecting to master")
                    };
                    let mut s =
                        channel_status(channel, &r.source_host, r.source_port, io, "Yes", state);
                    if let (true, Some(e)) = (up, &l.sql_fails) {
                        s.sql_running = Thread::No;
                        s.last_sql_error = e.clone();
                    }
                    // Caught up: NULL unless both threads run, as the servers (and the model
                    // checker's world) say it.
                    if s.io_running.is_running() && s.sql_running.is_running() {
                        s.lag_seconds = Some(0);
                    }
                    l.replica = Some(s);
                }
            }
            Action::StopReplica { channel } => {
                if let Some(r) = self.by_channel(channel)?.replica.as_mut() {
                    r.io_running = Thread::No;
                    r.sql_running = Thread::No;
                    r.io_state.clear();
                }
            }
            Action::ResetReplica { channel } => self.by_channel(channel)?.replica = None,
            other => return Err(Error::Scenario(format!("not a channel action: {other:?}"))),
        }
        Ok(Outcome::Done { affected: 0 })
    }

    /// A mail or a hook: prints the lines it would send or run.
    fn announce(&mut self, action: &Action) -> Outcome {
        let lines = match action {
            Action::Notify(m) => m.lines(&self.mail),
            Action::Hook(h) => h.lines(),
            _ => Vec::new(),
        };
        for l in lines {
            self.print(&l);
        }
        Outcome::Done { affected: 0 }
    }

    /// The link's recorded failure, recorded or cleared, and its failed rows cleared.
    fn failure(&mut self, action: &Action) -> Result<Outcome> {
        match action {
            Action::RecordFailure { key, kind, detail } => {
                let host = self.me.host.clone();
                self.link(key)?.failure = Some(LinkFailure {
                    host,
                    kind: *kind,
                    age: Some(0),
                    detail: detail.clone(),
                });
                Ok(Outcome::Done { affected: 1 })
            }
            Action::ClearFailure { key } => {
                let n = u64::from(self.link(key)?.failure.take().is_some());
                Ok(Outcome::Done { affected: n })
            }
            Action::ClearFailedRows { key } => {
                let mut n = 0;
                for r in &mut self.link(key)?.rows {
                    if r.role == Role::Failed {
                        r.role = Role::No;
                        r.update_age = Some(0);
                        n += 1;
                    }
                }
                Ok(Outcome::Done { affected: n })
            }
            other => Err(Error::Scenario(format!("not a failure write: {other:?}"))),
        }
    }

    /// The link's switchover request: made, or moved on to its next phase.
    fn switchover_request(&mut self, action: &Action) -> Result<Outcome> {
        match action {
            Action::RequestSwitchover {
                key,
                from,
                to,
                by,
                threshold,
            } => {
                let l = self.link(key)?;
                if l.switchover.as_ref().is_some_and(|r| r.pending(*threshold)) {
                    return Ok(Outcome::Done { affected: 0 });
                }
                l.switchover = Some(Request {
                    from: from.clone(),
                    to: to.clone(),
                    phase: Phase::Requested,
                    position: None,
                    source: None,
                    detail: None,
                    requested_by: by.clone(),
                    age_ms: 0,
                });
                Ok(Outcome::Done { affected: 1 })
            }
            Action::AdvanceSwitchover {
                key,
                to,
                from_phase,
                phase,
                source,
                detail,
            } => {
                let l = self.link(key)?;
                match l.switchover.as_mut() {
                    Some(r) if &r.to == to && r.phase == *from_phase => {
                        r.phase = *phase;
                        r.age_ms = 0;
                        if source.is_some() {
                            r.source.clone_from(source);
                        }
                        if detail.is_some() {
                            r.detail.clone_from(detail);
                        }
                        Ok(Outcome::Done { affected: 1 })
                    }
                    _ => Ok(Outcome::Done { affected: 0 }),
                }
            }
            other => Err(Error::Scenario(format!(
                "not a switchover request: {other:?}"
            ))),
        }
    }

    /// The switchover's hand-off: the request marked stopped at this node's position, and its
    /// own row no longer replicating.
    fn hand_off(&mut self, action: &Action) -> Result<Outcome> {
        let Action::HandOff {
            key,
            position,
            source,
            threshold,
            report,
        } = action
        else {
            return Err(Error::Scenario(format!("not a hand-off: {action:?}")));
        };
        let me = self.me.clone();
        let l = self.link(key)?;
        match l.switchover.as_mut() {
            Some(r)
                if r.from == me.host
                    && matches!(r.phase, Phase::Requested | Phase::Ready)
                    && r.pending(*threshold) =>
            {
                r.phase = Phase::Stopped;
                r.age_ms = 0;
                r.position = Some(position.clone());
                r.source = Some(source.clone());
            }
            _ => {
                return Ok(Outcome::Lost(
                    "the request no longer names this node, or has ended".into(),
                ));
            }
        }
        self.write_own(&Action::UpdateOwnRow {
            key: key.clone(),
            role: Some(Role::No),
            source: SourceUpdate::Clear,
            report: report.clone(),
        })
    }
}

impl Backend for SimBackend {
    fn fence_login(&self) -> String {
        "pxcrm".into()
    }

    fn fence_check_targets(&mut self) -> Result<Vec<(String, String)>> {
        if !self.check_fence_logins {
            return Ok(Vec::new());
        }
        let mut v: Vec<(String, String)> = self
            .links
            .iter()
            .flat_map(|l| l.members.clone())
            .filter(|(name, _)| *name != self.me.host)
            .collect();
        v.sort();
        v.dedup();
        Ok(v)
    }

    fn check_fence_login(&mut self, address: &str) -> Option<super::PeerCheck> {
        if !self.check_fence_logins {
            return None;
        }
        let peer = self.links.iter().find_map(|l| {
            l.members
                .iter()
                .find(|(_, a)| a.as_str() == address)
                .map(|(n, _)| n.clone())
        })?;
        let server = self
            .links
            .iter()
            .find_map(|l| l.servers.get(&peer).copied());
        let problem = match server {
            Some(PeerServer::Refuses) => Some(PeerFailure::Refused(
                "the login as pxcrm failed: Access denied for user 'pxcrm' (error 1045) (scenario: refuses)"
                    .into(),
            )),
            Some(PeerServer::Down) | None => Some(PeerFailure::Unreachable(
                "no TCP connection (scenario: down)".into(),
            )),
            Some(_) => None,
        };
        Some(super::PeerCheck {
            problem,
            ..Default::default()
        })
    }

    fn facts(&self) -> &NodeFacts {
        &self.facts
    }

    fn me(&self) -> &Me {
        &self.me
    }

    fn member_address(&mut self, host: &str) -> Result<Option<String>> {
        Ok(self.links.iter().find_map(|l| l.members.get(host).cloned()))
    }

    fn rows(&mut self, link: &Link) -> Result<Vec<StateRow>> {
        let me = self.me.host.clone();
        let lists = self.facts.is_primary() && self.facts.flavor.lists_members();
        let l = self.link(&link.key)?;
        let mut rows = l.rows.clone();
        if lists && l.membership {
            let mut members: Vec<crate::db::clock::Member> = l
                .members
                .iter()
                .map(|(n, a)| (n.clone(), Some(a.clone())))
                .collect();
            if !l.members.contains_key(&me) {
                members.push((me.clone(), None));
            }
            mark_view(&mut rows, &me, &members);
        }
        Ok(rows)
    }

    fn replica(&mut self, link: &Link) -> Result<Option<ReplicaStatus>> {
        Ok(self.link(&link.key)?.replica.clone())
    }

    fn switchover(&mut self, link: &Link) -> Result<Option<Request>> {
        Ok(self.link(&link.key)?.switchover.clone())
    }

    /// Galera applies at once in the model.
    fn await_position(&mut self, _position: &str, _max: Duration) -> Result<bool> {
        Ok(true)
    }

    fn last_failure(&mut self, link: &Link) -> Result<Option<LinkFailure>> {
        Ok(self.link(&link.key)?.failure.clone())
    }

    fn probe(
        &mut self,
        link: &Link,
        source: &SourceAddr,
    ) -> std::result::Result<Probe, ProbeError> {
        let l = self
            .link(&link.key)
            .map_err(|e| ProbeError::Simulated(e.to_string()))?;
        let addr = source.address();
        if !listed(&l.answering, &addr) {
            return Err(ProbeError::Simulated(format!(
                "Can't connect to MySQL server on '{addr}' (scenario: not answering)"
            )));
        }
        let healthy = !listed(&l.unhealthy, &addr);
        Ok(Probe {
            gtid_domain_id: l.gtid_domain,
            cluster_status: Some(if healthy {
                ClusterStatus::Primary
            } else {
                ClusterStatus::NonPrimary
            }),
            local_state: Some(if healthy {
                LocalState::Synced
            } else {
                LocalState::Other(0)
            }),
            local_state_comment: Some(if healthy { "Synced" } else { "Initialized" }.into()),
        })
    }

    fn await_replica(
        &mut self,
        link: &Link,
        _source: &SourceAddr,
        _deadline: Duration,
    ) -> Result<ConnectOutcome> {
        Ok(match self.link(&link.key)?.replica.clone() {
            Some(r) if r.is_healthy() => ConnectOutcome::Replicating(r.io_state),
            Some(r) if r.has_data_error() => ConnectOutcome::SqlError(r.last_sql_error),
            Some(r) => ConnectOutcome::NotRunning(super::stalled(&r)),
            None => ConnectOutcome::NotRunning("no channel".into()),
        })
    }

    fn apply(&mut self, action: &Action) -> Result<Outcome> {
        match action {
            Action::Propose { key, fresh } => return self.propose(key, fresh),
            Action::Fence { host, .. } => return self.fence(host, action),
            _ => {}
        }
        self.print_rendered(action)?;
        match action {
            Action::Notify(_) | Action::Hook(_) => Ok(self.announce(action)),
            Action::InsertRow { .. } | Action::UpdateOwnRow { .. } | Action::PauseMark { .. } => {
                self.write_own(action)
            }
            Action::DemoteSilent { key, host, guard } => self.demote(key, host, guard),
            Action::ChangeSource { .. }
            | Action::StartReplica { .. }
            | Action::StopReplica { .. }
            | Action::ResetReplica { .. } => self.channel(action),
            Action::RecordFailure { .. }
            | Action::ClearFailure { .. }
            | Action::ClearFailedRows { .. } => self.failure(action),
            Action::RecordHistory { .. } => Ok(Outcome::Done { affected: 1 }),
            Action::RequestSwitchover { .. } | Action::AdvanceSwitchover { .. } => {
                self.switchover_request(action)
            }
            Action::HandOff { .. } => self.hand_off(action),
            Action::InitSchema
            | Action::PauseCluster { .. }
            | Action::ResumeCluster { .. }
            | Action::Propose { .. }
            | Action::Fence { .. } => Ok(Outcome::Done { affected: 0 }),
        }
    }

    fn mail_failures(&self) -> usize {
        0
    }
}
