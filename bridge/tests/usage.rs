//! Per-user metering and billing end to end: the Tasmota strip twin on the
//! embedded broker, a time-of-use tariff, two users on two outlets, a
//! webhook on loopback for the limit notifications, `hearth report usage`
//! on the data directory, and a restart that restores the totals.
//!
//! The clock is simulated (720× wall time), not manual: the twin's
//! telemetry loop sleeps on the clock, and on a manual clock that sleep
//! returns at once and would flood the broker.

use crate::common;

use bytes::Bytes;
use common::wait_for;
use hearth::app::Bridge;
use hearth::broker::EmbeddedBroker;
use hearth::clock::Clock;
use hearth::config::Config;
use hearth::entity::{CallSource, ServiceCall};
use hearth::shutdown;
use hearth::twin::tasmota_strip_sim::{self, SimMeter, StripSimConfig};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(60);
/// 2026-12-07 04:30 Paris (HC until 06:00).
const T0: i64 = 1_796_614_200_000;
/// 2026-12-07 06:00 Paris: HP starts.
const HP_START: i64 = T0 + 90 * 60_000;
const SPEED: f64 = 720.0;

fn config(dir: &Path, webhook: &str) -> Config {
    let text = format!(
        r#"
data_dir = "{dir}"
[mqtt]
port = {port}
[http]
port = 0
[[tasmota_strip]]
id = "strip1"
name = "Strip 1"
topic = "strip1"
outlets = 2
meter = "per_outlet"
[tariff]
kind = "tou"
timezone = "Europe/Paris"
windows = [{{start = "06:00", price = 0.25, period = "HP"}}, {{start = "22:00", price = 0.15, period = "HC"}}]
[alerts]
[[alerts.webhook]]
url = "{webhook}/hook"
[usage]
timezone = "Europe/Paris"
[[usage.users]]
id = "alice"
name = "Alice"
limit_kwh_day = 2.0
[[usage.users]]
id = "bob"
name = "Bob"
[[usage.outlets]]
energy_entity = "sensor.strip1_outlet1_energy"
switch_entity = "switch.strip1_outlet1"
user = "alice"
[[usage.outlets]]
energy_entity = "sensor.strip1_outlet2_energy"
switch_entity = "switch.strip1_outlet2"
user = "bob"
"#,
        dir = dir.display(),
        port = EmbeddedBroker::free_port(),
    );
    Config::from_toml(&text, "usage test").expect("the test config is valid")
}

