//! What each plugin learned, kept in `<data-dir>/plugin-state/<name>.json`
//! between runs: the bytes of its WIT `save`, with the instance name and the
//! component (`describe` name and version) that saved them.
//!
//! Who owns what: the [`PluginManager`] decides when to save (periodically
//! through [`spawn_periodic_save`], at unload, at a clean stop) and when to
//! read (a load); this module owns the file format and its atomic write
//! (temporary file + rename, versioned JSON, read with the alerts'
//! `persist::read_versioned`).
//!
//! A state is handed to `restore` only when the plugin loading has the
//! same instance name and the same component (`describe` name) as the one
//! that saved it: a `thermostat` instance swapped to `custom-strategy`
//! before a stop saved the strategy's state, which the thermostat the
//! config loads at the next start must not be given (a live swap hands
//! state over on purpose; a restart does not guess). Versions may differ:
//! carrying state across an upgrade is what `save`/`restore` are for.
//!
//! Files of earlier releases (`<name>.state`, raw bytes) are read once and
//! replaced at the next save.

use super::PluginManager;
use crate::shutdown::Shutdown;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const VERSION: u32 = 1;

/// Wall time between two periodic saves. A `save` is one plugin call
/// (microseconds) and the file is written only when the bytes changed, so
/// this is cheap; it bounds what a kill loses (HA saves its restore state
/// every 15 min; a controller's learned model is worth more than that).
pub const SAVE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlugin {
    pub version: u32,
    /// The instance name (`[[plugin]] name`).
    pub instance: String,
    /// The component's own name (`describe`), e.g. `thermostat`.
    pub component: String,
    /// The component's version (`describe`).
    pub component_version: String,
    /// When it was saved (bridge clock, ms since the Unix epoch).
    pub saved_ms: i64,
    /// The `save` bytes, hex.
    pub state_hex: String,
}

pub fn path(dir: &Path, instance: &str) -> PathBuf {
    dir.join(format!("{instance}.json"))
}

fn legacy_path(dir: &Path, instance: &str) -> PathBuf {
    dir.join(format!("{instance}.state"))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The bytes to `restore` for `instance` running `component`; empty when
/// there are none or they are another component's (logged).
pub fn read(dir: &Path, instance: &str, component: &str) -> Vec<u8> {
    let file = path(dir, instance);
    let saved = crate::alerts::persist::read_versioned(
        &file,
        "plugin state file",
        VERSION,
        |s: &SavedPlugin| s.version,
    );
    let Some(saved) = saved else {
        return read_legacy(dir, instance);
    };
    if saved.component != component {
        tracing::warn!(
            "plugin `{instance}`: the state in {} was saved by component `{}`, not `{component}`; starting fresh (it stays on disk until this plugin saves)",
            file.display(),
            saved.component
        );
        return Vec::new();
    }
    match from_hex(&saved.state_hex) {
        Some(bytes) => bytes,
        None => {
            tracing::warn!(
                "plugin `{instance}`: {}: state_hex is not hexadecimal; starting fresh",
                file.display()
            );
            Vec::new()
        }
    }
}

fn read_legacy(dir: &Path, instance: &str) -> Vec<u8> {
    let path = legacy_path(dir, instance);
    match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            tracing::warn!(
                "plugin `{instance}`: reading {}: {e}; starting fresh",
                path.display()
            );
            Vec::new()
        }
    }
}

/// Writes the state atomically; a failure is logged (the plugin runs on).
pub fn write(dir: &Path, saved: &SavedPlugin, bytes: &[u8]) {
    let file = path(dir, &saved.instance);
    let saved = SavedPlugin {
        state_hex: to_hex(bytes),
        ..saved.clone()
    };
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| serde_json::to_vec_pretty(&saved).map_err(std::io::Error::other))
        .and_then(|text| crate::alerts::persist::write_atomically(&file, &text));
    match result {
        Ok(()) => {
            let _ = std::fs::remove_file(legacy_path(dir, &saved.instance));
        }
        Err(e) => tracing::warn!(
            "plugin `{}`: could not keep its state in {}: {e}",
            saved.instance,
            file.display()
        ),
    }
}

/// Saves every plugin's state each [`SAVE_EVERY`] until shutdown (the
/// clean stop saves once more, after the plugins' last events).
pub fn spawn_periodic_save(
    manager: Arc<PluginManager>,
    mut shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(SAVE_EVERY) => {}
                _ = shutdown.wait() => break,
            }
            let m = manager.clone();
            let _ = tokio::task::spawn_blocking(move || m.save_all()).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(component: &str) -> SavedPlugin {
        SavedPlugin {
            version: VERSION,
            instance: "thermostat".into(),
            component: component.into(),
            component_version: "1.0.0".into(),
            saved_ms: 1,
            state_hex: String::new(),
        }
    }

    #[test]
    fn state_returns_only_to_the_same_component() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &saved("thermostat"), b"{\"events\":7}\x00\xff");
        assert_eq!(
            read(dir.path(), "thermostat", "thermostat"),
            b"{\"events\":7}\x00\xff"
        );
        assert!(read(dir.path(), "thermostat", "custom-strategy").is_empty());
        assert!(read(dir.path(), "other", "thermostat").is_empty());
    }

    #[test]
    fn legacy_raw_files_are_read_then_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("thermostat.state"), b"old").unwrap();
        assert_eq!(read(dir.path(), "thermostat", "thermostat"), b"old");
        write(dir.path(), &saved("thermostat"), b"new");
        assert!(!dir.path().join("thermostat.state").exists());
        assert_eq!(read(dir.path(), "thermostat", "thermostat"), b"new");
    }

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        assert_eq!(
            from_hex(&to_hex(&[0, 1, 254, 255])).unwrap(),
            [0, 1, 254, 255]
        );
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
    }
}
