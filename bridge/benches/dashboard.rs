//! The dashboard's first load in headless Chromium (`cargo bench -p hearth
//! --bench dashboard`): the bridge (release build) with the server-room twin
//! at real time, as `hearth demo` runs it, an access token, and
//! `tests/browser/bench.mjs` (puppeteer-core driving Debian's
//! `/usr/bin/chromium`), which loads the page 5 times in fresh browser
//! contexts with the token already stored and prints, per run, the bytes
//! transferred (gzip as served, from the DevTools protocol's Network
//! events) and the time from navigation to the first live value shown.
//! Needs Node.js, `npm ci` in tests/browser, and Chromium.

use hearth::app::Bridge;
use hearth::broker::{BrokerAddress, EmbeddedBroker};
use hearth::clock::Clock;
use hearth::twin::{ServerRoomTwin, TwinOptions};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SENSOR: &str = "sensor.server_room_temperature";
const RUNS: u32 = 5;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    rt.block_on(run());
}

async fn run() {
    let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser");
    assert!(
        browser.join("node_modules/puppeteer-core").exists(),
        "run `npm ci` in {} first",
        browser.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} not found: apt-get install chromium"
    );

    let dir = tempfile::tempdir().unwrap();
    let broker = EmbeddedBroker::start(
        std::net::Ipv4Addr::LOCALHOST.into(),
        EmbeddedBroker::free_port(),
    )
    .unwrap();
    let addr = BrokerAddress::local(broker.addr.port());
    let clock = Clock::simulated(1.0);
    let (twin_stop, twin_shutdown) = hearth::shutdown::channel();
    let twin = ServerRoomTwin::start(
        clock,
        &addr.host,
        addr.port,
        TwinOptions::default(),
        twin_shutdown,
    )
    .await
    .expect("twin starts");
    let mut config = hearth::demo::scenario_config(&addr, &twin.shelly_url(), Some(0)).unwrap();
    config.data_dir = Some(dir.path().to_path_buf());
    let bridge = Bridge::start(config, clock).await.expect("bridge starts");
    let (_, token) = hearth::api::auth::tokens::create(dir.path(), "bench").unwrap();

    // The page's first live value is the store's: wait until there is one.
    let deadline = Instant::now() + Duration::from_secs(60);
    while bridge
        .store
        .get(SENSOR)
        .is_none_or(|s| s.state.parse::<f64>().is_err())
    {
        assert!(
            Instant::now() < deadline,
            "{SENSOR} has no value after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut node = Command::new("node")
        .args(["bench.mjs", "--runs", &RUNS.to_string()])
        .current_dir(&browser)
        .env("HEARTH_URL", format!("http://{}", bridge.http_addr))
        .env("HEARTH_TOKEN", &token)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .spawn()
        .expect("running node");
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(s) = node.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = node.kill();
            let _ = node.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    bridge.stop().await;
    twin_stop.trigger();
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("bench.mjs failed: {s}"),
        None => panic!("bench.mjs did not finish within 600 s"),
    }
}
