//! `<data_dir>/alerts-outbox.json`: notifications a notifier had not
//! delivered when the bridge stopped (queued, or cut off mid-delivery),
//! offered again to the notifier of the same name at the next start.
//!
//! The file stays until the next clean stop rewrites it with what is still
//! undelivered then (or removes it): a start that fails, or a crash, after
//! reading it loses nothing, at the price of sending again what was already
//! delivered before the crash (at least once). What a crash leaves queued
//! in memory, and never written here, is lost; the alerts themselves are
//! in `alerts.json`.

use super::model::Notification;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The notifier's name (`name` in the config, or its default).
    pub notifier: String,
    pub notification: Notification,
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    pending: Vec<Pending>,
}

const VERSION: u32 = 1;

/// The pending notifications in `path` (none if it does not exist). A
/// damaged file is set aside (`.bad`) with a warning.
pub fn load(path: &Path) -> Vec<Pending> {
    super::persist::read_versioned(path, "outbox", VERSION, |f: &File| f.version)
        .map(|f| f.pending)
        .unwrap_or_default()
}

/// Writes `pending` atomically; removes the file when there is none.
pub fn save(path: &Path, pending: &[Pending]) -> std::io::Result<()> {
    if pending.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let file = File {
        version: VERSION,
        pending: pending.to_vec(),
    };
    let text = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
    super::persist::write_atomically(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::model::{Alert, NotifyKind, Severity};

    fn pending(key: &str) -> Pending {
        Pending {
            notifier: "hook".into(),
            notification: Notification {
                kind: NotifyKind::Raised,
                alert: Alert {
                    id: Alert::make_id("test", key),
                    source: "test".into(),
                    key: key.into(),
                    entity_id: Some("sensor.room".into()),
                    severity: Severity::Critical,
                    title: "Hot".into(),
                    message: "31 °C".into(),
                    first_seen_ms: 1,
                    last_seen_ms: 2,
                    count: 1,
                    acknowledged: false,
                    active: true,
                    last_notified_ms: 2,
                },
            },
        }
    }

    #[test]
    fn round_trip_and_removed_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts-outbox.json");
        let list = vec![pending("a"), pending("b")];
        save(&path, &list).unwrap();
        assert_eq!(load(&path), list);
        assert_eq!(load(&path), list, "reading leaves it in place");
        save(&path, &[]).unwrap();
        assert!(!path.exists(), "nothing pending, no file");
    }

    #[test]
    fn a_damaged_outbox_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts-outbox.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load(&path).is_empty());
        assert!(dir.path().join("alerts-outbox.json.bad").exists());
    }
}
