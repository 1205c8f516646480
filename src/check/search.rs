//! The breadth-first search and the properties checked on every state and every step.
//!
//! * **one channel**: in the Primary component, at most one node runs a channel for a link
//!   that can apply (started, its SQL thread not stopped by an error), the channel of a fenced
//!   node until it is stopped included;
//! * **leaves outside Primary**: a node outside the Primary component runs no channel once it
//!   has completed a run that started there;
//! * **rows match channels**: after a completed run of a node that acted (Primary, not
//!   paused) and is still Primary, its row says `Yes` exactly where its channel runs;
//! * **bounded liveness**: when no fault happened for K ticks, a node with a running manager
//!   is Primary and a source of the link is up and in its cluster, a replica carries data;
//! * **no flapping**: a step that is not a fault never stops or moves the only replica that
//!   carries data while its manager runs and it reports (within the heartbeat timeout);
//! * **mail cap**: a completed run sent at most `[policy] max_mails` mails per link;
//! * **mail once per outage**: a node mails a host event about a link at most once while the
//!   link stays as it was when it last mailed it ([`World::outage`]);
//! * and a replayed run takes the path its log says (the checker's own soundness).

use super::world::{Event, Manager, Server, SourceState, World};
use super::{Completed, Model, Step};
use crate::db::state::Role;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

/// A property the checker verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Property {
    OneChannel,
    LeavesOutsidePrimary,
    RowsMatchChannels,
    Liveness,
    NoFlapping,
    MailCap,
    MailOnce,
    Determinism,
}

