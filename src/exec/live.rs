//! The backend on a real server, live or dry-run: the same reads, the same checks; live runs
//! the statements, dry-run prints them.

use super::conn::{self, FenceOutcome, LocalServer};
use super::{
    Action, Backend, Changes, ConnectOutcome, Outcome, RenderCtx, proposal_lines, render, stalled,
};
use crate::config::topology::Link;
use crate::config::{Config, MailConfig, SETTLE, SourceAddr};
use crate::db::clock::mark_view;
use crate::db::flavor::{Flavor, ReplicaStatus, Thread};
use crate::db::sql::Reveal;
use crate::db::state::{self, LinkFailure, LinkKey, Me, Role, Schema, StateRow};
use crate::db::switchover::{Phase, Request};
use crate::error::{Error, ProbeError, Result};
use crate::exec::mail;
use crate::exec::server::{self, Login, NodeFacts, Probe};
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// How a claim's transaction that Galera aborted is reported, and how often it is tried.
const CONFLICT: &str = "another node wrote the link's rows at the same moment";
const CLAIM_ATTEMPTS: u32 = 3;

/// Live or dry-run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Live,
    DryRun,
}

/// The backend on a real server.
pub struct LiveBackend {
    server: LocalServer,
    /// The manager's own login, also used to fence peers.
    login: Login,
    facts: NodeFacts,
    me: Me,
    schema: Option<Schema>,
    mode: Mode,
    mail: MailConfig,
    probe_timeout: Duration,
    out: Box<dyn Write>,
    mail_failures: usize,
    /// Live only: the run's mails, sent at its end ([`Backend::send_mail`]), so a slow or dead
    /// mail server never delays a change to replication or a report.
    outbox: Vec<mail::Mail>,
    /// Dry-run only: own/peer roles as the printed writes would have left them, so the rest of
    /// the run reads what a live run would read.
    overlay: HashMap<(String, String), Role>,
    /// Dry-run only: the report tables' DDL (report, position) was printed once already.
    node_table_printed: bool,
    /// Dry-run only: the fence table's DDL was printed once already.
    fence_table_printed: bool,
    /// Dry-run only: the history table's DDL was printed once already.
    history_table_printed: bool,
    /// Dry-run only: channels as the printed statements would have left them (a started
    /// channel is assumed to run, as `await_replica` assumes), by channel name.
    channel_overlay: HashMap<String, Option<ReplicaStatus>>,
    /// The view's member list was found not to name this node (warned once).
    names_unlike_members: bool,
    /// Open connections to sources, by `user@host:port`, reused by probes (kept by a daemon).
    sources: HashMap<String, crate::memory::Held<mysql::Conn>>,
    keep_sources: bool,
    /// Reads answered again without asking the server while nothing was written (see
    /// [`Cached`]): a healthy run reads the channels and the view several times in a few
    /// milliseconds, and each read on a Galera node with causal reads waits for the cluster.
    statuses: Cached<Vec<ReplicaStatus>>,
    members: Cached<Option<Vec<crate::db::clock::Member>>>,
    /// A link's rows as read (before dry-run's overlay), by key.
    rows: PerLink<Vec<StateRow>>,
    /// The run's links: their rows and switchover requests are read for all of them in one
    /// statement each, where a run would ask link by link (one round trip, each waiting for
    /// the cluster, per link).
    keys: Vec<LinkKey>,
    /// The links' switchover requests, by key, as [`LiveBackend::keys`] read them together.
    switchovers: Cached<HashMap<String, Request>>,
    /// A link's recorded failure (`None`: none), by key, read with every link's.
    failures: PerLink<Option<LinkFailure>>,
    /// Live only: heartbeat-only reports waiting to be committed together, before the server
    /// is asked anything else ([`super::joined`]).
    joined: super::joined::Joined,
}

/// Whether every key a statement over several links returned is exactly one of those asked
/// for, so that its rows can be told apart by key.
fn answers_exactly<'a>(returned: impl IntoIterator<Item = &'a String>, asked: &[&str]) -> bool {
    returned.into_iter().all(|k| asked.contains(&k.as_str()))
}

/// A read kept for at most [`Cached::FOR`], and dropped by a write that can change it
/// ([`Action::changes`]).
struct Cached<T> {
    value: Option<(Instant, T)>,
}

impl<T: Clone> Cached<T> {
    const FOR: Duration = Duration::from_millis(250);

    fn new() -> Cached<T> {
        Cached { value: None }
    }

    fn get(&self) -> Option<T> {
        self.value
            .as_ref()
            .filter(|(at, _)| at.elapsed() < Self::FOR)
            .map(|(_, v)| v.clone())
    }

    fn put(&mut self, v: T) -> T {
        self.value = Some((Instant::now(), v.clone()));
        v
    }

    fn clear(&mut self) {
        self.value = None;
    }
}

/// A read per link ([`Cached`] each), by key: a link's rows, its failure record.
struct PerLink<T> {
    by_key: HashMap<String, Cached<T>>,
}

