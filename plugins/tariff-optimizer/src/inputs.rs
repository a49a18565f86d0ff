//! What the optimizer reads, turned into a [`Problem`]: the plan grid, the
//! host's forecasts sampled onto it (with documented fallbacks), and each
//! load's entities.
//!
//! - The grid: steps of `step_s` aligned to multiples of `step_s` since the
//!   epoch; step 0 is the step `now` is in (partly past), so a re-plan in
//!   the middle of a step keeps its boundaries.
//! - Forecast series (each sample holds until the next, NaN = a gap): the
//!   mean over each step. Where a series is missing, or before its first
//!   sample, or in a gap, the fallback applies: `price` → `import_price`,
//!   `export-price` → `export_price`, `base-load` → `base_load_w`,
//!   `pv-power` → 0 W (no PV). The last sample holds to the horizon's end.
//! - Loads, in config order (the problem holds only those with something to
//!   plan; [`Built::index`] maps them back):
//!   - a machine (`sequence`): loaded (`ready` on) and not started: window
//!     from step 0 to its `deadline` entity (RFC 3339; none, unavailable or
//!     in the past: the end of the horizon / the programme's length, i.e.
//!     as soon as possible); started (its relay switched on while loaded,
//!     in [`Memory`]): `Sequence{started: Some(k)}`, k = steps since the
//!     step it started in, so a re-plan never moves it; done when `ready`
//!     goes off, or when its programme's time is over and its power
//!     sensor (if any) reads near 0 W ([`machine_over`]; then left out,
//!     in [`Memory::done`], until `ready` goes off);
//!   - an EV (`battery`): plugged and below target: energy
//!     `(target − soc) × capacity / efficiency` (soc: the reading less half
//!     its last digit, [`soc_floor_pct`]) by its departure (`deadline`
//!     entity; none: the horizon's end), capped to what `max_w` can deliver
//!     in the window (an overdue departure charges in step 0);
//!   - a water heater (`thermal`): the tank temperature now, daily `ready`
//!     (`at` local → the step starting at or before it; steps 1.. only) and
//!     `draws` (heat Wh in the step containing `at`, from now on: one
//!     earlier in step 0 is in the temperature reading already). Without a temperature
//!     reading it is left out (and left enabled: its thermostat regulates);
//!   - any other load on a plug (`deferrable`): its daily window (the one
//!     `now` is in, else the next; whole steps inside it) and the energy
//!     still due in it (`energy_wh`, less what [`account`] counted); on now
//!     (in its window): `running_steps` = steps since its relay turned on,
//!     counting the current one, so a single-start run continues.

use crate::config::{Config, DeferrableConfig, LoadConfig, SequenceConfig};
use crate::problem::{Battery, Deferrable, Load, LoadKind, Problem, Sequence, Thermal};
use crate::time::parse_rfc3339_ms;
use hearth_plugin_sdk::{Reading, Sample, State, forecast};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Heat capacity of water, Wh/(l·K).
pub const WATER_WH_PER_L_K: f64 = 1.163;

/// Forecast series the optimizer reads.
pub const PRICE: &str = "price";
pub const EXPORT_PRICE: &str = "export-price";
pub const PV_POWER: &str = "pv-power";
pub const BASE_LOAD: &str = "base-load";

/// The plan grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub start_ms: i64,
    pub step_ms: i64,
    pub steps: usize,
}

impl Grid {
    pub fn new(cfg: &Config, now_ms: i64) -> Grid {
        let step_ms = cfg.step_s as i64 * 1000;
        Grid {
            start_ms: now_ms.div_euclid(step_ms) * step_ms,
            step_ms,
            steps: cfg.steps(),
        }
    }

    pub fn end_ms(&self) -> i64 {
        self.start_ms + self.steps as i64 * self.step_ms
    }

    /// The step `t_ms` falls in (may be negative or ≥ steps).
    pub fn step_of(&self, t_ms: i64) -> i64 {
        (t_ms - self.start_ms).div_euclid(self.step_ms)
    }
}

/// What the plugin remembers across re-plans (and restarts): the machines
/// it started (load id → start time, ms).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Memory {
    pub started: BTreeMap<String, i64>,
    /// Energy a deferrable load got in its current window (load id →).
    pub delivered: BTreeMap<String, Delivered>,
    /// Machines whose programme is over while `ready` still reads on (an
    /// input_boolean nobody reset): left out of the plan until `ready`
    /// goes off, so they are neither held on nor run again.
    pub done: BTreeSet<String>,
}

