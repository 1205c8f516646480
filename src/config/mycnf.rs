//! MySQL option files, read the way the `mysql` client reads them: which files ([`Search`],
//! [`Search::chain`]), in which order, which groups, `!include`/`!includedir`, and the client
//! library's quoting; and where each login option came from ([`Provenance`]).
//!
//! Without `--defaults-file` the chain is `/etc/my.cnf`, `/etc/mysql/my.cnf`,
//! `$MYSQL_HOME/my.cnf`, then `--defaults-extra-file`, then `~/.my.cnf`; a missing file of
//! the chain is skipped, a missing `--defaults-file` or `--defaults-extra-file` is an error.
//! Later files override earlier ones option by option, as within a file a later line does.
//! The groups read are the `mysql` client's (MySQL's and MariaDB's) and this tool's own
//! ([`GROUPS`]). Options this tool does not use are ignored, as every MySQL client does.
//!
//! Where this reader is stricter than the client library (docs/configuration.md, "Option files"): a missing
//! `!include` target, an unknown `!` directive and an include cycle are errors, not silently
//! skipped; a relative `!include` is relative to the including file, not the working directory.
//! As the client does, a world-writable file is ignored with a warning.

use crate::db::sql::Secret;
use serde::Serialize;
use std::collections::BTreeMap;
use std::ffi::OsString;
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

/// The groups read: those the `mysql` command-line client reads (MySQL: `mysql`, `client`;
/// MariaDB adds `mariadb-client`, `client-server`, `client-mariadb`), then this tool's own.
/// Within the files, the last value of an option wins whatever its group, as in the client.
pub const GROUPS: [&str; 6] = [
    "mysql",
    "mariadb-client",
    "client",
    "client-server",
    "client-mariadb",
    "pxc-replication-manager",
];

/// How deep `!include` and `!includedir` may nest (the client library's limit).
pub const MAX_DEPTH: usize = 10;

/// Where the default chain looks. [`Search::system`] is the one place that builds it from the
/// environment; tests build one over temporary directories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    /// The global files, read first and in order, each if it exists.
    pub global: Vec<PathBuf>,
    /// The user's file (`~/.my.cnf`), read last if it exists.
    pub user: Option<PathBuf>,
}

/// One file of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainFile {
    pub path: PathBuf,
    /// A missing file is an error (`--defaults-file`, `--defaults-extra-file`), not skipped.
    pub required: bool,
}

impl Search {
    /// The client's chain on this host: `/etc/my.cnf`, `/etc/mysql/my.cnf`,
    /// `$MYSQL_HOME/my.cnf`, and `$HOME/.my.cnf`.
    pub fn system() -> Search {
        Search::from_env(std::env::var_os("HOME"), std::env::var_os("MYSQL_HOME"))
    }

    /// The chain for these values of `$HOME` and `$MYSQL_HOME`. As in the client, a directory
    /// named twice is read once, at its last place.
    pub fn from_env(home: Option<OsString>, mysql_home: Option<OsString>) -> Search {
        let mut dirs: Vec<PathBuf> = vec!["/etc".into(), "/etc/mysql".into()];
        if let Some(h) = mysql_home.filter(|h| !h.is_empty()) {
            let h = PathBuf::from(h);
            let h = h.components().collect::<PathBuf>(); // "/etc/" and "/etc" are one
            dirs.retain(|d| *d != h);
            dirs.push(h);
        }
        Search {
            global: dirs.into_iter().map(|d| d.join("my.cnf")).collect(),
            user: home
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".my.cnf")),
        }
    }

    /// The files to read, in order. `defaults_file` replaces the whole chain (and the extra
    /// file), as the client's `--defaults-file` does; `extra` comes after the global files.
    pub fn chain(&self, defaults_file: Option<&Path>, extra: Option<&Path>) -> Vec<ChainFile> {
        if let Some(f) = defaults_file {
            return vec![ChainFile {
                path: f.to_path_buf(),
                required: true,
            }];
        }
        let optional = |p: &PathBuf| ChainFile {
            path: p.clone(),
            required: false,
        };
        let mut chain: Vec<ChainFile> = self.global.iter().map(optional).collect();
        if let Some(x) = extra {
            chain.push(ChainFile {
                path: x.to_path_buf(),
                required: true,
            });
        }
        chain.extend(self.user.iter().map(optional));
        chain
    }

    /// `~/.mylogin.cnf`, MySQL's obfuscated login file, which this tool does not read.
    pub fn login_file(&self) -> Option<PathBuf> {
        self.user.as_ref().map(|u| u.with_file_name(".mylogin.cnf"))
    }
}

