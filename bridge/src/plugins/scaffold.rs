//! `hearth plugin new NAME`: a standalone plugin crate, outside any
//! workspace, whose unit tests run natively with a plain `cargo test` (the
//! SDK's fake host, `hearth_plugin_sdk::testing`) and whose component builds
//! with `cargo build --release --target wasm32-wasip2` (alias `cargo wasm`).
//! No `build.target` is forced: a test binary built for wasm32 cannot run
//! on the host.
//!
//! ```text
//! NAME/
//!   Cargo.toml               own [workspace]; cdylib; small release profile
//!   rust-toolchain.toml      1.95.0 + wasm32-wasip2
//!   .cargo/config.toml       alias `cargo wasm` = the component's build
//!   src/lib.rs               a small, real controller (threshold + hysteresis)
//!                            and its native unit tests
//!   NAME.toml                sample sidecar: [config], [limits], drives
//!   README.md                build, load, swap
//!   hearth-plugin-sdk/       the SDK, vendored: Cargo.toml, src/lib.rs,
//!                            src/testing.rs, src/time.rs, wit/controller.wit
//! ```
//!
//! The vendored SDK is this repository's `plugins/sdk` and `wit/` at build
//! time, its manifest resolved from `plugins/sdk/Cargo.toml` and the
//! workspace's `[workspace.dependencies]`, so it cannot drift from the SDK
//! the bundled plugins use.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

const SDK_LIB: &str = include_str!("../../../plugins/sdk/src/lib.rs");
const SDK_TESTING: &str = include_str!("../../../plugins/sdk/src/testing.rs");
const SDK_TIME: &str = include_str!("../../../plugins/sdk/src/time.rs");
const SDK_MANIFEST: &str = include_str!("../../../plugins/sdk/Cargo.toml");
const WORKSPACE_MANIFEST: &str = include_str!("../../../Cargo.toml");
const WIT: &str = include_str!("../../../wit/controller.wit");
const REPO_TOOLCHAIN: &str = include_str!("../../../rust-toolchain.toml");

const LIB_RS: &str = r#####"//! `{{NAME}}`: a Hearth controller plugin (made by `hearth plugin new`).
//!
//! Turns `switch` on when `sensor` reads at least `threshold` °C and off
//! below `threshold − hysteresis` °C; in between it keeps its last command.
//! Every tick it re-sends that command (a one-way link — IR, 433 MHz — can
//! lose one). It publishes its own sensor `switchings`, the number of times it
//! switched, which survives restarts and swaps through `save`/`restore`.
//!
//! Test: `cargo test` (natively, against the SDK's fake host).
//! Build: `cargo build --release --target wasm32-wasip2` (or `cargo wasm`)
//! → `target/wasm32-wasip2/release/{{LIB}}.wasm`.
//! The SDK's documentation: `cargo doc --open -p hearth-plugin-sdk`.

use hearth_plugin_sdk::serde_json::Value;
use hearth_plugin_sdk::{
    Change, Controller, Description, Output, State, export_controller, info, parse_config,
    restore_json, save_json, sensor,
};
use serde::{Deserialize, Serialize};

/// The config: the `[config]` table of `{{NAME}}.toml`, as JSON.
/// No `deny_unknown_fields`, so a config written for another plugin with
/// these keys is accepted too.
#[derive(Debug, Clone, Deserialize)]
struct Config {
    /// Temperature sensor (°C).
    sensor: String,
    /// The switch to drive.
    switch: String,
    /// On at or above this temperature, °C.
    threshold: f64,
    /// Off below `threshold - hysteresis`, °C.
    #[serde(default = "default_hysteresis")]
    hysteresis: f64,
    /// Tick period, s: how often the command is re-sent.
    #[serde(default = "default_period")]
    period_s: u32,
}

fn default_hysteresis() -> f64 {
    0.5
}
fn default_period() -> u32 {
    300
}

/// What survives a restart or a swap. Tolerant: every field has a default
/// and unknown fields are ignored, so state from another version (or
/// another plugin) carries over where the fields match.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// The last command: `Some(true)` = on.
    #[serde(default)]
    on: Option<bool>,
    /// How many times it switched.
    #[serde(default)]
    switchings: u64,
}

/// Object id of the plugin's own sensor (in Home Assistant on the device
/// `plugin-<name>`).
const SWITCHINGS: &str = "switchings";

struct Plugin {
    cfg: Config,
    saved: Saved,
}

