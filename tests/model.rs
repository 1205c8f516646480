//! The model checker, checked: the shipped policy satisfies every property within the
//! standard bounds, and deliberately broken variants (a host without the claim, a host without
//! the fence, a policy that never elects, a policy that moves the replica on every run) are
//! rejected with a counterexample whose scenario files `simulate` replays.
//!
//! A test binary of its own, so that cargo runs it apart from the real-cluster suite, whose
//! timing a CPU-bound search would disturb.

use pxc_replication_manager::check::node::Mutant;
use pxc_replication_manager::check::search::{self, Property, Report, Violation};
use pxc_replication_manager::check::world::Fault;
use pxc_replication_manager::check::{Bounds, Model, trace};
use pxc_replication_manager::config::Limits;
use pxc_replication_manager::policy::Policy;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_pxc-replication-manager");

fn policy(file: Option<&str>) -> Policy {
    Policy::load(file.map(Path::new), &Limits::default()).expect("the policy compiles")
}

fn bounds(split: bool, faults: u8, kinds: &[Fault]) -> Bounds {
    Bounds {
        split,
        faults,
        kinds: kinds.iter().copied().collect::<BTreeSet<_>>(),
        ..Bounds::standard()[0].clone()
    }
}

/// Explores until the first violation: the search's report and the violation of `property`;
/// fails the test if there is none.
fn first_violation(model: &Model, property: Property) -> (Report, Violation) {
    let r = search::explore(model, true);
    let Some(v) = r.violation(property).cloned() else {
        panic!(
            "expected a violation of {property:?}; found {:?} after {} states",
            r.violations.iter().map(|v| v.property).collect::<Vec<_>>(),
            r.states
        );
    };
    (r, v)
}

/// Explores the whole model; fails the test unless it completed and every property held.
fn assert_every_property_holds(model: &Model) {
    let r = search::explore(model, false);
    assert!(r.complete, "incomplete after {} states", r.states);
    assert!(
        r.violations.is_empty(),
        "{:?}",
        r.violations.iter().map(|v| &v.message).collect::<Vec<_>>()
    );
}

fn out_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn the_shipped_policy_satisfies_every_property_within_the_standard_bounds() {
    let p = policy(None);
    for b in Bounds::standard() {
        let what = b.describe();
        let model = Model::new(&p, b, None).unwrap();
        let r = search::explore(&model, false);
        assert!(r.complete, "{what}: incomplete after {} states", r.states);
        assert!(r.states > 500, "{what}: only {} states", r.states);
        for v in &r.violations {
            eprintln!("{}", trace::render(&model, v));
        }
        assert!(
            r.violations.is_empty(),
            "{what}: {:?}",
            r.violations
                .iter()
                .map(|v| (v.property, v.message.clone()))
                .collect::<Vec<_>>()
        );
        let worst = r.worst_recovery.map_or(0, |q| q + 1);
        assert!(
            worst <= model.liveness_bound(),
            "{what}: recovery took {worst} ticks"
        );
        eprintln!(
            "{what}: {} states, {} transitions, {:.1} s, recovery within {worst} ticks",
            r.states,
            r.transitions,
            r.elapsed.as_secs_f64()
        );
    }
}

/// A broken host, checked with the replica's manager stopping: the checker must find two
/// channels of the link, after that fault.
fn finds_two_channels_after_a_stopped_manager(bounds: Bounds, mutant: Mutant) {
    let p = policy(None);
    let model = Model::new(&p, bounds, Some(mutant)).unwrap();
    let (_, v) = first_violation(&model, Property::OneChannel);
    assert!(
        v.events
            .iter()
            .any(|e| e.describe(&model.initial()).contains("manager stops")),
        "{}",
        trace::render(&model, &v)
    );
}

#[test]
fn a_host_without_the_fence_lets_a_silent_holder_replicate_beside_its_successor() {
    finds_two_channels_after_a_stopped_manager(
        bounds(false, 1, &[Fault::ManagerStops]),
        Mutant::NoFence,
    );
}

#[test]
fn a_host_whose_failed_fence_counts_as_done_replaces_a_live_replica_beside_its_channel() {
    // The host before fences that never fail open: a fence refused by a member of the view
    // let the takeover go on. The checker finds the two channels the sandbox saw.
    finds_two_channels_after_a_stopped_manager(
        Bounds {
            fences_refused: true,
            ..bounds(false, 1, &[Fault::ManagerStops])
        },
        Mutant::FenceFailsOpen,
    );
}

