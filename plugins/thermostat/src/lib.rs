//! Thermostat controller: Home Assistant's `generic_thermostat`, in `ac_mode`
//! for a server-room air conditioner driven through a one-way IR gateway, or
//! in heat mode (`ac_mode = false`) for a heater (a `switch`, or a `valve`
//! opened fully or closed: the "manual" 19.5/20.5 °C baseline of the MPC
//! heating studies).
//!
//! Behaviour (HA core `generic_thermostat/climate.py`, `_async_control_heating`):
//! - too hot  = `current - target >= hot_tolerance`  → AC on / heater off;
//! - too cold = `target - current >= cold_tolerance` → AC off / heater on;
//! - a switch is only toggled once it has been in its current state for
//!   `min_cycle_duration` (compressor protection); keep-alive re-sends ignore it;
//! - `keep_alive`: IR is one-way, so the current command is re-sent every
//!   `keep_alive` seconds (a missed code or a remote in someone's hand is
//!   corrected);
//! - `hvac_mode` `off` turns the AC off at once, whatever the cycle time;
//! - a change of target temperature or mode re-evaluates at once and ignores
//!   `min_cycle_duration` (HA's `force=True`); the host's safety envelope
//!   still refuses to restart the compressor within its minimum off time.
//!
//! Added for the server room:
//! - over-temperature: `binary_sensor` (device class `problem`) on at
//!   `current >= over_temperature`, off below `over_temperature - 0.5 °C`;
//! - sensor unavailable: the AC keeps its last command (for a server room,
//!   stopping the cooling on a dead sensor is the worse failure), a
//!   `sensor_unavailable` problem is raised and the log says why. A sensor
//!   entity that is MISSING (its device removed from the bridge) counts as
//!   unavailable: at once when the sensor has reported before, else after
//!   [`MISSING_GRACE_MS`] from the plugin's start (a wrong id, or a sensor
//!   that never came);
//! - refused commands: the host's reason is logged (`hearth plugin logs`);
//!   the next control step decides again;
//! - start check: with a power sensor, the AC must draw more than
//!   `running_power_w` within `start_check` of being switched on while too hot,
//!   else an `ac_not_cooling` problem is raised.
//!
//! The target temperature and mode are the climate entity's (`temperature`
//! attribute and state), so `climate.set_temperature` from Home Assistant
//! reaches this plugin through the entity store. `target_temp` in the config is
//! used until the climate entity reports one.

use hearth_plugin_sdk::serde_json::{self, Value, json};
use hearth_plugin_sdk::{
    CallResult, Change, Controller, Description, NoState, Output, Reading, Severity, State,
    export_controller, info, problem_sensor, restore_json, save_json, warn,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Room temperature sensor (°C).
    sensor: String,
    /// The climate entity whose mode and target temperature we follow;
    /// without one, `target_temp` is the target.
    #[serde(default)]
    climate: Option<String>,
    /// The actuator: the AC's power switch (IR power on/off), or the heater's
    /// `switch` or `valve` (`valve.open_valve` / `valve.close_valve`).
    switch: String,
    /// `true`: the actuator cools (HA's `ac_mode`); `false`: it heats.
    /// Defaults to `true` (HA's default is `false`): this plugin was born
    /// for the server room.
    #[serde(default = "default_ac_mode")]
    ac_mode: bool,
    /// Optional AC electrical power sensor (W), for the start check.
    #[serde(default)]
    power_sensor: Option<String>,
    /// °C
    #[serde(default = "default_target")]
    target_temp: f64,
    /// °C
    #[serde(default = "default_tolerance")]
    cold_tolerance: f64,
    /// °C
    #[serde(default = "default_tolerance")]
    hot_tolerance: f64,
    /// s
    #[serde(default)]
    min_cycle_duration: f64,
    /// s; 0 disables.
    #[serde(default)]
    keep_alive: f64,
    /// °C
    #[serde(default = "default_over_temperature")]
    over_temperature: f64,
    /// W drawn by a running compressor.
    #[serde(default = "default_running_power")]
    running_power_w: f64,
    /// s
    #[serde(default = "default_start_check")]
    start_check: f64,
}

