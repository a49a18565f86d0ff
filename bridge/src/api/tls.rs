//! HTTPS/WSS on the API port (`[http] tls`, DESIGN.md §8): rustls (ring)
//! terminates TLS in front of the same hyper service that serves plain
//! HTTP, so `https://…/api/…` and `wss://…/api/websocket` answer exactly
//! what `http://` and `ws://` do without TLS.
//!
//! - A client has `handshake_timeout` to finish its TLS handshake (and to
//!   send its first byte); one that idles is dropped, and since every
//!   connection is handled on its own task it never delays the others.
//! - Plain HTTP on the TLS port is refused the way nginx does it: the
//!   first byte of a TLS connection is a handshake record (content type
//!   0x16, RFC 8446 §5.1); anything else gets `400 Bad Request` saying
//!   the port speaks HTTPS, and the connection closes. The API is never
//!   served without TLS on this port.
//!
//! The certificate and key are PEM files (`hearth certs init` writes
//! `<data_dir>/tls/server.pem` and `server.key`); errors name the file,
//! never its content.

use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// First byte of every TLS connection: a handshake record (RFC 8446 §5.1).
const TLS_HANDSHAKE: u8 = 0x16;

/// Body of the answer to plain HTTP on the TLS port.
pub const PLAIN_HTTP_REFUSAL: &str = "this port speaks HTTPS: use https:// or wss://\n";

/// Bytes of a plain request read (and discarded) before it is answered, so
/// the close that follows is not a reset that could eat the answer.
const PLAIN_READ_MAX: usize = 16 * 1024;

/// Time to read a plain request and drain what follows the answer.
const PLAIN_LINGER: Duration = Duration::from_secs(1);

/// Where the API's certificate is and how long a handshake may take.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// PEM certificate chain, the server's first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// A client that has not finished its handshake by then is dropped.
    pub handshake_timeout: Duration,
}

/// The TLS side of the API port.
#[derive(Clone)]
pub struct ApiTls {
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

impl ApiTls {
    /// Loads the certificate and key; errors name the file and the key in
    /// the config that points at it.
    pub fn load(opts: &TlsOptions) -> anyhow::Result<ApiTls> {
        // The broker's loaders and provider: one way to read a PEM identity.
        use crate::broker::tls::{certificates, private_key, provider};
        let certs = certificates(&opts.cert_file).context("[http] tls")?;
        let key = private_key(&opts.key_file).context("[http] tls")?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("[http] tls: TLS setup: {e}"))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                anyhow::anyhow!(
                    "[http] tls: certificate {} and key {} do not make a TLS identity: {e}",
                    opts.cert_file.display(),
                    opts.key_file.display()
                )
            })?;
        // hyper serves HTTP/1.1 only (the WebSocket upgrade needs it).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ApiTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshake_timeout: opts.handshake_timeout,
        })
    }

    /// The TLS stream of an accepted connection, or `None` when the client
    /// spoke plain HTTP (answered 400 here), failed its handshake or took
    /// longer than the handshake timeout.
    pub async fn accept(&self, stream: TcpStream) -> Option<TlsStream<TcpStream>> {
        let deadline = tokio::time::Instant::now() + self.handshake_timeout;
        let mut first = [0u8; 1];
        match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
            Ok(Ok(1)) => {}
            // Closed, failed or silent: nothing to answer.
            _ => return None,
        }
        if first[0] != TLS_HANDSHAKE {
            refuse_plain(stream).await;
            return None;
        }
        match tokio::time::timeout_at(deadline, self.acceptor.accept(stream)).await {
            Ok(Ok(tls)) => Some(tls),
            Ok(Err(e)) => {
                tracing::debug!("API: TLS handshake failed: {e}");
                None
            }
            Err(_) => {
                tracing::debug!(
                    "API: TLS handshake not finished within {:?}; dropped",
                    self.handshake_timeout
                );
                None
            }
        }
    }
}

/// Answers plain HTTP on the TLS port with 400, as nginx does ("The plain
/// HTTP request was sent to HTTPS port"), without serving anything.
async fn refuse_plain(mut stream: TcpStream) {
    // Read the request head (or what comes within the linger), so closing
    // with unread bytes does not reset the connection before the client
    // reads the answer.
    let mut buf = vec![0u8; 4096];
    let mut seen = Vec::new();
    let read_head = async {
        while seen.len() < PLAIN_READ_MAX {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(PLAIN_LINGER, read_head).await;
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{PLAIN_HTTP_REFUSAL}",
        PLAIN_HTTP_REFUSAL.len()
    );
    let _ = tokio::time::timeout(PLAIN_LINGER, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    // Drain until the client closes (bounded), then drop.
    let _ = tokio::time::timeout(PLAIN_LINGER, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

impl TlsOptions {
    /// `[http] tls` (default: on iff `[tls]` is present) with the
    /// certificate and key of `[tls]`, or `<data_dir>/tls/server.pem` and
    /// `server.key`. `None`: plain HTTP.
    pub fn from_config(config: &crate::config::Config, data_dir: &Path) -> Option<TlsOptions> {
        let section = config.tls.as_ref();
        if !config.http.tls.unwrap_or(section.is_some()) {
            return None;
        }
        let dir = data_dir.join("tls");
        Some(TlsOptions {
            cert_file: section
                .and_then(|t| t.cert_file.clone())
                .unwrap_or_else(|| dir.join("server.pem")),
            key_file: section
                .and_then(|t| t.key_file.clone())
                .unwrap_or_else(|| dir.join("server.key")),
            handshake_timeout: Duration::from_secs_f64(
                section.map_or(DEFAULT_HANDSHAKE_TIMEOUT_S, |t| t.handshake_timeout_s),
            ),
        })
    }
}

/// Handshake timeout with `[http] tls = true` and no `[tls]` section (the
/// `[tls] handshake_timeout_s` default).
const DEFAULT_HANDSHAKE_TIMEOUT_S: f64 = 10.0;