impl<T> Default for PerLink<T> {
    fn default() -> PerLink<T> {
        PerLink {
            by_key: HashMap::new(),
        }
    }
}

impl<T: Clone> PerLink<T> {
    fn get(&self, key: &str) -> Option<T> {
        self.by_key.get(key).and_then(Cached::get)
    }

    fn put(&mut self, key: &str, v: T) -> T {
        self.by_key
            .entry(key.to_string())
            .or_insert_with(Cached::new)
            .put(v)
    }

    fn remove(&mut self, key: &str) {
        self.by_key.remove(key);
    }

    fn clear(&mut self) {
        self.by_key.clear();
    }

    /// What one statement over several links reads: `key`, and every one of `keys` whose
    /// read is not kept.
    fn unread(&self, keys: &[LinkKey], key: &str) -> Vec<String> {
        keys.iter()
            .map(|k| k.to_string())
            .filter(|k| k == key || self.get(k).is_none())
            .collect()
    }
}

impl LiveBackend {
    /// Starts with the view's members as the caller just read them.
    pub fn with_members(mut self, members: Option<Vec<crate::db::clock::Member>>) -> LiveBackend {
        self.members.put(members);
        self
    }

    /// The run's links, whose rows and switchover requests are read together.
    pub fn with_links(mut self, keys: Vec<LinkKey>) -> LiveBackend {
        self.keys = keys;
        self
    }

    /// Keeps the probes' connections to the sources for the next run (a daemon's), starting
    /// with those a previous run kept. Without it (cron), each probe closes its connection:
    /// a run's buffers stay small, inside the policy's memory limit.
    pub fn with_sources(mut self, kept: &mut super::Kept) -> LiveBackend {
        self.sources = std::mem::take(&mut kept.sources);
        self.keep_sources = true;
        self
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        server: LocalServer,
        login: Login,
        facts: NodeFacts,
        me: Me,
        schema: Option<Schema>,
        cfg: &Config,
        mode: Mode,
        out: Box<dyn Write>,
    ) -> LiveBackend {
        LiveBackend {
            server,
            login,
            facts,
            me,
            schema,
            mode,
            mail: cfg.mail.clone(),
            probe_timeout: cfg.timeouts.probe,
            out,
            mail_failures: 0,
            outbox: Vec::new(),
            overlay: HashMap::new(),
            node_table_printed: false,
            fence_table_printed: false,
            history_table_printed: false,
            channel_overlay: HashMap::new(),
            names_unlike_members: false,
            sources: HashMap::new(),
            keep_sources: false,
            statuses: Cached::new(),
            members: Cached::new(),
            rows: PerLink::default(),
            keys: Vec::new(),
            switchovers: Cached::new(),
            failures: PerLink::default(),
            joined: super::joined::Joined::default(),
        }
    }

    /// The statements a run's links read first, exactly as this backend asks them, in its
    /// order: every channel's status, then the switchover requests, the rows and the failure
    /// records (of every link in one statement each when there are several). The caller reads
    /// them ahead ([`LocalServer::read_ahead`]); a text that differs is only read twice.
    pub fn first_reads(schema: &Schema, flavor: &Flavor, keys: &[LinkKey]) -> Vec<String> {
        let mut reads = vec![flavor.dialect().show_replica_status().to_string()];
        let list: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        match list.as_slice() {
            [] => {}
            [key] => {
                if schema.has_switchover_table {
                    reads.push(crate::db::switchover::select(key));
                }
                reads.push(schema.select_rows(key));
                if schema.claim_records_failures {
                    reads.push(schema.select_failure(key));
                }
            }
            all => {
                if schema.has_switchover_table {
                    reads.push(crate::db::switchover::select_of(all));
                }
                reads.push(schema.select_rows_of(all));
                if schema.claim_records_failures {
                    reads.push(schema.select_failures_of(all));
                }
            }
        }
        reads
    }

    /// Reads which generation of the state table exists now (after `init`).
    pub fn read_schema(&mut self) -> Result<Schema> {
        self.srv().schema()
    }

    /// The local server, once the reports that wait are committed: whatever it is asked
    /// next, they come first.
    fn srv(&mut self) -> &mut LocalServer {
        self.commit_reports();
        &mut self.server
    }

    /// Commits the reports that wait ([`super::joined`]); a failure is kept for
    /// [`Backend::settle_reports`].
    fn commit_reports(&mut self) {
        if self.joined.is_empty() {
            return;
        }
        let mut joined = std::mem::take(&mut self.joined);
        joined.commit(|masked, real| self.run_statements(masked, real).map(|_| ()));
        self.joined = joined;
    }

    /// Keeps a heartbeat-only report to commit with the next ones (live only); `false` when
    /// it must run now.
    fn keep_report(&mut self, action: &Action) -> Result<bool> {
        let Some(key) = action.heartbeat_of().filter(|_| self.mode == Mode::Live) else {
            return Ok(false);
        };
        let (masked, real) = self.rendered(action)?;
        Ok(self.joined.keep(key, &masked, &real))
    }

