//! The server-room twin's own knobs, so a plugin's branches can be
//! exercised from the running demo: a heat wave (outdoor temperature) or a
//! rack coming online (IT load) changes the room's physics from the next
//! instant on.
//!
//! Like a lab bench's, not a device's: the twin listens on its own MQTT
//! topic [`CONTROL_TOPIC`] of the demo's broker; the bridge knows nothing of
//! it (no entity, no discovery), so nothing a controller sees is faked —
//! the room warms and the sensor node reports it. Publish a JSON object with
//! any of `outside_c` (°C) and `it_load_w` (W):
//!
//! ```sh
//! mosquitto_pub -p 1883 -t hearth-twin/server-room/set -m '{"outside_c": 38, "it_load_w": 5000}'
//! ```
//!
//! Bad payloads are logged (naming the payload and what was expected) and
//! ignored. Humidity is not a knob: the node reports 40 % ± noise and the
//! room model has no moisture.

use super::plant::SharedPlant;
use crate::clock::Clock;
use crate::shutdown::Shutdown;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use serde::Deserialize;
use std::time::Duration;

/// Where the twin takes its knobs.
pub const CONTROL_TOPIC: &str = "hearth-twin/server-room/set";
/// Outdoor temperatures accepted, °C: beyond any weather record.
pub const OUTSIDE_C: (f64, f64) = (-60.0, 60.0);
/// IT loads accepted, W: an empty room to ten full racks.
pub const IT_LOAD_W: (f64, f64) = (0.0, 100_000.0);
/// Longest control payload read, bytes (the object has two numbers).
const MAX_PAYLOAD: usize = 1024;

/// A control message: each field set changes that parameter.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomControl {
    /// Outdoor temperature, °C.
    #[serde(default)]
    pub outside_c: Option<f64>,
    /// IT heat load, W.
    #[serde(default)]
    pub it_load_w: Option<f64>,
}

impl RoomControl {
    /// Parses and checks a payload; the error names what was expected.
    pub fn parse(payload: &[u8]) -> Result<RoomControl, String> {
        if payload.len() > MAX_PAYLOAD {
            return Err(format!(
                "{} bytes; at most {MAX_PAYLOAD} are read",
                payload.len()
            ));
        }
        let c: RoomControl = serde_json::from_slice(payload).map_err(|e| {
            format!("expected {{\"outside_c\": °C, \"it_load_w\": W}} (either or both): {e}")
        })?;
        let check = |name: &str, v: Option<f64>, (lo, hi): (f64, f64), unit: &str| match v {
            Some(v) if !(lo..=hi).contains(&v) => {
                Err(format!("`{name}` must be {lo} to {hi} {unit}, got {v}"))
            }
            _ => Ok(()),
        };
        check("outside_c", c.outside_c, OUTSIDE_C, "°C")?;
        check("it_load_w", c.it_load_w, IT_LOAD_W, "W")?;
        Ok(c)
    }

    fn apply(&self, plant: &SharedPlant, now_ms: i64) {
        let mut p = plant.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = self.outside_c {
            p.set_outside_c(c, now_ms);
        }
        if let Some(w) = self.it_load_w {
            p.set_it_load_w(w, now_ms);
        }
        tracing::info!(
            "twin: server room now {:.1} °C outside, {:.0} W of IT load",
            p.room.params.outside_c,
            p.room.params.it_load_w
        );
    }
}

/// Subscribes to [`CONTROL_TOPIC`] until `shutdown`, reconnecting as the
/// other twin devices do.
pub fn spawn(
    clock: Clock,
    broker: &crate::broker::BrokerAddress,
    plant: SharedPlant,
    mut shutdown: Shutdown,
) {
    // Unique per twin: several twins may share a process (tests) or a broker.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("hearth-twin-controls-{}-{n}", std::process::id());
    let mut opts = match crate::broker::client::options(&id, broker) {
        Ok(opts) => opts,
        Err(e) => {
            tracing::error!("twin controls: cannot reach {broker}: {e:#}");
            return;
        }
    };
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = shutdown.wait() => break,
                ev = eventloop.poll() => ev,
            };
            match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    // Clean session: subscribe after every (re)connect.
                    if let Err(e) = client.try_subscribe(CONTROL_TOPIC, QoS::AtLeastOnce) {
                        tracing::warn!("twin controls: cannot subscribe: {e}");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == CONTROL_TOPIC => {
                    match RoomControl::parse(&p.payload) {
                        Ok(c) => c.apply(&plant, clock.now_ms()),
                        Err(e) => tracing::warn!("twin controls: {CONTROL_TOPIC}: {e}; ignored"),
                    }
                }
                Ok(_) => {}
                // The broker may come up later or restart: retry calmly.
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_payloads_are_checked() {
        assert_eq!(
            RoomControl::parse(br#"{"outside_c": 38, "it_load_w": 5000}"#).unwrap(),
            RoomControl {
                outside_c: Some(38.0),
                it_load_w: Some(5000.0)
            }
        );
        assert_eq!(
            RoomControl::parse(br#"{"it_load_w": 0}"#)
                .unwrap()
                .outside_c,
            None
        );
        let e = RoomControl::parse(br#"{"outside_c": 1e308}"#).unwrap_err();
        assert!(e.contains("`outside_c` must be -60 to 60 °C"), "{e}");
        let e = RoomControl::parse(br#"{"humidity": 50}"#).unwrap_err();
        assert!(e.contains("unknown field `humidity`"), "{e}");
        assert!(RoomControl::parse(b"not json").is_err());
        assert!(RoomControl::parse(&[b' '; 2000]).is_err());
    }
}
