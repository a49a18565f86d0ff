//! A simulated Meross smart plug with energy meter (MSS310), on its local
//! HTTP API: an HTTP/1 server on 127.0.0.1 answering signed messages on
//! `POST /config`. Meross publishes no document for it; the shapes follow
//! what the `meross_lan` Home Assistant integration sends and checks
//! (krahabb/meross_lan: `merossclient/protocol/message.py` for the header
//! and `sign = md5(messageId + key + timestamp)`, `merossclient/httpclient.py`
//! for `POST /config`, `merossclient/protocol/const.py` for error 5001 and
//! the namespaces) and arandall/meross's protocol notes for the MSS310's
//! payloads.
//!
//! # Messages
//!
//! Request `{"header": {messageId, method, namespace, timestamp, sign, …},
//! "payload": {…}}`; the sign is checked with the plug's key. Answer: the
//! same `messageId` and namespace, method `GETACK`/`SETACK`, the plug's own
//! timestamp and a sign made the same way with the same key. A wrong sign
//! gets `method: ERROR`, `payload.error = {"code": 5001, "detail": "sign
//! error"}`. Chosen here (not observed): an unknown namespace gets error
//! 5000 `unknown namespace`, a body that is not a message HTTP 400.
//!
//! # Namespaces
//!
//! - `Appliance.System.All` (GET): `all.system.hardware` (type `mss310`,
//!   uuid, macAddress), `all.system.firmware.version`, `all.digest.togglex`.
//! - `Appliance.System.Ability` (GET): the namespaces below.
//! - `Appliance.Control.ToggleX` (GET, SET `{"togglex": {"channel", "onoff"}}`).
//! - `Appliance.Control.Electricity` (GET): `power` mW, `voltage` dV,
//!   `current` mA (power = the load while the relay is closed).
//! - `Appliance.Control.ConsumptionX` (GET): `[{date, time, value Wh}]`, the
//!   last 30 days (UTC dates of the twin's clock). With
//!   [`MerossSimConfig::integrate`], the load is integrated into today's
//!   value in sim time; tests set days with [`MerossSim::set_day_wh`].
//!
//! # Modes
//!
//! - encrypted firmware ([`MerossSim::set_encrypted`]): the abilities list
//!   `Appliance.Encrypt.Suite` and `Appliance.Encrypt.ECDHE`; every other
//!   plain request is refused (ERROR 5000 `encryption required`: chosen
//!   here; the real firmware expects an AES body after an ECDHE exchange).
//! - offline ([`MerossSim::set_offline`]): connections are closed unanswered.
//! - [`MerossFault`]: malformed answers (truncated JSON, wrong types, huge
//!   values, a sign made with another key).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::shutdown::Shutdown;

pub const MODEL: &str = "mss310";
pub const FIRMWARE: &str = "6.1.8";
const MAX_BODY: usize = 64 * 1024;
const DAYS_KEPT: usize = 30;

/// Ways the plug answers badly (the request is executed first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MerossFault {
    #[default]
    None,
    /// The answer cut in half.
    TruncatedJson,
    /// Every number and bool of the payload turned into a string.
    WrongTypes,
    /// The readings (`power`, `voltage`, `current`, `value`) × 10⁹.
    HugeValues,
    /// The answer signed with another key.
    BadSign,
}

#[derive(Debug, Clone)]
pub struct MerossSimConfig {
    /// The key requests must be signed with.
    pub key: String,
    /// 12 hex digits.
    pub mac: String,
    /// W drawn while the relay is closed.
    pub load_w: f64,
    /// V
    pub voltage_v: f64,
    /// Integrate the load into today's consumption (sim time).
    pub integrate: bool,
}

impl Default for MerossSimConfig {
    fn default() -> Self {
        MerossSimConfig {
            key: "meross-twin-key".into(),
            mac: "48e1e9aabbcc".into(),
            load_w: 0.0,
            voltage_v: 230.0,
            integrate: false,
        }
    }
}

