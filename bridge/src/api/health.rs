//! `GET /api/health` → `{"status": "ok", "version", "mqtt_connected", "plugins": [...]}`.

use crate::broker::MqttLink;
use crate::plugins::PluginStatus;
use crate::shutdown::Shutdown;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Reads the current plugin statuses.
pub type PluginStatuses = Arc<dyn Fn() -> Vec<PluginStatus> + Send + Sync>;

pub async fn serve(
    addr: SocketAddr,
    link: MqttLink,
    plugins: PluginStatuses,
    mut shutdown: Shutdown,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("HTTP port {addr}: {e} (pass --http-port PORT)"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                c = listener.accept() => c,
                _ = shutdown.wait() => break,
            };
            let Ok((stream, _)) = conn else { continue };
            let (link, plugins) = (link.clone(), plugins.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let resp = answer(&req, &link, &plugins);
                    async move { Ok::<_, std::convert::Infallible>(resp) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(bound)
}

fn answer(
    req: &Request<hyper::body::Incoming>,
    link: &MqttLink,
    plugins: &PluginStatuses,
) -> Response<Full<Bytes>> {
    if req.uri().path() != "/api/health" {
        return json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"message": "not found; try /api/health"}),
        );
    }
    let plugins: Vec<PluginStatus> = plugins();
    json(
        StatusCode::OK,
        serde_json::json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "mqtt_connected": link.is_connected(),
            "plugins": plugins,
        }),
    )
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}
