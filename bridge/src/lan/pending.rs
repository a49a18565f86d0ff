//! The pending list: devices found on the network and not adopted yet,
//! like Zigbee2MQTT's devices that joined but are not configured.
//!
//! Keyed by the pending id (the device's own id, lower case: a Gen2
//! Shelly's `shellyplusplugs-a8032ab1c2d3`, a Gen1's mDNS host name, a
//! Broadlink's `broadlink-<mac>`), which is also the device id an adoption
//! uses unless the request names another. Times are ms since the epoch
//! (the bridge's clock). The discovery loop writes; the API reads.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One device found and not adopted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingDevice {
    pub id: String,
    /// The config table an adoption writes: `shelly` (Gen2+ plug),
    /// `shelly_pro4pm`, `shelly_em`, `shelly_gen1` or `broadlink`.
    pub kind: String,
    /// `host:port` the device answers on (HTTP for Shelly, UDP for Broadlink).
    pub address: String,
    /// The vendor's model code (`SNPL-00112EU`, `SHPLG-S`, `0x6026`).
    pub model: String,
    /// The device's own name, when it has one.
    pub name: Option<String>,
    /// MAC, 12 lower-case hex digits.
    pub mac: Option<String>,
    /// Firmware version, when the device tells it.
    pub firmware: Option<String>,
    /// How it was found: `mdns` or `broadlink`.
    pub found_by: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

impl PendingDevice {
    /// The API's shape: the fields plus RFC 3339 `first_seen`/`last_seen`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self);
        v["first_seen"] = crate::clock::iso8601(self.first_seen_ms).into();
        v["last_seen"] = crate::clock::iso8601(self.last_seen_ms).into();
        v
    }
}

/// The list, shared by the discovery loop and the API.
#[derive(Debug, Default)]
pub struct PendingList {
    devices: Mutex<BTreeMap<String, PendingDevice>>,
}

impl PendingList {
    /// Adds a device or refreshes it (keeping `first_seen_ms`). Returns
    /// whether the list changed in a way worth publishing (new device, or a
    /// new address/model/name/firmware; not a mere `last_seen`).
    pub fn upsert(&self, mut dev: PendingDevice) -> bool {
        let mut map = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&dev.id) {
            Some(old) => {
                dev.first_seen_ms = old.first_seen_ms;
                let same = PendingDevice {
                    last_seen_ms: old.last_seen_ms,
                    ..dev.clone()
                } == *old;
                *old = dev;
                !same
            }
            None => {
                map.insert(dev.id.clone(), dev);
                true
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<PendingDevice> {
        let map = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).cloned()
    }

    pub fn remove(&self, id: &str) -> Option<PendingDevice> {
        let mut map = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(id)
    }

    /// Every pending device, by id.
    pub fn list(&self) -> Vec<PendingDevice> {
        let map = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        map.values().cloned().collect()
    }

    /// The list as the API and the retained topic show it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(self.list().iter().map(PendingDevice::to_json).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: &str, address: &str, t: i64) -> PendingDevice {
        PendingDevice {
            id: id.into(),
            kind: "shelly".into(),
            address: address.into(),
            model: "SNPL-00112EU".into(),
            name: None,
            mac: None,
            firmware: None,
            found_by: "mdns".into(),
            first_seen_ms: t,
            last_seen_ms: t,
        }
    }

    #[test]
    fn a_refresh_keeps_first_seen_and_is_news_only_when_something_changed() {
        let l = PendingList::default();
        assert!(l.upsert(dev("a", "10.0.0.2:80", 1000)));
        assert!(
            !l.upsert(dev("a", "10.0.0.2:80", 2000)),
            "only last_seen moved"
        );
        let got = l.get("a").unwrap();
        assert_eq!((got.first_seen_ms, got.last_seen_ms), (1000, 2000));
        assert!(l.upsert(dev("a", "10.0.0.3:80", 3000)), "new address");
        assert_eq!(l.get("a").unwrap().first_seen_ms, 1000);
        assert!(l.remove("a").is_some() && l.list().is_empty());
    }
}
