//! The last commanded state of every device, kept in
//! `<data-dir>/restore_state.json` and re-applied at start: Home
//! Assistant's `restore_state` (`homeassistant/helpers/restore_state.py`,
//! `RestoreEntity`) for a bridge whose devices forget (an IR air
//! conditioner cannot be asked its setpoint; a twin starts afresh).
//!
//! Who owns what:
//! - [`Restorer`] owns the file. It watches the entity store (it never
//!   writes to it) and keeps, for each entity that accepts commands
//!   (`router.handles`), the part of its state a command sets
//!   ([`Commanded`]): a climate's hvac mode and target temperature, a
//!   switch's on/off, a valve's position. The file is written atomically
//!   (temporary file + rename, versioned JSON) [`DEBOUNCE`] after a change
//!   and at a clean stop ([`Restorer::flush`]). HA writes every 15 min and
//!   at stop; commanded states change rarely and the file is small, so
//!   Hearth writes within a second: a kill loses at most the last second.
//! - At start, after the drivers registered their entities and before the
//!   plugins load, [`Restorer::apply_ready`] sends each saved state that
//!   differs from the device's through the **service router**, so the
//!   safety envelope applies exactly as for any command. Entities that
//!   appear later (ESP32 nodes announce themselves) are restored when they
//!   first become available, once.
//!
//! Which wins when the config and the saved state disagree:
//! - the config's limits and envelope always win: a saved target outside
//!   today's range is clamped or refused by the envelope as any command
//!   would be, and the refusal is logged (`not restored`);
//! - the saved state wins over a config's *initial* value (`ir_ac`'s
//!   `target_temp` is "until someone sets one");
//! - a `turn_on` refused by a minimum off time (the bridge cannot know how
//!   long the compressor was off before it started, so the envelope counts
//!   from the start) is retried every [`RETRY_EVERY_MS`] simulated ms for
//!   [`RETRY_FOR_MS`], unless the entity changed meanwhile (a controller
//!   took over);
//! - an entity missing from this run keeps its entry for
//!   [`STALE_AFTER_MS`] (HA's 7 days), then it is dropped;
//! - plugins load after the restore and drive what they claim: a restored
//!   state is where they start from, not a lock. So a refused `turn_on` is
//!   not retried once a plugin drives the entity, and a device that
//!   appears after the plugins loaded is not restored if a plugin drives
//!   it (the plugin's command is newer than the saved one).

