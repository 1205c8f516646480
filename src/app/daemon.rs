//! `pxc-replication-manager daemon`: the same run as cron's, every `[daemon] interval`, on kept
//! connections, with signals and a self-fence.
//!
//! * **The loop** calls [`super::run_in`] at a fixed cadence. Its [`Session`] keeps the
//!   connection to the local server and the probes' connections to the sources (each is
//!   checked before use and reopened when lost), and the memory of the peers (also saved to
//!   `[files] state` after every run, so cron can take over from it).
//! * **The run lock** is held for the daemon's whole life: a cron line left behind on the
//!   same node exits at once. While a cron run holds it, the daemon waits.
//! * **Signals**: SIGTERM and SIGINT end the daemon between two runs (a run in progress
//!   finishes). SIGHUP reloads the config and the policy; if either fails to load, the daemon
//!   keeps the old ones and logs why.
//! * **The self-fence** (a watchdog thread, like Patroni's rule for a leader that cannot renew
//!   its lock): a replica whose own report has not been written for two thirds of the silent
//!   threshold (see [`Daemon::self_fence_after`]) stops its channel through the executor, so
//!   it has stopped before any peer, which waits for the whole threshold, replaces it. It
//!   acts also when a run hangs (a blocked query) or the local connection is lost.
//! * **Metrics** (`--metrics-listen`, `[daemon] metrics_listen`): `/metrics` is served from a
//!   thread of its own ([`super::metrics_http`]), which builds the `status` report on its own
//!   connection at each scrape: the loop does no extra query. Each run's duration and outcome
//!   are counted in the state file ([`crate::metrics::Counters`]).
//! * **systemd** (`Type=notify`): readiness after the first run, a watchdog ping per run,
//!   reloads, stopping and a status line, through [`Notifier`]; nothing without
//!   `NOTIFY_SOCKET`.

use super::metrics_http::{MetricsServer, Scrape};
use super::notify::Notifier;
use super::{
    RunOptions, RunSummary, Session, prometheus, record_failed_run, run_in, status_report_at,
    threshold,
};
use crate::config::{Config, Daemon};
use crate::db::sql::Channel;
use crate::db::state::{ChannelState, LinkKey};
use crate::error::{Error, Result};
use crate::exec::server::Login;
use crate::exec::{Action, Backend, LiveBackend, LocalServer, Mode};
use crate::policy::Policy;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Loads the config and the policy, at start and on SIGHUP.
///
/// The config must load; the policy's own error is kept apart: a daemon whose policy does not
/// load at start runs on [`Policy::unloadable`] (the host's rules hold, every run reports the
/// error) until a reload brings one that loads, while a reload whose policy does not load
/// keeps the old config and policy.
pub type Loader<'a> = &'a dyn Fn() -> Result<(Config, Result<Policy>)>;

/// Logs a failure that repeats every interval once, then once a minute, and says when it
/// ends: a server down for an hour is 60 lines, not 3,600.
#[derive(Default)]
struct Repeats {
    last: Option<String>,
    count: u64,
    logged: Option<Instant>,
}

impl Repeats {
    const EVERY: Duration = Duration::from_secs(60);

    fn failed(&mut self, what: &str) {
        self.count += 1;
        let again = self.last.as_deref() == Some(what);
        if !again || self.logged.is_none_or(|t| t.elapsed() >= Self::EVERY) {
            if again {
                log::error!("{what} (still, {} times in a row)", self.count);
            } else {
                log::error!("{what}");
            }
            self.logged = Some(Instant::now());
        } else {
            log::debug!("{what}");
        }
        self.last = Some(what.to_string());
    }

    fn ok(&mut self, what: &str) {
        if self.count > 0 {
            log::info!("{what} after {} failure(s)", self.count);
        }
        *self = Repeats::default();
    }
}

