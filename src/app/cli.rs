//! Command-line definitions (clap). Nothing here acts; `main.rs` dispatches.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// The config file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG: &str = "/etc/pxc-replication-manager.toml";

const AFTER_HELP: &str = "\
HOW IT WORKS:
  Cron runs `pxc-replication-manager run` every minute on every node of every Galera cluster.
  The nodes of a cluster agree through the state table percona.replication, which Galera
  replicates: for each remote cluster, exactly one node (the best candidate: highest weight,
  then lowest wsrep_local_index) replicates it. A replica whose source dies switches to another
  source; one that cannot, or whose SQL thread stops, reports Failed so another node takes over;
  one that stops reporting is replaced after the heartbeat timeout, once its channel has been
  stopped on its own server (fenced). A node outside the Primary component stops replicating;
  a paused node (pause file) changes nothing but keeps reporting while its channel runs. These
  rules are the binary's:
  a site policy changes choices (ordering, timeouts, mail), never them.

  Cron line (/etc/cron.d/pxc-replication-manager, as in
  /usr/share/doc/pxc-replication-manager/examples/crontab):
    * * * * * root /usr/bin/pxc-replication-manager \
        --config /etc/pxc-replication-manager.toml run 2>&1 | logger -t pxc-replication-manager
  (one line in the crontab; split here for width)

EXAMPLES:
  pxc-replication-manager --config site.toml config check      # config, policy, hooks: no server
  pxc-replication-manager init --print-ddl > schema.sql        # the tables' DDL, no server
  pxc-replication-manager --config site.toml init --dry-run    # what init would create here
  pxc-replication-manager --config site.toml run --dry-run     # what would a run do now?
  pxc-replication-manager --config site.toml status            # links, rows, channel of this node
  pxc-replication-manager --config site.toml pause --reason \"upgrade\" --for 2h   # the whole cluster
  pxc-replication-manager --config site.toml resume
  pxc-replication-manager --config site.toml clear-failure --link DC2   # after fixing the cause
  pxc-replication-manager --config site.toml history --since 24h   # elections, failovers, fences
  pxc-replication-manager --config site.toml explain --link DC2    # why this node is (not) the replica
  pxc-replication-manager policy check site-policy.rhai
  pxc-replication-manager simulate \
      --scenario /usr/share/doc/pxc-replication-manager/examples/scenario-elect-from-empty.toml

EXIT CODES:
  0  done (also when the pause file exists)
  1  done, but a link's action, a mail or the state file failed: read the log
  2  bad input, or a setup the tool cannot work with: command line, config, option file,
     policy or scenario; an unsupported server, a node outside Galera or without a link
     (nothing was changed)
  3  cannot connect to the local server, or it refused the credentials
  4  the state table percona.replication is missing or unknown: run `init`
  5  another run holds the lock file
  6  the server returned an error during the run

ENVIRONMENT:
  RUST_LOG  overrides -v (e.g. RUST_LOG=debug)";

/// Keeps one asynchronous GTID replica per remote cluster in each Galera cluster (PXC,
/// MariaDB Galera): elects it, fails over its source, replaces it when it dies. A drop-in
/// replacement for Percona's replication_manager.sh.
#[derive(Parser, Debug)]
#[command(name = "pxc-replication-manager", version = crate::policy::VERSION, after_help = AFTER_HELP)]
pub struct Cli {
    /// The TOML configuration (default /etc/pxc-replication-manager.toml if it exists;
    /// otherwise links come from the percona.cluster/percona.link tables).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The only MySQL option file read for the local login, as the mysql client's
    /// --defaults-file (default: [local] defaults_file, else the client's files:
    /// /etc/my.cnf, /etc/mysql/my.cnf, $MYSQL_HOME/my.cnf, the extra file, ~/.my.cnf).
    #[arg(long, global = true, value_name = "FILE")]
    pub defaults_file: Option<PathBuf>,

    /// A MySQL option file read after the global ones and before ~/.my.cnf, as the mysql
    /// client's --defaults-extra-file; it must exist (default: [local] defaults_extra_file).
    #[arg(long, global = true, value_name = "FILE")]
    pub defaults_extra_file: Option<PathBuf>,

