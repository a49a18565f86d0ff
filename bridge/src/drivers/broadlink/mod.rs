//! Air conditioners behind a Broadlink RM4 IR gateway: the second IR
//! backend beside [`super::tasmota_ir`], over Broadlink's own local UDP
//! protocol ([`protocol`], after python-broadlink) with the AC's codes from
//! a SmartIR climate file ([`smartir`]; codes are loaded, never invented).
//!
//! In Home Assistant the AC is one device with:
//! - `climate.<id>`: hvac mode (`off` and the file's `operationModes`),
//!   target temperature (°C, the file's range narrowed by the config's,
//!   in the file's step), current temperature (the room sensor, °C),
//!   `hvac_action` from the AC's power sensor (W), `fan_mode` /
//!   `fan_modes` attributes (the file's `fanModes`; `climate.set_fan_mode`
//!   is accepted);
//! - `switch.<id>_power`: the AC's power as the remote sets it (what a
//!   controller plugin switches, as with `tasmota_ir`);
//! - `select.<id>_fan`: the fan speed, one of the file's `fanModes`;
//! - `binary_sensor.<id>_link_problem` (diagnostic): `on` with the
//!   `error` while the gateway cannot be reached or refuses `auth`.
//!
//! Safety envelope (host side, shared with the other IR driver in
//! [`super::ir_climate`]): target within the range, `min_off_s` compressor
//! protection on the power switch.
//!
//! Every IR transmission goes through one place, `Ac::transmit`. IR is
//! one-way: the state shown is what was last sent. With a `power_sensor`,
//! every command is confirmed on the AC's power meter
//! ([`super::ir_confirm`]: `on_power_w`, `confirm_delay_s`, `max_resends`):
//! re-sent when the AC did not follow, then
//! `binary_sensor.<id>_ir_problem` on and one alert.
//!
//! Errors: a code file that does not load refuses the driver's start with
//! the file and the missing key named. Unreachable gateway, refused
//! `auth` (`broadlink <id>: authentication refused (error -7: Control key is
//! expired)`), timeouts, bad checksums and truncated replies raise the
//! problem entity with the error and log it once per distinct error (the
//! device stays available, so HA shows the problem); the driver
//! re-authenticates every `reconnect_s`, and a command meanwhile tries once
//! more and returns the error.

pub mod protocol;
pub mod smartir;

pub use protocol::{BroadlinkError, BroadlinkFound, discover};

use super::DriverContext;
use super::ir_climate::{self, ClimateView};
use super::ir_confirm::{self, IrConfirm, IrConfirmConfig};
use crate::entity::{
    ClimateSpec, Component, Device, DriverCommand, EntitySpec, InputSpec, ServiceError, StoreEvent,
};
use protocol::Session;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use smartir::SmartIrCodes;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const OWNER: &str = "broadlink";

/// `[[broadlink]]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BroadlinkConfig {
    /// Device id, `[a-z0-9_-]+`.
    pub id: String,
    pub name: String,
    /// The gateway: `ip` or `ip:port` (port 80 by default) or a host name.
    pub host: String,
    /// `aa:bb:cc:dd:ee:ff`; asked from the device (discovery) when absent.
    pub mac: Option<String>,
    /// SmartIR climate code file (JSON, Broadlink/Base64, a regular file of
    /// at most 1 MiB). A relative path is relative to the config file's
    /// directory ([`crate::config::Config::load`] resolves it), e.g.
    /// `ir-codes/smartir-climate-1381.json` beside the config.
    pub codes: PathBuf,
    /// Room temperature sensor shown as the climate's current temperature.
    pub temperature_sensor: Option<String>,
    /// The AC's electrical power sensor (W), for `hvac_action` and to
    /// confirm IR commands (without it, commands are not confirmed).
    pub power_sensor: Option<String>,
    /// W above which the AC counts as running.
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
    /// °C; the code file's minimum when absent (never below it).
    pub min_temp: Option<f64>,
    /// °C; the code file's maximum when absent (never above it).
    pub max_temp: Option<f64>,
    /// °C, until someone sets one (24, within the range, when absent).
    pub target_temp: Option<f64>,
    /// Fan speed until someone sets one; the file's first `fanModes` when absent.
    pub fan_mode: Option<String>,
    /// s the AC must stay off before it may restart (compressor protection).
    #[serde(default = "default_min_off")]
    pub min_off_s: f64,
    /// s to wait for each reply (re-sent every second meanwhile).
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// s between reconnection attempts while the gateway is unreachable.
    #[serde(default = "default_reconnect")]
    pub reconnect_s: f64,
}

