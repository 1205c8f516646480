//! The surfaces: the entry points a command, the coming daemon or a test calls again and
//! again ([`run_once`], [`status_report`], [`init`], [`scenario::simulate`]), the one place that
//! assembles a run ([`open_local`], [`settings`]), and what only the command line needs: the
//! arguments ([`cli`]), the preflight `check` ([`preflight`]), the pause file and the run lock ([`guard`]), the `status` report
//! ([`status`]) and its Prometheus form ([`prometheus`]), the daemon's `/metrics` server
//! ([`metrics_http`]), scenario files ([`scenario`]), completions and man pages ([`generate`]), and
//! the daemon's messages to systemd ([`notify`]), and the operator's commands `clear-failure`
//! ([`clear`]), `explain` ([`explain`]) and `history` ([`history`]).

pub mod clear;
pub mod cli;
pub mod commands;
pub mod daemon;
pub mod explain;
pub mod generate;
pub mod guard;
pub mod history;
pub mod metrics_http;
pub mod notify;
pub mod pause;
pub mod preflight;
pub mod prometheus;
pub mod scenario;
pub mod status;
pub mod status_json;
pub mod switchover;
pub mod trusted;

use crate::config::Config;
use crate::config::topology::{self, Link};
use crate::db::clock::Observations;
use crate::db::state::{ChannelState, LinkKey};
use crate::db::state::{Generation, Me, Schema};
use crate::error::{self, Error, Result};
use crate::exec::server::{Login, NodeFacts};
use crate::exec::{Action, Backend, Kept, LiveBackend, LocalServer, Mode};
use crate::host::{RunCtx, Settings};
use crate::policy::{self, Policy};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Read, print every write, change nothing.
    pub dry_run: bool,
    /// `--defaults-file`: the MySQL option file to log in with.
    pub defaults_file: Option<PathBuf>,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub node: String,
    /// What changed, in order.
    pub events: Vec<String>,
    /// Links whose policy call or rules failed, with the error.
    pub link_errors: Vec<(LinkKey, String)>,
    pub mail_failures: usize,
    /// When the pause file appeared, if it exists: the run only reported.
    pub paused_since: Option<i64>,
    /// Why the node's memory of its peers (`[files] state`) could not be kept.
    pub state_error: Option<crate::error::StateFileError>,
    /// The links managed, by key, with their channel.
    pub links: Vec<(LinkKey, crate::db::sql::Channel)>,
    /// The links whose report this run wrote, with the channel state it reported.
    pub reported: HashMap<LinkKey, ChannelState>,
    /// When the run wrote each of those reports.
    pub reported_at: HashMap<LinkKey, std::time::Instant>,
    /// The names in the Primary view as the run read it at its start (`None` where the node
    /// could not act or its flavour lists no members).
    pub view: Option<BTreeSet<String>>,
}

impl RunSummary {
    /// Adds what a second run in the same invocation did.
    fn then(mut self, next: RunSummary) -> RunSummary {
        self.events.extend(next.events);
        self.link_errors = next.link_errors;
        self.mail_failures += next.mail_failures;
        self.paused_since = next.paused_since;
        self.state_error = next.state_error.or(self.state_error);
        self.links = next.links;
        self.reported.extend(next.reported);
        self.reported_at.extend(next.reported_at);
        self.view = next.view;
        self
    }
}

/// What one run hands to the next: a daemon's kept connections and memory of its peers. A
/// cron run starts from an empty session.
#[derive(Default)]
pub struct Session {
    pub kept: Kept,
    /// The memory of peers between a daemon's runs (also saved to `[files] state` after
    /// each, so a restarted daemon or a cron run goes on from it).
    pub observations: Option<Observations>,
    /// Keep the probes' connections to the sources between runs (a daemon).
    pub keep_connections: bool,
    /// When the schema kept in `kept` was read from the server: a daemon reads it again after
    /// [`Session::SCHEMA_FOR`] (a table created by hand or by `init` elsewhere is seen then;
    /// the tables a run creates itself are in the kept schema at once).
    pub schema_read: Option<std::time::Instant>,
}

impl Session {
    pub const SCHEMA_FOR: std::time::Duration = std::time::Duration::from_secs(60);
}

