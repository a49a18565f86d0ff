//! The controller's decisions without host calls: what to record, when to
//! refit, MPC or fallback, what to command and publish. `lib.rs` gathers the
//! readings from the host and emits the log lines; everything here runs
//! natively in tests.

use crate::config::{Config, MAX_HISTORY};
use crate::fit::{self, FitOptions};
use crate::forecast;
use crate::history::{History, Observation};
use crate::model::{Discrete, Params};
use crate::observer::{self, Observer};
use crate::qp::{self, Forecast, Plan};
use hearth_plugin_sdk::{NoState, Output};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Object ids of the plugin's entities.
pub mod entity {
    /// `mpc` / `fallback`, attribute `reason`.
    pub const MODE: &str = "mode";
    /// %, attributes `plan`, `step_min`.
    pub const NEXT_VALVE: &str = "next_valve_position";
    /// °C in one hour, attribute `trajectory`.
    pub const PREDICTED: &str = "predicted_temperature";
    /// €, the horizon's energy cost.
    pub const COST: &str = "expected_cost";
    /// °C, attributes the fitted parameters.
    pub const RMSE: &str = "model_rmse";
}

/// Version of [`Saved`]'s layout.
pub const FORMAT: u32 = 1;
/// Keep-alive: re-send the valve position at least this often, ms.
pub const KEEP_ALIVE_MS: i64 = 3_600_000;

/// A model in use and where it came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitRecord {
    /// The parameters.
    pub params: Params,
    /// RMSE of the fit, °C (`None` for a model from the config).
    #[serde(default)]
    pub rmse_c: Option<f64>,
    /// When fitted, ms (`None` for a model from the config).
    #[serde(default)]
    pub fitted_at_ms: Option<i64>,
    /// `Ti` samples used.
    #[serde(default)]
    pub samples: usize,
    /// Nelder–Mead iterations.
    #[serde(default)]
    pub iterations: u64,
    /// `fit` or `config`.
    #[serde(default)]
    pub source: String,
    /// The fit's constant heat gain on the air node, W (0 for a model from
    /// the config): seeds the observer's disturbance estimate and centres
    /// the next fit's prior on it.
    #[serde(default)]
    pub gain_w: f64,
}

/// `mpc` or `fallback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The optimiser's plan is in command.
    Mpc,
    /// The safe law is in command.
    #[default]
    Fallback,
}

/// What survives a restart or a swap (tolerant: every field defaults,
/// unknown fields are ignored).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Saved {
    /// Layout version ([`FORMAT`]); 0 = not saved by this plugin.
    pub format: u32,
    /// The model in use.
    pub fit: Option<FitRecord>,
    /// Why the last fit attempt was rejected.
    pub fit_error: Option<String>,
    /// Last fit attempt, ms.
    pub last_fit_attempt_ms: Option<i64>,
    /// The recorded history.
    pub history: Vec<Observation>,
    /// Observer state.
    pub observer: Option<Observer>,
    /// Last commanded valve position, %.
    pub last_cmd_pct: Option<f64>,
    /// When it was last sent, ms.
    pub last_sent_ms: Option<i64>,
    /// Fallback thermostat's state.
    pub fallback_heating: bool,
    /// Current mode.
    pub mode: Mode,
    /// Why this mode.
    pub reason: String,
}

/// Everything one tick reads from the host.
#[derive(Debug, Clone, Default)]
pub struct Readings {
    /// Host time, ms.
    pub now_ms: i64,
    /// Room temperature, °C (`None`: unavailable).
    pub room_c: Option<f64>,
    /// Why the room sensor has no usable state, when the host said: a
    /// MISSING entity (removed from the bridge) counts as unavailable.
    pub room_why: Option<NoState>,
    /// The valve's `current_position`, %.
    pub valve_pct: Option<f64>,
    /// Outdoor sensor, °C.
    pub outdoor_c: Option<f64>,
    /// `price` series from now over the horizon, (ms, €/kWh).
    pub price: Vec<(i64, f64)>,
    /// `outdoor-temperature` series, (ms, °C).
    pub ta: Vec<(i64, f64)>,
    /// `solar-irradiance` series, (ms, W/m²).
    pub isol: Vec<(i64, f64)>,
}

