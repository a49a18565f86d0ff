//! The wasmtime engine shared by all plugins: component model, fuel
//! metering, epoch interruption (a ticker thread advances the epoch every
//! [`EPOCH_TICK`]), compilation through the [`CodeCache`], and the `host`
//! imports.

use super::WIT_PACKAGE;
use super::cache::{CacheOutcome, CodeCache};
use super::logbook::{LogBook, LogLine};
use crate::clock::Clock;
use crate::entity::EntityStore;
use anyhow::{Context, bail};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker};
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
    pub logs: Arc<LogBook>,
    pub forecasts: Arc<crate::forecast::Forecasts>,
    /// Where the current call's wall time went (see `instance`).
    pub time: CallTime,
    /// The outcomes of its service calls (`call-results`); the runner
    /// replaces this with its own when it adopts the instance.
    pub outcomes: Arc<super::outcomes::CallOutcomes>,
}

/// The current call's wall time, and how much of it the host spent (in
/// imports, copying their arguments and results, and wasmtime's libcalls),
/// measured by wasmtime's call hook: the call's time budget is the
/// plugin's own time.
pub struct CallTime {
    pub started: Instant,
    pub in_host: Duration,
    entered: Option<Instant>,
    depth: u32,
}

impl CallTime {
    pub fn new() -> Self {
        CallTime {
            started: Instant::now(),
            in_host: Duration::ZERO,
            entered: None,
            depth: 0,
        }
    }

    /// `CallingHost`: the host's time starts (nested entries count once).
    pub fn enter_host(&mut self) {
        if self.depth == 0 {
            self.entered = Some(Instant::now());
        }
        self.depth += 1;
    }

    /// The host's time so far, the window still open included (the
    /// deadline may fire inside one: in the guest's `realloc` while a
    /// result is copied in, or in the deadline's own libcall).
    pub fn host_so_far(&self) -> Duration {
        self.in_host + self.entered.map_or(Duration::ZERO, |t| t.elapsed())
    }

    /// `ReturningFromHost`.
    pub fn leave_host(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        if self.depth == 0
            && let Some(t) = self.entered.take()
        {
            self.in_host += t.elapsed();
        }
    }
}

impl Default for CallTime {
    fn default() -> Self {
        CallTime::new()
    }
}

/// Caps linear memory; remembers that the cap was hit so the fault can be
/// named "out of memory" rather than a bare trap, and the largest size asked
/// for (the plugin's memory use: linear memory only grows).
pub struct MemoryCap {
    pub max_bytes: usize,
    pub hit: bool,
    pub peak_bytes: usize,
}

impl MemoryCap {
    pub fn new(max_bytes: usize) -> Self {
        MemoryCap {
            max_bytes,
            hit: false,
            peak_bytes: 0,
        }
    }
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
            self.peak_bytes = self.peak_bytes.max(_current);
            let msg = format!(
                "memory cap of {} MiB reached (asked for {} MiB)",
                self.max_bytes >> 20,
                desired >> 20
            );
            return Err(wasmtime::Error::msg(msg));
        }
        self.peak_bytes = self.peak_bytes.max(desired);
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
    fn log(&mut self, level: wit::LogLevel, mut message: String) {
        super::logbook::cap_line(&mut message);
        self.logs.push(
            &self.plugin,
            LogLine {
                time_ms: self.clock.now_ms(),
                level: level_name(level),
                source: "plugin",
                message: message.clone(),
            },
        );
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

    /// Numbers, and binary states as 1/0 (`crate::entity::samples`), from
    /// the store's memory and the recorder.
    fn history(&mut self, entity_id: String, start_ms: i64, end_ms: i64) -> Vec<wit::Sample> {
        self.store
            .history(&entity_id, start_ms, end_ms)
            .into_iter()
            .map(|(time_ms, value)| wit::Sample { time_ms, value })
            .collect()
    }

    fn forecast(&mut self, series: String, start_ms: i64, end_ms: i64) -> Vec<wit::Sample> {
        self.forecasts
            .range(&series, start_ms, end_ms)
            .into_iter()
            .map(|(time_ms, value)| wit::Sample { time_ms, value })
            .collect()
    }

    fn call_results(&mut self) -> Vec<wit::CallResult> {
        self.outcomes.drain()
    }
}

fn level_name(level: wit::LogLevel) -> &'static str {
    match level {
        wit::LogLevel::Trace => "trace",
        wit::LogLevel::Debug => "debug",
        wit::LogLevel::Info => "info",
        wit::LogLevel::Warn => "warn",
        wit::LogLevel::Error => "error",
    }
}

/// Engine + linker + code cache; cheap to share.
pub struct PluginEngine {
    pub engine: Engine,
    linker: Linker<HostState>,
    cache: CodeCache,
}

/// A compiled, linked component, ready to instantiate.
pub struct Loaded {
    pub pre: ControllerPre<HostState>,
    /// The `hearth:controller` version the plugin was built against.
    pub wit_version: String,
    pub cache: CacheOutcome,
    /// Time to compile or load from the cache, and link.
    pub load_time: Duration,
}

impl PluginEngine {
    /// An engine without a code cache (every load compiles).
    pub fn new() -> anyhow::Result<Arc<Self>> {
        Self::with_cache(CodeCache::new(None))
    }

