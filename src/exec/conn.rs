//! The connections that can write: to the local server ([`LocalServer`]) and to a peer of the
//! cluster being fenced ([`fence_peer`]).
//!
//! They live inside the executor so that the type system keeps the promise "the executor is
//! the only writer": every read is public, but [`LocalServer::execute`] and the fence are
//! visible to the executor module only, and no raw connection ever leaves it.

use crate::config::Endpoint;
use crate::config::topology::{self, TableTopology};
use crate::db::flavor::{Flavor, ReplicaStatus};
use crate::db::sql::{Channel, quote};
use crate::db::state::{self, LinkFailure, Schema, SchemaProblem, StateRow};
use crate::error::{Error, Result};
use crate::exec::server::{self, Login, NodeFacts, cell, describe, ssl_opts, usable_address};
use crate::memory::Held;
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};
use std::collections::HashMap;
use std::time::Duration;

/// Cells of a result set, NULL as `None`.
type Cells = Vec<Vec<Option<String>>>;

/// Opens a connection with a login's credentials and TLS, to its endpoint or another one.
fn open(login: &Login, endpoint: &Endpoint, connect_timeout: Duration) -> Result<Held<Conn>> {
    let mut b = OptsBuilder::new()
        .user(Some(login.user.clone()))
        .pass(login.password.as_ref().map(|p| p.expose().to_string()))
        .tcp_connect_timeout(Some(connect_timeout))
        .read_timeout(Some(login.read_timeout))
        .write_timeout(Some(login.read_timeout))
        .prefer_socket(false)
        .stmt_cache_size(0)
        // Our statements are small: not asking the server for its limit saves a round trip.
        .max_allowed_packet(Some(16 << 20));
    b = match endpoint {
        Endpoint::Socket(p) => b.socket(Some(p.display().to_string())),
        Endpoint::Tcp { host, port } => b.ip_or_hostname(Some(host.clone())).tcp_port(*port),
    };
    if let Some(t) = &login.tls {
        b = b.ssl_opts(Some(ssl_opts(t)));
    }
    let mut conn = Held::make(|| Conn::new(b)).map_err(|source| Error::Connect {
        endpoint: endpoint.to_string(),
        source,
    })?;
    // NO_BACKSLASH_ESCAPES off, so that `sql::quote` is exact.
    conn.query_drop(
        "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
    )
    .map_err(|e| Error::db("preparing the session", e))?;
    Ok(conn)
}

fn cells_of(rows: &[mysql::Row]) -> Cells {
    rows.iter()
        .map(|r| (0..r.len()).map(|i| r.as_ref(i).and_then(cell)).collect())
        .collect()
}

fn maps_of(rows: &[mysql::Row]) -> Vec<HashMap<String, Option<String>>> {
    rows.iter()
        .map(|r| {
            r.columns_ref()
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name_str().into_owned(), r.as_ref(i).and_then(cell)))
                .collect()
        })
        .collect()
}

/// Every replica channel a connection's server reports.
fn channels(
    conn: &mut Conn,
    flavor: &Flavor,
) -> std::result::Result<Vec<ReplicaStatus>, mysql::Error> {
    let d = flavor.dialect();
    let rows: Vec<mysql::Row> = conn.query(d.show_replica_status())?;
    Ok(statuses_of(d, &rows))
}

fn statuses_of(d: &dyn crate::db::flavor::Dialect, rows: &[mysql::Row]) -> Vec<ReplicaStatus> {
    maps_of(rows)
        .iter()
        .map(|r| ReplicaStatus::from_row(d.status_columns(), r))
        .collect()
}

/// The node's Galera status, as [`LocalServer::facts`] reads it.
pub const STATUS_QUERY: &str = "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status', 'wsrep_local_state', 'wsrep_local_state_comment', 'wsrep_local_index', 'wsrep_cluster_size')";

/// The current view's members, as [`LocalServer::members`] reads them.
pub const MEMBERS_QUERY: &str = "SELECT CONVERT(node_name USING utf8mb4), CONVERT(node_incoming_address USING utf8mb4) FROM mysql.wsrep_cluster_members";

