//! The plugin directory, `<data-dir>/plugins/`: every `NAME.wasm` there is
//! loaded at start as plugin `NAME`, configured by its sidecar `NAME.toml`
//! (optional):
//!
//! ```toml
//! drives = ["climate.server_room_ac"]   # optional allow-list
//! [config]                              # passed to `init` as JSON
//! sensor = "sensor.server_room_temperature"
//! [limits]                              # optional, see `Limits`
//! memory_mib = 32
//! ```
//!
//! With `[plugins] watch = true` the directory is polled (every
//! `watch_interval_s`, default 2 s): a changed `.wasm` or sidecar is swapped
//! in by the same path as `hearth plugin swap` (and rejected the same way,
//! the running plugin staying), a new file is loaded, a removed one
//! unloaded. A file is acted on once its size and modification time have
//! held still for one poll, so a copy in progress is not read half-written.
//! Polling, not inotify: it works the same on every filesystem, including
//! network shares and bind mounts, and costs a few `stat` calls.

use super::manager::PluginManager;
use super::{Limits, PluginConfig};
use crate::shutdown::Shutdown;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// `[plugins]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// Poll the directory and swap changed plugins.
    #[serde(default)]
    pub watch: bool,
    /// s
    #[serde(default = "default_interval")]
    pub watch_interval_s: f64,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            watch: false,
            watch_interval_s: default_interval(),
        }
    }
}

fn default_interval() -> f64 {
    2.0
}

/// `NAME.toml` beside `NAME.wasm`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    #[serde(default)]
    pub limits: Option<Limits>,
    #[serde(default)]
    pub drives: Option<Vec<String>>,
}

/// The directory's plugins: what was loaded from it, by content hash.
pub struct PluginDirectory {
    dir: PathBuf,
    manager: Arc<PluginManager>,
    /// Names this directory loaded: the only ones it swaps or unloads (a
    /// plugin of the same name from the config file or the CLI is not its).
    mine: std::collections::BTreeSet<String>,
    /// name → hash of (wasm bytes, sidecar bytes) last acted on.
    known: BTreeMap<String, [u8; 32]>,
    /// name → (size, mtime) of both files at the previous poll.
    seen: BTreeMap<String, Stamp>,
}

type Stamp = (Option<(u64, SystemTime)>, Option<(u64, SystemTime)>);

impl PluginDirectory {
    pub fn new(dir: PathBuf, manager: Arc<PluginManager>) -> Self {
        PluginDirectory {
            dir,
            manager,
            mine: Default::default(),
            known: BTreeMap::new(),
            seen: BTreeMap::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads every plugin in the directory (at start). A plugin that fails
    /// is logged and skipped: one bad file does not stop the bridge.
    pub fn load_all(&mut self) {
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            tracing::warn!("plugin directory {}: {e}", self.dir.display());
            return;
        }
        for name in self.names() {
            self.seen.insert(name.clone(), self.stamp(&name));
            self.apply(&name);
        }
    }

    /// One poll: acts on files that changed and then held still.
    pub fn poll(&mut self) {
        let names = self.names();
        for name in &names {
            let stamp = self.stamp(name);
            let previous = self.seen.insert(name.clone(), stamp);
            if previous != Some(stamp) {
                continue; // new or changing: wait until it holds still
            }
            self.apply(name);
        }
        let gone: Vec<String> = self
            .known
            .keys()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect();
        for name in gone {
            self.known.remove(&name);
            self.seen.remove(&name);
            if self.mine.remove(&name) && self.manager.status(&name).is_some() {
                tracing::info!("plugin directory: {name}.wasm was removed; unloading `{name}`");
                if let Err(e) = self.manager.unload(&name) {
                    tracing::warn!("plugin directory: unloading `{name}`: {e:#}");
                }
            }
        }
    }

    /// Polls until shutdown, on a blocking thread (loads compile).
    pub fn spawn_watch(mut self, interval: Duration, mut shutdown: Shutdown) {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.wait() => break,
                }
                let this = self;
                match tokio::task::spawn_blocking(move || {
                    let mut this = this;
                    this.poll();
                    this
                })
                .await
                {
                    Ok(this) => self = this,
                    Err(e) => {
                        tracing::error!("plugin directory watch stopped: {e}");
                        break;
                    }
                }
            }
        });
    }

    /// Loads or swaps `name` if its files' contents changed since last time.
    fn apply(&mut self, name: &str) {
        let wasm = self.dir.join(format!("{name}.wasm"));
        let sidecar_path = self.dir.join(format!("{name}.toml"));
        let bytes = match super::builtin::read_file(&wasm) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("plugin directory: {e:#}");
                return;
            }
        };
        let sidecar_text = super::builtin::read_file(&sidecar_path)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let mut h = Sha256::new();
        h.update(&bytes);
        h.update(sidecar_text.as_deref().unwrap_or("").as_bytes());
        let hash: [u8; 32] = h.finalize().into();
        if self.known.get(name) == Some(&hash) {
            return;
        }
        // Remember it whatever happens: a rejected file is not retried until
        // it changes again.
        self.known.insert(name.to_string(), hash);
        let sidecar = match sidecar_text.as_deref().map(toml::from_str::<Sidecar>) {
            None => Sidecar::default(),
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                tracing::error!(
                    "plugin directory: {}: {e}; expected `drives = [...]`, `[config]` and `[limits]` only",
                    sidecar_path.display()
                );
                return;
            }
        };
        let loaded = self.manager.status(name).is_some();
        if loaded && !self.mine.contains(name) {
            tracing::warn!(
                "plugin directory: {name}.wasm ignored: a plugin named `{name}` is already loaded from the config file or the API"
            );
            return;
        }
        // The sidecar is the whole config: a key removed from it goes back
        // to its default on the next swap.
        let cfg = PluginConfig {
            name: name.to_string(),
            wasm: wasm.display().to_string(),
            config: sidecar
                .config
                .unwrap_or_else(|| serde_json::Value::Object(Default::default())),
            limits: sidecar.limits.unwrap_or_default(),
            drives: sidecar.drives,
        };
        if loaded {
            match self.manager.swap_to(cfg) {
                Ok(r) => tracing::info!(
                    "plugin directory: {name}.wasm changed; swapped {} → {} in {} µs",
                    r.from,
                    r.to,
                    r.switch_us
                ),
                Err(e) => tracing::error!("plugin directory: {name}.wasm changed: {e:#}"),
            }
        } else {
            match self.manager.load(cfg) {
                Ok(_) => {
                    self.mine.insert(name.to_string());
                    tracing::info!("plugin directory: loaded `{name}` from {name}.wasm");
                }
                Err(e) => tracing::error!("plugin directory: {name}.wasm: {e:#}"),
            }
        }
    }

    /// Plugin names: `NAME.wasm` files with a valid name, sorted.
    fn names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let path = e.path();
                if path.extension()? != "wasm" {
                    return None;
                }
                let stem = path.file_stem()?.to_str()?.to_string();
                match hearth_node_core::validate_node_id(&stem) {
                    Ok(()) => Some(stem),
                    Err(err) => {
                        tracing::warn!(
                            "plugin directory: {}: the file name is the plugin name: {err}",
                            path.display()
                        );
                        None
                    }
                }
            })
            .collect();
        names.sort();
        names
    }

    fn stamp(&self, name: &str) -> Stamp {
        let meta = |p: PathBuf| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
        };
        (
            meta(self.dir.join(format!("{name}.wasm"))),
            meta(self.dir.join(format!("{name}.toml"))),
        )
    }
}
