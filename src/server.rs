//! Reads from the local server: the node's wsrep facts, its replica channels, the state table,
//! the topology tables. Also the connection itself (option file, timeouts, TLS) and read-only
//! probes of remote source candidates.
//!
//! Nothing here changes a server. The one method that sends a writing statement,
//! [`LocalServer::execute`], is `pub(crate)` and called only by `executor.rs`, the one writer.

use crate::config::{Endpoint, Local, LocalTls, SourceAddr};
use crate::error::{Error, Result};
use crate::flavor::{Flavor, ReplicaStatus};
use crate::mycnf::{self, ClientOptions};
use crate::sql::Secret;
use crate::state::{LinkFailure, Role, Schema, SchemaProblem, StateRow};
use crate::topology::{self, Link, TableTopology};
use mysql::prelude::Queryable;
use mysql::{ClientIdentity, Conn, OptsBuilder, SslOpts, Value};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the node says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeFacts {
    /// This node's name in the state table (`wsrep_node_name`, or the config's `node`).
    pub name: String,
    /// `wsrep_cluster_name`, or the config's `cluster`.
    pub cluster: String,
    /// `wsrep_cluster_status`: `Primary`, `non-Primary` or `Disconnected`.
    pub cluster_status: String,
    /// `wsrep_local_state`: 1 Joining, 2 Donor, 3 Joined, 4 Synced.
    pub local_state: i64,
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
}

impl NodeFacts {
    /// In the Primary component: the state table can be written.
    pub fn is_primary(&self) -> bool {
        self.cluster_status == "Primary"
    }

    /// Primary and Synced (4) or Donor (2): the only states in which the node acts.
    pub fn can_act(&self) -> bool {
        self.is_primary() && matches!(self.local_state, 2 | 4)
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
            return Err(Error::Node(
                "this server is not a Galera node (wsrep_on is not ON); pxc-replication-manager runs on the nodes of PXC or MariaDB Galera clusters".into(),
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
            return Err(Error::Node(
                "wsrep_cluster_name or wsrep_node_name is empty; set them in the server config or as `cluster`/`node` in [local]".into(),
            ));
        }
        Ok(NodeFacts {
            name,
            cluster,
            cluster_status: status
                .get("wsrep_cluster_status")
                .cloned()
                .unwrap_or_else(|| "Disconnected".into()),
            local_state: int("wsrep_local_state").unwrap_or(0),
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
        })
    }
}

/// How to log in: endpoint and credentials, resolved from the config and the option file.
#[derive(Clone, Debug)]
pub struct Login {
    pub endpoint: Endpoint,
    pub user: String,
    pub password: Option<Secret>,
    pub tls: Option<LocalTls>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

impl Login {
    /// Resolves the login: the config's `[local]` wins over the option file, which wins over
    /// the usual socket paths. `defaults_file` (from `--defaults-file`) replaces the config's.
    pub fn resolve(local: &Local, defaults_file: Option<&Path>) -> Result<Login> {
        let file: Option<PathBuf> = defaults_file
            .map(Path::to_path_buf)
            .or_else(|| local.defaults_file.clone());
        let opts = match &file {
            Some(f) => mycnf::read(f)?,
            None => match home_my_cnf() {
                Some(f) if f.exists() => mycnf::read(&f)?,
                _ => ClientOptions::default(),
            },
        };
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
        Ok(Login {
            endpoint,
            user: opts
                .user
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "root".into()),
            password: opts.password,
            tls,
            connect_timeout: local.connect_timeout,
            read_timeout: local.read_timeout,
        })
    }
}

fn home_my_cnf() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".my.cnf"))
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

