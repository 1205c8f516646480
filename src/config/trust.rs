//! Which files this process may trust. It runs as root, from cron or systemd; a file that
//! steers it (the config, a policy, a hook program, the mail program) is trusted only when
//! nobody else can change it: the file and every directory above it, up to `/`, must be owned
//! by root or by the user the process runs as, and writable by nobody else. This is
//! sshd's `StrictModes` and sudo's rule for its own files. A file that holds a secret (a
//! password file, an option file with a password, a config with an inline password) may not
//! be writable by others, and should not be readable by them.
//!
//! Two exceptions, both safe: a directory that others may write but whose sticky bit is set
//! and whose owner is trusted (`/tmp`: nobody can rename or remove another user's entry in
//! it, so a trusted entry stays put), and symbolic links, which are judged by what they point
//! to and by the directories that hold them.
//!
//! The verdicts themselves ([`flaws`]) are pure, over an owner and a mode, so every rule is
//! tested without files; [`check_steering`] and [`check_secret`] read the disk.

use crate::error::UntrustedFile;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What about one file or directory makes it untrustworthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flaw {
    /// Owned by a user who is neither root nor the user this process runs as.
    Owner,
    /// Its group may write it.
    GroupWritable,
    /// Every user may write it.
    OthersWritable,
}

impl Flaw {
    fn words(self) -> &'static str {
        match self {
            Flaw::Owner => "owned by another user",
            Flaw::GroupWritable => "writable by its group",
            Flaw::OthersWritable => "writable by every user",
        }
    }
}

/// The owner and mode of one file or directory, as `stat` gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub uid: u32,
    pub mode: u32,
    pub dir: bool,
}

impl Stat {
    fn of(meta: &std::fs::Metadata) -> Stat {
        Stat {
            uid: meta.uid(),
            mode: meta.mode() & 0o7777,
            dir: meta.is_dir(),
        }
    }
}

/// The user this process runs as (its effective user).
pub fn process_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Why `st` cannot be trusted by a process running as `euid`: none when root or `euid` owns
/// it and nobody else may write it (a sticky directory a trusted user owns excepted).
pub fn flaws(st: Stat, euid: u32) -> Vec<Flaw> {
    let trusted_owner = st.uid == 0 || st.uid == euid;
    let mut out = Vec::new();
    if !trusted_owner {
        out.push(Flaw::Owner);
    }
    let sticky = st.dir && st.mode & 0o1000 != 0 && trusted_owner;
    if st.mode & 0o020 != 0 && !sticky {
        out.push(Flaw::GroupWritable);
    }
    if st.mode & 0o002 != 0 && !sticky {
        out.push(Flaw::OthersWritable);
    }
    out
}

/// The commands that mend `flaws` of `path` for a process running as `euid`.
pub fn fixes(path: &Path, flaws: &[Flaw], euid: u32) -> Vec<String> {
    let p = shell_word(&path.display().to_string());
    let mut out = Vec::new();
    if flaws.contains(&Flaw::Owner) {
        out.push(format!("chown {} {p}", user_name(euid)));
    }
    let who: String = [(Flaw::GroupWritable, 'g'), (Flaw::OthersWritable, 'o')]
        .iter()
        .filter(|(f, _)| flaws.contains(f))
        .map(|(_, c)| *c)
        .collect();
    if !who.is_empty() {
        out.push(format!("chmod {who}-w {p}"));
    }
    out
}

/// A path as a shell word: as it is when it needs no quoting.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A user's name, else its number.
pub fn user_name(uid: u32) -> String {
    let mut buf = vec![0u8; 4096];
    // SAFETY: an all-zero passwd is a valid value of the plain C struct, filled by getpwuid_r.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, and buf outlives the use of pwd's fields.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return uid.to_string();
    }
    // SAFETY: getpwuid_r succeeded, so pw_name points to a NUL-terminated string in buf.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    name.to_string_lossy().into_owned()
}

/// `user (uid N)`, for messages.
pub fn owner_words(uid: u32) -> String {
    let name = user_name(uid);
    if name == uid.to_string() {
        format!("uid {uid}")
    } else {
        format!("{name} (uid {uid})")
    }
}

/// The absolute form of a path, without resolving symbolic links.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Every directory above `path`, nearest first, ending with `/`.
fn ancestors(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = path
        .ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .collect();
    if out
        .last()
        .is_none_or(|l| l.components().ne([Component::RootDir]))
    {
        out.push(PathBuf::from("/"));
    }
    out
}

