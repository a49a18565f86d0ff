//! Secrets never leak (issue 16 item 4): a bridge whose config holds an
//! SMTP password, a webhook URL token and Authorization header, an
//! InfluxDB token (from a file) and an MQTT password (`[mqtt] password`
//! from a file, for the broker URL's user, to a real Mosquitto) runs the paths that report errors — the SMTP
//! server refuses the login, the webhook answers 401, InfluxDB is
//! unreachable — and wrong API tokens are presented over REST and
//! WebSocket. None of the secret strings may appear in the logs, in
//! `/api/config` or `/api/states`, in the alerts' delivery errors, or in
//! any file of the data directory (the recorder's SQLite database and its
//! WAL included); the servers prove the secrets did reach the protocols
//! that need them.

use crate::common;

use common::{BrokerKind, Harness, log_mark, logs_since, wait_for};
use futures_util::{SinkExt, StreamExt};
use hearth::alerts::{NewAlert, Severity};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const SMTP_PASSWORD: &str = "smtp-pw-Q7v3kL9x";
const WEBHOOK_PATH_TOKEN: &str = "hookpath-Zr8Tn2Wd";
const WEBHOOK_QUERY_TOKEN: &str = "hookquery-Mx4Pb6Yc";
const WEBHOOK_HEADER: &str = "hookheader-Fs5Jg1Hv";
const INFLUX_TOKEN: &str = "influx-tok-Ua2Ke7Rq";
const MQTT_PASSWORD: &str = "mqtt-pw-Lc9Dw3Np";
const WRONG_API_TOKEN: &str = "wrong-api-token-Bt6Xh8Ej";
const STEP: Duration = Duration::from_secs(20);

fn all_secrets() -> [&'static str; 7] {
    [
        SMTP_PASSWORD,
        WEBHOOK_PATH_TOKEN,
        WEBHOOK_QUERY_TOKEN,
        WEBHOOK_HEADER,
        INFLUX_TOKEN,
        MQTT_PASSWORD,
        WRONG_API_TOKEN,
    ]
}

