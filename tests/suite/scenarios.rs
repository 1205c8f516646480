//! Every branch of the built-in policy, as a scenario in `tests/scenarios/`, run through
//! `simulate`. Each test names the behaviour in a DBA's words and checks the statements the
//! node would run, the mail it would send, and the state it leaves.

use crate::harness::{Out, pxcrm, repo, temp_file};

/// A simulation's output, split up.
struct Sim {
    out: Out,
    node: String,
}

fn sim(name: &str) -> Sim {
    sim_with(name, &[])
}

fn sim_with(name: &str, extra: &[&str]) -> Sim {
    sim_args(&[], name, extra)
}

/// `simulate` on a scenario of tests/scenarios, with global options before it and extra ones
/// after; the node is the one its output names.
fn sim_args(global: &[&str], name: &str, extra: &[&str]) -> Sim {
    let path = repo().join("tests/scenarios").join(format!("{name}.toml"));
    let path = path.to_str().unwrap().to_string();
    let mut args = global.to_vec();
    args.extend_from_slice(&["simulate", "--scenario", path.as_str()]);
    args.extend_from_slice(extra);
    let out = pxcrm(&args);
    let node = out
        .stdout
        .lines()
        .find_map(|l| l.split_once(": ").map(|(n, _)| n.to_string()))
        .unwrap_or_default();
    Sim { out, node }
}

/// How every report to percona.replication_node starts.
const REPORT: &str = "INSERT INTO percona.replication_node ";
/// How the position written with every report starts (percona.replication_position).
const POSITION: &str = "INSERT INTO percona.replication_position ";

impl Sim {
    /// Every SQL statement, in order, without the node prefix. The transaction that wraps a
    /// node's own row and its report (`report_transactions_wrap_the_row_and_the_report`) is
    /// left out, so that the tests read the writes themselves.
    fn sql(&self) -> Vec<String> {
        let all = self.raw_sql();
        let own_row = |l: &String| {
            l.starts_with("UPDATE percona.replication SET lastUpdate")
                || l.starts_with("UPDATE percona.replication SET isReplica")
                || l.starts_with("INSERT INTO percona.replication (")
        };
        all.iter()
            .enumerate()
            .filter(|(i, l)| match l.as_str() {
                "START TRANSACTION" => !all.get(i + 1).is_some_and(own_row),
                "COMMIT" => {
                    !(*i > 0
                        && (all[i - 1].starts_with(REPORT) || all[i - 1].starts_with(POSITION)))
                }
                _ => true,
            })
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// The statements exactly as printed, wrappers included.
    fn raw_sql(&self) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| {
                !l.starts_with("MAIL ") && !l.starts_with("    |") && !l.starts_with("ERROR ")
            })
            .collect()
    }
    /// The statements on the state table and the channel: [`Sim::sql`] without the node's
    /// reports, which the host writes beside every own-row write.
    fn statements(&self) -> Vec<String> {
        self.sql()
            .into_iter()
            .filter(|l| !l.starts_with(REPORT) && !l.starts_with(POSITION))
            .collect()
    }
    /// The node's reports to percona.replication_node.
    fn reports(&self) -> Vec<String> {
        self.sql()
            .into_iter()
            .filter(|l| l.starts_with(REPORT))
            .collect()
    }
    /// The subjects of the mails.
    fn mails(&self) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter_map(|l| l.strip_prefix("MAIL ").map(str::to_string))
            .collect()
    }
    fn lines(&self) -> Vec<String> {
        let prefix = format!("{}: ", self.node);
        self.out
            .stdout
            .lines()
            .take_while(|l| *l != "--- final state")
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }
    fn final_state(&self) -> String {
        self.out
            .stdout
            .split("--- final state\n")
            .nth(1)
            .unwrap_or_else(|| panic!("no final state in\n{}", self.out.all()))
            .to_string()
    }
    /// Index of the first statement containing `needle` among [`Sim::sql`]; panics if none
    /// does.
    fn at(&self, needle: &str) -> usize {
        self.sql()
            .iter()
            .position(|s| s.contains(needle))
            .unwrap_or_else(|| panic!("no statement contains {needle:?} in\n{}", self.out.all()))
    }
    fn has(&self, needle: &str) -> bool {
        self.sql().iter().any(|s| s.contains(needle))
    }
    fn ok(self) -> Sim {
        assert_eq!(self.out.code, 0, "{}", self.out.all());
        self
    }
}

#[test]
fn a_fresh_cluster_elects_the_lowest_index_and_starts_replication() {
    let s = sim("elect_from_empty").ok();
    let insert = s.at("INSERT INTO percona.replication (host, connectionName, localIndex, isReplica, lastUpdate, lastHeartbeat, weight) VALUES ('DC1-1', 'DC1-DC2', 0, 'No', NOW(), NOW(), 0)");
    let begin = s.at("START TRANSACTION");
    let claim = s.at("INSERT INTO percona.replication_claim");
    let lock = s.at("FOR UPDATE");
    let proposed = s.at("SET isReplica = 'Proposed'");
    let commit = s.at("COMMIT");
    let change = s.at("CHANGE MASTER 'DC1-DC2' TO MASTER_HOST='10.0.2.1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='****', MASTER_USE_GTID=slave_pos, DO_DOMAIN_IDS=(2)");
    let start = s.at("START SLAVE 'DC1-DC2'");
    let yes = s.at("SET isReplica = 'Yes', lastUpdate = NOW(), lastHeartbeat = NOW(), localIndex = 0, weight = 0, currentSource = '10.0.2.1:3306'");
    assert!(insert < begin && begin < claim && claim < lock && lock < proposed);
    assert!(proposed < commit && commit < change && change < start && start < yes);
    assert_eq!(
        s.mails(),
        [
            "to dba@example.com: [pxc-replication-manager] DC1 DC1-DC2 DC1-1 Yes: DC1-1 is the new replica (source 10.0.2.1:3306)"
        ]
    );
    assert_eq!(
        s.final_state(),
        "DC1-DC2: rows DC1-1=Yes DC1-2=No DC1-3=No; channel from 10.0.2.1:3306 IO=Yes SQL=Yes\n"
    );
}

#[test]
fn report_transactions_wrap_the_row_and_the_report() {
    // One certification and one log flush per report: the row, the report and the node's
    // position commit together.
    let s = sim("not_best_candidate_waits").ok();
    let raw = s.raw_sql();
    assert_eq!(raw.len(), 5, "{raw:?}");
    assert_eq!(raw[0], "START TRANSACTION");
    assert!(raw[1].starts_with("UPDATE percona.replication SET lastUpdate"));
    assert!(raw[2].starts_with(REPORT));
    assert!(raw[3].starts_with(POSITION), "{raw:?}");
    assert!(raw[3].contains("'Synced', NULL, NULL, NOW()"), "{raw:?}");
    assert_eq!(raw[4], "COMMIT");
}

