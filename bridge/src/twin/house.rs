//! The house twin, wired: one heated zone (the ISO 13790 5R1C model of
//! [`building`](super::building)) with a radiator behind a motorised valve,
//! and the ESP32 node `house` that measures the room and drives the valve
//! over MQTT ([`node_sim`](super::node_sim), `hearth-node/house/…`).
//!
//! ```text
//!              ┌────────── House (shared, behind a mutex) ──────────┐
//!   physics ───┤ Building (5R1C) stepped every `step_s` of sim time  │
//!              │ Heater W = valve % × nominal W                      │
//!              │ ValveActuator (node-core): finite travel time       │
//!              └───▲ weather(t): outdoor °C, GHI W/m² ──────▲────────┘
//!                  │ reads θ_air                             │ valve/set → target
//!          node_sim `house` (MQTT: telemetry, valve/state, valve/set)
//! ```
//!
//! The bridge sees only the broker: `sensor.house_temperature` and
//! `valve.house_heating` come from the node's announce, like real
//! hardware. Tests and demos look inside through the [`HouseHandle`].
//!
//! # Physics
//!
//! The zone is integrated in whole steps of `step_s` (default 60 s) of
//! simulated time; a step runs when the clock has passed its end. Over a
//! step the heater delivers `nominal_w × (valve_start + valve_end)/2 / 100`
//! (the trapezoid of the valve's travel) into the air node (radiators,
//! ISO 13790 Annex C); the weather is sampled at the step's midpoint.
//! Solar gains are `GHI × solar_aperture_m2`: an effective aperture that
//! folds window area, g-value, frame factor and façade orientation into
//! one number (an assumption of this twin, not an ISO 13790 procedure; the
//! default 0.84 m² = 4 m² glazing × g 0.6 × frame 0.7 × 0.5 for a vertical
//! façade seeing about half the horizontal irradiance on a winter day).
//! The air temperature reported is that of the latest step (ISO 13790's
//! step-mean air temperature, see [`building`](super::building)).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_node_core::ValveActuator;
use serde::Serialize;

use super::building::{Building, HOUR_S, Heater, ZoneInputs, ZoneParams};
use super::node_sim::{self, NodeControl, NodeIo, NodeSimConfig};
use crate::clock::Clock;
use crate::shutdown::Shutdown;

/// Wall period of the physics task.
const PHYSICS_TICK: Duration = Duration::from_millis(20);

/// The weather outside at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WeatherSample {
    /// Outdoor air temperature, °C (Open-Meteo `temperature_2m`).
    pub outdoor_c: f64,
    /// Global horizontal irradiance, W/m² (Open-Meteo `shortwave_radiation`).
    pub ghi_w_per_m2: f64,
}

/// Where the house's weather comes from: the demo passes the same synthetic
/// weather it serves on its weather feed. Any `Fn(i64) -> WeatherSample`
/// (sim ms since the Unix epoch) is one.
pub trait Weather: Send + Sync {
    fn at(&self, sim_ms: i64) -> WeatherSample;
}

impl<F: Fn(i64) -> WeatherSample + Send + Sync> Weather for F {
    fn at(&self, sim_ms: i64) -> WeatherSample {
        self(sim_ms)
    }
}

/// A clear winter day, repeated: outdoor temperature a cosine around
/// `mean_c` peaking at `warmest_hour_utc`; irradiance a half sine from
/// `sunrise_hour_utc` to `sunset_hour_utc` peaking at `peak_ghi_w_per_m2`.
/// The defaults resemble a clear December day at ~48° N (e.g. Paris:
/// ~2 °C mean, ~8 K daily range, ~8 h of sun, ~300 W/m² at noon).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WinterDay {
    /// °C
    pub mean_c: f64,
    /// Half the daily range, K.
    pub amplitude_k: f64,
    /// Hour of the maximum temperature, UTC, h.
    pub warmest_hour_utc: f64,
    /// W/m²
    pub peak_ghi_w_per_m2: f64,
    /// h UTC
    pub sunrise_hour_utc: f64,
    /// h UTC
    pub sunset_hour_utc: f64,
}

