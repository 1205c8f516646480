//! Fencing: before a node replicates in place of a holder that went silent, it stops the
//! holder's channel on the holder's own server, through the executor. The address comes from
//! the holder's report (each node records where it can be reached), else from the cluster's
//! membership. Every fence that stops a channel is logged, mailed and counted.
//!
//! A fence that did not happen never counts as done. A peer whose channel could not be
//! stopped **blocks** the takeover (the move to `Proposed` or `Yes`, the demotion of its row,
//! the start of a channel) when it may still replicate: it is a member of this node's Primary
//! view (Galera says it is alive), or its server answered and refused (the login was denied, a
//! privilege is missing, a statement failed). Only a peer that no TCP connection reaches and
//! that is not a member of the view (or whose membership cannot be known, as on PXC 5.7) is
//! passed over: it is down, or cut off from the cluster, where its SQL thread cannot apply and
//! its own run stops its channel. Galera drops a dead node from the view within seconds, so a
//! dead node blocks a takeover for that long only.

use super::{Event, RunCtx};
use crate::config::topology::Link;
use crate::db::clock::{FenceMemo, Freshness};
use crate::db::state::StateRow;
use crate::error::Result;
use crate::exec::{Action, FenceOutcome, Outcome, PeerFailure};

/// What a fence decided for the takeover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The peer's channel is stopped now, or ran no thread.
    Done,
    /// The peer could not be reached and is not a member of the view: down or cut off.
    PassedOver,
    /// The peer may still replicate, and its channel could not be stopped: the takeover waits.
    Blocked(Blocked),
}

/// Why a peer is fenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Before this node takes the link over from it.
    Takeover,
    /// Its channel may run beside the node that holds the link now.
    Stray,
}

/// A peer that could not be fenced and may still replicate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Blocked {
    pub peer: String,
    pub address: String,
    /// The user the manager logged in as.
    pub login: String,
    pub failure: PeerFailure,
    /// Whether the peer was a member of this node's Primary view (`None`: not known).
    pub member: Option<bool>,
}

impl Blocked {
    /// One line: who, where, as whom, what happened.
    pub fn describe(&self) -> String {
        format!(
            "{} at {} (login {}): {}",
            self.peer, self.address, self.login, self.failure
        )
    }

    /// Why the peer may still replicate, in words.
    pub fn why_alive(&self) -> &'static str {
        match (&self.failure, self.member) {
            (_, Some(true)) => {
                "it is a member of this node's Primary view, so its server runs and its channel may still replicate"
            }
            (PeerFailure::Refused(_), _) => {
                "its server answered, so it runs and its channel may still replicate"
            }
            (PeerFailure::Unreachable(_), _) => "its membership is not known",
        }
    }

    /// What the operator can do.
    pub fn advice(&self) -> String {
        let r = self.failure.reason();
        let fix = if r.contains("(error 1045)") || r.contains("(error 1698)") {
            format!(
                "The login {} is denied on {}: a user that exists only @'localhost' (or logs in through the unix socket) cannot fence peers; create it for the peers' addresses with the grants of docs/installing.md (Grants).",
                self.login, self.peer
            )
        } else if r.contains("(error 1227)") || r.contains("lacks the privilege") {
            format!(
                "The login {} lacks a privilege on {}: grant it SUPER (or REPLICATION SLAVE ADMIN on MariaDB 10.5+ and MySQL 8) as docs/installing.md (Grants) shows.",
                self.login, self.peer
            )
        } else {
            format!(
                "Stop the channel on {} by hand (STOP SLAVE / STOP REPLICA) if it must be replaced now, or bring its manager back.",
                self.peer
            )
        };
        format!(
            "{fix} `pxc-replication-manager check` on this node tests the login against every peer."
        )
    }
}

/// Stops a peer's channel before this node (or another) replicates in its place, and decides
/// whether the takeover may go on. Remembers the attempt for the peer's report; a peer is
/// fenced once per link and run.
pub fn fence(
    c: &mut RunCtx,
    link: &Link,
    r: &StateRow,
    why: &str,
    purpose: Purpose,
) -> Result<Verdict> {
    if let Some(v) = c.fence_verdict(link, &r.host) {
        return Ok(v.clone());
    }
    let verdict = fence_once(c, link, r, why, purpose)?;
    c.note_verdict(link, &r.host, verdict.clone());
    if let Some(rep) = &r.report {
        c.observations.note_fenced(
            &link.key,
            &r.host,
            FenceMemo {
                seq: rep.seq,
                at: r.read_at,
                reached: verdict == Verdict::Done,
            },
        );
    }
    Ok(verdict)
}

