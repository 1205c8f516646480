//! The TOML configuration file, parsed into a checked [`Config`].
//!
//! Parsing is pure: [`Config::parse`] takes the file's text and name, so every rule can be
//! tested without touching the disk, except password files, which are read while checking so a
//! missing one is reported before anything connects. Every error names the file, the line and
//! the key. Unknown keys are errors. See `examples/` for annotated files.
//!
//! Each section has its module, where its raw TOML mirror sits beside its checked type and the
//! check between them; this one keeps the whole file: reading it, the order of the checks, and
//! where in the file an error is.

mod address;
mod daemon;
mod files;
pub mod hooks;
mod link;
mod local;
mod mail;
pub mod mycnf;
mod policy;
mod timeouts;
pub mod topology;
pub mod trust;

use crate::db::sql::Secret;
use serde::Deserialize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

pub use crate::error::{AddrError, AddrProblem, ConfigError, SecretFileError};

// The sections' types, used from here as before the split.
pub use address::SourceAddr;
pub use daemon::{DEFAULT_INTERVAL, Daemon, INTERVAL_RANGE};
pub use files::{DEFAULT_LOCK_FILE, DEFAULT_PAUSE_FILE, DEFAULT_STATE_FILE, Files};
pub use link::{LinkConfig, TopologySource, link_name};
pub use local::{Endpoint, Local, LocalTls};
pub use mail::{
    DEFAULT_MAIL_TIMEOUT, Delivery, MAX_MAIL_TIMEOUT, MailConfig, SmtpConfig, SmtpSecurity,
    Transport,
};
pub use policy::{
    DEFAULT_MAX_LOG_BYTES, DEFAULT_MAX_LOG_LINES, DEFAULT_MAX_MAILS, DEFAULT_MAX_MEMORY_MIB,
    DEFAULT_MAX_OPERATIONS, DEFAULT_MAX_SECONDS, DEFAULT_NOTIFY_EVERY, Limits, PolicyConfig,
};
pub use timeouts::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_FAILED_TIMEOUT, DEFAULT_HEARTBEAT_TIMEOUT,
    DEFAULT_PROBE_TIMEOUT, SETTLE, Timeouts,
};

/// The checked configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
    pub local: Local,
    pub timeouts: Timeouts,
    pub daemon: Daemon,
    pub files: Files,
    pub mail: MailConfig,
    pub policy: PolicyConfig,
    pub topology: TopologySource,
    pub links: Vec<LinkConfig>,
    /// `[hooks]`: an operator's command per event.
    pub hooks: hooks::Hooks,
}

// ---- the raw TOML shape (each section's own is in its module) -----------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    local: local::RawLocal,
    #[serde(default)]
    timeouts: timeouts::RawTimeouts,
    #[serde(default)]
    daemon: daemon::RawDaemon,
    #[serde(default)]
    files: files::RawFiles,
    #[serde(default)]
    mail: mail::RawMail,
    #[serde(default)]
    policy: policy::RawPolicy,
    #[serde(default)]
    topology: link::RawTopology,
    #[serde(default)]
    link: Vec<Spanned<link::RawLink>>,
    #[serde(default)]
    hooks: hooks::RawHooks,
}

impl Config {
    /// The configuration when no file is given: connect through `~/.my.cnf`, links from the
    /// `percona.cluster`/`percona.link` tables.
    pub fn defaults() -> Config {
        let mut c = Config::parse("", Path::new("(defaults)")).expect("the empty config is valid");
        c.path = None;
        c
    }

    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            message: format!("cannot read the configuration file: {e}"),
        })?;
        Config::parse(&text, path)
    }

    /// Checks a configuration given as text; `file` is used in error messages and to resolve
    /// relative paths.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let src = Source {
            text,
            file,
            base: file.parent().unwrap_or(Path::new(".")),
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            src.at(
                e.span(),
                e.message().trim_end().replace("\n", "; ").to_string(),
            )
        })?;
        let local = raw.local.check(&src)?;
        let daemon = raw.daemon.check(&src)?;
        let timeouts = raw.timeouts.check(&src, daemon.interval)?;
        let files = raw.files.check(&src);
        let mail = raw.mail.check(&src)?;
        let policy = raw.policy.check(&src, &timeouts)?;
        let links = link::check_links(raw.link, &local, &src)?;
        let topology = raw.topology.check(&links, &src)?;
        let hooks = raw
            .hooks
            .check(|v| duration_text(v, None))
            .map_err(|(span, message)| src.at(Some(span), message))?;
        Ok(Config {
            path: Some(file.to_path_buf()),
            local,
            timeouts,
            daemon,
            files,
            mail,
            policy,
            topology,
            links,
            hooks,
        })
    }

    /// A short name for the config in messages.
    pub fn source_name(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(no config file)".into())
    }

    /// Builds an error about a link found after loading (e.g. it names the local cluster).
    pub fn link_error(&self, link: &LinkConfig, message: String) -> ConfigError {
        ConfigError {
            file: self
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from("(config)")),
            line: link.line,
            column: None,
            message: format!("[[link]] remote = {:?}: {message}", link.remote),
        }
    }
}

