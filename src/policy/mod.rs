//! Policies: loading, compiling once, running, and reporting errors as `file:line:col`.
//!
//! The built-in policy (`policies/default.rhai`) is embedded in the binary. A site policy is
//! compiled on top of it: each function the site file defines replaces the built-in function of
//! the same name and arity, so a site overrides only what it changes (see `policies/*.rhai`).
//! The host ([`crate::host`]) calls `manage_link(node, link)` once per link on every run of a
//! node that is Primary and Synced/Donor and not paused, and `silent_after(settings)` and
//! `mail(...)` for its own choices and notifications (from which nothing may be changed).

pub mod api;
pub mod constants;
pub mod engine;
pub mod explain;
pub mod limits;
pub mod values;

use crate::config::Limits;
use crate::config::topology::Link;
use crate::error::{Error, Result};
use crate::host::{self, PolicyHooks, RunCtx, Settings, Shared};
use limits::Meter;
use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, FuncArgs, Position, Scope};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::rc::Rc;

/// The built-in policy's text.
pub const DEFAULT_POLICY: &str = include_str!("../../policies/default.rhai");
/// The built-in policy's `// policy-version: N` (checked by build.rs).
pub const POLICY_VERSION: &str = env!("PXCRM_POLICY_VERSION");
/// The SHA-256 of [`DEFAULT_POLICY`], hex, computed by build.rs.
pub const POLICY_SHA256: &str = env!("PXCRM_POLICY_SHA256");
/// What `--version` prints after the crate version: the policy's version and the start of its
/// hash, e.g. `0.1.0 (built-in policy default v1, sha256:1a2b3c4d)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (built-in policy default v",
    env!("PXCRM_POLICY_VERSION"),
    ", sha256:",
    env!("PXCRM_POLICY_SHA256_SHORT"),
    ")"
);
/// How the built-in policy is named in messages.
pub const DEFAULT_POLICY_NAME: &str = "policies/default.rhai (built in)";
/// The entry point the host calls.
pub const ENTRY: &str = "manage_link";

/// How much of a thrown value an error shows, in characters.
const THROWN_CHARS: usize = 1000;

/// The outcome of `manage_link` for one link: its key, and the error if the call failed.
pub type LinkResult = (
    crate::db::state::LinkKey,
    std::result::Result<(), crate::host::LinkError>,
);

/// A compiled policy.
#[derive(Clone)]
pub struct Policy {
    ast: AST,
    /// The site file, if any.
    pub name: String,
    pub limits: Limits,
    /// The built-in functions the site file replaced, as `name/arity`.
    pub overrides: Vec<String>,
    /// Every function the site file defines (closures included): an error inside one of them
    /// is located in the site file, any other in the built-in policy.
    site_fns: HashSet<String>,
    /// What `policy check` warns about: site functions that nothing calls.
    pub warnings: Vec<String>,
    /// The site file alone, compiled: what `policy check` and `policy verify` read of it.
    site: Option<AST>,
    /// Why the policy could not be loaded, for one that stands in for it
    /// ([`Policy::unloadable`]): every call fails with this.
    unloadable: Option<String>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("overrides", &self.overrides)
            .finish()
    }
}

fn compile(text: &str, name: &str) -> Result<AST> {
    let engine = engine::for_compiling();
    let mut ast = engine
        .compile_with_scope(&constants::scope(), text)
        .map_err(|e| Error::PolicyCompile {
            file: name.to_string(),
            line: e.1.line().unwrap_or(0),
            column: e.1.position().unwrap_or(0),
            message: format!("{}{}", e.0, sandbox_hint(&e.0, text, e.1)),
        })?;
    ast.set_source(name);
    Ok(ast)
}

