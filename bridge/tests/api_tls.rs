//! HTTPS/WSS on the API port (`[http] tls`, issue 16 item 2) with real
//! clients over real TLS on loopback: hyper + rustls trusting the test CA,
//! tokio-tungstenite over rustls (`wss://`), Home Assistant's own
//! home-assistant-js-websocket from Node with `NODE_EXTRA_CA_CERTS`; plain
//! HTTP on the port gets a 400 and no API data; a client without the CA is
//! refused by its own TLS; a client that never sends its handshake delays
//! no one and is dropped after the handshake timeout.

use crate::common;
use crate::scripting;

use bytes::Bytes;
use common::pki::{Pki, make_pki};
use common::{BrokerKind, Harness, wait_for};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const TEMPERATURE: &str = "sensor.server_room_temperature";
/// Every network step of these tests gives up after this.
const STEP: Duration = Duration::from_secs(15);

/// A bridge and twin with `[http] tls = true`; the test CA's server
/// certificate in `<data_dir>/tls/server.pem`, `server.key` (where
/// `hearth certs init` puts them). Returns the PKI and an access token.
async fn tls_bridge(pki_dir: &Path) -> (Harness, Pki, String) {
    let pki = make_pki(pki_dir);
    let h = Harness::start(BrokerKind::Embedded, 60.0, |c| {
        c.http.tls = Some(true);
        let tls = c.data_dir.as_ref().unwrap().join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::copy(&pki.cert_pem, tls.join("server.pem")).unwrap();
        std::fs::copy(&pki.key_pem, tls.join("server.key")).unwrap();
    })
    .await;
    let (_, token) = hearth::api::auth::tokens::create(h.data_dir.path(), "tls test").unwrap();
    (h, pki, token)
}

/// A rustls client trusting `ca` (or nothing).
fn connector(ca: Option<&Path>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    addr: SocketAddr,
    ca: Option<&Path>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = tokio::time::timeout(STEP, TcpStream::connect(addr))
        .await
        .expect("TCP connect in time")?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(STEP, connector(ca).connect(name, tcp))
        .await
        .expect("TLS handshake in time")
}

