//! Hearth ESP32 sensor nodes over MQTT. A node announces itself (retained
//! `hearth-node/<id>/announce`), so its device and entities are created
//! without configuration; telemetry updates the entities; the status topic
//! (the node's last will) sets the device's availability. An empty retained
//! announce removes the node. Payload formats: `firmware/node-core`.

use super::{DriverContext, excerpt};
use crate::entity::{Device, EntitySpec};
use hearth_node_core::{self as node, SensorKind, Telemetry, TopicKind};
use serde_json::Map;
use std::collections::HashMap;
use tokio::task::JoinHandle;

const OWNER: &str = "esp32";

/// A node message that could not be used; names the topic and the reason.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{topic}: invalid {what}: {reason} (payload `{payload}`)")]
    Payload {
        topic: String,
        what: &'static str,
        reason: String,
        payload: String,
    },
    #[error("{topic}: announce is for node `{inner}`, topic says `{outer}`")]
    IdMismatch {
        topic: String,
        inner: String,
        outer: String,
    },
    #[error("{topic}: telemetry from node `{node}` that has not announced itself")]
    Unannounced { topic: String, node: String },
    #[error("{topic}: implausible {field} reading {value}; ignored")]
    Implausible {
        topic: String,
        field: &'static str,
        value: f64,
    },
}

pub fn spawn(ctx: &DriverContext) -> anyhow::Result<JoinHandle<()>> {
    let mut rx = ctx.link.subscribe(&format!("{}/+/+", node::TOPIC_ROOT))?;
    let ctx = ctx.clone();
    Ok(tokio::spawn(async move {
        let mut nodes: HashMap<String, Vec<SensorKind>> = HashMap::new();
        let mut shutdown = ctx.shutdown.clone();
        loop {
            let msg = tokio::select! {
                m = rx.recv() => match m { Some(m) => m, None => break },
                _ = shutdown.wait() => break,
            };
            if let Err(e) = handle(&ctx, &mut nodes, &msg.topic, &msg.payload) {
                tracing::warn!("{e}");
            }
        }
    }))
}

fn handle(
    ctx: &DriverContext,
    nodes: &mut HashMap<String, Vec<SensorKind>>,
    topic: &str,
    payload: &[u8],
) -> Result<(), NodeError> {
    let Some((id, kind)) = node::parse_topic(topic) else {
        return Ok(());
    };
    match kind {
        TopicKind::Announce if payload.is_empty() => {
            if nodes.remove(id).is_some() {
                tracing::info!("sensor node `{id}` withdrew its announcement: removing it");
                ctx.store.remove_device(id);
            }
        }
        TopicKind::Announce => {
            let a: node::Announce<'_> =
                serde_json::from_slice(payload).map_err(|e| bad(topic, "announce", e, payload))?;
            if a.id != id {
                return Err(NodeError::IdMismatch {
                    topic: topic.into(),
                    inner: a.id.into(),
                    outer: id.into(),
                });
            }
            let device = Device {
                id: id.into(),
                name: a.name.into(),
                manufacturer: "Hearth".into(),
                model: a.model.into(),
                sw_version: Some(a.sw_version.into()),
                via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
            };
            if let Err(e) = ctx.store.upsert_device(OWNER, device) {
                tracing::error!("{topic}: {e}");
                return Ok(());
            }
            for kind in &a.sensors {
                let shape = kind.shape();
                let mut spec = EntitySpec::new(id, shape.key, crate::entity::Component::Sensor)
                    .named(shape.name)
                    .class(shape.device_class)
                    .measured(shape.unit, shape.state_class);
                spec.entity_category = shape.entity_category.map(str::to_string);
                if let Err(e) = ctx.store.upsert_entity(spec) {
                    tracing::error!("{topic}: {e}");
                }
            }
            if !nodes.contains_key(id) {
                tracing::info!(
                    "sensor node `{id}` ({}) announced {} sensors",
                    a.name,
                    a.sensors.len()
                );
            }
            nodes.insert(id.into(), a.sensors.to_vec());
        }
        TopicKind::Status => {
            let available = match payload {
                b"online" => true,
                b"offline" => false,
                _ => {
                    return Err(NodeError::Payload {
                        topic: topic.into(),
                        what: "status",
                        reason: "expected online or offline".into(),
                        payload: excerpt(payload),
                    });
                }
            };
            if nodes.contains_key(id) {
                if !available {
                    tracing::warn!("sensor node `{id}` went offline");
                }
                ctx.store.set_availability(id, available);
            }
        }
        TopicKind::Telemetry => {
            let sensors = nodes.get(id).ok_or_else(|| NodeError::Unannounced {
                topic: topic.into(),
                node: id.into(),
            })?;
            let t: Telemetry =
                serde_json::from_slice(payload).map_err(|e| bad(topic, "telemetry", e, payload))?;
            if let Err((field, value)) = t.check() {
                return Err(NodeError::Implausible {
                    topic: topic.into(),
                    field,
                    value,
                });
            }
            // A node that sends data is alive, even if its status was lost.
            ctx.store.set_availability(id, true);
            for kind in sensors {
                if let Some(v) = t.value(*kind) {
                    let entity = crate::entity::entity_id_for(
                        crate::entity::Component::Sensor,
                        id,
                        kind.shape().key,
                    );
                    let decimals =
                        if *kind == SensorKind::Temperature || *kind == SensorKind::Humidity {
                            2
                        } else {
                            0
                        };
                    let _ = ctx.store.set_state(
                        &entity,
                        crate::entity::format_number(v, decimals),
                        Map::new(),
                    );
                }
            }
        }
    }
    Ok(())
}

fn bad(topic: &str, what: &'static str, e: serde_json::Error, payload: &[u8]) -> NodeError {
    NodeError::Payload {
        topic: topic.into(),
        what,
        reason: e.to_string(),
        payload: excerpt(payload),
    }
}
