//! `[[shelly_gen1]]`: one Shelly Gen1 device (Plug S, 1PM, EM), read over
//! HTTP and, with `mqtt_id`, pushed over its MQTT API. The section's keys
//! and their checks live here; `config.rs` only assembles the sections and
//! calls [`ShellyGen1Config::validate`].
//!
//! ```toml
//! [[shelly_gen1]]
//! id = "desk_plug"
//! name = "Desk plug"
//! url = "http://192.168.1.41"
//! mqtt_id = "shellyplug-s-C18B12"   # optional: push over MQTT
//! poll_interval_s = 60               # HTTP fallback when push is silent
//! min_off_s = 180                    # optional: anti-short-cycle
//! ```

use serde::Deserialize;

/// `[[shelly_gen1]]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShellyGen1Config {
    /// Device id, `[a-z0-9_-]+`.
    pub id: String,
    pub name: String,
    /// `http://<address>[:port]` of the device's HTTP API.
    pub url: String,
    /// The device's MQTT id (topics `shellies/<mqtt_id>/…`; Shelly's
    /// default is `<model>-<last 6 MAC digits>`, e.g. `shellyplug-s-C18B12`).
    /// Set: push is primary and HTTP polling is the fallback; commands go
    /// over MQTT. Unset: HTTP only.
    #[serde(default)]
    pub mqtt_id: Option<String>,
    /// s between HTTP polls of `/status`; with `mqtt_id`, a poll happens
    /// only once push has been silent this long.
    #[serde(default = "default_poll")]
    pub poll_interval_s: f64,
    /// s a relay must stay off before it may switch on again (safety
    /// envelope; set it when the plug feeds a compressor).
    #[serde(default)]
    pub min_off_s: Option<f64>,
}

fn default_poll() -> f64 {
    30.0
}

impl ShellyGen1Config {
    /// The url without a trailing `/`.
    pub fn base_url(&self) -> String {
        self.url.trim_end_matches('/').to_string()
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        let id = &self.id;
        let bare = self.url.strip_prefix("http://").ok_or_else(|| {
            format!(
                "shelly_gen1 `{id}`: url `{}` must start with http:// (Gen1 devices serve plain HTTP)",
                self.url
            )
        })?;
        let bare = bare.trim_end_matches('/');
        if bare.is_empty() || bare.contains(['/', ' ', '?', '#', '@']) {
            return Err(format!(
                "shelly_gen1 `{id}`: url `{}` must be http://<address>[:port] (e.g. http://192.168.1.41)",
                self.url
            ));
        }
        if let Some(m) = &self.mqtt_id
            && (m.is_empty() || m.contains(['+', '#', '/', '\0', ' ']))
        {
            return Err(format!(
                "shelly_gen1 `{id}`: mqtt_id `{m}` must be one topic level without `+`, `#`, `/` or spaces"
            ));
        }
        if !(self.poll_interval_s.is_finite() && (0.1..=86_400.0).contains(&self.poll_interval_s)) {
            return Err(format!(
                "shelly_gen1 `{id}`: poll_interval_s must be between 0.1 and 86400 s (got {})",
                self.poll_interval_s
            ));
        }
        if let Some(m) = self.min_off_s
            && !(m.is_finite() && (0.0..=3600.0).contains(&m))
        {
            return Err(format!(
                "shelly_gen1 `{id}`: min_off_s must be between 0 and 3600 s (got {m})"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> ShellyGen1Config {
        toml::from_str(&format!("id = \"p\"\nname = \"Plug\"\n{extra}")).unwrap()
    }

    #[test]
    fn urls_ids_and_intervals_are_checked() {
        let c = parse("url = \"http://192.168.1.41/\"\nmqtt_id = \"shellyplug-s-C18B12\"");
        c.validate().unwrap();
        assert_eq!(c.base_url(), "http://192.168.1.41");
        assert_eq!(c.poll_interval_s, 30.0);
        for (extra, want) in [
            ("url = \"https://a\"", "must start with http://"),
            (
                "url = \"http://a/status\"",
                "must be http://<address>[:port]",
            ),
            (
                "url = \"http://a\"\nmqtt_id = \"shellies/#\"",
                "mqtt_id `shellies/#`",
            ),
            (
                "url = \"http://a\"\npoll_interval_s = 0.0",
                "poll_interval_s must be",
            ),
            ("url = \"http://a\"\nmin_off_s = -1.0", "min_off_s must be"),
        ] {
            let e = parse(extra).validate().unwrap_err();
            assert!(e.contains(want), "{extra}: {e}");
        }
    }
}
