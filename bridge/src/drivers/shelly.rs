//! Shelly Gen2+ plugs (Plus Plug S and kin) over HTTP JSON-RPC
//! (Shelly "Gen2+ Device API": `POST /rpc` with `{"id", "method", "params"}`;
//! components `Shelly` and `Switch`).
//!
//! - `Shelly.GetDeviceInfo` names the device (model, firmware).
//! - `Switch.GetStatus` is polled every `poll_interval_s`: `output` (relay),
//!   and, on metering models, `apower` W, `voltage` V, `current` A,
//!   `aenergy.total` Wh. Unmetered models omit those fields; their sensors are
//!   then never created.
//! - `switch.turn_on`/`turn_off`/`toggle` → `Switch.Set` / `Switch.Toggle`.
//!
//! A failed or malformed answer is logged with the method and the reason;
//! the last good state is kept; after 3 failures in a row the device goes
//! unavailable until it answers again.

use super::DriverContext;
use crate::entity::{
    Component, Device, DriverCommand, EntitySpec, SafetyEnvelope, ServiceError, format_number,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const OWNER: &str = "shelly";
const FAILURES_BEFORE_UNAVAILABLE: u32 = 3;
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// `[[shelly]]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShellyConfig {
    pub id: String,
    pub name: String,
    /// `http://<address>` of the plug.
    pub url: String,
    /// s between `Switch.GetStatus` polls.
    #[serde(default = "default_poll")]
    pub poll_interval_s: f64,
    /// Switch component id (0 on single-relay plugs).
    #[serde(default)]
    pub switch_id: u32,
    /// s the relay must stay off before it may switch on again (safety
    /// envelope; set it when the plug feeds a compressor).
    #[serde(default)]
    pub min_off_s: Option<f64>,
}

fn default_poll() -> f64 {
    5.0
}

/// What went wrong talking to a plug.
#[derive(Debug, thiserror::Error)]
pub enum ShellyError {
    #[error("{url} {method}: HTTP request failed: {reason}")]
    Http {
        url: String,
        method: String,
        reason: String,
    },
    #[error("{url} {method}: HTTP status {status}")]
    Status {
        url: String,
        method: String,
        status: u16,
    },
    #[error("{url} {method}: answer is not valid JSON-RPC: {reason} (body `{body}`)")]
    Malformed {
        url: String,
        method: String,
        reason: String,
        body: String,
    },
    #[error("{url} {method}: device error {code}: {message}")]
    Rpc {
        url: String,
        method: String,
        code: i64,
        message: String,
    },
}

/// `Switch.GetStatus` result fields Hearth uses.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct SwitchStatus {
    pub output: bool,
    /// W
    pub apower: Option<f64>,
    /// V
    pub voltage: Option<f64>,
    /// A
    pub current: Option<f64>,
    pub aenergy: Option<EnergyCounter>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct EnergyCounter {
    /// Wh since the device was made.
    pub total: f64,
}

#[derive(Debug, Deserialize)]
struct DeviceInfo {
    model: Option<String>,
    ver: Option<String>,
    app: Option<String>,
}

#[derive(Deserialize)]
struct RpcFrame {
    id: Option<u64>,
    result: Option<Value>,
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct RpcError {
    code: i64,
    message: String,
}

/// A JSON-RPC client for one plug.
pub struct ShellyClient {
    url: String,
    http: Client<HttpConnector, Full<Bytes>>,
    next_id: u64,
}

impl ShellyClient {
    pub fn new(url: &str) -> Self {
        ShellyClient {
            url: url.trim_end_matches('/').to_string(),
            http: Client::builder(TokioExecutor::new()).build_http(),
            next_id: 1,
        }
    }