/// A log line for the host.
#[derive(Debug, Clone, PartialEq)]
pub enum Log {
    /// Info.
    Info(String),
    /// Warning.
    Warn(String),
}

/// The horizon solver, injectable so tests can make it fail.
pub type PlanFn =
    fn(&Discrete, [f64; 2], f64, &Forecast, &qp::Settings) -> Result<Plan, qp::PlanError>;

/// The controller core.
pub struct Core {
    /// Config.
    pub cfg: Config,
    /// Persisted state.
    pub st: Saved,
    /// Observations (mirrors `st.history`, which is filled on save).
    pub history: History,
    /// The horizon solver ([`qp::plan`]).
    pub planner: PlanFn,
    /// Fit settings.
    pub fit_opts: FitOptions,
    /// Latest room reading, °C.
    pub last_room: Option<f64>,
    /// The valve's mean position between two ticks (the fallback may move
    /// it between them).
    pub valve_mean: ValveMean,
    /// Offset-free MPC: the observer estimates the constant heat
    /// disturbance and the plan uses it (default). `false` (tests, to show
    /// the offset it removes): the disturbance stays at the fit's constant
    /// gain.
    pub offset_free: bool,
}

/// Time-weighted mean of the commanded valve position between ticks: what
/// the house really received, which a single reading at the tick misses
/// when a thermostat law switches faster than the tick period.
#[derive(Debug, Clone, Default)]
pub struct ValveMean {
    /// Start of the current averaging window, ms.
    from_ms: Option<i64>,
    /// Since when the valve has been at `pct`, ms.
    since_ms: i64,
    pct: f64,
    /// ∫ position dt over the window so far, %·ms.
    acc: f64,
}

impl ValveMean {
    /// The valve moved to `pct` at `now_ms`.
    pub fn moved(&mut self, now_ms: i64, pct: f64) {
        if self.from_ms.is_some() && now_ms > self.since_ms {
            self.acc += self.pct * (now_ms - self.since_ms) as f64;
        }
        self.since_ms = now_ms.max(self.since_ms);
        self.pct = pct;
    }

    /// Closes the window at `now_ms`: its mean position, or `None` for the
    /// first window (no start yet) or an empty one. Opens the next.
    pub fn close(&mut self, now_ms: i64) -> Option<f64> {
        let mean = match self.from_ms {
            Some(from) if now_ms > from => {
                let acc = self.acc + self.pct * (now_ms - self.since_ms.max(from)) as f64;
                Some(acc / (now_ms - from) as f64)
            }
            _ => None,
        };
        self.from_ms = Some(now_ms);
        self.since_ms = now_ms;
        self.acc = 0.0;
        mean
    }
}

enum Decision {
    Mpc(Plan),
    Fallback { pct: f64, reason: String },
}

impl Core {
    /// A fresh core; a `model` in the config is used from the start.
    pub fn new(cfg: Config) -> Core {
        let st = Saved {
            format: FORMAT,
            fit: cfg.model.map(|params| FitRecord {
                params,
                rmse_c: None,
                fitted_at_ms: None,
                samples: 0,
                iterations: 0,
                source: "config".into(),
                gain_w: 0.0,
            }),
            reason: "starting".into(),
            ..Saved::default()
        };
        Core {
            st,
            history: History::default(),
            planner: match cfg.solver {
                crate::config::SolverChoice::Banded => qp::plan,
                crate::config::SolverChoice::Clarabel => qp::plan_clarabel,
            },
            fit_opts: FitOptions::default(),
            last_room: None,
            valve_mean: ValveMean::default(),
            offset_free: true,
            cfg,
        }
    }

