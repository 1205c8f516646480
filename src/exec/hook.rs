//! An operator's hook (`[hooks]`): what a call is, how dry-run and simulate print it, and how a
//! live run runs it: without a shell, with the event's facts in `PXCRM_*` environment
//! variables, stdin closed, its output captured (and cut), and killed with its whole process
//! group when it outlives `[hooks] timeout`.
//!
//! Only the executor calls [`run`]. A hook that fails, cannot start or times out is logged
//! by the caller and changes nothing else: the run goes on as if it had succeeded.

use crate::config::hooks::HookEvent;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One hook to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookCall {
    pub event: HookEvent,
    /// The program, then its arguments.
    pub argv: Vec<String>,
    /// The facts, as `PXCRM_*` variables, in a stable order.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
}

/// The most output of a hook that is kept for the log.
pub const MAX_OUTPUT: usize = 4096;

/// What a hook did.
#[derive(Debug)]
pub struct HookRun {
    /// Its exit status, as the shell words it (`exit status: 3`, `signal: 9`).
    pub status: String,
    pub success: bool,
    pub elapsed: Duration,
    /// Its stdout and stderr, cut to [`MAX_OUTPUT`] bytes each.
    pub output: String,
}

impl HookCall {
    /// As printed by dry-run and simulate: a header line, then one line per variable.
    pub fn lines(&self) -> Vec<String> {
        let printable = crate::error::printable;
        let mut v = vec![format!(
            "HOOK {}: {}",
            self.event.key(),
            printable(&self.argv.join(" "))
        )];
        v.extend(
            self.env
                .iter()
                .map(|(k, val)| format!("    | {k}={}", printable(val))),
        );
        v
    }
}

/// Runs a hook and waits for it, at most its timeout. `Err` when it could not be started or
/// did not end in time (it was then killed); a hook that ran and failed is `Ok` with
/// `success == false`.
pub fn run(call: &HookCall) -> Result<HookRun, String> {
    let started = Instant::now();
    let mut cmd = Command::new(&call.argv[0]);
    cmd.args(&call.argv[1..])
        // A value with NUL would keep the hook from starting (an environment cannot hold
        // it); one with a bidi override or a newline would lie to whatever logs it.
        .envs(
            call.env
                .iter()
                .map(|(k, v)| (k, crate::error::printable(v))),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills what it started too.
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", call.argv[0]))?;
    let readers = [
        child.stdout.take().map(|o| drain(Box::new(o))),
        child.stderr.take().map(|e| drain(Box::new(e))),
    ];
    let deadline = started + call.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let pid = child.id() as libc::pid_t;
                // SAFETY: kill(2) with a negative pid signals the process group the hook leads
                // (process_group(0) above); it has no memory-safety preconditions.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not end within {} s ([hooks] timeout) and was killed with its process group",
                    call.timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    };
    // The hook has ended; what it left running in the background may hold its pipes open, so
    // its output is waited for briefly, not until they close.
    let output = readers
        .into_iter()
        .flatten()
        .filter_map(|r| r.recv_timeout(Duration::from_millis(200)).ok())
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    Ok(HookRun {
        status: status.to_string(),
        success: status.success(),
        elapsed: started.elapsed(),
        output,
    })
}

/// Reads a pipe to its end in a thread, keeping at most [`MAX_OUTPUT`] bytes.
fn drain(mut pipe: Box<dyn Read + Send>) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        let mut cut = false;
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = MAX_OUTPUT.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
            cut |= n > room;
        }
        let mut s = String::from_utf8_lossy(&kept).into_owned();
        if cut {
            s.push_str(" [cut]");
        }
        let _ = tx.send(s);
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(script: &str, timeout: u64) -> HookCall {
        HookCall {
            event: HookEvent::RoleChange,
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec![
                ("PXCRM_EVENT".into(), "role-change".into()),
                ("PXCRM_ROLE".into(), "Yes".into()),
            ],
            timeout: Duration::from_secs(timeout),
        }
    }

    #[test]
    fn a_hook_gets_the_facts_in_its_environment_and_its_output_is_kept() {
        let r = run(&call("echo \"$PXCRM_EVENT $PXCRM_ROLE\"; echo oops >&2", 5)).unwrap();
        assert!(r.success);
        assert_eq!(r.output, "role-change Yes\noops");
    }

    #[test]
    fn a_value_with_nul_or_a_bidi_override_reaches_the_hook_escaped() {
        // A NUL kept the hook from starting: an environment cannot hold it.
        let mut c = call("printf '%s' \"$PXCRM_REASON\"", 5);
        c.env.push(("PXCRM_REASON".into(), "a\0b\u{202e}c".into()));
        let r = run(&c).unwrap();
        assert!(r.success);
        assert_eq!(r.output, "a\\u{0}b\\u{202e}c");
    }

    #[test]
    fn a_failing_hook_reports_its_status() {
        let r = run(&call("exit 3", 5)).unwrap();
        assert!(!r.success);
        assert!(r.status.contains('3'), "{}", r.status);
    }

    #[test]
    fn a_hook_that_outlives_its_timeout_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let script = format!("(sleep 3; touch {}) & sleep 30", marker.display());
        let t = Instant::now();
        let e = run(&call(&script, 1)).unwrap_err();
        assert!(e.contains("did not end within 1 s"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        // The background child was in the hook's process group: it must not have survived.
        let wait_until = Instant::now() + Duration::from_secs(4);
        while Instant::now() < wait_until {
            assert!(
                !marker.exists(),
                "the hook's background child survived the kill"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[test]
    fn a_missing_program_is_an_error_not_a_panic() {
        let mut c = call("true", 5);
        c.argv = vec!["/nonexistent/hook".into()];
        assert!(
            run(&c)
                .unwrap_err()
                .starts_with("cannot start /nonexistent/hook")
        );
    }

    #[test]
    fn printed_hooks_show_the_command_and_every_variable_on_one_line_each() {
        let mut c = call("x", 5);
        c.env.push(("PXCRM_REASON".into(), "a\nb".into()));
        assert_eq!(
            c.lines(),
            vec![
                "HOOK on_role_change: /bin/sh -c x",
                "    | PXCRM_EVENT=role-change",
                "    | PXCRM_ROLE=Yes",
                "    | PXCRM_REASON=a\\nb",
            ]
        );
    }
}
