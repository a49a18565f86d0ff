//! PV-power and base-load forecasts for the live bridge: `[solar]` in the
//! config file.
//!
//! ```toml
//! [solar]
//! base_load_sensor = "sensor.house_base_power"  # W; optional: the base-load forecast
//! base_load_weeks = 4                      # same-weekday history, weeks (1..=12, default 4)
//! base_load_step_min = 30                  # forecast step, min (divides 1440; default 30)
//! base_load_horizon_h = 48                 # h ahead (1..=168, default 48)
//! base_load_refresh_s = 900                # s between recomputations (default 900)
//!
//! [[solar.arrays]]                         # one per array (keys: crate::solar::PvArray)
//! kwp = 4.0
//! tilt_deg = 30
//! azimuth_deg = 180                        # 180 = south, 90 = east (Open-Meteo's 0 = south is this − 180)
//! losses_pct = 14.08
//! inverter_kw = 3.3                        # default kwp / 1.2
//! inverter_efficiency = 0.96
//! lat = 48.86
//! lon = 2.34
//! mount = "rack"                           # rack | roof
//! ```
//!
//! **PV power** (`pv-power` series, W AC, sum of the arrays; entity
//! `sensor.pv_power_forecast`): computed by the weather feed
//! ([`crate::feeds::weather_driver`], which needs `[weather]`) from each
//! Open-Meteo hour: GHI, DNI and DHI are that hour's means (stamped at its
//! end), so the sun is placed at the middle of the hour; air temperature
//! and wind are instants, interpolated at the middle too. An hour without
//! DNI/DHI (an older answer, or nulls) is split from GHI with Erbs
//! ([`super::clearsky::erbs`]); a missing temperature counts as 20 °C and a
//! missing wind as 1 m/s. The cell temperature carries over from hour to
//! hour (stateful Fuentes, [`PvArray::ac_power_w_dynamic`], restarted after
//! a gap), as PVWatts does. Each value is a step from the hour's start, like
//! `solar-irradiance`; an hour without GHI is a gap (NaN).
//!
//! **Base load** (`base-load` series, W; entity `sensor.base_load_forecast`):
//! for each step `[t, t + step)` ahead, the mean of the configured sensor
//! over the same step 1, 2, … `base_load_weeks` weeks earlier (the same
//! weekday and time of day, whatever the time zone; one hour off for the
//! week after a daylight-saving change), from the recorder's history
//! ([`crate::entity::EntityStore::history`]: memory, then SQLite; with
//! `[recorder] enabled = false` only the last 4096 changes in memory). Steps
//! with none of those weeks known fall back to the mean of the same step
//! on every earlier day in the window (all days' profile); with no history
//! at all the step is a gap. The sensor is a step function: each sample
//! holds until the next, however long (only changes are recorded; a
//! non-numeric state such as `unavailable` is skipped, so the value before
//! it holds on, also across a bridge downtime); a step needs half its
//! length covered to count. A sensor whose unit is `kW` is converted to W (known
//! when the entity is in the store); any other unit is taken as W.
//!
//! The sensor must **exclude the loads the tariff optimizer plans**: the
//! optimizer takes `base-load` as everything it does not plan and adds its
//! own loads on top, so a whole-house sensor (`sensor.house_power`) counts
//! the water heater, EV, machines … twice (at their past times in the
//! forecast, and where the optimizer places them). Use e.g. a template
//! sensor house − water heater − EV − machines; nothing is subtracted here.
//!
//! Both entities show the value for now, with attribute `forecasts`:
//! `[{"datetime": RFC 3339 step start, "value": W}, …]` from the current
//! step on.

use super::clearsky::erbs;
use super::{PvArray, ThermalState};
use crate::drivers::DriverContext;
use crate::entity::{Component, Device, EntitySpec, EntityStore, format_number};
use crate::feeds::weather::OpenMeteoForecast;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

/// Device of the forecast entities.
pub const DEVICE: &str = "solar-forecast";
pub const PV_ENTITY: &str = "sensor.pv_power_forecast";
pub const BASE_LOAD_ENTITY: &str = "sensor.base_load_forecast";
/// Series names in the host's forecasts (issue 15 contract).
pub const PV_SERIES: &str = "pv-power";
pub const BASE_LOAD_SERIES: &str = "base-load";

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;