fn default_ac_mode() -> bool {
    true
}
fn default_target() -> f64 {
    24.0
}
fn default_tolerance() -> f64 {
    0.3
}
fn default_over_temperature() -> f64 {
    30.0
}
fn default_running_power() -> f64 {
    300.0
}
fn default_start_check() -> f64 {
    180.0
}

/// What survives a restart or a swap. Tolerant (every field defaults, unknown
/// fields are ignored), so state saved by another version or by another
/// strategy (examples/custom-strategy) carries over where fields match.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Saved {
    /// `on_state` calls handled, across restarts and swaps (diagnostic).
    #[serde(default)]
    events: u64,
    #[serde(default)]
    last_sent_ms: Option<i64>,
    /// The last command sent (true = on), so that two events arriving before
    /// the switch reports back do not send it twice.
    #[serde(default)]
    last_sent_on: Option<bool>,
    #[serde(default)]
    over_temperature: bool,
    #[serde(default)]
    not_cooling: bool,
    #[serde(default)]
    sensor_lost: bool,
    /// The room sensor has given a usable reading at least once: from then
    /// on its disappearance is a loss at once.
    #[serde(default)]
    sensor_seen: bool,
}

struct Thermostat {
    cfg: Config,
    saved: Saved,
    /// Host time of the first control step of this instance.
    started_ms: Option<i64>,
    /// The actuator's and the climate entity's states as their last
    /// changes delivered them (`Some(None)`: the entity is gone), so a
    /// room-sensor change — the most frequent event — decides without a
    /// `get-state` copy of each (two host calls of a ≈ 4.5 µs call, issue
    /// 19). `None` until known; a `tick` (every 10 s) reads both from the
    /// host again, so a view that missed a change is corrected then.
    seen: Seen,
}

#[derive(Default)]
struct Seen {
    switch: Option<Option<State>>,
    climate: Option<Option<State>>,
}

const OVER_TEMP: &str = "over_temperature";
const NOT_COOLING: &str = "ac_not_cooling";
const SENSOR_LOST: &str = "sensor_unavailable";
const OVER_TEMP_CLEAR_MARGIN: f64 = 0.5;
/// How long a sent command counts as in flight (ms of host time).
const PENDING_MS: i64 = 10_000;
/// How long a room sensor that has never reported may be missing before it
/// counts as lost (ms of host time): at a start the plugin may run before
/// the sensor's device announced itself (a retained MQTT message, there
/// within a second) and sent its first reading (the ESP32 node's interval,
/// 10 s by default); a minute covers both, and a sensor that is gone for
/// good (removed while the bridge was down, or a wrong id) is reported
/// within a minute.
pub const MISSING_GRACE_MS: i64 = 60_000;

impl Thermostat {
    /// The climate entity: as last delivered, else read from the host.
    fn climate(&mut self) -> Option<State> {
        let id = self.cfg.climate.as_deref()?;
        self.seen
            .climate
            .get_or_insert_with(|| State::get(id))
            .clone()
    }

    /// The actuator: as last delivered, else read from the host.
    fn switch(&mut self) -> Option<State> {
        let id = &self.cfg.switch;
        self.seen
            .switch
            .get_or_insert_with(|| State::get(id))
            .clone()
    }

    /// The target: the climate entity's `temperature` attribute, else the
    /// config's `target_temp`.
    fn target(&self, climate: Option<&State>) -> f64 {
        climate
            .and_then(|c| c.attr_f64("temperature"))
            .unwrap_or(self.cfg.target_temp)
    }

