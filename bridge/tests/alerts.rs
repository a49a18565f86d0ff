//! Alerts end to end with real parts: e-mail to a real SMTP server (Python's
//! aiosmtpd, requiring STARTTLS and AUTH, with a CA and certificate made
//! for the test), webhooks to a real HTTP server on loopback, and a real
//! plugin's alert and fault through a running bridge to the hub, Home
//! Assistant's MQTT topics and a webhook.

use crate::common;

use bytes::Bytes;
use common::pki::make_pki;
use common::{BrokerKind, Harness, Observer, init_logs, log_mark, logs_since, wait_for};
use hearth::alerts::{
    AlertHub, AlertsConfig, Delivery, HubOptions, NewAlert, NotifyKind, Severity,
};
use hearth::clock::Clock;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

const ID: &str = "plugin:thermostat/over_temperature";

fn over_temp() -> NewAlert {
    NewAlert {
        source: "plugin:thermostat".into(),
        key: "over_temperature".into(),
        entity_id: Some("sensor.server_room_temperature".into()),
        severity: Severity::Critical,
        title: "Server room over temperature".into(),
        message: "room at 31.2 °C, limit 30.0 °C".into(),
    }
}

/// The next delivery report; a generous bound only so a broken build
/// fails instead of hanging (nothing is timed).
async fn next_delivery(rx: &mut broadcast::Receiver<Delivery>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("a delivery report")
        .expect("the hub is alive")
}

// ---------------------------------------------------------------- SMTP

/// `tests/support/smtp_server.py` on a free port, killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
    ca_pem: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SMTP_USER: &str = "hearth";
const SMTP_PASSWORD: &str = "correct horse";

async fn smtp_server() -> SmtpServer {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let maildir = dir.path().join("mail");
    std::fs::create_dir(&maildir).unwrap();
    let port = hearth::broker::EmbeddedBroker::free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .args(["--port", &port.to_string()])
        .arg("--cert")
        .arg(&pki.cert_pem)
        .arg("--key")
        .arg(&pki.key_pem)
        .args(["--user", SMTP_USER, "--password", SMTP_PASSWORD])
        .arg("--maildir")
        .arg(&maildir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (the SMTP server needs `pip install aiosmtpd`)");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        line
    })
    .await
    .unwrap();
    assert_eq!(
        line.trim(),
        "READY",
        "smtp_server.py did not start (is aiosmtpd installed? `pip install aiosmtpd`)"
    );
    SmtpServer {
        child,
        port,
        maildir,
        ca_pem: pki.ca_pem,
        _dir: dir,
    }
}

/// `[alerts]` with one `[[alerts.email]]` to `server`; the password is in
/// a file next to the mail, as a deployment would keep it.
fn email_config(server: &SmtpServer, password: &str) -> AlertsConfig {
    let password_file = server
        .maildir
        .with_file_name(format!("password-{password}"));
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let text = format!(
        r#"
        renotify_interval_s = 3600
        [[email]]
        host = "127.0.0.1"
        port = {}
        security = "starttls"
        username = "{SMTP_USER}"
        password_file = {:?}
        from = "Hearth <hearth@example.com>"
        to = ["ops@example.com", "Oncall <oncall@example.com>"]
        ca_file = {:?}
        timeout_s = 20
        "#,
        server.port, password_file, server.ca_pem
    );
    toml::from_str(&text).unwrap()
}