    fn print(&mut self, line: &str) {
        let _ = writeln!(
            self.out,
            "{}: {}",
            crate::error::printable(&self.facts.name),
            crate::error::printable(line)
        );
    }

    /// The schema as a statement should be rendered: in dry-run, the report table counts as
    /// created once its DDL was printed.
    fn render_schema(&self) -> Option<Schema> {
        self.schema.clone().map(|mut s| {
            s.has_node_table |= self.node_table_printed;
            s.has_fence_table |= self.fence_table_printed;
            s.has_history_table |= self.history_table_printed;
            s.has_position_table |= self.node_table_printed;
            s
        })
    }

    /// Runs an action's statements; returns the rows the last data statement affected. A
    /// transaction the statements opened is rolled back when one of them fails.
    fn run_statements(&mut self, masked: &[String], real: &[String]) -> Result<u64> {
        Ok(self.run_guarded(masked, real, |_| false)?.unwrap_or(0))
    }

    /// Runs the statements in order (a failure rolls an open transaction back); the affected
    /// rows of the last one. `None`, after a rollback, when a statement `guard` names changed
    /// no row: the transaction's condition no longer held.
    fn run_guarded(
        &mut self,
        masked: &[String],
        real: &[String],
        guard: impl Fn(&str) -> bool,
    ) -> Result<Option<u64>> {
        let mut affected = 0;
        let mut open = false;
        for (m, r) in masked.iter().zip(real) {
            log::debug!("{}: {m}", self.facts.name);
            let n = match self.server.execute(r) {
                Ok(n) => n,
                Err(e) => {
                    if open {
                        let _ = self.server.execute("ROLLBACK");
                    }
                    return Err(Error::db(format!("running `{m}`"), e));
                }
            };
            match r.as_str() {
                super::BEGIN => open = true,
                super::COMMIT => open = false,
                _ if n == 0 && guard(r) => {
                    if open {
                        self.server
                            .execute("ROLLBACK")
                            .map_err(|e| Error::db(format!("rolling back after `{m}`"), e))?;
                    }
                    return Ok(None);
                }
                _ => affected = n,
            }
        }
        Ok(Some(affected))
    }