struct State {
    key: String,
    mac: String,
    relay: bool,
    load_w: f64,
    voltage_v: f64,
    integrate: bool,
    /// Wh per UTC date.
    days: BTreeMap<String, f64>,
    integrated_to_ms: i64,
    encrypted: bool,
    offline: bool,
    fault: MerossFault,
    requests: u64,
}

/// The running twin plug: its address and its knobs.
#[derive(Clone)]
pub struct MerossSim {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Offline: open connections close (a kept-alive one would answer).
    offline: Arc<tokio::sync::watch::Sender<bool>>,
    clock: Clock,
}

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn date_of(ms: i64) -> String {
    crate::clock::iso8601(ms)[..10].to_string()
}

impl MerossSim {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `http://127.0.0.1:<port>`, the `url` of a `[[meross]]` section.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn relay(&self) -> bool {
        self.state().relay
    }

    pub fn set_relay(&self, on: bool) {
        let now = self.clock.now_ms();
        let mut s = self.state();
        s.integrate_to(now);
        s.relay = on;
    }

    pub fn set_load_w(&self, w: f64) {
        let now = self.clock.now_ms();
        let mut s = self.state();
        s.integrate_to(now);
        s.load_w = w;
    }

    pub fn set_voltage_v(&self, v: f64) {
        self.state().voltage_v = v;
    }

    pub fn set_key(&self, key: &str) {
        self.state().key = key.into();
    }

    pub fn set_encrypted(&self, on: bool) {
        self.state().encrypted = on;
    }

    pub fn set_offline(&self, on: bool) {
        self.state().offline = on;
        self.offline.send_replace(on);
    }

    pub fn set_fault(&self, fault: MerossFault) {
        self.state().fault = fault;
    }

    /// The consumption of `date` (`YYYY-MM-DD`), Wh.
    pub fn set_day_wh(&self, date: &str, wh: f64) {
        let mut s = self.state();
        s.days.insert(date.into(), wh);
        while s.days.len() > DAYS_KEPT {
            s.days.pop_first();
        }
    }

    /// Today's date on the twin's clock (UTC).
    pub fn today(&self) -> String {
        date_of(self.clock.now_ms())
    }

    /// Energy through the plug since start, integrated to now, Wh (every
    /// day kept; ground truth for the demo's report).
    pub fn total_wh(&self) -> f64 {
        let now = self.clock.now_ms();
        let mut s = self.state();
        s.integrate_to(now);
        s.days.values().sum()
    }

    /// Requests received (answered or not), for "does not hammer" checks.
    pub fn requests(&self) -> u64 {
        self.state().requests
    }
}

impl State {
    fn integrate_to(&mut self, now_ms: i64) {
        let dt_ms = now_ms - self.integrated_to_ms;
        self.integrated_to_ms = now_ms;
        if !self.integrate || !self.relay || dt_ms <= 0 {
            return;
        }
        let wh = self.load_w * dt_ms as f64 / 3_600_000.0;
        *self.days.entry(date_of(now_ms)).or_insert(0.0) += wh;
        while self.days.len() > DAYS_KEPT {
            self.days.pop_first();
        }
    }

    fn power_w(&self) -> f64 {
        if self.relay { self.load_w } else { 0.0 }
    }

    fn abilities(&self) -> Value {
        let mut names = vec![
            "Appliance.Config.Key",
            "Appliance.System.All",
            "Appliance.System.Ability",
            "Appliance.System.Online",
            "Appliance.Control.ToggleX",
            "Appliance.Control.Electricity",
            "Appliance.Control.ConsumptionX",
        ];
        if self.encrypted {
            names.extend(["Appliance.Encrypt.Suite", "Appliance.Encrypt.ECDHE"]);
        }
        Value::Object(
            names
                .into_iter()
                .map(|n| (n.to_string(), json!({})))
                .collect(),
        )
    }

    fn uuid(&self) -> String {
        format!("2001{:0>28}", self.mac.to_ascii_lowercase())
    }

    fn togglex(&self) -> Value {
        json!([{"channel": 0, "onoff": u8::from(self.relay), "lmTime": 0}])
    }

