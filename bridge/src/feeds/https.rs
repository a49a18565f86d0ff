//! HTTPS GETs for the feeds: rustls on ring with Mozilla's roots
//! (webpki-roots) plus an optional private CA, over hyper's HTTP/1 client
//! connection, the stack the alert webhooks already build (no second TLS
//! library). One connection per request: feeds poll every few minutes.
//!
//! Written for the calendar feed (Google Calendar's secret iCal address is
//! https only, with an optional private CA); [`super::fetch::HttpGet`]
//! hands it the tariff and weather feeds' `https://` URLs (the public
//! APIs). Redirects are not followed (the status is reported).

use super::FeedError;
use super::fetch::MAX_BODY;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

#[derive(Clone)]
pub struct HttpsGet {
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
}

impl HttpsGet {
    /// Mozilla's roots only (the public feed APIs). Cannot fail: only a
    /// `ca_file` can be wrong, and ring's defaults always build.
    pub fn with_public_roots(timeout: Duration) -> Self {
        Self::new("feed", None, timeout).expect("rustls with ring's default protocol versions")
    }

    /// `ca_file`: PEM certificate(s) trusted besides Mozilla's roots.
    /// `key` names the config key in errors (`[[calendar]] \`hours\``).
    pub fn new(key: &str, ca_file: Option<&Path>, timeout: Duration) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = ca_file {
            let at = format!("{key} ca_file {}", path.display());
            let pem = std::fs::read(path).map_err(|e| format!("{at}: {e}"))?;
            let mut n = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("{at}: {e}"))?;
                roots.add(cert).map_err(|e| format!("{at}: {e}"))?;
                n += 1;
            }
            if n == 0 {
                return Err(format!(
                    "{at}: expected PEM certificates (-----BEGIN CERTIFICATE-----)"
                ));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("{key}: TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(HttpsGet {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            timeout,
        })
    }

    /// The body of a `200` answer to `GET url` (https), as text; errors
    /// name the URL (as [`super::fetch::HttpGet::text`]).
    pub async fn text(&self, url: &str, expected: &str) -> Result<String, FeedError> {
        // Named without credentials in its user info or query.
        let shown = crate::secret::redact_url(url);
        let err = |reason: String| FeedError::new(&format!("GET {shown}"), "", reason);
        let secs = self.timeout.as_secs_f64();
        tokio::time::timeout(self.timeout, self.get(url, expected))
            .await
            .map_err(|_| err(format!("no complete answer within {secs} s")))?
            .map_err(err)
    }

    async fn get(&self, url: &str, expected: &str) -> Result<String, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a valid URL ({e})"))?;
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("the URL has no host")?;
        // url keeps the brackets of an IPv6 literal; TLS and TCP want none.
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let authority = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let mut path = parsed.path().to_string();
        if let Some(q) = parsed.query() {
            path.push('?');
            path.push_str(q);
        }
        let tcp = TcpStream::connect((bare.as_str(), port))
            .await
            .map_err(|e| format!("connect to {authority}: {e}"))?;
        let name = ServerName::try_from(bare.clone())
            .map_err(|_| format!("`{bare}` is not a TLS server name"))?;
        let stream = self.tls.connect(name, tcp).await.map_err(|e| {
            let mut m = format!("TLS with {authority}: {e}");
            if m.contains("UnknownIssuer") {
                m.push_str(
                    " (the server's certificate is not signed by a CA Hearth trusts: \
                         Mozilla's roots, or the PEM file in `ca_file`)",
                );
            }
            m
        })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        // Aborted when this future ends or is dropped (the caller's timeout).
        let _conn = AbortOnDrop(tokio::spawn(conn));
        let req = hyper::Request::get(path)
            .header(hyper::header::HOST, &authority)
            .header(
                hyper::header::USER_AGENT,
                concat!("hearth/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("request: {e}"))?;
        async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("reading the body failed: {e}"))?
                .to_bytes();
            if !status.is_success() {
                return Err(format!(
                    "HTTP {status}, expected 200 with {expected} (body `{}`)",
                    crate::broker::excerpt(&body)
                ));
            }
            String::from_utf8(body.to_vec())
                .map_err(|_| format!("the body is not UTF-8 text; expected {expected}"))
        }
        .await
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
