//! Energy accounting like Home Assistant's Energy dashboard (issue 15,
//! item 4), host-side: from the energy sensors the config names, today's
//! grid import and export, solar production, consumption, per-device
//! energy, self-consumption and self-sufficiency, and the cost of imported
//! energy per tariff period, as HA entities on device `energy`
//! ([`entities`] lists them with their classes).
//!
//! ```toml
//! [energy]
//! grid_import = "sensor.grid_import_energy"      # Wh/kWh/MWh, total_increasing
//! grid_export = "sensor.grid_export_energy"
//! solar_production = "sensor.pv_energy"
//! devices = ["sensor.water_heater_energy", "sensor.ev_energy"]
//! tariff_entity = "sensor.tariff_price"          # €/kWh, attribute `period`
//! periods = ["HP", "HC"]                         # cost sensors from the start
//! timezone = "Europe/Paris"                      # days are local
//! ```
//!
//! Every key is optional but one of `grid_import`, `solar_production`,
//! `devices` must be set. A meter's unit is its entity's
//! (`unit_of_measurement`); one without a unit is read as Wh.
//!
//! How it counts:
//! - each reading's increase is counted with HA's rules for
//!   `total_increasing` meters ([`crate::usage::meter::Counter`]: a fall
//!   below 90 % of the last reading is a reset of the meter, e.g.
//!   `EMData.ResetCounters` on a Shelly EM, and the new reading is what
//!   was used since; a smaller dip is noise), and belongs whole to the
//!   local day and hour it arrives in;
//! - grid import is priced at the `tariff_entity`'s price in force when
//!   the reading arrives and added to the cost of its `period` attribute
//!   (`HP`/`HC` with [`crate::feeds::tariff_driver`]; any label; `base`
//!   without one). While the entity has no price (after a start, before
//!   the feed's first answer) the last tariff seen is used, kept in
//!   `energy.db`; 0 € before any was ever seen. Export is not paid
//!   back here;
//! - figures ([`day`]): consumption = import + solar − export,
//!   self-consumption = (solar − export) / solar, self-sufficiency =
//!   (solar − export) / consumption. Consumption is published rising only
//!   within a day: two meters read at different moments can make it dip
//!   for a poll, and a dip of a `total_increasing` sensor is a reset to
//!   HA ("the integration ensures that the value cannot erroneously
//!   decrease", HA developer docs, sensor state classes). The price: when
//!   production is read before the export behind it, the published value
//!   runs ahead of the true one by that export (one poll's worth, Wh at
//!   5 s polls) until consumption grows past it;
//! - increments and each meter's last counted reading go to `energy.db`
//!   in the data directory ([`ledger`]); at start today's totals come
//!   back from it and each counter continues from its baseline, so energy
//!   used while the bridge was down is counted at the first reading.
//!
//! Long-term statistics: the recorder compiles hourly `state`/`sum` for
//! every `total_increasing` and `total` sensor
//! ([`crate::recorder::statistics`]), so the meters and the daily energy
//! sensors get statistics with nothing done here; a daily sensor's fall
//! to 0 at midnight is read as a meter reset, as HA does. The cost
//! sensors are `total` (HA allows no other state class for `monetary`):
//! HA starts a new cycle at their `last_reset`, but Hearth's recorder
//! ignores `last_reset` and counts the midnight fall as negative growth
//! in their `sum` (their `state` per hour is right).

pub mod config;
pub mod day;
pub mod entities;
pub mod ledger;
mod runtime;
pub mod summary;

pub use config::EnergyConfig;
pub use runtime::{EnergyContext, NO_PERIOD, spawn};

/// Wh per unit of an energy reading in `unit` (`Wh`, `kWh`, `MWh`);
/// `None` for any other unit or none (callers decide what none means).
pub fn wh_per_unit(unit: Option<&str>) -> Option<f64> {
    match unit {
        Some("Wh") => Some(1.0),
        Some("kWh") => Some(1000.0),
        Some("MWh") => Some(1_000_000.0),
        _ => None,
    }
}

/// What a meter measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    GridImport,
    GridExport,
    Solar,
    /// A device's energy sensor (its entity id).
    Device(String),
}

impl Source {
    /// The ledger's `quantity` column.
    pub fn quantity(&self) -> String {
        match self {
            Source::GridImport => "grid_import".into(),
            Source::GridExport => "grid_export".into(),
            Source::Solar => "solar".into(),
            Source::Device(id) => format!("device:{id}"),
        }
    }

    pub fn from_quantity(q: &str) -> Option<Source> {
        match q {
            "grid_import" => Some(Source::GridImport),
            "grid_export" => Some(Source::GridExport),
            "solar" => Some(Source::Solar),
            _ => q
                .strip_prefix("device:")
                .map(|id| Source::Device(id.to_string())),
        }
    }

    /// The `[energy]` key it is configured by.
    pub fn config_key(&self) -> String {
        match self {
            Source::GridImport => "grid_import".into(),
            Source::GridExport => "grid_export".into(),
            Source::Solar => "solar_production".into(),
            Source::Device(_) => "devices entry".into(),
        }
    }
}
