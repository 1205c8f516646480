//! `[mail]`: who is told, and how the mail leaves (the transport and its own settings).

use super::{Source, read_secret};
use crate::db::sql::Secret;
use crate::error::ConfigError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// No mail; notifications are only logged.
    None,
    /// The local `sendmail` program.
    Sendmail,
    /// An SMTP relay.
    Smtp,
    /// Write each mail as a file into `directory` (tests, or a spool another tool picks up).
    File,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    None,
    Starttls,
    Tls,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailConfig {
    /// How mail leaves this node, with what that way needs.
    pub delivery: Delivery,
    pub to: Vec<String>,
    pub from: String,
    pub subject_prefix: String,
    /// The longest one mail may take to send over SMTP, connect included; also the timeout of
    /// each command.
    pub timeout: Duration,
}

/// How mail leaves this node (`[mail] transport`), with the settings of that way and no
/// other: a checked config cannot name an SMTP host without SMTP, or SMTP without a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// No mail; notifications are only logged.
    None,
    /// The local `sendmail` program (`sendmail_command`, else `sendmail` in `PATH`).
    Sendmail { command: Option<PathBuf> },
    /// An SMTP relay.
    Smtp(SmtpConfig),
    /// Each mail as a file in `directory`.
    File { directory: PathBuf },
}

impl Delivery {
    /// The transport, as `[mail] transport` names it.
    pub fn transport(&self) -> Transport {
        match self {
            Delivery::None => Transport::None,
            Delivery::Sendmail { .. } => Transport::Sendmail,
            Delivery::Smtp(_) => Transport::Smtp,
            Delivery::File { .. } => Transport::File,
        }
    }
}

/// An SMTP relay's settings (`[mail] smtp_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    /// `None`: the security's standard port.
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// A PEM file of CA certificates trusted for the server's certificate, besides the
    /// built-in roots (an internal CA).
    pub ca_file: Option<PathBuf>,
}

/// `[mail] timeout` when not set: long enough for a relay across a WAN, short enough that a
/// cron run with a dead relay still ends well within its minute.
pub const DEFAULT_MAIL_TIMEOUT: u64 = 10;
/// The longest `[mail] timeout` accepted.
pub const MAX_MAIL_TIMEOUT: u64 = 120;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMail {
    transport: Option<Transport>,
    to: Option<Vec<String>>,
    from: Option<String>,
    subject_prefix: Option<String>,
    sendmail_command: Option<PathBuf>,
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    smtp_security: Option<SmtpSecurity>,
    smtp_user: Option<String>,
    smtp_password_file: Option<Spanned<PathBuf>>,
    smtp_ca_file: Option<Spanned<PathBuf>>,
    timeout: Option<Spanned<u64>>,
    directory: Option<PathBuf>,
}

impl RawMail {
    /// `[mail]`: the transport and what it needs, the files it names, the time a mail may
    /// take; checked in that order, so the first mistake is the one reported.
    pub(super) fn check(self, src: &Source) -> Result<MailConfig, ConfigError> {
        let transport = self.transport(src)?;
        let password = self.smtp_password(src)?;
        let ca_file = self.smtp_ca_file(src)?;
        let timeout = self.timeout(src)?;
        self.refuse_a_login_in_clear(transport, src)?;
        Ok(self.into_checked(transport, password, ca_file, timeout, src))
    }

    /// The transport, as set or as implied by `to` (`sendmail` with recipients, `none`
    /// without), and the settings it cannot go without.
    fn transport(&self, src: &Source) -> Result<Transport, ConfigError> {
        let nobody = self.to.as_deref().unwrap_or_default().is_empty();
        let transport = self.transport.unwrap_or(if nobody {
            Transport::None
        } else {
            Transport::Sendmail
        });
        if transport != Transport::None && nobody {
            return Err(src.at(
                None,
                "[mail] to: list at least one recipient, or set transport = \"none\"".into(),
            ));
        }
        if transport == Transport::Smtp && self.smtp_host.is_none() {
            return Err(src.at(
                None,
                "[mail] smtp_host: required with transport = \"smtp\"".into(),
            ));
        }
        if transport == Transport::File && self.directory.is_none() {
            return Err(src.at(
                None,
                "[mail] directory: required with transport = \"file\"".into(),
            ));
        }
        Ok(transport)
    }

    /// `smtp_password_file`, read now, whatever the transport, so a missing one is reported
    /// before anything is sent.
    fn smtp_password(&self, src: &Source) -> Result<Option<Secret>, ConfigError> {
        let Some(p) = &self.smtp_password_file else {
            return Ok(None);
        };
        let password = read_secret(&src.rel(p.get_ref().clone()))
            .map_err(|e| src.at(Some(p.span()), format!("[mail] smtp_password_file: {e}")))?;
        Ok(Some(password))
    }

    /// `smtp_ca_file`, relative to the config file; it must hold a PEM certificate.
    fn smtp_ca_file(&self, src: &Source) -> Result<Option<PathBuf>, ConfigError> {
        let Some(p) = &self.smtp_ca_file else {
            return Ok(None);
        };
        let path = src.rel(p.get_ref().clone());
        check_pem(&path)
            .map_err(|e| src.at(Some(p.span()), format!("[mail] smtp_ca_file: {e}")))?;
        Ok(Some(path))
    }

