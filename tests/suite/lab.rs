//! The real-cluster laboratory shared by `sandbox.rs` and `faults.rs`: fresh Galera clusters
//! from `scripts/sandbox`, SQL on any node, and the fault suite's instruments:
//!
//! * [`Writer`]: continuous inserts with ids unique per writer, spread over a cluster's nodes,
//!   surviving node deaths; it returns the acknowledged ids;
//! * [`Monitor`]: samples every live node's replica status every 50 ms and finds split-brain
//!   moments (two nodes of a cluster running a thread of the same link at once) and the
//!   interruptions of each link;
//! * [`Ticker`]: runs the binary on every live node at once, every tick, like cron;
//! * [`Sandbox::end_check`]: drains, then checks that every acknowledged row is everywhere,
//!   checksums agree, no channel is in error, and the state table agrees with reality.
//!
//! The clusters share loopback addresses, so one test holds them at a time.

use crate::harness::{BIN, Out, pxcrm, repo, wait_until};
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub const DC1: [&str; 3] = ["DC1-1", "DC1-2", "DC1-3"];
pub const DC2: [&str; 3] = ["DC2-1", "DC2-2", "DC2-3"];

/// The loopback address of a node: DC<i>-<n> is 127.0.0.<10 i + n>.
pub fn addr(node: &str) -> String {
    let (c, n) = node.split_once('-').unwrap();
    let i: u32 = c[2..].parse().unwrap();
    let n: u32 = n.parse().unwrap();
    format!("127.0.0.{}", i * 10 + n)
}

/// The cluster of a node: DC1-2 -> DC1.
pub fn cluster_of(node: &str) -> &str {
    node.split_once('-').unwrap().0
}

fn conn_to(node: &str, connect: Duration, read: Duration) -> Result<Conn, String> {
    Conn::new(
        OptsBuilder::new()
            .ip_or_hostname(Some(addr(node)))
            .user(Some("pxcrm"))
            .pass(Some("pxcrm-pass"))
            .tcp_connect_timeout(Some(connect))
            .read_timeout(Some(read))
            .write_timeout(Some(read)),
    )
    .map_err(|e| format!("{node}: {e}"))
}

fn text(v: Option<&mysql::Value>) -> String {
    match v {
        Some(mysql::Value::NULL) | None => String::new(),
        Some(mysql::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(v) => v.as_sql(true),
    }
}

/// A replication channel as a test sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub name: String,
    pub source: String,
    pub io: String,
    pub sql: String,
    pub io_errno: String,
    pub sql_errno: String,
    pub sql_error: String,
}

impl Channel {
    pub fn healthy(&self) -> bool {
        self.io == "Yes" && self.sql == "Yes"
    }
    /// A thread of the channel runs (an IO thread that is connecting counts).
    pub fn running(&self) -> bool {
        self.io == "Yes" || self.io == "Connecting" || self.sql == "Yes"
    }
}

fn read_channels(c: &mut Conn) -> Result<Vec<Channel>, String> {
    let rows: Vec<mysql::Row> = c
        .query("SHOW ALL SLAVES STATUS")
        .map_err(|e| e.to_string())?;
    Ok(rows
        .iter()
        .map(|r| {
            let m: HashMap<String, String> = r
                .columns_ref()
                .iter()
                .enumerate()
                .map(|(i, col)| (col.name_str().into_owned(), text(r.as_ref(i))))
                .collect();
            Channel {
                name: m["Connection_name"].clone(),
                source: m["Master_Host"].clone(),
                io: m["Slave_IO_Running"].clone(),
                sql: m["Slave_SQL_Running"].clone(),
                io_errno: m["Last_IO_Errno"].clone(),
                sql_errno: m["Last_SQL_Errno"].clone(),
                sql_error: m["Last_SQL_Error"].clone(),
            }
        })
        .collect())
}

/// How to start the clusters.
pub struct Options {
    pub heartbeat: u64,
    pub failed: u64,
    pub connect: u64,
    /// `[timeouts] probe`: on loopback a dead source refuses at once, so 2 s is plenty.
    pub probe: u64,
    /// Run `init` on the first node of each cluster.
    pub init: bool,
    /// `SANDBOX_CLUSTERS`.
    pub clusters: &'static str,
    /// `SANDBOX_LINKS` (default: every cluster replicates from every other).
    pub links: Option<&'static str>,
    /// Extra environment for `scripts/sandbox up`.
    pub env: Vec<(&'static str, String)>,
    /// Adds `[daemon] interval` (seconds) to every node's manager config.
    pub daemon_interval: Option<u64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            heartbeat: 179,
            failed: 180,
            connect: 20,
            probe: 2,
            init: true,
            clusters: "DC1 DC2",
            links: None,
            env: Vec::new(),
            daemon_interval: None,
        }
    }
}

/// Fresh sandbox clusters, held for the duration of one test.
pub struct Sandbox {
    _one: MutexGuard<'static, ()>,
    pub dir: PathBuf,
    /// Nodes that are down (killed), shared with the ticker and the monitor.
    pub down: Arc<Mutex<HashSet<String>>>,
    /// Nodes whose manager does not run (no cron line) while their server runs.
    pub no_manager: Arc<Mutex<HashSet<String>>>,
    /// Cluster name -> its nodes.
    pub clusters: BTreeMap<String, Vec<String>>,
}

