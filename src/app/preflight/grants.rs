//! `check`'s `grants` and `state` lines: what `run`, `init`, `pause` and `resume` need of the
//! local login, and the state tables with their generation.

use super::Preflight;
use crate::db::grants::{self, Grants};
use crate::exec::LocalServer;
use crate::exec::server::NodeFacts;

/// What `run`, `init`, `pause` and `resume` need of the local login.
pub(super) fn local_grants(
    server: &mut LocalServer,
    g: &Grants,
    facts: &NodeFacts,
    p: &mut Preflight,
) {
    replication_grants(server, g, facts, p);
    state_grants(g, p);
}

/// A privilege missing from `SHOW GRANTS`: a warning when a role may hold it, else a failure.
fn missing_grant(g: &Grants, what: &str, fix: String, p: &mut Preflight) {
    if g.has_roles() {
        p.warn(
            what,
            format!(
                "not in SHOW GRANTS; it may come from a role ({}), which this check cannot see",
                g.roles().join(", ")
            ),
            fix,
        );
    } else {
        p.fail(what, "missing from SHOW GRANTS", fix);
    }
}

/// The privileges to manage the channels, read the replica status and read the view.
fn replication_grants(server: &mut LocalServer, g: &Grants, facts: &NodeFacts, p: &mut Preflight) {
    let admin = grants::REPLICATION_ADMIN;
    if g.global(admin.any_of) {
        p.ok(
            "grants.replication",
            format!("may {} (one of {})", admin.what, admin.any_of.join(", ")),
        );
    } else {
        missing_grant(
            g,
            "grants.replication",
            format!(
                "GRANT {} ON *.* TO the manager's user (run: CHANGE MASTER, START and STOP SLAVE)",
                if facts.flavor.is_mariadb() {
                    "REPLICATION SLAVE ADMIN, SLAVE MONITOR"
                } else {
                    "REPLICATION_SLAVE_ADMIN, REPLICATION CLIENT"
                }
            ),
            p,
        );
    }
    match server.try_read(facts.flavor.dialect().show_replica_status()) {
        Ok(()) => p.ok(
            "grants.replica_status",
            format!("{} answers", facts.flavor.dialect().show_replica_status()),
        ),
        Err(e) => p.fail(
            "grants.replica_status",
            e,
            if facts.flavor.is_mariadb() {
                "GRANT SLAVE MONITOR ON *.* TO the manager's user"
            } else {
                "GRANT REPLICATION CLIENT ON *.* TO the manager's user"
            },
        ),
    }
    if facts.flavor.lists_members() {
        match server.try_read("SELECT node_name FROM mysql.wsrep_cluster_members LIMIT 1") {
            Ok(()) => p.ok("grants.membership", "mysql.wsrep_cluster_members can be read"),
            Err(e) => p.warn(
                "grants.membership",
                format!("{e}: without the view, a crashed replica is replaced after the heartbeat timeout only"),
                "GRANT SELECT ON mysql.wsrep_cluster_members TO the manager's user",
            ),
        }
    }
}

/// The privileges on the state tables, for each command that reads or writes them.
fn state_grants(g: &Grants, p: &mut Preflight) {
    let schema = crate::db::state::SCHEMA;
    for (check, privs, table, why) in [
        (
            "grants.run",
            &["SELECT", "INSERT", "UPDATE"][..],
            None,
            "run reads and writes the state tables",
        ),
        (
            "grants.init",
            &["CREATE"][..],
            None,
            "init and the first report create the tables",
        ),
        (
            "grants.pause",
            &["SELECT", "INSERT", "UPDATE"][..],
            Some("replication_pause"),
            "pause writes the cluster's row",
        ),
        (
            "grants.resume",
            &[grants::RESUME_PRIVILEGE][..],
            Some("replication_pause"),
            "resume deletes the cluster's row",
        ),
        (
            "grants.history",
            &["INSERT", "DELETE"][..],
            Some(crate::db::history::TABLE),
            "each run records what happened, and forgets its cluster's rows past 90 days",
        ),
    ] {
        let held = |pr: &str| match table {
            Some(t) => g.on_table(schema, t, &[pr]),
            None => g.on_schema(schema, &[pr]),
        };
        let on = table.map_or(format!("{schema}.*"), |t| format!("{schema}.{t}"));
        let lacking: Vec<&str> = privs.iter().copied().filter(|pr| !held(pr)).collect();
        if lacking.is_empty() {
            p.ok(check, format!("{} on {on}", privs.join(", ")));
        } else {
            missing_grant(
                g,
                check,
                format!(
                    "GRANT {} ON {on} TO the manager's user ({why})",
                    lacking.join(", ")
                ),
                p,
            );
        }
    }
}

pub(super) fn state_tables(
    server: &mut LocalServer,
    g: &Grants,
    p: &mut Preflight,
) -> Option<crate::db::state::Schema> {
    match server.schema() {
        Ok(s) => {
            let mut missing = Vec::new();
            for (has, table) in [
                (s.has_claim_table, "replication_claim"),
                (s.has_node_table, "replication_node"),
                (s.has_fence_table, "replication_fence"),
                (s.has_pause_table, "replication_pause"),
                (s.has_history_table, "replication_history"),
            ] {
                if !has {
                    missing.push(table);
                }
            }
            if missing.is_empty() {
                p.ok("state.tables", s.generation.describe());
            } else if g.on_schema(crate::db::state::SCHEMA, &["CREATE"]) {
                p.ok(
                    "state.tables",
                    format!(
                        "{}; {} created when first needed",
                        s.generation.describe(),
                        missing.join(", ")
                    ),
                );
            } else {
                p.warn(
                    "state.tables",
                    format!(
                        "{}; missing {}, and the login may not create them",
                        s.generation.describe(),
                        missing.join(", ")
                    ),
                    "run `pxc-replication-manager init` on one node",
                );
            }
            Some(s)
        }
        Err(e) => {
            p.fail(
                "state.tables",
                e.to_string(),
                "run `pxc-replication-manager init` on one node of the cluster",
            );
            None
        }
    }
}
