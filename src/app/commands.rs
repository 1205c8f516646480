//! Every command but `policy verify` (which needs the model checker, a layer above this
//! one, and stays in `main.rs`): the checked config and policy it needs, the call into the
//! library, what it prints, and its exit code. Grouped by what a command touches.

use super::cli::{
    CheckFormat, Cli, Command, ConfigCommand, DEFAULT_CONFIG, PolicyCommand, StatusFormat,
};
use super::daemon::daemon;
use super::{generate, preflight, prometheus, scenario};
use crate::config::{Config, Limits};
use crate::error::{Error, Result, exit};
use crate::policy::{self, Policy};
use crate::{RunOptions, init, run_once, status_report};
use std::path::Path;

/// Runs the command; its exit code. `None` for `policy verify` (see the module's doc).
pub fn dispatch(cli: &Cli) -> Option<Result<i32>> {
    node(cli)
        .or_else(|| changes(cli))
        .or_else(|| reads(cli))
        .or_else(|| offline(cli))
}

/// The config as the command line names it: `--config`, else the default path if it exists,
/// else the built-in defaults (links from the percona tables); `--defaults-extra-file`
/// replaces the config's.
pub fn load_config(cli: &Cli) -> Result<Config> {
    let mut cfg = match &cli.config {
        Some(p) => Config::load(p)?,
        None if Path::new(DEFAULT_CONFIG).exists() => Config::load(Path::new(DEFAULT_CONFIG))?,
        None => Config::defaults(),
    };
    // The command line's extra option file replaces the config's, as --defaults-file does.
    if let Some(x) = &cli.defaults_extra_file {
        cfg.local.defaults_extra_file = Some(x.clone());
    }
    // Before anything connects or runs: the files that steer this process, trusted only when
    // no other user can change them.
    super::trusted::check(&cfg, cli.insecure_files)?;
    cfg.files.insecure |= cli.insecure_files;
    Ok(cfg)
}

/// Prints a `check` or `config check` report; its exit code.
fn print_preflight(report: &preflight::Preflight, format: CheckFormat, strict: bool) -> i32 {
    match format {
        CheckFormat::Text => print!("{}", report.to_text()),
        CheckFormat::Json => println!("{}", report.to_json()),
    }
    report.exit_code(strict)
}

/// Where a command prints what it would run (dry-run) or its report.
fn stdout() -> Box<dyn std::io::Write> {
    Box::new(std::io::stdout())
}

/// The config's policy (its `[policy] file` on top of the built-in one, within its limits).
fn policy_of(cfg: &Config) -> Result<Policy> {
    Policy::load(cfg.policy.file.as_deref(), &cfg.policy.limits)
}

/// The commands of a node's own run: `run`, `daemon`, `status`, `check`. `None` for another command.
fn node(cli: &Cli) -> Option<Result<i32>> {
    match &cli.command {
        Command::Run(args) => Some(run(cli, args)),
        Command::Daemon(args) => {
            let load = || -> Result<(Config, Result<Policy>)> {
                let cfg = load_config(cli)?;
                let policy = policy_of(&cfg);
                Ok((cfg, policy))
            };
            Some(daemon(
                &load,
                cli.defaults_file.clone(),
                args.metrics_listen,
            ))
        }
        Command::Status { format, json } => Some(status(cli, *format, *json)),
        Command::Check {
            format,
            strict,
            send_test_mail,
        } => Some(check(cli, *format, *strict, *send_test_mail)),
        _ => None,
    }
}

/// The operator's changes to the cluster: `pause`, `resume`, `clear-failure`, `switchover`. `None` for another command.
fn changes(cli: &Cli) -> Option<Result<i32>> {
    match &cli.command {
        Command::Pause {
            reason,
            for_,
            dry_run,
        } => Some(pause(cli, reason, *for_, *dry_run)),
        Command::Resume { dry_run } => Some(resume(cli, *dry_run)),
        Command::ClearFailure { link, dry_run } => {
            Some(clear_failure(cli, link.as_deref(), *dry_run))
        }
        Command::Switchover {
            link,
            to,
            dry_run,
            wait,
        } => Some(switchover(
            cli,
            link.as_deref(),
            to.as_deref(),
            *dry_run,
            *wait,
        )),
        _ => None,
    }
}

