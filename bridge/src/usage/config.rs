//! `[usage]` in the bridge config: users, the outlets they hold, the
//! tariff entity and the local calendar periods are cut in.

use super::periods::{Calendar, WeekStart};
use serde::Deserialize;
use std::collections::HashSet;

/// `[usage]`. See the module doc of [`crate::usage`] for an example.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageConfig {
    #[serde(default)]
    pub users: Vec<UserConfig>,
    #[serde(default)]
    pub outlets: Vec<OutletConfig>,
    /// The tariff's price sensor (€/kWh, attribute `period` = `HP`|`HC`);
    /// default [`crate::feeds::tariff_driver::PRICE_ENTITY`].
    #[serde(default = "default_tariff_entity")]
    pub tariff_entity: String,
    /// Switch a user's outlets off when one of their limits reaches 100 %.
    #[serde(default = "yes")]
    pub off_at_limit: bool,
    /// First day of a week: `monday` (ISO 8601) or `sunday`.
    #[serde(default)]
    pub week_starts: WeekStart,
    /// The space's time zone (days, weeks and months are local): `UTC`,
    /// `Europe/Paris`, `+01:00` or a POSIX TZ string
    /// ([`crate::feeds::tariff::parse_time_zone`]). Default `Europe/Paris`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

/// One `[[usage.users]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Lowercase letters, digits, `-`, `_`; the device id of the user's
    /// entities (`sensor.<id>_energy_today`) and what a holder `select` shows.
    pub id: String,
    pub name: String,
    /// kWh per local day / week / month; unset: no limit of that period.
    pub limit_kwh_day: Option<f64>,
    pub limit_kwh_week: Option<f64>,
    pub limit_kwh_month: Option<f64>,
    /// A `number.*` entity whose value (kWh) replaces the config's limit of
    /// `limit_entity_period` while it is a number (0: no limit).
    pub limit_entity: Option<String>,
    /// `day` (default), `week` or `month`.
    #[serde(default)]
    pub limit_entity_period: super::periods::PeriodKind,
}

/// One `[[usage.outlets]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutletConfig {
    /// The outlet's energy meter: Wh, `total_increasing`
    /// (`sensor.<strip>_outlet<n>_energy`).
    pub energy_entity: String,
    /// The outlet's `switch.*` (switched off at a user's limit).
    pub switch_entity: String,
    /// A fixed holder (a user id)…
    pub user: Option<String>,
    /// …or a `select.*` whose state is the holder's id (`none`: nobody).
    pub user_entity: Option<String>,
}

fn default_tariff_entity() -> String {
    crate::feeds::tariff_driver::PRICE_ENTITY.into()
}
fn default_timezone() -> String {
    "Europe/Paris".into()
}
fn yes() -> bool {
    true
}

fn check_entity(what: &str, id: &str, domain: &str) -> Result<(), String> {
    let ok = id.split_once('.').is_some_and(|(d, o)| {
        (domain.is_empty() || d == domain)
            && !o.is_empty()
            && o.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    });
    if ok {
        Ok(())
    } else {
        let want = if domain.is_empty() {
            "<domain>"
        } else {
            domain
        };
        Err(format!(
            "[usage] {what} `{id}`: expected an entity id `{want}.<object_id>` (lowercase letters, digits, _)"
        ))
    }
}

impl UsageConfig {
    /// The calendar periods are cut with.
    pub fn calendar(&self) -> Result<Calendar, String> {
        let tz = crate::feeds::tariff::parse_time_zone(&self.timezone)
            .map_err(|e| format!("[usage] timezone `{}`: {e}", self.timezone))?;
        Ok(Calendar::new(tz, self.week_starts))
    }

