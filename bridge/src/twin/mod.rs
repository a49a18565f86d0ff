//! # The digital twin
//!
//! A server room that does not exist, wired to Hearth the way a real one
//! would be: every simulated device speaks its real protocol over a real
//! socket, and the bridge cannot tell it from hardware.
//!
//! | device | protocol | module |
//! |---|---|---|
//! | ESP32 sensor node (temperature, humidity, RSSI, uptime) | MQTT, `hearth-node/<id>/…` ([`hearth_node_core`]) | [`node_sim`] |
//! | Tasmota IR bridge driving the split AC | MQTT, `cmnd/<topic>/IRhvac` → `stat/<topic>/RESULT` | [`tasmota_sim`] |
//! | Tasmota multi-relay metered power strip (relays, per-outlet loads, `ENERGY` per channel or total, LWT, optional breaker) | MQTT, `cmnd/<topic>/POWER<n>` → `stat/<topic>/RESULT`, `tele/<topic>/SENSOR` | [`tasmota_strip_sim`] |
//! | Shelly Pro 4PM, 4 metered relays (settable loads, optional breaker, may share a circuit with Tasmota strips) | HTTP RPC on 127.0.0.1 and MQTT RPC (`<prefix>/rpc`, `NotifyStatus` on `<prefix>/events/rpc`, `<prefix>/online`) | [`shelly_pro4pm_sim`] |
//! | Shelly Pro 3EM / Pro EM energy meter (grid and PV clamps; settable signed power, import/export counters) | HTTP RPC on 127.0.0.1 (`EM`/`EMData`, `EM1`/`EM1Data`) | [`shelly_em_sim`] |
//! | Shelly Gen1 Plug S / 1PM / EM (settable load, watt-minute counter, reboot, offline, malformed payloads) | HTTP `/shelly`, `/status`, `/relay/0?turn=` on 127.0.0.1 and MQTT `shellies/<id>/…` | [`shelly_gen1_sim`] |
//! | Broadlink RM4 mini IR gateway driving the AC (SmartIR codes decoded back) | UDP on 127.0.0.1 (discovery, auth, AES-128-CBC, RM4 `send_data`) | [`broadlink_sim`] |
//! | Shelly Plus Plug S feeding the AC | HTTP JSON-RPC (Gen2 API) on 127.0.0.1 | [`shelly_sim`] |
//! | mDNS announcements of twin Shelly devices (`_shelly._tcp`, `_http._tcp`) | mDNS/DNS-SD over multicast on loopback | [`mdns_sim`] |
//! | the same plug pushing over MQTT, with its power/current limits | `NotifyStatus` on `<prefix>/events/rpc`, `<prefix>/status/switch:0`, `<prefix>/online`, `<prefix>/rpc` | [`shelly_push_sim`] |
//! | Meross MSS310 metered plug (settable load, relay, daily consumption, key, encrypted-firmware and offline modes) | HTTP `POST /config`, signed messages (md5), on 127.0.0.1 | [`meross_sim`] |
//! | Tempo colours, Open-Meteo forecast, spot prices (the feeds' sources) | HTTP JSON on 127.0.0.1 (api-couleur-tempo.fr, RTE, Open-Meteo shapes) | [`feeds_sim`] |
//! | The server room's knobs (outdoor temperature, IT load), not a device | MQTT, `hearth-twin/server-room/set` | [`controls`] |
//! | House: ESP32 node `house` (room temperature, heating valve 0–100 %) on a 5R1C zone | MQTT, `hearth-node/house/…` incl. `valve/set`, `valve/state` | [`house`] |
//!
//! Behind them sits one physical state, the [`plant::Plant`]: the room's
//! air temperature ([`room`]: `C·dT/dt = P_it + UA·(T_out − T) − Q_cool`,
//! the standard one-node lumped-capacitance ("1R1C") building model, see
//! e.g. ASHRAE Handbook — Fundamentals, ch. 18, or Bacher & Madsen 2011,
//! "Identifying suitable models for the heat dynamics of buildings") and an
//! air conditioner whose compressor has its own return-air thermostat.
//!
//! Beside the server room, [`building`] holds an ISO 13790 "5R1C" hourly
//! zone model (air, surface and mass nodes; the formulation and reference
//! tests of RC_BuildingSimulator) with a valve-driven [`building::Heater`],
//! steppable at any Δt ≤ 1 h: the plant for MPC heating studies.
//!
//! Strips hang in a [`circuit`] tree of IEC 60898-1 [`breaker`]s (thermal
//! inverse-time with memory, magnetic instantaneous by B/C/D curve): a
//! breaker held over its curve trips and cuts every outlet below it. The
//! Tasmota strip and the Pro 4PM share their metered-outlet logic (energy
//! counted over the time each outlet was live) in `outlets`.
//!
//! The twin shares nothing with the bridge but the [`Clock`](crate::clock::Clock):
//! all durations are simulated time, so a demo can run a day in a minute.
//! [`server_room::ServerRoomTwin::start`] wires everything and hands back a
//! [`TwinHandle`] for tests and demos (snapshots, compressor events, IR log,
//! fault injection).

pub mod access;
pub mod batch;
pub mod breaker;
pub mod broadlink_sim;
pub mod building;
pub mod circuit;
pub mod controls;
pub mod coworking;
pub mod feeds_sim;
pub mod house;
pub mod mdns_sim;
pub mod meross_sim;
pub mod node_sim;
pub(crate) mod outlets;
pub mod plant;
pub mod room;
pub mod server_room;
pub mod shelly_em_sim;
pub mod shelly_gen1_sim;
pub mod shelly_pro4pm_sim;
pub mod shelly_push_sim;
pub mod shelly_sim;
pub mod solar_house;
pub mod tasmota_sim;
pub mod tasmota_strip_sim;

pub use access::TwinAccess;
pub use plant::{Plant, SharedPlant};
pub use room::{AcMode, AcSettings, AcUnit, Room, RoomParams};
pub use server_room::{AcSnapshot, ServerRoomTwin, TwinHandle, TwinOptions, TwinSnapshot};
pub use shelly_sim::ShellyFault;
pub use tasmota_sim::IrLog;

/// One draw from the standard normal distribution (Box–Muller), so sensor
/// and mains noise are Gaussian yet reproducible from a seed.
pub(crate) fn standard_normal(rng: &mut fastrand::Rng) -> f64 {
    // 1 − u keeps u1 in (0, 1], away from ln(0).
    let u1 = 1.0 - rng.f64();
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_normal_has_unit_variance() {
        let mut rng = fastrand::Rng::with_seed(7);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }
}