    fn propose_live(&mut self, key: &str, fresh: &crate::db::clock::Freshness) -> Result<Outcome> {
        let schema = super::require_schema(self.schema.as_ref())?.clone();
        let p = super::proposal(&schema, key, &self.me);
        for m in proposal_lines(&schema, key, &self.me, true) {
            log::debug!("{}: {m}", self.facts.name);
        }
        if let Some(ddl) = &p.create_claim_table {
            self.server
                .execute(ddl)
                .map_err(|e| Error::db("creating percona.replication_claim", e))?;
            if let Some(s) = &mut self.schema {
                s.has_claim_table = true;
                s.claim_records_failures = true;
            }
        }
        // Galera aborts the claim's transaction (a deadlock, 1213) when any write to the rows it
        // read FOR UPDATE arrives from another node: a rival's proposal, but also a peer's
        // report or demotion, which all nodes write at the same second when cron starts them
        // together. The claim is tried again, a few times: the same transaction re-reads the
        // rows, so against a rival that won it now loses with the reason, and against a mere
        // report it goes through instead of leaving the link without a replica until the next
        // run.
        let mut attempt = 1;
        loop {
            match self.claim(&p, fresh)? {
                Outcome::Lost(why) if why.starts_with(CONFLICT) && attempt < CLAIM_ATTEMPTS => {
                    log::debug!(
                        "{}: claim attempt {attempt}: {why}; trying again",
                        self.facts.name
                    );
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(
                        10 + u64::from(std::process::id() % 40),
                    ));
                }
                o => return Ok(o),
            }
        }
    }

    /// One attempt at the claim's transaction.
    fn claim(
        &mut self,
        p: &state::Proposal,
        fresh: &crate::db::clock::Freshness,
    ) -> Result<Outcome> {
        let mut unreadable = None;
        let result = (|| -> std::result::Result<Outcome, mysql::Error> {
            self.server.execute("START TRANSACTION")?;
            self.server.execute(&p.claim)?;
            let cells = self.server.locking_cells(&p.lock_rows)?;
            let rows = match state::parse_rows(cells) {
                Ok(r) => r,
                Err(e) => {
                    unreadable = Some(e);
                    self.server.execute("ROLLBACK")?;
                    return Ok(Outcome::Lost("the rows could not be read".into()));
                }
            };
            if let Err(why) = crate::db::clock::may_propose(&rows, fresh) {
                self.server.execute("ROLLBACK")?;
                return Ok(Outcome::Lost(why));
            }
            // A switchover whose old replica has stopped reserves the link for its target:
            // read in the same transaction, after the rows, so the hand-off (which writes both)
            // is seen whole or not at all.
            if let Some(read) = &p.read_switchover {
                let cells = self.server.locking_cells(read)?;
                // A request that cannot be read may reserve the link: the claim loses.
                let barred = match crate::db::switchover::parse(cells) {
                    Ok(r) => r.and_then(|r| r.bars(&fresh.me, fresh.threshold)),
                    Err(e) => Some(format!(
                        "the link's switchover request could not be read: {e}"
                    )),
                };
                if let Some(why) = barred {
                    self.server.execute("ROLLBACK")?;
                    return Ok(Outcome::Lost(why));
                }
            }
            let n = self.server.execute(&p.update)?;
            self.server.execute("COMMIT")?;
            Ok(Outcome::Done { affected: n })
        })();
        if let Some(e) = unreadable {
            return Err(Error::StateTableUnrecognised(e));
        }
        match result {
            Ok(o) => Ok(o),
            Err(e) if is_conflict(&e) => {
                let _ = self.server.execute("ROLLBACK");
                Ok(Outcome::Lost(format!(
                    "{CONFLICT} ({})",
                    server::describe(&e)
                )))
            }
            Err(e) => {
                let _ = self.server.execute("ROLLBACK");
                Err(Error::db("proposing this node", e))
            }
        }
    }

    /// Dry-run: the same check on the rows as the printed writes would have left them.
    fn propose_dry(
        &mut self,
        key: &str,
        fresh: &crate::db::clock::Freshness,
        link_rows: Vec<StateRow>,
    ) -> Result<Outcome> {
        let schema = self.render_schema();
        let schema = super::require_schema(schema.as_ref())?;
        let verdict = crate::db::clock::may_propose(&link_rows, fresh);
        for l in proposal_lines(schema, key, &self.me, verdict.is_ok()) {
            self.print(&l);
        }
        Ok(match verdict {
            Ok(()) => {
                self.overlay
                    .insert((key.to_string(), self.me.host.clone()), Role::Proposed);
                Outcome::Done { affected: 1 }
            }
            Err(why) => Outcome::Lost(why),
        })
    }

    /// The old replica's hand-off ([`Action::HandOff`]): one transaction that commits only
    /// if the request still names this node and is under way (its switchover `UPDATE`
    /// changed a row).
    fn hand_off_live(&mut self, action: &Action) -> Result<Outcome> {
        let (masked, real) = self.rendered(action)?;
        let guard = |sql: &str| sql.starts_with("UPDATE percona.replication_switchover");
        match self.run_guarded(&masked, &real, guard)? {
            None => Ok(Outcome::Lost(
                "the request no longer names this node, or has ended".into(),
            )),
            Some(_) => {
                self.learn_tables(&masked, action);
                Ok(Outcome::Done { affected: 1 })
            }
        }
    }

    fn deliver(&mut self, m: &mail::Mail) {
        match self.mode {
            Mode::DryRun => {
                for l in m.lines(&self.mail) {
                    self.print(&l);
                }
            }
            Mode::Live => {
                log::info!("{}: mail: {}", self.facts.name, m.subject);
                self.outbox.push(m.clone());
            }
        }
    }
}

/// A channel as a dry-run assumes it after `CHANGE` (threads stopped) and `START` (running).
fn assumed(channel: &str, host: &str, port: u16, t: Thread) -> ReplicaStatus {
    ReplicaStatus {
        channel: channel.to_string(),
        source_host: host.to_string(),
        source_port: port,
        source_user: String::new(),
        io_running: t.clone(),
        sql_running: t,
        io_state: String::new(),
        last_io_error: String::new(),
        last_sql_error: String::new(),
        last_sql_errno: 0,
        lag_seconds: None,
        gtid: Vec::new(),
    }
}

/// Galera certification failures and lock conflicts: the other side won the race.
fn is_conflict(e: &mysql::Error) -> bool {
    match e {
        mysql::Error::MySqlError(m) => matches!(m.code, 1213 | 1205 | 1180),
        _ => false,
    }
}

/// How often a node waiting for the other side of a switchover reads the request again.
const SWITCHOVER_POLL: Duration = Duration::from_millis(25);

impl Backend for LiveBackend {
    fn facts(&self) -> &NodeFacts {
        &self.facts
    }

    fn me(&self) -> &Me {
        &self.me
    }

    fn rows(&mut self, link: &Link) -> Result<Vec<StateRow>> {
        self.rows_by_key(&link.key)
    }

    fn switchover(&mut self, link: &Link) -> Result<Option<Request>> {
        match &self.schema {
            Some(s) if s.has_switchover_table => {}
            _ => return Ok(None),
        }
        if !self.reads_together(&link.key) {
            return self.srv().switchover(&link.key);
        }
        let all = match self.switchovers.get() {
            Some(all) => all,
            None => {
                self.commit_reports();
                let keys: Vec<&str> = self.keys.iter().map(|k| k.as_str()).collect();
                let all = self.server.switchovers(&keys)?;
                if !answers_exactly(all.keys(), &keys) {
                    self.keys.clear();
                    return self.srv().switchover(&link.key);
                }
                self.switchovers.put(all)
            }
        };
        Ok(all.get(link.key.as_str()).cloned())
    }