impl RunSummary {
    /// The exit code: 0, or 1 when a link, a mail or the state file failed.
    pub fn exit_code(&self) -> i32 {
        if !self.link_errors.is_empty() || self.mail_failures > 0 || self.state_error.is_some() {
            error::exit::PARTIAL
        } else {
            error::exit::OK
        }
    }
}

/// The run-wide settings handed to the policy; `silent_after` starts at the configured
/// heartbeat timeout and is raised by the policy's `silent_after` at the start of a run.
pub fn settings(cfg: &Config) -> Settings {
    Settings {
        heartbeat_timeout: cfg.timeouts.heartbeat,
        failed_timeout: cfg.timeouts.failed,
        connect_timeout: cfg.timeouts.connect,
        distribute: cfg.policy.distribute,
        vars: cfg
            .policy
            .vars
            .iter()
            .map(|(k, v)| (k.as_str().into(), policy::api::toml_to_dynamic(v)))
            .collect(),
        silent_after: cfg.timeouts.heartbeat,
        probe_timeout: cfg.timeouts.probe,
        limits: cfg.policy.limits.clone(),
        hooks: cfg.hooks.clone(),
    }
}

/// The one place that assembles a run: its settings from the config, and its state over a
/// backend. `run`, `simulate` and the coming daemon all call it.
pub fn run_ctx(
    cfg: &Config,
    backend: Box<dyn Backend>,
    links: Vec<Link>,
    observations: Observations,
    paused_since: Option<i64>,
) -> RunCtx {
    RunCtx::new(backend, links, settings(cfg), observations, paused_since)
}

/// The "silent" threshold a run uses: the larger of the configured heartbeat timeout and the
/// policy's `silent_after`.
pub fn threshold(cfg: &Config, policy: &Policy) -> i64 {
    crate::host::silent_threshold(cfg.timeouts.heartbeat, policy.silent_after(&settings(cfg))).0
}

/// The links `name` picks: every link when `None`, else the one whose remote cluster, name or
/// key it is. An error naming the links there are when none matches.
pub fn pick_links(links: &[Link], name: Option<&str>, node: &str) -> Result<Vec<Link>> {
    let picked: Vec<Link> = links
        .iter()
        .filter(|l| name.is_none_or(|n| l.remote == n || l.name == n || l.key == n))
        .cloned()
        .collect();
    if picked.is_empty() {
        let known: Vec<&str> = links.iter().map(|l| l.remote.as_str()).collect();
        return Err(Error::Links(format!(
            "no link {:?} on {node}: its links replicate {}",
            name.unwrap_or_default(),
            known.join(", ")
        )));
    }
    Ok(picked)
}

/// The local node, read and resolved: connection, facts, schema and links.
pub struct LocalNode {
    pub server: LocalServer,
    pub login: Login,
    pub facts: NodeFacts,
    /// This node as its rows and reports record it.
    pub me: Me,
    /// `None` when the state table could not be read (a node outside the Primary component).
    pub schema: Option<Schema>,
    pub links: Vec<Link>,
    /// The current view's members, when the server lists them (see `db::clock::mark_view`).
    pub members: Option<Vec<crate::db::clock::Member>>,
    /// The cluster's pause row, if there is one (it may have ended: see `is_active`).
    pub cluster_pause: Option<crate::db::pause::ClusterPause>,
}

impl LocalNode {
    /// The state table's schema, for a command that writes the table: an error naming the
    /// node when it could not be read.
    pub fn state_table(&self) -> Result<Schema> {
        self.schema.clone().ok_or_else(|| Error::StateTableUnread {
            node: self.facts.name.clone(),
        })
    }

    /// An operator's command that changes the cluster runs only on a node of the Primary
    /// component (Synced or Donor); `what` is the command's advice.
    pub fn must_act(&self, what: &'static str) -> Result<()> {
        if self.facts.can_act() {
            return Ok(());
        }
        Err(Error::NotPrimary {
            node: self.facts.name.clone(),
            state: format!(
                "{}/{}",
                self.facts.cluster_status, self.facts.local_state_comment
            ),
            what,
        })
    }

    /// The executor over this node's connection, with its facts, schema and view: what every
    /// command that reads or writes through the executor starts from.
    pub fn into_backend(self, cfg: &Config, mode: Mode, out: Box<dyn Write>) -> LiveBackend {
        LiveBackend::new(
            self.server,
            self.login,
            self.facts,
            self.me,
            self.schema,
            cfg,
            mode,
            out,
        )
        .with_members(self.members)
    }
}

