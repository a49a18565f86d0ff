//! The recorded history the fit uses: one observation per tick in a bounded
//! ring, turned into a regular [`Dataset`].

use crate::fit::Dataset;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What one tick saw.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// When, ms since epoch.
    pub t_ms: i64,
    /// Room temperature, °C (`None`: sensor unavailable).
    #[serde(default)]
    pub ti: Option<f64>,
    /// Valve position applied during the step that ends at `t_ms`, %
    /// (the valve's `current_position`, else the last command).
    #[serde(default)]
    pub valve_pct: f64,
    /// Outdoor temperature, °C (`None`: unknown).
    #[serde(default)]
    pub ta: Option<f64>,
    /// Global horizontal irradiance, W/m² (0 when unknown).
    #[serde(default)]
    pub isol: f64,
}

impl Observation {
    fn is_sane(&self) -> bool {
        self.ti.is_none_or(f64::is_finite)
            && self.ta.is_none_or(f64::is_finite)
            && self.valve_pct.is_finite()
            && self.isol.is_finite()
    }
}

/// Observations, oldest first, bounded in time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct History {
    obs: VecDeque<Observation>,
}

impl History {
    /// From saved observations (insane or out-of-order ones dropped).
    pub fn from_saved(v: Vec<Observation>, keep_ms: i64, cap: usize) -> History {
        let mut h = History::default();
        for o in v {
            h.push(o, keep_ms, cap);
        }
        h
    }

