//! Meross metered plugs (MSS310 family) over their local HTTP API
//! (`[[meross]]`; keys in [`config`]): signed JSON messages `POST`ed to
//! `http://<plug>/config` ([`http`]), their header, signature and payloads
//! in [`message`]. Meross publishes no local API document; the behaviour
//! follows the `meross_lan` Home Assistant integration (krahabb/meross_lan:
//! `merossclient/protocol/message.py`, `merossclient/httpclient.py`,
//! `merossclient/protocol/const.py`) and arandall/meross's protocol notes.
//!
//! At start, and after a refusal: `GET Appliance.System.Ability`. A plug
//! whose abilities list `Appliance.Encrypt.ECDHE` or `Appliance.Encrypt.Suite`
//! wants the encrypted LAN protocol (an ECDHE key exchange, then AES
//! payloads), which Hearth does not speak: it is refused (log line and
//! `binary_sensor.<id>_problem` on, saying so) and asked again with backoff.
//! Otherwise, every `poll_interval_s`:
//!
//! - `GET Appliance.System.All`: model (`hardware.type`), firmware, and the
//!   relay of `channel` (`digest.togglex[].onoff`) → `switch.<id>`;
//! - `GET Appliance.Control.Electricity` (if the plug lists it): `power` mW,
//!   `voltage` dV, `current` mA → `sensor.<id>_power` W, `_voltage` V,
//!   `_current` A (measurement);
//! - `GET Appliance.Control.ConsumptionX` (if listed): the device's daily
//!   Wh list → `sensor.<id>_energy_today` (Wh of the device's current day,
//!   attribute `date`; falls to 0 at the device's midnight) and
//!   `sensor.<id>_energy` (Wh counted since Hearth first read the plug,
//!   `total_increasing`: the growth of each day's value, a new day counted
//!   from 0). After a bridge restart the total continues from the
//!   recorder's last value (the first list read is then the new baseline:
//!   what the plug used while the bridge was down is not counted).
//!
//! `switch.turn_on`/`turn_off`/`toggle` → `SET Appliance.Control.ToggleX`
//! `{"togglex": {"channel", "onoff": 1|0}}`, then the state is read back.
//!
//! Errors:
//! - a request the plug refuses with error 5001 (its key is not `key`):
//!   "meross <id>: the device refused the signature: check `key`" in the
//!   log (once per episode) and in the problem entity's `error` attribute;
//!   retried after `poll_interval_s` × 2, 4, 8 … (at most 1 h), not at
//!   every poll;
//! - an answer that is not JSON, whose sign does not verify with `key`,
//!   whose fields are missing, of the wrong type or out of range (power
//!   above 30 kW, voltage above 500 V, current above 100 A, a day above
//!   720 kWh, negative values): a warning naming the device, the namespace
//!   and the field (throttled per device), the answer ignored, the last
//!   good states kept;
//! - no answer (refused connection, 5 s timeout, HTTP error) 3 polls in a
//!   row: the device's entities are unavailable until it answers again.

pub mod config;
pub mod http;
pub mod message;

pub use config::MerossConfig;

use super::DriverContext;
use crate::entity::{
    Component, Device, DriverCommand, EntitySpec, SafetyEnvelope, ServiceError, format_number,
};
use crate::logging::Throttle;
use http::{MerossClient, MerossError};
use message::{Day, ns};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const OWNER: &str = "meross";
use super::FAILURES_BEFORE_OFFLINE;
/// Longest wait between two attempts while the plug refuses Hearth.
const MAX_BACKOFF_S: f64 = 3600.0;

/// (key, name, device class, unit, decimals) of the electricity sensors.
const METERS: [(&str, &str, &str, &str, usize); 3] = [
    ("power", "Power", "power", "W", 1),
    ("voltage", "Voltage", "voltage", "V", 1),
    ("current", "Current", "current", "A", 3),
];

pub fn problem_entity(id: &str) -> String {
    crate::entity::entity_id_for(Component::BinarySensor, id, "problem")
}

pub fn switch_entity(id: &str) -> String {
    crate::entity::entity_id_for(Component::Switch, id, "switch")
}

