//! One node's run in the checked world: the real host and policy over the simulated executor.
//!
//! Every host call goes to the simulated backend (`exec::sim`), built for that call from the
//! world as this node sees it, and what the call changed is written back to the world. So the
//! statements, the proposal's check and the channel rules are the ones `simulate` runs.
//!
//! A split run advances by one host call per step: the run is started again from the
//! beginning, the calls it already made are answered from its log, and the next one is put to
//! the world as it is now; then the run is suspended (every later call is refused and its
//! effects discarded). The host and the policy are deterministic, so the replay takes the same
//! path; a run that asks something else than its log says is reported as a checker error.

use super::time::Clock;
use super::world::{Answer, Call, NOT_PRIMARY, RunLog, Sent, Server, SourceState, Table, World};
use crate::config::topology::Link;
use crate::config::{MailConfig, SourceAddr};
use crate::db::flavor::{Flavor, ReplicaStatus};
use crate::db::state::{LinkFailure, Me, Schema, StateRow};
use crate::error::{Error, ProbeError, Result};
use crate::exec::server::{ClusterStatus, LocalState, NodeFacts, Probe};
use crate::exec::sim::{PeerServer, SimBackend, SimLink};
use crate::exec::{Action, Backend, ConnectOutcome, FenceOutcome, Outcome, PeerFailure};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

/// Deliberately broken executors, to show the checker fails when a guarantee is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutant {
    /// A host without the claim: the proposal is written without its check in the
    /// transaction (so two nodes that both saw the link free both become `Proposed`), and
    /// neither `connect` nor the move to `Yes` re-checks that no other node holds the link.
    NoClaim,
    /// A fence stops nothing (and says the peer runs no channel).
    NoFence,
    /// A fence that failed counts as done: the takeover goes on past a peer that refused it
    /// or did not answer while in the view (the host before fences that never fail open).
    FenceFailsOpen,
    /// A host without its mail cap: a run sends every mail its policy asks for.
    NoMailCap,
    /// A host that forgets what it mailed between runs (as if its state file were not
    /// kept): an event is mailed again at every run while the outage lasts.
    NoMailOnce,
}

/// What a split run did in this step.
pub struct Progress {
    pub log: RunLog,
    /// Calls left before the run is suspended (`usize::MAX`: atomic).
    budget: usize,
    pos: usize,
    /// The calls answered from the log in this step (made in earlier steps).
    replayed: usize,
    pub suspended: bool,
    /// The replay took another path than the log: a checker error.
    pub diverged: Option<String>,
}

impl Progress {
    /// Whether the run is past what it replays and not yet suspended: what it does now is
    /// new in this step (the trace shows its policy's log lines then, and only then).
    pub fn live(&self) -> bool {
        self.pos >= self.replayed && !self.suspended
    }
}

/// The backend of one node's run in the world.
pub struct WorldBackend {
    pub world: Rc<RefCell<World>>,
    pub progress: Rc<RefCell<Progress>>,
    pub node: usize,
    pub facts: NodeFacts,
    pub me: Me,
    pub schema: Schema,
    /// Shared with every call's simulated backend.
    pub links: Vec<Rc<Link>>,
    /// Each link's source addresses.
    pub addresses: Vec<Vec<String>>,
    pub mail: Rc<MailConfig>,
    pub mutant: Option<Mutant>,
    /// Where the simulated backend prints statements (the trace), or nowhere.
    pub out: Option<Rc<RefCell<Vec<u8>>>>,
    /// The world's ages are in ticks; the run reads seconds.
    pub clock: Clock,
}

/// The facts a node's run reads at its start.
pub fn facts(name: &str, i: usize, log: &RunLog, flavor: &Flavor) -> NodeFacts {
    let primary = log.primary;
    NodeFacts {
        name: name.to_string(),
        cluster: "DC1".into(),
        cluster_status: if primary {
            ClusterStatus::Primary
        } else {
            ClusterStatus::NonPrimary
        },
        local_state: if primary {
            LocalState::Synced
        } else {
            LocalState::Other(0)
        },
        local_state_comment: if primary { "Synced" } else { "Initialized" }.into(),
        local_index: i as i64,
        cluster_size: log.size,
        flavor: flavor.clone(),
        gtid_domain_id: None,
        gtid_position: String::new(),
        weight: 0,
        incoming_address: None,
    }
}

/// Where peers reach node `i`'s server.
pub fn address(i: usize) -> String {
    format!("10.0.1.{}:3306", i + 1)
}