/// Where a config is being read: its text, for lines and columns, and its file, for messages
/// and relative paths.
struct Source<'a> {
    text: &'a str,
    file: &'a Path,
    base: &'a Path,
}

impl Source<'_> {
    /// An error at a place in the file (or about the file as a whole).
    fn at(&self, span: Option<Range<usize>>, message: String) -> ConfigError {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_col(self.text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            message,
        }
    }

    /// A path relative to the config file's directory.
    fn rel(&self, p: PathBuf) -> PathBuf {
        if p.is_relative() {
            self.base.join(p)
        } else {
            p
        }
    }
}

/// A duration as the config writes it, in whole seconds: `179`, `"179s"`, `"3m"`, `"1h"`, or,
/// where `interval` is given, `"5 intervals"` (5 times `[daemon] interval`).
fn duration_text(v: &toml::Value, interval: Option<Duration>) -> Result<i64, String> {
    let relative = if interval.is_some() {
        ", or a number of intervals (\"5 intervals\")"
    } else {
        ""
    };
    let text = match v {
        toml::Value::Integer(n) => return Ok(*n),
        toml::Value::String(s) => s.trim(),
        other => {
            return Err(format!(
                "invalid type: {}, expected seconds (179), a duration (\"3m\", \"179s\"){relative}",
                other.type_str()
            ));
        }
    };
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let bad = || {
        format!(
            "{text:?} is not a duration: write seconds (179), a number with s, m, h or d (\"3m\"){relative}"
        )
    };
    let n: i64 = number.parse().map_err(|_| bad())?;
    let per = match (unit.trim(), interval) {
        ("" | "s", _) => 1,
        ("m", _) => 60,
        ("h", _) => 3600,
        ("d", _) => 86400,
        ("interval" | "intervals", Some(i)) => i.as_secs() as i64,
        _ => return Err(bad()),
    };
    n.checked_mul(per).ok_or_else(bad)
}

/// Reads a secret from a file: the first line, without its line ending.
pub fn read_secret(path: &Path) -> Result<Secret, SecretFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let first = text.lines().next().unwrap_or("");
    if first.is_empty() {
        return Err(SecretFileError::Empty(path.to_path_buf()));
    }
    Ok(Secret::from_file(first, path))
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn line_span(text: &str, line: usize) -> Range<usize> {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    start..start
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config in `text`, as if read from `/etc/pxcrm.toml` (the section modules' tests use it too).
    pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/pxcrm.toml"))
    }

    /// One link, three sources; the smallest config with a `[[link]]`.
    pub(super) const MINIMAL: &str = r#"
[local]
cluster = "DC1"

[[link]]
remote = "DC2"
sources = ["10.0.2.1", "10.0.2.2:3307", { host = "10.0.2.3", weight = 5 }]
user = "repl"
password = "secret"
"#;

    #[test]
    fn a_minimal_config_gets_the_original_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.timeouts.heartbeat, 179);
        assert_eq!(c.timeouts.failed, 180);
        assert_eq!(c.files.pause, PathBuf::from("/tmp/replication_manager.off"));
        assert_eq!(c.mail.delivery.transport(), Transport::None);
        assert_eq!(c.links.len(), 1);
        let l = &c.links[0];
        assert_eq!(l.line, Some(5));
        assert_eq!(
            l.sources
                .iter()
                .map(|s| (s.address(), s.weight))
                .collect::<Vec<_>>(),
            vec![
                ("10.0.2.1:3306".to_string(), 0),
                ("10.0.2.2:3307".to_string(), 0),
                ("10.0.2.3:3306".to_string(), 5)
            ]
        );
        assert_eq!(l.password.expose(), "secret");
    }

    #[test]
    fn the_empty_config_is_valid() {
        let c = Config::defaults();
        assert!(c.links.is_empty());
        assert_eq!(c.topology, TopologySource::Auto);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = parse("[local]\ncluster = \"DC1\"\nclustre = \"x\"\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("unknown field `clustre`"), "{e}");
        assert!(e.to_string().starts_with("/etc/pxcrm.toml:3:"), "{e}");
    }

    #[test]
    fn malformed_toml_names_line() {
        let e = parse("[local\ncluster = 1\n").unwrap_err();
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn the_shipped_examples_load_as_written() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        for f in ["site.toml", "minimal.toml", "from-tables.toml"] {
            let c = Config::load(&dir.join(f)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.path, Some(dir.join(f)));
        }
        let site = Config::load(&dir.join("site.toml")).unwrap();
        assert_eq!(site.links[0].password.expose(), "replpass");
        assert_eq!(site.links[0].sources[2].weight, 10);
        assert_eq!(
            Config::load(&dir.join("from-tables.toml"))
                .unwrap()
                .topology,
            TopologySource::Tables
        );
        let cnf = crate::config::mycnf::read(&dir.join("client.cnf")).unwrap();
        assert_eq!(cnf.user.as_deref(), Some("pxcrm"));
        assert_eq!(cnf.password.unwrap().expose(), "change me");
    }

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