impl Plugin {
    /// The command for a temperature (°C): `None` inside the hysteresis band.
    fn decide(&self, celsius: f64) -> Option<bool> {
        if celsius >= self.cfg.threshold {
            Some(true)
        } else if celsius < self.cfg.threshold - self.cfg.hysteresis {
            Some(false)
        } else {
            None
        }
    }

    /// Reads the sensor, decides, and sends a command if it changed (or
    /// always, with `resend`).
    fn control(&mut self, out: &mut Output, resend: bool) {
        let Some(celsius) = State::get(&self.cfg.sensor).and_then(|s| s.number()) else {
            return; // no reading (unavailable): keep the last command
        };
        let Some(on) = self.decide(celsius).or(self.saved.on) else {
            return; // inside the band, nothing sent yet
        };
        if self.saved.on != Some(on) {
            info(&format!(
                "{} → {} at {celsius:.1} °C",
                self.cfg.switch,
                if on { "on" } else { "off" }
            ));
            self.saved.on = Some(on);
            self.saved.switchings += 1;
        } else if !resend {
            return;
        }
        if on {
            out.turn_on(&self.cfg.switch);
        } else {
            out.turn_off(&self.cfg.switch);
        }
        out.number(SWITCHINGS, self.saved.switchings as f64, 0);
    }
}

impl Controller for Plugin {
    fn init(config: Value) -> Result<Self, String> {
        let cfg: Config = parse_config(config)?;
        if !cfg.hysteresis.is_finite() || cfg.hysteresis < 0.0 || cfg.period_s == 0 {
            return Err("config: `hysteresis` must be ≥ 0 °C and `period_s` > 0".into());
        }
        Ok(Plugin {
            cfg,
            saved: Saved::default(),
        })
    }

    fn describe(&self) -> Description {
        Description {
            name: "{{NAME}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            reads: vec![self.cfg.sensor.clone()],
            drives: vec![self.cfg.switch.clone()],
            config_schema: "{}".into(),
            tick_period_ms: self.cfg.period_s.saturating_mul(1000),
            entities: vec![sensor(SWITCHINGS, "Switchings").state_class("total_increasing")],
        }
    }

    fn on_state(&mut self, change: Change, out: &mut Output) {
        // Only entities in `describe().reads` come here.
        if change.entity_id == self.cfg.sensor {
            self.control(out, false);
        }
    }

    fn tick(&mut self, _now_ms: i64, out: &mut Output) {
        self.control(out, true);
    }

    fn save(&self) -> Vec<u8> {
        save_json(&self.saved)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.saved = restore_json(bytes)?;
        Ok(())
    }
}

export_controller!(Plugin);

/// Native tests (`cargo test`): the SDK's harness plays the bridge.
#[cfg(test)]
mod tests {
    use super::*;
    use hearth_plugin_sdk::serde_json::json;
    use hearth_plugin_sdk::testing::Harness;

    fn plugin() -> Harness<Plugin> {
        Harness::new(json!({
            "sensor": "sensor.room_temperature",
            "switch": "switch.fan",
            "threshold": 25.0,
        }))
        .unwrap()
    }

    #[test]
    fn switches_on_above_the_threshold_and_off_below_the_band() {
        let mut h = plugin();
        let out = h.set_state("sensor.room_temperature", "25.2", json!({}));
        assert_eq!(out.calls().len(), 1);
        assert_eq!(out.calls()[0].service, "turn_on");
        // Inside the band (24.5–25 °C): nothing new.
        let out = h.set_state("sensor.room_temperature", "24.8", json!({}));
        assert!(out.calls().is_empty());
        let out = h.set_state("sensor.room_temperature", "24.4", json!({}));
        assert_eq!(out.calls()[0].service, "turn_off");
        // The tick re-sends the last command and publishes the count.
        let out = h.tick(h.now_ms() + 300_000);
        assert_eq!(out.calls()[0].service, "turn_off");
        assert_eq!(out.entities()[0].state, "2");
    }

    #[test]
    fn an_unavailable_sensor_keeps_the_last_command() {
        let mut h = plugin();
        h.set_state("sensor.room_temperature", "26", json!({}));
        let out = h.set_state("sensor.room_temperature", "unavailable", json!({}));
        assert!(out.calls().is_empty());
    }

