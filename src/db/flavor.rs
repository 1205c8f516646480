//! Server flavours: detection from the version string, and every replication statement whose
//! text differs between MariaDB, MySQL/PXC 5.7 and MySQL/PXC 8.0.23+ / 8.4.
//!
//! Two [`Dialect`]s render statements as text: [`MariaDb`], and [`MySql`], one statement shape
//! for every MySQL/PXC release with its words (`MASTER`/`SOURCE`, `SLAVE`/`REPLICA`) as data
//! ([`Vocabulary`]). Nothing here talks to a server. Values go through [`crate::db::sql::quote`], channel names are [`Channel`]s (validated
//! on construction), secrets are masked unless the caller asks to reveal them. Parsing of
//! `SHOW ... STATUS` rows into a [`ReplicaStatus`] lives here too, because its column names are
//! part of the dialect.

use crate::db::sql::{Channel, Reveal, Secret, quote};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

pub use crate::error::FlavorError;

/// The server family and version, as detected from `@@version` and `@@version_comment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Flavor {
    /// MariaDB 10.4 or later.
    MariaDb { version: (u32, u32, u32) },
    /// MySQL or Percona XtraDB Cluster 5.7, and 8.0 before 8.0.23: `CHANGE MASTER ... FOR CHANNEL`.
    MySqlLegacy { version: (u32, u32, u32) },
    /// MySQL or Percona XtraDB Cluster 8.0.23 or later (8.4, 9.x): `CHANGE REPLICATION SOURCE`.
    MySqlModern { version: (u32, u32, u32) },
}

impl Flavor {
    /// Detects the flavour from `@@version` (e.g. `10.11.6-MariaDB-log`, `8.0.36-28.1`) and
    /// `@@version_comment` (e.g. `Percona XtraDB Cluster (GPL) ...`).
    pub fn detect(version: &str, version_comment: &str) -> Result<Flavor, FlavorError> {
        let v = parse_version(version).ok_or_else(|| FlavorError::Unreadable(version.into()))?;
        let is_mariadb = version.to_ascii_lowercase().contains("mariadb")
            || version_comment.to_ascii_lowercase().contains("mariadb");
        if is_mariadb {
            if v < (10, 4, 0) {
                return Err(FlavorError::OldMariaDb(version.into()));
            }
            return Ok(Flavor::MariaDb { version: v });
        }
        if v < (5, 7, 0) {
            return Err(FlavorError::OldMySql(version.into()));
        }
        if v >= (8, 0, 23) {
            Ok(Flavor::MySqlModern { version: v })
        } else {
            Ok(Flavor::MySqlLegacy { version: v })
        }
    }

    /// Whether the server lists the current view's members in `mysql.wsrep_cluster_members`
    /// (Galera 4: MariaDB 10.4+, PXC 8.0). PXC 5.7 does not, and its nodes judge a holder by
    /// its heartbeat alone.
    pub fn lists_members(&self) -> bool {
        match self {
            Flavor::MariaDb { .. } | Flavor::MySqlModern { .. } => true,
            Flavor::MySqlLegacy { version } => *version >= (8, 0, 0),
        }
    }

    pub fn is_mariadb(&self) -> bool {
        matches!(self, Flavor::MariaDb { .. })
    }

    /// The statement renderer for this flavour.
    pub fn dialect(&self) -> &'static dyn Dialect {
        match self {
            Flavor::MariaDb { .. } => &MariaDb,
            Flavor::MySqlLegacy { version } if *version >= (8, 0, 4) => &MYSQL_80_LEGACY,
            Flavor::MySqlLegacy { .. } => &MYSQL_57,
            Flavor::MySqlModern { .. } => &MYSQL_MODERN,
        }
    }

    /// A short name for logs and `status`: `mariadb-10.11.6`, `mysql-8.0.36`.
    pub fn label(&self) -> String {
        let (family, (a, b, c)) = match self {
            Flavor::MariaDb { version } => ("mariadb", version),
            Flavor::MySqlLegacy { version } | Flavor::MySqlModern { version } => ("mysql", version),
        };
        format!("{family}-{a}.{b}.{c}")
    }
}

fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let core: String = s
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = core.split('.').filter(|p| !p.is_empty());
    let a = parts.next()?.parse().ok()?;
    let b = parts.next()?.parse().ok()?;
    let c = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((a, b, c))
}

/// TLS settings for a replication link (`MASTER_SSL*` / `SOURCE_SSL*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicationTls {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub verify_server_cert: bool,
}

/// Everything a `CHANGE MASTER` / `CHANGE REPLICATION SOURCE` needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub tls: Option<ReplicationTls>,
    /// MariaDB only: the GTID domains to request (`DO_DOMAIN_IDS`). Empty means every domain.
    pub gtid_domains: Vec<u32>,
}

