//! When the host runs an operator's hook (`[hooks]`), and what it tells it; and the failover
//! counter (`metrics`) of a takeover, counted where the role change is seen.
//!
//! The host, not the policy, raises the events, at the one place each change happens: a role
//! written to this node's row ([`RunCtx::role_written`]), a channel connected to another
//! source, a peer fenced, a pause found or ended ([`RunCtx::note_pause`]). Each hook is an
//! [`Action::Hook`] through the executor, so dry-run prints it and simulate records it; a hook
//! that fails is logged by the executor and changes nothing. Hooks are queued and run at the
//! end of the run ([`RunCtx::run_hooks`]), after every change and report.
//!
//! Every hook gets `PXCRM_EVENT`, `PXCRM_NODE` and `PXCRM_CLUSTER`; a link's event also
//! `PXCRM_LINK`, `PXCRM_CHANNEL` and `PXCRM_REMOTE`; then the event's own variables
//! (`PXCRM_ROLE`, `PXCRM_OLD_ROLE`, `PXCRM_SOURCE`, `PXCRM_OLD_SOURCE`, `PXCRM_PEER`,
//! `PXCRM_REASON`, `PXCRM_PAUSE_*`), as docs/operating.md lists them.

use super::RunCtx;
use crate::config::hooks::HookEvent;
use crate::config::topology::Link;
use crate::db::history;
use crate::db::state::Role;
use crate::exec::Action;
use crate::exec::hook::HookCall;
use crate::metrics::Cause;

impl RunCtx {
    /// Runs the hook of an event, if one is configured, with the run's and the link's facts
    /// and `vars`.
    pub fn hook(&mut self, event: HookEvent, link: Option<&Link>, vars: Vec<(&str, String)>) {
        let Some(argv) = self.settings.hooks.command(event).map(<[String]>::to_vec) else {
            return;
        };
        let facts = self.backend.facts();
        let mut env = vec![
            ("PXCRM_EVENT".to_string(), event.as_str().to_string()),
            ("PXCRM_NODE".to_string(), facts.name.clone()),
            ("PXCRM_CLUSTER".to_string(), facts.cluster.clone()),
        ];
        if let Some(l) = link {
            env.push(("PXCRM_LINK".into(), l.name.clone()));
            env.push(("PXCRM_CHANNEL".into(), l.channel.as_str().to_string()));
            env.push(("PXCRM_REMOTE".into(), l.remote.clone()));
        }
        env.extend(vars.into_iter().map(|(k, v)| (k.to_string(), v)));
        // The channel's facts as the mail shows them, at the moment of the event: its state,
        // threads, last errors and lag (`PXCRM_IO_THREAD`, ...). The names and the role and
        // source are given above.
        if let Some(l) = link {
            const GIVEN: [&str; 9] = [
                "node",
                "cluster",
                "link",
                "remote",
                "channel",
                "role",
                "source",
                "time",
                "channel_state",
            ];
            let facts = self.link_facts(l);
            env.push((
                "PXCRM_CHANNEL_STATE".into(),
                facts.channel_state_word().into(),
            ));
            env.extend(
                facts
                    .fields()
                    .into_iter()
                    .filter(|(k, _)| !GIVEN.contains(k))
                    .map(|(k, v)| (format!("PXCRM_{}", k.to_ascii_uppercase()), v)),
            );
        }
        self.pending.hooks.push(HookCall {
            event,
            argv,
            env,
            timeout: self.settings.hooks.timeout,
        });
    }

    /// Notes what happened for the history ([`crate::db::history`]): about a link, or about
    /// the node (`None`). Written at the end of the run ([`RunCtx::write_history`]).
    pub fn history(&mut self, link: Option<&Link>, event: &'static str, detail: String) {
        if !self.variant.history {
            return;
        }
        log::debug!("{}: history: {event}: {detail}", self.node());
        self.pending.history.push(Action::RecordHistory {
            cluster: self.backend.facts().cluster.clone(),
            key: link.map(|l| l.key.to_string()).unwrap_or_default(),
            event,
            detail,
        });
    }

    /// Writes what the run noted for the history, once every link's turn is over, on a node
    /// that may write (the Primary component). A write that fails is logged and changes
    /// nothing else: the history is a record, never a reason to stop.
    pub fn write_history(&mut self) {
        let pending = std::mem::take(&mut self.pending.history);
        if pending.is_empty() {
            return;
        }
        if !self.writable() {
            log::info!(
                "{}: {} event(s) not written to the history: this node is outside the Primary component",
                self.node(),
                pending.len()
            );
            return;
        }
        for a in pending {
            if let Err(e) = self.backend.apply(&a) {
                log::warn!(
                    "{}: the history could not be written: {e}; the run goes on",
                    self.node()
                );
            }
        }
    }

    /// Runs the hooks the run raised, in order, once every link's turn is over: a hook that
    /// hangs until its timeout then delays only the end of the run, never a policy call (whose
    /// time is limited) or a change.
    pub fn run_hooks(&mut self) {
        for call in std::mem::take(&mut self.pending.hooks) {
            let key = call.event.key();
            if let Err(e) = self.backend.apply(&Action::Hook(call)) {
                log::warn!("{}: hook {key}: {e}; the run goes on", self.node());
            }
        }
    }

