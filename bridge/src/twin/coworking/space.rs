//! The coworking space: strips of relay outlets under one wall circuit, a
//! lamp that is always on (with an optional heater on the same outlet),
//! and laptops that arrive, take a free outlet (or queue for one), charge
//! or drain, and leave.
//!
//! Electrically it is a [`CircuitTree`]: the wall circuit's breaker (B16
//! by default) over one breaker per strip (B10), outlets below. An
//! outlet's current is its load's draw when its relay is closed and no
//! breaker above it is open ([`CircuitTree::outlet_current_a`]); a tripped
//! breaker is reset by hand after `breaker_reset_s` (someone walks to the
//! panel), and trips again if the overload is still there.

use super::laptop::Laptop;
use crate::twin::breaker::BreakerSpec;
use crate::twin::circuit::{CircuitTree, NodeId, OutletId, TripEvent};
use serde::Deserialize;
use std::collections::VecDeque;

/// The room's wiring.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpaceSpec {
    /// Mains voltage, V (EN 50160: 230 V).
    pub voltage_v: f64,
    /// Wall circuit breaker, A (type B).
    pub circuit_a: f64,
    /// Each strip's breaker, A (type B).
    pub strip_a: f64,
    pub strips: usize,
    pub outlets_per_strip: usize,
    /// The always-on lamp on the first outlet of the first strip, W (PF 1).
    pub lamp_w: f64,
    /// s after a trip until someone resets the breaker.
    pub breaker_reset_s: f64,
    /// A convector heater plugged on the lamp's always-on outlet (a winter
    /// morning): a load the balancer cannot switch, only make room for.
    pub heater: Option<HeaterSpec>,
}

/// An always-on appliance that runs in given periods.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaterSpec {
    /// Draw while running, W (resistive, PF 1).
    pub w: f64,
    /// Periods it runs, `[from, to)` as RFC 3339 times.
    pub on: Vec<[String; 2]>,
}

impl HeaterSpec {
    /// The periods in ms since the epoch, checked.
    pub fn periods(&self) -> Result<Vec<(i64, i64)>, String> {
        if !(self.w.is_finite() && self.w >= 0.0) {
            return Err(format!("`space.heater.w` must be ≥ 0 W, got {}", self.w));
        }
        self.on
            .iter()
            .map(|[from, to]| {
                let ms = |t: &str| {
                    t.parse::<jiff::Timestamp>()
                        .map(|t| t.as_millisecond())
                        .map_err(|e| {
                            format!("`space.heater.on`: `{t}` is not an RFC 3339 time ({e})")
                        })
                };
                let (a, b) = (ms(from)?, ms(to)?);
                if a >= b {
                    return Err(format!("`space.heater.on`: `{from}` is not before `{to}`"));
                }
                Ok((a, b))
            })
            .collect()
    }
}

impl Default for SpaceSpec {
    fn default() -> Self {
        SpaceSpec {
            voltage_v: 230.0,
            circuit_a: 16.0,
            strip_a: 10.0,
            strips: 2,
            outlets_per_strip: 8,
            lamp_w: 60.0,
            breaker_reset_s: 600.0,
            heater: None,
        }
    }
}

impl SpaceSpec {
    pub fn check(&self) -> Result<(), String> {
        for (what, v) in [
            ("voltage_v", self.voltage_v),
            ("circuit_a", self.circuit_a),
            ("strip_a", self.strip_a),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("`space.{what}` must be > 0, got {v}"));
            }
        }
        if !(1..=26).contains(&self.strips) || !(1..=64).contains(&self.outlets_per_strip) {
            return Err("`space.strips` must be 1–26 and `outlets_per_strip` 1–64".into());
        }
        let non_negative = |v: f64| v.is_finite() && v >= 0.0;
        if !non_negative(self.lamp_w) || !non_negative(self.breaker_reset_s) {
            return Err("`space.lamp_w` and `space.breaker_reset_s` must be ≥ 0".into());
        }
        if let Some(h) = &self.heater {
            h.periods()?;
        }
        Ok(())
    }

    /// `strip_a`, `strip_b`, …
    pub fn strip_id(i: usize) -> String {
        format!("strip_{}", (b'a' + i as u8) as char)
    }
}

