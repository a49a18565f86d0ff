//! The plugin lifecycle, one implementation behind every front end (CLI,
//! WebSocket `hearth/plugins/*`, MQTT `hearth/bridge/request/plugin/*`, the
//! plugin directory's watch):
//!
//! - **load**: prepare (compile, instantiate, `init`, `describe`, checks),
//!   refuse a claim on an entity another plugin drives, restore the state
//!   the plugin saved when it was last stopped, start it;
//! - **swap**: prepare the new plugin while the old one keeps running, with
//!   the same checks; then the runner switches between two events (see
//!   [`runner`](super::runner)); any failure leaves the old one running.
//!   A swap without a config to a plugin (`wasm`) this instance has run
//!   before gets the config (and limits, drives) it last ran that plugin
//!   with, so `swap thermostat builtin:thermostat` after a swap to a
//!   plugin with another config restores the thermostat's; a swap to a
//!   plugin it has not run keeps the running config; a given config wins;
//! - **unload**: stop, keep its saved state on disk, remove its device and
//!   entities from HA;
//! - **list**, **logs**, **save**; **save_all** every few seconds, so a
//!   kill loses little of what the plugins learned (see [`saved`](super::saved):
//!   a state returns only to the same instance name and component).
//!
//! Operations are serialised (one at a time) and blocking: compiling takes
//! 100–200 ms. Async callers run them on `spawn_blocking`.

use super::PluginConfig;
use super::logbook::{LogBook, LogLine};
use super::owned::OwnedEntities;
use super::prepare::{self, Prepared};
use super::runner::{self, PluginHandle, PluginStatus, RunnerContext, SwapReport};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

pub struct PluginManager {
    ctx: RunnerContext,
    /// `<data-dir>/plugin-state`: each plugin's `save` bytes (periodically,
    /// at unload and at stop; see [`saved`](super::saved)).
    state_dir: Option<PathBuf>,
    /// The bytes last written per plugin, so a periodic save of an
    /// unchanged state writes nothing.
    written: Mutex<BTreeMap<String, Vec<u8>>>,
    plugins: Mutex<BTreeMap<String, Entry>>,
    /// Serialises lifecycle operations; `true` once the bridge shuts down.
    ops: Mutex<bool>,
}

struct Entry {
    handle: PluginHandle,
    cfg: PluginConfig,
    /// The config it last ran each plugin (`wasm`) with, oldest first;
    /// the first is the one it was loaded with.
    ran: Vec<PluginConfig>,
}

/// Plugins remembered per instance for a swap back; the one it was loaded
/// with is always kept. A person swaps between a handful.
const RAN_KEPT: usize = 16;

impl Entry {
    fn ran_with(&mut self, cfg: &PluginConfig) {
        match self.ran.iter_mut().find(|c| c.wasm == cfg.wasm) {
            Some(c) => *c = cfg.clone(),
            None => {
                if self.ran.len() == RAN_KEPT {
                    self.ran.remove(1);
                }
                self.ran.push(cfg.clone());
            }
        }
    }
}

/// What `hearth plugin config NAME` shows: the config an instance runs
/// with, in the shape a load or a swap takes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunningConfig {
    #[serde(flatten)]
    pub running: PluginConfig,
    /// The plugins a swap without a config restores the config of (the
    /// one it was loaded with first).
    pub remembered: Vec<String>,
}

/// What a swap may change; unset fields keep the running plugin's.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapRequest {
    pub wasm: String,
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    #[serde(default)]
    pub limits: Option<super::Limits>,
    #[serde(default)]
    pub drives: Option<Vec<String>>,
}

impl PluginManager {
    pub fn new(ctx: RunnerContext, data_dir: Option<&Path>) -> Self {
        PluginManager {
            ctx,
            state_dir: data_dir.map(|d| d.join("plugin-state")),
            plugins: Mutex::new(BTreeMap::new()),
            written: Mutex::new(BTreeMap::new()),
            ops: Mutex::new(false),
        }
    }

    pub fn logbook(&self) -> &std::sync::Arc<LogBook> {
        &self.ctx.logs
    }

