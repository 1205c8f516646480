//! Typed errors. Each says what went wrong and what the operator should do, and maps to one
//! documented exit code (see `EXIT CODES` in `--help` and the README).

use std::fmt;
use std::path::PathBuf;

/// Exit codes, documented in the README and in `--help`.
pub mod exit {
    /// The run completed; nothing failed (a paused run also exits 0).
    pub const OK: i32 = 0;
    /// The run completed, but a link's action or a mail failed: read the log.
    pub const PARTIAL: i32 = 1;
    /// Bad input: command line, configuration, option file, policy or scenario. Nothing was
    /// changed on any server.
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

#[derive(Debug)]
pub enum Error {
    Config(ConfigError),
    OptionFile(OptionFileError),
    /// A policy that does not compile.
    PolicyCompile {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A scenario file for `simulate` that cannot be used.
    Scenario(String),
    /// The local server cannot be reached, or refused the login.
    Connect {
        endpoint: String,
        message: String,
    },
    /// `percona.replication` does not exist.
    StateTableMissing,
    /// `percona.replication` exists but is not one of the known generations.
    StateTableUnrecognised(String),
    /// Another run holds the lock.
    Locked {
        file: PathBuf,
        holder: String,
    },
    /// An I/O error on a file the run needs (lock file, mail directory).
    File {
        file: PathBuf,
        message: String,
    },
    /// A database error during the run; the driver's error is its source.
    Database {
        context: String,
        source: mysql::Error,
    },
    /// The server is of a flavour or version this tool does not support.
    Unsupported(String),
    /// Something about the local node that stops the run (e.g. not a Galera node).
    Node(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_)
            | Error::OptionFile(_)
            | Error::PolicyCompile { .. }
            | Error::Scenario(_) => exit::INPUT,
            Error::Connect { .. } => exit::CONNECT,
            Error::StateTableMissing | Error::StateTableUnrecognised(_) => exit::SCHEMA,
            Error::Locked { .. } => exit::LOCKED,
            Error::File { .. } | Error::Unsupported(_) | Error::Node(_) => exit::INPUT,
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "configuration error: {e}"),
            Error::OptionFile(e) => write!(f, "MySQL option file error: {e}"),
            Error::PolicyCompile {
                file,
                line,
                column,
                message,
            } => write!(f, "{file}:{line}:{column}: {message}"),
            Error::Scenario(m) => write!(f, "scenario error: {m}"),
            Error::Connect { endpoint, message } => write!(
                f,
                "cannot connect to the local server at {endpoint}: {message} (check that the server runs, the [local] section of the config, and the user and password in the MySQL option file)"
            ),
            Error::StateTableMissing => write!(
                f,
                "the state table percona.replication does not exist on this cluster: run `pxc-replication-manager init` on one node (see `init --dry-run` first)"
            ),
            Error::StateTableUnrecognised(m) => write!(
                f,
                "percona.replication is not a state table this tool knows: {m} (expected the seed generation with `cluster`, or the multi-cluster one with `connectionName`)"
            ),
            Error::Locked { file, holder } => write!(
                f,
                "another run holds the lock {} ({holder}); this run exits without doing anything. If no other run is active, the lock is released automatically when its process exits",
                file.display()
            ),
            Error::File { file, message } => write!(f, "{}: {message}", file.display()),
            Error::Database { context, source } => write!(f, "{context}: {}", describe(source)),
            Error::Unsupported(m) => write!(f, "unsupported server: {m}"),
            Error::Node(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Database { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A configuration error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

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

/// An option file that cannot be read or understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionFileError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

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

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::Config(e)
    }
}

impl From<OptionFileError> for Error {
    fn from(e: OptionFileError) -> Error {
        Error::OptionFile(e)
    }
}