/// One outlet: its relay and what is plugged in.
#[derive(Debug, Clone)]
pub struct Outlet {
    /// `strip_a_outlet_1` (the HA object id stem).
    pub key: String,
    /// Index of its strip.
    pub strip: usize,
    pub id: OutletId,
    pub relay_on: bool,
    pub lamp: bool,
    /// Index of the laptop on it.
    pub occupant: Option<usize>,
    /// Relay changes.
    pub switches: u64,
}

/// Where a laptop is in its day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Presence {
    NotYet,
    Queued,
    Plugged(usize),
    /// Left with this state of charge, %.
    Gone(f64),
}

pub struct Space {
    pub spec: SpaceSpec,
    pub tree: CircuitTree,
    pub root: NodeId,
    pub strips: Vec<NodeId>,
    pub outlets: Vec<Outlet>,
    pub laptops: Vec<Laptop>,
    pub presence: Vec<Presence>,
    queue: VecDeque<usize>,
    /// Per breaker node (root, strips…): ms when it opened, for the reset.
    open_since: Vec<(NodeId, i64)>,
    pub trips: Vec<(i64, TripEvent)>,
    /// The heater's periods, ms.
    heater: Vec<(i64, i64)>,
    /// Time of the last `people` or `step`: what loads draw now.
    now_ms: i64,
}

impl Space {
    /// Builds the tree; relays start off except the lamp's.
    pub fn new(spec: SpaceSpec, laptops: Vec<Laptop>) -> anyhow::Result<Space> {
        spec.check().map_err(anyhow::Error::msg)?;
        let mut tree = CircuitTree::new();
        let root = tree.add_circuit("wall", None, BreakerSpec::b(spec.circuit_a))?;
        let mut strips = Vec::new();
        let mut outlets = Vec::new();
        for s in 0..spec.strips {
            let sid = SpaceSpec::strip_id(s);
            let node = tree.add_circuit(&sid, Some(root), BreakerSpec::b(spec.strip_a))?;
            strips.push(node);
            for n in 1..=spec.outlets_per_strip {
                let key = format!("{sid}_outlet_{n}");
                let id = tree.add_outlet(&key, node)?;
                let lamp = s == 0 && n == 1;
                outlets.push(Outlet {
                    key,
                    strip: s,
                    id,
                    relay_on: lamp,
                    lamp,
                    occupant: None,
                    switches: 0,
                });
            }
        }
        let presence = vec![Presence::NotYet; laptops.len()];
        let heater = match &spec.heater {
            Some(h) => h.periods().map_err(anyhow::Error::msg)?,
            None => Vec::new(),
        };
        Ok(Space {
            heater,
            now_ms: i64::MIN,
            spec,
            tree,
            root,
            strips,
            outlets,
            laptops,
            presence,
            queue: VecDeque::new(),
            open_since: Vec::new(),
            trips: Vec::new(),
        })
    }

    /// Closes or opens a relay; true if it changed.
    pub fn set_relay(&mut self, outlet: usize, on: bool) -> bool {
        let o = &mut self.outlets[outlet];
        if o.relay_on == on {
            return false;
        }
        o.relay_on = on;
        o.switches += 1;
        true
    }

