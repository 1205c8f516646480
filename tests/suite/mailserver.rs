//! Mail from real runs on real clusters: the binary on two fresh 3-node MariaDB Galera
//! clusters (`lab.rs`), its `[mail]` pointed at aiosmtpd on loopback (`tests/smtp/server.py`,
//! through `mail.rs`). An election mails once per state change, with a subject that names the
//! cluster, the link, the node and its new role and a body with the link's facts; and an SMTP
//! server that is down, slow or refusing changes nothing in the election, costs a run at most
//! `[mail] timeout`, and is logged (the run exits 1, `RunSummary::exit_code`).
//!
//! `#[ignore]`d like `sandbox.rs`: `scripts/test` runs them with `--include-ignored`.

use crate::harness::Out;
use crate::lab::{DC1, DC2, Sandbox, addr};
use crate::mail::{SmtpServer, header, headers, require_aiosmtpd};
use std::time::{Duration, Instant};

/// `[mail] timeout` on the nodes.
const MAIL_TIMEOUT: u64 = 3;

/// Points every node's `[mail]` at an SMTP server on 127.0.0.1:`port`, plain.
fn use_smtp(sb: &Sandbox, port: u16) {
    for n in sb.all_nodes() {
        let path = sb.config(&n);
        let text = std::fs::read_to_string(&path).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("directory = "))
            .map(|l| {
                if l == "transport = \"file\"" {
                    format!(
                        "transport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_security = \"none\"\ntimeout = {MAIL_TIMEOUT}\n"
                    )
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert!(text.contains("transport = \"smtp\""), "{path}: {text}");
        std::fs::write(&path, text).unwrap();
    }
}

/// The subjects and bodies received so far.
fn received(s: &SmtpServer) -> Vec<(String, String)> {
    s.received()
        .iter()
        .map(|m| {
            let data = m["data"].as_str().unwrap();
            let subject = header(&headers(data), "Subject").to_string();
            let body = data[data.find("\r\n\r\n").map_or(0, |i| i + 4)..].replace("\r\n", "\n");
            (subject, body)
        })
        .collect()
}

/// One cron run on a node, timed.
fn timed_run(sb: &Sandbox, node: &str) -> (Out, Duration) {
    let started = Instant::now();
    let o = sb.manager(node, &["run"]);
    (o, started.elapsed())
}

/// Two cron rounds over every node (rows, then the election), as `Sandbox::settle`, but
/// returning each run instead of requiring exit 0.
fn two_rounds(sb: &Sandbox) -> Vec<(String, Out, Duration)> {
    let mut runs = Vec::new();
    for _ in 0..2 {
        for n in sb.live_nodes() {
            let (o, took) = timed_run(sb, &n);
            runs.push((n, o, took));
        }
    }
    runs
}

/// The one replica of each link, with its channel healthy and the only `Yes` row.
fn assert_one_healthy_replica_per_link(sb: &Sandbox) -> (String, String) {
    let (r1, c1) = sb.only_replica(&DC1).unwrap();
    let (r2, c2) = sb.only_replica(&DC2).unwrap();
    assert!(c1.healthy() && c2.healthy(), "{c1:?} {c2:?}");
    for (node, link, replica) in [("DC1-1", "DC1-DC2", &r1), ("DC2-1", "DC2-DC1", &r2)] {
        let yes: Vec<String> = sb
            .roles(node, link)
            .into_iter()
            .filter(|r| r.ends_with("=Yes"))
            .collect();
        assert_eq!(yes, [format!("{replica}=Yes")], "{link}");
    }
    (r1, r2)
}

#[test]
#[ignore = "needs real Galera clusters: scripts/test runs it (cargo test -- --include-ignored)"]
fn an_election_mails_once_per_state_change_with_the_facts() {
    require_aiosmtpd();
    let server = SmtpServer::start(&["--security", "none"]);
    let sb = Sandbox::fresh(179, 180, 20);
    use_smtp(&sb, server.port);
    for (n, o, _) in two_rounds(&sb) {
        assert_eq!(o.code, 0, "{n}: {}", o.all());
    }
    let (r1, r2) = assert_one_healthy_replica_per_link(&sb);
    let mails = received(&server);
    // One state change per link: its new replica.
    for (cluster, link, replica, remote) in [
        ("DC1", "DC1-DC2", &r1, "DC2"),
        ("DC2", "DC2-DC1", &r2, "DC1"),
    ] {
        let of_link: Vec<&(String, String)> = mails
            .iter()
            .filter(|(s, _)| s.contains(&format!(" {cluster} {link} ")))
            .collect();
        assert_eq!(of_link.len(), 1, "{link}: {mails:#?}");
        let (subject, body) = of_link[0];
        assert!(
            subject.starts_with(&format!(
                "[pxc-replication-manager] {cluster} {link} {replica} Yes: {replica} is the new replica (source 127.0.0."
            )),
            "{subject}"
        );
        let (_, channel) = sb
            .only_replica(
                &sb.nodes(cluster)
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        for want in [
            format!("node: {replica}\n"),
            format!("cluster: {cluster}\n"),
            format!("link: {link}\n"),
            format!("remote: {remote}\n"),
            "role: Yes\n".to_string(),
            format!("source: {}:3306\n", channel.source),
            "io_thread: Yes (".to_string(),
            "sql_thread: Yes\n".to_string(),
            "last_io_error: (none)\n".to_string(),
            "last_sql_error: (none)\n".to_string(),
            "lag_seconds: ".to_string(),
            "time: ".to_string(),
        ] {
            assert!(body.contains(&want), "{link}: no {want:?} in\n{body}");
        }
        for n in sb.nodes(cluster) {
            let role = if &n == replica { "Yes" } else { "No" };
            assert!(
                body.contains(&format!("  {n} {role} heartbeat ")),
                "{link}: no row of {n} in\n{body}"
            );
        }
        // The source is a node of the remote cluster.
        let remote_nodes = if remote == "DC2" { DC2 } else { DC1 };
        assert!(
            remote_nodes.iter().any(|n| addr(n) == channel.source),
            "{channel:?}"
        );
    }
    // No change, no mail.
    let before = mails.len();
    for (n, o, _) in two_rounds(&sb) {
        assert_eq!(o.code, 0, "{n}: {}", o.all());
    }
    assert_eq!(received(&server).len(), before, "{:#?}", received(&server));
}

/// An election while the SMTP server fails as `args` say (`None`: nothing listens).
fn election_with_a_failing_server(args: Option<&[&str]>, logged: &str) {
    let logged = logged.to_string();
    if args.is_some() {
        require_aiosmtpd();
    }
    let server = args.map(SmtpServer::start);
    let port = match &server {
        Some(s) => s.port,
        None => std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    };
    let sb = Sandbox::fresh(179, 180, 20);
    use_smtp(&sb, port);
    let runs = two_rounds(&sb);
    let (r1, r2) = assert_one_healthy_replica_per_link(&sb);
    // The elected nodes mailed, failed to, said so and exit 1; every other run exits 0.
    for (n, o, took) in &runs {
        let mailed = o.stderr.contains("could not send the mail");
        if mailed {
            assert_eq!(o.code, 1, "{n}: {}", o.all());
            assert!(
                o.stderr.contains(&logged),
                "{n}: no {logged:?} in {}",
                o.all()
            );
            assert!(
                o.stderr
                    .contains(&format!("SMTP server 127.0.0.1:{port} (plain)")),
                "{n}: {}",
                o.all()
            );
            assert!(
                o.stderr.contains("Replication is not affected"),
                "{}",
                o.all()
            );
            // The mail cost the run at most its timeout: the time given up after is logged.
            let gave_up: f64 = o
                .stderr
                .split("gave up after ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{n}: no 'gave up after' in {}", o.all()));
            assert!(gave_up <= MAIL_TIMEOUT as f64 + 1.0, "{n}: {gave_up} s");
            // Connect (20 s) is the longest other wait of an election on loopback.
            assert!(
                *took < Duration::from_secs(20 + MAIL_TIMEOUT + 10),
                "{n}: {took:?}"
            );
        } else {
            assert_eq!(o.code, 0, "{n}: {}", o.all());
        }
    }
    for r in [&r1, &r2] {
        assert!(
            runs.iter()
                .any(|(n, o, _)| n == r && o.stderr.contains("could not send the mail")),
            "{r} was elected without trying to mail"
        );
    }
    if let Some(s) = &server {
        assert!(s.received().is_empty(), "{:#?}", s.received());
    }
    // The next rounds change nothing and mail nothing.
    for (n, o, _) in two_rounds(&sb) {
        assert_eq!(o.code, 0, "{n}: {}", o.all());
    }
    assert_eq!(assert_one_healthy_replica_per_link(&sb), (r1, r2));
}

#[test]
#[ignore = "needs real Galera clusters: scripts/test runs it (cargo test -- --include-ignored)"]
fn an_smtp_server_that_is_down_changes_nothing_in_an_election() {
    election_with_a_failing_server(None, "refused");
}

#[test]
#[ignore = "needs real Galera clusters: scripts/test runs it (cargo test -- --include-ignored)"]
fn an_smtp_server_that_is_slow_changes_nothing_in_an_election() {
    election_with_a_failing_server(
        Some(&["--security", "none", "--delay", "30"]),
        &format!("no answer within [mail] timeout = {MAIL_TIMEOUT} s"),
    );
}

#[test]
#[ignore = "needs real Galera clusters: scripts/test runs it (cargo test -- --include-ignored)"]
fn an_smtp_server_that_refuses_changes_nothing_in_an_election() {
    election_with_a_failing_server(
        Some(&["--security", "none", "--refuse", "rcpt"]),
        "relaying denied",
    );
}
