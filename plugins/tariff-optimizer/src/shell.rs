//! The optimizer plugin (`builtin:tariff-optimizer`): every `replan_s`, and
//! when a machine is loaded, a deadline moves or an EV is plugged in, it
//! reads the forecasts and the loads ([`crate::inputs`]), solves the plan
//! ([`crate::planner`]), drives each load's switch for the current step
//! and publishes the plan as EMHASS does.
//!
//! Never moving a started load: a machine whose relay it switched on while
//! loaded is remembered as started (saved across restarts); from then on
//! its relay stays on until the machine is done (`ready` off) whatever the
//! plan says, and the problem fixes its remaining programme from step 0
//! (`Sequence{started: Some(k)}`), so the plan agrees. A machine whose
//! programme's time is over and whose power sensor (if any) reads near
//! 0 W is done even if `ready` stays on (an input_boolean nobody resets):
//! its relay is switched off once, then left as the user leaves it, and it
//! is not planned (nor adopted) again until `ready` goes off
//! ([`inputs::machine_over`], [`Memory::done`]). A machine found
//! running (relay on while loaded) that it did not start is adopted as
//! started now. A deferrable load's energy in its daily window is counted
//! the same way ([`inputs::account`], saved too).
//!
//! Published entities (load N = the N-th of `loads`, from 0):
//! `p_deferrable<N>` (W now; `deferrables_schedule`: `[{"date", "p_deferrable<N>"}]`,
//! `load_id`), `p_pv_forecast`, `p_load_forecast` (base load),
//! `p_grid_forecast` (import − export; each with `forecasts`),
//! `total_cost_fun_value` (the plan's objective), `optim_status`
//! (`Optimal`/`Feasible`/`Relaxed`/`Rule`/`Infeasible`; `gap`, `nodes`,
//! `violations`, `fallbacks`, and `problem` = the Problem JSON with
//! `expose_problem: true`), `temp_predicted<N>` for a water heater
//! (`predicted_temperatures`).

use crate::config::{Config, LoadConfig};
use crate::drive::Switches;
use crate::inputs::{self, Built, Coverage, Memory};
use crate::planner::{self, Outcome};
use crate::time::format_rfc3339;
use hearth_plugin_sdk::serde_json::{Value, json};
use hearth_plugin_sdk::{
    CallResult, Change, Controller, Description, EntityDecl, Output, info, now_ms, restore_json,
    save_json, sensor, warn,
};
use std::collections::BTreeSet;

pub struct TariffOptimizer {
    cfg: Config,
    mem: Memory,
    switches: Switches,
    /// Series on their fallback (logged once, until they come back).
    on_fallback: BTreeSet<&'static str>,
    /// Notes already logged (each once).
    noted: BTreeSet<String>,
    /// The last problem and plan (for tests and diagnostics).
    pub last: Option<(Built, Outcome)>,
}

impl TariffOptimizer {
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn memory(&self) -> &Memory {
        &self.mem
    }

    /// Machines done or found running, before the problem is built;
    /// returns the machines whose programme just ended with `ready` still
    /// on (their relay is switched off once).
    fn update_machines(&mut self, now: i64) -> BTreeSet<String> {
        let grid = inputs::Grid::new(&self.cfg, now);
        let mut just_done = BTreeSet::new();
        for l in &self.cfg.loads {
            let LoadConfig::Sequence(s) = l else { continue };
            let ready = inputs::is_on(&s.ready);
            if ready == Some(false) {
                self.mem.done.remove(&s.id);
            }
            if let Some(&t0) = self.mem.started.get(&s.id) {
                if ready == Some(false) {
                    self.mem.started.remove(&s.id);
                    info(&format!("{}: programme done ({} off)", s.id, s.ready));
                } else if inputs::machine_over(s, &grid, t0, self.cfg.step_s) {
                    self.mem.started.remove(&s.id);
                    self.mem.done.insert(s.id.clone());
                    just_done.insert(s.id.clone());
                    info(&format!(
                        "{}: programme over (its time is past, drawing ~0 W): relay off, not planned again until {} goes off",
                        s.id, s.ready
                    ));
                }
            } else if self.mem.done.contains(&s.id) {
                // Over, `ready` still on: not adopted again.
            } else if ready == Some(true) && inputs::is_on(&s.switch) == Some(true) {
                let drawing = s
                    .power
                    .as_deref()
                    .and_then(inputs::number)
                    .is_none_or(|w| w > 5.0);
                if drawing && self.switches.wanted(&s.switch) != Some(false) {
                    self.mem.started.insert(s.id.clone(), now);
                    info(&format!(
                        "{}: found running (relay on while loaded): its start is fixed",
                        s.id
                    ));
                }
            }
        }
        just_done
    }