    /// One RPC call; returns `result` or the device's error.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, ShellyError> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({"id": id, "method": method, "params": params}).to_string();
        let http_err = |reason: String| ShellyError::Http {
            url: self.url.clone(),
            method: method.into(),
            reason,
        };
        let req = hyper::Request::post(format!("{}/rpc", self.url))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| http_err(e.to_string()))?;
        let resp = tokio::time::timeout(HTTP_TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| http_err("no answer within 5 s".into()))?
            .map_err(|e| http_err(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = tokio::time::timeout(HTTP_TIMEOUT, resp.into_body().collect())
            .await
            .map_err(|_| http_err("body not received within 5 s".into()))?
            .map_err(|e| http_err(e.to_string()))?
            .to_bytes();
        let malformed = |reason: String| ShellyError::Malformed {
            url: self.url.clone(),
            method: method.into(),
            reason,
            body: super::excerpt(&bytes),
        };
        let frame: RpcFrame = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(_) if status != 200 => {
                return Err(ShellyError::Status {
                    url: self.url.clone(),
                    method: method.into(),
                    status,
                });
            }
            Err(e) => return Err(malformed(e.to_string())),
        };
        if frame.id.is_some_and(|got| got != id) {
            return Err(malformed(format!(
                "answer id {:?} does not match request id {id}",
                frame.id
            )));
        }
        match (frame.result, frame.error) {
            (_, Some(e)) => Err(ShellyError::Rpc {
                url: self.url.clone(),
                method: method.into(),
                code: e.code,
                message: e.message,
            }),
            (Some(r), None) => Ok(r),
            (None, None) => Err(malformed("neither result nor error".into())),
        }
    }

    /// `Switch.GetStatus`, typed.
    pub async fn switch_status(&mut self, switch_id: u32) -> Result<SwitchStatus, ShellyError> {
        let v = self
            .call("Switch.GetStatus", json!({"id": switch_id}))
            .await?;
        serde_json::from_value(v.clone()).map_err(|e| ShellyError::Malformed {
            url: self.url.clone(),
            method: "Switch.GetStatus".into(),
            reason: e.to_string(),
            body: super::excerpt(v.to_string().as_bytes()),
        })
    }
}

struct Plug {
    cfg: ShellyConfig,
    ctx: DriverContext,
    client: ShellyClient,
    switch_entity: String,
    failures: u32,
    named: bool,
}

/// (key, name, device class, unit, state class) of each metering field.
const METERS: [(&str, &str, &str, &str, &str); 4] = [
    ("power", "Power", "power", "W", "measurement"),
    ("voltage", "Voltage", "voltage", "V", "measurement"),
    ("current", "Current", "current", "A", "measurement"),
    ("energy", "Energy", "energy", "Wh", "total_increasing"),
];

pub fn spawn(cfg: ShellyConfig, ctx: &DriverContext) -> anyhow::Result<JoinHandle<()>> {
    ctx.store.upsert_device(OWNER, device(&cfg, None))?;
    let mut switch = EntitySpec::new(&cfg.id, "switch", Component::Switch).class("outlet");
    switch.entity_id = format!("switch.{}", cfg.id.replace('-', "_"));
    let switch_entity = switch.entity_id.clone();
    ctx.store.upsert_entity(switch)?;
    let (tx, mut commands) = mpsc::channel::<DriverCommand>(16);
    ctx.router
        .register(&switch_entity, tx, SafetyEnvelope::default());

    let mut plug = Plug {
        client: ShellyClient::new(&cfg.url),
        cfg,
        ctx: ctx.clone(),
        switch_entity,
        failures: 0,
        named: false,
    };
    let mut shutdown = ctx.shutdown.clone();
    Ok(tokio::spawn(async move {
        loop {
            plug.poll().await;
            let wait = plug.ctx.clock.sleep_ms(plug.cfg.poll_interval_s * 1000.0);
            tokio::select! {
                _ = wait => {}
                Some(cmd) = commands.recv() => {
                    if cmd.reply.is_closed() {
                        continue; // the caller gave up (timed out): do not act late
                    }
                    let result = plug.execute(&cmd.service).await;
                    let _ = cmd.reply.send(result);
                }
                _ = shutdown.wait() => break,
            }
        }
    }))
}

fn device(cfg: &ShellyConfig, info: Option<&DeviceInfo>) -> Device {
    Device {
        id: cfg.id.clone(),
        name: cfg.name.clone(),
        manufacturer: "Shelly".into(),
        model: info
            .and_then(|i| i.model.clone().or(i.app.clone()))
            .unwrap_or_else(|| "Gen2 plug".into()),
        sw_version: info.and_then(|i| i.ver.clone()),
        via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
    }
}

