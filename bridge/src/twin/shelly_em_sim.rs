//! A simulated Shelly Pro 3EM (model `SPEM-003CEBEU`, triphase profile) or
//! Pro EM (`SPEM-002CEBEU50`, two clamps), Gen2 API over HTTP on
//! 127.0.0.1, as the `shelly_em` driver reads it (Shelly "RPC Channels":
//! HTTP): `POST /rpc` with a whole frame → the response frame;
//! `GET /rpc/<Method>?id=0` → the bare result or error.
//!
//! Methods: `Shelly.GetDeviceInfo`, `Shelly.GetStatus`, and per model
//! `EM.GetStatus` / `EMData.GetStatus` / `EMData.ResetCounters` (Pro 3EM:
//! `em:0`, `emdata:0`) or `EM1.GetStatus` / `EM1Data.GetStatus` /
//! `EM1Data.ResetCounters` (Pro EM: `em1:0`, `em1:1`); errors with Shelly's
//! codes (−103 invalid argument, −105 `Bad id=<n>`, 404 no handler).
//! Field names in [`crate::drivers::shelly_em::rpc`].
//!
//! Each channel's active power is set from outside
//! ([`EmSim::set_power`]: W, positive = drawn through the clamp, negative
//! = returned); the counters integrate it in the clock's time, positive
//! power into the import counter (`total_act`, `total_act_energy`),
//! negative into the return counter (`_ret`). On the Pro 3EM each phase
//! counts on its own and the totals are the sums of the phase counters,
//! as the firmware's EMData does (not net metering across phases). With a
//! [`Clock::manual`] clock, energy is exact: 10 kW for one hour of the
//! hand is 10 000 Wh.
//!
//! Powering the device off is stopping it (its `shutdown`): HTTP refuses
//! connections. Simplifications: constant voltage, power factor 1
//! (apparent = |active|), 50 Hz.

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
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use super::shelly_sim::{RpcError, code, query_params};
use crate::clock::Clock;
use crate::drivers::shelly_em::Model;
use crate::shutdown::Shutdown;

const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct EmSimConfig {
    /// 12 hex digits; the device id is `shellypro3em-<mac>` or
    /// `shellyproem50-<mac>`.
    pub mac: String,
    pub model: Model,
    /// V, constant.
    pub voltage_v: f64,
}

/// One phase's meter.
#[derive(Debug, Clone, Copy, Default)]
struct PhaseMeter {
    power_w: f64,
    import_wh: f64,
    export_wh: f64,
}

#[derive(Debug)]
struct State {
    /// Channel → phases (3 for the Pro 3EM's `em:0`, 1 per EM1 channel).
    channels: Vec<Vec<PhaseMeter>>,
    last_ms: i64,
}

impl State {
    fn integrate(&mut self, now: i64) {
        let h = (now - self.last_ms).max(0) as f64 / 3_600_000.0;
        self.last_ms = self.last_ms.max(now);
        for ph in self.channels.iter_mut().flatten() {
            if ph.power_w >= 0.0 {
                ph.import_wh += ph.power_w * h;
            } else {
                ph.export_wh -= ph.power_w * h;
            }
        }
    }
}

/// A handle on the running device, for tests and demos. Cheap to clone.
#[derive(Clone)]
pub struct EmSim {
    state: Arc<Mutex<State>>,
    clock: Clock,
    cfg: EmSimConfig,
}

fn round(v: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (v * k).round() / k
}

