//! The transport: one signed message per `POST http://<plug>/config`
//! (the plug's local HTTP API, as meross_lan's `MerossHttpClient` talks to
//! it: krahabb/meross_lan `merossclient/httpclient.py`), the answer
//! checked by [`super::message::check_answer`].

use super::message::{self, MessageError};
use crate::drivers::http_client::{HttpClient, HttpFailure};
use crate::secret::Secret;
use serde_json::Value;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read (`Appliance.System.All` of a plug is a few kB).
const MAX_BODY: usize = 256 * 1024;

/// Why a request got no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MerossError {
    /// Nothing usable came back (refused, timed out, closed, HTTP error):
    /// counts towards offline.
    #[error("{namespace} {method}: {reason}")]
    Transport {
        namespace: String,
        method: String,
        reason: String,
    },
    /// An answer came back, but it is wrong (or an error).
    #[error("{namespace} {method}: {error} (answer `{body}`)")]
    Answer {
        namespace: String,
        method: String,
        error: MessageError,
        body: String,
    },
}

impl MerossError {
    pub fn is_sign_refused(&self) -> bool {
        matches!(
            self,
            MerossError::Answer {
                error: MessageError::SignRefused { .. },
                ..
            }
        )
    }
}

pub struct MerossClient {
    url: String,
    key: Secret,
    http: HttpClient,
}

impl MerossClient {
    /// `url` is `http://<plug>` (no path).
    pub fn new(url: &str, key: Secret) -> Self {
        MerossClient {
            url: url.trim_end_matches('/').to_string(),
            key,
            http: HttpClient::new(TIMEOUT, MAX_BODY),
        }
    }

    /// Sends `method` (`GET`/`SET`) on `namespace`; the checked payload.
    /// `timestamp_s` goes in the signed header.
    pub async fn call(
        &self,
        method: &str,
        namespace: &str,
        payload: Value,
        timestamp_s: i64,
    ) -> Result<Value, MerossError> {
        let transport = |reason: String| MerossError::Transport {
            namespace: namespace.into(),
            method: method.into(),
            reason,
        };
        let endpoint = format!("{}/config", self.url);
        let mid = message::message_id();
        let body = message::request(
            &endpoint,
            &mid,
            method,
            namespace,
            self.key.expose(),
            timestamp_s,
            payload,
        )
        .to_string();
        let secs = TIMEOUT.as_secs();
        let answer = self.http.post_json(&endpoint, body).await.map_err(|f| {
            transport(match f {
                HttpFailure::Build(e) => e,
                HttpFailure::NoAnswer => format!("no answer within {secs} s"),
                HttpFailure::Request(e) => format!("POST {endpoint} failed: {}", chain(&e)),
                HttpFailure::BodyTimeout => format!("body not received within {secs} s"),
                HttpFailure::Body(e) => format!("reading the body failed: {e}"),
            })
        })?;
        let status = hyper::StatusCode::from_u16(answer.status)
            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = answer.body;
        if !status.is_success() {
            return Err(transport(format!(
                "HTTP {status} (body `{}`)",
                crate::broker::excerpt(&bytes)
            )));
        }
        message::check_answer(&bytes, &mid, method, namespace, self.key.expose()).map_err(|error| {
            MerossError::Answer {
                namespace: namespace.into(),
                method: method.into(),
                error,
                body: crate::broker::excerpt(&bytes),
            }
        })
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
