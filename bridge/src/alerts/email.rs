//! Alert e-mail over SMTP (lettre): STARTTLS or implicit TLS on rustls,
//! AUTH PLAIN/LOGIN, one plain-text message per notification.

use super::dispatch::SendError;
use super::model::Notification;
use super::{EmailConfig, SmtpSecurity};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// `host:port`, for error messages.
    server: String,
}

impl EmailNotifier {
    /// Checks the config (`what` is its place, `alerts.email[0]`) and
    /// builds the transport; connects only when sending.
    pub fn new(what: &str, cfg: &EmailConfig) -> anyhow::Result<EmailNotifier> {
        let mailbox = |key: &str, text: &str| {
            text.parse::<Mailbox>().map_err(|e| {
                anyhow::anyhow!(
                    "{what}.{key}: `{text}` is not an e-mail address like `Hearth <hearth@example.com>` ({e})"
                )
            })
        };
        let from = mailbox("from", &cfg.from)?;
        if cfg.to.is_empty() {
            anyhow::bail!("{what}.to: expected at least one recipient");
        }
        let to = cfg
            .to
            .iter()
            .map(|t| mailbox("to", t))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if cfg.host.trim().is_empty() {
            anyhow::bail!("{what}.host: expected the SMTP server's name");
        }
        let port = cfg.port.unwrap_or(match cfg.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        });
        let tls = match cfg.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::Starttls => Tls::Required(tls_parameters(what, cfg)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(what, cfg)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            .port(port)
            .tls(tls)
            .timeout(Some(super::timeout(what, cfg.timeout_s)?));
        if let Some(user) = &cfg.username {
            let password = password(what, cfg)?;
            builder = builder
                .credentials(Credentials::new(user.clone(), password))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        } else if cfg.password.is_some() || cfg.password_file.is_some() {
            anyhow::bail!("{what}: a password without `username`");
        }
        Ok(EmailNotifier {
            transport: builder.build(),
            from,
            to,
            server: format!("{}:{port}", cfg.host),
        })
    }

    pub async fn send(&self, n: &Notification) -> Result<(), SendError> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(format!("Hearth: {}", n.headline()))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message.body(n.body()).map_err(|e| SendError {
            message: format!("could not build the e-mail: {e}"),
            permanent: true,
        })?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SendError {
                // Authentication, TLS and protocol errors will not go away by
                // retrying; a timeout or a refused connection may.
                permanent: e.is_permanent() || e.is_tls() || e.is_client(),
                message: format!("SMTP server {}: {e}", self.server),
            })
    }
}

fn tls_parameters(what: &str, cfg: &EmailConfig) -> anyhow::Result<TlsParameters> {
    let mut b = TlsParameters::builder(cfg.host.clone());
    if let Some(path) = &cfg.ca_file {
        let pem = super::read_ca_file(what, path)?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| anyhow::anyhow!("{what}.ca_file {}: {e}", path.display()))?;
        b = b.add_root_certificate(cert);
    }
    b.build_rustls()
        .map_err(|e| anyhow::anyhow!("{what}: TLS setup: {e}"))
}

fn password(what: &str, cfg: &EmailConfig) -> anyhow::Result<String> {
    match (&cfg.password, &cfg.password_file) {
        (Some(_), Some(_)) => {
            anyhow::bail!("{what}: set `password` or `password_file`, not both")
        }
        (Some(p), None) => Ok(p.expose().to_string()),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|p| p.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| anyhow::anyhow!("{what}.password_file {}: {e}", path.display())),
        (None, None) => anyhow::bail!("{what}: `username` without `password` or `password_file`"),
    }
}