/// Panics naming the secret and where it showed.
fn assert_clean(place: &str, text: &[u8]) {
    for s in all_secrets() {
        assert!(
            !text.windows(s.len()).any(|w| w == s.as_bytes()),
            "secret `{s}` appears in {place}"
        );
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An SMTP server that offers AUTH and refuses every login (535); keeps
/// the AUTH lines it got.
async fn refusing_smtp() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let auths = Arc::new(Mutex::new(Vec::new()));
    let seen = auths.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 refusing ESMTP\r\n").await;
                while let Ok(Ok(Some(line))) =
                    tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await
                {
                    let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-refusing\r\n250 AUTH PLAIN LOGIN\r\n",
                        "AUTH" => {
                            seen.lock().unwrap().push(line.clone());
                            b"535 5.7.8 Authentication credentials invalid\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"502 5.5.2 not implemented\r\n",
                    };
                    if w.write_all(answer).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, auths)
}

/// An HTTP server that answers 401 to everything; keeps the request heads.
async fn refusing_webhook() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await
                    {
                        Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&got).into_owned());
                let body = "invalid token";
                let _ = stream
                    .write_all(
                        format!(
                            "HTTP/1.1 401 Unauthorized\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    (port, heads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_secrets_stay_out_of_logs_api_errors_and_the_recorder() {
    let mark = log_mark();
    let (smtp_port, smtp_auths) = refusing_smtp().await;
    let (hook_port, hook_heads) = refusing_webhook().await;
    let closed_port = hearth::broker::EmbeddedBroker::free_port();
    let secrets_dir = tempfile::tempdir().unwrap();
    let token_file = secrets_dir.path().join("influx-token");
    std::fs::write(&token_file, format!("{INFLUX_TOKEN}\n")).unwrap();
    let mqtt_file = secrets_dir.path().join("mqtt-password");
    std::fs::write(&mqtt_file, format!("{MQTT_PASSWORD}\n")).unwrap();
    let extra = format!(
        r#"
[mqtt]
password = {{ file = "{}" }}

[[alerts.email]]
name = "mail"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
username = "hearth"
password = "{SMTP_PASSWORD}"
from = "hearth@example.com"
to = ["ops@example.com"]
timeout_s = 5

[[alerts.webhook]]
url = "http://127.0.0.1:{hook_port}/hooks/{WEBHOOK_PATH_TOKEN}?token={WEBHOOK_QUERY_TOKEN}"
headers = {{ Authorization = "Bearer {WEBHOOK_HEADER}" }}
timeout_s = 5

[influxdb]
url = "http://127.0.0.1:{closed_port}"
org = "home"
bucket = "hearth"
token = {{ file = "{}" }}
flush_interval_ms = 100
timeout_s = 2
retry_max_ms = 500
"#,
        mqtt_file.display(),
        token_file.display()
    );
    let extra = hearth::config::Config::from_toml(&extra, "secrets test").unwrap();
    // The config's own Debug (what a `{config:?}` would log) is clean.
    assert_clean("the config's Debug output", format!("{extra:?}").as_bytes());

    let mut h = Harness::start(BrokerKind::Mosquitto, 60.0, move |c| {
        // The user in the url, its password from a file.
        let url = c.mqtt.url.clone().unwrap();
        c.mqtt.url = Some(url.replace("mqtt://", "mqtt://hearth@"));
        c.mqtt.password = extra.mqtt.password;
        c.alerts = extra.alerts;
        c.influxdb = extra.influxdb;
    })
    .await;
    let bridge = h.bridge();
    assert_clean(
        "the broker address",
        format!("{} {:?}", bridge.broker, bridge.broker).as_bytes(),
    );
    assert_eq!(bridge.broker.password.as_deref(), Some(MQTT_PASSWORD));

    // The notifiers fail for good (535, 401): one delivery report each.
    let mut deliveries = bridge.alerts.deliveries();
    bridge
        .alerts
        .raise(NewAlert {
            source: "test".into(),
            key: "secrets".into(),
            entity_id: None,
            severity: Severity::Critical,
            title: "secrets test".into(),
            message: "an alert to send".into(),
        })
        .unwrap();
    let mut errors = Vec::new();
    while errors.len() < 2 {
        let d = tokio::time::timeout(STEP, deliveries.recv())
            .await
            .expect("both notifiers report in time")
            .unwrap();
        errors.push(
            d.error.clone().unwrap_or_else(|| {
                panic!("notifier `{}` delivered to a refusing server", d.notifier)
            }),
        );
    }
    let errors = errors.join("\n");
    assert!(errors.contains("535"), "{errors}");
    assert!(errors.contains("401"), "{errors}");
    assert_clean("the delivery errors", errors.as_bytes());
    // …after the secrets reached the servers that asked for them.
    let auth = smtp_auths.lock().unwrap().join("\n");
    let plain = base64(format!("\0hearth\0{SMTP_PASSWORD}").as_bytes());
    assert!(
        auth.contains(&plain),
        "the SMTP server never got the password (AUTH PLAIN): {auth}"
    );
    let head = hook_heads.lock().unwrap().join("\n");
    assert!(
        head.contains(&format!("Bearer {WEBHOOK_HEADER}"))
            && head.contains(WEBHOOK_PATH_TOKEN)
            && head.contains(WEBHOOK_QUERY_TOKEN),
        "{head}"
    );

    // InfluxDB is unreachable: its problem entity turns on with an error.
    let problem = wait_for("the InfluxDB problem", STEP, || {
        bridge
            .store
            .get("binary_sensor.bridge_influxdb_problem")
            .filter(|s| s.state == "on")
    })
    .await;
    assert_clean(
        "the InfluxDB problem entity",
        serde_json::to_string(&problem.attributes)
            .unwrap()
            .as_bytes(),
    );

    // Wrong tokens over REST and WebSocket: refused, never echoed.
    let http = bridge.http_addr;
    let (_, good) = hearth::api::auth::tokens::create(h.data_dir.path(), "secrets").unwrap();
    let wrong = rest_get(http, "/api/states", WRONG_API_TOKEN).await;
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    assert_clean("a REST refusal", wrong.as_bytes());
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{http}/api/websocket"))
        .await
        .unwrap();
    let _required = tokio::time::timeout(STEP, ws.next()).await.unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        serde_json::json!({"type": "auth", "access_token": WRONG_API_TOKEN}).to_string(),
    ))
    .await
    .unwrap();
    let answer = tokio::time::timeout(STEP, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let answer = answer.to_text().unwrap_or_default().to_string();
    assert!(answer.contains("auth_invalid"), "{answer}");
    assert_clean("a WebSocket refusal", answer.as_bytes());

    // What the API shows.
    for path in ["/api/config", "/api/states"] {
        let body = rest_get(http, path, &good).await;
        assert!(body.starts_with("HTTP/1.1 200"), "{path}: {body}");
        assert_clean(path, body.as_bytes());
    }

    // Stop (the recorder commits what it has), keeping the data directory;
    // then read every file in it.
    let kept = std::mem::replace(&mut h.data_dir, tempfile::tempdir().unwrap());
    let data_dir = kept.path().to_path_buf();
    let recorder_db = data_dir.join(hearth::recorder::DB_FILE);
    h.stop().await;
    assert!(
        recorder_db.exists(),
        "no recorder database at {}",
        recorder_db.display()
    );
    let mut files = 0;
    for path in walk(&data_dir) {
        let bytes = std::fs::read(&path).unwrap();
        assert_clean(&path.display().to_string(), &bytes);
        files += 1;
    }
    assert!(files >= 2, "only {files} files in the data directory");

    let logs = logs_since(mark);
    // The failures were logged (so the paths that print errors ran)…
    assert!(logs.contains("alert notifier `mail`"), "{logs}");
    assert!(logs.contains("failed API authentication"), "{logs}");
    // …and no secret is in the logs.
    assert_clean("the logs", logs.as_bytes());
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A plain REST GET with a bearer token: the whole answer.
async fn rest_get(addr: std::net::SocketAddr, path: &str, token: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(STEP, tcp.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}
