//! The dashboard in a real headless Chromium (issue 18, item 2): Debian's
//! `/usr/bin/chromium`, driven by puppeteer-core from
//! `tests/browser/run.mjs`, against the bridge and the server-room twin.
//!
//! The script signs in with an access token, watches the room temperature
//! change on the page without a reload, sets the AC's target, switches the
//! AC's power off, sets the climate mode to off, swaps the thermostat for
//! the custom strategy on the Controllers page and back to its own code
//! uploaded as a `.wasm` file, reads the Energy page's chart pixels and
//! the Weather page (outdoor temperature, icon, HP/HC period from the feed
//! twin), then screenshots every page in light and dark, on a desktop and
//! a phone (390×844) under `target/browser-shots/`. Each
//! time the page claims something happened, the script asks this test (one
//! JSON line on its stdout, the answer on its stdin) and the test checks
//! the bridge's store, the twin's AC and the plugin list itself. No console
//! error and no failed request is allowed on any page.
//!
//! Needs Node.js (with `npm ci` in tests/browser) and Chromium: `.ci/run`
//! installs both. With `CI=true` a missing one fails the test; otherwise
//! the test says why and passes without running.

use crate::common;

use common::{BrokerKind, Harness, try_wait};
use hearth::api::plugin_ops::{self, Op};
use hearth::clock::Clock;
use hearth::entity::StoreEvent;
use hearth::feeds::tariff_driver::{PERIOD_ENTITY, TariffConfig};
use hearth::feeds::weather_driver::{TEMPERATURE_ENTITY, WeatherConfig};
use hearth::twin::TwinOptions;
use hearth::twin::feeds_sim::{FeedSim, FeedSimConfig};
use serde_json::{Map, Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SENSOR: &str = "sensor.server_room_temperature";
const CLIMATE: &str = "climate.server_room_ac";
const AC_SWITCH: &str = "switch.server_room_ac_power";
/// Within the AC's envelope (16…30 °C), not the configured 24 °C, and
/// below the room: the thermostat keeps the AC running.
const TARGET: f64 = 22.0;
/// 300× real time: an hour of recorder statistics every 12 s, so the Energy
/// page has a few hours to chart within the run.
const SPEED: f64 = 300.0;
/// The simulated clock starts at the last 04:00 in Paris (the Energy page's
/// day) before now: the page's hourly chart then has 4 hours at zero and
/// the hours the run adds, and the run (≈ 5 simulated hours) never crosses
/// midnight, where "today" would start again with one point.
fn four_in_the_morning() -> i64 {
    let tz = hearth::feeds::tariff::europe_paris();
    let now = jiff::Timestamp::now().to_zoned(tz.clone());
    let at = |d: jiff::civil::Date| {
        d.at(4, 0, 0, 0)
            .to_zoned(tz.clone())
            .unwrap()
            .timestamp()
            .as_millisecond()
    };
    let today = at(now.date());
    if today <= now.timestamp().as_millisecond() {
        today
    } else {
        at(now.date().yesterday().unwrap())
    }
}

/// The thermostat's component as build.rs made it: the page uploads it.
const THERMOSTAT_WASM: &str = env!("HEARTH_PLUGIN_THERMOSTAT");

/// One temperature reading a wall second (300 simulated s at 300×): the
/// page must follow it, and a test can compare one value with the store's.
const TELEMETRY_S: u32 = 300;
/// The whole browser run (Chromium start, 9 scenarios, 24 screenshots).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a check waits for the bridge or the twin to show what the page did.
const CHECK_WAIT: Duration = Duration::from_secs(20);
const STEPS: [&str; 13] = [
    "sign_in",
    "live_temperature",
    "climate_target",
    "ac_switch_off",
    "hvac_off",
    "swap_custom_strategy",
    "swap_uploaded_wasm",
    "energy_chart",
    "weather_tariff",
    "theme_toggle",
    "screenshots",
    "no_console_errors",
    "no_failed_requests",
];
const CHECKS: [&str; 8] = [
    "live_value",
    "climate_target",
    "ac_running",
    "ac_switched_off",
    "hvac_off",
    "swapped",
    "uploaded",
    "weather",
];

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser")
}

