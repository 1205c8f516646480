//! The world the model checker explores: the nodes of one cluster (server, manager, channels,
//! what each remembers between runs), the state table Galera replicates among them, the
//! remote sources, and time. It also owns the events that change the world from outside (the
//! faults and the passing of time) and the canonical form that keeps the explored space
//! finite: times are kept relative to now and capped, and report sequences are renumbered
//! densely, since the code compares them only for order and equality.

use super::time::Thresholds;
use crate::config::SourceAddr;
use crate::db::clock::Observations;
use crate::db::flavor::ReplicaStatus;
use crate::db::sql::Channel;
use crate::db::state::{LinkFailure, StateRow};
use crate::exec::mail::Once;
use crate::exec::server::Probe;
use crate::exec::sim::{NOW, channel_status};
use crate::exec::{ConnectOutcome, Outcome};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{Hash, Hasher};

/// A node's database server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Server {
    /// In the Primary component and Synced.
    Primary,
    /// Running, cut off from the Primary component: its table cannot be read or written,
    /// peers cannot reach it, its channel's SQL thread has stopped ("Node has dropped from
    /// cluster") while its IO thread runs on.
    NonPrimary,
    /// Crashed. It restarts with `skip-slave-start`: its channels configured, not running.
    Down,
}

/// A node's manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Manager {
    /// Runs once in every tick, like cron.
    Cron,
    /// Runs, but the pause file exists.
    Paused,
    /// Does not run while its server does (a cron line removed, a config error, a held lock).
    Stopped,
}

/// A remote source candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SourceState {
    Up,
    Down,
    /// Answers and serves its binlog, but is cut off from its own cluster: nothing new arrives.
    CutOff,
}

/// A node's replication channel for one link.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Chan {
    /// `host:port`.
    pub source: String,
    /// `START` was the last statement: the IO thread runs (or reconnects).
    pub started: bool,
    /// The SQL thread stopped on this error.
    pub sql_error: Option<String>,
    /// Started while another node of the cluster kept an IO thread open on the same source:
    /// the source drops the newcomer (every node of a cluster has one server id), and its IO
    /// thread reconnects until the other connection is gone.
    pub blocked: bool,
}

/// One answer of the world to a node's host call, kept while the node's run is split, so the
/// run can be replayed up to where it stopped.
#[derive(Clone, Debug, Hash, serde::Serialize, serde::Deserialize)]
pub enum Answer {
    Rows(Vec<StateRow>),
    Replica(Option<ReplicaStatus>),
    Failure(Option<LinkFailure>),
    Probe(Probe),
    Member(Option<String>),
    Await(ConnectOutcome),
    Applied(Outcome),
    Switchover(Option<crate::db::switchover::Request>),
    Reached(bool),
    Refused(String),
}

/// One host call of a split run: what was asked (without values the canonical form rewrites)
/// and what the world answered.
#[derive(Clone, Debug, Hash, serde::Serialize, serde::Deserialize)]
pub struct Call {
    pub asked: String,
    pub answer: Answer,
    /// The mail the call sent, if it was a mail that went out.
    pub mail: Option<Sent>,
}

/// A mail a run sent.
#[derive(Clone, Debug, Hash, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Sent {
    /// A host event's: once per outage.
    Event(Once),
    /// The policy's own `notify`, or a mail outside a link.
    Own,
}

/// A run in progress (split at its host calls).
#[derive(Clone, Debug, Hash, serde::Serialize, serde::Deserialize)]
pub struct RunLog {
    /// The node was Primary when the run started (its facts are read once, at the start).
    pub primary: bool,
    /// The cluster's size then.
    pub size: i64,
    /// The pause file then.
    pub paused: Option<i64>,
    pub calls: Vec<Call>,
}

/// One node of the checked cluster; its local index is its position.
#[derive(Clone, Debug, Hash, serde::Serialize, serde::Deserialize)]
pub struct Node {
    pub name: String,
    pub server: Server,
    pub manager: Manager,
    /// When the pause file appeared.
    pub paused_since: Option<i64>,
    /// By link.
    pub channels: Vec<Option<Chan>>,
    /// What the node remembers of its peers between runs (`[files] state`).
    pub memo: Observations,
    pub run: Option<RunLog>,
    /// Completed a run in the current tick.
    pub ran: bool,
    /// Completed a run that started while it was outside the Primary component, since it left.
    pub ran_outside: bool,
    /// Its server refuses the fence: it answers, but the manager's login is denied there (a
    /// user that exists only @'localhost', a missing grant). It stays a member of the view.
    pub refuses_fence: bool,
}

