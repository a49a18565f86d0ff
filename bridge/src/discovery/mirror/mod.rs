//! Mirrors foreign Home Assistant MQTT discovery configs (`[mirror]`) into
//! the entity store, read-only: a laptop agent such as HASS.Agent announces
//! its battery sensor to HA on the same broker, and Hearth's plugins read
//! the same entity, under the entity id HA gives it.
//!
//! - A retained config on a followed topic creates the entity (its device
//!   too), `unknown` until the state topic speaks; its `value_template`
//!   (the subset in [`template`]) turns each state message into HA's state
//!   string; availability topics make it `unavailable` as in HA (with
//!   availability configured, unavailable until a topic says available).
//! - An empty retained config removes the entity (and its device with its
//!   last entity), as HA does.
//! - Mirrored entities are never announced again by Hearth's publisher
//!   (their devices belong to [`OWNER`], a foreign owner: HA already has
//!   them), have no command topic and take no service call.
//! - Hearth's own configs ([`super::stale::is_ours`]) are skipped, so
//!   following `homeassistant/sensor/+/+/config` does not loop.
//!
//! A config that cannot be read is logged with its topic and what was
//! expected, and ignored; an unsupported template is logged with the
//! config topic and the template, and the entity stays `unknown`.
//!
//! Not mirrored: other components than `sensor` and `binary_sensor`,
//! device-based discovery (`<prefix>/device/<id>/config`),
//! `json_attributes_topic`, `expire_after`.

pub mod config;
pub mod payload;
pub mod template;

pub use config::MirrorConfig;

use super::Topics;
use crate::broker::{Message, MqttLink};
use crate::drivers::DriverContext;
use crate::entity::{Component, Device, EntitySpec, EntityStore};
use crate::logging::Throttle;
use payload::{AvailabilityMode, Discovered};
use serde_json::Map;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Owner of mirrored devices in the store: foreign, so never re-announced
/// ([`crate::entity::store::is_foreign_owner`]).
pub const OWNER: &str = "foreign:mqtt";

/// Prefix of mirrored device ids in the store (never in a topic).
const DEVICE_PREFIX: &str = "mirror-";
/// Mirrored entities at most (a coworking space's laptops are tens; each
/// costs a subscription or more, and anyone on the broker can publish).
pub const MAX_MIRRORED: usize = 512;
/// Availability topics per mirrored entity (HA sets no limit; real
/// configs have one or two).
pub const MAX_AVAILABILITY: usize = 8;

/// What a forwarded message is for.
#[derive(Debug, Clone)]
enum Kind {
    Config,
    /// The state topic of the entity of this config topic, at generation.
    State(String, u64),
    /// Availability topic `n` of that entity.
    Availability(String, u64, usize),
}

struct Mirrored {
    d: Discovered,
    device_id: String,
    generation: u64,
    /// Subscriptions; aborting one drops its [`crate::broker::Subscription`],
    /// which sends the broker an UNSUBSCRIBE.
    forwarders: Vec<JoinHandle<()>>,
    /// Last rendered state string.
    value: Option<String>,
    /// Per availability topic: its last word.
    avail: Vec<Option<bool>>,
    latest: Option<bool>,
}

impl Mirrored {
    /// HA's `available` (mqtt/entity.py `MqttAvailabilityMixin`).
    fn available(&self) -> bool {
        if self.d.availability.is_empty() {
            return true;
        }
        match self.d.availability_mode {
            AvailabilityMode::Latest => self.latest == Some(true),
            AvailabilityMode::All => self.avail.iter().all(|a| *a == Some(true)),
            AvailabilityMode::Any => self.avail.contains(&Some(true)),
        }
    }

    fn shown(&self) -> String {
        if !self.available() {
            return crate::entity::store::UNAVAILABLE.into();
        }
        self.value.clone().unwrap_or_else(|| "unknown".into())
    }
}

impl Drop for Mirrored {
    fn drop(&mut self) {
        for f in &self.forwarders {
            f.abort();
        }
    }
}

