//! How the twin's MQTT devices reach the broker. By default they connect
//! anonymously over plain MQTT, as most home devices are set up; `hearth
//! demo --secure` gives each its own credential (`hearth certs issue`) and
//! TLS towards the broker's front, so the twin exercises the same
//! authentication and topic rights a real installation has.

use crate::broker::BrokerAddress;
use crate::broker::client::ClientTls;
use std::collections::HashMap;

/// The twin devices' way into the broker. Debug shows users, not
/// passwords.
#[derive(Clone, Default)]
pub struct TwinAccess {
    /// The broker's MQTT-over-TLS port and the CA to trust; `None`: plain
    /// MQTT on the port the twin was given.
    pub tls: Option<(u16, ClientTls)>,
    /// Password per MQTT user (the node id, the Tasmota topic,
    /// [`CONTROLS_USER`]); a user without one connects anonymously.
    pub passwords: HashMap<String, String>,
}

impl std::fmt::Debug for TwinAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwinAccess")
            .field("tls", &self.tls)
            .field("users", &self.passwords.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The MQTT user of the twin's knobs (`hearth-twin/…/set`).
pub const CONTROLS_USER: &str = "hearth-twin";

impl TwinAccess {
    /// Where device `user` connects: `host`:`port` plainly, or the TLS
    /// port, with its password when it has one.
    pub fn address(&self, host: &str, port: u16, user: &str) -> BrokerAddress {
        let mut addr = BrokerAddress::local(port);
        addr.host = host.to_string();
        if let Some((tls_port, tls)) = &self.tls {
            addr.port = *tls_port;
            addr.tls = Some(tls.clone());
        }
        if let Some(password) = self.passwords.get(user) {
            addr.username = Some(user.to_string());
            addr.password = Some(password.clone());
        }
        addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_anonymous_unless_told_otherwise() {
        let a = TwinAccess::default().address("127.0.0.1", 1883, "server-room");
        assert_eq!(
            (a.port, a.username.is_none(), a.tls.is_none()),
            (1883, true, true)
        );
        let secure = TwinAccess {
            tls: Some((8883, ClientTls::default())),
            passwords: HashMap::from([("server-room".to_string(), "pw".to_string())]),
        };
        let a = secure.address("127.0.0.1", 1883, "server-room");
        assert_eq!(a.port, 8883);
        assert_eq!(a.username.as_deref(), Some("server-room"));
        assert!(a.tls.is_some());
        assert!(secure.address("h", 1, "other").username.is_none());
        assert!(!format!("{secure:?}").contains("pw"), "{secure:?}");
    }
}
