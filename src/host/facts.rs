//! The facts of a link as this node sees them at one moment: what every mail carries whatever
//! the policy wrote (its subject names the cluster, the link, the node and its role; its body
//! ends with a facts block), and what a hook can be handed as variables ([`LinkFacts::fields`]).
//!
//! Gathering them only reads (the link's rows and this node's channel); a read that fails is
//! said in the facts, never an error: a mail is not lost because a fact could not be read.

use super::RunCtx;
use crate::config::topology::Link;
use crate::db::state::Role;

/// One row of the link, as the facts show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowFacts {
    pub host: String,
    pub role: Role,
    /// Seconds since its heartbeat, by the reading server's clock.
    pub heartbeat_age: Option<i64>,
    pub source: Option<String>,
}

/// This node's channel for the link, as the facts show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelFacts {
    /// `host:port`.
    pub source: String,
    pub io_thread: String,
    pub io_state: String,
    pub sql_thread: String,
    pub last_io_error: String,
    pub last_sql_error: String,
    /// Seconds behind the source; `None` when the server says NULL.
    pub lag_seconds: Option<u64>,
    /// The channel was stopped and reset in this run: these are its values before.
    pub reset_in_this_run: bool,
}

/// A link's facts on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    pub node: String,
    pub cluster: String,
    /// `<local>-<remote>`.
    pub link: String,
    pub remote: String,
    pub channel: String,
    /// This node's role in the link's row; `None` when it has no row.
    pub role: Option<Role>,
    /// This node's channel; `Ok(None)` when it has none, `Err(why)` when it could not be read.
    pub replica: Result<Option<ChannelFacts>, String>,
    /// Every row of the link; `Err(why)` when they could not be read.
    pub rows: Result<Vec<RowFacts>, String>,
    /// When the rows were read (Unix time, the reading server's clock).
    pub read_at: Option<i64>,
}

impl RunCtx {
    /// The facts of a link now. Only reads; a failed read is described in the facts.
    pub fn link_facts(&mut self, link: &Link) -> LinkFacts {
        let facts = self.backend.facts();
        let (node, cluster) = (facts.name.clone(), facts.cluster.clone());
        let rows = self.backend.rows(link).map_err(|e| e.to_string());
        let reset = self.book.reset_channels.get(&link.key).cloned();
        let replica = self
            .backend
            .replica(link)
            .map(|r| {
                let (r, reset_in_this_run) = match (r, reset) {
                    (None, Some(last)) => (Some(last), true),
                    (r, _) => (r, false),
                };
                r.map(|s| ChannelFacts {
                    source: s.source(),
                    io_thread: s.io_running.to_string(),
                    io_state: s.io_state.clone(),
                    sql_thread: s.sql_running.to_string(),
                    last_io_error: s.last_io_error.clone(),
                    last_sql_error: s.last_sql_error.clone(),
                    lag_seconds: s.lag_seconds,
                    reset_in_this_run,
                })
            })
            .map_err(|e| e.to_string());
        let role = rows
            .as_ref()
            .ok()
            .and_then(|rs| rs.iter().find(|r| r.host == node).map(|r| r.role));
        let read_at = rows
            .as_ref()
            .ok()
            .and_then(|rs| rs.first().map(|r| r.read_at));
        LinkFacts {
            node,
            cluster,
            link: link.name.clone(),
            remote: link.remote.clone(),
            channel: link.channel.to_string(),
            role,
            replica,
            rows: rows.map(|rs| {
                rs.into_iter()
                    .map(|r| RowFacts {
                        host: r.host,
                        role: r.role,
                        heartbeat_age: r.heartbeat_age,
                        source: r.current_source,
                    })
                    .collect()
            }),
            read_at,
        }
    }
}

impl LinkFacts {
    /// This node's role as a subject shows it.
    fn role_text(&self) -> String {
        self.role.map_or("no row".to_string(), |r| r.to_string())
    }