struct Mirror {
    cfg: MirrorConfig,
    topics: Topics,
    store: Arc<EntityStore>,
    link: MqttLink,
    tx: mpsc::Sender<(Kind, Message)>,
    /// By config topic.
    entities: BTreeMap<String, Mirrored>,
    generation: u64,
    bad_input: Arc<Throttle>,
}

/// Starts the mirror: subscribes to the configured discovery filters.
pub fn spawn(
    cfg: MirrorConfig,
    ctx: &DriverContext,
    topics: &Topics,
) -> anyhow::Result<JoinHandle<()>> {
    cfg.validate().map_err(anyhow::Error::msg)?;
    let (tx, mut rx) = mpsc::channel(256);
    let mut forwarders = Vec::new();
    for filter in &cfg.discovery {
        forwarders.push(forward(&ctx.link, filter, Kind::Config, tx.clone())?);
    }
    let mut mirror = Mirror {
        cfg,
        topics: topics.clone(),
        store: ctx.store.clone(),
        link: ctx.link.clone(),
        tx,
        entities: BTreeMap::new(),
        generation: 0,
        bad_input: Throttle::new("bad input"),
    };
    let mut shutdown = ctx.shutdown.clone();
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                Some((kind, msg)) = rx.recv() => mirror.on(kind, &msg),
                _ = shutdown.wait() => break,
                else => break,
            }
        }
        for f in forwarders {
            f.abort();
        }
    }))
}

/// Forwards one subscription into the mirror's queue (bounded: a slow
/// mirror slows the subscription, which the link bounds in turn).
fn forward(
    link: &MqttLink,
    filter: &str,
    kind: Kind,
    tx: mpsc::Sender<(Kind, Message)>,
) -> anyhow::Result<JoinHandle<()>> {
    // A `Subscription`: aborting the task drops it, which unsubscribes at
    // the broker (a bare receiver would only be forgotten locally, at the
    // link's next message, and stay subscribed at the broker).
    let mut sub = link.subscription(filter)?;
    Ok(tokio::spawn(async move {
        while let Some(msg) = sub.recv().await {
            if tx.send((kind.clone(), msg)).await.is_err() {
                break;
            }
        }
    }))
}

impl Mirror {
    fn on(&mut self, kind: Kind, msg: &Message) {
        match kind {
            Kind::Config => self.on_config(msg),
            Kind::State(config, g) => self.on_state(&config, g, msg),
            Kind::Availability(config, g, n) => self.on_availability(&config, g, n, msg),
        }
    }

    fn on_config(&mut self, msg: &Message) {
        let topic = msg.topic.as_str();
        if msg.payload.is_empty() {
            if self.entities.contains_key(topic) {
                tracing::info!("{topic}: discovery config cleared; removing the mirrored entity");
                self.remove(topic);
            }
            return;
        }
        if super::stale::is_ours(&self.topics, &msg.payload) {
            return; // Hearth's own entity: it is in the store already
        }
        let parsed = payload::parse_topic(topic)
            .ok_or_else(|| {
                "expected a topic `<prefix>/<component>/[<node_id>/]<object_id>/config`".to_string()
            })
            .and_then(|t| payload::parse(&t, &msg.payload));
        let d = match parsed {
            Ok(d) => d,
            Err(why) => {
                self.warn(topic, format_args!("discovery config not mirrored: {why}"));
                self.remove(topic);
                return;
            }
        };
        if !self.cfg.follows(d.device_class.as_deref()) {
            self.remove(topic);
            return;
        }
        if self.entities.get(topic).is_some_and(|m| m.d == d) {
            return; // the same config again (a retained copy on resubscribe)
        }
        self.remove(topic);
        // Anyone on the broker can publish configs: their number, and the
        // subscriptions each costs, are capped.
        if self.entities.len() >= MAX_MIRRORED {
            self.warn(
                topic,
                format_args!(
                    "discovery config not mirrored: {MAX_MIRRORED} entities are mirrored already"
                ),
            );
            return;
        }
        if d.availability.len() > MAX_AVAILABILITY {
            self.warn(
                topic,
                format_args!(
                    "discovery config not mirrored: {} availability topics, at most {MAX_AVAILABILITY}",
                    d.availability.len()
                ),
            );
            return;
        }
        if let Err((t, why)) = &d.template {
            self.warn(
                topic,
                format_args!(
                    "value_template `{t}` is not supported ({why}); {} stays unknown",
                    d.entity_id
                ),
            );
        }
        if let Err(e) = self.add(topic, d) {
            self.warn(topic, format_args!("discovery config not mirrored: {e}"));
        }
    }

