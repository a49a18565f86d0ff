//! The parts of HA's REST API scripts use (developers.home-assistant.io,
//! "REST API"), with `Authorization: Bearer <token>`:
//! - `GET /api/` → `{"message": "API running."}`
//! - `GET /api/config` → as `get_config`
//! - `GET /api/states` → `[state]`; `GET /api/states/<entity_id>` → state,
//!   404 `{"message": "Entity not found."}`; path segments are
//!   percent-decoded (`sensor.x%5Fy` is `sensor.x_y`)
//! - `GET /api/services` → `[{"domain", "services"}]`
//! - `GET /api/history/period[/<start>]?filter_entity_id=a,b&end_time=…`
//!   → `[[state]]` from the recorder (parameters in
//!   [`crate::recorder::period`])
//! - `POST /api/states/<entity_id>` with `{"state", "attributes"}` → 201
//!   (new, with `Location`) or 200 and the state; an entity Hearth owns is
//!   refused with 400 ([`super::post_state`])
//! - `POST /api/template` with `{"template", "variables"}` → 200
//!   `text/plain` ([`crate::template::rest`])
//! - `POST /api/services/<domain>/<service>` with the service data (with
//!   `entity_id`, or `device_id`, `area_id`, `floor_id`, `label_id`) as the
//!   JSON body → 200 and the states the call changed
//!   while it ran; 400 with a message for bad input or unknown services
//!   (in REST's words: the body's `entity_id`, not WebSocket's `target`), a
//!   refused value included (HA's `ServiceValidationError`, with HA's
//!   message: `Validation error: Provided temperature 5 is not valid.
//!   Accepted range is 16.0 to 30.0.`).
//!
//! - `POST /api/hearth/plugins/upload?name=<plugin>` with a plugin's `.wasm`
//!   as the body → `{"wasm": "<path>"}` for `hearth/plugins/load|swap`
//!   ([`super::upload`]).
//!
//! Without a valid token: 401 (as HA); after repeated failures from one
//! address: 403 until the window passes.

use super::Api;
use super::auth::{AuthError, TokenInfo};
use super::calls::{self, Dialect, Failure};
use super::ha;
use super::registry::Registry;
use super::websocket::protocol::strings;
use crate::entity::StoreEvent;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;

/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;

pub async fn answer(
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    api: &Api,
) -> Response<Full<Bytes>> {
    let token = match authenticate(&req, peer, api) {
        Ok(t) => t,
        Err(resp) => return *resp,
    };
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/api/") => json(StatusCode::OK, json!({"message": "API running."})),
        (&Method::GET, "/api/config") => json(StatusCode::OK, api.config()),
        (&Method::GET, "/api/states") => json(StatusCode::OK, Value::Array(api.states())),
        (&Method::GET, "/api/services") => {
            let list: Vec<Value> = ha::services()
                .as_object()
                .into_iter()
                .flatten()
                .map(|(d, s)| json!({"domain": d, "services": s}))
                .collect();
            json(StatusCode::OK, Value::Array(list))
        }
        (&Method::GET, p)
            if p == "/api/history/period" || p.starts_with("/api/history/period/") =>
        {
            let query = req.uri().query().unwrap_or("").to_string();
            let (status, body) = crate::recorder::period::respond(
                api.recorder.clone(),
                api.store.clock().now_ms(),
                &p["/api/history/period".len()..],
                &query,
            )
            .await;
            json(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body,
            )
        }
        (&Method::GET, p) if p.starts_with("/api/states/") => {
            match segment(&p["/api/states/".len()..]).and_then(|id| api.state(&id)) {
                Some(s) => json(StatusCode::OK, s),
                None => message(StatusCode::NOT_FOUND, "Entity not found."),
            }
        }
        (&Method::POST, super::upload::PATH) => super::upload::answer(req, api, &token).await,
        (&Method::POST, "/api/template") => match read_body(req).await {
            Ok(body) => crate::template::rest::answer(api, &body).await,
            Err(resp) => *resp,
        },
        (&Method::POST, p) if p.starts_with("/api/services/") => {
            let query = req.uri().query().unwrap_or("").to_string();
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(resp) => return *resp,
            };
            call_service(api, &token, &p["/api/services/".len()..], &query, &body).await
        }
        (&Method::POST, p) if p.starts_with("/api/states/") => {
            let Some(id) = segment(&p["/api/states/".len()..]) else {
                return message(StatusCode::BAD_REQUEST, "Invalid entity ID specified.");
            };
            match read_body(req).await {
                Ok(body) => super::post_state::answer(api, &token, &id, &body),
                Err(resp) => *resp,
            }
        }
        (_, "/api/" | "/api/config" | "/api/states" | "/api/services") => {
            message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.")
        }
        (_, p) if p.starts_with("/api/states/") || p.starts_with("/api/services/") => message(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed: states come from devices (or POST /api/states/<entity_id> for your own); change devices with POST /api/services/<domain>/<service>.",
        ),
        _ => message(StatusCode::NOT_FOUND, "Not found."),
    }
}

