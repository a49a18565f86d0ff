//! One service-call vocabulary for every command source (HA over MQTT command
//! topics, plugins, the WebSocket and REST APIs), named as Home Assistant
//! names it, and the router that takes a call through validation (field
//! types here, then what the target accepts: [`super::accepts`]) and the
//! target's safety envelope to the driver that owns the entity. Validation
//! lives here only: every source gets the same checks and the same typed
//! [`ServiceError`], so the APIs answer with HA's codes and a plugin can be
//! told why its call was refused.

use super::accepts::{self, Refusal};
use super::{Context, SafetyEnvelope, domain_of};
use crate::entity::EntityStore;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Who asked. Logged with every refused call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallSource {
    /// Home Assistant through an MQTT command topic.
    Mqtt,
    Plugin(String),
    /// The WebSocket or REST API; the name of the access token used.
    Api(String),
    Internal,
}

impl std::fmt::Display for CallSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallSource::Mqtt => f.write_str("mqtt"),
            CallSource::Plugin(p) => write!(f, "plugin {p}"),
            CallSource::Api(token) => write!(f, "api (token `{token}`)"),
            CallSource::Internal => f.write_str("bridge"),
        }
    }
}

/// `{domain, service, target.entity_id, service_data}` as HA names them.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCall {
    pub domain: String,
    pub service: String,
    pub entity_ids: Vec<String>,
    pub data: Map<String, Value>,
    pub source: CallSource,
    /// Given to the state changes the call causes.
    pub context: Context,
}

impl ServiceCall {
    pub fn new(
        domain: &str,
        service: &str,
        entity_id: &str,
        data: Map<String, Value>,
        source: CallSource,
    ) -> Self {
        ServiceCall {
            domain: domain.into(),
            service: service.into(),
            entity_ids: vec![entity_id.into()],
            data,
            source,
            context: Context::default(),
        }
    }
}

/// Why a call failed. Variants map onto HA's WebSocket error codes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    #[error("service {0}.{1} not found")]
    UnknownService(String, String),
    #[error("entity `{0}` not found or accepts no commands")]
    UnknownEntity(String),
    #[error("{domain}.{service}: `{field}` must be {expected}, got {got}")]
    InvalidData {
        domain: String,
        service: String,
        field: String,
        expected: String,
        got: String,
    },
    #[error("refused by the safety envelope of `{entity}`: {reason}")]
    Refused { entity: String, reason: String },
    /// A value outside what the target accepts (its range, its modes, or
    /// its safety envelope's range): nothing was sent to the device.
    #[error("{0}")]
    NotAccepted(Box<Refusal>),
    #[error("`{0}` is unavailable")]
    Unavailable(String),
    #[error("{0}")]
    Validation(String),
    #[error("driver of `{entity}` failed: {reason}")]
    Driver { entity: String, reason: String },
}

impl ServiceError {
    /// Whether the call was refused for what it asked (bad data, a value
    /// the target does not accept, the safety envelope), rather than
    /// failing on the way to the device.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ServiceError::InvalidData { .. }
                | ServiceError::NotAccepted(_)
                | ServiceError::Refused { .. }
                | ServiceError::Validation(_)
        )
    }
}

/// A field of a service's data.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub required: bool,
    pub kind: FieldKind,
    pub description: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldKind {
    /// A JSON number.
    Number,
    /// HA's `vol.Coerce(float)`: a JSON number, or a string Python's
    /// `float()` reads (`"5"`, `" 2.5 "`, `"1e3"`); the router hands the
    /// driver the number ([`coerce`]). Python's `1_000` form is not read.
    Float,
    Text,
}

/// A service Hearth handles.
#[derive(Debug, Clone, Copy)]
pub struct ServiceDef {
    pub domain: &'static str,
    pub service: &'static str,
    pub fields: &'static [Field],
}

const TEMPERATURE: Field = Field {
    name: "temperature",
    required: true,
    kind: FieldKind::Number,
    description: "Target temperature, °C",
};
const HVAC_MODE: Field = Field {
    name: "hvac_mode",
    required: true,
    kind: FieldKind::Text,
    description: "HVAC mode: off, cool",
};