use super::{CallSource, Component, EntityStore, ServiceCall, ServiceError, ServiceRouter};
use super::{State, StoreEvent};
use crate::shutdown::Shutdown;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The file in the data directory (HA's is `.storage/core.restore_state`).
pub const FILE: &str = "restore_state.json";
const VERSION: u32 = 1;

/// Wall time from a change to its write: coalesces a burst (a climate's
/// mode and target set together) into one write; a kill loses at most this.
pub const DEBOUNCE: Duration = Duration::from_secs(1);

/// Saved states older than this (bridge clock) are dropped: HA's
/// `STATE_EXPIRATION` (7 days) for entities that did not come back.
pub const STALE_AFTER_MS: i64 = 7 * 86_400_000;

/// Simulated ms between two tries of a restored `turn_on` the envelope's
/// minimum off time refused (the router logs each refusal: a few per
/// restart, not one per second).
pub const RETRY_EVERY_MS: f64 = 30_000.0;

/// How long (simulated ms) a refused `turn_on` is retried: longer than any
/// sane minimum off time (the examples use 180 s).
pub const RETRY_FOR_MS: i64 = 15 * 60_000;

/// How far back (ms) [`last_recorded`] looks: a counter is continued from
/// a record up to 400 days old.
pub const RESUME_LOOKBACK_MS: i64 = 400 * 86_400_000;

/// The last recorded value of a numeric entity (the recorder's, when it
/// runs; what the store still holds otherwise) within
/// [`RESUME_LOOKBACK_MS`] before `now_ms`, if finite and ≥ 0: where a
/// driver continues an energy total after a restart.
pub fn last_recorded(store: &EntityStore, entity_id: &str, now_ms: i64) -> Option<f64> {
    store
        .history(entity_id, now_ms - RESUME_LOOKBACK_MS, now_ms)
        .last()
        .map(|(_, v)| *v)
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// The part of an entity's state that a command sets, per HA component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "component", rename_all = "snake_case")]
pub enum Commanded {
    /// `climate.set_hvac_mode` and `climate.set_temperature` (°C).
    Climate {
        hvac_mode: String,
        temperature: Option<f64>,
    },
    /// `switch.turn_on` / `switch.turn_off`.
    Switch { on: bool },
    /// `valve.set_valve_position` (%, HA's `current_position`) when the
    /// valve reports a position, else `open_valve` / `close_valve`.
    Valve { position: Option<f64>, open: bool },
    /// `select.select_option`.
    Select { option: String },
    /// `number.set_value`, in the entity's unit.
    Number { value: f64 },
}

impl Commanded {
    /// What `state` shows of it; `None` for components without commands,
    /// and for `unavailable`/`unknown` or moving states (nothing to keep).
    pub fn of(component: Component, state: &State) -> Option<Commanded> {
        let s = state.state.as_str();
        if matches!(s, "unavailable" | "unknown" | "") {
            return None;
        }
        let number = |k: &str| {
            state
                .attributes
                .get(k)
                .and_then(Value::as_f64)
                .filter(|v| v.is_finite())
        };
        match component {
            Component::Climate => Some(Commanded::Climate {
                hvac_mode: s.to_string(),
                temperature: number("temperature"),
            }),
            Component::Switch => match s {
                "on" => Some(Commanded::Switch { on: true }),
                "off" => Some(Commanded::Switch { on: false }),
                _ => None,
            },
            Component::Valve => {
                let position = number("current_position");
                let open = match (position, s) {
                    (Some(p), _) => p > 0.0,
                    (None, "open") => true,
                    (None, "closed") => false,
                    _ => return None,
                };
                Some(Commanded::Valve { position, open })
            }
            Component::Select => Some(Commanded::Select { option: s.into() }),
            Component::Number => state.number().map(|value| Commanded::Number { value }),
            _ => None,
        }
    }

    /// HA's domain of the component.
    fn domain(&self) -> &'static str {
        match self {
            Commanded::Climate { .. } => "climate",
            Commanded::Switch { .. } => "switch",
            Commanded::Valve { .. } => "valve",
            Commanded::Select { .. } => "select",
            Commanded::Number { .. } => "number",
        }
    }

    /// The service calls (service, data) that take an entity showing
    /// `current` to this state; none when it is already there. A climate's
    /// mode goes first, so a target reaches an AC that is on.
    pub fn calls(&self, current: Option<&Commanded>) -> Vec<(&'static str, Map<String, Value>)> {
        let data = |v: Value| match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut out = Vec::new();
        match (self, current) {
            (
                Commanded::Climate {
                    hvac_mode,
                    temperature,
                },
                cur,
            ) => {
                let (cur_mode, cur_temp) = match cur {
                    Some(Commanded::Climate {
                        hvac_mode,
                        temperature,
                    }) => (Some(hvac_mode.as_str()), *temperature),
                    _ => (None, None),
                };
                if cur_mode != Some(hvac_mode.as_str()) {
                    out.push(("set_hvac_mode", data(json!({ "hvac_mode": hvac_mode }))));
                }
                if let Some(t) = temperature.filter(|t| cur_temp != Some(*t)) {
                    out.push(("set_temperature", data(json!({ "temperature": t }))));
                }
            }
            (Commanded::Switch { on }, cur) => {
                if cur != Some(self) {
                    out.push((if *on { "turn_on" } else { "turn_off" }, Map::new()));
                }
            }
            (Commanded::Valve { position, open }, cur) => {
                if cur != Some(self) {
                    match position {
                        Some(p) => out.push(("set_valve_position", data(json!({ "position": p })))),
                        None if *open => out.push(("open_valve", Map::new())),
                        None => out.push(("close_valve", Map::new())),
                    }
                }
            }
            (Commanded::Select { option }, cur) => {
                if cur != Some(self) {
                    out.push(("select_option", data(json!({ "option": option }))));
                }
            }
            (Commanded::Number { value }, cur) => {
                if cur != Some(self) {
                    out.push(("set_value", data(json!({ "value": value }))));
                }
            }
        }
        out
    }
}

/// One entity in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedState {
    #[serde(flatten)]
    pub commanded: Commanded,
    /// When it was last seen so (bridge clock, ms since the Unix epoch).
    pub saved_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    entities: BTreeMap<String, SavedState>,
}