/// Energy delivered to a deferrable load in one daily window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Delivered {
    pub window_start_ms: i64,
    pub wh: f64,
    /// Counted up to here, ms.
    pub counted_ms: i64,
}

/// Counts the energy `d` got since the last call, in its current window
/// (restarting at 0 in a new window): while its relay reads on, at its
/// power sensor's reading if it has one, else at `nominal_w`. Returns the
/// energy delivered in the window `now_ms` is in (or 0 before a window).
pub fn account(
    d: &DeferrableConfig,
    delivered: &mut BTreeMap<String, Delivered>,
    now_ms: i64,
    utc_offset_min: i32,
) -> f64 {
    let (ws, we) = d.window(now_ms, utc_offset_min);
    let e = delivered.entry(d.id.clone()).or_insert(Delivered {
        window_start_ms: ws,
        wh: 0.0,
        counted_ms: now_ms,
    });
    if e.window_start_ms != ws {
        *e = Delivered {
            window_start_ms: ws,
            wh: 0.0,
            counted_ms: now_ms.max(ws),
        };
    }
    let (a, b) = (e.counted_ms.max(ws), now_ms.min(we));
    if b > a && is_on(&d.switch) == Some(true) {
        let w = d
            .power
            .as_deref()
            .and_then(number)
            .map_or(d.nominal_w, |w| w.max(0.0));
        e.wh += w * (b - a) as f64 / 3_600_000.0;
    }
    e.counted_ms = e.counted_ms.max(now_ms);
    if ws <= now_ms { e.wh } else { 0.0 }
}

/// How much of a series came from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Every step from the series.
    Full,
    /// Some steps (or parts) from the fallback.
    Partial,
    /// No series: the fallback everywhere.
    Missing,
}

/// The step-mean of a step series (each sample holds until the next; NaN:
/// a gap) over each step of `grid`; `fallback` where it is not known.
pub fn sample_onto(samples: &[Sample], grid: &Grid, fallback: f64) -> (Vec<f64>, Coverage) {
    if samples.is_empty() {
        return (vec![fallback; grid.steps], Coverage::Missing);
    }
    let mut out = Vec::with_capacity(grid.steps);
    let mut unknown_ms = 0_i64;
    for k in 0..grid.steps {
        let (a, b) = (
            grid.start_ms + k as i64 * grid.step_ms,
            grid.start_ms + (k as i64 + 1) * grid.step_ms,
        );
        let mut sum = 0.0;
        // Before the first sample.
        let first = samples[0].time_ms;
        if first > a {
            let span = first.min(b) - a;
            sum += fallback * span as f64;
            unknown_ms += span;
        }
        for (i, s) in samples.iter().enumerate() {
            let until = samples.get(i + 1).map_or(i64::MAX, |n| n.time_ms);
            let (lo, hi) = (s.time_ms.max(a), until.min(b));
            if hi <= lo {
                continue;
            }
            let span = (hi - lo) as f64;
            if s.value.is_finite() {
                sum += s.value * span;
            } else {
                sum += fallback * span;
                unknown_ms += hi - lo;
            }
        }
        out.push(sum / grid.step_ms as f64);
    }
    let cov = if unknown_ms == 0 {
        Coverage::Full
    } else {
        Coverage::Partial
    };
    (out, cov)
}

/// The host's `series` over the grid (with the sample in force at its
/// start), sampled by [`sample_onto`].
pub fn read_series(series: &str, grid: &Grid, fallback: f64) -> (Vec<f64>, Coverage) {
    let mut s = forecast(series, grid.start_ms, grid.end_ms());
    if s.first().is_none_or(|f| f.time_ms > grid.start_ms) {
        // The bridge starts a range with the sample in force; a host that
        // does not (or a series that starts later) is looked back a day.
        let back = forecast(series, grid.start_ms - 86_400_000, grid.start_ms);
        if let Some(last) = back.into_iter().rfind(|b| b.time_ms <= grid.start_ms) {
            s.retain(|x| x.time_ms > last.time_ms);
            s.insert(0, last);
        }
    }
    sample_onto(&s, grid, fallback)
}

