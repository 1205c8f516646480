//! Cron safety: the pause file and the overlap lock.
//!
//! The pause file is the seed's `/tmp/replication_manager.off` (configurable): while it exists a
//! run changes nothing, but keeps reporting (see `host::phases`). The lock is an advisory `flock` on the lock file, held for the whole run,
//! so a run that starts while another is still going exits at once; the kernel releases it when
//! the process ends, however it ends.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
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

/// Takes the run lock, or says who holds it.
pub fn lock(path: &Path) -> Result<RunLock> {
    let file_err = |e: std::io::Error| Error::File {
        file: path.to_path_buf(),
        message: format!(
            "cannot open the lock file: {e} (set [files] lock to a path this user can write)"
        ),
        source: e,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(file_err)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_until_the_first_is_dropped() {
        let p = std::env::temp_dir().join(format!("pxcrm-lock-test-{}", std::process::id()));
        let first = lock(&p).unwrap();
        let e = lock(&p).unwrap_err();
        assert!(matches!(e, Error::Locked { .. }));
        assert!(
            e.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        drop(first);
        assert!(lock(&p).is_ok());
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn the_lock_file_is_never_followed_through_a_symlink() {
        let dir = std::env::temp_dir().join(format!("pxcrm-lock-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, "keep me").unwrap();
        let link = dir.join("lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(lock(&link).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