    fn keep_ms(&self) -> i64 {
        // The fit window plus two steps of margin.
        (self.cfg.history_h * 3_600_000.0) as i64 + 2 * self.cfg.step_ms()
    }

    fn cap(&self) -> usize {
        ((self.cfg.history_h * 60.0 / self.cfg.step_min) as usize + 8).min(MAX_HISTORY + 8)
    }

    /// The state to save.
    pub fn save(&self) -> Saved {
        let mut s = self.st.clone();
        s.format = FORMAT;
        s.history = self.history.iter().copied().collect();
        s
    }

    /// Restores saved state; declines state from a newer layout. Invalid
    /// parts (model parameters, observer values) are dropped, the rest kept.
    pub fn restore(&mut self, mut s: Saved) -> Result<Vec<Log>, String> {
        if s.format > FORMAT {
            return Err(format!(
                "saved by a newer mpc (state format {}, this one reads ≤ {FORMAT})",
                s.format
            ));
        }
        let mut logs = Vec::new();
        if s.fit.as_ref().is_some_and(|f| !f.params.is_valid()) {
            logs.push(Log::Warn("saved model parameters invalid: dropped".into()));
            s.fit = None;
        }
        if s.fit.is_none() {
            // Keep the commissioning model rather than nothing.
            s.fit = self.st.fit.take();
        }
        if let Some(f) = s.fit.as_mut()
            && !f.gain_w.is_finite()
        {
            f.gain_w = 0.0;
        }
        if s.observer
            .is_some_and(|o| !(o.ti.is_finite() && o.te.is_finite() && o.d_w.is_finite()))
        {
            s.observer = None;
        }
        if s.last_cmd_pct.is_some_and(|v| !v.is_finite()) {
            s.last_cmd_pct = None;
        }
        self.history =
            History::from_saved(std::mem::take(&mut s.history), self.keep_ms(), self.cap());
        logs.push(Log::Info(format!(
            "restored: {} observations, model {}",
            self.history.len(),
            s.fit.as_ref().map_or("none", |f| f.source.as_str())
        )));
        s.format = FORMAT;
        self.st = s;
        Ok(logs)
    }

    fn discrete(&self) -> Option<Discrete> {
        Discrete::new(&self.st.fit.as_ref()?.params, self.cfg.step_s())
    }

    /// The periodic step: record, observe, refit when due, decide, command,
    /// publish.
    pub fn tick(&mut self, r: &Readings, out: &mut Output) -> Vec<Log> {
        let mut logs = Vec::new();
        let now = r.now_ms;
        let room = r.room_c.filter(|v| v.is_finite());
        self.last_room = room;
        let reported = r
            .valve_pct
            .filter(|v| v.is_finite())
            .or(self.st.last_cmd_pct)
            .unwrap_or(0.0);
        // What the step that ends now received: the mean of the commands
        // when they are known since the last tick, else the reading.
        let applied = self
            .valve_mean
            .close(now)
            .filter(|v| v.is_finite())
            .unwrap_or(reported);
        self.valve_mean.moved(now, reported);
        let ta_now = r
            .outdoor_c
            .filter(|v| v.is_finite())
            .or_else(|| forecast::value_at(&r.ta, now));
        let isol_now = forecast::value_at(&r.isol, now).unwrap_or(0.0).max(0.0);

        self.observe(now, room, applied, &mut logs);
        self.history.push(
            Observation {
                t_ms: now,
                ti: room,
                valve_pct: applied,
                ta: ta_now,
                isol: isol_now,
            },
            self.keep_ms(),
            self.cap(),
        );
        self.maybe_refit(now, room, &mut logs);

        let decision = self.decide(r, room, applied);
        let (pct, plan) = match decision {
            Decision::Mpc(plan) => {
                let pct = plan.u[0] * 100.0;
                if self.st.mode != Mode::Mpc {
                    logs.push(Log::Info("MPC in command".into()));
                }
                self.st.mode = Mode::Mpc;
                self.st.reason = format!(
                    "optimal plan ({}, {} iterations)",
                    plan.status, plan.iterations
                );
                // Keep the fallback's state in step for a smooth hand-over.
                self.st.fallback_heating = pct >= 50.0;
                (pct, Some(plan))
            }
            Decision::Fallback { pct, reason } => {
                if self.st.mode != Mode::Fallback || self.st.reason != reason {
                    logs.push(Log::Warn(format!("fallback: {reason}")));
                }
                self.st.mode = Mode::Fallback;
                self.st.reason = reason;
                (pct, None)
            }
        };
        self.command(now, pct, true, out);
        self.publish(plan.as_ref(), out);
        logs
    }

