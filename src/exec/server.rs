//! What the manager knows about servers before it touches them: the node's wsrep facts
//! ([`NodeFacts`]), how to log in to the local server ([`Login`]: option file, timeouts, TLS),
//! and read-only probes of remote source candidates ([`probe_source`]): do they answer, are
//! they Primary and Synced, which GTID domain do they write.
//!
//! Nothing here changes a server. The connections that can write live in the executor
//! (`exec/conn.rs`), the one writer.

use crate::config::topology::Link;
use crate::config::{Endpoint, Local, LocalTls, SourceAddr};
use crate::config::{mycnf, trust};
use crate::db::flavor::Flavor;
use crate::db::sql::Secret;
use crate::error::{Error, Result};
use crate::memory::Held;
use mysql::prelude::Queryable;
use mysql::{ClientIdentity, Conn, OptsBuilder, SslOpts, Value};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `wsrep_cluster_status`: whether the node is in its cluster's Primary component.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(into = "String", from = "String")]
pub enum ClusterStatus {
    Primary,
    NonPrimary,
    Disconnected,
    /// Anything else the server says, kept as said.
    Other(String),
}

impl ClusterStatus {
    pub const KNOWN: [ClusterStatus; 3] = [
        ClusterStatus::Primary,
        ClusterStatus::NonPrimary,
        ClusterStatus::Disconnected,
    ];

    pub fn parse(s: &str) -> ClusterStatus {
        match s {
            "Primary" => ClusterStatus::Primary,
            "non-Primary" => ClusterStatus::NonPrimary,
            "Disconnected" => ClusterStatus::Disconnected,
            o => ClusterStatus::Other(o.to_string()),
        }
    }

    /// As the server writes it.
    pub fn as_str(&self) -> &str {
        match self {
            ClusterStatus::Primary => "Primary",
            ClusterStatus::NonPrimary => "non-Primary",
            ClusterStatus::Disconnected => "Disconnected",
            ClusterStatus::Other(s) => s,
        }
    }
}

impl std::fmt::Display for ClusterStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ClusterStatus> for String {
    fn from(c: ClusterStatus) -> String {
        c.as_str().to_string()
    }
}

impl From<String> for ClusterStatus {
    fn from(s: String) -> ClusterStatus {
        ClusterStatus::parse(&s)
    }
}

/// `wsrep_local_state`: where the node is in joining its cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(into = "i64", from = "i64")]
pub enum LocalState {
    Joining,
    Donor,
    Joined,
    Synced,
    /// Another code (0: not started or cut off).
    Other(i64),
}

impl LocalState {
    pub const KNOWN: [LocalState; 4] = [
        LocalState::Joining,
        LocalState::Donor,
        LocalState::Joined,
        LocalState::Synced,
    ];

    pub fn from_code(code: i64) -> LocalState {
        match code {
            1 => LocalState::Joining,
            2 => LocalState::Donor,
            3 => LocalState::Joined,
            4 => LocalState::Synced,
            o => LocalState::Other(o),
        }
    }

    pub fn code(self) -> i64 {
        match self {
            LocalState::Joining => 1,
            LocalState::Donor => 2,
            LocalState::Joined => 3,
            LocalState::Synced => 4,
            LocalState::Other(o) => o,
        }
    }

    /// Its name, as `wsrep_local_state_comment` usually says it.
    pub fn name(self) -> &'static str {
        match self {
            LocalState::Joining => "Joining",
            LocalState::Donor => "Donor",
            LocalState::Joined => "Joined",
            LocalState::Synced => "Synced",
            LocalState::Other(_) => "Unknown",
        }
    }
}

impl From<LocalState> for i64 {
    fn from(s: LocalState) -> i64 {
        s.code()
    }
}

impl From<i64> for LocalState {
    fn from(code: i64) -> LocalState {
        LocalState::from_code(code)
    }
}

