//! Typed errors. Each says what went wrong and what the operator should do, and maps to one
//! documented exit code (see `EXIT CODES` in `--help` and docs/operating.md). Also [`printable`], the
//! one escape of text that came from outside before it is printed.

use std::fmt;
use std::path::PathBuf;

/// Whether a character does not print as itself: Unicode's control (Cc), format (Cf: bidi
/// overrides, zero-width characters, the soft hyphen...), line (Zl) and paragraph (Zp)
/// separators. Such a character in a value could end a line, reorder what follows or hide
/// itself, and so forge a line of the log or of a mail.
pub fn non_printing(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    matches!(
        c.general_category(),
        G::Control | G::Format | G::LineSeparator | G::ParagraphSeparator
    )
}

/// Every non-printing character ([`non_printing`]) escaped (`\n`, `\u{202e}`), so that no value
/// (a subject, a node name read from the servers, a policy's message) can forge a line of
/// printed output, of the log, of a mail or of a hook's environment. NUL is `\u{0}`.
pub fn printable(s: &str) -> String {
    if !s.chars().any(non_printing) {
        return s.to_string();
    }
    s.chars()
        .map(|c| match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c if non_printing(c) => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// [`printable`] line by line: a text of several lines (a mail's body) keeps its lines, and
/// every other non-printing character is escaped.
pub fn printable_lines(s: &str) -> String {
    s.split('\n').map(printable).collect::<Vec<_>>().join("\n")
}

/// Exit codes, documented in docs/operating.md and in `--help`.
pub mod exit {
    /// The run completed; nothing failed (a paused run also exits 0).
    pub const OK: i32 = 0;
    /// The run completed, but a link's action or a mail failed: read the log.
    pub const PARTIAL: i32 = 1;
    /// Bad input, or a setup this tool cannot work with: command line, configuration, option
    /// file, policy or scenario; an unsupported server version, a node that is not in a Galera
    /// cluster or has no link to manage, `init` outside the Primary component, a lock file
    /// that cannot be opened or that another user owns, a file that steers this process or
    /// holds a secret that another user could change. Nothing was changed on any server.
    pub const INPUT: i32 = 2;
    /// The local server could not be reached or refused the credentials.
    pub const CONNECT: i32 = 3;
    /// The state table is missing or not recognised: run `init`.
    pub const SCHEMA: i32 = 4;
    /// Another run holds the lock file.
    pub const LOCKED: i32 = 5;
    /// The server returned an error during the run.
    pub const DATABASE: i32 = 6;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error("MySQL option file error: {0}")]
    OptionFile(#[from] OptionFileError),
    /// A file that steers this process, or holds a secret, that someone else could change.
    #[error("{0}")]
    Untrusted(Box<UntrustedFile>),
    /// A policy that does not compile.
    #[error("{file}:{line}:{column}: {message}")]
    PolicyCompile {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A scenario file for `simulate` that cannot be used.
    #[error("scenario error: {0}")]
    Scenario(String),
    /// The local server cannot be reached, or refused the login.
    #[error(
        "cannot connect to the local server at {endpoint}: {} (check that the server runs, the [local] section of the config, and the user and password in the MySQL option file)",
        describe(source)
    )]
    Connect {
        endpoint: String,
        source: mysql::Error,
    },
    /// `percona.replication` does not exist.
    #[error(
        "the state table percona.replication does not exist on this cluster: run `pxc-replication-manager init` on one node (see `init --dry-run` first)"
    )]
    StateTableMissing,
    /// `percona.replication` exists but is not one of the known generations.
    #[error(
        "percona.replication is not a state table this tool knows: {0} (expected the seed generation with `cluster`, or the multi-cluster one with `connectionName`)"
    )]
    StateTableUnrecognised(String),
    /// Another run holds the lock.
    #[error(
        "another run holds the lock {} ({holder}); this run exits without doing anything. If no other run is active, the lock is released automatically when its process exits",
        file.display()
    )]
    Locked { file: PathBuf, holder: String },
    /// An I/O error on a file the run needs (the lock file).
    #[error("{}: {message}", file.display())]
    File {
        file: PathBuf,
        message: String,
        source: std::io::Error,
    },
    /// A database error during the run; the driver's error is its source.
    #[error("{context}: {}", describe(source))]
    Database {
        context: String,
        source: mysql::Error,
    },
    /// The server is of a flavour or version this tool does not support.
    #[error("unsupported server: {0}")]
    Unsupported(#[from] FlavorError),
    /// An operator's command that changes the cluster, run on a node that is not in the
    /// Primary component (or not Synced/Donor): `what` is the command's advice.
    #[error("{node} is {state}: {what} from a node of the Primary component")]
    NotPrimary {
        node: String,
        /// Its cluster status and local state, as `Primary/Synced`.
        state: String,
        what: &'static str,
    },
    /// The state table could not be read on this node (a command that writes it).
    #[error("{node}: the state table could not be read: run `init`, or `status` to see why")]
    StateTableUnread { node: String },
    /// The server is not a node this tool can manage (not Galera, no cluster or node name).
    #[error("{0}")]
    NotGaleraNode(&'static str),
    /// The links to manage cannot be known, or do not fit the state table: no `[[link]]` and
    /// no `percona.link`, a link named that does not exist, a `percona.cluster` row missing or
    /// unreadable, more links than the seed generation holds.
    #[error("{0}")]
    Links(String),
    /// A command-line value that does not fit (a reason too long, a model number, a link to
    /// name).
    #[error("{0}")]
    Argument(String),
    /// A resource the process needs cannot be had (signal handlers, the metrics listener and
    /// its thread).
    #[error("{0}")]
    Process(String),
    /// A state the program never reaches when it works: a bug to report.
    #[error("{0} (a bug: please report it)")]
    Internal(String),
    /// The model checker's world answered a host call with an error (a server outside the
    /// Primary component, a run the model suspended), or its report or traces could not be
    /// written.
    #[error("{0}")]
    Model(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_)
            | Error::OptionFile(_)
            | Error::Untrusted(_)
            | Error::PolicyCompile { .. }
            | Error::Scenario(_)
            | Error::File { .. }
            | Error::Unsupported(_)
            | Error::NotPrimary { .. }
            | Error::StateTableUnread { .. }
            | Error::NotGaleraNode(_)
            | Error::Links(_)
            | Error::Argument(_)
            | Error::Process(_)
            | Error::Internal(_)
            | Error::Model(_) => exit::INPUT,
            Error::Connect { .. } => exit::CONNECT,
            Error::StateTableMissing | Error::StateTableUnrecognised(_) => exit::SCHEMA,
            Error::Locked { .. } => exit::LOCKED,
            Error::Database { .. } => exit::DATABASE,
        }
    }

    pub fn db(context: impl Into<String>, e: mysql::Error) -> Error {
        Error::Database {
            context: context.into(),
            source: e,
        }
    }
}