    fn log_inputs(&mut self, built: &Built) {
        for (series, cov) in &built.coverage {
            let fallback = match *series {
                inputs::PRICE => format!("import_price {} €/kWh", self.cfg.import_price),
                inputs::EXPORT_PRICE => format!("export_price {} €/kWh", self.cfg.export_price),
                inputs::PV_POWER => "0 W (no PV)".to_string(),
                _ => format!("base_load_w {} W", self.cfg.base_load_w),
            };
            match cov {
                Coverage::Full => {
                    if self.on_fallback.remove(series) {
                        info(&format!("forecast `{series}` is back"));
                    }
                }
                Coverage::Partial | Coverage::Missing => {
                    if self.on_fallback.insert(series) {
                        let what = if *cov == Coverage::Missing {
                            "missing"
                        } else {
                            "incomplete over the horizon"
                        };
                        warn(&format!(
                            "forecast `{series}` is {what}: using {fallback} where unknown"
                        ));
                    }
                }
            }
        }
        for &i in &built.blind_thermal {
            let id = self.cfg.loads[i].id();
            let n = format!("{id}: no tank temperature: left enabled (its thermostat regulates)");
            if self.noted.insert(n.clone()) {
                warn(&n);
            }
        }
        for n in &built.notes {
            if self.noted.insert(n.clone()) {
                warn(n);
            }
        }
    }

    /// Whether a relay planned at `planned_w` (mean over step 0) of
    /// `nominal_w` is on until the next re-plan. A share of a step (a
    /// water heater's element, a continuous load) is on-time, and the relay
    /// only switches at re-plans: it is on when any on-time is planned
    /// (rounded up, so a tank planned to be just warm enough at a ready
    /// time is not left a few tenths of a kelvin short: the solver sees
    /// step 0 whole while part of it is past), except under 1 % of a step,
    /// which is the LP's noise. The next re-plan, from the new readings,
    /// corrects any excess. An on/off load's plan is 0 or `nominal_w`.
    fn on_now(&self, planned_w: Option<f64>, nominal_w: f64) -> bool {
        planned_w.unwrap_or(0.0) >= 0.01 * nominal_w
    }

    /// Reads, plans, drives and publishes.
    pub fn replan(&mut self, now: i64, out: &mut Output) {
        let just_done = self.update_machines(now);
        for l in &self.cfg.loads {
            if let LoadConfig::Deferrable(d) = l {
                inputs::account(d, &mut self.mem.delivered, now, self.cfg.utc_offset_min);
            }
        }
        let built = inputs::build(&self.cfg, now, &self.mem);
        self.log_inputs(&built);
        let outcome = planner::plan(&built.problem, self.cfg.node_limit);
        if !outcome.violations.is_empty() {
            warn(&format!(
                "plan ({}) breaks {} constraint(s): {}",
                outcome.status,
                outcome.violations.len(),
                outcome.violations.join("; ")
            ));
        }
        let reassert_ms = self.cfg.reassert_s as i64 * 1000;
        // A schedule for every load (an `Infeasible` plan carries the rule
        // plan's best effort); without one: machines start, EVs charge,
        // water heaters are left to their thermostat.
        let planned = outcome.load_w.len() == built.problem.loads.len();
        for (i, l) in self.cfg.loads.iter().enumerate() {
            let pi = built.index.iter().position(|&c| c == i);
            let now_w = pi
                .and_then(|p| outcome.load_w.get(p))
                .and_then(|w| w.first().copied());
            let on = match l {
                LoadConfig::Sequence(s) if self.mem.done.contains(&s.id) => {
                    // Over: its relay is switched off once, then left as
                    // the user leaves it until `ready` goes off.
                    if !just_done.contains(&s.id) {
                        continue;
                    }
                    false
                }
                LoadConfig::Sequence(s) => {
                    if self.mem.started.contains_key(&s.id) {
                        true
                    } else if pi.is_some() {
                        let starts_now = if planned {
                            pi.and_then(|p| outcome.start.get(p).copied().flatten()) == Some(0)
                        } else {
                            true // no plan at all: as soon as possible
                        };
                        if starts_now {
                            self.mem.started.insert(s.id.clone(), now);
                            info(&format!("{}: starting now (planned start)", s.id));
                        }
                        starts_now
                    } else {
                        false
                    }
                }
                LoadConfig::Battery(b) => match pi {
                    Some(_) if !planned => true,
                    Some(_) => self.on_now(now_w, b.max_w),
                    None => false,
                },
                LoadConfig::Thermal(t) => match pi {
                    Some(_) if planned => self.on_now(now_w, t.nominal_w),
                    _ => true,
                },
                LoadConfig::Deferrable(d) => match pi {
                    Some(_) if !planned => true,
                    Some(_) => self.on_now(now_w, d.nominal_w),
                    None => false,
                },
            };
            self.switches.drive(l.switch(), on, now, reassert_ms, out);
        }
        self.publish(&built, &outcome, out);
        self.last = Some((built, outcome));
    }

