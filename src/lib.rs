//! pxc-replication-manager: keeps one asynchronous replica per remote cluster in each Galera
//! cluster, as Percona's `replication_manager.sh` does, with a Rhai policy deciding who and
//! when, the host enforcing what must hold whatever the policy says, and one executor doing
//! every write.
//!
//! The layers, bottom to top; each module uses only the layers below it (docs/architecture.md):
//!
//! * [`error`]: every error type, and the exit codes;
//! * [`metrics`]: the counters kept for monitoring (failovers, fences, runs) in the state file;
//! * [`memory`]: the allocator that a policy call's memory limit reads, and what the host
//!   holds for itself (its connections), which that limit leaves out;
//! * [`db`]: what the servers speak and store: quoting, flavours, the percona tables, and the
//!   judge of silence over their rows;
//! * [`config`]: the input: the TOML config, MySQL option files, the links;
//! * [`exec`]: the servers: node facts, probes, and the one write seam with its three backends;
//! * [`host`]: the rules that hold whatever the policy does, and the primitives it may call;
//! * [`policy`]: the Rhai policy and the host API as it sees it;
//! * [`app`]: the entry points (`run`, `status`, `init`, `simulate`) and the command line;
//! * [`check`]: the model checker, which runs the real policy and host over a modelled
//!   cluster in every interleaving (`policy verify`).
//!
//! `main.rs` only parses arguments and maps errors to exit codes.

pub mod app;
pub mod check;
pub mod config;
pub mod db;
pub mod error;
pub mod exec;
pub mod host;
pub mod memory;
pub mod metrics;
pub mod policy;

pub use app::{RunOptions, RunSummary, init, run_once, status_report};
