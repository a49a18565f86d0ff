//! Native unit tests of a plugin, without a bridge: a fake host that the
//! SDK's functions ([`State::get`](crate::State::get), [`now_ms`](crate::now_ms),
//! [`history`](crate::history), [`forecast`](crate::forecast), [`log`](crate::log)
//! and the call outcomes) read in a native build, and a [`Harness`] that
//! feeds a [`Controller`] states and ticks and collects what it asks.
//!
//! Compiled only outside `wasm32`, so `cargo test` on the host (no
//! `--target`) runs a plugin's tests; the component itself is built with
//! `cargo build --release --target wasm32-wasip2` and never contains this.
//!
//! ```ignore
//! use hearth_plugin_sdk::testing::Harness;
//! use hearth_plugin_sdk::serde_json::json;
//!
//! let mut h = Harness::<MyPlugin>::new(json!({"sensor": "sensor.t", "switch": "switch.ac"})).unwrap();
//! h.set_state("switch.ac", "off", json!({}));
//! let out = h.set_state("sensor.t", "27.5", json!({"unit_of_measurement": "°C"}));
//! assert_eq!(out.calls()[0].service, "turn_on");
//! // The router refused it: the plugin learns it before its next call.
//! h.refuse(&out.calls()[0], "must stay off 180 s before restarting");
//! let out = h.tick(h.now_ms() + 10_000);
//! assert!(h.logs().iter().any(|(_, m)| m.contains("refused")));
//! ```
//!
//! The fake host is per thread (each `#[test]` runs on its own thread), so
//! tests do not see each other's states. It is not the bridge: no safety
//! envelope, no router, no entity registry; a refusal happens when the test
//! says so ([`Harness::refuse`]).

use crate::wit;
use crate::{CallResult, Change, Controller, Description, LogLevel, Output, Sample, ServiceCall};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

/// What the fake host holds for the current thread.
#[derive(Default)]
struct FakeHost {
    now_ms: i64,
    states: BTreeMap<String, wit::EntityState>,
    history: BTreeMap<String, Vec<Sample>>,
    forecasts: BTreeMap<String, Vec<Sample>>,
    logs: Vec<(LogLevel, String)>,
    results: VecDeque<CallResult>,
    next_call_id: u64,
}

thread_local! {
    static HOST: RefCell<FakeHost> = RefCell::new(FakeHost {
        // 2026-01-01T00:00:00Z: a plausible clock, so code that formats or
        // subtracts times sees no zero.
        now_ms: 1_767_225_600_000,
        next_call_id: 1,
        ..FakeHost::default()
    });
}

