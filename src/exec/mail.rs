//! Notifications: what a mail says, and its delivery through lettre (sendmail, SMTP, or a
//! directory of `.eml` files).
//!
//! Only the executor calls [`deliver`]; dry-run and simulation print [`Mail::lines`] instead.
//! Over SMTP, one mail takes at most `[mail] timeout`, connect included, whatever the server
//! does: a server that is down, refuses or answers slowly costs the run that long at most and
//! is an error naming the server ([`MailError`]).
//!
//! `smtp_security`: `none` speaks plain SMTP and never upgrades, even when the server offers
//! STARTTLS (lettre's `Tls::None`); `starttls` requires the upgrade and sends nothing,
//! credentials included, if the server does not offer it; `tls` is TLS from the first byte
//! (port 465). The server's certificate is checked against the built-in roots plus
//! `smtp_ca_file`. lettre would send a login over a plain connection if the server offered
//! AUTH there; the config refuses `smtp_user` with `none` except to a relay on this machine.

use crate::config::{Delivery, MailConfig, SmtpConfig, SmtpSecurity};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{FileTransport, Message, SendmailTransport, SmtpTransport, Transport as _};
use std::time::Duration;

pub use crate::error::MailError;

/// One notification. The host makes its subject (the cluster, the link, the node and its role,
/// then the policy's subject) and ends its body with the link's facts (`host::facts`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub body: String,
    /// A host event's mail: what its once-per-outage rule knows it by. `None` for the
    /// policy's own `notify` and for mail outside a link.
    pub once: Option<Once>,
}

/// What the once-per-outage rule knows a host event's mail by: the link and the event (with
/// the peer it is about, when one kind of event may concern several). The model checker
/// reads it to check that rule against its own notion of an outage.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Once {
    /// The link's key.
    pub link: String,
    pub event: String,
}

impl Mail {
    /// The subject line as sent: `<prefix> <subject>`.
    pub fn full_subject(&self, cfg: &MailConfig) -> String {
        format!("{} {}", cfg.subject_prefix, self.subject)
    }

    /// The mail as printed by dry-run and simulate: a header line, then the body indented.
    pub fn lines(&self, cfg: &MailConfig) -> Vec<String> {
        let to = if cfg.to.is_empty() {
            "(no recipients configured)".to_string()
        } else {
            cfg.to.join(", ")
        };
        let subject = crate::error::printable(&self.full_subject(cfg));
        let mut v = vec![format!("MAIL to {to}: {subject}")];
        v.extend(
            self.body
                .lines()
                .map(|l| format!("    | {}", crate::error::printable(l))),
        );
        v
    }
}

/// Sends a mail through the configured transport. With `transport = "none"` it does nothing.
pub fn deliver(cfg: &MailConfig, mail: &Mail) -> Result<(), MailError> {
    if cfg.delivery == Delivery::None {
        return Ok(());
    }
    let msg = message(cfg, mail)?;
    match &cfg.delivery {
        Delivery::None => Ok(()),
        Delivery::Sendmail { command } => {
            let t = match command {
                Some(c) => SendmailTransport::new_with_command(c.as_os_str()),
                None => SendmailTransport::new(),
            };
            t.send(&msg).map(|_| ()).map_err(MailError::Sendmail)
        }
        Delivery::File { directory } => {
            let dir = directory.clone();
            std::fs::create_dir_all(&dir).map_err(|source| MailError::Directory {
                dir: dir.clone(),
                source,
            })?;
            FileTransport::new(&dir)
                .send(&msg)
                .map(|_| ())
                .map_err(|source| MailError::File { dir, source })
        }
        Delivery::Smtp(s) => send_smtp(s, cfg.timeout, msg),
    }
}

