//! Home Assistant's own JavaScript client, home-assistant-js-websocket,
//! unchanged, scripts the bridge: `examples/scripting/node/server-room.mjs
//! --check` authenticates with a long-lived token, reads the states,
//! follows `subscribe_entities`, calls `climate.set_temperature` and waits
//! until the climate entity shows the new target. Needs Node.js and npm
//! (`.ci/run` installs them and runs `npm ci` in that directory).

use crate::common;

use common::{BrokerKind, Harness, wait_for};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CLIMATE: &str = "climate.server_room_ac";
const SENSOR: &str = "sensor.server_room_temperature";
/// Within the AC's envelope (16…30 °C) and not the configured 24 °C.
const TARGET: f64 = 22.0;

pub(crate) fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scripting/node")
}

fn require_tool(name: &str) {
    match Command::new(name).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`{name} --version` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "{name} is needed by this test ({e}): `apt-get install -y nodejs npm`, then \
             `npm ci` in examples/scripting/node (.ci/run does both)"
        ),
    }
}

/// `npm ci` once if the example's dependencies are not installed.
pub(crate) fn ensure_node_modules(dir: &Path) {
    require_tool("node");
    common::ensure_node_modules(
        dir,
        &[
            "node_modules/home-assistant-js-websocket/package.json",
            "node_modules/ws/package.json",
        ],
    );
}

pub(crate) struct Run {
    pub(crate) success: bool,
    pub(crate) status: String,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs a command to completion, killing it after `timeout`.
impl Run {
    /// What `server-room.mjs --check` found: the last JSON line of a run
    /// that succeeded (panics naming `what` and the output otherwise).
    pub(crate) fn check_result(&self, what: &str) -> Value {
        assert!(
            self.success,
            "{what} failed ({}):\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        );
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON line in {what}'s output:\n{}", self.stdout));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }
}

pub(crate) async fn run(mut cmd: Command, timeout: Duration) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning node");
    // Pipes are drained on threads so a chatty child cannot block on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for node") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    Run {
        success: status.is_some_and(|s| s.success()),
        status: status.map_or_else(|| format!("killed after {timeout:?}"), |s| s.to_string()),
        stdout,
        stderr,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_js_websocket_sets_the_ac_target() {
    let dir = node_dir();
    tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || ensure_node_modules(&dir)
    })
    .await
    .unwrap();

    let h = Harness::start(BrokerKind::Embedded, 60.0, |_| {}).await;
    let (record, secret) =
        hearth::api::auth::tokens::create(h.data_dir.path(), "scripting test").unwrap();
    let before = wait_for("the AC's climate entity", Duration::from_secs(10), || {
        h.bridge().store.get(CLIMATE)
    })
    .await;
    assert_ne!(
        before.attributes["temperature"].as_f64(),
        Some(TARGET),
        "the AC must not start at the target the script sets"
    );

    // Every change the store announces from here on, to find the one the
    // script's call caused.
    let (_, mut changes) = h.bridge().store.subscribe();

    let mut node = Command::new("node");
    node.arg("server-room.mjs")
        .args([
            "--check",
            "--target",
            &TARGET.to_string(),
            "--timeout",
            "20",
        ])
        .current_dir(&dir)
        .env("HEARTH_URL", format!("http://{}", h.bridge().http_addr))
        .env("HEARTH_TOKEN", &secret);
    let out = run(node, Duration::from_secs(40)).await;
    let seen = out.check_result("server-room.mjs --check");
    println!("{}", out.stdout.trim_end());

    assert_eq!(seen["ha_version"], "2025.1.0");
    let states = seen["states"].as_u64().expect("states count");
    assert!(states >= 3, "get_states returned {states} entities");
    assert_eq!(seen["temperature_entity"], SENSOR);
    let room: f64 = seen["temperature"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("room temperature is not a number: {}", seen["temperature"]));
    assert!((10.0..45.0).contains(&room), "room at {room} °C");
    assert_eq!(seen["unit"], "°C");
    assert_eq!(seen["climate_entity"], CLIMATE);
    assert_eq!(
        seen["target_before"].as_f64(),
        before.attributes["temperature"].as_f64()
    );
    assert_eq!(seen["target_seen"].as_f64(), Some(TARGET));

    // The bridge's own store holds the new target.
    let after = h.bridge().store.get(CLIMATE).unwrap();
    assert_eq!(after.attributes["temperature"].as_f64(), Some(TARGET));
    // The change to it carries the script's call as its context, with the
    // token as its user, in the store and as the script saw it.
    let mut caused = None;
    while let Ok(ev) = changes.try_recv() {
        if let hearth::entity::StoreEvent::StateChanged(sc) = ev {
            let new = sc.new_state.as_ref().filter(|_| sc.entity_id == CLIMATE);
            let target =
                |s: &hearth::entity::State| s.attributes.get("temperature").and_then(Value::as_f64);
            if let Some(new) = new.filter(|n| target(n) == Some(TARGET))
                && sc.old_state.as_ref().and_then(target) != Some(TARGET)
            {
                caused = Some(new.context.clone());
            }
        }
    }
    let caused = caused.expect("the store announced the climate's change to the new target");
    assert_eq!(seen["call_context"].as_str(), Some(caused.id.as_str()));
    assert_eq!(seen["state_context"], seen["call_context"]);
    assert_eq!(caused.user_id.as_deref(), Some(record.id.as_str()));

    h.stop().await;
}
