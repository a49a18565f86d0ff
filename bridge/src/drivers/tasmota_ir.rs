//! Air conditioners behind a Tasmota IR bridge (Tasmota docs, "IR Remote":
//! `IRhvac`). Commands go to `cmnd/<topic>/IRhvac` as JSON
//! (`Vendor`, `Power`, `Mode`, `Temp`, `FanSpeed`, `Celsius`); Tasmota echoes
//! what it transmitted on `stat/<topic>/RESULT` (`{"IRHVAC":{…}}`) and keeps
//! its availability on `tele/<topic>/LWT` (`Online`/`Offline`).
//!
//! In Home Assistant the AC is one device with:
//! - `climate.<id>`: the thermostat as users see it: hvac mode (`off`,
//!   `cool`), target temperature, current temperature (from the room sensor),
//!   hvac action (`off`, `idle`, `cooling`; `cooling` needs the AC's power
//!   sensor to show the compressor runs);
//! - `switch.<id>_power`: the AC's power as the IR remote sets it — what a
//!   controller plugin switches, like `generic_thermostat`'s heater switch.
//!
//! IR is one-way: the switch's state is what was last sent. Plugins re-send
//! periodically (`keep_alive`). With a `power_sensor`, every command is
//! confirmed on the AC's power meter ([`super::ir_confirm`]): re-sent when
//! the AC did not follow within `confirm_delay_s`, and after `max_resends`
//! re-sends `binary_sensor.<id>_ir_problem` turns on with one alert.

use super::DriverContext;
use super::ir_confirm::{self, IrConfirm, IrConfirmConfig, SendFn};
use crate::entity::{
    ClimateSpec, Component, Device, DriverCommand, EntitySpec, ServiceError, StoreEvent,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const OWNER: &str = "tasmota_ir";

/// `[[ir_ac]]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IrAcConfig {
    /// Device id, `[a-z0-9_-]+`.
    pub id: String,
    pub name: String,
    /// Tasmota's `%topic%`.
    pub tasmota_topic: String,
    /// IRremoteESP8266 protocol name, e.g. `MITSUBISHI_AC`, `DAIKIN`.
    pub vendor: String,
    #[serde(default = "default_fan")]
    pub fan_speed: String,
    /// Room temperature sensor shown as the climate's current temperature.
    pub temperature_sensor: Option<String>,
    /// The AC's electrical power sensor (W), for `hvac_action` and to
    /// confirm IR commands (without it, commands are not confirmed).
    pub power_sensor: Option<String>,
    /// W above which the compressor counts as running.
    #[serde(default = "default_running_power")]
    pub running_power_w: f64,
    /// W above which the AC counts as on (its indoor fan runs; the
    /// compressor may idle): confirms IR commands. Default 15 W.
    #[serde(default = "ir_confirm::default_on_power_w")]
    pub on_power_w: f64,
    /// Simulated s to wait for the power to follow an IR command before
    /// re-sending it. Default 60 s.
    #[serde(default = "ir_confirm::default_confirm_delay_s")]
    pub confirm_delay_s: f64,
    /// Re-sends of a command the AC did not follow before its problem
    /// entity turns on and an alert is raised. Default 2.
    #[serde(default = "ir_confirm::default_max_resends")]
    pub max_resends: u32,
    /// °C
    #[serde(default = "default_min_temp")]
    pub min_temp: f64,
    /// °C
    #[serde(default = "default_max_temp")]
    pub max_temp: f64,
    /// °C, until someone sets one.
    #[serde(default = "default_target")]
    pub target_temp: f64,
    /// s the AC must stay off before it may restart (compressor protection).
    #[serde(default = "default_min_off")]
    pub min_off_s: f64,
}

fn default_fan() -> String {
    "Auto".into()
}
fn default_running_power() -> f64 {
    300.0
}
fn default_min_temp() -> f64 {
    16.0
}
fn default_max_temp() -> f64 {
    30.0
}
fn default_target() -> f64 {
    24.0
}
fn default_min_off() -> f64 {
    180.0
}

const MODES: [&str; 2] = ["off", "cool"];

impl IrAcConfig {
    /// The IR confirmation keys.
    pub fn confirm(&self) -> IrConfirmConfig {
        IrConfirmConfig {
            power_sensor: self.power_sensor.clone(),
            on_power_w: self.on_power_w,
            confirm_delay_s: self.confirm_delay_s,
            max_resends: self.max_resends,
        }
    }
}

/// The `IRhvac` command for a power state, as Tasmota documents it.
pub fn irhvac_payload(cfg: &IrAcConfig, power_on: bool, target: f64) -> Value {
    json!({
        "Vendor": cfg.vendor,
        "Power": if power_on { "On" } else { "Off" },
        "Mode": if power_on { "Cool" } else { "Off" },
        "Temp": target,
        "FanSpeed": cfg.fan_speed,
        "Celsius": "On",
    })
}