/// One SQL dialect. Each method returns one complete statement, without a trailing `;`.
pub trait Dialect: Sync {
    /// Points the channel at a source and configures GTID auto-positioning.
    fn change_source(&self, channel: &Channel, source: &SourceSpec, reveal: Reveal) -> String;
    fn start_replica(&self, channel: &Channel) -> String;
    fn stop_replica(&self, channel: &Channel) -> String;
    /// Forgets the channel entirely (`RESET ... ALL`), so it no longer shows in the status.
    fn reset_replica_all(&self, channel: &Channel) -> String;
    /// Lists every channel's status, one row per channel.
    fn show_replica_status(&self) -> &'static str;
    /// The column names of that status.
    fn status_columns(&self) -> &StatusColumns;
    /// Turns Galera replication off for this session only, so that a node outside the Primary
    /// component accepts a fence's `STOP` (otherwise refused with error 1047, "WSREP has not
    /// yet prepared node for application use"). Nothing the session runs is written anywhere.
    /// MariaDB asks for `SUPER` (seen on 10.11: error 1227 without it); PXC 5.7 and 8.0 take it
    /// in any session outside a transaction (their `wsrep_on_check` asks for no privilege, and
    /// 8.0 also turns `sql_log_bin` off for the session). Not run here on PXC.
    fn session_without_galera(&self) -> &'static str {
        "SET SESSION wsrep_on = OFF"
    }
    /// Waits, at most `seconds`, until this server has applied every transaction of a GTID
    /// position that a replica of the cluster stopped at (`switchover`); one row, `0` once it
    /// has. MariaDB waits on `gtid_slave_pos`, which Galera carries to every node of the
    /// cluster, and which a channel started with `MASTER_USE_GTID=slave_pos` resumes from.
    fn wait_for_position(&self, position: &str, seconds: u64) -> String {
        format!(
            "SELECT MASTER_GTID_WAIT({}, {seconds})",
            crate::db::sql::quote(position)
        )
    }
}

/// The column names of a dialect's replica status.
#[derive(Debug)]
pub struct StatusColumns {
    pub channel: &'static str,
    pub source_host: &'static str,
    pub source_port: &'static str,
    pub source_user: &'static str,
    pub io_running: &'static str,
    pub sql_running: &'static str,
    pub io_state: &'static str,
    pub lag: &'static str,
    /// The GTID position columns worth showing, in order: the executed position last
    /// ([`ReplicaStatus::executed_gtid`]).
    pub gtid: &'static [&'static str],
}

fn tls_clause(prefix: &str, tls: &Option<ReplicationTls>) -> String {
    let Some(tls) = tls else {
        return String::new();
    };
    let mut s = format!(", {prefix}_SSL=1");
    for (name, value) in [("CA", &tls.ca), ("CERT", &tls.cert), ("KEY", &tls.key)] {
        if let Some(v) = value {
            s.push_str(&format!(", {prefix}_SSL_{name}={}", quote(v)));
        }
    }
    s.push_str(&format!(
        ", {prefix}_SSL_VERIFY_SERVER_CERT={}",
        u8::from(tls.verify_server_cert)
    ));
    s
}

fn for_channel(channel: &Channel) -> String {
    format!(" FOR CHANNEL {}", quote(channel.as_str()))
}

/// MariaDB 10.4+: named connections, MariaDB GTID.
pub struct MariaDb;

impl MariaDb {
    fn conn(channel: &Channel) -> String {
        if channel.is_default() {
            String::new()
        } else {
            format!(" {}", quote(channel.as_str()))
        }
    }
}

impl Dialect for MariaDb {
    fn change_source(&self, channel: &Channel, s: &SourceSpec, reveal: Reveal) -> String {
        let domains: Vec<String> = s.gtid_domains.iter().map(u32::to_string).collect();
        format!(
            "CHANGE MASTER{} TO MASTER_HOST={}, MASTER_PORT={}, MASTER_USER={}, MASTER_PASSWORD={}, MASTER_USE_GTID=slave_pos, DO_DOMAIN_IDS=({}){}",
            Self::conn(channel),
            quote(&s.host),
            s.port,
            quote(&s.user),
            reveal.quote_secret(&s.password),
            domains.join(","),
            tls_clause("MASTER", &s.tls),
        )
    }
    fn start_replica(&self, channel: &Channel) -> String {
        format!("START SLAVE{}", Self::conn(channel))
    }
    fn stop_replica(&self, channel: &Channel) -> String {
        format!("STOP SLAVE{}", Self::conn(channel))
    }
    fn reset_replica_all(&self, channel: &Channel) -> String {
        format!("RESET SLAVE{} ALL", Self::conn(channel))
    }
    fn show_replica_status(&self) -> &'static str {
        "SHOW ALL SLAVES STATUS"
    }
    fn status_columns(&self) -> &StatusColumns {
        &StatusColumns {
            channel: "Connection_name",
            source_host: "Master_Host",
            source_port: "Master_Port",
            source_user: "Master_User",
            io_running: "Slave_IO_Running",
            sql_running: "Slave_SQL_Running",
            io_state: "Slave_IO_State",
            lag: "Seconds_Behind_Master",
            gtid: &["Gtid_IO_Pos", "Gtid_Slave_Pos"],
        }
    }
}

