//! `check`'s checks of the local server: the login, Primary and Synced, the binary log and its
//! format, the GTID settings of the flavour, `skip-slave-start` and `server_id`; then, with the
//! links a run assembles, the peers' and the sources' checks.

use super::grants::{local_grants, state_tables};
use super::peers::{peer_addresses, peers};
use super::sources::sources;
use super::{Options, Preflight};
use crate::config::Config;
use crate::config::mycnf::{self, ChainFile};
use crate::db::flavor::Flavor;
use crate::db::grants::Grants;
use crate::exec::LocalServer;
use crate::exec::server::{Login, NodeFacts};
use std::collections::HashMap;
use std::path::PathBuf;

/// The local server's checks, then the peers' and the sources': a check that cannot run
/// because an earlier one failed is left out.
pub(super) fn local_and_beyond(cfg: &Config, opts: &Options, p: &mut Preflight) {
    let Some((login, mut server)) = local_login(cfg, opts, p) else {
        return;
    };
    let Some(facts) = galera(cfg, &mut server, p) else {
        return;
    };
    let vars = server_settings(&mut server, &facts, p);
    let grants = own_grants(&mut server, p);
    local_grants(&mut server, &grants, &facts, p);
    state_tables(&mut server, &grants, p);
    // The links, the view and the schema, as a run assembles them.
    let mut node = match crate::app::open_local(cfg, opts.defaults_file.as_deref()) {
        Ok(node) => node,
        Err(e) => {
            p.fail(
                "links",
                e.to_string(),
                "add [[link]] sections to the config, or fill percona.cluster and percona.link",
            );
            return;
        }
    };
    let own_id = own_server_id(&vars, p);
    let addresses = peer_addresses(&mut node, p);
    peers(cfg, &login, &facts, &addresses, own_id, p);
    let links = node.links;
    sources(cfg, &facts, &links, own_id, p);
}

/// The local login and a connection with it: `None`, with the failure, when either fails.
fn local_login(cfg: &Config, opts: &Options, p: &mut Preflight) -> Option<(Login, LocalServer)> {
    let login = match Login::resolve(&cfg.local, opts.defaults_file.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            p.fail(
                "local.login",
                e.to_string(),
                "fix the MySQL option file named above, or [local] in the config",
            );
            return None;
        }
    };
    let server = match LocalServer::connect(&login) {
        Ok(s) => s,
        Err(e) => {
            p.fail(
                "local.login",
                e.to_string(),
                "check that the server runs, [local] in the config, and the user and password in the MySQL option file",
            );
            return None;
        }
    };
    p.ok("local.login", login.source());
    Some((login, server))
}

/// The node's Galera facts, and whether it is Primary and Synced: `None`, with the failure,
/// when it is no Galera node.
fn galera(cfg: &Config, server: &mut LocalServer, p: &mut Preflight) -> Option<NodeFacts> {
    let facts = match server.facts(&cfg.local) {
        Ok(f) => f,
        Err(e) => {
            p.fail(
                "local.galera",
                e.to_string(),
                "run the manager on a node of a PXC or MariaDB Galera cluster",
            );
            return None;
        }
    };
    p.node = Some(facts.name.clone());
    if facts.can_act() {
        p.ok(
            "local.galera",
            format!(
                "{} of cluster {}: {} and {} ({}, {} nodes)",
                facts.name,
                facts.cluster,
                facts.cluster_status,
                facts.local_state_comment,
                facts.flavor.label(),
                facts.cluster_size
            ),
        );
    } else {
        p.fail(
            "local.galera",
            format!(
                "{} is {} and {}: a run acts only on a Primary node that is Synced or Donor",
                facts.name, facts.cluster_status, facts.local_state_comment
            ),
            "run check again once the node has joined its cluster",
        );
    }
    Some(facts)
}

