//! The one physical state every simulated device shares: the room, the AC
//! and the plug's relay and energy meter, advanced in simulated time.
//!
//! Devices never integrate on their own: whoever touches the plant first
//! calls [`Plant::advance_to`] with the clock's now, so a relay switched or
//! an IR frame received at sim time `t` takes effect exactly at `t`, and a
//! reading taken at `t` is the state at `t`.

use std::sync::{Arc, Mutex};

use super::room::{AcSettings, AcUnit, MAX_STEP_S, Room, RoomParams};

/// The plant behind a lock. Critical sections are short and never span an
/// `.await`, so a std mutex suits (tokio's docs recommend it for this).
pub type SharedPlant = Arc<Mutex<Plant>>;

const MINUTE_MS: i64 = 60_000;
const STEP_MS: i64 = (MAX_STEP_S * 1000.0) as i64;

#[derive(Debug, Clone)]
pub struct Plant {
    pub room: Room,
    pub ac: AcUnit,
    /// Sim ms up to which the state is integrated.
    sim_ms: i64,
    relay_on: bool,
    /// Energy through the plug since start, Wh.
    energy_wh: f64,
    /// Start of the minute being accumulated, sim ms (a multiple of 60 000).
    minute_start_ms: i64,
    /// Energy in the minute being accumulated, mWh.
    minute_mwh: f64,
    /// Energy of the last three whole minutes, mWh; `[0]` is the latest.
    last_minutes_mwh: [f64; 3],
}

impl Plant {
    /// Room at its initial temperature, AC off by remote, relay closed.
    pub fn new(params: RoomParams, now_ms: i64) -> Self {
        Plant {
            room: Room::new(params),
            ac: AcUnit::new(),
            sim_ms: now_ms,
            relay_on: true,
            energy_wh: 0.0,
            minute_start_ms: now_ms.div_euclid(MINUTE_MS) * MINUTE_MS,
            minute_mwh: 0.0,
            last_minutes_mwh: [0.0; 3],
        }
    }

    pub fn shared(self) -> SharedPlant {
        Arc::new(Mutex::new(self))
    }

    /// Sim ms the state corresponds to.
    pub fn sim_ms(&self) -> i64 {
        self.sim_ms
    }

    /// Integrates from the last time to `now_ms` (sim) in steps of at most
    /// 1 s, re-evaluating the AC's thermostat at the start of each step.
    /// Steps never straddle a minute boundary, so the per-minute energy
    /// counters are exact. A `now_ms` in the past is ignored.
    pub fn advance_to(&mut self, now_ms: i64) {
        while self.sim_ms < now_ms {
            let t = self.sim_ms;
            let next_minute = (t.div_euclid(MINUTE_MS) + 1) * MINUTE_MS;
            let dt_ms = STEP_MS.min(now_ms - t).min(next_minute - t);
            self.roll_minutes(t);

            self.ac.update(self.room.temp_c, t);
            let p_el = self.ac.electrical_w();
            self.room.step(dt_ms as f64 / 1000.0, self.ac.cooling_w());
            // W · ms → Wh: / 3.6e6; → mWh: / 3600.
            self.energy_wh += p_el * dt_ms as f64 / 3.6e6;
            self.minute_mwh += p_el * dt_ms as f64 / 3600.0;
            self.sim_ms = t + dt_ms;
        }
        self.roll_minutes(self.sim_ms);
    }

    /// Closes the accumulated minute(s) once `t` is past them.
    fn roll_minutes(&mut self, t: i64) {
        let start = t.div_euclid(MINUTE_MS) * MINUTE_MS;
        if start <= self.minute_start_ms {
            return;
        }
        let elapsed = ((start - self.minute_start_ms) / MINUTE_MS).min(4);
        // The minute that just ended, then empty ones for any skipped.
        for i in 0..elapsed {
            self.last_minutes_mwh.rotate_right(1);
            self.last_minutes_mwh[0] = if i == 0 { self.minute_mwh } else { 0.0 };
        }
        self.minute_mwh = 0.0;
        self.minute_start_ms = start;
    }

    pub fn relay_on(&self) -> bool {
        self.relay_on
    }

    /// Opens or closes the relay at `now_ms`; returns whether it was on.
    pub fn set_relay(&mut self, on: bool, now_ms: i64) -> bool {
        self.advance_to(now_ms);
        let was_on = self.relay_on;
        self.relay_on = on;
        self.ac.set_mains(on);
        self.ac.update(self.room.temp_c, self.sim_ms);
        was_on
    }

    /// Applies an IR command received at `now_ms`.
    pub fn apply_ir(&mut self, settings: AcSettings, now_ms: i64) {
        self.advance_to(now_ms);
        self.ac.apply(settings);
        self.ac.update(self.room.temp_c, self.sim_ms);
    }

