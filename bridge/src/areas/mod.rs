//! Areas, floors and labels, and which area and labels each device and
//! entity has: HA's area, floor and label registries and the `area_id`,
//! `labels`, `name_by_user` (device) and `name` (entity) fields of its
//! device and entity registries (`homeassistant/helpers/area_registry.py`,
//! `floor_registry.py`, `label_registry.py`, `device_registry.py`,
//! `entity_registry.py`).
//!
//! Who owns what: the config seeds it (`[[floor]]`, `[[label]]`,
//! `[[area]]` with `devices = [...]` and `entities = [...]`); WebSocket
//! clients edit it (`config/area_registry/*`, [`ws`]); this module keeps
//! it and writes it to `<data_dir>/registries.json` after every change
//! (a temporary file renamed over the old one, so a crash leaves the old
//! or the new file, never half of one). At start the file is read, then
//! the config applied over it: what the config names is as the config
//! says (an edit of a config area lasts until the next start); what
//! clients created stays.
//!
//! Readers take a [`Places`] (a copy joined with the entity store's
//! devices and entities): templates (`area_entities()`, …), registry
//! listings, and `call_service` targets (`area_id`, `floor_id`,
//! `label_id`, resolved as HA's `async_extract_referenced_entity_ids`).

pub mod places;
pub mod ws;

pub use places::Places;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;

/// HA's `AreaEntry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Area {
    pub area_id: String,
    pub name: String,
    #[serde(default)]
    pub floor_id: Option<String>,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub picture: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub humidity_entity_id: Option<String>,
    #[serde(default)]
    pub temperature_entity_id: Option<String>,
    /// Seconds since epoch.
    #[serde(default)]
    pub created_at: f64,
    #[serde(default)]
    pub modified_at: f64,
}

/// HA's `FloorEntry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Floor {
    pub floor_id: String,
    pub name: String,
    #[serde(default)]
    pub level: Option<i64>,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub created_at: f64,
    #[serde(default)]
    pub modified_at: f64,
}

/// HA's `LabelEntry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub label_id: String,
    pub name: String,
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub created_at: f64,
    #[serde(default)]
    pub modified_at: f64,
}

/// What the device registry keeps for a device beyond what its driver says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceAssign {
    #[serde(default)]
    pub area_id: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub name_by_user: Option<String>,
}

impl DeviceAssign {
    fn is_empty(&self) -> bool {
        self == &DeviceAssign::default()
    }
}

/// What the entity registry keeps for an entity beyond its spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EntityAssign {
    /// Its own area; `None`: its device's.
    #[serde(default)]
    pub area_id: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// HA's user-set `name` (over the spec's `original_name`).
    #[serde(default)]
    pub name: Option<String>,
}

impl EntityAssign {
    fn is_empty(&self) -> bool {
        self == &EntityAssign::default()
    }
}

/// Everything kept, as `registries.json` holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registries {
    #[serde(default)]
    pub areas: BTreeMap<String, Area>,
    #[serde(default)]
    pub floors: BTreeMap<String, Floor>,
    #[serde(default)]
    pub labels: BTreeMap<String, Label>,
    #[serde(default)]
    pub devices: BTreeMap<String, DeviceAssign>,
    #[serde(default)]
    pub entities: BTreeMap<String, EntityAssign>,
}

/// `[[area]]`: an area, and the devices and entities in it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaConfig {
    /// HA's `area_id` (what `target.area_id` names): `[a-z0-9_]+`.
    pub id: String,
    pub name: String,
    /// A `[[floor]]` id.
    pub floor: Option<String>,
    pub icon: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `[[label]]` ids.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Device ids in this area.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Entity ids in this area (over their device's area).
    #[serde(default)]
    pub entities: Vec<String>,
}

/// `[[floor]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloorConfig {
    pub id: String,
    pub name: String,
    /// 0 ground floor, negative below (HA's `level`).
    pub level: Option<i64>,
    pub icon: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// `[[label]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelConfig {
    pub id: String,
    pub name: String,
    /// HA's colour name (`red`, `indigo`, …) or `#rrggbb`.
    pub color: Option<String>,
    pub icon: Option<String>,
    pub description: Option<String>,
}

