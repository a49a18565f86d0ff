//! Topic layout: `<base>/bridge/state`, `<base>/<device>/availability`,
//! `<base>/<device>/<key>/state`, `…/attributes`, `…/set`;
//! discovery under `<prefix>/…`.

/// Base topic and HA discovery prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub base: String,
    pub discovery_prefix: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            base: "hearth".into(),
            discovery_prefix: "homeassistant".into(),
        }
    }
}

impl Topics {
    /// `online`/`offline`, retained; the bridge's last will.
    pub fn bridge_state(&self) -> String {
        format!("{}/bridge/state", self.base)
    }
    pub fn availability(&self, device: &str) -> String {
        format!("{}/{device}/availability", self.base)
    }
    pub fn state(&self, device: &str, key: &str) -> String {
        format!("{}/{device}/{key}/state", self.base)
    }
    pub fn attributes(&self, device: &str, key: &str) -> String {
        format!("{}/{device}/{key}/attributes", self.base)
    }
    pub fn command(&self, device: &str, key: &str) -> String {
        format!("{}/{device}/{key}/set", self.base)
    }
    /// Filter matching every command topic.
    pub fn command_filter(&self) -> String {
        format!("{}/+/+/set", self.base)
    }
    /// (device, key) of a command topic.
    pub fn parse_command<'a>(&self, topic: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = topic.strip_prefix(self.base.as_str())?.strip_prefix('/')?;
        let rest = rest.strip_suffix("/set")?;
        let (device, key) = rest.split_once('/')?;
        (!key.contains('/')).then_some((device, key))
    }
    /// HA's birth/will topic.
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.discovery_prefix)
    }
    pub fn device_config(&self, device: &str) -> String {
        format!("{}/device/{device}/config", self.discovery_prefix)
    }
    pub fn entity_config(&self, component: &str, device: &str, key: &str) -> String {
        format!(
            "{}/{component}/{device}/{key}/config",
            self.discovery_prefix
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_topics_parse() {
        let t = Topics::default();
        assert_eq!(
            t.parse_command("hearth/server-room-ac/climate/set"),
            Some(("server-room-ac", "climate"))
        );
        assert_eq!(t.parse_command("hearth/a/b/c/set"), None);
        assert_eq!(t.parse_command("other/a/b/set"), None);
        assert_eq!(t.command("d", "k"), "hearth/d/k/set");
    }
}
