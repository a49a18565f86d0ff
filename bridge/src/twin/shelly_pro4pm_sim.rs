//! A simulated Shelly Pro 4PM (model `SPSW-104PE16EU`, Gen2 API): four
//! relays, a meter per outlet, speaking Shelly's RPC over both channels the
//! `shelly_pro4pm` driver uses, at once:
//!
//! - HTTP on 127.0.0.1 (Shelly "RPC Channels": HTTP): `POST /rpc` with a
//!   whole frame → the response frame; `GET /rpc/<Method>?id=1&on=true` and
//!   `POST /rpc/<Method>` with a params body → the bare result or error
//!   (typed query values, as [`shelly_sim::query_params`]).
//! - MQTT (Shelly "RPC Channels": MQTT, "Notifications"): request frames on
//!   `<prefix>/rpc`, answered on `<src>/rpc`; `NotifyStatus` on
//!   `<prefix>/events/rpc` whenever something changes (partial, as the
//!   firmware sends them: a relay change carries `output`/`source`, a load
//!   change `apower`/`current`) and every `notify_period_s` with each
//!   switch's meters and `aenergy` (the firmware's once-a-minute update);
//!   `<prefix>/online` `true` (retained) on connect, `false` as last will.
//!
//! Methods: `Shelly.GetDeviceInfo`, `Shelly.GetStatus`, `Switch.GetStatus`,
//! `Switch.Set` (`{id, on}` → `{was_on}`), `Switch.Toggle`; errors with
//! Shelly's codes (−103 invalid argument, −105 `Bad id=<n>`, 404 no
//! handler), as [`shelly_sim`] does.
//!
//! Each outlet draws a settable resistive load while its relay is closed
//! and its supply is on; energy integrates in sim time. The supply of each
//! outlet can be cut from outside ([`Pro4pmSim::set_supply`]): the relay
//! stays as it was, the outlet draws nothing.
//!
//! Breakers, as the Tasmota strip twin has them (the shared part is
//! the crate-private `twin::outlets`): with [`Pro4pmSimConfig::breaker`] the
//! device has its own IEC 60898-1 breaker (a node named after its device
//! id), and with [`Pro4pmSimConfig::circuit`] it hangs under a circuit
//! shared with other devices, Tasmota strips included; its outlets are
//! `<device id>/switch:<n>` in the tree. While a breaker above an outlet
//! is open the outlet reads 0 W / 0 A (`apower`, `current`) and counts no
//! energy, its `output` unchanged, until the breaker is reset
//! ([`Pro4pmSim::reset_breaker`], or on the circuit). Trips are logged
//! (`twin breaker `<name>` tripped …`) and readable through
//! [`Pro4pmSim::cut`] and [`Pro4pmSim::breaker_trips`]. A trip sends no
//! notification of its own: the next periodic `NotifyStatus` (and any
//! `GetStatus`) shows the cut.
//!
//! Powering the whole device off is stopping it (its `shutdown`): HTTP
//! refuses connections, the broker publishes `online` = `false`.
//!
//! Simplifications: constant mains voltage, power factor 1, `by_minute` is
//! not kept (three zeros), the device temperature is constant, no
//! overpower protection of its own.

use std::convert::Infallible;
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
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::breaker::BreakerSpec;
use super::circuit::{CircuitError, CircuitSlot, TripEvent};
use super::outlets::{MeteredOutlets, Supply};
use super::shelly_sim::{RpcError, code, query_params};
use crate::clock::Clock;
use crate::shutdown::Shutdown;

pub const MODEL: &str = "SPSW-104PE16EU";
pub const APP: &str = "Pro4PM";
pub const OUTLETS: usize = 4;
const MAX_BODY: usize = 64 * 1024;
const RECONNECT_WALL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct Pro4pmSimConfig {
    /// 12 hex digits; the device id is `shellypro4pm-<mac>`.
    pub mac: String,
    /// W each outlet draws when on, `switch:0` first.
    pub loads_w: [f64; OUTLETS],
    /// V, constant.
    pub voltage_v: f64,
    /// MQTT topic prefix and broker (`None`: HTTP only).
    pub mqtt: Option<(String, String, u16)>,
    /// s of simulated time between full meter notifications.
    pub notify_period_s: f64,
    /// The device's own breaker (a node named after its device id);
    /// `None`: no breaker of its own.
    pub breaker: Option<BreakerSpec>,
    /// The circuit the device hangs under, shared with other devices;
    /// `None`: its breaker (if any) is a root.
    pub circuit: Option<CircuitSlot>,
}