/// The n-th message the server accepted (1-based): its envelope and the
/// headers and body as Python's e-mail parser decodes them.
fn mail(server: &SmtpServer, n: usize) -> Value {
    let path = server.maildir.join(format!("{n:04}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn mails(server: &SmtpServer) -> usize {
    std::fs::read_dir(&server.maildir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_goes_to_a_real_smtp_server_over_starttls_with_auth() {
    init_logs();
    let server = smtp_server().await;
    let hub = AlertHub::start(
        &email_config(&server, SMTP_PASSWORD),
        Clock::real(),
        HubOptions::default(),
    )
    .unwrap();
    let mut deliveries = hub.deliveries();

    // Raised three times: one e-mail.
    for _ in 0..3 {
        hub.raise(over_temp()).unwrap();
    }
    let d = next_delivery(&mut deliveries).await;
    assert_eq!(d.error, None, "{d:?}");
    assert_eq!(
        (d.alert_id.as_str(), d.kind, d.attempts),
        (ID, NotifyKind::Raised, 1)
    );
    let m = mail(&server, 1);
    assert_eq!(m["tls"], true, "STARTTLS before the message: {m}");
    assert_eq!(m["login"], SMTP_USER);
    assert_eq!(m["mail_from"], "hearth@example.com");
    assert_eq!(
        m["rcpt_tos"],
        json!(["ops@example.com", "oncall@example.com"])
    );
    let from = m["from"].as_str().unwrap();
    assert!(from.contains("Hearth <hearth@example.com>"), "{from}");
    let to = m["to"].as_str().unwrap();
    assert!(
        to.contains("ops@example.com") && to.contains("oncall@example.com"),
        "{to}"
    );
    let subject = m["subject"].as_str().unwrap();
    for part in [
        "CRITICAL",
        "Server room over temperature",
        "sensor.server_room_temperature",
    ] {
        assert!(
            subject.contains(part),
            "subject `{subject}` should contain `{part}`"
        );
    }
    let body = m["body"].as_str().unwrap();
    for part in [
        "room at 31.2 °C, limit 30.0 °C",
        "Severity: critical",
        "Entity: sensor.server_room_temperature",
        "Source: plugin:thermostat",
        "Count: 1",
        "Alert id: plugin:thermostat/over_temperature",
    ] {
        assert!(body.contains(part), "body should contain `{part}`:\n{body}");
    }

    // Clearing sends "resolved".
    hub.clear("plugin:thermostat", "over_temperature");
    let d = next_delivery(&mut deliveries).await;
    assert_eq!((d.kind, d.error.as_deref()), (NotifyKind::Resolved, None));
    let subject = mail(&server, 2)["subject"].as_str().unwrap().to_string();
    assert!(
        subject.contains("RESOLVED") && subject.contains("Server room"),
        "{subject}"
    );
    assert_eq!(mails(&server), 2);
    assert_eq!(hub.notifier_stats()[0].delivered, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_smtp_password_is_a_clear_error_not_a_crash() {
    init_logs();
    let server = smtp_server().await;
    let hub = AlertHub::start(
        &email_config(&server, "wrong"),
        Clock::real(),
        HubOptions::default(),
    )
    .unwrap();
    let mut deliveries = hub.deliveries();
    let mark = log_mark();
    hub.raise(over_temp()).unwrap();
    let d = next_delivery(&mut deliveries).await;
    let error = d.error.expect("refused");
    // Names the server and says what it said; not retried (it would not help).
    let server_name = format!("SMTP server 127.0.0.1:{}", server.port);
    assert!(error.contains(&server_name), "{error}");
    assert!(error.contains("535"), "{error}");
    assert_eq!(d.attempts, 1);
    let logs = logs_since(mark);
    assert!(
        logs.contains("alert notifier `email:127.0.0.1`: refused the raised notification of plugin:thermostat/over_temperature")
            && logs.contains(&server_name),
        "{logs}"
    );
    // The hub keeps working, and the notifier tries the next one.
    hub.raise(NewAlert {
        key: "humidity".into(),
        ..over_temp()
    })
    .unwrap();
    assert!(next_delivery(&mut deliveries).await.error.is_some());
    assert_eq!(hub.list().len(), 2);
    assert_eq!(mails(&server), 0);
    let stats = &hub.notifier_stats()[0];
    assert_eq!((stats.delivered, stats.failed, stats.dropped), (0, 2, 0));
}

// ------------------------------------------------------------- webhooks

/// One request the webhook server received.
#[derive(Debug)]
struct Received {
    path: String,
    headers: hyper::HeaderMap,
    body: Value,
}

/// A hyper server on loopback that records every request; `/reject`
/// answers 400, everything else 204.
async fn webhook_server() -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let path = req
                            .uri()
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default();
                        let headers = req.headers().clone();
                        let bytes = req.into_body().collect().await?.to_bytes();
                        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        let reject = path.split('?').next() == Some("/reject");
                        let _ = tx.send(Received {
                            path,
                            headers,
                            body,
                        });
                        let (status, text) = if reject {
                            (400, "bad topic")
                        } else {
                            (204, "")
                        };
                        Ok::<_, hyper::Error>(
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from(text)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (base, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_post_each_format_with_their_headers() {
    init_logs();
    let (base, mut requests) = webhook_server().await;
    let cfg: AlertsConfig = toml::from_str(&format!(
        r#"
        [[webhook]]
        name = "ours"
        url = "{base}/hook/json"
        headers = {{ Authorization = "Bearer t0ken", X-Hearth-Test = "yes" }}

        [[webhook]]
        name = "ntfy"
        url = "{base}/"
        format = "ntfy"
        topic = "hearth-alerts"

        [[webhook]]
        name = "slack"
        url = "{base}/services/T000/B000/XXXX?channel=ops"
        format = "slack"
        min_severity = "critical"
        "#
    ))
    .unwrap();
    let hub = AlertHub::start(&cfg, Clock::real(), HubOptions::default()).unwrap();
    let mut deliveries = hub.deliveries();

    // A warning first: below slack's min_severity.
    hub.raise(NewAlert {
        source: "plugin:detector".into(),
        key: "sensor.server_room_humidity".into(),
        entity_id: None,
        severity: Severity::Warning,
        title: "Anomaly on sensor.server_room_humidity".into(),
        message: "81 % is unusual".into(),
    })
    .unwrap();
    hub.raise(over_temp()).unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        let d = next_delivery(&mut deliveries).await;
        assert_eq!(d.error, None, "{d:?}");
        got.push((d.notifier, d.alert_id));
    }
    got.sort();
    assert_eq!(
        got,
        [
            ("ntfy", "plugin:detector/sensor.server_room_humidity"),
            ("ntfy", ID),
            ("ours", "plugin:detector/sensor.server_room_humidity"),
            ("ours", ID),
            ("slack", ID),
        ]
        .map(|(n, a)| (n.to_string(), a.to_string()))
    );
    let mut by_path: Vec<Received> = (0..5).map(|_| requests.try_recv().unwrap()).collect();
    assert!(requests.try_recv().is_err(), "exactly five requests");
    by_path.retain(|r| {
        r.body.to_string().contains("over_temperature")
            || r.body.to_string().contains("Server room")
    });
    let find = |p: &str| {
        by_path
            .iter()
            .find(|r| r.path == p)
            .unwrap_or_else(|| panic!("{p}: {by_path:?}"))
    };

    let ours = find("/hook/json");
    assert_eq!(ours.headers["authorization"], "Bearer t0ken");
    assert_eq!(ours.headers["x-hearth-test"], "yes");
    assert_eq!(ours.headers["content-type"], "application/json");
    assert_eq!(ours.body["event"], "raised");
    let a = &ours.body["alert"];
    assert_eq!(a["id"], ID);
    assert_eq!(a["source"], "plugin:thermostat");
    assert_eq!(a["key"], "over_temperature");
    assert_eq!(a["entity_id"], "sensor.server_room_temperature");
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["title"], "Server room over temperature");
    assert_eq!(a["message"], "room at 31.2 °C, limit 30.0 °C");
    assert_eq!(
        (
            a["count"].clone(),
            a["active"].clone(),
            a["acknowledged"].clone()
        ),
        (json!(1), json!(true), json!(false))
    );
    assert!(a["first_seen_ms"].is_i64() && a["last_seen_ms"].is_i64());

    let ntfy = find("/");
    assert_eq!(ntfy.body["topic"], "hearth-alerts");
    assert_eq!(ntfy.body["priority"], 5);
    assert!(
        ntfy.body["title"]
            .as_str()
            .unwrap()
            .contains("Server room over temperature")
    );
    assert!(
        ntfy.body["message"]
            .as_str()
            .unwrap()
            .starts_with("room at 31.2 °C")
    );
    assert_eq!(
        ntfy.body["tags"],
        json!(["rotating_light", "critical", "raised"])
    );

    let slack = find("/services/T000/B000/XXXX?channel=ops");
    let text = slack.body["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "*[CRITICAL] Server room over temperature (sensor.server_room_temperature)*"
        ) && text.contains("room at 31.2 °C"),
        "{text}"
    );
    assert_eq!(slack.body.as_object().unwrap().len(), 1, "only `text`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_webhook_is_reported_with_its_target_and_answer() {
    init_logs();
    let (base, _requests) = webhook_server().await;
    let cfg: AlertsConfig = toml::from_str(&format!(
        "[[webhook]]\nurl = \"{base}/reject?token=secret\"\n"
    ))
    .unwrap();
    let hub = AlertHub::start(&cfg, Clock::real(), HubOptions::default()).unwrap();
    let mut deliveries = hub.deliveries();
    hub.raise(over_temp()).unwrap();
    let d = next_delivery(&mut deliveries).await;
    let e = d.error.unwrap();
    assert!(
        e.contains(&format!(
            "webhook {base}/reject: HTTP 400 Bad Request: bad topic"
        )),
        "{e}"
    );
    assert!(!e.contains("secret"), "the query may hold a token: {e}");
    assert_eq!(d.attempts, 1, "a 4xx is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_notifier_drops_and_counts_instead_of_blocking_the_hub() {
    init_logs();
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let h = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            h.lock().await.push(s);
        }
    });
    let cfg: AlertsConfig = toml::from_str(&format!(
        "[[webhook]]\nname = \"stuck\"\nurl = \"http://{addr}/\"\ntimeout_s = 3600\n"
    ))
    .unwrap();
    let hub = AlertHub::start(&cfg, Clock::real(), HubOptions::default()).unwrap();
    let mark = log_mark();
    // 70 distinct alerts: the task holds at most one, the queue 64.
    for i in 0..70 {
        hub.raise(NewAlert {
            key: format!("k{i}"),
            ..over_temp()
        })
        .unwrap();
    }
    assert_eq!(hub.list().len(), 70, "every alert is kept");
    let dropped = hub.notifier_stats()[0].dropped;
    assert!((5..=6).contains(&dropped), "dropped {dropped}");
    assert!(logs_since(mark).contains("alert notifier `stuck`: queue full (64 waiting)"));
}

/// A clean stop while a notifier is stuck keeps the delivery in hand and
/// everything queued behind it in the outbox; the next start sends all of
/// them, in order, to the notifier of the same name, and its clean stop
/// removes the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_undelivered_at_stop_are_sent_at_the_next_start() {
    init_logs();
    let data = tempfile::tempdir().unwrap();
    let state_file = data.path().join("alerts.json");
    let outbox = data.path().join("alerts-outbox.json");
    // First run: the webhook accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stuck = listener.local_addr().unwrap();
    let held = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let h = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            h.lock().await.push(s);
        }
    });
    let cfg = |url: String| -> AlertsConfig {
        toml::from_str(&format!(
            "[[webhook]]\nname = \"ops\"\nurl = \"{url}\"\ntimeout_s = 3600\n"
        ))
        .unwrap()
    };
    let opts = || HubOptions {
        store: None,
        state_file: Some(state_file.clone()),
    };
    let hub = AlertHub::start(&cfg(format!("http://{stuck}/")), Clock::real(), opts()).unwrap();
    let keys: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
    for key in &keys {
        hub.raise(NewAlert {
            key: key.clone(),
            ..over_temp()
        })
        .unwrap();
    }
    wait_for(
        "the first delivery in hand",
        Duration::from_secs(10),
        || held.try_lock().is_ok_and(|h| !h.is_empty()).then_some(()),
    )
    .await;
    let mark = log_mark();
    hub.stop().await;
    assert!(
        logs_since(mark).contains("5 undelivered notification(s) kept in"),
        "the stop says what it kept"
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&outbox).unwrap()).unwrap();
    assert_eq!(
        saved["pending"].as_array().map(Vec::len),
        Some(5),
        "{saved}"
    );
    drop(hub);

    // Second run: a webhook that answers.
    let (base, mut requests) = webhook_server().await;
    let hub = AlertHub::start(&cfg(format!("{base}/hook")), Clock::real(), opts()).unwrap();
    let mut got = Vec::new();
    while got.len() < keys.len() {
        let r = tokio::time::timeout(Duration::from_secs(30), requests.recv())
            .await
            .expect("a webhook request")
            .unwrap();
        assert_eq!(r.body["event"], "raised");
        got.push(r.body["alert"]["key"].as_str().unwrap().to_string());
    }
    assert_eq!(got, keys, "each once, in order");
    assert!(
        outbox.exists(),
        "the outbox stays until the next clean stop (a failed start loses nothing)"
    );
    assert_eq!(
        hub.list().iter().filter(|a| a.active).count(),
        5,
        "alerts restored too"
    );
    hub.stop().await;
    assert!(!outbox.exists(), "nothing left, no outbox");
    // Nothing more arrives: none was sent twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(requests.try_recv().is_err(), "no duplicate");
}

