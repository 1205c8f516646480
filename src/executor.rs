//! The only writer. Every change a run makes — a state-table row, a replication channel, a
//! schema, a mail — is an [`Action`] handed to [`Backend::apply`]. There are three backends:
//!
//! * **live** ([`LiveBackend`] in [`Mode::Live`]): runs the statements, sends the mail;
//! * **dry-run** ([`LiveBackend`] in [`Mode::DryRun`]): real reads, every write printed
//!   (`<node>: <statement>`, secrets masked) and not run;
//! * **simulated** (`simulate.rs`): a scenario in memory.
//!
//! All three render statements with the same [`render`], so what dry-run prints is exactly what
//! a live run would send, but for masked secrets.

use crate::config::{Config, MailConfig, SourceAddr};
use crate::error::{Error, Result};
use crate::flavor::{Dialect, ReplicaStatus, SourceSpec};
use crate::mail::{self, Mail};
use crate::server::{self, LocalServer, NodeFacts};
use crate::sql::{Channel, Reveal};
use crate::state::{self, LinkFailure, Me, Role, Schema, StateRow};
use crate::topology::Link;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// A change to a server or the outside world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Add this node's row for a link.
    InsertRow {
        key: String,
        role: Role,
    },
    /// Refresh this node's row; change its role when `role` is set; record its source when
    /// `source` is set (`Some(None)` clears it).
    UpdateOwnRow {
        key: String,
        role: Option<Role>,
        source: Option<Option<String>>,
    },
    /// Set a silent peer's `Yes` to `No`.
    DemoteSilent {
        key: String,
        host: String,
    },
    /// Move this node to `Proposed`, race-safe (see [`state::Schema::propose`]).
    Propose {
        key: String,
    },
    /// Record why the link is failing, for every node of the cluster to read.
    RecordFailure {
        key: String,
        kind: String,
        detail: String,
    },
    /// Forget the link's failure: it replicates again.
    ClearFailure {
        key: String,
    },
    ChangeSource {
        channel: Channel,
        spec: SourceSpec,
    },
    StartReplica {
        channel: Channel,
    },
    StopReplica {
        channel: Channel,
    },
    ResetReplica {
        channel: Channel,
    },
    /// Create the `percona` schema and tables (`init`).
    InitSchema,
    Notify(Mail),
}

/// What an action did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done (or printed, in dry-run); the affected row count where there is one.
    Done { affected: u64 },
    /// A proposal that lost: another node holds the link, or won a concurrent race.
    Lost(String),
}

/// What the renderer needs to know.
pub struct RenderCtx<'a> {
    pub schema: Option<&'a Schema>,
    pub me: &'a Me,
    pub dialect: &'a dyn Dialect,
    /// A peer is demoted only if still silent for this long when the statement runs.
    pub heartbeat_timeout: i64,
}

/// The statements of an action, in order. Mail renders to no statement.
pub fn render(action: &Action, ctx: &RenderCtx, reveal: Reveal) -> Result<Vec<String>> {
    let schema = || {
        ctx.schema.ok_or_else(|| {
            Error::Node("the state table was not read on this node, so it cannot be written".into())
        })
    };
    let d = ctx.dialect;
    Ok(match action {
        Action::InsertRow { key, role } => vec![schema()?.insert_row(key, ctx.me, *role)],
        Action::UpdateOwnRow { key, role, source } => {
            vec![schema()?.update_own(key, ctx.me, *role, source.as_ref().map(|s| s.as_deref()))]
        }
        Action::DemoteSilent { key, host } => {
            vec![schema()?.demote_silent(key, host, ctx.heartbeat_timeout)]
        }
        Action::Propose { key } => {
            let p = schema()?.propose(key, ctx.me);
            let mut v: Vec<String> = p.create_claim_table.into_iter().collect();
            v.extend([
                "START TRANSACTION".to_string(),
                p.claim,
                p.lock_rows,
                p.update,
                "COMMIT".to_string(),
            ]);
            v
        }
        Action::RecordFailure { key, kind, detail } => {
            let s = schema()?;
            if s.tracks_failures() {
                s.record_failure(key, &ctx.me.host, kind, detail)
            } else {
                vec![]
            }
        }
        Action::ClearFailure { key } => {
            let s = schema()?;
            if s.claim_records_failures {
                vec![s.clear_failure(key)]
            } else {
                vec![]
            }
        }
        Action::ChangeSource { channel, spec } => vec![d.change_source(channel, spec, reveal)],
        Action::StartReplica { channel } => vec![d.start_replica(channel)],
        Action::StopReplica { channel } => vec![d.stop_replica(channel)],
        Action::ResetReplica { channel } => vec![d.reset_replica_all(channel)],
        Action::InitSchema => state::init_ddl(),
        Action::Notify(_) => vec![],
    })
}

