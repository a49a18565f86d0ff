//! Sealed secrets: the node's Wi-Fi and MQTT credentials, encrypted in a
//! flash partition so that a dumped flash does not give them away.
//!
//! # Key
//!
//! `K_seal = HMAC-SHA256(K_efuse, b"hearth-seal-v1:" || device_id)`.
//! `K_efuse` is a 32-byte key burnt into an eFuse key block with purpose
//! `HMAC_UP` (`espefuse.py burn_key BLOCK_KEY4 efuse.key HMAC_UP`): software
//! on the ESP32-C3 cannot read it; the HMAC peripheral computes `K_seal`
//! from the message [`hmac_message`] gives. The host (`hearth firmware
//! seal`) computes the same `K_seal` from the key file with [`derive_key`].
//! The device id in the message binds a sealed image to one node: an image
//! copied to another node (another id) does not open there.
//!
//! # Format v1
//!
//! Partition `hearth_sec`, one 4096-byte flash sector ([`IMAGE_LEN`]),
//! integers little endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `b"HRTHSEAL"` |
//! | 8 | 1 | version = 1 |
//! | 9 | 1 | `n` = device id length, 1..=32 |
//! | 10 | 32 | device id (ASCII `[a-z0-9_-]`), zero padded |
//! | 42 | 12 | nonce, random per seal |
//! | 54 | 2 | `L` = ciphertext length including the 16-byte GCM tag |
//! | 56 | `L` | AES-256-GCM ciphertext ‖ tag; AAD = bytes 0..56 (the whole header) |
//! | 56 + `L` | … | `0xFF` up to 4096 (erased flash) |
//!
//! The header is authenticated (it is the AAD), so a changed id, nonce or
//! length fails like a changed ciphertext. The `0xFF` padding is not
//! authenticated and not checked: it carries nothing. [`unseal`] fails
//! closed: any error leaves no plaintext in the caller's buffer (the bytes
//! it may have written are zeroed).
//!
//! # Plaintext
//!
//! JSON ([`Secrets`], encoded with `serde-json-core`):
//! `{"wifi_ssid":…,"wifi_password":…,"mqtt_host":…,"mqtt_port":8883,
//! "mqtt_username":…,"mqtt_password":…,"ca_pem":…}` (`ca_pem` optional: the
//! PEM of the CA the node pins for MQTT over TLS). Decode it with
//! [`Secrets::decode`] (strings may contain JSON escapes: the PEM's
//! newlines are `\n`).

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// First 8 bytes of a sealed image.
pub const MAGIC: [u8; 8] = *b"HRTHSEAL";
/// Format version written and accepted.
pub const VERSION: u8 = 1;
/// Size of the partition image (one flash sector).
pub const IMAGE_LEN: usize = 4096;
/// Header bytes (the AAD): magic, version, id length, id, nonce, L.
pub const HEADER_LEN: usize = 56;
/// Longest device id.
pub const MAX_DEVICE_ID: usize = 32;
/// AES-GCM nonce size.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag size.
pub const TAG_LEN: usize = 16;
/// Largest plaintext that fits in one image.
pub const MAX_PLAINTEXT: usize = IMAGE_LEN - HEADER_LEN - TAG_LEN;
/// Prefix of the HMAC message (the key-derivation context).
pub const KEY_CONTEXT: &[u8] = b"hearth-seal-v1:";
/// Longest HMAC message: the context and a 32-byte id.
pub const MAX_HMAC_MESSAGE: usize = KEY_CONTEXT.len() + MAX_DEVICE_ID;

const OFF_VERSION: usize = 8;
const OFF_ID_LEN: usize = 9;
const OFF_ID: usize = 10;
const OFF_NONCE: usize = OFF_ID + MAX_DEVICE_ID;
const OFF_LEN: usize = OFF_NONCE + NONCE_LEN;

/// Why an image could not be sealed or opened. Deliberately coarse on the
/// opening side: a wrong key and a tampered image look the same
/// ([`SealError::Authentication`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    /// The device id is not `[a-z0-9_-]{1,32}`.
    BadDeviceId,
    /// The plaintext is longer than [`MAX_PLAINTEXT`].
    TooLarge,
    /// The image does not start with [`MAGIC`] (an erased or foreign partition).
    BadMagic,
    /// A format version this code does not read.
    BadVersion(u8),
    /// The image is shorter than its header says, or `n`/`L` are out of range.
    BadLength,
    /// The image was sealed for another device.
    WrongDevice,
    /// The caller's buffer is smaller than the plaintext.
    BufferTooSmall,
    /// Wrong key, or the header, nonce, ciphertext or tag was altered.
    Authentication,
}

