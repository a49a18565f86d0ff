//! Alert webhooks: one JSON POST per notification, in our own shape or
//! one that ntfy or a Slack incoming webhook (and the many services that
//! copy Slack's `{"text": …}`) accept.

use super::WebhookConfig;
use super::dispatch::SendError;
use super::model::{Notification, NotifyKind, Severity};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue, USER_AGENT};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// The body's shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"event": "raised", "alert": {…the alert…}}`.
    #[default]
    Json,
    /// ntfy's JSON publishing (docs.ntfy.sh "Publish as JSON"): POST to the
    /// server root with `topic`, `title`, `message`, `priority`, `tags`.
    Ntfy,
    /// `{"text": "…"}` (Slack incoming webhooks, Mattermost, Rocket.Chat …).
    Slack,
}

/// The JSON body of `n` in `format` (`topic`: ntfy's).
pub fn webhook_body(format: WebhookFormat, topic: Option<&str>, n: &Notification) -> Value {
    let a = &n.alert;
    match format {
        WebhookFormat::Json => json!({"event": n.kind.as_str(), "alert": a}),
        WebhookFormat::Ntfy => {
            // ntfy priorities: 1 min … 3 default … 5 max (urgent).
            let (priority, tag) = match (n.kind, a.severity) {
                (NotifyKind::Resolved, _) => (3, "white_check_mark"),
                (_, Severity::Critical) => (5, "rotating_light"),
                (_, Severity::Warning) => (4, "warning"),
                (_, Severity::Info) => (3, "information_source"),
            };
            let mut message = a.message.clone();
            if let Some(e) = &a.entity_id {
                message.push_str(&format!("\n{e}"));
            }
            if n.kind == NotifyKind::Repeated {
                message.push_str(&format!("\nstill active (raised {} times)", a.count));
            }
            json!({
                "topic": topic.unwrap_or_default(),
                "title": n.headline(),
                "message": message,
                "priority": priority,
                "tags": [tag, a.severity.as_str(), n.kind.as_str()],
            })
        }
        WebhookFormat::Slack => {
            let mut text = format!("*{}*", n.headline());
            if !a.message.is_empty() {
                text.push('\n');
                text.push_str(&a.message);
            }
            json!({ "text": text })
        }
    }
}

pub struct WebhookNotifier {
    url: url::Url,
    /// `Host` header value (with the port when it is not the default).
    authority: String,
    host: String,
    port: u16,
    tls: Option<tokio_rustls::TlsConnector>,
    format: WebhookFormat,
    topic: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
}

/// Bytes of a response body kept for the error message.
const ERROR_BODY: usize = 200;

