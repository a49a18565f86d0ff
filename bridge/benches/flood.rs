//! Memory under a sustained MQTT flood (`cargo bench --bench flood`):
//! the bridge and its embedded broker in this process, fed by one MQTT
//! client as fast as a given rate, while a sampler reads this process's
//! resident set (`VmRSS` of `/proc/self/status`) every 2 s. Phases:
//!
//! 1. **telemetry**: an announced node's telemetry (the payload the ESP32
//!    firmware and the twin's `node_sim` send, QoS 0), each a new reading;
//! 2. **rejected**: 200 KB payloads on `hearth-node/<id>/telemetry` of a
//!    node that never announced, each refused by the driver;
//! 3. **idle**: nothing, to see what is given back.
//!
//! For each phase it prints the RSS at its start, its peak and its end, the
//! messages sent and the rate reached (the client waits when the broker's
//! socket is full, so on a small machine the 200 KB phase runs below the
//! asked rate: it is then bounded by what the machine can move).
//!
//! Environment: `HEARTH_FLOOD_SECS` (per flood phase, default 600),
//! `HEARTH_FLOOD_RATE` (messages/s, default 10 000),
//! `HEARTH_FLOOD_BIG_BYTES` (default 200 000), `HEARTH_FLOOD_IDLE_SECS`
//! (default 30).

use hearth::app::Bridge;
use hearth::broker::{BrokerAddress, EmbeddedBroker};
use hearth::clock::Clock;
use hearth::config::Config;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const NODE: &str = "flood-node";
const STRANGER: &str = "flood-stranger";
/// RSS sampling period.
const SAMPLE: Duration = Duration::from_secs(2);
/// A line with the current RSS every this many samples (the trend: a leak
/// climbs steadily, a bound levels off).
const TREND_EVERY: u32 = 15;
/// Messages sent per pacing step (every `BURST / rate` s).
const BURST: u64 = 100;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            eprintln!("{name}=`{v}` is not a whole number; using {default}");
            default
        }),
        Err(_) => default,
    }
}

/// This process's resident set, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// RSS samples of one phase.
#[derive(Default)]
struct Phase {
    start: u64,
    peak: u64,
    end: u64,
}

/// Samples the RSS every [`SAMPLE`] while `running`, into `peak`.
fn sampler(running: Arc<AtomicBool>, peak: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let t = Instant::now();
        let mut n = 0u32;
        while running.load(Ordering::Relaxed) {
            let now = rss_kib();
            peak.fetch_max(now, Ordering::Relaxed);
            if n > 0 && n.is_multiple_of(TREND_EVERY) {
                println!(
                    "          {:>4.0} s: RSS {:.1} MiB",
                    t.elapsed().as_secs_f64(),
                    mib(now)
                );
            }
            n += 1;
            std::thread::sleep(SAMPLE);
        }
    })
}

/// Runs `body` while sampling; returns its RSS figures.
async fn measured<F: std::future::Future<Output = u64>>(name: &str, secs: u64, body: F) -> Phase {
    let start = rss_kib();
    let running = Arc::new(AtomicBool::new(true));
    let peak = Arc::new(AtomicU64::new(start));
    let thread = sampler(running.clone(), peak.clone());
    let t = Instant::now();
    let sent = body.await;
    let elapsed = t.elapsed().as_secs_f64();
    running.store(false, Ordering::Relaxed);
    let _ = thread.join();
    let end = rss_kib();
    let phase = Phase {
        start,
        peak: peak.load(Ordering::Relaxed).max(end),
        end,
    };
    let rate = if sent > 0 {
        format!(", {sent} messages at {:.0}/s", sent as f64 / elapsed)
    } else {
        String::new()
    };
    println!(
        "{name:>9} ({secs} s{rate}): RSS start {:.1} MiB, peak {:.1} MiB, end {:.1} MiB",
        mib(phase.start),
        mib(phase.peak),
        mib(phase.end)
    );
    phase
}

