//! Prometheus metrics through the binary: `status --format prometheus` and the daemon's
//! `--metrics-listen` endpoint, parsed with `prometheus-parse` (and checked by `promtool`
//! where it is installed).
//!
//! The first tests need no server: the local server is down (port 1), so the metrics say
//! `pxcrm_up 0` and what the state file tells, and the daemon keeps serving them while its
//! runs fail. The `#[ignore]`d ones run against the real sandbox clusters (`scripts/test`,
//! or `cargo test --test suite metrics:: -- --include-ignored`).

use crate::harness::{BIN, pxcrm, repo, wait_until};
use prometheus_parse::{Scrape, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A config whose local server does not answer, with its files in `dir`.
fn config_without_server(dir: &Path) -> PathBuf {
    let p = dir.join("site.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[local]
cluster = "DC1"
node = "n1"
host = "127.0.0.1"
port = 1
connect_timeout = 1

[daemon]
interval = 1

[files]
pause = "{d}/pause"
lock = "{d}/lock"
state = "{d}/state.json"

[[link]]
remote = "DC2"
sources = ["10.0.2.1"]
user = "repl"
password = "x"
"#,
            d = dir.display()
        ),
    )
    .unwrap();
    p
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("the metrics parse")
}

/// The value of the one sample of `name` with these labels, if there is one.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = s
        .samples
        .iter()
        .filter(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            Value::Gauge(v) | Value::Counter(v) | Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    found.first().copied()
}

fn promtool() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("promtool"))
            .find(|f| f.is_file())
    })
}

/// promtool, which the tests that need it (ignored, run by `scripts/test`) cannot do without.
fn require_promtool() -> PathBuf {
    promtool()
        .expect("promtool is not in PATH: apt-get install prometheus, or scripts/sandbox install")
}

/// `promtool check metrics` on `text`.
fn promtool_check_metrics(text: &str) {
    let promtool = require_promtool();
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n{text}"
    );
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET a path over HTTP/1.0: the status code and the body.
fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line: {out:?}"))?;
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((code, body))
}

