//! TLS 1.3 (embedded-tls) verifying the broker against Hearth's CA, pinned:
//! the CA certificate comes from the sealed secrets (`ca_pem`), never from
//! the network. embedded-tls's `rustpki` verifier checks the chain's ECDSA
//! P-256 signatures up to the pinned CA, the CertificateVerify signature
//! (the server holds the key), and the host name against the server
//! certificate's DNS SANs / CN.
//!
//! embedded-tls matches DNS names only; for a broker given by IP address
//! ([`config_for`] sends no SNI then), [`PinnedCaVerifier`] checks the
//! address against the leaf certificate's IP-address SANs itself and lets
//! embedded-tls verify the chain and signatures as usual.
//!
//! Not checked: validity dates (the node has no wall clock, `NoClock`).

use core::net::IpAddr;

use embedded_tls::{
    Aes128GcmSha256, Certificate, CertificateEntryRef, CertificateRef, CertificateVerifyRef,
    CryptoProvider, CryptoRngCore, NoClock, TlsConfig, TlsError, TlsVerifier, pki::CertVerifier,
};

/// The largest server certificate chain the verifier copies (DER bytes).
pub const MAX_CHAIN: usize = 4096;
/// The largest CA certificate (DER).
pub const MAX_CA_DER: usize = 1536;

pub type Suite = Aes128GcmSha256;

/// The TLS configuration for `host`: SNI and DNS-name verification for a
/// name; for an IP address no SNI (RFC 6066 allows names only) and the
/// address is checked by [`PinnedCaVerifier`].
pub fn config_for(host: &str) -> TlsConfig<'_> {
    if host.parse::<IpAddr>().is_ok() {
        TlsConfig::new()
    } else {
        TlsConfig::new().with_server_name(host)
    }
}

/// The crypto provider: a cryptographic RNG (the firmware: the hardware
/// TRNG) and the pinned-CA verifier.
pub struct PinnedCa<'a, R> {
    rng: R,
    verifier: PinnedCaVerifier<'a>,
}

impl<'a, R: CryptoRngCore> PinnedCa<'a, R> {
    /// `host` as given to [`config_for`].
    pub fn new(rng: R, ca_der: &'a [u8], host: &str) -> Self {
        PinnedCa {
            rng,
            verifier: PinnedCaVerifier {
                inner: CertVerifier::new(Certificate::X509(ca_der)),
                ip: host.parse().ok(),
            },
        }
    }
}

impl<R: CryptoRngCore> CryptoProvider for PinnedCa<'_, R> {
    type CipherSuite = Suite;
    type Signature = p256::ecdsa::DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Self::CipherSuite>, TlsError> {
        Ok(&mut self.verifier)
    }
}

/// embedded-tls's chain and signature verification, plus IP-address SANs.
pub struct PinnedCaVerifier<'a> {
    inner: CertVerifier<'a, Suite, NoClock, MAX_CHAIN>,
    /// The broker's address when it is reached by IP: must be an IP SAN.
    ip: Option<IpAddr>,
}

impl TlsVerifier<Suite> for PinnedCaVerifier<'_> {
    fn set_hostname_verification(&mut self, hostname: &str) -> Result<(), TlsError> {
        self.inner.set_hostname_verification(hostname)
    }

    fn verify_certificate(
        &mut self,
        transcript: &<Suite as embedded_tls::TlsCipherSuite>::Hash,
        cert: CertificateRef,
    ) -> Result<(), TlsError> {
        if let Some(ip) = self.ip {
            let Some(CertificateEntryRef::X509(leaf)) = cert.entries.first() else {
                return Err(TlsError::InvalidCertificate);
            };
            let sans = san_names(leaf).ok_or(TlsError::DecodeError)?;
            if !sans.ips.iter().any(|a| ip_matches(ip, a)) {
                log::error!("tls: {ip} is not an IP address SAN of the server certificate");
                return Err(TlsError::InvalidCertificate);
            }
            // The address matched. embedded-tls still verifies the chain up
            // to the pinned CA and the signatures, and insists on a name
            // match: hand it one of the certificate's own DNS names.
            let name = sans.first_dns.ok_or(TlsError::InvalidCertificate)?;
            let name = core::str::from_utf8(name).map_err(|_| TlsError::DecodeError)?;
            self.inner.set_hostname_verification(name)?;
        }
        self.inner.verify_certificate(transcript, cert)
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef) -> Result<(), TlsError> {
        self.inner.verify_signature(verify)
    }
}