/// One link's rows in the state table, and its recorded failure.
#[derive(Clone, Debug, Hash, serde::Serialize, serde::Deserialize)]
pub struct Table {
    pub rows: Vec<StateRow>,
    pub failure: Option<LinkFailure>,
    /// The link's switchover request (its age kept in thousandths of the unit of the others).
    pub switchover: Option<crate::db::switchover::Request>,
}

impl Table {
    /// Maps every age the table holds: its rows' heartbeat and update ages, its failure's.
    /// The one list of them: time passing, the round's shape, the outage, and the conversion
    /// between ticks and the seconds a run reads all go through it.
    pub fn map_ages(&mut self, f: impl Fn(i64) -> i64) {
        for r in &mut self.rows {
            r.heartbeat_age = r.heartbeat_age.map(&f);
            r.update_age = r.update_age.map(&f);
        }
        if let Some(x) = &mut self.failure {
            x.age = x.age.map(&f);
        }
        if let Some(x) = &mut self.switchover {
            x.age_ms = f(x.age_ms / 1000) * 1000;
        }
    }

    /// Every age the table holds (those [`Table::map_ages`] maps).
    fn ages(&self) -> impl Iterator<Item = i64> + '_ {
        self.rows
            .iter()
            .flat_map(|r| [r.heartbeat_age, r.update_age])
            .chain([self.failure.as_ref().and_then(|f| f.age)])
            .chain([self.switchover.as_ref().map(|x| x.age_ms / 1000)])
            .flatten()
    }
}

/// Maps every time a node remembers (`[files] state`: when it saw its peers' reports and
/// fenced them) as an age: `f` gets and returns seconds or ticks before now.
pub fn map_memo_ages(memo: &mut Observations, f: impl Fn(i64) -> i64) {
    memo.rewrite(|t| NOW - f(NOW - t), |_, _, s| s);
}

impl Node {
    /// Maps every time the node remembers, and its pause file's, as an age.
    fn map_ages(&mut self, f: impl Fn(i64) -> i64) {
        map_memo_ages(&mut self.memo, &f);
        if let Some(p) = &mut self.paused_since {
            *p = NOW - f(NOW - *p);
        }
    }

    /// Every time the node remembers, as an age (those [`Node::map_ages`] maps).
    fn ages(&self) -> impl Iterator<Item = i64> + '_ {
        self.memo
            .times()
            .into_iter()
            .chain(self.paused_since)
            .map(|t| NOW - t)
    }
}

/// The whole world.
#[derive(Clone, Debug, Hash, serde::Serialize, serde::Deserialize)]
pub struct World {
    pub nodes: Vec<Node>,
    /// By address.
    pub sources: BTreeMap<String, SourceState>,
    /// The sources whose channels fall behind (`Seconds_Behind_Master` positive while both
    /// threads run).
    pub lagging: BTreeSet<String>,
    /// The lag a channel from a lagging source shows, in seconds: past every threshold.
    pub lag: i64,
    /// By link.
    pub tables: Vec<Table>,
    /// Faults the bound still allows.
    pub faults_left: u8,
    /// Ticks since the last fault, capped.
    pub quiet: u8,
    /// Ticks left before time stops (the model's horizon), if it has one.
    pub ticks_left: Option<u8>,
    /// Runs in progress at once, at most (split runs).
    pub concurrent: usize,
    /// Something other than the ages a round refreshes changed since time last passed: the
    /// round was not idle, so time passes by one second only (see [`super::time`]).
    pub changed: bool,
    /// By link: the events each node has mailed about it since it last changed
    /// ([`World::outage`]), as `(node, event)`. The mail property's memory, not the nodes'.
    pub mailed: Vec<BTreeSet<(usize, String)>>,
}

