//! A strip's outlets as Home Assistant sees them: per outlet a `switch`
//! (`switch.<strip>_outlet<n>`) and three sensors (`_power` W, `_current`
//! A, `_energy` Wh), and the arithmetic that turns one `ENERGY` reading into
//! per-outlet figures for either [`MeterMode`].
//!
//! With `meter = "total"` the strip measures only its sum, so per-outlet
//! figures are estimates: the total power and current are split equally
//! among the outlets that are on, and each rise of the strip's `Total`
//! counter is split the same way into per-outlet energy counters that start
//! at 0 Wh when the driver starts (HA's `total_increasing` treats the
//! restart as a meter reset). Those sensors carry the attribute
//! `estimated` = [`ESTIMATE_NOTE`], so nobody bills from them unawares.

use super::config::{MeterMode, TasmotaStripConfig};
use super::payload::{Channels, EnergyReading, PayloadError};
use crate::entity::{Component, EntitySpec};

/// The `estimated` attribute of per-outlet sensors on a total-only strip.
pub const ESTIMATE_NOTE: &str = "equal split of the strip's total among outlets that are on";

/// (key suffix, name suffix, device class, unit, state class) per sensor.
pub const SENSORS: [(&str, &str, &str, &str, &str); 3] = [
    ("power", "power", "power", "W", "measurement"),
    ("current", "current", "current", "A", "measurement"),
    ("energy", "energy", "energy", "Wh", "total_increasing"),
];

/// `outlet<n>`, the key of outlet `n`'s switch within the strip device.
pub fn switch_key(n: usize) -> String {
    format!("outlet{n}")
}

/// The switch and the sensors of outlet `n` (1-based).
pub fn outlet_entities(cfg: &TasmotaStripConfig, n: usize) -> Vec<EntitySpec> {
    let name = cfg.outlet_name(n);
    let mut specs = vec![
        EntitySpec::new(&cfg.id, &switch_key(n), Component::Switch)
            .named(&name)
            .class("outlet"),
    ];
    for (key, suffix, class, unit, state_class) in SENSORS {
        specs.push(
            EntitySpec::new(&cfg.id, &format!("outlet{n}_{key}"), Component::Sensor)
                .named(&format!("{name} {suffix}"))
                .class(class)
                .measured(unit, state_class),
        );
    }
    specs
}

/// One outlet's figures from one reading.
#[derive(Debug, Clone, PartialEq)]
pub struct OutletFigures {
    /// W
    pub power_w: f64,
    /// A
    pub current_a: Option<f64>,
    /// Wh
    pub energy_wh: Option<f64>,
}

/// What a total-only strip's estimate remembers between readings.
#[derive(Debug, Clone, Default)]
pub struct Estimate {
    /// The strip's `Total` at the last reading, kWh.
    last_total_kwh: Option<f64>,
    /// Per-outlet estimated energy since the driver started, Wh.
    energy_wh: Vec<f64>,
}

/// Per-outlet figures (outlet 1 first) from `reading`, given the relays'
/// last known states (`None`: not reported yet, counted as off).
pub fn outlet_figures(
    cfg: &TasmotaStripConfig,
    reading: &EnergyReading,
    relays: &[Option<bool>],
    estimate: &mut Estimate,
) -> Result<Vec<OutletFigures>, PayloadError> {
    match cfg.meter {
        MeterMode::PerOutlet => per_outlet(cfg.outlets, reading),
        MeterMode::Total => Ok(split_total(cfg.outlets, reading, relays, estimate)),
    }
}

fn per_outlet(outlets: usize, r: &EnergyReading) -> Result<Vec<OutletFigures>, PayloadError> {
    // One outlet with one meter is reported as plain numbers.
    let values = |field: &'static str, c: &Channels| -> Result<Vec<f64>, PayloadError> {
        match c {
            Channels::PerChannel(v) if v.len() == outlets => Ok(v.clone()),
            Channels::Single(x) if outlets == 1 => Ok(vec![*x]),
            other => Err(PayloadError::Energy {
                field,
                expected: format!(
                    "an array of {outlets} values, one per outlet (meter = \"per_outlet\"; \
                     SetOption129 1 for per-channel Total)"
                ),
                got: match other {
                    Channels::PerChannel(v) => format!("an array of {}", v.len()),
                    Channels::Single(_) => "a single number".into(),
                },
            }),
        }
    };
    let power = values("Power", &r.power_w)?;
    let current = r
        .current_a
        .as_ref()
        .map(|c| values("Current", c))
        .transpose()?;
    // Without SetOption129 Tasmota sends one Total for all channels:
    // per-outlet energy is then unknown, not an error.
    let energy = match &r.total_kwh {
        Some(Channels::Single(_)) if outlets > 1 => None,
        Some(c) => Some(values("Total", c)?),
        None => None,
    };
    Ok((0..outlets)
        .map(|i| OutletFigures {
            power_w: power[i],
            current_a: current.as_ref().map(|c| c[i]),
            energy_wh: energy.as_ref().map(|e| e[i] * 1000.0),
        })
        .collect())
}