    /// The payload of a GET/SET, or an error (code, detail).
    fn execute(
        &mut self,
        method: &str,
        namespace: &str,
        payload: &Value,
        now_ms: i64,
    ) -> Result<Value, (i64, &'static str)> {
        self.integrate_to(now_ms);
        match (method, namespace) {
            ("GET", "Appliance.System.Ability") => {
                Ok(json!({"payloadVersion": 1, "ability": self.abilities()}))
            }
            _ if self.encrypted => Err((5000, "encryption required")),
            ("GET", "Appliance.System.All") => Ok(json!({"all": {
                "system": {
                    "hardware": {"type": MODEL, "subType": "eu", "version": "6.0.0",
                                 "chipType": "mt7682", "uuid": self.uuid(),
                                 "macAddress": mac_colons(&self.mac)},
                    "firmware": {"version": FIRMWARE, "compileTime": "2021/11/02 10:10:10 GMT +08:00",
                                 "innerIp": "127.0.0.1", "server": "", "port": 0, "userId": 0},
                    "time": {"timestamp": now_ms.div_euclid(1000), "timezone": "UTC", "timeRule": []},
                    "online": {"status": 1},
                },
                "digest": {"togglex": self.togglex(), "triggerx": [], "timerx": []},
            }})),
            ("GET", "Appliance.Control.ToggleX") => Ok(json!({"togglex": self.togglex()})),
            ("SET", "Appliance.Control.ToggleX") => {
                let t = payload.get("togglex");
                let entry = match t {
                    Some(Value::Array(l)) => l.first(),
                    other => other,
                };
                match entry.and_then(|e| e.get("onoff")).and_then(Value::as_u64) {
                    Some(v @ (0 | 1))
                        if entry
                            .and_then(|e| e.get("channel"))
                            .and_then(Value::as_u64)
                            .unwrap_or(0)
                            == 0 =>
                    {
                        self.relay = v == 1;
                        Ok(json!({}))
                    }
                    _ => Err((5000, "bad togglex")),
                }
            }
            ("GET", "Appliance.Control.Electricity") => {
                let p = self.power_w();
                let v = self.voltage_v;
                let a = if v > 0.0 { p / v } else { 0.0 };
                Ok(json!({"electricity": {
                    "channel": 0,
                    "current": (a * 1000.0).round() as i64,
                    "voltage": (v * 10.0).round() as i64,
                    "power": (p * 1000.0).round() as i64,
                    "config": {"voltageRatio": 188, "electricityRatio": 100},
                }}))
            }
            ("GET", "Appliance.Control.ConsumptionX") => {
                let list: Vec<Value> = self
                    .days
                    .iter()
                    .map(|(date, wh)| {
                        json!({"date": date, "time": now_ms.div_euclid(1000), "value": wh.floor() as i64})
                    })
                    .collect();
                Ok(json!({"consumptionx": list}))
            }
            _ => Err((5000, "unknown namespace")),
        }
    }
}

fn mac_colons(mac: &str) -> String {
    mac.as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(":")
}

fn answer_header(
    state: &State,
    mid: &str,
    method: &str,
    namespace: &str,
    key: &str,
    now_ms: i64,
) -> Value {
    let ts = now_ms.div_euclid(1000);
    json!({
        "messageId": mid,
        "namespace": namespace,
        "method": method,
        "payloadVersion": 1,
        "from": format!("/appliance/{}/publish", state.uuid()),
        "timestamp": ts,
        "timestampMs": now_ms.rem_euclid(1000),
        "sign": md5_hex(&[mid, key, &ts.to_string()]),
    })
}

fn mangle(v: &mut Value, fault: MerossFault) {
    match v {
        // Huge: the readings only (a corrupt meter, not a corrupt channel).
        Value::Object(m) if fault == MerossFault::HugeValues => {
            for (k, x) in m.iter_mut() {
                match x {
                    Value::Number(n)
                        if matches!(k.as_str(), "power" | "voltage" | "current" | "value") =>
                    {
                        *x = json!(n.as_f64().unwrap_or(0.0) * 1e9);
                    }
                    _ => mangle(x, fault),
                }
            }
        }
        Value::Object(m) => m.values_mut().for_each(|x| mangle(x, fault)),
        Value::Array(l) => l.iter_mut().for_each(|x| mangle(x, fault)),
        Value::Number(_) | Value::Bool(_) if fault == MerossFault::WrongTypes => {
            *v = Value::String(v.to_string());
        }
        _ => {}
    }
}

