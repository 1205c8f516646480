//! The cluster-wide pause: one row per cluster in `percona.replication_pause`, written by
//! `pause` and deleted by `resume` on any node, which Galera carries to every node of the
//! cluster. While a cluster's row is there (and its `pausedUntil`, if set, has not passed),
//! every node of that cluster changes nothing, as under the per-node pause file, but keeps
//! reporting.
//!
//! The row is keyed by the cluster's name because the `percona` schema also reaches the other
//! clusters through asynchronous replication: a pause of `DC1` arrives on `DC2` as a row for
//! `DC1`, which `DC2`'s nodes never read. Times are the servers' (`CURRENT_TIMESTAMP`,
//! `UNIX_TIMESTAMP()`), so a node's own clock plays no part in when a pause ends.
//!
//! This module only renders SQL text and reads its result; the executor runs it.

use crate::db::sql::quote;
use crate::db::state::SCHEMA;
use serde::Serialize;

/// The table's name inside [`SCHEMA`].
pub const TABLE: &str = "replication_pause";

/// The longest reason kept (the column's width).
pub const MAX_REASON: usize = 1024;

/// A cluster's pause row, as read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterPause {
    /// The cluster the row pauses.
    pub cluster: String,
    /// Who paused: the node and the operator's login (`DC1-2 (alice)`).
    pub by: String,
    /// Why, as the operator wrote it (may be empty).
    pub reason: String,
    /// When it was paused (Unix time, the reading server's clock).
    pub since: i64,
    /// When it ends by itself (Unix time), if `--for` was given.
    pub until: Option<i64>,
    /// The reading server's clock when the row was read.
    pub now: i64,
}

impl ClusterPause {
    /// Whether it holds now: it has no end, or its end is still ahead.
    pub fn is_active(&self) -> bool {
        self.until.is_none_or(|u| u > self.now)
    }

    /// One line for logs and `status`.
    pub fn describe(&self) -> String {
        let why = if self.reason.is_empty() {
            "no reason given".to_string()
        } else {
            format!("{:?}", self.reason)
        };
        let ago = (self.now - self.since).max(0);
        let until = match self.until {
            None => "until `resume`".to_string(),
            Some(u) if u > self.now => {
                format!("for {} s more (until `resume` or then)", u - self.now)
            }
            Some(u) => format!("ended {} s ago", self.now - u),
        };
        format!(
            "cluster {} paused by {} {ago} s ago ({why}), {until}",
            self.cluster, self.by
        )
    }
}

/// The table, created by `init` and by the first `pause`.
pub fn ddl() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {SCHEMA}.{TABLE} (cluster varchar(64) NOT NULL, pausedBy varchar(255) NOT NULL, reason varchar({MAX_REASON}) NOT NULL DEFAULT '', pausedAt timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, pausedUntil timestamp NULL DEFAULT NULL, PRIMARY KEY (cluster)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
}

/// Reads a cluster's row: `by, reason, since, until, now`.
pub fn select(cluster: &str) -> String {
    format!(
        "SELECT pausedBy, reason, UNIX_TIMESTAMP(pausedAt), UNIX_TIMESTAMP(pausedUntil), UNIX_TIMESTAMP() FROM {SCHEMA}.{TABLE} WHERE cluster = {}",
        quote(cluster)
    )
}

/// Pauses a cluster (replacing an earlier pause of it), for `seconds` or until `resume`.
pub fn pause(cluster: &str, by: &str, reason: &str, seconds: Option<u64>) -> String {
    let until = match seconds {
        Some(s) => format!("CURRENT_TIMESTAMP + INTERVAL {s} SECOND"),
        None => "NULL".into(),
    };
    format!(
        "REPLACE INTO {SCHEMA}.{TABLE} (cluster, pausedBy, reason, pausedAt, pausedUntil) VALUES ({}, {}, {}, CURRENT_TIMESTAMP, {until})",
        quote(cluster),
        quote(by),
        quote(reason)
    )
}

/// Ends a cluster's pause.
pub fn resume(cluster: &str) -> String {
    format!(
        "DELETE FROM {SCHEMA}.{TABLE} WHERE cluster = {}",
        quote(cluster)
    )
}

