//! The one quoting function, identifier and channel-name validation, and the secret type.
//!
//! Every value that goes into a SQL statement goes through [`quote`]. Names that cannot be
//! quoted as values (schema and column identifiers, replication channel names) are validated
//! here before anything renders them. The live connection turns `NO_BACKSLASH_ESCAPES` off for
//! its session (see `exec/conn.rs`), so the backslash escapes below always mean what they say.

use std::fmt;

/// Quotes a value as a SQL string literal, escaping exactly what `mysql_real_escape_string`
/// escapes. Newlines become `\n`, so a rendered statement always stays on one line.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

pub use crate::error::NameError;

/// A replication channel (MySQL) or connection name (MariaDB). The empty name is the server's
/// default channel, which the seed generation of the state table uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Channel(String);

impl Channel {
    /// The default (unnamed) channel.
    pub fn default_channel() -> Channel {
        Channel(String::new())
    }

    /// A named channel: 1 to 64 characters from `A-Z a-z 0-9 _ . -`. Both servers allow more,
    /// but these are the characters cluster names use in practice, and keeping to them means a
    /// channel name can never surprise a statement, a log line or a shell.
    pub fn named(name: &str) -> Result<Channel, NameError> {
        if name.is_empty() || name.len() > 64 {
            return Err(NameError::Length(name.to_string()));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(NameError::Character {
                name: name.to_string(),
                bad,
            });
        }
        Ok(Channel(name.to_string()))
    }

    pub fn is_default(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("(default channel)")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// Checks a SQL identifier (schema, table or column name) and returns it backquoted.
/// Only `A-Z a-z 0-9 _` are accepted: identifiers in this tool come from a fixed vocabulary.
pub fn ident(name: &str) -> Result<String, String> {
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!(
            "{name:?} is not a valid identifier here (1 to 64 of A-Z, a-z, 0-9, _)"
        ));
    }
    Ok(format!("`{name}`"))
}

/// A password or other secret. `Debug` and `Display` print `****`, so a secret can never leak
/// into a log line, an error, `status` output or a dry-run by accident; [`Secret::expose`] is
/// the one way to read it.
#[derive(Clone, Default)]
pub struct Secret(String, Option<std::path::PathBuf>);

/// Two secrets are equal when their values are, wherever they were read from.
impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.0 == other.0
    }
}

impl Eq for Secret {}

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into(), None)
    }
    /// A secret read from a file, which [`Secret::file`] names (to check who may read it).
    pub fn from_file(s: impl Into<String>, file: &std::path::Path) -> Secret {
        Secret(s.into(), Some(file.to_path_buf()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The file it was read from; `None` when it was written inline.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.1.as_deref()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Whether a rendered statement shows secrets (to run it) or masks them (to print it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reveal {
    /// The statement will be sent to the server.
    Secrets,
    /// The statement will be printed or logged: secrets appear as `'****'`.
    Masked,
}

impl Reveal {
    pub fn quote_secret(self, s: &Secret) -> String {
        match self {
            Reveal::Secrets => quote(s.expose()),
            Reveal::Masked => "'****'".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_quotes_backslashes_and_control_characters() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's"), r"'it\'s'");
        assert_eq!(quote(r"a\b"), r"'a\\b'");
        assert_eq!(quote("x'; DROP TABLE t; --"), r"'x\'; DROP TABLE t; --'");
        assert_eq!(quote("line1\nline2\r"), r"'line1\nline2\r'");
        assert_eq!(quote("nul\0ctrlz\u{1a}"), r"'nul\0ctrlz\Z'");
        assert_eq!(quote("Zürich ☃"), "'Zürich ☃'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn quote_output_never_contains_an_unescaped_quote_or_newline() {
        for s in ["'", "\\'", "\\\\'", "'''", "\n'", "\\"] {
            let q = quote(s);
            let inner = &q[1..q.len() - 1];
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                assert_ne!(c, '\'', "unescaped quote in {q}");
                assert_ne!(c, '\n');
                if c == '\\' {
                    chars.next();
                }
            }
        }
    }

    #[test]
    fn channel_names_are_validated() {
        assert!(Channel::named("DC1-DC2").is_ok());
        assert!(Channel::named("dc_1.eu-DC2").is_ok());
        assert!(Channel::named("").is_err());
        assert!(Channel::named("DC1 DC2").is_err());
        assert!(Channel::named("a'b").is_err());
        assert!(Channel::named(&"x".repeat(65)).is_err());
        assert!(Channel::default_channel().is_default());
    }

    #[test]
    fn identifiers_are_validated_and_backquoted() {
        assert_eq!(ident("isSlave").unwrap(), "`isSlave`");
        assert!(ident("a`b").is_err());
        assert!(ident("").is_err());
        assert!(ident("drop table").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "**** ****");
        assert_eq!(Reveal::Masked.quote_secret(&s), "'****'");
        assert_eq!(Reveal::Secrets.quote_secret(&s), "'hunter2'");
    }
}
