//! The local login from the mysql client's chain of option files, on a real cluster: no
//! `defaults_file` and no endpoint in the config, so host, port, user and password come from
//! `~/.my.cnf` (HOME set to a temporary directory), a file it `!include`s, and
//! `--defaults-extra-file`, which is read before `~/.my.cnf`. The host's own `/etc/my.cnf` and
//! `/etc/mysql/my.cnf` are read too, as the client reads them; the host set in `~/.my.cnf`
//! (not `localhost`) makes the connection TCP whatever socket they name.

use crate::harness::{Out, pxcrm_env};
use crate::lab::{Sandbox, addr};

const NODE: &str = "DC1-1";

/// The manager's password, from the option file `scripts/sandbox` wrote for the node.
fn manager_password(sb: &Sandbox) -> String {
    let cnf = std::fs::read_to_string(sb.dir.join(NODE).join("client.cnf")).unwrap();
    cnf.lines()
        .find_map(|l| l.strip_prefix("password="))
        .expect("the sandbox's client.cnf has password=")
        .to_string()
}

#[test]
#[ignore = "needs real Galera clusters: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_login_from_home_my_cnf_with_an_include_and_an_extra_file_runs_and_status_names_its_files() {
    let sb = Sandbox::fresh(179, 180, 20);
    // The node's config without its login: no host, port or defaults_file in [local].
    let text = std::fs::read_to_string(sb.config(NODE)).unwrap();
    let stripped: String = text
        .lines()
        .filter(|l| {
            !(l.starts_with("host =")
                || l.starts_with("port =")
                || l.starts_with("defaults_file ="))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(stripped, text, "the sandbox config changed shape: {text}");
    let config = sb.dir.join(NODE).join("optionfiles.toml");
    std::fs::write(&config, stripped).unwrap();
    let config = config.display().to_string();

    let home = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let p = home.path().join(name);
        std::fs::write(&p, body).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    };
    let password = manager_password(&sb);
    let secret = write(
        "secret.cnf",
        &format!("[client]\npassword = \"{password}\"\n"),
    );
    // ~/.my.cnf: the endpoint and the password (through !include), but no user; its port
    // overrides the extra file's, which comes before it in the chain.
    let my_cnf = write(
        ".my.cnf",
        &format!(
            "[client]\nhost = {}\nport = 3306\n!include secret.cnf\n",
            addr(NODE)
        ),
    );
    // The extra file: the user (nowhere else), and a port nobody listens on, which must lose.
    let extra = write("extra.cnf", "[client]\nuser = pxcrm\nport = 1\n");
    let env = [
        ("HOME", home.path().to_str().unwrap()),
        ("MYSQL_HOME", ""),
        ("USER", "root"),
    ];
    let run = |args: &[&str]| -> Out {
        let mut a = vec!["--config", config.as_str()];
        a.extend_from_slice(args);
        pxcrm_env(&a, &env)
    };
    let extra_arg = extra.to_str().unwrap();

    let o = run(&["--defaults-extra-file", extra_arg, "run"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let o = run(&["--defaults-extra-file", extra_arg, "status"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains(&format!("connected to {}:3306", addr(NODE))),
        "{}",
        o.stdout
    );
    for needle in [
        format!("user from {}:2", extra.display()),
        format!("port from {}:3", my_cnf.display()),
        format!("password from {}:2", secret.display()),
        format!("{}, {}", extra.display(), my_cnf.display()),
    ] {
        assert!(
            o.stdout.contains(&needle),
            "{needle:?} not in:\n{}",
            o.stdout
        );
    }
    assert!(!o.stdout.contains(&password), "{}", o.stdout);
    let o = run(&["--defaults-extra-file", extra_arg, "status", "--json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(o.stdout.contains("\"option_files\""), "{}", o.stdout);
    assert!(!o.stdout.contains(&password), "{}", o.stdout);

    // The control: without the extra file the user is $USER (root), which the password of
    // the manager's user does not log in.
    let o = run(&["-v", "status"]);
    assert_eq!(o.code, 3, "{}", o.all());
    assert!(
        o.stderr.contains("login \"root\" (not in an option file"),
        "{}",
        o.all()
    );
    assert!(
        o.stderr.contains("cannot connect to the local server"),
        "{}",
        o.all()
    );
    // And --defaults-file reads only that file: ~/.my.cnf alone has no user either.
    let o = run(&[
        "--defaults-file",
        my_cnf.to_str().unwrap(),
        "--defaults-extra-file",
        extra_arg,
        "status",
    ]);
    assert_eq!(o.code, 3, "{}", o.all());
    assert!(o.stderr.contains("is not read"), "{}", o.all());
}
