//! The house behind one grid meter: PV, the base load and the four
//! flexible loads on their relays. Per step: the day's events (machines
//! loaded, the EV arriving or leaving, the tank's ready times), then each
//! device steps; the meter nets it all: `import = max(consumption − PV, 0)`,
//! `export = max(PV − consumption, 0)` (one bidirectional meter, no
//! battery). Deadlines are judged as they fall: a machine done by its
//! `done_by`, the EV at its target when it leaves, the tank at least
//! `min_c` at each ready time.

use super::base_load::BaseLoadSpec;
use super::ev::{Ev, EvSpec};
use super::machine::{Machine, MachineSpec};
use super::pv::{Pv, Weather};
use super::water_heater::{WaterHeater, WaterHeaterSpec};
use super::{LocalTime, local_seconds};
use jiff::tz::TimeZone;

/// The flexible loads, in the contract's order (`p_deferrable<N>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LoadId {
    WaterHeater,
    WashingMachine,
    Dishwasher,
    Ev,
}

impl LoadId {
    pub const ALL: [LoadId; 4] = [
        LoadId::WaterHeater,
        LoadId::WashingMachine,
        LoadId::Dishwasher,
        LoadId::Ev,
    ];

    /// `water_heater`, …: the entity ids' stem (`switch.<id>`).
    pub fn id(self) -> &'static str {
        match self {
            LoadId::WaterHeater => "water_heater",
            LoadId::WashingMachine => "washing_machine",
            LoadId::Dishwasher => "dishwasher",
            LoadId::Ev => "ev",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone)]
pub struct HouseSpec {
    pub tz: TimeZone,
    pub pv: Option<crate::solar::PvArray>,
    pub weather: super::pv::WeatherSpec,
    pub water_heater: Option<WaterHeaterSpec>,
    pub washing_machine: Option<MachineSpec>,
    pub dishwasher: Option<MachineSpec>,
    pub ev: Option<EvSpec>,
    pub base_load: BaseLoadSpec,
}

/// What flowed in one step (means, W).
#[derive(Debug, Clone, Copy, Default)]
pub struct StepFlows {
    pub pv_w: f64,
    pub base_w: f64,
    /// Per [`LoadId`], 0 when absent.
    pub loads_w: [f64; 4],
    pub consumption_w: f64,
    pub import_w: f64,
    pub export_w: f64,
}

/// A deadline judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub load: LoadId,
    /// The deadline, ms.
    pub due_ms: i64,
    pub met: bool,
    /// What was seen: "done 14:05", "62 %", "48.3 °C".
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Event {
    Load(LoadId),
    MachineDue(LoadId),
    Arrive { depart_ms: i64 },
    Depart,
    Ready { min_c: f64 },
}

pub struct House {
    pub spec: HouseSpec,
    pub weather: Weather,
    pub pv: Option<Pv>,
    pub water_heater: Option<WaterHeater>,
    pub washing_machine: Option<Machine>,
    pub dishwasher: Option<Machine>,
    pub ev: Option<Ev>,
    /// Relay of each [`LoadId`].
    pub relays: [bool; 4],
    events: Vec<(i64, Event)>,
    next_event: usize,
    pub judgements: Vec<Judgement>,
    /// Notes for the run's log (loads refused, arrivals, departures).
    pub notes: Vec<(i64, String)>,
    pub pv_wh: f64,
    pub base_wh: f64,
    pub consumption_wh: f64,
    pub import_wh: f64,
    pub export_wh: f64,
}

