//! The state table `percona.replication`, in both generations found in the field, and the
//! claim table that makes a proposal race-safe.
//!
//! * **Seed** (Percona's 2016 script): `host, localIndex, isSlave, lastUpdate, lastHeartbeat,
//!   cluster`, primary key `(host, cluster)`. One link per cluster; the rows of the link are the
//!   rows whose `cluster` is the local cluster's name; replication uses the default channel.
//! * **Multi-cluster** (2017 and later): `connectionName` = `<local>-<remote>`, `weight`,
//!   `isSlave` or `isReplica`, and optionally `currentSource`. One channel per link, named like
//!   the connection.
//!
//! The generation is detected from `information_schema` ([`Schema::from_columns`]); nothing has
//! to be migrated. This module only renders SQL text and decides from rows; the executor reads
//! and writes.
//!
//! Beside the state table this tool keeps `percona.replication_node`, which the original script
//! never reads: each node's own report per link ([`NodeReport`]): a sequence number that every
//! report advances (readers judge silence by watching it advance on their own clock, see
//! `clock.rs`), the address where peers reach its server (to fence it), the state of its
//! channel, and since when it is paused.
//!
//! Ages (`heartbeat_age`, `update_age`) are computed by the reading server (`UNIX_TIMESTAMP()`
//! minus the column, written by another node's clock): they are shown, and used only for rows
//! of nodes that do not report (the original script); silence is judged by `clock.rs`.

use crate::db::flavor::ReplicaStatus;
use crate::db::sql::quote;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

pub const SCHEMA: &str = "percona";

/// How the state table names a link (`<local>-<remote>`, or the local cluster's name in the
/// seed generation): the key of every per-link record a run keeps, and of every write.
///
/// A newtype, so that a map keyed by links cannot be handed a node's name or a remote's. It
/// reads as a `&str` where SQL is rendered (`Deref`), and a map keyed by it can be searched
/// with a `&str` (`Borrow`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct LinkKey(String);

impl LinkKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for LinkKey {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for LinkKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<&str> for LinkKey {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for LinkKey {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl From<&str> for LinkKey {
    fn from(s: &str) -> LinkKey {
        LinkKey(s.to_string())
    }
}

impl From<String> for LinkKey {
    fn from(s: String) -> LinkKey {
        LinkKey(s)
    }
}

/// A node's role for one link, as written in the state table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum Role {
    No,
    Yes,
    Proposed,
    Failed,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::No, Role::Yes, Role::Proposed, Role::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::No => "No",
            Role::Yes => "Yes",
            Role::Proposed => "Proposed",
            Role::Failed => "Failed",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown state {s:?}: expected one of No, Yes, Proposed, Failed")
            })
    }
}

/// One row of a link in the state table, with the node's report when it has one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct StateRow {
    pub host: String,
    pub local_index: Option<i64>,
    pub weight: i64,
    pub role: Role,
    /// Seconds since `lastHeartbeat`: the reading server's clock minus the writing node's.
    pub heartbeat_age: Option<i64>,
    /// Seconds since `lastUpdate` (the last change of role), computed the same way.
    pub update_age: Option<i64>,
    pub current_source: Option<String>,
    /// What the node reported in `percona.replication_node`; `None` for a node that never
    /// reported (the original script, or an older version of this tool).
    pub report: Option<NodeReport>,
    /// The reading server's clock (`UNIX_TIMESTAMP()`) when the row was read.
    pub read_at: i64,
    /// Whether the row's node was a member of the reading node's Primary view when the row was
    /// read (`mysql.wsrep_cluster_members`): `Some(false)` when it has left it. `None` when
    /// membership is not known: no such table (5.7), not readable, its names do not match the
    /// rows', or a row without a report (the original script names its rows otherwise).
    pub in_view: Option<bool>,
}

/// The state of a node's replication channel for a link, as it reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelState {
    /// No channel is configured.
    None,
    /// Configured, no thread runs.
    Stopped,
    /// A thread runs (or the IO thread is connecting), but not both healthily.
    Running,
    /// Both threads run and the IO thread is connected.
    Healthy,
}

impl ChannelState {
    pub const ALL: [ChannelState; 4] = [
        ChannelState::None,
        ChannelState::Stopped,
        ChannelState::Running,
        ChannelState::Healthy,
    ];

    /// The state of a channel as `SHOW ... STATUS` reports it.
    pub fn of(status: Option<&ReplicaStatus>) -> ChannelState {
        use crate::db::flavor::Thread;
        match status {
            None => ChannelState::None,
            Some(s) if s.is_healthy() => ChannelState::Healthy,
            Some(s)
                if matches!(s.io_running, Thread::Yes | Thread::Connecting)
                    || s.sql_running == Thread::Yes =>
            {
                ChannelState::Running
            }
            Some(_) => ChannelState::Stopped,
        }
    }

    /// A thread of the channel runs: the node holds a connection to a source or applies.
    pub fn runs(self) -> bool {
        matches!(self, ChannelState::Running | ChannelState::Healthy)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::None => "none",
            ChannelState::Stopped => "stopped",
            ChannelState::Running => "running",
            ChannelState::Healthy => "healthy",
        }
    }

    /// Parses the stored text; anything unknown reads as `running`, the cautious answer.
    pub fn parse(s: &str) -> ChannelState {
        match s {
            "none" => ChannelState::None,
            "stopped" => ChannelState::Stopped,
            "healthy" => ChannelState::Healthy,
            _ => ChannelState::Running,
        }
    }
}

impl fmt::Display for ChannelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node's own report for a link, from `percona.replication_node`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct NodeReport {
    /// Advances by one with every report.
    pub seq: u64,
    /// `host:port` where peers reach the node's server, to fence it.
    pub address: Option<String>,
    pub channel: ChannelState,
    pub source: Option<String>,
    /// Seconds since the node's pause file appeared (by the reading server's clock), while
    /// the node is paused.
    pub paused_for: Option<i64>,
    /// How many times the node stopped another node's channel before taking over this link.
    pub fences: u64,
    /// The peer whose fence failed while the node tried to take the link over, and why, while
    /// that holds its takeover (`percona.replication_fence`).
    pub blocked: Option<String>,
    /// Seconds since the takeover began to wait (by the reading server's clock).
    pub blocked_for: Option<i64>,
    /// The peers the node's check found it could not fence, and why.
    pub unfenceable: Option<String>,
    /// Its Galera state, its channel's lag and executed GTID position, as of the report
    /// (`percona.replication_position`).
    pub position: Option<Position>,
}

/// What a node says of its state and its channel's position with every report, in
/// `percona.replication_position`, so that `status` on any node shows the whole cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct Position {
    /// `wsrep_local_state_comment` (`Synced`, `Donor/Desynced`, ...).
    pub state: String,
    /// The channel's `Seconds_Behind_Master`, while it has a channel that says one.
    pub lag: Option<i64>,
    /// The channel's executed GTID position (MariaDB `Gtid_Slave_Pos`, MySQL
    /// `Executed_Gtid_Set`), while it has a channel.
    pub gtid: Option<String>,
}

/// What a node writes into its report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportValues {
    pub channel: ChannelState,
    pub source: Option<String>,
    /// Unix time the pause file appeared, while paused.
    pub paused_since: Option<i64>,
    /// Fences done since the last report.
    pub new_fences: u64,
    /// What the node's fence record says now, when it changed since it was last written.
    pub fence: Option<FenceNote>,
    /// Its state and its channel's position, written beside the report.
    pub position: Option<Position>,
}

