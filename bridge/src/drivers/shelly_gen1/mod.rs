//! Shelly Gen1 devices (Plug S, 1PM, EM, and kin) over their HTTP API and,
//! with `mqtt_id`, their MQTT API (`[[shelly_gen1]]`, keys in [`config`]).
//!
//! | transport | reads | writes | offline when |
//! |---|---|---|---|
//! | HTTP ([`http`]) | `GET /shelly` once, `GET /status` every `poll_interval_s` | `GET /relay/<n>?turn=on\|off\|toggle`, confirmed by the `ison` it answers | 3 requests in a row fail |
//! | MQTT ([`mqtt`], `mqtt_id` set) | everything under `shellies/<mqtt_id>/` as it is pushed; `GET /status` only when push has been silent for `poll_interval_s` (fallback) | `on`/`off`/`toggle` on `shellies/<mqtt_id>/relay/<n>/command`, confirmed by the echoed `relay/<n>` within [`CONFIRM_TIMEOUT`] (at once when the relay already reads so) | `online` = `false` (the device's last will), or 3 fallback polls fail |
//!
//! Entities, created as the device shows what it has (its `/status`
//! arrays, or the channels it pushes; at most 4 relays, 4 EM channels):
//! per relay `n`, `switch.<id>_relay<n>`; per relay meter,
//! `sensor.<id>_relay<n>_power` (W, `measurement`),
//! `sensor.<id>_relay<n>_energy` (Wh, `total_increasing`) and the device's
//! own counter since boot `sensor.<id>_relay<n>_device_counter` (Wh,
//! diagnostic); per EM channel `i`, `sensor.<id>_emeter<i>_power` (W, −
//! when returning), `_voltage` (V), `_energy` and `_energy_returned` (Wh,
//! `total_increasing`) with their device counters (`_device_total`,
//! `_device_returned`). The energy totals never go backwards: [`energy`]
//! continues them across the device's counter resets and, from the
//! recorder's last values, across the bridge's restarts.
//!
//! A malformed answer or message (not JSON, not UTF-8, a wrong type, a
//! value out of range: ±100 kW, 0–1000 V, 0–1 GWh) is logged through the
//! throttled bad-input warnings with the device id, the URL or topic, the
//! field and what was expected, and ignored: the last good state stays.

pub mod config;
pub mod energy;
pub mod http;
pub mod mqtt;

pub use config::ShellyGen1Config;

use super::DriverContext;
use crate::broker::Message;
use crate::entity::{
    Component, Device, DriverCommand, EntitySpec, SafetyEnvelope, ServiceError, entity_id_for,
    format_number,
};
use crate::logging::Throttle;
use energy::{Meter, Reading};
use http::{EmeterReading, Gen1Client, HttpError, MeterReading, Status};
use mqtt::{EmeterField, Push};
use serde_json::Map;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const OWNER: &str = "shelly_gen1";

use super::FAILURES_BEFORE_OFFLINE;

/// How long a command sent over MQTT waits for the device's echo (wall
/// time): a Gen1 device publishes its relay within a few hundred ms.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// The entity of relay `n`.
pub fn switch_entity(device: &str, n: usize) -> String {
    entity_id_for(Component::Switch, device, &format!("relay{n}"))
}

/// A sensor of relay `n` (`power`, `energy`, `device_counter`).
pub fn relay_sensor(device: &str, n: usize, key: &str) -> String {
    entity_id_for(Component::Sensor, device, &format!("relay{n}_{key}"))
}

/// A sensor of EM channel `i` (`power`, `voltage`, `energy`,
/// `energy_returned`, `device_total`, `device_returned`).
pub fn emeter_sensor(device: &str, i: usize, key: &str) -> String {
    entity_id_for(Component::Sensor, device, &format!("emeter{i}_{key}"))
}

/// Shelly's Gen1 type codes, as people know the devices.
fn model_name(code: &str) -> String {
    match code {
        "SHPLG-S" => "Plug S".into(),
        "SHPLG-1" | "SHPLG2-1" => "Plug".into(),
        "SHSW-PM" => "1PM".into(),
        "SHSW-1" => "1".into(),
        "SHSW-25" => "2.5".into(),
        "SHEM" => "EM".into(),
        "SHEM-3" => "3EM".into(),
        other => other.into(),
    }
}

