//! The primitives a policy calls, with their interlocks. Each change goes through the
//! executor; each refusal is an error naming the rule, so a site policy learns what it may not
//! do. The Rhai glue is in `policy/api.rs`.

use super::{RunCtx, fence};
use crate::config::SourceAddr;
use crate::config::topology::Link;
use crate::db::state::{FailureKind, Role, SilenceGuard};
use crate::exec::server::Probe;
use crate::exec::{Action, ConnectOutcome, Outcome, SourceUpdate};

/// A refusal or a host error, as the policy sees it.
pub type Res<T> = std::result::Result<T, String>;

fn host(e: crate::error::Error) -> String {
    e.to_string()
}

/// A primitive that changes something runs only from the policy's `manage_link`, and only on
/// the link whose turn it is: the host's rules run around that call for that link, and not
/// around `silent_after` or `mail`, nor for another link (whose turn has passed, or whose
/// rules would then judge a state this call left behind).
fn may_change(c: &RunCtx, link: &Link, what: &str) -> Res<()> {
    if !c.policy_may_change() {
        return Err(format!(
            "{what} refused on {}: a primitive that changes something is called only from manage_link (silent_after and mail may read, log and notify)",
            c.node()
        ));
    }
    match c.call.current_link.as_deref() {
        Some(k) if *k == *link.key => Ok(()),
        other => Err(format!(
            "{what} refused on {}: a primitive changes only the link whose turn it is ({}), not {}: each link is managed in its own manage_link call, with the host's rules around it",
            c.node(),
            other.unwrap_or("none"),
            link.name
        )),
    }
}

/// The node may not write the state table outside the Primary component; the write is
/// skipped with a line in the log.
fn writable(c: &RunCtx, what: &str) -> bool {
    if c.writable() {
        return true;
    }
    log::warn!(
        "{}: {what} skipped: the node is not in the Primary component, so the state table cannot be written; the other nodes will see it go silent",
        c.node()
    );
    false
}

/// The interlock of every way to `Yes` but `propose`: [`RunCtx::may_be_yes`].
/// A node that becomes `Yes` with a channel it already runs fences the silent holders first.
fn yes_allowed(c: &mut RunCtx, link: &Link, what: &str) -> Res<()> {
    c.may_be_yes(link)
        .map_err(host)?
        .map_err(|why| format!("{what}(link, \"Yes\") refused on {}: {why}", c.node()))?;
    match fence::silent_holders_now(c, link).map_err(host)? {
        None => Ok(()),
        Some(b) => Err(held(c, what, &b)),
    }
}

/// Why a takeover waits on a peer that could not be fenced.
fn waits_on(b: &fence::Blocked) -> String {
    format!(
        "{} held the link and could not be fenced ({}); the takeover waits",
        b.peer, b.failure
    )
}

/// The refusal of a primitive whose takeover waits on a peer that could not be fenced.
fn held(c: &RunCtx, what: &str, b: &fence::Blocked) -> String {
    format!("{what} refused on {}: {}", c.node(), waits_on(b))
}

/// `insert_row(link, state)`: adds this node's row, as `No`, or as `Yes` for a node whose
/// channel already carries data and that no other node contests (a link configured by hand).
pub fn insert_row(c: &mut RunCtx, link: &Link, role: Role) -> Res<bool> {
    may_change(c, link, "insert_row")?;
    let (rows, _) = c.read_rows(link).map_err(host)?;
    if rows.iter().any(|r| r.host == c.node()) {
        return Err(format!(
            "insert_row refused on {}: it already has a row for {}; use set_state",
            c.node(),
            link.name
        ));
    }
    match role {
        Role::No => {}
        Role::Yes => {
            yes_allowed(c, link, "insert_row")?;
        }
        Role::Proposed => {
            return Err("insert_row: Proposed is reached only through propose(link)".into());
        }
        Role::Failed => {
            return Err(
                "insert_row: a node adds its row as No (or Yes when it already replicates)".into(),
            );
        }
    }
    if !writable(c, "insert_row") {
        return Ok(false);
    }
    c.insert_own_row(link, role).map_err(host)?;
    Ok(true)
}