impl Sandbox {
    /// Two fresh 3-node clusters with the given manager timeouts.
    pub fn fresh(heartbeat: u64, failed: u64, connect: u64) -> Sandbox {
        Sandbox::start(Options {
            heartbeat,
            failed,
            connect,
            ..Options::default()
        })
    }

    /// Takes every cluster down, brings fresh ones up, creates the percona schema (with
    /// `init`, on one node per cluster, unless told not to) and the test table `sbtest.t`.
    /// Panics when the clusters cannot be started: a real-cluster test never passes without
    /// them (they are `#[ignore]`d by default and run by `scripts/test`).
    pub fn start(o: Options) -> Sandbox {
        let one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = PathBuf::from(
            std::env::var("SANDBOX_DIR").unwrap_or_else(|_| "/tmp/pxcrm-sandbox".into()),
        );
        let mut sb = Sandbox {
            _one: one,
            dir,
            down: Arc::new(Mutex::new(HashSet::new())),
            no_manager: Arc::new(Mutex::new(HashSet::new())),
            clusters: BTreeMap::new(),
        };
        let mut env: Vec<(&str, String)> = vec![
            ("SANDBOX_HEARTBEAT_TIMEOUT", o.heartbeat.to_string()),
            ("SANDBOX_FAILED_TIMEOUT", o.failed.to_string()),
            ("SANDBOX_CONNECT_TIMEOUT", o.connect.to_string()),
            ("SANDBOX_PROBE_TIMEOUT", o.probe.to_string()),
            ("SANDBOX_CLUSTERS", o.clusters.to_string()),
        ];
        if let Some(l) = o.links {
            env.push(("SANDBOX_LINKS", l.to_string()));
        }
        env.extend(o.env.iter().map(|(k, v)| (*k, v.clone())));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        sb.script(&["down"], &env);
        sb.script(&["up"], &env);
        if let Some(i) = o.daemon_interval {
            for n in sb.script(&["nodes"], &env).lines() {
                let path = sb.dir.join(n).join("manager.toml");
                let text = std::fs::read_to_string(&path).unwrap();
                let text = text.replacen(
                    "[timeouts]",
                    &format!("[daemon]\ninterval = {i}\n\n[timeouts]"),
                    1,
                );
                std::fs::write(&path, text).unwrap();
            }
        }
        for c in o.clusters.split_whitespace() {
            let nodes: Vec<String> = sb
                .script(&["nodes", c], &env)
                .lines()
                .map(str::to_string)
                .collect();
            sb.clusters.insert(c.to_string(), nodes);
        }
        let firsts: Vec<String> = sb.clusters.values().map(|n| n[0].clone()).collect();
        for n in firsts {
            if o.init {
                let out = sb.manager(&n, &["init"]);
                assert_eq!(out.code, 0, "init on {n}: {}", out.all());
            }
            sb.sql(
                &n,
                "CREATE DATABASE IF NOT EXISTS sbtest; CREATE TABLE IF NOT EXISTS sbtest.t (id varchar(64) NOT NULL PRIMARY KEY, origin varchar(16) NOT NULL) ENGINE=InnoDB",
            );
        }
        sb
    }

    pub fn script(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let mut c = Command::new(repo().join("scripts/sandbox"));
        c.args(args).env("SANDBOX_DIR", &self.dir);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().expect("scripts/sandbox runs");
        assert!(
            o.status.success(),
            "scripts/sandbox {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Every node of every cluster.
    pub fn all_nodes(&self) -> Vec<String> {
        self.clusters.values().flatten().cloned().collect()
    }

    pub fn nodes(&self, cluster: &str) -> Vec<String> {
        self.clusters[cluster].clone()
    }

    pub fn is_down(&self, node: &str) -> bool {
        self.down.lock().unwrap().contains(node)
    }

    /// The live nodes of every cluster.
    pub fn live_nodes(&self) -> Vec<String> {
        self.all_nodes()
            .into_iter()
            .filter(|n| !self.is_down(n))
            .collect()
    }

    pub fn config(&self, node: &str) -> String {
        self.dir
            .join(node)
            .join("manager.toml")
            .display()
            .to_string()
    }

    /// A node's manager config that logs in as `user` with `password` (from an option file
    /// written beside it, `<user>.cnf`), through the local socket when `socket`, else over TCP
    /// as the sandbox's own config does. Returns the config's text.
    pub fn config_with_login(
        &self,
        node: &str,
        user: &str,
        password: &str,
        socket: bool,
    ) -> String {
        let dir = self.dir.join(node);
        let cnf = dir.join(format!("{user}.cnf"));
        std::fs::write(
            &cnf,
            format!("[client]\nuser={user}\npassword={password}\n"),
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.join("manager.toml")).unwrap();
        let mut out = String::new();
        // Only [local] has a host and a port line; [[link]] lists its sources.
        for line in text.lines() {
            if line.starts_with("defaults_file = ") {
                out.push_str(&format!("defaults_file = {cnf:?}\n"));
            } else if socket && line.starts_with("host = ") {
                out.push_str(&format!("socket = {:?}\n", dir.join("mysqld.sock")));
            } else if socket && line.starts_with("port = ") {
                continue;
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        assert!(out.contains(&format!("{user}.cnf")), "{out}");
        out
    }

    /// Runs the manager on a node with a subcommand.
    pub fn manager(&self, node: &str, args: &[&str]) -> Out {
        self.manager_with(&self.config(node), args)
    }

    pub fn manager_with(&self, config: &str, args: &[&str]) -> Out {
        let mut a = vec!["--config", config];
        a.extend_from_slice(args);
        pxcrm(&a)
    }

    /// Runs SQL on every node of every cluster, outside Galera and the binlog: the way a dump
    /// restored with its GTID position leaves data that no replication stream will replay.
    pub fn sql_everywhere_unlogged(&self, q: &str) {
        for n in self.all_nodes() {
            self.sql_unlogged(&n, q);
        }
    }

    /// Runs SQL on one node only, outside Galera and the binlog.
    pub fn sql_unlogged(&self, node: &str, q: &str) {
        self.sql(
            node,
            &format!("SET SESSION wsrep_on = OFF; SET SESSION sql_log_bin = 0; {q}"),
        );
    }

    /// One cron run on a node; it must succeed.
    pub fn run(&self, node: &str) -> Out {
        let o = self.manager(node, &["run"]);
        assert_eq!(o.code, 0, "run on {node}: {}", o.all());
        o
    }

    /// Two cron rounds over every live node: on a fresh cluster the first round adds the rows
    /// and the second elects.
    pub fn settle(&self) {
        for _ in 0..2 {
            for n in self.live_nodes() {
                self.run(&n);
            }
        }
    }

    /// One cron round over the live nodes among `nodes`.
    pub fn round(&self, nodes: &[&str]) {
        for n in nodes {
            if !self.is_down(n) {
                self.run(n);
            }
        }
    }

    pub fn conn(&self, node: &str) -> Result<Conn, String> {
        conn_to(node, Duration::from_secs(2), Duration::from_secs(10))
    }

    pub fn try_sql(&self, node: &str, q: &str) -> Result<Vec<Vec<String>>, String> {
        let mut c = self.conn(node)?;
        let rows: Vec<mysql::Row> = c.query(q).map_err(|e| format!("{node}: {q}: {e}"))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| match r.as_ref(i) {
                        Some(mysql::Value::NULL) | None => "NULL".to_string(),
                        v => text(v),
                    })
                    .collect()
            })
            .collect())
    }