    #[test]
    fn the_count_survives_a_restart() {
        let mut h = plugin();
        h.set_state("sensor.room_temperature", "26", json!({}));
        let saved = h.save();
        let mut fresh = plugin();
        fresh.restore(&saved).unwrap();
        assert_eq!(fresh.plugin().saved.switchings, 1);
    }
}
"#####;

const README_MD: &str = r#####"# {{NAME}}

A Hearth controller plugin: a WebAssembly component
for `wasm32-wasip2` built against Hearth's WIT contract
(`hearth-plugin-sdk/wit/controller.wit`, package `{{WIT}}`). Made by
`hearth plugin new {{NAME}}`.

What it does (see `src/lib.rs`): turns `switch` on when `sensor` reads at
least `threshold` °C, off below `threshold − hysteresis` °C, re-sends its
command every `period_s` s, and counts its switchings in its own sensor.

## Test and build

```sh
cargo test                                      # native unit tests (src/lib.rs `mod tests`)
cargo build --release --target wasm32-wasip2    # the component; `cargo wasm` is the same
```

The tests run on your machine, not in WebAssembly: the SDK's
`hearth_plugin_sdk::testing::Harness` plays the bridge (states, ticks, the
clock, refused calls) and collects the plugin's calls, alerts and logs.
That is why `.cargo/config.toml` does not force the wasm target (a test
binary built for wasm32 cannot run here); it only defines `cargo wasm`.

The toolchain ({{CHANNEL}} with the `wasm32-wasip2` target) comes from
`rust-toolchain.toml`; if rustup does not install the target on its own:
`rustup target add wasm32-wasip2`.
The component is `target/wasm32-wasip2/release/{{LIB}}.wasm` (cargo turns
`-` into `_`).

## Run it in a bridge

With a running bridge (`hearth demo` will do) and a token
(`hearth token create --name cli`, passed as `--token` or `HEARTH_TOKEN`):

```sh
export HEARTH_TOKEN=…
hearth plugin load {{NAME}} target/wasm32-wasip2/release/{{LIB}}.wasm --config {{NAME}}.toml
hearth plugin list
hearth plugin logs {{NAME}}
# after a rebuild: replace it, carrying its saved state over
hearth plugin swap {{NAME}} target/wasm32-wasip2/release/{{LIB}}.wasm
hearth plugin unload {{NAME}}
```

Or install it in the bridge's plugin directory, loaded at start:
copy `target/wasm32-wasip2/release/{{LIB}}.wasm` to
`<data-dir>/plugins/{{NAME}}.wasm` and `{{NAME}}.toml` beside it (with
`[plugins] watch = true` in the bridge's config, a changed file is swapped in).

## Layout

| path | what |
|---|---|
| `src/lib.rs` | the plugin and its tests |
| `{{NAME}}.toml` | its config (`[config]`), sandbox limits (`[limits]`), optional `drives` |
| `hearth-plugin-sdk/` | the SDK, vendored: typed helpers over the bindings generated from `hearth-plugin-sdk/wit/controller.wit` |

The bridge accepts a plugin built for the same WIT major version whose
minor.patch is not newer than its own (while the major is 0, the minor must
match). To move to a newer contract, replace `hearth-plugin-sdk/` with the
one a newer `hearth plugin new` writes.

Writing plugins: `docs/writing-a-plugin.md` in the Hearth repository;
the SDK's API: `cargo doc --open -p hearth-plugin-sdk`.
"#####;

const SIDECAR_TOML: &str = r#####"# Plugin `{{NAME}}`: what `hearth plugin load {{NAME}} … --config {{NAME}}.toml`
# sends, and the sidecar of `<data-dir>/plugins/{{NAME}}.wasm`.

# Optional: the only entities the plugin may drive; a plugin declaring
# others is refused. Unset: whatever it declares. (A top-level key: keep it
# above the tables.)
# drives = ["switch.server_room_ac_power"]

# Passed to the plugin's `init` as JSON.
[config]
sensor = "sensor.server_room_temperature"
switch = "switch.server_room_ac_power"
# In `hearth demo` the thermostat plugin drives this switch, and an entity
# has one controller: `hearth plugin unload thermostat` first.
threshold = 24.5     # °C: on at or above
hysteresis = 0.5     # °C: off below threshold − hysteresis
period_s = 300       # s: re-send the command this often

# Sandbox limits, the defaults shown.
[limits]
memory_mib = 32              # MiB of linear memory
call_timeout_ms = 200        # wall-clock budget of one call
fuel_per_call = 1000000000   # CPU budget of one call (≈ WebAssembly instructions)
max_backoff_s = 60           # longest wait between restarts after faults
"#####;

const CARGO_TOML: &str = r#####"[package]
name = "{{NAME}}"
version = "0.1.0"
edition = "2024"
rust-version = "1.95"
publish = false

[lib]
# A WebAssembly component with `--target wasm32-wasip2` (`cargo wasm`); `cargo test`
# builds the unit tests for the host.
crate-type = ["cdylib"]

[dependencies]
hearth-plugin-sdk = { path = "hearth-plugin-sdk" }
serde = { version = "1", default-features = false, features = ["derive", "std"] }

# A workspace of its own, so that a workspace around this directory does not
# claim it (the vendored SDK below is its member).
[workspace]

# Small, no unwinding: a panic traps and the host restarts the plugin.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
panic = "abort"
"#####;

const TOOLCHAIN_TOML: &str = r#####"[toolchain]
channel = "{{CHANNEL}}"
components = ["rustfmt", "clippy"]
targets = ["wasm32-wasip2"]
"#####;

// No `[build] target`: `cargo test` must build for the host (see the
// module doc).
const CARGO_CONFIG_TOML: &str = r#####"# The component's build: `cargo wasm` (= cargo build --release --target wasm32-wasip2).
# No [build] target here: `cargo test` runs the unit tests natively.
[alias]
wasm = "build --release --target wasm32-wasip2"
"#####;

/// Names cargo refuses for a package, or that would clash with the SDK.
const RESERVED: &[&str] = &[
    "std",
    "core",
    "alloc",
    "test",
    "proc_macro",
    "proc-macro",
    "hearth-plugin-sdk",
    "hearth_plugin_sdk",
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "gen",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "yield",
];

/// Checks a plugin crate name: `[a-z][a-z0-9_-]*`, at most 64 characters,
/// not a name cargo reserves.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        bail!(
            "plugin name `{name}`: use a lowercase letter, then lowercase letters, digits, `_` or `-`"
        );
    }
    if name.len() > 64 {
        bail!("plugin name `{name}`: at most 64 characters");
    }
    if RESERVED.contains(&name) {
        bail!("plugin name `{name}` is reserved (a Rust keyword, a standard crate or the SDK)");
    }
    Ok(())
}

