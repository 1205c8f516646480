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

use crate::config::topology::Link;
use crate::error::{Error, Result};
use crate::host::{self, PolicyHooks, RunCtx, Settings, Shared};
use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, FuncArgs, Position, Scope};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

/// The built-in policy's text.
pub const DEFAULT_POLICY: &str = include_str!("../../policies/default.rhai");
/// How the built-in policy is named in messages.
pub const DEFAULT_POLICY_NAME: &str = "policies/default.rhai (built in)";
/// The entry point the host calls.
pub const ENTRY: &str = "manage_link";
pub use crate::config::DEFAULT_MAX_OPERATIONS;

/// The outcome of `manage_link` for one link: its key, and the error if the call failed.
pub type LinkResult = (String, std::result::Result<(), String>);

/// A compiled policy.
#[derive(Clone)]
pub struct Policy {
    ast: AST,
    /// The site file, if any.
    pub name: String,
    pub max_operations: u64,
    /// The built-in functions the site file replaced.
    pub overrides: Vec<String>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("overrides", &self.overrides)
            .finish()
    }
}

fn compile(text: &str, name: &str, max_operations: u64) -> Result<AST> {
    let engine = engine::sandboxed(max_operations);
    let mut ast = engine
        .compile_with_scope(&constants::scope(), text)
        .map_err(|e| Error::PolicyCompile {
            file: name.to_string(),
            line: e.1.line().unwrap_or(0),
            column: e.1.position().unwrap_or(0),
            message: e.0.to_string(),
        })?;
    ast.set_source(name);
    Ok(ast)
}

impl Policy {
    /// The built-in policy, with the site file's functions on top when one is given.
    pub fn load(file: Option<&Path>, max_operations: u64) -> Result<Policy> {
        let base = compile(DEFAULT_POLICY, DEFAULT_POLICY_NAME, max_operations)?;
        let Some(path) = file else {
            return Ok(Policy {
                ast: base,
                name: DEFAULT_POLICY_NAME.into(),
                max_operations,
                overrides: Vec::new(),
            });
        };
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::PolicyCompile {
            file: name.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read the policy file: {e}"),
        })?;
        let site = compile(&text, &name, max_operations)?;
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
        let overrides: Vec<String> = site
            .iter_functions()
            .map(|f| format!("{}/{}", f.name, f.params.len()))
            .collect();
        let ast = base.merge(&site);
        if !ast
            .iter_functions()
            .any(|f| f.name == ENTRY && f.params.len() == 2)
        {
            return Err(Error::PolicyCompile {
                file: name,
                line: 1,
                column: 1,
                message: format!("no function `{ENTRY}(node, link)`"),
            });
        }
        Ok(Policy {
            ast,
            name,
            max_operations,
            overrides,
        })
    }

    /// Runs every link: the host's rules around `manage_link`. A link whose policy call fails
    /// does not stop the others; its error is returned in the report.
    pub fn run(&self, ctx: RunCtx) -> (RunCtx, Vec<LinkResult>) {
        let shared: Shared = Rc::new(RefCell::new(ctx));
        let results = {
            let mut engine = engine::sandboxed(self.max_operations);
            api::register(&mut engine, &shared);
            let hooks = Hooks {
                engine: &engine,
                policy: self,
                shared: &shared,
            };
            host::run_links(&shared, &hooks)
        };
        let ctx = match Rc::try_unwrap(shared) {
            Ok(cell) => cell.into_inner(),
            Err(_) => unreachable!("the engine holding the context was dropped"),
        };
        (ctx, results)
    }

    /// The policy's `silent_after(settings)`, for `status`, which does not run the policy: an
    /// engine with `settings()` only.
    pub fn silent_after(&self, settings: &Settings) -> std::result::Result<i64, String> {
        let mut engine = engine::sandboxed(self.max_operations);
        let s = settings.clone();
        engine.register_fn("settings", move || api::settings_map(&s));
        self.call_silent_after(&engine, settings)
    }

    /// Calls `silent_after(settings)` on an engine and takes its number of seconds.
    fn call_silent_after(
        &self,
        engine: &Engine,
        settings: &Settings,
    ) -> std::result::Result<i64, String> {
        let v = call(
            engine,
            &self.ast,
            "silent_after",
            (Dynamic::from_map(api::settings_map(settings)),),
        )
        .map_err(|e| self.describe(&e, "silent_after/1"))?;
        v.as_int()
            .map_err(|t| format!("silent_after returned a {t}, not a number of seconds"))
    }

    /// A runtime error of a hook the host called (`name/arity`), located in the file that
    /// defines it: the site file when it overrides the hook, else the built-in policy.
    fn describe(&self, e: &EvalAltResult, hook: &str) -> String {
        let source = if self.overrides.iter().any(|o| o == hook) {
            &self.name
        } else {
            DEFAULT_POLICY_NAME
        };
        describe(e, source)
    }
}

fn call(
    engine: &Engine,
    ast: &AST,
    name: &str,
    args: impl FuncArgs,
) -> std::result::Result<Dynamic, Box<EvalAltResult>> {
    let mut scope = Scope::new();
    engine.call_fn_with_options::<Dynamic>(
        CallFnOptions::new().eval_ast(false).rewind_scope(true),
        &mut scope,
        ast,
        name,
        args,
    )
}

/// The policy as the host reaches it.
struct Hooks<'a> {
    engine: &'a Engine,
    policy: &'a Policy,
    shared: &'a Shared,
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
        call(self.engine, &self.policy.ast, ENTRY, args)
            .map(|_| ())
            .map_err(|e| self.policy.describe(&e, &format!("{ENTRY}/2")))
    }

    fn silent_after(&self) -> std::result::Result<i64, String> {
        let settings = self.shared.borrow().settings.clone();
        self.policy.call_silent_after(self.engine, &settings)
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
        call(self.engine, &self.policy.ast, "mail", args)
            .map(|_| ())
            .map_err(|e| self.policy.describe(&e, "mail/5"))
    }
}

/// A runtime error as `file:line:col: message (in f <- g)`; `entry_source` is the file of the
/// function the host called.
pub fn describe(e: &EvalAltResult, entry_source: &str) -> String {
    let mut chain = Vec::new();
    let mut source = entry_source.to_string();
    let mut cur = e;
    while let EvalAltResult::ErrorInFunctionCall(name, src, inner, _) = cur {
        chain.push(name.clone());
        if !src.is_empty() {
            source = src.clone();
        }
        cur = inner;
    }
    let pos: Position = cur.position();
    let mut msg = format!(
        "{source}:{}:{}: {}",
        pos.line().unwrap_or(0),
        pos.position().unwrap_or(0),
        strip_position(&cur.to_string())
    );
    if !chain.is_empty() {
        chain.reverse();
        msg.push_str(&format!(" (in {})", chain.join(" <- ")));
    }
    msg
}

fn strip_position(s: &str) -> String {
    match s.rfind(" (line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// `policy check`: compiles a file on top of the built-in policy and says what it overrides.
pub fn check(path: &Path) -> Result<Policy> {
    Policy::load(Some(path), DEFAULT_MAX_OPERATIONS)
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
        let p = Policy::load(None, 100_000).unwrap();
        assert!(p.ast.iter_functions().any(|f| f.name == ENTRY));
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
