//! Heartbeat-only reports that wait to be committed together.
//!
//! A link's turn usually ends with its report: the node's row and report, in a transaction of
//! its own (see `with_report` in the module above). On a node with several links whose turns
//! write nothing else (an idle node, a healthy run), each of those commits is a Galera
//! certification and a log flush, most of what an extra link costs. The live executor
//! therefore keeps such a report here, instead of committing it at once, and commits every
//! report kept in one transaction **before the server is asked anything else**, before any
//! other write, any remote call (a probe, a fence, a peer's check) and any hook or mail, and
//! at the end of the run's links.
//!
//! Why this changes nothing a peer can see but the number of commits: between a kept report
//! and its commit, the run only reads what it had already read (nothing reaches a server), so
//! the commits' order among the run's other statements is the same, and two reports committed
//! together are one of the ways two reports committed one after the other may interleave with
//! the peers (with nothing between them). A report reaches the table later than it would
//! have by at most the policy's calls for the next links; the time the run records for it
//! (the daemon's self-fence counts from it) is the earlier one, so that watch errs early.
//!
//! When the joined transaction fails (a peer wrote one of those rows at the same moment),
//! each report is tried again alone, so that one link's conflict never costs another link
//! its heartbeat; a report that fails alone is that link's error, as it would have been.

use crate::db::state::LinkKey;
use crate::error::Error;

/// One report that waits: its statements between `START TRANSACTION` and `COMMIT`, as
/// logged (secrets masked) and as run.
struct Waiting {
    key: LinkKey,
    masked: Vec<String>,
    real: Vec<String>,
}

/// The reports that wait, and those whose commit failed in this run.
#[derive(Default)]
pub(super) struct Joined {
    waiting: Vec<Waiting>,
    failed: Vec<(LinkKey, Error)>,
}

/// A transaction's statements: `START TRANSACTION`, the body, `COMMIT`.
fn transaction(body: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v = vec![super::BEGIN.to_string()];
    v.extend(body);
    v.push(super::COMMIT.to_string());
    v
}

/// The body of a single transaction (statements that open with `START TRANSACTION`, end
/// with `COMMIT`, and have neither in between); `None` for anything else, such as a report
/// that creates a table first.
fn body(statements: &[String]) -> Option<&[String]> {
    let inner = statements
        .strip_prefix(&[super::BEGIN.to_string()])?
        .strip_suffix(&[super::COMMIT.to_string()])?;
    inner
        .iter()
        .all(|s| s != super::BEGIN && s != super::COMMIT)
        .then_some(inner)
}

impl Joined {
    /// Keeps a report's statements, rendered masked and real, to commit with the others;
    /// `false` (nothing kept) when they are not one plain transaction.
    pub fn keep(&mut self, key: &LinkKey, masked: &[String], real: &[String]) -> bool {
        let (Some(m), Some(r)) = (body(masked), body(real)) else {
            return false;
        };
        self.waiting.push(Waiting {
            key: key.clone(),
            masked: m.to_vec(),
            real: r.to_vec(),
        });
        true
    }

    /// Whether no report waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Commits every report that waits, with `run` (which runs statements in order and rolls
    /// an open transaction back when one fails): all in one transaction, or, when that
    /// fails, each alone. The reports that failed alone are kept for [`Joined::take_failed`].
    pub fn commit(&mut self, mut run: impl FnMut(&[String], &[String]) -> Result<(), Error>) {
        let waiting = std::mem::take(&mut self.waiting);
        if waiting.len() > 1 {
            let masked = transaction(waiting.iter().flat_map(|w| w.masked.iter().cloned()));
            let real = transaction(waiting.iter().flat_map(|w| w.real.iter().cloned()));
            match run(&masked, &real) {
                Ok(()) => return,
                Err(e) => log::debug!(
                    "the reports of {} links together: {e}; each alone",
                    waiting.len()
                ),
            }
        }
        for w in waiting {
            if let Err(e) = run(
                &transaction(w.masked.iter().cloned()),
                &transaction(w.real.iter().cloned()),
            ) {
                self.failed.push((w.key, e));
            }
        }
    }

    /// The reports whose commit failed since the last call, by link.
    pub fn take_failed(&mut self) -> Vec<(LinkKey, Error)> {
        std::mem::take(&mut self.failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn key(k: &str) -> LinkKey {
        LinkKey::from(k.to_string())
    }

    #[test]
    fn only_a_single_plain_transaction_waits() {
        let mut j = Joined::default();
        let report = strings(&["START TRANSACTION", "UPDATE a", "UPDATE b", "COMMIT"]);
        assert!(j.keep(&key("A"), &report, &report));
        let creates_a_table_first =
            strings(&["CREATE TABLE t", "START TRANSACTION", "UPDATE a", "COMMIT"]);
        assert!(!j.keep(&key("B"), &creates_a_table_first, &creates_a_table_first));
        let two = strings(&[
            "START TRANSACTION",
            "UPDATE a",
            "COMMIT",
            "START TRANSACTION",
            "UPDATE b",
            "COMMIT",
        ]);
        assert!(!j.keep(&key("C"), &two, &two));
        assert!(!j.keep(&key("D"), &strings(&["UPDATE a"]), &strings(&["UPDATE a"])));
    }

    #[test]
    fn the_reports_that_wait_are_committed_in_one_transaction() {
        let mut j = Joined::default();
        for k in ["A", "B", "C"] {
            let r = strings(&["START TRANSACTION", &format!("UPDATE {k}"), "COMMIT"]);
            j.keep(&key(k), &r, &r);
        }
        let mut ran = Vec::new();
        j.commit(|_, real| {
            ran.push(real.to_vec());
            Ok(())
        });
        assert_eq!(
            ran,
            vec![strings(&[
                "START TRANSACTION",
                "UPDATE A",
                "UPDATE B",
                "UPDATE C",
                "COMMIT"
            ])]
        );
        assert!(j.is_empty());
        assert!(j.take_failed().is_empty());
    }

    #[test]
    fn when_the_joined_commit_fails_each_report_is_tried_alone_and_only_its_own_failure_counts() {
        let mut j = Joined::default();
        for k in ["A", "B"] {
            let r = strings(&["START TRANSACTION", &format!("UPDATE {k}"), "COMMIT"]);
            j.keep(&key(k), &r, &r);
        }
        let mut ran = Vec::new();
        j.commit(|_, real| {
            ran.push(real.join("; "));
            if real.contains(&"UPDATE B".to_string()) {
                Err(Error::Internal("certification failed".into()))
            } else {
                Ok(())
            }
        });
        assert_eq!(
            ran,
            vec![
                "START TRANSACTION; UPDATE A; UPDATE B; COMMIT",
                "START TRANSACTION; UPDATE A; COMMIT",
                "START TRANSACTION; UPDATE B; COMMIT",
            ]
        );
        let failed: Vec<String> = j
            .take_failed()
            .into_iter()
            .map(|(k, _)| k.to_string())
            .collect();
        assert_eq!(failed, vec!["B"]);
    }

    #[test]
    fn a_single_report_is_committed_as_it_was_written() {
        let mut j = Joined::default();
        let r = strings(&["START TRANSACTION", "UPDATE A", "COMMIT"]);
        j.keep(&key("A"), &r, &r);
        let mut ran = Vec::new();
        j.commit(|_, real| {
            ran.push(real.to_vec());
            Ok(())
        });
        assert_eq!(ran, vec![r]);
    }
}