/// Checks a file that steers this process (`role` names it in the message: "configuration
/// file", "policy file", "hook program"): the file, every directory above it as written, and
/// every directory above what it resolves to. The first flaw found, nearest the file first.
pub fn check_steering(role: &str, path: &Path) -> Result<(), Box<UntrustedFile>> {
    check_steering_as(role, path, process_uid())
}

/// [`check_steering`] for a process running as `euid`.
pub fn check_steering_as(role: &str, path: &Path, euid: u32) -> Result<(), Box<UntrustedFile>> {
    let written = absolute(path);
    let real = std::fs::canonicalize(&written).unwrap_or_else(|_| written.clone());
    let mut seen = Vec::new();
    let chain = std::iter::once(real.clone())
        .chain(ancestors(&written))
        .chain(ancestors(&real));
    for at in chain {
        if seen.contains(&at) {
            continue;
        }
        let meta = match std::fs::metadata(&at) {
            Ok(m) => m,
            // A file that does not exist is reported where it is used, with its own error;
            // the directories above it are still checked.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                seen.push(at);
                continue;
            }
            // One that cannot be examined is not trusted: nothing says who can change it.
            Err(e) => return Err(unexamined(role, path, &at, &e, euid)),
        };
        let st = Stat::of(&meta);
        let found = flaws(st, euid);
        if !found.is_empty() {
            // The file itself is named as the caller named it.
            let shown = if at == real { path } else { at.as_path() };
            return Err(untrusted(role, path, shown, st, &found, euid));
        }
        seen.push(at);
    }
    Ok(())
}

fn untrusted(
    role: &str,
    path: &Path,
    at: &Path,
    st: Stat,
    found: &[Flaw],
    euid: u32,
) -> Box<UntrustedFile> {
    let words: Vec<&str> = found.iter().map(|f| f.words()).collect();
    Box::new(UntrustedFile {
        role: role.to_string(),
        path: path.to_path_buf(),
        at: at.to_path_buf(),
        owner: owner_words(st.uid),
        mode: format!("{:04o}", st.mode),
        problem: format!("is {}", words.join(" and ")),
        fixes: fixes(at, found, euid),
        runs_as: owner_words(euid),
    })
}

/// A file or directory whose owner and mode could not be read.
fn unexamined(
    role: &str,
    path: &Path,
    at: &Path,
    e: &std::io::Error,
    euid: u32,
) -> Box<UntrustedFile> {
    Box::new(UntrustedFile {
        role: role.to_string(),
        path: path.to_path_buf(),
        at: at.to_path_buf(),
        owner: "unknown".into(),
        mode: "unknown".into(),
        problem: format!("cannot be examined ({e})"),
        fixes: vec![format!(
            "make {} readable by {}",
            shell_word(&at.display().to_string()),
            owner_words(euid)
        )],
        runs_as: owner_words(euid),
    })
}

/// What a file holding a secret allows others.
#[derive(Debug, PartialEq, Eq)]
pub enum SecretVerdict {
    /// Only its owner and group may read it.
    Private,
    /// Others may read it: a warning, with the command that mends it.
    ReadableByOthers(String),
}

/// Checks a file that holds a secret: refused when others may write it or another user owns
/// it; a warning when others may read it.
pub fn check_secret(role: &str, path: &Path) -> Result<SecretVerdict, Box<UntrustedFile>> {
    let euid = process_uid();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        // Gone since it was read: nothing left to protect.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SecretVerdict::Private),
        Err(e) => return Err(unexamined(role, path, path, &e, euid)),
    };
    let st = Stat::of(&meta);
    let found: Vec<Flaw> = flaws(st, euid)
        .into_iter()
        .filter(|f| *f != Flaw::GroupWritable)
        .collect();
    if !found.is_empty() {
        return Err(untrusted(role, path, path, st, &found, euid));
    }
    Ok(if st.mode & 0o004 != 0 {
        SecretVerdict::ReadableByOthers(format!(
            "{}, the {role}, holds a password and every user can read it (mode {:04o}): chmod o-r {}",
            path.display(),
            st.mode,
            shell_word(&path.display().to_string())
        ))
    } else {
        SecretVerdict::Private
    })
}