/// `set_state(link, state)`: `No` and `Failed` always; `Yes` only under [`RunCtx::may_be_yes`];
/// `Proposed` never (only `propose` reaches it). Refused on a node without a row for the link:
/// the update would change nothing, and its hooks would tell of a change that did not happen.
pub fn set_state(c: &mut RunCtx, link: &Link, role: Role) -> Res<bool> {
    may_change(c, link, "set_state")?;
    if !c.book.has_row.contains(&link.key) {
        c.read_rows(link).map_err(host)?;
    }
    if !c.book.has_row.contains(&link.key) {
        return Err(format!(
            "set_state refused on {}: it has no row for {}, so nothing would change; insert_row(link, state) adds it",
            c.node(),
            link.name
        ));
    }
    match role {
        Role::Proposed => {
            return Err(
                "set_state: Proposed is reached only through propose(link), which is race-safe"
                    .into(),
            );
        }
        Role::Yes => {
            yes_allowed(c, link, "set_state")?;
        }
        Role::No | Role::Failed => {}
    }
    if !writable(c, "set_state") {
        return Ok(false);
    }
    let source = if role == Role::Yes {
        c.current_source(link).map_err(host)?
    } else {
        SourceUpdate::Clear
    };
    c.refresh(link, Some(role), source).map_err(host)?;
    Ok(true)
}

/// `heartbeat(link)`: refreshes this node's row and report.
pub fn heartbeat(c: &mut RunCtx, link: &Link) -> Res<bool> {
    may_change(c, link, "heartbeat")?;
    if !writable(c, "heartbeat") {
        return Ok(false);
    }
    let source = c.current_source(link).map_err(host)?;
    c.refresh(link, None, source).map_err(host)?;
    Ok(true)
}

/// `demote(link, host)`: sets a silent peer's `Yes` to `No`, only if the host judges it silent
/// and it is still silent when the statement runs. `false` when nothing was demoted.
pub fn demote(c: &mut RunCtx, link: &Link, peer: &str) -> Res<bool> {
    may_change(c, link, "demote")?;
    if peer == c.node() {
        return Err("demote: use set_state to change this node's own row".into());
    }
    if !writable(c, "demote") {
        return Ok(false);
    }
    let (rows, fresh) = c.read_rows(link).map_err(host)?;
    let Some(row) = rows.iter().find(|r| r.host == peer) else {
        return Ok(false);
    };
    if row.role != Role::Yes || fresh.is_fresh(row) {
        log::debug!(
            "{}: {}: not demoting {peer}: {}",
            c.node(),
            link.name,
            fresh.describe(row)
        );
        return Ok(false);
    }
    let guard = match &row.report {
        Some(r) => SilenceGuard::Seq(r.seq),
        None => SilenceGuard::OlderThan(c.threshold()),
    };
    // Once demoted, its row no longer says it held the link: fence it now. A peer that
    // could not be fenced and may still replicate keeps its row.
    if let Some(b) =
        fence::silent_holders(c, link, std::slice::from_ref(row), &fresh).map_err(host)?
    {
        log::info!("{}: {}: demote: {}", c.node(), link.name, waits_on(&b));
        return Ok(false);
    }
    let o = c
        .apply(Action::DemoteSilent {
            key: link.key.clone(),
            host: peer.to_string(),
            guard,
        })
        .map_err(host)?;
    let done = matches!(o, Outcome::Done { affected } if affected > 0);
    if done {
        c.notices
            .events
            .push(format!("{}: demoted silent {peer}", link.name));
        c.book
            .takeover_causes
            .insert(link.key.clone(), crate::metrics::cause::SILENT_REPLICA);
    }
    Ok(done)
}