#[derive(Debug)]
struct State {
    outlets: MeteredOutlets,
    source: [String; OUTLETS],
}

/// A handle on the running device, for tests, demos and a breaker model.
/// Cheap to clone.
#[derive(Clone)]
pub struct Pro4pmSim {
    state: Arc<Mutex<State>>,
    clock: Clock,
    mac: String,
    voltage_v: f64,
    /// Notification params for the MQTT side (dropped without MQTT).
    notify: mpsc::UnboundedSender<Value>,
}

/// `shellypro4pm-<mac in lower case>`.
fn device_id(mac: &str) -> String {
    format!("shellypro4pm-{}", mac.to_ascii_lowercase())
}

fn round(v: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (v * k).round() / k
}

impl Pro4pmSim {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The device at rest (relays off), registered in its circuits.
    fn new(
        clock: Clock,
        cfg: &Pro4pmSimConfig,
        notify: mpsc::UnboundedSender<Value>,
    ) -> Result<Self, CircuitError> {
        let id = device_id(&cfg.mac);
        let names: Vec<String> = (0..OUTLETS).map(|i| format!("{id}/switch:{i}")).collect();
        let supply = Supply::attach(&id, &names, cfg.breaker, cfg.circuit.as_ref())?;
        Ok(Pro4pmSim {
            state: Arc::new(Mutex::new(State {
                outlets: MeteredOutlets::new(
                    cfg.loads_w.to_vec(),
                    cfg.voltage_v,
                    supply,
                    clock.now_ms(),
                ),
                source: std::array::from_fn(|_| "init".to_string()),
            })),
            clock,
            mac: cfg.mac.clone(),
            voltage_v: cfg.voltage_v,
            notify,
        })
    }

    /// `shellypro4pm-<mac in lower case>`, the device's `src`.
    pub fn device_id(&self) -> String {
        device_id(&self.mac)
    }

    /// Whether relay `id` (0-based) is closed.
    pub fn relay(&self, id: usize) -> bool {
        self.lock().outlets.relays.get(id).copied().unwrap_or(false)
    }

    /// Wh outlet `id` has delivered.
    pub fn energy_wh(&self, id: usize) -> f64 {
        let now = self.clock.now_ms();
        let mut s = self.lock();
        s.outlets.integrate(now);
        s.outlets.energy_wh(id).unwrap_or(0.0)
    }

    /// W outlet `id` draws now.
    pub fn power_w(&self, id: usize) -> f64 {
        let now = self.clock.now_ms();
        self.lock().outlets.power_w(id, now)
    }

    /// Sets what outlet `id` draws when on (W).
    pub fn set_load(&self, id: usize, watts: f64) {
        if id >= OUTLETS {
            return;
        }
        let now = self.clock.now_ms();
        self.lock().outlets.change(now, |o| o.loads_w[id] = watts);
        self.notify_meters(id);
    }

    /// Feeds (`true`) or cuts (`false`) outlet `id`'s supply upstream of
    /// its relay, outside any breaker model (with one, its demand leaves
    /// the circuits too).
    pub fn set_supply(&self, id: usize, on: bool) {
        if id >= OUTLETS {
            return;
        }
        let now = self.clock.now_ms();
        self.lock().outlets.change(now, |o| o.fed[id] = on);
        self.notify_meters(id);
    }

    /// Whether a breaker (the device's or a circuit's above it) cuts
    /// outlet `id` (0-based) now.
    pub fn cut(&self, id: usize) -> bool {
        let now = self.clock.now_ms();
        id < OUTLETS && self.lock().outlets.cut(id, now)
    }

    /// The trips of the device's own breaker so far, with their sim ms.
    pub fn breaker_trips(&self) -> Vec<(i64, TripEvent)> {
        let now = self.clock.now_ms();
        self.lock().outlets.breaker_trips(now)
    }