/// The split model's bounds: runs split at their host calls, no fault.
fn split_bounds() -> Bounds {
    Bounds {
        faults: 0,
        ..Bounds::standard()[1].clone()
    }
}

#[test]
fn the_claim_keeps_nodes_that_all_rank_themselves_first_to_one_replica() {
    let p = policy(Some("tests/model/ranks-itself-first.rhai"));
    let model = Model::new(&p, split_bounds(), None).unwrap();
    let r = search::explore(&model, true);
    assert!(r.complete, "incomplete after {} states", r.states);
    assert!(
        r.violations.is_empty(),
        "{}",
        r.violations
            .iter()
            .map(|v| trace::render(&model, v))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_host_without_the_claim_lets_two_nodes_that_saw_the_link_free_both_replicate() {
    let p = policy(Some("tests/model/ranks-itself-first.rhai"));
    let model = Model::new(&p, split_bounds(), Some(Mutant::NoClaim)).unwrap();
    let (_, v) = first_violation(&model, Property::OneChannel);
    assert!(v.message.contains("all run a channel"), "{}", v.message);
    let trace = trace::render(&model, &v);
    assert!(
        trace
            .lines()
            .any(|l| l.contains("=>") && l.matches("Proposed").count() >= 2),
        "two nodes hold Proposed at once in the counterexample:\n{trace}"
    );
    // A split run is replayed from its start at each step; the trace shows the policy's log
    // line once, at the step where the run ranked, not again at each later step.
    for node in ["DC1-2", "DC1-3"] {
        let logged = format!("{node}: policy log: {node} ranks itself first");
        assert_eq!(
            trace.lines().filter(|l| l.trim() == logged).count(),
            1,
            "{logged:?} once:\n{trace}"
        );
    }
}

#[test]
fn a_policy_that_never_elects_fails_bounded_liveness() {
    let p = policy(Some("tests/model/never-elects.rhai"));
    let model = Model::new(&p, bounds(false, 0, &[]), None).unwrap();
    let (_, v) = first_violation(&model, Property::Liveness);
    assert!(
        v.message.contains("no replica carries data")
            && v.message
                .contains("no fault happened for 8 tick(s) or more")
            && v.message
                .contains("the link was given up, or never taken, without a fault"),
        "{}",
        v.message
    );
}

#[test]
fn a_policy_that_moves_the_replica_on_every_run_fails_no_flapping() {
    let p = policy(Some("tests/model/moves-every-run.rhai"));
    let model = Model::new(&p, bounds(false, 0, &[]), None).unwrap();
    let (_, v) = first_violation(&model, Property::NoFlapping);
    assert!(v.message.contains("was stopped"), "{}", v.message);
}

#[test]
fn a_counterexample_is_written_as_scenarios_that_simulate_replays() {
    let file = "tests/model/moves-every-run.rhai";
    let p = policy(Some(file));
    let model = Model::new(&p, bounds(false, 0, &[]), None).unwrap();
    let (_, v) = first_violation(&model, Property::NoFlapping);
    let dir = out_dir("moves-every-run");
    let files = trace::write(&model, &v, &dir).unwrap();
    let trace_text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        trace_text.starts_with("counterexample: no flapping"),
        "{trace_text}"
    );
    let scenarios: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "toml"))
        .collect();
    assert_eq!(
        scenarios.len(),
        v.events
            .iter()
            .filter(|e| matches!(e, pxc_replication_manager::check::world::Event::Run(_)))
            .count(),
        "one scenario per run"
    );
    // Each scenario replays its run: simulate prints the statements the trace shows for it.
    // The scenario names the policy that produced it: no --policy is needed.
    for f in scenarios {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.contains("moves-every-run.rhai, named in [policy] file"),
            "{text}"
        );
        let out = Command::new(BIN)
            .args(["simulate", "--scenario"])
            .arg(f)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}{}",
            f.display(),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        let step: usize = f.file_name().unwrap().to_string_lossy()[..2]
            .parse()
            .unwrap();
        let node = f.file_stem().unwrap().to_string_lossy()[3..].to_string();
        let sect = section(&trace_text, step);
        let in_trace: Vec<&str> = sect
            .lines()
            .map(str::trim)
            // The statements, not the policy's log lines (simulate logs those to stderr).
            .filter(|l| {
                l.starts_with(&format!("{node}: "))
                    && !l.contains("MAIL")
                    && !l.starts_with(&format!("{node}: policy "))
            })
            .collect();
        let simulated: Vec<&str> = stdout
            .lines()
            .take_while(|l| !l.starts_with("--- final state"))
            // The history is written by simulate, not by the model's nodes (nothing decides on
            // it; docs/protocol.md, what the model leaves out).
            .filter(|l| {
                l.starts_with(&format!("{node}: "))
                    && !l.contains("MAIL")
                    && !l.contains(":     | ")
                    && !l.contains("percona.replication_history")
            })
            .collect();
        assert!(!in_trace.is_empty(), "step {step} printed nothing");
        assert_eq!(simulated, in_trace, "{}", f.display());
    }
}

