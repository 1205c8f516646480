//! The names a policy compares against, as Rhai constants, each a map built from the Rust type
//! it names, so that the host and the policy cannot disagree on a spelling:
//!
//! | constant | values |
//! | --- | --- |
//! | `ROLE` | `ROLE.No`, `ROLE.Yes`, `ROLE.Proposed`, `ROLE.Failed` (a row's `state`) |
//! | `THREAD` | `THREAD.Yes`, `THREAD.No`, `THREAD.Connecting` (a replica's `io`, `sql`) |
//! | `CHANNEL` | `CHANNEL.none`, `.stopped`, `.running`, `.healthy` (a row's reported `channel`) |
//! | `FAILURE` | `FAILURE.sql`, `.unreachable`, `.connect` (a failure's `kind`) |
//! | `CLUSTER` | `CLUSTER.Primary`, `.NonPrimary`, `.Disconnected` (`node.cluster_status`) |
//! | `NODE_STATE` | `NODE_STATE.Joining`, `.Donor`, `.Joined`, `.Synced` (`node.state`) |
//! | `CONNECT` | `CONNECT.replicating`, `.not_running`, `.sql_error` (`connect(...).outcome`) |
//! | `SQL_ERROR` | `SQL_ERROR.data`, `.cluster` (a replica's `sql_error_kind`) |
//! | `EVENT` | `EVENT.new_replica`, `.failed`, `.still_failing`, ... (the `mail` hook's `event`) |
//!
//! The values are the strings (or numbers) the host uses, so a policy that compares against
//! bare strings keeps working; the shipped policy uses the names. A name that does not exist
//! (`ROLE.Yse`) is an error that lists the names that do, where a misspelt string would
//! silently never match.

use crate::db::flavor::{SqlErrorKind, Thread};
use crate::db::state::{ChannelState, FailureKind, Role};
use crate::exec::ConnectOutcome;
use crate::exec::server::{ClusterStatus, LocalState};
use crate::host::Event;
use rhai::{Dynamic, Engine, EvalAltResult, Module, Scope};
use std::collections::BTreeMap;

/// One constant: a closed set of names and their values.
#[derive(Clone, Debug)]
pub struct Names {
    constant: &'static str,
    values: BTreeMap<String, Dynamic>,
}

impl Names {
    fn get(&mut self, name: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        self.values.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.values.keys().map(String::as_str).collect();
            format!(
                "{}.{name} does not exist; {} has: {}",
                self.constant,
                self.constant,
                known.join(", ")
            )
            .into()
        })
    }
}

/// Makes `ROLE.Yes` (and `ROLE["Yes"]`) work, and `ROLE.Yse` an error.
pub fn register_type(engine: &mut Engine) {
    engine
        .register_type_with_name::<Names>("Names")
        .register_indexer_get(Names::get);
}

fn map<K: Into<String>, V: Into<Dynamic>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> BTreeMap<String, Dynamic> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

/// Every constant, by name.
fn all() -> Vec<Names> {
    raw()
        .into_iter()
        .map(|(constant, values)| Names { constant, values })
        .collect()
}

fn raw() -> Vec<(&'static str, BTreeMap<String, Dynamic>)> {
    vec![
        ("ROLE", map(Role::ALL.map(|r| (r.as_str(), r.as_str())))),
        (
            "THREAD",
            map([Thread::Yes, Thread::No, Thread::Connecting].map(|t| {
                let s = t.to_string();
                (s.clone(), s)
            })),
        ),
        (
            "CHANNEL",
            map(ChannelState::ALL.map(|c| (c.as_str(), c.as_str()))),
        ),
        (
            "FAILURE",
            map(FailureKind::ALL.map(|k| (k.as_str(), k.as_str()))),
        ),
        (
            "CLUSTER",
            map(ClusterStatus::KNOWN.map(|c| (format!("{c:?}"), c.as_str().to_string()))),
        ),
        (
            "NODE_STATE",
            map(LocalState::KNOWN.map(|s| (s.name(), s.code()))),
        ),
        (
            "CONNECT",
            map(ConnectOutcome::NAMES.map(|n| (n.replace('-', "_"), n))),
        ),
        ("EVENT", map(Event::ALL.map(|e| (e.key(), e.as_str())))),
        (
            "SQL_ERROR",
            map([SqlErrorKind::Data, SqlErrorKind::Cluster].map(|k| (k.as_str(), k.as_str()))),
        ),
    ]
}

/// The constants as a module the engine registers globally: what a policy reads at run time.
pub fn module() -> Module {
    let mut m = Module::new();
    for n in all() {
        m.set_var(n.constant, n);
    }
    m
}

/// The constants as a scope a policy is compiled with: strict variables accept them.
pub fn scope() -> Scope<'static> {
    let mut s = Scope::new();
    for n in all() {
        s.push_constant(n.constant, n);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_compares_against_names_inside_its_functions() {
        let engine = crate::policy::engine::for_compiling();
        let ast = engine
            .compile_with_scope(
                &scope(),
                "fn f(r, e, n) { r == ROLE.Yes && e == EVENT.still_failing && n == NODE_STATE.Synced && CLUSTER.NonPrimary == \"non-Primary\" }",
            )
            .unwrap();
        let yes: bool = engine
            .call_fn(
                &mut Scope::new(),
                &ast,
                "f",
                ("Yes".to_string(), "still-failing".to_string(), 4_i64),
            )
            .unwrap();
        assert!(yes);
        let no: bool = engine
            .call_fn(
                &mut Scope::new(),
                &ast,
                "f",
                ("No".to_string(), "still-failing".to_string(), 4_i64),
            )
            .unwrap();
        assert!(!no, "ROLE.Yes is not \"No\"");
    }

    #[test]
    fn a_name_that_does_not_exist_is_an_error_that_lists_the_names() {
        let engine = crate::policy::engine::for_compiling();
        let ast = engine
            .compile_with_scope(&scope(), "fn f(r) { r == ROLE.Yse }")
            .unwrap();
        let e = engine
            .call_fn::<bool>(&mut Scope::new(), &ast, "f", ("Yes".to_string(),))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ROLE.Yse does not exist; ROLE has: Failed, No, Proposed, Yes"),
            "{e}"
        );
    }
}