    fn add(&mut self, topic: &str, d: Discovered) -> anyhow::Result<()> {
        let device_key = d
            .device
            .as_ref()
            .map(|dev| dev.identifier.clone())
            .unwrap_or_else(|| d.entity_id.clone());
        let device_id = format!("{DEVICE_PREFIX}{}", payload::slug(&device_key));
        let object = d
            .entity_id
            .split_once('.')
            .map_or(d.entity_id.as_str(), |(_, o)| o)
            .to_string();
        let (device_name, entity_name) = match &d.device {
            Some(dev) => (
                dev.name.clone().unwrap_or_else(|| dev.identifier.clone()),
                d.name.clone(),
            ),
            // No device: the entity is named alone (HA's naming without a device).
            None => (d.name.clone().unwrap_or_else(|| object.clone()), None),
        };
        let fresh_device = self.store.device(&device_id).is_none();
        self.store.upsert_device(
            OWNER,
            Device {
                id: device_id.clone(),
                name: device_name,
                manufacturer: d
                    .device
                    .as_ref()
                    .and_then(|x| x.manufacturer.clone())
                    .unwrap_or_default(),
                model: d
                    .device
                    .as_ref()
                    .and_then(|x| x.model.clone())
                    .unwrap_or_default(),
                sw_version: d.device.as_ref().and_then(|x| x.sw_version.clone()),
                via_device: None,
            },
        )?;
        let spec = EntitySpec {
            entity_id: d.entity_id.clone(),
            device_id: device_id.clone(),
            key: object,
            name: entity_name,
            component: d.component,
            device_class: d.device_class.clone(),
            unit: d.unit.clone(),
            state_class: d.state_class.clone(),
            entity_category: d.entity_category.clone(),
            climate: None,
            event_types: Vec::new(),
            input: None,
            icon: None,
        };
        if let Err(e) = self.store.upsert_entity(spec) {
            if fresh_device {
                self.store.remove_device(&device_id);
            }
            return Err(e.into());
        }
        self.generation += 1;
        let g = self.generation;
        let mut m = Mirrored {
            avail: vec![None; d.availability.len()],
            d,
            device_id,
            generation: g,
            forwarders: Vec::new(),
            value: None,
            latest: None,
        };
        if self.owns(&m) {
            let _ = self.store.set_state(&m.d.entity_id, m.shown(), Map::new());
        }
        tracing::info!(
            "{topic}: mirroring {} (state from {})",
            m.d.entity_id,
            m.d.state_topic
        );
        let mut follow = Vec::new();
        if m.d.template.is_ok() {
            follow.push((m.d.state_topic.clone(), Kind::State(topic.into(), g)));
        }
        for (n, a) in m.d.availability.iter().enumerate() {
            follow.push((a.topic.clone(), Kind::Availability(topic.into(), g, n)));
        }
        // The entity is kept even when a subscription fails: clearing its
        // config must still find it.
        for (filter, kind) in follow {
            match forward(&self.link, &filter, kind, self.tx.clone()) {
                Ok(f) => m.forwarders.push(f),
                Err(e) => tracing::warn!("{topic}: cannot follow `{filter}`: {e}"),
            }
        }
        self.entities.insert(topic.into(), m);
        Ok(())
    }

