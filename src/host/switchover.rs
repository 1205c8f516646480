//! The host's side of a switchover (`crate::db::switchover` has the request's phases): what
//! the runs of the two nodes a request names do, before the policy, whatever the policy is.
//!
//! * The **target** (`toHost`), when the request is `requested`: its row must say `No`; it
//!   marks the request `ready` and waits, within its run, for the old replica to stop. When the
//!   request is `stopped`, it waits until it has applied the position the old channel stopped
//!   at, claims the link with the same claim as an election (`propose`), connects to the old
//!   replica's source first (then the link's others), and becomes `Yes`; the request is `done`.
//!   If it cannot, it gives the link up as `Failed` like any replica that cannot connect, and
//!   the election goes on.
//! * The **old replica** (`fromHost`), when the target is `ready` (it waits for that within its
//!   run, too): it stops its channel, reads the position the channel stopped at, and in one
//!   transaction moves the request to `stopped` and its row to `No`. Only then is its channel
//!   reset; if the request ended meanwhile, the channel starts again.
//!
//! Both wait within their runs, so that under cron, where every node runs at the same
//! second, and under the daemon, the link stands still for a fraction of a second. Safety does
//! not rest on the waits: while the request is `stopped` only the target may claim the link
//! (the claim reads the request in its transaction), the old row is `No` before anyone claims,
//! and the claim decides between rivals as in any election.

use super::{Event, RunCtx, primitives};
use crate::config::topology::Link;
use crate::db::state::{FailureKind, Role};
use crate::db::switchover::{Phase, Request};
use crate::error::Result;
use crate::exec::{Action, ConnectOutcome, Outcome};
use crate::metrics::Cause;
use std::time::{Duration, Instant};

/// The longest a run waits for the other side of a switchover.
pub const WAIT: Duration = Duration::from_secs(10);

/// The longest the target waits to have applied the old replica's last position.
pub const CATCH_UP: Duration = Duration::from_secs(5);

/// What a node named by a pending request does in this run, before the policy. `true` when
/// it handed the link off (its report is written): the policy is not asked this run.
pub fn step(c: &mut RunCtx, link: &Link) -> Result<bool> {
    let Some(req) = c.backend.switchover(link)? else {
        return Ok(false);
    };
    if !req.pending(c.settings.silent_after) {
        return Ok(false);
    }
    let me = c.node();
    if req.from == me && matches!(req.phase, Phase::Requested | Phase::Ready) {
        old_replica(c, link, req)
    } else if req.to == me {
        target(c, link, req)?;
        Ok(false)
    } else {
        Ok(false)
    }
}

/// How long this run may wait for the other side: [`WAIT`], a quarter of the silent
/// threshold, and what is left of the run's time, whichever is least.
fn wait_limit(c: &RunCtx) -> Duration {
    let quarter = Duration::from_secs(u64::try_from(c.settings.silent_after / 4).unwrap_or(0));
    let mut d = WAIT.min(quarter.max(Duration::from_secs(1)));
    if let Some(left) = c.time_left() {
        d = d.min(left / 2);
    }
    d
}

/// The request ends without a move; the election goes on as usual.
fn give_up(c: &mut RunCtx, link: &Link, req: &Request, from: Phase, why: &str) -> Result<()> {
    let done = c.apply(Action::AdvanceSwitchover {
        key: link.key.clone(),
        to: req.to.clone(),
        from_phase: from,
        phase: Phase::Failed,
        source: None,
        detail: Some(why.to_string()),
    })?;
    if matches!(done, Outcome::Done { affected: 0 }) {
        return Ok(());
    }
    log::warn!(
        "{}: {}: switchover to {} not done: {why}",
        c.node(),
        link.name,
        req.to
    );
    c.history(
        Some(link),
        crate::db::history::event::SWITCHOVER,
        format!("from {} to {} not done: {why}", req.from, req.to),
    );
    c.mail_about(
        Event::Switchover,
        &req.to,
        format!("{}: switchover to {} not done", link.name, req.to),
        format!(
            "The switchover of {} from {} to {} (requested on {}) did not happen: {why}.\nThe replica is chosen as usual; `pxc-replication-manager explain --link {}` shows who ranks first.",
            link.name, req.from, req.to, req.requested_by, link.name
        ),
    );
    Ok(())
}

