//! The command line without a server: help, policy checks, and bad input. Bad input must give
//! a clear message naming file, line and key, and a non-zero exit code, before anything
//! connects to a server (every config here points at a port nobody listens on, so a run that
//! got as far as connecting would fail with exit 3 instead of 2).

use crate::harness::{pxcrm, pxcrm_env, repo, temp_file};

const GOOD_LINK: &str = r#"
[local]
host = "127.0.0.1"
port = 1
connect_timeout = 1

[[link]]
remote = "DC2"
sources = ["10.0.2.1", "10.0.2.2"]
user = "repl"
password = "x"
"#;

fn run_with_config(text: &str) -> crate::harness::Out {
    let (_d, p) = temp_file("site.toml", text);
    pxcrm(&["--config", p.to_str().unwrap(), "run", "--dry-run"])
}

#[test]
fn help_teaches_the_cron_line_and_the_exit_codes() {
    let o = pxcrm(&["--help"]);
    assert_eq!(o.code, 0);
    for needle in [
        "run",
        "status",
        "init",
        "simulate",
        "policy",
        "EXIT CODES",
        "* * * * *",
        "--dry-run",
    ] {
        assert!(
            o.stdout.contains(needle),
            "--help lacks {needle:?}:\n{}",
            o.stdout
        );
    }
}

#[test]
fn the_shipped_policies_compile() {
    for p in [
        "mail-on-failed-only.rhai",
        "patient.rhai",
        "prefer-weight.rhai",
    ] {
        let path = repo().join("policies").join(p);
        let o = pxcrm(&["policy", "check", path.to_str().unwrap()]);
        assert_eq!(o.code, 0, "{p}: {}", o.all());
        assert!(
            o.stdout.contains(": ok; replaces built-in function(s): "),
            "{}",
            o.all()
        );
    }
}

#[test]
fn a_policy_syntax_error_is_reported_as_file_line_col() {
    let (_d, p) = temp_file(
        "bad.rhai",
        "fn mail(node, link, event, subject, body) {\n    notify(subject body);\n}\n",
    );
    let o = pxcrm(&["policy", "check", p.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains(&format!("{}:2:20:", p.display())),
        "{}",
        o.all()
    );
}

#[test]
fn a_policy_using_an_undeclared_variable_does_not_compile() {
    let (_d, p) = temp_file("undeclared.rhai", "fn silent_after(s) {\n    limit\n}\n");
    let o = pxcrm(&["policy", "check", p.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("undeclared.rhai:2:5"), "{}", o.all());
}

#[test]
fn a_good_config_gets_as_far_as_connecting() {
    // The control for the tests below: with valid input the run fails only at the connection.
    let o = run_with_config(GOOD_LINK);
    assert_eq!(o.code, 3, "{}", o.all());
    assert!(
        o.stderr
            .contains("cannot connect to the local server at 127.0.0.1:1"),
        "{}",
        o.all()
    );
}

#[test]
fn malformed_toml_is_refused_with_its_line() {
    let o = run_with_config("[local\nhost = 1\n");
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("site.toml:1:"), "{}", o.all());
}

#[test]
fn an_unknown_key_is_refused_naming_the_key_and_line() {
    let o = run_with_config(&GOOD_LINK.replace("user = \"repl\"", "user = \"repl\"\nsorces = []"));
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("site.toml:11:"), "{}", o.all());
    assert!(o.stderr.contains("unknown field `sorces`"), "{}", o.all());
}

#[test]
fn a_wrong_type_is_refused_with_its_line() {
    let o = run_with_config(&GOOD_LINK.replace("port = 1", "port = \"one\""));
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("site.toml:4:"), "{}", o.all());
}

#[test]
fn a_missing_password_file_is_refused() {
    let o = run_with_config(&GOOD_LINK.replace(
        "password = \"x\"",
        "password_file = \"/nonexistent/repl.pass\"",
    ));
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("password_file: cannot read /nonexistent/repl.pass"),
        "{}",
        o.all()
    );
}

#[test]
fn an_unreadable_option_file_is_refused() {
    let o = run_with_config(&GOOD_LINK.replace(
        "connect_timeout = 1",
        "connect_timeout = 1\ndefaults_file = \"/nonexistent/my.cnf\"",
    ));
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("/nonexistent/my.cnf: cannot read the MySQL option file"),
        "{}",
        o.all()
    );
    let o = pxcrm(&[
        "--defaults-file",
        "/nonexistent/other.cnf",
        "--config",
        temp_file("c.toml", GOOD_LINK).1.to_str().unwrap(),
        "run",
    ]);
    assert_eq!(o.code, 2, "{}", o.all());
}

