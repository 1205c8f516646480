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
    Ok(maps_of(&rows)
        .iter()
        .map(|r| ReplicaStatus::from_row(d.status_columns(), r))
        .collect())
}

/// A connection to the local server.
pub struct LocalServer {
    conn: Held<Conn>,
    endpoint: String,
    /// The read mode set on the connection (see [`LocalServer::read_mode`]).
    causal: Option<bool>,
}

impl LocalServer {
    pub fn connect(login: &Login) -> Result<LocalServer> {
        Ok(LocalServer {
            conn: open(login, &login.endpoint, login.connect_timeout)?,
            endpoint: login.endpoint.to_string(),
            causal: None,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the connection still answers; a kept connection that does not is replaced.
    pub fn alive(&mut self) -> bool {
        self.conn.ping().is_ok()
    }

    fn query(&mut self, sql: &str) -> Result<Vec<mysql::Row>> {
        self.conn
            .query(sql)
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
        let status = self.name_values(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status', 'wsrep_local_state', 'wsrep_local_state_comment', 'wsrep_local_index', 'wsrep_cluster_size')",
        )?;
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
                .conn
                .query_first::<mysql::Row, _>(server::variables_query(&names))
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
        channels(&mut self.conn, flavor).map_err(|e| Error::db("reading the replica status", e))
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
                .query_drop("SET SESSION wsrep_sync_wait = 1")
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

    /// The cluster's pause row, if there is one (whether or not it still holds).
    pub fn cluster_pause(
        &mut self,
        cluster: &str,
    ) -> Result<Option<crate::db::pause::ClusterPause>> {
        let cells = self.cells(&crate::db::pause::select(cluster))?;
        crate::db::pause::parse(cluster, cells).map_err(Error::StateTableUnrecognised)
    }

    /// Why a link is failing, if a node recorded it.
    pub fn failure(&mut self, schema: &Schema, key: &str) -> Result<Option<LinkFailure>> {
        Ok(self
            .cells(&schema.select_failure(key))?
            .into_iter()
            .next()
            .map(|r| {
                let g = |i: usize| r.get(i).cloned().flatten();
                LinkFailure {
                    host: g(0).unwrap_or_default(),
                    // Only this tool writes the column; anything else reads as the mildest.
                    kind: g(1)
                        .and_then(|k| k.parse().ok())
                        .unwrap_or(crate::db::state::FailureKind::Connect),
                    age: g(2).and_then(|v| v.parse::<f64>().ok()).map(|v| v as i64),
                    detail: g(3).unwrap_or_default(),
                }
            }))
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
        let sql = "SELECT CONVERT(node_name USING utf8mb4), CONVERT(node_incoming_address USING utf8mb4) FROM mysql.wsrep_cluster_members";
        match self.conn.query::<(Option<String>, Option<String>), _>(sql) {
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
        self.conn.query_drop(sql)?;
        Ok(self.conn.affected_rows())
    }

    /// Runs a locking read inside the executor's transaction; the cells are parsed by the
    /// caller, so a conflict stays a database error it can recognise.
    pub(super) fn locking_cells(&mut self, sql: &str) -> std::result::Result<Cells, mysql::Error> {
        let rows: Vec<mysql::Row> = self.conn.query(sql)?;
        Ok(cells_of(&rows))
    }
}

/// What fencing a peer found.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FenceOutcome {
    /// Its channel ran; it is stopped now.
    Stopped,
    /// It answered and runs no thread of the channel.
    NotRunning,
    /// It could not be reached (down, or cut off) or refused the login.
    Unreachable(String),
}

/// Connects to a peer of the cluster with the manager's own login and a short timeout, and
/// stops the channel if a thread of it runs. Reads first, so a peer that replicates nothing is
/// left alone. In a dry run (`dry`) it only reads, and says what it would have done.
pub(super) fn fence_peer(
    login: &Login,
    address: &str,
    flavor: &Flavor,
    channel: &Channel,
    timeout: Duration,
    dry: bool,
) -> FenceOutcome {
    let target = match crate::config::SourceAddr::parse(address, 3306) {
        Ok(a) => Endpoint::Tcp {
            host: a.host,
            port: a.port,
        },
        Err(e) => return FenceOutcome::Unreachable(format!("bad address: {e}")),
    };
    let mut login = login.clone();
    login.read_timeout = timeout;
    let mut conn = match open(&login, &target, timeout) {
        Ok(c) => c,
        Err(e) => return FenceOutcome::Unreachable(e.to_string()),
    };
    let running = match channels(&mut conn, flavor) {
        Ok(chs) => chs
            .into_iter()
            .find(|c| c.channel == channel.as_str())
            .is_some_and(|c| state::ChannelState::of(Some(&c)).runs()),
        Err(e) => return FenceOutcome::Unreachable(describe(&e)),
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
            FenceOutcome::Unreachable(format!("could not stop its channel: {}", describe(&e)))
        }
    }
}