    /// More log output on stderr: -v shows every statement, -vv everything.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// For test rigs only: accept a config, policy, password file or lock file that another
    /// user could change (each is then named in a warning). Hook and mail programs are
    /// checked all the same: a program someone else can change is never run as this user.
    #[arg(long, global = true)]
    pub insecure_files: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// One pass over every link: what cron runs every minute.
    Run(RunArgs),
    /// Run every [daemon] interval (1 s to 60 s, default 10 s) instead of from cron, on
    /// connections kept open, until SIGTERM. SIGHUP reloads the config and the policy (a
    /// version that does not load is refused, and the old one kept). A replica that cannot
    /// write its report for two thirds of the heartbeat timeout stops its own channel before
    /// its peers replace it. Holds the run lock for its life: remove the node's cron line.
    /// Cron and daemon nodes can share a cluster.
    #[command(
        after_help = "Example: [daemon] interval = \"1s\" with [timeouts] heartbeat = \"5 intervals\" replaces a dead replica within seconds; see docs/operating.md, \"Daemon mode\"."
    )]
    Daemon(DaemonArgs),
    /// Show the links, their state rows with heartbeat ages, and this node's channels.
    #[command(
        after_help = "Prometheus (node_exporter's textfile collector), from cron:\n  * * * * * root pxc-replication-manager status --format prometheus > /var/lib/prometheus/node-exporter/pxcrm.prom.tmp && mv /var/lib/prometheus/node-exporter/pxcrm.prom.tmp /var/lib/prometheus/node-exporter/pxcrm.prom\nWhen the local server cannot be read, the metrics say pxcrm_up 0 (exit code 0, the error on stderr)."
    )]
    Status {
        /// The output: text for a person, json for a program, prometheus for monitoring
        /// (the text exposition format; see docs/operating.md, "Metrics").
        #[arg(long, value_enum, default_value = "text")]
        format: StatusFormat,
        /// Same as --format json (kept for existing scripts).
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
    /// Check, before the first failure needs it, every login, grant and setting a run relies
    /// on, on this node, with its config: the local server (Primary and Synced, binary log,
    /// GTID, skip-slave-start, one server_id per cluster), the local login's grants, the state
    /// tables, every peer in the view (the manager's login can fence it: it connects, reads
    /// the channels and holds the privilege to stop one), every source of every link (the
    /// replication login, Primary and Synced, the GTID domain) and mail. Changes nothing on
    /// any server. One line per prerequisite: ok, warn or FAIL, with the fix.
    #[command(
        after_help = "Exit codes: 0 when no line failed (warnings are printed), 1 when one did (with --strict: also a warning), 2 for a config that cannot be read.
Run it on every node before the cron line or the daemon, and again after changing users or grants:
  pxc-replication-manager --config /etc/pxc-replication-manager.toml check
  pxc-replication-manager check --format json | jq '.lines[] | select(.status != \"ok\")'"
    )]
    Check {
        /// The output: a table for a person, json for a program.
        #[arg(long, value_enum, default_value = "text")]
        format: CheckFormat,
        /// Fail (exit 1) on a warning too.
        #[arg(long)]
        strict: bool,
        /// Also send a real mail through [mail], to see it arrive.
        #[arg(long)]
        send_test_mail: bool,
    },
    /// Pause every node of this node's cluster for maintenance: a row in
    /// percona.replication_pause, which Galera carries to every node. While it holds, each
    /// node reports (heartbeats while its channel runs) and changes nothing else, as under
    /// the pause file; a node outside the Primary component still stops its channel. Pausing
    /// again replaces the pause. `status` shows who paused, when, why and until when.
    #[command(
        after_help = "Examples:\n  pxc-replication-manager pause --reason \"upgrade to 10.11.9\" --for 2h\n  pxc-replication-manager resume"
    )]
    Pause {
        /// Why, for the other operators (shown by `status`, given to the hooks).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// End the pause by itself after this long (90s, 30m, 2h, 1d); default: until
        /// `resume`.
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_for)]
        for_: Option<u64>,
        /// Print the statements instead of running them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Say a link's failure is fixed: its Failed rows go back to No and its recorded failure
    /// is forgotten, so the next run elects a replica without waiting out the failed timeout.
    /// From any node of the Primary component; mailed. Fix the cause first (a data error on
    /// the channel, an unreachable source): a failure that is still there comes back.
    #[command(after_help = "Examples:
  pxc-replication-manager clear-failure --link DC2 --dry-run
  pxc-replication-manager clear-failure --link DC2")]
    ClearFailure {
        /// The link, by its remote cluster (DC2) or its name (DC1-DC2); default: every link.
        #[arg(long, value_name = "LINK")]
        link: Option<String>,
        /// Print the statements and the mail instead of running them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move a link's replica to another node of this cluster on purpose: to NODE, or to the
    /// best-ranked node that can take it. From any node of the Primary component. The old
    /// replica stops its channel at a known GTID position and hands the link off; the new one
    /// claims it and starts once it has applied that position, so two channels never run at
    /// once and the link stands still for well under a second when the runs meet (the daemon,
    /// or cron's runs of the same minute), one run at most otherwise. Refused, with the reason,
    /// when the target is silent, paused, Failed, not Synced or not in the view. Mailed, and in
    /// the history. Waits for the move and exits 0 when it is done, 1 when it is not.
    #[command(after_help = "Examples:
  pxc-replication-manager switchover --link DC2 --to DC1-2 --dry-run
  pxc-replication-manager switchover --link DC2 --to DC1-2
  pxc-replication-manager switchover            # the only link, to the best other node")]
    Switchover {
        /// The link, by its remote cluster (DC2) or its name (DC1-DC2); needed when this node
        /// has more than one.
        #[arg(long, value_name = "LINK")]
        link: Option<String>,
        /// The node to move the replica to (its wsrep_node_name); default: the best-ranked
        /// node that can take it (see `explain`).
        #[arg(long, value_name = "NODE")]
        to: Option<String>,
        /// Print the statements and the mail instead of running them.
        #[arg(long)]
        dry_run: bool,
        /// How long to wait for the move, in seconds; default: the silent threshold and 5 s
        /// (after which the request has ended anyway).
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
    },
    /// Why each node of this cluster is, or is not, the replica of each link, in this node's
    /// view: its rank in the policy's ranking (rank_nodes, a site policy's if it has one),
    /// weight, index, role, whether it reports or is silent, whether it left the view or is
    /// paused, until when it stays Failed, and the one reason. Reads like a dry run; changes
    /// nothing.
    #[command(after_help = "Examples:
  pxc-replication-manager explain --link DC2
  pxc-replication-manager explain --format json | jq '.links[].nodes[] | {host, rank, reason}'")]
    Explain {
        /// The link, by its remote cluster (DC2) or its name (DC1-DC2); default: every link.
        #[arg(long, value_name = "LINK")]
        link: Option<String>,
        /// The output: text for a person, json for a program.
        #[arg(long, value_enum, default_value = "text")]
        format: CheckFormat,
    },
    /// What happened to this cluster's links, newest first: elections, failovers and their
    /// cause, source switches, fences (and fences that could not be done), failures and their
    /// clearing, pauses and resumes. Each node writes what happened on it to
    /// percona.replication_history, which Galera carries to every node, so any node shows
    /// the whole cluster's. Kept 90 days. Changes nothing.
    #[command(after_help = "Examples:
  pxc-replication-manager history --link DC2 --since 24h
  pxc-replication-manager history --since 2026-12-01 --format json | jq '.events[] | select(.event == \"failover\")'")]
    History {
        /// The link, by its remote cluster (DC2) or its name (DC1-DC2); default: every link,
        /// and the nodes' own events (pauses).
        #[arg(long, value_name = "LINK")]
        link: Option<String>,
        /// Only events since then: a duration back from now (90s, 30m, 2h, 7d), or a UTC date
        /// or time (2026-12-01, "2026-12-01 10:00").
        #[arg(long, value_name = "WHEN", value_parser = since_now)]
        since: Option<i64>,
        /// At most this many events, the newest.
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: u64,
        /// The output: text for a person, json for a program.
        #[arg(long, value_enum, default_value = "text")]
        format: CheckFormat,
    },
    /// End this node's cluster's pause (the pause file of a node, if any, stays).
    Resume {
        /// Print the statement instead of running it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Create the percona schema and tables, idempotently (run on one node).
    #[command(
        after_help = "With no server, to review the DDL or hand it to a change process:\n  pxc-replication-manager init --print-ddl > percona-schema.sql\n  mariadb < percona-schema.sql     # or mysql, on one node of each cluster"
    )]
    Init {
        /// Print the statements instead of running them (connects to read what exists).
        #[arg(long)]
        dry_run: bool,
        /// Print the DDL `init` runs on a server without the percona schema, as SQL a client
        /// can run, and connect to nothing. The same statements on MariaDB, MySQL and PXC.
        #[arg(long, conflicts_with = "dry_run")]
        print_ddl: bool,
    },
    /// Config tools, with no server.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Policy tools.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Run a policy against a scenario file, with no server, and print what it would do.
    Simulate {
        /// The scenario (TOML): node facts, state rows, channels, which sources answer.
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
        /// A site policy to load on top of the built-in one (default: the [policy] file of
        /// the --config given, if any; /etc/pxc-replication-manager.toml is not read).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell), e.g.
    /// `pxc-replication-manager completions bash > /etc/bash_completion.d/pxc-replication-manager`
    /// (the .deb installs bash, zsh and fish completions).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff: `pxc-replication-manager man | man -l -`), or write the pages
    /// of every command into a directory (the .deb installs them).
    Man {
        /// Write pxc-replication-manager.1 and one page per command here instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// The output of `status`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFormat {
    Text,
    Json,
    Prometheus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9333; overrides
    /// [daemon] metrics_listen). A scrape reads the local server on its own connection. No
    /// authentication: a non-loopback address is logged as such.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Read only: print every statement a run would execute, in order, prefixed by the node
    /// name (passwords masked), and the mail it would send. Changes nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Check the config with no server: it parses and its values hold together, the local
    /// login's MySQL option files give a user and a password, the policy compiles with the
    /// config's limits, every hook program exists and can run, the lock, state and pause
    /// files have their directories, and mail's settings are complete. One line per item: ok,
    /// warn or FAIL, with the fix. `check` proves the rest on the servers.
    #[command(
        after_help = "Exit codes: 0 when no line failed, 1 when one did (with --strict: also a warning), 2 for a config that cannot be read (the error names the file, line and key).\nBefore copying a config to the nodes, or in a deployment pipeline:\n  pxc-replication-manager --config site.toml config check"
    )]
    Check {
        /// The output: a table for a person, json for a program.
        #[arg(long, value_enum, default_value = "text")]
        format: CheckFormat,
        /// Fail (exit 1) on a warning too.
        #[arg(long)]
        strict: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Compile a site policy on top of the built-in one; errors are reported as file:line:col.
    /// Refuses (exit 2) a function named like a built-in one but with another number of
    /// parameters, which would replace nothing; warns about a function that nothing calls.
    Check {
        /// The policy file.
        file: PathBuf,
    },
    /// Print the built-in policy.
    Show,
    /// Model-check a policy (default: the built-in one alone): every interleaving of node
    /// runs, faults (crashes, partitions, stopped managers, pauses, dying, cut-off and lagging
    /// sources) and time in a 3-node cluster, with the real host rules and the simulated
    /// executor. Time reaches every threshold the rules compare ages with (the timeouts,
    /// silent_after, failed_clears_after, each number the policy compares with). With
    /// --config: the site's [policy], [timeouts] and weights. Prints the states explored, the
    /// time, and each property with ok or a counterexample trace. Safety is the host's, so
    /// for a site policy it is mostly bounded liveness, no flapping and mail (at most
    /// max_mails per run, each event once per outage) that can fail. Exit code 1 when a
    /// property fails.
    Verify {
        /// The site policy, loaded on top of the built-in one as `run` loads it.
        file: Option<PathBuf>,
        /// The deeper check (more faults and sources; minutes rather than seconds).
        #[arg(long)]
        deep: bool,
        /// Check only the N-th model of the set (1 to 4, 5 with --deep), e.g. to rerun the one that failed.
        #[arg(long, value_name = "N")]
        model: Option<usize>,
        /// Write each counterexample here: trace.txt and a scenario file per run, which
        /// `simulate --scenario` replays.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        size: VerifySize,
    },
}

