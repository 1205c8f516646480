//! The policy sandbox's limits, attacked as a careless or hostile site policy would: each
//! attack runs through `simulate` (the engine `run` uses) and the test asserts the exit code
//! and the message, the process's peak memory (its rusage, from `wait4` in a small
//! launcher), the wall time,
//! and that nothing was written (no statement, no mail beyond the cap).

use crate::harness::{BIN, pxcrm, repo, temp_file};
use std::process::Command;
use std::time::{Duration, Instant};

/// One measured run of the binary.
struct Measured {
    code: i32,
    stdout: String,
    stderr: String,
    /// Peak resident memory of the process, in MiB.
    peak_mib: f64,
    wall: Duration,
}

impl Measured {
    fn all(&self) -> String {
        let chars = self.stderr.chars().count();
        let tail: String = self
            .stderr
            .chars()
            .skip(chars.saturating_sub(2000))
            .collect();
        format!(
            "exit {} in {:?}, peak {:.1} MiB\n--- stdout\n{}--- stderr ({} bytes, tail)\n{tail}",
            self.code,
            self.wall,
            self.peak_mib,
            self.stdout,
            self.stderr.len()
        )
    }

    /// What the node wrote: statements on the state table or a channel.
    fn statements(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .take_while(|l| *l != "--- final state")
            .filter(|l| {
                !l.contains(": MAIL ") && !l.contains(":     |") && !l.contains(": ERROR link")
            })
            .collect()
    }

    fn mails(&self) -> usize {
        self.stdout
            .lines()
            .filter(|l| l.contains(": MAIL "))
            .count()
    }
}

/// Starts a program and reports its peak RSS (KiB) to the file in argv[1]. The child is forked
/// from this small interpreter, not from the test binary: a process's peak RSS counts the
/// pages of the process it was forked from, until it execs.
const MEASURE: &str = r#"
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"#;

/// Runs `simulate` on a scenario with a site policy (and a config, if given), measuring the
/// child's own peak RSS.
fn attack(scenario: &str, policy: &str, config: Option<&str>) -> Measured {
    let (dir, p) = temp_file("site.rhai", policy);
    let cfg = config.map(|c| temp_file("site.toml", c));
    let peak = dir.path().join("peak");
    let scenario = repo()
        .join("tests/scenarios")
        .join(format!("{scenario}.toml"));
    let mut c = Command::new("python3");
    c.arg("-c").arg(MEASURE).arg(&peak).arg(BIN);
    if let Some((_, path)) = &cfg {
        c.arg("--config").arg(path);
    }
    c.arg("simulate")
        .arg("--scenario")
        .arg(&scenario)
        .arg("--policy")
        .arg(&p)
        .current_dir(repo());
    let start = Instant::now();
    let o = c.output().expect("python3 runs");
    let wall = start.elapsed();
    let peak_kib: f64 = std::fs::read_to_string(&peak)
        .expect("the measure wrote the peak")
        .trim()
        .parse()
        .expect("a number of KiB");
    Measured {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        peak_mib: peak_kib / 1024.0,
        wall,
    }
}

/// A 60 KB string, built in the policy (strings are shared unless changed, so each use below
/// makes its own copy by appending a number).
const BIG: &str = "let s = \"x\"; s.pad(60000, \"y\");";

/// A config whose calls may take 4 s: one source attempt takes 1 + 1 + 1 s here, and the
/// operation limit is raised out of the way.
const FOUR_SECONDS: &str = "[timeouts]\nheartbeat = 30\nprobe = 1\nconnect = 1\n[policy]\nmax_operations = 1000000000\nmax_seconds = 4\n";

/// Memory a run may reach: the limit (32 MiB) plus what the process holds without any policy
/// (about 10 MiB) plus one operation's result, which the string size limit bounds.
const PEAK_MIB: f64 = 64.0;

fn assert_stopped_by(m: &Measured, limit: &str) {
    assert_eq!(m.code, 1, "{}", m.all());
    assert!(m.stdout.contains(limit), "{}", m.all());
    assert!(m.statements().is_empty(), "{}", m.all());
    assert_eq!(m.mails(), 0, "{}", m.all());
}