fn ssl_opts(tls: &LocalTls) -> SslOpts {
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

/// A connection to the local server.
pub struct LocalServer {
    conn: Conn,
    endpoint: String,
}

impl LocalServer {
    /// Connects and prepares the session: `NO_BACKSLASH_ESCAPES` off, so that
    /// [`crate::sql::quote`] is exact.
    pub fn connect(login: &Login) -> Result<LocalServer> {
        let endpoint = login.endpoint.to_string();
        let mut b = OptsBuilder::new()
            .user(Some(login.user.clone()))
            .pass(login.password.as_ref().map(|p| p.expose().to_string()))
            .tcp_connect_timeout(Some(login.connect_timeout))
            .read_timeout(Some(login.read_timeout))
            .write_timeout(Some(login.read_timeout))
            .prefer_socket(false)
            .stmt_cache_size(0);
        b = match &login.endpoint {
            Endpoint::Socket(p) => b.socket(Some(p.display().to_string())),
            Endpoint::Tcp { host, port } => b.ip_or_hostname(Some(host.clone())).tcp_port(*port),
        };
        if let Some(t) = &login.tls {
            b = b.ssl_opts(Some(ssl_opts(t)));
        }
        let conn = Conn::new(b).map_err(|e| Error::Connect {
            endpoint: endpoint.clone(),
            message: describe(&e),
        })?;
        let mut s = LocalServer { conn, endpoint };
        s.conn
            .query_drop(
                "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
            )
            .map_err(|e| Error::db("preparing the session", e))?;
        Ok(s)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The TLS cipher of this connection, if it is encrypted.
    pub fn tls_cipher(&mut self) -> Result<Option<String>> {
        Ok(self
            .name_values("SHOW SESSION STATUS LIKE 'Ssl_cipher'")?
            .remove("ssl_cipher")
            .filter(|c| !c.is_empty()))
    }

    fn query_maps(&mut self, sql: &str) -> Result<Vec<HashMap<String, Option<String>>>> {
        let rows: Vec<mysql::Row> = self
            .conn
            .query(sql)
            .map_err(|e| Error::db(format!("reading `{sql}`"), e))?;
        Ok(rows
            .iter()
            .map(|r| {
                r.columns_ref()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name_str().into_owned(), r.as_ref(i).and_then(cell)))
                    .collect()
            })
            .collect())
    }

    fn query_cells(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let rows: Vec<mysql::Row> = self
            .conn
            .query(sql)
            .map_err(|e| Error::db(format!("reading `{sql}`"), e))?;
        Ok(rows
            .iter()
            .map(|r| (0..r.len()).map(|i| r.as_ref(i).and_then(cell)).collect())
            .collect())
    }

    fn name_values(&mut self, sql: &str) -> Result<HashMap<String, String>> {
        Ok(self
            .query_cells(sql)?
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

    /// The node's facts. Uses `SHOW` statements only, which a node outside the Primary
    /// component still answers.
    pub fn facts(&mut self, local: &Local) -> Result<NodeFacts> {
        let status = self.name_values("SHOW GLOBAL STATUS LIKE 'wsrep%'")?;
        let vars = self.name_values(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('version', 'version_comment', 'hostname', 'wsrep_on', 'wsrep_cluster_name', 'wsrep_node_name', 'wsrep_gtid_domain_id', 'gtid_binlog_pos', 'gtid_executed')",
        )?;
        NodeFacts::from_status(&status, &vars, local)
    }

    /// Every replica channel of the node.
    pub fn replica_statuses(&mut self, flavor: &Flavor) -> Result<Vec<ReplicaStatus>> {
        let d = flavor.dialect();
        Ok(self
            .query_maps(d.show_replica_status())?
            .iter()
            .map(|r| ReplicaStatus::from_row(d.status_columns(), r))
            .collect())
    }

    /// Reads through to the latest cluster-wide state before each read (Galera causal reads),
    /// so a row another node committed a moment ago is seen. Only on a node that can act;
    /// elsewhere reads would be refused.
    pub fn enable_causal_reads(&mut self) -> Result<()> {
        self.conn
            .query_drop("SET SESSION wsrep_sync_wait = 1")
            .map_err(|e| Error::db("enabling causal reads (wsrep_sync_wait)", e))
    }

    /// Allows reads on a node outside the Primary component (stale, for information only).
    pub fn enable_dirty_reads(&mut self) -> Result<()> {
        self.conn
            .query_drop("SET SESSION wsrep_dirty_reads = ON")
            .map_err(|e| Error::db("enabling dirty reads (wsrep_dirty_reads)", e))
    }

    /// Which generation of the state table exists.
    pub fn schema(&mut self) -> Result<Schema> {
        let cols: Vec<(String, String)> = self
            .query_cells(&Schema::columns_query())?
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

    /// The rows of one link.
    pub fn rows(&mut self, schema: &Schema, key: &str) -> Result<Vec<StateRow>> {
        let sql = schema.select_rows(key);
        parse_rows(self.query_cells(&sql)?)
    }

    /// Why a link is failing, if a node recorded it.
    pub fn failure(&mut self, schema: &Schema, key: &str) -> Result<Option<LinkFailure>> {
        Ok(self
            .query_cells(&schema.select_failure(key))?
            .into_iter()
            .next()
            .map(|r| {
                let g = |i: usize| r.get(i).cloned().flatten();
                LinkFailure {
                    host: g(0).unwrap_or_default(),
                    kind: g(1).unwrap_or_default(),
                    age: g(2).and_then(|v| v.parse::<f64>().ok()).map(|v| v as i64),
                    detail: g(3).unwrap_or_default(),
                }
            }))
    }

    /// The topology tables: every link and every cluster's candidates.
    pub fn table_topology(&mut self) -> Result<TableTopology> {
        let pairs = |rows: Vec<Vec<Option<String>>>| -> Vec<Vec<String>> {
            rows.into_iter()
                .map(|r| r.into_iter().map(Option::unwrap_or_default).collect())
                .collect()
        };
        Ok(TableTopology {
            edges: pairs(self.query_cells(&TableTopology::links_query())?)
                .into_iter()
                .map(|r| (r[0].clone(), r[1].clone()))
                .collect(),
            clusters: pairs(self.query_cells(&TableTopology::clusters_query())?)
                .into_iter()
                .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
                .collect(),
        })
    }

    /// This node's weight in `percona.weight`.
    pub fn weight(&mut self, cluster: &str, node: &str) -> Result<Option<i64>> {
        Ok(self
            .query_cells(&topology::weight_query(cluster, node))?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
            .and_then(|w| w.parse().ok()))
    }

    /// Runs one statement and returns the number of affected rows. Only `executor.rs` calls
    /// this: every write goes through the executor, so dry-run and simulation see all of them.
    pub(crate) fn execute(&mut self, sql: &str) -> std::result::Result<u64, mysql::Error> {
        self.conn.query_drop(sql)?;
        Ok(self.conn.affected_rows())
    }

    /// Runs a locking read inside the executor's transaction.
    pub(crate) fn locking_rows(
        &mut self,
        sql: &str,
    ) -> std::result::Result<Vec<StateRow>, mysql::Error> {
        let rows: Vec<mysql::Row> = self.conn.query(sql)?;
        let cells = rows
            .iter()
            .map(|r| (0..r.len()).map(|i| r.as_ref(i).and_then(cell)).collect())
            .collect();
        parse_rows(cells).map_err(|e| mysql::Error::from(std::io::Error::other(e.to_string())))
    }
}

fn parse_rows(cells: Vec<Vec<Option<String>>>) -> Result<Vec<StateRow>> {
    cells
        .into_iter()
        .map(|r| {
            let g = |i: usize| r.get(i).cloned().flatten();
            let role_text = g(3).unwrap_or_else(|| "No".into());
            Ok(StateRow {
                host: g(0).unwrap_or_default(),
                local_index: g(1).and_then(|v| v.parse().ok()),
                weight: g(2).and_then(|v| v.parse().ok()).unwrap_or(0),
                role: role_text
                    .parse::<Role>()
                    .map_err(|e| Error::StateTableUnrecognised(format!("row {:?}: {e}", g(0))))?,
                heartbeat_age: g(4).and_then(|v| v.parse::<f64>().ok()).map(|v| v as i64),
                update_age: g(5).and_then(|v| v.parse::<f64>().ok()).map(|v| v as i64),
                current_source: g(6),
            })
        })
        .collect()
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

/// What a read-only login to a source candidate found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// MariaDB: the candidate's `wsrep_gtid_domain_id`.
    pub gtid_domain_id: Option<u32>,
}

/// Logs in to a source candidate with the link's replication credentials and reads its GTID
/// domain. Reads only; used to learn `DO_DOMAIN_IDS` and, in dry-run, to tell whether a
/// candidate answers.
pub fn probe_source(
    link: &Link,
    source: &SourceAddr,
    timeout: Duration,
) -> std::result::Result<Probe, String> {
    let mut b = OptsBuilder::new()
        .ip_or_hostname(Some(source.host.clone()))
        .tcp_port(source.port)
        .user(Some(link.user.clone()))
        .pass(Some(link.password.expose().to_string()))
        .tcp_connect_timeout(Some(timeout))
        .read_timeout(Some(timeout))
        .write_timeout(Some(timeout))
        .prefer_socket(false)
        .stmt_cache_size(0);
    if let Some(t) = &link.tls {
        b = b.ssl_opts(Some(ssl_opts(&LocalTls {
            ca: t.ca.as_ref().map(PathBuf::from),
            cert: t.cert.as_ref().map(PathBuf::from),
            key: t.key.as_ref().map(PathBuf::from),
            verify: t.verify_server_cert,
        })));
    }
    let mut conn = Conn::new(b).map_err(|e| describe(&e))?;
    let domain: Option<Option<String>> = conn
        .query_first("SELECT IF(@@version LIKE '%MariaDB%', @@wsrep_gtid_domain_id, NULL)")
        .map_err(|e| describe(&e))?;
    Ok(Probe {
        gtid_domain_id: domain.flatten().and_then(|d| d.parse().ok()),
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
    fn a_server_without_galera_is_refused() {
        let mut vars = galera_vars();
        vars.insert("wsrep_on".into(), "OFF".into());
        let e =
            NodeFacts::from_status(&HashMap::new(), &vars, &Config::defaults().local).unwrap_err();
        assert!(e.to_string().contains("not a Galera node"));
    }

    #[test]
    fn state_rows_parse_with_server_computed_ages() {
        let rows = parse_rows(vec![vec![
            Some("DC1-1".into()),
            Some("0".into()),
            Some("5".into()),
            Some("Yes".into()),
            Some("12".into()),
            Some("300".into()),
            Some("10.0.2.1:3306".into()),
        ]])
        .unwrap();
        assert_eq!(rows[0].role, Role::Yes);
        assert_eq!(rows[0].heartbeat_age, Some(12));
        assert!(rows[0].is_fresh(179));
        assert!(
            parse_rows(vec![vec![
                Some("x".into()),
                None,
                None,
                Some("Maybe".into())
            ]])
            .is_err()
        );
    }
}