fn default_running_power() -> f64 {
    300.0
}
fn default_min_off() -> f64 {
    180.0
}
fn default_timeout() -> f64 {
    5.0
}
fn default_reconnect() -> f64 {
    30.0
}

impl BroadlinkConfig {
    /// The IR confirmation keys.
    pub fn confirm(&self) -> IrConfirmConfig {
        IrConfirmConfig {
            power_sensor: self.power_sensor.clone(),
            on_power_w: self.on_power_w,
            confirm_delay_s: self.confirm_delay_s,
            max_resends: self.max_resends,
        }
    }

    /// What serde cannot check (called from `Config::validate`).
    pub fn validate(&self) -> anyhow::Result<()> {
        let id = &self.id;
        self.confirm()
            .validate(&format!("broadlink `{id}`"))
            .map_err(anyhow::Error::msg)?;
        for (name, v, lo, hi) in [
            ("min_off_s", self.min_off_s, 0.0, 3600.0),
            ("timeout_s", self.timeout_s, 0.05, 60.0),
            ("reconnect_s", self.reconnect_s, 0.05, 3600.0),
            ("running_power_w", self.running_power_w, 0.0, 1e5),
        ] {
            anyhow::ensure!(
                v.is_finite() && (lo..=hi).contains(&v),
                "broadlink `{id}`: {name} must be between {lo} and {hi}"
            );
        }
        for (name, v) in [
            ("min_temp", self.min_temp),
            ("max_temp", self.max_temp),
            ("target_temp", self.target_temp),
        ] {
            anyhow::ensure!(
                v.is_none_or(f64::is_finite),
                "broadlink `{id}`: {name} must be a finite number (°C)"
            );
        }
        if let Some(mac) = &self.mac {
            anyhow::ensure!(
                protocol::parse_mac(mac).is_some(),
                "broadlink `{id}`: mac `{mac}` is not like aa:bb:cc:dd:ee:ff"
            );
        }
        Ok(())
    }
}

/// `ip`, `ip:port` or `name[:port]` → an address (port 80 by default).
async fn resolve(host: &str) -> Result<SocketAddr, BroadlinkError> {
    if let Ok(a) = host.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((ip, protocol::PORT).into());
    }
    let with_port = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:{}", protocol::PORT)
    };
    tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| BroadlinkError::Io(format!("resolving `{host}`: {e}")))?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| BroadlinkError::Io(format!("`{host}` has no IPv4 address")))
}

/// What a climate command may change.
struct Settings {
    mode: String,
    last_mode: String,
    fan: String,
    target: f64,
}

struct Ac {
    cfg: BroadlinkConfig,
    codes: SmartIrCodes,
    ctx: DriverContext,
    climate_id: String,
    switch_id: String,
    fan_id: String,
    problem_id: String,
    modes: Vec<String>,
    min_temp: f64,
    max_temp: f64,
    mode: String,
    /// The last mode other than off (what `turn_on` restores).
    last_mode: String,
    fan: String,
    target: f64,
    power_on: bool,
    session: Option<Session>,
    last_error: Option<String>,
    confirm: IrConfirm,
}

