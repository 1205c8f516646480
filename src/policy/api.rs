//! The host API as a policy sees it: Rhai functions over the run's [`RunCtx`]. Reads return
//! maps; every primitive that changes something is one of [`crate::host::primitives`], with
//! its interlocks, so a site policy cannot break them:
//!
//! * `Proposed` is reached only through `propose`, which is race-safe;
//! * `Yes` only for the node that won the proposal and whose channel carries data, or for a
//!   node whose channel already carries data and that no other node holds the link against;
//! * `connect` only for the holder, after refreshing the heartbeat, checking the candidate
//!   (Primary and Synced) and fencing every node that held the link and went silent;
//! * `demote` only for a row the host judges silent, with a guard in the statement;
//! * the rules around the policy's call (leave when not Primary, one replica, a running
//!   channel carries data) are in [`crate::host::phases`].

use crate::config::SourceAddr;
use crate::config::topology::Link;
use crate::db::clock::Freshness;
use crate::db::flavor::ReplicaStatus;
use crate::db::state::{Role, StateRow};
use crate::exec::mail::Mail;
use crate::exec::server::NodeFacts;
use crate::host::output::Level;
use crate::host::primitives;
use crate::host::{RunCtx, Settings, Shared};
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

type Res<T> = Result<T, Box<EvalAltResult>>;

fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(msg.into().into())
}

/// A primitive's refusal, or the host's error, as the policy's error: the message names the
/// rule that refused.
fn refused<T>(r: primitives::Res<T>) -> Res<T> {
    r.map_err(|e| e.to_string().into())
}

fn host_err(e: crate::error::Error) -> Box<EvalAltResult> {
    e.to_string().into()
}

/// The node's facts as a policy sees them.
fn facts_map(f: &NodeFacts, address: Option<&str>) -> Map {
    let mut m = Map::new();
    m.insert("name".into(), f.name.clone().into());
    m.insert("cluster".into(), f.cluster.clone().into());
    m.insert("cluster_status".into(), f.cluster_status.as_str().into());
    m.insert("state".into(), f.local_state.code().into());
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
    m.insert(
        "address".into(),
        address.map_or(Dynamic::UNIT, |a| a.to_string().into()),
    );
    m
}

/// The node's map for the policy, from a run.
pub fn node_map(c: &RunCtx) -> Map {
    facts_map(c.backend.facts(), c.backend.me().address.as_deref())
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
    m.insert("key".into(), l.key.as_str().into());
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

fn opt<T: Into<Dynamic>>(v: Option<T>) -> Dynamic {
    v.map_or(Dynamic::UNIT, Into::into)
}

pub fn row_map(r: &StateRow, fresh: &Freshness) -> Map {
    let mut m = Map::new();
    m.insert("host".into(), r.host.clone().into());
    m.insert("local_index".into(), opt(r.local_index));
    m.insert("weight".into(), r.weight.into());
    m.insert("state".into(), r.role.as_str().into());
    m.insert("heartbeat_age".into(), opt(fresh.age(r)));
    m.insert("server_age".into(), opt(r.heartbeat_age));
    m.insert("update_age".into(), opt(r.update_age));
    m.insert("fresh".into(), fresh.is_fresh(r).into());
    m.insert(
        "in_view".into(),
        if fresh.left_view(r) {
            false.into()
        } else {
            opt(r.in_view)
        },
    );
    m.insert("holds".into(), fresh.holds(r).into());
    m.insert("me".into(), (r.host == fresh.me).into());
    m.insert("current_source".into(), opt(r.current_source.clone()));
    m.insert("reports".into(), r.report.is_some().into());
    m.insert(
        "channel".into(),
        opt(r.report.as_ref().map(|p| p.channel.as_str().to_string())),
    );
    m.insert(
        "paused".into(),
        r.report
            .as_ref()
            .is_some_and(|p| p.paused_for.is_some())
            .into(),
    );
    m
}

fn replica_map(s: Option<&ReplicaStatus>, source: Option<&Result<(), String>>) -> Map {
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
            "sql_error_kind".into(),
            s.sql_error_kind()
                .map_or("", crate::db::flavor::SqlErrorKind::as_str)
                .into(),
        );
        m.insert("lag".into(), opt(s.lag_seconds.map(|l| l as i64)));
        m.insert("threads_ok".into(), s.is_healthy().into());
        m.insert("source_ok".into(), opt(source.map(|r| r.is_ok())));
        m.insert(
            "source_detail".into(),
            source
                .and_then(|r| r.as_ref().err().cloned())
                .unwrap_or_default()
                .into(),
        );
        let source_bad = matches!(source, Some(Err(_)));
        m.insert("healthy".into(), (s.is_healthy() && !source_bad).into());
    }
    m
}

