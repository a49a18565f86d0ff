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

pub mod webhook;

use crate::api::calls::Failure;
use crate::api::websocket::protocol::{ERR_INVALID_FORMAT, ERR_NOT_FOUND};
use crate::entity::{
    Component, Device, DriverCommand, EntitySpec, EntityStore, SafetyEnvelope, ServiceError,
    ServiceRouter,
};
use crate::shutdown::Shutdown;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

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

/// HA's limit on a state's length; the companion's sensor cuts there.
const MAX_STATE_CHARS: usize = 255;

/// Sends one event on the subscription that registered an entity or a
/// webhook (the connection's `event` message with the subscription's id).
pub type Sink = Arc<dyn Fn(Value) + Send + Sync>;

/// `nodered/discovery`'s fields.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub server_id: String,
    pub node_id: String,
    pub component: String,
    pub config: Map<String, Value>,
    pub state: Option<Value>,
    pub attributes: Option<Map<String, Value>>,
    /// `true`: remove the entity; `"change_entity_type"`: remove it and
    /// create it again as `component`.
    pub remove: Option<Value>,
    pub device_info: Option<Map<String, Value>>,
}

struct Entry {
    entity_id: String,
    component: Component,
    /// The subscription of a switch or button, with its token.
    sink: Option<(u64, Sink)>,
}

struct Hook {
    allowed: Vec<String>,
    /// Only requests from a local address (HA's `local_only`).
    local_only: bool,
    token: u64,
    sink: Sink,
}

/// Most entities Node-RED may create (all its clients together): each is
/// a store entity, announced over MQTT; a flow gone wrong must not grow
/// the store without end.
pub const MAX_ENTITIES: usize = 1000;

/// Most webhooks Node-RED may register (all its clients together).
pub const MAX_WEBHOOKS: usize = 1000;

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

/// Why a webhook request reaches no flow (see [`NodeRed::webhook_target`]).
pub enum HookOutcome {
    Unknown,
    MethodNotAllowed,
    /// A `local_only` webhook asked from a non-local address: answered
    /// 200 with nothing done, as HA does.
    NotLocal,
}

/// HA's `network.is_local`: loopback, a private network (10/8, 172.16/12,
/// 192.168/16, fd00::/8, and those as IPv4-mapped IPv6) or link-local.
pub fn is_local(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_local(IpAddr::V4(v4)),
            None => {
                v6.is_loopback()
                    || (v6.segments()[0] & 0xff00) == 0xfd00
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        },
    }
}

fn unique_id(server_id: &str, node_id: &str) -> String {
    format!("nodered-{server_id}-{node_id}")
}

use crate::slug::slugify as slug;

fn component_of(name: &str) -> Result<Component, Failure> {
    match name {
        "sensor" => Ok(Component::Sensor),
        "binary_sensor" => Ok(Component::BinarySensor),
        "switch" => Ok(Component::Switch),
        "button" => Ok(Component::Button),
        "number" | "select" | "text" | "time" => Err(Failure::new(
            ERR_NOT_SUPPORTED,
            format!(
                "Hearth's Node-RED companion does not create {name} entities (sensor, binary_sensor, switch and button only)"
            ),
        )),
        other => Err(Failure::new(
            ERR_INVALID_FORMAT,
            format!("unknown component `{other}` @ data['component']"),
        )),
    }
}