#[test]
fn a_node_that_is_not_the_best_candidate_only_reports() {
    let s = sim("not_best_candidate_waits").ok();
    assert_eq!(
        s.statements(),
        [
            "UPDATE percona.replication SET lastUpdate = lastUpdate, lastHeartbeat = NOW(), localIndex = 2, weight = 0, currentSource = NULL WHERE connectionName = 'DC1-DC2' AND host = 'DC1-3'"
        ]
    );
    assert!(s.mails().is_empty());
}

#[test]
fn a_healthy_replica_elsewhere_leaves_this_node_alone() {
    let s = sim("healthy_replica_elsewhere").ok();
    assert_eq!(s.statements().len(), 1, "{}", s.out.all());
    assert!(s.has("lastHeartbeat = NOW()"));
    assert!(!s.has("CHANGE MASTER") && !s.has("Proposed"));
}

#[test]
fn a_silent_replica_is_demoted_and_replaced() {
    let s = sim("silent_replica_is_replaced").ok();
    let demote = s.at("UPDATE percona.replication SET isReplica = 'No', lastUpdate = NOW() WHERE connectionName = 'DC1-DC2' AND host = 'DC1-2' AND isReplica = 'Yes' AND lastHeartbeat < NOW() - INTERVAL 179 SECOND");
    assert!(demote < s.at("SET isReplica = 'Proposed'"));
    assert!(s.mails()[0].contains("replica DC1-2 is silent, electing another node"));
    assert!(s.mails()[1].contains("DC1-1 is the new replica"));
    assert!(
        s.final_state()
            .starts_with("DC1-DC2: rows DC1-1=Yes DC1-2=No; channel from 10.0.2.1:3306")
    );
}

#[test]
fn failed_clears_after_the_failed_timeout_and_the_node_tries_again() {
    let s = sim("failed_clears_after_timeout").ok();
    assert!(s.at("SET isReplica = 'No'") < s.at("SET isReplica = 'Proposed'"));
    assert!(s.final_state().starts_with("DC1-DC2: rows DC1-1=Yes;"));
}

#[test]
fn failed_stays_failed_until_the_timeout() {
    let s = sim("failed_stays_until_timeout").ok();
    assert_eq!(s.statements().len(), 1);
    assert!(s.has("lastUpdate = lastUpdate, lastHeartbeat = NOW()"));
    assert_eq!(
        s.final_state(),
        "DC1-DC2: rows DC1-1=Failed DC1-2=No; no channel\n"
    );
}

#[test]
fn a_failed_node_is_not_a_candidate() {
    let s = sim("failed_node_is_not_a_candidate").ok();
    assert!(s.has("SET isReplica = 'Proposed'"));
    assert!(
        s.final_state()
            .starts_with("DC1-DC2: rows DC1-1=Failed DC1-2=Yes;")
    );
}

#[test]
fn when_no_source_answers_the_candidate_reports_failed_and_mails() {
    let s = sim("all_sources_down").ok();
    assert!(
        !s.has("CHANGE MASTER"),
        "a dead source is probed, not configured"
    );
    assert!(
        !s.has("START TRANSACTION"),
        "no proposal without a source that answers"
    );
    assert!(s.at("SET isReplica = 'Failed'") < s.at("failedKind = 'unreachable'"));
    assert!(s.mails()[0].contains("no source of DC2 answers from DC1-1"));
    assert_eq!(s.final_state(), "DC1-DC2: rows DC1-1=Failed; no channel\n");
    let body = s.out.stdout.clone();
    assert!(body.contains("10.0.2.1:3306: does not answer"), "{body}");
    assert!(body.contains("10.0.2.2:3306: does not answer"), "{body}");
}

#[test]
fn a_replica_whose_source_dies_switches_to_another_source() {
    let s = sim("source_lost_switches_source").ok();
    // The heartbeat is refreshed before the attempt (a failover never makes the replica look
    // silent), and once more with the new source.
    assert_eq!(
        s.statements(),
        [
            "UPDATE percona.replication SET lastUpdate = lastUpdate, lastHeartbeat = NOW(), localIndex = 0, weight = 0, currentSource = '10.0.2.1:3306' WHERE connectionName = 'DC1-DC2' AND host = 'DC1-1'",
            "STOP SLAVE 'DC1-DC2'",
            "CHANGE MASTER 'DC1-DC2' TO MASTER_HOST='10.0.2.2', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='****', MASTER_USE_GTID=slave_pos, DO_DOMAIN_IDS=(2)",
            "START SLAVE 'DC1-DC2'",
            "UPDATE percona.replication SET lastUpdate = lastUpdate, lastHeartbeat = NOW(), localIndex = 0, weight = 0, currentSource = '10.0.2.2:3306' WHERE connectionName = 'DC1-DC2' AND host = 'DC1-1'",
            // The history, at the end of the run.
            "INSERT INTO percona.replication_history (cluster, connectionName, host, event, detail) VALUES ('DC1', 'DC1-DC2', 'DC1-1', 'source-switch', 'from 10.0.2.1:3306 to 10.0.2.2:3306: the channel lost it')",
            "DELETE FROM percona.replication_history WHERE cluster = 'DC1' AND happenedAt < CURRENT_TIMESTAMP - INTERVAL 90 DAY",
        ]
    );
    assert!(
        s.reports()[1].contains("'healthy', '10.0.2.2:3306'"),
        "{:?}",
        s.reports()
    );
    assert!(s.mails()[0].contains("DC1-1 switched source to 10.0.2.2:3306"));
}

#[test]
fn a_replica_that_cannot_reach_any_source_reports_failed() {
    let s = sim("source_lost_no_other_answers").ok();
    let stop = s.at("STOP SLAVE 'DC1-DC2'");
    let reset = s.at("RESET SLAVE 'DC1-DC2' ALL");
    let failed = s.at("SET isReplica = 'Failed'");
    assert!(stop < reset && reset < failed);
    assert!(s.mails()[0].contains("failed as replica: no source answers"));
}

#[test]
fn an_sql_thread_error_makes_the_replica_fail_and_mail_the_error() {
    let s = sim("sql_thread_error").ok();
    assert_eq!(
        s.statements()[..2],
        ["STOP SLAVE 'DC1-DC2'", "RESET SLAVE 'DC1-DC2' ALL"]
    );
    assert!(s.has("SET isReplica = 'Failed'"));
    assert!(s.mails()[0].contains("failed as replica: SQL thread stopped"));
    assert!(
        s.out
            .stdout
            .contains("Duplicate entry '7' for key 'PRIMARY'")
    );
}

#[test]
fn a_replica_whose_sql_thread_the_cluster_stopped_resumes_instead_of_failing() {
    let s = sim("replica_stopped_by_the_cluster_resumes").ok();
    assert!(!s.has("'Failed'"), "{}", s.out.all());
    assert!(!s.has("failedKind"), "no failure recorded: {}", s.out.all());
    assert!(s.at("STOP SLAVE 'DC1-DC2'") < s.at("START SLAVE 'DC1-DC2'"));
    assert!(
        s.has("MASTER_HOST='10.0.2.1'"),
        "resumes from its own source"
    );
    assert_eq!(
        s.mails(),
        [
            "to dba@example.com: [pxc-replication-manager] DC1 DC1-DC2 DC1-1 Yes: DC1-1 resumed replication from 10.0.2.1:3306"
        ]
    );
    assert!(
        s.out
            .stdout
            .contains("the SQL thread stopped on an error of the cluster, not of the data: Node has dropped from cluster"),
        "{}",
        s.out.all()
    );
    assert!(!s.out.stdout.contains("fix the data"));
}