/// Sends a run's mails in order, logging each failure with the server and the reason; after
/// one fails, the rest are not tried (each is logged as not sent), so a server that is down or
/// hangs costs the run one `[mail] timeout` at most. Returns how many were not sent.
pub fn send_queued(cfg: &MailConfig, node: &str, mails: Vec<Mail>) -> usize {
    let mut failures = 0;
    let mut failed: Option<String> = None;
    for m in mails {
        let subject = crate::error::printable(&m.subject);
        if let Some(why) = &failed {
            failures += 1;
            log::error!(
                "{node}: mail not sent: {subject:?}: the mail before it in this run failed ({why}), so no more is tried in this run. Replication is not affected"
            );
            continue;
        }
        let started = std::time::Instant::now();
        match deliver(cfg, &m) {
            Ok(()) => log::debug!(
                "{node}: mail sent in {:.1} s: {subject:?}",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                failures += 1;
                log::error!(
                    "{node}: could not send the mail {subject:?} (gave up after {:.1} s): {e}. Replication is not affected; check the [mail] section",
                    started.elapsed().as_secs_f64()
                );
                failed = Some(e.to_string());
            }
        }
    }
    failures
}

/// The message: From, To, Subject, Date, Message-ID, a plain-text body.
fn message(cfg: &MailConfig, mail: &Mail) -> Result<Message, MailError> {
    let address = |field, value: &str| {
        value.parse().map_err(|source| MailError::Address {
            field,
            value: value.to_string(),
            source,
        })
    };
    let mut b = Message::builder()
        .from(address("from", &cfg.from)?)
        .subject(mail.full_subject(cfg))
        .message_id(None)
        .header(ContentType::TEXT_PLAIN);
    for to in &cfg.to {
        b = b.to(address("to", to)?);
    }
    b.body(mail.body.clone()).map_err(MailError::Build)
}

/// The SMTP port: `smtp_port`, else the security's standard one.
pub fn smtp_port(cfg: &SmtpConfig) -> u16 {
    cfg.port.unwrap_or(match cfg.security {
        SmtpSecurity::None => 25,
        SmtpSecurity::Starttls => 587,
        SmtpSecurity::Tls => 465,
    })
}

/// The SMTP server as errors name it: `host:port (security)`.
fn smtp_server(cfg: &SmtpConfig) -> String {
    let mode = match cfg.security {
        SmtpSecurity::None => "plain",
        SmtpSecurity::Starttls => "STARTTLS",
        SmtpSecurity::Tls => "TLS",
    };
    format!("{}:{} ({mode})", cfg.host, smtp_port(cfg))
}

/// The SMTP transport as configured: security, port, trusted CA, credentials, timeout.
fn smtp_transport(cfg: &SmtpConfig, timeout: Duration) -> Result<SmtpTransport, MailError> {
    let host = cfg.host.as_str();
    let server = || smtp_server(cfg);
    let tls = || -> Result<TlsParameters, MailError> {
        let mut b = TlsParameters::builder(host.to_string());
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path).map_err(|source| MailError::CaFile {
                path: path.clone(),
                why: source.to_string(),
            })?;
            let cert = Certificate::from_pem(&pem).map_err(|e| MailError::CaFile {
                path: path.clone(),
                why: e.to_string(),
            })?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls().map_err(|source| MailError::Smtp {
            server: server(),
            source,
        })
    };
    let mut builder = SmtpTransport::builder_dangerous(host).port(smtp_port(cfg));
    builder = match cfg.security {
        SmtpSecurity::None => builder.tls(Tls::None),
        SmtpSecurity::Starttls => builder.tls(Tls::Required(tls()?)),
        SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
    };
    if let (Some(u), Some(p)) = (&cfg.user, &cfg.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.expose().to_string()));
    }
    Ok(builder.timeout(Some(timeout)).build())
}

