//! pxc-replication-manager: keeps one asynchronous replica per remote cluster in each Galera
//! cluster, as Percona's `replication_manager.sh` does, with a Rhai policy deciding who and
//! when, and one executor doing every write.
//!
//! The entry points are plain functions a caller can run again and again: [`run_once`],
//! [`status`], [`init`], [`simulate::simulate`] and [`policy::check`]. `main.rs` only parses
//! arguments and maps errors to exit codes.

pub mod cli;
pub mod config;
pub mod error;
pub mod executor;
pub mod flavor;
pub mod guard;
pub mod mail;
pub mod mycnf;
pub mod policy;
pub mod server;
pub mod simulate;
pub mod sql;
pub mod state;
pub mod status;
pub mod topology;

use config::Config;
use error::{Error, Result};
use executor::{Action, Backend, LiveBackend, Mode};
use policy::Policy;
use policy::api::{RunCtx, Settings};
use server::{LocalServer, Login, NodeFacts};
use state::{Generation, Schema};
use std::io::Write;
use std::path::PathBuf;
use topology::Link;

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Read, print every write, change nothing.
    pub dry_run: bool,
    /// `--defaults-file`: the MySQL option file to log in with.
    pub defaults_file: Option<PathBuf>,
}

/// What a run did.
#[derive(Debug)]
pub enum RunSummary {
    /// The pause file exists; nothing was done.
    Paused(PathBuf),
    Done {
        node: String,
        /// What changed, in order.
        events: Vec<String>,
        /// Links whose policy call failed, with the error.
        link_errors: Vec<(String, String)>,
        mail_failures: usize,
    },
}

impl RunSummary {
    /// The exit code: 0, or 1 when a link or a mail failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunSummary::Done {
                link_errors,
                mail_failures,
                ..
            } if !link_errors.is_empty() || *mail_failures > 0 => error::exit::PARTIAL,
            _ => error::exit::OK,
        }
    }
}

/// The run-wide settings handed to the policy.
pub fn settings(cfg: &Config) -> Settings {
    Settings {
        heartbeat_timeout: cfg.timeouts.heartbeat,
        failed_timeout: cfg.timeouts.failed,
        connect_timeout: cfg.timeouts.connect,
        distribute: cfg.policy.distribute,
        vars: cfg
            .policy
            .vars
            .iter()
            .map(|(k, v)| (k.as_str().into(), policy::api::toml_to_dynamic(v)))
            .collect(),
    }
}

/// The local node, read and resolved: connection, facts, schema and links.
pub struct LocalNode {
    pub server: LocalServer,
    pub facts: NodeFacts,
    /// `None` when the state table could not be read (a node outside the Primary component).
    pub schema: Option<Schema>,
    pub links: Vec<Link>,
}

/// Connects to the local server and reads what every command needs.
pub fn open_local(cfg: &Config, defaults_file: Option<&std::path::Path>) -> Result<LocalNode> {
    let login = Login::resolve(&cfg.local, defaults_file)?;
    let mut server = LocalServer::connect(&login)?;
    let mut facts = server.facts(&cfg.local)?;
    if facts.can_act() {
        server.enable_causal_reads()?;
    } else if let Err(e) = server.enable_dirty_reads() {
        log::debug!("dirty reads not available: {e}");
    }
    let schema = match server.schema() {
        Ok(s) => Some(s),
        Err(e) if !facts.can_act() && !matches!(e, Error::StateTableMissing) => {
            log::warn!(
                "{}: cannot read the state table while {}/{}: {e}",
                facts.name,
                facts.cluster_status,
                facts.local_state_comment
            );
            None
        }
        Err(e) => return Err(e),
    };
    let has_topology = schema.as_ref().is_some_and(|s| s.has_topology_tables);
    if cfg.local.weight.is_none()
        && has_topology
        && let Some(w) = server.weight(&facts.cluster, &facts.name)?
    {
        facts.weight = w;
    }
    let tables = if topology::wants_tables(cfg) {
        if !has_topology {
            return Err(Error::Node(format!(
                "no link to manage: {} has no [[link]] section and this cluster has no percona.link table; add [[link]] sections (see examples/) or fill percona.cluster and percona.link",
                cfg.source_name()
            )));
        }
        Some(server.table_topology()?)
    } else {
        None
    };
    // Outside the Primary component the schema may be unreadable; the links are then taken as
    // the multi-cluster generation's named channels, unless the node's default channel reads
    // from one of the only link's sources (the seed generation).
    let assumed = match &schema {
        Some(s) => s.clone(),
        None => {
            let seed_like = cfg.links.len() == 1
                && server.replica_statuses(&facts.flavor)?.iter().any(|r| {
                    r.channel.is_empty()
                        && cfg.links[0].sources.iter().any(|s| s.host == r.source_host)
                });
            Schema {
                generation: if seed_like {
                    Generation::Seed
                } else {
                    Generation::Multi {
                        role_column: "isReplica",
                        has_weight: false,
                        has_current_source: false,
                    }
                },
                has_claim_table: false,
                claim_records_failures: false,
                has_topology_tables: false,
            }
        }
    };
    let links = topology::resolve(cfg, &facts.cluster, &assumed, tables.as_ref())?;
    if links.is_empty() {
        log::warn!(
            "{}: no link to manage for cluster {} (percona.link has no row with clusterSlave = {:?})",
            facts.name,
            facts.cluster,
            facts.cluster
        );
    }
    Ok(LocalNode {
        server,
        facts,
        schema,
        links,
    })
}

