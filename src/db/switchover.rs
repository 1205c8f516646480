//! A planned move of a link's replica: `percona.replication_switchover`, one row per link,
//! written by the `switchover` command and carried out by the runs of the two nodes it names.
//!
//! The phases, each written by one party only:
//!
//! | phase | written by | meaning |
//! | --- | --- | --- |
//! | `requested` | the command | `fromHost` (the replica) is to hand the link to `toHost` |
//! | `ready` | the target's run | the target is Primary, Synced, not paused, its row `No`, and waits now |
//! | `stopped` | the old replica's run | its channel stopped at `position`; its row is `No`; only the target may propose |
//! | `done` | the target's run | the target replicates from `source` |
//! | `failed` | any party | the move did not happen; `detail` says why (the election goes on as usual) |
//!
//! A request is **pending** in the first three phases while it is younger than the silent
//! threshold (its age is `changedAt` on the reading server's clock, so a clock skew between
//! the nodes can only end a request early or late, never let two nodes replicate: the claim
//! decides who holds the link). Every write of a phase is conditional on the phase before it,
//! so two writers never both move a request.
//!
//! Like every `percona` table it reaches the other clusters through asynchronous replication;
//! its rows are keyed by the link's connection name, which only the local cluster writes.
//!
//! This module only renders SQL text and reads its result; the executor runs it.

use crate::db::sql::quote;
use crate::db::state::{MAX_GTID, SCHEMA};
use serde::Serialize;

/// The table's name inside [`SCHEMA`].
pub const TABLE: &str = "replication_switchover";

/// Where a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Requested,
    Ready,
    Stopped,
    Done,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Requested => "requested",
            Phase::Ready => "ready",
            Phase::Stopped => "stopped",
            Phase::Done => "done",
            Phase::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        [
            Phase::Requested,
            Phase::Ready,
            Phase::Stopped,
            Phase::Done,
            Phase::Failed,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }

    /// The request is under way (if it is not too old, see [`Request::pending`]).
    pub fn in_flight(self) -> bool {
        matches!(self, Phase::Requested | Phase::Ready | Phase::Stopped)
    }
}

/// One link's request, as read.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct Request {
    pub from: String,
    pub to: String,
    pub phase: Phase,
    /// The old replica's executed GTID position when its channel stopped (`stopped` and on).
    pub position: Option<String>,
    /// The source the old replica used (`stopped`), then the one the new replica uses (`done`).
    pub source: Option<String>,
    pub detail: Option<String>,
    pub requested_by: String,
    /// Milliseconds since the phase was written, on the reading server's clock.
    pub age_ms: i64,
}

impl Request {
    /// Under way and younger than `threshold` seconds.
    pub fn pending(&self, threshold: i64) -> bool {
        self.phase.in_flight() && self.age_ms <= threshold.saturating_mul(1000)
    }

    /// Why `host` may not propose for the link now, if it may not: the old replica stopped
    /// for the target, and only the target may take the link until the request ends.
    pub fn bars(&self, host: &str, threshold: i64) -> Option<String> {
        (self.pending(threshold) && self.phase == Phase::Stopped && self.to != host).then(|| {
            format!(
                "a switchover hands the link from {} to {} (its channel stopped {} ms ago); only {} may take it until the switchover ends or {threshold} s pass",
                self.from, self.to, self.age_ms, self.to
            )
        })
    }
}

/// The table, created by `init` and by the first request.
pub fn ddl() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {SCHEMA}.{TABLE} (connectionName varchar(64) NOT NULL, fromHost varchar(255) NOT NULL, toHost varchar(255) NOT NULL, phase varchar(16) NOT NULL, position varchar({MAX_GTID}) NULL DEFAULT NULL, source varchar(255) NULL DEFAULT NULL, detail varchar(1024) NULL DEFAULT NULL, requestedBy varchar(255) NOT NULL DEFAULT '', requestedAt timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), changedAt timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), PRIMARY KEY (connectionName)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
}

/// Reads a link's request: `fromHost, toHost, phase, position, source, detail, requestedBy,
/// age in ms`.
pub fn select(key: &str) -> String {
    format!(
        "SELECT fromHost, toHost, phase, position, source, detail, requestedBy, CAST((UNIX_TIMESTAMP(NOW(3)) - UNIX_TIMESTAMP(changedAt)) * 1000 AS SIGNED) FROM {SCHEMA}.{TABLE} WHERE connectionName = {}",
        quote(key)
    )
}

