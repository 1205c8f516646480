//! `switchover`: a planned move of a link's replica to another node of this cluster, from any
//! node of the Primary component. The command checks that the target can take the link, writes
//! the request through the executor (mailed, and in the history), and waits for the runs of the
//! two nodes to carry it out (`host::switchover`), printing each phase. It never touches a
//! channel itself: the old replica stops its own, and the target claims the link and connects
//! like an elected node.

use super::explain::{Explanation, LinkExplained, NodeExplained};
use super::open_local;
use crate::config::Config;
use crate::db::switchover::{Phase, Request};
use crate::error::{Error, Result};
use crate::exec::mail::Mail;
use crate::exec::{Action, Backend, Mode, Outcome};
use crate::policy::Policy;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the command did.
#[derive(Debug)]
pub struct Report {
    /// What to print, one line each.
    pub lines: Vec<String>,
    /// The replica moved (or, in a dry run, the request would have been written).
    pub done: bool,
    pub mail_failures: usize,
}

/// Options of the command.
pub struct Options<'a> {
    pub link: Option<&'a str>,
    pub to: Option<&'a str>,
    pub dry_run: bool,
    /// How long to wait for the move; `None`: the request's life (the silent threshold) and
    /// five seconds.
    pub wait: Option<Duration>,
}

/// Why `n` cannot take the link over from `holder`, if it cannot.
pub fn unfit(n: &NodeExplained, holder: &str, synced: Option<&str>) -> Option<String> {
    let why = if n.host == holder {
        "it is the replica already".to_string()
    } else if !n.reports {
        "it does not run this tool (no report)".to_string()
    } else if n.in_view == Some(false) {
        "it is not a member of the cluster's Primary view".to_string()
    } else if !n.fresh {
        format!(
            "it is silent (no report for {} s)",
            n.silent_for.unwrap_or_default()
        )
    } else if n.paused {
        "it is paused".to_string()
    } else if n.role == "failed" {
        "its row is Failed (clear-failure, once the cause is fixed)".to_string()
    } else if n.role != "no" {
        format!("its row says {}", n.role)
    } else {
        match synced.filter(|s| !s.is_empty()) {
            Some(s) if s.eq_ignore_ascii_case("synced") => return None,
            Some(s) => format!("it is {s}, not Synced"),
            None => "its report does not say its Galera state".to_string(),
        }
    };
    Some(why)
}

/// Moves the replica of a link (the only one, or the one named) to `to`, or to the best-ranked
/// node that can take it.
pub fn switchover(
    cfg: &Config,
    policy: &Policy,
    defaults_file: Option<&Path>,
    o: &Options,
    out: Box<dyn Write>,
) -> Result<Report> {
    let (node, link, states) = open_link(cfg, defaults_file, o.link)?;
    let ex: Explanation = super::explain::explain(cfg, policy, defaults_file, Some(&link.key))?;
    let [l] = ex.links.as_slice() else {
        return Err(Error::Internal(format!(
            "explain gave {} links for {}",
            ex.links.len(),
            link.name
        )));
    };
    let state_of = |host: &str| states.get(host).cloned();
    let cluster_paused = node.cluster_pause.as_ref().is_some_and(|p| p.is_active());
    let by = ex.node.clone();
    let threshold = ex.silent_after;
    let mode = if o.dry_run { Mode::DryRun } else { Mode::Live };
    let mut backend = node.into_backend(cfg, mode, out);
    let mut lines = Vec::new();

    let (from, to) = match choose(&ex.cluster, l, o.to, cluster_paused, &state_of) {
        Ok(pair) => pair,
        Err(why) => return refuse(backend, &l.link, &by, &why),
    };
    let written = backend.apply(&Action::RequestSwitchover {
        key: link.key.clone(),
        from: from.clone(),
        to: to.clone(),
        by: by.clone(),
        threshold,
    })?;
    if matches!(written, Outcome::Done { affected: 0 }) && !o.dry_run {
        return under_way(backend, &link, threshold);
    }
    backend.apply(&Action::RecordHistory {
        cluster: ex.cluster.clone(),
        key: link.key.to_string(),
        event: crate::db::history::event::SWITCHOVER,
        detail: format!("requested on {by}: from {from} to {to}"),
    })?;
    backend.apply(&Action::Notify(Mail {
        subject: format!("{}: switchover from {from} to {to} requested on {by}", l.link),
        body: format!(
            "An operator ran `pxc-replication-manager switchover` on {by}. At their next runs, {to} says it is ready, {from} stops its channel at a known GTID position and hands the link off, and {to} takes it over once it has applied that position.\nIf it does not happen within {threshold} s, the request ends and the replica is chosen as usual."
        ),
        once: None,
    }))?;
    backend.send_mail();
    if o.dry_run {
        lines.push(format!(
            "{}: dry-run: the statements above would ask {from} to hand the link to {to}",
            l.link
        ));
        return Ok(Report {
            lines,
            done: true,
            mail_failures: backend.mail_failures(),
        });
    }
    lines.push(format!(
        "{}: switchover from {from} to {to} requested; waiting for their runs",
        l.link
    ));
    let wait = o.wait.unwrap_or(Duration::from_secs(
        u64::try_from(threshold).unwrap_or(0) + 5,
    ));
    let (done, said) = outcome(&mut backend, &link, &to, wait, threshold)?;
    lines.extend(said);
    Ok(Report {
        lines,
        done,
        mail_failures: backend.mail_failures(),
    })
}

