//! What a login may do, read from the lines of `SHOW GRANTS` (MariaDB, MySQL/PXC 5.7 and 8.x),
//! and the privileges each of the manager's statements needs in each flavour.
//!
//! Only what `SHOW GRANTS` prints is known: privileges held through a role are not expanded,
//! so a privilege that is missing while the login has roles is "not confirmed", not "missing"
//! ([`Grants::has_roles`]). Where a statement can be tried without changing anything (a read,
//! a `SET SESSION`), the callers try it instead of asking this module.

use std::collections::{BTreeMap, BTreeSet};

/// The privileges of one login, by scope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// On `*.*`.
    global: BTreeSet<String>,
    /// On `schema.*`, by schema.
    schemas: BTreeMap<String, BTreeSet<String>>,
    /// On `schema.table`, by (schema, table).
    tables: BTreeMap<(String, String), BTreeSet<String>>,
    /// Roles granted to the login (`GRANT role TO user`).
    roles: Vec<String>,
}

/// A privilege the manager needs, as each flavour names it: any one of `any_of` will do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    pub what: &'static str,
    pub any_of: &'static [&'static str],
}

impl Grants {
    /// Parses the lines of `SHOW GRANTS`. Lines it does not understand (proxy grants, column
    /// privileges) add nothing.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Grants {
        let mut g = Grants::default();
        for line in lines {
            g.add_line(line.as_ref());
        }
        g
    }

    fn add_line(&mut self, line: &str) {
        let line = line.trim();
        let Some(rest) = strip_prefix_ci(line, "GRANT ") else {
            return;
        };
        let Some(on) = find_ci(rest, " ON ") else {
            // `GRANT role TO user`: a role.
            if let Some(to) = find_ci(rest, " TO ") {
                self.roles.push(unquote(&rest[..to]));
            }
            return;
        };
        let privs = &rest[..on];
        let after = &rest[on + 4..];
        let Some(to) = find_ci(after, " TO ") else {
            return;
        };
        let object = after[..to].trim();
        if privs.contains('(') {
            return; // column privileges
        }
        let privs: BTreeSet<String> = privs
            .split(',')
            .map(|p| p.trim().to_ascii_uppercase())
            .filter(|p| !p.is_empty())
            .collect();
        let Some((schema, table)) = object.split_once('.') else {
            return;
        };
        let (schema, table) = (unquote(schema), unquote(table));
        let set = match (schema.as_str(), table.as_str()) {
            ("*", "*") => &mut self.global,
            (_, "*") => self.schemas.entry(schema).or_default(),
            _ => self.tables.entry((schema, table)).or_default(),
        };
        set.extend(privs);
    }

    /// Whether the login holds one of `any_of` on `*.*` (`ALL PRIVILEGES` holds every one).
    pub fn global(&self, any_of: &[&str]) -> bool {
        holds(&self.global, any_of)
    }

    /// Whether the login holds one of `any_of` on every table of `schema`: globally or on the
    /// schema.
    pub fn on_schema(&self, schema: &str, any_of: &[&str]) -> bool {
        self.global(any_of) || self.schemas.get(schema).is_some_and(|s| holds(s, any_of))
    }

    /// Whether the login holds one of `any_of` on `schema.table`.
    pub fn on_table(&self, schema: &str, table: &str, any_of: &[&str]) -> bool {
        self.on_schema(schema, any_of)
            || self
                .tables
                .get(&(schema.to_string(), table.to_string()))
                .is_some_and(|s| holds(s, any_of))
    }

    /// Roles granted to the login: their privileges are not in these lines.
    pub fn has_roles(&self) -> bool {
        !self.roles.is_empty()
    }

    pub fn roles(&self) -> &[String] {
        &self.roles
    }
}

fn holds(set: &BTreeSet<String>, any_of: &[&str]) -> bool {
    set.contains("ALL PRIVILEGES")
        || set.contains("ALL")
        || any_of.iter().any(|p| set.contains(&p.to_ascii_uppercase()))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// The byte offset of `needle` in `s`, ASCII case-insensitive, outside quotes.
fn find_ci(s: &str, needle: &str) -> Option<usize> {
    let upper = s.to_ascii_uppercase();
    let needle = needle.to_ascii_uppercase();
    let mut quote: Option<u8> = None;
    let bytes = upper.as_bytes();
    for i in 0..bytes.len() {
        match (quote, bytes[i]) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b @ (b'`' | b'\'' | b'"')) => quote = Some(b),
            (None, _) if upper[i..].starts_with(&needle) => return Some(i),
            (None, _) => {}
        }
    }
    None
}