/// What the watchdog knows of one link.
struct Watched {
    channel: Channel,
    /// The channel ran at the last report.
    runs: bool,
    /// When this node last wrote its report for the link.
    reported: Instant,
    /// The self-fence stopped the channel since that report.
    fenced: bool,
    /// The last self-fence attempt (retried every interval while it fails).
    tried: Option<Instant>,
}

/// What the loop shares with the watchdog.
struct Watch {
    cfg: Config,
    login: Option<Login>,
    defaults_file: Option<PathBuf>,
    /// The silent threshold, in seconds.
    threshold: i64,
    links: HashMap<LinkKey, Watched>,
    node: String,
    done: bool,
}

impl Watched {
    fn new(channel: Channel, runs: bool, reported: Instant) -> Watched {
        Watched {
            channel,
            runs,
            reported,
            fenced: false,
            tried: None,
        }
    }
}

impl Watch {
    /// Records what a run reported.
    fn update(&mut self, s: &RunSummary) {
        let now = Instant::now();
        if !s.node.is_empty() {
            self.node = s.node.clone();
        }
        self.links
            .retain(|k, _| s.links.iter().any(|(key, _)| key == k));
        for (key, channel) in &s.links {
            let w = self
                .links
                .entry(key.clone())
                .or_insert_with(|| Watched::new(channel.clone(), false, now));
            w.channel = channel.clone();
            if let Some(state) = s.reported.get(key) {
                w.runs = state.runs();
                // From when the report was written: a run that went on after it (a slow
                // policy, other links) used up part of the time before the peers' threshold.
                w.reported = s.reported_at.get(key).copied().unwrap_or(now);
                w.fenced = false;
                w.tried = None;
            }
        }
    }
}

/// What a reload asks of a new policy before it replaces the running one: what `policy check`
/// asks (no call to a function defined nowhere), and a `silent_after` that answers (it is the
/// first call of every run, and what the self-fence is timed by). A policy that fails either
/// is refused, and the old one keeps running.
fn vet(cfg: &Config, policy: &Policy) -> Result<()> {
    if cfg.policy.file.is_some() {
        let natives = super::scenario::host_function_names()?;
        if let Some(first) = policy.undefined_calls(&natives).into_iter().next() {
            return Err(first);
        }
    }
    policy
        .silent_after(&super::settings(cfg))
        .map_err(|e| Error::PolicyCompile {
            file: policy.name.clone(),
            line: 0,
            column: 0,
            message: format!("its silent_after fails: {e}"),
        })?;
    Ok(())
}

/// Runs the daemon until SIGTERM or SIGINT; the exit code.
pub fn daemon(
    load: Loader,
    defaults_file: Option<PathBuf>,
    metrics_listen: Option<SocketAddr>,
) -> Result<i32> {
    let mut d = Life::start(load, defaults_file, metrics_listen)?;
    let code = loop {
        d.take_lock()?;
        let status = d.iterate();
        d.notify(&status);
        if let Some(code) = d.wait() {
            break code;
        }
    };
    d.stop();
    Ok(code)
}

/// A daemon's life: what it keeps from one iteration to the next (config, policy, session,
/// the run lock, the signals, the watch its self-fence and metrics read).
struct Life<'a> {
    load: Loader<'a>,
    cfg: Config,
    policy: Policy,
    /// `--metrics-listen`, which a reload does not change.
    metrics_listen: Option<SocketAddr>,
    /// Where the metrics are served.
    listen: Option<SocketAddr>,
    opts: RunOptions,
    session: Session,
    lock: Option<super::guard::RunLock>,
    waiting_for_lock: bool,
    next: Instant,
    failures: Repeats,
    notifier: Notifier,
    ready: bool,
    signals: mpsc::Receiver<i32>,
    signal_handle: signal_hook::iterator::Handle,
    watch: Arc<Mutex<Watch>>,
    metrics: Option<MetricsServer>,
    watchdog: std::thread::JoinHandle<()>,
}

