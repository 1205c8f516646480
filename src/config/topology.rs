//! The links this cluster replicates from, resolved against the local cluster's name and the
//! state table's generation.
//!
//! Links come from the config's `[[link]]` sections, or from the multi-cluster generation's
//! tables `percona.link` (which remotes), `percona.cluster` (their `masterCandidates` and
//! `replCreds`) and `percona.weight` (node weights). A `replCreds` fragment is parsed field by
//! field into a user, a password and a port; anything else in it is refused, because it is
//! never spliced into SQL.

pub use crate::config::link_name;
use crate::config::{Config, LinkConfig, SourceAddr, TopologySource};
use crate::db::flavor::{ReplicationTls, SourceSpec};
use crate::db::sql::{Channel, NameError, Secret, quote};
use crate::db::state::{LinkKey, SCHEMA, Schema};
pub use crate::error::{CandidatesError, ReplCredsError};
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// A link, ready to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The remote cluster's name.
    pub remote: String,
    /// `<local>-<remote>`: how logs and mail name the link, in both generations.
    pub name: String,
    /// How the state table names the link: `<local>-<remote>`, or the local cluster's name
    /// for the seed generation.
    pub key: LinkKey,
    /// The replication channel: named like the link, or the default channel (seed generation).
    pub channel: Channel,
    pub sources: Vec<SourceAddr>,
    pub user: String,
    pub password: Secret,
    pub tls: Option<ReplicationTls>,
    /// MariaDB: domains to request; `None` means learn the source's `wsrep_gtid_domain_id`.
    pub gtid_domains: Option<Vec<u32>>,
    /// Links from the tables: the other clusters whose writes arrive through this remote (a
    /// chain), as probe targets: their domains are requested too.
    pub behind: Vec<Link>,
}

impl Link {
    /// The `CHANGE MASTER` parameters for one candidate.
    pub fn source_spec(&self, source: &SourceAddr, gtid_domains: Vec<u32>) -> SourceSpec {
        SourceSpec {
            host: source.host.clone(),
            port: source.port,
            user: self.user.clone(),
            password: self.password.clone(),
            tls: self.tls.clone(),
            gtid_domains,
        }
    }

    /// The candidate a `host:port` (or bare host) refers to, if it is one of this link's.
    pub fn source(&self, address: &str) -> Option<&SourceAddr> {
        self.sources
            .iter()
            .find(|s| s.address() == address || s.host == address)
    }
}

/// What the topology tables say: the whole graph of links and every cluster's candidates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableTopology {
    /// `percona.link` rows: `(clusterSlave, clusterMaster)`.
    pub edges: Vec<(String, String)>,
    /// `percona.cluster` rows: cluster -> `(masterCandidates, replCreds)`.
    pub clusters: BTreeMap<String, (String, String)>,
}

impl TableTopology {
    /// The query for `edges`.
    pub fn links_query() -> String {
        format!(
            "SELECT clusterSlave, clusterMaster FROM {SCHEMA}.link ORDER BY clusterSlave, clusterMaster"
        )
    }

    /// The query for `clusters`.
    pub fn clusters_query() -> String {
        format!(
            "SELECT cluster, masterCandidates, replCreds FROM {SCHEMA}.cluster ORDER BY cluster"
        )
    }