/// The problem built at one instant, and how.
#[derive(Debug, Clone)]
pub struct Built {
    pub problem: Problem,
    /// Config index of each of the problem's loads.
    pub index: Vec<usize>,
    /// How each forecast series was covered: (series, coverage).
    pub coverage: Vec<(&'static str, Coverage)>,
    /// Thermal loads left out for want of a temperature (config index).
    pub blind_thermal: Vec<usize>,
    /// Remarks worth a log line (a deadline already missed …).
    pub notes: Vec<String>,
}

/// `binary_sensor` on/off (`None`: unavailable or missing).
pub fn is_on(entity: &str) -> Option<bool> {
    State::get(entity)?.is_on()
}

/// A timestamp entity's value, ms (`None`: unavailable, missing or not
/// RFC 3339).
pub fn timestamp_ms(entity: &str) -> Option<i64> {
    let r = Reading::get(entity);
    let s = r.state()?;
    parse_rfc3339_ms(s.state.trim()).or_else(|| {
        let ts = s.attributes.get("timestamp")?.as_f64()?;
        ts.is_finite().then_some((ts * 1000.0) as i64)
    })
}

/// A number entity's value.
pub fn number(entity: &str) -> Option<f64> {
    Reading::get(entity).number()
}

/// A battery's state of charge, %, at the low end of what its reading
/// may stand for: a reading is rounded to its last digit ("80.0" may be
/// 79.95, "80" may be 79.5), so half a unit of that digit is taken off.
/// Charging "to 80 %" then never stops a hair below it.
pub fn soc_floor_pct(entity: &str) -> Option<f64> {
    let r = Reading::get(entity);
    let s = r.state()?.state.trim().to_string();
    let v = r.number()?;
    let decimals = s.split_once('.').map_or(0, |(_, f)| {
        f.chars().take_while(|c| c.is_ascii_digit()).count()
    });
    Some(v - 0.5 * 10f64.powi(-(decimals.min(6) as i32)))
}

/// The programme's profile resampled onto plan steps of `step_s`: the
/// mean power of each plan step from its start (the last step padded with
/// 0 W).
pub fn profile_on_grid(s: &SequenceConfig, step_s: u32) -> Vec<f64> {
    let p = s.profile_step_s as f64;
    let total = s.profile_w.len() as f64 * p;
    let n = (total / step_s as f64 - 1e-9).ceil().max(1.0) as usize;
    (0..n)
        .map(|k| {
            let (a, b) = (k as f64 * step_s as f64, (k + 1) as f64 * step_s as f64);
            let wh: f64 = s
                .profile_w
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let (lo, hi) = ((i as f64 * p).max(a), ((i + 1) as f64 * p).min(b));
                    w * (hi - lo).max(0.0)
                })
                .sum();
            wh / step_s as f64
        })
        .collect()
}

/// Energy still to charge, Wh from the grid (0 at or above target).
pub fn battery_need_wh(soc_pct: f64, target_pct: f64, capacity_wh: f64, efficiency: f64) -> f64 {
    ((target_pct - soc_pct).max(0.0) / 100.0 * capacity_wh / efficiency).max(0.0)
}

/// Steps of a programme already run: how many steps before the grid's
/// step 0 the step it started in is (0: it started in the current step).
pub fn machine_started_step(grid: &Grid, started_ms: i64) -> usize {
    grid.step_of(started_ms).min(0).unsigned_abs() as usize
}

/// Whether a started programme is over at `grid`'s step 0: its time is
/// past (`k >= ` its steps) and its power sensor, if it has one with a
/// reading, reads near 0 W (under 5 % of the profile's peak or under
/// 10 W). A machine still drawing past its profile (a longer cycle than
/// recorded) is not over: its last step's power stays planned.
pub fn machine_over(s: &SequenceConfig, grid: &Grid, started_ms: i64, step_s: u32) -> bool {
    let profile = profile_on_grid(s, step_s);
    if machine_started_step(grid, started_ms) < profile.len() {
        return false;
    }
    let peak = profile.iter().copied().fold(0.0, f64::max);
    s.power
        .as_deref()
        .and_then(number)
        .is_none_or(|w| w < (0.05 * peak).max(10.0))
}