/// `target/browser-shots` (the target directory is CARGO_TARGET_TMPDIR's parent).
pub(crate) fn shots_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("browser-shots")
}

pub(crate) fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Node and Chromium, or what is missing.
fn missing_tools() -> Option<String> {
    let mut missing = Vec::new();
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => missing.push(format!("`node --version` failed ({})", o.status)),
        Err(e) => missing.push(format!("node ({e})")),
    }
    let c = chromium();
    if !c.exists() {
        missing.push(format!("{} (not found)", c.display()));
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// False (with a message) when the tools are missing outside CI; panics in CI.
pub(crate) fn tools_or_skip(test: &str) -> bool {
    let Some(missing) = missing_tools() else {
        return true;
    };
    let why = format!(
        "{test} needs Node.js and Chromium; missing: {missing}. `apt-get install -y nodejs npm \
         chromium chromium-driver`, then `npm ci` in tests/browser (.ci/run does both)"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    false
}

/// A Node script in its own process group (Chromium dies with it), its
/// stdout as lines, its stdin for answers.
pub(crate) struct Script {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Script {
    pub(crate) fn spawn(script: &str, env: &[(&str, String)]) -> Script {
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .current_dir(browser_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawning node");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Script {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// The next stdout line; `Err` when `deadline` passes first, `Ok(None)` at its end.
    pub(crate) async fn next(&mut self, deadline: Instant) -> Result<Option<String>, ()> {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, self.lines.recv())
            .await
            .map_err(|_| ())
    }

    fn answer(&mut self, v: &Value) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{v}").and_then(|_| stdin.flush());
        }
    }

    /// Kills the script and its Chromium (its process group).
    fn kill(&mut self) {
        let pid = self.child.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Exit status (waits up to 20 s, then kills) and stderr.
    pub(crate) async fn finish(mut self) -> (String, String) {
        self.stdin.take();
        let status = try_wait(Duration::from_secs(20), || {
            self.child.try_wait().ok().flatten()
        })
        .await;
        let status = match status {
            Some(s) => s.to_string(),
            None => {
                self.kill();
                "killed after 20 s".into()
            }
        };
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        (status, stderr)
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// A change of one of the entities the checks look at.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    entity_id: String,
    state: String,
    target: Option<f64>,
    user: Option<String>,
}

/// The test's side of the scenarios.
struct Checks<'a> {
    h: &'a Harness,
    /// The access token's id: what the store records as the caller.
    user: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// IR commands and compressor changes before the AC was switched off.
    ir_mark: usize,
    compressor_mark: usize,
    switch_mark: usize,
}

impl Checks<'_> {
    fn seen_since(&self, mark: usize, entity_id: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen[mark.min(seen.len())..]
            .iter()
            .filter(|s| s.entity_id == entity_id)
            .cloned()
            .collect()
    }

    async fn run(&mut self, name: &str, data: &Value) -> Result<(), String> {
        match name {
            "live_value" => self.live_value(data),
            "climate_target" => self.climate_target(data).await,
            "ac_running" => self.ac_running().await,
            "ac_switched_off" => self.ac_switched_off().await,
            "hvac_off" => self.hvac_off().await,
            "swapped" => self.swapped(data).await,
            "uploaded" => self.uploaded(data).await,
            "weather" => self.weather(data),
            other => Err(format!("no check named {other}")),
        }
    }

    /// The value the page shows is one the store held in the last 5 s (the
    /// sensor changes every second), within the page's rounding; and the
    /// sensor did change during the run (it is live).
    fn live_value(&self, data: &Value) -> Result<(), String> {
        let shown = data["value"]
            .as_f64()
            .ok_or_else(|| format!("the page shows no number: {}", data["shown"]))?;
        let decimals = data["decimals"].as_u64().unwrap_or(0).min(6) as i32;
        let tolerance = 0.5 * 10f64.powi(-decimals) + 1e-9;
        let mut recent: Vec<(f64, String)> = self
            .seen_since(0, SENSOR)
            .into_iter()
            .filter(|s| s.at.elapsed() < Duration::from_secs(5))
            .map(|s| (s.at.elapsed().as_secs_f64(), s.state))
            .collect();
        let now = self.h.bridge().store.get(SENSOR).map(|s| s.state);
        if let Some(now) = &now {
            recent.push((0.0, now.clone()));
        }
        let changes = self.seen_since(0, SENSOR).len();
        if changes < 2 {
            return Err(format!("the store's {SENSOR} changed {changes} times"));
        }
        let matches = recent
            .iter()
            .filter_map(|(_, s)| s.parse::<f64>().ok())
            .any(|v| (v - shown).abs() <= tolerance);
        if matches {
            Ok(())
        } else {
            Err(format!(
                "the page shows {} ({shown}); the store held {recent:?} in the last 5 s",
                data["shown"]
            ))
        }
    }

    /// The store's climate entity has the target the page set, and the
    /// change carries the page's token as its user.
    async fn climate_target(&self, data: &Value) -> Result<(), String> {
        let want = data["target"].as_f64().unwrap_or(TARGET);
        let user = Some(self.user.clone());
        try_wait(CHECK_WAIT, || {
            self.seen_since(0, CLIMATE)
                .into_iter()
                .find(|s| s.target == Some(want) && s.user == user)
        })
        .await
        .map(|_| ())
        .ok_or_else(|| {
            format!(
                "no change of {CLIMATE} to target {want} by the page's token; now: {:?}",
                self.h
                    .bridge()
                    .store
                    .get(CLIMATE)
                    .map(|s| (s.state, s.attributes.get("temperature").cloned()))
            )
        })
    }

    /// The twin's AC runs (the thermostat switched it on); marks the logs.
    async fn ac_running(&mut self) -> Result<(), String> {
        let twin = &self.h.twin;
        try_wait(Duration::from_secs(40), || {
            let s = twin.snapshot();
            (s.ac.power && s.ac.compressor_running).then_some(())
        })
        .await
        .ok_or_else(|| format!("the twin's AC never ran: {:?}", twin.snapshot().ac))?;
        try_wait(CHECK_WAIT, || {
            (common::state(self.h.bridge(), AC_SWITCH).as_deref() == Some("on")).then_some(())
        })
        .await
        .ok_or_else(|| format!("{AC_SWITCH} is not on in the store"))?;
        self.ir_mark = twin.ir_command_count();
        self.compressor_mark = twin.compressor_events().len();
        self.switch_mark = self.seen.lock().unwrap().len();
        Ok(())
    }

    /// The page's click reached the twin: an IR "Power Off" after the mark,
    /// the compressor stopped, the switch went off in the store by the
    /// page's token. (The thermostat may start the AC again 180 simulated
    /// s later, 0.6 s here: the twin's logs are read, not its present.)
    async fn ac_switched_off(&self) -> Result<(), String> {
        let twin = &self.h.twin;
        let user = Some(self.user.clone());
        let by_page = try_wait(CHECK_WAIT, || {
            self.seen_since(self.switch_mark, AC_SWITCH)
                .into_iter()
                .find(|s| s.state == "off" && s.user == user)
        })
        .await;
        if by_page.is_none() {
            return Err(format!(
                "{AC_SWITCH} did not go off by the page's token; changes since: {:?}",
                self.seen_since(self.switch_mark, AC_SWITCH)
            ));
        }
        try_wait(CHECK_WAIT, || {
            let ir = twin.ir_commands();
            let off = ir[self.ir_mark.min(ir.len())..]
                .iter()
                .any(|(_, c)| c["Power"] == "Off");
            let stops = twin.compressor_events();
            let stopped = stops[self.compressor_mark.min(stops.len())..]
                .iter()
                .any(|(_, running)| !running);
            (off && stopped).then_some(())
        })
        .await
        .ok_or_else(|| {
            format!(
                "the twin's AC did not stop: IR since {:?}, compressor since {:?}",
                &twin.ir_commands()[self.ir_mark..],
                &twin.compressor_events()[self.compressor_mark..]
            )
        })
    }

    /// Mode off from the page: the store's climate is off (by the page's
    /// token), the twin's AC is off and stays off (the thermostat leaves it).
    async fn hvac_off(&self) -> Result<(), String> {
        let user = Some(self.user.clone());
        try_wait(CHECK_WAIT, || {
            self.seen_since(0, CLIMATE)
                .into_iter()
                .find(|s| s.state == "off" && s.user == user)
        })
        .await
        .ok_or_else(|| {
            format!(
                "{CLIMATE} did not go off by the page's token: {:?}",
                common::state(self.h.bridge(), CLIMATE)
            )
        })?;
        let twin = &self.h.twin;
        let off = || {
            let s = twin.snapshot();
            (!s.ac.power && !s.ac.compressor_running).then_some(())
        };
        try_wait(CHECK_WAIT, off)
            .await
            .ok_or_else(|| format!("the twin's AC is still on: {:?}", twin.snapshot().ac))?;
        // 2 s here is 10 simulated minutes: past the thermostat's keep-alive.
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            if off().is_none() {
                return Err(format!(
                    "the twin's AC came back on with the mode off: {:?}",
                    twin.snapshot().ac
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The thermostat instance runs the file the page uploaded: a path under
    /// `<data_dir>/uploads/` holding the same bytes, the thermostat's own
    /// code again, running.
    async fn uploaded(&self, data: &Value) -> Result<(), String> {
        let shown = data["wasm"].as_str().unwrap_or_default();
        let list = plugin_ops::run(self.h.bridge().plugins.clone(), Op::List, Map::new())
            .await
            .map_err(|e| format!("hearth/plugins/list failed: {e:?}"))?;
        let entry = list
            .as_array()
            .and_then(|l| l.iter().find(|p| p["name"] == "thermostat"))
            .ok_or_else(|| format!("no thermostat instance in {list}"))?;
        let wasm = entry["wasm"].as_str().unwrap_or_default();
        if wasm != shown || entry["plugin"] != "thermostat" || entry["status"] != "running" {
            return Err(format!(
                "hearth/plugins/list: thermostat runs {wasm} ({}), status {}; the page shows {shown}",
                entry["plugin"], entry["status"]
            ));
        }
        let path = Path::new(wasm);
        let uploads = self.h.data_dir.path().join("uploads");
        if path.parent() != Some(uploads.as_path()) {
            return Err(format!("{wasm} is not in {}", uploads.display()));
        }
        let stored = std::fs::read(path).map_err(|e| format!("{wasm}: {e}"))?;
        let sent = std::fs::read(THERMOSTAT_WASM).map_err(|e| format!("{THERMOSTAT_WASM}: {e}"))?;
        if stored != sent {
            return Err(format!(
                "{wasm} ({} bytes) is not the file the page sent ({} bytes)",
                stored.len(),
                sent.len()
            ));
        }
        Ok(())
    }

    /// The Weather page's outdoor temperature is the weather entity's (now
    /// or in the last 15 s: it changes every simulated hour, 12 s here),
    /// within the page's rounding; its HP/HC badge is the tariff period's.
    fn weather(&self, data: &Value) -> Result<(), String> {
        let shown = data["value"]
            .as_f64()
            .ok_or_else(|| format!("no outdoor temperature shown: {}", data["shown"]))?;
        let decimals = data["decimals"].as_u64().unwrap_or(0).min(6) as i32;
        let tolerance = 0.5 * 10f64.powi(-decimals) + 1e-9;
        let recent = |entity: &str| {
            let mut v: Vec<String> = self
                .seen_since(0, entity)
                .into_iter()
                .filter(|s| s.at.elapsed() < Duration::from_secs(15))
                .map(|s| s.state)
                .collect();
            v.extend(self.h.bridge().store.get(entity).map(|s| s.state));
            v
        };
        let temps = recent(TEMPERATURE_ENTITY);
        if !temps
            .iter()
            .filter_map(|s| s.parse::<f64>().ok())
            .any(|v| (v - shown).abs() <= tolerance)
        {
            return Err(format!(
                "the page shows {} ({shown}); {TEMPERATURE_ENTITY} was {temps:?}",
                data["shown"]
            ));
        }
        let periods = recent(PERIOD_ENTITY);
        let period = data["period"].as_str().unwrap_or_default();
        if !periods.iter().any(|p| p == period) {
            return Err(format!(
                "the page shows period {period:?}; {PERIOD_ENTITY} was {periods:?}"
            ));
        }
        Ok(())
    }

    /// `hearth/plugins/list` (the same operation the WebSocket command runs)
    /// reports the thermostat instance running the custom strategy.
    async fn swapped(&self, data: &Value) -> Result<(), String> {
        let wasm = data["wasm"].as_str().unwrap_or_default().to_owned();
        if !wasm.contains("custom-strategy") {
            return Err(format!("the page swapped in {wasm}"));
        }
        let list = plugin_ops::run(self.h.bridge().plugins.clone(), Op::List, Map::new())
            .await
            .map_err(|e| format!("hearth/plugins/list failed: {e:?}"))?;
        let entry = list
            .as_array()
            .and_then(|l| l.iter().find(|p| p["name"] == "thermostat"))
            .ok_or_else(|| format!("no thermostat instance in {list}"))?;
        // examples/custom-strategy describes itself as `pi-strategy`.
        if entry["wasm"] == wasm.as_str()
            && entry["plugin"] == "pi-strategy"
            && entry["status"] == "running"
        {
            Ok(())
        } else {
            Err(format!(
                "hearth/plugins/list: thermostat runs {} ({}), status {}",
                entry["wasm"], entry["plugin"], entry["status"]
            ))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_headless_chromium() {
    if !tools_or_skip("browser::the_dashboard_in_headless_chromium") {
        return;
    }
    tokio::task::spawn_blocking(|| {
        common::ensure_node_modules(
            &browser_dir(),
            &["node_modules/puppeteer-core/package.json"],
        )
    })
    .await
    .unwrap();

    let twin = TwinOptions {
        telemetry_interval_s: TELEMETRY_S,
        ..Default::default()
    };
    // Weather (Open-Meteo) and a Tempo tariff from the feed twin, so the
    // Weather page and the Energy page's tariff periods have something to show.
    let clock = Clock::simulated_from(four_in_the_morning(), SPEED);
    let (feeds_stop, feeds_shutdown) = hearth::shutdown::channel();
    let feeds =
        FeedSim::spawn(clock, FeedSimConfig::default(), feeds_shutdown).expect("feed twin starts");
    let weather: WeatherConfig = toml::from_str(&format!(
        "latitude = 48.86\nlongitude = 2.34\nurl = \"{}\"",
        feeds.open_meteo_url()
    ))
    .unwrap();
    let tariff: TariffConfig = toml::from_str(&format!(
        "kind = \"tempo\"\nsource = \"couleur-tempo\"\nurl = \"{}\"",
        feeds.couleur_tempo_url()
    ))
    .unwrap();
    let h = Harness::start_on(BrokerKind::Embedded, clock, twin, |c| {
        c.weather = Some(weather);
        c.tariff = Some(tariff);
    })
    .await;
    let (record, secret) =
        hearth::api::auth::tokens::create(h.data_dir.path(), "browser test").unwrap();

    // Every change of the entities the checks look at, from the start.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (_, mut changes) = h.bridge().store.subscribe();
    let recorder = tokio::spawn({
        let seen = seen.clone();
        async move {
            while let Some(ev) = changes.recv().await {
                let StoreEvent::StateChanged(sc) = ev else {
                    continue;
                };
                if ![
                    SENSOR,
                    CLIMATE,
                    AC_SWITCH,
                    TEMPERATURE_ENTITY,
                    PERIOD_ENTITY,
                ]
                .contains(&sc.entity_id.as_str())
                {
                    continue;
                }
                let Some(new) = &sc.new_state else { continue };
                seen.lock().unwrap().push(Seen {
                    at: Instant::now(),
                    entity_id: sc.entity_id.clone(),
                    state: new.state.clone(),
                    target: new.attributes.get("temperature").and_then(Value::as_f64),
                    user: new.context.user_id.clone(),
                });
            }
        }
    });

    let shots = shots_dir();
    if let Ok(dir) = std::fs::read_dir(&shots) {
        for f in dir.flatten() {
            if f.path().extension().is_some_and(|e| e == "png") {
                let _ = std::fs::remove_file(f.path());
            }
        }
    }
    let mut script = Script::spawn(
        "run.mjs",
        &[
            ("HEARTH_URL", format!("http://{}", h.bridge().http_addr)),
            ("HEARTH_TOKEN", secret.clone()),
            ("HEARTH_SHOTS", shots.display().to_string()),
            ("HEARTH_CHECKS", "stdin".into()),
            ("HEARTH_TARGET", TARGET.to_string()),
            ("HEARTH_UPLOAD_WASM", THERMOSTAT_WASM.to_string()),
            ("CHROMIUM", chromium().display().to_string()),
            (
                "HEARTH_RUN_TIMEOUT_MS",
                (RUN_TIMEOUT.as_millis() - 10_000).to_string(),
            ),
        ],
    );

    let mut checks = Checks {
        h: &h,
        user: record.id.clone(),
        seen: seen.clone(),
        ir_mark: 0,
        compressor_mark: 0,
        switch_mark: 0,
    };
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut result = None;
    let mut checked = Vec::new();
    let mut transcript = String::new();
    loop {
        let line = match script.next(deadline).await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(()) => {
                let (status, stderr) = script.finish().await;
                panic!(
                    "run.mjs did not finish within {RUN_TIMEOUT:?} ({status}):\n{transcript}\n--- stderr\n{stderr}"
                );
            }
        };
        transcript.push_str(&line);
        transcript.push('\n');
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            println!("run.mjs: {line}");
            continue;
        };
        if let Some(name) = msg["check"].as_str() {
            let answer = match checks.run(name, &msg).await {
                Ok(()) => json!({"ok": true}),
                Err(why) => json!({"ok": false, "why": why}),
            };
            println!("check {name}: {answer}");
            checked.push((name.to_owned(), answer["ok"] == true));
            script.answer(&answer);
        } else if msg.get("result").is_some() {
            result = Some(msg["result"].clone());
        } else {
            println!("{line}");
        }
    }
    let (status, stderr) = script.finish().await;
    recorder.abort();

    let result = result.unwrap_or_else(|| {
        panic!("run.mjs gave no result ({status}):\n{transcript}\n--- stderr\n{stderr}")
    });
    println!("screenshots: {}", shots.display());
    let steps = result["steps"].as_array().cloned().unwrap_or_default();
    let failed: Vec<String> = STEPS
        .iter()
        .filter_map(|name| match steps.iter().find(|s| s["step"] == *name) {
            Some(s) if s["ok"] == true => None,
            Some(s) => Some(format!("{name}: {}", s["error"])),
            None => Some(format!("{name}: not run")),
        })
        .chain(
            steps
                .iter()
                .filter(|s| s["ok"] != true && !STEPS.contains(&s["step"].as_str().unwrap_or("")))
                .map(|s| format!("{}: {}", s["step"], s["error"])),
        )
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} browser scenarios failed ({status}):\n{}\n--- stderr\n{stderr}",
        failed.len(),
        STEPS.len(),
        failed.join("\n")
    );
    assert!(status.contains("exit status: 0"), "run.mjs: {status}");
    // Every check was made here, on the bridge's side, and passed.
    for name in CHECKS {
        assert!(
            checked.iter().any(|(n, ok)| n == name && *ok),
            "the test never confirmed `{name}`: {checked:?}"
        );
    }
    // Sign-in and five pages, two themes, two viewports: each a PNG.
    let files = result["shots"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 24, "{files:?}");
    for f in &files {
        let path = Path::new(f.as_str().unwrap());
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            bytes.len() > 1000 && bytes.starts_with(b"\x89PNG"),
            "{} is not a screenshot",
            path.display()
        );
    }
    h.stop().await;
    feeds_stop.trigger();
}