impl Default for WinterDay {
    fn default() -> Self {
        WinterDay {
            mean_c: 2.0,
            amplitude_k: 4.0,
            warmest_hour_utc: 14.0,
            peak_ghi_w_per_m2: 300.0,
            sunrise_hour_utc: 8.0,
            sunset_hour_utc: 16.0,
        }
    }
}

impl Weather for WinterDay {
    fn at(&self, sim_ms: i64) -> WeatherSample {
        let hour = sim_ms.rem_euclid(86_400_000) as f64 / 3_600_000.0;
        let phase = (hour - self.warmest_hour_utc) / 24.0 * std::f64::consts::TAU;
        let day = self.sunset_hour_utc - self.sunrise_hour_utc;
        let sun = (hour - self.sunrise_hour_utc) / day;
        let ghi = if day > 0.0 && (0.0..=1.0).contains(&sun) {
            self.peak_ghi_w_per_m2 * (sun * std::f64::consts::PI).sin()
        } else {
            0.0
        };
        WeatherSample {
            outdoor_c: self.mean_c + self.amplitude_k * phase.cos(),
            ghi_w_per_m2: ghi.max(0.0),
        }
    }
}

/// How to build the house twin.
#[derive(Clone)]
pub struct HouseOptions {
    /// The zone. Default: RC_BuildingSimulator's 35 m² medium-weight zone.
    pub zone: ZoneParams,
    /// Radiator output with the valve fully open, W. Default 2000 (about
    /// twice the zone's loss at −5 °C outside, 20 °C inside).
    pub heater_nominal_w: f64,
    /// Radiator lag, s: the output follows the valve as a first-order lag
    /// ([`Heater::with_time_constant`]). Default 0 (none).
    pub emitter_time_constant_s: f64,
    /// Initial temperature of the mass (and so, roughly, the air), °C.
    pub initial_c: f64,
    /// People and appliances, W, constant.
    pub internal_gains_w: f64,
    /// Effective solar aperture, m² (see the module doc).
    pub solar_aperture_m2: f64,
    /// Integration step, simulated s (≤ 3600).
    pub step_s: f64,
    /// Valve full stroke 0 → 100 %, simulated s.
    pub valve_travel_s: u32,
    /// Node id (`house`), hence the entities `sensor.house_temperature`
    /// and `valve.house_heating`.
    pub node_id: String,
    /// Node name (`House`).
    pub node_name: String,
    /// Telemetry period, simulated s.
    pub telemetry_interval_s: u32,
    /// Seed of the sensor noise.
    pub seed: u64,
    /// Outdoor temperature and irradiance. Default [`WinterDay`].
    pub weather: Arc<dyn Weather>,
}

impl Default for HouseOptions {
    fn default() -> Self {
        HouseOptions {
            zone: ZoneParams::default(),
            heater_nominal_w: 2000.0,
            emitter_time_constant_s: 0.0,
            initial_c: 19.0,
            internal_gains_w: 150.0,
            solar_aperture_m2: 0.84,
            step_s: 60.0,
            valve_travel_s: 90,
            node_id: "house".into(),
            node_name: "House".into(),
            telemetry_interval_s: 10,
            seed: 2,
            weather: Arc::new(WinterDay::default()),
        }
    }
}