// ---------------------------------------------------- through the bridge

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_alert_and_a_plugin_fault_reach_the_hub_ha_and_a_webhook() {
    let (base, mut requests) = webhook_server().await;
    let h = Harness::start(BrokerKind::Embedded, 60.0, |c| {
        // Any room is "over temperature" at 5 °C: the thermostat raises its
        // alert on its first reading.
        c.plugins[0].config["over_temperature"] = json!(5.0);
        c.plugins.push(hearth::plugins::PluginConfig {
            name: "trapper".into(),
            wasm: "builtin:fault-injector".into(),
            config: json!({
                "entity": "sensor.server_room_temperature",
                "fault": "trap",
                "when": "on_state",
            }),
            limits: hearth::plugins::Limits {
                max_backoff_s: 2.0,
                ..Default::default()
            },
            drives: None,
        });
        c.alerts = toml::from_str(&format!("[[webhook]]\nurl = \"{base}/hook\"\n")).unwrap();
    })
    .await;
    let ha = Observer::connect(&h.broker.addr, "hearth/bridge/#").await;
    let bridge = h.bridge();
    let hub = bridge.alerts.clone();

    let thermostat_name = &bridge.plugins.list()[0].name;
    let id = format!("plugin:{thermostat_name}/over_temperature");
    let alert = wait_for("the thermostat's alert", Duration::from_secs(30), || {
        hub.get(&id).filter(|a| a.active)
    })
    .await;
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(alert.title, "Server room over temperature");
    assert!(alert.message.contains("limit 5.0 °C"), "{}", alert.message);

    let fault = wait_for("the trapper's fault alert", Duration::from_secs(30), || {
        hub.get("plugin:trapper/fault").filter(|a| a.active)
    })
    .await;
    assert!(fault.message.contains("trapped"), "{}", fault.message);
    assert_eq!(fault.title, "Plugin `trapper` faulted");

    // Home Assistant: the event entity in the store, its discovery config
    // (retained), and its events on MQTT (not retained: HA ignores a
    // retained event). The raise happened before this test could
    // subscribe, so the clear is the event to watch.
    let event = bridge
        .store
        .get("event.bridge_alerts")
        .expect("event entity");
    assert!(
        ["raised", "repeated", "cleared"]
            .contains(&event.attributes["event_type"].as_str().unwrap()),
        "{event:?}"
    );
    let discovery = Observer::connect(&h.broker.addr, "homeassistant/#").await;
    wait_for(
        "the event entity's discovery",
        Duration::from_secs(10),
        || {
            discovery.current().into_values().find_map(|p| {
                let v: Value = serde_json::from_slice(&p).unwrap_or_default();
                let c = v["cmps"]["alerts"].clone();
                (c["p"] == "event" && c["event_types"] == json!(["raised", "repeated", "cleared"]))
                    .then_some(())
            })
        },
    )
    .await;
    assert!(hub.clear(&format!("plugin:{thermostat_name}"), "over_temperature"));
    let topic = "hearth/bridge/alerts/state";
    let payload = wait_for(
        "the alert's clear event on MQTT",
        Duration::from_secs(10),
        || {
            ha.messages()
                .into_iter()
                .find(|(t, p, _)| t == topic && String::from_utf8_lossy(p).contains(&id))
        },
    )
    .await;
    let v: Value = serde_json::from_slice(&payload.1).unwrap();
    assert_eq!(v["event_type"], "cleared");
    assert_eq!(v["severity"], "critical");
    assert_eq!(v["title"], "Server room over temperature");
    assert!(!payload.2, "events are published without retain");

    // The webhook got both.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let r = tokio::time::timeout(Duration::from_secs(60), requests.recv())
            .await
            .expect("a webhook request")
            .unwrap();
        let alert_id = r.body["alert"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !seen.contains(&alert_id) {
            seen.push(alert_id);
        }
    }
    seen.sort();
    let mut want = vec![id.clone(), "plugin:trapper/fault".to_string()];
    want.sort();
    assert_eq!(seen, want);

    // The WebSocket API lists the active ones and acknowledges.
    let mut ws = ws_auth(&h).await;
    let list = ws_call(
        &mut ws,
        json!({"id": 1, "type": "hearth/alerts/list", "active_only": true}),
    )
    .await;
    assert_eq!(list["success"], true, "{list}");
    // Active only, and the trapper's fault among them (the thermostat may
    // have raised others meanwhile, e.g. ac_not_cooling on a slow machine).
    let active: Vec<&Value> = list["result"].as_array().unwrap().iter().collect();
    assert!(active.iter().all(|a| a["active"] == true), "{list}");
    assert!(
        active.iter().all(|a| a["id"] != id.as_str()),
        "{id} was cleared: {list}"
    );
    let fault = active
        .iter()
        .find(|a| a["id"] == "plugin:trapper/fault")
        .unwrap_or_else(|| panic!("the fault is listed: {list}"));
    assert!(fault["first_seen"].as_str().unwrap().ends_with("+00:00"));
    let acked = ws_call(
        &mut ws,
        json!({"id": 2, "type": "hearth/alerts/acknowledge", "alert_id": "plugin:trapper/fault"}),
    )
    .await;
    assert_eq!(acked["result"]["acknowledged"], true, "{acked}");
    assert!(hub.get("plugin:trapper/fault").unwrap().acknowledged);
    let missing = ws_call(
        &mut ws,
        json!({"id": 3, "type": "hearth/alerts/acknowledge", "alert_id": "plugin:nope/x"}),
    )
    .await;
    assert_eq!(missing["error"]["code"], "not_found", "{missing}");
    assert_eq!(
        missing["error"]["message"],
        "alert `plugin:nope/x` not found"
    );
    h.stop().await;
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_auth(h: &Harness) -> WsStream {
    use futures_util::{SinkExt, StreamExt};
    let (_, token) = hearth::api::auth::tokens::create(h.data_dir.path(), "alerts").unwrap();
    let url = format!("ws://{}/api/websocket", h.bridge().http_addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let _required = ws.next().await;
    let auth = json!({"type": "auth", "access_token": token}).to_string();
    ws.send(tokio_tungstenite::tungstenite::Message::text(auth))
        .await
        .unwrap();
    let ok = ws.next().await.unwrap().unwrap();
    assert!(ok.to_text().unwrap().contains("auth_ok"), "{ok}");
    ws
}

/// Sends a command; its `result` message (events and others skipped).
async fn ws_call(ws: &mut WsStream, cmd: Value) -> Value {
    use futures_util::{SinkExt, StreamExt};
    let id = cmd["id"].clone();
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        cmd.to_string(),
    ))
    .await
    .unwrap();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("an answer")
            .expect("the connection is open")
            .unwrap();
        let Ok(text) = frame.to_text() else { continue };
        let v: Value = serde_json::from_str(text).unwrap_or_default();
        if v["type"] == "result" && v["id"] == id {
            return v;
        }
    }
}
