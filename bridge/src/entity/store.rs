//! The entity store: the single owner of devices, entities and their current
//! states. Writers call it; everyone else subscribes to its [`StoreEvent`]s.
//!
//! Every subscriber gets every event, in order, through its own unbounded
//! queue: a slow subscriber delays only itself and loses nothing. The store
//! also keeps a short numeric history per entity for plugins (`history`
//! import) until the recorder takes that over.

use super::{Context, Device, EntitySpec, State, StateChanged, StoreEvent};
use crate::clock::Clock;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Samples kept per entity for the `history` import.
const HISTORY_LEN: usize = 4096;

struct EntityEntry {
    spec: Arc<EntitySpec>,
    state: Option<State>,
    /// The last real state while the device is unavailable, restored when
    /// it comes back (drivers that publish only on change would otherwise
    /// leave the entity `unavailable`).
    held: Option<State>,
    history: VecDeque<(i64, f64)>,
    /// A service call's context waiting for the change it causes.
    expected: Option<Expected>,
}

/// See [`EntityStore::expect_change`].
struct Expected {
    context: Context,
    /// Attributes the call sets (its data's keys); a change of one of them,
    /// or of the state string, is the call's effect.
    keys: Vec<String>,
    until: Instant,
}

/// How long a call's context waits for its effect (drivers echo within
/// milliseconds; an IR gateway's report can take a second or two).
const EXPECT_FOR: Duration = Duration::from_secs(5);

/// HA's state of an entity whose device cannot be reached.
pub const UNAVAILABLE: &str = "unavailable";

/// Whether a device owner is foreign: entities Hearth mirrors or scripts
/// post (`foreign:<source>`), which HA has from their source already, so
/// Hearth's discovery publisher never announces them.
pub fn is_foreign_owner(owner: &str) -> bool {
    owner.starts_with("foreign:")
}

struct DeviceEntry {
    device: Arc<Device>,
    available: bool,
    /// Who registered it (driver name), to refuse id clashes between drivers.
    owner: String,
}

#[derive(Default)]
struct Inner {
    devices: BTreeMap<String, DeviceEntry>,
    entities: BTreeMap<String, EntityEntry>,
    subscribers: Vec<mpsc::UnboundedSender<StoreEvent>>,
}

impl Inner {
    fn emit(&mut self, event: StoreEvent) {
        self.subscribers.retain(|s| s.send(event.clone()).is_ok());
    }

    /// Removes an entity; HA announces that as a state change to nothing,
    /// then the entity's removal.
    fn remove_entity(&mut self, entity_id: &str) {
        let Some(e) = self.entities.remove(entity_id) else {
            return;
        };
        if let Some(old) = e.state {
            let ev = StateChanged {
                entity_id: entity_id.into(),
                old_state: Some(old),
                new_state: None,
            };
            self.emit(StoreEvent::StateChanged(Arc::new(ev)));
        }
        self.emit(StoreEvent::EntityRemoved(e.spec));
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            devices: self
                .devices
                .values()
                .map(|d| (d.device.clone(), d.available))
                .collect(),
            entities: self
                .entities
                .values()
                .map(|e| (e.spec.clone(), e.state.clone()))
                .collect(),
        }
    }
}

/// A snapshot handed to a new subscriber, consistent with its event queue.
pub struct Snapshot {
    pub devices: Vec<(Arc<Device>, bool)>,
    pub entities: Vec<(Arc<EntitySpec>, Option<State>)>,
}

/// Errors from writers; they name the offending id.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoreError {
    #[error("device `{0}` is registered by `{1}`; another driver may not reuse its id")]
    DeviceIdTaken(String, String),
    #[error("entity `{0}` belongs to unknown device `{1}`")]
    UnknownDevice(String, String),
    #[error("unknown entity `{0}`")]
    UnknownEntity(String),
    #[error("entity `{0}` is already registered by device `{1}`")]
    EntityIdTaken(String, String),
    /// Past one of HA's (or Hearth's) size limits: [`super::limits`].
    #[error(transparent)]
    TooLong(#[from] super::limits::TooLong),
}

