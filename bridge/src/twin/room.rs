//! Thermal model of a one-zone server room and of the split air conditioner
//! that cools it. Pure: no clock, no I/O; [`super::plant`] drives it in time.
//!
//! # Room
//!
//! One lumped node (room air plus everything that warms with it: racks,
//! furniture, the inner layer of the walls):
//!
//! ```text
//! C · dT/dt = P_it + UA · (T_out − T) − Q_cool
//! ```
//!
//! | symbol | unit | meaning |
//! |---|---|---|
//! | `T` | °C | room temperature |
//! | `C` | J/K | heat capacity of the node |
//! | `P_it` | W | heat released by the IT load (all electrical power ends as heat) |
//! | `UA` | W/K | conductance of the envelope to the outside |
//! | `T_out` | °C | outside (or corridor) temperature |
//! | `Q_cool` | W | heat removed by the AC (thermal, not electrical, power) |
//!
//! With `Q_cool` constant the solution is
//! `T(t) = T_eq + (T₀ − T_eq)·e^(−t/τ)`, `τ = C/UA`,
//! `T_eq = T_out + (P_it − Q_cool)/UA`. The twin integrates with explicit
//! Euler in steps of at most [`MAX_STEP_S`] = 1 s: Euler is stable for
//! `dt < 2τ` (τ = 24 000 s with the defaults) and its relative error per
//! step is about `dt/(2τ)`, i.e. negligible; the 1 s bound exists so that
//! the AC's thermostat is evaluated at least once per simulated second.
//!
//! # Air conditioner
//!
//! [`AcUnit`] holds what the IR remote sets (power, mode, set point, fan)
//! and whether it has mains power (the Shelly relay). Its compressor has its
//! own return-air thermostat with a [`DEADBAND_K`] = 0.5 K hysteresis: it
//! starts at `T ≥ set`, stops at `T ≤ set − 0.5`, and otherwise keeps its
//! state. Only `Cool` runs the compressor in this model; the other modes
//! run the indoor fan only.

use serde::Serialize;

/// Longest explicit-Euler step, s.
pub const MAX_STEP_S: f64 = 1.0;
/// Heat removed while the compressor runs, W (thermal).
pub const COOLING_CAPACITY_W: f64 = 7000.0;
/// Electrical draw with the compressor running, W.
pub const COMPRESSOR_ELECTRICAL_W: f64 = 2300.0;
/// Electrical draw with the unit on and the compressor idle (indoor fan), W.
pub const FAN_ELECTRICAL_W: f64 = 60.0;
/// Electrical draw of the unit switched off by remote, mains present, W.
pub const STANDBY_ELECTRICAL_W: f64 = 2.0;
/// Compressor thermostat hysteresis, K.
pub const DEADBAND_K: f64 = 0.5;

/// Physical parameters of the room.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RoomParams {
    /// Heat capacity `C`, J/K.
    pub capacitance_j_per_k: f64,
    /// Envelope conductance `UA`, W/K.
    pub ua_w_per_k: f64,
    /// IT heat load `P_it`, W.
    pub it_load_w: f64,
    /// Outside temperature `T_out`, °C.
    pub outside_c: f64,
    /// Room temperature at start, °C.
    pub initial_c: f64,
}

impl RoomParams {
    /// A small server room: C = 1.2 MJ/K (≈ 40 m³ of air plus racks and
    /// inner walls), UA = 50 W/K, 3 kW of IT load, 30 °C outside, 26 °C at
    /// start. Without cooling it settles at 30 + 3000/50 = 90 °C with
    /// τ = C/UA = 24 000 s ≈ 6.7 h, so the AC is not optional.
    pub fn server_room() -> Self {
        RoomParams {
            capacitance_j_per_k: 1.2e6,
            ua_w_per_k: 50.0,
            it_load_w: 3000.0,
            outside_c: 30.0,
            initial_c: 26.0,
        }
    }

    /// Time constant `τ = C/UA`, s.
    pub fn time_constant_s(&self) -> f64 {
        self.capacitance_j_per_k / self.ua_w_per_k
    }

    /// Steady-state temperature under a constant cooling power, °C:
    /// `T_out + (P_it − Q_cool)/UA`.
    pub fn equilibrium_c(&self, q_cool_w: f64) -> f64 {
        self.outside_c + (self.it_load_w - q_cool_w) / self.ua_w_per_k
    }
}

impl Default for RoomParams {
    fn default() -> Self {
        Self::server_room()
    }
}

/// The room's state: its parameters and current temperature.
#[derive(Debug, Clone, PartialEq)]
pub struct Room {
    pub params: RoomParams,
    /// Room temperature `T`, °C.
    pub temp_c: f64,
}

impl Room {
    pub fn new(params: RoomParams) -> Self {
        Room {
            temp_c: params.initial_c,
            params,
        }
    }

