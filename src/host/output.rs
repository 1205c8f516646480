//! What a run may say, whatever the policy does: the policy's log lines and their total size,
//! its mails per link and run, one mail per host event per outage and a rate for its own, and a deadline for the host
//! calls that wait on the network. Printed text is made printable here too.
//!
//! The limits come from `[policy]` ([`crate::config::Limits`]); the policy engine bounds the
//! rest of a call (operations, memory, its own time) in `policy::limits`.

use super::RunCtx;
use crate::config::Limits;
use crate::db::state::LinkKey;
use crate::exec::{
    Action,
    mail::{Mail, Once},
};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The run's output so far.
#[derive(Debug, Default)]
pub struct Output {
    lines: usize,
    bytes: usize,
    dropped_lines: usize,
    dropped_bytes: usize,
    /// Mails the policy sent per link in this run.
    mails: HashMap<LinkKey, usize>,
    /// Links whose mail cap was reported.
    capped: HashSet<LinkKey>,
    /// Events whose repeat was reported, by link.
    repeated: HashSet<(LinkKey, String)>,
    /// Where the policy's log lines are also written as they come (the model checker's
    /// traces), or nowhere.
    pub echo: Option<Echo>,
}

/// Where the policy's log lines are echoed: each a line ending in a newline.
pub struct Echo(pub Box<dyn FnMut(&str)>);

impl std::fmt::Debug for Echo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Echo")
    }
}

/// How a policy's log line is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

pub use crate::error::printable;

impl RunCtx {
    /// Gives the policy's log lines also to `to`, as they come, each a line ending in a
    /// newline (the model checker's traces).
    pub fn echo_policy_log(&mut self, to: Box<dyn FnMut(&str)>) {
        self.notices.output.echo = Some(Echo(to));
    }

    /// Stops giving the policy's log lines to the echo, and drops it.
    pub fn stop_echo(&mut self) {
        self.notices.output.echo = None;
    }

    /// The sandbox limits of this run.
    pub fn limits(&self) -> &Limits {
        &self.settings.limits
    }

    /// Logs one line of the policy's, within the run's budget of lines and bytes.
    pub fn policy_log(&mut self, level: Level, msg: &str) {
        let limits = self.settings.limits.clone();
        let o = &mut self.notices.output;
        let full = o.lines >= limits.max_log_lines || o.bytes >= limits.max_log_bytes;
        // Counted as written: escaping makes a character up to 10 bytes. What is dropped is
        // counted as the policy gave it (escaping what is not written would cost the run).
        let text = if full { String::new() } else { printable(msg) };
        if full || o.bytes + text.len() > limits.max_log_bytes {
            o.dropped_lines += 1;
            o.dropped_bytes += msg.len();
            return;
        }
        o.lines += 1;
        o.bytes += text.len();
        let node = self.node();
        if let Some(Echo(echo)) = &mut self.notices.output.echo {
            let what = match level {
                Level::Debug => "debug",
                Level::Info => "log",
                Level::Warn => "warn",
            };
            echo(&format!("{node}: policy {what}: {text}\n"));
        }
        let line = format!("{node}: {text}");
        match level {
            Level::Debug => log::debug!("{line}"),
            Level::Info => log::info!("{line}"),
            Level::Warn => log::warn!("{line}"),
        }
    }

    /// One line for what the budget dropped, if anything: at the end of the run.
    pub fn log_dropped(&self) {
        let o = &self.notices.output;
        if o.dropped_lines > 0 {
            let l = &self.settings.limits;
            log::warn!(
                "{}: the policy's log was cut: {} more line(s) ({} bytes as the policy gave them) dropped past the run's limit of {} lines and {} bytes ([policy] max_log_lines, max_log_bytes)",
                self.node(),
                o.dropped_lines,
                o.dropped_bytes,
                l.max_log_lines,
                l.max_log_bytes
            );
        }
    }

