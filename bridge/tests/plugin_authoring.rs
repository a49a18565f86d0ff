//! What a first-time plugin author trips over (issue 12, items 10 and 11):
//! swapping back to a builtin after a swap with another config, the
//! documented config files of the builtin plugins, and service calls the
//! host refuses, which the plugin must learn about.

use crate::common;

use common::{BrokerKind, Harness, wait_for};
use hearth::api::plugin_ops::{self, Op};
use hearth::entity::{CallSource, ServiceCall};
use hearth::plugins::{Limits, PluginConfig, SwapRequest};
use serde_json::{Map, json};
use std::path::Path;
use std::time::Duration;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// `examples/plugins/<name>.toml` as the CLI reads it for `--config`.
fn documented(name: &str) -> hearth::plugins::directory::Sidecar {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/plugins")
        .join(format!("{name}.toml"));
    hearth::cli::plugin::read_sidecar(&path)
        .unwrap_or_else(|e| panic!("builtin `{name}` has no usable documented config: {e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_back_to_a_builtin_restores_its_config() {
    let h = Harness::start(BrokerKind::Embedded, 60.0, |_| {}).await;
    let manager = h.bridge().plugins.clone();
    let original = manager.config("thermostat").unwrap();
    // As `hearth plugin swap thermostat my.wasm --config my.toml`: another
    // plugin with a config the thermostat refuses (`unknown field`).
    let m = manager.clone();
    blocking(move || {
        m.swap(
            "thermostat",
            SwapRequest {
                wasm: "builtin:fault-injector".into(),
                config: Some(json!({"entity": "sensor.server_room_temperature", "fault": "none"})),
                ..Default::default()
            },
        )
    })
    .await
    .unwrap();
    let ops = |op, args: serde_json::Value| {
        let m = manager.clone();
        let serde_json::Value::Object(args) = args else {
            unreachable!()
        };
        async move { plugin_ops::run(m, op, args).await.unwrap() }
    };
    let list = ops(Op::List, json!({})).await;
    assert_eq!(list[0]["config"]["fault"], "none", "{list}");

    // The command the demo prints, no --config: the thermostat's own back.
    let m = manager.clone();
    let report = blocking(move || {
        m.swap(
            "thermostat",
            SwapRequest {
                wasm: "builtin:thermostat".into(),
                ..Default::default()
            },
        )
    })
    .await
    .expect("swap back to builtin:thermostat");
    assert!(report.to.starts_with("thermostat"), "{report:?}");
    assert_eq!(manager.config("thermostat").unwrap(), original);

    // The running config: in the list, and in `hearth/plugins/config`,
    // which the CLI prints as a file `--config` takes.
    let list = ops(Op::List, json!({})).await;
    assert_eq!(list[0]["config"], original.config);
    let answer = ops(Op::Config, json!({"name": "thermostat"})).await;
    assert_eq!(answer["wasm"], "builtin:thermostat");
    assert_eq!(answer["config"], original.config);
    assert_eq!(
        answer["remembered"],
        json!(["builtin:thermostat", "builtin:fault-injector"])
    );
    let text = hearth::cli::plugin::format_config(&answer).unwrap();
    let file: hearth::plugins::directory::Sidecar = toml::from_str(&text).unwrap();
    assert_eq!(file.config, Some(original.config.clone()), "{text}");
    assert_eq!(file.limits, Some(original.limits), "{text}");

    // An explicit config still wins over the remembered one.
    let m = manager.clone();
    let mut given = original.config.clone();
    given["target_temp"] = json!(22.5);
    let explicit = given.clone();
    blocking(move || {
        m.swap(
            "thermostat",
            SwapRequest {
                wasm: "builtin:thermostat".into(),
                config: Some(explicit),
                ..Default::default()
            },
        )
    })
    .await
    .unwrap();
    assert_eq!(manager.config("thermostat").unwrap().config, given);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_builtin_config_swaps_in() {
    let h = Harness::start(BrokerKind::Embedded, 60.0, |c| c.plugins.clear()).await;
    let manager = h.bridge().plugins.clone();
    let config = |name: &str| {
        let s = documented(name);
        PluginConfig {
            name: "docs".into(),
            wasm: format!("builtin:{name}"),
            config: s.config.unwrap_or_else(|| json!({})),
            limits: s.limits.unwrap_or_default(),
            drives: s.drives,
        }
    };
    // Loaded with the fault-injector's file, then swapped to every other
    // builtin with its own file, as `hearth plugin swap docs builtin:<name>
    // --config examples/plugins/<name>.toml` does.
    let first = config("fault-injector");
    let m = manager.clone();
    blocking(move || m.load(first)).await.unwrap();
    for (name, _) in hearth::plugins::builtin::BUILTIN {
        let cfg = config(name);
        let m = manager.clone();
        let report = blocking(move || {
            m.swap(
                "docs",
                SwapRequest {
                    wasm: cfg.wasm,
                    config: Some(cfg.config),
                    limits: Some(cfg.limits),
                    drives: cfg.drives,
                },
            )
        })
        .await
        .unwrap_or_else(|e| panic!("examples/plugins/{name}.toml: {e:#}"));
        assert!(report.to.starts_with(*name) || *name == "custom-strategy");
        assert_eq!(
            manager.config("docs").unwrap().wasm,
            format!("builtin:{name}")
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_refused_by_the_safety_envelope_reaches_the_plugin_and_its_logs() {
    // The AC's power switch must stay off an hour before it may restart: any
    // `turn_on` in this test is refused by the envelope. 10× so the node's
    // readings (every 10 simulated s) come every second.
    let h = Harness::start(BrokerKind::Embedded, 10.0, |c| {
        c.plugins.clear();
        for ac in &mut c.ir_ac {
            ac.min_off_s = 3600.0;
        }
    })
    .await;
    let bridge = h.bridge();
    wait_for("the AC switch", Duration::from_secs(10), || {
        bridge
            .store
            .get("switch.server_room_ac_power")
            .filter(|_| bridge.store.entity_available("switch.server_room_ac_power"))
    })
    .await;
    let off = ServiceCall::new(
        "switch",
        "turn_off",
        "switch.server_room_ac_power",
        Map::new(),
        CallSource::Internal,
    );
    bridge.router.call(off).await.unwrap();
    wait_for("the AC off", Duration::from_secs(10), || {
        (bridge.store.get("switch.server_room_ac_power")?.state == "off").then_some(())
    })
    .await;

    // The real fault-injector WASM: `switch.turn_on` at every reading, and
    // logs each outcome the host gives it.
    let cfg = PluginConfig {
        name: "probe".into(),
        wasm: "builtin:fault-injector".into(),
        config: json!({
            "entity": "sensor.server_room_temperature",
            "fault": "none",
            "drives": ["switch.server_room_ac_power"],
        }),
        limits: Limits::default(),
        drives: None,
    };
    let m = bridge.plugins.clone();
    blocking(move || m.load(cfg)).await.unwrap();

    let manager = bridge.plugins.clone();
    let logs = wait_for(
        "the plugin logs the refusal it was told about",
        Duration::from_secs(30),
        || {
            let lines = manager.logs("probe", 1000).ok()?;
            lines
                .iter()
                .any(|l| {
                    l.source == "plugin"
                        && l.message.starts_with("call result #")
                        && l.message.contains("switch.turn_on on switch.server_room_ac_power")
                        && l.message.contains(
                            "refused: refused by the safety envelope of `switch.server_room_ac_power`",
                        )
                        && l.message.contains("must stay off 3600 s")
                })
                .then_some(lines)
        },
    )
    .await;
    // `hearth plugin logs probe` shows the host's refusal too.
    assert!(
        logs.iter().any(|l| l.source == "host"
            && l.level == "warn"
            && l.message
                .contains("switch.turn_on on switch.server_room_ac_power refused")),
        "{logs:#?}"
    );
    // The switch stayed off: the envelope, not the plugin, decided.
    assert_eq!(
        bridge
            .store
            .get("switch.server_room_ac_power")
            .unwrap()
            .state,
        "off"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_room_is_driven_over_its_mqtt_knobs() {
    let h = Harness::start(BrokerKind::Embedded, 60.0, |c| c.plugins.clear()).await;
    let before = h.twin.snapshot();
    assert_eq!((before.outside_c, before.it_load_w), (30.0, 3000.0));
    let client = common::Observer::connect(&h.broker.addr, "hearth-twin/#").await;
    // A bad payload is ignored, named in the log.
    client
        .publish(
            hearth::twin::controls::CONTROL_TOPIC,
            r#"{"outside_c": 1e308}"#,
        )
        .await;
    // Until the twin has subscribed a publish is lost: repeat it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        client
            .publish(
                hearth::twin::controls::CONTROL_TOPIC,
                r#"{"outside_c": 38, "it_load_w": 5000}"#,
            )
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let s = h.twin.snapshot();
        if (s.outside_c, s.it_load_w) == (38.0, 5000.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the twin never took its knobs: {s:?}"
        );
    }
    h.stop().await;
}