fn with<R>(f: impl FnOnce(&mut FakeHost) -> R) -> R {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

/// The host imports in a native build: the same names and shapes as the
/// generated `bindings::hearth::controller::host`, answered from this
/// thread's fake host.
#[doc(hidden)]
pub mod fake_host {
    use super::*;

    pub fn log(level: LogLevel, message: &str) {
        with(|h| h.logs.push((level, message.to_string())));
    }

    pub fn now_ms() -> i64 {
        with(|h| h.now_ms)
    }

    pub fn get_state(entity_id: &str) -> Option<wit::EntityState> {
        with(|h| h.states.get(entity_id).cloned())
    }

    pub fn history(entity_id: &str, start_ms: i64, end_ms: i64) -> Vec<Sample> {
        in_range(
            with(|h| h.history.get(entity_id).cloned()),
            start_ms,
            end_ms,
        )
    }

    pub fn forecast(series: &str, start_ms: i64, end_ms: i64) -> Vec<Sample> {
        in_range(with(|h| h.forecasts.get(series).cloned()), start_ms, end_ms)
    }

    pub fn call_results() -> Vec<CallResult> {
        with(|h| h.results.drain(..).collect())
    }

    fn in_range(samples: Option<Vec<Sample>>, start_ms: i64, end_ms: i64) -> Vec<Sample> {
        samples
            .unwrap_or_default()
            .into_iter()
            .filter(|s| (start_ms..=end_ms).contains(&s.time_ms))
            .collect()
    }
}

/// Drives one plugin natively, as the bridge would: `init`, `describe`,
/// `on_state` for the entities it reads, `tick`, `save`/`restore`, and the
/// outcomes of its service calls before its next call.
pub struct Harness<C: Controller> {
    plugin: C,
    reads: Vec<String>,
    /// Calls of the last output: (id, emitted at, index) for [`Harness::refuse`].
    emitted: Vec<(u64, i64, u32, ServiceCall)>,
}

impl<C: Controller> Harness<C> {
    /// A fresh fake host (no states, no logs) and the plugin `init`ed with
    /// `config` (what its `[config]` table would be, as JSON).
    pub fn new(config: Value) -> Result<Self, String> {
        with(|h| {
            let now = h.now_ms;
            *h = FakeHost {
                now_ms: now,
                next_call_id: 1,
                ..FakeHost::default()
            }
        });
        let plugin = C::init(config)?;
        let reads = plugin.describe().reads;
        Ok(Harness {
            plugin,
            reads,
            emitted: Vec::new(),
        })
    }

    /// The plugin's `describe`.
    pub fn describe(&self) -> Description {
        self.plugin.describe()
    }

    /// The plugin itself, to check its fields.
    pub fn plugin(&mut self) -> &mut C {
        &mut self.plugin
    }

    /// The host's clock, ms since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        fake_host::now_ms()
    }

    /// Sets the host's clock (ms since the Unix epoch) without a tick.
    pub fn set_now(&mut self, now_ms: i64) {
        with(|h| h.now_ms = now_ms);
    }

    /// Sets an entity's state (`attributes`: a JSON object, `null` = `{}`)
    /// at the current time and, if the plugin reads it, delivers the
    /// `state_changed` to `on_state`; returns what the plugin asked.
    pub fn set_state(&mut self, entity_id: &str, state: &str, attributes: Value) -> Output {
        let old = fake_host::get_state(entity_id);
        let new = self.host_state(entity_id, state, attributes, old.as_ref());
        with(|h| h.states.insert(entity_id.into(), new.clone()));
        self.deliver(entity_id, old, Some(new))
    }

    /// Sets an entity's state on the host only: the plugin is not told (a
    /// change it missed), it sees the state when it reads it.
    pub fn set_host_state(&mut self, entity_id: &str, state: &str, attributes: Value) {
        let old = fake_host::get_state(entity_id);
        let new = self.host_state(entity_id, state, attributes, old.as_ref());
        with(|h| h.states.insert(entity_id.into(), new));
    }

    /// The entity's state at the current time (`last_changed` kept from
    /// `old` when the state text is the same, as the bridge does).
    fn host_state(
        &self,
        entity_id: &str,
        state: &str,
        attributes: Value,
        old: Option<&wit::EntityState>,
    ) -> wit::EntityState {
        let now = self.now_ms();
        let attributes = match attributes {
            Value::Null => "{}".to_string(),
            other => other.to_string(),
        };
        let last_changed_ms = match old {
            Some(o) if o.state == state => o.last_changed_ms,
            _ => now,
        };
        wit::EntityState {
            entity_id: entity_id.into(),
            state: state.into(),
            attributes,
            last_changed_ms,
            last_updated_ms: now,
        }
    }

    /// Removes an entity (its device withdrew); a plugin that reads it gets
    /// a `state_changed` without a new state.
    pub fn remove_state(&mut self, entity_id: &str) -> Output {
        let old = with(|h| h.states.remove(entity_id));
        self.deliver(entity_id, old, None)
    }

    fn deliver(
        &mut self,
        entity_id: &str,
        old: Option<wit::EntityState>,
        new: Option<wit::EntityState>,
    ) -> Output {
        if !self.reads.iter().any(|r| r == entity_id) {
            return Output::default();
        }
        let change = Change {
            entity_id: entity_id.into(),
            old: old.map(Into::into),
            new: new.map(Into::into),
        };
        let mut out = Output::default();
        crate::deliver_call_results(&mut self.plugin, &mut out);
        self.plugin.on_state(change, &mut out);
        self.emitted(&out);
        out
    }

    /// Sets the clock to `now_ms` and calls `tick`; returns what the plugin
    /// asked.
    pub fn tick(&mut self, now_ms: i64) -> Output {
        self.set_now(now_ms);
        let mut out = Output::default();
        crate::deliver_call_results(&mut self.plugin, &mut out);
        self.plugin.tick(now_ms, &mut out);
        self.emitted(&out);
        out
    }

    fn emitted(&mut self, out: &Output) {
        let now = self.now_ms();
        self.emitted = out
            .calls()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let id = with(|h| {
                    h.next_call_id += 1;
                    h.next_call_id - 1
                });
                (id, now, i as u32, c.clone())
            })
            .collect();
    }

    fn answer(&mut self, call: &ServiceCall, error: Option<&str>) {
        let found = self.emitted.iter().find(|(_, _, _, c)| {
            c.domain == call.domain && c.service == call.service && c.entity_ids == call.entity_ids
        });
        let (id, emitted_ms, index) = found.map_or((0, self.now_ms(), 0), |f| (f.0, f.1, f.2));
        with(|h| {
            h.results.push_back(CallResult {
                id,
                emitted_ms,
                index,
                domain: call.domain.clone(),
                service: call.service.clone(),
                entity_ids: call.entity_ids.clone(),
                error: error.map(Into::into),
            })
        });
    }

    /// Answers `call` (one of the last output's) as refused with `reason`,
    /// as the bridge's safety envelope or validation would; the plugin's
    /// [`Controller::on_call_result`] gets it before its next call.
    pub fn refuse(&mut self, call: &ServiceCall, reason: &str) {
        self.answer(call, Some(reason));
    }

    /// Answers `call` as refused with `reason`, stamped `emitted_ms`: the
    /// live runner stamps a call with the time the plugin call that made
    /// it began, earlier than the `now` the plugin saw (where
    /// [`Harness::refuse`] stamps the harness's clock then).
    pub fn refuse_emitted_at(&mut self, call: &ServiceCall, reason: &str, emitted_ms: i64) {
        self.answer(call, Some(reason));
        with(|h| {
            if let Some(r) = h.results.back_mut() {
                r.emitted_ms = emitted_ms;
            }
        });
    }

    /// Answers `call` as accepted by its device.
    pub fn accept(&mut self, call: &ServiceCall) {
        self.answer(call, None);
    }

    /// Samples `history` returns for `entity_id` (oldest first).
    pub fn set_history(&mut self, entity_id: &str, samples: Vec<Sample>) {
        with(|h| h.history.insert(entity_id.into(), samples));
    }

    /// Samples `forecast` returns for `series` (oldest first).
    pub fn set_forecast(&mut self, series: &str, samples: Vec<Sample>) {
        with(|h| h.forecasts.insert(series.into(), samples));
    }

    /// Every line the plugin logged so far: (level, message).
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        with(|h| h.logs.clone())
    }

    /// The plugin's `save` bytes.
    pub fn save(&self) -> Vec<u8> {
        self.plugin.save()
    }

    /// The plugin's `restore`.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.plugin.restore(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Description, State};
    use serde_json::json;

    /// Turns `switch.s` on above 25 (from `sensor.t`), logs refusals.
    struct Probe {
        refusals: u32,
    }

    impl Controller for Probe {
        fn init(_config: Value) -> Result<Self, String> {
            Ok(Probe { refusals: 0 })
        }
        fn describe(&self) -> Description {
            Description {
                name: "probe".into(),
                version: "0".into(),
                reads: vec!["sensor.t".into()],
                drives: vec!["switch.s".into()],
                config_schema: "{}".into(),
                tick_period_ms: 1000,
                entities: vec![],
            }
        }
        fn on_state(&mut self, _change: Change, out: &mut Output) {
            if State::get("sensor.t").and_then(|s| s.number()) > Some(25.0) {
                out.turn_on("switch.s");
            }
        }
        fn tick(&mut self, _now_ms: i64, _out: &mut Output) {}
        fn save(&self) -> Vec<u8> {
            self.refusals.to_le_bytes().to_vec()
        }
        fn restore(&mut self, _bytes: &[u8]) -> Result<(), String> {
            Ok(())
        }
        fn on_call_result(&mut self, result: CallResult, _out: &mut Output) {
            if let Some(e) = &result.error {
                self.refusals += 1;
                crate::warn(&format!("{} refused: {e}", result.service_name()));
            }
        }
    }

    #[test]
    fn harness_feeds_states_and_delivers_refusals() {
        let mut h = Harness::<Probe>::new(json!({})).unwrap();
        assert!(
            h.set_state("switch.s", "off", Value::Null).is_empty(),
            "not read"
        );
        assert!(
            h.set_state("sensor.t", "24", Value::Null)
                .calls()
                .is_empty()
        );
        let out = h.set_state("sensor.t", "26", json!({"unit_of_measurement": "°C"}));
        assert_eq!(out.calls().len(), 1);
        h.refuse(&out.calls()[0], "must stay off 180 s");
        let t = h.now_ms() + 1000;
        h.tick(t);
        assert_eq!(h.plugin().refusals, 1);
        let logs = h.logs();
        assert!(
            logs.iter()
                .any(|(_, m)| m == "switch.turn_on refused: must stay off 180 s"),
            "{logs:?}"
        );
        // Delivered once.
        h.tick(t + 1000);
        assert_eq!(h.plugin().refusals, 1);
    }
}