    /// Sends a mail about the link being run, through the executor: at most
    /// `[policy] max_mails` per link and run; an event's mail ([`RunCtx::mail_event`]) at most
    /// once while the link stays in the same condition (the same holder and source, or none:
    /// one outage), the policy's own at most once per link every `[policy] notify_every`.
    /// `Ok(false)` when it was not sent, and why is logged.
    pub fn notify(&mut self, mail: Mail) -> crate::error::Result<bool> {
        let key = self.call.current_link.clone().unwrap_or_default();
        let node = self.node();
        let cap = self.settings.limits.max_mails;
        let sent = self.notices.output.mails.entry(key.clone()).or_insert(0);
        if *sent >= cap {
            if self.notices.output.capped.insert(key.clone()) {
                log::warn!(
                    "{node}: {key}: more mail than [policy] max_mails = {cap} in one run; the rest is not sent: {:?} and later",
                    printable(&mail.subject)
                );
            }
            return Ok(false);
        }
        let condition = self
            .notices
            .conditions
            .get(&key)
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        // No character that does not print: a subject is one line, a body keeps its lines.
        let mut mail = Mail {
            subject: printable(&mail.subject),
            body: crate::error::printable_lines(&mail.body),
            once: None,
        };
        match self.notices.mail_event.clone() {
            // A host event: once while the link stays in one condition (one outage).
            Some(event) => {
                if !self.observations.may_mail(&key, &condition, &event) {
                    if self.notices.output.repeated.insert((key.clone(), event)) {
                        log::info!(
                            "{node}: {key}: not mailed again while the link stays as it is ({condition}): {:?}",
                            printable(&mail.subject)
                        );
                    }
                    return Ok(false);
                }
                mail.once = Some(Once {
                    link: key.to_string(),
                    event,
                });
            }
            // The policy's own: at most one per link every [policy] notify_every.
            None => {
                let every = self.settings.limits.notify_every.as_secs() as i64;
                let now = chrono::Utc::now().timestamp();
                match self.observations.may_policy_mail(&key, now, every) {
                    None => {
                        if self
                            .notices
                            .output
                            .repeated
                            .insert((key.clone(), String::new()))
                        {
                            log::info!(
                                "{node}: {key}: the policy's own mail is held back: one per link every {every} s ([policy] notify_every): {:?}",
                                printable(&mail.subject)
                            );
                        }
                        return Ok(false);
                    }
                    Some(held) if held > 0 => {
                        mail.body = format!(
                            "{}\n\n({held} more of the policy's own mail(s) about this link were held back since the last: one per link every {every} s, [policy] notify_every.)",
                            mail.body.trim_end()
                        );
                    }
                    Some(_) => {}
                }
            }
        }
        *self.notices.output.mails.entry(key).or_insert(0) += 1;
        let mail = self.with_facts(mail);
        self.apply(Action::Notify(mail))?;
        Ok(true)
    }

    /// The mail as sent: the subject names the cluster, the link, the node and its role, then
    /// the policy's subject; the body is the policy's, then the link's facts
    /// ([`super::facts`]). Outside a link, the cluster and the node only.
    fn with_facts(&mut self, mail: Mail) -> Mail {
        let link = self
            .call
            .current_link
            .as_ref()
            .and_then(|k| self.links.iter().find(|l| &l.key == k))
            .cloned();
        match link {
            Some(l) if self.variant.mail_facts => {
                let f = self.link_facts(&l);
                Mail {
                    subject: f.subject(&mail.subject),
                    body: format!("{}\n\n{}", mail.body.trim_end(), f.block()),
                    once: mail.once,
                }
            }
            _ => Mail {
                subject: format!(
                    "{} {}: {}",
                    self.backend.facts().cluster,
                    self.node(),
                    mail.subject
                ),
                body: mail.body,
                once: mail.once,
            },
        }
    }

    /// Starts the deadline of one policy call, which may take `limit` (its own limit, or what
    /// is left of the run's budget).
    pub fn start_deadline(&mut self, limit: Duration) {
        self.call.deadline = Some(Instant::now() + limit);
        self.call.limit = limit;
    }

    /// Ends it: host calls outside a policy call have their own timeouts only.
    pub fn end_deadline(&mut self) {
        self.call.deadline = None;
    }

    /// What is left of the current policy call's time, if one runs.
    pub fn time_left(&self) -> Option<Duration> {
        self.call
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// `Err` when a host call that may wait `needs` would run past the policy call's deadline.
    pub fn within_deadline(&self, what: &str, needs: Duration) -> Result<(), String> {
        let Some(deadline) = self.call.deadline else {
            return Ok(());
        };
        let limit = self.call.limit;
        let whose = if limit < self.settings.limits.max_seconds {
            "what was left of the run's budget"
        } else {
            "[policy] max_seconds"
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left < needs {
            return Err(format!(
                "time limit: {what} may take {} s, but the policy call has {:.1} s left of its {:.0} s ({whose})",
                needs.as_secs(),
                left.as_secs_f64(),
                limit.as_secs_f64()
            ));
        }
        Ok(())
    }
}
