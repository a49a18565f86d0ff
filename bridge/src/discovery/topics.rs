//! Topic layout: `<base>/bridge/state`, `<base>/<device>/availability`,
//! `<base>/<device>/<key>/state`, `…/attributes`, `…/set`;
//! discovery under `<prefix>/…`.
//!
//! Several bridges on one broker: a bridge whose base topic is not the
//! default `hearth` prefixes its discovery node ids (`<base>_<device>`)
//! and its HA ids (`hearth_<base>_…`, see [`Topics::id_prefix`]), so two
//! bridges never share a config topic or a `unique_id`, not even for their
//! own `bridge` device. The default base keeps the ids of earlier releases
//! (HA would otherwise see every entity as new).

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
        format!(
            "{}/device/{}/config",
            self.discovery_prefix,
            self.discovery_node(device)
        )
    }
    pub fn entity_config(&self, component: &str, device: &str, key: &str) -> String {
        format!(
            "{}/{component}/{}/{key}/config",
            self.discovery_prefix,
            self.discovery_node(device)
        )
    }

    /// The base topic as it may appear in an HA node id or `unique_id`
    /// (`[a-zA-Z0-9_-]`); `None` for the default base `hearth`.
    fn instance(&self) -> Option<String> {
        (self.base != "hearth").then(|| {
            self.base
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        })
    }

    /// The node id of `device` in discovery config topics: the device id,
    /// `<base>_<device>` for a bridge with another base topic.
    pub fn discovery_node(&self, device: &str) -> String {
        match self.instance() {
            Some(i) => format!("{i}_{device}"),
            None => device.to_string(),
        }
    }

    /// The device id in a discovery node id ([`Self::discovery_node`]).
    pub fn device_of_node<'a>(&self, node: &'a str) -> Option<&'a str> {
        match self.instance() {
            Some(i) => node.strip_prefix(i.as_str())?.strip_prefix('_'),
            None => Some(node),
        }
    }

    /// Prefix of this bridge's `unique_id`s and device identifiers:
    /// `hearth`, or `hearth_<base>` with another base topic.
    pub fn id_prefix(&self) -> String {
        match self.instance() {
            Some(i) => format!("{}_{i}", super::payload::ID_PREFIX),
            None => super::payload::ID_PREFIX.to_string(),
        }
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

    #[test]
    fn another_base_topic_namespaces_discovery_and_ids() {
        let default = Topics::default();
        assert_eq!(
            default.device_config("bridge"),
            "homeassistant/device/bridge/config"
        );
        assert_eq!(default.id_prefix(), "hearth");
        let t = Topics {
            base: "site/b".into(),
            ..Topics::default()
        };
        assert_eq!(
            t.device_config("bridge"),
            "homeassistant/device/site_b_bridge/config"
        );
        assert_eq!(
            t.entity_config("sensor", "node-1", "uptime"),
            "homeassistant/sensor/site_b_node-1/uptime/config"
        );
        assert_eq!(t.id_prefix(), "hearth_site_b");
        assert_eq!(t.device_of_node("site_b_node-1"), Some("node-1"));
        assert_eq!(t.device_of_node("node-1"), None);
    }
}