/// `settings()` as a map.
pub fn settings_map(s: &Settings) -> Map {
    let mut m = Map::new();
    m.insert("heartbeat_timeout".into(), s.heartbeat_timeout.into());
    m.insert("silent_after".into(), s.silent_after.into());
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
        return fail("expected a source (a map from link.sources, or \"host:port\")");
    };
    link.source(&address)
        .cloned()
        .ok_or_else(|| format!("{address:?} is not a source candidate of link {}", link.key).into())
}

/// Registers a function of one link: resolves the link, then runs `f` on the run's context.
macro_rules! on_link {
    ($engine:expr, $ctx:expr, $name:literal, |$c:ident, $l:ident $(, $arg:ident : $ty:ty)*| -> $ret:ty $body:block) => {{
        let shared = $ctx.clone();
        $engine.register_fn($name, move |link: Map $(, $arg: $ty)*| -> $ret {
            let mut guard = shared.borrow_mut();
            let $c: &mut RunCtx = &mut guard;
            let $l = link_of($c, &link)?;
            $body
        });
    }};
}

/// What an override point must return, as `expect` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    /// `"seconds"`: an integer.
    Seconds,
    /// `"rows"`: maps with a host, as `rows(link)` gives them.
    Rows,
    /// `"sources"`: maps with an address, or `"host:port"` strings.
    Sources,
}

impl Expected {
    fn parse(kind: &str) -> Option<Expected> {
        match kind {
            "seconds" => Some(Expected::Seconds),
            "rows" => Some(Expected::Rows),
            "sources" => Some(Expected::Sources),
            _ => None,
        }
    }

    /// Whether `value` is of this kind.
    fn fits(self, value: &Dynamic) -> bool {
        let items_are = |key: &str| {
            value.clone().try_cast::<Array>().is_some_and(|a| {
                a.iter().all(|v| {
                    v.clone()
                        .try_cast::<Map>()
                        .is_some_and(|m| m.get(key).is_some_and(|h| h.is_string()))
                        || (key == "address" && v.is_string())
                })
            })
        };
        match self {
            Expected::Seconds => value.is_int(),
            Expected::Rows => items_are("host"),
            Expected::Sources => items_are("address"),
        }
    }

    /// The kind, as the error says what was expected.
    fn described(self) -> &'static str {
        match self {
            Expected::Seconds => {
                "an integer number of seconds (not a string: write 900, not \"900\"; in [policy.vars] too)"
            }
            Expected::Rows => "an array of rows (maps with a host, as rows(link) gives them)",
            Expected::Sources => {
                "an array of sources (maps with an address, as link.sources gives them, or \"host:port\" strings)"
            }
        }
    }
}

/// `expect(value, kind, from)`: the value an override point returned, if it is of the kind the
/// built-in policy needs; otherwise an error naming the function and the kind. Without it a
/// string `"900"` from `[policy.vars]` compares false with every number, silently.
fn expect(value: Dynamic, kind: &str, from: &str) -> Res<Dynamic> {
    let Some(kind) = Expected::parse(kind) else {
        return fail(format!("expect: unknown kind {kind:?}"));
    };
    if kind.fits(&value) {
        return Ok(value);
    }
    let shown = crate::error::printable(&super::values::brief(&value, 80));
    fail(format!(
        "{from} returned a {} ({shown}), expected {}",
        value.type_name(),
        kind.described()
    ))
}

/// Registers the host API on an engine, bound to one run's context.
pub fn register(engine: &mut Engine, ctx: &Shared) {
    engine.register_fn("expect", expect);
    register_reads(engine, ctx);
    register_output(engine, ctx);
    register_state_table(engine, ctx);
    register_channel(engine, ctx);
}

/// The reads: the node, the settings, the links, a link's rows, channel and recorded failure, and the probe of a source.
fn register_reads(engine: &mut Engine, ctx: &Shared) {
    let c = ctx.clone();
    engine.register_fn("node", move || node_map(&c.borrow()));

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

    on_link!(engine, ctx, "rows", |c, l| -> Res<Array> {
        let (rows, fresh) = c.read_rows(&l).map_err(host_err)?;
        Ok(rows
            .iter()
            .map(|r| Dynamic::from_map(row_map(r, &fresh)))
            .collect())
    });

    on_link!(engine, ctx, "replica", |c, l| -> Res<Map> {
        let s = c.backend.replica(&l).map_err(host_err)?;
        let check = c.source_check(&l).cloned();
        Ok(replica_map(s.as_ref(), check.as_ref()))
    });

    on_link!(engine, ctx, "last_failure", |c, l| -> Res<Dynamic> {
        Ok(match c.backend.last_failure(&l).map_err(host_err)? {
            None => Dynamic::UNIT,
            Some(f) => {
                let mut m = Map::new();
                m.insert("host".into(), f.host.into());
                m.insert("kind".into(), f.kind.as_str().into());
                m.insert("age".into(), opt(f.age));
                m.insert("detail".into(), f.detail.into());
                m.into()
            }
        })
    });

    on_link!(engine, ctx, "probe", |c, l, source: Dynamic| -> Res<Map> {
        let src = source_of(&l, &source).map_err(|e| format!("probe: {e}"))?;
        c.within_deadline("probe", c.settings.probe_timeout)?;
        let p = primitives::probe(c, &l, &src);
        let mut m = Map::new();
        m.insert("source".into(), src.address().into());
        m.insert("ok".into(), p.ok.into());
        m.insert("reachable".into(), p.reachable.into());
        m.insert("detail".into(), p.detail.into());
        Ok(m)
    });
}

