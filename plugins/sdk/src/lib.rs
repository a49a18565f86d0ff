//! Guest-side SDK for Hearth controller plugins.
//!
//! A plugin implements [`Controller`] and exports it with
//! [`export_controller!`]. The SDK turns the raw WIT bindings
//! (`bindings`, generated from `wit/`) into typed helpers: [`State`] to read
//! entity states, [`Output`] to collect service calls, alerts and updates of
//! the plugin's own entities, and [`log`] functions that reach the bridge's log.
//!
//! ```ignore
//! struct Mine;
//! impl hearth_plugin_sdk::Controller for Mine { /* … */ }
//! hearth_plugin_sdk::export_controller!(Mine);
//! ```
//!
//! Panics are logged through the host (`set_panic_hook` is installed by
//! `export_controller!` on `init`) and then trap: the host marks the plugin
//! faulted and restarts it.

pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "controller",
        pub_export_macro: true,
        export_macro_name: "__export_controller_raw",
        default_bindings_module: "hearth_plugin_sdk::bindings",
    });
}

use bindings::hearth::controller::host;
use bindings::hearth::controller::types as wit;
use serde_json::{Map, Value};

pub use bindings::hearth::controller::types::{
    Alert, Description, EntityDecl, EntityUpdate, LogLevel, Sample, ServiceCall, Severity,
};
pub use serde_json;

/// The host's clock, ms since the Unix epoch (simulated under the twin).
pub fn now_ms() -> i64 {
    host::now_ms()
}

/// Writes to the bridge's log, tagged with the plugin's name.
pub fn log(level: LogLevel, message: &str) {
    host::log(level, message);
}
pub fn info(message: &str) {
    log(LogLevel::Info, message);
}
pub fn warn(message: &str) {
    log(LogLevel::Warn, message);
}
pub fn debug(message: &str) {
    log(LogLevel::Debug, message);
}

/// Numeric history of an entity in `[start_ms, end_ms]`, oldest first.
pub fn history(entity_id: &str, start_ms: i64, end_ms: i64) -> Vec<Sample> {
    host::history(entity_id, start_ms, end_ms)
}

/// Logs panics through the host before the trap, so they do not vanish.
pub fn set_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        host::log(LogLevel::Error, &format!("panic: {info}"));
    }));
}

/// An entity's state with its attributes parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub entity_id: String,
    pub state: String,
    pub attributes: Map<String, Value>,
    pub last_changed_ms: i64,
    pub last_updated_ms: i64,
}

impl State {
    /// Reads an entity's current state from the host.
    pub fn get(entity_id: &str) -> Option<State> {
        host::get_state(entity_id).map(State::from)
    }

    /// The state as a number (`None` for `unavailable`, `unknown`, text).
    pub fn number(&self) -> Option<f64> {
        self.state.parse::<f64>().ok().filter(|v| v.is_finite())
    }

    /// `on` / `off` as a bool (`None` otherwise).
    pub fn is_on(&self) -> Option<bool> {
        match self.state.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        }
    }

    pub fn attr_f64(&self, name: &str) -> Option<f64> {
        self.attributes.get(name)?.as_f64()
    }

    pub fn attr_str(&self, name: &str) -> Option<&str> {
        self.attributes.get(name)?.as_str()
    }
}

impl From<wit::EntityState> for State {
    fn from(s: wit::EntityState) -> Self {
        let attributes = match serde_json::from_str(&s.attributes) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        State {
            entity_id: s.entity_id,
            state: s.state,
            attributes,
            last_changed_ms: s.last_changed_ms,
            last_updated_ms: s.last_updated_ms,
        }
    }
}

/// HA's `state_changed` event, typed.
#[derive(Debug, Clone)]
pub struct Change {
    pub entity_id: String,
    pub old: Option<State>,
    pub new: Option<State>,
}

impl From<wit::StateChange> for Change {
    fn from(c: wit::StateChange) -> Self {
        Change {
            entity_id: c.entity_id,
            old: c.old_state.map(State::from),
            new: c.new_state.map(State::from),
        }
    }
}

/// What the plugin asks of the host; built up during one call.
#[derive(Debug, Default)]
pub struct Output {
    calls: Vec<ServiceCall>,
    alerts: Vec<Alert>,
    entities: Vec<EntityUpdate>,
}

impl Output {
    /// A service call in HA's vocabulary, e.g.
    /// `call("switch", "turn_on", "switch.ac_power", json!({}))`.
    pub fn call(&mut self, domain: &str, service: &str, entity_id: &str, data: Value) {
        self.calls.push(ServiceCall {
            domain: domain.into(),
            service: service.into(),
            entity_ids: vec![entity_id.into()],
            service_data: data.to_string(),
        });
    }

