//! A simulated Shelly Plus Plug S (model `SNPL-00112EU`, Gen2 API) that
//! feeds the twin's air conditioner: an HTTP/1 server on 127.0.0.1 speaking
//! Shelly's JSON-RPC ("Gen2+ Device API": RPC Protocol, RPC Channels, Common
//! Errors; components Shelly and Switch).
//!
//! # HTTP channel (as Shelly documents it)
//!
//! - `POST /rpc` with a whole request frame
//!   `{"id":1,"src":"me","method":"Switch.GetStatus","params":{"id":0}}` →
//!   HTTP 200 and a whole response frame
//!   `{"id":1,"src":"shellyplusplugs-<mac>","dst":"me","result":{…}}`, or
//!   `… "error":{"code":-103,"message":"…"}` (`dst` only when the request
//!   had a `src`). Method errors still answer HTTP 200.
//! - `GET /rpc/<Method>?id=0&on=true` (query values typed like Shelly ≥ 1.0:
//!   `true`/`false`/numbers/JSON are typed, the rest are strings) and
//!   `POST /rpc/<Method>` with the params object as body → the bare
//!   `result` object, or the bare `{"code":…,"message":…}` error.
//! - `GET /shelly` → the device info.
//!
//! # Methods
//!
//! `Shelly.GetDeviceInfo`, `Shelly.GetStatus`, `Shelly.ListMethods`,
//! `Switch.GetStatus`, `Switch.Set` (`{"id":0,"on":bool}` →
//! `{"was_on":bool}`), `Switch.Toggle`, `Switch.GetConfig`,
//! `Switch.SetConfig` (`{"id":0,"config":{"power_limit":W,
//! "current_limit":A}}` → `{"restart_required":false}`). Method names match
//! case-insensitively.
//!
//! # Protection (Shelly "Switch": `power_limit`, `current_limit`, `errors`)
//!
//! Above `power_limit` W (default 2500, the Plus Plug S rating) or
//! `current_limit` A (default 12) the plug opens its relay by itself
//! (`source` `overpower`/`overcurrent`) and its status carries
//! `"errors":["overpower"]` until the relay is switched on again. The check
//! runs at every call and, with the MQTT side ([`super::shelly_push_sim`]),
//! every tick of its watcher; an HTTP-only plug trips when next asked.
//!
//! # Errors
//!
//! Documented codes: −103 invalid argument (`Missing required 'id'`), −105
//! not found (`Bad id=1`). Unknown methods get what the firmware answers,
//! code 404 `No handler for <Method>` (seen in the wild, e.g. Home
//! Assistant core issue #123440). Not documented by Shelly, chosen here: a
//! body that is not a JSON object gets HTTP 400 with JSON-RPC 2.0's −32700
//! "Parse error", a frame without `method` HTTP 400 with −32600 "Invalid
//! request"; on `/rpc/<Method>` an error maps to HTTP 400 (−103), 404
//! (−105, 404) or 500.
//!
//! # Switch.GetStatus
//!
//! `output` is the relay; `apower` (W) the AC's electrical draw;
//! `voltage` (V) 230 + N(0, 0.8); `current` (A) = apower/voltage; `freq`
//! 50 Hz; `aenergy.total` (Wh) integrated in sim time, `by_minute` (mWh,
//! last three whole minutes, latest first), `minute_ts` (unix s of the
//! first second of the latest whole minute); `temperature` of the plug,
//! modelled as room + 3 °C + 2 °C/kW of load.
//!
//! # Misbehaving on purpose
//!
//! [`ShellyFault`], switchable at run time through [`FaultSwitch`], makes
//! the plug answer badly so the bridge's handling of bad input can be
//! tested over real HTTP.

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
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use super::plant::{Plant, SharedPlant};
use crate::clock::Clock;
use crate::shutdown::Shutdown;

pub const MODEL: &str = "SNPL-00112EU";
pub const APP: &str = "PlusPlugS";
pub const FW_VER: &str = "1.4.4";
pub const FW_ID: &str = "20241011-114449/1.4.4-g6d2a586";

/// Shelly error codes (Common Errors) and the two JSON-RPC 2.0 ones used
/// for malformed frames.
pub mod code {
    pub const INVALID_ARGUMENT: i64 = -103;
    pub const NOT_FOUND: i64 = -105;
    /// What the firmware answers for an unknown method.
    pub const NO_HANDLER: i64 = 404;
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
}