fn ip_matches(ip: IpAddr, san: &[u8]) -> bool {
    match ip {
        IpAddr::V4(v4) => san == v4.octets(),
        IpAddr::V6(v6) => san == v6.octets(),
    }
}

/// The subjectAltName entries of a certificate that matter here.
struct SanNames<'c> {
    /// iPAddress entries (4 or 16 octets), at most 8.
    ips: heapless::Vec<&'c [u8], 8>,
    /// The first dNSName without a wildcard.
    first_dns: Option<&'c [u8]>,
}

/// One DER TLV: (tag, content, rest). Definite lengths up to 4 bytes.
fn tlv(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = buf.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The SAN extension of an X.509 certificate (None: not parseable).
fn san_names(cert: &[u8]) -> Option<SanNames<'_>> {
    const SEQUENCE: u8 = 0x30;
    const EXTENSIONS: u8 = 0xA3; // [3] EXPLICIT in TBSCertificate
    const OID: u8 = 0x06;
    const OCTET_STRING: u8 = 0x04;
    const SAN_OID: &[u8] = &[0x55, 0x1D, 0x11]; // 2.5.29.17
    const DNS_NAME: u8 = 0x82; // [2] IMPLICIT IA5String
    const IP_ADDRESS: u8 = 0x87; // [7] IMPLICIT OCTET STRING

    let (SEQUENCE, cert, _) = tlv(cert)? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut names = SanNames {
        ips: heapless::Vec::new(),
        first_dns: None,
    };
    while !tbs.is_empty() {
        let (tag, content, rest) = tlv(tbs)?;
        tbs = rest;
        if tag != EXTENSIONS {
            continue;
        }
        let (SEQUENCE, mut exts, _) = tlv(content)? else {
            return None;
        };
        while !exts.is_empty() {
            let (SEQUENCE, ext, rest) = tlv(exts)? else {
                return None;
            };
            exts = rest;
            let (OID, oid, mut ext) = tlv(ext)? else {
                return None;
            };
            if oid != SAN_OID {
                continue;
            }
            // Optional `critical` BOOLEAN, then the OCTET STRING.
            let mut value = None;
            while !ext.is_empty() {
                let (tag, content, rest) = tlv(ext)?;
                ext = rest;
                if tag == OCTET_STRING {
                    value = Some(content);
                }
            }
            let (SEQUENCE, mut general_names, _) = tlv(value?)? else {
                return None;
            };
            while !general_names.is_empty() {
                let (tag, content, rest) = tlv(general_names)?;
                general_names = rest;
                match tag {
                    IP_ADDRESS if content.len() == 4 || content.len() == 16 => {
                        let _ = names.ips.push(content);
                    }
                    DNS_NAME if names.first_dns.is_none() && !content.contains(&b'*') => {
                        names.first_dns = Some(content);
                    }
                    _ => {}
                }
            }
        }
    }
    Some(names)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PemError;

/// The DER of the first `CERTIFICATE` block of `pem`, into `out`.
pub fn pem_to_der<'o>(pem: &str, out: &'o mut [u8]) -> Result<&'o [u8], PemError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN).ok_or(PemError)? + BEGIN.len();
    let len = pem[start..].find(END).ok_or(PemError)?;
    let n = base64_decode(&pem[start..start + len], out)?;
    Ok(&out[..n])
}

/// Standard base64 (with padding), ignoring ASCII whitespace.
fn base64_decode(text: &str, out: &mut [u8]) -> Result<usize, PemError> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut n = 0usize;
    let mut padding = false;
    for &c in text.as_bytes() {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            padding = true;
            continue;
        }
        if padding {
            return Err(PemError); // data after padding
        }
        acc = (acc << 6) | value(c).ok_or(PemError)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n).ok_or(PemError)? = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    if n == 0 { Err(PemError) } else { Ok(n) }
}
