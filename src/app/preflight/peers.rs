//! `check`'s `peer <name>` lines: every other member of the view, and whether this node can
//! fence it and shares its `server_id`.

use super::Preflight;
use crate::config::Config;
use crate::exec::check_peer;
use crate::exec::server::{Login, NodeFacts};

/// The other members of the view, with their client address; without a view (PXC 5.7, or no
/// right to read it), the addresses the peers reported.
pub(super) fn peer_addresses(
    node: &mut crate::app::LocalNode,
    p: &mut Preflight,
) -> Vec<(String, String)> {
    let mut peers: Vec<(String, String)> = Vec::new();
    if let Some(members) = node.members.clone() {
        for (name, addr) in members.into_iter().filter(|(n, _)| *n != node.facts.name) {
            match addr {
                Some(a) => peers.push((name, a)),
                None => p.warn(
                    format!("peer {name}"),
                    "the view gives no client address for it",
                    "set [local] address in that node's config, so its reports say where to fence it",
                ),
            }
        }
        return peers;
    }
    let Some(schema) = node.schema.clone() else {
        return peers;
    };
    for l in &node.links {
        let rows = match node.server.rows(&schema, &l.key) {
            Ok(r) => r,
            Err(e) => {
                p.warn(
                    "peers",
                    format!("cannot read the rows of {}: {e}", l.name),
                    "check the server",
                );
                continue;
            }
        };
        for r in rows {
            if let Some(a) = r.report.and_then(|rep| rep.address)
                && r.host != node.facts.name
                && !peers.iter().any(|(n, _)| *n == r.host)
            {
                peers.push((r.host, a));
            }
        }
    }
    if peers.is_empty() {
        p.warn(
            "peers",
            "no view is listed (PXC 5.7, or no right to read mysql.wsrep_cluster_members) and no peer has reported its address yet",
            "run check again after every node has run once",
        );
    }
    peers
}

/// Every other member of the view: can this node fence it? And do they share its server_id?
pub(super) fn peers(
    cfg: &Config,
    login: &Login,
    facts: &NodeFacts,
    peers: &[(String, String)],
    own_id: Option<u64>,
    p: &mut Preflight,
) {
    let timeout = cfg.timeouts.probe;
    for (name, address) in peers {
        let check = format!("peer {name}");
        let mut c = check_peer(login, address, &facts.flavor, timeout);
        if c.problem.is_none() && c.server_id.is_none() {
            c.notes
                .push("its @@server_id could not be read, so it was not compared".into());
        }
        let id = match (c.server_id, own_id) {
            (Some(a), Some(b)) if a != b => Some(format!(
                "its server_id is {a}, this node's {b}: every node of a cluster needs the same server_id (a source drops a second connection of the same id, and replicated events are told apart from the cluster's own by it)"
            )),
            _ => None,
        };
        match (&c.problem, id) {
            (Some(f), _) => p.fail(
                check,
                format!("cannot fence it at {address} as {}: {f}", login.user),
                fence_fix(f, &login.user),
            ),
            (None, Some(why)) => p.fail(check, why, "set the same server_id on every node of this cluster"),
            (None, None) if !c.notes.is_empty() => p.warn(
                check,
                format!("can fence it at {address}, but {}", c.notes.join("; ")),
                if c.notes.iter().any(|n| n.contains("wsrep_on")) {
                    "GRANT SUPER ON *.* TO the manager's user on every node"
                } else {
                    "check the peer's server"
                },
            ),
            (None, None) => p.ok(
                check,
                format!(
                    "can fence it at {address} as {} (login, session without Galera, channels read, privilege to stop one){}",
                    login.user,
                    c.server_id.map_or(String::new(), |i| format!("; server_id {i}"))
                ),
            ),
        }
    }
}

fn fence_fix(f: &crate::exec::PeerFailure, user: &str) -> String {
    let r = f.reason();
    match f {
        crate::exec::PeerFailure::Unreachable(_) => {
            "open the peer's client port to this node, or correct its address ([local] address in its config)".into()
        }
        _ if r.contains("(error 1045)") || r.contains("(error 1698)") => format!(
            "the login {user} is denied there: create it for the other nodes' addresses (not only @'localhost' or the unix socket), e.g. CREATE USER '{user}'@'10.0.1.%' ... with the grants of docs/installing.md (Grants)"
        ),
        _ => format!(
            "GRANT SUPER ON *.* (or REPLICATION SLAVE ADMIN and SLAVE MONITOR on MariaDB 10.5+, REPLICATION_SLAVE_ADMIN and REPLICATION CLIENT on MySQL 8) TO '{user}' for the other nodes' addresses"
        ),
    }
}
