//! Shared test helpers: run the binary, read its output, wait for a condition with a deadline.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_pxc-replication-manager");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What a run of the binary printed.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Both streams, for assertion messages.
    pub fn all(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the binary with arguments and extra environment.
pub fn pxcrm_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut c = Command::new(BIN);
    c.args(args).current_dir(repo());
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("the binary runs");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

pub fn pxcrm(args: &[&str]) -> Out {
    pxcrm_env(args, &[])
}

/// Polls `f` until it returns `Some`, or panics after `timeout` naming what was awaited and
/// the last value seen.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        let last = match f() {
            Ok(v) => return v,
            Err(e) => e,
        };
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A file in a fresh temporary directory, kept alive by the returned guard.
pub fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

/// The Python the suite's helper tools run under (aiosmtpd, jsonschema).
pub const PYTHON: &str = "/usr/bin/python3";

/// Panics unless [`PYTHON`] imports `module`: a test that needs a tool is `#[ignore]`d with
/// the reason (so a plain `cargo test` lists it as skipped), and once asked for
/// (`--include-ignored`, as `scripts/test` and CI run) it fails without its tool, never passes.
pub fn require_python_module(module: &str, install: &str) {
    let ok = std::process::Command::new(PYTHON)
        .args(["-c", &format!("import {module}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{PYTHON} cannot import {module}: {install}, or scripts/sandbox install"
    );
}