impl Property {
    pub const ALL: [Property; 8] = [
        Property::OneChannel,
        Property::LeavesOutsidePrimary,
        Property::RowsMatchChannels,
        Property::Liveness,
        Property::NoFlapping,
        Property::MailCap,
        Property::MailOnce,
        Property::Determinism,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Property::OneChannel => {
                "safety: at most one node of the Primary component runs a channel that can apply, per link"
            }
            Property::LeavesOutsidePrimary => {
                "safety: a node outside the Primary component runs no channel after its next run"
            }
            Property::RowsMatchChannels => {
                "safety: Yes rows and running channels agree after every completed run"
            }
            Property::Liveness => {
                "bounded liveness: K quiet ticks after the longest threshold, a replica carries data"
            }
            Property::NoFlapping => {
                "no flapping: a healthy replica with a healthy source is never moved"
            }
            Property::MailCap => "mail: a run sends at most [policy] max_mails per link",
            Property::MailOnce => {
                "mail: a node mails each event once per outage (while the link stays the same)"
            }
            Property::Determinism => "determinism: a replayed run takes the same path",
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A property that failed: the events from the initial world to the violation.
#[derive(Clone, Debug)]
pub struct Violation {
    pub property: Property,
    pub message: String,
    pub events: Vec<Event>,
}

/// What a search found.
pub struct Report {
    pub states: usize,
    pub transitions: usize,
    /// The longest shortest path explored, in events.
    pub depth: usize,
    pub elapsed: Duration,
    /// Every state was explored (the bound on states was not reached).
    pub complete: bool,
    /// The first (shortest) violation of each property.
    pub violations: Vec<Violation>,
    /// The most quiet ticks seen in a state where a replica could carry data and none did:
    /// the liveness bound that holds is one more.
    pub worst_recovery: Option<u8>,
    /// Blocks of queued worlds the search compressed (see `Bounds::unsealed`).
    pub sealed_blocks: usize,
}

impl Report {
    pub fn violation(&self, p: Property) -> Option<&Violation> {
        self.violations.iter().find(|v| v.property == p)
    }
}

/// Explores every behaviour within the model's bounds. `stop_at_first` ends the search at
/// the first violation (the mutants' tests).
pub fn explore(model: &Model, stop_at_first: bool) -> Report {
    explore_with(model, stop_at_first, &|_, _, _, _| {})
}

/// What a search says every few seconds: `(states, queued, elapsed, failed)`, `failed` the
/// properties that have failed so far, so that a long check that is stopped still tells what
/// it found.
pub type OnProgress<'a> = &'a dyn Fn(usize, usize, Duration, &[Property]);

/// As [`explore`], calling `progress` every few seconds.
pub fn explore_with(model: &Model, stop_at_first: bool, progress: OnProgress<'_>) -> Report {
    let started = Instant::now();
    let mut told = Instant::now();
    let init = model.initial();
    let mut seen: HashMap<u128, u32> = HashMap::new();
    let mut parents: Vec<(u32, Option<Event>, u32)> = Vec::new();
    seen.insert(init.fingerprint(), 0);
    parents.push((0, None, 0));
    let mut queue = Frontier::new(model.bounds.unsealed);
    queue.push(0, init);
    let mut found: HashMap<Property, (u32, Option<Event>, String)> = HashMap::new();
    let mut transitions = 0;
    let mut depth = 0;
    let mut worst: Option<u8> = None;
    let mut complete = true;
    'search: while let Some((id, w)) = queue.pop() {
        debug_assert_eq!(
            seen.get(&w.fingerprint()),
            Some(&id),
            "a queued world changed"
        );
        if told.elapsed() >= Duration::from_secs(5) {
            told = Instant::now();
            let mut failed: Vec<Property> = found.keys().copied().collect();
            failed.sort();
            progress(parents.len(), queue.len(), started.elapsed(), &failed);
        }
        let shape = model.shape_of(&w);
        for e in model.events(&w) {
            let step = model.step_from(&w, shape, &e, None);
            transitions += 1;
            for (p, msg) in step_violations(model, &w, &e, &step) {
                found.entry(p).or_insert((id, Some(e.clone()), msg));
            }
            let fp = step.world.fingerprint();
            if seen.contains_key(&fp) {
                continue;
            }
            let nid = parents.len() as u32;
            let d = parents[id as usize].2 + 1;
            depth = depth.max(d as usize);
            seen.insert(fp, nid);
            parents.push((id, Some(e.clone()), d));
            for (p, msg) in state_violations(model, &step.world, &mut worst) {
                found.entry(p).or_insert((nid, None, msg));
            }
            if stop_at_first && !found.is_empty() {
                break 'search;
            }
            if parents.len() >= model.bounds.max_states {
                complete = false;
                break 'search;
            }
            queue.push(nid, step.world);
        }
    }
    let mut violations: Vec<Violation> = found
        .into_iter()
        .map(|(property, (id, last, message))| {
            let mut events = path(&parents, id);
            events.extend(last);
            Violation {
                property,
                message,
                events,
            }
        })
        .collect();
    violations.sort_by_key(|v| v.property);
    Report {
        states: parents.len(),
        transitions,
        depth,
        elapsed: started.elapsed(),
        complete,
        violations,
        worst_recovery: worst,
        sealed_blocks: queue.sealed_blocks,
    }
}

/// The worlds still to explore, oldest first, with their state ids. A deep check keeps
/// millions of them waiting (a world is about 11 KB in memory, mostly its nodes' memories),
/// so past `unsealed` queued worlds, all but the newest and the oldest [`Frontier::BLOCK`]
/// wait sealed: a block is serialised (JSON) and compressed (LZ4) as one, and worlds queued
/// one after another are alike, so it compresses well.
struct Frontier {
    /// The oldest, unsealed: popped from the front.
    head: VecDeque<(u32, World)>,
    /// Sealed blocks, oldest first.
    sealed: VecDeque<Vec<u8>>,
    /// The newest, not yet sealed.
    tail: VecDeque<(u32, World)>,
    len: usize,
    /// Queued worlds kept unsealed before the queue seals any.
    unsealed: usize,
    /// Blocks sealed so far.
    sealed_blocks: usize,
}

impl Frontier {
    const BLOCK: usize = 512;

    fn new(unsealed: usize) -> Frontier {
        Frontier {
            head: VecDeque::new(),
            sealed: VecDeque::new(),
            tail: VecDeque::new(),
            len: 0,
            unsealed,
            sealed_blocks: 0,
        }
    }

    fn push(&mut self, id: u32, w: World) {
        self.tail.push_back((id, w));
        self.len += 1;
        while self.len > self.unsealed && self.tail.len() >= Self::BLOCK {
            let block: Vec<(u32, World)> = self.tail.drain(..Self::BLOCK).collect();
            let json = serde_json::to_vec(&block)
                .expect("a world serialises: it holds no map with non-string keys");
            self.sealed
                .push_back(lz4_flex::compress_prepend_size(&json));
            self.sealed_blocks += 1;
        }
    }