impl House {
    /// The house over `[start_ms, end_ms)`: the events of that period are
    /// laid out now (an EV that arrived the evening before `start_ms` and
    /// has not left yet is plugged at the start).
    pub fn new(spec: HouseSpec, start_ms: i64, end_ms: i64) -> Self {
        let tz = spec.tz.clone();
        let day0_ms = LocalTime::hm(0, 0).on(&tz, super::local_date(&tz, start_ms));
        let mut events = Vec::new();
        for (id, m) in [
            (LoadId::WashingMachine, &spec.washing_machine),
            (LoadId::Dishwasher, &spec.dishwasher),
        ] {
            if let Some(m) = m {
                for t in m.load_at.between(&tz, start_ms, end_ms) {
                    events.push((t, Event::Load(id)));
                    events.push((m.done_by.next_after(&tz, t), Event::MachineDue(id)));
                }
            }
        }
        if let Some(ev) = &spec.ev {
            for t in ev.arrive_at.between(&tz, start_ms - 86_400_000, end_ms) {
                let depart_ms = ev.depart_at.next_after(&tz, t);
                if depart_ms <= start_ms {
                    continue;
                }
                events.push((t.max(start_ms), Event::Arrive { depart_ms }));
                events.push((depart_ms, Event::Depart));
            }
        }
        if let Some(w) = &spec.water_heater {
            for r in &w.ready {
                for t in r.at.between(&tz, start_ms, end_ms + 1) {
                    events.push((t, Event::Ready { min_c: r.min_c }));
                }
            }
        }
        // At one instant: departures and due checks before arrivals and loads.
        let order = |e: &Event| match e {
            Event::Depart | Event::MachineDue(_) | Event::Ready { .. } => 0,
            _ => 1,
        };
        events.sort_by_key(|(t, e)| (*t, order(e)));
        House {
            weather: Weather {
                spec: spec.weather.clone(),
                tz,
                day0_ms,
            },
            pv: spec.pv.clone().map(Pv::new),
            water_heater: spec.water_heater.clone().map(WaterHeater::new),
            washing_machine: spec.washing_machine.clone().map(Machine::new),
            dishwasher: spec.dishwasher.clone().map(Machine::new),
            ev: spec.ev.clone().map(Ev::new),
            spec,
            relays: [false; 4],
            events,
            next_event: 0,
            judgements: Vec::new(),
            notes: Vec::new(),
            pv_wh: 0.0,
            base_wh: 0.0,
            consumption_wh: 0.0,
            import_wh: 0.0,
            export_wh: 0.0,
        }
    }

    pub fn has(&self, id: LoadId) -> bool {
        match id {
            LoadId::WaterHeater => self.water_heater.is_some(),
            LoadId::WashingMachine => self.washing_machine.is_some(),
            LoadId::Dishwasher => self.dishwasher.is_some(),
            LoadId::Ev => self.ev.is_some(),
        }
    }

    pub fn machine(&self, id: LoadId) -> Option<&Machine> {
        match id {
            LoadId::WashingMachine => self.washing_machine.as_ref(),
            LoadId::Dishwasher => self.dishwasher.as_ref(),
            _ => None,
        }
    }

    fn machine_mut(&mut self, id: LoadId) -> Option<&mut Machine> {
        match id {
            LoadId::WashingMachine => self.washing_machine.as_mut(),
            LoadId::Dishwasher => self.dishwasher.as_mut(),
            _ => None,
        }
    }

    /// Load power of `id` over the last step, W.
    pub fn load_w(&self, id: LoadId) -> f64 {
        match id {
            LoadId::WaterHeater => self.water_heater.as_ref().map_or(0.0, |w| w.power_w),
            LoadId::WashingMachine | LoadId::Dishwasher => {
                self.machine(id).map_or(0.0, |m| m.power_w)
            }
            LoadId::Ev => self.ev.as_ref().map_or(0.0, |e| e.power_w),
        }
    }

    /// Energy of `id` so far, Wh.
    pub fn load_wh(&self, id: LoadId) -> f64 {
        match id {
            LoadId::WaterHeater => self.water_heater.as_ref().map_or(0.0, |w| w.energy_wh),
            LoadId::WashingMachine | LoadId::Dishwasher => {
                self.machine(id).map_or(0.0, |m| m.energy_wh)
            }
            LoadId::Ev => self.ev.as_ref().map_or(0.0, |e| e.energy_wh),
        }
    }

    /// (starts, splits) of `id`.
    pub fn starts_splits(&self, id: LoadId) -> (u64, u64) {
        match id {
            LoadId::WaterHeater => self.water_heater.as_ref().map_or((0, 0), |w| (w.starts, 0)),
            LoadId::WashingMachine | LoadId::Dishwasher => {
                self.machine(id).map_or((0, 0), |m| (m.starts, m.splits))
            }
            LoadId::Ev => self.ev.as_ref().map_or((0, 0), |e| (e.starts, e.splits)),
        }
    }

    /// The events due by `t_ms` (call before reporting the step at `t_ms`).
    pub fn advance(&mut self, t_ms: i64) {
        while let Some(&(at, ev)) = self.events.get(self.next_event) {
            if at > t_ms {
                break;
            }
            self.next_event += 1;
            self.handle(at, ev);
        }
    }

