//! The history: `percona.replication_history`, one row per thing that happened to a link
//! (an election, a failover and its cause, a fence, a fence that could not be done, a
//! failure, a failure cleared, a pause, a resume, a switchover), written by the node it happened on, through
//! the executor, so dry-run prints it and simulate records it. `history` prints it and
//! `status` shows each link's last event.
//!
//! Like every `percona` table it also reaches the other clusters through asynchronous
//! replication, so a row is keyed by the cluster that wrote it, and a node only ever deletes
//! its own cluster's rows: a delete of another cluster's row would come back to that cluster
//! as a row event for a row it may have deleted already, and stop its channel.
//!
//! The table keeps [`KEEP_DAYS`] days: each write deletes its cluster's older rows (an index
//! on `(cluster, happenedAt)` makes that a range read). Times are the servers'.
//!
//! This module only renders SQL text and reads its result; the executor runs it.

use crate::db::sql::quote;
use crate::db::state::SCHEMA;
use serde::Serialize;

/// The table's name inside [`SCHEMA`].
pub const TABLE: &str = "replication_history";

/// How long a row is kept.
pub const KEEP_DAYS: u32 = 90;

/// The longest detail kept (the column's width, in characters).
pub const MAX_DETAIL: usize = 1024;

/// What happened, as the `event` column says it.
pub mod event {
    /// This node became the link's replica: nobody held it before (an election).
    pub const ELECTED: &str = "elected";
    /// This node took the link over from a replica that went silent or failed.
    pub const FAILOVER: &str = "failover";
    /// The replica moved to another source of the remote cluster.
    pub const SOURCE_SWITCH: &str = "source-switch";
    /// This node stopped replicating the link (it was the replica).
    pub const STEPPED_DOWN: &str = "stepped-down";
    /// This node gave the link up as `Failed`.
    pub const FAILED: &str = "failed";
    /// A `Failed` row or a recorded failure was cleared: by the failed timeout, or by hand.
    pub const CLEARED: &str = "cleared";
    /// This node stopped a peer's channel before taking the link over.
    pub const FENCED: &str = "fenced";
    /// This node could not stop a peer's channel: the takeover waits.
    pub const FENCE_BLOCKED: &str = "fence-blocked";
    /// This node found itself paused (pause file, or its cluster's pause row).
    pub const PAUSED: &str = "paused";
    /// The pause ended.
    pub const RESUMED: &str = "resumed";
    /// A planned move of the replica (`switchover`): requested, handed off, taken over, or
    /// not done.
    pub const SWITCHOVER: &str = "switchover";
}

/// One row, as read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// When (Unix time, the writing server's clock).
    pub at: i64,
    /// The link's connection name; empty for an event of the node (a pause).
    pub link: String,
    /// The node it happened on.
    pub node: String,
    pub event: String,
    pub detail: String,
}

/// The table, created by `init` and by the first write.
pub fn ddl() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {SCHEMA}.{TABLE} (cluster varchar(64) NOT NULL, id bigint unsigned NOT NULL AUTO_INCREMENT, connectionName varchar(64) NOT NULL DEFAULT '', host varchar(255) NOT NULL, event varchar(32) NOT NULL, detail varchar({MAX_DETAIL}) NOT NULL DEFAULT '', happenedAt timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (cluster, id), KEY idx_id (id), KEY idx_time (cluster, happenedAt)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
}

/// Writes one row, then deletes the cluster's rows older than [`KEEP_DAYS`].
pub fn record(cluster: &str, link: &str, host: &str, event: &str, detail: &str) -> Vec<String> {
    let detail: String = detail.chars().take(MAX_DETAIL).collect();
    vec![
        format!(
            "INSERT INTO {SCHEMA}.{TABLE} (cluster, connectionName, host, event, detail) VALUES ({}, {}, {}, {}, {})",
            quote(cluster),
            quote(link),
            quote(host),
            quote(event),
            quote(&detail)
        ),
        format!(
            "DELETE FROM {SCHEMA}.{TABLE} WHERE cluster = {} AND happenedAt < CURRENT_TIMESTAMP - INTERVAL {KEEP_DAYS} DAY",
            quote(cluster)
        ),
    ]
}