/// `[solar]` in the config file.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SolarConfig {
    /// PV arrays (`[[solar.arrays]]`); the forecast is their sum.
    #[serde(default)]
    pub arrays: Vec<PvArray>,
    /// Entity id of the house's consumption in W, without the loads the
    /// tariff optimizer plans (it adds those on top of `base-load`).
    pub base_load_sensor: Option<String>,
    pub base_load_weeks: Option<u32>,
    pub base_load_step_min: Option<u32>,
    pub base_load_horizon_h: Option<u32>,
    pub base_load_refresh_s: Option<f64>,
}

impl SolarConfig {
    pub fn base_load_weeks(&self) -> u32 {
        self.base_load_weeks.unwrap_or(4)
    }
    pub fn base_load_step_ms(&self) -> i64 {
        self.base_load_step_min.unwrap_or(30) as i64 * 60_000
    }
    pub fn base_load_horizon_ms(&self) -> i64 {
        self.base_load_horizon_h.unwrap_or(48) as i64 * 3_600_000
    }
    pub fn base_load_refresh_s(&self) -> f64 {
        self.base_load_refresh_s.unwrap_or(900.0)
    }

    /// Checks every key; errors name it (`[solar.arrays][i] key = …`).
    /// `has_weather`: whether `[weather]` is configured (the PV forecast
    /// needs it).
    pub fn validate(&self, has_weather: bool) -> Result<(), String> {
        for (i, a) in self.arrays.iter().enumerate() {
            a.check().map_err(|e| format!("[solar.arrays][{i}] {e}"))?;
        }
        if !self.arrays.is_empty() && !has_weather {
            return Err(
                "[solar.arrays] needs [weather] (latitude, longitude): the PV forecast \
                        is computed from its Open-Meteo irradiance"
                    .into(),
            );
        }
        if let Some(s) = &self.base_load_sensor {
            let ok = s.split_once('.').is_some_and(|(d, o)| {
                !d.is_empty()
                    && !o.is_empty()
                    && s.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'
                    })
            });
            if !ok {
                return Err(format!(
                    "[solar] base_load_sensor = \"{s}\": expected an entity id like \"sensor.house_power\""
                ));
            }
        }
        let w = self.base_load_weeks();
        if !(1..=12).contains(&w) {
            return Err(format!("[solar] base_load_weeks must be 1 to 12 (got {w})"));
        }
        let m = self.base_load_step_min.unwrap_or(30);
        if m == 0 || 1440 % m != 0 {
            return Err(format!(
                "[solar] base_load_step_min must divide a day (15, 30, 60, …; got {m})"
            ));
        }
        let h = self.base_load_horizon_h.unwrap_or(48);
        if !(1..=168).contains(&h) {
            return Err(format!(
                "[solar] base_load_horizon_h must be 1 to 168 (got {h})"
            ));
        }
        let r = self.base_load_refresh_s();
        if !(r.is_finite() && (1.0..=86_400.0).contains(&r)) {
            return Err(format!(
                "[solar] base_load_refresh_s must be 1 to 86400 s (got {r})"
            ));
        }
        Ok(())
    }
}

/// AC power (W, all arrays) per Open-Meteo hour, as steps from each hour's
/// start, NaN for gaps and after the last hour (see the module doc).
pub fn pv_power_steps(arrays: &[PvArray], f: &OpenMeteoForecast) -> Vec<(i64, f64)> {
    let period = match f.radiation.aggregation() {
        crate::feeds::weather::Aggregation::PrecedingMean { period_ms } => period_ms,
        crate::feeds::weather::Aggregation::Instant => 3_600_000,
    };
    let at = |s: &Option<crate::feeds::weather::TimeSeries>, i: usize| {
        s.as_ref()
            .and_then(|s| s.points().get(i))
            .and_then(|p| p.value)
    };
    let mut out = Vec::with_capacity(f.radiation.points().len() + 1);
    let mut prev_end: Option<i64> = None;
    let mut thermal = vec![ThermalState::default(); arrays.len()];
    let dt_h = period as f64 / 3_600_000.0;
    for (i, p) in f.radiation.points().iter().enumerate() {
        let start = p.t_ms - period;
        if let Some(e) = prev_end.filter(|e| *e < start) {
            out.push((e, f64::NAN));
            thermal.fill(ThermalState::default());
        }
        prev_end = Some(p.t_ms);
        let Some(ghi) = p.value else {
            out.push((start, f64::NAN));
            thermal.fill(ThermalState::default());
            continue;
        };
        let mid = p.t_ms - period / 2;
        let temp = f
            .temperature
            .at(mid)
            .or_else(|| f.temperature.at(p.t_ms))
            .unwrap_or(20.0);
        let wind = f.wind.as_ref().and_then(|w| w.at(mid)).unwrap_or(1.0);
        let power: f64 = arrays
            .iter()
            .zip(thermal.iter_mut())
            .map(|(a, th)| {
                let (dni, dhi) = match (at(&f.dni, i), at(&f.dhi, i)) {
                    (Some(dni), Some(dhi)) => (dni, dhi),
                    _ => {
                        let s = super::sun::position(mid, a.lat, a.lon);
                        let x = erbs(
                            ghi,
                            s.zenith_deg,
                            super::sun::extra_radiation(super::sun::day_of_year(mid)),
                        );
                        (x.dni, x.dhi)
                    }
                };
                a.ac_power_w_dynamic(th, mid, ghi, dni, dhi, temp, wind, dt_h)
            })
            .sum();
        out.push((start, power));
    }
    if let Some(e) = prev_end {
        out.push((e, f64::NAN));
    }
    out
}

