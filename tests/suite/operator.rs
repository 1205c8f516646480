//! The operator's surface on real clusters: the cluster-wide pause (`pause`, `resume`, what
//! `status` shows of it) and the hooks (`[hooks]`), with the real binary against fresh sandbox
//! clusters. `#[ignore]`d like every real-cluster test; `scripts/test` runs them.

use crate::harness::wait_until;
use crate::lab::{DC1, DC2, Sandbox};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A hook script that appends one line per call, with the facts it was given, to `log`.
fn recording_hook(dir: &Path, log: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"event=$PXCRM_EVENT node=$PXCRM_NODE cluster=$PXCRM_CLUSTER link=$PXCRM_LINK role=$PXCRM_ROLE old=$PXCRM_OLD_ROLE source=$PXCRM_SOURCE scope=$PXCRM_PAUSE_SCOPE by=$PXCRM_PAUSE_BY reason=$PXCRM_REASON io=$PXCRM_IO_THREAD\" >> {}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Appends a `[hooks]` table to the manager config of each node.
fn add_hooks(sb: &Sandbox, nodes: &[&str], hooks: &str) {
    for n in nodes {
        let path = sb.config(n);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("\n[hooks]\n{hooks}\n"));
        std::fs::write(&path, text).unwrap();
    }
}

/// The hook calls recorded so far.
fn calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn count(calls: &[String], needle: &str) -> usize {
    calls.iter().filter(|c| c.contains(needle)).count()
}

