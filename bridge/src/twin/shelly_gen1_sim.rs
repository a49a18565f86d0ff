//! A simulated Shelly Gen1 device: a Plug S (`SHPLG-S`), a 1PM (`SHSW-PM`)
//! or an EM (`SHEM`), speaking the Gen1 HTTP API on 127.0.0.1 and, when
//! given a broker, the Gen1 MQTT API, at once (as the firmware does).
//!
//! Source: Shelly Gen1 API docs (<https://shelly-api-docs.shelly.cloud/gen1/>),
//! "Common HTTP API", "MQTT support" and the Plug S / 1PM / EM pages.
//!
//! HTTP (the firmware closes the connection after each answer):
//! - `GET /shelly` → `{"type","mac","auth","fw","num_outputs","num_meters"|"num_emeters"}`;
//! - `GET /status` → `relays[]` (`ison`, `has_timer`, `overpower`,
//!   `source`), on the Plug S / 1PM `meters[]` (`power` W, `is_valid`,
//!   `timestamp`, `counters`, `total` whole watt-minutes since boot), on
//!   the EM `emeters[]` (`power` W, `reactive`, `voltage` V, `is_valid`,
//!   `total` Wh, `total_returned` Wh), `uptime` s;
//! - `GET /relay/0?turn=on|off|toggle` → the relay object after the change
//!   (no `turn`: as it is).
//!
//! MQTT, under `shellies/<mqtt_id>/` (`<mqtt_id>` defaults to
//! `shellyplug-s-<last 6 MAC digits>`, `shelly1pm-…`, `shellyem-…`):
//! - published: `online` `true` (retained; `false` is the last will),
//!   `announce` on connect and when asked, `relay/0` `on`/`off`
//!   on every change and command, `relay/0/power` W, `relay/0/energy`
//!   watt-minutes (Plug S / 1PM), `emeter/<i>/power|voltage|total|total_returned`
//!   (EM), everything again every `update_period_s` (the firmware's
//!   `mqtt.update_period`, 30 s by default);
//! - obeyed: `relay/0/command` `on`/`off`/`toggle`, `command`
//!   `announce`/`update`, and `shellies/command` `announce`.
//!
//! The load (W) is settable; while the relay is closed the meter reads it
//! and the counter integrates it in sim time (watt-minutes; an EM channel
//! integrates Wh, consumed and returned). On the EM, channel 0 reads the
//! load behind the relay, channel 1 a settable signed power
//! ([`ShellyGen1Sim::set_emeter_power`], e.g. a PV feed, − when returning).
//!
//! For tests and demos: [`ShellyGen1Sim::reboot`] (counter back to 0,
//! offline for [`REBOOT_WALL`], then online and announced),
//! [`ShellyGen1Sim::set_offline`] (HTTP connections dropped unanswered,
//! `online` = `false` published, commands ignored),
//! [`ShellyGen1Sim::inject`] (raw bytes on any of its topics) and
//! [`ShellyGen1Sim::set_status_body`] (a raw `/status` answer).
//!
//! Simplifications: one relay, constant voltage, power factor 1, no
//! temperature, no timers, no overpower protection, no authentication.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rumqttc::{AsyncClient, Event, LastWill, Packet, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::broker::BrokerAddress;
use crate::clock::Clock;
use crate::shutdown::Shutdown;

/// Wall time a [`ShellyGen1Sim::reboot`] keeps the device away.
pub const REBOOT_WALL: Duration = Duration::from_millis(300);
const RECONNECT_WALL: Duration = Duration::from_millis(500);
const FW: &str = "20230913-112003/v1.14.0-gcb84623";

/// Which Gen1 device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gen1Model {
    PlugS,
    OnePm,
    Em,
}

