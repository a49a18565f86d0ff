//! Sizes of everything a client can make the bridge store or publish, in
//! one place: events fired through the API, names and states that reach
//! Home Assistant's discovery and the recorder.
//!
//! Where Home Assistant has a limit, Hearth uses it, in HA's unit
//! (characters for strings, as Python's `len`; bytes of JSON for data), so
//! what Hearth accepts HA accepts too. Where HA has none (device and entity
//! names), the limit is Hearth's and says so. Input past a limit is refused
//! with a [`TooLong`] error naming the input and the limit, never cut
//! silently. The value itself is not echoed (it may be megabytes).
//!
//! Checked by: the entity store (devices, entities, states: every driver
//! and plugin passes there) and the WebSocket `fire_event` command. Alerts
//! keep their own bounds (`alerts::hub::MAX_TITLE`, `MAX_MESSAGE`, cut
//! with a visible `…`). State attributes are not capped: HA keeps large
//! attributes in its state machine and only its recorder drops them past
//! `MAX_STATE_ATTRS_BYTES` (16384), and Hearth's feeds publish forecasts
//! as attributes. Owned by issue 12 item 5.

use serde::Serialize;
use std::fmt;

/// Characters of an event type. HA: `MAX_LENGTH_EVENT_EVENT_TYPE = 64`
/// (homeassistant/const.py; `EventBus.async_fire` raises
/// `MaxLengthExceeded` past it, and the recorder's column is that wide).
pub const MAX_EVENT_TYPE_CHARS: usize = 64;
/// Bytes of an event's data as JSON. HA: `MAX_EVENT_DATA_BYTES = 32768`
/// (homeassistant/components/recorder/db_schema.py; HA's recorder drops
/// larger event data with a warning).
pub const MAX_EVENT_DATA_BYTES: usize = 32768;
/// Characters of a state string. HA: `MAX_LENGTH_STATE_STATE = 255`
/// (homeassistant/const.py; `State` raises `InvalidStateError` past it).
pub const MAX_STATE_CHARS: usize = 255;
/// Characters of an entity id. HA: `MAX_LENGTH_STATE_ENTITY_ID = 255`
/// (homeassistant/const.py).
pub const MAX_ENTITY_ID_CHARS: usize = 255;
/// Characters of a device's or entity's name, manufacturer, model, software
/// version and id. Hearth's own: HA's registries set no limit, so the
/// widest string column of HA's recorder (255) is used; a 200 KB node name
/// became a 200 KB retained discovery config.
pub const MAX_NAME_CHARS: usize = 255;
/// The unit a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    Characters,
    JsonBytes,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Characters => "characters",
            Unit::JsonBytes => "bytes of JSON",
        })
    }
}

/// An input past its limit. `input` names it (`event_type`, `device
/// \`node-1\` name`); `len` is at least `limit + 1` (counting stops there).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{input} is longer than {limit} {unit} ({more}{len}); refused")]
pub struct TooLong {
    pub input: String,
    pub len: usize,
    /// `at least ` when counting stopped early (`len` is a lower bound).
    pub more: &'static str,
    pub limit: usize,
    pub unit: Unit,
}

/// `value` has at most `limit` characters, or [`TooLong`] naming `input`.
/// `input` is only built on failure.
pub fn chars(value: &str, limit: usize, input: impl FnOnce() -> String) -> Result<(), TooLong> {
    // A char is at least one byte: short strings need no count.
    if value.len() <= limit {
        return Ok(());
    }
    let n = value.chars().count();
    if n <= limit {
        return Ok(());
    }
    Err(TooLong {
        input: input(),
        len: n,
        more: "",
        limit,
        unit: Unit::Characters,
    })
}

/// `value` serialises to at most `limit` bytes of JSON, or [`TooLong`].
/// Serialisation stops at the limit: a 3 MB object is not copied.
pub fn json_bytes(
    value: &impl Serialize,
    limit: usize,
    input: impl FnOnce() -> String,
) -> Result<(), TooLong> {
    struct Budget {
        left: usize,
        used: usize,
    }
    impl std::io::Write for Budget {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.used += b.len();
            if b.len() > self.left {
                return Err(std::io::Error::other("over the limit"));
            }
            self.left -= b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut budget = Budget {
        left: limit,
        used: 0,
    };
    match serde_json::to_writer(&mut budget, value) {
        Ok(()) => Ok(()),
        Err(_) => Err(TooLong {
            input: input(),
            len: budget.used,
            more: "at least ",
            limit,
            unit: Unit::JsonBytes,
        }),
    }
}

/// An id as error messages name it: at most 64 characters, so an error
/// about a 200 KB id is not itself 200 KB.
fn short(id: &str) -> String {
    match id.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &id[..cut]),
        None => id.to_string(),
    }
}