#[test]
fn a_map_of_ten_thousand_big_values_is_stopped_by_the_memory_limit() {
    let m = attack(
        "elect_from_empty",
        &format!(
            "fn manage_link(node, link) {{\n    {BIG}\n    let m = #{{}};\n    for i in 0..10000 {{ m[`k${{i}}`] = s + i; }}\n}}\n"
        ),
        None,
    );
    assert_stopped_by(&m, "memory limit: the call held ");
    assert!(
        m.stdout
            .contains("more than its 32 MiB ([policy] max_memory_mib); stopped in manage_link"),
        "{}",
        m.all()
    );
    assert!(m.peak_mib < PEAK_MIB, "{}", m.all());
    assert!(m.wall < Duration::from_secs(10), "{}", m.all());
}

#[test]
fn closures_cannot_capture_and_curry_is_not_there() {
    // Both let a policy build a chain of values that costs the sandbox nothing per level and
    // overflowed the native stack when dropped (the process exited 134).
    for (policy, says) in [
        (
            "fn manage_link(node, link) {\n    let f = || 1;\n    for i in 0..100000 { let g = f; f = || g.call(); }\n}\n",
            "site.rhai:3:44: Undefined variable: g; if it is used inside a closure (|x| ...): closures cannot use the variables around them here",
        ),
        (
            "fn manage_link(node, link) {\n    let f = Fn(\"x\");\n    for i in 0..100000 { f = f.curry(f); }\n}\n",
            "site.rhai:3:32: Expecting name of a property; curry is not available in the sandbox",
        ),
    ] {
        let m = attack("elect_from_empty", policy, None);
        assert_eq!(m.code, 2, "{}", m.all());
        assert!(m.stderr.contains(says), "{}", m.all());
        assert!(m.stdout.is_empty(), "{}", m.all());
    }
}

/// A value nested 9,990 deep: within the item limit, and deeper than the 8 MiB main thread
/// could compare, format or drop.
const DEEP: &str = "let a = [];\n    for i in 0..9990 { a = [a]; }\n    let b = a;";

#[test]
fn a_deeply_nested_value_is_compared_formatted_and_dropped_without_overflowing() {
    for (what, then) in [
        ("compared", "if a == b { throw \"equal\"; }"),
        ("interpolated", "throw `${a}`;"),
        ("debugged", "debug(a); throw \"done\";"),
        ("thrown", "throw a;"),
        ("expected", "expect(a, \"a string\");"),
    ] {
        let m = attack(
            "elect_from_empty",
            &format!("fn manage_link(node, link) {{\n    {DEEP}\n    {then}\n}}\n"),
            None,
        );
        assert_eq!(m.code, 1, "{what}: {}", m.all());
        assert!(
            m.stdout.contains("ERROR link DC1-DC2"),
            "{what}: {}",
            m.all()
        );
        assert!(m.statements().is_empty(), "{what}: {}", m.all());
        assert!(m.peak_mib < PEAK_MIB, "{what}: {}", m.all());
    }
}

#[test]
fn a_nesting_past_the_item_limit_in_silent_after_leaves_the_heartbeat_timeout() {
    let m = attack(
        "elect_from_empty",
        "fn silent_after(s) {\n    let a = [];\n    for i in 0..20000 { a = [a]; }\n    600\n}\n",
        None,
    );
    assert!(
        m.stderr.contains("the policy's silent_after failed")
            && m.stderr.contains("size limit: size of array/blob is over")
            && m.stderr.contains("using [timeouts] heartbeat"),
        "{}",
        m.all()
    );
    assert!(m.peak_mib < PEAK_MIB, "{}", m.all());
}

#[test]
fn a_map_sharing_one_big_string_cannot_be_formatted_past_the_string_limit() {
    // 9,000 keys hold one shared 60 KB string: 300 KB of memory, and 540 MB of text when
    // Rhai formats it with its own formatter (it took 1.6 GB and 2.5 s).
    for format in [
        "let t = `${m}`;",
        "let t = \"\" + m;",
        "let t = m.to_string();",
        "debug(m);",
        "throw m;",
        "expect(m, \"a string\");",
    ] {
        let m = attack(
            "elect_from_empty",
            &format!(
                "fn manage_link(node, link) {{\n    {BIG}\n    let m = #{{}};\n    for i in 0..9000 {{ m[`k${{i}}`] = s; }}\n    {format}\n}}\n"
            ),
            None,
        );
        assert_eq!(m.code, 1, "{format}: {}", m.all());
        assert!(m.statements().is_empty(), "{format}: {}", m.all());
        assert!(m.peak_mib < PEAK_MIB, "{format}: {}", m.all());
    }
}

