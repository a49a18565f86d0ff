//! The home office's twin: four devices on their real protocols and the
//! loads behind them, on the demo's simulated clock.
//!
//! | device | twin | behind it |
//! |---|---|---|
//! | desk plug, Shelly Plug S (Gen1) | [`ShellyGen1Sim`]: HTTP + `shellies/<id>/…` MQTT | computer and screens, [`desk_w`] |
//! | printer plug, Meross MSS310 | [`MerossSim`]: signed HTTP `POST /config` | a laser printer, [`printer_w`] |
//! | AC plug, Shelly Plus Plug S (Gen2) | [`ShellyPushSim`]: HTTP RPC + MQTT push | the AC of the office [`Plant`] |
//! | IR gateway, Broadlink RM4 mini | [`BroadlinkSim`]: UDP, AES-128-CBC | the same AC, by SmartIR codes |
//! | a second RM4 mini, not configured | [`BroadlinkSim`] | nothing: LAN discovery lists it as pending |
//! | a Plus Plug S in the hallway, not configured | [`mdns_sim::start_plus_plug`]: HTTP RPC, announced over mDNS on loopback | nothing: pending too |
//!
//! The office is the twin's one-node room ([`crate::twin::room`]) sized
//! for about 20 m²: C = 1.5 MJ/K, UA = 40 W/K, its heat the desk's and the
//! printer's draw plus two people (100 W each) during working hours, and a
//! summer day outside (22 °C at 04:00, 33 °C at 16:00). The AC (7 kW
//! cooling, 2.3 kW electrical with the compressor on, 60 W fan-only, 2 W
//! standby) has its own deadband thermostat, so its plug sees the
//! compressor cycle.
//!
//! Loads follow local time (Europe/Paris): the desk draws 140–220 W
//! (a new value every 10 minutes) from 08:30 to 12:30 and 13:30 to 18:00,
//! 35 W over lunch and 6 W at night; the printer idles at 7 W and prints
//! jobs of 1–3 minutes at 520 W (the fuser) about twice an hour
//! during working hours. Both patterns are drawn from a fixed seed, so two
//! runs see the same day.
//!
//! Ground truth for the report: each plug's energy as the twin counts it
//! ([`OfficeTwin::truth_wh`]), and every change a pushing plug must report
//! ([`Probe`]): the desk's load steps (while its relay is closed) and the
//! AC's compressor starts and stops.

use std::path::Path;

use crate::broker::BrokerAddress;
use crate::clock::Clock;
use crate::drivers::broadlink::smartir::SmartIrCodes;
use crate::shutdown::Shutdown;
use crate::twin::broadlink_sim::{BroadlinkSim, BroadlinkSimConfig};
use crate::twin::mdns_sim::{self, AnnouncedPlug};
use crate::twin::meross_sim::{self, MerossSim, MerossSimConfig};
use crate::twin::room::{COMPRESSOR_ELECTRICAL_W, FAN_ELECTRICAL_W};
use crate::twin::shelly_gen1_sim::{Gen1SimConfig, ShellyGen1Sim};
use crate::twin::shelly_push_sim::{self, ShellyPushSim, ShellyPushSimConfig};
use crate::twin::{Plant, RoomParams, SharedPlant};

/// The Meross plug's device key (the bridge's config gets the same).
pub const MEROSS_KEY: &str = "office-printer-key";
/// The Gen1 plug's MQTT id (`shellies/<id>/…`).
pub const DESK_MQTT_ID: &str = "shellyplug-s-c18b12";
/// The unconfigured hallway plug's MAC (its id `shellyplusplugs-<mac>`).
pub const HALLWAY_MAC: &str = "a8032ab1e7f0";
const SEED: u64 = 17;
/// W of the two people during working hours.
const PEOPLE_W: f64 = 200.0;
/// Between the compressor's and the fan's draw: a reading above is "on".
pub const COMPRESSOR_SPLIT_W: f64 = (COMPRESSOR_ELECTRICAL_W + FAN_ELECTRICAL_W) / 2.0;