    /// A change of the room sensor: remembered; with the fallback in
    /// command, a crossing of the hysteresis thresholds commands the valve
    /// at once. The MPC waits for its next tick.
    pub fn on_room(&mut self, now_ms: i64, room_c: Option<f64>, out: &mut Output) {
        let room = room_c.filter(|v| v.is_finite());
        self.last_room = room;
        if self.st.mode != Mode::Fallback {
            return;
        }
        let Some(ti) = room else { return };
        let pct = self.hysteresis(ti);
        if self
            .st
            .last_cmd_pct
            .is_none_or(|last| (last - pct).abs() >= 1.0)
        {
            self.command(now_ms, pct, false, out);
            out.entity_with(
                entity::NEXT_VALVE,
                &format!("{}", pct.round()),
                json!({"plan": [], "step_min": self.cfg.step_min}),
            );
        }
    }

    /// Observer: predict over the elapsed step with the inputs applied, then
    /// correct with the measurement.
    fn observe(&mut self, now: i64, room: Option<f64>, applied: f64, logs: &mut Vec<Log>) {
        let Some(fit) = self.st.fit.as_ref() else {
            return;
        };
        let p = fit.params;
        let gain_w = fit.gain_w;
        let d_max = observer::D_MAX_HEATERS * self.cfg.heater_w;
        let prev = self.history.last().copied();
        match (self.st.observer, prev) {
            (Some(mut o), Some(prev)) if now > o.t_ms => {
                let elapsed_s = (now - o.t_ms) as f64 / 1000.0;
                let Some(d) = Discrete::new(&p, elapsed_s) else {
                    return;
                };
                let ta = prev.ta.unwrap_or(o.ti);
                let u = [
                    ta,
                    applied.clamp(0.0, 100.0) / 100.0 * self.cfg.heater_w,
                    prev.isol,
                ];
                let mut l = match self.discrete() {
                    Some(ds) => observer::gain(&ds),
                    None => [1.0, 0.0, 0.0],
                };
                if !self.offset_free {
                    l[2] = 0.0;
                }
                o.update(&d, u, room, l, d_max, now);
                self.st.observer = Some(o);
            }
            (Some(_), _) => {
                if let (Some(o), Some(ti)) = (self.st.observer.as_mut(), room) {
                    o.ti = ti;
                    o.t_ms = now;
                }
            }
            (None, _) => {
                if let Some(ti) = room {
                    // Steady-state split of Ti − Ta across R_ie : R_ea.
                    let ta = prev.and_then(|o| o.ta).unwrap_or(ti - 10.0);
                    let te = ta + (ti - ta) * p.r_ea / (p.r_ie + p.r_ea);
                    self.st.observer = Some(Observer {
                        ti,
                        te,
                        t_ms: now,
                        d_w: gain_w.clamp(-d_max, d_max),
                    });
                    logs.push(Log::Info(format!(
                        "observer started: Ti {ti:.2} °C, Te {te:.2} °C (steady-state guess)"
                    )));
                }
            }
        }
    }

