//! The wasmtime engine shared by all plugins: component model, epoch
//! interruption (a ticker thread advances the epoch every
//! [`EPOCH_TICK`]), compilation, and the `host` imports.

use super::WIT_PACKAGE;
use crate::clock::Clock;
use crate::entity::EntityStore;
use anyhow::{Context, bail};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

wasmtime::component::bindgen!({
    world: "controller",
    path: "../wit",
});

// `self::`: rustdoc links this crate as `hearth`, which the generated
// `hearth` module would otherwise shadow ambiguously.
pub use self::hearth::controller::types as wit;

/// Resolution of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What a plugin's store holds: its identity, the host services it may use
/// and its memory limiter.
pub struct HostState {
    pub plugin: String,
    pub store: Arc<EntityStore>,
    pub clock: Clock,
    pub limiter: MemoryCap,
}

/// Caps linear memory; remembers that the cap was hit so the fault can be
/// named "out of memory" rather than a bare trap.
pub struct MemoryCap {
    pub max_bytes: usize,
    pub hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            let msg = format!(
                "memory cap of {} MiB reached (asked for {} MiB)",
                self.max_bytes >> 20,
                desired >> 20
            );
            return Err(wasmtime::Error::msg(msg));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

fn to_wit(s: crate::entity::State) -> wit::EntityState {
    wit::EntityState {
        entity_id: s.entity_id,
        state: s.state,
        attributes: serde_json::Value::Object(s.attributes).to_string(),
        last_changed_ms: s.last_changed,
        last_updated_ms: s.last_updated,
    }
}

pub fn state_to_wit(s: &crate::entity::State) -> wit::EntityState {
    to_wit(s.clone())
}

impl self::hearth::controller::types::Host for HostState {}

impl self::hearth::controller::host::Host for HostState {
    fn log(&mut self, level: wit::LogLevel, message: String) {
        let plugin = &self.plugin;
        match level {
            wit::LogLevel::Trace => {
                tracing::trace!(target: "hearth::plugin", "[{plugin}] {message}")
            }
            wit::LogLevel::Debug => {
                tracing::debug!(target: "hearth::plugin", "[{plugin}] {message}")
            }
            wit::LogLevel::Info => tracing::info!(target: "hearth::plugin", "[{plugin}] {message}"),
            wit::LogLevel::Warn => tracing::warn!(target: "hearth::plugin", "[{plugin}] {message}"),
            wit::LogLevel::Error => {
                tracing::error!(target: "hearth::plugin", "[{plugin}] {message}")
            }
        }
    }

    fn now_ms(&mut self) -> i64 {
        self.clock.now_ms()
    }

    fn get_state(&mut self, entity_id: String) -> Option<wit::EntityState> {
        self.store.get(&entity_id).map(to_wit)
    }

    fn history(&mut self, entity_id: String, start_ms: i64, end_ms: i64) -> Vec<wit::Sample> {
        self.store
            .history(&entity_id, start_ms, end_ms)
            .into_iter()
            .map(|(time_ms, value)| wit::Sample { time_ms, value })
            .collect()
    }
}

/// Engine + linker; cheap to share.
pub struct PluginEngine {
    pub engine: Engine,
    linker: Linker<HostState>,
}

impl PluginEngine {
    pub fn new() -> anyhow::Result<Arc<Self>> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        Controller::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;
        Ok(Arc::new(PluginEngine { engine, linker }))
    }

    /// Compiles and links a component. Rejects one built against another
    /// major (or, in 0.x, minor) version of `hearth:controller`.
    pub fn load(&self, bytes: &[u8]) -> anyhow::Result<ControllerPre<HostState>> {
        let component = Component::new(&self.engine, bytes)
            .map_err(anyhow::Error::from)
            .context("not a valid WebAssembly component")?;
        let ty = component.component_type();
        for (name, _) in ty.imports(&self.engine) {
            if let Some(rest) = name.strip_prefix("hearth:controller/") {
                let version = rest.split_once('@').map(|(_, v)| v).unwrap_or("");
                let ours = WIT_PACKAGE.rsplit_once('@').map(|(_, v)| v).unwrap_or("");
                if !compatible(ours, version) {
                    bail!(
                        "plugin imports `{name}`: built for hearth:controller@{version}, this host implements @{ours}"
                    );
                }
            }
        }
        // Plugins get no WASI: a std guest imports WASI interfaces it never
        // calls; they are defined as traps so it links, and traps if used.
        let mut linker = self.linker.clone();
        linker.define_unknown_imports_as_traps(&component)?;
        let pre = linker.instantiate_pre(&component)?;
        ControllerPre::new(pre)
            .map_err(anyhow::Error::from)
            .context("component does not export the hearth:controller `controller` world")
    }
}

/// Semver on the WIT package: same major, and the plugin's minor.patch no
/// newer than the host's; while major is 0 the minor must match too.
pub fn compatible(host: &str, plugin: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let mut it = v.split('.').map(|p| p.parse::<u64>().ok());
        Some((it.next()??, it.next()??, it.next()??))
    };
    let (Some(h), Some(p)) = (parse(host), parse(plugin)) else {
        return false;
    };
    if h.0 != p.0 || (h.0 == 0 && h.1 != p.1) {
        return false;
    }
    (p.1, p.2) <= (h.1, h.2)
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn wit_versions_follow_semver() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.3", "0.1.2"));
        assert!(!compatible("0.1.0", "0.1.1"));
        assert!(!compatible("0.1.0", "0.2.0"));
        assert!(!compatible("1.2.0", "2.0.0"));
        assert!(compatible("1.2.0", "1.1.5"));
        assert!(!compatible("0.1.0", "junk"));
    }
}
