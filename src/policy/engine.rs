//! The sandboxed Rhai engine, built in one place for production, `policy check` and tests.
//!
//! What a policy cannot do: run SQL (no such function exists), read or write files (Rhai has no
//! file functions and modules are compiled out), `eval` code, use a variable it did not
//! declare, recurse deeper than 32 calls, or exceed the limits of one call (`[policy]`
//! `max_operations`, `max_memory_mib`, `max_seconds`; see `limits.rs`). The names a policy
//! compares against (`ROLE.Yes`, `EVENT.failed`, ...) are registered as constants
//! (`constants.rs`). `print` and `debug` go to the run's log budget (`api.rs`).

use super::limits::{MAX_CALL_LEVELS, MAX_ITEMS, MAX_STRING, Meter};
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

/// A new engine with the sandbox limits, metered by `meter`; the host API is registered by
/// `api.rs`.
pub fn sandboxed(meter: &Meter) -> Engine {
    let mut e = Engine::new_raw();
    SHARED.with(|(std, constants)| {
        e.register_global_module(std.clone());
        e.register_global_module(constants.clone());
    });
    e.set_max_operations(meter.limits().max_operations.max(1));
    e.set_max_call_levels(MAX_CALL_LEVELS);
    e.set_max_expr_depths(64, 32);
    e.set_max_string_size(MAX_STRING);
    e.set_max_array_size(MAX_ITEMS);
    e.set_max_map_size(MAX_ITEMS);
    e.set_strict_variables(true);
    e.disable_symbol("eval");
    // Closures cannot capture (the `no_closure` feature) and function pointers cannot carry
    // arguments: either would let a policy nest values without bound, out of reach of the
    // size limits (see `on_policy_stack`).
    e.disable_symbol("curry");
    super::values::register(&mut e, MAX_STRING);
    super::constants::register_type(&mut e);
    e.register_fn("sort", sort_checked);
    let m = meter.clone();
    e.on_progress(move |ops| m.progress(ops));
    e.on_print(|s| log::info!("policy: {}", crate::error::printable(s)));
    e.on_debug(|s, _src, pos| log::debug!("policy ({pos}): {}", crate::error::printable(s)));
    e
}

/// The stack every policy call runs on, at least: values nest at most [`MAX_ITEMS`] deep (the
/// item limit counts nested items, and nothing else nests: no capturing closures, no
/// `curry`), and the deepest operation measured on such a value, comparing two of them with
/// `==`, takes 32 MiB of stack at 10,000 levels; dropping one takes 4 MiB, formatting is cut
/// at 32 levels ([`super::values`]). Only the pages used are ever touched.
pub const POLICY_STACK: usize = 256 << 20;

/// Runs `f` (a run, or a call of the policy) on a stack of at least [`POLICY_STACK`] bytes: a
/// new one, unless the thread's has that much left. Whatever the policy nests, the host's
/// thread does not overflow.
pub fn on_policy_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(POLICY_STACK, POLICY_STACK, f)
}

/// `array.sort(comparer)`, replacing Rhai's, which ignores a comparer that throws or returns
/// something else than a number (and then sorts by type, silently). Here either is an error
/// naming what the comparer did. A stable merge sort, so an inconsistent comparer gives some
/// order, never a panic.
fn sort_checked(
    ctx: rhai::NativeCallContext,
    array: &mut rhai::Array,
    comparer: rhai::FnPtr,
) -> Result<(), Box<rhai::EvalAltResult>> {
    use std::cmp::Ordering;
    let compare = |a: &rhai::Dynamic,
                   b: &rhai::Dynamic|
     -> Result<Ordering, Box<rhai::EvalAltResult>> {
        let v = comparer.call_raw(&ctx, None, [a.clone(), b.clone()])?;
        match (v.as_int(), v.as_bool()) {
            (Ok(i), _) => Ok(i.cmp(&0)),
            // Rhai's own sort takes `true` for "a first".
            (_, Ok(a_first)) => Ok(if a_first { Ordering::Less } else { Ordering::Greater }),
            (Err(t), _) => Err(format!(
                "the comparer given to sort returned a {t}, expected an integer (negative: a first, 0: equal, positive: b first) or a bool (true: a first)"
            )
            .into()),
        }
    };
    let mut items = std::mem::take(array);
    let n = items.len();
    let mut width = 1;
    while width < n {
        let mut merged = Vec::with_capacity(n);
        let mut rest = items.into_iter().peekable();
        while rest.peek().is_some() {
            let left: Vec<rhai::Dynamic> = rest.by_ref().take(width).collect();
            let right: Vec<rhai::Dynamic> = rest.by_ref().take(width).collect();
            let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
            while let (Some(a), Some(b)) = (l.peek(), r.peek()) {
                if compare(a, b)? == Ordering::Greater {
                    merged.extend(r.next());
                } else {
                    merged.extend(l.next());
                }
            }
            merged.extend(l);
            merged.extend(r);
        }
        items = merged;
        width *= 2;
    }
    *array = items;
    Ok(())
}

/// An engine for compiling and for tests: the default limits.
pub fn for_compiling() -> Engine {
    let mut e = sandboxed(&Meter::new(&crate::config::Limits::default()));
    // A policy is compiled on every cron run: Rhai's optimizer costs more there than it saves.
    e.set_optimization_level(rhai::OptimizationLevel::None);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_is_not_available() {
        let e = for_compiling();
        assert!(e.compile(r#"fn f() { eval("1") }"#).is_err());
    }

    #[test]
    fn undeclared_variables_do_not_compile() {
        let e = for_compiling();
        assert!(e.compile("fn f() { y + 1 }").is_err());
        assert!(e.compile("fn f(y) { y + 1 }").is_ok());
    }

    #[test]
    fn endless_loops_are_stopped_by_the_operation_limit() {
        let e = for_compiling();
        let err = e.run("loop { }").unwrap_err();
        assert!(err.to_string().contains("Too many operations"), "{err}");
    }

    #[test]
    fn deep_recursion_is_stopped() {
        let e = for_compiling();
        let err = e.run("fn f(n) { f(n + 1) } f(0);").unwrap_err();
        assert!(
            err.to_string().to_lowercase().contains("stack overflow")
                || err.to_string().contains("call"),
            "{err}"
        );
    }

    #[test]
    fn modules_cannot_be_imported() {
        let e = for_compiling();
        assert!(e.compile(r#"import "/etc/passwd" as p;"#).is_err());
    }
}