const METHODS: &[&str] = &[
    "Shelly.GetDeviceInfo",
    "Shelly.GetStatus",
    "Shelly.ListMethods",
    "Switch.GetStatus",
    "Switch.Set",
    "Switch.Toggle",
    "Switch.GetConfig",
    "Switch.SetConfig",
];
/// W and A the plug protects at out of the box (Plus Plug S).
pub const DEFAULT_POWER_LIMIT_W: f64 = 2500.0;
pub const DEFAULT_CURRENT_LIMIT_A: f64 = 12.0;
const MAX_BODY: usize = 64 * 1024;
/// How long a `Timeout` fault keeps the client waiting (wall time).
const HANG: Duration = Duration::from_secs(30);

/// Ways the plug can misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum ShellyFault {
    /// Behaves.
    #[default]
    None,
    /// Executes the call, then sends the answer cut in half (invalid JSON).
    MalformedJson,
    /// Executes the call, then answers with every number and bool of the
    /// result turned into a string (`"apower":"2300.0"`, `"output":"on"`).
    WrongTypes,
    /// Answers HTTP 500 with a text body; the call is not executed.
    HttpError,
    /// Holds the request 30 s (wall) without answering; not executed.
    Timeout,
}

/// The plug's current fault, shared with the twin handle.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch(Arc<Mutex<ShellyFault>>);

impl FaultSwitch {
    pub fn set(&self, fault: ShellyFault) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    pub fn get(&self) -> ShellyFault {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// The device's identity and the state that is its own (not the plant's).
#[derive(Debug, Clone)]
pub struct ShellyDevice {
    /// 12 upper-case hex digits.
    pub mac: String,
    pub name: String,
    /// Source of the last relay change (`init`, `HTTP_in`).
    source: String,
    /// W above which the relay opens by itself.
    pub power_limit_w: f64,
    /// A above which the relay opens by itself.
    pub current_limit_a: f64,
    /// `overpower` / `overcurrent` since the last trip, until switched on.
    pub errors: Vec<String>,
}

impl ShellyDevice {
    pub fn new(mac: &str, name: &str) -> Self {
        ShellyDevice {
            mac: mac.to_ascii_uppercase(),
            name: name.to_string(),
            source: "init".into(),
            power_limit_w: DEFAULT_POWER_LIMIT_W,
            current_limit_a: DEFAULT_CURRENT_LIMIT_A,
            errors: Vec::new(),
        }
    }

    /// Source of the last relay change.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The relay from the device itself (its button): clears the errors
    /// when switching on, as any switch-on does.
    pub fn set_relay(&mut self, plant: &mut Plant, on: bool, now_ms: i64, source: &str) -> bool {
        self.source = source.into();
        if on {
            self.errors.clear();
        }
        plant.set_relay(on, now_ms)
    }

    /// Opens the relay if the load is above a limit; true if it tripped.
    pub fn enforce_limits(&mut self, plant: &mut Plant, now_ms: i64, voltage_v: f64) -> bool {
        plant.advance_to(now_ms);
        if !plant.relay_on() {
            return false;
        }
        let apower = plant.ac.electrical_w();
        let why = if apower > self.power_limit_w {
            "overpower"
        } else if apower / voltage_v > self.current_limit_a {
            "overcurrent"
        } else {
            return false;
        };
        tracing::info!(
            "twin shelly {}: {apower} W over its limits ({} W, {} A): {why}, relay off",
            self.id(),
            self.power_limit_w,
            self.current_limit_a
        );
        plant.set_relay(false, now_ms);
        self.source = why.into();
        self.errors = vec![why.into()];
        true
    }

    /// `Switch.GetConfig` of switch 0.
    pub fn switch_config(&self) -> Value {
        json!({
            "id": 0, "name": null, "initial_state": "restore_last", "auto_on": false,
            "auto_on_delay": 60.0, "auto_off": false, "auto_off_delay": 60.0,
            "power_limit": self.power_limit_w, "voltage_limit": 280,
            "autorecover_voltage_errors": false, "current_limit": self.current_limit_a,
        })
    }

    fn set_config(&mut self, params: &Value) -> Result<Value, RpcError> {
        let Some(config) = params.get("config").and_then(Value::as_object) else {
            return Err(RpcError::new(
                code::INVALID_ARGUMENT,
                "Missing required 'config'",
            ));
        };
        let limit = |key: &str, max: f64| match config.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|x| (0.0..=max).contains(x))
                .map(Some)
                .ok_or_else(|| {
                    RpcError::new(code::INVALID_ARGUMENT, format!("Invalid '{key}': {v}"))
                }),
        };
        let p = limit("power_limit", 4000.0)?;
        let a = limit("current_limit", 16.0)?;
        if let Some(p) = p {
            self.power_limit_w = p;
        }
        if let Some(a) = a {
            self.current_limit_a = a;
        }
        Ok(json!({"restart_required": false}))
    }