const POSITION: Field = Field {
    name: "position",
    required: true,
    kind: FieldKind::Number,
    description: "Valve opening, % (0 closed, 100 fully open)",
};

const OPTION: Field = Field {
    name: "option",
    required: true,
    kind: FieldKind::Text,
    description: "One of the select's options",
};

// HA's number schema: `vol.Required(ATTR_VALUE): vol.Coerce(float)`.
const VALUE: Field = Field {
    name: "value",
    required: true,
    kind: FieldKind::Float,
    description: "Within the number's min and max, in its unit; rounded to its step",
};

/// Every service Hearth handles (HA's names and fields).
pub const SERVICES: &[ServiceDef] = &[
    ServiceDef {
        domain: "switch",
        service: "turn_on",
        fields: &[],
    },
    ServiceDef {
        domain: "switch",
        service: "turn_off",
        fields: &[],
    },
    ServiceDef {
        domain: "switch",
        service: "toggle",
        fields: &[],
    },
    ServiceDef {
        domain: "climate",
        service: "set_temperature",
        fields: &[
            TEMPERATURE,
            Field {
                required: false,
                ..HVAC_MODE
            },
        ],
    },
    ServiceDef {
        domain: "climate",
        service: "set_hvac_mode",
        fields: &[HVAC_MODE],
    },
    ServiceDef {
        domain: "climate",
        service: "turn_on",
        fields: &[],
    },
    ServiceDef {
        domain: "climate",
        service: "turn_off",
        fields: &[],
    },
    ServiceDef {
        domain: "valve",
        service: "open_valve",
        fields: &[],
    },
    ServiceDef {
        domain: "valve",
        service: "close_valve",
        fields: &[],
    },
    ServiceDef {
        domain: "valve",
        service: "set_valve_position",
        fields: &[POSITION],
    },
    ServiceDef {
        domain: "valve",
        service: "stop_valve",
        fields: &[],
    },
    ServiceDef {
        domain: "select",
        service: "select_option",
        fields: &[OPTION],
    },
    // HA's `cycle` field is not taken: next/previous always wrap around.
    ServiceDef {
        domain: "select",
        service: "select_next",
        fields: &[],
    },
    ServiceDef {
        domain: "select",
        service: "select_previous",
        fields: &[],
    },
    ServiceDef {
        domain: "select",
        service: "select_first",
        fields: &[],
    },
    ServiceDef {
        domain: "select",
        service: "select_last",
        fields: &[],
    },
    ServiceDef {
        domain: "number",
        service: "set_value",
        fields: &[VALUE],
    },
    ServiceDef {
        domain: "button",
        service: "press",
        fields: &[],
    },
];

/// Checks a call's domain, service and field types against [`SERVICES`].
pub fn validate(call: &ServiceCall) -> Result<(), ServiceError> {
    let def = SERVICES
        .iter()
        .find(|d| d.domain == call.domain && d.service == call.service)
        .ok_or_else(|| ServiceError::UnknownService(call.domain.clone(), call.service.clone()))?;
    let invalid = |field: &str, expected: &str, got: String| ServiceError::InvalidData {
        domain: call.domain.clone(),
        service: call.service.clone(),
        field: field.into(),
        expected: expected.into(),
        got,
    };
    for f in def.fields {
        match (call.data.get(f.name), f.kind) {
            (None, _) if f.required => return Err(invalid(f.name, "present", "nothing".into())),
            (None, _) => {}
            (Some(v), FieldKind::Number) if !v.as_f64().is_some_and(f64::is_finite) => {
                return Err(invalid(f.name, "a number", v.to_string()));
            }
            (Some(v), FieldKind::Float) if !as_float(v).is_some_and(f64::is_finite) => {
                return Err(invalid(f.name, "a number", v.to_string()));
            }
            (Some(v), FieldKind::Text) if !v.is_string() => {
                return Err(invalid(f.name, "a string", v.to_string()));
            }
            _ => {}
        }
    }
    if let Some(extra) = call
        .data
        .keys()
        .find(|k| !def.fields.iter().any(|f| f.name == *k))
    {
        return Err(invalid(
            extra,
            "absent (unknown field)",
            call.data[extra].to_string(),
        ));
    }
    for id in &call.entity_ids {
        if domain_of(id) != call.domain {
            return Err(ServiceError::UnknownEntity(id.clone()));
        }
    }
    Ok(())
}

