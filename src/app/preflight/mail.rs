//! `check`'s `mail` lines: the transport's settings and recipients, and `--send-test-mail`.

use super::{Options, Preflight, tempfile_in};
use crate::config::Config;
use std::path::PathBuf;

/// Mail's transport and recipients; with `--send-test-mail`, a mail sent through them.
pub(super) fn mail(cfg: &Config, opts: &Options, p: &mut Preflight) {
    use crate::config::Delivery;
    let m = &cfg.mail;
    transport(m, p);
    if m.delivery != Delivery::None && m.to.is_empty() {
        p.fail(
            "mail.to",
            "no recipient",
            "set [mail] to = [\"dba@example.com\"]",
        );
    }
    if opts.send_test_mail {
        test_mail(m, p);
    }
}

/// Whether the configured transport can carry a mail: the command, the directory or the relay.
fn transport(m: &crate::config::MailConfig, p: &mut Preflight) {
    use crate::config::Delivery;
    match &m.delivery {
        Delivery::None => p.warn(
            "mail.transport",
            "none: state changes are only logged",
            "set [mail] transport (sendmail, smtp or file) and to",
        ),
        Delivery::Sendmail { command } => {
            let cmd = command.clone().unwrap_or_else(|| PathBuf::from("sendmail"));
            match which(&cmd) {
                Some(path) => p.ok("mail.transport", format!("sendmail ({})", path.display())),
                None => p.fail(
                    "mail.transport",
                    format!("sendmail: {} is not found or not executable", cmd.display()),
                    "install an MTA (Debian: default-mta) or set [mail] sendmail_command",
                ),
            }
        }
        Delivery::File { directory } => {
            let dir = directory.clone();
            match std::fs::create_dir_all(&dir).and_then(|_| tempfile_in(&dir)) {
                Ok(()) => p.ok("mail.transport", format!("file, into {}", dir.display())),
                Err(e) => p.fail(
                    "mail.transport",
                    format!("file: cannot write into {}: {e}", dir.display()),
                    "create the directory and let the manager write there",
                ),
            }
        }
        Delivery::Smtp(s) => {
            let port = crate::exec::mail::smtp_port(s);
            let addr = format!("{}:{port}", s.host);
            match crate::exec::conn::tcp_reachable(&s.host, port, m.timeout) {
                Ok(()) => p.ok(
                    "mail.transport",
                    format!("smtp {addr} accepts a connection ({:?})", s.security),
                ),
                Err(e) => p.fail(
                    "mail.transport",
                    format!(
                        "smtp {addr}: no connection within {} s: {e}",
                        m.timeout.as_secs()
                    ),
                    "check [mail] smtp_host and smtp_port, and the network to the relay",
                ),
            }
        }
    }
}

/// `--send-test-mail`: one mail, sent through the transport.
fn test_mail(m: &crate::config::MailConfig, p: &mut Preflight) {
    use crate::config::Delivery;
    let node = p.node.clone().unwrap_or_else(|| "this node".into());
    let mail = crate::exec::mail::Mail {
        subject: format!("test mail from {node}"),
        body: format!(
            "`pxc-replication-manager check --send-test-mail` on {node} sent this mail through [mail] transport = {:?}. If you read it, state changes will reach you too.",
            m.delivery.transport()
        ),
        once: None,
    };
    match crate::exec::mail::deliver(m, &mail) {
        Ok(()) if m.delivery == Delivery::None => p.warn(
            "mail.test",
            "not sent: transport = none",
            "set [mail] transport",
        ),
        Ok(()) => p.ok(
            "mail.test",
            format!("sent to {}: {:?}", m.to.join(", "), mail.full_subject(m)),
        ),
        Err(e) => p.fail("mail.test", e.to_string(), "check the [mail] section"),
    }
}

/// The command as `PATH` finds it, if it is an executable file.
fn which(cmd: &std::path::Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let exec = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if cmd.components().count() > 1 {
        return exec(cmd).then(|| cmd.to_path_buf());
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin".into(), "/usr/lib".into()])
        .map(|d| d.join(cmd))
        .find(|p| exec(p))
}
