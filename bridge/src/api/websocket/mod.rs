//! HA's WebSocket API at `/api/websocket` (developers.home-assistant.io,
//! "WebSocket API"; HA core's `websocket_api` component): the upgrade,
//! the auth phase and command phase (`session`), the outgoing queue
//! (`connection`), message shapes (`protocol`), HA's commands (`commands`),
//! subscriptions (`subscriptions`), HA's registry listings (`registries`),
//! HA's `history/history_during_period` (`history`)
//! and Hearth's own `hearth/…` commands (`hearth`).

pub mod commands;
pub mod connection;
pub mod energy;
pub mod hearth;
pub mod history;
pub mod history_stream;
pub mod nodered;
pub mod protocol;
pub mod registries;
pub mod session;
pub mod subscriptions;

use super::Api;
use crate::shutdown::Shutdown;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// Answers the HTTP upgrade and runs the session on the upgraded stream.
pub fn upgrade(
    mut req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    api: Arc<Api>,
    shutdown: Shutdown,
) -> Response<Full<Bytes>> {
    let is_upgrade = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).filter(|_| is_upgrade) else {
        let mut resp = Response::new(Full::new(Bytes::from_static(
            b"400: expected a WebSocket upgrade (Upgrade: websocket, Sec-WebSocket-Key)",
        )));
        *resp.status_mut() = StatusCode::BAD_REQUEST;
        return resp;
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let config = WebSocketConfig::default()
                    .max_message_size(Some(api.options.max_message_bytes))
                    .max_frame_size(Some(api.options.max_message_bytes));
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                session::run(ws, peer, api, shutdown).await;
            }
            Err(e) => tracing::debug!("WebSocket upgrade from {peer} failed: {e}"),
        }
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}