    fn pop(&mut self) -> Option<(u32, World)> {
        if self.head.is_empty() {
            if let Some(sealed) = self.sealed.pop_front() {
                let json = lz4_flex::decompress_size_prepended(&sealed)
                    .expect("a block this queue compressed");
                let block: Vec<(u32, World)> =
                    serde_json::from_slice(&json).expect("a block this queue serialised");
                self.head = block.into();
            } else {
                std::mem::swap(&mut self.head, &mut self.tail);
            }
        }
        let next = self.head.pop_front()?;
        self.len -= 1;
        Some(next)
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// The events from the initial world to state `id`.
fn path(parents: &[(u32, Option<Event>, u32)], mut id: u32) -> Vec<Event> {
    let mut events = Vec::new();
    while let (p, Some(e), _) = &parents[id as usize] {
        events.push(e.clone());
        id = *p;
    }
    events.reverse();
    events
}

/// The properties of one state.
pub fn state_violations(
    model: &Model,
    w: &World,
    worst: &mut Option<u8>,
) -> Vec<(Property, String)> {
    let mut v = Vec::new();
    let links = model.links();
    for (l, link) in links.iter().enumerate() {
        let running: Vec<&str> = (0..w.nodes.len())
            .filter(|&i| w.nodes[i].server == Server::Primary && w.applies(i, l))
            .map(|i| w.nodes[i].name.as_str())
            .collect();
        if running.len() > 1 {
            v.push((
                Property::OneChannel,
                format!("{}: {} all run a channel", link.name, running.join(", ")),
            ));
        }
        for (i, n) in w.nodes.iter().enumerate() {
            if n.server == Server::NonPrimary && n.ran_outside && w.runs(i, l) {
                v.push((
                    Property::LeavesOutsidePrimary,
                    format!(
                        "{}: {} is outside the Primary component and still runs its channel after a run",
                        link.name, n.name
                    ),
                ));
            }
        }
        let can = w
            .nodes
            .iter()
            .any(|n| n.server == Server::Primary && n.manager == Manager::Cron)
            && link
                .sources
                .iter()
                .any(|s| w.sources.get(&s.address()) == Some(&SourceState::Up));
        let carried = (0..w.nodes.len()).any(|i| w.carries_data(i, l));
        if can && !carried {
            *worst = Some(worst.map_or(w.quiet, |q| q.max(w.quiet)));
            if w.quiet >= model.liveness_bound() {
                v.push((
                    Property::Liveness,
                    format!(
                        "{}: no replica carries data, though a node with a running manager and a healthy source exist, and no fault happened for {} tick(s) or more ({} after the longest threshold, tick {}), or since the cluster was last whole with a replica on every link (the model counts that as {} quiet ticks): the link was given up, or never taken, without a fault",
                        link.name,
                        w.quiet,
                        model.bounds.k,
                        model.clock.ticks.longest(),
                        model.liveness_bound()
                    ),
                ));
            }
        }
    }
    v
}

/// The properties of one step from `before`.
fn step_violations(
    model: &Model,
    before: &World,
    e: &Event,
    step: &Step,
) -> Vec<(Property, String)> {
    let mut v = Vec::new();
    let after = &step.world;
    if let Some(why) = &step.diverged {
        v.push(determinism(model, why));
    }
    if let Some(c) = &step.completed {
        v.extend(mail_cap(model, after, c));
        v.extend(mail_once(model, after, c));
        v.extend(rows_match_channels(model, after, c));
    }
    if !e.is_fault() {
        v.extend(no_flapping(model, before, after));
    }
    v
}

/// [`Property::Determinism`]: a replay of a run with the same answers took another path
/// (`why`).
fn determinism(model: &Model, why: &str) -> (Property, String) {
    let reads = model.policy.clock_reads();
    let cause = if reads.is_empty() {
        "the policy took another path when its run was replayed with the same answers from the servers; look for a value that changes between two runs".to_string()
    } else {
        format!(
            "the policy reads the clock ({}), which differs between a run and its replay with the same answers from the servers: compare the ages rows(link) gives (heartbeat_age, update_age) instead",
            reads.join(", ")
        )
    };
    (
        Property::Determinism,
        format!("{cause} (the replay: {why})"),
    )
}

/// [`Property::MailCap`]: a completed run sent more mails than `max_mails` for each link.
fn mail_cap(model: &Model, after: &World, c: &Completed) -> Option<(Property, String)> {
    let cap = model.cfg().policy.limits.max_mails * model.links().len();
    (c.mails.len() > cap).then(|| {
        (
            Property::MailCap,
            format!(
                "{} sent {} mails in one run, more than [policy] max_mails = {} for each of {} link(s)",
                after.nodes[c.node].name,
                c.mails.len(),
                model.cfg().policy.limits.max_mails,
                model.links().len()
            ),
        )
    })
}

/// [`Property::MailOnce`]: a completed run mailed an event again about a link that had not
/// changed since.
fn mail_once(model: &Model, after: &World, c: &Completed) -> Vec<(Property, String)> {
    c.repeated
        .iter()
        .map(|(l, event)| {
            (
                Property::MailOnce,
                format!(
                    "{} mailed {event:?} about {} again, though the link had not changed since it last mailed it: its table, channels, sources and servers were the same, and no age had crossed a threshold",
                    after.nodes[c.node].name,
                    model.links()[*l].key
                ),
            )
        })
        .collect()
}

/// [`Property::RowsMatchChannels`]: after a run that acted in the Primary component, the
/// node's rows say Yes exactly where its channels run.
fn rows_match_channels(model: &Model, after: &World, c: &Completed) -> Vec<(Property, String)> {
    let mut v = Vec::new();
    if !c.acted || after.nodes[c.node].server != Server::Primary {
        return v;
    }
    for (l, link) in model.links().iter().enumerate() {
        let yes = after.tables[l]
            .rows
            .iter()
            .any(|r| r.host == after.nodes[c.node].name && r.role == Role::Yes);
        let runs = after.runs(c.node, l);
        if yes != runs {
            v.push((
                Property::RowsMatchChannels,
                format!(
                    "{}: after its run {}'s row {} Yes but its channel {}",
                    link.name,
                    after.nodes[c.node].name,
                    if yes { "says" } else { "does not say" },
                    if runs { "runs" } else { "does not run" }
                ),
            ));
        }
    }
    v
}

/// [`Property::NoFlapping`]: a step without a fault moved or stopped the one replica of a
/// link while it was healthy.
fn no_flapping(model: &Model, before: &World, after: &World) -> Vec<(Property, String)> {
    let mut v = Vec::new();
    for (l, link) in model.links().iter().enumerate() {
        let Some(r) = healthy_replica(model, before, after, l) else {
            continue;
        };
        let node = &before.nodes[r];
        let was = before.nodes[r].channels[l]
            .as_ref()
            .map(|c| c.source.clone());
        let now = after.nodes[r].channels[l]
            .as_ref()
            .filter(|c| c.started)
            .map(|c| c.source.clone());
        if now != was {
            v.push((
                Property::NoFlapping,
                format!(
                    "{}: {} replicated from {} with a healthy source and was {}",
                    link.name,
                    node.name,
                    was.unwrap_or_default(),
                    match now {
                        Some(s) => format!("moved to {s}"),
                        None => "stopped".into(),
                    }
                ),
            ));
        }
    }
    v
}

/// The one node carrying link `l`'s data before the step, when it is healthy there and not
/// handed off by a switchover after it: the replica [`Property::NoFlapping`] must keep.
fn healthy_replica(model: &Model, before: &World, after: &World, l: usize) -> Option<usize> {
    let carriers: Vec<usize> = (0..before.nodes.len())
        .filter(|&i| before.carries_data(i, l))
        .collect();
    let [r] = carriers[..] else { return None };
    let node = &before.nodes[r];
    let yes = before.tables[l]
        .rows
        .iter()
        .any(|row| row.host == node.name && row.role == Role::Yes);
    // Healthy: its manager runs and it reported within the threshold (a replica that
    // went silent is replaced by design, also if its manager has just come back).
    let fresh = before.tables[l].rows.iter().any(|row| {
        row.host == node.name
            && row
                .heartbeat_age
                .is_some_and(|a| a <= model.heartbeat_ticks())
    });
    // The operator's switchover moves it on purpose: once the target is ready, the old
    // replica stops (a step of its own in a split run) and hands off.
    let handed_off = after.tables[l].switchover.as_ref().is_some_and(|x| {
        use crate::db::switchover::Phase;
        x.from == node.name && matches!(x.phase, Phase::Ready | Phase::Stopped)
    });
    if node.manager == Manager::Stopped || !yes || !fresh || handed_off {
        return None;
    }
    Some(r)
}