const ENABLE_CAUSAL_READS: &str = "SET SESSION wsrep_sync_wait = 1";

/// A connection to the local server.
pub struct LocalServer {
    conn: Held<Conn>,
    endpoint: String,
    /// The read mode set on the connection (see [`LocalServer::read_mode`]).
    causal: Option<bool>,
    /// Answers read ahead ([`LocalServer::read_ahead`]), by the exact text of their statement,
    /// each given once.
    ahead: HashMap<String, Vec<mysql::Row>>,
}

impl LocalServer {
    pub fn connect(login: &Login) -> Result<LocalServer> {
        Ok(LocalServer {
            conn: open(login, &login.endpoint, login.connect_timeout)?,
            endpoint: login.endpoint.to_string(),
            causal: None,
            ahead: HashMap::new(),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the connection still answers; a kept connection that does not is replaced.
    pub fn alive(&mut self) -> bool {
        self.conn.ping().is_ok()
    }

    /// Sends reads the caller will make next in one round trip (a multi-statement), and
    /// keeps each answer for the first read of exactly the same text; with `causal`, causal
    /// reads are enabled first, in the same round trip ([`LocalServer::read_mode`]).
    ///
    /// Only an optimisation: a read that fails here is not kept, so it is asked again when
    /// it is made and its error is reported there; the statements after it are not run. A
    /// write forgets every answer not taken (a read after it must see it), and so does
    /// [`LocalServer::forget_ahead`], which the end of a run and a kept connection's next run
    /// call.
    pub fn read_ahead(&mut self, causal: bool, reads: &[String]) {
        let set_causal = causal && self.causal != Some(true);
        let mut texts: Vec<&str> = Vec::with_capacity(reads.len() + 1);
        if set_causal {
            texts.push(ENABLE_CAUSAL_READS);
        }
        texts.extend(reads.iter().map(String::as_str));
        if texts.len() < 2 {
            return;
        }
        let mut answers = Vec::with_capacity(texts.len());
        match self.conn.query_iter(texts.join(";\n")) {
            Ok(mut result) => {
                while let Some(set) = result.iter() {
                    match set.collect::<std::result::Result<Vec<mysql::Row>, _>>() {
                        Ok(rows) => answers.push(rows),
                        Err(e) => {
                            log::debug!("read ahead stopped at `{}`: {e}", texts[answers.len()]);
                            break;
                        }
                    }
                }
            }
            Err(e) => log::debug!("read ahead stopped at `{}`: {e}", texts[0]),
        }
        let mut answers = answers.into_iter();
        if set_causal {
            if answers.next().is_none() {
                return;
            }
            self.causal = Some(true);
        }
        for (sql, rows) in reads.iter().zip(answers) {
            self.ahead.insert(sql.clone(), rows);
        }
    }

    /// Forgets the answers read ahead that no read took.
    pub fn forget_ahead(&mut self) {
        self.ahead.clear();
    }

    /// A read's rows: the answer read ahead for exactly this text, else the server's now.
    fn rows_of_read(&mut self, sql: &str) -> std::result::Result<Vec<mysql::Row>, mysql::Error> {
        match self.ahead.remove(sql) {
            Some(rows) => Ok(rows),
            None => self.conn.query(sql),
        }
    }

    fn query(&mut self, sql: &str) -> Result<Vec<mysql::Row>> {
        self.rows_of_read(sql)
            .map_err(|e| Error::db(format!("reading `{sql}`"), e))
    }

    fn cells(&mut self, sql: &str) -> Result<Cells> {
        Ok(cells_of(&self.query(sql)?))
    }

    fn first(&mut self, sql: &str) -> Result<Option<String>> {
        Ok(self
            .cells(sql)?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten()))
    }

    fn name_values(&mut self, sql: &str) -> Result<HashMap<String, String>> {
        Ok(self
            .cells(sql)?
            .into_iter()
            .filter_map(|r| {
                let mut it = r.into_iter();
                Some((
                    it.next()??.to_ascii_lowercase(),
                    it.next()?.unwrap_or_default(),
                ))
            })
            .collect())
    }

    /// Global variables by name (lower case), for those of `names` the server has: what
    /// `check` compares with what replication needs.
    pub fn global_variables(&mut self, names: &[&str]) -> Result<HashMap<String, String>> {
        let list: Vec<String> = names.iter().map(|n| quote(n)).collect();
        self.name_values(&format!(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ({})",
            list.join(", ")
        ))
    }

    /// The login's grants, as `SHOW GRANTS` prints them.
    pub fn grants(&mut self) -> Result<Vec<String>> {
        Ok(self
            .cells("SHOW GRANTS")?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect())
    }

    /// Runs a read and says whether the server allowed it (`Err` with its words otherwise):
    /// for `check`, which proves a read by doing it.
    pub fn try_read(&mut self, sql: &str) -> std::result::Result<(), String> {
        self.conn.query_drop(sql).map_err(|e| describe(&e))
    }

    /// The TLS cipher of this connection, if it is encrypted.
    pub fn tls_cipher(&mut self) -> Result<Option<String>> {
        Ok(self
            .name_values("SHOW SESSION STATUS LIKE 'Ssl_cipher'")?
            .remove("ssl_cipher")
            .filter(|c| !c.is_empty()))
    }

    /// The node's facts. Uses `SHOW` statements only, which a node outside the Primary
    /// component still answers.
    pub fn facts(&mut self, local: &crate::config::Local) -> Result<NodeFacts> {
        let status = self.name_values(STATUS_QUERY)?;
        let vars = self.variables()?;
        NodeFacts::from_status(&status, &vars, local)
    }

    /// The global variables the facts need, by name, valued as `SHOW GLOBAL VARIABLES` values
    /// them. One `SELECT @@...` costs the server a tenth of a `SHOW GLOBAL VARIABLES` (which
    /// builds every variable), but fails on a variable the server lacks: the MariaDB set is
    /// tried, then the MySQL/PXC one, then `SHOW` (a server that is not a Galera node).
    fn variables(&mut self) -> Result<HashMap<String, String>> {
        for flavour in [server::MARIADB_VARIABLES, server::MYSQL_VARIABLES] {
            let names = server::variable_names(flavour);
            match self
                .rows_of_read(&server::variables_query(&names))
                .map(|rows| rows.into_iter().next())
            {
                Ok(Some(row)) => {
                    let values = (0..row.len()).map(|i| row.as_ref(i).and_then(cell));
                    return Ok(server::show_valued(&names, values));
                }
                Ok(None) => break,
                Err(mysql::Error::MySqlError(e)) if e.code == 1193 => continue,
                Err(e) => return Err(Error::db("reading the server's variables", e)),
            }
        }
        self.name_values(&server::show_variables_query())
    }

    /// Every replica channel of the node.
    pub fn replica_statuses(&mut self, flavor: &Flavor) -> Result<Vec<ReplicaStatus>> {
        let d = flavor.dialect();
        self.rows_of_read(d.show_replica_status())
            .map(|rows| statuses_of(d, &rows))
            .map_err(|e| Error::db("reading the replica status", e))
    }

    /// How this connection reads: on a node that can act, through to the latest cluster-wide
    /// state before each read (Galera causal reads, `wsrep_sync_wait = 1`), so a row another
    /// node committed a moment ago is seen; elsewhere reads would be refused, so they are
    /// allowed stale, for information only (`wsrep_dirty_reads`). Set only when it changes: a
    /// daemon's kept connection keeps it.
    pub fn read_mode(&mut self, causal: bool) -> Result<()> {
        if self.causal == Some(causal) {
            return Ok(());
        }
        if causal {
            self.conn
                .query_drop(ENABLE_CAUSAL_READS)
                .map_err(|e| Error::db("enabling causal reads (wsrep_sync_wait)", e))?;
        } else {
            if self.causal == Some(true) {
                self.conn
                    .query_drop("SET SESSION wsrep_sync_wait = 0")
                    .map_err(|e| Error::db("disabling causal reads (wsrep_sync_wait)", e))?;
            }
            if let Err(e) = self.conn.query_drop("SET SESSION wsrep_dirty_reads = ON") {
                log::debug!("dirty reads not available: {e}");
            }
        }
        self.causal = Some(causal);
        Ok(())
    }

    /// Which generation of the state table exists.
    pub fn schema(&mut self) -> Result<Schema> {
        let cols: Vec<(String, String)> = self
            .cells(&Schema::columns_query())?
            .into_iter()
            .filter_map(|r| {
                let mut it = r.into_iter();
                Some((it.next()??, it.next()??))
            })
            .collect();
        Schema::from_columns(&cols).map_err(|p| match p {
            SchemaProblem::Missing => Error::StateTableMissing,
            SchemaProblem::Unrecognised(m) => Error::StateTableUnrecognised(m),
        })
    }

    /// The rows of one link, with their nodes' reports.
    pub fn rows(&mut self, schema: &Schema, key: &str) -> Result<Vec<StateRow>> {
        let sql = schema.select_rows(key);
        state::parse_rows(self.cells(&sql)?).map_err(Error::StateTableUnrecognised)
    }

    /// The rows of several links, by key, in one statement.
    pub fn rows_of(
        &mut self,
        schema: &Schema,
        keys: &[&str],
    ) -> Result<HashMap<String, Vec<StateRow>>> {
        let sql = schema.select_rows_of(keys);
        state::parse_rows_by_key(self.cells(&sql)?).map_err(Error::StateTableUnrecognised)
    }

    /// The cluster's pause row, if there is one (whether or not it still holds).
    pub fn cluster_pause(
        &mut self,
        cluster: &str,
    ) -> Result<Option<crate::db::pause::ClusterPause>> {
        let cells = self.cells(&crate::db::pause::select(cluster))?;
        crate::db::pause::parse(cluster, cells).map_err(Error::StateTableUnrecognised)
    }

    /// The cluster's history, newest first ([`crate::db::history`]).
    pub fn history(
        &mut self,
        cluster: &str,
        q: &crate::db::history::Query,
    ) -> Result<Vec<crate::db::history::Entry>> {
        let cells = self.cells(&crate::db::history::select(cluster, q))?;
        crate::db::history::parse(cells).map_err(Error::StateTableUnrecognised)
    }

    /// The link's switchover request, if one was ever made ([`crate::db::switchover`]).
    pub fn switchover(&mut self, key: &str) -> Result<Option<crate::db::switchover::Request>> {
        let cells = self.cells(&crate::db::switchover::select(key))?;
        crate::db::switchover::parse(cells).map_err(Error::StateTableUnrecognised)
    }

    /// The switchover requests of several links, by key, in one statement.
    pub fn switchovers(
        &mut self,
        keys: &[&str],
    ) -> Result<HashMap<String, crate::db::switchover::Request>> {
        let cells = self.cells(&crate::db::switchover::select_of(keys))?;
        crate::db::switchover::parse_by_key(cells).map_err(Error::StateTableUnrecognised)
    }

    /// Waits, at most `seconds`, until this server has applied a GTID position; `true` once
    /// it has (see [`crate::db::flavor::Dialect::wait_for_position`]).
    pub fn await_position(
        &mut self,
        dialect: &dyn crate::db::flavor::Dialect,
        position: &str,
        seconds: u64,
    ) -> Result<bool> {
        Ok(self
            .first(&dialect.wait_for_position(position, seconds))?
            .is_some_and(|v| v.trim() == "0"))
    }

    /// This MariaDB node's own GTID domains: its cluster's (`wsrep_gtid_domain_id`) and its
    /// own (`gtid_domain_id`).
    pub fn local_gtid_domains(&mut self) -> Result<Vec<u32>> {
        let cells = self.cells("SELECT @@GLOBAL.wsrep_gtid_domain_id, @@GLOBAL.gtid_domain_id")?;
        Ok(cells
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|v| v.parse().ok())
            .collect())
    }

    /// Why a link is failing, if a node recorded it.
    pub fn failure(&mut self, schema: &Schema, key: &str) -> Result<Option<LinkFailure>> {
        Ok(self
            .cells(&schema.select_failure(key))?
            .first()
            .map(|r| state::parse_failure(r)))
    }

    /// The failures recorded for several links, in one statement, by the key the server
    /// returned.
    pub fn failures_of(
        &mut self,
        schema: &Schema,
        keys: &[&str],
    ) -> Result<HashMap<String, LinkFailure>> {
        Ok(self
            .cells(&schema.select_failures_of(keys))?
            .into_iter()
            .filter_map(|r| Some((r.get(4).cloned().flatten()?, state::parse_failure(&r))))
            .collect())
    }

    /// The topology tables: every link and every cluster's candidates.
    pub fn table_topology(&mut self) -> Result<TableTopology> {
        let text = |rows: Cells| -> Vec<Vec<String>> {
            rows.into_iter()
                .map(|r| r.into_iter().map(Option::unwrap_or_default).collect())
                .collect()
        };
        Ok(TableTopology {
            edges: text(self.cells(&TableTopology::links_query())?)
                .into_iter()
                .map(|r| (r[0].clone(), r[1].clone()))
                .collect(),
            clusters: text(self.cells(&TableTopology::clusters_query())?)
                .into_iter()
                .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
                .collect(),
        })
    }

    /// This node's weight in `percona.weight`.
    pub fn weight(&mut self, cluster: &str, node: &str) -> Result<Option<i64>> {
        Ok(self
            .first(&topology::weight_query(cluster, node))?
            .and_then(|w| w.parse().ok()))
    }

    /// Where a member of the current view accepts client connections, from Galera 4's
    /// `mysql.wsrep_cluster_members` (MariaDB 10.4+, PXC 8.0). `None` for a node that is not
    /// a member now, or a server without the table (PXC 5.7).
    pub fn member_address(&mut self, node: &str) -> Result<Option<String>> {
        let sql = format!(
            "SELECT node_incoming_address FROM mysql.wsrep_cluster_members WHERE CONVERT(node_name USING utf8mb4) = {}",
            quote(node)
        );
        match self.conn.query_first::<Option<String>, _>(&sql) {
            Ok(a) => Ok(a.flatten().filter(|a| usable_address(a))),
            // No such table (PXC 5.7), or no right to read it: no address from membership.
            Err(mysql::Error::MySqlError(e)) if matches!(e.code, 1146 | 1142 | 1044) => {
                log::debug!("no membership table: {}", e.message);
                Ok(None)
            }
            Err(e) => Err(Error::db("reading mysql.wsrep_cluster_members", e)),
        }
    }

    /// The members of the current view, as `(node_name, node_incoming_address)`, from Galera
    /// 4's `mysql.wsrep_cluster_members`. `None` on a server without the table (PXC 5.7) or
    /// without the right to read it: membership is then not known, and a silent holder is
    /// replaced after the heartbeat timeout only.
    pub fn members(&mut self) -> Result<Option<Vec<crate::db::clock::Member>>> {
        let pairs = self.rows_of_read(MEMBERS_QUERY).and_then(|rows| {
            rows.into_iter()
                .map(mysql::from_row_opt::<(Option<String>, Option<String>)>)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| mysql::Error::FromRowError(e.0))
        });
        match pairs {
            Ok(rows) => Ok(Some(
                rows.into_iter()
                    .filter_map(|(n, a)| Some((n?, a.filter(|a| usable_address(a)))))
                    .collect(),
            )),
            Err(mysql::Error::MySqlError(e)) if matches!(e.code, 1146 | 1142 | 1044) => {
                log::debug!("no membership table: {}", e.message);
                Ok(None)
            }
            Err(e) => Err(Error::db("reading mysql.wsrep_cluster_members", e)),
        }
    }

