//! `hearth firmware keygen` and `hearth firmware seal` through the real
//! binary: the image it writes opens with node-core's `unseal` under the
//! key derived from the key file (what the node's HMAC peripheral derives
//! from the same key in its eFuses) and holds the secrets given; it fails
//! with another key or a flipped bit; nothing secret is printed.

use hearth_node_core::seal::{self, SealError, Secrets};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

const ID: &str = "rack-1";
const DEVICE_PASSWORD: &str = "Zq8sWm3kP0vT7yXb2nRc5dLf";
const WIFI_PASSWORD: &str = "correct horse battery";
const CA_PEM: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIUTESTCA\n-----END CERTIFICATE-----\n";

fn hearth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .expect("hearth runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A data directory as `hearth certs init` + `issue --device rack-1` leave it
/// (only the two files `seal` reads).
fn data_dir(root: &Path) -> std::path::PathBuf {
    let data = root.join("data");
    std::fs::create_dir_all(data.join("tls")).unwrap();
    std::fs::create_dir_all(data.join("devices").join(ID)).unwrap();
    std::fs::write(data.join("tls/ca.pem"), CA_PEM).unwrap();
    std::fs::write(
        data.join("devices").join(ID).join("password"),
        format!("{DEVICE_PASSWORD}\n"),
    )
    .unwrap();
    data
}

fn seal_args<'a>(key: &'a str, wifi: &'a str, data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "firmware",
        "seal",
        "--device",
        ID,
        "--key-file",
        key,
        "--wifi-ssid",
        "home-net",
        "--wifi-password-file",
        wifi,
        "--mqtt-host",
        "hearth.local",
        "--data-dir",
        data,
        "--out",
        out,
    ]
}