/// Time-weighted mean of a step series over `[a, b)`: each sample holds
/// until the next one, however long (the store and the recorder keep
/// changes only: a steady sensor has no new sample). `None` when less than
/// half the range is covered.
pub fn step_mean(samples: &[(i64, f64)], a: i64, b: i64) -> Option<f64> {
    if b <= a {
        return None;
    }
    let first = samples.partition_point(|(t, _)| *t <= a).saturating_sub(1);
    let (mut acc, mut covered) = (0.0, 0i64);
    for (i, (t, v)) in samples.iter().enumerate().skip(first) {
        if *t >= b {
            break;
        }
        let next = samples.get(i + 1).map_or(i64::MAX, |n| n.0);
        let end = next.min(b);
        let start = (*t).max(a);
        if end > start && v.is_finite() {
            acc += v * (end - start) as f64;
            covered += end - start;
        }
    }
    (covered * 2 >= b - a).then(|| acc / covered as f64)
}

/// Base-load forecast steps `[t, t + step_ms)` from the step containing
/// `now_ms` to `now_ms + horizon_ms`: the mean over the same step 1..=weeks
/// weeks earlier, else over every earlier day in that window, else NaN.
/// `samples` is the sensor's history (sorted), which must reach back
/// `weeks` weeks and a day before `now_ms`.
pub fn base_load_steps(
    samples: &[(i64, f64)],
    now_ms: i64,
    weeks: u32,
    step_ms: i64,
    horizon_ms: i64,
) -> Vec<(i64, f64)> {
    let first = now_ms - now_ms.rem_euclid(step_ms);
    let mut out = Vec::new();
    let mut t = first;
    while t < now_ms + horizon_ms {
        let known = |offset: i64| {
            let a = t - offset;
            // Only the past: a window that reaches beyond now is not history.
            if a + step_ms > now_ms {
                return None;
            }
            step_mean(samples, a, a + step_ms)
        };
        let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let weekly = mean(
            (1..=weeks as i64)
                .filter_map(|k| known(k * WEEK_MS))
                .collect(),
        );
        let daily = || {
            mean(
                (1..=7 * weeks as i64)
                    .filter_map(|d| known(d * DAY_MS))
                    .collect(),
            )
        };
        out.push((t, weekly.or_else(daily).unwrap_or(f64::NAN)));
        t += step_ms;
    }
    out.push((t, f64::NAN));
    out
}

/// Registers the forecast device and its two entities (idempotent).
pub fn register(store: &EntityStore) -> anyhow::Result<()> {
    store.upsert_device(
        DEVICE,
        Device {
            id: DEVICE.into(),
            name: "Solar forecast".into(),
            manufacturer: "Hearth".into(),
            model: "PVWatts v5 on Open-Meteo; same-weekday base load".into(),
            sw_version: None,
            via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
        },
    )?;
    for (key, id, name) in [
        ("pv_power_forecast", PV_ENTITY, "PV power forecast"),
        ("base_load_forecast", BASE_LOAD_ENTITY, "Base load forecast"),
    ] {
        let mut spec = EntitySpec::new(DEVICE, key, Component::Sensor)
            .named(name)
            .class("power")
            .measured("W", "measurement");
        spec.entity_id = id.into();
        store.upsert_entity(spec)?;
    }
    Ok(())
}

