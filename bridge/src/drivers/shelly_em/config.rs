//! `[[shelly_em]]`: one Shelly Pro 3EM or Pro EM energy meter, polled over
//! HTTP RPC. The section's keys and their checks live here; `config.rs`
//! only assembles the sections and calls [`ShellyEmConfig::validate`].
//!
//! ```toml
//! [[shelly_em]]
//! id = "meter"
//! name = "Main meter"
//! host = "192.168.1.50"            # address[:port]; http:// implied
//! model = "pro3em"                 # pro3em (triphase: EM/EMData) | proem (EM1/EM1Data)
//! poll_interval_s = 5
//! [[shelly_em.channels]]
//! channel = 0                      # em:0 / emdata:0 (pro3em), em1:<n> / em1data:<n> (proem)
//! role = "grid"                    # grid | production
//! key = "grid"                     # entity keys <key>_power…; default: grid / pv
//! entity_prefix = "grid"           # optional: sensor.grid_power, sensor.grid_import_energy…
//! invert = false                   # a clamp mounted the other way round
//! name = "Grid"
//! ```

use serde::Deserialize;
use std::collections::HashSet;

/// Which meter, hence which RPC components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// Shelly Pro 3EM in its default triphase profile: one `em:0` (phases
    /// a, b, c and totals) and one `emdata:0`.
    #[default]
    Pro3em,
    /// Shelly Pro EM (`em1:0`, `em1:1`), or a Pro 3EM in its monophase
    /// profile (`em1:0` … `em1:2`): one channel per clamp.
    Proem,
}

impl Model {
    /// Channel ids the model has.
    pub fn channels(self) -> usize {
        match self {
            Model::Pro3em => 1,
            // The Pro 3EM's monophase profile has three EM1 channels.
            Model::Proem => 3,
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Model::Pro3em => "Pro 3EM",
            Model::Proem => "Pro EM",
        }
    }
}

/// What a channel measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The grid connection: power + import / − export, the import counter
    /// (`total_act`, `total_act_energy`) and the export counter (`_ret`).
    Grid,
    /// A clamp on the PV line: production power and the production counter.
    Production,
}

impl Role {
    pub fn default_key(self) -> &'static str {
        match self {
            Role::Grid => "grid",
            Role::Production => "pv",
        }
    }
}

/// One `[[shelly_em.channels]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// The component id: `em:<channel>` (pro3em) or `em1:<channel>` (proem).
    #[serde(default)]
    pub channel: u32,
    pub role: Role,
    /// Key of the channel's entities within the device (`<key>_power`);
    /// default `grid` or `pv` by role.
    #[serde(default)]
    pub key: Option<String>,
    /// When set, the entity ids are `sensor.<entity_prefix>_<suffix>`
    /// (e.g. `sensor.grid_power`, `sensor.pv_energy`) instead of
    /// `sensor.<device id>_<key>_<suffix>`.
    #[serde(default)]
    pub entity_prefix: Option<String>,
    /// The clamp reads the other way round: power negated, import and
    /// export counters swapped (a PV clamp often reads production as
    /// returned energy).
    #[serde(default)]
    pub invert: bool,
    /// Display name; default `Grid` / `Solar production`.
    #[serde(default)]
    pub name: Option<String>,
}

impl ChannelConfig {
    pub fn key(&self) -> String {
        self.key
            .clone()
            .unwrap_or_else(|| self.role.default_key().to_string())
    }

    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            match self.role {
                Role::Grid => "Grid",
                Role::Production => "Solar production",
            }
            .to_string()
        })
    }
}

/// `[[shelly_em]]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShellyEmConfig {
    /// Device id, `[a-z0-9_-]+`.
    pub id: String,
    pub name: String,
    /// `address[:port]` of the device's HTTP RPC channel.
    pub host: String,
    #[serde(default)]
    pub model: Model,
    /// s between polls (2 RPCs per channel).
    #[serde(default = "default_poll")]
    pub poll_interval_s: f64,
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
}

fn default_poll() -> f64 {
    5.0
}