    fn lock_ops(&self) -> std::sync::MutexGuard<'_, bool> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The ops lock, refusing work once the bridge is shutting down.
    fn open_ops(&self) -> anyhow::Result<std::sync::MutexGuard<'_, bool>> {
        let ops = self.lock_ops();
        anyhow::ensure!(!*ops, "the bridge is shutting down");
        Ok(ops)
    }

    fn plugins(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.plugins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads and starts a plugin under `cfg.name`.
    pub fn load(&self, cfg: PluginConfig) -> anyhow::Result<PluginStatus> {
        let _ops = self.open_ops()?;
        let name = cfg.name.clone();
        if self.plugins().contains_key(&name) {
            bail!("plugin `{name}` is already loaded; swap it or unload it first");
        }
        let prepared = self.prepare(cfg.clone())?;
        self.check_claims(&name, &prepared)?;
        let saved = self.read_state(&name, &prepared.desc.name);
        let handle = runner::start(self.ctx.clone(), prepared, saved)?;
        let status = handle.status();
        let ran = vec![cfg.clone()];
        self.plugins().insert(name, Entry { handle, cfg, ran });
        Ok(status)
    }

    /// Replaces the running plugin `name` by the one `req` describes.
    pub fn swap(&self, name: &str, req: SwapRequest) -> anyhow::Result<SwapReport> {
        let (mut cfg, before) = self
            .plugins()
            .get(name)
            .map(|e| {
                let before = e.ran.iter().find(|c| c.wasm == req.wasm).cloned();
                (e.cfg.clone(), before)
            })
            .with_context(|| format!("no plugin `{name}` is loaded"))?;
        if let Some(before) = before {
            cfg.config = before.config;
            cfg.limits = before.limits;
            cfg.drives = before.drives;
        }
        cfg.wasm = req.wasm;
        if let Some(c) = req.config {
            cfg.config = c;
        }
        if let Some(l) = req.limits {
            cfg.limits = l;
        }
        if let Some(d) = req.drives {
            cfg.drives = Some(d);
        }
        self.swap_to(cfg)
    }

    /// Replaces the running plugin `cfg.name` by the one `cfg` describes in
    /// full (the plugin directory's sidecars).
    pub fn swap_to(&self, cfg: PluginConfig) -> anyhow::Result<SwapReport> {
        let _ops = self.open_ops()?;
        let name = cfg.name.as_str();
        anyhow::ensure!(
            self.plugins().contains_key(name),
            "no plugin `{name}` is loaded"
        );
        let prepared = self.prepare(cfg.clone()).with_context(|| {
            format!("swap of `{name}` rejected; the running plugin keeps running")
        })?;
        self.check_claims(name, &prepared).with_context(|| {
            format!("swap of `{name}` rejected; the running plugin keeps running")
        })?;
        let mailbox = self
            .plugins()
            .get(name)
            .map(|e| e.handle.mailbox())
            .with_context(|| format!("no plugin `{name}` is loaded"))?;
        let report = mailbox
            .swap(prepared)
            .map_err(|e| anyhow::anyhow!("swap of `{name}` rejected: {e}"))?;
        let name = name.to_string();
        if let Some(e) = self.plugins().get_mut(&name) {
            e.ran_with(&cfg);
            e.cfg = cfg;
        }
        Ok(report)
    }

    /// Stops a plugin, keeps its state on disk for a later load, and
    /// removes its device and entities (HA gets empty retained configs).
    pub fn unload(&self, name: &str) -> anyhow::Result<()> {
        let _ops = self.lock_ops();
        let entry = self
            .plugins()
            .remove(name)
            .with_context(|| format!("no plugin `{name}` is loaded"))?;
        let status = entry.handle.status();
        if let Some(saved) = entry.handle.stop() {
            self.write_state(&status, &saved);
        }
        OwnedEntities::new(self.ctx.store.clone(), name).remove();
        let cleared = self.ctx.alerts.clear_source(&format!("plugin:{name}"));
        if cleared > 0 {
            tracing::info!("plugin `{name}` unloaded: its {cleared} active alert(s) cleared");
        }
        self.ctx.logs.push(
            name,
            LogLine {
                time_ms: self.ctx.store.clock().now_ms(),
                level: "info",
                source: "host",
                message: "unloaded".into(),
            },
        );
        tracing::info!("plugin `{name}` unloaded; its entities are removed from Home Assistant");
        Ok(())
    }

    pub fn list(&self) -> Vec<PluginStatus> {
        self.plugins().values().map(|e| e.handle.status()).collect()
    }

    pub fn status(&self, name: &str) -> Option<PluginStatus> {
        self.plugins().get(name).map(|e| e.handle.status())
    }

    /// The config a plugin runs with.
    pub fn config(&self, name: &str) -> Option<PluginConfig> {
        self.plugins().get(name).map(|e| e.cfg.clone())
    }

    /// The config a plugin runs with, and the plugins a swap back restores
    /// the config of.
    pub fn running_config(&self, name: &str) -> Option<RunningConfig> {
        self.plugins().get(name).map(|e| RunningConfig {
            running: e.cfg.clone(),
            remembered: e.ran.iter().map(|c| c.wasm.clone()).collect(),
        })
    }

    pub fn logs(&self, name: &str, lines: usize) -> anyhow::Result<Vec<LogLine>> {
        let tail = self.ctx.logs.tail(name, lines);
        if tail.is_empty() && !self.plugins().contains_key(name) {
            bail!("no plugin `{name}` is loaded and none has logged under that name");
        }
        Ok(tail)
    }

    /// The plugin's `save` bytes, taken after every event queued so far.
    pub fn save(&self, name: &str) -> anyhow::Result<Vec<u8>> {
        let mailbox = self
            .plugins()
            .get(name)
            .map(|e| e.handle.mailbox())
            .with_context(|| format!("no plugin `{name}` is loaded"))?;
        mailbox.save().map_err(anyhow::Error::msg)
    }

    /// Stops every plugin (bridge shutdown), keeping their states on disk.
    pub fn stop_all(&self) {
        let mut ops = self.lock_ops();
        *ops = true;
        let all = std::mem::take(&mut *self.plugins());
        for (_, e) in all {
            let status = e.handle.status();
            if let Some(saved) = e.handle.stop() {
                self.write_state(&status, &saved);
            }
        }
    }

    /// Saves every running plugin's state to disk (those that changed):
    /// the periodic save, so a kill loses at most
    /// [`SAVE_EVERY`](super::saved::SAVE_EVERY). A faulted plugin's last
    /// good state is what its runner answers.
    pub fn save_all(&self) {
        let Ok(_ops) = self.open_ops() else {
            return; // shutting down: stop_all saves
        };
        let running: Vec<_> = self
            .plugins()
            .values()
            .map(|e| (e.handle.status(), e.handle.mailbox()))
            .collect();
        for (status, mailbox) in running {
            match mailbox.save() {
                Ok(bytes) => self.write_state(&status, &bytes),
                Err(e) => tracing::debug!("plugin `{}`: periodic save skipped: {e}", status.name),
            }
        }
    }

    fn prepare(&self, cfg: PluginConfig) -> anyhow::Result<Prepared> {
        let started = Instant::now();
        let p = prepare::prepare(&self.ctx.engine, cfg, &self.ctx.host())?;
        tracing::debug!(
            "plugin `{}` prepared in {:.1} ms ({:?})",
            p.cfg.name,
            started.elapsed().as_secs_f64() * 1000.0,
            p.cache
        );
        Ok(p)
    }

    /// An entity is driven by one plugin at most: two controllers fighting
    /// over one AC is a configuration error, refused before it happens.
    /// Also: two plugins whose names give the same HA ids (`a-b`, `a_b`),
    /// and a declared entity whose id another device already has.
    fn check_claims(&self, name: &str, p: &Prepared) -> anyhow::Result<()> {
        let object = |n: &str| n.replace('-', "_");
        for (other, e) in self.plugins().iter() {
            if other == name {
                continue;
            }
            if object(other) == object(name) {
                bail!(
                    "plugin name `{name}` gives the same Home Assistant ids as plugin `{other}`; choose another name"
                );
            }
            let theirs = e.handle.status().drives;
            if let Some(clash) = p.desc.drives.iter().find(|d| theirs.contains(d)) {
                bail!(
                    "plugin `{name}` claims `{clash}`, which plugin `{other}` already drives (an entity has one controller)"
                );
            }
        }
        use crate::entity::Component;
        let device = super::owned::device_id(name);
        let host = [
            ("status", Component::Sensor),
            ("fault", Component::BinarySensor),
        ];
        let declared = p
            .desc
            .entities
            .iter()
            .filter_map(|d| Some((d.object_id.as_str(), Component::parse(&d.component)?)));
        for (object_id, c) in host.into_iter().chain(declared) {
            let id = crate::entity::entity_id_for(c, &device, object_id);
            if let Some(spec) = self.ctx.store.spec(&id)
                && spec.device_id != device
            {
                bail!(
                    "plugin `{name}`'s entity `{object_id}` would be `{id}`, which device `{}` already has",
                    spec.device_id
                );
            }
        }
        Ok(())
    }

    fn read_state(&self, name: &str, component: &str) -> Vec<u8> {
        let Some(dir) = &self.state_dir else {
            return Vec::new();
        };
        let bytes = super::saved::read(dir, name, component);
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), bytes.clone());
        bytes
    }

    fn write_state(&self, status: &PluginStatus, bytes: &[u8]) {
        let Some(dir) = &self.state_dir else {
            return;
        };
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if written.get(&status.name).is_some_and(|w| w == bytes) {
            return;
        }
        let saved = super::saved::SavedPlugin {
            version: 1,
            instance: status.name.clone(),
            component: status.plugin.clone(),
            component_version: status.version.clone(),
            saved_ms: self.ctx.store.clock().now_ms(),
            state_hex: String::new(),
        };
        super::saved::write(dir, &saved, bytes);
        written.insert(status.name.clone(), bytes.to_vec());
    }
}
