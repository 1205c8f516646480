//! `[files]`: the pause file, the run lock and the state file, relative to the config file's
//! directory when relative.

use super::Source;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Files {
    /// While this file exists, a run changes nothing but its own report (see `host::phases`).
    pub pause: PathBuf,
    /// Held (flock) for the whole run: a second run exits at once.
    pub lock: PathBuf,
    /// What this node has seen of its peers' reports between runs (see `db/clock.rs`).
    pub state: PathBuf,
    /// `insecure_files = true`: accept a policy, password file or lock file that another user
    /// could change, as `--insecure-files` does, but never this config itself (it could have
    /// been written by that user) nor a program (see `config::trust`).
    pub insecure: bool,
}

/// The defaults of the original script where it had one.
pub const DEFAULT_PAUSE_FILE: &str = "/tmp/replication_manager.off";
/// In a directory only root can write (created when missing; the systemd units also create it
/// with `RuntimeDirectory=`): a lock in `/tmp` could be taken first by any user, and every run
/// would then exit 5.
pub const DEFAULT_LOCK_FILE: &str = "/run/pxc-replication-manager/pxc-replication-manager.lock";
pub const DEFAULT_STATE_FILE: &str = "/var/lib/pxc-replication-manager/observed.json";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFiles {
    pause: Option<PathBuf>,
    lock: Option<PathBuf>,
    state: Option<PathBuf>,
    insecure_files: Option<bool>,
}

impl RawFiles {
    /// `[files]`.
    pub(super) fn check(self, src: &Source) -> Files {
        Files {
            pause: src.rel(self.pause.unwrap_or_else(|| DEFAULT_PAUSE_FILE.into())),
            lock: src.rel(self.lock.unwrap_or_else(|| DEFAULT_LOCK_FILE.into())),
            state: src.rel(self.state.unwrap_or_else(|| DEFAULT_STATE_FILE.into())),
            insecure: self.insecure_files.unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    #[test]
    fn relative_paths_are_relative_to_the_config_file() {
        let c = parse("[files]\npause = \"off\"\n").unwrap();
        assert_eq!(c.files.pause, PathBuf::from("/etc/off"));
    }
}