/// This node (of the Primary component), the one link named (or its only one), and each
/// node's Galera state as its last report says.
fn open_link(
    cfg: &Config,
    defaults_file: Option<&Path>,
    name: Option<&str>,
) -> Result<(
    super::LocalNode,
    crate::config::topology::Link,
    std::collections::BTreeMap<String, String>,
)> {
    let mut node = open_local(cfg, defaults_file)?;
    node.must_act("run switchover")?;
    let mut links = super::pick_links(&node.links, name, &node.facts.name)?;
    if links.len() > 1 {
        let names: Vec<&str> = links.iter().map(|l| l.remote.as_str()).collect();
        return Err(Error::Argument(format!(
            "{} replicates {}: name the link with --link",
            node.facts.name,
            names.join(", ")
        )));
    }
    let link = links.remove(0);
    let schema = node.state_table()?;
    let states = node
        .server
        .rows(&schema, &link.key)?
        .into_iter()
        .filter_map(|r| {
            let state = r.report?.position?.state;
            Some((r.host, state))
        })
        .collect();
    Ok((node, link, states))
}

/// Refused: another switchover of the link is under way.
fn under_way(
    mut backend: crate::exec::LiveBackend,
    link: &crate::config::topology::Link,
    threshold: i64,
) -> Result<Report> {
    let what = backend
        .switchover(link)?
        .map_or("another request".to_string(), |r| {
            format!(
                "a switchover from {} to {} ({}, requested on {})",
                r.from,
                r.to,
                r.phase.as_str(),
                r.requested_by
            )
        });
    Ok(Report {
        lines: vec![format!(
            "{}: switchover refused: {what} is under way; it ends within {threshold} s",
            link.name
        )],
        done: false,
        mail_failures: backend.mail_failures(),
    })
}