struct Ac {
    cfg: IrAcConfig,
    ctx: DriverContext,
    climate_id: String,
    switch_id: String,
    mode: String,
    target: f64,
    power_on: bool,
    confirm: IrConfirm,
}

pub fn spawn(cfg: IrAcConfig, ctx: &DriverContext) -> anyhow::Result<JoinHandle<()>> {
    let device = Device {
        id: cfg.id.clone(),
        name: cfg.name.clone(),
        manufacturer: "Tasmota IR bridge".into(),
        model: format!("{} air conditioner", cfg.vendor),
        sw_version: None,
        via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
    };
    ctx.store.upsert_device(OWNER, device)?;
    let mut climate = EntitySpec::new(&cfg.id, "climate", Component::Climate);
    climate.entity_id = format!("climate.{}", cfg.id.replace('-', "_"));
    climate.climate = Some(ClimateSpec {
        modes: MODES.map(String::from).to_vec(),
        min_temp: cfg.min_temp,
        max_temp: cfg.max_temp,
        temp_step: 0.5,
    });
    let power = EntitySpec::new(&cfg.id, "power", Component::Switch).named("Power");
    let (climate_id, switch_id) = (climate.entity_id.clone(), power.entity_id.clone());
    ctx.store.upsert_entity(climate)?;
    ctx.store.upsert_entity(power)?;
    let confirm = IrConfirm::start(&cfg.id, &cfg.name, &climate_id, cfg.confirm(), ctx)?;

    let (tx, mut commands) = mpsc::channel::<DriverCommand>(64);
    super::ir_climate::register(
        ctx,
        &climate_id,
        &switch_id,
        tx,
        (cfg.min_temp, cfg.max_temp),
        cfg.min_off_s,
    );

    let mut results = ctx
        .link
        .subscribe(&format!("stat/{}/RESULT", cfg.tasmota_topic))?;
    let mut lwt = ctx
        .link
        .subscribe(&format!("tele/{}/LWT", cfg.tasmota_topic))?;
    let (_, mut events) = ctx.store.subscribe();
    let mut ac = Ac {
        target: cfg.target_temp,
        cfg,
        ctx: ctx.clone(),
        climate_id,
        switch_id,
        mode: "cool".into(),
        power_on: false,
        confirm,
    };
    ac.publish_state();
    let mut shutdown = ctx.shutdown.clone();
    Ok(tokio::spawn(async move {
        let bad_input = crate::logging::Throttle::new("bad input");
        loop {
            tokio::select! {
                Some(cmd) = commands.recv() => {
                    if cmd.reply.is_closed() {
                        continue; // the caller gave up (timed out): do not act late
                    }
                    let result = ac.execute(&cmd.entity_id, &cmd.service, &cmd.data).await;
                    let _ = cmd.reply.send(result);
                }
                Some(msg) = results.recv() => ac.on_result(&msg.topic, &msg.payload, &bad_input),
                Some(msg) = lwt.recv() => match msg.text().trim() {
                    "Online" => ac.ctx.store.set_availability(&ac.cfg.id, true),
                    "Offline" => {
                        tracing::warn!("IR bridge `{}` is offline: {} cannot be controlled", ac.cfg.tasmota_topic, ac.cfg.name);
                        ac.ctx.store.set_availability(&ac.cfg.id, false);
                    }
                    other => if bad_input.admit(&msg.topic) {
                        tracing::warn!("{}: expected Online or Offline, got `{other}`", msg.topic)
                    },
                },
                Some(ev) = events.recv() => {
                    if let StoreEvent::StateChanged(c) = ev {
                        let watched = [&ac.cfg.temperature_sensor, &ac.cfg.power_sensor];
                        if watched.iter().any(|w| w.as_deref() == Some(c.entity_id.as_str())) {
                            ac.publish_state();
                        }
                    }
                }
                _ = shutdown.wait() => break,
                else => break,
            }
        }
    }))
}