/// What the sandbox left out, when a compile error is about it: closures that capture the
/// variables around them, and `curry` (both let a policy build values that nest without
/// limit; see `engine::sandboxed`).
fn sandbox_hint(e: &rhai::ParseErrorType, text: &str, at: rhai::Position) -> &'static str {
    let word_at = || {
        let line = text.lines().nth(at.line()?.checked_sub(1)?)?;
        line.get(at.position()?.checked_sub(1)?..)
    };
    match e {
        rhai::ParseErrorType::VariableUndefined(_) => {
            "; if it is used inside a closure (|x| ...): closures cannot use the variables \
             around them here, so pass the value as a parameter or use a for loop"
        }
        _ if word_at().is_some_and(|w| w.starts_with("curry")) => {
            "; curry is not available in the sandbox: call the function with all its arguments"
        }
        _ => "",
    }
}

/// The prefix under which a site policy reaches a built-in function it overrides.
pub const BUILTIN_PREFIX: &str = "builtin_";

/// The built-in policy with every function renamed `builtin_<name>`: compiled beside the site
/// file, so that `fn rank_nodes(node, link, rows)` may call `builtin_rank_nodes(node, link,
/// rows)`. The copies call the other functions by their own names, so they see the site's
/// overrides too.
fn built_in_copies() -> String {
    DEFAULT_POLICY
        .lines()
        .map(|l| match l.strip_prefix("fn ") {
            Some(rest) => format!("fn {BUILTIN_PREFIX}{rest}"),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A closure's generated name.
fn is_closure(name: &str) -> bool {
    name.starts_with("anon$")
}

/// The line of `fn name(` in a file's text (1 if not found).
fn definition_line(text: &str, name: &str) -> usize {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix("fn ")
                .and_then(|r| r.trim_start().strip_prefix(name))
                .is_some_and(|r| r.trim_start().starts_with('('))
        })
        .map_or(1, |i| i + 1)
}

/// Every call in an AST, as a function or a method (`true`), with where it is.
fn each_call(ast: &AST, mut f: impl FnMut(&rhai::FnCallExpr, Position, bool)) {
    ast.walk(&mut |path: &[rhai::ASTNode]| {
        match path.last() {
            Some(rhai::ASTNode::Expr(rhai::Expr::FnCall(c, pos))) => f(c, *pos, false),
            Some(rhai::ASTNode::Expr(rhai::Expr::MethodCall(c, pos))) => f(c, *pos, true),
            Some(rhai::ASTNode::Stmt(rhai::Stmt::FnCall(c, pos))) => f(c, *pos, false),
            _ => {}
        }
        true
    });
}

/// The names of the functions an AST calls, as functions or as methods.
fn called_names(ast: &AST) -> HashSet<String> {
    let mut names = HashSet::new();
    each_call(ast, |f, _, _| {
        names.insert(f.name.to_string());
    });
    names
}

/// Where a site function stands against the built-in policy: `Err` for a function named like a
/// built-in one but with another arity (it would replace nothing, silently); a warning for a
/// function that nothing calls (a misspelt override point, most often).
fn check_site_functions(
    base: &AST,
    site: &AST,
    file: &str,
    text: &str,
) -> Result<(Vec<String>, Vec<String>)> {
    let built_in: BTreeSet<(String, usize)> = base
        .iter_functions()
        .map(|f| (f.name.to_string(), f.params.len()))
        .collect();
    let called: HashSet<String> = called_names(base)
        .into_iter()
        .chain(called_names(site))
        .chain([ENTRY.to_string(), "silent_after".into(), "mail".into()])
        .collect();
    let mut overrides = Vec::new();
    let mut warnings = Vec::new();
    for f in site.iter_fn_def() {
        let name = f.name.as_str();
        if is_closure(name) {
            continue;
        }
        let arity = f.params.len();
        let line = definition_line(text, name);
        if built_in.contains(&(name.to_string(), arity)) {
            overrides.push(format!("{name}/{arity}"));
            continue;
        }
        if let Some((_, a)) = built_in.iter().find(|(n, _)| n == name) {
            let params: Vec<&str> = base
                .iter_functions()
                .find(|g| g.name == name)
                .map(|g| g.params.to_vec())
                .unwrap_or_default();
            return Err(Error::PolicyCompile {
                file: file.to_string(),
                line,
                column: 1,
                message: format!(
                    "fn {name} takes {arity} parameter(s) here, but the built-in {name}({}) takes {a}: it would replace nothing. Give it the built-in's parameters (see `pxc-replication-manager policy show`)",
                    params.join(", ")
                ),
            });
        }
        if !called.contains(name) {
            let near = built_in
                .iter()
                .map(|(n, a)| (strsim::damerau_levenshtein(n, name), n, a))
                .filter(|(d, ..)| *d <= 2)
                .min();
            let hint = match near {
                Some((_, n, a)) => format!("; did you mean the override point {n}/{a}?"),
                None => String::new(),
            };
            warnings.push(format!(
                "{file}:{line}: fn {name}/{arity} is not called by anything and replaces no built-in function{hint}"
            ));
        }
    }
    Ok((overrides, warnings))
}

impl Policy {
    /// The built-in policy, with the site file's functions on top when one is given.
    pub fn load(file: Option<&Path>, limits: &Limits) -> Result<Policy> {
        let base = compile(DEFAULT_POLICY, DEFAULT_POLICY_NAME)?;
        let Some(path) = file else {
            return Ok(Policy {
                ast: base,
                name: DEFAULT_POLICY_NAME.into(),
                limits: limits.clone(),
                overrides: Vec::new(),
                site_fns: HashSet::new(),
                warnings: Vec::new(),
                site: None,
                unloadable: None,
            });
        };
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::PolicyCompile {
            file: name.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read the policy file: {e}"),
        })?;
        let site = compile(&text, &name)?;
        if site.iter_functions().next().is_none() {
            return Err(Error::PolicyCompile {
                file: name,
                line: 1,
                column: 1,
                message: format!(
                    "the policy defines no function; a site policy overrides functions of the built-in policy (at least `{ENTRY}(node, link)` or one of its helpers)"
                ),
            });
        }
        let (overrides, warnings) = check_site_functions(&base, &site, &name, &text)?;
        let site_fns = site.iter_functions().map(|f| f.name.to_string()).collect();
        // An override may call the function it replaces as `builtin_<name>`.
        let base = if text.contains(BUILTIN_PREFIX) {
            base.merge(&compile(&built_in_copies(), DEFAULT_POLICY_NAME)?)
        } else {
            base
        };
        let ast = base.merge(&site);
        Ok(Policy {
            ast,
            name,
            limits: limits.clone(),
            overrides,
            site_fns,
            warnings,
            site: Some(site),
            unloadable: None,
        })
    }

    /// What stands in for a policy that could not be loaded (`error`): every call fails with
    /// that error, so a run still applies the host's own rules (a node outside the Primary
    /// component leaves, a paused node reports) and the after-rules of a failing policy, and
    /// ends with the error.
    pub fn unloadable(file: Option<&Path>, error: &Error, limits: &Limits) -> Policy {
        Policy {
            ast: AST::empty(),
            name: file.map_or(DEFAULT_POLICY_NAME.to_string(), |p| p.display().to_string()),
            limits: limits.clone(),
            overrides: Vec::new(),
            site_fns: HashSet::new(),
            warnings: Vec::new(),
            site: None,
            unloadable: Some(format!("the policy could not be loaded: {error}")),
        }
    }

    /// Runs every link: the host's rules around `manage_link`. A link whose policy call fails
    /// does not stop the others; its error is returned in the report.
    pub fn run(&self, ctx: RunCtx) -> (RunCtx, Vec<LinkResult>) {
        engine::on_policy_stack(|| self.run_here(ctx))
    }

    fn run_here(&self, ctx: RunCtx) -> (RunCtx, Vec<LinkResult>) {
        let shared: Shared = Rc::new(RefCell::new(ctx));
        let results = {
            let budget = {
                let s = &shared.borrow().settings;
                limits::run_budget(s.heartbeat_timeout, s.limits.max_seconds)
            };
            let meter = Meter::for_run(&self.limits, budget);
            self.with_hooks(&shared, &meter, |hooks| host::run_links(&shared, hooks))
        };
        let ctx = match Rc::try_unwrap(shared) {
            Ok(cell) => cell.into_inner(),
            Err(_) => unreachable!("the engine holding the context was dropped"),
        };
        ctx.log_dropped();
        (ctx, results)
    }

    /// What `explain` shows of each link, as the policy sees it: the rows `rows(link)` gives
    /// it, its `rank_nodes(node, link, rows)`, its `failed_clears_after(s)`, and the silent
    /// threshold of the run. Nothing is changed: outside `manage_link` the host's primitives
    /// refuse every change, and `ctx` should hold a dry-run backend anyway.
    pub fn explain(&self, ctx: RunCtx) -> Vec<explain::LinkView> {
        engine::on_policy_stack(|| {
            let shared: Shared = Rc::new(RefCell::new(ctx));
            let meter = Meter::new(&self.limits);
            self.with_hooks(&shared, &meter, explain::links)
        })
    }

    /// The policy as the host reaches it, on a sandboxed engine with the host's API over
    /// `shared`, within `meter`'s limits.
    fn with_hooks<T>(&self, shared: &Shared, meter: &Meter, f: impl FnOnce(&Hooks<'_>) -> T) -> T {
        let mut engine = engine::sandboxed(meter);
        api::register(&mut engine, shared);
        f(&Hooks {
            engine: &engine,
            policy: self,
            shared,
            meter,
        })
    }

    /// The policy's `silent_after(settings)`, for `status`, which does not run the policy: an
    /// engine with `settings()` only.
    pub fn silent_after(&self, settings: &Settings) -> std::result::Result<i64, String> {
        self.seconds_answer("silent_after", settings)
    }

    /// The times a policy may compare an age with, for the model checker's clock: every
    /// integer from 2 up that the policy (the built-in one and the site file) compares
    /// something with (`x > 3600`, `x <= 60`), and the answers of its
    /// `silent_after(settings)` and `failed_clears_after(settings)`. A time the policy
    /// computes (`60 * 60`, `3 * s.heartbeat_timeout` outside those two functions) is not
    /// among them. Also the errors of those two hooks when they fail: they give no time.
    pub fn time_constants(&self, settings: &Settings) -> (BTreeSet<i64>, Vec<String>) {
        const COMPARISONS: [&str; 6] = [">", ">=", "<", "<=", "==", "!="];
        let mut found = BTreeSet::new();
        each_call(&self.ast, |f, _, _| {
            if COMPARISONS.contains(&f.name.as_str()) {
                for a in f.args.iter() {
                    if let rhai::Expr::IntegerConstant(v, _) = a
                        && *v >= 2
                    {
                        found.insert(*v);
                    }
                }
            }
        });
        let mut failed = Vec::new();
        for hook in ["silent_after", "failed_clears_after"] {
            let defined = self
                .ast
                .iter_functions()
                .any(|f| f.name == hook && f.params.len() == 1);
            if defined {
                match self.seconds_answer(hook, settings) {
                    Ok(v) => {
                        found.insert(v);
                    }
                    Err(e) => failed.push(e),
                }
            }
        }
        (found, failed)
    }

    /// Calls a hook `hook(settings)` on an engine with `settings()` only, and takes its
    /// number of seconds.
    fn seconds_answer(&self, hook: &str, settings: &Settings) -> std::result::Result<i64, String> {
        engine::on_policy_stack(|| {
            let meter = Meter::new(&self.limits);
            let mut engine = engine::sandboxed(&meter);
            let s = settings.clone();
            engine.register_fn("settings", move || api::settings_map(&s));
            self.call_seconds(&engine, &meter, hook, settings)
        })
    }

    /// Calls `hook(settings)` (`silent_after`, `failed_clears_after`) on an engine and takes
    /// its number of seconds.
    fn call_seconds(
        &self,
        engine: &Engine,
        meter: &Meter,
        hook: &str,
        settings: &Settings,
    ) -> std::result::Result<i64, String> {
        let v = self.call(
            engine,
            meter,
            None,
            hook,
            (Dynamic::from_map(api::settings_map(settings)),),
        )?;
        v.as_int().map_err(|t| {
            format!(
                "{}: {hook} returned a {t}, expected an integer number of seconds",
                self.file_of(hook)
            )
        })
    }

    /// The file that defines a function: the site file when it does, else the built-in
    /// policy.
    fn file_of(&self, function: &str) -> &str {
        if self.site_fns.contains(function) {
            &self.name
        } else {
            DEFAULT_POLICY_NAME
        }
    }

    /// Calls a hook within the call's limits (and, with the run's context, its deadline for
    /// host calls); an error is described where it happened.
    fn call(
        &self,
        engine: &Engine,
        meter: &Meter,
        shared: Option<&Shared>,
        hook: &str,
        args: impl FuncArgs,
    ) -> std::result::Result<Dynamic, String> {
        if let Some(e) = &self.unloadable {
            return Err(e.clone());
        }
        let limit = meter
            .start()
            .map_err(|e| format!("{}: {e}; {hook} was not called", self.file_of(hook)))?;
        if let Some(s) = shared {
            s.borrow_mut().start_deadline(limit);
        }
        let mut scope = Scope::new();
        let r = engine.call_fn_with_options::<Dynamic>(
            CallFnOptions::new().eval_ast(false).rewind_scope(true),
            &mut scope,
            &self.ast,
            hook,
            args,
        );
        meter.stop();
        if let Some(s) = shared {
            s.borrow_mut().end_deadline();
        }
        r.map_err(|e| self.describe(&e, meter, hook))
    }

    /// A runtime error as `file:line:col: message (in f <- g)`, located in the file of the
    /// function where it happened; a limit error names the limit and the hook it stopped.
    fn describe(&self, e: &EvalAltResult, meter: &Meter, hook: &str) -> String {
        let mut chain = vec![hook.to_string()];
        let mut cur = e;
        while let EvalAltResult::ErrorInFunctionCall(name, _, inner, _) = cur {
            if chain.last() != Some(name) {
                chain.push(name.clone());
            }
            cur = inner;
        }
        let innermost = chain.last().cloned().unwrap_or_default();
        let file = self.file_of(&innermost);
        let shown: Vec<String> = chain
            .iter()
            .rev()
            .map(|f| {
                if is_closure(f) {
                    "a closure".to_string()
                } else {
                    f.clone()
                }
            })
            .collect();
        if let Some(limit) = meter.describe(cur) {
            // Rhai unwinds a limit to the host's call without saying where it was raised.
            return format!(
                "{}: {limit}; stopped in {hook} (the engine does not say which function was running)",
                self.file_of(hook)
            );
        }
        let pos: Position = cur.position();
        // A thrown value is shown cut: Rhai's own text of it has no bound.
        let text = match cur {
            EvalAltResult::ErrorRuntime(v, _) if !v.is_unit() => {
                format!("Runtime error: {}", values::shown(v, THROWN_CHARS))
            }
            e => strip_position(&e.to_string()),
        };
        let mut msg = format!(
            "{file}:{}:{}: {text}",
            pos.line().unwrap_or(0),
            pos.position().unwrap_or(0),
        );
        msg.push_str(&format!(" (in {})", shown.join(" <- ")));
        msg
    }
}

/// The policy as the host reaches it.
struct Hooks<'a> {
    engine: &'a Engine,
    policy: &'a Policy,
    shared: &'a Shared,
    meter: &'a Meter,
}

