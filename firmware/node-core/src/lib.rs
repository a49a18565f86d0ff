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
//! | `hearth-node/<node_id>/valve/set` | no | to the node: `0`–`100` or `STOP` ([`parse_valve_command`]) |
//! | `hearth-node/<node_id>/valve/state` | yes | [`ValveState`] JSON: position reached and target |
//!
//! The bridge creates the node's Home Assistant device from the announce
//! message alone: no configuration is needed on the bridge side.
//!
//! # Readings sent late (`age_ms`)
//!
//! A reading taken while the node could not publish (Wi-Fi or broker down)
//! is kept in an [`buffer::OfflineBuffer`] and sent after the reconnection
//! with [`Telemetry::age_ms`]: the milliseconds between the reading and its
//! sending (the node's monotonic clock; it needs no wall clock). The
//! receiver dates it `receive time − age_ms`. Absent means "taken now": a
//! live reading carries no `age_ms`, so its payload is what it was before
//! the field existed, and older bridges, which ignore unknown fields, still
//! take live readings (a late reading they take as current). Hearth's
//! bridge records a late reading at its own time and never lets it replace
//! a newer state; it refuses ages above 7 days.
//!
//! # Other modules
//!
//! - [`seal`]: the sealed secrets partition (Wi-Fi and MQTT credentials,
//!   AES-256-GCM under a key derived from an eFuse key).
//! - [`buffer`]: the offline buffer.
//! - [`backoff`]: reconnection delays (1 s doubling to 60 s, ±20 % jitter).
//!
//! # Valve (optional actuator)
//!
//! A node may drive one motorised heating valve (e.g. a 0–10 V actuator
//! on a radiator or manifold). It says so in its announce
//! ([`Announce::valve`], absent on nodes without one, which keeps older
//! bridges and older nodes working: neither side requires the field, and
//! older bridges ignore it and the `valve/…` topics).
//!
//! - Command, `valve/set`: the target opening in whole percent as plain
//!   ASCII decimal (`0` closed … `100` fully open; surrounding whitespace
//!   allowed), or `STOP` (any case) to hold where it is. It is the payload
//!   Home Assistant's MQTT valve publishes with `reports_position: true`.
//!   Anything else (`70.5`, `-1`, `150`, JSON, empty) is rejected: the node
//!   logs the payload and the reason ([`ValveCommandError`]) and does not
//!   move.
//! - State, `valve/state` (retained): `{"position":42,"target":70}`, whole
//!   percent. Published at every (re)connect, at once after each accepted
//!   command, every few seconds while moving and once when it stops. The
//!   valve is moving while `position != target`.
//! - Motion: a real actuator travels at a finite speed; [`ValveActuator`]
//!   models a constant-speed stroke of `travel_s` seconds for 0 → 100 %
//!   (typical thermal/motor actuators: 60–180 s).
#![no_std]

use core::fmt::Write as _;
use serde::{Deserialize, Serialize};

pub use heapless;

pub mod backoff;
pub mod buffer;
pub mod seal;

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

/// The topics of one node (the two `Valve…` ones only on nodes that
/// announce a valve).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    Announce,
    Telemetry,
    Status,
    /// `valve/set`: commands to the node.
    ValveSet,
    /// `valve/state`: what the valve reached.
    ValveState,
}

impl TopicKind {
    pub const fn suffix(self) -> &'static str {
        match self {
            TopicKind::Announce => "announce",
            TopicKind::Telemetry => "telemetry",
            TopicKind::Status => "status",
            TopicKind::ValveSet => "valve/set",
            TopicKind::ValveState => "valve/state",
        }
    }

    fn from_suffix(s: &str) -> Option<Self> {
        match s {
            "announce" => Some(TopicKind::Announce),
            "telemetry" => Some(TopicKind::Telemetry),
            "status" => Some(TopicKind::Status),
            "valve/set" => Some(TopicKind::ValveSet),
            "valve/state" => Some(TopicKind::ValveState),
            _ => None,
        }
    }
}

/// `hearth-node/<node_id>/<kind>`. Errors if the node id is not valid.
pub fn topic(node_id: &str, kind: TopicKind) -> Result<Topic, NodeIdError> {
    validate_node_id(node_id)?;
    let mut t = Topic::new();
    // Cannot overflow: 11 + 32 + 1 + 11 < 96.
    let _ = write!(t, "{TOPIC_ROOT}/{node_id}/{}", kind.suffix());
    Ok(t)
}

/// Splits `hearth-node/<node_id>/<kind>` into its node id and kind (`kind`
/// may span two levels: `valve/set`).
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
    /// The valve the node drives, if any. Absent (not `null`) on nodes
    /// without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valve: Option<ValveInfo>,
}