impl std::fmt::Display for LocalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// What the node says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeFacts {
    /// This node's name in the state table (`wsrep_node_name`, or the config's `node`).
    pub name: String,
    /// `wsrep_cluster_name`, or the config's `cluster`.
    pub cluster: String,
    pub cluster_status: ClusterStatus,
    pub local_state: LocalState,
    pub local_state_comment: String,
    /// `wsrep_local_index`: this node's position in the cluster, the default election order.
    pub local_index: i64,
    pub cluster_size: i64,
    pub flavor: Flavor,
    /// MariaDB: `wsrep_gtid_domain_id`.
    pub gtid_domain_id: Option<u32>,
    /// `gtid_binlog_pos` (MariaDB) or `gtid_executed` (MySQL).
    pub gtid_position: String,
    /// From the config, `percona.weight`, or 0.
    pub weight: i64,
    /// `wsrep_node_incoming_address`, unless it is `AUTO`.
    pub incoming_address: Option<String>,
}

impl NodeFacts {
    /// This node as the state table knows it, reached by peers at `address`.
    pub fn me(&self, address: Option<String>) -> crate::db::state::Me {
        crate::db::state::Me {
            host: self.name.clone(),
            local_index: self.local_index,
            weight: self.weight,
            address,
        }
    }

    /// In the Primary component: the state table can be written.
    pub fn is_primary(&self) -> bool {
        self.cluster_status == ClusterStatus::Primary
    }

    /// Primary and Synced (4) or Donor (2): the only states in which the node acts.
    pub fn can_act(&self) -> bool {
        self.is_primary() && matches!(self.local_state, LocalState::Donor | LocalState::Synced)
    }

    /// Builds the facts from `SHOW GLOBAL STATUS` and `SHOW GLOBAL VARIABLES` (name -> value).
    pub fn from_status(
        status: &HashMap<String, String>,
        vars: &HashMap<String, String>,
        local: &Local,
    ) -> Result<NodeFacts> {
        let flavor = Flavor::detect(
            vars.get("version").map(String::as_str).unwrap_or(""),
            vars.get("version_comment")
                .map(String::as_str)
                .unwrap_or(""),
        )
        .map_err(Error::Unsupported)?;
        if vars.get("wsrep_on").map(|v| v.eq_ignore_ascii_case("ON")) != Some(true) {
            return Err(Error::NotGaleraNode(
                "this server is not a Galera node (wsrep_on is not ON); pxc-replication-manager runs on the nodes of PXC or MariaDB Galera clusters",
            ));
        }
        let int = |k: &str| status.get(k).and_then(|v| v.parse::<i64>().ok());
        let cluster = match &local.cluster {
            Some(c) => c.clone(),
            None => vars.get("wsrep_cluster_name").cloned().unwrap_or_default(),
        };
        let name = match &local.node {
            Some(n) => n.clone(),
            None => vars
                .get("wsrep_node_name")
                .filter(|n| !n.is_empty())
                .or_else(|| vars.get("hostname"))
                .cloned()
                .unwrap_or_default(),
        };
        if cluster.is_empty() || name.is_empty() {
            return Err(Error::NotGaleraNode(
                "wsrep_cluster_name or wsrep_node_name is empty; set them in the server config or as `cluster`/`node` in [local]",
            ));
        }
        Ok(NodeFacts {
            name,
            cluster,
            cluster_status: status
                .get("wsrep_cluster_status")
                .map_or(ClusterStatus::Disconnected, |s| ClusterStatus::parse(s)),
            local_state: LocalState::from_code(int("wsrep_local_state").unwrap_or(0)),
            local_state_comment: status
                .get("wsrep_local_state_comment")
                .cloned()
                .unwrap_or_default(),
            local_index: int("wsrep_local_index").unwrap_or(-1),
            cluster_size: int("wsrep_cluster_size").unwrap_or(0),
            gtid_domain_id: if flavor.is_mariadb() {
                vars.get("wsrep_gtid_domain_id")
                    .and_then(|v| v.parse().ok())
            } else {
                None
            },
            gtid_position: vars
                .get(if flavor.is_mariadb() {
                    "gtid_binlog_pos"
                } else {
                    "gtid_executed"
                })
                .cloned()
                .unwrap_or_default()
                .replace('\n', ""),
            flavor,
            weight: local.weight.unwrap_or(0),
            incoming_address: vars
                .get("wsrep_node_incoming_address")
                .filter(|a| usable_address(a))
                .cloned(),
        })
    }
}