/// Sets a forecast entity: the step in force at `now_ms` as state,
/// `forecasts` from that step on.
pub fn publish_entity(store: &EntityStore, entity_id: &str, steps: &[(i64, f64)], now_ms: i64) {
    let i = steps.partition_point(|(t, _)| *t <= now_ms);
    let current = i
        .checked_sub(1)
        .map(|j| steps[j].1)
        .filter(|v| v.is_finite());
    let from = i.saturating_sub(1);
    let list: Vec<Value> = steps[from..]
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(t, v)| json!({"datetime": crate::clock::iso8601(*t), "value": (v * 10.0).round() / 10.0}))
        .collect();
    let mut attrs = Map::new();
    attrs.insert("forecasts".into(), Value::Array(list));
    let state = current.map_or_else(|| "unknown".into(), |v| format_number(v, 1));
    let _ = store.set_state(entity_id, state, attrs);
}

/// Reads `entity_id`'s history over `[start_ms, end_ms]` a day at a time
/// (the archive returns at most its newest 50 000 samples per call).
pub fn history_by_day(
    store: &EntityStore,
    entity_id: &str,
    start_ms: i64,
    end_ms: i64,
) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64)> = Vec::new();
    let mut a = start_ms;
    while a <= end_ms {
        let b = (a + DAY_MS - 1).min(end_ms);
        out.extend(store.history(entity_id, a, b));
        a = b + 1;
    }
    out.sort_by_key(|(t, _)| *t);
    out.dedup_by_key(|(t, _)| *t);
    out
}

/// The base-load forecast computed at `now_ms` from the store's history.
pub fn base_load_now(
    store: &EntityStore,
    cfg: &SolarConfig,
    sensor: &str,
    now_ms: i64,
) -> Vec<(i64, f64)> {
    let weeks = cfg.base_load_weeks();
    let start = now_ms - weeks as i64 * WEEK_MS - DAY_MS - cfg.base_load_step_ms();
    let mut samples = history_by_day(store, sensor, start, now_ms);
    // A sensor in kW (HA lets either be a power unit) becomes W.
    if store
        .spec(sensor)
        .is_some_and(|s| s.unit.as_deref() == Some("kW"))
    {
        samples.iter_mut().for_each(|(_, v)| *v *= 1000.0);
    }
    base_load_steps(
        &samples,
        now_ms,
        weeks,
        cfg.base_load_step_ms(),
        cfg.base_load_horizon_ms(),
    )
}