/// A webhook on loopback: the JSON body of every POST, answered 204.
async fn webhook_server() -> (String, mpsc::UnboundedReceiver<Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let bytes = req.into_body().collect().await?.to_bytes();
                        let _ = tx.send(serde_json::from_slice(&bytes).unwrap_or(Value::Null));
                        Ok::<_, hyper::Error>(
                            hyper::Response::builder()
                                .status(204)
                                .body(Full::new(Bytes::new()))
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

fn number(b: &Bridge, id: &str) -> Option<f64> {
    b.store.get(id).and_then(|s| s.number())
}

async fn switch(b: &Bridge, service: &str, id: &str) {
    b.router
        .call(ServiceCall::new(
            "switch",
            service,
            id,
            Map::new(),
            CallSource::Internal,
        ))
        .await
        .unwrap_or_else(|e| panic!("switch.{service} {id}: {e}"));
}

/// Limit notifications among the webhook's requests: (key, event).
fn limit_posts(rx: &mut mpsc::UnboundedReceiver<Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Ok(body) = rx.try_recv() {
        if body["alert"]["source"] == "usage" {
            out.push((
                body["alert"]["key"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                body["event"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

fn report(dir: &Path, format: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "report",
            "usage",
            "--from",
            "2026-12-07",
            "--to",
            "2026-12-07",
        ])
        .args(["--format", format, "--data-dir"])
        .arg(dir)
        .output()
        .expect("hearth runs");
    assert!(
        out.status.success(),
        "hearth report usage: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_are_metered_billed_hp_hc_notified_once_and_cut_at_their_limit() {
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (hook, mut posts) = webhook_server().await;
    let clock = Clock::simulated_from(T0, SPEED);
    let b = Bridge::start(config(dir.path(), &hook), clock)
        .await
        .expect("bridge starts");
    let (strip_power, off) = shutdown::channel();
    let (strip, _task) = tasmota_strip_sim::spawn(
        clock,
        &b.broker.host,
        b.broker.port,
        StripSimConfig {
            topic: "strip1".into(),
            client_id: "DVES_STRIP1".into(),
            loads_w: vec![1000.0, 500.0],
            voltage_v: 230.0,
            meter: SimMeter::PerChannel,
            tele_period_s: 30.0,
            breaker: None,
            circuit: None,
        },
        off,
    )
    .expect("the strip starts");
    // Both meters read (0 Wh, relays off) before anything is switched on.
    for n in [1, 2] {
        let id = format!("sensor.strip1_outlet{n}_energy");
        wait_for(&format!("{id} read"), WAIT, || number(&b, &id)).await;
    }
    wait_for("the tariff in HC", WAIT, || {
        b.store
            .get("sensor.tariff_price")
            .filter(|s| s.attributes.get("period").and_then(|p| p.as_str()) == Some("HC"))
    })
    .await;
    switch(&b, "turn_on", "switch.strip1_outlet1").await;
    switch(&b, "turn_on", "switch.strip1_outlet2").await;
    let mut on = Vec::new();
    for id in ["switch.strip1_outlet1", "switch.strip1_outlet2"] {
        let s = wait_for(&format!("{id} on"), WAIT, || {
            b.store.get(id).filter(|s| s.state == "on")
        })
        .await;
        on.push(s.last_changed);
    }
    let (alice_on, bob_on) = (on[0], on[1]);
    assert!(alice_on < HP_START - 30 * 60_000, "switched on in HC");

    // Alice reaches 2 kWh around 06:45: notified at 80 % and 100 %, her
    // outlet switched off through the router, marked over the limit.
    wait_for("alice's outlet switched off at her limit", WAIT, || {
        b.store
            .get("switch.strip1_outlet1")
            .filter(|s| s.state == "off")
    })
    .await;
    assert!(!strip.relay(1), "the twin's relay 1 opened");
    assert!(strip.relay(2), "bob's outlet stays on");
    assert_eq!(
        b.store.get("binary_sensor.alice_over_limit").unwrap().state,
        "on"
    );
    let mut seen = Vec::new();
    wait_for("both limit notifications posted", WAIT, || {
        seen.extend(limit_posts(&mut posts));
        (seen.len() >= 2).then_some(())
    })
    .await;
    // Bob keeps going for a simulated half hour more; then off.
    let later = clock.now_ms() + 30 * 60_000;
    wait_for("half an hour more", WAIT, || {
        (clock.now_ms() > later).then_some(())
    })
    .await;
    switch(&b, "turn_off", "switch.strip1_outlet2").await;
    wait_for("bob's outlet reads 0 W", WAIT, || {
        (number(&b, "sensor.strip1_outlet2_power") == Some(0.0)).then_some(())
    })
    .await;

    // Each user's energy is their outlet's meter (the meters started at 0).
    for (user, n) in [("alice", 1), ("bob", 2)] {
        let meter = format!("sensor.strip1_outlet{n}_energy");
        let today = format!("sensor.{user}_energy_today");
        wait_for(&format!("{today} = {meter}"), WAIT, || {
            let m = number(&b, &meter)?;
            let u = number(&b, &today)? * 1000.0;
            ((m - u).abs() <= 1.0).then_some(())
        })
        .await;
        assert_eq!(
            number(&b, &today),
            number(&b, &format!("sensor.{user}_energy_month"))
        );
    }
    let alice_kwh = number(&b, "sensor.alice_energy_today").unwrap();
    let bob_kwh = number(&b, "sensor.bob_energy_today").unwrap();
    assert!((2.0..2.1).contains(&alice_kwh), "alice {alice_kwh} kWh");
    seen.extend(limit_posts(&mut posts));
    assert_eq!(
        seen,
        [
            ("limit_alice_day_80".to_string(), "raised".to_string()),
            ("limit_alice_day_100".to_string(), "raised".to_string())
        ],
        "each threshold notified once"
    );
    strip_power.trigger();
    b.stop().await;

    // The bill: HC until 06:00, HP after, € at 0.15 and 0.25 €/kWh.
    let csv = report(dir.path(), "csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("user,period,start,end,kwh_hp,kwh_hc,kwh,eur")
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 6, "{csv}");
    for (user, kwh, on) in [("alice", alice_kwh, alice_on), ("bob", bob_kwh, bob_on)] {
        let mine: Vec<_> = rows.iter().filter(|r| r[0] == user).collect();
        let kinds: Vec<_> = mine.iter().map(|r| r[1].as_str()).collect();
        assert_eq!(kinds, ["day", "week", "month"], "{csv}");
        assert_eq!(mine[1][2], "2026-12-07", "the week started on Monday 7");
        assert_eq!(mine[2][2], "2026-12-07", "the month is billed from --from");
        let f = |r: &Vec<String>, i: usize| r[i].parse::<f64>().unwrap();
        for r in &mine {
            assert!((f(r, 6) - kwh).abs() < 0.0015, "{user}: {csv}");
            assert!((f(r, 4) + f(r, 5) - f(r, 6)).abs() < 0.0015, "{csv}");
        }
        let watts = if user == "alice" { 1000.0 } else { 500.0 };
        let hc = watts * (HP_START - on) as f64 / 3_600_000.0 / 1000.0;
        let (hp_kwh, hc_kwh) = (f(mine[0], 4), f(mine[0], 5));
        assert!(
            (hc_kwh - hc).abs() < 0.04,
            "{user}: HC {hc_kwh} kWh, expected {hc:.3}: {csv}"
        );
        let eur = hp_kwh * 0.25 + hc_kwh * 0.15;
        assert!((f(mine[0], 7) - eur).abs() < 0.006, "{user}: {csv}");
    }
    let md = report(dir.path(), "md");
    println!("{csv}\n{md}");
    assert!(
        md.starts_with("| User | Period | Start | End | kWh HP | kWh HC | kWh | € |\n|---|"),
        "{md}"
    );
    let alice_day = &rows[0];
    assert!(
        md.contains(&format!("| {} |", alice_day.join(" | "))),
        "the Markdown row matches the CSV one: {md}"
    );

    // A restart later that day: totals come back from the ledger, and no
    // threshold is notified again.
    let (hook2, mut posts2) = webhook_server().await;
    let clock = Clock::simulated_from(T0 + 6 * 3_600_000, 1.0);
    let b = Bridge::start(config(dir.path(), &hook2), clock)
        .await
        .expect("bridge restarts");
    assert_eq!(number(&b, "sensor.alice_energy_today"), Some(alice_kwh));
    assert_eq!(number(&b, "sensor.bob_energy_week"), Some(bob_kwh));
    assert_eq!(
        b.store.get("binary_sensor.alice_over_limit").unwrap().state,
        "on"
    );
    let counts: Vec<_> = b
        .alerts
        .list()
        .into_iter()
        .filter(|a| a.source == "usage")
        .map(|a| (a.key, a.count, a.active))
        .collect();
    assert_eq!(
        counts,
        [
            ("limit_alice_day_100".to_string(), 1, true),
            ("limit_alice_day_80".to_string(), 1, true)
        ]
    );
    b.stop().await;
    assert!(limit_posts(&mut posts2).is_empty());
}