/// Starts one `[[broadlink]]` AC. Fails (naming the file and key) when its
/// code file does not load or does not fit the config.
/// Reads the code file (a bounded, blocking read of a regular file: this
/// runs once at start; adoption reads it off the runtime and calls
/// [`spawn_with_codes`]).
pub fn spawn(cfg: BroadlinkConfig, ctx: &DriverContext) -> anyhow::Result<JoinHandle<()>> {
    let codes = SmartIrCodes::load(&cfg.codes)
        .map_err(|e| anyhow::anyhow!("broadlink `{}`: {e}", cfg.id))?;
    spawn_with_codes(cfg, codes, ctx)
}

/// [`spawn`] with the code file already loaded.
pub fn spawn_with_codes(
    cfg: BroadlinkConfig,
    codes: SmartIrCodes,
    ctx: &DriverContext,
) -> anyhow::Result<JoinHandle<()>> {
    let min_temp = cfg.min_temp.unwrap_or(codes.min_temp).max(codes.min_temp);
    let max_temp = cfg.max_temp.unwrap_or(codes.max_temp).min(codes.max_temp);
    anyhow::ensure!(
        min_temp <= max_temp,
        "broadlink `{}`: min_temp/max_temp leave no temperature within the code file's {}–{} °C",
        cfg.id,
        codes.min_temp,
        codes.max_temp
    );
    let target = codes.snap(cfg.target_temp.unwrap_or(24.0).clamp(min_temp, max_temp));
    let fan = cfg
        .fan_mode
        .clone()
        .unwrap_or_else(|| codes.fan_modes[0].clone());
    anyhow::ensure!(
        codes.fan_modes.contains(&fan),
        "broadlink `{}`: fan_mode `{fan}` is not one of the code file's fanModes {:?}",
        cfg.id,
        codes.fan_modes
    );
    let mut modes = vec!["off".to_string()];
    modes.extend(codes.modes.iter().cloned());

    let model = format!(
        "{} {} (SmartIR codes)",
        codes.manufacturer,
        codes.models.first().cloned().unwrap_or_default()
    );
    ctx.store.upsert_device(
        OWNER,
        Device {
            id: cfg.id.clone(),
            name: cfg.name.clone(),
            manufacturer: "Broadlink IR gateway".into(),
            model: model.trim().into(),
            sw_version: None,
            via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
        },
    )?;
    let mut climate = EntitySpec::new(&cfg.id, "climate", Component::Climate);
    climate.entity_id = format!("climate.{}", cfg.id.replace('-', "_"));
    climate.climate = Some(ClimateSpec {
        modes: modes.clone(),
        min_temp,
        max_temp,
        temp_step: codes.precision,
    });
    let power = EntitySpec::new(&cfg.id, "power", Component::Switch).named("Power");
    let mut fan_spec = EntitySpec::new(&cfg.id, "fan", Component::Select).named("Fan");
    fan_spec.input = Some(InputSpec::Select {
        options: codes.fan_modes.clone(),
    });
    let problem = EntitySpec::new(&cfg.id, "link_problem", Component::BinarySensor)
        .named("Gateway problem")
        .class("problem")
        .diagnostic();
    let ids = (
        climate.entity_id.clone(),
        power.entity_id.clone(),
        fan_spec.entity_id.clone(),
        problem.entity_id.clone(),
    );
    for spec in [climate, power, fan_spec, problem] {
        ctx.store.upsert_entity(spec)?;
    }
    let (climate_id, switch_id, fan_id, problem_id) = ids;

    let (tx, mut commands) = mpsc::channel::<DriverCommand>(64);
    ir_climate::register(
        ctx,
        &climate_id,
        &switch_id,
        tx.clone(),
        (min_temp, max_temp),
        cfg.min_off_s,
    );
    ctx.router.register(&fan_id, tx, Default::default());

    let mut confirm = IrConfirm::start(&cfg.id, &cfg.name, &climate_id, cfg.confirm(), ctx)?;
    let mut resends = confirm.take_resends();
    let (_, mut events) = ctx.store.subscribe();
    let first_mode = codes.modes[0].clone();
    let mut ac = Ac {
        cfg,
        codes,
        ctx: ctx.clone(),
        climate_id,
        switch_id,
        fan_id,
        problem_id,
        modes,
        min_temp,
        max_temp,
        mode: first_mode.clone(),
        last_mode: first_mode,
        fan,
        target,
        power_on: false,
        session: None,
        last_error: None,
        confirm,
    };
    ac.publish_state();
    let mut shutdown = ctx.shutdown.clone();
    let reconnect = Duration::from_secs_f64(ac.cfg.reconnect_s);
    Ok(tokio::spawn(async move {
        ac.connect().await;
        let mut tick = tokio::time::interval(reconnect);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                Some(cmd) = commands.recv() => {
                    if cmd.reply.is_closed() {
                        continue; // the caller gave up (timed out): do not act late
                    }
                    let result = ac.execute(&cmd.entity_id, &cmd.service, &cmd.data).await;
                    let _ = cmd.reply.send(result);
                }
                _ = tick.tick() => if ac.session.is_none() {
                    ac.connect().await;
                },
                // The AC did not follow the latest command: the same frame again.
                on = resends.next() => if let Err(e) = ac.send_frame(on).await {
                    tracing::warn!("{}: IR re-send failed: {e}", ac.cfg.name);
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
    /// Resolves, opens and authenticates a session; availability and the
    /// problem entity follow.
    async fn connect(&mut self) {
        let timeout = Duration::from_secs_f64(self.cfg.timeout_s);
        let mac = self.cfg.mac.as_deref().and_then(protocol::parse_mac);
        let result = async {
            let addr = resolve(&self.cfg.host).await?;
            let mut s = Session::open(addr, mac, timeout).await?;
            s.auth().await?;
            Ok::<_, BroadlinkError>(s)
        }
        .await;
        match result {
            Ok(s) => {
                if self.last_error.take().is_some() {
                    tracing::info!("broadlink {}: gateway reachable again", self.cfg.id);
                }
                self.session = Some(s);
                let now = self.ctx.clock.now_ms();
                crate::entity::problem::cleared(&self.ctx.store, &self.problem_id, now);
            }
            Err(e) => self.link_failed(&e),
        }
    }

    /// The gateway failed: drop the session, say why (once per distinct
    /// error). The device stays available so the problem entity shows the
    /// error in HA (an unavailable device hides its entities' states); a
    /// command meanwhile tries to reconnect and fails with the error.
    fn link_failed(&mut self, e: &BroadlinkError) {
        self.session = None;
        let text = format!("broadlink {}: {e}", self.cfg.id);
        if self.last_error.as_deref() != Some(text.as_str()) {
            tracing::warn!("{text} ({} cannot be controlled)", self.cfg.name);
        }
        crate::entity::problem::raised(&self.ctx.store, &self.problem_id, &text);
        self.last_error = Some(text);
    }

    async fn execute(
        &mut self,
        entity_id: &str,
        service: &str,
        data: &Map<String, Value>,
    ) -> Result<(), ServiceError> {
        let invalid = |msg: String| ServiceError::Validation(msg);
        if entity_id == self.climate_id {
            let mode = match service {
                "turn_on" => Some(self.last_mode.as_str()),
                "turn_off" => Some("off"),
                "set_hvac_mode" | "set_temperature" | "set_fan_mode" => {
                    data.get("hvac_mode").and_then(Value::as_str)
                }
                _ => {
                    return Err(ServiceError::UnknownService(
                        "climate".into(),
                        service.into(),
                    ));
                }
            }
            .map(String::from);
            // The new settings, checked whole before anything is sent or
            // kept: a refused or failed command leaves the AC as it was.
            let fan = match data.get("fan_mode").and_then(Value::as_str) {
                Some(f) => self.check_fan(entity_id, f)?,
                None => self.fan.clone(),
            };
            let target = match data.get("temperature").and_then(Value::as_f64) {
                Some(t) => self.codes.snap(t.clamp(self.min_temp, self.max_temp)),
                None => self.target,
            };
            let mode = mode.unwrap_or_else(|| self.mode.clone());
            if !self.modes.contains(&mode) {
                return Err(invalid(format!(
                    "{entity_id}: hvac_mode `{mode}` is not one of {:?}",
                    self.modes
                )));
            }
            let changed = fan != self.fan || target != self.target || mode != self.mode;
            let before = self.stage(mode, fan, target);
            let sent = if self.mode == "off" {
                if self.power_on {
                    self.transmit(false).await
                } else {
                    Ok(())
                }
            } else if changed && self.power_on {
                // The AC's own setpoint follows, so it never fights the controller.
                self.transmit(true).await
            } else {
                Ok(())
            };
            self.settle(before, sent)?;
        } else if entity_id == self.fan_id {
            if service != "select_option" {
                return Err(ServiceError::UnknownService(
                    "select".into(),
                    service.into(),
                ));
            }
            let option = data
                .get("option")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let fan = self.check_fan(entity_id, option)?;
            let changed = fan != self.fan;
            let (mode, target) = (self.mode.clone(), self.target);
            let before = self.stage(mode, fan, target);
            let sent = if changed && self.power_on {
                self.transmit(true).await
            } else {
                Ok(())
            };
            self.settle(before, sent)?;
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
                    "{}: the AC's hvac mode is off; set it to one of {:?} first",
                    self.climate_id, self.codes.modes
                )));
            }
            if on != self.power_on {
                tracing::info!(
                    "{}: switching the AC {}",
                    self.cfg.name,
                    if on { "on" } else { "off" }
                );
            }
            self.transmit(on).await?;
        }
        self.publish_state();
        Ok(())
    }

    /// `fan` when it is one of the file's fan modes.
    fn check_fan(&self, entity_id: &str, fan: &str) -> Result<String, ServiceError> {
        if !self.codes.fan_modes.iter().any(|f| f == fan) {
            return Err(ServiceError::Validation(format!(
                "{entity_id}: fan mode `{fan}` is not one of {:?}",
                self.codes.fan_modes
            )));
        }
        Ok(fan.to_string())
    }

    /// Takes `mode`, `fan` and `target` (checked) as the settings the
    /// next frame carries; returns the settings before, for [`Self::settle`].
    fn stage(&mut self, mode: String, fan: String, target: f64) -> Settings {
        let before = Settings {
            mode: self.mode.clone(),
            last_mode: self.last_mode.clone(),
            fan: self.fan.clone(),
            target: self.target,
        };
        if mode != self.mode {
            tracing::info!("{}: hvac mode {} → {mode}", self.cfg.name, self.mode);
        }
        if fan != self.fan {
            tracing::info!("{}: fan {} → {fan}", self.cfg.name, self.fan);
        }
        if target != self.target {
            tracing::info!(
                "{}: target temperature {} → {target} °C",
                self.cfg.name,
                self.target
            );
        }
        if mode != "off" {
            self.last_mode = mode.clone();
        }
        (self.mode, self.fan, self.target) = (mode, fan, target);
        before
    }

    /// Keeps the staged settings when `sent` succeeded; after a failed
    /// transmission puts back `before`, so the entity shows what the AC
    /// last received.
    fn settle(
        &mut self,
        before: Settings,
        sent: Result<(), ServiceError>,
    ) -> Result<(), ServiceError> {
        if sent.is_err() {
            self.mode = before.mode;
            self.last_mode = before.last_mode;
            self.fan = before.fan;
            self.target = before.target;
            tracing::warn!(
                "{}: the command was not sent; the AC keeps mode {}, fan {}, {} °C",
                self.cfg.name,
                self.mode,
                self.fan,
                self.target
            );
        }
        sent
    }

    /// The one place an IR command leaves for the AC; confirmed on its
    /// power meter ([`IrConfirm`]), which asks for re-sends of the latest.
    async fn transmit(&mut self, on: bool) -> Result<(), ServiceError> {
        self.send_frame(on).await?;
        self.confirm.transmitted(on);
        Ok(())
    }

    /// The code for the current mode, fan and target (or the off code),
    /// sent with `send_data`.
    async fn send_frame(&mut self, on: bool) -> Result<(), ServiceError> {
        let entity = self.climate_id.clone();
        let driver_error = move |reason: String| ServiceError::Driver {
            entity: entity.clone(),
            reason,
        };
        let code = if on {
            self.codes
                .code(&self.mode, &self.fan, self.target)
                .map_err(&driver_error)?
                .to_vec()
        } else {
            self.codes.off().to_vec()
        };
        if self.session.is_none() {
            self.connect().await;
        }
        let Some(session) = self.session.as_mut() else {
            let reason = self.last_error.clone().unwrap_or_default();
            return Err(driver_error(reason));
        };
        if let Err(e) = session.send_data(&code).await {
            self.link_failed(&e);
            return Err(driver_error(format!("broadlink {}: {e}", self.cfg.id)));
        }
        self.power_on = on;
        Ok(())
    }

    fn publish_state(&self) {
        let store = &self.ctx.store;
        let mut attrs = ir_climate::climate_attrs(
            store,
            &ClimateView {
                modes: &self.modes,
                mode: &self.mode,
                power_on: self.power_on,
                min_temp: self.min_temp,
                max_temp: self.max_temp,
                target: self.target,
                temperature_sensor: self.cfg.temperature_sensor.as_deref(),
                power_sensor: self.cfg.power_sensor.as_deref(),
                running_power_w: self.cfg.running_power_w,
            },
        );
        attrs.insert("fan_mode".into(), json!(self.fan));
        attrs.insert("fan_modes".into(), json!(self.codes.fan_modes));
        let _ = store.set_state(&self.climate_id, self.mode.clone(), attrs);
        let _ = store.set_state(
            &self.switch_id,
            if self.power_on { "on" } else { "off" },
            Map::new(),
        );
        let _ = store.set_state(&self.fan_id, self.fan.clone(), Map::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> BroadlinkConfig {
        toml::from_str(&format!(
            "id = \"ac\"\nname = \"AC\"\nhost = \"192.168.1.70\"\ncodes = \"c.json\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn config_defaults_and_checks() {
        let c = parse("");
        assert_eq!(
            (c.min_off_s, c.timeout_s, c.reconnect_s),
            (180.0, 5.0, 30.0)
        );
        assert!(c.validate().is_ok());
        let e = parse("mac = \"34:ea:34\"").validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "broadlink `ac`: mac `34:ea:34` is not like aa:bb:cc:dd:ee:ff"
        );
        let e = parse("timeout_s = 0").validate().unwrap_err();
        assert!(e.to_string().contains("timeout_s must be between"), "{e}");
        assert!(
            toml::from_str::<BroadlinkConfig>("id = \"ac\"\nname = \"AC\"\nhost = \"h\"").is_err(),
            "codes is required"
        );
    }

    #[test]
    fn a_relative_codes_path_is_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hearth.toml");
        std::fs::write(
            &file,
            "[[broadlink]]\nid = \"ac\"\nname = \"AC\"\nhost = \"h\"\ncodes = \"ir/c.json\"\n\n[[broadlink]]\nid = \"ac2\"\nname = \"AC2\"\nhost = \"h2\"\ncodes = \"/etc/c.json\"\n",
        )
        .unwrap();
        let c = crate::config::Config::load(&file).unwrap();
        let dir = std::path::absolute(dir.path()).unwrap();
        assert_eq!(c.broadlink[0].codes, dir.join("ir/c.json"));
        assert_eq!(c.broadlink[1].codes, PathBuf::from("/etc/c.json"));
    }

    #[tokio::test]
    async fn hosts_resolve_with_port_80_by_default() {
        let a = resolve("192.168.1.70").await.unwrap();
        assert_eq!(a, "192.168.1.70:80".parse().unwrap());
        let a = resolve("127.0.0.1:8080").await.unwrap();
        assert_eq!(a.port(), 8080);
    }
}