/// Why a name cannot be a channel name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("channel name {0:?} must be 1 to 64 characters long")]
    Length(String),
    #[error(
        "channel name {name:?} contains {bad:?}; only letters, digits, '_', '.' and '-' are allowed"
    )]
    Character { name: String, bad: char },
}

/// Why a server's flavour is not one this tool speaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlavorError {
    #[error("cannot read a server version from @@version = {0:?}")]
    Unreadable(String),
    #[error(
        "MariaDB {0} is not supported: MariaDB 10.4 or later is needed (named connections with DO_DOMAIN_IDS)"
    )]
    OldMariaDb(String),
    #[error("MySQL {0} is not supported: 5.7 or later is needed (replication channels)")]
    OldMySql(String),
}

/// Why a text is not a `host[:port]` address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{address:?}: {why}")]
pub struct AddrError {
    pub address: String,
    pub why: AddrProblem,
}

/// What is wrong with an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrProblem {
    #[error("missing ']' after an IPv6 address")]
    MissingBracket,
    #[error("unexpected {0:?} after ']'")]
    AfterBracket(String),
    #[error("the host is empty")]
    EmptyHost,
    #[error("a host name cannot contain spaces, quotes, backslashes or semicolons")]
    BadHost,
    #[error("{0:?} is not a port number")]
    BadPort(String),
}

/// A file that should hold a secret (a password) on its first line.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is empty", .0.display())]
    Empty(PathBuf),
}