/// What happens next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// A node's run: started, continued by one host call (split), or whole (atomic).
    Run(usize),
    /// Time passes (every running manager has run): one second, cron's interval; or, after
    /// a round that changed nothing, up to the second before an age reaches a threshold,
    /// every manager running each second and changing nothing but its heartbeat.
    Tick(i64),
    Crash(usize),
    Restart(usize),
    Leave(usize),
    Rejoin(usize),
    StopManager(usize),
    StartManager(usize),
    Pause(usize),
    Unpause(usize),
    SourceDies(String),
    SourceReturns(String),
    SourceCutOff(String),
    SourceHeals(String),
    /// The channels from a source fall behind (a burst of writes there, a slow apply here):
    /// they still carry data.
    SourceLags(String),
    /// They catch up.
    SourceCatchesUp(String),
    /// A node's server begins to refuse the fence login, while it stays in the view.
    RefuseFences(usize),
    /// It accepts the fence login again.
    AcceptFences(usize),
    /// An operator runs `switchover`: a request that the replica of link `.0` hand it to
    /// node `.1` (written as the command writes it, whatever the runs will make of it).
    Switchover(usize, usize),
}

/// The kinds of fault a model may inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// A node crashes and restarts.
    Crash,
    /// A node leaves the Primary component and rejoins it.
    Partition,
    /// A node's manager stops and starts again while its server runs.
    ManagerStops,
    /// A node's pause file appears and goes.
    Pause,
    /// A source dies and comes back.
    SourceDies,
    /// A source is cut off from its own cluster and heals.
    SourceCutOff,
    /// A node's server refuses the fence login (it answers: a member of the view) and
    /// accepts it again.
    FenceRefused,
    /// The channels from a source lag and catch up.
    Lag,
    /// An operator moves a link's replica to another node (`switchover`).
    Switchover,
}

impl Fault {
    pub const ALL: [Fault; 9] = [
        Fault::Crash,
        Fault::Partition,
        Fault::ManagerStops,
        Fault::Pause,
        Fault::SourceDies,
        Fault::SourceCutOff,
        Fault::FenceRefused,
        Fault::Lag,
        Fault::Switchover,
    ];
}

impl Event {
    /// Anything but a run or a tick: a fault or its healing.
    pub fn is_fault(&self) -> bool {
        !matches!(self, Event::Run(_) | Event::Tick(_))
    }

    /// A fault that the bound counts; its healing (a restart, a rejoin, ...) is not counted.
    pub fn disturbs(&self) -> bool {
        matches!(
            self,
            Event::Crash(_)
                | Event::Leave(_)
                | Event::StopManager(_)
                | Event::Pause(_)
                | Event::SourceDies(_)
                | Event::SourceCutOff(_)
                | Event::SourceLags(_)
                | Event::RefuseFences(_)
                | Event::Switchover(..)
        )
    }

    /// As a trace names it.
    pub fn describe(&self, w: &World) -> String {
        let n = |i: &usize| w.nodes[*i].name.clone();
        match self {
            Event::Run(i) => format!("{} runs", n(i)),
            Event::Tick(1) => "a tick passes".into(),
            Event::Tick(d) => format!(
                "{d} ticks pass, every manager running in each and changing nothing but its heartbeat"
            ),
            Event::Crash(i) => format!("{} crashes", n(i)),
            Event::Restart(i) => format!("{} restarts (skip-slave-start)", n(i)),
            Event::Leave(i) => format!("{} leaves the Primary component", n(i)),
            Event::Rejoin(i) => format!("{} rejoins the Primary component", n(i)),
            Event::StopManager(i) => format!("{}'s manager stops running", n(i)),
            Event::StartManager(i) => format!("{}'s manager runs again", n(i)),
            Event::Pause(i) => format!("{}'s pause file appears", n(i)),
            Event::Unpause(i) => format!("{}'s pause file goes", n(i)),
            Event::SourceDies(s) => format!("source {s} dies"),
            Event::SourceReturns(s) => format!("source {s} comes back"),
            Event::SourceCutOff(s) => format!("source {s} is cut off from its cluster"),
            Event::SourceHeals(s) => format!("source {s} rejoins its cluster"),
            Event::SourceLags(s) => format!("the channels from {s} fall behind"),
            Event::SourceCatchesUp(s) => format!("the channels from {s} catch up"),
            Event::RefuseFences(i) => format!("{}'s server refuses the fence login", n(i)),
            Event::AcceptFences(i) => format!("{}'s server accepts the fence login again", n(i)),
            Event::Switchover(l, i) => format!(
                "an operator asks for a switchover of link {} to {}",
                l + 1,
                n(i)
            ),
        }
    }
}

