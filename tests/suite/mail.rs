//! Mail over SMTP, proven against a real SMTP server: aiosmtpd (`tests/smtp/server.py`) on
//! loopback, started per test, with a throwaway CA and server certificate made by `openssl`.
//! Each test sends through the library's `exec::mail::deliver` with a `[mail]` section parsed
//! as a config file is, and asserts what the server received: the envelope, the headers, the
//! body, whether the session was TLS and who logged in; or, for a server that is down, slow or
//! refusing, the error and the time it took.
//!
//! Tests that need aiosmtpd are `#[ignore]`d with that reason, so a plain `cargo test` lists
//! them as skipped; `scripts/test` (and CI) runs them, and there they fail when
//! `/usr/bin/python3` lacks it (`apt-get install python3-aiosmtpd`; `scripts/sandbox install`
//! installs it).

use pxc_replication_manager::config::{Config, MailConfig};
use pxc_replication_manager::exec::mail::{Mail, deliver, send_queued};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::PYTHON;
/// `[mail] timeout` in these tests.
const TIMEOUT: u64 = 2;
/// What a failed send may take past `[mail] timeout`: the sending thread's margin, and a
/// loaded test machine.
const SLACK: Duration = Duration::from_millis(1500);

/// Panics unless aiosmtpd can run: the tests that need it are ignored, and fail without it once
/// asked for.
pub(crate) fn require_aiosmtpd() {
    crate::harness::require_python_module("aiosmtpd", "apt-get install python3-aiosmtpd");
}

