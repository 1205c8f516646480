//! Counterexamples an operator can read and replay: the trace replays a violation's events,
//! printing the statements of every run and the world after each step, and writes, for every
//! run in it, a scenario file of the world as that node saw it when its run started, which
//! `pxc-replication-manager simulate --scenario FILE` replays.

use super::Model;
use super::node::address;
use super::search::Violation;
use super::world::{Event, Manager, Server, SourceState, World};
use crate::db::clock::Observations;
use crate::error::{Error, Result};
use crate::exec::sim::NOW;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use toml::{Table, Value};

/// The trace of a violation, as text.
pub fn render(model: &Model, v: &Violation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "counterexample: {}", v.property);
    let _ = writeln!(out, "  {}", v.message);
    let _ = writeln!(out, "  bounds: {}", model.bounds.describe());
    let mut w = model.initial();
    let _ = writeln!(out, "  0. a fresh cluster: {}", summary(model, &w));
    for (n, e) in v.events.iter().enumerate() {
        let buf = Rc::new(RefCell::new(Vec::new()));
        let what = e.describe(&w);
        let split = model.bounds.split
            && matches!(e, Event::Run(i) if w.nodes[*i].run.is_some() || model.bounds.split);
        let step = model.step(&w, e, Some(buf.clone()));
        let suffix = match (e, &step.completed, split) {
            (Event::Run(_), None, _) => " (one host call; the run goes on later)",
            (Event::Run(_), Some(_), true) => " (its last host call)",
            _ => "",
        };
        let _ = writeln!(out, "{:>3}. {what}{suffix}", n + 1);
        let text = String::from_utf8_lossy(&buf.borrow()).to_string();
        for line in text.lines().filter(|l| !l.contains(":     | ")) {
            let _ = writeln!(out, "       {line}");
        }
        if let Some(c) = &step.completed {
            for (k, e) in &c.errors {
                let _ = writeln!(out, "       error on {k}: {e}");
            }
        }
        w = step.world;
        let _ = writeln!(out, "       => {}", summary(model, &w));
    }
    out
}

/// The world in one line: each node's server, manager, rows and channels; the sources.
pub fn summary(model: &Model, w: &World) -> String {
    let mut parts = Vec::new();
    for (i, n) in w.nodes.iter().enumerate() {
        let mut s = format!("{} {}", n.name, n.server);
        match n.manager {
            Manager::Cron => {}
            Manager::Paused => s.push_str(" paused"),
            Manager::Stopped => s.push_str(" no-manager"),
        }
        if n.refuses_fence {
            s.push_str(" refuses-fence");
        }
        for (l, link) in model.links().iter().enumerate() {
            let role = w.tables[l]
                .rows
                .iter()
                .find(|r| r.host == n.name)
                .map_or("-".to_string(), |r| r.role.to_string());
            let ch = match &n.channels[l] {
                None => String::new(),
                Some(c) if w.runs(i, l) && w.carries_data(i, l) => format!(" <={}", c.source),
                Some(c) if w.runs(i, l) => format!(" <~{}", c.source),
                Some(_) => " (stopped)".into(),
            };
            let name = if model.links().len() > 1 {
                format!("{}:", link.remote)
            } else {
                String::new()
            };
            s.push_str(&format!(" {name}{role}{ch}"));
        }
        parts.push(s);
    }
    let sources: Vec<String> = w
        .sources
        .iter()
        .filter(|(_, s)| **s != SourceState::Up)
        .map(|(a, s)| format!("{a} {}", format!("{s:?}").to_lowercase()))
        .collect();
    let mut line = parts.join(" | ");
    if !sources.is_empty() {
        line.push_str(&format!(" | {}", sources.join(", ")));
    }
    line
}