/// The operator's reads and the schema: `explain`, `history`, `config check`, `init`. `None` for another command.
fn reads(cli: &Cli) -> Option<Result<i32>> {
    match &cli.command {
        Command::Explain { link, format } => Some(explain(cli, link.as_deref(), *format)),
        Command::History {
            link,
            since,
            limit,
            format,
        } => Some(history(cli, link, *since, *limit, *format)),
        Command::Config(ConfigCommand::Check { format, strict }) => {
            Some(config_check(cli, *format, *strict))
        }
        Command::Init {
            dry_run,
            print_ddl: false,
        } => Some(init_schema(cli, *dry_run)),
        _ => None,
    }
}

/// What needs no server: `init --print-ddl`, `policy check`, `policy show`, `completions`, `man`, `simulate`. `None` for another command.
fn offline(cli: &Cli) -> Option<Result<i32>> {
    match &cli.command {
        Command::Init {
            print_ddl: true, ..
        } => Some({
            print!("{}", crate::app::init_ddl_script());
            Ok(exit::OK)
        }),
        Command::Policy(PolicyCommand::Check { file }) => Some(policy_check(file)),
        Command::Completions { shell } => Some(completions(*shell)),
        Command::Man { dir: None } => Some(man_page()),
        Command::Man { dir: Some(dir) } => Some(man_pages(dir)),
        Command::Policy(PolicyCommand::Show) => Some({
            print!("{}", policy::DEFAULT_POLICY);
            Ok(exit::OK)
        }),
        Command::Simulate {
            scenario,
            policy: file,
        } => Some(simulate(cli, scenario, file.as_deref())),
        _ => None,
    }
}

/// `run`: one pass over every link. A policy that does not load never keeps the host's
/// own rules from running.
fn run(cli: &Cli, args: &super::cli::RunArgs) -> Result<i32> {
    let cfg = load_config(cli)?;
    let file = cfg.policy.file.as_deref();
    // A policy that does not load never keeps the host's own rules from running.
    let (policy, unloaded) = match Policy::load(file, &cfg.policy.limits) {
        Ok(p) => (p, None),
        Err(e) => {
            log::error!(
                "{e}; running the host's own rules without it (outside the Primary component the node stops replicating); no link is managed until the policy loads"
            );
            (Policy::unloadable(file, &e, &cfg.policy.limits), Some(e))
        }
    };
    let opts = RunOptions {
        dry_run: args.dry_run,
        defaults_file: cli.defaults_file.clone(),
    };
    let summary = run_once(&cfg, &policy, &opts, stdout());
    if let Ok(s) = &summary
        && s.mail_failures > 0
    {
        log::error!("{} mail(s) could not be sent", s.mail_failures);
    }
    match (unloaded, summary) {
        // The policy's error is the one to fix first; the run's is said too.
        (Some(e), Err(run)) => {
            log::error!("{run}");
            Err(e)
        }
        (Some(e), Ok(_)) => Err(e),
        (None, s) => Ok(s?.exit_code()),
    }
}

/// `policy check`: compiles a site policy, and refuses a call to a function defined nowhere.
fn policy_check(file: &Path) -> Result<i32> {
    let p = policy::check(file)?;
    for w in &p.warnings {
        log::warn!("{w}");
    }
    let natives = crate::app::scenario::host_function_names()?;
    let undefined = p.undefined_calls(&natives);
    if !undefined.is_empty() {
        for e in &undefined {
            log::error!("{e}");
        }
        let (line, column) = match &undefined[0] {
            Error::PolicyCompile { line, column, .. } => (*line, *column),
            _ => (0, 0),
        };
        return Err(Error::PolicyCompile {
            file: file.display().to_string(),
            line,
            column,
            message: format!(
                "the first of {} call(s) to a function defined nowhere (each above)",
                undefined.len()
            ),
        });
    }
    println!(
        "{}: ok; replaces built-in function(s): {}",
        file.display(),
        if p.overrides.is_empty() {
            "none".to_string()
        } else {
            p.overrides.join(", ")
        }
    );
    Ok(exit::OK)
}

