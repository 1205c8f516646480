//! `simulate`: runs a policy against a scenario file, with no server.
//!
//! A scenario describes what one node sees: its wsrep facts, its links with their state rows
//! (and the reports of their nodes, and what this node has seen of them), its replica
//! channels, which source candidates answer and are healthy, and what a peer's server would
//! say to a fence. The simulated backend keeps that in memory, renders every write with the
//! same renderer as dry-run (printing `<node>: <statement>` lines, in the scenario's server
//! dialect), decides a proposal with the same check, and applies it to the model. At the end
//! the final rows and channels are printed after `--- final state`.

use crate::config::topology::{self, Link};
use crate::config::{Config, LinkConfig, SourceAddr, TopologySource, line_col};
use crate::db::clock::{FenceMemo, Observations, Seen};
use crate::db::flavor::Flavor;
use crate::db::sql::Secret;
use crate::db::state::{
    ChannelState, FailureKind, Generation, LinkFailure, Me, NodeReport, Role, Schema, StateRow,
};
use crate::error::{Error, Result};
use crate::exec::server::{ClusterStatus, LocalState, NodeFacts};
use crate::exec::sim::{NOW, PeerServer, SimBackend, SimLink, channel_status};
use crate::host::RunCtx;
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
    /// `[hooks]` as a config writes it: simulate prints each hook a live run would run.
    hooks: Option<toml::Table>,
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
    /// Which state table the cluster has.
    #[serde(default)]
    generation: ScenarioGeneration,
    /// The pause file appeared this many seconds ago.
    paused_for: Option<i64>,
    /// Where peers reach this node's server (recorded in its reports).
    address: Option<String>,
    /// The run ends with the check of its peers' fence logins (one per run, in turn): each
    /// member's `server` says what the check finds (`refuses`, `down`, or a fence that works).
    #[serde(default)]
    check_fence_logins: bool,
    /// The cluster has `percona.replication_switchover` (`init` made it): claims read it.
    /// Default: when a link has a `switchover` section.
    switchover_table: Option<bool>,
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

/// The state table's generation in a scenario.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum ScenarioGeneration {
    /// The seed's single-link table: `cluster`, `isSlave`, the default channel.
    Seed,
    /// The multi-cluster table with `isReplica` and `currentSource`.
    #[default]
    Multi,
    /// The 2017 multi-cluster table with `isSlave` and no `currentSource`.
    MultiIsslave,
}

