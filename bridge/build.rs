//! Builds the bundled controller plugins (`plugins/*`, and the example
//! `examples/custom-strategy`) for `wasm32-wasip2`, so
//! that `cargo run -- demo` and `cargo test` never need a separate step. The
//! `.wasm` files are embedded in the `hearth` binary (`builtin:<name>`).
//!
//! The inner cargo uses its own target directory (`target/plugins`): sharing
//! the outer build's directory would wait forever on the outer build's lock.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
/// (crate name, name the bridge knows it by)
const PLUGINS: &[(&str, &str)] = &[
    ("hearth-plugin-thermostat", "THERMOSTAT"),
    ("hearth-plugin-fault-injector", "FAULT_INJECTOR"),
    ("hearth-plugin-custom-strategy", "CUSTOM_STRATEGY"),
    ("hearth-plugin-mpc", "MPC"),
    ("hearth-plugin-anomaly-detector", "ANOMALY_DETECTOR"),
    ("hearth-plugin-strip-balancer", "STRIP_BALANCER"),
    ("hearth-plugin-all-on", "ALL_ON"),
    ("hearth-plugin-first-come", "FIRST_COME"),
    ("hearth-plugin-round-robin", "ROUND_ROBIN"),
    ("hearth-plugin-tariff-optimizer", "TARIFF_OPTIMIZER"),
    ("hearth-plugin-fixed-times", "FIXED_TIMES"),
    ("hearth-plugin-off-peak-rule", "OFF_PEAK_RULE"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    for dir in ["wit", "plugins", "examples/custom-strategy"] {
        rerun_tree(&root.join(dir));
    }
    println!("cargo:rerun-if-changed=../Cargo.lock");
    // `[profile.plugin]` lives in the root manifest.
    println!("cargo:rerun-if-changed=../Cargo.toml");

    // `cargo fuzz` (fuzz/, nightly, `--cfg fuzzing`) exercises parsers, never
    // a plugin: empty stand-ins instead of a second, nightly build of every
    // plugin (which would also overwrite the stable build's `.wasm` files in
    // the shared target/plugins).
    if std::env::var_os("CARGO_CFG_FUZZING").is_some() {
        let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
        for (krate, key) in PLUGINS {
            let wasm = out.join(format!("{krate}.wasm"));
            std::fs::write(&wasm, b"").expect("write a plugin stand-in");
            println!("cargo:rustc-env=HEARTH_PLUGIN_{key}={}", wasm.display());
        }
        return;
    }

    ensure_target_installed();

    let target_dir = root.join("target").join("plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--profile", "plugin", "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    for (krate, _) in PLUGINS {
        cmd.args(["-p", krate]);
    }
    // The outer build's flags are for the host, not for wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("failed to start cargo to build the plugins");
    if !status.success() {
        panic!("building the plugins for {TARGET} failed (see the cargo output above)");
    }

    let out = target_dir.join(TARGET).join("plugin");
    for (krate, key) in PLUGINS {
        let wasm = out.join(format!("{}.wasm", krate.replace('-', "_")));
        assert!(wasm.exists(), "plugin build produced no {}", wasm.display());
        println!("cargo:rustc-env=HEARTH_PLUGIN_{key}={}", wasm.display());
    }
}

/// `rustup target add` when the target's standard library is missing.
/// RUSTUP_AUTO_INSTALL=0 on our machines, so rust-toolchain.toml alone does
/// not install it. Idempotent and cheap when already installed.
fn ensure_target_installed() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if libdir.as_deref().is_some_and(has_std) {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (needed to build plugins)");
    let ok = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "`rustup target add {TARGET}` failed; run it by hand and build again"
    );
}

fn has_std(libdir: &Path) -> bool {
    std::fs::read_dir(libdir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
    })
}

fn rerun_tree(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.is_dir() {
            rerun_tree(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