/// How to log in: endpoint and credentials, resolved from the config and the option files.
#[derive(Clone, Debug)]
pub struct Login {
    pub endpoint: Endpoint,
    pub user: String,
    pub password: Option<Secret>,
    pub tls: Option<LocalTls>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// Which option files were read and where each option came from (no values).
    pub options_from: mycnf::Provenance,
}

/// The option file the login's password comes from, if another user owns it, is refused (a
/// world-writable one was never read: [`mycnf`] ignores it as the client does); one every
/// user may read is a warning (once a day in a daemon).
fn password_file_trusted(from: &mycnf::Provenance) -> Result<()> {
    let Some((file, _line)) = from.from.get("password").and_then(|s| s.rsplit_once(':')) else {
        return Ok(());
    };
    match trust::check_secret("MySQL option file", Path::new(file))? {
        trust::SecretVerdict::Private => {}
        trust::SecretVerdict::ReadableByOthers(w) => trust::warn_daily(&w),
    }
    Ok(())
}

impl Login {
    /// Resolves the login: the config's `[local]` wins over the option files, which win over
    /// the usual socket paths. The option files are the mysql client's chain on this host
    /// ([`mycnf::Search::system`]); `defaults_file` (from `--defaults-file`) replaces the
    /// config's.
    pub fn resolve(local: &Local, defaults_file: Option<&Path>) -> Result<Login> {
        Login::resolve_in(local, defaults_file, &mycnf::Search::system())
    }

    /// As [`Login::resolve`], over the given search paths.
    fn resolve_in(
        local: &Local,
        defaults_file: Option<&Path>,
        search: &mycnf::Search,
    ) -> Result<Login> {
        let file: Option<PathBuf> = defaults_file
            .map(Path::to_path_buf)
            .or_else(|| local.defaults_file.clone());
        let extra = local.defaults_extra_file.as_deref();
        if let (Some(f), Some(x)) = (&file, extra) {
            log::warn!(
                "the MySQL option file {} is not read: the defaults file {} is the only one read, as with the mysql client",
                x.display(),
                f.display()
            );
        }
        let loaded = mycnf::load(&search.chain(file.as_deref(), extra))?;
        let opts = loaded.options;
        // Where the options came from, less those the config's `[local]` overrides: the
        // report names only what the login uses.
        let mut options_from = loaded.provenance;
        let overridden: &[&str] = match (local.endpoint.is_some(), local.tls.is_some()) {
            (true, true) => &["socket", "host", "port", "ssl-ca", "ssl-cert", "ssl-key"],
            (true, false) => &["socket", "host", "port"],
            (false, true) => &["ssl-ca", "ssl-cert", "ssl-key"],
            (false, false) => &[],
        };
        options_from
            .from
            .retain(|k, _| !overridden.contains(&k.as_str()));
        password_file_trusted(&options_from)?;
        if opts.password.is_none()
            && file.is_none()
            && let Some(l) = search.login_file().filter(|l| l.exists())
        {
            log::warn!(
                "{} exists but is not read (mysql_config_editor's obfuscated file, MySQL only); put the password in an option file, e.g. ~/.my.cnf",
                l.display()
            );
        }
        let endpoint = match &local.endpoint {
            Some(e) => e.clone(),
            None => match (&opts.socket, &opts.host) {
                (_, Some(h)) if h != "localhost" => Endpoint::Tcp {
                    host: h.clone(),
                    port: opts.port.unwrap_or(3306),
                },
                (Some(s), _) => Endpoint::Socket(s.clone()),
                _ => default_endpoint(),
            },
        };
        let tls = local.tls.clone().or_else(|| {
            (opts.ssl_ca.is_some() || opts.ssl_cert.is_some()).then(|| LocalTls {
                ca: opts.ssl_ca.clone(),
                cert: opts.ssl_cert.clone(),
                key: opts.ssl_key.clone(),
                verify: true,
            })
        });
        let login = Login {
            endpoint,
            user: opts
                .user
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "root".into()),
            password: opts.password,
            tls,
            connect_timeout: local.connect_timeout,
            read_timeout: local.read_timeout,
            options_from,
        };
        log::debug!("login {}", login.source());
        Ok(login)
    }

    /// Where the login came from, for a person: user, endpoint, the option files read and the
    /// place of each option. Never the password.
    pub fn source(&self) -> String {
        let user_from = if self.options_from.from.contains_key("user") {
            ""
        } else {
            " (not in an option file: $USER, else root)"
        };
        format!(
            "{:?}{user_from} to {}, {}; {}",
            self.user,
            self.endpoint,
            if self.password.is_some() {
                "with a password"
            } else {
                "without a password"
            },
            self.options_from.describe()
        )
    }
}