/// A node's fence record for a link, in `percona.replication_fence`: written only when it
/// changes, so a healthy cluster writes nothing there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FenceNote {
    /// The peer that holds this node's takeover of the link (could not be fenced), and why.
    pub blocked: Option<String>,
    /// The peers that this node's check found it could not fence, and why.
    pub unfenceable: Option<String>,
}

/// What an own-row write does to the recorded source (`currentSource`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceUpdate {
    Keep,
    Set(String),
    Clear,
}

/// How a demotion makes sure the peer is still silent when the statement runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SilenceGuard {
    /// The peer's report sequence is still the one this node watched stand still.
    Seq(u64),
    /// A node that does not report: its heartbeat is older than this many seconds, by the
    /// servers' clocks.
    OlderThan(i64),
}

/// Which generation of `percona.replication` this cluster has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Generation {
    Seed,
    Multi {
        /// `isSlave` (2017) or `isReplica` (later).
        role_column: &'static str,
        has_weight: bool,
        has_current_source: bool,
    },
}

impl Generation {
    /// The generation in words.
    pub fn describe(&self) -> String {
        match self {
            Generation::Seed => "seed generation: one link per cluster, default channel".into(),
            Generation::Multi {
                role_column,
                has_current_source,
                ..
            } => format!(
                "multi-cluster generation with {role_column}{}",
                if *has_current_source {
                    " and currentSource"
                } else {
                    ""
                }
            ),
        }
    }
}

/// What exists in the `percona` schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Schema {
    pub generation: Generation,
    /// `percona.replication_claim` exists (it is created on the first proposal otherwise).
    pub has_claim_table: bool,
    /// The claim table has the columns that record why a link is failing.
    pub claim_records_failures: bool,
    /// `percona.cluster`, `percona.link` and `percona.weight` exist.
    pub has_topology_tables: bool,
    /// `percona.replication_node` exists (it is created by the first report otherwise).
    pub has_node_table: bool,
    /// `percona.replication_pause` exists (created by `init` and by the first `pause`).
    pub has_pause_table: bool,
    /// `percona.replication_fence` exists (created by `init` and by the first fence record).
    pub has_fence_table: bool,
    /// `percona.replication_history` exists (created by `init` and by the first event).
    pub has_history_table: bool,
    /// `percona.replication_position` exists (created by `init` and by the first report).
    pub has_position_table: bool,
    /// `percona.replication_switchover` exists (created by `init` and by the first
    /// `switchover`).
    pub has_switchover_table: bool,
}

/// Why the state table cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchemaProblem {
    Missing,
    Unrecognised(String),
}

impl Schema {
    /// The servers of a simulation (`simulate` and the model checker): every table this tool
    /// keeps in `generation`, without the topology and pause tables, and with the history and
    /// switchover tables as the simulation says.
    pub fn simulated(
        generation: Generation,
        has_history_table: bool,
        has_switchover_table: bool,
    ) -> Schema {
        Schema {
            generation,
            has_claim_table: true,
            claim_records_failures: true,
            has_topology_tables: false,
            has_node_table: true,
            has_pause_table: false,
            has_fence_table: true,
            has_history_table,
            has_position_table: true,
            has_switchover_table,
        }
    }

    /// Decides the generation from `(table, column)` pairs of `information_schema.COLUMNS` for
    /// the `percona` schema.
    pub fn from_columns(cols: &[(String, String)]) -> Result<Schema, SchemaProblem> {
        let has = |table: &str, col: &str| {
            cols.iter()
                .any(|(t, c)| t.eq_ignore_ascii_case(table) && c.eq_ignore_ascii_case(col))
        };
        let table = |t: &str| cols.iter().any(|(x, _)| x.eq_ignore_ascii_case(t));
        if !table("replication") {
            return Err(SchemaProblem::Missing);
        }
        for c in ["host", "localIndex", "lastUpdate", "lastHeartbeat"] {
            if !has("replication", c) {
                return Err(SchemaProblem::Unrecognised(format!(
                    "percona.replication has no column {c}"
                )));
            }
        }
        let role_column = if has("replication", "isReplica") {
            "isReplica"
        } else if has("replication", "isSlave") {
            "isSlave"
        } else {
            return Err(SchemaProblem::Unrecognised(
                "percona.replication has neither isSlave nor isReplica".into(),
            ));
        };
        let generation = if has("replication", "connectionName") {
            Generation::Multi {
                role_column,
                has_weight: has("replication", "weight"),
                has_current_source: has("replication", "currentSource"),
            }
        } else if has("replication", "cluster") {
            Generation::Seed
        } else {
            return Err(SchemaProblem::Unrecognised(
                "percona.replication has neither connectionName nor cluster".into(),
            ));
        };
        Ok(Schema {
            generation,
            has_claim_table: table("replication_claim"),
            claim_records_failures: has("replication_claim", "failedKind"),
            has_topology_tables: table("cluster") && table("link") && table("weight"),
            has_node_table: has("replication_node", "seq"),
            has_pause_table: has("replication_pause", "pausedUntil"),
            has_fence_table: has("replication_fence", "blocked"),
            has_history_table: has("replication_history", "happenedAt"),
            has_position_table: has("replication_position", "gtidExecuted"),
            has_switchover_table: has("replication_switchover", "phase"),
        })
    }