impl ScenarioGeneration {
    fn generation(self) -> Generation {
        match self {
            ScenarioGeneration::Seed => Generation::Seed,
            ScenarioGeneration::Multi => Generation::Multi {
                role_column: "isReplica",
                has_weight: true,
                has_current_source: true,
            },
            ScenarioGeneration::MultiIsslave => Generation::Multi {
                role_column: "isSlave",
                has_weight: true,
                has_current_source: false,
            },
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScenarioTimeouts {
    heartbeat: Option<i64>,
    failed: Option<i64>,
    connect: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScenarioPolicy {
    distribute: Option<bool>,
    vars: Option<toml::Table>,
    /// The site policy the scenario is run with when `simulate` is given none (a model
    /// checker's counterexample names the policy that produced it); relative to the
    /// scenario's directory.
    file: Option<std::path::PathBuf>,
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
    /// The link's switchover request (`switchover`).
    switchover: Option<ScenarioSwitchover>,
    #[serde(default)]
    row: Vec<ScenarioRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioSwitchover {
    from: String,
    to: String,
    phase: crate::db::switchover::Phase,
    /// Seconds since its phase was written.
    #[serde(default)]
    age: i64,
    position: Option<String>,
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFailure {
    host: String,
    kind: FailureKind,
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
    /// The replica's lag in seconds (`Seconds_Behind_Master`); absent is NULL.
    lag: Option<u64>,
    /// The executed GTID position its status reports (`Gtid_Slave_Pos`); absent is empty:
    /// nothing executed yet.
    #[serde(default)]
    position: String,
    /// `false`: its status has no executed GTID column at all, so where it stopped cannot be
    /// known.
    #[serde(default = "known")]
    position_known: bool,
}

fn known() -> bool {
    true
}

fn yes() -> String {
    "Yes".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioRow {
    host: String,
    state: Role,
    local_index: Option<i64>,
    #[serde(default)]
    weight: i64,
    heartbeat_age: Option<i64>,
    update_age: Option<i64>,
    current_source: Option<String>,
    /// The node's report in percona.replication_node; none for the original script.
    report: Option<ScenarioReport>,
    /// What the node's server says to a fence: `replicating` (its channel runs), `idle`,
    /// `refuses` (it answers, but the fence login is denied), or `down` (the default: no TCP
    /// connection).
    #[serde(default = "down")]
    server: PeerServer,
    /// Its address in the current view (mysql.wsrep_cluster_members), if it is a member.
    member: Option<String>,
}

fn down() -> PeerServer {
    PeerServer::Down
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioReport {
    #[serde(default = "one")]
    seq: u64,
    #[serde(default = "none")]
    channel: ChannelState,
    address: Option<String>,
    source: Option<String>,
    paused_for: Option<i64>,
    /// How long this node has seen the sequence stand still; not given: just seen for the
    /// first time.
    unchanged_for: Option<i64>,
    /// A fence this node tried on the peer at this sequence: `{ ago = 10, reached = true }`.
    fenced: Option<ScenarioFence>,
    /// The node's fence record: the peer that holds its takeover, and why.
    blocked: Option<String>,
    /// The node's fence record: the peers its check cannot fence.
    unfenceable: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFence {
    /// Seconds ago, on this node's clock.
    ago: i64,
    /// The peer answered (its channel was stopped, or was not running).
    reached: bool,
}

fn one() -> u64 {
    1
}
fn none() -> ChannelState {
    ChannelState::None
}

/// What a simulation ended with.
pub struct SimResult {
    /// Policy errors by link.
    pub errors: Vec<(crate::db::state::LinkKey, String)>,
}

/// Reads a scenario file; errors name the file, the line and the key.
fn load(path: &Path) -> Result<Scenario> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Scenario(format!("{}: cannot read: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        let (l, c) = e.span().map_or((0, 0), |s| line_col(&text, s.start));
        Error::Scenario(format!(
            "{}:{l}:{c}: {}",
            path.display(),
            e.message().trim()
        ))
    })
}

impl Scenario {
    /// The configuration the scenario describes: its timeouts, policy settings, mail
    /// recipients and links, on top of `base` (`simulate --config`: the whole file, as a live
    /// run reads it: `[policy]` with its vars and limits, `[timeouts]`, `[mail]`) or of the
    /// defaults. The links are always the scenario's.
    fn config(&self, base: Option<&Config>) -> std::result::Result<Config, String> {
        let mut cfg = base.cloned().unwrap_or_else(|| {
            let mut c = Config::defaults();
            c.mail.to = vec!["dba@example.com".into()];
            c
        });
        cfg.links.clear();
        let t = &self.timeouts;
        cfg.timeouts.heartbeat = t.heartbeat.unwrap_or(cfg.timeouts.heartbeat);
        cfg.timeouts.failed = t.failed.unwrap_or(cfg.timeouts.failed);
        if let Some(c) = t.connect {
            cfg.timeouts.connect = Duration::from_secs(c);
        }
        if let Some(d) = self.policy.distribute {
            cfg.policy.distribute = d;
        }
        if let Some(v) = &self.policy.vars {
            cfg.policy.vars = v.clone();
        }
        if let Some(to) = &self.mail.to {
            cfg.mail.to = to.clone();
        }
        if let Some(h) = &self.hooks {
            let mut t = toml::Table::new();
            t.insert("hooks".into(), toml::Value::Table(h.clone()));
            let text = toml::to_string(&t).map_err(|e| format!("[hooks]: {e}"))?;
            cfg.hooks = Config::parse(&text, Path::new("[hooks] of the scenario"))
                .map_err(|e| e.to_string())?
                .hooks;
        }
        cfg.topology = TopologySource::Config;
        for l in &self.link {
            let sources = l
                .sources
                .iter()
                .map(|s| SourceAddr::parse(s, 3306))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| format!("link {}: {e}", l.remote))?;
            cfg.links.push(LinkConfig {
                remote: l.remote.clone(),
                sources,
                user: "repl".into(),
                password: Secret::new("scenario-password"),
                gtid_domains: None,
                tls: None,
                line: None,
            });
        }
        Ok(cfg)
    }

    /// The node's facts and identity.
    fn node(&self, flavor: Flavor) -> std::result::Result<(NodeFacts, Me), String> {
        let n = &self.node;
        let facts = NodeFacts {
            name: n.name.clone(),
            cluster: n.cluster.clone(),
            cluster_status: ClusterStatus::parse(&n.cluster_status),
            local_state: LocalState::from_code(n.state),
            local_state_comment: match LocalState::from_code(n.state) {
                LocalState::Donor => "Donor/Desynced",
                other => other.name(),
            }
            .into(),
            local_index: n.local_index,
            cluster_size: n.cluster_size,
            flavor,
            gtid_domain_id: None,
            gtid_position: String::new(),
            weight: n.weight,
            incoming_address: None,
        };
        let address = match &n.address {
            Some(a) => Some(
                SourceAddr::parse(a, 3306)
                    .map_err(|e| format!("[node] address: {e}"))?
                    .address(),
            ),
            None => None,
        };
        let me = facts.me(address);
        Ok((facts, me))
    }
}

impl ScenarioLink {
    /// The link's rows, and what this node has seen of their reports.
    fn rows(&self, key: &str, seen: &mut Observations) -> Vec<StateRow> {
        self.row
            .iter()
            .map(|r| {
                let report = r.report.as_ref().map(|p| {
                    if let Some(f) = &p.fenced {
                        seen.note_fenced(
                            key,
                            &r.host,
                            FenceMemo {
                                seq: p.seq,
                                at: NOW - f.ago,
                                reached: f.reached,
                            },
                        );
                    }
                    if let Some(u) = p.unchanged_for {
                        let since = NOW - u;
                        seen.remember(
                            key,
                            &r.host,
                            Seen {
                                seq: p.seq,
                                since,
                                checked: since,
                            },
                        );
                    }
                    NodeReport {
                        seq: p.seq,
                        address: p.address.clone(),
                        channel: p.channel,
                        source: p.source.clone(),
                        paused_for: p.paused_for,
                        fences: 0,
                        blocked: p.blocked.clone(),
                        blocked_for: None,
                        position: None,
                        unfenceable: p.unfenceable.clone(),
                    }
                });
                StateRow {
                    host: r.host.clone(),
                    local_index: r.local_index,
                    weight: r.weight,
                    role: r.state,
                    heartbeat_age: r.heartbeat_age,
                    update_age: r.update_age.or(r.heartbeat_age),
                    current_source: r.current_source.clone(),
                    report,
                    read_at: NOW,
                    in_view: None,
                }
            })
            .collect()
    }

    /// The link in the simulated backend's model.
    fn model(self, link: Link, seen: &mut Observations) -> std::result::Result<SimLink, String> {
        let rows = self.rows(&link.key, seen);
        let replica = match &self.replica {
            Some(r) => {
                let a = SourceAddr::parse(&r.source, 3306)
                    .map_err(|e| format!("link {} replica: {e}", self.remote))?;
                let mut s =
                    channel_status(&link.channel, &a.host, a.port, &r.io, &r.sql, &r.io_state);
                s.last_io_error = r.io_error.clone();
                s.last_sql_error = r.sql_error.clone();
                s.lag_seconds = r.lag;
                s.gtid = if r.position_known {
                    vec![("Gtid_Slave_Pos".into(), r.position.clone())]
                } else {
                    Vec::new()
                };
                Some(s)
            }
            None => None,
        };
        Ok(SimLink {
            answering: self.answering.unwrap_or_else(|| self.sources.clone()),
            unhealthy: self.unhealthy,
            servers: self
                .row
                .iter()
                .map(|r| (r.host.clone(), r.server))
                .collect(),
            members: self
                .row
                .iter()
                .filter_map(|r| r.member.clone().map(|m| (r.host.clone(), m)))
                .collect(),
            membership: self.row.iter().any(|r| r.member.is_some()),
            gtid_domain: self.gtid_domain,
            race_lost_to: self.race_lost_to,
            sql_fails: self.sql_fails,
            rows,
            replica,
            failure: self.failure.map(|f| LinkFailure {
                host: f.host,
                kind: f.kind,
                age: Some(f.age),
                detail: f.detail,
            }),
            switchover: self.switchover.map(|x| crate::db::switchover::Request {
                from: x.from,
                to: x.to,
                phase: x.phase,
                position: x.position,
                source: x.source,
                detail: None,
                requested_by: "an operator".into(),
                age_ms: x.age.saturating_mul(1000),
            }),
            link: std::rc::Rc::new(link),
        })
    }
}

/// The run context of a scenario, on a simulated backend whose printed output goes to the
/// buffer returned with it.
fn context(
    mut sc: Scenario,
    config: Option<&Config>,
    bad: impl Fn(String) -> Error + Copy,
) -> Result<(RunCtx, Vec<Link>, SharedOut)> {
    let flavor =
        Flavor::detect(&sc.node.version, "").map_err(|e| bad(format!("[node] version: {e}")))?;
    let switchover = sc
        .node
        .switchover_table
        .unwrap_or_else(|| sc.link.iter().any(|l| l.switchover.is_some()));
    let schema = Schema::simulated(sc.node.generation.generation(), true, switchover);
    let cfg = sc.config(config).map_err(bad)?;
    let links =
        topology::resolve(&cfg, &sc.node.cluster, &schema, None).map_err(|e| bad(e.to_string()))?;
    let (facts, me) = sc.node(flavor).map_err(bad)?;
    let mut seen = Observations::in_memory();
    let mut model = Vec::new();
    for (l, link) in std::mem::take(&mut sc.link)
        .into_iter()
        .zip(links.iter().cloned())
    {
        model.push(l.model(link, &mut seen).map_err(bad)?);
    }
    let (sink, buffer) = SharedOut::new();
    let backend = SimBackend {
        facts,
        me,
        schema,
        links: model,
        mail: std::rc::Rc::new(cfg.mail.clone()),
        out: Box::new(sink),
        check_fence_logins: sc.node.check_fence_logins,
    };
    let paused_since = sc.node.paused_for.map(|p| NOW - p);
    let ctx = super::run_ctx(&cfg, Box::new(backend), links.clone(), seen, paused_since);
    Ok((ctx, links, buffer))
}

/// A node alone with one link: enough of a run for [`host_function_names`].
const ONE_LINK: &str = "[node]\nname = \"DC1-1\"\ncluster = \"DC1\"\nlocal_index = 0\n\n[[link]]\nremote = \"DC2\"\nsources = [\"10.0.2.1\"]\n";

/// The names of every function a policy can call: the host's API and the engine's own, read
/// off the engine of a run (on a simulated node), so that `policy check` never disagrees
/// with what a run finds.
pub fn host_function_names() -> Result<std::collections::HashSet<String>> {
    let bad = |msg: String| Error::Scenario(format!("the built-in check scenario: {msg}"));
    let sc: Scenario = toml::from_str(ONE_LINK).map_err(|e| bad(e.to_string()))?;
    let (ctx, _, _) = context(sc, None, bad)?;
    Ok(crate::policy::function_names(ctx))
}

/// A run's context over a simulated node, from a scenario's text: what the host's own unit
/// tests act on.
#[cfg(test)]
pub(crate) fn test_context(text: &str) -> crate::host::RunCtx {
    let bad = |msg: String| Error::Scenario(format!("a test scenario: {msg}"));
    let sc: Scenario = toml::from_str(text).expect("a test scenario parses");
    context(sc, None, bad).expect("a test scenario builds").0
}

/// The site policy a scenario names (`[policy] file`, relative to the scenario's directory),
/// for `simulate` without `--policy`.
pub fn named_policy(scenario_path: &Path) -> Result<Option<std::path::PathBuf>> {
    let sc = load(scenario_path)?;
    Ok(sc.policy.file.map(|f| {
        scenario_path
            .parent()
            .map_or_else(|| f.clone(), |dir| dir.join(&f))
    }))
}

/// Loads a scenario and runs the policy on it, printing the actions and the final state.
pub fn simulate(
    scenario_path: &Path,
    policy: &Policy,
    config: Option<&Config>,
    mut out: Box<dyn Write>,
) -> Result<SimResult> {
    let bad = |msg: String| Error::Scenario(format!("{}: {msg}", scenario_path.display()));
    let sc = load(scenario_path)?;
    let node_name = sc.node.name.clone();
    let (ctx, links, buffer) = context(sc, config, bad)?;
    let (ctx, results) = policy.run(ctx);
    let _ = out.write_all(&buffer.take());
    let mut errors = Vec::new();
    for (key, r) in results {
        if let Err(e) = r {
            let _ = writeln!(
                out,
                "{node_name}: ERROR link {key}: {}",
                crate::error::printable(&e.to_string())
            );
            errors.push((key, e.to_string()));
        }
    }
    let _ = writeln!(out, "--- final state");
    let mut backend = ctx.backend;
    for l in &links {
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
pub struct SharedOut(pub std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl SharedOut {
    pub fn new() -> (SharedOut, SharedOut) {
        let s = SharedOut::default();
        (s.clone(), s)
    }
    pub fn take(&self) -> Vec<u8> {
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