/// One pass over every link: what cron runs every minute.
pub fn run_once(
    cfg: &Config,
    policy: &Policy,
    opts: &RunOptions,
    mut out: Box<dyn Write>,
) -> Result<RunSummary> {
    if guard::paused(&cfg.files.pause) {
        if !opts.dry_run {
            log::info!(
                "pause file {} exists: not acting (remove it to resume)",
                cfg.files.pause.display()
            );
            return Ok(RunSummary::Paused(cfg.files.pause.clone()));
        }
        let _ = writeln!(
            out,
            "# pause file {} exists: a live run would exit now; below is what it would do without it",
            cfg.files.pause.display()
        );
    }
    let _lock = if opts.dry_run {
        None
    } else {
        Some(guard::lock(&cfg.files.lock)?)
    };
    let node = open_local(cfg, opts.defaults_file.as_deref())?;
    let name = node.facts.name.clone();
    log::debug!(
        "{name}: {} {} {}/{} index {} weight {}, {} link(s), policy {}",
        node.facts.flavor.label(),
        node.facts.cluster,
        node.facts.cluster_status,
        node.facts.local_state_comment,
        node.facts.local_index,
        node.facts.weight,
        node.links.len(),
        policy.name
    );
    let mode = if opts.dry_run {
        Mode::DryRun
    } else {
        Mode::Live
    };
    let backend = LiveBackend::new(node.server, node.facts, node.schema, cfg, mode, out);
    let ctx = RunCtx::new(Box::new(backend), node.links, settings(cfg));
    let (ctx, results) = policy.run(ctx);
    let mut link_errors = Vec::new();
    for (key, r) in results {
        if let Err(e) = r {
            log::error!("{name}: link {key}: policy error: {e}");
            link_errors.push((key, e));
        }
    }
    if ctx.events.is_empty() {
        log::debug!("{name}: nothing changed");
    } else {
        log::info!("{name}: {}", ctx.events.join("; "));
    }
    Ok(RunSummary::Done {
        node: name,
        events: ctx.events,
        link_errors,
        mail_failures: ctx.backend.mail_failures(),
    })
}

/// `status`: the links, their rows, and this node's channels.
pub fn status(cfg: &Config, defaults_file: Option<&std::path::Path>) -> Result<status::Report> {
    let mut node = open_local(cfg, defaults_file)?;
    let channels = node.server.replica_statuses(&node.facts.flavor)?;
    let mut links = Vec::new();
    for l in &node.links {
        let (rows, failure) = match &node.schema {
            Some(s) if s.claim_records_failures => (
                node.server.rows(s, &l.key)?,
                node.server.failure(s, &l.key)?,
            ),
            Some(s) => (node.server.rows(s, &l.key)?, None),
            None => (Vec::new(), None),
        };
        links.push(status::LinkReport {
            key: l.key.clone(),
            remote: l.remote.clone(),
            channel: l.channel.as_str().to_string(),
            sources: l.sources.iter().map(|s| s.address()).collect(),
            rows,
            failure,
            replica: channels
                .iter()
                .find(|c| c.channel == l.channel.as_str())
                .cloned(),
        });
    }
    let cipher = node.server.tls_cipher()?;
    let managed: Vec<String> = node
        .links
        .iter()
        .map(|l| l.channel.as_str().to_string())
        .collect();
    Ok(status::Report {
        node: node.facts.clone(),
        generation: node.schema.as_ref().map(|s| s.generation.clone()),
        heartbeat_timeout: cfg.timeouts.heartbeat,
        paused: guard::paused(&cfg.files.pause),
        connection: format!(
            "{} {}",
            node.server.endpoint(),
            match cipher {
                Some(c) => format!("(TLS, {c})"),
                None => "(not encrypted)".into(),
            }
        ),
        links,
        other_channels: channels
            .into_iter()
            .filter(|c| !managed.contains(&c.channel))
            .collect(),
    })
}

/// `init`: creates the `percona` schema and tables, idempotently.
pub fn init(
    cfg: &Config,
    defaults_file: Option<&std::path::Path>,
    dry_run: bool,
    out: Box<dyn Write>,
) -> Result<String> {
    let login = Login::resolve(&cfg.local, defaults_file)?;
    let mut server = LocalServer::connect(&login)?;
    let facts = server.facts(&cfg.local)?;
    if !facts.is_primary() {
        return Err(Error::Node(format!(
            "{} is {}: run init on a node of the Primary component",
            facts.name, facts.cluster_status
        )));
    }
    let before = server.schema().ok();
    let mode = if dry_run { Mode::DryRun } else { Mode::Live };
    let name = facts.name.clone();
    let mut backend = LiveBackend::new(server, facts, None, cfg, mode, out);
    backend.apply(&Action::InitSchema)?;
    let after = if dry_run {
        before.clone()
    } else {
        backend.server().schema().ok()
    };
    Ok(match (&before, &after) {
        (Some(b), _) => format!(
            "{name}: percona.replication already existed ({}); missing tables were created",
            describe_generation(&b.generation)
        ),
        (None, Some(a)) => format!(
            "{name}: created the percona schema ({})",
            describe_generation(&a.generation)
        ),
        (None, None) => {
            format!("{name}: dry-run: the statements above would create the percona schema")
        }
    })
}

/// A generation in words.
pub fn describe_generation(g: &Generation) -> String {
    match g {
        Generation::Seed => "seed generation: one link per cluster, default channel".into(),
        Generation::Multi {
            role_column,
            has_current_source,
            ..
        } => format!(
            "multi-cluster generation with {role_column}{}",
            if *has_current_source {
                " and currentSource"
            } else {
                ""
            }
        ),
    }
}
