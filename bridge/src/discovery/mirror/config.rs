//! The `[mirror]` section: which foreign Home Assistant discovery configs
//! Hearth follows.
//!
//! ```toml
//! [mirror]
//! discovery = ["homeassistant/sensor/+/+/config"]  # MQTT filters of config topics
//! device_class = ["battery"]                       # optional: only these classes
//! ```

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// MQTT topic filters of the discovery configs to mirror, each ending
    /// in `/config` (HA's `<prefix>/<component>/[<node_id>/]<object_id>/config`).
    pub discovery: Vec<String>,
    /// Only configs whose `device_class` is in this list (absent: all).
    #[serde(default)]
    pub device_class: Option<Vec<String>>,
}

impl MirrorConfig {
    /// Refuses filters that cannot match a discovery config topic.
    pub fn validate(&self) -> Result<(), String> {
        if self.discovery.is_empty() {
            return Err("[mirror] discovery: expected at least one topic filter, e.g. \"homeassistant/sensor/+/+/config\"".into());
        }
        for f in &self.discovery {
            if !rumqttc::valid_filter(f) || !(f.ends_with("/config") || f.ends_with("/#")) {
                return Err(format!(
                    "[mirror] discovery: `{f}` is not an MQTT filter of discovery config topics (expected e.g. \"homeassistant/sensor/+/+/config\")"
                ));
            }
        }
        if let Some(classes) = &self.device_class
            && let Some(bad) = classes.iter().find(|c| c.trim().is_empty())
        {
            return Err(format!("[mirror] device_class: `{bad}` is empty"));
        }
        Ok(())
    }

    /// Whether a config of this device class is followed.
    pub fn follows(&self, device_class: Option<&str>) -> bool {
        match &self.device_class {
            None => true,
            Some(list) => device_class.is_some_and(|c| list.iter().any(|l| l == c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<MirrorConfig, String> {
        let c: MirrorConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn the_section_and_its_refusals() {
        let c = parse(
            r#"discovery = ["homeassistant/sensor/+/+/config"]
device_class = ["battery"]"#,
        )
        .unwrap();
        assert!(c.follows(Some("battery")));
        assert!(!c.follows(Some("temperature")));
        assert!(!c.follows(None));
        let all = parse(r#"discovery = ["homeassistant/#"]"#).unwrap();
        assert!(all.follows(None));
        let e = parse("discovery = []").unwrap_err();
        assert!(e.contains("at least one"), "{e}");
        let e = parse(r#"discovery = ["homeassistant/sensor/+/+/state"]"#).unwrap_err();
        assert!(e.contains("homeassistant/sensor/+/+/state"), "{e}");
        let e = parse(r#"discovery = ["a/#/config"]"#).unwrap_err();
        assert!(e.contains("a/#/config"), "{e}");
        let e = parse(
            r#"discovery = ["x/config"]
topics = 1"#,
        )
        .unwrap_err();
        assert!(e.contains("topics"), "{e}");
    }
}
