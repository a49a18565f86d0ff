//! `hearth plugin list|load|swap|unload|logs|config`: the plugin lifecycle of a
//! running bridge, through its WebSocket API (`hearth/plugins/*`), so the
//! CLI needs a token (`hearth token create --name cli`) and nothing else.
//! `hearth plugin new` scaffolds a plugin crate and needs no bridge.

use crate::api::client::ApiClient;
use crate::plugins::directory::Sidecar;
use anyhow::Context;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Where and how to reach the bridge.
pub struct Target {
    pub url: String,
    pub token: String,
}

impl Target {
    pub async fn connect(&self) -> anyhow::Result<ApiClient> {
        ApiClient::connect(&self.url, &self.token).await
    }
}

/// `wasm` as the bridge should read it: `builtin:<name>` as is; a file that
/// exists here as an absolute path (the bridge may run in another
/// directory); anything else as given, a path on the bridge's machine.
pub fn wasm_arg(wasm: &str) -> anyhow::Result<String> {
    if wasm.starts_with("builtin:") {
        return Ok(wasm.to_string());
    }
    Ok(std::fs::canonicalize(wasm)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| wasm.to_string()))
}

/// Reads a sidecar-shaped TOML file (`drives`, `[config]`, `[limits]`).
pub fn read_sidecar(path: &Path) -> anyhow::Result<Sidecar> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| {
        format!(
            "{}: expected `drives = [...]`, a `[config]` table and a `[limits]` table",
            path.display()
        )
    })
}

/// The request of `load` or `swap`.
pub fn request(name: &str, wasm: &str, config: Option<&PathBuf>) -> anyhow::Result<Value> {
    let mut req = json!({"name": name, "wasm": wasm_arg(wasm)?});
    if let Some(path) = config {
        let s = read_sidecar(path)?;
        if let Some(c) = s.config {
            req["config"] = c;
        }
        if let Some(l) = s.limits {
            req["limits"] = json!(l);
        }
        if let Some(d) = s.drives {
            req["drives"] = json!(d);
        }
    }
    Ok(req)
}

/// `hearth plugin list` as a table.
pub fn format_list(list: &Value) -> String {
    let mut out = format!(
        "{:<16} {:<10} {:<22} {:<24} {:>8} {:>6} {:>6} {:>10} {:>8}\n",
        "NAME", "STATUS", "PLUGIN", "WIT", "EVENTS", "CALLS", "FAULTS", "FUEL/CALL", "MEMORY"
    );
    for p in list.as_array().into_iter().flatten() {
        let s = |k: &str| p[k].as_str().unwrap_or("").to_string();
        let n = |k: &str| p[k].as_u64().unwrap_or(0);
        out.push_str(&format!(
            "{:<16} {:<10} {:<22} {:<24} {:>8} {:>6} {:>6} {:>10} {:>7}K\n",
            s("name"),
            s("status"),
            format!("{} {}", s("plugin"), s("version")),
            s("wit"),
            n("events"),
            n("calls"),
            n("faults"),
            p["stats"]["fuel_max"].as_u64().unwrap_or(0),
            p["stats"]["memory_bytes"].as_u64().unwrap_or(0) / 1024,
        ));
        out.push_str(&format!(
            "    reads {}  drives {}\n",
            p["reads"], p["drives"]
        ));
        if let Some(f) = p["last_fault"].as_str() {
            out.push_str(&format!("    last fault: {f}\n"));
        }
    }
    out
}

/// `hearth plugin config` as the TOML file `--config` takes (`drives`,
/// `[config]`, `[limits]`), so `hearth plugin config thermostat > t.toml`
/// is a starting point for a swap.
pub fn format_config(answer: &Value) -> anyhow::Result<String> {
    let name = answer["name"].as_str().unwrap_or("");
    let mut sidecar = toml::Table::new();
    if let Some(d) = answer["drives"].as_array() {
        sidecar.insert("drives".into(), toml_value(&json!(d))?);
    }
    sidecar.insert("config".into(), toml_value(&answer["config"])?);
    sidecar.insert("limits".into(), toml_value(&answer["limits"])?);
    let remembered: Vec<&str> = answer["remembered"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    Ok(format!(
        "# Plugin `{name}` runs {} with this config (hearth plugin config {name}).\n\
         # A swap without --config to one of {remembered:?} restores the config\n\
         # it last ran that plugin with.\n{}",
        answer["wasm"].as_str().unwrap_or(""),
        toml::to_string(&sidecar).context("the config cannot be written as TOML")?
    ))
}

/// JSON → TOML (TOML has no null: a null is left out).
fn toml_value(v: &Value) -> anyhow::Result<toml::Value> {
    let stripped = strip_nulls(v.clone());
    toml::Value::try_from(stripped).context("the config cannot be written as TOML")
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// `hearth plugin logs` lines.
pub fn format_logs(lines: &Value) -> String {
    let mut out = String::new();
    for l in lines.as_array().into_iter().flatten() {
        let time = l["time_ms"]
            .as_i64()
            .map(crate::clock::iso8601)
            .unwrap_or_default();
        out.push_str(&format!(
            "{time} {:<5} {:<6} {}\n",
            l["level"].as_str().unwrap_or(""),
            l["source"].as_str().unwrap_or(""),
            l["message"].as_str().unwrap_or("")
        ));
    }
    out
}