struct Plug {
    cfg: ShellyGen1Config,
    ctx: DriverContext,
    client: Gen1Client,
    /// `shellies/<mqtt_id>` when push is on.
    base_topic: Option<String>,
    commands_tx: mpsc::Sender<DriverCommand>,
    /// Switch entity id → relay index.
    switches: HashMap<String, usize>,
    relays: HashMap<usize, bool>,
    /// Relay meters with their entities, and their energy totals.
    meters: HashMap<usize, Meter>,
    /// EM channels with their entities; (channel, `total`|`returned`).
    emeters: HashSet<usize>,
    em_totals: HashMap<(usize, &'static str), Meter>,
    offline: Option<String>,
    failures: u32,
    named: bool,
    /// Bridge clock ms of the last message pushed or poll answered.
    last_heard_ms: i64,
    /// `/status` `uptime` (s) of the last poll: lower next time = a reboot.
    uptime_s: Option<f64>,
    bad_input: Arc<Throttle>,
}

pub fn spawn(cfg: ShellyGen1Config, ctx: &DriverContext) -> anyhow::Result<JoinHandle<()>> {
    ctx.store.upsert_device(OWNER, device(&cfg, None))?;
    let (tx, commands) = mpsc::channel::<DriverCommand>(16);
    let push = match &cfg.mqtt_id {
        Some(id) => Some(ctx.link.subscribe(&format!("{}/#", mqtt::base(id)))?),
        None => None,
    };
    let plug = Plug::new(cfg, ctx, tx);
    Ok(tokio::spawn(run(plug, push, commands)))
}

fn device(cfg: &ShellyGen1Config, info: Option<&http::DeviceInfo>) -> Device {
    Device {
        id: cfg.id.clone(),
        name: cfg.name.clone(),
        manufacturer: "Shelly".into(),
        model: info.map_or_else(|| "Gen1".into(), |i| model_name(&i.model)),
        sw_version: info.and_then(|i| i.fw.clone()),
        via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
    }
}

async fn recv(push: &mut Option<mpsc::Receiver<Message>>) -> Option<Message> {
    match push {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn run(
    mut plug: Plug,
    mut push: Option<mpsc::Receiver<Message>>,
    mut commands: mpsc::Receiver<DriverCommand>,
) {
    let mut shutdown = plug.ctx.shutdown.clone();
    plug.poll(&mut push).await;
    if let Some(id) = plug.cfg.mqtt_id.clone() {
        // The device answers with its announce and its whole state.
        plug.ask(&id, "announce").await;
        plug.ask(&id, "update").await;
    }
    loop {
        let interval_ms = plug.cfg.poll_interval_s * 1000.0;
        let due_ms = if plug.base_topic.is_some() {
            let since = (plug.ctx.clock.now_ms() - plug.last_heard_ms) as f64;
            (interval_ms - since).max(0.0)
        } else {
            interval_ms
        };
        let wait = plug.ctx.clock.sleep_ms(due_ms);
        tokio::select! {
            Some(cmd) = commands.recv() => {
                if cmd.reply.is_closed() {
                    continue; // the caller gave up (timed out): do not act late
                }
                let result = plug.execute(&cmd, &mut push).await;
                let _ = cmd.reply.send(result);
            }
            Some(msg) = recv(&mut push) => plug.on_push(&msg).await,
            _ = wait => {
                let silent = (plug.ctx.clock.now_ms() - plug.last_heard_ms) as f64 >= interval_ms;
                if plug.base_topic.is_none() || silent {
                    plug.poll(&mut push).await;
                }
            }
            _ = shutdown.wait() => break,
        }
    }
}

impl Plug {
    fn new(cfg: ShellyGen1Config, ctx: &DriverContext, tx: mpsc::Sender<DriverCommand>) -> Plug {
        Plug {
            client: Gen1Client::new(&cfg.base_url()),
            base_topic: cfg.mqtt_id.as_deref().map(mqtt::base),
            cfg,
            ctx: ctx.clone(),
            commands_tx: tx,
            switches: HashMap::new(),
            relays: HashMap::new(),
            meters: HashMap::new(),
            emeters: HashSet::new(),
            em_totals: HashMap::new(),
            offline: None,
            failures: 0,
            named: false,
            last_heard_ms: i64::MIN / 2,
            uptime_s: None,
            bad_input: Throttle::new("bad input"),
        }
    }

    /// A malformed HTTP answer from `url`, throttled per URL.
    fn warn(&self, url: &str, e: &dyn std::fmt::Display, payload: &[u8]) {
        if self.bad_input.admit(url) {
            tracing::warn!(
                "shelly_gen1 `{}` GET {url}: {e} (body `{}`); ignored, last good state kept",
                self.cfg.id,
                super::excerpt(payload)
            );
        }
    }

    /// A malformed MQTT message (the error names its topic), throttled
    /// per topic.
    fn warn_push(&self, topic: &str, e: &dyn std::fmt::Display, payload: &[u8]) {
        if self.bad_input.admit(topic) {
            tracing::warn!(
                "shelly_gen1 `{}` MQTT {e} (payload `{}`); ignored, last good state kept",
                self.cfg.id,
                super::excerpt(payload)
            );
        }
    }

    async fn ask(&self, mqtt_id: &str, what: &str) {
        let topic = mqtt::device_command_topic(mqtt_id);
        if let Err(e) = self.ctx.link.publish(&topic, what, false).await {
            tracing::warn!("Shelly `{}`: cannot publish {topic}: {e:#}", self.cfg.name);
        }
    }

    fn heard(&mut self) {
        self.last_heard_ms = self.ctx.clock.now_ms();
    }

    /// Online: entities available again. Offline (`why` says how we know):
    /// every entity `unavailable`, commands refused.
    fn set_offline(&mut self, why: Option<String>) {
        match (&self.offline, &why) {
            (Some(_), None) => tracing::info!("Shelly `{}` is online again", self.cfg.name),
            (None, Some(w)) => tracing::warn!(
                "Shelly `{}` is offline ({w}): its entities are unavailable",
                self.cfg.name
            ),
            _ => {}
        }
        self.ctx.store.set_availability(&self.cfg.id, why.is_none());
        self.offline = why;
    }

    // ---- entities ----

    fn sensor(&self, key: &str, name: &str, class: &str, unit: &str, state_class: &str) {
        let mut spec = EntitySpec::new(&self.cfg.id, key, Component::Sensor)
            .named(name)
            .class(class);
        spec = if state_class.is_empty() {
            let mut s = spec.diagnostic();
            s.unit = Some(unit.into());
            s
        } else {
            spec.measured(unit, state_class)
        };
        if let Err(e) = self.ctx.store.upsert_entity(spec) {
            tracing::warn!("Shelly `{}`: {key}: {e}", self.cfg.name);
        }
    }

    fn ensure_relay(&mut self, n: usize) {
        let id = switch_entity(&self.cfg.id, n);
        if self.switches.contains_key(&id) {
            return;
        }
        let spec = EntitySpec::new(&self.cfg.id, &format!("relay{n}"), Component::Switch)
            .named(&format!("Relay {n}"))
            .class("outlet");
        if let Err(e) = self.ctx.store.upsert_entity(spec) {
            tracing::warn!("Shelly `{}`: relay {n}: {e}", self.cfg.name);
            return;
        }
        let envelope = SafetyEnvelope {
            min_off_s: self.cfg.min_off_s,
            ..Default::default()
        };
        self.ctx
            .router
            .register(&id, self.commands_tx.clone(), envelope);
        self.switches.insert(id, n);
    }

    /// The last recorded value of `entity_id` (the recorder's, when it runs).
    fn recorded(&self, entity_id: &str) -> Option<f64> {
        let now = self.ctx.clock.now_ms();
        crate::entity::restore::last_recorded(&self.ctx.store, entity_id, now)
    }

    fn ensure_meter(&mut self, n: usize) {
        if self.meters.contains_key(&n) {
            return;
        }
        self.sensor(
            &format!("relay{n}_power"),
            &format!("Relay {n} power"),
            "power",
            "W",
            "measurement",
        );
        self.sensor(
            &format!("relay{n}_energy"),
            &format!("Relay {n} energy"),
            "energy",
            "Wh",
            "total_increasing",
        );
        self.sensor(
            &format!("relay{n}_device_counter"),
            &format!("Relay {n} device counter"),
            "energy",
            "Wh",
            "",
        );
        let id = &self.cfg.id;
        let meter = Meter::resume(
            self.recorded(&relay_sensor(id, n, "energy")),
            self.recorded(&relay_sensor(id, n, "device_counter")),
        );
        self.meters.insert(n, meter);
    }

    fn ensure_emeter(&mut self, i: usize) {
        if !self.emeters.insert(i) {
            return;
        }
        let ch = format!("Channel {}", i + 1);
        self.sensor(
            &format!("emeter{i}_power"),
            &format!("{ch} power"),
            "power",
            "W",
            "measurement",
        );
        self.sensor(
            &format!("emeter{i}_voltage"),
            &format!("{ch} voltage"),
            "voltage",
            "V",
            "measurement",
        );
        for (what, total, device, label) in [
            ("total", "energy", "device_total", "energy"),
            (
                "returned",
                "energy_returned",
                "device_returned",
                "energy returned",
            ),
        ] {
            self.sensor(
                &format!("emeter{i}_{total}"),
                &format!("{ch} {label}"),
                "energy",
                "Wh",
                "total_increasing",
            );
            self.sensor(
                &format!("emeter{i}_{device}"),
                &format!("{ch} device {label}"),
                "energy",
                "Wh",
                "",
            );
            let id = &self.cfg.id;
            let meter = Meter::resume(
                self.recorded(&emeter_sensor(id, i, total)),
                self.recorded(&emeter_sensor(id, i, device)),
            );
            self.em_totals.insert((i, what), meter);
        }
    }

    // ---- states ----

    fn set(&self, entity_id: &str, value: String) {
        let _ = self.ctx.store.set_state(entity_id, value, Map::new());
    }

    fn apply_relay(&mut self, n: usize, on: bool) {
        self.ensure_relay(n);
        self.relays.insert(n, on);
        self.set(
            &switch_entity(&self.cfg.id, n),
            if on { "on" } else { "off" }.into(),
        );
    }

    fn apply_power(&mut self, n: usize, w: f64) {
        self.ensure_meter(n);
        self.set(&relay_sensor(&self.cfg.id, n, "power"), format_number(w, 2));
    }

    fn apply_counter(&mut self, n: usize, counter_wh: f64) {
        self.ensure_meter(n);
        let id = self.cfg.id.clone();
        let Some(meter) = self.meters.get_mut(&n) else {
            return;
        };
        let total = match meter.update(counter_wh) {
            Reading::Total(t) => t,
            Reading::Reset(t) => {
                tracing::info!(
                    "Shelly `{}` relay {n}: the device's energy counter restarted (reboot?); the total continues from {} Wh",
                    self.cfg.name,
                    format_number(t, 2)
                );
                t
            }
            Reading::Stale => return,
        };
        self.set(
            &relay_sensor(&id, n, "device_counter"),
            format_number(counter_wh, 2),
        );
        self.set(&relay_sensor(&id, n, "energy"), format_number(total, 2));
    }

    fn apply_em_total(&mut self, i: usize, what: &'static str, device_wh: f64) {
        self.ensure_emeter(i);
        let id = self.cfg.id.clone();
        let (total_key, device_key) = if what == "total" {
            ("energy", "device_total")
        } else {
            ("energy_returned", "device_returned")
        };
        let Some(meter) = self.em_totals.get_mut(&(i, what)) else {
            return;
        };
        let total = match meter.update(device_wh) {
            Reading::Total(t) | Reading::Reset(t) => t,
            Reading::Stale => return,
        };
        self.set(
            &emeter_sensor(&id, i, device_key),
            format_number(device_wh, 2),
        );
        self.set(&emeter_sensor(&id, i, total_key), format_number(total, 2));
    }

    fn apply_emeter(&mut self, i: usize, field: EmeterField) {
        self.ensure_emeter(i);
        let id = self.cfg.id.clone();
        match field {
            EmeterField::PowerW(w) => {
                self.set(&emeter_sensor(&id, i, "power"), format_number(w, 2))
            }
            EmeterField::VoltageV(v) => {
                self.set(&emeter_sensor(&id, i, "voltage"), format_number(v, 1))
            }
            EmeterField::TotalWh(wh) => self.apply_em_total(i, "total", wh),
            EmeterField::ReturnedWh(wh) => self.apply_em_total(i, "returned", wh),
        }
    }

    fn apply_status(&mut self, s: &Status) {
        if let Some(up) = s.uptime_s {
            if self.uptime_s.is_some_and(|before| up < before) {
                tracing::info!(
                    "Shelly `{}`: uptime went down ({} → {up} s): the device rebooted; its energy counters start again",
                    self.cfg.name,
                    self.uptime_s.unwrap_or_default()
                );
                for m in self.meters.values_mut().chain(self.em_totals.values_mut()) {
                    m.rebooted();
                }
            }
            self.uptime_s = Some(up);
        }
        for (n, on) in s.relays.iter().enumerate() {
            self.apply_relay(n, *on);
        }
        for (n, m) in s.meters.iter().enumerate() {
            if let Some(MeterReading {
                power_w,
                counter_wh,
            }) = *m
            {
                self.apply_power(n, power_w);
                self.apply_counter(n, counter_wh);
            }
        }
        for (i, m) in s.emeters.iter().enumerate() {
            if let Some(EmeterReading {
                power_w,
                voltage_v,
                total_wh,
                returned_wh,
            }) = *m
            {
                self.apply_emeter(i, EmeterField::PowerW(power_w));
                self.apply_emeter(i, EmeterField::VoltageV(voltage_v));
                self.apply_emeter(i, EmeterField::TotalWh(total_wh));
                self.apply_emeter(i, EmeterField::ReturnedWh(returned_wh));
            }
        }
    }

    // ---- HTTP ----

    fn failed(&mut self, e: &HttpError) {
        self.failures += 1;
        tracing::warn!("Shelly `{}`: {e}", self.cfg.name);
        if self.failures == FAILURES_BEFORE_OFFLINE {
            self.set_offline(Some(format!(
                "{} requests in a row failed, last: {e}",
                self.failures
            )));
        }
    }

    fn answered(&mut self) {
        self.failures = 0;
        self.heard();
        if self.offline.is_some() {
            self.set_offline(None);
        }
    }

    /// `GET /shelly` (until it answered once), then `GET /status`.
    async fn poll(&mut self, push: &mut Option<mpsc::Receiver<Message>>) {
        if !self.named {
            match self.client.get("/shelly").await {
                Ok(body) => match http::parse_shelly(&body) {
                    Ok(info) => {
                        self.named = true;
                        let d = device(&self.cfg, Some(&info));
                        tracing::info!(
                            "Shelly `{}` is a Gen1 {} ({}, firmware {})",
                            self.cfg.name,
                            d.model,
                            info.mac,
                            d.sw_version.as_deref().unwrap_or("?")
                        );
                        let _ = self.ctx.store.upsert_device(OWNER, d);
                    }
                    Err(e) => self.warn(&self.client.url("/shelly"), &e, &body),
                },
                Err(e) => return self.failed(&e),
            }
        }
        match self.client.get("/status").await {
            Ok(body) => {
                self.answered();
                match http::parse_status(&body) {
                    Ok(s) => self.apply_polled(&s, push).await,
                    Err(e) => self.warn(&self.client.url("/status"), &e, &body),
                }
            }
            Err(e) => self.failed(&e),
        }
    }

    /// A `/status` answer, after the pushed messages already queued: they
    /// were published before the answer (the device is one sender), so
    /// taken after it their older counters would read as a drop, and a
    /// drop over [`energy::STALE_WH`] as a reset (a whole counter added:
    /// seen when a stalled task found the poll timer and queued pushes
    /// ready together, and at start, where pushes queue during the first
    /// poll). A message arriving after the answer is newer, or in flight
    /// for milliseconds (a drop under `STALE_WH`: stale, ignored).
    async fn apply_polled(&mut self, s: &Status, push: &mut Option<mpsc::Receiver<Message>>) {
        if let Some(rx) = push.as_mut() {
            while let Ok(msg) = rx.try_recv() {
                self.on_push(&msg).await;
            }
        }
        self.apply_status(s);
    }

    // ---- MQTT ----

    async fn on_push(&mut self, msg: &Message) {
        let Some(base) = self.base_topic.clone() else {
            return;
        };
        let push = match mqtt::parse(&base, &msg.topic, &msg.payload) {
            Ok(p) => p,
            Err(e) => return self.warn_push(&msg.topic, &e, &msg.payload),
        };
        match push {
            Push::Online(false) => {
                self.set_offline(Some(format!("{} = false", msg.topic)));
                return;
            }
            Push::Online(true) => {
                self.heard();
                self.set_offline(None);
                // Relays may have changed while it was away.
                if let Some(id) = self.cfg.mqtt_id.clone() {
                    self.ask(&id, "update").await;
                }
                return;
            }
            Push::Other => return,
            _ => {}
        }
        // Anything the device itself publishes live means it is there; a
        // retained message is the broker's memory (maybe hours old): its
        // value is shown, but it neither delays the fallback poll nor
        // undoes `online` = false.
        if !msg.retain {
            self.heard();
            if self.offline.is_some() {
                self.set_offline(None);
            }
        }
        match push {
            Push::Relay { n, on } => self.apply_relay(n, on),
            Push::PowerW { n, w } => self.apply_power(n, w),
            Push::CounterWh { n, wh } => self.apply_counter(n, wh),
            Push::Emeter { i, field } => self.apply_emeter(i, field),
            Push::Announce | Push::Online(_) | Push::Other => {}
        }
    }

    // ---- commands ----

    async fn execute(
        &mut self,
        cmd: &DriverCommand,
        push: &mut Option<mpsc::Receiver<Message>>,
    ) -> Result<(), ServiceError> {
        let fail = |reason: String| ServiceError::Driver {
            entity: cmd.entity_id.clone(),
            reason,
        };
        let Some(&n) = self.switches.get(&cmd.entity_id) else {
            return Err(fail(format!("not a relay of Shelly `{}`", self.cfg.id)));
        };
        let (turn, expect) = match cmd.service.as_str() {
            "turn_on" => ("on", Some(true)),
            "turn_off" => ("off", Some(false)),
            "toggle" => ("toggle", self.relays.get(&n).map(|on| !on)),
            other => {
                return Err(ServiceError::UnknownService("switch".into(), other.into()));
            }
        };
        if let Some(why) = &self.offline {
            return Err(fail(format!(
                "Shelly `{}` is offline ({why}): relay {n} {turn} not sent",
                self.cfg.name
            )));
        }
        // The bridge believes the relay is already so: over MQTT a Gen1
        // device need not publish an unchanged relay, so no echo would come,
        // and a stale belief (a lost message) would make the command a
        // silent no-op. HTTP `GET /relay/<n>?turn=` is sent instead: the
        // device answers with the relay's state (its own word, at once), it
        // needs no new topic, and a Gen1 device serves HTTP beside MQTT.
        let already = expect.is_some() && self.relays.get(&n).copied() == expect;
        match (&self.cfg.mqtt_id, push.as_mut()) {
            (Some(id), Some(rx)) if !already => {
                let topic = mqtt::command_topic(id, n);
                tracing::info!("Shelly `{}`: {topic} {turn}", self.cfg.name);
                self.ctx
                    .link
                    .publish(&topic, turn, false)
                    .await
                    .map_err(|e| fail(format!("{topic} {turn}: {e:#}")))?;
                let deadline = tokio::time::Instant::now() + CONFIRM_TIMEOUT;
                loop {
                    let msg = match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(m)) => m,
                        Ok(None) => return Err(fail("the MQTT link is closed".into())),
                        Err(_) => {
                            return Err(fail(format!(
                                "{topic} {turn}: the device did not confirm within {} s (relay {n} reads {})",
                                CONFIRM_TIMEOUT.as_secs(),
                                self.relays.get(&n).map_or("unknown", |on| if *on {
                                    "on"
                                } else {
                                    "off"
                                })
                            )));
                        }
                    };
                    self.on_push(&msg).await;
                    let base = self.base_topic.clone().unwrap_or_default();
                    if let Ok(Push::Relay { n: m, on }) =
                        mqtt::parse(&base, &msg.topic, &msg.payload)
                        && m == n
                        && !msg.retain
                        && expect.is_none_or(|want| want == on)
                    {
                        return Ok(());
                    }
                }
            }
            _ => {
                let path = format!("/relay/{n}?turn={turn}");
                tracing::info!("Shelly `{}`: GET {path}", self.cfg.name);
                let body = match self.client.get(&path).await {
                    Ok(b) => b,
                    Err(e) => {
                        self.failed(&e);
                        return Err(fail(e.to_string()));
                    }
                };
                self.answered();
                let on = serde_json::from_slice(&body)
                    .map_err(|e| http::BadField::NotJson(e.to_string()))
                    .and_then(|v| http::parse_relay(&format!("relay/{n}"), &v))
                    .map_err(|e| {
                        self.warn(&self.client.url(&path), &e, &body);
                        fail(format!("GET {path}: {e}"))
                    })?;
                self.apply_relay(n, on);
                match expect {
                    Some(want) if want != on => Err(fail(format!(
                        "GET {path}: the device answers relay {n} is {}",
                        if on { "on" } else { "off" }
                    ))),
                    _ => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::link::test_link;
    use crate::broker::{BrokerAddress, EmbeddedBroker};
    use crate::clock::Clock;
    use crate::entity::{EntityStore, ServiceRouter};
    use crate::shutdown::ShutdownTrigger;

    /// A plug `desk` (MQTT id `desk`) on a dead HTTP address, its push
    /// channel fed by the test.
    async fn plug() -> (
        Plug,
        mpsc::Sender<Message>,
        Option<mpsc::Receiver<Message>>,
        (EmbeddedBroker, ShutdownTrigger),
    ) {
        let port = EmbeddedBroker::free_port();
        let broker = EmbeddedBroker::start(std::net::Ipv4Addr::LOCALHOST.into(), port).unwrap();
        let link = test_link(port, "t-gen1").await;
        let store = EntityStore::new(Clock::real());
        let (trigger, shutdown) = crate::shutdown::channel();
        let ctx = DriverContext {
            store: store.clone(),
            router: ServiceRouter::new(store.clone()),
            link,
            broker: BrokerAddress::local(port),
            clock: Clock::real(),
            shutdown,
            forecasts: Arc::default(),
            alerts: None,
        };
        let cfg: ShellyGen1Config = toml::from_str(
            "id = \"desk\"\nname = \"Desk\"\nurl = \"http://127.0.0.1:9\"\nmqtt_id = \"desk\"\n",
        )
        .unwrap();
        store.upsert_device(OWNER, device(&cfg, None)).unwrap();
        let (tx, _commands) = mpsc::channel(1);
        let (push_tx, push_rx) = mpsc::channel(16);
        (
            Plug::new(cfg, &ctx, tx),
            push_tx,
            Some(push_rx),
            (broker, trigger),
        )
    }

    fn energy(wh: f64) -> Message {
        let wm = format!("{}", wh / WH_PER_WATT_MINUTE);
        Message::for_test("shellies/desk/relay/0/energy", &wm, false)
    }

    fn total(p: &Plug) -> String {
        p.ctx
            .store
            .get(&relay_sensor("desk", 0, "energy"))
            .unwrap()
            .state
    }

    use energy::WH_PER_WATT_MINUTE;

    /// The plugs demo's jump (807 Wh for 503): counters pushed before a
    /// poll's answer but taken after it read as a drop of more than
    /// STALE_WH, so as a reset.
    #[tokio::test]
    async fn counters_queued_before_a_poll_answer_are_taken_before_it() {
        let (mut p, push_tx, mut push, _keep) = plug().await;
        p.on_push(&energy(280.0)).await;
        assert_eq!(total(&p), "280");
        // The task stalled: two pushes queued, then the poll's answer.
        push_tx.send(energy(290.0)).await.unwrap();
        push_tx.send(energy(300.0)).await.unwrap();
        let polled = Status {
            relays: vec![true],
            meters: vec![Some(MeterReading {
                power_w: 2300.0,
                counter_wh: 304.0,
            })],
            emeters: vec![],
            uptime_s: Some(1000.0),
        };
        p.apply_polled(&polled, &mut push).await;
        // What the loop would take next.
        while let Ok(m) = push.as_mut().unwrap().try_recv() {
            p.on_push(&m).await;
        }
        assert_eq!(total(&p), "304", "no counter added twice");
        p.on_push(&energy(310.0)).await;
        assert_eq!(total(&p), "310");
    }

    #[tokio::test]
    async fn a_retained_message_after_the_will_neither_revives_the_plug_nor_counts_as_heard() {
        let (mut p, _push_tx, _push, _keep) = plug().await;
        p.on_push(&Message::for_test("shellies/desk/online", "false", true))
            .await;
        assert!(p.offline.is_some());
        let heard = p.last_heard_ms;
        p.on_push(&Message::for_test("shellies/desk/relay/0", "on", true))
            .await;
        p.on_push(&Message::for_test(
            "shellies/desk/relay/0/energy",
            "6000",
            true,
        ))
        .await;
        assert!(p.offline.is_some(), "retained: still offline");
        assert!(!p.ctx.store.device("desk").unwrap().1);
        assert_eq!(p.last_heard_ms, heard, "retained: not heard");
        // A live message is the device speaking.
        p.on_push(&Message::for_test("shellies/desk/relay/0", "on", false))
            .await;
        assert!(p.offline.is_none());
        assert!(p.last_heard_ms > heard);
    }
}