/// How often the daemon repeats a warning about a file: once a day. A cron run is a new
/// process, so it warns every run.
pub const WARN_EVERY: Duration = Duration::from_secs(24 * 3600);

static WARNED: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);

/// Logs a warning unless this process logged the same one less than [`WARN_EVERY`] ago.
pub fn warn_daily(message: &str) {
    let mut guard = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    if due(
        guard.get_or_insert_with(HashMap::new),
        message,
        Instant::now(),
    ) {
        log::warn!("{message}");
    }
}

/// Whether `message` is due at `now`, given when each was last given; if so, it is noted as
/// given now.
fn due(warned: &mut HashMap<String, Instant>, message: &str, now: Instant) -> bool {
    if warned
        .get(message)
        .is_some_and(|t| now.duration_since(*t) < WARN_EVERY)
    {
        return false;
    }
    warned.insert(message.to_string(), now);
    true
}

/// A program as `execvp` finds it: a name with a `/` as it is, else the first executable file
/// of that name in `PATH`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const ME: u32 = 1000;
    const OTHER: u32 = 1001;

    fn file(uid: u32, mode: u32) -> Stat {
        Stat {
            uid,
            mode,
            dir: false,
        }
    }

    fn dir(uid: u32, mode: u32) -> Stat {
        Stat {
            uid,
            mode,
            dir: true,
        }
    }

    #[test]
    fn a_file_root_or_this_user_owns_and_only_it_writes_is_trusted() {
        for uid in [0, ME] {
            for mode in [0o644, 0o600, 0o755, 0o444, 0o640] {
                assert_eq!(flaws(file(uid, mode), ME), vec![], "{uid} {mode:o}");
            }
        }
    }

    #[test]
    fn a_file_another_user_owns_is_not_trusted_whatever_its_mode() {
        assert_eq!(flaws(file(OTHER, 0o600), ME), vec![Flaw::Owner]);
        assert_eq!(flaws(file(OTHER, 0o644), 0), vec![Flaw::Owner]);
    }

    #[test]
    fn a_file_its_group_or_every_user_may_write_is_not_trusted() {
        assert_eq!(flaws(file(0, 0o664), 0), vec![Flaw::GroupWritable]);
        assert_eq!(flaws(file(0, 0o646), 0), vec![Flaw::OthersWritable]);
        assert_eq!(
            flaws(file(0, 0o666), 0),
            vec![Flaw::GroupWritable, Flaw::OthersWritable]
        );
        assert_eq!(
            flaws(file(OTHER, 0o777), 0),
            vec![Flaw::Owner, Flaw::GroupWritable, Flaw::OthersWritable]
        );
    }

    #[test]
    fn a_sticky_directory_a_trusted_user_owns_may_be_writable_by_all() {
        // /tmp: nobody can rename or remove another user's entry in it.
        assert_eq!(flaws(dir(0, 0o1777), ME), vec![]);
        // Without the sticky bit anyone could replace the file.
        assert_eq!(
            flaws(dir(0, 0o777), ME),
            vec![Flaw::GroupWritable, Flaw::OthersWritable]
        );
        // Sticky, but its owner could replace anything in it.
        assert_eq!(
            flaws(dir(OTHER, 0o1777), ME),
            vec![Flaw::Owner, Flaw::GroupWritable, Flaw::OthersWritable]
        );
        // The sticky bit on a file means nothing.
        assert_eq!(
            flaws(file(0, 0o1777), ME),
            vec![Flaw::GroupWritable, Flaw::OthersWritable]
        );
    }

    #[test]
    fn each_flaw_has_its_fix() {
        let p = Path::new("/etc/pxcrm/manager.toml");
        assert_eq!(
            fixes(
                p,
                &[Flaw::Owner, Flaw::GroupWritable, Flaw::OthersWritable],
                0
            ),
            vec![
                "chown root /etc/pxcrm/manager.toml",
                "chmod go-w /etc/pxcrm/manager.toml"
            ]
        );
        assert_eq!(
            fixes(Path::new("/tmp/a b"), &[Flaw::OthersWritable], 0),
            vec!["chmod o-w '/tmp/a b'"]
        );
    }

    #[test]
    fn the_directories_above_a_path_end_at_the_root() {
        assert_eq!(
            ancestors(Path::new("/etc/pxcrm/manager.toml")),
            vec![
                PathBuf::from("/etc/pxcrm"),
                PathBuf::from("/etc"),
                PathBuf::from("/")
            ]
        );
        assert_eq!(ancestors(Path::new("/")), vec![PathBuf::from("/")]);
    }

    /// A private directory for a test's files, under one the test's user owns.
    fn private_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        d
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_world_writable_config_is_refused_naming_it_its_owner_mode_and_fix() {
        let d = private_dir();
        let p = d.path().join("manager.toml");
        std::fs::write(&p, "").unwrap();
        chmod(&p, 0o666);
        let e = check_steering("configuration file", &p).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&p.display().to_string()), "{text}");
        assert!(text.contains("mode 0666"), "{text}");
        assert!(text.contains(&user_name(process_uid())), "{text}");
        assert!(
            text.contains(&format!("chmod go-w {}", p.display())),
            "{text}"
        );
        chmod(&p, 0o644);
        check_steering("configuration file", &p).unwrap();
    }

    #[test]
    fn a_writable_directory_above_the_file_is_refused_too() {
        let d = private_dir();
        let sub = d.path().join("etc");
        std::fs::create_dir(&sub).unwrap();
        let p = sub.join("policy.rhai");
        std::fs::write(&p, "").unwrap();
        chmod(&sub, 0o777);
        let e = check_steering("policy file", &p).unwrap_err();
        assert_eq!(e.at, sub);
        assert!(e.to_string().contains("chmod go-w"), "{e}");
        chmod(&sub, 0o755);
        check_steering("policy file", &p).unwrap();
    }

    #[test]
    fn a_path_that_cannot_be_examined_is_not_trusted() {
        // Below a plain file: stat fails with "not a directory", not "not found".
        let d = private_dir();
        let f = d.path().join("plain");
        std::fs::write(&f, "").unwrap();
        let e = check_steering("policy file", &f.join("policy.rhai")).unwrap_err();
        assert!(e.to_string().contains("cannot be examined"), "{e}");
        // A file that does not exist is left to the error of whoever reads it.
        check_steering("policy file", &d.path().join("missing.rhai")).unwrap();
    }

    #[test]
    fn a_symlink_is_judged_by_what_it_points_to() {
        let d = private_dir();
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        let target = open.join("hook");
        std::fs::write(&target, "").unwrap();
        chmod(&open, 0o777);
        let link = d.path().join("hook");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = check_steering("hook program", &link).unwrap_err();
        assert_eq!(e.at, open);
    }

    #[test]
    fn a_secret_others_may_read_is_a_warning_and_one_they_may_write_is_refused() {
        let d = private_dir();
        let p = d.path().join("repl.password");
        std::fs::write(&p, "x\n").unwrap();
        chmod(&p, 0o600);
        assert_eq!(
            check_secret("password file", &p).unwrap(),
            SecretVerdict::Private
        );
        chmod(&p, 0o640);
        assert_eq!(
            check_secret("password file", &p).unwrap(),
            SecretVerdict::Private
        );
        chmod(&p, 0o644);
        match check_secret("password file", &p).unwrap() {
            SecretVerdict::ReadableByOthers(w) => assert!(w.contains("chmod o-r"), "{w}"),
            v => panic!("{v:?}"),
        }
        chmod(&p, 0o666);
        let e = check_secret("password file", &p).unwrap_err();
        assert!(e.to_string().contains("chmod o-w"), "{e}");
    }

    #[test]
    fn a_warning_comes_again_a_day_later_not_before() {
        let mut warned = HashMap::new();
        let t0 = Instant::now();
        assert!(due(&mut warned, "a", t0));
        assert!(!due(&mut warned, "a", t0 + Duration::from_secs(3600)));
        assert!(due(&mut warned, "b", t0 + Duration::from_secs(3600)));
        assert!(!due(
            &mut warned,
            "a",
            t0 + WARN_EVERY - Duration::from_secs(1)
        ));
        assert!(due(&mut warned, "a", t0 + WARN_EVERY));
    }

    #[test]
    fn a_program_without_a_slash_is_found_in_path() {
        assert_eq!(find_program("/x/y"), Some(PathBuf::from("/x/y")));
        assert!(find_program("sh").is_some_and(|p| p.is_absolute()));
        assert_eq!(find_program("no-such-program-pxcrm"), None);
    }
}
