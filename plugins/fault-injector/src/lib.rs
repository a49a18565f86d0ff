//! A plugin that misbehaves on purpose, to prove the host contains faults:
//! it traps, loops forever or allocates without bound when told to.
//!
//! Config: `{"entity": "sensor.x", "fault": "trap"|"loop"|"alloc"|"flood"|"huge"|"deep"|"none",
//! "when": "on_state"|"tick"|"init"|"restore", "drives": ["switch.y"]}`.
//! `huge` returns, on each state change of `entity`, an entity update whose
//! state is `bytes` long (4 MiB by default); `deep` a service call on its
//! first driven entity whose `service_data` nests `depth` arrays (1000 by
//! default), and an entity update with attributes as deep.
//! With `fault: none` it forwards each state change of `entity` as
//! `switch.turn_on` on its first driven entity (used to check call routing).
//! With `"forecast": "<series>"` it logs, on each tick, what the host's
//! `forecast` import returns for the next 24 h (used to check the import).
//! With `"history": {"entity": "sensor.y", "seconds": 3600, "times": 5}` it
//! reads that entity's history over the last `seconds`, `times` times (1 by
//! default), on each state change of `entity` and logs how many samples came
//! back (used to check that a slow read is the host's time, not the
//! plugin's).
//! With `"echo": true` it logs `seen <entity>=<state>` on each state change;
//! `"spin": n` makes each state change cost `n` busy iterations.
//! Every outcome of its service calls (WIT 0.1.2 `call-results`) is
//! logged: `call result #<id> switch.turn_on on switch.y: ok` or `…:
//! refused: <the host's reason>` (used to check that a plugin learns about
//! refusals).

