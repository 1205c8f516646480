//! `pxc-replication-manager check` on the real clusters: a sound node passes every line, and
//! each broken grant or setting fails (or warns on) the line that names it, with nothing
//! changed on any server. Each case gives DC1-1 a login of its own (a user created on every
//! node of DC1, outside Galera and the binlog), or breaks a setting and puts it back.

use crate::harness::wait_until;
use crate::lab::{Options, Sandbox};
use std::collections::BTreeMap;
use std::time::Duration;

/// What `check --format json` said, line by line: check -> (status, detail, fix).
struct Checked {
    code: i32,
    lines: BTreeMap<String, (String, String, String)>,
    all: String,
}

impl Checked {
    fn status(&self, check: &str) -> &str {
        &self
            .lines
            .get(check)
            .unwrap_or_else(|| panic!("no line {check:?} in\n{}", self.all))
            .0
    }

    fn detail(&self, check: &str) -> &str {
        &self.lines[check].1
    }

    fn fix(&self, check: &str) -> &str {
        &self.lines[check].2
    }

    /// Every line that is not ok, as "check: status".
    fn not_ok(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter(|(_, (s, _, _))| s != "ok")
            .map(|(c, (s, _, _))| format!("{c}: {s}"))
            .collect()
    }
}

fn check_with(sb: &Sandbox, config: &str, extra: &[&str]) -> Checked {
    let mut args = vec!["check", "--format", "json"];
    args.extend_from_slice(extra);
    let o = sb.manager_with(config, &args);
    crate::schemas::validate("check", &o.stdout).unwrap_or_else(|e| panic!("{e}\n{}", o.all()));
    let v: serde_json::Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("check --format json is not JSON ({e}):\n{}", o.all()));
    let lines = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or("").to_string();
            (s("check"), (s("status"), s("detail"), s("fix")))
        })
        .collect();
    Checked {
        code: o.code,
        lines,
        all: o.all(),
    }
}