#[test]
fn a_replica_restarted_with_skip_slave_start_resumes_from_its_source() {
    let s = sim("restarted_replica_reconnects").ok();
    assert!(s.has("CHANGE MASTER 'DC1-DC2' TO MASTER_HOST='10.0.2.1'"));
    assert!(!s.has("'Failed'"));
    assert!(s.mails()[0].contains("resumed replication from 10.0.2.1:3306"));
}

#[test]
fn with_two_fresh_replicas_the_lower_ranked_one_stops() {
    let s = sim("two_replicas_lower_rank_stops").ok();
    assert!(s.at("STOP SLAVE 'DC1-DC2'") < s.at("SET isReplica = 'No'"));
    assert!(s.mails()[0].contains("two replicas, DC1-2 stopped"));
    let s = sim("two_replicas_first_rank_keeps").ok();
    assert!(!s.has("STOP SLAVE"));
}

#[test]
fn a_node_replicating_while_its_row_says_no_or_failed_stops() {
    for name in [
        "replicating_while_row_says_no",
        "replicating_while_row_says_failed",
    ] {
        let s = sim(name).ok();
        assert_eq!(
            s.statements()[..2],
            ["STOP SLAVE 'DC1-DC2'", "RESET SLAVE 'DC1-DC2' ALL"],
            "{name}"
        );
        assert!(s.has("SET isReplica = 'No'"), "{name}");
        assert!(s.final_state().contains("no channel"), "{name}");
    }
}

#[test]
fn a_node_replicating_while_proposed_becomes_yes() {
    let s = sim("replicating_while_proposed").ok();
    assert_eq!(
        s.statements(),
        [
            "UPDATE percona.replication SET isReplica = 'Yes', lastUpdate = NOW(), lastHeartbeat = NOW(), localIndex = 0, weight = 0, currentSource = '10.0.2.1:3306' WHERE connectionName = 'DC1-DC2' AND host = 'DC1-1'",
            "INSERT INTO percona.replication_history (cluster, connectionName, host, event, detail) VALUES ('DC1', 'DC1-DC2', 'DC1-1', 'elected', 'replicates from 10.0.2.1:3306: nobody held the link')",
            "DELETE FROM percona.replication_history WHERE cluster = 'DC1' AND happenedAt < CURRENT_TIMESTAMP - INTERVAL 90 DAY",
        ]
    );
}

#[test]
fn a_link_configured_by_hand_is_adopted_without_touching_the_channel() {
    let s = sim("adopt_hand_configured_link").ok();
    assert_eq!(
        s.statements(),
        [
            "INSERT INTO percona.replication (host, connectionName, localIndex, isReplica, lastUpdate, lastHeartbeat, weight) VALUES ('DC1-2', 'DC1-DC2', 1, 'Yes', NOW(), NOW(), 0)"
        ]
    );
    assert!(s.mails()[0].contains("adopted as the replica (source 10.0.2.2:3306)"));
}

#[test]
fn a_hand_configured_channel_beside_the_holder_is_stopped() {
    let s = sim("hand_configured_beside_holder").ok();
    assert!(s.at("RESET SLAVE 'DC1-DC2' ALL") < s.at("'No', NOW(), NOW()"));
    assert_eq!(
        s.final_state(),
        "DC1-DC2: rows DC1-1=Yes DC1-3=No; no channel\n"
    );
}

#[test]
fn a_replica_outside_the_primary_component_stops_without_writing_the_table() {
    let s = sim("non_primary_replica_stops").ok();
    assert_eq!(
        s.statements(),
        ["STOP SLAVE 'DC1-DC2'", "RESET SLAVE 'DC1-DC2' ALL"]
    );
    assert!(s.mails()[0].contains("stopped replicating (node is non-Primary"));
    assert!(
        s.out
            .stderr
            .contains("the state table cannot be written outside the Primary component"),
        "{}",
        s.out.all()
    );
}

#[test]
fn a_replica_that_is_not_synced_stops_and_says_no() {
    let s = sim("joined_replica_stops").ok();
    assert!(s.at("RESET SLAVE 'DC1-DC2' ALL") < s.at("SET isReplica = 'No'"));
    assert!(s.mails()[0].contains("Primary/Joined"));
}

#[test]
fn an_idle_node_outside_the_primary_component_does_nothing() {
    let s = sim("non_primary_idle_does_nothing").ok();
    assert!(s.statements().is_empty(), "{}", s.out.all());
    assert!(s.mails().is_empty());
}

#[test]
fn a_node_that_loses_the_proposal_race_does_not_replicate() {
    let s = sim("lost_race_does_not_connect").ok();
    assert!(s.has("START TRANSACTION"));
    assert!(!s.has("CHANGE MASTER"));
    assert!(s.mails().is_empty());
    assert_eq!(s.final_state(), "DC1-DC2: rows DC1-1=No; no channel\n");
}

#[test]
fn a_row_saying_yes_without_a_channel_is_corrected_and_the_election_reruns() {
    let s = sim("row_yes_but_no_channel").ok();
    assert!(s.at("SET isReplica = 'No'") < s.at("SET isReplica = 'Proposed'"));
    assert!(s.mails()[0].contains("is marked as the replica but does not replicate"));
}

#[test]
fn a_leftover_proposal_is_withdrawn() {
    let s = sim("leftover_proposal_is_withdrawn").ok();
    assert_eq!(s.statements().len(), 1);
    assert!(s.has("SET isReplica = 'No'"));
}

#[test]
fn links_of_a_cluster_spread_across_its_nodes() {
    let s = sim("links_spread_across_nodes").ok();
    assert!(s.has("CHANGE MASTER 'DC1-DC2'"));
    assert!(!s.has("CHANGE MASTER 'DC1-DC3'"));
    let s = sim_with(
        "links_spread_across_nodes",
        &[
            "--policy",
            repo().join("policies/prefer-weight.rhai").to_str().unwrap(),
        ],
    )
    .ok();
    assert!(
        !s.has("CHANGE MASTER"),
        "without spreading, DC1-1 (index 0) is best for both links"
    );
}

#[test]
fn the_highest_weight_wins_over_the_lowest_index() {
    let s = sim("higher_weight_wins").ok();
    assert!(s.has("weight = 10 WHERE connectionName = 'DC1-DC2' AND host = 'DC1-3'"));
    assert!(
        s.final_state()
            .starts_with("DC1-DC2: rows DC1-1=No DC1-3=Yes;")
    );
}

#[test]
fn the_seed_generation_uses_the_cluster_column_and_the_default_channel() {
    let s = sim("seed_generation_default_channel").ok();
    assert!(s.has("INSERT INTO percona.replication (host, cluster, localIndex, isSlave, lastUpdate, lastHeartbeat) VALUES ('DC1-1', 'DC1', 0, 'No', NOW(), NOW())"));
    assert!(s.has("CHANGE MASTER TO MASTER_HOST='10.0.2.1'"));
    assert!(s.statements().contains(&"START SLAVE".to_string()));
    assert!(s.has("SET isSlave = 'Yes', lastUpdate = NOW(), lastHeartbeat = NOW(), localIndex = 0 WHERE cluster = 'DC1' AND host = 'DC1-1'"));
}

