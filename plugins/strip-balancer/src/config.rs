//! The plugin's JSON config and its checks. Every refusal names the item
//! (circuit, strip, outlet or user id) and what was expected, so a bad
//! circuit tree is fixed from the message alone.
//!
//! Units: currents in A, durations in s, battery levels in %.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// A circuit: a breaker-protected line. `parent` none = a root (the wall
/// supply); several roots are several independent supplies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitConfig {
    pub id: String,
    /// Rating of its breaker, A.
    pub max_current_a: f64,
    #[serde(default)]
    pub parent: Option<String>,
}

/// A power strip on a circuit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripConfig {
    pub id: String,
    pub circuit: String,
    /// Rating of the strip (its fuse or breaker), A.
    pub max_current_a: f64,
}

/// One outlet of a strip: its HA switch and its meter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutletConfig {
    /// The outlet's HA `switch` (or `light`, `input_boolean` …): `on`/`off`.
    pub switch: String,
    pub strip: String,
    /// Current sensor, A (preferred).
    #[serde(default)]
    pub current: Option<String>,
    /// Power sensor, W; used when there is no current sensor, divided by
    /// `voltage_v`.
    #[serde(default)]
    pub power: Option<String>,
    /// Never switched by the balancer (a lamp); its load still counts.
    #[serde(default)]
    pub always_on: bool,
    /// Who charges on it (a `users` id).
    #[serde(default)]
    pub user: Option<String>,
    /// Who holds it, claimed at runtime: a HA `select` whose state is a
    /// `users` id; `none`, `nobody`, `unknown`, `unavailable` or another
    /// id = an empty seat. Not with `user`.
    #[serde(default)]
    pub user_entity: Option<String>,
}

/// A laptop's owner and where its battery level comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub id: String,
    /// HA sensor with `device_class: battery`, state in %. None: "unknown need".
    #[serde(default)]
    pub battery: Option<String>,
    /// Charged enough at this level, %.
    #[serde(default = "default_target_pct")]
    pub target_pct: f64,
    /// `binary_sensor` that is `on` while the user is over their usage
    /// limit (the bridge's `binary_sensor.<user>_over_limit`): their
    /// outlets are kept off, `always_on` ones excepted.
    #[serde(default)]
    pub over_limit: Option<String>,
    /// When the user leaves: an entity whose state is an RFC 3339 time
    /// (a `sensor` with `device_class: timestamp`), or an `input_datetime`
    /// with date and time (read from its `timestamp` attribute). The
    /// balancer then charges to the target by then ([`crate::departure`]).
    #[serde(default)]
    pub departure: Option<String>,
}

/// Off-peak/peak behaviour from a tariff period sensor (the bridge's
/// `sensor.tariff_period`, `HP`/`HC`, bridge/src/feeds/tariff_driver.rs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TariffConfig {
    #[serde(default = "default_tariff_entity")]
    pub entity: String,
    /// States meaning off-peak.
    #[serde(default = "default_offpeak_states")]
    pub offpeak_states: Vec<String>,
    /// Off-peak: targets are raised to at least this, %.
    #[serde(default)]
    pub offpeak_target_pct: Option<f64>,
    /// Peak: targets are lowered to at most this, %.
    #[serde(default)]
    pub peak_target_pct: Option<f64>,
    /// Most outlets charging at once off-peak (none: no count limit).
    #[serde(default)]
    pub offpeak_max_parallel: Option<u32>,
    /// Most outlets charging at once in peak hours.
    #[serde(default)]
    pub peak_max_parallel: Option<u32>,
}