#[test]
fn a_link_naming_the_local_cluster_is_refused() {
    let o = run_with_config(&GOOD_LINK.replace("[local]", "[local]\ncluster = \"DC2\""));
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("this is the local cluster"),
        "{}",
        o.all()
    );
}

#[test]
fn a_duplicate_source_is_refused() {
    let o = run_with_config(&GOOD_LINK.replace("\"10.0.2.2\"", "\"10.0.2.1:3306\""));
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("10.0.2.1:3306 is listed twice"),
        "{}",
        o.all()
    );
}

#[test]
fn a_missing_config_file_is_refused() {
    let o = pxcrm(&["--config", "/nonexistent/site.toml", "run"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("/nonexistent/site.toml: cannot read the configuration file")
    );
}

#[test]
fn a_broken_site_policy_fails_the_run_after_the_host_rules_were_tried() {
    // The host's own rules need no policy (a node outside the Primary component stops
    // replicating): the run tries them, here on a server that does not answer, and ends with
    // the policy's error, the one to fix.
    let (_d, pol) = temp_file(
        "p.rhai",
        "fn mail(node, link, event, subject, body) {\n  notify(\n}\n",
    );
    let o = run_with_config(&GOOD_LINK.replace(
        "[local]",
        &format!("[policy]\nfile = \"{}\"\n\n[local]", pol.display()),
    ));
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("p.rhai:3:1"), "{}", o.all());
    assert!(
        o.stderr.contains("running the host's own rules without it"),
        "{}",
        o.all()
    );
}

