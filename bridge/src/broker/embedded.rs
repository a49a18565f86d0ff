//! The embedded MQTT broker: rumqttd in a thread of its own, MQTT 3.1.1 on
//! 127.0.0.1 unless configured otherwise (with `[tls]`: MQTT over TLS,
//! authentication and topic rights in [`super::front`]). Users who outgrow
//! one machine point `--mqtt-url` at Mosquitto, EMQX or HiveMQ instead;
//! nothing else changes.

use super::access::{Access, FrontStats};
use super::front;
use super::tls::TlsFiles;
use crate::config::Config;
use crate::security::passwd::generate_password;
use crate::security::{BRIDGE_USER, SecurityPaths};
use anyhow::Context;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The user name of the front's own login to rumqttd (with access control).
pub const INTERNAL_USER: &str = "hearth-front-internal";

/// Largest MQTT payload accepted (bytes): room for device-based discovery.
pub const MAX_PAYLOAD: usize = 256 * 1024;

pub struct EmbeddedBroker {
    /// Where clients connect: Hearth's front (`front.rs`), plain MQTT.
    pub addr: SocketAddr,
    /// The front's MQTT-over-TLS listener, when configured.
    pub tls_addr: Option<SocketAddr>,
    /// rumqttd's own loopback listener behind the front. Only benchmarks
    /// use it, to measure what the front costs: clients connecting here
    /// bypass the front's fixes. With access control, rumqttd accepts only
    /// the front's per-run internal login ([`INTERNAL_USER`] and a random
    /// password no client sees), so nothing gets around the front.
    pub rumqttd: SocketAddr,
    /// What the front counted (refusals, denials, connections over the cap).
    pub stats: Arc<FrontStats>,
}

/// How the embedded broker listens and whom it lets in; [`Self::plain`]
/// is the default (anonymous plain MQTT on one address).
pub struct BrokerOptions {
    /// The plain MQTT listener.
    pub plain: SocketAddr,
    /// The MQTT-over-TLS listener and its certificates.
    pub tls: Option<(SocketAddr, TlsFiles)>,
    /// Password file and ACL (see [`super::access`]); `None`: anonymous.
    pub access: Option<Arc<Access>>,
    /// Connections the front keeps at once; `None`: no cap of its own.
    pub max_connections: Option<usize>,
    /// Time a client has to finish its TLS handshake and, with access
    /// control, to send its CONNECT.
    pub handshake_timeout: Duration,
}

