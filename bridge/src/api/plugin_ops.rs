//! The plugin lifecycle as requests with JSON arguments, shared by the
//! WebSocket API (`hearth/plugins/<op>`), MQTT requests
//! (`<base>/bridge/request/plugin/<op>`) and so the CLI:
//!
//! | op | arguments | result |
//! |---|---|---|
//! | `list` | — | `[status]` (see `PluginStatus`) |
//! | `load` | `name`, `wasm`, `config`?, `limits`?, `drives`? | `status` |
//! | `swap` | `name`, `wasm`, `config`?, `limits`?, `drives`? (unset: the config this instance last ran `wasm` with, else the running one) | swap report |
//! | `config` | `name` | `{name, wasm, config, limits, drives, remembered}`: the running config, and the plugins a swap back restores the config of |
//! | `unload` | `name` | `{name}` |
//! | `logs` | `name`, `lines`? (default 100, at most 1000) | `[{time_ms, level, source, message}]` |
//! | `builtins` | — | `[name]`: the plugins compiled into this binary (`wasm = "builtin:<name>"`) |
//!
//! `wasm` is `builtin:<name>` or a path on the bridge's machine.

use super::calls::Failure;
use super::websocket::protocol::{ERR_HOME_ASSISTANT_ERROR, ERR_INVALID_FORMAT, ERR_NOT_FOUND};
use crate::plugins::{Limits, PluginConfig, PluginManager, SwapRequest};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    List,
    Load,
    Swap,
    Unload,
    Logs,
    Config,
    Builtins,
}

impl Op {
    pub const ALL: [(&'static str, Op); 7] = [
        ("list", Op::List),
        ("load", Op::Load),
        ("swap", Op::Swap),
        ("unload", Op::Unload),
        ("logs", Op::Logs),
        ("config", Op::Config),
        ("builtins", Op::Builtins),
    ];

    pub fn parse(name: &str) -> Option<Op> {
        Op::ALL.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Name {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwapArgs {
    name: String,
    wasm: String,
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    drives: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsArgs {
    name: String,
    #[serde(default = "default_lines")]
    lines: usize,
}

fn default_lines() -> usize {
    100
}

fn args<T: serde::de::DeserializeOwned>(op: &str, args: Map<String, Value>) -> Result<T, Failure> {
    serde_json::from_value(Value::Object(args)).map_err(|e| {
        Failure::new(
            ERR_INVALID_FORMAT,
            format!("plugin {op} request: {e} (see docs/writing-a-plugin.md)"),
        )
    })
}

fn not_found(manager: &PluginManager, name: &str) -> Result<(), Failure> {
    match manager.status(name) {
        Some(_) => Ok(()),
        None => Err(Failure::new(
            ERR_NOT_FOUND,
            format!("no plugin `{name}` is loaded"),
        )),
    }
}

fn failed(e: anyhow::Error) -> Failure {
    Failure::new(ERR_HOME_ASSISTANT_ERROR, format!("{e:#}"))
}

/// Runs one operation (blocking work on the blocking pool).
pub async fn run(
    manager: Arc<PluginManager>,
    op: Op,
    request: Map<String, Value>,
) -> Result<Value, Failure> {
    match op {
        Op::List => {
            args::<NoArgs>("list", request)?;
            Ok(json!(manager.list()))
        }
        Op::Builtins => {
            args::<NoArgs>("builtins", request)?;
            let names: Vec<&str> = crate::plugins::builtin::BUILTIN
                .iter()
                .map(|(n, _)| *n)
                .collect();
            Ok(json!(names))
        }
        Op::Config => {
            let a: Name = args("config", request)?;
            manager
                .running_config(&a.name)
                .map(|c| json!(c))
                .ok_or_else(|| {
                    Failure::new(ERR_NOT_FOUND, format!("no plugin `{}` is loaded", a.name))
                })
        }
        Op::Logs => {
            let a: LogsArgs = args("logs", request)?;
            let lines = a.lines.clamp(1, crate::plugins::logbook::LINES_KEPT);
            manager
                .logs(&a.name, lines)
                .map(|l| json!(l))
                .map_err(|e| Failure::new(ERR_NOT_FOUND, format!("{e:#}")))
        }
        Op::Load => {
            let a: SwapArgs = args("load", request)?;
            let cfg = PluginConfig {
                name: a.name,
                wasm: a.wasm,
                config: a.config.unwrap_or_else(|| json!({})),
                limits: a.limits.unwrap_or_default(),
                drives: a.drives,
            };
            blocking(move || manager.load(cfg).map(|s| json!(s))).await
        }
        Op::Swap => {
            let a: SwapArgs = args("swap", request)?;
            not_found(&manager, &a.name)?;
            let req = SwapRequest {
                wasm: a.wasm,
                config: a.config,
                limits: a.limits,
                drives: a.drives,
            };
            blocking(move || manager.swap(&a.name, req).map(|r| json!(r))).await
        }
        Op::Unload => {
            let a: Name = args("unload", request)?;
            not_found(&manager, &a.name)?;
            blocking(move || manager.unload(&a.name).map(|()| json!({"name": a.name}))).await
        }
    }
}

async fn blocking(
    f: impl FnOnce() -> anyhow::Result<Value> + Send + 'static,
) -> Result<Value, Failure> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(failed),
        Err(e) => Err(Failure::new(
            ERR_HOME_ASSISTANT_ERROR,
            format!("plugin operation failed: {e}"),
        )),
    }
}