    /// Arrivals and departures at `t_ms`: leavers free their outlet, new
    /// arrivals queue, the queue takes free outlets in order. A laptop
    /// takes the free outlet its index points at (seats spread over both
    /// strips, deterministically).
    pub fn people(&mut self, t_ms: i64) {
        self.now_ms = t_ms;
        for i in 0..self.laptops.len() {
            let spec = &self.laptops[i].spec;
            match self.presence[i] {
                Presence::NotYet if t_ms >= spec.arrive_ms => {
                    self.presence[i] = Presence::Queued;
                    self.queue.push_back(i);
                }
                Presence::Plugged(o) if t_ms >= spec.leave_ms => {
                    self.outlets[o].occupant = None;
                    self.presence[i] = Presence::Gone(self.laptops[i].soc_pct);
                }
                Presence::Queued if t_ms >= spec.leave_ms => {
                    self.queue.retain(|&q| q != i);
                    self.presence[i] = Presence::Gone(self.laptops[i].soc_pct);
                }
                _ => {}
            }
        }
        while let Some(&i) = self.queue.front() {
            let free: Vec<usize> = (0..self.outlets.len())
                .filter(|&o| !self.outlets[o].lamp && self.outlets[o].occupant.is_none())
                .collect();
            if free.is_empty() {
                break;
            }
            let o = free[(i * 7) % free.len()];
            self.queue.pop_front();
            self.outlets[o].occupant = Some(i);
            self.presence[i] = Presence::Plugged(o);
            self.laptops[i].min_plugged_pct = self.laptops[i].soc_pct;
            self.laptops[i].seated = true;
        }
    }

    /// What the load on `outlet` draws when live, A and W.
    pub fn load(&self, outlet: usize) -> (f64, f64) {
        let o = &self.outlets[outlet];
        if o.lamp {
            let w = self.spec.lamp_w + self.heater_w();
            return (w / self.spec.voltage_v, w);
        }
        match o.occupant {
            Some(l) => {
                let lap = &self.laptops[l];
                (lap.wall_current_a(self.spec.voltage_v), lap.wall_power_w())
            }
            None => (0.0, 0.0),
        }
    }

    /// What the heater draws now, W.
    pub fn heater_w(&self) -> f64 {
        let running = self
            .heater
            .iter()
            .any(|&(a, b)| (a..b).contains(&self.now_ms));
        match &self.spec.heater {
            Some(h) if running => h.w,
            _ => 0.0,
        }
    }

    /// Whether `outlet` delivers power now: relay closed, no breaker open above.
    pub fn live(&self, outlet: usize) -> bool {
        self.outlets[outlet].relay_on && !self.tree.is_cut(self.outlets[outlet].id)
    }

    /// Current and power measured at `outlet` now, A and W.
    pub fn metered(&self, outlet: usize) -> (f64, f64) {
        if self.live(outlet) {
            self.load(outlet)
        } else {
            (0.0, 0.0)
        }
    }

