//! `[[shelly_pro4pm]]`: one Shelly Pro 4PM, reached over HTTP (polled) or
//! over MQTT (pushed). The section's keys and their checks live here;
//! `config.rs` only assembles the sections and calls
//! [`ShellyPro4pmConfig::validate`].

use serde::Deserialize;

/// The Pro 4PM has four relays, `switch:0` … `switch:3`.
pub const OUTLETS: usize = 4;

/// `[[shelly_pro4pm]]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShellyPro4pmConfig {
    /// Device id, `[a-z0-9_-]+`.
    pub id: String,
    pub name: String,
    /// `address[:port]` of the device's HTTP RPC channel (`http://` is
    /// implied); set this or `mqtt_prefix`.
    #[serde(default)]
    pub host: Option<String>,
    /// The device's MQTT topic prefix (Shelly's `mqtt.topic_prefix`,
    /// `shellypro4pm-<mac>` unless changed); set this or `host`.
    #[serde(default)]
    pub mqtt_prefix: Option<String>,
    /// s between polls over HTTP (4 × `Switch.GetStatus`).
    #[serde(default = "default_poll")]
    pub poll_interval_s: f64,
    /// Optional names, outlet 1 (`switch:0`) first; missing ones are
    /// "Outlet <n>".
    #[serde(default)]
    pub outlet_names: Vec<String>,
}

fn default_poll() -> f64 {
    5.0
}

/// How the driver reaches the device.
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    /// `http://<host>`.
    Http(String),
    /// The topic prefix.
    Mqtt(String),
}

impl ShellyPro4pmConfig {
    /// The display name of outlet `n` (1-based; `switch:<n-1>`).
    pub fn outlet_name(&self, n: usize) -> String {
        self.outlet_names
            .get(n - 1)
            .filter(|s| !s.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| format!("Outlet {n}"))
    }

    /// The transport `validate` accepted.
    pub fn transport(&self) -> Transport {
        match (&self.host, &self.mqtt_prefix) {
            (Some(h), _) => Transport::Http(format!("http://{}", h.trim_start_matches("http://"))),
            (None, Some(p)) => Transport::Mqtt(p.clone()),
            (None, None) => Transport::Mqtt(String::new()),
        }
    }

    /// Checks what serde cannot: one transport, names, host and prefix.
    pub fn validate(&self) -> Result<(), String> {
        let id = &self.id;
        match (&self.host, &self.mqtt_prefix) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(format!(
                    "shelly_pro4pm `{id}`: set exactly one of `host` (HTTP) or `mqtt_prefix` (MQTT)"
                ));
            }
            (Some(h), None) => {
                let bare = h.strip_prefix("http://").unwrap_or(h);
                if bare.is_empty() || bare.contains(['/', ' ', '?', '#', '@']) {
                    return Err(format!(
                        "shelly_pro4pm `{id}`: host `{h}` must be an address with an optional :port (e.g. 192.168.1.40)"
                    ));
                }
            }
            (None, Some(p)) => {
                // Wildcards would subscribe to other devices' topics.
                if p.is_empty() || p.contains(['+', '#', '\0']) || p.starts_with('/') {
                    return Err(format!(
                        "shelly_pro4pm `{id}`: mqtt_prefix `{p}` must be a topic without `+`, `#` or a leading `/`"
                    ));
                }
            }
        }
        if !(self.poll_interval_s.is_finite() && (0.1..=86_400.0).contains(&self.poll_interval_s)) {
            return Err(format!(
                "shelly_pro4pm `{id}`: poll_interval_s must be between 0.1 and 86400 s (got {})",
                self.poll_interval_s
            ));
        }
        if self.outlet_names.len() > OUTLETS {
            return Err(format!(
                "shelly_pro4pm `{id}`: {} outlet_names for {OUTLETS} outlets",
                self.outlet_names.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> ShellyPro4pmConfig {
        toml::from_str(&format!("id = \"p4\"\nname = \"Pro\"\n{extra}")).unwrap()
    }

    #[test]
    fn exactly_one_transport_and_sane_names() {
        let c = parse("host = \"192.168.1.40\"\noutlet_names = [\"Lamp\"]");
        c.validate().unwrap();
        assert_eq!(c.transport(), Transport::Http("http://192.168.1.40".into()));
        assert_eq!(c.outlet_name(1), "Lamp");
        assert_eq!(c.outlet_name(4), "Outlet 4");
        let c = parse("mqtt_prefix = \"shellypro4pm-aabbcc\"");
        c.validate().unwrap();
        assert_eq!(c.transport(), Transport::Mqtt("shellypro4pm-aabbcc".into()));
        for (extra, want) in [
            ("", "set exactly one of `host`"),
            (
                "host = \"a\"\nmqtt_prefix = \"b\"",
                "set exactly one of `host`",
            ),
            ("host = \"a/rpc\"", "host `a/rpc` must be an address"),
            ("mqtt_prefix = \"a/#\"", "mqtt_prefix `a/#` must be a topic"),
            (
                "host = \"a\"\npoll_interval_s = 0.0",
                "poll_interval_s must be between",
            ),
            (
                "host = \"a\"\noutlet_names = [\"1\",\"2\",\"3\",\"4\",\"5\"]",
                "5 outlet_names for 4 outlets",
            ),
        ] {
            let e = parse(extra).validate().unwrap_err();
            assert!(e.contains(want), "{extra}: {e}");
        }
    }

    #[test]
    fn the_section_is_read_and_checked_by_the_config_file() {
        let text = "[[shelly_pro4pm]]\nid = \"p4\"\nname = \"Desk\"\nhost = \"10.0.0.9\"\n";
        let c = crate::config::Config::from_toml(text, "c.toml").unwrap();
        assert_eq!(c.shelly_pro4pm[0].host.as_deref(), Some("10.0.0.9"));
        let bad = format!("{text}mqtt_prefix = \"x\"\n");
        let e = crate::config::Config::from_toml(&bad, "c.toml").unwrap_err();
        assert!(format!("{e:#}").contains("set exactly one"), "{e:#}");
        let twice = format!("{text}{text}");
        let e = crate::config::Config::from_toml(&twice, "c.toml").unwrap_err();
        assert!(format!("{e:#}").contains("`p4` is used twice"), "{e:#}");
    }
}