    pub fn with_cache(cache: CodeCache) -> anyhow::Result<Arc<Self>> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // Fuel gives a deterministic CPU budget per call and the figure
        // `hearth plugin list` shows; the epoch deadline bounds wall time.
        config.consume_fuel(true);
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
        Ok(Arc::new(PluginEngine {
            engine,
            linker,
            cache,
        }))
    }

    /// Compiles (or loads from the cache) and links a component. Rejects
    /// one built against another major (or, in 0.x, minor) version of
    /// `hearth:controller`.
    pub fn load(&self, bytes: &[u8]) -> anyhow::Result<Loaded> {
        let started = std::time::Instant::now();
        anyhow::ensure!(
            bytes.starts_with(b"\0asm"),
            "not a valid WebAssembly component: the file does not start with the `\\0asm` magic"
        );
        let (component, cache) = self
            .cache
            .component(&self.engine, bytes)
            .context("not a valid WebAssembly component")?;
        let ours = WIT_PACKAGE.rsplit_once('@').map(|(_, v)| v).unwrap_or("");
        let mut wit_version = None;
        let ty = component.component_type();
        for (name, _) in ty.imports(&self.engine) {
            if let Some(rest) = name.strip_prefix("hearth:controller/") {
                let Some((_, version)) = rest.split_once('@') else {
                    bail!(
                        "plugin imports `{name}` without a version; build it against wit/controller.wit (hearth:controller@{ours})"
                    );
                };
                if !compatible(ours, version) {
                    bail!(
                        "plugin imports `{name}`: built for hearth:controller@{version}, this host implements @{ours} (accepted: {})",
                        accepted_range(ours)
                    );
                }
                wit_version = Some(version.to_string());
            }
        }
        // Plugins get no WASI: a std guest imports WASI interfaces it never
        // calls; they are defined as traps so it links, and traps if used.
        let mut linker = self.linker.clone();
        stub_foreign_imports(&mut linker, &component, &self.engine)?;
        let pre = linker.instantiate_pre(&component)?;
        let pre = ControllerPre::new(pre)
            .map_err(anyhow::Error::from)
            .context("component does not export the hearth:controller `controller` world")?;
        Ok(Loaded {
            pre,
            wit_version: wit_version.unwrap_or_else(|| ours.to_string()),
            cache,
            load_time: started.elapsed(),
        })
    }
}

/// Defines every import outside `hearth:controller` as functions that trap.
///
/// Not `Linker::define_unknown_imports_as_traps`: it looks names up exactly,
/// so a plugin built for an older compatible contract (importing
/// `hearth:controller/host@0.1.0` from a 0.1.1 host) would get trap stubs
/// under that exact name instead of the host's functions, which the linker
/// otherwise finds by semver.
fn stub_foreign_imports(
    linker: &mut Linker<HostState>,
    component: &wasmtime::component::Component,
    engine: &Engine,
) -> anyhow::Result<()> {
    use wasmtime::component::types::ComponentItem;
    use wasmtime::component::{LinkerInstance, ResourceType};
    fn stub(
        at: &mut LinkerInstance<'_, HostState>,
        name: &str,
        item: ComponentItem,
        engine: &Engine,
        path: &str,
    ) -> anyhow::Result<()> {
        match item {
            ComponentItem::ComponentFunc(_) => {
                if let Some(answer) = inert_answer(path, name) {
                    at.func_new(name, move |_, _, _, results| {
                        if let Some(slot) = results.first_mut() {
                            *slot = answer.clone();
                        }
                        Ok(())
                    })?;
                    return Ok(());
                }
                let what = format!("{path}#{name}");
                at.func_new(name, move |_, _, _, _| {
                    Err(wasmtime::Error::msg(format!(
                        "called `{what}`: plugins get no WASI capability"
                    )))
                })?;
            }
            ComponentItem::ComponentInstance(instance) => {
                let mut inner = at.instance(name)?;
                for (export, item) in instance.exports(engine) {
                    stub(&mut inner, export, item.ty, engine, name)?;
                }
            }
            ComponentItem::Resource(_) => {
                at.resource(name, ResourceType::host::<()>(), |_, _| Ok(()))?;
            }
            _ => {}
        }
        Ok(())
    }
    let ty = component.component_type();
    for (name, item) in ty.imports(engine) {
        if name.starts_with("hearth:controller/") {
            continue;
        }
        stub(&mut linker.root(), name, item.ty, engine, "")?;
    }
    Ok(())
}

/// Fixed answers to the two WASI calls Rust's standard library and common
/// numeric crates make without being asked (clarabel times its solves with
/// `Instant`; every `HashMap` seeds its hasher), so such plugins run
/// instead of trapping. They grant nothing: the monotonic clock stands
/// still at 0 (plugins read time through `host.now-ms`), and the "random"
/// seed is a constant, which keeps simulations reproducible. The cost of a
/// known seed: whoever controls a plugin's inputs could make its hash maps
/// slow (HashDoS), which the plugin's fuel and time budgets bound. Every
/// other WASI function traps.
fn inert_answer(instance: &str, func: &str) -> Option<wasmtime::component::Val> {
    use wasmtime::component::Val;
    let interface = instance.split('@').next().unwrap_or(instance);
    match (interface, func) {
        ("wasi:clocks/monotonic-clock", "now") => Some(Val::U64(0)),
        ("wasi:clocks/monotonic-clock", "resolution") => Some(Val::U64(1)),
        ("wasi:random/insecure-seed", "insecure-seed") => Some(Val::Tuple(vec![
            Val::U64(0x9e37_79b9_7f4a_7c15),
            Val::U64(0xbf58_476d_1ce4_e5b9),
        ])),
        _ => None,
    }
}

/// What a host at `host` accepts, in words.
pub fn accepted_range(host: &str) -> String {
    let mut it = host.split('.');
    let (major, minor) = (it.next().unwrap_or("0"), it.next().unwrap_or("0"));
    if major == "0" {
        format!("0.{minor}.0 to {host}")
    } else {
        format!("{major}.0.0 to {host}")
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
