//! What the package ships, checked without a server: `--version` with the built-in policy's
//! version and hash, the `completions` and `man` commands, the systemd units against the
//! examples and the cron line, and the daemon's systemd notifications (`Type=notify`) received
//! on a unix datagram socket bound by the test, with a config whose local server does not
//! answer: each iteration fails, which is still an iteration. The same notifications from a
//! daemon on a real cluster are in `notify_sandbox.rs`.

use crate::harness::{BIN, pxcrm, repo, temp_file, wait_until};
use sha2::{Digest, Sha256};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `// policy-version: N` of policies/default.rhai, read here independently of build.rs.
fn policy_header_version(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("// policy-version:"))
        .map(|v| v.trim().to_string())
        .expect("policies/default.rhai has a `// policy-version: N` line")
}

#[test]
fn the_version_line_names_the_policy_version_and_the_hash_of_the_embedded_text() {
    let text = std::fs::read_to_string(repo().join("policies/default.rhai")).unwrap();
    let version = policy_header_version(&text);
    let hash: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let o = pxcrm(&["--version"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(
        o.stdout.trim_end(),
        format!(
            "pxc-replication-manager {} (built-in policy default v{version}, sha256:{})",
            env!("CARGO_PKG_VERSION"),
            &hash[..8]
        )
    );
    // The hash is of the text the binary runs: `policy show` prints exactly that text.
    let shown = pxcrm(&["policy", "show"]);
    assert_eq!(shown.code, 0, "{}", shown.all());
    assert_eq!(shown.stdout, text);
}

#[test]
fn the_bash_completion_sources_and_completes_the_commands() {
    let o = pxcrm(&["completions", "bash"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let (_d, script) = temp_file("completion.bash", &o.stdout);
    // Source it, then ask it what `pxc-replication-manager da<TAB>` completes to.
    let out = Command::new("bash")
        .args([
            "-c",
            r#"set -e
source "$1"
fn=$(complete -p pxc-replication-manager | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
COMP_WORDS=(pxc-replication-manager da); COMP_CWORD=1
COMP_LINE="pxc-replication-manager da"; COMP_POINT=${#COMP_LINE}
"$fn" pxc-replication-manager da pxc-replication-manager
echo "${COMPREPLY[*]}""#,
            "_",
            script.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "daemon");
}

#[test]
fn an_unknown_shell_is_refused_with_the_list_of_shells() {
    let o = pxcrm(&["completions", "tcsh"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("'tcsh'"), "{}", o.all());
    for shell in ["bash", "zsh", "fish"] {
        assert!(o.stderr.contains(shell), "{}", o.all());
    }
}

#[test]
fn man_prints_the_page_and_writes_one_per_command() {
    let o = pxcrm(&["man"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains(".TH pxc-replication-manager 1"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("pxc\\-replication\\-manager\\-daemon(1)"));
    let dir = tempfile::tempdir().unwrap();
    let o = pxcrm(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.all());
    let page = dir.path().join("pxc-replication-manager-policy-verify.1");
    assert!(o.stdout.contains(page.to_str().unwrap()), "{}", o.stdout);
    let text = std::fs::read_to_string(&page).unwrap();
    assert!(text.contains("\\-\\-deep"), "{text}");
    // A directory that is not there: exit 2, naming it.
    let o = pxcrm(&["man", "--dir", "/nonexistent/pxcrm-man"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("/nonexistent/pxcrm-man/pxc-replication-manager.1"),
        "{}",
        o.all()
    );
}

/// The `key=value` lines of a unit's `[section]`, in order.
fn unit_keys(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut keys = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == format!("[{section}]");
        } else if inside && !line.is_empty() && !line.starts_with('#') {
            let (k, v) = line.split_once('=').expect("key=value");
            keys.push((k.to_string(), v.to_string()));
        }
    }
    keys
}

fn unit_value(text: &str, section: &str, key: &str) -> String {
    unit_keys(text, section)
        .into_iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key}= in [{section}]:\n{text}"))
        .1
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_packaged_units_agree_with_the_examples_and_the_cron_line() {
    let daemon = read("debian/systemd/daemon/pxc-replication-manager-daemon.service");
    let example = read("examples/pxc-replication-manager-daemon.service");
    // The same unit, with the binary where the .deb installs it.
    for section in ["Unit", "Service", "Install"] {
        assert_eq!(
            unit_keys(&daemon, section),
            unit_keys(&example, section),
            "[{section}]"
        );
    }
    assert_eq!(unit_value(&daemon, "Service", "Type"), "notify");
    assert_eq!(
        unit_value(&daemon, "Service", "ExecReload"),
        "/bin/kill -HUP $MAINPID"
    );
    assert_eq!(unit_value(&daemon, "Service", "Restart"), "on-failure");
    unit_value(&daemon, "Service", "WatchdogSec");

    // The oneshot service runs what the cron line runs, with the binary the .deb installs.
    let crontab = read("examples/crontab");
    assert!(
        !crontab.contains("/usr/local/bin/"),
        "the .deb installs /usr/bin/pxc-replication-manager:\n{crontab}"
    );
    let cron_line = crontab
        .lines()
        .find(|l| l.starts_with("* * * * * root "))
        .expect("a cron line that runs every minute");
    let cron_cmd = cron_line["* * * * * root ".len()..]
        .split(" 2>&1")
        .next()
        .unwrap();
    let oneshot = read("debian/systemd/run/pxc-replication-manager.service");
    assert_eq!(unit_value(&oneshot, "Service", "Type"), "oneshot");
    assert_eq!(unit_value(&oneshot, "Service", "ExecStart"), cron_cmd);
    assert_eq!(
        unit_value(&oneshot, "Service", "SyslogIdentifier"),
        cron_line.rsplit("logger -t ").next().unwrap()
    );
    assert_eq!(
        unit_value(&daemon, "Service", "ExecStart"),
        cron_cmd.replace(" run", " daemon")
    );
    // Every minute, like cron.
    let timer = read("debian/systemd/run/pxc-replication-manager.timer");
    assert_eq!(unit_value(&timer, "Timer", "OnCalendar"), "*-*-* *:*:00");
    assert_eq!(unit_value(&timer, "Install", "WantedBy"), "timers.target");
}

/// Where the .deb installs `examples/*` (Cargo.toml [package.metadata.deb] assets).
const DOC_EXAMPLES: &str = "/usr/share/doc/pxc-replication-manager/examples/";

#[test]
fn the_paths_the_help_names_are_installed_by_the_deb() {
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    let assets = manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .unwrap();
    assert!(
        assets.iter().any(|a| a[0].as_str() == Some("examples/*")
            && a[1].as_str() == Some(DOC_EXAMPLES.trim_start_matches('/'))),
        "examples/* is not installed in {DOC_EXAMPLES}: {assets:?}"
    );
    let o = pxcrm(&["--help"]);
    assert_eq!(o.code, 0, "{}", o.all());
    // The .deb ships no tests/, and installs the binary in /usr/bin.
    for absent in ["tests/", "/usr/local/bin/pxc-replication-manager"] {
        assert!(
            !o.stdout.contains(absent),
            "--help names {absent}:\n{}",
            o.stdout
        );
    }
    let named: Vec<&str> = o
        .stdout
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(DOC_EXAMPLES))
        .map(|w| w.trim_end_matches([')', ':', ',', '.']))
        .collect();
    for want in ["crontab", "scenario-elect-from-empty.toml"] {
        assert!(
            named.contains(&want),
            "--help does not name {DOC_EXAMPLES}{want}: {named:?}"
        );
    }
    for name in &named {
        assert!(
            repo().join("examples").join(name).is_file(),
            "examples/{name}"
        );
    }
    // The scenario example runs, and is the test suite's scenario of the same name.
    let simulate = |path: &str| {
        let o = pxcrm(&[
            "simulate",
            "--scenario",
            repo().join(path).to_str().unwrap(),
        ]);
        assert_eq!(o.code, 0, "{path}: {}", o.all());
        o.stdout
    };
    assert_eq!(
        simulate("examples/scenario-elect-from-empty.toml"),
        simulate("tests/scenarios/elect_from_empty.toml")
    );
}

#[test]
fn every_file_the_deb_takes_from_the_tree_exists() {
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets = deb["assets"].as_array().unwrap();
    let mut sources = Vec::new();
    for a in assets {
        let src = a[0].as_str().unwrap();
        // target/ holds what scripts/package builds; the rest must be in the tree.
        if !src.starts_with("target/") {
            sources.push(src.to_string());
        }
    }
    assert!(sources.iter().any(|s| s == "policies/*"), "{sources:?}");
    for s in &sources {
        match s.rsplit_once("/*") {
            // A glob with a suffix (`docs/*.md`): its folder holds such a file.
            Some((dir, suffix)) if !suffix.is_empty() => {
                let found = std::fs::read_dir(repo().join(dir))
                    .map(|d| {
                        d.filter_map(|e| e.ok())
                            .any(|e| e.file_name().to_string_lossy().ends_with(suffix))
                    })
                    .unwrap_or(false);
                assert!(found, "{s} matches nothing in the tree");
            }
            _ => {
                let path = s.trim_end_matches("/*");
                assert!(repo().join(path).exists(), "{s} is not in the tree");
            }
        }
    }
    for u in deb["systemd-units"].as_array().unwrap() {
        let dir = repo().join(u["unit-scripts"].as_str().unwrap());
        assert!(std::fs::read_dir(&dir).unwrap().count() > 0, "{dir:?}");
        // Installed, never enabled or started by the package.
        assert_eq!(u["enable"].as_bool(), Some(false), "{u}");
        assert_eq!(u["start"].as_bool(), Some(false), "{u}");
    }
}

/// A daemon started with NOTIFY_SOCKET pointing at a socket the test bound.
pub struct Notified {
    pub child: Child,
    pub socket: UnixDatagram,
    pub log: PathBuf,
    /// Every datagram received so far, in order.
    pub messages: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Notified {
    /// Starts `daemon` with `config` and NOTIFY_SOCKET (and WATCHDOG_USEC, if given) set.
    pub fn start(config: &str, watchdog_usec: Option<u64>) -> Notified {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&sock).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let log = dir.path().join("daemon.log");
        let mut c = Command::new(BIN);
        c.args(["--config", config, "daemon"])
            .env("NOTIFY_SOCKET", &sock)
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        match watchdog_usec {
            Some(u) => c.env("WATCHDOG_USEC", u.to_string()),
            None => c.env_remove("WATCHDOG_USEC"),
        };
        let child = c.spawn().expect("the daemon starts");
        Notified {
            child,
            socket,
            log,
            messages: Vec::new(),
            _dir: dir,
        }
    }

    /// Receives until a datagram after the first `skip` satisfies `want`; its index.
    pub fn await_message(
        &mut self,
        what: &str,
        skip: usize,
        timeout: Duration,
        want: impl Fn(&str) -> bool,
    ) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.messages.iter().skip(skip).position(|m| want(m)) {
                return skip + i;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; received {:?}; daemon log:\n{}",
                    self.messages,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let mut buf = [0u8; 4096];
            if let Ok(n) = self.socket.recv(&mut buf) {
                self.messages
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child process this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// Waits for the daemon to exit; its exit code.
    pub fn await_exit(&mut self, timeout: Duration) -> i32 {
        let child = &mut self.child;
        let status = wait_until("the daemon to exit", timeout, || match child.try_wait() {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err("still running".into()),
            Err(e) => Err(e.to_string()),
        });
        status.code().unwrap_or(-1)
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines of a datagram.
fn has_line(m: &str, line: &str) -> bool {
    m.lines().any(|l| l == line)
}

/// A daemon config whose local server does not answer (port 1), with its files in `dir`.
fn daemon_config(dir: &Path) -> String {
    format!(
        r#"
[local]
host = "127.0.0.1"
port = 1
connect_timeout = 1

[files]
pause = "{d}/off"
lock = "{d}/manager.lock"
state = "{d}/observed.json"

[daemon]
interval = 1

[[link]]
remote = "DC2"
sources = ["127.0.0.1"]
user = "repl"
password = "x"
"#,
        d = dir.display()
    )
}

#[test]
fn the_daemon_tells_systemd_ready_watchdog_reloading_and_stopping() {
    let files = tempfile::tempdir().unwrap();
    let config = files.path().join("site.toml");
    std::fs::write(&config, daemon_config(files.path())).unwrap();
    // WATCHDOG_USEC 600 ms: pings every 300 ms while waiting for the next 1 s iteration.
    let mut d = Notified::start(config.to_str().unwrap(), Some(600_000));
    let t = Duration::from_secs(20);

    // READY=1 after the first iteration, which failed to connect: said so in STATUS. Nothing
    // comes before it.
    let ready = d.await_message("READY=1", 0, t, |m| has_line(m, "READY=1"));
    assert_eq!(ready, 0, "{:?}", d.messages);
    let status = d.messages[0]
        .lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .unwrap_or_else(|| panic!("no STATUS= with READY=1: {:?}", d.messages));
    assert!(
        status.contains("run failed") && status.contains("cannot connect"),
        "{status}"
    );
    // The watchdog: pings between iterations, and one per iteration with its status.
    let ping = d.await_message("WATCHDOG=1", 1, t, |m| m == "WATCHDOG=1\n");
    d.await_message("WATCHDOG=1 with a STATUS", 1, t, |m| {
        has_line(m, "WATCHDOG=1") && m.contains("STATUS=daemon: run failed")
    });
    assert!(ping >= 1);

    // SIGHUP: RELOADING=1 with the time, then READY=1 once the files are read again.
    let before = d.messages.len();
    d.signal(libc::SIGHUP);
    let reloading = d.await_message("RELOADING=1", before, t, |m| has_line(m, "RELOADING=1"));
    assert!(
        d.messages[reloading].contains("MONOTONIC_USEC="),
        "{:?}",
        d.messages[reloading]
    );
    let reloaded = d.await_message("READY=1 after the reload", reloading + 1, t, |m| {
        has_line(m, "READY=1")
    });
    assert!(
        d.messages[reloaded].contains("STATUS=reloaded the config and the policy"),
        "{:?}",
        d.messages[reloaded]
    );

    // SIGTERM: STOPPING=1, and the daemon exits 0.
    let before = d.messages.len();
    d.signal(libc::SIGTERM);
    d.await_message("STOPPING=1", before, t, |m| has_line(m, "STOPPING=1"));
    assert_eq!(d.await_exit(t), 0);
}

#[test]
fn a_notify_socket_that_does_not_answer_is_logged_once_and_the_daemon_goes_on() {
    let files = tempfile::tempdir().unwrap();
    let config = files.path().join("site.toml");
    std::fs::write(&config, daemon_config(files.path())).unwrap();
    let log = files.path().join("daemon.log");
    // -vv: the daemon logs each iteration ("daemon: run took").
    let mut child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "-vv", "daemon"])
        .env("NOTIFY_SOCKET", files.path().join("nobody-listens.sock"))
        .env_remove("WATCHDOG_USEC")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    // Three iterations, each failing to connect and each with a notification that fails.
    wait_until("three iterations", Duration::from_secs(20), || {
        let l = read_log();
        if l.matches("daemon: run took").count() >= 3 {
            Ok(())
        } else {
            Err(l)
        }
    });
    // SAFETY: kill(2) on a child process this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = wait_until("the daemon to exit", Duration::from_secs(20), || {
        child
            .try_wait()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "still running".to_string())
    });
    assert_eq!(status.code(), Some(0), "{}", read_log());
    let l = read_log();
    assert_eq!(l.matches("cannot notify systemd").count(), 1, "{l}");
    assert!(l.contains("signal 15: exiting"), "{l}");
}

#[test]
fn a_reload_to_a_policy_that_fails_keeps_the_old_one_and_a_daemon_starts_on_one_that_does_not_load()
{
    let files = tempfile::tempdir().unwrap();
    let config = files.path().join("site.toml");
    let with_policy = |p: &Path| {
        format!(
            "[policy]\nfile = {:?}\n{}",
            p.display().to_string(),
            daemon_config(files.path())
        )
    };
    // Starts on a policy that does not compile: the daemon runs (each run fails), and waits
    // for a reload.
    let broken = files.path().join("broken.rhai");
    std::fs::write(&broken, "fn manage_link(node, link) {\n    let x = ;\n}\n").unwrap();
    std::fs::write(&config, with_policy(&broken)).unwrap();
    let mut d = Notified::start(config.to_str().unwrap(), None);
    let t = Duration::from_secs(20);
    d.await_message("READY=1", 0, t, |m| has_line(m, "READY=1"));
    // Reloads to policies that load but fail: nested past the item limit in silent_after
    // (it overflowed the stack and killed the daemon), and a call to a function defined
    // nowhere. Each is refused; the daemon keeps what it had.
    for (name, text, says) in [
        (
            "nested.rhai",
            "fn silent_after(s) {\n    let a = [];\n    for i in 0..20000 { a = [a]; }\n    600\n}\n",
            "its silent_after fails",
        ),
        (
            "typo.rhai",
            "fn manage_link(node, link) {\n    if node.name == \"x\" { lgo(\"rare\"); }\n}\n",
            "no function lgo is defined",
        ),
    ] {
        let p = files.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::write(&config, with_policy(&p)).unwrap();
        let before = d.messages.len();
        d.signal(libc::SIGHUP);
        let reloaded = d.await_message("READY=1 after the reload", before, t, |m| {
            has_line(m, "READY=1")
        });
        assert!(
            d.messages[reloaded].contains("STATUS=reload refused, the old config and policy kept")
                && d.messages[reloaded].contains(says),
            "{name}: {:?}",
            d.messages[reloaded]
        );
    }
    // Still running: another iteration, then a clean exit.
    let before = d.messages.len();
    d.await_message("an iteration after the refusals", before, t, |m| {
        m.contains("STATUS=daemon: run failed")
    });
    let before = d.messages.len();
    d.signal(libc::SIGTERM);
    d.await_message("STOPPING=1", before, t, |m| has_line(m, "STOPPING=1"));
    assert_eq!(d.await_exit(t), 0);
}