    pub fn sql(&self, node: &str, q: &str) -> Vec<Vec<String>> {
        self.try_sql(node, q).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn value(&self, node: &str, q: &str) -> String {
        self.sql(node, q)[0][0].clone()
    }

    pub fn channels(&self, node: &str) -> Result<Vec<Channel>, String> {
        read_channels(&mut self.conn(node)?)
    }

    /// The live nodes among `nodes` that have a channel, with it.
    pub fn replicas(&self, nodes: &[&str]) -> Vec<(String, Channel)> {
        nodes
            .iter()
            .filter(|n| !self.is_down(n))
            .flat_map(|n| {
                self.channels(n)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .into_iter()
                    .map(move |c| (n.to_string(), c))
            })
            .collect()
    }

    /// Exactly one live node among `nodes` replicates, healthily: returns it and its channel.
    pub fn only_replica(&self, nodes: &[&str]) -> Result<(String, Channel), String> {
        let r = self.replicas(nodes);
        match r.as_slice() {
            [(n, c)] if c.healthy() => Ok((n.clone(), c.clone())),
            _ => Err(format!("replicas: {r:?}")),
        }
    }

    /// The live node of a cluster replicating a channel healthily, if exactly one does.
    pub fn replica_of(&self, cluster: &str, channel: &str) -> Result<(String, Channel), String> {
        let nodes = self.nodes(cluster);
        let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
        let r: Vec<_> = self
            .replicas(&nodes)
            .into_iter()
            .filter(|(_, c)| c.name == channel)
            .collect();
        match r.as_slice() {
            [(n, c)] if c.healthy() => Ok((n.clone(), c.clone())),
            _ => Err(format!("{channel}: {r:?}")),
        }
    }

    /// Waits (up to a minute, the ticker running) for exactly one healthy replica of a channel
    /// in a cluster. In a chain, a link can start before the remote has the GTIDs it relays
    /// (error 1236, "not in the master's binlog") and be healthy only a run later, on
    /// another source: the state a fault test starts from is waited for, not assumed.
    pub fn await_replica(&self, cluster: &str, channel: &str) -> (String, Channel) {
        wait_until(
            &format!("exactly one healthy replica of {channel:?} in {cluster}"),
            Duration::from_secs(60),
            || self.replica_of(cluster, channel),
        )
    }

    /// The live node of a cluster that runs a thread of a channel, healthily, if exactly one
    /// does; a channel configured on another node but stopped (a fenced one) is ignored.
    pub fn running_replica_of(
        &self,
        cluster: &str,
        channel: &str,
    ) -> Result<(String, Channel), String> {
        let nodes = self.nodes(cluster);
        let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
        let r: Vec<_> = self
            .replicas(&nodes)
            .into_iter()
            .filter(|(_, c)| c.name == channel && c.running())
            .collect();
        match r.as_slice() {
            [(n, c)] if c.healthy() => Ok((n.clone(), c.clone())),
            _ => Err(format!("{channel}: {r:?}")),
        }
    }

    /// Waits until a node other than `gone` replicates the channel healthily, and no other
    /// node runs a thread of it.
    pub fn await_new_replica(&self, cluster: &str, channel: &str, gone: &str) -> (String, Channel) {
        wait_until(
            &format!("a node of {cluster} other than {gone} to replicate {channel:?}"),
            Duration::from_secs(60),
            || {
                let (n, c) = self.running_replica_of(cluster, channel)?;
                if n != gone {
                    Ok((n, c))
                } else {
                    Err(format!("still {gone}"))
                }
            },
        )
    }

    /// One column of a node's first replication channel, as `SHOW ALL SLAVES STATUS` shows it.
    pub fn channel_field(&self, node: &str, column: &str) -> String {
        let mut c = self.conn(node).unwrap_or_else(|e| panic!("{e}"));
        let rows: Vec<mysql::Row> = c
            .query("SHOW ALL SLAVES STATUS")
            .unwrap_or_else(|e| panic!("{node}: {e}"));
        let row = rows
            .first()
            .unwrap_or_else(|| panic!("{node} has no channel"));
        let i = row
            .columns_ref()
            .iter()
            .position(|c| c.name_str() == column)
            .unwrap_or_else(|| panic!("no column {column}"));
        text(row.as_ref(i))
    }

    /// kill -9.
    pub fn kill(&self, node: &str) {
        self.down.lock().unwrap().insert(node.to_string());
        self.script(&["kill", node], &[]);
    }

    /// Waits until the live nodes of a cluster have dropped its dead ones: each is Primary in
    /// a component of exactly the live nodes. A node restarted before that joins while its
    /// old incarnation is still a member, and the survivors pass through a non-Primary view
    /// (a real blip, but not the fault a test means to inject).
    pub fn await_membership(&self, cluster: &str) {
        let live: Vec<String> = self
            .nodes(cluster)
            .into_iter()
            .filter(|n| !self.is_down(n))
            .collect();
        for n in &live {
            wait_until(
                &format!(
                    "{n} to be Primary with the {} live nodes of {cluster}",
                    live.len()
                ),
                Duration::from_secs(60),
                || {
                    let r = self.try_sql(
                        n,
                        "SELECT MAX(IF(VARIABLE_NAME = 'WSREP_CLUSTER_STATUS', VARIABLE_VALUE, NULL)), MAX(IF(VARIABLE_NAME = 'WSREP_CLUSTER_SIZE', VARIABLE_VALUE, NULL)) FROM information_schema.GLOBAL_STATUS",
                    )?;
                    let (status, size) = (&r[0][0], &r[0][1]);
                    if status == "Primary" && *size == live.len().to_string() {
                        Ok(())
                    } else {
                        Err(format!("{status}, size {size}"))
                    }
                },
            );
        }
    }

    /// How many members the node's current view has (`wsrep_cluster_size`).
    pub fn view_size(&self, node: &str) -> usize {
        self.value(
            node,
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_SIZE'",
        )
        .parse()
        .unwrap_or(0)
    }

    /// Stops (or resumes) the manager of a node while its server runs: no cron line.
    pub fn set_manager_running(&self, node: &str, running: bool) {
        let mut set = self.no_manager.lock().unwrap();
        if running {
            set.remove(node);
        } else {
            set.insert(node.to_string());
        }
    }

    /// Waits until no run of the manager holds the node's lock file.
    pub fn wait_manager_idle(&self, node: &str) {
        let lock = self.dir.join(node).join("manager.lock");
        wait_until(
            &format!("{node}'s manager to finish its run"),
            Duration::from_secs(60),
            || {
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&lock)
                    .map_err(|e| e.to_string())?;
                f.try_lock().map_err(|e| format!("{e:?}"))
            },
        );
    }

