//! One local day's totals and the figures HA's Energy dashboard derives
//! from them (its "self-consumed solar energy" and "self-sufficiency"
//! gauges; battery storage is not modelled):
//!
//! - consumption = grid import + solar production − grid export;
//! - self-consumed solar = solar − export (within 0 … solar);
//! - self-consumption % = self-consumed / solar (none without solar);
//! - self-sufficiency % = self-consumed / consumption
//!   (= (consumption − import) / consumption; none without consumption).

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayTotals {
    pub import_wh: f64,
    pub export_wh: f64,
    pub solar_wh: f64,
    /// Device energy sensor → Wh.
    pub devices: BTreeMap<String, f64>,
    /// Tariff period → € of imported energy.
    pub cost: BTreeMap<String, f64>,
}

impl DayTotals {
    /// Adds a ledger increment of `source` (cost counts for grid import
    /// only: export is not paid back here).
    pub fn add(&mut self, source: &super::Source, period: &str, wh: f64, eur: f64) {
        use super::Source;
        match source {
            Source::GridImport => {
                self.import_wh += wh;
                *self.cost.entry(period.to_string()).or_default() += eur;
            }
            Source::GridExport => self.export_wh += wh,
            Source::Solar => self.solar_wh += wh,
            Source::Device(id) => *self.devices.entry(id.clone()).or_default() += wh,
        }
    }

    pub fn consumption_wh(&self) -> f64 {
        (self.import_wh + self.solar_wh - self.export_wh).max(0.0)
    }

    pub fn self_consumed_wh(&self) -> f64 {
        (self.solar_wh - self.export_wh).clamp(0.0, self.solar_wh.max(0.0))
    }

    pub fn self_consumption_pct(&self) -> Option<f64> {
        (self.solar_wh > 0.0).then(|| 100.0 * self.self_consumed_wh() / self.solar_wh)
    }

    pub fn self_sufficiency_pct(&self) -> Option<f64> {
        let c = self.consumption_wh();
        (c > 0.0).then(|| (100.0 * self.self_consumed_wh() / c).min(100.0))
    }

    pub fn cost_eur(&self) -> f64 {
        self.cost.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboards_figures() {
        let d = DayTotals {
            import_wh: 10_000.0,
            export_wh: 3_000.0,
            solar_wh: 8_000.0,
            ..Default::default()
        };
        assert_eq!(d.consumption_wh(), 15_000.0);
        assert_eq!(d.self_consumed_wh(), 5_000.0);
        assert_eq!(d.self_consumption_pct(), Some(62.5));
        let s = d.self_sufficiency_pct().unwrap();
        assert!((s - 100.0 / 3.0).abs() < 1e-9, "{s}");
        // No sun: no self-consumption figure, self-sufficiency 0.
        let night = DayTotals {
            import_wh: 2_000.0,
            ..Default::default()
        };
        assert_eq!(night.self_consumption_pct(), None);
        assert_eq!(night.self_sufficiency_pct(), Some(0.0));
        assert_eq!(DayTotals::default().self_sufficiency_pct(), None);
        // Export read ahead of production (two meters, two polls): never
        // below 0 % nor above 100 %.
        let lag = DayTotals {
            import_wh: 0.0,
            export_wh: 1_200.0,
            solar_wh: 1_000.0,
            ..Default::default()
        };
        assert_eq!(lag.self_consumption_pct(), Some(0.0));
        assert_eq!(lag.self_sufficiency_pct(), None);
    }
}