fn split_total(
    outlets: usize,
    r: &EnergyReading,
    relays: &[Option<bool>],
    estimate: &mut Estimate,
) -> Vec<OutletFigures> {
    let on: Vec<bool> = (0..outlets)
        .map(|i| relays.get(i).copied().flatten().unwrap_or(false))
        .collect();
    let on_count = on.iter().filter(|o| **o).count();
    let share = |total: f64, i: usize| {
        if on[i] { total / on_count as f64 } else { 0.0 }
    };
    estimate.energy_wh.resize(outlets, 0.0);
    let total_kwh = r.total_kwh.as_ref().map(Channels::total);
    if let (Some(now), Some(before)) = (total_kwh, estimate.last_total_kwh) {
        // A smaller Total is a counter reset (EnergyReset): nothing to split.
        let delta_wh = (now - before).max(0.0) * 1000.0;
        if on_count > 0 {
            for (i, e) in estimate.energy_wh.iter_mut().enumerate() {
                *e += share(delta_wh, i);
            }
        }
    }
    if total_kwh.is_some() {
        estimate.last_total_kwh = total_kwh;
    }
    let power = r.power_w.total();
    let current = r.current_a.as_ref().map(Channels::total);
    (0..outlets)
        .map(|i| OutletFigures {
            power_w: share(power, i),
            current_a: current.map(|c| share(c, i)),
            energy_wh: total_kwh.map(|_| estimate.energy_wh[i]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(outlets: usize, meter: MeterMode) -> TasmotaStripConfig {
        TasmotaStripConfig {
            id: "strip1".into(),
            name: "Strip".into(),
            topic: "strip1".into(),
            outlets,
            outlet_names: vec!["Lamp".into()],
            meter,
        }
    }

    #[test]
    fn entities_follow_ha_names_and_units() {
        let specs = outlet_entities(&cfg(2, MeterMode::PerOutlet), 1);
        let ids: Vec<&str> = specs.iter().map(|s| s.entity_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "switch.strip1_outlet1",
                "sensor.strip1_outlet1_power",
                "sensor.strip1_outlet1_current",
                "sensor.strip1_outlet1_energy"
            ]
        );
        assert_eq!(specs[3].name.as_deref(), Some("Lamp energy"));
        assert_eq!(specs[3].unit.as_deref(), Some("Wh"));
        assert_eq!(specs[3].state_class.as_deref(), Some("total_increasing"));
    }

    #[test]
    fn per_outlet_arrays_map_to_outlets_and_kwh_to_wh() {
        let r = super::super::payload::parse_sensor(
            br#"{"ENERGY":{"Total":[1.2,0.3],"Power":[52,5],"Current":[0.23,0.02],"Voltage":230}}"#,
        )
        .unwrap()
        .unwrap();
        let f = outlet_figures(
            &cfg(2, MeterMode::PerOutlet),
            &r,
            &[],
            &mut Estimate::default(),
        )
        .unwrap();
        assert_eq!(f[0].power_w, 52.0);
        assert_eq!(f[1].current_a, Some(0.02));
        assert_eq!(f[0].energy_wh, Some(1200.0));
        // Arrays of the wrong length are refused, naming the count expected.
        let e = outlet_figures(
            &cfg(3, MeterMode::PerOutlet),
            &r,
            &[],
            &mut Estimate::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("ENERGY.Power: expected an array of 3 values, one per outlet"),
            "{e}"
        );
    }

    #[test]
    fn total_meter_splits_equally_among_outlets_that_are_on() {
        let c = cfg(3, MeterMode::Total);
        let reading = |p: f64, kwh: f64| EnergyReading {
            power_w: Channels::Single(p),
            current_a: Some(Channels::Single(p / 230.0)),
            total_kwh: Some(Channels::Single(kwh)),
        };
        let mut est = Estimate::default();
        let relays = [Some(true), Some(false), Some(true)];
        let f = outlet_figures(&c, &reading(100.0, 2.0), &relays, &mut est).unwrap();
        assert_eq!(
            f.iter().map(|o| o.power_w).collect::<Vec<_>>(),
            [50.0, 0.0, 50.0]
        );
        assert_eq!(f[0].energy_wh, Some(0.0), "counters start at 0 Wh");
        let f = outlet_figures(&c, &reading(100.0, 2.1), &relays, &mut est).unwrap();
        assert!((f[0].energy_wh.unwrap() - 50.0).abs() < 1e-9);
        assert_eq!(f[1].energy_wh, Some(0.0));
        // A counter reset adds nothing; nothing on: everything 0.
        let f = outlet_figures(&c, &reading(3.0, 0.0), &[None; 3], &mut est).unwrap();
        assert_eq!(f[2].power_w, 0.0);
        assert!((f[2].energy_wh.unwrap() - 50.0).abs() < 1e-9);
    }
}
