//! `explain`: why each node of this cluster is, or is not, the replica of each link, in this
//! node's view: its rank in the policy's `rank_nodes`, weight, index, role, whether it
//! reports and for how long it has been silent, until when it stays `Failed`, whether it is
//! paused or has left the view, and the one reason. The rows, the ranking and the timeouts are
//! the policy's own (`policy::explain`), read in a dry run: nothing is written.

use super::{guard, open_local, run_ctx};
use crate::config::Config;
use crate::db::clock::Observations;
use crate::db::state::{FailureKind, Role};
use crate::error::{Result, printable};
use crate::exec::Mode;
use crate::policy::Policy;
use crate::policy::explain::{LinkView, Seen};
use serde::Serialize;
use std::path::Path;

/// The version of `explain --format json`'s shape: raised when a field changes meaning or goes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub schema_version: u32,
    /// The node whose view this is.
    pub node: String,
    pub cluster: String,
    /// This node's Galera state: `primary` and `synced` when it may act.
    pub cluster_status: String,
    pub local_state: String,
    /// The silent threshold, in seconds.
    pub silent_after: i64,
    /// The policy's `failed_clears_after`, in seconds (`null` when it failed).
    pub failed_clears_after: Option<i64>,
    /// What the policy's hooks said wrong, if anything.
    pub warnings: Vec<String>,
    pub links: Vec<LinkExplained>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LinkExplained {
    /// The link's name (`DC1-DC2`).
    pub link: String,
    pub remote: String,
    /// The node that holds the link, if one does.
    pub holder: Option<String>,
    /// Why the rows or the ranking could not be read, if they could not.
    pub error: Option<String>,
    pub nodes: Vec<NodeExplained>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeExplained {
    pub host: String,
    /// Its place in the policy's ranking (1 is the best), `null` when not ranked.
    pub rank: Option<usize>,
    pub weight: i64,
    pub local_index: Option<i64>,
    /// `no`, `yes`, `proposed` or `failed`.
    pub role: String,
    /// It writes reports (a node running this tool).
    pub reports: bool,
    /// Seconds its report has stood still, seen from this node.
    pub silent_for: Option<i64>,
    /// Not silent: it reports, and is in the view.
    pub fresh: bool,
    /// `false` when it has left this node's Primary view; `null` when not known.
    pub in_view: Option<bool>,
    pub paused: bool,
    /// For a `Failed` row: seconds until the failed timeout clears it (0: at its next run).
    pub failed_clears_in: Option<i64>,
    /// It holds the link.
    pub holds: bool,
    /// The one reason it is or is not the replica.
    pub reason: String,
}

/// Explains every link of this node, or the one named.
pub fn explain(
    cfg: &Config,
    policy: &Policy,
    defaults_file: Option<&Path>,
    link: Option<&str>,
) -> Result<Explanation> {
    let node = open_local(cfg, defaults_file)?;
    let links = super::pick_links(&node.links, link, &node.facts.name)?;
    let facts = node.facts.clone();
    let backend = node.into_backend(cfg, Mode::DryRun, Box::new(std::io::sink()));
    let ctx = run_ctx(
        cfg,
        Box::new(backend),
        links,
        Observations::peek(&cfg.files.state),
        guard::paused_since(&cfg.files.pause),
    );
    let views = policy.explain(ctx);
    let mut warnings = Vec::new();
    let failed_after = match views.first().map(|v| v.failed_after.clone()) {
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            warnings.push(format!(
                "failed_clears_after failed: {e}; no time until Failed clears is shown"
            ));
            None
        }
        None => None,
    };
    if let Some(w) = views.first().and_then(|v| v.threshold_warning.clone()) {
        warnings.push(w);
    }
    Ok(Explanation {
        schema_version: SCHEMA_VERSION,
        node: facts.name.clone(),
        cluster: facts.cluster.clone(),
        cluster_status: facts.cluster_status.to_string().to_ascii_lowercase(),
        local_state: facts.local_state_comment.to_ascii_lowercase(),
        silent_after: views
            .first()
            .map_or(cfg.timeouts.heartbeat, |v| v.threshold),
        failed_clears_after: failed_after,
        warnings,
        links: views
            .iter()
            .map(|v| link_explained(v, failed_after, &facts.name, facts.is_primary()))
            .collect(),
    })
}