/// The error a server outside the Primary component gives to any query on a table.
pub const NOT_PRIMARY: &str =
    "ERROR 1047 (08S01): WSREP has not yet prepared node for application use";

/// The SQL thread's error on a node that drops out of the Primary component.
pub const DROPPED: &str = "Node has dropped from cluster";

impl World {
    /// A fresh cluster: every node up, Primary and running its manager, no rows, no channel,
    /// every source up.
    pub fn new(nodes: &[String], links: usize, sources: &[String], faults: u8) -> World {
        World {
            nodes: nodes
                .iter()
                .map(|name| Node {
                    name: name.clone(),
                    server: Server::Primary,
                    manager: Manager::Cron,
                    paused_since: None,
                    channels: vec![None; links],
                    memo: Observations::in_memory(),
                    run: None,
                    ran: false,
                    ran_outside: false,
                    refuses_fence: false,
                })
                .collect(),
            sources: sources
                .iter()
                .map(|s| (s.clone(), SourceState::Up))
                .collect(),
            lagging: BTreeSet::new(),
            lag: 0,
            tables: vec![
                Table {
                    rows: Vec::new(),
                    failure: None,
                    switchover: None,
                };
                links
            ],
            faults_left: faults,
            quiet: 0,
            ticks_left: None,
            concurrent: nodes.len(),
            changed: false,
            mailed: vec![BTreeSet::new(); links],
        }
    }

    /// Some node's split run is in progress.
    pub fn mid_run(&self) -> bool {
        self.nodes.iter().any(|n| n.run.is_some())
    }

    /// A node whose manager runs (cron or paused) on a running server.
    pub fn manager_runs(&self, i: usize) -> bool {
        let n = &self.nodes[i];
        n.server != Server::Down && n.manager != Manager::Stopped
    }

    /// The events possible now, given the faults the model injects; time passes by `wait`
    /// seconds.
    pub fn events(&self, faults: &BTreeSet<Fault>, wait: i64) -> Vec<Event> {
        let mut ev = Vec::new();
        let running = self.nodes.iter().filter(|n| n.run.is_some()).count();
        for (i, n) in self.nodes.iter().enumerate() {
            let may_start = self.manager_runs(i) && !n.ran && running < self.concurrent;
            if n.run.is_some() || may_start {
                ev.push(Event::Run(i));
            }
        }
        let all_ran = (0..self.nodes.len()).all(|i| !self.manager_runs(i) || self.nodes[i].ran);
        if all_ran && !self.mid_run() && self.ticks_left != Some(0) {
            ev.push(Event::Tick(wait));
        }
        let can = self.faults_left > 0;
        self.node_events(faults, can, &mut ev);
        self.source_events(faults, can, &mut ev);
        if can && faults.contains(&Fault::Switchover) {
            self.switchover_events(&mut ev);
        }
        ev
    }

    /// The events of each node's server and manager: its faults (`can`: the bound still
    /// allows one) and their repairs.
    fn node_events(&self, faults: &BTreeSet<Fault>, can: bool, ev: &mut Vec<Event>) {
        let has = |f| faults.contains(&f);
        for (i, n) in self.nodes.iter().enumerate() {
            match n.server {
                Server::Down => ev.push(Event::Restart(i)),
                _ if can && has(Fault::Crash) => ev.push(Event::Crash(i)),
                _ => {}
            }
            match n.server {
                Server::NonPrimary => ev.push(Event::Rejoin(i)),
                Server::Primary if can && has(Fault::Partition) => ev.push(Event::Leave(i)),
                _ => {}
            }
            // A refusal that is the model's setting (every node, from the start) stays.
            if n.refuses_fence {
                if has(Fault::FenceRefused) {
                    ev.push(Event::AcceptFences(i));
                }
            } else if can && has(Fault::FenceRefused) {
                ev.push(Event::RefuseFences(i));
            }
            match n.manager {
                Manager::Stopped => ev.push(Event::StartManager(i)),
                Manager::Paused => ev.push(Event::Unpause(i)),
                Manager::Cron => {
                    if can && has(Fault::ManagerStops) {
                        ev.push(Event::StopManager(i));
                    }
                    if can && has(Fault::Pause) {
                        ev.push(Event::Pause(i));
                    }
                }
            }
        }
    }