/// `status`: the node, its links and its peers, as text, JSON or Prometheus metrics.
fn status(cli: &Cli, format: StatusFormat, json: bool) -> Result<i32> {
    let cfg = load_config(cli)?;
    let policy = policy_of(&cfg)?;
    let format = if json { StatusFormat::Json } else { format };
    match (
        format,
        status_report(&cfg, &policy, cli.defaults_file.as_deref()),
    ) {
        (StatusFormat::Text, r) => println!("{}", r?.to_text()),
        (StatusFormat::Json, r) => println!("{}", crate::app::status_json::to_json(&r?)),
        (StatusFormat::Prometheus, Ok(r)) => print!("{}", prometheus::render(&r)),
        // The server cannot be read: the metrics say so (pxcrm_up 0) for the
        // textfile collector, with what the state file still tells.
        (StatusFormat::Prometheus, Err(e)) => {
            eprintln!("pxc-replication-manager: error: {e}");
            print!("{}", prometheus::down(&cfg));
        }
    }
    Ok(exit::OK)
}

/// `check`: every login, grant and setting the node needs, proved.
fn check(cli: &Cli, format: CheckFormat, strict: bool, send_test_mail: bool) -> Result<i32> {
    let cfg = load_config(cli)?;
    let report = preflight::check(
        &cfg,
        &preflight::Options {
            defaults_file: cli.defaults_file.clone(),
            send_test_mail,
        },
    );
    Ok(print_preflight(&report, format, strict))
}

/// `pause`: the cluster's pause row.
fn pause(cli: &Cli, reason: &Option<String>, for_: Option<u64>, dry_run: bool) -> Result<i32> {
    let cfg = load_config(cli)?;
    let req = crate::app::pause::PauseRequest {
        reason: reason.clone(),
        seconds: for_,
        dry_run,
    };
    let msg = crate::app::pause::pause(&cfg, cli.defaults_file.as_deref(), &req, stdout())?;
    log::info!("{msg}");
    Ok(exit::OK)
}

/// `resume`: the end of the cluster's pause.
fn resume(cli: &Cli, dry_run: bool) -> Result<i32> {
    let cfg = load_config(cli)?;
    let msg = crate::app::pause::resume(&cfg, cli.defaults_file.as_deref(), dry_run, stdout())?;
    log::info!("{msg}");
    Ok(exit::OK)
}

/// `clear-failure`: a link's failure forgotten by hand.
fn clear_failure(cli: &Cli, link: Option<&str>, dry_run: bool) -> Result<i32> {
    let cfg = load_config(cli)?;
    let (msg, mail_failures) = crate::app::clear::clear_failure(
        &cfg,
        cli.defaults_file.as_deref(),
        link,
        dry_run,
        stdout(),
    )?;
    for line in msg.lines() {
        log::info!("{line}");
    }
    // Cleared, but the operators were not told: done, with a failure to read.
    Ok(if mail_failures > 0 {
        exit::PARTIAL
    } else {
        exit::OK
    })
}

/// `switchover`: a planned move of a link's replica, and its outcome.
fn switchover(
    cli: &Cli,
    link: Option<&str>,
    to: Option<&str>,
    dry_run: bool,
    wait: Option<u64>,
) -> Result<i32> {
    let cfg = load_config(cli)?;
    let policy = policy_of(&cfg)?;
    let r = crate::app::switchover::switchover(
        &cfg,
        &policy,
        cli.defaults_file.as_deref(),
        &crate::app::switchover::Options {
            link,
            to,
            dry_run,
            wait: wait.map(std::time::Duration::from_secs),
        },
        stdout(),
    )?;
    for line in &r.lines {
        if r.done {
            log::info!("{line}");
        } else {
            log::error!("{line}");
        }
    }
    Ok(if r.done && r.mail_failures == 0 {
        exit::OK
    } else {
        exit::PARTIAL
    })
}

