//! HA's Node-RED companion integration (zachowj/hass-node-red,
//! `custom_components/nodered`, version [`VERSION`]) for Node-RED's Home
//! Assistant nodes (node-red-contrib-home-assistant-websocket): the
//! entities those nodes create (`ha-sensor`, `ha-binary-sensor`,
//! `ha-switch`, `ha-button`) and the webhooks of `ha-webhook`.
//!
//! Node-RED announces an entity with `nodered/discovery` and updates it with
//! `nodered/entity` ([`crate::api::websocket::nodered`] reads those
//! commands); the entity lives in the [`EntityStore`] as a Hearth entity of
//! the device `nodered` (or, when the node names one, `nodered-<device>`),
//! so HA sees it through MQTT discovery and clients through the WebSocket
//! API. A switch or a button is bidirectional: its discovery message is a
//! subscription, and a `switch.turn_on|turn_off|toggle` or `button.press`
//! (from any source, through the [`ServiceRouter`]) becomes an event on it,
//! in the companion's shapes (`{"type": "state_changed", "state": true}`,
//! `{"type": "automation_triggered", "data": {"entity": <state>}}`). The
//! switch's state changes when Node-RED answers with `nodered/entity`, as
//! in HA. When that subscription ends (Node-RED disconnects), the entity
//! is `unavailable` until Node-RED registers it again.
//!
//! Not kept across restarts: Node-RED announces its entities again each
//! time it connects. Number, select, text and time entities, device
//! actions and triggers and sentences are not supported (the commands
//! answer `not_supported`).

mod entity;
pub mod webhook;

pub use entity::{Discovery, MAX_ENTITIES};
pub use webhook::{HookOutcome, MAX_WEBHOOKS, is_local};

use crate::entity::{DriverCommand, EntityStore, ServiceRouter};
use crate::shutdown::Shutdown;
use entity::Entry;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use webhook::Hook;

/// The companion version `nodered/version` answers (hass-node-red 4.2.3,
/// the release current with node-red-contrib-home-assistant-websocket
/// 0.80; the nodes need at least 1.1 for devices).
pub const VERSION: &str = "4.2.3";

/// Owner of Node-RED's devices in the store.
pub const OWNER: &str = "nodered";

/// The device of entities whose node names none.
pub const DEVICE: &str = "nodered";

/// The companion's error code for what Hearth does not do.
pub const ERR_NOT_SUPPORTED: &str = "not_supported";

/// Sends one event on the subscription that registered an entity or a
/// webhook (the connection's `event` message with the subscription's id).
pub type Sink = Arc<dyn Fn(Value) + Send + Sync>;

#[derive(Default)]
struct Inner {
    /// By HA's unique id, `nodered-<server_id>-<node_id>`.
    entities: HashMap<String, Entry>,
    webhooks: HashMap<String, Hook>,
    next_token: u64,
}