/// Reads everything and builds the problem at `now_ms`.
pub fn build(cfg: &Config, now_ms: i64, mem: &Memory) -> Built {
    let grid = Grid::new(cfg, now_ms);
    let (import_price, c1) = read_series(PRICE, &grid, cfg.import_price);
    let (export_price, c2) = read_series(EXPORT_PRICE, &grid, cfg.export_price);
    let (pv_w, c3) = read_series(PV_POWER, &grid, 0.0);
    let (base_w, c4) = read_series(BASE_LOAD, &grid, cfg.base_load_w);
    let coverage = vec![
        (PRICE, c1),
        (EXPORT_PRICE, c2),
        (PV_POWER, c3),
        (BASE_LOAD, c4),
    ];
    let steps = grid.steps;
    let dt_h = cfg.step_s as f64 / 3600.0;
    let mut loads = Vec::new();
    let mut index = Vec::new();
    let mut blind_thermal = Vec::new();
    let mut notes = Vec::new();
    let deadline_step = |entity: &Option<String>| -> Option<i64> {
        entity
            .as_deref()
            .and_then(timestamp_ms)
            .map(|t| grid.step_of(t))
    };
    for (i, l) in cfg.loads.iter().enumerate() {
        let kind;
        let mut earliest = 0;
        let mut deadline = steps;
        match l {
            LoadConfig::Sequence(s) => {
                let profile = profile_on_grid(s, cfg.step_s);
                if mem.done.contains(&s.id) {
                    continue;
                }
                if let Some(&t0) = mem.started.get(&s.id) {
                    // Past its profile but still drawing (see
                    // [`machine_over`]): its last step's power holds.
                    let k = machine_started_step(&grid, t0).min(profile.len() - 1);
                    kind = LoadKind::Sequence(Sequence {
                        profile_w: profile,
                        started: Some(k),
                    });
                } else if is_on(&s.ready) == Some(true) {
                    let len = profile.len();
                    if let Some(d) = deadline_step(&s.deadline) {
                        if d < len as i64 {
                            notes.push(format!(
                                "{}: its deadline leaves less than the programme's {} steps: as soon as possible",
                                s.id, len
                            ));
                        }
                        deadline = (d.max(len as i64) as usize).min(steps);
                    }
                    kind = LoadKind::Sequence(Sequence {
                        profile_w: profile,
                        started: None,
                    });
                } else {
                    continue;
                }
            }
            LoadConfig::Battery(b) => {
                if is_on(&b.plugged) != Some(true) {
                    continue;
                }
                let Some(soc) = soc_floor_pct(&b.soc) else {
                    notes.push(format!("{}: {} has no reading: not charged", b.id, b.soc));
                    continue;
                };
                let need = battery_need_wh(soc, b.target_pct, b.capacity_wh, b.efficiency);
                if need <= 0.0 {
                    continue;
                }
                if let Some(d) = deadline_step(&b.deadline) {
                    if d < 1 {
                        notes.push(format!("{}: departure overdue: charging now", b.id));
                    }
                    deadline = (d.max(1) as usize).min(steps);
                }
                let most = 0.999 * b.max_w * dt_h * deadline as f64;
                if need > most {
                    notes.push(format!(
                        "{}: {:.0} Wh needed, at most {:.0} Wh by its departure",
                        b.id, need, most
                    ));
                }
                kind = LoadKind::Battery(Battery {
                    max_w: b.max_w,
                    energy_wh: need.min(most),
                    semi_continuous: true,
                });
            }
            LoadConfig::Deferrable(d) => {
                let (ws, we) = d.window(now_ms, cfg.utc_offset_min);
                let done = if ws <= now_ms {
                    mem.delivered
                        .get(&d.id)
                        .filter(|x| x.window_start_ms == ws)
                        .map_or(0.0, |x| x.wh)
                } else {
                    0.0
                };
                let energy_wh = d.energy() - done;
                // Whole steps inside the window only.
                let first = (ws - grid.start_ms + grid.step_ms - 1).div_euclid(grid.step_ms);
                let last = grid.step_of(we);
                earliest = first.clamp(0, steps as i64) as usize;
                deadline = last.clamp(0, steps as i64) as usize;
                if energy_wh <= 1e-6 || deadline <= earliest {
                    continue;
                }
                let on = State::get(&d.switch).filter(|s| s.is_on() == Some(true));
                let running_steps = match on {
                    Some(s) if earliest == 0 => {
                        grid.step_of(s.last_changed_ms).min(0).unsigned_abs() as usize + 1
                    }
                    _ => 0,
                };
                let steps_of = |s: u32| (s as f64 / cfg.step_s as f64).ceil() as usize;
                kind = LoadKind::Deferrable(Deferrable {
                    nominal_w: d.nominal_w,
                    energy_wh,
                    semi_continuous: d.semi_continuous,
                    single_start: d.single_start,
                    min_on_steps: steps_of(d.min_on_s),
                    min_off_steps: steps_of(d.min_off_s),
                    max_starts: d.max_starts,
                    running_steps,
                });
            }
            LoadConfig::Thermal(t) => {
                let Some(temp_c) = number(&t.temperature) else {
                    blind_thermal.push(i);
                    continue;
                };
                let mut ready: Vec<(usize, f64)> = Vec::new();
                for r in &t.ready {
                    for at in
                        r.at.occurrences(grid.start_ms, grid.end_ms(), cfg.utc_offset_min)
                    {
                        let k = grid.step_of(at);
                        if k >= 1 && (k as usize) < steps {
                            ready.push((k as usize, r.min_c));
                        }
                    }
                }
                ready.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
                ready.dedup_by_key(|r| r.0);
                let mut draw_wh = vec![0.0; steps];
                // From now: a draw earlier in step 0 is in the reading already.
                for d in &t.draws {
                    for at in d.at.occurrences(now_ms, grid.end_ms(), cfg.utc_offset_min) {
                        let k = grid.step_of(at);
                        if (0..steps as i64).contains(&k) {
                            draw_wh[k as usize] += d.wh;
                        }
                    }
                }
                kind = LoadKind::Thermal(Thermal {
                    nominal_w: t.nominal_w,
                    temp_c,
                    capacity_wh_per_k: t.volume_l * WATER_WH_PER_L_K,
                    loss_w_per_k: t.loss_w_per_k,
                    ambient_c: t.ambient_c,
                    max_c: t.max_c,
                    ready,
                    draw_wh,
                });
            }
        }
        loads.push(Load {
            id: l.id().to_string(),
            earliest,
            deadline,
            kind,
        });
        index.push(i);
    }
    Built {
        problem: Problem {
            start_ms: grid.start_ms,
            step_s: cfg.step_s,
            steps,
            import_price,
            export_price,
            pv_w,
            base_w,
            import_limit_w: cfg.import_limit_w,
            export_limit_w: cfg.export_limit_w,
            objective: cfg.objective,
            loads,
        },
        index,
        coverage,
        blind_thermal,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample {
            time_ms: t,
            value: v,
        }
    }

    #[test]
    fn step_means_and_fallbacks() {
        let g = Grid {
            start_ms: 0,
            step_ms: 1000,
            steps: 3,
        };
        // 1 on [0, 500), 3 from 500 on: 2, 3, 3.
        let (v, c) = sample_onto(&[s(0, 1.0), s(500, 3.0)], &g, 9.0);
        assert_eq!((v, c), (vec![2.0, 3.0, 3.0], Coverage::Full));
        // Starts at 1500: fallback 9 before; a gap [2000, 2500).
        let (v, c) = sample_onto(&[s(1500, 1.0), s(2000, f64::NAN), s(2500, 3.0)], &g, 9.0);
        assert_eq!((v, c), (vec![9.0, 5.0, 6.0], Coverage::Partial));
        assert_eq!(sample_onto(&[], &g, 4.0), (vec![4.0; 3], Coverage::Missing));
    }

    #[test]
    fn profiles_are_resampled_onto_the_grid() {
        let seq: SequenceConfig = serde_json::from_value(serde_json::json!({
            "id": "m", "switch": "switch.m", "ready": "binary_sensor.m",
            "profile_w": [2000, 2000, 300, 300, 600], "profile_step_s": 900
        }))
        .unwrap();
        assert_eq!(profile_on_grid(&seq, 1800), vec![2000.0, 300.0, 300.0]);
        assert_eq!(
            profile_on_grid(&seq, 900),
            vec![2000.0, 2000.0, 300.0, 300.0, 600.0]
        );
        assert_eq!(profile_on_grid(&seq, 3600), vec![1150.0, 150.0]);
        assert_eq!(battery_need_wh(35.0, 80.0, 40_000.0, 0.9), 20_000.0);
        assert_eq!(battery_need_wh(85.0, 80.0, 40_000.0, 0.9), 0.0);
    }
}