pub struct EntityStore {
    inner: RwLock<Inner>,
    clock: Clock,
    /// Older numeric history than `HISTORY_LEN` samples (the recorder).
    archive: RwLock<Option<Arc<dyn HistoryArchive>>>,
}

/// Numeric history older than the store keeps in memory: the recorder's
/// database, when it runs ([`EntityStore::attach_archive`]).
pub trait HistoryArchive: Send + Sync {
    /// Samples of `entity_id` with `start_ms <= time < end_ms`, oldest
    /// first (an archive that fails answers empty, and logs why).
    fn numeric(&self, entity_id: &str, start_ms: i64, end_ms: i64) -> Vec<(i64, f64)>;
}

impl EntityEntry {
    fn take_expected(
        &mut self,
        old: Option<&State>,
        state: &str,
        attributes: &Map<String, Value>,
    ) -> Option<Context> {
        let x = self.expected.as_ref()?;
        if Instant::now() > x.until {
            self.expected = None;
            return None;
        }
        let explained = match old {
            None => true,
            Some(o) => {
                o.state != state
                    || x.keys
                        .iter()
                        .any(|k| o.attributes.get(k) != attributes.get(k))
            }
        };
        explained.then(|| self.expected.take().map(|x| x.context))?
    }
}

impl EntityStore {
    pub fn new(clock: Clock) -> Arc<Self> {
        Arc::new(EntityStore {
            inner: RwLock::new(Inner::default()),
            clock,
            archive: RwLock::new(None),
        })
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        // A panic elsewhere while holding the lock must not take the store down.
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// All current devices and entities, plus a queue of every later event.
    pub fn subscribe(&self) -> (Snapshot, mpsc::UnboundedReceiver<StoreEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner = self.write();
        inner.subscribers.push(tx);
        (inner.snapshot(), rx)
    }

    /// All current devices and entities.
    pub fn snapshot(&self) -> Snapshot {
        self.read().snapshot()
    }

    /// Adds or updates a device. Unchanged devices emit nothing.
    pub fn upsert_device(&self, owner: &str, device: Device) -> Result<(), StoreError> {
        super::limits::device(&device)?;
        let mut inner = self.write();
        if let Some(existing) = inner.devices.get_mut(&device.id) {
            if existing.owner != owner {
                return Err(StoreError::DeviceIdTaken(device.id, existing.owner.clone()));
            }
            if *existing.device == device {
                return Ok(());
            }
            existing.device = Arc::new(device);
            let d = existing.device.clone();
            inner.emit(StoreEvent::DeviceAdded(d));
            return Ok(());
        }
        let device = Arc::new(device);
        inner.devices.insert(
            device.id.clone(),
            DeviceEntry {
                device: device.clone(),
                available: true,
                owner: owner.into(),
            },
        );
        inner.emit(StoreEvent::DeviceAdded(device));
        Ok(())
    }

    /// Removes a device and all its entities.
    pub fn remove_device(&self, device_id: &str) {
        let mut inner = self.write();
        let Some(entry) = inner.devices.remove(device_id) else {
            return;
        };
        let ids: Vec<String> = inner
            .entities
            .values()
            .filter(|e| e.spec.device_id == device_id)
            .map(|e| e.spec.entity_id.clone())
            .collect();
        for id in ids {
            inner.remove_entity(&id);
        }
        inner.emit(StoreEvent::DeviceRemoved(entry.device));
    }

    /// Adds or updates an entity of a known device.
    pub fn upsert_entity(&self, spec: EntitySpec) -> Result<(), StoreError> {
        super::limits::entity(&spec)?;
        let mut inner = self.write();
        if !inner.devices.contains_key(&spec.device_id) {
            return Err(StoreError::UnknownDevice(spec.entity_id, spec.device_id));
        }
        // An id a foreign source (a mirrored discovery config, a REST post)
        // took first goes back to Hearth's own device: anyone on the broker
        // or with a token could otherwise keep a driver, plugin or the
        // usage module from registering, and the bridge from starting.
        let foreign = |inner: &Inner, device: &str| {
            inner
                .devices
                .get(device)
                .is_some_and(|d| is_foreign_owner(&d.owner))
        };
        if let Some(old) = inner
            .entities
            .get(&spec.entity_id)
            .map(|e| e.spec.device_id.clone())
            && old != spec.device_id
            && foreign(&inner, &old)
            && !foreign(&inner, &spec.device_id)
        {
            tracing::warn!(
                "entity id {} is Hearth's ({}): the foreign entity that held it (device {old}) is removed",
                spec.entity_id,
                spec.device_id
            );
            inner.remove_entity(&spec.entity_id);
        }
        if let Some(e) = inner.entities.get_mut(&spec.entity_id) {
            if e.spec.device_id != spec.device_id {
                return Err(StoreError::EntityIdTaken(
                    spec.entity_id,
                    e.spec.device_id.clone(),
                ));
            }
            if *e.spec == spec {
                return Ok(());
            }
            e.spec = Arc::new(spec);
            let s = e.spec.clone();
            inner.emit(StoreEvent::EntityAdded(s));
            return Ok(());
        }
        let spec = Arc::new(spec);
        inner.entities.insert(
            spec.entity_id.clone(),
            EntityEntry {
                spec: spec.clone(),
                state: None,
                held: None,
                history: VecDeque::new(),
                expected: None,
            },
        );
        inner.emit(StoreEvent::EntityAdded(spec));
        Ok(())
    }

    /// Removes one entity.
    pub fn remove_entity(&self, entity_id: &str) {
        self.write().remove_entity(entity_id);
    }

    /// Marks a device (un)available. Its entities' states become
    /// `unavailable` (HA's rule), so plugins and subscribers never act on a
    /// frozen reading; when it returns, their last states come back until
    /// the driver reports new ones.
    pub fn set_availability(&self, device_id: &str, available: bool) {
        let now = self.clock.now_ms();
        let mut inner = self.write();
        let Some(d) = inner.devices.get_mut(device_id) else {
            return;
        };
        if d.available == available {
            return;
        }
        d.available = available;
        inner.emit(StoreEvent::Availability {
            device_id: device_id.into(),
            available,
        });
        let ids: Vec<String> = inner
            .entities
            .values()
            .filter(|e| e.spec.device_id == device_id)
            .map(|e| e.spec.entity_id.clone())
            .collect();
        for id in ids {
            let Some(entry) = inner.entities.get_mut(&id) else {
                continue;
            };
            let old = entry.state.clone();
            let new = if available {
                match (entry.held.take(), &old) {
                    // Also a first reading, reported while the device was
                    // unavailable (nothing shown yet). A held report equal to
                    // what is shown (a driver that reported `unavailable`
                    // itself) is no change.
                    (Some(held), o)
                        if o.as_ref().is_none_or(|o| {
                            o.state == UNAVAILABLE
                                && (o.state != held.state || o.attributes != held.attributes)
                        }) =>
                    {
                        // HA's rule: last_changed moves with the state string.
                        let last_changed = match o {
                            Some(o) if o.state == held.state => o.last_changed,
                            _ => now,
                        };
                        Some(State {
                            last_changed,
                            last_updated: now,
                            context: Context::default(),
                            ..held
                        })
                    }
                    _ => None,
                }
            } else {
                match &old {
                    Some(o) if o.state != UNAVAILABLE => {
                        entry.held = old.clone();
                        Some(State {
                            entity_id: id.clone(),
                            state: UNAVAILABLE.into(),
                            attributes: o.attributes.clone(),
                            last_changed: now,
                            last_updated: now,
                            context: Context::default(),
                        })
                    }
                    _ => None,
                }
            };
            if let Some(new) = new {
                entry.state = Some(new.clone());
                let ev = StateChanged {
                    entity_id: id.clone(),
                    old_state: old,
                    new_state: Some(new),
                };
                inner.emit(StoreEvent::StateChanged(Arc::new(ev)));
            }
        }
    }

    /// Sets an entity's state. Emits `state_changed` only when state or
    /// attributes differ; `last_changed` moves only when the state string does
    /// (HA's rules).
    pub fn set_state(
        &self,
        entity_id: &str,
        state: impl Into<String>,
        attributes: Map<String, Value>,
    ) -> Result<(), StoreError> {
        self.put_state(entity_id, state.into(), attributes, None)
    }

    /// Sets a state measured in the past, at `at_ms` (a reading a sensor
    /// node kept while it was offline and sent late, with its age): the
    /// state's `last_updated` (and `last_changed`, if the state string
    /// changes) is `at_ms`, so the recorder, which records each state at its
    /// `last_updated`, files it at the time it was measured, and the
    /// in-memory history keeps it in time order. A time in the future is
    /// taken as now. The caller decides whether the reading is newer than
    /// what the entity shows (the store cannot: a state restored when a
    /// device comes back carries the time of the restore, not of its
    /// reading); see `drivers::esp32_node`.
    pub fn set_state_at(
        &self,
        entity_id: &str,
        state: impl Into<String>,
        attributes: Map<String, Value>,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.put_state(entity_id, state.into(), attributes, Some(at_ms))
    }

    fn put_state(
        &self,
        entity_id: &str,
        state: String,
        attributes: Map<String, Value>,
        at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let now = match at_ms {
            Some(at) => at.min(self.clock.now_ms()),
            None => self.clock.now_ms(),
        };
        super::limits::state(entity_id, &state)?;
        let mut inner = self.write();
        let device_available = inner
            .entities
            .get(entity_id)
            .and_then(|e| inner.devices.get(&e.spec.device_id))
            .is_none_or(|d| d.available);
        let entry = inner
            .entities
            .get_mut(entity_id)
            .ok_or_else(|| StoreError::UnknownEntity(entity_id.into()))?;
        if !device_available {
            // Shown when the device returns; until then it stays unavailable.
            let held = State {
                entity_id: entity_id.into(),
                state,
                attributes,
                last_changed: now,
                last_updated: now,
                context: Context::default(),
            };
            entry.held = Some(held);
            return Ok(());
        }
        let old = entry.state.clone();
        let last_changed = match &old {
            Some(o) if o.state == state => {
                if o.attributes == attributes {
                    return Ok(()); // unchanged, late or not (as live readings)
                }
                // A past state never changed after it was updated.
                o.last_changed.min(now)
            }
            _ => now,
        };
        let context = entry
            .take_expected(old.as_ref(), &state, &attributes)
            .unwrap_or_default();
        let new = State {
            entity_id: entity_id.into(),
            state,
            attributes,
            last_changed,
            last_updated: now,
            context,
        };
        if let Some(v) = super::samples::sample_value(entity_id, &new.state) {
            if entry.history.len() == HISTORY_LEN {
                entry.history.pop_front();
            }
            // In time order: a past state goes before any later sample.
            let at = entry.history.iter().rposition(|(t, _)| *t <= now);
            entry.history.insert(at.map_or(0, |i| i + 1), (now, v));
        }
        entry.state = Some(new.clone());
        let ev = StateChanged {
            entity_id: entity_id.into(),
            old_state: old,
            new_state: Some(new),
        };
        inner.emit(StoreEvent::StateChanged(Arc::new(ev)));
        Ok(())
    }

    /// Tags the next change of `entity_id` that a service call with `context`
    /// explains (its state string, or one of the attributes in `keys`,
    /// changes within a few seconds) with that context, as HA does for state
    /// written while a service call runs. Unrelated updates (a new sensor
    /// reading on a climate entity) keep their own fresh context.
    pub fn expect_change(&self, entity_id: &str, context: &Context, keys: Vec<String>) {
        if let Some(e) = self.write().entities.get_mut(entity_id) {
            e.expected = Some(Expected {
                context: context.clone(),
                keys,
                until: Instant::now() + EXPECT_FOR,
            });
        }
    }

    /// Withdraws an expectation whose call failed.
    pub fn forget_expected(&self, entity_id: &str, context: &Context) {
        if let Some(e) = self.write().entities.get_mut(entity_id)
            && e.expected
                .as_ref()
                .is_some_and(|x| x.context.id == context.id)
        {
            e.expected = None;
        }
    }

    /// Updates only some attributes, keeping the state string.
    pub fn merge_attributes(
        &self,
        entity_id: &str,
        attrs: Map<String, Value>,
    ) -> Result<(), StoreError> {
        let current = self.get(entity_id);
        let (state, mut merged) = match current {
            Some(s) => (s.state, s.attributes),
            None => ("unknown".to_string(), Map::new()),
        };
        merged.extend(attrs);
        self.set_state(entity_id, state, merged)
    }

    pub fn get(&self, entity_id: &str) -> Option<State> {
        self.read().entities.get(entity_id)?.state.clone()
    }

    pub fn spec(&self, entity_id: &str) -> Option<Arc<EntitySpec>> {
        Some(self.read().entities.get(entity_id)?.spec.clone())
    }

    /// Who registered a device (the `owner` given to
    /// [`upsert_device`](Self::upsert_device)).
    pub fn device_owner(&self, device_id: &str) -> Option<String> {
        Some(self.read().devices.get(device_id)?.owner.clone())
    }

    pub fn device(&self, device_id: &str) -> Option<(Arc<Device>, bool)> {
        let inner = self.read();
        let d = inner.devices.get(device_id)?;
        Some((d.device.clone(), d.available))
    }

    /// Whether the entity's device is available.
    pub fn entity_available(&self, entity_id: &str) -> bool {
        let inner = self.read();
        inner
            .entities
            .get(entity_id)
            .and_then(|e| inner.devices.get(&e.spec.device_id))
            .is_some_and(|d| d.available)
    }

    /// All current states.
    pub fn states(&self) -> Vec<State> {
        self.read()
            .entities
            .values()
            .filter_map(|e| e.state.clone())
            .collect()
    }

    /// Lets [`history`](Self::history) reach further back than memory.
    pub fn attach_archive(&self, archive: Arc<dyn HistoryArchive>) {
        *self.archive.write().unwrap_or_else(|e| e.into_inner()) = Some(archive);
    }

    /// Samples in `[start_ms, end_ms]`, oldest first (numbers, and binary
    /// states as 1/0: [`super::samples`]): from memory
    /// (the last `HISTORY_LEN` per entity) and, for anything older than the
    /// oldest sample in memory, from the archive when one is attached.
    pub fn history(&self, entity_id: &str, start_ms: i64, end_ms: i64) -> Vec<(i64, f64)> {
        let (mut recent, oldest) = {
            let inner = self.read();
            match inner.entities.get(entity_id) {
                Some(e) => (
                    e.history
                        .iter()
                        .copied()
                        .filter(|(t, _)| (start_ms..=end_ms).contains(t))
                        .collect(),
                    e.history.front().map(|(t, _)| *t),
                ),
                None => (Vec::new(), None),
            }
        };
        // Not under the store's lock: the archive may read a disk.
        let archive = self
            .archive
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let until = oldest.unwrap_or(i64::MAX).min(end_ms.saturating_add(1));
        match archive {
            Some(a) if start_ms < until => {
                let mut older = a.numeric(entity_id, start_ms, until);
                older.append(&mut recent);
                older
            }
            _ => recent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::{Component, EntitySpec};

    use crate::entity::fixtures::device;

    /// A store with device `d` and `sensor.d_a` in `state`.
    fn store_with_sensor(state: &str) -> Arc<EntityStore> {
        let store = EntityStore::new(Clock::real());
        store.upsert_device("t", device("d")).unwrap();
        store
            .upsert_entity(EntitySpec::new("d", "a", Component::Sensor))
            .unwrap();
        store.set_state("sensor.d_a", state, Map::new()).unwrap();
        store
    }

    #[test]
    fn state_changed_only_on_change_and_last_changed_follows_ha() {
        let store = EntityStore::new(Clock::simulated(1000.0));
        store.upsert_device("t", device("d")).unwrap();
        let spec = EntitySpec::new("d", "temperature", Component::Sensor);
        let id = spec.entity_id.clone();
        store.upsert_entity(spec).unwrap();
        let (_, mut rx) = store.subscribe();
        store.set_state(&id, "21.5", Map::new()).unwrap();
        let first = store.get(&id).unwrap();
        store.set_state(&id, "21.5", Map::new()).unwrap(); // no event
        std::thread::sleep(std::time::Duration::from_millis(5));
        let mut attrs = Map::new();
        attrs.insert("x".into(), 1.into());
        store.set_state(&id, "21.5", attrs).unwrap();
        let second = store.get(&id).unwrap();
        assert_eq!(second.last_changed, first.last_changed);
        assert!(second.last_updated > first.last_updated);
        let mut n = 0;
        while let Ok(ev) = rx.try_recv() {
            assert!(matches!(ev, StoreEvent::StateChanged(_)));
            n += 1;
        }
        assert_eq!(n, 2);
        assert_eq!(store.history(&id, 0, i64::MAX).len(), 2);
    }

    #[test]
    fn a_past_state_keeps_its_time_in_the_state_the_event_and_history() {
        let now = 1_700_000_000_000;
        let (clock, _) = Clock::manual(now);
        let store = EntityStore::new(clock);
        store.upsert_device("t", device("d")).unwrap();
        store
            .upsert_entity(EntitySpec::new("d", "a", Component::Sensor))
            .unwrap();
        store.set_state("sensor.d_a", "20", Map::new()).unwrap();
        let (_, mut rx) = store.subscribe();
        store
            .set_state_at("sensor.d_a", "21", Map::new(), now - 60_000)
            .unwrap();
        let s = store.get("sensor.d_a").unwrap();
        assert_eq!(
            (s.last_updated, s.last_changed),
            (now - 60_000, now - 60_000)
        );
        let Ok(StoreEvent::StateChanged(ev)) = rx.try_recv() else {
            panic!("no state_changed")
        };
        // What the recorder files: the state's own time.
        assert_eq!(ev.new_state.as_ref().unwrap().last_updated, now - 60_000);
        // History stays in time order: the past sample before the live one.
        let h = store.history("sensor.d_a", 0, i64::MAX);
        assert_eq!(h.len(), 2);
        assert_eq!(h, vec![(now - 60_000, 21.0), (now, 20.0)]);
        // The future is now.
        store
            .set_state_at("sensor.d_a", "22", Map::new(), i64::MAX)
            .unwrap();
        assert_eq!(store.get("sensor.d_a").unwrap().last_updated, now);
    }

    #[test]
    fn unavailable_devices_make_their_entities_unavailable_and_come_back() {
        let store = store_with_sensor("21.5");
        store.set_availability("d", false);
        assert_eq!(store.get("sensor.d_a").unwrap().state, UNAVAILABLE);
        assert!(store.get("sensor.d_a").unwrap().number().is_none());
        store.set_availability("d", true);
        assert_eq!(store.get("sensor.d_a").unwrap().state, "21.5");
        // A reading while unavailable wins over the held one.
        store.set_availability("d", false);
        store.set_state("sensor.d_a", "22", Map::new()).unwrap();
        store.set_availability("d", true);
        assert_eq!(store.get("sensor.d_a").unwrap().state, "22");
    }

    #[test]
    fn a_calls_context_goes_to_the_change_it_explains() {
        let store = store_with_sensor("20");
        let attrs = |t: f64, cur: f64| {
            let mut m = Map::new();
            m.insert("temperature".into(), t.into());
            m.insert("current_temperature".into(), cur.into());
            m
        };
        store
            .set_state("sensor.d_a", "cool", attrs(24.0, 25.0))
            .unwrap();
        let call = Context::new(Some("tok".into()));
        store.expect_change("sensor.d_a", &call, vec!["temperature".into()]);
        // A new reading is not the call's effect.
        store
            .set_state("sensor.d_a", "cool", attrs(24.0, 25.5))
            .unwrap();
        assert_ne!(store.get("sensor.d_a").unwrap().context.id, call.id);
        // The target moving is; the context is used once.
        store
            .set_state("sensor.d_a", "cool", attrs(22.0, 25.5))
            .unwrap();
        assert_eq!(store.get("sensor.d_a").unwrap().context, call);
        store
            .set_state("sensor.d_a", "off", attrs(22.0, 25.5))
            .unwrap();
        assert_ne!(store.get("sensor.d_a").unwrap().context.id, call.id);
        // A failed call withdraws its expectation.
        let failed = Context::new(None);
        store.expect_change("sensor.d_a", &failed, vec![]);
        store.forget_expected("sensor.d_a", &failed);
        store
            .set_state("sensor.d_a", "cool", attrs(22.0, 25.5))
            .unwrap();
        assert_ne!(store.get("sensor.d_a").unwrap().context.id, failed.id);
    }

    #[test]
    fn drivers_cannot_steal_device_ids() {
        let store = EntityStore::new(Clock::real());
        store.upsert_device("a", device("d")).unwrap();
        assert_eq!(
            store.upsert_device("b", device("d")),
            Err(StoreError::DeviceIdTaken("d".into(), "a".into()))
        );
        assert!(matches!(
            store.upsert_entity(EntitySpec::new("nope", "x", Component::Sensor)),
            Err(StoreError::UnknownDevice(..))
        ));
    }

    #[test]
    fn a_foreign_entity_gives_its_id_back_to_hearth_but_never_takes_hearths() {
        let store = EntityStore::new(Clock::real());
        store
            .upsert_device("foreign:mirror", device("laptop"))
            .unwrap();
        store.upsert_device("usage", device("d")).unwrap();
        let mut squatter = EntitySpec::new("laptop", "x", Component::Sensor);
        squatter.entity_id = "sensor.d_a".into();
        store.upsert_entity(squatter.clone()).unwrap();
        store.set_state("sensor.d_a", "7", Map::new()).unwrap();
        // Hearth's own registration takes the id back instead of failing.
        store
            .upsert_entity(EntitySpec::new("d", "a", Component::Sensor))
            .unwrap();
        assert_eq!(store.spec("sensor.d_a").unwrap().device_id, "d");
        assert!(
            store.get("sensor.d_a").is_none(),
            "the squatter's state is gone"
        );
        // A foreign source cannot take it from Hearth.
        assert!(matches!(
            store.upsert_entity(squatter),
            Err(StoreError::EntityIdTaken(..))
        ));
    }

    #[test]
    fn removing_a_device_removes_its_entities() {
        let store = store_with_sensor("1");
        let (_, mut rx) = store.subscribe();
        store.remove_device("d");
        assert!(store.get("sensor.d_a").is_none());
        let kinds: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| match e {
                StoreEvent::StateChanged(c) => format!("state:{}", c.new_state.is_none()),
                StoreEvent::EntityRemoved(_) => "entity_removed".into(),
                StoreEvent::DeviceRemoved(_) => "device_removed".into(),
                _ => "other".into(),
            })
            .collect();
        assert_eq!(kinds, ["state:true", "entity_removed", "device_removed"]);
    }
}