/// `propose(link)`: the race-safe move to `Proposed`; `true` if this node won.
pub fn propose(c: &mut RunCtx, link: &Link) -> Res<bool> {
    may_change(c, link, "propose")?;
    if !c.backend.facts().can_act() {
        log::warn!(
            "{}: propose refused: the node is not Primary and Synced/Donor",
            c.node()
        );
        return Ok(false);
    }
    let (rows, fresh) = c.read_rows(link).map_err(host)?;
    // Every silent holder is fenced before this node claims the link: one that could not be
    // fenced and may still replicate holds the election. (The claim reads the rows again in
    // its transaction.)
    if let Some(b) = fence::silent_holders(c, link, &rows, &fresh).map_err(host)? {
        log::info!("{}: {}: propose: {}", c.node(), link.name, waits_on(&b));
        return Ok(false);
    }
    // Why this node takes the link, for the failover counter: a silent replica it demoted
    // (recorded then), a replica that gave up as Failed, or nobody holding it.
    let me = c.node();
    let others = || rows.iter().filter(|r| r.host != me);
    let cause = if others().any(|r| r.role == Role::Yes && !fresh.is_fresh(r)) {
        crate::metrics::cause::SILENT_REPLICA
    } else if others().any(|r| r.role == Role::Failed) {
        crate::metrics::cause::FAILED_REPLICA
    } else {
        crate::metrics::cause::ELECTION
    };
    c.book
        .takeover_causes
        .entry(link.key.clone())
        .or_insert(cause);
    match c
        .apply(Action::Propose {
            key: link.key.clone(),
            fresh,
        })
        .map_err(host)?
    {
        Outcome::Done { .. } => {
            c.book.won.insert(link.key.clone());
            c.notices.events.push(format!("{}: proposed", link.name));
            c.role_written(link, Role::Proposed);
            Ok(true)
        }
        Outcome::Lost(why) => {
            log::info!("{}: {}: not proposed: {why}", c.node(), link.name);
            Ok(false)
        }
        Outcome::Fenced(_) => Err("propose: unexpected outcome".into()),
    }
}

/// `record_failure(link, kind, detail)`.
pub fn record_failure(c: &mut RunCtx, link: &Link, kind: FailureKind, detail: &str) -> Res<bool> {
    may_change(c, link, "record_failure")?;
    if !writable(c, "record_failure") {
        return Ok(false);
    }
    c.apply(Action::RecordFailure {
        key: link.key.clone(),
        kind,
        detail: detail.to_string(),
    })
    .map_err(host)?;
    Ok(true)
}

/// `clear_failure(link)`.
pub fn clear_failure(c: &mut RunCtx, link: &Link) -> Res<bool> {
    may_change(c, link, "clear_failure")?;
    if !writable(c, "clear_failure") {
        return Ok(false);
    }
    c.apply(Action::ClearFailure {
        key: link.key.clone(),
    })
    .map_err(host)?;
    Ok(true)
}

/// `stop_replica(link)`.
pub fn stop_replica(c: &mut RunCtx, link: &Link) -> Res<bool> {
    may_change(c, link, "stop_replica")?;
    c.stop_and_reset(link).map_err(host)
}

/// What `probe` found of a candidate.
pub struct Probed {
    /// It answers and is Primary and Synced: worth replicating from.
    pub ok: bool,
    pub reachable: bool,
    pub detail: String,
    pub probe: Option<Probe>,
}

