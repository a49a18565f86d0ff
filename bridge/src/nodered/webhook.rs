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
//!
//! The registry those requests are routed by ([`NodeRed::hook`],
//! [`NodeRed::unhook`], [`NodeRed::webhook_target`]) is here too.

use super::{NodeRed, Sink};
use crate::api::Api;
use crate::api::calls::Failure;
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

pub(super) struct Hook {
    allowed: Vec<String>,
    /// Only requests from a local address (HA's `local_only`).
    local_only: bool,
    token: u64,
    sink: Sink,
}
/// Most webhooks Node-RED may register (all its clients together).
pub const MAX_WEBHOOKS: usize = 1000;
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
impl NodeRed {
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
}