fn default_endpoint() -> Endpoint {
    for s in [
        "/run/mysqld/mysqld.sock",
        "/var/run/mysqld/mysqld.sock",
        "/var/lib/mysql/mysql.sock",
        "/tmp/mysql.sock",
    ] {
        if Path::new(s).exists() {
            return Endpoint::Socket(s.into());
        }
    }
    Endpoint::Tcp {
        host: "127.0.0.1".into(),
        port: 3306,
    }
}

pub(crate) fn ssl_opts(tls: &LocalTls) -> SslOpts {
    let mut o = SslOpts::default()
        .with_danger_accept_invalid_certs(!tls.verify)
        .with_danger_skip_domain_validation(!tls.verify);
    if let Some(ca) = &tls.ca {
        o = o.with_root_cert_path(Some(ca.clone()));
    }
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        o = o.with_client_identity(Some(ClientIdentity::new(cert.clone(), key.clone())));
    }
    o
}

/// The variables a node's facts need on every flavour.
const COMMON_VARIABLES: &[&str] = &[
    "version",
    "version_comment",
    "hostname",
    "wsrep_on",
    "wsrep_cluster_name",
    "wsrep_node_name",
    "wsrep_node_incoming_address",
];
/// What MariaDB Galera adds to them.
pub const MARIADB_VARIABLES: &[&str] = &["wsrep_gtid_domain_id", "gtid_binlog_pos"];
/// What PXC (MySQL) adds to them.
pub const MYSQL_VARIABLES: &[&str] = &["gtid_executed"];