pub struct NodeRed {
    store: Arc<EntityStore>,
    router: Arc<ServiceRouter>,
    inner: Mutex<Inner>,
    commands: mpsc::Sender<DriverCommand>,
}
impl NodeRed {
    pub fn new(
        store: Arc<EntityStore>,
        router: Arc<ServiceRouter>,
        shutdown: Shutdown,
    ) -> Arc<NodeRed> {
        let (tx, rx) = mpsc::channel(64);
        let nodered = Arc::new(NodeRed {
            store,
            router,
            inner: Mutex::new(Inner::default()),
            commands: tx,
        });
        tokio::spawn(commands(Arc::downgrade(&nodered), rx, shutdown));
        nodered
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Answers the router's commands for Node-RED's switches and buttons.
async fn commands(
    nodered: std::sync::Weak<NodeRed>,
    mut rx: mpsc::Receiver<DriverCommand>,
    mut shutdown: Shutdown,
) {
    loop {
        let cmd = tokio::select! {
            c = rx.recv() => c,
            _ = shutdown.wait() => None,
        };
        let Some(cmd) = cmd else { break };
        let Some(n) = nodered.upgrade() else { break };
        let result = n.command(&cmd);
        let _ = cmd.reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::{Component, EntitySpec, ServiceError};
    use serde_json::{Map, json};
    fn discovery(node: &str, component: &str, name: &str, state: Value) -> Discovery {
        let mut config = Map::new();
        config.insert("name".into(), json!(name));
        Discovery {
            server_id: "srv".into(),
            node_id: node.into(),
            component: component.into(),
            config,
            state: Some(state),
            ..Discovery::default()
        }
    }

    /// A switch's commands reach its subscription; without one it is
    /// unavailable and refuses them; `remove` takes it away.
    #[tokio::test]
    async fn switch_commands_go_to_the_subscription() {
        let store = EntityStore::new(crate::clock::Clock::real());
        let router = ServiceRouter::new(store.clone());
        let (_stop, shutdown) = crate::shutdown::channel();
        let nr = NodeRed::new(store.clone(), router.clone(), shutdown);
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink: Sink = {
            let events = events.clone();
            Arc::new(move |e| events.lock().unwrap().push(e))
        };
        let d = discovery("n1", "switch", "Night mode", json!(true));
        let token = nr.discover(d.clone(), Some(sink)).unwrap().unwrap();
        assert_eq!(store.get("switch.night_mode").unwrap().state, "on");
        let call = |service: &str| {
            crate::entity::ServiceCall::new(
                "switch",
                service,
                "switch.night_mode",
                Map::new(),
                crate::entity::CallSource::Internal,
            )
        };
        router.call(call("turn_off")).await.unwrap();
        assert_eq!(
            *events.lock().unwrap(),
            vec![json!({"type": "state_changed", "state": false})]
        );
        // The state follows Node-RED's answer, not the command.
        assert_eq!(store.get("switch.night_mode").unwrap().state, "on");
        assert!(nr.update("srv", "n1", &json!(false), Map::new()).unwrap());
        assert_eq!(store.get("switch.night_mode").unwrap().state, "off");
        // A second node with the same name gets `_2`, as in HA.
        nr.discover(discovery("n2", "sensor", "Night mode", json!(3)), None)
            .unwrap();
        assert_eq!(nr.entity_of("srv", "n2").unwrap(), "sensor.night_mode");
        nr.discover(discovery("n3", "switch", "Night mode", json!(false)), None)
            .unwrap();
        assert_eq!(nr.entity_of("srv", "n3").unwrap(), "switch.night_mode_2");

        nr.detach("srv", "n1", token);
        assert_eq!(store.get("switch.night_mode").unwrap().state, "unavailable");
        let e = router.call(call("turn_on")).await.unwrap_err();
        assert!(matches!(e, ServiceError::Unavailable(_)), "{e:?}");

        let removed = Discovery {
            remove: Some(json!(true)),
            ..d
        };
        nr.discover(removed, None).unwrap();
        assert!(store.spec("switch.night_mode").is_none());
        assert!(!router.handles("switch.night_mode"));
        // Unsupported components are named.
        let e = nr
            .discover(discovery("n4", "number", "Level", json!(1)), None)
            .unwrap_err();
        assert_eq!(e.code, ERR_NOT_SUPPORTED);
    }

    /// A Node-RED button as HA sees it over MQTT: a command topic taking
    /// `PRESS`, which becomes `button.press`; no state payload.
    #[test]
    fn buttons_are_announced_with_a_command_topic() {
        use crate::discovery::{commands, payload, topics::Topics};
        let topics = Topics {
            base: "hearth".into(),
            discovery_prefix: "homeassistant".into(),
        };
        let mut spec = EntitySpec::new(DEVICE, "srv_n1", Component::Button).named("Start charge");
        spec.entity_id = "button.start_charge".into();
        let c = payload::component_config(&topics, &spec).unwrap();
        let topic = c["command_topic"].as_str().unwrap().to_string();
        assert_eq!(topic, "hearth/nodered/srv_n1/set");
        assert!(c.get("state_topic").is_none());
        let calls =
            commands::parse_command(&topic, Component::Button, &spec.entity_id, b"PRESS").unwrap();
        assert_eq!(
            (calls[0].domain.as_str(), calls[0].service.as_str()),
            ("button", "press")
        );
        assert!(
            commands::parse_command(&topic, Component::Button, &spec.entity_id, b"ON").is_err()
        );
    }

    fn nodered() -> Arc<NodeRed> {
        let store = EntityStore::new(crate::clock::Clock::real());
        let router = ServiceRouter::new(store.clone());
        let (stop, shutdown) = crate::shutdown::channel();
        std::mem::forget(stop);
        NodeRed::new(store, router, shutdown)
    }

    /// HA's `local_only`: a remote caller reaches nothing (and is told
    /// nothing); local addresses, and any address for a webhook that is
    /// not local-only, reach the flow.
    #[tokio::test]
    async fn local_only_webhooks_refuse_remote_callers() {
        let nr = nodered();
        let sink: Sink = Arc::new(|_| {});
        nr.hook("local", None, true, sink.clone()).unwrap();
        nr.hook("open", None, false, sink).unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.5",
            "192.168.1.20",
            "169.254.3.4",
            "::1",
            "fd12::1",
            "fe80::1",
            "::ffff:192.168.1.2",
        ] {
            assert!(is_local(ip(local)), "{local}");
            assert!(
                nr.webhook_target("local", "POST", ip(local)).is_ok(),
                "{local}"
            );
        }
        for remote in ["203.0.113.9", "8.8.8.8", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(!is_local(ip(remote)), "{remote}");
            assert!(
                matches!(
                    nr.webhook_target("local", "POST", ip(remote)),
                    Err(HookOutcome::NotLocal)
                ),
                "{remote}"
            );
            assert!(nr.webhook_target("open", "POST", ip(remote)).is_ok());
        }
        // The method is checked before the address.
        assert!(matches!(
            nr.webhook_target("local", "GET", ip("8.8.8.8")),
            Err(HookOutcome::MethodNotAllowed)
        ));
    }

    /// At most MAX_ENTITIES entities and MAX_WEBHOOKS webhooks, with a
    /// message saying so; an update of an existing entity still works.
    #[tokio::test]
    async fn entities_and_webhooks_are_capped() {
        let nr = nodered();
        for i in 0..MAX_ENTITIES {
            nr.discover(
                discovery(&format!("n{i}"), "sensor", &format!("s{i}"), json!(i)),
                None,
            )
            .unwrap();
        }
        let e = nr
            .discover(discovery("extra", "sensor", "extra", json!(1)), None)
            .unwrap_err();
        assert!(
            e.message.contains("at most 1000 Node-RED entities"),
            "{}",
            e.message
        );
        nr.discover(discovery("n0", "sensor", "s0", json!(7)), None)
            .unwrap();
        let sink: Sink = Arc::new(|_| {});
        for i in 0..MAX_WEBHOOKS {
            nr.hook(&format!("h{i}"), None, false, sink.clone())
                .unwrap();
        }
        let e = nr.hook("extra", None, false, sink).unwrap_err();
        assert!(
            e.message.contains("at most 1000 Node-RED webhooks"),
            "{}",
            e.message
        );
    }
}
