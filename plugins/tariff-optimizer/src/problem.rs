//! The planning problem at one instant: a horizon of `steps` equal steps
//! from `start_ms`, the forecasts per step, the grid's limits and the
//! loads with their state now. Serializable (JSON), so the plugin can show
//! the problem it solved and `hearth plan` can export exactly that problem.
//!
//! Units: power W (mean over a step), energy Wh, price €/kWh, temperature
//! °C, time ms since the Unix epoch (UTC), steps counted from 0 = the step
//! that begins at `start_ms`.

use serde::{Deserialize, Serialize};

/// What the plan minimises (EMHASS's `costfun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Import cost: Σ import price × imported kWh (€).
    #[default]
    Cost,
    /// Import cost minus export revenue (€).
    Profit,
    /// Imported energy (kWh), import cost as a tie-break.
    SelfConsumption,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub start_ms: i64,
    /// Step length, s (900 or 1800 in practice).
    pub step_s: u32,
    pub steps: usize,
    /// €/kWh per step (len = steps).
    pub import_price: Vec<f64>,
    /// €/kWh per step (len = steps).
    pub export_price: Vec<f64>,
    /// PV production forecast, W AC per step (len = steps).
    pub pv_w: Vec<f64>,
    /// Base load (everything not planned), W per step (len = steps).
    pub base_w: Vec<f64>,
    /// The contract's subscribed power, W (e.g. 9 kVA ≈ 9000 W).
    pub import_limit_w: f64,
    /// Largest export, W (`None`: no limit).
    pub export_limit_w: Option<f64>,
    pub objective: Objective,
    pub loads: Vec<Load>,
}

/// One flexible load. `earliest..deadline` (steps, end exclusive) is where
/// it may draw power; outside it draws none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Load {
    pub id: String,
    pub earliest: usize,
    pub deadline: usize,
    pub kind: LoadKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LoadKind {
    /// Energy to deliver in the window at up to `nominal_w` (EMHASS's
    /// deferrable load).
    Deferrable(Deferrable),
    /// A programme with a power profile that runs once, from one start to
    /// its end, never split (a washing machine's cycle).
    Sequence(Sequence),
    /// A storage water heater: an on/off element heating a tank that
    /// loses heat and is drawn from; the tank must be at least `min_c` at
    /// each `ready` step.
    Thermal(Thermal),
    /// A battery (an EV, laptops): energy into it by the deadline, at up
    /// to `max_w`.
    Battery(Battery),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deferrable {
    pub nominal_w: f64,
    /// Energy still to deliver in the window, Wh.
    pub energy_wh: f64,
    /// On/off at `nominal_w` (true), or any power in `[0, nominal_w]`.
    pub semi_continuous: bool,
    /// One run of consecutive steps, never split.
    pub single_start: bool,
    /// Shortest run and shortest pause, steps.
    pub min_on_steps: usize,
    pub min_off_steps: usize,
    /// Most starts in the horizon (`None`: any).
    pub max_starts: Option<u32>,
    /// Steps it has already been on, without a pause, up to now (0: off
    /// now). A running single-start load continues (never moved).
    pub running_steps: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    /// Mean power of each step of the programme, W.
    pub profile_w: Vec<f64>,
    /// Steps of the programme already run (`Some`: it has started and its
    /// remaining steps are fixed from step 0; `None`: not started).
    pub started: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thermal {
    /// The element, W (on/off).
    pub nominal_w: f64,
    /// Tank temperature now, °C.
    pub temp_c: f64,
    /// Heat capacity of the tank, Wh/K (litres × 1.163).
    pub capacity_wh_per_k: f64,
    /// Standing loss, W/K to `ambient_c`.
    pub loss_w_per_k: f64,
    pub ambient_c: f64,
    /// The tank's own thermostat: the element cannot heat above this, °C.
    pub max_c: f64,
    /// (step, °C): at the start of that step the tank is at least this warm.
    pub ready: Vec<(usize, f64)>,
    /// Expected hot-water draws, heat Wh taken per step (len = steps).
    pub draw_wh: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Battery {
    pub max_w: f64,
    /// Energy still to put in by the deadline, Wh (from the grid side).
    pub energy_wh: f64,
    /// On/off at `max_w` (a plug-switched charger) or any power up to it.
    pub semi_continuous: bool,
}

impl Problem {
    /// Step length, h.
    pub fn dt_h(&self) -> f64 {
        self.step_s as f64 / 3600.0
    }

    /// Start of step `k`, ms.
    pub fn step_ms(&self, k: usize) -> i64 {
        self.start_ms + k as i64 * self.step_s as i64 * 1000
    }

    /// The first inconsistency: a series of the wrong length, a
    /// non-finite number, a window outside the horizon.
    pub fn check(&self) -> Result<(), String> {
        if self.steps == 0 || self.step_s == 0 {
            return Err("the horizon has no steps".into());
        }
        for (name, s) in [
            ("import_price", &self.import_price),
            ("export_price", &self.export_price),
            ("pv_w", &self.pv_w),
            ("base_w", &self.base_w),
        ] {
            if s.len() != self.steps {
                return Err(format!(
                    "{name} has {} values for {} steps",
                    s.len(),
                    self.steps
                ));
            }
            if let Some(k) = s.iter().position(|v| !v.is_finite()) {
                return Err(format!("{name}[{k}] is not a number"));
            }
        }
        if !(self.import_limit_w.is_finite() && self.import_limit_w > 0.0) {
            return Err(format!(
                "import_limit_w must be > 0 W, got {}",
                self.import_limit_w
            ));
        }
        if let Some(x) = self.export_limit_w
            && !(x.is_finite() && x >= 0.0)
        {
            return Err(format!("export_limit_w must be null or >= 0 W, got {x}"));
        }
        for l in &self.loads {
            if l.earliest > l.deadline || l.deadline > self.steps {
                return Err(format!(
                    "load `{}`: window {}..{} is outside the horizon of {} steps",
                    l.id, l.earliest, l.deadline, self.steps
                ));
            }
            l.check(self.steps)
                .map_err(|e| format!("load `{}`: {e}", l.id))?;
        }
        Ok(())
    }
}

/// `v` is a number (`what` names it).
fn finite(what: &str, v: f64) -> Result<(), String> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(format!("{what} must be a finite number, got {v}"))
    }
}

/// `v` is a number > 0 (it is divided by).
fn positive(what: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("{what} must be a number > 0, got {v}"))
    }
}

