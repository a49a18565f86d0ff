//! Tasmota multi-relay metered power strips over MQTT (`[[tasmota_strip]]`).
//!
//! The driver owns one device per strip and, per outlet, a `switch` and
//! power/current/energy sensors ([`outlets`]). It reads Tasmota's own
//! topics and writes what they say into the entity store; it is the only
//! writer of those entities. Commands reach it from the service router
//! only.
//!
//! | topic | payload | effect |
//! |---|---|---|
//! | `cmnd/<topic>/POWER<n>` (sent) | `ON` / `OFF` / `TOGGLE` | `switch.turn_on`/`turn_off`/`toggle` |
//! | `cmnd/<topic>/STATE` (sent) | empty | asks for every relay's state (at start and when the strip comes online) |
//! | `stat/<topic>/RESULT` | `{"POWER1":"ON"}` or the whole `STATE` object | switch states |
//! | `stat/<topic>/POWER<n>` | `ON` / `OFF` | switch `n` |
//! | `tele/<topic>/STATE` | `{"POWER1":"ON","POWER2":"OFF",…}` | switch states |
//! | `tele/<topic>/SENSOR` | `{"ENERGY":{"Power":[52,5],"Current":[…],"Total":[…],…}}` | sensors ([`MeterMode`]) |
//! | `tele/<topic>/LWT` | `Online` / `Offline` | the strip's entities `unavailable` while offline |
//!
//! Payload shapes and their sources are in [`payload`]; a malformed one is
//! logged (topic, what was expected, an excerpt) and ignored: the last good
//! states stay. Modules: [`config`] (the section), [`payload`] (topics and
//! parsing, no I/O), [`outlets`] (entities and per-outlet figures), this
//! file (the task: subscriptions, commands, availability).

pub mod config;
pub mod outlets;
pub mod payload;

pub use config::{MeterMode, TasmotaStripConfig};

use super::DriverContext;
use crate::broker::Message;
use crate::entity::{Device, DriverCommand, SafetyEnvelope, ServiceError, format_number};
use crate::logging::Throttle;
use outlets::{ESTIMATE_NOTE, Estimate, SENSORS};
use payload::EnergyReading;
use serde_json::{Map, json};
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const OWNER: &str = "tasmota_strip";

struct Strip {
    cfg: TasmotaStripConfig,
    ctx: DriverContext,
    /// Switch entity id → outlet number (1-based).
    switches: HashMap<String, usize>,
    /// Last reported relay states, outlet 1 first.
    relays: Vec<Option<bool>>,
    /// The last good `ENERGY` reading (a total-only strip re-splits it when
    /// a relay changes).
    reading: Option<EnergyReading>,
    estimate: Estimate,
    /// `tele/<topic>/LWT` said `Offline` last.
    offline: bool,
    bad_input: std::sync::Arc<Throttle>,
}

pub fn spawn(cfg: TasmotaStripConfig, ctx: &DriverContext) -> anyhow::Result<JoinHandle<()>> {
    ctx.store.upsert_device(
        OWNER,
        Device {
            id: cfg.id.clone(),
            name: cfg.name.clone(),
            manufacturer: "Tasmota".into(),
            model: format!("{}-outlet metered strip", cfg.outlets),
            sw_version: None,
            via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
        },
    )?;
    let (tx, mut commands) = mpsc::channel::<DriverCommand>(64);
    let mut switches = HashMap::new();
    for n in 1..=cfg.outlets {
        for spec in outlets::outlet_entities(&cfg, n) {
            if spec.component == crate::entity::Component::Switch {
                ctx.router
                    .register(&spec.entity_id, tx.clone(), SafetyEnvelope::default());
                switches.insert(spec.entity_id.clone(), n);
            }
            ctx.store.upsert_entity(spec)?;
        }
    }
    let topic = cfg.topic.clone();
    let mut stat = ctx.link.subscribe(&format!("stat/{topic}/+"))?;
    let mut state = ctx.link.subscribe(&format!("tele/{topic}/STATE"))?;
    let mut sensor = ctx.link.subscribe(&format!("tele/{topic}/SENSOR"))?;
    let mut lwt = ctx.link.subscribe(&format!("tele/{topic}/LWT"))?;
    let mut strip = Strip {
        relays: vec![None; cfg.outlets],
        cfg,
        ctx: ctx.clone(),
        switches,
        reading: None,
        estimate: Estimate::default(),
        offline: false,
        bad_input: Throttle::new("bad input"),
    };
    let mut shutdown = ctx.shutdown.clone();
    Ok(tokio::spawn(async move {
        strip.ask_state().await;
        loop {
            tokio::select! {
                Some(cmd) = commands.recv() => {
                    if cmd.reply.is_closed() {
                        continue; // the caller gave up (timed out): do not act late
                    }
                    let result = strip.execute(&cmd.entity_id, &cmd.service).await;
                    let _ = cmd.reply.send(result);
                }
                Some(msg) = stat.recv() => strip.on_stat(&msg),
                Some(msg) = state.recv() => strip.on_relays(&msg),
                Some(msg) = sensor.recv() => strip.on_sensor(&msg),
                Some(msg) = lwt.recv() => strip.on_lwt(&msg).await,
                _ = shutdown.wait() => break,
                else => break,
            }
        }
    }))
}

impl Strip {
    fn warn(&self, msg: &Message, e: &dyn std::fmt::Display) {
        if self.bad_input.admit(&msg.topic) {
            tracing::warn!(
                "{}: {e} (payload `{}`); ignored",
                msg.topic,
                super::excerpt(&msg.payload)
            );
        }
    }

