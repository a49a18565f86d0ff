//! The pending list: devices found on the network and not adopted yet,
//! like Zigbee2MQTT's devices that joined but are not configured.
//!
//! Keyed by the pending id (the device's own id, lower case: a Gen2
//! Shelly's `shellyplusplugs-a8032ab1c2d3`, a Gen1's mDNS host name, a
//! Broadlink's `broadlink-<mac>`), which is also the device id an adoption
//! uses unless the request names another. Times are ms since the epoch
//! (the bridge's clock). The discovery loop writes; the API reads.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

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

/// Most devices listed at once: a LAN that announces more (or a device
/// inventing ids) pushes out the one seen longest ago.
pub const MAX_PENDING: usize = 256;

/// The list, shared by the discovery loop and the API.
#[derive(Debug, Default)]
pub struct PendingList {
    devices: Mutex<BTreeMap<String, PendingDevice>>,
    /// When each device was last seen, in wall time (`last_seen_ms` is
    /// the bridge's clock, which a demo runs faster); expiry and the cap
    /// go by this. Locked after `devices`.
    wall: Mutex<HashMap<String, Instant>>,
}

impl PendingList {
    /// Adds a device or refreshes it (keeping `first_seen_ms`). Returns
    /// whether the list changed in a way worth publishing (new device, or a
    /// new address/model/name/firmware; not a mere `last_seen`).
    pub fn upsert(&self, mut dev: PendingDevice) -> bool {
        let mut map = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        let mut wall = self.wall.lock().unwrap_or_else(|e| e.into_inner());
        wall.insert(dev.id.clone(), Instant::now());
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
                if map.len() >= MAX_PENDING
                    && let Some(oldest) =
                        map.keys().min_by_key(|id| wall.get(*id).copied()).cloned()
                {
                    tracing::info!(
                        "LAN discovery: {MAX_PENDING} devices pending; `{oldest}`, seen longest ago, is dropped from the list"
                    );
                    map.remove(&oldest);
                    wall.remove(&oldest);
                }
                map.insert(dev.id.clone(), dev);
                true
            }
        }
    }

    /// Drops the devices last seen (wall time) before `before`; returns
    /// their ids.
    pub fn expire(&self, before: Instant) -> Vec<String> {
        let mut map = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        let mut wall = self.wall.lock().unwrap_or_else(|e| e.into_inner());
        let old: Vec<String> = map
            .keys()
            .filter(|id| wall.get(*id).is_none_or(|t| *t < before))
            .cloned()
            .collect();
        for id in &old {
            map.remove(id);
            wall.remove(id);
        }
        old
    }

    pub fn get(&self, id: &str) -> Option<PendingDevice> {
        let map = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).cloned()
    }

    pub fn remove(&self, id: &str) -> Option<PendingDevice> {
        let mut map = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        self.wall
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
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

    #[test]
    fn the_list_is_capped_and_old_entries_expire() {
        let l = PendingList::default();
        for i in 0..MAX_PENDING as i64 + 10 {
            // `keep` is refreshed all along: never the oldest.
            l.upsert(dev("keep", "10.0.0.1:80", i));
            l.upsert(dev(&format!("d{i}"), "10.0.0.2:80", i));
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
        assert_eq!(l.list().len(), MAX_PENDING);
        assert!(l.get("keep").is_some());
        assert!(l.get("d0").is_none() && l.get("d10").is_none());
        assert!(l.get("d11").is_some());
        std::thread::sleep(std::time::Duration::from_millis(2));
        let cut = Instant::now();
        l.upsert(dev("keep", "10.0.0.1:80", 999));
        let gone = l.expire(cut);
        assert_eq!(gone.len(), MAX_PENDING - 1);
        assert_eq!(l.list().len(), 1, "only `keep`, seen after the cut");
    }
}
