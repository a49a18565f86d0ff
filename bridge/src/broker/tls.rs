//! TLS termination in the embedded broker's front (DESIGN.md §8): rumqttd
//! does its handshakes inline in its accept loop with no timeout, so Hearth
//! accepts TLS itself, each handshake in a task of its own under a timeout,
//! and relays plain MQTT to rumqttd on loopback.
//!
//! rustls on ring, the provider given explicitly (never the process
//! default: mixing ring and aws-lc-rs panics). Client certificates are
//! optional; one that is presented must chain to the CA, or the handshake
//! fails. Its CN is the client's MQTT identity ([`super::access`]).

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The PEM files of the broker's TLS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// CA whose client certificates are accepted.
    pub ca: PathBuf,
    /// Server certificate (chain).
    pub cert: PathBuf,
    /// Server private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// `hearth certs`' layout: `<data>/tls/{ca,server}.pem`, `server.key`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        let tls = data_dir.join("tls");
        TlsFiles {
            ca: tls.join("ca.pem"),
            cert: tls.join("server.pem"),
            key: tls.join("server.key"),
        }
    }
}

/// The ring provider every TLS config of the front is built with.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS acceptor for `files`. Errors name the file, never its contents.
pub fn acceptor(files: &TlsFiles) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server_config(
        files,
    )?)))
}

fn server_config(files: &TlsFiles) -> anyhow::Result<rustls::ServerConfig> {
    let chain = certificates(&files.cert)?;
    let key = private_key(&files.key)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in certificates(&files.ca)? {
        roots
            .add(ca)
            .with_context(|| format!("CA file {}", files.ca.display()))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .context("client certificate verifier")?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .with_context(|| {
            format!(
                "TLS certificate {} does not go with key {}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    Ok(config)
}

/// The PEM certificates of `path` (the broker's and the API's server
/// certificate, the CA). Errors name the file.
pub fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            anyhow::anyhow!(
                "certificate file {}: {e} (`hearth certs init --data-dir DIR` makes one)",
                path.display()
            )
        })?;
    anyhow::ensure!(
        !certs.is_empty(),
        "certificate file {}: expected PEM certificates (-----BEGIN CERTIFICATE-----)",
        path.display()
    );
    Ok(certs)
}

/// The PEM private key of `path`. Errors name the file only: the
/// parser's message could quote what it read.
pub fn private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).map_err(|e| {
        anyhow::anyhow!(
            "private key {}: {e} (`hearth certs init --data-dir DIR` makes one)",
            path.display()
        )
    })?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        anyhow::anyhow!(
            "private key {}: expected a PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC)",
            path.display()
        )
    })
}

/// The subject CN of a verified client certificate chain's leaf.
pub fn common_name(chain: &[CertificateDer<'_>]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(chain.first()?).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = acceptor(&TlsFiles::in_data_dir(dir.path())).err().unwrap();
        assert!(format!("{e:#}").contains("server.pem"), "{e:#}");
    }

    #[test]
    fn the_leaf_common_name_is_read() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "node-7");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            common_name(&[cert.der().clone()]).as_deref(),
            Some("node-7")
        );
        assert_eq!(common_name(&[]), None);
    }
}
