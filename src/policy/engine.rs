//! The sandboxed Rhai engine, built in one place for production, `policy check` and tests.
//!
//! What a policy cannot do: run SQL (no such function exists), read or write files (Rhai has no
//! file functions and modules are compiled out), `eval` code, use a variable it did not
//! declare, recurse deeper than 32 calls, or run longer than `[policy] max_operations`
//! operations per link. `print` and `debug` go to the log. The names a policy compares against
//! (`ROLE.Yes`, `EVENT.failed`, ...) are registered as constants (`constants.rs`).

use rhai::packages::{Package, StandardPackage};
use rhai::{Engine, Shared};

thread_local! {
    /// Rhai's standard library and the policy constants, built once per thread and shared by
    /// every engine: building them is most of what a new engine costs, and a run (or the
    /// model checker, which runs the policy hundreds of thousands of times) makes one engine.
    static SHARED: (Shared<rhai::Module>, Shared<rhai::Module>) = (
        StandardPackage::new().as_shared_module(),
        super::constants::module().into(),
    );
}

/// The most nested function calls a policy may make.
pub const MAX_CALL_LEVELS: usize = 32;

/// A new engine with the sandbox limits; the host API is registered by `api.rs`.
pub fn sandboxed(max_operations: u64) -> Engine {
    let mut e = Engine::new_raw();
    SHARED.with(|(std, constants)| {
        e.register_global_module(std.clone());
        e.register_global_module(constants.clone());
    });
    e.set_max_operations(max_operations.max(1));
    e.set_max_call_levels(MAX_CALL_LEVELS);
    e.set_max_expr_depths(64, 32);
    e.set_max_string_size(64 * 1024);
    e.set_max_array_size(10_000);
    e.set_max_map_size(10_000);
    e.set_strict_variables(true);
    e.disable_symbol("eval");
    super::constants::register_type(&mut e);
    e.on_print(|s| log::info!("policy: {s}"));
    e.on_debug(|s, _src, pos| log::debug!("policy ({pos}): {s}"));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_is_not_available() {
        let e = sandboxed(10_000);
        assert!(e.compile(r#"fn f() { eval("1") }"#).is_err());
    }

    #[test]
    fn undeclared_variables_do_not_compile() {
        let e = sandboxed(10_000);
        assert!(e.compile("fn f() { y + 1 }").is_err());
        assert!(e.compile("fn f(y) { y + 1 }").is_ok());
    }

    #[test]
    fn endless_loops_are_stopped_by_the_operation_limit() {
        let e = sandboxed(10_000);
        let err = e.run("loop { }").unwrap_err();
        assert!(err.to_string().contains("Too many operations"), "{err}");
    }

    #[test]
    fn deep_recursion_is_stopped() {
        let e = sandboxed(1_000_000);
        let err = e.run("fn f(n) { f(n + 1) } f(0);").unwrap_err();
        assert!(
            err.to_string().to_lowercase().contains("stack overflow")
                || err.to_string().contains("call"),
            "{err}"
        );
    }

    #[test]
    fn modules_cannot_be_imported() {
        let e = sandboxed(10_000);
        assert!(e.compile(r#"import "/etc/passwd" as p;"#).is_err());
    }
}