/// Sends over SMTP within `[mail] timeout` in all: each command has that timeout, and a server
/// that answers every command just in time is given up at the same deadline (the sending
/// thread is left to end on its own socket timeouts).
fn send_smtp(cfg: &SmtpConfig, timeout: Duration, msg: Message) -> Result<(), MailError> {
    let transport = smtp_transport(cfg, timeout)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("smtp".into())
        .spawn(move || {
            let _ = tx.send(transport.send(&msg).map(|_| ()));
        });
    if let Err(e) = spawned {
        return Err(MailError::Thread(e));
    }
    let gave_up = || MailError::SmtpTimeout {
        server: smtp_server(cfg),
        seconds: timeout.as_secs(),
    };
    match rx.recv_timeout(timeout + MARGIN) {
        Ok(Err(e)) if timed_out(&e) => Err(gave_up()),
        Ok(r) => r.map_err(|source| MailError::Smtp {
            server: smtp_server(cfg),
            source,
        }),
        Err(_) => Err(gave_up()),
    }
}

/// Whether an SMTP error is a command's timeout: a socket read timeout is `WouldBlock` on
/// Unix ("Resource temporarily unavailable"), which lettre's `is_timeout` does not count.
fn timed_out(e: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            );
        }
        source = err.source();
    }
    false
}

/// What the sending thread is given past `[mail] timeout` to report its own, more precise,
/// error (a command's timeout) before the overall deadline is the error.
const MARGIN: Duration = Duration::from_millis(200);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn printed_mail_shows_recipients_subject_and_body() {
        let cfg = Config::parse("[mail]\nto = [\"dba@example.com\"]\n", Path::new("c"))
            .unwrap()
            .mail;
        let m = Mail {
            subject: "DC1-DC2: new replica".into(),
            body: "line one\nline two".into(),
            once: None,
        };
        assert_eq!(
            m.lines(&cfg),
            vec![
                "MAIL to dba@example.com: [pxc-replication-manager] DC1-DC2: new replica",
                "    | line one",
                "    | line two"
            ]
        );
    }

    #[test]
    fn sendmail_transport_pipes_the_message_to_the_command() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pxcrm-sendmail-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("sendmail");
        let out = dir.join("out.eml");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" > {0}.args\ncat > {0}\n",
                out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let text = format!(
            "[mail]\ntransport = \"sendmail\"\nsendmail_command = \"{}\"\nto = [\"dba@example.com\"]\n",
            script.display()
        );
        let cfg = Config::parse(&text, Path::new("c")).unwrap().mail;
        deliver(
            &cfg,
            &Mail {
                subject: "DC1-DC2: DC1-1 failed".into(),
                body: "why".into(),
                once: None,
            },
        )
        .unwrap();
        let mail = std::fs::read_to_string(&out).unwrap();
        assert!(mail.contains("Subject: [pxc-replication-manager] DC1-DC2: DC1-1 failed"));
        assert!(mail.contains("To: dba@example.com"));
        let args = std::fs::read_to_string(dir.join("out.eml.args")).unwrap();
        assert!(args.contains("dba@example.com"), "{args}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failing_transport_is_an_error_not_a_panic() {
        let text = "[mail]\ntransport = \"sendmail\"\nsendmail_command = \"/nonexistent/sendmail\"\nto = [\"dba@example.com\"]\n";
        let cfg = Config::parse(text, Path::new("c")).unwrap().mail;
        let m = Mail {
            subject: "s".into(),
            body: "b".into(),
            once: None,
        };
        assert!(
            deliver(&cfg, &m)
                .unwrap_err()
                .to_string()
                .starts_with("sendmail:")
        );
    }

    #[test]
    fn file_transport_writes_an_eml_file() {
        let dir = std::env::temp_dir().join(format!("pxcrm-mail-test-{}", std::process::id()));
        let text = format!(
            "[mail]\ntransport = \"file\"\ndirectory = \"{}\"\nto = [\"dba@example.com\"]\nfrom = \"pxcrm@example.com\"\n",
            dir.display()
        );
        let cfg = Config::parse(&text, Path::new("c")).unwrap().mail;
        deliver(
            &cfg,
            &Mail {
                subject: "hello".into(),
                body: "body".into(),
                once: None,
            },
        )
        .unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        assert!(text.contains("Subject: [pxc-replication-manager] hello"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