/// Connects to the local server and reads what every command needs.
pub fn open_local(cfg: &Config, defaults_file: Option<&std::path::Path>) -> Result<LocalNode> {
    open_local_kept(cfg, defaults_file, None, None, false)
}

/// As [`open_local`], on a connection kept from an earlier run while it still answers, and
/// with the schema an earlier run read (when the node can act; see [`Session`]). With
/// `for_run`, the links' first reads of a run are read ahead too
/// ([`LiveBackend::first_reads`]).
///
/// The reads are sent a few at a time ([`LocalServer::read_ahead`]): what every run reads
/// first, then (on a node that can act) the causal reads of the pause, the weight, the
/// topology tables and the links. Each is still made where it was; it only finds its answer
/// waiting.
pub fn open_local_kept(
    cfg: &Config,
    defaults_file: Option<&std::path::Path>,
    kept: Option<(Login, LocalServer)>,
    known_schema: Option<Schema>,
    for_run: bool,
) -> Result<LocalNode> {
    let (login, mut server) = connect_kept(cfg, defaults_file, kept)?;
    let mut first = vec![
        crate::exec::STATUS_QUERY.to_string(),
        crate::exec::server::variables_query(&crate::exec::server::variable_names(
            crate::exec::server::MARIADB_VARIABLES,
        )),
    ];
    if known_schema.is_none() {
        first.push(Schema::columns_query());
    }
    first.push(crate::exec::MEMBERS_QUERY.to_string());
    server.read_ahead(false, &first);
    let mut facts = server.facts(&cfg.local)?;
    if !facts.can_act() {
        server.read_mode(false)?;
    }
    // The schema (changed only by DDL, which Galera applies everywhere before it returns) and
    // the view (this node's own) need no causal read: they are read before it is enabled.
    let schema = match known_schema.filter(|_| facts.can_act()) {
        Some(s) => Some(s),
        None => read_schema(&mut server, &facts)?,
    };
    // The current view, read once here for this node's address and for the run.
    let members = if facts.is_primary() && facts.flavor.lists_members() {
        server.members()?
    } else {
        None
    };
    if facts.can_act() {
        let reads = causal_reads(cfg, &facts, schema.as_ref(), for_run);
        server.read_ahead(true, &reads);
        server.read_mode(true)?;
    }
    // The cluster's pause, read causally: a `pause` committed on any node is seen.
    let cluster_pause = match &schema {
        Some(s) if s.has_pause_table && facts.can_act() => server.cluster_pause(&facts.cluster)?,
        _ => None,
    };
    let has_topology = schema.as_ref().is_some_and(|s| s.has_topology_tables);
    if cfg.local.weight.is_none()
        && has_topology
        && let Some(w) = server.weight(&facts.cluster, &facts.name)?
    {
        facts.weight = w;
    }
    let links = resolve_links(cfg, &mut server, &facts, schema.as_ref(), has_topology)?;
    let me = facts.me(own_address(cfg, &facts, members.as_deref()));
    Ok(LocalNode {
        server,
        login,
        facts,
        me,
        schema,
        links,
        members,
        cluster_pause,
    })
}

/// What a node that can act reads causally first, in the order it reads it: the cluster's
/// pause, its weight, the topology tables, and (`for_run`, with the links in the config) the
/// links' first reads.
fn causal_reads(
    cfg: &Config,
    facts: &NodeFacts,
    schema: Option<&Schema>,
    for_run: bool,
) -> Vec<String> {
    let Some(schema) = schema else {
        return Vec::new();
    };
    let mut reads = Vec::new();
    if schema.has_pause_table {
        reads.push(crate::db::pause::select(&facts.cluster));
    }
    if cfg.local.weight.is_none() && schema.has_topology_tables {
        reads.push(topology::weight_query(&facts.cluster, &facts.name));
    }
    if topology::wants_tables(cfg) {
        if schema.has_topology_tables {
            reads.push(topology::TableTopology::links_query());
            reads.push(topology::TableTopology::clusters_query());
        }
    } else if for_run && let Ok(links) = topology::resolve(cfg, &facts.cluster, schema, None) {
        let keys: Vec<LinkKey> = links.into_iter().map(|l| l.key).collect();
        reads.extend(LiveBackend::first_reads(schema, &facts.flavor, &keys));
    }
    reads
}