impl core::fmt::Display for SealError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SealError::BadDeviceId => {
                f.write_str("device id must be 1 to 32 characters of [a-z0-9_-]")
            }
            SealError::TooLarge => write!(
                f,
                "secrets too large: at most {MAX_PLAINTEXT} bytes fit in a sealed image"
            ),
            SealError::BadMagic => f.write_str("not a sealed secrets image (bad magic)"),
            SealError::BadVersion(v) => {
                write!(f, "sealed image version {v}; this code reads {VERSION}")
            }
            SealError::BadLength => f.write_str("sealed image truncated or length out of range"),
            SealError::WrongDevice => f.write_str("sealed image is for another device"),
            SealError::BufferTooSmall => f.write_str("buffer too small for the sealed secrets"),
            SealError::Authentication => f.write_str(
                "sealed image does not authenticate (wrong key, or the image was altered)",
            ),
        }
    }
}

fn check_device_id(device_id: &str) -> Result<(), SealError> {
    crate::validate_node_id(device_id).map_err(|_| SealError::BadDeviceId)
}

/// The message the HMAC peripheral must authenticate under the eFuse key:
/// `b"hearth-seal-v1:" || device_id`. Returns the used part of `out`.
pub fn hmac_message<'o>(
    device_id: &str,
    out: &'o mut [u8; MAX_HMAC_MESSAGE],
) -> Result<&'o [u8], SealError> {
    check_device_id(device_id)?;
    let n = KEY_CONTEXT.len();
    out[..n].copy_from_slice(KEY_CONTEXT);
    out[n..n + device_id.len()].copy_from_slice(device_id.as_bytes());
    Ok(&out[..n + device_id.len()])
}

/// `K_seal` from the eFuse key, in software (the host, and tests; the
/// firmware has the HMAC peripheral compute it and never sees `efuse_key`).
/// The id is not validated here: [`seal`] and [`unseal`] refuse a bad one.
pub fn derive_key(efuse_key: &[u8; 32], device_id: &str) -> [u8; 32] {
    // new_from_slice cannot fail: HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(efuse_key).expect("HMAC accepts any key");
    mac.update(KEY_CONTEXT);
    mac.update(device_id.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Seals `plaintext` for `device_id` into `out` (the whole partition image,
/// padded with `0xFF`). `nonce` must be fresh for every seal under a key
/// (random). Returns the bytes used (header and ciphertext; the rest is
/// padding).
pub fn seal(
    key: &[u8; 32],
    device_id: &str,
    nonce: [u8; NONCE_LEN],
    plaintext: &[u8],
    out: &mut [u8; IMAGE_LEN],
) -> Result<usize, SealError> {
    check_device_id(device_id)?;
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(SealError::TooLarge);
    }
    let l = plaintext.len() + TAG_LEN;
    out.fill(0xFF);
    out[..8].copy_from_slice(&MAGIC);
    out[OFF_VERSION] = VERSION;
    out[OFF_ID_LEN] = device_id.len() as u8;
    out[OFF_ID..OFF_NONCE].fill(0);
    out[OFF_ID..OFF_ID + device_id.len()].copy_from_slice(device_id.as_bytes());
    out[OFF_NONCE..OFF_LEN].copy_from_slice(&nonce);
    out[OFF_LEN..HEADER_LEN].copy_from_slice(&(l as u16).to_le_bytes());
    let (header, body) = out.split_at_mut(HEADER_LEN);
    let (ciphertext, rest) = body.split_at_mut(plaintext.len());
    ciphertext.copy_from_slice(plaintext);
    let cipher = Aes256Gcm::new(key.into());
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), header, ciphertext)
        .map_err(|_| SealError::TooLarge)?;
    rest[..TAG_LEN].copy_from_slice(&tag);
    Ok(HEADER_LEN + l)
}

