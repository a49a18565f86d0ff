//! Retained discovery configs left by an earlier run of this bridge (a
//! device removed from the config while the bridge was down, a switch
//! between device and entity discovery) are cleared at startup, so Home
//! Assistant keeps no ghost devices with frozen values.
//!
//! A config is this bridge's when its origin is Hearth and its availability
//! names this bridge's state topic (several bridges may share a broker).

use super::payload::BRIDGE_DEVICE;
use super::{DiscoveryMode, Topics};
use crate::entity::{Device, EntitySpec};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Filters that match every discovery config topic.
pub fn filters(topics: &Topics) -> [String; 2] {
    let p = &topics.discovery_prefix;
    [format!("{p}/+/+/config"), format!("{p}/+/+/+/config")]
}

/// Whether a retained config was published by this bridge.
pub fn is_ours(topics: &Topics, payload: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(payload) else {
        return false;
    };
    let origin = v
        .get("o")
        .or_else(|| v.get("origin"))
        .and_then(|o| o.get("name"));
    let bridge_state = topics.bridge_state();
    let names_us = v
        .get("availability")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .any(|e| e.get("topic").and_then(Value::as_str) == Some(bridge_state.as_str()))
        });
    origin.and_then(Value::as_str) == Some("Hearth") && names_us
}

/// The config topics the current model publishes.
pub fn expected<'a>(
    topics: &Topics,
    mode: DiscoveryMode,
    devices: impl Iterator<Item = &'a Arc<Device>>,
    entities: impl Iterator<Item = &'a Arc<EntitySpec>>,
) -> BTreeSet<String> {
    match mode {
        DiscoveryMode::Device => devices.map(|d| topics.device_config(&d.id)).collect(),
        DiscoveryMode::Entity => entities
            .map(|e| topics.entity_config(e.component.as_str(), &e.device_id, &e.key))
            .collect(),
    }
}

/// The device a stale config topic belongs to, for clearing its
/// availability topic too (`<prefix>/device/<id>/config` or
/// `<prefix>/<component>/<id>/<key>/config`).
pub fn device_of<'a>(topics: &Topics, topic: &'a str) -> Option<&'a str> {
    let rest = topic
        .strip_prefix(topics.discovery_prefix.as_str())?
        .strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let node = match parts.as_slice() {
        ["device", node, "config"] | [_, node, _, "config"] => *node,
        _ => return None,
    };
    topics
        .device_of_node(node)
        .filter(|id| *id != BRIDGE_DEVICE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_bridges_configs_are_ours() {
        let t = Topics::default();
        let ours = br#"{"o":{"name":"Hearth"},"availability":[{"topic":"hearth/bridge/state"}]}"#;
        let other_bridge =
            br#"{"o":{"name":"Hearth"},"availability":[{"topic":"attic/bridge/state"}]}"#;
        let z2m =
            br#"{"o":{"name":"Zigbee2MQTT"},"availability":[{"topic":"hearth/bridge/state"}]}"#;
        assert!(is_ours(&t, ours));
        assert!(!is_ours(&t, other_bridge));
        assert!(!is_ours(&t, z2m));
        assert!(!is_ours(&t, b"not json"));
        assert_eq!(
            device_of(&t, "homeassistant/device/old-plug/config"),
            Some("old-plug")
        );
        assert_eq!(
            device_of(&t, "homeassistant/sensor/old-plug/power/config"),
            Some("old-plug")
        );
        assert_eq!(device_of(&t, "homeassistant/device/bridge/config"), None);
    }
}