    /// `dt_s` seconds from `t_ms`: laptops charge or drain, the breakers
    /// carry the outlets' currents; returns the wall energy per outlet, Wh.
    pub fn step(&mut self, t_ms: i64, dt_s: f64) -> Vec<f64> {
        self.now_ms = t_ms;
        let loads: Vec<(f64, f64)> = (0..self.outlets.len()).map(|o| self.load(o)).collect();
        let mut wh = vec![0.0; self.outlets.len()];
        for (o, (amps, watts)) in loads.into_iter().enumerate() {
            let outlet = &self.outlets[o];
            let demand = if outlet.relay_on { amps } else { 0.0 };
            self.tree.set_demand(outlet.id, demand);
            if outlet.lamp && self.live(o) {
                wh[o] = watts * dt_s / 3600.0;
            }
        }
        for i in 0..self.laptops.len() {
            if let Presence::Plugged(o) = self.presence[i] {
                let powered = self.live(o);
                wh[o] += self.laptops[i].step(powered, dt_s);
            } else if self.presence[i] == Presence::Queued {
                self.laptops[i].wait(dt_s);
            }
        }
        let start_s = self.tree.elapsed_s();
        for e in self.tree.step(dt_s) {
            let at = t_ms + ((e.at_s - start_s) * 1000.0) as i64;
            self.open_since.push((e.node, at));
            self.trips.push((at, e));
        }
        let end = t_ms + (dt_s * 1000.0) as i64;
        let reset_ms = (self.spec.breaker_reset_s * 1000.0) as i64;
        let due: Vec<NodeId> = self
            .open_since
            .iter()
            .filter(|(_, at)| end - at >= reset_ms)
            .map(|(n, _)| *n)
            .collect();
        self.open_since.retain(|(_, at)| end - at < reset_ms);
        for n in due {
            self.tree.reset(n);
        }
        wh
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::coworking::laptop::LaptopSpec;

    fn laptop(name: &str, arrive_s: i64, leave_s: i64) -> Laptop {
        Laptop::new(LaptopSpec {
            name: name.into(),
            capacity_wh: 90.0,
            charge_w: 200.0,
            use_w: 40.0,
            efficiency: 0.9,
            power_factor: 0.9,
            initial_pct: 20.0,
            target_pct: 80.0,
            arrive_ms: arrive_s * 1000,
            leave_ms: leave_s * 1000,
            declared_leave_ms: None,
        })
    }

    #[test]
    fn all_on_overload_trips_the_wall_breaker_and_it_is_reset() {
        // 15 laptops at (200 + 40) / 0.9 / (230 · 0.9) = 1.29 A: 19.3 A
        // plus the lamp, over the B16's 1.2·In thermal threshold.
        let laptops = (0..15).map(|i| laptop(&format!("l{i}"), 0, 7200)).collect();
        let mut s = Space::new(SpaceSpec::default(), laptops).unwrap();
        s.people(0);
        assert!(s.presence.iter().all(|p| matches!(p, Presence::Plugged(_))));
        for o in 0..s.outlets.len() {
            s.set_relay(o, true);
        }
        let mut t = 0;
        while s.trips.is_empty() && t < 3_600_000 {
            s.step(t, 1.0);
            t += 1000;
        }
        let (at, trip) = s.trips[0].clone();
        assert_eq!(trip.name, "wall");
        assert!(s.tree.is_cut(s.outlets[0].id) && s.metered(0) == (0.0, 0.0));
        for _ in 0..601 {
            s.step(t, 1.0);
            t += 1000;
        }
        assert!(!s.tree.tripped(s.root), "reset {} s after {at}", 600);
    }

    #[test]
    fn the_heater_runs_in_its_periods_on_the_always_on_outlet() {
        let spec = SpaceSpec {
            heater: Some(HeaterSpec {
                w: 2000.0,
                on: vec![["1970-01-01T00:10:00Z".into(), "1970-01-01T00:20:00Z".into()]],
            }),
            ..SpaceSpec::default()
        };
        let mut s = Space::new(spec, Vec::new()).unwrap();
        s.step(0, 1.0);
        assert_eq!(s.metered(0).1, 60.0);
        s.step(600_000, 1.0);
        assert_eq!(s.metered(0).1, 2060.0);
        s.step(1_200_000, 1.0);
        assert_eq!(s.metered(0).1, 60.0);
        let bad = SpaceSpec {
            heater: Some(HeaterSpec {
                w: 2000.0,
                on: vec![["1970-01-01T00:20:00Z".into(), "1970-01-01T00:10:00Z".into()]],
            }),
            ..SpaceSpec::default()
        };
        let e = bad.check().unwrap_err();
        assert!(e.contains("is not before"), "{e}");
    }

    #[test]
    fn a_full_room_queues_and_a_leaver_frees_a_seat() {
        let mut laptops: Vec<Laptop> = (0..15).map(|i| laptop(&format!("l{i}"), 0, 60)).collect();
        laptops.push(laptop("late", 10, 7200));
        let mut s = Space::new(SpaceSpec::default(), laptops).unwrap();
        s.people(10_000);
        assert_eq!(s.presence[15], Presence::Queued);
        // Unpowered in the queue, the late one drains.
        s.step(10_000, 60.0);
        assert!(s.laptops[15].soc_pct < 20.0);
        s.people(60_000);
        assert!(matches!(s.presence[15], Presence::Plugged(_)));
        assert!(matches!(s.presence[0], Presence::Gone(_)));
    }
}