/// The result of waiting for a channel to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOutcome {
    pub ok: bool,
    /// The IO state or error that decided it.
    pub detail: String,
    /// The SQL thread's error, when it stopped on one: the data, not the source, is at fault.
    pub sql_error: String,
}

/// Everything a run can ask of a node. Reads are methods; the one write is [`Backend::apply`].
pub trait Backend {
    fn facts(&self) -> &NodeFacts;
    /// The rows of a link (empty when the state table cannot be read on this node).
    fn rows(&mut self, link: &Link) -> Result<Vec<StateRow>>;
    /// The link's channel, if configured on this node.
    fn replica(&mut self, link: &Link) -> Result<Option<ReplicaStatus>>;
    /// Why the link is failing, if a node recorded it.
    fn last_failure(&mut self, link: &Link) -> Result<Option<LinkFailure>>;
    /// Whether a candidate answers a read-only login, and its GTID domain (MariaDB).
    fn probe(
        &mut self,
        link: &Link,
        source: &SourceAddr,
    ) -> std::result::Result<Option<u32>, String>;
    /// Waits until the link's channel runs healthily from `source`, or the deadline passes.
    fn await_replica(
        &mut self,
        link: &Link,
        source: &SourceAddr,
        deadline: Duration,
    ) -> Result<ConnectOutcome>;
    /// The write seam.
    fn apply(&mut self, action: &Action) -> Result<Outcome>;
    /// Mails that could not be delivered so far.
    fn mail_failures(&self) -> usize;
}

/// How long a freshly started channel must stay healthy before it counts as working.
pub const SETTLE: Duration = Duration::from_millis(1000);

/// Live or dry-run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Live,
    DryRun,
}

/// The backend on a real server.
pub struct LiveBackend {
    server: LocalServer,
    facts: NodeFacts,
    schema: Option<Schema>,
    mode: Mode,
    mail: MailConfig,
    heartbeat_timeout: i64,
    probe_timeout: Duration,
    out: Box<dyn Write>,
    mail_failures: usize,
    /// Dry-run only: own/peer roles as the printed writes would have left them, so the rest of
    /// the run reads what a live run would read.
    overlay: HashMap<(String, String), Role>,
}

impl LiveBackend {
    pub fn new(
        server: LocalServer,
        facts: NodeFacts,
        schema: Option<Schema>,
        cfg: &Config,
        mode: Mode,
        out: Box<dyn Write>,
    ) -> LiveBackend {
        LiveBackend {
            server,
            facts,
            schema,
            mode,
            mail: cfg.mail.clone(),
            heartbeat_timeout: cfg.timeouts.heartbeat,
            probe_timeout: cfg.local.connect_timeout.min(Duration::from_secs(5)),
            out,
            mail_failures: 0,
            overlay: HashMap::new(),
        }
    }

    pub fn server(&mut self) -> &mut LocalServer {
        &mut self.server
    }

    fn me(&self) -> Me {
        Me {
            host: self.facts.name.clone(),
            local_index: self.facts.local_index,
            weight: self.facts.weight,
        }
    }

    fn print(&mut self, line: &str) {
        let _ = writeln!(self.out, "{}: {line}", self.facts.name);
    }

    fn run_statements(&mut self, masked: &[String], real: &[String]) -> Result<u64> {
        let mut affected = 0;
        for (m, r) in masked.iter().zip(real) {
            log::debug!("{}: {m}", self.facts.name);
            affected = self
                .server
                .execute(r)
                .map_err(|e| Error::db(format!("running `{m}`"), e))?;
        }
        Ok(affected)
    }

