//! `status --format json`, version 1: the [`Report`] in a shape of its own, documented by
//! `docs/schemas/status.schema.json`, so that the internal types can change without breaking a
//! program that reads it. Fields are named, values lowercase words, no type tags; times are
//! Unix seconds or ages in seconds, as named.

use super::history::Event;
use super::status::{LinkReport, Report, RowView};
use crate::db::clock::Skew;
use crate::db::flavor::{Flavor, ReplicaStatus};
use crate::db::pause::ClusterPause;
use crate::db::state::{Generation, LinkFailure};
use crate::metrics::Counters;
use serde::Serialize;

/// Raised when a field changes meaning or goes; a new field does not raise it.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
pub struct Status<'a> {
    schema_version: u32,
    node: Node<'a>,
    /// Where peers reach this node's server to fence it.
    address: Option<&'a str>,
    /// `null` when the state table could not be read.
    state_table: Option<StateTable>,
    heartbeat_timeout: i64,
    silent_after: i64,
    /// When this node's pause file appeared (Unix time).
    paused_since: Option<i64>,
    cluster_pause: Option<&'a ClusterPause>,
    skewed: Vec<SkewView<'a>>,
    connection: &'a str,
    login: &'a str,
    option_files: &'a crate::config::mycnf::Provenance,
    links: Vec<Link<'a>>,
    other_channels: Vec<Channel<'a>>,
    counters: &'a Counters,
}

#[derive(Serialize)]
struct Node<'a> {
    name: &'a str,
    cluster: &'a str,
    /// `primary`, `non-primary`, `disconnected`, or what the server said, lowercase.
    cluster_status: String,
    /// `wsrep_local_state_comment`, lowercase (`synced`, `donor/desynced`, ...).
    local_state: String,
    /// `wsrep_local_state` (4: Synced).
    local_state_code: i64,
    local_index: i64,
    cluster_size: i64,
    /// `mariadb` or `mysql` (PXC included).
    flavor: &'static str,
    version: String,
    gtid_domain_id: Option<u32>,
    gtid_position: &'a str,
    weight: i64,
    incoming_address: Option<&'a str>,
}

#[derive(Serialize)]
struct StateTable {
    /// `multi` (connectionName) or `seed` (Percona's 2016 script: one link per cluster).
    generation: &'static str,
    role_column: &'static str,
    has_weight: bool,
    has_current_source: bool,
}

#[derive(Serialize)]
struct SkewView<'a> {
    host: &'a str,
    /// `ahead` or `behind` this node's clock.
    direction: &'static str,
    at_least: i64,
}

#[derive(Serialize)]
struct Link<'a> {
    /// The link's name (`DC1-DC2`, the state table's connectionName).
    link: &'a str,
    remote: &'a str,
    channel: &'a str,
    sources: &'a [String],
    rows: Vec<Row<'a>>,
    /// This node's channel for the link, if it has one.
    replica: Option<Channel<'a>>,
    failure: Option<Failure<'a>>,
    last_event: Option<&'a Event>,
    /// A switchover of the link under way, if there is one.
    switchover: Option<Switchover<'a>>,
}

#[derive(Serialize)]
struct Switchover<'a> {
    from: &'a str,
    to: &'a str,
    /// `requested`, `ready` or `stopped`.
    phase: &'static str,
    /// Seconds since its last step, on this node's server clock.
    age: f64,
    requested_by: &'a str,
}

#[derive(Serialize)]
struct Row<'a> {
    host: &'a str,
    local_index: Option<i64>,
    weight: i64,
    /// `no`, `yes`, `proposed`, `failed`.
    role: String,
    /// Seconds since its heartbeat, by the clocks.
    heartbeat_age: Option<i64>,
    /// Seconds since its role changed.
    update_age: Option<i64>,
    current_source: Option<&'a str>,
    /// Seconds its report has stood still, seen from this node.
    silent_for: Option<i64>,
    fresh: bool,
    in_view: Option<bool>,
    /// `null` for a node that does not report (the original script).
    report: Option<Report1<'a>>,
}

#[derive(Serialize)]
struct Report1<'a> {
    seq: u64,
    address: Option<&'a str>,
    /// `none`, `stopped`, `running`, `healthy`.
    channel: &'static str,
    source: Option<&'a str>,
    paused_for: Option<i64>,
    fences: u64,
    blocked: Option<&'a str>,
    blocked_for: Option<i64>,
    unfenceable: Option<&'a str>,
    /// Its Galera state with that report (`synced`, ...), lowercase; `null` before it wrote one.
    node_state: Option<String>,
    /// Its channel's lag, seconds.
    lag: Option<i64>,
    /// Its channel's executed GTID position.
    gtid_executed: Option<&'a str>,
}

#[derive(Serialize)]
struct Channel<'a> {
    channel: &'a str,
    source: String,
    source_user: &'a str,
    /// `yes`, `no`, `connecting`, or what the server said, lowercase.
    io_running: String,
    sql_running: String,
    io_state: &'a str,
    last_io_error: &'a str,
    last_sql_error: &'a str,
    last_sql_errno: u32,
    lag: Option<u64>,
    /// The dialect's GTID columns, by their names.
    gtid: std::collections::BTreeMap<&'a str, &'a str>,
    gtid_executed: Option<&'a str>,
}