/// Fence before holding: every node that held the link and went silent may still replicate,
/// so its channel is stopped before this node proposes, takes the link over (`connect`), marks
/// itself `Yes` (a channel it already runs), or demotes it (after which its row no longer says
/// it held the link, as with a node that runs the original script and does not report). Each
/// is fenced once per run; the heartbeat is refreshed after a fence that contacted a peer,
/// since it may have waited on one that does not answer.
///
/// `Some(blocked)` when a silent holder could not be fenced and may still replicate: the
/// caller must not take the link.
pub fn silent_holders(
    c: &mut RunCtx,
    link: &Link,
    rows: &[StateRow],
    fresh: &Freshness,
) -> Result<Option<Blocked>> {
    let silent: Vec<&StateRow> = rows.iter().filter(|r| fresh.silent_holder(r)).collect();
    let contacts = c.fencing.contacts;
    let mut blocked = None;
    for r in &silent {
        let why = "it went silent while holding the link";
        if let Verdict::Blocked(b) = fence(c, link, r, why, Purpose::Takeover)? {
            blocked.get_or_insert(b);
        }
    }
    if c.fencing.contacts > contacts {
        c.refresh_all()?;
    }
    Ok(blocked)
}

/// As [`silent_holders`], on the rows as they are now.
pub fn silent_holders_now(c: &mut RunCtx, link: &Link) -> Result<Option<Blocked>> {
    let (rows, fresh) = c.read_rows(link)?;
    silent_holders(c, link, &rows, &fresh)
}

/// One fence and its verdict.
fn fence_once(
    c: &mut RunCtx,
    link: &Link,
    r: &StateRow,
    why: &str,
    purpose: Purpose,
) -> Result<Verdict> {
    let Some((address, member)) = target(c, link, r)? else {
        return Ok(Verdict::PassedOver);
    };
    c.fencing.contacts += 1;
    let o = c.apply(Action::Fence {
        host: r.host.clone(),
        address: address.clone(),
        channel: link.channel.clone(),
    })?;
    let outcome = match o {
        Outcome::Fenced(f) => f,
        other => FenceOutcome::Failed(PeerFailure::Refused(format!(
            "unexpected outcome of a fence: {other:?}"
        ))),
    };
    let peer = Peer {
        row: r,
        address,
        member,
    };
    Ok(verdict(c, link, peer, outcome, why, purpose))
}

/// Where a peer to fence is reached, and whether it is a member of the view: its reported
/// address, or its address in the view. `None` when neither is known: it never reported
/// and is not a member, so it is down or cut off, and stops its own channel.
fn target(c: &mut RunCtx, link: &Link, r: &StateRow) -> Result<Option<(String, Option<bool>)>> {
    let reported = r.report.as_ref().and_then(|p| p.address.clone());
    let from_view = match &reported {
        Some(_) => None,
        None => c.backend.member_address(&r.host)?,
    };
    // A node found in the view by its name is a member, whatever its row's report said.
    let member = if from_view.is_some() {
        Some(true)
    } else {
        r.in_view
    };
    let Some(address) = reported.or(from_view) else {
        log::warn!(
            "{}: {}: cannot fence {}: it never reported its address and is not a member of the current view (so it is down or cut off, and stops its own channel); going on",
            c.node(),
            link.name,
            r.host
        );
        return Ok(None);
    };
    Ok(Some((address, member)))
}

/// A peer being fenced: its row, where it was reached, and whether it is a member of the view.
struct Peer<'a> {
    row: &'a StateRow,
    address: String,
    member: Option<bool>,
}

