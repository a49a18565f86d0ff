//! The strategy around the law: config, saved state, when to send what.
//! Pure (the host's state comes in as [`Inputs`], service calls go out as
//! [`Action`]s), so it is tested natively; `plugin` wires it to the host.

use crate::pi::{self, Gains};
use hearth_plugin_sdk::serde_json::Value;
use serde::{Deserialize, Serialize};

/// The plugin's config. It accepts the thermostat's config as it is (same
/// keys, same meaning; its other keys — `power_sensor`, tolerances,
/// `min_cycle_duration`, `over_temperature` … — are ignored: no
/// `deny_unknown_fields`), so a swap may keep the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    /// Room temperature sensor (°C), the controlled variable.
    pub sensor: String,
    /// The AC's climate entity (IR gateway); its target temperature is the
    /// PI output.
    pub climate: String,
    /// The AC's power switch, turned on if it is off. Unset: only the
    /// climate's hvac mode is set to `cool`.
    #[serde(default)]
    pub switch: Option<String>,
    /// Room setpoint, °C.
    #[serde(default = "default_target")]
    pub target_temp: f64,
    /// Re-send the AC target every `keep_alive` s (IR is one-way); 0 disables.
    #[serde(default = "default_keep_alive")]
    pub keep_alive: f64,
    /// Proportional gain, °C of AC target per °C of room error.
    #[serde(default = "default_kp")]
    pub kp: f64,
    /// Integral gain, °C of AC target per °C·s of room error (1/s); the
    /// integral time is `kp / ki` s.
    #[serde(default = "default_ki")]
    pub ki: f64,
    /// Control period (tick), s.
    #[serde(default = "default_period")]
    pub period_s: f64,
    /// Lowest AC target, °C.
    #[serde(default = "default_min_ac")]
    pub min_ac_temp: f64,
    /// Highest AC target, °C.
    #[serde(default = "default_max_ac")]
    pub max_ac_temp: f64,
    /// The AC's setpoint step, °C (1 for most IR remotes, 0.5 for some).
    #[serde(default = "default_step")]
    pub ac_temp_step: f64,
}

fn default_target() -> f64 {
    24.0
}
fn default_keep_alive() -> f64 {
    300.0
}
fn default_kp() -> f64 {
    1.0
}
fn default_ki() -> f64 {
    0.001
}
fn default_period() -> f64 {
    30.0
}
fn default_min_ac() -> f64 {
    16.0
}
fn default_max_ac() -> f64 {
    30.0
}
fn default_step() -> f64 {
    1.0
}

impl Config {
    /// Parses and checks the JSON config.
    pub fn parse(config: Value) -> Result<Config, String> {
        let cfg: Config = hearth_plugin_sdk::parse_config(config)?;
        let finite = [
            cfg.target_temp,
            cfg.keep_alive,
            cfg.kp,
            cfg.ki,
            cfg.period_s,
            cfg.min_ac_temp,
            cfg.max_ac_temp,
            cfg.ac_temp_step,
        ]
        .iter()
        .all(|v| v.is_finite());
        if !finite {
            return Err("config: numbers must be finite".into());
        }
        if cfg.kp < 0.0 || cfg.ki < 0.0 {
            return Err("config: `kp` and `ki` must be ≥ 0".into());
        }
        if cfg.min_ac_temp >= cfg.max_ac_temp {
            return Err("config: `min_ac_temp` must be below `max_ac_temp`".into());
        }
        if !(1.0..=3600.0).contains(&cfg.period_s) {
            return Err("config: `period_s` must be in [1, 3600] s".into());
        }
        if cfg.ac_temp_step <= 0.0 || cfg.keep_alive < 0.0 {
            return Err("config: `ac_temp_step` must be > 0 °C, `keep_alive` ≥ 0 s".into());
        }
        Ok(cfg)
    }

    /// The PI gains and limits.
    pub fn gains(&self) -> Gains {
        Gains {
            kp: self.kp,
            ki: self.ki,
            u_min: self.min_ac_temp,
            u_max: self.max_ac_temp,
        }
    }

    /// Tick period, ms.
    pub fn period_ms(&self) -> u32 {
        (self.period_s * 1000.0).round() as u32
    }
}

