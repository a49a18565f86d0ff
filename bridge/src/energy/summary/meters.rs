//! A meter's growth per hour over a period (recorder statistics, then the
//! readings not compiled yet) and its price at the recorded tariff.

use super::Split;
use crate::entity::EntityStore;
use crate::recorder::Recorder;
use crate::recorder::statistics::{HOUR_MS, floor_hour, meter_growth};
use serde_json::Value;
use std::collections::BTreeMap;

/// How far before a period the statistics row its first hour grows from
/// is looked for (rows are hourly once a meter exists).
const BASELINE_LOOKBACK_MS: i64 = 2 * 86_400_000;
/// The tariff in force over time: (from ms, €/kWh, period), in order.
pub(super) struct TariffSteps(Vec<(i64, f64, String)>);

impl TariffSteps {
    pub(super) fn load(
        recorder: Option<&Recorder>,
        entity_id: &str,
        start: i64,
        end: i64,
    ) -> TariffSteps {
        let Some(r) = recorder else {
            return TariffSteps(Vec::new());
        };
        let q = crate::recorder::query::StatesQuery {
            include_start_state: true,
            significant_only: false,
            no_attributes: false,
        };
        let records = r
            .reader()
            .states(entity_id, start, end, q)
            .map_err(|e| tracing::warn!("energy summary: tariff history: {e}"))
            .unwrap_or_default();
        let mut steps = Vec::new();
        for s in records {
            // A price that is not a number (unknown after a start) keeps
            // the last one, as the usage and energy tasks do.
            let Ok(price) = s.state.parse::<f64>() else {
                continue;
            };
            if !price.is_finite() {
                continue;
            }
            let period = s
                .attributes
                .get("period")
                .and_then(Value::as_str)
                .filter(|p| !p.trim().is_empty())
                .unwrap_or(crate::energy::NO_PERIOD)
                .to_string();
            steps.push((s.last_updated, price, period));
        }
        TariffSteps(steps)
    }

    /// Prices `wh` used evenly over `[from, to)`: (period, Wh, €) parts.
    fn price(&self, wh: f64, from: i64, to: i64) -> Vec<(String, f64, f64)> {
        let no_price = || vec![(crate::energy::NO_PERIOD.to_string(), wh, 0.0)];
        if self.0.is_empty() || to <= from {
            return no_price();
        }
        let span = (to - from) as f64;
        let mut parts: Vec<(String, f64, f64)> = Vec::new();
        let mut covered = 0.0;
        for (i, (t, price, period)) in self.0.iter().enumerate() {
            let next = self.0.get(i + 1).map_or(i64::MAX, |n| n.0);
            // The first price also covers the time before it (the price in
            // force at the start of the range was not recorded).
            let a = if i == 0 { from } else { (*t).max(from) };
            let b = next.min(to);
            if b <= a {
                continue;
            }
            let share = wh * (b - a) as f64 / span;
            covered += (b - a) as f64;
            parts.push((period.clone(), share, share / 1000.0 * price));
        }
        if covered <= 0.0 {
            return no_price();
        }
        parts
    }
}

/// A meter's growth per hour (hour start ms → Wh) in `[start, end)`,
/// from the statistics plus the readings since the last compiled hour.
fn meter_hours(
    store: &EntityStore,
    recorder: &Recorder,
    entity_id: &str,
    scale: f64,
    start: i64,
    end: i64,
    now: i64,
) -> BTreeMap<i64, f64> {
    let reader = recorder.reader();
    let read = |from: i64, to: i64| {
        reader
            .statistics(entity_id, from, to)
            .map_err(|e| tracing::warn!("energy summary: statistics of {entity_id}: {e}"))
            .unwrap_or_default()
    };
    let mut rows = read(start - BASELINE_LOOKBACK_MS, end);
    if !rows.iter().any(|r| r.start_ms < start) {
        // A gap longer than the lookback: the last row before, if any.
        let before = read(i64::MIN / 2, start);
        if let Some(last) = before.last() {
            rows.insert(0, last.clone());
        }
    }
    let mut hours = BTreeMap::new();
    let mut prev_sum: Option<f64> = None;
    let mut last_state: Option<f64> = None;
    for r in &rows {
        let sum = r.sum.unwrap_or(0.0);
        if r.start_ms >= start {
            let growth = sum - prev_sum.unwrap_or(0.0);
            *hours.entry(r.start_ms).or_insert(0.0) += growth * scale;
        }
        prev_sum = Some(sum);
        if r.state.is_some() {
            last_state = r.state;
        }
    }
    // The hours not compiled yet: the recorded readings since the last
    // compiled hour and the reading now, counted as the statistics count
    // them (a reset counts from zero), from that hour's `state` (or the
    // reading in force then, for a meter with no statistics yet).
    if now >= start && now < end {
        let compiled_until = rows
            .iter()
            .rev()
            .find(|r| r.state.is_some())
            .map_or(start, |r| r.start_ms + HOUR_MS)
            .max(start);
        let q = crate::recorder::query::StatesQuery {
            include_start_state: true,
            significant_only: false,
            no_attributes: true,
        };
        // (time, reading): each increment goes to the hour it was read in,
        // as the statistics will put it.
        let mut readings: Vec<(i64, f64)> = reader
            .states(entity_id, compiled_until, now.saturating_add(1), q)
            .map_err(|e| tracing::warn!("energy summary: readings of {entity_id}: {e}"))
            .unwrap_or_default()
            .iter()
            .filter_map(|s| {
                let v = s.state.parse::<f64>().ok().filter(|v| v.is_finite())?;
                Some((s.last_updated, v))
            })
            .collect();
        if let Some(s) = store.get(entity_id)
            && let Some(v) = s.number()
        {
            readings.push((s.last_updated.max(compiled_until), v));
        }
        let mut prev = if compiled_until > start {
            last_state
        } else {
            None
        };
        for (t, v) in readings {
            let (growth, last) = meter_growth(prev, &[v], true);
            prev = last;
            if growth > 0.0 {
                *hours.entry(floor_hour(t.clamp(start, now))).or_insert(0.0) += growth * scale;
            }
        }
    }
    hours
}

