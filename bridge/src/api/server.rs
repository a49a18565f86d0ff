//! The HTTP listener: routes `/api/health`, `/api/websocket`, the REST
//! API and the dashboard (`/`, `/assets/…`, [`crate::dashboard`]);
//! everything else is 404. With `[http] tls` every connection goes
//! through [`super::tls`] first (HTTPS/WSS; plain HTTP refused).

use super::{Api, health, rest, tls::ApiTls, websocket};
use crate::shutdown::Shutdown;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Listens on `addr` (HTTPS/WSS with `tls`, plain HTTP without).
pub async fn serve(
    addr: SocketAddr,
    api: Arc<Api>,
    tls: Option<ApiTls>,
    mut shutdown: Shutdown,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("HTTP port {addr}: {e} (pass --http-port PORT)"))?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                c = listener.accept() => c,
                _ = shutdown.wait() => break,
            };
            let Ok((stream, peer)) = conn else { continue };
            let _ = stream.set_nodelay(true);
            let (api, sd, tls) = (api.clone(), shutdown.clone(), tls.clone());
            // The handshake runs on the connection's own task: a client
            // that never finishes it delays no one.
            tokio::spawn(async move {
                match tls {
                    None => serve_connection(TokioIo::new(stream), peer, api, sd).await,
                    Some(tls) => {
                        if let Some(stream) = tls.accept(stream).await {
                            serve_connection(TokioIo::new(stream), peer, api, sd).await;
                        }
                    }
                }
            });
        }
    });
    Ok((bound, task))
}

async fn serve_connection<I>(io: I, peer: SocketAddr, api: Arc<Api>, sd: Shutdown)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let (api, sd) = (api.clone(), sd.clone());
        async move { Ok::<_, std::convert::Infallible>(route(req, peer, api, sd).await) }
    });
    // A client gets 30 s to send its request headers (slowloris).
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(30))
        .serve_connection(io, service)
        .with_upgrades()
        .await;
}

async fn route(
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    api: Arc<Api>,
    shutdown: Shutdown,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::GET, "/api/health") => rest::json(StatusCode::OK, health::answer(&api)),
        (&Method::GET, "/api/websocket") => websocket::upgrade(req, peer, api, shutdown),
        (&Method::GET, "/metrics") => crate::metrics::http::answer(req, peer, &api).await,
        // Before the REST API: webhooks take no token (the id is the secret).
        (_, p) if p.starts_with(crate::nodered::webhook::PREFIX) => {
            crate::nodered::webhook::answer(req, peer.ip(), &api).await
        }
        (_, p) if p == "/api" || p.starts_with("/api/") => rest::answer(req, peer, &api).await,
        (m, p) if crate::dashboard::serves(m, p) => crate::dashboard::answer(m, p, req.headers()),
        _ => rest::json(
            StatusCode::NOT_FOUND,
            json!({"message": "Not found; the API is under /api/ (/api/websocket, /api/states, /api/health)"}),
        ),
    }
}
