//! Devices found on the network by themselves (issue 17, item 6): a twin
//! Shelly Plus Plug S announced over mDNS on loopback is listed as pending
//! (retained MQTT topic and WebSocket), adopted with the MQTT request, then
//! driven like a configured plug: its entities in Home Assistant discovery,
//! its state from the twin, its table in the config file with the file's
//! comments intact. Unknown ids and configured devices are refused/never
//! listed.

use crate::common;

use common::history::Ws;
use common::{Observer, try_wait, wait_for};
use hearth::app::Bridge;
use hearth::broker::EmbeddedBroker;
use hearth::clock::Clock;
use hearth::config::Config;
use hearth::shutdown;
use hearth::twin::mdns_sim;
use serde_json::{Value, json};
use std::time::Duration;

/// mDNS answers come within a second on loopback; the plug's probe and
/// first poll within a few more. Generous for a loaded 2-core CI machine.
const WAIT: Duration = Duration::from_secs(30);
const PENDING: &str = "hearth/bridge/devices/pending";
const ADOPT: &str = "hearth/bridge/request/device/adopt";
const ADOPTED: &str = "hearth/bridge/response/device/adopt";

/// The user's file: every line of it must still be there after adoption.
fn config_text(configured_url: &str) -> String {
    format!(
        r#"# Home office (written by hand: these comments must survive adoption)
[homeassistant]
discovery = "entity"   # one config per entity, HA before 2024.11

# Found devices are listed, not driven, until adopted.
[lan_discovery]
enabled = true
broadlink = false      # no Broadlink here

# The plug under the desk lamp, configured by hand.
[[shelly]]
id = "lamp"
name = "Lamp"
url = "{configured_url}"
poll_interval_s = 1.0
"#
    )
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["id"].as_str().map(str::to_string))
        .collect()
}

fn entry_of(list: &Value, id: &str) -> Value {
    list.as_array()
        .into_iter()
        .flatten()
        .find(|d| d["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no `{id}` in {list}"))
}

fn retained_json(obs: &Observer, topic: &str) -> Option<Value> {
    obs.current()
        .get(topic)
        .and_then(|p| serde_json::from_slice(p).ok())
}