/// Logging and mail, within the run's budget (`host::output`).
fn register_output(engine: &mut Engine, ctx: &Shared) {
    for (name, level) in [("log", Level::Info), ("warn", Level::Warn)] {
        let c = ctx.clone();
        engine.register_fn(name, move |msg: &str| c.borrow_mut().policy_log(level, msg));
    }
    let c = ctx.clone();
    engine.on_print(move |msg| c.borrow_mut().policy_log(Level::Info, msg));
    let c = ctx.clone();
    engine.on_debug(move |msg, _, _| c.borrow_mut().policy_log(Level::Debug, msg));
    // announce(node, link, event, subject, body): the policy's report of one of the events
    // (EVENT): the `mail` override point, with every mail it sends known by that event, so
    // that it goes out once per outage whatever its subject says.
    let c = ctx.clone();
    engine.register_fn(
        "announce",
        move |call: rhai::NativeCallContext,
              node: Map,
              link: Map,
              event: &str,
              subject: &str,
              body: &str|
              -> Res<()> {
            if !crate::host::Event::ALL.iter().any(|e| e.as_str() == event) {
                let kinds: Vec<&str> = crate::host::Event::ALL.iter().map(|e| e.as_str()).collect();
                return fail(format!(
                    "announce: {event:?} is not an event; use EVENT.<name>, one of {}",
                    kinds.join(", ")
                ));
            }
            let before = c.borrow_mut().notices.mail_event.replace(event.to_string());
            let r = call.call_fn::<Dynamic>(
                "mail",
                (
                    Dynamic::from_map(node),
                    Dynamic::from_map(link),
                    Dynamic::from(event.to_string()),
                    Dynamic::from(subject.to_string()),
                    Dynamic::from(body.to_string()),
                ),
            );
            c.borrow_mut().notices.mail_event = before;
            r.map(|_| ())
        },
    );
    let c = ctx.clone();
    engine.register_fn("notify", move |subject: &str, body: &str| -> Res<()> {
        c.borrow_mut()
            .notify(Mail {
                subject: subject.to_string(),
                body: body.to_string(),
                once: None,
            })
            .map_err(host_err)?;
        Ok(())
    });
}

/// The state table: the interlocked writes of rows.
fn register_state_table(engine: &mut Engine, ctx: &Shared) {
    on_link!(engine, ctx, "insert_row", |c,
                                         l,
                                         state: &str|
     -> Res<bool> {
        refused(primitives::insert_row(c, &l, role_of(state)?))
    });
    on_link!(engine, ctx, "set_state", |c, l, state: &str| -> Res<bool> {
        refused(primitives::set_state(c, &l, role_of(state)?))
    });
    on_link!(engine, ctx, "heartbeat", |c, l| -> Res<bool> {
        refused(primitives::heartbeat(c, &l))
    });
    on_link!(engine, ctx, "demote", |c, l, host: &str| -> Res<bool> {
        refused(primitives::demote(c, &l, host))
    });
    on_link!(engine, ctx, "record_failure", |c,
                                             l,
                                             kind: &str,
                                             detail: &str|
     -> Res<bool> {
        let kind = kind
            .parse()
            .map_err(|e: String| format!("record_failure: {e}"))?;
        refused(primitives::record_failure(c, &l, kind, detail))
    });
    on_link!(engine, ctx, "clear_failure", |c, l| -> Res<bool> {
        refused(primitives::clear_failure(c, &l))
    });
    on_link!(engine, ctx, "propose", |c, l| -> Res<bool> {
        refused(primitives::propose(c, &l))
    });
}

/// The replication channel.
fn register_channel(engine: &mut Engine, ctx: &Shared) {
    on_link!(engine, ctx, "connect", |c,
                                      l,
                                      source: Dynamic|
     -> Res<Map> {
        let src = source_of(&l, &source).map_err(|e| format!("connect: {e}"))?;
        let attempt = c.settings.probe_timeout + c.settings.connect_timeout + crate::config::SETTLE;
        c.within_deadline("connect (one source attempt)", attempt)?;
        let r = refused(primitives::connect(c, &l, &src))?;
        let mut m = Map::new();
        m.insert("source".into(), src.address().into());
        m.insert("ok".into(), r.is_replicating().into());
        m.insert("outcome".into(), r.name().into());
        m.insert("detail".into(), r.detail().to_string().into());
        Ok(m)
    });
    on_link!(engine, ctx, "stop_replica", |c, l| -> Res<bool> {
        refused(primitives::stop_replica(c, &l))
    });
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
