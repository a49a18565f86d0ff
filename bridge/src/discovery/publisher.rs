//! Keeps Home Assistant's view equal to the entity store's: discovery
//! configs (retained, QoS 1), device availability and entity states, and
//! clears what disappears. Republishes states when HA says `online` on
//! `homeassistant/status` (HA's birth message), and at every reconnection
//! of the MQTT link: a broker restarted without persistence has lost every
//! retained config and state, and HA (already online) would not ask.
//!
//! Events are handled in batches: everything already queued is folded into
//! one set of changes, configs are published before states, and a device's
//! config is published once per batch however many of its entities changed.

use super::guard::{Claims, Guard};
use super::payload::{self, BRIDGE_DEVICE};
use super::stale;
use super::{DiscoveryMode, DiscoveryOptions};
use crate::broker::{Message, MqttLink};
use crate::entity::{Component, Device, EntitySpec, EntityStore, State, StoreEvent};
use crate::shutdown::Shutdown;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Records a retained config of this bridge (or forgets a cleared one).
fn note_config(topics: &super::Topics, found: &mut Option<BTreeSet<String>>, msg: Message) {
    let Some(found) = found else { return };
    if msg.payload.is_empty() {
        found.remove(&msg.topic);
    } else if msg.retain && stale::is_ours(topics, &msg.payload) {
        found.insert(msg.topic);
    }
}

#[derive(Default)]
struct Model {
    devices: BTreeMap<String, (Arc<Device>, bool)>,
    entities: BTreeMap<String, Arc<EntitySpec>>,
}

#[derive(Default)]
struct Batch {
    /// Devices whose discovery config must be (re)published.
    configs: BTreeSet<String>,
    /// Device-based mode: (device, key, platform) to delete.
    removed: Vec<(String, String, Component)>,
    /// Retained topics to clear (empty payload).
    clears: Vec<String>,
    /// Availability topics to publish.
    availability: Vec<(String, bool)>,
    /// Entities whose state must be published.
    states: BTreeSet<String>,
    /// Every firing of an `event` entity, in order: unlike a state, an
    /// event is not folded into the last one (HA fires each message).
    events: Vec<(String, State)>,
}

pub struct Publisher {
    link: MqttLink,
    store: Arc<EntityStore>,
    opts: DiscoveryOptions,
    model: Model,
    /// Foreign devices seen (never announced; [`Self::is_foreign`]).
    foreign: BTreeSet<String>,
    /// Entities whose retained attributes topic is not `{}`.
    with_attributes: std::sync::Mutex<BTreeSet<String>>,
    /// What the guard defends: every retained state and availability.
    claims: Claims,
}

impl Publisher {
    /// Starts the publisher. Fire the returned sender once every device
    /// the bridge starts with is registered: retained configs of this
    /// bridge that the model does not have are then cleared.
    pub fn spawn(
        link: MqttLink,
        store: Arc<EntityStore>,
        opts: DiscoveryOptions,
        shutdown: Shutdown,
    ) -> anyhow::Result<(tokio::task::JoinHandle<()>, oneshot::Sender<()>)> {
        let ha_status = link.subscribe(&opts.topics.ha_status())?;
        let [f1, f2] = stale::filters(&opts.topics);
        let retained = (link.subscribe(&f1)?, link.subscribe(&f2)?);
        let (sweep_tx, sweep) = oneshot::channel();
        let claims = Claims::new(opts.topics.clone());
        let guard = Guard::subscribe(&link, claims.clone())?;
        let publisher = Publisher {
            link,
            store,
            opts,
            model: Model::default(),
            foreign: BTreeSet::new(),
            with_attributes: Default::default(),
            claims,
        };
        // One task: the guard re-publishes what the publisher claimed, and
        // both stop at the shutdown signal.
        let task = tokio::spawn(async move {
            tokio::join!(
                publisher.run(ha_status, retained, sweep, shutdown.clone()),
                guard.run(shutdown)
            );
        });
        Ok((task, sweep_tx))
    }