    fn await_switchover(
        &mut self,
        link: &Link,
        phase: Phase,
        max: Duration,
    ) -> Result<Option<Request>> {
        let until = Instant::now() + max;
        loop {
            // Read afresh each time: the other node's write is what this waits for.
            self.switchovers.clear();
            let r = self.switchover(link)?;
            if self.mode == Mode::DryRun
                || r.as_ref().is_none_or(|r| r.phase != phase)
                || Instant::now() >= until
            {
                return Ok(r);
            }
            std::thread::sleep(SWITCHOVER_POLL);
        }
    }

    fn await_position(&mut self, position: &str, max: Duration) -> Result<bool> {
        if self.mode == Mode::DryRun {
            return Ok(true);
        }
        let dialect = self.facts.flavor.dialect();
        let position = if self.facts.flavor.is_mariadb() {
            let own = self.srv().local_gtid_domains()?;
            crate::db::flavor::mariadb_position_without(position, &own)
        } else {
            position.to_string()
        };
        if position.is_empty() {
            return Ok(true);
        }
        log::debug!("{}: waiting to have applied {position}", self.facts.name);
        self.srv()
            .await_position(dialect, &position, max.as_secs().max(1))
    }

    fn replica(&mut self, link: &Link) -> Result<Option<ReplicaStatus>> {
        self.channel_status(link.channel.as_str())
    }

    fn last_failure(&mut self, link: &Link) -> Result<Option<LinkFailure>> {
        let schema = match &self.schema {
            Some(s) if s.claim_records_failures => s.clone(),
            _ => return Ok(None),
        };
        let key = link.key.as_str();
        if let Some(f) = self.failures.get(key) {
            return Ok(f);
        }
        if self.reads_together(key) {
            let keys = self.failures.unread(&self.keys, key);
            let list: Vec<&str> = keys.iter().map(String::as_str).collect();
            let mut all = self.srv().failures_of(&schema, &list)?;
            // As for the rows (see `read_rows_together`).
            if answers_exactly(all.keys(), &list) {
                for k in &keys {
                    self.failures.put(k, all.remove(k));
                }
                return Ok(self.failures.get(key).flatten());
            }
            self.keys.clear();
        }
        let f = self.srv().failure(&schema, key)?;
        Ok(self.failures.put(key, f))
    }

    fn probe(
        &mut self,
        link: &Link,
        source: &SourceAddr,
    ) -> std::result::Result<Probe, ProbeError> {
        self.commit_reports();
        if !self.keep_sources {
            return server::probe_source(link, source, self.probe_timeout);
        }
        let key = format!("{}@{}", link.user, source.address());
        // A kept connection that fails is dropped and a fresh one tried: it may have been
        // closed while idle.
        if let Some(mut c) = self.sources.remove(&key)
            && let Ok(p) = server::probe_on(&mut c)
        {
            self.sources.insert(key, c);
            return Ok(p);
        }
        let mut c = server::open_source(link, source, self.probe_timeout)?;
        let p = server::probe_on(&mut c)?;
        self.sources.insert(key, c);
        Ok(p)
    }

    fn fence_login(&self) -> String {
        self.login.user.clone()
    }

    fn fence_check_targets(&mut self) -> Result<Vec<(String, String)>> {
        if !self.facts.is_primary() || !self.facts.flavor.lists_members() {
            return Ok(Vec::new());
        }
        let members = match self.members.get() {
            Some(m) => m,
            None => {
                let m = self.srv().members()?;
                self.members.put(m)
            }
        };
        let mut v: Vec<(String, String)> = members
            .into_iter()
            .flatten()
            .filter(|(name, _)| *name != self.me.host)
            .filter_map(|(name, a)| Some((name, a?)))
            .collect();
        v.sort();
        Ok(v)
    }

    fn check_fence_login(&mut self, address: &str) -> Option<super::PeerCheck> {
        self.commit_reports();
        Some(conn::check_peer(
            &self.login,
            address,
            &self.facts.flavor,
            self.probe_timeout,
        ))
    }

    fn member_address(&mut self, host: &str) -> Result<Option<String>> {
        self.srv().member_address(host)
    }

