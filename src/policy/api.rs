//! The host API a policy calls: read-only views of the node, its links, the state rows and the
//! replica channels, and the safe primitives that change things. Every primitive that changes
//! something builds an [`Action`] and hands it to the backend's one write seam.
//!
//! Safety interlocks live here, not in the policy, so a site policy cannot break them:
//! * `propose` and `connect` refuse on a node that is not Primary and Synced/Donor;
//! * `connect` refuses unless this node's row holds the link (`Proposed` or `Yes`) and no
//!   other node's fresh row does;
//! * row writes are skipped on a node outside the Primary component (they cannot succeed);
//! * `connect` may be called at most `2 × sources + 2` times per link per run.

use crate::config::SourceAddr;
use crate::executor::{Action, Backend, Outcome};
use crate::flavor::ReplicaStatus;
use crate::mail::Mail;
use crate::server::NodeFacts;
use crate::state::{Role, StateRow};
use crate::topology::Link;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// Run-wide settings a policy reads through `settings()`.
#[derive(Clone, Debug)]
pub struct Settings {
    pub heartbeat_timeout: i64,
    pub failed_timeout: i64,
    pub connect_timeout: Duration,
    pub distribute: bool,
    pub vars: Map,
}

/// The state of one run, shared by the registered functions.
pub struct RunCtx {
    pub backend: Box<dyn Backend>,
    pub links: Vec<Link>,
    pub settings: Settings,
    /// What changed, in order, for the end-of-run log line.
    pub events: Vec<String>,
    /// Sources connected this run, by link key.
    connected: HashMap<String, String>,
    /// `connect` calls this run, by link key.
    attempts: HashMap<String, usize>,
}

impl RunCtx {
    pub fn new(backend: Box<dyn Backend>, links: Vec<Link>, settings: Settings) -> RunCtx {
        RunCtx {
            backend,
            links,
            settings,
            events: Vec::new(),
            connected: HashMap::new(),
            attempts: HashMap::new(),
        }
    }

    fn node(&self) -> String {
        self.backend.facts().name.clone()
    }
}

pub type Shared = Rc<RefCell<RunCtx>>;

type Res<T> = Result<T, Box<EvalAltResult>>;

fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(msg.into().into())
}

fn host_err(e: crate::error::Error) -> Box<EvalAltResult> {
    e.to_string().into()
}

/// The node's facts as a policy sees them.
pub fn facts_map(f: &NodeFacts) -> Map {
    let mut m = Map::new();
    m.insert("name".into(), f.name.clone().into());
    m.insert("cluster".into(), f.cluster.clone().into());
    m.insert("cluster_status".into(), f.cluster_status.clone().into());
    m.insert("state".into(), f.local_state.into());
    m.insert("state_comment".into(), f.local_state_comment.clone().into());
    m.insert("local_index".into(), f.local_index.into());
    m.insert("cluster_size".into(), f.cluster_size.into());
    m.insert("primary".into(), f.is_primary().into());
    m.insert("can_act".into(), f.can_act().into());
    m.insert("weight".into(), f.weight.into());
    m.insert("flavor".into(), f.flavor.label().into());
    m.insert(
        "gtid_domain_id".into(),
        f.gtid_domain_id
            .map_or(Dynamic::UNIT, |d| (d as i64).into()),
    );
    m
}

fn source_map(s: &SourceAddr) -> Map {
    let mut m = Map::new();
    m.insert("host".into(), s.host.clone().into());
    m.insert("port".into(), (s.port as i64).into());
    m.insert("weight".into(), s.weight.into());
    m.insert("address".into(), s.address().into());
    m
}

/// A link as a policy sees it.
pub fn link_map(l: &Link) -> Map {
    let mut m = Map::new();
    m.insert("key".into(), l.key.clone().into());
    m.insert("name".into(), l.name.clone().into());
    m.insert("remote".into(), l.remote.clone().into());
    m.insert("channel".into(), l.channel.as_str().to_string().into());
    m.insert(
        "sources".into(),
        l.sources
            .iter()
            .map(|s| Dynamic::from_map(source_map(s)))
            .collect::<Array>()
            .into(),
    );
    m
}