    /// Whether the actuator runs: `on`/`off` for a switch; for a valve
    /// (HA's valve states), open or opening, or any position above 0 %.
    fn actuator_on(&self, actuator: &State) -> Option<bool> {
        if !self.cfg.switch.starts_with("valve.") {
            return actuator.is_on();
        }
        if let Some(position) = actuator.attr_f64("current_position") {
            return Some(position > 0.0);
        }
        match actuator.state.as_str() {
            "open" | "opening" => Some(true),
            "closed" | "closing" => Some(false),
            _ => None,
        }
    }

    /// The whole control step: decide, then act.
    /// `force`: ignore `min_cycle_duration` (a user changed target or mode).
    /// `sensor`: the room sensor's state when the caller has it (the
    /// change being handled is the sensor's), else it is read from the host.
    fn control(
        &mut self,
        now_ms: i64,
        keep_alive_due: bool,
        force: bool,
        sensor: Option<Reading>,
        out: &mut Output,
    ) {
        let sensor = sensor.unwrap_or_else(|| Reading::get(&self.cfg.sensor));
        let started_ms = *self.started_ms.get_or_insert(now_ms);
        if sensor.state().is_some() {
            self.saved.sensor_seen = true;
        }
        let lost = match sensor.why_not() {
            Some(NoState::Unavailable) => true,
            Some(NoState::Missing) => {
                self.saved.sensor_seen || now_ms - started_ms >= MISSING_GRACE_MS
            }
            Some(NoState::Unknown) | None => false,
        };
        if lost != self.saved.sensor_lost {
            self.saved.sensor_lost = lost;
            let what = if self.cfg.ac_mode { "AC" } else { "heater" };
            let msg = match sensor.why_not() {
                Some(why) if lost => format!(
                    "{} {why}: the {what} keeps its last command",
                    self.cfg.sensor
                ),
                _ => format!("{} reports again", self.cfg.sensor),
            };
            if lost {
                warn(&msg);
            } else {
                info(&msg);
            }
            out.problem(
                SENSOR_LOST,
                Severity::Critical,
                lost,
                "Room temperature sensor unavailable",
                &msg,
            );
        }
        let Some(current) = sensor.number() else {
            return; // no reading yet, or the sensor is unavailable: hold
        };
        self.check_over_temperature(current, out);
        let Some(switch) = self.switch() else {
            return;
        };
        let Some(is_on) = self.actuator_on(&switch) else {
            return; // the actuator is unavailable
        };
        // Read once per step: mode and target come from the same state.
        let climate = self.climate();
        if climate.as_ref().is_some_and(|c| c.state == "off") {
            if is_on || keep_alive_due {
                self.send(false, out, now_ms, "hvac mode is off");
            }
            return;
        }
        let target = self.target(climate.as_ref());
        let too_hot = current - target >= self.cfg.hot_tolerance;
        let too_cold = target - current >= self.cfg.cold_tolerance;
        let long_enough = force
            || now_ms - switch.last_changed_ms >= (self.cfg.min_cycle_duration * 1000.0) as i64;
        // The actuator stops when the room is past the target on its side and
        // starts when it is past the other tolerance.
        let (stop, start) = if self.cfg.ac_mode {
            (too_cold, too_hot)
        } else {
            (too_hot, too_cold)
        };
        let why = |side: &str, by: f64| {
            format!("{current:.2} °C is {by:.2} °C {side} target {target:.1} °C")
        };

        if is_on {
            if stop && long_enough {
                let why = if too_cold {
                    why("below", target - current)
                } else {
                    why("above", current - target)
                };
                self.send(false, out, now_ms, &why);
            } else if keep_alive_due {
                self.send(true, out, now_ms, "keep-alive");
            }
            if self.cfg.ac_mode {
                self.check_started(now_ms, too_hot, &switch, out);
            }
        } else if start && long_enough {
            let why = if too_hot {
                why("above", current - target)
            } else {
                why("below", target - current)
            };
            self.send(true, out, now_ms, &why);
        } else if keep_alive_due {
            self.send(false, out, now_ms, "keep-alive");
        }
    }