/// What survives a restart or a swap. Tolerant (every field defaults, unknown
/// fields ignored): the thermostat's state restores here (its `events` and
/// `last_sent_ms` carry over), and this state restores in the thermostat.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    /// `on_state` calls handled, across restarts and swaps (diagnostic; same
    /// meaning as the thermostat's).
    #[serde(default)]
    pub events: u64,
    /// The PI's integral term, °C.
    #[serde(default)]
    pub integral: f64,
    /// When an AC target was last sent (ms since epoch), for the keep-alive.
    #[serde(default)]
    pub last_sent_ms: Option<i64>,
    /// The AC target last sent, °C.
    #[serde(default)]
    pub last_target: Option<f64>,
}

/// The host's state the strategy needs at a tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// Room temperature, °C (`None`: missing, unavailable or not a number).
    pub room: Option<f64>,
    /// The climate's state, i.e. its hvac mode (`cool`, `off`,
    /// `unavailable`); `None`: no such entity.
    pub climate: Option<String>,
    /// The power switch: `Some(true/false)`, `None` if not configured,
    /// missing or unavailable.
    pub switch_on: Option<bool>,
}

/// A service call the strategy asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `climate.set_temperature` with this target, °C.
    SetTemperature(f64),
    /// `climate.set_hvac_mode` `cool`.
    SetModeCool,
    /// `switch.turn_on` on the configured switch.
    SwitchOn,
}

/// What one tick decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// Service calls, in order: the target first, so that an AC being
    /// switched on starts with it.
    pub actions: Vec<Action>,
    /// The law's step (`None` when the room temperature is unknown).
    pub step: Option<pi::Step>,
    /// Things worth a log line.
    pub notes: Vec<String>,
}

/// How often to retry turning the AC on while it stays off, ms (the safety
/// envelope may refuse a restart during the compressor's minimum off time).
pub const ENSURE_ON_RETRY_MS: i64 = 60_000;

/// The strategy's state: config, saved state, and what need not survive.
#[derive(Debug, Clone)]
pub struct Strategy {
    pub cfg: Config,
    pub saved: Saved,
    last_tick_ms: Option<i64>,
    last_ensure_ms: Option<i64>,
    sensor_lost: bool,
}

impl Strategy {
    pub fn new(cfg: Config) -> Self {
        Strategy {
            cfg,
            saved: Saved::default(),
            last_tick_ms: None,
            last_ensure_ms: None,
            sensor_lost: false,
        }
    }

    /// Counts an `on_state` call (the strategy itself acts on ticks only).
    pub fn on_event(&mut self) {
        self.saved.events += 1;
    }

    /// One control period at host time `now_ms`.
    pub fn tick(&mut self, now_ms: i64, inputs: &Inputs) -> Decision {
        let mut d = Decision::default();
        let dt = pi::dt_s(self.last_tick_ms, now_ms, 2.0 * self.cfg.period_s);
        self.last_tick_ms = Some(now_ms);

        let ready = self.ensure_on(now_ms, inputs, &mut d);
        let keep_alive = pi::keep_alive_due(self.saved.last_sent_ms, now_ms, self.cfg.keep_alive);

        let Some(room) = inputs.room else {
            if !self.sensor_lost {
                self.sensor_lost = true;
                d.notes.push(format!(
                    "{} has no reading: holding the AC target",
                    self.cfg.sensor
                ));
            }
            if let Some(t) = self.saved.last_target
                && keep_alive
            {
                self.send(t, now_ms, &mut d);
            }
            return d;
        };
        if self.sensor_lost {
            self.sensor_lost = false;
            d.notes.push(format!("{} reads again", self.cfg.sensor));
        }

        // While the AC is not running its target has no effect on the room:
        // integrating then would be windup too.
        let dt = if ready { dt } else { 0.0 };
        let step = self
            .cfg
            .gains()
            .step(self.cfg.target_temp, room, self.saved.integral, dt);
        self.saved.integral = step.integral;
        d.step = Some(step);

        let target = pi::quantize(
            step.target,
            self.cfg.ac_temp_step,
            self.saved.last_target,
            self.cfg.min_ac_temp,
            self.cfg.max_ac_temp,
        );
        if self.saved.last_target != Some(target) {
            d.notes.push(format!(
                "AC target {target:.1} °C: room {room:.2} °C, setpoint {:.1} °C, P {:+.2}, I {:+.2}",
                self.cfg.target_temp, step.p, step.integral
            ));
            self.send(target, now_ms, &mut d);
        } else if keep_alive {
            self.send(target, now_ms, &mut d);
        }
        // The target goes first (see Decision::actions).
        d.actions
            .sort_by_key(|a| !matches!(a, Action::SetTemperature(_)));
        d
    }

