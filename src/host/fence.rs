//! Fencing: before a node replicates in place of a holder that went silent, it stops the
//! holder's channel on the holder's own server, through the executor. The address comes from
//! the holder's report (each node records where it can be reached), else from the cluster's
//! membership. Every fence that stops a channel is logged, mailed and counted.

use super::{Event, RunCtx};
use crate::config::topology::Link;
use crate::db::clock::{FenceMemo, Freshness};
use crate::db::state::StateRow;
use crate::error::Result;
use crate::exec::{Action, FenceOutcome, Outcome};

/// Stops a peer's channel before this node (or another) replicates in its place. A peer that
/// does not answer is down, or cut off from the cluster, where it stops its own channel.
/// Returns whether a channel was stopped; remembers the attempt for the peer's report. A peer
/// is fenced once per link and run.
pub fn fence(c: &mut RunCtx, link: &Link, r: &StateRow, why: &str) -> Result<bool> {
    if c.was_fenced(link, &r.host) {
        return Ok(false);
    }
    let outcome = fence_once(c, link, r, why)?;
    c.fenced.insert((link.key.clone(), r.host.clone()));
    if let Some(rep) = &r.report {
        c.observations.note_fenced(
            &link.key,
            &r.host,
            FenceMemo {
                seq: rep.seq,
                at: r.read_at,
                reached: outcome.is_some(),
            },
        );
    }
    Ok(outcome == Some(true))
}

/// Fence before holding: every node that held the link and went silent may still replicate,
/// so its channel is stopped before this node takes the link (`connect`), marks itself `Yes`
/// (a channel it already runs), or demotes it (after which its row no longer says it held the
/// link, as with a node that runs the original script and does not report). Each is fenced
/// once per run; the heartbeat is refreshed after a fence that contacted a peer, since it
/// may have waited on one that does not answer.
pub fn silent_holders(
    c: &mut RunCtx,
    link: &Link,
    rows: &[StateRow],
    fresh: &Freshness,
) -> Result<()> {
    let silent: Vec<&StateRow> = rows
        .iter()
        .filter(|r| fresh.silent_holder(r) && !c.was_fenced(link, &r.host))
        .collect();
    let contacts = c.fence_contacts;
    for r in &silent {
        fence(c, link, r, "it went silent while holding the link")?;
    }
    if c.fence_contacts > contacts {
        c.refresh_all()?;
    }
    Ok(())
}

/// As [`silent_holders`], on the rows as they are now.
pub fn silent_holders_now(c: &mut RunCtx, link: &Link) -> Result<()> {
    let (rows, fresh) = c.read_rows(link)?;
    silent_holders(c, link, &rows, &fresh)
}

/// One fence: `Some(stopped)` when the peer answered, `None` when it could not be reached.
fn fence_once(c: &mut RunCtx, link: &Link, r: &StateRow, why: &str) -> Result<Option<bool>> {
    let me = c.node();
    let address = match r.report.as_ref().and_then(|p| p.address.clone()) {
        Some(a) => Some(a),
        None => c.backend.member_address(&r.host)?,
    };
    let Some(address) = address else {
        log::warn!(
            "{me}: {}: cannot fence {}: it never reported its address and is not a member of the current view (so it is down or cut off, and stops its own channel); going on",
            link.name,
            r.host
        );
        return Ok(None);
    };
    c.fence_contacts += 1;
    let o = c.apply(Action::Fence {
        host: r.host.clone(),
        address: address.clone(),
        channel: link.channel.clone(),
    })?;
    Ok(match o {
        Outcome::Fenced(FenceOutcome::Stopped) => {
            *c.new_fences.entry(link.key.clone()).or_insert(0) += 1;
            c.observations.counters_mut().fence(&link.key);
            c.events
                .push(format!("{}: fenced {} at {address}", link.name, r.host));
            c.hook(
                crate::config::hooks::HookEvent::Fenced,
                Some(link),
                vec![
                    ("PXCRM_PEER", r.host.clone()),
                    ("PXCRM_PEER_ADDRESS", address.clone()),
                    ("PXCRM_REASON", why.to_string()),
                ],
            );
            log::warn!(
                "{me}: {}: fenced {} at {address}: {why}; its channel was running and is stopped",
                link.name,
                r.host
            );
            c.mail(
                Event::Fenced,
                format!("{}: {me} stopped the channel of {}", link.name, r.host),
                format!(
                    "{} held the link to {} but {why}. {me} connected to its server at {address} and stopped its channel, so that two nodes never replicate the link at once.",
                    r.host, link.remote
                ),
            );
            Some(true)
        }
        Outcome::Fenced(FenceOutcome::NotRunning) => {
            log::info!(
                "{me}: {}: {} at {address} runs no channel for the link; nothing to fence",
                link.name,
                r.host
            );
            Some(false)
        }
        Outcome::Fenced(FenceOutcome::Unreachable(e)) => {
            log::warn!(
                "{me}: {}: could not fence {} at {address} ({e}); going on: it is down, or cut off from the cluster and stops its own channel",
                link.name,
                r.host
            );
            None
        }
        other => {
            log::warn!("{me}: {}: unexpected fence outcome {other:?}", link.name);
            None
        }
    })
}