/// The words a MySQL release uses for replication, and the columns of its status.
#[derive(Debug)]
pub struct Vocabulary {
    /// `CHANGE MASTER TO` or `CHANGE REPLICATION SOURCE TO`.
    pub change: &'static str,
    /// The options' prefix: `MASTER` or `SOURCE` (`MASTER_HOST`, `SOURCE_SSL`).
    pub option: &'static str,
    /// `SLAVE` or `REPLICA`, in `START`, `STOP` and `RESET`.
    pub replica: &'static str,
    /// `SHOW SLAVE STATUS` or `SHOW REPLICA STATUS`.
    pub show: &'static str,
    /// Fetch the source's RSA key for `caching_sha2_password` (8.0.4 and later).
    pub public_key: bool,
    pub columns: StatusColumns,
}

/// MySQL/PXC 5.7.
pub const MYSQL_57: MySql = MySql(Vocabulary {
    change: "CHANGE MASTER TO",
    option: "MASTER",
    replica: "SLAVE",
    show: "SHOW SLAVE STATUS",
    public_key: false,
    columns: LEGACY_COLUMNS,
});

/// MySQL/PXC 8.0.4 to 8.0.22: the old words, and the public key.
pub const MYSQL_80_LEGACY: MySql = MySql(Vocabulary {
    public_key: true,
    ..MYSQL_57.0
});

/// MySQL/PXC 8.0.23+ and 8.4: the `SOURCE`/`REPLICA` words.
pub const MYSQL_MODERN: MySql = MySql(Vocabulary {
    change: "CHANGE REPLICATION SOURCE TO",
    option: "SOURCE",
    replica: "REPLICA",
    show: "SHOW REPLICA STATUS",
    public_key: true,
    columns: StatusColumns {
        channel: "Channel_Name",
        source_host: "Source_Host",
        source_port: "Source_Port",
        source_user: "Source_User",
        io_running: "Replica_IO_Running",
        sql_running: "Replica_SQL_Running",
        io_state: "Replica_IO_State",
        lag: "Seconds_Behind_Source",
        gtid: &["Retrieved_Gtid_Set", "Executed_Gtid_Set"],
    },
});

const LEGACY_COLUMNS: StatusColumns = StatusColumns {
    channel: "Channel_Name",
    source_host: "Master_Host",
    source_port: "Master_Port",
    source_user: "Master_User",
    io_running: "Slave_IO_Running",
    sql_running: "Slave_SQL_Running",
    io_state: "Slave_IO_State",
    lag: "Seconds_Behind_Master",
    gtid: &["Retrieved_Gtid_Set", "Executed_Gtid_Set"],
};

/// MySQL and Percona XtraDB Cluster, every release: one statement shape, its words as data.
/// Every statement names its channel (`FOR CHANNEL ''` for the default one).
#[derive(Debug)]
pub struct MySql(pub Vocabulary);

impl Dialect for MySql {
    fn change_source(&self, channel: &Channel, s: &SourceSpec, reveal: Reveal) -> String {
        let w = &self.0;
        let o = w.option;
        format!(
            "{} {o}_HOST={}, {o}_PORT={}, {o}_USER={}, {o}_PASSWORD={}, {o}_AUTO_POSITION=1{}{}{}",
            w.change,
            quote(&s.host),
            s.port,
            quote(&s.user),
            reveal.quote_secret(&s.password),
            if w.public_key {
                format!(", GET_{o}_PUBLIC_KEY=1")
            } else {
                String::new()
            },
            tls_clause(o, &s.tls),
            for_channel(channel),
        )
    }
    fn start_replica(&self, channel: &Channel) -> String {
        format!("START {}{}", self.0.replica, for_channel(channel))
    }
    fn stop_replica(&self, channel: &Channel) -> String {
        format!("STOP {}{}", self.0.replica, for_channel(channel))
    }
    fn reset_replica_all(&self, channel: &Channel) -> String {
        format!("RESET {} ALL{}", self.0.replica, for_channel(channel))
    }
    fn show_replica_status(&self) -> &'static str {
        self.0.show
    }
    fn status_columns(&self) -> &StatusColumns {
        &self.0.columns
    }
    /// `WAIT_FOR_EXECUTED_GTID_SET` (MySQL 5.7.5 and later): `0` once `gtid_executed` holds
    /// the set, which on PXC every node's does as Galera applies it.
    fn wait_for_position(&self, position: &str, seconds: u64) -> String {
        format!(
            "SELECT WAIT_FOR_EXECUTED_GTID_SET({}, {seconds})",
            crate::db::sql::quote(position)
        )
    }
}