    /// Removes the entity of a config topic (and its device with its last
    /// entity).
    fn remove(&mut self, topic: &str) {
        let Some(m) = self.entities.remove(topic) else {
            return;
        };
        if self.owns(&m) {
            self.store.remove_entity(&m.d.entity_id);
        }
        if !self.entities.values().any(|o| o.device_id == m.device_id) {
            self.store.remove_device(&m.device_id);
        }
    }

    fn warn(&self, topic: &str, text: std::fmt::Arguments) {
        if self
            .bad_input
            .admit(crate::logging::rate::topic_source(topic))
        {
            tracing::warn!("{topic}: {text}");
        }
    }

    fn on_state(&mut self, config: &str, g: u64, msg: &Message) {
        let Some(m) = self.entities.get(config).filter(|m| m.generation == g) else {
            return; // a message for a config since replaced
        };
        let Ok(template) = &m.d.template else { return };
        let rendered = match template.render(&msg.text()) {
            Ok(r) => r,
            Err(e) => {
                let (id, ex) = (m.d.entity_id.clone(), crate::broker::excerpt(&msg.payload));
                self.warn(
                    &msg.topic,
                    format_args!("state of {id} not updated: {e} (payload `{ex}`)"),
                );
                return;
            }
        };
        let value = match state_of(&m.d, &rendered) {
            Ok(v) => v,
            Err(why) => {
                let id = m.d.entity_id.clone();
                self.warn(
                    &msg.topic,
                    format_args!("state of {id} not updated: `{rendered}` {why}"),
                );
                return;
            }
        };
        if let Some(m) = self.entities.get_mut(config) {
            m.value = value;
            self.show(config);
        }
    }

    fn on_availability(&mut self, config: &str, g: u64, n: usize, msg: &Message) {
        let Some(m) = self.entities.get(config).filter(|m| m.generation == g) else {
            return;
        };
        let Some(a) = m.d.availability.get(n) else {
            return;
        };
        let word = match &a.template {
            None => Ok(msg.text().into_owned()),
            Some(t) => t.render(&msg.text()),
        };
        let up = match word {
            Ok(w) if w == a.available => true,
            Ok(w) if w == a.not_available => false,
            Ok(w) => {
                let (on, off) = (a.available.clone(), a.not_available.clone());
                self.warn(
                    &msg.topic,
                    format_args!("availability `{w}` is neither `{on}` nor `{off}`; ignored"),
                );
                return;
            }
            Err(e) => {
                self.warn(&msg.topic, format_args!("availability not read: {e}"));
                return;
            }
        };
        if let Some(m) = self.entities.get_mut(config) {
            m.avail[n] = Some(up);
            m.latest = Some(up);
            self.show(config);
        }
    }

    fn show(&self, config: &str) {
        let Some(m) = self.entities.get(config) else {
            return;
        };
        if !self.owns(m) {
            return; // Hearth's own entity took the id back (see upsert_entity)
        }
        if let Err(e) = self.store.set_state(&m.d.entity_id, m.shown(), Map::new()) {
            self.warn(&m.d.state_topic, format_args!("{e}"));
        }
    }

    /// Whether the store's entity with `m`'s id is still the mirrored one.
    fn owns(&self, m: &Mirrored) -> bool {
        self.store
            .spec(&m.d.entity_id)
            .is_some_and(|s| s.device_id == m.device_id)
    }
}