    /// The events of each source: its faults (`can`: the bound still allows one) and their
    /// repairs.
    fn source_events(&self, faults: &BTreeSet<Fault>, can: bool, ev: &mut Vec<Event>) {
        let has = |f| faults.contains(&f);
        for (s, st) in &self.sources {
            if self.lagging.contains(s) {
                ev.push(Event::SourceCatchesUp(s.clone()));
            } else if can && has(Fault::Lag) {
                ev.push(Event::SourceLags(s.clone()));
            }
            match st {
                SourceState::Up => {
                    if can && has(Fault::SourceDies) {
                        ev.push(Event::SourceDies(s.clone()));
                    }
                    if can && has(Fault::SourceCutOff) {
                        ev.push(Event::SourceCutOff(s.clone()));
                    }
                }
                SourceState::Down => ev.push(Event::SourceReturns(s.clone())),
                SourceState::CutOff => ev.push(Event::SourceHeals(s.clone())),
            }
        }
    }

    /// An operator's switchover requests: on a link with a replica and none in flight, to
    /// every other node.
    fn switchover_events(&self, ev: &mut Vec<Event>) {
        for l in 0..self.tables.len() {
            let in_flight = self.tables[l]
                .switchover
                .as_ref()
                .is_some_and(|r| r.phase.in_flight());
            if !in_flight && self.replica_row(l).is_some() {
                for i in 0..self.nodes.len() {
                    if self.replica_row(l) != Some(i) {
                        ev.push(Event::Switchover(l, i));
                    }
                }
            }
        }
    }

    /// The node whose row of link `l` says `Yes`, if one does (the first).
    fn replica_row(&self, l: usize) -> Option<usize> {
        let host = self.tables[l]
            .rows
            .iter()
            .find(|r| r.role == crate::db::state::Role::Yes)?
            .host
            .clone();
        self.nodes.iter().position(|n| n.name == host)
    }

    /// Applies an event from outside (not a run): a fault, or a tick.
    pub fn apply_outside(&mut self, e: &Event, cap: i64, quiet_cap: u8) {
        if e.disturbs() {
            self.faults_left = self.faults_left.saturating_sub(1);
        }
        if e.is_fault() {
            self.quiet = 0;
        }
        match e {
            Event::Run(_) => {}
            Event::Tick(d) => self.tick(*d, cap, quiet_cap),
            Event::Crash(i) => {
                let n = &mut self.nodes[*i];
                n.server = Server::Down;
                n.run = None;
                for c in n.channels.iter_mut().flatten() {
                    c.started = false;
                    c.blocked = false;
                }
            }
            Event::Restart(i) => {
                let n = &mut self.nodes[*i];
                n.server = Server::Primary;
                n.ran = false;
            }
            Event::Leave(i) => {
                let n = &mut self.nodes[*i];
                n.server = Server::NonPrimary;
                n.ran_outside = false;
                for c in n.channels.iter_mut().flatten().filter(|c| c.started) {
                    c.sql_error = Some(DROPPED.into());
                }
            }
            Event::Rejoin(i) => self.nodes[*i].server = Server::Primary,
            Event::StopManager(i) => self.nodes[*i].manager = Manager::Stopped,
            Event::StartManager(i) => {
                self.nodes[*i].manager = Manager::Cron;
                self.nodes[*i].ran = false;
            }
            Event::Pause(i) => {
                self.nodes[*i].manager = Manager::Paused;
                self.nodes[*i].paused_since = Some(NOW);
            }
            Event::Unpause(i) => {
                self.nodes[*i].manager = Manager::Cron;
                self.nodes[*i].paused_since = None;
            }
            Event::SourceDies(s) => {
                self.sources.insert(s.clone(), SourceState::Down);
            }
            Event::SourceReturns(s) | Event::SourceHeals(s) => {
                self.sources.insert(s.clone(), SourceState::Up);
            }
            Event::SourceCutOff(s) => {
                self.sources.insert(s.clone(), SourceState::CutOff);
            }
            Event::SourceLags(s) => {
                self.lagging.insert(s.clone());
            }
            Event::SourceCatchesUp(s) => {
                self.lagging.remove(s);
            }
            Event::RefuseFences(i) => self.nodes[*i].refuses_fence = true,
            Event::AcceptFences(i) => self.nodes[*i].refuses_fence = false,
            Event::Switchover(l, i) => {
                if let Some(from) = self.replica_row(*l) {
                    self.tables[*l].switchover = Some(crate::db::switchover::Request {
                        from: self.nodes[from].name.clone(),
                        to: self.nodes[*i].name.clone(),
                        phase: crate::db::switchover::Phase::Requested,
                        position: None,
                        source: None,
                        detail: None,
                        requested_by: "operator".into(),
                        age_ms: 0,
                    });
                }
            }
        }
    }