    fn propose_live(&mut self, key: &str, masked: &[String]) -> Result<Outcome> {
        let schema = self
            .schema
            .clone()
            .ok_or_else(|| Error::Node("the state table was not read on this node".into()))?;
        let me = self.me();
        let p = schema.propose(key, &me);
        for m in masked {
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
        let lost = |e: &mysql::Error| is_conflict(e);
        let result = (|| -> std::result::Result<Outcome, mysql::Error> {
            self.server.execute("START TRANSACTION")?;
            self.server.execute(&p.claim)?;
            let rows = self.server.locking_rows(&p.lock_rows)?;
            if let Err(why) = state::may_propose(&rows, &me.host, self.heartbeat_timeout) {
                self.server.execute("ROLLBACK")?;
                return Ok(Outcome::Lost(why));
            }
            let n = self.server.execute(&p.update)?;
            self.server.execute("COMMIT")?;
            Ok(Outcome::Done { affected: n })
        })();
        match result {
            Ok(o) => Ok(o),
            Err(e) if lost(&e) => {
                let _ = self.server.execute("ROLLBACK");
                Ok(Outcome::Lost(format!(
                    "another node proposed at the same moment and won ({e})"
                )))
            }
            Err(e) => {
                let _ = self.server.execute("ROLLBACK");
                Err(Error::db("proposing this node", e))
            }
        }
    }
}

/// Galera certification failures and lock conflicts: the other side won the race.
fn is_conflict(e: &mysql::Error) -> bool {
    match e {
        mysql::Error::MySqlError(m) => matches!(m.code, 1213 | 1205 | 1180),
        _ => false,
    }
}

impl Backend for LiveBackend {
    fn facts(&self) -> &NodeFacts {
        &self.facts
    }

    fn rows(&mut self, link: &Link) -> Result<Vec<StateRow>> {
        let Some(schema) = self.schema.clone() else {
            return Ok(Vec::new());
        };
        let mut rows = self.server.rows(&schema, &link.key)?;
        if self.mode == Mode::DryRun {
            for ((key, host), role) in &self.overlay {
                if key != &link.key {
                    continue;
                }
                match rows.iter_mut().find(|r| &r.host == host) {
                    Some(r) => {
                        r.role = *role;
                        if host == &self.facts.name {
                            r.heartbeat_age = Some(0);
                        }
                    }
                    None => rows.push(StateRow {
                        host: host.clone(),
                        local_index: Some(self.facts.local_index),
                        weight: self.facts.weight,
                        role: *role,
                        heartbeat_age: Some(0),
                        update_age: Some(0),
                        current_source: None,
                    }),
                }
            }
        }
        Ok(rows)
    }

    fn replica(&mut self, link: &Link) -> Result<Option<ReplicaStatus>> {
        let flavor = self.facts.flavor.clone();
        Ok(self
            .server
            .replica_statuses(&flavor)?
            .into_iter()
            .find(|s| s.channel == link.channel.as_str()))
    }

    fn last_failure(&mut self, link: &Link) -> Result<Option<LinkFailure>> {
        match &self.schema {
            Some(s) if s.claim_records_failures => self.server.failure(s, &link.key),
            _ => Ok(None),
        }
    }

    fn probe(
        &mut self,
        link: &Link,
        source: &SourceAddr,
    ) -> std::result::Result<Option<u32>, String> {
        server::probe_source(link, source, self.probe_timeout).map(|p| p.gtid_domain_id)
    }

