//! TLS 1.3 (embedded-tls) verifying the broker against Hearth's CA, pinned:
//! the CA certificate comes from the sealed secrets (`ca_pem`), never from
//! the network. embedded-tls's `rustpki` verifier checks the chain's ECDSA
//! P-256 signatures up to the pinned CA, the CertificateVerify signature
//! (the server holds the key), and the host name against the server
//! certificate's DNS SANs / CN.
//!
//! Not checked: validity dates (the node has no wall clock, `NoClock`), and
//! IP-address SANs (embedded-tls matches DNS names only, so `mqtt_host` must
//! be a DNS name that is in the server certificate).

use embedded_tls::{
    Aes128GcmSha256, Certificate, CryptoProvider, CryptoRngCore, NoClock, TlsVerifier,
    pki::CertVerifier,
};

/// The largest server certificate chain the verifier copies (DER bytes).
pub const MAX_CHAIN: usize = 4096;
/// The largest CA certificate (DER).
pub const MAX_CA_DER: usize = 1536;

pub type Suite = Aes128GcmSha256;

/// The crypto provider: a cryptographic RNG (the firmware: the hardware
/// TRNG) and the pinned-CA verifier.
pub struct PinnedCa<'a, R> {
    rng: R,
    verifier: CertVerifier<'a, Suite, NoClock, MAX_CHAIN>,
}

impl<'a, R: CryptoRngCore> PinnedCa<'a, R> {
    pub fn new(rng: R, ca_der: &'a [u8]) -> Self {
        PinnedCa {
            rng,
            verifier: CertVerifier::new(Certificate::X509(ca_der)),
        }
    }
}

impl<R: CryptoRngCore> CryptoProvider for PinnedCa<'_, R> {
    type CipherSuite = Suite;
    type Signature = p256::ecdsa::DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut self.rng
    }

    fn verifier(
        &mut self,
    ) -> Result<&mut impl TlsVerifier<Self::CipherSuite>, embedded_tls::TlsError> {
        Ok(&mut self.verifier)
    }
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