fn row_map(r: &StateRow, me: &str, timeout: i64) -> Map {
    let opt = |v: Option<i64>| v.map_or(Dynamic::UNIT, Dynamic::from);
    let mut m = Map::new();
    m.insert("host".into(), r.host.clone().into());
    m.insert("local_index".into(), opt(r.local_index));
    m.insert("weight".into(), r.weight.into());
    m.insert("state".into(), r.role.as_str().into());
    m.insert("heartbeat_age".into(), opt(r.heartbeat_age));
    m.insert("update_age".into(), opt(r.update_age));
    m.insert("fresh".into(), r.is_fresh(timeout).into());
    m.insert("me".into(), (r.host == me).into());
    m.insert(
        "current_source".into(),
        r.current_source
            .clone()
            .map_or(Dynamic::UNIT, Dynamic::from),
    );
    m
}

fn replica_map(s: Option<&ReplicaStatus>) -> Map {
    let mut m = Map::new();
    m.insert("configured".into(), s.is_some().into());
    if let Some(s) = s {
        m.insert("source".into(), s.source().into());
        m.insert("source_host".into(), s.source_host.clone().into());
        m.insert("source_port".into(), (s.source_port as i64).into());
        m.insert("io".into(), s.io_running.to_string().into());
        m.insert("sql".into(), s.sql_running.to_string().into());
        m.insert("io_state".into(), s.io_state.clone().into());
        m.insert("io_error".into(), s.last_io_error.clone().into());
        m.insert("sql_error".into(), s.last_sql_error.clone().into());
        m.insert(
            "lag".into(),
            s.lag_seconds.map_or(Dynamic::UNIT, |l| (l as i64).into()),
        );
        m.insert("healthy".into(), s.is_healthy().into());
    }
    m
}

fn settings_map(s: &Settings) -> Map {
    let mut m = Map::new();
    m.insert("heartbeat_timeout".into(), s.heartbeat_timeout.into());
    m.insert("failed_timeout".into(), s.failed_timeout.into());
    m.insert(
        "connect_timeout".into(),
        (s.connect_timeout.as_secs() as i64).into(),
    );
    m.insert("distribute".into(), s.distribute.into());
    m.insert("vars".into(), s.vars.clone().into());
    m
}

/// Finds the link a policy passed (the map from `links()` or `manage_link`).
fn link_of(c: &RunCtx, link: &Map) -> Res<Link> {
    let key = link
        .get("key")
        .and_then(|k| k.clone().into_string().ok())
        .ok_or_else(|| Box::<EvalAltResult>::from("expected a link (a map with a `key`)"))?;
    c.links
        .iter()
        .find(|l| l.key == key)
        .cloned()
        .ok_or_else(|| format!("no link {key:?} is configured").into())
}

fn role_of(state: &str) -> Res<Role> {
    state.parse::<Role>().map_err(|e| e.into())
}

fn source_of(link: &Link, source: &Dynamic) -> Res<SourceAddr> {
    let address = if let Some(m) = source.clone().try_cast::<Map>() {
        m.get("address")
            .and_then(|a| a.clone().into_string().ok())
            .unwrap_or_default()
    } else if let Ok(s) = source.clone().into_string() {
        s
    } else {
        return fail("connect: expected a source (a map from link.sources, or \"host:port\")");
    };
    link.source(&address).cloned().ok_or_else(|| {
        format!(
            "connect: {address:?} is not a source candidate of link {}",
            link.key
        )
        .into()
    })
}

fn apply(c: &mut RunCtx, action: Action) -> Res<Outcome> {
    c.backend.apply(&action).map_err(host_err)
}