/// Outside opening hours, what is switched off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedOff {
    /// Every outlet that is not `always_on`.
    #[default]
    Switchable,
    /// Every outlet, `always_on` ones too.
    All,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub circuits: Vec<CircuitConfig>,
    pub strips: Vec<StripConfig>,
    pub outlets: Vec<OutletConfig>,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// An outlet switched on stays on at least this long, s (safety
    /// shedding and closing ignore it).
    #[serde(default = "default_min_on_s")]
    pub min_on_s: f64,
    /// An outlet switched off stays off at least this long, s.
    #[serde(default = "default_min_off_s")]
    pub min_off_s: f64,
    /// Draw assumed for an outlet just switched on until its meter has
    /// reported for `settle_s`, A (a 65–90 W laptop charger: 0.3–0.4 A at 230 V).
    #[serde(default = "default_assumed_current_a")]
    pub assumed_current_a: f64,
    /// How long after a switch-on the meter's reading is not trusted
    /// alone, s (Tasmota's and Shelly's reports follow within seconds).
    #[serde(default = "default_settle_s")]
    pub settle_s: f64,
    /// A meter not updated for this long counts as stale (full load, and
    /// its outlet is kept off), s. None (the default): only
    /// `unavailable`/missing/non-numeric meters are stale, because HA (and
    /// Hearth's store) does not move `last_updated` for an identical
    /// report, so a steady reading (every off outlet at 0 A) would look
    /// stale. The price: a meter that stops reporting but stays available
    /// keeps its last value, and a load rising behind it is not seen. Set
    /// it above the meter's report period, and only for meters whose
    /// reports change: Tasmota reports every `TelePeriod` (300 s by
    /// default) and on a change beyond `PowerDelta` when that is set.
    #[serde(default)]
    pub meter_timeout_s: Option<f64>,
    /// Voltage for power-only meters, V.
    #[serde(default = "default_voltage_v")]
    pub voltage_v: f64,
    /// A laptop that reached its target wants charge again only below
    /// target − this, % of battery (against relay chatter).
    #[serde(default = "default_resume_margin")]
    pub resume_margin_pct: f64,
    /// Priority gained per minute of waiting, % of battery (rotation).
    #[serde(default = "default_aging")]
    pub aging_pct_per_min: f64,
    /// A waiting laptop takes a running one's slot only when its priority
    /// is better by this much, % (against chatter).
    #[serde(default = "default_margin")]
    pub rotation_margin_pct: f64,
    /// Most outlets charging at once (none: limited by current only).
    #[serde(default)]
    pub max_parallel: Option<u32>,
    #[serde(default)]
    pub tariff: Option<TariffConfig>,
    /// Opening hours `binary_sensor` (`on` = open). Unavailable keeps
    /// the last known value; never seen = open.
    #[serde(default)]
    pub open: Option<String>,
    #[serde(default)]
    pub closed_off: ClosedOff,
    /// Round-robin's slot length, s.
    #[serde(default = "default_slot_s")]
    pub slot_s: f64,
    /// Battery % per minute assumed for a laptop's charging (on) and
    /// draining (off) until learned from its readings ([`crate::departure`]).
    #[serde(default = "default_rate")]
    pub assumed_rate_pct_per_min: f64,
    /// A laptop with a departure becomes urgent this long before it must
    /// start charging to reach its target in time, and holds its slot at
    /// target this long before it leaves, and a departure past by more is
    /// stale, s. It covers people leaving earlier than they said; 1800 was
    /// chosen on seeds 1–4 of the scarce coworking simulation (README).
    #[serde(default = "default_departure_slack_s")]
    pub departure_slack_s: f64,
}

fn default_target_pct() -> f64 {
    80.0
}
fn default_tariff_entity() -> String {
    "sensor.tariff_period".into()
}
fn default_offpeak_states() -> Vec<String> {
    vec!["HC".into()]
}
fn default_min_on_s() -> f64 {
    300.0
}
fn default_min_off_s() -> f64 {
    60.0
}
fn default_assumed_current_a() -> f64 {
    0.5
}
fn default_settle_s() -> f64 {
    5.0
}
fn default_voltage_v() -> f64 {
    230.0
}
fn default_aging() -> f64 {
    1.0
}
fn default_margin() -> f64 {
    10.0
}
fn default_resume_margin() -> f64 {
    10.0
}
fn default_slot_s() -> f64 {
    900.0
}
fn default_rate() -> f64 {
    1.0
}
fn default_departure_slack_s() -> f64 {
    1800.0
}

