//! Security material and rules shared by the embedded MQTT front and an
//! external Mosquitto (DESIGN.md §8): the ACL file ([`acl`]), the password
//! file ([`passwd`]), the CA and certificates `hearth certs` makes
//! ([`certs`]), private files written 0600 ([`files`]) and the matching
//! `mosquitto.conf` ([`mosquitto`]).
//!
//! Layout under the data directory: [`SecurityPaths`].

pub mod acl;
pub mod certs;
pub mod files;
pub mod mosquitto;
pub mod passwd;

use std::path::{Path, PathBuf};

/// User name of the bridge's own MQTT link.
pub const BRIDGE_USER: &str = "hearth-bridge";
/// User name of Home Assistant's MQTT integration.
pub const HOMEASSISTANT_USER: &str = "homeassistant";

/// Where `hearth certs` puts things under the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityPaths {
    pub data_dir: PathBuf,
}

impl SecurityPaths {
    pub fn new(data_dir: impl Into<PathBuf>) -> SecurityPaths {
        SecurityPaths {
            data_dir: data_dir.into(),
        }
    }
    /// `<data>/tls`
    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }
    /// `<data>/mqtt`
    pub fn mqtt_dir(&self) -> PathBuf {
        self.data_dir.join("mqtt")
    }
    /// `<data>/tls/ca.pem` (public)
    pub fn ca_cert(&self) -> PathBuf {
        self.tls_dir().join("ca.pem")
    }
    /// `<data>/tls/ca.key` (0600)
    pub fn ca_key(&self) -> PathBuf {
        self.tls_dir().join("ca.key")
    }
    /// `<data>/tls/server.pem`
    pub fn server_cert(&self) -> PathBuf {
        self.tls_dir().join("server.pem")
    }
    /// `<data>/tls/server.key` (0600)
    pub fn server_key(&self) -> PathBuf {
        self.tls_dir().join("server.key")
    }
    /// `<data>/mqtt/passwd` (0600)
    pub fn passwd(&self) -> PathBuf {
        self.mqtt_dir().join("passwd")
    }
    /// `<data>/mqtt/acl`
    pub fn acl(&self) -> PathBuf {
        self.mqtt_dir().join("acl")
    }
    /// `<data>/mqtt/mosquitto.conf`
    pub fn mosquitto_conf(&self) -> PathBuf {
        self.mqtt_dir().join("mosquitto.conf")
    }
    /// `<data>/devices/<id>` (holds `password`, `client.pem`, `client.key`)
    pub fn device_dir(&self, id: &str) -> PathBuf {
        self.data_dir.join("devices").join(id)
    }
    /// `<data>/devices/<id>/password` (0600)
    pub fn device_password(&self, id: &str) -> PathBuf {
        self.device_dir(id).join("password")
    }
    /// `<data>/devices/<id>/client.pem`
    pub fn device_cert(&self, id: &str) -> PathBuf {
        self.device_dir(id).join("client.pem")
    }
    /// `<data>/devices/<id>/client.key` (0600)
    pub fn device_key(&self, id: &str) -> PathBuf {
        self.device_dir(id).join("client.key")
    }
    /// `<data>/mqtt/bridge.password` (0600): user [`BRIDGE_USER`]
    pub fn bridge_password(&self) -> PathBuf {
        self.mqtt_dir().join("bridge.password")
    }
    /// `<data>/mqtt/homeassistant.password` (0600): user [`HOMEASSISTANT_USER`]
    pub fn homeassistant_password(&self) -> PathBuf {
        self.mqtt_dir().join("homeassistant.password")
    }
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}