/// Starts the base-load forecast task (when `base_load_sensor` is set):
/// recomputes every `base_load_refresh_s`, publishes `base-load` and
/// `sensor.base_load_forecast`. The config must have been validated.
pub fn spawn_base_load(
    cfg: SolarConfig,
    ctx: &DriverContext,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let Some(sensor) = cfg.base_load_sensor.clone() else {
        return Ok(None);
    };
    register(&ctx.store)?;
    let ctx = ctx.clone();
    let mut shutdown = ctx.shutdown.clone();
    let every_ms = (cfg.base_load_refresh_s() * 1000.0) as i64;
    Ok(Some(tokio::spawn(async move {
        loop {
            let now = ctx.clock.now_ms();
            let store = ctx.store.clone();
            let (c, s) = (cfg.clone(), sensor.clone());
            // The history may come from SQLite: off the async threads.
            let steps =
                match tokio::task::spawn_blocking(move || base_load_now(&store, &c, &s, now)).await
                {
                    Ok(steps) => steps,
                    Err(e) => {
                        tracing::warn!("base-load forecast: {e}");
                        Vec::new()
                    }
                };
            if steps.iter().all(|(_, v)| !v.is_finite()) {
                tracing::info!("base-load forecast: no history of {sensor} yet");
            }
            ctx.forecasts.publish(BASE_LOAD_SERIES, steps.clone());
            publish_entity(&ctx.store, BASE_LOAD_ENTITY, &steps, now);
            tokio::select! {
                _ = crate::feeds::fetch::sleep_until(&ctx.clock, now + every_ms) => {}
                _ = shutdown.wait() => break,
            }
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::weather::parse_open_meteo;
    use crate::solar::sun::utc_ms;

    const H: i64 = 3_600_000;

    #[test]
    fn step_mean_is_time_weighted_and_needs_coverage() {
        let s = [(0, 100.0), (30 * 60_000, 300.0), (90 * 60_000, 0.0)];
        assert_eq!(step_mean(&s, 0, H), Some(200.0));
        assert_eq!(step_mean(&s, 15 * 60_000, 45 * 60_000), Some(200.0));
        assert_eq!(step_mean(&s, -H, 0), None);
        // Half covered: counts, over the covered part.
        assert_eq!(step_mean(&s, -30 * 60_000, 30 * 60_000), Some(100.0));
        // A steady sensor: its last change holds, however old.
        assert_eq!(
            step_mean(&[(0, 5.0)], 9 * DAY_MS, 9 * DAY_MS + H),
            Some(5.0)
        );
    }

    #[test]
    fn base_load_uses_the_same_weekday_then_all_days() {
        let now = utc_ms(2026, 12, 7, 10, 10, 0); // a Monday
        let step = 30 * 60_000;
        // Three weeks of history: 200 W every day, but 1000 W on Mondays
        // 12:00–13:00 and 500 W on other days 12:00–13:00.
        let mut samples = Vec::new();
        let start = now - now.rem_euclid(DAY_MS) - 21 * DAY_MS;
        for d in 0..22 {
            let day = start + d * DAY_MS;
            let monday = d % 7 == 0;
            samples.push((day, 200.0));
            samples.push((day + 12 * H, if monday { 1000.0 } else { 500.0 }));
            samples.push((day + 13 * H, 200.0));
        }
        samples.retain(|(t, _)| *t < now);
        let steps = base_load_steps(&samples, now, 4, step, 48 * H);
        assert_eq!(steps[0].0, utc_ms(2026, 12, 7, 10, 0, 0));
        // 10:00 .. 10:00 + 48 h (the step holding now + 48 h), then the end.
        assert_eq!(steps.len(), 97 + 1);
        assert!(steps.last().unwrap().1.is_nan());
        let at = |t: i64| steps.iter().find(|(s, _)| *s == t).unwrap().1;
        let monday_noon = utc_ms(2026, 12, 7, 12, 0, 0);
        assert_eq!(at(monday_noon), 1000.0);
        assert_eq!(at(monday_noon + 30 * 60_000), 1000.0);
        assert_eq!(at(monday_noon + H), 200.0);
        assert_eq!(at(monday_noon + DAY_MS), 500.0); // Tuesday
        // Only 1 week of history: Tuesday's same weekday is 1 week back
        // (500), a step with no weekly match falls back to the daily mean.
        let recent: Vec<_> = samples
            .iter()
            .copied()
            .filter(|(t, _)| *t >= now - 8 * DAY_MS)
            .collect();
        let steps = base_load_steps(&recent, now, 4, step, 48 * H);
        let at = |t: i64| steps.iter().find(|(s, _)| *s == t).unwrap().1;
        assert_eq!(at(monday_noon), 1000.0);
        let no_weeks = base_load_steps(&samples[samples.len() - 9..], now, 4, step, 48 * H);
        let v = no_weeks.iter().find(|(s, _)| *s == monday_noon).unwrap().1;
        assert_eq!(v, 500.0, "all days' mean when no same weekday is known");
        assert!(
            base_load_steps(&[], now, 4, step, H)
                .iter()
                .all(|(_, v)| v.is_nan())
        );
    }

    fn open_meteo(lat: f64, lon: f64, day: i64, with_dni: bool) -> String {
        let times: Vec<i64> = (1..=24).map(|h| day + h * H).collect();
        let w: Vec<_> = times
            .iter()
            .map(|t| crate::solar::clearsky::weather(t - H / 2, lat, lon, 0.2))
            .collect();
        let mut hourly = json!({
            "time": times.iter().map(|t| t / 1000).collect::<Vec<_>>(),
            "temperature_2m": times.iter().map(|_| 15.0).collect::<Vec<_>>(),
            "shortwave_radiation": w.iter().map(|x| x.ghi).collect::<Vec<_>>(),
            "wind_speed_10m": times.iter().map(|_| 2.0).collect::<Vec<_>>(),
        });
        if with_dni {
            hourly["direct_normal_irradiance"] = json!(w.iter().map(|x| x.dni).collect::<Vec<_>>());
            hourly["diffuse_radiation"] = json!(w.iter().map(|x| x.dhi).collect::<Vec<_>>());
        }
        json!({"utc_offset_seconds": 0, "hourly": hourly}).to_string()
    }

    #[test]
    fn pv_steps_put_the_sun_mid_hour_and_fall_back_to_erbs() {
        let (lat, lon) = (48.86, 2.34);
        let day = utc_ms(2026, 6, 21, 0, 0, 0);
        let a = PvArray::new(4.0, lat, lon);
        let f = parse_open_meteo("t", &open_meteo(lat, lon, day, true)).unwrap();
        let steps = pv_power_steps(std::slice::from_ref(&a), &f);
        assert_eq!(steps.len(), 25);
        assert_eq!(steps[0].0, day);
        assert!(steps[24].1.is_nan());
        // The hour 11:00–12:00 (stamped 12:00): sun at 11:30, the module
        // temperature carried from the hours before.
        let mut th = ThermalState::default();
        let mut want = 0.0;
        for h in 0..12 {
            let mid = day + h * H + H / 2;
            let w = crate::solar::clearsky::weather(mid, lat, lon, 0.2);
            want = a.ac_power_w_dynamic(&mut th, mid, w.ghi, w.dni, w.dhi, 15.0, 2.0, 1.0);
        }
        assert_eq!(steps[11], (day + 11 * H, want));
        let w = crate::solar::clearsky::weather(day + 11 * H + H / 2, lat, lon, 0.2);
        let steady = a.ac_power_w(day + 11 * H + H / 2, w.ghi, w.dni, w.dhi, 15.0, 2.0);
        assert!(
            (want - steady).abs() < 0.01 * steady,
            "{want} vs steady {steady}"
        );
        assert!(want > 2000.0, "{want}");
        assert_eq!(steps[0].1, 0.0, "night");
        // Two arrays sum.
        let two = pv_power_steps(&[a.clone(), a.clone()], &f);
        assert!((two[11].1 - 2.0 * want).abs() < 1e-9);
        // Without DNI/DHI: Erbs from GHI, which is how the synthetic DNI/DHI were made.
        let g = parse_open_meteo("t", &open_meteo(lat, lon, day, false)).unwrap();
        let erbs_steps = pv_power_steps(std::slice::from_ref(&a), &g);
        assert!(
            (erbs_steps[11].1 - want).abs() < 1e-6,
            "{:?} vs {want}",
            erbs_steps[11]
        );
    }

    #[test]
    fn a_kw_sensor_is_read_in_watts_from_the_store_history() {
        use crate::clock::Clock;
        let now = utc_ms(2026, 12, 7, 10, 0, 0);
        let (clock, hand) = Clock::manual(now - 8 * DAY_MS);
        let store = EntityStore::new(clock);
        store
            .upsert_device(
                "test",
                Device {
                    id: "house".into(),
                    name: "House".into(),
                    manufacturer: "test".into(),
                    model: "test".into(),
                    sw_version: None,
                    via_device: None,
                },
            )
            .unwrap();
        for (key, unit) in [("kw", "kW"), ("w", "W")] {
            store
                .upsert_entity(
                    EntitySpec::new("house", key, Component::Sensor).measured(unit, "measurement"),
                )
                .unwrap();
        }
        for d in 0..8 {
            hand.set(now - 8 * DAY_MS + d * DAY_MS);
            store
                .set_state("sensor.house_kw", "0.4", Map::new())
                .unwrap();
            store
                .set_state("sensor.house_w", "400", Map::new())
                .unwrap();
        }
        hand.set(now);
        let cfg: SolarConfig =
            toml::from_str("base_load_weeks = 1\nbase_load_horizon_h = 2").unwrap();
        let kw = base_load_now(&store, &cfg, "sensor.house_kw", now);
        let w = base_load_now(&store, &cfg, "sensor.house_w", now);
        assert_eq!(kw.len(), 4 + 1);
        assert!(kw[..4].iter().all(|(_, v)| *v == 400.0), "{kw:?}");
        assert_eq!(kw[..4], w[..4]);
    }

    #[test]
    fn config_is_checked() {
        let c: SolarConfig = toml::from_str(
            "base_load_sensor = \"sensor.house_power\"\n[[arrays]]\nkwp = 3\nlat = 45\nlon = 5\n",
        )
        .unwrap();
        c.validate(true).unwrap();
        assert!(c.validate(false).unwrap_err().contains("needs [weather]"));
        let bad: SolarConfig =
            toml::from_str("[[arrays]]\nkwp = 3\nlat = 45\nlon = 5\ntilt_deg = 100\n").unwrap();
        assert!(
            bad.validate(true)
                .unwrap_err()
                .starts_with("[solar.arrays][0] tilt_deg")
        );
        let bad: SolarConfig = toml::from_str("base_load_step_min = 7").unwrap();
        assert!(bad.validate(true).unwrap_err().contains("divide a day"));
        let bad: SolarConfig = toml::from_str("base_load_sensor = \"house power\"").unwrap();
        assert!(bad.validate(true).unwrap_err().contains("entity id"));
        assert!(toml::from_str::<SolarConfig>("array = []").is_err());
    }
}