impl<'a> Life<'a> {
    /// Loads the config and the policy (a policy that does not load: the host's rules alone),
    /// installs the signal handlers, starts the metrics server and the self-fence watchdog.
    fn start(
        load: Loader<'a>,
        defaults_file: Option<PathBuf>,
        metrics_listen: Option<SocketAddr>,
    ) -> Result<Life<'a>> {
        let (cfg, policy) = load()?;
        let policy = policy.unwrap_or_else(|e| {
            log::error!(
                "daemon: {e}; the daemon starts without it: the host's own rules hold (outside the Primary component a node stops replicating), every run fails until a SIGHUP reloads a policy that loads"
            );
            Policy::unloadable(cfg.policy.file.as_deref(), &e, &cfg.policy.limits)
        });
        let (tx, rx) = mpsc::channel::<i32>();
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
            .map_err(|e| Error::Process(format!("cannot install the signal handlers: {e}")))?;
        let signal_handle = signals.handle();
        std::thread::spawn(move || {
            for s in signals.forever() {
                if tx.send(s).is_err() {
                    break;
                }
            }
        });
        let watch = Arc::new(Mutex::new(Watch {
            cfg: cfg.clone(),
            login: None,
            defaults_file: defaults_file.clone(),
            threshold: threshold(&cfg, &policy),
            links: HashMap::new(),
            node: String::new(),
            done: false,
        }));
        let listen = metrics_listen.or(cfg.daemon.metrics_listen);
        let metrics = match listen {
            Some(addr) => Some(MetricsServer::start(addr, scrape(watch.clone()))?),
            None => None,
        };
        let mut session = Session {
            keep_connections: true,
            ..Session::default()
        };
        watch_from_start(&cfg, defaults_file.as_deref(), &watch, &mut session);
        let watchdog = {
            let watch = watch.clone();
            std::thread::spawn(move || watchdog(&watch))
        };
        log::info!(
            "daemon: every {} s, policy {}; a replica that cannot report for {} s stops its channel",
            cfg.daemon.interval.as_secs(),
            policy.name,
            Daemon::self_fence_after(threshold(&cfg, &policy)).as_secs_f64()
        );
        Ok(Life {
            load,
            opts: RunOptions {
                dry_run: false,
                defaults_file,
            },
            cfg,
            policy,
            metrics_listen,
            listen,
            session,
            lock: None,
            waiting_for_lock: false,
            next: Instant::now(),
            failures: Repeats::default(),
            notifier: Notifier::from_env(),
            ready: false,
            signals: rx,
            signal_handle,
            watch,
            metrics,
            watchdog,
        })
    }

    /// Takes the run lock if it does not hold it yet; while another run holds it (a cron
    /// line left behind), says so once and waits.
    fn take_lock(&mut self) -> Result<()> {
        if self.lock.is_some() {
            return Ok(());
        }
        match super::guard::lock(&self.cfg.files.lock, self.cfg.files.insecure) {
            Ok(l) => {
                self.lock = Some(l);
                if self.waiting_for_lock {
                    log::info!("daemon: got the run lock {}", self.cfg.files.lock.display());
                }
                Ok(())
            }
            Err(Error::Locked { file, holder }) => {
                if !self.waiting_for_lock {
                    log::warn!(
                        "daemon: {} is held ({holder}): another manager runs on this node (a cron line?); waiting for it. Remove the cron line when the daemon runs",
                        file.display()
                    );
                    self.waiting_for_lock = true;
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// One run, if it holds the lock; the status line it leaves.
    fn iterate(&mut self) -> String {
        if self.lock.is_none() {
            return format!(
                "waiting for the run lock {} (a cron run?)",
                self.cfg.files.lock.display()
            );
        }
        // The secrets' files, whose modes can change while the daemon runs: each warning
        // comes once a day (a refusal, too: the password was read at the start or reload).
        if let Err(e) = super::trusted::warn_secrets(&self.cfg, self.cfg.files.insecure) {
            crate::config::trust::warn_daily(&e.to_string());
        }
        let started = Instant::now();
        let out = Box::new(std::io::stdout());
        let status = match run_in(&self.cfg, &self.policy, &self.opts, out, &mut self.session) {
            Ok(summary) => {
                self.failures.ok("daemon: runs again");
                let mut w = lock_watch(&self.watch);
                if let Some((login, _)) = &self.session.kept.local {
                    w.login = Some(login.clone());
                }
                w.update(&summary);
                if summary.mail_failures > 0 {
                    log::error!("{} mail(s) could not be sent", summary.mail_failures);
                }
                status_of(&summary)
            }
            Err(e) => {
                record_failed_run(&self.cfg, &mut self.session, started.elapsed());
                let what = format!(
                    "daemon: run failed: {e}; trying again every {} s",
                    self.cfg.daemon.interval.as_secs()
                );
                self.failures.failed(&what);
                what
            }
        };
        log::trace!("daemon: run took {:?}", started.elapsed());
        status
    }

    /// Tells systemd: ready once the first iteration is over, whatever its outcome (the daemon
    /// runs and retries, and systemd would otherwise fail the start while a local server is
    /// down), then a status per iteration.
    fn notify(&mut self, status: &str) {
        if self.ready {
            self.notifier.iteration(status);
        } else {
            self.notifier.ready(status);
            self.ready = true;
        }
    }

    /// Waits for the next run, answering signals meanwhile: `Some(exit code)` to stop.
    fn wait(&mut self) -> Option<i32> {
        self.next += self.cfg.daemon.interval;
        let now = Instant::now();
        if self.next < now {
            log::debug!("daemon: a run took longer than the interval; the next starts now");
            self.next = now;
        }
        loop {
            let now = Instant::now();
            if now >= self.next {
                return None;
            }
            let left = self.next - now;
            let wait = self.notifier.ping_every().map_or(left, |p| p.min(left));
            match self.signals.recv_timeout(wait) {
                Ok(SIGHUP) => {
                    self.notifier.reloading();
                    let status = self.reload();
                    self.notifier.reloaded(&status);
                }
                Ok(sig) => {
                    log::info!("daemon: signal {sig}: exiting");
                    self.notifier.stopping();
                    return Some(0);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if Instant::now() >= self.next {
                        return None;
                    }
                    self.notifier.watchdog();
                }
                Err(RecvTimeoutError::Disconnected) => return Some(1),
            }
        }
    }

    /// SIGHUP: the config and the policy again, both vetted, or the old ones kept; the status
    /// line it leaves.
    fn reload(&mut self) -> String {
        let loaded = (self.load)().and_then(|(c, p)| {
            let p = p?;
            vet(&c, &p)?;
            Ok((c, p))
        });
        match loaded {
            Ok((c, p)) => {
                log::info!(
                    "daemon: SIGHUP: reloaded the config ({}) and the policy ({}); every {} s",
                    c.source_name(),
                    p.name,
                    c.daemon.interval.as_secs()
                );
                if c.files.lock != self.cfg.files.lock {
                    log::warn!(
                        "daemon: [files] lock changed; the daemon keeps holding {} until it restarts",
                        self.cfg.files.lock.display()
                    );
                }
                if self.metrics_listen.is_none() && c.daemon.metrics_listen != self.listen {
                    log::warn!(
                        "daemon: [daemon] metrics_listen changed; the metrics stay where they are until the daemon restarts"
                    );
                }
                self.cfg = c;
                self.policy = p;
                self.session.kept = Default::default();
                self.session.schema_read = None;
                let mut w = lock_watch(&self.watch);
                w.cfg = self.cfg.clone();
                w.threshold = threshold(&self.cfg, &self.policy);
                format!("reloaded the config and the policy ({})", self.policy.name)
            }
            Err(e) => {
                log::error!(
                    "daemon: SIGHUP: the new config or policy does not load, so the daemon keeps the old ones: {e}"
                );
                format!("reload refused, the old config and policy kept: {e}")
            }
        }
    }

    /// Ends the signal thread, the metrics server and the watchdog, then lets the lock go.
    fn stop(self) {
        self.signal_handle.close();
        if let Some(m) = self.metrics {
            m.stop();
        }
        lock_watch(&self.watch).done = true;
        let _ = self.watchdog.join();
        drop(self.lock);
    }
}

/// The `STATUS=` line after a run: the node, its links, which it replicates, what changed.
fn status_of(s: &RunSummary) -> String {
    let mut replicating: Vec<&str> = s
        .reported
        .iter()
        .filter(|(_, state)| state.runs())
        .map(|(k, _)| k.as_str())
        .collect();
    replicating.sort_unstable();
    let node = if s.node.is_empty() {
        "this node"
    } else {
        &s.node
    };
    let mut line = format!(
        "{node}: {} link(s), replicating {}; last run: {} change(s)",
        s.links.len(),
        if replicating.is_empty() {
            "none".to_string()
        } else {
            replicating.join(", ")
        },
        s.events.len()
    );
    if !s.link_errors.is_empty() {
        line.push_str(&format!(", {} link error(s)", s.link_errors.len()));
    }
    if s.paused_since.is_some() {
        line.push_str(", paused");
    }
    line
}

/// Before the first run, tells the watchdog which channels run and when this node last
/// reported (by its own server's clock), so that a first run that hangs is covered too. The
/// connection is kept for that run.
fn watch_from_start(
    cfg: &Config,
    defaults_file: Option<&std::path::Path>,
    watch: &Mutex<Watch>,
    session: &mut Session,
) {
    let mut node = match super::open_local(cfg, defaults_file) {
        Ok(n) => n,
        Err(e) => {
            log::warn!("daemon: cannot read this node's links and channels yet: {e}");
            return;
        }
    };
    let channels = node
        .server
        .replica_statuses(&node.facts.flavor)
        .unwrap_or_default();
    let now = Instant::now();
    let mut w = lock_watch(watch);
    w.node = node.facts.name.clone();
    w.login = Some(node.login.clone());
    for l in &node.links {
        let runs =
            ChannelState::of(channels.iter().find(|c| c.channel == l.channel.as_str())).runs();
        let age = node
            .schema
            .as_ref()
            .and_then(|s| node.server.rows(s, &l.key).ok())
            .and_then(|rows| rows.into_iter().find(|r| r.host == node.me.host))
            .and_then(|r| r.heartbeat_age)
            .unwrap_or(0)
            .max(0) as u64;
        let reported = now.checked_sub(Duration::from_secs(age)).unwrap_or(now);
        w.links.insert(
            l.key.clone(),
            Watched::new(l.channel.clone(), runs, reported),
        );
    }
    drop(w);
    session.kept.local = Some((node.login, node.server));
}

/// What a scrape of `/metrics` answers: the `status` report of this moment, read on a
/// connection of its own with the config and threshold the loop runs with; when the local
/// server cannot be read, `pxcrm_up 0` and what the state file tells.
fn scrape(watch: Arc<Mutex<Watch>>) -> Scrape {
    let mut failures = Repeats::default();
    Box::new(move || {
        let (cfg, threshold, defaults_file) = {
            let w = lock_watch(&watch);
            (w.cfg.clone(), w.threshold, w.defaults_file.clone())
        };
        match status_report_at(&cfg, threshold, defaults_file.as_deref()) {
            Ok(r) => {
                failures.ok("metrics: scrapes read the local server again");
                prometheus::render(&r)
            }
            Err(e) => {
                failures.failed(&format!(
                    "metrics: a scrape cannot read the local server (answering pxcrm_up 0): {e}"
                ));
                prometheus::down(&cfg)
            }
        }
    })
}

fn lock_watch(w: &Mutex<Watch>) -> std::sync::MutexGuard<'_, Watch> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

/// The watchdog: stops the channel of a replica link whose report is overdue.
fn watchdog(watch: &Mutex<Watch>) {
    const TICK: Duration = Duration::from_millis(200);
    let mut failures = Repeats::default();
    loop {
        std::thread::sleep(TICK);
        let due: Vec<(LinkKey, Channel, Duration)> = {
            let w = lock_watch(watch);
            if w.done {
                return;
            }
            let limit = Daemon::self_fence_after(w.threshold);
            let retry = w.cfg.daemon.interval;
            w.links
                .iter()
                .filter(|(_, l)| l.runs && !l.fenced && l.reported.elapsed() >= limit)
                .filter(|(_, l)| l.tried.is_none_or(|t| t.elapsed() >= retry))
                .map(|(k, l)| (k.clone(), l.channel.clone(), l.reported.elapsed()))
                .collect()
        };
        for (key, channel, silent) in due {
            let (cfg, login, defaults_file, threshold, node) = {
                let mut w = lock_watch(watch);
                if let Some(l) = w.links.get_mut(&key) {
                    l.tried = Some(Instant::now());
                }
                (
                    w.cfg.clone(),
                    w.login.clone(),
                    w.defaults_file.clone(),
                    w.threshold,
                    w.node.clone(),
                )
            };
            match stop_channel(&cfg, login, defaults_file, &channel) {
                Ok(()) => {
                    failures.ok("self-fence: reached the local server");
                    log::error!(
                        "{node}: {key}: self-fence: this node has not written its report for {:.1} s, and its peers replace a replica silent for {threshold} s: its channel {} is stopped. The next run that can report decides again",
                        silent.as_secs_f64(),
                        channel.as_str()
                    );
                    if let Some(l) = lock_watch(watch).links.get_mut(&key) {
                        l.fenced = true;
                    }
                }
                Err(e) => failures.failed(&format!(
                    "{node}: {key}: self-fence: could not stop channel {} ({e}); retrying. If the server runs, stop the channel by hand: its peers replace a replica silent for {threshold} s",
                    channel.as_str()
                )),
            }
        }
    }
}

/// Stops a channel of the local server through the executor, on a connection of its own.
fn stop_channel(
    cfg: &Config,
    login: Option<Login>,
    defaults_file: Option<PathBuf>,
    channel: &Channel,
) -> Result<()> {
    let login = match login {
        Some(l) => l,
        None => Login::resolve(&cfg.local, defaults_file.as_deref())?,
    };
    let mut server = LocalServer::connect(&login)?;
    let facts = server.facts(&cfg.local)?;
    let me = facts.me(None);
    let mut backend = LiveBackend::new(
        server,
        login,
        facts,
        me,
        None,
        cfg,
        Mode::Live,
        Box::new(std::io::sink()),
    );
    backend.apply(&Action::StopReplica {
        channel: channel.clone(),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_self_fence_counts_from_when_the_report_was_written_not_from_the_runs_end() {
        let cfg = Config::parse("", std::path::Path::new("c")).unwrap();
        let mut w = Watch {
            cfg,
            login: None,
            defaults_file: None,
            threshold: 30,
            links: HashMap::new(),
            node: String::new(),
            done: false,
        };
        let channel = Channel::named("DC1-DC2").unwrap();
        let written = Instant::now() - Duration::from_secs(12);
        let mut s = RunSummary {
            node: "DC1-1".into(),
            links: vec![("DC1-DC2".into(), channel)],
            ..RunSummary::default()
        };
        s.reported.insert("DC1-DC2".into(), ChannelState::Healthy);
        s.reported_at.insert("DC1-DC2".into(), written);
        w.update(&s);
        let l = &w.links["DC1-DC2"];
        assert!(l.runs);
        // A run whose policy took 12 s after the report leaves 8 s before the self-fence
        // (two thirds of 30 s), not 20.
        assert!(l.reported.elapsed() >= Duration::from_secs(12));
    }
}