/// Where an entity's entry stands in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Saved by an earlier run, not yet re-applied: live changes (a
    /// driver's start-up default) do not overwrite it.
    Pending,
    /// Its calls are on their way through the router.
    Applying,
    /// Follows the entity's live state.
    Tracking,
}

struct Entry {
    saved: SavedState,
    phase: Phase,
}

#[derive(Default)]
struct Entries {
    map: BTreeMap<String, Entry>,
    /// Changed since the last write.
    dirty: bool,
}

/// See the module doc.
pub struct Restorer {
    path: PathBuf,
    store: Arc<EntityStore>,
    router: Arc<ServiceRouter>,
    shutdown: Shutdown,
    entries: Mutex<Entries>,
    /// Set after the start-up pass: from then on the watcher restores
    /// entities as they appear.
    started: AtomicBool,
    /// Poked on each change; the watcher writes [`DEBOUNCE`] later.
    changed: tokio::sync::Notify,
    /// Whether a plugin drives an entity (set once the plugins exist).
    driven: std::sync::OnceLock<DrivenCheck>,
}

/// Tells whether a plugin drives an entity.
pub type DrivenCheck = Box<dyn Fn(&str) -> bool + Send + Sync>;

impl Restorer {
    /// Reads `<data_dir>/restore_state.json` (missing: nothing to restore;
    /// damaged or of another version: logged, set aside, nothing restored).
    pub fn load(
        data_dir: &Path,
        store: Arc<EntityStore>,
        router: Arc<ServiceRouter>,
        shutdown: Shutdown,
    ) -> Arc<Restorer> {
        let path = data_dir.join(FILE);
        let now = store.clock().now_ms();
        let mut map = BTreeMap::new();
        let file = crate::alerts::persist::read_versioned(
            &path,
            "restore state file",
            VERSION,
            |f: &File| f.version,
        );
        let mut stale = 0;
        for (id, saved) in file.map(|f| f.entities).unwrap_or_default() {
            if now - saved.saved_ms > STALE_AFTER_MS {
                stale += 1;
                continue;
            }
            let phase = Phase::Pending;
            map.insert(id, Entry { saved, phase });
        }
        if !map.is_empty() || stale > 0 {
            tracing::info!(
                "restore: {} saved device state(s) in {}{}",
                map.len(),
                path.display(),
                if stale > 0 {
                    format!("; {stale} older than 7 days dropped")
                } else {
                    String::new()
                }
            );
        }
        Arc::new(Restorer {
            path,
            store,
            router,
            shutdown,
            entries: Mutex::new(Entries {
                dirty: stale > 0,
                map,
            }),
            started: AtomicBool::new(false),
            changed: tokio::sync::Notify::new(),
            driven: std::sync::OnceLock::new(),
        })
    }

    /// How to tell that a plugin drives an entity; from then on such
    /// entities are the plugins' (see the module doc).
    pub fn set_driven_check(&self, check: DrivenCheck) {
        let _ = self.driven.set(check);
    }