/// GET over HTTPS: (status, body).
async fn https_get(addr: SocketAddr, ca: &Path, path: &str, token: Option<&str>) -> (u16, String) {
    let tls = tls_connect(addr, Some(ca)).await.expect("TLS handshake");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let mut req = hyper::Request::get(path).header("host", format!("localhost:{}", addr.port()));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = tokio::time::timeout(
        STEP,
        send.send_request(req.body(Empty::<Bytes>::new()).unwrap()),
    )
    .await
    .expect("an answer in time")
    .unwrap();
    let status = res.status().as_u16();
    let body = tokio::time::timeout(STEP, res.into_body().collect())
        .await
        .expect("the body in time")
        .unwrap()
        .to_bytes();
    conn.abort();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Writes `request` in plain TCP and reads the whole answer.
async fn plain_exchange(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(STEP, tcp.read_to_end(&mut answer))
        .await
        .expect("the server closes after its answer");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_the_api_and_plain_http_gets_a_400() {
    let dir = tempfile::tempdir().unwrap();
    let (h, pki, token) = tls_bridge(dir.path()).await;
    let addr = h.bridge().http_addr;
    assert!(
        addr.ip().is_loopback(),
        "the API binds 127.0.0.1 by default"
    );
    wait_for("the room temperature", STEP, || {
        h.bridge().store.get(TEMPERATURE)
    })
    .await;

    let (status, body) = https_get(addr, &pki.ca_pem, "/api/health", None).await;
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert!(health.is_object(), "{body}");
    let (status, body) = https_get(addr, &pki.ca_pem, "/api/states", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(TEMPERATURE), "{body}");

    // Plain HTTP, with a valid token: the nginx-style refusal, nothing else.
    let answer = plain_exchange(
        addr,
        &format!(
            "GET /api/states HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
        ),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("this port speaks HTTPS: use https:// or wss://"),
        "{answer}"
    );
    assert!(
        !answer.contains("sensor."),
        "API data over plain HTTP: {answer}"
    );
    // A plain WebSocket upgrade: the same.
    let answer = plain_exchange(
        addr,
        "GET /api/websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(!answer.contains("auth_required"), "{answer}");
    let err = tokio_tungstenite::connect_async(format!("ws://{addr}/api/websocket"))
        .await
        .err();
    assert!(err.is_some(), "a ws:// client must not get a WebSocket");

    // A client that does not trust the CA is refused by its own TLS.
    let untrusting = tls_connect(addr, None).await;
    assert!(untrusting.is_err(), "a client without the CA completed TLS");

    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_authenticates_and_gets_states() {
    let dir = tempfile::tempdir().unwrap();
    let (h, pki, token) = tls_bridge(dir.path()).await;
    let addr = h.bridge().http_addr;
    wait_for("the room temperature", STEP, || {
        h.bridge().store.get(TEMPERATURE)
    })
    .await;

    let tls = tls_connect(addr, Some(&pki.ca_pem)).await.unwrap();
    let url = format!("wss://localhost:{}/api/websocket", addr.port());
    let (mut ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::client_async(url, tls))
        .await
        .expect("upgrade in time")
        .expect("WebSocket upgrade over TLS");
    assert_eq!(read(&mut ws).await["type"], "auth_required");
    ws.send(Message::text(
        json!({"type": "auth", "access_token": token}).to_string(),
    ))
    .await
    .unwrap();
    let ok = read(&mut ws).await;
    assert_eq!(ok["type"], "auth_ok", "{ok}");
    ws.send(Message::text(
        json!({"id": 1, "type": "get_states"}).to_string(),
    ))
    .await
    .unwrap();
    let states = loop {
        let v = read(&mut ws).await;
        if v["type"] == "result" && v["id"] == 1 {
            break v;
        }
    };
    assert_eq!(states["success"], true, "{states}");
    let ids: Vec<&str> = states["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["entity_id"].as_str())
        .collect();
    assert!(ids.contains(&TEMPERATURE), "{ids:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_js_websocket_works_over_wss() {
    let node_dir = scripting::node_dir();
    tokio::task::spawn_blocking({
        let dir = node_dir.clone();
        move || scripting::ensure_node_modules(&dir)
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (h, pki, token) = tls_bridge(dir.path()).await;
    let addr = h.bridge().http_addr;
    wait_for("the AC's climate entity", STEP, || {
        h.bridge().store.get("climate.server_room_ac")
    })
    .await;

    let node = |url: String, ca: Option<&Path>| {
        let mut cmd = std::process::Command::new("node");
        cmd.arg("server-room.mjs")
            .args(["--check", "--target", "22", "--timeout", "20"])
            .current_dir(&node_dir)
            .env("HEARTH_URL", url)
            .env("HEARTH_TOKEN", &token)
            .env_remove("NODE_EXTRA_CA_CERTS");
        if let Some(ca) = ca {
            cmd.env("NODE_EXTRA_CA_CERTS", ca);
        }
        cmd
    };
    let https = format!("https://localhost:{}", addr.port());
    let out = scripting::run(
        node(https.clone(), Some(&pki.ca_pem)),
        Duration::from_secs(40),
    )
    .await;
    let seen = out.check_result("server-room.mjs --check over wss://");
    assert!(seen["states"].as_u64().unwrap() >= 3, "{seen}");
    assert_eq!(seen["target_seen"].as_f64(), Some(22.0), "{seen}");

    // Without the CA Node refuses the certificate; over plain ws:// the
    // port refuses the client: both fail, neither reaches the API.
    let out = scripting::run(node(https, None), Duration::from_secs(40)).await;
    assert!(!out.success, "node trusted an unknown CA:\n{}", out.stdout);
    let out = scripting::run(
        node(
            format!("http://localhost:{}", addr.port()),
            Some(&pki.ca_pem),
        ),
        Duration::from_secs(40),
    )
    .await;
    assert!(!out.success, "ws:// reached the API:\n{}", out.stdout);
    h.stop().await;
}

type Wss = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// The next text message, as JSON.
async fn read(ws: &mut Wss) -> Value {
    loop {
        let frame = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("a message in time")
            .expect("the connection is open")
            .unwrap();
        if let Message::Text(t) = frame {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// The acceptor alone: a TCP client that never sends its ClientHello is
/// dropped at the handshake timeout, and does not delay a client behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_dropped_at_the_handshake_timeout_and_delays_no_one() {
    use hearth::api::tls::{ApiTls, TlsOptions};
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let tls = ApiTls::load(&TlsOptions {
        cert_file: pki.cert_pem.clone(),
        key_file: pki.key_pem.clone(),
        handshake_timeout: Duration::from_millis(500),
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Each accepted connection on its own task, as api::server does.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (tls, done) = (tls.clone(), done_tx.clone());
            tokio::spawn(async move {
                let start = Instant::now();
                let ok = tls.accept(stream).await.is_some();
                let _ = done.send((ok, start.elapsed()));
            });
        }
    });
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let client = tls_connect(addr, Some(&pki.ca_pem)).await;
    assert!(client.is_ok(), "{:?}", client.err());
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "the handshake behind a silent client took {:?}",
        started.elapsed()
    );
    let first = tokio::time::timeout(STEP, done_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(first.0, "the real client's handshake completed first");
    let (ok, after) = tokio::time::timeout(STEP, done_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(!ok);
    assert!(
        (Duration::from_millis(450)..Duration::from_secs(3)).contains(&after),
        "the silent client was dropped after {after:?}"
    );
    // The server closed it: the idle client reads EOF (or a reset).
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(STEP, idle.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
}
