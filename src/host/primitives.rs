//! The primitives a policy calls, with their interlocks. Each change goes through the
//! executor; each refusal is an error naming the rule, so a site policy learns what it may not
//! do. The Rhai glue is in `policy/api.rs`.

use super::{RunCtx, fence};
use crate::config::SourceAddr;
use crate::config::topology::Link;
use crate::db::state::{FailureKind, Role, SilenceGuard};
use crate::exec::server::Probe;
use crate::exec::{Action, ConnectOutcome, Outcome, SourceUpdate};
use crate::metrics::Cause;

/// The host's rule that refused a primitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A primitive that changes something runs only from the policy's `manage_link`.
    OnlyInManageLink,
    /// It changes only the link whose turn it is.
    OnlyThisLink,
    /// `insert_row` on a node that has a row: `set_state` changes it.
    RowExists,
    /// `set_state` on a node without a row: nothing would change.
    NoRow,
    /// `Proposed` is reached only through `propose`, which is race-safe.
    ProposedOnlyByPropose,
    /// A node adds its row as `No`, or as `Yes` when it already replicates.
    InsertedAsNoOrYes,
    /// `Yes` only for a node whose channel carries data and that won the proposal or that no
    /// other node contests ([`RunCtx::may_be_yes`]).
    YesInterlock,
    /// A takeover waits on a peer that held the link and could not be fenced.
    FenceBlocked,
    /// `demote` is for a peer's row; `set_state` changes this node's own.
    DemoteOwnRow,
    /// The node is not Primary and Synced/Donor.
    NotActing,
    /// More `connect` calls on a link in one run than its sources allow.
    TooManyAttempts,
    /// `connect` only for the holder: a node proposes (or holds `Yes`) before it replicates.
    NotHolder,
    /// Another node holds the link: two replicas of one link are never started.
    HeldByAnother,
}

/// Why a primitive did not do what the policy asked: a rule of the host refused it, or the
/// host could not read or write what it needed.
#[derive(Debug)]
pub enum Refusal {
    /// The rule, and the message that names it for the policy's author.
    Rule { rule: Rule, why: String },
    /// A server or host error: not the policy's doing.
    Host(crate::error::Error),
}

impl Refusal {
    /// The rule that refused, if a rule did.
    pub fn rule(&self) -> Option<Rule> {
        match self {
            Refusal::Rule { rule, .. } => Some(*rule),
            Refusal::Host(_) => None,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Rule { why, .. } => f.write_str(why),
            Refusal::Host(e) => write!(f, "{e}"),
        }
    }
}

impl From<crate::error::Error> for Refusal {
    fn from(e: crate::error::Error) -> Refusal {
        Refusal::Host(e)
    }
}

/// A primitive's result: what it did, or why it did not.
pub type Res<T> = std::result::Result<T, Refusal>;

/// A refusal by `rule`.
fn refuse<T>(rule: Rule, why: impl Into<String>) -> Res<T> {
    Err(Refusal::Rule {
        rule,
        why: why.into(),
    })
}

