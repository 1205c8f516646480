//! The model checker: an explicit-state search over every interleaving of node runs, faults
//! and time in one cluster, where every node's run is the real host and policy
//! (`policy::Policy::run` over `app::run_ctx`) on the simulated executor (`exec::sim`).
//! Nothing of the election is drawn again here: [`world`] models what is outside the tool
//! (servers, Galera, sources, time), [`node`] connects one run to it, [`search`] explores and
//! checks the properties, and [`trace`] turns a violation into a trace and scenario files.
//!
//! Why our own search rather than a crate such as stateright: a state here holds what the
//! real code needs to run (rows, reports, memories, a split run's log), successors come from
//! running the real policy, which is neither `Send` nor cheap to hash as Rust values, and the
//! bounded-liveness and no-flapping checks need the fault counter and the transition in hand.
//! The search is a breadth-first search with 128-bit fingerprints: the first violation found
//! has a shortest trace.

pub mod node;
pub mod search;
pub mod time;
pub mod trace;
pub mod world;

use crate::config::topology::{self, Link};
use crate::config::{Config, LinkConfig, SourceAddr, TopologySource};
use crate::db::flavor::Flavor;
use crate::db::sql::Secret;
use crate::db::state::{Generation, Me, Schema};
use crate::error::{Error, Result};
use crate::exec::sim::NOW;
use crate::policy::Policy;
use node::{Mutant, Progress, WorldBackend};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;
use time::{Clock, Thresholds};
use world::{Event, Fault, Sent, Server, World};

/// The bounds of one check.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Links (remote clusters), each with its own sources.
    pub links: usize,
    /// Source candidates per link.
    pub sources: usize,
    /// Faults in one behaviour; each may heal later (a restart, a rejoin, ...), uncounted.
    pub faults: u8,
    /// The kinds of fault injected.
    pub kinds: BTreeSet<Fault>,
    /// Runs split at every host call (every interleaving of concurrent runs), or atomic.
    pub split: bool,
    /// Bounded liveness: once a node with a running manager and a healthy source exist and
    /// no fault happened for this many ticks after the longest threshold (see
    /// [`Model::liveness_bound`]), a replica carries data.
    pub k: u8,
    /// `[timeouts] heartbeat` and `failed`, in seconds.
    pub heartbeat: i64,
    pub failed: i64,
    /// Split runs in progress at once, at most.
    pub concurrent: usize,
    /// Time stops after this many ticks (a horizon), or never.
    pub ticks: Option<u8>,
    /// Stop after this many states (the report then says the check is incomplete).
    pub max_states: usize,
    /// Queued worlds kept as they are; past this many, the search's queue compresses the older
    /// ones in blocks (`search::Frontier`). The standard models never queue that many.
    pub unsealed: usize,
    /// Every node's server refuses the fence login from the start.
    pub fences_refused: bool,
    /// The nodes' weights, by index (a node without one weighs 0).
    pub weights: Vec<i64>,
}

impl Bounds {
    /// The check CI runs on every change: one link with two sources, atomic runs, one fault
    /// of any kind (and its healing); one link, runs split at their host calls, no fault,
    /// for the first two ticks (the concurrent first election); two links, atomic, no fault,
    /// one node heavier than the others (the links spread).
    pub fn standard() -> Vec<Bounds> {
        let all: BTreeSet<Fault> = Fault::ALL.into_iter().collect();
        let base = Bounds {
            nodes: 3,
            links: 1,
            sources: 2,
            faults: 1,
            kinds: all.clone(),
            split: false,
            k: 5,
            heartbeat: 2,
            failed: 3,
            concurrent: 3,
            ticks: None,
            max_states: 2_000_000,
            unsealed: 100_000,
            fences_refused: false,
            weights: Vec::new(),
        };
        vec![
            base.clone(),
            Bounds {
                split: true,
                faults: 0,
                concurrent: 2,
                ticks: Some(1),
                ..base.clone()
            },
            // The nodes weigh differently here, so that a policy's weight logic (the built-in
            // "highest weight first") is exercised.
            Bounds {
                links: 2,
                faults: 0,
                weights: vec![0, 0, 5],
                ..base.clone()
            },
            // Every node's server refuses the fence login from the start (the manager's user
            // exists only @'localhost'), and one node fault: a silent replica that is still a
            // member must never be replaced beside its running channel.
            Bounds {
                fences_refused: true,
                kinds: [Fault::Crash, Fault::Partition, Fault::ManagerStops]
                    .into_iter()
                    .collect(),
                ..base
            },
        ]
    }

