//! What the host does for a link before and after the policy's `manage_link`, whatever the
//! policy is (see the module above for the list of rules).

use super::{Event, RunCtx};
use crate::config::SourceAddr;
use crate::config::topology::Link;
use crate::db::flavor::ReplicaStatus;
use crate::db::state::{ChannelState, FailureKind, Role, StateRow};
use crate::error::Result;
use crate::exec::{Action, SourceUpdate};

/// Whether the policy is called for a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The node acts: the policy decides.
    Act,
    /// The host did all there is to do (not Primary and Synced/Donor, or paused).
    Done,
}

/// Before the policy: the rules for a node that must not act, and the check of the current
/// source of an acting replica.
pub fn before(c: &mut RunCtx, link: &Link) -> Result<Decision> {
    let facts = c.backend.facts().clone();
    let ch = c.backend.replica(link)?;
    if !facts.can_act() {
        if let Some(s) = &ch {
            leave(c, link, s)?;
        }
        return Ok(Decision::Done);
    }
    if c.pause.since.is_some() {
        report_paused(c, link, ch.as_ref())?;
        return Ok(Decision::Done);
    }
    if let Some(s) = ch.filter(|s| s.is_healthy())
        && !checked_early(c, link, &s)
    {
        check_source(c, link, &s);
    }
    // A switchover that names this node (the old replica or the target) goes first.
    Ok(if super::switchover::step(c, link)? {
        Decision::Done
    } else {
        Decision::Act
    })
}

/// A node outside the Primary component, or not Synced/Donor, stops replicating: its SQL
/// thread cannot apply in step with the cluster, and an IO thread left running keeps a
/// connection that the source drops as soon as the replacement (same server id) connects.
fn leave(c: &mut RunCtx, link: &Link, s: &ReplicaStatus) -> Result<()> {
    let facts = c.backend.facts().clone();
    c.stop_and_reset(link)?;
    if c.writable() {
        let (rows, _) = c.read_rows(link)?;
        if rows
            .iter()
            .any(|r| r.host == facts.name && matches!(r.role, Role::Yes | Role::Proposed))
        {
            c.refresh(link, Some(Role::No), SourceUpdate::Clear)?;
        }
    } else {
        log::warn!(
            "{}: {}: the state table cannot be written outside the Primary component; the other nodes see this node go silent and take over",
            facts.name,
            link.name
        );
    }
    c.mail(
        Event::Stopped,
        format!(
            "{}: {} stopped replicating (node is {}/{})",
            link.name, facts.name, facts.cluster_status, facts.local_state_comment
        ),
        format!(
            "{} is {} and {}, so it cannot stay the replica of {}. Its channel from {} is stopped and reset. Another node of {} takes over once this node is silent for {}.",
            facts.name,
            facts.cluster_status,
            facts.local_state_comment,
            link.remote,
            s.source(),
            facts.cluster,
            c.threshold_said()
        ),
    );
    Ok(())
}

/// A paused node keeps reporting while its channel carries data (healthy threads, and a
/// source that passes the same check as an acting replica's): it is alive and doing its job,
/// so nobody may take the link from it. It changes nothing else. A paused node whose channel
/// does not carry data (its source died, or was cut off from its cluster, or a thread stopped)
/// only marks itself paused, like one that runs no channel: its sequence stands still, so its
/// peers neither wait for it nor elect it, and once it is silent they fence its channel and
/// take the link over. Maintenance on one node never costs the link its replication.
fn report_paused(c: &mut RunCtx, link: &Link, ch: Option<&ReplicaStatus>) -> Result<()> {
    let (rows, _) = c.read_rows(link)?;
    let me = c.node();
    let Some(mine) = rows.iter().find(|r| r.host == me) else {
        log::info!("{me}: {}: paused; adds no row", link.name);
        return Ok(());
    };
    let state = ChannelState::of(ch);
    let carries = match ch.filter(|s| s.is_healthy()) {
        Some(s) => {
            check_source(c, link, s);
            c.source_check(link).is_some_and(|v| v.is_ok())
        }
        None => false,
    };
    if carries {
        let source = c.current_source(link)?;
        c.refresh(link, None, source)?;
        return Ok(());
    }
    if let Some(s) = ch.filter(|_| state.runs() && mine.role == Role::Yes) {
        let why = match c.source_check(link) {
            Some(Err(e)) => format!("the source {} {e}", s.source()),
            _ => format!(
                "from {}: IO {}, SQL {}",
                s.source(),
                s.io_running,
                s.sql_running
            ),
        };
        log::warn!(
            "{me}: {}: paused, and its channel carries no data ({why}); it stops reporting, so another node takes the link over once this one is silent for {}",
            link.name,
            c.threshold_said()
        );
    }
    if mine
        .report
        .as_ref()
        .is_none_or(|r| r.paused_for.is_none() || r.channel != state)
    {
        let report = c.report_values(link)?;
        c.apply(Action::PauseMark {
            key: link.key.clone(),
            report,
        })?;
    }
    Ok(())
}