impl Plug {
    async fn poll(&mut self) {
        if !self.named {
            match self.client.call("Shelly.GetDeviceInfo", json!({})).await {
                Ok(v) => match serde_json::from_value::<DeviceInfo>(v) {
                    Ok(info) => {
                        self.named = true;
                        let d = device(&self.cfg, Some(&info));
                        tracing::info!(
                            "Shelly `{}` is a {} (firmware {})",
                            self.cfg.name,
                            d.model,
                            d.sw_version.as_deref().unwrap_or("?")
                        );
                        let _ = self.ctx.store.upsert_device(OWNER, d);
                    }
                    Err(e) => tracing::warn!(
                        "{} Shelly.GetDeviceInfo: unexpected shape: {e}",
                        self.cfg.url
                    ),
                },
                Err(e) => return self.failed(e),
            }
        }
        match self.client.switch_status(self.cfg.switch_id).await {
            Ok(status) => {
                if self.failures >= FAILURES_BEFORE_UNAVAILABLE {
                    tracing::info!("Shelly `{}` answers again", self.cfg.name);
                }
                self.failures = 0;
                self.ctx.store.set_availability(&self.cfg.id, true);
                self.apply(&status);
            }
            Err(e) => self.failed(e),
        }
    }

    fn failed(&mut self, e: ShellyError) {
        self.failures += 1;
        tracing::warn!("Shelly `{}`: {e}", self.cfg.name);
        if self.failures == FAILURES_BEFORE_UNAVAILABLE {
            tracing::warn!(
                "Shelly `{}` failed {} polls in a row: marking it unavailable",
                self.cfg.name,
                self.failures
            );
            self.ctx.store.set_availability(&self.cfg.id, false);
        }
    }

    fn apply(&self, s: &SwitchStatus) {
        let store = &self.ctx.store;
        let _ = store.set_state(
            &self.switch_entity,
            if s.output { "on" } else { "off" },
            Map::new(),
        );
        let values = [
            s.apower,
            s.voltage,
            s.current,
            s.aenergy.as_ref().map(|e| e.total),
        ];
        for ((key, name, class, unit, state_class), value) in METERS.into_iter().zip(values) {
            let Some(v) = value.filter(|v| v.is_finite()) else {
                continue;
            };
            let spec = EntitySpec::new(&self.cfg.id, key, Component::Sensor)
                .named(name)
                .class(class)
                .measured(unit, state_class);
            let id = spec.entity_id.clone();
            if store.spec(&id).is_none() {
                let _ = store.upsert_entity(spec);
            }
            let decimals = if key == "current" { 3 } else { 1 };
            let _ = store.set_state(&id, format_number(v, decimals), Map::new());
        }
    }

    async fn execute(&mut self, service: &str) -> Result<(), ServiceError> {
        let id = self.cfg.switch_id;
        let (method, params) = match service {
            "turn_on" => ("Switch.Set", json!({"id": id, "on": true})),
            "turn_off" => ("Switch.Set", json!({"id": id, "on": false})),
            "toggle" => ("Switch.Toggle", json!({"id": id})),
            _ => {
                return Err(ServiceError::UnknownService(
                    "switch".into(),
                    service.into(),
                ));
            }
        };
        tracing::info!("Shelly `{}`: {method} {params}", self.cfg.name);
        self.client
            .call(method, params)
            .await
            .map_err(|e| ServiceError::Driver {
                entity: self.switch_entity.clone(),
                reason: e.to_string(),
            })?;
        // Read back rather than assume.
        self.poll().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmetered_status_parses_and_wrong_types_are_named() {
        let s: SwitchStatus =
            serde_json::from_value(json!({"id":0,"source":"init","output":true})).unwrap();
        assert_eq!(s.apower, None);
        let e = serde_json::from_value::<SwitchStatus>(json!({"id":0,"output":true,"apower":"12"}))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("invalid type: string \"12\", expected f64"),
            "{e}"
        );
    }
}
