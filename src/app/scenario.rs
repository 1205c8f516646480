//! `simulate`: runs a policy against a scenario file, with no server.
//!
//! A scenario describes what one node sees: its wsrep facts, its links with their state rows
//! (and the reports of their nodes, and what this node has seen of them), its replica
//! channels, which source candidates answer and are healthy, and what a peer's server would
//! say to a fence. The simulated backend keeps that in memory, renders every write with the
//! same renderer as dry-run (printing `<node>: <statement>` lines, in the scenario's server
//! dialect), decides a proposal with the same check, and applies it to the model. At the end
//! the final rows and channels are printed after `--- final state`.

use crate::config::topology::Link;
use crate::config::{SourceAddr, line_col};
use crate::db::clock::{Observations, Seen};
use crate::db::flavor::{Flavor, ReplicaStatus, Thread};
use crate::db::sql::{Channel, Reveal, Secret};
use crate::db::state::{
    self, ChannelState, Generation, LinkFailure, Me, NodeReport, Role, Schema, SilenceGuard,
    StateRow,
};
use crate::error::{Error, Result};
use crate::exec::server::{NodeFacts, Probe};
use crate::exec::{
    self, Action, Backend, ConnectOutcome, FenceOutcome, Outcome, RenderCtx, SourceUpdate,
};
use crate::host::{RunCtx, Settings};
use crate::policy::Policy;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    node: ScenarioNode,
    #[serde(default)]
    timeouts: ScenarioTimeouts,
    #[serde(default)]
    policy: ScenarioPolicy,
    #[serde(default)]
    mail: ScenarioMail,
    #[serde(default)]
    link: Vec<ScenarioLink>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioNode {
    name: String,
    cluster: String,
    #[serde(default)]
    local_index: i64,
    #[serde(default = "primary")]
    cluster_status: String,
    #[serde(default = "synced")]
    state: i64,
    #[serde(default = "three")]
    cluster_size: i64,
    #[serde(default)]
    weight: i64,
    /// A server version string, e.g. "10.11.6-MariaDB", "5.7.44", "8.0.36", "8.4.3".
    #[serde(default = "mariadb")]
    version: String,
    /// "multi" (isReplica, currentSource), "multi-isslave" (2017) or "seed".
    #[serde(default = "multi")]
    generation: String,
    /// The pause file appeared this many seconds ago.
    paused_for: Option<i64>,
    /// Where peers reach this node's server (recorded in its reports).
    address: Option<String>,
}