/// Why a source candidate (or a peer) could not be probed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The login failed: refused, unreachable, timed out.
    #[error("{}", describe(.0))]
    Login(#[source] mysql::Error),
    /// It answered the login, then not the query.
    #[error("{}", describe(.0))]
    Query(#[source] mysql::Error),
    /// A simulated candidate that does not answer.
    #[error("{0}")]
    Simulated(String),
}

/// The node's memory of its peers (`[files] state`) could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a file this tool wrote ({source}); delete it to start afresh", path.display())]
    Unreadable {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A mail that could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("[mail] {field} = {value:?}: {source}")]
    Address {
        field: &'static str,
        value: String,
        source: lettre::address::AddressError,
    },
    #[error("building the mail: {0}")]
    Build(#[source] lettre::error::Error),
    #[error("sendmail: {0}")]
    Sendmail(#[source] lettre::transport::sendmail::Error),
    #[error("mail directory {}: {source}", dir.display())]
    Directory {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the mail into {}: {source}", dir.display())]
    File {
        dir: PathBuf,
        source: lettre::transport::file::Error,
    },
    #[error("SMTP server {server}: {source}")]
    Smtp {
        server: String,
        source: lettre::transport::smtp::Error,
    },
    #[error(
        "SMTP server {server}: no answer within [mail] timeout = {seconds} s (the server is slow or hangs); the mail is not sent"
    )]
    SmtpTimeout { server: String, seconds: u64 },
    #[error("[mail] smtp_ca_file {}: {why}", path.display())]
    CaFile { path: PathBuf, why: String },
    #[error("starting the thread that sends the mail: {0}")]
    Thread(#[source] std::io::Error),
}

/// A `masterCandidates` list of `percona.cluster` that is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CandidatesError {
    #[error(transparent)]
    Addr(#[from] AddrError),
    #[error("no candidates listed")]
    Empty,
}

/// A `replCreds` fragment of `percona.cluster` that is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReplCredsError(pub String);

/// A configuration error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// A file this process will not trust (`config::trust`): who owns it, its mode, and what
/// mends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntrustedFile {
    /// What the file is to this process: "configuration file", "hook program", ...
    pub role: String,
    /// The file as the config or the command line names it.
    pub path: PathBuf,
    /// The file or directory with the flaw: `path`, or a directory above it.
    pub at: PathBuf,
    /// Its owner, as `name (uid N)`.
    pub owner: String,
    /// Its mode, in octal.
    pub mode: String,
    /// What is wrong with it, in words.
    pub problem: String,
    /// The commands that mend it.
    pub fixes: Vec<String>,
    /// The user this process runs as.
    pub runs_as: String,
}

impl std::error::Error for UntrustedFile {}

impl From<Box<UntrustedFile>> for Error {
    fn from(e: Box<UntrustedFile>) -> Error {
        Error::Untrusted(e)
    }
}

impl std::fmt::Display for UntrustedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refusing the {} {}: ", self.role, self.path.display())?;
        if self.at == self.path {
            write!(f, "it ")?;
        } else {
            write!(f, "the directory {} above it ", self.at.display())?;
        }
        write!(
            f,
            "(owner {}, mode {}) {}, so another user could change what this process, running as {}, does. Fix: {}",
            self.owner,
            self.mode,
            self.problem,
            self.runs_as,
            self.fixes.join("; ")
        )
    }
}

/// An option file that cannot be read or understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionFileError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl std::error::Error for OptionFileError {}

impl std::fmt::Display for OptionFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file.display(), l, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// A MySQL client error in words, without the driver's debug framing.
pub fn describe(e: &mysql::Error) -> String {
    match e {
        mysql::Error::DriverError(d) => d.to_string(),
        mysql::Error::MySqlError(m) => format!("{} (error {})", m.message, m.code),
        mysql::Error::IoError(io) => io.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_every_character_that_does_not_print_and_nothing_else() {
        // No value can forge a line.
        assert_eq!(printable("a\nDC1-1: DROP"), "a\\nDC1-1: DROP");
        assert_eq!(printable("bell\u{7}"), "bell\\u{7}");
        assert_eq!(printable("a\0b"), "a\\u{0}b");
        assert_eq!(printable("\u{202e}evil\u{2066}"), "\\u{202e}evil\\u{2066}");
        assert_eq!(printable("x\u{2028}y\u{2029}z"), "x\\u{2028}y\\u{2029}z");
        assert_eq!(
            printable("zero\u{200b}width\u{feff}"),
            "zero\\u{200b}width\\u{feff}"
        );
        assert_eq!(printable("soft\u{ad}hyphen"), "soft\\u{ad}hyphen");
        for plain in ["plain ünïcode", "日本語", "10.0.2.1:3306", "emoji 🙂"] {
            assert_eq!(printable(plain), plain);
        }
        // Escaping twice changes nothing more: a backslash prints.
        assert_eq!(printable(&printable("a\nb")), "a\\nb");
    }

    #[test]
    fn printable_lines_keeps_the_lines_and_escapes_the_rest() {
        assert_eq!(
            printable_lines("one\n\u{202e}two\r"),
            "one\n\\u{202e}two\\r"
        );
    }
}