#[test]
fn pxc_80_uses_the_replication_source_vocabulary() {
    let s = sim("mysql80_elect_from_empty").ok();
    assert!(s.has("CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.2.1', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='****', SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1 FOR CHANNEL 'DC1-DC2'"));
    assert!(
        s.statements()
            .contains(&"START REPLICA FOR CHANNEL 'DC1-DC2'".to_string())
    );
}

#[test]
fn pxc_57_uses_change_master_for_channel_and_the_isslave_column() {
    let s = sim("mysql57_elect_from_empty").ok();
    assert!(s.has("CHANGE MASTER TO MASTER_HOST='10.0.2.1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='****', MASTER_AUTO_POSITION=1 FOR CHANNEL 'DC1-DC2'"));
    assert!(s.has("SET isSlave = 'Yes'"));
}

#[test]
fn a_site_policy_can_send_mail_only_on_failed() {
    let policy = repo().join("policies/mail-on-failed-only.rhai");
    let policy = policy.to_str().unwrap();
    let s = sim_with("elect_from_empty", &["--policy", policy]).ok();
    assert!(s.has("CHANGE MASTER"));
    assert!(s.mails().is_empty(), "{}", s.out.all());
    let s = sim_with("all_sources_down", &["--policy", policy]).ok();
    assert_eq!(s.mails().len(), 1);
}

#[test]
fn a_site_policy_can_wait_longer_before_replacing_a_silent_replica() {
    let policy = repo().join("policies/patient.rhai");
    let s = sim_with(
        "silent_replica_is_replaced",
        &["--policy", policy.to_str().unwrap()],
    )
    .ok();
    assert!(
        !s.has("isReplica = 'No', lastUpdate = NOW() WHERE"),
        "400 s is under the patient policy's 600 s"
    );
    assert!(!s.has("CHANGE MASTER"));
}

#[test]
fn a_policy_that_throws_is_reported_with_its_line_and_the_run_fails() {
    let (_d, p) = temp_file(
        "throws.rhai",
        "fn manage_link(node, link) {\n    throw \"site rule: refuse\";\n}\n",
    );
    let s = sim_with("elect_from_empty", &["--policy", p.to_str().unwrap()]);
    assert_eq!(s.out.code, 1, "{}", s.out.all());
    assert!(
        s.out
            .stdout
            .contains("throws.rhai:2:5: Runtime error: site rule: refuse"),
        "{}",
        s.out.all()
    );
}

#[test]
fn a_policy_that_loops_forever_is_stopped_by_the_operation_limit() {
    let (_d, p) = temp_file(
        "loop.rhai",
        "fn manage_link(node, link) {\n    loop { }\n}\n",
    );
    let s = sim_with("elect_from_empty", &["--policy", p.to_str().unwrap()]);
    assert_eq!(s.out.code, 1, "{}", s.out.all());
    assert!(
        s.out.stdout.contains(
            "operation limit: more than 200000 operations in one call ([policy] max_operations); stopped in manage_link"
        ),
        "{}",
        s.out.all()
    );
    // Nothing changed: a node whose policy fails does not even report (it looks silent).
    assert!(s.sql().is_empty(), "{}", s.out.all());
}

#[test]
fn a_policy_calling_a_primitive_with_wrong_arguments_fails_cleanly() {
    let (_d, p) = temp_file(
        "wrongargs.rhai",
        "fn manage_link(node, link) {\n    set_state(link, \"Maybe\");\n}\n",
    );
    let s = sim_with("elect_from_empty", &["--policy", p.to_str().unwrap()]);
    assert_eq!(s.out.code, 1);
    assert!(
        s.out.stdout.contains("unknown state \"Maybe\""),
        "{}",
        s.out.all()
    );
    let (_d, p) = temp_file(
        "wrongtype.rhai",
        "fn manage_link(node, link) {\n    propose(42);\n}\n",
    );
    let s = sim_with("elect_from_empty", &["--policy", p.to_str().unwrap()]);
    assert_eq!(s.out.code, 1);
    assert!(
        s.out.stdout.contains("Function not found: propose (i64)"),
        "{}",
        s.out.all()
    );
    assert!(s.sql().is_empty(), "{}", s.out.all());
}

#[test]
fn a_policy_cannot_replicate_without_holding_the_link() {
    // A site policy that skips the proposal: the host refuses to start replication.
    let (_d, p) = temp_file(
        "reckless.rhai",
        "fn manage_link(node, link) {\n    connect(link, link.sources[0]);\n}\n",
    );
    let s = sim_with(
        "healthy_replica_elsewhere",
        &["--policy", p.to_str().unwrap()],
    );
    assert_eq!(s.out.code, 1);
    assert!(
        s.out.stdout.contains("connect refused on DC1-1"),
        "{}",
        s.out.all()
    );
    assert!(!s.has("CHANGE MASTER"));
}

#[test]
fn a_node_that_just_reported_for_the_first_time_waits_for_the_others() {
    let s = sim("newcomer_waits_for_the_others").ok();
    assert_eq!(s.statements().len(), 1, "{}", s.out.all());
    assert!(s.has("INSERT INTO percona.replication"));
    assert!(
        s.out
            .stderr
            .contains("waiting one run for the other nodes to report")
    );
}

#[test]
fn after_a_data_error_no_other_node_takes_the_link_until_the_failed_timeout() {
    let s = sim("sql_failure_blocks_other_nodes").ok();
    assert_eq!(s.statements().len(), 1, "{}", s.out.all());
    assert!(s.has("lastHeartbeat = NOW()"));
    assert!(
        s.out.stderr.contains("failed on a data error 30s ago"),
        "{}",
        s.out.all()
    );
}

#[test]
fn after_the_failed_timeout_a_data_error_is_retried_once_and_cleared_on_success() {
    let s = sim("sql_failure_retried_after_timeout").ok();
    assert!(s.at("SET isReplica = 'Proposed'") < s.at("CHANGE MASTER 'DC1-DC2'"));
    assert!(s.at("SET isReplica = 'Yes'") < s.at("SET failedHost = NULL, failedKind = NULL"));
    assert!(s.mails()[0].contains("DC1-2 is the new replica"));
}

#[test]
fn while_the_remote_is_down_the_next_node_fails_without_a_second_mail() {
    let s = sim("remote_down_next_node_fails_quietly").ok();
    assert!(s.has("SET isReplica = 'Failed'"));
    assert!(!s.has("START TRANSACTION") && !s.has("CHANGE MASTER"));
    assert!(s.mails().is_empty(), "{}", s.out.all());
    assert!(
        s.out
            .stderr
            .contains("not mailed, the link was already failing")
    );
}

