//! What a Hearth sensor node says over MQTT, defined once for the ESP32
//! firmware and for the digital twin (and parsed by the bridge).
//!
//! `no_std`, no allocator: payloads encode into caller buffers with
//! `serde-json-core`.
//!
//! # Topics (node side)
//! | topic | retained | payload |
//! |---|---|---|
//! | `hearth-node/<node_id>/announce` | yes | [`Announce`] JSON: who the node is and what it measures |
//! | `hearth-node/<node_id>/telemetry` | no | [`Telemetry`] JSON, every `interval_s` |
//! | `hearth-node/<node_id>/status` | yes | `online` / `offline` (`offline` is the node's MQTT last will) |
//!
//! The bridge creates the node's Home Assistant device from the announce
//! message alone: no configuration is needed on the bridge side.
#![no_std]

use core::fmt::Write as _;
use serde::{Deserialize, Serialize};

pub use heapless;

/// Root of every node topic.
pub const TOPIC_ROOT: &str = "hearth-node";
/// Payload of the status topic while the node is connected.
pub const STATUS_ONLINE: &str = "online";
/// Payload of the status topic after the node is gone (its last will).
pub const STATUS_OFFLINE: &str = "offline";
/// Longest node id accepted: `[a-z0-9_-]{1,32}`.
pub const MAX_NODE_ID: usize = 32;

/// A topic string built without allocation.
pub type Topic = heapless::String<96>;

/// The three topics of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    Announce,
    Telemetry,
    Status,
}

impl TopicKind {
    pub const fn suffix(self) -> &'static str {
        match self {
            TopicKind::Announce => "announce",
            TopicKind::Telemetry => "telemetry",
            TopicKind::Status => "status",
        }
    }

    fn from_suffix(s: &str) -> Option<Self> {
        match s {
            "announce" => Some(TopicKind::Announce),
            "telemetry" => Some(TopicKind::Telemetry),
            "status" => Some(TopicKind::Status),
            _ => None,
        }
    }
}

/// `hearth-node/<node_id>/<kind>`. Errors if the node id is not valid.
pub fn topic(node_id: &str, kind: TopicKind) -> Result<Topic, NodeIdError> {
    validate_node_id(node_id)?;
    let mut t = Topic::new();
    // Cannot overflow: 11 + 32 + 1 + 9 < 96.
    let _ = write!(t, "{TOPIC_ROOT}/{node_id}/{}", kind.suffix());
    Ok(t)
}

/// Splits `hearth-node/<node_id>/<kind>` into its node id and kind.
pub fn parse_topic(topic: &str) -> Option<(&str, TopicKind)> {
    let rest = topic.strip_prefix(TOPIC_ROOT)?.strip_prefix('/')?;
    let (id, suffix) = rest.split_once('/')?;
    validate_node_id(id).ok()?;
    Some((id, TopicKind::from_suffix(suffix)?))
}

/// The node id is not `[a-z0-9_-]{1,32}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeIdError;

impl core::fmt::Display for NodeIdError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("node id must be 1 to 32 characters of [a-z0-9_-]")
    }
}

pub fn validate_node_id(id: &str) -> Result<(), NodeIdError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_NODE_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(NodeIdError) }
}

/// What a node can measure. Each kind maps to exactly one Home Assistant
/// sensor shape (device class, unit, state class) that HA accepts
/// (HA core `sensor/const.py`, `DEVICE_CLASS_UNITS` and
/// `DEVICE_CLASS_STATE_CLASSES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorKind {
    /// Air temperature, °C.
    Temperature,
    /// Relative humidity, %.
    Humidity,
    /// Wi-Fi received signal strength, dBm.
    Rssi,
    /// Time since boot, s.
    Uptime,
}

/// How Home Assistant should present one [`SensorKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SensorShape {
    /// Object id and telemetry field name.
    pub key: &'static str,
    pub name: &'static str,
    pub device_class: &'static str,
    pub unit: &'static str,
    pub state_class: &'static str,
    /// `Some("diagnostic")` for link/health values.
    pub entity_category: Option<&'static str>,
}

impl SensorKind {
    pub const ALL: [SensorKind; 4] = [
        SensorKind::Temperature,
        SensorKind::Humidity,
        SensorKind::Rssi,
        SensorKind::Uptime,
    ];

    pub const fn shape(self) -> SensorShape {
        match self {
            SensorKind::Temperature => SensorShape {
                key: "temperature",
                name: "Temperature",
                device_class: "temperature",
                unit: "°C",
                state_class: "measurement",
                entity_category: None,
            },
            SensorKind::Humidity => SensorShape {
                key: "humidity",
                name: "Humidity",
                device_class: "humidity",
                unit: "%",
                state_class: "measurement",
                entity_category: None,
            },
            SensorKind::Rssi => SensorShape {
                key: "rssi",
                name: "Wi-Fi signal",
                device_class: "signal_strength",
                unit: "dBm",
                state_class: "measurement",
                entity_category: Some("diagnostic"),
            },
            SensorKind::Uptime => SensorShape {
                key: "uptime",
                name: "Uptime",
                device_class: "duration",
                unit: "s",
                state_class: "total_increasing",
                entity_category: Some("diagnostic"),
            },
        }
    }
}