    /// Runs one statement and returns the number of affected rows. Only the executor calls
    /// this: every write goes through it, so dry-run and simulation see all of them.
    pub(super) fn execute(&mut self, sql: &str) -> std::result::Result<u64, mysql::Error> {
        self.ahead.clear();
        self.conn.query_drop(sql)?;
        Ok(self.conn.affected_rows())
    }

    /// Runs a locking read inside the executor's transaction; the cells are parsed by the
    /// caller, so a conflict stays a database error it can recognise.
    pub(super) fn locking_cells(&mut self, sql: &str) -> std::result::Result<Cells, mysql::Error> {
        self.ahead.clear();
        let rows: Vec<mysql::Row> = self.conn.query(sql)?;
        Ok(cells_of(&rows))
    }
}

/// Why a peer's channel could not be stopped, or a peer could not be checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PeerFailure {
    /// No TCP connection to its server within the probe timeout (refused, timed out, no
    /// route): it is down, or cut off from this node's network.
    Unreachable(String),
    /// Its server answered, but the fence could not be done: the login was denied, a privilege
    /// is missing, a statement failed. The server is alive, and its channel may run.
    Refused(String),
}

impl PeerFailure {
    /// `unreachable` or `refused`, as logs, reports and metrics name it.
    pub fn word(&self) -> &'static str {
        match self {
            PeerFailure::Unreachable(_) => "unreachable",
            PeerFailure::Refused(_) => "refused",
        }
    }

    /// What the server (or the network) said.
    pub fn reason(&self) -> &str {
        match self {
            PeerFailure::Unreachable(r) | PeerFailure::Refused(r) => r,
        }
    }
}