    /// Observations, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Observation> {
        self.obs.iter()
    }

    /// Number held.
    pub fn len(&self) -> usize {
        self.obs.len()
    }

    /// None held.
    pub fn is_empty(&self) -> bool {
        self.obs.is_empty()
    }

    /// The newest.
    pub fn last(&self) -> Option<&Observation> {
        self.obs.back()
    }

    /// Appends `o`, dropping what is older than `keep_ms` before it and
    /// beyond `cap` entries. Same time as the newest: replaces it. Earlier
    /// than the newest (the host clock went back, e.g. a new twin run): the
    /// history no longer describes the present and is cleared.
    pub fn push(&mut self, o: Observation, keep_ms: i64, cap: usize) {
        if !o.is_sane() {
            return;
        }
        match self.obs.back() {
            Some(last) if last.t_ms == o.t_ms => {
                self.obs.pop_back();
            }
            Some(last) if last.t_ms > o.t_ms => self.obs.clear(),
            _ => {}
        }
        self.obs.push_back(o);
        while self.obs.front().is_some_and(|f| o.t_ms - f.t_ms > keep_ms)
            || self.obs.len() > cap.max(1)
        {
            self.obs.pop_front();
        }
    }

    /// Time from the first to the last observation with a room temperature,
    /// ms (0 if fewer than two).
    pub fn span_ms(&self) -> i64 {
        let mut with_ti = self.obs.iter().filter(|o| o.ti.is_some());
        match (with_ti.next(), with_ti.next_back()) {
            (Some(a), Some(b)) => b.t_ms - a.t_ms,
            _ => 0,
        }
    }

    /// The last `window_ms` on a regular grid of `step_ms` ending at the
    /// newest observation: `ti[j]` the observation nearest to grid point j
    /// (NaN if none); inputs over `[j, j+1)`: Ta and I_sol of point j (last
    /// known value held through gaps, leading gaps take the first known),
    /// heating `valve_pct/100 · heater_w` of point j+1 (the position applied
    /// during the step ending there; held through gaps). `None` without any
    /// outdoor temperature or with fewer than two grid points.
    pub fn dataset(&self, step_ms: i64, window_ms: i64, heater_w: f64) -> Option<Dataset> {
        let last = self.obs.back()?;
        if step_ms <= 0 {
            return None;
        }
        let start = last.t_ms - window_ms.max(0);
        let first = self.obs.iter().find(|o| o.t_ms >= start)?;
        let m = ((last.t_ms - first.t_ms) as f64 / step_ms as f64).round() as usize;
        if m == 0 {
            return None;
        }
        let grid0 = last.t_ms - m as i64 * step_ms;
        let mut slots: Vec<Option<Observation>> = vec![None; m + 1];
        for o in self.obs.iter().filter(|o| o.t_ms >= start) {
            let j = ((o.t_ms - grid0) as f64 / step_ms as f64).round();
            if (0.0..=m as f64).contains(&j) {
                slots[j as usize] = Some(*o);
            }
        }
        let first_ta = slots.iter().flatten().find_map(|o| o.ta)?;
        let first_valve = slots.iter().flatten().next().map_or(0.0, |o| o.valve_pct);
        let ti = slots
            .iter()
            .map(|s| s.and_then(|o| o.ti).unwrap_or(f64::NAN))
            .collect();
        let (mut ta, mut isol, mut valve) = (first_ta, 0.0, first_valve);
        let mut inputs = Vec::with_capacity(m);
        for j in 0..m {
            if let Some(o) = slots[j] {
                ta = o.ta.unwrap_or(ta);
                isol = o.isol;
            }
            if let Some(o) = slots[j + 1] {
                valve = o.valve_pct;
            }
            inputs.push([
                ta,
                valve.clamp(0.0, 100.0) / 100.0 * heater_w,
                isol.max(0.0),
            ]);
        }
        Some(Dataset {
            dt_s: step_ms as f64 / 1000.0,
            ti,
            inputs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(t: i64, ti: Option<f64>, valve: f64, ta: Option<f64>) -> Observation {
        Observation {
            t_ms: t,
            ti,
            valve_pct: valve,
            ta,
            isol: 0.0,
        }
    }

    #[test]
    fn ring_and_dataset() {
        let s = 900_000;
        let mut h = History::default();
        h.push(obs(0, Some(20.0), 0.0, Some(5.0)), 10 * s, 100);
        h.push(obs(s, Some(20.1), 50.0, None), 10 * s, 100);
        // a missing tick at 2s
        h.push(obs(3 * s + 1000, None, 100.0, Some(4.0)), 10 * s, 100);
        h.push(obs(4 * s, Some(20.4), 100.0, Some(3.0)), 10 * s, 100);
        h.push(obs(4 * s, Some(20.5), 100.0, Some(3.0)), 10 * s, 100); // replaces
        assert_eq!(h.len(), 4);
        assert_eq!(h.span_ms(), 4 * s);
        let d = h.dataset(s, 100 * s, 6000.0).unwrap();
        assert_eq!(d.dt_s, 900.0);
        assert_eq!(d.ti.len(), 5);
        assert_eq!(d.ti[0], 20.0);
        assert!(d.ti[2].is_nan() && d.ti[3].is_nan());
        assert_eq!(d.ti[4], 20.5);
        // Valve of the step ending at j+1; Ta held through the gap.
        let phi: Vec<f64> = d.inputs.iter().map(|u| u[1]).collect();
        assert_eq!(phi, [3000.0, 3000.0, 6000.0, 6000.0]);
        let ta: Vec<f64> = d.inputs.iter().map(|u| u[0]).collect();
        assert_eq!(ta, [5.0, 5.0, 5.0, 4.0]);
        // Time bound and cap.
        h.push(obs(20 * s, Some(20.0), 0.0, Some(1.0)), 10 * s, 100);
        assert_eq!(h.len(), 1);
        // Clock going back clears.
        h.push(obs(5 * s, Some(20.0), 0.0, Some(1.0)), 10 * s, 100);
        assert_eq!(h.len(), 1);
        assert_eq!(h.last().unwrap().t_ms, 5 * s);
        // NaN is refused; no outdoor temperature at all: no dataset.
        h.push(obs(6 * s, Some(f64::NAN), 0.0, None), 10 * s, 100);
        assert_eq!(h.len(), 1);
        let mut n = History::default();
        n.push(obs(0, Some(20.0), 0.0, None), 10 * s, 100);
        n.push(obs(s, Some(20.0), 0.0, None), 10 * s, 100);
        assert!(n.dataset(s, 10 * s, 6000.0).is_none());
        assert!(History::default().dataset(s, 10 * s, 6000.0).is_none());
    }
}