    /// Creates (or removes) a node's pause file.
    pub fn pause(&self, node: &str, paused: bool) {
        let f = self.dir.join(node).join("manager.off");
        if paused {
            std::fs::write(&f, "maintenance\n").unwrap();
        } else {
            let _ = std::fs::remove_file(&f);
        }
    }

    /// Starts a stopped node again and waits until it is Synced.
    pub fn start_node(&self, node: &str) {
        self.script(&["start", node], &[]);
        self.down.lock().unwrap().remove(node);
    }

    pub fn rows_with_prefix(&self, node: &str, prefix: &str) -> Result<usize, String> {
        let r = self.try_sql(
            node,
            &format!("SELECT COUNT(*) FROM sbtest.t WHERE id LIKE '{prefix}%'"),
        )?;
        r[0][0].parse().map_err(|e| format!("{e}"))
    }

    /// Which of `ids` the node does not have.
    pub fn missing_ids(&self, node: &str, ids: &[String]) -> Result<Vec<String>, String> {
        let have: HashSet<String> = self
            .try_sql(node, "SELECT id FROM sbtest.t")?
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect();
        Ok(ids.iter().filter(|i| !have.contains(*i)).cloned().collect())
    }

    /// Waits until every live node has `count` rows with the prefix.
    pub fn await_rows(&self, prefix: &str, count: usize, timeout: Duration) {
        for n in self.live_nodes() {
            wait_until(
                &format!("{count} rows {prefix}* on {n}"),
                timeout,
                || match self.rows_with_prefix(&n, prefix) {
                    Ok(c) if c == count => Ok(()),
                    Ok(c) => Err(format!("{c} rows")),
                    Err(e) => Err(e),
                },
            );
        }
    }

    pub fn insert(&self, node: &str, id: &str, origin: &str) {
        self.sql(
            node,
            &format!("INSERT INTO sbtest.t (id, origin) VALUES ('{id}', '{origin}')"),
        );
    }

    /// The roles in the state table for a link, as `host=role` sorted. The link is a
    /// channel name; the default channel ("") means the seed generation's table.
    pub fn roles(&self, node: &str, link: &str) -> Vec<String> {
        self.sql(node, &roles_query(node, link))
            .into_iter()
            .map(|r| r[0].clone())
            .collect()
    }