impl std::fmt::Display for PeerFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.word(), self.reason())
    }
}

/// What fencing a peer found.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FenceOutcome {
    /// Its channel ran; it is stopped now.
    Stopped,
    /// It answered and runs no thread of the channel.
    NotRunning,
    /// The fence did not happen.
    Failed(PeerFailure),
}

/// Logs in to a peer's server with the manager's own login, over TCP: first a plain TCP
/// connection (so that "unreachable" means exactly that no connection could be made within
/// the timeout), then the login.
fn reach_peer(
    login: &Login,
    address: &str,
    timeout: Duration,
) -> std::result::Result<Held<Conn>, PeerFailure> {
    let a = crate::config::SourceAddr::parse(address, 3306)
        .map_err(|e| PeerFailure::Unreachable(format!("bad address: {e}")))?;
    tcp_reachable(&a.host, a.port, timeout).map_err(|e| {
        PeerFailure::Unreachable(format!(
            "no TCP connection to {address} within {} s: {e}",
            timeout.as_secs_f64()
        ))
    })?;
    let mut login = login.clone();
    login.read_timeout = timeout;
    let target = Endpoint::Tcp {
        host: a.host,
        port: a.port,
    };
    open(&login, &target, timeout).map_err(|e| {
        PeerFailure::Refused(match e {
            Error::Connect { source, .. } => {
                format!("the login as {} failed: {}", login.user, describe(&source))
            }
            other => other.to_string(),
        })
    })
}

