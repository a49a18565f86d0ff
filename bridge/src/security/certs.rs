//! Hearth's own certificate authority (rcgen): a CA, the server certificate
//! of the MQTT front / HTTPS API, and client certificates for devices.
//!
//! All keys ECDSA P-256 with SHA-256 (small, fast on an ESP32-C3's mbedTLS
//! and on rustls/ring). Validity: CA 10 years, server 2 years (re-run
//! `hearth certs init --force`... or re-issue: see the CLI), client 10
//! years (a flashed device is not re-flashed every two years; a device is
//! cut off by `hearth certs revoke`, which removes its `user` from the ACL,
//! and the front only accepts a certificate whose CN has an ACL entry).
//! Every certificate starts one day in the past (clock skew between the
//! bridge host and a device that just got its time).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use std::fmt;
use std::net::IpAddr;

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for CertAndKey {
    // Never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAndKey")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A CA able to sign (its certificate and key loaded or just made).
pub struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

/// Years of validity.
pub const CA_YEARS: i16 = 10;
pub const SERVER_YEARS: i16 = 2;
pub const CLIENT_YEARS: i16 = 10;

fn validity(params: &mut CertificateParams, years: i16) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    let start = (now - jiff::SignedDuration::from_hours(24))
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let end_year = today.year() + years;
    // 29 February may not exist in the end year.
    let end_day = today.day().min(28);
    let month = |m: i8| u8::try_from(m).map_err(|_| anyhow::anyhow!("month {m}"));
    let day = |d: i8| u8::try_from(d).map_err(|_| anyhow::anyhow!("day {d}"));
    params.not_before = rcgen::date_time_ymd(
        start.year().into(),
        month(start.month())?,
        day(start.day())?,
    );
    params.not_after = rcgen::date_time_ymd(end_year.into(), month(today.month())?, day(end_day)?);
    Ok(())
}

fn random_serial() -> SerialNumber {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random number generator failed");
    // Positive INTEGER, non-zero first byte (DER minimal).
    b[0] = (b[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&b)
}

fn new_key() -> anyhow::Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| anyhow::anyhow!("generating a P-256 key: {e}"))
}