    /// Seconds since a host's last heartbeat for a link, by the server's clock, read on `node`.
    pub fn heartbeat_age(&self, node: &str, link: &str, host: &str) -> i64 {
        self.value(
            node,
            &format!("SELECT UNIX_TIMESTAMP() - UNIX_TIMESTAMP(lastHeartbeat) FROM percona.replication WHERE connectionName = '{link}' AND host = '{host}'"),
        )
        .parse()
        .unwrap()
    }

    /// The mails the manager wrote on a node so far (subjects).
    pub fn mails(&self, node: &str) -> Vec<String> {
        let dir = self.dir.join(node).join("mail");
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .filter_map(|t| {
                        let rest = &t[t.find("Subject: ")? + 9..];
                        let mut lines = rest.lines();
                        let mut subject = lines.next()?.to_string();
                        // Unfold a header folded over several lines.
                        for l in lines {
                            match l.strip_prefix(' ') {
                                Some(more) => {
                                    subject.push(' ');
                                    subject.push_str(more.trim_start());
                                }
                                None => break,
                            }
                        }
                        Some(subject)
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// All mails of a cluster's nodes whose subject contains `needle`.
    pub fn mails_matching(&self, cluster: &str, needle: &str) -> Vec<String> {
        self.nodes(cluster)
            .iter()
            .flat_map(|n| self.mails(n))
            .filter(|s| s.contains(needle))
            .collect()
    }

    /// After a scenario: stops the writers, lets replication drain (the ticker keeps running),
    /// and checks the end state. Rows still missing on a node when the deadline passes are
    /// counted as lost and returned, without the other checks, so the scenario reports them
    /// before it fails; any other violation panics with its description.
    pub fn end_check(
        &self,
        writers: Vec<Writer>,
        earlier: Vec<String>,
        links: &[(&str, &str)],
        deadline: Duration,
    ) -> EndState {
        let mut written = earlier.len();
        let mut acked: Vec<String> = earlier;
        for w in writers {
            let ids = w.stop();
            written += ids.len();
            acked.extend(ids);
        }
        let acked_set: HashSet<String> = acked.iter().cloned().collect();
        // Every acknowledged row on every live node.
        let mut lost: HashMap<String, usize> = HashMap::new();
        let start = Instant::now();
        for n in self.live_nodes() {
            let missing = loop {
                let missing = self.try_sql(&n, "SELECT id FROM sbtest.t").map(|rows| {
                    let present: HashSet<String> = rows.into_iter().map(|r| r[0].clone()).collect();
                    acked_set.difference(&present).count()
                });
                match missing {
                    Ok(0) => break 0,
                    Ok(m) if start.elapsed() > deadline => break m,
                    Err(e) if start.elapsed() > deadline => {
                        panic!("cannot count the rows on {n}: {e}")
                    }
                    _ => std::thread::sleep(Duration::from_millis(250)),
                }
            };
            lost.insert(n.clone(), missing);
        }
        let rows_lost = lost.values().copied().max().unwrap_or(0);
        if rows_lost > 0 {
            eprintln!("rows missing after {deadline:?}: {lost:?}");
            return EndState {
                rows_written: written,
                rows_lost,
            };
        }
        // No row twice or different: one checksum on every node of every cluster.
        let sums = wait_until("equal checksums on every node", deadline, || {
            let sums: BTreeMap<String, String> = self
                .live_nodes()
                .into_iter()
                .map(|n| {
                    let v = self.try_sql(&n, "CHECKSUM TABLE sbtest.t")?;
                    Ok((n, v[0][1].clone()))
                })
                .collect::<Result<_, String>>()?;
            let distinct: HashSet<&String> = sums.values().collect();
            if distinct.len() == 1 {
                Ok(sums)
            } else {
                Err(format!("{sums:?}"))
            }
        });
        // Exactly one channel per link, healthy, with no error, and the state table on every
        // live node naming its node, and only it, as Yes (waited for: a run may be between
        // its START and its update when the check begins).
        for (cluster, channel) in links {
            let (replica, ch) = wait_until(
                &format!(
                    "one healthy replica of {channel}, the state table agreeing on every node"
                ),
                deadline,
                || {
                    let (replica, ch) = self.replica_of(cluster, channel)?;
                    for n in self.nodes(cluster) {
                        if self.is_down(&n) {
                            continue;
                        }
                        let yes: Vec<String> = self
                            .try_sql(&n, &roles_query(&n, channel))?
                            .into_iter()
                            .map(|r| r[0].clone())
                            .filter(|r| r.ends_with("=Yes"))
                            .collect();
                        if yes != [format!("{replica}=Yes")] {
                            return Err(format!(
                                "{replica} replicates but the state table on {n} says {yes:?}"
                            ));
                        }
                    }
                    Ok((replica, ch))
                },
            );
            assert_eq!(
                (ch.io_errno.as_str(), ch.sql_errno.as_str()),
                ("0", "0"),
                "{channel} on {replica} has an error: {ch:?}"
            );
        }
        assert!(!sums.is_empty());
        EndState {
            rows_written: written,
            rows_lost,
        }
    }
}

/// The query behind [`Sandbox::roles`].
fn roles_query(node: &str, link: &str) -> String {
    if link.is_empty() {
        format!(
            "SELECT CONCAT(host, '=', isSlave) FROM percona.replication WHERE cluster = '{}' ORDER BY host",
            cluster_of(node)
        )
    } else {
        format!(
            "SELECT CONCAT(host, '=', isReplica) FROM percona.replication WHERE connectionName = '{link}' ORDER BY host"
        )
    }
}

/// What the end check found.
#[derive(Debug)]
pub struct EndState {
    pub rows_written: usize,
    pub rows_lost: usize,
}

/// Inserts rows with ids `<prefix><n>` into a cluster, each into the next node in turn, until
/// stopped; a node that fails is skipped until the next turn. Returns the acknowledged ids.
pub struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    handle: Option<std::thread::JoinHandle<Vec<String>>>,
}

/// A writer of a test that failed stops with it, so it never writes into the next test's
/// clusters.
impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Writer {
    pub fn start(prefix: &str, origin: &str, nodes: &[&str]) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let acked_count = Arc::new(AtomicUsize::new(0));
        let count = acked_count.clone();
        let prefix = prefix.to_string();
        let origin = origin.to_string();
        let nodes: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
        let handle = std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut conns: HashMap<String, Conn> = HashMap::new();
            let mut i = 0usize;
            let mut turn = 0usize;
            while !s.load(Ordering::Relaxed) {
                let node = nodes[turn % nodes.len()].clone();
                turn += 1;
                if !conns.contains_key(&node) {
                    match conn_to(&node, Duration::from_millis(500), Duration::from_secs(10)) {
                        Ok(c) => {
                            conns.insert(node.clone(), c);
                        }
                        Err(_) => continue,
                    }
                }
                let id = format!("{prefix}{i}");
                let q = format!("INSERT INTO sbtest.t (id, origin) VALUES ('{id}', '{origin}')");
                match conns.get_mut(&node).unwrap().query_drop(&q) {
                    Ok(()) => {
                        acked.push(id);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        // Not acknowledged: it may or may not have committed. The next id is
                        // a new one, so a retry can never collide with it.
                        conns.remove(&node);
                    }
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(30));
            }
            acked
        });
        Writer {
            stop,
            acked: acked_count,
            handle: Some(handle),
        }
    }

    /// One writer per cluster, each spreading over its cluster's nodes.
    pub fn on_every_cluster(sb: &Sandbox, tag: &str) -> Vec<Writer> {
        sb.clusters
            .iter()
            .map(|(c, nodes)| {
                let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
                Writer::start(&format!("{tag}-{c}-"), c, &nodes)
            })
            .collect()
    }

    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::Relaxed)
    }

    pub fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default()
    }
}