impl BrokerOptions {
    pub fn plain(addr: SocketAddr) -> Self {
        BrokerOptions {
            plain: addr,
            tls: None,
            access: None,
            max_connections: None,
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// From the config: unchanged (`[mqtt] bind`:`port`, anonymous) without
    /// `[tls]` and `[mqtt] auth`; with `[tls]`, TLS on `bind`:`tls_port`
    /// and plain on `plain_bind`:`port`; with auth, the password file and
    /// ACL of the data directory (or `[mqtt] passwd_file`, `acl_file`).
    pub fn from_config(config: &Config, data_dir: &Path) -> anyhow::Result<Self> {
        let mqtt = &config.mqtt;
        let Some(tls) = &config.tls else {
            let mut opts = Self::plain(SocketAddr::new(mqtt.bind, mqtt.port));
            opts.access = access(config, data_dir)?;
            return Ok(opts);
        };
        let paths = SecurityPaths::new(data_dir);
        let files = TlsFiles {
            ca: tls.ca_file.clone().unwrap_or_else(|| paths.ca_cert()),
            cert: tls.cert_file.clone().unwrap_or_else(|| paths.server_cert()),
            key: tls.key_file.clone().unwrap_or_else(|| paths.server_key()),
        };
        Ok(BrokerOptions {
            plain: SocketAddr::new(mqtt.plain_bind, mqtt.port),
            tls: Some((SocketAddr::new(mqtt.bind, mqtt.tls_port), files)),
            access: access(config, data_dir)?,
            max_connections: Some(tls.max_connections),
            handshake_timeout: Duration::from_secs_f64(tls.handshake_timeout_s),
        })
    }
}

fn access(config: &Config, data_dir: &Path) -> anyhow::Result<Option<Arc<Access>>> {
    if !config.mqtt.auth_enabled(config.tls.is_some()) {
        return Ok(None);
    }
    let paths = SecurityPaths::new(data_dir);
    let passwd = config
        .mqtt
        .passwd_file
        .clone()
        .unwrap_or_else(|| paths.passwd());
    let acl = config.mqtt.acl_file.clone().unwrap_or_else(|| paths.acl());
    let access = Access::load(&passwd, &acl)
        .context("MQTT authentication is on ([tls] or [mqtt] auth): run `hearth certs init` first, or set [mqtt] auth = false")?
        .with_device_certs(paths);
    Ok(Some(Arc::new(access)))
}

/// The bridge's own credential when the embedded broker authenticates:
/// user `hearth-bridge`, password from `<data>/mqtt/bridge.password`.
pub fn bridge_credentials(data_dir: &Path) -> anyhow::Result<(String, String)> {
    let path = SecurityPaths::new(data_dir).bridge_password();
    let password = std::fs::read_to_string(&path)
        .with_context(|| format!("the bridge's MQTT password file {}", path.display()))?;
    Ok((BRIDGE_USER.to_string(), password.trim_end().to_string()))
}

impl EmbeddedBroker {
    /// Starts the broker in a thread of its own (anonymous, plain MQTT on
    /// `bind`:`port`).
    pub fn start(bind: IpAddr, port: u16) -> anyhow::Result<Self> {
        Self::start_with(BrokerOptions::plain(SocketAddr::new(bind, port)))
    }

    /// Starts the broker with TLS, authentication and topic rights as
    /// `opts` say.
    pub fn start_with(opts: BrokerOptions) -> anyhow::Result<Self> {
        let addr = opts.plain;
        // Clients connect to the front (see `front`), which relays to
        // rumqttd on a loopback port only it uses. Binding here also gives
        // the user a clear error (rumqttd logs a failed bind and carries on).
        let listener = TcpListener::bind(addr).with_context(|| {
            format!("embedded MQTT broker cannot listen on {addr}: pass --mqtt-port PORT, or --mqtt-url to use an external broker")
        })?;
        let addr = listener.local_addr().unwrap_or(addr);
        let mut listeners = vec![front::Listener {
            socket: listener,
            tls: None,
        }];
        let mut tls_addr = None;
        if let Some((at, files)) = &opts.tls {
            let acceptor = super::tls::acceptor(files)?;
            let socket = TcpListener::bind(at).with_context(|| {
                format!("embedded MQTT broker cannot listen for TLS on {at}: set [mqtt] tls_port")
            })?;
            tls_addr = Some(socket.local_addr().unwrap_or(*at));
            listeners.push(front::Listener {
                socket,
                tls: Some(acceptor),
            });
        }
        let inner = SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), Self::free_port());
        // With access control, rumqttd takes only the front's login: a
        // fresh random password per run, known to this process alone.
        let upstream_login = opts
            .access
            .as_ref()
            .map(|_| (INTERNAL_USER.to_string(), generate_password()));
        let config = config(inner, upstream_login.clone());
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                let mut broker = rumqttd::Broker::new(config);
                if let Err(e) = broker.start() {
                    tracing::error!("embedded MQTT broker stopped: {e}");
                }
            })
            .context("starting the broker thread")?;
        if upstream_login.is_some() {
            ensure_ours(inner)?;
        }
        let stats = Arc::new(FrontStats::default());
        let mut front_opts = front::FrontOptions::plain(MAX_PAYLOAD);
        front_opts.stats = stats.clone();
        front_opts.max_connections = opts.max_connections;
        front_opts.max_per_ip = opts.max_connections.map(|_| front::PER_IP_CONNECTIONS);
        front_opts.upstream_login = upstream_login;
        front_opts.handshake_timeout = opts.handshake_timeout;
        if opts.access.is_some() {
            front_opts.connect_wait = opts.handshake_timeout;
        }
        front_opts.access = opts.access;
        front::spawn(listeners, inner, front_opts).context("starting the broker front")?;
        // Readiness is checked by the clients: they wait for the broker's
        // CONNACK (a bare TCP probe makes rumqttd log a spurious error).
        match tls_addr {
            Some(t) => {
                tracing::info!("embedded MQTT broker listening on mqtts://{t} and mqtt://{addr}")
            }
            None => tracing::info!("embedded MQTT broker listening on mqtt://{addr}"),
        }
        Ok(EmbeddedBroker {
            addr,
            tls_addr,
            rumqttd: inner,
            stats,
        })
    }

    /// Picks a free loopback port (tests, twin).
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0)
    }
}

/// With access control, waits until rumqttd listens on `inner` and fails if
/// the listening socket is not this process's: [`EmbeddedBroker::free_port`]
/// frees the port before rumqttd binds it, and a local process that took it
/// meanwhile would receive every relayed connection. Where `/proc` cannot
/// tell (not Linux), or rumqttd is not listening within the wait, it warns
/// and goes on (the front then reports rumqttd missing per client).
fn ensure_ours(inner: SocketAddr) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match listener_is_ours(inner.port()) {
            Some(true) => return Ok(()),
            Some(false) => anyhow::bail!(
                "another process is listening on {inner}, the embedded MQTT broker's internal port; not starting (restart to pick another port)"
            ),
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            None => {
                tracing::warn!(
                    "embedded MQTT broker: could not check who listens on its internal port {inner}"
                );
                return Ok(());
            }
        }
    }
}