/// Creates the plugin crate `parent/name/` (and `parent` if missing) and
/// returns its path. Fails if `name` is not `[a-z][a-z0-9_-]*` or the
/// directory exists; a half-written crate is removed.
pub fn scaffold(parent: &Path, name: &str) -> anyhow::Result<PathBuf> {
    validate_name(name)?;
    let contents = files(name)?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let dir = parent.join(name);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} already exists", dir.display())
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let write_all = || -> anyhow::Result<()> {
        for (rel, text) in &contents {
            let path = dir.join(rel);
            if let Some(p) = path.parent() {
                std::fs::create_dir_all(p)?;
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    };
    if let Err(e) = write_all() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok(dir)
}

/// The crate's files: (path relative to the crate, contents).
fn files(name: &str) -> anyhow::Result<Vec<(String, String)>> {
    let lib = name.replace('-', "_");
    let fill = |t: &str| {
        t.replace("{{NAME}}", name)
            .replace("{{LIB}}", &lib)
            .replace("{{WIT}}", super::WIT_PACKAGE)
            .replace("{{CHANNEL}}", &toolchain_channel())
    };
    Ok(vec![
        ("Cargo.toml".into(), fill(CARGO_TOML)),
        ("rust-toolchain.toml".into(), fill(TOOLCHAIN_TOML)),
        (".cargo/config.toml".into(), CARGO_CONFIG_TOML.into()),
        (".gitignore".into(), "/target\n".into()),
        ("src/lib.rs".into(), fill(LIB_RS)),
        (format!("{name}.toml"), fill(SIDECAR_TOML)),
        ("README.md".into(), fill(README_MD)),
        ("hearth-plugin-sdk/Cargo.toml".into(), sdk_manifest()?),
        ("hearth-plugin-sdk/src/lib.rs".into(), SDK_LIB.into()),
        (
            "hearth-plugin-sdk/src/testing.rs".into(),
            SDK_TESTING.into(),
        ),
        ("hearth-plugin-sdk/src/time.rs".into(), SDK_TIME.into()),
        ("hearth-plugin-sdk/wit/controller.wit".into(), WIT.into()),
    ])
}

/// The repository's toolchain channel (`rust-toolchain.toml`).
fn toolchain_channel() -> String {
    toml::from_str::<toml::Table>(REPO_TOOLCHAIN)
        .ok()
        .and_then(|t| {
            t.get("toolchain")?
                .get("channel")?
                .as_str()
                .map(String::from)
        })
        .unwrap_or_else(|| "1.95.0".into())
}

/// `plugins/sdk/Cargo.toml` without workspace inheritance: `x.workspace =
/// true` and `dep = { workspace = true, … }` replaced by the workspace's
/// values (features merged, as cargo does).
fn sdk_manifest() -> anyhow::Result<String> {
    let ws: toml::Table = toml::from_str(WORKSPACE_MANIFEST).context("workspace Cargo.toml")?;
    let sdk: toml::Table = toml::from_str(SDK_MANIFEST).context("plugins/sdk/Cargo.toml")?;
    let ws = ws.get("workspace").and_then(|w| w.as_table());
    let ws_package = ws.and_then(|w| w.get("package")).and_then(|p| p.as_table());
    let ws_deps = ws
        .and_then(|w| w.get("dependencies"))
        .and_then(|d| d.as_table());

    let mut out = format!(
        "# Vendored by `hearth plugin new` from Hearth {}: the guest-side SDK and\n\
         # the WIT contract it is built against (wit/controller.wit, {}).\n\
         # Replace the whole directory to update it.\n[package]\n",
        env!("CARGO_PKG_VERSION"),
        super::WIT_PACKAGE
    );
    let package = sdk
        .get("package")
        .and_then(|p| p.as_table())
        .context("plugins/sdk/Cargo.toml has no [package]")?;
    // `name` first, as people write it; the rest in order.
    let mut keys: Vec<&String> = package.keys().collect();
    keys.sort_by_key(|k| k.as_str() != "name");
    for key in keys {
        let value = &package[key];
        let value = if is_inherited(value) {
            ws_package
                .and_then(|p| p.get(key))
                .with_context(|| format!("workspace.package.{key} is missing"))?
        } else {
            value
        };
        out.push_str(&format!("{key} = {value}\n"));
    }
    out.push_str("publish = false\n\n[dependencies]\n");
    let deps = sdk
        .get("dependencies")
        .and_then(|d| d.as_table())
        .context("plugins/sdk/Cargo.toml has no [dependencies]")?;
    for (dep, spec) in deps {
        let resolved = match spec.as_table() {
            Some(t) if t.get("workspace").and_then(|w| w.as_bool()) == Some(true) => {
                let base = ws_deps
                    .and_then(|d| d.get(dep))
                    .with_context(|| format!("workspace.dependencies.{dep} is missing"))?;
                let mut table = match base {
                    toml::Value::String(v) => {
                        let mut t = toml::Table::new();
                        t.insert("version".into(), toml::Value::String(v.clone()));
                        t
                    }
                    toml::Value::Table(t) => t.clone(),
                    other => bail!("workspace.dependencies.{dep}: unexpected {other}"),
                };
                if table.contains_key("path") {
                    bail!(
                        "the SDK depends on the workspace path crate `{dep}`; it cannot be vendored"
                    );
                }
                for (k, v) in t {
                    match k.as_str() {
                        "workspace" => {}
                        "features" => {
                            let mut all: Vec<toml::Value> = table
                                .get("features")
                                .and_then(|f| f.as_array())
                                .cloned()
                                .unwrap_or_default();
                            for f in v.as_array().into_iter().flatten() {
                                if !all.contains(f) {
                                    all.push(f.clone());
                                }
                            }
                            table.insert("features".into(), toml::Value::Array(all));
                        }
                        _ => {
                            table.insert(k.clone(), v.clone());
                        }
                    }
                }
                toml::Value::Table(table)
            }
            _ => spec.clone(),
        };
        out.push_str(&format!("{dep} = {resolved}\n"));
    }
    Ok(out)
}

fn is_inherited(value: &toml::Value) -> bool {
    value
        .as_table()
        .and_then(|t| t.get("workspace"))
        .and_then(|w| w.as_bool())
        == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_complete_crate() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = scaffold(tmp.path(), "my-plugin").unwrap();
        assert_eq!(dir, tmp.path().join("my-plugin"));
        for f in [
            "Cargo.toml",
            "rust-toolchain.toml",
            ".cargo/config.toml",
            "src/lib.rs",
            "my-plugin.toml",
            "README.md",
            "hearth-plugin-sdk/Cargo.toml",
            "hearth-plugin-sdk/src/lib.rs",
            "hearth-plugin-sdk/src/testing.rs",
            "hearth-plugin-sdk/wit/controller.wit",
        ] {
            assert!(dir.join(f).is_file(), "{f} missing");
        }
        // Every source file of the SDK is vendored (a module added to the
        // SDK without its file here broke the scaffold's build).
        let sdk_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk/src");
        for e in std::fs::read_dir(&sdk_src).unwrap().flatten() {
            let f = format!("hearth-plugin-sdk/src/{}", e.file_name().to_string_lossy());
            assert!(
                dir.join(&f).is_file(),
                "{f} is not vendored by the scaffold"
            );
        }
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        let cargo: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
        assert_eq!(cargo["package"]["name"].as_str(), Some("my-plugin"));
        assert!(cargo["workspace"].is_table(), "own workspace");
        assert_eq!(cargo["lib"]["crate-type"][0].as_str(), Some("cdylib"));
        assert_eq!(cargo["profile"]["release"]["panic"].as_str(), Some("abort"));
        let cfg: toml::Table = toml::from_str(&read(".cargo/config.toml")).unwrap();
        assert!(
            cfg.get("build").is_none(),
            "no forced target: tests run natively"
        );
        assert_eq!(
            cfg["alias"]["wasm"].as_str(),
            Some("build --release --target wasm32-wasip2")
        );
        assert!(read("src/lib.rs").contains("hearth_plugin_sdk::testing::Harness"));
        assert_eq!(read("hearth-plugin-sdk/src/testing.rs"), SDK_TESTING);
        assert_eq!(read("hearth-plugin-sdk/src/time.rs"), SDK_TIME);
        let tc: toml::Table = toml::from_str(&read("rust-toolchain.toml")).unwrap();
        assert_eq!(tc["toolchain"]["channel"].as_str(), Some("1.95.0"));
        assert!(read("README.md").contains("target/wasm32-wasip2/release/my_plugin.wasm"));
        assert!(read("src/lib.rs").contains("name: \"my-plugin\".into()"));
        assert!(!read("src/lib.rs").contains("{{"), "placeholders left");
        assert_eq!(read("hearth-plugin-sdk/src/lib.rs"), SDK_LIB);
        assert!(
            read("hearth-plugin-sdk/wit/controller.wit")
                .contains(&format!("package {};", crate::plugins::WIT_PACKAGE))
        );
        // The sample sidecar is what the bridge reads.
        let sidecar: crate::plugins::directory::Sidecar =
            toml::from_str(&read("my-plugin.toml")).unwrap();
        let config = sidecar.config.unwrap();
        assert_eq!(config["threshold"], serde_json::json!(24.5));
        sidecar.limits.unwrap().validate().unwrap();
    }

    #[test]
    fn vendored_sdk_manifest_has_no_workspace_inheritance() {
        let text = sdk_manifest().unwrap();
        assert!(!text.contains("workspace"), "{text}");
        let m: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(m["package"]["name"].as_str(), Some("hearth-plugin-sdk"));
        assert_eq!(m["package"]["edition"].as_str(), Some("2024"));
        let wb = &m["dependencies"]["wit-bindgen"];
        assert_eq!(wb["version"].as_str(), Some("0.61"));
        assert_eq!(wb["default-features"].as_bool(), Some(false));
        let features: Vec<_> = wb["features"].as_array().unwrap().iter().collect();
        assert!(features.iter().any(|f| f.as_str() == Some("macros")));
        let serde = &m["dependencies"]["serde"];
        let features: Vec<_> = serde["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        assert_eq!(features, ["derive", "std"]);
        for dep in ["serde_json", "serde_path_to_error"] {
            assert!(m["dependencies"].get(dep).is_some(), "{dep} missing");
        }
    }

    #[test]
    fn refuses_bad_names_and_existing_directories() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in [
            "",
            "My",
            "1abc",
            "-x",
            "a b",
            "a/b",
            "..",
            "é",
            "fn",
            "std",
            "hearth-plugin-sdk",
        ] {
            assert!(scaffold(tmp.path(), bad).is_err(), "`{bad}` accepted");
        }
        assert!(scaffold(tmp.path(), &"a".repeat(65)).is_err());
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "nothing written"
        );
        scaffold(tmp.path(), "a_1-b").unwrap();
        let e = scaffold(tmp.path(), "a_1-b").unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
    }
}