/// The answer on the adopt response topic carrying `transaction`.
async fn answer(obs: &Observer, transaction: &str) -> Value {
    wait_for(&format!("adopt answer {transaction}"), WAIT, || {
        obs.payloads_on(ADOPTED)
            .iter()
            .filter_map(|p| serde_json::from_str::<Value>(p).ok())
            .find(|v| v["transaction"] == transaction)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shelly_announced_on_loopback_is_pending_then_adopted_over_mqtt() {
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (twin_stop, twin_off) = shutdown::channel();
    let clock = Clock::real();
    // Found and adopted: a Plus Plug S nobody configured.
    let plug = mdns_sim::start_plus_plug(clock, "a8032ab1c2d3", "Desk plug", twin_off.clone())
        .expect("twin plug starts");
    // Announced too, but already in the config: never pending.
    let lamp = mdns_sim::start_plus_plug(clock, "a8032ab1c2ff", "Lamp", twin_off)
        .expect("second twin plug starts");
    let original = config_text(&format!("http://{}", lamp.http));
    let path = dir.path().join("hearth.toml");
    std::fs::write(&path, &original).unwrap();

    let mut config = Config::load(&path).unwrap();
    config.mqtt.port = EmbeddedBroker::free_port();
    config.http.port = 0;
    config.data_dir = Some(dir.path().join("data"));
    let bridge = Bridge::start(config, clock).await.expect("bridge starts");
    let obs = Observer::connect(&bridge.broker, "#").await;

    // Pending, retained over MQTT, with what the probe learnt.
    let list = wait_for(
        "the plug listed on the retained pending topic",
        WAIT,
        || retained_json(&obs, PENDING).filter(|l| ids(l).contains(&plug.id)),
    )
    .await;
    let entry = entry_of(&list, &plug.id);
    assert_eq!(entry["kind"], "shelly", "{entry}");
    assert_eq!(entry["address"], plug.http.to_string(), "{entry}");
    assert_eq!(entry["model"], hearth::twin::shelly_sim::MODEL, "{entry}");
    assert_eq!(entry["mac"], "a8032ab1c2d3", "{entry}");
    assert_eq!(entry["found_by"], "mdns", "{entry}");
    // Both plugs answer the same mDNS queries; give the configured one
    // the same time again to (wrongly) show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = retained_json(&obs, PENDING).unwrap();
    assert!(
        !ids(&now).contains(&lamp.id),
        "configured plug listed: {now}"
    );

    // The same list over the WebSocket API.
    let (_, token) = hearth::api::auth::tokens::create(&dir.path().join("data"), "lan").unwrap();
    let mut ws = Ws::auth(bridge.http_addr, &token).await;
    let r = ws.call(json!({"type": "hearth/devices/pending"})).await;
    assert_eq!(r["success"], true, "{r}");
    assert!(ids(&r["result"]).contains(&plug.id), "{r}");
    assert!(!ids(&r["result"]).contains(&lamp.id), "{r}");

    // An unknown id is refused, over MQTT and the WebSocket API.
    obs.publish(
        ADOPT,
        r#"{"id": "shellyplug-s-000000", "transaction": "unknown"}"#,
    )
    .await;
    let a = answer(&obs, "unknown").await;
    assert_eq!(a["status"], "error", "{a}");
    let e = a["error"].as_str().unwrap();
    assert!(e.contains("no pending device `shellyplug-s-000000`"), "{a}");
    let r = ws
        .call(json!({"type": "hearth/devices/adopt", "device_id": lamp.id}))
        .await;
    assert_eq!(r["success"], false, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no pending device"),
        "{r}"
    );

    // Adopted over the MQTT request.
    obs.publish(
        ADOPT,
        &json!({"id": plug.id, "name": "Desk plug", "options": {"poll_interval_s": 1.0},
                "transaction": "adopt"})
        .to_string(),
    )
    .await;
    let a = answer(&obs, "adopt").await;
    assert_eq!(a["status"], "ok", "{a}");
    assert_eq!(a["data"]["id"], plug.id.as_str(), "{a}");
    assert_eq!(a["data"]["kind"], "shelly", "{a}");

    // Driven like a configured plug: HA discovery, entities, state.
    let object = plug.id.replace('-', "_");
    let switch_config = format!("homeassistant/switch/{}/switch/config", plug.id);
    let cfg = wait_for("the adopted plug's switch in HA discovery", WAIT, || {
        retained_json(&obs, &switch_config)
    })
    .await;
    assert_eq!(
        cfg["unique_id"],
        format!("hearth_{}_switch", plug.id),
        "{cfg}"
    );
    assert_eq!(cfg["device"]["name"], "Desk plug", "{cfg}");
    let state_topic = cfg["state_topic"].as_str().unwrap().to_string();
    let state = wait_for("the switch's state from the twin", WAIT, || {
        obs.current()
            .get(&state_topic)
            .map(|p| String::from_utf8_lossy(p).to_ascii_lowercase())
    })
    .await;
    assert_eq!(state, "on", "the twin's relay starts closed");
    let power_config = format!("homeassistant/sensor/{}/power/config", plug.id);
    let power = wait_for("the adopted plug's power sensor", WAIT, || {
        retained_json(&obs, &power_config)
    })
    .await;
    assert_eq!(power["unit_of_measurement"], "W", "{power}");
    let store = bridge.store.clone();
    let switch = format!("switch.{object}");
    wait_for("the switch entity's state", WAIT, || {
        store.get(&switch).filter(|s| s.state == "on")
    })
    .await;

    // The file: the user's text unchanged, the new table after it.
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(
        written.starts_with(original.trim_end()),
        "the original text is not intact:\n{written}"
    );
    let reread = Config::from_toml(&written, "written").unwrap();
    let adopted = reread
        .shelly
        .iter()
        .find(|s| s.id == plug.id)
        .unwrap_or_else(|| panic!("no [[shelly]] {} in\n{written}", plug.id));
    assert_eq!(adopted.url, format!("http://{}", plug.http));
    assert_eq!(adopted.name, "Desk plug");
    assert_eq!(adopted.poll_interval_s, 1.0);
    assert_eq!(reread.shelly.len(), 2, "{written}");

    // No longer pending; adopting it again is refused.
    let gone = try_wait(WAIT, || {
        retained_json(&obs, PENDING).filter(|l| !ids(l).contains(&plug.id))
    })
    .await;
    assert!(gone.is_some(), "still pending after adoption");
    let r = ws.call(json!({"type": "hearth/devices/pending"})).await;
    assert!(!ids(&r["result"]).contains(&plug.id), "{r}");
    obs.publish(
        ADOPT,
        &json!({"id": plug.id, "transaction": "again"}).to_string(),
    )
    .await;
    let a = answer(&obs, "again").await;
    assert_eq!(a["status"], "error", "{a}");

    bridge.stop().await;
    twin_stop.trigger();
}

/// Adoption needs a file to write to: a bridge started from a Config built
/// in memory refuses with a message saying so, and discovery off answers
/// how to turn it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_refused_when_discovery_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let bridge = common::history::start_bridge(dir.path(), |_| {}).await;
    let obs = Observer::connect(&bridge.broker, "hearth/bridge/#").await;
    obs.publish(ADOPT, r#"{"id": "x", "transaction": "off"}"#)
        .await;
    let a = answer(&obs, "off").await;
    assert_eq!(a["status"], "error", "{a}");
    assert!(
        a["error"]
            .as_str()
            .unwrap()
            .contains("[lan_discovery] enabled = true"),
        "{a}"
    );
    bridge.stop().await;
}

/// A twin Broadlink RM4 mini on UDP 127.0.0.1 answers the discovery
/// hello: pending as `broadlink-<mac>`; adoption without a code file is
/// refused and names `codes`; with one, `[[broadlink]]` is written (host,
/// MAC, codes) and its climate entity reaches HA discovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadlink_answering_discovery_is_pending_and_adopted_with_its_codes() {
    use hearth::drivers::broadlink::smartir::SmartIrCodes;
    use hearth::twin::broadlink_sim::{BroadlinkSim, BroadlinkSimConfig};
    use hearth::twin::{Plant, RoomParams};
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::real();
    let (twin_stop, twin_off) = shutdown::channel();
    let codes = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/ir-codes/smartir-climate-1381.json");
    let plant = Plant::new(RoomParams::server_room(), clock.now_ms()).shared();
    let sim = BroadlinkSim::spawn(
        clock,
        BroadlinkSimConfig::rm4_mini(SmartIrCodes::load(&codes).unwrap()),
        plant,
        twin_off,
    )
    .unwrap();
    let original = format!(
        "# Server room\n[homeassistant]\ndiscovery = \"entity\"\n[lan_discovery]\nenabled = true\nmdns = false\n# the twin gateway, not a broadcast\nbroadlink_broadcast = \"{}\"\ninterval_s = 1\n",
        sim.addr()
    );
    let path = dir.path().join("hearth.toml");
    std::fs::write(&path, &original).unwrap();
    let mut config = Config::load(&path).unwrap();
    config.mqtt.port = EmbeddedBroker::free_port();
    config.http.port = 0;
    config.data_dir = Some(dir.path().join("data"));
    let bridge = Bridge::start(config, clock).await.expect("bridge starts");
    let obs = Observer::connect(&bridge.broker, "#").await;

    let mac: String = sim.mac().iter().map(|b| format!("{b:02x}")).collect();
    let id = format!("broadlink-{mac}");
    let list = wait_for("the Broadlink on the pending topic", WAIT, || {
        retained_json(&obs, PENDING).filter(|l| ids(l).contains(&id))
    })
    .await;
    // Other tests' twins (and real devices) may be listed too.
    let entry = entry_of(&list, &id);
    assert_eq!(entry["kind"], "broadlink", "{entry}");
    assert_eq!(entry["address"], sim.addr().to_string(), "{entry}");
    assert_eq!(
        entry["model"],
        format!("0x{:04x}", sim.devtype()),
        "{entry}"
    );
    assert_eq!(entry["found_by"], "broadlink", "{entry}");

    obs.publish(
        ADOPT,
        &json!({"id": id, "transaction": "nocodes"}).to_string(),
    )
    .await;
    let a = answer(&obs, "nocodes").await;
    assert_eq!(a["status"], "error", "{a}");
    assert!(
        a["error"].as_str().unwrap().contains("options.codes"),
        "{a}"
    );

    obs.publish(
        ADOPT,
        &json!({"id": id, "name": "Server room AC",
                "options": {"id": "ac", "codes": codes.display().to_string()},
                "transaction": "codes"})
        .to_string(),
    )
    .await;
    let a = answer(&obs, "codes").await;
    assert_eq!(a["status"], "ok", "{a}");
    assert_eq!(a["data"]["id"], "ac", "{a}");
    let climate = wait_for("the adopted AC's climate in HA discovery", WAIT, || {
        obs.current()
            .keys()
            .find(|t| t.starts_with("homeassistant/climate/ac/") && t.ends_with("/config"))
            .cloned()
    })
    .await;
    let cfg = retained_json(&obs, &climate).unwrap();
    assert_eq!(cfg["device"]["name"], "Server room AC", "{cfg}");

    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.starts_with(original.trim_end()), "{written}");
    let reread = Config::from_toml(&written, "written").unwrap();
    let b = &reread.broadlink[0];
    assert_eq!(b.id, "ac");
    assert_eq!(b.host, sim.addr().to_string());
    let colons: Vec<String> = sim.mac().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(b.mac.as_deref(), Some(colons.join(":").as_str()));
    // Discovery goes on every second: the adopted gateway stays off the list.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = retained_json(&obs, PENDING).unwrap();
    assert!(
        !ids(&now).contains(&id),
        "adopted Broadlink listed again: {now}"
    );

    bridge.stop().await;
    twin_stop.trigger();
}

/// A Gen1 Plug S (the Gen1 twin) announced on `_http._tcp` only, as Gen1
/// firmware does: `/shelly` tells it is Gen1 (`type`, no `gen`), so it is
/// pending as `shelly_gen1` under its mDNS name and adopted over the
/// WebSocket API into `[[shelly_gen1]]`, whose driver then reads its relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gen1_shelly_is_told_from_gen2_and_adopted_over_the_websocket_api() {
    use hearth::twin::shelly_gen1_sim::{Gen1SimConfig, ShellyGen1Sim};
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::real();
    let (twin_stop, twin_off) = shutdown::channel();
    let sim =
        ShellyGen1Sim::start(clock, Gen1SimConfig::plug_s("C45BBEC18B12", 60.0), twin_off).unwrap();
    let instance = sim.mqtt_id().to_string(); // shellyplug-s-C18B12, Gen1's host name
    let _announced = mdns_sim::announce(&mdns_sim::ShellyAnnouncement {
        id: instance.clone(),
        http: sim.addr(),
        generation: 1,
        app: String::new(),
        ver: String::new(),
    })
    .unwrap();
    let original = "# Gen1 only\n[homeassistant]\ndiscovery = \"entity\"\n[lan_discovery]\nenabled = true\nbroadlink = false\n";
    let path = dir.path().join("hearth.toml");
    std::fs::write(&path, original).unwrap();
    let mut config = Config::load(&path).unwrap();
    config.mqtt.port = EmbeddedBroker::free_port();
    config.http.port = 0;
    config.data_dir = Some(dir.path().join("data"));
    let bridge = Bridge::start(config, clock).await.expect("bridge starts");
    let obs = Observer::connect(&bridge.broker, "#").await;

    let id = instance.to_ascii_lowercase();
    let list = wait_for("the Gen1 plug on the pending topic", WAIT, || {
        retained_json(&obs, PENDING).filter(|l| ids(l).contains(&id))
    })
    .await;
    // Other tests' twins (and real devices) may be listed too.
    let entry = entry_of(&list, &id);
    assert_eq!(entry["kind"], "shelly_gen1", "{entry}");
    assert_eq!(entry["model"], "SHPLG-S", "{entry}");
    assert_eq!(entry["mac"], "c45bbec18b12", "{entry}");

    let (_, token) = hearth::api::auth::tokens::create(&dir.path().join("data"), "lan").unwrap();
    let mut ws = Ws::auth(bridge.http_addr, &token).await;
    let r = ws
        .call(
            json!({"type": "hearth/devices/adopt", "device_id": id, "name": "Kettle",
                     "options": {"id": "kettle", "poll_interval_s": 1}}),
        )
        .await;
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["result"]["kind"], "shelly_gen1", "{r}");
    let topic = wait_for("the Gen1 plug's switch in HA discovery", WAIT, || {
        obs.current()
            .keys()
            .find(|t| t.starts_with("homeassistant/switch/kettle/") && t.ends_with("/config"))
            .cloned()
    })
    .await;
    let cfg = retained_json(&obs, &topic).unwrap();
    let state_topic = cfg["state_topic"].as_str().unwrap().to_string();
    let want = if sim.relay() { "on" } else { "off" };
    wait_for("the Gen1 relay's state", WAIT, || {
        obs.current()
            .get(&state_topic)
            .map(|p| String::from_utf8_lossy(p).to_ascii_lowercase())
            .filter(|s| s == want)
    })
    .await;
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.starts_with(original.trim_end()), "{written}");
    let reread = Config::from_toml(&written, "written").unwrap();
    assert_eq!(reread.shelly_gen1[0].url, sim.url());
    assert_eq!(reread.shelly_gen1[0].id, "kettle");

    bridge.stop().await;
    twin_stop.trigger();
}