/// `v` is a number >= 0.
fn non_negative(what: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!("{what} must be a number >= 0, got {v}"))
    }
}

/// A step count at most the horizon's `steps`.
fn within(what: &str, k: usize, steps: usize) -> Result<(), String> {
    if k <= steps {
        Ok(())
    } else {
        Err(format!(
            "{what} is {k}, more than the horizon's {steps} steps"
        ))
    }
}

impl Load {
    /// The first number of this load the model cannot take (the field
    /// named): NaN or infinite, 0 or negative where it is divided by, a
    /// step count beyond the horizon (`t + min_on` would overflow), a
    /// series of the wrong length. A problem read from outside (`hearth
    /// plan` reads the plugin's published one) is checked as a whole.
    pub fn check(&self, steps: usize) -> Result<(), String> {
        match &self.kind {
            LoadKind::Deferrable(d) => {
                positive("nominal_w", d.nominal_w)?;
                finite("energy_wh", d.energy_wh)?;
                within("min_on_steps", d.min_on_steps, steps)?;
                within("min_off_steps", d.min_off_steps, steps)?;
                within("running_steps", d.running_steps, steps)?;
            }
            LoadKind::Sequence(s) => {
                if s.profile_w.is_empty() {
                    return Err("profile_w is empty".into());
                }
                if let Some(k) = s.profile_w.iter().position(|w| !w.is_finite()) {
                    return Err(format!(
                        "profile_w[{k}] must be a finite number, got {}",
                        s.profile_w[k]
                    ));
                }
                if let Some(k) = s.started
                    && k >= s.profile_w.len()
                {
                    return Err(format!(
                        "started is {k}, past the programme's {} steps",
                        s.profile_w.len()
                    ));
                }
            }
            LoadKind::Thermal(t) => {
                positive("nominal_w", t.nominal_w)?;
                finite("temp_c", t.temp_c)?;
                positive("capacity_wh_per_k", t.capacity_wh_per_k)?;
                non_negative("loss_w_per_k", t.loss_w_per_k)?;
                finite("ambient_c", t.ambient_c)?;
                finite("max_c", t.max_c)?;
                for (i, &(k, c)) in t.ready.iter().enumerate() {
                    within(&format!("ready[{i}] step"), k, steps)?;
                    finite(&format!("ready[{i}] temperature"), c)?;
                }
                if t.draw_wh.len() != steps {
                    return Err(format!(
                        "draw_wh has {} values for {steps} steps",
                        t.draw_wh.len()
                    ));
                }
                if let Some(k) = t.draw_wh.iter().position(|w| !w.is_finite()) {
                    return Err(format!(
                        "draw_wh[{k}] must be a finite number, got {}",
                        t.draw_wh[k]
                    ));
                }
            }
            LoadKind::Battery(b) => {
                positive("max_w", b.max_w)?;
                finite("energy_wh", b.energy_wh)?;
            }
        }
        Ok(())
    }
}