    /// The bounds as a site's config sets them: its `[timeouts]` heartbeat and failed, and
    /// its node's `weight`, given to the last node (the one the index ranks last, so that a
    /// weight that beats the index is exercised) in place of the model's own weights.
    pub fn for_site(mut self, site: &Config) -> Bounds {
        self.heartbeat = site.timeouts.heartbeat;
        self.failed = site.timeouts.failed;
        if let Some(w) = site.local.weight.filter(|w| *w != 0) {
            self.weights = vec![0; self.nodes];
            if let Some(last) = self.weights.last_mut() {
                *last = w;
            }
        }
        self
    }

    /// These bounds with another cluster size, number of links or bound on states (`policy
    /// verify --nodes/--links/--max-states`). A weighted model keeps its heaviest weight on the
    /// last node, so that a weight that beats the index is still exercised.
    pub fn resized(
        mut self,
        nodes: Option<usize>,
        links: Option<usize>,
        max_states: Option<usize>,
    ) -> Bounds {
        if let Some(n) = nodes {
            if let Some(heaviest) = self.weights.iter().copied().max().filter(|w| *w != 0) {
                self.weights = vec![0; n];
                if let Some(last) = self.weights.last_mut() {
                    *last = heaviest;
                }
            }
            self.nodes = n;
            self.concurrent = self.concurrent.min(n);
        }
        if let Some(l) = links {
            self.links = l;
        }
        if let Some(m) = max_states {
            self.max_states = m;
        }
        self
    }

    /// Node `i`'s weight.
    pub fn weight(&self, i: usize) -> i64 {
        self.weights.get(i).copied().unwrap_or(0)
    }

    pub fn describe(&self) -> String {
        let kinds: Vec<String> = self
            .kinds
            .iter()
            .map(|k| format!("{k:?}").to_lowercase())
            .collect();
        let faults = if self.faults == 0 {
            "no fault".to_string()
        } else {
            format!("up to {} fault(s) ({})", self.faults, kinds.join(", "))
        };
        let mut horizon = self.ticks.map_or(String::new(), |t| {
            format!(", for the first {} tick(s)", t + 1)
        });
        if self.split && self.concurrent < self.nodes {
            horizon.push_str(&format!(
                ", at most {} runs in progress at once",
                self.concurrent
            ));
        }
        if self.fences_refused {
            horizon.push_str(", every node's server refusing the fence login");
        }
        if self.weights.iter().any(|w| *w != 0) {
            let w: Vec<String> = (0..self.nodes)
                .map(|i| format!("DC1-{} {}", i + 1, self.weight(i)))
                .collect();
            horizon.push_str(&format!(", weights {}", w.join(", ")));
        }
        format!(
            "{} nodes, {} link(s) with {} sources each, {} runs, {faults}, heartbeat {} s, failed {} s, a tick per round of runs{horizon}",
            self.nodes,
            self.links,
            self.sources,
            if self.split {
                "split at their visible host calls"
            } else {
                "atomic"
            },
            self.heartbeat,
            self.failed
        )
    }
}

/// One check: the policy, the bounds, and what every run of the model is given.
pub struct Model<'p> {
    pub policy: &'p Policy,
    pub bounds: Bounds,
    pub mutant: Option<Mutant>,
    cfg: Config,
    links: Vec<Link>,
    schema: Schema,
    flavor: Flavor,
    names: Vec<String>,
    /// What ages are compared with, and the ticks that stand for seconds (see [`time`]).
    pub clock: Clock,
    /// The policy's timeout hooks that failed when asked for their seconds: they give no
    /// threshold (the runs meet the same error), and the check says so.
    unread: Vec<String>,
    /// What every host call's simulated backend shares: the links, their source addresses,
    /// the mail config (built once, not per call).
    shared_links: Vec<Rc<Link>>,
    addresses: Vec<Vec<String>>,
    mail: Rc<crate::config::MailConfig>,
}