/// `probe(link, source)`: a read-only login to a candidate with the link's credentials, and
/// its place in its cluster.
pub fn probe(c: &mut RunCtx, link: &Link, src: &SourceAddr) -> Probed {
    match c.backend.probe(link, src) {
        Ok(p) => match p.health() {
            Ok(()) => Probed {
                ok: true,
                reachable: true,
                detail: "answers, Primary and Synced".into(),
                probe: Some(p),
            },
            Err(why) => {
                log::info!(
                    "{}: {}: source {} {why}",
                    c.node(),
                    link.name,
                    src.address()
                );
                Probed {
                    ok: false,
                    reachable: true,
                    detail: why,
                    probe: Some(p),
                }
            }
        },
        Err(e) => {
            log::info!(
                "{}: {}: source {} does not answer: {e}",
                c.node(),
                link.name,
                src.address()
            );
            Probed {
                ok: false,
                reachable: false,
                detail: format!("does not answer: {e}"),
                probe: None,
            }
        }
    }
}

/// `connect(link, source)`: this node must hold the link (`Proposed` or `Yes`) and nobody
/// else may; the heartbeat is refreshed first (so a failover over many sources never makes
/// this node look silent); the candidate must answer and be Primary and Synced; every node
/// that held the link and went silent is fenced (once per run); then stop, `CHANGE`, `START`,
/// and a poll until both threads run and still run a second later.
pub fn connect(c: &mut RunCtx, l: &Link, src: &SourceAddr) -> Res<ConnectOutcome> {
    may_change(c, l, "connect")?;
    let (rows, fresh) = may_connect(c, l)?;
    // A login alone is not enough: the candidate must be in its cluster's Primary component.
    let node = c.node();
    let p = probe(c, l, src);
    let Some(found) = p.probe.filter(|_| p.ok) else {
        log::warn!("{node}: {}: source {}: {}", l.name, src.address(), p.detail);
        return Ok(ConnectOutcome::NotRunning(p.detail));
    };
    let domains = match domains(c, l, found.gtid_domain_id) {
        Ok(d) => d,
        Err(detail) => {
            log::warn!("{node}: {}: {detail}", l.name);
            return Ok(ConnectOutcome::NotRunning(detail));
        }
    };
    if let Some(b) = fence::silent_holders(c, l, &rows, &fresh).map_err(host)? {
        return Err(held(c, "connect", &b));
    }
    start_channel(c, l, src, domains)
}

/// The interlock of `connect`: the node acts, has attempts left, holds the link (`Proposed` or
/// `Yes`), and nobody else does. The rows it decided on.
///
/// The heartbeat is refreshed before the rows are read: a peer that judged this node silent
/// demotes it with a guard on its report sequence, which the refresh moves. Either the
/// demotion commits first and this node reads its row as `No` and refuses, or the refresh
/// does and the demotion changes nothing: the two never both replicate.
fn may_connect(
    c: &mut RunCtx,
    l: &Link,
) -> Res<(Vec<crate::db::state::StateRow>, crate::db::clock::Freshness)> {
    let node = c.node();
    if !c.backend.facts().can_act() {
        return Err(format!(
            "connect refused on {node}: the node is not Primary and Synced/Donor"
        ));
    }
    let n = c.book.attempts.entry(l.key.clone()).or_insert(0);
    *n += 1;
    if *n > 2 * l.sources.len() + 2 {
        return Err(format!(
            "connect refused: more than {} attempts on link {} in one run",
            2 * l.sources.len() + 2,
            l.name
        ));
    }
    c.refresh_all().map_err(host)?;
    let (rows, fresh) = c.read_rows(l).map_err(host)?;
    match rows.iter().find(|r| r.host == node) {
        Some(r) if matches!(r.role, Role::Proposed | Role::Yes) => {}
        Some(r) => {
            return Err(format!(
                "connect refused on {node}: its row for {} says {}; a node must propose (or hold Yes) before it replicates",
                l.name, r.role
            ));
        }
        None => {
            return Err(format!(
                "connect refused on {node}: it has no row for {}",
                l.name
            ));
        }
    }
    if let Some(other) = rows.iter().find(|r| c.variant.claim && fresh.holds(r)) {
        return Err(format!(
            "connect refused on {node}: {} holds {} ({}); two replicas of one link are never started",
            other.host,
            l.name,
            fresh.describe(other)
        ));
    }
    Ok((rows, fresh))
}

