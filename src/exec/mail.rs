//! Notifications: what a mail says, and its delivery through lettre (sendmail, SMTP, or a
//! directory of `.eml` files).
//!
//! Only the executor calls [`deliver`]; dry-run and simulation print [`Mail::lines`] instead.

use crate::config::{MailConfig, SmtpSecurity, Transport};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{FileTransport, Message, SendmailTransport, SmtpTransport, Transport as _};
use std::time::Duration;

pub use crate::error::MailError;

/// One notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub body: String,
}

impl Mail {
    /// The subject line as sent: `<prefix> <node>: <subject>`.
    pub fn full_subject(&self, cfg: &MailConfig, node: &str) -> String {
        format!("{} {node}: {}", cfg.subject_prefix, self.subject)
    }

    /// The mail as printed by dry-run and simulate: a header line, then the body indented.
    pub fn lines(&self, cfg: &MailConfig, node: &str) -> Vec<String> {
        let to = if cfg.to.is_empty() {
            "(no recipients configured)".to_string()
        } else {
            cfg.to.join(", ")
        };
        let subject = crate::error::printable(&self.full_subject(cfg, node));
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
pub fn deliver(cfg: &MailConfig, node: &str, mail: &Mail) -> Result<(), MailError> {
    if cfg.transport == Transport::None {
        return Ok(());
    }
    let address = |field, value: &str| {
        value.parse().map_err(|source| MailError::Address {
            field,
            value: value.to_string(),
            source,
        })
    };
    let mut b = Message::builder()
        .from(address("from", &cfg.from)?)
        .subject(mail.full_subject(cfg, node))
        .header(ContentType::TEXT_PLAIN);
    for to in &cfg.to {
        b = b.to(address("to", to)?);
    }
    let msg = b.body(mail.body.clone()).map_err(MailError::Build)?;
    match cfg.transport {
        Transport::None => Ok(()),
        Transport::Sendmail => {
            let t = match &cfg.sendmail_command {
                Some(c) => SendmailTransport::new_with_command(c.as_os_str()),
                None => SendmailTransport::new(),
            };
            t.send(&msg).map(|_| ()).map_err(MailError::Sendmail)
        }
        Transport::File => {
            let dir = cfg.directory.clone().unwrap_or_default();
            std::fs::create_dir_all(&dir).map_err(|source| MailError::Directory {
                dir: dir.clone(),
                source,
            })?;
            FileTransport::new(&dir)
                .send(&msg)
                .map(|_| ())
                .map_err(|source| MailError::File { dir, source })
        }
        Transport::Smtp => {
            let host = cfg.smtp_host.as_str();
            let builder = match cfg.smtp_security {
                SmtpSecurity::Tls => SmtpTransport::relay(host),
                SmtpSecurity::Starttls => SmtpTransport::starttls_relay(host),
                SmtpSecurity::None => Ok(SmtpTransport::builder_dangerous(host)),
            }
            .map_err(|source| MailError::Smtp {
                host: host.to_string(),
                source,
            })?;
            let mut builder = builder.timeout(Some(Duration::from_secs(20)));
            if let Some(p) = cfg.smtp_port {
                builder = builder.port(p);
            }
            if let (Some(u), Some(p)) = (&cfg.smtp_user, &cfg.smtp_password) {
                builder = builder.credentials(Credentials::new(u.clone(), p.expose().to_string()));
            }
            builder
                .build()
                .send(&msg)
                .map(|_| ())
                .map_err(|source| MailError::Smtp {
                    host: host.to_string(),
                    source,
                })
        }
    }
}

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
        };
        assert_eq!(
            m.lines(&cfg, "DC1-1"),
            vec![
                "MAIL to dba@example.com: [pxc-replication-manager] DC1-1: DC1-DC2: new replica",
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
            "DC1-1",
            &Mail {
                subject: "DC1-DC2: DC1-1 failed".into(),
                body: "why".into(),
            },
        )
        .unwrap();
        let mail = std::fs::read_to_string(&out).unwrap();
        assert!(mail.contains("Subject: [pxc-replication-manager] DC1-1: DC1-DC2: DC1-1 failed"));
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
        };
        assert!(
            deliver(&cfg, "n", &m)
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
            "DC1-1",
            &Mail {
                subject: "hello".into(),
                body: "body".into(),
            },
        )
        .unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        assert!(text.contains("Subject: [pxc-replication-manager] DC1-1: hello"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
