//! How every MQTT client of Hearth's (the bridge's link, the twin's
//! devices, the retained-message reader) reaches a broker: one place that
//! turns a [`BrokerAddress`] into rumqttc options, with its credentials and,
//! for `mqtts://`, TLS.
//!
//! TLS uses rustls with the ring provider given explicitly (not the process
//! default: DESIGN.md §8, mixing providers panics). The server is verified
//! against a private CA when one is given (`hearth certs init` makes
//! `<data>/tls/ca.pem`; Mosquitto's `--cafile`), else against Mozilla's
//! roots (a public broker such as HiveMQ Cloud or EMQX Cloud).

use super::link::BrokerAddress;
use anyhow::Context;
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// TLS towards a broker: which CA to trust, and an optional client
/// certificate. Debug never prints key material.
#[derive(Clone, Default)]
pub struct ClientTls {
    /// PEM of the CA(s) to trust; `None`: Mozilla's roots.
    pub ca_pem: Option<Arc<Vec<u8>>>,
    /// PEM certificate chain and PEM private key of this client.
    pub client_auth: Option<Arc<(Vec<u8>, Vec<u8>)>>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("private_ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.client_auth.is_some())
            .finish()
    }
}

impl ClientTls {
    /// Trusts the CA in the PEM file `path` (e.g. `<data>/tls/ca.pem`).
    pub fn with_ca_file(path: &Path) -> anyhow::Result<Self> {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading the MQTT CA file {}", path.display()))?;
        Ok(ClientTls {
            ca_pem: Some(Arc::new(pem)),
            client_auth: None,
        })
    }

    /// The rustls client configuration: the CA's certificates as the only
    /// roots (or Mozilla's), TLS 1.2 and 1.3, the client certificate if any.
    pub fn rustls_config(&self) -> anyhow::Result<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.context("the MQTT CA file is not PEM certificates")?;
                    roots
                        .add(cert)
                        .context("the MQTT CA file holds a certificate rustls cannot use")?;
                }
                anyhow::ensure!(
                    !roots.is_empty(),
                    "the MQTT CA file holds no certificate (expected PEM `BEGIN CERTIFICATE`)"
                );
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let builder = rustls::ClientConfig::builder_with_provider(super::tls::provider())
            .with_safe_default_protocol_versions()
            .context("rustls has no TLS version for the ring provider")?
            .with_root_certificates(roots);
        Ok(match &self.client_auth {
            None => builder.with_no_client_auth(),
            Some(pair) => {
                let chain = CertificateDer::pem_slice_iter(&pair.0)
                    .collect::<Result<Vec<_>, _>>()
                    .context("the MQTT client certificate is not PEM")?;
                // The error names the input, never its bytes.
                let key = PrivateKeyDer::from_pem_slice(&pair.1)
                    .map_err(|_| anyhow::anyhow!("the MQTT client key is not a PEM private key"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .context("the MQTT client certificate does not match its key")?
            }
        })
    }
}

/// rumqttc options for `addr`: client id, credentials, and TLS for an
/// `mqtts://` address. Callers add keep-alive, will and sizes.
pub fn options(client_id: &str, addr: &BrokerAddress) -> anyhow::Result<MqttOptions> {
    let mut mqtt = MqttOptions::new(client_id, &addr.host, addr.port);
    if let Some(user) = &addr.username {
        mqtt.set_credentials(user, addr.password.clone().unwrap_or_default());
    }
    if let Some(tls) = &addr.tls {
        let config = tls.rustls_config()?;
        mqtt.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(config),
        )));
    }
    Ok(mqtt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let tls = ClientTls {
            ca_pem: Some(Arc::new(b"not a pem file".to_vec())),
            client_auth: None,
        };
        let e = format!("{:#}", tls.rustls_config().unwrap_err());
        assert!(e.contains("MQTT CA file"), "{e}");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let tls = ClientTls {
            ca_pem: None,
            client_auth: Some(Arc::new((b"CERT".to_vec(), b"SECRETKEY".to_vec()))),
        };
        let shown = format!("{tls:?}");
        assert!(!shown.contains("SECRETKEY"), "{shown}");
        assert!(shown.contains("client_certificate: true"), "{shown}");
    }

    #[test]
    fn mozilla_roots_without_a_private_ca() {
        assert!(ClientTls::default().rustls_config().is_ok());
    }
}