/// What a fence's outcome means for the takeover: done, passed over (the peer cannot apply),
/// or blocked (the peer may still replicate).
fn verdict(
    c: &mut RunCtx,
    link: &Link,
    p: Peer<'_>,
    outcome: FenceOutcome,
    why: &str,
    purpose: Purpose,
) -> Verdict {
    let me = c.node();
    let (r, address, member) = (p.row, p.address, p.member);
    match outcome {
        FenceOutcome::Stopped => {
            stopped(c, link, r, &address, why);
            Verdict::Done
        }
        FenceOutcome::NotRunning => {
            log::info!(
                "{me}: {}: {} at {address} runs no channel for the link; nothing to fence",
                link.name,
                r.host
            );
            Verdict::Done
        }
        FenceOutcome::Failed(f) if c.variant.fence_fails_open => {
            log::warn!(
                "{me}: {}: could not fence {} ({f}); going on",
                link.name,
                r.host
            );
            Verdict::PassedOver
        }
        FenceOutcome::Failed(f @ PeerFailure::Unreachable(_)) if member != Some(true) => {
            log::warn!(
                "{me}: {}: could not fence {} at {address} ({f}); going on: it is {}, so it is down or cut off from the cluster, where its SQL thread cannot apply and its own run stops its channel",
                link.name,
                r.host,
                if member == Some(false) {
                    "not a member of this node's Primary view"
                } else {
                    "not known to be a member of the view (no membership table)"
                }
            );
            Verdict::PassedOver
        }
        FenceOutcome::Failed(failure) => {
            let b = Blocked {
                peer: r.host.clone(),
                address,
                login: c.backend.fence_login(),
                failure,
                member,
            };
            blocked(c, link, &b, purpose);
            Verdict::Blocked(b)
        }
    }
}

/// A fence that stopped a channel: counted, hooked, logged and mailed.
fn stopped(c: &mut RunCtx, link: &Link, r: &StateRow, address: &str, why: &str) {
    let me = c.node();
    *c.fencing.uncounted.entry(link.key.clone()).or_insert(0) += 1;
    c.observations.counters_mut().fence(&link.key);
    c.notices
        .events
        .push(format!("{}: fenced {} at {address}", link.name, r.host));
    c.history(
        Some(link),
        crate::db::history::event::FENCED,
        format!("{} at {address}: {why}", r.host),
    );
    c.hook(
        crate::config::hooks::HookEvent::Fenced,
        Some(link),
        vec![
            ("PXCRM_PEER", r.host.clone()),
            ("PXCRM_PEER_ADDRESS", address.to_string()),
            ("PXCRM_REASON", why.to_string()),
        ],
    );
    log::warn!(
        "{me}: {}: fenced {} at {address}: {why}; its channel was running and is stopped",
        link.name,
        r.host
    );
    c.mail_about(
        Event::Fenced,
        &r.host,
        format!("{}: {me} stopped the channel of {}", link.name, r.host),
        format!(
            "{} held the link to {} but {why}. {me} connected to its server at {address} and stopped its channel, so that two nodes never replicate the link at once.",
            r.host, link.remote
        ),
    );
}