/// A MariaDB GTID position (`domain-server-seq,...`) without the entries of `domains`.
///
/// A replica's `gtid_slave_pos` also carries its own cluster's domain (the events of that
/// domain the remote cluster sends back, which the channel filters out but counts): the other
/// nodes of the cluster never apply them as a replica, so a wait on them would never end.
pub fn mariadb_position_without(position: &str, domains: &[u32]) -> String {
    position
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .filter(|g| {
            g.split('-')
                .next()
                .and_then(|d| d.parse::<u32>().ok())
                .is_none_or(|d| !domains.contains(&d))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The state of a replication thread as the server reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(into = "String", from = "String")]
pub enum Thread {
    Yes,
    No,
    /// The IO thread is trying to reach the source.
    Connecting,
    Other(String),
}

impl Thread {
    /// The thread state as `SHOW ... STATUS` prints it (an empty cell is `No`).
    pub fn parse(s: &str) -> Thread {
        match s {
            "Yes" => Thread::Yes,
            "No" | "" => Thread::No,
            "Connecting" => Thread::Connecting,
            other => Thread::Other(other.to_string()),
        }
    }
    pub fn is_running(&self) -> bool {
        *self == Thread::Yes
    }
}

impl fmt::Display for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Thread::Yes => f.write_str("Yes"),
            Thread::No => f.write_str("No"),
            Thread::Connecting => f.write_str("Connecting"),
            Thread::Other(s) => f.write_str(s),
        }
    }
}

impl From<Thread> for String {
    fn from(t: Thread) -> String {
        t.to_string()
    }
}

impl From<String> for Thread {
    fn from(s: String) -> Thread {
        Thread::parse(&s)
    }
}

/// One replication channel as `SHOW ... STATUS` reports it, in flavour-neutral names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct ReplicaStatus {
    pub channel: String,
    pub source_host: String,
    pub source_port: u16,
    pub source_user: String,
    pub io_running: Thread,
    pub sql_running: Thread,
    pub io_state: String,
    pub last_io_error: String,
    pub last_sql_error: String,
    /// `Last_SQL_Errno`: 0 when the SQL thread has no error.
    pub last_sql_errno: u32,
    /// Seconds behind the source; `None` when the server reports NULL (a thread is down).
    pub lag_seconds: Option<u64>,
    /// `column=value` for the dialect's GTID columns that the status has.
    pub gtid: Vec<(String, String)>,
}

/// The status columns that hold the executed GTID set, one per dialect.
pub const EXECUTED_GTID_COLUMNS: [&str; 2] = ["Gtid_Slave_Pos", "Executed_Gtid_Set"];