/// A [`FieldKind::Float`] value as `vol.Coerce(float)` reads it: a number,
/// or a string holding one (Python's `float()` strips surrounding
/// whitespace).
fn as_float(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        other => other.as_f64(),
    }
}

/// Replaces every [`FieldKind::Float`] string that reads as a finite
/// number with that number, as HA's schema does before its service runs;
/// anything else is left for [`validate`] to refuse as it came.
pub fn coerce(call: &mut ServiceCall) {
    let Some(def) = SERVICES
        .iter()
        .find(|d| d.domain == call.domain && d.service == call.service)
    else {
        return;
    };
    for f in def.fields.iter().filter(|f| f.kind == FieldKind::Float) {
        if let Some(v) = call.data.get_mut(f.name)
            && v.is_string()
            && let Some(x) = as_float(v).filter(|x| x.is_finite())
            && let Some(n) = serde_json::Number::from_f64(x)
        {
            *v = Value::Number(n);
        }
    }
}

/// A command for the driver that owns `entity_id`, after the envelope.
#[derive(Debug)]
pub struct DriverCommand {
    pub entity_id: String,
    pub service: String,
    pub data: Map<String, Value>,
    pub reply: oneshot::Sender<Result<(), ServiceError>>,
}

struct Route {
    driver: mpsc::Sender<DriverCommand>,
    envelope: Arc<SafetyEnvelope>,
    /// Held from the envelope check until the driver has answered, so two
    /// calls on one entity cannot both pass a check made against the same
    /// state (e.g. two restarts inside the minimum off time).
    serial: Arc<tokio::sync::Mutex<()>>,
}

/// Routes service calls to drivers; the only way commands reach devices.
pub struct ServiceRouter {
    store: Arc<EntityStore>,
    routes: RwLock<HashMap<String, Route>>,
    /// Refusals logged per caller and service (a script looping on a
    /// refused call must not flood the log).
    refusals: Arc<crate::logging::Throttle>,
}

/// How long a driver may take to accept a command.
const DRIVER_TIMEOUT: Duration = Duration::from_secs(10);

impl ServiceRouter {
    pub fn new(store: Arc<EntityStore>) -> Arc<Self> {
        Arc::new(ServiceRouter {
            store,
            routes: RwLock::new(HashMap::new()),
            refusals: crate::logging::Throttle::new("refused or failed service calls"),
        })
    }