/// The server's global variables a run relies on, each checked: empty, with the failure,
/// when they cannot be read.
fn server_settings(
    server: &mut LocalServer,
    facts: &NodeFacts,
    p: &mut Preflight,
) -> HashMap<String, String> {
    let vars = server
        .global_variables(&[
            "log_bin",
            "log_slave_updates",
            "log_replica_updates",
            "binlog_format",
            "server_id",
            "skip_slave_start",
            "skip_replica_start",
            "wsrep_gtid_mode",
            "wsrep_gtid_domain_id",
            "gtid_domain_id",
            "gtid_ignore_duplicates",
            "gtid_mode",
            "enforce_gtid_consistency",
            "pid_file",
        ])
        .unwrap_or_else(|e| {
            p.fail(
                "local.variables",
                format!("SHOW GLOBAL VARIABLES failed, so no setting below could be read: {e}"),
                "check the server",
            );
            HashMap::new()
        });
    if !vars.is_empty() {
        binlog(&vars, p);
        gtid(&facts.flavor, &vars, p);
        skip_slave_start(&facts.flavor, &vars, p);
    }
    vars
}

/// The local login's grants, as `SHOW GRANTS` gives them: none, with the failure, when it fails.
fn own_grants(server: &mut LocalServer, p: &mut Preflight) -> Grants {
    match server.grants() {
        Ok(g) => Grants::parse(&g),
        Err(e) => {
            p.fail(
                "grants",
                format!("SHOW GRANTS failed: {e}"),
                "every login may read its own grants: check the server",
            );
            Grants::default()
        }
    }
}

/// This node's `server_id`; a warning when the variables were read but it was not among them.
fn own_server_id(vars: &HashMap<String, String>, p: &mut Preflight) -> Option<u64> {
    let own_id = vars.get("server_id").and_then(|v| v.parse::<u64>().ok());
    if own_id.is_none() && !vars.is_empty() {
        p.warn(
            "local.server_id",
            "could not be read, so it is compared with no peer's or source's",
            "check the server",
        );
    }
    own_id
}

fn on(vars: &HashMap<String, String>, name: &str) -> Option<bool> {
    vars.get(name)
        .map(|v| matches!(v.to_ascii_uppercase().as_str(), "ON" | "1" | "YES"))
}

pub(super) fn binlog(vars: &HashMap<String, String>, p: &mut Preflight) {
    match on(vars, "log_bin") {
        Some(true) => p.ok("local.log_bin", "ON"),
        _ => p.fail(
            "local.log_bin",
            "the binary log is off: a remote cluster cannot replicate from this one",
            "set log_bin in [mysqld] on every node and restart them one by one",
        ),
    }
    let updates = on(vars, "log_replica_updates").or(on(vars, "log_slave_updates"));
    match updates {
        Some(true) => p.ok("local.log_slave_updates", "ON"),
        _ => p.fail(
            "local.log_slave_updates",
            "off: what this node applies from Galera or a remote cluster is not in its binary log, so a remote replica of this node misses every other node's writes",
            "set log_slave_updates = ON in [mysqld] on every node",
        ),
    }
    match vars.get("binlog_format").map(|f| f.to_ascii_uppercase()) {
        Some(f) if f == "ROW" => p.ok("local.binlog_format", "ROW"),
        other => p.fail(
            "local.binlog_format",
            format!(
                "{}: Galera and this tool need ROW",
                other.unwrap_or_else(|| "unknown".into())
            ),
            "set binlog_format = ROW in [mysqld] on every node",
        ),
    }
}