/// `` `name` `` or `'name'` or `name`, without its quotes; a role's `@host` part is kept.
fn unquote(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !matches!(c, '`' | '\'' | '"'))
        .collect()
}

/// Stopping, starting, pointing and resetting a replication channel (`STOP SLAVE`,
/// `CHANGE MASTER`, ...): what a fence needs on a peer, and a run on its own node.
/// MariaDB 10.5.2+ and MySQL 8.0 name it `REPLICATION SLAVE ADMIN` / `REPLICATION_SLAVE_ADMIN`;
/// `SUPER` still grants it in both, and is the only way on MySQL 5.7 and MariaDB 10.4.
pub const REPLICATION_ADMIN: Need = Need {
    what: "stop, start and point a replication channel",
    any_of: &[
        "SUPER",
        "REPLICATION SLAVE ADMIN",
        "REPLICATION_SLAVE_ADMIN",
    ],
};

/// `resume` deletes the cluster's pause row.
pub const RESUME_PRIVILEGE: &str = "DELETE";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_lines_as_show_grants_prints_them() {
        // As MariaDB 10.11 printed them on the sandbox.
        let g = Grants::parse(&[
            "GRANT REPLICATION SLAVE ADMIN, SLAVE MONITOR ON *.* TO `f1`@`127.%` IDENTIFIED BY PASSWORD '*7B9E'",
            "GRANT SELECT, INSERT, UPDATE ON `percona`.* TO `f1`@`127.%`",
        ]);
        assert!(g.global(REPLICATION_ADMIN.any_of));
        assert!(g.global(&["SLAVE MONITOR"]));
        assert!(!g.global(&["SUPER"]));
        assert!(g.on_schema("percona", &["UPDATE"]));
        assert!(!g.on_schema("percona", &["DELETE"]));
        assert!(!g.on_schema("mysql", &["SELECT"]));
        assert!(!g.has_roles());
    }

    #[test]
    fn all_privileges_holds_everything_and_super_holds_the_channel() {
        let all = Grants::parse(&[
            "GRANT ALL PRIVILEGES ON *.* TO `pxcrm`@`127.%` IDENTIFIED BY PASSWORD '*X' WITH GRANT OPTION",
        ]);
        assert!(all.global(REPLICATION_ADMIN.any_of));
        assert!(all.on_table("percona", "replication_pause", &["DELETE"]));
        let sup = Grants::parse(&["GRANT SUPER ON *.* TO 'old'@'%'"]);
        assert!(sup.global(REPLICATION_ADMIN.any_of));
        let none = Grants::parse(&["GRANT USAGE ON *.* TO `root`@`localhost`"]);
        assert!(!none.global(REPLICATION_ADMIN.any_of));
    }

    #[test]
    fn mysql_8_dynamic_privileges_tables_and_roles() {
        let g = Grants::parse(&[
            "GRANT SELECT ON *.* TO `m`@`%`",
            "GRANT REPLICATION_SLAVE_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `m`@`%`",
            "GRANT DELETE ON `percona`.`replication_pause` TO `m`@`%`",
            "GRANT `dba_role`@`%` TO `m`@`%`",
        ]);
        assert!(g.global(REPLICATION_ADMIN.any_of));
        assert!(g.on_table("percona", "replication_pause", &["DELETE"]));
        assert!(!g.on_table("percona", "replication", &["DELETE"]));
        assert!(g.on_table("mysql", "wsrep_cluster_members", &["SELECT"]));
        assert!(g.has_roles());
        assert_eq!(g.roles(), ["dba_role@%"]);
    }

    #[test]
    fn names_in_quotes_cannot_fake_a_scope() {
        // A user named like a clause: the ON and TO inside quotes are not the grant's.
        let g = Grants::parse(&["GRANT SELECT ON `x ON *`.* TO `a TO b`@`%`"]);
        assert!(!g.global(&["SELECT"]));
        assert!(g.on_schema("x ON *", &["SELECT"]));
        let col = Grants::parse(&[
            "GRANT SELECT (host), UPDATE (host) ON `percona`.`replication` TO `c`@`%`",
        ]);
        assert!(!col.on_table("percona", "replication", &["SELECT"]));
        assert_eq!(Grants::parse(&["not a grant"]), Grants::default());
    }
}