#[test]
fn formatting_a_big_map_is_stopped_before_it_costs_the_host() {
    for format in ["let t = `${m}`;", "print(m);", "log(`${m}`);"] {
        let m = attack(
            "elect_from_empty",
            &format!(
                "fn manage_link(node, link) {{\n    {BIG}\n    let m = #{{}};\n    for i in 0..3000 {{ m[`k${{i}}`] = s + i; }}\n    {format}\n}}\n"
            ),
            None,
        );
        assert_stopped_by(&m, "memory limit");
        assert!(m.peak_mib < PEAK_MIB, "{format}: {}", m.all());
    }
}

#[test]
fn a_long_loop_within_the_operation_limit_is_stopped_by_the_time_limit() {
    let m = attack(
        "elect_from_empty",
        "fn manage_link(node, link) {\n    let s = \"x\"; s.pad(300, \"y\");\n    let m = #{};\n    for i in 0..200 { m[`k${i}`] = s + i; }\n    loop { let c = m; let d = `${c.len()}`; }\n}\n",
        Some(FOUR_SECONDS),
    );
    assert_stopped_by(&m, "time limit: the call ran 4.");
    assert!(
        m.stdout
            .contains("longer than its 4 s ([policy] max_seconds)"),
        "{}",
        m.all()
    );
    assert!(m.wall < Duration::from_secs(8), "{}", m.all());
}

#[test]
fn a_probe_that_would_run_past_the_deadline_is_refused() {
    // The call spends 3.5 s of its 4, then asks for a probe that may take 1 s.
    let m = attack(
        "elect_from_empty",
        "fn manage_link(node, link) {\n    let t = timestamp();\n    while t.elapsed < 3.5 { }\n    probe(link, link.sources[0]);\n}\n",
        Some(FOUR_SECONDS),
    );
    assert_stopped_by(
        &m,
        "time limit: probe may take 1 s, but the policy call has 0.",
    );
    assert!(
        m.stdout
            .contains("s left of its 4 s ([policy] max_seconds)"),
        "{}",
        m.all()
    );
    assert!(m.wall < Duration::from_secs(6), "{}", m.all());
}

#[test]
fn a_log_flood_is_cut_at_the_runs_budget_with_one_line_saying_so() {
    let m = attack(
        "elect_from_empty",
        &format!(
            "fn manage_link(node, link) {{\n    {BIG}\n    for i in 0..20000 {{ log(s); print(s); }}\n}}\n"
        ),
        None,
    );
    assert_eq!(m.code, 0, "{}", m.all());
    assert!(m.stderr.len() < 100 * 1024, "{}", m.all());
    assert!(
        m.stderr
            .contains("the policy's log was cut: 39999 more line(s)"),
        "{}",
        m.all()
    );
    assert!(
        m.stderr.contains("([policy] max_log_lines, max_log_bytes)"),
        "{}",
        m.all()
    );
    let many_lines = attack(
        "elect_from_empty",
        "fn manage_link(node, link) {\n    for i in 0..100000 { log(`line ${i}`); }\n}\n",
        None,
    );
    let policy_lines = many_lines
        .stderr
        .lines()
        .filter(|l| l.contains("] DC1-1: line "))
        .count();
    assert_eq!(policy_lines, 200, "{}", many_lines.all());
}