/// A peer that could not be fenced and may still replicate: logged on every attempt,
/// recorded for the node's report (which `status` shows on every node), counted, and mailed
/// once per outage. Before a takeover, the takeover waits; a stray channel beside the holder
/// is left as it is (this node cannot stop it), and said.
fn blocked(c: &mut RunCtx, link: &Link, b: &Blocked, purpose: Purpose) {
    let me = c.node();
    let cluster = c.backend.facts().cluster.clone();
    let (effect, subject, consequence) = match purpose {
        Purpose::Takeover => (
            "the takeover waits",
            format!("{}: takeover held: {me} cannot fence {}", link.name, b.peer),
            format!(
                "Until its channel is known to be stopped, no node of {cluster} takes the link over: two replicas of one link would apply the same writes twice. {me} tries again on every run."
            ),
        ),
        Purpose::Stray => (
            "its channel may run beside the replica",
            format!("{}: {me} cannot stop the channel of {}", link.name, b.peer),
            format!(
                "Another node holds the link now, so two channels of one link may run in {cluster}. {me} tries again once per silence threshold; stop the channel on {} by hand.",
                b.peer
            ),
        ),
    };
    log::warn!(
        "{me}: {}: cannot fence {}; {effect}: {}. {}",
        link.name,
        b.describe(),
        b.why_alive(),
        b.advice()
    );
    c.observations.counters_mut().fence_blocked(&link.key);
    c.mail_about(
        Event::FenceBlocked,
        &b.peer,
        subject,
        format!(
            "{} held the link to {} and went silent, but {me} could not stop its channel at {} as {}: {}.\n\n{}. {consequence}\n\n{}",
            b.peer,
            link.remote,
            b.address,
            b.login,
            b.failure,
            upper_first(b.why_alive()),
            b.advice()
        ),
    );
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The checks of the peers' fence logins, at the end of a run, while everything is healthy:
/// a daemon checks every other member of the view each heartbeat timeout, a cron run one peer
/// in turn. Each check connects with the manager's login, turns Galera off for its session,
/// reads the channels and looks for the privilege to stop one ([`crate::exec::check_peer`]);
/// nothing is stopped. A peer that could not be fenced is logged and mailed once (event
/// `fence-unready`), and named in the node's fence record (which `status` shows) until a
/// check of it passes again. A node that does not act checks nothing.
pub fn check_logins(shared: &super::Shared, hooks: &dyn super::PolicyHooks, links: &[Link]) {
    let Some(link) = links.first() else {
        return;
    };
    let mails = {
        let mut c = shared.borrow_mut();
        if !c.backend.facts().can_act() {
            return;
        }
        let targets = match c.backend.fence_check_targets() {
            Ok(t) => t,
            Err(e) => {
                log::warn!(
                    "{}: cannot list the peers to check their fence logins: {e}",
                    c.node()
                );
                return;
            }
        };
        let now = chrono::Utc::now().timestamp();
        let every = c.fencing.checks_every;
        let due = c.observations.fence_checks.due(&targets, every, now);
        let mut mails = Vec::new();
        for (peer, address) in due {
            if let Some(found) = c.backend.check_fence_login(&address) {
                mails.extend(record_check(&mut c, &peer, &address, found, now));
            }
        }
        mails
    };
    for m in mails {
        shared.borrow_mut().call.current_link = Some(link.key.clone());
        super::mail_through_policy(shared, hooks, link, m);
    }
    write_fence_records(&mut shared.borrow_mut(), links);
}

/// Remembers one check of a peer's fence login; logs a change, and returns the mail of a peer
/// whose check starts failing.
fn record_check(
    c: &mut RunCtx,
    peer: &str,
    address: &str,
    found: crate::exec::PeerCheck,
    now: i64,
) -> Option<super::HostMail> {
    let me = c.node();
    let login = c.backend.fence_login();
    let cluster = c.backend.facts().cluster.clone();
    let problem = found
        .problem
        .as_ref()
        .map(|f| format!("at {address} (login {login}): {f}"));
    let before = c.observations.fence_checks.note(
        peer,
        crate::db::clock::FenceCheck {
            problem: problem.clone(),
            notes: found.notes.clone(),
            at: now,
        },
    );
    if found.notes != before.notes && !found.notes.is_empty() {
        log::warn!(
            "{me}: the fence of {peer} at {address} works while it is Primary, but {}",
            found.notes.join("; ")
        );
    }
    match (&before.problem, &problem) {
        (None, Some(why)) => {
            log::warn!(
                "{me}: the check of the fence login found that {me} cannot fence {peer} {why}: if {peer} replicates and goes silent, its takeover would wait. `pxc-replication-manager check` says how to fix it"
            );
            Some(super::HostMail {
                event: Event::FenceUnready,
                about: Some(peer.to_string()),
                subject: format!("{me} cannot fence {peer}"),
                body: format!(
                    "The periodic check of the fence login, done while everything is healthy, found that {me} could not stop a replication channel on {peer} {why}.\n\nNothing is wrong yet. But if {peer} replicates a link and goes silent while its server runs, no node of {cluster} takes the link over until its channel is known to be stopped. Fix it now: `pxc-replication-manager check` on {me} names the grant or the address to fix (docs/installing.md, Grants)."
                ),
            })
        }
        (Some(_), None) => {
            log::info!(
                "{me}: the check of the fence login of {peer} passes again: {me} can fence it"
            );
            None
        }
        _ => None,
    }
}

/// The fence record names the peers that fail their check: written at once where it changed,
/// with one more report, on the links this run reported (a paused node whose report must stand
/// still, or a node whose policy failed, writes it with its next report).
fn write_fence_records(c: &mut RunCtx, links: &[Link]) {
    if !c.writable() || c.pause.since.is_some() {
        return;
    }
    for l in links {
        if c.fence_note_pending(l).is_none() || !c.reported_in_run(l) {
            continue;
        }
        let written = c
            .current_source(l)
            .and_then(|source| c.refresh(l, None, source));
        if let Err(e) = written {
            log::warn!(
                "{}: {}: could not write the fence record: {e}",
                c.node(),
                l.name
            );
        }
    }
}