    /// `shellyplusplugs-<mac in lower case>`, the device's `src`.
    pub fn id(&self) -> String {
        format!("shellyplusplugs-{}", self.mac.to_ascii_lowercase())
    }

    pub fn device_info(&self) -> Value {
        json!({
            "name": self.name,
            "id": self.id(),
            "mac": self.mac,
            "slot": 0,
            "model": MODEL,
            "gen": 2,
            "fw_id": FW_ID,
            "ver": FW_VER,
            "app": APP,
            "auth_en": false,
            "auth_domain": null,
        })
    }

    /// `Switch.GetStatus` of switch 0, from the plant as it is now.
    pub fn switch_status(&self, plant: &Plant, voltage_v: f64) -> Value {
        let apower = plant.ac.electrical_w();
        let t_c = plant.room.temp_c + 3.0 + 2.0 * apower / 1000.0;
        let mut v = json!({
            "id": 0,
            "source": self.source,
            "output": plant.relay_on(),
            "apower": round(apower, 1),
            "voltage": round(voltage_v, 1),
            "freq": 50.0,
            "current": round(apower / voltage_v, 3),
            "aenergy": {
                "total": round(plant.energy_wh(), 3),
                "by_minute": plant.by_minute_mwh().map(|m| round(m, 3)),
                "minute_ts": plant.minute_ts_s(),
            },
            "temperature": { "tC": round(t_c, 1), "tF": round(t_c * 9.0 / 5.0 + 32.0, 1) },
        });
        if !self.errors.is_empty() {
            v["errors"] = json!(self.errors);
        }
        v
    }

    /// One call: `method` with `params` at sim time `now_ms`. Relay methods
    /// change the plant. `voltage_v` is this instant's mains voltage.
    pub fn call(
        &mut self,
        plant: &mut Plant,
        now_ms: i64,
        voltage_v: f64,
        method: &str,
        params: &Value,
    ) -> Result<Value, RpcError> {
        plant.advance_to(now_ms);
        self.enforce_limits(plant, now_ms, voltage_v);
        match method.to_ascii_lowercase().as_str() {
            "shelly.getdeviceinfo" => Ok(self.device_info()),
            "shelly.getstatus" => Ok(json!({ "switch:0": self.switch_status(plant, voltage_v) })),
            "shelly.listmethods" => Ok(json!({ "methods": METHODS })),
            "switch.getstatus" => {
                switch_id(params)?;
                Ok(self.switch_status(plant, voltage_v))
            }
            "switch.set" => {
                switch_id(params)?;
                let on = match params.get("on") {
                    None | Some(Value::Null) => {
                        return Err(RpcError::new(
                            code::INVALID_ARGUMENT,
                            "Missing required 'on'",
                        ));
                    }
                    Some(v) => v.as_bool().ok_or_else(|| {
                        RpcError::new(code::INVALID_ARGUMENT, "Invalid 'on': expected boolean")
                    })?,
                };
                let was_on = self.set_relay(plant, on, now_ms, "HTTP_in");
                self.enforce_limits(plant, now_ms, voltage_v);
                Ok(json!({ "was_on": was_on }))
            }
            "switch.toggle" => {
                switch_id(params)?;
                let on = !plant.relay_on();
                let was_on = self.set_relay(plant, on, now_ms, "HTTP_in");
                self.enforce_limits(plant, now_ms, voltage_v);
                Ok(json!({ "was_on": was_on }))
            }
            "switch.getconfig" => {
                switch_id(params)?;
                Ok(self.switch_config())
            }
            "switch.setconfig" => {
                switch_id(params)?;
                self.set_config(params)
            }
            _ => Err(RpcError::new(
                code::NO_HANDLER,
                format!("No handler for {method}"),
            )),
        }
    }