    /// Closes the device's own breaker (no-op without one) and notifies
    /// the meters. A circuit above is reset through its
    /// [`SharedCircuits`](super::circuit::SharedCircuits).
    pub fn reset_breaker(&self) {
        let now = self.clock.now_ms();
        self.lock().outlets.reset_breaker(now);
        for id in 0..OUTLETS {
            self.notify_meters(id);
        }
    }

    fn notify_meters(&self, id: usize) {
        let now = self.clock.now_ms();
        let (p, a) = {
            let s = self.lock();
            (s.outlets.power_w(id, now), s.outlets.current_a(id, now))
        };
        let params = json!({
            format!("switch:{id}"): {"id": id, "apower": round(p, 1), "current": round(a, 3)}
        });
        let _ = self.notify.send(params);
    }

    /// `Switch.GetStatus` of switch `id` now.
    pub fn switch_status(&self, id: usize) -> Value {
        let now = self.clock.now_ms();
        let mut s = self.lock();
        s.outlets.integrate(now);
        let p = s.outlets.power_w(id, now);
        let energy_wh = s.outlets.energy_wh(id).unwrap_or(0.0);
        let minute_ts = now.div_euclid(60_000) * 60;
        json!({
            "id": id,
            "source": s.source[id],
            "output": s.outlets.relays[id],
            "apower": round(p, 1),
            "voltage": round(self.voltage_v, 1),
            "freq": 50.0,
            "current": round(p / self.voltage_v, 3),
            "pf": if p > 0.0 { 1.0 } else { 0.0 },
            "aenergy": {"total": round(energy_wh, 3), "by_minute": [0.0, 0.0, 0.0], "minute_ts": minute_ts},
            "temperature": {"tC": 38.5, "tF": 101.3},
        })
    }

    fn device_info(&self) -> Value {
        json!({
            "name": null, "id": self.device_id(), "mac": self.mac.to_ascii_uppercase(),
            "slot": 0, "model": MODEL, "gen": 2, "fw_id": "20241011-114455/1.4.4-g6d2a586",
            "ver": "1.4.4", "app": APP, "auth_en": false, "auth_domain": null,
        })
    }

    fn set_relay(&self, id: usize, on: bool, source: &str) -> bool {
        let now = self.clock.now_ms();
        let was_on = {
            let mut s = self.lock();
            let was = s
                .outlets
                .change(now, |o| std::mem::replace(&mut o.relays[id], on));
            s.source[id] = source.into();
            was
        };
        if was_on != on {
            let _ = self.notify.send(json!({
                format!("switch:{id}"): {"id": id, "output": on, "source": source}
            }));
            self.notify_meters(id);
        }
        was_on
    }

    /// One call; `source` is the channel (`HTTP_in`, `MQTT`).
    pub fn call(&self, method: &str, params: &Value, source: &str) -> Result<Value, RpcError> {
        let err = |code, message: String| RpcError { code, message };
        let id = || -> Result<usize, RpcError> {
            match params.get("id") {
                None | Some(Value::Null) => {
                    Err(err(code::INVALID_ARGUMENT, "Missing required 'id'".into()))
                }
                Some(v) => match v.as_u64() {
                    Some(n) if (n as usize) < OUTLETS => Ok(n as usize),
                    Some(n) => Err(err(code::NOT_FOUND, format!("Bad id={n}"))),
                    None => Err(err(code::INVALID_ARGUMENT, format!("Invalid 'id': {v}"))),
                },
            }
        };
        match method.to_ascii_lowercase().as_str() {
            "shelly.getdeviceinfo" => Ok(self.device_info()),
            "shelly.getstatus" => {
                let mut m = Map::new();
                for i in 0..OUTLETS {
                    m.insert(format!("switch:{i}"), self.switch_status(i));
                }
                Ok(Value::Object(m))
            }
            "switch.getstatus" => Ok(self.switch_status(id()?)),
            "switch.set" => {
                let id = id()?;
                let on = match params.get("on") {
                    None | Some(Value::Null) => {
                        return Err(err(code::INVALID_ARGUMENT, "Missing required 'on'".into()));
                    }
                    Some(v) => v.as_bool().ok_or_else(|| {
                        err(
                            code::INVALID_ARGUMENT,
                            "Invalid 'on': expected boolean".into(),
                        )
                    })?,
                };
                Ok(json!({"was_on": self.set_relay(id, on, source)}))
            }
            "switch.toggle" => {
                let id = id()?;
                let on = !self.relay(id);
                Ok(json!({"was_on": self.set_relay(id, on, source)}))
            }
            _ => Err(err(code::NO_HANDLER, format!("No handler for {method}"))),
        }
    }