impl Ac {
    async fn execute(
        &mut self,
        entity_id: &str,
        service: &str,
        data: &Map<String, Value>,
    ) -> Result<(), ServiceError> {
        let invalid = |msg: String| ServiceError::Validation(msg);
        if entity_id == self.climate_id {
            match service {
                "set_hvac_mode" | "set_temperature" | "turn_on" | "turn_off" => {}
                _ => {
                    return Err(ServiceError::UnknownService(
                        "climate".into(),
                        service.into(),
                    ));
                }
            }
            let mode = match service {
                "turn_on" => Some("cool"),
                "turn_off" => Some("off"),
                _ => data.get("hvac_mode").and_then(Value::as_str),
            };
            if let Some(mode) = mode {
                if !MODES.contains(&mode) {
                    return Err(invalid(format!(
                        "{entity_id}: hvac_mode `{mode}` is not one of {MODES:?}"
                    )));
                }
                if mode != self.mode {
                    tracing::info!("{}: hvac mode {} → {mode}", self.cfg.name, self.mode);
                }
                self.mode = mode.into();
                if mode == "off" && self.power_on {
                    self.send(false).await?;
                }
            }
            if let Some(t) = data.get("temperature").and_then(Value::as_f64) {
                if t != self.target {
                    tracing::info!(
                        "{}: target temperature {} → {t} °C",
                        self.cfg.name,
                        self.target
                    );
                }
                let before = std::mem::replace(&mut self.target, t);
                // The AC's own setpoint follows, so it never fights the controller.
                if self.power_on
                    && let Err(e) = self.send(true).await
                {
                    // Not sent (the broker is unreachable): the AC keeps
                    // the old setpoint, and so does its entity.
                    self.target = before;
                    return Err(e);
                }
            }
        } else {
            let on = match service {
                "turn_on" => true,
                "turn_off" => false,
                "toggle" => !self.power_on,
                _ => {
                    return Err(ServiceError::UnknownService(
                        "switch".into(),
                        service.into(),
                    ));
                }
            };
            if on && self.mode == "off" {
                return Err(invalid(format!(
                    "{}: the AC's hvac mode is off; set it to cool first",
                    self.climate_id
                )));
            }
            if on != self.power_on {
                tracing::info!(
                    "{}: switching the AC {}",
                    self.cfg.name,
                    if on { "on" } else { "off" }
                );
            }
            self.send(on).await?;
        }
        self.publish_state();
        Ok(())
    }

    /// Sends the whole remote state; the AC should end up `on` (confirmed
    /// on its power meter, re-sent if not).
    async fn send(&mut self, on: bool) -> Result<(), ServiceError> {
        let payload = irhvac_payload(&self.cfg, on, self.target).to_string();
        let topic = format!("cmnd/{}/IRhvac", self.cfg.tasmota_topic);
        let link = self.ctx.link.clone();
        let frame: SendFn = std::sync::Arc::new(move || {
            let (link, topic, payload) = (link.clone(), topic.clone(), payload.clone());
            Box::pin(async move { link.publish(&topic, payload, false).await })
        });
        self.confirm
            .send(on, frame)
            .await
            .map_err(|e| ServiceError::Driver {
                entity: self.switch_id.clone(),
                reason: format!("{e:#}"),
            })?;
        self.power_on = on;
        Ok(())
    }

    fn on_result(&self, topic: &str, payload: &[u8], bad_input: &crate::logging::Throttle) {
        match serde_json::from_slice::<Value>(payload) {
            Ok(v) => match v.get("IRHVAC") {
                Some(Value::Object(sent)) => tracing::debug!(
                    "{topic}: IR bridge transmitted {}",
                    serde_json::Value::Object(sent.clone())
                ),
                Some(Value::String(err)) if bad_input.admit(topic) => {
                    tracing::warn!("{topic}: IR bridge refused the command: {err}")
                }
                _ => {} // RESULT of other commands (or a throttled refusal)
            },
            Err(e) if bad_input.admit(topic) => tracing::warn!(
                "{topic}: invalid RESULT JSON: {e} (payload `{}`)",
                super::excerpt(payload)
            ),
            Err(_) => {}
        }
    }

    fn publish_state(&self) {
        let store = &self.ctx.store;
        let modes = MODES.map(String::from);
        let attrs = super::ir_climate::climate_attrs(
            store,
            &super::ir_climate::ClimateView {
                modes: &modes,
                mode: &self.mode,
                power_on: self.power_on,
                min_temp: self.cfg.min_temp,
                max_temp: self.cfg.max_temp,
                target: self.target,
                temperature_sensor: self.cfg.temperature_sensor.as_deref(),
                power_sensor: self.cfg.power_sensor.as_deref(),
                running_power_w: self.cfg.running_power_w,
            },
        );
        let _ = store.set_state(&self.climate_id, self.mode.clone(), attrs);
        let _ = store.set_state(
            &self.switch_id,
            if self.power_on { "on" } else { "off" },
            Map::new(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irhvac_payload_follows_tasmota() {
        let cfg: IrAcConfig = toml::from_str(
            r#"id = "ac"
name = "AC"
tasmota_topic = "ir"
vendor = "MITSUBISHI_AC""#,
        )
        .unwrap();
        let on = irhvac_payload(&cfg, true, 22.5);
        assert_eq!(
            on,
            json!({"Vendor":"MITSUBISHI_AC","Power":"On","Mode":"Cool","Temp":22.5,"FanSpeed":"Auto","Celsius":"On"})
        );
        assert_eq!(irhvac_payload(&cfg, false, 22.5)["Power"], "Off");
    }
}