/// The old replica: waits for the target to be ready, stops at a known position, hands off.
/// (Once it has, the request is the target's: the old replica's later runs leave it alone.)
fn old_replica(c: &mut RunCtx, link: &Link, req: Request) -> Result<bool> {
    let me = c.node();
    let ch = c.backend.replica(link)?;
    let (rows, fresh) = c.read_rows(link)?;
    let replica = rows.iter().any(|r| r.host == me && r.role == Role::Yes)
        && ch.as_ref().is_some_and(|s| s.is_healthy());
    if !replica {
        let from = req.phase;
        give_up(
            c,
            link,
            &req,
            from,
            &format!("{me} no longer replicates the link with a healthy channel"),
        )?;
        return Ok(false);
    }
    let req = if req.phase == Phase::Requested {
        match c
            .backend
            .await_switchover(link, Phase::Requested, wait_limit(c))?
        {
            Some(r) if r.from == me && r.pending(c.settings.silent_after) => r,
            _ => return Ok(false),
        }
    } else {
        req
    };
    if req.phase != Phase::Ready {
        log::info!(
            "{me}: {}: switchover to {}: the target's run has not answered yet; replicating on",
            link.name,
            req.to
        );
        return Ok(false);
    }
    // The target said it was ready; it must still be there.
    let target_fresh = rows
        .iter()
        .find(|r| r.host == req.to)
        .is_some_and(|r| fresh.is_fresh(r));
    if !target_fresh {
        give_up(
            c,
            link,
            &req,
            Phase::Ready,
            &format!(
                "{} went silent or left the view before the hand-off",
                req.to
            ),
        )?;
        return Ok(false);
    }
    let Some(status) = ch else {
        return Ok(false);
    };
    hand_off(c, link, &req, status)
}

/// Stops the channel, reads where it stopped, and hands the link to the target in one
/// transaction; resets the channel once that committed, or starts it again if the request
/// ended meanwhile. `true` when handed off.
fn hand_off(
    c: &mut RunCtx,
    link: &Link,
    req: &Request,
    status: crate::db::flavor::ReplicaStatus,
) -> Result<bool> {
    let me = c.node();
    let source = status.source();
    c.apply(Action::StopReplica {
        channel: link.channel.clone(),
    })?;
    let stopped = c.backend.replica(link)?;
    // Fail closed: without the position it stopped at, the target could not know when it has
    // caught up, and could ask the source again for what it has not applied yet.
    let Some(position) = stopped
        .as_ref()
        .and_then(|s| s.gtid_position())
        .map(str::to_string)
    else {
        return no_position(c, link, req, stopped.is_some());
    };
    let report = c.report_values(link)?;
    let channel = report.channel;
    let outcome = c.apply(Action::HandOff {
        key: link.key.clone(),
        position: position.clone(),
        source: source.clone(),
        threshold: c.settings.silent_after,
        report,
    })?;
    if let Outcome::Lost(why) = outcome {
        // Nobody may take the link over: this node replicates on.
        c.apply(Action::StartReplica {
            channel: link.channel.clone(),
        })?;
        log::warn!(
            "{me}: {}: switchover to {}: {why}; replicating on",
            link.name,
            req.to
        );
        return Ok(false);
    }
    c.book.refreshed.insert(link.key.clone());
    c.book.reported.insert(link.key.clone(), channel);
    c.book.reported_at.insert(link.key.clone(), Instant::now());
    c.notices.events.push(format!("{}: now No", link.name));
    // Stopped already: only the reset is left.
    c.apply(Action::ResetReplica {
        channel: link.channel.clone(),
    })?;
    c.book.reset_channels.insert(link.key.clone(), status);
    c.book.connected.remove(&link.key);
    c.notices
        .events
        .push(format!("{}: replication stopped and reset", link.name));
    c.history(
        Some(link),
        crate::db::history::event::SWITCHOVER,
        format!(
            "handed off to {}: stopped reading from {source} at {}",
            req.to,
            shown(&position)
        ),
    );
    c.book
        .takeover_causes
        .insert(link.key.clone(), Cause::Switchover);
    c.role_written(link, Role::No);
    c.book.takeover_causes.remove(&link.key);
    log::info!(
        "{me}: {}: switchover: stopped at {} and handed the link to {}",
        link.name,
        shown(&position),
        req.to
    );
    Ok(true)
}

/// A stopped channel that did not say where it stopped: started again, and the request
/// failed. `false`: not handed off.
fn no_position(c: &mut RunCtx, link: &Link, req: &Request, has_channel: bool) -> Result<bool> {
    let me = c.node();
    if has_channel {
        c.apply(Action::StartReplica {
            channel: link.channel.clone(),
        })?;
    }
    give_up(
        c,
        link,
        req,
        Phase::Ready,
        &format!(
            "{me} stopped its channel but the server did not say at which GTID position, so {} could not know when it has caught up; {me} replicates on",
            req.to
        ),
    )?;
    Ok(false)
}

fn shown(position: &str) -> &str {
    if position.is_empty() {
        "an empty GTID position"
    } else {
        position
    }
}