/// What a call touches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Reads or writes the state table: refused outside the Primary component. Visible.
    Table,
    /// Starts or stops this node's channel, or a peer's (a fence): what the properties and
    /// the other nodes see. Visible.
    Channel,
    /// Reads this node's own channel or a source, configures or resets a stopped channel, or
    /// mails: nothing another node's call reads. A split run does not stop before these.
    Local,
}

impl WorldBackend {
    /// The simulated backend for one call: this node's view of the world now.
    fn view(&self, w: &World) -> SimBackend {
        let links = self
            .links
            .iter()
            .enumerate()
            .map(|(l, link)| self.sim_link(w, l, link))
            .collect();
        let out: Box<dyn Write> = match &self.out {
            Some(buf) => Box::new(crate::app::scenario::SharedOut(buf.clone())),
            None => Box::new(std::io::sink()),
        };
        SimBackend {
            facts: self.facts.clone(),
            me: self.me.clone(),
            schema: self.schema.clone(),
            links,
            mail: self.mail.clone(),
            out,
            check_fence_logins: false,
        }
    }

    /// Link `l` as this node sees it now: its sources, its peers' servers, the Primary
    /// component's members, its table (ages in seconds) and this node's channel.
    fn sim_link(&self, w: &World, l: usize, link: &Rc<Link>) -> SimLink {
        let answering = self.addresses[l]
            .iter()
            .filter(|a| {
                matches!(
                    w.sources.get(*a),
                    Some(SourceState::Up | SourceState::CutOff)
                )
            })
            .cloned()
            .collect();
        let unhealthy = self.addresses[l]
            .iter()
            .filter(|a| w.sources.get(*a) == Some(&SourceState::CutOff))
            .cloned()
            .collect();
        let members = w
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.server == Server::Primary)
            .map(|(j, n)| (n.name.clone(), address(j)))
            .collect();
        let mut t = w.tables[l].clone();
        t.map_ages(|a| self.clock.secs(a));
        let Table {
            rows,
            failure,
            switchover,
        } = t;
        SimLink {
            link: link.clone(),
            answering,
            unhealthy,
            servers: self.peer_servers(w, l),
            members,
            membership: true,
            gtid_domain: None,
            race_lost_to: None,
            sql_fails: None,
            rows,
            replica: w.status(self.node, l, &link.channel),
            failure,
            switchover,
        }
    }

    /// Every node's server as this node's fence on link `l` would find it: down when either
    /// is outside the Primary component.
    fn peer_servers(&self, w: &World, l: usize) -> BTreeMap<String, PeerServer> {
        let reach = w.nodes[self.node].server == Server::Primary;
        w.nodes
            .iter()
            .enumerate()
            .map(|(j, n)| {
                let s = if !reach || n.server != Server::Primary {
                    PeerServer::Down
                } else if n.refuses_fence {
                    PeerServer::Refuses
                } else if w.runs(j, l) {
                    PeerServer::Replicating
                } else {
                    PeerServer::Idle
                };
                (n.name.clone(), s)
            })
            .collect()
    }

    /// Writes back what a call changed in the simulated backend (built by [`Self::view`]
    /// from `w` before the call).
    fn fold(&self, w: &mut World, after: &SimBackend) {
        let i = self.node;
        for (l, a) in after.links.iter().enumerate() {
            let mut t = Table {
                rows: a.rows.clone(),
                failure: a.failure.clone(),
                switchover: a.switchover.clone(),
            };
            t.map_ages(|s| self.clock.ticks(s));
            let Table {
                rows,
                failure,
                switchover,
            } = t;
            if switchover != w.tables[l].switchover {
                w.tables[l].switchover = switchover;
            }
            if rows != w.tables[l].rows {
                w.tables[l].rows = rows;
            }
            if failure != w.tables[l].failure {
                w.tables[l].failure = failure;
            }
            if a.replica != w.status(i, l, &a.link.channel) {
                let was_started = w.nodes[i].channels[l].as_ref().is_some_and(|c| c.started);
                let chan = a.replica.as_ref().map(|r| {
                    let started = r.io_running != crate::db::flavor::Thread::No;
                    let source = r.source();
                    let blocked = started && !was_started && w.other_io_on(i, l, &source);
                    super::world::Chan {
                        source,
                        started,
                        sql_error: (!r.last_sql_error.is_empty()).then(|| r.last_sql_error.clone()),
                        blocked,
                    }
                });
                w.nodes[i].channels[l] = chan;
            }
            // A fence that stopped a peer's channel left it idle in the view.
            for (j, n) in w.nodes.iter_mut().enumerate() {
                if j == i || a.servers.get(&n.name) != Some(&PeerServer::Idle) {
                    continue;
                }
                let primary = n.server == Server::Primary;
                if let Some(c) = n.channels[l].as_mut().filter(|c| c.started && primary) {
                    c.started = false;
                    c.blocked = false;
                }
            }
        }
    }

    /// One host call: answered from the log while replaying, put to the world once per step,
    /// refused once the step's call is made.
    fn call<T: Kept>(
        &mut self,
        asked: String,
        kind: Kind,
        ask: impl FnOnce(&mut SimBackend) -> std::result::Result<T, String>,
    ) -> std::result::Result<T, String> {
        let take = |a: &Answer| match a {
            Answer::Refused(e) => Some(Err(e.clone())),
            a => T::take(a).map(Ok),
        };
        {
            let mut p = self.progress.borrow_mut();
            if p.pos < p.log.calls.len() {
                let c = &p.log.calls[p.pos];
                let answer = if c.asked == asked {
                    take(&c.answer)
                } else {
                    None
                };
                let Some(answer) = answer else {
                    let why = format!(
                        "call {} of the replayed run asked {asked:?}, its log says {:?}",
                        p.pos + 1,
                        c.asked
                    );
                    p.diverged.get_or_insert(why);
                    p.suspended = true;
                    return Err("the model stopped this run here".into());
                };
                p.pos += 1;
                return answer;
            }
            if p.suspended {
                return Err("the model stopped this run here".into());
            }
            if kind != Kind::Local {
                if p.budget == 0 {
                    p.suspended = true;
                    return Err("the model stopped this run here".into());
                }
                p.budget -= 1;
            }
        }
        let answer = {
            let mut w = self.world.borrow_mut();
            let refused =
                matches!(kind, Kind::Table) && w.nodes[self.node].server != Server::Primary;
            if refused {
                Err(NOT_PRIMARY.to_string())
            } else {
                let mut sim = self.view(&w);
                let r = ask(&mut sim);
                self.fold(&mut w, &sim);
                r
            }
        };
        let mut p = self.progress.borrow_mut();
        let kept = match &answer {
            Ok(v) => v.keep(),
            Err(e) => Answer::Refused(e.clone()),
        };
        p.log.calls.push(Call {
            asked,
            answer: kept,
            mail: None,
        });
        p.pos += 1;
        answer
    }
}