    /// The query that lists the `percona` schema's columns.
    pub fn columns_query() -> String {
        format!(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} ORDER BY TABLE_NAME, ORDINAL_POSITION",
            quote(SCHEMA)
        )
    }

    pub fn is_seed(&self) -> bool {
        self.generation == Generation::Seed
    }

    fn role_column(&self) -> &'static str {
        match self.generation {
            Generation::Seed => "isSlave",
            Generation::Multi { role_column, .. } => role_column,
        }
    }

    fn key_column(&self) -> &'static str {
        match self.generation {
            Generation::Seed => "cluster",
            Generation::Multi { .. } => "connectionName",
        }
    }

    fn has_weight(&self) -> bool {
        matches!(
            self.generation,
            Generation::Multi {
                has_weight: true,
                ..
            }
        )
    }

    fn has_current_source(&self) -> bool {
        matches!(
            self.generation,
            Generation::Multi {
                has_current_source: true,
                ..
            }
        )
    }

    fn where_link(&self, key: &str) -> String {
        format!("{} = {}", self.key_column(), quote(key))
    }

    fn where_row(&self, key: &str, host: &str) -> String {
        format!("{} AND host = {}", self.where_link(key), quote(host))
    }

    /// Reads every row of a link with the node's report, ages computed by the server. The
    /// columns are always `host, localIndex, weight, role, heartbeat_age, update_age,
    /// currentSource, seq, address, channel, source, paused_for, fences, now, blocked,
    /// blocked_for, unfenceable`.
    pub fn select_rows(&self, key: &str) -> String {
        self.select_rows_where(&format!("r.{} = {}", self.key_column(), quote(key)), "")
    }

    /// [`Schema::select_rows`] for several links in one statement, each row ending with its
    /// link's key (see [`parse_rows_by_key`]).
    pub fn select_rows_of(&self, keys: &[&str]) -> String {
        let list: Vec<String> = keys.iter().map(|k| quote(k)).collect();
        self.select_rows_where(
            &format!("r.{} IN ({})", self.key_column(), list.join(", ")),
            &format!(", r.{}", self.key_column()),
        )
    }

    fn select_rows_where(&self, condition: &str, key_column: &str) -> String {
        let (fence, fence_join) = if self.has_fence_table {
            (
                "f.blocked, UNIX_TIMESTAMP() - UNIX_TIMESTAMP(f.blockedSince), f.unfenceable",
                format!(
                    " LEFT JOIN {SCHEMA}.replication_fence f ON f.connectionName = r.{k} AND f.host = r.host",
                    k = self.key_column()
                ),
            )
        } else {
            ("NULL, NULL, NULL", String::new())
        };
        let (position, position_join) = if self.has_position_table {
            (
                "p.nodeState, p.lagSeconds, p.gtidExecuted",
                format!(
                    " LEFT JOIN {SCHEMA}.replication_position p ON p.connectionName = r.{k} AND p.host = r.host",
                    k = self.key_column()
                ),
            )
        } else {
            ("NULL, NULL, NULL", String::new())
        };
        let (report, join) = if self.has_node_table {
            (
                "n.seq, n.address, n.channel, n.source, UNIX_TIMESTAMP() - UNIX_TIMESTAMP(n.pausedSince), n.fences",
                format!(
                    " LEFT JOIN {SCHEMA}.replication_node n ON n.connectionName = r.{k} AND n.host = r.host",
                    k = self.key_column()
                ),
            )
        } else {
            ("NULL, NULL, NULL, NULL, NULL, NULL", String::new())
        };
        format!(
            "SELECT r.host, r.localIndex, {}, r.{}, UNIX_TIMESTAMP() - UNIX_TIMESTAMP(r.lastHeartbeat), UNIX_TIMESTAMP() - UNIX_TIMESTAMP(r.lastUpdate), {}, {report}, UNIX_TIMESTAMP(), {fence}, {position}{key_column} FROM {SCHEMA}.replication r{join}{fence_join}{position_join} WHERE {condition} ORDER BY r.host",
            if self.has_weight() { "r.weight" } else { "0" },
            self.role_column(),
            if self.has_current_source() {
                "r.currentSource"
            } else {
                "NULL"
            },
        )
    }

    /// Adds this node's row for a link.
    pub fn insert_row(&self, key: &str, me: &Me, role: Role) -> String {
        let mut cols = vec![
            "host".to_string(),
            self.key_column().to_string(),
            "localIndex".into(),
            self.role_column().into(),
            "lastUpdate".into(),
            "lastHeartbeat".into(),
        ];
        let mut vals = vec![
            quote(&me.host),
            quote(key),
            me.local_index.to_string(),
            quote(role.as_str()),
            "NOW()".into(),
            "NOW()".into(),
        ];
        if self.has_weight() {
            cols.push("weight".into());
            vals.push(me.weight.to_string());
        }
        format!(
            "INSERT INTO {SCHEMA}.replication ({}) VALUES ({})",
            cols.join(", "),
            vals.join(", ")
        )
    }

    /// Updates this node's own row: always its heartbeat, index and weight; its role (and the
    /// time of the change) when `role` is given; its source when `source` is given and the
    /// table has the column.
    pub fn update_own(
        &self,
        key: &str,
        me: &Me,
        role: Option<Role>,
        source: &SourceUpdate,
    ) -> String {
        let mut set = Vec::new();
        match role {
            Some(r) => {
                set.push(format!("{} = {}", self.role_column(), quote(r.as_str())));
                set.push("lastUpdate = NOW()".into());
            }
            // Assigning the column to itself stops ON UPDATE CURRENT_TIMESTAMP (seed table), so
            // lastUpdate keeps meaning "last change of role".
            None => set.push("lastUpdate = lastUpdate".into()),
        }
        set.push("lastHeartbeat = NOW()".into());
        set.push(format!("localIndex = {}", me.local_index));
        if self.has_weight() {
            set.push(format!("weight = {}", me.weight));
        }
        if self.has_current_source() {
            match source {
                SourceUpdate::Keep => {}
                SourceUpdate::Set(a) => set.push(format!("currentSource = {}", quote(a))),
                SourceUpdate::Clear => set.push("currentSource = NULL".into()),
            }
        }
        format!(
            "UPDATE {SCHEMA}.replication SET {} WHERE {}",
            set.join(", "),
            self.where_row(key, &me.host)
        )
    }

    /// Sets a silent peer's `Yes` back to `No`, only if it is still `Yes` and still silent when
    /// the statement runs, so a peer that reported a moment ago is never demoted: its report
    /// sequence has not moved (a compare-and-set, no clock involved), or, for a node that does
    /// not report, its heartbeat is older than the threshold.
    pub fn demote_silent(&self, key: &str, host: &str, guard: &SilenceGuard) -> String {
        let role = self.role_column();
        match guard {
            SilenceGuard::Seq(seq) => format!(
                "UPDATE {SCHEMA}.replication r JOIN {SCHEMA}.replication_node n ON n.connectionName = r.{k} AND n.host = r.host SET r.{role} = 'No', r.lastUpdate = NOW() WHERE r.{k} = {} AND r.host = {} AND r.{role} = 'Yes' AND n.seq = {seq}",
                quote(key),
                quote(host),
                k = self.key_column(),
            ),
            SilenceGuard::OlderThan(secs) => format!(
                "UPDATE {SCHEMA}.replication SET {role} = 'No', lastUpdate = NOW() WHERE {} AND {role} = 'Yes' AND lastHeartbeat < NOW() - INTERVAL {secs} SECOND",
                self.where_row(key, host)
            ),
        }
    }

    /// This node's report for a link: advances its sequence, records its address, channel,
    /// source and pause, and adds the fences done since the last report. Creates the row on
    /// the first report.
    pub fn report(&self, key: &str, me: &Me, v: &ReportValues) -> String {
        let (addr, ch, paused) = report_cells(me, v);
        let src = v.source.as_deref().map_or("NULL".into(), quote);
        format!(
            "INSERT INTO {SCHEMA}.replication_node (connectionName, host, address, seq, channel, source, pausedSince, fences, reportedAt) VALUES ({}, {}, {addr}, 1, {ch}, {src}, {paused}, {n}, NOW()) ON DUPLICATE KEY UPDATE address = {addr}, seq = seq + 1, channel = {ch}, source = {src}, pausedSince = {paused}, fences = fences + {n}, reportedAt = NOW()",
            quote(key),
            quote(&me.host),
            n = v.new_fences,
        )
    }

    /// This node's state and its channel's position for a link
    /// (`percona.replication_position`), written with every report.
    pub fn report_position(&self, key: &str, me: &Me, p: &Position) -> String {
        let state = quote(&p.state.chars().take(32).collect::<String>());
        let lag = p.lag.map_or("NULL".into(), |l| l.to_string());
        let gtid = p.gtid.as_deref().map_or("NULL".into(), |g| {
            quote(&g.chars().take(MAX_GTID).collect::<String>())
        });
        format!(
            "INSERT INTO {SCHEMA}.replication_position (connectionName, host, nodeState, lagSeconds, gtidExecuted, reportedAt) VALUES ({}, {}, {state}, {lag}, {gtid}, NOW()) ON DUPLICATE KEY UPDATE nodeState = {state}, lagSeconds = {lag}, gtidExecuted = {gtid}, reportedAt = NOW()",
            quote(key),
            quote(&me.host),
        )
    }

    /// This node's fence record for a link (`percona.replication_fence`), written with its
    /// report when it changed: the peer that holds its takeover and since when, and the peers
    /// its check cannot fence. `blockedSince` keeps its time while the takeover stays held.
    pub fn fence_note(&self, key: &str, me: &Me, note: &FenceNote) -> String {
        let text = |v: &Option<String>| {
            v.as_deref().map_or("NULL".to_string(), |t| {
                quote(&t.chars().take(1000).collect::<String>())
            })
        };
        let (b, u) = (text(&note.blocked), text(&note.unfenceable));
        format!(
            "INSERT INTO {SCHEMA}.replication_fence (connectionName, host, blocked, blockedSince, unfenceable, checkedAt) VALUES ({}, {}, {b}, IF({b} IS NULL, NULL, NOW()), {u}, NOW()) ON DUPLICATE KEY UPDATE blockedSince = IF({b} IS NULL, NULL, IF(blocked IS NULL, NOW(), blockedSince)), blocked = {b}, unfenceable = {u}, checkedAt = NOW()",
            quote(key),
            quote(&me.host),
        )
    }

    /// A paused node that runs no channel marks itself paused without advancing its sequence:
    /// it is alive, but neither a replica nor a candidate, so its peers let it go silent.
    pub fn pause_mark(&self, key: &str, me: &Me, v: &ReportValues) -> String {
        let (addr, ch, paused) = report_cells(me, v);
        format!(
            "INSERT INTO {SCHEMA}.replication_node (connectionName, host, address, seq, channel, source, pausedSince, fences, reportedAt) VALUES ({}, {}, {addr}, 0, {ch}, NULL, {paused}, 0, NOW()) ON DUPLICATE KEY UPDATE address = {addr}, channel = {ch}, pausedSince = {paused}, reportedAt = NOW()",
            quote(key),
            quote(&me.host),
        )
    }

    /// The statements of a proposal, executed as one transaction by the executor:
    /// 1. write the link's claim row (every proposer writes the same row, so Galera's
    ///    certification lets only one of two concurrent proposers commit: the other gets
    ///    a deadlock error and has lost);
    /// 2. read the link's rows with a locking read, to check nobody else holds the link;
    /// 3. read the link's switchover request, if the table exists (only its target may claim
    ///    a link an old replica has handed off);
    /// 4. set this node's row to `Proposed`.
    pub fn propose(&self, key: &str, me: &Me) -> Proposal {
        Proposal {
            create_claim_table: (!self.has_claim_table).then(claim_table_ddl),
            claim: format!(
                "INSERT INTO {SCHEMA}.replication_claim (connectionName, host, claims, claimedAt) VALUES ({}, {}, 1, NOW()) ON DUPLICATE KEY UPDATE host = {}, claims = claims + 1, claimedAt = NOW()",
                quote(key),
                quote(&me.host),
                quote(&me.host)
            ),
            lock_rows: format!("{} FOR UPDATE", self.select_rows(key)),
            read_switchover: None,
            update: self.update_own(key, me, Some(Role::Proposed), &SourceUpdate::Keep),
        }
    }
}