#[test]
fn a_mail_flood_sends_one_mail_per_host_event_and_the_policys_own_at_a_rate() {
    // Subjects that differ in more than digits were each a new event: max_mails per link and
    // run, forever, and every subject kept in [files] state.
    let own = "fn manage_link(node, link) {\n    for i in 0..1000 { notify(`alert ${i}-${(i * 7919) % 65536}h`, \"body\"); }\n}\n";
    let m = attack("elect_from_empty", own, None);
    assert_eq!(m.code, 0, "{}", m.all());
    assert_eq!(m.mails(), 1, "{}", m.all());
    assert_eq!(
        m.stderr
            .matches("the policy's own mail is held back: one per link every 600 s ([policy] notify_every)")
            .count(),
        1,
        "{}",
        m.all()
    );
    // Without the rate, the cap per run still holds.
    let m = attack(
        "elect_from_empty",
        own,
        Some("[policy]\nnotify_every = 0\n"),
    );
    assert_eq!(m.mails(), 5, "{}", m.all());
    assert_eq!(
        m.stderr
            .matches("more mail than [policy] max_mails = 5 in one run")
            .count(),
        1,
        "{}",
        m.all()
    );
    // A host event's mail, however the policy's mail hook words it, goes out once.
    let hook = attack(
        "elect_from_empty",
        "fn mail(node, link, event, subject, body) {\n    for i in 0..100 { notify(`${subject} (${i}-${(i * 7919) % 65536}h)`, body); }\n}\n",
        None,
    );
    assert_eq!(hook.code, 0, "{}", hook.all());
    assert_eq!(hook.mails(), 1, "{}", hook.all());
    assert!(
        hook.stdout
            .contains("DC1-1 is the new replica (source 10.0.2.1:3306) (0-0h)"),
        "{}",
        hook.all()
    );
    assert_eq!(
        hook.stderr.matches("not mailed again").count(),
        1,
        "{}",
        hook.all()
    );
}

#[test]
fn runaway_recursion_names_the_call_depth_limit() {
    let m = attack(
        "elect_from_empty",
        "fn deeper(n) { deeper(n + 1) }\nfn manage_link(node, link) { deeper(0); }\n",
        None,
    );
    assert_stopped_by(&m, "call depth limit: more than 32 nested function calls");
    assert!(!m.stdout.contains(":0:0"), "{}", m.all());
}

#[test]
fn an_error_in_a_built_in_function_is_located_in_the_built_in_policy() {
    // The site replaces own_row with one that returns a number; the built-in manage_idle
    // then fails reading it. The error is in the built-in file, not in the site file.
    let m = attack(
        "not_best_candidate_waits",
        "fn own_row(rows) { 42 }\n",
        None,
    );
    assert_eq!(m.code, 1, "{}", m.all());
    assert!(
        m.stdout
            .contains(": ERROR link DC1-DC2: policies/default.rhai (built in):"),
        "{}",
        m.all()
    );
    assert!(
        m.stdout.contains("(in manage_idle <- manage_link)"),
        "{}",
        m.all()
    );
    let site = attack(
        "not_best_candidate_waits",
        "fn links_held(link, host) {\n    let x = ();\n    x.foo\n}\n",
        None,
    );
    assert!(
        site.stdout
            .contains("site.rhai:3:7: Unknown property 'foo'"),
        "{}",
        site.all()
    );
    assert!(
        site.stdout
            .contains("(in links_held <- rank_nodes <- manage_idle <- manage_link)"),
        "{}",
        site.all()
    );
}

#[test]
fn an_override_returning_the_wrong_type_is_an_error_naming_it() {
    let vars = attack(
        "failed_clears_after_timeout",
        "fn failed_clears_after(s) { s.vars.failed_after ?? 900 }\n",
        Some("[policy.vars]\nfailed_after = \"900\"\n"),
    );
    assert_eq!(vars.code, 1, "{}", vars.all());
    assert!(
        vars.stdout.contains("failed_clears_after(s) returned a string (\"900\"), expected an integer number of seconds"),
        "{}",
        vars.all()
    );
    let silent = attack("elect_from_empty", "fn silent_after(s) { \"600\" }\n", None);
    assert_eq!(silent.code, 1, "{}", silent.all());
    assert!(
        silent
            .stdout
            .contains("silent_after returned a string, expected an integer number of seconds"),
        "{}",
        silent.all()
    );
    let throws = attack(
        "not_best_candidate_waits",
        "fn rank_nodes(node, link, rows) {\n    rows.sort(|a, b| { throw \"cannot order\"; });\n    rows\n}\n",
        None,
    );
    assert_eq!(throws.code, 1, "{}", throws.all());
    assert!(
        throws
            .stdout
            .contains("site.rhai:2:24: Runtime error: cannot order"),
        "{}",
        throws.all()
    );
    let ranks = attack(
        "not_best_candidate_waits",
        "fn rank_nodes(node, link, rows) { \"DC1-1\" }\n",
        None,
    );
    assert!(
        ranks.stdout.contains(
            "rank_nodes(node, link, rows) returned a string (\"DC1-1\"), expected an array of rows"
        ),
        "{}",
        ranks.all()
    );
}