#[test]
fn an_sql_error_is_recorded_for_the_other_nodes() {
    let s = sim("sql_thread_error").ok();
    assert!(s.has("failedKind = 'sql'"));
    assert!(
        s.has("Duplicate entry \\'7\\' for key \\'PRIMARY\\'"),
        "{}",
        s.out.all()
    );
}

#[test]
fn a_retry_that_hits_the_same_data_error_blocks_the_link_again_without_mail() {
    let s = sim("sql_failure_retry_fails_again").ok();
    assert!(s.at("START SLAVE 'DC1-DC2'") < s.at("SET isReplica = 'Failed'"));
    assert!(s.has("failedKind = 'sql'"), "{}", s.out.all());
    assert!(!s.has("SET isReplica = 'Yes'"));
    assert!(s.mails().is_empty(), "{}", s.out.all());
}

// ---- the host's rules, whatever the policy -------------------------------------------------

/// A site policy from text, run on a scenario.
fn with_policy(scenario: &str, policy: &str) -> Sim {
    let (_d, p) = temp_file("site.rhai", policy);
    sim_with(scenario, &["--policy", p.to_str().unwrap()])
}

#[test]
fn a_scenario_sets_the_replicas_lag_and_a_policy_reads_it() {
    let s = sim("lagging_replica_keeps_its_link").ok();
    assert!(!s.has("STOP SLAVE"), "{}", s.out.all());
    assert!(
        s.final_state().contains("IO=Yes SQL=Yes"),
        "{}",
        s.out.all()
    );
    let s = with_policy(
        "lagging_replica_keeps_its_link",
        "fn manage_link(node, link) {\n    log(`lag ${replica(link).lag}`);\n    builtin_manage_link(node, link);\n}\n",
    );
    assert!(s.out.stderr.contains("DC1-1: lag 120"), "{}", s.out.all());
}

#[test]
fn of_two_healthy_replicas_the_lower_ranked_stops_and_a_row_without_a_channel_stops_nobody() {
    let s = sim("two_replicas_lower_rank_stops").ok();
    assert!(s.at("STOP SLAVE 'DC1-DC2'") < s.at("SET isReplica = 'No'"));
    assert!(s.mails()[0].contains("two replicas, DC1-2 stopped"));
    for name in [
        "two_replicas_other_runs_no_channel",
        "two_replicas_other_is_the_script",
    ] {
        let s = sim(name).ok();
        assert!(!s.has("STOP SLAVE"), "{name}: {}", s.out.all());
        assert!(s.final_state().contains("IO=Yes SQL=Yes"), "{name}");
    }
}

#[test]
fn a_restarted_node_with_a_leftover_proposal_withdraws_and_the_real_replica_goes_on() {
    let s = sim("leftover_proposal_with_stopped_channel").ok();
    assert!(
        !s.has("isReplica = 'Yes'"),
        "never Yes with a stopped channel"
    );
    assert!(s.at("RESET SLAVE 'DC1-DC2' ALL") < s.at("SET isReplica = 'No'"));
    assert_eq!(
        s.final_state(),
        "DC1-DC2: rows DC1-1=No DC1-2=Yes; no channel\n"
    );
}

#[test]
fn a_silent_holder_that_does_not_report_is_fenced_before_it_is_demoted() {
    // A node of the original script has no report: once demoted, nothing would say it held
    // the link, so the fence comes first.
    let s = sim("script_holder_is_fenced_before_it_is_demoted").ok();
    let fence = s.at("[on DC1-2 at 10.0.1.2:3306] STOP SLAVE 'DC1-DC2'");
    let demote = s.at("SET isReplica = 'No', lastUpdate = NOW() WHERE connectionName = 'DC1-DC2' AND host = 'DC1-2'");
    assert!(fence < demote && demote < s.at("CHANGE MASTER 'DC1-DC2'"));
    assert!(
        s.final_state()
            .starts_with("DC1-DC2: rows DC1-1=Yes DC1-2=No")
    );
}

#[test]
fn a_node_adopting_a_channel_it_runs_fences_a_silent_holder_first() {
    let s = sim("adopting_a_channel_fences_a_silent_holder").ok();
    assert!(
        s.at("[on DC1-2 at 10.0.1.2:3306] STOP SLAVE 'DC1-DC2'")
            < s.at("INSERT INTO percona.replication (host, connectionName, localIndex, isReplica")
    );
    assert!(s.has("'DC1-1', 'DC1-DC2', 0, 'Yes'"));
}

#[test]
fn silent_after_and_mail_hooks_cannot_change_anything() {
    // silent_after runs before the links, and mail after the host's rules: neither may
    // propose or replicate, whatever the policy writes there.
    let s = with_policy(
        "elect_from_empty",
        "fn silent_after(s) {\n    for l in links() { if propose(l) { connect(l, l.sources[0]); } }\n    s.heartbeat_timeout\n}\nfn manage_link(node, link) { }\n",
    );
    // The refusal is the policy's error: the run goes on with [timeouts] heartbeat, and exits 1.
    assert_eq!(s.out.code, 1, "{}", s.out.all());
    assert!(
        s.out
            .stdout
            .contains("silent_after failed, so every rule used [timeouts] heartbeat (179 s)"),
        "{}",
        s.out.all()
    );
    assert!(
        !s.has("'Proposed'") && !s.has("CHANGE MASTER"),
        "{}",
        s.out.all()
    );
    assert!(
        s.out.stderr.contains("propose refused on DC1-1: a primitive that changes something is called only from manage_link"),
        "{}",
        s.out.all()
    );
    let s = with_policy(
        "row_yes_but_no_channel",
        "fn manage_link(node, link) { }\nfn mail(node, link, event, subject, body) {\n    if propose(link) { connect(link, link.sources[0]); }\n}\n",
    );
    assert!(
        !s.has("'Proposed'") && !s.has("CHANGE MASTER"),
        "{}",
        s.out.all()
    );
    assert!(
        s.out.stderr.contains("propose refused on DC1-1"),
        "{}",
        s.out.all()
    );
}

#[test]
fn a_node_cannot_add_a_second_row_for_a_link() {
    // Live, the primary key would refuse it; dry-run and simulate must refuse it too.
    let s = with_policy(
        "healthy_replica_elsewhere",
        "fn manage_link(node, link) { insert_row(link, ROLE.No); }\n",
    );
    assert_eq!(s.out.code, 1, "{}", s.out.all());
    assert!(
        s.out
            .stdout
            .contains("insert_row refused on DC1-1: it already has a row")
    );
    assert!(
        !s.has("INSERT INTO percona.replication (host"),
        "{}",
        s.out.all()
    );
}

#[test]
fn a_host_alarm_is_sent_as_it_is_when_the_policy_mail_hook_fails() {
    let s = with_policy(
        "two_replicas_lower_rank_stops",
        "fn mail(node, link, event, subject, body) { throw \"boom\"; }\n",
    )
    .ok();
    assert!(
        s.mails()
            .iter()
            .any(|m| m.contains("two replicas, DC1-2 stopped")),
        "{}",
        s.out.all()
    );
    assert!(
        s.out.stdout.contains("the policy's mail hook failed: ")
            && s.out.stdout.contains("site.rhai:1:45: Runtime error: boom"),
        "the mail says why it is plain, and where the hook failed: {}",
        s.out.all()
    );
}

