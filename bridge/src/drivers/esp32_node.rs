//! Hearth ESP32 sensor nodes over MQTT. A node announces itself (retained
//! `hearth-node/<id>/announce`), so its device and entities are created
//! without configuration; telemetry updates the entities; the status topic
//! (the node's last will) sets the device's availability, and so does
//! silence: no telemetry for [`STALE_INTERVALS`] × the announced interval
//! makes the node unavailable (a hung node keeps its MQTT session alive).
//! Payload formats: `firmware/node-core`.
//!
//! # Removing a node
//!
//! A node is removed by deleting its retained announce: an empty RETAINED
//! message on `hearth-node/<id>/announce` (the MQTT convention,
//! MQTT 3.1.1 §3.3.1.3; `mosquitto_pub -r -n -t hearth-node/<id>/announce`).
//! An empty message that is not retained deletes nothing on the broker and
//! removes nothing here: a stray empty publish must not make a device and
//! its HA entities vanish while the node keeps reporting.
//!
//! A broker forwards every live message with its retain flag cleared
//! (§3.3.1.3 again), so the driver cannot tell the two apart from the flag.
//! It asks the broker instead, over a short connection of its own
//! ([`super::retained`]): if the broker still holds the node's retained
//! announce, the empty message was not retained: it is ignored, with a
//! warning naming the topic. If the broker holds none, the retained announce
//! was deleted and the node is removed (its entities, HA discovery and
//! states). If the broker does not answer within [`WITHDRAW_CHECK`], the
//! node stays (and the log says so). One question per node at a time, so a
//! flood of empty messages costs one connection and one warning per answer.
//! An empty message that does arrive with the retain flag set (an MQTT 5
//! broker with retain-as-published) removes the node at once.
//!
//! # Entities
//!
//! | entity id | from |
//! |---|---|
//! | `sensor.<node>_<kind>` (`sensor.house_temperature`) | each announced [`SensorKind`] |
//! | `valve.<node>_heating` (`valve.house_heating`) | an announced valve ([`node::ValveInfo`]) |
//!
//! (`-` in the node id becomes `_`.) The valve follows HA's valve model:
//! state `opening`/`closing` while the node reports `position != target`,
//! else `closed` at 0 % and `open` above; attribute `current_position`
//! (0–100, %). It takes `valve.set_valve_position` (`position`, %, clamped
//! into 0–100 by the safety envelope and rounded to a whole percent),
//! `valve.open_valve` (100), `valve.close_valve` (0) and `valve.stop_valve`,
//! sent to the node as `hearth-node/<id>/valve/set` (`70`, `STOP`; QoS 1,
//! not retained). The service call succeeds once the command is handed to
//! the broker; the entity's state then follows the node's
//! `valve/state` reports as the actuator travels.
//!
//! # Late readings (`age_ms`)
//!
//! A node sends the readings it took while offline after it reconnects,
//! each with `age_ms` (node-core's "Readings sent late"). Such a reading is
//! dated `receive time − age_ms`: the entity's state gets that time as its
//! `last_updated` ([`EntityStore::set_state_at`](crate::entity::EntityStore::set_state_at)),
//! so the recorder files it at the time it was taken. It is applied only if
//! it is newer than the newest reading already taken from the node: a late
//! reading never replaces a newer one (it is dropped, with a debug line;
//! the recorder has no way in for a sample that is not a state). The state
//! restored when a node comes back is not a reading: it does not hide the
//! readings buffered during the outage. An `age_ms` above
//! [`MAX_AGE_MS`] (7 days) is refused as a faulty node clock or buffer,
//! logged with the payload.

