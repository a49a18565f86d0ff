//! A `problem` binary sensor's two states, as every driver and feed writes
//! them (`device_class problem`; Home Assistant shows `on` as a problem):
//!
//! | call | state | attributes |
//! |---|---|---|
//! | [`cleared`] | `off` | `last_success` (ISO 8601, the clock's time) |
//! | [`raised`] | `on` | `error` (the text), `last_success` kept from before |

use super::EntityStore;
use serde_json::Map;

/// Off, with `last_success` = `now_ms`, after a good exchange.
pub fn cleared(store: &EntityStore, entity_id: &str, now_ms: i64) {
    let mut attrs = Map::new();
    attrs.insert("last_success".into(), crate::clock::iso8601(now_ms).into());
    let _ = store.set_state(entity_id, "off", attrs);
}

/// On, with `error`; the earlier `last_success` stays.
pub fn raised(store: &EntityStore, entity_id: &str, error: &str) {
    let mut attrs = store
        .get(entity_id)
        .map(|s| s.attributes)
        .unwrap_or_default();
    attrs.insert("error".into(), error.into());
    let _ = store.set_state(entity_id, "on", attrs);
}