impl Schema {
    /// Whether failures can be recorded: the claim table has the columns, or does not exist
    /// yet (it is then created with them).
    pub fn tracks_failures(&self) -> bool {
        self.claim_records_failures || !self.has_claim_table
    }

    /// Reads why a link is failing, if it is: `failedHost, failedKind, age, failedDetail`.
    pub fn select_failure(&self, key: &str) -> String {
        format!(
            "SELECT failedHost, failedKind, UNIX_TIMESTAMP() - UNIX_TIMESTAMP(failedAt), failedDetail FROM {SCHEMA}.replication_claim WHERE connectionName = {} AND failedKind IS NOT NULL",
            quote(key)
        )
    }

    /// [`Schema::select_failure`] for several links in one statement, each row ending with its
    /// link's key.
    pub fn select_failures_of(&self, keys: &[&str]) -> String {
        let list: Vec<String> = keys.iter().map(|k| quote(k)).collect();
        format!(
            "SELECT failedHost, failedKind, UNIX_TIMESTAMP() - UNIX_TIMESTAMP(failedAt), failedDetail, connectionName FROM {SCHEMA}.replication_claim WHERE connectionName IN ({}) AND failedKind IS NOT NULL",
            list.join(", ")
        )
    }

    /// Records that the link is failing, and why (`kind`: `sql`, `unreachable`, `connect`).
    /// Every node of the cluster reads it before it takes the link.
    pub fn record_failure(
        &self,
        key: &str,
        host: &str,
        kind: FailureKind,
        detail: &str,
    ) -> Vec<String> {
        let detail: String = detail.chars().take(1000).collect();
        let mut v: Vec<String> = (!self.has_claim_table)
            .then(claim_table_ddl)
            .into_iter()
            .collect();
        v.push(format!(
            "INSERT INTO {SCHEMA}.replication_claim (connectionName, host, claims, claimedAt, failedHost, failedKind, failedAt, failedDetail) VALUES ({k}, {h}, 0, NOW(), {h}, {kind}, NOW(), {d}) ON DUPLICATE KEY UPDATE failedHost = {h}, failedKind = {kind}, failedAt = NOW(), failedDetail = {d}",
            k = quote(key),
            h = quote(host),
            kind = quote(kind.as_str()),
            d = quote(&detail),
        ));
        v
    }

    /// Every `Failed` row of a link back to `No` (`clear-failure`): those nodes are candidates
    /// again. Only rows still `Failed` when the statement runs; a node under `Failed` runs no
    /// channel, so no replica is touched.
    pub fn clear_failed_rows(&self, key: &str) -> String {
        let role = self.role_column();
        format!(
            "UPDATE {SCHEMA}.replication SET {role} = 'No', lastUpdate = NOW() WHERE {} = {} AND {role} = 'Failed'",
            self.key_column(),
            quote(key)
        )
    }

    /// Forgets the link's failure: a node replicates it again.
    pub fn clear_failure(&self, key: &str) -> String {
        format!(
            "UPDATE {SCHEMA}.replication_claim SET failedHost = NULL, failedKind = NULL, failedAt = NULL, failedDetail = NULL WHERE connectionName = {} AND failedKind IS NOT NULL",
            quote(key)
        )
    }
}

/// Why a link failed, as the node that failed records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// The SQL thread stopped on an error: the data needs an operator.
    Sql,
    /// No source answered (as Primary and Synced).
    Unreachable,
    /// Sources answered but replication did not start.
    Connect,
}

impl FailureKind {
    pub const ALL: [FailureKind; 3] = [
        FailureKind::Sql,
        FailureKind::Unreachable,
        FailureKind::Connect,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Sql => "sql",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Connect => "connect",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailureKind {
    type Err = String;
    fn from_str(s: &str) -> Result<FailureKind, String> {
        FailureKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("kind {s:?} is not one of sql, unreachable, connect"))
    }
}

/// The cells every report writes, quoted: the node's address, its channel's state and since
/// when it is paused.
fn report_cells(me: &Me, v: &ReportValues) -> (String, String, String) {
    let addr = me.address.as_deref().map_or("NULL".into(), quote);
    let ch = quote(v.channel.as_str());
    let paused = v
        .paused_since
        .map_or("NULL".into(), |t| format!("FROM_UNIXTIME({t})"));
    (addr, ch, paused)
}

/// A failure record as [`Schema::select_failure`] reads it (host, kind, age, detail).
pub fn parse_failure(cells: &[Option<String>]) -> LinkFailure {
    let g = |i: usize| cells.get(i).cloned().flatten();
    LinkFailure {
        host: g(0).unwrap_or_default(),
        // Only this tool writes the column; anything else reads as the mildest.
        kind: g(1)
            .and_then(|k| k.parse().ok())
            .unwrap_or(FailureKind::Connect),
        age: g(2).and_then(|v| v.parse::<f64>().ok()).map(|v| v as i64),
        detail: g(3).unwrap_or_default(),
    }
}

/// Why a link is failing, as recorded by the node that failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct LinkFailure {
    pub host: String,
    pub kind: FailureKind,
    /// Seconds since it was recorded.
    pub age: Option<i64>,
    pub detail: String,
}