/// A device that announces itself and then answers `/shelly` with a
/// truncated body is not listed; the warning names it, its address and
/// what was expected Probed again every `interval_s`, it is listed once
/// it answers well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_shelly_answer_is_named_and_not_listed_until_it_answers_well() {
    common::init_logs();
    let mark = common::log_mark();
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::real();
    let (twin_stop, twin_off) = shutdown::channel();
    let plug = mdns_sim::start_plus_plug(clock, "a8032ab1c2ee", "Broken", twin_off).unwrap();
    plug.fault.set(hearth::twin::ShellyFault::MalformedJson);
    let path = dir.path().join("hearth.toml");
    std::fs::write(
        &path,
        "[lan_discovery]\nenabled = true\nbroadlink = false\ninterval_s = 1\n",
    )
    .unwrap();
    let mut config = Config::load(&path).unwrap();
    config.mqtt.port = EmbeddedBroker::free_port();
    config.http.port = 0;
    config.data_dir = Some(dir.path().join("data"));
    let bridge = Bridge::start(config, clock).await.expect("bridge starts");
    let want = format!(
        "{} announced over mDNS: {} /shelly: expected a JSON object",
        plug.id, plug.http
    );
    wait_for("the probe's warning", WAIT, || {
        common::logs_since(mark)
            .lines()
            .find(|l| l.contains("WARN") && l.contains(&want))
            .map(str::to_string)
    })
    .await;
    let obs = Observer::connect(&bridge.broker, PENDING).await;
    let pending = wait_for("the retained pending list", WAIT, || {
        retained_json(&obs, PENDING)
    })
    .await;
    assert!(!ids(&pending).contains(&plug.id), "{pending}");
    // Once it answers well, the next retry (interval_s) lists it. (After
    // the first announcements are all probed: each one is probed too.)
    tokio::time::sleep(Duration::from_secs(3)).await;
    plug.fault.set(hearth::twin::ShellyFault::None);
    wait_for("the repaired plug listed", WAIT, || {
        retained_json(&obs, PENDING).filter(|l| ids(l).contains(&plug.id))
    })
    .await;
    bridge.stop().await;
    twin_stop.trigger();
}