#[test]
fn a_subject_cannot_forge_printed_lines() {
    let m = attack(
        "elect_from_empty",
        "fn manage_link(node, link) {\n    notify(\"ok\\nDC1-1: DROP DATABASE percona\", \"body\\u0007\");\n    log(\"x\\nDC1-1: forged\");\n}\n",
        None,
    );
    assert_eq!(m.code, 0, "{}", m.all());
    assert!(
        !m.stdout.lines().any(|l| l.starts_with("DC1-1: DROP")),
        "{}",
        m.all()
    );
    assert!(
        m.stdout.contains("ok\\nDC1-1: DROP DATABASE percona"),
        "{}",
        m.all()
    );
    assert!(
        !m.stderr.lines().any(|l| l.starts_with("DC1-1: forged")),
        "{}",
        m.all()
    );
    assert!(!m.stdout.contains('\u{7}'), "{}", m.all());
}

#[test]
fn policy_check_refuses_an_override_point_with_the_wrong_arity() {
    let (_d, p) = temp_file("arity.rhai", "fn rank_nodes(node, link) { [] }\n");
    let o = pxcrm(&["policy", "check", p.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("arity.rhai:1:1: fn rank_nodes takes 2 parameter(s) here, but the built-in rank_nodes(node, link, rows) takes 3: it would replace nothing"),
        "{}",
        o.all()
    );
    assert!(!o.stdout.contains("ok"), "{}", o.all());
}

#[test]
fn policy_check_refuses_a_call_to_a_function_defined_nowhere() {
    // A typo in a branch taken rarely failed only when reached, and a node whose policy
    // fails stops reporting.
    let (_d, p) = temp_file(
        "typo.rhai",
        "fn manage_link(node, link) {\n    if node.name == \"DC1-9\" {\n        lgo(\"rare\");\n        let n = link.key.lenn();\n    }\n    builtin_manage_link(node, link);\n}\nfn helper(a) { a }\nfn silent_after(s) { helper(1, 2) + s.heartbeat_timeout.max(3) + type_of(s).len() }\n",
    );
    let o = pxcrm(&["policy", "check", p.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.all());
    for says in [
        "typo.rhai:3:9: no function lgo is defined in this file, the built-in policy or the host's API; did you mean log?; the call would fail when it is reached",
        "typo.rhai:4:26: no method lenn is defined in this file, the built-in policy or the host's API; did you mean len?",
        "typo.rhai:9:22: helper is called with 2 argument(s), but it takes 1",
        "typo.rhai:3:9: the first of 3 call(s) to a function defined nowhere (each above)",
    ] {
        assert!(o.stderr.contains(says), "{says}: {}", o.all());
    }
    // The same file runs until the branch is taken.
    let m = attack(
        "elect_from_empty",
        &std::fs::read_to_string(&p).unwrap(),
        None,
    );
    assert!(m.stdout.contains("CHANGE MASTER"), "{}", m.all());
}

#[test]
fn policy_check_warns_on_a_function_nothing_calls_and_names_the_nearest_override_point() {
    let (_d, p) = temp_file(
        "misspelt.rhai",
        "// ranks by name\nfn rank_node(node, link, rows) { [] }\nfn helper(x) { x }\nfn silent_after(s) { helper(600) }\n",
    );
    let o = pxcrm(&["policy", "check", p.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stderr.contains("misspelt.rhai:2: fn rank_node/3 is not called by anything and replaces no built-in function; did you mean the override point rank_nodes/3?"),
        "{}",
        o.all()
    );
    assert!(
        !o.stderr.contains("fn helper"),
        "a called helper is fine: {}",
        o.all()
    );
    assert!(
        o.stdout
            .contains("ok; replaces built-in function(s): silent_after/1"),
        "{}",
        o.all()
    );
}

#[test]
fn simulate_uses_the_whole_config_and_refuses_what_a_live_run_refuses() {
    let scenario = repo().join("tests/scenarios/silent_replica_is_fenced_before_takeover.toml");
    let scenario = scenario.to_str().unwrap();
    let (_d, cfg) = temp_file(
        "site.toml",
        "[timeouts]\nheartbeat = 250\n[mail]\nto = [\"ops@example.org\"]\n",
    );
    let o = pxcrm(&[
        "--config",
        cfg.to_str().unwrap(),
        "simulate",
        "--scenario",
        scenario,
    ]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("(limit 250s)"),
        "[timeouts] heartbeat: {}",
        o.all()
    );
    assert!(
        o.stdout.contains("MAIL to ops@example.org:"),
        "[mail] to: {}",
        o.all()
    );
    for (bad, key) in [
        (
            "max_operations = 0",
            "[policy] max_operations = 0: must be from 1000",
        ),
        (
            "max_memory_mib = 0",
            "[policy] max_memory_mib = 0: must be from 1 to 4096 MiB",
        ),
        (
            "max_mails = 0",
            "[policy] max_mails = 0: must be from 1 to 1000 mails per link and run; to send none, set [mail] transport = \"none\"",
        ),
        (
            "max_seconds = 20",
            "[policy] max_seconds (20 s) must be longer than one source attempt",
        ),
    ] {
        let (_d, cfg) = temp_file("bad.toml", &format!("[policy]\n{bad}\n"));
        let o = pxcrm(&[
            "--config",
            cfg.to_str().unwrap(),
            "simulate",
            "--scenario",
            scenario,
        ]);
        assert_eq!(o.code, 2, "{bad}: {}", o.all());
        assert!(o.stderr.contains("bad.toml:2:"), "{bad}: {}", o.all());
        assert!(o.stderr.contains(key), "{bad}: {}", o.all());
        assert!(o.stdout.is_empty(), "{bad}: nothing simulated: {}", o.all());
    }
}

#[test]
fn the_host_rules_that_need_no_policy_run_without_asking_it() {
    // The policy is asked nothing in such a run, so one that hangs, fails or overflows in
    // silent_after (the first call of a run) cannot keep a node outside the Primary component
    // replicating, nor a paused node from reporting.
    let policy = "fn silent_after(s) { throw \"asked silent_after\"; }\nfn manage_link(node, link) { throw \"asked manage_link\"; }\n";
    let m = attack("non_primary_replica_stops", policy, None);
    assert_eq!(m.code, 0, "{}", m.all());
    assert!(!m.all().contains("asked"), "{}", m.all());
    assert_eq!(
        m.statements()[..2],
        [
            "DC1-1: STOP SLAVE 'DC1-DC2'",
            "DC1-1: RESET SLAVE 'DC1-DC2' ALL"
        ],
        "{}",
        m.all()
    );
    assert!(
        m.stdout
            .contains("takes over once this node is silent for 179 s (or the policy's silent_after, if longer)."),
        "{}",
        m.all()
    );
    let m = attack("paused_replica_keeps_reporting", policy, None);
    assert_eq!(m.code, 0, "{}", m.all());
    assert!(!m.all().contains("asked"), "{}", m.all());
    assert!(
        m.stdout.contains("pausedSince = FROM_UNIXTIME(999880)"),
        "the paused node reported: {}",
        m.all()
    );
}

#[test]
fn all_the_policy_calls_of_a_run_share_a_third_of_the_heartbeat_timeout() {
    // Two links, each call just within max_seconds = 4: the calls took 8 s together, and at
    // the default limits (10 s a call) a run over several links outlasted the heartbeat
    // timeout, so that its peers fenced a healthy replica.
    let m = attack(
        "links_spread_across_nodes",
        "fn manage_link(node, link) {\n    loop { }\n}\n",
        Some(
            "[timeouts]\nheartbeat = 18\nprobe = 1\nconnect = 1\n[policy]\nmax_operations = 1000000000\nmax_seconds = 4\n",
        ),
    );
    assert_eq!(m.code, 1, "{}", m.all());
    assert!(
        m.stdout
            .contains("time limit: the call ran 4.0 s, longer than its 4 s ([policy] max_seconds)"),
        "{}",
        m.all()
    );
    assert!(
        m.stdout.contains("time limit: the run's policy calls took 6.0 s together, its budget is 6 s (a third of [timeouts] heartbeat, or [policy] max_seconds if longer, so that the run refreshes its heartbeat in time)"),
        "{}",
        m.all()
    );
    assert!(m.wall < Duration::from_secs(8), "{}", m.all());
}

#[test]
fn a_primitive_changes_only_the_link_whose_turn_it_is() {
    // In DC1-DC3's turn (the second), the policy proposed and connected DC1-DC2 again, after
    // that link's rules had run: the run ended with a channel under a Proposed row, and the
    // node's report said it ran none.
    let m = attack(
        "links_spread_across_nodes",
        "fn manage_link(node, link) {\n    if link.remote == \"DC3\" {\n        for l in links() { if l.remote == \"DC2\" { propose(l); connect(l, l.sources[0]); } }\n    }\n}\n",
        None,
    );
    assert_eq!(m.code, 1, "{}", m.all());
    assert!(
        m.stdout.contains("propose refused on DC1-2: a primitive changes only the link whose turn it is (DC1-DC3), not DC1-DC2"),
        "{}",
        m.all()
    );
    assert!(!m.stdout.contains("CHANGE MASTER"), "{}", m.all());
    assert!(
        m.stdout
            .contains("DC1-DC2: rows DC1-1=No DC1-2=No; no channel"),
        "{}",
        m.all()
    );
}

#[test]
fn set_state_on_a_node_without_a_row_is_refused_and_no_hook_tells_of_it() {
    // It returned true and ran on_role_change (and on_failed) while no row changed.
    let m = attack(
        "hooks_on_election",
        "fn manage_link(node, link) {\n    set_state(link, ROLE.Failed);\n}\n",
        None,
    );
    assert_eq!(m.code, 1, "{}", m.all());
    assert!(
        m.stdout.contains("set_state refused on DC1-1: it has no row for DC1-DC2, so nothing would change; insert_row(link, state) adds it"),
        "{}",
        m.all()
    );
    assert!(!m.stdout.contains("HOOK"), "{}", m.all());
}

#[test]
fn a_log_of_characters_that_do_not_print_is_counted_as_it_is_written() {
    // Each of these characters is written as 5 bytes (\u{1}): counted before escaping, the
    // budget let about 5 times its size through.
    let m = attack(
        "elect_from_empty",
        "fn manage_link(node, link) {\n    let s = \"\"; s.pad(10000, \"\\x01\");\n    for i in 0..1000 { log(s); }\n}\n",
        None,
    );
    assert_eq!(m.code, 0, "{}", m.all());
    assert!(m.stderr.len() < 100 * 1024, "{}", m.all());
    assert!(
        m.stderr.contains(
            "the policy's log was cut: 999 more line(s) (9990000 bytes as the policy gave them)"
        ),
        "{}",
        m.all()
    );
}

#[test]
fn no_character_that_does_not_print_reaches_a_log_or_a_mail() {
    // Bidi overrides, line separators and zero-width characters passed raw, so a policy could
    // print a fake facts block.
    let m = attack(
        "elect_from_empty",
        "fn manage_link(node, link) {\n    notify(\"a\\u202Eb\\u2028c\\u200Bd\\x00\", \"line 1\\n\\u2029-- facts --\\u202E\");\n    log(\"\\u2028DC1-1: forged\\u2066\");\n}\n",
        None,
    );
    assert_eq!(m.code, 0, "{}", m.all());
    for c in [
        '\u{202e}', '\u{2028}', '\u{2029}', '\u{200b}', '\u{2066}', '\0',
    ] {
        assert!(!m.all().contains(c), "{c:?}: {}", m.all());
    }
    assert!(
        m.stdout.contains("a\\u{202e}b\\u{2028}c\\u{200b}d\\u{0}"),
        "{}",
        m.all()
    );
    // A body keeps its lines.
    assert!(
        m.stdout.contains("|     | line 1\n") || m.stdout.contains("| line 1\n"),
        "{}",
        m.all()
    );
    assert!(
        m.stdout.contains("| \\u{2029}-- facts --\\u{202e}\n"),
        "{}",
        m.all()
    );
    assert!(
        m.stderr.contains("DC1-1: \\u{2028}DC1-1: forged\\u{2066}"),
        "{}",
        m.all()
    );
}