/// Runs the binary on every live node every `period`, like cron with a short period: one
/// schedule per node, so a slow run on one node never delays another node's heartbeat. A run
/// that outlasts the period delays only that node's next run (cron would start one that exits
/// on the lock).
pub struct Ticker {
    stop: Arc<AtomicBool>,
    /// The sandbox's nodes without a manager, shared.
    silenced: Arc<Mutex<HashSet<String>>>,
    handles: Vec<std::thread::JoinHandle<()>>,
    /// Every run: (node, exit code, stderr).
    pub runs: Arc<Mutex<Vec<(String, i32, String)>>>,
    /// Completed runs per node.
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl Ticker {
    pub fn start(sb: &Sandbox, period: Duration) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let runs = Arc::new(Mutex::new(Vec::new()));
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let handles = sb
            .all_nodes()
            .into_iter()
            .map(|node| {
                let (s, r, k, down) = (stop.clone(), runs.clone(), counts.clone(), sb.down.clone());
                let no_manager = sb.no_manager.clone();
                let config = sb.config(&node);
                std::thread::spawn(move || {
                    while !s.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        if !down.lock().unwrap().contains(&node)
                            && !no_manager.lock().unwrap().contains(&node)
                        {
                            let o = Command::new(BIN)
                                .args(["--config", &config, "run"])
                                .stdin(Stdio::null())
                                .output();
                            if let Ok(o) = o {
                                r.lock().unwrap().push((
                                    node.clone(),
                                    o.status.code().unwrap_or(-1),
                                    String::from_utf8_lossy(&o.stderr).into_owned(),
                                ));
                            }
                            *k.lock().unwrap().entry(node.clone()).or_insert(0) += 1;
                        }
                        let spent = started.elapsed();
                        if spent < period {
                            std::thread::sleep(period - spent);
                        }
                    }
                })
            })
            .collect();
        Ticker {
            stop,
            silenced: sb.no_manager.clone(),
            handles,
            runs,
            counts,
        }
    }

    /// Waits until every live node whose manager runs has completed `n` more runs.
    pub fn wait_ticks(&self, n: usize, timeout: Duration) {
        let base: HashMap<String, usize> = self
            .counts
            .lock()
            .unwrap()
            .iter()
            .filter(|(node, _)| !self.silenced.lock().unwrap().contains(*node))
            .map(|(n, c)| (n.clone(), *c))
            .collect();
        wait_until(&format!("{n} more runs on every node"), timeout, || {
            let now = self.counts.lock().unwrap().clone();
            let behind: Vec<&String> = base
                .iter()
                .filter(|(node, c)| now.get(*node).copied().unwrap_or(0) < *c + n)
                .map(|(node, _)| node)
                .collect();
            if behind.is_empty() {
                Ok(())
            } else {
                Err(format!("behind: {behind:?}"))
            }
        });
    }

    pub fn stop(mut self) -> Vec<(String, i32, String)> {
        self.halt();
        self.runs.lock().unwrap().clone()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One observation of one node.
#[derive(Clone, Debug)]
struct Sample {
    at: Duration,
    node: String,
    channels: Vec<Channel>,
}

/// How often the monitor samples each node.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// Samples every node's channels every 50 ms, one thread per node, so a hung node cannot
/// slow the others down.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<()>>,
    samples: Arc<Mutex<Vec<Sample>>>,
    started: Instant,
}