    /// This node's row for a link now says `role`: a role change (and `failed`) when it said
    /// something else before.
    pub(super) fn role_written(&mut self, link: &Link, role: Role) {
        let old = self.book.own_roles.insert(link.key.clone(), role);
        if old == Some(role) {
            return;
        }
        let source = self
            .book
            .connected
            .get(&link.key)
            .cloned()
            .unwrap_or_default();
        if role == Role::Yes && old == Some(Role::Proposed) {
            let cause = self
                .book
                .takeover_causes
                .remove(&link.key)
                .unwrap_or(Cause::Election);
            self.observations
                .counters_mut()
                .failover(&link.key, cause.as_str());
            let (event, why) = match cause {
                Cause::SilentReplica => (
                    history::event::FAILOVER,
                    "the replica stopped reporting or left the view",
                ),
                Cause::FailedReplica => (
                    history::event::FAILOVER,
                    "the replica gave the link up as Failed",
                ),
                Cause::Switchover => (
                    history::event::SWITCHOVER,
                    "the operator moved the replica here (switchover)",
                ),
                _ => (history::event::ELECTED, "nobody held the link"),
            };
            if self.variant.history {
                // Connected in this run, or (a node that found its channel running) as it runs.
                let from = if source.is_empty() {
                    self.backend
                        .replica(link)
                        .ok()
                        .flatten()
                        .map_or_else(|| "an unknown source".to_string(), |r| r.source())
                } else {
                    source.clone()
                };
                self.history(Some(link), event, format!("replicates from {from}: {why}"));
            }
        }
        let handed_off =
            self.book.takeover_causes.get(&link.key).copied() == Some(Cause::Switchover);
        match (old, role) {
            // A hand-off writes its own row, with the position it stopped at.
            (Some(Role::Yes), Role::No) if handed_off => {}
            (Some(Role::Yes), Role::No) => self.history(
                Some(link),
                history::event::STEPPED_DOWN,
                "its channel no longer replicates the link".into(),
            ),
            (Some(Role::Failed), Role::No) => self.history(
                Some(link),
                history::event::CLEARED,
                "its Failed row went back to No after the failed timeout".into(),
            ),
            _ => {}
        }
        self.hook(
            HookEvent::RoleChange,
            Some(link),
            vec![
                ("PXCRM_ROLE", role.to_string()),
                ("PXCRM_OLD_ROLE", role_word(old)),
                ("PXCRM_SOURCE", source),
            ],
        );
        if role == Role::Failed {
            // Run once the link's turn is over, when the failure's reason is recorded.
            self.book.failed_from.insert(link.key.clone(), old);
        }
    }

    /// At the end of a link's turn: the `failed` hook, if this node gave the link up in it,
    /// with the reason it recorded for the cluster.
    pub(super) fn link_done(&mut self, link: &Link) {
        if let Some(old) = self.book.failed_from.remove(&link.key) {
            let reason = self
                .book
                .failures
                .get(&link.key)
                .cloned()
                .unwrap_or_default();
            self.history(Some(link), history::event::FAILED, reason.clone());
            self.hook(
                HookEvent::Failed,
                Some(link),
                vec![("PXCRM_OLD_ROLE", role_word(old)), ("PXCRM_REASON", reason)],
            );
        }
    }

    /// The run's pause as it starts (`paused_since`, and the cluster's pause row if that is
    /// what pauses it), against what the node remembers: `paused` when it was not paused at
    /// its last run, `resumed` when it was and is no longer.
    ///
    /// Both go to the history. Remembered only while the history is written or a pause hook is
    /// configured, so that the model checker's nodes keep no more state than they need.
    pub fn note_pause(&mut self) {
        let hooks = &self.settings.hooks;
        if !self.variant.history
            && hooks.command(HookEvent::Paused).is_none()
            && hooks.command(HookEvent::Resumed).is_none()
        {
            return;
        }
        let Some(entered) = self.observations.note_paused(self.pause.since) else {
            return;
        };
        let event = if entered {
            HookEvent::Paused
        } else {
            HookEvent::Resumed
        };
        let detail = match &self.pause.cluster {
            Some(p) if entered => p.describe(),
            _ if entered => "the pause file is there".to_string(),
            _ => String::new(),
        };
        self.history(
            None,
            if entered {
                history::event::PAUSED
            } else {
                history::event::RESUMED
            },
            detail,
        );
        let mut vars = Vec::new();
        match &self.pause.cluster {
            Some(p) if entered => {
                vars.push(("PXCRM_PAUSE_SCOPE", "cluster".to_string()));
                vars.push(("PXCRM_PAUSE_BY", p.by.clone()));
                vars.push(("PXCRM_REASON", p.reason.clone()));
                vars.push((
                    "PXCRM_PAUSE_UNTIL",
                    p.until.map_or(String::new(), |u| u.to_string()),
                ));
            }
            _ if entered => vars.push(("PXCRM_PAUSE_SCOPE", "node".to_string())),
            _ => {}
        }
        self.hook(event, None, vars);
    }
}

/// A role as a hook's variable says it: `none` for a node that had no row.
fn role_word(role: Option<Role>) -> String {
    role.map_or_else(|| "none".to_string(), |r| r.to_string())
}