/// Where the login came from: the files read and ignored, and the place of each option used.
/// Never holds a value, so it can be printed (`status`, `run -v`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// Every file read, in the order read, included files at their place.
    pub read: Vec<PathBuf>,
    /// Files skipped because anyone may write them (the client ignores them too).
    pub ignored: Vec<PathBuf>,
    /// Option name (`user`, `password`, ...) -> `file:line` of the value that won.
    pub from: BTreeMap<String, String>,
}

impl Provenance {
    /// One line for a person: the files, then where the options came from.
    pub fn describe(&self) -> String {
        let files = if self.read.is_empty() {
            "none".to_string()
        } else {
            join(&self.read)
        };
        let mut s = format!("option files read: {files}");
        if !self.ignored.is_empty() {
            s.push_str(&format!(
                "; ignored (world-writable): {}",
                join(&self.ignored)
            ));
        }
        if !self.from.is_empty() {
            let from: Vec<String> = self
                .from
                .iter()
                .map(|(k, v)| format!("{k} from {v}"))
                .collect();
            s.push_str(&format!("; {}", from.join(", ")));
        }
        s
    }
}

fn join(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The options of a chain, and where they came from.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    pub options: ClientOptions,
    pub provenance: Provenance,
}

/// Reads a chain of option files, in order (and what they include).
pub fn load(chain: &[ChainFile]) -> Result<Loaded, OptionFileError> {
    let mut r = Reader::default();
    for f in chain {
        r.file(&f.path, !f.required, None)?;
    }
    Ok(Loaded {
        options: r.options,
        provenance: r.provenance,
    })
}

/// Reads one option file (and what it includes); a missing file is an error.
pub fn read(path: &Path) -> Result<ClientOptions, OptionFileError> {
    load(&[ChainFile {
        path: path.to_path_buf(),
        required: true,
    }])
    .map(|l| l.options)
}

/// Where a server option was found in a chain of option files: its value and `file:line`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOption {
    pub value: String,
    pub at: String,
}

/// The groups a MariaDB or MySQL server reads: `mysqld`, `server`, `mariadb`, `mariadbd`,
/// `galera`, and their version-suffixed forms (`mysqld-8.0`, `mariadb-10.11`).
fn server_group(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["mysqld", "server", "mariadb", "mariadbd", "galera"]
        .iter()
        .any(|g| n == *g || n.strip_prefix(g).is_some_and(|rest| rest.starts_with('-')))
}

/// The last value of any of `names` (written with `-` or `_`, `loose-` allowed) in the server
/// groups of a chain of option files (and what they include), as the server reads it.
pub fn server_option(
    chain: &[ChainFile],
    names: &[&str],
) -> Result<Option<ServerOption>, OptionFileError> {
    let mut r = Reader {
        server: Some(names.iter().map(|n| n.replace('_', "-")).collect()),
        ..Reader::default()
    };
    for f in chain {
        r.file(&f.path, !f.required, None)?;
    }
    Ok(r.found)
}

#[derive(Default)]
struct Reader {
    options: ClientOptions,
    provenance: Provenance,
    /// The files being read, outermost first (canonical paths), to refuse cycles.
    open: Vec<PathBuf>,
    /// Reading the server's groups for these options ([`server_option`]), not the client's.
    server: Option<Vec<String>>,
    /// The last of them found.
    found: Option<ServerOption>,
}

/// The `!include` line a file is read for: the including file and its line.
type Site<'a> = Option<(&'a Path, usize)>;

impl Reader {
    fn file(
        &mut self,
        path: &Path,
        missing_ok: bool,
        site: Site<'_>,
    ) -> Result<(), OptionFileError> {
        // An error about an included file names the `!include` line.
        let err = |message: String| match site {
            Some((file, line)) => OptionFileError {
                file: file.to_path_buf(),
                line: Some(line),
                message: format!("{}: {message}", path.display()),
            },
            None => OptionFileError {
                file: path.to_path_buf(),
                line: None,
                message,
            },
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(err(format!(
                    "cannot read the MySQL option file: {e} (check the path and its permissions)"
                )));
            }
        };
        if world_writable(&meta) {
            log::warn!(
                "{}: world-writable MySQL option file ignored, as the mysql client ignores it (chmod o-w it)",
                path.display()
            );
            self.provenance.ignored.push(path.to_path_buf());
            return Ok(());
        }
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if self.open.contains(&canonical) {
            let mut cycle = join(&self.open);
            cycle.push_str(&format!(", then {} again", canonical.display()));
            return Err(err(format!("!include cycle: {cycle}")));
        }
        if self.open.len() > MAX_DEPTH {
            return Err(err(format!("!include nested more than {MAX_DEPTH} deep")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(format!(
                "cannot read the MySQL option file: {e} (check the path and its permissions)"
            ))
        })?;
        self.provenance.read.push(path.to_path_buf());
        self.open.push(canonical);
        let r = self.parse(&text, path);
        self.open.pop();
        r
    }