/// What the monitor saw.
#[derive(Debug, Default)]
pub struct Observed {
    /// Moments two nodes of one cluster both ran a thread of the same link.
    pub split_brain: Vec<String>,
    /// Per link (channel name): the longest time, after the fault, with no healthy replica.
    pub interruption: BTreeMap<String, Duration>,
    pub samples: usize,
    /// The nodes the monitor sampled at least once.
    pub sampled_nodes: BTreeSet<String>,
    /// The longest gap between two samples of a live node.
    pub max_sample_gap: Duration,
}

impl Observed {
    /// Fails the test unless the monitor sampled every node: a node it never reached was
    /// never watched, and "no split brain" would mean nothing for it.
    pub fn assert_watched(&self, nodes: &[String]) {
        let missing: Vec<&String> = nodes
            .iter()
            .filter(|n| !self.sampled_nodes.contains(*n))
            .collect();
        assert!(
            self.samples > 0 && missing.is_empty(),
            "the monitor never sampled {missing:?} ({} samples)",
            self.samples
        );
    }
}

impl Monitor {
    pub fn start(sb: &Sandbox) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let handles = sb
            .all_nodes()
            .into_iter()
            .map(|node| {
                let (s, out) = (stop.clone(), samples.clone());
                std::thread::spawn(move || {
                    let mut conn: Option<Conn> = None;
                    while !s.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        if conn.is_none() {
                            conn = conn_to(
                                &node,
                                Duration::from_millis(200),
                                Duration::from_millis(500),
                            )
                            .ok();
                        }
                        if let Some(c) = conn.as_mut() {
                            match read_channels(c) {
                                Ok(channels) => out.lock().unwrap().push(Sample {
                                    at: started.elapsed(),
                                    node: node.clone(),
                                    channels,
                                }),
                                Err(_) => conn = None,
                            }
                        }
                        let spent = t.elapsed();
                        if spent < SAMPLE_EVERY {
                            std::thread::sleep(SAMPLE_EVERY - spent);
                        }
                    }
                })
            })
            .collect();
        Monitor {
            stop,
            handles,
            samples,
            started,
        }
    }

    /// Time since the monitor started, to mark the moment of a fault.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// The interruptions of each link since `from`, as sampled so far (the monitor goes on).
    pub fn interruption_since(&self, from: Duration) -> BTreeMap<String, Duration> {
        let samples = self.samples.lock().unwrap().clone();
        analyse(&samples, from, self.started.elapsed()).interruption
    }

    /// Stops sampling and analyses: split-brain moments over the whole run, interruptions
    /// after `fault_at`.
    pub fn stop(mut self, fault_at: Duration) -> Observed {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
        let samples = std::mem::take(&mut *self.samples.lock().unwrap());
        analyse(&samples, fault_at, self.started.elapsed())
    }
}

/// The monitor of a test that failed stops with it.
impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// (node, first, last) runs of samples, keyed by (cluster, channel).
type Intervals = HashMap<(String, String), Vec<(String, Duration, Duration)>>;

/// Intervals `[first, last]` of consecutive samples of one node in which `pred` held for a
/// channel, keyed by (cluster, channel).
fn intervals(samples: &[Sample], pred: impl Fn(&Channel) -> bool) -> Intervals {
    let mut by_node: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by_node.entry(s.node.as_str()).or_default().push(s);
    }
    let mut out: Intervals = HashMap::new();
    for (node, mut ss) in by_node {
        ss.sort_by_key(|s| s.at);
        let names: HashSet<String> = ss
            .iter()
            .flat_map(|s| s.channels.iter().map(|c| c.name.clone()))
            .collect();
        for name in names {
            let mut open: Option<(Duration, Duration)> = None;
            let key = (cluster_of(node).to_string(), name.clone());
            for s in &ss {
                let holds = s.channels.iter().any(|c| c.name == name && pred(c));
                match (holds, open) {
                    (true, None) => open = Some((s.at, s.at)),
                    (true, Some((a, _))) => open = Some((a, s.at)),
                    (false, Some((a, b))) => {
                        out.entry(key.clone())
                            .or_default()
                            .push((node.to_string(), a, b));
                        open = None;
                    }
                    (false, None) => {}
                }
            }
            if let Some((a, b)) = open {
                out.entry(key).or_default().push((node.to_string(), a, b));
            }
        }
    }
    out
}

