//! A plugin author's path, end to end: `hearth plugin new`, a plain
//! `cargo test` (native unit tests against the SDK's harness) and
//! `cargo build --release --target wasm32-wasip2` outside the repository,
//! load into a running bridge, and its service calls reach a twin device.

use crate::common;

use common::{BrokerKind, Harness, wait_for};
use hearth::plugins::{Limits, PluginConfig};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaffolded_plugin_builds_loads_and_drives_the_twin() {
    let _apart = common::CARGO_BUILD.lock().await;
    let parent = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["plugin", "new", "probe-plugin", "--dir"])
        .arg(parent.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let dir = parent.path().join("probe-plugin");
    assert!(dir.join("src/lib.rs").exists());
    // Shared between runs so a second run does not rebuild wit-bindgen.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scaffold");
    let cargo = |args: &[&str]| {
        let mut cargo = std::process::Command::new(option_env!("CARGO").unwrap_or("cargo"));
        cargo
            .current_dir(&dir)
            .args(args)
            .env("CARGO_TARGET_DIR", &target);
        // The outer cargo's settings are not the plugin's.
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_TARGET",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
        ] {
            cargo.env_remove(var);
        }
        cargo
    };
    // The README's first command: the native unit tests, with a plain
    // `cargo test` (a forced wasm32 target made the test binary
    // unrunnable: "could not execute process").
    let mut test = cargo(&["test"]);
    let tested = tokio::task::spawn_blocking(move || test.output().unwrap())
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&tested.stdout);
    assert!(
        tested.status.success(),
        "cargo test of the scaffold failed:\n{out}\n{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    assert!(out.contains("test result: ok. 3 passed"), "{out}");
    let mut build = cargo(&["build", "--release", "--target", "wasm32-wasip2"]);
    let built = tokio::task::spawn_blocking(move || build.output().unwrap())
        .await
        .unwrap();
    assert!(
        built.status.success(),
        "cargo build --release of the scaffold failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let wasm = target.join("wasm32-wasip2/release/probe_plugin.wasm");
    assert!(wasm.exists(), "{} missing", wasm.display());

    // No thermostat: the scaffolded plugin drives the AC's power switch.
    let h = Harness::start(BrokerKind::Embedded, 60.0, |c| c.plugins.clear()).await;
    let bridge = h.bridge();
    wait_for("AC switch known", Duration::from_secs(10), || {
        bridge.store.get("switch.server_room_ac_power")
    })
    .await;
    let cfg = PluginConfig {
        name: "probe".into(),
        wasm: wasm.display().to_string(),
        // The room starts at 26 °C: above 25 °C the template turns the switch on.
        config: json!({
            "sensor": "sensor.server_room_temperature",
            "switch": "switch.server_room_ac_power",
            "threshold": 25.0,
        }),
        limits: Limits::default(),
        drives: Some(vec!["switch.server_room_ac_power".into()]),
    };
    let m = bridge.plugins.clone();
    let status = tokio::task::spawn_blocking(move || m.load(cfg))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.plugin, "probe-plugin");
    assert_eq!(status.wit, "hearth:controller@0.1.2");
    // Its call reached the Tasmota IR bridge of the twin.
    wait_for(
        "IR power on from the scaffolded plugin",
        Duration::from_secs(20),
        || {
            h.twin
                .ir_commands()
                .iter()
                .any(|(_, c)| c["Power"] == "On")
                .then_some(())
        },
    )
    .await;
    assert!(bridge.plugins.status("probe").unwrap().calls >= 1);
    h.stop().await;
}