    /// `timeout`: 1 s to [`MAX_MAIL_TIMEOUT`], [`DEFAULT_MAIL_TIMEOUT`] when not set.
    fn timeout(&self, src: &Source) -> Result<Duration, ConfigError> {
        match &self.timeout {
            Some(t) if !(1..=MAX_MAIL_TIMEOUT).contains(t.get_ref()) => Err(src.at(
                Some(t.span()),
                format!(
                    "[mail] timeout: {} is out of range: 1 to {MAX_MAIL_TIMEOUT} seconds",
                    t.get_ref()
                ),
            )),
            Some(t) => Ok(Duration::from_secs(*t.get_ref())),
            None => Ok(Duration::from_secs(DEFAULT_MAIL_TIMEOUT)),
        }
    }

    /// `smtp_security`, STARTTLS when not set.
    fn security(&self) -> SmtpSecurity {
        self.smtp_security.unwrap_or(SmtpSecurity::Starttls)
    }

    /// lettre sends credentials over a plain connection when the server offers AUTH there:
    /// refused, except to a relay on this machine.
    fn refuse_a_login_in_clear(
        &self,
        transport: Transport,
        src: &Source,
    ) -> Result<(), ConfigError> {
        let host = self.smtp_host.as_deref().unwrap_or_default();
        if transport == Transport::Smtp
            && self.security() == SmtpSecurity::None
            && self.smtp_user.is_some()
            && !is_loopback(host)
        {
            return Err(src.at(
                None,
                format!(
                    "[mail] smtp_user with smtp_security = \"none\" would send the password in clear to {host}: use \"starttls\" or \"tls\" (plain with a login is accepted only to a relay on this machine: localhost, 127.0.0.0/8, ::1)"
                ),
            ));
        }
        Ok(())
    }

    /// The checked `[mail]`, once every rule holds: the transport's own settings, and no other,
    /// in its [`Delivery`].
    fn into_checked(
        self,
        transport: Transport,
        password: Option<Secret>,
        ca_file: Option<PathBuf>,
        timeout: Duration,
        src: &Source,
    ) -> MailConfig {
        let security = self.security();
        let delivery = match transport {
            Transport::None => Delivery::None,
            Transport::Sendmail => Delivery::Sendmail {
                command: self.sendmail_command,
            },
            Transport::Smtp => Delivery::Smtp(SmtpConfig {
                host: self.smtp_host.unwrap_or_default(),
                port: self.smtp_port,
                security,
                user: self.smtp_user,
                password,
                ca_file,
            }),
            Transport::File => Delivery::File {
                directory: self.directory.map(|p| src.rel(p)).unwrap_or_default(),
            },
        };
        MailConfig {
            delivery,
            to: self.to.unwrap_or_default(),
            from: self
                .from
                .unwrap_or_else(|| "pxc-replication-manager@localhost".into()),
            subject_prefix: self
                .subject_prefix
                .unwrap_or_else(|| "[pxc-replication-manager]".into()),
            timeout,
        }
    }
}

/// Whether a host name is this machine: `localhost`, 127.0.0.0/8 or `::1`.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// That a file holds at least one PEM certificate.
fn check_pem(path: &Path) -> Result<(), String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !String::from_utf8_lossy(&text).contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "{}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    #[test]
    fn mail_needs_recipients_and_a_way_out() {
        assert!(parse("[mail]\ntransport = \"smtp\"\nto = [\"a@b\"]\n").is_err());
        assert!(parse("[mail]\ntransport = \"file\"\nto = [\"a@b\"]\n").is_err());
        assert!(parse("[mail]\ntransport = \"pigeon\"\n").is_err());
        let c = parse("[mail]\nto = [\"a@b\"]\n").unwrap();
        assert_eq!(c.mail.delivery.transport(), Transport::Sendmail);
    }

    #[test]
    fn mail_timeout_is_bounded_and_defaults_short() {
        let c = parse("[mail]\nto = [\"a@b\"]\n").unwrap();
        assert_eq!(c.mail.timeout, Duration::from_secs(DEFAULT_MAIL_TIMEOUT));
        let c = parse("[mail]\nto = [\"a@b\"]\ntimeout = 3\n").unwrap();
        assert_eq!(c.mail.timeout, Duration::from_secs(3));
        for bad in ["0", "121"] {
            let e = parse(&format!("[mail]\nto = [\"a@b\"]\ntimeout = {bad}\n")).unwrap_err();
            assert_eq!(e.line, Some(3), "{e}");
            assert!(e.message.contains("[mail] timeout"), "{e}");
        }
    }

    #[test]
    fn mail_ca_file_must_hold_a_pem_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(
            &good,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let bad = dir.path().join("ca.txt");
        std::fs::write(&bad, "not a certificate").unwrap();
        let text = |p: &Path| {
            format!(
                "[mail]\ntransport = \"smtp\"\nsmtp_host = \"relay\"\nto = [\"a@b\"]\nsmtp_ca_file = \"{}\"\n",
                p.display()
            )
        };
        match parse(&text(&good)).unwrap().mail.delivery {
            Delivery::Smtp(s) => assert_eq!(s.ca_file, Some(good)),
            other => panic!("{other:?}"),
        }
        for p in [bad, dir.path().join("missing.pem")] {
            let e = parse(&text(&p)).unwrap_err();
            assert_eq!(e.line, Some(5), "{e}");
            assert!(e.message.contains("[mail] smtp_ca_file"), "{e}");
        }
    }

    #[test]
    fn a_login_over_plain_smtp_is_refused_except_on_this_machine() {
        let text = |host: &str| {
            format!(
                "[mail]\ntransport = \"smtp\"\nsmtp_host = \"{host}\"\nsmtp_security = \"none\"\nsmtp_user = \"u\"\nto = [\"a@b\"]\n"
            )
        };
        let e = parse(&text("relay.example.com")).unwrap_err();
        assert!(e.message.contains("in clear"), "{e}");
        for host in ["localhost", "127.0.0.1", "::1"] {
            parse(&text(host)).unwrap();
        }
    }
}
