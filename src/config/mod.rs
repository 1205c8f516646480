//! The TOML configuration file, parsed into a checked [`Config`].
//!
//! Parsing is pure: [`Config::parse`] takes the file's text and name, so every rule can be
//! tested without touching the disk, except password files, which are read while checking so a
//! missing one is reported before anything connects. Every error names the file, the line and
//! the key. Unknown keys are errors. See `examples/` for annotated files.

pub mod hooks;
pub mod mycnf;
pub mod topology;

use crate::db::flavor::ReplicationTls;
use crate::db::sql::{Channel, Secret};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

pub use crate::error::{AddrError, AddrProblem, ConfigError, SecretFileError};

/// Where the manager connects to its local server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Socket(PathBuf),
    Tcp { host: String, port: u16 },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Socket(p) => write!(f, "socket {}", p.display()),
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// TLS for the manager's own connection to the local server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalTls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Check the server certificate against the CA and the host name.
    pub verify: bool,
}

/// The local server and this node's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local {
    /// The local cluster's name; read from `wsrep_cluster_name` when not set.
    pub cluster: Option<String>,
    /// This node's name in the state table; read from `wsrep_node_name` when not set.
    pub node: Option<String>,
    /// This node's weight; from `percona.weight` (or 0) when not set.
    pub weight: Option<i64>,
    /// `None` means: use the option file's socket/host, or the usual socket paths.
    pub endpoint: Option<Endpoint>,
    /// The only MySQL option file read for the login, as the client's `--defaults-file`
    /// (default: the client's chain, `/etc/my.cnf` ... `~/.my.cnf`; see `config::mycnf`).
    pub defaults_file: Option<PathBuf>,
    /// An option file read after the global ones and before `~/.my.cnf`, as the client's
    /// `--defaults-extra-file`; it must exist. Not read when `defaults_file` is set.
    pub defaults_extra_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub tls: Option<LocalTls>,
    /// `host:port` where the other nodes of the cluster reach this server, to fence it. Default:
    /// this node's entry in `mysql.wsrep_cluster_members`, else `wsrep_node_incoming_address`.
    pub address: Option<String>,
}

/// Timeouts, in seconds unless stated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A node whose report sequence has not moved for this long (on this node's clock; see
    /// `db/clock.rs`) is silent: a `Yes` row is replaced, and the node is not a candidate. A
    /// policy's `silent_after` may lengthen it, never shorten it.
    pub heartbeat: i64,
    /// A `Failed` row clears back to `No` this long after it failed.
    pub failed: i64,
    /// How long to wait, after `START`, for both threads to run.
    pub connect: Duration,
    /// How long a probe of a source candidate, or a connection to a peer to fence it, may take.
    pub probe: Duration,
}

/// How long a freshly started channel must stay healthy before it counts as working.
pub const SETTLE: Duration = Duration::from_secs(1);

impl Timeouts {
    /// The longest a run goes without refreshing its heartbeat: a run refreshes it before every
    /// attempt on a source and after fencing, so the worst case is one attempt, whatever the
    /// number of sources: the probe of the candidate, then `connect` for the threads to run and
    /// `SETTLE` to see them stay up.
    pub fn longest_silence(&self) -> Duration {
        self.probe + self.connect + SETTLE
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Files {
    /// While this file exists, a run changes nothing but its own report (see `host::phases`).
    pub pause: PathBuf,
    /// Held (flock) for the whole run: a second run exits at once.
    pub lock: PathBuf,
    /// What this node has seen of its peers' reports between runs (see `db/clock.rs`).
    pub state: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// No mail; notifications are only logged.
    None,
    /// The local `sendmail` program.
    Sendmail,
    /// An SMTP relay.
    Smtp,
    /// Write each mail as a file into `directory` (tests, or a spool another tool picks up).
    File,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    None,
    Starttls,
    Tls,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailConfig {
    /// How mail leaves this node, with what that way needs.
    pub delivery: Delivery,
    pub to: Vec<String>,
    pub from: String,
    pub subject_prefix: String,
    /// The longest one mail may take to send over SMTP, connect included; also the timeout of
    /// each command.
    pub timeout: Duration,
}

/// How mail leaves this node (`[mail] transport`), with the settings of that way and no
/// other: a checked config cannot name an SMTP host without SMTP, or SMTP without a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// No mail; notifications are only logged.
    None,
    /// The local `sendmail` program (`sendmail_command`, else `sendmail` in `PATH`).
    Sendmail { command: Option<PathBuf> },
    /// An SMTP relay.
    Smtp(SmtpConfig),
    /// Each mail as a file in `directory`.
    File { directory: PathBuf },
}

impl Delivery {
    /// The transport, as `[mail] transport` names it.
    pub fn transport(&self) -> Transport {
        match self {
            Delivery::None => Transport::None,
            Delivery::Sendmail { .. } => Transport::Sendmail,
            Delivery::Smtp(_) => Transport::Smtp,
            Delivery::File { .. } => Transport::File,
        }
    }
}

/// An SMTP relay's settings (`[mail] smtp_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    /// `None`: the security's standard port.
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// A PEM file of CA certificates trusted for the server's certificate, besides the
    /// built-in roots (an internal CA).
    pub ca_file: Option<PathBuf>,
}

/// `[mail] timeout` when not set: long enough for a relay across a WAN, short enough that a
/// cron run with a dead relay still ends well within its minute.
pub const DEFAULT_MAIL_TIMEOUT: u64 = 10;
/// The longest `[mail] timeout` accepted.
pub const MAX_MAIL_TIMEOUT: u64 = 120;

#[derive(Clone, Debug, PartialEq)]
pub struct PolicyConfig {
    /// A site policy; the built-in `policies/default.rhai` when not set.
    pub file: Option<PathBuf>,
    /// What one policy call may cost.
    pub limits: Limits,
    /// Spread the links of a cluster that replicates from several remotes across its nodes.
    pub distribute: bool,
    /// Site variables handed to the policy as `settings().vars`.
    pub vars: toml::Table,
}

/// The sandbox's bounds on the policy (`[policy]`): a mistake in a site policy costs at most one
/// clear error, never the host's memory, a held lock or a flooded mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most Rhai operations one call (one link's `manage_link`, or a hook) may take.
    pub max_operations: u64,
    /// The most memory one call may hold, in bytes, counted by the process's allocator: map
    /// keys, strings built by formatting and what host calls return all count.
    pub max_memory: usize,
    /// The wall-clock deadline of one call, host calls that touch the network included.
    pub max_seconds: Duration,
    /// The most lines a run's policy may log (`log`, `warn`, `print`, `debug`)...
    pub max_log_lines: usize,
    /// ... and their total size in bytes; past either, one line says how much was dropped.
    pub max_log_bytes: usize,
    /// The most mails the policy may send per link and run (`notify`).
    pub max_mails: usize,
    /// A policy's own mails (`notify` outside a host event) go out at most once per link in
    /// this time; those in between are counted, and the next says how many were held back.
    pub notify_every: Duration,
}