impl Gen1Model {
    /// Shelly's type code (`/shelly` `type`).
    pub fn code(self) -> &'static str {
        match self {
            Gen1Model::PlugS => "SHPLG-S",
            Gen1Model::OnePm => "SHSW-PM",
            Gen1Model::Em => "SHEM",
        }
    }

    fn mqtt_prefix(self) -> &'static str {
        match self {
            Gen1Model::PlugS => "shellyplug-s",
            Gen1Model::OnePm => "shelly1pm",
            Gen1Model::Em => "shellyem",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gen1SimConfig {
    pub model: Gen1Model,
    /// 12 hex digits.
    pub mac: String,
    /// W the load draws while the relay is closed.
    pub load_w: f64,
    /// V, constant.
    pub voltage_v: f64,
    /// The broker (from [`super::TwinAccess::address`]); `None`: HTTP only.
    pub mqtt: Option<BrokerAddress>,
    /// `None`: Shelly's default, `<model>-<last 6 MAC digits>`.
    pub mqtt_id: Option<String>,
    /// s of sim time between full state publications.
    pub update_period_s: f64,
}

impl Gen1SimConfig {
    /// A Plug S drawing `load_w` when on, HTTP only, publishing every 30 s.
    pub fn plug_s(mac: &str, load_w: f64) -> Self {
        Gen1SimConfig {
            model: Gen1Model::PlugS,
            mac: mac.into(),
            load_w,
            voltage_v: 230.0,
            mqtt: None,
            mqtt_id: None,
            update_period_s: 30.0,
        }
    }
}

#[derive(Debug)]
struct State {
    relay: bool,
    load_w: f64,
    /// Relay meter, watt-minutes since boot.
    counter_wmin: f64,
    /// EM channel 1's signed power (W).
    em1_w: f64,
    /// EM (consumed Wh, returned Wh) per channel.
    em_wh: [(f64, f64); 2],
    last_ms: i64,
    boot_ms: i64,
    offline: bool,
    status_body: Option<Vec<u8>>,
}

impl State {
    fn em_power(&self, i: usize) -> f64 {
        match i {
            0 if self.relay => self.load_w,
            1 => self.em1_w,
            _ => 0.0,
        }
    }

    fn integrate(&mut self, now: i64) {
        let dt_ms = (now - self.last_ms).max(0) as f64;
        self.last_ms = self.last_ms.max(now);
        if self.relay {
            self.counter_wmin += self.load_w * dt_ms / 60_000.0;
        }
        for i in 0..2 {
            let wh = self.em_power(i) * dt_ms / 3_600_000.0;
            if wh >= 0.0 {
                self.em_wh[i].0 += wh;
            } else {
                self.em_wh[i].1 -= wh;
            }
        }
    }
}

enum Out {
    /// (topic under `shellies/<id>/`, payload, retain)
    Raw(String, Vec<u8>, bool),
    State,
    Announce,
}

struct Inner {
    state: Mutex<State>,
    clock: Clock,
    model: Gen1Model,
    mac: String,
    mqtt_id: String,
    voltage_v: f64,
    addr: SocketAddr,
    out: mpsc::UnboundedSender<Out>,
    status_requests: AtomicU64,
    mqtt_commands: AtomicU64,
    /// MQTT relay commands are dropped (a lost subscription, a busy device).
    mqtt_deaf: AtomicBool,
    http_commands: AtomicU64,
    /// Connected and subscribed to its command topics.
    subscribed: AtomicBool,
}

/// A handle on the running device. Cheap to clone.
#[derive(Clone)]
pub struct ShellyGen1Sim {
    inner: Arc<Inner>,
}

impl ShellyGen1Sim {
    /// Starts the device: its HTTP server on 127.0.0.1 and, with a broker,
    /// its MQTT client (which keeps reconnecting). Runs until `shutdown`.
    pub fn start(clock: Clock, cfg: Gen1SimConfig, shutdown: Shutdown) -> anyhow::Result<Self> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        std_listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let (out, rx) = mpsc::unbounded_channel();
        let mac = cfg.mac.to_ascii_uppercase();
        let tail = &mac[mac.len().saturating_sub(6)..];
        let now = clock.now_ms();
        let sim = ShellyGen1Sim {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    relay: false,
                    load_w: cfg.load_w,
                    counter_wmin: 0.0,
                    em1_w: 0.0,
                    em_wh: [(0.0, 0.0); 2],
                    last_ms: now,
                    boot_ms: now,
                    offline: false,
                    status_body: None,
                }),
                clock,
                model: cfg.model,
                mqtt_id: cfg
                    .mqtt_id
                    .clone()
                    .unwrap_or_else(|| format!("{}-{tail}", cfg.model.mqtt_prefix())),
                mac,
                voltage_v: cfg.voltage_v,
                addr: listener.local_addr()?,
                out,
                status_requests: AtomicU64::new(0),
                mqtt_commands: AtomicU64::new(0),
                mqtt_deaf: Default::default(),
                http_commands: AtomicU64::new(0),
                subscribed: AtomicBool::new(false),
            }),
        };
        tokio::spawn(serve(listener, sim.clone(), shutdown.clone()));
        if let Some(broker) = &cfg.mqtt {
            let mut opts = crate::broker::client::options(&sim.inner.mqtt_id, broker)?;
            opts.set_keep_alive(Duration::from_secs(5));
            opts.set_last_will(LastWill::new(
                format!("{}/online", sim.base()),
                "false",
                QoS::AtLeastOnce,
                true,
            ));
            let (client, eventloop) = AsyncClient::new(opts, 64);
            tokio::spawn(run_mqtt(
                sim.clone(),
                cfg.update_period_s,
                client,
                eventloop,
                rx,
                shutdown,
            ));
        }
        Ok(sim)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_state(&self) -> std::sync::MutexGuard<'_, State> {
        let now = self.inner.clock.now_ms();
        let mut s = self.lock();
        s.integrate(now);
        s
    }

    fn send(&self, o: Out) {
        let _ = self.inner.out.send(o);
    }

    /// `shellies/<mqtt_id>`.
    pub fn base(&self) -> String {
        format!("shellies/{}", self.inner.mqtt_id)
    }

    pub fn mqtt_id(&self) -> &str {
        &self.inner.mqtt_id
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://127.0.0.1:<port>`, for `[[shelly_gen1]] url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    pub fn relay(&self) -> bool {
        self.lock().relay
    }

    /// The relay switched at the device (its button): published at once.
    pub fn set_relay(&self, on: bool) {
        self.switch(on);
    }

    /// The relay switched and its MQTT message lost (not published): what
    /// the bridge believes goes stale.
    pub fn set_relay_unpublished(&self, on: bool) {
        self.now_state().relay = on;
    }

    /// Whether the device is powered and answering (false while
    /// [`Self::set_offline`] or during a [`Self::reboot`]).
    pub fn is_online(&self) -> bool {
        !self.offline()
    }

    /// `true`: MQTT relay commands are dropped unobeyed (HTTP still works).
    pub fn set_mqtt_deaf(&self, deaf: bool) {
        self.inner.mqtt_deaf.store(deaf, Ordering::Relaxed);
    }

    fn switch(&self, on: bool) -> bool {
        self.now_state().relay = on;
        self.send(Out::State);
        on
    }

    /// W the load draws while the relay is closed.
    pub fn set_load(&self, watts: f64) {
        self.now_state().load_w = watts;
        self.send(Out::State);
    }

    /// W the meter reads now.
    pub fn power_w(&self) -> f64 {
        let s = self.lock();
        if s.relay { s.load_w } else { 0.0 }
    }

    /// EM channel 1's signed power (W; − when returning).
    pub fn set_emeter_power(&self, watts: f64) {
        self.now_state().em1_w = watts;
        self.send(Out::State);
    }

    /// The relay meter's counter: watt-minutes since boot.
    pub fn counter_wmin(&self) -> f64 {
        self.now_state().counter_wmin
    }

    /// Sets the counter (watt-minutes), as if that much had been used.
    pub fn set_counter_wmin(&self, wmin: f64) {
        self.now_state().counter_wmin = wmin;
        self.send(Out::State);
    }

    /// (consumed, returned) Wh of EM channel `i`.
    pub fn emeter_wh(&self, i: usize) -> (f64, f64) {
        self.now_state().em_wh.get(i).copied().unwrap_or_default()
    }

    /// Whether its MQTT client is connected and subscribed to its command
    /// topics (a command sent before is lost, as with a real device).
    pub fn mqtt_ready(&self) -> bool {
        self.inner.subscribed.load(Ordering::Relaxed)
    }

    /// `GET /status` answers so far.
    pub fn status_requests(&self) -> u64 {
        self.inner.status_requests.load(Ordering::Relaxed)
    }

    /// Relay commands obeyed over MQTT / over HTTP so far.
    pub fn commands(&self) -> (u64, u64) {
        (
            self.inner.mqtt_commands.load(Ordering::Relaxed),
            self.inner.http_commands.load(Ordering::Relaxed),
        )
    }

    /// Power off (`true`): HTTP connections are dropped unanswered,
    /// `online` = `false` is published (the broker's last will, sent at
    /// once rather than after the keep-alive), commands are ignored. Power
    /// back (`false`): `online` = `true`, the announce and the state.
    pub fn set_offline(&self, offline: bool) {
        let was = std::mem::replace(&mut self.now_state().offline, offline);
        if was == offline {
            return;
        }
        if offline {
            self.send(Out::Raw("online".into(), b"false".to_vec(), true));
        } else {
            self.send(Out::Raw("online".into(), b"true".to_vec(), true));
            self.send(Out::Announce);
            self.send(Out::State);
        }
    }

    /// A reboot: offline for [`REBOOT_WALL`], the counter back to 0 (the
    /// relay comes back as it was, Shelly's default `default_state` =
    /// `last`), then online, announced, its state published.
    pub fn reboot(&self) {
        self.set_offline(true);
        {
            let now = self.inner.clock.now_ms();
            let mut s = self.now_state();
            s.counter_wmin = 0.0;
            s.boot_ms = now;
        }
        let sim = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REBOOT_WALL).await;
            sim.set_offline(false);
        });
    }

    /// Publishes raw `payload` on `shellies/<mqtt_id>/<suffix>` (not
    /// retained), as a faulty firmware would.
    pub fn inject(&self, suffix: &str, payload: &[u8]) {
        self.send(Out::Raw(suffix.into(), payload.to_vec(), false));
    }

    /// `Some(body)`: `GET /status` answers exactly `body`; `None`: the
    /// real status again.
    pub fn set_status_body(&self, body: Option<&[u8]>) {
        self.lock().status_body = body.map(<[u8]>::to_vec);
    }

    fn shelly(&self) -> Value {
        let mut v = json!({"type": self.inner.model.code(), "mac": self.inner.mac,
            "auth": false, "fw": FW, "num_outputs": 1});
        if self.inner.model == Gen1Model::Em {
            v["num_emeters"] = json!(2);
        } else {
            v["num_meters"] = json!(1);
        }
        v
    }

    fn relay_json(&self, s: &State) -> Value {
        json!({"ison": s.relay, "has_timer": false, "timer_started": 0, "timer_duration": 0,
            "timer_remaining": 0, "overpower": false, "source": "http"})
    }

    /// `GET /status` now.
    pub fn status(&self) -> Value {
        let now = self.inner.clock.now_ms();
        let s = self.now_state();
        let mut v = json!({
            "relays": [self.relay_json(&s)],
            "uptime": (now - s.boot_ms).max(0) / 1000,
            "mqtt": {"connected": true},
        });
        let p = if s.relay { s.load_w } else { 0.0 };
        if self.inner.model == Gen1Model::Em {
            v["emeters"] = json!(
                (0..2)
                    .map(|i| json!({
                        "power": round2(s.em_power(i)), "reactive": 0.0, "pf": 1.0,
                        "voltage": round2(self.inner.voltage_v), "is_valid": true,
                        "total": round2(s.em_wh[i].0), "total_returned": round2(s.em_wh[i].1),
                    }))
                    .collect::<Vec<_>>()
            );
        } else {
            v["meters"] = json!([{
                "power": round2(p), "overpower": 0.0, "is_valid": true,
                "timestamp": now / 1000, "counters": [round2(p), round2(p), round2(p)],
                "total": s.counter_wmin.floor() as u64,
            }]);
        }
        v
    }

    /// Everything the device publishes as its state: (suffix, payload).
    fn state_messages(&self) -> Vec<(String, String)> {
        let s = self.now_state();
        let mut m = vec![(
            "relay/0".to_string(),
            if s.relay { "on" } else { "off" }.to_string(),
        )];
        if self.inner.model == Gen1Model::Em {
            for i in 0..2 {
                m.push((format!("emeter/{i}/power"), format!("{:.2}", s.em_power(i))));
                m.push((
                    format!("emeter/{i}/voltage"),
                    format!("{:.2}", self.inner.voltage_v),
                ));
                m.push((format!("emeter/{i}/total"), format!("{:.2}", s.em_wh[i].0)));
                m.push((
                    format!("emeter/{i}/total_returned"),
                    format!("{:.2}", s.em_wh[i].1),
                ));
            }
        } else {
            let p = if s.relay { s.load_w } else { 0.0 };
            m.push(("relay/0/power".into(), format!("{p:.2}")));
            m.push((
                "relay/0/energy".into(),
                format!("{}", s.counter_wmin.floor() as u64),
            ));
        }
        m
    }

    fn announce(&self) -> String {
        json!({"id": self.inner.mqtt_id, "model": self.inner.model.code(), "mac": self.inner.mac,
            "ip": self.inner.addr.ip().to_string(), "new_fw": false,
            "fw_ver": FW})
        .to_string()
    }

    fn offline(&self) -> bool {
        self.lock().offline
    }

    /// A relay command (`on`, `off`, `toggle`); `None` for anything else.
    fn turn(&self, how: &str) -> Option<bool> {
        let on = match how {
            "on" => true,
            "off" => false,
            "toggle" => !self.relay(),
            _ => return None,
        };
        Some(self.switch(on))
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

async fn run_mqtt(
    sim: ShellyGen1Sim,
    update_period_s: f64,
    client: AsyncClient,
    mut eventloop: rumqttc::EventLoop,
    mut out: mpsc::UnboundedReceiver<Out>,
    mut shutdown: Shutdown,
) {
    let base = sim.base();
    let me = sim.mqtt_id().to_string();
    let publish = |suffix: &str, payload: Vec<u8>, retain: bool| {
        // try_*: awaiting the channel inside the poll loop could deadlock.
        if let Err(e) =
            client.try_publish(format!("{base}/{suffix}"), QoS::AtMostOnce, retain, payload)
        {
            tracing::warn!("twin gen1 {me}: publish dropped: {e}");
        }
    };
    let publish_state = || {
        for (suffix, payload) in sim.state_messages() {
            publish(&suffix, payload.into_bytes(), false);
        }
    };
    let mut tick = Box::pin(sim.inner.clock.sleep_ms(update_period_s * 1000.0));
    let mut failures = 0u32;
    loop {
        let ev = tokio::select! {
            _ = shutdown.wait() => break,
            Some(o) = out.recv() => {
                match o {
                    // Raw messages go out even "offline": the `false` is the
                    // broker's last will, injected bytes are the test's.
                    Out::Raw(suffix, payload, retain) => publish(&suffix, payload, retain),
                    Out::State if !sim.offline() => publish_state(),
                    Out::Announce if !sim.offline() => publish("announce", sim.announce().into_bytes(), false),
                    _ => {}
                }
                continue;
            }
            _ = &mut tick => {
                tick = Box::pin(sim.inner.clock.sleep_ms(update_period_s * 1000.0));
                if !sim.offline() {
                    publish_state();
                }
                continue;
            }
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                failures = 0;
                for filter in [
                    format!("{base}/relay/+/command"),
                    format!("{base}/command"),
                    "shellies/command".to_string(),
                ] {
                    if let Err(e) = client.try_subscribe(filter, QoS::AtLeastOnce) {
                        tracing::warn!("twin gen1 {me}: cannot subscribe: {e}");
                    }
                }
                if !sim.offline() {
                    publish("online", b"true".to_vec(), true);
                    publish("announce", sim.announce().into_bytes(), false);
                    publish_state();
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                sim.inner.subscribed.store(true, Ordering::Relaxed);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if sim.offline() {
                    continue;
                }
                let text = String::from_utf8_lossy(&p.payload).trim().to_string();
                if p.topic == format!("{base}/relay/0/command") {
                    if sim.inner.mqtt_deaf.load(Ordering::Relaxed) {
                        continue;
                    }
                    if sim.turn(&text).is_some() {
                        sim.inner.mqtt_commands.fetch_add(1, Ordering::Relaxed);
                        // `switch` queued the state; the echo follows it.
                    }
                } else if p.topic == format!("{base}/command") || p.topic == "shellies/command" {
                    match text.as_str() {
                        "announce" => publish("announce", sim.announce().into_bytes(), false),
                        "update" if p.topic != "shellies/command" => publish_state(),
                        _ => {}
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                sim.inner.subscribed.store(false, Ordering::Relaxed);
                if failures == 0 {
                    tracing::warn!("twin gen1 {me}: MQTT connection lost: {e}; reconnecting");
                }
                failures += 1;
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = tokio::time::sleep(RECONNECT_WALL) => {}
                }
            }
        }
    }
    // Dropping the socket without DISCONNECT: the broker sends `false`.
}

type Resp = Response<Full<Bytes>>;

fn respond(status: u16, body: Vec<u8>) -> Resp {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn handle(sim: &ShellyGen1Sim, req: &Request<Incoming>) -> Resp {
    let path = req.uri().path();
    let query = super::shelly_sim::query_params(req.uri().query());
    match path {
        "/shelly" => respond(200, sim.shelly().to_string().into_bytes()),
        "/status" => {
            sim.inner.status_requests.fetch_add(1, Ordering::Relaxed);
            let body = sim.lock().status_body.clone();
            respond(
                200,
                body.unwrap_or_else(|| sim.status().to_string().into_bytes()),
            )
        }
        "/relay/0" => {
            if let Some(how) = query.get("turn").and_then(Value::as_str) {
                if sim.turn(how).is_none() {
                    return respond(400, b"Bad turn!".to_vec());
                }
                sim.inner.http_commands.fetch_add(1, Ordering::Relaxed);
            }
            let s = sim.lock();
            respond(200, sim.relay_json(&s).to_string().into_bytes())
        }
        _ => respond(404, b"Not Found".to_vec()),
    }
}

async fn serve(listener: tokio::net::TcpListener, sim: ShellyGen1Sim, mut shutdown: Shutdown) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.wait() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("twin gen1: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if sim.offline() {
            drop(stream); // powered off: nobody answers
            continue;
        }
        let sim = sim.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let sim = sim.clone();
                async move { Ok::<_, Infallible>(handle(&sim, &req)) }
            });
            let _ = http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_counter_integrates_watt_minutes_and_a_reboot_zeroes_it() {
        let (clock, time) = Clock::manual(1_765_000_000_000);
        let (_off, shutdown) = crate::shutdown::channel();
        let sim = ShellyGen1Sim::start(
            clock,
            Gen1SimConfig::plug_s("C45BBEC18B12", 120.0),
            shutdown,
        )
        .unwrap();
        assert_eq!(sim.mqtt_id(), "shellyplug-s-C18B12");
        assert_eq!(sim.turn("on"), Some(true));
        time.set(1_765_000_000_000 + 30 * 60_000);
        // 120 W for 30 min = 3600 watt-minutes = 60 Wh.
        assert_eq!(sim.status()["meters"][0]["total"], 3600);
        assert_eq!(sim.status()["meters"][0]["power"], 120.0);
        assert_eq!(sim.turn("toggle"), Some(false));
        assert_eq!(sim.status()["relays"][0]["ison"], false);
        assert_eq!(sim.turn("sideways"), None);
        sim.reboot();
        assert_eq!(sim.counter_wmin(), 0.0);
        assert!(sim.offline());
    }

    #[test]
    fn an_em_integrates_returned_energy_apart() {
        let (clock, time) = Clock::manual(0);
        let (tx, _rx) = mpsc::unbounded_channel();
        let sim = ShellyGen1Sim {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    relay: false,
                    load_w: 0.0,
                    counter_wmin: 0.0,
                    em1_w: -1000.0,
                    em_wh: [(0.0, 0.0); 2],
                    last_ms: 0,
                    boot_ms: 0,
                    offline: false,
                    status_body: None,
                }),
                clock,
                model: Gen1Model::Em,
                mac: "AABBCCDDEEFF".into(),
                mqtt_id: "shellyem-DDEEFF".into(),
                voltage_v: 230.0,
                addr: "127.0.0.1:1".parse().unwrap(),
                out: tx,
                status_requests: AtomicU64::new(0),
                mqtt_commands: AtomicU64::new(0),
                mqtt_deaf: AtomicBool::new(false),
                http_commands: AtomicU64::new(0),
                subscribed: AtomicBool::new(false),
            }),
        };
        time.set(3_600_000);
        assert_eq!(sim.emeter_wh(1), (0.0, 1000.0));
        let st = sim.status();
        assert_eq!(st["emeters"][1]["power"], -1000.0);
        assert_eq!(st["emeters"][1]["total_returned"], 1000.0);
        assert!(st.get("meters").is_none());
    }
}