/// `me` and `primary`: this node, whose own row the view does not judge (it is in its own
/// view when it is in the Primary component).
fn link_explained(
    v: &LinkView,
    failed_after: Option<i64>,
    me: &str,
    primary: bool,
) -> LinkExplained {
    let (rows, mut error) = match (&v.rows, &v.ranked) {
        (Ok(r), Ok(_)) => (r.clone(), None),
        (Ok(r), Err(e)) => (r.clone(), Some(format!("rank_nodes failed: {e}"))),
        (Err(e), _) => (Vec::new(), Some(format!("the rows could not be read: {e}"))),
    };
    // Not read is not "none": the reasons below would say the link waits on nothing.
    if let (Err(e), None) = (&v.failure, &error) {
        error = Some(format!(
            "the link's recorded failure could not be read ({e}): a wait on a data error is not shown"
        ));
    }
    let ranked: Vec<String> = v.ranked.clone().unwrap_or_default();
    let holders: Vec<&Seen> = rows.iter().filter(|s| s.holds).collect();
    let holder = holders.first().map(|s| s.row.host.clone());
    let nodes = rows
        .iter()
        .map(|s| {
            let rank = ranked.iter().position(|h| *h == s.row.host).map(|i| i + 1);
            let failed_clears_in = (s.row.role == Role::Failed)
                .then(|| failed_after.map(|t| (t - s.row.update_age.unwrap_or(t)).max(0)))
                .flatten();
            NodeExplained {
                host: s.row.host.clone(),
                rank,
                weight: s.row.weight,
                local_index: s.row.local_index,
                role: s.row.role.as_str().to_ascii_lowercase(),
                reports: s.row.report.is_some(),
                silent_for: s.silent_for,
                fresh: s.fresh,
                in_view: if s.row.host == me {
                    Some(primary)
                } else {
                    s.in_view
                },
                paused: s.paused,
                failed_clears_in,
                holds: s.holds,
                reason: reason(s, rank, &ranked, &holders, v, failed_clears_in),
            }
        })
        .collect();
    LinkExplained {
        link: v.link.name.clone(),
        remote: v.link.remote.clone(),
        holder,
        error,
        nodes,
    }
}

/// The one reason a node is or is not the replica: the first rule that decides it.
fn reason(
    s: &Seen,
    rank: Option<usize>,
    ranked: &[String],
    holders: &[&Seen],
    v: &LinkView,
    failed_clears_in: Option<i64>,
) -> String {
    if s.holds {
        return holder_reason(s, holders);
    }
    if let Some(why) = state_reason(s, v, failed_clears_in) {
        return why;
    }
    let Some(rank) = rank else {
        return "not a candidate: the policy's rank_nodes leaves it out".into();
    };
    if let Some(h) = holders.first() {
        return if rank == 1 {
            format!(
                "the best candidate, but {} holds the link, and a healthy replica is never moved for a better one",
                h.row.host
            )
        } else {
            format!("candidate {rank}: {} holds the link", h.row.host)
        };
    }
    if rank > 1 {
        return format!(
            "candidate {rank}: {} ranks first",
            ranked.first().map_or("", String::as_str)
        );
    }
    match &v.failure {
        Ok(Some(f)) if f.kind == FailureKind::Sql => format!(
            "the best candidate; the link waits: {} failed on a data error {} s ago (until the failed timeout, or clear-failure)",
            f.host,
            f.age.map_or("?".into(), |a| a.to_string())
        ),
        _ => "the best candidate, and nobody holds the link: its next run takes it".into(),
    }
}

/// Why a node that holds the link holds it, naming the others that hold it too.
fn holder_reason(s: &Seen, holders: &[&Seen]) -> String {
    let also = if holders.len() > 1 {
        let others: Vec<&str> = holders
            .iter()
            .filter(|h| h.row.host != s.row.host)
            .map(|h| h.row.host.as_str())
            .collect();
        format!(
            " (so do {}: the next run of each resolves it)",
            others.join(", ")
        )
    } else {
        String::new()
    };
    match s.row.role {
        Role::Yes => format!("the replica: its row says Yes and it reports{also}"),
        Role::Proposed => format!("taking the link now: Proposed in a run in progress{also}"),
        _ => format!(
            "holds the link: its report says its channel runs, though its row says {}{also}",
            s.row.role
        ),
    }
}