/// A JSON state as HA shows it (Python's `str()` of the value).
fn text_state(v: &Value) -> String {
    let s = match v {
        Value::Null => "unknown".to_string(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    s.chars().take(MAX_STATE_CHARS).collect()
}

/// The companion's binary sensor rule (`_evaluate_sensor_state`).
fn binary_state(v: &Value) -> &'static str {
    const ON: [&str; 8] = [
        "1", "true", "yes", "enable", "on", "open", "home", "unlocked",
    ];
    match v {
        Value::Null => "unknown",
        Value::Bool(b) => on_off(*b),
        Value::String(s) => on_off(ON.contains(&s.trim().to_lowercase().as_str())),
        Value::Number(n) => on_off(n.as_f64() != Some(0.0)),
        _ => "off",
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn state_for(component: Component, v: &Value) -> String {
    match component {
        Component::BinarySensor => binary_state(v).into(),
        // The switch's `is_on` is the value Node-RED sends (a boolean).
        Component::Switch => match v {
            Value::Null => "unknown".into(),
            other => binary_state(other).into(),
        },
        _ => text_state(v),
    }
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
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

    /// `nodered/discovery`: creates, updates or removes an entity. For a
    /// switch or a button, `sink` (the discovery message's subscription)
    /// receives its commands; the token it returns is what
    /// [`detach`](Self::detach) takes when that subscription ends.
    pub fn discover(&self, d: Discovery, sink: Option<Sink>) -> Result<Option<u64>, Failure> {
        let uid = unique_id(&d.server_id, &d.node_id);
        match &d.remove {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(Value::String(s)) if s == "change_entity_type" => {
                self.remove(&uid);
                let d = Discovery { remove: None, ..d };
                return self.discover(d, sink);
            }
            Some(_) => {
                self.remove(&uid);
                return Ok(None);
            }
        }
        let component = component_of(&d.component)?;
        {
            let inner = self.lock();
            if !inner.entities.contains_key(&uid) && inner.entities.len() >= MAX_ENTITIES {
                return Err(Failure::new(
                    ERR_INVALID_FORMAT,
                    format!(
                        "Hearth takes at most {MAX_ENTITIES} Node-RED entities; remove one first"
                    ),
                ));
            }
        }
        let existing = self
            .lock()
            .entities
            .get(&uid)
            .map(|e| (e.entity_id.clone(), e.component));
        if let Some((_, c)) = &existing
            && *c != component
        {
            // A node whose entity type changed without saying so.
            self.remove(&uid);
        }
        let existing = existing.filter(|(_, c)| *c == component);
        let device_id = self.device(&d)?;
        let name = str_of(&d.config, "name")
            .map(str::to_string)
            .unwrap_or_else(|| format!("nodered {}", d.node_id));
        let entity_id = match &existing {
            Some((id, _)) => id.clone(),
            None => self.free_entity_id(component, &name),
        };
        let key = slug(&format!("{}_{}", d.server_id, d.node_id));
        let mut spec = EntitySpec::new(&device_id, &key, component).named(&name);
        spec.entity_id = entity_id.clone();
        spec.icon = str_of(&d.config, "icon").map(str::to_string);
        spec.device_class = str_of(&d.config, "device_class").map(str::to_string);
        if component == Component::Sensor {
            spec.unit = str_of(&d.config, "unit_of_measurement").map(str::to_string);
            spec.state_class = str_of(&d.config, "state_class").map(str::to_string);
        }
        spec.entity_category = match str_of(&d.config, "entity_category") {
            Some("diagnostic") => Some("diagnostic".into()),
            Some("config") if component != Component::Sensor => Some("config".into()),
            _ => None,
        };
        if let Some((old, _)) = &existing
            && self
                .store
                .spec(old)
                .is_some_and(|s| s.device_id != device_id)
        {
            // Moved to another device: the store keys entities by device.
            self.store.remove_entity(old);
        }
        self.store.upsert_entity(spec).map_err(store_failure)?;
        let bidirectional = matches!(component, Component::Switch | Component::Button);
        if bidirectional {
            self.router
                .register(&entity_id, self.commands.clone(), SafetyEnvelope::default());
        }
        let token = {
            let mut inner = self.lock();
            inner.next_token += 1;
            let token = inner.next_token;
            let entry = inner.entities.entry(uid).or_insert(Entry {
                entity_id: entity_id.clone(),
                component,
                sink: None,
            });
            entry.entity_id = entity_id.clone();
            entry.component = component;
            match (bidirectional, sink) {
                (true, Some(sink)) => {
                    entry.sink = Some((token, sink));
                    Some(token)
                }
                _ => None,
            }
        };
        // The state: the message's, else what the entity showed (a button
        // keeps its last press; a switch that came back after a lost
        // connection shows what Node-RED sends next).
        let current = self.store.get(&entity_id);
        let state = match (&d.state, component) {
            (_, Component::Button) => current
                .as_ref()
                .map(|s| s.state.clone())
                .filter(|s| s != crate::entity::store::UNAVAILABLE)
                .unwrap_or_else(|| "unknown".into()),
            (Some(v), c) => state_for(c, v),
            (None, _) => current
                .as_ref()
                .map(|s| s.state.clone())
                .filter(|s| s != crate::entity::store::UNAVAILABLE)
                .unwrap_or_else(|| "unknown".into()),
        };
        let attributes = match d.attributes {
            Some(a) => a,
            None => current.map(|s| s.attributes).unwrap_or_default(),
        };
        self.store
            .set_state(&entity_id, state, attributes)
            .map_err(store_failure)?;
        Ok(token)
    }

    /// The device an entity goes on (created on first use).
    fn device(&self, d: &Discovery) -> Result<String, Failure> {
        let info = d.device_info.as_ref();
        let (id, device) = match info.and_then(|i| str_of(i, "id")) {
            Some(node) => {
                let info = info.expect("checked");
                let id = format!("nodered-{}", slug(node).replace('_', "-"));
                let device = Device {
                    id: id.clone(),
                    name: str_of(info, "name").unwrap_or("Node-RED device").into(),
                    manufacturer: str_of(info, "manufacturer").unwrap_or("Node-RED").into(),
                    model: str_of(info, "model").unwrap_or("Node-RED device").into(),
                    sw_version: str_of(info, "sw_version").map(str::to_string),
                    via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
                };
                (id, device)
            }
            None => (
                DEVICE.to_string(),
                Device {
                    id: DEVICE.into(),
                    name: "Node-RED".into(),
                    manufacturer: "Node-RED".into(),
                    model: "Node-RED companion (Hearth)".into(),
                    sw_version: Some(VERSION.into()),
                    via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
                },
            ),
        };
        self.store
            .upsert_device(OWNER, device)
            .map_err(store_failure)?;
        Ok(id)
    }

    /// `<component>.<slug of name>`, with `_2`, `_3`… when taken (HA's rule).
    fn free_entity_id(&self, component: Component, name: &str) -> String {
        let base = match slug(name) {
            s if s.is_empty() || s == "unknown" => "nodered".to_string(),
            s => s,
        };
        let base = format!("{}.{base}", component.as_str());
        let mut candidate = base.clone();
        let mut n = 2;
        while self.store.spec(&candidate).is_some() {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        candidate
    }

    fn remove(&self, uid: &str) {
        let Some(entry) = self.lock().entities.remove(uid) else {
            return;
        };
        self.router.unregister(&entry.entity_id);
        self.store.remove_entity(&entry.entity_id);
    }

    /// The subscription that registered a switch or button ended (Node-RED
    /// unsubscribed or disconnected): the entity is unavailable until it
    /// registers again. A later registration's token is left alone.
    pub fn detach(&self, server_id: &str, node_id: &str, token: u64) {
        let entity_id = {
            let mut inner = self.lock();
            let Some(e) = inner.entities.get_mut(&unique_id(server_id, node_id)) else {
                return;
            };
            if e.sink.as_ref().is_none_or(|(t, _)| *t != token) {
                return;
            }
            e.sink = None;
            e.entity_id.clone()
        };
        let attrs = self
            .store
            .get(&entity_id)
            .map(|s| s.attributes)
            .unwrap_or_default();
        let _ = self
            .store
            .set_state(&entity_id, crate::entity::store::UNAVAILABLE, attrs);
    }

    /// `nodered/entity`: a new state and attributes. Like the companion, a
    /// message for an entity it does not know changes nothing (`false`).
    pub fn update(
        &self,
        server_id: &str,
        node_id: &str,
        state: &Value,
        attributes: Map<String, Value>,
    ) -> Result<bool, Failure> {
        let Some((entity_id, component)) = self
            .lock()
            .entities
            .get(&unique_id(server_id, node_id))
            .map(|e| (e.entity_id.clone(), e.component))
        else {
            return Ok(false);
        };
        let state = match component {
            Component::Button => self
                .store
                .get(&entity_id)
                .map(|s| s.state)
                .unwrap_or_else(|| "unknown".into()),
            c => state_for(c, state),
        };
        self.store
            .set_state(&entity_id, state, attributes)
            .map_err(store_failure)?;
        Ok(true)
    }

    /// `nodered/entity/update_config`: name and icon.
    pub fn update_config(
        &self,
        server_id: &str,
        node_id: &str,
        config: &Map<String, Value>,
    ) -> Result<(), Failure> {
        let Some(entity_id) = self
            .lock()
            .entities
            .get(&unique_id(server_id, node_id))
            .map(|e| e.entity_id.clone())
        else {
            return Err(Failure::new(
                ERR_NOT_FOUND,
                format!("no Node-RED entity for node {node_id} of server {server_id}"),
            ));
        };
        let Some(spec) = self.store.spec(&entity_id) else {
            return Ok(());
        };
        let mut spec = (*spec).clone();
        if let Some(name) = str_of(config, "name") {
            spec.name = Some(name.into());
        }
        if let Some(icon) = str_of(config, "icon") {
            spec.icon = Some(icon.into());
        }
        self.store.upsert_entity(spec).map_err(store_failure)
    }

    /// The entity Node-RED created for a node, if any.
    pub fn entity_of(&self, server_id: &str, node_id: &str) -> Option<String> {
        self.lock()
            .entities
            .get(&unique_id(server_id, node_id))
            .map(|e| e.entity_id.clone())
    }

    /// `nodered/webhook`: registers `webhook_id`; requests to
    /// `/api/webhook/<webhook_id>` go to `sink` until [`unhook`](Self::unhook).
    /// HA's default methods are POST and PUT.
    pub fn hook(
        &self,
        webhook_id: &str,
        allowed: Option<Vec<String>>,
        local_only: bool,
        sink: Sink,
    ) -> Result<u64, Failure> {
        let mut inner = self.lock();
        if inner.webhooks.contains_key(webhook_id) {
            // HA's webhook.async_register: ValueError, sent as value_error.
            return Err(Failure::new("value_error", "Handler is already defined!"));
        }
        if inner.webhooks.len() >= MAX_WEBHOOKS {
            return Err(Failure::new(
                "value_error",
                format!("Hearth takes at most {MAX_WEBHOOKS} Node-RED webhooks; remove one first"),
            ));
        }
        inner.next_token += 1;
        let token = inner.next_token;
        let allowed = allowed.unwrap_or_else(|| vec!["POST".into(), "PUT".into()]);
        inner.webhooks.insert(
            webhook_id.to_string(),
            Hook {
                allowed,
                local_only,
                token,
                sink,
            },
        );
        Ok(token)
    }

    pub fn unhook(&self, webhook_id: &str, token: u64) {
        let mut inner = self.lock();
        if inner
            .webhooks
            .get(webhook_id)
            .is_some_and(|h| h.token == token)
        {
            inner.webhooks.remove(webhook_id);
        }
    }

    /// Where a request to `/api/webhook/<webhook_id>` from `peer` goes:
    /// the registering flow's sink, or why nowhere. Checked before the
    /// body is read (a caller needs no token; an unknown id, a method the
    /// webhook does not take or a remote caller of a local-only webhook
    /// cost no read).
    pub fn webhook_target(
        &self,
        webhook_id: &str,
        method: &str,
        peer: std::net::IpAddr,
    ) -> Result<Sink, HookOutcome> {
        let inner = self.lock();
        let Some(hook) = inner.webhooks.get(webhook_id) else {
            return Err(HookOutcome::Unknown);
        };
        if !hook.allowed.iter().any(|m| m == method) {
            return Err(HookOutcome::MethodNotAllowed);
        }
        if hook.local_only && !is_local(peer) {
            return Err(HookOutcome::NotLocal);
        }
        Ok(hook.sink.clone())
    }

    /// A switch or button command from the router.
    fn command(&self, cmd: &DriverCommand) -> Result<(), ServiceError> {
        let found = self
            .lock()
            .entities
            .values()
            .find(|e| e.entity_id == cmd.entity_id)
            .map(|e| (e.component, e.sink.as_ref().map(|(_, s)| s.clone())));
        let Some((component, sink)) = found else {
            return Err(ServiceError::UnknownEntity(cmd.entity_id.clone()));
        };
        let Some(sink) = sink else {
            return Err(ServiceError::Unavailable(cmd.entity_id.clone()));
        };
        match (component, cmd.service.as_str()) {
            (Component::Switch, service @ ("turn_on" | "turn_off" | "toggle")) => {
                let on = match service {
                    "turn_on" => true,
                    "turn_off" => false,
                    _ => self
                        .store
                        .get(&cmd.entity_id)
                        .is_none_or(|s| s.state != "on"),
                };
                sink(json!({"type": "state_changed", "state": on}));
                Ok(())
            }
            (Component::Button, "press") => {
                let now = self.store.clock().now_ms();
                let attrs = self
                    .store
                    .get(&cmd.entity_id)
                    .map(|s| s.attributes)
                    .unwrap_or_default();
                self.store
                    .set_state(&cmd.entity_id, crate::clock::iso8601(now), attrs)
                    .map_err(|e| ServiceError::Driver {
                        entity: cmd.entity_id.clone(),
                        reason: e.to_string(),
                    })?;
                let snap = self.store.snapshot();
                let reg = crate::api::registry::Registry::from_snapshot(&snap);
                let entity = self
                    .store
                    .get(&cmd.entity_id)
                    .map(|s| crate::api::ha::state(&reg.present(&s)))
                    .unwrap_or(Value::Null);
                sink(json!({"type": "automation_triggered", "data": {"entity": entity}}));
                Ok(())
            }
            (_, service) => Err(ServiceError::Validation(format!(
                "{}: Node-RED's {} entities do not take {service}",
                cmd.entity_id,
                component.as_str()
            ))),
        }
    }
}

fn store_failure(e: crate::entity::store::StoreError) -> Failure {
    Failure::new("home_assistant_error", e.to_string())
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

    #[test]
    fn states_follow_the_companion() {
        assert_eq!(slug("Laptop 01: battery %"), "laptop_01_battery");
        assert_eq!(text_state(&json!(21.5)), "21.5");
        assert_eq!(text_state(&json!(true)), "True");
        assert_eq!(text_state(&Value::Null), "unknown");
        assert_eq!(binary_state(&json!("Open")), "on");
        assert_eq!(binary_state(&json!("closed")), "off");
        assert_eq!(binary_state(&json!(0)), "off");
        assert_eq!(state_for(Component::Switch, &json!(true)), "on");
        assert_eq!(text_state(&json!("x".repeat(300))).len(), MAX_STATE_CHARS);
    }

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