/// The request body, at most [`MAX_BODY`] bytes.
async fn read_body(
    req: Request<hyper::body::Incoming>,
) -> Result<Bytes, Box<Response<Full<Bytes>>>> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Box::new(message(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body over {MAX_BODY} bytes"),
        ))),
        Err(e) => Err(Box::new(message(
            StatusCode::BAD_REQUEST,
            &format!("request body: {e}"),
        ))),
    }
}

/// The request's bearer token, or the 401/403 answer (also `GET /metrics`).
pub(crate) fn authenticate(
    req: &Request<hyper::body::Incoming>,
    peer: SocketAddr,
    api: &Api,
) -> Result<TokenInfo, Box<Response<Full<Bytes>>>> {
    let bearer = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(secret) = bearer else {
        return Err(Box::new(text(
            StatusCode::UNAUTHORIZED,
            "401: Unauthorized",
        )));
    };
    api.auth
        .verify(secret.trim(), peer.ip())
        .map_err(|e| match e {
            AuthError::Invalid => text(StatusCode::UNAUTHORIZED, "401: Unauthorized"),
            blocked @ AuthError::Blocked(_) => message(StatusCode::FORBIDDEN, &blocked.to_string()),
        })
        .map_err(Box::new)
}

async fn call_service(
    api: &Api,
    token: &TokenInfo,
    rest: &str,
    query: &str,
    body: &Bytes,
) -> Response<Full<Bytes>> {
    let Some((domain, service)) = rest
        .split_once('/')
        .filter(|(d, s)| !d.is_empty() && !s.is_empty() && !s.contains('/'))
        .and_then(|(d, s)| Some((segment(d)?, segment(s)?)))
    else {
        return message(
            StatusCode::NOT_FOUND,
            "Not found: expected /api/services/<domain>/<service>.",
        );
    };
    let (domain, service) = (domain.as_str(), service.as_str());
    let data: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice(body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return message(StatusCode::BAD_REQUEST, "Data should be a JSON object."),
            Err(_) => return message(StatusCode::BAD_REQUEST, "Data should be valid JSON."),
        }
    };
    let return_response = query
        .split('&')
        .any(|kv| kv == "return_response" || kv.starts_with("return_response="));
    let result = async {
        calls::check_service(domain, service, return_response)?;
        let mut data = data;
        // HA accepts the target keys in the body too.
        let mut take = |key: &str| strings(data.remove(key).as_ref(), key);
        let target = crate::areas::places::Target {
            entity_ids: take("entity_id")?.unwrap_or_default(),
            device_ids: take("device_id")?.unwrap_or_default(),
            area_ids: take("area_id")?.unwrap_or_default(),
            floor_ids: take("floor_id")?.unwrap_or_default(),
            label_ids: take("label_id")?.unwrap_or_default(),
        };
        let ids = api
            .places()
            .resolve(domain, &target)
            .map_err(|m| Failure::new(super::websocket::protocol::ERR_NOT_FOUND, m))?;
        // Watch the store from before the call: HA answers with the states
        // changed while the call ran.
        let (snapshot, mut rx) = api.store.subscribe();
        let reg = Registry::from_snapshot(&snapshot);
        let ctx = calls::run(api, token, domain, service, ids, data, Dialect::Rest).await?;
        let mut changed = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            if let StoreEvent::StateChanged(sc) = ev
                && let Some(new) = &sc.new_state
                && new.context.id == ctx.id
            {
                changed.push(ha::state(&reg.present(new)));
            }
        }
        Ok::<_, Failure>(changed)
    }
    .await;
    match result {
        Ok(changed) => json(StatusCode::OK, Value::Array(changed)),
        Err(f) => message(
            StatusCode::from_u16(f.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
            &f.message,
        ),
    }
}

/// One path segment, percent-decoded (`sensor.server%5Froom` →
/// `sensor.server_room`, as HA's router decodes paths); `None` if the
/// decoded bytes are not UTF-8. Segments are split before decoding, so an
/// encoded `/` (`%2F`) stays inside its segment.
pub(crate) fn segment(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

pub fn json(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

pub(super) fn message(status: StatusCode, msg: &str) -> Response<Full<Bytes>> {
    json(status, json!({"message": msg}))
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
