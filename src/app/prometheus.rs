//! The `status` report as Prometheus metrics, in the text exposition format (version 0.0.4:
//! what node_exporter's textfile collector reads and what the daemon's `/metrics` serves).
//! Pure formatting: [`render`] turns a [`Report`] into text, [`render_down`] says that the
//! local server could not be read, with what the state file still tells.
//!
//! Every name starts with `pxcrm_`, every time is in seconds, and every label value is
//! escaped as the format requires (backslash, double quote, newline). The metrics, and the
//! choices behind them, are listed in docs/operating.md, "Metrics"; in short:
//!
//! * `pxcrm_link_role{link,remote,role}`: one series per role (`No`, `Yes`, `Proposed`,
//!   `Failed`), 1 for this node's row's role, 0 for the others (all 0 without a row), so a
//!   rule selects `{role="Yes"} == 1` without regular expressions;
//! * `pxcrm_link_replica_healthy{link,remote}`: 1 when a row of the link says `Yes`, this
//!   node does not judge it silent, and, when that row carries a report, the channel it
//!   reports is healthy (both threads running, IO thread connected);
//! * `pxcrm_replication_lag_seconds{link,channel,source}`: `Seconds_Behind_Master` of this
//!   node's channel; NaN when the server says NULL (a thread is down: the thread series say
//!   which), absent when this node has no channel for the link;
//! * `pxcrm_source_up{link,channel,source}`: 1 when the channel's IO thread is connected to
//!   its source (`Slave_IO_Running = Yes`); `pxcrm_io_thread_up` is 1 also while it is
//!   still connecting (`Connecting`), so "thread up, source down" reads as a source problem;
//! * counters (`pxcrm_failovers_total`, `pxcrm_fences_total`, `pxcrm_runs_total`) render a 0
//!   series for every link (and known cause) before anything happened, so that `increase()`
//!   counts the first event too.

use super::status::{LinkReport, Report, RowView};
use crate::db::flavor::{ReplicaStatus, Thread};
use crate::db::state::{ChannelState, Role};
use crate::metrics::Counters;
use std::fmt::Write;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The kind of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
}

/// One metric family: its help and its samples, in the order they were added.
struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// Metric families, each written as one block (HELP, TYPE, samples), as the format requires.
#[derive(Default)]
struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    fn add(
        &mut self,
        name: &'static str,
        kind: Kind,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: f64,
    ) {
        let i = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name,
                    kind,
                    help,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        let labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        self.families[i].samples.push((labels, value));
    }

    fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: f64,
    ) {
        self.add(name, Kind::Gauge, help, labels, value);
    }

    fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: u64,
    ) {
        self.add(name, Kind::Counter, help, labels, value as f64);
    }

    fn text(&self) -> String {
        let mut o = String::new();
        for f in &self.families {
            let _ = writeln!(o, "# HELP {} {}", f.name, escape_help(f.help));
            let kind = match f.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
            };
            let _ = writeln!(o, "# TYPE {} {kind}", f.name);
            for (labels, value) in &f.samples {
                o.push_str(f.name);
                if !labels.is_empty() {
                    let l: Vec<String> = labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                        .collect();
                    let _ = write!(o, "{{{}}}", l.join(","));
                }
                let _ = writeln!(o, " {}", number(*value));
            }
        }
        o
    }
}

