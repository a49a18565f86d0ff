//! The loop end to end: HA's climate commands reach the thermostat plugin
//! and the IR gateway; twin + bridge + plugin hold the room in band.

use crate::common;

use common::{BrokerKind, Harness, Observer, wait_for};
use std::time::Duration;

fn last_ir(h: &Harness) -> Option<serde_json::Value> {
    h.twin.ir_commands().last().map(|(_, c)| c.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn climate_target_from_ha_reaches_plugin_and_ir_gateway() {
    // 120× real time: min_cycle_duration 180 s = 1.5 s wall.
    let h = Harness::start(BrokerKind::Embedded, 120.0, |_| {}).await;
    let ha = Observer::connect(&h.broker.addr, "cmnd/#").await;
    // The room starts at 26 °C > 24 + 0.3: the thermostat switches the AC on.
    wait_for(
        "AC switched on by the thermostat",
        Duration::from_secs(20),
        || last_ir(&h).filter(|c| c["Power"] == "On").map(|_| ()),
    )
    .await;

    // HA sets 22 °C on the climate's command topic (its temperature_command_template).
    ha.publish(
        "hearth/server-room-ac/climate/set",
        r#"{"temperature": 22}"#,
    )
    .await;
    let ir = wait_for("IRhvac with Temp 22", Duration::from_secs(10), || {
        last_ir(&h).filter(|c| c["Temp"] == 22.0)
    })
    .await;
    assert_eq!(ir["Power"], "On");
    assert_eq!(ir["Mode"], "Cool");
    assert_eq!(ir["Vendor"], "MITSUBISHI_AC");
    let climate = h.bridge().store.get("climate.server_room_ac").unwrap();
    assert_eq!(climate.attributes["temperature"], 22.0);
    // The IR bridge's own MQTT traffic carried it (the observer is another
    // subscriber: its copy may arrive a moment after the twin's).
    wait_for("IRhvac Temp 22 on the wire", Duration::from_secs(5), || {
        let wire = ha.payloads_on("cmnd/tasmota_ir/IRhvac");
        wire.iter().any(|p| p.contains("\"Temp\":22")).then_some(())
    })
    .await;

    // The plugin follows the new target: above the room temperature, it
    // switches the AC off (once min_cycle_duration allows).
    let mark = common::log_mark();
    ha.publish(
        "hearth/server-room-ac/climate/set",
        r#"{"temperature": 29.5}"#,
    )
    .await;
    wait_for(
        "AC switched off for target 29.5 °C",
        Duration::from_secs(20),
        || last_ir(&h).filter(|c| c["Power"] == "Off").map(|_| ()),
    )
    .await;
    assert!(
        common::logs_since(mark).contains("[thermostat] AC off"),
        "the plugin says why in the log"
    );

    // Out-of-range targets are refused by the router, naming the range
    // (issue 12: they used to be clamped and reported as done).
    let mark = common::log_mark();
    ha.publish("hearth/server-room-ac/climate/set", r#"{"temperature": 5}"#)
        .await;
    wait_for("target 5 °C refused", Duration::from_secs(10), || {
        common::logs_since(mark)
            .contains("temperature 5 is outside the accepted range 16 to 30 °C")
            .then_some(())
    })
    .await;
    let c = h.bridge().store.get("climate.server_room_ac").unwrap();
    assert_eq!(c.attributes["temperature"], 29.5, "the target is kept");

    // Mode off from HA: AC off and the thermostat leaves it off.
    ha.publish(
        "hearth/server-room-ac/climate/set",
        r#"{"hvac_mode": "off"}"#,
    )
    .await;
    wait_for("climate off", Duration::from_secs(10), || {
        (h.bridge().store.get("climate.server_room_ac")?.state == "off").then_some(())
    })
    .await;
    h.stop().await;
}
