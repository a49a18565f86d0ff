//! The energy task: reads the meters' changes from the store, counts
//! their increments (HA's reset rules, [`crate::usage::meter::Counter`]),
//! prices grid import at the tariff in force, writes the [`ledger`] and
//! publishes today's figures.

use super::Source;
use super::config::EnergyConfig;
use super::day::DayTotals;
use super::entities;
use super::ledger::{self, Baseline, Ledger, Row};
use crate::clock::Clock;
use crate::entity::{EntityStore, State, StoreEvent};
use crate::shutdown::Shutdown;
use crate::usage::meter::Counter;
use crate::usage::periods::{Calendar, PeriodKind};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// What the energy task needs from the bridge.
pub struct EnergyContext {
    pub store: Arc<EntityStore>,
    pub clock: Clock,
    pub shutdown: Shutdown,
    /// Where `energy.db` lives (`None`: nothing kept, totals start from
    /// zero at each start).
    pub data_dir: Option<PathBuf>,
}

/// Wall time between ledger writes and checks for midnight.
const TICK: Duration = Duration::from_millis(500);

/// The period label when the tariff entity has a price but no `period`.
pub const NO_PERIOD: &str = "base";

struct Meter {
    source: Source,
    entity_id: String,
    counter: Counter,
    warned_unit: bool,
}

struct Energy {
    ctx: EnergyContext,
    cfg: EnergyConfig,
    cal: Calendar,
    meters: Vec<Meter>,
    ledger: Option<Ledger>,
    rows: Vec<Row>,
    baselines: BTreeMap<String, Baseline>,
    day: DayTotals,
    day_start: i64,
    day_end: i64,
    /// Consumption as published today: it only rises within a day (it is
    /// `total_increasing`), though export may be read before production.
    published_consumption_wh: f64,
    periods: HashSet<String>,
    /// The tariff entity's state as of the event being handled.
    tariff_state: Option<State>,
    last_tariff: Option<(f64, String)>,
    /// `last_tariff` changed since the ledger last had it.
    tariff_dirty: bool,
    warned_no_tariff: bool,
}

/// Registers the energy entities, restores today's totals from the
/// ledger and starts the task.
pub fn spawn(cfg: &EnergyConfig, ctx: EnergyContext) -> anyhow::Result<JoinHandle<()>> {
    let cal = cfg.calendar().map_err(anyhow::Error::msg)?;
    let now = ctx.clock.now_ms();
    let ledger = match &ctx.data_dir {
        Some(dir) => match Ledger::open(&dir.join(ledger::FILE)) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(
                    "energy: cannot open {}: {e}; today's totals start from zero and are not kept",
                    dir.join(ledger::FILE).display()
                );
                None
            }
        },
        None => None,
    };
    let baselines = ledger
        .as_ref()
        .and_then(|l| {
            l.baselines()
                .map_err(|e| tracing::warn!("energy: reading the meters' baselines: {e}"))
                .ok()
        })
        .unwrap_or_default();
    let meters = cfg
        .meters()
        .into_iter()
        .map(|(source, entity_id)| Meter {
            counter: Counter::from_reading(baselines.get(&entity_id).copied()),
            source,
            entity_id,
            warned_unit: false,
        })
        .collect();
    // Energy used while down is priced at the last tariff seen if the
    // tariff entity has no price yet at the first reading.
    let last_tariff = ledger.as_ref().and_then(|l| {
        l.last_tariff()
            .map_err(|e| tracing::warn!("energy: reading the last tariff: {e}"))
            .ok()
            .flatten()
    });
    let (day_start, day_end) = cal.period(PeriodKind::Day, now);
    let mut energy = Energy {
        ctx,
        cfg: cfg.clone(),
        cal,
        meters,
        ledger,
        rows: Vec::new(),
        baselines: BTreeMap::new(),
        day: DayTotals::default(),
        day_start,
        day_end,
        published_consumption_wh: 0.0,
        periods: cfg.periods.iter().cloned().collect(),
        tariff_state: None,
        last_tariff,
        tariff_dirty: false,
        warned_no_tariff: false,
    };
    entities::register(&energy.ctx.store, &cfg.devices, &cfg.periods)?;
    energy.restore();
    energy.publish();
    // Subscribed before returning: no reading falls between start and run.
    let (snapshot, events) = energy.ctx.store.subscribe();
    Ok(tokio::spawn(energy.run(snapshot, events)))
}