/// A host call's answer as a split run's log keeps it.
trait Kept: Sized {
    fn keep(&self) -> Answer;
    fn take(a: &Answer) -> Option<Self>;
}

macro_rules! kept {
    ($t:ty, $variant:ident) => {
        impl Kept for $t {
            fn keep(&self) -> Answer {
                Answer::$variant(self.clone())
            }
            fn take(a: &Answer) -> Option<Self> {
                match a {
                    Answer::$variant(v) => Some(v.clone()),
                    _ => None,
                }
            }
        }
    };
}

kept!(Vec<StateRow>, Rows);
kept!(Option<ReplicaStatus>, Replica);
kept!(Option<LinkFailure>, Failure);
kept!(Probe, Probe);
kept!(Option<String>, Member);
kept!(ConnectOutcome, Await);
kept!(Outcome, Applied);
kept!(Option<crate::db::switchover::Request>, Switchover);
kept!(bool, Reached);

fn e(why: String) -> Error {
    Error::Model(why)
}

fn msg(e: Error) -> String {
    e.to_string()
}

impl Backend for WorldBackend {
    fn facts(&self) -> &NodeFacts {
        &self.facts
    }

    fn me(&self) -> &Me {
        &self.me
    }

    fn rows(&mut self, link: &Link) -> Result<Vec<StateRow>> {
        if !self.progress.borrow().log.primary {
            // The run found the node outside the Primary component: no schema, no rows.
            return Ok(Vec::new());
        }
        self.call(format!("rows {}", link.key), Kind::Table, |s| {
            s.rows(link).map_err(msg)
        })
        .map_err(e)
    }

    fn replica(&mut self, link: &Link) -> Result<Option<ReplicaStatus>> {
        self.call(format!("replica {}", link.key), Kind::Local, |s| {
            s.replica(link).map_err(msg)
        })
        .map_err(e)
    }

    fn last_failure(&mut self, link: &Link) -> Result<Option<LinkFailure>> {
        if !self.progress.borrow().log.primary {
            return Ok(None);
        }
        self.call(format!("failure {}", link.key), Kind::Table, |s| {
            s.last_failure(link).map_err(msg)
        })
        .map_err(e)
    }

    fn probe(
        &mut self,
        link: &Link,
        source: &SourceAddr,
    ) -> std::result::Result<Probe, ProbeError> {
        let asked = format!("probe {} {}", link.key, source.address());
        self.call(asked, Kind::Local, |s| {
            s.probe(link, source).map_err(|e| e.to_string())
        })
        .map_err(ProbeError::Simulated)
    }