    /// A whole request frame → the response frame (HTTP `POST /rpc` and
    /// MQTT alike), and the `src` to answer to.
    pub fn handle_frame(&self, body: &[u8], source: &str) -> (u16, Value, Option<String>) {
        let me = self.device_id();
        let frame = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            _ => {
                let e = RpcError {
                    code: code::PARSE_ERROR,
                    message: "Parse error".into(),
                };
                return (400, json!({"id": null, "src": me, "error": e}), None);
            }
        };
        let dst = frame.get("src").and_then(Value::as_str).map(str::to_string);
        let mut out = Map::new();
        out.insert("id".into(), frame.get("id").cloned().unwrap_or(Value::Null));
        out.insert("src".into(), Value::String(me));
        if let Some(d) = &dst {
            out.insert("dst".into(), Value::String(d.clone()));
        }
        let Some(method) = frame.get("method").and_then(Value::as_str) else {
            let e = RpcError {
                code: code::INVALID_REQUEST,
                message: "Invalid request: missing 'method'".into(),
            };
            out.insert("error".into(), json!(e));
            return (400, Value::Object(out), dst);
        };
        let params = frame.get("params").cloned().unwrap_or(Value::Null);
        match self.call(method, &params, source) {
            Ok(r) => out.insert("result".into(), r),
            Err(e) => out.insert("error".into(), json!(e)),
        };
        (200, Value::Object(out), dst)
    }
}

/// Starts the device: its HTTP server on 127.0.0.1 (address returned) and,
/// if configured, its MQTT connection. Runs until `shutdown`.
pub fn spawn(
    clock: Clock,
    cfg: Pro4pmSimConfig,
    shutdown: Shutdown,
) -> anyhow::Result<(Pro4pmSim, SocketAddr, Vec<JoinHandle<()>>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let sim = Pro4pmSim::new(clock, &cfg, tx)?;
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    std_listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    let addr = listener.local_addr()?;
    let mut tasks = vec![tokio::spawn(serve(listener, sim.clone(), shutdown.clone()))];
    if let Some((prefix, host, port)) = &cfg.mqtt {
        let mut opts = MqttOptions::new(sim.device_id(), host, *port);
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_last_will(LastWill::new(
            format!("{prefix}/online"),
            "false",
            QoS::AtLeastOnce,
            true,
        ));
        let (client, eventloop) = AsyncClient::new(opts, 64);
        tasks.push(tokio::spawn(run_mqtt(
            sim.clone(),
            prefix.clone(),
            cfg.notify_period_s,
            client,
            eventloop,
            rx,
            shutdown,
        )));
    }
    Ok((sim, addr, tasks))
}

