//! Issue 19, a plugin returning huge outputs: a megabyte string is refused
//! by the host's byte cap (`OUTPUT_BYTES_MAX`, checked by wasmtime from the
//! guest's (pointer, length) pairs before the host copies anything) and
//! the plugin faults with an error naming the cap; JSON nested deeper than
//! the host parses is refused with an error naming that cap. The bridge
//! keeps serving throughout.

use crate::common;

use common::{BrokerKind, Harness, Observer, wait_for};
use hearth::plugins::instance::OUTPUT_BYTES_MAX;
use hearth::plugins::runner::JSON_DEPTH_MAX;
use hearth::plugins::{Limits, PluginConfig};
use std::time::Duration;

fn injector(name: &str, config: &str) -> PluginConfig {
    PluginConfig {
        name: name.into(),
        wasm: "builtin:fault-injector".into(),
        config: toml::from_str(config).unwrap(),
        limits: Limits {
            // Room for the guest to build its 4 MiB string: what stops it
            // is the output cap, not the memory cap.
            memory_mib: 64,
            call_timeout_ms: 2_000,
            max_backoff_s: 2.0,
            ..Limits::default()
        },
        drives: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_outputs_are_refused_by_the_byte_cap_and_deep_json_by_the_depth_cap() {
    let mark = common::log_mark();
    let h = Harness::start(BrokerKind::Embedded, 60.0, |c| {
        c.plugins.push(injector(
            "huge",
            "entity = \"sensor.server_room_temperature\"\nfault = \"huge\"\nbytes = 4194304\n",
        ));
        // Just over the cap: the cap is exact, not a page or two away.
        c.plugins.push(injector(
            "over",
            &format!(
                "entity = \"sensor.server_room_temperature\"\nfault = \"huge\"\nbytes = {}\n",
                OUTPUT_BYTES_MAX + 1
            ),
        ));
        // Well under the cap: accepted (the undeclared entity is ignored).
        c.plugins.push(injector(
            "under",
            "entity = \"sensor.server_room_temperature\"\nfault = \"huge\"\nbytes = 65536\n",
        ));
        c.plugins.push(injector(
            "deep",
            "entity = \"sensor.server_room_temperature\"\nfault = \"deep\"\ndepth = 1000\ndrives = [\"switch.server_room_ac_plug\"]\n",
        ));
    })
    .await;
    let ha = Observer::connect(&h.broker.addr, "hearth/#").await;
    let bridge = h.bridge();

    let cap_words = format!("cap of {} KiB", OUTPUT_BYTES_MAX >> 10);
    for name in ["huge", "over"] {
        let status = wait_for(
            &format!("{name} faulted and restarted"),
            Duration::from_secs(60),
            || {
                bridge
                    .plugin_status(name)
                    .filter(|s| s.faults >= 1 && s.restarts >= 1)
            },
        )
        .await;
        let fault = status.last_fault.unwrap();
        assert!(
            fault.contains("returned invalid output") && fault.contains(&cap_words),
            "{name}: last fault `{fault}` should name the {cap_words}"
        );
    }

    // The deep plugin's call is refused with the depth cap named, the
    // refusal reaches the plugin, its deep attributes are dropped, and it
    // does not fault (a bad part of an output is refused, not fatal).
    let depth_words = format!("nests deeper than the host's cap of {JSON_DEPTH_MAX} levels");
    wait_for(
        "the deep call refused and the plugin told",
        Duration::from_secs(60),
        || {
            let logs = common::logs_since(mark);
            (logs.contains(&depth_words)
                && logs.contains("[deep] call result #")
                && logs.contains(&format!(
                    "refused: service_data of switch.turn_on {depth_words}"
                )))
            .then_some(())
        },
    )
    .await;
    let logs = common::logs_since(mark);
    assert!(
        logs.contains(&format!(
            "attributes of `deep` nest deeper than the host's cap of {JSON_DEPTH_MAX} levels: dropped"
        )),
        "deep attributes dropped with a reason"
    );
    // The plugin's `deep` entity took its state, without the attributes.
    wait_for("deep entity state", Duration::from_secs(20), || {
        ha.payloads_on("hearth/plugin-deep/deep/state")
            .iter()
            .any(|p| p == "ON")
            .then_some(())
    })
    .await;

    // The plugin under the cap ran many calls without a fault, and so did
    // the deep one, while the others kept faulting.
    wait_for("under and deep ran calls", Duration::from_secs(30), || {
        let under = bridge.plugin_status("under")?;
        let deep = bridge.plugin_status("deep")?;
        (under.events >= 3 && deep.events >= 3).then_some(())
    })
    .await;
    for name in ["under", "deep"] {
        let s = bridge.plugin_status(name).unwrap();
        assert_eq!(s.faults, 0, "{name}: {:?}", s.last_fault);
    }
    assert!(
        !logs.contains(&"x".repeat(1000)),
        "no megabyte string reached the log"
    );

    // The bridge keeps serving: states flow, the thermostat is untouched.
    let before = ha.payloads_on("hearth/server-room/temperature/state").len();
    wait_for("more temperature states", Duration::from_secs(10), || {
        (ha.payloads_on("hearth/server-room/temperature/state").len() > before + 3).then_some(())
    })
    .await;
    assert_eq!(bridge.plugin_status("thermostat").unwrap().faults, 0);
    assert!(bridge.link.is_connected());
    h.stop().await;
}