use super::{DriverContext, excerpt};
use crate::entity::{Component, Device, DriverCommand, EntitySpec, SafetyEnvelope, ServiceError};
use hearth_node_core::{self as node, SensorKind, Telemetry, TopicKind, ValveState};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const OWNER: &str = "esp32";
/// Missed telemetry periods before a node counts as gone.
pub const STALE_INTERVALS: i64 = 3;
/// How long (wall time) the broker has to answer whether it still holds a
/// node's retained announce after an empty one: a broker on the same host
/// or LAN answers a CONNECT and a SUBSCRIBE in milliseconds; without an
/// answer the node stays.
pub const WITHDRAW_CHECK: std::time::Duration = std::time::Duration::from_secs(5);
/// Key of a node's valve entity (`valve.<node>_heating`).
pub const VALVE_KEY: &str = "heating";
/// Nodes whose status or valve state is kept while they have not announced
/// (retained messages arrive in no set order at connect, so a home's nodes
/// are early for a moment). Any client can publish under any node id: more
/// than this are dropped, so random ids cannot grow these maps.
const MAX_EARLY_NODES: usize = 256;
/// Largest valve state kept for a node that has not announced: a report is
/// `{"position":100,"target":100}`; a bigger one is refused when parsed
/// anyway, and keeping it would let one message pin up to 256 KB.
const MAX_EARLY_VALVE_BYTES: usize = 256;
/// Oldest late reading accepted (`age_ms`): 7 days.
pub const MAX_AGE_MS: u32 = 7 * 24 * 3600 * 1000;

/// What the driver knows of an announced node.
struct Node {
    sensors: Vec<SensorKind>,
    interval_ms: i64,
    last_seen_ms: i64,
    /// When the newest reading applied was taken (ms since the epoch);
    /// a late reading at or before it is dropped.
    newest_reading_ms: i64,
    /// Entity id of the node's valve, when it announced one.
    valve: Option<String>,
}

#[derive(Default)]
struct Nodes {
    known: HashMap<String, Node>,
    /// Status that arrived before the announce (retained messages on
    /// different topics come in no guaranteed order).
    early_status: HashMap<String, bool>,
    /// Valve state that arrived before the announce, for the same reason.
    early_valve: HashMap<String, Vec<u8>>,
    /// Nodes that sent an empty announce while the broker is asked whether
    /// it still holds their retained announce (see the module doc,
    /// "Removing a node").
    withdraw_checks: HashSet<String>,
}

/// The broker's answer for a node that sent an empty announce.
struct RetainedAnswer {
    node: String,
    topic: String,
    /// Whether the broker still holds a retained announce; an error when
    /// it did not answer.
    still_retained: anyhow::Result<bool>,
}