pub(super) fn gtid(flavor: &Flavor, vars: &HashMap<String, String>, p: &mut Preflight) {
    if flavor.is_mariadb() {
        match on(vars, "wsrep_gtid_mode") {
            Some(true) => p.ok("local.wsrep_gtid_mode", "ON"),
            _ => p.fail(
                "local.wsrep_gtid_mode",
                "off: the nodes of the cluster write different GTIDs for the same transaction, so a replica cannot move to another source",
                "set wsrep_gtid_mode = ON and one wsrep_gtid_domain_id per cluster on every node",
            ),
        }
        let wsrep = vars.get("wsrep_gtid_domain_id");
        let own = vars.get("gtid_domain_id");
        match (wsrep, own) {
            (Some(w), Some(o)) if w == o => p.fail(
                "local.gtid_domain_id",
                format!(
                    "gtid_domain_id = wsrep_gtid_domain_id = {w}: this node's local writes share the cluster's domain"
                ),
                "give every node its own gtid_domain_id, distinct from every cluster's wsrep_gtid_domain_id",
            ),
            (Some(w), Some(o)) => p.ok(
                "local.gtid_domain_id",
                format!("wsrep_gtid_domain_id {w}, this node's gtid_domain_id {o}"),
            ),
            _ => p.warn(
                "local.gtid_domain_id",
                "could not read wsrep_gtid_domain_id and gtid_domain_id",
                "check the server's GTID settings by hand",
            ),
        }
        match on(vars, "gtid_ignore_duplicates") {
            Some(true) => p.ok("local.gtid_ignore_duplicates", "ON"),
            _ => p.warn(
                "local.gtid_ignore_duplicates",
                "off: an event that reaches the cluster twice (a chain, or a source change) is applied twice",
                "set gtid_ignore_duplicates = ON on every node",
            ),
        }
    } else {
        for (name, why) in [
            ("gtid_mode", "GTID auto-positioning needs gtid_mode = ON"),
            (
                "enforce_gtid_consistency",
                "gtid_mode = ON needs enforce_gtid_consistency = ON",
            ),
        ] {
            match on(vars, name) {
                Some(true) => p.ok(format!("local.{name}"), "ON"),
                _ => p.fail(
                    format!("local.{name}"),
                    format!(
                        "{}: {why}",
                        vars.get(name).map_or("unknown", |v| v.as_str())
                    ),
                    format!("set {name} = ON in [mysqld] on every node"),
                ),
            }
        }
    }
}

/// `skip-slave-start`: MySQL has a variable for it; MariaDB has none, so the server's command
/// line and option files are read (on this host, as root reads them).
pub(super) fn skip_slave_start(flavor: &Flavor, vars: &HashMap<String, String>, p: &mut Preflight) {
    const CHECK: &str = "local.skip_slave_start";
    const FIX: &str = "add skip-slave-start to [mysqld] on every node: a crashed replica must not resume by itself beside its replacement";
    if let Some(v) = on(vars, "skip_replica_start").or(on(vars, "skip_slave_start")) {
        if v {
            p.ok(CHECK, "ON");
        } else {
            p.fail(
                CHECK,
                "OFF: a replica that restarts resumes its channel by itself",
                FIX,
            );
        }
        return;
    }
    if !flavor.is_mariadb() {
        p.warn(CHECK, "the server shows no skip_replica_start", FIX);
        return;
    }
    match skip_slave_start_of_server(vars.get("pid_file")) {
        Ok(Some(at)) => p.ok(CHECK, format!("set ({at})")),
        Ok(None) => p.fail(
            CHECK,
            "not set on the server's command line nor in its option files: a replica that restarts resumes its channel by itself",
            FIX,
        ),
        Err(why) => p.warn(
            CHECK,
            format!("could not confirm it ({why}); MariaDB shows no variable for it"),
            "make sure [mysqld] has skip-slave-start on every node",
        ),
    }
}

/// Where the local MariaDB server got `skip-slave-start`: its command line, or its option
/// files (the chain its command line names). `Err` when its command line cannot be read.
fn skip_slave_start_of_server(pid_file: Option<&String>) -> Result<Option<String>, String> {
    let pid_file = pid_file.ok_or("the server does not say its pid file")?;
    let pid = std::fs::read_to_string(pid_file)
        .map_err(|e| format!("cannot read its pid file {pid_file}: {e}"))?;
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim()))
        .map_err(|e| format!("cannot read its command line: {e}"))?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let names = ["skip-slave-start", "skip-replica-start"];
    if args.iter().any(|a| {
        names
            .iter()
            .any(|n| a.replace('_', "-") == format!("--{n}"))
    }) {
        return Ok(Some("on its command line".into()));
    }
    let value = |flag: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{flag}=")).map(PathBuf::from))
    };
    if args.iter().any(|a| a == "--no-defaults") {
        return Ok(None);
    }
    let chain: Vec<ChainFile> = match value("defaults-file") {
        Some(f) => vec![ChainFile {
            path: f,
            required: true,
        }],
        None => mycnf::Search::system().chain(None, value("defaults-extra-file").as_deref()),
    };
    match mycnf::server_option(&chain, &names) {
        Ok(found) => Ok(found.map(|o| o.at)),
        Err(e) => Err(e.to_string()),
    }
}