#[test]
fn a_silent_holder_is_fenced_before_the_new_replica_starts() {
    let s = sim("silent_replica_is_fenced_before_takeover").ok();
    // Demoted only if its report sequence still stands at 55: no clock involved.
    let demote = s.at("SET r.isReplica = 'No', r.lastUpdate = NOW() WHERE r.connectionName = 'DC1-DC2' AND r.host = 'DC1-2' AND r.isReplica = 'Yes' AND n.seq = 55");
    let proposed = s.at("SET isReplica = 'Proposed'");
    let fence = s.at("[on DC1-2 at 10.0.1.2:3306] STOP SLAVE 'DC1-DC2'");
    let change = s.at("CHANGE MASTER 'DC1-DC2'");
    // Fenced before its row stops saying it holds the link, and once.
    assert!(fence < demote && demote < proposed && proposed < change);
    assert_eq!(
        s.sql().iter().filter(|l| l.contains("STOP SLAVE")).count(),
        1,
        "{}",
        s.out.all()
    );
    assert!(
        s.mails()
            .iter()
            .any(|m| m.contains("DC1-1 stopped the channel of DC1-2")),
        "fencing is mailed: {:?}",
        s.mails()
    );
    assert!(
        s.out.stderr.contains("fenced DC1-2 at 10.0.1.2:3306"),
        "and logged"
    );
    // ... and counted in the node's next report, the one right after the fence.
    let reports = s.reports();
    assert_eq!(
        reports
            .iter()
            .filter(|r| r.contains("fences = fences + 1"))
            .count(),
        1,
        "{reports:?}"
    );
    assert!(s.at("fences = fences + 1") > fence);
    // A holder that does not answer is down or cut off: the takeover goes on.
    let s = sim("silent_replica_unreachable_is_replaced").ok();
    assert!(!s.has("[on DC1-2"));
    assert!(s.has("CHANGE MASTER 'DC1-DC2'"));
    assert!(
        s.out
            .stderr
            .contains("could not fence DC1-2 at 10.0.1.2:3306 (unreachable: no TCP connection (scenario: down)); going on: it is not a member of this node's Primary view"),
        "{}",
        s.out.all()
    );
    assert!(
        !s.has("INSERT INTO percona.replication_fence"),
        "nothing held, nothing recorded"
    );
}

#[test]
fn a_silent_replica_whose_server_refuses_the_fence_keeps_the_link_until_it_is_fenced() {
    let s = sim("silent_replica_that_refuses_the_fence_holds_the_takeover").ok();
    // It is a member of the view and its server answered: its channel may run. No demotion,
    // no proposal, no channel: only the heartbeat and the fence record.
    assert!(!s.has("isReplica = 'No', r.lastUpdate"), "{}", s.out.all());
    assert!(!s.has("'Proposed'"));
    assert!(!s.has("CHANGE MASTER"));
    let record = s.at("INSERT INTO percona.replication_fence");
    assert!(
        s.sql()[record].contains(
            "'DC1-2 at 10.0.1.2:3306 (login pxcrm): refused: Access denied for user \\'pxcrm\\' (error 1045)"
        ),
        "{}",
        s.sql()[record]
    );
    assert_eq!(
        s.mails(),
        [
            "to dba@example.com: [pxc-replication-manager] DC1 DC1-DC2 DC1-1 No: takeover held: DC1-1 cannot fence DC1-2"
        ]
    );
    // The log names the peer (not "the local server"), its address, the login and the reason.
    let warned = s
        .out
        .stderr
        .lines()
        .find(|l| {
            l.contains("cannot fence DC1-2 at 10.0.1.2:3306 (login pxcrm): refused: Access denied")
        })
        .unwrap_or_else(|| panic!("{}", s.out.all()));
    assert!(
        !warned.contains("local server") && !warned.contains("[local]"),
        "{warned}"
    );
    assert!(s.final_state().contains("DC1-1=No DC1-2=Yes; no channel"));
}

#[test]
fn a_silent_replica_that_is_unreachable_but_still_in_the_view_keeps_the_link() {
    let s = sim("silent_replica_unreachable_but_in_the_view_holds_the_takeover").ok();
    assert!(
        !s.has("'Proposed'") && !s.has("CHANGE MASTER"),
        "{}",
        s.out.all()
    );
    assert!(s.has("unreachable: no TCP connection"));
    assert!(
        s.out
            .stderr
            .contains("it is a member of this node's Primary view")
    );
    assert!(s.final_state().contains("DC1-1=No DC1-2=Yes; no channel"));
}

#[test]
fn a_peer_whose_fence_login_is_refused_is_found_and_mailed_while_all_is_healthy() {
    let s = sim("a_peer_whose_fence_login_is_refused_is_reported_while_healthy").ok();
    // Nothing is stopped or taken: the replica is healthy.
    assert!(!s.has("[on ") && !s.has("'Proposed'"), "{}", s.out.all());
    assert_eq!(
        s.mails(),
        [
            "to dba@example.com: [pxc-replication-manager] DC1 DC1-DC2 DC1-2 No: DC1-2 cannot fence DC1-1"
        ]
    );
    // The record names the peer, its address, the login and the reason; it comes after the
    // run's report, in one more.
    let record = s.at("INSERT INTO percona.replication_fence");
    assert!(
        s.sql()[record].contains("unfenceable = 'DC1-1 at 10.0.1.1:3306 (login pxcrm): refused:"),
        "{}",
        s.sql()[record]
    );
    assert_eq!(s.reports().len(), 2, "{}", s.out.all());
}

#[test]
fn a_restarted_former_replica_resets_its_old_channel_and_takes_over_in_the_same_run() {
    let s = sim("restarted_former_replica_resets_its_channel_and_takes_over").ok();
    assert!(s.at("RESET SLAVE 'DC1-DC2' ALL") < s.at("isReplica = 'Proposed'"));
    assert!(s.at("isReplica = 'Proposed'") < s.at("START SLAVE 'DC1-DC2'"));
    assert!(
        s.final_state()
            .contains("DC1-1=Yes DC1-2=No DC1-3=No; channel from 10.0.2.1:3306 IO=Yes SQL=Yes"),
        "{}",
        s.final_state()
    );
}

#[test]
fn a_replica_that_left_the_primary_view_is_replaced_at_once() {
    // It reported 2 s ago, far within the heartbeat timeout; membership says it is gone.
    let s = sim("replica_left_the_view_is_replaced_at_once").ok();
    assert!(s.has("SET r.isReplica = 'No'"), "{}", s.out.all());
    assert!(s.has("CHANGE MASTER 'DC1-DC2'"));
    assert!(s.has("START SLAVE 'DC1-DC2'"));
    assert!(
        s.mails()
            .iter()
            .any(|m| m.contains("replica DC1-2 left the cluster")),
        "{:?}",
        s.mails()
    );
    // Fenced like any silent holder (down here: it does not answer).
    assert!(s.out.stderr.contains("could not fence DC1-2"));
}