    fn publish(&self, built: &Built, o: &Outcome, out: &mut Output) {
        let p = &built.problem;
        let off = self.cfg.utc_offset_min;
        let date = |k: usize| format_rfc3339(p.step_ms(k), off);
        let series = |name: &str, v: &[f64]| -> Value {
            Value::Array(
                v.iter()
                    .enumerate()
                    .map(|(k, x)| json!({"date": date(k), name: format!("{x:.2}")}))
                    .collect(),
            )
        };
        for (i, l) in self.cfg.loads.iter().enumerate() {
            let name = format!("p_deferrable{i}");
            let pi = built.index.iter().position(|&c| c == i);
            let w = pi
                .and_then(|p| o.load_w.get(p).cloned())
                .unwrap_or_else(|| vec![0.0; p.steps]);
            let start = pi.and_then(|p| o.start.get(p).copied().flatten()).map(date);
            out.entity_with(
                &name,
                &format!("{:.2}", w.first().copied().unwrap_or(0.0)),
                json!({"deferrables_schedule": series(&name, &w), "load_id": l.id(), "start": start}),
            );
            if let LoadConfig::Thermal(_) = l {
                let name = format!("temp_predicted{i}");
                match pi.and_then(|p| o.temp_c.get(p).cloned().flatten()) {
                    Some(t) => out.entity_with(
                        &name,
                        &format!("{:.2}", t.first().copied().unwrap_or(f64::NAN)),
                        json!({"predicted_temperatures": series(&name, &t), "load_id": l.id()}),
                    ),
                    None => out.entity_with(&name, "unknown", json!({"load_id": l.id()})),
                }
            }
        }
        out.entity_with(
            "p_pv_forecast",
            &format!("{:.2}", p.pv_w[0]),
            json!({"forecasts": series("p_pv_forecast", &p.pv_w)}),
        );
        out.entity_with(
            "p_load_forecast",
            &format!("{:.2}", p.base_w[0]),
            json!({"forecasts": series("p_load_forecast", &p.base_w)}),
        );
        let grid: Vec<f64> = o
            .import_w
            .iter()
            .zip(&o.export_w)
            .map(|(i, e)| i - e)
            .collect();
        out.entity_with(
            "p_grid_forecast",
            &format!("{:.2}", grid.first().copied().unwrap_or(f64::NAN)),
            json!({"forecasts": series("p_grid_forecast", &grid)}),
        );
        out.number("total_cost_fun_value", o.objective, 4);
        let fallbacks: Vec<&str> = built
            .coverage
            .iter()
            .filter(|(_, c)| *c != Coverage::Full)
            .map(|(s, _)| *s)
            .collect();
        let mut attrs = json!({
            "gap": o.gap,
            "nodes": o.nodes,
            "violations": o.violations,
            "fallbacks": fallbacks,
            "planned_at": format_rfc3339(now_ms(), off),
        });
        if self.cfg.expose_problem {
            // What `hearth plan` needs to write the model as it was
            // solved: the problem, the model options, the full-precision
            // objective (the entity's state is rounded).
            attrs["problem"] = hearth_plugin_sdk::serde_json::to_value(p).unwrap_or(Value::Null);
            attrs["objective"] = json!(o.objective);
            if let Some(m) = o.model {
                attrs["thermal_on_off"] = json!(m.thermal_on_off);
                attrs["soft_ready"] = json!(m.soft_ready);
            }
        }
        out.entity_with("optim_status", &o.status, attrs);
    }
}