/// Whether every TCP socket listening on `port` (`/proc/net/tcp`, `tcp6`)
/// is one of this process's (`/proc/self/fd`); `None` when none listens or
/// `/proc` cannot tell.
pub fn listener_is_ours(port: u16) -> Option<bool> {
    let want = format!(":{port:04X}");
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st ... uid timeout inode
            if f.len() > 9 && f[1].ends_with(&want) && f[3] == "0A" {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let ours: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    Some(inodes.iter().all(|i| ours.contains(i)))
}

/// Bytes of one segment of a subscription's in-memory log (rumqttd counts
/// 4 + topic + payload per message). rumqttd keeps, per subscription
/// filter, a log of the messages it routes so a subscriber that falls behind
/// can catch up; the log rolls over at [`SEGMENTS_PER_LOG`] segments and a
/// subscriber further behind skips to the oldest kept message. 512 KiB holds
/// a home's largest burst (Home Assistant restarting: every discovery
/// config and state republished, a few hundred KB) several times over;
/// rumqttd's example uses 100 MiB and Hearth had 64 MiB, which let one
/// flood pin 640 MiB per subscription.
pub const SEGMENT_BYTES: usize = 512 * 1024;
/// Segments kept per subscription filter, the active one included. A
/// segment may overshoot [`SEGMENT_BYTES`] by its last message, so one log
/// holds at most `SEGMENTS_PER_LOG × (SEGMENT_BYTES + MAX_PAYLOAD)` = 3 MiB
/// of payload, and never less than 1.5 MiB (three full segments) of
/// history: about 25 000 sensor-node telemetry messages.
pub const SEGMENTS_PER_LOG: usize = 4;
/// Concurrent MQTT connections. A home has tens of MQTT clients (sensor
/// nodes, Tasmota and Shelly devices, Home Assistant, Node-RED); each can
/// pin up to [`OUTGOING_BATCH`] + 200 queued messages while it is slow to
/// read, so this also caps what slow clients can hold. rumqttd
/// pre-allocates its tables at this size.
pub const MAX_CONNECTIONS: usize = 256;
/// Messages the router moves from a log into one QoS 0 subscriber's queue
/// per turn (QoS 1/2 subscribers are capped by rumqttd's fixed 100 in
/// flight instead). rumqttd stops filling a queue past 200 messages, so a
/// slow subscriber holds at most this + 200.
pub const OUTGOING_BATCH: u64 = 100;
/// Packets rumqttd reads from one client's socket per batch handed to the
/// router (its `max_inflight_count` is this, not MQTT's in-flight window):
/// a fast publisher queues at most a few such batches ahead of the router.
pub const INCOMING_BATCH: usize = 100;

/// rumqttd's configuration; every memory knob is one of the constants above.
/// What each knob really does was read from rumqttd 0.20's source
/// (`router/logs.rs`, `segments/mod.rs`, `router/routing.rs`,
/// `link/network.rs`).
/// `login`: the only user name and password rumqttd accepts (its
/// `link/remote.rs` `handle_auth` drops a CONNECT without them, no CONNACK);
/// `None`: anonymous.
fn config(addr: SocketAddr, login: Option<(String, String)>) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: MAX_PAYLOAD,
        max_inflight_count: INCOMING_BATCH,
        auth: login.map(|(user, password)| HashMap::from([(user, password)])),
        external_auth: None,
        // Only consulted when a publish matches no filter, which in 0.20
        // never creates a log (`DataLog::matches` answers `Some(empty)`):
        // a publish nobody subscribes to is dropped and costs nothing. With
        // `false` rumqttd would disconnect its publisher instead.
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
        max_connections: MAX_CONNECTIONS,
        max_outgoing_packet_count: OUTGOING_BATCH,
        max_segment_size: SEGMENT_BYTES,
        max_segment_count: SEGMENTS_PER_LOG,
        custom_segment: None,
        // No warm-up logs: a log per filter is made when someone subscribes.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_of_another_process_is_told_apart() {
        let ours = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = ours.local_addr().unwrap().port();
        if std::fs::metadata("/proc/net/tcp").is_err() {
            eprintln!("no /proc: skipped");
            return;
        }
        assert_eq!(listener_is_ours(port), Some(true));
        drop(ours);
        assert_eq!(listener_is_ours(port), None);
        // Another process listening (python3's socket module, as any local
        // program could).
        let port = EmbeddedBroker::free_port();
        let script = format!(
            "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',{port}))\ns.listen()\ntime.sleep(10)"
        );
        let Ok(mut child) = std::process::Command::new("python3")
            .args(["-c", &script])
            .spawn()
        else {
            eprintln!("no python3: skipped");
            return;
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut seen = None;
        while std::time::Instant::now() < deadline && seen.is_none() {
            std::thread::sleep(Duration::from_millis(20));
            seen = listener_is_ours(port);
        }
        // The broker would not start behind such a squatter.
        let refused = ensure_ours(SocketAddr::from(([127, 0, 0, 1], port)));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(seen, Some(false));
        let e = refused.unwrap_err().to_string();
        assert!(e.contains("another process"), "{e}");
    }
}