    fn is_driven(&self, entity_id: &str) -> bool {
        self.driven.get().is_some_and(|d| d(entity_id))
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The saved states (what the file holds or will hold at the next write).
    pub fn saved(&self) -> BTreeMap<String, SavedState> {
        let e = self.entries();
        e.map
            .iter()
            .map(|(k, v)| (k.clone(), v.saved.clone()))
            .collect()
    }

    /// What the entity shows now of its commanded state.
    fn current(&self, entity_id: &str) -> Option<Commanded> {
        let spec = self.store.spec(entity_id)?;
        Commanded::of(spec.component, &self.store.get(entity_id)?)
    }

    /// Whether a saved state can be sent now: the router has a driver for
    /// it, its device is available and it has a state.
    fn ready(&self, entity_id: &str) -> bool {
        self.router.handles(entity_id)
            && self.store.entity_available(entity_id)
            && self.store.get(entity_id).is_some()
    }

    /// Takes the pending entries that are ready into `Applying`.
    fn claim_ready(&self, only: Option<&str>) -> Vec<(String, Commanded)> {
        let ids: Vec<String> = {
            let e = self.entries();
            e.map
                .iter()
                .filter(|(id, en)| en.phase == Phase::Pending && only.is_none_or(|o| o == *id))
                .map(|(id, _)| id.clone())
                .collect()
        };
        let ready: Vec<String> = ids.into_iter().filter(|id| self.ready(id)).collect();
        let mut e = self.entries();
        ready
            .into_iter()
            .filter_map(|id| {
                let en = e.map.get_mut(&id).filter(|en| en.phase == Phase::Pending)?;
                en.phase = Phase::Applying;
                Some((id, en.saved.commanded.clone()))
            })
            .collect()
    }

    /// The start-up pass: restores every saved state whose entity is ready,
    /// one entity after another, and returns when each has been sent (a
    /// refused `turn_on` keeps retrying in the background). Later entities
    /// are the watcher's.
    pub async fn apply_ready(self: &Arc<Self>) {
        for (id, saved) in self.claim_ready(None) {
            let me = self.clone();
            // The first try is awaited; retries continue on their own.
            let (first, rest) = tokio::sync::oneshot::channel();
            tokio::spawn(async move { me.apply(id, saved, Some(first)).await });
            let _ = rest.await;
        }
        self.started.store(true, Ordering::Release);
        // Entities that became ready while the pass ran.
        self.apply_late(None);
    }

    fn apply_late(self: &Arc<Self>, only: Option<&str>) {
        if !self.started.load(Ordering::Acquire) {
            return;
        }
        for (id, saved) in self.claim_ready(only) {
            if self.is_driven(&id) {
                tracing::info!(
                    "restore: {id} appeared after its plugin started; not restored (the plugin drives it)"
                );
                self.finish(&id);
                continue;
            }
            let me = self.clone();
            tokio::spawn(async move { me.apply(id, saved, None).await });
        }
    }

    /// Sends the calls that take `entity_id` to `saved`; `first` is told
    /// when the first try of every call is done.
    async fn apply(
        self: Arc<Self>,
        entity_id: String,
        saved: Commanded,
        mut first: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        let clock = self.store.clock();
        let calls = saved.calls(self.current(&entity_id).as_ref());
        'calls: for (service, data) in calls {
            let give_up_at = clock.now_ms() + RETRY_FOR_MS;
            loop {
                let call = ServiceCall::new(
                    saved.domain(),
                    service,
                    &entity_id,
                    data.clone(),
                    CallSource::Internal,
                );
                let shown = Value::Object(data.clone());
                match self.router.call(call).await {
                    Ok(()) => {
                        tracing::info!(
                            "restore: {entity_id}: {}.{service} {shown} (the last commanded state)",
                            saved.domain()
                        );
                        break;
                    }
                    Err(ServiceError::Refused { reason, .. })
                        if service == "turn_on" && clock.now_ms() < give_up_at =>
                    {
                        if let Some(f) = first.take() {
                            let _ = f.send(());
                        }
                        let before = self.current(&entity_id);
                        tracing::info!(
                            "restore: {entity_id}: turn_on refused for now ({reason}); retrying in {:.0} s",
                            RETRY_EVERY_MS / 1000.0
                        );
                        let mut shutdown = self.shutdown.clone();
                        tokio::select! {
                            _ = clock.sleep_ms(RETRY_EVERY_MS) => {}
                            // Stopping mid-retry: the saved command still
                            // stands (the next start tries again), so the
                            // entry must not start tracking the device's
                            // current (not yet commanded) state.
                            _ = shutdown.wait() => {
                                if let Some(f) = first.take() {
                                    let _ = f.send(());
                                }
                                return;
                            }
                        }
                        if self.current(&entity_id) != before || self.is_driven(&entity_id) {
                            tracing::info!(
                                "restore: {entity_id}: turn_on not retried: the entity changed or a plugin drives it (its controller decides)"
                            );
                            break 'calls;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(
                            "restore: {entity_id}: {}.{service} {shown} not restored: {e} (the config and the safety envelope win over the saved state)",
                            saved.domain()
                        );
                        break;
                    }
                }
            }
        }
        if let Some(f) = first.take() {
            let _ = f.send(());
        }
        self.finish(&entity_id);
    }