/// A step's outcome.
pub struct Step {
    pub world: World,
    /// The run completed in this step: whether it acted (Primary at its start, not paused)
    /// and the errors its links returned.
    pub completed: Option<Completed>,
    /// The replay took another path than the log.
    pub diverged: Option<String>,
}

pub struct Completed {
    pub node: usize,
    pub acted: bool,
    /// The mails the run sent.
    pub mails: Vec<Sent>,
    /// The events it mailed again about a link that had not changed since the node last
    /// mailed them ([`World::outage`]), as `(link, event)`.
    pub repeated: Vec<(usize, String)>,
    pub errors: Vec<(String, String)>,
}

/// The remote cluster of link `l`.
pub fn remote(l: usize) -> String {
    format!("DC{}", l + 2)
}

/// Source `s` of link `l`.
pub fn source(l: usize, s: usize) -> String {
    format!("10.0.{}.{}:3306", l + 2, s + 1)
}

/// The config the model's runs read: the defaults, or a site's `[policy]` and `[timeouts]`
/// with the bounds' heartbeat and failed, and the model's links with the site's source
/// weights (by position).
fn model_config(bounds: &Bounds, site: Option<&Config>) -> Result<Config> {
    let mut cfg = Config::defaults();
    if let Some(s) = site {
        cfg.policy = s.policy.clone();
        cfg.timeouts = s.timeouts.clone();
    }
    let source_weight = |l: usize, s: usize| {
        site.and_then(|c| c.links.get(l))
            .and_then(|link| link.sources.get(s))
            .map_or(0, |a| a.weight)
    };
    cfg.timeouts.heartbeat = bounds.heartbeat;
    cfg.timeouts.failed = bounds.failed;
    cfg.mail.to = vec!["dba@example.com".into()];
    cfg.topology = TopologySource::Config;
    for l in 0..bounds.links {
        cfg.links.push(LinkConfig {
            remote: remote(l),
            sources: (0..bounds.sources)
                .map(|s| {
                    SourceAddr::parse(&source(l, s), 3306).map(|mut a| {
                        a.weight = source_weight(l, s);
                        a
                    })
                })
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::Model(format!("model sources: {e}")))?,
            user: "repl".into(),
            password: Secret::new("model-password"),
            gtid_domains: None,
            tls: None,
            line: None,
        });
    }
    Ok(cfg)
}

/// The schema of the model's servers, with a switchover table only where a fault may ask for
/// a switchover.
fn model_schema(bounds: &Bounds) -> Schema {
    let generation = Generation::Multi {
        role_column: "isReplica",
        has_weight: true,
        has_current_source: true,
    };
    // No history (nothing reads it to decide). A switchover table only where an operator may
    // ask for a switchover: elsewhere no run reads the table (as on a live node without it),
    // and the split runs keep their calls.
    let switchover = bounds.faults > 0 && bounds.kinds.contains(&Fault::Switchover);
    Schema::simulated(generation, false, switchover)
}

impl<'p> Model<'p> {
    pub fn new(policy: &'p Policy, bounds: Bounds, mutant: Option<Mutant>) -> Result<Model<'p>> {
        Model::with_site(policy, bounds, mutant, None)
    }

    /// A model whose runs read a site's config as `policy verify --config` checks it: its
    /// `[policy]` (vars, `distribute`, limits), its `[timeouts]`, and the weights of its
    /// links' sources (by position; the model's sources are its own). Heartbeat and failed
    /// are the bounds' (see [`Bounds::for_site`]).
    pub fn with_site(
        policy: &'p Policy,
        bounds: Bounds,
        mutant: Option<Mutant>,
        site: Option<&Config>,
    ) -> Result<Model<'p>> {
        let cfg = model_config(&bounds, site)?;
        let schema = model_schema(&bounds);
        let links = topology::resolve(&cfg, "DC1", &schema, None)?;
        let flavor = Flavor::detect("10.11.6-MariaDB", "")
            .map_err(|e| Error::Model(format!("model flavour: {e}")))?;
        let names = (0..bounds.nodes)
            .map(|i| format!("DC1-{}", i + 1))
            .collect();
        let settings = crate::app::settings(&cfg);
        let vars = cfg.policy.vars.values().filter_map(|v| v.as_integer());
        let (constants, unread) = policy.time_constants(&settings);
        let clock = Clock::new(Thresholds::new(
            [cfg.timeouts.heartbeat, cfg.timeouts.failed]
                .into_iter()
                .chain(constants)
                .chain(vars),
        ));
        Ok(Model {
            policy,
            bounds,
            mutant,
            schema,
            flavor,
            names,
            clock,
            unread,
            shared_links: links.iter().cloned().map(Rc::new).collect(),
            addresses: links
                .iter()
                .map(|l| l.sources.iter().map(SourceAddr::address).collect())
                .collect(),
            mail: Rc::new(cfg.mail.clone()),
            links,
            cfg,
        })
    }

