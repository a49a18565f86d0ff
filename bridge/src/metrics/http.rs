//! `GET /metrics` on the bridge's HTTP port (HTTPS with `[http] tls`).
//!
//! - `Authorization: Bearer <token>` as the REST API (401 without, 403
//!   after repeated failures from one address). Prometheus:
//!
//!   ```yaml
//!   scrape_configs:
//!     - job_name: hearth
//!       static_configs: [{ targets: ["hearth.lan:8099"] }]
//!       authorization:
//!         credentials_file: /etc/prometheus/hearth-token   # one line: the token
//!   ```
//! - `Accept: application/openmetrics-text` (Prometheus sends it first) →
//!   OpenMetrics 1.0 text; anything else → the Prometheus text format 0.0.4.
//! - 404 when the bridge was built without metrics (tools and tests that
//!   make an `Api` of their own).

use crate::api::Api;
use crate::api::rest;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use std::net::SocketAddr;

/// `Content-Type` of OpenMetrics 1.0 text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// `Content-Type` of the Prometheus text format 0.0.4.
pub const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

pub async fn answer(
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    api: &Api,
) -> Response<Full<Bytes>> {
    if let Err(resp) = rest::authenticate(&req, peer, api) {
        return *resp;
    }
    let Some(metrics) = api.metrics.clone() else {
        return rest::json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"message": "metrics are not enabled on this bridge"}),
        );
    };
    let openmetrics = req
        .headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    // The scrape takes the locks of the parts it reads (the InfluxDB
    // buffer's may be held during a disk write): off the async workers.
    let body = match tokio::task::spawn_blocking(move || metrics.encode(openmetrics)).await {
        Ok(b) => b,
        Err(e) => {
            return rest::json(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"message": format!("metrics: {e}")}),
            );
        }
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(if openmetrics {
            OPENMETRICS
        } else {
            PROMETHEUS_TEXT
        }),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