impl ReplicaStatus {
    /// The executed GTID position (MariaDB `Gtid_Slave_Pos`, MySQL `Executed_Gtid_Set`), when
    /// the server says one: every dialect's [`StatusColumns::gtid`] lists it last.
    pub fn executed_gtid(&self) -> Option<&str> {
        self.gtid
            .last()
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Where the channel's executed GTID set stands, as the status says it (MariaDB
    /// `Gtid_Slave_Pos`, MySQL `Executed_Gtid_Set`): empty when nothing was executed; `None`
    /// when the status has no such column, so the position cannot be known.
    pub fn gtid_position(&self) -> Option<&str> {
        self.gtid
            .iter()
            .find(|(c, _)| EXECUTED_GTID_COLUMNS.contains(&c.as_str()))
            .map(|(_, v)| v.as_str())
    }

    /// Parses one status row given as column name -> value (NULL as `None`).
    pub fn from_row(cols: &StatusColumns, row: &HashMap<String, Option<String>>) -> ReplicaStatus {
        let get = |name: &str| row.get(name).cloned().flatten().unwrap_or_default();
        ReplicaStatus {
            channel: get(cols.channel),
            source_host: get(cols.source_host),
            source_port: get(cols.source_port).parse().unwrap_or(0),
            source_user: get(cols.source_user),
            io_running: Thread::parse(&get(cols.io_running)),
            sql_running: Thread::parse(&get(cols.sql_running)),
            io_state: get(cols.io_state),
            last_io_error: get("Last_IO_Error"),
            last_sql_error: get("Last_SQL_Error"),
            last_sql_errno: get("Last_SQL_Errno").parse().unwrap_or(0),
            lag_seconds: row
                .get(cols.lag)
                .cloned()
                .flatten()
                .and_then(|v| v.parse().ok()),
            gtid: cols
                .gtid
                .iter()
                .filter(|c| row.contains_key(**c))
                .map(|c| (c.to_string(), get(c).replace('\n', "")))
                .collect(),
        }
    }

    /// Both threads run and the IO thread is not (re)connecting: the test the original script
    /// applied after `sleep 10`, here applied by a poll with a deadline.
    pub fn is_healthy(&self) -> bool {
        self.io_running.is_running()
            && self.sql_running.is_running()
            && !self.io_state.to_ascii_lowercase().contains("connect")
    }

    /// `host:port` of the configured source, written as a configured source is.
    pub fn source(&self) -> String {
        host_port(&self.source_host, self.source_port)
    }

    /// What stopped the SQL thread, if an error did: the data, or the cluster.
    pub fn sql_error_kind(&self) -> Option<SqlErrorKind> {
        (!self.last_sql_error.is_empty() || self.last_sql_errno != 0)
            .then(|| SqlErrorKind::of(self.last_sql_errno, &self.last_sql_error))
    }

    /// The SQL thread stopped on an error in the data: every node of the cluster would stop
    /// on the same event, so an operator must look.
    pub fn has_data_error(&self) -> bool {
        self.sql_error_kind() == Some(SqlErrorKind::Data)
    }
}

/// What an error that stopped a replica's SQL thread is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SqlErrorKind {
    /// The data: a duplicate key, a missing row, a schema that differs. Every node of the
    /// cluster has the same data and would fail on the same event.
    Data,
    /// The node's place in its Galera cluster, not the data: the node left the Primary
    /// component while applying (error 1047, "Node has dropped from cluster", "WSREP has not
    /// yet prepared node for application use"), or Galera aborted the applier's transaction in
    /// favour of a cluster write (1213 deadlock, 1205 lock wait timeout, which the server
    /// already retried `slave_transaction_retries` times). Starting the channel again resumes
    /// it from where it stopped.
    Cluster,
}

impl SqlErrorKind {
    /// Classifies an SQL thread's error by its number and text (the text alone where the
    /// number is not known, as in a scenario file).
    pub fn of(errno: u32, message: &str) -> SqlErrorKind {
        let m = message.to_ascii_lowercase();
        if matches!(errno, 1047 | 1205 | 1213)
            || m.contains("dropped from cluster")
            || m.contains("wsrep")
        {
            SqlErrorKind::Cluster
        } else {
            SqlErrorKind::Data
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SqlErrorKind::Data => "data",
            SqlErrorKind::Cluster => "cluster",
        }
    }
}

