//! `POST /api/template` (HA's `APITemplateView` in
//! `components/api/__init__.py`): body `{"template": "...", "variables":
//! {...}}` → 200 `text/plain` with the rendered text (stripped, not typed:
//! HA's `parse_result=False`); a template error or a body that is not JSON
//! → 400 `{"message": "Error rendering template: <error>"}`. A body
//! without `template` is a 400 too (HA answers 500: its `KeyError` is not
//! caught). The render runs on a render thread ([`super::render_async`]),
//! not on the async runtime.

use super::subscription::world_now;
use crate::api::Api;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

pub async fn answer(api: &Api, body: &[u8]) -> Response<Full<Bytes>> {
    let data: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return failed(&e.to_string()),
    };
    let Some(template) = data.get("template").and_then(Value::as_str) else {
        return failed("the body needs \"template\": a string");
    };
    let variables = match data.get("variables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return failed("\"variables\" must be an object"),
    };
    let rendered =
        super::render_async(template.to_string(), variables, world_now(api), false).await;
    match rendered.result {
        Ok(text) => {
            // A static template is its own text, unstripped (HA).
            let text = if super::is_static(template) {
                template.to_string()
            } else {
                text
            };
            let mut resp = Response::new(Full::new(Bytes::from(text)));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            resp
        }
        Err(e) => failed(&e.0),
    }
}

fn failed(why: &str) -> Response<Full<Bytes>> {
    crate::api::rest::json(
        StatusCode::BAD_REQUEST,
        json!({"message": format!("Error rendering template: {why}")}),
    )
}