    /// `d` seconds pass: every age grows by `d`, every remembered time moves `d` seconds into
    /// the past, and the managers run again. An age of 0 was refreshed by the round that just
    /// ended; when `d` is more than one second, that round changed nothing else, so each of
    /// the skipped rounds refreshed it again: it is one second old.
    fn tick(&mut self, d: i64, cap: i64, quiet_cap: u8) {
        let grow = |v: i64| if v == 0 { 1 } else { (v + d).min(cap) };
        for t in &mut self.tables {
            t.map_ages(grow);
        }
        for n in &mut self.nodes {
            n.map_ages(grow);
            n.ran = false;
        }
        self.changed = false;
        self.quiet = (self.quiet + 1).min(quiet_cap);
        if let Some(t) = &mut self.ticks_left {
            *t = t.saturating_sub(1);
        }
    }

    /// Every age in the world, and every remembered time as an age.
    fn ages(&self) -> impl Iterator<Item = i64> + '_ {
        let tables = self.tables.iter().flat_map(Table::ages);
        let nodes = self.nodes.iter().flat_map(Node::ages);
        tables.chain(nodes)
    }

    /// How long time can pass before a rule may answer otherwise: the least room
    /// ([`Thresholds::room`]) of the ages that grow (an age of 0 was refreshed this round).
    /// `None` when no age will ever cross a threshold again.
    pub fn room(&self, th: &Thresholds) -> Option<i64> {
        self.ages()
            .filter(|a| *a > 0)
            .filter_map(|a| th.room(a))
            .min()
    }

    /// What a round of runs may change, as a fingerprint: the world with every age replaced by
    /// its class one second later (a refreshed age of 0 and the 1 it will be are alike), and
    /// without the counters of time and of runs. A round whose steps all keep it was idle.
    pub fn shape(&self, th: &Thresholds) -> u128 {
        let class = |a: i64| {
            let (r, p) = th.class(a + 1);
            (r * 2 + p) as i64
        };
        let tables: Vec<Table> = self
            .tables
            .iter()
            .map(|t| {
                let mut t = t.clone();
                t.map_ages(class);
                t
            })
            .collect();
        // The node as a round may change it: not its run in progress or its run counter.
        let nodes: Vec<Node> = self
            .nodes
            .iter()
            .map(|n| {
                let mut n = Node {
                    name: String::new(),
                    channels: n.channels.clone(),
                    memo: n.memo.clone(),
                    run: None,
                    ran: false,
                    ..*n
                };
                n.map_ages(class);
                n
            })
            .collect();
        let whole = (
            tables,
            nodes,
            &self.sources,
            &self.lagging,
            self.faults_left,
        );
        let mut a = std::collections::hash_map::DefaultHasher::new();
        (0x5eed_u32, &whole).hash(&mut a);
        let mut b = std::collections::hash_map::DefaultHasher::new();
        (0xfeed_u64, &whole).hash(&mut b);
        (u128::from(a.finish()) << 64) | u128::from(b.finish())
    }

    /// Link `l` as an operator tells one outage from the next: its table (roles, sources,
    /// what each node reports, the failure) with every age replaced by its class, its channels,
    /// its sources, and the servers, managers and pause files, without report sequences or
    /// what the nodes remember. A node mails each event about the link at most once while
    /// this stays the same (the mail property). `sources` are the link's addresses.
    pub fn outage(&self, l: usize, sources: &[String], th: &Thresholds) -> u64 {
        let class = |a: i64| {
            let (r, p) = th.class(a);
            (r * 2 + p) as i64
        };
        let mut t = self.tables[l].clone();
        t.map_ages(class);
        for r in &mut t.rows {
            if let Some(p) = &mut r.report {
                p.seq = 0;
            }
        }
        let nodes: Vec<_> = self
            .nodes
            .iter()
            .map(|n| {
                (
                    n.server,
                    n.manager,
                    n.paused_since.map(|p| class(NOW - p)),
                    &n.channels[l],
                    n.refuses_fence,
                )
            })
            .collect();
        let sources: Vec<_> = sources
            .iter()
            .map(|s| (self.sources.get(s), self.lagging.contains(s)))
            .collect();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (t, nodes, sources).hash(&mut h);
        h.finish()
    }

    /// The channel of node `i` for link `l` as its server reports it.
    pub fn status(&self, i: usize, l: usize, channel: &Channel) -> Option<ReplicaStatus> {
        let c = self.nodes[i].channels[l].as_ref()?;
        let a = SourceAddr::parse(&c.source, 3306).ok()?;
        if !c.started {
            let mut s = channel_status(channel, &a.host, a.port, "No", "No", "");
            s.last_sql_error = c.sql_error.clone().unwrap_or_default();
            return Some(s);
        }
        let answers = matches!(
            self.sources.get(&c.source),
            Some(SourceState::Up | SourceState::CutOff)
        );
        let (io, state) = if answers && !self.io_blocked(i, l) {
            ("Yes", "Waiting for master to send event")
        } else {
            ("Connecting", "Connecting to master")
        };
        let sql = if c.sql_error.is_some() { "No" } else { "Yes" };
        let mut s = channel_status(channel, &a.host, a.port, io, sql, state);
        s.last_sql_error = c.sql_error.clone().unwrap_or_default();
        // NULL unless both threads run (and the IO thread is connected).
        if io == "Yes" && sql == "Yes" {
            let lag = if self.lagging.contains(&c.source) {
                self.lag
            } else {
                0
            };
            s.lag_seconds = Some(lag as u64);
        }
        Some(s)
    }

    /// Whether node `i`'s IO thread for link `l` is kept out by another node's connection to
    /// the same source.
    pub fn io_blocked(&self, i: usize, l: usize) -> bool {
        let Some(c) = &self.nodes[i].channels[l] else {
            return false;
        };
        c.blocked && self.other_io_on(i, l, &c.source)
    }

    /// Whether a node other than `i` keeps an IO thread open on `source` for link `l`.
    pub fn other_io_on(&self, i: usize, l: usize, source: &str) -> bool {
        self.nodes.iter().enumerate().any(|(j, n)| {
            j != i
                && n.server != Server::Down
                && n.channels[l]
                    .as_ref()
                    .is_some_and(|o| o.started && !o.blocked && o.source == source)
        })
    }

    /// Node `i`'s channel for link `l` runs (a thread runs or reconnects).
    pub fn runs(&self, i: usize, l: usize) -> bool {
        self.nodes[i].server != Server::Down
            && self.nodes[i].channels[l]
                .as_ref()
                .is_some_and(|c| c.started)
    }

    /// Node `i`'s channel for link `l` can apply what it receives: started, and its SQL thread
    /// not stopped by an error. A channel whose SQL thread stopped applies nothing until it is
    /// started again, which only its node's manager does, under the claim.
    pub fn applies(&self, i: usize, l: usize) -> bool {
        self.runs(i, l)
            && self.nodes[i].channels[l]
                .as_ref()
                .is_some_and(|c| c.sql_error.is_none())
    }

    /// Node `i`'s channel for link `l` carries data: both threads run, from a source that is
    /// up and in its cluster.
    pub fn carries_data(&self, i: usize, l: usize) -> bool {
        let Some(c) = &self.nodes[i].channels[l] else {
            return false;
        };
        self.nodes[i].server == Server::Primary
            && c.started
            && c.sql_error.is_none()
            && !self.io_blocked(i, l)
            && self.sources.get(&c.source) == Some(&SourceState::Up)
    }

    /// The canonical form: report counters and pause ages that no rule reads are zeroed, and
    /// the report sequences are renumbered 1, 2, ... per link and host, keeping their order.
    pub fn canonicalize(&mut self, keys: &[String]) {
        self.forget_unread(keys);
        let seqs = self.sequences(keys);
        self.renumber(keys, &seqs);
    }

    /// Forgets what no rule reads: when the policy's own mails went out, the nodes' memories
    /// of reports their peers have moved past (outside a run), the reports' fence counters and
    /// pause ages.
    fn forget_unread(&mut self, keys: &[String]) {
        let current: BTreeMap<(String, String), u64> = self
            .tables
            .iter()
            .enumerate()
            .flat_map(|(l, t)| {
                t.rows.iter().filter_map(move |r| {
                    r.report
                        .as_ref()
                        .map(|p| ((keys[l].clone(), r.host.clone()), p.seq))
                })
            })
            .collect();
        for n in self.nodes.iter_mut() {
            // The policy's own mails are not checked: when they went out is not kept.
            n.memo.forget_policy_mailed();
        }
        for n in self.nodes.iter_mut().filter(|n| n.run.is_none()) {
            n.memo
                .forget_stale(|k, h| current.get(&(k.to_string(), h.to_string())).copied());
        }
        for t in &mut self.tables {
            for r in &mut t.rows {
                if let Some(p) = &mut r.report {
                    p.fences = 0;
                    p.paused_for = p.paused_for.map(|_| 0);
                }
            }
        }
    }

    /// Every report sequence the world holds, per link key and host: in the tables, the
    /// nodes' memories and the rows their runs have read.
    fn sequences(&self, keys: &[String]) -> BTreeMap<(String, String), BTreeSet<u64>> {
        let mut seqs: BTreeMap<(String, String), BTreeSet<u64>> = BTreeMap::new();
        let mut add = |k: &str, h: &str, s: u64| {
            seqs.entry((k.to_string(), h.to_string()))
                .or_default()
                .insert(s);
        };
        for (l, t) in self.tables.iter().enumerate() {
            for r in &t.rows {
                if let Some(p) = &r.report {
                    add(&keys[l], &r.host, p.seq);
                }
            }
        }
        for n in &self.nodes {
            for (k, h, s) in n.memo.sequences() {
                add(&k, &h, s);
            }
            for c in n.run.iter().flat_map(|r| &r.calls) {
                if let (Answer::Rows(rows), Some(k)) = (&c.answer, call_key(&c.asked, keys)) {
                    for r in rows {
                        if let Some(p) = &r.report {
                            add(k, &r.host, p.seq);
                        }
                    }
                }
            }
        }
        seqs
    }

    /// Renumbers every report sequence by its rank among `seqs` (1, 2, ...).
    fn renumber(&mut self, keys: &[String], seqs: &BTreeMap<(String, String), BTreeSet<u64>>) {
        let rank = |k: &str, h: &str, s: u64| -> u64 {
            seqs.get(&(k.to_string(), h.to_string()))
                .and_then(|set| set.iter().position(|v| *v == s))
                .map_or(s, |p| p as u64 + 1)
        };
        for (l, t) in self.tables.iter_mut().enumerate() {
            for r in &mut t.rows {
                if let Some(p) = &mut r.report {
                    p.seq = rank(&keys[l], &r.host, p.seq);
                }
            }
        }
        for n in &mut self.nodes {
            n.memo.rewrite(|t| t, |k, h, s| rank(k, h, s));
            for c in n.run.iter_mut().flat_map(|r| r.calls.iter_mut()) {
                let key = call_key(&c.asked, keys).cloned();
                if let (Answer::Rows(rows), Some(k)) = (&mut c.answer, key) {
                    for r in rows {
                        if let Some(p) = &mut r.report {
                            p.seq = rank(&k, &r.host, p.seq);
                        }
                    }
                }
            }
        }
    }

    /// A 128-bit fingerprint of the canonical world: two worlds with the same fingerprint are
    /// taken to be the same state.
    pub fn fingerprint(&self) -> u128 {
        let mut a = std::collections::hash_map::DefaultHasher::new();
        (0x5eed_u32, self).hash(&mut a);
        let mut b = std::collections::hash_map::DefaultHasher::new();
        (0xfeed_u64, self).hash(&mut b);
        (u128::from(a.finish()) << 64) | u128::from(b.finish())
    }
}

/// The link key a call was about, for calls that read rows (`rows <key>`).
fn call_key<'a>(asked: &str, keys: &'a [String]) -> Option<&'a String> {
    let k = asked.strip_prefix("rows ")?;
    keys.iter().find(|key| key.as_str() == k)
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Server::Primary => "Primary",
            Server::NonPrimary => "non-Primary",
            Server::Down => "down",
        })
    }
}