/// One meter's figures over the period.
pub(super) struct MeterFigures {
    pub(super) split: Split,
    pub(super) hours: BTreeMap<i64, (f64, f64)>,
}

pub(super) fn figure_meter(
    store: &EntityStore,
    recorder: Option<&Recorder>,
    tariff: &TariffSteps,
    entity_id: &str,
    (start, end, now): (i64, i64, i64),
) -> MeterFigures {
    let mut out = MeterFigures {
        split: Split::default(),
        hours: BTreeMap::new(),
    };
    let Some(r) = recorder else { return out };
    let unit = store.spec(entity_id).and_then(|s| s.unit.clone());
    let scale = crate::energy::wh_per_unit(unit.as_deref()).unwrap_or(1.0);
    for (h, wh) in meter_hours(store, r, entity_id, scale, start, end, now) {
        // The hour running now has used its energy until now.
        let hour_end = if now < h + HOUR_MS {
            now.max(h + 1)
        } else {
            h + HOUR_MS
        };
        let mut eur = 0.0;
        for (period, part_wh, part_eur) in tariff.price(wh, h, hour_end) {
            out.split.add(&period, part_wh, part_eur);
            eur += part_eur;
        }
        let e = out.hours.entry(h).or_default();
        e.0 += wh;
        e.1 += eur;
    }
    out
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::Component;
    use serde_json::Map;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hours_come_from_statistics_then_from_readings_in_their_own_hour() {
        use crate::clock::Clock;
        use crate::entity::{Device, EntitySpec};
        const T0: i64 = 1_796_601_600_000; // 2026-12-07 00:00 UTC
        const MIN: i64 = 60_000;
        const ID: &str = "sensor.plug_energy";
        let dir = tempfile::tempdir().unwrap();
        let (clock, hand) = Clock::manual(T0);
        let store = EntityStore::new(clock);
        store
            .upsert_device(
                "plug",
                Device {
                    id: "plug".into(),
                    name: "Plug".into(),
                    manufacturer: "t".into(),
                    model: "t".into(),
                    sw_version: None,
                    via_device: None,
                },
            )
            .unwrap();
        store
            .upsert_entity(
                EntitySpec::new("plug", "energy", Component::Sensor)
                    .class("energy")
                    .measured("Wh", "total_increasing"),
            )
            .unwrap();
        let rec = Recorder::start(
            &crate::recorder::RecorderConfig::default(),
            dir.path().join("hearth.db"),
            store.clone(),
        )
        .unwrap();
        let at = |ms: i64, v: f64| {
            hand.set(ms);
            store.set_state(ID, v.to_string(), Map::new()).unwrap();
        };
        at(T0 + 5 * MIN, 100.0);
        at(T0 + 30 * MIN, 150.0); // hour 0: +50
        at(T0 + 70 * MIN, 40.0); // hour 1: a reset, +40
        rec.flush().await.unwrap();
        hand.set(T0 + 2 * HOUR_MS + 5 * MIN);
        rec.maintain().await.unwrap(); // hours 0 and 1 compiled
        at(T0 + 2 * HOUR_MS + 10 * MIN, 70.0); // hour 2: +30
        // Hour 2 is due for compiling 32 s after its end (the writer's
        // grace): until then its readings and hour 3's come from the states.
        at(T0 + 3 * HOUR_MS + 10_000, 100.0); // hour 3: +30
        rec.flush().await.unwrap();
        let now = T0 + 3 * HOUR_MS + 20_000;
        hand.set(now);
        let compiled = rec.reader().statistics(ID, T0, now).unwrap();
        assert_eq!(compiled.len(), 2, "{compiled:?}");
        let hours = meter_hours(&store, &rec, ID, 1.0, T0, T0 + 24 * HOUR_MS, now);
        let want: BTreeMap<i64, f64> = [
            (T0, 50.0),
            (T0 + HOUR_MS, 40.0),
            (T0 + 2 * HOUR_MS, 30.0),
            (T0 + 3 * HOUR_MS, 30.0),
        ]
        .into_iter()
        .collect();
        assert_eq!(hours, want);
        // A period starting after hour 0: its growth is not counted.
        let later = meter_hours(&store, &rec, ID, 1.0, T0 + HOUR_MS, T0 + 24 * HOUR_MS, now);
        assert_eq!(later.values().sum::<f64>(), 100.0, "{later:?}");
        rec.close().await;
    }

    #[test]
    fn a_price_change_inside_an_hour_splits_its_energy() {
        let t = TariffSteps(vec![(0, 0.2, "HC".into()), (1800, 0.3, "HP".into())]);
        let parts = t.price(1000.0, 0, 3600);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, "HC");
        assert!((parts[0].1 - 500.0).abs() < 1e-9);
        assert!((parts[0].2 - 0.1).abs() < 1e-12);
        assert!((parts[1].2 - 0.15).abs() < 1e-12);
        // No tariff recorded: the energy without a price.
        let none = TariffSteps(Vec::new()).price(10.0, 0, 3600);
        assert_eq!(none, [(crate::energy::NO_PERIOD.to_string(), 10.0, 0.0)]);
    }
}