    fn send(&mut self, on: bool, out: &mut Output, now_ms: i64, why: &str) {
        let (domain, service) = match (self.cfg.switch.starts_with("valve."), on) {
            (true, true) => ("valve", "open_valve"),
            (true, false) => ("valve", "close_valve"),
            (false, true) => ("switch", "turn_on"),
            (false, false) => ("switch", "turn_off"),
        };
        let keep_alive = why == "keep-alive";
        let just_sent = self.saved.last_sent_on == Some(on)
            && self
                .saved
                .last_sent_ms
                .is_some_and(|t| now_ms - t < PENDING_MS);
        if just_sent && !keep_alive {
            return; // already on its way; the switch has not echoed it yet
        }
        if !keep_alive {
            let what = if self.cfg.ac_mode { "AC" } else { "heater" };
            info(&format!("{what} {}: {why}", if on { "on" } else { "off" }));
        }
        out.call(domain, service, &self.cfg.switch, json!({}));
        self.saved.last_sent_ms = Some(now_ms);
        self.saved.last_sent_on = Some(on);
    }

    fn check_over_temperature(&mut self, current: f64, out: &mut Output) {
        let limit = self.cfg.over_temperature;
        let active = if self.saved.over_temperature {
            current >= limit - OVER_TEMP_CLEAR_MARGIN
        } else {
            current >= limit
        };
        if active != self.saved.over_temperature {
            self.saved.over_temperature = active;
            let msg = format!("room at {current:.1} °C, limit {limit:.1} °C");
            // About the room sensor: HA shows it on that entity's alert sensor
            // as well as on the plugin's own problem sensor.
            out.alert_for(
                &self.cfg.sensor,
                OVER_TEMP,
                Severity::Critical,
                active,
                "Server room over temperature",
                &msg,
            );
            out.entity(OVER_TEMP, if active { "on" } else { "off" });
        }
    }

    fn check_started(&mut self, now_ms: i64, too_hot: bool, switch: &State, out: &mut Output) {
        let Some(power) = self.cfg.power_sensor.as_deref().and_then(State::get) else {
            return;
        };
        let Some(watts) = power.number() else { return };
        let on_for_s = (now_ms - switch.last_changed_ms) as f64 / 1000.0;
        let failing =
            too_hot && on_for_s >= self.cfg.start_check && watts < self.cfg.running_power_w;
        let recovered = watts >= self.cfg.running_power_w;
        if failing && !self.saved.not_cooling {
            self.saved.not_cooling = true;
            let msg = format!(
                "AC on for {on_for_s:.0} s but drawing {watts:.0} W (expected ≥ {:.0} W)",
                self.cfg.running_power_w
            );
            out.problem(
                NOT_COOLING,
                Severity::Warning,
                true,
                "Air conditioner not cooling",
                &msg,
            );
        } else if recovered && self.saved.not_cooling {
            self.saved.not_cooling = false;
            out.problem(
                NOT_COOLING,
                Severity::Warning,
                false,
                "Air conditioner not cooling",
                "AC draws power again",
            );
        }
    }
}

impl Controller for Thermostat {
    fn init(config: Value) -> Result<Self, String> {
        let cfg: Config =
            serde_json::from_value(config).map_err(|e| format!("thermostat config: {e}"))?;
        if cfg.cold_tolerance < 0.0 || cfg.hot_tolerance < 0.0 {
            return Err("thermostat config: tolerances must be ≥ 0 °C".into());
        }
        Ok(Thermostat {
            cfg,
            saved: Saved::default(),
            started_ms: None,
            seen: Seen::default(),
        })
    }

    fn describe(&self) -> Description {
        let mut reads = vec![self.cfg.sensor.clone(), self.cfg.switch.clone()];
        reads.extend(self.cfg.climate.clone());
        reads.extend(self.cfg.power_sensor.clone());
        Description {
            name: "thermostat".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            reads,
            drives: vec![self.cfg.switch.clone()],
            config_schema: "{}".into(),
            // Re-evaluate at least every 10 s so keep-alive and min-cycle
            // deadlines are met without waiting for a sensor update.
            tick_period_ms: 10_000,
            entities: vec![
                problem_sensor(OVER_TEMP, "Over temperature"),
                problem_sensor(NOT_COOLING, "AC not cooling"),
                problem_sensor(SENSOR_LOST, "Sensor unavailable"),
            ],
        }
    }