    fn parse(&mut self, text: &str, path: &Path) -> Result<(), OptionFileError> {
        let at = |line: usize, message: String| OptionFileError {
            file: path.to_path_buf(),
            line: Some(line),
            message,
        };
        // `None` before the first group; `Some(true)` inside a group this tool reads.
        let mut group: Option<bool> = None;
        for (i, raw) in text.lines().enumerate() {
            let lineno = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(directive) = line.strip_prefix('!') {
                self.directive(directive.trim_start(), path, lineno)?;
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                // As the client: the name ends at `]` (anything after it is ignored), trailing
                // blanks inside are dropped, leading ones kept, and case does not matter.
                let Some(end) = rest.find(']') else {
                    return Err(at(lineno, format!("malformed group header {line:?}")));
                };
                let name = rest[..end].trim_end();
                group = Some(match self.server {
                    Some(_) => server_group(name),
                    None => GROUPS.iter().any(|g| g.eq_ignore_ascii_case(name)),
                });
                continue;
            }
            match group {
                None => {
                    return Err(at(
                        lineno,
                        "an option before any [group] (the mysql client refuses this file too)"
                            .into(),
                    ));
                }
                Some(false) => continue,
                Some(true) => {}
            }
            let body = strip_comment(line);
            let (key, value) = match body.split_once('=') {
                Some((k, v)) => (k.trim(), unquote(v.trim())),
                None => (body.trim(), String::new()),
            };
            let key = key.to_ascii_lowercase().replace('_', "-");
            let key = key.strip_prefix("loose-").unwrap_or(&key).to_string();
            if let Some(wanted) = &self.server {
                if wanted.contains(&key) {
                    self.found = Some(ServerOption {
                        value,
                        at: format!("{}:{lineno}", path.display()),
                    });
                }
                continue;
            }
            let o = &mut self.options;
            match key.as_str() {
                "user" => o.user = Some(value),
                "password" => o.password = Some(Secret::new(value)),
                "host" => o.host = Some(value),
                "port" => {
                    o.port = Some(value.parse().map_err(|_| {
                        at(lineno, format!("port = {value:?} is not a port number"))
                    })?)
                }
                "socket" => o.socket = Some(PathBuf::from(value)),
                "ssl-ca" => o.ssl_ca = Some(PathBuf::from(value)),
                "ssl-cert" => o.ssl_cert = Some(PathBuf::from(value)),
                "ssl-key" => o.ssl_key = Some(PathBuf::from(value)),
                _ => continue,
            }
            self.provenance
                .from
                .insert(key, format!("{}:{lineno}", path.display()));
        }
        Ok(())
    }

    /// `!include FILE` or `!includedir DIR` (the text after the `!`).
    fn directive(&mut self, d: &str, path: &Path, lineno: usize) -> Result<(), OptionFileError> {
        let at = |message: String| OptionFileError {
            file: path.to_path_buf(),
            line: Some(lineno),
            message,
        };
        let (keyword, arg) = d
            .split_once(char::is_whitespace)
            .map_or((d, ""), |(k, a)| (k, a.trim()));
        match keyword {
            "include" | "includedir" if arg.is_empty() => {
                Err(at(format!("!{keyword} without a path")))
            }
            "include" => self.file(&relative_to(path, arg), false, Some((path, lineno))),
            "includedir" => {
                let dir = relative_to(path, arg);
                let entries = std::fs::read_dir(&dir).map_err(|e| {
                    at(format!(
                        "!includedir {}: cannot read the directory: {e}",
                        dir.display()
                    ))
                })?;
                // The client reads `*.cnf` (dot files too) in name order.
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.ends_with(".cnf"))
                            && p.is_file()
                    })
                    .collect();
                files.sort();
                for f in files {
                    self.file(&f, false, Some((path, lineno)))?;
                }
                Ok(())
            }
            other => Err(at(format!(
                "unknown directive !{other} (there are !include and !includedir)"
            ))),
        }
    }
}

