//! The embedded MQTT broker: rumqttd in a thread of its own, MQTT 3.1.1 on
//! 127.0.0.1 unless configured otherwise. Users who outgrow one machine point
//! `--mqtt-url` at Mosquitto, EMQX or HiveMQ instead; nothing else changes.

use anyhow::Context;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener};

/// Largest MQTT payload accepted (bytes): room for device-based discovery.
pub const MAX_PAYLOAD: usize = 256 * 1024;

pub struct EmbeddedBroker {
    pub addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts the broker in a thread of its own.
    pub fn start(bind: IpAddr, port: u16) -> anyhow::Result<Self> {
        let addr = SocketAddr::new(bind, port);
        // Clients connect to the front (see `front`), which relays to
        // rumqttd on a loopback port only it uses. Binding here also gives
        // the user a clear error (rumqttd logs a failed bind and carries on).
        let listener = TcpListener::bind(addr).with_context(|| {
            format!("embedded MQTT broker cannot listen on {addr}: pass --mqtt-port PORT, or --mqtt-url to use an external broker")
        })?;
        let addr = listener.local_addr().unwrap_or(addr);
        let inner = SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), Self::free_port());
        let config = config(inner);
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                let mut broker = rumqttd::Broker::new(config);
                if let Err(e) = broker.start() {
                    tracing::error!("embedded MQTT broker stopped: {e}");
                }
            })
            .context("starting the broker thread")?;
        super::front::spawn(listener, inner, MAX_PAYLOAD).context("starting the broker front")?;
        // Readiness is checked by the clients: they wait for the broker's
        // CONNACK (a bare TCP probe makes rumqttd log a spurious error).
        tracing::info!("embedded MQTT broker listening on mqtt://{addr}");
        Ok(EmbeddedBroker { addr })
    }

    /// Picks a free loopback port (tests, twin).
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0)
    }
}

fn config(addr: SocketAddr) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: MAX_PAYLOAD,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let router = rumqttd::RouterConfig {
        max_connections: 1000,
        max_outgoing_packet_count: 1000,
        max_segment_size: 64 * 1024 * 1024,
        max_segment_count: 10,
        custom_segment: None,
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    };
    rumqttd::Config {
        id: 0,
        router,
        v4: Some(HashMap::from([("v4".to_string(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    }
}