/// The GTID domains to request: the configured ones, or the source's, and in a chain those of
/// the clusters behind the remote, whose writes it passes on. `Err` when one cannot be learned:
/// replicating without it would lose its writes.
fn domains(c: &mut RunCtx, l: &Link, source: Option<u32>) -> Result<Vec<u32>, String> {
    let d = match (&l.gtid_domains, source) {
        (Some(d), _) => return Ok(d.clone()),
        (None, None) => return Ok(Vec::new()),
        (None, Some(d)) => d,
    };
    let mut v = vec![d];
    for b in &l.behind {
        let learned = b
            .sources
            .iter()
            .find_map(|s| c.backend.probe(b, s).ok().and_then(|p| p.gtid_domain_id));
        match learned {
            Some(d) if !v.contains(&d) => v.push(d),
            Some(_) => {}
            None => {
                return Err(format!(
                    "cannot learn the GTID domain of {}, whose writes reach this cluster through {}: none of its candidates answers, and replicating without its domain would lose them",
                    b.remote, l.remote
                ));
            }
        }
    }
    Ok(v)
}

/// Stop, `CHANGE`, `START`, and wait for both threads to run.
fn start_channel(
    c: &mut RunCtx,
    l: &Link,
    src: &SourceAddr,
    domains: Vec<u32>,
) -> Res<ConnectOutcome> {
    let before = c.backend.replica(l).map_err(host)?.map(|s| s.source());
    let source_failed_its_check = matches!(c.book.source_check.get(&l.key), Some(Err(_)));
    if before.is_some() {
        c.apply(Action::StopReplica {
            channel: l.channel.clone(),
        })
        .map_err(host)?;
    }
    c.apply(Action::ChangeSource {
        channel: l.channel.clone(),
        spec: l.source_spec(src, domains),
    })
    .map_err(host)?;
    c.apply(Action::StartReplica {
        channel: l.channel.clone(),
    })
    .map_err(host)?;
    // Within the policy call's time limit: the wait is cut to what is left of it.
    let deadline = match c.time_left() {
        Some(left) => c
            .settings
            .connect_timeout
            .min(left.saturating_sub(crate::config::SETTLE)),
        None => c.settings.connect_timeout,
    };
    let o = c.backend.await_replica(l, src, deadline).map_err(host)?;
    if o.is_replicating() {
        c.book.connected.insert(l.key.clone(), src.address());
        c.book.source_check.insert(l.key.clone(), Ok(()));
        // The row must record the new source: report again at the end of the run.
        c.book.refreshed.remove(&l.key);
        c.notices
            .events
            .push(format!("{}: replicating from {}", l.name, src.address()));
        if let Some(old) = before.as_deref().filter(|b| *b != src.address()) {
            let cause = if source_failed_its_check {
                crate::metrics::cause::SOURCE_CHECK
            } else {
                crate::metrics::cause::SOURCE_LOST
            };
            log::debug!(
                "{}: {}: source switch from {old} ({cause})",
                c.node(),
                l.name
            );
            c.observations.counters_mut().failover(&l.key, cause);
            let why = if source_failed_its_check {
                "it failed the source check (not Primary and Synced, or not answering)"
            } else {
                "the channel lost it"
            };
            c.history(
                Some(l),
                crate::db::history::event::SOURCE_SWITCH,
                format!("from {old} to {}: {why}", src.address()),
            );
        }
        if before.as_deref() != Some(src.address().as_str()) {
            c.hook(
                crate::config::hooks::HookEvent::SourceChange,
                Some(l),
                vec![
                    ("PXCRM_SOURCE", src.address()),
                    ("PXCRM_OLD_SOURCE", before.unwrap_or_default()),
                ],
            );
        }
    } else {
        log::warn!(
            "{}: {}: source {}: {}",
            c.node(),
            l.name,
            src.address(),
            o.detail()
        );
    }
    Ok(o)
}