async fn run_mqtt(
    sim: Pro4pmSim,
    prefix: String,
    notify_period_s: f64,
    client: AsyncClient,
    mut eventloop: rumqttc::EventLoop,
    mut notifications: mpsc::UnboundedReceiver<Value>,
    mut shutdown: Shutdown,
) {
    let me = sim.device_id();
    let events = format!("{prefix}/events/rpc");
    let publish = |topic: String, payload: String, retain: bool| {
        // try_*: awaiting the channel inside the poll loop could deadlock.
        if let Err(e) = client.try_publish(topic, QoS::AtMostOnce, retain, payload) {
            tracing::warn!("twin pro4pm {me}: publish dropped: {e}");
        }
    };
    let notify_frame = |params: Value| {
        let mut params = params;
        if let Some(m) = params.as_object_mut() {
            m.insert("ts".into(), json!(sim.clock.now_ms() as f64 / 1000.0));
        }
        json!({"src": me, "dst": format!("{me}/events"), "method": "NotifyStatus", "params": params})
            .to_string()
    };
    let mut tick = Box::pin(sim.clock.sleep_ms(notify_period_s * 1000.0));
    let mut failures = 0u32;
    loop {
        let ev = tokio::select! {
            _ = shutdown.wait() => break,
            Some(params) = notifications.recv() => {
                publish(events.clone(), notify_frame(params), false);
                continue;
            }
            _ = &mut tick => {
                tick = Box::pin(sim.clock.sleep_ms(notify_period_s * 1000.0));
                let mut m = Map::new();
                for i in 0..OUTLETS {
                    let mut s = sim.switch_status(i);
                    if let Some(o) = s.as_object_mut() {
                        // Meters only, as the periodic update carries.
                        o.retain(|k, _| matches!(k.as_str(), "id" | "apower" | "current" | "voltage" | "aenergy"));
                    }
                    m.insert(format!("switch:{i}"), s);
                }
                publish(events.clone(), notify_frame(Value::Object(m)), false);
                continue;
            }
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                failures = 0;
                if let Err(e) = client.try_subscribe(format!("{prefix}/rpc"), QoS::AtLeastOnce) {
                    tracing::warn!("twin pro4pm {me}: cannot subscribe: {e}");
                }
                publish(format!("{prefix}/online"), "true".into(), true);
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == format!("{prefix}/rpc") => {
                let (_, answer, dst) = sim.handle_frame(&p.payload, "MQTT");
                // No `src`: nowhere to answer (as the firmware does).
                if let Some(dst) = dst {
                    publish(format!("{dst}/rpc"), answer.to_string(), false);
                }
            }
            Ok(_) => {}
            Err(e) => {
                if failures == 0 {
                    tracing::warn!("twin pro4pm {me}: MQTT connection lost: {e}; reconnecting");
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

fn respond(status: u16, body: String) -> Resp {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn handle(sim: Pro4pmSim, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let method = req.method().clone();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return respond(
                400,
                json!({"code": code::PARSE_ERROR, "message": e.to_string()}).to_string(),
            );
        }
    };
    if method == Method::POST && path == "/rpc" {
        let (status, v, _) = sim.handle_frame(&body, "HTTP_in");
        return respond(status, v.to_string());
    }
    let Some(name) = path.strip_prefix("/rpc/") else {
        return respond(404, "{}".into());
    };
    let params = if method == Method::GET || body.iter().all(u8::is_ascii_whitespace) {
        query_params(query.as_deref())
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return respond(
                    400,
                    json!({"code": code::PARSE_ERROR, "message": "Parse error"}).to_string(),
                );
            }
        }
    };
    match sim.call(name, &params, "HTTP_in") {
        Ok(r) => respond(200, r.to_string()),
        Err(e) => {
            let status = match e.code {
                code::INVALID_ARGUMENT => 400,
                code::NOT_FOUND | code::NO_HANDLER => 404,
                _ => 500,
            };
            respond(status, json!(e).to_string())
        }
    }
}

async fn serve(listener: tokio::net::TcpListener, sim: Pro4pmSim, mut shutdown: Shutdown) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.wait() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("twin pro4pm: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let sim = sim.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let sim = sim.clone();
                async move { Ok::<_, Infallible>(handle(sim, req).await) }
            });
            // Shelly's HTTP channel closes after each answer.
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
    use crate::twin::breaker::Breaker;

    fn config(mac: &str, loads_w: [f64; OUTLETS]) -> Pro4pmSimConfig {
        Pro4pmSimConfig {
            mac: mac.into(),
            loads_w,
            voltage_v: 230.0,
            mqtt: None,
            notify_period_s: 60.0,
            breaker: None,
            circuit: None,
        }
    }

    fn sim() -> (Pro4pmSim, mpsc::UnboundedReceiver<Value>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let clock = Clock::simulated_from(1_765_000_000_000, 1.0);
        let cfg = config("30c6f7aabbcc", [60.0, 0.0, 0.0, 2300.0]);
        (Pro4pmSim::new(clock, &cfg, tx).unwrap(), rx)
    }

    #[test]
    fn set_switches_one_relay_and_notifies_partially() {
        let (s, mut rx) = sim();
        let (status, r, dst) = s.handle_frame(
            br#"{"id":1,"src":"hearth-p4","method":"Switch.Set","params":{"id":3,"on":true}}"#,
            "MQTT",
        );
        assert_eq!((status, dst.as_deref()), (200, Some("hearth-p4")));
        assert_eq!(r["result"], json!({"was_on": false}));
        assert_eq!(r["src"], "shellypro4pm-30c6f7aabbcc");
        assert!(s.relay(3) && !s.relay(0));
        assert_eq!(
            rx.try_recv().unwrap(),
            json!({"switch:3": {"id":3,"output":true,"source":"MQTT"}})
        );
        assert_eq!(rx.try_recv().unwrap()["switch:3"]["apower"], 2300.0);
        let st = s.switch_status(3);
        assert_eq!(
            (st["apower"].clone(), st["current"].clone()),
            (json!(2300.0), json!(10.0))
        );
        // The breaker's cut: relay closed, nothing drawn.
        s.set_supply(3, false);
        assert_eq!(s.switch_status(3)["apower"], 0.0);
        assert!(s.relay(3));
    }

    #[test]
    fn errors_use_shelly_codes() {
        let (s, _rx) = sim();
        let code_of = |m: &str, p: Value| s.call(m, &p, "HTTP_in").unwrap_err().code;
        assert_eq!(code_of("Switch.Set", json!({"id": 4, "on": true})), -105);
        assert_eq!(code_of("Switch.Set", json!({"id": 0})), -103);
        assert_eq!(code_of("Switch.GetStatus", json!({})), -103);
        assert_eq!(code_of("Cover.Open", json!({"id": 0})), 404);
        assert_eq!(s.handle_frame(b"{nope", "HTTP_in").0, 400);
        assert_eq!(
            s.call("Shelly.GetDeviceInfo", &json!({}), "HTTP_in")
                .unwrap()["model"],
            MODEL
        );
    }

    const T0: i64 = 1_765_000_000_000;

    fn manual(cfg: &Pro4pmSimConfig) -> (Pro4pmSim, crate::clock::ManualTime) {
        let (clock, time) = Clock::manual(T0);
        let (tx, _rx) = mpsc::unbounded_channel();
        (Pro4pmSim::new(clock, cfg, tx).unwrap(), time)
    }

    fn switch_on(s: &Pro4pmSim, id: usize) {
        s.call("Switch.Set", &json!({"id": id, "on": true}), "HTTP_in")
            .unwrap();
    }

    #[test]
    fn an_overloaded_pro4pm_trips_its_breaker_and_reads_zero_until_reset() {
        let mut cfg = config("30c6f7aabbcc", [1150.0; OUTLETS]);
        cfg.breaker = Some(BreakerSpec::b(16.0));
        let (s, time) = manual(&cfg);
        for id in 0..OUTLETS {
            switch_on(&s, id);
        }
        // 4 × 5 A = 20 A on a B16: the curve's time from cold.
        let curve_ms = (Breaker::new(BreakerSpec::b(16.0))
            .time_to_trip(20.0)
            .expect("20 A trips a B16")
            * 1000.0) as i64;
        time.set(T0 + curve_ms - 2_000);
        assert!((0..OUTLETS).all(|id| !s.cut(id) && s.power_w(id) == 1150.0));
        time.set(T0 + curve_ms + 2_000);
        let trips = s.breaker_trips();
        assert_eq!(trips.len(), 1, "{trips:?}");
        assert!((trips[0].0 - T0 - curve_ms).abs() <= 1, "{trips:?}");
        assert_eq!(trips[0].1.name, "shellypro4pm-30c6f7aabbcc");
        let energy_at_trip: Vec<f64> = (0..OUTLETS).map(|id| s.energy_wh(id)).collect();
        for id in 0..OUTLETS {
            // 1150 W up to the trip, nothing after.
            let want = 1150.0 * (trips[0].0 - T0) as f64 / 3_600_000.0;
            assert!(
                (energy_at_trip[id] - want).abs() < 0.01,
                "{energy_at_trip:?} vs {want}"
            );
        }
        time.set(T0 + 3_600_000);
        for (id, at_trip) in energy_at_trip.iter().enumerate() {
            assert!(s.cut(id));
            let st = s
                .call("Switch.GetStatus", &json!({"id": id}), "HTTP_in")
                .unwrap();
            assert_eq!(st["output"], true, "the relay keeps its state");
            assert_eq!(
                (st["apower"].clone(), st["current"].clone()),
                (json!(0.0), json!(0.0))
            );
            assert_eq!(st["aenergy"]["total"], json!(round(*at_trip, 3)));
            assert_eq!(s.energy_wh(id), *at_trip, "no energy while cut");
        }
        // One outlet off, reset: 15 A holds and the others read again.
        s.call("Switch.Set", &json!({"id": 3, "on": false}), "HTTP_in")
            .unwrap();
        s.reset_breaker();
        time.set(T0 + 7_200_000);
        assert!(!s.cut(0));
        assert_eq!(s.switch_status(0)["apower"], 1150.0);
        assert_eq!(s.switch_status(3)["apower"], 0.0);
        let fed_h = (3_600_000.0 + (trips[0].0 - T0) as f64) / 3_600_000.0;
        assert!(
            (s.energy_wh(0) - 1150.0 * fed_h).abs() < 0.01,
            "{}",
            s.energy_wh(0)
        );
        assert_eq!(s.breaker_trips().len(), 1);
    }

    #[test]
    fn a_pro4pm_and_a_tasmota_strip_trip_their_shared_circuit_together() {
        use crate::twin::circuit::{CircuitTree, SharedCircuits};
        use crate::twin::tasmota_strip_sim::{self as strip, SimMeter, StripSim, StripSimConfig};

        let (clock, time) = Clock::manual(T0);
        let circuits = SharedCircuits::new(CircuitTree::new());
        let root = circuits
            .with(|t| t.add_circuit("circuit", None, BreakerSpec::b(16.0)))
            .unwrap();
        let slot = CircuitSlot {
            circuits: circuits.clone(),
            parent: root,
        };
        // 10 A each, on breakers of their own that hold it; 20 A on the
        // circuit's B16.
        let mut cfg = config("30c6f7aabbcc", [2300.0, 0.0, 0.0, 0.0]);
        cfg.breaker = Some(BreakerSpec::b(16.0));
        cfg.circuit = Some(slot.clone());
        let (tx, _rx) = mpsc::unbounded_channel();
        let pro = Pro4pmSim::new(clock, &cfg, tx).unwrap();
        switch_on(&pro, 0);
        let strip_cfg = StripSimConfig {
            topic: "strip".into(),
            client_id: "strip".into(),
            loads_w: vec![2300.0],
            voltage_v: 230.0,
            meter: SimMeter::PerChannel,
            tele_period_s: 10.0,
            breaker: Some(BreakerSpec::b(16.0)),
            circuit: Some(slot),
        };
        let tas = StripSim::new(clock, &strip_cfg).unwrap();
        strip::answer(&tas, "strip", "POWER1", b"ON");
        let curve_ms = (Breaker::new(BreakerSpec::b(16.0))
            .time_to_trip(20.0)
            .unwrap()
            * 1000.0) as i64;
        time.set(T0 + curve_ms - 2_000);
        assert!(!pro.cut(0) && !tas.cut(1));
        time.set(T0 + curve_ms + 2_000);
        assert!(circuits.tripped(root, T0 + curve_ms + 2_000));
        assert!(pro.cut(0) && tas.cut(1), "the circuit cuts both devices");
        assert!(pro.cut(1), "and the Pro 4PM's idle outlets");
        assert!(pro.breaker_trips().is_empty() && tas.breaker_trips().is_empty());
        assert_eq!(pro.switch_status(0)["apower"], 0.0);
        assert!(pro.relay(0) && tas.relay(1));
        // The Pro 4PM's outlet off, the circuit reset directly: the strip's
        // 10 A alone holds, and the Pro 4PM counted nothing while cut.
        let at_trip = pro.energy_wh(0);
        pro.call("Switch.Set", &json!({"id": 0, "on": false}), "HTTP_in")
            .unwrap();
        time.set(T0 + 3_600_000);
        circuits.reset(root, T0 + 3_600_000);
        time.set(T0 + 7_200_000);
        assert!(!pro.cut(0) && !tas.cut(1));
        assert_eq!(pro.energy_wh(0), at_trip);
    }
}
