//! The plugin host (DESIGN.md §5): controller plugins are WebAssembly
//! components (`wit/`, package `hearth:controller@0.1.0`) run by wasmtime
//! with no WASI capability, a memory cap and a CPU deadline per call.
//!
//! - [`engine`]: the wasmtime engine, compilation, the host imports.
//! - [`instance`]: one sandboxed instance and its calls, faults named.
//! - [`runner`]: one thread per plugin: feeds it events and ticks, routes its
//!   service calls, contains faults and restarts with backoff.
//! - [`builtin`]: the plugins compiled into the `hearth` binary.

pub mod builtin;
pub mod engine;
pub mod instance;
pub mod runner;

use serde::Deserialize;

pub use engine::PluginEngine;
pub use runner::{PluginHandle, PluginStatus};

/// `[[plugin]]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Instance name, `[a-z0-9_-]+`; the plugin's HA device is `plugin-<name>`.
    pub name: String,
    /// `builtin:<name>` or a path to a `.wasm` component.
    pub wasm: String,
    /// Passed to the plugin's `init` as JSON.
    #[serde(default = "empty_table")]
    pub config: toml::Value,
    #[serde(default)]
    pub limits: Limits,
    /// If set, the only entities the plugin may drive: a plugin that
    /// declares others is refused at load. Unset: whatever it declares.
    #[serde(default)]
    pub drives: Option<Vec<String>>,
}

fn empty_table() -> toml::Value {
    toml::Value::Table(Default::default())
}

/// Sandbox limits of one plugin.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap, MiB.
    #[serde(default = "default_memory")]
    pub memory_mib: u32,
    /// Wall-clock budget of one call, ms (epoch deadline, 10 ms resolution).
    #[serde(default = "default_timeout")]
    pub call_timeout_ms: u64,
    /// Longest wait between restarts of a faulting plugin, s.
    #[serde(default = "default_backoff")]
    pub max_backoff_s: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: default_memory(),
            call_timeout_ms: default_timeout(),
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

/// The WIT package this host implements.
pub const WIT_PACKAGE: &str = "hearth:controller@0.1.0";