#[test]
fn a_bad_scenario_is_refused_with_its_line() {
    let (_d, p) = temp_file(
        "s.toml",
        "[node]\nname = \"a\"\ncluster = \"DC1\"\nbogus = 1\n",
    );
    let o = pxcrm(&["simulate", "--scenario", p.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("s.toml:4:"), "{}", o.all());
}

#[test]
fn a_paused_node_whose_server_is_down_is_not_an_alarm() {
    let (dir, off) = temp_file("manager.off", "");
    let text = format!("[files]\npause = \"{}\"\n{}", off.display(), GOOD_LINK);
    let o = run_with_config(&text);
    // Dry-run says the pause file is there and what a paused run does.
    assert!(
        o.stdout.contains(
            "a live run reports (heartbeats while its channel runs) and changes nothing else"
        ),
        "{}",
        o.all()
    );
    // A paused node keeps reporting, so it connects; a server that is down for maintenance
    // is no error.
    let (_d, p) = temp_file("site.toml", &text);
    let o = pxcrm(&["--config", p.to_str().unwrap(), "run"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stderr
            .contains("paused, and the local server does not answer"),
        "{}",
        o.all()
    );
    drop(dir);
}

#[test]
fn a_second_run_while_one_holds_the_lock_exits_at_once_and_says_why() {
    let (dir, lock) = temp_file("manager.lock", "");
    let held = std::fs::OpenOptions::new().write(true).open(&lock).unwrap();
    held.lock().unwrap();
    std::fs::write(&lock, "pid 4242 since 2026-11-25 10:00:00").unwrap();
    let text = format!("[files]\nlock = \"{}\"\n{}", lock.display(), GOOD_LINK);
    let (_d, p) = temp_file("site.toml", &text);
    let started = std::time::Instant::now();
    let o = pxcrm(&["--config", p.to_str().unwrap(), "run"]);
    assert_eq!(o.code, 5, "{}", o.all());
    assert!(
        o.stderr.contains("another run holds the lock"),
        "{}",
        o.all()
    );
    assert!(o.stderr.contains("pid 4242"), "{}", o.all());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "it must not wait"
    );
    // Once the first run is gone, the next one proceeds (here, as far as the connection).
    held.unlock().unwrap();
    let o = pxcrm(&["--config", p.to_str().unwrap(), "run"]);
    assert_eq!(o.code, 3, "{}", o.all());
    drop(dir);
}

#[test]
fn every_module_uses_only_the_layers_below_it_and_no_import_cycle_exists() {
    let o = std::process::Command::new(repo().join("scripts/layers"))
        .output()
        .expect("scripts/layers runs (python3)");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `scripts/layers` on a copy of `src/` with `break_it` applied: what it printed, and whether
/// it passed.
fn layers_on_a_copy(break_it: impl FnOnce(&std::path::Path)) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("src");
    let status = std::process::Command::new("cp")
        .args(["-r"])
        .arg(repo().join("src"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    break_it(&copy);
    let o = std::process::Command::new(repo().join("scripts/layers"))
        .arg(&copy)
        .output()
        .expect("scripts/layers runs (python3)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), said)
}

fn append(path: &std::path::Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
}

#[test]
fn the_layer_check_sees_an_upward_use_after_a_test_item_or_through_super_super() {
    // After a #[cfg(test)] item, production code is checked again.
    let (ok, said) = layers_on_a_copy(|src| {
        append(
            &src.join("db/sql.rs"),
            "\n#[cfg(test)]\nfn only_in_tests() {}\n\nuse crate::app::cli as _upward;\n",
        )
    });
    assert!(
        !ok && said.contains("db::sql (db) uses app::cli (app)"),
        "{said}"
    );
    // `super::super::` from db::flavor is the crate root.
    let (ok, said) = layers_on_a_copy(|src| {
        append(
            &src.join("db/flavor.rs"),
            "\nuse super::super::app::cli as _upward;\n",
        )
    });
    assert!(
        !ok && said.contains("db::flavor (db) uses app::cli (app)"),
        "{said}"
    );
    // A test module still reaches anything.
    let (ok, said) = layers_on_a_copy(|src| {
        append(
            &src.join("db/sql.rs"),
            "\n#[cfg(test)]\nmod more_tests {\n    use crate::app::cli as _fine;\n}\n",
        )
    });
    assert!(ok, "{said}");
}

#[test]
fn the_layer_check_refuses_a_top_level_module_in_no_layer() {
    let (ok, said) = layers_on_a_copy(|src| {
        std::fs::write(src.join("extra.rs"), "//! A module no layer names.\n").unwrap();
    });
    assert!(!ok && said.contains("extra is in no layer"), "{said}");
}

/// `scripts/long-functions` on `src` (with `args`): whether it passed, and what it printed.
fn long_functions(src: &std::path::Path, args: &[&str]) -> (bool, String) {
    let o = std::process::Command::new(repo().join("scripts/long-functions"))
        .arg(src)
        .args(args)
        .output()
        .expect("scripts/long-functions runs (python3)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), said)
}

#[test]
fn no_function_outside_the_tests_is_longer_than_80_lines() {
    let (ok, said) = long_functions(&repo().join("src"), &[]);
    assert!(ok, "{said}");
}

#[test]
fn the_length_check_sees_a_long_function_and_leaves_test_modules_out() {
    let dir = tempfile::tempdir().unwrap();
    let body = |name: &str| {
        let lines: String = (0..90).map(|i| format!("    let _x{i} = {i};\n")).collect();
        format!("fn {name}() {{\n{lines}}}\n")
    };
    std::fs::write(dir.path().join("long.rs"), body("too_long")).unwrap();
    std::fs::write(
        dir.path().join("tested.rs"),
        format!("#[cfg(test)]\nmod tests {{\n{}}}\n", body("a_long_test")),
    )
    .unwrap();
    let (ok, said) = long_functions(dir.path(), &[]);
    assert!(!ok, "{said}");
    assert!(said.contains("long.rs:1: too_long is 92 lines"), "{said}");
    assert!(!said.contains("a_long_test"), "{said}");
    let (ok, said) = long_functions(dir.path(), &["--max", "100"]);
    assert!(ok, "{said}");
}

/// Runs `run --dry-run` on a config whose server nobody listens on, with HOME at `home`.
fn run_with_home(home: &std::path::Path, config: &str, args: &[&str]) -> crate::harness::Out {
    let (_d, p) = temp_file("site.toml", config);
    let mut a = vec!["--config", p.to_str().unwrap()];
    a.extend_from_slice(args);
    a.extend_from_slice(&["run", "--dry-run"]);
    pxcrm_env(&a, &[("HOME", home.to_str().unwrap()), ("MYSQL_HOME", "")])
}

#[test]
fn the_login_comes_from_home_my_cnf_and_its_include_and_run_v_names_the_files() {
    let home = tempfile::tempdir().unwrap();
    let my_cnf = home.path().join(".my.cnf");
    std::fs::write(&my_cnf, "[client]\nuser = pxcrm\n!include pw.cnf\n").unwrap();
    std::fs::write(
        home.path().join("pw.cnf"),
        "[client]\npassword = 'top secret'\n",
    )
    .unwrap();
    let o = run_with_home(home.path(), GOOD_LINK, &["-v"]);
    // Read, then refused by the server nobody runs: exit 3, not 2.
    assert_eq!(o.code, 3, "{}", o.all());
    for needle in [
        format!(
            "{}, {}",
            my_cnf.display(),
            home.path().join("pw.cnf").display()
        ),
        format!("user from {}:2", my_cnf.display()),
        format!("password from {}:2", home.path().join("pw.cnf").display()),
        "\"pxcrm\" to 127.0.0.1:1, with a password".to_string(),
    ] {
        assert!(
            o.stderr.contains(&needle),
            "{needle:?} not in:\n{}",
            o.all()
        );
    }
    assert!(!o.all().contains("top secret"), "{}", o.all());
}

#[test]
fn a_bad_home_my_cnf_is_refused_naming_file_and_line() {
    let home = tempfile::tempdir().unwrap();
    let my_cnf = home.path().join(".my.cnf");
    for (text, needle) in [
        (
            "[client]\nuser = x\nport = many\n",
            ":3: port = \"many\" is not a port number",
        ),
        ("user = x\n", ":1: an option before any [group]"),
        ("[client]\n!include .my.cnf\n", ":2: "),
        ("[client]\n!include gone.cnf\n", ":2: "),
    ] {
        std::fs::write(&my_cnf, text).unwrap();
        let o = run_with_home(home.path(), GOOD_LINK, &[]);
        assert_eq!(o.code, 2, "{text:?}: {}", o.all());
        let want = format!("{}{needle}", my_cnf.display());
        assert!(
            o.stderr.contains(&want),
            "{text:?}: {want:?} not in:\n{}",
            o.all()
        );
    }
}

#[test]
fn the_defaults_extra_file_flag_is_read_and_must_exist() {
    let home = tempfile::tempdir().unwrap();
    let o = pxcrm(&["--help"]);
    assert!(
        o.stdout.contains("--defaults-extra-file <FILE>"),
        "{}",
        o.stdout
    );
    // Missing, on the command line and in the config: refused before connecting.
    let gone = home.path().join("gone.cnf");
    let o = run_with_home(
        home.path(),
        GOOD_LINK,
        &["--defaults-extra-file", gone.to_str().unwrap()],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    let want = format!("{}: cannot read the MySQL option file", gone.display());
    assert!(o.stderr.contains(&want), "{}", o.all());
    let o = run_with_home(
        home.path(),
        &GOOD_LINK.replace(
            "connect_timeout = 1",
            "connect_timeout = 1\ndefaults_extra_file = \"/nonexistent/x.cnf\"",
        ),
        &[],
    );
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("/nonexistent/x.cnf: cannot read the MySQL option file"),
        "{}",
        o.all()
    );
    // Present: read before ~/.my.cnf, whose user wins; the extra file's password stays.
    let extra = home.path().join("extra.cnf");
    std::fs::write(&extra, "[client]\nuser = from-extra\npassword = x\n").unwrap();
    std::fs::write(home.path().join(".my.cnf"), "[client]\nuser = from-home\n").unwrap();
    let o = run_with_home(
        home.path(),
        GOOD_LINK,
        &["-v", "--defaults-extra-file", extra.to_str().unwrap()],
    );
    assert_eq!(o.code, 3, "{}", o.all());
    assert!(
        o.stderr
            .contains("\"from-home\" to 127.0.0.1:1, with a password"),
        "{}",
        o.all()
    );
    assert!(
        o.stderr
            .contains(&format!("password from {}:3", extra.display())),
        "{}",
        o.all()
    );
    // With --defaults-file, the extra file is not read (as with the mysql client), and says so.
    let only = home.path().join("only.cnf");
    std::fs::write(&only, "[client]\nuser = only\n").unwrap();
    let o = run_with_home(
        home.path(),
        GOOD_LINK,
        &[
            "-v",
            "--defaults-file",
            only.to_str().unwrap(),
            "--defaults-extra-file",
            extra.to_str().unwrap(),
        ],
    );
    assert_eq!(o.code, 3, "{}", o.all());
    assert!(
        o.stderr
            .contains("\"only\" to 127.0.0.1:1, without a password"),
        "{}",
        o.all()
    );
    assert!(
        o.stderr
            .contains(&format!("{} is not read", extra.display())),
        "{}",
        o.all()
    );
}

#[test]
fn init_print_ddl_prints_the_schema_as_a_script_with_no_config_and_no_server() {
    let o = pxcrm(&["--config", "/nonexistent/site.toml", "init", "--print-ddl"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let statements: Vec<&str> = o.stdout.lines().filter(|l| !l.starts_with("--")).collect();
    assert_eq!(statements[0], "CREATE DATABASE IF NOT EXISTS percona;");
    for table in [
        "replication",
        "replication_claim",
        "replication_node",
        "replication_pause",
    ] {
        assert!(
            statements
                .iter()
                .any(|s| s.starts_with(&format!("CREATE TABLE IF NOT EXISTS percona.{table} ("))),
            "{table}:\n{}",
            o.stdout
        );
    }
    assert!(statements.iter().all(|s| s.ends_with(';')), "{}", o.stdout);
}

#[test]
fn config_check_proves_the_setup_it_can_with_no_server_and_names_each_fix() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("broken.rhai");
    std::fs::write(
        &policy,
        "fn rank_nodes(node, link, rows) {\n    let x = ;\n}\n",
    )
    .unwrap();
    let hook = dir.path().join("notify-dba");
    std::fs::write(&hook, "#!/bin/sh\n").unwrap();
    let config = dir.path().join("site.toml");
    let text = format!(
        "{GOOD_LINK}\n[policy]\nfile = {policy:?}\n[hooks]\non_failed = {hook:?}\n[files]\nstate = {:?}\n",
        dir.path().join("missing-dir").join("observed.json")
    );
    std::fs::write(&config, &text).unwrap();
    let o = pxcrm(&["--config", config.to_str().unwrap(), "config", "check"]);
    assert_eq!(o.code, 1, "{}", o.all());
    let line = |check: &str| {
        o.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(check))
            .unwrap_or_else(|| panic!("no {check} line:\n{}", o.stdout))
            .to_string()
    };
    assert!(line("config").starts_with("ok"), "{}", o.stdout);
    assert!(line("local.login").starts_with("ok"), "{}", o.stdout);
    // A policy that does not compile, with where.
    assert!(
        line("policy").starts_with("FAIL") && line("policy").contains("broken.rhai:2:"),
        "{}",
        o.stdout
    );
    // A hook program that cannot run, and a state file without its directory.
    assert!(line("hooks.on_failed").starts_with("FAIL"), "{}", o.stdout);
    assert!(
        o.stdout.contains(&format!("chmod +x {}", hook.display())),
        "{}",
        o.stdout
    );
    assert!(line("files.state").starts_with("FAIL"), "{}", o.stdout);
    // Fixed, it passes, and says so in JSON too.
    std::fs::write(
        &policy,
        "fn rank_nodes(node, link, rows) { builtin_rank_nodes(node, link, rows) }\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::create_dir(dir.path().join("missing-dir")).unwrap();
    let o = pxcrm(&[
        "--config",
        config.to_str().unwrap(),
        "config",
        "check",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "{}", o.all());
    // Its shape is checked against docs/schemas/check.schema.json by schemas.rs.
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["summary"]["fail"], 0, "{}", o.stdout);
    let lines = v["lines"].as_array().unwrap();
    assert!(lines.iter().all(|l| l["status"] != "fail"), "{}", o.stdout);
    assert!(
        lines
            .iter()
            .any(|l| l["check"] == "hooks.on_failed" && l["status"] == "ok"),
        "{}",
        o.stdout
    );
}

#[test]
fn config_check_warns_when_a_run_could_not_write_its_state_file() {
    // /proc exists, but no one (root included) creates a file there.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("site.toml");
    std::fs::write(
        &config,
        format!(
            "{GOOD_LINK}\n[files]\nstate = \"/proc/pxcrm-observed.json\"\nlock = {:?}\n",
            dir.path().join("run.lock")
        ),
    )
    .unwrap();
    let o = pxcrm(&[
        "--config",
        config.to_str().unwrap(),
        "config",
        "check",
        "--format",
        "json",
    ]);
    assert_eq!(
        o.code,
        0,
        "a warning is not a failure without --strict: {}",
        o.all()
    );
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let line = |check: &str| {
        v["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["check"] == check)
            .cloned()
            .unwrap_or_else(|| panic!("no {check} line: {}", o.stdout))
    };
    let state = line("files.state");
    assert_eq!(state["status"], "warn", "{}", o.stdout);
    assert!(
        state["detail"]
            .as_str()
            .unwrap()
            .contains("cannot create a file in /proc"),
        "{}",
        o.stdout
    );
    assert_eq!(line("files.lock")["status"], "ok", "{}", o.stdout);
}

#[test]
fn config_check_refuses_a_config_it_cannot_read_with_its_line() {
    let (_d, p) = temp_file("site.toml", "[local\nhost = 1\n");
    let o = pxcrm(&["--config", p.to_str().unwrap(), "config", "check"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.stderr.contains("site.toml:1:"), "{}", o.all());
}