impl WebhookNotifier {
    /// Checks the config (`what` is its place, `alerts.webhook[0]`).
    pub fn new(what: &str, cfg: &WebhookConfig) -> anyhow::Result<WebhookNotifier> {
        // Messages quote the URL without user info or query values.
        let shown = crate::secret::redact_url(cfg.url.expose());
        let url = url::Url::parse(cfg.url.expose()).map_err(|e| {
            anyhow::anyhow!("{what}.url: `{shown}` is not a URL like https://ntfy.sh ({e})")
        })?;
        let tls = match url.scheme() {
            "http" => None,
            "https" => Some(connector(what, cfg)?),
            other => anyhow::bail!("{what}.url: expected http:// or https://, got `{other}://`"),
        };
        let host = url
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("{what}.url: `{shown}` has no host"))?
            .to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        if cfg.format == WebhookFormat::Ntfy && cfg.topic.as_deref().is_none_or(str::is_empty) {
            anyhow::bail!("{what}.topic: format \"ntfy\" needs the topic to publish to");
        }
        let headers = cfg
            .headers
            .iter()
            .map(|(k, v)| {
                let name = HeaderName::try_from(k.as_str()).map_err(|_| {
                    anyhow::anyhow!("{what}.headers: `{k}` is not an HTTP header name")
                })?;
                let mut value = HeaderValue::try_from(v.expose()).map_err(|_| {
                    anyhow::anyhow!("{what}.headers.{k}: the value is not a valid header value")
                })?;
                // Kept out of hyper's Debug output too.
                value.set_sensitive(true);
                Ok((name, value))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(WebhookNotifier {
            url,
            authority,
            host,
            port,
            tls,
            format: cfg.format,
            topic: cfg.topic.clone(),
            headers,
            timeout: super::timeout(what, cfg.timeout_s)?,
        })
    }

    /// Where it posts, for names and errors: no query, and no path
    /// segment that looks like a token (Slack's and Discord's webhook URLs
    /// carry theirs in the path; [`crate::secret::redact_path`]).
    pub fn target(&self) -> String {
        format!(
            "{}://{}{}",
            self.url.scheme(),
            self.authority,
            crate::secret::redact_path(self.url.path())
        )
    }

    pub async fn send(&self, n: &Notification) -> Result<(), SendError> {
        let body = webhook_body(self.format, self.topic.as_deref(), n).to_string();
        let target = self.target();
        match tokio::time::timeout(self.timeout, self.post(body)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(mut e)) => {
                e.message = format!("webhook {target}: {}", e.message);
                Err(e)
            }
            Err(_) => Err(SendError {
                message: format!("webhook {target}: no answer within {:?}", self.timeout),
                permanent: false,
            }),
        }
    }

    async fn post(&self, body: String) -> Result<(), SendError> {
        let transient = |message: String| SendError {
            message,
            permanent: false,
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| transient(format!("connect: {e}")))?;
        let mut path = self.url.path().to_string();
        if let Some(q) = self.url.query() {
            path.push('?');
            path.push_str(q);
        }
        let mut req = Request::post(path)
            .header(HOST, &self.authority)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("hearth/", env!("CARGO_PKG_VERSION")));
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError {
                message: format!("request: {e}"),
                permanent: true,
            })?;
        let res = match &self.tls {
            None => exchange(TokioIo::new(tcp), req).await?,
            Some(connector) => {
                let name = ServerName::try_from(self.host.clone()).map_err(|_| SendError {
                    message: format!("`{}` is not a valid TLS server name", self.host),
                    permanent: true,
                })?;
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| transient(format!("TLS: {e}")))?;
                exchange(TokioIo::new(stream), req).await?
            }
        };
        let status = res.0;
        if status.is_success() {
            return Ok(());
        }
        // 408 and 429 ask to come back later; other 4xx will not change.
        let permanent =
            status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429;
        Err(SendError {
            message: format!("HTTP {status}: {}", res.1),
            permanent,
        })
    }
}

/// Sends one request on a fresh connection; (status, start of the body).
async fn exchange<I>(
    io: I,
    req: Request<Full<Bytes>>,
) -> Result<(hyper::StatusCode, String), SendError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let transient = |message: String| SendError {
        message,
        permanent: false,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| transient(format!("HTTP handshake: {e}")))?;
    let conn = tokio::spawn(conn);
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| transient(format!("HTTP: {e}")));
    let out = match res {
        Ok(res) => {
            let status = res.status();
            // The body only matters for the error message; a short read of it.
            let mut text = String::new();
            if !status.is_success() {
                let mut body = res.into_body();
                while let Some(Ok(frame)) = body.frame().await {
                    if let Some(data) = frame.data_ref() {
                        text.push_str(&String::from_utf8_lossy(data));
                    }
                    if text.len() >= ERROR_BODY {
                        break;
                    }
                }
                text = text.chars().take(ERROR_BODY).collect();
            }
            Ok((status, text))
        }
        Err(e) => Err(e),
    };
    conn.abort();
    out
}

fn connector(what: &str, cfg: &WebhookConfig) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &cfg.ca_file {
        let pem = super::read_ca_file(what, path)?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert =
                cert.map_err(|e| anyhow::anyhow!("{what}.ca_file {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| anyhow::anyhow!("{what}.ca_file {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("{what}: TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