/// A node's valve actuator, as announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValveInfo {
    /// Time for a full stroke 0 → 100 %, s.
    pub travel_s: u32,
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
    /// ms between the reading and its sending; absent: taken now. Set on
    /// readings sent from the [`buffer::OfflineBuffer`] after a reconnection
    /// (see "Readings sent late" above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<u32>,
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

/// A command on `hearth-node/<id>/valve/set`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValveCommand {
    /// Move to this opening, whole percent 0–100.
    Position(u8),
    /// Hold where it is.
    Stop,
}

/// Why a `valve/set` payload was rejected. The node logs it with the
/// payload; the valve does not move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValveCommandError {
    Empty,
    /// Not ASCII decimal digits (a sign, a decimal point, JSON, …).
    NotAnInteger,
    /// An integer above 100 (saturated at `u32::MAX`).
    OutOfRange(u32),
}

impl core::fmt::Display for ValveCommandError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ValveCommandError::Empty => {
                f.write_str("empty payload; expected an integer 0-100 or STOP")
            }
            ValveCommandError::NotAnInteger => {
                f.write_str("not an integer; expected an integer 0-100 (percent open) or STOP")
            }
            ValveCommandError::OutOfRange(v) => {
                write!(
                    f,
                    "{v} is out of range; expected an integer 0-100 (percent open)"
                )
            }
        }
    }
}

/// Parses a `valve/set` payload: `0`–`100` (ASCII decimal, whitespace
/// around it allowed) or `STOP` (any case).
pub fn parse_valve_command(payload: &[u8]) -> Result<ValveCommand, ValveCommandError> {
    let text = payload.trim_ascii();
    if text.is_empty() {
        return Err(ValveCommandError::Empty);
    }
    if text.eq_ignore_ascii_case(b"stop") {
        return Ok(ValveCommand::Stop);
    }
    if !text.iter().all(u8::is_ascii_digit) {
        return Err(ValveCommandError::NotAnInteger);
    }
    let value = text.iter().fold(0u32, |acc, d| {
        acc.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    });
    match u8::try_from(value) {
        Ok(p) if p <= 100 => Ok(ValveCommand::Position(p)),
        _ => Err(ValveCommandError::OutOfRange(value)),
    }
}

/// Retained on `hearth-node/<id>/valve/state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValveState {
    /// Opening reached, whole percent (rounded), 0–100.
    pub position: u8,
    /// Opening the valve is moving to, whole percent, 0–100.
    pub target: u8,
}

impl ValveState {
    /// Both fields within 0–100; otherwise the offending field and value.
    pub fn check(&self) -> Result<(), (&'static str, u8)> {
        if self.position > 100 {
            return Err(("position", self.position));
        }
        if self.target > 100 {
            return Err(("target", self.target));
        }
        Ok(())
    }

    pub fn moving(&self) -> bool {
        self.position != self.target
    }
}

/// Decodes a valve state payload.
pub fn decode_valve_state(json: &[u8]) -> Result<ValveState, serde_json_core::de::Error> {
    serde_json_core::from_slice(json).map(|(v, _)| v)
}

/// Thousandths of a percent in a full stroke.
const FULL_STROKE_MPCT: u64 = 100_000;

/// A constant-speed valve actuator: it moves towards its target at
/// 100 % per `travel_s`, in integer arithmetic (no floats, no libm) on the
/// caller's millisecond clock. Starts closed, at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValveActuator {
    /// Opening, thousandths of a percent (0–100 000).
    position_mpct: u32,
    /// Target, whole percent.
    target: u8,
    /// Full stroke, ms (0: moves instantly).
    travel_ms: u64,
    /// Time the position corresponds to, ms.
    at_ms: i64,
}

impl ValveActuator {
    pub fn new(travel_s: u32, now_ms: i64) -> Self {
        ValveActuator {
            position_mpct: 0,
            target: 0,
            travel_ms: u64::from(travel_s) * 1000,
            at_ms: now_ms,
        }
    }

    pub fn travel_s(&self) -> u32 {
        (self.travel_ms / 1000) as u32
    }

    /// Moves the valve for the time elapsed up to `now_ms` (earlier times
    /// are ignored).
    pub fn advance_to(&mut self, now_ms: i64) {
        if now_ms <= self.at_ms {
            return;
        }
        let elapsed = (now_ms - self.at_ms) as u64;
        self.at_ms = now_ms;
        let goal = u32::from(self.target) * 1000;
        // Zero travel time: the whole stroke at once.
        let step = elapsed
            .saturating_mul(FULL_STROKE_MPCT)
            .checked_div(self.travel_ms)
            .unwrap_or(FULL_STROKE_MPCT)
            .min(FULL_STROKE_MPCT) as u32;
        self.position_mpct = if self.position_mpct < goal {
            (self.position_mpct + step).min(goal)
        } else {
            self.position_mpct.saturating_sub(step).max(goal)
        };
    }