    async fn run(
        mut self,
        mut ha_status: mpsc::Receiver<Message>,
        (mut configs_a, mut configs_b): (mpsc::Receiver<Message>, mpsc::Receiver<Message>),
        mut sweep: oneshot::Receiver<()>,
        mut shutdown: Shutdown,
    ) {
        // Retained configs of this bridge seen on the broker, until the sweep.
        let mut found: Option<BTreeSet<String>> = Some(BTreeSet::new());
        let bad_input = crate::logging::Throttle::new("bad input");
        let mut connections = self.link.connections();
        connections.borrow_and_update();
        let (snapshot, mut events) = self.store.subscribe();
        let mut batch = Batch::default();
        for (device, available) in snapshot.devices {
            if self.is_foreign(&device.id) {
                self.foreign.insert(device.id.clone());
                continue;
            }
            self.model
                .devices
                .insert(device.id.clone(), (device, available));
        }
        for (spec, _) in snapshot.entities {
            if !self.foreign.contains(&spec.device_id) {
                self.model.entities.insert(spec.entity_id.clone(), spec);
            }
        }
        self.everything(&mut batch);
        self.flush(batch).await;
        loop {
            tokio::select! {
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    let mut batch = Batch::default();
                    self.fold(ev, &mut batch);
                    while let Ok(ev) = events.try_recv() {
                        self.fold(ev, &mut batch);
                    }
                    self.flush(batch).await;
                }
                Some(msg) = configs_a.recv(), if found.is_some() => note_config(&self.opts.topics, &mut found, msg),
                Some(msg) = configs_b.recv(), if found.is_some() => note_config(&self.opts.topics, &mut found, msg),
                Ok(()) = &mut sweep, if found.is_some() => {
                    // Fold what the store has announced so far, then sweep.
                    let mut batch = Batch::default();
                    while let Ok(ev) = events.try_recv() {
                        self.fold(ev, &mut batch);
                    }
                    self.flush(batch).await;
                    self.sweep(found.take().unwrap_or_default()).await;
                    // Configs are only looked at until the sweep; an unread
                    // queue would fill with our own republished configs and
                    // then stall the MQTT link. Dropping it unsubscribes.
                    (configs_a, configs_b) = (mpsc::channel(1).1, mpsc::channel(1).1);
                }
                msg = ha_status.recv() => {
                    let Some(msg) = msg else { break };
                    match msg.text().trim() {
                        "online" => {
                            tracing::info!("Home Assistant is online: republishing discovery and states");
                            let mut batch = Batch::default();
                            self.everything(&mut batch);
                            self.flush(batch).await;
                        }
                        "offline" => tracing::info!("Home Assistant went offline"),
                        other => {
                            if bad_input.admit(crate::logging::rate::topic_source(&msg.topic)) {
                                tracing::warn!("{}: unexpected payload `{other}` (expected online or offline)", msg.topic)
                            }
                        }
                    }
                }
                Ok(()) = connections.changed() => {
                    connections.borrow_and_update();
                    tracing::info!("MQTT link reconnected: republishing discovery, availability and states");
                    let mut batch = Batch::default();
                    while let Ok(ev) = events.try_recv() {
                        self.fold(ev, &mut batch);
                    }
                    self.everything(&mut batch);
                    self.flush(batch).await;
                }
                _ = shutdown.wait() => break,
            }
        }
    }

    async fn sweep(&self, found: BTreeSet<String>) {
        let topics = &self.opts.topics;
        let devices = self.model.devices.values().map(|(d, _)| d);
        let expected = stale::expected(
            topics,
            self.opts.mode,
            devices,
            self.model.entities.values(),
        );
        for topic in found.difference(&expected) {
            tracing::info!(
                "removing stale Home Assistant discovery {topic} (left by an earlier run)"
            );
            self.publish(topic, String::new()).await;
            if let Some(device) =
                stale::device_of(topics, topic).filter(|d| !self.model.devices.contains_key(*d))
            {
                self.publish(&topics.availability(device), String::new())
                    .await;
            }
        }
    }

    fn everything(&self, batch: &mut Batch) {
        for (id, (_, available)) in &self.model.devices {
            batch.configs.insert(id.clone());
            batch.availability.push((id.clone(), *available));
        }
        // Not events: republishing the last one would fire it again in HA.
        batch.states.extend(
            self.model
                .entities
                .iter()
                .filter(|(_, spec)| spec.component != Component::Event)
                .map(|(id, _)| id.clone()),
        );
    }

    /// Whether a device is foreign (mirrored, or posted through the REST
    /// API): HA has those from their source, Hearth never announces them.
    fn is_foreign(&self, device_id: &str) -> bool {
        self.store
            .device_owner(device_id)
            .is_some_and(|o| crate::entity::store::is_foreign_owner(&o))
    }

    fn fold(&mut self, ev: StoreEvent, batch: &mut Batch) {
        let topics = &self.opts.topics;
        // Foreign devices and their entities never enter the model.
        let skip = match &ev {
            StoreEvent::DeviceAdded(d) => {
                if self.is_foreign(&d.id) {
                    self.foreign.insert(d.id.clone());
                }
                // Gone already: its removal is queued behind this.
                self.foreign.contains(&d.id) || self.store.device(&d.id).is_none()
            }
            StoreEvent::DeviceRemoved(d) => self.foreign.remove(&d.id),
            StoreEvent::EntityAdded(s) | StoreEvent::EntityRemoved(s) => {
                self.foreign.contains(&s.device_id)
            }
            StoreEvent::Availability { device_id, .. } => self.foreign.contains(device_id),
            StoreEvent::StateChanged(_) => false,
        };
        if skip {
            return;
        }
        match ev {
            StoreEvent::DeviceAdded(d) => {
                let available = self.model.devices.get(&d.id).is_none_or(|(_, a)| *a);
                batch.configs.insert(d.id.clone());
                batch.availability.push((d.id.clone(), available));
                self.model.devices.insert(d.id.clone(), (d, available));
            }
            StoreEvent::DeviceRemoved(d) => {
                self.model.devices.remove(&d.id);
                batch.configs.remove(&d.id);
                batch.removed.retain(|(dev, _, _)| *dev != d.id);
                if self.opts.mode == DiscoveryMode::Device {
                    batch.clears.push(topics.device_config(&d.id));
                }
                batch.clears.push(topics.availability(&d.id));
            }
            StoreEvent::EntityAdded(spec) => {
                batch.configs.insert(spec.device_id.clone());
                batch.states.insert(spec.entity_id.clone());
                self.model.entities.insert(spec.entity_id.clone(), spec);
            }
            StoreEvent::EntityRemoved(spec) => {
                self.model.entities.remove(&spec.entity_id);
                batch.states.remove(&spec.entity_id);
                batch.events.retain(|(id, _)| *id != spec.entity_id);
                batch.clears.push(topics.state(&spec.device_id, &spec.key));
                batch
                    .clears
                    .push(topics.attributes(&spec.device_id, &spec.key));
                match self.opts.mode {
                    DiscoveryMode::Device => {
                        batch.configs.insert(spec.device_id.clone());
                        batch.removed.push((
                            spec.device_id.clone(),
                            spec.key.clone(),
                            spec.component,
                        ));
                    }
                    DiscoveryMode::Entity => {
                        batch.clears.push(topics.entity_config(
                            spec.component.as_str(),
                            &spec.device_id,
                            &spec.key,
                        ));
                    }
                }
            }
            StoreEvent::Availability {
                device_id,
                available,
            } => {
                if let Some(entry) = self.model.devices.get_mut(&device_id) {
                    entry.1 = available;
                }
                batch.availability.push((device_id, available));
            }
            StoreEvent::StateChanged(change) => {
                let Some(new) = &change.new_state else { return };
                let is_event = self
                    .model
                    .entities
                    .get(&change.entity_id)
                    .is_some_and(|spec| spec.component == Component::Event);
                if is_event {
                    batch.events.push((change.entity_id.clone(), new.clone()));
                } else {
                    batch.states.insert(change.entity_id.clone());
                }
            }
        }
    }

    async fn flush(&self, batch: Batch) {
        let topics = &self.opts.topics;
        for topic in &batch.clears {
            self.publish(topic, String::new()).await;
        }
        for device_id in &batch.configs {
            let Some((device, _)) = self.model.devices.get(device_id) else {
                continue;
            };
            self.publish_configs(device, &batch.removed).await;
        }
        for (device_id, available) in &batch.availability {
            if device_id == BRIDGE_DEVICE || !self.model.devices.contains_key(device_id) {
                continue;
            }
            let payload = if *available { "online" } else { "offline" };
            self.publish(&topics.availability(device_id), payload.into())
                .await;
        }
        for entity_id in &batch.states {
            let (Some(spec), Some(state)) = (
                self.model.entities.get(entity_id),
                self.store.get(entity_id),
            ) else {
                continue;
            };
            if spec.component == Component::Event {
                continue; // fired from `batch.events`, never republished
            }
            if let Some(p) = payload::state_payload(spec, &state) {
                self.publish(&topics.state(&spec.device_id, &spec.key), p)
                    .await;
            }
            // `{}` when attributes went away, or HA keeps the old retained ones.
            let attrs = payload::attributes_payload(spec, &state);
            let had = self
                .with_attributes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(entity_id);
            if attrs.is_some() || had {
                let p = attrs.clone().unwrap_or_else(|| "{}".into());
                self.publish(&topics.attributes(&spec.device_id, &spec.key), p)
                    .await;
                let mut with = self
                    .with_attributes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if attrs.is_some() {
                    with.insert(entity_id.clone());
                } else {
                    with.remove(entity_id);
                }
            }
        }
        for (entity_id, state) in &batch.events {
            let Some(spec) = self.model.entities.get(entity_id) else {
                continue;
            };
            if let Some(p) = payload::state_payload(spec, state) {
                // Never retained: HA ignores a retained event (a replay),
                // and it would fire again on a new broker session.
                self.publish_with(&topics.state(&spec.device_id, &spec.key), p, false)
                    .await;
            }
        }
    }

    async fn publish_configs(&self, device: &Device, removed: &[(String, String, Component)]) {
        let topics = &self.opts.topics;
        let specs: Vec<&EntitySpec> = self
            .model
            .entities
            .values()
            .filter(|s| s.device_id == device.id)
            .map(|s| s.as_ref())
            .collect();
        match self.opts.mode {
            DiscoveryMode::Device => {
                let removed: Vec<(String, Component)> = removed
                    .iter()
                    .filter(|(d, _, _)| *d == device.id)
                    .map(|(_, k, c)| (k.clone(), *c))
                    .collect();
                let (config, errors) = payload::device_config(topics, device, &specs, &removed);
                for e in errors {
                    tracing::error!("not published to Home Assistant: {e}");
                }
                self.publish(&topics.device_config(&device.id), config.to_string())
                    .await;
            }
            DiscoveryMode::Entity => {
                for spec in specs {
                    match payload::entity_config(topics, device, spec) {
                        Ok(c) => {
                            let topic = topics.entity_config(
                                spec.component.as_str(),
                                &device.id,
                                &spec.key,
                            );
                            self.publish(&topic, c.to_string()).await;
                        }
                        Err(e) => tracing::error!("not published to Home Assistant: {e}"),
                    }
                }
            }
        }
    }

    async fn publish(&self, topic: &str, payload: String) {
        self.publish_with(topic, payload, true).await;
    }

    async fn publish_with(&self, topic: &str, payload: String, retain: bool) {
        if retain {
            self.claims.publishing(topic, payload.as_bytes());
        }
        if let Err(e) = self.link.publish(topic, payload, retain).await {
            // An event while the broker is down is refused (never sent
            // late); an error line per event would flood the log for the
            // whole outage, which the link already reports.
            if !retain && !self.link.is_connected() {
                tracing::debug!("{e:#}");
            } else {
                tracing::error!("{e:#}");
            }
        }
    }
}