/// `explain`: each node's rank and reason.
fn explain(cli: &Cli, link: Option<&str>, format: CheckFormat) -> Result<i32> {
    let cfg = load_config(cli)?;
    let policy = policy_of(&cfg)?;
    let e = crate::app::explain::explain(&cfg, &policy, cli.defaults_file.as_deref(), link)?;
    match format {
        CheckFormat::Text => println!("{}", e.to_text()),
        CheckFormat::Json => println!("{}", e.to_json()),
    }
    Ok(exit::OK)
}

/// `history`: what happened to the links.
fn history(
    cli: &Cli,
    link: &Option<String>,
    since: Option<i64>,
    limit: u64,
    format: CheckFormat,
) -> Result<i32> {
    let cfg = load_config(cli)?;
    let req = crate::app::history::Request {
        link: link.clone(),
        since,
        limit,
    };
    let h = crate::app::history::history(&cfg, cli.defaults_file.as_deref(), &req)?;
    match format {
        CheckFormat::Text => println!("{}", h.to_text()),
        CheckFormat::Json => println!("{}", h.to_json()),
    }
    Ok(exit::OK)
}

/// `config check`: the config and its files, without a server.
fn config_check(cli: &Cli, format: CheckFormat, strict: bool) -> Result<i32> {
    let cfg = load_config(cli)?;
    let report = preflight::offline(
        &cfg,
        &preflight::Options {
            defaults_file: cli.defaults_file.clone(),
            send_test_mail: false,
        },
    );
    Ok(print_preflight(&report, format, strict))
}

/// `init`: the `percona` schema and tables.
fn init_schema(cli: &Cli, dry_run: bool) -> Result<i32> {
    let cfg = load_config(cli)?;
    let msg = init(&cfg, cli.defaults_file.as_deref(), dry_run, stdout())?;
    log::info!("{msg}");
    Ok(exit::OK)
}

/// `completions`: the shell's completion script, on stdout.
fn completions(shell: clap_complete::Shell) -> Result<i32> {
    generate::completions(shell, &mut std::io::stdout()).map_err(|e| Error::File {
        file: "<stdout>".into(),
        message: format!("cannot write the completions: {e}"),
        source: e,
    })?;
    Ok(exit::OK)
}

/// `man`: the man page, on stdout.
fn man_page() -> Result<i32> {
    generate::man_page(&mut std::io::stdout()).map_err(|e| Error::File {
        file: "<stdout>".into(),
        message: format!("cannot write the man page: {e}"),
        source: e,
    })?;
    Ok(exit::OK)
}

/// `man DIR`: a man page per command, written to `dir`.
fn man_pages(dir: &Path) -> Result<i32> {
    for f in generate::man_pages(dir)? {
        println!("{}", f.display());
    }
    Ok(exit::OK)
}

/// `simulate`: a scenario's run, on a simulated node.
fn simulate(cli: &Cli, scenario: &Path, file: Option<&Path>) -> Result<i32> {
    // The whole config, checked as a live run checks it.
    let cfg = cli.config.as_deref().map(Config::load).transpose()?;
    let limits = cfg
        .as_ref()
        .map_or_else(Limits::default, |c| c.policy.limits.clone());
    // --policy, else the one the scenario names, else the config's.
    let file = match file {
        Some(f) => Some(f.to_path_buf()),
        None => scenario::named_policy(scenario)?
            .or_else(|| cfg.as_ref().and_then(|c| c.policy.file.clone())),
    };
    let policy = Policy::load(file.as_deref(), &limits)?;
    let r = scenario::simulate(scenario, &policy, cfg.as_ref(), stdout())?;
    Ok(if r.errors.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    })
}
