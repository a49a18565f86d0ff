//! The firmware's TLS verification (`src/tls.rs`: pinned CA, host name) and
//! MQTT 3.1.1 session (`src/mqtt.rs`) against a real Mosquitto with TLS 1.3
//! and a password file, on loopback. The same source files the firmware
//! builds, compiled for the host; only the RNG (OsRng instead of the TRNG)
//! and the transport (tokio TCP instead of embassy-net) differ.
//!
//! Certificates are made with the openssl CLI: an ECDSA P-256 CA and a
//! server certificate for `localhost` (what `hearth certs` makes with rcgen).

mod common;

#[path = "../../src/mqtt.rs"]
#[allow(dead_code)]
mod mqtt;
#[path = "../../src/tls.rs"]
#[allow(dead_code)]
mod tls;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{WAIT, free_port, run};
use embedded_io_adapters::tokio_1::FromTokio;
use embedded_tls::{TlsConnection, TlsContext, TlsError};
use mqtt::{ConnectOptions, MqttError, Session};
use mqttrs::ConnectReturnCode;
use rand_core::OsRng;
use tokio::net::TcpStream;
use tokio::time::timeout;

const DEVICE: &str = "rack-1";
const PASSWORD: &str = "device-s3cret";
const WATCHER: &str = "watcher";
const WATCHER_PASSWORD: &str = "w4tcher";

/// A CA (P-256) in `dir`: `<name>.pem`, `<name>.key`.
fn make_ca(dir: &Path, name: &str) {
    run(Command::new("openssl")
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(dir.join(format!("{name}.key"))));
    run(Command::new("openssl")
        .args(["req", "-x509", "-new", "-sha256", "-days", "30", "-key"])
        .arg(dir.join(format!("{name}.key")))
        .args(["-subj", &format!("/CN={name}")])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-out")
        .arg(dir.join(format!("{name}.pem"))));
}

/// A server certificate for `localhost` signed by CA `ca`: server.pem/.key.
fn make_server_cert(dir: &Path, ca: &str) {
    run(Command::new("openssl")
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(dir.join("server.key")));
    run(Command::new("openssl")
        .args(["req", "-new", "-key"])
        .arg(dir.join("server.key"))
        .args(["-subj", "/CN=hearth-test-server", "-out"])
        .arg(dir.join("server.csr")));
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-sha256", "-days", "30", "-in"])
        .arg(dir.join("server.csr"))
        .arg("-CA")
        .arg(dir.join(format!("{ca}.pem")))
        .arg("-CAkey")
        .arg(dir.join(format!("{ca}.key")))
        .args(["-CAcreateserial", "-extfile"])
        .arg(dir.join("ext.cnf"))
        .arg("-out")
        .arg(dir.join("server.pem")));
}

struct Broker {
    _mosquitto: common::Mosquitto,
    dir: PathBuf,
    tls_port: u16,
    plain_port: u16,
}