/// DC1-1's config with the login of `user` (password `pw`), created on every DC1 node for the
/// loopback addresses with `grants` (statements with `{u}` for the user), over TCP.
fn login_config(sb: &Sandbox, user: &str, host: &str, grants: &[&str]) -> String {
    for n in sb.nodes("DC1") {
        let mut q = format!(
            "DROP USER IF EXISTS '{user}'@'{host}'; CREATE USER '{user}'@'{host}' IDENTIFIED BY 'pw';"
        );
        for g in grants {
            q.push_str(&g.replace("{u}", &format!("'{user}'@'{host}'")));
            q.push(';');
        }
        sb.sql_unlogged(&n, &q);
    }
    let text = sb.config_with_login("DC1-1", user, "pw", host == "localhost");
    let path = sb.dir.join("DC1-1").join(format!("{user}.toml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The grants of docs/installing.md's Grants table, one by one, for the cases that leave one out.
const REPLICATION: &str = "GRANT SUPER, REPLICATION SLAVE ADMIN, SLAVE MONITOR ON *.* TO {u}";
const PERCONA: &str = "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON percona.* TO {u}";
const VIEW: &str = "GRANT SELECT ON mysql.wsrep_cluster_members TO {u}";

#[test]
#[ignore = "needs real Galera clusters: scripts/test runs it (cargo test -- --include-ignored)"]
fn check_proves_every_login_grant_and_setting_and_names_each_broken_one() {
    let sb = Sandbox::start(Options::default());
    sb.settle();
    let me = sb.config("DC1-1");

    // The sandbox as set up: every line ok, exit 0; a test mail arrives.
    let before = sb.mails("DC1-1").len();
    let c = check_with(&sb, &me, &["--send-test-mail"]);
    assert_eq!(c.code, 0, "{}", c.all);
    assert!(c.not_ok().is_empty(), "{:?}\n{}", c.not_ok(), c.all);
    for check in [
        "local.login",
        "local.galera",
        "local.log_bin",
        "local.log_slave_updates",
        "local.binlog_format",
        "local.wsrep_gtid_mode",
        "local.gtid_domain_id",
        "local.skip_slave_start",
        "grants.replication",
        "grants.run",
        "grants.resume",
        "state.tables",
        "peer DC1-2",
        "peer DC1-3",
        "source DC1-DC2 127.0.0.21:3306",
        "mail.test",
    ] {
        assert_eq!(c.status(check), "ok", "{check}: {}", c.all);
    }
    assert_eq!(sb.mails("DC1-1").len(), before + 1, "the test mail arrived");
    // The table form says the same, for a person.
    let t = sb.manager_with(&me, &["check"]);
    assert!(t.stdout.contains("ok    peer DC1-2"), "{}", t.all());

    // The documented grants (docs/installing.md), as written (the manager's user renamed, and
    // the addresses the sandbox's): every line ok.
    let doc = std::fs::read_to_string(crate::harness::repo().join("docs/installing.md")).unwrap();
    let grants = doc
        .split("## Grants")
        .nth(1)
        .and_then(|s| s.split("```sql\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("docs/installing.md: Grants has a sql block");
    let statements: Vec<String> = grants
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
        .map(|q| {
            q.trim()
                .replace("'pxcrm'@'10.0.1.%'", "{u}")
                .replace("'repl'@'10.0.1.%'", "'readme_repl'@'127.%'")
        })
        .filter(|q| !q.is_empty() && !q.starts_with("CREATE USER IF NOT EXISTS {u}"))
        .collect();
    assert!(statements.len() >= 4, "{statements:?}");
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    let documented = login_config(&sb, "readme", "127.%", &refs);
    let c = check_with(&sb, &documented, &[]);
    assert!(
        c.not_ok().is_empty(),
        "the documented grants: {:?}\n{}",
        c.not_ok(),
        c.all
    );

    // A login that exists only @'localhost' (through the socket): the local lines pass, and
    // every peer fails with the denial and how to fix it.
    let local = login_config(
        &sb,
        "onlylocal",
        "localhost",
        &["GRANT ALL PRIVILEGES ON *.* TO {u}"],
    );
    let c = check_with(&sb, &local, &[]);
    assert_eq!(c.code, 1, "{}", c.all);
    assert_eq!(c.status("local.login"), "ok");
    for peer in ["peer DC1-2", "peer DC1-3"] {
        assert_eq!(c.status(peer), "fail", "{}", c.all);
        // Denied: 1045, or 1698 when the server finds no password to check.
        let d = c.detail(peer);
        assert!(
            d.contains("(error 1045)") || d.contains("(error 1698)"),
            "{d}"
        );
        assert!(
            c.fix(peer).contains("not only @'localhost'"),
            "{}",
            c.fix(peer)
        );
    }
    assert_eq!(c.not_ok().len(), 2, "{:?}", c.not_ok());

    // No privilege to stop a channel: the local grant fails, and so does every peer.
    let nostop = login_config(
        &sb,
        "nostop",
        "127.%",
        &["GRANT SLAVE MONITOR ON *.* TO {u}", PERCONA, VIEW],
    );
    let c = check_with(&sb, &nostop, &[]);
    assert_eq!(c.status("grants.replication"), "fail", "{}", c.all);
    assert_eq!(c.status("peer DC1-2"), "fail");
    assert!(
        c.detail("peer DC1-2").contains("lacks the privilege"),
        "{}",
        c.all
    );

    // REPLICATION SLAVE ADMIN without SUPER: a fence works on a Primary peer, not on one that
    // is cut off (MariaDB lets only SUPER turn wsrep_on off for a session): a warning, exit 0,
    // and 1 with --strict.
    let nosuper = login_config(
        &sb,
        "nosuper",
        "127.%",
        &[
            "GRANT REPLICATION SLAVE ADMIN, SLAVE MONITOR ON *.* TO {u}",
            PERCONA,
            VIEW,
        ],
    );
    let c = check_with(&sb, &nosuper, &[]);
    assert_eq!(c.status("peer DC1-2"), "warn", "{}", c.all);
    assert!(
        c.detail("peer DC1-2").contains("SUPER"),
        "{}",
        c.detail("peer DC1-2")
    );
    assert_eq!(c.code, 0, "{}", c.all);
    assert_eq!(check_with(&sb, &nosuper, &["--strict"]).code, 1);

    // Without DELETE on percona: `resume` would fail.
    let nodelete = login_config(
        &sb,
        "nodelete",
        "127.%",
        &[
            REPLICATION,
            "GRANT SELECT, INSERT, UPDATE, CREATE ON percona.* TO {u}",
            VIEW,
        ],
    );
    let c = check_with(&sb, &nodelete, &[]);
    assert_eq!(c.status("grants.resume"), "fail", "{}", c.all);
    assert_eq!(c.status("grants.run"), "ok");
    assert!(c.fix("grants.resume").contains("GRANT DELETE"), "{}", c.all);

    // Without SLAVE MONITOR (nor SUPER): the channels cannot be read, here or on a peer.
    let nomonitor = login_config(
        &sb,
        "nomonitor",
        "127.%",
        &["GRANT REPLICATION SLAVE ADMIN ON *.* TO {u}", PERCONA, VIEW],
    );
    let c = check_with(&sb, &nomonitor, &[]);
    assert_eq!(c.status("grants.replica_status"), "fail", "{}", c.all);
    assert_eq!(c.status("peer DC1-2"), "fail");

    // Without the view: a warning (a dead replica is replaced after the heartbeat timeout).
    let noview = login_config(&sb, "noview", "127.%", &[REPLICATION, PERCONA]);
    let c = check_with(&sb, &noview, &[]);
    assert_eq!(c.status("grants.membership"), "warn", "{}", c.all);

    // The replication login refused by the sources.
    let dir = sb.dir.join("DC1-1");
    let wrong = dir.join("wrong.password");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let text = std::fs::read_to_string(dir.join("manager.toml"))
        .unwrap()
        .replace(
            &format!("password_file = {:?}", sb.dir.join("repl.password")),
            &format!("password_file = {wrong:?}"),
        );
    assert!(text.contains("wrong.password"), "{text}");
    let badrepl = dir.join("badrepl.toml");
    std::fs::write(&badrepl, text).unwrap();
    let c = check_with(&sb, badrepl.to_str().unwrap(), &[]);
    for s in ["127.0.0.21", "127.0.0.22", "127.0.0.23"] {
        let line = format!("source DC1-DC2 {s}:3306");
        assert_eq!(c.status(&line), "fail", "{}", c.all);
        assert!(
            c.detail(&line).contains("Access denied"),
            "{}",
            c.detail(&line)
        );
    }

    // Settings, broken on the running servers of the two nodes that do not replicate (some
    // cannot change under a running channel) and put back: a node-local GTID domain equal to
    // the cluster's, gtid_ignore_duplicates off, wsrep_gtid_mode off, another server_id on a
    // peer, the remote cluster's server_id here.
    let (replica, _) = sb.replica_of("DC1", "DC1-DC2").unwrap();
    let idle: Vec<String> = sb
        .nodes("DC1")
        .into_iter()
        .filter(|n| *n != replica)
        .collect();
    let (plain, third) = (idle[0].as_str(), idle[1].as_str());
    let mine = sb.config(plain);
    let domain = sb.value(plain, "SELECT @@gtid_domain_id");
    sb.sql(plain, "SET GLOBAL gtid_domain_id = 1");
    let c = check_with(&sb, &mine, &[]);
    sb.sql(plain, &format!("SET GLOBAL gtid_domain_id = {domain}"));
    assert_eq!(c.status("local.gtid_domain_id"), "fail", "{}", c.all);

    sb.sql(plain, "SET GLOBAL gtid_ignore_duplicates = OFF");
    let c = check_with(&sb, &mine, &[]);
    sb.sql(plain, "SET GLOBAL gtid_ignore_duplicates = ON");
    assert_eq!(
        c.status("local.gtid_ignore_duplicates"),
        "warn",
        "{}",
        c.all
    );

    sb.sql(plain, "SET GLOBAL wsrep_gtid_mode = OFF");
    let c = check_with(&sb, &mine, &[]);
    sb.sql(plain, "SET GLOBAL wsrep_gtid_mode = ON");
    assert_eq!(c.status("local.wsrep_gtid_mode"), "fail", "{}", c.all);

    // MariaDB refuses another server_id while wsrep_gtid_mode is on (error 1231): a node
    // started with another one is what this stands for.
    let other_id = |node: &str, id: u32| {
        sb.sql(node, "SET GLOBAL wsrep_gtid_mode = OFF");
        sb.sql(node, &format!("SET GLOBAL server_id = {id}"));
    };
    let same_id = |node: &str| {
        sb.sql(node, "SET GLOBAL server_id = 1");
        sb.sql(node, "SET GLOBAL wsrep_gtid_mode = ON");
    };
    other_id(third, 7);
    let c = check_with(&sb, &mine, &[]);
    same_id(third);
    let peer = format!("peer {third}");
    assert_eq!(c.status(&peer), "fail", "{}", c.all);
    assert!(c.detail(&peer).contains("server_id is 7"), "{}", c.all);
    assert_eq!(c.status(&format!("peer {replica}")), "ok");

    other_id(plain, 2);
    let c = check_with(&sb, &mine, &[]);
    same_id(plain);
    let first = "source DC1-DC2 127.0.0.21:3306";
    assert_eq!(c.status(first), "fail", "{}", c.all);
    assert!(
        c.detail(first).contains("the same as this cluster's"),
        "{}",
        c.all
    );

    // Settings that need a restart: a node without the binary log, log_slave_updates and
    // skip-slave-start (its option file, and its command line through /proc).
    let cnf = sb.dir.join(third).join("my.cnf");
    let good = std::fs::read_to_string(&cnf).unwrap();
    let broken = good
        .replace("\nskip-slave-start\n", "\n")
        .replace("log_slave_updates=ON", "log_slave_updates=OFF")
        .replace("\nlog_bin=", "\n#log_bin=");
    assert_ne!(good, broken);
    sb.script(&["kill", third], &[]);
    std::fs::write(&cnf, &broken).unwrap();
    sb.script(&["start", third], &[]);
    let c = check_with(&sb, &sb.config(third), &[]);
    sb.script(&["kill", third], &[]);
    std::fs::write(&cnf, &good).unwrap();
    sb.script(&["start", third], &[]);
    for check in [
        "local.log_bin",
        "local.log_slave_updates",
        "local.skip_slave_start",
    ] {
        assert_eq!(c.status(check), "fail", "{check}: {}", c.all);
    }
    assert!(c.fix("local.skip_slave_start").contains("skip-slave-start"));

    // No state table on this node (renamed on it alone, and back).
    sb.sql_unlogged(
        plain,
        "RENAME TABLE percona.replication TO percona.replication_away",
    );
    let c = check_with(&sb, &mine, &[]);
    sb.sql_unlogged(
        plain,
        "RENAME TABLE percona.replication_away TO percona.replication",
    );
    assert_eq!(c.status("state.tables"), "fail", "{}", c.all);
    assert!(c.fix("state.tables").contains("init"), "{}", c.all);

    // Not Primary: the node is cut off from its cluster.
    sb.script(&["isolate", plain], &[]);
    let c = wait_until(
        "the node to be out of the Primary component",
        Duration::from_secs(30),
        || {
            let c = check_with(&sb, &mine, &[]);
            if c.status("local.galera") == "fail" {
                Ok(c)
            } else {
                Err(c.detail("local.galera").to_string())
            }
        },
    );
    sb.script(&["heal", plain], &[]);
    sb.script(&["wait-synced", plain], &[]);
    assert!(
        c.detail("local.galera").contains("non-Primary"),
        "{}",
        c.all
    );
    assert_eq!(c.code, 1);

    // Nothing of all this changed a channel or a row: the check reads only.
    let c = check_with(&sb, &me, &[]);
    assert!(c.not_ok().is_empty(), "{:?}", c.not_ok());
}