    /// Changes the IT heat load (W) from `now_ms` on.
    pub fn set_it_load_w(&mut self, watts: f64, now_ms: i64) {
        self.advance_to(now_ms);
        self.room.params.it_load_w = watts;
    }

    /// Changes the outdoor temperature (°C) from `now_ms` on.
    pub fn set_outside_c(&mut self, celsius: f64, now_ms: i64) {
        self.advance_to(now_ms);
        self.room.params.outside_c = celsius;
    }

    /// Energy through the plug since start, Wh.
    pub fn energy_wh(&self) -> f64 {
        self.energy_wh
    }

    /// Energy of the last three whole minutes, mWh, latest first.
    pub fn by_minute_mwh(&self) -> [f64; 3] {
        self.last_minutes_mwh
    }

    /// Unix seconds of the first second of the latest whole minute (the one
    /// `by_minute_mwh()[0]` covers).
    pub fn minute_ts_s(&self) -> i64 {
        (self.minute_start_ms - MINUTE_MS).div_euclid(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::room::{AcMode, COMPRESSOR_ELECTRICAL_W, STANDBY_ELECTRICAL_W};

    const T0: i64 = 1_700_000_040_000; // a whole minute

    fn cool(set: f64) -> AcSettings {
        AcSettings {
            power: true,
            mode: AcMode::Cool,
            set_temp_c: set,
            fan_speed: "Auto".into(),
        }
    }

    #[test]
    fn energy_integrates_the_electrical_draw() {
        let mut plant = Plant::new(RoomParams::server_room(), T0);
        plant.apply_ir(cool(10.0), T0); // never reaches 10 °C: runs all hour
        plant.advance_to(T0 + 3_600_000);
        assert!((plant.energy_wh() - COMPRESSOR_ELECTRICAL_W).abs() < 1e-6);
        // 2300 W for a minute = 38.333 Wh = 38 333 mWh.
        let m = 2300.0 * 60.0 / 3.6;
        for v in plant.by_minute_mwh() {
            assert!((v - m).abs() < 1e-6, "{v}");
        }
        assert_eq!(plant.minute_ts_s(), (T0 + 3_540_000) / 1000);
    }

    #[test]
    fn by_minute_shifts_and_fills_gaps() {
        let mut plant = Plant::new(RoomParams::server_room(), T0);
        plant.advance_to(T0 + 60_000); // one standby minute
        let standby = STANDBY_ELECTRICAL_W * 60.0 / 3.6;
        assert!((plant.by_minute_mwh()[0] - standby).abs() < 1e-9);
        plant.set_relay(false, T0 + 60_000);
        plant.advance_to(T0 + 120_000);
        let b = plant.by_minute_mwh();
        assert_eq!(b[0], 0.0, "relay open: nothing drawn");
        assert!((b[1] - standby).abs() < 1e-9);
    }

    #[test]
    fn relay_cuts_the_compressor_at_the_right_time() {
        let mut plant = Plant::new(RoomParams::server_room(), T0);
        plant.apply_ir(cool(20.0), T0 + 500);
        assert!(plant.ac.compressor_running());
        assert!(plant.set_relay(false, T0 + 10_250));
        assert!(!plant.ac.compressor_running());
        assert_eq!(
            plant.ac.compressor_events(),
            &[(T0 + 500, true), (T0 + 10_250, false)]
        );
    }

    #[test]
    fn on_off_cycle_follows_the_deadband_in_time() {
        // Cooling from 26 °C to a 25 °C set point: starts at once, stops at
        // 24.5 °C after ≈ (1.5 K)/(3.8 kW/1.2 MJ/K) ≈ 475 s, restarts at
        // 25 °C after ≈ 0.5 K/(3.275 kW/1.2 MJ/K) ≈ 183 s.
        let mut plant = Plant::new(RoomParams::server_room(), T0);
        plant.apply_ir(cool(25.0), T0);
        plant.advance_to(T0 + 1_000_000);
        let ev = plant.ac.compressor_events();
        assert!(ev.len() >= 3, "{ev:?}");
        assert_eq!(ev[0], (T0, true));
        let on_s = (ev[1].0 - ev[0].0) as f64 / 1000.0;
        let off_s = (ev[2].0 - ev[1].0) as f64 / 1000.0;
        assert!((on_s - 475.0).abs() < 10.0, "on for {on_s} s");
        assert!((off_s - 183.0).abs() < 10.0, "off for {off_s} s");
        assert!(plant.room.temp_c > 24.4 && plant.room.temp_c < 25.1);
    }
}