/// A device's id, name, manufacturer, model and software version (they
/// become its discovery config and HA's device registry entry).
pub fn device(d: &super::Device) -> Result<(), TooLong> {
    chars(&d.id, MAX_NAME_CHARS, || {
        format!("device id `{}`", short(&d.id))
    })?;
    let fields = [
        ("name", Some(&d.name)),
        ("manufacturer", Some(&d.manufacturer)),
        ("model", Some(&d.model)),
        ("sw_version", d.sw_version.as_ref()),
    ];
    for (field, value) in fields {
        if let Some(v) = value {
            chars(v, MAX_NAME_CHARS, || {
                format!("device `{}` {field}", short(&d.id))
            })?;
        }
    }
    Ok(())
}

/// An entity's id and name.
pub fn entity(spec: &super::EntitySpec) -> Result<(), TooLong> {
    chars(&spec.entity_id, MAX_ENTITY_ID_CHARS, || {
        format!("entity id `{}`", short(&spec.entity_id))
    })?;
    if let Some(name) = &spec.name {
        chars(name, MAX_NAME_CHARS, || {
            format!("entity `{}` name", short(&spec.entity_id))
        })?;
    }
    Ok(())
}

/// A state string.
pub fn state(entity_id: &str, state: &str) -> Result<(), TooLong> {
    chars(state, MAX_STATE_CHARS, || {
        format!("state of `{}`", short(entity_id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn characters_are_counted_like_home_assistant() {
        // 64 two-byte characters are 64 characters, as in Python.
        assert!(
            chars(&"é".repeat(64), MAX_EVENT_TYPE_CHARS, || "event_type"
                .into())
            .is_ok()
        );
        let e = chars(&"é".repeat(65), MAX_EVENT_TYPE_CHARS, || {
            "event_type".into()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "event_type is longer than 64 characters (65); refused"
        );
    }

    #[test]
    fn the_store_refuses_names_and_states_past_a_limit() {
        use crate::entity::store::StoreError;
        use crate::entity::{Component, Device, EntitySpec, EntityStore};
        let store = EntityStore::new(crate::clock::Clock::real());
        let mut node = Device {
            id: "node".into(),
            name: "N".repeat(200_000),
            manufacturer: "Hearth".into(),
            model: "ESP32-C3 sensor node".into(),
            sw_version: None,
            via_device: None,
        };
        let e = store.upsert_device("esp32", node.clone()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "device `node` name is longer than 255 characters (200000); refused"
        );
        assert!(matches!(e, StoreError::TooLong(_)));
        assert!(store.device("node").is_none());
        node.name = "Node".into();
        store.upsert_device("esp32", node).unwrap();
        let spec = EntitySpec::new("node", "status", Component::Sensor);
        let id = spec.entity_id.clone();
        let long = spec.clone().named(&"n".repeat(MAX_NAME_CHARS + 1));
        assert!(store.upsert_entity(long).is_err());
        store.upsert_entity(spec).unwrap();
        let e = store.set_state(&id, "s".repeat(MAX_STATE_CHARS + 1), Default::default());
        assert_eq!(
            e.unwrap_err().to_string(),
            format!("state of `{id}` is longer than 255 characters (256); refused")
        );
        assert!(store.get(&id).is_none(), "nothing stored");
        store
            .set_state(&id, "s".repeat(MAX_STATE_CHARS), Default::default())
            .unwrap();
    }

    #[test]
    fn json_size_stops_counting_past_the_limit() {
        let small = json!({"a": "b".repeat(100)});
        assert!(json_bytes(&small, MAX_EVENT_DATA_BYTES, || "event_data".into()).is_ok());
        let big = json!({"a": "b".repeat(3 << 20)});
        let e = json_bytes(&big, MAX_EVENT_DATA_BYTES, || "event_data".into()).unwrap_err();
        assert_eq!(e.unit, Unit::JsonBytes);
        assert!(e.len > MAX_EVENT_DATA_BYTES);
        assert!(
            e.to_string()
                .starts_with("event_data is longer than 32768 bytes of JSON"),
            "{e}"
        );
    }
}