    /// `dT/dt` in K/s for a cooling power `q_cool_w` (W, thermal).
    pub fn derivative_k_per_s(&self, q_cool_w: f64) -> f64 {
        let p = &self.params;
        (p.it_load_w + p.ua_w_per_k * (p.outside_c - self.temp_c) - q_cool_w)
            / p.capacitance_j_per_k
    }

    /// One explicit-Euler step of `dt_s` seconds (≤ [`MAX_STEP_S`]).
    pub fn step(&mut self, dt_s: f64, q_cool_w: f64) {
        debug_assert!(
            dt_s <= MAX_STEP_S + 1e-9,
            "Euler step {dt_s} s > {MAX_STEP_S} s"
        );
        self.temp_c += dt_s * self.derivative_k_per_s(q_cool_w);
    }

    /// Advances `dt_s` seconds under constant cooling, in steps ≤ 1 s.
    pub fn advance(&mut self, dt_s: f64, q_cool_w: f64) {
        let mut left = dt_s;
        while left > 0.0 {
            let h = left.min(MAX_STEP_S);
            self.step(h, q_cool_w);
            left -= h;
        }
    }
}

/// Operating mode as an IR remote sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AcMode {
    Cool,
    Heat,
    Dry,
    Fan,
    Auto,
}

/// What one IR command sets on the unit (IR is stateless: every frame
/// carries the whole remote state).
#[derive(Debug, Clone, PartialEq)]
pub struct AcSettings {
    pub power: bool,
    pub mode: AcMode,
    /// Set point, °C.
    pub set_temp_c: f64,
    /// Fan speed as the remote names it ("Auto", "Low", …); not modelled.
    pub fan_speed: String,
}

/// A split air conditioner: remote state, mains, and a compressor with its
/// own deadband thermostat. Every compressor start and stop is recorded
/// with its simulated time so min-cycle rules can be checked afterwards.
#[derive(Debug, Clone)]
pub struct AcUnit {
    settings: AcSettings,
    mains: bool,
    compressor: bool,
    starts: u64,
    /// (sim ms, compressor running after the change)
    events: Vec<(i64, bool)>,
}

impl Default for AcUnit {
    fn default() -> Self {
        Self::new()
    }
}

impl AcUnit {
    /// Off by remote, mode Cool, 24 °C, fan Auto, mains on, compressor idle.
    pub fn new() -> Self {
        AcUnit {
            settings: AcSettings {
                power: false,
                mode: AcMode::Cool,
                set_temp_c: 24.0,
                fan_speed: "Auto".into(),
            },
            mains: true,
            compressor: false,
            starts: 0,
            events: Vec::new(),
        }
    }

    pub fn settings(&self) -> &AcSettings {
        &self.settings
    }

    /// Applies an IR command. The compressor reacts at the next
    /// [`update`](Self::update).
    pub fn apply(&mut self, settings: AcSettings) {
        self.settings = settings;
    }

    pub fn mains(&self) -> bool {
        self.mains
    }

    /// Mains power from the relay. The remote state survives a power cut
    /// (units with "auto restart" resume their last state, which is the
    /// common default).
    pub fn set_mains(&mut self, on: bool) {
        self.mains = on;
    }

    /// Re-evaluates the compressor at `now_ms` (sim) for room temperature
    /// `room_c`: runs iff mains ∧ power ∧ mode = Cool ∧ the deadband
    /// thermostat calls for cooling (start at `T ≥ set`, stop at
    /// `T ≤ set − DEADBAND_K`, otherwise keep the current state).
    pub fn update(&mut self, room_c: f64, now_ms: i64) {
        let s = &self.settings;
        let demand = self.mains && s.power && s.mode == AcMode::Cool;
        let run = demand
            && if self.compressor {
                room_c > s.set_temp_c - DEADBAND_K
            } else {
                room_c >= s.set_temp_c
            };
        if run != self.compressor {
            self.compressor = run;
            if run {
                self.starts += 1;
            }
            self.events.push((now_ms, run));
        }
    }

    pub fn compressor_running(&self) -> bool {
        self.compressor
    }

    /// Heat removed from the room now, W (thermal).
    pub fn cooling_w(&self) -> f64 {
        if self.compressor {
            COOLING_CAPACITY_W
        } else {
            0.0
        }
    }

    /// Electrical draw now, W: what the Shelly plug measures.
    pub fn electrical_w(&self) -> f64 {
        if !self.mains {
            0.0
        } else if self.compressor {
            COMPRESSOR_ELECTRICAL_W
        } else if self.settings.power {
            FAN_ELECTRICAL_W
        } else {
            STANDBY_ELECTRICAL_W
        }
    }

    pub fn compressor_starts(&self) -> u64 {
        self.starts
    }

