//! The `status` report: what the node, its links, their state rows and its channels look like,
//! as text for a person or JSON for a program (its Prometheus form is `prometheus.rs`'s). Pure formatting; [`crate::app::status_report`] gathers the data.
//! Passwords are never part of the report.

use crate::db::clock::{Skew, fmt_age as age};
use crate::db::flavor::ReplicaStatus;
use crate::db::state::{Generation, LinkFailure, StateRow};
use crate::error::printable;
use crate::exec::server::NodeFacts;
use crate::metrics::Counters;
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Serialize)]
pub struct Report {
    pub node: NodeFacts,
    /// Where peers reach this node's server to fence it, as its reports record it.
    pub address: Option<String>,
    /// `None` when the state table could not be read.
    pub generation: Option<Generation>,
    pub heartbeat_timeout: i64,
    /// The threshold every rule uses (the policy may lengthen `heartbeat_timeout`).
    pub silent_after: i64,
    /// When this node's pause file appeared (Unix time), if it exists.
    pub paused_since: Option<i64>,
    /// The cluster's pause row (`pause`), if there is one, whether or not it still holds.
    pub cluster_pause: Option<crate::db::pause::ClusterPause>,
    /// Peers whose clock this node found off by more than a quarter of the threshold.
    pub skewed: Vec<Skew>,
    /// How the manager reached the local server: endpoint and TLS cipher.
    pub connection: String,
    /// Where the login came from ([`crate::exec::server::Login::source`]; never the password).
    pub login: String,
    /// The MySQL option files read for the login, and where each option came from.
    pub option_files: crate::config::mycnf::Provenance,
    pub links: Vec<LinkReport>,
    /// Channels on this node that no configured link manages.
    pub other_channels: Vec<ReplicaStatus>,
    /// The counters kept in the state file (failovers, fences, runs).
    pub counters: Counters,
}

#[derive(Debug, Serialize)]
pub struct LinkReport {
    pub key: String,
    pub remote: String,
    pub channel: String,
    pub sources: Vec<String>,
    pub rows: Vec<RowView>,
    /// This node's channel for the link, if it has one.
    pub replica: Option<ReplicaStatus>,
    /// Why the link is failing, if a node recorded it.
    pub failure: Option<LinkFailure>,
    /// The last thing that happened to the link (`history`), if the history has it.
    pub last_event: Option<crate::app::history::Event>,
    /// A switchover of the link under way, if there is one.
    pub switchover: Option<crate::db::switchover::Request>,
}

/// A row as this node judges it.
#[derive(Debug, Serialize)]
pub struct RowView {
    #[serde(flatten)]
    pub row: StateRow,
    /// How long this node has seen the node's report sequence stand still (or, for a node
    /// that does not report, its heartbeat age).
    pub silent_for: Option<i64>,
    pub fresh: bool,
}

fn channel_line(r: &ReplicaStatus) -> String {
    let gtid: Vec<String> = r
        .gtid
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut s = format!(
        "source {} IO={} SQL={} lag={} state={:?}",
        r.source(),
        r.io_running,
        r.sql_running,
        r.lag_seconds.map_or("NULL".into(), |l| format!("{l}s")),
        r.io_state
    );
    if !gtid.is_empty() {
        s.push_str(&format!(" {}", gtid.join(" ")));
    }
    if !r.last_io_error.is_empty() {
        s.push_str(&format!(
            "\n      IO error: {}",
            printable(&r.last_io_error)
        ));
    }
    if !r.last_sql_error.is_empty() {
        s.push_str(&format!(
            "\n      SQL error: {}",
            printable(&r.last_sql_error)
        ));
    }
    s
}

impl Report {
    pub fn to_text(&self) -> String {
        let mut o = self.node_text();
        for l in &self.links {
            o.push_str(&l.to_text());
        }
        for c in &self.other_channels {
            let _ = writeln!(
                o,
                "\nunmanaged channel {:?}: {}",
                c.channel,
                channel_line(c)
            );
        }
        o
    }

    /// The node's own lines: its place in the cluster, the pause, clock skews.
    fn node_text(&self) -> String {
        let n = &self.node;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "node {} of cluster {} ({}): {} / {} (state {}), index {}, weight {}, cluster size {}",
            printable(&n.name),
            printable(&n.cluster),
            n.flavor.label(),
            n.cluster_status,
            n.local_state_comment,
            n.local_state,
            n.local_index,
            n.weight,
            n.cluster_size
        );
        let _ = writeln!(
            o,
            "{}; state table: {}",
            if n.can_act() {
                "acts on its links"
            } else {
                "does NOT act (needs Primary and Synced or Donor)"
            },
            self.generation
                .as_ref()
                .map_or("not readable".into(), Generation::describe)
        );
        let _ = writeln!(o, "connected to {}", self.connection);
        let _ = writeln!(o, "login {}", self.login);
        if !n.gtid_position.is_empty() {
            let _ = writeln!(o, "GTID position: {}", n.gtid_position);
        }
        let _ = writeln!(
            o,
            "peers fence it at {}; a node is silent after {} s without a report",
            self.address
                .as_deref()
                .unwrap_or("(unknown: set [local] address)"),
            self.silent_after
        );
        if let Some(since) = self.paused_since {
            let _ = writeln!(
                o,
                "PAUSED since {} (pause file): runs report (heartbeat while the channel runs) and change nothing else",
                local_time(since)
            );
        }
        match &self.cluster_pause {
            Some(p) if p.is_active() => {
                let _ = writeln!(
                    o,
                    "CLUSTER PAUSED by {} at {}, {}, {}: every node reports and changes nothing else (`resume` ends it)",
                    printable(&p.by),
                    local_time(p.since),
                    why(&p.reason),
                    p.until.map_or("until `resume`".into(), |u| format!(
                        "until {}",
                        local_time(u)
                    ))
                );
            }
            Some(p) => {
                let _ = writeln!(
                    o,
                    "cluster pause by {} ({}) ended at {}; `resume` removes its row",
                    printable(&p.by),
                    why(&p.reason),
                    p.until.map_or("?".into(), local_time)
                );
            }
            None => {}
        }
        for k in &self.skewed {
            let _ = writeln!(o, "CLOCK: {}", k.describe());
        }
        o
    }
}