    /// `[timeouts] heartbeat` in the model's ticks.
    pub fn heartbeat_ticks(&self) -> i64 {
        self.clock.ticks(self.bounds.heartbeat)
    }

    /// Bounded liveness, in ticks after the last fault: K after the longest threshold.
    pub fn liveness_bound(&self) -> u8 {
        let longest = self.clock.ticks.longest();
        u8::try_from(longest + i64::from(self.bounds.k)).unwrap_or(u8::MAX)
    }

    /// The link keys, by link.
    pub fn keys(&self) -> Vec<String> {
        self.links.iter().map(|l| l.key.to_string()).collect()
    }

    pub fn links(&self) -> &[Link] {
        &self.links
    }

    pub fn cfg(&self) -> &Config {
        &self.cfg
    }

    /// The first world: a fresh cluster.
    pub fn initial(&self) -> World {
        let sources: Vec<String> = (0..self.bounds.links)
            .flat_map(|l| (0..self.bounds.sources).map(move |s| source(l, s)))
            .collect();
        let mut w = World::new(&self.names, self.bounds.links, &sources, self.bounds.faults);
        w.ticks_left = self.bounds.ticks;
        w.concurrent = self.bounds.concurrent;
        w.lag = self.clock.seconds.cap();
        for n in &mut w.nodes {
            n.refuses_fence = self.bounds.fences_refused;
        }
        w.canonicalize(&self.keys());
        w
    }

    /// Once the cluster is whole again (every node Primary with its manager running and
    /// reported within the heartbeat timeout, every source up) and a replica carries data on
    /// every link, how long ago the last fault was
    /// no longer matters: the quiet counter saturates, so a healthy cluster is one state
    /// however long it runs (and a link that stops carrying data without a new fault fails
    /// bounded liveness at once).
    fn settle_quiet(&self, w: &mut World) {
        let n = w.nodes.len();
        let keys = self.keys();
        // Every row is fresh as every node judges it (its report sequence moved on that node's
        // memory), with a tick to spare: no node is about to replace anyone when time passes.
        let fresh_everywhere = (0..n).all(|i| {
            w.tables.iter().zip(&keys).all(|(t, key)| {
                let f = w.nodes[i]
                    .memo
                    .freshness(key, &self.names[i], self.heartbeat_ticks());
                t.rows
                    .iter()
                    .all(|r| f.age(r).is_some_and(|a| a < self.heartbeat_ticks()))
            })
        });
        let whole = w
            .nodes
            .iter()
            .all(|n| n.server == Server::Primary && n.manager == world::Manager::Cron)
            && w.sources.values().all(|s| *s == world::SourceState::Up)
            && w.tables.iter().all(|t| {
                t.rows
                    .iter()
                    .all(|r| r.heartbeat_age.is_some_and(|a| a <= self.heartbeat_ticks()))
            })
            && fresh_everywhere
            // A switchover under way is a disturbance still in progress.
            && w.tables.iter().all(|t| {
                t.switchover
                    .as_ref()
                    .is_none_or(|r| !r.pending(self.heartbeat_ticks()))
            });
        if whole && (0..self.links.len()).all(|l| (0..n).any(|i| w.carries_data(i, l))) {
            w.quiet = self.liveness_bound();
        }
    }

    /// The events possible in a world. Time passes by one tick, or, after a round that changed
    /// nothing but refreshed ages, up to the tick before some age reaches a threshold.
    pub fn events(&self, w: &World) -> Vec<Event> {
        let wait = match w.room(&self.clock.ticks) {
            Some(r) if !w.changed && r > 1 => r,
            _ => 1,
        };
        w.events(&self.bounds.kinds, wait)
    }