/// Reads the row [`select`] returned, if any.
pub fn parse(
    cluster: &str,
    cells: Vec<Vec<Option<String>>>,
) -> Result<Option<ClusterPause>, String> {
    let Some(row) = cells.into_iter().next() else {
        return Ok(None);
    };
    let cell = |i: usize| row.get(i).cloned().flatten();
    let number = |i: usize, what: &str| -> Result<Option<i64>, String> {
        cell(i)
            .map(|v| {
                v.parse::<f64>()
                    .map(|f| f as i64)
                    .map_err(|_| format!("{SCHEMA}.{TABLE}: {what} {v:?} is not a time"))
            })
            .transpose()
    };
    Ok(Some(ClusterPause {
        cluster: cluster.to_string(),
        by: cell(0).unwrap_or_default(),
        reason: cell(1).unwrap_or_default(),
        since: number(2, "pausedAt")?.unwrap_or(0),
        until: number(3, "pausedUntil")?,
        now: number(4, "UNIX_TIMESTAMP()")?.unwrap_or(0),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_and_resume_render_to_the_exact_statements() {
        assert_eq!(
            pause("DC1", "DC1-2 (alice)", "it's the upgrade", Some(3600)),
            "REPLACE INTO percona.replication_pause (cluster, pausedBy, reason, pausedAt, pausedUntil) VALUES ('DC1', 'DC1-2 (alice)', 'it\\'s the upgrade', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP + INTERVAL 3600 SECOND)"
        );
        assert_eq!(
            pause("DC1", "DC1-2 (alice)", "", None),
            "REPLACE INTO percona.replication_pause (cluster, pausedBy, reason, pausedAt, pausedUntil) VALUES ('DC1', 'DC1-2 (alice)', '', CURRENT_TIMESTAMP, NULL)"
        );
        assert_eq!(
            resume("DC1"),
            "DELETE FROM percona.replication_pause WHERE cluster = 'DC1'"
        );
        assert_eq!(
            select("D'1"),
            "SELECT pausedBy, reason, UNIX_TIMESTAMP(pausedAt), UNIX_TIMESTAMP(pausedUntil), UNIX_TIMESTAMP() FROM percona.replication_pause WHERE cluster = 'D\\'1'"
        );
    }

    fn row(until: Option<&str>, now: &str) -> Vec<Vec<Option<String>>> {
        vec![vec![
            Some("DC1-2 (alice)".into()),
            Some("upgrade".into()),
            Some("1000.000000".into()),
            until.map(String::from),
            Some(now.into()),
        ]]
    }

    #[test]
    fn a_pause_holds_until_its_end_and_not_after() {
        let p = parse("DC1", row(Some("2000"), "1500")).unwrap().unwrap();
        assert_eq!((p.since, p.until, p.now), (1000, Some(2000), 1500));
        assert!(p.is_active());
        assert!(p.describe().contains("for 500 s more"), "{}", p.describe());
        let ended = parse("DC1", row(Some("2000"), "2000")).unwrap().unwrap();
        assert!(!ended.is_active());
        assert!(ended.describe().contains("ended 0 s ago"));
        let open = parse("DC1", row(None, "999999")).unwrap().unwrap();
        assert!(open.is_active());
        assert!(open.describe().contains("until `resume`"));
    }

    #[test]
    fn the_schema_reader_knows_the_table_by_its_name() {
        let cols = crate::db::state::fixtures::cols;
        let mut c = cols(
            "replication",
            &[
                "host",
                "localIndex",
                "isReplica",
                "lastUpdate",
                "lastHeartbeat",
                "connectionName",
            ],
        );
        assert!(
            !crate::db::state::Schema::from_columns(&c)
                .unwrap()
                .has_pause_table
        );
        c.extend(cols(
            TABLE,
            &["cluster", "pausedBy", "reason", "pausedAt", "pausedUntil"],
        ));
        assert!(
            crate::db::state::Schema::from_columns(&c)
                .unwrap()
                .has_pause_table
        );
    }

    #[test]
    fn no_row_is_no_pause_and_a_bad_time_is_an_error() {
        assert_eq!(parse("DC1", vec![]).unwrap(), None);
        let mut bad = row(None, "1");
        bad[0][2] = Some("yesterday".into());
        assert!(parse("DC1", bad).unwrap_err().contains("pausedAt"));
    }
}