    /// A whole `POST /rpc` body → (HTTP status, response frame).
    pub fn handle_frame(
        &mut self,
        plant: &mut Plant,
        now_ms: i64,
        voltage_v: f64,
        body: &[u8],
    ) -> (u16, Value) {
        let src = self.id();
        let frame = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            _ => {
                let e = RpcError::new(code::PARSE_ERROR, "Parse error");
                return (400, json!({ "id": null, "src": src, "error": e }));
            }
        };
        let id = frame.get("id").cloned().unwrap_or(Value::Null);
        let mut out = Map::new();
        out.insert("id".into(), id);
        out.insert("src".into(), Value::String(src));
        if let Some(dst) = frame.get("src").filter(|v| v.is_string()) {
            out.insert("dst".into(), dst.clone());
        }
        let Some(method) = frame.get("method").and_then(Value::as_str) else {
            let e = RpcError::new(code::INVALID_REQUEST, "Invalid request: missing 'method'");
            out.insert("error".into(), json!(e));
            return (400, Value::Object(out));
        };
        let params = frame.get("params").cloned().unwrap_or(Value::Null);
        match self.call(plant, now_ms, voltage_v, method, &params) {
            Ok(r) => out.insert("result".into(), r),
            Err(e) => out.insert("error".into(), json!(e)),
        };
        (200, Value::Object(out))
    }
}

/// The `id` of a Switch call: required, an integer, and 0 (one relay).
fn switch_id(params: &Value) -> Result<u64, RpcError> {
    match params.get("id") {
        None | Some(Value::Null) => Err(RpcError::new(
            code::INVALID_ARGUMENT,
            "Missing required 'id'",
        )),
        Some(v) => match v.as_u64() {
            Some(0) => Ok(0),
            Some(n) => Err(RpcError::new(code::NOT_FOUND, format!("Bad id={n}"))),
            None => Err(RpcError::new(
                code::INVALID_ARGUMENT,
                format!("Invalid 'id': {v}"),
            )),
        },
    }
}

/// Query string → params object, typed like Shelly ≥ 1.0 does: what parses
/// as JSON (`true`, `0`, `"text"`, `{…}`) is that, anything else a string.
pub fn query_params(query: Option<&str>) -> Value {
    let mut m = Map::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let value = serde_json::from_str(&v).unwrap_or_else(|_| Value::String(v.into_owned()));
        m.insert(k.into_owned(), value);
    }
    Value::Object(m)
}

/// `WrongTypes`: every number and bool becomes a string.
fn stringify_scalars(v: &mut Value) {
    match v {
        Value::Number(n) => *v = Value::String(n.to_string()),
        Value::Bool(b) => *v = Value::String(if *b { "on" } else { "off" }.into()),
        Value::Array(a) => a.iter_mut().for_each(stringify_scalars),
        Value::Object(m) => m.values_mut().for_each(stringify_scalars),
        _ => {}
    }
}

/// `MalformedJson`: the first half of the text.
fn truncate_half(text: &str) -> String {
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_string()
}

#[derive(Debug, Clone)]
pub struct ShellySimConfig {
    /// 12 hex digits.
    pub mac: String,
    /// Device name (`Shelly.GetDeviceInfo` `name`).
    pub name: String,
    /// Mains-voltage noise seed.
    pub seed: u64,
}

/// The device state shared by its HTTP and MQTT sides.
pub type SharedDevice = Arc<Mutex<ShellyDevice>>;

struct Server {
    clock: Clock,
    plant: SharedPlant,
    device: SharedDevice,
    rng: Mutex<fastrand::Rng>,
    fault: FaultSwitch,
    shutdown: Shutdown,
}

type Resp = Response<Full<Bytes>>;

