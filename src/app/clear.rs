//! `clear-failure`: the operator says a link's failure is fixed. Its `Failed` rows go back to
//! `No` and its recorded failure is forgotten, through the executor, from any node of the
//! Primary component, so the next run elects without waiting out the failed timeout. Mailed,
//! and written to the history.

use super::{LocalNode, open_local};
use crate::config::Config;
use crate::config::topology::Link;
use crate::db::state::{LinkFailure, Role, Schema};
use crate::error::Result;
use crate::exec::mail::Mail;
use crate::exec::{Action, Backend, LiveBackend, Mode};
use std::io::Write;
use std::path::Path;

/// A link, the hosts of its Failed rows, and its recorded failure: what there is to clear.
type ToClear = (Link, Vec<String>, Option<LinkFailure>);

/// Clears the failure of every link of this node's cluster, or of the one named (by its
/// remote cluster or its name). What it did, in one line per link, and how many of its mails
/// could not be sent.
pub fn clear_failure(
    cfg: &Config,
    defaults_file: Option<&Path>,
    link: Option<&str>,
    dry_run: bool,
    out: Box<dyn Write>,
) -> Result<(String, usize)> {
    let mut node = open_local(cfg, defaults_file)?;
    node.must_act("clear a failure")?;
    let schema = node.state_table()?;
    let links = super::pick_links(&node.links, link, &node.facts.name)?;
    // What each link has to clear, read before the executor takes the connection.
    let todo = to_clear(&mut node, &schema, &links)?;
    let name = node.facts.name.clone();
    let cluster = node.facts.cluster.clone();
    let mode = if dry_run { Mode::DryRun } else { Mode::Live };
    let mut backend = node.into_backend(cfg, mode, out);
    let mut said = Vec::new();
    for (l, failed, failure) in todo {
        if failed.is_empty() && failure.is_none() {
            said.push(format!(
                "{}: nothing to clear (no Failed row, no recorded failure)",
                l.name
            ));
            continue;
        }
        said.push(clear_link(
            &mut backend,
            &cluster,
            &name,
            &l,
            &failed,
            failure.as_ref(),
            dry_run,
        )?);
    }
    backend.send_mail();
    Ok((said.join("\n"), backend.mail_failures()))
}

/// Each link with its Failed rows' hosts and its recorded failure, read from the server.
fn to_clear(node: &mut LocalNode, schema: &Schema, links: &[Link]) -> Result<Vec<ToClear>> {
    let mut todo = Vec::new();
    for l in links {
        let failed: Vec<String> = node
            .server
            .rows(schema, &l.key)?
            .into_iter()
            .filter(|r| r.role == Role::Failed)
            .map(|r| r.host)
            .collect();
        let failure = if schema.claim_records_failures {
            node.server.failure(schema, &l.key)?
        } else {
            None
        };
        todo.push((l.clone(), failed, failure));
    }
    Ok(todo)
}

/// Clears one link's Failed rows and recorded failure, records it and mails it: its line.
fn clear_link(
    backend: &mut LiveBackend,
    cluster: &str,
    name: &str,
    l: &Link,
    failed: &[String],
    failure: Option<&LinkFailure>,
    dry_run: bool,
) -> Result<String> {
    let mut what = Vec::new();
    if !failed.is_empty() {
        backend.apply(&Action::ClearFailedRows { key: l.key.clone() })?;
        what.push(format!("{} back from Failed to No", failed.join(", ")));
    }
    if let Some(f) = failure {
        backend.apply(&Action::ClearFailure { key: l.key.clone() })?;
        what.push(format!(
            "the failure recorded by {} forgotten ({}: {})",
            f.host,
            f.kind.as_str(),
            f.detail
        ));
    }
    backend.apply(&Action::RecordHistory {
        cluster: cluster.to_string(),
        key: l.key.to_string(),
        event: crate::db::history::event::CLEARED,
        detail: format!("by hand (clear-failure): {}", what.join("; ")),
    })?;
    let line = format!("{}: {}", l.name, what.join("; "));
    let mail = Mail {
        subject: format!("{}: failure cleared by hand on {name}", l.name),
        body: format!(
            "An operator ran `pxc-replication-manager clear-failure` on {name}: {}.\nThe next run of each node elects a replica for {} without waiting out the failed timeout.",
            what.join("; "),
            l.name
        ),
        once: None,
    };
    backend.apply(&Action::Notify(mail))?;
    Ok(if dry_run {
        format!("dry-run: the statements above would clear {line}")
    } else {
        format!("cleared {line}")
    })
}