    /// Makes `driver` the handler of commands for `entity_id`.
    pub fn register(
        &self,
        entity_id: &str,
        driver: mpsc::Sender<DriverCommand>,
        envelope: SafetyEnvelope,
    ) {
        self.routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                entity_id.into(),
                Route {
                    driver,
                    envelope: Arc::new(envelope),
                    serial: Arc::default(),
                },
            );
    }

    pub fn unregister(&self, entity_id: &str) {
        self.routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(entity_id);
    }

    /// The safe state of an entity when its controller faults.
    pub fn fault_action(&self, entity_id: &str) -> Option<super::safety::FaultAction> {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        routes
            .get(entity_id)
            .map(|r| r.envelope.on_controller_fault)
    }

    /// Whether an entity accepts commands.
    pub fn handles(&self, entity_id: &str) -> bool {
        self.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(entity_id)
    }

    /// Validates, applies each target's safety envelope, and hands the call
    /// to the owning drivers. Fails on the first target that fails.
    pub async fn call(&self, mut call: ServiceCall) -> Result<(), ServiceError> {
        coerce(&mut call);
        let result = self.call_inner(&call).await;
        if let Err(e) = &result
            && self.refusals.admit(&format!(
                "{} ({}.{})",
                call.source, call.domain, call.service
            ))
        {
            let outcome = if e.is_refusal() { "refused" } else { "failed" };
            tracing::warn!(source = %call.source, "{}.{} on {:?} {outcome}: {e}", call.domain, call.service, call.entity_ids);
        }
        result
    }

    async fn call_inner(&self, call: &ServiceCall) -> Result<(), ServiceError> {
        validate(call)?;
        // Every target is checked before any command goes out: a call on
        // two entities that one of them refuses moves neither.
        let mut accepted = Vec::with_capacity(call.entity_ids.len());
        for entity_id in &call.entity_ids {
            if !self.handles(entity_id) {
                return Err(ServiceError::UnknownEntity(entity_id.clone()));
            }
            let spec = self.store.spec(entity_id);
            let data = accepts::check(entity_id, spec.as_deref(), &call.service, &call.data)
                .map_err(|r| ServiceError::NotAccepted(Box::new(r)))?;
            accepted.push((entity_id, data));
        }
        for (entity_id, data) in accepted {
            let (driver, envelope, serial) = {
                let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
                let route = routes
                    .get(entity_id)
                    .ok_or_else(|| ServiceError::UnknownEntity(entity_id.clone()))?;
                (
                    route.driver.clone(),
                    route.envelope.clone(),
                    route.serial.clone(),
                )
            };
            let _serial = serial.lock().await;
            if !self.store.entity_available(entity_id) {
                return Err(ServiceError::Unavailable(entity_id.clone()));
            }
            let data = envelope.apply(&self.store, entity_id, call, data)?;
            let keys = data.keys().filter(|k| *k != "entity_id").cloned().collect();
            self.store.expect_change(entity_id, &call.context, keys);
            let result = self.dispatch(&driver, entity_id, call, data).await;
            if result.is_err() {
                self.store.forget_expected(entity_id, &call.context);
            }
            result?;
        }
        Ok(())
    }

    /// Hands one command to its driver and waits for the driver's answer.
    async fn dispatch(
        &self,
        driver: &mpsc::Sender<DriverCommand>,
        entity_id: &str,
        call: &ServiceCall,
        data: Map<String, Value>,
    ) -> Result<(), ServiceError> {
        let (reply, answer) = oneshot::channel();
        let cmd = DriverCommand {
            entity_id: entity_id.to_string(),
            service: call.service.clone(),
            data,
            reply,
        };
        let driver_gone = || ServiceError::Driver {
            entity: entity_id.to_string(),
            reason: "driver stopped".into(),
        };
        match driver.send_timeout(cmd, DRIVER_TIMEOUT).await {
            Ok(()) => {}
            Err(mpsc::error::SendTimeoutError::Closed(_)) => return Err(driver_gone()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                return Err(ServiceError::Driver {
                    entity: entity_id.to_string(),
                    reason: "driver busy: command queue full for 10 s".into(),
                });
            }
        }
        match tokio::time::timeout(DRIVER_TIMEOUT, answer).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(driver_gone()),
            Err(_) => {
                return Err(ServiceError::Driver {
                    entity: entity_id.to_string(),
                    reason: "no answer within 10 s".into(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(domain: &str, service: &str, data: Value) -> ServiceCall {
        let Value::Object(data) = data else { panic!() };
        ServiceCall::new(
            domain,
            service,
            &format!("{domain}.x"),
            data,
            CallSource::Internal,
        )
    }

    /// A router with one climate entity (16–30 °C, 0.5 °C step) whose
    /// driver is a plain queue the test reads.
    fn router_with_climate() -> (Arc<ServiceRouter>, mpsc::Receiver<DriverCommand>) {
        use crate::entity::fixtures::{ac_climate, store_with_device};
        let store = store_with_device("ac");
        let spec = ac_climate();
        let id = spec.entity_id.clone();
        store.upsert_entity(spec).unwrap();
        store.set_availability("ac", true);
        store.set_state(&id, "cool", Map::new()).unwrap();
        let router = ServiceRouter::new(store);
        let (tx, rx) = mpsc::channel(8);
        router.register(&id, tx, SafetyEnvelope::default());
        (router, rx)
    }

    #[tokio::test]
    async fn a_plugins_out_of_range_call_is_refused_before_its_driver() {
        let (router, mut driver) = router_with_climate();
        let target = |t: f64| {
            let mut data = Map::new();
            data.insert("temperature".into(), t.into());
            ServiceCall::new(
                "climate",
                "set_temperature",
                "climate.ac_climate",
                data,
                CallSource::Plugin("thermostat".into()),
            )
        };
        for asked in [5.0, 60.0, 1e308, -1e308] {
            match router.call(target(asked)).await {
                Err(ServiceError::NotAccepted(r)) => {
                    assert_eq!(r.entity, "climate.ac_climate");
                    assert_eq!(r.field, "temperature");
                    assert_eq!(
                        r.allowed,
                        accepts::Allowed::Range {
                            min: 16.0,
                            max: 30.0,
                            unit: "°C"
                        }
                    );
                }
                other => panic!("{asked}: expected a refusal, got {other:?}"),
            }
            assert!(driver.try_recv().is_err(), "{asked} reached the driver");
        }
        // In range: the driver gets it, on the entity's step.
        let answered = tokio::spawn(async move {
            let cmd = driver.recv().await.unwrap();
            let sent = cmd.data["temperature"].clone();
            let _ = cmd.reply.send(Ok(()));
            sent
        });
        router.call(target(22.3)).await.unwrap();
        assert_eq!(answered.await.unwrap(), json!(22.5));
    }

    #[tokio::test]
    async fn number_set_value_coerces_a_numeric_string_as_has_schema_does() {
        use crate::drivers::helpers::{config::NumberConfig, number_spec};
        use crate::entity::fixtures::store_with_device;
        let store = store_with_device("helpers");
        let limit: NumberConfig =
            toml::from_str("id = \"limit\"\nname = \"Limit\"\nmin = 0\nmax = 10\n").unwrap();
        let spec = number_spec(&limit);
        let id = spec.entity_id.clone();
        store.upsert_entity(spec).unwrap();
        store.set_availability("helpers", true);
        store.set_state(&id, "0.0", Map::new()).unwrap();
        let router = ServiceRouter::new(store);
        let (tx, mut driver) = mpsc::channel(8);
        router.register(&id, tx, SafetyEnvelope::default());
        let set = |v: Value| {
            let Value::Object(data) = json!({ "value": v }) else {
                unreachable!()
            };
            ServiceCall::new(
                "number",
                "set_value",
                &id,
                data,
                CallSource::Api("t".into()),
            )
        };
        // The driver answers every command and passes on the value it got.
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(cmd) = driver.recv().await {
                let _ = seen_tx.send(cmd.data["value"].clone());
                let _ = cmd.reply.send(Ok(()));
            }
        });
        for (asked, sent) in [(json!("5"), 5.0), (json!(" 2.5 "), 3.0), (json!(5), 5.0)] {
            let result =
                tokio::time::timeout(Duration::from_secs(5), router.call(set(asked.clone())));
            result
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{asked} refused: {e}"));
            assert_eq!(seen.try_recv().unwrap().as_f64(), Some(sent), "{asked}");
        }
        for bad in [json!("five"), json!(""), json!("nan"), json!(true)] {
            match router.call(set(bad.clone())).await {
                Err(ServiceError::InvalidData { field, .. }) => assert_eq!(field, "value"),
                other => panic!("{bad}: expected invalid data, got {other:?}"),
            }
            assert!(seen.try_recv().is_err(), "{bad} reached the driver");
        }
        // Out of range after coercion: the entity's refusal, as for a number.
        match router.call(set(json!("11"))).await {
            Err(ServiceError::NotAccepted(r)) => assert_eq!(r.value, "11.0"),
            other => panic!("\"11\": expected out_of_range, got {other:?}"),
        }
    }

    #[test]
    fn validation_names_the_field_and_expectation() {
        assert!(
            validate(&call(
                "climate",
                "set_temperature",
                json!({"temperature": 22.5})
            ))
            .is_ok()
        );
        let err = validate(&call(
            "climate",
            "set_temperature",
            json!({"temperature": "hot"}),
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "climate.set_temperature: `temperature` must be a number, got \"hot\""
        );
        assert!(matches!(
            validate(&call("climate", "set_hvac_mode", json!({}))),
            Err(ServiceError::InvalidData { .. })
        ));
        assert!(matches!(
            validate(&call("light", "turn_on", json!({}))),
            Err(ServiceError::UnknownService(..))
        ));
        let mut wrong_domain = call("switch", "turn_on", json!({}));
        wrong_domain.entity_ids = vec!["climate.ac".into()];
        assert!(matches!(
            validate(&wrong_domain),
            Err(ServiceError::UnknownEntity(_))
        ));
    }
}