#[test]
fn sealed_image_opens_with_the_derived_key_and_fails_closed_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let key = dir.path().join("efuse.key");
    let wifi = dir.path().join("wifi.txt");
    let out = dir.path().join("hearth_sec.bin");
    std::fs::write(&wifi, format!("{WIFI_PASSWORD}\n")).unwrap();

    let o = hearth(&["firmware", "keygen", "--out", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let efuse: [u8; 32] = std::fs::read(&key).unwrap().try_into().unwrap();
    assert_eq!(mode(&key), 0o600);
    // Never overwrites a key (it may be burnt into a node).
    let again = hearth(&["firmware", "keygen", "--out", key.to_str().unwrap()]);
    assert!(!again.status.success());
    assert_eq!(std::fs::read(&key).unwrap(), efuse);

    let (k, w, d, b) = (
        key.to_str().unwrap(),
        wifi.to_str().unwrap(),
        data.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let o = hearth(&seal_args(k, w, d, b));
    assert!(o.status.success(), "{}", text(&o));
    let printed = text(&o);
    assert!(printed.contains("rack-1") && printed.contains("hearth_sec.bin"));
    for secret in [DEVICE_PASSWORD, WIFI_PASSWORD, "MIIBdzCCAR2g"] {
        assert!(!printed.contains(secret), "printed a secret: {printed}");
    }
    let hex: String = efuse.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!printed.contains(&hex), "printed the key");

    let image = std::fs::read(&out).unwrap();
    assert_eq!(image.len(), seal::IMAGE_LEN);
    assert_eq!(mode(&out), 0o600);
    for secret in [DEVICE_PASSWORD, WIFI_PASSWORD, "home-net", "BEGIN CERT"] {
        assert!(
            !image.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "`{secret}` in clear in the image"
        );
    }

    // Opens with the key the node derives from its eFuse key.
    let node_key = seal::derive_key(&efuse, ID);
    let mut buf = vec![0u8; seal::IMAGE_LEN];
    let json = seal::unseal(&node_key, &image, ID, &mut buf).expect("opens");
    let mut scratch = vec![0u8; seal::MAX_CA_PEM];
    let s = Secrets::decode(json, &mut scratch).expect("secrets JSON");
    assert_eq!(s.wifi_ssid.as_str(), "home-net");
    assert_eq!(s.wifi_password.as_str(), WIFI_PASSWORD);
    assert_eq!(s.mqtt_host.as_str(), "hearth.local");
    assert_eq!(s.mqtt_port, 8883);
    assert_eq!(s.mqtt_username.as_str(), ID);
    assert_eq!(s.mqtt_password.as_str(), DEVICE_PASSWORD);
    assert_eq!(s.ca_pem.as_deref(), Some(CA_PEM));

    // Another key: no.
    let mut other = efuse;
    other[0] ^= 1;
    let mut buf = vec![0u8; seal::IMAGE_LEN];
    assert_eq!(
        seal::unseal(&seal::derive_key(&other, ID), &image, ID, &mut buf),
        Err(SealError::Authentication)
    );
    // Another device with the same eFuse key: no.
    assert!(
        seal::unseal(
            &seal::derive_key(&efuse, "rack-2"),
            &image,
            "rack-2",
            &mut buf
        )
        .is_err()
    );
    // A flipped bit in the header, the nonce, the ciphertext or the tag: no.
    let used = seal::HEADER_LEN + u16::from_le_bytes([image[54], image[55]]) as usize;
    for at in [9, 12, 45, seal::HEADER_LEN + 3, used - 1] {
        let mut bad = image.clone();
        bad[at] ^= 0x10;
        assert!(
            seal::unseal(&node_key, &bad, ID, &mut buf).is_err(),
            "opened with byte {at} flipped"
        );
        assert!(
            !buf.windows(WIFI_PASSWORD.len())
                .any(|w| w == WIFI_PASSWORD.as_bytes())
        );
    }
    // Each seal has a fresh nonce: sealing again gives another image.
    let out2 = dir.path().join("again.bin");
    let o = hearth(&seal_args(k, w, d, out2.to_str().unwrap()));
    assert!(o.status.success(), "{}", text(&o));
    let image2 = std::fs::read(&out2).unwrap();
    assert_ne!(image2[42..54], image[42..54], "same nonce twice");
}

#[test]
fn seal_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let wifi = dir.path().join("wifi.txt");
    std::fs::write(&wifi, WIFI_PASSWORD).unwrap();
    let out = dir.path().join("hearth_sec.bin");
    let (w, d, b) = (
        wifi.to_str().unwrap(),
        data.to_str().unwrap(),
        out.to_str().unwrap(),
    );

    // A key file of the wrong size: named, with the size expected.
    let short = dir.path().join("short.key");
    std::fs::write(&short, [7u8; 16]).unwrap();
    let o = hearth(&seal_args(short.to_str().unwrap(), w, d, b));
    assert!(!o.status.success());
    let e = text(&o);
    assert!(
        e.contains("short.key") && e.contains("16 bytes") && e.contains("exactly 32"),
        "{e}"
    );

    // No credential for the device: run `hearth certs issue`.
    let key = dir.path().join("efuse.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    std::fs::remove_file(data.join("devices").join(ID).join("password")).unwrap();
    let o = hearth(&seal_args(key.to_str().unwrap(), w, d, b));
    assert!(!o.status.success());
    let e = text(&o);
    assert!(e.contains("hearth certs issue --device rack-1"), "{e}");
    assert!(!out.exists(), "no image written on error");

    // No CA: run `hearth certs init`.
    std::fs::write(data.join("devices").join(ID).join("password"), "pw-123456").unwrap();
    std::fs::remove_file(data.join("tls/ca.pem")).unwrap();
    let o = hearth(&seal_args(key.to_str().unwrap(), w, d, b));
    assert!(!o.status.success());
    let e = text(&o);
    assert!(
        e.contains("ca.pem") && e.contains("hearth certs init"),
        "{e}"
    );
    assert!(
        !e.contains(WIFI_PASSWORD) && !e.contains("pw-123456"),
        "{e}"
    );
}