    /// From now on the entry follows the entity.
    fn finish(&self, entity_id: &str) {
        let current = self.current(entity_id);
        let now = self.store.clock().now_ms();
        let mut e = self.entries();
        if let Some(en) = e.map.get_mut(entity_id) {
            en.phase = Phase::Tracking;
            if let Some(c) = current {
                en.saved = SavedState {
                    commanded: c,
                    saved_ms: now,
                };
            }
        }
        e.dirty = true;
        drop(e);
        self.changed.notify_one();
    }

    /// Follows one live state: keeps it when it is a commandable entity's
    /// and its commanded part changed.
    fn track(&self, state: &State) {
        let id = &state.entity_id;
        if !self.router.handles(id) {
            return;
        }
        let Some(spec) = self.store.spec(id) else {
            return;
        };
        let Some(commanded) = Commanded::of(spec.component, state) else {
            return;
        };
        let now = self.store.clock().now_ms();
        let mut e = self.entries();
        match e.map.get_mut(id) {
            Some(en) if en.phase != Phase::Tracking => return,
            Some(en) if en.saved.commanded == commanded => return,
            Some(en) => {
                en.saved = SavedState {
                    commanded,
                    saved_ms: now,
                }
            }
            None => {
                e.map.insert(
                    id.clone(),
                    Entry {
                        saved: SavedState {
                            commanded,
                            saved_ms: now,
                        },
                        phase: Phase::Tracking,
                    },
                );
            }
        }
        e.dirty = true;
        drop(e);
        self.changed.notify_one();
    }

