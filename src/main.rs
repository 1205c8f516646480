//! The binary: parse arguments into a checked config, call the library, map errors to exit
//! codes. Everything else lives in the library.

use clap::Parser;
use pxc_replication_manager::app::cli::{Cli, Command, PolicyCommand, VerifySize};
use pxc_replication_manager::app::commands;
use pxc_replication_manager::check;
use pxc_replication_manager::config::{Config, Limits};
use pxc_replication_manager::error::{Error, exit};
use pxc_replication_manager::policy::Policy;
use std::path::PathBuf;

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
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            // Printed directly, so no log filter can hide why the run stopped.
            eprintln!("pxc-replication-manager: error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// `policy verify` here (the model checker is a layer above `app`), every other command in
/// `app::commands`.
fn dispatch(cli: &Cli) -> Result<i32, Error> {
    match &cli.command {
        Command::Policy(PolicyCommand::Verify {
            file,
            deep,
            model,
            out,
            size,
        }) => verify(cli, file, *deep, *model, out, size),
        _ => commands::dispatch(cli)
            .unwrap_or_else(|| Err(Error::Internal("this command is not dispatched".into()))),
    }
}

/// `policy verify`.
fn verify(
    cli: &Cli,
    file: &Option<PathBuf>,
    deep: bool,
    model: Option<usize>,
    out: &Option<PathBuf>,
    size: &VerifySize,
) -> Result<i32, Error> {
    let stdout = || Box::new(std::io::stdout()) as Box<dyn std::io::Write>;
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
    let mut bounds = if deep {
        check::Bounds::deep()
    } else {
        check::Bounds::standard()
    };
    if let Some(n) = model {
        if n == 0 || n > bounds.len() {
            return Err(Error::Argument(format!(
                "--model {n}: there are models 1 to {}",
                bounds.len()
            )));
        }
        bounds = vec![bounds.swap_remove(n - 1)];
    }
    let bounds = bounds
        .into_iter()
        .map(|b| {
            b.resized(
                size.nodes.map(usize::from),
                size.links.map(usize::from),
                size.max_states,
            )
        })
        .collect();
    let ok = check::verify(&policy, cfg.as_ref(), bounds, out.as_deref(), &mut stdout())?;
    Ok(if ok { exit::OK } else { exit::PARTIAL })
}
