//! `pause` and `resume`: the cluster-wide pause row (see `db::pause`), written through the
//! executor from any node of the Primary component, and the history (who, why, how long). The per-node pause file (`[files] pause`)
//! is separate and stays: either one pauses a node.

use super::open_local;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::exec::{Action, Backend, LiveBackend, Mode};
use std::io::Write;
use std::path::Path;

/// What `pause` is asked to do.
#[derive(Clone, Debug, Default)]
pub struct PauseRequest {
    pub reason: Option<String>,
    /// Seconds, or until `resume`.
    pub seconds: Option<u64>,
    pub dry_run: bool,
}

/// Who is pausing: the node, and the operator's login as the environment gives it.
fn operator() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| format!("uid {}", own_uid()))
}

fn own_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of this process's /proc entry is its real uid, without libc.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

/// `pause`: pauses every node of this node's cluster. Returns the line to log.
pub fn pause(
    cfg: &Config,
    defaults_file: Option<&Path>,
    req: &PauseRequest,
    out: Box<dyn Write>,
) -> Result<String> {
    let reason = req.reason.clone().unwrap_or_default();
    if reason.chars().count() > crate::db::pause::MAX_REASON {
        return Err(Error::Argument(format!(
            "pause --reason: {} characters, at most {} fit; nothing was changed",
            reason.chars().count(),
            crate::db::pause::MAX_REASON
        )));
    }
    let (mut backend, cluster, name, before) = open(cfg, defaults_file, req.dry_run, out)?;
    let by = format!("{name} ({})", operator());
    backend.apply(&Action::PauseCluster {
        cluster: cluster.clone(),
        by: by.clone(),
        reason: reason.clone(),
        seconds: req.seconds,
    })?;
    let until = match req.seconds {
        Some(s) => format!("for {s} s"),
        None => "until `resume`".into(),
    };
    let replaced = match before.filter(|p| p.is_active()) {
        Some(p) => format!(" (it replaces the pause by {})", p.by),
        None => String::new(),
    };
    let why = if reason.is_empty() {
        "no reason given".to_string()
    } else {
        format!("{reason:?}")
    };
    backend.apply(&Action::RecordHistory {
        cluster: cluster.clone(),
        key: String::new(),
        event: crate::db::history::event::PAUSED,
        detail: format!("cluster paused by {by} {until} ({why}){replaced}"),
    })?;
    Ok(if req.dry_run {
        format!("dry-run: the statements above would pause cluster {cluster} {until}{replaced}")
    } else {
        format!(
            "cluster {cluster} paused by {by} {until}{replaced}: every node reports and changes nothing else, from its next run"
        )
    })
}

/// `resume`: ends this node's cluster's pause. Returns the line to log.
pub fn resume(
    cfg: &Config,
    defaults_file: Option<&Path>,
    dry_run: bool,
    out: Box<dyn Write>,
) -> Result<String> {
    let (mut backend, cluster, _, before) = open(cfg, defaults_file, dry_run, out)?;
    let Some(before) = before else {
        return Ok(format!("cluster {cluster} is not paused; nothing to do"));
    };
    backend.apply(&Action::ResumeCluster {
        cluster: cluster.clone(),
    })?;
    backend.apply(&Action::RecordHistory {
        cluster: cluster.clone(),
        key: String::new(),
        event: crate::db::history::event::RESUMED,
        detail: format!(
            "cluster resumed by {} ({}); it was paused by {}",
            backend.facts().name,
            operator(),
            before.by
        ),
    })?;
    let file = if cfg.files.pause.exists() {
        format!(
            "; this node's pause file {} still pauses it",
            cfg.files.pause.display()
        )
    } else {
        String::new()
    };
    Ok(if dry_run {
        format!("dry-run: the statement above would end the pause of cluster {cluster}{file}")
    } else {
        format!(
            "cluster {cluster} resumed (it was paused by {}){file}",
            before.by
        )
    })
}

/// The executor on the local node, which must be in the Primary component; the cluster, the
/// node's name and the current pause row.
fn open(
    cfg: &Config,
    defaults_file: Option<&Path>,
    dry_run: bool,
    out: Box<dyn Write>,
) -> Result<(
    LiveBackend,
    String,
    String,
    Option<crate::db::pause::ClusterPause>,
)> {
    let node = open_local(cfg, defaults_file)?;
    node.must_act("pause and resume")?;
    let cluster = node.facts.cluster.clone();
    let name = node.facts.name.clone();
    let before = node.cluster_pause.clone();
    let mode = if dry_run { Mode::DryRun } else { Mode::Live };
    let backend = node.into_backend(cfg, mode, out);
    Ok((backend, cluster, name, before))
}
