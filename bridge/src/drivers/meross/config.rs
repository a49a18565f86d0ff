//! `[[meross]]`: one Meross metered plug (MSS310 family) on the LAN, read
//! and switched over its local HTTP API. The section's keys and their
//! checks live here; `config.rs` only assembles the sections and calls
//! [`MerossConfig::validate`].
//!
//! ```toml
//! [[meross]]
//! id = "desk"
//! name = "Desk plug"
//! url = "http://192.168.1.60"          # the plug's address; http:// only (the API is plain HTTP)
//! key = { file = "/run/secrets/meross" } # the device key (the cloud account's key), or inline / { env = … }
//! channel = 0                          # relay channel (0 on single plugs)
//! poll_interval_s = 10                 # s between polls (3 requests each)
//! min_off_s = 180                      # optional: s off before it may switch on again
//! ```

use crate::secret::Secret;
use serde::Deserialize;

/// `[[meross]]` in the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MerossConfig {
    /// Device id, `[a-z0-9_-]+`.
    pub id: String,
    pub name: String,
    /// `http://<address>[:port]` of the plug.
    pub url: String,
    /// The key every request is signed with (the device learnt it when it
    /// was paired with the Meross app; an unpaired plug uses ""). Required:
    /// optional in serde only so that its absence is named.
    #[serde(default)]
    pub key: Option<Secret>,
    /// The relay channel switched and metered (0 on single plugs).
    #[serde(default)]
    pub channel: u32,
    /// s between polls.
    #[serde(default = "default_poll")]
    pub poll_interval_s: f64,
    /// s the relay must stay off before it may switch on again (safety
    /// envelope; set it when the plug feeds a compressor).
    #[serde(default)]
    pub min_off_s: Option<f64>,
}

fn default_poll() -> f64 {
    10.0
}

impl MerossConfig {
    /// The URL without a trailing `/`.
    pub fn base_url(&self) -> String {
        self.url.trim_end_matches('/').to_string()
    }

    /// The key requests are signed with.
    pub fn key(&self) -> Secret {
        self.key.clone().unwrap_or_else(|| Secret::new(""))
    }

    /// Checks what serde cannot: key, url, channel and poll interval.
    pub fn validate(&self) -> Result<(), String> {
        let id = &self.id;
        if self.key.is_none() {
            return Err(format!(
                "meross `{id}`: `key` is missing (the device key the plug checks every request's sign with: \"…\", {{ file = \"…\" }} or {{ env = \"…\" }}; \"\" for a plug never paired)"
            ));
        }
        let Some(rest) = self.url.strip_prefix("http://") else {
            return Err(format!(
                "meross `{id}`: url must start with http:// (got `{}`; the plug's local API is plain HTTP)",
                self.url
            ));
        };
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains(['/', ' ', '?', '#', '@']) {
            return Err(format!(
                "meross `{id}`: url `{}` must be http://<address>[:port] with no path",
                self.url
            ));
        }
        if self.channel > 15 {
            return Err(format!(
                "meross `{id}`: channel must be 0 to 15 (got {})",
                self.channel
            ));
        }
        if !(self.poll_interval_s.is_finite() && (0.1..=86_400.0).contains(&self.poll_interval_s)) {
            return Err(format!(
                "meross `{id}`: poll_interval_s must be between 0.1 and 86400 s (got {})",
                self.poll_interval_s
            ));
        }
        if let Some(m) = self.min_off_s
            && !(m.is_finite() && (0.0..=3600.0).contains(&m))
        {
            return Err(format!(
                "meross `{id}`: min_off_s must be between 0 and 3600 s (got {m})"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MerossConfig, String> {
        let c: MerossConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map(|_| c)
    }

    #[test]
    fn a_good_section_and_bad_ones_name_the_key() {
        let c =
            parse("id = \"p\"\nname = \"P\"\nurl = \"http://10.0.0.9/\"\nkey = \"k\"\n").unwrap();
        assert_eq!((c.channel, c.poll_interval_s), (0, 10.0));
        assert_eq!(c.base_url(), "http://10.0.0.9");
        assert_eq!(c.key().expose(), "k");
        assert_eq!(format!("{c:?}").matches("***").count(), 1, "{c:?}");
        for (text, want) in [
            (
                "url = \"https://10.0.0.9\"\nkey = \"k\"\n",
                "url must start with http://",
            ),
            (
                "url = \"http://10.0.0.9/config\"\nkey = \"k\"\n",
                "with no path",
            ),
            (
                "url = \"http://a\"\nkey = \"k\"\nchannel = 16\n",
                "channel must be 0 to 15",
            ),
            (
                "url = \"http://a\"\nkey = \"k\"\npoll_interval_s = 0.0\n",
                "poll_interval_s must be between",
            ),
            ("url = \"http://a\"\n", "`key` is missing"),
            (
                "url = \"http://a\"\nkey = \"k\"\nmin_off_s = -1.0\n",
                "min_off_s must be between 0 and 3600",
            ),
            (
                "url = \"http://a\"\nkey = \"k\"\nkee = 1\n",
                "unknown field `kee`",
            ),
        ] {
            let e = parse(&format!("id = \"p\"\nname = \"P\"\n{text}")).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