/// A label value as the format writes it: backslash, double quote and newline escaped.
fn escape_label(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

/// A HELP text as the format writes it: backslash and newline escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: Go's spelling of the special values, the shortest exact decimal otherwise.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The help of `pxcrm_up`, which both renderings start with.
const UP_HELP: &str = "1 when the local server answered and the report was read; 0 when it could not be (the other series are then only those the state file gives).";

/// The whole report as metrics.
pub fn render(r: &Report) -> String {
    let mut e = Exposition::default();
    e.gauge("pxcrm_up", UP_HELP, &[], 1.0);
    let n = &r.node;
    let flavor = n.flavor.label();
    e.gauge(
        "pxcrm_node_info",
        "This node: its name, its cluster and the server's flavour (always 1).",
        &[
            ("node", &n.name),
            ("cluster", &n.cluster),
            ("flavor", &flavor),
        ],
        1.0,
    );
    e.gauge(
        "pxcrm_node_can_act",
        "1 when this node is in the Primary component and Synced or Donor, the only states in which it acts on its links.",
        &[],
        flag(n.can_act()),
    );
    e.gauge(
        "pxcrm_silent_threshold_seconds",
        "A node whose report has not moved for this long is silent and is replaced ([timeouts] heartbeat, or the policy's silent_after if longer).",
        &[],
        r.silent_after as f64,
    );
    e.gauge(
        "pxcrm_clock_skewed_peers",
        "Peers whose clock this node found off by more than a quarter of the silent threshold.",
        &[],
        r.skewed.len() as f64,
    );
    e.gauge(
        "pxcrm_unmanaged_channels",
        "Replication channels on this node that no configured link manages.",
        &[],
        r.other_channels.len() as f64,
    );
    let cluster = r.cluster_pause.as_ref().filter(|p| p.is_active());
    paused(&mut e, r.paused_since, Some(cluster.map(|p| p.since)));
    for l in &r.links {
        link(&mut e, l, &n.name);
    }
    let keys: Vec<&str> = r.links.iter().map(|l| l.key.as_str()).collect();
    counters(&mut e, &r.counters, &keys);
    e.text()
}

/// What can be said when the local server could not be read: `pxcrm_up 0`, the pause, and
/// the counters and runs from the state file.
fn render_down(counters_: &Counters, paused_since: Option<i64>) -> String {
    let mut e = Exposition::default();
    e.gauge("pxcrm_up", UP_HELP, &[], 0.0);
    paused(&mut e, paused_since, None);
    counters(&mut e, counters_, &[]);
    e.text()
}

/// [`render_down`] for a node with this config: its state file and its pause file.
pub fn down(cfg: &crate::config::Config) -> String {
    let memory = crate::db::clock::Observations::peek(&cfg.files.state);
    render_down(
        memory.counters(),
        super::guard::paused_since(&cfg.files.pause),
    )
}

/// The pause: this node's pause file.
/// `since`: the pause file's start, if it exists; `cluster`: the cluster's pause start, if
/// one holds (`None` when the server could not be read, so the cluster's series is left out).
fn paused(e: &mut Exposition, since: Option<i64>, cluster: Option<Option<i64>>) {
    const HELP: &str = "1 while paused: the node (scope=\"node\": its pause file exists; scope=\"cluster\": its cluster's pause row holds) changes nothing and only reports.";
    e.gauge(
        "pxcrm_paused",
        HELP,
        &[("scope", "node")],
        flag(since.is_some()),
    );
    if let Some(c) = cluster {
        e.gauge(
            "pxcrm_paused",
            HELP,
            &[("scope", "cluster")],
            flag(c.is_some()),
        );
    }
    const SINCE: &str = "When the pause began (Unix time); present only while paused.";
    if let Some(t) = since {
        e.gauge(
            "pxcrm_paused_since_timestamp_seconds",
            SINCE,
            &[("scope", "node")],
            t as f64,
        );
    }
    if let Some(Some(t)) = cluster {
        e.gauge(
            "pxcrm_paused_since_timestamp_seconds",
            SINCE,
            &[("scope", "cluster")],
            t as f64,
        );
    }
}

/// A link: this node's role, the link's replica, the rows' ages, this node's channel.
fn link(e: &mut Exposition, l: &LinkReport, me: &str) {
    let key = l.key.as_str();
    let remote = l.remote.as_str();
    let base = [("link", key), ("remote", remote)];
    let mine = l.rows.iter().find(|v| v.row.host == me).map(|v| v.row.role);
    for role in Role::ALL {
        e.gauge(
            "pxcrm_link_role",
            "This node's role for the link, as its row says: 1 for the role it has, 0 for the others (all 0 when it has no row).",
            &[base[0], base[1], ("role", role.as_str())],
            flag(mine == Some(role)),
        );
    }
    let replicas: Vec<_> = l.rows.iter().filter(|v| v.row.role == Role::Yes).collect();
    link_state(e, &base, l, &replicas);
    row_gauges(e, key, &l.rows);
    for v in &replicas {
        if let Some(s) = v.silent_for {
            e.gauge(
                "pxcrm_replica_silent_seconds",
                "How long this node has seen the report of the link's replica (a row saying Yes) stand still.",
                &[base[0], base[1], ("node", &v.row.host)],
                s as f64,
            );
        }
    }
    if let Some(c) = &l.replica {
        channel(e, key, c);
    }
}

/// The link's replica health, its count of replicas, its recorded failure and a held takeover.
fn link_state(
    e: &mut Exposition,
    base: &[(&'static str, &str); 2],
    l: &LinkReport,
    replicas: &[&RowView],
) {
    let healthy = replicas.iter().any(|v| {
        v.fresh
            && v.row
                .report
                .as_ref()
                .is_none_or(|p| p.channel == ChannelState::Healthy)
    });
    e.gauge(
        "pxcrm_link_replica_healthy",
        "1 when a row of the link says Yes, this node does not judge that node silent, and the channel it reports (if it reports) is healthy.",
        base,
        flag(healthy),
    );
    e.gauge(
        "pxcrm_link_replicas",
        "Rows of the link that say Yes (more than 1: two nodes replicate the link).",
        base,
        replicas.len() as f64,
    );
    e.gauge(
        "pxcrm_link_failing",
        "1 when a node recorded why the link is failing (percona.replication_claim).",
        base,
        flag(l.failure.is_some()),
    );
    e.gauge(
        "pxcrm_link_takeover_held",
        "1 when a node that reports (not silent) says its takeover of the link waits on a peer it could not fence (percona.replication_fence): a replica that fails now is not replaced.",
        base,
        flag(
            l.rows
                .iter()
                .any(|v| v.fresh && v.row.report.as_ref().is_some_and(|p| p.blocked.is_some())),
        ),
    );
}

/// Each row's gauges: the peers it cannot fence, its heartbeat age, how long it is silent.
fn row_gauges(e: &mut Exposition, key: &str, rows: &[RowView]) {
    for v in rows {
        let host = v.row.host.as_str();
        if let Some(p) = v.row.report.as_ref().filter(|_| v.fresh) {
            e.gauge(
                "pxcrm_unfenceable_peers",
                "Peers each reporting node's check found it cannot fence (its login is denied, lacks a privilege, or gets no connection), as its fence record says.",
                &[("link", key), ("node", host)],
                p.unfenceable
                    .as_deref()
                    .map_or(0, |u| u.split("; ").count()) as f64,
            );
        }
        if let Some(a) = v.row.heartbeat_age {
            e.gauge(
                "pxcrm_heartbeat_age_seconds",
                "Age of each row's lastHeartbeat, by the reading server's clock against the writing node's.",
                &[("link", key), ("node", host)],
                a as f64,
            );
        }
        if let Some(s) = v.silent_for {
            e.gauge(
                "pxcrm_silent_seconds",
                "How long this node has seen each node's report stand still, on its own clock (for a node that does not report: its heartbeat age).",
                &[("link", key), ("node", host)],
                s as f64,
            );
        }
    }
}

/// This node's channel for a link.
fn channel(e: &mut Exposition, key: &str, c: &ReplicaStatus) {
    let source = c.source();
    let labels = [
        ("link", key),
        ("channel", c.channel.as_str()),
        ("source", source.as_str()),
    ];
    e.gauge(
        "pxcrm_replication_lag_seconds",
        "Seconds_Behind_Master of this node's channel for the link; NaN when the server reports NULL (a thread is down).",
        &labels,
        c.lag_seconds.map_or(f64::NAN, |l| l as f64),
    );
    e.gauge(
        "pxcrm_io_thread_up",
        "1 when the channel's IO thread runs (Yes, or Connecting to its source).",
        &labels,
        flag(matches!(c.io_running, Thread::Yes | Thread::Connecting)),
    );
    e.gauge(
        "pxcrm_sql_thread_up",
        "1 when the channel's SQL thread runs.",
        &labels,
        flag(c.sql_running.is_running()),
    );
    e.gauge(
        "pxcrm_source_up",
        "1 when the channel's IO thread is connected to its source (Slave_IO_Running = Yes).",
        &labels,
        flag(c.io_running.is_running()),
    );
}

/// The counters and the last runs, from the state file.
fn counters(e: &mut Exposition, c: &Counters, links: &[&str]) {
    let mut keys: Vec<&str> = links.iter().copied().chain(c.links()).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in &keys {
        for (cause, n) in c.failovers(key) {
            e.counter(
                "pxcrm_failovers_total",
                "Failovers this node did for the link (took it over, or moved it to another source), by cause.",
                &[("link", key), ("cause", &cause)],
                n,
            );
        }
    }
    for key in &keys {
        e.counter(
            "pxcrm_fences_total",
            "Times this node stopped another node's channel before taking the link.",
            &[("link", key)],
            c.fences(key),
        );
    }
    for key in &keys {
        e.counter(
            "pxcrm_fences_blocked_total",
            "Runs in which this node's takeover of the link waited on a peer that it could not fence and that may still replicate.",
            &[("link", key)],
            c.fences_blocked(key),
        );
    }
    let (runs, failed) = c.runs();
    const RUNS: &str = "Runs that ended, by result (ok: exit code 0; failed: a link, a mail or the state file failed).";
    e.counter(
        "pxcrm_runs_total",
        RUNS,
        &[("result", "ok")],
        runs.saturating_sub(failed),
    );
    e.counter("pxcrm_runs_total", RUNS, &[("result", "failed")], failed);
    if let Some(last) = c.last_run() {
        e.gauge(
            "pxcrm_last_run_timestamp_seconds",
            "When the last run ended (Unix time).",
            &[],
            last.at as f64,
        );
        e.gauge(
            "pxcrm_last_run_duration_seconds",
            "How long the last run took.",
            &[],
            last.millis as f64 / 1000.0,
        );
        e.gauge(
            "pxcrm_last_run_ok",
            "1 when the last run succeeded (exit code 0).",
            &[],
            flag(last.ok),
        );
    }
    if let Some(t) = c.last_success() {
        e.gauge(
            "pxcrm_last_success_timestamp_seconds",
            "When the last successful run (exit code 0) ended (Unix time).",
            &[],
            t as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::status::RowView;
    use crate::db::flavor::Flavor;
    use crate::db::state::{FailureKind, LinkFailure, NodeReport, StateRow};
    use crate::exec::server::{ClusterStatus, LocalState, NodeFacts};
    use prometheus_parse::{Sample, Scrape, Value};

    fn facts(name: &str) -> NodeFacts {
        NodeFacts {
            name: name.into(),
            cluster: "DC1".into(),
            cluster_status: ClusterStatus::Primary,
            local_state: LocalState::Synced,
            local_state_comment: "Synced".into(),
            local_index: 0,
            cluster_size: 3,
            flavor: Flavor::MariaDb {
                version: (10, 11, 6),
            },
            gtid_domain_id: None,
            gtid_position: String::new(),
            weight: 0,
            incoming_address: None,
        }
    }

    fn row(host: &str, role: Role, channel: ChannelState, silent: i64, fresh: bool) -> RowView {
        RowView {
            row: StateRow {
                host: host.into(),
                local_index: Some(0),
                weight: 0,
                role,
                heartbeat_age: Some(silent + 1),
                update_age: Some(100),
                current_source: None,
                report: Some(NodeReport {
                    seq: 7,
                    address: None,
                    channel,
                    source: None,
                    paused_for: None,
                    fences: 0,
                    blocked: None,
                    blocked_for: None,
                    unfenceable: None,
                    position: None,
                }),
                read_at: 1_000,
                in_view: Some(true),
            },
            silent_for: Some(silent),
            fresh,
        }
    }

    fn channel(lag: Option<u64>, io: Thread, sql: Thread) -> ReplicaStatus {
        ReplicaStatus {
            channel: "dc2".into(),
            source_host: "10.0.0.21".into(),
            source_port: 3306,
            source_user: "repl".into(),
            io_running: io,
            sql_running: sql,
            io_state: String::new(),
            last_io_error: String::new(),
            last_sql_error: String::new(),
            last_sql_errno: 0,
            lag_seconds: lag,
            gtid: Vec::new(),
        }
    }

    /// Node n1 replicates link DC2 (healthy, 4 s behind); n2 holds no role; failovers and
    /// fences counted; paused.
    fn report() -> Report {
        let mut counters = Counters::default();
        counters.failover("DC2", "source_lost");
        counters.failover("DC2", "source_lost");
        counters.fence("DC2");
        counters.run_finished(std::time::Duration::from_millis(1250), true, 1_700_000_000);
        Report {
            node: facts("n1"),
            address: None,
            generation: None,
            heartbeat_timeout: 179,
            silent_after: 179,
            paused_since: Some(1_699_999_000),
            cluster_pause: Some(crate::db::pause::ClusterPause {
                cluster: "DC1".into(),
                by: "n2 (alice)".into(),
                reason: "upgrade".into(),
                since: 1_699_999_500,
                until: Some(1_700_003_600),
                now: 1_700_000_000,
            }),
            login: String::new(),
            option_files: Default::default(),
            skewed: Vec::new(),
            connection: String::new(),
            links: vec![LinkReport {
                key: "DC2".into(),
                remote: "DC2".into(),
                channel: "dc2".into(),
                sources: vec!["10.0.0.21:3306".into()],
                rows: vec![row("n1", Role::Yes, ChannelState::Healthy, 3, true), {
                    let mut r = row("n2", Role::No, ChannelState::None, 5, true);
                    let p = r.row.report.as_mut().unwrap();
                    p.unfenceable = Some("n3 at a:1: refused: x; n4 at b:1: unreachable: y".into());
                    r
                }],
                replica: Some(channel(Some(4), Thread::Yes, Thread::Yes)),
                failure: None,
                last_event: None,
                switchover: None,
            }],
            other_channels: Vec::new(),
            counters,
        }
    }

    fn parse(text: &str) -> Scrape {
        Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses")
    }

    /// The one sample of `name` whose labels include `labels`.
    fn one<'a>(s: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> &'a Sample {
        let found: Vec<&Sample> = s
            .samples
            .iter()
            .filter(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
        found[0]
    }

    fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        match one(s, name, labels).value {
            Value::Gauge(v) | Value::Counter(v) | Value::Untyped(v) => v,
            ref other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn a_takeover_held_by_a_peer_that_cannot_be_fenced_is_a_link_gauge_and_a_counter() {
        let mut r = report();
        r.counters.fence_blocked("DC2");
        r.counters.fence_blocked("DC2");
        let rows = &mut r.links[0].rows;
        rows[1].row.report.as_mut().unwrap().blocked =
            Some("n1 at a:1 (login u): refused: Access denied (error 1045)".into());
        let s = parse(&render(&r));
        assert_eq!(
            value(&s, "pxcrm_link_takeover_held", &[("link", "DC2")]),
            1.0
        );
        assert!(matches!(
            one(&s, "pxcrm_fences_blocked_total", &[("link", "DC2")]).value,
            Value::Counter(2.0)
        ));
        // A silent node's record is as old as its last report: it holds nothing now.
        r.links[0].rows[1].fresh = false;
        let s = parse(&render(&r));
        assert_eq!(
            value(&s, "pxcrm_link_takeover_held", &[("link", "DC2")]),
            0.0
        );
    }

    #[test]
    fn a_replica_report_parses_with_its_names_labels_and_values() {
        let text = render(&report());
        let s = parse(&text);
        assert!(
            s.samples.iter().all(|x| x.metric.starts_with("pxcrm_")),
            "{text}"
        );
        assert!(s.docs.contains_key("pxcrm_link_role"), "HELP lines");
        assert_eq!(value(&s, "pxcrm_up", &[]), 1.0);
        assert_eq!(
            value(&s, "pxcrm_node_info", &[("node", "n1"), ("cluster", "DC1")]),
            1.0
        );
        let role = |r| value(&s, "pxcrm_link_role", &[("link", "DC2"), ("role", r)]);
        assert_eq!(
            (role("Yes"), role("No"), role("Proposed"), role("Failed")),
            (1.0, 0.0, 0.0, 0.0)
        );
        assert_eq!(
            value(
                &s,
                "pxcrm_link_replica_healthy",
                &[("link", "DC2"), ("remote", "DC2")]
            ),
            1.0
        );
        assert_eq!(value(&s, "pxcrm_link_replicas", &[("link", "DC2")]), 1.0);
        assert_eq!(
            value(
                &s,
                "pxcrm_heartbeat_age_seconds",
                &[("link", "DC2"), ("node", "n2")]
            ),
            6.0
        );
        assert_eq!(
            value(
                &s,
                "pxcrm_silent_seconds",
                &[("link", "DC2"), ("node", "n1")]
            ),
            3.0
        );
        assert_eq!(
            value(
                &s,
                "pxcrm_replica_silent_seconds",
                &[("link", "DC2"), ("node", "n1")]
            ),
            3.0
        );
        let ch = [
            ("link", "DC2"),
            ("channel", "dc2"),
            ("source", "10.0.0.21:3306"),
        ];
        assert_eq!(value(&s, "pxcrm_replication_lag_seconds", &ch), 4.0);
        assert_eq!(value(&s, "pxcrm_io_thread_up", &ch), 1.0);
        assert_eq!(value(&s, "pxcrm_sql_thread_up", &ch), 1.0);
        assert_eq!(value(&s, "pxcrm_source_up", &ch), 1.0);
        assert_eq!(value(&s, "pxcrm_paused", &[("scope", "node")]), 1.0);
        assert_eq!(
            value(
                &s,
                "pxcrm_paused_since_timestamp_seconds",
                &[("scope", "node")]
            ),
            1_699_999_000.0
        );
        assert_eq!(value(&s, "pxcrm_paused", &[("scope", "cluster")]), 1.0);
        assert_eq!(
            value(
                &s,
                "pxcrm_paused_since_timestamp_seconds",
                &[("scope", "cluster")]
            ),
            1_699_999_500.0
        );
        assert!(matches!(
            one(
                &s,
                "pxcrm_failovers_total",
                &[("link", "DC2"), ("cause", "source_lost")]
            )
            .value,
            Value::Counter(2.0)
        ));
        assert_eq!(
            value(
                &s,
                "pxcrm_failovers_total",
                &[("link", "DC2"), ("cause", "election")]
            ),
            0.0,
            "a known cause has a 0 series"
        );
        assert!(matches!(
            one(&s, "pxcrm_fences_total", &[("link", "DC2")]).value,
            Value::Counter(1.0)
        ));
        assert!(matches!(
            one(&s, "pxcrm_fences_blocked_total", &[("link", "DC2")]).value,
            Value::Counter(0.0)
        ));
        assert_eq!(
            value(&s, "pxcrm_link_takeover_held", &[("link", "DC2")]),
            0.0
        );
        let unfenceable = |n| {
            value(
                &s,
                "pxcrm_unfenceable_peers",
                &[("link", "DC2"), ("node", n)],
            )
        };
        assert_eq!((unfenceable("n1"), unfenceable("n2")), (0.0, 2.0));
        assert_eq!(value(&s, "pxcrm_runs_total", &[("result", "ok")]), 1.0);
        assert_eq!(value(&s, "pxcrm_runs_total", &[("result", "failed")]), 0.0);
        assert_eq!(value(&s, "pxcrm_last_run_duration_seconds", &[]), 1.25);
        assert_eq!(
            value(&s, "pxcrm_last_success_timestamp_seconds", &[]),
            1_700_000_000.0
        );
        assert_eq!(value(&s, "pxcrm_silent_threshold_seconds", &[]), 179.0);
    }

    #[test]
    fn a_broken_channel_and_a_silent_replica_elsewhere() {
        let mut r = report();
        r.paused_since = None;
        let l = &mut r.links[0];
        // n1 is now idle with its threads stopped; n2 holds the link but is silent.
        l.rows = vec![
            row("n1", Role::Failed, ChannelState::Stopped, 3, true),
            row("n2", Role::Yes, ChannelState::Healthy, 400, false),
        ];
        l.replica = Some(channel(None, Thread::Connecting, Thread::No));
        // The cluster's pause ended: its row is still there, and pauses nothing.
        if let Some(p) = r.cluster_pause.as_mut() {
            p.now = 1_700_003_600;
        }
        l.failure = Some(LinkFailure {
            host: "n1".into(),
            kind: FailureKind::Connect,
            age: Some(5),
            detail: String::new(),
        });
        let s = parse(&render(&r));
        assert_eq!(
            value(
                &s,
                "pxcrm_link_role",
                &[("link", "DC2"), ("role", "Failed")]
            ),
            1.0
        );
        assert_eq!(
            value(&s, "pxcrm_link_replica_healthy", &[("link", "DC2")]),
            0.0
        );
        assert_eq!(value(&s, "pxcrm_link_failing", &[("link", "DC2")]), 1.0);
        assert_eq!(
            value(&s, "pxcrm_replica_silent_seconds", &[("node", "n2")]),
            400.0
        );
        assert!(value(&s, "pxcrm_replication_lag_seconds", &[("link", "DC2")]).is_nan());
        assert_eq!(value(&s, "pxcrm_io_thread_up", &[("link", "DC2")]), 1.0);
        assert_eq!(value(&s, "pxcrm_source_up", &[("link", "DC2")]), 0.0);
        assert_eq!(value(&s, "pxcrm_sql_thread_up", &[("link", "DC2")]), 0.0);
        assert_eq!(value(&s, "pxcrm_paused", &[("scope", "node")]), 0.0);
        assert_eq!(value(&s, "pxcrm_paused", &[("scope", "cluster")]), 0.0);
        assert!(
            !s.samples
                .iter()
                .any(|x| x.metric == "pxcrm_paused_since_timestamp_seconds"),
            "no pause start while not paused"
        );
    }

    #[test]
    fn a_fresh_replica_whose_report_says_its_channel_is_broken_is_not_healthy() {
        let mut r = report();
        r.links[0].rows[0] = row("n1", Role::Yes, ChannelState::Running, 3, true);
        let s = parse(&render(&r));
        assert_eq!(
            value(&s, "pxcrm_link_replica_healthy", &[("link", "DC2")]),
            0.0
        );
    }

    #[test]
    fn without_a_channel_or_a_row_the_link_has_zero_roles_and_no_thread_series() {
        let mut r = report();
        r.links[0].rows.clear();
        r.links[0].replica = None;
        r.counters = Counters::default();
        let s = parse(&render(&r));
        for role in Role::ALL {
            assert_eq!(
                value(&s, "pxcrm_link_role", &[("role", role.as_str())]),
                0.0
            );
        }
        assert_eq!(value(&s, "pxcrm_link_replicas", &[("link", "DC2")]), 0.0);
        for name in ["pxcrm_replication_lag_seconds", "pxcrm_sql_thread_up"] {
            assert!(!s.samples.iter().any(|x| x.metric == name), "{name}");
        }
        // Counters start at 0 for the configured link, before anything happened.
        assert_eq!(value(&s, "pxcrm_fences_total", &[("link", "DC2")]), 0.0);
        assert_eq!(
            value(&s, "pxcrm_failovers_total", &[("cause", "silent_replica")]),
            0.0
        );
        assert!(
            !s.samples
                .iter()
                .any(|x| x.metric == "pxcrm_last_success_timestamp_seconds"),
            "no run recorded yet"
        );
    }

    #[test]
    fn down_says_up_0_with_the_counters_of_the_state_file() {
        let mut c = Counters::default();
        c.fence("DC2");
        c.run_finished(std::time::Duration::from_millis(10), false, 5);
        let s = parse(&render_down(&c, None));
        assert_eq!(value(&s, "pxcrm_up", &[]), 0.0);
        assert_eq!(value(&s, "pxcrm_fences_total", &[("link", "DC2")]), 1.0);
        assert_eq!(value(&s, "pxcrm_runs_total", &[("result", "failed")]), 1.0);
        assert_eq!(value(&s, "pxcrm_last_run_ok", &[]), 0.0);
        assert!(
            !s.samples.iter().any(|x| x.metric == "pxcrm_link_role"),
            "nothing the server would have said"
        );
    }

    #[test]
    fn each_family_is_one_block_with_help_and_type_first() {
        let text = render(&report());
        let mut seen = std::collections::HashSet::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap().to_string();
                assert!(seen.insert(name.clone()), "{name} declared twice");
                current = name;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                assert!(rest.starts_with(&format!("{current} ")), "{line}");
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(name, current, "sample outside its block: {line}");
            }
        }
    }

    /// Reads the label values of one sample line as the format defines them (a reader
    /// independent of the writer's escaping code: it walks the characters).
    fn read_labels(line: &str) -> Vec<(String, String)> {
        let open = line.find('{').expect("labels");
        let mut chars = line[open + 1..].chars();
        let mut out = Vec::new();
        loop {
            let mut key = String::new();
            for c in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            assert_eq!(chars.next(), Some('"'), "{line}");
            let mut value = String::new();
            loop {
                match chars.next().expect("unterminated value") {
                    '\\' => match chars.next() {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => panic!("bad escape {other:?} in {line}"),
                    },
                    '"' => break,
                    '\n' => panic!("raw newline in {line}"),
                    c => value.push(c),
                }
            }
            out.push((key, value));
            match chars.next() {
                Some(',') => continue,
                Some('}') => return out,
                other => panic!("{other:?} after a value in {line}"),
            }
        }
    }

    const HOSTILE: &str = "a\\b\"c\nd} e=\"f,g\\n";

    fn hostile() -> Report {
        let mut r = report();
        r.node.name = HOSTILE.into();
        r.links[0].key = HOSTILE.into();
        r.links[0].rows[1].row.host = HOSTILE.into();
        r
    }

    #[test]
    fn hostile_label_values_are_escaped_and_read_back_intact() {
        let text = render(&hostile());
        let mut found = 0;
        let has_labels = |l: &str| {
            l.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_')
                .starts_with('{')
        };
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && has_labels(l))
        {
            let labels = read_labels(line);
            found += labels.iter().filter(|(_, v)| v == HOSTILE).count();
        }
        // node_info, four roles, replica healthy/replicas/failing, the rows' ages, the
        // channel's four series, and the counters all carry the hostile link or node.
        assert!(found >= 15, "{found} hostile values read back:\n{text}");
        assert!(text.contains(r#"link="a\\b\"c\nd} e=\"f,g\\n""#), "{text}");
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline_only() {
        assert_eq!(escape_label("plain-value.1:3306"), "plain-value.1:3306");
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_help("x\\y\nz"), "x\\\\y\\nz");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(1.0), "1");
        assert_eq!(number(1.25), "1.25");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }

    /// `promtool check metrics` (Debian's `prometheus` package) on a report and on a hostile
    /// one; skipped, saying so, where promtool is not installed.
    #[test]
    fn promtool_accepts_the_output_when_installed() {
        let Some(promtool) = promtool() else {
            eprintln!("SKIPPED: promtool not found (apt-get install prometheus to run this test)");
            return;
        };
        for (what, text) in [
            ("report", render(&report())),
            ("hostile", render(&hostile())),
            ("down", render_down(&report().counters, Some(1))),
        ] {
            let out = promtool_check(&promtool, &text);
            assert!(
                out.0,
                "promtool check metrics refused the {what} output: {}\n{text}",
                out.1
            );
        }
        // And it does see a broken exposition: the test would notice a promtool that passes
        // anything.
        let (ok, _) = promtool_check(&promtool, "pxcrm_up{a=\"b} 1\n");
        assert!(!ok, "promtool accepted a broken line");
    }

    pub(crate) fn promtool() -> Option<std::path::PathBuf> {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("promtool"))
                .find(|f| f.is_file())
        })
    }

    /// Runs `promtool check metrics` on `text`; whether it passed (no lint problem
    /// either), and what it said.
    fn promtool_check(promtool: &std::path::Path, text: &str) -> (bool, String) {
        use std::io::Write as _;
        let mut child = std::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool starts");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success() && said.trim().is_empty(), said)
    }
}