/// The node writing: its row's identity and the values it refreshes on every write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Me {
    pub host: String,
    pub local_index: i64,
    pub weight: i64,
    /// Where peers reach this node's server, recorded in its reports.
    pub address: Option<String>,
}

/// The statements of one proposal; see [`Schema::propose`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub create_claim_table: Option<String>,
    pub claim: String,
    pub lock_rows: String,
    /// The link's switchover request, read after the rows (where the table exists): a
    /// hand-off under way reserves the link for its target. Set by the executor
    /// (which knows the switchover table).
    pub read_switchover: Option<String>,
    pub update: String,
}

/// The rows [`Schema::select_rows_of`] returned, by link key (a link without a row has no
/// entry).
pub fn parse_rows_by_key(
    cells: Vec<Vec<Option<String>>>,
) -> Result<std::collections::HashMap<String, Vec<StateRow>>, String> {
    let mut by_key: std::collections::HashMap<String, Vec<Vec<Option<String>>>> =
        std::collections::HashMap::new();
    for mut row in cells {
        let key = row
            .pop()
            .flatten()
            .ok_or_else(|| "a row without its link's key".to_string())?;
        by_key.entry(key).or_default().push(row);
    }
    by_key
        .into_iter()
        .map(|(k, rows)| Ok((k, parse_rows(rows)?)))
        .collect()
}

/// Parses the cells of [`Schema::select_rows`] (NULL as `None`).
pub fn parse_rows(cells: Vec<Vec<Option<String>>>) -> Result<Vec<StateRow>, String> {
    let secs = |v: Option<String>| v.and_then(|v| v.parse::<f64>().ok()).map(|v| v as i64);
    cells
        .into_iter()
        .map(|r| {
            let g = |i: usize| r.get(i).cloned().flatten();
            let role_text = g(3).unwrap_or_else(|| "No".into());
            let report = g(7)
                .and_then(|seq| seq.parse::<u64>().ok())
                .map(|seq| NodeReport {
                    seq,
                    address: g(8),
                    channel: ChannelState::parse(&g(9).unwrap_or_default()),
                    source: g(10),
                    paused_for: secs(g(11)),
                    fences: g(12).and_then(|v| v.parse().ok()).unwrap_or(0),
                    blocked: g(14),
                    blocked_for: secs(g(15)),
                    unfenceable: g(16),
                    position: g(17).map(|state| Position {
                        state,
                        lag: g(18).and_then(|v| v.parse().ok()),
                        gtid: g(19),
                    }),
                });
            Ok(StateRow {
                host: g(0).unwrap_or_default(),
                local_index: g(1).and_then(|v| v.parse().ok()),
                weight: g(2).and_then(|v| v.parse().ok()).unwrap_or(0),
                role: role_text
                    .parse::<Role>()
                    .map_err(|e| format!("row {:?}: {e}", g(0)))?,
                heartbeat_age: secs(g(4)),
                update_age: secs(g(5)),
                current_source: g(6),
                report,
                read_at: secs(g(13)).unwrap_or(0),
                in_view: None,
            })
        })
        .collect()
}

/// The claim table: one row per link, written by every proposal.
pub fn claim_table_ddl() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {SCHEMA}.replication_claim (connectionName varchar(64) NOT NULL, host varchar(255) NOT NULL, claims bigint unsigned NOT NULL DEFAULT 0, claimedAt timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, failedHost varchar(255) NULL DEFAULT NULL, failedKind varchar(16) NULL DEFAULT NULL, failedAt timestamp NULL DEFAULT NULL, failedDetail varchar(1024) NULL DEFAULT NULL, PRIMARY KEY (connectionName)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
}

/// The report table: one row per link and node, written only by that node.
pub fn node_table_ddl() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {SCHEMA}.replication_node (connectionName varchar(64) NOT NULL, host varchar(255) NOT NULL, address varchar(255) NULL DEFAULT NULL, seq bigint unsigned NOT NULL DEFAULT 0, channel varchar(16) NOT NULL DEFAULT 'none', source varchar(255) NULL DEFAULT NULL, pausedSince timestamp NULL DEFAULT NULL, fences bigint unsigned NOT NULL DEFAULT 0, reportedAt timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (connectionName, host)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
}

/// The longest GTID position kept (the column's width); a longer one (many domains or
/// server UUIDs) is cut.
pub const MAX_GTID: usize = 4096;

/// The position table: one row per link and node, written only by that node, with every
/// report: its Galera state, its channel's lag and executed GTID position.
pub fn position_table_ddl() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {SCHEMA}.replication_position (connectionName varchar(64) NOT NULL, host varchar(255) NOT NULL, nodeState varchar(32) NOT NULL DEFAULT '', lagSeconds bigint NULL DEFAULT NULL, gtidExecuted varchar({MAX_GTID}) NULL DEFAULT NULL, reportedAt timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (connectionName, host)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
}

/// The fence table: one row per link and node, written only by that node, and only when its
/// record changes (see [`Schema::fence_note`]).
pub fn fence_table_ddl() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {SCHEMA}.replication_fence (connectionName varchar(64) NOT NULL, host varchar(255) NOT NULL, blocked varchar(1024) NULL DEFAULT NULL, blockedSince timestamp NULL DEFAULT NULL, unfenceable varchar(1024) NULL DEFAULT NULL, checkedAt timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (connectionName, host)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
}

