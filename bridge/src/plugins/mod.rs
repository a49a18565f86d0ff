//! The plugin host (DESIGN.md §5): controller plugins are WebAssembly
//! components (`wit/`, package `hearth:controller@0.1.2`) run by wasmtime
//! with no WASI capability, a memory cap and a CPU deadline per call.
//!
//! - [`engine`]: the wasmtime engine, compilation, the host imports.
//! - [`instance`]: one sandboxed instance and its calls, faults named.
//! - [`runner`]: one thread per plugin: feeds it events and ticks, routes its
//!   service calls, contains faults and restarts with backoff.
//! - [`cache`]: compiled code on disk, so a restart does not recompile.
//! - [`manager`]: the lifecycle (load, swap, unload, list, logs) that the
//!   CLI, the WebSocket API and MQTT requests all go through.
//! - [`directory`]: `<data-dir>/plugins/*.wasm` with sidecar configs, and
//!   the opt-in watch that swaps a changed file.
//! - [`logbook`]: each plugin's recent log lines.
//! - [`saved`]: each plugin's `save` state on disk between runs.
//! - [`outcomes`]: the outcomes of a plugin's service calls, for the plugin.
//! - [`builtin`]: the plugins compiled into the `hearth` binary.

pub mod builtin;
pub mod cache;
pub mod coalesce;
pub mod directory;
pub mod engine;
pub mod instance;
pub mod logbook;
pub mod manager;
pub mod outcomes;
pub mod owned;
pub mod prepare;
pub mod runner;
pub mod saved;
pub mod scaffold;

use serde::{Deserialize, Serialize};

pub use directory::DirectoryConfig;
pub use engine::PluginEngine;
pub use manager::{PluginManager, SwapRequest};
pub use runner::{PluginHandle, PluginStatus, RunState, SwapReport};

/// `[[plugin]]` in the config file; also what a load request carries.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Instance name, `[a-z0-9_-]+`; the plugin's HA device is `plugin-<name>`.
    pub name: String,
    /// `builtin:<name>` or a path to a `.wasm` component.
    pub wasm: String,
    /// Passed to the plugin's `init` as JSON (a TOML table in files).
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    #[serde(default)]
    pub limits: Limits,
    /// If set, the only entities the plugin may drive: a plugin that
    /// declares others is refused at load. Unset: whatever it declares.
    #[serde(default)]
    pub drives: Option<Vec<String>>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// Sandbox limits of one plugin.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap, MiB.
    #[serde(default = "default_memory")]
    pub memory_mib: u32,
    /// Wall-clock budget of one call, ms (epoch deadline, 10 ms resolution).
    #[serde(default = "default_timeout")]
    pub call_timeout_ms: u64,
    /// CPU budget of one call in wasmtime fuel units (about one per
    /// WebAssembly instruction): deterministic, unlike the wall deadline.
    #[serde(default = "default_fuel")]
    pub fuel_per_call: u64,
    /// Longest wait between restarts of a faulting plugin, s.
    #[serde(default = "default_backoff")]
    pub max_backoff_s: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: default_memory(),
            call_timeout_ms: default_timeout(),
            fuel_per_call: default_fuel(),
            max_backoff_s: default_backoff(),
        }
    }
}

fn default_memory() -> u32 {
    32
}
fn default_timeout() -> u64 {
    200
}
fn default_backoff() -> f64 {
    60.0
}
fn default_fuel() -> u64 {
    1_000_000_000
}

impl Limits {
    /// Refuses limits that would make a plugin unusable or unbounded.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=4096).contains(&self.memory_mib),
            "limits.memory_mib must be 1 to 4096 MiB (got {})",
            self.memory_mib
        );
        anyhow::ensure!(
            (10..=60_000).contains(&self.call_timeout_ms),
            "limits.call_timeout_ms must be 10 to 60000 ms (got {})",
            self.call_timeout_ms
        );
        anyhow::ensure!(
            self.fuel_per_call >= 1_000_000,
            "limits.fuel_per_call must be at least 1000000 (got {})",
            self.fuel_per_call
        );
        anyhow::ensure!(
            self.max_backoff_s.is_finite() && (1.0..=86_400.0).contains(&self.max_backoff_s),
            "limits.max_backoff_s must be 1 to 86400 s (got {})",
            self.max_backoff_s
        );
        Ok(())
    }
}

/// The WIT package this host implements.
pub const WIT_PACKAGE: &str = "hearth:controller@0.1.2";