fn valid_key(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl ShellyEmConfig {
    /// `http://<host>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host.trim_start_matches("http://"))
    }

    /// Checks what serde cannot: host, poll interval, channels.
    pub fn validate(&self) -> Result<(), String> {
        let id = &self.id;
        let bare = self.host.strip_prefix("http://").unwrap_or(&self.host);
        if bare.is_empty() || bare.contains(['/', ' ', '?', '#', '@']) {
            return Err(format!(
                "shelly_em `{id}`: host `{}` must be an address with an optional :port (e.g. 192.168.1.50)",
                self.host
            ));
        }
        if !(self.poll_interval_s.is_finite() && (0.1..=86_400.0).contains(&self.poll_interval_s)) {
            return Err(format!(
                "shelly_em `{id}`: poll_interval_s must be between 0.1 and 86400 s (got {})",
                self.poll_interval_s
            ));
        }
        if self.channels.is_empty() {
            return Err(format!(
                "shelly_em `{id}`: no [[shelly_em.channels]] (each needs a `role`: grid or production)"
            ));
        }
        let (mut channels, mut keys, mut prefixes) =
            (HashSet::new(), HashSet::new(), HashSet::new());
        for c in &self.channels {
            if c.channel as usize >= self.model.channels() {
                return Err(format!(
                    "shelly_em `{id}`: channel {} does not exist on a {} (channels 0 to {})",
                    c.channel,
                    self.model.display(),
                    self.model.channels() - 1
                ));
            }
            if !channels.insert(c.channel) {
                return Err(format!(
                    "shelly_em `{id}`: channel {} is listed twice",
                    c.channel
                ));
            }
            let key = c.key();
            if !valid_key(&key) || !keys.insert(key.clone()) {
                return Err(format!(
                    "shelly_em `{id}`: channel {} key `{key}` must be lowercase letters, digits and _, and unique in the device",
                    c.channel
                ));
            }
            if let Some(p) = &c.entity_prefix
                && (!valid_key(p) || !prefixes.insert(p.clone()))
            {
                return Err(format!(
                    "shelly_em `{id}`: channel {} entity_prefix `{p}` must be lowercase letters, digits and _, and unique",
                    c.channel
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ShellyEmConfig, String> {
        let c: ShellyEmConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map(|_| c)
    }

    const HEAD: &str = "id = \"meter\"\nname = \"Meter\"\nhost = \"10.0.0.5\"\n";

    #[test]
    fn a_good_section_and_bad_ones_name_the_key() {
        let c = parse(&format!(
            "{HEAD}model = \"proem\"\n[[channels]]\nchannel = 0\nrole = \"grid\"\nentity_prefix = \"grid\"\n\
             [[channels]]\nchannel = 1\nrole = \"production\"\ninvert = true\n"
        ))
        .unwrap();
        assert_eq!(c.url(), "http://10.0.0.5");
        assert_eq!(c.channels[1].key(), "pv");
        assert_eq!(c.channels[1].display_name(), "Solar production");
        assert_eq!(c.model, Model::Proem);
        for (extra, want) in [
            ("", "no [[shelly_em.channels]]"),
            (
                "[[channels]]\nchannel = 1\nrole = \"grid\"\n",
                "channel 1 does not exist on a Pro 3EM",
            ),
            (
                "model = \"proem\"\n[[channels]]\nrole = \"grid\"\n[[channels]]\nrole = \"production\"\n",
                "channel 0 is listed twice",
            ),
            (
                "model = \"proem\"\n[[channels]]\nrole = \"grid\"\n[[channels]]\nchannel = 1\nrole = \"grid\"\n",
                "key `grid` must be",
            ),
            (
                "poll_interval_s = 0.0\n[[channels]]\nrole = \"grid\"\n",
                "poll_interval_s must be between",
            ),
        ] {
            let e = parse(&format!("{HEAD}{extra}")).unwrap_err();
            assert!(e.contains(want), "{extra}: {e}");
        }
        let e =
            parse("id = \"m\"\nname = \"M\"\nhost = \"a/rpc\"\n[[channels]]\nrole = \"grid\"\n")
                .unwrap_err();
        assert!(e.contains("host `a/rpc`"), "{e}");
        let e = parse(&format!("{HEAD}[[channels]]\nrole = \"battery\"\n")).unwrap_err();
        assert!(e.contains("unknown variant `battery`"), "{e}");
    }
}