    /// The clusters `local` replicates from.
    pub fn remotes_of(&self, local: &str) -> Vec<String> {
        self.edges
            .iter()
            .filter(|(s, _)| s == local)
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// The clusters whose writes reach `local` through `remote`: `remote` and every cluster
    /// linked to it, in either direction, on the far side from `local`. In a chain
    /// DC2 <=> DC1 <=> DC3, DC2 receives DC3's writes through DC1.
    pub fn behind(&self, remote: &str, local: &str) -> Vec<String> {
        let mut seen = vec![remote.to_string()];
        let mut i = 0;
        while i < seen.len() {
            let c = seen[i].clone();
            for (a, b) in &self.edges {
                let next = if *a == c {
                    b
                } else if *b == c {
                    a
                } else {
                    continue;
                };
                if next != local && !seen.contains(next) {
                    seen.push(next.clone());
                }
            }
            i += 1;
        }
        seen
    }

    /// A cluster's candidates and credentials, parsed.
    fn link_config(&self, cluster: &str, via: &str) -> Result<LinkConfig> {
        let Some((candidates, creds)) = self.clusters.get(cluster) else {
            return Err(Error::Links(format!(
                "{via}: percona.cluster has no row for {cluster:?}; add its masterCandidates and replCreds"
            )));
        };
        let c = parse_repl_creds(creds).map_err(|e| {
            Error::Links(format!("percona.cluster row {cluster:?}: replCreds: {e}"))
        })?;
        let sources = parse_candidates(candidates, c.port.unwrap_or(3306)).map_err(|e| {
            Error::Links(format!(
                "percona.cluster row {cluster:?}: masterCandidates: {e}"
            ))
        })?;
        Ok(LinkConfig {
            remote: cluster.to_string(),
            sources,
            user: c.user,
            password: c.password,
            gtid_domains: None,
            tls: None,
            line: None,
        })
    }
}

/// The query for this node's weight in `percona.weight`.
pub fn weight_query(local_cluster: &str, node: &str) -> String {
    format!(
        "SELECT weight FROM {SCHEMA}.weight WHERE cluster = {} AND nodename = {}",
        quote(local_cluster),
        quote(node)
    )
}

/// Whether the links should come from the tables, given the config.
pub fn wants_tables(cfg: &Config) -> bool {
    match cfg.topology {
        TopologySource::Config => false,
        TopologySource::Tables => true,
        TopologySource::Auto => cfg.links.is_empty(),
    }
}

/// Resolves the links of this cluster.
pub fn resolve(
    cfg: &Config,
    local_cluster: &str,
    schema: &Schema,
    tables: Option<&TableTopology>,
) -> Result<Vec<Link>> {
    // For links from the tables: the other clusters behind each remote, whose GTID domains
    // the remote also passes on.
    let mut behind: BTreeMap<String, Vec<Link>> = BTreeMap::new();
    let links: Vec<LinkConfig> = match tables.filter(|_| wants_tables(cfg)) {
        Some(t) => {
            let mut v = Vec::new();
            for remote in t.remotes_of(local_cluster) {
                let via = format!("percona.link row ({local_cluster}, {remote})");
                v.push(t.link_config(&remote, &via)?);
                let mut far = Vec::new();
                for c in t.behind(&remote, local_cluster).into_iter().skip(1) {
                    let lc = t.link_config(&c, &format!("{via}, through which {c} replicates"))?;
                    far.push(Link {
                        name: format!("{} (through {remote})", link_name(local_cluster, &c)),
                        remote: lc.remote,
                        key: LinkKey::default(),
                        channel: Channel::default_channel(),
                        sources: lc.sources,
                        user: lc.user,
                        password: lc.password,
                        tls: None,
                        gtid_domains: None,
                        behind: Vec::new(),
                    });
                }
                behind.insert(remote, far);
            }
            v
        }
        None => cfg.links.clone(),
    };

    if schema.is_seed() && links.len() > 1 {
        return Err(Error::Links(format!(
            "the seed generation of percona.replication (with a `cluster` column) holds one link per cluster, but {} links are configured; run `init` on a fresh schema or keep one link",
            links.len()
        )));
    }

    links
        .into_iter()
        .map(|l| {
            if l.remote == local_cluster {
                return Err(Error::Config(cfg.link_error(
                    &l,
                    format!(
                        "{local_cluster:?} is this node's own cluster (wsrep_cluster_name); a link names a remote cluster"
                    ),
                )));
            }
            let (name, key, channel) = naming(local_cluster, &l.remote, schema.is_seed())
                .map_err(|e| Error::Config(cfg.link_error(&l, e.to_string())))?;
            Ok(Link {
                name,
                behind: behind.remove(&l.remote).unwrap_or_default(),
                remote: l.remote,
                key,
                channel,
                sources: l.sources,
                user: l.user,
                password: l.password,
                tls: l.tls,
                gtid_domains: l.gtid_domains,
            })
        })
        .collect()
}

/// A link's name, its key in the state table and its channel: the key and the channel are
/// named like the link, or, in the seed generation, the local cluster's name and the default
/// channel.
pub fn naming(
    local_cluster: &str,
    remote: &str,
    seed: bool,
) -> std::result::Result<(String, LinkKey, Channel), NameError> {
    let name = link_name(local_cluster, remote);
    if seed {
        return Ok((
            name,
            LinkKey::from(local_cluster),
            Channel::default_channel(),
        ));
    }
    let channel = Channel::named(&name)?;
    Ok((name.clone(), LinkKey::from(name), channel))
}

/// Credentials parsed from a `replCreds` fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplCreds {
    pub user: String,
    pub password: Secret,
    pub port: Option<u16>,
}

/// Parses `master_user='repl', master_password='pass', master_port=3307` (also the `source_`
/// spellings, any case, and a harmless `master_auto_position=1`). Refuses anything else.
pub fn parse_repl_creds(s: &str) -> std::result::Result<ReplCreds, ReplCredsError> {
    repl_creds(s).map_err(ReplCredsError)
}