macro_rules! need_aiosmtpd {
    () => {
        require_aiosmtpd();
    };
}

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost signed by it.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let run = |args: &[&str]| {
            let o = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("openssl runs");
            assert!(
                o.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        let mut ca = vec!["req", "-x509", "-nodes", "-days", "2"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=pxcrm test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run(&ca);
        let mut csr = vec!["req", "-nodes"];
        csr.extend(ec);
        csr.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        run(&csr);
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        Certs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// aiosmtpd on 127.0.0.1, killed when dropped.
pub(crate) struct SmtpServer {
    child: Child,
    pub port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts the server with `args` (see tests/smtp/server.py) and waits for its port.
    pub(crate) fn start(args: &[&str]) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("received.jsonl");
        let script = crate::harness::repo().join("tests/smtp/server.py");
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .arg("--out")
            .arg(&out)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("the SMTP server {args:?} did not print its port within 30 s");
            }
        };
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP server printed {line:?}, not PORT <n>"));
        SmtpServer {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    /// The messages recorded so far.
    pub(crate) fn received(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `[mail]` section for the server at `port`, parsed as a config file is.
fn config(port: u16, extra: &str) -> MailConfig {
    let text = format!(
        "[mail]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nfrom = \"pxcrm@dc1.example.com\"\nto = [\"dba@example.com\", \"oncall@example.com\"]\ntimeout = {TIMEOUT}\n{extra}"
    );
    Config::parse(&text, Path::new("/etc/pxcrm/manager.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .mail
}

fn mail() -> Mail {
    Mail {
        subject: "DC1 DC1-DC2 DC1-2 Yes: DC1-2 is the new replica (source 127.0.0.21:3306)".into(),
        body: "DC1-2 now replicates DC2 from 127.0.0.21:3306.\n\n-- facts --\nnode: DC1-2\n".into(),
        once: None,
    }
}

/// The header lines of a received message, up to the blank line, unfolded (a line that
/// starts with white space continues the one before).
pub(crate) fn headers(data: &str) -> Vec<String> {
    let mut hs: Vec<String> = Vec::new();
    for l in data.lines().take_while(|l| !l.is_empty()) {
        match hs.last_mut() {
            Some(last) if l.starts_with([' ', '\t']) => last.push_str(l),
            _ => hs.push(l.to_string()),
        }
    }
    hs
}

pub(crate) fn header<'a>(hs: &'a [String], name: &str) -> &'a str {
    let prefix = format!("{name}: ");
    hs.iter()
        .find_map(|h| h.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} header in {hs:#?}"))
}

/// Asserts the one message received is `mail()` as configured: envelope, headers, body.
fn assert_the_mail(server: &SmtpServer) -> serde_json::Value {
    let got = server.received();
    assert_eq!(got.len(), 1, "{got:#?}");
    let m = got[0].clone();
    assert_eq!(m["mail_from"], "pxcrm@dc1.example.com", "{m:#?}");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["dba@example.com", "oncall@example.com"])
    );
    let data = m["data"].as_str().unwrap();
    let hs = headers(data);
    assert_eq!(header(&hs, "From"), "pxcrm@dc1.example.com");
    assert_eq!(
        header(&hs, "To"),
        "dba@example.com, oncall@example.com",
        "{hs:#?}"
    );
    assert_eq!(
        header(&hs, "Subject"),
        "[pxc-replication-manager] DC1 DC1-DC2 DC1-2 Yes: DC1-2 is the new replica (source 127.0.0.21:3306)"
    );
    assert!(
        header(&hs, "Content-Type").starts_with("text/plain"),
        "{hs:#?}"
    );
    let id = header(&hs, "Message-ID");
    assert!(
        id.starts_with('<') && id.ends_with('>') && id.contains('@'),
        "{id}"
    );
    // RFC 5322 date, e.g. "Thu, 26 Nov 2026 19:30:00 +0000".
    let date = header(&hs, "Date");
    assert!(
        chrono::DateTime::parse_from_rfc2822(date).is_ok(),
        "Date: {date}"
    );
    let body = &data[data.find("\r\n\r\n").map_or(0, |i| i + 4)..];
    assert!(
        body.contains("DC1-2 now replicates DC2 from 127.0.0.21:3306."),
        "{body}"
    );
    assert!(body.contains("node: DC1-2"), "{body}");
    m
}

#[test]
#[ignore = "needs aiosmtpd: scripts/test runs it"]
fn plain_smtp_delivers_the_mail_and_never_upgrades_to_tls() {
    need_aiosmtpd!();
    let certs = Certs::new();
    // The server offers STARTTLS; smtp_security = "none" must not take it.
    let s = SmtpServer::start(&[
        "--security",
        "none",
        "--cert",
        certs.path("server.pem").to_str().unwrap(),
        "--key",
        certs.path("server.key").to_str().unwrap(),
    ]);
    deliver(&config(s.port, "smtp_security = \"none\"\n"), &mail()).unwrap();
    let m = assert_the_mail(&s);
    assert_eq!(m["tls"], false, "{m:#?}");
    assert_eq!(m["login"], serde_json::Value::Null);
}

#[test]
#[ignore = "needs aiosmtpd: scripts/test runs it"]
fn starttls_delivers_over_tls_trusting_the_configured_ca() {
    need_aiosmtpd!();
    let certs = Certs::new();
    let s = SmtpServer::start(&[
        "--security",
        "starttls",
        "--cert",
        certs.path("server.pem").to_str().unwrap(),
        "--key",
        certs.path("server.key").to_str().unwrap(),
    ]);
    let ca = format!("smtp_ca_file = \"{}\"\n", certs.path("ca.pem").display());
    deliver(
        &config(s.port, &format!("smtp_security = \"starttls\"\n{ca}")),
        &mail(),
    )
    .unwrap();
    assert_eq!(assert_the_mail(&s)["tls"], true);
}

#[test]
#[ignore = "needs aiosmtpd: scripts/test runs it"]
fn a_server_certificate_from_an_unknown_ca_is_refused() {
    need_aiosmtpd!();
    let certs = Certs::new();
    let s = SmtpServer::start(&[
        "--security",
        "tls",
        "--cert",
        certs.path("server.pem").to_str().unwrap(),
        "--key",
        certs.path("server.key").to_str().unwrap(),
    ]);
    let e = deliver(&config(s.port, "smtp_security = \"tls\"\n"), &mail())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("127.0.0.1:{} (TLS)", s.port)) && e.contains("certificate"),
        "{e}"
    );
    assert!(s.received().is_empty());
}

/// Implicit TLS or STARTTLS, with a login; the wrong password is refused.
fn login_over(security: &str) {
    let certs = Certs::new();
    let s = SmtpServer::start(&[
        "--security",
        security,
        "--cert",
        certs.path("server.pem").to_str().unwrap(),
        "--key",
        certs.path("server.key").to_str().unwrap(),
        "--auth",
        "pxcrm:s3cret",
    ]);
    let pw = certs.path("smtp.pw");
    let cfg = |password: &str| {
        std::fs::write(&pw, format!("{password}\n")).unwrap();
        config(
            s.port,
            &format!(
                "smtp_security = \"{security}\"\nsmtp_ca_file = \"{}\"\nsmtp_user = \"pxcrm\"\nsmtp_password_file = \"{}\"\n",
                certs.path("ca.pem").display(),
                pw.display()
            ),
        )
    };
    let e = deliver(&cfg("wrong"), &mail()).unwrap_err().to_string();
    assert!(e.contains("535"), "{e}");
    assert!(s.received().is_empty());
    deliver(&cfg("s3cret"), &mail()).unwrap();
    let m = assert_the_mail(&s);
    assert_eq!(m["tls"], true);
    assert_eq!(m["login"], "pxcrm");
}

#[test]
#[ignore = "needs aiosmtpd: scripts/test runs it"]
fn implicit_tls_with_a_login_delivers_and_a_wrong_password_is_an_error() {
    need_aiosmtpd!();
    login_over("tls");
}

#[test]
#[ignore = "needs aiosmtpd: scripts/test runs it"]
fn starttls_with_a_login_delivers_and_a_wrong_password_is_an_error() {
    need_aiosmtpd!();
    login_over("starttls");
}

/// Sends, and returns the error and how long the send took.
fn failing(cfg: &MailConfig) -> (String, Duration) {
    let started = Instant::now();
    let e = deliver(cfg, &mail()).expect_err("the send must fail");
    (e.to_string(), started.elapsed())
}

#[test]
fn a_server_that_is_down_is_a_quick_clear_error() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (e, took) = failing(&config(port, "smtp_security = \"none\"\n"));
    assert!(
        e.starts_with(&format!("SMTP server 127.0.0.1:{port} (plain): ")),
        "{e}"
    );
    assert!(e.to_lowercase().contains("refused"), "{e}");
    assert!(took < SLACK, "{took:?}");
}

