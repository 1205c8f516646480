//! The integration suite: one crate, three parts.
//!
//! * `scenarios`: the built-in policy against scenario files, through `simulate` (no server);
//! * `cli`: the binary's command line, bad input, exit codes (no server);
//! * `limits`: the policy sandbox's limits under attack, through `simulate` (no server);
//! * `packaging`: `--version`, completions, man pages, the systemd units and the daemon's
//!   systemd notifications (no server); `notify_sandbox`: the notifications on real clusters;
//! * `sandbox`: the real binary against two real 3-node MariaDB Galera clusters started by
//!   `scripts/sandbox` (needs root for apt and loopback addresses; see the README);
//! * `faults`: the fault-injection suite on the same clusters, with continuous writers, a
//!   split-brain monitor and an end check (`lab.rs` holds the instruments).

mod cli;
mod faults;
mod harness;
mod lab;
mod limits;
mod notify_sandbox;
mod packaging;
mod sandbox;
mod scenarios;
mod security;