/// [`select`] for several links in one statement, each row ending with its link's key (see
/// [`parse_by_key`]).
pub fn select_of(keys: &[&str]) -> String {
    let list: Vec<String> = keys.iter().map(|k| quote(k)).collect();
    format!(
        "SELECT fromHost, toHost, phase, position, source, detail, requestedBy, CAST((UNIX_TIMESTAMP(NOW(3)) - UNIX_TIMESTAMP(changedAt)) * 1000 AS SIGNED), connectionName FROM {SCHEMA}.{TABLE} WHERE connectionName IN ({})",
        list.join(", ")
    )
}

/// The requests [`select_of`] returned, by link key (a link that never had one has no entry).
pub fn parse_by_key(
    cells: Vec<Vec<Option<String>>>,
) -> Result<std::collections::HashMap<String, Request>, String> {
    let mut out = std::collections::HashMap::new();
    for mut row in cells {
        let key = row
            .pop()
            .flatten()
            .ok_or_else(|| format!("{SCHEMA}.{TABLE}: a request without its link's key"))?;
        if let Some(r) = parse(vec![row])? {
            out.insert(key, r);
        }
    }
    Ok(out)
}

/// Reads the row [`select`] returned (none: no request was ever made).
pub fn parse(cells: Vec<Vec<Option<String>>>) -> Result<Option<Request>, String> {
    let Some(row) = cells.into_iter().next() else {
        return Ok(None);
    };
    let cell = |i: usize| row.get(i).cloned().flatten();
    let text = |i: usize| cell(i).unwrap_or_default();
    let phase = text(2);
    let phase = Phase::parse(&phase)
        .ok_or_else(|| format!("{SCHEMA}.{TABLE}: phase {phase:?} is not one of requested, ready, stopped, done, failed"))?;
    let age = text(7);
    let age_ms = age
        .parse::<i64>()
        .map_err(|_| format!("{SCHEMA}.{TABLE}: age {age:?} is not a number"))?;
    Ok(Some(Request {
        from: text(0),
        to: text(1),
        phase,
        position: cell(3).filter(|p| !p.is_empty()),
        source: cell(4),
        detail: cell(5),
        requested_by: text(6),
        age_ms,
    }))
}

/// The condition of a request that is still under way, `threshold` seconds being its life.
fn pending_cond(threshold: i64) -> String {
    format!(
        "phase IN ('requested', 'ready', 'stopped') AND changedAt >= NOW(3) - INTERVAL {threshold} SECOND"
    )
}

/// The command's request: the link's row is made (as a finished one) if there is none, then
/// taken over unless another request is under way. One row changed: the request is in.
pub fn request(key: &str, from: &str, to: &str, by: &str, threshold: i64) -> Vec<String> {
    vec![
        format!(
            "INSERT IGNORE INTO {SCHEMA}.{TABLE} (connectionName, fromHost, toHost, phase) VALUES ({}, '', '', 'done')",
            quote(key)
        ),
        format!(
            "UPDATE {SCHEMA}.{TABLE} SET fromHost = {}, toHost = {}, phase = 'requested', position = NULL, source = NULL, detail = NULL, requestedBy = {}, requestedAt = NOW(3), changedAt = NOW(3) WHERE connectionName = {} AND NOT ({})",
            quote(from),
            quote(to),
            quote(by),
            quote(key),
            pending_cond(threshold)
        ),
    ]
}

/// Moves a request on, only from the phase given and only if it still names `to` as the
/// target (`source` and `detail` are set when given).
pub fn advance(
    key: &str,
    to: &str,
    from_phase: Phase,
    phase: Phase,
    source: Option<&str>,
    detail: Option<&str>,
) -> String {
    let mut set = vec![format!("phase = {}", quote(phase.as_str()))];
    if let Some(s) = source {
        set.push(format!("source = {}", quote(s)));
    }
    if let Some(d) = detail {
        let d: String = d.chars().take(1024).collect();
        set.push(format!("detail = {}", quote(&d)));
    }
    set.push("changedAt = NOW(3)".into());
    format!(
        "UPDATE {SCHEMA}.{TABLE} SET {} WHERE connectionName = {} AND toHost = {} AND phase = {}",
        set.join(", "),
        quote(key),
        quote(to),
        quote(from_phase.as_str())
    )
}