    fn refit_due(&self, now: i64) -> bool {
        let min_ms = (self.cfg.min_history_h * 3_600_000.0) as i64;
        if self.history.span_ms() < min_ms {
            return false;
        }
        let every = (self.cfg.refit_every_h * 3_600_000.0) as i64;
        let fitted = self.st.fit.as_ref().and_then(|f| f.fitted_at_ms);
        let success_due = fitted.is_none_or(|t| now - t >= every || now < t);
        // After a rejected attempt, retry after a quarter period (at least a step).
        let retry = (every / 4).max(self.cfg.step_ms());
        let attempt_ok = self
            .st
            .last_fit_attempt_ms
            .is_none_or(|t| now - t >= retry || now < t);
        success_due && attempt_ok
    }

    fn maybe_refit(&mut self, now: i64, room: Option<f64>, logs: &mut Vec<Log>) {
        if !self.refit_due(now) {
            return;
        }
        self.st.last_fit_attempt_ms = Some(now);
        let window = (self.cfg.history_h * 3_600_000.0) as i64;
        let Some(data) = self
            .history
            .dataset(self.cfg.step_ms(), window, self.cfg.heater_w)
        else {
            let why = "no usable history (no outdoor temperature recorded)".to_string();
            logs.push(Log::Warn(format!("fit skipped: {why}")));
            self.st.fit_error = Some(why);
            return;
        };
        let initial = self
            .st
            .fit
            .as_ref()
            .map_or_else(|| default_guess(self.cfg.heater_w), |f| f.params);
        // The prior of the constant gain is centred on the last fit's.
        let opts = FitOptions {
            prior_gain_w: self.st.fit.as_ref().map_or(0.0, |f| f.gain_w),
            ..self.fit_opts
        };
        let Some(res) = fit::fit(&data, &initial, &opts) else {
            let why = format!("history cannot support a fit ({} samples)", data.samples());
            logs.push(Log::Warn(format!("fit skipped: {why}")));
            self.st.fit_error = Some(why);
            return;
        };
        match res.check(&opts) {
            Ok(()) => {
                let p = res.params;
                let d_max = observer::D_MAX_HEATERS * self.cfg.heater_w;
                logs.push(Log::Info(format!(
                    "model fitted: RMSE {:.3} °C over {} samples, {} iterations; C_i {:.3e} J/K, C_e {:.3e} J/K, R_ie {:.3e} K/W, R_ea {:.3e} K/W, R_ia {}, A_w {:.2} m², UA {:.0} W/K, constant gain {:.0} W",
                    res.rmse_c,
                    res.samples,
                    res.iterations,
                    p.c_i,
                    p.c_e,
                    p.r_ie,
                    p.r_ea,
                    p.r_ia.map_or("none".into(), |r| format!("{r:.3e} K/W")),
                    p.a_w,
                    p.ua_w_per_k(),
                    res.gain_w
                )));
                self.st.fit = Some(FitRecord {
                    params: p,
                    rmse_c: Some(res.rmse_c),
                    fitted_at_ms: Some(now),
                    samples: res.samples,
                    iterations: res.iterations,
                    source: "fit".into(),
                    gain_w: res.gain_w,
                });
                self.st.fit_error = None;
                self.st.observer = Some(Observer {
                    ti: room.unwrap_or(res.x_end[0]),
                    te: res.x_end[1],
                    t_ms: now,
                    d_w: res.gain_w.clamp(-d_max, d_max),
                });
            }
            Err(why) => {
                logs.push(Log::Warn(format!(
                    "fit rejected, keeping the {} model: {why}",
                    self.st.fit.as_ref().map_or("(no)", |f| f.source.as_str())
                )));
                self.st.fit_error = Some(why);
            }
        }
    }

    fn hysteresis(&mut self, ti: f64) -> f64 {
        let c = &self.cfg;
        let on = crate::fallback::heating(
            ti,
            c.fallback_on_below_c,
            c.fallback_off_above_c,
            self.st.fallback_heating,
        );
        self.st.fallback_heating = on;
        if on { 100.0 } else { 0.0 }
    }

    fn thermostat(&mut self, ti: f64, reason: String) -> Decision {
        Decision::Fallback {
            pct: self.hysteresis(ti),
            reason,
        }
    }