/// Retained on `hearth-node/<id>/announce` at every (re)connect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announce<'a> {
    /// Node id, equal to the id in the topic.
    pub id: &'a str,
    /// Human name ("Server room").
    pub name: &'a str,
    /// Hardware model ("ESP32-C3 sensor node").
    pub model: &'a str,
    /// Firmware version.
    pub sw_version: &'a str,
    /// What the node measures.
    pub sensors: heapless::Vec<SensorKind, 8>,
    /// Telemetry period, s.
    pub interval_s: u32,
}

/// Sent on `hearth-node/<id>/telemetry`. A field is absent when the node has
/// no such sensor or the reading failed (never a sentinel value).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Telemetry {
    /// °C
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// % relative humidity
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub humidity: Option<f32>,
    /// dBm
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rssi: Option<i16>,
    /// s since boot
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime: Option<u32>,
}

impl Telemetry {
    /// The reading for one sensor kind, as f64.
    pub fn value(&self, kind: SensorKind) -> Option<f64> {
        match kind {
            SensorKind::Temperature => self.temperature.map(f64::from),
            SensorKind::Humidity => self.humidity.map(f64::from),
            SensorKind::Rssi => self.rssi.map(f64::from),
            SensorKind::Uptime => self.uptime.map(f64::from),
        }
    }

    /// Physically plausible ranges; a reading outside is a sensor fault.
    pub fn check(&self) -> Result<(), (&'static str, f64)> {
        let bounds: [(SensorKind, f64, f64); 3] = [
            (SensorKind::Temperature, -40.0, 125.0),
            (SensorKind::Humidity, 0.0, 100.0),
            (SensorKind::Rssi, -120.0, 0.0),
        ];
        for (kind, lo, hi) in bounds {
            if let Some(v) = self.value(kind)
                && !(lo..=hi).contains(&v)
            {
                return Err((kind.shape().key, v));
            }
        }
        Ok(())
    }
}

/// Encodes a payload into `buf`; returns the JSON slice.
pub fn encode<'b, T: Serialize>(value: &T, buf: &'b mut [u8]) -> Result<&'b [u8], EncodeError> {
    let n = serde_json_core::to_slice(value, buf).map_err(|_| EncodeError)?;
    Ok(&buf[..n])
}

/// The buffer was too small for the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeError;

/// Decodes a telemetry payload.
pub fn decode_telemetry(json: &[u8]) -> Result<Telemetry, serde_json_core::de::Error> {
    serde_json_core::from_slice(json).map(|(t, _)| t)
}

/// Decodes an announce payload (borrowing its strings from `json`).
pub fn decode_announce(json: &[u8]) -> Result<Announce<'_>, serde_json_core::de::Error> {
    serde_json_core::from_slice(json).map(|(a, _)| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        let t = topic("server-room", TopicKind::Telemetry).unwrap();
        assert_eq!(t.as_str(), "hearth-node/server-room/telemetry");
        assert_eq!(parse_topic(&t), Some(("server-room", TopicKind::Telemetry)));
        assert_eq!(parse_topic("hearth-node/Bad/telemetry"), None);
        assert_eq!(parse_topic("hearth-node/ok/other"), None);
        assert!(topic("", TopicKind::Status).is_err());
        assert!(topic("x".repeat(33).as_str(), TopicKind::Status).is_err());
    }

    #[test]
    fn telemetry_round_trips_and_omits_missing_fields() {
        let t = Telemetry {
            temperature: Some(23.5),
            humidity: None,
            rssi: Some(-61),
            uptime: Some(42),
        };
        let mut buf = [0u8; 128];
        let json = encode(&t, &mut buf).unwrap();
        let text = core::str::from_utf8(json).unwrap();
        assert_eq!(text, r#"{"temperature":23.5,"rssi":-61,"uptime":42}"#);
        assert_eq!(decode_telemetry(json).unwrap(), t);
        // The bridge parses with serde_json; both must agree.
        let via_std: Telemetry = serde_json::from_str(text).unwrap();
        assert_eq!(via_std, t);
    }

    #[test]
    fn announce_round_trips() {
        let mut sensors = heapless::Vec::new();
        sensors.extend_from_slice(&SensorKind::ALL).unwrap();
        let a = Announce {
            id: "rack-1",
            name: "Rack 1",
            model: "ESP32-C3 sensor node",
            sw_version: "0.1.0",
            sensors,
            interval_s: 10,
        };
        let mut buf = [0u8; 256];
        let json = encode(&a, &mut buf).unwrap().to_vec_for_test();
        assert_eq!(decode_announce(&json).unwrap(), a);
        assert!(encode(&a, &mut [0u8; 8]).is_err());
    }

    #[test]
    fn implausible_readings_are_named() {
        let t = Telemetry {
            humidity: Some(140.0),
            ..Default::default()
        };
        assert_eq!(t.check(), Err(("humidity", 140.0)));
    }

    trait ToVec {
        fn to_vec_for_test(&self) -> heapless::Vec<u8, 256>;
    }
    impl ToVec for [u8] {
        fn to_vec_for_test(&self) -> heapless::Vec<u8, 256> {
            heapless::Vec::from_slice(self).unwrap()
        }
    }
}