/// How long a source checked before the links' turns stays checked for its link's turn.
const EARLY_CHECK_LASTS: std::time::Duration = std::time::Duration::from_secs(1);

/// Before the links' turns, checks the current source of every link whose channel runs
/// healthily, where [`before`] would (an acting node, not paused). These probes are a
/// healthy replica's only remote calls: made first, they leave the turns with nothing but
/// the local server to ask, so that their reports can be committed together
/// (`exec/joined.rs`). A turn that comes more than [`EARLY_CHECK_LASTS`] after its link's
/// check (another link's failover took long), or finds another source, checks again.
pub fn check_sources(c: &mut RunCtx, links: &[Link]) {
    if !c.backend.facts().can_act() || c.pause.since.is_some() {
        return;
    }
    let mut replicates = None;
    for link in links {
        // A channel that cannot be read is the turn's error, not this one's.
        let Ok(Some(s)) = c.backend.replica(link) else {
            continue;
        };
        if s.is_healthy() {
            check_source(c, link, &s);
            c.book
                .checked_early
                .insert(link.key.clone(), (std::time::Instant::now(), s.source()));
            replicates.get_or_insert(link);
        }
    }
    // A replica's turn reads its link's failure record (the built-in policy clears it once
    // the link replicates again). Read here, every link's in one statement, it leaves the
    // turns nothing to ask; an error is the turn's to meet.
    if let Some(link) = replicates {
        let _ = c.backend.last_failure(link);
    }
}

/// Whether the link's source was checked before the turns, recently, at the address its
/// channel still has.
fn checked_early(c: &mut RunCtx, link: &Link, s: &ReplicaStatus) -> bool {
    c.book
        .checked_early
        .remove(&link.key)
        .is_some_and(|(at, address)| address == s.source() && at.elapsed() < EARLY_CHECK_LASTS)
}

/// Checks the source an acting replica reads from: it must answer the link's credentials and
/// be Primary and Synced. A source cut off from its own cluster keeps serving its binlog, so
/// the threads look healthy while no new write arrives; only this check sees it.
fn check_source(c: &mut RunCtx, link: &Link, s: &ReplicaStatus) {
    let address = s.source();
    let src = link.source(&address).cloned().unwrap_or(SourceAddr {
        host: s.source_host.clone(),
        port: s.source_port,
        weight: 0,
    });
    let verdict = match c.backend.probe(link, &src) {
        Ok(p) => p.health(),
        Err(e) => Err(format!("does not answer: {e}")),
    };
    if let Err(why) = &verdict {
        log::warn!(
            "{}: {}: the current source {address} {why}",
            c.node(),
            link.name
        );
    }
    c.book.source_check.insert(link.key.clone(), verdict);
}

/// After the policy, whatever it did: the state table and the channel agree, a running channel
/// carries data, two replicas do not both go on, stray channels of silent nodes are fenced,
/// and the node reports, unless the policy failed (`policy_ok`): then it changes only what
/// the rules require, and looks silent to its peers.
pub fn after(c: &mut RunCtx, link: &Link, policy_ok: bool) -> Result<()> {
    let me = c.node();
    let ch = c.backend.replica(link)?;
    let state = ChannelState::of(ch.as_ref());
    let (rows, fresh) = c.read_rows(link)?;
    let mine = rows.iter().find(|r| r.host == me).cloned();
    let role = mine.as_ref().map(|r| r.role);
    if state.runs() {
        if role != Some(Role::Yes) {
            let complete = role == Some(Role::Proposed)
                && c.may_be_yes(link)?.is_ok()
                && super::fence::silent_holders_now(c, link)?.is_none();
            if complete {
                let source = c.current_source(link)?;
                c.refresh(link, Some(Role::Yes), source)?;
            } else {
                unexpected(c, link, role, ch.as_ref())?;
            }
        } else if let Err(why) = c.carries_data(link)? {
            give_up(c, link, ch.as_ref(), &why.to_string(), why.kind())?;
        } else if let Some(mine) = &mine {
            let rank = |r: &StateRow| (-r.weight, r.local_index.unwrap_or(1000), r.host.clone());
            let first = rows
                .iter()
                .filter(|o| o.role == Role::Yes && fresh.runs_healthy(o))
                .find(|o| rank(o) < rank(mine));
            if let Some(o) = first {
                c.stop_and_reset(link)?;
                c.refresh(link, Some(Role::No), SourceUpdate::Clear)?;
                c.mail(
                    Event::TwoReplicas,
                    format!("{}: two replicas, {me} stopped", link.name),
                    format!(
                        "{me} and {} both replicated {} with healthy channels. {me} stopped; {} goes on (higher weight, then lower index).",
                        o.host, link.remote, o.host
                    ),
                );
            }
        }
    } else if matches!(role, Some(Role::Yes | Role::Proposed)) {
        // A row that holds the link without a running channel: nobody replicates under it.
        if ch.is_some() {
            give_up(
                c,
                link,
                ch.as_ref(),
                "its channel is configured but does not run",
                FailureKind::Connect,
            )?;
        } else {
            c.refresh(link, Some(Role::No), SourceUpdate::Clear)?;
            c.mail(
                Event::NotReplicating,
                format!("{}: {me} is marked as the replica but does not replicate", link.name),
                format!(
                    "{me}'s row said {} but it has no replication channel for {}. The row is set to No; a replica is elected again.",
                    role.map_or("", |r| r.as_str()),
                    link.remote
                ),
            );
        }
    } else if role.is_none() && c.writable() && policy_ok {
        c.insert_own_row(link, Role::No)?;
    }
    fence_strays(c, link)?;
    if policy_ok
        && (!c.book.refreshed.contains(&link.key) || c.fence_note_pending(link).is_some())
        && c.book.has_row.contains(&link.key)
    {
        let source = c.current_source(link)?;
        c.refresh(link, None, source)?;
    }
    Ok(())
}