impl Config {
    /// Parses and checks; the error names the offending item.
    pub fn parse(value: serde_json::Value) -> Result<Config, String> {
        let cfg: Config = hearth_plugin_sdk::parse_config(value)?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), String> {
        let positive = |what: String, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!(
                    "config: {what} must be a positive number (got {v})"
                ))
            }
        };
        let non_negative = |what: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("config: `{what}` must be ≥ 0 (got {v})"))
            }
        };
        if self.circuits.is_empty() {
            return Err("config: `circuits` is empty (at least a root circuit is needed)".into());
        }
        let mut nodes = BTreeSet::new();
        for c in &self.circuits {
            positive(format!("circuit `{}` max_current_a", c.id), c.max_current_a)?;
            if !nodes.insert(c.id.as_str()) {
                return Err(format!("config: circuit id `{}` is used twice", c.id));
            }
        }
        let parents: BTreeMap<&str, Option<&str>> = self
            .circuits
            .iter()
            .map(|c| (c.id.as_str(), c.parent.as_deref()))
            .collect();
        for c in &self.circuits {
            if let Some(p) = &c.parent
                && !parents.contains_key(p.as_str())
            {
                return Err(format!(
                    "config: circuit `{}` has unknown parent `{p}` (circuits: {:?})",
                    c.id,
                    parents.keys().collect::<Vec<_>>()
                ));
            }
            // Walk up; more steps than circuits means a loop.
            let mut path = vec![c.id.as_str()];
            let mut at = c.parent.as_deref();
            while let Some(p) = at {
                if path.contains(&p) {
                    path.push(p);
                    return Err(format!(
                        "config: the circuit tree has a loop: {}",
                        path.join(" → ")
                    ));
                }
                path.push(p);
                at = parents[p];
            }
        }
        for s in &self.strips {
            positive(format!("strip `{}` max_current_a", s.id), s.max_current_a)?;
            if !nodes.insert(s.id.as_str()) {
                return Err(format!(
                    "config: strip id `{}` is used twice (or by a circuit)",
                    s.id
                ));
            }
            if !parents.contains_key(s.circuit.as_str()) {
                return Err(format!(
                    "config: strip `{}` is on unknown circuit `{}`",
                    s.id, s.circuit
                ));
            }
        }
        let users: BTreeSet<&str> = self.users.iter().map(|u| u.id.as_str()).collect();
        if users.len() != self.users.len() {
            return Err("config: a user id is used twice in `users`".into());
        }
        for u in &self.users {
            if !(u.target_pct > 0.0 && u.target_pct <= 100.0) {
                return Err(format!(
                    "config: user `{}` target_pct must be in (0, 100] % (got {})",
                    u.id, u.target_pct
                ));
            }
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for o in &self.outlets {
            if !self.strips.iter().any(|s| s.id == o.strip) {
                return Err(format!(
                    "config: outlet `{}` is on unknown strip `{}`",
                    o.switch, o.strip
                ));
            }
            if let Some(first) = seen.insert(o.switch.as_str(), o.strip.as_str()) {
                return Err(format!(
                    "config: outlet `{}` is listed twice (strips `{first}` and `{}`)",
                    o.switch, o.strip
                ));
            }
            if let (Some(u), Some(e)) = (&o.user, &o.user_entity) {
                return Err(format!(
                    "config: outlet `{}` has both `user` (`{u}`) and `user_entity` (`{e}`); give one: a fixed user or the select naming who holds it",
                    o.switch
                ));
            }
            if let Some(u) = &o.user
                && !users.contains(u.as_str())
            {
                return Err(format!(
                    "config: outlet `{}` has unknown user `{u}` (users: {users:?})",
                    o.switch
                ));
            }
            if o.current.is_none() && o.power.is_none() {
                return Err(format!(
                    "config: outlet `{}` has no `current` or `power` sensor (its load must be metered)",
                    o.switch
                ));
            }
        }
        non_negative("min_on_s", self.min_on_s)?;
        non_negative("min_off_s", self.min_off_s)?;
        non_negative("settle_s", self.settle_s)?;
        non_negative("aging_pct_per_min", self.aging_pct_per_min)?;
        non_negative("rotation_margin_pct", self.rotation_margin_pct)?;
        if !(0.0..100.0).contains(&self.resume_margin_pct) {
            return Err(format!(
                "config: `resume_margin_pct` must be in [0, 100) % (got {})",
                self.resume_margin_pct
            ));
        }
        positive("`assumed_current_a`".into(), self.assumed_current_a)?;
        positive("`voltage_v`".into(), self.voltage_v)?;
        positive("`slot_s`".into(), self.slot_s)?;
        positive(
            "`assumed_rate_pct_per_min`".into(),
            self.assumed_rate_pct_per_min,
        )?;
        non_negative("departure_slack_s", self.departure_slack_s)?;
        if let Some(t) = self.meter_timeout_s {
            positive("`meter_timeout_s`".into(), t)?;
        }
        crate::entities::check(self)
    }
}