/// Starts the driver of one plug.
pub fn spawn(cfg: MerossConfig, ctx: &DriverContext) -> anyhow::Result<JoinHandle<()>> {
    ctx.store.upsert_device(OWNER, device(&cfg, None))?;
    let mut switch = EntitySpec::new(&cfg.id, "switch", Component::Switch).class("outlet");
    switch.entity_id = switch_entity(&cfg.id);
    let switch_id = switch.entity_id.clone();
    ctx.store.upsert_entity(switch)?;
    ctx.store.upsert_entity(
        EntitySpec::new(&cfg.id, "problem", Component::BinarySensor)
            .named("Problem")
            .class("problem")
            .diagnostic(),
    )?;
    let (tx, mut commands) = mpsc::channel::<DriverCommand>(16);
    ctx.router.register(
        &switch_id,
        tx,
        SafetyEnvelope {
            min_off_s: cfg.min_off_s,
            ..Default::default()
        },
    );
    let mut plug = Plug {
        client: MerossClient::new(&cfg.base_url(), cfg.key()),
        cfg,
        ctx: ctx.clone(),
        bad_input: Throttle::new("bad input"),
        abilities: None,
        relay: None,
        failures: 0,
        refusal: None,
        refusals: 0,
        problem_known: false,
        energy: None,
    };
    let mut shutdown = ctx.shutdown.clone();
    Ok(tokio::spawn(async move {
        loop {
            plug.poll().await;
            let wait = plug.ctx.clock.sleep_ms(plug.next_wait_s() * 1000.0);
            tokio::select! {
                _ = wait => {}
                Some(cmd) = commands.recv() => {
                    if cmd.reply.is_closed() {
                        continue; // the caller gave up (timed out): do not act late
                    }
                    let result = plug.execute(&cmd.service).await;
                    let _ = cmd.reply.send(result);
                }
                _ = shutdown.wait() => break,
            }
        }
    }))
}

fn device(cfg: &MerossConfig, info: Option<&message::SystemAll>) -> Device {
    Device {
        id: cfg.id.clone(),
        name: cfg.name.clone(),
        manufacturer: "Meross".into(),
        model: info
            .and_then(|i| i.model.clone())
            .unwrap_or_else(|| "Smart plug".into()),
        sw_version: info.and_then(|i| i.firmware_version.clone()),
        via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
    }
}

fn energy_entity(id: &str) -> String {
    crate::entity::entity_id_for(Component::Sensor, id, "energy")
}

struct Plug {
    cfg: MerossConfig,
    ctx: DriverContext,
    client: MerossClient,
    bad_input: Arc<Throttle>,
    /// The namespaces the plug listed; `None` until it answered.
    abilities: Option<std::collections::BTreeSet<String>>,
    /// The relay as last read.
    relay: Option<bool>,
    /// Polls in a row without an answer.
    failures: u32,
    /// Why the plug refuses Hearth (wrong key, encrypted firmware).
    refusal: Option<String>,
    /// Attempts in a row that were refused (the backoff's exponent).
    refusals: u32,
    /// The problem entity has a state (off after the first good poll).
    problem_known: bool,
    /// `None` until the first consumption list (then resumed from the
    /// recorder).
    energy: Option<EnergyTotal>,
}

/// How one poll step ended when it did not succeed.
enum Stop {
    /// Stop this poll (no answer, or a refusal).
    Poll,
    /// This namespace's answer was bad; go on with the next.
    Skip,
}

impl Plug {
    fn id(&self) -> &str {
        &self.cfg.id
    }

    fn next_wait_s(&self) -> f64 {
        if self.refusal.is_some() {
            let factor = 2f64.powi(self.refusals.min(30) as i32);
            (self.cfg.poll_interval_s * factor).min(MAX_BACKOFF_S)
        } else {
            self.cfg.poll_interval_s
        }
    }

    async fn call(
        &self,
        method: &str,
        namespace: &str,
        payload: Value,
    ) -> Result<Value, MerossError> {
        // Wall time, as meross_lan signs (`int(time())`), whatever the
        // bridge's clock (a demo runs simulated time).
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.client.call(method, namespace, payload, ts).await
    }