/// A channel runs under a row that does not hold the link (or no row): it stops.
fn unexpected(
    c: &mut RunCtx,
    link: &Link,
    role: Option<Role>,
    ch: Option<&ReplicaStatus>,
) -> Result<()> {
    let me = c.node();
    let why = match role {
        Some(Role::Proposed) => c.may_be_yes(link)?.err().unwrap_or_default(),
        _ => String::new(),
    };
    c.stop_and_reset(link)?;
    match role {
        Some(Role::Proposed) => c.refresh(link, Some(Role::No), SourceUpdate::Clear)?,
        None if c.writable() => c.insert_own_row(link, Role::No)?,
        _ => {}
    }
    let row = role.map_or("no row".to_string(), |r| format!("its row said {r}"));
    c.mail(
        Event::UnexpectedReplica,
        format!("{}: {me} replicated while {row}, stopped", link.name),
        format!(
            "{me} had a channel from {} while {row}{}. A channel runs only under a Yes row; it is stopped and reset.",
            ch.map_or("?".into(), |s| s.source()),
            if why.is_empty() {
                String::new()
            } else {
                format!(" and could not become Yes: {why}")
            }
        ),
    );
    Ok(())
}

/// The replica's channel does not carry data and the policy left it: the node gives the link
/// up as `Failed`, so another node can take it, and records why.
/// `kind` is what is recorded unless the channel shows an SQL error.
fn give_up(
    c: &mut RunCtx,
    link: &Link,
    ch: Option<&ReplicaStatus>,
    why: &str,
    kind: FailureKind,
) -> Result<()> {
    let me = c.node();
    let sql_error = ch.map(|s| s.last_sql_error.clone()).unwrap_or_default();
    // Only an error in the data blocks the link for every node; one of the cluster (the node
    // left the Primary component while applying) does not.
    let kind = if ch.is_some_and(ReplicaStatus::has_data_error) {
        FailureKind::Sql
    } else {
        kind
    };
    let already = c.backend.last_failure(link)?.is_some();
    c.stop_and_reset(link)?;
    c.refresh(link, Some(Role::Failed), SourceUpdate::Clear)?;
    let body = format!(
        "{me} was the replica of {} but {why}{}, and the policy left it so. The channel is stopped and reset and the row is Failed, so another node can take over.",
        link.remote,
        if sql_error.is_empty() {
            String::new()
        } else {
            format!(" (SQL error: {sql_error})")
        }
    );
    c.apply(Action::RecordFailure {
        key: link.key.clone(),
        kind,
        detail: body.clone(),
    })?;
    c.mail(
        if already {
            Event::StillFailing
        } else {
            Event::Failed
        },
        format!("{}: {me} failed as replica: {why}", link.name),
        body,
    );
    Ok(())
}

/// A silent node whose last report says its channel runs, while another node (or this one)
/// holds the link: its manager stopped, or it was replaced by a node running the original
/// script, which does not fence. Its channel is stopped once per report sequence.
fn fence_strays(c: &mut RunCtx, link: &Link) -> Result<()> {
    let (rows, fresh) = c.read_rows(link)?;
    let me = c.node();
    let i_hold = rows.iter().any(|r| r.host == me && r.role == Role::Yes)
        && ChannelState::of(c.backend.replica(link)?.as_ref()) == ChannelState::Healthy;
    if !i_hold && !rows.iter().any(|r| fresh.holds(r)) {
        return Ok(());
    }
    let t = c.threshold();
    for r in rows.iter().filter(|r| {
        r.host != me && !fresh.is_fresh(r) && r.report.as_ref().is_some_and(|p| p.channel.runs())
    }) {
        let seq = r.report.as_ref().map_or(0, |p| p.seq);
        if c.observations
            .already_fenced(&link.key, &r.host, seq, r.read_at, t)
        {
            continue;
        }
        super::fence::fence(
            c,
            link,
            r,
            "it is silent, its last report says its channel runs, and another node holds the link",
            super::fence::Purpose::Stray,
        )?;
    }
    Ok(())
}
