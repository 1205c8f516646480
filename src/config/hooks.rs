//! `[hooks]`: an operator's command per event, run with the event's facts in its environment
//! and a time limit, like Patroni's `on_role_change`. A command is a program and its
//! arguments, run without a shell:
//!
//! ```toml
//! [hooks]
//! on_role_change = ["/usr/local/bin/pxcrm-hook", "role"]
//! on_fenced = "/usr/local/bin/page-the-dba"
//! timeout = "10s"
//! ```
//!
//! The executor runs them (`exec::hook`); this module only checks what the file says.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

/// What a hook is run for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookEvent {
    /// This node's role for a link changed (`No`, `Proposed`, `Yes`, `Failed`).
    RoleChange,
    /// This node gave a link up as `Failed`.
    Failed,
    /// This node's channel for a link now reads from another source.
    SourceChange,
    /// This node stopped a silent peer's channel before taking a link over.
    Fenced,
    /// This node found itself paused (pause file, or its cluster's pause row).
    Paused,
    /// The pause this node found ended.
    Resumed,
}

impl HookEvent {
    pub const ALL: [HookEvent; 6] = [
        HookEvent::RoleChange,
        HookEvent::Failed,
        HookEvent::SourceChange,
        HookEvent::Fenced,
        HookEvent::Paused,
        HookEvent::Resumed,
    ];

    /// The event's name, as `PXCRM_EVENT` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::RoleChange => "role-change",
            HookEvent::Failed => "failed",
            HookEvent::SourceChange => "source-change",
            HookEvent::Fenced => "fenced",
            HookEvent::Paused => "paused",
            HookEvent::Resumed => "resumed",
        }
    }

    /// Its key in `[hooks]`.
    pub fn key(self) -> String {
        format!("on_{}", self.as_str().replace('-', "_"))
    }
}

/// The checked `[hooks]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hooks {
    /// The command of each event that has one: the program, then its arguments.
    pub commands: BTreeMap<HookEvent, Vec<String>>,
    /// How long a hook may run before it is killed.
    pub timeout: Duration,
}

/// A hook's time limit when `[hooks] timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Hooks {
    fn default() -> Hooks {
        Hooks {
            commands: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Hooks {
    /// The command for an event, if one is configured.
    pub fn command(&self, event: HookEvent) -> Option<&[String]> {
        self.commands.get(&event).map(Vec::as_slice)
    }
}

/// `[hooks]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHooks {
    on_role_change: Option<Spanned<toml::Value>>,
    on_failed: Option<Spanned<toml::Value>>,
    on_source_change: Option<Spanned<toml::Value>>,
    on_fenced: Option<Spanned<toml::Value>>,
    on_paused: Option<Spanned<toml::Value>>,
    on_resumed: Option<Spanned<toml::Value>>,
    timeout: Option<Spanned<toml::Value>>,
}

/// An error at a place in the file: its byte range, and the message.
pub(super) type At = (std::ops::Range<usize>, String);

impl RawHooks {
    /// Checks `[hooks]`; `duration` reads a duration as the rest of the config writes it.
    pub(super) fn check(
        self,
        duration: impl Fn(&toml::Value) -> Result<i64, String>,
    ) -> Result<Hooks, At> {
        let mut commands = BTreeMap::new();
        let given = [
            (HookEvent::RoleChange, self.on_role_change),
            (HookEvent::Failed, self.on_failed),
            (HookEvent::SourceChange, self.on_source_change),
            (HookEvent::Fenced, self.on_fenced),
            (HookEvent::Paused, self.on_paused),
            (HookEvent::Resumed, self.on_resumed),
        ];
        for (event, value) in given {
            let Some(v) = value else { continue };
            let argv = command(v.get_ref())
                .map_err(|e| (v.span(), format!("[hooks] {}: {e}", event.key())))?;
            commands.insert(event, argv);
        }
        let timeout = match self.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) => {
                let secs = duration(t.get_ref())
                    .map_err(|e| (t.span(), format!("[hooks] timeout: {e}")))?;
                if !(1..=300).contains(&secs) {
                    return Err((
                        t.span(),
                        format!(
                            "[hooks] timeout: {secs} s is outside 1 s to 300 s (a hook holds up the run that runs it)"
                        ),
                    ));
                }
                Duration::from_secs(secs as u64)
            }
        };
        Ok(Hooks { commands, timeout })
    }
}

/// A command as written: a program's absolute path, or an array of it and its arguments.
fn command(v: &toml::Value) -> Result<Vec<String>, String> {
    let argv: Vec<String> = match v {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                toml::Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "every element must be a string, not {}",
                    other.type_str()
                )),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(format!(
                "expected a program (\"/usr/local/bin/hook\") or an array of it and its arguments, not {}",
                other.type_str()
            ));
        }
    };
    let Some(program) = argv.first() else {
        return Err("the array is empty: give at least the program".into());
    };
    if !program.starts_with('/') {
        return Err(format!(
            "{program:?} is not an absolute path: hooks run without a shell and without a search path, so name the program by its full path"
        ));
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err("a NUL byte cannot be passed to a program".into());
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn parse(text: &str) -> Result<Hooks, String> {
        Config::parse(text, Path::new("site.toml"))
            .map(|c| c.hooks)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_hook_is_a_program_or_a_program_with_arguments() {
        let h = parse(
            "[hooks]\non_role_change = [\"/usr/local/bin/h\", \"role\"]\non_fenced = \"/usr/local/bin/page\"\ntimeout = \"30s\"\n",
        )
        .unwrap();
        assert_eq!(
            h.command(HookEvent::RoleChange).unwrap(),
            ["/usr/local/bin/h", "role"]
        );
        assert_eq!(
            h.command(HookEvent::Fenced).unwrap(),
            ["/usr/local/bin/page"]
        );
        assert_eq!(h.command(HookEvent::Failed), None);
        assert_eq!(h.timeout, Duration::from_secs(30));
        assert_eq!(parse("").unwrap(), Hooks::default());
    }

    #[test]
    fn a_bad_hook_is_an_error_naming_the_line_and_the_key() {
        let e = parse("[hooks]\non_failed = \"page-me\"\n").unwrap_err();
        assert!(e.contains("site.toml:2"), "{e}");
        assert!(e.contains("[hooks] on_failed"), "{e}");
        assert!(e.contains("absolute path"), "{e}");
        let e = parse("[hooks]\n\non_paused = []\n").unwrap_err();
        assert!(e.contains("site.toml:3") && e.contains("empty"), "{e}");
        let e = parse("[hooks]\non_resumed = [\"/bin/x\", 3]\n").unwrap_err();
        assert!(e.contains("every element must be a string"), "{e}");
        let e = parse("[hooks]\ntimeout = \"10m\"\n").unwrap_err();
        assert!(
            e.contains("[hooks] timeout") && e.contains("outside 1 s to 300 s"),
            "{e}"
        );
        let e = parse("[hooks]\non_rolechange = \"/bin/x\"\n").unwrap_err();
        assert!(e.contains("on_rolechange"), "{e}");
    }
}