/// The connection kept from an earlier run while it still answers, else a new login and
/// connection; a kept one forgets what it read ahead for the run before.
fn connect_kept(
    cfg: &Config,
    defaults_file: Option<&std::path::Path>,
    kept: Option<(Login, LocalServer)>,
) -> Result<(Login, LocalServer)> {
    let kept = kept.and_then(|(login, mut server)| {
        server.forget_ahead();
        server.alive().then_some((login, server))
    });
    match kept {
        Some(k) => Ok(k),
        None => {
            let login = Login::resolve(&cfg.local, defaults_file)?;
            let server = LocalServer::connect(&login)?;
            Ok((login, server))
        }
    }
}

/// The links to manage, from the config or the topology tables: an error when the config
/// wants the tables and the cluster has none.
fn resolve_links(
    cfg: &Config,
    server: &mut LocalServer,
    facts: &NodeFacts,
    schema: Option<&Schema>,
    has_topology: bool,
) -> Result<Vec<Link>> {
    let tables = if topology::wants_tables(cfg) {
        if !has_topology {
            return Err(Error::Links(format!(
                "no link to manage: {} has no [[link]] section and this cluster has no percona.link table; add [[link]] sections (see examples/) or fill percona.cluster and percona.link",
                cfg.source_name()
            )));
        }
        Some(server.table_topology()?)
    } else {
        None
    };
    let assumed = match schema {
        Some(s) => s.clone(),
        None => assumed_schema(cfg, server, facts)?,
    };
    let links = topology::resolve(cfg, &facts.cluster, &assumed, tables.as_ref())?;
    if links.is_empty() {
        log::warn!(
            "{}: no link to manage for cluster {} (percona.link has no row with clusterSlave = {:?})",
            facts.name,
            facts.cluster,
            facts.cluster
        );
    }
    Ok(links)
}

/// Where peers reach this server to fence it: the config, else this node's entry in the
/// current view, else wsrep_node_incoming_address.
fn own_address(
    cfg: &Config,
    facts: &NodeFacts,
    members: Option<&[crate::db::clock::Member]>,
) -> Option<String> {
    let own = members
        .iter()
        .copied()
        .flatten()
        .find(|(name, _)| *name == facts.name)
        .and_then(|(_, a)| a.clone());
    match &cfg.local.address {
        Some(a) => Some(a.clone()),
        None => own.or_else(|| facts.incoming_address.clone()),
    }
}

