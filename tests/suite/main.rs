//! The integration suite: one crate, three parts.
//!
//! * `scenarios`: the built-in policy against scenario files, through `simulate` (no server);
//! * `cli`: the binary's command line, bad input, exit codes (no server);
//! * `optionfiles`: the local login from the mysql client's option files, on real clusters;
//! * `limits`: the policy sandbox's limits under attack, through `simulate` (no server);
//! * `metrics`: Prometheus metrics through `status --format prometheus` and the daemon's
//!   `--metrics-listen`, without a server and (`#[ignore]`d) on the sandbox clusters;
//! * `mail`: mail over SMTP against a real SMTP server (aiosmtpd) on loopback (no Galera);
//! * `mailserver`: mail from real runs on the real clusters, with that SMTP server up, down,
//!   slow or refusing (`#[ignore]`d, like `sandbox`);
//! * `packaging`: `--version`, completions, man pages, the systemd units and the daemon's
//!   systemd notifications (no server); `notify_sandbox`: the notifications on real clusters;
//! * `sandbox`: the real binary against two real 3-node MariaDB Galera clusters started by
//!   `scripts/sandbox` (needs root for apt and loopback addresses; see the README);
//! * `preflight`: `check` on the real clusters, sound and with each broken grant or setting
//!   (`#[ignore]`d, like `sandbox`);
//! * `readme`: the examples of the README and docs/, as written (the shell ones on a real node);
//! * `operator`: the cluster-wide pause, the hooks, `history`, `explain` and `clear-failure`, on
//!   the same clusters; `schemas`: the JSON Schemas of the JSON output, and their validator;
//! * `faults`: the fault-injection suite on the same clusters, with continuous writers, a
//!   split-brain monitor and an end check (`lab.rs` holds the instruments).

mod cli;
mod faults;
mod harness;
mod lab;
mod limits;
mod mail;
mod mailserver;
mod metrics;
mod notify_sandbox;
mod operator;
mod optionfiles;
mod packaging;
mod preflight;
mod readme;
mod sandbox;
mod scenarios;
mod schemas;
mod security;