    /// Sorts a failed call: no answer counts towards offline, a refusal
    /// raises the problem, a bad answer is logged and skipped.
    fn failed(&mut self, e: MerossError) -> Stop {
        match &e {
            MerossError::Transport { .. } => {
                self.failures += 1;
                tracing::warn!("meross `{}`: {e}", self.id());
                if self.failures == FAILURES_BEFORE_OFFLINE {
                    tracing::warn!(
                        "meross `{}` did not answer {} polls in a row: its entities are unavailable",
                        self.id(),
                        self.failures
                    );
                    self.ctx.store.set_availability(&self.cfg.id, false);
                }
                Stop::Poll
            }
            MerossError::Answer { .. } if e.is_sign_refused() => {
                self.answered();
                self.refuse(format!(
                    "meross {}: the device refused the signature: check `key` (given {})",
                    self.id(),
                    self.cfg.key().describe_origin()
                ));
                Stop::Poll
            }
            MerossError::Answer {
                namespace, error, ..
            } => {
                self.answered();
                self.bad(namespace, error.kind(), e.to_string());
                Stop::Skip
            }
        }
    }

    /// A malformed answer, throttled per device, namespace and field.
    fn bad(&self, namespace: &str, kind: &str, what: String) {
        if self
            .bad_input
            .admit(&format!("meross:{}:{namespace}:{kind}", self.cfg.id))
        {
            tracing::warn!(
                "meross `{}` {what}; ignored, the last good state is kept",
                self.id()
            );
        }
    }

    /// The plug answered (something): it is online.
    fn answered(&mut self) {
        if self.failures >= FAILURES_BEFORE_OFFLINE {
            tracing::info!("meross `{}` answers again", self.id());
        }
        self.failures = 0;
        self.ctx.store.set_availability(&self.cfg.id, true);
    }

    /// The plug will not talk to Hearth: problem on, backoff.
    fn refuse(&mut self, why: String) {
        self.refusals += 1;
        if self.refusal.as_deref() != Some(why.as_str()) {
            tracing::warn!(
                "{why}; asking again in {} s, then less and less often",
                self.cfg.poll_interval_s * 2.0
            );
            crate::entity::problem::raised(&self.ctx.store, &problem_entity(&self.cfg.id), &why);
            self.problem_known = true;
            self.refusal = Some(why);
        }
        // Ask for the abilities again next time (a firmware update).
        self.abilities = None;
    }

    fn accepted(&mut self) {
        let was = self.refusal.take();
        if let Some(was) = &was {
            tracing::info!(
                "meross `{}` accepts Hearth's requests again (was: {was})",
                self.id()
            );
        }
        self.refusals = 0;
        if !self.problem_known || was.is_some() {
            let now = self.ctx.clock.now_ms();
            crate::entity::problem::cleared(&self.ctx.store, &problem_entity(&self.cfg.id), now);
            self.problem_known = true;
        }
    }

    async fn poll(&mut self) {
        if self.abilities.is_none() && !self.identify().await {
            return;
        }
        match self.call("GET", ns::SYSTEM_ALL, json!({})).await {
            Ok(p) => {
                self.answered();
                match message::system_all(&p, self.cfg.channel) {
                    Ok(all) => {
                        self.accepted();
                        self.name_device(&all);
                        self.set_relay(all.relay);
                    }
                    Err(e) => self.bad(
                        ns::SYSTEM_ALL,
                        e.kind(),
                        format!("{} GET: {e}", ns::SYSTEM_ALL),
                    ),
                }
            }
            Err(e) => {
                if let Stop::Poll = self.failed(e) {
                    return;
                }
            }
        }
        let abilities = self.abilities.clone().unwrap_or_default();
        if abilities.contains(ns::ELECTRICITY) {
            let ask = json!({"electricity": {"channel": self.cfg.channel}});
            match self.call("GET", ns::ELECTRICITY, ask).await {
                Ok(p) => match message::electricity(&p, self.cfg.channel) {
                    Ok(e) => self.set_electricity(&e),
                    Err(e) => self.bad(
                        ns::ELECTRICITY,
                        e.kind(),
                        format!("{} GET: {e}", ns::ELECTRICITY),
                    ),
                },
                Err(e) => {
                    if let Stop::Poll = self.failed(e) {
                        return;
                    }
                }
            }
        }
        if abilities.contains(ns::CONSUMPTIONX) {
            match self.call("GET", ns::CONSUMPTIONX, json!({})).await {
                Ok(p) => match message::consumption(&p) {
                    Ok(days) => self.set_consumption(&days),
                    Err(e) => self.bad(
                        ns::CONSUMPTIONX,
                        e.kind(),
                        format!("{} GET: {e}", ns::CONSUMPTIONX),
                    ),
                },
                Err(e) => {
                    let _ = self.failed(e);
                }
            }
        }
    }