/// A Unix time as the operator's local time.
fn local_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| t.to_string())
}

/// A pause's reason, quoted, or that none was given.
fn why(reason: &str) -> String {
    if reason.is_empty() {
        "no reason given".into()
    } else {
        format!("reason {:?}", printable(reason))
    }
}

impl LinkReport {
    /// A link: its rows as this node judges them, its failure, this node's channel.
    fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "\nlink {} (from {}, channel {}): sources {}",
            self.key,
            self.remote,
            if self.channel.is_empty() {
                "(default)"
            } else {
                &self.channel
            },
            self.sources.join(", ")
        );
        if self.rows.is_empty() {
            let _ = writeln!(o, "  no state rows yet");
        }
        for v in &self.rows {
            let _ = writeln!(o, "  {}", v.to_text());
            o.push_str(&v.fence_text());
        }
        if let Some(f) = &self.failure {
            let _ = writeln!(
                o,
                "  FAILING ({}) since {} ago, recorded by {}: {}",
                f.kind,
                age(f.age),
                printable(&f.host),
                printable(f.detail.lines().next().unwrap_or(""))
            );
            let _ = writeln!(
                o,
                "    once the cause is fixed: pxc-replication-manager clear-failure --link {}",
                printable(&self.remote)
            );
        }
        if let Some(x) = &self.switchover {
            let _ = writeln!(
                o,
                "  switchover under way: from {} to {}, {} {:.1} s ago (requested on {})",
                printable(&x.from),
                printable(&x.to),
                x.phase.as_str(),
                x.age_ms as f64 / 1000.0,
                printable(&x.requested_by)
            );
        }
        if let Some(e) = &self.last_event {
            let _ = writeln!(
                o,
                "  last event: {} UTC, {} on {}: {}",
                e.time.replace('T', " ").trim_end_matches('Z'),
                e.event,
                printable(&e.node),
                printable(&e.detail)
            );
        }
        match &self.replica {
            Some(r) => {
                let _ = writeln!(o, "  this node replicates: {}", channel_line(r));
            }
            None => {
                let _ = writeln!(o, "  this node does not replicate this link");
            }
        }
        o
    }
}

impl RowView {
    /// The node's fence record, when it has one: the peer that holds its takeover, and the
    /// peers its check cannot fence. A silent node's record is as of its last report.
    fn fence_text(&self) -> String {
        let mut o = String::new();
        let Some(p) = &self.row.report else {
            return o;
        };
        let stale = if self.fresh {
            ""
        } else {
            " (as of its last report)"
        };
        if let Some(b) = &p.blocked {
            let _ = writeln!(
                o,
                "    TAKEOVER HELD{}{stale}: {} cannot fence {}",
                p.blocked_for
                    .map_or(String::new(), |s| format!(" for {}", age(Some(s)))),
                printable(&self.row.host),
                printable(b)
            );
        }
        if let Some(u) = &p.unfenceable {
            let _ = writeln!(
                o,
                "    FENCE CHECK{stale}: {} cannot fence {}",
                printable(&self.row.host),
                printable(u)
            );
        }
        o
    }

    /// One row, on one line.
    fn to_text(&self) -> String {
        let r = &self.row;
        let fresh = if self.fresh { "" } else { " (silent)" };
        let report = match &r.report {
            Some(p) => format!(
                "; report #{} channel {}{}{}",
                p.seq,
                p.channel,
                p.paused_for
                    .map_or(String::new(), |s| format!(", PAUSED for {s}s")),
                if p.fences > 0 {
                    format!(", fenced {} time(s)", p.fences)
                } else {
                    String::new()
                }
            ),
            None => "; no report (original script?)".into(),
        };
        // What the node said of itself with that report: its state, its channel's lag and
        // executed GTID position (percona.replication_position).
        let position = match r.report.as_ref().and_then(|p| p.position.as_ref()) {
            Some(p) => {
                let mut s = format!("\n      {}", printable(&p.state));
                if let Some(l) = p.lag {
                    s.push_str(&format!(", lag {l}s"));
                }
                if let Some(g) = &p.gtid {
                    s.push_str(&format!(", executed GTID {}", printable(g)));
                }
                s
            }
            None => String::new(),
        };
        format!(
            "{:<20} {:<9} index {:<3} weight {:<4} silent for {}{} (heartbeat {} by the clocks) changed {} ago{}{report}{position}",
            printable(&r.host),
            r.role.as_str(),
            r.local_index.map_or("-".into(), |i| i.to_string()),
            r.weight,
            age(self.silent_for),
            fresh,
            age(r.heartbeat_age),
            age(r.update_age),
            r.current_source
                .as_ref()
                .map_or(String::new(), |s| format!(" source {}", printable(s)))
        )
    }
}
