//! `[[select]]` and `[[number]]`: Hearth-owned helpers, like HA's
//! `input_select` and `input_number` (their keys: `options`, `initial`,
//! `icon`; `min`, `max`, `step`, `mode`, `unit_of_measurement`), exposed
//! as HA's MQTT `select` and `number`.

use serde::Deserialize;

/// HA's limit on a state string, so on an option.
pub const MAX_OPTION_CHARS: usize = 255;

/// `[[select]]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SelectConfig {
    /// `[a-z0-9_-]+`; the entity is `select.<id>` (`-` → `_`).
    pub id: String,
    pub name: String,
    /// Non-empty, unique, each at most 255 characters.
    pub options: Vec<String>,
    /// The state until someone selects another (a saved state wins);
    /// default: the first option.
    pub initial: Option<String>,
    /// HA's `icon`, e.g. `mdi:account`.
    pub icon: Option<String>,
}

/// HA's number `mode`: how the frontend shows it.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum NumberMode {
    #[default]
    Auto,
    Box,
    Slider,
}

impl NumberMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NumberMode::Auto => "auto",
            NumberMode::Box => "box",
            NumberMode::Slider => "slider",
        }
    }
}

/// `[[number]]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NumberConfig {
    /// `[a-z0-9_-]+`; the entity is `number.<id>` (`-` → `_`).
    pub id: String,
    pub name: String,
    /// Bounds, inclusive, in `unit_of_measurement`.
    pub min: f64,
    pub max: f64,
    /// > 0; accepted values are rounded to `min + n·step`. Default 1 (HA's).
    #[serde(default = "default_step")]
    pub step: f64,
    pub unit_of_measurement: Option<String>,
    #[serde(default)]
    pub mode: NumberMode,
    /// The value until someone sets another (a saved value wins);
    /// default: `min`.
    pub initial: Option<f64>,
    pub icon: Option<String>,
}

fn default_step() -> f64 {
    1.0
}

impl SelectConfig {
    /// The initial option (checked by [`validate`]).
    pub fn initial_option(&self) -> &str {
        self.initial
            .as_deref()
            .or(self.options.first().map(String::as_str))
            .unwrap_or_default()
    }
}

impl NumberConfig {
    pub fn initial_value(&self) -> f64 {
        self.initial.unwrap_or(self.min)
    }
}

/// `select.kitchen_mode` for id `kitchen-mode`.
pub fn entity_id(component: &str, id: &str) -> String {
    format!("{component}.{}", id.replace('-', "_"))
}