/// The target: says it is ready, waits for the hand-off, catches up, claims, connects.
fn target(c: &mut RunCtx, link: &Link, req: Request) -> Result<()> {
    let me = c.node();
    let mut req = req;
    if req.phase == Phase::Requested {
        let (rows, _) = c.read_rows(link)?;
        let role = rows.iter().find(|r| r.host == me).map(|r| r.role);
        if role != Some(Role::No) {
            let why = match role {
                Some(r) => format!("{me}'s row says {r}, not No"),
                None => format!("{me} has no row for the link"),
            };
            return give_up(c, link, &req, Phase::Requested, &why);
        }
        let moved = c.apply(Action::AdvanceSwitchover {
            key: link.key.clone(),
            to: me.clone(),
            from_phase: Phase::Requested,
            phase: Phase::Ready,
            source: None,
            detail: None,
        })?;
        if matches!(moved, Outcome::Done { affected: 0 }) {
            return Ok(());
        }
        req.phase = Phase::Ready;
    }
    if req.phase == Phase::Ready {
        req = match c
            .backend
            .await_switchover(link, Phase::Ready, wait_limit(c))?
        {
            Some(r) if r.to == me && r.pending(c.settings.silent_after) => r,
            _ => return Ok(()),
        };
    }
    if req.phase != Phase::Stopped {
        log::info!(
            "{me}: {}: switchover from {}: the old replica has not stopped yet",
            link.name,
            req.from
        );
        return Ok(());
    }
    take_over(c, link, &req)
}

fn take_over(c: &mut RunCtx, link: &Link, req: &Request) -> Result<()> {
    let me = c.node();
    let position = req.position.clone().unwrap_or_default();
    let caught_up = position.is_empty() || c.backend.await_position(&position, CATCH_UP)?;
    if !caught_up {
        return give_up(
            c,
            link,
            req,
            Phase::Stopped,
            &format!(
                "{me} had not applied {position} (where the old channel stopped) within {} s",
                CATCH_UP.as_secs()
            ),
        );
    }
    c.book
        .takeover_causes
        .insert(link.key.clone(), Cause::Switchover);
    c.call.in_manage_link = true;
    let r = connect(c, link, req);
    c.call.in_manage_link = false;
    match r {
        Ok(source) => {
            c.apply(Action::AdvanceSwitchover {
                key: link.key.clone(),
                to: me.clone(),
                from_phase: Phase::Stopped,
                phase: Phase::Done,
                source: Some(source.clone()),
                detail: None,
            })?;
            log::info!(
                "{me}: {}: switchover done: replicating from {source}",
                link.name
            );
            c.mail_about(
                Event::Switchover,
                &req.to,
                format!(
                    "{}: switchover done, {me} is the replica (source {source})",
                    link.name
                ),
                format!(
                    "{} stopped at {} and {me} now replicates {} from {source} (requested on {}).",
                    req.from,
                    shown(&position),
                    link.remote,
                    req.requested_by
                ),
            );
            Ok(())
        }
        Err(why) => {
            c.book.takeover_causes.remove(&link.key);
            give_up(c, link, req, Phase::Stopped, &why)
        }
    }
}

/// The claim and the connection, with the interlocked primitives an election uses: the old
/// replica's source first, then the link's others in their order. On a connection that
/// fails everywhere the node gives the link up as `Failed`, like a replica that cannot
/// connect.
fn connect(c: &mut RunCtx, link: &Link, req: &Request) -> std::result::Result<String, String> {
    if !primitives::propose(c, link).map_err(said)? {
        return Err(format!("{} lost the claim of the link", c.node()));
    }
    let mut order: Vec<_> = link
        .sources
        .iter()
        .filter(|s| req.source.as_deref() == Some(s.address().as_str()))
        .cloned()
        .collect();
    order.extend(
        link.sources
            .iter()
            .filter(|s| req.source.as_deref() != Some(s.address().as_str()))
            .cloned(),
    );
    let mut tried = Vec::new();
    for src in &order {
        match primitives::connect(c, link, src).map_err(said)? {
            ConnectOutcome::Replicating(_) => {
                primitives::set_state(c, link, Role::Yes).map_err(said)?;
                return Ok(src.address());
            }
            ConnectOutcome::SqlError(e) => {
                let why = format!("the SQL thread stopped on {}: {e}", src.address());
                fail(c, link, FailureKind::Sql, &why)?;
                return Err(why);
            }
            ConnectOutcome::NotRunning(d) => tried.push(format!("{}: {d}", src.address())),
        }
    }
    let why = format!("no source worked ({})", tried.join("; "));
    fail(c, link, FailureKind::Connect, &why)?;
    Err(why)
}

/// A primitive's refusal or error, as the request's detail says it.
fn said(r: primitives::Refusal) -> String {
    r.to_string()
}

fn fail(
    c: &mut RunCtx,
    link: &Link,
    kind: FailureKind,
    why: &str,
) -> std::result::Result<(), String> {
    primitives::stop_replica(c, link).map_err(said)?;
    primitives::set_state(c, link, Role::Failed).map_err(said)?;
    primitives::record_failure(c, link, kind, why).map_err(said)?;
    c.mail(
        Event::Failed,
        format!("{}: {} failed to become the replica", link.name, c.node()),
        format!("During a switchover: {why}. The row is Failed; another node can try now."),
    );
    Ok(())
}