    /// One event on a world; `out` collects the statements a run prints (for traces).
    pub fn step(&self, w: &World, e: &Event, out: Option<Rc<RefCell<Vec<u8>>>>) -> Step {
        self.step_from(w, self.shape_of(w), e, out)
    }

    /// What a round may change of `w` ([`World::shape`]), when its round has changed nothing
    /// yet: the search computes it once for all the events of a state.
    pub fn shape_of(&self, w: &World) -> Option<u128> {
        (!w.changed).then(|| w.shape(&self.clock.ticks))
    }

    /// [`Model::step`], given `w`'s shape from [`Model::shape_of`].
    pub fn step_from(
        &self,
        w: &World,
        shape: Option<u128>,
        e: &Event,
        out: Option<Rc<RefCell<Vec<u8>>>>,
    ) -> Step {
        let mut step = self.step_here(w, e, out);
        if !matches!(e, Event::Tick(_)) {
            // Once a round has changed something, it has: no need to compare again.
            step.world.changed = shape.is_none_or(|s| s != step.world.shape(&self.clock.ticks));
        }
        self.note_mails(w, &mut step);
        step
    }

    /// The mail property's memory: the completed run's event mails are put against what its
    /// node mailed in each link's current outage (a repeat is recorded in
    /// [`Completed::repeated`]); a link that changed in this step starts a new outage. A
    /// run's mails belong to the world it started from, so they are noted before that.
    fn note_mails(&self, before: &World, step: &mut Step) {
        let after = &mut step.world;
        if let Some(c) = &mut step.completed {
            for m in &c.mails {
                let Sent::Event(once) = m else { continue };
                let Some(l) = self.links.iter().position(|k| k.key == once.link) else {
                    continue;
                };
                if !after.mailed[l].insert((c.node, once.event.clone())) {
                    c.repeated.push((l, once.event.clone()));
                }
            }
        }
        for (l, sources) in self.addresses.iter().enumerate() {
            if before.outage(l, sources, &self.clock.ticks)
                != after.outage(l, sources, &self.clock.ticks)
            {
                after.mailed[l].clear();
            }
        }
    }

    /// One event on a world: a run of a node's policy (started or resumed), or another event.
    fn step_here(&self, w: &World, e: &Event, out: Option<Rc<RefCell<Vec<u8>>>>) -> Step {
        let Event::Run(i) = e else {
            return self.step_outside(w, e);
        };
        let i = *i;
        let mut w = w.clone();
        let log = w.nodes[i].run.take().unwrap_or_else(|| node::start(&w, i));
        let (primary, paused) = (
            log.primary,
            log.paused.map(|p| NOW - self.clock.secs(NOW - p)),
        );
        let mut facts = node::facts(&self.names[i], i, &log, &self.flavor);
        facts.weight = self.bounds.weight(i);
        let memo = self.run_memo(&w, i);
        let world = Rc::new(RefCell::new(w));
        let progress: Rc<RefCell<Progress>> =
            Rc::new(RefCell::new(node::progress(log, self.bounds.split)));
        let backend = self.backend(i, facts, &world, &progress, &out);
        let mut ctx = crate::app::run_ctx(
            &self.cfg,
            Box::new(backend),
            self.links.clone(),
            memo,
            paused,
        );
        self.prepare(&mut ctx, out.as_ref(), &progress);
        let (mut ctx, results) = self.policy.run(ctx);
        // The echo holds the run's progress, which is taken back below.
        ctx.stop_echo();
        let mut observations = ctx.observations;
        world::map_memo_ages(&mut observations, |a| self.clock.ticks(a));
        drop(ctx.backend);
        let mut w = match Rc::try_unwrap(world) {
            Ok(c) => c.into_inner(),
            Err(rc) => rc.borrow().clone(),
        };
        let p = match Rc::try_unwrap(progress) {
            Ok(c) => c.into_inner(),
            Err(_) => unreachable!("the backend holding the progress was dropped"),
        };
        let diverged = p.diverged.clone();
        let completed = if p.suspended {
            w.nodes[i].run = Some(p.log);
            None
        } else {
            let acted = primary && paused.is_none();
            Some(complete(
                &mut w,
                i,
                &p.log,
                observations,
                results,
                primary,
                acted,
            ))
        };
        w.canonicalize(&self.keys());
        self.settle_quiet(&mut w);
        Step {
            world: w,
            completed,
            diverged,
        }
    }