#[test]
fn without_a_membership_table_a_fresh_replica_is_replaced_only_after_the_heartbeat_timeout() {
    // PXC 5.7: no mysql.wsrep_cluster_members. The same rows as above keep DC1-2 the replica;
    // silent_replica_unreachable_is_replaced shows the replacement once it is silent.
    let s = sim("pxc57_without_membership_waits_for_the_heartbeat").ok();
    assert_eq!(
        s.statements().len(),
        1,
        "only the heartbeat: {}",
        s.out.all()
    );
    assert!(!s.has("CHANGE MASTER"));
    assert!(s.out.stdout.contains("DC1-2=Yes"));
}

#[test]
fn a_peer_whose_clock_is_behind_is_not_silent_while_its_sequence_moves() {
    let s = sim("skewed_clock_is_not_silence").ok();
    assert_eq!(
        s.statements().len(),
        1,
        "only this node's heartbeat: {}",
        s.out.all()
    );
    assert!(!s.has("isReplica = 'No', r.lastUpdate"));
}

#[test]
fn a_replica_whose_source_left_its_cluster_switches_in_the_same_run() {
    let s = sim("source_cut_off_from_its_cluster").ok();
    assert!(
        s.out
            .stderr
            .contains("the current source 10.0.2.1:3306 answers, but is non-Primary"),
        "{}",
        s.out.all()
    );
    // 10.0.2.2 answers too but is not Primary either: a login alone is not enough.
    assert!(!s.has("MASTER_HOST='10.0.2.2'") && !s.has("MASTER_HOST='10.0.2.1'"));
    assert!(s.at("STOP SLAVE 'DC1-DC2'") < s.at("MASTER_HOST='10.0.2.3'"));
    assert!(s.mails()[0].contains("switched source to 10.0.2.3:3306"));
    assert!(
        s.final_state()
            .contains("channel from 10.0.2.3:3306 IO=Yes")
    );
}

#[test]
fn a_paused_replica_keeps_reporting_and_changes_nothing_else() {
    let s = sim("paused_replica_keeps_reporting").ok();
    assert_eq!(
        s.statements(),
        [
            "UPDATE percona.replication SET lastUpdate = lastUpdate, lastHeartbeat = NOW(), localIndex = 0, weight = 0, currentSource = '10.0.2.1:3306' WHERE connectionName = 'DC1-DC2' AND host = 'DC1-1'",
            // The node's own event (no link): it found itself paused.
            "INSERT INTO percona.replication_history (cluster, connectionName, host, event, detail) VALUES ('DC1', '', 'DC1-1', 'paused', 'the pause file is there')",
            "DELETE FROM percona.replication_history WHERE cluster = 'DC1' AND happenedAt < CURRENT_TIMESTAMP - INTERVAL 90 DAY",
        ]
    );
    assert!(s.reports()[0].contains("seq = seq + 1, channel = 'healthy'"));
    assert!(s.reports()[0].contains("pausedSince = FROM_UNIXTIME(999880)"));
    // Idle and paused: marked paused, its sequence stands still, no election.
    // Apart from the report, it writes only the history's `paused`.
    let s = sim("paused_idle_node_marks_itself").ok();
    assert!(
        s.statements()
            .iter()
            .all(|st| st.contains("percona.replication_history")),
        "{}",
        s.out.all()
    );
    assert!(
        s.has("'paused', 'the pause file is there'"),
        "{}",
        s.out.all()
    );
    assert_eq!(s.reports().len(), 1);
    assert!(
        s.reports()[0]
            .contains("VALUES ('DC1-DC2', 'DC1-1', NULL, 0, 'none', NULL, FROM_UNIXTIME(999880)")
    );
    assert!(!s.reports()[0].contains("seq = seq + 1"));
}

#[test]
fn a_site_policy_cannot_reach_proposed_or_yes_without_the_host() {
    let s = with_policy(
        "elect_from_empty",
        "fn manage_link(node, link) {\n    insert_row(link, \"No\");\n    set_state(link, \"Proposed\");\n    connect(link, link.sources[0]);\n}\n",
    );
    assert_eq!(s.out.code, 1);
    assert!(
        s.out
            .stdout
            .contains("set_state: Proposed is reached only through propose(link)"),
        "{}",
        s.out.all()
    );
    assert!(!s.has("CHANGE MASTER"));
    let s = with_policy(
        "elect_from_empty",
        "fn manage_link(node, link) {\n    insert_row(link, \"Yes\");\n}\n",
    );
    assert_eq!(s.out.code, 1);
    assert!(
        s.out
            .stdout
            .contains("insert_row(link, \"Yes\") refused on DC1-1: it has no channel"),
        "{}",
        s.out.all()
    );
    assert!(
        !s.has("'Yes'"),
        "nothing is written as Yes: {}",
        s.out.all()
    );
    // Yes for a node whose channel does not carry data: refused.
    let s = with_policy(
        "restarted_replica_reconnects",
        "fn manage_link(node, link) {\n    set_state(link, \"Yes\");\n}\n",
    );
    assert!(
        s.out.stdout.contains(
            "set_state(link, \"Yes\") refused on DC1-1: its channel does not run healthily"
        ),
        "{}",
        s.out.all()
    );
    assert_eq!(s.out.code, 1, "{}", s.out.all());
    assert!(!s.has("isReplica = 'Yes'"), "{}", s.out.all());
}

#[test]
fn a_site_policy_that_keeps_a_replica_outside_the_primary_component_cannot() {
    // The policy does nothing at all; the host still stops the channel before calling it.
    let s = with_policy(
        "non_primary_replica_stops",
        "fn manage_link(node, link) {\n}\n",
    );
    assert_eq!(
        s.statements(),
        ["STOP SLAVE 'DC1-DC2'", "RESET SLAVE 'DC1-DC2' ALL"]
    );
}

#[test]
fn a_site_policy_that_keeps_two_replicas_cannot() {
    let s = with_policy(
        "two_replicas_lower_rank_stops",
        "fn manage_link(node, link) {\n    heartbeat(link);\n}\n",
    )
    .ok();
    assert!(s.has("STOP SLAVE 'DC1-DC2'"), "{}", s.out.all());
    assert!(s.final_state().contains("DC1-2=No; no channel"));
}

#[test]
fn a_site_policy_that_leaves_a_replica_on_a_dead_source_does_not_hold_the_link() {
    // The source died; the policy neither switches nor fails: the host gives the link up.
    let s = with_policy(
        "source_lost_no_other_answers",
        "fn manage_link(node, link) {\n}\n",
    );
    assert!(s.at("RESET SLAVE 'DC1-DC2' ALL") < s.at("SET isReplica = 'Failed'"));
    assert!(s.has("failedKind = 'connect'"), "{}", s.out.all());
    assert!(
        s.mails()[0].contains("failed as replica"),
        "{:?}",
        s.mails()
    );
}