fn analyse(samples: &[Sample], fault_at: Duration, end: Duration) -> Observed {
    let mut o = Observed {
        samples: samples.len(),
        ..Observed::default()
    };
    // Split brain: two nodes' running intervals of the same link overlap.
    for ((cluster, channel), ivs) in intervals(samples, Channel::running) {
        for (i, (n1, a1, b1)) in ivs.iter().enumerate() {
            for (n2, a2, b2) in &ivs[i + 1..] {
                if n1 != n2 && a1.max(a2) <= b1.min(b2) {
                    o.split_brain.push(format!(
                        "{cluster} {channel}: {n1} ran {a1:?}..{b1:?} while {n2} ran {a2:?}..{b2:?}"
                    ));
                }
            }
        }
    }
    // Interruption: the longest gap after the fault in the union of healthy intervals.
    for ((cluster, channel), mut ivs) in intervals(samples, Channel::healthy) {
        let channel = if channel.is_empty() {
            format!("{cluster} (default channel)")
        } else {
            channel
        };
        ivs.sort_by_key(|(_, a, _)| *a);
        let mut covered_to = fault_at;
        let mut longest = Duration::ZERO;
        for (_, a, b) in ivs {
            if b < fault_at {
                continue;
            }
            if a > covered_to {
                longest = longest.max(a - covered_to);
            }
            covered_to = covered_to.max(b);
        }
        if end > covered_to + Duration::from_millis(500) {
            longest = longest.max(end - covered_to);
        }
        o.interruption.insert(channel, longest);
    }
    // Sampling rate: the longest gap between samples of one node while it answered.
    let mut by_node: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for s in samples {
        by_node.entry(&s.node).or_default().push(s.at);
        o.sampled_nodes.insert(s.node.clone());
    }
    for (_, mut ts) in by_node {
        ts.sort();
        for w in ts.windows(2) {
            // A gap over 2 s is a node that was down, not slow sampling.
            let g = w[1] - w[0];
            if g < Duration::from_secs(2) {
                o.max_sample_gap = o.max_sample_gap.max(g);
            }
        }
    }
    o
}

/// One row of docs/reliability.md, written to target/reliability/<scenario>.json. `end` is
/// `None` for a scenario without writers: rows written and lost are then `n/a`, not 0.
pub fn report(
    scenario: &str,
    injected: &str,
    observed: &Observed,
    end: Option<&EndState>,
    notes: &str,
) {
    let dir = repo().join("target/reliability");
    let _ = std::fs::create_dir_all(&dir);
    let interruption: Vec<String> = observed
        .interruption
        .iter()
        .map(|(k, v)| format!("{k} {:.1} s", v.as_secs_f64()))
        .collect();
    // Debug-quoting is not JSON (it writes \u{..}): build it with serde_json.
    let json = serde_json::json!({
        "scenario": scenario,
        "injected": injected,
        "interruption": interruption.join(", "),
        "rows_written": end.map(|e| e.rows_written),
        "rows_lost": end.map(|e| e.rows_lost),
        // Nothing sampled, nothing measured: n/a, never 0.
        "split_brain": (observed.samples > 0).then_some(observed.split_brain.len()),
        "samples": observed.samples,
        "max_sample_gap_ms": observed.max_sample_gap.as_millis() as u64,
        "notes": notes,
    })
    .to_string();
    let _ = std::fs::write(dir.join(format!("{scenario}.json")), json);
    let na = |v: Option<usize>| v.map_or("n/a".to_string(), |v| v.to_string());
    eprintln!(
        "{scenario}: interruption {}, {} rows written, {} lost, {} split-brain moments, {} samples (max gap {} ms)",
        interruption.join(", "),
        na(end.map(|e| e.rows_written)),
        na(end.map(|e| e.rows_lost)),
        na((observed.samples > 0).then_some(observed.split_brain.len())),
        observed.samples,
        observed.max_sample_gap.as_millis()
    );
}

/// `pxc-replication-manager daemon` on some nodes, each logging to
/// `target/reliability/<tag>.<node>.daemon.log`; stopped with SIGTERM when dropped.
pub struct Daemons {
    pub procs: BTreeMap<String, std::process::Child>,
    pub logs: BTreeMap<String, PathBuf>,
}

impl Daemons {
    pub fn start(sb: &Sandbox, nodes: &[&str], tag: &str) -> Daemons {
        let dir = repo().join("target/reliability");
        std::fs::create_dir_all(&dir).unwrap();
        let mut d = Daemons {
            procs: BTreeMap::new(),
            logs: BTreeMap::new(),
        };
        for n in nodes {
            let log = dir.join(format!("{tag}.{n}.daemon.log"));
            let f = std::fs::File::create(&log).unwrap();
            let child = Command::new(BIN)
                .args(["--config", &sb.config(n), "daemon"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(f)
                .spawn()
                .expect("the daemon starts");
            d.procs.insert(n.to_string(), child);
            d.logs.insert(n.to_string(), log);
        }
        d
    }

    /// What a node's daemon logged so far.
    pub fn log(&self, node: &str) -> String {
        std::fs::read_to_string(&self.logs[node]).unwrap_or_default()
    }

    /// Waits until a node's daemon logged `needle` (after `skip` bytes of its log).
    pub fn await_log(&self, node: &str, needle: &str, skip: usize, timeout: Duration) {
        wait_until(
            &format!("{node}'s daemon to log {needle:?}"),
            timeout,
            || {
                let l = self.log(node);
                if l.get(skip..).unwrap_or("").contains(needle) {
                    Ok(())
                } else {
                    Err(l.lines().last().unwrap_or("").to_string())
                }
            },
        );
    }

    pub fn signal(&self, node: &str, sig: i32) {
        let pid = self.procs[node].id() as i32;
        // SAFETY: kill(2) on a child process this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill {sig} {node}");
    }

    /// Waits for a node's daemon to exit; its exit code.
    pub fn await_exit(&mut self, node: &str, timeout: Duration) -> i32 {
        let child = self.procs.get_mut(node).unwrap();
        let status = wait_until(&format!("{node}'s daemon to exit"), timeout, || match child
            .try_wait()
        {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err("still running".into()),
            Err(e) => Err(e.to_string()),
        });
        self.procs.remove(node);
        status.code().unwrap_or(-1)
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for (_, c) in self.procs.iter_mut() {
            // SAFETY: as in `signal`.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        for (_, c) in self.procs.iter_mut() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