fn repl_creds(s: &str) -> std::result::Result<ReplCreds, String> {
    let mut sc = Scanner::new(s);
    let (mut user, mut password, mut port) = (None, None, None);
    while !sc.at_end() {
        let key = sc.key()?;
        match (key.as_str(), sc.value(&key)?) {
            ("master_user" | "source_user", Value::Text(v)) => user = Some(v),
            ("master_password" | "source_password", Value::Text(v)) => {
                password = Some(Secret::new(v))
            }
            ("master_port" | "source_port", Value::Number(n)) => {
                port = Some(
                    n.parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| format!("{n} is not a port number"))?,
                )
            }
            ("master_auto_position" | "source_auto_position", Value::Number(n)) if n == "1" => {}
            (k, _) => {
                return Err(format!(
                    "{k} is not accepted; replCreds may only hold master_user, master_password and master_port"
                ));
            }
        }
        sc.separator()?;
    }
    Ok(ReplCreds {
        user: user.ok_or("master_user is missing")?,
        password: password.ok_or("master_password is missing")?,
        port,
    })
}

/// A value of a `replCreds` field.
enum Value {
    Text(String),
    Number(String),
}

/// Reads `key = value, ...` one token at a time; positions in errors count from 1.
struct Scanner {
    chars: Vec<char>,
    i: usize,
}