fn respond(status: u16, content_type: &str, body: String) -> Resp {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

enum Route {
    Frame,
    Method(String),
    Info,
    NotFound,
}

impl Server {
    fn voltage(&self) -> f64 {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        230.0 + 0.8 * super::standard_normal(&mut rng)
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Resp {
        let fault = self.fault.get();
        match fault {
            ShellyFault::HttpError => {
                return respond(500, "text/plain", "Internal Server Error".into());
            }
            ShellyFault::Timeout => {
                let mut shutdown = self.shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(HANG) => {}
                    _ = shutdown.wait() => {}
                }
                return respond(504, "text/plain", String::new());
            }
            _ => {}
        }

        let path = req.uri().path().to_string();
        let route = match (req.method(), path.as_str()) {
            (&Method::POST, "/rpc") => Route::Frame,
            (&Method::GET, "/shelly") => Route::Info,
            (m, p) if (m == Method::GET || m == Method::POST) && p.starts_with("/rpc/") => {
                Route::Method(p["/rpc/".len()..].to_string())
            }
            _ => Route::NotFound,
        };
        let query = req.uri().query().map(str::to_string);
        let is_get = req.method() == Method::GET;
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return respond(400, "text/plain", format!("bad body: {e}")),
        };

        let now = self.clock.now_ms();
        let voltage = self.voltage();
        let (status, mut value, frame) = {
            let mut plant = self.plant.lock().unwrap_or_else(|e| e.into_inner());
            let mut dev = self.device.lock().unwrap_or_else(|e| e.into_inner());
            match route {
                Route::NotFound => return respond(404, "text/plain", "Not Found".into()),
                Route::Info => (200, dev.device_info(), false),
                Route::Frame => {
                    let (s, v) = dev.handle_frame(&mut plant, now, voltage, &body);
                    (s, v, true)
                }
                Route::Method(method) => {
                    let params = if is_get {
                        query_params(query.as_deref())
                    } else if body.iter().all(u8::is_ascii_whitespace) {
                        Value::Object(Map::new())
                    } else {
                        match serde_json::from_slice::<Value>(&body) {
                            Ok(v @ Value::Object(_)) => v,
                            _ => {
                                let e = RpcError::new(code::PARSE_ERROR, "Parse error");
                                return respond(400, "application/json", json!(e).to_string());
                            }
                        }
                    };
                    match dev.call(&mut plant, now, voltage, &method, &params) {
                        Ok(r) => (200, r, false),
                        Err(e) => {
                            let status = match e.code {
                                code::INVALID_ARGUMENT => 400,
                                code::NOT_FOUND | code::NO_HANDLER => 404,
                                _ => 500,
                            };
                            (status, json!(e), false)
                        }
                    }
                }
            }
        };

        if fault == ShellyFault::WrongTypes {
            match value.get_mut("result") {
                Some(r) if frame => stringify_scalars(r),
                _ if !frame => stringify_scalars(&mut value),
                _ => {}
            }
        }
        let mut text = value.to_string();
        if fault == ShellyFault::MalformedJson {
            text = truncate_half(&text);
        }
        respond(status, "application/json", text)
    }
}

/// Binds 127.0.0.1:0 and serves the plug until shutdown. Returns the bound
/// address. Must be called inside a tokio runtime.
pub fn spawn(
    clock: Clock,
    cfg: ShellySimConfig,
    plant: SharedPlant,
    fault: FaultSwitch,
    shutdown: Shutdown,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let device = Arc::new(Mutex::new(ShellyDevice::new(&cfg.mac, &cfg.name)));
    spawn_shared(clock, device, cfg.seed, plant, fault, shutdown)
}

/// [`spawn`] for a device whose state another side (MQTT) shares.
pub fn spawn_shared(
    clock: Clock,
    device: SharedDevice,
    seed: u64,
    plant: SharedPlant,
    fault: FaultSwitch,
    shutdown: Shutdown,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    // std bind: synchronous, so the twin can start without `.await`.
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    std_listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    let addr = listener.local_addr()?;
    let server = Arc::new(Server {
        clock,
        plant,
        device,
        rng: Mutex::new(fastrand::Rng::with_seed(seed)),
        fault,
        shutdown: shutdown.clone(),
    });
    Ok((addr, tokio::spawn(serve(listener, server, shutdown))))
}

