//! `[[shelly]]`: one Gen2+ plug (Plus Plug S and kin).

use super::limits;
use serde::Deserialize;

/// `[[shelly]]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShellyConfig {
    pub id: String,
    pub name: String,
    /// `http://<address>` of the plug.
    pub url: String,
    /// s between `Switch.GetStatus` polls; with `mqtt_prefix`, the longest
    /// push silence before the driver polls.
    #[serde(default = "default_poll")]
    pub poll_interval_s: f64,
    /// Switch component id (0 on single-relay plugs).
    #[serde(default)]
    pub switch_id: u32,
    /// s the relay must stay off before it may switch on again (safety
    /// envelope; set it when the plug feeds a compressor).
    #[serde(default)]
    pub min_off_s: Option<f64>,
    /// The device's MQTT topic prefix (Settings → MQTT, by default its id,
    /// `shellyplusplugs-<mac>`): with it the driver listens to
    /// `<prefix>/events/rpc`, `<prefix>/status/switch:<n>` and
    /// `<prefix>/online` on Hearth's broker, and HTTP polling becomes the
    /// fallback.
    #[serde(default)]
    pub mqtt_prefix: Option<String>,
    /// W above which the device itself switches the relay off
    /// (`overpower`); written with `Switch.SetConfig` at start.
    #[serde(default)]
    pub power_limit_w: Option<f64>,
    /// A above which the device itself switches the relay off
    /// (`overcurrent`); written with `Switch.SetConfig` at start.
    #[serde(default)]
    pub current_limit_a: Option<f64>,
}

fn default_poll() -> f64 {
    5.0
}

impl ShellyConfig {
    /// Checks units and ranges; the message names the plug and the key.
    pub fn validate(&self) -> Result<(), String> {
        let id = &self.id;
        if !(self.poll_interval_s.is_finite() && (0.1..=86_400.0).contains(&self.poll_interval_s)) {
            return Err(format!(
                "shelly `{id}`: poll_interval_s must be between 0.1 and 86400 s"
            ));
        }
        if let Some(m) = self.min_off_s
            && !(m.is_finite() && (0.0..=3600.0).contains(&m))
        {
            return Err(format!(
                "shelly `{id}`: min_off_s must be between 0 and 3600 s"
            ));
        }
        if !self.url.starts_with("http://") {
            return Err(format!(
                "shelly `{id}`: url must start with http:// (got `{}`)",
                self.url
            ));
        }
        if let Some(p) = &self.mqtt_prefix
            && (p.is_empty() || p.len() > 128 || p.contains(['+', '#', '\0']) || p.ends_with('/'))
        {
            return Err(format!(
                "shelly `{id}`: mqtt_prefix `{p}` must be a topic prefix without wildcards or a trailing / (e.g. shellyplusplugs-a8032ab1c2d3)"
            ));
        }
        limits::validate(id, self.power_limit_w, self.current_limit_a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ShellyConfig {
        ShellyConfig {
            id: "ac".into(),
            name: "AC".into(),
            url: "http://127.0.0.1:1".into(),
            poll_interval_s: 5.0,
            switch_id: 0,
            min_off_s: None,
            mqtt_prefix: Some("shellyplusplugs-a8032ab1c2d3".into()),
            power_limit_w: None,
            current_limit_a: None,
        }
    }

    #[test]
    fn prefixes_with_wildcards_are_refused() {
        assert_eq!(cfg().validate(), Ok(()));
        for bad in ["", "a/#", "a/+/b", "a/"] {
            let c = ShellyConfig {
                mqtt_prefix: Some(bad.into()),
                ..cfg()
            };
            let e = c.validate().unwrap_err();
            assert!(e.starts_with("shelly `ac`: mqtt_prefix"), "{e}");
        }
    }
}