/// Opens a sealed image for `expected_device_id` into `buf`; returns the
/// plaintext (a prefix of `buf`). Any failure (wrong key, wrong device,
/// altered or truncated image, bad magic or version) is an error and leaves
/// no plaintext in `buf`.
pub fn unseal<'b>(
    key: &[u8; 32],
    image: &[u8],
    expected_device_id: &str,
    buf: &'b mut [u8],
) -> Result<&'b [u8], SealError> {
    check_device_id(expected_device_id)?;
    if image.len() < HEADER_LEN || image.len() > IMAGE_LEN {
        return Err(SealError::BadLength);
    }
    if image[..8] != MAGIC {
        return Err(SealError::BadMagic);
    }
    if image[OFF_VERSION] != VERSION {
        return Err(SealError::BadVersion(image[OFF_VERSION]));
    }
    let n = usize::from(image[OFF_ID_LEN]);
    if n == 0 || n > MAX_DEVICE_ID {
        return Err(SealError::BadLength);
    }
    let id = &image[OFF_ID..OFF_ID + n];
    let padding = &image[OFF_ID + n..OFF_NONCE];
    if id != expected_device_id.as_bytes() || padding.iter().any(|&b| b != 0) {
        return Err(SealError::WrongDevice);
    }
    let l = usize::from(u16::from_le_bytes([image[OFF_LEN], image[OFF_LEN + 1]]));
    if l < TAG_LEN || HEADER_LEN + l > image.len() {
        return Err(SealError::BadLength);
    }
    let m = l - TAG_LEN;
    if buf.len() < m {
        return Err(SealError::BufferTooSmall);
    }
    let (header, body) = image.split_at(HEADER_LEN);
    let out = &mut buf[..m];
    out.copy_from_slice(&body[..m]);
    let cipher = Aes256Gcm::new(key.into());
    let nonce = Nonce::from_slice(&header[OFF_NONCE..OFF_LEN]);
    let tag = Tag::from_slice(&body[m..l]);
    match cipher.decrypt_in_place_detached(nonce, header, out, tag) {
        Ok(()) => Ok(&buf[..m]),
        Err(_) => {
            out.fill(0);
            Err(SealError::Authentication)
        }
    }
}

/// Longest SSID (IEEE 802.11).
pub const MAX_SSID: usize = 32;
/// Longest Wi-Fi password (WPA2: 63 characters, or 64 hex digits).
pub const MAX_WIFI_PASSWORD: usize = 64;
/// Longest MQTT host name.
pub const MAX_HOST: usize = 128;
/// Longest MQTT password.
pub const MAX_MQTT_PASSWORD: usize = 64;
/// Longest CA certificate PEM.
pub const MAX_CA_PEM: usize = 2048;

/// The plaintext of a sealed image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    pub wifi_ssid: heapless::String<MAX_SSID>,
    pub wifi_password: heapless::String<MAX_WIFI_PASSWORD>,
    pub mqtt_host: heapless::String<MAX_HOST>,
    pub mqtt_port: u16,
    /// The device id (the broker's user name for the node).
    pub mqtt_username: heapless::String<MAX_DEVICE_ID>,
    pub mqtt_password: heapless::String<MAX_MQTT_PASSWORD>,
    /// PEM of the CA the node pins (MQTT over TLS); absent: none given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<heapless::String<MAX_CA_PEM>>,
}

/// The plaintext is not valid [`Secrets`] JSON, or a field is too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretsError;

impl core::fmt::Display for SecretsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("sealed secrets are not valid JSON of the expected shape")
    }
}

impl Secrets {
    /// Decodes unsealed JSON. `scratch` unescapes strings (the PEM's `\n`):
    /// [`MAX_CA_PEM`] bytes are enough.
    pub fn decode(json: &[u8], scratch: &mut [u8]) -> Result<Secrets, SecretsError> {
        serde_json_core::from_slice_escaped(json, scratch)
            .map(|(s, _)| s)
            .map_err(|_| SecretsError)
    }