    /// Raises (`active`) or clears an alert identified by `key`.
    pub fn alert(
        &mut self,
        key: &str,
        severity: Severity,
        active: bool,
        title: &str,
        message: &str,
    ) {
        self.alerts.push(Alert {
            key: key.into(),
            entity_id: None,
            severity,
            title: title.into(),
            message: message.into(),
            active,
        });
    }

    /// Raises or clears a problem: the alert keyed `object_id` and the
    /// plugin's `binary_sensor` of the same id (see [`problem_sensor`]),
    /// so Home Assistant and the alert log always agree.
    pub fn problem(
        &mut self,
        object_id: &str,
        severity: Severity,
        active: bool,
        title: &str,
        message: &str,
    ) {
        self.alert(object_id, severity, active, title, message);
        self.entity(object_id, if active { "on" } else { "off" });
    }

    /// New state of one of the plugin's own entities.
    pub fn entity(&mut self, object_id: &str, state: &str) {
        self.entities.push(EntityUpdate {
            object_id: object_id.into(),
            state: state.into(),
            attributes: "{}".into(),
        });
    }

    pub fn calls(&self) -> &[ServiceCall] {
        &self.calls
    }
}

impl From<Output> for wit::Output {
    fn from(o: Output) -> Self {
        wit::Output {
            calls: o.calls,
            alerts: o.alerts,
            entities: o.entities,
        }
    }
}

/// Declares a plugin-owned `binary_sensor` with device class `problem`.
pub fn problem_sensor(object_id: &str, name: &str) -> EntityDecl {
    EntityDecl {
        object_id: object_id.into(),
        component: "binary_sensor".into(),
        name: name.into(),
        device_class: Some("problem".into()),
        unit_of_measurement: None,
        state_class: None,
    }
}

/// The typed side of the controller world. One value per plugin instance.
pub trait Controller: Sized {
    /// Builds the controller from its JSON config (the host's first call).
    fn init(config: Value) -> Result<Self, String>;
    fn describe(&self) -> Description;
    fn on_state(&mut self, change: Change, out: &mut Output);
    fn tick(&mut self, now_ms: i64, out: &mut Output);
    fn save(&self) -> Vec<u8>;
    /// Restores `save` bytes; an error means "start fresh".
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String>;
}

/// Holds the one controller instance of this component.
#[doc(hidden)]
pub mod instance {
    use std::cell::RefCell;

    pub struct Slot<T>(pub RefCell<Option<T>>);
    // Components are single-threaded: the host never calls re-entrantly.
    unsafe impl<T> Sync for Slot<T> {}
}

/// Exports a [`Controller`] implementation as the component's `controller`
/// world.
#[macro_export]
macro_rules! export_controller {
    ($ty:ty) => {
        const _: () = {
            use $crate::bindings::hearth::controller::types as wit;
            static SLOT: $crate::instance::Slot<$ty> =
                $crate::instance::Slot(::std::cell::RefCell::new(None));

            struct Export;

            fn with<R>(f: impl FnOnce(&mut $ty) -> R) -> R {
                let mut slot = SLOT.0.borrow_mut();
                let c = slot
                    .as_mut()
                    .expect("the host called the plugin before init");
                f(c)
            }

            impl $crate::bindings::Guest for Export {
                fn init(config: String) -> Result<(), String> {
                    $crate::set_panic_hook();
                    let value: $crate::serde_json::Value = $crate::serde_json::from_str(&config)
                        .map_err(|e| format!("config is not valid JSON: {e}"))?;
                    let c = <$ty as $crate::Controller>::init(value)?;
                    *SLOT.0.borrow_mut() = Some(c);
                    Ok(())
                }
                fn describe() -> wit::Description {
                    with(|c| $crate::Controller::describe(c))
                }
                fn on_state(change: wit::StateChange) -> wit::Output {
                    let mut out = $crate::Output::default();
                    with(|c| $crate::Controller::on_state(c, change.into(), &mut out));
                    out.into()
                }
                fn tick(now_ms: i64) -> wit::Output {
                    let mut out = $crate::Output::default();
                    with(|c| $crate::Controller::tick(c, now_ms, &mut out));
                    out.into()
                }
                fn save() -> Vec<u8> {
                    with(|c| $crate::Controller::save(c))
                }
                fn restore(state: Vec<u8>) -> Result<(), String> {
                    with(|c| $crate::Controller::restore(c, &state))
                }
            }
    $crate::bindings::__export_controller_raw!(Export with_types_in $crate::bindings);
        };
    };
}