    /// Ids, references and ranges; `device_ids` are the config's other
    /// devices (a user's id becomes a device id too).
    pub fn validate(&self, device_ids: &HashSet<String>) -> Result<(), String> {
        self.calendar()?;
        check_entity("tariff_entity", &self.tariff_entity, "sensor")?;
        let mut users = HashSet::new();
        for u in &self.users {
            hearth_node_core::validate_node_id(&u.id)
                .map_err(|e| format!("[usage] user id `{}`: {e}", u.id))?;
            if u.id == "bridge" || u.id == super::NOBODY || device_ids.contains(&u.id) {
                return Err(format!(
                    "[usage] user id `{}` is reserved or already a device id",
                    u.id
                ));
            }
            if !users.insert(u.id.as_str()) {
                return Err(format!("[usage] user id `{}` is used twice", u.id));
            }
            for (key, v) in [
                ("limit_kwh_day", u.limit_kwh_day),
                ("limit_kwh_week", u.limit_kwh_week),
                ("limit_kwh_month", u.limit_kwh_month),
            ] {
                if let Some(v) = v
                    && !(v.is_finite() && v > 0.0 && v <= 1e6)
                {
                    return Err(format!(
                        "[usage] user `{}`: {key} = {v}: expected kWh above 0 and at most 1000000",
                        u.id
                    ));
                }
            }
            if let Some(e) = &u.limit_entity {
                check_entity(&format!("user `{}` limit_entity", u.id), e, "number")?;
            }
        }
        let mut meters = HashSet::new();
        for o in &self.outlets {
            check_entity("outlet energy_entity", &o.energy_entity, "sensor")?;
            check_entity("outlet switch_entity", &o.switch_entity, "switch")?;
            if !meters.insert(o.energy_entity.as_str()) {
                return Err(format!(
                    "[usage] outlet energy_entity `{}` is listed twice",
                    o.energy_entity
                ));
            }
            match (&o.user, &o.user_entity) {
                (Some(u), None) => {
                    if !users.contains(u.as_str()) {
                        return Err(format!(
                            "[usage] outlet `{}`: unknown user `{u}` (users: {})",
                            o.energy_entity,
                            self.users
                                .iter()
                                .map(|u| u.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                }
                (None, Some(e)) => check_entity(
                    &format!("outlet `{}` user_entity", o.energy_entity),
                    e,
                    "select",
                )?,
                _ => {
                    return Err(format!(
                        "[usage] outlet `{}`: expected exactly one of `user` or `user_entity`",
                        o.energy_entity
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(), String> {
        let c: UsageConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate(&HashSet::from(["strip1".to_string()]))
    }

    const USERS: &str = "[[users]]\nid = \"alice\"\nname = \"Alice\"\nlimit_kwh_day = 1.5\n";

    #[test]
    fn a_good_config_passes_and_bad_ones_name_the_key() {
        let ok = format!(
            "{USERS}[[outlets]]\nenergy_entity = \"sensor.strip1_outlet1_energy\"\nswitch_entity = \"switch.strip1_outlet1\"\nuser = \"alice\"\n\
             [[outlets]]\nenergy_entity = \"sensor.strip1_outlet2_energy\"\nswitch_entity = \"switch.strip1_outlet2\"\nuser_entity = \"select.strip1_outlet2_user\"\n"
        );
        parse(&ok).unwrap();
        let e = parse(&format!(
            "{USERS}[[outlets]]\nenergy_entity = \"sensor.a\"\nswitch_entity = \"switch.a\"\nuser = \"bob\"\n"
        ))
        .unwrap_err();
        assert!(e.contains("unknown user `bob`"), "{e}");
        let e = parse("[[users]]\nid = \"strip1\"\nname = \"S\"\n").unwrap_err();
        assert!(e.contains("already a device id"), "{e}");
        let e = parse("[[users]]\nid = \"a\"\nname = \"A\"\nlimit_kwh_week = -1\n").unwrap_err();
        assert!(e.contains("limit_kwh_week = -1"), "{e}");
        let e = parse(&format!(
            "{USERS}[[outlets]]\nenergy_entity = \"sensor.a\"\nswitch_entity = \"switch.a\"\n"
        ))
        .unwrap_err();
        assert!(e.contains("exactly one of"), "{e}");
        let e = parse("timezone = \"Mars/Olympus\"\n").unwrap_err();
        assert!(e.contains("timezone `Mars/Olympus`"), "{e}");
    }
}