    /// `Appliance.System.Ability`: refuses an encrypted firmware, creates
    /// the meters the plug has. False when the poll cannot go on.
    async fn identify(&mut self) -> bool {
        let payload = match self.call("GET", ns::SYSTEM_ABILITY, json!({})).await {
            Ok(p) => p,
            Err(e) => {
                let _ = self.failed(e);
                return false;
            }
        };
        self.answered();
        let abilities = match message::abilities(&payload) {
            Ok(a) => a,
            Err(e) => {
                self.bad(
                    ns::SYSTEM_ABILITY,
                    e.kind(),
                    format!("{} GET: {e}", ns::SYSTEM_ABILITY),
                );
                return false;
            }
        };
        if let Some(namespace) = message::encryption(&abilities) {
            self.refuse(format!(
                "meross {}: the firmware requires the encrypted LAN protocol ({namespace} in {}), which Hearth does not speak",
                self.id(),
                ns::SYSTEM_ABILITY
            ));
            return false;
        }
        let store = &self.ctx.store;
        if abilities.contains(ns::ELECTRICITY) {
            for (key, name, class, unit, _) in METERS {
                let _ = store.upsert_entity(
                    EntitySpec::new(&self.cfg.id, key, Component::Sensor)
                        .named(name)
                        .class(class)
                        .measured(unit, "measurement"),
                );
            }
        }
        if abilities.contains(ns::CONSUMPTIONX) {
            for (key, name) in [("energy_today", "Energy today"), ("energy", "Energy")] {
                let _ = store.upsert_entity(
                    EntitySpec::new(&self.cfg.id, key, Component::Sensor)
                        .named(name)
                        .class("energy")
                        .measured("Wh", "total_increasing"),
                );
            }
        }
        self.abilities = Some(abilities);
        true
    }

    fn name_device(&mut self, all: &message::SystemAll) {
        let d = device(&self.cfg, Some(all));
        if self.ctx.store.device(&self.cfg.id).map(|(have, _)| have) != Some(Arc::new(d.clone())) {
            tracing::info!(
                "meross `{}` is a {} (firmware {})",
                self.id(),
                d.model,
                d.sw_version.as_deref().unwrap_or("?")
            );
            let _ = self.ctx.store.upsert_device(OWNER, d);
        }
    }

    fn set_relay(&mut self, on: bool) {
        self.relay = Some(on);
        let _ = self.ctx.store.set_state(
            &switch_entity(&self.cfg.id),
            if on { "on" } else { "off" },
            Map::new(),
        );
    }

    fn set_electricity(&self, e: &message::Electricity) {
        for ((key, .., decimals), v) in
            METERS
                .into_iter()
                .zip([e.power_w, e.voltage_v, e.current_a])
        {
            let id = crate::entity::entity_id_for(Component::Sensor, &self.cfg.id, key);
            let _ = self
                .ctx
                .store
                .set_state(&id, format_number(v, decimals), Map::new());
        }
    }

    fn set_consumption(&mut self, days: &[Day]) {
        let Some(today) = days.last() else { return };
        let store = &self.ctx.store;
        let today_id =
            crate::entity::entity_id_for(Component::Sensor, &self.cfg.id, "energy_today");
        let entity = energy_entity(&self.cfg.id);
        // Resumed (before today's value is overwritten): the recorder's
        // last total, and its last energy_today as the baseline of today.
        let energy = self.energy.get_or_insert_with(|| {
            let now = self.ctx.clock.now_ms();
            let last = |id: &str| crate::entity::restore::last_recorded(store, id, now);
            EnergyTotal {
                total_wh: last(&entity).unwrap_or(0.0),
                resumed_today_wh: last(&today_id),
                ..EnergyTotal::default()
            }
        });
        energy.update(days);
        let mut attrs = Map::new();
        attrs.insert("date".into(), today.date.clone().into());
        let _ = store.set_state(&today_id, format_number(today.wh, 0), attrs);
        let _ = store.set_state(&entity, format_number(energy.total_wh, 0), Map::new());
    }