    /// Encodes into `buf` (at least [`MAX_PLAINTEXT`] bytes fits any).
    pub fn encode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], crate::EncodeError> {
        crate::encode(self, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EFUSE: [u8; 32] = [0x42; 32];
    const ID: &str = "rack-1";
    const NONCE: [u8; 12] = [7; 12];
    const TEXT: &[u8] = br#"{"wifi_ssid":"home","wifi_password":"p4ss"}"#;

    fn sealed() -> ([u8; IMAGE_LEN], usize, [u8; 32]) {
        let key = derive_key(&EFUSE, ID);
        let mut image = [0u8; IMAGE_LEN];
        let used = seal(&key, ID, NONCE, TEXT, &mut image).unwrap();
        (image, used, key)
    }

    #[test]
    fn derive_key_known_answer() {
        // Computed independently with Python's hmac module:
        // python3 -c 'import hmac,hashlib; print(hmac.new(bytes([0x42]*32),
        //   b"hearth-seal-v1:rack-1", hashlib.sha256).hexdigest())'
        let expected = "b5a64a3341bc92fdbfbdfc88d6f0121b633776f9761f4e21ec6eb7baa96df756";
        let got = derive_key(&EFUSE, ID);
        let mut hex = heapless::String::<64>::new();
        for b in got {
            use core::fmt::Write as _;
            write!(hex, "{b:02x}").unwrap();
        }
        assert_eq!(hex.as_str(), expected);
        // The peripheral's message is the same bytes.
        let mut msg = [0u8; MAX_HMAC_MESSAGE];
        assert_eq!(
            hmac_message(ID, &mut msg).unwrap(),
            b"hearth-seal-v1:rack-1"
        );
        assert_eq!(hmac_message("Bad", &mut msg), Err(SealError::BadDeviceId));
    }

    #[test]
    fn seal_unseal_round_trip_and_layout() {
        let (image, used, key) = sealed();
        assert_eq!(used, HEADER_LEN + TEXT.len() + TAG_LEN);
        assert_eq!(&image[..8], b"HRTHSEAL");
        assert_eq!(image[8], 1);
        assert_eq!(image[9], ID.len() as u8);
        assert_eq!(&image[10..10 + ID.len()], ID.as_bytes());
        assert!(image[10 + ID.len()..42].iter().all(|&b| b == 0));
        assert_eq!(&image[42..54], &NONCE);
        assert_eq!(
            u16::from_le_bytes([image[54], image[55]]) as usize,
            TEXT.len() + TAG_LEN
        );
        assert!(image[used..].iter().all(|&b| b == 0xFF));
        // Encrypted: the plaintext does not appear.
        assert!(!image.windows(4).any(|w| w == b"p4ss"));
        let mut buf = [0u8; IMAGE_LEN];
        assert_eq!(unseal(&key, &image, ID, &mut buf).unwrap(), TEXT);
        // The used part alone opens too.
        assert_eq!(unseal(&key, &image[..used], ID, &mut buf).unwrap(), TEXT);
    }

    fn assert_fails_closed(key: &[u8; 32], image: &[u8], id: &str) -> SealError {
        let mut buf = [0xAAu8; IMAGE_LEN];
        let e = unseal(key, image, id, &mut buf).unwrap_err();
        assert!(
            !buf.windows(4).any(|w| w == b"p4ss"),
            "no plaintext after {e:?}"
        );
        e
    }

    #[test]
    fn wrong_key_or_device_fails() {
        let (image, _, key) = sealed();
        let other = derive_key(&[0x43; 32], ID);
        assert_eq!(
            assert_fails_closed(&other, &image, ID),
            SealError::Authentication
        );
        // Right eFuse key, another node: the id is in the header.
        assert_eq!(
            assert_fails_closed(&key, &image, "rack-2"),
            SealError::WrongDevice
        );
        assert_eq!(
            assert_fails_closed(&key, &image, "rack"),
            SealError::WrongDevice
        );
        // The other node's own key does not open it either, even if the
        // header is rewritten to its id.
        let mut moved = image;
        moved[10..16].copy_from_slice(b"rack-2");
        let k2 = derive_key(&EFUSE, "rack-2");
        assert_eq!(
            assert_fails_closed(&k2, &moved, "rack-2"),
            SealError::Authentication
        );
    }

    #[test]
    fn any_flipped_bit_fails() {
        let (image, used, key) = sealed();
        let mut buf = [0u8; IMAGE_LEN];
        for byte in 0..used {
            for bit in 0..8 {
                let mut bad = image;
                bad[byte] ^= 1 << bit;
                let r = unseal(&key, &bad, ID, &mut buf);
                assert!(r.is_err(), "byte {byte} bit {bit} flipped still opened");
                assert!(!buf.windows(4).any(|w| w == b"p4ss"), "byte {byte}");
            }
        }
    }

    #[test]
    fn truncated_and_foreign_images_fail() {
        let (image, used, key) = sealed();
        for len in [0, 8, HEADER_LEN - 1, HEADER_LEN, used - 1, used - TAG_LEN] {
            assert_eq!(
                assert_fails_closed(&key, &image[..len], ID),
                SealError::BadLength,
                "len {len}"
            );
        }
        let erased = [0xFFu8; IMAGE_LEN];
        assert_eq!(assert_fails_closed(&key, &erased, ID), SealError::BadMagic);
        let mut v2 = image;
        v2[8] = 2;
        assert_eq!(assert_fails_closed(&key, &v2, ID), SealError::BadVersion(2));
        let mut zero_len = image;
        zero_len[54] = 0;
        zero_len[55] = 0;
        assert_eq!(
            assert_fails_closed(&key, &zero_len, ID),
            SealError::BadLength
        );
        let mut huge = image;
        huge[54] = 0xFF;
        huge[55] = 0xFF;
        assert_eq!(assert_fails_closed(&key, &huge, ID), SealError::BadLength);
        let mut small = [0u8; 8];
        assert_eq!(
            unseal(&key, &image, ID, &mut small),
            Err(SealError::BufferTooSmall)
        );
    }

    #[test]
    fn seal_refuses_bad_input() {
        let key = [1u8; 32];
        let mut out = [0u8; IMAGE_LEN];
        assert_eq!(
            seal(&key, "", NONCE, b"x", &mut out),
            Err(SealError::BadDeviceId)
        );
        assert_eq!(
            seal(&key, &"a".repeat_for_test(33), NONCE, b"x", &mut out),
            Err(SealError::BadDeviceId)
        );
        let big = [b'x'; MAX_PLAINTEXT + 1];
        assert_eq!(
            seal(&key, ID, NONCE, &big, &mut out),
            Err(SealError::TooLarge)
        );
        let fits = [b'x'; MAX_PLAINTEXT];
        assert_eq!(seal(&key, ID, NONCE, &fits, &mut out), Ok(IMAGE_LEN));
        let longest = "a".repeat_for_test(32);
        let k = derive_key(&EFUSE, &longest);
        let used = seal(&k, &longest, NONCE, TEXT, &mut out).unwrap();
        let mut buf = [0u8; 128];
        assert_eq!(unseal(&k, &out[..used], &longest, &mut buf).unwrap(), TEXT);
    }

    #[test]
    fn secrets_round_trip_with_escapes() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\"x\\y\n-----END CERTIFICATE-----\n";
        let s = Secrets {
            wifi_ssid: heapless::String::try_from("home \"net\"").unwrap(),
            wifi_password: heapless::String::try_from("p4ss").unwrap(),
            mqtt_host: heapless::String::try_from("hearth.local").unwrap(),
            mqtt_port: 8883,
            mqtt_username: heapless::String::try_from(ID).unwrap(),
            mqtt_password: heapless::String::try_from("secret").unwrap(),
            ca_pem: Some(heapless::String::try_from(pem).unwrap()),
        };
        let mut json = [0u8; MAX_PLAINTEXT];
        let json = s.encode(&mut json).unwrap();
        let via_std: serde_json::Value = serde_json::from_slice(json).unwrap();
        assert_eq!(via_std["ca_pem"], pem);
        let mut scratch = [0u8; MAX_CA_PEM];
        assert_eq!(Secrets::decode(json, &mut scratch).unwrap(), s);
        // Sealed and opened, then decoded.
        let key = derive_key(&EFUSE, ID);
        let mut image = [0u8; IMAGE_LEN];
        seal(&key, ID, NONCE, json, &mut image).unwrap();
        let mut buf = [0u8; IMAGE_LEN];
        let opened = unseal(&key, &image, ID, &mut buf).unwrap();
        assert_eq!(Secrets::decode(opened, &mut scratch).unwrap(), s);
        // Without a CA: no field.
        let none = Secrets { ca_pem: None, ..s };
        let mut buf2 = [0u8; 512];
        let json = none.encode(&mut buf2).unwrap();
        assert!(!json.windows(6).any(|w| w == b"ca_pem"));
        assert_eq!(Secrets::decode(json, &mut scratch).unwrap(), none);
        assert!(Secrets::decode(b"{}", &mut scratch).is_err());
    }

    trait RepeatForTest {
        fn repeat_for_test(&self, n: usize) -> heapless::String<64>;
    }
    impl RepeatForTest for str {
        fn repeat_for_test(&self, n: usize) -> heapless::String<64> {
            let mut s = heapless::String::new();
            for _ in 0..n {
                s.push_str(self).unwrap();
            }
            s
        }
    }
}
