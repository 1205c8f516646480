//! What the command line says about itself, for the package and for operators who install by
//! hand: shell completions (`completions <SHELL>`, from `clap_complete`) and man pages (`man`,
//! from `clap_mangen`), both generated from the definitions in [`super::cli`], so they never
//! drift from `--help`. `scripts/package` calls them to build the .deb's files; no network, no
//! build step of its own.

use super::cli::Cli;
use crate::error::{Error, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The command's name, as the completions and the pages know it.
const NAME: &str = "pxc-replication-manager";

/// Writes the completion script for `shell`.
pub fn completions(shell: Shell, out: &mut dyn Write) -> std::io::Result<()> {
    // Generated into memory first: `clap_complete` panics on a write that fails (a closed
    // pipe), and this returns the error instead.
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), NAME, &mut text);
    out.write_all(&text)?;
    out.flush()
}

/// Writes the main man page (section 1) as roff.
pub fn man_page(out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// Writes one page per command into `dir` (`pxc-replication-manager.1`,
/// `pxc-replication-manager-run.1`, `pxc-replication-manager-policy-check.1`, ...: the main
/// page refers to them by these names). Returns the files written.
pub fn man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    write_pages(Cli::command(), dir, &mut written)?;
    Ok(written)
}

fn write_pages(mut cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    // Sets the display names (`pxc-replication-manager-policy-check`) the pages are named by.
    cmd.build();
    write_page(&cmd, dir, written)?;
    // `help` gets its page (the parent's page names it), but not one per command it can name.
    if cmd.get_name() == "help" {
        return Ok(());
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, written)?;
    }
    Ok(())
}

fn write_page(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let mut text = Vec::new();
    man.render(&mut text)
        .and_then(|()| std::fs::write(&path, text))
        .map_err(|source| Error::File {
            file: path.clone(),
            message: format!("cannot write the man page: {source}"),
            source,
        })?;
    written.push(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_man_page_names_every_command() {
        let mut out = Vec::new();
        man_page(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(".ie"),
            "roff: {}",
            &text[..80.min(text.len())]
        );
        assert!(text.contains(".TH pxc-replication-manager 1"), "{text}");
        for cmd in [
            "run",
            "daemon",
            "status",
            "init",
            "policy",
            "simulate",
            "completions",
        ] {
            assert!(
                text.contains(&format!("pxc\\-replication\\-manager\\-{cmd}(1)")),
                "the page lacks {cmd}:\n{text}"
            );
        }
        assert!(text.contains("EXIT CODES"), "{text}");
    }

    #[test]
    fn every_page_the_main_page_refers_to_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let files = man_pages(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for name in [
            "pxc-replication-manager.1",
            "pxc-replication-manager-run.1",
            "pxc-replication-manager-daemon.1",
            "pxc-replication-manager-policy.1",
            "pxc-replication-manager-policy-check.1",
            "pxc-replication-manager-completions.1",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
        }
        assert!(names.iter().any(|n| n == "pxc-replication-manager-help.1"));
        assert!(!names.iter().any(|n| n.contains("-help-")), "{names:?}");
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() > 100, "{}", f.display());
        }
    }

    #[test]
    fn a_directory_that_does_not_exist_is_an_error_naming_it() {
        let e = man_pages(Path::new("/nonexistent/pxcrm-man")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/pxcrm-man/"), "{e}");
        assert_eq!(e.exit_code(), crate::error::exit::INPUT);
    }

    #[test]
    fn the_completions_know_the_commands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            completions(shell, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            for cmd in ["daemon", "status", "simulate", "--config"] {
                assert!(text.contains(cmd), "{shell}: no {cmd}:\n{text}");
            }
        }
    }
}