type Resp = Response<Full<Bytes>>;

fn respond(status: u16, body: String) -> Resp {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

impl MerossSim {
    async fn handle(self, req: Request<Incoming>) -> Resp {
        if req.method() != Method::POST || req.uri().path() != "/config" {
            return respond(404, "{}".into());
        }
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return respond(400, "{}".into()),
        };
        self.state().requests += 1;
        let now = self.clock.now_ms();
        let msg: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return respond(400, "{}".into()),
        };
        let h = &msg["header"];
        let (Some(mid), Some(method), Some(namespace), Some(ts), Some(sign)) = (
            h["messageId"].as_str(),
            h["method"].as_str(),
            h["namespace"].as_str(),
            h["timestamp"].as_i64(),
            h["sign"].as_str(),
        ) else {
            return respond(400, "{}".into());
        };
        let mut s = self.state();
        let key = s.key.clone();
        if sign != md5_hex(&[mid, &key, &ts.to_string()]) {
            let header = answer_header(&s, mid, "ERROR", namespace, &key, now);
            let out = json!({"header": header, "payload": {"error": {"code": 5001, "detail": "sign error"}}});
            return respond(200, out.to_string());
        }
        let result = s.execute(method, namespace, &msg["payload"], now);
        let fault = s.fault;
        let (method_out, mut payload) = match result {
            Ok(p) => (format!("{method}ACK"), p),
            Err((code, detail)) => (
                "ERROR".into(),
                json!({"error": {"code": code, "detail": detail}}),
            ),
        };
        let sign_key = if fault == MerossFault::BadSign {
            "not-the-key"
        } else {
            key.as_str()
        };
        let header = answer_header(&s, mid, &method_out, namespace, sign_key, now);
        drop(s);
        if matches!(fault, MerossFault::WrongTypes | MerossFault::HugeValues) {
            mangle(&mut payload, fault);
        }
        let mut text = json!({"header": header, "payload": payload}).to_string();
        if fault == MerossFault::TruncatedJson {
            text.truncate(text.len() / 2);
        }
        respond(200, text)
    }
}

/// Binds 127.0.0.1:0 and serves the plug until shutdown; the handle holds
/// its address and knobs. Must be called inside a tokio runtime.
pub fn spawn(
    clock: Clock,
    cfg: MerossSimConfig,
    shutdown: Shutdown,
) -> anyhow::Result<(MerossSim, JoinHandle<()>)> {
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    std_listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    let now = clock.now_ms();
    let sim = MerossSim {
        addr: listener.local_addr()?,
        state: Arc::new(Mutex::new(State {
            key: cfg.key,
            mac: cfg.mac,
            relay: false,
            load_w: cfg.load_w,
            voltage_v: cfg.voltage_v,
            integrate: cfg.integrate,
            days: BTreeMap::new(),
            integrated_to_ms: now,
            encrypted: false,
            offline: false,
            fault: MerossFault::None,
            requests: 0,
        })),
        offline: Arc::new(tokio::sync::watch::channel(false).0),
        clock,
    };
    let task = tokio::spawn(serve(listener, sim.clone(), shutdown));
    Ok((sim, task))
}

async fn serve(listener: tokio::net::TcpListener, sim: MerossSim, mut shutdown: Shutdown) {
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.wait() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("twin meross: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        {
            let mut s = sim.state();
            if s.offline {
                s.requests += 1;
                drop(stream);
                continue;
            }
        }
        let sim = sim.clone();
        let mut stop = shutdown.clone();
        let mut offline = sim.offline.subscribe();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let sim = sim.clone();
                async move { Ok::<_, std::convert::Infallible>(sim.handle(req).await) }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = stop.wait() => {}
                _ = offline.wait_for(|o| *o) => {}
            }
        });
    }
}