fn dn(cn: &str) -> DistinguishedName {
    // CN only: no O (rumqttd would take O as a tenant prefix, DESIGN.md §8).
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// This machine's host name (`localhost` if it has none).
pub fn hostname() -> String {
    system_hostname().unwrap_or_else(|| "localhost".into())
}

/// This machine's host name, `None` when the system gives none.
pub fn system_hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most
    // that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    std::str::from_utf8(&buf[..end])
        .ok()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Ca {
    /// A new CA: CN `Hearth CA <hostname>`, 10 years, may sign certificates
    /// (path length 0: no intermediate).
    pub fn generate(hostname: &str) -> anyhow::Result<Ca> {
        let key = new_key()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(&format!("Hearth CA {hostname}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        validity(&mut params, CA_YEARS)?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| anyhow::anyhow!("signing the CA certificate: {e}"))?;
        Ok(Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA of `ca.pem` + `ca.key`.
    pub fn load(cert_pem: &str, key_pem: &str) -> anyhow::Result<Ca> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| anyhow::anyhow!("CA key: {e}"))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| anyhow::anyhow!("CA certificate: {e}"))?;
        Ok(Ca {
            cert_pem: cert_pem.to_string(),
            issuer,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PEM (to write to `ca.key`, 0600).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A server certificate for these names and addresses (each parsed as an
    /// IP address if it is one, else a DNS name), CN the first name, EKU
    /// serverAuth, 2 years.
    pub fn issue_server(&self, sans: &[String]) -> anyhow::Result<CertAndKey> {
        let cn = sans.first().cloned().unwrap_or_else(|| "localhost".into());
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(&cn);
        params.subject_alt_names = sans
            .iter()
            .map(|s| san(s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        validity(&mut params, SERVER_YEARS)?;
        self.sign(params)
    }

    /// A client certificate: CN = the device id (its MQTT identity), EKU
    /// clientAuth, 10 years.
    pub fn issue_client(&self, device_id: &str) -> anyhow::Result<CertAndKey> {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(device_id);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        validity(&mut params, CLIENT_YEARS)?;
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> anyhow::Result<CertAndKey> {
        let key = new_key()?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| anyhow::anyhow!("signing a certificate: {e}"))?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn san(s: &str) -> anyhow::Result<SanType> {
    Ok(match s.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => {
            SanType::DnsName(s.to_string().try_into().map_err(|e| {
                anyhow::anyhow!("`{s}` is neither an IP address nor a DNS name: {e}")
            })?)
        }
    })
}

/// The server certificate's names: `localhost`, the host name, 127.0.0.1,
/// ::1, every non-wildcard bind address, then `extra` (`--san`), without
/// duplicates, in that order.
pub fn server_sans(hostname: &str, binds: &[IpAddr], extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !s.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(&s)) {
            out.push(s);
        }
    };
    push("localhost".into());
    push(hostname.to_string());
    push("127.0.0.1".into());
    push("::1".into());
    for b in binds {
        if !b.is_unspecified() {
            push(b.to_string());
        }
    }
    for e in extra {
        push(e.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    fn parse(pem: &str) -> Vec<u8> {
        let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        p.contents
    }

    #[test]
    fn chain_names_and_usages() {
        let ca = Ca::generate("box").unwrap();
        let sans = server_sans(
            "box",
            &["0.0.0.0".parse().unwrap(), "192.168.1.5".parse().unwrap()],
            &["hearth.lan".into(), "LOCALHOST".into()],
        );
        assert_eq!(
            sans,
            [
                "localhost",
                "box",
                "127.0.0.1",
                "::1",
                "192.168.1.5",
                "hearth.lan"
            ]
        );
        let server = ca.issue_server(&sans).unwrap();
        let client = ca.issue_client("node-1").unwrap();

        let ca_der = parse(ca.cert_pem());
        let (_, ca_x) = X509Certificate::from_der(&ca_der).unwrap();
        assert_eq!(
            ca_x.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "Hearth CA box"
        );
        assert!(ca_x.is_ca());
        let years = |x: &X509Certificate| {
            (x.validity().not_after.timestamp() - x.validity().not_before.timestamp()) / 86400 / 365
        };
        assert_eq!(years(&ca_x), 10);

        let s_der = parse(&server.cert_pem);
        let (_, s_x) = X509Certificate::from_der(&s_der).unwrap();
        assert!(!s_x.is_ca());
        assert_eq!(s_x.issuer(), ca_x.subject());
        s_x.verify_signature(Some(ca_x.public_key())).unwrap();
        assert_eq!(years(&s_x), 2);
        let eku = s_x.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let names: Vec<String> = s_x
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|g| match g {
                GeneralName::DNSName(d) => d.to_string(),
                GeneralName::IPAddress(b) if b.len() == 4 => {
                    std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string()
                }
                GeneralName::IPAddress(b) => {
                    std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).unwrap()).to_string()
                }
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(names, sans);

        let c_der = parse(&client.cert_pem);
        let (_, c_x) = X509Certificate::from_der(&c_der).unwrap();
        c_x.verify_signature(Some(ca_x.public_key())).unwrap();
        assert_eq!(
            c_x.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "node-1"
        );
        let eku = c_x.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert_ne!(s_x.raw_serial(), c_x.raw_serial());
        assert!(!format!("{client:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn a_loaded_ca_signs_like_the_original() {
        let ca = Ca::generate("box").unwrap();
        let loaded = Ca::load(ca.cert_pem(), &ca.key_pem()).unwrap();
        let client = loaded.issue_client("dev").unwrap();
        let ca_der = parse(ca.cert_pem());
        let (_, ca_x) = X509Certificate::from_der(&ca_der).unwrap();
        let c_der = parse(&client.cert_pem);
        let (_, c_x) = X509Certificate::from_der(&c_der).unwrap();
        assert_eq!(c_x.issuer(), ca_x.subject());
        c_x.verify_signature(Some(ca_x.public_key())).unwrap();
        // another CA's key does not verify it
        let other = Ca::generate("box").unwrap();
        let o_der = parse(other.cert_pem());
        let (_, o_x) = X509Certificate::from_der(&o_der).unwrap();
        assert!(c_x.verify_signature(Some(o_x.public_key())).is_err());
    }
}