/// Mosquitto with a TLS 1.3 listener (the server certificate from "ca") and
/// a plain one for the watcher, both password-protected.
async fn broker(tag: &str) -> Broker {
    let dir = std::env::temp_dir().join(format!("hearth-fw-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make_ca(&dir, "ca");
    make_ca(&dir, "other-ca");
    make_server_cert(&dir, "ca");
    let passwd = dir.join("passwd");
    run(Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&passwd)
        .args([DEVICE, PASSWORD]));
    run(Command::new("mosquitto_passwd")
        .arg("-b")
        .arg(&passwd)
        .args([WATCHER, WATCHER_PASSWORD]));
    let (tls_port, plain_port) = (free_port(), free_port());
    let conf = format!(
        "user root\nallow_anonymous false\npassword_file {passwd}\n\
         listener {tls_port} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\n\
         keyfile {d}/server.key\ntls_version tlsv1.3\n\
         listener {plain_port} 127.0.0.1\n",
        passwd = passwd.display(),
        d = dir.display(),
    );
    let m = common::mosquitto(dir.clone(), &conf, &[tls_port, plain_port]).await;
    Broker {
        _mosquitto: m,
        dir,
        tls_port,
        plain_port,
    }
}

fn ca_der(b: &Broker, name: &str) -> Vec<u8> {
    let pem = std::fs::read_to_string(b.dir.join(format!("{name}.pem"))).unwrap();
    let mut out = vec![0u8; tls::MAX_CA_DER];
    let n = tls::pem_to_der(&pem, &mut out).unwrap().len();
    out.truncate(n);
    out
}

/// TCP + the firmware's TLS open against the broker's TLS port.
async fn open_tls<'a>(
    b: &Broker,
    ca: &'a [u8],
    server_name: &str,
    read: &'a mut [u8],
    write: &'a mut [u8],
) -> Result<TlsConnection<'a, FromTokio<TcpStream>, tls::Suite>, TlsError> {
    let tcp = TcpStream::connect(("127.0.0.1", b.tls_port)).await.unwrap();
    let mut conn = TlsConnection::new(FromTokio::new(tcp), read, write);
    let config = tls::config_for(server_name);
    let provider = tls::PinnedCa::new(OsRng, ca, server_name);
    timeout(WAIT, conn.open(TlsContext::new(&config, provider)))
        .await
        .expect("TLS handshake timed out")?;
    Ok(conn)
}