    /// An event other than a run (time, a fault, an operator's request) on a copy of `w`.
    fn step_outside(&self, w: &World, e: &Event) -> Step {
        let mut w = w.clone();
        w.apply_outside(e, self.clock.ticks.cap(), self.liveness_bound());
        w.canonicalize(&self.keys());
        self.settle_quiet(&mut w);
        Step {
            world: w,
            completed: None,
            diverged: None,
        }
    }

    /// What node `i` remembers (`[files] state`) as its run reads it: its ages in seconds,
    /// its mails forgotten under [`Mutant::NoMailOnce`].
    fn run_memo(&self, w: &World, i: usize) -> crate::db::clock::Observations {
        let mut memo = w.nodes[i].memo.clone();
        if self.mutant == Some(Mutant::NoMailOnce) {
            memo.forget_mailed();
        }
        world::map_memo_ages(&mut memo, |a| self.clock.secs(a));
        memo
    }

    /// The simulated backend of node `i`'s run on the shared world and progress.
    fn backend(
        &self,
        i: usize,
        facts: crate::exec::server::NodeFacts,
        world: &Rc<RefCell<World>>,
        progress: &Rc<RefCell<Progress>>,
        out: &Option<Rc<RefCell<Vec<u8>>>>,
    ) -> WorldBackend {
        let me = Me {
            host: self.names[i].clone(),
            local_index: i as i64,
            weight: self.bounds.weight(i),
            address: Some(node::address(i)),
        };
        WorldBackend {
            world: world.clone(),
            progress: progress.clone(),
            node: i,
            facts,
            me,
            schema: self.schema.clone(),
            links: self.shared_links.clone(),
            addresses: self.addresses.clone(),
            mail: self.mail.clone(),
            mutant: self.mutant,
            out: out.clone(),
            clock: self.clock.clone(),
        }
    }

    /// A run's context set as the model runs it: its policy log echoed to `out` (for
    /// traces), the mutant's change, no mailed facts and no history.
    fn prepare(
        &self,
        ctx: &mut crate::host::RunCtx,
        out: Option<&Rc<RefCell<Vec<u8>>>>,
        progress: &Rc<RefCell<Progress>>,
    ) {
        if let Some(o) = out {
            // Only what the run does anew in this step: not the lines of the part it replays,
            // nor those after it is suspended (its later calls refused).
            let (o, progress) = (o.clone(), progress.clone());
            ctx.echo_policy_log(Box::new(move |line| {
                if progress.borrow().live() {
                    o.borrow_mut().extend_from_slice(line.as_bytes());
                }
            }));
        }
        ctx.variant.claim = self.mutant != Some(Mutant::NoClaim);
        if self.mutant == Some(Mutant::NoMailCap) {
            ctx.settings.limits.max_mails = usize::MAX;
        }
        ctx.variant.fence_fails_open = self.mutant == Some(Mutant::FenceFailsOpen);
        ctx.variant.mail_facts = false;
        ctx.variant.history = false;
    }
}

/// Node `i`'s run completed: its memory and marks kept in `w`, and what the properties read
/// of it (`log` its calls, `results` its links').
fn complete(
    w: &mut World,
    i: usize,
    log: &world::RunLog,
    observations: crate::db::clock::Observations,
    results: Vec<crate::policy::LinkResult>,
    primary: bool,
    acted: bool,
) -> Completed {
    let n = &mut w.nodes[i];
    n.memo = observations;
    n.ran = true;
    if !primary && n.server == Server::NonPrimary {
        n.ran_outside = true;
    }
    let mails = log.calls.iter().filter_map(|c| c.mail.clone()).collect();
    Completed {
        node: i,
        acted,
        mails,
        repeated: Vec::new(),
        errors: results
            .into_iter()
            .filter_map(|(k, r)| r.err().map(|e| (k.to_string(), e.to_string())))
            .collect(),
    }
}