impl std::fmt::Debug for HouseOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HouseOptions")
            .field("zone", &self.zone)
            .field("heater_nominal_w", &self.heater_nominal_w)
            .field("initial_c", &self.initial_c)
            .field("step_s", &self.step_s)
            .field("valve_travel_s", &self.valve_travel_s)
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// The house's physical state at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HouseSnapshot {
    /// Sim time, ms since the Unix epoch.
    pub sim_ms: i64,
    /// Air temperature of the latest step, °C.
    pub air_c: f64,
    /// Operative temperature of the latest step, °C.
    pub operative_c: f64,
    /// Mass node temperature, °C.
    pub mass_c: f64,
    /// Weather of the latest step.
    pub weather: WeatherSample,
    /// Valve opening now, % (0.001 % resolution).
    pub valve_percent: f64,
    /// Where the valve is going, %.
    pub valve_target_percent: u8,
    /// Radiator output at the valve's current opening, W.
    pub heating_w: f64,
    /// Heat delivered by the radiator since start, Wh.
    pub energy_wh: f64,
}

/// The heated zone, its radiator valve and its weather, advanced in
/// simulated time by whoever touches it first (like the server room's
/// [`Plant`](super::plant::Plant)).
struct House {
    building: Building,
    valve: ValveActuator,
    weather: Arc<dyn Weather>,
    internal_gains_w: f64,
    solar_aperture_m2: f64,
    /// Sim ms up to which the building is integrated.
    sim_ms: i64,
    step_ms: i64,
    /// Valve opening at `sim_ms`, %.
    valve_at_step_start: f64,
    energy_wh: f64,
    air_c: f64,
    operative_c: f64,
    last_weather: WeatherSample,
}

fn percent(v: &ValveActuator) -> f64 {
    f64::from(v.position_mpct()) / 1000.0
}

impl House {
    fn new(opts: &HouseOptions, now_ms: i64) -> anyhow::Result<House> {
        let step_s = opts.step_s;
        if !(1.0..=HOUR_S).contains(&step_s) {
            anyhow::bail!("house step_s must be 1–3600 s, got {step_s}");
        }
        let ach = opts.zone.ach_vent_per_h + opts.zone.ach_infl_per_h;
        // `>` is false for NaN too.
        if ach.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            anyhow::bail!("house zone needs ventilation + infiltration > 0 1/h, got {ach}");
        }
        let building = Building::new(
            &opts.zone,
            Heater::new(opts.heater_nominal_w).with_time_constant(opts.emitter_time_constant_s),
            opts.initial_c,
            step_s,
        );
        let weather = opts.weather.at(now_ms);
        Ok(House {
            building,
            valve: ValveActuator::new(opts.valve_travel_s, now_ms),
            weather: opts.weather.clone(),
            internal_gains_w: opts.internal_gains_w,
            solar_aperture_m2: opts.solar_aperture_m2,
            sim_ms: now_ms,
            step_ms: (step_s * 1000.0).round() as i64,
            valve_at_step_start: 0.0,
            energy_wh: 0.0,
            air_c: opts.initial_c,
            operative_c: opts.initial_c,
            last_weather: weather,
        })
    }

    /// Runs every whole step that ends at or before `now_ms`, then brings
    /// the valve to `now_ms`.
    fn advance_to(&mut self, now_ms: i64) {
        while self.sim_ms + self.step_ms <= now_ms {
            let end = self.sim_ms + self.step_ms;
            self.valve.advance_to(end);
            let valve_end = percent(&self.valve);
            let w = self.weather.at(self.sim_ms + self.step_ms / 2);
            self.building
                .heater
                .set_valve_percent((self.valve_at_step_start + valve_end) / 2.0);
            let step = self.building.step(&ZoneInputs {
                outdoor_c: w.outdoor_c,
                internal_gains_w: self.internal_gains_w,
                solar_gains_w: w.ghi_w_per_m2.max(0.0) * self.solar_aperture_m2,
            });
            self.energy_wh += self.building.last_heat_w() * self.building.dt_s() / HOUR_S;
            self.air_c = step.theta_air_c;
            self.operative_c = step.theta_op_c;
            self.last_weather = w;
            self.valve_at_step_start = valve_end;
            self.sim_ms = end;
        }
        self.valve.advance_to(now_ms);
    }

    /// Heat output now, W: the valve's share of the nominal power, or with
    /// a radiator lag, the lagged output.
    fn heating_w(&self) -> f64 {
        let heater = &self.building.heater;
        if heater.time_constant_s() > 0.0 {
            heater.heat_w()
        } else {
            heater.nominal_power_w() * percent(&self.valve) / 100.0
        }
    }

    fn snapshot(&self, now_ms: i64) -> HouseSnapshot {
        HouseSnapshot {
            sim_ms: now_ms,
            air_c: self.air_c,
            operative_c: self.operative_c,
            mass_c: self.building.theta_m_c(),
            weather: self.last_weather,
            valve_percent: percent(&self.valve),
            valve_target_percent: self.valve.target(),
            heating_w: self.heating_w(),
            energy_wh: self.energy_wh,
        }
    }
}