/// Minutes since local midnight (Europe/Paris) at `t_ms`.
pub fn local_minute(t_ms: i64) -> f64 {
    let Ok(t) = jiff::Timestamp::from_millisecond(t_ms) else {
        return 0.0;
    };
    let dt = crate::feeds::tariff::europe_paris().to_datetime(t);
    dt.hour() as f64 * 60.0 + dt.minute() as f64 + dt.second() as f64 / 60.0
}

fn working(minute: f64) -> bool {
    (510.0..750.0).contains(&minute) || (810.0..1080.0).contains(&minute)
}

/// A number in [0, 1) fixed by the seed and `slot`.
fn draw(slot: i64, salt: u64) -> f64 {
    fastrand::Rng::with_seed(SEED ^ salt ^ (slot as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).f64()
}

/// The desk's draw at `t_ms`, W (computer and two screens).
pub fn desk_w(t_ms: i64) -> f64 {
    let m = local_minute(t_ms);
    if working(m) {
        let slot = t_ms.div_euclid(600_000);
        (140.0 + 80.0 * draw(slot, 1)).round()
    } else if (750.0..810.0).contains(&m) {
        35.0
    } else {
        6.0
    }
}

/// The printer's draw at `t_ms`, W: idle, or printing (its fuser).
pub fn printer_w(t_ms: i64) -> f64 {
    if !working(local_minute(t_ms)) {
        return 7.0;
    }
    // About two jobs an hour: each 20-minute slot has one with a 60 %
    // chance, starting in its first 15 minutes, 1–3 minutes long.
    let slot_ms = 1_200_000;
    let slot = t_ms.div_euclid(slot_ms);
    let into = t_ms - slot * slot_ms;
    let start = (draw(slot, 2) * 15.0 * 60_000.0) as i64;
    let len = 60_000 + (draw(slot, 3) * 120_000.0) as i64;
    if draw(slot, 4) < 0.6 && (start..start + len).contains(&into) {
        520.0
    } else {
        7.0
    }
}

/// Outside temperature at `t_ms`, °C: a summer day, 22 °C at 04:00,
/// 33 °C at 16:00.
pub fn outside_c(t_ms: i64) -> f64 {
    let h = local_minute(t_ms) / 60.0;
    27.5 - 5.5 * (std::f64::consts::TAU * (h - 4.0) / 24.0).cos()
}

/// The office room (see the module doc).
pub fn office_room() -> RoomParams {
    RoomParams {
        capacitance_j_per_k: 1.5e6,
        ua_w_per_k: 40.0,
        it_load_w: 0.0,
        outside_c: 27.0,
        initial_c: 27.0,
    }
}

/// What a reading must show after a change (W).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expect {
    /// Within 1 W.
    Near(f64),
    Above(f64),
    Below(f64),
}

impl Expect {
    pub fn met(self, w: f64) -> bool {
        match self {
            Expect::Near(x) => (w - x).abs() <= 1.0,
            Expect::Above(x) => w > x,
            Expect::Below(x) => w < x,
        }
    }
}

/// A change at a pushing plug the bridge must see: at sim `at_ms` the
/// power sensor `entity` should start reading `expect`.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub entity: String,
    pub at_ms: i64,
    pub expect: Expect,
}

/// The running office.
pub struct OfficeTwin {
    pub clock: Clock,
    pub desk: ShellyGen1Sim,
    pub printer: MerossSim,
    pub ac_plug: ShellyPushSim,
    pub gateway: BroadlinkSim,
    /// Not in the bridge's config: found by LAN discovery.
    pub spare_gateway: BroadlinkSim,
    /// Not in the bridge's config, announced over mDNS (`None`: the
    /// announcement could not start; logged).
    pub hallway: Option<AnnouncedPlug>,
    pub plant: SharedPlant,
    desk_power_entity: String,
    ac_power_entity: String,
    probes: Vec<Probe>,
    compressor_seen: usize,
    /// (sim ms, [desk, printer, AC] Wh) every step.
    truth: Vec<(i64, [f64; 3])>,
    /// Lowest and highest room temperature, °C.
    pub room_range_c: (f64, f64),
}