    fn on_state(&mut self, change: Change, out: &mut Output) {
        self.saved.events += 1;
        // The switch's own echo needs no reaction, only remembering.
        if change.entity_id == self.cfg.switch {
            self.seen.switch = Some(change.new);
            return;
        }
        // HA's generic_thermostat forces a decision when the user changes
        // the target or the mode.
        let user_change = self.cfg.climate.as_deref() == Some(change.entity_id.as_str()) && {
            let target = |s: &Option<State>| s.as_ref().and_then(|s| s.attr_f64("temperature"));
            let mode = |s: &Option<State>| s.as_ref().map(|s| s.state.clone());
            target(&change.old) != target(&change.new) || mode(&change.old) != mode(&change.new)
        };
        // A change of the room sensor carries its new state: no need to
        // read it back from the host (one host call and one copy less on
        // the most frequent event).
        if self.cfg.climate.as_deref() == Some(change.entity_id.as_str()) {
            self.seen.climate = Some(change.new.clone());
        }
        let sensor = (change.entity_id == self.cfg.sensor).then(|| Reading::from(change.new));
        let now = hearth_plugin_sdk::now_ms();
        self.control(now, false, user_change, sensor, out);
    }

    fn tick(&mut self, now_ms: i64, out: &mut Output) {
        let keep_alive_ms = (self.cfg.keep_alive * 1000.0) as i64;
        let due = keep_alive_ms > 0
            && self
                .saved
                .last_sent_ms
                .is_none_or(|t| now_ms - t >= keep_alive_ms);
        // Every tick decides on the host's states.
        self.seen = Seen::default();
        self.control(now_ms, due, false, None, out);
    }

    fn save(&self) -> Vec<u8> {
        save_json(&self.saved)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.saved = restore_json(bytes)?;
        Ok(())
    }

    /// A refused command (typically `turn_on` inside the safety envelope's
    /// minimum off time, when a user's change forced a decision) is logged
    /// with the host's reason. Nothing else changes: the command stays
    /// "in flight" for `PENDING_MS`, after which the next control step
    /// decides again (retry later), so a refusal is not resent per event.
    fn on_call_result(&mut self, result: CallResult, _out: &mut Output) {
        if let Some(reason) = &result.error {
            warn(&format!(
                "{} on {} refused: {reason}; deciding again at a later tick",
                result.service_name(),
                result.entity_ids.join(", ")
            ));
        }
    }
}

export_controller!(Thermostat);

/// Native tests (`cargo test -p hearth-plugin-thermostat`): the SDK's
/// harness plays the bridge.
#[cfg(test)]
mod tests {
    use super::*;
    use hearth_plugin_sdk::LogLevel;
    use hearth_plugin_sdk::testing::Harness;

    fn thermostat() -> Harness<Thermostat> {
        Harness::new(json!({
            "sensor": "sensor.room",
            "switch": "switch.ac",
            "target_temp": 24.0,
        }))
        .unwrap()
    }

    #[test]
    fn a_refused_turn_on_is_logged_and_decided_again_later() {
        let mut h = thermostat();
        h.set_state("switch.ac", "off", json!({}));
        let out = h.set_state("sensor.room", "26.0", json!({}));
        let on = out.calls()[0].clone();
        assert_eq!(
            (on.service.as_str(), on.entity_ids[0].as_str()),
            ("turn_on", "switch.ac")
        );
        h.refuse(
            &on,
            "refused by the safety envelope of `switch.ac`: off for 12 s, must stay off 180 s before restarting",
        );
        // Told at its next call; it does not resend at once.
        let t = h.now_ms() + 1_000;
        assert!(h.tick(t).calls().is_empty());
        let logs = h.logs();
        assert!(
            logs.iter().any(|(level, m)| matches!(level, LogLevel::Warn)
                && m.starts_with("switch.turn_on on switch.ac refused: ")
                && m.contains("must stay off 180 s")),
            "{logs:?}"
        );
        // Once the command is no longer in flight, it decides again.
        let out = h.tick(t + PENDING_MS);
        assert_eq!(out.calls()[0].service, "turn_on");
    }