/// Registers the host API on an engine, bound to one run's context.
pub fn register(engine: &mut Engine, ctx: &Shared) {
    // ---- reads ------------------------------------------------------------------------
    let c = ctx.clone();
    engine.register_fn("node", move || facts_map(c.borrow().backend.facts()));

    let c = ctx.clone();
    engine.register_fn("settings", move || settings_map(&c.borrow().settings));

    let c = ctx.clone();
    engine.register_fn("links", move || -> Array {
        c.borrow()
            .links
            .iter()
            .map(|l| Dynamic::from_map(link_map(l)))
            .collect()
    });

    let c = ctx.clone();
    engine.register_fn("rows", move |link: Map| -> Res<Array> {
        let mut c = c.borrow_mut();
        let l = link_of(&c, &link)?;
        let me = c.node();
        let timeout = c.settings.heartbeat_timeout;
        let rows = c.backend.rows(&l).map_err(host_err)?;
        Ok(rows
            .iter()
            .map(|r| Dynamic::from_map(row_map(r, &me, timeout)))
            .collect())
    });

    let c = ctx.clone();
    engine.register_fn("replica", move |link: Map| -> Res<Map> {
        let mut c = c.borrow_mut();
        let l = link_of(&c, &link)?;
        let s = c.backend.replica(&l).map_err(host_err)?;
        Ok(replica_map(s.as_ref()))
    });

    let c = ctx.clone();
    engine.register_fn("last_failure", move |link: Map| -> Res<Dynamic> {
        let mut c = c.borrow_mut();
        let l = link_of(&c, &link)?;
        Ok(match c.backend.last_failure(&l).map_err(host_err)? {
            None => Dynamic::UNIT,
            Some(f) => {
                let mut m = Map::new();
                m.insert("host".into(), f.host.into());
                m.insert("kind".into(), f.kind.into());
                m.insert("age".into(), f.age.map_or(Dynamic::UNIT, Dynamic::from));
                m.insert("detail".into(), f.detail.into());
                m.into()
            }
        })
    });

    let c = ctx.clone();
    engine.register_fn("probe", move |link: Map, source: Dynamic| -> Res<Map> {
        let mut c = c.borrow_mut();
        let l = link_of(&c, &link)?;
        let src = source_of(&l, &source)?;
        let mut m = Map::new();
        m.insert("source".into(), src.address().into());
        match c.backend.probe(&l, &src) {
            Ok(_) => {
                m.insert("ok".into(), true.into());
                m.insert("detail".into(), "answers".into());
            }
            Err(e) => {
                log::info!(
                    "{}: {}: source {} does not answer: {e}",
                    c.node(),
                    l.name,
                    src.address()
                );
                m.insert("ok".into(), false.into());
                m.insert("detail".into(), format!("does not answer: {e}").into());
            }
        }
        Ok(m)
    });

    // ---- logging and mail ----------------------------------------------------------------
    let c = ctx.clone();
    engine.register_fn("log", move |msg: &str| {
        log::info!("{}: {msg}", c.borrow().node());
    });
    let c = ctx.clone();
    engine.register_fn("warn", move |msg: &str| {
        log::warn!("{}: {msg}", c.borrow().node());
    });
    let c = ctx.clone();
    engine.register_fn("notify", move |subject: &str, body: &str| -> Res<()> {
        let mut c = c.borrow_mut();
        apply(
            &mut c,
            Action::Notify(Mail {
                subject: subject.to_string(),
                body: body.to_string(),
            }),
        )?;
        Ok(())
    });

    // ---- the state table -----------------------------------------------------------------
    let c = ctx.clone();
    engine.register_fn("insert_row", move |link: Map, state: &str| -> Res<bool> {
        let mut c = c.borrow_mut();
        let role = role_of(state)?;
        let Some(l) = writable(&c, &link, "insert_row")? else {
            return Ok(false);
        };
        apply(
            &mut c,
            Action::InsertRow {
                key: l.key.clone(),
                role,
            },
        )?;
        let n = c.node();
        c.events.push(format!("{}: added {n} as {role}", l.name));
        Ok(true)
    });

    let c = ctx.clone();
    engine.register_fn("set_state", move |link: Map, state: &str| -> Res<bool> {
        let mut c = c.borrow_mut();
        let role = role_of(state)?;
        let Some(l) = writable(&c, &link, "set_state")? else {
            return Ok(false);
        };
        let source = if role == Role::Yes {
            Some(current_source(&mut c, &l)?)
        } else {
            Some(None)
        };
        apply(
            &mut c,
            Action::UpdateOwnRow {
                key: l.key.clone(),
                role: Some(role),
                source,
            },
        )?;
        c.events.push(format!("{}: now {role}", l.name));
        Ok(true)
    });

    let c = ctx.clone();
    engine.register_fn("heartbeat", move |link: Map| -> Res<bool> {
        let mut c = c.borrow_mut();
        let Some(l) = writable(&c, &link, "heartbeat")? else {
            return Ok(false);
        };
        let source = current_source(&mut c, &l)?;
        apply(
            &mut c,
            Action::UpdateOwnRow {
                key: l.key.clone(),
                role: None,
                source: Some(source),
            },
        )?;
        Ok(true)
    });

    let c = ctx.clone();
    engine.register_fn("demote", move |link: Map, host: &str| -> Res<bool> {
        let mut c = c.borrow_mut();
        let Some(l) = writable(&c, &link, "demote")? else {
            return Ok(false);
        };
        if host == c.node() {
            return fail("demote: use set_state to change this node's own row");
        }
        let o = apply(
            &mut c,
            Action::DemoteSilent {
                key: l.key.clone(),
                host: host.to_string(),
            },
        )?;
        let done = matches!(o, Outcome::Done { affected } if affected > 0);
        if done {
            c.events.push(format!("{}: demoted silent {host}", l.name));
        }
        Ok(done)
    });

    let c = ctx.clone();
    engine.register_fn(
        "record_failure",
        move |link: Map, kind: &str, detail: &str| -> Res<bool> {
            let mut c = c.borrow_mut();
            if !matches!(kind, "sql" | "unreachable" | "connect") {
                return fail(format!(
                    "record_failure: kind {kind:?} is not one of sql, unreachable, connect"
                ));
            }
            let Some(l) = writable(&c, &link, "record_failure")? else {
                return Ok(false);
            };
            apply(
                &mut c,
                Action::RecordFailure {
                    key: l.key.clone(),
                    kind: kind.to_string(),
                    detail: detail.to_string(),
                },
            )?;
            Ok(true)
        },
    );

    let c = ctx.clone();
    engine.register_fn("clear_failure", move |link: Map| -> Res<bool> {
        let mut c = c.borrow_mut();
        let Some(l) = writable(&c, &link, "clear_failure")? else {
            return Ok(false);
        };
        apply(&mut c, Action::ClearFailure { key: l.key.clone() })?;
        Ok(true)
    });

    let c = ctx.clone();
    engine.register_fn("propose", move |link: Map| -> Res<bool> {
        let mut c = c.borrow_mut();
        let l = link_of(&c, &link)?;
        if !c.backend.facts().can_act() {
            log::warn!(
                "{}: propose refused: the node is not Primary and Synced/Donor",
                c.node()
            );
            return Ok(false);
        }
        match apply(&mut c, Action::Propose { key: l.key.clone() })? {
            Outcome::Done { .. } => {
                c.events.push(format!("{}: proposed", l.name));
                Ok(true)
            }
            Outcome::Lost(why) => {
                log::info!("{}: {}: not proposed: {why}", c.node(), l.name);
                Ok(false)
            }
        }
    });

    // ---- the replication channel ---------------------------------------------------------
    let c = ctx.clone();
    engine.register_fn("connect", move |link: Map, source: Dynamic| -> Res<Map> {
        let mut c = c.borrow_mut();
        let l = link_of(&c, &link)?;
        let src = source_of(&l, &source)?;
        connect(&mut c, &l, &src)
    });

    let c = ctx.clone();
    engine.register_fn("stop_replica", move |link: Map| -> Res<bool> {
        let mut c = c.borrow_mut();
        let l = link_of(&c, &link)?;
        if c.backend.replica(&l).map_err(host_err)?.is_none() {
            return Ok(false);
        }
        apply(
            &mut c,
            Action::StopReplica {
                channel: l.channel.clone(),
            },
        )?;
        apply(
            &mut c,
            Action::ResetReplica {
                channel: l.channel.clone(),
            },
        )?;
        c.connected.remove(&l.key);
        c.events
            .push(format!("{}: replication stopped and reset", l.name));
        Ok(true)
    });
}