/// The valve entity id of node `id`.
pub fn valve_entity_id(id: &str) -> String {
    crate::entity::entity_id_for(Component::Valve, id, VALVE_KEY)
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
    // Two levels below the node: `+/+` does not match them.
    let mut valve_rx = ctx.link.subscribe(&format!(
        "{}/+/{}",
        node::TOPIC_ROOT,
        TopicKind::ValveState.suffix()
    ))?;
    let (commands_tx, mut commands) = mpsc::channel::<DriverCommand>(64);
    // One answer per known node at most in flight.
    let (answers_tx, mut answers) = mpsc::unbounded_channel::<RetainedAnswer>();
    let ctx = ctx.clone();
    Ok(tokio::spawn(async move {
        let mut nodes = Nodes::default();
        let bad_input = crate::logging::Throttle::new("bad input");
        let valves = Valves {
            commands: commands_tx,
        };
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
                Some(m) = valve_rx.recv() => m,
                Some(cmd) = commands.recv() => {
                    if cmd.reply.is_closed() {
                        continue; // the caller gave up (timed out): do not act late
                    }
                    let result = command_valve(&ctx, &cmd).await;
                    let _ = cmd.reply.send(result);
                    continue;
                }
                Some(answer) = answers.recv() => {
                    on_retained_answer(&ctx, &mut nodes, answer);
                    continue;
                }
                _ = stale_check.tick() => {
                    mark_stale(&ctx, &nodes);
                    continue;
                }
                _ = shutdown.wait() => break,
            };
            if let Err(e) = handle(
                &ctx,
                &valves,
                &mut nodes,
                &msg.topic,
                &msg.payload,
                msg.retain,
                &answers_tx,
            ) && bad_input.admit(crate::logging::rate::topic_source(&msg.topic))
            {
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

/// What the broker said about a node that sent an empty announce.
fn on_retained_answer(ctx: &DriverContext, nodes: &mut Nodes, answer: RetainedAnswer) {
    let RetainedAnswer {
        node,
        topic,
        still_retained,
    } = answer;
    if !nodes.withdraw_checks.remove(&node) {
        return; // removed meanwhile (a retained empty announce)
    }
    match still_retained {
        Ok(true) => tracing::warn!(
            "{topic}: an empty message that was not retained was ignored: the broker ({}) still holds the node's retained announce, so sensor node `{node}` stays. To remove a node, publish an empty RETAINED message on {topic}",
            ctx.broker
        ),
        Ok(false) => withdraw(
            ctx,
            nodes,
            &node,
            &format!(
                "its retained announce was deleted from the broker ({}) (empty retained message)",
                ctx.broker
            ),
        ),
        Err(e) => {
            tracing::warn!("{topic}: empty announce ignored, sensor node `{node}` stays: {e:#}")
        }
    }
}

/// Removes node `id`: its valve's route, its device, entities and (through
/// the store's events) its HA discovery and states.
fn withdraw(ctx: &DriverContext, nodes: &mut Nodes, id: &str, why: &str) {
    nodes.early_valve.remove(id);
    nodes.withdraw_checks.remove(id);
    if let Some(gone) = nodes.known.remove(id) {
        tracing::info!("sensor node `{id}` withdrawn: {why}; removing it");
        if let Some(v) = gone.valve {
            ctx.router.unregister(&v);
        }
        ctx.store.remove_device(id);
    }
}

/// An empty announce that the broker forwarded without its retain flag:
/// asks the broker, over a connection of its own, whether it still holds
/// the node's retained announce; the answer comes back to the driver's
/// loop ([`on_retained_answer`]).
fn check_withdrawal(
    ctx: &DriverContext,
    nodes: &mut Nodes,
    id: &str,
    topic: &str,
    answers: &mpsc::UnboundedSender<RetainedAnswer>,
) {
    if !nodes.known.contains_key(id) {
        tracing::debug!("{topic}: empty announce for a node that is not known: nothing to remove");
        return;
    }
    if !nodes.withdraw_checks.insert(id.into()) {
        return; // already asking; one question per node whatever the flood
    }
    tracing::debug!(
        "{topic}: empty announce; asking the broker whether the node's retained announce is still there"
    );
    let (broker, answers) = (ctx.broker.clone(), answers.clone());
    let (node, topic) = (id.to_string(), topic.to_string());
    tokio::spawn(async move {
        let still_retained = super::retained::retained_message(&broker, &topic, WITHDRAW_CHECK)
            .await
            .map(|m| m.is_some());
        let _ = answers.send(RetainedAnswer {
            node,
            topic,
            still_retained,
        });
    });
}

/// Where valve commands go: the driver's own queue, registered with the
/// router for every announced valve.
struct Valves {
    commands: mpsc::Sender<DriverCommand>,
}

impl Valves {
    fn register(&self, ctx: &DriverContext, entity_id: &str) {
        ctx.router.register(
            entity_id,
            self.commands.clone(),
            SafetyEnvelope {
                position_percent: Some((0.0, 100.0)),
                ..Default::default()
            },
        );
    }
}

/// Turns a valve service call into a `valve/set` payload for the node.
pub fn valve_payload(
    entity_id: &str,
    service: &str,
    data: &Map<String, Value>,
) -> Result<String, ServiceError> {
    Ok(match service {
        "open_valve" => "100".into(),
        "close_valve" => "0".into(),
        "stop_valve" => "STOP".into(),
        "set_valve_position" => {
            let asked = data.get("position").and_then(Value::as_f64);
            match asked {
                // The envelope clamped it already; this guards a route
                // registered without one.
                Some(p) if (0.0..=100.0).contains(&p) => format!("{}", p.round() as u8),
                _ => {
                    return Err(ServiceError::InvalidData {
                        domain: "valve".into(),
                        service: service.into(),
                        field: "position".into(),
                        expected: format!("a number 0–100 (%) for {entity_id}"),
                        got: data
                            .get("position")
                            .map_or("nothing".into(), Value::to_string),
                    });
                }
            }
        }
        other => return Err(ServiceError::UnknownService("valve".into(), other.into())),
    })
}

async fn command_valve(ctx: &DriverContext, cmd: &DriverCommand) -> Result<(), ServiceError> {
    let payload = valve_payload(&cmd.entity_id, &cmd.service, &cmd.data)?;
    let node_id = ctx
        .store
        .spec(&cmd.entity_id)
        .map(|s| s.device_id.clone())
        .ok_or_else(|| ServiceError::UnknownEntity(cmd.entity_id.clone()))?;
    let topic = node::topic(&node_id, TopicKind::ValveSet).map_err(|e| ServiceError::Driver {
        entity: cmd.entity_id.clone(),
        reason: format!("{e}: `{node_id}`"),
    })?;
    tracing::info!("{}: valve → {payload} ({})", cmd.entity_id, cmd.service);
    ctx.link
        .publish(&topic, payload, false)
        .await
        .map_err(|e| ServiceError::Driver {
            entity: cmd.entity_id.clone(),
            reason: format!("{e:#}"),
        })
}

/// HA's valve state for a node's report.
pub fn valve_ha_state(v: &ValveState) -> &'static str {
    if v.position < v.target {
        "opening"
    } else if v.position > v.target {
        "closing"
    } else if v.position == 0 {
        "closed"
    } else {
        "open"
    }
}

fn handle(
    ctx: &DriverContext,
    valves: &Valves,
    nodes: &mut Nodes,
    topic: &str,
    payload: &[u8],
    retain: bool,
    answers: &mpsc::UnboundedSender<RetainedAnswer>,
) -> Result<(), NodeError> {
    let Some((id, kind)) = node::parse_topic(topic) else {
        return Ok(());
    };
    match kind {
        TopicKind::Announce if payload.is_empty() && retain => {
            withdraw(ctx, nodes, id, "empty retained announce");
        }
        TopicKind::Announce if payload.is_empty() => {
            check_withdrawal(ctx, nodes, id, topic, answers)
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
            let valve = match a.valve {
                Some(info) => {
                    let spec =
                        EntitySpec::new(id, VALVE_KEY, Component::Valve).named("Heating valve");
                    let entity_id = spec.entity_id.clone();
                    match ctx.store.upsert_entity(spec) {
                        Ok(()) => {
                            valves.register(ctx, &entity_id);
                            tracing::debug!(
                                "sensor node `{id}`: valve {entity_id}, full stroke {} s",
                                info.travel_s
                            );
                            Some(entity_id)
                        }
                        Err(e) => {
                            tracing::error!("{topic}: {e}");
                            None
                        }
                    }
                }
                None => None,
            };
            let previous = nodes.known.get(id).map(|n| n.valve.clone());
            if let Some(Some(old)) = &previous
                && valve.is_none()
            {
                // Re-announced without its valve (firmware changed).
                ctx.router.unregister(old);
                ctx.store.remove_entity(old);
            }
            if previous.is_none() {
                tracing::info!(
                    "sensor node `{id}` ({}) announced {} sensors{}",
                    a.name,
                    a.sensors.len(),
                    if valve.is_some() { " and a valve" } else { "" }
                );
            }
            let known = Node {
                sensors: a.sensors.to_vec(),
                interval_ms: i64::from(a.interval_s.max(1)) * 1000,
                last_seen_ms: ctx.clock.now_ms(),
                // Kept across re-announces (at every reconnect).
                newest_reading_ms: nodes
                    .known
                    .get(id)
                    .map_or(i64::MIN, |n| n.newest_reading_ms),
                valve,
            };
            nodes.known.insert(id.into(), known);
            if let Some(available) = nodes.early_status.remove(id) {
                ctx.store.set_availability(id, available);
            }
            if let Some(early) = nodes.early_valve.remove(id) {
                let topic = format!(
                    "{}/{id}/{}",
                    node::TOPIC_ROOT,
                    TopicKind::ValveState.suffix()
                );
                return handle(ctx, valves, nodes, &topic, &early, false, answers);
            }
        }
        TopicKind::ValveState => {
            let Some(known) = nodes.known.get(id) else {
                if payload.len() <= MAX_EARLY_VALVE_BYTES
                    && (nodes.early_valve.len() < MAX_EARLY_NODES
                        || nodes.early_valve.contains_key(id))
                {
                    nodes.early_valve.insert(id.into(), payload.to_vec());
                }
                return Ok(());
            };
            let Some(entity) = &known.valve else {
                return Err(NodeError::Payload {
                    topic: topic.into(),
                    what: "valve state",
                    reason: "the node announced no valve".into(),
                    payload: excerpt(payload),
                });
            };
            let v: ValveState = serde_json::from_slice(payload)
                .map_err(|e| bad(topic, "valve state", e, payload))?;
            if let Err((field, value)) = v.check() {
                return Err(NodeError::Payload {
                    topic: topic.into(),
                    what: "valve state",
                    reason: format!("{field} {value} is outside 0–100"),
                    payload: excerpt(payload),
                });
            }
            let mut attrs = Map::new();
            attrs.insert("current_position".into(), json!(v.position));
            let _ = ctx.store.set_state(entity, valve_ha_state(&v), attrs);
        }
        TopicKind::ValveSet => {} // our own commands, echoed by no one we subscribe to
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
                if nodes.early_status.len() < MAX_EARLY_NODES || nodes.early_status.contains_key(id)
                {
                    nodes.early_status.insert(id.into(), available);
                }
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
            let now = ctx.clock.now_ms();
            let taken = match reading_time(now, t.age_ms, known.newest_reading_ms) {
                Reading::Current => None,
                Reading::Late(at) => Some(at),
                Reading::Superseded(at) => {
                    tracing::debug!(
                        "{topic}: late reading taken at {} is not newer than the last one from sensor node `{id}`; dropped",
                        crate::clock::iso8601(at)
                    );
                    // Still a sign of life.
                    known.last_seen_ms = now;
                    ctx.store.set_availability(id, true);
                    return Ok(());
                }
                Reading::TooOld(age) => {
                    return Err(NodeError::Payload {
                        topic: topic.into(),
                        what: "telemetry",
                        reason: format!(
                            "age_ms {age} is more than 7 days ({MAX_AGE_MS} ms): the node's clock or buffer is wrong; reading ignored"
                        ),
                        payload: excerpt(payload),
                    });
                }
            };
            // A node that sends data is alive, even if its status was lost.
            known.last_seen_ms = now;
            ctx.store.set_availability(id, true);
            known.newest_reading_ms = taken.unwrap_or(now);
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
                    let value = crate::entity::format_number(v, decimals);
                    let _ = match taken {
                        Some(at) => ctx.store.set_state_at(&entity, value, Map::new(), at),
                        None => ctx.store.set_state(&entity, value, Map::new()),
                    };
                }
            }
        }
    }
    Ok(())
}