#[test]
#[ignore = "needs real Galera clusters: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_cluster_pause_on_one_node_holds_every_node_of_the_cluster_until_resume() {
    let sb = Sandbox::fresh(179, 180, 20);
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("hooks.log");
    let hook = recording_hook(tmp.path(), &log);
    let h = hook.display();
    add_hooks(
        &sb,
        &DC1,
        &format!(
            "on_role_change = \"{h}\"\non_source_change = \"{h}\"\non_paused = \"{h}\"\non_resumed = \"{h}\""
        ),
    );
    sb.settle();
    let (replica, _) = sb.only_replica(&DC1).unwrap();
    let others: Vec<&str> = DC1.iter().copied().filter(|n| *n != replica).collect();
    // One hook call per state change: Proposed, then Yes, and the first source.
    let c = calls(&log);
    assert_eq!(
        count(
            &c,
            &format!(
                "event=role-change node={replica} cluster=DC1 link=DC1-DC2 role=Proposed old=No"
            )
        ),
        1,
        "{c:#?}"
    );
    assert_eq!(
        count(
            &c,
            &format!(
                "event=role-change node={replica} cluster=DC1 link=DC1-DC2 role=Yes old=Proposed source=127.0.0.2"
            )
        ),
        1,
        "{c:#?}"
    );
    assert_eq!(
        count(&c, &format!("event=source-change node={replica}")),
        1,
        "{c:#?}"
    );
    assert_eq!(count(&c, "event=role-change"), 2, "{c:#?}");
    // With the channel's facts at the moment: the new replica's IO thread runs.
    let yes = c
        .iter()
        .find(|l| l.contains("role=Yes old=Proposed"))
        .unwrap();
    assert!(yes.contains(" io=Yes ("), "{yes}");
    let roles_before = sb.roles(others[0], "DC1-DC2");

    // A dry run prints the statement and writes nothing.
    let o = sb.manager(others[0], &["pause", "--dry-run", "--reason", "x"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("REPLACE INTO percona.replication_pause (cluster, pausedBy, reason, pausedAt, pausedUntil) VALUES ('DC1', "),
        "{}",
        o.all()
    );
    assert_eq!(
        sb.value(others[1], "SELECT COUNT(*) FROM percona.replication_pause"),
        "0"
    );

    let o = sb.manager(
        others[0],
        &["pause", "--reason", "upgrade to 10.11.9", "--for", "1h"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stderr.contains("cluster DC1 paused by"), "{}", o.all());
    // Every node of DC1 sees it; status names who, why and until when.
    let o = sb.manager(others[1], &["status"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains(&format!("CLUSTER PAUSED by {} (", others[0])),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("reason \"upgrade to 10.11.9\""),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains(", until 20"), "{}", o.stdout);
    // The row reaches DC2 through asynchronous replication, and pauses nothing there.
    wait_until(
        "DC1's pause row to reach DC2",
        Duration::from_secs(30),
        || match sb.try_sql("DC2-1", "SELECT cluster FROM percona.replication_pause") {
            Ok(r) if r.iter().any(|r| r[0] == "DC1") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let o = sb.manager("DC2-2", &["status"]);
    assert!(!o.stdout.contains("CLUSTER PAUSED"), "{}", o.stdout);

    // A policy that does not load keeps none of the host's own rules from running: the paused
    // replica reports (its on_paused hook fires, below), and the run ends with the error.
    let broken = tmp.path().join("broken.rhai");
    std::fs::write(&broken, "fn manage_link(node, link) {\n    let x = ;\n}\n").unwrap();
    let cfg = tmp.path().join("broken.toml");
    let mut text = std::fs::read_to_string(sb.config(&replica)).unwrap();
    text.push_str(&format!(
        "\n[policy]\nfile = {:?}\n",
        broken.display().to_string()
    ));
    std::fs::write(&cfg, text).unwrap();
    let o = sb.manager_with(&cfg.display().to_string(), &["run"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("broken.rhai:2:13: ")
            && o.stderr.contains("running the host's own rules without it")
            && o.stderr.contains("cluster DC1 paused by"),
        "{}",
        o.all()
    );
    assert_eq!(
        count(&calls(&log), &format!("event=paused node={replica} ")),
        1,
        "{:#?}",
        calls(&log)
    );

    // A fault the manager would repair at once: the replica's channel stopped by hand.
    sb.sql(&replica, "STOP SLAVE 'DC1-DC2'");
    for _ in 0..2 {
        for n in DC1 {
            let o = sb.run(n);
            assert!(
                o.stderr.contains("cluster DC1 paused by"),
                "{n}: {}",
                o.all()
            );
        }
        sb.round(&DC2);
    }
    let ch = sb.channels(&replica).unwrap();
    assert!(ch.iter().all(|c| !c.running()), "{replica}: {ch:?}");
    for n in &others {
        assert!(
            sb.channels(n).unwrap().is_empty(),
            "{n} must not have connected"
        );
    }
    assert_eq!(sb.roles(others[1], "DC1-DC2"), roles_before);
    let c = calls(&log);
    for n in DC1 {
        assert_eq!(
            count(
                &c,
                &format!(
                    "event=paused node={n} cluster=DC1 link= role= old= source= scope=cluster by={} (",
                    others[0]
                )
            ),
            1,
            "{c:#?}"
        );
    }
    assert_eq!(count(&c, "reason=upgrade to 10.11.9"), 3, "{c:#?}");
    // DC2 is not paused: its replica still runs.
    sb.only_replica(&DC2).unwrap();

    // resume, from another node: the cluster acts again and repairs the link.
    let o = sb.manager(others[1], &["resume"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stderr.contains("cluster DC1 resumed"), "{}", o.all());
    // Both are in the history, with who, why and for how long.
    let o = sb.manager(&replica, &["history", "--format", "json"]);
    crate::schemas::validate("history", &o.stdout).unwrap();
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let events = j["events"].as_array().unwrap();
    // (Each node also records finding itself paused and resumed: the command's own rows say
    // "cluster paused by", "cluster resumed by".)
    let detail = |event: &str, node: &str| {
        events
            .iter()
            .filter(|e| e["event"] == event && e["node"] == node && e["link"].is_null())
            .filter_map(|e| e["detail"].as_str())
            .find(|d| d.starts_with(&format!("cluster {event} by")))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no {event} by {node}: {}", o.stdout))
    };
    let paused = detail("paused", others[0]);
    assert!(
        paused.starts_with(&format!("cluster paused by {} (", others[0]))
            && paused.contains("for 3600 s (\"upgrade to 10.11.9\")"),
        "{paused}"
    );
    assert!(
        detail("resumed", others[1]).contains(&format!("it was paused by {} (", others[0])),
        "{}",
        o.stdout
    );
    let o = sb.manager(&replica, &["status"]);
    assert!(!o.stdout.contains("CLUSTER PAUSED"), "{}", o.stdout);
    assert!(!o.stdout.contains("cluster pause"), "{}", o.stdout);
    wait_until(
        "a running replica of DC2 after resume",
        Duration::from_secs(60),
        || {
            sb.round(&DC1);
            match sb.only_replica(&DC1) {
                Ok((_, c)) if c.healthy() => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
    let c = calls(&log);
    for n in DC1 {
        assert_eq!(count(&c, &format!("event=resumed node={n} ")), 1, "{c:#?}");
    }

    // A pause with an end ends by itself, on the servers' clock.
    let o = sb.manager(others[0], &["pause", "--for", "3s"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let o = sb.run(&replica);
    assert!(o.stderr.contains("cluster DC1 paused by"), "{}", o.all());
    wait_until("the pause to end", Duration::from_secs(20), || {
        let o = sb.manager(others[1], &["status"]);
        if o.stdout.contains("cluster pause by") && o.stdout.contains("ended at") {
            Ok(())
        } else {
            Err(o.stdout)
        }
    });
    let o = sb.run(&replica);
    assert!(!o.stderr.contains("paused by"), "{}", o.all());
}

#[test]
#[ignore = "needs real Galera clusters: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_hook_that_hangs_or_cannot_start_is_logged_and_the_election_goes_on() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::fresh(179, 180, 20);
    let tmp = tempfile::tempdir().unwrap();
    let hang = tmp.path().join("hang.sh");
    std::fs::write(&hang, "#!/bin/sh\nsleep 60\n").unwrap();
    std::fs::set_permissions(&hang, std::fs::Permissions::from_mode(0o755)).unwrap();
    add_hooks(
        &sb,
        &DC1,
        &format!(
            "on_role_change = \"{}\"\non_source_change = \"/nonexistent/hook\"\ntimeout = \"2s\"",
            hang.display()
        ),
    );
    let mut outputs = String::new();
    let mut longest = Duration::ZERO;
    for _ in 0..2 {
        for n in DC1 {
            let t = Instant::now();
            let o = sb.run(n);
            longest = longest.max(t.elapsed());
            outputs.push_str(&o.all());
        }
    }
    let (replica, c) = sb.only_replica(&DC1).unwrap();
    assert!(c.healthy(), "{c:?}");
    assert!(
        outputs.contains(&format!(
            "{replica}: hook on_role_change ({}): did not end within 2 s ([hooks] timeout) and was killed",
            hang.display()
        )),
        "{outputs}"
    );
    assert!(
        outputs.contains(&format!(
            "{replica}: hook on_source_change (/nonexistent/hook): cannot start /nonexistent/hook"
        )),
        "{outputs}"
    );
    // Two role changes (Proposed, Yes) at 2 s each, plus the connection: a bounded wait,
    // not the hook's 60 s.
    assert!(longest < Duration::from_secs(20), "a run took {longest:?}");
    // No hook's child is left: the process group was killed.
    let left = std::process::Command::new("pgrep")
        .args(["-f", &hang.display().to_string()])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
#[ignore = "needs the sandbox clusters: scripts/test"]
fn clear_failure_lets_the_next_run_elect_without_waiting_out_the_failed_timeout() {
    let sb = Sandbox::fresh(179, 180, 20);
    sb.settle();
    let (replica, _) = sb.only_replica(&DC1).unwrap();
    let other = DC1.iter().copied().find(|n| *n != replica).unwrap();
    // The replica gave the link up on a data error, as a run records it: its channel
    // stopped, its row Failed, the failure recorded for every node to read.
    sb.sql(&replica, "STOP SLAVE 'DC1-DC2'");
    sb.sql(
        &replica,
        &format!(
            "UPDATE percona.replication SET isReplica = 'Failed' WHERE connectionName = 'DC1-DC2' AND host = '{replica}'"
        ),
    );
    sb.sql(
        &replica,
        &format!(
            "UPDATE percona.replication_claim SET failedHost = '{replica}', failedKind = 'sql', failedAt = NOW(), failedDetail = 'Duplicate entry 7 for key PRIMARY' WHERE connectionName = 'DC1-DC2'"
        ),
    );
    sb.round(&DC1);
    assert!(
        sb.only_replica(&DC1).is_err(),
        "a failure of the data holds the link until the failed timeout"
    );
    // `status` says so, and what to run once the cause is fixed.
    let o = sb.manager(other, &["status"]);
    assert!(
        o.stdout.contains("FAILING (sql)")
            && o.stdout.contains(
                "once the cause is fixed: pxc-replication-manager clear-failure --link DC2"
            ),
        "{}",
        o.all()
    );

    // A dry run prints both statements and the mail, and changes nothing.
    let o = sb.manager(other, &["clear-failure", "--link", "DC2", "--dry-run"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains(
            "UPDATE percona.replication SET isReplica = 'No', lastUpdate = NOW() WHERE connectionName = 'DC1-DC2' AND isReplica = 'Failed'"
        ) && o.stdout.contains("UPDATE percona.replication_claim SET failedHost = NULL")
            && o.stdout.contains("failure cleared by hand"),
        "{}",
        o.all()
    );
    let failed_row = format!("{replica}=Failed");
    assert!(
        sb.roles(other, "DC1-DC2").contains(&failed_row),
        "{:?}",
        sb.roles(other, "DC1-DC2")
    );

    let o = sb.manager(other, &["clear-failure", "--link", "DC2"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        sb.roles(other, "DC1-DC2")
            .contains(&format!("{replica}=No")),
        "{:?}",
        sb.roles(other, "DC1-DC2")
    );
    assert_eq!(
        sb.value(
            other,
            "SELECT COUNT(*) FROM percona.replication_claim WHERE connectionName = 'DC1-DC2' AND failedKind IS NOT NULL"
        ),
        "0"
    );
    assert_eq!(
        sb.mails(other)
            .iter()
            .filter(|s| s.contains("DC1-DC2: failure cleared by hand on"))
            .count(),
        1,
        "{:?}",
        sb.mails(other)
    );
    // Cleared again: nothing to do.
    let o = sb.manager(other, &["clear-failure", "--link", "DC2"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stderr.contains("nothing to clear"), "{}", o.all());

    // The next round elects, long before the 180 s failed timeout.
    sb.round(&DC1);
    sb.round(&DC1);
    assert!(
        sb.only_replica(&DC1).is_ok(),
        "{:?}",
        sb.roles(other, "DC1-DC2")
    );
}

#[test]
#[ignore = "needs the sandbox clusters: scripts/test"]
fn history_records_the_election_a_pause_and_a_cleared_failure_and_status_shows_the_last() {
    let sb = Sandbox::fresh(179, 180, 20);
    sb.settle();
    let (replica, channel) = sb.only_replica(&DC1).unwrap();
    let other = DC1.iter().copied().find(|n| *n != replica).unwrap();

    // The election, as the elected node wrote it, read on another node of the cluster.
    let o = sb.manager(other, &["history", "--link", "DC2"]);
    assert_eq!(o.code, 0, "{}", o.all());
    // (The channel shows its source's host; the history its address, with the port.)
    let elected = format!(
        "DC1-DC2 {replica} elected replicates from {}:",
        channel.source
    );
    assert!(
        columns(&o.stdout)
            .lines()
            .any(|l| l.contains(&elected) && l.ends_with(": nobody held the link")),
        "{}",
        o.all()
    );
    // The other cluster's own election reached DC1 too (the percona schema replicates), but
    // DC1's history shows DC1's.
    assert!(!o.stdout.contains("DC2-"), "{}", o.all());
    let o = sb.manager(other, &["status"]);
    assert!(
        o.stdout.contains(&format!(
            " UTC, elected on {replica}: replicates from {}:",
            channel.source
        )),
        "{}",
        o.all()
    );
    // Any node shows the whole cluster: each node's state with its report, and the replica's
    // lag and executed GTID position (MariaDB: domain-server-sequence; DC2 writes domain 2).
    let lines: Vec<&str> = o.stdout.lines().collect();
    let position_of = |host: &str| {
        let i = lines
            .iter()
            .position(|l| l.trim_start().starts_with(host) && l.contains("report #"))
            .unwrap_or_else(|| panic!("no row of {host}: {}", o.all()));
        lines[i + 1].trim().to_string()
    };
    let p = position_of(&replica);
    assert!(
        p.starts_with("Synced, lag ") && p.contains("s, executed GTID ") && p.contains("2-2-"),
        "{p:?}: {}",
        o.all()
    );
    assert_eq!(position_of(other), "Synced", "{}", o.all());

    // A node's pause file and its end: the node's own events, with no link.
    sb.pause(other, true);
    sb.round(&[other]);
    sb.pause(other, false);
    sb.round(&[other]);
    let o = sb.manager(replica.as_str(), &["history", "--since", "1h"]);
    let text = columns(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let (Some(resumed), Some(paused), Some(elected_at)) = (
        at(&format!(" - {other} resumed")),
        at(&format!(" - {other} paused the pause file is there")),
        at(&elected),
    ) else {
        panic!("{}", o.all());
    };
    assert!(
        resumed < paused && paused < elected_at,
        "newest first: {}",
        o.all()
    );

    // A failure cleared by hand: the dry run prints the write, the real one makes it.
    sb.sql(&replica, "STOP SLAVE 'DC1-DC2'");
    sb.sql(
        &replica,
        &format!(
            "UPDATE percona.replication SET isReplica = 'Failed' WHERE connectionName = 'DC1-DC2' AND host = '{replica}'"
        ),
    );
    let o = sb.manager(other, &["clear-failure", "--link", "DC2", "--dry-run"]);
    assert!(
        o.stdout.contains(&format!(
            "INSERT INTO percona.replication_history (cluster, connectionName, host, event, detail) VALUES ('DC1', 'DC1-DC2', '{other}', 'cleared', 'by hand (clear-failure): {replica} back from Failed to No')"
        )),
        "{}",
        o.all()
    );
    let o = sb.manager(other, &["clear-failure", "--link", "DC2"]);
    assert_eq!(o.code, 0, "{}", o.all());

    // The JSON form, newest first: the clear, then the resume.
    let o = sb.manager(
        replica.as_str(),
        &["history", "--format", "json", "--limit", "2"],
    );
    assert_eq!(o.code, 0, "{}", o.all());
    crate::schemas::validate("history", &o.stdout).unwrap();
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["cluster"], "DC1");
    let events = j["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{}", o.stdout);
    assert_eq!(events[0]["event"], "cleared");
    assert_eq!(events[0]["link"], "DC1-DC2");
    assert_eq!(events[0]["node"], other);
    assert_eq!(events[1]["event"], "resumed");
    assert_eq!(events[1]["link"], serde_json::Value::Null);
    assert!(events[0]["at"].as_i64().unwrap() >= events[1]["at"].as_i64().unwrap());

    // A link that does not exist is an error naming the ones there are.
    let o = sb.manager(other, &["history", "--link", "DC9"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("its links replicate DC2"), "{}", o.all());
}

/// Text with each run of spaces made one, so that a needle need not know the column widths.
fn columns(text: &str) -> String {
    text.lines()
        .map(|l| {
            l.split(' ')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
#[ignore = "needs the sandbox clusters: scripts/test"]
fn explain_gives_each_node_its_rank_and_the_one_reason_it_is_or_is_not_the_replica() {
    let sb = Sandbox::fresh(179, 180, 20);
    sb.settle();
    let (replica, _) = sb.only_replica(&DC1).unwrap();
    let others: Vec<&str> = DC1.iter().copied().filter(|n| *n != replica).collect();
    // One of the others gave the link up a moment ago; the last one is paused.
    sb.sql(
        others[0],
        &format!(
            "UPDATE percona.replication SET isReplica = 'Failed' WHERE connectionName = 'DC1-DC2' AND host = '{}'",
            others[0]
        ),
    );
    sb.pause(others[1], true);
    sb.round(&[others[1]]);

    let o = sb.manager(others[1], &["explain", "--link", "DC2"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let text = columns(&o.stdout);
    assert!(
        text.contains(&format!("link DC1-DC2 (from DC2): {replica} holds it")),
        "{}",
        o.all()
    );
    let line = |host: &str| {
        text.lines()
            .find(|l| l.split(' ').nth(1) == Some(host))
            .unwrap_or_else(|| panic!("no line for {host}: {}", o.all()))
            .to_string()
    };
    assert!(
        line(&replica).ends_with("yes yes in no the replica: its row says Yes and it reports"),
        "{}",
        o.all()
    );
    assert!(
        line(others[0])
            .contains(" failed yes in no not a candidate: Failed; a candidate again in "),
        "{}",
        o.all()
    );
    assert!(
        line(others[1]).ends_with(
            "no yes in yes not a candidate: paused (pause file, or its cluster's pause)"
        ),
        "{}",
        o.all()
    );

    let o = sb.manager(others[1], &["explain", "--format", "json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    crate::schemas::validate("explain", &o.stdout).unwrap();
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["cluster_status"], "primary");
    assert_eq!(j["local_state"], "synced");
    let link = &j["links"][0];
    assert_eq!(link["holder"], replica.as_str());
    let node = |host: &str| {
        link["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["host"] == host)
            .cloned()
            .unwrap()
    };
    assert_eq!(node(&replica)["rank"], 1, "{}", o.stdout);
    assert_eq!(node(&replica)["role"], "yes");
    let failed = node(others[0]);
    assert_eq!(failed["rank"], serde_json::Value::Null);
    let clears_in = failed["failed_clears_in"].as_i64().unwrap();
    assert!(clears_in > 100 && clears_in <= 180, "{}", o.stdout);
    assert_eq!(node(others[1])["paused"], true);
    // Nothing was written: the Failed row is still there.
    assert!(
        sb.roles(others[1], "DC1-DC2")
            .contains(&format!("{}=Failed", others[0]))
    );
}
