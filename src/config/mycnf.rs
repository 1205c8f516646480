//! MySQL option files (`~/.my.cnf`, `--defaults-file`): the client credentials and endpoint.
//!
//! Reads the `[client]` group, then the `[pxc-replication-manager]` group (later values win),
//! follows `!include` and `!includedir`, and understands the quoting rules of the MySQL client
//! library. Options this tool does not use are ignored, as every MySQL client does.

use crate::db::sql::Secret;
use std::path::{Path, PathBuf};

/// What an option file says about connecting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientOptions {
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub socket: Option<PathBuf>,
    pub ssl_ca: Option<PathBuf>,
    pub ssl_cert: Option<PathBuf>,
    pub ssl_key: Option<PathBuf>,
}

pub use crate::error::OptionFileError;

const GROUPS: [&str; 2] = ["client", "pxc-replication-manager"];

/// Reads an option file (and what it includes).
pub fn read(path: &Path) -> Result<ClientOptions, OptionFileError> {
    let mut opts = ClientOptions::default();
    read_into(path, &mut opts, 0)?;
    Ok(opts)
}

fn read_into(path: &Path, opts: &mut ClientOptions, depth: usize) -> Result<(), OptionFileError> {
    let err = |line: Option<usize>, message: String| OptionFileError {
        file: path.to_path_buf(),
        line,
        message,
    };
    if depth > 8 {
        return Err(err(None, "!include nested more than 8 deep".into()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        err(
            None,
            format!("cannot read the MySQL option file: {e} (check the path and its permissions)"),
        )
    })?;
    parse_into(&text, path, opts, depth)
}

fn parse_into(
    text: &str,
    path: &Path,
    opts: &mut ClientOptions,
    depth: usize,
) -> Result<(), OptionFileError> {
    let mut in_group = false;
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("!includedir") {
            let dir = resolve(path, rest.trim());
            let mut entries: Vec<PathBuf> = match std::fs::read_dir(&dir) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("cnf")))
                    .collect(),
                Err(_) => Vec::new(), // like the client library: a missing directory is skipped
            };
            entries.sort();
            for p in entries {
                read_into(&p, opts, depth + 1)?;
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("!include") {
            read_into(&resolve(path, rest.trim()), opts, depth + 1)?;
            continue;
        }
        if let Some(group) = line.strip_prefix('[') {
            let Some(name) = group.strip_suffix(']') else {
                return Err(OptionFileError {
                    file: path.to_path_buf(),
                    line: Some(lineno),
                    message: format!("malformed group header {line:?}"),
                });
            };
            in_group = GROUPS.contains(&name.trim().to_ascii_lowercase().as_str());
            continue;
        }
        if !in_group {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), unquote(v.trim())),
            None => (line, String::new()),
        };
        let key = key.to_ascii_lowercase().replace('_', "-");
        match key.as_str() {
            "user" => opts.user = Some(value),
            "password" => opts.password = Some(Secret::new(value)),
            "host" => opts.host = Some(value),
            "port" => {
                opts.port = Some(value.parse().map_err(|_| OptionFileError {
                    file: path.to_path_buf(),
                    line: Some(lineno),
                    message: format!("port = {value:?} is not a port number"),
                })?)
            }
            "socket" => opts.socket = Some(PathBuf::from(value)),
            "ssl-ca" => opts.ssl_ca = Some(PathBuf::from(value)),
            "ssl-cert" => opts.ssl_cert = Some(PathBuf::from(value)),
            "ssl-key" => opts.ssl_key = Some(PathBuf::from(value)),
            _ => {}
        }
    }
    Ok(())
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() {
        p
    } else {
        base.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// Strips matching quotes and applies the client library's escapes inside them; an unquoted
/// value ends at an unescaped `#` comment.
fn unquote(v: &str) -> String {
    let bytes: Vec<char> = v.chars().collect();
    if bytes.len() >= 2 && (bytes[0] == '\'' || bytes[0] == '"') {
        let q = bytes[0];
        let mut out = String::new();
        let mut i = 1;
        while i < bytes.len() && bytes[i] != q {
            if bytes[i] == '\\' && i + 1 < bytes.len() {
                i += 1;
                out.push(match bytes[i] {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'b' => '\u{8}',
                    's' => ' ',
                    c => c,
                });
            } else {
                out.push(bytes[i]);
            }
            i += 1;
        }
        return out;
    }
    let end = v.find(" #").or_else(|| v.find("\t#")).unwrap_or(v.len());
    v[..end].trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ClientOptions {
        let mut o = ClientOptions::default();
        parse_into(text, Path::new("/x/my.cnf"), &mut o, 0).unwrap();
        o
    }

    #[test]
    fn reads_client_and_own_groups_and_ignores_the_rest() {
        let o = parse(
            "# comment\n[mysqld]\nuser=mysql\n[client]\nuser = admin\npassword='p#ss w\\'d'\nsocket=/run/mysqld/mysqld.sock\nport=3307\nssl_ca=/etc/ca.pem\n[pxc-replication-manager]\nhost = 10.0.0.1 # trailing comment\n",
        );
        assert_eq!(o.user.as_deref(), Some("admin"));
        assert_eq!(o.password.unwrap().expose(), "p#ss w'd");
        assert_eq!(o.host.as_deref(), Some("10.0.0.1"));
        assert_eq!(o.port, Some(3307));
        assert_eq!(o.socket, Some(PathBuf::from("/run/mysqld/mysqld.sock")));
        assert_eq!(o.ssl_ca, Some(PathBuf::from("/etc/ca.pem")));
    }

    #[test]
    fn bad_port_names_the_line() {
        let mut o = ClientOptions::default();
        let e =
            parse_into("[client]\n\nport=abc\n", Path::new("/x/my.cnf"), &mut o, 0).unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(
            e.to_string(),
            "/x/my.cnf:3: port = \"abc\" is not a port number"
        );
    }

    #[test]
    fn unreadable_file_says_so() {
        let e = read(Path::new("/nonexistent/.my.cnf")).unwrap_err();
        assert!(e.to_string().contains("cannot read the MySQL option file"));
    }
}