type SharedHouse = Arc<Mutex<House>>;

/// What the node measures and drives: the house.
struct HouseIo(SharedHouse);

impl HouseIo {
    fn lock(&self) -> std::sync::MutexGuard<'_, House> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl NodeIo for HouseIo {
    fn temperature_c(&self, now_ms: i64) -> f64 {
        let mut h = self.lock();
        h.advance_to(now_ms);
        h.air_c
    }

    fn with_valve(&self, now_ms: i64, f: &mut dyn FnMut(&mut ValveActuator)) -> bool {
        let mut h = self.lock();
        h.advance_to(now_ms);
        f(&mut h.valve);
        true
    }
}

/// Entry point: see [`HouseTwin::start`].
pub struct HouseTwin;

impl HouseTwin {
    /// Starts the physics task and the sensor/valve node `opts.node_id`
    /// (an MQTT client of `mqtt_host:mqtt_port`; it connects in the
    /// background and keeps retrying, so the broker may come up later).
    /// Everything runs until `shutdown`. Errors on an invalid node id, a
    /// step outside 1–3600 s or a zone without air change.
    pub fn start(
        clock: Clock,
        mqtt_host: &str,
        mqtt_port: u16,
        opts: HouseOptions,
        shutdown: Shutdown,
    ) -> anyhow::Result<HouseHandle> {
        let house: SharedHouse = Arc::new(Mutex::new(House::new(&opts, clock.now_ms())?));
        let node = Arc::new(NodeControl::default());
        let mut broker = crate::broker::BrokerAddress::local(mqtt_port);
        broker.host = mqtt_host.to_string();
        node_sim::spawn_with(
            clock,
            &broker,
            NodeSimConfig {
                node_id: opts.node_id.clone(),
                name: opts.node_name.clone(),
                interval_s: opts.telemetry_interval_s,
                seed: opts.seed,
            },
            Arc::new(HouseIo(house.clone())),
            node.clone(),
            shutdown.clone(),
        )?;
        tokio::spawn(physics(clock, house.clone(), shutdown));
        tracing::info!(
            "twin: house up (node `{}`, {} W radiator, valve stroke {} s, step {} s)",
            opts.node_id,
            opts.heater_nominal_w,
            opts.valve_travel_s,
            opts.step_s
        );
        Ok(HouseHandle {
            clock,
            house,
            node,
            node_id: opts.node_id,
        })
    }
}

/// Keeps the zone integrated up to now, so the energy count and the
/// temperature move even when nobody reads them.
async fn physics(clock: Clock, house: SharedHouse, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(PHYSICS_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {
                house.lock().unwrap_or_else(|e| e.into_inner()).advance_to(clock.now_ms());
            }
        }
    }
}

/// A look inside the running house twin. Cheap to clone.
#[derive(Clone)]
pub struct HouseHandle {
    clock: Clock,
    house: SharedHouse,
    node: Arc<NodeControl>,
    node_id: String,
}

impl HouseHandle {
    /// The physical state now.
    pub fn snapshot(&self) -> HouseSnapshot {
        let now = self.clock.now_ms();
        let mut h = self.house.lock().unwrap_or_else(|e| e.into_inner());
        h.advance_to(now);
        h.snapshot(now)
    }