fn primary() -> String {
    "Primary".into()
}
fn synced() -> i64 {
    4
}
fn three() -> i64 {
    3
}
fn mariadb() -> String {
    "10.11.6-MariaDB".into()
}
fn multi() -> String {
    "multi".into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScenarioTimeouts {
    heartbeat: Option<i64>,
    failed: Option<i64>,
    connect: Option<u64>,
}

/// The clock of a simulated run (Unix seconds); ages are relative to it.
const NOW: i64 = 1_000_000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScenarioPolicy {
    distribute: Option<bool>,
    vars: Option<toml::Table>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScenarioMail {
    to: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioLink {
    remote: String,
    sources: Vec<String>,
    /// Candidates that answer; all of them when not given.
    answering: Option<Vec<String>>,
    /// Candidates that answer but are not Primary and Synced (cut off from their cluster).
    #[serde(default)]
    unhealthy: Vec<String>,
    /// The GTID domain the sources report (MariaDB).
    gtid_domain: Option<u32>,
    /// Another node wins any proposal race on this link (the claim's certification conflict).
    race_lost_to: Option<String>,
    /// The SQL thread stops with this error as soon as the channel starts (a data conflict).
    sql_fails: Option<String>,
    replica: Option<ScenarioReplica>,
    /// What a node recorded about why the link is failing.
    failure: Option<ScenarioFailure>,
    #[serde(default)]
    row: Vec<ScenarioRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFailure {
    host: String,
    kind: String,
    age: i64,
    #[serde(default)]
    detail: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioReplica {
    source: String,
    #[serde(default = "yes")]
    io: String,
    #[serde(default = "yes")]
    sql: String,
    #[serde(default)]
    io_state: String,
    #[serde(default)]
    io_error: String,
    #[serde(default)]
    sql_error: String,
}

fn yes() -> String {
    "Yes".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioRow {
    host: String,
    state: String,
    local_index: Option<i64>,
    #[serde(default)]
    weight: i64,
    heartbeat_age: Option<i64>,
    update_age: Option<i64>,
    current_source: Option<String>,
    /// The node's report in percona.replication_node; none for the original script.
    report: Option<ScenarioReport>,
    /// What the node's server says to a fence: "replicating" (its channel runs), "idle", or
    /// "down" (the default: it does not answer).
    #[serde(default = "down")]
    server: String,
    /// Its address in the current view (mysql.wsrep_cluster_members), if it is a member.
    member: Option<String>,
}

fn down() -> String {
    "down".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioReport {
    #[serde(default = "one")]
    seq: u64,
    /// none, stopped, running or healthy.
    #[serde(default = "none")]
    channel: String,
    address: Option<String>,
    source: Option<String>,
    paused_for: Option<i64>,
    /// How long this node has seen the sequence stand still; not given: just seen for the
    /// first time.
    unchanged_for: Option<i64>,
}

fn one() -> u64 {
    1
}
fn none() -> String {
    "none".into()
}

/// One link in the model.
struct SimLink {
    link: Link,
    answering: Vec<String>,
    unhealthy: Vec<String>,
    /// Each row's server as a fence finds it: "replicating", "idle" or "down".
    servers: BTreeMap<String, String>,
    /// Current members' addresses.
    members: BTreeMap<String, String>,
    gtid_domain: Option<u32>,
    race_lost_to: Option<String>,
    sql_fails: Option<String>,
    rows: Vec<StateRow>,
    replica: Option<ReplicaStatus>,
    failure: Option<LinkFailure>,
}

/// The simulated backend.
pub struct SimBackend {
    facts: NodeFacts,
    me: Me,
    schema: Schema,
    links: Vec<SimLink>,
    mail: crate::config::MailConfig,
    out: Box<dyn Write>,
}

impl SimBackend {
    fn link_mut(&mut self, key: &str) -> Option<&mut SimLink> {
        self.links.iter_mut().find(|l| l.link.key == key)
    }
    fn by_channel(&mut self, ch: &Channel) -> Option<&mut SimLink> {
        self.links.iter_mut().find(|l| &l.link.channel == ch)
    }
    fn listed(list: &[String], addr: &str) -> bool {
        list.iter().any(|a| {
            a == addr
                || SourceAddr::parse(a, 3306)
                    .map(|s| s.address() == addr)
                    .unwrap_or(false)
        })
    }
    fn answers(l: &SimLink, addr: &str) -> bool {
        SimBackend::listed(&l.answering, addr)
    }
    fn print(&mut self, line: &str) {
        let _ = writeln!(self.out, "{}: {line}", self.facts.name);
    }
    /// Prints an action's statements, rendered as dry-run renders them.
    fn print_rendered(&mut self, action: &Action) -> Result<()> {
        let ctx = RenderCtx {
            schema: Some(&self.schema),
            me: &self.me,
            dialect: self.facts.flavor.dialect(),
        };
        for s in exec::render(action, &ctx, Reveal::Masked)? {
            let _ = writeln!(self.out, "{}: {s}", self.facts.name);
        }
        Ok(())
    }
}

impl Backend for SimBackend {
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
        Ok(self
            .link_mut(&link.key)
            .map(|l| l.rows.clone())
            .unwrap_or_default())
    }

    fn replica(&mut self, link: &Link) -> Result<Option<ReplicaStatus>> {
        Ok(self.link_mut(&link.key).and_then(|l| l.replica.clone()))
    }

    fn last_failure(&mut self, link: &Link) -> Result<Option<LinkFailure>> {
        Ok(self.link_mut(&link.key).and_then(|l| l.failure.clone()))
    }

    fn probe(&mut self, link: &Link, source: &SourceAddr) -> std::result::Result<Probe, String> {
        let l = self
            .link_mut(&link.key)
            .ok_or_else(|| "unknown link".to_string())?;
        let addr = source.address();
        if SimBackend::answers(l, &addr) {
            let healthy = !SimBackend::listed(&l.unhealthy, &addr);
            Ok(Probe {
                gtid_domain_id: l.gtid_domain,
                cluster_status: Some(if healthy { "Primary" } else { "non-Primary" }.into()),
                local_state: Some(if healthy { 4 } else { 0 }),
                local_state_comment: Some(if healthy { "Synced" } else { "Initialized" }.into()),
            })
        } else {
            Err(format!(
                "Can't connect to MySQL server on '{}' (scenario: not answering)",
                source.address()
            ))
        }
    }

    fn await_replica(
        &mut self,
        link: &Link,
        _source: &SourceAddr,
        _deadline: Duration,
    ) -> Result<ConnectOutcome> {
        let r = self.link_mut(&link.key).and_then(|l| l.replica.clone());
        Ok(match r {
            Some(r) if r.is_healthy() => ConnectOutcome {
                ok: true,
                detail: r.io_state,
                sql_error: String::new(),
            },
            Some(r) => ConnectOutcome {
                ok: false,
                detail: format!("IO thread {} ({})", r.io_running, r.io_state),
                sql_error: r.last_sql_error,
            },
            None => ConnectOutcome {
                ok: false,
                detail: "no channel".into(),
                sql_error: String::new(),
            },
        })
    }

    fn apply(&mut self, action: &Action) -> Result<Outcome> {
        let me = self.me.clone();
        let host = me.host.clone();
        if let Action::Propose { key, fresh } = action {
            let l = self
                .link_mut(key)
                .ok_or_else(|| Error::Scenario(format!("no link {key}")))?;
            let verdict = match &l.race_lost_to {
                Some(winner) => Err(format!(
                    "{winner} proposed at the same moment and won (certification conflict)"
                )),
                None => crate::db::clock::may_propose(&l.rows, fresh),
            };
            if verdict.is_ok()
                && let Some(r) = l.rows.iter_mut().find(|r| r.host == host)
            {
                r.role = Role::Proposed;
                r.heartbeat_age = Some(0);
                r.update_age = Some(0);
            }
            for line in exec::proposal_lines(&self.schema, key, &me, verdict.is_ok()) {
                self.print(&line);
            }
            return Ok(match verdict {
                Ok(()) => Outcome::Done { affected: 1 },
                Err(why) => Outcome::Lost(why),
            });
        }
        if let Action::Fence { host: peer, .. } = action {
            let found = self
                .links
                .iter_mut()
                .find_map(|l| l.servers.get_mut(peer))
                .map(|s| {
                    let was = s.clone();
                    if was == "replicating" {
                        *s = "idle".into();
                    }
                    was
                });
            let outcome = match found.as_deref() {
                Some("replicating") => FenceOutcome::Stopped,
                Some("idle") => FenceOutcome::NotRunning,
                _ => FenceOutcome::Unreachable(
                    "Can't connect to MySQL server (scenario: down)".into(),
                ),
            };
            if outcome == FenceOutcome::Stopped {
                self.print_rendered(action)?;
            }
            return Ok(Outcome::Fenced(outcome));
        }
        self.print_rendered(action)?;
        let report_of = |prev: Option<&NodeReport>, v: &state::ReportValues| NodeReport {
            seq: prev.map_or(1, |p| p.seq + 1),
            address: me.address.clone(),
            channel: v.channel,
            source: v.source.clone(),
            paused_for: v.paused_since.map(|t| NOW - t),
            fences: prev.map_or(0, |p| p.fences) + v.new_fences,
        };
        let outcome = match action {
            Action::Notify(m) => {
                let lines = m.lines(&self.mail, &self.facts.name);
                for l in lines {
                    self.print(&l);
                }
                Outcome::Done { affected: 0 }
            }
            Action::InsertRow { key, role, report } => {
                let l = self
                    .link_mut(key)
                    .ok_or_else(|| Error::Scenario(format!("no link {key}")))?;
                l.rows.push(StateRow {
                    host: host.clone(),
                    local_index: Some(me.local_index),
                    weight: me.weight,
                    role: *role,
                    heartbeat_age: Some(0),
                    update_age: Some(0),
                    current_source: None,
                    report: Some(report_of(None, report)),
                    read_at: NOW,
                });
                l.rows.sort_by(|a, b| a.host.cmp(&b.host));
                Outcome::Done { affected: 1 }
            }
            Action::UpdateOwnRow {
                key,
                role,
                source,
                report,
            } => {
                let l = self
                    .link_mut(key)
                    .ok_or_else(|| Error::Scenario(format!("no link {key}")))?;
                let mut n = 0;
                if let Some(r) = l.rows.iter_mut().find(|r| r.host == host) {
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
                    r.report = Some(report_of(r.report.as_ref(), report));
                    n = 1;
                }
                Outcome::Done { affected: n }
            }
            Action::PauseMark { key, report } => {
                let l = self
                    .link_mut(key)
                    .ok_or_else(|| Error::Scenario(format!("no link {key}")))?;
                if let Some(r) = l.rows.iter_mut().find(|r| r.host == host) {
                    let mut p = report_of(r.report.as_ref(), report);
                    p.seq = r.report.as_ref().map_or(0, |p| p.seq);
                    r.report = Some(p);
                }
                Outcome::Done { affected: 1 }
            }
            Action::DemoteSilent {
                key,
                host: peer,
                guard,
            } => {
                let l = self
                    .link_mut(key)
                    .ok_or_else(|| Error::Scenario(format!("no link {key}")))?;
                let mut n = 0;
                if let Some(r) = l.rows.iter_mut().find(|r| {
                    &r.host == peer
                        && r.role == Role::Yes
                        && match guard {
                            SilenceGuard::Seq(s) => r.report.as_ref().is_some_and(|p| p.seq == *s),
                            SilenceGuard::OlderThan(t) => r.heartbeat_age.is_none_or(|a| a > *t),
                        }
                }) {
                    r.role = Role::No;
                    r.update_age = Some(0);
                    n = 1;
                }
                Outcome::Done { affected: n }
            }
            Action::ChangeSource { channel, spec } => {
                let l = self
                    .by_channel(channel)
                    .ok_or_else(|| Error::Scenario(format!("no link uses channel {channel}")))?;
                l.replica = Some(status(channel, &spec.host, spec.port, "No", "No", ""));
                Outcome::Done { affected: 0 }
            }
            Action::StartReplica { channel } => {
                let l = self
                    .by_channel(channel)
                    .ok_or_else(|| Error::Scenario(format!("no link uses channel {channel}")))?;
                if let Some(r) = l.replica.clone() {
                    let up = SimBackend::answers(l, &r.source());
                    let mut s = status(
                        channel,
                        &r.source_host,
                        r.source_port,
                        if up { "Yes" } else { "Connecting" },
                        "Yes",
                        if up {
                            "Waiting for master to send event"
                        } else {
                            "Connecting to master"
                        },
                    );
                    if let (true, Some(e)) = (up, &l.sql_fails) {
                        s.sql_running = Thread::No;
                        s.last_sql_error = e.clone();
                    }
                    l.replica = Some(s);
                }
                Outcome::Done { affected: 0 }
            }
            Action::StopReplica { channel } => {
                if let Some(r) = self.by_channel(channel).and_then(|l| l.replica.as_mut()) {
                    r.io_running = Thread::No;
                    r.sql_running = Thread::No;
                    r.io_state.clear();
                }
                Outcome::Done { affected: 0 }
            }
            Action::ResetReplica { channel } => {
                if let Some(l) = self.by_channel(channel) {
                    l.replica = None;
                }
                Outcome::Done { affected: 0 }
            }
            Action::RecordFailure { key, kind, detail } => {
                let l = self
                    .link_mut(key)
                    .ok_or_else(|| Error::Scenario(format!("no link {key}")))?;
                l.failure = Some(LinkFailure {
                    host: host.clone(),
                    kind: kind.clone(),
                    age: Some(0),
                    detail: detail.clone(),
                });
                Outcome::Done { affected: 1 }
            }
            Action::ClearFailure { key } => {
                let l = self
                    .link_mut(key)
                    .ok_or_else(|| Error::Scenario(format!("no link {key}")))?;
                let n = u64::from(l.failure.take().is_some());
                Outcome::Done { affected: n }
            }
            Action::InitSchema | Action::Propose { .. } | Action::Fence { .. } => {
                Outcome::Done { affected: 0 }
            }
        };
        Ok(outcome)
    }

    fn mail_failures(&self) -> usize {
        0
    }
}

fn status(
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
        io_running: thread(io),
        sql_running: thread(sql),
        io_state: io_state.to_string(),
        last_io_error: String::new(),
        last_sql_error: String::new(),
        lag_seconds: None,
        gtid: Vec::new(),
    }
}

fn thread(s: &str) -> Thread {
    match s {
        "Yes" => Thread::Yes,
        "No" => Thread::No,
        "Connecting" => Thread::Connecting,
        o => Thread::Other(o.into()),
    }
}

/// What a simulation ended with.
pub struct SimResult {
    /// Policy errors by link.
    pub errors: Vec<(String, String)>,
}

/// Loads a scenario and runs the policy on it, printing the actions and the final state.
pub fn simulate(
    scenario_path: &Path,
    policy: &Policy,
    mut out: Box<dyn Write>,
) -> Result<SimResult> {
    let text = std::fs::read_to_string(scenario_path)
        .map_err(|e| Error::Scenario(format!("{}: cannot read: {e}", scenario_path.display())))?;
    let bad = |msg: String| Error::Scenario(format!("{}: {msg}", scenario_path.display()));
    let sc: Scenario = toml::from_str(&text).map_err(|e| {
        let (l, c) = e.span().map_or((0, 0), |s| line_col(&text, s.start));
        Error::Scenario(format!(
            "{}:{l}:{c}: {}",
            scenario_path.display(),
            e.message().trim()
        ))
    })?;
    let flavor =
        Flavor::detect(&sc.node.version, "").map_err(|e| bad(format!("[node] version: {e}")))?;
    let generation = match sc.node.generation.as_str() {
        "seed" => Generation::Seed,
        "multi" => Generation::Multi {
            role_column: "isReplica",
            has_weight: true,
            has_current_source: true,
        },
        "multi-isslave" => Generation::Multi {
            role_column: "isSlave",
            has_weight: true,
            has_current_source: false,
        },
        other => {
            return Err(bad(format!(
                "[node] generation {other:?}: expected seed, multi or multi-isslave"
            )));
        }
    };
    let schema = Schema {
        generation: generation.clone(),
        has_claim_table: true,
        claim_records_failures: true,
        has_topology_tables: false,
        has_node_table: true,
    };
    let mut observations = Observations::in_memory();
    let mut links = Vec::new();
    for l in sc.link {
        let sources = l
            .sources
            .iter()
            .map(|s| SourceAddr::parse(s, 3306))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("link {}: {e}", l.remote)))?;
        let (key, channel) = if generation == Generation::Seed {
            (sc.node.cluster.clone(), Channel::default_channel())
        } else {
            let k = format!("{}-{}", sc.node.cluster, l.remote);
            let ch = Channel::named(&k).map_err(bad)?;
            (k, ch)
        };
        let rows = l
            .row
            .iter()
            .map(|r| {
                let report = match &r.report {
                    Some(p) => {
                        if !matches!(p.channel.as_str(), "none" | "stopped" | "running" | "healthy") {
                            return Err(bad(format!(
                                "row {}: report channel {:?}: expected none, stopped, running or healthy",
                                r.host, p.channel
                            )));
                        }
                        if let Some(u) = p.unchanged_for {
                            let since = NOW - u;
                            observations.remember(
                                &key,
                                &r.host,
                                Seen {
                                    seq: p.seq,
                                    since,
                                    checked: since,
                                },
                            );
                        }
                        Some(NodeReport {
                            seq: p.seq,
                            address: p.address.clone(),
                            channel: ChannelState::parse(&p.channel),
                            source: p.source.clone(),
                            paused_for: p.paused_for,
                            fences: 0,
                        })
                    }
                    None => None,
                };
                if !matches!(r.server.as_str(), "replicating" | "idle" | "down") {
                    return Err(bad(format!(
                        "row {}: server {:?}: expected replicating, idle or down",
                        r.host, r.server
                    )));
                }
                Ok(StateRow {
                    host: r.host.clone(),
                    local_index: r.local_index,
                    weight: r.weight,
                    role: r
                        .state
                        .parse()
                        .map_err(|e| bad(format!("row {}: {e}", r.host)))?,
                    heartbeat_age: r.heartbeat_age,
                    update_age: r.update_age.or(r.heartbeat_age),
                    current_source: r.current_source.clone(),
                    report,
                    read_at: NOW,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let servers = l
            .row
            .iter()
            .map(|r| (r.host.clone(), r.server.clone()))
            .collect();
        let members = l
            .row
            .iter()
            .filter_map(|r| r.member.clone().map(|m| (r.host.clone(), m)))
            .collect();
        let replica = match &l.replica {
            Some(r) => {
                let a = SourceAddr::parse(&r.source, 3306)
                    .map_err(|e| bad(format!("link {} replica: {e}", l.remote)))?;
                let mut s = status(&channel, &a.host, a.port, &r.io, &r.sql, &r.io_state);
                s.last_io_error = r.io_error.clone();
                s.last_sql_error = r.sql_error.clone();
                Some(s)
            }
            None => None,
        };
        links.push(SimLink {
            link: Link {
                name: format!("{}-{}", sc.node.cluster, l.remote),
                remote: l.remote.clone(),
                key,
                channel,
                sources,
                user: "repl".into(),
                password: Secret::new("scenario-password"),
                tls: None,
                gtid_domains: None,
                behind: Vec::new(),
            },
            answering: l.answering.unwrap_or_else(|| l.sources.clone()),
            unhealthy: l.unhealthy,
            servers,
            members,
            gtid_domain: l.gtid_domain,
            race_lost_to: l.race_lost_to,
            sql_fails: l.sql_fails,
            rows,
            replica,
            failure: l.failure.map(|f| LinkFailure {
                host: f.host,
                kind: f.kind,
                age: Some(f.age),
                detail: f.detail,
            }),
        });
    }
    let facts = NodeFacts {
        name: sc.node.name,
        cluster: sc.node.cluster,
        cluster_status: sc.node.cluster_status,
        local_state: sc.node.state,
        local_state_comment: match sc.node.state {
            1 => "Joining",
            2 => "Donor/Desynced",
            3 => "Joined",
            4 => "Synced",
            _ => "Unknown",
        }
        .into(),
        local_index: sc.node.local_index,
        cluster_size: sc.node.cluster_size,
        flavor,
        gtid_domain_id: None,
        gtid_position: String::new(),
        weight: sc.node.weight,
        incoming_address: None,
    };
    let address = match &sc.node.address {
        Some(a) => Some(
            SourceAddr::parse(a, 3306)
                .map_err(|e| bad(format!("[node] address: {e}")))?
                .address(),
        ),
        None => None,
    };
    let me = Me {
        host: facts.name.clone(),
        local_index: facts.local_index,
        weight: facts.weight,
        address,
    };
    let mut mail = crate::config::Config::defaults().mail;
    mail.to = sc.mail.to.unwrap_or_else(|| vec!["dba@example.com".into()]);
    let settings = Settings {
        heartbeat_timeout: sc
            .timeouts
            .heartbeat
            .unwrap_or(crate::config::DEFAULT_HEARTBEAT_TIMEOUT),
        failed_timeout: sc
            .timeouts
            .failed
            .unwrap_or(crate::config::DEFAULT_FAILED_TIMEOUT),
        connect_timeout: Duration::from_secs(sc.timeouts.connect.unwrap_or(30)),
        distribute: sc.policy.distribute.unwrap_or(true),
        vars: sc
            .policy
            .vars
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| (k.as_str().into(), crate::policy::api::toml_to_dynamic(v)))
            .collect(),
        silent_after: 0,
    };
    let settings = Settings {
        silent_after: settings.heartbeat_timeout,
        ..settings
    };
    let node_name = facts.name.clone();
    let link_list: Vec<Link> = links.iter().map(|l| l.link.clone()).collect();
    let (sink, buffer) = SharedOut::new();
    let backend = SimBackend {
        facts,
        me,
        schema,
        links,
        mail,
        out: Box::new(sink),
    };
    let paused_since = sc.node.paused_for.map(|p| NOW - p);
    let ctx = RunCtx::new(
        Box::new(backend),
        link_list.clone(),
        settings,
        observations,
        paused_since,
    );
    let (ctx, results) = policy.run(ctx);
    let _ = out.write_all(&buffer.take());
    let mut errors = Vec::new();
    for (key, r) in results {
        if let Err(e) = r {
            let _ = writeln!(out, "{node_name}: ERROR link {key}: {e}");
            errors.push((key, e));
        }
    }
    let _ = writeln!(out, "--- final state");
    let mut backend = ctx.backend;
    for l in &link_list {
        let rows = backend.rows(l)?;
        let rows: BTreeMap<_, _> = rows.iter().map(|r| (r.host.clone(), r.role)).collect();
        let rows: Vec<String> = rows.iter().map(|(h, r)| format!("{h}={r}")).collect();
        let ch = match backend.replica(l)? {
            Some(r) => format!(
                "channel from {} IO={} SQL={}",
                r.source(),
                r.io_running,
                r.sql_running
            ),
            None => "no channel".into(),
        };
        let _ = writeln!(out, "{}: rows {}; {ch}", l.key, rows.join(" "));
    }
    Ok(SimResult { errors })
}

/// An output buffer the backend writes into and the caller drains, so the actions and the
/// final state come out in order on one stream.
#[derive(Clone, Default)]
struct SharedOut(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl SharedOut {
    fn new() -> (SharedOut, SharedOut) {
        let s = SharedOut::default();
        (s.clone(), s)
    }
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.borrow_mut())
    }
}

impl Write for SharedOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