    fn handle(&mut self, at: i64, ev: Event) {
        let tz = self.spec.tz.clone();
        let hm = |ms: i64| {
            let s = local_seconds(&tz, ms) as u32;
            format!("{:02}:{:02}", s / 3600, s / 60 % 60)
        };
        match ev {
            Event::Load(id) => {
                let Some(m) = self.machine_mut(id) else {
                    return;
                };
                let due = m.spec.done_by.next_after(&tz, at);
                if m.load(due) {
                    let note = format!("{} loaded, due by {}", id.id(), hm(due));
                    self.notes.push((at, note));
                } else {
                    let note = format!("{} still loaded from before: no new load", id.id());
                    self.notes.push((at, note));
                }
            }
            Event::MachineDue(id) => {
                let Some(m) = self.machine(id) else { return };
                if m.loaded && m.deadline_ms == Some(at) {
                    let detail = format!(
                        "not done at {} ({:.0} % of the programme)",
                        hm(at),
                        100.0 * m.progress_s / m.spec.duration_s()
                    );
                    self.judgements.push(Judgement {
                        load: id,
                        due_ms: at,
                        met: false,
                        detail,
                    });
                }
            }
            Event::Arrive { depart_ms } => {
                if let Some(e) = self.ev.as_mut() {
                    e.arrive(depart_ms);
                    let note = format!(
                        "ev arrives at {:.0} %, leaves at {}",
                        e.soc_pct,
                        hm(depart_ms)
                    );
                    self.notes.push((at, note));
                }
            }
            Event::Depart => {
                if let Some(e) = self.ev.as_mut()
                    && e.plugged
                {
                    let target = e.spec.target_pct;
                    let soc = e.depart();
                    self.judgements.push(Judgement {
                        load: LoadId::Ev,
                        due_ms: at,
                        met: soc >= target - 1e-6,
                        detail: format!("{soc:.1} % (target {target:.0} %)"),
                    });
                }
            }
            Event::Ready { min_c } => {
                if let Some(w) = &self.water_heater {
                    self.judgements.push(Judgement {
                        load: LoadId::WaterHeater,
                        due_ms: at,
                        met: w.temp_c >= min_c - 1e-6,
                        detail: format!("{:.1} °C (min {min_c:.0} °C)", w.temp_c),
                    });
                }
            }
        }
    }

    /// One step from `t_ms` of `dt_s` with the relays as they are.
    pub fn step(&mut self, t_ms: i64, dt_s: f64) -> StepFlows {
        let dt_h = dt_s / 3600.0;
        let local_s = local_seconds(&self.spec.tz, t_ms);
        let pv_w = match self.pv.as_mut() {
            Some(pv) => pv.step(t_ms, dt_s, &self.weather),
            None => 0.0,
        };
        let base_w = self.spec.base_load.actual_w(t_ms, local_s);
        let mut loads_w = [0.0; 4];
        if let Some(w) = self.water_heater.as_mut() {
            let draw = w.spec.draw_w_at(local_s);
            loads_w[0] = w.step(self.relays[0], draw, dt_s);
        }
        for id in [LoadId::WashingMachine, LoadId::Dishwasher] {
            let relay = self.relays[id.index()];
            let Some(m) = self.machine_mut(id) else {
                continue;
            };
            let was_loaded = m.loaded;
            loads_w[id.index()] = m.step(t_ms, relay, dt_s);
            if was_loaded && !m.loaded {
                let (done, due) = (m.done_ms.unwrap_or(t_ms), m.deadline_ms.unwrap_or(i64::MAX));
                let tz = self.spec.tz.clone();
                let s = local_seconds(&tz, done) as u32;
                let detail = format!("done {:02}:{:02}", s / 3600, s / 60 % 60);
                self.notes.push((done, format!("{} {detail}", id.id())));
                if done <= due {
                    self.judgements.push(Judgement {
                        load: id,
                        due_ms: due,
                        met: true,
                        detail,
                    });
                }
            }
        }
        if let Some(e) = self.ev.as_mut() {
            loads_w[3] = e.step(self.relays[3], dt_s);
        }
        let consumption_w = base_w + loads_w.iter().sum::<f64>();
        let net = consumption_w - pv_w;
        let flows = StepFlows {
            pv_w,
            base_w,
            loads_w,
            consumption_w,
            import_w: net.max(0.0),
            export_w: (-net).max(0.0),
        };
        self.pv_wh += pv_w * dt_h;
        self.base_wh += base_w * dt_h;
        self.consumption_wh += consumption_w * dt_h;
        self.import_wh += flows.import_w * dt_h;
        self.export_wh += flows.export_w * dt_h;
        flows
    }

