//! `[[link]]`: the remote clusters this cluster replicates from (their source candidates and
//! replication login); and `[topology]`: whether those sections or the tables name them.

use super::address::SourceAddr;
use super::local::Local;
use super::{Source, line_col, line_span, read_secret};
use crate::db::flavor::ReplicationTls;
use crate::db::sql::{Channel, Secret};
use crate::error::ConfigError;
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

/// How logs and mail name a link: `<local>-<remote>`, in both generations.
pub fn link_name(local_cluster: &str, remote: &str) -> String {
    format!("{local_cluster}-{remote}")
}

/// One `[[link]]`: a remote cluster this cluster replicates from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    pub remote: String,
    pub sources: Vec<SourceAddr>,
    pub user: String,
    pub password: Secret,
    /// MariaDB: the GTID domains to request; learned from the source when not set.
    pub gtid_domains: Option<Vec<u32>>,
    pub tls: Option<ReplicationTls>,
    /// The line of the `[[link]]` header, for errors found later.
    pub line: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLink {
    remote: Spanned<String>,
    sources: Spanned<Vec<Spanned<toml::Value>>>,
    port: Option<u16>,
    user: String,
    password: Option<String>,
    password_file: Option<Spanned<PathBuf>>,
    gtid_domains: Option<Vec<u32>>,
    tls: Option<RawLinkTls>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinkTls {
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    verify_server_cert: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSourceTable {
    host: String,
    port: Option<u16>,
    weight: Option<i64>,
}

/// Every `[[link]]`.
pub(super) fn check_links(
    raw: Vec<Spanned<RawLink>>,
    local: &Local,
    src: &Source,
) -> Result<Vec<LinkConfig>, ConfigError> {
    let mut links: Vec<LinkConfig> = Vec::new();
    for spanned in raw {
        let line = line_col(src.text, spanned.span().start).0;
        let link = spanned.into_inner().check(line, local, &links, src)?;
        links.push(link);
    }
    Ok(links)
}

impl RawLink {
    /// One `[[link]]` (at `line`), beside the links before it.
    fn check(
        self,
        line: usize,
        local: &Local,
        earlier: &[LinkConfig],
        src: &Source,
    ) -> Result<LinkConfig, ConfigError> {
        let remote = self.remote.get_ref().clone();
        let remote_span = self.remote.span();
        let ctx = format!("[[link]] remote = {remote:?}");
        if remote.is_empty() {
            return Err(src.at(
                Some(remote_span),
                "[[link]] remote: must not be empty".into(),
            ));
        }
        Channel::named(&remote)
            .map_err(|e| src.at(Some(remote_span.clone()), format!("{ctx}: remote: {e}")))?;
        if local.cluster.as_deref() == Some(remote.as_str()) {
            return Err(src.at(
                Some(remote_span),
                format!(
                    "{ctx}: this is the local cluster; a link names a remote cluster to replicate from"
                ),
            ));
        }
        if earlier.iter().any(|l| l.remote == remote) {
            return Err(src.at(
                Some(remote_span),
                format!("{ctx}: a second link to the same remote cluster"),
            ));
        }
        if let Some(c) = &local.cluster {
            Channel::named(&link_name(c, &remote))
                .map_err(|e| src.at(Some(remote_span.clone()), format!("{ctx}: {e}")))?;
        }
        let sources = check_sources(self.sources, self.port.unwrap_or(3306), &ctx, src)?;
        if self.user.is_empty() {
            return Err(src.at(
                Some(line_span(src.text, line)),
                format!("{ctx}: user: must not be empty"),
            ));
        }
        let password = match (self.password, self.password_file) {
            (Some(_), Some(pf)) => {
                return Err(src.at(
                    Some(pf.span()),
                    format!("{ctx}: set either `password` or `password_file`, not both"),
                ));
            }
            (Some(p), None) => Secret::new(p),
            (None, Some(pf)) => read_secret(&src.rel(pf.get_ref().clone()))
                .map_err(|e| src.at(Some(pf.span()), format!("{ctx}: password_file: {e}")))?,
            (None, None) => {
                return Err(src.at(
                    Some(line_span(src.text, line)),
                    format!("{ctx}: set `password` or `password_file`"),
                ));
            }
        };
        Ok(LinkConfig {
            remote,
            sources,
            user: self.user,
            password,
            gtid_domains: self.gtid_domains,
            tls: self.tls.map(|t| ReplicationTls {
                ca: t.ca,
                cert: t.cert,
                key: t.key,
                verify_server_cert: t.verify_server_cert.unwrap_or(true),
            }),
            line: Some(line),
        })
    }
}

/// A link's `sources`: strings or tables, at least one, none twice.
fn check_sources(
    raw: Spanned<Vec<Spanned<toml::Value>>>,
    default_port: u16,
    ctx: &str,
    src: &Source,
) -> Result<Vec<SourceAddr>, ConfigError> {
    let sources_span = raw.span();
    let mut sources: Vec<SourceAddr> = Vec::new();
    for s in raw.into_inner() {
        let span = s.span();
        let addr = source_addr(s.into_inner(), default_port)
            .map_err(|e| src.at(Some(span.clone()), format!("{ctx}: sources: {e}")))?;
        if sources
            .iter()
            .any(|o| o.host == addr.host && o.port == addr.port)
        {
            return Err(src.at(
                Some(span),
                format!("{ctx}: sources: {} is listed twice", addr.address()),
            ));
        }
        sources.push(addr);
    }
    if sources.is_empty() {
        return Err(src.at(
            Some(sources_span),
            format!("{ctx}: sources: list at least one source candidate"),
        ));
    }
    Ok(sources)
}

/// One source candidate: `"host[:port]"` or `{ host, port, weight }`.
fn source_addr(v: toml::Value, default_port: u16) -> Result<SourceAddr, String> {
    match v {
        toml::Value::String(v) => SourceAddr::parse(&v, default_port).map_err(|e| e.to_string()),
        toml::Value::Table(t) => {
            let table: RawSourceTable = toml::Value::Table(t)
                .try_into()
                .map_err(|e: toml::de::Error| e.message().trim().to_string())?;
            let mut a = SourceAddr::parse(&table.host, table.port.unwrap_or(default_port))
                .map_err(|e| e.to_string())?;
            if let Some(p) = table.port {
                a.port = p;
            }
            a.weight = table.weight.unwrap_or(0);
            Ok(a)
        }
        other => Err(format!(
            "expected \"host[:port]\" or {{ host = .., port = .., weight = .. }}, found a {}",
            other.type_str()
        )),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopologySource {
    /// `[[link]]` sections when there are any, otherwise `percona.cluster`/`link`.
    Auto,
    Config,
    Tables,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopology {
    from: Option<TopologySource>,
}

impl RawTopology {
    /// `[topology]`, which must agree with the links.
    pub(super) fn check(
        self,
        links: &[LinkConfig],
        src: &Source,
    ) -> Result<TopologySource, ConfigError> {
        let topology = self.from.unwrap_or(TopologySource::Auto);
        if topology == TopologySource::Config && links.is_empty() {
            return Err(src.at(
                None,
                "[topology] from = \"config\" but there is no [[link]] section".into(),
            ));
        }
        if topology == TopologySource::Tables && !links.is_empty() {
            return Err(src.at(
            None,
            "[topology] from = \"tables\" but [[link]] sections are present: remove one or the other".into(),
        ));
        }
        Ok(topology)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{MINIMAL, parse};

    #[test]
    fn a_link_to_the_local_cluster_is_refused() {
        let e = parse(&MINIMAL.replace("remote = \"DC2\"", "remote = \"DC1\"")).unwrap_err();
        assert_eq!(e.line, Some(6));
        assert!(e.message.contains("this is the local cluster"), "{e}");
    }

    #[test]
    fn a_duplicate_source_is_refused() {
        let e = parse(&MINIMAL.replace("\"10.0.2.2:3307\"", "\"10.0.2.1:3306\"")).unwrap_err();
        assert!(e.message.contains("10.0.2.1:3306 is listed twice"), "{e}");
        assert_eq!(e.line, Some(7));
    }

    #[test]
    fn a_missing_password_file_is_reported_with_its_key() {
        let e = parse(&MINIMAL.replace(
            "password = \"secret\"",
            "password_file = \"/nonexistent/repl.pass\"",
        ))
        .unwrap_err();
        assert_eq!(e.line, Some(9));
        assert!(
            e.message
                .contains("password_file: cannot read /nonexistent/repl.pass"),
            "{e}"
        );
    }

    #[test]
    fn bad_source_addresses_are_refused() {
        for bad in ["\"h:0\"", "\"h:x\"", "\"\"", "\"a b\"", "\"h';--\"", "42"] {
            let e = parse(&MINIMAL.replace("\"10.0.2.1\"", bad)).unwrap_err();
            assert_eq!(e.line, Some(7), "{bad}: {e}");
        }
    }
}
