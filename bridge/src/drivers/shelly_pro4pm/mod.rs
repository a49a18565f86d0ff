//! Shelly Pro 4PM, four metered relays, over Gen2 RPC (`[[shelly_pro4pm]]`).
//!
//! One device per 4PM and, per outlet (`switch:0` … `switch:3`), a
//! `switch` and power/current/voltage/energy sensors ([`outlets`]). The
//! driver is the only writer of those entities; commands reach it from
//! the service router only. Two transports, one per config:
//!
//! | transport | reads | writes | offline when |
//! |---|---|---|---|
//! | HTTP ([`http`], `host`) | `Switch.GetStatus {id}` × 4 every `poll_interval_s` | `Switch.Set {id, on}`, `Switch.Toggle {id}`, then a read-back | 3 polls in a row fail |
//! | MQTT ([`mqtt`], `mqtt_prefix`) | `NotifyStatus` on `<prefix>/events/rpc` (partial: merged over the known status); `Switch.GetStatus` × 4 at start and when the device comes online | requests on `<prefix>/rpc`, answers on `hearth-<id>/rpc` | `<prefix>/online` = `false` |
//!
//! Offline: every entity of the device `unavailable`, commands refused
//! with an error naming the device and why. A malformed frame is logged
//! through the throttled bad-input warnings (topic or URL, what was
//! expected, an excerpt) and ignored: the last good states stay.
//! Frame shapes and their sources are in [`rpc`].

pub mod config;
pub mod http;
pub mod mqtt;
pub mod outlets;
pub mod rpc;

pub use config::{OUTLETS, ShellyPro4pmConfig, Transport};

use super::DriverContext;
use crate::entity::{Device, DriverCommand, SafetyEnvelope, ServiceError, format_number};
use crate::logging::Throttle;
use rpc::OutletStatus;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const OWNER: &str = "shelly_pro4pm";

/// What the driver knows of one device, shared by both transports.
pub(crate) struct Strip {
    cfg: ShellyPro4pmConfig,
    ctx: DriverContext,
    /// Switch entity id → switch id (0-based).
    switches: HashMap<String, usize>,
    status: [OutletStatus; OUTLETS],
    /// Why the device is offline, if it is.
    offline: Option<String>,
    bad_input: Arc<Throttle>,
}

/// A switch command, translated.
pub(crate) struct Order {
    pub entity_id: String,
    pub method: &'static str,
    pub params: Value,
}

pub fn spawn(cfg: ShellyPro4pmConfig, ctx: &DriverContext) -> anyhow::Result<JoinHandle<()>> {
    ctx.store.upsert_device(
        OWNER,
        Device {
            id: cfg.id.clone(),
            name: cfg.name.clone(),
            manufacturer: "Shelly".into(),
            model: "Pro 4PM".into(),
            sw_version: None,
            via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
        },
    )?;
    let (tx, commands) = mpsc::channel::<DriverCommand>(64);
    let mut switches = HashMap::new();
    for id in 0..OUTLETS {
        for spec in outlets::outlet_entities(&cfg, id) {
            if spec.component == crate::entity::Component::Switch {
                ctx.router
                    .register(&spec.entity_id, tx.clone(), SafetyEnvelope::default());
                switches.insert(spec.entity_id.clone(), id);
            }
            ctx.store.upsert_entity(spec)?;
        }
    }
    let transport = cfg.transport();
    let strip = Strip {
        cfg,
        ctx: ctx.clone(),
        switches,
        status: Default::default(),
        offline: None,
        bad_input: Throttle::new("bad input"),
    };
    match transport {
        Transport::Http(url) => Ok(tokio::spawn(http::run(strip, url, commands))),
        Transport::Mqtt(prefix) => {
            let subs = mqtt::Subscriptions::new(&ctx.link, &prefix, &strip.cfg.id)?;
            Ok(tokio::spawn(mqtt::run(strip, prefix, subs, commands)))
        }
    }
}

impl Strip {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    /// A malformed frame from `source` (a topic or URL + method), throttled.
    fn warn(&self, source: &str, e: &dyn std::fmt::Display, payload: &[u8]) {
        if self.bad_input.admit(source) {
            tracing::warn!(
                "shelly_pro4pm `{}` {source}: {e} (payload `{}`); ignored",
                self.cfg.id,
                super::excerpt(payload)
            );
        }
    }

    /// Overlays a (partial) status on switch `id` and writes what it knows.
    fn apply(&mut self, id: usize, patch: &OutletStatus) {
        self.status[id].merge(patch);
        let s = &self.status[id];
        let store = &self.ctx.store;
        if let Some(on) = s.output {
            let _ = store.set_state(
                &outlets::switch_entity(&self.cfg.id, id),
                if on { "on" } else { "off" },
                Map::new(),
            );
        }
        for ((key, .., decimals), value) in outlets::SENSORS.iter().zip(outlets::sensor_values(s)) {
            let Some(v) = value else { continue };
            let _ = store.set_state(
                &outlets::sensor_entity(&self.cfg.id, id, key),
                format_number(v, *decimals),
                Map::new(),
            );
        }
    }

    /// Online: entities available again. Offline (`why` says how we know):
    /// every entity `unavailable`, commands refused.
    fn set_offline(&mut self, why: Option<String>) {
        match (&self.offline, &why) {
            (Some(_), None) => tracing::info!("Shelly Pro 4PM `{}` is online again", self.name()),
            (None, Some(w)) => tracing::warn!(
                "Shelly Pro 4PM `{}` is offline ({w}): its outlets are unavailable",
                self.name()
            ),
            _ => {}
        }
        self.ctx.store.set_availability(&self.cfg.id, why.is_none());
        self.offline = why;
    }

    /// The RPC a switch service call becomes, or why it is refused.
    fn order(&self, entity_id: &str, service: &str) -> Result<Order, ServiceError> {
        let Some(&id) = self.switches.get(entity_id) else {
            return Err(ServiceError::Driver {
                entity: entity_id.into(),
                reason: format!("not an outlet of Shelly Pro 4PM `{}`", self.cfg.id),
            });
        };
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
        if let Some(why) = &self.offline {
            return Err(ServiceError::Driver {
                entity: entity_id.into(),
                reason: format!(
                    "Shelly Pro 4PM `{}` is offline ({why}): {method} {params} not sent",
                    self.cfg.name
                ),
            });
        }
        Ok(Order {
            entity_id: entity_id.into(),
            method,
            params,
        })
    }
}
