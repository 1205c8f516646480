//! Cron safety: the pause file and the overlap lock.
//!
//! The pause file is the seed's `/tmp/replication_manager.off` (configurable): while it exists a
//! run changes nothing, but keeps reporting (see `host::phases`). The lock is an advisory `flock` on the lock file, held for the whole run,
//! so a run that starts while another is still going exits at once; the kernel releases it when
//! the process ends, however it ends.

use crate::config::trust;
use crate::error::{Error, Result, UntrustedFile};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Since when the pause file exists (its modification time, Unix seconds), if it does.
pub fn paused_since(pause_file: &Path) -> Option<i64> {
    let meta = std::fs::metadata(pause_file).ok()?;
    let t = meta
        .modified()
        .ok()
        .unwrap_or_else(std::time::SystemTime::now);
    Some(
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    )
}

/// A held run lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the run lock, or says who holds it. Its directory is made (mode 0755) when missing,
/// as the default `/run/pxc-replication-manager/` is after a reboot. A lock file another user
/// owns is refused: that user could hold it and silence every run (`insecure`: accepted with
/// a warning, for test rigs).
pub fn lock(path: &Path, insecure: bool) -> Result<RunLock> {
    let file_err = |e: std::io::Error| Error::File {
        file: path.to_path_buf(),
        message: format!(
            "cannot open the lock file: {e} (set [files] lock to a path this user can write)"
        ),
        source: e,
    };
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(file_err)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(file_err)?;
    let meta = file.metadata().map_err(file_err)?;
    owned_by_a_trusted_user(path, &meta, insecure)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Error::Locked {
                file: path.to_path_buf(),
                holder: if holder.is_empty() {
                    "holder unknown".into()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(file_err(e)),
    }
    let me = format!(
        "pid {} since {}",
        std::process::id(),
        chrono::Local::now().format("%Y-%m-%d %H:%M:%S")
    );
    let _ = file.set_len(0);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.write_all(me.as_bytes());
    Ok(RunLock { _file: file })
}

/// Refuses a lock file another user owns: that user could hold it and stop every run
/// (`insecure`: a warning instead).
fn owned_by_a_trusted_user(path: &Path, meta: &std::fs::Metadata, insecure: bool) -> Result<()> {
    let st = trust::Stat {
        uid: meta.uid(),
        mode: meta.mode() & 0o7777,
        dir: false,
    };
    let euid = trust::process_uid();
    if !trust::flaws(st, euid).contains(&trust::Flaw::Owner) {
        return Ok(());
    }
    let refusal = Box::new(UntrustedFile {
        role: "lock file".into(),
        path: path.to_path_buf(),
        at: path.to_path_buf(),
        owner: trust::owner_words(st.uid),
        mode: format!("{:04o}", st.mode),
        problem: "is owned by another user, who could hold it and stop every run".into(),
        fixes: vec![format!(
            "rm {} (or set [files] lock in a directory only root can write, such as the default {})",
            path.display(),
            crate::config::DEFAULT_LOCK_FILE
        )],
        runs_as: trust::owner_words(euid),
    });
    if !insecure {
        return Err(refusal.into());
    }
    trust::warn_daily(&format!(
        "{refusal} (accepted because of --insecure-files or [files] insecure_files)"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_until_the_first_is_dropped() {
        let p = std::env::temp_dir().join(format!("pxcrm-lock-test-{}", std::process::id()));
        let first = lock(&p, false).unwrap();
        let e = lock(&p, false).unwrap_err();
        assert!(matches!(e, Error::Locked { .. }));
        assert!(
            e.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        drop(first);
        assert!(lock(&p, false).is_ok());
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_missing_directory_of_the_lock_is_made_only_for_root_to_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run/pxcrm/manager.lock");
        let _held = lock(&p, false).unwrap();
        let mode = std::fs::metadata(p.parent().unwrap()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o755);
    }

    #[test]
    fn the_lock_file_is_never_followed_through_a_symlink() {
        let dir = std::env::temp_dir().join(format!("pxcrm-lock-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, "keep me").unwrap();
        let link = dir.join("lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(lock(&link, false).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
