//! `hearth demo --secure`: the server-room demo as a careful installation
//! runs it. The data directory gets what `hearth certs init` and `hearth
//! certs issue` make (once; later runs reuse them), the embedded broker
//! takes MQTT over TLS with authentication and per-device topic rights, the
//! twin's sensor node and IR bridge connect over TLS with their own issued
//! credentials (as the ESP32 firmware does with its sealed ones), the bridge
//! authenticates as `hearth-bridge`, and the API is HTTPS/WSS.

use crate::broker::access::Access;
use crate::broker::embedded::{BrokerOptions, bridge_credentials};
use crate::broker::tls::TlsFiles;
use crate::broker::{BrokerAddress, EmbeddedBroker, client::ClientTls};
use crate::cli::certs::{CertsAction, CertsArgs, DeviceKind};
use crate::security::acl::{self, Rule};
use crate::security::passwd::{self, Passwd};
use crate::security::{SecurityPaths, files};
use crate::twin::access::{CONTROLS_USER, TwinAccess};
use crate::twin::server_room::TwinOptions;
use anyhow::Context;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What a secure demo runs on.
pub struct Secure {
    pub broker: EmbeddedBroker,
    /// The bridge's way in: plain MQTT on loopback, as `hearth-bridge`.
    pub bridge: BrokerAddress,
    /// The twin devices' way in: TLS, each with its credential.
    pub twin: TwinAccess,
}

/// Makes (or reuses) the certificates and credentials in `data_dir` and
/// starts the embedded broker with TLS on `tls_port` (0: any free port)
/// and plain MQTT on 127.0.0.1:`plain_port`, both authenticated.
pub fn prepare(
    data_dir: &Path,
    plain_port: u16,
    tls_port: u16,
    twin: &TwinOptions,
) -> anyhow::Result<Secure> {
    let paths = SecurityPaths::new(data_dir);
    let certs = |action| {
        crate::cli::certs::run(CertsArgs {
            action,
            data_dir: Some(data_dir.to_path_buf()),
            config: None,
        })
    };
    if !paths.ca_cert().exists() {
        certs(CertsAction::Init {
            sans: Vec::new(),
            force: false,
            // What init prints and writes into mosquitto.conf: this demo's
            // ports (8883 and 1883 when left to the defaults).
            mqtt_tls_port: if tls_port == 0 { 8883 } else { tls_port },
            mqtt_port: plain_port,
        })?;
    }
    let devices = [
        (twin.node_id.as_str(), DeviceKind::Node),
        (twin.tasmota_topic.as_str(), DeviceKind::Tasmota),
    ];
    for (id, kind) in devices {
        if !paths.device_password(id).exists() {
            certs(CertsAction::Issue {
                device: id.to_string(),
                kind,
                topic: None,
                cert: false,
                password: true,
            })?;
        }
    }
    ensure_controls_user(&paths)?;

    let mut passwords = HashMap::new();
    for user in [
        twin.node_id.as_str(),
        twin.tasmota_topic.as_str(),
        CONTROLS_USER,
    ] {
        let file = paths.device_password(user);
        let password = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        passwords.insert(user.to_string(), password.trim_end().to_string());
    }

    let access = Access::load(&paths.passwd(), &paths.acl())?.with_device_certs(paths.clone());
    let localhost = Ipv4Addr::LOCALHOST.into();
    let broker = EmbeddedBroker::start_with(BrokerOptions {
        plain: SocketAddr::new(localhost, plain_port),
        tls: Some((
            SocketAddr::new(localhost, tls_port),
            TlsFiles::in_data_dir(data_dir),
        )),
        access: Some(Arc::new(access)),
        max_connections: Some(crate::broker::embedded::MAX_CONNECTIONS),
        handshake_timeout: Duration::from_secs(10),
    })?;
    let tls_addr = broker
        .tls_addr
        .context("the embedded broker started without its TLS listener")?;
    let (user, password) = bridge_credentials(data_dir)?;
    let mut bridge = BrokerAddress::local(broker.addr.port());
    bridge.username = Some(user);
    bridge.password = Some(password);
    let twin = TwinAccess {
        tls: Some((tls_addr.port(), ClientTls::with_ca_file(&paths.ca_cert())?)),
        passwords,
    };
    Ok(Secure {
        broker,
        bridge,
        twin,
    })
}

/// The twin's knobs (`hearth-twin/…/set`) are no device kind of `hearth
/// certs issue`: their user gets `readwrite hearth-twin/#` here, once.
fn ensure_controls_user(paths: &SecurityPaths) -> anyhow::Result<()> {
    let password_file = paths.device_password(CONTROLS_USER);
    if password_file.exists() {
        return Ok(());
    }
    let password = passwd::generate_password();
    let mut users = Passwd::load(&paths.passwd())?;
    users.set(CONTROLS_USER, &password);
    let text = std::fs::read_to_string(paths.acl())
        .with_context(|| format!("reading {}", paths.acl().display()))?;
    let block = acl::user_block(
        CONTROLS_USER,
        Some("the digital twin's knobs (hearth demo --secure)"),
        &[Rule {
            access: acl::Access::ReadWrite,
            filter: format!("{CONTROLS_USER}/#"),
        }],
    );
    let text = acl::replace_user_block(&text, CONTROLS_USER, &block);
    acl::Acl::parse(&text).map_err(|e| anyhow::anyhow!("the demo's ACL would not parse: {e}"))?;
    files::ensure_dir(&paths.device_dir(CONTROLS_USER))?;
    files::write_private(&password_file, password.as_bytes())?;
    files::write_private(&paths.passwd(), users.to_file_text().as_bytes())?;
    files::write_public(&paths.acl(), text.as_bytes())
}

/// The bridge's side of a secure demo: it reaches the broker as
/// `hearth-bridge` (password from its file, kept as a secret) and serves
/// the API over HTTPS/WSS with the server certificate (`[tls]` defaults).
pub fn configure(config: &mut crate::config::Config, bridge: &BrokerAddress) {
    let user = bridge
        .username
        .as_deref()
        .unwrap_or(crate::security::BRIDGE_USER);
    config.mqtt.url = Some(format!("mqtt://{user}@{}:{}", bridge.host, bridge.port));
    config.mqtt.password = bridge
        .password
        .as_ref()
        .map(|p| crate::secret::Secret::new(p.clone()));
    config.tls = Some(crate::config::TlsConfig {
        ca_file: None,
        cert_file: None,
        key_file: None,
        handshake_timeout_s: 10.0,
        max_connections: crate::broker::embedded::MAX_CONNECTIONS,
    });
}

/// Where Home Assistant (or mosquitto_sub) connects in a secure demo; file
/// paths only, never a password.
pub fn log_how_to_connect(secure: &Secure, data_dir: &Path) {
    let paths = SecurityPaths::new(data_dir);
    if let Some(tls) = secure.broker.tls_addr {
        tracing::info!(
            "point Home Assistant's MQTT integration at mqtts://{tls} (broker certificate validation: custom, CA file {}; user `{}`, password in {})",
            paths.ca_cert().display(),
            crate::security::HOMEASSISTANT_USER,
            paths.homeassistant_password().display()
        );
    }
}