    /// A sensor change decides on the actuator's state as its own changes
    /// delivered it (no host read); a change the plugin missed is read
    /// back from the host at the next tick.
    #[test]
    fn sensor_changes_use_the_delivered_switch_state_and_a_tick_reads_the_host() {
        let mut h = thermostat();
        h.set_state("switch.ac", "on", json!({}));
        assert!(
            h.set_state("sensor.room", "26.0", json!({}))
                .calls()
                .is_empty()
        );
        // The AC goes off and the plugin misses that change.
        h.set_host_state("switch.ac", "off", json!({}));
        let out = h.set_state("sensor.room", "26.2", json!({}));
        assert!(out.calls().is_empty(), "decided on the delivered `on`");
        // The tick reads the host: off while too hot → on.
        let t = h.now_ms() + 1_000;
        let out = h.tick(t);
        assert_eq!(out.calls()[0].service, "turn_on");
    }

    /// The state the output gives the plugin's `sensor_unavailable`
    /// problem entity, if it gives one.
    fn sensor_lost(out: &Output) -> Option<&str> {
        out.entities()
            .iter()
            .rev()
            .find(|e| e.object_id == SENSOR_LOST)
            .map(|e| e.state.as_str())
    }

    #[test]
    fn a_removed_sensor_is_a_lost_sensor_at_once_and_the_log_says_why() {
        let mut h = thermostat();
        h.set_state("switch.ac", "on", json!({}));
        let out = h.set_state("sensor.room", "26.0", json!({}));
        assert_eq!(sensor_lost(&out), None, "a reading: nothing to report");
        // Its device withdrawn: the entity is gone, no `unavailable` state.
        let out = h.remove_state("sensor.room");
        assert_eq!(sensor_lost(&out), Some("on"));
        assert!(out.calls().is_empty(), "the AC keeps its last command");
        let logs = h.logs();
        assert!(
            logs.iter().any(|(level, m)| matches!(level, LogLevel::Warn)
                && m == "sensor.room is missing (removed from the bridge, or not reported yet): the AC keeps its last command"),
            "{logs:?}"
        );
        // Still missing at the next tick: no repeat.
        let t = h.now_ms() + 10_000;
        assert_eq!(sensor_lost(&h.tick(t)), None);
        // Back: the problem clears.
        let out = h.set_state("sensor.room", "25.0", json!({}));
        assert_eq!(sensor_lost(&out), Some("off"));
        assert!(
            h.logs()
                .iter()
                .any(|(_, m)| m == "sensor.room reports again")
        );
    }

    #[test]
    fn a_sensor_that_never_reported_is_lost_after_the_grace() {
        let mut h = thermostat();
        h.set_state("switch.ac", "off", json!({}));
        let t0 = h.now_ms();
        // At a start the sensor may not be there yet: no alarm.
        assert_eq!(sensor_lost(&h.tick(t0)), None);
        assert_eq!(sensor_lost(&h.tick(t0 + MISSING_GRACE_MS - 1)), None);
        assert_eq!(sensor_lost(&h.tick(t0 + MISSING_GRACE_MS)), Some("on"));
    }

    #[test]
    fn an_unknown_sensor_is_not_lost_but_an_unavailable_one_is() {
        let mut h = thermostat();
        h.set_state("switch.ac", "off", json!({}));
        assert_eq!(
            sensor_lost(&h.set_state("sensor.room", "unknown", json!({}))),
            None
        );
        assert_eq!(
            sensor_lost(&h.set_state("sensor.room", "unavailable", json!({}))),
            Some("on")
        );
    }
}