/// `policy verify`'s model size, for a larger cluster or more links than the standard set's
/// (how the check grows with them; see docs/protocol.md).
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct VerifySize {
    /// Every model with this many nodes in the cluster (3 in the standard set). A weighted
    /// model keeps its weight on the last node.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(2..=9))]
    pub nodes: Option<u8>,
    /// Every model with this many links, each with its own sources (1, or 2 for the weighted
    /// model, in the standard set).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=8))]
    pub links: Option<u8>,
    /// Stop a model after this many states and report it incomplete (exit 1); the standard set
    /// stops at 2,000,000, --deep at 50,000,000.
    #[arg(long, value_name = "N")]
    pub max_states: Option<usize>,
}

/// `--for`: a positive duration in seconds, `s`, `m`, `h` or `d`.
/// `history --since`, from now: a Unix time.
fn since_now(text: &str) -> Result<i64, String> {
    super::history::parse_since(text, chrono::Utc::now().timestamp())
}

fn parse_for(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let per = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => {
            return Err(format!(
                "{text:?}: write seconds (90), or a number with s, m, h or d (\"2h\")"
            ));
        }
    };
    match n.parse::<u64>().ok().and_then(|n| n.checked_mul(per)) {
        Some(s) if s > 0 => Ok(s),
        _ => Err(format!(
            "{text:?}: write a positive duration: seconds (90), or a number with s, m, h or d (\"2h\")"
        )),
    }
}