/// The reason a node's own state decides before any rank (out of the view, silent, Failed,
/// paused), if it does.
fn state_reason(s: &Seen, v: &LinkView, failed_clears_in: Option<i64>) -> Option<String> {
    let silent = s.silent_for.map_or("?".to_string(), |a| a.to_string());
    if s.in_view == Some(false) {
        return Some("not a candidate: it has left the Primary view (crashed or cut off)".into());
    }
    if !s.fresh {
        return Some(if s.row.report.is_some() {
            format!(
                "not a candidate: silent, its report has not moved for {silent} s (limit {} s)",
                v.threshold
            )
        } else {
            format!(
                "not a candidate: it does not report (no manager of this version), heartbeat {silent} s ago (limit {} s)",
                v.threshold
            )
        });
    }
    if s.row.role == Role::Failed {
        return Some(match failed_clears_in {
            Some(0) => "Failed, past the failed timeout: its next run makes it a candidate".into(),
            Some(n) => format!(
                "not a candidate: Failed; a candidate again in {n} s (failed_clears_after), or after clear-failure"
            ),
            None => "not a candidate: Failed".into(),
        });
    }
    if s.paused {
        return Some("not a candidate: paused (pause file, or its cluster's pause)".into());
    }
    None
}

impl Explanation {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// A table per link, for a person.
    pub fn to_text(&self) -> String {
        let mut o = format!(
            "In the view of {} ({}, {}/{}): silent after {} s, Failed clears after {}.\n",
            self.node,
            self.cluster,
            self.cluster_status,
            self.local_state,
            self.silent_after,
            self.failed_clears_after
                .map_or("? s".to_string(), |t| format!("{t} s"))
        );
        for w in &self.warnings {
            o.push_str(&format!("warning: {}\n", printable(w)));
        }
        for l in &self.links {
            o.push_str(&link_text(l));
        }
        o.trim_end().to_string()
    }
}

/// One link's heading, its error if any, and its table of nodes.
fn link_text(l: &LinkExplained) -> String {
    let mut o = format!(
        "\nlink {} (from {}): {}\n",
        l.link,
        l.remote,
        match &l.holder {
            Some(h) => format!("{h} holds it"),
            None => "nobody holds it".into(),
        }
    );
    if let Some(e) = &l.error {
        o.push_str(&format!("  {}\n", printable(e)));
    }
    let head = [
        "RANK", "NODE", "WEIGHT", "INDEX", "ROLE", "REPORTS", "VIEW", "PAUSED", "WHY",
    ];
    let rows: Vec<[String; 9]> = l.nodes.iter().map(node_cells).collect();
    o.push_str(&table(head, &rows));
    o
}

/// A node's cells, in the order of the table's heading.
fn node_cells(n: &NodeExplained) -> [String; 9] {
    [
        n.rank.map_or("-".into(), |r| r.to_string()),
        printable(&n.host),
        n.weight.to_string(),
        n.local_index.map_or("-".into(), |i| i.to_string()),
        n.role.clone(),
        match (n.reports, n.fresh, n.silent_for) {
            (false, _, _) => "no".into(),
            (true, true, _) => "yes".into(),
            (true, false, Some(a)) => format!("silent {a} s"),
            (true, false, None) => "silent".into(),
        },
        match n.in_view {
            Some(true) => "in".into(),
            Some(false) => "left".into(),
            None => "?".into(),
        },
        if n.paused { "yes" } else { "no" }.into(),
        n.reason.clone(),
    ]
}

/// The heading and the rows, each column but the last padded to its widest cell.
fn table(head: [&str; 9], rows: &[[String; 9]]) -> String {
    let mut width = head.map(str::len);
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(&format!(" {c}"));
            } else {
                s.push_str(&format!(" {c:w$}", w = width[i]));
            }
        }
        s.push('\n');
        s
    };
    let mut o = line(head.to_vec());
    for r in rows {
        o.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    o
}