/// The link a state-table write acts on, or `None` outside the Primary component (where the
/// write cannot succeed; it is skipped with a line in the log).
fn writable(c: &RunCtx, link: &Map, what: &str) -> Res<Option<Link>> {
    let l = link_of(c, link)?;
    Ok(primary(c, what).then_some(l))
}

/// Row writes need the Primary component; elsewhere they cannot succeed, so they are skipped
/// with a line in the log.
fn primary(c: &RunCtx, what: &str) -> bool {
    if c.backend.facts().is_primary() {
        return true;
    }
    log::warn!(
        "{}: {what} skipped: the node is not in the Primary component, so the state table cannot be written; the other nodes will see this node's heartbeat age",
        c.node()
    );
    false
}

/// The source this node replicates from for a link: the one connected this run, or the
/// channel's.
fn current_source(c: &mut RunCtx, l: &Link) -> Res<Option<String>> {
    if let Some(s) = c.connected.get(&l.key) {
        return Ok(Some(s.clone()));
    }
    Ok(c.backend.replica(l).map_err(host_err)?.map(|s| s.source()))
}

fn connect(c: &mut RunCtx, l: &Link, src: &SourceAddr) -> Res<Map> {
    let node = c.node();
    if !c.backend.facts().can_act() {
        return fail(format!(
            "connect refused on {node}: the node is not Primary and Synced/Donor"
        ));
    }
    let n = c.attempts.entry(l.key.clone()).or_insert(0);
    *n += 1;
    if *n > 2 * l.sources.len() + 2 {
        return fail(format!(
            "connect refused: more than {} attempts on link {} in one run",
            2 * l.sources.len() + 2,
            l.name
        ));
    }
    // The interlock: this node must hold the link, and nobody else may.
    let timeout = c.settings.heartbeat_timeout;
    let rows = c.backend.rows(l).map_err(host_err)?;
    match rows.iter().find(|r| r.host == node) {
        Some(r) if matches!(r.role, Role::Proposed | Role::Yes) => {}
        Some(r) => {
            return fail(format!(
                "connect refused on {node}: its row for {} says {}; a node must propose (or hold Yes) before it replicates",
                l.name, r.role
            ));
        }
        None => {
            return fail(format!(
                "connect refused on {node}: it has no row for {}",
                l.name
            ));
        }
    }
    if let Some(other) = rows.iter().find(|r| {
        r.host != node && matches!(r.role, Role::Proposed | Role::Yes) && r.is_fresh(timeout)
    }) {
        return fail(format!(
            "connect refused on {node}: {} holds {} ({}, heartbeat {}s ago); two replicas of one link are never started",
            other.host,
            l.name,
            other.role,
            other.heartbeat_age.unwrap_or(-1)
        ));
    }

    let mut result = Map::new();
    result.insert("source".into(), src.address().into());
    let domain = match c.backend.probe(l, src) {
        Ok(d) => d,
        Err(e) => {
            log::warn!(
                "{node}: {}: source {} does not answer: {e}",
                l.name,
                src.address()
            );
            result.insert("ok".into(), false.into());
            result.insert("detail".into(), format!("does not answer: {e}").into());
            result.insert("sql_error".into(), "".into());
            return Ok(result);
        }
    };
    let domains = match (&l.gtid_domains, domain) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => {
            // In a chain, the remote also passes on the writes of the clusters behind it:
            // request their domains too, or those writes would never arrive here.
            let mut v = vec![d];
            for b in &l.behind {
                let learned = b
                    .sources
                    .iter()
                    .find_map(|s| c.backend.probe(b, s).ok().flatten());
                match learned {
                    Some(d) if !v.contains(&d) => v.push(d),
                    Some(_) => {}
                    None => {
                        let detail = format!(
                            "cannot learn the GTID domain of {}, whose writes reach this cluster through {}: none of its candidates answers, and replicating without its domain would lose them",
                            b.remote, l.remote
                        );
                        log::warn!("{node}: {}: {detail}", l.name);
                        result.insert("ok".into(), false.into());
                        result.insert("detail".into(), detail.into());
                        result.insert("sql_error".into(), "".into());
                        return Ok(result);
                    }
                }
            }
            v
        }
        (None, None) => Vec::new(),
    };
    if c.backend.replica(l).map_err(host_err)?.is_some() {
        apply(
            c,
            Action::StopReplica {
                channel: l.channel.clone(),
            },
        )?;
    }
    apply(
        c,
        Action::ChangeSource {
            channel: l.channel.clone(),
            spec: l.source_spec(src, domains),
        },
    )?;
    apply(
        c,
        Action::StartReplica {
            channel: l.channel.clone(),
        },
    )?;
    let deadline = c.settings.connect_timeout;
    let o = c
        .backend
        .await_replica(l, src, deadline)
        .map_err(host_err)?;
    if o.ok {
        c.connected.insert(l.key.clone(), src.address());
        c.events
            .push(format!("{}: replicating from {}", l.name, src.address()));
    } else {
        log::warn!("{node}: {}: source {}: {}", l.name, src.address(), o.detail);
    }
    result.insert("ok".into(), o.ok.into());
    result.insert("detail".into(), o.detail.into());
    result.insert("sql_error".into(), o.sql_error.into());
    Ok(result)
}

/// Converts `[policy.vars]` to Rhai values.
pub fn toml_to_dynamic(v: &toml::Value) -> Dynamic {
    match v {
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(a) => a.iter().map(toml_to_dynamic).collect::<Array>().into(),
        toml::Value::Table(t) => {
            let m: Map = t
                .iter()
                .map(|(k, v)| (k.as_str().into(), toml_to_dynamic(v)))
                .collect();
            m.into()
        }
    }
}