use hearth_plugin_sdk::serde_json::{self, Value, json};
use hearth_plugin_sdk::{
    CallResult, Change, Controller, Description, Output, binary_sensor, export_controller, info,
    warn,
};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Fault {
    None,
    Trap,
    Loop,
    Alloc,
    /// Returns more output than the host accepts in one call.
    Flood,
    /// Returns a string of `bytes` bytes.
    Huge,
    /// Returns JSON nested `depth` levels.
    Deep,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum When {
    Init,
    OnState,
    Tick,
    /// When handed saved state (a restart or a swap).
    Restore,
}

#[derive(Debug, Clone, Deserialize)]
struct Config {
    entity: String,
    fault: Fault,
    #[serde(default = "default_when")]
    when: When,
    #[serde(default)]
    drives: Vec<String>,
    #[serde(default)]
    forecast: Option<String>,
    #[serde(default)]
    history: Option<HistoryRead>,
    #[serde(default = "four_mib")]
    bytes: usize,
    #[serde(default = "thousand")]
    depth: usize,
    /// Logs `seen <entity>=<state>` on each state change (to check what a
    /// plugin is handed under a flood).
    #[serde(default)]
    echo: bool,
    /// Busy iterations per state change (a slow plugin).
    #[serde(default)]
    spin: u64,
}

fn four_mib() -> usize {
    4 << 20
}

fn thousand() -> usize {
    1000
}

/// `{"deep": [[[…0…]]]}`, `depth` arrays deep.
fn deep_json(depth: usize) -> Value {
    let mut v = json!(0);
    for _ in 0..depth {
        v = Value::Array(vec![v]);
    }
    json!({ "deep": v })
}

#[derive(Debug, Clone, Deserialize)]
struct HistoryRead {
    entity: String,
    seconds: i64,
    #[serde(default = "once")]
    times: u32,
}

fn once() -> u32 {
    1
}

fn default_when() -> When {
    When::OnState
}

struct FaultInjector {
    cfg: Config,
    events: u64,
}

fn misbehave(fault: Fault) {
    match fault {
        Fault::None | Fault::Flood | Fault::Huge | Fault::Deep => {}
        Fault::Trap => panic!("fault-injector: trap on purpose"),
        Fault::Loop => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        Fault::Alloc => {
            let mut hog: Vec<Vec<u8>> = Vec::new();
            loop {
                hog.push(std::hint::black_box(vec![1u8; 1 << 20]));
            }
        }
    }
}

impl Controller for FaultInjector {
    fn init(config: Value) -> Result<Self, String> {
        let cfg: Config =
            serde_json::from_value(config).map_err(|e| format!("fault-injector config: {e}"))?;
        if cfg.when == When::Init {
            misbehave(cfg.fault);
        }
        warn(&format!(
            "fault-injector armed: {:?} on {:?}",
            cfg.fault, cfg.when
        ));
        Ok(FaultInjector { cfg, events: 0 })
    }

    fn describe(&self) -> Description {
        Description {
            name: "fault-injector".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            reads: vec![self.cfg.entity.clone()],
            drives: self.cfg.drives.clone(),
            config_schema: "{}".into(),
            tick_period_ms: 1_000,
            // `deep` declares the entity it updates, so the host parses its
            // attributes.
            entities: match self.cfg.fault {
                Fault::Deep => vec![binary_sensor("deep", "Deep")],
                _ => vec![],
            },
        }
    }

    fn on_state(&mut self, change: Change, out: &mut Output) {
        self.events += 1;
        let mut x = 0u64;
        for _ in 0..self.cfg.spin {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        if self.cfg.echo {
            let state = change.new.as_ref().map_or("none", |s| s.state.as_str());
            info(&format!("seen {}={state}", change.entity_id));
        }
        if self.cfg.when == When::OnState {
            misbehave(self.cfg.fault);
        }
        if let Some(h) = &self.cfg.history {
            let now = hearth_plugin_sdk::now_ms();
            for _ in 0..h.times {
                let samples = hearth_plugin_sdk::history(&h.entity, now - h.seconds * 1000, now);
                info(&format!("history {}: {} samples", h.entity, samples.len()));
            }
        }
        if self.cfg.fault == Fault::Flood {
            for i in 0..100 {
                out.entity(&format!("flood_{i}"), "on");
            }
        }
        match (self.cfg.fault, self.cfg.drives.first()) {
            (Fault::Huge, _) => out.entity("huge", &"x".repeat(self.cfg.bytes)),
            (Fault::Deep, target) => {
                if let Some(target) = target {
                    out.call("switch", "turn_on", target, deep_json(self.cfg.depth));
                }
                out.entity_with("deep", "on", deep_json(self.cfg.depth));
            }
            (_, Some(target)) => out.call("switch", "turn_on", target, json!({})),
            (_, None) => {}
        }
    }

    fn tick(&mut self, now_ms: i64, _out: &mut Output) {
        if self.cfg.when == When::Tick {
            misbehave(self.cfg.fault);
        }
        if let Some(series) = &self.cfg.forecast {
            let samples = hearth_plugin_sdk::forecast(series, now_ms, now_ms + 86_400_000);
            let first = samples.first().map_or(f64::NAN, |s| s.value);
            info(&format!(
                "forecast {series}: {} samples, first {first}",
                samples.len()
            ));
        }
    }

    fn save(&self) -> Vec<u8> {
        self.events.to_le_bytes().to_vec()
    }

    fn on_call_result(&mut self, result: CallResult, _out: &mut Output) {
        let outcome = match &result.error {
            None => "ok".to_string(),
            Some(reason) => format!("refused: {reason}"),
        };
        info(&format!(
            "call result #{} {} on {} (call {} of the output at {} ms): {outcome}",
            result.id,
            result.service_name(),
            result.entity_ids.join(", "),
            result.index,
            result.emitted_ms
        ));
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.cfg.when == When::Restore {
            misbehave(self.cfg.fault);
        }
        let arr: [u8; 8] = bytes
            .try_into()
            .map_err(|_| "expected 8 bytes".to_string())?;
        self.events = u64::from_le_bytes(arr);
        Ok(())
    }
}

export_controller!(FaultInjector);