/// What to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Only these links (their connection names); all when empty.
    pub links: Vec<String>,
    /// Only rows at or after this time (Unix).
    pub since: Option<i64>,
    /// At most this many, the newest.
    pub limit: u64,
}

/// Reads a cluster's rows, newest first: `at, link, node, event, detail`.
pub fn select(cluster: &str, q: &Query) -> String {
    let mut cond = vec![format!("cluster = {}", quote(cluster))];
    if !q.links.is_empty() {
        let keys: Vec<String> = q.links.iter().map(|k| quote(k)).collect();
        cond.push(format!("connectionName IN ({})", keys.join(", ")));
    }
    if let Some(t) = q.since {
        cond.push(format!("happenedAt >= FROM_UNIXTIME({t})"));
    }
    format!(
        "SELECT UNIX_TIMESTAMP(happenedAt), connectionName, host, event, detail FROM {SCHEMA}.{TABLE} WHERE {} ORDER BY happenedAt DESC, id DESC LIMIT {}",
        cond.join(" AND "),
        q.limit
    )
}

/// Reads the rows [`select`] returned.
pub fn parse(cells: Vec<Vec<Option<String>>>) -> Result<Vec<Entry>, String> {
    cells
        .into_iter()
        .map(|row| {
            let cell = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            let at = cell(0);
            let at = at
                .parse::<f64>()
                .map_err(|_| format!("{SCHEMA}.{TABLE}: happenedAt {at:?} is not a time"))?
                as i64;
            Ok(Entry {
                at,
                link: cell(1),
                node: cell(2),
                event: cell(3),
                detail: cell(4),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_keyed_by_its_cluster_and_prunes_only_that_cluster() {
        let v = record("DC1", "DC1-DC2", "DC1-1", event::ELECTED, "it's new");
        assert_eq!(
            v,
            [
                "INSERT INTO percona.replication_history (cluster, connectionName, host, event, detail) VALUES ('DC1', 'DC1-DC2', 'DC1-1', 'elected', 'it\\'s new')",
                "DELETE FROM percona.replication_history WHERE cluster = 'DC1' AND happenedAt < CURRENT_TIMESTAMP - INTERVAL 90 DAY",
            ]
        );
    }

    #[test]
    fn a_long_detail_is_cut_to_the_column() {
        let v = record("DC1", "", "DC1-1", event::PAUSED, &"é".repeat(2000));
        assert!(v[0].contains(&format!("'{}'", "é".repeat(MAX_DETAIL))));
        assert!(!v[0].contains(&"é".repeat(MAX_DETAIL + 1)));
    }

    #[test]
    fn the_query_names_the_cluster_links_and_time() {
        let q = Query {
            links: vec!["DC1-DC2".into()],
            since: Some(1_700_000_000),
            limit: 20,
        };
        assert_eq!(
            select("DC1", &q),
            "SELECT UNIX_TIMESTAMP(happenedAt), connectionName, host, event, detail FROM percona.replication_history WHERE cluster = 'DC1' AND connectionName IN ('DC1-DC2') AND happenedAt >= FROM_UNIXTIME(1700000000) ORDER BY happenedAt DESC, id DESC LIMIT 20"
        );
    }

    #[test]
    fn rows_parse_and_a_bad_time_is_an_error() {
        let row = |t: &str| {
            vec![vec![
                Some(t.to_string()),
                Some("DC1-DC2".into()),
                Some("DC1-1".into()),
                Some("elected".into()),
                None,
            ]]
        };
        let e = parse(row("1700000000.000000")).unwrap();
        assert_eq!(e[0].at, 1_700_000_000);
        assert_eq!(e[0].detail, "");
        assert!(parse(row("soon")).unwrap_err().contains("happenedAt"));
    }
}