    async fn execute(&mut self, service: &str) -> Result<(), ServiceError> {
        let entity = switch_entity(&self.cfg.id);
        let on = match service {
            "turn_on" => true,
            "turn_off" => false,
            "toggle" => !self.relay.unwrap_or(false),
            _ => {
                return Err(ServiceError::UnknownService(
                    "switch".into(),
                    service.into(),
                ));
            }
        };
        if let Some(why) = &self.refusal {
            return Err(ServiceError::Driver {
                entity,
                reason: why.clone(),
            });
        }
        let payload = json!({"togglex": {"channel": self.cfg.channel, "onoff": u8::from(on)}});
        tracing::info!("meross `{}`: SET {} {payload}", self.id(), ns::TOGGLEX);
        if let Err(e) = self.call("SET", ns::TOGGLEX, payload).await {
            let reason = format!("meross {}: {e}", self.id());
            let _ = self.failed(e);
            return Err(ServiceError::Driver { entity, reason });
        }
        // Read back rather than assume.
        self.poll().await;
        Ok(())
    }
}

/// `sensor.<id>_energy`: Wh counted from the device's daily values.
#[derive(Debug, Default)]
struct EnergyTotal {
    total_wh: f64,
    /// Each day's value as last read (the device's list, about a month).
    seen: BTreeMap<String, f64>,
    /// The recorder's last `energy_today` (Wh) before a restart: the
    /// first list's newest day counts its growth from it.
    resumed_today_wh: Option<f64>,
}

impl EnergyTotal {
    /// Adds what the days grew since last read; a day not seen before
    /// and newer than every seen day counts from 0. The first list read
    /// is the baseline, except that its newest day grows from the resumed
    /// `energy_today` when that is not above it. (The recorded value may
    /// be of the day before, the date not being recorded: then less than
    /// what was used is counted, never more.)
    fn update(&mut self, days: &[Day]) {
        if self.seen.is_empty() {
            self.seen = days.iter().map(|d| (d.date.clone(), d.wh)).collect();
            let (Some(was), Some(today)) = (self.resumed_today_wh.take(), days.last()) else {
                return;
            };
            if was <= today.wh {
                self.total_wh += today.wh - was;
            }
            return;
        }
        let newest = self.seen.keys().next_back().cloned().unwrap_or_default();
        for d in days {
            let grew = match self.seen.get(&d.date) {
                Some(prev) => (d.wh - prev).max(0.0),
                None if d.date > newest => d.wh,
                None => 0.0,
            };
            self.total_wh += grew;
            self.seen.insert(d.date.clone(), d.wh);
        }
        while self.seen.len() > 62 {
            self.seen.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, wh: f64) -> Day {
        Day {
            date: date.into(),
            wh,
        }
    }

    #[test]
    fn the_total_counts_growth_and_new_days() {
        let mut t = EnergyTotal::default();
        t.update(&[day("2026-12-06", 900.0), day("2026-12-07", 100.0)]);
        assert_eq!(t.total_wh, 0.0, "the first list is the baseline");
        t.update(&[day("2026-12-06", 900.0), day("2026-12-07", 220.0)]);
        assert_eq!(t.total_wh, 120.0);
        // Midnight: yesterday's last growth and the new day both count.
        t.update(&[day("2026-12-07", 250.0), day("2026-12-08", 30.0)]);
        assert_eq!(t.total_wh, 180.0);
        // A day going down (a device reset) adds nothing, and is followed.
        t.update(&[day("2026-12-08", 10.0)]);
        t.update(&[day("2026-12-08", 15.0)]);
        assert_eq!(t.total_wh, 185.0);
    }

    #[test]
    fn a_restart_counts_todays_growth_since_the_recorded_value() {
        let mut t = EnergyTotal {
            total_wh: 75.0,
            resumed_today_wh: Some(175.0),
            ..EnergyTotal::default()
        };
        t.update(&[day("2026-12-06", 900.0), day("2026-12-07", 190.0)]);
        assert_eq!(t.total_wh, 90.0, "15 Wh used while the bridge was down");
        // Recorded yesterday (900), today is a new, smaller count: baseline.
        let mut t = EnergyTotal {
            total_wh: 75.0,
            resumed_today_wh: Some(900.0),
            ..EnergyTotal::default()
        };
        t.update(&[day("2026-12-06", 900.0), day("2026-12-07", 30.0)]);
        assert_eq!(t.total_wh, 75.0);
    }
}