    fn send(&mut self, target: f64, now_ms: i64, d: &mut Decision) {
        d.actions.push(Action::SetTemperature(target));
        self.saved.last_target = Some(target);
        self.saved.last_sent_ms = Some(now_ms);
    }

    /// Asks for the AC to be on (mode `cool`, switch on) if it is not;
    /// returns whether it is running now.
    fn ensure_on(&mut self, now_ms: i64, inputs: &Inputs, d: &mut Decision) -> bool {
        let mode_off = inputs.climate.as_deref() == Some("off");
        let mode_ok = matches!(inputs.climate.as_deref(), Some(m) if !matches!(m, "off" | "unavailable" | "unknown"));
        let switch_off = self.cfg.switch.is_some() && inputs.switch_on == Some(false);
        let switch_ok = self.cfg.switch.is_none() || inputs.switch_on == Some(true);
        if !(mode_off || switch_off) {
            return mode_ok && switch_ok;
        }
        let retry = self
            .last_ensure_ms
            .is_none_or(|t| now_ms - t >= ENSURE_ON_RETRY_MS || now_ms < t);
        if retry {
            self.last_ensure_ms = Some(now_ms);
            d.notes.push("the AC is off: turning it on (cool)".into());
            if mode_off {
                d.actions.push(Action::SetModeCool);
            }
            if self.cfg.switch.is_some() {
                d.actions.push(Action::SwitchOn);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_plugin_sdk::serde_json::json;
    use hearth_plugin_sdk::{restore_json, save_json};

    /// `[plugin.config]` of the thermostat in examples/server-room.toml.
    fn thermostat_config() -> Value {
        json!({
            "sensor": "sensor.server_room_temperature",
            "climate": "climate.server_room_ac",
            "switch": "switch.server_room_ac_power",
            "power_sensor": "sensor.server_room_ac_plug_power",
            "target_temp": 24.0,
            "cold_tolerance": 0.3,
            "hot_tolerance": 0.3,
            "min_cycle_duration": 180,
            "keep_alive": 300,
            "over_temperature": 28.0,
            "running_power_w": 300,
            "start_check": 180
        })
    }

    fn running(room: f64) -> Inputs {
        Inputs {
            room: Some(room),
            climate: Some("cool".into()),
            switch_on: Some(true),
        }
    }

    #[test]
    fn accepts_the_thermostats_config_with_defaults() {
        let cfg = Config::parse(thermostat_config()).unwrap();
        assert_eq!(cfg.switch.as_deref(), Some("switch.server_room_ac_power"));
        assert_eq!((cfg.target_temp, cfg.keep_alive), (24.0, 300.0));
        assert_eq!((cfg.kp, cfg.ki, cfg.period_s), (1.0, 0.001, 30.0));
        assert_eq!(
            (cfg.min_ac_temp, cfg.max_ac_temp, cfg.ac_temp_step),
            (16.0, 30.0, 1.0)
        );
        assert_eq!(cfg.period_ms(), 30_000);
    }

    #[test]
    fn config_errors_name_the_key() {
        let mut c = thermostat_config();
        c["kp"] = json!("fast");
        let e = Config::parse(c).unwrap_err();
        assert!(e.contains("`kp`"), "{e}");
        let e = Config::parse(json!({"climate": "climate.x"})).unwrap_err();
        assert!(e.contains("sensor"), "{e}");
        let mut c = thermostat_config();
        c["min_ac_temp"] = json!(30);
        c["max_ac_temp"] = json!(16);
        assert!(Config::parse(c).is_err());
    }

    #[test]
    fn thermostat_state_restores_here_and_ours_there() {
        // What the thermostat saves (plugins/thermostat, `Saved`).
        let theirs = br#"{"events":41,"last_sent_ms":1700000000000,"last_sent_on":true,
            "over_temperature":false,"not_cooling":false,"sensor_lost":false}"#;
        let s: Saved = restore_json(theirs).unwrap();
        assert_eq!(s.events, 41);
        assert_eq!(s.last_sent_ms, Some(1_700_000_000_000));
        assert_eq!((s.integral, s.last_target), (0.0, None));

        // An older thermostat without `events`.
        let old = br#"{"last_sent_ms":null,"over_temperature":true,"not_cooling":false}"#;
        assert_eq!(restore_json::<Saved>(old).unwrap(), Saved::default());

        // Ours, read by a mirror of the thermostat's tolerant `Saved`.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct ThermostatSaved {
            #[serde(default)]
            events: u64,
            #[serde(default)]
            last_sent_ms: Option<i64>,
            #[serde(default)]
            last_sent_on: Option<bool>,
            #[serde(default)]
            over_temperature: bool,
            #[serde(default)]
            not_cooling: bool,
            #[serde(default)]
            sensor_lost: bool,
        }
        let ours = Saved {
            events: 7,
            integral: 1.25,
            last_sent_ms: Some(5),
            last_target: Some(22.0),
        };
        let t: ThermostatSaved = restore_json(&save_json(&ours)).unwrap();
        assert_eq!(
            (t.events, t.last_sent_ms, t.last_sent_on),
            (7, Some(5), None)
        );
        assert_eq!(restore_json::<Saved>(&save_json(&ours)).unwrap(), ours);

        // Not JSON (the fault-injector's 8 bytes): declined, start fresh.
        assert!(restore_json::<Saved>(&7u64.to_le_bytes()).is_err());
    }

    #[test]
    fn sends_only_when_the_rounded_target_changes_plus_keep_alive() {
        let mut s = Strategy::new(Config::parse(thermostat_config()).unwrap());
        let t0 = 1_000_000;
        let d = s.tick(t0, &running(24.0));
        assert_eq!(d.actions, vec![Action::SetTemperature(24.0)]);
        // Small changes: same rounded target, nothing sent.
        for k in 1..=9 {
            let d = s.tick(t0 + k * 30_000, &running(24.2));
            assert!(d.actions.is_empty(), "tick {k}: {:?}", d.actions);
        }
        // Keep-alive after 300 s.
        let d = s.tick(t0 + 300_000, &running(24.2));
        assert_eq!(d.actions, vec![Action::SetTemperature(24.0)]);
        // Too warm by 1.5 °C: 24 − 1.5 − I ≈ 22.4 → 22.
        let d = s.tick(t0 + 330_000, &running(25.5));
        assert_eq!(d.actions, vec![Action::SetTemperature(22.0)]);
        assert_eq!(s.saved.last_target, Some(22.0));
        assert_eq!(s.saved.last_sent_ms, Some(t0 + 330_000));
        assert!(s.saved.integral > 0.0);
    }

    #[test]
    fn turns_the_ac_on_target_first_and_retries_slowly() {
        let mut s = Strategy::new(Config::parse(thermostat_config()).unwrap());
        let off = Inputs {
            room: Some(26.0),
            climate: Some("off".into()),
            switch_on: Some(false),
        };
        let d = s.tick(0, &off);
        assert_eq!(
            d.actions,
            vec![
                Action::SetTemperature(22.0),
                Action::SetModeCool,
                Action::SwitchOn
            ]
        );
        assert!(d.step.unwrap().held, "no integration while the AC is off");
        let d = s.tick(30_000, &off);
        assert!(d.actions.is_empty(), "{:?}", d.actions);
        assert_eq!(s.saved.integral, 0.0);
        let d = s.tick(60_000, &off);
        assert_eq!(d.actions, vec![Action::SetModeCool, Action::SwitchOn]);
        // Mode cool but switched off (the thermostat's way of stopping it).
        let cool_off = Inputs {
            climate: Some("cool".into()),
            ..off
        };
        let d = s.tick(120_000, &cool_off);
        assert_eq!(d.actions, vec![Action::SwitchOn]);
    }

    #[test]
    fn without_a_reading_holds_and_keeps_alive() {
        let mut s = Strategy::new(Config::parse(thermostat_config()).unwrap());
        s.tick(0, &running(25.0));
        let before = s.saved.clone();
        let lost = Inputs {
            room: None,
            ..running(0.0)
        };
        let d = s.tick(30_000, &lost);
        assert!(d.actions.is_empty() && d.step.is_none());
        assert_eq!(d.notes.len(), 1);
        assert_eq!(s.saved.integral, before.integral);
        let d = s.tick(300_000, &lost);
        assert_eq!(d.actions, vec![Action::SetTemperature(23.0)]);
        assert!(d.notes.is_empty(), "noted once");
    }

    #[test]
    fn events_count_every_on_state() {
        let mut s = Strategy::new(Config::parse(thermostat_config()).unwrap());
        s.saved = restore_json(br#"{"events": 10}"#).unwrap();
        s.on_event();
        s.on_event();
        assert_eq!(s.saved.events, 12);
    }
}