    fn decide(&mut self, r: &Readings, room: Option<f64>, applied: f64) -> Decision {
        let Some(ti) = room else {
            return Decision::Fallback {
                pct: self.cfg.fallback_sensorless_pct,
                reason: format!(
                    "room sensor {} {}: fixed valve {:.0} % (no temperature to regulate on; enough to keep the house from freezing, not enough to overheat it)",
                    self.cfg.sensor,
                    r.room_why.unwrap_or(NoState::Unavailable),
                    self.cfg.fallback_sensorless_pct
                ),
            };
        };
        let Some(d) = self.discrete() else {
            let have_h = self.history.span_ms() as f64 / 3_600_000.0;
            return self.thermostat(
                ti,
                format!(
                    "no model yet ({have_h:.1} h of history, first fit after {:.1} h)",
                    self.cfg.min_history_h
                ),
            );
        };
        let n = self.cfg.steps();
        let step_ms = self.cfg.step_ms();
        let now = r.now_ms;
        let Some(price) = forecast::resample(&r.price, now, step_ms, n) else {
            return self.thermostat(ti, "no price forecast".into());
        };
        let ta = match forecast::resample(&r.ta, now, step_ms, n) {
            Some(v) => v,
            // Persistence of the outdoor sensor's reading.
            None => match r.outdoor_c.filter(|v| v.is_finite()) {
                Some(t) => vec![t; n],
                None => {
                    return self.thermostat(ti, "no outdoor temperature forecast or sensor".into());
                }
            },
        };
        let isol = forecast::resample(&r.isol, now, step_ms, n)
            .unwrap_or_else(|| vec![0.0; n])
            .into_iter()
            .map(|v| v.max(0.0))
            .collect();
        let te = self.st.observer.map_or(ti, |o| o.te);
        // Offset-free MPC: the disturbance estimate, held constant over the
        // horizon.
        let gain_w = self
            .st
            .observer
            .map_or_else(|| self.st.fit.as_ref().map_or(0.0, |f| f.gain_w), |o| o.d_w);
        let fc = Forecast {
            ta,
            isol,
            price,
            gain_w,
        };
        let u_prev = applied.clamp(0.0, 100.0) / 100.0;
        match (self.planner)(&d, [ti, te], u_prev, &fc, &self.cfg.qp_settings()) {
            Ok(plan) if !plan.u.is_empty() => Decision::Mpc(plan),
            Ok(_) => self.thermostat(ti, "solver returned an empty plan".into()),
            Err(e) => self.thermostat(ti, format!("{e}")),
        }
    }

    /// Sends `valve.set_valve_position` when the position changes by ≥ 1 %
    /// or (on ticks) the keep-alive is due.
    fn command(&mut self, now: i64, pct: f64, keep_alive: bool, out: &mut Output) {
        let c = &self.cfg;
        let pos = pct.clamp(c.valve_min_pct, c.valve_max_pct).round();
        let changed = self
            .st
            .last_cmd_pct
            .is_none_or(|last| (last - pos).abs() >= 1.0);
        let due = keep_alive
            && self
                .st
                .last_sent_ms
                .is_none_or(|t| now - t >= KEEP_ALIVE_MS || now < t);
        if changed || due {
            out.call(
                "valve",
                "set_valve_position",
                &c.valve,
                json!({"position": pos as i64}),
            );
            self.st.last_cmd_pct = Some(pos);
            self.st.last_sent_ms = Some(now);
            self.valve_mean.moved(now, pos);
        }
    }