/// The lines of step `n` in a trace.
fn section(trace: &str, n: usize) -> String {
    let head = format!("{n:>3}. ");
    let next = format!("{:>3}. ", n + 1);
    let mut on = false;
    let mut out = String::new();
    for l in trace.lines() {
        if l.starts_with(&head) {
            on = true;
            continue;
        }
        if l.starts_with(&next) {
            break;
        }
        if on && !l.trim_start().starts_with("=>") {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

#[test]
fn policy_verify_prints_the_states_the_time_and_every_property() {
    let out = Command::new(BIN)
        // The two-link model, the smallest: the policy never elects there either.
        .args([
            "policy",
            "verify",
            "--model",
            "3",
            "tests/model/never-elects.rhai",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("states, "), "{stdout}");
    assert!(
        stdout.contains(" s\n") || stdout.contains(" s ("),
        "{stdout}"
    );
    assert!(
        stdout.contains("  ok    safety: at most one node"),
        "{stdout}"
    );
    assert!(stdout.contains("  FAIL  bounded liveness"), "{stdout}");
    // What an ok covers, in the output itself.
    assert!(
        stdout.contains("What \"ok\" means: ")
            && stdout.contains("replica lag NULL, 0 or past every threshold"),
        "{stdout}"
    );
}

#[test]
fn policy_verify_resizes_every_model_to_the_nodes_and_links_asked_for() {
    let verify = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The weighted model, resized (smaller, to keep the test short): its weight stays on the
    // last node.
    let (code, stdout, _) = verify(&[
        "policy", "verify", "--model", "3", "--nodes", "2", "--links", "3",
    ]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("model 1 of 1: 2 nodes, 3 link(s) with 2 sources each"),
        "{stdout}"
    );
    assert!(stdout.contains("weights DC1-1 0, DC1-2 5"), "{stdout}");
    // A bound on states that the model passes: incomplete, and not a success.
    let (code, stdout, _) = verify(&["policy", "verify", "--model", "3", "--max-states", "10"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("(INCOMPLETE: the bound on states was reached)"),
        "{stdout}"
    );
    // A cluster of one node is not a model of the protocol.
    let (code, _, stderr) = verify(&["policy", "verify", "--nodes", "1"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--nodes"), "{stderr}");
}

#[test]
fn policy_verify_with_a_config_runs_the_model_on_its_policy_vars() {
    // A policy that cannot rank without its var: checked as if [policy.vars] were empty, it
    // never elects; with the config that sets it, it does.
    let dir = out_dir("needs-a-var");
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("needs-a-var.rhai");
    std::fs::write(
        &policy,
        "fn rank_nodes(node, link, rows) {\n    if settings().vars.site_ready != true { throw \"site_ready is not set\"; }\n    builtin_rank_nodes(node, link, rows)\n}\n",
    )
    .unwrap();
    let config = dir.join("site.toml");
    std::fs::write(
        &config,
        format!(
            "[local]\nweight = 7\n[timeouts]\nheartbeat = 120\nfailed = 300\n[policy]\nfile = {:?}\n[policy.vars]\nsite_ready = true\n",
            policy.display().to_string()
        ),
    )
    .unwrap();
    let verify = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let p = policy.to_str().unwrap();
    let (code, stdout) = verify(&["policy", "verify", "--model", "3", p]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("  FAIL  bounded liveness"), "{stdout}");
    let c = config.to_str().unwrap();
    let (code, stdout) = verify(&["--config", c, "policy", "verify", "--model", "3"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("[policy.vars] site_ready = true; distribute = true"),
        "{stdout}"
    );
    assert!(
        stdout.contains("needs-a-var.rhai on top of the built-in policy"),
        "{stdout}"
    );
    // Its [timeouts] and this node's weight are the model's, and said so.
    assert!(
        stdout.contains("[timeouts] heartbeat 120 s, failed 300 s; this node's weight 7"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the rules compare ages with 120 s (tick 2), 300 s (tick 5)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("heartbeat 120 s, failed 300 s")
            && stdout.contains("weights DC1-1 0, DC1-2 0, DC1-3 7"),
        "{stdout}"
    );
}

#[test]
fn a_policy_that_reads_the_clock_fails_determinism_and_the_message_says_where() {
    let p = policy(Some("tests/model/reads-the-clock.rhai"));
    // Split runs: each resumes by replaying its log.
    let model = Model::new(&p, Bounds::standard()[1].clone(), None).unwrap();
    let (_, v) = first_violation(&model, Property::Determinism);
    assert!(
        v.message.starts_with("the policy reads the clock (timestamp at tests/model/reads-the-clock.rhai:6:13, elapsed at tests/model/reads-the-clock.rhai:8:13)"),
        "{}",
        v.message
    );
    assert!(
        v.message.contains("compare the ages rows(link) gives"),
        "{}",
        v.message
    );
}

#[test]
fn a_policy_that_hands_the_link_to_any_heavier_node_fails_no_flapping_once_weights_differ() {
    let p = policy(Some("tests/model/hands-to-heavier.rhai"));
    // With every weight 0, as before, the policy never acts: an ok that meant nothing.
    let flat = Model::new(&p, bounds(false, 1, &[Fault::Crash]), None).unwrap();
    assert_every_property_holds(&flat);
    // The heaviest node crashes, a lighter one takes over, the heavy one comes back.
    let weighted = Bounds {
        weights: vec![0, 0, 5],
        ..bounds(false, 1, &[Fault::Crash])
    };
    assert!(
        weighted
            .describe()
            .contains("weights DC1-1 0, DC1-2 0, DC1-3 5")
    );
    let model = Model::new(&p, weighted, None).unwrap();
    first_violation(&model, Property::NoFlapping);
}

#[test]
fn a_policy_that_hands_the_link_over_after_an_hour_fails_no_flapping() {
    let p = policy(Some("tests/model/hands-over-after-an-hour.rhai"));
    let model = Model::new(&p, bounds(false, 0, &[]), None).unwrap();
    assert!(
        model.clock.seconds.values().contains(&3600),
        "the hour the policy compares with is a threshold: {:?}",
        model.clock.seconds
    );
    let (r, v) = first_violation(&model, Property::NoFlapping);
    assert!(v.message.contains("was stopped"), "{}", v.message);
    // The hour is a few ticks away: the gap before it takes two.
    assert_eq!(model.clock.ticks(3600), 6, "{:?}", model.clock);
    assert!(
        r.depth < 120,
        "the hour is reached in {} steps or fewer",
        r.depth
    );
}

#[test]
fn a_policy_that_gives_the_link_up_whenever_it_lags_fails_no_flapping() {
    let p = policy(Some("tests/model/demotes-on-lag.rhai"));
    let model = Model::new(&p, bounds(false, 1, &[Fault::Lag]), None).unwrap();
    let (_, v) = first_violation(&model, Property::NoFlapping);
    let text = trace::render(&model, &v);
    assert!(text.contains("fall behind"), "{text}");
    // The policy's own log lines are in the trace, at the step that wrote them; the lag is
    // past every threshold (here the failed timeout, 3 s).
    assert!(
        text.contains(": policy log: behind by 5s: giving the link up"),
        "{text}"
    );
}

/// `policy verify` of a cookbook policy with the config its header documents (the indented
/// TOML in its opening comment, its `file` pointing at the policy here).
fn verify_cookbook(name: &str) {
    let file = Path::new("policies").join(name);
    let text = std::fs::read_to_string(&file).unwrap();
    let mut config = String::new();
    for line in text.lines().take_while(|l| l.starts_with("//")) {
        if let Some(toml) = line.strip_prefix("//   ") {
            let toml = if toml.starts_with("file = ") {
                format!("file = {:?}", std::fs::canonicalize(&file).unwrap())
            } else {
                toml.to_string()
            };
            config.push_str(&toml);
            config.push('\n');
        }
    }
    let dir = out_dir(&format!("cookbook-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut args: Vec<String> = Vec::new();
    if config.is_empty() {
        args.extend(["policy".into(), "verify".into(), file.display().to_string()]);
    } else {
        assert!(config.contains("file = "), "{name}: {config}");
        let c = dir.join("site.toml");
        std::fs::write(&c, &config).unwrap();
        args.extend([
            "--config".into(),
            c.display().to_string(),
            "policy".into(),
            "verify".into(),
        ]);
    }
    let out = Command::new(BIN).args(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{name}: {args:?}\n{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn the_cookbook_policy_patient_passes_verify_with_its_documented_vars() {
    verify_cookbook("patient.rhai");
}

#[test]
fn the_cookbook_policy_prefer_node_passes_verify_with_its_documented_vars() {
    verify_cookbook("prefer-node.rhai");
}

#[test]
fn the_cookbook_policy_prefer_source_passes_verify_with_its_documented_vars() {
    verify_cookbook("prefer-source.rhai");
}

#[test]
fn the_cookbook_policy_prefer_weight_passes_verify() {
    verify_cookbook("prefer-weight.rhai");
}

#[test]
fn the_cookbook_policy_mail_on_failed_only_passes_verify_with_its_documented_config() {
    verify_cookbook("mail-on-failed-only.rhai");
}

#[test]
fn every_cookbook_policy_has_a_verify_test() {
    let tested = [
        "default.rhai",
        "mail-on-failed-only.rhai",
        "patient.rhai",
        "prefer-node.rhai",
        "prefer-source.rhai",
        "prefer-weight.rhai",
    ];
    let mut found: Vec<String> = std::fs::read_dir("policies")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rhai"))
        .collect();
    found.sort();
    assert_eq!(
        found, tested,
        "a new cookbook policy needs its verify test here"
    );
}

#[test]
fn a_run_sends_at_most_the_hosts_mail_cap_and_a_host_without_it_is_caught() {
    let p = policy(Some("tests/model/mails-every-event.rhai"));
    let model = Model::new(&p, bounds(false, 0, &[]), None).unwrap();
    assert_every_property_holds(&model);
    let broken = Model::new(&p, bounds(false, 0, &[]), Some(Mutant::NoMailCap)).unwrap();
    let (_, v) = first_violation(&broken, Property::MailCap);
    assert!(
        v.message
            .contains("mails in one run, more than [policy] max_mails = 5 for each of 1 link(s)"),
        "{}",
        v.message
    );
    let sent: usize = v.message.split(" sent ").nth(1).unwrap()[..1]
        .parse()
        .unwrap();
    assert!(sent > 5, "{}", v.message);
}

#[test]
fn a_node_mails_each_event_once_per_outage_and_a_host_that_forgets_is_caught() {
    // The shipped host passes with this policy: a_run_sends_at_most_the_hosts_mail_cap_...
    let p = policy(Some("tests/model/mails-every-event.rhai"));
    let broken = Model::new(&p, bounds(false, 0, &[]), Some(Mutant::NoMailOnce)).unwrap();
    let (_, v) = first_violation(&broken, Property::MailOnce);
    assert!(
        v.message.contains("again, though the link had not changed"),
        "{}",
        v.message
    );
}

#[test]
fn the_search_explores_the_same_states_with_its_queue_compressed() {
    // Every queued world past the first block sealed (serialised and compressed), against
    // none: the same states, transitions and depth. (A test build also checks that each world
    // popped is the one queued, by its fingerprint.)
    let p = policy(None);
    let plain_bounds = bounds(false, 1, &[Fault::Crash, Fault::SourceDies]);
    let plain = search::explore(&Model::new(&p, plain_bounds.clone(), None).unwrap(), false);
    let sealed = search::explore(
        &Model::new(
            &p,
            Bounds {
                unsealed: 0,
                ..plain_bounds
            },
            None,
        )
        .unwrap(),
        false,
    );
    assert!(plain.complete && sealed.complete);
    assert_eq!(plain.sealed_blocks, 0);
    assert!(
        sealed.sealed_blocks > 0,
        "nothing was sealed: {} states",
        plain.states
    );
    assert_eq!(
        (sealed.states, sealed.transitions, sealed.depth),
        (plain.states, plain.transitions, plain.depth)
    );
    assert!(sealed.violations.is_empty() && plain.violations.is_empty());
}
