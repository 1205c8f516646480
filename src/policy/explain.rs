//! What `explain` asks the policy: for each link, the rows as `rows(link)` gives them to the
//! policy, its ranking (`rank_nodes(node, link, rows)`), its `failed_clears_after(s)`, and the
//! run's silent threshold (the larger of `[timeouts] heartbeat` and its `silent_after`). The
//! words (`app::explain`) are built from these, so a site policy's ranking and timeouts are
//! the ones shown.

use super::Hooks;
use super::api::{link_map, row_map};
use crate::config::topology::Link;
use crate::db::state::{LinkFailure, StateRow};
use crate::host::PolicyHooks;
use rhai::Dynamic;

/// One link as the policy sees it.
#[derive(Clone, Debug)]
pub struct LinkView {
    pub link: Link,
    /// The silent threshold of the run, in seconds.
    pub threshold: i64,
    /// Why the policy's `silent_after` was not taken, if it was not.
    pub threshold_warning: Option<String>,
    /// The rows with what this node judges of each, or why they could not be read.
    pub rows: Result<Vec<Seen>, String>,
    /// The hosts `rank_nodes` returned, best first, or its error.
    pub ranked: Result<Vec<String>, String>,
    /// `failed_clears_after(s)`, or its error.
    pub failed_after: Result<i64, String>,
    /// The link's recorded failure, or why it could not be read.
    pub failure: Result<Option<LinkFailure>, String>,
}

/// A row, with what this node judges of it (the fields the policy's row map has).
#[derive(Clone, Debug)]
pub struct Seen {
    pub row: StateRow,
    /// Seconds its report has stood still, seen from here (or its heartbeat age).
    pub silent_for: Option<i64>,
    pub fresh: bool,
    /// `Some(false)` when it has left this node's Primary view.
    pub in_view: Option<bool>,
    /// It holds the link: fresh and `Yes` or `Proposed`, or its report says its channel runs.
    pub holds: bool,
    pub paused: bool,
}

pub(super) fn links(h: &Hooks<'_>) -> Vec<LinkView> {
    let floor = h.shared.borrow().settings.heartbeat_timeout;
    let (threshold, threshold_warning) = crate::host::silent_threshold(floor, h.silent_after());
    h.shared.borrow_mut().settings.silent_after = threshold;
    let settings = h.shared.borrow().settings.clone();
    let failed_after = h
        .policy
        .call_seconds(h.engine, h.meter, "failed_clears_after", &settings);
    let links = h.shared.borrow().links.clone();
    links
        .into_iter()
        .map(|link| {
            h.shared.borrow_mut().call.current_link = Some(link.key.clone());
            let read = h.shared.borrow_mut().read_rows(&link);
            let failure = h
                .shared
                .borrow_mut()
                .backend
                .last_failure(&link)
                .map_err(|e| e.to_string());
            let (rows, ranked) = match read {
                Ok((rows, fresh)) => {
                    let maps: rhai::Array = rows
                        .iter()
                        .map(|r| Dynamic::from_map(row_map(r, &fresh)))
                        .collect();
                    let args = (
                        Dynamic::from_map(h.node()),
                        Dynamic::from_map(link_map(&link)),
                        Dynamic::from_array(maps),
                    );
                    let ranked = h
                        .policy
                        .call(h.engine, h.meter, Some(h.shared), "rank_nodes", args)
                        .and_then(hosts);
                    let seen = rows
                        .into_iter()
                        .map(|r| Seen {
                            silent_for: fresh.age(&r),
                            fresh: fresh.is_fresh(&r),
                            in_view: if fresh.left_view(&r) {
                                Some(false)
                            } else {
                                r.in_view
                            },
                            holds: fresh.holds_any(&r),
                            paused: r.report.as_ref().is_some_and(|p| p.paused_for.is_some()),
                            row: r,
                        })
                        .collect();
                    (Ok(seen), ranked)
                }
                Err(e) => (Err(e.to_string()), Err("no rows to rank".to_string())),
            };
            LinkView {
                link,
                threshold,
                threshold_warning: threshold_warning.clone(),
                rows,
                ranked,
                failed_after: failed_after.clone(),
                failure,
            }
        })
        .collect()
}

/// The hosts of the rows `rank_nodes` returned.
fn hosts(v: Dynamic) -> Result<Vec<String>, String> {
    let a = v
        .into_array()
        .map_err(|t| format!("rank_nodes returned a {t}, expected an array of rows"))?;
    a.into_iter()
        .map(|r| {
            r.try_cast::<rhai::Map>()
                .and_then(|m| m.get("host").and_then(|h| h.clone().into_string().ok()))
                .ok_or_else(|| {
                    "rank_nodes returned an item that is not a row with a host".to_string()
                })
        })
        .collect()
}