impl Energy {
    /// Today's totals from the ledger.
    fn restore(&mut self) {
        let Some(l) = &self.ledger else { return };
        let rows = match l.totals(self.day_start, self.day_end) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("energy: reading today's totals: {e}; they start from zero");
                return;
            }
        };
        for (quantity, period, wh, eur) in rows {
            self.add(&quantity, &period, wh, eur);
        }
        self.published_consumption_wh = self.day.consumption_wh();
    }

    /// Adds an increment to today's totals (a new period gets its sensor).
    fn add(&mut self, quantity: &str, period: &str, wh: f64, eur: f64) {
        let Some(source) = Source::from_quantity(quantity) else {
            return;
        };
        if source == Source::GridImport && !self.periods.contains(period) {
            if let Err(e) = entities::register_period(&self.ctx.store, period) {
                tracing::warn!("energy: cost sensor of period `{period}`: {e}");
            }
            self.periods.insert(period.to_string());
        }
        self.day.add(&source, period, wh, eur);
    }

    fn publish(&mut self) {
        let store = &self.ctx.store;
        let d = &self.day;
        let start = self.day_start;
        entities::set_kwh(store, "grid_import_today", d.import_wh, start);
        entities::set_kwh(store, "grid_export_today", d.export_wh, start);
        entities::set_kwh(store, "solar_today", d.solar_wh, start);
        self.published_consumption_wh = self.published_consumption_wh.max(d.consumption_wh());
        entities::set_kwh(
            store,
            "consumption_today",
            self.published_consumption_wh,
            start,
        );
        entities::set_pct(store, "self_consumption_today", d.self_consumption_pct());
        entities::set_pct(store, "self_sufficiency_today", d.self_sufficiency_pct());
        entities::set_eur(store, "cost_today", d.cost_eur(), start);
        for p in &self.periods {
            let eur = d.cost.get(p).copied().unwrap_or(0.0);
            entities::set_eur(store, &entities::cost_key(p), eur, start);
        }
        for id in &self.cfg.devices {
            let wh = d.devices.get(id).copied().unwrap_or(0.0);
            entities::set_kwh(store, &entities::device_key(id), wh, start);
        }
    }

    async fn run(
        mut self,
        snapshot: crate::entity::store::Snapshot,
        mut events: tokio::sync::mpsc::UnboundedReceiver<StoreEvent>,
    ) {
        // Readings already in the store continue from the baselines.
        for s in snapshot.entities.iter().filter_map(|(_, s)| s.as_ref()) {
            self.note(s);
        }
        for s in snapshot.entities.iter().filter_map(|(_, s)| s.as_ref()) {
            if let Some(i) = self.meter_index(&s.entity_id) {
                self.reading(i, s);
            }
        }
        let mut shutdown = self.ctx.shutdown.clone();
        loop {
            let ev = tokio::select! {
                _ = shutdown.wait() => break,
                ev = events.recv() => match ev {
                    Some(ev) => Some(ev),
                    None => break,
                },
                _ = tokio::time::sleep(TICK) => None,
            };
            self.roll_over(self.ctx.clock.now_ms());
            let Some(StoreEvent::StateChanged(c)) = ev else {
                self.flush();
                continue;
            };
            let Some(new) = &c.new_state else { continue };
            self.note(new);
            if let Some(i) = self.meter_index(&c.entity_id) {
                self.reading(i, new);
            }
        }
        self.flush();
    }

    fn note(&mut self, s: &State) {
        if s.entity_id == self.cfg.tariff_entity {
            self.tariff_state = Some(s.clone());
        }
    }

    fn meter_index(&self, entity_id: &str) -> Option<usize> {
        self.meters.iter().position(|m| m.entity_id == entity_id)
    }

    /// Wh per unit of the meter's reading: its unit (the entity's, or the
    /// state's `unit_of_measurement`); Wh when it has none.
    fn scale(&mut self, i: usize, state: &State) -> Option<f64> {
        let spec_unit = self
            .ctx
            .store
            .spec(&state.entity_id)
            .and_then(|s| s.unit.clone());
        let unit = spec_unit.or_else(|| {
            state
                .attributes
                .get("unit_of_measurement")
                .and_then(|u| u.as_str())
                .map(str::to_string)
        });
        let m = &mut self.meters[i];
        match super::wh_per_unit(unit.as_deref()) {
            Some(k) => Some(k),
            None => {
                let other = unit.as_deref();
                if !m.warned_unit {
                    m.warned_unit = true;
                    match other {
                        None => tracing::warn!(
                            "energy: {} has no unit: its readings are taken as Wh",
                            m.entity_id
                        ),
                        Some(u) => tracing::warn!(
                            "energy: {} is in `{u}`, not Wh, kWh or MWh: ignored",
                            m.entity_id
                        ),
                    }
                }
                other.is_none().then_some(1.0)
            }
        }
    }

    /// (€/kWh, period) in force.
    fn tariff(&mut self) -> (f64, String) {
        let state = self.tariff_state.as_ref();
        let price = state.and_then(|s| s.number());
        let period = state
            .and_then(|s| s.attributes.get("period"))
            .and_then(|p| p.as_str())
            .filter(|p| !p.trim().is_empty())
            .map(str::to_string);
        if let Some(p) = price {
            let t = (p, period.unwrap_or_else(|| NO_PERIOD.into()));
            if self.last_tariff.as_ref() != Some(&t) {
                self.last_tariff = Some(t.clone());
                self.tariff_dirty = true;
            }
            return t;
        }
        if let Some(t) = &self.last_tariff {
            return t.clone();
        }
        if !self.warned_no_tariff {
            self.warned_no_tariff = true;
            tracing::warn!(
                "energy: {} has no price (€/kWh) yet: imported energy costs 0 € (period `{NO_PERIOD}`) until it has",
                self.cfg.tariff_entity
            );
        }
        (0.0, NO_PERIOD.into())
    }

    fn reading(&mut self, i: usize, state: &State) {
        let Some(v) = state.number() else { return };
        let Some(k) = self.scale(i, state) else {
            return;
        };
        let m = &mut self.meters[i];
        let before = m.counter.last();
        let delta = m.counter.advance(v * k);
        let after = m.counter.last();
        let Some(wh) = after.filter(|_| after != before) else {
            return;
        };
        let t = state.last_updated;
        let entity_id = m.entity_id.clone();
        let quantity = m.source.quantity();
        let is_import = m.source == Source::GridImport;
        self.baselines.insert(
            entity_id.clone(),
            Baseline {
                entity_id,
                wh,
                updated_ms: t,
            },
        );
        if delta <= 0.0 {
            return; // a first reading or a reset to zero: the baseline moves
        }
        let (price, period) = self.tariff();
        let eur = if is_import {
            delta / 1000.0 * price
        } else {
            0.0
        };
        self.rows.push(Row {
            quantity: quantity.clone(),
            hour_ms: self.cal.hour_start(t),
            date: self.cal.date(t).to_string(),
            period: period.clone(),
            wh: delta,
            eur,
        });
        self.roll_over(t);
        // A reading from before today (handled after midnight) is in the
        // ledger under its own day.
        if t >= self.day_start {
            self.add(&quantity, &period, delta, eur);
            self.publish();
        }
    }

    /// A new local day: totals back to zero. Only forward.
    fn roll_over(&mut self, now: i64) {
        if now < self.day_end {
            return;
        }
        self.flush();
        let (start, end) = self.cal.period(PeriodKind::Day, now);
        self.day_start = start;
        self.day_end = end;
        self.day = DayTotals::default();
        self.published_consumption_wh = 0.0;
        self.publish();
    }

    fn flush(&mut self) {
        if self.rows.is_empty() && self.baselines.is_empty() && !self.tariff_dirty {
            return;
        }
        let Some(l) = &mut self.ledger else {
            self.rows.clear();
            self.baselines.clear();
            return;
        };
        let baselines: Vec<Baseline> = self.baselines.values().cloned().collect();
        let tariff = self
            .last_tariff
            .as_ref()
            .filter(|_| self.tariff_dirty)
            .map(|(p, period)| (*p, period.as_str(), self.ctx.clock.now_ms()));
        match l.write(&self.rows, &baselines, tariff) {
            Ok(()) => {
                self.rows.clear();
                self.baselines.clear();
                self.tariff_dirty = false;
            }
            // Kept for the next tick (the file may be locked a moment).
            Err(e) => tracing::warn!("energy: writing the ledger: {e}; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::{Component, Device, EntitySpec};
    use serde_json::{Map, json};

    /// 2026-12-07 10:00 Paris.
    const T0: i64 = 1_796_634_000_000;
    const IMPORT: &str = "sensor.grid_import_energy";
    const EXPORT: &str = "sensor.grid_export_energy";
    const PV: &str = "sensor.pv_energy";
    const EV: &str = "sensor.ev_energy";

    fn store(clock: Clock) -> Arc<EntityStore> {
        let store = EntityStore::new(clock);
        store
            .upsert_device(
                "house",
                Device {
                    id: "house".into(),
                    name: "House".into(),
                    manufacturer: "Test".into(),
                    model: "Test".into(),
                    sw_version: None,
                    via_device: None,
                },
            )
            .unwrap();
        for (id, unit) in [
            (IMPORT, "kWh"),
            (EXPORT, "Wh"),
            (PV, "Wh"),
            (EV, "Wh"),
            ("sensor.tariff_price", "EUR/kWh"),
        ] {
            let mut s = EntitySpec::new("house", id, Component::Sensor);
            s.entity_id = id.into();
            s.unit = Some(unit.into());
            store.upsert_entity(s).unwrap();
        }
        store
    }

    fn tariff(store: &EntityStore, price: f64, period: &str) {
        let mut a = Map::new();
        a.insert("period".into(), json!(period));
        store
            .set_state("sensor.tariff_price", price.to_string(), a)
            .unwrap();
    }

    async fn wait_state(store: &EntityStore, id: &str, want: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = store.get(id).map(|s| s.state);
            if got.as_deref() == Some(want) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{id}: want {want}, got {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn cfg() -> EnergyConfig {
        toml::from_str(&format!(
            "grid_import = \"{IMPORT}\"\ngrid_export = \"{EXPORT}\"\nsolar_production = \"{PV}\"\n\
             devices = [\"{EV}\"]\n"
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn a_day_is_counted_priced_restored_and_rolled_over() {
        let dir = tempfile::tempdir().unwrap();
        let (clock, hand) = Clock::manual(T0);
        let st = store(clock);
        let set = |id: &str, v: &str| st.set_state(id, v, Map::new()).unwrap();
        let (trigger, shutdown) = crate::shutdown::channel();
        let task = spawn(
            &cfg(),
            EnergyContext {
                store: st.clone(),
                clock,
                shutdown,
                data_dir: Some(dir.path().to_path_buf()),
            },
        )
        .unwrap();
        // Baselines (the meters' readings at start count nothing).
        set(IMPORT, "100"); // kWh
        set(EXPORT, "5000");
        set(PV, "20000");
        set(EV, "0");
        tariff(&st, 0.2, "HC");
        set(IMPORT, "104"); // +4 kWh at 0.20
        tariff(&st, 0.3, "HP");
        set(IMPORT, "110"); // +6 kWh at 0.30
        set(EXPORT, "8000"); // +3 kWh
        set(PV, "28000"); // +8 kWh
        set(EV, "7000");
        wait_state(&st, "sensor.energy_grid_import_today", "10").await;
        wait_state(&st, "sensor.energy_solar_today", "8").await;
        wait_state(&st, "sensor.energy_consumption_today", "15").await;
        wait_state(&st, "sensor.energy_self_consumption_today", "62.5").await;
        wait_state(&st, "sensor.energy_self_sufficiency_today", "33.3").await;
        wait_state(&st, "sensor.energy_cost_today", "2.6").await;
        wait_state(&st, "sensor.energy_cost_hc_today", "0.8").await;
        wait_state(&st, "sensor.energy_cost_hp_today", "1.8").await;
        wait_state(&st, "sensor.energy_device_ev_today", "7").await;
        let e = st.get("sensor.energy_grid_import_today").unwrap();
        assert_eq!(
            e.attributes["last_reset"],
            json!(crate::clock::iso8601(T0 - 10 * 3_600_000))
        );
        // A period nobody configured gets its sensor.
        tariff(&st, 0.5, "Tempo rouge");
        set(IMPORT, "111");
        wait_state(&st, "sensor.energy_cost_tempo_rouge_today", "0.5").await;
        trigger.trigger();
        task.await.unwrap();

        // A restart: today's totals come back from energy.db, and the
        // counters continue from what the ledger counted.
        let st2 = store(clock);
        st2.set_state(IMPORT, "112", Map::new()).unwrap(); // +1 kWh while down
        let (trigger, shutdown) = crate::shutdown::channel();
        let task = spawn(
            &cfg(),
            EnergyContext {
                store: st2.clone(),
                clock,
                shutdown,
                data_dir: Some(dir.path().to_path_buf()),
            },
        )
        .unwrap();
        wait_state(&st2, "sensor.energy_grid_import_today", "12").await;
        wait_state(&st2, "sensor.energy_solar_today", "8").await;
        // The kWh used while down, with no price yet: the last tariff seen.
        wait_state(&st2, "sensor.energy_cost_tempo_rouge_today", "1").await;
        wait_state(&st2, "sensor.energy_cost_today", "3.6").await;
        wait_state(&st2, "sensor.energy_device_ev_today", "7").await;
        // Midnight: a new day from zero.
        hand.set(T0 + 14 * 3_600_000);
        wait_state(&st2, "sensor.energy_grid_import_today", "0").await;
        wait_state(&st2, "sensor.energy_self_consumption_today", "unknown").await;
        st2.set_state(PV, "29000", Map::new()).unwrap();
        wait_state(&st2, "sensor.energy_solar_today", "1").await;
        trigger.trigger();
        task.await.unwrap();
        let l = Ledger::open(&dir.path().join(ledger::FILE)).unwrap();
        assert_eq!(l.day_wh("grid_import", "2026-12-07").unwrap(), 12_000.0);
        assert_eq!(l.day_wh("solar", "2026-12-08").unwrap(), 1_000.0);
    }

    #[tokio::test]
    async fn a_meter_reset_loses_nothing_and_consumption_never_falls_within_a_day() {
        let (clock, _hand) = Clock::manual(T0);
        let st = store(clock);
        let set = |id: &str, v: &str| st.set_state(id, v, Map::new()).unwrap();
        let (trigger, shutdown) = crate::shutdown::channel();
        let task = spawn(
            &cfg(),
            EnergyContext {
                store: st.clone(),
                clock,
                shutdown,
                data_dir: None,
            },
        )
        .unwrap();
        set(IMPORT, "50");
        set(EXPORT, "0");
        set(PV, "0");
        set(IMPORT, "52"); // +2 kWh
        set(IMPORT, "0.5"); // the meter's counters were reset: +0.5 kWh
        set(IMPORT, "1"); // +0.5
        wait_state(&st, "sensor.energy_grid_import_today", "3").await;
        set(PV, "2000"); // consumption 5
        wait_state(&st, "sensor.energy_consumption_today", "5").await;
        // Export read before the production behind it: consumption holds.
        set(EXPORT, "1000");
        wait_state(&st, "sensor.energy_grid_export_today", "1").await;
        assert_eq!(
            st.get("sensor.energy_consumption_today").unwrap().state,
            "5"
        );
        set(PV, "4000");
        wait_state(&st, "sensor.energy_consumption_today", "6").await;
        trigger.trigger();
        task.await.unwrap();
    }
}