    /// Air temperature of the latest step, °C.
    pub fn air_c(&self) -> f64 {
        self.snapshot().air_c
    }

    /// Valve opening now, %.
    pub fn valve_percent(&self) -> f64 {
        self.snapshot().valve_percent
    }

    /// Radiator output now, W.
    pub fn heating_w(&self) -> f64 {
        self.snapshot().heating_w
    }

    /// Radiator heat since start, Wh.
    pub fn energy_wh(&self) -> f64 {
        self.snapshot().energy_wh
    }

    /// The node's id (`house`).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Pauses (or resumes) the node's telemetry; it stays online and keeps
    /// driving the valve.
    pub fn pause_telemetry(&self, paused: bool) {
        self.node
            .paused
            .store(paused, std::sync::atomic::Ordering::SeqCst);
    }

    /// Telemetry messages the node has published.
    pub fn telemetry_published(&self) -> u64 {
        self.node
            .published
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_node_core::ValveCommand;

    const T0: i64 = 1_765_000_800_000; // 2025-12-06T06:00:00Z, a whole hour

    fn house(opts: &HouseOptions) -> House {
        House::new(opts, T0).unwrap()
    }

    #[test]
    fn winter_day_is_cold_at_dawn_and_sunny_at_noon() {
        let w = WinterDay::default();
        let at = |h: i64| w.at(T0 - 6 * 3_600_000 + h * 3_600_000);
        assert!((at(14).outdoor_c - 6.0).abs() < 1e-9);
        assert!((at(2).outdoor_c - (-2.0)).abs() < 1e-9);
        assert_eq!(at(6).ghi_w_per_m2, 0.0);
        assert!((at(12).ghi_w_per_m2 - 300.0).abs() < 1e-9);
        assert_eq!(at(20).ghi_w_per_m2, 0.0);
    }

    #[test]
    fn valve_drives_the_radiator_and_warms_the_room() {
        let opts = HouseOptions::default();
        let mut open = house(&opts);
        let mut closed = house(&opts);
        open.valve.command(ValveCommand::Position(70), T0);
        let hour = T0 + 3_600_000;
        open.advance_to(hour);
        closed.advance_to(hour);
        assert!((open.heating_w() - 1400.0).abs() < 1e-9);
        assert_eq!(closed.heating_w(), 0.0);
        // 90 s stroke: 63 s to reach 70 %, then 1400 W for the rest of the
        // hour; the travel costs half of 63 s of full output.
        let expected_wh = 1400.0 * (3600.0 - 63.0 / 2.0) / 3600.0;
        assert!(
            (open.energy_wh - expected_wh).abs() < 1.0,
            "{} Wh vs {expected_wh}",
            open.energy_wh
        );
        assert_eq!(closed.energy_wh, 0.0);
        assert!(
            open.air_c > closed.air_c + 3.0,
            "{} vs {}",
            open.air_c,
            closed.air_c
        );
    }

    #[test]
    fn steps_are_whole_and_weather_is_the_callers() {
        let opts = HouseOptions {
            weather: Arc::new(|_ms: i64| WeatherSample {
                outdoor_c: -10.0,
                ghi_w_per_m2: 0.0,
            }),
            ..Default::default()
        };
        let mut h = house(&opts);
        h.advance_to(T0 + 59_999);
        assert_eq!(h.sim_ms, T0, "no whole step yet");
        h.advance_to(T0 + 150_000);
        assert_eq!(h.sim_ms, T0 + 120_000);
        assert_eq!(h.last_weather.outdoor_c, -10.0);
        assert!(h.air_c < opts.initial_c);
    }

    #[test]
    fn bad_options_are_refused() {
        let opts = HouseOptions {
            step_s: 7200.0,
            ..Default::default()
        };
        let e = House::new(&opts, T0).err().unwrap();
        assert!(e.to_string().contains("7200"), "{e}");
    }
}
