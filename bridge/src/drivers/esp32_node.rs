//! Hearth ESP32 sensor nodes over MQTT. A node announces itself (retained
//! `hearth-node/<id>/announce`), so its device and entities are created
//! without configuration; telemetry updates the entities; the status topic
//! (the node's last will) sets the device's availability, and so does
//! silence: no telemetry for [`STALE_INTERVALS`] × the announced interval
//! makes the node unavailable (a hung node keeps its MQTT session alive).
//! An empty retained announce removes the node. Payload formats:
//! `firmware/node-core`.

use super::{DriverContext, excerpt};
use crate::entity::{Device, EntitySpec};
use hearth_node_core::{self as node, SensorKind, Telemetry, TopicKind};
use serde_json::Map;
use std::collections::HashMap;
use tokio::task::JoinHandle;

const OWNER: &str = "esp32";
/// Missed telemetry periods before a node counts as gone.
pub const STALE_INTERVALS: i64 = 3;

/// What the driver knows of an announced node.
struct Node {
    sensors: Vec<SensorKind>,
    interval_ms: i64,
    last_seen_ms: i64,
}

#[derive(Default)]
struct Nodes {
    known: HashMap<String, Node>,
    /// Status that arrived before the announce (retained messages on
    /// different topics come in no guaranteed order).
    early_status: HashMap<String, bool>,
}

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
        let mut nodes = Nodes::default();
        let mut shutdown = ctx.shutdown.clone();
        // One simulated second, but not busier than every 50 ms of wall time.
        let period = ctx
            .clock
            .wall(1_000.0)
            .max(std::time::Duration::from_millis(50));
        let mut stale_check = tokio::time::interval(period);
        loop {
            let msg = tokio::select! {
                m = rx.recv() => match m { Some(m) => m, None => break },
                _ = stale_check.tick() => {
                    mark_stale(&ctx, &nodes);
                    continue;
                }
                _ = shutdown.wait() => break,
            };
            if let Err(e) = handle(&ctx, &mut nodes, &msg.topic, &msg.payload) {
                tracing::warn!("{e}");
            }
        }
    }))
}

fn mark_stale(ctx: &DriverContext, nodes: &Nodes) {
    let now = ctx.clock.now_ms();
    for (id, n) in &nodes.known {
        let silent_ms = now - n.last_seen_ms;
        if silent_ms > STALE_INTERVALS * n.interval_ms
            && ctx.store.device(id).is_some_and(|(_, up)| up)
        {
            tracing::warn!(
                "sensor node `{id}` sent no telemetry for {} s ({STALE_INTERVALS} × its {} s interval): unavailable",
                silent_ms / 1000,
                n.interval_ms / 1000
            );
            ctx.store.set_availability(id, false);
        }
    }
}

fn handle(
    ctx: &DriverContext,
    nodes: &mut Nodes,
    topic: &str,
    payload: &[u8],
) -> Result<(), NodeError> {
    let Some((id, kind)) = node::parse_topic(topic) else {
        return Ok(());
    };
    match kind {
        TopicKind::Announce if payload.is_empty() => {
            if nodes.known.remove(id).is_some() {
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
            if !nodes.known.contains_key(id) {
                tracing::info!(
                    "sensor node `{id}` ({}) announced {} sensors",
                    a.name,
                    a.sensors.len()
                );
            }
            let known = Node {
                sensors: a.sensors.to_vec(),
                interval_ms: i64::from(a.interval_s.max(1)) * 1000,
                last_seen_ms: ctx.clock.now_ms(),
            };
            nodes.known.insert(id.into(), known);
            if let Some(available) = nodes.early_status.remove(id) {
                ctx.store.set_availability(id, available);
            }
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
            if nodes.known.contains_key(id) {
                if !available {
                    tracing::warn!("sensor node `{id}` went offline");
                }
                ctx.store.set_availability(id, available);
            } else {
                nodes.early_status.insert(id.into(), available);
            }
        }
        TopicKind::Telemetry => {
            let known = nodes
                .known
                .get_mut(id)
                .ok_or_else(|| NodeError::Unannounced {
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
            known.last_seen_ms = ctx.clock.now_ms();
            ctx.store.set_availability(id, true);
            for kind in &known.sensors {
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
