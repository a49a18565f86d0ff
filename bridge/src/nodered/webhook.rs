//! HA's webhook endpoint, `GET|HEAD|POST|PUT /api/webhook/<webhook_id>`,
//! for the webhooks Node-RED's `ha-webhook` nodes register
//! (`nodered/webhook`). As in HA: no authentication (the id is the
//! secret), an unknown id is answered 200 with nothing done (a caller
//! cannot probe which ids exist), a method the webhook does not allow is
//! 405, a `local_only` webhook asked from a non-local address (HA's
//! `network.is_local`) is answered 200 with nothing done. All of that is
//! decided before the body is read. The flow gets what the companion sends: `payload` (the body as
//! JSON, else as text, `{}` when empty), `headers` and `params` (the
//! query). Header names arrive in lower case (HTTP/1 names are
//! case-insensitive; HA passes them as the client wrote them).

use crate::api::Api;
use crate::nodered::HookOutcome;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value};

/// The path prefix this module answers.
pub const PREFIX: &str = "/api/webhook/";

/// Largest body a webhook takes (HA's request limit is larger; a flow's
/// messages need not be).
const MAX_BODY: usize = 1 << 20;

pub async fn answer(
    req: Request<hyper::body::Incoming>,
    peer: std::net::IpAddr,
    api: &Api,
) -> Response<Full<Bytes>> {
    let raw = &req.uri().path()[PREFIX.len()..];
    let Ok(id) = percent_encoding::percent_decode_str(raw).decode_utf8() else {
        return status(StatusCode::OK);
    };
    let id = id.into_owned();
    let method = req.method().as_str().to_string();
    if !matches!(method.as_str(), "GET" | "HEAD" | "POST" | "PUT") {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let sink = match api.nodered.webhook_target(&id, &method, peer) {
        Ok(sink) => sink,
        Err(outcome) => return refused(outcome),
    };
    let headers: Map<String, Value> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    let params: Map<String, Value> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return status(StatusCode::PAYLOAD_TOO_LARGE);
        }
        Err(_) => return status(StatusCode::BAD_REQUEST),
    };
    let text = String::from_utf8_lossy(&body);
    let payload = if text.is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()))
    };
    let data = serde_json::json!({"payload": payload, "headers": headers, "params": params});
    sink(serde_json::json!({"data": data}));
    status(StatusCode::OK)
}

fn refused(outcome: HookOutcome) -> Response<Full<Bytes>> {
    match outcome {
        HookOutcome::Unknown => {
            tracing::debug!("webhook request for an id no flow registered");
            status(StatusCode::OK)
        }
        HookOutcome::MethodNotAllowed => status(StatusCode::METHOD_NOT_ALLOWED),
        HookOutcome::NotLocal => {
            tracing::warn!("received a remote request for a local-only webhook; ignored");
            status(StatusCode::OK)
        }
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = code;
    resp
}