/// HA's state string for a rendered payload: `None` is `unknown` (HA's
/// `PAYLOAD_NONE`); a binary sensor maps its on/off payloads; a sensor
/// with a unit or a numeric device class must be a number (HA refuses
/// anything else, keeping the last state).
fn state_of(d: &Discovered, rendered: &str) -> Result<Option<String>, String> {
    if rendered == "None" {
        return Ok(None);
    }
    match d.component {
        Component::BinarySensor => {
            if rendered == d.payload_on {
                Ok(Some("on".into()))
            } else if rendered == d.payload_off {
                Ok(Some("off".into()))
            } else {
                Err(format!(
                    "is neither payload_on `{}` nor payload_off `{}`",
                    d.payload_on, d.payload_off
                ))
            }
        }
        _ => {
            let numeric = d.unit.is_some()
                || d.state_class.is_some()
                || d.device_class
                    .as_deref()
                    .is_some_and(|c| !matches!(c, "enum" | "timestamp" | "date"));
            let n = rendered
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite());
            match (numeric, n) {
                (true, None) => {
                    Err("is not a number (the sensor has a unit or a numeric device class)".into())
                }
                _ => Ok(Some(rendered.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::{BrokerAddress, EmbeddedBroker};
    use crate::clock::Clock;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(10);
    const CONFIG: &str = "homeassistant/sensor/lap/lap_battery/config";
    const STATE: &str = "lap/battery";
    const AVAILABILITY: &str = "lap/availability";

    use crate::broker::link::test_link as link;

    /// Polls `cond` every 20 ms for up to 10 s.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        let waited = tokio::time::timeout(WAIT, async {
            while !cond() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        assert!(waited.await.is_ok(), "not within 10 s: {what}");
    }

    #[tokio::test]
    async fn a_removed_config_unsubscribes_its_state_and_availability_topics() {
        let port = EmbeddedBroker::free_port();
        let _broker = EmbeddedBroker::start(std::net::Ipv4Addr::LOCALHOST.into(), port).unwrap();
        let link = link(port, "t-bridge").await;
        let publisher = self::link(port, "t-agent").await;
        let store = EntityStore::new(Clock::real());
        let (_trigger, shutdown) = crate::shutdown::channel();
        let ctx = DriverContext {
            store: store.clone(),
            router: crate::entity::ServiceRouter::new(store.clone()),
            link: link.clone(),
            broker: BrokerAddress::local(port),
            clock: Clock::real(),
            shutdown,
            forecasts: Arc::default(),
            alerts: None,
        };
        let cfg = MirrorConfig {
            discovery: vec!["homeassistant/sensor/+/+/config".into()],
            device_class: None,
        };
        let task = spawn(cfg, &ctx, &Topics::default()).unwrap();
        let mut ctl = link.subscribe("t/ctl").unwrap();
        assert!(link.subscriptions_settled(WAIT).await);
        let config = serde_json::json!({
            "name": "Battery",
            "unique_id": "lap_battery",
            "state_topic": STATE,
            "availability_topic": AVAILABILITY,
            "device_class": "battery",
            "unit_of_measurement": "%",
            "device": {"identifiers": ["lap"], "name": "lap"}
        });
        publisher
            .publish(CONFIG, config.to_string(), true)
            .await
            .unwrap();
        until("the state and availability topics followed", || {
            link.is_subscribed(STATE) && link.is_subscribed(AVAILABILITY)
        })
        .await;
        assert!(store.spec("sensor.lap_battery").is_some());

        publisher.publish(CONFIG, "", true).await.unwrap();
        until("the entity removed", || {
            store.spec("sensor.lap_battery").is_none()
        })
        .await;
        until("the topics left", || {
            !link.is_subscribed(STATE) && !link.is_subscribed(AVAILABILITY)
        })
        .await;
        // The broker was told: it sends nothing on those topics any more.
        assert!(
            link.subscriptions_settled(WAIT).await,
            "UNSUBACKs within 10 s"
        );
        let before = link.messages_received();
        publisher.publish(STATE, "50", false).await.unwrap();
        publisher
            .publish(AVAILABILITY, "online", false)
            .await
            .unwrap();
        publisher.publish("t/ctl", "after", false).await.unwrap();
        let got = tokio::time::timeout(WAIT, ctl.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.text(), "after");
        assert_eq!(link.messages_received() - before, 1, "only t/ctl arrived");
        task.abort();
        publisher.publish(CONFIG, "", true).await.unwrap();
    }
}