impl OfficeTwin {
    /// Starts every device; `codes` is the SmartIR file the AC understands.
    /// `desk_power`/`ac_power` are the bridge's power sensors of the two
    /// pushing plugs (for the probes).
    pub fn start(
        clock: Clock,
        broker: &BrokerAddress,
        codes: &Path,
        desk_power: &str,
        ac_power: &str,
        shutdown: Shutdown,
    ) -> anyhow::Result<OfficeTwin> {
        let now = clock.now_ms();
        let mut room = office_room();
        room.outside_c = outside_c(now);
        let plant = Plant::new(room, now).shared();
        let codes = SmartIrCodes::load(codes).map_err(anyhow::Error::msg)?;
        let gateway = BroadlinkSim::spawn(
            clock,
            BroadlinkSimConfig::rm4_mini(codes.clone()),
            plant.clone(),
            shutdown.clone(),
        )?;
        let mut spare = BroadlinkSimConfig::rm4_mini(codes);
        spare.mac = [0x34, 0xea, 0x34, 0xc4, 0x5d, 0x21];
        spare.name = "Living room RM4".into();
        let spare_plant = Plant::new(office_room(), now).shared();
        let spare_gateway = BroadlinkSim::spawn(clock, spare, spare_plant, shutdown.clone())?;
        let ac_plug = shelly_push_sim::spawn(
            clock,
            ShellyPushSimConfig {
                mac: "A8032AB1A11C".into(),
                name: "AC plug".into(),
                seed: SEED,
                prefix: None,
                broker: broker.clone(),
            },
            plant.clone(),
            shutdown.clone(),
        )?;
        let desk = ShellyGen1Sim::start(
            clock,
            Gen1SimConfig {
                mqtt: Some(broker.clone()),
                mqtt_id: Some(DESK_MQTT_ID.into()),
                ..Gen1SimConfig::plug_s("C45BBEC18B12", desk_w(now))
            },
            shutdown.clone(),
        )?;
        let (printer, _) = meross_sim::spawn(
            clock,
            MerossSimConfig {
                key: MEROSS_KEY.into(),
                mac: "48e1e9c0ffee".into(),
                load_w: printer_w(now),
                integrate: true,
                ..MerossSimConfig::default()
            },
            shutdown.clone(),
        )?;
        let hallway = match mdns_sim::start_plus_plug(clock, HALLWAY_MAC, "Hallway plug", shutdown)
        {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!("demo: the hallway plug is not announced over mDNS: {e:#}");
                None
            }
        };
        let t = plant.lock().unwrap_or_else(|e| e.into_inner()).room.temp_c;
        Ok(OfficeTwin {
            clock,
            desk,
            printer,
            ac_plug,
            gateway,
            spare_gateway,
            hallway,
            plant,
            desk_power_entity: desk_power.into(),
            ac_power_entity: ac_power.into(),
            probes: Vec::new(),
            compressor_seen: 0,
            truth: Vec::new(),
            room_range_c: (t, t),
        })
    }

    /// Moves the loads and the weather to now, notes the changes the
    /// pushing plugs must report, samples the ground truth.
    pub fn step(&mut self) {
        let now = self.clock.now_ms();
        let desk = desk_w(now);
        let before = self.desk.power_w();
        self.desk.set_load(desk);
        let after = self.desk.power_w();
        if after != before {
            self.probes.push(Probe {
                entity: self.desk_power_entity.clone(),
                at_ms: now,
                expect: Expect::Near(after),
            });
        }
        let printer = printer_w(now);
        self.printer.set_load_w(printer);
        let people = if working(local_minute(now)) {
            PEOPLE_W
        } else {
            0.0
        };
        let printer_heat = if self.printer.relay() { printer } else { 0.0 };
        let (room_c, events) = {
            let mut p = self.plant.lock().unwrap_or_else(|e| e.into_inner());
            p.set_it_load_w(after + printer_heat + people, now);
            p.set_outside_c(outside_c(now), now);
            let events: Vec<(i64, bool)> =
                p.ac.compressor_events()[self.compressor_seen..].to_vec();
            (p.room.temp_c, events)
        };
        self.compressor_seen += events.len();
        for (at_ms, running) in events {
            self.probes.push(Probe {
                entity: self.ac_power_entity.clone(),
                at_ms,
                expect: if running {
                    Expect::Above(COMPRESSOR_SPLIT_W)
                } else {
                    Expect::Below(COMPRESSOR_SPLIT_W)
                },
            });
        }
        self.room_range_c = (
            self.room_range_c.0.min(room_c),
            self.room_range_c.1.max(room_c),
        );
        let truth = self.truth_wh();
        if self.truth.last().is_none_or(|(_, w)| *w != truth) {
            self.truth.push((now, truth));
        }
    }

    /// [desk, printer, AC] energy through each plug since start, Wh.
    pub fn truth_wh(&self) -> [f64; 3] {
        let ac = {
            let mut p = self.plant.lock().unwrap_or_else(|e| e.into_inner());
            p.advance_to(self.clock.now_ms());
            p.energy_wh()
        };
        [self.desk.counter_wmin() / 60.0, self.printer.total_wh(), ac]
    }

    /// Plug `i`'s true energy at sim `t_ms` (linear between samples), Wh.
    pub fn truth_at(&self, i: usize, t_ms: i64) -> f64 {
        let after = self.truth.partition_point(|(t, _)| *t <= t_ms);
        match (
            after.checked_sub(1).map(|k| self.truth[k]),
            self.truth.get(after).copied(),
        ) {
            (Some((t0, w0)), Some((t1, w1))) if t1 > t0 => {
                w0[i] + (w1[i] - w0[i]) * (t_ms - t0) as f64 / (t1 - t0) as f64
            }
            (Some((_, w)), _) => w[i],
            (None, Some((_, w))) => w[i],
            (None, None) => 0.0,
        }
    }

    /// Every change the pushing plugs had to report, oldest first.
    pub fn probes(&self) -> &[Probe] {
        &self.probes
    }

    /// The office's temperature now, °C.
    pub fn room_c(&self) -> f64 {
        self.plant
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .room
            .temp_c
    }

    /// The AC's electrical draw now, W.
    pub fn ac_w(&self) -> f64 {
        let p = self.plant.lock().unwrap_or_else(|e| e.into_inner());
        if p.relay_on() {
            p.ac.electrical_w()
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-07-01 at `hh:mm` Paris (UTC+2).
    fn at(hh: i64, mm: i64) -> i64 {
        1_782_864_000_000 + ((hh - 2) * 60 + mm) * 60_000
    }

    #[test]
    fn loads_follow_the_working_day() {
        assert_eq!(local_minute(at(8, 30)), 510.0);
        assert_eq!(desk_w(at(3, 0)), 6.0);
        assert_eq!(desk_w(at(13, 0)), 35.0);
        let work: Vec<f64> = (0..21).map(|k| desk_w(at(9, 0) + k * 600_000)).collect();
        assert!(work.iter().all(|w| (140.0..=220.0).contains(w)), "{work:?}");
        assert!(
            work.windows(2).any(|w| w[0] != w[1]),
            "the desk load changes"
        );
        let day: Vec<f64> = (0..600)
            .map(|k| printer_w(at(8, 30) + k * 60_000))
            .collect();
        let jobs = day.windows(2).filter(|w| w[1] > w[0]).count();
        assert!((10..=40).contains(&jobs), "{jobs} print jobs over 10 h");
        assert_eq!(printer_w(at(22, 0)), 7.0);
        assert!((outside_c(at(16, 0)) - 33.0).abs() < 1e-9);
        assert!((outside_c(at(4, 0)) - 22.0).abs() < 1e-9);
    }
}