/// Who holds the link now (`from`) and who takes it (`to`), or why the switchover is refused.
fn choose(
    cluster: &str,
    l: &LinkExplained,
    to: Option<&str>,
    cluster_paused: bool,
    state_of: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<(String, String), String> {
    let holder = l
        .nodes
        .iter()
        .find(|n| n.holds && n.role == "yes" && n.fresh)
        .map(|n| n.host.clone());
    if let Some(e) = &l.error {
        Err(format!("the link's state could not be read: {e}"))
    } else if cluster_paused {
        Err(format!(
            "the cluster is paused (`resume` first): no node of {} acts",
            cluster
        ))
    } else if let Some(h) = l
        .nodes
        .iter()
        .find(|n| Some(&n.host) == holder.as_ref() && n.paused)
        .map(|n| n.host.clone())
    {
        Err(format!(
            "the replica {h} is paused: it hands nothing off until its pause ends"
        ))
    } else if let Some(h) = holder.clone() {
        match to {
            Some(t) => match l.nodes.iter().find(|n| n.host == t) {
                None => Err(format!(
                    "{t} is not a node of {} for this link (no row): its nodes are {}",
                    cluster,
                    l.nodes
                        .iter()
                        .map(|n| n.host.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Some(n) => match unfit(n, &h, state_of(&n.host).as_deref()) {
                    Some(why) => Err(format!("{t} cannot take the link: {why}")),
                    None => Ok((h, t.to_string())),
                },
            },
            None => {
                let mut candidates: Vec<&NodeExplained> = l
                    .nodes
                    .iter()
                    .filter(|n| unfit(n, &h, state_of(&n.host).as_deref()).is_none())
                    .collect();
                candidates.sort_by_key(|n| n.rank.unwrap_or(usize::MAX));
                match candidates.first() {
                    Some(n) => Ok((h, n.host.clone())),
                    None => Err(format!(
                        "no other node can take the link: {}",
                        l.nodes
                            .iter()
                            .filter(|n| n.host != h)
                            .map(|n| format!(
                                "{}: {}",
                                n.host,
                                unfit(n, &h, state_of(&n.host).as_deref()).unwrap_or_default()
                            ))
                            .collect::<Vec<_>>()
                            .join("; ")
                    )),
                }
            }
        }
    } else {
        Err(
            "no node replicates the link now (no fresh Yes row with a running channel): the election places the replica; `explain` shows who ranks first"
                .to_string(),
        )
    }
}

/// A refused switchover: said, mailed, and nothing changed.
fn refuse(
    mut backend: crate::exec::LiveBackend,
    link: &str,
    by: &str,
    why: &str,
) -> Result<Report> {
    backend.apply(&Action::Notify(Mail {
        subject: format!("{link}: switchover refused on {by}"),
        body: format!(
            "An operator ran `pxc-replication-manager switchover` on {by}; it was refused and changed nothing: {why}."
        ),
        once: None,
    }))?;
    backend.send_mail();
    Ok(Report {
        lines: vec![format!("{link}: switchover refused: {why}")],
        done: false,
        mail_failures: backend.mail_failures(),
    })
}

/// Follows the request to its end (or `wait`): whether the replica moved, and the lines that
/// say how it went.
fn outcome(
    backend: &mut crate::exec::LiveBackend,
    link: &crate::config::topology::Link,
    to: &str,
    wait: Duration,
    threshold: i64,
) -> Result<(bool, Vec<String>)> {
    let (last, seen) = follow(backend, link, to, wait)?;
    let mut lines: Vec<String> = seen
        .into_iter()
        .map(|s| format!("{}: {s}", link.name))
        .collect();
    let done = last
        .as_ref()
        .is_some_and(|r| r.phase == Phase::Done && r.to == to);
    if !done {
        let why = match &last {
            Some(r) if r.phase == Phase::Failed => {
                format!("not done: {}", r.detail.clone().unwrap_or_default())
            }
            Some(r) if r.phase.in_flight() => format!(
                "not done within {} s (still {}); the request ends {threshold} s after its last step",
                wait.as_secs(),
                r.phase.as_str()
            ),
            _ => "not done: the request was replaced".to_string(),
        };
        lines.push(format!("{}: {why}", link.name));
    }
    Ok((done, lines))
}

/// Reads the request until it is done or failed, or `wait` has passed; one line per phase
/// seen.
fn follow(
    b: &mut dyn Backend,
    link: &crate::config::topology::Link,
    to: &str,
    wait: Duration,
) -> Result<(Option<Request>, Vec<String>)> {
    let until = Instant::now() + wait;
    let mut seen = Vec::new();
    let mut last_phase = Some(Phase::Requested);
    loop {
        let r = b.switchover(link)?;
        let phase = r.as_ref().map(|r| r.phase);
        if phase != last_phase {
            if let Some(r) = &r {
                seen.push(match r.phase {
                    Phase::Ready => format!("{to} is ready"),
                    Phase::Stopped => format!(
                        "{} stopped at {}",
                        r.from,
                        r.position.as_deref().unwrap_or("an empty GTID position")
                    ),
                    Phase::Done => format!(
                        "done: {to} replicates from {}",
                        r.source.as_deref().unwrap_or("?")
                    ),
                    Phase::Failed => "failed".to_string(),
                    Phase::Requested => "requested".to_string(),
                });
            }
            last_phase = phase;
        }
        let finished = r
            .as_ref()
            .is_none_or(|r| !r.phase.in_flight() || r.to != to);
        if finished || Instant::now() >= until {
            return Ok((r, seen));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str) -> NodeExplained {
        NodeExplained {
            host: host.into(),
            rank: Some(2),
            weight: 0,
            local_index: Some(1),
            role: "no".into(),
            reports: true,
            silent_for: Some(1),
            fresh: true,
            in_view: Some(true),
            paused: false,
            failed_clears_in: None,
            holds: false,
            reason: String::new(),
        }
    }

    #[test]
    fn a_fresh_synced_candidate_in_the_view_can_take_the_link() {
        assert_eq!(unfit(&node("DC1-2"), "DC1-1", Some("Synced")), None);
    }

    #[test]
    fn each_reason_a_target_cannot_take_the_link_is_named() {
        let why = |f: &dyn Fn(&mut NodeExplained), state: Option<&str>| {
            let mut n = node("DC1-2");
            f(&mut n);
            unfit(&n, "DC1-1", state).unwrap_or_default()
        };
        assert_eq!(
            unfit(&node("DC1-1"), "DC1-1", Some("Synced")).unwrap(),
            "it is the replica already"
        );
        assert!(why(&|n| n.reports = false, Some("Synced")).contains("no report"));
        assert!(why(&|n| n.in_view = Some(false), Some("Synced")).contains("Primary view"));
        assert!(
            why(
                &|n| {
                    n.fresh = false;
                    n.silent_for = Some(400);
                },
                Some("Synced")
            )
            .contains("silent (no report for 400 s)")
        );
        assert_eq!(why(&|n| n.paused = true, Some("Synced")), "it is paused");
        assert!(why(&|n| n.role = "failed".into(), Some("Synced")).contains("Failed"));
        assert_eq!(
            why(&|n| n.role = "proposed".into(), Some("Synced")),
            "its row says proposed"
        );
        assert_eq!(
            why(&|_| {}, Some("Donor/Desynced")),
            "it is Donor/Desynced, not Synced"
        );
        assert!(why(&|_| {}, None).contains("does not say its Galera state"));
        assert!(why(&|_| {}, Some("")).contains("does not say its Galera state"));
    }
}