/// The optimizer's entity declarations.
pub fn entities(cfg: &Config) -> Vec<EntityDecl> {
    let mut v = Vec::new();
    for (i, l) in cfg.loads.iter().enumerate() {
        v.push(
            sensor(
                &format!("p_deferrable{i}"),
                &format!("Deferrable load {i} ({})", l.id()),
            )
            .unit("W")
            .device_class("power")
            .state_class("measurement"),
        );
        if let LoadConfig::Thermal(_) = l {
            v.push(
                sensor(
                    &format!("temp_predicted{i}"),
                    &format!("Predicted temperature {i} ({})", l.id()),
                )
                .unit("°C")
                .device_class("temperature")
                .state_class("measurement"),
            );
        }
    }
    for (id, name) in [
        ("p_pv_forecast", "PV forecast"),
        ("p_load_forecast", "Load forecast"),
        ("p_grid_forecast", "Grid forecast"),
    ] {
        v.push(
            sensor(id, name)
                .unit("W")
                .device_class("power")
                .state_class("measurement"),
        );
    }
    v.push(sensor("total_cost_fun_value", "Plan objective").unit("€"));
    v.push(sensor("optim_status", "Optimization status"));
    v
}

/// Every entity the loads read, once each.
pub fn reads(cfg: &Config) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for l in &cfg.loads {
        for e in l.reads() {
            if !v.contains(&e) {
                v.push(e);
            }
        }
    }
    v
}

impl Controller for TariffOptimizer {
    fn init(config: Value) -> Result<Self, String> {
        Ok(TariffOptimizer {
            cfg: Config::parse(config)?,
            mem: Memory::default(),
            switches: Switches::default(),
            on_fallback: BTreeSet::new(),
            noted: BTreeSet::new(),
            last: None,
        })
    }

    fn describe(&self) -> Description {
        Description {
            name: "tariff-optimizer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            reads: reads(&self.cfg),
            drives: self.cfg.loads.iter().map(|l| l.switch().into()).collect(),
            config_schema: "{}".into(),
            tick_period_ms: self.cfg.replan_s * 1000,
            entities: entities(&self.cfg),
        }
    }

    fn on_state(&mut self, change: Change, out: &mut Output) {
        let trigger = self
            .cfg
            .loads
            .iter()
            .any(|l| l.triggers().contains(&change.entity_id.as_str()));
        let changed =
            change.old.as_ref().map(|s| &s.state) != change.new.as_ref().map(|s| &s.state);
        if trigger && changed {
            self.replan(now_ms(), out);
        }
    }

    fn tick(&mut self, now_ms: i64, out: &mut Output) {
        self.replan(now_ms, out);
    }

    fn save(&self) -> Vec<u8> {
        save_json(&self.mem)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.mem = restore_json(bytes)?;
        Ok(())
    }

    fn on_call_result(&mut self, result: CallResult, _out: &mut Output) {
        if result.is_refused() {
            warn(&format!(
                "{} {:?} refused: {}",
                result.service_name(),
                result.entity_ids,
                result.error.as_deref().unwrap_or("")
            ));
            // A machine whose start was refused has not started. The
            // refused call is its `turn_on` of the machine's switch; the
            // runner stamps it with the time the plugin call that made it
            // began, at or a little before the `now` the start was
            // recorded at (never equal to it in general). A re-assert of a
            // running machine's relay comes `reassert_s` or more after its
            // start (less the stamp's lead): refused, the start stays (its
            // steps are run). Half of `reassert_s` (at least 1 s) tells
            // them apart.
            let slack_ms = (self.cfg.reassert_s as i64 * 500).max(1000);
            if result.service == "turn_on" {
                for l in &self.cfg.loads {
                    if let LoadConfig::Sequence(s) = l
                        && s.switch.split_once('.').map(|d| d.0) == Some(result.domain.as_str())
                        && result.entity_ids.contains(&s.switch)
                        && self
                            .mem
                            .started
                            .get(&s.id)
                            .is_some_and(|&t0| result.emitted_ms < t0 + slack_ms)
                    {
                        self.mem.started.remove(&s.id);
                        info(&format!("{}: its start was refused: not started", s.id));
                    }
                }
            }
        }
        self.switches.on_result(&result);
    }
}
