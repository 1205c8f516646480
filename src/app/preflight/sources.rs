//! `check`'s `source <link> <address>` lines: every candidate of every link, its replication
//! login, its place in its cluster, its GTID domain and its `server_id`.

use super::Preflight;
use crate::config::Config;
use crate::exec::server::{self, NodeFacts};

/// Every candidate of every link: the replication login, its place in its cluster, its GTID
/// domain, and a server_id that is not this cluster's.
pub(super) fn sources(
    cfg: &Config,
    facts: &NodeFacts,
    links: &[crate::config::topology::Link],
    own_id: Option<u64>,
    p: &mut Preflight,
) {
    for l in links {
        for s in &l.sources {
            source(cfg, facts, l, s, own_id, p);
        }
    }
}

/// One candidate of a link: its line, ok once its login, health, server_id and domain are.
fn source(
    cfg: &Config,
    facts: &NodeFacts,
    l: &crate::config::topology::Link,
    s: &crate::config::SourceAddr,
    own_id: Option<u64>,
    p: &mut Preflight,
) {
    let check = format!("source {} {}", l.name, s.address());
    let mut conn = match server::open_source(l, s, cfg.timeouts.probe) {
        Ok(c) => c,
        Err(e) => {
            p.fail(
                check,
                format!("the replication login {} fails: {e}", l.user),
                format!(
                    "on {}: CREATE USER '{}'@'<this cluster's addresses>' and GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO it; check the link's password",
                    l.remote, l.user
                ),
            );
            return;
        }
    };
    let probe = match server::probe_on(&mut conn) {
        Ok(pr) => pr,
        Err(e) => {
            p.fail(
                check,
                format!("logs in, then cannot read its state: {e}"),
                format!(
                    "GRANT REPLICATION CLIENT ON *.* TO '{}' on {}",
                    l.user, l.remote
                ),
            );
            return;
        }
    };
    let sid = server::server_id_on(&mut conn);
    if let Err(why) = probe.health() {
        p.fail(
            check,
            why,
            "a source must be Primary and Synced in its cluster: check that cluster",
        );
        return;
    }
    if let (Some(a), Some(b)) = (sid, own_id)
        && a == b
    {
        p.fail(
            check,
            format!("its server_id is {a}, the same as this cluster's: replication skips events that carry its own server_id"),
            "give every cluster its own server_id (the same on all of its nodes)",
        );
        return;
    }
    let Some(domain) = source_domain(facts, l, &probe, &check, p) else {
        return;
    };
    let found = format!("login {} works; Primary and Synced; {domain}", l.user);
    match sid {
        Some(i) => p.ok(check, format!("{found}; server_id {i}")),
        None => p.warn(
            check,
            format!("{found}; its @@server_id could not be read, so it was not compared"),
            "check the source's server",
        ),
    }
}

/// How a source's transactions are placed: auto-positioning, or its GTID domain (the
/// config's, or its own when it is not this cluster's); `None`, with the failure, otherwise.
fn source_domain(
    facts: &NodeFacts,
    l: &crate::config::topology::Link,
    probe: &server::Probe,
    check: &str,
    p: &mut Preflight,
) -> Option<String> {
    let domain = if !facts.flavor.is_mariadb() {
        "GTID auto-positioning".to_string()
    } else if let Some(d) = &l.gtid_domains {
        format!("GTID domains {d:?} from the config")
    } else if let Some(d) = probe.gtid_domain_id {
        if facts.gtid_domain_id == Some(d) {
            p.fail(
                check,
                format!("its wsrep_gtid_domain_id is {d}, the same as this cluster's"),
                "give every cluster its own wsrep_gtid_domain_id",
            );
            return None;
        }
        format!("GTID domain {d}")
    } else {
        p.fail(
            check,
            "answers, but its wsrep_gtid_domain_id cannot be read: the link's domain cannot be learned",
            "set gtid_domains in the link's [[link]] section",
        );
        return None;
    };
    Some(domain)
}
