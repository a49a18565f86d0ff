//! `<data_dir>/alerts.json`: the alerts, so an active one survives a
//! restart of the bridge. Plugins restore their own state and raise only on
//! a change, so without this an over-temperature raised before a restart
//! would be forgotten while the room is still hot.

use super::model::Alert;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokio::sync::watch;

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    alerts: Vec<Alert>,
}

const VERSION: u32 = 1;

/// The alerts in `path`; none if it does not exist. A damaged file is
/// logged and set aside (`.bad`), not fatal: alerts are not worth refusing
/// to start over.
pub fn load(path: &Path) -> Vec<Alert> {
    read_versioned(path, "alert list", VERSION, |f: &File| f.version)
        .map(|f| f.alerts)
        .unwrap_or_default()
}

/// A JSON file of this module's kind (a `version` and a payload); `None`,
/// logged, when it is missing, unreadable, of another version, or damaged
/// (then moved aside to `.bad`). `what` names the payload in the log.
pub fn read_versioned<F: DeserializeOwned>(
    path: &Path,
    what: &str,
    version: u32,
    version_of: impl Fn(&F) -> u32,
) -> Option<F> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("could not read the {what} {}: {e}; ignored", path.display());
            return None;
        }
    };
    match serde_json::from_slice::<F>(&bytes) {
        Ok(f) if version_of(&f) == version => Some(f),
        Ok(f) => {
            tracing::warn!(
                "the {what} {} has version {}, expected {version}; ignored",
                path.display(),
                version_of(&f)
            );
            None
        }
        Err(e) => {
            let bad = path.with_extension("json.bad");
            tracing::warn!(
                "{} is not a valid {what} ({e}); moved to {} and ignored",
                path.display(),
                bad.display()
            );
            let _ = std::fs::rename(path, bad);
            None
        }
    }
}

/// Writes `alerts` atomically (a temporary file renamed over the old one).
pub fn save(path: &Path, alerts: &[Alert]) -> std::io::Result<()> {
    let file = File {
        version: VERSION,
        alerts: alerts.to_vec(),
    };
    let text = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
    write_atomically(path, &text)
}

pub use crate::fsutil::write_atomically;

/// A task that writes the list each time it is poked; pokes that arrive
/// while it writes coalesce into one more write. `snapshot` returns `None`
/// once the hub is gone, which ends the task.
pub fn spawn_writer(
    path: PathBuf,
    snapshot: impl Fn() -> Option<Vec<Alert>> + Send + 'static,
) -> watch::Sender<()> {
    let (tx, mut rx) = watch::channel(());
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let Some(alerts) = snapshot() else { break };
            let p = path.clone();
            let written = tokio::task::spawn_blocking(move || save(&p, &alerts)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("alerts: could not write {}: {e}", path.display()),
                Err(e) => tracing::warn!("alerts: writing {}: {e}", path.display()),
            }
        }
    });
    tx
}
