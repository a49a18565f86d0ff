//! `[[tasmota_strip]]`: one Tasmota multi-relay metered strip. The section's
//! keys and their checks live here; `config.rs` only assembles the sections
//! and calls [`TasmotaStripConfig::validate`].

use serde::Deserialize;

/// Tasmota supports up to 32 relays, but metered strips on the market have
/// 2 to 8 outlets and Tasmota's energy driver reports at most 16 channels
/// (`ENERGY_MAX_PHASES` is 8 on most builds); 16 leaves room without
/// inviting a typo like `outlets = 100`.
pub const MAX_OUTLETS: usize = 16;

/// How the strip meters its outlets.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MeterMode {
    /// One meter channel per outlet: `ENERGY` fields are arrays in outlet
    /// order (Tasmota `SetOption129 1` for per-channel energy totals).
    PerOutlet,
    /// One meter for the whole strip: `ENERGY` fields are single numbers;
    /// per-outlet figures are estimated (see
    /// [`ESTIMATE_NOTE`](super::outlets::ESTIMATE_NOTE)).
    Total,
}

/// `[[tasmota_strip]]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TasmotaStripConfig {
    /// Device id, `[a-z0-9_-]+`.
    pub id: String,
    pub name: String,
    /// Tasmota's `%topic%` (the `Topic` command), e.g. `strip1`.
    pub topic: String,
    /// Number of relays, 1 to [`MAX_OUTLETS`]; relay `n` is `POWER<n>`.
    pub outlets: usize,
    /// Optional names, outlet 1 first; missing ones are "Outlet <n>".
    #[serde(default)]
    pub outlet_names: Vec<String>,
    pub meter: MeterMode,
}

impl TasmotaStripConfig {
    /// The display name of outlet `n` (1-based).
    pub fn outlet_name(&self, n: usize) -> String {
        self.outlet_names
            .get(n - 1)
            .filter(|s| !s.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| format!("Outlet {n}"))
    }

    /// Checks what serde cannot: counts, names and the topic.
    pub fn validate(&self) -> Result<(), String> {
        let id = &self.id;
        if !(1..=MAX_OUTLETS).contains(&self.outlets) {
            return Err(format!(
                "tasmota_strip `{id}`: outlets must be 1 to {MAX_OUTLETS} (got {})",
                self.outlets
            ));
        }
        if self.outlet_names.len() > self.outlets {
            return Err(format!(
                "tasmota_strip `{id}`: {} outlet_names for {} outlets",
                self.outlet_names.len(),
                self.outlets
            ));
        }
        // The topic is one level of `cmnd/<topic>/POWER<n>`: wildcards or a
        // `/` would subscribe to, or command, other devices.
        if self.topic.is_empty() || self.topic.contains(['/', '+', '#', '\0']) {
            return Err(format!(
                "tasmota_strip `{id}`: topic `{}` must be one MQTT topic level (no `/`, `+`, `#`)",
                self.topic
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> TasmotaStripConfig {
        toml::from_str(&format!(
            "id = \"strip1\"\nname = \"Strip\"\ntopic = \"strip1\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn outlet_names_default_and_counts_are_checked() {
        let c = parse("outlets = 3\nmeter = \"per_outlet\"\noutlet_names = [\"Lamp\"]");
        assert_eq!(c.meter, MeterMode::PerOutlet);
        assert_eq!(c.outlet_name(1), "Lamp");
        assert_eq!(c.outlet_name(3), "Outlet 3");
        c.validate().unwrap();
        let e = parse("outlets = 0\nmeter = \"total\"")
            .validate()
            .unwrap_err();
        assert!(e.contains("outlets must be 1 to 16 (got 0)"), "{e}");
        let e = parse("outlets = 1\nmeter = \"total\"\noutlet_names = [\"a\", \"b\"]")
            .validate()
            .unwrap_err();
        assert!(e.contains("2 outlet_names for 1 outlets"), "{e}");
        let mut c = parse("outlets = 2\nmeter = \"total\"");
        c.topic = "a/#".into();
        assert!(c.validate().unwrap_err().contains("one MQTT topic level"));
        let e = toml::from_str::<TasmotaStripConfig>(
            "id = \"s\"\nname = \"S\"\ntopic = \"s\"\noutlets = 2\nmeter = \"sum\"",
        )
        .unwrap_err();
        assert!(e.to_string().contains("per_outlet"), "{e}");
    }

    #[test]
    fn the_section_is_read_and_checked_by_the_config_file() {
        let text = "[[tasmota_strip]]\nid = \"strip1\"\nname = \"Desk\"\ntopic = \"strip1\"\noutlets = 4\nmeter = \"total\"\n";
        let c = crate::config::Config::from_toml(text, "c.toml").unwrap();
        assert_eq!(c.tasmota_strip[0].outlets, 4);
        let bad = text.replace("outlets = 4", "outlets = 17");
        let e = crate::config::Config::from_toml(&bad, "c.toml").unwrap_err();
        assert!(
            format!("{e:#}").contains("outlets must be 1 to 16 (got 17)"),
            "{e:#}"
        );
        let twice = format!("{text}{text}");
        let e = crate::config::Config::from_toml(&twice, "c.toml").unwrap_err();
        assert!(format!("{e:#}").contains("`strip1` is used twice"), "{e:#}");
    }
}
