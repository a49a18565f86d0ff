//! Service calls from the WebSocket and REST APIs: target resolution and
//! the mapping of the router's errors onto HA's error codes.

use super::Api;
use super::auth::TokenInfo;
use super::websocket::protocol::{
    ERR_HOME_ASSISTANT_ERROR, ERR_INVALID_FORMAT, ERR_NOT_FOUND, ERR_SERVICE_VALIDATION_ERROR,
};
use crate::entity::service::SERVICES;
use crate::entity::{CallSource, Context, ServiceCall, ServiceError, domain_of};
use serde_json::{Map, Value};

/// An error answer: HA's code and a message naming the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
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

pub fn classify(e: &ServiceError) -> Failure {
    let code = match e {
        ServiceError::UnknownService(..) | ServiceError::UnknownEntity(_) => ERR_NOT_FOUND,
        ServiceError::InvalidData { .. } => ERR_INVALID_FORMAT,
        ServiceError::Refused { .. } | ServiceError::Validation(_) => ERR_SERVICE_VALIDATION_ERROR,
        ServiceError::Unavailable(_) | ServiceError::Driver { .. } => ERR_HOME_ASSISTANT_ERROR,
    };
    let message = match e {
        // HA's wording.
        ServiceError::UnknownService(d, s) => format!("Service {d}.{s} not found."),
        other => other.to_string(),
    };
    Failure { code, message }
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

/// The entities of `device_id` in `domain` (HA's `target.device_id`).
pub fn device_entities(api: &Api, device_id: &str, domain: &str) -> Result<Vec<String>, Failure> {
    let snapshot = api.store.snapshot();
    if !snapshot.devices.iter().any(|(d, _)| d.id == device_id) {
        return Err(Failure::new(
            ERR_NOT_FOUND,
            format!("device `{device_id}` not found"),
        ));
    }
    Ok(snapshot
        .entities
        .iter()
        .filter(|(spec, _)| spec.device_id == device_id && domain_of(&spec.entity_id) == domain)
        .map(|(spec, _)| spec.entity_id.clone())
        .collect())
}

/// Runs a call for an authenticated client; the context on success.
pub async fn run(
    api: &Api,
    token: &TokenInfo,
    domain: &str,
    service: &str,
    mut entity_ids: Vec<String>,
    data: Map<String, Value>,
) -> Result<Context, Failure> {
    let mut seen = std::collections::HashSet::new();
    entity_ids.retain(|e| seen.insert(e.clone()));
    if entity_ids.is_empty() {
        // HA would run the service on nothing and succeed; a script that
        // targets nothing has a bug worth reporting.
        return Err(Failure::new(
            ERR_SERVICE_VALIDATION_ERROR,
            format!("{domain}.{service}: no entity targeted; pass target.entity_id"),
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
