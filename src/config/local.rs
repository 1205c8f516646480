//! `[local]`: the local server this node's manager logs in to (socket or host, option files,
//! TLS), and this node's identity in its cluster (cluster, node, weight, the address its peers
//! fence it at).

use super::Source;
use super::address::SourceAddr;
use crate::error::ConfigError;
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// Where the manager connects to its local server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Socket(PathBuf),
    Tcp { host: String, port: u16 },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Socket(p) => write!(f, "socket {}", p.display()),
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// TLS for the manager's own connection to the local server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalTls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Check the server certificate against the CA and the host name.
    pub verify: bool,
}

/// The local server and this node's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local {
    /// The local cluster's name; read from `wsrep_cluster_name` when not set.
    pub cluster: Option<String>,
    /// This node's name in the state table; read from `wsrep_node_name` when not set.
    pub node: Option<String>,
    /// This node's weight; from `percona.weight` (or 0) when not set.
    pub weight: Option<i64>,
    /// `None` means: use the option file's socket/host, or the usual socket paths.
    pub endpoint: Option<Endpoint>,
    /// The only MySQL option file read for the login, as the client's `--defaults-file`
    /// (default: the client's chain, `/etc/my.cnf` ... `~/.my.cnf`; see `config::mycnf`).
    pub defaults_file: Option<PathBuf>,
    /// An option file read after the global ones and before `~/.my.cnf`, as the client's
    /// `--defaults-extra-file`; it must exist. Not read when `defaults_file` is set.
    pub defaults_extra_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub tls: Option<LocalTls>,
    /// `host:port` where the other nodes of the cluster reach this server, to fence it. Default:
    /// this node's entry in `mysql.wsrep_cluster_members`, else `wsrep_node_incoming_address`.
    pub address: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocal {
    cluster: Option<Spanned<String>>,
    node: Option<String>,
    weight: Option<i64>,
    socket: Option<PathBuf>,
    host: Option<String>,
    port: Option<u16>,
    defaults_file: Option<PathBuf>,
    defaults_extra_file: Option<PathBuf>,
    connect_timeout: Option<u64>,
    read_timeout: Option<u64>,
    tls: Option<RawLocalTls>,
    address: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocalTls {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    verify: Option<bool>,
}

impl RawLocal {
    /// `[local]`.
    pub(super) fn check(self, src: &Source) -> Result<Local, ConfigError> {
        let l = self;
        let endpoint = match (l.socket, l.host) {
            (Some(_), Some(_)) => {
                return Err(src.at(
                    None,
                    "[local]: set either `socket` or `host`, not both".into(),
                ));
            }
            (Some(s), None) => {
                if l.port.is_some() {
                    return Err(src.at(
                        None,
                        "[local]: `port` goes with `host`, not `socket`".into(),
                    ));
                }
                Some(Endpoint::Socket(src.rel(s)))
            }
            (None, Some(h)) => Some(Endpoint::Tcp {
                host: h,
                port: l.port.unwrap_or(3306),
            }),
            (None, None) => l.port.map(|port| Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port,
            }),
        };
        let cluster = match l.cluster {
            Some(c) => {
                if c.get_ref().is_empty() {
                    return Err(src.at(Some(c.span()), "[local] cluster: must not be empty".into()));
                }
                Some(c.into_inner())
            }
            None => None,
        };
        let address = match l.address {
            Some(a) => {
                let parsed = SourceAddr::parse(a.get_ref(), 3306)
                    .map_err(|e| src.at(Some(a.span()), format!("[local] address: {e}")))?;
                Some(parsed.address())
            }
            None => None,
        };
        let local = Local {
            address,
            cluster,
            node: l.node,
            weight: l.weight,
            endpoint,
            defaults_file: l.defaults_file.map(|p| src.rel(p)),
            defaults_extra_file: l.defaults_extra_file.map(|p| src.rel(p)),
            connect_timeout: Duration::from_secs(l.connect_timeout.unwrap_or(10).max(1)),
            read_timeout: Duration::from_secs(l.read_timeout.unwrap_or(60).max(1)),
            tls: l.tls.map(|t| LocalTls {
                ca: t.ca.map(|p| src.rel(p)),
                cert: t.cert.map(|p| src.rel(p)),
                key: t.key.map(|p| src.rel(p)),
                verify: t.verify.unwrap_or(true),
            }),
        };
        Ok(local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    #[test]
    fn the_peer_address_is_checked_like_a_source_address() {
        let c = parse("[local]\naddress = \"10.0.1.1\"\n").unwrap();
        assert_eq!(c.local.address.as_deref(), Some("10.0.1.1:3306"));
        let e = parse("[local]\naddress = \"10.0.1.1:x\"\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.starts_with("[local] address:"), "{e}");
    }

    #[test]
    fn the_option_files_of_local_are_relative_to_the_config_file() {
        let c = parse("[local]\ndefaults_extra_file = \"login.cnf\"\n").unwrap();
        assert_eq!(
            c.local.defaults_extra_file,
            Some(PathBuf::from("/etc/login.cnf"))
        );
        assert_eq!(c.local.defaults_file, None);
        let e = parse("[local]\ndefaults_extra = \"x\"\n").unwrap_err();
        assert!(e.message.contains("unknown field `defaults_extra`"), "{e}");
    }
}