#[derive(Serialize)]
struct Failure<'a> {
    host: &'a str,
    /// `connect`, `unreachable`, `sql`.
    kind: &'static str,
    age: Option<i64>,
    detail: &'a str,
}

/// `status --format json`: the report in version [`SCHEMA_VERSION`] of this shape.
pub fn to_json(r: &Report) -> String {
    serde_json::to_string_pretty(&Status::of(r))
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

impl<'a> Status<'a> {
    pub fn of(r: &'a Report) -> Status<'a> {
        let f = &r.node;
        let (flavor, (a, b, c)) = match f.flavor {
            Flavor::MariaDb { version } => ("mariadb", version),
            Flavor::MySqlLegacy { version } | Flavor::MySqlModern { version } => ("mysql", version),
        };
        Status {
            schema_version: SCHEMA_VERSION,
            node: Node {
                name: &f.name,
                cluster: &f.cluster,
                cluster_status: f.cluster_status.to_string().to_ascii_lowercase(),
                local_state: f.local_state_comment.to_ascii_lowercase(),
                local_state_code: f.local_state.code(),
                local_index: f.local_index,
                cluster_size: f.cluster_size,
                flavor,
                version: format!("{a}.{b}.{c}"),
                gtid_domain_id: f.gtid_domain_id,
                gtid_position: &f.gtid_position,
                weight: f.weight,
                incoming_address: f.incoming_address.as_deref(),
            },
            address: r.address.as_deref(),
            state_table: r.generation.as_ref().map(|g| match g {
                Generation::Seed => StateTable {
                    generation: "seed",
                    role_column: "isSlave",
                    has_weight: false,
                    has_current_source: false,
                },
                Generation::Multi {
                    role_column,
                    has_weight,
                    has_current_source,
                } => StateTable {
                    generation: "multi",
                    role_column,
                    has_weight: *has_weight,
                    has_current_source: *has_current_source,
                },
            }),
            heartbeat_timeout: r.heartbeat_timeout,
            silent_after: r.silent_after,
            paused_since: r.paused_since,
            cluster_pause: r.cluster_pause.as_ref(),
            skewed: r.skewed.iter().map(skew).collect(),
            connection: &r.connection,
            login: &r.login,
            option_files: &r.option_files,
            links: r.links.iter().map(link).collect(),
            other_channels: r.other_channels.iter().map(channel).collect(),
            counters: &r.counters,
        }
    }
}

fn skew(s: &Skew) -> SkewView<'_> {
    SkewView {
        host: &s.host,
        direction: if s.ahead { "ahead" } else { "behind" },
        at_least: s.at_least,
    }
}

fn link(l: &LinkReport) -> Link<'_> {
    Link {
        link: &l.key,
        remote: &l.remote,
        channel: &l.channel,
        sources: &l.sources,
        rows: l.rows.iter().map(row).collect(),
        replica: l.replica.as_ref().map(channel),
        failure: l.failure.as_ref().map(failure),
        last_event: l.last_event.as_ref(),
        switchover: l.switchover.as_ref().map(|x| Switchover {
            from: &x.from,
            to: &x.to,
            phase: x.phase.as_str(),
            age: x.age_ms as f64 / 1000.0,
            requested_by: &x.requested_by,
        }),
    }
}

fn row(v: &RowView) -> Row<'_> {
    let r = &v.row;
    Row {
        host: &r.host,
        local_index: r.local_index,
        weight: r.weight,
        role: r.role.as_str().to_ascii_lowercase(),
        heartbeat_age: r.heartbeat_age,
        update_age: r.update_age,
        current_source: r.current_source.as_deref(),
        silent_for: v.silent_for,
        fresh: v.fresh,
        in_view: r.in_view,
        report: r.report.as_ref().map(|p| {
            let pos = p.position.as_ref();
            Report1 {
                seq: p.seq,
                address: p.address.as_deref(),
                channel: p.channel.as_str(),
                source: p.source.as_deref(),
                paused_for: p.paused_for,
                fences: p.fences,
                blocked: p.blocked.as_deref(),
                blocked_for: p.blocked_for,
                unfenceable: p.unfenceable.as_deref(),
                node_state: pos.map(|x| x.state.to_ascii_lowercase()),
                lag: pos.and_then(|x| x.lag),
                gtid_executed: pos.and_then(|x| x.gtid.as_deref()),
            }
        }),
    }
}

fn channel(c: &ReplicaStatus) -> Channel<'_> {
    Channel {
        channel: &c.channel,
        source: c.source(),
        source_user: &c.source_user,
        io_running: c.io_running.to_string().to_ascii_lowercase(),
        sql_running: c.sql_running.to_string().to_ascii_lowercase(),
        io_state: &c.io_state,
        last_io_error: &c.last_io_error,
        last_sql_error: &c.last_sql_error,
        last_sql_errno: c.last_sql_errno,
        lag: c.lag_seconds,
        gtid: c
            .gtid
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        gtid_executed: c.executed_gtid(),
    }
}

fn failure(f: &LinkFailure) -> Failure<'_> {
    Failure {
        host: &f.host,
        kind: f.kind.as_str(),
        age: f.age,
        detail: &f.detail,
    }
}