    fn switchover(&mut self, link: &Link) -> Result<Option<crate::db::switchover::Request>> {
        if !self.progress.borrow().log.primary || !self.schema.has_switchover_table {
            return Ok(None);
        }
        self.call(format!("switchover {}", link.key), Kind::Table, |s| {
            s.switchover(link).map_err(msg)
        })
        .map_err(e)
    }

    fn await_position(&mut self, position: &str, max: Duration) -> Result<bool> {
        self.call(format!("position {position}"), Kind::Local, |s| {
            s.await_position(position, max).map_err(msg)
        })
        .map_err(e)
    }

    fn member_address(&mut self, host: &str) -> Result<Option<String>> {
        self.call(format!("member {host}"), Kind::Table, |s| {
            s.member_address(host).map_err(msg)
        })
        .map_err(e)
    }

    fn await_replica(
        &mut self,
        link: &Link,
        source: &SourceAddr,
        deadline: Duration,
    ) -> Result<ConnectOutcome> {
        self.call(format!("await {}", link.key), Kind::Local, |s| {
            s.await_replica(link, source, deadline).map_err(msg)
        })
        .map_err(e)
    }

    fn apply(&mut self, action: &Action) -> Result<Outcome> {
        let kind = match action {
            Action::Notify(_)
            | Action::Hook(_)
            | Action::ChangeSource { .. }
            | Action::ResetReplica { .. } => Kind::Local,
            Action::Fence { .. } | Action::StartReplica { .. } | Action::StopReplica { .. } => {
                Kind::Channel
            }
            _ => Kind::Table,
        };
        let mutant = self.mutant;
        let me = self.me.host.clone();
        let reach = self.world.borrow().nodes[self.node].server == Server::Primary;
        let outcome = self
            .call(format!("apply {}", action_name(action)), kind, |s| {
                match (action, mutant) {
                    (Action::Propose { key, .. }, Some(Mutant::NoClaim)) => {
                        let l = s.links.iter_mut().find(|l| &l.link.key == key);
                        if let Some(r) = l.and_then(|l| l.rows.iter_mut().find(|r| r.host == me)) {
                            r.role = crate::db::state::Role::Proposed;
                            r.heartbeat_age = Some(0);
                            r.update_age = Some(0);
                        }
                        Ok(Outcome::Done { affected: 1 })
                    }
                    // The broken host: its fence stops nothing and says the peer ran nothing.
                    (Action::Fence { .. }, Some(Mutant::NoFence)) => {
                        Ok(Outcome::Fenced(FenceOutcome::NotRunning))
                    }
                    (Action::Fence { .. }, _) if !reach => {
                        Ok(Outcome::Fenced(FenceOutcome::Failed(
                            PeerFailure::Unreachable("this node is cut off from its peers".into()),
                        )))
                    }
                    _ => s.apply(action).map_err(msg),
                }
            })
            .map_err(e)?;
        if let Action::Notify(m) = action {
            // The call just made, or just replayed: what the mail checks read.
            let mut p = self.progress.borrow_mut();
            let i = p.pos - 1;
            p.log.calls[i].mail = Some(m.once.clone().map_or(Sent::Own, Sent::Event));
        }
        Ok(outcome)
    }

    fn mail_failures(&self) -> usize {
        0
    }
}

/// An action's name and link, without the values the canonical form rewrites.
fn action_name(a: &Action) -> String {
    let d = format!("{a:?}");
    let name = d.split([' ', '(', '{']).next().unwrap_or("").to_string();
    match (a, a.row_key()) {
        (_, Some(key)) => format!("{name} {key}"),
        (Action::Fence { host, channel, .. }, _) => format!("{name} {host} {channel}"),
        _ => name,
    }
}

/// The start of a run.
pub fn start(w: &World, i: usize) -> RunLog {
    let primary = w.nodes[i].server == Server::Primary;
    let size = w
        .nodes
        .iter()
        .filter(|n| n.server == Server::Primary)
        .count() as i64;
    RunLog {
        primary,
        size: if primary { size } else { 1 },
        paused: w.nodes[i].paused_since,
        calls: Vec::new(),
    }
}

/// The progress of a run for one step: `split` makes at most one new call.
pub fn progress(log: RunLog, split: bool) -> Progress {
    Progress {
        replayed: log.calls.len(),
        log,
        budget: if split { 1 } else { usize::MAX },
        pos: 0,
        suspended: false,
        diverged: None,
    }
}
