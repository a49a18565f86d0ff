//! Service calls from the WebSocket and REST APIs: target resolution and
//! the mapping of the router's errors onto HA's error codes (and, for a
//! refused value, HA's translation fields), in the words of the API that
//! asked ([`Dialect`]).

use super::Api;
use super::auth::TokenInfo;
use super::websocket::protocol::{
    self, ERR_HOME_ASSISTANT_ERROR, ERR_INVALID_FORMAT, ERR_NOT_FOUND, ERR_SERVICE_VALIDATION_ERROR,
};
use crate::entity::accepts::{Rule, Translation};
use crate::entity::service::SERVICES;
use crate::entity::{CallSource, Context, ServiceCall, ServiceError};
use serde_json::{Map, Value, json};

/// An error answer: HA's code and a message naming the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
    /// HA's `translation_domain`, `translation_key` and
    /// `translation_placeholders`, for the errors HA translates.
    pub translation: Option<Translation>,
}

/// Which API asked: error messages name fields in its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `call_service` with `target` and `service_data`.
    WebSocket,
    /// `POST /api/services/<domain>/<service>` with the data as the body.
    Rest,
}

impl Dialect {
    /// Where the caller names the entities to act on.
    fn entity_field(self) -> &'static str {
        match self {
            Dialect::WebSocket => "target.entity_id",
            Dialect::Rest => "`entity_id` in the JSON body",
        }
    }
}

impl Failure {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            translation: None,
        }
    }

    /// The WebSocket `result` message for this failure, as HA's
    /// `connection.send_error` shapes it (translation fields only when set).
    pub fn answer(&self, id: u64) -> Value {
        let mut answer = protocol::error(json!(id), self.code, &self.message);
        if let Some(t) = &self.translation {
            let error = &mut answer["error"];
            error["translation_domain"] = t.domain.into();
            error["translation_key"] = t.key.into();
            error["translation_placeholders"] = Value::Object(t.placeholders.clone());
        }
        answer
    }

    /// The REST status HA answers with for this code.
    pub fn http_status(&self) -> u16 {
        match self.code {
            ERR_HOME_ASSISTANT_ERROR => 500,
            _ => 400,
        }
    }
}

/// Field errors from [`super::websocket::protocol::Fields`].
impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::new(ERR_INVALID_FORMAT, message)
    }
}

/// The router's error as HA answers it: `ServiceNotFound` → `not_found`,
/// a schema error (`vol.Invalid`) → `invalid_format`, a
/// `ServiceValidationError` → `service_validation_error` with the message
/// prefixed `Validation error: ` and, where HA has one, its translation
/// (`websocket_api/commands.py`, `handle_call_service`).
pub fn classify(e: &ServiceError) -> Failure {
    if let ServiceError::NotAccepted(refusal) = e {
        return match refusal.rule {
            Rule::ServiceSchema => Failure::new(ERR_INVALID_FORMAT, refusal.ha_message()),
            Rule::Entity | Rule::SafetyEnvelope => Failure {
                code: ERR_SERVICE_VALIDATION_ERROR,
                message: format!("Validation error: {}", refusal.ha_message()),
                translation: refusal.translation(),
            },
        };
    }
    let code = match e {
        ServiceError::UnknownService(..) | ServiceError::UnknownEntity(_) => ERR_NOT_FOUND,
        ServiceError::InvalidData { .. } => ERR_INVALID_FORMAT,
        ServiceError::Refused { .. }
        | ServiceError::Validation(_)
        | ServiceError::NotAccepted(_) => ERR_SERVICE_VALIDATION_ERROR,
        ServiceError::Unavailable(_) | ServiceError::Driver { .. } => ERR_HOME_ASSISTANT_ERROR,
    };
    let message = match e {
        // HA's wording.
        ServiceError::UnknownService(d, s) => format!("Service {d}.{s} not found."),
        other => other.to_string(),
    };
    Failure::new(code, message)
}

/// Refuses services Hearth does not handle, and `return_response` (none of
/// Hearth's services returns data; HA's answer is the same).
pub fn check_service(domain: &str, service: &str, return_response: bool) -> Result<(), Failure> {
    if !SERVICES
        .iter()
        .any(|d| d.domain == domain && d.service == service)
    {
        return Err(classify(&ServiceError::UnknownService(
            domain.into(),
            service.into(),
        )));
    }
    if return_response {
        return Err(Failure::new(
            ERR_SERVICE_VALIDATION_ERROR,
            "An action which does not return responses can't be called with return_response=True",
        ));
    }
    Ok(())
}

/// Runs a call for an authenticated client; the context on success.
pub async fn run(
    api: &Api,
    token: &TokenInfo,
    domain: &str,
    service: &str,
    mut entity_ids: Vec<String>,
    data: Map<String, Value>,
    dialect: Dialect,
) -> Result<Context, Failure> {
    let mut seen = std::collections::HashSet::new();
    entity_ids.retain(|e| seen.insert(e.clone()));
    if entity_ids.is_empty() {
        // HA would run the service on nothing and succeed; a script that
        // targets nothing has a bug worth reporting.
        return Err(Failure::new(
            ERR_SERVICE_VALIDATION_ERROR,
            format!(
                "{domain}.{service}: no entity targeted; pass {}",
                dialect.entity_field()
            ),
        ));
    }
    let context = Context::new(Some(token.id.clone()));
    let call = ServiceCall {
        domain: domain.into(),
        service: service.into(),
        entity_ids,
        data,
        source: CallSource::Api(token.name.clone()),
        context: context.clone(),
    };
    api.router.call(call).await.map_err(|e| classify(&e))?;
    Ok(context)
}