async fn serve(listener: tokio::net::TcpListener, server: Arc<Server>, mut shutdown: Shutdown) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.wait() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("twin shelly: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let server = server.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(server.handle(req).await) }
            });
            // Shelly's HTTP channel closes after each answer (no keep-alive).
            if let Err(e) = http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!("twin shelly: connection from {peer}: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::room::{AcMode, AcSettings, COMPRESSOR_ELECTRICAL_W, RoomParams};

    const T0: i64 = 1_700_000_040_000; // a whole minute

    fn setup() -> (ShellyDevice, Plant) {
        let dev = ShellyDevice::new("a8032ab1c2d3", "Server room AC");
        let mut plant = Plant::new(RoomParams::server_room(), T0);
        plant.apply_ir(
            AcSettings {
                power: true,
                mode: AcMode::Cool,
                // Out of reach within the tests' hour: the compressor runs throughout.
                set_temp_c: 10.0,
                fan_speed: "Auto".into(),
            },
            T0,
        );
        (dev, plant)
    }

    fn frame(dev: &mut ShellyDevice, plant: &mut Plant, t: i64, req: Value) -> (u16, Value) {
        dev.handle_frame(plant, t, 230.0, req.to_string().as_bytes())
    }

    #[test]
    fn get_status_reports_the_ac_draw() {
        let (mut dev, mut plant) = setup();
        let (s, r) = frame(
            &mut dev,
            &mut plant,
            T0 + 3_600_000,
            json!({"id":1,"src":"hearth","method":"Switch.GetStatus","params":{"id":0}}),
        );
        assert_eq!(s, 200);
        assert_eq!(r["id"], 1);
        assert_eq!(r["src"], "shellyplusplugs-a8032ab1c2d3");
        assert_eq!(r["dst"], "hearth");
        let st = &r["result"];
        assert_eq!(st["id"], 0);
        assert_eq!(st["output"], true);
        assert_eq!(st["apower"], COMPRESSOR_ELECTRICAL_W);
        assert_eq!(st["voltage"], 230.0);
        assert_eq!(st["current"], 10.0);
        assert_eq!(st["aenergy"]["total"], 2300.0);
        assert_eq!(st["aenergy"]["by_minute"].as_array().unwrap().len(), 3);
        assert_eq!(st["aenergy"]["minute_ts"], (T0 + 3_540_000) / 1000);
        let tc = st["temperature"]["tC"].as_f64().unwrap();
        assert!((st["temperature"]["tF"].as_f64().unwrap() - (tc * 1.8 + 32.0)).abs() < 0.1);
    }

    #[test]
    fn set_and_toggle_drive_the_relay_and_the_ac_mains() {
        let (mut dev, mut plant) = setup();
        let (_, r) = frame(
            &mut dev,
            &mut plant,
            T0 + 1000,
            json!({"id":2,"method":"Switch.Set","params":{"id":0,"on":false}}),
        );
        assert_eq!(r["result"], json!({"was_on": true}));
        assert!(r.get("dst").is_none(), "no src in the request: no dst");
        assert!(!plant.relay_on());
        assert!(!plant.ac.mains());
        assert!(!plant.ac.compressor_running());

        let (_, r) = frame(
            &mut dev,
            &mut plant,
            T0 + 2000,
            json!({"id":3,"method":"switch.toggle","params":{"id":0}}),
        );
        assert_eq!(r["result"], json!({"was_on": false}));
        assert!(plant.relay_on());
        let (_, r) = frame(
            &mut dev,
            &mut plant,
            T0 + 2000,
            json!({"id":4,"method":"Switch.GetStatus","params":{"id":0}}),
        );
        assert_eq!(r["result"]["source"], "HTTP_in");
        assert_eq!(r["result"]["output"], true);
    }

    #[test]
    fn device_info_is_a_plus_plug_s() {
        let (mut dev, mut plant) = setup();
        let (_, r) = frame(
            &mut dev,
            &mut plant,
            T0,
            json!({"id":"x","method":"Shelly.GetDeviceInfo"}),
        );
        let i = &r["result"];
        assert_eq!(r["id"], "x");
        assert_eq!(i["model"], "SNPL-00112EU");
        assert_eq!(i["gen"], 2);
        assert_eq!(i["app"], "PlusPlugS");
        assert_eq!(i["auth_en"], false);
        assert_eq!(i["mac"], "A8032AB1C2D3");
        assert_eq!(i["id"], "shellyplusplugs-a8032ab1c2d3");
        assert!(i["fw_id"].is_string() && i["ver"].is_string());
    }

    #[test]
    fn errors_use_shelly_codes() {
        let (mut dev, mut plant) = setup();
        let mut err = |req: Value| {
            let (s, r) = frame(&mut dev, &mut plant, T0, req);
            (
                s,
                r["error"]["code"].as_i64().unwrap(),
                r["error"]["message"].as_str().unwrap().to_string(),
            )
        };
        assert_eq!(
            err(json!({"id":1,"method":"Switch.GetStatus"})),
            (200, -103, "Missing required 'id'".into())
        );
        assert_eq!(
            err(json!({"id":1,"method":"Switch.GetStatus","params":{"id":1}})),
            (200, -105, "Bad id=1".into())
        );
        assert_eq!(
            err(json!({"id":1,"method":"Switch.Set","params":{"id":0,"on":"yes"}})).1,
            -103
        );
        assert_eq!(
            err(json!({"id":1,"method":"Switch.Set","params":{"id":0}})).1,
            -103
        );
        assert_eq!(
            err(json!({"id":1,"method":"Cover.Open","params":{"id":0}})),
            (200, 404, "No handler for Cover.Open".into())
        );
        assert_eq!(err(json!({"id":1})).0, 400);

        let (s, r) = dev.handle_frame(&mut plant, T0, 230.0, b"{\"id\":1,");
        assert_eq!(s, 400);
        assert_eq!(r["error"]["code"], -32700);
        assert!(plant.relay_on(), "no call executed");
    }

    #[test]
    fn a_load_above_the_power_limit_trips_the_relay_until_switched_on() {
        let (mut dev, mut plant) = setup();
        let (_, r) = frame(
            &mut dev,
            &mut plant,
            T0,
            json!({"id":1,"method":"Switch.SetConfig","params":{"id":0,"config":{"power_limit":1000}}}),
        );
        assert_eq!(r["result"], json!({"restart_required": false}));
        let (_, r) = frame(
            &mut dev,
            &mut plant,
            T0,
            json!({"id":2,"method":"Switch.GetConfig","params":{"id":0}}),
        );
        assert_eq!(r["result"]["power_limit"], 1000.0);
        assert_eq!(r["result"]["current_limit"], DEFAULT_CURRENT_LIMIT_A);
        // The AC's 2300 W compressor is above 1000 W: the next look trips it.
        let (_, r) = frame(
            &mut dev,
            &mut plant,
            T0 + 1000,
            json!({"id":3,"method":"Switch.GetStatus","params":{"id":0}}),
        );
        assert_eq!(r["result"]["output"], false);
        assert_eq!(r["result"]["errors"], json!(["overpower"]));
        assert_eq!(r["result"]["source"], "overpower");
        assert!(!plant.relay_on());
        // Raised limit, switched on: the error clears and the relay holds.
        frame(
            &mut dev,
            &mut plant,
            T0 + 2000,
            json!({"id":4,"method":"Switch.SetConfig","params":{"id":0,"config":{"power_limit":2500}}}),
        );
        let (_, r) = frame(
            &mut dev,
            &mut plant,
            T0 + 2000,
            json!({"id":5,"method":"Switch.Set","params":{"id":0,"on":true}}),
        );
        assert_eq!(r["result"]["was_on"], false);
        let (_, r) = frame(
            &mut dev,
            &mut plant,
            T0 + 3000,
            json!({"id":6,"method":"Switch.GetStatus","params":{"id":0}}),
        );
        assert_eq!(r["result"]["output"], true);
        assert!(r["result"].get("errors").is_none());
        let (_, r) = frame(
            &mut dev,
            &mut plant,
            T0,
            json!({"id":7,"method":"Switch.SetConfig","params":{"id":0,"config":{"power_limit":"x"}}}),
        );
        assert_eq!(r["error"]["code"], -103);
    }

    #[test]
    fn query_strings_are_typed() {
        let p = query_params(Some(
            "id=0&on=true&name=%22x%22&mode=eco&cfg=%7B%22a%22%3A1%7D",
        ));
        assert_eq!(
            p,
            json!({"id":0,"on":true,"name":"x","mode":"eco","cfg":{"a":1}})
        );
        assert_eq!(query_params(None), json!({}));
    }

    #[test]
    fn faults_garble_answers() {
        let mut v = json!({"apower": 2300.0, "output": true, "aenergy": {"by_minute": [1.5]}, "source": "init"});
        stringify_scalars(&mut v);
        assert_eq!(
            v,
            json!({"apower":"2300.0","output":"on","aenergy":{"by_minute":["1.5"]},"source":"init"})
        );
        let text = json!({"id":1,"result":{"was_on":true}}).to_string();
        assert!(serde_json::from_str::<Value>(&truncate_half(&text)).is_err());
    }
}