/// A daemon started by a test; SIGTERM and reaped when dropped.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(args: &[&str], log: PathBuf) -> Daemon {
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .args(args)
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .expect("the daemon starts");
        Daemon { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit code (within 20 s).
    fn stop(mut self) -> i32 {
        // SAFETY: kill(2) on a child this test started and has not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let child = &mut self.child;
        let status = wait_until(
            "the daemon to exit",
            Duration::from_secs(20),
            || match child.try_wait() {
                Ok(Some(s)) => Ok(s),
                Ok(None) => Err("still running".into()),
                Err(e) => Err(e.to_string()),
            },
        );
        status.code().unwrap_or(-1)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: as in `stop`.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `status --format prometheus` of a node whose server is down, with a state file as an
/// earlier run left it and the pause file present.
fn prometheus_without_a_server(dir: &Path) -> crate::harness::Out {
    let cfg = config_without_server(dir);
    // A state file as an earlier run left it: a fence and a failover counted, one run.
    std::fs::write(
        dir.join("state.json"),
        r#"{"counters": {"failovers": {"DC1-DC2": {"source_lost": 3}}, "fences": {"DC1-DC2": 2},
            "runs": 4, "failed_runs": 1, "last_run": {"at": 1700000000, "millis": 20, "ok": true},
            "last_success": 1700000000}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("pause"), "").unwrap();
    pxcrm(&[
        "--config",
        cfg.to_str().unwrap(),
        "status",
        "--format",
        "prometheus",
    ])
}

#[test]
fn status_prometheus_without_a_server_says_up_0_with_the_counters_of_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let o = prometheus_without_a_server(dir.path());
    let cfg = dir.path().join("site.toml");
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stderr.contains("cannot connect"), "{}", o.all());
    let s = parse(&o.stdout);
    assert_eq!(value(&s, "pxcrm_up", &[]), Some(0.0), "{}", o.stdout);
    assert_eq!(
        value(
            &s,
            "pxcrm_failovers_total",
            &[("link", "DC1-DC2"), ("cause", "source_lost")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(&s, "pxcrm_fences_total", &[("link", "DC1-DC2")]),
        Some(2.0)
    );
    assert_eq!(
        value(&s, "pxcrm_runs_total", &[("result", "ok")]),
        Some(3.0)
    );
    assert_eq!(
        value(&s, "pxcrm_last_success_timestamp_seconds", &[]),
        Some(1_700_000_000.0)
    );
    assert_eq!(value(&s, "pxcrm_paused", &[("scope", "node")]), Some(1.0));
    // The text and JSON forms still fail with the connection's exit code (3).
    let o = pxcrm(&["--config", cfg.to_str().unwrap(), "status", "--json"]);
    assert_eq!(o.code, 3, "{}", o.all());
}

#[test]
fn a_live_run_that_cannot_connect_is_counted_and_a_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_without_server(dir.path());
    let cfg = cfg.to_str().unwrap();
    let state = dir.path().join("state.json");
    let o = pxcrm(&["--config", cfg, "run", "--dry-run"]);
    assert_eq!(o.code, 3, "{}", o.all());
    assert!(!state.exists(), "a dry run wrote the state file");
    for _ in 0..2 {
        let o = pxcrm(&["--config", cfg, "run"]);
        assert_eq!(o.code, 3, "{}", o.all());
    }
    let o = pxcrm(&["--config", cfg, "status", "--format", "prometheus"]);
    let s = parse(&o.stdout);
    assert_eq!(
        value(&s, "pxcrm_runs_total", &[("result", "failed")]),
        Some(2.0),
        "{}",
        o.all()
    );
    assert_eq!(
        value(&s, "pxcrm_runs_total", &[("result", "ok")]),
        Some(0.0)
    );
    assert_eq!(value(&s, "pxcrm_last_run_ok", &[]), Some(0.0));
    assert_eq!(value(&s, "pxcrm_last_success_timestamp_seconds", &[]), None);
    // An unreadable state file is left alone (the next run that works replaces it).
    std::fs::write(&state, "not json").unwrap();
    let o = pxcrm(&["--config", cfg, "run"]);
    assert_eq!(o.code, 3, "{}", o.all());
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "not json");
}

#[test]
fn status_json_and_format_are_one_choice() {
    let o = pxcrm(&["status", "--json", "--format", "text"]);
    assert_eq!(o.code, 2, "{}", o.all());
    let o = pxcrm(&["status", "--format", "xml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("prometheus"), "{}", o.all());
}

#[test]
fn a_bad_metrics_address_stops_the_daemon_at_start_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_without_server(dir.path());
    let cfg = cfg.to_str().unwrap();
    let o = pxcrm(&["--config", cfg, "daemon", "--metrics-listen", "localhost"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("--metrics-listen"), "{}", o.all());
    // A port already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = pxcrm(&["--config", cfg, "daemon", "--metrics-listen", &addr]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("cannot listen"), "{}", o.all());
    // In the config: named with its line.
    let text = std::fs::read_to_string(cfg).unwrap().replace(
        "interval = 1\n",
        "interval = 1\nmetrics_listen = \"127.0.0.1\"\n",
    );
    std::fs::write(cfg, text).unwrap();
    let o = pxcrm(&["--config", cfg, "daemon"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("[daemon] metrics_listen"), "{}", o.all());
}

#[test]
fn the_daemon_serves_metrics_while_its_server_is_down_and_counts_the_failed_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_without_server(dir.path());
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let d = Daemon::start(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "daemon",
            "--metrics-listen",
            &addr.to_string(),
        ],
        dir.path().join("daemon.log"),
    );
    // Runs fail every second (no server); each is counted in the state file, which the
    // scrape reads.
    let text = wait_until(
        "/metrics to count two failed runs",
        Duration::from_secs(60),
        || {
            let (code, body) = http_get(addr, "/metrics")?;
            if code != 200 {
                return Err(format!("HTTP {code}"));
            }
            let s = parse(&body);
            match value(&s, "pxcrm_runs_total", &[("result", "failed")]) {
                Some(n) if n >= 2.0 => Ok(body),
                other => Err(format!("runs failed: {other:?}; log: {}", d.log())),
            }
        },
    );
    let s = parse(&text);
    assert_eq!(value(&s, "pxcrm_up", &[]), Some(0.0), "{text}");
    assert_eq!(value(&s, "pxcrm_last_run_ok", &[]), Some(0.0), "{text}");
    assert_eq!(
        value(&s, "pxcrm_last_success_timestamp_seconds", &[]),
        None,
        "no run succeeded"
    );
    promtool_check_metrics(&text);
    let (code, _) = http_get(addr, "/").unwrap();
    assert_eq!(code, 404);
    assert!(
        d.log().contains("metrics on http://127.0.0.1:"),
        "{}",
        d.log()
    );
    assert!(
        d.log().contains("a scrape cannot read the local server"),
        "{}",
        d.log()
    );
    assert_eq!(d.stop(), 0, "the daemon ends cleanly on SIGTERM");
}

#[test]
#[ignore = "needs promtool: scripts/test runs it"]
fn the_prometheus_text_passes_promtool_check_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let o = prometheus_without_a_server(dir.path());
    assert_eq!(o.code, 0, "{}", o.all());
    promtool_check_metrics(&o.stdout);
}