/// The old replica's hand-off: its channel stopped at `position` (reading from `source`).
/// Only a request that names it and is still under way moves.
pub fn hand_off(key: &str, from: &str, position: &str, source: &str, threshold: i64) -> String {
    let position: String = position.chars().take(MAX_GTID).collect();
    format!(
        "UPDATE {SCHEMA}.{TABLE} SET phase = 'stopped', position = {}, source = {}, changedAt = NOW(3) WHERE connectionName = {} AND fromHost = {} AND phase IN ('requested', 'ready') AND changedAt >= NOW(3) - INTERVAL {threshold} SECOND",
        quote(&position),
        quote(source),
        quote(key),
        quote(from)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(phase: Phase, age_ms: i64) -> Request {
        Request {
            from: "DC1-1".into(),
            to: "DC1-2".into(),
            phase,
            position: None,
            source: None,
            detail: None,
            requested_by: "DC1-3".into(),
            age_ms,
        }
    }

    #[test]
    fn only_a_stopped_request_bars_the_other_nodes_and_only_while_it_is_young() {
        let stopped = req(Phase::Stopped, 1_000);
        assert!(stopped.bars("DC1-3", 20).is_some());
        assert!(stopped.bars("DC1-1", 20).is_some());
        assert!(stopped.bars("DC1-2", 20).is_none());
        assert!(req(Phase::Stopped, 21_000).bars("DC1-3", 20).is_none());
        assert!(req(Phase::Ready, 1_000).bars("DC1-3", 20).is_none());
        assert!(req(Phase::Done, 1_000).bars("DC1-3", 20).is_none());
    }

    #[test]
    fn several_links_requests_are_read_in_one_statement_by_key() {
        assert_eq!(
            select_of(&["DC1-DC2", "DC1-DC3"]),
            select("DC1-DC2")
                .replace(" AS SIGNED) FROM", " AS SIGNED), connectionName FROM")
                .replace("= 'DC1-DC2'", "IN ('DC1-DC2', 'DC1-DC3')")
        );
        let cell = |v: &str| Some(v.to_string());
        let row = vec![
            cell("DC1-1"),
            cell("DC1-2"),
            cell("ready"),
            None,
            None,
            None,
            cell("DC1-3"),
            cell("1500"),
            cell("DC1-DC3"),
        ];
        let by_key = parse_by_key(vec![row]).unwrap();
        assert_eq!(by_key.len(), 1);
        assert_eq!(by_key["DC1-DC3"].phase, Phase::Ready);
        assert_eq!(by_key["DC1-DC3"].age_ms, 1500);
    }

    #[test]
    fn every_write_is_conditional_on_the_phase_before_it() {
        let r = request("DC1-DC2", "DC1-1", "DC1-2", "DC1-3", 20);
        assert!(r[0].starts_with("INSERT IGNORE"));
        assert!(r[1].ends_with(
            "WHERE connectionName = 'DC1-DC2' AND NOT (phase IN ('requested', 'ready', 'stopped') AND changedAt >= NOW(3) - INTERVAL 20 SECOND)"
        ));
        assert_eq!(
            advance(
                "DC1-DC2",
                "DC1-2",
                Phase::Requested,
                Phase::Ready,
                None,
                None
            ),
            "UPDATE percona.replication_switchover SET phase = 'ready', changedAt = NOW(3) WHERE connectionName = 'DC1-DC2' AND toHost = 'DC1-2' AND phase = 'requested'"
        );
        assert!(
            hand_off("DC1-DC2", "DC1-1", "0-1-5,2-2-9", "127.0.0.21:3306", 20).ends_with(
                "WHERE connectionName = 'DC1-DC2' AND fromHost = 'DC1-1' AND phase IN ('requested', 'ready') AND changedAt >= NOW(3) - INTERVAL 20 SECOND"
            )
        );
    }

    #[test]
    fn a_hostile_detail_stays_inside_its_literal() {
        let s = advance(
            "DC1-DC2",
            "DC1-2",
            Phase::Ready,
            Phase::Failed,
            None,
            Some("x'); DROP TABLE t; --"),
        );
        assert!(s.contains("detail = 'x\\'); DROP TABLE t; --'"), "{s}");
    }

    #[test]
    fn reads_a_row_and_refuses_an_unknown_phase() {
        let row = |phase: &str| {
            vec![vec![
                Some("DC1-1".into()),
                Some("DC1-2".into()),
                Some(phase.into()),
                Some("0-1-5".into()),
                None,
                None,
                Some("DC1-3".into()),
                Some("250".into()),
            ]]
        };
        let r = parse(row("stopped")).unwrap().unwrap();
        assert_eq!(r.phase, Phase::Stopped);
        assert_eq!(r.position.as_deref(), Some("0-1-5"));
        assert_eq!(r.age_ms, 250);
        assert!(parse(row("moving")).unwrap_err().contains("moving"));
        assert_eq!(parse(vec![]).unwrap(), None);
    }
}