fn options<'a>(password: &'a str, will_topic: &'a str) -> ConnectOptions<'a> {
    ConnectOptions {
        client_id: DEVICE,
        username: DEVICE,
        password: password.as_bytes(),
        keep_alive_s: 90,
        will_topic,
        will_payload: b"offline",
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn publishes_over_tls_with_the_pinned_ca_and_the_will_fires() {
    let b = broker("ok").await;
    let mut messages = common::watcher(b.plain_port, WATCHER, WATCHER_PASSWORD).await;
    let ca = ca_der(&b, "ca");
    let (mut rd, mut wr) = (vec![0u8; 16640], vec![0u8; 4096]);
    let conn = open_tls(&b, &ca, "localhost", &mut rd, &mut wr)
        .await
        .expect("TLS with the pinned CA");

    let status = format!("hearth-node/{DEVICE}/status");
    let (mut tx, mut rx) = ([0u8; 768], [0u8; 256]);
    let mut session = Session::connect(conn, &mut tx, &mut rx, &options(PASSWORD, &status))
        .await
        .expect("CONNACK accepted");
    session
        .publish(&status, b"online", true)
        .await
        .expect("PUBACK for status");
    let telemetry = format!("hearth-node/{DEVICE}/telemetry");
    let payload = br#"{"temperature":21.5,"humidity":40.25,"age_ms":90000}"#;
    session
        .publish(&telemetry, payload, false)
        .await
        .expect("PUBACK for telemetry");

    assert_eq!(
        common::next_message(&mut messages).await,
        (status.clone(), b"online".to_vec(), false) // live delivery: retain flag cleared
    );
    assert_eq!(
        common::next_message(&mut messages).await,
        (telemetry, payload.to_vec(), false)
    );

    // The node vanishes (no DISCONNECT): the broker publishes the will.
    drop(session);
    let (topic, payload, _) = common::next_message(&mut messages).await;
    assert_eq!(
        (topic.as_str(), payload.as_slice()),
        (status.as_str(), &b"offline"[..])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_not_signed_by_the_pinned_ca_is_refused() {
    let b = broker("other-ca").await;
    let other = ca_der(&b, "other-ca");
    let (mut rd, mut wr) = (vec![0u8; 16640], vec![0u8; 4096]);
    let err = open_tls(&b, &other, "localhost", &mut rd, &mut wr)
        .await
        .err()
        .expect("a server certificate from another CA must be refused");
    assert!(
        matches!(
            err,
            TlsError::InvalidSignature | TlsError::InvalidCertificate
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_name_not_in_the_certificate_is_refused() {
    let b = broker("name").await;
    let ca = ca_der(&b, "ca");
    let (mut rd, mut wr) = (vec![0u8; 16640], vec![0u8; 4096]);
    let err = open_tls(&b, &ca, "hearth.example", &mut rd, &mut wr)
        .await
        .err()
        .expect("a certificate without the name must be refused");
    assert!(matches!(err, TlsError::InvalidCertificate), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_reached_by_ip_address_is_verified_against_the_ip_sans() {
    let b = broker("ip").await;
    let ca = ca_der(&b, "ca");
    let (mut rd, mut wr) = (vec![0u8; 16640], vec![0u8; 4096]);
    // The server certificate has IP:127.0.0.1 (and DNS:localhost).
    let conn = open_tls(&b, &ca, "127.0.0.1", &mut rd, &mut wr)
        .await
        .expect("127.0.0.1 is an IP SAN");
    let status = format!("hearth-node/{DEVICE}/status");
    let (mut tx, mut rx) = ([0u8; 768], [0u8; 256]);
    Session::connect(conn, &mut tx, &mut rx, &options(PASSWORD, &status))
        .await
        .expect("CONNACK accepted over the IP-verified connection");

    // Same server, but the node was told another address: refused.
    let (mut rd, mut wr) = (vec![0u8; 16640], vec![0u8; 4096]);
    let err = open_tls(&b, &ca, "127.0.0.2", &mut rd, &mut wr)
        .await
        .err()
        .expect("an address that is not an IP SAN must be refused");
    assert!(matches!(err, TlsError::InvalidCertificate), "{err:?}");

    // The address matches but the chain does not lead to the pinned CA.
    let other = ca_der(&b, "other-ca");
    let (mut rd, mut wr) = (vec![0u8; 16640], vec![0u8; 4096]);
    let err = open_tls(&b, &other, "127.0.0.1", &mut rd, &mut wr)
        .await
        .err()
        .expect("another CA must be refused for an IP host too");
    assert!(
        matches!(
            err,
            TlsError::InvalidSignature | TlsError::InvalidCertificate
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_refused_with_its_connack_code() {
    let b = broker("password").await;
    let ca = ca_der(&b, "ca");
    let (mut rd, mut wr) = (vec![0u8; 16640], vec![0u8; 4096]);
    let conn = open_tls(&b, &ca, "localhost", &mut rd, &mut wr)
        .await
        .expect("TLS with the pinned CA");
    let status = format!("hearth-node/{DEVICE}/status");
    let (mut tx, mut rx) = ([0u8; 768], [0u8; 256]);
    let err = Session::connect(conn, &mut tx, &mut rx, &options("wrong", &status))
        .await
        .err()
        .expect("a wrong password must be refused");
    // Mosquitto answers CONNACK 5 (not authorized) for a bad password.
    assert!(
        matches!(
            err,
            MqttError::Refused(
                ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUsernamePassword
            )
        ),
        "{err:?}"
    );
}

#[test]
fn pem_to_der_matches_openssl() {
    let dir = std::env::temp_dir().join(format!("hearth-fw-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    make_ca(&dir, "ca");
    run(Command::new("openssl")
        .args(["x509", "-outform", "der", "-in"])
        .arg(dir.join("ca.pem"))
        .arg("-out")
        .arg(dir.join("ca.der")));
    let pem = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    let want = std::fs::read(dir.join("ca.der")).unwrap();
    let mut out = vec![0u8; tls::MAX_CA_DER];
    assert_eq!(tls::pem_to_der(&pem, &mut out).unwrap(), want.as_slice());
    // JSON-unescaped PEM from the sealed secrets has the same newlines; a
    // PEM with its body cut is refused, not decoded to garbage.
    let cut = pem.replacen("-----END CERTIFICATE-----", "", 1);
    assert!(tls::pem_to_der(&cut, &mut out).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