/// The common variables, then a flavour's own.
pub fn variable_names(flavour: &[&'static str]) -> Vec<&'static str> {
    COMMON_VARIABLES.iter().chain(flavour).copied().collect()
}

/// `SHOW GLOBAL VARIABLES` for every variable of every flavour: what a server that has not
/// all of one flavour's answers with.
pub fn show_variables_query() -> String {
    let names: Vec<String> = variable_names(MARIADB_VARIABLES)
        .into_iter()
        .chain(MYSQL_VARIABLES.iter().copied())
        .map(|n| format!("'{n}'"))
        .collect();
    format!(
        "SHOW GLOBAL VARIABLES WHERE Variable_name IN ({})",
        names.join(", ")
    )
}

/// `SELECT @@GLOBAL.a, @@GLOBAL.b, ...`: names from the constants above only.
pub fn variables_query(names: &[&str]) -> String {
    let cols: Vec<String> = names.iter().map(|n| format!("@@GLOBAL.{n}")).collect();
    format!("SELECT {}", cols.join(", "))
}

/// The values of a [`variables_query`] by name, as `SHOW GLOBAL VARIABLES` gives them: a
/// boolean is `ON`/`OFF` there and 1/0 here, and NULL is empty there.
pub fn show_valued(
    names: &[&str],
    values: impl Iterator<Item = Option<String>>,
) -> HashMap<String, String> {
    names
        .iter()
        .zip(values)
        .map(|(name, v)| {
            let v = v.unwrap_or_default();
            let v = match (*name, v.as_str()) {
                ("wsrep_on", "1") => "ON".to_string(),
                ("wsrep_on", "0") => "OFF".to_string(),
                _ => v,
            };
            (name.to_string(), v)
        })
        .collect()
}

/// Turns a cell into text; NULL is `None`.
pub fn cell(v: &Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

/// An address a peer can connect to: not Galera's placeholders.
pub fn usable_address(a: &str) -> bool {
    !a.is_empty() && !a.eq_ignore_ascii_case("AUTO") && !a.starts_with("0.0.0.0")
}

pub use crate::error::{ProbeError, describe};

/// What a read-only login to a source candidate found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Probe {
    /// MariaDB: the candidate's `wsrep_gtid_domain_id`.
    pub gtid_domain_id: Option<u32>,
    /// `wsrep_cluster_status`; `None` on a server without Galera.
    pub cluster_status: Option<ClusterStatus>,
    /// `wsrep_local_state` and its comment.
    pub local_state: Option<LocalState>,
    pub local_state_comment: Option<String>,
}

impl Probe {
    /// A source worth replicating from: in its cluster's Primary component and Synced, so it
    /// receives every write of its cluster. A server without Galera has nothing to check.
    pub fn health(&self) -> std::result::Result<(), String> {
        match (&self.cluster_status, self.local_state) {
            (None, _) => Ok(()),
            (Some(ClusterStatus::Primary), Some(LocalState::Synced)) => Ok(()),
            (Some(c), st) => Err(format!(
                "answers, but is {c}/{} (a source must be Primary and Synced)",
                self.local_state_comment
                    .clone()
                    .or(st.map(|s| format!("state {s}")))
                    .unwrap_or_else(|| "unknown".into())
            )),
        }
    }
}

/// Opens a connection to a source candidate with the link's credentials, for probes.
pub fn open_source(
    link: &Link,
    source: &SourceAddr,
    timeout: Duration,
) -> std::result::Result<Held<Conn>, ProbeError> {
    let mut b = OptsBuilder::new()
        .ip_or_hostname(Some(source.host.clone()))
        .tcp_port(source.port)
        .user(Some(link.user.clone()))
        .pass(Some(link.password.expose().to_string()))
        .tcp_connect_timeout(Some(timeout))
        .read_timeout(Some(timeout))
        .write_timeout(Some(timeout))
        .prefer_socket(false)
        .stmt_cache_size(0)
        .max_allowed_packet(Some(16 << 20));
    if let Some(t) = &link.tls {
        b = b.ssl_opts(Some(ssl_opts(&LocalTls {
            ca: t.ca.as_ref().map(PathBuf::from),
            cert: t.cert.as_ref().map(PathBuf::from),
            key: t.key.as_ref().map(PathBuf::from),
            verify: t.verify_server_cert,
        })));
    }
    Held::make(|| Conn::new(b)).map_err(ProbeError::Login)
}

/// `@@server_id` on an open connection (a source's, for `check`), if it can be read.
pub fn server_id_on(conn: &mut Conn) -> Option<u64> {
    conn.query_first::<u64, _>("SELECT @@server_id")
        .ok()
        .flatten()
}

/// Logs in to a source candidate and reads whether it is worth replicating from.
pub fn probe_source(
    link: &Link,
    source: &SourceAddr,
    timeout: Duration,
) -> std::result::Result<Probe, ProbeError> {
    probe_on(&mut *open_source(link, source, timeout)?)
}

/// Reads, on an open connection to a source candidate (the link's replication login), its GTID
/// domain and its place in its cluster. Reads only: `SHOW GLOBAL STATUS` and `SELECT @@`,
/// which a replication user may run, also on a node cut off from its cluster.
pub fn probe_on(conn: &mut Conn) -> std::result::Result<Probe, ProbeError> {
    let domain: Option<Option<String>> = conn
        .query_first("SELECT IF(@@version LIKE '%MariaDB%', @@wsrep_gtid_domain_id, NULL)")
        .map_err(ProbeError::Query)?;
    let status: HashMap<String, String> = conn
        .query::<(String, String), _>(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status', 'wsrep_local_state', 'wsrep_local_state_comment')",
        )
        .map_err(ProbeError::Query)?
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    Ok(Probe {
        gtid_domain_id: domain.flatten().and_then(|d| d.parse().ok()),
        cluster_status: status
            .get("wsrep_cluster_status")
            .map(|s| ClusterStatus::parse(s)),
        local_state: status
            .get("wsrep_local_state")
            .and_then(|v| v.parse().ok())
            .map(LocalState::from_code),
        local_state_comment: status.get("wsrep_local_state_comment").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn maps(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn galera_vars() -> HashMap<String, String> {
        maps(&[
            ("version", "10.11.6-MariaDB-log"),
            ("wsrep_on", "ON"),
            ("wsrep_cluster_name", "DC1"),
            ("wsrep_node_name", "DC1-2"),
            ("wsrep_gtid_domain_id", "1"),
            ("gtid_binlog_pos", "1-1-10,2-2-7"),
        ])
    }

    /// `[local]` of a config whose file sits in `dir`.
    fn local(dir: &Path, text: &str) -> Local {
        Config::parse(&format!("[local]\n{text}"), &dir.join("site.toml"))
            .unwrap()
            .local
    }

    #[test]
    fn the_login_comes_from_the_chain_and_the_extra_file_of_the_config() {
        let d = tempfile::tempdir().unwrap();
        let w = |name: &str, text: &str| {
            let p = d.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            p
        };
        w("etc/my.cnf", "[client-server]\nsocket = /run/x.sock\n");
        w(
            "home/.my.cnf",
            "[client]\nuser = base\n!include secret.cnf\n",
        );
        w("home/secret.cnf", "[client]\npassword = \"s3cret\"\n");
        w("extra.cnf", "[client]\nuser = from-extra\nport = 3307\n");
        let search = mycnf::Search {
            global: vec![d.path().join("etc/my.cnf")],
            user: Some(d.path().join("home/.my.cnf")),
        };
        // Without the extra file: socket from the global file, user and password from home.
        let l = Login::resolve_in(&local(d.path(), ""), None, &search).unwrap();
        assert_eq!(l.endpoint, Endpoint::Socket("/run/x.sock".into()));
        assert_eq!(l.user, "base");
        assert_eq!(l.password.as_ref().unwrap().expose(), "s3cret");
        let src = l.source();
        assert!(!src.contains("s3cret"), "{src}");
        assert!(src.contains("with a password"), "{src}");
        assert!(
            src.contains(&format!(
                "password from {}:2",
                d.path().join("home/secret.cnf").display()
            )),
            "{src}"
        );
        // The config's extra file (relative to the config) comes before ~/.my.cnf, so home's
        // user wins and the extra file's port stays.
        let l = Login::resolve_in(
            &local(d.path(), "defaults_extra_file = \"extra.cnf\""),
            None,
            &search,
        )
        .unwrap();
        assert_eq!(l.user, "base");
        assert_eq!(
            l.options_from.from["port"],
            format!("{}:3", d.path().join("extra.cnf").display())
        );
        assert_eq!(l.options_from.read.len(), 4);
        // --defaults-file reads that file alone, and the config's endpoint wins over it.
        let l = Login::resolve_in(
            &local(d.path(), "port = 3310\ndefaults_extra_file = \"extra.cnf\""),
            Some(&d.path().join("extra.cnf")),
            &search,
        )
        .unwrap();
        assert_eq!(l.user, "from-extra");
        assert!(l.password.is_none());
        assert_eq!(
            l.endpoint,
            Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 3310
            }
        );
        assert_eq!(l.options_from.read, vec![d.path().join("extra.cnf")]);
        // The report names only what the login uses: not the file's port, which the config's
        // endpoint overrides.
        assert!(
            !l.options_from.from.contains_key("port"),
            "{:?}",
            l.options_from.from
        );
        assert!(l.options_from.from.contains_key("user"));
        // A missing extra file is an error naming it.
        let e = Login::resolve_in(
            &local(d.path(), "defaults_extra_file = \"gone.cnf\""),
            None,
            &search,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains(&format!(
                "{}: cannot read",
                d.path().join("gone.cnf").display()
            )),
            "{e}"
        );
    }

    #[test]
    fn the_variables_are_read_in_one_select_per_flavour() {
        assert_eq!(
            variables_query(&variable_names(MARIADB_VARIABLES)),
            "SELECT @@GLOBAL.version, @@GLOBAL.version_comment, @@GLOBAL.hostname, @@GLOBAL.wsrep_on, @@GLOBAL.wsrep_cluster_name, @@GLOBAL.wsrep_node_name, @@GLOBAL.wsrep_node_incoming_address, @@GLOBAL.wsrep_gtid_domain_id, @@GLOBAL.gtid_binlog_pos"
        );
        assert_eq!(
            variables_query(&variable_names(MYSQL_VARIABLES)),
            "SELECT @@GLOBAL.version, @@GLOBAL.version_comment, @@GLOBAL.hostname, @@GLOBAL.wsrep_on, @@GLOBAL.wsrep_cluster_name, @@GLOBAL.wsrep_node_name, @@GLOBAL.wsrep_node_incoming_address, @@GLOBAL.gtid_executed"
        );
    }

    #[test]
    fn a_server_of_no_known_flavour_is_asked_with_show_for_every_variable() {
        assert_eq!(
            show_variables_query(),
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('version', 'version_comment', 'hostname', 'wsrep_on', 'wsrep_cluster_name', 'wsrep_node_name', 'wsrep_node_incoming_address', 'wsrep_gtid_domain_id', 'gtid_binlog_pos', 'gtid_executed')"
        );
    }

    #[test]
    fn selected_variables_are_valued_as_show_values_them() {
        let v = show_valued(
            &["wsrep_on", "wsrep_node_name", "gtid_executed"],
            [Some("1".into()), Some("DC1-1".into()), None].into_iter(),
        );
        assert_eq!(v["wsrep_on"], "ON");
        assert_eq!(v["wsrep_node_name"], "DC1-1");
        assert_eq!(v["gtid_executed"], "");
        let off = show_valued(&["wsrep_on"], [Some("0".into())].into_iter());
        assert_eq!(off["wsrep_on"], "OFF");
    }

    #[test]
    fn facts_from_a_synced_primary_node() {
        let status = maps(&[
            ("wsrep_cluster_status", "Primary"),
            ("wsrep_local_state", "4"),
            ("wsrep_local_state_comment", "Synced"),
            ("wsrep_local_index", "1"),
            ("wsrep_cluster_size", "3"),
        ]);
        let f = NodeFacts::from_status(&status, &galera_vars(), &Config::defaults().local).unwrap();
        assert_eq!((f.name.as_str(), f.cluster.as_str()), ("DC1-2", "DC1"));
        assert!(f.can_act());
        assert_eq!(f.gtid_domain_id, Some(1));
        assert_eq!(f.gtid_position, "1-1-10,2-2-7");
        assert_eq!(f.local_index, 1);
    }

    #[test]
    fn only_primary_and_synced_or_donor_nodes_act() {
        for (cs, st, ok) in [
            ("Primary", "4", true),
            ("Primary", "2", true),
            ("Primary", "3", false),
            ("Primary", "1", false),
            ("non-Primary", "4", false),
            ("Disconnected", "0", false),
        ] {
            let status = maps(&[("wsrep_cluster_status", cs), ("wsrep_local_state", st)]);
            let f =
                NodeFacts::from_status(&status, &galera_vars(), &Config::defaults().local).unwrap();
            assert_eq!(f.can_act(), ok, "{cs} {st}");
        }
    }

    #[test]
    fn a_source_must_be_primary_and_synced() {
        let p = |c: Option<&str>, st: Option<i64>| Probe {
            cluster_status: c.map(ClusterStatus::parse),
            local_state: st.map(LocalState::from_code),
            local_state_comment: st.map(|s| if s == 4 { "Synced" } else { "Initialized" }.into()),
            ..Probe::default()
        };
        assert!(p(Some("Primary"), Some(4)).health().is_ok());
        assert!(p(None, None).health().is_ok(), "not a Galera server");
        assert_eq!(
            p(Some("non-Primary"), Some(0)).health().unwrap_err(),
            "answers, but is non-Primary/Initialized (a source must be Primary and Synced)"
        );
        assert!(
            p(Some("Primary"), Some(2)).health().is_err(),
            "a donor is not Synced"
        );
    }

    #[test]
    fn a_server_without_galera_is_refused() {
        let mut vars = galera_vars();
        vars.insert("wsrep_on".into(), "OFF".into());
        let e =
            NodeFacts::from_status(&HashMap::new(), &vars, &Config::defaults().local).unwrap_err();
        assert!(e.to_string().contains("not a Galera node"));
    }
}
