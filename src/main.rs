//! The binary: parse arguments into a checked config, call the library, map errors to exit
//! codes. Everything else lives in the library.

use clap::Parser;
use pxc_replication_manager::app::cli::{
    CheckFormat, Cli, Command, ConfigCommand, DEFAULT_CONFIG, PolicyCommand, StatusFormat,
};
use pxc_replication_manager::app::daemon::daemon;
use pxc_replication_manager::app::generate;
use pxc_replication_manager::app::preflight;
use pxc_replication_manager::app::prometheus;
use pxc_replication_manager::app::scenario;
use pxc_replication_manager::check;
use pxc_replication_manager::config::{Config, Limits};
use pxc_replication_manager::error::{Error, exit};
use pxc_replication_manager::policy::{self, Policy};
use pxc_replication_manager::{RunOptions, init, run_once, status_report};
use std::path::Path;

fn main() {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(format!("pxc_replication_manager={level}")),
    )
    .format(|buf, record| {
        use std::io::Write;
        // One record, one line: text from servers or a policy cannot forge another.
        writeln!(
            buf,
            "[{} {:<5} {}] {}",
            buf.timestamp_seconds(),
            record.level(),
            record.target(),
            pxc_replication_manager::error::printable(&record.args().to_string())
        )
    })
    .init();
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // Printed directly, so no log filter can hide why the run stopped.
            eprintln!("pxc-replication-manager: error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn load_config(cli: &Cli) -> Result<Config, Error> {
    let mut cfg = match &cli.config {
        Some(p) => Config::load(p)?,
        None if Path::new(DEFAULT_CONFIG).exists() => Config::load(Path::new(DEFAULT_CONFIG))?,
        None => Config::defaults(),
    };
    // The command line's extra option file replaces the config's, as --defaults-file does.
    if let Some(x) = &cli.defaults_extra_file {
        cfg.local.defaults_extra_file = Some(x.clone());
    }
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

fn dispatch(cli: Cli) -> Result<i32, Error> {
    let stdout = || Box::new(std::io::stdout()) as Box<dyn std::io::Write>;
    match &cli.command {
        Command::Run(args) => {
            let cfg = load_config(&cli)?;
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
        Command::Daemon(args) => {
            let load = || -> Result<(Config, Result<Policy, Error>), Error> {
                let cfg = load_config(&cli)?;
                let policy = Policy::load(cfg.policy.file.as_deref(), &cfg.policy.limits);
                Ok((cfg, policy))
            };
            daemon(&load, cli.defaults_file.clone(), args.metrics_listen)
        }
        Command::Status { format, json } => {
            let cfg = load_config(&cli)?;
            let policy = Policy::load(cfg.policy.file.as_deref(), &cfg.policy.limits)?;
            let format = if *json { StatusFormat::Json } else { *format };
            match (
                format,
                status_report(&cfg, &policy, cli.defaults_file.as_deref()),
            ) {
                (StatusFormat::Text, r) => println!("{}", r?.to_text()),
                (StatusFormat::Json, r) => println!(
                    "{}",
                    pxc_replication_manager::app::status_json::to_json(&r?)
                ),
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
        Command::Check {
            format,
            strict,
            send_test_mail,
        } => {
            let cfg = load_config(&cli)?;
            let report = preflight::check(
                &cfg,
                &preflight::Options {
                    defaults_file: cli.defaults_file.clone(),
                    send_test_mail: *send_test_mail,
                },
            );
            Ok(print_preflight(&report, *format, *strict))
        }
        Command::Pause {
            reason,
            for_,
            dry_run,
        } => {
            let cfg = load_config(&cli)?;
            let req = pxc_replication_manager::app::pause::PauseRequest {
                reason: reason.clone(),
                seconds: *for_,
                dry_run: *dry_run,
            };
            let msg = pxc_replication_manager::app::pause::pause(
                &cfg,
                cli.defaults_file.as_deref(),
                &req,
                stdout(),
            )?;
            log::info!("{msg}");
            Ok(exit::OK)
        }
        Command::Resume { dry_run } => {
            let cfg = load_config(&cli)?;
            let msg = pxc_replication_manager::app::pause::resume(
                &cfg,
                cli.defaults_file.as_deref(),
                *dry_run,
                stdout(),
            )?;
            log::info!("{msg}");
            Ok(exit::OK)
        }
        Command::ClearFailure { link, dry_run } => {
            let cfg = load_config(&cli)?;
            let (msg, mail_failures) = pxc_replication_manager::app::clear::clear_failure(
                &cfg,
                cli.defaults_file.as_deref(),
                link.as_deref(),
                *dry_run,
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
        Command::Switchover {
            link,
            to,
            dry_run,
            wait,
        } => {
            let cfg = load_config(&cli)?;
            let policy = Policy::load(cfg.policy.file.as_deref(), &cfg.policy.limits)?;
            let r = pxc_replication_manager::app::switchover::switchover(
                &cfg,
                &policy,
                cli.defaults_file.as_deref(),
                &pxc_replication_manager::app::switchover::Options {
                    link: link.as_deref(),
                    to: to.as_deref(),
                    dry_run: *dry_run,
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
        Command::Explain { link, format } => {
            let cfg = load_config(&cli)?;
            let policy = Policy::load(cfg.policy.file.as_deref(), &cfg.policy.limits)?;
            let e = pxc_replication_manager::app::explain::explain(
                &cfg,
                &policy,
                cli.defaults_file.as_deref(),
                link.as_deref(),
            )?;
            match format {
                CheckFormat::Text => println!("{}", e.to_text()),
                CheckFormat::Json => println!("{}", e.to_json()),
            }
            Ok(exit::OK)
        }
        Command::History {
            link,
            since,
            limit,
            format,
        } => {
            let cfg = load_config(&cli)?;
            let req = pxc_replication_manager::app::history::Request {
                link: link.clone(),
                since: *since,
                limit: *limit,
            };
            let h = pxc_replication_manager::app::history::history(
                &cfg,
                cli.defaults_file.as_deref(),
                &req,
            )?;
            match format {
                CheckFormat::Text => println!("{}", h.to_text()),
                CheckFormat::Json => println!("{}", h.to_json()),
            }
            Ok(exit::OK)
        }
        Command::Init {
            print_ddl: true, ..
        } => {
            print!("{}", pxc_replication_manager::app::init_ddl_script());
            Ok(exit::OK)
        }
        Command::Config(ConfigCommand::Check { format, strict }) => {
            let cfg = load_config(&cli)?;
            let report = preflight::offline(
                &cfg,
                &preflight::Options {
                    defaults_file: cli.defaults_file.clone(),
                    send_test_mail: false,
                },
            );
            Ok(print_preflight(&report, *format, *strict))
        }
        Command::Init { dry_run, .. } => {
            let cfg = load_config(&cli)?;
            let msg = init(&cfg, cli.defaults_file.as_deref(), *dry_run, stdout())?;
            log::info!("{msg}");
            Ok(exit::OK)
        }
        Command::Policy(PolicyCommand::Check { file }) => {
            let p = policy::check(file)?;
            for w in &p.warnings {
                log::warn!("{w}");
            }
            let natives = pxc_replication_manager::app::scenario::host_function_names()?;
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
        Command::Policy(PolicyCommand::Verify {
            file,
            deep,
            model,
            out,
        }) => {
            // With --config: its [policy] (file, vars, distribute, limits) as a run reads it.
            let cfg = cli.config.as_deref().map(Config::load).transpose()?;
            let limits = cfg
                .as_ref()
                .map_or_else(Limits::default, |c| c.policy.limits.clone());
            let file = file
                .clone()
                .or_else(|| cfg.as_ref().and_then(|c| c.policy.file.clone()));
            let policy = Policy::load(file.as_deref(), &limits)?;
            println!(
                "policy verify: {}",
                match file {
                    Some(f) => format!("{} on top of the built-in policy", f.display()),
                    None => "the built-in policy".into(),
                }
            );
            let mut bounds = if *deep {
                check::Bounds::deep()
            } else {
                check::Bounds::standard()
            };
            if let Some(n) = model {
                if *n == 0 || *n > bounds.len() {
                    return Err(Error::Node(format!(
                        "--model {n}: there are models 1 to {}",
                        bounds.len()
                    )));
                }
                bounds = vec![bounds.swap_remove(n - 1)];
            }
            let ok = check::verify(&policy, cfg.as_ref(), bounds, out.as_deref(), &mut stdout())?;
            Ok(if ok { exit::OK } else { exit::PARTIAL })
        }
        Command::Completions { shell } => {
            generate::completions(*shell, &mut std::io::stdout()).map_err(|e| Error::File {
                file: "<stdout>".into(),
                message: format!("cannot write the completions: {e}"),
                source: e,
            })?;
            Ok(exit::OK)
        }
        Command::Man { dir: None } => {
            generate::man_page(&mut std::io::stdout()).map_err(|e| Error::File {
                file: "<stdout>".into(),
                message: format!("cannot write the man page: {e}"),
                source: e,
            })?;
            Ok(exit::OK)
        }
        Command::Man { dir: Some(dir) } => {
            for f in generate::man_pages(dir)? {
                println!("{}", f.display());
            }
            Ok(exit::OK)
        }
        Command::Policy(PolicyCommand::Show) => {
            print!("{}", policy::DEFAULT_POLICY);
            Ok(exit::OK)
        }
        Command::Simulate {
            scenario,
            policy: file,
        } => {
            // The whole config, checked as a live run checks it.
            let cfg = cli.config.as_deref().map(Config::load).transpose()?;
            let limits = cfg
                .as_ref()
                .map_or_else(Limits::default, |c| c.policy.limits.clone());
            // --policy, else the one the scenario names, else the config's.
            let file = match file {
                Some(f) => Some(f.clone()),
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
    }
}
