//! The daemon's systemd notifications on real clusters (`#[ignore]`d, like `sandbox.rs`):
//! started with NOTIFY_SOCKET on a node of fresh sandbox clusters, it says READY=1 after a first
//! run that succeeded (its STATUS names the node and its link), then WATCHDOG=1 with every run,
//! and STOPPING=1 at SIGTERM.

use crate::lab::{DC1, Options, Sandbox};
use crate::packaging::Notified;
use std::time::Duration;

#[test]
#[ignore = "needs real Galera clusters: scripts/test runs it (cargo test -- --include-ignored)"]
fn a_daemon_on_a_real_cluster_says_ready_then_pings_the_watchdog() {
    let sb = Sandbox::start(Options {
        heartbeat: 30,
        connect: 5,
        daemon_interval: Some(1),
        ..Options::default()
    });
    let node = DC1[0];
    let mut d = Notified::start(&sb.config(node), Some(10_000_000));
    let t = Duration::from_secs(60);
    let ready = d.await_message("READY=1", 0, t, |m| m.lines().any(|l| l == "READY=1"));
    assert_eq!(ready, 0, "{:?}", d.messages);
    let status = d.messages[0]
        .lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .unwrap_or_else(|| panic!("no STATUS= with READY=1: {:?}", d.messages));
    assert!(
        status.starts_with(&format!("{node}: 1 link(s), replicating ")),
        "{status}"
    );
    assert!(status.contains("last run: "), "{status}");
    // Every run pings the watchdog, with a status from a run that succeeded.
    d.await_message("WATCHDOG=1 after a run", ready + 1, t, |m| {
        m.lines().any(|l| l == "WATCHDOG=1") && m.contains(&format!("STATUS={node}: 1 link(s)"))
    });
    let before = d.messages.len();
    d.signal(libc::SIGTERM);
    d.await_message("STOPPING=1", before, t, |m| {
        m.lines().any(|l| l == "STOPPING=1")
    });
    assert_eq!(d.await_exit(t), 0);
}