/// `[policy]` limits when not set.
pub const DEFAULT_MAX_MEMORY_MIB: u64 = 32;
pub const DEFAULT_MAX_SECONDS: u64 = 45;
pub const DEFAULT_MAX_LOG_LINES: usize = 200;
pub const DEFAULT_MAX_LOG_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_MAILS: usize = 5;
pub const DEFAULT_NOTIFY_EVERY: u64 = 600;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_operations: DEFAULT_MAX_OPERATIONS,
            max_memory: (DEFAULT_MAX_MEMORY_MIB as usize) << 20,
            max_seconds: Duration::from_secs(DEFAULT_MAX_SECONDS),
            max_log_lines: DEFAULT_MAX_LOG_LINES,
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            max_mails: DEFAULT_MAX_MAILS,
            notify_every: Duration::from_secs(DEFAULT_NOTIFY_EVERY),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopologySource {
    /// `[[link]]` sections when there are any, otherwise `percona.cluster`/`link`.
    Auto,
    Config,
    Tables,
}

/// A source candidate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SourceAddr {
    pub host: String,
    pub port: u16,
    /// Higher is tried first; equal weights keep the listed order.
    pub weight: i64,
}

impl SourceAddr {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`.
    pub fn parse(s: &str, default_port: u16) -> Result<SourceAddr, AddrError> {
        let s = s.trim();
        let bad = |why: AddrProblem| AddrError {
            address: s.to_string(),
            why,
        };
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, tail) = rest
                .split_once(']')
                .ok_or_else(|| bad(AddrProblem::MissingBracket))?;
            match tail.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if tail.is_empty() => (h, None),
                None => return Err(bad(AddrProblem::AfterBracket(tail.to_string()))),
            }
        } else if s.matches(':').count() == 1 {
            let (h, p) = s.split_once(':').unwrap_or((s, ""));
            (h, Some(p))
        } else {
            (s, None)
        };
        if host.is_empty() {
            return Err(bad(AddrProblem::EmptyHost));
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '\'' | '"' | '\\' | ';'))
        {
            return Err(bad(AddrProblem::BadHost));
        }
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(AddrProblem::BadPort(p.to_string())))?,
        };
        Ok(SourceAddr {
            host: host.to_string(),
            port,
            weight: 0,
        })
    }

    /// `host:port` ([`crate::db::flavor::host_port`]).
    pub fn address(&self) -> String {
        crate::db::flavor::host_port(&self.host, self.port)
    }
}

/// One `[[link]]`: a remote cluster this cluster replicates from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    pub remote: String,
    pub sources: Vec<SourceAddr>,
    pub user: String,
    pub password: Secret,
    /// MariaDB: the GTID domains to request; learned from the source when not set.
    pub gtid_domains: Option<Vec<u32>>,
    pub tls: Option<ReplicationTls>,
    /// The line of the `[[link]]` header, for errors found later.
    pub line: Option<usize>,
}

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

/// `[daemon]`: how `pxc-replication-manager daemon` runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Daemon {
    /// Time between the starts of two runs, 1 s to 60 s. Timeouts written as a number of
    /// intervals (`heartbeat = "5 intervals"`) count in it, in cron mode too (set it to the
    /// cron period there).
    pub interval: Duration,
    /// Where the daemon serves Prometheus metrics (`/metrics`), if anywhere; the command
    /// line's `--metrics-listen` overrides it.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// The shortest and longest `[daemon] interval`.
pub const INTERVAL_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

impl Daemon {
    /// A replica daemon that has not refreshed its own report for this long stops its channel
    /// itself (see `app::daemon`): two thirds of the silent threshold, so that it has stopped
    /// before any peer, which waits for the whole threshold on its own clock, replaces it.
    pub fn self_fence_after(threshold_secs: i64) -> Duration {
        Duration::from_millis((threshold_secs.max(1) as u64) * 2000 / 3)
    }
}

// ---- the raw TOML shape -------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    local: RawLocal,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    files: RawFiles,
    #[serde(default)]
    mail: RawMail,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    topology: RawTopology,
    #[serde(default)]
    link: Vec<Spanned<RawLink>>,
    #[serde(default)]
    hooks: hooks::RawHooks,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLocal {
    cluster: Option<Spanned<String>>,
    node: Option<String>,
    weight: Option<i64>,
    socket: Option<PathBuf>,
    host: Option<String>,
    port: Option<u16>,
    defaults_file: Option<PathBuf>,
    defaults_extra_file: Option<PathBuf>,
    connect_timeout: Option<u64>,
    read_timeout: Option<u64>,
    tls: Option<RawLocalTls>,
    address: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocalTls {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    verify: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    heartbeat: Option<Spanned<toml::Value>>,
    failed: Option<Spanned<toml::Value>>,
    connect: Option<Spanned<u64>>,
    probe: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    interval: Option<Spanned<toml::Value>>,
    metrics_listen: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFiles {
    pause: Option<PathBuf>,
    lock: Option<PathBuf>,
    state: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMail {
    transport: Option<Transport>,
    to: Option<Vec<String>>,
    from: Option<String>,
    subject_prefix: Option<String>,
    sendmail_command: Option<PathBuf>,
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    smtp_security: Option<SmtpSecurity>,
    smtp_user: Option<String>,
    smtp_password_file: Option<Spanned<PathBuf>>,
    smtp_ca_file: Option<Spanned<PathBuf>>,
    timeout: Option<Spanned<u64>>,
    directory: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    file: Option<PathBuf>,
    max_operations: Option<Spanned<u64>>,
    max_memory_mib: Option<Spanned<u64>>,
    max_seconds: Option<Spanned<u64>>,
    max_log_lines: Option<Spanned<u64>>,
    max_log_bytes: Option<Spanned<u64>>,
    max_mails: Option<Spanned<u64>>,
    notify_every: Option<Spanned<u64>>,
    distribute: Option<bool>,
    vars: Option<toml::Table>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    from: Option<TopologySource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    remote: Spanned<String>,
    sources: Spanned<Vec<Spanned<toml::Value>>>,
    port: Option<u16>,
    user: String,
    password: Option<String>,
    password_file: Option<Spanned<PathBuf>>,
    gtid_domains: Option<Vec<u32>>,
    tls: Option<RawLinkTls>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinkTls {
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    verify_server_cert: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSourceTable {
    host: String,
    port: Option<u16>,
    weight: Option<i64>,
}

/// The defaults of the original script where it had one.
pub const DEFAULT_HEARTBEAT_TIMEOUT: i64 = 179;
pub const DEFAULT_FAILED_TIMEOUT: i64 = 180;
pub const DEFAULT_PAUSE_FILE: &str = "/tmp/replication_manager.off";
pub const DEFAULT_LOCK_FILE: &str = "/tmp/pxc-replication-manager.lock";
pub const DEFAULT_STATE_FILE: &str = "/var/lib/pxc-replication-manager/observed.json";
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 30;
pub const DEFAULT_PROBE_TIMEOUT: u64 = 5;
/// `[policy] max_operations` when not set: the most Rhai operations one link's call may take.
pub const DEFAULT_MAX_OPERATIONS: u64 = 200_000;

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
        let links = check_links(raw.link, &local, &src)?;
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

impl RawLocal {
    /// `[local]`.
    fn check(self, src: &Source) -> Result<Local, ConfigError> {
        let l = self;
        let endpoint = match (l.socket, l.host) {
            (Some(_), Some(_)) => {
                return Err(src.at(
                    None,
                    "[local]: set either `socket` or `host`, not both".into(),
                ));
            }
            (Some(s), None) => {
                if l.port.is_some() {
                    return Err(src.at(
                        None,
                        "[local]: `port` goes with `host`, not `socket`".into(),
                    ));
                }
                Some(Endpoint::Socket(src.rel(s)))
            }
            (None, Some(h)) => Some(Endpoint::Tcp {
                host: h,
                port: l.port.unwrap_or(3306),
            }),
            (None, None) => l.port.map(|port| Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port,
            }),
        };
        let cluster = match l.cluster {
            Some(c) => {
                if c.get_ref().is_empty() {
                    return Err(src.at(Some(c.span()), "[local] cluster: must not be empty".into()));
                }
                Some(c.into_inner())
            }
            None => None,
        };
        let address = match l.address {
            Some(a) => {
                let parsed = SourceAddr::parse(a.get_ref(), 3306)
                    .map_err(|e| src.at(Some(a.span()), format!("[local] address: {e}")))?;
                Some(parsed.address())
            }
            None => None,
        };
        let local = Local {
            address,
            cluster,
            node: l.node,
            weight: l.weight,
            endpoint,
            defaults_file: l.defaults_file.map(|p| src.rel(p)),
            defaults_extra_file: l.defaults_extra_file.map(|p| src.rel(p)),
            connect_timeout: Duration::from_secs(l.connect_timeout.unwrap_or(10).max(1)),
            read_timeout: Duration::from_secs(l.read_timeout.unwrap_or(60).max(1)),
            tls: l.tls.map(|t| LocalTls {
                ca: t.ca.map(|p| src.rel(p)),
                cert: t.cert.map(|p| src.rel(p)),
                key: t.key.map(|p| src.rel(p)),
                verify: t.verify.unwrap_or(true),
            }),
        };
        Ok(local)
    }
}

impl RawDaemon {
    /// `[daemon]`.
    fn check(self, src: &Source) -> Result<Daemon, ConfigError> {
        let metrics_listen = match self.metrics_listen {
            None => None,
            Some(a) => Some(a.get_ref().trim().parse().map_err(|_| {
                src.at(
                    Some(a.span()),
                    format!(
                        "[daemon] metrics_listen: {:?} is not an IP address and port (e.g. \"127.0.0.1:9333\", or \"[::1]:9333\")",
                        a.get_ref()
                    ),
                )
            })?),
        };
        let Some(v) = self.interval else {
            return Ok(Daemon {
                interval: DEFAULT_INTERVAL,
                metrics_listen,
            });
        };
        let secs = duration_text(v.get_ref(), None)
            .map_err(|e| src.at(Some(v.span()), format!("[daemon] interval: {e}")))?;
        let (lo, hi) = INTERVAL_RANGE;
        if secs < lo.as_secs() as i64 || secs > hi.as_secs() as i64 {
            return Err(src.at(
                Some(v.span()),
                format!(
                    "[daemon] interval: {secs} s is outside {} s to {} s",
                    lo.as_secs(),
                    hi.as_secs()
                ),
            ));
        }
        Ok(Daemon {
            interval: Duration::from_secs(secs as u64),
            metrics_listen,
        })
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

impl RawTimeouts {
    /// `[timeouts]`, and the one rule between them. `heartbeat` and `failed` may count in
    /// `[daemon] interval`.
    fn check(self, src: &Source, interval: Duration) -> Result<Timeouts, ConfigError> {
        let t = self;
        let positive = |v: &Option<Spanned<toml::Value>>, key: &str, default: i64| match v {
            Some(s) => match duration_text(s.get_ref(), Some(interval)) {
                Ok(n) if n > 0 => Ok(n),
                Ok(_) => Err(src.at(
                    Some(s.span()),
                    format!("[timeouts] {key}: must be a positive number of seconds"),
                )),
                Err(e) => Err(src.at(Some(s.span()), format!("[timeouts] {key}: {e}"))),
            },
            None => Ok(default),
        };
        let seconds = |v: &Option<Spanned<u64>>, key: &str, default: u64| match v {
            Some(s) if *s.get_ref() == 0 => Err(src.at(
                Some(s.span()),
                format!("[timeouts] {key}: must be a positive number of seconds"),
            )),
            Some(s) => Ok(Duration::from_secs(*s.get_ref())),
            None => Ok(Duration::from_secs(default)),
        };
        let timeouts = Timeouts {
            heartbeat: positive(&t.heartbeat, "heartbeat", DEFAULT_HEARTBEAT_TIMEOUT)?,
            failed: positive(&t.failed, "failed", DEFAULT_FAILED_TIMEOUT)?,
            connect: seconds(&t.connect, "connect", DEFAULT_CONNECT_TIMEOUT)?,
            probe: seconds(&t.probe, "probe", DEFAULT_PROBE_TIMEOUT)?,
        };

        let worst = timeouts.longest_silence().as_secs();
        if worst as i64 >= timeouts.heartbeat {
            return Err(src.at(
            t.heartbeat.as_ref().map(|s| s.span()),
            format!(
                "[timeouts] heartbeat ({} s) must be longer than the longest time a run goes without refreshing its heartbeat: one source attempt, probe ({} s) + connect ({} s) + {} s for the channel to settle = {worst} s. A run refreshes its heartbeat before every attempt, so the number of sources does not add to it; leave room for the cron interval too (the defaults: 179 s > 60 s + {} s)",
                timeouts.heartbeat,
                timeouts.probe.as_secs(),
                timeouts.connect.as_secs(),
                SETTLE.as_secs(),
                DEFAULT_PROBE_TIMEOUT + DEFAULT_CONNECT_TIMEOUT + SETTLE.as_secs(),
            ),
        ));
        }
        Ok(timeouts)
    }
}

impl RawFiles {
    /// `[files]`.
    fn check(self, src: &Source) -> Files {
        Files {
            pause: src.rel(self.pause.unwrap_or_else(|| DEFAULT_PAUSE_FILE.into())),
            lock: src.rel(self.lock.unwrap_or_else(|| DEFAULT_LOCK_FILE.into())),
            state: src.rel(self.state.unwrap_or_else(|| DEFAULT_STATE_FILE.into())),
        }
    }
}

impl RawMail {
    /// `[mail]`.
    fn check(self, src: &Source) -> Result<MailConfig, ConfigError> {
        let m = self;
        let to = m.to.unwrap_or_default();
        let transport = m.transport.unwrap_or(if to.is_empty() {
            Transport::None
        } else {
            Transport::Sendmail
        });
        if transport != Transport::None && to.is_empty() {
            return Err(src.at(
                None,
                "[mail] to: list at least one recipient, or set transport = \"none\"".into(),
            ));
        }
        if transport == Transport::Smtp && m.smtp_host.is_none() {
            return Err(src.at(
                None,
                "[mail] smtp_host: required with transport = \"smtp\"".into(),
            ));
        }
        if transport == Transport::File && m.directory.is_none() {
            return Err(src.at(
                None,
                "[mail] directory: required with transport = \"file\"".into(),
            ));
        }
        let smtp_password =
            match m.smtp_password_file {
                Some(p) => Some(read_secret(&src.rel(p.get_ref().clone())).map_err(|e| {
                    src.at(Some(p.span()), format!("[mail] smtp_password_file: {e}"))
                })?),
                None => None,
            };
        let smtp_ca_file = match m.smtp_ca_file {
            Some(p) => {
                let path = src.rel(p.get_ref().clone());
                check_pem(&path)
                    .map_err(|e| src.at(Some(p.span()), format!("[mail] smtp_ca_file: {e}")))?;
                Some(path)
            }
            None => None,
        };
        let timeout = match m.timeout {
            Some(t) if !(1..=MAX_MAIL_TIMEOUT).contains(t.get_ref()) => {
                return Err(src.at(
                    Some(t.span()),
                    format!(
                        "[mail] timeout: {} is out of range: 1 to {MAX_MAIL_TIMEOUT} seconds",
                        t.get_ref()
                    ),
                ));
            }
            Some(t) => Duration::from_secs(*t.get_ref()),
            None => Duration::from_secs(DEFAULT_MAIL_TIMEOUT),
        };
        let security = m.smtp_security.unwrap_or(SmtpSecurity::Starttls);
        let host = m.smtp_host.unwrap_or_default();
        // lettre sends credentials over a plain connection when the server offers AUTH there:
        // refused, except to a relay on this machine.
        if transport == Transport::Smtp
            && security == SmtpSecurity::None
            && m.smtp_user.is_some()
            && !is_loopback(&host)
        {
            return Err(src.at(
                None,
                format!(
                    "[mail] smtp_user with smtp_security = \"none\" would send the password in clear to {host}: use \"starttls\" or \"tls\" (plain with a login is accepted only to a relay on this machine: localhost, 127.0.0.0/8, ::1)"
                ),
            ));
        }
        let delivery = match transport {
            Transport::None => Delivery::None,
            Transport::Sendmail => Delivery::Sendmail {
                command: m.sendmail_command,
            },
            Transport::Smtp => Delivery::Smtp(SmtpConfig {
                host,
                port: m.smtp_port,
                security,
                user: m.smtp_user,
                password: smtp_password,
                ca_file: smtp_ca_file,
            }),
            Transport::File => Delivery::File {
                directory: m.directory.map(|p| src.rel(p)).unwrap_or_default(),
            },
        };
        let mail = MailConfig {
            delivery,
            to,
            from: m
                .from
                .unwrap_or_else(|| "pxc-replication-manager@localhost".into()),
            subject_prefix: m
                .subject_prefix
                .unwrap_or_else(|| "[pxc-replication-manager]".into()),
            timeout,
        };
        Ok(mail)
    }
}

impl RawPolicy {
    /// `[policy]`; the time limit must leave room for one source attempt of `timeouts`.
    fn check(self, src: &Source, timeouts: &Timeouts) -> Result<PolicyConfig, ConfigError> {
        let p = self;
        // A limit is a whole number within a range; out of it, the error names the key and why.
        let limit = |v: &Option<Spanned<u64>>,
                     key: &str,
                     default: u64,
                     min: u64,
                     max: u64,
                     what: &str|
         -> Result<u64, ConfigError> {
            match v {
                None => Ok(default),
                Some(s) if (min..=max).contains(s.get_ref()) => Ok(*s.get_ref()),
                Some(s) => Err(src.at(
                    Some(s.span()),
                    format!(
                        "[policy] {key} = {}: must be from {min} to {max} {what} (default {default})",
                        s.get_ref()
                    ),
                )),
            }
        };
        let max_seconds = limit(
            &p.max_seconds,
            "max_seconds",
            DEFAULT_MAX_SECONDS,
            1,
            3600,
            "seconds",
        )?;
        let attempt = timeouts.longest_silence().as_secs();
        if max_seconds <= attempt {
            return Err(src.at(
                p.max_seconds.as_ref().map(|s| s.span()),
                format!(
                    "[policy] max_seconds ({max_seconds} s) must be longer than one source attempt, [timeouts] probe ({} s) + connect ({} s) + {} s for the channel to settle = {attempt} s: otherwise no policy call could ever connect",
                    timeouts.probe.as_secs(),
                    timeouts.connect.as_secs(),
                    SETTLE.as_secs()
                ),
            ));
        }
        let limits = Limits {
            max_operations: limit(
                &p.max_operations,
                "max_operations",
                DEFAULT_MAX_OPERATIONS,
                1_000,
                1_000_000_000,
                "operations",
            )?,
            max_memory: (limit(
                &p.max_memory_mib,
                "max_memory_mib",
                DEFAULT_MAX_MEMORY_MIB,
                1,
                4096,
                "MiB",
            )? as usize)
                << 20,
            max_seconds: Duration::from_secs(max_seconds),
            max_log_lines: limit(
                &p.max_log_lines,
                "max_log_lines",
                DEFAULT_MAX_LOG_LINES as u64,
                1,
                1_000_000,
                "lines",
            )? as usize,
            max_log_bytes: limit(
                &p.max_log_bytes,
                "max_log_bytes",
                DEFAULT_MAX_LOG_BYTES as u64,
                1024,
                1 << 30,
                "bytes",
            )? as usize,
            max_mails: limit(
                &p.max_mails,
                "max_mails",
                DEFAULT_MAX_MAILS as u64,
                1,
                1000,
                "mails per link and run; to send none, set [mail] transport = \"none\"",
            )? as usize,
            notify_every: Duration::from_secs(limit(
                &p.notify_every,
                "notify_every",
                DEFAULT_NOTIFY_EVERY,
                0,
                86_400,
                "seconds between two of the policy's own mails about one link",
            )?),
        };
        Ok(PolicyConfig {
            file: p.file.map(|p| src.rel(p)),
            limits,
            distribute: p.distribute.unwrap_or(true),
            vars: p.vars.unwrap_or_default(),
        })
    }
}

/// Every `[[link]]`.
fn check_links(
    raw: Vec<Spanned<RawLink>>,
    local: &Local,
    src: &Source,
) -> Result<Vec<LinkConfig>, ConfigError> {
    let mut links: Vec<LinkConfig> = Vec::new();
    for spanned in raw {
        let line = line_col(src.text, spanned.span().start).0;
        let link = spanned.into_inner().check(line, local, &links, src)?;
        links.push(link);
    }
    Ok(links)
}

impl RawLink {
    /// One `[[link]]` (at `line`), beside the links before it.
    fn check(
        self,
        line: usize,
        local: &Local,
        earlier: &[LinkConfig],
        src: &Source,
    ) -> Result<LinkConfig, ConfigError> {
        let remote = self.remote.get_ref().clone();
        let remote_span = self.remote.span();
        let ctx = format!("[[link]] remote = {remote:?}");
        if remote.is_empty() {
            return Err(src.at(
                Some(remote_span),
                "[[link]] remote: must not be empty".into(),
            ));
        }
        Channel::named(&remote)
            .map_err(|e| src.at(Some(remote_span.clone()), format!("{ctx}: remote: {e}")))?;
        if local.cluster.as_deref() == Some(remote.as_str()) {
            return Err(src.at(
                Some(remote_span),
                format!(
                    "{ctx}: this is the local cluster; a link names a remote cluster to replicate from"
                ),
            ));
        }
        if earlier.iter().any(|l| l.remote == remote) {
            return Err(src.at(
                Some(remote_span),
                format!("{ctx}: a second link to the same remote cluster"),
            ));
        }
        if let Some(c) = &local.cluster {
            Channel::named(&topology::link_name(c, &remote))
                .map_err(|e| src.at(Some(remote_span.clone()), format!("{ctx}: {e}")))?;
        }
        let sources = check_sources(self.sources, self.port.unwrap_or(3306), &ctx, src)?;
        if self.user.is_empty() {
            return Err(src.at(
                Some(line_span(src.text, line)),
                format!("{ctx}: user: must not be empty"),
            ));
        }
        let password = match (self.password, self.password_file) {
            (Some(_), Some(pf)) => {
                return Err(src.at(
                    Some(pf.span()),
                    format!("{ctx}: set either `password` or `password_file`, not both"),
                ));
            }
            (Some(p), None) => Secret::new(p),
            (None, Some(pf)) => read_secret(&src.rel(pf.get_ref().clone()))
                .map_err(|e| src.at(Some(pf.span()), format!("{ctx}: password_file: {e}")))?,
            (None, None) => {
                return Err(src.at(
                    Some(line_span(src.text, line)),
                    format!("{ctx}: set `password` or `password_file`"),
                ));
            }
        };
        Ok(LinkConfig {
            remote,
            sources,
            user: self.user,
            password,
            gtid_domains: self.gtid_domains,
            tls: self.tls.map(|t| ReplicationTls {
                ca: t.ca,
                cert: t.cert,
                key: t.key,
                verify_server_cert: t.verify_server_cert.unwrap_or(true),
            }),
            line: Some(line),
        })
    }
}

/// A link's `sources`: strings or tables, at least one, none twice.
fn check_sources(
    raw: Spanned<Vec<Spanned<toml::Value>>>,
    default_port: u16,
    ctx: &str,
    src: &Source,
) -> Result<Vec<SourceAddr>, ConfigError> {
    let sources_span = raw.span();
    let mut sources: Vec<SourceAddr> = Vec::new();
    for s in raw.into_inner() {
        let span = s.span();
        let addr = source_addr(s.into_inner(), default_port)
            .map_err(|e| src.at(Some(span.clone()), format!("{ctx}: sources: {e}")))?;
        if sources
            .iter()
            .any(|o| o.host == addr.host && o.port == addr.port)
        {
            return Err(src.at(
                Some(span),
                format!("{ctx}: sources: {} is listed twice", addr.address()),
            ));
        }
        sources.push(addr);
    }
    if sources.is_empty() {
        return Err(src.at(
            Some(sources_span),
            format!("{ctx}: sources: list at least one source candidate"),
        ));
    }
    Ok(sources)
}

/// One source candidate: `"host[:port]"` or `{ host, port, weight }`.
fn source_addr(v: toml::Value, default_port: u16) -> Result<SourceAddr, String> {
    match v {
        toml::Value::String(v) => SourceAddr::parse(&v, default_port).map_err(|e| e.to_string()),
        toml::Value::Table(t) => {
            let table: RawSourceTable = toml::Value::Table(t)
                .try_into()
                .map_err(|e: toml::de::Error| e.message().trim().to_string())?;
            let mut a = SourceAddr::parse(&table.host, table.port.unwrap_or(default_port))
                .map_err(|e| e.to_string())?;
            if let Some(p) = table.port {
                a.port = p;
            }
            a.weight = table.weight.unwrap_or(0);
            Ok(a)
        }
        other => Err(format!(
            "expected \"host[:port]\" or {{ host = .., port = .., weight = .. }}, found a {}",
            other.type_str()
        )),
    }
}

impl RawTopology {
    /// `[topology]`, which must agree with the links.
    fn check(self, links: &[LinkConfig], src: &Source) -> Result<TopologySource, ConfigError> {
        let topology = self.from.unwrap_or(TopologySource::Auto);
        if topology == TopologySource::Config && links.is_empty() {
            return Err(src.at(
                None,
                "[topology] from = \"config\" but there is no [[link]] section".into(),
            ));
        }
        if topology == TopologySource::Tables && !links.is_empty() {
            return Err(src.at(
            None,
            "[topology] from = \"tables\" but [[link]] sections are present: remove one or the other".into(),
        ));
        }
        Ok(topology)
    }
}

/// Whether a host name is this machine: `localhost`, 127.0.0.0/8 or `::1`.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// That a file holds at least one PEM certificate.
fn check_pem(path: &Path) -> Result<(), String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !String::from_utf8_lossy(&text).contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "{}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(())
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
    Ok(Secret::new(first))
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

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/pxcrm.toml"))
    }

    const MINIMAL: &str = r#"
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
    fn metrics_listen_is_an_address_and_a_bad_one_names_key_and_line() {
        let c = parse("[daemon]\nmetrics_listen = \"127.0.0.1:9333\"\n").unwrap();
        assert_eq!(
            c.daemon.metrics_listen,
            Some("127.0.0.1:9333".parse().unwrap())
        );
        assert_eq!(parse("").unwrap().daemon.metrics_listen, None);
        let e = parse("[daemon]\ninterval = 5\nmetrics_listen = \"localhost\"\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.starts_with("[daemon] metrics_listen:"), "{e}");
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = parse("[local]\ncluster = \"DC1\"\nclustre = \"x\"\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("unknown field `clustre`"), "{e}");
        assert!(e.to_string().starts_with("/etc/pxcrm.toml:3:"), "{e}");
    }

    #[test]
    fn a_heartbeat_timeout_shorter_than_one_source_attempt_is_refused() {
        let e = parse("[timeouts]\nheartbeat = 20\nconnect = 30\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(
            e.message
                .contains("probe (5 s) + connect (30 s) + 1 s for the channel to settle = 36 s"),
            "{e}"
        );
        // Exactly one attempt is still too long; one second more is enough.
        assert!(parse("[timeouts]\nheartbeat = 8\nconnect = 5\nprobe = 2\n").is_err());
        let c = parse("[timeouts]\nheartbeat = 9\nconnect = 5\nprobe = 2\n").unwrap();
        assert_eq!(c.timeouts.longest_silence(), Duration::from_secs(8));
    }

    #[test]
    fn the_peer_address_is_checked_like_a_source_address() {
        let c = parse("[local]\naddress = \"10.0.1.1\"\n").unwrap();
        assert_eq!(c.local.address.as_deref(), Some("10.0.1.1:3306"));
        let e = parse("[local]\naddress = \"10.0.1.1:x\"\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.starts_with("[local] address:"), "{e}");
    }

    #[test]
    fn wrong_type_names_line() {
        let e = parse("[timeouts]\nheartbeat = \"soon\"\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("is not a duration"), "{e}");
        let e = parse("[timeouts]\nconnect = \"soon\"\n").unwrap_err();
        assert!(e.message.contains("invalid type"), "{e}");
    }

    #[test]
    fn timeouts_may_be_durations_or_a_number_of_daemon_intervals() {
        let c = parse("[daemon]\ninterval = \"2s\"\n[timeouts]\nheartbeat = \"5 intervals\"\nfailed = \"3m\"\nconnect = 3\nprobe = 1\n").unwrap();
        assert_eq!(c.daemon.interval, Duration::from_secs(2));
        assert_eq!((c.timeouts.heartbeat, c.timeouts.failed), (10, 180));
        let c = parse("[timeouts]\nheartbeat = \"179s\"\n").unwrap();
        assert_eq!(c.timeouts.heartbeat, 179);
        assert_eq!(c.daemon.interval, DEFAULT_INTERVAL);
        // Relative to the default interval (10 s) when [daemon] does not set it.
        assert_eq!(
            parse("[timeouts]\nheartbeat = \"18 intervals\"\n")
                .unwrap()
                .timeouts
                .heartbeat,
            180
        );
        let e = parse("[daemon]\ninterval = 90\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("outside 1 s to 60 s"), "{e}");
        let e = parse("[daemon]\ninterval = \"2 intervals\"\n").unwrap_err();
        assert!(e.message.starts_with("[daemon] interval:"), "{e}");
        let e = parse("[timeouts]\nfailed = \"0 intervals\"\n").unwrap_err();
        assert!(e.message.contains("positive"), "{e}");
    }

    #[test]
    fn a_replica_fences_itself_at_two_thirds_of_the_silent_threshold() {
        assert_eq!(Daemon::self_fence_after(6), Duration::from_secs(4));
        assert_eq!(
            Daemon::self_fence_after(179),
            Duration::from_millis(119_333)
        );
    }

    #[test]
    fn malformed_toml_names_line() {
        let e = parse("[local\ncluster = 1\n").unwrap_err();
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn a_link_to_the_local_cluster_is_refused() {
        let e = parse(&MINIMAL.replace("remote = \"DC2\"", "remote = \"DC1\"")).unwrap_err();
        assert_eq!(e.line, Some(6));
        assert!(e.message.contains("this is the local cluster"), "{e}");
    }

    #[test]
    fn a_duplicate_source_is_refused() {
        let e = parse(&MINIMAL.replace("\"10.0.2.2:3307\"", "\"10.0.2.1:3306\"")).unwrap_err();
        assert!(e.message.contains("10.0.2.1:3306 is listed twice"), "{e}");
        assert_eq!(e.line, Some(7));
    }

    #[test]
    fn a_missing_password_file_is_reported_with_its_key() {
        let e = parse(&MINIMAL.replace(
            "password = \"secret\"",
            "password_file = \"/nonexistent/repl.pass\"",
        ))
        .unwrap_err();
        assert_eq!(e.line, Some(9));
        assert!(
            e.message
                .contains("password_file: cannot read /nonexistent/repl.pass"),
            "{e}"
        );
    }

    #[test]
    fn bad_source_addresses_are_refused() {
        for bad in ["\"h:0\"", "\"h:x\"", "\"\"", "\"a b\"", "\"h';--\"", "42"] {
            let e = parse(&MINIMAL.replace("\"10.0.2.1\"", bad)).unwrap_err();
            assert_eq!(e.line, Some(7), "{bad}: {e}");
        }
    }

    #[test]
    fn source_addresses_parse() {
        assert_eq!(SourceAddr::parse("h", 3306).unwrap().address(), "h:3306");
        assert_eq!(
            SourceAddr::parse("h:3307", 3306).unwrap().address(),
            "h:3307"
        );
        assert_eq!(
            SourceAddr::parse("[::1]:3307", 3306).unwrap().address(),
            "[::1]:3307"
        );
        assert_eq!(SourceAddr::parse("::1", 3306).unwrap().host, "::1");
    }

    #[test]
    fn mail_needs_recipients_and_a_way_out() {
        assert!(parse("[mail]\ntransport = \"smtp\"\nto = [\"a@b\"]\n").is_err());
        assert!(parse("[mail]\ntransport = \"file\"\nto = [\"a@b\"]\n").is_err());
        assert!(parse("[mail]\ntransport = \"pigeon\"\n").is_err());
        let c = parse("[mail]\nto = [\"a@b\"]\n").unwrap();
        assert_eq!(c.mail.delivery.transport(), Transport::Sendmail);
    }

    #[test]
    fn mail_timeout_is_bounded_and_defaults_short() {
        let c = parse("[mail]\nto = [\"a@b\"]\n").unwrap();
        assert_eq!(c.mail.timeout, Duration::from_secs(DEFAULT_MAIL_TIMEOUT));
        let c = parse("[mail]\nto = [\"a@b\"]\ntimeout = 3\n").unwrap();
        assert_eq!(c.mail.timeout, Duration::from_secs(3));
        for bad in ["0", "121"] {
            let e = parse(&format!("[mail]\nto = [\"a@b\"]\ntimeout = {bad}\n")).unwrap_err();
            assert_eq!(e.line, Some(3), "{e}");
            assert!(e.message.contains("[mail] timeout"), "{e}");
        }
    }

    #[test]
    fn mail_ca_file_must_hold_a_pem_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(
            &good,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let bad = dir.path().join("ca.txt");
        std::fs::write(&bad, "not a certificate").unwrap();
        let text = |p: &Path| {
            format!(
                "[mail]\ntransport = \"smtp\"\nsmtp_host = \"relay\"\nto = [\"a@b\"]\nsmtp_ca_file = \"{}\"\n",
                p.display()
            )
        };
        match parse(&text(&good)).unwrap().mail.delivery {
            Delivery::Smtp(s) => assert_eq!(s.ca_file, Some(good)),
            other => panic!("{other:?}"),
        }
        for p in [bad, dir.path().join("missing.pem")] {
            let e = parse(&text(&p)).unwrap_err();
            assert_eq!(e.line, Some(5), "{e}");
            assert!(e.message.contains("[mail] smtp_ca_file"), "{e}");
        }
    }

    #[test]
    fn a_login_over_plain_smtp_is_refused_except_on_this_machine() {
        let text = |host: &str| {
            format!(
                "[mail]\ntransport = \"smtp\"\nsmtp_host = \"{host}\"\nsmtp_security = \"none\"\nsmtp_user = \"u\"\nto = [\"a@b\"]\n"
            )
        };
        let e = parse(&text("relay.example.com")).unwrap_err();
        assert!(e.message.contains("in clear"), "{e}");
        for host in ["localhost", "127.0.0.1", "::1"] {
            parse(&text(host)).unwrap();
        }
    }

    #[test]
    fn relative_paths_are_relative_to_the_config_file() {
        let c = parse("[files]\npause = \"off\"\n").unwrap();
        assert_eq!(c.files.pause, PathBuf::from("/etc/off"));
    }

    #[test]
    fn the_option_files_of_local_are_relative_to_the_config_file() {
        let c = parse("[local]\ndefaults_extra_file = \"login.cnf\"\n").unwrap();
        assert_eq!(
            c.local.defaults_extra_file,
            Some(PathBuf::from("/etc/login.cnf"))
        );
        assert_eq!(c.local.defaults_file, None);
        let e = parse("[local]\ndefaults_extra = \"x\"\n").unwrap_err();
        assert!(e.message.contains("unknown field `defaults_extra`"), "{e}");
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