impl EmSim {
    pub fn new(clock: Clock, cfg: EmSimConfig) -> Self {
        let channels = match cfg.model {
            Model::Pro3em => vec![vec![PhaseMeter::default(); 3]],
            Model::Proem => vec![vec![PhaseMeter::default(); 1]; 2],
        };
        EmSim {
            state: Arc::new(Mutex::new(State {
                channels,
                last_ms: clock.now_ms(),
            })),
            clock,
            cfg,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Energy counted so far, then `f` on the state.
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let now = self.clock.now_ms();
        let mut s = self.lock();
        s.integrate(now);
        f(&mut s)
    }

    /// `shellypro3em-<mac>` / `shellyproem50-<mac>`.
    pub fn device_id(&self) -> String {
        let kind = match self.cfg.model {
            Model::Pro3em => "shellypro3em",
            Model::Proem => "shellyproem50",
        };
        format!("{kind}-{}", self.cfg.mac.to_ascii_lowercase())
    }

    /// Sets channel `ch`'s active power (W, + drawn / − returned), split
    /// evenly over the phases of a triphase channel.
    pub fn set_power(&self, ch: usize, watts: f64) {
        self.with(|s| {
            if let Some(phases) = s.channels.get_mut(ch) {
                let n = phases.len() as f64;
                phases.iter_mut().for_each(|p| p.power_w = watts / n);
            }
        });
    }

    /// Sets each phase of a triphase channel (W).
    pub fn set_phase_powers(&self, ch: usize, watts: [f64; 3]) {
        self.with(|s| {
            if let Some(phases) = s.channels.get_mut(ch) {
                for (p, w) in phases.iter_mut().zip(watts) {
                    p.power_w = w;
                }
            }
        });
    }

    /// W of channel `ch` now.
    pub fn power_w(&self, ch: usize) -> f64 {
        self.with(|s| {
            s.channels
                .get(ch)
                .map_or(0.0, |p| p.iter().map(|p| p.power_w).sum())
        })
    }

    /// (import Wh, export Wh) of channel `ch`.
    pub fn counters_wh(&self, ch: usize) -> (f64, f64) {
        self.with(|s| {
            s.channels.get(ch).map_or((0.0, 0.0), |p| {
                (
                    p.iter().map(|p| p.import_wh).sum(),
                    p.iter().map(|p| p.export_wh).sum(),
                )
            })
        })
    }

    /// Zeroes channel `ch`'s counters (`EMData.ResetCounters`).
    pub fn reset_counters(&self, ch: usize) {
        self.with(|s| {
            if let Some(phases) = s.channels.get_mut(ch) {
                for p in phases {
                    p.import_wh = 0.0;
                    p.export_wh = 0.0;
                }
            }
        });
    }

    /// Sets channel `ch`'s counters (Wh, spread evenly over its phases):
    /// a replaced meter, or a reset followed by energy counted before
    /// anyone read the zero.
    pub fn set_counters(&self, ch: usize, import_wh: f64, export_wh: f64) {
        self.with(|s| {
            if let Some(phases) = s.channels.get_mut(ch) {
                let n = phases.len() as f64;
                for p in phases {
                    p.import_wh = import_wh / n;
                    p.export_wh = export_wh / n;
                }
            }
        });
    }

    fn em_status(&self, id: usize) -> Value {
        let v = self.cfg.voltage_v;
        self.with(|s| {
            let ph = &s.channels[id];
            let mut m = Map::new();
            m.insert("id".into(), json!(id));
            let mut total_a = 0.0;
            for (name, p) in ["a", "b", "c"].iter().zip(ph) {
                let a = p.power_w.abs() / v;
                total_a += a;
                m.insert(format!("{name}_current"), json!(round(a, 3)));
                m.insert(format!("{name}_voltage"), json!(round(v, 1)));
                m.insert(format!("{name}_act_power"), json!(round(p.power_w, 1)));
                m.insert(
                    format!("{name}_aprt_power"),
                    json!(round(p.power_w.abs(), 1)),
                );
                m.insert(format!("{name}_pf"), json!(1.0));
                m.insert(format!("{name}_freq"), json!(50.0));
            }
            let total: f64 = ph.iter().map(|p| p.power_w).sum();
            m.insert("n_current".into(), Value::Null);
            m.insert("total_current".into(), json!(round(total_a, 3)));
            m.insert("total_act_power".into(), json!(round(total, 1)));
            m.insert(
                "total_aprt_power".into(),
                json!(round(ph.iter().map(|p| p.power_w.abs()).sum::<f64>(), 1)),
            );
            m.insert("user_calibrated_phase".into(), json!([]));
            Value::Object(m)
        })
    }

    fn emdata_status(&self, id: usize) -> Value {
        self.with(|s| {
            let ph = &s.channels[id];
            let mut m = Map::new();
            m.insert("id".into(), json!(id));
            for (name, p) in ["a", "b", "c"].iter().zip(ph) {
                m.insert(
                    format!("{name}_total_act_energy"),
                    json!(round(p.import_wh, 2)),
                );
                m.insert(
                    format!("{name}_total_act_ret_energy"),
                    json!(round(p.export_wh, 2)),
                );
            }
            m.insert(
                "total_act".into(),
                json!(round(ph.iter().map(|p| p.import_wh).sum(), 2)),
            );
            m.insert(
                "total_act_ret".into(),
                json!(round(ph.iter().map(|p| p.export_wh).sum(), 2)),
            );
            Value::Object(m)
        })
    }

    fn em1_status(&self, id: usize) -> Value {
        let v = self.cfg.voltage_v;
        self.with(|s| {
            let p = s.channels[id][0].power_w;
            json!({"id": id, "current": round(p.abs() / v, 3), "voltage": round(v, 1),
                "act_power": round(p, 1), "aprt_power": round(p.abs(), 1),
                "pf": 1.0, "freq": 50.0, "calibration": "factory"})
        })
    }

    fn em1data_status(&self, id: usize) -> Value {
        self.with(|s| {
            let p = s.channels[id][0];
            json!({"id": id, "total_act_energy": round(p.import_wh, 2),
                "total_act_ret_energy": round(p.export_wh, 2)})
        })
    }

    fn device_info(&self) -> Value {
        let (model, app) = match self.cfg.model {
            Model::Pro3em => ("SPEM-003CEBEU", "Pro3EM"),
            Model::Proem => ("SPEM-002CEBEU50", "ProEM"),
        };
        json!({
            "name": null, "id": self.device_id(), "mac": self.cfg.mac.to_ascii_uppercase(),
            "slot": 0, "model": model, "gen": 2, "fw_id": "20241011-114455/1.4.4-g6d2a586",
            "ver": "1.4.4", "app": app, "profile": "triphase", "auth_en": false, "auth_domain": null,
        })
    }

    /// One call.
    pub fn call(&self, method: &str, params: &Value) -> Result<Value, RpcError> {
        let err = |code, message: String| RpcError { code, message };
        let n = self.lock().channels.len();
        let id = || -> Result<usize, RpcError> {
            match params.get("id") {
                None | Some(Value::Null) => {
                    Err(err(code::INVALID_ARGUMENT, "Missing required 'id'".into()))
                }
                Some(v) => match v.as_u64() {
                    Some(i) if (i as usize) < n => Ok(i as usize),
                    Some(i) => Err(err(code::NOT_FOUND, format!("Bad id={i}"))),
                    None => Err(err(code::INVALID_ARGUMENT, format!("Invalid 'id': {v}"))),
                },
            }
        };
        let triphase = self.cfg.model == Model::Pro3em;
        match (method.to_ascii_lowercase().as_str(), triphase) {
            ("shelly.getdeviceinfo", _) => Ok(self.device_info()),
            ("shelly.getstatus", _) => {
                let mut m = Map::new();
                for i in 0..n {
                    if triphase {
                        m.insert(format!("em:{i}"), self.em_status(i));
                        m.insert(format!("emdata:{i}"), self.emdata_status(i));
                    } else {
                        m.insert(format!("em1:{i}"), self.em1_status(i));
                        m.insert(format!("em1data:{i}"), self.em1data_status(i));
                    }
                }
                Ok(Value::Object(m))
            }
            ("em.getstatus", true) => Ok(self.em_status(id()?)),
            ("emdata.getstatus", true) => Ok(self.emdata_status(id()?)),
            ("em1.getstatus", false) => Ok(self.em1_status(id()?)),
            ("em1data.getstatus", false) => Ok(self.em1data_status(id()?)),
            ("emdata.resetcounters", true) | ("em1data.resetcounters", false) => {
                self.reset_counters(id()?);
                Ok(Value::Null)
            }
            _ => Err(err(code::NO_HANDLER, format!("No handler for {method}"))),
        }
    }

    /// A whole request frame → (HTTP status, response frame).
    pub fn handle_frame(&self, body: &[u8]) -> (u16, Value) {
        let me = self.device_id();
        let frame = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            _ => {
                let e = RpcError {
                    code: code::PARSE_ERROR,
                    message: "Parse error".into(),
                };
                return (400, json!({"id": null, "src": me, "error": e}));
            }
        };
        let mut out = Map::new();
        out.insert("id".into(), frame.get("id").cloned().unwrap_or(Value::Null));
        out.insert("src".into(), Value::String(me));
        if let Some(d) = frame.get("src").and_then(Value::as_str) {
            out.insert("dst".into(), Value::String(d.into()));
        }
        let Some(method) = frame.get("method").and_then(Value::as_str) else {
            let e = RpcError {
                code: code::INVALID_REQUEST,
                message: "Invalid request: missing 'method'".into(),
            };
            out.insert("error".into(), json!(e));
            return (400, Value::Object(out));
        };
        let params = frame.get("params").cloned().unwrap_or(Value::Null);
        match self.call(method, &params) {
            Ok(r) => out.insert("result".into(), r),
            Err(e) => out.insert("error".into(), json!(e)),
        };
        (200, Value::Object(out))
    }
}

