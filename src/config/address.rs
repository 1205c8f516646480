//! A server's address as the config writes it (`host`, `host:port`, `[v6]`, `[v6]:port`): a
//! link's source candidates, and `[local] address`.

use crate::error::{AddrError, AddrProblem};

/// A source candidate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SourceAddr {
    pub host: String,
    pub port: u16,
    /// Higher is tried first; equal weights keep the listed order.
    pub weight: i64,
}

impl SourceAddr {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`.
    pub fn parse(s: &str, default_port: u16) -> Result<SourceAddr, AddrError> {
        let s = s.trim();
        let bad = |why: AddrProblem| AddrError {
            address: s.to_string(),
            why,
        };
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, tail) = rest
                .split_once(']')
                .ok_or_else(|| bad(AddrProblem::MissingBracket))?;
            match tail.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if tail.is_empty() => (h, None),
                None => return Err(bad(AddrProblem::AfterBracket(tail.to_string()))),
            }
        } else if s.matches(':').count() == 1 {
            let (h, p) = s.split_once(':').unwrap_or((s, ""));
            (h, Some(p))
        } else {
            (s, None)
        };
        if host.is_empty() {
            return Err(bad(AddrProblem::EmptyHost));
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '\'' | '"' | '\\' | ';'))
        {
            return Err(bad(AddrProblem::BadHost));
        }
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(AddrProblem::BadPort(p.to_string())))?,
        };
        Ok(SourceAddr {
            host: host.to_string(),
            port,
            weight: 0,
        })
    }

    /// `host:port` ([`crate::db::flavor::host_port`]).
    pub fn address(&self) -> String {
        crate::db::flavor::host_port(&self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_parse() {
        assert_eq!(SourceAddr::parse("h", 3306).unwrap().address(), "h:3306");
        assert_eq!(
            SourceAddr::parse("h:3307", 3306).unwrap().address(),
            "h:3307"
        );
        assert_eq!(
            SourceAddr::parse("[::1]:3307", 3306).unwrap().address(),
            "[::1]:3307"
        );
        assert_eq!(SourceAddr::parse("::1", 3306).unwrap().host, "::1");
    }
}