#[test]
fn a_policy_may_lengthen_the_silence_threshold_but_never_shorten_it() {
    // 400 s silent, threshold 179 s: replaced. A policy asking for 10 s changes nothing here
    // but is clamped; one asking for 600 s keeps the replica.
    let short = with_policy(
        "silent_replica_is_fenced_before_takeover",
        "fn silent_after(s) { 10 }\n",
    )
    .ok();
    assert!(
        short
            .out
            .stderr
            .contains("is shorter than [timeouts] heartbeat (179 s); using 179 s"),
        "{}",
        short.out.all()
    );
    assert!(short.has("n.seq = 55"));
    let long = with_policy(
        "silent_replica_is_fenced_before_takeover",
        "fn silent_after(s) { 600 }\n",
    )
    .ok();
    assert!(
        !long.has("n.seq = 55") && !long.has("CHANGE MASTER"),
        "{}",
        long.out.all()
    );
    // Clamped for real: a sequence that stood still for 20 s is not silent, though a 10 s
    // threshold would have demoted it.
    let s = with_policy("skewed_clock_is_not_silence", "fn silent_after(s) { 10 }\n").ok();
    assert_eq!(s.statements().len(), 1, "{}", s.out.all());
    assert!(!s.has("isReplica = 'No'"), "{}", s.out.all());
    // The same threshold is used by the demotion statement for a node that does not report.
    let s = with_policy("silent_replica_is_replaced", "fn silent_after(s) { 300 }\n").ok();
    assert!(
        s.has("lastHeartbeat < NOW() - INTERVAL 300 SECOND"),
        "{}",
        s.out.all()
    );
}

#[test]
fn a_silent_node_that_still_replicates_is_fenced_once_another_node_holds_the_link() {
    let s = sim("stray_channel_of_a_silent_node_is_fenced").ok();
    assert!(
        s.has("[on DC1-3 at 10.0.1.3:3306] STOP SLAVE 'DC1-DC2'"),
        "{}",
        s.out.all()
    );
    assert!(!s.has("CHANGE MASTER"), "this node takes nothing");
    assert!(
        s.mails()
            .iter()
            .any(|m| m.contains("stopped the channel of DC1-3"))
    );
}

#[test]
fn a_channel_fenced_while_the_manager_was_away_is_reset_without_an_alarm() {
    let s = sim("fenced_channel_is_reset_quietly").ok();
    assert!(s.at("RESET SLAVE 'DC1-DC2' ALL") < s.at("SET isReplica = 'No'"));
    assert!(s.mails().is_empty(), "{:?}", s.mails());
    assert!(s.final_state().contains("DC1-1=No DC1-2=Yes; no channel"));
}

// ---- golden files ----------------------------------------------------------------------------

/// Where two texts first differ, with a few lines of context, for a failure message.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let i = w
        .iter()
        .zip(&g)
        .position(|(a, b)| a != b)
        .unwrap_or(w.len().min(g.len()));
    let from = i.saturating_sub(2);
    let show = |v: &[&str], sign: char| {
        v.iter()
            .skip(from)
            .take(i - from + 3)
            .map(|l| format!("{sign} {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "first difference at line {}:\n{}\n---\n{}",
        i + 1,
        show(&w, '-'),
        show(&g, '+')
    )
}

#[test]
fn every_scenario_prints_exactly_its_golden_file() {
    // PXCRM_BLESS=1 cargo test golden  rewrites the .expected files and fails, so that a bless
    // run never passes for a comparison: review the diff, then run again without it.
    let bless = std::env::var("PXCRM_BLESS").as_deref() == Ok("1");
    let dir = repo().join("tests/scenarios");
    let mut scenarios: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    scenarios.sort();
    assert!(scenarios.len() >= 40, "{scenarios:?}");
    let mut failures = Vec::new();
    for path in &scenarios {
        let out = pxcrm(&["simulate", "--scenario", path.to_str().unwrap()]);
        let got = format!("exit {}\n{}", out.code, out.stdout);
        let golden = path.with_extension("expected");
        if bless {
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!(
                "{}: {}",
                golden.display(),
                first_difference(&want, &got)
            )),
            Err(e) => failures.push(format!(
                "{}: {e} (PXCRM_BLESS=1 writes it)",
                golden.display()
            )),
        }
    }
    // A golden file without its scenario is a test nobody runs.
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "expected") && !p.with_extension("toml").exists() {
            failures.push(format!("{}: no scenario beside it", p.display()));
        }
    }
    assert!(
        !bless,
        "PXCRM_BLESS=1: wrote {} golden files; review `git diff tests/scenarios`, then run again without it",
        scenarios.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs a scenario with a config that names a policy of `policies/` and sets its vars, as the
/// cookbook (`policies/README.md`) shows it.
fn with_cookbook(scenario: &str, policy: &str, vars: &str) -> Sim {
    let file = repo().join("policies").join(policy);
    let (_d, cfg) = temp_file(
        "site.toml",
        &format!("[policy]\nfile = {:?}\n{vars}", file.to_str().unwrap()),
    );
    sim_args(&["--config", cfg.to_str().unwrap()], scenario, &[])
}

#[test]
fn cookbook_a_preferred_source_per_remote_from_the_policy_vars() {
    let s = with_cookbook(
        "elect_from_empty",
        "prefer-source.rhai",
        "[policy.vars.prefer_source]\nDC2 = \"10.0.2.2:3306\"\n",
    )
    .ok();
    assert!(
        s.has("CHANGE MASTER 'DC1-DC2' TO MASTER_HOST='10.0.2.2'"),
        "{}",
        s.out.all()
    );
    let s = with_cookbook("elect_from_empty", "prefer-source.rhai", "").ok();
    assert!(
        s.has("CHANGE MASTER 'DC1-DC2' TO MASTER_HOST='10.0.2.1'"),
        "no entry for DC2: the built-in order: {}",
        s.out.all()
    );
}

#[test]
fn cookbook_an_override_calls_the_built_in_function_it_replaces() {
    let s = with_cookbook(
        "not_best_candidate_waits",
        "prefer-node.rhai",
        "[policy.vars]\nprefer_node = \"DC1-3\"\n",
    )
    .ok();
    assert!(
        s.final_state()
            .starts_with("DC1-DC2: rows DC1-2=No DC1-3=Yes;"),
        "{}",
        s.out.all()
    );
    let s = with_cookbook("not_best_candidate_waits", "prefer-node.rhai", "").ok();
    assert!(
        !s.has("CHANGE MASTER"),
        "the built-in ranking: {}",
        s.out.all()
    );
}

#[test]
fn cookbook_longer_timeouts_from_the_policy_vars_with_defaults() {
    let s = with_cookbook(
        "silent_replica_is_replaced",
        "patient.rhai",
        "[policy.vars]\nsilent_after = 300\n",
    )
    .ok();
    assert!(
        s.has("isReplica = 'No', lastUpdate = NOW() WHERE"),
        "400 s is over the configured 300 s: {}",
        s.out.all()
    );
    let s = with_cookbook(
        "silent_replica_is_replaced",
        "patient.rhai",
        "[policy.vars]\nsilent_after = \"300\"\n",
    );
    assert_eq!(s.out.code, 1, "{}", s.out.all());
    assert!(
        s.out
            .stdout
            .contains("silent_after returned a string, expected an integer number of seconds"),
        "{}",
        s.out.all()
    );
}
