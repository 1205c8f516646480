//! The only writer. Every change a run makes — a state-table row, a report, a replication
//! channel, a fence on a peer, a schema, a cluster's pause, a mail, an operator's hook — is an
//! [`Action`] handed to [`Backend::apply`]. There are three backends:
//!
//! * **live** ([`LiveBackend`] in [`Mode::Live`]): runs the statements, sends the mail, runs
//!   the hook ([`hook`]);
//! * **dry-run** ([`LiveBackend`] in [`Mode::DryRun`]): real reads, every write printed
//!   (`<node>: <statement>`, secrets masked) and not run;
//! * **simulated** ([`sim::SimBackend`] in `exec/sim.rs`): a scenario in memory.
//!
//! All three render statements with the same [`render`], so what dry-run prints is exactly what
//! a live run would send, but for masked secrets; and all three decide a proposal with the
//! same check, [`crate::db::clock::may_propose`]. The connections that can write live in
//! [`conn`], visible to this module only: no other module can write, by construction.

pub mod conn;
pub mod hook;
mod joined;
mod live;
pub mod mail;
pub mod server;
pub mod sim;

pub use conn::{
    FenceOutcome, LocalServer, MEMBERS_QUERY, PeerCheck, PeerFailure, STATUS_QUERY, check_peer,
};

/// The connections a daemon keeps from one run to the next: to the local server (with the
/// login that opened it) and to the sources it probed, by `user@host:port`. A cron run keeps
/// nothing.
#[derive(Default)]
pub struct Kept {
    pub local: Option<(server::Login, LocalServer)>,
    sources: std::collections::HashMap<String, crate::memory::Held<mysql::Conn>>,
    /// The state table's schema as the run left it (with the tables it created).
    pub schema: Option<Schema>,
}

impl Kept {
    /// How many connections are kept (local and sources).
    pub fn count(&self) -> usize {
        usize::from(self.local.is_some()) + self.sources.len()
    }
}
pub use live::{LiveBackend, Mode};

use crate::config::SourceAddr;
use crate::config::topology::Link;
use crate::db::clock::Freshness;
use crate::db::flavor::{Dialect, ReplicaStatus, SourceSpec};
use crate::db::sql::{Channel, Reveal};
use crate::db::state::{
    self, FailureKind, LinkFailure, Me, ReportValues, Role, Schema, SilenceGuard, StateRow,
};
use crate::db::switchover::{self, Phase};
use crate::db::{history, pause};
use crate::error::{Error, ProbeError, Result};
use crate::exec::mail::Mail;
use crate::exec::server::{NodeFacts, Probe};
use std::time::Duration;

pub use crate::db::state::{LinkKey, SourceUpdate};

/// A change to a server or the outside world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Add this node's row for a link, and its first report.
    InsertRow {
        key: LinkKey,
        role: Role,
        report: ReportValues,
    },
    /// Refresh this node's row (its heartbeat) and report; change its role when `role` is set.
    UpdateOwnRow {
        key: LinkKey,
        role: Option<Role>,
        source: SourceUpdate,
        report: ReportValues,
    },
    /// A paused node with no running channel: record the pause, leave the heartbeat alone.
    PauseMark {
        key: LinkKey,
        report: ReportValues,
    },
    /// Set a silent peer's `Yes` to `No`, if it is still silent when the statement runs.
    DemoteSilent {
        key: LinkKey,
        host: String,
        guard: SilenceGuard,
    },
    /// Move this node to `Proposed`, race-safe (see [`state::Schema::propose`]), if
    /// [`crate::db::clock::may_propose`] allows it on the rows read inside the transaction.
    Propose {
        key: LinkKey,
        fresh: Freshness,
    },
    /// Record why the link is failing, for every node of the cluster to read.
    RecordFailure {
        key: LinkKey,
        kind: FailureKind,
        detail: String,
    },
    /// Forget the link's failure: it replicates again.
    ClearFailure {
        key: LinkKey,
    },
    /// Every `Failed` row of the link back to `No` (`clear-failure`, by the operator).
    ClearFailedRows {
        key: LinkKey,
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
    /// Stop the channel on a peer of the cluster, before taking over from it.
    Fence {
        host: String,
        address: String,
        channel: Channel,
    },
    /// Create the `percona` schema and tables (`init`).
    InitSchema,
    /// Pause every node of a cluster (`pause`): its row in `percona.replication_pause`, for
    /// `seconds` or until `resume`.
    PauseCluster {
        cluster: String,
        by: String,
        reason: String,
        seconds: Option<u64>,
    },
    /// End a cluster's pause (`resume`).
    ResumeCluster {
        cluster: String,
    },
    /// The `switchover` command's request: `from`, the link's replica, is to hand the link
    /// to `to`; refused (0 rows) while another request is under way ([`switchover`]).
    RequestSwitchover {
        key: LinkKey,
        from: String,
        to: String,
        by: String,
        /// Seconds a request lives: the silent threshold.
        threshold: i64,
    },
    /// Moves a request that names `to` from one phase to the next (the target's `ready`,
    /// `done` or `failed`; or `failed` by the old replica).
    AdvanceSwitchover {
        key: LinkKey,
        to: String,
        from_phase: Phase,
        phase: Phase,
        source: Option<String>,
        detail: Option<String>,
    },
    /// The old replica's hand-off, in one transaction: the request moves to `stopped` with
    /// the position its channel stopped at, and its row to `No` with its report. Lost when the
    /// request no longer names it or is no longer under way.
    HandOff {
        key: LinkKey,
        position: String,
        source: String,
        threshold: i64,
        report: ReportValues,
    },
    Notify(Mail),
    /// Write one row of the link's history (`key` empty for an event of the node), and forget
    /// the cluster's rows past their time ([`crate::db::history`]).
    RecordHistory {
        cluster: String,
        key: String,
        event: &'static str,
        detail: String,
    },
    /// Run an operator's hook command for an event (`[hooks]`).
    Hook(hook::HookCall),
}