#[cfg(unix)]
fn world_writable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.is_file() && meta.permissions().mode() & 0o002 != 0
}

#[cfg(not(unix))]
fn world_writable(_: &std::fs::Metadata) -> bool {
    false
}

/// A path in a directive: relative ones are relative to the including file's directory.
fn relative_to(base: &Path, p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() {
        p
    } else {
        base.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// The line without its comment: a `#` outside quotes ends it (also with no blank before it:
/// `password=a#b` is `a`, as in the client). Inside quotes, a backslash escapes the next
/// character.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if (c == '\'' || c == '"') && !escaped {
            match quote {
                None => quote = Some(c),
                Some(q) if q == c => quote = None,
                Some(_) => {}
            }
        }
        if quote.is_none() && c == '#' {
            return &line[..i];
        }
        escaped = quote.is_some() && c == '\\' && !escaped;
    }
    line
}

/// A value as the client library reads it: one pair of matching quotes around the whole value
/// is removed, then `\n \t \r \b \s \" \' \\` are unescaped (quoted or not); another backslash
/// stays as written.
fn unquote(v: &str) -> String {
    let chars: Vec<char> = v.chars().collect();
    let inner: &[char] = match (chars.first(), chars.last()) {
        (Some(&f), Some(&l)) if chars.len() >= 2 && (f == '\'' || f == '"') && f == l => {
            &chars[1..chars.len() - 1]
        }
        _ => &chars,
    };
    let mut out = String::new();
    let mut i = 0;
    while i < inner.len() {
        let c = inner[i];
        if c == '\\' && i + 1 < inner.len() {
            i += 1;
            match inner[i] {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                's' => out.push(' '),
                e @ ('"' | '\'' | '\\') => out.push(e),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_server_option_is_found_in_the_server_groups_only() {
        let d = tempfile::tempdir().unwrap();
        let main = d.path().join("my.cnf");
        std::fs::create_dir_all(d.path().join("conf.d")).unwrap();
        std::fs::write(
            &main,
            "[client]\nskip-slave-start\n[mysqld]\nport = 3306\n!includedir conf.d\n",
        )
        .unwrap();
        let chain = [ChainFile {
            path: main.clone(),
            required: true,
        }];
        let names = ["skip-slave-start", "skip_replica_start"];
        assert_eq!(
            server_option(&chain, &names).unwrap(),
            None,
            "[client] is not read"
        );
        std::fs::write(
            d.path().join("conf.d/galera.cnf"),
            "[galera]\nwsrep_on = ON\n[mariadb-10.11]\nloose_skip_slave_start\n",
        )
        .unwrap();
        let found = server_option(&chain, &names).unwrap().unwrap();
        assert_eq!(found.value, "");
        assert!(found.at.ends_with("conf.d/galera.cnf:4"), "{}", found.at);
        assert!(server_group("mysqld-8.0") && server_group("Server"));
        assert!(!server_group("mysqldump") && !server_group("client-server"));
    }
    use super::*;
    use std::fs;

    /// A directory of option files for one test.
    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Dir {
            Dir(tempfile::tempdir().unwrap())
        }
        fn path(&self, name: &str) -> PathBuf {
            self.0.path().join(name)
        }
        /// Writes `name` (creating its directory), mode 0600 as a password file would be.
        fn write(&self, name: &str, text: &str) -> PathBuf {
            let p = self.path(name);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, text).unwrap();
            set_mode(&p, 0o600);
            p
        }
    }

    fn set_mode(p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn parse(text: &str) -> ClientOptions {
        let d = Dir::new();
        read(&d.write("my.cnf", text)).unwrap()
    }

    fn parse_err(text: &str) -> (OptionFileError, PathBuf) {
        let d = Dir::new();
        let p = d.write("my.cnf", text);
        (read(&p).unwrap_err(), p)
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
    fn reads_the_groups_the_mysql_client_reads_and_matches_them_as_it_does() {
        for g in [
            "mysql",
            "mariadb-client",
            "client",
            "client-server",
            "client-mariadb",
        ] {
            let o = parse(&format!("[{g}]\nuser = from-{g}\n"));
            assert_eq!(o.user, Some(format!("from-{g}")), "[{g}]");
        }
        // Case does not matter, text after `]` is ignored, a leading blank is part of the
        // name (so `[ client]` is another group, as in the client).
        assert_eq!(parse("[Client] # x\nuser=a\n").user.as_deref(), Some("a"));
        assert_eq!(parse("[ client]\nuser=a\n").user, None);
        assert_eq!(parse("[client ]\nuser=a\n").user.as_deref(), Some("a"));
        // The last value wins whatever its group.
        let o = parse("[pxc-replication-manager]\nuser=own\n[client]\nuser=client\n");
        assert_eq!(o.user.as_deref(), Some("client"));
    }

    /// Each value as `my_print_defaults` (MariaDB 10.11) printed it for the same line.
    #[test]
    fn quoting_and_comments_as_the_client_library() {
        for (line, want) in [
            ("password=abc#def", "abc"),
            ("password = \"h#x\" # c", "h#x"),
            ("password='it''s'", "it''s"),
            ("password=\"a\\sb\"", "a b"),
            ("password=un\\squoted", "un quoted"),
            ("password='x\\'y'", "x'y"),
            ("password = '3307'", "3307"),
            ("password=\"a\\\\b\\n\"", "a\\b\n"),
            ("password=a\\qb", "a\\qb"),
            ("password='unterminated", "'unterminated"),
            ("password='", "'"),
            ("password=", ""),
            ("password = spaced out  ", "spaced out"),
            ("loose-password=l", "l"),
        ] {
            let o = parse(&format!("[client]\n{line}\n"));
            assert_eq!(
                o.password.map(|p| p.expose().to_string()).as_deref(),
                Some(want),
                "{line}"
            );
        }
    }

    #[test]
    fn bad_port_names_the_file_and_line() {
        let (e, p) = parse_err("[client]\n\nport=abc\n");
        assert_eq!(e.line, Some(3));
        assert_eq!(
            e.to_string(),
            format!("{}:3: port = \"abc\" is not a port number", p.display())
        );
    }

    #[test]
    fn malformed_files_are_errors_naming_file_and_line() {
        for (text, line, needle) in [
            ("user=a\n[client]\n", 1, "before any [group]"),
            ("[client]\n[client\n", 2, "malformed group header"),
            (
                "[client]\n!inlcude x.cnf\n",
                2,
                "unknown directive !inlcude",
            ),
            ("[client]\n!include\n", 2, "!include without a path"),
            ("[client]\n!include   \n", 2, "!include without a path"),
        ] {
            let (e, p) = parse_err(text);
            assert_eq!(e.file, p, "{text:?}");
            assert_eq!(e.line, Some(line), "{text:?}: {e}");
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_missing_required_file_says_so() {
        let e = read(Path::new("/nonexistent/.my.cnf")).unwrap_err();
        assert_eq!(e.file, PathBuf::from("/nonexistent/.my.cnf"));
        assert!(
            e.to_string().contains("cannot read the MySQL option file"),
            "{e}"
        );
    }

    #[test]
    fn an_unreadable_file_in_the_chain_is_an_error_not_skipped() {
        let d = Dir::new();
        // A directory where a file should be: exists, cannot be read as text.
        fs::create_dir_all(d.path("etc/my.cnf")).unwrap();
        let s = Search {
            global: vec![d.path("etc/my.cnf")],
            user: None,
        };
        let e = load(&s.chain(None, None)).unwrap_err();
        assert_eq!(e.file, d.path("etc/my.cnf"));
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    fn search(d: &Dir) -> Search {
        Search {
            global: vec![d.path("etc/my.cnf"), d.path("etc/mysql/my.cnf")],
            user: Some(d.path("home/.my.cnf")),
        }
    }

    #[test]
    fn the_chain_is_global_then_extra_then_home_and_later_files_win_option_by_option() {
        let d = Dir::new();
        let first = d.write("etc/my.cnf", "[client]\nuser=global\nport=1\nsocket=/s\n");
        let second = d.write("etc/mysql/my.cnf", "[client-server]\nport=2\n");
        let extra = d.write("extra.cnf", "[client]\nuser=extra\n");
        let home = d.write("home/.my.cnf", "[client]\npassword=secret\n");
        let l = load(&search(&d).chain(None, Some(&extra))).unwrap();
        assert_eq!(l.options.user.as_deref(), Some("extra"));
        assert_eq!(l.options.port, Some(2));
        assert_eq!(l.options.socket, Some(PathBuf::from("/s")));
        assert_eq!(l.options.password.unwrap().expose(), "secret");
        assert_eq!(
            l.provenance.read,
            vec![first.clone(), second.clone(), extra.clone(), home.clone()]
        );
        let from = |k: &str| l.provenance.from.get(k).cloned().unwrap();
        assert_eq!(from("user"), format!("{}:2", extra.display()));
        assert_eq!(from("port"), format!("{}:2", second.display()));
        assert_eq!(from("password"), format!("{}:2", home.display()));
        // The description names places, never the password.
        let text = l.provenance.describe();
        assert!(
            text.contains(&format!("password from {}:2", home.display())),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
        // Home after extra: the user's file overrides the extra file.
        d.write("home/.my.cnf", "[client]\nuser=home\n");
        let l = load(&search(&d).chain(None, Some(&extra))).unwrap();
        assert_eq!(l.options.user.as_deref(), Some("home"));
    }

    #[test]
    fn missing_files_of_the_chain_are_skipped_silently() {
        let d = Dir::new();
        let home = d.write("home/.my.cnf", "[client]\nuser=me\n");
        let l = load(&search(&d).chain(None, None)).unwrap();
        assert_eq!(l.options.user.as_deref(), Some("me"));
        assert_eq!(l.provenance.read, vec![home]);
        let none = Search {
            global: vec![d.path("nothing.cnf")],
            user: None,
        };
        let l = load(&none.chain(None, None)).unwrap();
        assert_eq!(l.options, ClientOptions::default());
        assert_eq!(l.provenance.describe(), "option files read: none");
    }

    #[test]
    fn a_missing_extra_file_is_an_error() {
        let d = Dir::new();
        d.write("home/.my.cnf", "[client]\nuser=me\n");
        let e = load(&search(&d).chain(None, Some(&d.path("extra.cnf")))).unwrap_err();
        assert_eq!(e.file, d.path("extra.cnf"));
        assert!(
            e.to_string().contains("cannot read the MySQL option file"),
            "{e}"
        );
    }

    #[test]
    fn defaults_file_reads_only_that_file() {
        let d = Dir::new();
        d.write("etc/my.cnf", "[client]\nport=1\n");
        d.write("home/.my.cnf", "[client]\nuser=home\n");
        let extra = d.write("extra.cnf", "[client]\nuser=extra\n");
        let only = d.write("only.cnf", "[client]\npassword=p\n");
        let chain = search(&d).chain(Some(&only), Some(&extra));
        assert_eq!(
            chain,
            vec![ChainFile {
                path: only.clone(),
                required: true
            }]
        );
        let l = load(&chain).unwrap();
        assert_eq!(l.options.user, None);
        assert_eq!(l.options.port, None);
        assert_eq!(l.provenance.read, vec![only]);
        let e = load(&search(&d).chain(Some(&d.path("gone.cnf")), None)).unwrap_err();
        assert_eq!(e.file, d.path("gone.cnf"));
    }

    #[test]
    fn includes_are_read_in_place_relative_to_the_including_file() {
        let d = Dir::new();
        let inc = d.write("home/conf/pw.cnf", "[client]\npassword=included\nport=9\n");
        for name in ["b.cnf", "a.cnf", "c.ini", "10.cnf", ".h.cnf"] {
            d.write(
                &format!("home/dir/{name}"),
                &format!("[client]\nuser={name}\n"),
            );
        }
        fs::create_dir_all(d.path("home/dir/sub.cnf")).unwrap(); // a directory: not a file
        let home = d.write(
            "home/.my.cnf",
            "[client]\nport=1\n!include conf/pw.cnf\nuser=before-dir\n! includedir dir\n[client]\nhost=after\n",
        );
        let l = load(&search(&d).chain(None, None)).unwrap();
        assert_eq!(l.options.password.unwrap().expose(), "included");
        assert_eq!(l.options.port, Some(9), "the include comes after port=1");
        assert_eq!(
            l.options.user.as_deref(),
            Some("b.cnf"),
            "*.cnf in name order, .ini not read"
        );
        assert_eq!(l.options.host.as_deref(), Some("after"));
        let read: Vec<String> = l
            .provenance
            .read
            .iter()
            .map(|p| p.strip_prefix(d.0.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            read,
            [
                "home/.my.cnf",
                "home/conf/pw.cnf",
                "home/dir/.h.cnf",
                "home/dir/10.cnf",
                "home/dir/a.cnf",
                "home/dir/b.cnf"
            ]
        );
        assert_eq!(
            l.provenance.from["password"],
            format!("{}:2", inc.display())
        );
        assert!(l.provenance.from["host"].starts_with(&home.display().to_string()));
    }

    #[test]
    fn a_missing_include_or_includedir_names_the_line() {
        let d = Dir::new();
        let p = d.write("my.cnf", "[client]\nuser=a\n!include nope.cnf\n");
        let e = read(&p).unwrap_err();
        assert_eq!((e.file.clone(), e.line), (p.clone(), Some(3)));
        assert!(
            e.to_string()
                .contains(&format!("{}: cannot read", d.path("nope.cnf").display())),
            "{e}"
        );
        let p = d.write("my.cnf", "[client]\n!includedir /nonexistent/dir\n");
        let e = read(&p).unwrap_err();
        assert_eq!((e.file.clone(), e.line), (p, Some(2)));
        assert!(e.to_string().contains("cannot read the directory"), "{e}");
    }

    #[test]
    fn an_error_inside_an_included_file_names_that_file() {
        let d = Dir::new();
        let inc = d.write("inc.cnf", "[client]\nport=x\n");
        let p = d.write("my.cnf", "[client]\n!include inc.cnf\n");
        let e = read(&p).unwrap_err();
        assert_eq!((e.file, e.line), (inc, Some(2)));
    }

    #[test]
    fn include_cycles_and_deep_nesting_are_errors() {
        let d = Dir::new();
        let a = d.write("a.cnf", "[client]\n!include b.cnf\n");
        d.write("b.cnf", "[client]\nuser=b\n!include a.cnf\n");
        let e = read(&a).unwrap_err();
        assert_eq!((e.file.clone(), e.line), (d.path("b.cnf"), Some(3)), "{e}");
        assert!(e.to_string().contains("!include cycle"), "{e}");
        // A file including itself through a directory.
        d.write("dir/self.cnf", "[client]\n!includedir .\n");
        let e = read(&d.path("dir/self.cnf")).unwrap_err();
        assert!(e.to_string().contains("!include cycle"), "{e}");
        // A chain deeper than the client's limit, without a cycle.
        for i in 0..=MAX_DEPTH + 1 {
            d.write(
                &format!("deep{i}.cnf"),
                &format!("[client]\n!include deep{}.cnf\n", i + 1),
            );
        }
        d.write(
            &format!("deep{}.cnf", MAX_DEPTH + 2),
            "[client]\nuser=bottom\n",
        );
        let e = read(&d.path("deep0.cnf")).unwrap_err();
        assert!(e.to_string().contains("nested more than 10 deep"), "{e}");
        // At the limit it reads.
        // deep2 is the top file with MAX_DEPTH includes below it.
        let top = 2;
        let o = read(&d.path(&format!("deep{top}.cnf"))).unwrap();
        assert_eq!(o.user.as_deref(), Some("bottom"));
    }

    #[test]
    fn a_world_writable_file_is_ignored_as_the_client_ignores_it() {
        let d = Dir::new();
        let open = d.write("etc/my.cnf", "[client]\nuser=anyone\n");
        set_mode(&open, 0o666);
        let home = d.write("home/.my.cnf", "[client]\npassword=p\n");
        let l = load(&search(&d).chain(None, None)).unwrap();
        assert_eq!(l.options.user, None);
        assert_eq!(l.provenance.read, vec![home]);
        assert_eq!(l.provenance.ignored, vec![open.clone()]);
        assert!(
            l.provenance
                .describe()
                .contains(&format!("ignored (world-writable): {}", open.display()))
        );
    }

    /// The options `my_print_defaults` (the client library's own reader) finds in `file`,
    /// in this tool's terms.
    fn as_the_client_reads(file: &Path) -> ClientOptions {
        let out = std::process::Command::new("my_print_defaults")
            .arg(format!("--defaults-file={}", file.display()))
            .args(GROUPS)
            .output()
            .expect("my_print_defaults runs (install a MariaDB or MySQL client package)");
        assert!(out.status.success(), "{}: {out:?}", file.display());
        let mut o = ClientOptions::default();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let opt = line.strip_prefix("--").unwrap();
            let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
            let k = k.replace('_', "-");
            let v = v.to_string();
            match k.strip_prefix("loose-").unwrap_or(&k) {
                "user" => o.user = Some(v),
                "password" => o.password = Some(Secret::new(v)),
                "host" => o.host = Some(v),
                "port" => o.port = Some(v.parse().unwrap()),
                "socket" => o.socket = Some(v.into()),
                "ssl-ca" => o.ssl_ca = Some(v.into()),
                "ssl-cert" => o.ssl_cert = Some(v.into()),
                "ssl-key" => o.ssl_key = Some(v.into()),
                _ => {}
            }
        }
        o
    }

    /// The same files through this reader and through `my_print_defaults`: the same options.
    /// MariaDB's `my_print_defaults` prints passwords; MySQL's masks them unless told
    /// `--show`, so run it where a MariaDB client is installed.
    #[test]
    #[ignore = "needs my_print_defaults from a MariaDB client package: cargo test -- --ignored mycnf"]
    fn reads_what_the_client_library_reads() {
        let d = Dir::new();
        let inc = d.write(
            "inc/pw.cnf",
            "[client]\npassword = \"from include\"\nport=7\n",
        );
        for name in ["b.cnf", "a.cnf", "c.ini", "10.cnf", ".h.cnf"] {
            d.write(&format!("dir/{name}"), &format!("[client]\nuser={name}\n"));
        }
        let open = d.write("open.cnf", "[client]\nhost=anyone\n");
        set_mode(&open, 0o666);
        let mut cases: Vec<String> = [
            "password=abc#def",
            "password = \"h#x\" # c",
            "password='it''s'",
            "password=\"a\\sb\"",
            "password=un\\squoted",
            "password='x\\'y'",
            "password = '3307'",
            "password=a\\qb",
            "password=\"a\\\\b\"",
            "password='unterminated",
            "password='",
            "password=",
            "password = spaced out  ",
            "loose-password=l",
            "ssl_ca = /etc/ca.pem\nssl-cert='/etc/c.pem'",
        ]
        .iter()
        .map(|l| format!("[client]\n{l}\n"))
        .collect();
        cases.extend(
            [
                "[Client] # x\nuser=a\n",
                "[ client]\nuser=a\n",
                "[client ]\nuser=a\n",
                "[pxc-replication-manager]\nuser=own\n[client]\nuser=client\n[mysqld]\nuser=mysql\n",
                "[client-server]\nsocket=/s\n[mysql]\nhost=h\n[mariadb-client]\nport=3\n[client-mariadb]\nuser=m\n",
                "; comment\n[client]\n  # indented comment\n\tuser = tabbed\t\n",
            ]
            .map(String::from),
        );
        cases.push(format!(
            "[client]\nport=1\nuser=u\n!include {}\nhost=h\n!includedir {}\n!include {}\n",
            inc.display(),
            d.path("dir").display(),
            open.display()
        ));
        for text in cases {
            let p = d.write("my.cnf", &text);
            assert_eq!(read(&p).unwrap(), as_the_client_reads(&p), "{text}");
        }
    }

    #[test]
    fn the_system_chain_comes_from_home_and_mysql_home() {
        let s = Search::from_env(Some("/home/me".into()), None);
        assert_eq!(
            s,
            Search {
                global: vec!["/etc/my.cnf".into(), "/etc/mysql/my.cnf".into()],
                user: Some("/home/me/.my.cnf".into()),
            }
        );
        assert_eq!(s.login_file(), Some(PathBuf::from("/home/me/.mylogin.cnf")));
        let s = Search::from_env(None, Some("/opt/mysql".into()));
        assert_eq!(s.global.last(), Some(&PathBuf::from("/opt/mysql/my.cnf")));
        assert_eq!(s.user, None);
        // A directory already in the list is read once, at its last place.
        let s = Search::from_env(Some("".into()), Some("/etc/".into()));
        assert_eq!(
            s.global,
            vec![PathBuf::from("/etc/mysql/my.cnf"), "/etc/my.cnf".into()]
        );
        assert_eq!(s.user, None);
        let chain = s.chain(None, Some(Path::new("/x.cnf")));
        let paths: Vec<&Path> = chain.iter().map(|c| c.path.as_path()).collect();
        assert_eq!(
            paths,
            [
                Path::new("/etc/mysql/my.cnf"),
                Path::new("/etc/my.cnf"),
                Path::new("/x.cnf")
            ]
        );
        assert!(
            chain
                .iter()
                .all(|c| c.required == (c.path == Path::new("/x.cnf")))
        );
    }
}