#[test]
#[ignore = "needs aiosmtpd: scripts/test runs it"]
fn a_slow_server_is_given_up_after_the_timeout() {
    need_aiosmtpd!();
    // Every reply after the greeting comes after 10 s: the first command times out.
    let s = SmtpServer::start(&["--security", "none", "--delay", "10"]);
    let (e, took) = failing(&config(s.port, "smtp_security = \"none\"\n"));
    assert!(
        e.starts_with(&format!("SMTP server 127.0.0.1:{} (plain): ", s.port)),
        "{e}"
    );
    assert!(
        e.contains(&format!("no answer within [mail] timeout = {TIMEOUT} s")),
        "{e}"
    );
    let bound = Duration::from_secs(TIMEOUT) + SLACK;
    assert!(took < bound, "took {took:?}, more than {bound:?}");
    assert!(
        took >= Duration::from_secs(TIMEOUT) - Duration::from_millis(100),
        "{took:?}"
    );
    assert!(s.received().is_empty());
}

#[test]
#[ignore = "needs aiosmtpd: scripts/test runs it"]
fn a_server_that_answers_each_command_just_in_time_is_given_up_at_the_timeout() {
    need_aiosmtpd!();
    // Each reply within the per-command timeout, the whole mail far beyond it (EHLO, MAIL,
    // two RCPT and DATA: 5 x 1.5 s): the overall deadline gives up.
    let s = SmtpServer::start(&["--security", "none", "--delay", "1.5"]);
    let (e, took) = failing(&config(s.port, "smtp_security = \"none\"\n"));
    assert!(
        e.contains(&format!("no answer within [mail] timeout = {TIMEOUT} s")),
        "{e}"
    );
    let bound = Duration::from_secs(TIMEOUT) + SLACK;
    assert!(took < bound, "took {took:?}, more than {bound:?}");
}