/// Starts the device's HTTP server on 127.0.0.1 (address returned); runs
/// until `shutdown`.
pub fn spawn(
    clock: Clock,
    cfg: EmSimConfig,
    shutdown: Shutdown,
) -> anyhow::Result<(EmSim, SocketAddr, JoinHandle<()>)> {
    let sim = EmSim::new(clock, cfg);
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    std_listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(serve(listener, sim.clone(), shutdown));
    Ok((sim, addr, task))
}

type Resp = Response<Full<Bytes>>;

fn respond(status: u16, body: String) -> Resp {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn handle(sim: EmSim, req: Request<Incoming>) -> Resp {
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
        let (status, v) = sim.handle_frame(&body);
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
    match sim.call(name, &params) {
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

async fn serve(listener: tokio::net::TcpListener, sim: EmSim, mut shutdown: Shutdown) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.wait() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("twin shelly em: accept failed: {e}");
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
    use crate::drivers::shelly_em::rpc;

    #[test]
    fn counters_integrate_power_in_the_clocks_time_and_parse_as_the_driver_reads_them() {
        let (clock, hand) = Clock::manual(1_765_000_000_000);
        let sim = EmSim::new(
            clock,
            EmSimConfig {
                mac: "a0b1c2d3e4f5".into(),
                model: Model::Pro3em,
                voltage_v: 230.0,
            },
        );
        sim.set_power(0, 3000.0);
        hand.set(hand.get() + 3_600_000);
        sim.set_power(0, -1500.0);
        hand.set(hand.get() + 1_800_000);
        assert_eq!(sim.counters_wh(0), (3000.0, 750.0));
        let em = rpc::parse_em(0, &sim.call("EM.GetStatus", &json!({"id": 0})).unwrap()).unwrap();
        assert_eq!(em.power_w, -1500.0);
        assert_eq!(em.phases[0].power_w, -500.0);
        let d = rpc::parse_emdata(0, &sim.call("EMData.GetStatus", &json!({"id": 0})).unwrap())
            .unwrap();
        assert_eq!((d.import_wh, d.export_wh), (3000.0, 750.0));
        sim.call("EMData.ResetCounters", &json!({"id": 0})).unwrap();
        assert_eq!(sim.counters_wh(0), (0.0, 0.0));
        let e = sim.call("EM1.GetStatus", &json!({"id": 0})).unwrap_err();
        assert_eq!(e.code, code::NO_HANDLER);
        let e = sim.call("EM.GetStatus", &json!({"id": 1})).unwrap_err();
        assert_eq!(e.message, "Bad id=1");
    }

    #[test]
    fn the_pro_em_has_two_em1_channels() {
        let (clock, hand) = Clock::manual(0);
        let sim = EmSim::new(
            clock,
            EmSimConfig {
                mac: "a0b1c2d3e4f5".into(),
                model: Model::Proem,
                voltage_v: 230.0,
            },
        );
        sim.set_power(1, 2300.0);
        hand.set(7_200_000);
        let s = rpc::parse_em1(1, &sim.call("EM1.GetStatus", &json!({"id": 1})).unwrap()).unwrap();
        assert_eq!((s.power_w, s.current_a), (2300.0, Some(10.0)));
        let d = rpc::parse_em1data(
            1,
            &sim.call("EM1Data.GetStatus", &json!({"id": 1})).unwrap(),
        )
        .unwrap();
        assert_eq!(d.import_wh, 4600.0);
        let (status, frame) = sim
            .handle_frame(br#"{"id":7,"src":"t","method":"EM1Data.GetStatus","params":{"id":0}}"#);
        assert_eq!(status, 200);
        assert_eq!(frame["result"]["total_act_energy"], json!(0.0));
        assert_eq!(frame["id"], json!(7));
    }
}