/// What a write can change of what a run has read (the live executor keeps some reads for a
/// moment; see `live::Cached`).
#[derive(Debug, PartialEq, Eq)]
pub enum Changes<'a> {
    /// Nothing a run reads: mail, history.
    Nothing,
    /// The state table's rows of one link (its rows, reports and failure), nothing else: not
    /// a channel, not the view, not the switchover table.
    LinkRows(&'a LinkKey),
    /// A channel, a peer, the switchover table, the schema, or whatever an operator's hook
    /// does.
    Anything,
}

impl Action {
    /// The link whose rows in the state table this action writes, when that is all it
    /// writes (its rows, reports and failure).
    pub fn row_key(&self) -> Option<&LinkKey> {
        match self {
            Action::InsertRow { key, .. }
            | Action::UpdateOwnRow { key, .. }
            | Action::PauseMark { key, .. }
            | Action::DemoteSilent { key, .. }
            | Action::Propose { key, .. }
            | Action::RecordFailure { key, .. }
            | Action::ClearFailure { key }
            | Action::ClearFailedRows { key } => Some(key),
            _ => None,
        }
    }

    /// The link of a report that changes nothing but the node's own row's heartbeat and
    /// report (no role): the live executor may commit it with the next links' (`joined`).
    pub fn heartbeat_of(&self) -> Option<&LinkKey> {
        match self {
            Action::UpdateOwnRow {
                key, role: None, ..
            } => Some(key),
            _ => None,
        }
    }

    /// What this action can change of what a run has read. An action not named here is
    /// taken to change anything.
    pub fn changes(&self) -> Changes<'_> {
        match (self, self.row_key()) {
            (Action::Notify(_) | Action::RecordHistory { .. }, _) => Changes::Nothing,
            (_, Some(key)) => Changes::LinkRows(key),
            (_, None) => Changes::Anything,
        }
    }
}

/// What an action did.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// Done (or printed, in dry-run); the affected row count where there is one.
    Done { affected: u64 },
    /// A proposal that lost: another node holds the link, or won a concurrent race.
    Lost(String),
    /// What a fence found.
    Fenced(FenceOutcome),
}

/// The statements that open and close a transaction, as rendered and run.
pub const BEGIN: &str = "START TRANSACTION";
pub const COMMIT: &str = "COMMIT";

/// What the renderer needs to know.
pub struct RenderCtx<'a> {
    pub schema: Option<&'a Schema>,
    pub me: &'a Me,
    pub dialect: &'a dyn Dialect,
}

/// The state table's schema, which a write needs: it is read when the node starts its run.
pub fn require_schema(schema: Option<&Schema>) -> Result<&Schema> {
    schema.ok_or_else(|| {
        Error::Internal("the state table was not read on this node, so it cannot be written".into())
    })
}