/// The config's JSON Schema (for `describe`).
pub fn schema() -> serde_json::Value {
    use serde_json::json;
    let num = json!({"type": "number", "exclusiveMinimum": 0});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["circuits", "strips", "outlets"],
        "properties": {
            "circuits": {"type": "array", "items": {"type": "object",
                "required": ["id", "max_current_a"],
                "properties": {"id": {"type": "string"}, "max_current_a": num,
                    "parent": {"type": ["string", "null"]}}}},
            "strips": {"type": "array", "items": {"type": "object",
                "required": ["id", "circuit", "max_current_a"],
                "properties": {"id": {"type": "string"}, "circuit": {"type": "string"},
                    "max_current_a": num}}},
            "outlets": {"type": "array", "items": {"type": "object",
                "required": ["switch", "strip"],
                "properties": {"switch": {"type": "string"}, "strip": {"type": "string"},
                    "current": {"type": "string"}, "power": {"type": "string"},
                    "always_on": {"type": "boolean"}, "user": {"type": "string"},
                    "user_entity": {"type": "string"}}}},
            "users": {"type": "array", "items": {"type": "object", "required": ["id"],
                "properties": {"id": {"type": "string"}, "battery": {"type": "string"},
                    "target_pct": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                    "over_limit": {"type": "string"}, "departure": {"type": "string"}}}},
            "min_on_s": {"type": "number", "minimum": 0, "default": 300},
            "min_off_s": {"type": "number", "minimum": 0, "default": 60},
            "assumed_current_a": {"type": "number", "exclusiveMinimum": 0, "default": 0.5},
            "settle_s": {"type": "number", "minimum": 0, "default": 5},
            "meter_timeout_s": {"type": "number", "exclusiveMinimum": 0},
            "voltage_v": {"type": "number", "exclusiveMinimum": 0, "default": 230},
            "aging_pct_per_min": {"type": "number", "minimum": 0, "default": 1},
            "rotation_margin_pct": {"type": "number", "minimum": 0, "default": 10},
            "resume_margin_pct": {"type": "number", "minimum": 0, "exclusiveMaximum": 100, "default": 10},
            "max_parallel": {"type": "integer", "minimum": 0},
            "tariff": {"type": "object", "properties": {
                "entity": {"type": "string", "default": "sensor.tariff_period"},
                "offpeak_states": {"type": "array", "items": {"type": "string"}, "default": ["HC"]},
                "offpeak_target_pct": {"type": "number"}, "peak_target_pct": {"type": "number"},
                "offpeak_max_parallel": {"type": "integer"}, "peak_max_parallel": {"type": "integer"}}},
            "open": {"type": "string"},
            "closed_off": {"enum": ["switchable", "all"], "default": "switchable"},
            "slot_s": {"type": "number", "exclusiveMinimum": 0, "default": 900},
            "assumed_rate_pct_per_min": {"type": "number", "exclusiveMinimum": 0, "default": 1},
            "departure_slack_s": {"type": "number", "minimum": 0, "default": 1800}
        }
    })
}