#[test]
#[ignore = "needs promtool: scripts/test runs it"]
fn the_shipped_alert_rules_pass_promtool() {
    let promtool = require_promtool();
    let rules = repo().join("docs/alerts.yml");
    let o = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // And the rules fire on the metrics they are written for (promtool test rules).
    let tests = repo().join("docs/alerts.test.yml");
    let o = Command::new(&promtool)
        .args(["test", "rules"])
        .arg(&tests)
        .current_dir(repo().join("docs"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

// ---- on the real sandbox clusters ----------------------------------------------------------

use crate::lab::{DC1, DC2, Options, Sandbox, addr as node_addr};

#[test]
#[ignore = "needs real Galera clusters: scripts/test runs it (cargo test -- --include-ignored)"]
fn status_prometheus_on_sandbox_nodes_shows_the_replica() {
    let sb = Sandbox::fresh(179, 180, 20);
    sb.settle();
    let (replica, channel) = sb.only_replica(&DC1).unwrap();
    for n in DC1 {
        let o = sb.manager(n, &["status", "--format", "prometheus"]);
        assert_eq!(o.code, 0, "{n}: {}", o.all());
        let s = parse(&o.stdout);
        let link = [("link", "DC1-DC2")];
        assert_eq!(value(&s, "pxcrm_up", &[]), Some(1.0), "{n}: {}", o.stdout);
        assert_eq!(
            value(&s, "pxcrm_node_info", &[("node", n), ("cluster", "DC1")]),
            Some(1.0),
            "{n}: {}",
            o.stdout
        );
        let yes = value(&s, "pxcrm_link_role", &[link[0], ("role", "Yes")]);
        assert_eq!(
            yes,
            Some(if *n == replica { 1.0 } else { 0.0 }),
            "{n}: {}",
            o.stdout
        );
        assert_eq!(
            value(&s, "pxcrm_link_replica_healthy", &link),
            Some(1.0),
            "{n}: {}",
            o.stdout
        );
        assert_eq!(value(&s, "pxcrm_link_replicas", &link), Some(1.0));
        assert!(
            value(
                &s,
                "pxcrm_replica_silent_seconds",
                &[link[0], ("node", &replica)]
            )
            .is_some(),
            "{n}: {}",
            o.stdout
        );
        // The settle runs were counted in this node's state file.
        assert!(
            value(&s, "pxcrm_runs_total", &[("result", "ok")]).is_some_and(|v| v >= 2.0),
            "{n}: {}",
            o.stdout
        );
        if *n == replica {
            let ch = [link[0], ("channel", channel.name.as_str())];
            assert_eq!(
                value(&s, "pxcrm_sql_thread_up", &ch),
                Some(1.0),
                "{}",
                o.stdout
            );
            assert_eq!(value(&s, "pxcrm_source_up", &ch), Some(1.0), "{}", o.stdout);
            let source = s
                .samples
                .iter()
                .find(|x| x.metric == "pxcrm_source_up")
                .and_then(|x| x.labels.get("source"))
                .unwrap_or_default();
            assert!(
                source.starts_with(&format!("{}:", channel.source)),
                "source label {source:?}, channel {channel:?}"
            );
            assert!(
                value(&s, "pxcrm_replication_lag_seconds", &ch).is_some_and(f64::is_finite),
                "{}",
                o.stdout
            );
        } else {
            assert_eq!(
                value(&s, "pxcrm_sql_thread_up", &link),
                None,
                "{}",
                o.stdout
            );
        }
        promtool_check_metrics(&o.stdout);
    }
}

#[test]
#[ignore = "needs real Galera clusters: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_daemon_serves_metrics_and_counts_its_runs() {
    let sb = Sandbox::start(Options {
        heartbeat: 30,
        connect: 5,
        daemon_interval: Some(1),
        ..Options::default()
    });
    sb.settle();
    let (replica, _) = sb.only_replica(&DC1).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = repo().join("target/reliability");
    std::fs::create_dir_all(&log).unwrap();
    let d = Daemon::start(
        &[
            "--config",
            &sb.config(&replica),
            "daemon",
            "--metrics-listen",
            &addr.to_string(),
        ],
        log.join(format!("metrics.{replica}.daemon.log")),
    );
    let runs = |body: &str| value(&parse(body), "pxcrm_runs_total", &[("result", "ok")]);
    let first = wait_until(
        "/metrics to answer with up 1",
        Duration::from_secs(60),
        || {
            let (code, body) = http_get(addr, "/metrics")?;
            let s = parse(&body);
            match (code, value(&s, "pxcrm_up", &[])) {
                (200, Some(1.0)) => Ok(body),
                other => Err(format!("{other:?}: {body}; log: {}", d.log())),
            }
        },
    );
    let s = parse(&first);
    assert_eq!(
        value(
            &s,
            "pxcrm_link_role",
            &[("link", "DC1-DC2"), ("role", "Yes")]
        ),
        Some(1.0),
        "{first}"
    );
    promtool_check_metrics(&first);
    // The daemon's runs are counted, each second.
    let before = runs(&first).unwrap_or(0.0);
    wait_until(
        "the daemon's runs to be counted",
        Duration::from_secs(30),
        || {
            let (_, body) = http_get(addr, "/metrics")?;
            match runs(&body) {
                Some(n) if n >= before + 3.0 => Ok(()),
                other => Err(format!("{other:?} (was {before})")),
            }
        },
    );
    assert_eq!(d.stop(), 0);
}

#[test]
#[ignore = "needs real Galera clusters: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_daemon_counts_the_failover_when_its_source_dies() {
    let sb = Sandbox::start(Options {
        heartbeat: 30,
        connect: 5,
        daemon_interval: Some(1),
        ..Options::default()
    });
    sb.settle();
    let (replica, before) = sb.only_replica(&DC1).unwrap();
    let source = DC2
        .iter()
        .find(|n| node_addr(n) == before.source)
        .unwrap()
        .to_string();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = repo().join("target/reliability");
    std::fs::create_dir_all(&log).unwrap();
    let d = Daemon::start(
        &[
            "--config",
            &sb.config(&replica),
            "daemon",
            "--metrics-listen",
            &addr.to_string(),
        ],
        log.join(format!("failover.{replica}.daemon.log")),
    );
    let failovers = || -> Result<f64, String> {
        let (_, body) = http_get(addr, "/metrics")?;
        let s = parse(&body);
        Ok(s.samples
            .iter()
            .filter(|x| {
                x.metric == "pxcrm_failovers_total" && x.labels.get("link") == Some("DC1-DC2")
            })
            .map(|x| match x.value {
                Value::Counter(v) => v,
                _ => 0.0,
            })
            .sum())
    };
    let start = wait_until("/metrics to answer", Duration::from_secs(60), failovers);
    sb.kill(&source);
    wait_until(
        "the failover counter to move after the source died",
        Duration::from_secs(90),
        || match failovers()? {
            n if n > start => Ok(()),
            n => Err(format!("{n} (was {start}); log: {}", d.log())),
        },
    );
    assert_eq!(d.stop(), 0);
}