    /// Watches the store until shutdown: tracks changes, restores late
    /// entities, writes [`DEBOUNCE`] after a change.
    pub fn spawn_watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let (snapshot, mut events) = self.store.subscribe();
        for (_, state) in snapshot.entities {
            if let Some(s) = state {
                me.track(&s);
            }
        }
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut write_at: Option<tokio::time::Instant> = None;
            loop {
                let due = async {
                    match write_at {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    ev = events.recv() => match ev {
                        Some(StoreEvent::StateChanged(c)) => {
                            if let Some(s) = &c.new_state {
                                me.track(s);
                            }
                            me.apply_late(Some(&c.entity_id));
                        }
                        Some(StoreEvent::Availability { available: true, .. })
                        | Some(StoreEvent::EntityAdded(_)) => me.apply_late(None),
                        Some(_) => {}
                        None => break,
                    },
                    _ = me.changed.notified() => {
                        write_at.get_or_insert_with(|| tokio::time::Instant::now() + DEBOUNCE);
                    }
                    _ = due => {
                        write_at = None;
                        let me = me.clone();
                        let _ = tokio::task::spawn_blocking(move || me.write_if_dirty()).await;
                    }
                    _ = shutdown.wait() => break,
                }
            }
        })
    }

    fn write_if_dirty(&self) {
        let entities = {
            let mut e = self.entries();
            if !e.dirty {
                return;
            }
            e.dirty = false;
            e.map
                .iter()
                .map(|(k, v)| (k.clone(), v.saved.clone()))
                .collect()
        };
        let file = File {
            version: VERSION,
            entities,
        };
        let written = serde_json::to_vec_pretty(&file)
            .map_err(std::io::Error::other)
            .and_then(|bytes| crate::alerts::persist::write_atomically(&self.path, &bytes));
        if let Err(e) = written {
            self.entries().dirty = true;
            tracing::warn!(
                "restore: could not write {}: {e}; the last commanded states may be lost at a restart",
                self.path.display()
            );
        }
    }

    /// The clean stop's write, before plugins stop (their safe states on
    /// the way out are not what anyone commanded): takes the entities'
    /// current states once more, then writes.
    pub fn flush(&self) {
        for state in self.store.states() {
            self.track(&state);
        }
        self.entries().dirty = true;
        self.write_if_dirty();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::Context;

    fn state(s: &str, attrs: Value) -> State {
        State {
            entity_id: "x.y".into(),
            state: s.into(),
            attributes: attrs.as_object().cloned().unwrap_or_default(),
            last_changed: 0,
            last_updated: 0,
            context: Context::default(),
        }
    }

    #[test]
    fn commanded_part_per_component() {
        let climate = state(
            "cool",
            json!({"temperature": 22.5, "current_temperature": 26.1}),
        );
        assert_eq!(
            Commanded::of(Component::Climate, &climate),
            Some(Commanded::Climate {
                hvac_mode: "cool".into(),
                temperature: Some(22.5)
            })
        );
        let valve = state("open", json!({"current_position": 40}));
        assert_eq!(
            Commanded::of(Component::Valve, &valve),
            Some(Commanded::Valve {
                position: Some(40.0),
                open: true
            })
        );
        assert_eq!(
            Commanded::of(Component::Switch, &state("unavailable", json!({}))),
            None
        );
        assert_eq!(
            Commanded::of(Component::Sensor, &state("21", json!({}))),
            None
        );
        assert_eq!(
            Commanded::of(Component::Valve, &state("opening", json!({}))),
            None
        );
    }

    #[test]
    fn calls_only_for_what_differs_mode_first() {
        let saved = Commanded::Climate {
            hvac_mode: "cool".into(),
            temperature: Some(22.5),
        };
        let default = Commanded::Climate {
            hvac_mode: "off".into(),
            temperature: Some(24.0),
        };
        let calls = saved.calls(Some(&default));
        let services: Vec<_> = calls.iter().map(|(s, _)| *s).collect();
        assert_eq!(services, ["set_hvac_mode", "set_temperature"]);
        assert_eq!(calls[1].1["temperature"], json!(22.5));
        assert!(saved.calls(Some(&saved)).is_empty());
        let off = Commanded::Switch { on: false };
        assert_eq!(
            off.calls(Some(&Commanded::Switch { on: true }))[0].0,
            "turn_off"
        );
        let valve = Commanded::Valve {
            position: Some(40.0),
            open: true,
        };
        assert_eq!(valve.calls(None)[0].1["position"], json!(40.0));
    }

    #[test]
    fn the_file_is_versioned_json_named_by_component() {
        let mut entities = BTreeMap::new();
        entities.insert(
            "switch.a".to_string(),
            SavedState {
                commanded: Commanded::Switch { on: true },
                saved_ms: 5,
            },
        );
        let text = serde_json::to_value(File {
            version: VERSION,
            entities,
        })
        .unwrap();
        assert_eq!(
            text,
            json!({"version": 1, "entities": {"switch.a": {"component": "switch", "on": true, "saved_ms": 5}}})
        );
    }
}