    /// Every compressor change: (sim ms, running after the change).
    pub fn compressor_events(&self) -> &[(i64, bool)] {
        &self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cooling_on(set: f64) -> AcSettings {
        AcSettings {
            power: true,
            mode: AcMode::Cool,
            set_temp_c: set,
            fan_speed: "Auto".into(),
        }
    }

    #[test]
    fn equilibrium_without_ac_is_t_out_plus_p_over_ua() {
        let p = RoomParams::server_room();
        let expected = p.outside_c + p.it_load_w / p.ua_w_per_k;
        assert_eq!(expected, 90.0);
        assert!((p.equilibrium_c(0.0) - expected).abs() < 1e-12);
        // Integrate 20 time constants: within e^-20 of equilibrium.
        let mut room = Room::new(p);
        room.advance(20.0 * p.time_constant_s(), 0.0);
        assert!((room.temp_c - expected).abs() < 1e-3, "T = {}", room.temp_c);
        // At equilibrium the derivative vanishes.
        room.temp_c = expected;
        assert!(room.derivative_k_per_s(0.0).abs() < 1e-15);
    }

    #[test]
    fn euler_matches_the_closed_form() {
        let p = RoomParams::server_room();
        let mut room = Room::new(p);
        let t = 3600.0;
        room.advance(t, 0.0);
        let t_eq = p.equilibrium_c(0.0);
        let exact = t_eq + (p.initial_c - t_eq) * (-t / p.time_constant_s()).exp();
        assert!(
            (room.temp_c - exact).abs() < 1e-3,
            "{} vs {exact}",
            room.temp_c
        );
    }

    #[test]
    fn cooling_lowers_temperature_at_the_expected_rate() {
        let p = RoomParams::server_room();
        let mut room = Room::new(p);
        // At 26 °C: (3000 + 50·(30 − 26) − 7000) / 1.2e6 = −3.1667e-3 K/s.
        let rate = room.derivative_k_per_s(COOLING_CAPACITY_W);
        assert!((rate - (-3800.0 / 1.2e6)).abs() < 1e-12);
        room.advance(60.0, COOLING_CAPACITY_W);
        let t_eq = p.equilibrium_c(COOLING_CAPACITY_W);
        let exact = t_eq + (p.initial_c - t_eq) * (-60.0 / p.time_constant_s()).exp();
        // Euler's global error here ≈ (dt/2τ)·(T₀ − T_eq)·(t/τ) ≈ 4e-6 K.
        assert!(
            (room.temp_c - exact).abs() < 1e-5,
            "{} vs {exact}",
            room.temp_c
        );
        // ≈ 0.19 K in a minute.
        assert!((p.initial_c - room.temp_c - 0.19).abs() < 0.01);
    }

    #[test]
    fn compressor_follows_its_deadband() {
        let mut ac = AcUnit::new();
        ac.apply(cooling_on(24.0));
        ac.update(23.9, 0);
        assert!(!ac.compressor_running(), "below set point: stays off");
        ac.update(24.0, 1000);
        assert!(ac.compressor_running(), "starts at T ≥ set");
        ac.update(23.6, 2000);
        assert!(
            ac.compressor_running(),
            "inside the deadband: keeps running"
        );
        ac.update(23.5, 3000);
        assert!(!ac.compressor_running(), "stops at T ≤ set − 0.5");
        ac.update(23.8, 4000);
        assert!(!ac.compressor_running(), "inside the deadband: stays off");
        ac.update(24.2, 5000);
        assert!(ac.compressor_running());
        assert_eq!(ac.compressor_starts(), 2);
        assert_eq!(
            ac.compressor_events(),
            &[(1000, true), (3000, false), (5000, true)]
        );
    }

    #[test]
    fn compressor_needs_mains_power_and_cool_mode() {
        let mut ac = AcUnit::new();
        ac.update(30.0, 0);
        assert!(!ac.compressor_running(), "off by remote");
        assert_eq!(ac.electrical_w(), STANDBY_ELECTRICAL_W);

        ac.apply(cooling_on(24.0));
        ac.update(30.0, 1);
        assert!(ac.compressor_running());
        assert_eq!(ac.electrical_w(), COMPRESSOR_ELECTRICAL_W);
        assert_eq!(ac.cooling_w(), COOLING_CAPACITY_W);

        ac.set_mains(false);
        ac.update(30.0, 2);
        assert!(!ac.compressor_running(), "relay open");
        assert_eq!(ac.electrical_w(), 0.0);

        ac.set_mains(true);
        ac.apply(AcSettings {
            mode: AcMode::Fan,
            ..cooling_on(24.0)
        });
        ac.update(30.0, 3);
        assert!(!ac.compressor_running(), "fan mode");
        assert_eq!(ac.electrical_w(), FAN_ELECTRICAL_W);
        assert_eq!(ac.compressor_starts(), 1);
    }
}
