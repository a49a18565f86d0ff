//! A washing machine or a dishwasher behind a smart plug (delayed start by
//! relay): loaded at `load_at` every day and due by the next `done_by`;
//! it runs its programme (a power profile, W per `profile_step_s`) while
//! loaded AND its relay is on. The relay off mid-programme pauses it
//! (counted as a split); on again, it resumes where it was. At the end of
//! the programme it is done: empty (`ready` off) until the next loading.
//!
//! Counted: programmes begun (`starts`), pauses mid-programme (`splits`),
//! and deadlines met or missed (done by `done_by`, judged by the house).

use super::LocalTime;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MachineSpec {
    /// Loaded (and ready to start) at this local time every day.
    pub load_at: LocalTime,
    /// Due done by the first such local time after loading.
    pub done_by: LocalTime,
    /// Mean power of each `profile_step_s` of the programme, W.
    pub profile_w: Vec<f64>,
    #[serde(default = "five_min")]
    pub profile_step_s: f64,
}

fn five_min() -> f64 {
    300.0
}

impl MachineSpec {
    pub fn check(&self, what: &str) -> Result<(), String> {
        if self.profile_w.is_empty() {
            return Err(format!("`{what}.profile_w` is empty"));
        }
        if self.profile_w.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(format!("`{what}.profile_w` must be ≥ 0 W"));
        }
        if !(self.profile_step_s.is_finite() && self.profile_step_s >= 1.0) {
            return Err(format!("`{what}.profile_step_s` must be ≥ 1 s"));
        }
        Ok(())
    }

    /// The programme's length, s.
    pub fn duration_s(&self) -> f64 {
        self.profile_w.len() as f64 * self.profile_step_s
    }

    /// The programme's energy, Wh.
    pub fn programme_wh(&self) -> f64 {
        self.profile_w.iter().sum::<f64>() * self.profile_step_s / 3600.0
    }

    /// Energy of the programme between `from_s` and `to_s` into it, Wh.
    fn energy_between(&self, from_s: f64, to_s: f64) -> f64 {
        let step = self.profile_step_s;
        let mut wh = 0.0;
        let mut a = from_s;
        while a < to_s - 1e-9 {
            let k = (a / step).floor() as usize;
            let Some(w) = self.profile_w.get(k) else {
                break;
            };
            let b = ((k + 1) as f64 * step).min(to_s);
            wh += w * (b - a) / 3600.0;
            a = b;
        }
        wh
    }
}

#[derive(Debug, Clone)]
pub struct Machine {
    pub spec: MachineSpec,
    /// Loaded and not done (waiting or running).
    pub loaded: bool,
    /// The current load's "done by", ms.
    pub deadline_ms: Option<i64>,
    /// Seconds of the programme run so far.
    pub progress_s: f64,
    /// It ran during the last step.
    pub running: bool,
    pub power_w: f64,
    pub energy_wh: f64,
    pub starts: u64,
    pub splits: u64,
    /// When the last programme ended, ms.
    pub done_ms: Option<i64>,
}

impl Machine {
    pub fn new(spec: MachineSpec) -> Self {
        Machine {
            spec,
            loaded: false,
            deadline_ms: None,
            progress_s: 0.0,
            running: false,
            power_w: 0.0,
            energy_wh: 0.0,
            starts: 0,
            splits: 0,
            done_ms: None,
        }
    }

    /// Someone loads it, due by `deadline_ms`. Refused (false) while a
    /// previous load is still there.
    pub fn load(&mut self, deadline_ms: i64) -> bool {
        if self.loaded {
            return false;
        }
        self.loaded = true;
        self.deadline_ms = Some(deadline_ms);
        self.progress_s = 0.0;
        true
    }

    /// `binary_sensor.<id>_ready`: loaded and waiting, or running.
    pub fn ready(&self) -> bool {
        self.loaded
    }

    /// One step from `t_ms` of `dt_s` with the relay `on`; returns the
    /// mean power over the step, W.
    pub fn step(&mut self, t_ms: i64, relay_on: bool, dt_s: f64) -> f64 {
        let run = self.loaded && relay_on;
        if self.loaded && !relay_on && self.running && self.progress_s > 0.0 {
            self.splits += 1;
        }
        if run && self.progress_s == 0.0 {
            self.starts += 1;
        }
        self.running = run;
        if !run {
            self.power_w = 0.0;
            return 0.0;
        }
        let total = self.spec.duration_s();
        let to = (self.progress_s + dt_s).min(total);
        let wh = self.spec.energy_between(self.progress_s, to);
        let ran_s = to - self.progress_s;
        self.progress_s = to;
        self.energy_wh += wh;
        self.power_w = wh * 3600.0 / dt_s;
        if self.progress_s >= total - 1e-9 {
            self.loaded = false;
            self.running = false;
            self.done_ms = Some(t_ms + (ran_s * 1000.0).round() as i64);
        }
        self.power_w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn washer() -> Machine {
        Machine::new(MachineSpec {
            load_at: LocalTime::hm(8, 0),
            done_by: LocalTime::hm(7, 0),
            profile_w: vec![2000.0, 2000.0, 300.0, 300.0, 600.0, 100.0],
            profile_step_s: 900.0,
        })
    }

    #[test]
    fn a_programme_runs_only_loaded_with_its_relay_on() {
        let mut m = washer();
        assert_eq!(m.step(0, true, 60.0), 0.0, "not loaded");
        assert!(m.load(10_000_000));
        assert!(m.ready());
        assert_eq!(m.step(0, false, 60.0), 0.0, "relay off: waits");
        assert_eq!(m.starts, 0);
        let mut t = 0;
        while m.loaded {
            m.step(t, true, 60.0);
            t += 60_000;
            assert!(t < 10_000_000);
        }
        assert_eq!(t, 90 * 60_000, "90 min programme");
        assert!((m.energy_wh - m.spec.programme_wh()).abs() < 1e-9);
        assert!((m.energy_wh - 1325.0).abs() < 1e-9, "{}", m.energy_wh);
        assert_eq!((m.starts, m.splits), (1, 0));
        assert_eq!(m.done_ms, Some(90 * 60_000));
        assert!(!m.ready());
    }

    #[test]
    fn a_pause_mid_programme_counts_a_split_and_resumes() {
        let mut m = washer();
        m.load(i64::MAX);
        for _ in 0..20 {
            m.step(0, true, 60.0);
        }
        assert_eq!(m.step(0, false, 60.0), 0.0);
        assert_eq!(m.step(0, false, 60.0), 0.0);
        assert_eq!(m.splits, 1, "one pause, however long");
        assert!((m.progress_s - 1200.0).abs() < 1e-9);
        // Resumes in its second quarter hour (2000 W), not a new start.
        assert!((m.step(0, true, 60.0) - 2000.0).abs() < 1e-9);
        assert_eq!((m.starts, m.splits), (1, 1));
        // A second load is refused while this one is there.
        assert!(!m.load(0));
    }

    #[test]
    fn a_step_across_the_end_draws_only_the_rest() {
        let mut m = Machine::new(MachineSpec {
            load_at: LocalTime::hm(8, 0),
            done_by: LocalTime::hm(7, 0),
            profile_w: vec![1200.0],
            profile_step_s: 90.0,
        });
        m.load(i64::MAX);
        assert!((m.step(0, true, 60.0) - 1200.0).abs() < 1e-9);
        // 30 s of 1200 W in a 60 s step: 600 W mean, done 30 s in.
        assert!((m.step(60_000, true, 60.0) - 600.0).abs() < 1e-9);
        assert_eq!(m.done_ms, Some(90_000));
    }
}
