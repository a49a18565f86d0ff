//! `[energy]` in the bridge config: which energy sensors are the grid
//! import and export meters, the solar production meter and the devices,
//! the tariff entity costs are read from, and the local day they are cut
//! in. Example in the module doc of [`crate::energy`].

use crate::usage::periods::{Calendar, WeekStart};
use serde::Deserialize;
use std::collections::HashSet;

/// `[energy]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyConfig {
    /// Energy drawn from the grid: an energy sensor (Wh, kWh or MWh,
    /// `total_increasing`), e.g. `sensor.grid_import_energy`.
    #[serde(default)]
    pub grid_import: Option<String>,
    /// Energy returned to the grid (same kind), e.g. `sensor.grid_export_energy`.
    #[serde(default)]
    pub grid_export: Option<String>,
    /// Solar production (same kind), e.g. `sensor.pv_energy`.
    #[serde(default)]
    pub solar_production: Option<String>,
    /// Individual devices' energy sensors (same kind).
    #[serde(default)]
    pub devices: Vec<String>,
    /// The price sensor (€/kWh) whose attribute `period` names the tariff
    /// period (`HP`, `HC`, or whatever the tariff says); default
    /// [`crate::feeds::tariff_driver::PRICE_ENTITY`].
    #[serde(default = "default_tariff_entity")]
    pub tariff_entity: String,
    /// Periods whose cost sensors exist from the start; a period first
    /// seen later gets its sensor then. Default `["HP", "HC"]`.
    #[serde(default = "default_periods")]
    pub periods: Vec<String>,
    /// The time zone days are local to (`UTC`, `Europe/Paris`, `+01:00`,
    /// a POSIX TZ string; [`crate::feeds::tariff::parse_time_zone`]).
    /// Default `Europe/Paris`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

fn default_tariff_entity() -> String {
    crate::feeds::tariff_driver::PRICE_ENTITY.into()
}
fn default_periods() -> Vec<String> {
    vec!["HP".into(), "HC".into()]
}
fn default_timezone() -> String {
    "Europe/Paris".into()
}

/// The object id of a period's cost sensor key: `HP` → `hp`.
pub fn period_key(period: &str) -> String {
    let k: String = period
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if k.is_empty() { "_".into() } else { k }
}

fn check_sensor(what: &str, id: &str) -> Result<(), String> {
    let ok = id.strip_prefix("sensor.").is_some_and(|o| {
        !o.is_empty()
            && o.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "[energy] {what} `{id}`: expected an entity id `sensor.<object_id>` (lowercase letters, digits, _)"
        ))
    }
}

impl EnergyConfig {
    pub fn calendar(&self) -> Result<Calendar, String> {
        let tz = crate::feeds::tariff::parse_time_zone(&self.timezone)
            .map_err(|e| format!("[energy] timezone `{}`: {e}", self.timezone))?;
        Ok(Calendar::new(tz, WeekStart::Monday))
    }

    /// (role, entity id) of every configured meter.
    pub fn meters(&self) -> Vec<(super::Source, String)> {
        use super::Source;
        let mut m = Vec::new();
        for (src, id) in [
            (Source::GridImport, &self.grid_import),
            (Source::GridExport, &self.grid_export),
            (Source::Solar, &self.solar_production),
        ] {
            if let Some(id) = id {
                m.push((src, id.clone()));
            }
        }
        for d in &self.devices {
            m.push((Source::Device(d.clone()), d.clone()));
        }
        m
    }

    pub fn validate(&self) -> Result<(), String> {
        self.calendar()?;
        check_sensor("tariff_entity", &self.tariff_entity)?;
        if self.grid_import.is_none() && self.solar_production.is_none() && self.devices.is_empty()
        {
            return Err(
                "[energy] nothing to account: set grid_import, solar_production or devices".into(),
            );
        }
        let mut seen = HashSet::new();
        for (src, id) in self.meters() {
            check_sensor(&src.config_key(), &id)?;
            if !seen.insert(id.clone()) {
                return Err(format!(
                    "[energy] `{id}` is listed twice (each meter counts once)"
                ));
            }
        }
        let mut keys = HashSet::new();
        for p in &self.periods {
            if p.trim().is_empty() || !keys.insert(period_key(p)) {
                return Err(format!(
                    "[energy] periods: `{p}` is empty or the same as another period once lowercased"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EnergyConfig, String> {
        let c: EnergyConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map(|_| c)
    }

    #[test]
    fn a_good_section_and_bad_ones_name_the_key() {
        let c = parse(
            "grid_import = \"sensor.grid_import_energy\"\ngrid_export = \"sensor.grid_export_energy\"\n\
             solar_production = \"sensor.pv_energy\"\ndevices = [\"sensor.ev_energy\"]\n",
        )
        .unwrap();
        assert_eq!(c.meters().len(), 4);
        assert_eq!(c.tariff_entity, "sensor.tariff_price");
        assert_eq!(c.periods, ["HP", "HC"]);
        for (text, want) in [
            ("timezone = \"UTC\"\n", "nothing to account"),
            (
                "grid_import = \"switch.x\"\n",
                "[energy] grid_import `switch.x`",
            ),
            (
                "grid_import = \"sensor.a\"\ndevices = [\"sensor.a\"]\n",
                "`sensor.a` is listed twice",
            ),
            (
                "grid_import = \"sensor.a\"\ntimezone = \"Mars/Olympus\"\n",
                "timezone `Mars/Olympus`",
            ),
            (
                "grid_import = \"sensor.a\"\nperiods = [\"HP\", \"hp\"]\n",
                "periods: `hp`",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        assert_eq!(period_key("Heures pleines"), "heures_pleines");
    }

    #[test]
    fn the_sections_are_read_and_checked_by_the_config_file() {
        let text = "[[shelly_em]]\nid = \"meter\"\nname = \"Meter\"\nhost = \"10.0.0.5\"\nmodel = \"proem\"\n\
                    [[shelly_em.channels]]\nrole = \"grid\"\nentity_prefix = \"grid\"\n\
                    [energy]\ngrid_import = \"sensor.grid_import_energy\"\ntimezone = \"UTC\"\n";
        let c = crate::config::Config::from_toml(text, "c.toml").unwrap();
        assert_eq!(
            c.shelly_em[0].channels[0].entity_prefix.as_deref(),
            Some("grid")
        );
        assert_eq!(
            c.energy.unwrap().grid_import.as_deref(),
            Some("sensor.grid_import_energy")
        );
        let clash = text.replace("id = \"meter\"", "id = \"energy\"");
        let e = crate::config::Config::from_toml(&clash, "c.toml").unwrap_err();
        assert!(
            format!("{e:#}").contains("device id `energy` is taken"),
            "{e:#}"
        );
        let bad = text.replace("role = \"grid\"", "role = \"grid\"\nchannel = 5");
        let e = crate::config::Config::from_toml(&bad, "c.toml").unwrap_err();
        assert!(
            format!("{e:#}").contains("channel 5 does not exist"),
            "{e:#}"
        );
    }
}