    /// Applies a command received at `now_ms`. `Stop` holds at the nearest
    /// whole percent (reached within half a percent of travel).
    pub fn command(&mut self, cmd: ValveCommand, now_ms: i64) {
        self.advance_to(now_ms);
        self.target = match cmd {
            ValveCommand::Position(p) => p.min(100),
            ValveCommand::Stop => self.position_pct_rounded(),
        };
    }

    /// Opening, thousandths of a percent.
    pub fn position_mpct(&self) -> u32 {
        self.position_mpct
    }

    fn position_pct_rounded(&self) -> u8 {
        ((self.position_mpct + 500) / 1000).min(100) as u8
    }

    pub fn target(&self) -> u8 {
        self.target
    }

    /// What the node reports on `valve/state`.
    pub fn state(&self) -> ValveState {
        ValveState {
            position: self.position_pct_rounded(),
            target: self.target,
        }
    }

    /// Still moving towards the target.
    pub fn moving(&self) -> bool {
        self.position_mpct != u32::from(self.target) * 1000
    }

    /// Time left until the target is reached, ms (rounded up).
    pub fn remaining_ms(&self) -> u64 {
        let goal = u32::from(self.target) * 1000;
        let distance = u64::from(self.position_mpct.abs_diff(goal));
        (distance * self.travel_ms).div_ceil(FULL_STROKE_MPCT)
    }
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
            age_ms: None,
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
    fn telemetry_with_age_round_trips_and_old_payloads_decode() {
        let t = Telemetry {
            temperature: Some(21.25),
            age_ms: Some(90_000),
            ..Default::default()
        };
        let mut buf = [0u8; 128];
        let json = encode(&t, &mut buf).unwrap();
        assert_eq!(json, br#"{"temperature":21.25,"age_ms":90000}"#);
        assert_eq!(decode_telemetry(json).unwrap(), t);
        let via_std: Telemetry = serde_json::from_slice(json).unwrap();
        assert_eq!(via_std, t);
        // What nodes before age_ms send: a current reading.
        let old = br#"{"temperature":21.25,"rssi":-61,"uptime":42}"#;
        assert_eq!(decode_telemetry(old).unwrap().age_ms, None);
        // A reading from a buffer: the same encoding, with its age.
        let mut b = buffer::OfflineBuffer::<2>::new();
        b.push(
            Telemetry {
                temperature: Some(21.25),
                ..Default::default()
            },
            10_000,
        );
        let late = b.pop(100_000).unwrap();
        let mut buf2 = [0u8; 128];
        assert_eq!(encode(&late, &mut buf2).unwrap(), json);
        // The largest telemetry still fits the 128-byte buffer the twin uses.
        let max = Telemetry {
            temperature: Some(-39.99),
            humidity: Some(99.99),
            rssi: Some(-120),
            uptime: Some(u32::MAX),
            age_ms: Some(u32::MAX),
        };
        assert!(encode(&max, &mut buf2).is_ok());
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
            valve: None,
        };
        let mut buf = [0u8; 256];
        let json = encode(&a, &mut buf).unwrap().to_vec_for_test();
        assert!(
            !json.windows(5).any(|w| w == b"valve"),
            "no valve: no field"
        );
        assert_eq!(decode_announce(&json).unwrap(), a);
        assert!(encode(&a, &mut [0u8; 8]).is_err());

        let with_valve = Announce {
            valve: Some(ValveInfo { travel_s: 90 }),
            ..a
        };
        let json = encode(&with_valve, &mut buf).unwrap().to_vec_for_test();
        let text = core::str::from_utf8(&json).unwrap();
        assert!(text.ends_with(r#""valve":{"travel_s":90}}"#), "{text}");
        assert_eq!(decode_announce(&json).unwrap(), with_valve);
        let via_std: Announce<'_> = serde_json::from_str(text).unwrap();
        assert_eq!(via_std, with_valve);
    }

    #[test]
    fn announce_without_valve_field_still_decodes() {
        // What nodes before the valve existed send.
        let old = br#"{"id":"n","name":"N","model":"m","sw_version":"0.1.0","sensors":["temperature"],"interval_s":10}"#;
        assert_eq!(decode_announce(old).unwrap().valve, None);
        let via_std: Announce<'_> = serde_json::from_slice(old).unwrap();
        assert_eq!(via_std.valve, None);
    }

    #[test]
    fn valve_topics_round_trip() {
        let t = topic("house", TopicKind::ValveSet).unwrap();
        assert_eq!(t.as_str(), "hearth-node/house/valve/set");
        assert_eq!(parse_topic(&t), Some(("house", TopicKind::ValveSet)));
        let longest = "x".repeat(32);
        let t = topic(&longest, TopicKind::ValveState).unwrap();
        assert_eq!(
            parse_topic(&t),
            Some((longest.as_str(), TopicKind::ValveState))
        );
        assert_eq!(parse_topic("hearth-node/house/valve/other"), None);
        assert_eq!(parse_topic("hearth-node/house/valve"), None);
    }

    #[test]
    fn valve_commands_parse_and_validate() {
        use ValveCommand::*;
        use ValveCommandError::*;
        assert_eq!(parse_valve_command(b"0"), Ok(Position(0)));
        assert_eq!(parse_valve_command(b"70"), Ok(Position(70)));
        assert_eq!(parse_valve_command(b" 100\n"), Ok(Position(100)));
        assert_eq!(parse_valve_command(b"007"), Ok(Position(7)));
        assert_eq!(parse_valve_command(b"STOP"), Ok(Stop));
        assert_eq!(parse_valve_command(b"stop"), Ok(Stop));
        assert_eq!(parse_valve_command(b""), Err(Empty));
        assert_eq!(parse_valve_command(b"  "), Err(Empty));
        assert_eq!(parse_valve_command(b"101"), Err(OutOfRange(101)));
        assert_eq!(parse_valve_command(b"150"), Err(OutOfRange(150)));
        assert_eq!(
            parse_valve_command(b"99999999999999"),
            Err(OutOfRange(u32::MAX))
        );
        for bad in [
            &b"-1"[..],
            b"70.5",
            b"+5",
            b"abc",
            br#"{"position":70}"#,
            b"7 0",
            b"\xff",
        ] {
            assert_eq!(parse_valve_command(bad), Err(NotAnInteger), "{bad:?}");
        }
    }

    #[test]
    fn valve_command_errors_say_what_was_expected() {
        use core::fmt::Write as _;
        let mut s = heapless::String::<128>::new();
        write!(s, "{}", ValveCommandError::OutOfRange(150)).unwrap();
        assert_eq!(
            s.as_str(),
            "150 is out of range; expected an integer 0-100 (percent open)"
        );
    }

    #[test]
    fn valve_state_round_trips_and_checks_range() {
        let v = ValveState {
            position: 42,
            target: 70,
        };
        let mut buf = [0u8; 64];
        let json = encode(&v, &mut buf).unwrap();
        assert_eq!(json, br#"{"position":42,"target":70}"#);
        assert_eq!(decode_valve_state(json).unwrap(), v);
        assert!(v.moving());
        assert_eq!(v.check(), Ok(()));
        let bad = ValveState {
            position: 120,
            target: 0,
        };
        assert_eq!(bad.check(), Err(("position", 120)));
        assert!(decode_valve_state(b"70").is_err());
        assert!(decode_valve_state(br#"{"position":-1,"target":0}"#).is_err());
    }

    #[test]
    fn actuator_travels_at_constant_speed() {
        // 90 s for a full stroke: 0 → 70 % takes 63 s.
        let mut v = ValveActuator::new(90, 0);
        assert_eq!(
            v.state(),
            ValveState {
                position: 0,
                target: 0
            }
        );
        assert!(!v.moving());
        v.command(ValveCommand::Position(70), 1_000);
        assert_eq!(v.remaining_ms(), 63_000);
        v.advance_to(1_000 + 45_000); // half of the full stroke
        assert_eq!(
            v.state(),
            ValveState {
                position: 50,
                target: 70
            }
        );
        v.advance_to(500); // the past: ignored
        assert_eq!(v.position_mpct(), 50_000);
        v.advance_to(1_000 + 63_000);
        assert_eq!(
            v.state(),
            ValveState {
                position: 70,
                target: 70
            }
        );
        assert!(!v.moving());
        v.advance_to(10_000_000); // stays at the target
        assert_eq!(v.position_mpct(), 70_000);
        // Closing: 70 → 0 in 63 s; stop after 9 s holds at 60 %.
        v.command(ValveCommand::Position(0), 10_000_000);
        v.advance_to(10_009_000);
        assert_eq!(v.state().position, 60);
        v.command(ValveCommand::Stop, 10_009_000);
        assert_eq!(v.target(), 60);
        assert!(!v.moving());
        v.advance_to(20_000_000);
        assert_eq!(
            v.state(),
            ValveState {
                position: 60,
                target: 60
            }
        );
    }

    #[test]
    fn actuator_with_zero_travel_moves_at_once() {
        let mut v = ValveActuator::new(0, 0);
        v.command(ValveCommand::Position(100), 0);
        assert_eq!(v.remaining_ms(), 0);
        v.advance_to(1);
        assert_eq!(v.state().position, 100);
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