/// Whether a TCP connection to `host:port` can be made within `timeout` (each resolved
/// address is tried in turn). Nothing is sent.
pub fn tcp_reachable(host: &str, port: u16, timeout: Duration) -> std::io::Result<()> {
    use std::net::ToSocketAddrs;
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "the name resolves to no address",
    );
    for a in (host, port).to_socket_addrs()? {
        match std::net::TcpStream::connect_timeout(&a, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Turns Galera off for the session, so that a peer outside the Primary component accepts the
/// fence; `Err(why)` where the server does not allow it (MariaDB without `SUPER`).
fn without_galera(conn: &mut Conn, flavor: &Flavor) -> std::result::Result<(), String> {
    conn.query_drop(flavor.dialect().session_without_galera())
        .map_err(|e| describe(&e))
}

/// Connects to a peer of the cluster with the manager's own login and a short timeout, and
/// stops the channel if a thread of it runs. The session first turns Galera off for itself
/// (`SET SESSION wsrep_on = OFF`), so a peer cut off from the cluster, which refuses other
/// statements with error 1047, is fenced too. Reads first, so a peer that replicates nothing
/// is left alone. In a dry run (`dry`) it only reads, and says what it would have done.
pub(super) fn fence_peer(
    login: &Login,
    address: &str,
    flavor: &Flavor,
    channel: &Channel,
    timeout: Duration,
    dry: bool,
) -> FenceOutcome {
    let mut conn = match reach_peer(login, address, timeout) {
        Ok(c) => c,
        Err(f) => return FenceOutcome::Failed(f),
    };
    let galera_off = without_galera(&mut conn, flavor);
    let running = match channels(&mut conn, flavor) {
        Ok(chs) => chs
            .into_iter()
            .find(|c| c.channel == channel.as_str())
            .is_some_and(|c| state::ChannelState::of(Some(&c)).runs()),
        Err(e) => {
            return FenceOutcome::Failed(PeerFailure::Refused(format!(
                "could not read its channels: {}",
                describe(&e)
            )));
        }
    };
    if !running {
        return FenceOutcome::NotRunning;
    }
    if dry {
        return FenceOutcome::Stopped;
    }
    match conn.query_drop(flavor.dialect().stop_replica(channel)) {
        Ok(()) => FenceOutcome::Stopped,
        Err(e) => {
            let hint = match (&e, galera_off) {
                (mysql::Error::MySqlError(m), Err(why)) if m.code == 1047 => format!(
                    "; it is outside the Primary component, where a session must turn wsrep_on off to stop a channel, and that was refused ({why}): grant the login SUPER"
                ),
                _ => String::new(),
            };
            FenceOutcome::Failed(PeerFailure::Refused(format!(
                "could not stop its channel: {}{hint}",
                describe(&e)
            )))
        }
    }
}

/// What a read-only check of a peer found: whether a fence would work, and what it learned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerCheck {
    /// Why a fence of this peer would fail; `None` when it would work.
    pub problem: Option<PeerFailure>,
    /// What would not stop a fence of a Primary peer, but may stop another one: the session
    /// could not turn Galera off (a cut-off peer then cannot be fenced), or the privilege is
    /// held through a role that `SHOW GRANTS` does not expand.
    pub notes: Vec<String>,
    /// The peer's `@@server_id`, when it was read.
    pub server_id: Option<u64>,
}

/// Checks, changing nothing, that the manager's login can fence a peer: it connects, turns
/// Galera off for its session (as a fence does), reads the channels, and finds in `SHOW
/// GRANTS` the privilege to stop one. Nothing is stopped.
pub fn check_peer(login: &Login, address: &str, flavor: &Flavor, timeout: Duration) -> PeerCheck {
    let mut out = PeerCheck::default();
    let mut conn = match reach_peer(login, address, timeout) {
        Ok(c) => c,
        Err(f) => {
            out.problem = Some(f);
            return out;
        }
    };
    if let Err(why) = without_galera(&mut conn, flavor) {
        out.notes.push(format!(
            "the session cannot turn wsrep_on off ({why}): a fence of this peer fails while it is outside the Primary component; grant the login SUPER"
        ));
    }
    if let Err(e) = channels(&mut conn, flavor) {
        out.problem = Some(PeerFailure::Refused(format!(
            "could not read its channels ({}): {}",
            flavor.dialect().show_replica_status(),
            describe(&e)
        )));
        return out;
    }
    match conn.query::<String, _>("SHOW GRANTS") {
        Ok(lines) => {
            let g = crate::db::grants::Grants::parse(&lines);
            let need = crate::db::grants::REPLICATION_ADMIN;
            if !g.global(need.any_of) {
                let what = format!(
                    "SHOW GRANTS shows none of {} on *.*, which a fence needs to {}",
                    need.any_of.join(", "),
                    need.what
                );
                if g.has_roles() {
                    out.notes.push(format!(
                        "{what}; it may come from a role ({}), which this check cannot see",
                        g.roles().join(", ")
                    ));
                } else {
                    out.problem = Some(PeerFailure::Refused(format!(
                        "the login as {} lacks the privilege: {what}",
                        login.user
                    )));
                }
            }
        }
        Err(e) => {
            out.problem = Some(PeerFailure::Refused(format!(
                "could not read its grants: {}",
                describe(&e)
            )));
        }
    }
    out.server_id = conn
        .query_first::<u64, _>("SELECT @@server_id")
        .ok()
        .flatten();
    out
}