    /// The base-load forecast (the noise-free profile) over
    /// `[from_ms, to_ms)` in `res_s` blocks (means of 1-min samples), W.
    pub fn base_load_forecast(&self, from_ms: i64, to_ms: i64, res_s: i64) -> Vec<(i64, f64)> {
        let n = (res_s / 60).max(1);
        let mut out = Vec::new();
        let mut t = from_ms;
        while t < to_ms {
            let mean = (0..n)
                .map(|k| {
                    let s = t + k * 60_000;
                    self.spec
                        .base_load
                        .profile_w(s, local_seconds(&self.spec.tz, s))
                })
                .sum::<f64>()
                / n as f64;
            out.push((t, mean));
            t += res_s * 1000;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::solar_house::water_heater::{Draw, Ready};

    fn house(start: &str) -> (House, i64) {
        let tz = crate::feeds::tariff::parse_time_zone("Europe/Paris").unwrap();
        let start_ms = crate::twin::batch::scenario::parse_instant("s", start).unwrap();
        let spec = HouseSpec {
            tz,
            pv: Some(crate::solar::PvArray::new(6.0, 45.76, 4.84)),
            weather: Default::default(),
            water_heater: Some(WaterHeaterSpec {
                draws: vec![Draw {
                    at: LocalTime::hm(20, 0),
                    litres: 100.0,
                    minutes: 10.0,
                }],
                ready: vec![Ready {
                    at: LocalTime::hm(19, 30),
                    min_c: 50.0,
                }],
                initial_c: 45.0,
                ..Default::default()
            }),
            washing_machine: Some(MachineSpec {
                load_at: LocalTime::hm(8, 0),
                done_by: LocalTime::hm(7, 0),
                profile_w: vec![1200.0; 8],
                profile_step_s: 900.0,
            }),
            dishwasher: None,
            ev: Some(EvSpec::default()),
            base_load: Default::default(),
        };
        (House::new(spec, start_ms, start_ms + 86_400_000), start_ms)
    }

    fn run_day(h: &mut House, start_ms: i64, relays: impl Fn(i64) -> [bool; 4]) {
        let mut t = start_ms;
        while t < start_ms + 86_400_000 {
            h.advance(t);
            h.relays = relays(t);
            h.step(t, 60.0);
            t += 60_000;
        }
        h.advance(t);
    }

    #[test]
    fn all_on_meets_every_deadline_and_the_meter_balances() {
        let (mut h, s) = house("2026-06-16T08:00:00+02:00");
        run_day(&mut h, s, |_| [true; 4]);
        let ids: Vec<(LoadId, bool)> = h.judgements.iter().map(|j| (j.load, j.met)).collect();
        assert_eq!(
            ids,
            vec![
                (LoadId::WashingMachine, true),
                (LoadId::WaterHeater, true),
                (LoadId::Ev, true),
            ],
            "{:?}",
            h.judgements
        );
        // Consumption = PV used on site + import; PV = used + export.
        let used = h.pv_wh - h.export_wh;
        assert!((h.consumption_wh - used - h.import_wh).abs() < 1e-6);
        let loads: f64 = LoadId::ALL.iter().map(|&l| h.load_wh(l)).sum();
        assert!((h.consumption_wh - h.base_wh - loads).abs() < 1e-6);
        assert!(h.pv_wh > 20_000.0, "a June day: {} Wh", h.pv_wh);
        assert!((h.load_wh(LoadId::WashingMachine) - 2400.0).abs() < 1e-6);
    }

    #[test]
    fn all_off_misses_every_deadline() {
        let (mut h, s) = house("2026-06-16T08:00:00+02:00");
        run_day(&mut h, s, |_| [false; 4]);
        assert_eq!(h.judgements.len(), 3, "{:?}", h.judgements);
        assert!(h.judgements.iter().all(|j| !j.met), "{:?}", h.judgements);
        assert!(h.washing_machine.as_ref().unwrap().ready());
    }
}
