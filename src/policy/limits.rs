//! The bounds of one policy call that the engine enforces: operations (Rhai's own counter),
//! memory and wall-clock time (both checked from Rhai's progress callback, between any two
//! operations), and what an error says when a call hits one of them.
//!
//! Time is bounded twice: each call by `[policy] max_seconds`, and all the calls of one run
//! together by the run's budget, [`run_budget`]: a third of `[timeouts] heartbeat`, so that a
//! run whose policy takes all it may still refreshes its heartbeat before its peers find it
//! silent (runs start every minute from cron; the daemon's interval is checked against the
//! heartbeat timeout), and at least what one call may take (`max_seconds`, which the config
//! keeps above one source attempt, so that a run can always connect). A call gets the smaller
//! of the two; one that would start with nothing left of the run's budget is not made.
//!
//! Memory is what the process's allocator holds beyond what it held when the call started,
//! counted by the `cap` allocator wrapper (an atomic counter, no limit of its own): map keys,
//! strings built by formatting and what host calls allocate all count,
//! except what the host makes for itself and keeps (its connections: [`crate::memory`]).
//! One operation may allocate before the next check (formatting a map into a string), so the
//! peak is bounded by the limit plus one operation's result, which Rhai's string, array and
//! map size limits bound in turn.

use crate::config::Limits;
use crate::memory::charged;
use rhai::{Dynamic, EvalAltResult};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What all the policy calls of one run may take together: a third of `[timeouts] heartbeat`,
/// and at least what one call may (`[policy] max_seconds`).
pub fn run_budget(heartbeat_timeout: i64, max_seconds: Duration) -> Duration {
    let third = Duration::from_secs((heartbeat_timeout.max(3) / 3) as u64);
    third.max(max_seconds)
}

/// The largest string a policy may build (Rhai's limit, checked after each operation).
pub const MAX_STRING: usize = 64 * 1024;
/// The most items an array or a map may hold.
pub const MAX_ITEMS: usize = 10_000;
/// The most nested function calls.
pub const MAX_CALL_LEVELS: usize = 32;

/// Which limit stopped a call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Hit {
    Memory(usize),
    /// The call ran this many seconds, past `[policy] max_seconds`.
    Time(f64),
    /// The run's calls ran this many seconds together, past the run's budget.
    RunTime(f64),
}

#[derive(Clone, Copy, Default)]
struct State {
    started: Option<Instant>,
    base: usize,
    hit: Option<Hit>,
    /// This call's time limit, and whether it is what is left of the run's budget.
    limit: Duration,
    by_run: bool,
    /// What the run's calls have taken so far, this one excluded.
    spent: Duration,
}

/// The meter of the calls made on one engine: started before each call, read by the progress
/// callback and by the error report.
#[derive(Clone, Default)]
pub struct Meter {
    limits: Rc<Limits>,
    state: Rc<Cell<State>>,
    /// The run's budget; `None` for calls outside a run (`status`, `policy check`).
    budget: Option<Duration>,
}

impl Meter {
    pub fn new(limits: &Limits) -> Meter {
        Meter {
            limits: Rc::new(limits.clone()),
            state: Rc::default(),
            budget: None,
        }
    }

    /// The meter of one run's calls, which together may take `budget`.
    pub fn for_run(limits: &Limits, budget: Duration) -> Meter {
        Meter {
            budget: Some(budget),
            ..Meter::new(limits)
        }
    }

    /// What the run's calls have taken so far.
    pub fn spent(&self) -> Duration {
        self.state.get().spent
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A call starts: its memory is counted from here, its time runs from now. Returns its
    /// time limit, or the error that it may not start: the run's budget is spent.
    pub fn start(&self) -> Result<Duration, String> {
        let s = self.state.get();
        let mut limit = self.limits.max_seconds;
        let mut by_run = false;
        if let Some(budget) = self.budget {
            let left = budget.saturating_sub(s.spent);
            if left.is_zero() {
                return Err(self.run_spent(s.spent.as_secs_f64()));
            }
            if left < limit {
                limit = left;
                by_run = true;
            }
        }
        self.state.set(State {
            started: Some(Instant::now()),
            base: charged(),
            hit: None,
            limit,
            by_run,
            spent: s.spent,
        });
        Ok(limit)
    }

    /// The call is over: its time counts against the run's budget, and the progress callback
    /// lets anything run (compiling, tests).
    pub fn stop(&self) {
        let s = self.state.get();
        let took = s.started.map_or(Duration::ZERO, |t| t.elapsed());
        self.state.set(State {
            started: None,
            spent: s.spent + took,
            ..s
        });
    }

    fn run_spent(&self, spent: f64) -> String {
        format!(
            "time limit: the run's policy calls took {spent:.1} s together, its budget is {} s (a third of [timeouts] heartbeat, or [policy] max_seconds if longer, so that the run refreshes its heartbeat in time)",
            self.budget.unwrap_or_default().as_secs()
        )
    }

    /// The limit the last call hit, if the meter stopped it.
    pub fn hit(&self) -> Option<Hit> {
        self.state.get().hit
    }

    /// Rhai's progress callback: `Some` stops the call. Memory is checked after every
    /// operation (one atomic read), the clock every 16.
    pub fn progress(&self, ops: u64) -> Option<Dynamic> {
        let mut s = self.state.get();
        let started = s.started?;
        let used = charged().saturating_sub(s.base);
        if used > self.limits.max_memory {
            s.hit = Some(Hit::Memory(used));
        } else if ops.is_multiple_of(16) && started.elapsed() > s.limit {
            let took = started.elapsed();
            s.hit = Some(if s.by_run {
                Hit::RunTime((s.spent + took).as_secs_f64())
            } else {
                Hit::Time(took.as_secs_f64())
            });
        } else {
            return None;
        }
        self.state.set(s);
        Some(Dynamic::UNIT)
    }

    /// What a limit error says: the limit, its value and the key that raises it. `None` for
    /// an error that is not a limit.
    pub fn describe(&self, e: &EvalAltResult) -> Option<String> {
        let l = &self.limits;
        Some(match e {
            EvalAltResult::ErrorTerminated(..) => match self.hit() {
                Some(Hit::Memory(used)) => format!(
                    "memory limit: the call held {:.1} MiB, more than its {} MiB ([policy] max_memory_mib)",
                    used as f64 / (1 << 20) as f64,
                    l.max_memory >> 20
                ),
                Some(Hit::Time(s)) => format!(
                    "time limit: the call ran {s:.1} s, longer than its {} s ([policy] max_seconds)",
                    l.max_seconds.as_secs()
                ),
                Some(Hit::RunTime(s)) => self.run_spent(s),
                None => "the call was stopped".into(),
            },
            EvalAltResult::ErrorTooManyOperations(..) => format!(
                "operation limit: more than {} operations in one call ([policy] max_operations)",
                l.max_operations
            ),
            EvalAltResult::ErrorStackOverflow(..) => format!(
                "call depth limit: more than {MAX_CALL_LEVELS} nested function calls (runaway recursion?)"
            ),
            EvalAltResult::ErrorDataTooLarge(what, ..) => format!(
                "size limit: {} is over the sandbox's maximum (strings {} KiB, arrays and maps {MAX_ITEMS} items)",
                what.to_lowercase(),
                MAX_STRING / 1024
            ),
            _ => return None,
        })
    }
}