impl Scanner {
    fn new(s: &str) -> Scanner {
        Scanner {
            chars: s.chars().collect(),
            i: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.peek().is_none()
    }

    fn unexpected(&self, expected: &str) -> String {
        format!(
            "unexpected {:?} at character {}; {expected}",
            self.chars[self.i],
            self.i + 1
        )
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        self.chars[start..self.i].iter().collect()
    }

    /// A field name, lowercased, and the `=` after it.
    fn key(&mut self) -> std::result::Result<String, String> {
        let key = self
            .take_while(|c| c.is_ascii_alphanumeric() || c == '_')
            .to_ascii_lowercase();
        if key.is_empty() {
            return Err(self.unexpected("expected a field name"));
        }
        self.skip_ws();
        if self.peek() != Some('=') {
            return Err(format!("expected '=' after {key}"));
        }
        self.i += 1;
        Ok(key)
    }

    /// A quoted string (SQL doubling or a backslash escapes the quote) or a number.
    fn value(&mut self, key: &str) -> std::result::Result<Value, String> {
        self.skip_ws();
        let Some(q) = self.peek().filter(|c| *c == '\'' || *c == '"') else {
            let n = self.take_while(|c| c.is_ascii_digit());
            if n.is_empty() {
                return Err(format!("{key} needs a quoted string or a number"));
            }
            return Ok(Value::Number(n));
        };
        self.i += 1;
        let mut v = String::new();
        loop {
            let next = self.chars.get(self.i + 1).copied();
            match self.peek() {
                None => return Err(format!("unterminated quoted value for {key}")),
                Some('\\') if next.is_some() => {
                    v.extend(next);
                    self.i += 2;
                }
                Some(c) if c == q && next == Some(q) => {
                    v.push(q);
                    self.i += 2;
                }
                Some(c) if c == q => {
                    self.i += 1;
                    return Ok(Value::Text(v));
                }
                Some(c) => {
                    v.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// The comma between fields, or the end.
    fn separator(&mut self) -> std::result::Result<(), String> {
        if self.at_end() {
            return Ok(());
        }
        if self.peek() != Some(',') {
            return Err(self.unexpected("fields are separated by commas"));
        }
        self.i += 1;
        Ok(())
    }
}

/// Parses a `masterCandidates` list: hosts or `host:port`, separated by spaces or commas.
pub fn parse_candidates(
    s: &str,
    default_port: u16,
) -> std::result::Result<Vec<SourceAddr>, CandidatesError> {
    let mut out: Vec<SourceAddr> = Vec::new();
    for item in s
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|x| !x.is_empty())
    {
        let a = SourceAddr::parse(item, default_port)?;
        if !out.iter().any(|o| o.host == a.host && o.port == a.port) {
            out.push(a);
        }
    }
    if out.is_empty() {
        return Err(CandidatesError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::state::fixtures::{multi, seed};
    use std::path::Path;

    #[test]
    fn repl_creds_parse_field_by_field() {
        let c = parse_repl_creds("master_user='repl', master_password='replpass'").unwrap();
        assert_eq!(c.user, "repl");
        assert_eq!(c.password.expose(), "replpass");
        assert_eq!(c.port, None);
        let c = parse_repl_creds(
            " MASTER_USER = \"r\" ,master_password='it''s \\'x\\'', master_port=3307, MASTER_AUTO_POSITION = 1",
        )
        .unwrap();
        assert_eq!(c.user, "r");
        assert_eq!(c.password.expose(), "it's 'x'");
        assert_eq!(c.port, Some(3307));
    }

    #[test]
    fn repl_creds_with_extra_sql_are_refused() {
        for bad in [
            "master_user='repl', master_password='x'; DROP TABLE percona.replication",
            "master_user='repl', master_password='x', master_host='evil'",
            "master_user='repl', master_password='x' master_port=1",
            "master_user='repl', master_password=x",
            "master_user='repl', master_password='x",
            "master_user='repl'",
            "master_user='repl', master_password='x', master_port=99999",
            "master_user='repl', master_password='x', master_auto_position=0",
        ] {
            assert!(parse_repl_creds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn candidates_parse() {
        let c = parse_candidates("10.0.0.1 10.0.0.2:3307,10.0.0.1", 3306).unwrap();
        assert_eq!(
            c.iter().map(SourceAddr::address).collect::<Vec<_>>(),
            ["10.0.0.1:3306", "10.0.0.2:3307"]
        );
        assert!(parse_candidates("  ", 3306).is_err());
    }

    const CFG: &str =
        "[[link]]\nremote = \"DC2\"\nsources = [\"h2\"]\nuser = \"repl\"\npassword = \"p\"\n";

    #[test]
    fn config_links_resolve_to_named_channels_or_the_default_one() {
        let cfg = Config::parse(CFG, Path::new("c.toml")).unwrap();
        let l = &resolve(&cfg, "DC1", &multi(), None).unwrap()[0];
        assert_eq!(l.key, "DC1-DC2");
        assert_eq!(l.channel.as_str(), "DC1-DC2");
        let l = &resolve(&cfg, "DC1", &seed(), None).unwrap()[0];
        assert_eq!(l.key, "DC1");
        assert!(l.channel.is_default());
    }

    #[test]
    fn a_link_naming_the_local_cluster_found_at_run_time_names_the_config_line() {
        let cfg = Config::parse(CFG, Path::new("c.toml")).unwrap();
        let e = resolve(&cfg, "DC2", &multi(), None).unwrap_err();
        assert!(e.to_string().contains("c.toml:1"), "{e}");
        assert!(e.to_string().contains("own cluster"), "{e}");
    }

    fn chain() -> TableTopology {
        let edges = [
            ("DC1", "DC2"),
            ("DC1", "DC3"),
            ("DC2", "DC1"),
            ("DC3", "DC1"),
        ];
        TableTopology {
            edges: edges
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            clusters: [("DC1", "h1"), ("DC2", "h2a h2b"), ("DC3", "h3")]
                .iter()
                .map(|(c, h)| {
                    (
                        c.to_string(),
                        (
                            h.to_string(),
                            "master_user='r', master_password='p', master_port=3307".to_string(),
                        ),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn table_links_are_used_when_the_config_has_none() {
        let cfg = Config::defaults();
        let links = resolve(&cfg, "DC1", &multi(), Some(&chain())).unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].sources[1].address(), "h2b:3307");
        assert_eq!(links[1].key, "DC1-DC3");
        // The seed table holds one link only.
        assert!(resolve(&cfg, "DC1", &seed(), Some(&chain())).is_err());
        // A link without a cluster row is an error naming what to add.
        let mut t = chain();
        t.clusters.remove("DC3");
        let e = resolve(&cfg, "DC1", &multi(), Some(&t)).unwrap_err();
        assert!(
            e.to_string()
                .contains("percona.cluster has no row for \"DC3\""),
            "{e}"
        );
    }

    #[test]
    fn in_a_chain_the_clusters_behind_a_remote_are_known() {
        let t = chain();
        assert_eq!(t.behind("DC1", "DC2"), ["DC1", "DC3"]);
        assert_eq!(t.behind("DC2", "DC1"), ["DC2"]);
        let cfg = Config::defaults();
        // DC2 receives DC3's writes through DC1.
        let links = resolve(&cfg, "DC2", &multi(), Some(&t)).unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(
            links[0]
                .behind
                .iter()
                .map(|l| l.remote.as_str())
                .collect::<Vec<_>>(),
            ["DC3"]
        );
        assert_eq!(links[0].behind[0].sources[0].address(), "h3:3307");
        // DC1, in the middle, gets only each remote's own writes from it.
        let links = resolve(&cfg, "DC1", &multi(), Some(&t)).unwrap();
        assert!(links.iter().all(|l| l.behind.is_empty()));
    }
}
