//! The bridge defends its own retained topics (issue 12, item 6): when
//! another client overwrites `hearth/bridge/state`, a device's availability
//! or an entity's state, the bridge publishes its own value again, retained,
//! on the embedded broker and on Mosquitto alike; and it does not fight its
//! own `offline` when it stops.

use crate::common::{self, BrokerKind, Observer, wait_for};
use hearth::app::Bridge;
use hearth::broker::{BrokerAddress, EmbeddedBroker};
use hearth::entity::Device;
use rumqttc::QoS;
use std::time::Duration;

const BRIDGE_STATE: &str = "hearth/bridge/state";
const PLUG_AVAILABILITY: &str = "hearth/plug/availability";
const BRIDGE_CONNECTION: &str = "hearth/bridge/connection_state/state";

/// A bridge on the embedded broker it runs itself, or on Mosquitto as an
/// external broker; the Mosquitto process lives as long as the guard value.
async fn bridge(kind: BrokerKind) -> (Bridge, Option<common::TestBroker>, tempfile::TempDir) {
    common::init_logs();
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = hearth::config::Config::default();
    config.http.port = 0;
    config.data_dir = Some(data_dir.path().to_path_buf());
    let external = match kind {
        BrokerKind::Embedded => {
            config.mqtt.port = EmbeddedBroker::free_port();
            None
        }
        BrokerKind::Mosquitto => {
            let b = common::broker(BrokerKind::Mosquitto);
            config.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", b.addr.port));
            Some(b)
        }
    };
    let bridge = Bridge::start(config, hearth::clock::Clock::real())
        .await
        .unwrap();
    bridge
        .store
        .upsert_device(
            "test",
            Device {
                id: "plug".into(),
                name: "Plug".into(),
                manufacturer: "Test".into(),
                model: "Plug".into(),
                sw_version: None,
                via_device: None,
            },
        )
        .unwrap();
    (bridge, external, data_dir)
}

/// The retained payload a client connecting now receives on `topic`.
async fn retained_for_a_fresh_subscriber(addr: &BrokerAddress, topic: &str) -> Option<String> {
    let fresh = Observer::connect(addr, topic).await;
    let got = common::try_wait(Duration::from_secs(2), || {
        fresh
            .messages()
            .into_iter()
            .find(|(_, _, retain)| *retain)
            .map(|(_, p, _)| String::from_utf8_lossy(&p).into_owned())
    })
    .await;
    fresh.client.disconnect().await.ok();
    got
}

async fn own_topics_are_published_again(kind: BrokerKind) {
    let (bridge, _external, _dir) = bridge(kind).await;
    let addr = bridge.broker.clone();
    let ours = [
        (BRIDGE_STATE, "online", "offline"),
        (PLUG_AVAILABILITY, "online", "offline"),
        (BRIDGE_CONNECTION, "ON", "OFF"),
    ];
    let ha = Observer::connect(&addr, "hearth/#").await;
    for (topic, value, _) in ours {
        wait_for(
            &format!("{topic} = {value}"),
            Duration::from_secs(10),
            || (ha.current().get(topic).map(Vec::as_slice) == Some(value.as_bytes())).then_some(()),
        )
        .await;
    }

    // Someone else overwrites them, retained.
    let intruder = Observer::connect(&addr, "intruder/none").await;
    for (topic, _, foreign) in ours {
        intruder
            .client
            .publish(topic, QoS::AtLeastOnce, true, foreign.as_bytes().to_vec())
            .await
            .unwrap();
    }
    for (topic, value, foreign) in ours {
        wait_for(
            &format!("{topic}: {foreign} from another client, then {value} again"),
            Duration::from_secs(10),
            || {
                let seen = ha.payloads_on(topic);
                let at = seen.iter().rposition(|p| p == foreign)?;
                seen[at + 1..].iter().any(|p| p == value).then_some(())
            },
        )
        .await;
        assert_eq!(
            retained_for_a_fresh_subscriber(&addr, topic)
                .await
                .as_deref(),
            Some(value),
            "{kind:?}: the retained {topic} is the bridge's again"
        );
    }

    // A clean stop: `offline` stays (the guard stopped first).
    bridge.stop().await;
    tokio::time::sleep(guard_gap() + Duration::from_millis(500)).await;
    assert_eq!(
        retained_for_a_fresh_subscriber(&addr, BRIDGE_STATE)
            .await
            .as_deref(),
        Some("offline"),
        "{kind:?}: the bridge's own offline is not fought"
    );
    assert_eq!(
        ha.payloads_on(BRIDGE_STATE).last().map(String::as_str),
        Some("offline"),
        "{kind:?}: nothing after the bridge's own offline"
    );
}

fn guard_gap() -> Duration {
    hearth::discovery::guard::MIN_GAP
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_topics_are_published_again_on_the_embedded_broker() {
    own_topics_are_published_again(BrokerKind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_topics_are_published_again_on_mosquitto() {
    own_topics_are_published_again(BrokerKind::Mosquitto).await;
}