    fn await_replica(
        &mut self,
        link: &Link,
        source: &SourceAddr,
        deadline: Duration,
    ) -> Result<ConnectOutcome> {
        if self.mode == Mode::DryRun {
            return Ok(ConnectOutcome {
                ok: true,
                detail: format!(
                    "dry-run: {} answered a login, assumed to replicate",
                    source.address()
                ),
                sql_error: String::new(),
            });
        }
        let start = Instant::now();
        let mut last = String::from("the channel did not appear");
        // Healthy twice, SETTLE apart: a SQL thread that stops on the first event it applies
        // is caught here, not one run later.
        let mut healthy_since: Option<Instant> = None;
        loop {
            if let Some(s) = self.replica(link)? {
                if s.is_healthy() {
                    match healthy_since {
                        Some(t) if t.elapsed() >= SETTLE => {
                            return Ok(ConnectOutcome {
                                ok: true,
                                detail: s.io_state.clone(),
                                sql_error: String::new(),
                            });
                        }
                        Some(_) => {}
                        None => healthy_since = Some(Instant::now()),
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                healthy_since = None;
                last = format!(
                    "IO thread {} ({}), SQL thread {}{}{}",
                    s.io_running,
                    s.io_state,
                    s.sql_running,
                    if s.last_io_error.is_empty() {
                        String::new()
                    } else {
                        format!("; IO error: {}", s.last_io_error)
                    },
                    if s.last_sql_error.is_empty() {
                        String::new()
                    } else {
                        format!("; SQL error: {}", s.last_sql_error)
                    },
                );
                // A thread that stopped (not merely connecting) will not recover by waiting.
                if s.io_running == crate::flavor::Thread::No
                    || s.sql_running == crate::flavor::Thread::No
                {
                    return Ok(ConnectOutcome {
                        ok: false,
                        detail: last,
                        sql_error: s.last_sql_error.clone(),
                    });
                }
            }
            if start.elapsed() >= deadline {
                return Ok(ConnectOutcome {
                    ok: false,
                    detail: format!("not running after {}s: {last}", deadline.as_secs()),
                    sql_error: String::new(),
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn apply(&mut self, action: &Action) -> Result<Outcome> {
        let me = self.me();
        let dialect = self.facts.flavor.dialect();
        let ctx = RenderCtx {
            schema: self.schema.as_ref(),
            me: &me,
            dialect,
            heartbeat_timeout: self.heartbeat_timeout,
        };
        let masked = render(action, &ctx, Reveal::Masked)?;
        if let Action::Notify(m) = action {
            match self.mode {
                Mode::DryRun => {
                    for l in m.lines(&self.mail, &self.facts.name) {
                        self.print(&l);
                    }
                }
                Mode::Live => {
                    log::info!("{}: mail: {}", self.facts.name, m.subject);
                    if let Err(e) = mail::deliver(&self.mail, &self.facts.name, m) {
                        self.mail_failures += 1;
                        log::error!(
                            "{}: could not send the mail {:?}: {e} (check the [mail] section)",
                            self.facts.name,
                            m.subject
                        );
                    }
                }
            }
            return Ok(Outcome::Done { affected: 0 });
        }
        match self.mode {
            Mode::DryRun => {
                for s in &masked {
                    self.print(s);
                }
                match action {
                    Action::InsertRow { key, role } => {
                        self.overlay.insert((key.clone(), me.host.clone()), *role);
                    }
                    Action::UpdateOwnRow {
                        key,
                        role: Some(role),
                        ..
                    } => {
                        self.overlay.insert((key.clone(), me.host.clone()), *role);
                    }
                    Action::Propose { key } => {
                        self.overlay
                            .insert((key.clone(), me.host.clone()), Role::Proposed);
                    }
                    Action::DemoteSilent { key, host } => {
                        self.overlay.insert((key.clone(), host.clone()), Role::No);
                    }
                    _ => {}
                }
                Ok(Outcome::Done { affected: 1 })
            }
            Mode::Live => {
                if let Action::Propose { key } = action {
                    return self.propose_live(key, &masked);
                }
                let real = render(action, &ctx, Reveal::Secrets)?;
                let affected = match self.run_statements(&masked, &real) {
                    // A failure record shares the claim row with proposals: if one raced it,
                    // write it again.
                    Err(_) if matches!(action, Action::RecordFailure { .. }) => {
                        self.run_statements(&masked, &real)?
                    }
                    r => r?,
                };
                if let (Action::RecordFailure { .. }, Some(s)) = (action, &mut self.schema) {
                    s.has_claim_table = true;
                    s.claim_records_failures = true;
                }
                Ok(Outcome::Done { affected })
            }
        }
    }

    fn mail_failures(&self) -> usize {
        self.mail_failures
    }
}
