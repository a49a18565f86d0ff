//! End to end without the chip: `hearth certs` makes the CA, the server
//! certificate, the device's password and the ACL; `hearth firmware seal`
//! seals the node's secrets; the firmware's own code (`src/unseal.rs`,
//! `src/tls.rs`, `src/mqtt.rs`) opens the image with the key the HMAC
//! peripheral would derive (node-core's software `derive_key` from the same
//! key file), connects to Mosquitto (configured with hearth's files) by the
//! sealed address over TLS 1.3 with the sealed CA pinned, logs in with the
//! sealed credential, and publishes under its own topics only.
//!
//! Needs a built `hearth` (the bridge): `HEARTH_BIN`, or the workspace's
//! `target/debug/hearth`. Without one the test says so and passes vacuously
//! (run.sh builds nothing on its own).

mod common;

#[path = "../../src/mqtt.rs"]
#[allow(dead_code)]
mod mqtt;
#[path = "../../src/tls.rs"]
#[allow(dead_code)]
mod tls;
#[path = "../../src/unseal.rs"]
#[allow(dead_code)]
mod unseal;

use std::path::PathBuf;
use std::process::Command;

use common::{WAIT, free_port, run};
use embedded_io_adapters::tokio_1::FromTokio;
use embedded_tls::{TlsConnection, TlsContext};
use hearth_node_core::seal;
use mqtt::{ConnectOptions, Session};
use rand_core::OsRng;
use tokio::net::TcpStream;
use tokio::time::timeout;

const ID: &str = "rack-1";

fn hearth_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("HEARTH_BIN") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../target/debug/hearth");
    p.exists().then_some(p)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_sealed_by_hearth_connects_with_its_credential_and_its_rights() {
    let Some(hearth) = hearth_bin() else {
        eprintln!("SKIPPED: no hearth binary (set HEARTH_BIN or build the bridge)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("hearth-fw-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    let (tls_port, plain_port) = (free_port(), free_port());

    run(Command::new(&hearth)
        .args(["certs", "init", "--data-dir"])
        .arg(&data));
    run(Command::new(&hearth)
        .args(["certs", "issue", "--device", ID, "--data-dir"])
        .arg(&data));
    run(Command::new(&hearth)
        .args(["firmware", "keygen", "--out"])
        .arg(dir.join("efuse.key")));
    std::fs::write(dir.join("wifi.pass"), "wifi-pass-123\n").unwrap();
    run(Command::new(&hearth)
        .args(["firmware", "seal", "--device", ID, "--key-file"])
        .arg(dir.join("efuse.key"))
        .args(["--wifi-ssid", "Home", "--wifi-password-file"])
        .arg(dir.join("wifi.pass"))
        .args([
            "--mqtt-host",
            "127.0.0.1",
            "--mqtt-port",
            &tls_port.to_string(),
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--out")
        .arg(dir.join("hearth_sec.bin")));

    // Mosquitto on hearth's files (its generated mosquitto.conf has fixed
    // ports; the same files on free ones here).
    let conf = format!(
        "user root\nper_listener_settings false\nallow_anonymous false\n\
         password_file {d}/mqtt/passwd\nacl_file {d}/mqtt/acl\n\
         listener {tls_port} 127.0.0.1\ncafile {d}/tls/ca.pem\n\
         certfile {d}/tls/server.pem\nkeyfile {d}/tls/server.key\ntls_version tlsv1.3\n\
         listener {plain_port} 127.0.0.1\n",
        d = data.display()
    );
    let _broker = common::mosquitto(dir.clone(), &conf, &[tls_port, plain_port]).await;
    let bridge_password = std::fs::read_to_string(data.join("mqtt/bridge.password")).unwrap();
    let mut messages = common::watcher(plain_port, "hearth-bridge", bridge_password.trim()).await;

    // What the firmware does at boot, with the chip's HMAC in software.
    let image: [u8; seal::IMAGE_LEN] = std::fs::read(dir.join("hearth_sec.bin"))
        .unwrap()
        .try_into()
        .expect("a 4096-byte image");
    let efuse: [u8; 32] = std::fs::read(dir.join("efuse.key"))
        .unwrap()
        .try_into()
        .unwrap();
    let loaded = unseal::open_image(&image, |id| Ok(seal::derive_key(&efuse, id)))
        .expect("the image hearth sealed opens with the key file's derivation");
    assert_eq!(loaded.device_id.as_str(), ID);
    let s = &loaded.secrets;
    assert_eq!(s.wifi_ssid.as_str(), "Home");
    assert_eq!(s.wifi_password.as_str(), "wifi-pass-123");
    let mut ca = vec![0u8; tls::MAX_CA_DER];
    let ca_len = tls::pem_to_der(s.ca_pem.as_deref().expect("CA sealed"), &mut ca)
        .unwrap()
        .len();
    let ca = &ca[..ca_len];

    // TLS by the sealed address (an IP: checked against the IP SANs hearth
    // wrote), the sealed CA pinned.
    let host = s.mqtt_host.as_str();
    let tcp = TcpStream::connect((host, s.mqtt_port)).await.unwrap();
    let (mut rd, mut wr) = (vec![0u8; 16640], vec![0u8; 4096]);
    let mut conn = TlsConnection::<_, tls::Suite>::new(FromTokio::new(tcp), &mut rd, &mut wr);
    let config = tls::config_for(host);
    timeout(
        WAIT,
        conn.open(TlsContext::new(
            &config,
            tls::PinnedCa::new(OsRng, ca, host),
        )),
    )
    .await
    .expect("handshake timed out")
    .expect("TLS to hearth's server certificate with the sealed CA");

    let status = format!("hearth-node/{ID}/status");
    let (mut tx, mut rx) = ([0u8; 768], [0u8; 256]);
    let opts = ConnectOptions {
        client_id: ID,
        username: s.mqtt_username.as_str(),
        password: s.mqtt_password.as_bytes(),
        keep_alive_s: 90,
        will_topic: &status,
        will_payload: b"offline",
    };
    let mut session = Session::connect(conn, &mut tx, &mut rx, &opts)
        .await
        .expect("the sealed credential is accepted");

    // Another device's topic: Mosquitto acknowledges (QoS 1) but drops it.
    session
        .publish(
            "hearth-node/rack-2/telemetry",
            br#"{"temperature":99}"#,
            false,
        )
        .await
        .expect("PUBACK even when denied");
    let telemetry = format!("hearth-node/{ID}/telemetry");
    let payload = br#"{"temperature":21.5,"humidity":40.25}"#;
    session.publish(&telemetry, payload, false).await.unwrap();
    // The next message the bridge sees is the allowed one, not rack-2's.
    let (topic, got, _) = common::next_message(&mut messages).await;
    assert_eq!(
        (topic.as_str(), got.as_slice()),
        (telemetry.as_str(), &payload[..])
    );

    drop(session);
    let (topic, got, _) = common::next_message(&mut messages).await;
    assert_eq!(
        (topic.as_str(), got.as_slice()),
        (status.as_str(), &b"offline"[..])
    );
}