/// `host:port`, with an IPv6 host in brackets: the one way an address is written, whether it
/// comes from the config or from a channel's status.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn galera_4_servers_list_the_view_and_pxc_57_does_not() {
        let lists = |v: &str, c: &str| Flavor::detect(v, c).unwrap().lists_members();
        assert!(lists("10.4.34-MariaDB", "mariadb.org binary distribution"));
        assert!(lists("10.11.6-MariaDB-log", ""));
        assert!(lists("8.0.36-28.1", "Percona XtraDB Cluster (GPL)"));
        assert!(lists("8.0.22-13.1", "Percona XtraDB Cluster (GPL)"));
        assert!(!lists("5.7.44-48-57", "Percona XtraDB Cluster (GPL)"));
    }

    fn spec() -> SourceSpec {
        SourceSpec {
            host: "10.0.2.1".into(),
            port: 3306,
            user: "repl".into(),
            password: Secret::new("s3cr'et"),
            tls: None,
            gtid_domains: vec![2],
        }
    }

    fn tls() -> Option<ReplicationTls> {
        Some(ReplicationTls {
            ca: Some("/etc/mysql/ca.pem".into()),
            cert: Some("/etc/mysql/client-cert.pem".into()),
            key: Some("/etc/mysql/client-key.pem".into()),
            verify_server_cert: true,
        })
    }

    fn ch() -> Channel {
        Channel::named("DC1-DC2").unwrap()
    }

    #[test]
    fn detects_flavours_from_version_strings() {
        assert_eq!(
            Flavor::detect("10.11.6-MariaDB-0+deb12u1-log", "Debian 12").unwrap(),
            Flavor::MariaDb {
                version: (10, 11, 6)
            }
        );
        assert_eq!(
            Flavor::detect("10.4.32-MariaDB", "").unwrap().label(),
            "mariadb-10.4.32"
        );
        assert!(Flavor::detect("10.3.39-MariaDB", "").is_err());
        assert_eq!(
            Flavor::detect("5.7.44-48-57-log", "Percona XtraDB Cluster (GPL)").unwrap(),
            Flavor::MySqlLegacy {
                version: (5, 7, 44)
            }
        );
        assert_eq!(
            Flavor::detect("8.0.22", "MySQL Community Server - GPL").unwrap(),
            Flavor::MySqlLegacy {
                version: (8, 0, 22)
            }
        );
        assert_eq!(
            Flavor::detect("8.0.23", "").unwrap(),
            Flavor::MySqlModern {
                version: (8, 0, 23)
            }
        );
        assert_eq!(
            Flavor::detect("8.4.3-3.1", "Percona XtraDB Cluster (GPL), Release rel3").unwrap(),
            Flavor::MySqlModern { version: (8, 4, 3) }
        );
        assert!(Flavor::detect("5.6.51", "").is_err());
        assert!(Flavor::detect("garbage", "").is_err());
    }

    #[test]
    fn mariadb_statements() {
        let d = MariaDb;
        assert_eq!(
            d.change_source(&ch(), &spec(), Reveal::Secrets),
            r"CHANGE MASTER 'DC1-DC2' TO MASTER_HOST='10.0.2.1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='s3cr\'et', MASTER_USE_GTID=slave_pos, DO_DOMAIN_IDS=(2)"
        );
        assert_eq!(d.start_replica(&ch()), "START SLAVE 'DC1-DC2'");
        assert_eq!(d.stop_replica(&ch()), "STOP SLAVE 'DC1-DC2'");
        assert_eq!(d.reset_replica_all(&ch()), "RESET SLAVE 'DC1-DC2' ALL");
        assert_eq!(d.show_replica_status(), "SHOW ALL SLAVES STATUS");
    }

    #[test]
    fn mariadb_default_connection_has_no_name_and_masks_secrets() {
        let d = MariaDb;
        let def = Channel::default_channel();
        let mut s = spec();
        s.gtid_domains = vec![2, 3];
        s.tls = tls();
        assert_eq!(
            d.change_source(&def, &s, Reveal::Masked),
            "CHANGE MASTER TO MASTER_HOST='10.0.2.1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='****', MASTER_USE_GTID=slave_pos, DO_DOMAIN_IDS=(2,3), MASTER_SSL=1, MASTER_SSL_CA='/etc/mysql/ca.pem', MASTER_SSL_CERT='/etc/mysql/client-cert.pem', MASTER_SSL_KEY='/etc/mysql/client-key.pem', MASTER_SSL_VERIFY_SERVER_CERT=1"
        );
        s.gtid_domains.clear();
        s.tls = None;
        assert!(
            d.change_source(&def, &s, Reveal::Masked)
                .ends_with("DO_DOMAIN_IDS=()")
        );
        assert_eq!(d.start_replica(&def), "START SLAVE");
        assert_eq!(d.stop_replica(&def), "STOP SLAVE");
        assert_eq!(d.reset_replica_all(&def), "RESET SLAVE ALL");
    }

    #[test]
    fn mysql_57_statements() {
        let d = Flavor::detect("5.7.44", "").unwrap().dialect();
        assert_eq!(
            d.change_source(&ch(), &spec(), Reveal::Masked),
            "CHANGE MASTER TO MASTER_HOST='10.0.2.1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='****', MASTER_AUTO_POSITION=1 FOR CHANNEL 'DC1-DC2'"
        );
        assert_eq!(d.start_replica(&ch()), "START SLAVE FOR CHANNEL 'DC1-DC2'");
        assert_eq!(d.stop_replica(&ch()), "STOP SLAVE FOR CHANNEL 'DC1-DC2'");
        assert_eq!(
            d.reset_replica_all(&ch()),
            "RESET SLAVE ALL FOR CHANNEL 'DC1-DC2'"
        );
        assert_eq!(d.show_replica_status(), "SHOW SLAVE STATUS");
        // The default channel is always named, so no statement ever touches every channel.
        let def = Channel::default_channel();
        assert_eq!(d.stop_replica(&def), "STOP SLAVE FOR CHANNEL ''");
        assert_eq!(d.reset_replica_all(&def), "RESET SLAVE ALL FOR CHANNEL ''");
    }

    #[test]
    fn mysql_80_before_23_asks_for_the_public_key_with_the_legacy_syntax() {
        let d = Flavor::detect("8.0.22", "").unwrap().dialect();
        let mut s = spec();
        s.tls = tls();
        assert_eq!(
            d.change_source(&ch(), &s, Reveal::Masked),
            "CHANGE MASTER TO MASTER_HOST='10.0.2.1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='****', MASTER_AUTO_POSITION=1, GET_MASTER_PUBLIC_KEY=1, MASTER_SSL=1, MASTER_SSL_CA='/etc/mysql/ca.pem', MASTER_SSL_CERT='/etc/mysql/client-cert.pem', MASTER_SSL_KEY='/etc/mysql/client-key.pem', MASTER_SSL_VERIFY_SERVER_CERT=1 FOR CHANNEL 'DC1-DC2'"
        );
    }

    #[test]
    fn mysql_8023_and_84_statements() {
        for v in ["8.0.23", "8.4.3"] {
            let d = Flavor::detect(v, "").unwrap().dialect();
            assert_eq!(
                d.change_source(&ch(), &spec(), Reveal::Secrets),
                r"CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.2.1', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='s3cr\'et', SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1 FOR CHANNEL 'DC1-DC2'"
            );
            let mut s = spec();
            s.tls = Some(ReplicationTls {
                ca: Some("/ca.pem".into()),
                cert: None,
                key: None,
                verify_server_cert: false,
            });
            assert!(
                d.change_source(&ch(), &s, Reveal::Masked).ends_with(
                    "GET_SOURCE_PUBLIC_KEY=1, SOURCE_SSL=1, SOURCE_SSL_CA='/ca.pem', SOURCE_SSL_VERIFY_SERVER_CERT=0 FOR CHANNEL 'DC1-DC2'"
                )
            );
            assert_eq!(
                d.start_replica(&ch()),
                "START REPLICA FOR CHANNEL 'DC1-DC2'"
            );
            assert_eq!(d.stop_replica(&ch()), "STOP REPLICA FOR CHANNEL 'DC1-DC2'");
            assert_eq!(
                d.reset_replica_all(&ch()),
                "RESET REPLICA ALL FOR CHANNEL 'DC1-DC2'"
            );
            assert_eq!(d.show_replica_status(), "SHOW REPLICA STATUS");
        }
    }

    #[test]
    fn a_fence_session_turns_galera_off_for_itself_in_every_flavour() {
        // The same text everywhere: MariaDB 10.4+, PXC 5.7, PXC 8.0 before and after 8.0.23,
        // 8.4. A fence runs it before reading and stopping a peer's channel.
        for v in [
            "10.11.6-MariaDB-log",
            "5.7.44-48-57",
            "8.0.22",
            "8.0.36-28.1",
            "8.4.3",
        ] {
            let d = Flavor::detect(v, "").unwrap().dialect();
            assert_eq!(
                d.session_without_galera(),
                "SET SESSION wsrep_on = OFF",
                "{v}"
            );
        }
    }

    #[test]
    fn an_sql_thread_stopped_by_the_cluster_is_not_a_data_error() {
        // As MariaDB 10.11 reports a replica that applied an event while cut off (seen on the
        // sandbox: Last_SQL_Errno 1047).
        assert_eq!(
            SqlErrorKind::of(1047, "Node has dropped from cluster"),
            SqlErrorKind::Cluster
        );
        assert_eq!(
            SqlErrorKind::of(0, "WSREP has not yet prepared node for application use"),
            SqlErrorKind::Cluster
        );
        assert_eq!(
            SqlErrorKind::of(1213, "Deadlock found"),
            SqlErrorKind::Cluster
        );
        assert_eq!(
            SqlErrorKind::of(
                1062,
                "Could not execute Write_rows_v1 event on table t.x; Duplicate entry '7' for key 'PRIMARY'"
            ),
            SqlErrorKind::Data
        );
        assert_eq!(
            SqlErrorKind::of(0, "Duplicate entry '7'"),
            SqlErrorKind::Data
        );
        let mut s = ReplicaStatus::from_row(
            MariaDb.status_columns(),
            &row(&[
                ("Last_SQL_Errno", Some("1047")),
                ("Last_SQL_Error", Some("Node has dropped from cluster")),
            ]),
        );
        assert_eq!(s.last_sql_errno, 1047);
        assert_eq!(s.sql_error_kind(), Some(SqlErrorKind::Cluster));
        assert!(!s.has_data_error());
        s.last_sql_errno = 1062;
        s.last_sql_error = "Duplicate entry".into();
        assert!(s.has_data_error());
        s.last_sql_errno = 0;
        s.last_sql_error.clear();
        assert_eq!(s.sql_error_kind(), None);
    }

    #[test]
    fn hostile_values_stay_inside_their_literals() {
        let mut s = spec();
        s.host = "h'; STOP SLAVE; --".into();
        s.user = "r\\'\n".into();
        let sql = MariaDb.change_source(&ch(), &s, Reveal::Secrets);
        assert!(sql.contains(r"MASTER_HOST='h\'; STOP SLAVE; --'"));
        assert!(sql.contains(r"MASTER_USER='r\\\'\n'"));
        assert!(!sql.contains('\n'));
    }

    fn row(pairs: &[(&str, Option<&str>)]) -> HashMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn a_position_to_wait_for_leaves_out_the_clusters_own_domains() {
        assert_eq!(
            mariadb_position_without("1-1-24,2-2-27", &[1, 112]),
            "2-2-27"
        );
        assert_eq!(
            mariadb_position_without("1-1-24, 2-2-27,3-3-5", &[1]),
            "2-2-27,3-3-5"
        );
        assert_eq!(mariadb_position_without("1-1-24", &[1]), "");
        assert_eq!(mariadb_position_without("", &[1]), "");
    }

    #[test]
    fn each_dialect_waits_for_a_stopped_replicas_position_its_own_way() {
        let maria = Flavor::detect("10.11.6-MariaDB-log", "").unwrap().dialect();
        assert_eq!(
            maria.wait_for_position("0-1-5,2-2-9", 3),
            "SELECT MASTER_GTID_WAIT('0-1-5,2-2-9', 3)"
        );
        for v in ["5.7.44", "8.0.36", "8.4.3"] {
            let d = Flavor::detect(v, "").unwrap().dialect();
            assert_eq!(
                d.wait_for_position("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", 3),
                "SELECT WAIT_FOR_EXECUTED_GTID_SET('3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5', 3)"
            );
        }
    }

    #[test]
    fn an_ipv6_source_is_written_in_brackets_like_a_configured_one() {
        assert_eq!(host_port("10.0.0.1", 3306), "10.0.0.1:3306");
        assert_eq!(host_port("fd00::21", 3307), "[fd00::21]:3307");
    }

    #[test]
    fn every_dialect_lists_the_executed_gtid_position_last() {
        for v in ["10.11.6-MariaDB", "5.7.44-47-57", "8.0.36-28.1"] {
            let f = Flavor::detect(v, "").unwrap();
            let last = f.dialect().status_columns().gtid.last().copied();
            assert!(
                last.is_some_and(|l| EXECUTED_GTID_COLUMNS.contains(&l)),
                "{v}: {last:?}"
            );
        }
    }

    #[test]
    fn a_status_without_the_executed_gtid_column_has_no_known_position() {
        let f = Flavor::detect("10.11.6-MariaDB", "").unwrap();
        let cols = f.dialect().status_columns();
        let mut row: HashMap<String, Option<String>> = HashMap::new();
        row.insert("Slave_IO_Running".into(), Some("No".into()));
        let s = ReplicaStatus::from_row(cols, &row);
        assert_eq!(s.gtid_position(), None);
        row.insert("Gtid_Slave_Pos".into(), Some(String::new()));
        let s = ReplicaStatus::from_row(cols, &row);
        assert_eq!(s.gtid_position(), Some(""), "nothing executed yet");
        row.insert("Gtid_Slave_Pos".into(), Some("2-21-57".into()));
        let s = ReplicaStatus::from_row(cols, &row);
        assert_eq!(s.gtid_position(), Some("2-21-57"));
    }

    #[test]
    fn parses_status_rows_of_each_dialect() {
        let maria = ReplicaStatus::from_row(
            MariaDb.status_columns(),
            &row(&[
                ("Connection_name", Some("DC1-DC2")),
                ("Master_Host", Some("127.0.0.21")),
                ("Master_Port", Some("3306")),
                ("Slave_IO_Running", Some("Yes")),
                ("Slave_SQL_Running", Some("Yes")),
                ("Slave_IO_State", Some("Waiting for master to send event")),
                ("Seconds_Behind_Master", Some("0")),
                ("Gtid_IO_Pos", Some("2-2-17")),
            ]),
        );
        assert!(maria.is_healthy());
        assert_eq!(maria.source(), "127.0.0.21:3306");
        assert_eq!(maria.lag_seconds, Some(0));

        let modern = ReplicaStatus::from_row(
            MYSQL_MODERN.status_columns(),
            &row(&[
                ("Channel_Name", Some("DC1-DC2")),
                ("Source_Host", Some("10.0.2.1")),
                ("Source_Port", Some("3306")),
                ("Replica_IO_Running", Some("Connecting")),
                ("Replica_SQL_Running", Some("Yes")),
                ("Replica_IO_State", Some("Connecting to source")),
                ("Seconds_Behind_Source", None),
                ("Last_IO_Error", Some("error connecting to master")),
            ]),
        );
        assert_eq!(modern.io_running, Thread::Connecting);
        assert!(!modern.is_healthy());
        assert_eq!(modern.lag_seconds, None);
        assert_eq!(modern.last_io_error, "error connecting to master");

        // Threads both "Yes" but the IO state says it is reconnecting: not healthy yet.
        let reconnecting = ReplicaStatus::from_row(
            LEGACY_COLUMNS_REF,
            &row(&[
                ("Slave_IO_Running", Some("Yes")),
                ("Slave_SQL_Running", Some("Yes")),
                (
                    "Slave_IO_State",
                    Some("Reconnecting after a failed master event read"),
                ),
            ]),
        );
        assert!(!reconnecting.is_healthy());
    }

    const LEGACY_COLUMNS_REF: &StatusColumns = &LEGACY_COLUMNS;
}