/// A primitive that changes something runs only from the policy's `manage_link`, and only on
/// the link whose turn it is: the host's rules run around that call for that link, and not
/// around `silent_after` or `mail`, nor for another link (whose turn has passed, or whose
/// rules would then judge a state this call left behind).
fn may_change(c: &RunCtx, link: &Link, what: &str) -> Res<()> {
    if !c.policy_may_change() {
        return refuse(
            Rule::OnlyInManageLink,
            format!(
                "{what} refused on {}: a primitive that changes something is called only from manage_link (silent_after and mail may read, log and notify)",
                c.node()
            ),
        );
    }
    match c.call.current_link.as_deref() {
        Some(k) if *k == *link.key => Ok(()),
        other => refuse(
            Rule::OnlyThisLink,
            format!(
                "{what} refused on {}: a primitive changes only the link whose turn it is ({}), not {}: each link is managed in its own manage_link call, with the host's rules around it",
                c.node(),
                other.unwrap_or("none"),
                link.name
            ),
        ),
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
    if let Err(why) = c.may_be_yes(link)? {
        let node = c.node();
        return refuse(
            Rule::YesInterlock,
            format!("{what}(link, \"Yes\") refused on {node}: {why}"),
        );
    }
    match fence::silent_holders_now(c, link)? {
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
fn held(c: &RunCtx, what: &str, b: &fence::Blocked) -> Refusal {
    Refusal::Rule {
        rule: Rule::FenceBlocked,
        why: format!("{what} refused on {}: {}", c.node(), waits_on(b)),
    }
}

/// `insert_row(link, state)`: adds this node's row, as `No`, or as `Yes` for a node whose
/// channel already carries data and that no other node contests (a link configured by hand).
pub fn insert_row(c: &mut RunCtx, link: &Link, role: Role) -> Res<bool> {
    may_change(c, link, "insert_row")?;
    let (rows, _) = c.read_rows(link)?;
    if rows.iter().any(|r| r.host == c.node()) {
        return refuse(
            Rule::RowExists,
            format!(
                "insert_row refused on {}: it already has a row for {}; use set_state",
                c.node(),
                link.name
            ),
        );
    }
    match role {
        Role::No => {}
        Role::Yes => {
            yes_allowed(c, link, "insert_row")?;
        }
        Role::Proposed => {
            return refuse(
                Rule::ProposedOnlyByPropose,
                "insert_row: Proposed is reached only through propose(link)",
            );
        }
        Role::Failed => {
            return refuse(
                Rule::InsertedAsNoOrYes,
                "insert_row: a node adds its row as No (or Yes when it already replicates)",
            );
        }
    }
    if !writable(c, "insert_row") {
        return Ok(false);
    }
    c.insert_own_row(link, role)?;
    Ok(true)
}

/// `set_state(link, state)`: `No` and `Failed` always; `Yes` only under [`RunCtx::may_be_yes`];
/// `Proposed` never (only `propose` reaches it). Refused on a node without a row for the link:
/// the update would change nothing, and its hooks would tell of a change that did not happen.
pub fn set_state(c: &mut RunCtx, link: &Link, role: Role) -> Res<bool> {
    may_change(c, link, "set_state")?;
    if !c.book.has_row.contains(&link.key) {
        c.read_rows(link)?;
    }
    if !c.book.has_row.contains(&link.key) {
        return refuse(
            Rule::NoRow,
            format!(
                "set_state refused on {}: it has no row for {}, so nothing would change; insert_row(link, state) adds it",
                c.node(),
                link.name
            ),
        );
    }
    match role {
        Role::Proposed => {
            return refuse(
                Rule::ProposedOnlyByPropose,
                "set_state: Proposed is reached only through propose(link), which is race-safe",
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
        c.current_source(link)?
    } else {
        SourceUpdate::Clear
    };
    c.refresh(link, Some(role), source)?;
    Ok(true)
}

/// `heartbeat(link)`: refreshes this node's row and report.
pub fn heartbeat(c: &mut RunCtx, link: &Link) -> Res<bool> {
    may_change(c, link, "heartbeat")?;
    if !writable(c, "heartbeat") {
        return Ok(false);
    }
    let source = c.current_source(link)?;
    c.refresh(link, None, source)?;
    Ok(true)
}

/// `demote(link, host)`: sets a silent peer's `Yes` to `No`, only if the host judges it silent
/// and it is still silent when the statement runs. `false` when nothing was demoted.
pub fn demote(c: &mut RunCtx, link: &Link, peer: &str) -> Res<bool> {
    may_change(c, link, "demote")?;
    if peer == c.node() {
        return refuse(
            Rule::DemoteOwnRow,
            "demote: use set_state to change this node's own row",
        );
    }
    if !writable(c, "demote") {
        return Ok(false);
    }
    let (rows, fresh) = c.read_rows(link)?;
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
    if let Some(b) = fence::silent_holders(c, link, std::slice::from_ref(row), &fresh)? {
        log::info!("{}: {}: demote: {}", c.node(), link.name, waits_on(&b));
        return Ok(false);
    }
    let o = c.apply(Action::DemoteSilent {
        key: link.key.clone(),
        host: peer.to_string(),
        guard,
    })?;
    let done = matches!(o, Outcome::Done { affected } if affected > 0);
    if done {
        c.notices
            .events
            .push(format!("{}: demoted silent {peer}", link.name));
        c.book
            .takeover_causes
            .insert(link.key.clone(), Cause::SilentReplica);
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
    let (rows, fresh) = c.read_rows(link)?;
    // Every silent holder is fenced before this node claims the link: one that could not be
    // fenced and may still replicate holds the election. (The claim reads the rows again in
    // its transaction.)
    if let Some(b) = fence::silent_holders(c, link, &rows, &fresh)? {
        log::info!("{}: {}: propose: {}", c.node(), link.name, waits_on(&b));
        return Ok(false);
    }
    // Why this node takes the link, for the failover counter: a silent replica it demoted
    // (recorded then), a replica that gave up as Failed, or nobody holding it.
    let me = c.node();
    let others = || rows.iter().filter(|r| r.host != me);
    let cause = if others().any(|r| r.role == Role::Yes && !fresh.is_fresh(r)) {
        Cause::SilentReplica
    } else if others().any(|r| r.role == Role::Failed) {
        Cause::FailedReplica
    } else {
        Cause::Election
    };
    c.book
        .takeover_causes
        .entry(link.key.clone())
        .or_insert(cause);
    match c.apply(Action::Propose {
        key: link.key.clone(),
        fresh,
    })? {
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
        Outcome::Fenced(_) => Err(Refusal::Host(crate::error::Error::Internal(
            "propose: unexpected outcome".into(),
        ))),
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
    })?;
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
    })?;
    Ok(true)
}

/// `stop_replica(link)`.
pub fn stop_replica(c: &mut RunCtx, link: &Link) -> Res<bool> {
    may_change(c, link, "stop_replica")?;
    Ok(c.stop_and_reset(link)?)
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
    if let Some(b) = fence::silent_holders(c, l, &rows, &fresh)? {
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
        return refuse(
            Rule::NotActing,
            format!("connect refused on {node}: the node is not Primary and Synced/Donor"),
        );
    }
    let n = c.book.attempts.entry(l.key.clone()).or_insert(0);
    *n += 1;
    if *n > 2 * l.sources.len() + 2 {
        return refuse(
            Rule::TooManyAttempts,
            format!(
                "connect refused: more than {} attempts on link {} in one run",
                2 * l.sources.len() + 2,
                l.name
            ),
        );
    }
    c.refresh_all()?;
    let (rows, fresh) = c.read_rows(l)?;
    match rows.iter().find(|r| r.host == node) {
        Some(r) if matches!(r.role, Role::Proposed | Role::Yes) => {}
        Some(r) => {
            return refuse(
                Rule::NotHolder,
                format!(
                    "connect refused on {node}: its row for {} says {}; a node must propose (or hold Yes) before it replicates",
                    l.name, r.role
                ),
            );
        }
        None => {
            return refuse(
                Rule::NotHolder,
                format!("connect refused on {node}: it has no row for {}", l.name),
            );
        }
    }
    if let Some(other) = rows.iter().find(|r| c.variant.claim && fresh.holds(r)) {
        return refuse(
            Rule::HeldByAnother,
            format!(
                "connect refused on {node}: {} holds {} ({}); two replicas of one link are never started",
                other.host,
                l.name,
                fresh.describe(other)
            ),
        );
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
    let before = c.backend.replica(l)?.map(|s| s.source());
    let source_failed_its_check = matches!(c.book.source_check.get(&l.key), Some(Err(_)));
    if before.is_some() {
        c.apply(Action::StopReplica {
            channel: l.channel.clone(),
        })?;
    }
    c.apply(Action::ChangeSource {
        channel: l.channel.clone(),
        spec: l.source_spec(src, domains),
    })?;
    c.apply(Action::StartReplica {
        channel: l.channel.clone(),
    })?;
    // Within the policy call's time limit: the wait is cut to what is left of it.
    let deadline = match c.time_left() {
        Some(left) => c
            .settings
            .connect_timeout
            .min(left.saturating_sub(crate::config::SETTLE)),
        None => c.settings.connect_timeout,
    };
    let o = c.backend.await_replica(l, src, deadline)?;
    if !o.is_replicating() {
        log::warn!(
            "{}: {}: source {}: {}",
            c.node(),
            l.name,
            src.address(),
            o.detail()
        );
        return Ok(o);
    }
    c.book.connected.insert(l.key.clone(), src.address());
    c.book.source_check.insert(l.key.clone(), Ok(()));
    // The row must record the new source: report again at the end of the run.
    c.book.refreshed.remove(&l.key);
    c.notices
        .events
        .push(format!("{}: replicating from {}", l.name, src.address()));
    if let Some(old) = before.as_deref().filter(|b| *b != src.address()) {
        switched(c, l, old, src, source_failed_its_check);
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
    Ok(o)
}

/// A replica that moved from `old` to another source: counted as a failover, with its cause,
/// and written to the history.
fn switched(c: &mut RunCtx, l: &Link, old: &str, src: &SourceAddr, failed_its_check: bool) {
    let (cause, why) = if failed_its_check {
        (
            Cause::SourceCheck,
            "it failed the source check (not Primary and Synced, or not answering)",
        )
    } else {
        (Cause::SourceLost, "the channel lost it")
    };
    log::debug!(
        "{}: {}: source switch from {old} ({})",
        c.node(),
        l.name,
        cause.as_str()
    );
    c.observations
        .counters_mut()
        .failover(&l.key, cause.as_str());
    c.history(
        Some(l),
        crate::db::history::event::SOURCE_SWITCH,
        format!("from {old} to {}: {why}", src.address()),
    );
}

#[cfg(test)]
mod tests {
    //! Each refusal names the rule that refused, on a simulated node.
    use super::*;

    /// Synced, as `wsrep_local_state` says it.
    const SYNCED: i64 = 4;
    /// Joined: in the cluster, not yet Synced.
    const JOINED: i64 = 3;

    /// DC1-2, in the Primary component in `state`, with no channel; its row for the link says
    /// `row`, or it has none.
    fn node(row: Option<&str>, state: i64) -> (RunCtx, Link) {
        let mut text = format!(
            "[node]\nname = \"DC1-2\"\ncluster = \"DC1\"\nlocal_index = 1\nstate = {state}\n\n[[link]]\nremote = \"DC2\"\nsources = [\"10.0.2.1\"]\n"
        );
        if let Some(role) = row {
            text.push_str(&format!(
                "\n[[link.row]]\nhost = \"DC1-2\"\nstate = \"{role}\"\nlocal_index = 1\nheartbeat_age = 1\n"
            ));
        }
        let c = crate::app::scenario::test_context(&text);
        let link = c.links[0].clone();
        (c, link)
    }

    /// The policy's `manage_link` runs for `link`.
    fn in_turn(c: &mut RunCtx, link: &Link) {
        c.call.in_manage_link = true;
        c.call.current_link = Some(link.key.clone());
    }

    fn rule<T: std::fmt::Debug>(r: Res<T>) -> Rule {
        let e = r.expect_err("refused");
        e.rule()
            .unwrap_or_else(|| panic!("a host error, not a refusal: {e}"))
    }

    #[test]
    fn a_change_outside_manage_link_is_refused() {
        let (mut c, l) = node(Some("No"), SYNCED);
        assert_eq!(
            rule(set_state(&mut c, &l, Role::No)),
            Rule::OnlyInManageLink
        );
    }

    #[test]
    fn a_change_to_another_link_than_the_one_in_turn_is_refused() {
        let (mut c, l) = node(Some("No"), SYNCED);
        c.call.in_manage_link = true;
        c.call.current_link = Some(crate::db::state::LinkKey::from("DC1-DC3"));
        assert_eq!(rule(heartbeat(&mut c, &l)), Rule::OnlyThisLink);
    }

    #[test]
    fn proposed_is_reached_only_through_propose() {
        let (mut c, l) = node(Some("No"), SYNCED);
        in_turn(&mut c, &l);
        assert_eq!(
            rule(set_state(&mut c, &l, Role::Proposed)),
            Rule::ProposedOnlyByPropose
        );
    }

    #[test]
    fn a_row_is_added_once_and_changed_only_when_it_exists() {
        let (mut c, l) = node(Some("No"), SYNCED);
        in_turn(&mut c, &l);
        assert_eq!(rule(insert_row(&mut c, &l, Role::No)), Rule::RowExists);
        let (mut c, l) = node(None, SYNCED);
        in_turn(&mut c, &l);
        assert_eq!(rule(set_state(&mut c, &l, Role::No)), Rule::NoRow);
        assert_eq!(
            rule(insert_row(&mut c, &l, Role::Failed)),
            Rule::InsertedAsNoOrYes
        );
    }

    #[test]
    fn yes_needs_a_channel_that_carries_data() {
        let (mut c, l) = node(Some("No"), SYNCED);
        in_turn(&mut c, &l);
        assert_eq!(rule(set_state(&mut c, &l, Role::Yes)), Rule::YesInterlock);
    }

    #[test]
    fn only_the_holder_connects_and_only_when_it_acts() {
        let (mut c, l) = node(Some("No"), SYNCED);
        in_turn(&mut c, &l);
        let src = l.sources[0].clone();
        assert_eq!(rule(connect(&mut c, &l, &src)), Rule::NotHolder);
        let (mut c, l) = node(Some("Proposed"), JOINED);
        in_turn(&mut c, &l);
        assert_eq!(rule(connect(&mut c, &l, &src)), Rule::NotActing);
    }

    #[test]
    fn demote_is_for_a_peer() {
        let (mut c, l) = node(Some("No"), SYNCED);
        in_turn(&mut c, &l);
        assert_eq!(rule(demote(&mut c, &l, "DC1-2")), Rule::DemoteOwnRow);
    }
}