/// Writes the trace (`trace.txt`) and a scenario file per run of the violation into `dir`;
/// returns the files written.
pub fn write(model: &Model, v: &Violation, dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |p: &Path, e: std::io::Error| Error::Model(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut files = Vec::new();
    let trace = dir.join("trace.txt");
    std::fs::write(&trace, render(model, v)).map_err(|e| io(&trace, e))?;
    files.push(trace);
    let mut w = model.initial();
    for (n, e) in v.events.iter().enumerate() {
        if let Event::Run(i) = e
            && w.nodes[*i].run.is_none()
        {
            let path = dir.join(format!("{:02}-{}.toml", n + 1, w.nodes[*i].name));
            let text = scenario(model, &w, *i, n + 1, v);
            std::fs::write(&path, text).map_err(|e| io(&path, e))?;
            files.push(path);
        }
        w = model.step(&w, e, None).world;
    }
    Ok(files)
}

/// The scenario file of node `i`'s run starting in world `w` (step `n` of the trace).
pub fn scenario(model: &Model, w: &World, i: usize, n: usize, v: &Violation) -> String {
    let node = &w.nodes[i];
    let primary = node.server == Server::Primary;
    let mut root = Table::new();
    let mut t = Table::new();
    t.insert("name".into(), node.name.clone().into());
    t.insert("cluster".into(), "DC1".into());
    t.insert("local_index".into(), (i as i64).into());
    t.insert(
        "cluster_status".into(),
        if primary { "Primary" } else { "non-Primary" }.into(),
    );
    t.insert("state".into(), Value::Integer(if primary { 4 } else { 0 }));
    let size = w
        .nodes
        .iter()
        .filter(|n| n.server == Server::Primary)
        .count() as i64;
    t.insert(
        "cluster_size".into(),
        Value::Integer(if primary { size } else { 1 }),
    );
    t.insert("address".into(), address(i).into());
    if model.bounds.weight(i) != 0 {
        t.insert("weight".into(), Value::Integer(model.bounds.weight(i)));
    }
    if let Some(p) = node.paused_since {
        t.insert(
            "paused_for".into(),
            Value::Integer(model.clock.secs(NOW - p)),
        );
    }
    if model.schema.has_switchover_table {
        t.insert("switchover_table".into(), Value::Boolean(true));
    }
    root.insert("node".into(), Value::Table(t));
    let mut tm = Table::new();
    tm.insert("heartbeat".into(), Value::Integer(model.bounds.heartbeat));
    tm.insert("failed".into(), Value::Integer(model.bounds.failed));
    root.insert("timeouts".into(), Value::Table(tm));
    let mut pol = Table::new();
    pol.insert("distribute".into(), model.cfg().policy.distribute.into());
    // The policy that produced the counterexample: `simulate` replays with it by default.
    let site = site_policy(model);
    if let Some(f) = &site {
        pol.insert("file".into(), f.display().to_string().into());
    }
    if !model.cfg().policy.vars.is_empty() {
        pol.insert("vars".into(), Value::Table(model.cfg().policy.vars.clone()));
    }
    root.insert("policy".into(), Value::Table(pol));
    let links: Vec<Value> = model
        .links()
        .iter()
        .enumerate()
        .map(|(l, link)| Value::Table(link_table(model, w, i, l, link, &node.memo)))
        .collect();
    root.insert("link".into(), Value::Array(links));
    let head = format!(
        "# Step {n} of the model checker's counterexample for \"{}\":\n# {} runs{}. Replay it with\n#   pxc-replication-manager simulate --scenario <this file>\n# which runs {} (see trace.txt beside it for every step).\n",
        v.property,
        node.name,
        site.as_ref().map_or_else(
            || "the built-in policy".to_string(),
            |f| format!("{}, named in [policy] file", f.display())
        ),
        if model.bounds.split {
            " (the checked run was split at its host calls; other steps may come between them, see trace.txt)"
        } else {
            ""
        }
    );
    format!("{head}{}", toml::to_string(&root).unwrap_or_default())
}

/// The site policy of a model, as an absolute path when it can be made one.
fn site_policy(model: &Model) -> Option<PathBuf> {
    if model.policy.name == crate::policy::DEFAULT_POLICY_NAME {
        return None;
    }
    let p = PathBuf::from(&model.policy.name);
    Some(std::fs::canonicalize(&p).unwrap_or(p))
}

/// One link of a node, as the scenario file's `[[link]]` table.
fn link_table(
    model: &Model,
    w: &World,
    i: usize,
    l: usize,
    link: &crate::config::topology::Link,
    memo: &Observations,
) -> Table {
    let mut t = Table::new();
    t.insert("remote".into(), link.remote.clone().into());
    let addrs: Vec<String> = link.sources.iter().map(|s| s.address()).collect();
    let list = |f: &dyn Fn(&SourceState) -> bool| -> Value {
        Value::Array(
            addrs
                .iter()
                .filter(|a| w.sources.get(*a).is_some_and(f))
                .map(|a| Value::String(a.clone()))
                .collect(),
        )
    };
    t.insert(
        "sources".into(),
        Value::Array(addrs.iter().map(|a| Value::String(a.clone())).collect()),
    );
    t.insert(
        "answering".into(),
        list(&|s| matches!(s, SourceState::Up | SourceState::CutOff)),
    );
    t.insert("unhealthy".into(), list(&|s| *s == SourceState::CutOff));
    if let Some(s) = w.status(i, l, &link.channel) {
        t.insert("replica".into(), Value::Table(replica_table(&s)));
    }
    if let Some(f) = &w.tables[l].failure {
        t.insert("failure".into(), Value::Table(failure_table(model, f)));
    }
    if let Some(x) = &w.tables[l].switchover {
        t.insert(
            "switchover".into(),
            Value::Table(switchover_table(model, x)),
        );
    }
    let rows: Vec<Value> = w.tables[l]
        .rows
        .iter()
        .map(|r| Value::Table(row_table(model, w, i, l, link, memo, r)))
        .collect();
    t.insert("row".into(), Value::Array(rows));
    t
}

/// A node's replica status for a link, as the link's `[link.replica]` table.
fn replica_table(s: &crate::db::flavor::ReplicaStatus) -> Table {
    let mut r = Table::new();
    r.insert("source".into(), s.source().into());
    r.insert("io".into(), s.io_running.to_string().into());
    r.insert("sql".into(), s.sql_running.to_string().into());
    r.insert("io_state".into(), s.io_state.clone().into());
    if !s.last_sql_error.is_empty() {
        r.insert("sql_error".into(), s.last_sql_error.clone().into());
    }
    if let Some(lag) = s.lag_seconds {
        r.insert("lag".into(), Value::Integer(lag as i64));
    }
    match s.gtid_position() {
        Some("") => {}
        Some(p) => {
            r.insert("position".into(), p.into());
        }
        None => {
            r.insert("position_known".into(), Value::Boolean(false));
        }
    }
    r
}

/// A link's recorded failure, as the link's `[link.failure]` table.
fn failure_table(model: &Model, f: &crate::db::state::LinkFailure) -> Table {
    let mut ft = Table::new();
    ft.insert("host".into(), f.host.clone().into());
    ft.insert("kind".into(), f.kind.as_str().into());
    ft.insert(
        "age".into(),
        Value::Integer(model.clock.secs(f.age.unwrap_or(0))),
    );
    ft.insert("detail".into(), f.detail.clone().into());
    ft
}

/// A link's switchover request, as the link's `[link.switchover]` table.
fn switchover_table(model: &Model, x: &crate::db::switchover::Request) -> Table {
    let mut st = Table::new();
    st.insert("from".into(), x.from.clone().into());
    st.insert("to".into(), x.to.clone().into());
    st.insert("phase".into(), x.phase.as_str().into());
    st.insert(
        "age".into(),
        Value::Integer(model.clock.secs(x.age_ms / 1000)),
    );
    if let Some(p) = &x.position {
        st.insert("position".into(), p.clone().into());
    }
    if let Some(src) = &x.source {
        st.insert("source".into(), src.clone().into());
    }
    st
}

/// One state-table row of a link, as a `[[link.row]]` table, with its peer's server when the
/// row names a node of the model.
fn row_table(
    model: &Model,
    w: &World,
    i: usize,
    l: usize,
    link: &crate::config::topology::Link,
    memo: &Observations,
    r: &crate::db::state::StateRow,
) -> Table {
    let reach = w.nodes[i].server == Server::Primary;
    let mut rt = Table::new();
    rt.insert("host".into(), r.host.clone().into());
    rt.insert("state".into(), r.role.as_str().into());
    if r.weight != 0 {
        rt.insert("weight".into(), Value::Integer(r.weight));
    }
    if let Some(x) = r.local_index {
        rt.insert("local_index".into(), Value::Integer(x));
    }
    if let Some(a) = r.heartbeat_age {
        rt.insert("heartbeat_age".into(), Value::Integer(model.clock.secs(a)));
    }
    if let Some(a) = r.update_age {
        rt.insert("update_age".into(), Value::Integer(model.clock.secs(a)));
    }
    if let Some(s) = &r.current_source {
        rt.insert("current_source".into(), s.clone().into());
    }
    if let Some(p) = &r.report {
        let pt = report_table(w, i, link, memo, &r.host, p);
        rt.insert("report".into(), Value::Table(pt));
    }
    if let Some((j, peer)) = w.nodes.iter().enumerate().find(|(_, n)| n.name == r.host) {
        let server = if !reach || peer.server != Server::Primary {
            "down"
        } else if peer.refuses_fence {
            "refuses"
        } else if w.runs(j, l) {
            "replicating"
        } else {
            "idle"
        };
        rt.insert("server".into(), server.into());
        if peer.server == Server::Primary && reach {
            rt.insert("member".into(), address(j).into());
        }
    }
    rt
}

/// A row's node report, as its `[link.row.report]` table, with how long node `i` has seen it
/// unchanged and when it fenced that node for it.
fn report_table(
    w: &World,
    i: usize,
    link: &crate::config::topology::Link,
    memo: &Observations,
    host: &str,
    p: &crate::db::state::NodeReport,
) -> Table {
    let mut pt = Table::new();
    pt.insert("seq".into(), Value::Integer(p.seq as i64));
    pt.insert("channel".into(), p.channel.as_str().into());
    if let Some(a) = &p.address {
        pt.insert("address".into(), a.clone().into());
    }
    if let Some(s) = &p.source {
        pt.insert("source".into(), s.clone().into());
    }
    if let Some(x) = p.paused_for {
        pt.insert("paused_for".into(), Value::Integer(x));
    }
    let seen = memo
        .freshness(&link.key, &w.nodes[i].name, 0)
        .seen
        .get(host)
        .copied();
    if let Some(s) = seen.filter(|s| s.seq == p.seq) {
        pt.insert("unchanged_for".into(), Value::Integer(NOW - s.since));
    }
    if let Some(f) = memo.fence_memo(&link.key, host).filter(|f| f.seq == p.seq) {
        let mut ft = Table::new();
        ft.insert("ago".into(), Value::Integer(NOW - f.at));
        ft.insert("reached".into(), Value::Boolean(f.reached));
        pt.insert("fenced".into(), Value::Table(ft));
    }
    pt
}
