//! Fault containment: a plugin that traps, one that loops forever and one
//! that allocates without bound are each contained; the bridge keeps serving
//! (states flow, the thermostat keeps control, /api/health answers) and an
//! alert is raised (the plugin's `fault` problem sensor, and the log).

use crate::common;

use common::{BrokerKind, Harness, Observer, wait_for};
use hearth::plugins::{Limits, PluginConfig};
use std::io::{Read, Write};
use std::time::Duration;

fn injector(name: &str, fault: &str, when: &str) -> PluginConfig {
    let config = format!(
        "entity = \"sensor.server_room_temperature\"\nfault = \"{fault}\"\nwhen = \"{when}\"\n"
    );
    PluginConfig {
        name: name.into(),
        wasm: "builtin:fault-injector".into(),
        config: toml::from_str(&config).unwrap(),
        limits: Limits {
            memory_mib: 16,
            call_timeout_ms: 100,
            max_backoff_s: 2.0,
            ..Limits::default()
        },
        drives: None,
    }
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trapping_looping_and_hogging_plugins_are_contained() {
    let mark = common::log_mark();
    let h = Harness::start(BrokerKind::Embedded, 60.0, |c| {
        c.plugins.push(injector("trapper", "trap", "on_state"));
        c.plugins.push(injector("looper", "loop", "on_state"));
        c.plugins.push(injector("hog", "alloc", "tick"));
        c.plugins.push(injector("flooder", "flood", "on_state"));
    })
    .await;
    let ha = Observer::connect(&h.broker.addr, "hearth/#").await;
    let bridge = h.bridge();

    for (name, expect) in [
        ("trapper", "trapped"),
        // Fuel or the wall deadline, whichever runs out first.
        ("looper", "budget of"),
        ("hog", "ran out of memory"),
        ("flooder", "100 entity updates in one output (at most 64)"),
    ] {
        let status = wait_for(
            &format!("{name} faulted and restarted"),
            Duration::from_secs(30),
            || {
                bridge
                    .plugin_status(name)
                    .filter(|s| s.faults >= 1 && s.restarts >= 1)
            },
        )
        .await;
        let fault = status.last_fault.unwrap();
        assert!(
            fault.contains(expect),
            "{name}: last fault `{fault}` should say `{expect}`"
        );
        // The alert reaches Home Assistant as a problem sensor.
        let topic = format!("hearth/plugin-{name}/fault/state");
        wait_for(&format!("{topic} = ON"), Duration::from_secs(10), || {
            ha.payloads_on(&topic)
                .iter()
                .any(|p| p == "ON")
                .then_some(())
        })
        .await;
    }
    let logs = common::logs_since(mark);
    assert!(
        logs.contains("ALERT plugin `trapper` trapped"),
        "fault alert in the log"
    );
    assert!(
        logs.contains("panic: panicked at") && logs.contains("fault-injector: trap on purpose"),
        "the guest's panic message is logged"
    );

    // The bridge keeps serving: sensor states still flow, the thermostat
    // still runs and commands the AC, the HTTP port answers.
    let before = ha.payloads_on("hearth/server-room/temperature/state").len();
    let ir_before = h.twin.ir_commands().len();
    wait_for("more temperature states", Duration::from_secs(10), || {
        (ha.payloads_on("hearth/server-room/temperature/state").len() > before + 3).then_some(())
    })
    .await;
    let thermostat = bridge.plugin_status("thermostat").unwrap();
    assert_eq!(thermostat.faults, 0);
    wait_for(
        "thermostat still commanding the AC",
        Duration::from_secs(20),
        || (h.twin.ir_commands().len() > ir_before).then_some(()),
    )
    .await;
    let health = http_get(bridge.http_addr, "/api/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(
        health.contains("\"name\":\"trapper\"") && health.contains("\"mqtt_connected\":true"),
        "{health}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_that_fail_to_load_are_rejected_and_the_bridge_runs_on() {
    let h = Harness::start(BrokerKind::Embedded, 60.0, |_| {}).await;
    let bridge = h.bridge();
    let err = bridge
        .load_plugin(injector("bad-init", "trap", "init"))
        .unwrap_err();
    assert!(format!("{err:#}").contains("trapped"), "{err:#}");
    let mut not_wasm = injector("not-wasm", "none", "on_state");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"\0asm junk").unwrap();
    not_wasm.wasm = path.display().to_string();
    let err = bridge.load_plugin(not_wasm).unwrap_err();
    assert!(
        format!("{err:#}").contains("not a valid WebAssembly component"),
        "{err:#}"
    );
    let mut bad_config = injector("bad-config", "none", "on_state");
    bad_config.config = toml::from_str("entity = 3").unwrap();
    let err = bridge.load_plugin(bad_config).unwrap_err();
    assert!(
        format!("{err:#}").contains("rejected its config"),
        "{err:#}"
    );
    // A plugin may only drive what its config allows.
    let mut greedy = injector("greedy", "none", "on_state");
    greedy.config = toml::from_str(
        "entity = \"sensor.server_room_temperature\"\nfault = \"none\"\ndrives = [\"switch.server_room_ac_plug\"]",
    )
    .unwrap();
    greedy.drives = Some(vec!["switch.server_room_ac_power".into()]);
    let err = bridge.load_plugin(greedy).unwrap_err();
    assert!(
        format!("{err:#}").contains("wants to drive `switch.server_room_ac_plug`"),
        "{err:#}"
    );
    // Still running.
    assert_eq!(bridge.plugin_status("thermostat").unwrap().faults, 0);
    assert!(bridge.link.is_connected());
    h.stop().await;
}