    fn await_replica(
        &mut self,
        link: &Link,
        source: &SourceAddr,
        deadline: Duration,
    ) -> Result<ConnectOutcome> {
        if self.mode == Mode::DryRun {
            return Ok(ConnectOutcome::Replicating(format!(
                "dry-run: {} is Primary and Synced, assumed to replicate",
                source.address()
            )));
        }
        let start = Instant::now();
        let mut last = String::from("the channel did not appear");
        // Healthy twice, SETTLE apart: a SQL thread that stops on the first event it applies
        // is caught here, not one run later.
        let mut healthy_since: Option<Instant> = None;
        loop {
            self.statuses.clear();
            if let Some(s) = self.replica(link)? {
                if s.is_healthy() {
                    match healthy_since {
                        Some(t) if t.elapsed() >= SETTLE => {
                            return Ok(ConnectOutcome::Replicating(s.io_state.clone()));
                        }
                        Some(_) => {}
                        None => healthy_since = Some(Instant::now()),
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                healthy_since = None;
                last = stalled(&s);
                // A thread that stopped (not merely connecting) will not recover by waiting.
                if s.io_running == Thread::No || s.sql_running == Thread::No {
                    // An error of the cluster (this node left the Primary component
                    // while applying) is not the data's: another start may work.
                    return Ok(if s.has_data_error() {
                        ConnectOutcome::SqlError(s.last_sql_error.clone())
                    } else {
                        ConnectOutcome::NotRunning(last)
                    });
                }
            }
            if start.elapsed() >= deadline {
                return Ok(ConnectOutcome::NotRunning(format!(
                    "not running after {}s: {last}",
                    deadline.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn apply(&mut self, action: &Action) -> Result<Outcome> {
        self.forget(action);
        if self.keep_report(action)? {
            return Ok(Outcome::Done { affected: 1 });
        }
        // A mail is only queued (sent at the end of the run); anything else comes after the
        // reports that wait.
        if !matches!(action, Action::Notify(_)) {
            self.commit_reports();
        }
        match (action, self.mode) {
            (Action::Notify(m), _) => {
                self.deliver(m);
                Ok(Outcome::Done { affected: 0 })
            }
            (Action::Hook(h), Mode::DryRun) => {
                for l in h.lines() {
                    self.print(&l);
                }
                Ok(Outcome::Done { affected: 0 })
            }
            (Action::Hook(h), Mode::Live) => {
                self.run_hook(h);
                Ok(Outcome::Done { affected: 0 })
            }
            (Action::Fence { .. }, _) => self.fence(action),
            (Action::Propose { key, fresh }, Mode::Live) => self.propose_live(key, fresh),
            (Action::HandOff { .. }, Mode::Live) => self.hand_off_live(action),
            (Action::Propose { key, fresh }, Mode::DryRun) => {
                let link_rows = self.rows_by_key(key)?;
                self.propose_dry(key, fresh, link_rows)
            }
            (_, Mode::DryRun) => self.print_instead(action),
            (_, Mode::Live) => self.run(action),
        }
    }

    fn into_kept(mut self: Box<Self>) -> super::Kept {
        for (key, e) in self.settle_reports() {
            log::error!("{}: link {key}: its report: {e}", self.facts.name);
        }
        // What this run read ahead and never took is of this run only.
        self.server.forget_ahead();
        super::Kept {
            local: Some((self.login, self.server)),
            sources: self.sources,
            schema: self.schema,
        }
    }

    fn mail_failures(&self) -> usize {
        self.mail_failures
    }

    fn settle_reports(&mut self) -> Vec<(LinkKey, Error)> {
        self.commit_reports();
        self.joined.take_failed()
    }

    fn send_mail(&mut self) {
        self.commit_reports();
        let queued = std::mem::take(&mut self.outbox);
        self.mail_failures += mail::send_queued(&self.mail, &self.facts.name, queued);
    }
}

impl LiveBackend {
    /// The masked statements of an action, as they are printed and logged.
    fn masked(&self, action: &Action) -> Result<Vec<String>> {
        let schema = self.render_schema();
        let ctx = RenderCtx {
            schema: schema.as_ref(),
            me: &self.me,
            dialect: self.facts.flavor.dialect(),
        };
        render(action, &ctx, Reveal::Masked)
    }

    /// Runs an operator's hook; whatever it does is logged, and nothing else.
    fn run_hook(&self, h: &super::hook::HookCall) {
        let node = &self.facts.name;
        let key = h.event.key();
        let program = &h.argv[0];
        match super::hook::run(h) {
            Ok(r) if r.success => {
                log::info!(
                    "{node}: hook {key} ({program}) ran in {} ms",
                    r.elapsed.as_millis()
                );
                if !r.output.is_empty() {
                    log::debug!(
                        "{node}: hook {key} said: {}",
                        crate::error::printable(&r.output)
                    );
                }
            }
            Ok(r) => log::warn!(
                "{node}: hook {key} ({program}) failed ({}) after {} ms{}; the run goes on",
                r.status,
                r.elapsed.as_millis(),
                if r.output.is_empty() {
                    String::new()
                } else {
                    format!(": {}", crate::error::printable(&r.output))
                }
            ),
            Err(e) => log::warn!("{node}: hook {key} ({program}): {e}; the run goes on"),
        }
    }

    /// Stops a peer's channel (dry-run: says whether it would).
    fn fence(&mut self, action: &Action) -> Result<Outcome> {
        let Action::Fence {
            address, channel, ..
        } = action
        else {
            return Err(Error::Internal(format!("not a fence: {action:?}")));
        };
        let dry = self.mode == Mode::DryRun;
        let o = conn::fence_peer(
            &self.login,
            address,
            &self.facts.flavor,
            channel,
            self.probe_timeout,
            dry,
        );
        if o == FenceOutcome::Stopped {
            for l in self.masked(action)? {
                if dry {
                    self.print(&l);
                } else {
                    log::debug!("{}: {l}", self.facts.name);
                }
            }
        }
        Ok(Outcome::Fenced(o))
    }

    /// Live: runs the statements, and learns which tables now exist.
    fn run(&mut self, action: &Action) -> Result<Outcome> {
        let (masked, real) = self.rendered(action)?;
        let affected = match self.run_statements(&masked, &real) {
            // A failure record shares the claim row with proposals: if one raced it, write it
            // again.
            Err(_) if matches!(action, Action::RecordFailure { .. }) => {
                self.run_statements(&masked, &real)?
            }
            r => r?,
        };
        if self.learn_tables(&masked, action) {
            // Rows read before the table existed lack its columns.
            self.rows.clear();
            self.switchovers.clear();
            self.failures.clear();
        }
        Ok(Outcome::Done { affected })
    }

    /// An action's statements as logged (secrets masked) and as run.
    fn rendered(&self, action: &Action) -> Result<(Vec<String>, Vec<String>)> {
        let masked = self.masked(action)?;
        let schema = self.render_schema();
        let ctx = RenderCtx {
            schema: schema.as_ref(),
            me: &self.me,
            dialect: self.facts.flavor.dialect(),
        };
        Ok((masked, render(action, &ctx, Reveal::Secrets)?))
    }

    /// The tables the action's statements created, and the claim table's failure columns;
    /// whether the schema changed.
    fn learn_tables(&mut self, masked: &[String], action: &Action) -> bool {
        let before = self.schema.clone();
        if let Some(s) = &mut self.schema {
            if masked.iter().any(|m| m == &state::node_table_ddl()) {
                s.has_node_table = true;
            }
            if masked.iter().any(|m| m == &state::position_table_ddl()) {
                s.has_position_table = true;
            }
            if masked.iter().any(|m| m == &state::fence_table_ddl()) {
                s.has_fence_table = true;
            }
            if masked.iter().any(|m| m == &crate::db::history::ddl()) {
                s.has_history_table = true;
            }
            if masked.iter().any(|m| m == &crate::db::switchover::ddl()) {
                s.has_switchover_table = true;
            }
            if matches!(action, Action::RecordFailure { .. }) {
                s.has_claim_table = true;
                s.claim_records_failures = true;
            }
        }
        self.schema != before
    }

    /// Dry-run: prints the statements, and remembers what they would have changed, so the rest
    /// of the run reads what a live run would read.
    fn print_instead(&mut self, action: &Action) -> Result<Outcome> {
        let masked = self.masked(action)?;
        for s in &masked {
            self.print(s);
        }
        if masked
            .iter()
            .any(|s| s == &state::node_table_ddl() || s == &state::position_table_ddl())
        {
            self.node_table_printed = true;
        }
        if masked.iter().any(|s| s == &state::fence_table_ddl()) {
            self.fence_table_printed = true;
        }
        if masked.iter().any(|s| s == &crate::db::history::ddl()) {
            self.history_table_printed = true;
        }
        let me = self.me.host.clone();
        match action {
            Action::InsertRow { key, role, .. }
            | Action::UpdateOwnRow {
                key,
                role: Some(role),
                ..
            } => {
                self.overlay.insert((key.to_string(), me), *role);
            }
            Action::DemoteSilent { key, host, .. } => {
                self.overlay
                    .insert((key.to_string(), host.clone()), Role::No);
            }
            Action::ChangeSource { channel, spec } => {
                let s = assumed(channel.as_str(), &spec.host, spec.port, Thread::No);
                self.channel_overlay
                    .insert(channel.as_str().to_string(), Some(s));
            }
            Action::StartReplica { channel } | Action::StopReplica { channel } => {
                let running = matches!(action, Action::StartReplica { .. });
                if let Some(mut s) = self.channel_status(channel.as_str())? {
                    let t = if running { Thread::Yes } else { Thread::No };
                    s.io_running = t.clone();
                    s.sql_running = t;
                    s.io_state = if running {
                        "dry-run: assumed to replicate".into()
                    } else {
                        String::new()
                    };
                    self.channel_overlay
                        .insert(channel.as_str().to_string(), Some(s));
                }
            }
            Action::ResetReplica { channel } => {
                self.channel_overlay
                    .insert(channel.as_str().to_string(), None);
            }
            _ => {}
        }
        Ok(Outcome::Done { affected: 1 })
    }

    /// Forgets the reads `action` can change (all of them but for mail, history and a link's
    /// own rows).
    fn forget(&mut self, action: &Action) {
        match action.changes() {
            Changes::Nothing => {}
            Changes::LinkRows(key) => {
                self.rows.remove(key);
                self.failures.remove(key);
            }
            Changes::Anything => {
                self.statuses.clear();
                self.members.clear();
                self.rows.clear();
                self.switchovers.clear();
                self.failures.clear();
            }
        }
    }

    /// Whether a link's rows and request are read with every link's (more than one link, and
    /// this one among them).
    fn reads_together(&self, key: &str) -> bool {
        self.keys.len() > 1 && self.keys.iter().any(|k| k.as_str() == key)
    }

    /// A channel's status by name; in dry-run, as the printed statements would have left it.
    fn channel_status(&mut self, channel: &str) -> Result<Option<ReplicaStatus>> {
        if let Some(s) = self.channel_overlay.get(channel) {
            return Ok(s.clone());
        }
        let all = match self.statuses.get() {
            Some(all) => all,
            None => {
                let flavor = self.facts.flavor.clone();
                let all = self.srv().replica_statuses(&flavor)?;
                self.statuses.put(all)
            }
        };
        Ok(all.into_iter().find(|s| s.channel == channel))
    }

    /// Marks which rows' nodes are in this node's Primary view (see [`mark_view`]).
    fn mark_view(&mut self, rows: &mut [StateRow]) -> Result<()> {
        if !self.facts.is_primary() || !self.facts.flavor.lists_members() {
            return Ok(());
        }
        let members = match self.members.get() {
            Some(m) => m,
            None => {
                let m = self.srv().members()?;
                self.members.put(m)
            }
        };
        let Some(members) = members else {
            return Ok(());
        };
        if !mark_view(rows, &self.me.host, &members) && !self.names_unlike_members {
            self.names_unlike_members = true;
            log::warn!(
                "{}: this node is not named {:?} in mysql.wsrep_cluster_members (its members: {}), so the rows' names are not the view's: a holder that leaves the cluster is replaced after the heartbeat timeout only. Leave [local] node unset, or set it to wsrep_node_name",
                self.facts.name,
                self.me.host,
                members
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    }

    /// Reads and keeps the rows of `key` alone.
    fn read_rows_alone(&mut self, schema: &Schema, key: &str) -> Result<Vec<StateRow>> {
        let mut rows = self.srv().rows(schema, key)?;
        self.mark_view(&mut rows)?;
        Ok(self.rows.put(key, rows))
    }

    /// Reads the rows of `key` and of every link whose rows are not kept, in one statement;
    /// keeps them all; `key`'s rows. Where the server matched a stored key that is not
    /// exactly one asked for (a collation that ignores case or trailing spaces), the rows
    /// cannot be told apart by key: this run reads link by link instead, as the server
    /// matches each.
    fn read_rows_together(&mut self, schema: &Schema, key: &str) -> Result<Vec<StateRow>> {
        let keys = self.rows.unread(&self.keys, key);
        let list: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut all = self.srv().rows_of(schema, &list)?;
        if !answers_exactly(all.keys(), &list) {
            self.keys.clear();
            return self.read_rows_alone(schema, key);
        }
        let mut mine = Vec::new();
        for k in keys {
            let mut rows = all.remove(&k).unwrap_or_default();
            self.mark_view(&mut rows)?;
            if k == key {
                mine = rows.clone();
            }
            self.rows.put(&k, rows);
        }
        Ok(mine)
    }

    /// The rows of a link by its key; in dry-run, as the printed writes would have left them.
    fn rows_by_key(&mut self, key: &str) -> Result<Vec<StateRow>> {
        let Some(schema) = self.schema.clone() else {
            return Ok(Vec::new());
        };
        let cached = self.rows.get(key);
        let mut rows = match cached {
            Some(rows) => rows,
            None if self.reads_together(key) => self.read_rows_together(&schema, key)?,
            None => self.read_rows_alone(&schema, key)?,
        };
        if self.mode == Mode::DryRun {
            let read_at = rows.first().map_or(0, |r| r.read_at);
            for ((k, host), role) in &self.overlay {
                if k != key {
                    continue;
                }
                match rows.iter_mut().find(|r| &r.host == host) {
                    Some(r) => {
                        r.role = *role;
                        if host == &self.me.host {
                            r.heartbeat_age = Some(0);
                        }
                    }
                    None => rows.push(StateRow {
                        host: host.clone(),
                        local_index: Some(self.me.local_index),
                        weight: self.me.weight,
                        role: *role,
                        heartbeat_age: Some(0),
                        update_age: Some(0),
                        current_source: None,
                        report: None,
                        read_at,
                        in_view: None,
                    }),
                }
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::answers_exactly;

    #[test]
    fn rows_read_together_are_told_apart_only_by_keys_exactly_as_asked() {
        let asked = ["DC1-DC2", "DC1-DC3"];
        let exact = ["DC1-DC2".to_string(), "DC1-DC3".to_string()];
        assert!(answers_exactly(&exact, &asked));
        assert!(answers_exactly(&[] as &[String], &asked));
        // A case-insensitive collation matched a key stored in another case.
        let folded = ["dc1-dc2".to_string()];
        assert!(!answers_exactly(&folded, &asked));
    }
}