    /// `cmnd/<topic>/STATE` with an empty payload: Tasmota answers with
    /// every relay's state on `stat/<topic>/RESULT`.
    async fn ask_state(&self) {
        let topic = format!("cmnd/{}/STATE", self.cfg.topic);
        if let Err(e) = self.ctx.link.publish(&topic, "", false).await {
            tracing::warn!("strip `{}`: cannot ask its state: {e:#}", self.cfg.name);
        }
    }

    async fn execute(&mut self, entity_id: &str, service: &str) -> Result<(), ServiceError> {
        let Some(&n) = self.switches.get(entity_id) else {
            return Err(ServiceError::Driver {
                entity: entity_id.into(),
                reason: format!("not an outlet of strip `{}`", self.cfg.id),
            });
        };
        let word = match service {
            "turn_on" => "ON",
            "turn_off" => "OFF",
            "toggle" => "TOGGLE",
            _ => {
                return Err(ServiceError::UnknownService(
                    "switch".into(),
                    service.into(),
                ));
            }
        };
        if self.offline {
            return Err(ServiceError::Driver {
                entity: entity_id.into(),
                reason: format!(
                    "strip `{}` is offline (tele/{}/LWT = Offline): POWER{n} {word} not sent",
                    self.cfg.name, self.cfg.topic
                ),
            });
        }
        let topic = payload::command_topic(&self.cfg.topic, n);
        tracing::info!("strip `{}`: {topic} {word}", self.cfg.name);
        // The switch's state follows the strip's answer (stat/…/RESULT),
        // not the command: a relay that did not switch is not shown on.
        self.ctx
            .link
            .publish(&topic, word, false)
            .await
            .map_err(|e| ServiceError::Driver {
                entity: entity_id.into(),
                reason: format!("{e:#}"),
            })
    }

    fn on_stat(&mut self, msg: &Message) {
        let Some(last) = msg.topic.rsplit('/').next() else {
            return;
        };
        if last == "RESULT" {
            self.on_relays(msg);
        } else if last.starts_with("POWER") {
            let parsed = payload::relay_of_topic(last, self.cfg.outlets)
                .and_then(|n| Ok((n, payload::parse_on_off(last, &msg.text())?)));
            match parsed {
                Ok(relay) => self.apply_relays(&[relay]),
                Err(e) => self.warn(msg, &e),
            }
        }
        // Other stat topics (STATUS…, answers to other commands): not ours.
    }

    fn on_relays(&mut self, msg: &Message) {
        match payload::parse_relays(&msg.payload, self.cfg.outlets) {
            Ok(relays) => self.apply_relays(&relays),
            Err(e) => self.warn(msg, &e),
        }
    }

    fn apply_relays(&mut self, relays: &[(usize, bool)]) {
        if relays.is_empty() {
            return;
        }
        let mut changed = false;
        for &(n, on) in relays {
            changed |= self.relays[n - 1] != Some(on);
            self.relays[n - 1] = Some(on);
            let id = crate::entity::entity_id_for(
                crate::entity::Component::Switch,
                &self.cfg.id,
                &outlets::switch_key(n),
            );
            let _ = self
                .ctx
                .store
                .set_state(&id, if on { "on" } else { "off" }, Map::new());
        }
        // An estimate depends on which outlets are on.
        if changed
            && self.cfg.meter == MeterMode::Total
            && let Some(r) = self.reading.clone()
        {
            let _ = self.publish_meters(&r);
        }
    }

    fn on_sensor(&mut self, msg: &Message) {
        let reading = match payload::parse_sensor(&msg.payload) {
            Ok(Some(r)) => r,
            Ok(None) => return, // a SENSOR of other sensors
            Err(e) => return self.warn(msg, &e),
        };
        match self.publish_meters(&reading) {
            Ok(()) => self.reading = Some(reading),
            Err(e) => self.warn(msg, &e),
        }
    }

    fn publish_meters(&mut self, r: &EnergyReading) -> Result<(), payload::PayloadError> {
        let figures = outlets::outlet_figures(&self.cfg, r, &self.relays, &mut self.estimate)?;
        let mut attrs = Map::new();
        if self.cfg.meter == MeterMode::Total {
            attrs.insert("estimated".into(), json!(ESTIMATE_NOTE));
        }
        for (i, f) in figures.iter().enumerate() {
            let values = [(Some(f.power_w), 1), (f.current_a, 3), (f.energy_wh, 1)];
            for ((key, ..), (value, decimals)) in SENSORS.iter().zip(values) {
                let Some(v) = value else { continue };
                let id = crate::entity::entity_id_for(
                    crate::entity::Component::Sensor,
                    &self.cfg.id,
                    &format!("outlet{}_{key}", i + 1),
                );
                let _ = self
                    .ctx
                    .store
                    .set_state(&id, format_number(v, decimals), attrs.clone());
            }
        }
        Ok(())
    }

    async fn on_lwt(&mut self, msg: &Message) {
        match msg.text().trim() {
            "Online" => {
                if self.offline {
                    tracing::info!("strip `{}` is online again", self.cfg.name);
                }
                self.offline = false;
                self.ctx.store.set_availability(&self.cfg.id, true);
                // Relays may have changed while it was away (power cut:
                // Tasmota's PowerOnState).
                self.ask_state().await;
            }
            "Offline" => {
                tracing::warn!(
                    "strip `{}` is offline (tele/{}/LWT): its outlets are unavailable",
                    self.cfg.name,
                    self.cfg.topic
                );
                self.offline = true;
                self.ctx.store.set_availability(&self.cfg.id, false);
            }
            other => self.warn(msg, &format!("expected Online or Offline, got `{other}`")),
        }
    }
}
