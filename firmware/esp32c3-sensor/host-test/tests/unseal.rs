//! The firmware's opening of the sealed partition (`src/unseal.rs`) with
//! images made by node-core's `seal`, the key derived in software by
//! node-core's `derive_key` (what the HMAC peripheral computes from the eFuse
//! key on the chip), and the CA from the secrets turned into the DER the TLS
//! verifier pins (`src/tls.rs`).

#[path = "../../src/tls.rs"]
#[allow(dead_code)]
mod tls;
#[path = "../../src/unseal.rs"]
#[allow(dead_code)]
mod unseal;

use hearth_node_core::seal::{self, IMAGE_LEN, Secrets};
use std::process::Command;
use unseal::{SecretsError, open_image};

const EFUSE: [u8; 32] = [0x5A; 32];
const ID: &str = "rack-1";

fn ca_pem() -> String {
    // One directory per call: the tests run in parallel.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hearth-fw-unseal-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("ca.key");
    let pem = dir.join("ca.pem");
    for args in [
        vec![
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            key.to_str().unwrap(),
        ],
        vec![
            "req",
            "-x509",
            "-new",
            "-sha256",
            "-days",
            "30",
            "-subj",
            "/CN=Hearth CA test",
            "-key",
            key.to_str().unwrap(),
            "-out",
            pem.to_str().unwrap(),
        ],
    ] {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl on PATH");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(&pem).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    text
}

fn secrets(user: &str, ca: &str) -> Secrets {
    Secrets {
        wifi_ssid: "home".try_into().unwrap(),
        wifi_password: "wifi pass \"quoted\"".try_into().unwrap(),
        mqtt_host: "hearth.lan".try_into().unwrap(),
        mqtt_port: 8883,
        mqtt_username: user.try_into().unwrap(),
        mqtt_password: "Zx9-generated-password-24".try_into().unwrap(),
        ca_pem: Some(ca.try_into().unwrap()),
    }
}

fn sealed(id: &str, s: &Secrets) -> [u8; IMAGE_LEN] {
    let mut json = [0u8; IMAGE_LEN];
    let json = s.encode(&mut json).unwrap();
    let mut image = [0u8; IMAGE_LEN];
    seal::seal(&seal::derive_key(&EFUSE, id), id, [9; 12], json, &mut image).unwrap();
    image
}

fn chip(efuse: [u8; 32]) -> impl FnOnce(&str) -> Result<[u8; 32], SecretsError> {
    move |id| Ok(seal::derive_key(&efuse, id))
}

#[test]
fn a_sealed_image_opens_with_the_chips_key_and_yields_the_pinned_ca() {
    let ca = ca_pem();
    let want = secrets(ID, &ca);
    let loaded = open_image(&sealed(ID, &want), chip(EFUSE)).expect("opens");
    assert_eq!(loaded.device_id.as_str(), ID);
    assert_eq!(loaded.secrets, want);
    // The PEM survived JSON escaping; it decodes to a DER certificate.
    let mut der = [0u8; tls::MAX_CA_DER];
    let der = tls::pem_to_der(loaded.secrets.ca_pem.as_deref().unwrap(), &mut der).unwrap();
    assert_eq!(der[0], 0x30, "a DER SEQUENCE");
}

#[test]
fn another_chips_key_does_not_open_it() {
    let image = sealed(ID, &secrets(ID, &ca_pem()));
    let err = open_image(&image, chip([0xA5; 32]))
        .err()
        .expect("wrong key");
    assert!(
        matches!(err, SecretsError::Unseal(seal::SealError::Authentication)),
        "{err:?}"
    );
}

#[test]
fn a_flipped_bit_or_another_device_id_does_not_open_it() {
    let image = sealed(ID, &secrets(ID, &ca_pem()));
    let mut flipped = image;
    flipped[100] ^= 0x01;
    assert!(open_image(&flipped, chip(EFUSE)).is_err());
    // The header names another (valid) device: its key differs.
    let mut moved = image;
    moved[10..16].copy_from_slice(b"rack-2");
    assert!(matches!(
        open_image(&moved, chip(EFUSE)),
        Err(SecretsError::Unseal(_))
    ));
}

#[test]
fn an_erased_partition_fails_closed_before_any_key_is_derived() {
    let erased = [0xFF; IMAGE_LEN];
    let err = open_image(&erased, |_| {
        panic!("no key derivation for an erased partition")
    })
    .err()
    .unwrap();
    assert!(matches!(err, SecretsError::DeviceId), "{err:?}");
}

#[test]
fn an_mqtt_user_other_than_the_device_id_is_refused() {
    let image = sealed(ID, &secrets("someone-else", &ca_pem()));
    let err = open_image(&image, chip(EFUSE)).err().unwrap();
    assert!(matches!(err, SecretsError::UsernameMismatch), "{err:?}");
}