/// Checks what serde cannot; errors name the section, the id and the key.
pub fn validate(selects: &[SelectConfig], numbers: &[NumberConfig]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    let ids = selects
        .iter()
        .map(|s| ("select", &s.id))
        .chain(numbers.iter().map(|n| ("number", &n.id)));
    for (section, id) in ids {
        hearth_node_core::validate_node_id(id)
            .map_err(|e| format!("[[{section}]] id `{id}`: {e}"))?;
        if !seen.insert(entity_id(section, id)) {
            return Err(format!(
                "[[{section}]] id `{id}`: entity {} is declared twice",
                entity_id(section, id)
            ));
        }
    }
    for s in selects {
        let at = |key: &str| format!("[[select]] `{}`: {key}", s.id);
        if s.options.is_empty() {
            return Err(format!("{} must list at least one option", at("options")));
        }
        let mut unique = std::collections::HashSet::new();
        for o in &s.options {
            if o.is_empty() || o.chars().count() > MAX_OPTION_CHARS {
                return Err(format!(
                    "{} `{o}` must be 1 to {MAX_OPTION_CHARS} characters",
                    at("options")
                ));
            }
            if !unique.insert(o) {
                return Err(format!("{} `{o}` is listed twice", at("options")));
            }
        }
        if let Some(i) = &s.initial
            && !s.options.contains(i)
        {
            return Err(format!(
                "{} `{i}` is not one of the options ({})",
                at("initial"),
                s.options.join(", ")
            ));
        }
    }
    for n in numbers {
        let at = |key: &str| format!("[[number]] `{}`: {key}", n.id);
        for (key, v) in [("min", n.min), ("max", n.max), ("step", n.step)] {
            if !v.is_finite() {
                return Err(format!("{} must be a finite number (got {v})", at(key)));
            }
        }
        if n.min >= n.max {
            return Err(format!(
                "{} must be above min (got min {}, max {})",
                at("max"),
                n.min,
                n.max
            ));
        }
        if n.step <= 0.0 || n.step > n.max - n.min {
            return Err(format!(
                "{} must be > 0 and at most max - min (got {})",
                at("step"),
                n.step
            ));
        }
        if let Some(i) = n.initial
            && !(i.is_finite() && (n.min..=n.max).contains(&i))
        {
            return Err(format!(
                "{} must lie within min..max ({} to {}, got {i})",
                at("initial"),
                n.min,
                n.max
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Helpers {
        #[serde(default)]
        select: Vec<SelectConfig>,
        #[serde(default)]
        number: Vec<NumberConfig>,
    }

    fn check(toml_text: &str) -> Result<(), String> {
        let h: Helpers = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        validate(&h.select, &h.number)
    }

    const SELECT: &str = "[[select]]\nid = \"outlet-3\"\nname = \"Outlet 3 user\"\n";
    const NUMBER: &str = "[[number]]\nid = \"limit\"\nname = \"Daily limit\"\n";

    #[test]
    fn good_helpers_pass_and_default_as_ha_does() {
        let text = format!(
            "{SELECT}options = [\"nobody\", \"ana\"]\nicon = \"mdi:account\"\n\
             {NUMBER}min = 0\nmax = 10\nstep = 0.5\nunit_of_measurement = \"kWh\"\nmode = \"box\"\n"
        );
        let h: Helpers = toml::from_str(&text).unwrap();
        validate(&h.select, &h.number).unwrap();
        assert_eq!(h.select[0].initial_option(), "nobody");
        assert_eq!(h.number[0].initial_value(), 0.0);
        assert_eq!(h.number[0].mode, NumberMode::Box);
        assert_eq!(entity_id("select", &h.select[0].id), "select.outlet_3");
    }

    #[test]
    fn errors_name_section_id_and_key() {
        for (text, words) in [
            (
                format!("{SELECT}options = []\n"),
                "[[select]] `outlet-3`: options must list at least one option",
            ),
            (
                format!("{SELECT}options = [\"a\", \"a\"]\n"),
                "[[select]] `outlet-3`: options `a` is listed twice",
            ),
            (
                format!("{SELECT}options = [\"\"]\n"),
                "[[select]] `outlet-3`: options `` must be 1 to 255",
            ),
            (
                format!("{SELECT}options = [\"{}\"]\n", "x".repeat(256)),
                "must be 1 to 255 characters",
            ),
            (
                format!("{SELECT}options = [\"a\"]\ninitial = \"b\"\n"),
                "[[select]] `outlet-3`: initial `b` is not one of the options (a)",
            ),
            (
                format!("{NUMBER}min = 5\nmax = 5\n"),
                "[[number]] `limit`: max must be above min",
            ),
            (
                format!("{NUMBER}min = 0\nmax = 5\nstep = 0\n"),
                "[[number]] `limit`: step must be > 0",
            ),
            (
                format!("{NUMBER}min = 0\nmax = 5\nstep = -1\n"),
                "[[number]] `limit`: step must be > 0",
            ),
            (
                format!("{NUMBER}min = 0\nmax = nan\n"),
                "[[number]] `limit`: max must be a finite number",
            ),
            (
                format!("{NUMBER}min = 0\nmax = 5\ninitial = 6\n"),
                "[[number]] `limit`: initial must lie within min..max",
            ),
            (
                format!("{NUMBER}min = 0\nmax = 5\nmode = \"dial\"\n"),
                "unknown variant `dial`",
            ),
            (
                "[[number]]\nid = \"Bad Id\"\nname = \"x\"\nmin = 0\nmax = 1\n".into(),
                "[[number]] id `Bad Id`",
            ),
            (
                format!("{NUMBER}min = 0\nmax = 1\n{NUMBER}min = 0\nmax = 1\n"),
                "entity number.limit is declared twice",
            ),
        ] {
            let e = check(&text).unwrap_err();
            assert!(e.contains(words), "{text}\n→ {e}");
        }
        // A select and a number may share an id: their entity ids differ.
        check(&format!("[[select]]\nid = \"limit\"\nname = \"x\"\noptions = [\"a\"]\n{NUMBER}min = 0\nmax = 1\n")).unwrap();
    }
}
