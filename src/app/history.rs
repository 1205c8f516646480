//! `history`: what happened to this cluster's links, newest first, from
//! `percona.replication_history` ([`crate::db::history`]): elections, failovers and their
//! cause, source switches, fences and fences that could not be done, failures and their
//! clearing, pauses and resumes. Read on any node that can read the table; changes nothing.

use super::open_local;
use crate::config::Config;
use crate::config::topology::Link;
use crate::db::history::{Entry, Query};
use crate::error::Result;
use serde::Serialize;
use std::path::Path;

/// The version of `history --format json`'s shape: raised when a field changes meaning or
/// goes; a new field does not raise it.
pub const SCHEMA_VERSION: u32 = 1;

/// What `history` asks for.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// A link by its remote cluster (DC2) or name (DC1-DC2); all when `None`.
    pub link: Option<String>,
    /// Only events at or after this Unix time.
    pub since: Option<i64>,
    /// At most this many, the newest.
    pub limit: u64,
}

/// What `history` found.
#[derive(Clone, Debug, Serialize)]
pub struct History {
    pub schema_version: u32,
    /// The cluster whose history this is (every cluster's rows reach every cluster through
    /// replication; only this one's are shown).
    pub cluster: String,
    /// The node it was read on.
    pub node: String,
    /// Whether the table exists: `false` before `init` or the first event.
    pub table_exists: bool,
    /// Newest first.
    pub events: Vec<Event>,
}

/// One event, with its link's name.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Unix time (the writing server's clock).
    pub at: i64,
    /// The same, as RFC 3339 in UTC.
    pub time: String,
    /// The link's name (`DC1-DC2`); `null` for an event of the node (a pause).
    pub link: Option<String>,
    pub node: String,
    pub event: String,
    pub detail: String,
}

/// Reads the history of this node's cluster.
pub fn history(cfg: &Config, defaults_file: Option<&Path>, req: &Request) -> Result<History> {
    let mut node = open_local(cfg, defaults_file)?;
    let links = super::pick_links(&node.links, req.link.as_deref(), &node.facts.name)?;
    let mut out = History {
        schema_version: SCHEMA_VERSION,
        cluster: node.facts.cluster.clone(),
        node: node.facts.name.clone(),
        table_exists: node.schema.as_ref().is_some_and(|s| s.has_history_table),
        events: Vec::new(),
    };
    if !out.table_exists {
        return Ok(out);
    }
    let q = Query {
        links: match req.link {
            Some(_) => links.iter().map(|l| l.key.to_string()).collect(),
            None => Vec::new(),
        },
        since: req.since,
        limit: req.limit,
    };
    out.events = node
        .server
        .history(&node.facts.cluster, &q)?
        .into_iter()
        .map(|e| event(e, &node.links))
        .collect();
    Ok(out)
}

/// An entry as shown, with its link's name.
pub fn event(e: Entry, links: &[Link]) -> Event {
    let link = (!e.link.is_empty()).then(|| {
        links
            .iter()
            .find(|l| l.key == e.link)
            .map_or(e.link.clone(), |l| l.name.clone())
    });
    Event {
        at: e.at,
        time: utc(e.at),
        link,
        node: e.node,
        event: e.event,
        detail: e.detail,
    }
}

/// A Unix time as RFC 3339 in UTC (`2026-12-07T04:50:12Z`).
pub fn utc(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map_or_else(
        || at.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

impl History {
    /// One line per event, newest first, for a person.
    pub fn to_text(&self) -> String {
        if !self.table_exists {
            return format!(
                "{}: no history yet: percona.replication_history does not exist. `init` creates it, and so does the first event a run records.",
                self.node
            );
        }
        if self.events.is_empty() {
            return format!(
                "{}: no event of cluster {} matches (newest first; older than {} days are gone).",
                self.node,
                self.cluster,
                crate::db::history::KEEP_DAYS
            );
        }
        let width = |f: &dyn Fn(&Event) -> usize| self.events.iter().map(f).max().unwrap_or(0);
        let lw = width(&|e| e.link.as_deref().unwrap_or("-").len());
        let nw = width(&|e| e.node.len());
        let ew = width(&|e| e.event.len());
        let mut s = format!(
            "History of cluster {} (newest first, times in UTC), read on {}:\n",
            self.cluster, self.node
        );
        for e in &self.events {
            s.push_str(&format!(
                "{}  {:lw$}  {:nw$}  {:ew$}  {}\n",
                e.time.replace('T', " ").trim_end_matches('Z'),
                e.link.as_deref().unwrap_or("-"),
                crate::error::printable(&e.node),
                e.event,
                crate::error::printable(&e.detail)
            ));
        }
        s.trim_end().to_string()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// `--since`: a duration back from now (90s, 30m, 2h, 7d), or a UTC date or time
/// (`2026-12-01`, `2026-12-01 10:00`, `2026-12-01T10:00:00`). The Unix time it means.
pub fn parse_since(text: &str, now: i64) -> std::result::Result<i64, String> {
    let t = text.trim();
    if let Some(secs) = duration(t) {
        return Ok(now - secs);
    }
    let t2 = t.replace('T', " ");
    let t2 = t2.trim_end_matches('Z');
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(d) = chrono::NaiveDateTime::parse_from_str(t2, f) {
            return Ok(d.and_utc().timestamp());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t2, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map_or(0, |d| d.and_utc().timestamp()));
    }
    Err(format!(
        "{text:?}: write a duration back from now (90s, 30m, 2h, 7d) or a UTC date or time (2026-12-01, \"2026-12-01 10:00\")"
    ))
}

/// `90s`, `30m`, `2h`, `7d` (a number alone is seconds), in seconds.
fn duration(t: &str) -> Option<i64> {
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let per = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    n.parse::<i64>().ok()?.checked_mul(per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_durations_back_from_now_and_utc_dates() {
        let now = 1_800_000_000;
        assert_eq!(parse_since("90", now), Ok(now - 90));
        assert_eq!(parse_since("30m", now), Ok(now - 1800));
        assert_eq!(parse_since("7d", now), Ok(now - 7 * 86400));
        assert_eq!(parse_since("2026-12-01", now), Ok(1_796_083_200));
        assert_eq!(parse_since("2026-12-01 10:00", now), Ok(1_796_119_200));
        assert_eq!(parse_since("2026-12-01T10:00:30Z", now), Ok(1_796_119_230));
        let e = parse_since("yesterday", now).unwrap_err();
        assert!(e.contains("\"yesterday\"") && e.contains("30m"), "{e}");
    }

    #[test]
    fn text_says_when_there_is_no_table_or_no_event() {
        let mut h = History {
            schema_version: SCHEMA_VERSION,
            cluster: "DC1".into(),
            node: "DC1-1".into(),
            table_exists: false,
            events: vec![],
        };
        assert!(h.to_text().contains("`init` creates it"));
        h.table_exists = true;
        assert!(h.to_text().contains("no event of cluster DC1"));
        h.events.push(Event {
            at: 1_796_119_230,
            time: utc(1_796_119_230),
            link: Some("DC1-DC2".into()),
            node: "DC1-2".into(),
            event: "elected".into(),
            detail: "replicates from 127.0.0.1:4306: nobody held the link".into(),
        });
        assert!(h.to_text().ends_with(
            "2026-12-01 10:00:30  DC1-DC2  DC1-2  elected  replicates from 127.0.0.1:4306: nobody held the link"
        ));
    }
}
