//! Shared test harness: real brokers (the embedded rumqttd and Mosquitto
//! from Debian), the digital twin, a real bridge, and an MQTT observer that
//! sees the wire as Home Assistant would.
#![allow(dead_code)]

pub mod history;
pub mod node_link;
pub mod pki;

use hearth::app::Bridge;
use hearth::broker::{BrokerAddress, EmbeddedBroker};
use hearth::clock::Clock;
use hearth::config::Config;
use hearth::shutdown::{self, ShutdownTrigger};
use hearth::twin::{ServerRoomTwin, TwinHandle, TwinOptions};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    Embedded,
    Mosquitto,
}

/// A Mosquitto broker from Debian's package, on a free loopback port.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn mosquitto() -> Mosquitto {
    mosquitto_on(EmbeddedBroker::free_port())
}

/// Mosquitto on a given port (to restart a broker where clients expect it).
pub fn mosquitto_on(port: u16) -> Mosquitto {
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("mosquitto is not installed: `apt-get install -y mosquitto` (.ci/run does this)");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting mosquitto");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "mosquitto did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Mosquitto {
        child,
        port,
        _dir: dir,
    }
}

/// A broker of either kind, kept alive as long as this value.
pub struct TestBroker {
    pub addr: BrokerAddress,
    _mosquitto: Option<Mosquitto>,
}

pub fn broker(kind: BrokerKind) -> TestBroker {
    match kind {
        BrokerKind::Embedded => {
            let b = EmbeddedBroker::start(
                std::net::Ipv4Addr::LOCALHOST.into(),
                EmbeddedBroker::free_port(),
            )
            .unwrap();
            TestBroker {
                addr: BrokerAddress::local(b.addr.port()),
                _mosquitto: None,
            }
        }
        BrokerKind::Mosquitto => {
            let m = mosquitto();
            TestBroker {
                addr: BrokerAddress::local(m.port),
                _mosquitto: Some(m),
            }
        }
    }
}

/// Twin + bridge on one broker, as `hearth demo` runs them.
pub struct Harness {
    pub bridge: Option<Bridge>,
    pub twin: TwinHandle,
    pub clock: Clock,
    pub broker: TestBroker,
    /// The bridge's data directory (access tokens live here).
    pub data_dir: tempfile::TempDir,
    twin_stop: ShutdownTrigger,
}

impl Harness {
    pub async fn start(kind: BrokerKind, speed: f64, tweak: impl FnOnce(&mut Config)) -> Harness {
        Harness::start_with(kind, speed, TwinOptions::default(), tweak).await
    }

    pub async fn start_with(
        kind: BrokerKind,
        speed: f64,
        twin_options: TwinOptions,
        tweak: impl FnOnce(&mut Config),
    ) -> Harness {
        Harness::start_on(kind, Clock::simulated(speed), twin_options, tweak).await
    }

    /// On a given clock (a simulated one that starts at a chosen time).
    pub async fn start_on(
        kind: BrokerKind,
        clock: Clock,
        twin_options: TwinOptions,
        tweak: impl FnOnce(&mut Config),
    ) -> Harness {
        init_logs();
        let broker = broker(kind);
        let (twin_stop, twin_shutdown) = shutdown::channel();
        let twin = ServerRoomTwin::start(
            clock,
            &broker.addr.host,
            broker.addr.port,
            twin_options,
            twin_shutdown,
        )
        .await
        .expect("twin starts");
        let mut config =
            hearth::demo::scenario_config(&broker.addr, &twin.shelly_url(), Some(0)).unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        config.data_dir = Some(data_dir.path().to_path_buf());
        tweak(&mut config);
        let bridge = Bridge::start(config, clock).await.expect("bridge starts");
        Harness {
            bridge: Some(bridge),
            twin,
            clock,
            broker,
            data_dir,
            twin_stop,
        }
    }

    pub fn bridge(&self) -> &Bridge {
        self.bridge.as_ref().unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(b) = self.bridge.take() {
            b.stop().await;
        }
        self.twin_stop.trigger();
    }
}

/// Held by a test that runs a cargo build (the scaffold test) and by the
/// restore test that is known not to survive one beside it: in two CI
/// runs out of three, `restore::commanded_states_return…` never saw its
/// restored states (150 s) while the scaffold's cargo build ran on the
/// same 2 cores, and it passed whenever they did not overlap. The root
/// cause (likely a restore window counted in the 60× simulated time that
/// a starved bridge overruns) is not found yet; this keeps them apart.
pub static CARGO_BUILD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Logs go to stderr for `cargo test -- --nocapture` and into a buffer the
/// bad-input tests read.
pub static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;
impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        if std::env::var_os("HEARTH_TEST_LOG").is_some() {
            let _ = std::io::stderr().write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every panic of this test process (the bridge's threads and tasks
/// included; a plugin's guest panic is a trap, not one of these), as
/// "location: message". The tests share one process, so they read from a
/// mark.
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn panic_mark() -> usize {
    init_logs();
    PANICS.lock().unwrap_or_else(|e| e.into_inner()).len()
}

pub fn panics_since(mark: usize) -> Vec<String> {
    let p = PANICS.lock().unwrap_or_else(|e| e.into_inner());
    p[mark.min(p.len())..].to_vec()
}

pub fn init_logs() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            PANICS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("{at}: {msg}"));
            default(info);
        }));
    });
    // rumqttd at warn with the bridge's own filter of its routine
    // disconnect lines, as `hearth` runs it (tests/broker_logs.rs checks it).
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info,rumqttd=warn,rumqttc=warn,cranelift_codegen=warn,wasmtime=warn")
        .with_ansi(false)
        .with_writer(|| LogWriter)
        .fmt_fields(hearth::logging::EscapedFields)
        .finish()
        .with(hearth::broker::log_filter::RumqttdNoise::default())
        .try_init();
}

pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

/// A position in the log, for [`logs_since`]. Tests share one buffer, so
/// they read from a mark instead of clearing it.
pub fn log_mark() -> usize {
    LOGS.lock().unwrap().len()
}

pub fn logs_since(mark: usize) -> String {
    let logs = LOGS.lock().unwrap();
    String::from_utf8_lossy(&logs[mark.min(logs.len())..]).into_owned()
}

/// (topic, payload, retain) of every message seen.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>, bool)>>>;

/// Sees the broker as Home Assistant does: every message, and the last
/// retained payload per topic.
#[derive(Clone)]
pub struct Observer {
    pub client: AsyncClient,
    seen: Seen,
    retained: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl Observer {
    pub async fn connect(addr: &BrokerAddress, filter: &str) -> Observer {
        let id = format!(
            "observer-{}",
            std::process::id() as u64 * 1000 + rand_suffix()
        );
        let mut opts = MqttOptions::new(id, &addr.host, addr.port);
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(opts, 1024);
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let retained = Arc::new(Mutex::new(BTreeMap::new()));
        let (s, r) = (seen.clone(), retained.clone());
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        let (again, filter) = (client.clone(), filter.to_owned());
        let mut connacks = 0;
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    // A clean session loses the subscription with the
                    // connection: take it again, as Home Assistant does.
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        connacks += 1;
                        if connacks > 1 {
                            let _ = again.try_subscribe(filter.as_str(), QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let payload = p.payload.to_vec();
                        // Retained messages and live updates both describe
                        // the current retained value of a retained topic.
                        if payload.is_empty() {
                            r.lock().unwrap().remove(&p.topic);
                        } else {
                            r.lock().unwrap().insert(p.topic.clone(), payload.clone());
                        }
                        s.lock().unwrap().push((p.topic, payload, p.retain));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(5), subscribed).await;
        Observer {
            client,
            seen,
            retained,
        }
    }

    /// Last payload per topic (empty payloads remove the topic).
    pub fn current(&self) -> BTreeMap<String, Vec<u8>> {
        self.retained.lock().unwrap().clone()
    }

    pub fn messages(&self) -> Vec<(String, Vec<u8>, bool)> {
        self.seen.lock().unwrap().clone()
    }

    pub fn payloads_on(&self, topic: &str) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter(|(t, _, _)| t == topic)
            .map(|(_, p, _)| String::from_utf8_lossy(&p).into_owned())
            .collect()
    }

    pub async fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .await
            .unwrap();
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Like [`wait_for`] but returns `None` on timeout, so the caller can say
/// what it saw last.
pub async fn try_wait<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `check` every 20 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long [`call`] waits for a service call to return.
pub const CALL_WAIT: Duration = Duration::from_secs(15);

/// A service call as an automation makes it (`data`: a JSON object),
/// through the router (so the safety envelope applies), within
/// [`CALL_WAIT`].
pub async fn call(
    bridge: &Bridge,
    domain: &str,
    service: &str,
    entity_id: &str,
    data: serde_json::Value,
) -> Result<(), hearth::entity::ServiceError> {
    let serde_json::Value::Object(data) = data else {
        panic!("data must be an object")
    };
    let call = hearth::entity::ServiceCall::new(
        domain,
        service,
        entity_id,
        data,
        hearth::entity::CallSource::Internal,
    );
    tokio::time::timeout(CALL_WAIT, bridge.router.call(call))
        .await
        .unwrap_or_else(|_| {
            panic!("{domain}.{service} {entity_id}: no answer within {CALL_WAIT:?}")
        })
}

/// An entity's state in the bridge's store (`None`: no such entity).
pub fn state(bridge: &Bridge, entity_id: &str) -> Option<String> {
    bridge.store.get(entity_id).map(|s| s.state)
}

/// Until `entity_id` reads `want` (panics after `within`); how long it took.
pub async fn wait_state(
    bridge: &Bridge,
    entity_id: &str,
    want: &str,
    within: Duration,
) -> Duration {
    let t = Instant::now();
    let store = bridge.store.clone();
    wait_for(&format!("{entity_id} = {want}"), within, || {
        store.get(entity_id).filter(|s| s.state == want)
    })
    .await;
    t.elapsed()
}

/// `npm ci` in `dir` unless every path of `installed` (relative to `dir`,
/// e.g. `node_modules/ws/package.json`) is already there.
pub fn ensure_node_modules(dir: &std::path::Path, installed: &[&str]) {
    if installed.iter().all(|p| dir.join(p).exists()) {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running npm ci in {} (is npm installed?): {e}",
                dir.display()
            )
        });
    assert!(
        out.status.success(),
        "`npm ci` in {} failed ({}):\n{}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