/// When a telemetry reading was taken, from its `age_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// No age (or 0): taken now.
    Current,
    /// Taken at this time (ms since the epoch), after the newest reading
    /// applied: applied with its time.
    Late(i64),
    /// Taken at this time, not after the newest reading applied: dropped.
    Superseded(i64),
    /// `age_ms` over [`MAX_AGE_MS`]: refused.
    TooOld(u32),
}

/// Classifies a reading received at `now_ms` with `age_ms`, given when the
/// newest reading applied from the node was taken.
pub fn reading_time(now_ms: i64, age_ms: Option<u32>, newest_ms: i64) -> Reading {
    match age_ms {
        None | Some(0) => Reading::Current,
        Some(age) if age > MAX_AGE_MS => Reading::TooOld(age),
        Some(age) => {
            let at = now_ms - i64::from(age);
            if at > newest_ms {
                Reading::Late(at)
            } else {
                Reading::Superseded(at)
            }
        }
    }
}

fn bad(topic: &str, what: &'static str, e: serde_json::Error, payload: &[u8]) -> NodeError {
    NodeError::Payload {
        topic: topic.into(),
        what,
        reason: e.to_string(),
        payload: excerpt(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valve_entity_ids_follow_the_node() {
        assert_eq!(valve_entity_id("house"), "valve.house_heating");
        assert_eq!(valve_entity_id("flat-2"), "valve.flat_2_heating");
    }

    #[test]
    fn valve_services_become_node_payloads() {
        let data = |v: Value| match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let p = |service, d: Value| valve_payload("valve.v", service, &data(d));
        assert_eq!(
            p("set_valve_position", json!({"position": 70})).unwrap(),
            "70"
        );
        assert_eq!(
            p("set_valve_position", json!({"position": 69.6})).unwrap(),
            "70"
        );
        assert_eq!(p("open_valve", json!({})).unwrap(), "100");
        assert_eq!(p("close_valve", json!({})).unwrap(), "0");
        assert_eq!(p("stop_valve", json!({})).unwrap(), "STOP");
        let e = p("set_valve_position", json!({"position": 150})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "valve.set_valve_position: `position` must be a number 0–100 (%) for valve.v, got 150"
        );
        assert!(matches!(
            p("toggle", json!({})),
            Err(ServiceError::UnknownService(..))
        ));
    }

    #[test]
    fn late_readings_are_dated_and_never_replace_newer_ones() {
        let now = 1_700_000_000_000;
        assert_eq!(reading_time(now, None, i64::MIN), Reading::Current);
        assert_eq!(reading_time(now, Some(0), now), Reading::Current);
        // First reading after a restart of the bridge: nothing newer.
        assert_eq!(
            reading_time(now, Some(90_000), i64::MIN),
            Reading::Late(now - 90_000)
        );
        // Buffered readings, oldest first, each after the last applied.
        assert_eq!(
            reading_time(now, Some(30_000), now - 60_000),
            Reading::Late(now - 30_000)
        );
        // One older than (or as old as) what is shown already: dropped.
        assert_eq!(
            reading_time(now, Some(60_000), now - 30_000),
            Reading::Superseded(now - 60_000)
        );
        assert_eq!(
            reading_time(now, Some(30_000), now - 30_000),
            Reading::Superseded(now - 30_000)
        );
        // Seven days is the limit.
        assert_eq!(
            reading_time(now, Some(MAX_AGE_MS), i64::MIN),
            Reading::Late(now - i64::from(MAX_AGE_MS))
        );
        assert_eq!(
            reading_time(now, Some(MAX_AGE_MS + 1), i64::MIN),
            Reading::TooOld(MAX_AGE_MS + 1)
        );
        assert_eq!(
            reading_time(now, Some(u32::MAX), i64::MIN),
            Reading::TooOld(u32::MAX)
        );
    }

    #[test]
    fn valve_reports_map_to_ha_states() {
        let s = |position, target| valve_ha_state(&ValveState { position, target });
        assert_eq!(s(0, 0), "closed");
        assert_eq!(s(10, 70), "opening");
        assert_eq!(s(70, 70), "open");
        assert_eq!(s(70, 0), "closing");
        assert_eq!(s(100, 100), "open");
    }
}
