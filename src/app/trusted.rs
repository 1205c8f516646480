//! The files a command trusts, checked before it connects to anything (`config::trust` has
//! the rules): the config, the policy file, the hook programs and the mail program must be
//! changeable by nobody but root and the user this runs as; the files holding passwords must
//! not be writable by others, and should not be readable by them.
//!
//! `--insecure-files` (for test rigs) turns every refusal but a program's into a warning that
//! names it; the config's `[files] insecure_files = true` does the same except for the config
//! itself, which whoever could write it could have set.

use crate::config::trust::{self, SecretVerdict};
use crate::config::{Config, Delivery};
use crate::error::{Result, UntrustedFile};
use std::path::Path;

/// Checks every file the config names. `cli_insecure` is `--insecure-files`.
pub fn check(cfg: &Config, cli_insecure: bool) -> Result<()> {
    if let Some(p) = &cfg.path {
        accept(trust::check_steering("configuration file", p), cli_insecure)?;
    }
    let insecure = cli_insecure || cfg.files.insecure;
    if let Some(p) = &cfg.policy.file {
        accept(trust::check_steering("policy file", p), insecure)?;
    }
    for (role, program) in programs(cfg) {
        // Never silenced: this user would run whatever someone else put there.
        if let Some(p) = trust::find_program(&program) {
            trust::check_steering(&role, &p)?;
        }
    }
    warn_secrets(cfg, insecure)
}

/// Checks the files that hold the config's secrets: refused when others may write them;
/// a warning, at most once a day in a daemon, when others may read them. The daemon calls
/// it at every iteration, so the warning comes back daily while the file stays open.
pub fn warn_secrets(cfg: &Config, insecure: bool) -> Result<()> {
    let files = cfg
        .links
        .iter()
        .filter_map(|l| {
            l.password
                .file()
                .map(|f| (format!("[[link]] {} password_file", l.remote), f))
        })
        .chain(smtp_password_file(cfg).map(|f| ("[mail] smtp_password_file".to_string(), f)));
    for (role, file) in files {
        secret(&role, file, insecure)?;
    }
    let inline = cfg.links.iter().any(|l| l.password.file().is_none());
    if inline && let Some(p) = &cfg.path {
        secret("configuration file with an inline password", p, insecure)?;
    }
    Ok(())
}

fn smtp_password_file(cfg: &Config) -> Option<&Path> {
    match &cfg.mail.delivery {
        Delivery::Smtp(smtp) => smtp.password.as_ref()?.file(),
        _ => None,
    }
}

fn secret(role: &str, file: &Path, insecure: bool) -> Result<()> {
    match trust::check_secret(role, file) {
        Ok(SecretVerdict::Private) => Ok(()),
        Ok(SecretVerdict::ReadableByOthers(w)) => {
            trust::warn_daily(&w);
            Ok(())
        }
        Err(e) => accept(Err(e), insecure),
    }
}

/// A refusal, or with `insecure` a warning that names the escape hatch.
fn accept(verdict: std::result::Result<(), Box<UntrustedFile>>, insecure: bool) -> Result<()> {
    match verdict {
        Ok(()) => Ok(()),
        Err(e) if insecure => {
            trust::warn_daily(&format!(
                "{e} (accepted because of --insecure-files or [files] insecure_files)"
            ));
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The programs the config runs: each hook's, and the mail's `sendmail`.
fn programs(cfg: &Config) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = cfg
        .hooks
        .commands
        .iter()
        .filter_map(|(event, argv)| {
            let program = argv.first()?;
            Some((
                format!("hook program ([hooks] {})", event.key()),
                program.clone(),
            ))
        })
        .collect();
    if let Delivery::Sendmail { command } = &cfg.mail.delivery {
        let program = command
            .as_ref()
            .map_or_else(|| "sendmail".to_string(), |c| c.display().to_string());
        out.push(("mail program ([mail] sendmail_command)".into(), program));
    }
    out
}