/// The state table's generation; `None` on a node outside the Primary component that cannot
/// read it.
fn read_schema(server: &mut LocalServer, facts: &NodeFacts) -> Result<Option<Schema>> {
    match server.schema() {
        Ok(s) => Ok(Some(s)),
        Err(e) if !facts.can_act() && !matches!(e, Error::StateTableMissing) => {
            log::warn!(
                "{}: cannot read the state table while {}/{}: {e}",
                facts.name,
                facts.cluster_status,
                facts.local_state_comment
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Outside the Primary component the schema may be unreadable; the links are then taken as the
/// multi-cluster generation's named channels, unless the node's default channel reads from one
/// of the only link's sources (the seed generation).
fn assumed_schema(cfg: &Config, server: &mut LocalServer, facts: &NodeFacts) -> Result<Schema> {
    let seed_like = cfg.links.len() == 1
        && server.replica_statuses(&facts.flavor)?.iter().any(|r| {
            r.channel.is_empty() && cfg.links[0].sources.iter().any(|s| s.host == r.source_host)
        });
    Ok(Schema {
        generation: if seed_like {
            Generation::Seed
        } else {
            Generation::Multi {
                role_column: "isReplica",
                has_weight: false,
                has_current_source: false,
            }
        },
        has_claim_table: false,
        claim_records_failures: false,
        has_topology_tables: false,
        has_node_table: false,
        has_pause_table: false,
        has_fence_table: false,
        has_history_table: false,
        has_position_table: false,
        has_switchover_table: false,
    })
}

/// One pass over every link: what cron runs every minute.
///
/// A run that reads the view while a node is leaving works from the old view: Galera holds
/// its causal reads and its commit until the dead node is evicted, so the run ends after the
/// view changed without having acted on it, and the takeover would wait for the next cron
/// tick. When such a run (one that took [`STALLED_RUN`] or more) ends on another view than
/// the one it read, it goes once more at once (still holding the run lock), on what the
/// cluster is now. A quick run, the usual one, pays nothing for this.
pub fn run_once(
    cfg: &Config,
    policy: &Policy,
    opts: &RunOptions,
    out: Box<dyn Write>,
) -> Result<RunSummary> {
    let mut session = Session::default();
    let _lock = if opts.dry_run {
        None
    } else {
        Some(guard::lock(&cfg.files.lock, cfg.files.insecure)?)
    };
    let out = SharedOut(Rc::new(RefCell::new(out)));
    let started = std::time::Instant::now();
    let first = match run_in(cfg, policy, opts, Box::new(out.clone()), &mut session) {
        Ok(s) => s,
        Err(e) => {
            if !opts.dry_run {
                record_failed_run(cfg, &mut session, started.elapsed());
            }
            return Err(e);
        }
    };
    if opts.dry_run || started.elapsed() < STALLED_RUN {
        return Ok(first);
    }
    let Some(before) = &first.view else {
        return Ok(first);
    };
    let now = match session.kept.local.as_mut().map(|(_, s)| s.members()) {
        Some(Ok(Some(m))) => m.into_iter().map(|(n, _)| n).collect::<BTreeSet<_>>(),
        _ => return Ok(first),
    };
    if now == *before {
        return Ok(first);
    }
    let left: Vec<&String> = before.difference(&now).collect();
    let joined: Vec<&String> = now.difference(before).collect();
    log::info!(
        "{}: the cluster's view changed during this run (left: {left:?}, joined: {joined:?}): running once more on the new view",
        first.node
    );
    let again = std::time::Instant::now();
    let second = match run_in(cfg, policy, opts, Box::new(out), &mut session) {
        Ok(s) => s,
        Err(e) => {
            record_failed_run(cfg, &mut session, again.elapsed());
            return Err(e);
        }
    };
    Ok(first.then(second))
}

/// The Unix time now, by this host's clock.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Counts a run that ended with an error before it could save the node's memory (the local
/// server did not answer, the state table is missing...): in the session's memory, else in
/// the state file if it can be read (an unreadable one is left for the next run to replace).
/// Not for a dry run, which writes nothing.
pub fn record_failed_run(cfg: &Config, session: &mut Session, took: std::time::Duration) {
    let saved = match session.observations.as_mut() {
        Some(o) => {
            o.counters_mut().run_finished(took, false, unix_now());
            o.save()
        }
        None => match Observations::load(&cfg.files.state) {
            Ok(mut o) => {
                o.counters_mut().run_finished(took, false, unix_now());
                o.save()
            }
            Err(_) => Ok(()),
        },
    };
    if let Err(e) = saved {
        log::warn!("could not count the failed run in [files] state: {e}");
    }
}

/// How long a cron run takes at least when Galera held it (a healthy run takes about 20 ms; a
/// commit stall lasts until the dead node is evicted, seconds).
pub const STALLED_RUN: std::time::Duration = std::time::Duration::from_millis(100);

/// One writer for the runs of one invocation.
#[derive(Clone)]
struct SharedOut(Rc<RefCell<Box<dyn Write>>>);

impl Write for SharedOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// The local node for a run, on the session's connection and schema while they serve.
/// `None` for a paused node whose server is down: nothing to report, and no alarm.
fn open_for_run(
    cfg: &Config,
    opts: &RunOptions,
    session: &mut Session,
    paused: bool,
) -> Result<Option<LocalNode>> {
    let kept = session.kept.local.take();
    let known_schema = session.kept.schema.take().filter(|_| {
        session
            .schema_read
            .is_some_and(|t| t.elapsed() < Session::SCHEMA_FOR)
    });
    if known_schema.is_none() {
        session.schema_read = Some(std::time::Instant::now());
    }
    match open_local_kept(cfg, opts.defaults_file.as_deref(), kept, known_schema, true) {
        Ok(n) => Ok(Some(n)),
        Err(e @ Error::Connect { .. }) if paused => {
            log::info!("paused, and the local server does not answer ({e}): nothing to report");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The run's mode and the node's memory of its peers: the session's (a daemon), else the
/// state file, read only by a dry run; and why the file could not be read, if it could not.
fn memory_for(
    cfg: &Config,
    opts: &RunOptions,
    session: &mut Session,
) -> (Mode, Observations, Option<crate::error::StateFileError>) {
    if opts.dry_run {
        (Mode::DryRun, Observations::peek(&cfg.files.state), None)
    } else if let Some(o) = session.observations.take() {
        (Mode::Live, o, None)
    } else {
        let (o, e) = Observations::open(&cfg.files.state);
        (Mode::Live, o, e)
    }
}

/// One pass over every link, in a session: what a daemon runs every interval, on the
/// connections and the memory the session kept from the run before. The caller holds the run
/// lock ([`guard::lock`]) unless it is a dry run: [`run_once`] for its runs, the daemon for
/// its life.
pub fn run_in(
    cfg: &Config,
    policy: &Policy,
    opts: &RunOptions,
    mut out: Box<dyn Write>,
    session: &mut Session,
) -> Result<RunSummary> {
    let started = std::time::Instant::now();
    let paused_since = guard::paused_since(&cfg.files.pause);
    if paused_since.is_some() {
        say_paused(cfg, opts, &mut out);
    }
    let Some(mut node) = open_for_run(cfg, opts, session, paused_since.is_some())? else {
        return Ok(RunSummary {
            paused_since,
            ..RunSummary::default()
        });
    };
    let name = node.facts.name.clone();
    // The cluster's pause holds like the pause file; the file's time wins when both exist.
    let cluster_pause = node.cluster_pause.clone().filter(|p| p.is_active());
    let paused_since = match (&cluster_pause, paused_since) {
        (Some(p), None) => {
            say_cluster_paused(p, opts, &mut out);
            Some(p.since)
        }
        (_, file) => file,
    };
    log::debug!(
        "{name}: {} {} {}/{} index {} weight {}, {} link(s), policy {}",
        node.facts.flavor.label(),
        node.facts.cluster,
        node.facts.cluster_status,
        node.facts.local_state_comment,
        node.facts.local_index,
        node.facts.weight,
        node.links.len(),
        policy.name
    );
    let (mode, observations, mut state_error) = memory_for(cfg, opts, session);
    let view = node
        .members
        .as_ref()
        .map(|m| m.iter().map(|(n, _)| n.clone()).collect());
    let links = std::mem::take(&mut node.links);
    let keys = links.iter().map(|l| l.key.clone()).collect();
    let backend = node.into_backend(cfg, mode, out).with_links(keys);
    let backend = if session.keep_connections {
        backend.with_sources(&mut session.kept)
    } else {
        backend
    };
    let mut ctx = run_ctx(cfg, Box::new(backend), links, observations, paused_since);
    ctx.pause.cluster = cluster_pause;
    // A daemon checks every peer's fence login each heartbeat timeout; cron one per run.
    ctx.fencing.checks_every = session.keep_connections.then_some(cfg.timeouts.heartbeat);
    let (mut ctx, results) = policy.run(ctx);
    // After every change and report of the run: a mail server that is slow or down costs the
    // run at most `[mail] timeout` here, and changes nothing it did.
    ctx.backend.send_mail();
    // Successful: what the exit code 0 means (RunSummary::exit_code), the save excepted,
    // which cannot be counted in the file it failed to write.
    let ok = results.iter().all(|(_, r)| r.is_ok())
        && ctx.backend.mail_failures() == 0
        && state_error.is_none();
    ctx.observations
        .counters_mut()
        .run_finished(started.elapsed(), ok, unix_now());
    if let Err(e) = ctx.observations.save() {
        state_error = Some(e);
    }
    let mut summary = summarize(name, &mut ctx, results, paused_since, state_error);
    summary.view = view;
    if !opts.dry_run {
        session.observations = Some(std::mem::take(&mut ctx.observations));
    }
    session.kept = ctx.backend.into_kept();
    Ok(summary)
}

/// Says that the pause file exists, and what a paused run does.
fn say_paused(cfg: &Config, opts: &RunOptions, out: &mut Box<dyn Write>) {
    if opts.dry_run {
        let _ = writeln!(
            out,
            "# pause file {} exists: a live run reports (heartbeats while its channel runs) and changes nothing else",
            cfg.files.pause.display()
        );
    } else {
        log::info!(
            "pause file {} exists: reporting only, changing nothing (remove it to resume)",
            cfg.files.pause.display()
        );
    }
}

/// Says that the cluster is paused, by whom, and what a paused run does.
fn say_cluster_paused(
    p: &crate::db::pause::ClusterPause,
    opts: &RunOptions,
    out: &mut Box<dyn Write>,
) {
    if opts.dry_run {
        let _ = writeln!(
            out,
            "# {}: a live run reports (heartbeats while its channel runs) and changes nothing else",
            p.describe()
        );
    } else {
        log::info!(
            "{}: reporting only, changing nothing (`pxc-replication-manager resume` ends it)",
            p.describe()
        );
    }
}

/// What a run did, logged for the operator and returned.
fn summarize(
    name: String,
    ctx: &mut RunCtx,
    results: Vec<policy::LinkResult>,
    paused_since: Option<i64>,
    state_error: Option<crate::error::StateFileError>,
) -> RunSummary {
    let mut link_errors = Vec::new();
    for (key, r) in results {
        if let Err(e) = r {
            log::error!("{name}: link {key}: {e}");
            link_errors.push((key, e.to_string()));
        }
    }
    if ctx.notices.events.is_empty() {
        log::debug!("{name}: nothing changed");
    } else {
        log::info!("{name}: {}", ctx.notices.events.join("; "));
    }
    if let Some(e) = &state_error {
        log::error!(
            "{name}: [files] state: {e}. Without this memory the node cannot tell a silent peer from a live one, so it never takes over from one: fix the path or its permissions"
        );
    }
    RunSummary {
        node: name,
        events: std::mem::take(&mut ctx.notices.events),
        link_errors,
        mail_failures: ctx.backend.mail_failures(),
        paused_since,
        state_error,
        links: ctx
            .links
            .iter()
            .map(|l| (l.key.clone(), l.channel.clone()))
            .collect(),
        reported: ctx.reported().clone(),
        reported_at: ctx.reported_at().clone(),
        view: None,
    }
}

/// `status`: the links, their rows as this node judges them, and this node's channels.
pub fn status_report(
    cfg: &Config,
    policy: &Policy,
    defaults_file: Option<&std::path::Path>,
) -> Result<status::Report> {
    status_report_at(cfg, threshold(cfg, policy), defaults_file)
}

/// [`status_report`] with the silent threshold already known (the daemon's `/metrics`
/// thread, which has no policy of its own).
pub fn status_report_at(
    cfg: &Config,
    threshold: i64,
    defaults_file: Option<&std::path::Path>,
) -> Result<status::Report> {
    let mut node = open_local(cfg, defaults_file)?;
    let channels = node.server.replica_statuses(&node.facts.flavor)?;
    let mut memory = Observations::peek(&cfg.files.state);
    let mut links = Vec::new();
    for l in &node.links {
        let schema = node.schema.as_ref();
        let (rows, failure) = rows_and_failure(&mut node.server, schema, &l.key)?;
        let last_event = last_event(
            &mut node.server,
            schema,
            &node.facts.cluster,
            &node.links,
            &l.key,
        )?;
        let switchover = pending_switchover(&mut node.server, schema, &l.key, threshold)?;
        memory.observe(&l.key, &node.facts.name, &rows, threshold);
        let fresh = memory
            .freshness(&l.key, &node.facts.name, threshold)
            .seeing(&rows);
        links.push(status::LinkReport {
            key: l.key.to_string(),
            remote: l.remote.clone(),
            channel: l.channel.as_str().to_string(),
            sources: l.sources.iter().map(|s| s.address()).collect(),
            rows: rows
                .into_iter()
                .map(|row| status::RowView {
                    silent_for: fresh.age(&row),
                    fresh: fresh.is_fresh(&row),
                    row,
                })
                .collect(),
            failure,
            last_event,
            switchover,
            replica: channels
                .iter()
                .find(|c| c.channel == l.channel.as_str())
                .cloned(),
        });
    }
    let connection = connection(&mut node.server)?;
    let managed: Vec<String> = node
        .links
        .iter()
        .map(|l| l.channel.as_str().to_string())
        .collect();
    Ok(status::Report {
        node: node.facts.clone(),
        address: node.me.address.clone(),
        generation: node.schema.as_ref().map(|s| s.generation.clone()),
        heartbeat_timeout: cfg.timeouts.heartbeat,
        silent_after: threshold,
        paused_since: guard::paused_since(&cfg.files.pause),
        cluster_pause: node.cluster_pause.clone(),
        connection,
        login: node.login.source(),
        option_files: node.login.options_from.clone(),
        links,
        skewed: memory.skewed().cloned().collect(),
        counters: memory.counters().clone(),
        other_channels: channels
            .into_iter()
            .filter(|c| !managed.contains(&c.channel))
            .collect(),
    })
}

/// A link's rows, with the failure recorded for it where the claim table records failures.
fn rows_and_failure(
    server: &mut LocalServer,
    schema: Option<&Schema>,
    key: &str,
) -> Result<(
    Vec<crate::db::state::StateRow>,
    Option<crate::db::state::LinkFailure>,
)> {
    Ok(match schema {
        Some(s) if s.claim_records_failures => (server.rows(s, key)?, server.failure(s, key)?),
        Some(s) => (server.rows(s, key)?, None),
        None => (Vec::new(), None),
    })
}

/// The last event of a link's history, where the history table exists.
fn last_event(
    server: &mut LocalServer,
    schema: Option<&Schema>,
    cluster: &str,
    links: &[Link],
    key: &str,
) -> Result<Option<history::Event>> {
    Ok(match schema {
        Some(s) if s.has_history_table => {
            let q = crate::db::history::Query {
                links: vec![key.to_string()],
                since: None,
                limit: 1,
            };
            server
                .history(cluster, &q)?
                .into_iter()
                .next()
                .map(|e| history::event(e, links))
        }
        _ => None,
    })
}

/// A link's switchover request that is still pending, where the switchover table exists.
fn pending_switchover(
    server: &mut LocalServer,
    schema: Option<&Schema>,
    key: &str,
    threshold: i64,
) -> Result<Option<crate::db::switchover::Request>> {
    Ok(match schema {
        Some(s) if s.has_switchover_table => {
            server.switchover(key)?.filter(|r| r.pending(threshold))
        }
        _ => None,
    })
}

/// The server's endpoint and whether the connection to it is encrypted, with its cipher.
fn connection(server: &mut LocalServer) -> Result<String> {
    let cipher = server.tls_cipher()?;
    Ok(format!(
        "{} {}",
        server.endpoint(),
        match cipher {
            Some(c) => format!("(TLS, {c})"),
            None => "(not encrypted)".into(),
        }
    ))
}

/// `init --print-ddl`: the statements `init` runs on a server without the percona schema, as a
/// script for the mysql or mariadb client. No server is read: the DDL is the same for every
/// flavour (each statement `IF NOT EXISTS`).
pub fn init_ddl_script() -> String {
    let mut s = format!(
        "-- pxc-replication-manager {}: the percona schema, as `init` creates it.\n-- Run on one node of each cluster; Galera carries it to the others. Idempotent.\n",
        crate::policy::VERSION
    );
    for st in crate::db::init_ddl() {
        s.push_str(&st);
        s.push_str(";\n");
    }
    s
}

/// `init`: creates the `percona` schema and tables, idempotently.
pub fn init(
    cfg: &Config,
    defaults_file: Option<&std::path::Path>,
    dry_run: bool,
    out: Box<dyn Write>,
) -> Result<String> {
    let login = Login::resolve(&cfg.local, defaults_file)?;
    let mut server = LocalServer::connect(&login)?;
    let facts = server.facts(&cfg.local)?;
    if !facts.is_primary() {
        return Err(Error::NotPrimary {
            node: facts.name.clone(),
            state: facts.cluster_status.to_string(),
            what: "run init",
        });
    }
    let before = server.schema().ok();
    let mode = if dry_run { Mode::DryRun } else { Mode::Live };
    let name = facts.name.clone();
    let me = facts.me(None);
    let mut backend = LiveBackend::new(server, login, facts, me, None, cfg, mode, out);
    backend.apply(&Action::InitSchema)?;
    let after = if dry_run {
        before.clone()
    } else {
        backend.read_schema().ok()
    };
    Ok(match (&before, &after) {
        (Some(b), _) => format!(
            "{name}: percona.replication already existed ({}); missing tables were created",
            b.generation.describe()
        ),
        (None, Some(a)) => format!(
            "{name}: created the percona schema ({})",
            a.generation.describe()
        ),
        (None, None) => {
            format!("{name}: dry-run: the statements above would create the percona schema")
        }
    })
}