/// What `init` creates: the multi-cluster generation (with `isReplica` and `currentSource`),
/// the claim table, the report table, the fence table, and the topology tables (`init` adds the cluster-wide
/// pause table of `db::pause`). Every statement is `IF NOT EXISTS`, so `init` is
/// idempotent, and so its events do no harm when async replication carries them to a cluster
/// that already has the tables.
pub fn init_ddl() -> Vec<String> {
    vec![
        format!("CREATE DATABASE IF NOT EXISTS {SCHEMA}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {SCHEMA}.replication (host varchar(255) NOT NULL, weight int NOT NULL DEFAULT 0, localIndex int DEFAULT NULL, isReplica enum('No','Yes','Proposed','Failed') NOT NULL DEFAULT 'No', lastUpdate timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, lastHeartbeat timestamp NOT NULL DEFAULT '1971-01-01 00:00:00', connectionName varchar(64) NOT NULL, currentSource varchar(255) DEFAULT NULL, PRIMARY KEY (connectionName, host), KEY idx_host (host)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        ),
        claim_table_ddl(),
        node_table_ddl(),
        fence_table_ddl(),
        position_table_ddl(),
        format!(
            "CREATE TABLE IF NOT EXISTS {SCHEMA}.cluster (cluster varchar(31) NOT NULL, masterCandidates varchar(255) NOT NULL, replCreds varchar(255) NOT NULL, PRIMARY KEY (cluster)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {SCHEMA}.link (clusterSlave varchar(31) NOT NULL, clusterMaster varchar(31) NOT NULL, PRIMARY KEY (clusterSlave, clusterMaster)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {SCHEMA}.weight (cluster varchar(31) NOT NULL, nodename varchar(255) NOT NULL, weight int NOT NULL DEFAULT 0, PRIMARY KEY (cluster, nodename)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        ),
    ]
}

/// Schemas of both generations, as the tests of every layer above need them.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::Schema;

    /// Columns of one table, as `information_schema` lists them.
    pub(crate) fn cols(table: &str, names: &[&str]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|c| (table.to_string(), c.to_string()))
            .collect()
    }

    /// The seed's single-link table.
    pub(crate) fn seed() -> Schema {
        Schema::from_columns(&cols(
            "replication",
            &[
                "host",
                "localIndex",
                "isSlave",
                "lastUpdate",
                "lastHeartbeat",
                "cluster",
            ],
        ))
        .unwrap()
    }

    /// The multi-link generation with the claim and node tables.
    pub(crate) fn multi() -> Schema {
        Schema::from_columns(&multi_cols()).unwrap()
    }

    /// The columns of [`multi`], for a test to add to.
    pub(crate) fn multi_cols() -> Vec<(String, String)> {
        let mut c = cols(
            "replication",
            &[
                "host",
                "weight",
                "localIndex",
                "isReplica",
                "lastUpdate",
                "lastHeartbeat",
                "connectionName",
                "currentSource",
            ],
        );
        c.extend(cols("replication_claim", &["connectionName", "failedKind"]));
        c.extend(cols("replication_node", &["connectionName", "host", "seq"]));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{cols, multi, multi_cols, seed};
    use super::*;

    fn me() -> Me {
        Me {
            host: "DC1-1".into(),
            local_index: 2,
            weight: 10,
            address: Some("10.0.1.1:3306".into()),
        }
    }

    #[test]
    fn clear_failure_sets_only_rows_still_failed_back_to_no_in_both_generations() {
        assert_eq!(
            multi().clear_failed_rows("DC1-DC2"),
            "UPDATE percona.replication SET isReplica = 'No', lastUpdate = NOW() WHERE connectionName = 'DC1-DC2' AND isReplica = 'Failed'"
        );
        assert_eq!(
            seed().clear_failed_rows("DC1"),
            "UPDATE percona.replication SET isSlave = 'No', lastUpdate = NOW() WHERE cluster = 'DC1' AND isSlave = 'Failed'"
        );
        assert_eq!(
            multi().clear_failed_rows("it's"),
            "UPDATE percona.replication SET isReplica = 'No', lastUpdate = NOW() WHERE connectionName = 'it\\'s' AND isReplica = 'Failed'"
        );
    }

    #[test]
    fn detects_both_generations() {
        assert_eq!(seed().generation, Generation::Seed);
        assert!(!seed().has_claim_table);
        assert_eq!(
            multi().generation,
            Generation::Multi {
                role_column: "isReplica",
                has_weight: true,
                has_current_source: true
            }
        );
        let m2017 = Schema::from_columns(&cols(
            "replication",
            &[
                "host",
                "weight",
                "localIndex",
                "isSlave",
                "lastUpdate",
                "lastHeartbeat",
                "connectionName",
            ],
        ))
        .unwrap();
        assert_eq!(
            m2017.generation,
            Generation::Multi {
                role_column: "isSlave",
                has_weight: true,
                has_current_source: false
            }
        );
    }

    #[test]
    fn missing_or_foreign_tables_are_reported() {
        assert_eq!(Schema::from_columns(&[]), Err(SchemaProblem::Missing));
        assert!(matches!(
            Schema::from_columns(&cols("replication", &["host", "id"])),
            Err(SchemaProblem::Unrecognised(_))
        ));
    }

    #[test]
    fn seed_generation_statements() {
        let s = seed();
        assert_eq!(
            s.select_rows("DC1"),
            "SELECT r.host, r.localIndex, 0, r.isSlave, UNIX_TIMESTAMP() - UNIX_TIMESTAMP(r.lastHeartbeat), UNIX_TIMESTAMP() - UNIX_TIMESTAMP(r.lastUpdate), NULL, NULL, NULL, NULL, NULL, NULL, NULL, UNIX_TIMESTAMP(), NULL, NULL, NULL, NULL, NULL, NULL FROM percona.replication r WHERE r.cluster = 'DC1' ORDER BY r.host"
        );
        assert_eq!(
            s.insert_row("DC1", &me(), Role::No),
            "INSERT INTO percona.replication (host, cluster, localIndex, isSlave, lastUpdate, lastHeartbeat) VALUES ('DC1-1', 'DC1', 2, 'No', NOW(), NOW())"
        );
        assert_eq!(
            s.update_own(
                "DC1",
                &me(),
                None,
                &SourceUpdate::Set("10.0.0.1:3306".into())
            ),
            "UPDATE percona.replication SET lastUpdate = lastUpdate, lastHeartbeat = NOW(), localIndex = 2 WHERE cluster = 'DC1' AND host = 'DC1-1'"
        );
        assert_eq!(
            s.demote_silent("DC1", "DC1-3", &SilenceGuard::OlderThan(179)),
            "UPDATE percona.replication SET isSlave = 'No', lastUpdate = NOW() WHERE cluster = 'DC1' AND host = 'DC1-3' AND isSlave = 'Yes' AND lastHeartbeat < NOW() - INTERVAL 179 SECOND"
        );
        let p = s.propose("DC1", &me());
        assert_eq!(p.create_claim_table, Some(claim_table_ddl()));
        assert_eq!(
            p.claim,
            "INSERT INTO percona.replication_claim (connectionName, host, claims, claimedAt) VALUES ('DC1', 'DC1-1', 1, NOW()) ON DUPLICATE KEY UPDATE host = 'DC1-1', claims = claims + 1, claimedAt = NOW()"
        );
        assert!(
            p.lock_rows
                .ends_with("WHERE r.cluster = 'DC1' ORDER BY r.host FOR UPDATE")
        );
        assert_eq!(
            p.update,
            "UPDATE percona.replication SET isSlave = 'Proposed', lastUpdate = NOW(), lastHeartbeat = NOW(), localIndex = 2 WHERE cluster = 'DC1' AND host = 'DC1-1'"
        );
    }

    #[test]
    fn multi_cluster_generation_statements() {
        let s = multi();
        assert_eq!(
            s.select_rows("DC1-DC2"),
            "SELECT r.host, r.localIndex, r.weight, r.isReplica, UNIX_TIMESTAMP() - UNIX_TIMESTAMP(r.lastHeartbeat), UNIX_TIMESTAMP() - UNIX_TIMESTAMP(r.lastUpdate), r.currentSource, n.seq, n.address, n.channel, n.source, UNIX_TIMESTAMP() - UNIX_TIMESTAMP(n.pausedSince), n.fences, UNIX_TIMESTAMP(), NULL, NULL, NULL, NULL, NULL, NULL FROM percona.replication r LEFT JOIN percona.replication_node n ON n.connectionName = r.connectionName AND n.host = r.host WHERE r.connectionName = 'DC1-DC2' ORDER BY r.host"
        );
        assert_eq!(
            s.insert_row("DC1-DC2", &me(), Role::Yes),
            "INSERT INTO percona.replication (host, connectionName, localIndex, isReplica, lastUpdate, lastHeartbeat, weight) VALUES ('DC1-1', 'DC1-DC2', 2, 'Yes', NOW(), NOW(), 10)"
        );
        assert_eq!(
            s.update_own(
                "DC1-DC2",
                &me(),
                Some(Role::Yes),
                &SourceUpdate::Set("10.0.2.1:3306".into())
            ),
            "UPDATE percona.replication SET isReplica = 'Yes', lastUpdate = NOW(), lastHeartbeat = NOW(), localIndex = 2, weight = 10, currentSource = '10.0.2.1:3306' WHERE connectionName = 'DC1-DC2' AND host = 'DC1-1'"
        );
        assert_eq!(
            s.update_own("DC1-DC2", &me(), Some(Role::No), &SourceUpdate::Clear),
            "UPDATE percona.replication SET isReplica = 'No', lastUpdate = NOW(), lastHeartbeat = NOW(), localIndex = 2, weight = 10, currentSource = NULL WHERE connectionName = 'DC1-DC2' AND host = 'DC1-1'"
        );
        assert_eq!(s.propose("DC1-DC2", &me()).create_claim_table, None);
    }

    #[test]
    fn several_links_rows_are_read_in_one_statement_each_row_ending_with_its_key() {
        let s = multi();
        let one = s.select_rows("DC1-DC2");
        let both = s.select_rows_of(&["DC1-DC2", "DC1-D'C3"]);
        assert_eq!(
            both,
            one.replace(
                " FROM percona.replication r",
                ", r.connectionName FROM percona.replication r"
            )
            .replace(
                "WHERE r.connectionName = 'DC1-DC2'",
                "WHERE r.connectionName IN ('DC1-DC2', 'DC1-D\\'C3')"
            )
        );
        let row = |host: &str, key: Option<&str>| {
            let mut r: Vec<Option<String>> = vec![None; 20];
            r[0] = Some(host.into());
            r[3] = Some("No".into());
            r.push(key.map(Into::into));
            r
        };
        let by_key = parse_rows_by_key(vec![
            row("DC1-1", Some("DC1-DC2")),
            row("DC1-2", Some("DC1-DC3")),
            row("DC1-3", Some("DC1-DC2")),
        ])
        .unwrap();
        let hosts = |k: &str| -> Vec<String> { by_key[k].iter().map(|r| r.host.clone()).collect() };
        assert_eq!(hosts("DC1-DC2"), ["DC1-1", "DC1-3"]);
        assert_eq!(hosts("DC1-DC3"), ["DC1-2"]);
        assert!(parse_rows_by_key(vec![row("DC1-1", None)]).is_err());
    }

    #[test]
    fn several_links_failures_are_read_in_one_statement_each_row_ending_with_its_key() {
        let s = multi();
        assert_eq!(
            s.select_failures_of(&["DC1-DC2", "DC1-D'C3"]),
            s.select_failure("DC1-DC2")
                .replace(", failedDetail FROM", ", failedDetail, connectionName FROM")
                .replace(
                    "connectionName = 'DC1-DC2'",
                    "connectionName IN ('DC1-DC2', 'DC1-D\\'C3')"
                )
        );
        let f = parse_failure(&[
            Some("DC1-1".into()),
            Some("sql".into()),
            Some("12.0".into()),
            Some("stopped".into()),
            Some("DC1-DC2".into()),
        ]);
        assert_eq!(
            (f.host.as_str(), f.kind, f.age, f.detail.as_str()),
            ("DC1-1", FailureKind::Sql, Some(12), "stopped")
        );
        assert_eq!(
            parse_failure(&[None, Some("what".into())]).kind,
            FailureKind::Connect
        );
    }

    #[test]
    fn a_fence_record_is_read_with_the_rows_and_keeps_its_start_while_it_holds() {
        let mut c = multi_cols();
        c.extend(cols(
            "replication_fence",
            &["connectionName", "host", "blocked"],
        ));
        let s = Schema::from_columns(&c).unwrap();
        assert!(s.has_fence_table);
        assert!(s.select_rows("DC1-DC2").ends_with(
            "UNIX_TIMESTAMP(), f.blocked, UNIX_TIMESTAMP() - UNIX_TIMESTAMP(f.blockedSince), f.unfenceable, NULL, NULL, NULL FROM percona.replication r LEFT JOIN percona.replication_node n ON n.connectionName = r.connectionName AND n.host = r.host LEFT JOIN percona.replication_fence f ON f.connectionName = r.connectionName AND f.host = r.host WHERE r.connectionName = 'DC1-DC2' ORDER BY r.host"
        ));
        let held = FenceNote {
            blocked: Some(
                "DC1-1 at 10.0.1.1:3306 (login pxcrm): refused: Access denied (error 1045)".into(),
            ),
            unfenceable: None,
        };
        assert_eq!(
            s.fence_note("DC1-DC2", &me(), &held),
            "INSERT INTO percona.replication_fence (connectionName, host, blocked, blockedSince, unfenceable, checkedAt) VALUES ('DC1-DC2', 'DC1-1', 'DC1-1 at 10.0.1.1:3306 (login pxcrm): refused: Access denied (error 1045)', IF('DC1-1 at 10.0.1.1:3306 (login pxcrm): refused: Access denied (error 1045)' IS NULL, NULL, NOW()), NULL, NOW()) ON DUPLICATE KEY UPDATE blockedSince = IF('DC1-1 at 10.0.1.1:3306 (login pxcrm): refused: Access denied (error 1045)' IS NULL, NULL, IF(blocked IS NULL, NOW(), blockedSince)), blocked = 'DC1-1 at 10.0.1.1:3306 (login pxcrm): refused: Access denied (error 1045)', unfenceable = NULL, checkedAt = NOW()"
        );
        let cleared = s.fence_note("DC1-DC2", &me(), &FenceNote::default());
        assert!(
            cleared.contains("blockedSince = IF(NULL IS NULL, NULL,"),
            "{cleared}"
        );
        // A hostile reason stays inside its literal.
        let hostile = FenceNote {
            blocked: Some("x'); DROP TABLE t; --".into()),
            unfenceable: None,
        };
        assert!(
            s.fence_note("k", &me(), &hostile)
                .contains(r"'x\'); DROP TABLE t; --'")
        );
        // Rows as the server returns them: the record after the clock column.
        let mut cells: Vec<Option<String>> = [
            "DC1-1", "1", "0", "No", "3", "30", "", "4", "a:1", "none", "", "", "0", "1000",
        ]
        .iter()
        .map(|v| (!v.is_empty()).then(|| v.to_string()))
        .collect();
        cells.extend([
            Some("DC1-2 at b (login u): refused: x".into()),
            Some("12".into()),
            None,
        ]);
        let rows = parse_rows(vec![cells]).unwrap();
        let rep = rows[0].report.as_ref().unwrap();
        assert_eq!(
            rep.blocked.as_deref(),
            Some("DC1-2 at b (login u): refused: x")
        );
        assert_eq!((rep.blocked_for, rep.unfenceable.clone()), (Some(12), None));
    }

    #[test]
    fn a_position_is_read_with_the_rows() {
        let mut c = multi_cols();
        c.extend(cols(
            "replication_position",
            &["connectionName", "host", "gtidExecuted"],
        ));
        let s = Schema::from_columns(&c).unwrap();
        assert!(s.has_position_table);
        assert!(s.select_rows("DC1-DC2").ends_with(
            "NULL, NULL, NULL, p.nodeState, p.lagSeconds, p.gtidExecuted FROM percona.replication r LEFT JOIN percona.replication_node n ON n.connectionName = r.connectionName AND n.host = r.host LEFT JOIN percona.replication_position p ON p.connectionName = r.connectionName AND p.host = r.host WHERE r.connectionName = 'DC1-DC2' ORDER BY r.host"
        ));
        let cell = |v: &str| Some(v.to_string());
        let mut row: Vec<Option<String>> = vec![cell("DC1-1"), cell("0"), cell("0"), cell("Yes")];
        row.extend([
            None,
            None,
            None,
            cell("5"),
            None,
            cell("healthy"),
            None,
            None,
            cell("0"),
        ]);
        row.extend([cell("1700000000"), None, None, None]);
        row.extend([cell("Synced"), cell("2"), cell("2-21-9")]);
        let r = parse_rows(vec![row]).unwrap();
        assert_eq!(
            r[0].report.as_ref().unwrap().position,
            Some(Position {
                state: "Synced".into(),
                lag: Some(2),
                gtid: Some("2-21-9".into()),
            })
        );
    }

    #[test]
    fn a_position_is_the_nodes_state_and_its_channels_lag_and_executed_gtid() {
        let p = Position {
            state: "Synced".into(),
            lag: Some(3),
            gtid: Some("2-21-1407".into()),
        };
        assert_eq!(
            multi().report_position("DC1-DC2", &me(), &p),
            "INSERT INTO percona.replication_position (connectionName, host, nodeState, lagSeconds, gtidExecuted, reportedAt) VALUES ('DC1-DC2', 'DC1-1', 'Synced', 3, '2-21-1407', NOW()) ON DUPLICATE KEY UPDATE nodeState = 'Synced', lagSeconds = 3, gtidExecuted = '2-21-1407', reportedAt = NOW()"
        );
        let idle = Position {
            state: "Donor/Desynced".into(),
            ..Position::default()
        };
        assert!(
            multi()
                .report_position("DC1-DC2", &me(), &idle)
                .contains("VALUES ('DC1-DC2', 'DC1-1', 'Donor/Desynced', NULL, NULL, NOW())")
        );
    }

    #[test]
    fn reports_advance_a_sequence_and_demotions_compare_it() {
        let s = multi();
        let v = ReportValues {
            channel: ChannelState::Healthy,
            source: Some("10.0.2.1:3306".into()),
            paused_since: None,
            new_fences: 1,
            fence: None,
            position: None,
        };
        assert_eq!(
            s.report("DC1-DC2", &me(), &v),
            "INSERT INTO percona.replication_node (connectionName, host, address, seq, channel, source, pausedSince, fences, reportedAt) VALUES ('DC1-DC2', 'DC1-1', '10.0.1.1:3306', 1, 'healthy', '10.0.2.1:3306', NULL, 1, NOW()) ON DUPLICATE KEY UPDATE address = '10.0.1.1:3306', seq = seq + 1, channel = 'healthy', source = '10.0.2.1:3306', pausedSince = NULL, fences = fences + 1, reportedAt = NOW()"
        );
        let paused = ReportValues {
            channel: ChannelState::None,
            source: None,
            paused_since: Some(1_700_000_000),
            new_fences: 0,
            fence: None,
            position: None,
        };
        assert_eq!(
            s.pause_mark("DC1-DC2", &me(), &paused),
            "INSERT INTO percona.replication_node (connectionName, host, address, seq, channel, source, pausedSince, fences, reportedAt) VALUES ('DC1-DC2', 'DC1-1', '10.0.1.1:3306', 0, 'none', NULL, FROM_UNIXTIME(1700000000), 0, NOW()) ON DUPLICATE KEY UPDATE address = '10.0.1.1:3306', channel = 'none', pausedSince = FROM_UNIXTIME(1700000000), reportedAt = NOW()"
        );
        assert_eq!(
            s.demote_silent("DC1-DC2", "DC1-3", &SilenceGuard::Seq(17)),
            "UPDATE percona.replication r JOIN percona.replication_node n ON n.connectionName = r.connectionName AND n.host = r.host SET r.isReplica = 'No', r.lastUpdate = NOW() WHERE r.connectionName = 'DC1-DC2' AND r.host = 'DC1-3' AND r.isReplica = 'Yes' AND n.seq = 17"
        );
    }

    #[test]
    fn rows_parse_with_their_reports_and_the_readers_clock() {
        let cell = |v: &str| (v != "NULL").then(|| v.to_string());
        let line = |v: &[&str]| v.iter().map(|c| cell(c)).collect::<Vec<_>>();
        let rows = parse_rows(vec![
            line(&[
                "DC1-1",
                "0",
                "5",
                "Yes",
                "12",
                "300",
                "10.0.2.1:3306",
                "42",
                "10.0.1.1:3306",
                "healthy",
                "10.0.2.1:3306",
                "NULL",
                "2",
                "1700000000",
            ]),
            line(&[
                "DC1-2",
                "1",
                "0",
                "No",
                "7",
                "7",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "1700000000",
            ]),
        ])
        .unwrap();
        assert_eq!(rows[0].role, Role::Yes);
        assert_eq!(rows[0].heartbeat_age, Some(12));
        assert_eq!(rows[0].read_at, 1_700_000_000);
        let r = rows[0].report.as_ref().unwrap();
        assert_eq!((r.seq, r.channel, r.fences), (42, ChannelState::Healthy, 2));
        assert_eq!(rows[1].report, None, "a node that never reported");
        assert!(parse_rows(vec![line(&["x", "NULL", "NULL", "Maybe"])]).is_err());
    }

    #[test]
    fn failures_are_recorded_in_the_claim_row_and_cleared() {
        let s = multi();
        assert!(s.tracks_failures());
        assert_eq!(
            s.record_failure("DC1-DC2", "DC1-1", FailureKind::Sql, "Duplicate entry 'x'"),
            vec![
                "INSERT INTO percona.replication_claim (connectionName, host, claims, claimedAt, failedHost, failedKind, failedAt, failedDetail) VALUES ('DC1-DC2', 'DC1-1', 0, NOW(), 'DC1-1', 'sql', NOW(), 'Duplicate entry \\'x\\'') ON DUPLICATE KEY UPDATE failedHost = 'DC1-1', failedKind = 'sql', failedAt = NOW(), failedDetail = 'Duplicate entry \\'x\\''"
            ]
        );
        assert_eq!(
            s.clear_failure("DC1-DC2"),
            "UPDATE percona.replication_claim SET failedHost = NULL, failedKind = NULL, failedAt = NULL, failedDetail = NULL WHERE connectionName = 'DC1-DC2' AND failedKind IS NOT NULL"
        );
        // Without a claim table yet, the first record creates it.
        assert_eq!(
            seed().record_failure("DC1", "DC1-1", FailureKind::Unreachable, "")[0],
            claim_table_ddl()
        );
    }

    #[test]
    fn hostile_node_names_stay_inside_literals() {
        let m = Me {
            host: "x' OR '1'='1".into(),
            local_index: 0,
            weight: 0,
            address: None,
        };
        let sql = multi().update_own("DC1-DC2", &m, Some(Role::Yes), &SourceUpdate::Keep);
        assert!(sql.ends_with(r"AND host = 'x\' OR \'1\'=\'1'"));
    }

    #[test]
    fn roles_parse_and_print() {
        for r in [Role::No, Role::Yes, Role::Proposed, Role::Failed] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("yes".parse::<Role>().is_err());
    }
}