    fn publish(&self, plan: Option<&Plan>, out: &mut Output) {
        let mode = match self.st.mode {
            Mode::Mpc => "mpc",
            Mode::Fallback => "fallback",
        };
        out.entity_with(entity::MODE, mode, json!({"reason": self.st.reason}));
        let pos = self.st.last_cmd_pct.unwrap_or(f64::NAN);
        let next_state = if pos.is_finite() {
            format!("{}", pos.round())
        } else {
            "unknown".into()
        };
        match plan {
            Some(p) => {
                let positions: Vec<i64> = p.u.iter().map(|u| (u * 100.0).round() as i64).collect();
                out.entity_with(
                    entity::NEXT_VALVE,
                    &next_state,
                    json!({"plan": positions, "step_min": self.cfg.step_min}),
                );
                let k = self.cfg.steps_per_hour().min(p.ti.len()) - 1;
                let traj: Vec<f64> = p.ti.iter().map(|t| (t * 100.0).round() / 100.0).collect();
                out.entity_with(
                    entity::PREDICTED,
                    &format!("{:.2}", p.ti[k]),
                    json!({"trajectory": traj}),
                );
                out.entity_with(
                    entity::COST,
                    &format!("{:.2}", p.energy_cost_eur),
                    json!({"objective_eur": (p.objective_eur * 1000.0).round() / 1000.0}),
                );
            }
            None => {
                out.entity_with(
                    entity::NEXT_VALVE,
                    &next_state,
                    json!({"plan": [], "step_min": self.cfg.step_min}),
                );
                out.entity_with(entity::PREDICTED, "unknown", json!({"trajectory": []}));
                out.entity_with(entity::COST, "unknown", Value::Null);
            }
        }
        match &self.st.fit {
            Some(f) => {
                let p = f.params;
                let (slow, fast) = p.time_constants_h();
                let attrs = json!({
                    "c_i_j_per_k": p.c_i,
                    "c_e_j_per_k": p.c_e,
                    "r_ie_k_per_w": p.r_ie,
                    "r_ea_k_per_w": p.r_ea,
                    "r_ia_k_per_w": p.r_ia,
                    "a_w_m2": p.a_w,
                    "ua_w_per_k": p.ua_w_per_k(),
                    "time_constants_h": [slow, fast],
                    "fitted_at_ms": f.fitted_at_ms,
                    "samples": f.samples,
                    "iterations": f.iterations,
                    "source": f.source,
                    "fit_gain_w": f.gain_w,
                    "disturbance_w": self.st.observer.map(|o| o.d_w),
                    "last_fit_error": self.st.fit_error,
                });
                let state = f.rmse_c.map_or("unknown".into(), |r| format!("{r:.3}"));
                out.entity_with(entity::RMSE, &state, attrs);
            }
            None => out.entity_with(
                entity::RMSE,
                "unknown",
                json!({"samples": self.history.len(), "last_fit_error": self.st.fit_error}),
            ),
        }
    }
}

/// A first guess scaled on the heater: a heater sized for ≈35 K of design
/// temperature difference gives the overall loss `g = heater_w/35` W/K; 10 %
/// of it direct, the rest through the envelope split 1:3; capacities for
/// time constants of ≈2 h (air) and ≈2 days (mass).
pub fn default_guess(heater_w: f64) -> Params {
    let g = (heater_w / 35.0).max(10.0);
    let series = 1.0 / (0.9 * g);
    Params {
        c_i: 2.0e4 * g,
        c_e: 2.5e5 * g,
        r_ie: 0.25 * series,
        r_ea: 0.75 * series,
        r_ia: Some(1.0 / (0.1 * g)),
        a_w: 2.0,
    }
}

#[cfg(test)]
mod valve_mean_tests {
    use super::ValveMean;

    #[test]
    fn the_mean_weights_each_position_by_its_time() {
        let mut m = ValveMean::default();
        assert_eq!(m.close(0), None, "no window before the first tick");
        m.moved(0, 100.0);
        m.moved(300_000, 0.0); // 5 min open, 10 min closed
        assert_eq!(m.close(900_000), Some(100.0 / 3.0));
        // Nothing moved: the position held all along.
        assert_eq!(m.close(1_800_000), Some(0.0));
        m.moved(1_800_000, 50.0);
        assert_eq!(m.close(2_700_000), Some(50.0));
    }
}

#[cfg(test)]
mod tests;