/// The config's areas, floors and labels.
#[derive(Debug, Clone, Default)]
pub struct PlacesConfig {
    pub areas: Vec<AreaConfig>,
    pub floors: Vec<FloorConfig>,
    pub labels: Vec<LabelConfig>,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

/// Checks ids and references of `[[area]]`, `[[floor]]`, `[[label]]`.
pub fn validate_config(c: &PlacesConfig) -> anyhow::Result<()> {
    let mut seen = std::collections::HashSet::new();
    for (kind, id) in c
        .floors
        .iter()
        .map(|f| ("floor", &f.id))
        .chain(c.labels.iter().map(|l| ("label", &l.id)))
        .chain(c.areas.iter().map(|a| ("area", &a.id)))
    {
        anyhow::ensure!(
            valid_id(id),
            "[[{kind}]] id `{id}` must be lowercase letters, digits and `_`"
        );
        anyhow::ensure!(
            seen.insert((kind, id)),
            "[[{kind}]] id `{id}` appears twice"
        );
    }
    let mut names = std::collections::HashSet::new();
    for (kind, name) in c
        .floors
        .iter()
        .map(|f| ("floor", &f.name))
        .chain(c.labels.iter().map(|l| ("label", &l.name)))
        .chain(c.areas.iter().map(|a| ("area", &a.name)))
    {
        anyhow::ensure!(
            names.insert((kind, normalize_name(name))),
            "[[{kind}]] name `{name}` appears twice (names are unique, as in HA)"
        );
    }
    let mut placed = std::collections::HashMap::new();
    for a in &c.areas {
        if let Some(f) = &a.floor {
            anyhow::ensure!(
                c.floors.iter().any(|x| &x.id == f),
                "[[area]] `{}`: floor `{f}` is not a [[floor]] id",
                a.id
            );
        }
        for l in &a.labels {
            anyhow::ensure!(
                c.labels.iter().any(|x| &x.id == l),
                "[[area]] `{}`: label `{l}` is not a [[label]] id",
                a.id
            );
        }
        for d in a.devices.iter().chain(&a.entities) {
            if let Some(other) = placed.insert(d.clone(), a.id.clone()) {
                anyhow::bail!("`{d}` is in two areas: `{other}` and `{}`", a.id);
            }
        }
    }
    Ok(())
}

/// HA's `normalize_name`: case-folded, without spaces.
pub fn normalize_name(name: &str) -> String {
    name.to_lowercase().split_whitespace().collect()
}

/// HA's `slugify` for new ids (`Living Room` → `living_room`).
pub use crate::slug::slugify;

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Writes the registries somewhere (the file, or nowhere).
type Persist = Box<dyn Fn(&Registries) -> anyhow::Result<()> + Send + Sync>;

/// The registries, kept in memory and in `registries.json`.
///
/// An edit builds the next registries from a copy, writes them (file and
/// directory synced) and only then swaps them in under a brief write
/// lock: readers (template renders, `call_service` targets, listings)
/// never wait for the disk. Edits are serialised by `editing`, so none is
/// built from a copy another edit is about to replace. The write runs
/// off the async runtime's worker (`block_in_place`) when on a
/// multi-threaded runtime; the WebSocket commands that edit are
/// synchronous, so it cannot be handed to the blocking pool and awaited.
pub struct AreaRegistry {
    inner: RwLock<Registries>,
    editing: std::sync::Mutex<()>,
    persist: Persist,
}

impl AreaRegistry {
    /// Reads `<data_dir>/registries.json` (if any), applies `config` over
    /// it and writes the result back.
    pub fn open(data_dir: &Path, config: &PlacesConfig) -> anyhow::Result<AreaRegistry> {
        let path = data_dir.join("registries.json");
        let mut regs = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Registries>(&bytes)
                .with_context(|| format!("reading {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Registries::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        apply_config(&mut regs, config, now_s());
        write_atomic(&path, &regs)?;
        Ok(AreaRegistry::with_persist(
            regs,
            Box::new(move |r| write_atomic(&path, r)),
        ))
    }

    fn with_persist(regs: Registries, persist: Persist) -> AreaRegistry {
        AreaRegistry {
            inner: RwLock::new(regs),
            editing: std::sync::Mutex::new(()),
            persist,
        }
    }

    /// Not persisted: the config's places only.
    pub fn in_memory(config: &PlacesConfig) -> AreaRegistry {
        let mut regs = Registries::default();
        apply_config(&mut regs, config, now_s());
        AreaRegistry::with_persist(regs, Box::new(|_| Ok(())))
    }

    pub fn get(&self) -> Registries {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes the registries with `f` and writes them; `f`'s error (HA's
    /// message) leaves them as they were.
    pub fn edit<T>(
        &self,
        f: impl FnOnce(&mut Registries, f64) -> Result<T, EditError>,
    ) -> Result<T, EditError> {
        let _editing = self.editing.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = self.get();
        let out = f(&mut next, now_s())?;
        next.devices.retain(|_, d| !d.is_empty());
        next.entities.retain(|_, e| !e.is_empty());
        let write = || (self.persist)(&next);
        let written = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(write)
            }
            _ => write(),
        };
        written.map_err(|e| EditError::Storage(format!("{e:#}")))?;
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(out)
    }
}

/// Why an edit was refused, with HA's message.
#[derive(Debug, Clone, PartialEq)]
pub enum EditError {
    /// HA's `invalid_info` (`ValueError` / `KeyError` in the registries).
    Invalid(String),
    /// HA's `not_found`.
    NotFound(String),
    /// `registries.json` could not be written; nothing changed.
    Storage(String),
}

fn write_atomic(path: &Path, regs: &Registries) -> anyhow::Result<()> {
    let text = serde_json::to_vec_pretty(regs)?;
    crate::fsutil::write_atomically(path, &text)
        .with_context(|| format!("writing {}", path.display()))
}

/// Applies the config over what was kept: config items are as the config
/// says (creation time kept), device and entity placements too.
fn apply_config(regs: &mut Registries, c: &PlacesConfig, now: f64) {
    for f in &c.floors {
        let created = regs.floors.get(&f.id).map_or(now, |x| x.created_at);
        regs.floors.insert(
            f.id.clone(),
            Floor {
                floor_id: f.id.clone(),
                name: f.name.clone(),
                level: f.level,
                icon: f.icon.clone(),
                aliases: f.aliases.clone(),
                created_at: created,
                modified_at: now,
            },
        );
    }
    for l in &c.labels {
        let created = regs.labels.get(&l.id).map_or(now, |x| x.created_at);
        regs.labels.insert(
            l.id.clone(),
            Label {
                label_id: l.id.clone(),
                name: l.name.clone(),
                color: l.color.clone(),
                icon: l.icon.clone(),
                description: l.description.clone(),
                created_at: created,
                modified_at: now,
            },
        );
    }
    for a in &c.areas {
        let old = regs.areas.get(&a.id);
        let area = Area {
            area_id: a.id.clone(),
            name: a.name.clone(),
            floor_id: a.floor.clone(),
            icon: a.icon.clone(),
            picture: old.and_then(|o| o.picture.clone()),
            aliases: a.aliases.clone(),
            labels: a.labels.clone(),
            humidity_entity_id: old.and_then(|o| o.humidity_entity_id.clone()),
            temperature_entity_id: old.and_then(|o| o.temperature_entity_id.clone()),
            created_at: old.map_or(now, |o| o.created_at),
            modified_at: now,
        };
        // A name the config gives wins over a client's area of that name.
        let norm = normalize_name(&a.name);
        regs.areas
            .retain(|id, x| id == &a.id || normalize_name(&x.name) != norm);
        regs.areas.insert(a.id.clone(), area);
        for d in &a.devices {
            regs.devices.entry(d.clone()).or_default().area_id = Some(a.id.clone());
        }
        for e in &a.entities {
            regs.entities.entry(e.clone()).or_default().area_id = Some(a.id.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// While an edit is being written (a slow disk), readers get the
    /// registries at once (the old ones), and the edit's result after it.
    #[test]
    fn readers_do_not_wait_for_the_write() {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let started = std::sync::Mutex::new(started_tx);
        let reg = Arc::new(AreaRegistry::with_persist(
            Registries::default(),
            Box::new(move |_| {
                let _ = started.lock().unwrap().send(());
                std::thread::sleep(Duration::from_millis(600));
                Ok(())
            }),
        ));
        let writer = {
            let reg = reg.clone();
            std::thread::spawn(move || {
                reg.edit(|r, now| {
                    r.labels.insert(
                        "l".into(),
                        Label {
                            label_id: "l".into(),
                            name: "L".into(),
                            color: None,
                            icon: None,
                            description: None,
                            created_at: now,
                            modified_at: now,
                        },
                    );
                    Ok(())
                })
            })
        };
        started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let t = Instant::now();
        let seen = reg.get();
        let waited = t.elapsed();
        assert!(
            waited < Duration::from_millis(200),
            "a reader waited {waited:?} for the write"
        );
        assert!(
            seen.labels.is_empty(),
            "the edit is not visible before it is written"
        );
        writer.join().unwrap().unwrap();
        assert!(reg.get().labels.contains_key("l"));
    }

    /// A write that fails leaves the registries as they were.
    #[test]
    fn a_failed_write_changes_nothing() {
        let reg = AreaRegistry::with_persist(
            Registries::default(),
            Box::new(|_| anyhow::bail!("disk full")),
        );
        let e = reg
            .edit(|r, _| {
                r.devices.entry("d".into()).or_default().area_id = Some("a".into());
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(e, EditError::Storage(m) if m.contains("disk full")));
        assert!(reg.get().devices.is_empty());
    }
}