    /// The channel's state in one word, for a program (a hook's `PXCRM_CHANNEL_STATE`):
    /// `configured`, `reset` (stopped and reset in this run; the other facts are its last
    /// state), `none`, or `unknown` (it could not be read).
    pub fn channel_state_word(&self) -> &'static str {
        match &self.replica {
            Ok(Some(c)) if c.reset_in_this_run => "reset",
            Ok(Some(_)) => "configured",
            Ok(None) => "none",
            Err(_) => "unknown",
        }
    }

    /// The subject as mailed (before `[mail] subject_prefix`): the cluster, the link, the node
    /// and its role after the change, then the policy's subject (without a leading
    /// `<link>: `, which the subject already says).
    pub fn subject(&self, policy_subject: &str) -> String {
        let own = policy_subject
            .strip_prefix(&format!("{}: ", self.link))
            .unwrap_or(policy_subject);
        format!(
            "{} {} {} {}: {own}",
            self.cluster,
            self.link,
            self.node,
            self.role_text()
        )
    }

    /// The facts as `(name, value)` pairs, in the order the block shows them; an absent value
    /// is empty. The names are lower-case words with `_`, fit for variable names.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("node", self.node.clone()),
            ("cluster", self.cluster.clone()),
            ("link", self.link.clone()),
            ("remote", self.remote.clone()),
            ("channel", self.channel.clone()),
            ("role", self.role_text()),
        ];
        match &self.replica {
            Ok(Some(c)) => v.extend([
                (
                    "channel_state",
                    if c.reset_in_this_run {
                        "stopped and reset in this run; its last state:".into()
                    } else {
                        "configured".into()
                    },
                ),
                ("source", c.source.clone()),
                (
                    "io_thread",
                    if c.io_state.is_empty() {
                        c.io_thread.clone()
                    } else {
                        format!("{} ({})", c.io_thread, c.io_state)
                    },
                ),
                ("sql_thread", c.sql_thread.clone()),
                ("last_io_error", c.last_io_error.clone()),
                ("last_sql_error", c.last_sql_error.clone()),
                (
                    "lag_seconds",
                    c.lag_seconds.map_or("NULL".into(), |l| l.to_string()),
                ),
            ]),
            Ok(None) => v.push(("channel_state", "none on this node".into())),
            Err(e) => v.push(("channel_state", format!("(not read: {e})"))),
        }
        if let Some(t) = self.read_at {
            v.push(("time", utc(t)));
        }
        v
    }

    /// The facts block that ends every mail's body.
    pub fn block(&self) -> String {
        let mut out = String::from("-- facts (from the host, whatever the policy wrote) --\n");
        for (k, val) in self.fields() {
            let val = if val.is_empty() { "(none)" } else { &val };
            out.push_str(&format!("{k}: {val}\n"));
        }
        match &self.rows {
            Ok(rows) if rows.is_empty() => out.push_str("rows: none\n"),
            Ok(rows) => {
                out.push_str("rows:\n");
                for r in rows {
                    out.push_str(&format!(
                        "  {} {} heartbeat {} source {}\n",
                        r.host,
                        r.role,
                        r.heartbeat_age
                            .map_or("never".to_string(), |a| format!("{a} s ago")),
                        r.source.as_deref().unwrap_or("-")
                    ));
                }
            }
            Err(e) => out.push_str(&format!("rows: (not read: {e})\n")),
        }
        out
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or(format!("{t} (Unix time)"), |d| {
        d.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> LinkFacts {
        LinkFacts {
            node: "DC1-2".into(),
            cluster: "DC1".into(),
            link: "DC1-DC2".into(),
            remote: "DC2".into(),
            channel: "DC1-DC2".into(),
            role: Some(Role::Yes),
            replica: Ok(Some(ChannelFacts {
                source: "10.0.2.1:3306".into(),
                io_thread: "Yes".into(),
                io_state: "Waiting for master to send event".into(),
                sql_thread: "Yes".into(),
                last_io_error: String::new(),
                last_sql_error: String::new(),
                lag_seconds: Some(0),
                reset_in_this_run: false,
            })),
            rows: Ok(vec![
                RowFacts {
                    host: "DC1-1".into(),
                    role: Role::No,
                    heartbeat_age: Some(12),
                    source: None,
                },
                RowFacts {
                    host: "DC1-2".into(),
                    role: Role::Yes,
                    heartbeat_age: Some(0),
                    source: Some("10.0.2.1:3306".into()),
                },
            ]),
            read_at: Some(1_700_000_000),
        }
    }

    #[test]
    fn the_subject_names_cluster_link_node_and_role_once() {
        let f = facts();
        assert_eq!(
            f.subject("DC1-DC2: DC1-2 is the new replica (source 10.0.2.1:3306)"),
            "DC1 DC1-DC2 DC1-2 Yes: DC1-2 is the new replica (source 10.0.2.1:3306)"
        );
        assert_eq!(
            f.subject("something else"),
            "DC1 DC1-DC2 DC1-2 Yes: something else"
        );
        let none = LinkFacts { role: None, ..f };
        assert!(none.subject("x").starts_with("DC1 DC1-DC2 DC1-2 no row: "));
    }

    #[test]
    fn the_block_holds_source_threads_errors_lag_rows_and_time() {
        let b = facts().block();
        for want in [
            "node: DC1-2\n",
            "cluster: DC1\n",
            "link: DC1-DC2\n",
            "role: Yes\n",
            "channel_state: configured\n",
            "source: 10.0.2.1:3306\n",
            "io_thread: Yes (Waiting for master to send event)\n",
            "sql_thread: Yes\n",
            "last_io_error: (none)\n",
            "lag_seconds: 0\n",
            "  DC1-1 No heartbeat 12 s ago source -\n",
            "  DC1-2 Yes heartbeat 0 s ago source 10.0.2.1:3306\n",
            "time: 2023-11-14 22:13:20 UTC\n",
        ] {
            assert!(b.contains(want), "missing {want:?} in\n{b}");
        }
    }

    #[test]
    fn a_channel_reset_in_this_run_shows_its_last_state_and_errors() {
        let mut f = facts();
        if let Ok(Some(c)) = &mut f.replica {
            c.reset_in_this_run = true;
            c.sql_thread = "No".into();
            c.last_sql_error = "Duplicate entry '7'".into();
        }
        let b = f.block();
        assert!(
            b.contains("channel_state: stopped and reset in this run; its last state:\nsource: 10.0.2.1:3306\n"),
            "{b}"
        );
        assert!(b.contains("last_sql_error: Duplicate entry '7'\n"), "{b}");
    }

    #[test]
    fn facts_that_could_not_be_read_are_said() {
        let f = LinkFacts {
            replica: Err("lost connection".into()),
            rows: Err("table missing".into()),
            read_at: None,
            ..facts()
        };
        let b = f.block();
        assert!(
            b.contains("channel_state: (not read: lost connection)"),
            "{b}"
        );
        assert!(b.contains("rows: (not read: table missing)"), "{b}");
        assert!(!b.contains("time:"), "{b}");
    }
}