/// Publishes `payload(i)` on `topic` at `rate` messages/s for `secs`,
/// QoS 0 (as nodes send telemetry); returns the number sent.
async fn flood(
    client: &AsyncClient,
    topic: &str,
    rate: u64,
    secs: u64,
    payload: impl Fn(u64) -> Vec<u8>,
) -> u64 {
    let step = Duration::from_secs_f64(BURST as f64 / rate.max(1) as f64);
    let until = Instant::now() + Duration::from_secs(secs);
    let mut next = Instant::now();
    let mut sent = 0;
    while Instant::now() < until {
        for _ in 0..BURST {
            if client
                .publish(topic, QoS::AtMostOnce, false, payload(sent))
                .await
                .is_err()
            {
                return sent;
            }
            sent += 1;
        }
        next += step;
        let now = Instant::now();
        if next > now {
            tokio::time::sleep(next - now).await;
        } else {
            next = now; // behind: go on at the pace the socket allows
        }
    }
    sent
}

fn main() {
    // As `hearth` does at start (HEARTH_FLOOD_GLIBC_DEFAULT=1 skips it, to
    // compare with glibc's dynamic threshold).
    if std::env::var_os("HEARTH_FLOOD_GLIBC_DEFAULT").is_none() {
        hearth::broker::allocator::give_large_buffers_back();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let secs = env_u64("HEARTH_FLOOD_SECS", 600);
    let rate = env_u64("HEARTH_FLOOD_RATE", 10_000);
    let big = env_u64("HEARTH_FLOOD_BIG_BYTES", 200_000) as usize;
    let idle = env_u64("HEARTH_FLOOD_IDLE_SECS", 30);
    println!(
        "machine: {} cores; flood {secs} s per phase at {rate} messages/s; rejected payloads {big} B",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let before_start = rss_kib();

    let broker = EmbeddedBroker::start(
        std::net::Ipv4Addr::LOCALHOST.into(),
        EmbeddedBroker::free_port(),
    )
    .unwrap();
    let addr = BrokerAddress::local(broker.addr.port());
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", addr.port));
    config.http.port = 0;
    config.data_dir = Some(data_dir.path().to_path_buf());
    let bridge = Bridge::start(config, Clock::real()).await.unwrap();

    // The flooding node: one MQTT client, announced like the firmware does.
    let mut opts = MqttOptions::new("flood-node", &addr.host, addr.port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    opts.set_keep_alive(Duration::from_secs(60));
    // A short request queue: the flooding client's own backlog (up to
    // capacity × 200 KB) is in this process's RSS too.
    let (client, mut eventloop) = AsyncClient::new(opts, 8);
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Disconnect)) => break,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("flood client: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    let announce = format!(
        r#"{{"id":"{NODE}","name":"Flood","model":"ESP32-C3 sensor node (bench)","sw_version":"0","sensors":["temperature","humidity","rssi","uptime"],"interval_s":1}}"#
    );
    client
        .publish(
            format!("hearth-node/{NODE}/announce"),
            QoS::AtLeastOnce,
            true,
            announce,
        )
        .await
        .unwrap();
    let node_entity = format!("sensor.{}_temperature", NODE.replace('-', "_"));
    while bridge.store.spec(&node_entity).is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "RSS before the bridge {:.1} MiB; bridge running, node announced: {:.1} MiB",
        mib(before_start),
        mib(rss_kib())
    );

    let telemetry_topic = format!("hearth-node/{NODE}/telemetry");
    let telemetry = measured(
        "telemetry",
        secs,
        flood(&client, &telemetry_topic, rate, secs, |i| {
            // Each a new reading at the driver's 0.01 °C resolution.
            let t = 15.0 + (i % 1500) as f64 * 0.01;
            format!(
                r#"{{"temperature":{t:.2},"humidity":40.5,"rssi":-61,"uptime":{}}}"#,
                i / 10
            )
            .into_bytes()
        }),
    )
    .await;
    let last = bridge.store.get(&node_entity).map(|s| s.state.clone());
    println!("          last temperature state in the store: {last:?}");

    let stranger_topic = format!("hearth-node/{STRANGER}/telemetry");
    let payload = vec![b'x'; big];
    let rejected = measured(
        "rejected",
        secs,
        flood(&client, &stranger_topic, rate, secs, |_| payload.clone()),
    )
    .await;

    let idle_phase = measured("idle", idle, async {
        tokio::time::sleep(Duration::from_secs(idle)).await;
        0
    })
    .await;

    let peak = telemetry.peak.max(rejected.peak).max(idle_phase.peak);
    println!(
        "bound: peak RSS {:.1} MiB over the whole run; growth during the rejected flood {:+.1} MiB (start → end)",
        mib(peak),
        mib(rejected.end) - mib(rejected.start)
    );
    bridge.stop().await;
}