/// The statements of an action, in order. Mail renders to no statement; a proposal renders to
/// its winning path (see [`proposal_lines`] for a lost one).
pub fn render(action: &Action, ctx: &RenderCtx, reveal: Reveal) -> Result<Vec<String>> {
    if let Some(v) = render_own_row(action, ctx)? {
        return Ok(v);
    }
    let schema = || require_schema(ctx.schema);
    let d = ctx.dialect;
    Ok(match action {
        Action::InsertRow { .. }
        | Action::UpdateOwnRow { .. }
        | Action::PauseMark { .. }
        | Action::HandOff { .. } => Vec::new(),
        Action::DemoteSilent { key, host, guard } => {
            vec![schema()?.demote_silent(key, host, guard)]
        }
        Action::Propose { key, .. } => proposal_lines(schema()?, key, ctx.me, true),
        Action::RecordFailure { key, kind, detail } => {
            let s = schema()?;
            if s.tracks_failures() {
                s.record_failure(key, &ctx.me.host, *kind, detail)
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
        Action::ClearFailedRows { key } => vec![schema()?.clear_failed_rows(key)],
        Action::ChangeSource { channel, spec } => vec![d.change_source(channel, spec, reveal)],
        Action::StartReplica { channel } => vec![d.start_replica(channel)],
        Action::StopReplica { channel } => vec![d.stop_replica(channel)],
        Action::ResetReplica { channel } => vec![d.reset_replica_all(channel)],
        Action::Fence {
            host,
            address,
            channel,
        } => vec![format!(
            "[on {host} at {address}] {}",
            d.stop_replica(channel)
        )],
        Action::InitSchema => crate::db::init_ddl(),
        Action::PauseCluster { .. }
        | Action::ResumeCluster { .. }
        | Action::RequestSwitchover { .. }
        | Action::AdvanceSwitchover { .. }
        | Action::RecordHistory { .. } => render_cluster(action, ctx),
        Action::Notify(_) | Action::Hook(_) => vec![],
    })
}

/// The writes of rows the whole cluster shares: the pause, the switchover request, the
/// history.
fn render_cluster(action: &Action, ctx: &RenderCtx) -> Vec<String> {
    match action {
        Action::PauseCluster {
            cluster,
            by,
            reason,
            seconds,
        } => {
            let mut v = Vec::new();
            if !ctx.schema.is_some_and(|s| s.has_pause_table) {
                v.push(pause::ddl());
            }
            v.push(pause::pause(cluster, by, reason, *seconds));
            v
        }
        Action::ResumeCluster { cluster } => {
            if ctx.schema.is_some_and(|s| s.has_pause_table) {
                vec![pause::resume(cluster)]
            } else {
                vec![]
            }
        }
        Action::RequestSwitchover {
            key,
            from,
            to,
            by,
            threshold,
        } => {
            let mut v = Vec::new();
            if !ctx.schema.is_some_and(|s| s.has_switchover_table) {
                v.push(switchover::ddl());
            }
            v.extend(switchover::request(key, from, to, by, *threshold));
            v
        }
        Action::AdvanceSwitchover {
            key,
            to,
            from_phase,
            phase,
            source,
            detail,
        } => vec![switchover::advance(
            key,
            to,
            *from_phase,
            *phase,
            source.as_deref(),
            detail.as_deref(),
        )],
        Action::RecordHistory {
            cluster,
            key,
            event,
            detail,
        } => {
            let mut v = Vec::new();
            if !ctx.schema.is_some_and(|s| s.has_history_table) {
                v.push(history::ddl());
            }
            v.extend(history::record(cluster, key, &ctx.me.host, event, detail));
            v
        }
        _ => Vec::new(),
    }
}

/// The writes of this node's own row, each with its report: `None` for another action.
fn render_own_row(action: &Action, ctx: &RenderCtx) -> Result<Option<Vec<String>>> {
    let schema = || require_schema(ctx.schema);
    Ok(Some(match action {
        Action::InsertRow { key, role, report } => {
            let s = schema()?;
            with_report(s, ctx, key, vec![s.insert_row(key, ctx.me, *role)], report)
        }
        Action::UpdateOwnRow {
            key,
            role,
            source,
            report,
        } => {
            let s = schema()?;
            with_report(
                s,
                ctx,
                key,
                vec![s.update_own(key, ctx.me, *role, source)],
                report,
            )
        }
        Action::PauseMark { key, report } => {
            let s = schema()?;
            let mut v = report_tables(s);
            v.extend(fence_table(s, report));
            v.push(s.pause_mark(key, ctx.me, report));
            v.extend(position(s, key, ctx.me, report));
            v.extend(fence_note(s, key, ctx.me, report));
            v
        }
        // The hand-off's first statement decides: the executor rolls back when it changed
        // no row.
        Action::HandOff {
            key,
            position,
            source,
            threshold,
            report,
        } => {
            let s = schema()?;
            let hand_off = switchover::hand_off(key, &ctx.me.host, position, source, *threshold);
            let row = s.update_own(key, ctx.me, Some(Role::No), &SourceUpdate::Clear);
            with_report(s, ctx, key, vec![hand_off, row], report)
        }
        _ => return Ok(None),
    }))
}

/// The report's tables, created by the first report that finds them missing.
fn report_tables(s: &Schema) -> Vec<String> {
    [
        (!s.has_node_table).then(state::node_table_ddl),
        (!s.has_position_table).then(state::position_table_ddl),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `rows` (writes of this node's row) and its report in one transaction: one certification
/// and one log flush per report instead of two, on every run of every node.
fn with_report(
    s: &Schema,
    ctx: &RenderCtx,
    key: &str,
    rows: Vec<String>,
    report: &ReportValues,
) -> Vec<String> {
    let mut v = report_tables(s);
    v.extend(fence_table(s, report));
    v.push(BEGIN.into());
    v.extend(rows);
    v.push(s.report(key, ctx.me, report));
    v.extend(position(s, key, ctx.me, report));
    v.extend(fence_note(s, key, ctx.me, report));
    v.push(COMMIT.into());
    v
}

/// The fence table's DDL, before a report that writes a fence record and finds no table.
fn fence_table(s: &Schema, report: &ReportValues) -> Option<String> {
    (report.fence.is_some() && !s.has_fence_table).then(state::fence_table_ddl)
}

/// The position's statement, when the report carries one.
fn position(s: &Schema, key: &str, me: &Me, report: &ReportValues) -> Option<String> {
    report
        .position
        .as_ref()
        .map(|p| s.report_position(key, me, p))
}

/// The fence record's statement, when the report carries a changed one.
fn fence_note(s: &Schema, key: &str, me: &Me, report: &ReportValues) -> Option<String> {
    report.fence.as_ref().map(|n| s.fence_note(key, me, n))
}

/// A proposal's statements, with the read of the link's switchover request where the table
/// exists.
pub fn proposal(schema: &Schema, key: &str, me: &Me) -> state::Proposal {
    let mut p = schema.propose(key, me);
    p.read_switchover = schema
        .has_switchover_table
        .then(|| format!("{} FOR UPDATE", switchover::select(key)));
    p
}

/// The statements of a proposal as printed: the winning path ends with the update and
/// `COMMIT`, a lost one with `ROLLBACK` after the locking read.
pub fn proposal_lines(schema: &Schema, key: &str, me: &Me, won: bool) -> Vec<String> {
    let p = proposal(schema, key, me);
    let mut v: Vec<String> = p.create_claim_table.into_iter().collect();
    v.extend(["START TRANSACTION".to_string(), p.claim, p.lock_rows]);
    v.extend(p.read_switchover);
    if won {
        v.extend([p.update, "COMMIT".to_string()]);
    } else {
        v.push("ROLLBACK".to_string());
    }
    v
}

/// The result of waiting for a channel to run.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ConnectOutcome {
    /// Both threads run, and still ran a second later; the IO state.
    Replicating(String),
    /// It did not run in time, or a thread stopped without an SQL error: the source, or the
    /// way to it, is at fault.
    NotRunning(String),
    /// The SQL thread stopped on an error: the data, not the source, is at fault.
    SqlError(String),
}

impl ConnectOutcome {
    /// The outcomes' names, as the policy sees them (`CONNECT.<name with _ for ->`).
    pub const NAMES: [&'static str; 3] = ["replicating", "not-running", "sql-error"];

    /// Its name, as the policy sees it.
    pub fn name(&self) -> &'static str {
        match self {
            ConnectOutcome::Replicating(_) => "replicating",
            ConnectOutcome::NotRunning(_) => "not-running",
            ConnectOutcome::SqlError(_) => "sql-error",
        }
    }

    pub fn is_replicating(&self) -> bool {
        matches!(self, ConnectOutcome::Replicating(_))
    }

    /// What decided it, in words.
    pub fn detail(&self) -> &str {
        match self {
            ConnectOutcome::Replicating(d)
            | ConnectOutcome::NotRunning(d)
            | ConnectOutcome::SqlError(d) => d,
        }
    }
}

/// Everything a run can ask of a node. Reads are methods; the one write is [`Backend::apply`].
pub trait Backend {
    fn facts(&self) -> &NodeFacts;
    /// This node's identity as its rows and reports record it.
    fn me(&self) -> &Me;
    /// The rows of a link, with their nodes' reports (empty when the state table cannot be
    /// read on this node).
    fn rows(&mut self, link: &Link) -> Result<Vec<StateRow>>;
    /// The link's channel, if configured on this node.
    fn replica(&mut self, link: &Link) -> Result<Option<ReplicaStatus>>;
    /// Why the link is failing, if a node recorded it.
    fn last_failure(&mut self, link: &Link) -> Result<Option<LinkFailure>>;
    /// A read-only login to a source candidate: its GTID domain and place in its cluster, or
    /// why it does not answer.
    fn probe(&mut self, link: &Link, source: &SourceAddr)
    -> std::result::Result<Probe, ProbeError>;
    /// The user the manager logs in as to fence a peer, for messages.
    fn fence_login(&self) -> String {
        "the manager's login".into()
    }
    /// The other members of the current view with their client address: the peers whose
    /// fence login a run checks. None where the view is not known, or in a simulation.
    fn fence_check_targets(&mut self) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }
    /// Checks, changing nothing, that the manager's login could fence the peer at `address`
    /// ([`check_peer`]). `None` where nothing real can be reached (a simulation).
    fn check_fence_login(&mut self, _address: &str) -> Option<PeerCheck> {
        None
    }
    /// Where a current member of the cluster accepts connections (for a peer that never
    /// reported its address).
    fn member_address(&mut self, host: &str) -> Result<Option<String>>;
    /// Waits until the link's channel runs healthily from `source`, or the deadline passes.
    fn await_replica(
        &mut self,
        link: &Link,
        source: &SourceAddr,
        deadline: Duration,
    ) -> Result<ConnectOutcome>;
    /// The link's switchover request, if one was ever made (`None` also where the table
    /// does not exist).
    fn switchover(&mut self, link: &Link) -> Result<Option<switchover::Request>>;
    /// Reads the request again until it has left `phase` or `max` has passed (a live backend
    /// polls; a simulation reads once: its peers act between runs, never within one).
    fn await_switchover(
        &mut self,
        link: &Link,
        phase: Phase,
        max: Duration,
    ) -> Result<Option<switchover::Request>> {
        let _ = (phase, max);
        self.switchover(link)
    }
    /// Waits, at most `max`, until this node has applied a GTID position another node's
    /// channel stopped at; `true` once it has.
    fn await_position(&mut self, position: &str, max: Duration) -> Result<bool>;
    /// The write seam.
    fn apply(&mut self, action: &Action) -> Result<Outcome>;
    /// Commits the reports still waiting (the live executor joins heartbeat-only reports into
    /// one commit; see `exec/joined.rs`), and returns the reports whose commit failed in this
    /// run, by link: those links did not report. None by default (a report is written at once).
    fn settle_reports(&mut self) -> Vec<(LinkKey, Error)> {
        Vec::new()
    }
    /// Mails that could not be delivered so far.
    fn mail_failures(&self) -> usize;
    /// Sends the mails the run queued (a live run queues them, to send at its end: a mail
    /// server that is slow or down never delays a change or a report). After a failure, the
    /// rest of the run's mails are not tried, so a run waits for one `[mail] timeout` at most
    /// on a dead server; each failure is logged and counted.
    fn send_mail(&mut self) {}
    /// The connections worth keeping for the next run (a daemon's); none by default.
    fn into_kept(self: Box<Self>) -> Kept {
        Kept::default()
    }
}

/// The outcome of a channel that stopped or never came up, for [`Backend::await_replica`].
pub fn stalled(s: &ReplicaStatus) -> String {
    format!(
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
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_of_a_links_rows_changes_nothing_else_a_run_has_read() {
        let key = LinkKey::from("DC1-DC2");
        assert_eq!(
            Action::ClearFailure { key: key.clone() }.changes(),
            Changes::LinkRows(&key)
        );
        let start = Action::StartReplica {
            channel: Channel::named("DC1-DC2").unwrap(),
        };
        assert_eq!(start.changes(), Changes::Anything);
        let history = Action::RecordHistory {
            cluster: "DC1".into(),
            key: String::new(),
            event: "paused",
            detail: String::new(),
        };
        assert_eq!(history.changes(), Changes::Nothing);
    }
}