/// How long a check took, as reports print it.
pub fn fmt_elapsed(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

impl Bounds {
    /// A deeper check, run by hand (`policy verify --deep`): two faults with atomic runs;
    /// split runs for three ticks; two links with one fault; and split runs with an
    /// operator's switchover for four ticks.
    pub fn deep() -> Vec<Bounds> {
        let mut v = Bounds::standard();
        v[0].faults = 2;
        v[1].ticks = Some(3);
        v[2].faults = 1;
        // An operator's switchover while runs interleave at their host calls: the hand-off
        // against the claims of the other nodes.
        v.push(Bounds {
            split: true,
            concurrent: 2,
            ticks: Some(3),
            faults: 1,
            kinds: [Fault::Switchover].into_iter().collect(),
            ..v[0].clone()
        });
        for b in &mut v {
            b.max_states = 50_000_000;
        }
        v
    }
}

/// Checks a policy in every model of `bounds`, printing the states explored, the time and
/// each property with ok or its counterexample; counterexamples are written under `out`
/// (one folder per model and property). Returns whether every property held in every model.
pub fn verify(
    policy: &Policy,
    site: Option<&Config>,
    bounds: Vec<Bounds>,
    out: Option<&std::path::Path>,
    w: &mut dyn std::io::Write,
) -> Result<bool> {
    // Every modelled run would log as a real one does: hundreds of thousands of lines.
    let level = log::max_level();
    log::set_max_level(log::LevelFilter::Off);
    let r = verify_quietly(policy, site, bounds, out, w);
    log::set_max_level(level);
    r
}

/// [`verify`] with the runs' logging off.
fn verify_quietly(
    policy: &Policy,
    site: Option<&Config>,
    bounds: Vec<Bounds>,
    out: Option<&std::path::Path>,
    w: &mut dyn std::io::Write,
) -> Result<bool> {
    if let Some(s) = site {
        writeln!(w, "{}", site_summary(s)).map_err(io)?;
    }
    let mut all_ok = true;
    let count = bounds.len();
    for (m, b) in bounds.into_iter().enumerate() {
        let b = match site {
            Some(s) => b.for_site(s),
            None => b,
        };
        let model = Model::with_site(policy, b, None, site)?;
        if m == 0 {
            write_time(&model, w)?;
        }
        writeln!(w, "model {} of {count}: {}", m + 1, model.bounds.describe()).map_err(io)?;
        let r = search::explore_with(&model, false, &print_progress);
        writeln!(
            w,
            "  {} states, {} transitions, depth {}, {}{}",
            r.states,
            r.transitions,
            r.depth,
            fmt_elapsed(r.elapsed),
            if r.complete {
                ""
            } else {
                " (INCOMPLETE: the bound on states was reached)"
            }
        )
        .map_err(io)?;
        all_ok &= r.complete;
        all_ok &= write_properties(&model, &r, m, out, w)?;
        write_recovery(&model, &r, w)?;
    }
    writeln!(w, "\n{WHAT_OK_MEANS}").map_err(io)?;
    Ok(all_ok)
}

/// A report that cannot be written, as the check's error.
fn io(e: std::io::Error) -> Error {
    Error::Model(format!("cannot write the report: {e}"))
}

/// The model's time, said before the first model: its thresholds, and the hooks that gave
/// none.
fn write_time(model: &Model, w: &mut dyn std::io::Write) -> Result<()> {
    writeln!(w, "{}", time_summary(&model.clock)).map_err(io)?;
    for e in &model.unread {
        writeln!(
            w,
            "time: no threshold from a hook that failed ({e}); the model's runs meet the same error"
        )
        .map_err(io)?;
    }
    Ok(())
}

/// A search's progress, every few seconds on stderr, with the properties failed so far.
fn print_progress(states: usize, queued: usize, t: Duration, failed: &[search::Property]) {
    let so_far = if failed.is_empty() {
        "no property failed so far".to_string()
    } else {
        // Its short name: "no flapping", "bounded liveness".
        let names: Vec<&str> = failed
            .iter()
            .map(|p| p.name().split(':').next().unwrap_or_default())
            .collect();
        format!("FAILED so far: {}", names.join("; "))
    };
    eprintln!(
        "  ... {states} states, {queued} waiting, {}; {so_far}",
        fmt_elapsed(t)
    );
}

/// Each property of model `m` with ok or its counterexample, written under `out` when given.
/// Returns whether every property held.
fn write_properties(
    model: &Model,
    r: &search::Report,
    m: usize,
    out: Option<&std::path::Path>,
    w: &mut dyn std::io::Write,
) -> Result<bool> {
    let mut all_ok = true;
    for p in search::Property::ALL {
        match r.violation(p) {
            None => writeln!(w, "  ok    {p}").map_err(io)?,
            Some(v) => {
                all_ok = false;
                writeln!(w, "  FAIL  {p}\n        {}", v.message).map_err(io)?;
                let text = trace::render(model, v);
                for line in text.lines().skip(3) {
                    writeln!(w, "      {line}").map_err(io)?;
                }
                if let Some(dir) = out {
                    let dir = dir.join(format!("model{}-{:?}", m + 1, p).to_lowercase());
                    let files = trace::write(model, v, &dir)?;
                    writeln!(
                        w,
                        "        written: {} ({} scenario file(s) for `simulate`)",
                        dir.display(),
                        files.len() - 1
                    )
                    .map_err(io)?;
                }
            }
        }
    }
    Ok(all_ok)
}

/// How soon a replica carried data again after the last fault, in the worst case found.
fn write_recovery(model: &Model, r: &search::Report, w: &mut dyn std::io::Write) -> Result<()> {
    match r.worst_recovery {
        Some(q) => writeln!(
            w,
            "  recovery: a replica carried data at most {} quiet tick(s) after the last fault ({} checked: {} after the longest threshold, tick {})",
            u32::from(q) + 1,
            model.liveness_bound(),
            model.bounds.k,
            model.clock.ticks.longest()
        )
        .map_err(io)?,
        None => writeln!(w, "  recovery: a replica always carried data").map_err(io)?,
    }
    Ok(())
}

/// The thresholds the model's time runs between, said before the first model.
fn time_summary(c: &Clock) -> String {
    let v: Vec<String> = c
        .seconds
        .values()
        .iter()
        .zip(c.ticks.values())
        .map(|(s, t)| format!("{s} s (tick {t})"))
        .collect();
    format!(
        "time: the rules compare ages with {}. At each, and the second after it, a tick is one second; a longer gap takes at most {} ticks, and after a round of runs that changed nothing, time passes to the tick before the next threshold. Ages past {} s are all alike",
        if v.is_empty() {
            "nothing".to_string()
        } else {
            v.join(", ")
        },
        Clock::GAP,
        c.seconds.longest() + 1
    )
}

/// What a check takes from the site's config, said before it starts.
fn site_summary(s: &Config) -> String {
    let vars = if s.policy.vars.is_empty() {
        "none".to_string()
    } else {
        s.policy
            .vars
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let weights: Vec<String> = s
        .links
        .iter()
        .flat_map(|l| l.sources.iter())
        .filter(|a| a.weight != 0)
        .map(|a| format!("{} {}", a.address(), a.weight))
        .collect();
    format!(
        "config {}: [policy.vars] {vars}; distribute = {}; the sandbox's limits; [timeouts] heartbeat {} s, failed {} s; this node's weight {} (given to the last node); source weights {} (by position in each link)",
        s.source_name(),
        s.policy.distribute,
        s.timeouts.heartbeat,
        s.timeouts.failed,
        s.local
            .weight
            .map_or("not set".to_string(), |w| w.to_string()),
        if weights.is_empty() {
            "none".to_string()
        } else {
            weights.join(", ")
        }
    )
}

/// What an "ok" covers, printed after every check: a site signs off its policy on it.
pub const WHAT_OK_MEANS: &str = "What \"ok\" means: every interleaving of the nodes' runs, the \
faults listed and the passing of time, within the bounds of each model above, ran through the \
real host and policy on simulated servers, and no property failed. Time: ages reach every \
threshold above (the config's [timeouts], silent_after, failed_clears_after, each number the \
policy compares with), each in its own second; between two thresholds at most 2 rounds of runs \
happen, so a rule that counts runs rather than seconds, or a threshold the policy computes \
(60 * 60) rather than writes, is not seen. Values: node weights as each model says (with \
--config, this node's weight on the last node), source weights from --config, replica lag \
NULL, 0 or past every threshold (a fault kind: lag), [policy.vars] and [timeouts] from \
--config. Mail: each run's mails are counted against [policy] max_mails, and a node that mails \
a host event again while the link's table, channels, sources and servers stayed the same (no \
age crossing a threshold) fails; the pace of the policy's own notify (notify_every) is not \
checked. Not modelled: clock skew, and clusters larger than the bounds. `simulate` with a scenario checks one case of those.";