impl Hooks<'_> {
    fn node(&self) -> rhai::Map {
        api::node_map(&self.shared.borrow())
    }
}

impl PolicyHooks for Hooks<'_> {
    fn manage_link(&self, link: &Link) -> std::result::Result<(), String> {
        let args = (
            Dynamic::from_map(self.node()),
            Dynamic::from_map(api::link_map(link)),
        );
        self.policy
            .call(self.engine, self.meter, Some(self.shared), ENTRY, args)
            .map(|_| ())
    }

    fn silent_after(&self) -> std::result::Result<i64, String> {
        let settings = self.shared.borrow().settings.clone();
        self.policy
            .call_seconds(self.engine, self.meter, "silent_after", &settings)
    }

    fn mail(
        &self,
        link: &Link,
        event: &str,
        subject: &str,
        body: &str,
    ) -> std::result::Result<(), String> {
        let args = (
            Dynamic::from_map(self.node()),
            Dynamic::from_map(api::link_map(link)),
            Dynamic::from(event.to_string()),
            Dynamic::from(subject.to_string()),
            Dynamic::from(body.to_string()),
        );
        self.policy
            .call(self.engine, self.meter, Some(self.shared), "mail", args)
            .map(|_| ())
    }
}

fn strip_position(s: &str) -> String {
    match s.rfind(" (line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// The names of every function a policy can call in a run: the host's API registered on an
/// engine with `ctx`, and the engine's own (its standard packages and
/// [`values::register`]'s). See `app::scenario::host_function_names`.
pub fn function_names(ctx: RunCtx) -> HashSet<String> {
    let shared: Shared = Rc::new(RefCell::new(ctx));
    let meter = Meter::new(&Limits::default());
    let mut engine = engine::sandboxed(&meter);
    api::register(&mut engine, &shared);
    engine
        .collect_fn_metadata(None, |f| Some(f.metadata.name.to_string()), true)
        .into_iter()
        .collect()
}

/// Rhai's keywords that read like function calls: the parser handles them, no function
/// defines them.
const KEYWORD_CALLS: [&str; 9] = [
    "Fn",
    "call",
    "curry",
    "type_of",
    "print",
    "debug",
    "is_def_fn",
    "is_def_var",
    "is_shared",
];

/// Functions whose value differs between two runs given the same answers: the clock.
const NONDETERMINISTIC: [&str; 2] = ["timestamp", "elapsed"];

impl Policy {
    /// The calls in a site file to functions that exist nowhere: not in the file, the built-in
    /// policy or `natives` (the host's API and the engine's own, [`function_names`]). Such a call
    /// fails only when it is reached, perhaps in a branch taken once a year. One error per call,
    /// in the order of the file, with the nearest name when one is close. (The host's functions
    /// are known by name: a wrong number of arguments to one of them is found at run time.)
    pub fn undefined_calls(&self, natives: &HashSet<String>) -> Vec<Error> {
        let Some(site) = &self.site else {
            return Vec::new();
        };
        let scripted: HashSet<(String, usize)> = self
            .ast
            .iter_functions()
            .map(|f| (f.name.to_string(), f.params.len()))
            .collect();
        let mut found = Vec::new();
        each_call(site, |f, pos, method| {
            let callee = f.name.as_str();
            // Operators (`+`, `==`, `!`) are calls too; only names can be missing.
            if !callee.starts_with(|c: char| c.is_alphabetic() || c == '_')
                || KEYWORD_CALLS.contains(&callee)
                || natives.contains(callee)
            {
                return;
            }
            let args = f.args.len();
            // A script function called as a method gets its object as `this`.
            if scripted.contains(&(callee.to_string(), args)) {
                return;
            }
            let arities: Vec<usize> = scripted
                .iter()
                .filter(|(n, _)| n == callee)
                .map(|(_, a)| *a)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let what = if method { "method" } else { "function" };
            let why = if arities.is_empty() {
                let near = scripted
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .chain(natives.iter().map(String::as_str))
                    .filter(|n| !n.starts_with(BUILTIN_PREFIX) && !is_closure(n))
                    .map(|n| (strsim::damerau_levenshtein(n, callee), n))
                    .filter(|(d, _)| *d <= 2)
                    .min();
                let hint = near.map_or(String::new(), |(_, n)| format!("; did you mean {n}?"));
                format!(
                    "no {what} {callee} is defined in this file, the built-in policy or the host's API{hint}"
                )
            } else {
                format!(
                    "{callee} is called with {args} argument(s), but it takes {}",
                    arities
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(" or ")
                )
            };
            found.push(Error::PolicyCompile {
                file: self.name.clone(),
                line: pos.line().unwrap_or(0),
                column: pos.position().unwrap_or(0),
                message: format!("{why}; the call would fail when it is reached"),
            });
        });
        found.sort_by_key(|e| match e {
            Error::PolicyCompile { line, column, .. } => (*line, *column),
            _ => (0, 0),
        });
        found
    }

    /// Where the site file reads the clock (`timestamp()`, `.elapsed`), as `file:line:col`:
    /// the usual reason a replayed run takes another path. Empty for the built-in policy,
    /// which does not.
    pub fn clock_reads(&self) -> Vec<String> {
        let Some(site) = &self.site else {
            return Vec::new();
        };
        let mut found = Vec::new();
        site.walk(&mut |path: &[rhai::ASTNode]| {
            let hit = match path.last() {
                Some(rhai::ASTNode::Expr(
                    rhai::Expr::FnCall(f, pos) | rhai::Expr::MethodCall(f, pos),
                )) => NONDETERMINISTIC
                    .contains(&f.name.as_str())
                    .then_some((f.name.to_string(), *pos)),
                Some(rhai::ASTNode::Expr(rhai::Expr::Property(p, pos))) => NONDETERMINISTIC
                    .contains(&p.2.as_str())
                    .then_some((p.2.to_string(), *pos)),
                _ => None,
            };
            if let Some((name, pos)) = hit {
                found.push(format!(
                    "{name} at {}:{}:{}",
                    self.name,
                    pos.line().unwrap_or(0),
                    pos.position().unwrap_or(0)
                ));
            }
            true
        });
        found
    }
}

/// `policy check`: compiles a file on top of the built-in policy and says what it overrides.
pub fn check(path: &Path) -> Result<Policy> {
    Policy::load(Some(path), &Limits::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("pxcrm-{}-{name}", std::process::id()));
        std::fs::File::create(&p)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        p
    }

    #[test]
    fn the_built_in_policy_compiles_and_has_the_entry_point() {
        let p = Policy::load(None, &Limits::default()).unwrap();
        assert!(p.ast.iter_functions().any(|f| f.name == ENTRY));
    }

    #[test]
    fn the_times_a_policy_compares_with_are_its_literals_and_its_timeout_hooks_answers() {
        let site = write(
            "times.rhai",
            "fn silent_after(s) { \"soon\" }\n\
             fn failed_clears_after(s) { 3 * 600 }\n\
             fn manage_link(node, link) {\n\
               if link.rows.len() > 3600 { log(\"big\") }\n\
               let never_compared = 7200;\n\
               builtin_manage_link(node, link)\n\
             }\n",
        );
        let p = Policy::load(Some(&site), &Limits::default()).unwrap();
        let settings = Settings {
            heartbeat_timeout: 120,
            failed_timeout: 300,
            connect_timeout: std::time::Duration::from_secs(5),
            distribute: false,
            vars: rhai::Map::new(),
            silent_after: 120,
            probe_timeout: std::time::Duration::from_secs(5),
            limits: Limits::default(),
            hooks: crate::config::hooks::Hooks::default(),
        };
        let (times, failed) = p.time_constants(&settings);
        assert!(times.contains(&3600), "{times:?}");
        assert!(
            times.contains(&1800),
            "failed_clears_after's answer: {times:?}"
        );
        assert!(
            !times.contains(&7200),
            "a literal compared with nothing: {times:?}"
        );
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].contains("silent_after"), "{failed:?}");
    }

    #[test]
    fn a_syntax_error_is_reported_as_file_line_col() {
        let p = write("syntax.rhai", "fn f(x) {\n  let y = ;\n}\n");
        let e = check(&p).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:2:11:", p.display())), "{e}");
    }

    #[test]
    fn a_site_policy_overrides_functions_by_name() {
        let p = write(
            "site.rhai",
            "fn mail(node, link, event, subject, body) { if event == \"failed\" { notify(subject, body) } }\n",
        );
        let pol = check(&p).unwrap();
        assert_eq!(pol.overrides, vec!["mail/5"]);
    }

    #[test]
    fn an_empty_site_policy_is_refused() {
        let p = write("empty.rhai", "// nothing\n");
        assert!(
            check(&p)
                .unwrap_err()
                .to_string()
                .contains("defines no function")
        );
    }
}