#[test]
#[ignore = "needs aiosmtpd: scripts/test runs it"]
fn a_server_that_refuses_the_recipient_or_the_message_is_an_error_with_its_reply() {
    need_aiosmtpd!();
    for (refuse, code, text) in [
        ("rcpt", "550", "relaying denied"),
        ("data", "554", "message rejected"),
    ] {
        let s = SmtpServer::start(&["--security", "none", "--refuse", refuse]);
        let (e, took) = failing(&config(s.port, "smtp_security = \"none\"\n"));
        assert!(e.contains(code) && e.contains(text), "{refuse}: {e}");
        assert!(took < SLACK, "{refuse}: {took:?}");
        assert!(s.received().is_empty(), "{refuse}");
    }
}

fn numbered(n: usize) -> Vec<Mail> {
    (1..=n)
        .map(|i| Mail {
            subject: format!("DC1 DC1-DC2 DC1-{i} Yes: mail {i}"),
            body: format!("body {i}"),
            once: None,
        })
        .collect()
}

#[test]
#[ignore = "needs aiosmtpd: scripts/test runs it"]
fn a_runs_mails_are_each_one_message_in_order() {
    need_aiosmtpd!();
    let s = SmtpServer::start(&["--security", "none"]);
    let failures = send_queued(
        &config(s.port, "smtp_security = \"none\"\n"),
        "DC1-1",
        numbered(3),
    );
    assert_eq!(failures, 0);
    let subjects: Vec<String> = s
        .received()
        .iter()
        .map(|m| header(&headers(m["data"].as_str().unwrap()), "Subject").to_string())
        .collect();
    assert_eq!(
        subjects,
        (1..=3)
            .map(|i| format!("[pxc-replication-manager] DC1 DC1-DC2 DC1-{i} Yes: mail {i}"))
            .collect::<Vec<_>>()
    );
}

#[test]
#[ignore = "needs aiosmtpd: scripts/test runs it"]
fn a_slow_server_costs_a_run_one_timeout_however_many_mails_it_has() {
    need_aiosmtpd!();
    let s = SmtpServer::start(&["--security", "none", "--delay", "10"]);
    let started = Instant::now();
    let failures = send_queued(
        &config(s.port, "smtp_security = \"none\"\n"),
        "DC1-1",
        numbered(4),
    );
    let took = started.elapsed();
    assert_eq!(failures, 4, "every mail is counted as not sent");
    let bound = Duration::from_secs(TIMEOUT) + SLACK;
    assert!(
        took < bound,
        "4 mails took {took:?}, more than one timeout ({bound:?})"
    );
}

#[test]
#[ignore = "needs aiosmtpd: scripts/test runs it"]
fn lettre_sends_a_login_over_plain_smtp_when_offered_which_the_config_allows_only_on_loopback() {
    need_aiosmtpd!();
    // A server that offers AUTH without TLS: lettre logs in over the plain connection. This is
    // why `[mail]` refuses smtp_user with smtp_security = "none" to any host but this machine.
    let s = SmtpServer::start(&[
        "--security",
        "none",
        "--auth",
        "pxcrm:s3cret",
        "--auth-over-plain",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("smtp.pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let login = format!(
        "smtp_security = \"none\"\nsmtp_user = \"pxcrm\"\nsmtp_password_file = \"{}\"\n",
        pw.display()
    );
    deliver(&config(s.port, &login), &mail()).unwrap();
    let m = assert_the_mail(&s);
    assert_eq!(
        (m["tls"].clone(), m["login"].clone()),
        (false.into(), "pxcrm".into())
    );
    let remote = format!(
        "[mail]\ntransport = \"smtp\"\nsmtp_host = \"smtp.example.com\"\nto = [\"dba@example.com\"]\n{login}"
    );
    let e = Config::parse(&remote, Path::new("/etc/pxcrm/manager.toml")).unwrap_err();
    assert!(
        e.message.contains("would send the password in clear"),
        "{e}"
    );
}
