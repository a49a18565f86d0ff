//! One WebSocket client from `auth_required` to close.
//!
//! Auth phase (HA's `AuthPhase`): the server sends `auth_required` at once;
//! the client's first message must be `{"type":"auth","access_token":…}`
//! within 10 s (it may arrive before the client read `auth_required`). Then
//! `auth_ok`, or `auth_invalid` and close.
//!
//! Command phase (HA's `ActiveConnection`): text frames carry one command
//! or a JSON array of them; ids must increase; results and events go
//! through the bounded queue of [`Conn`]. Invalid JSON closes the
//! connection (as HA does); an empty binary frame closes it, others are
//! logged and ignored (HA routes binary frames to handlers by their first
//! byte; Hearth has none). Messages over 4 MiB close it with 1009. The
//! server pings every 30 s; a client silent for two intervals is dropped.

use super::connection::{Conn, DropReason, write_loop};
use super::protocol::{self, ERR_ID_REUSE, ERR_UNKNOWN_COMMAND};
use super::{commands, hearth, history, nodered, registries};
use crate::api::Api;
use crate::api::auth::TokenInfo;
use crate::shutdown::Shutdown;
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::AbortHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message};

/// How a session ends.
enum End {
    /// Send a close frame after what is queued.
    Close(u16, String),
    /// Dropped for being too slow: the writer skips the backlog and sends
    /// the close frame with the reason (see [`super::connection`]).
    TooSlow,
    /// The peer went away or must be dropped without ceremony.
    Drop,
}

/// How long a dropped client gets to take its close frame: one that reads
/// nothing cannot, and must not hold the session.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub struct Session {
    pub conn: Arc<Conn>,
    pub api: Arc<Api>,
    pub token: TokenInfo,
    last_id: u64,
    pub subscriptions: HashMap<u64, AbortHandle>,
    /// Running `call_service` tasks, and the permits that bound them.
    pub calls: tokio::task::JoinSet<()>,
    pub calls_in_flight: Arc<tokio::sync::Semaphore>,
}

pub async fn run<S>(ws: WebSocketStream<S>, peer: SocketAddr, api: Arc<Api>, mut shutdown: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, mut stream) = ws.split();
    let (conn, rx, mut dropped) = Conn::new(peer, api.options.max_pending);
    let conn = Arc::new(conn);
    let mut writer = tokio::spawn(write_loop(sink, rx, conn.coalesce.clone(), conn.dropped()));
    conn.send(protocol::auth_required());

    let end = match auth_phase(&mut stream, &conn, &api, &mut shutdown).await {
        Ok(token) => {
            tracing::debug!(
                "WebSocket client {peer} authenticated with token `{}`",
                token.name
            );
            // Counted while authenticated (`hearth_websocket_clients`).
            let _counted = api.metrics.as_ref().map(|m| m.websocket_client());
            let mut session = Session {
                conn: conn.clone(),
                api: api.clone(),
                token,
                last_id: 0,
                subscriptions: HashMap::new(),
                calls: tokio::task::JoinSet::new(),
                calls_in_flight: Arc::new(tokio::sync::Semaphore::new(
                    commands::MAX_CALLS_IN_FLIGHT,
                )),
            };
            let end = session
                .serve(&mut stream, &mut shutdown, &mut dropped)
                .await;
            session.subscriptions.values().for_each(AbortHandle::abort);
            session.calls.abort_all();
            end
        }
        Err(end) => end,
    };
    if let Some(m) = &api.metrics {
        match &end {
            End::TooSlow => m.websocket_dropped("slow"),
            End::Close(1009, _) => m.websocket_dropped("oversize"),
            _ => {}
        }
    }
    match end {
        End::Close(code, reason) => {
            // A client that does not read cannot hold the session: queuing
            // the close frame and flushing get 2 s each.
            let _ = tokio::time::timeout(CLOSE_GRACE, conn.close(code, &reason)).await;
            drop(conn);
            if tokio::time::timeout(CLOSE_GRACE, &mut writer)
                .await
                .is_err()
            {
                writer.abort();
            }
        }
        End::TooSlow => {
            drop(conn);
            if tokio::time::timeout(CLOSE_GRACE, &mut writer)
                .await
                .is_err()
            {
                writer.abort();
            }
        }
        End::Drop => writer.abort(),
    }
}

/// Reads the next text frame, skipping control frames.
async fn next_text<S>(stream: &mut S) -> Option<Result<String, End>>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    loop {
        return match stream.next().await? {
            Ok(Message::Text(t)) => Some(Ok(t.as_str().to_string())),
            Ok(Message::Binary(_)) => {
                Some(Err(End::Close(1003, "expected a JSON text frame".into())))
            }
            Ok(Message::Close(_)) => None,
            Ok(_) => continue,
            Err(tungstenite::Error::Capacity(e)) => {
                Some(Err(End::Close(1009, format!("message too big: {e}"))))
            }
            Err(_) => None,
        };
    }
}

async fn auth_phase<S>(
    stream: &mut S,
    conn: &Conn,
    api: &Api,
    shutdown: &mut Shutdown,
) -> Result<TokenInfo, End>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let peer = conn.peer;
    let frame = tokio::select! {
        f = tokio::time::timeout(api.options.auth_timeout, next_text(stream)) => f,
        _ = shutdown.wait() => return Err(End::Close(1001, "bridge shutting down".into())),
    };
    let text = match frame {
        Err(_) => {
            let secs = api.options.auth_timeout.as_secs_f64();
            tracing::info!("WebSocket client {peer}: no auth message within {secs} s; closing");
            return Err(End::Close(1008, format!("no auth message within {secs} s")));
        }
        Ok(None) => return Err(End::Drop),
        Ok(Some(Err(end))) => return Err(end),
        Ok(Some(Ok(text))) => text,
    };
    let token = match serde_json::from_str::<Value>(&text) {
        Ok(v) if v["type"] == "auth" => match &v["access_token"] {
            Value::String(t) => Ok(t.clone()),
            Value::Null => Err("`access_token` is missing"),
            _ => Err("`access_token` must be a string"),
        },
        Ok(v) if v["type"].is_string() => Err("expected `type` \"auth\""),
        Ok(_) => Err("expected {\"type\": \"auth\", \"access_token\": …}"),
        Err(_) => Err("not JSON"),
    };
    let token = match token {
        Ok(t) => t,
        Err(why) => {
            // Never echo the message: it may hold a secret.
            tracing::info!("WebSocket client {peer}: auth message incorrectly formatted: {why}");
            conn.send(protocol::auth_invalid(&format!(
                "Auth message incorrectly formatted: {why}"
            )));
            return Err(End::Close(
                1008,
                "auth message incorrectly formatted".into(),
            ));
        }
    };
    match api.auth.verify(&token, peer.ip()) {
        Ok(info) => {
            conn.send(protocol::auth_ok());
            Ok(info)
        }
        Err(e) => {
            conn.send(protocol::auth_invalid(&e.to_string()));
            Err(End::Close(1008, "authentication failed".into()))
        }
    }
}

impl Session {
    async fn serve<S>(
        &mut self,
        stream: &mut S,
        shutdown: &mut Shutdown,
        dropped: &mut tokio::sync::watch::Receiver<Option<DropReason>>,
    ) -> End
    where
        S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
    {
        let peer = self.conn.peer;
        let mut tokens = self.api.auth.changes();
        let beat = self.api.options.heartbeat;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
        let mut last_heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                biased;
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() >= 2 * beat {
                        tracing::warn!(
                            "WebSocket client {peer} (token `{}`) dropped: silent for {:.1} s, pings unanswered",
                            self.token.name,
                            last_heard.elapsed().as_secs_f64()
                        );
                        if let Some(m) = &self.api.metrics {
                            m.websocket_dropped("heartbeat");
                        }
                        return End::Drop;
                    }
                    self.conn.ping();
                }
                _ = dropped.changed() => {
                    let detail = dropped.borrow().as_ref().map(|r| r.detail.clone()).unwrap_or_default();
                    tracing::warn!("WebSocket client {peer} (token `{}`) dropped: {detail}", self.token.name);
                    return End::TooSlow;
                }
                _ = shutdown.wait() => return End::Close(1001, "bridge shutting down".into()),
                Ok(()) = tokens.changed() => {
                    if !self.api.auth.is_valid(&self.token.id) {
                        tracing::info!("WebSocket client {peer}: token `{}` was revoked; closing", self.token.name);
                        return End::Close(1008, "access token revoked".into());
                    }
                }
                frame = stream.next() => {
                    last_heard = tokio::time::Instant::now();
                    match frame {
                    None | Some(Ok(Message::Close(_))) => return End::Drop,
                    Some(Err(tungstenite::Error::Capacity(e))) => {
                        tracing::warn!("WebSocket client {peer}: message too big ({e}); closing");
                        return End::Close(1009, format!("message too big: {e}"));
                    }
                    Some(Err(e)) => {
                        tracing::debug!("WebSocket client {peer}: {e}");
                        return End::Drop;
                    }
                    Some(Ok(Message::Text(t))) => {
                        if let Err(end) = self.on_text(t.as_str()) {
                            return end;
                        }
                    }
                    Some(Ok(Message::Binary(b))) => match b.first() {
                        None => return End::Close(1003, "empty binary message".into()),
                        Some(h) => {
                            // Per client address: one client's flood is a few lines a minute.
                            static BAD_INPUT: std::sync::LazyLock<std::sync::Arc<crate::logging::Throttle>> =
                                std::sync::LazyLock::new(|| crate::logging::Throttle::new("bad WebSocket input"));
                            if BAD_INPUT.admit(&peer.ip().to_string()) {
                                tracing::warn!(
                                    "WebSocket client {peer}: binary message for non-existing handler {h}; ignored"
                                );
                            }
                        }
                    },
                    Some(Ok(_)) => {}
                    }
                }
            }
        }
    }

    fn on_text(&mut self, text: &str) -> Result<(), End> {
        // Answers queued from here on are the client's own doing.
        self.conn.answering.store(true, Ordering::Relaxed);
        let result = self.on_commands(text);
        self.conn.answering.store(false, Ordering::Relaxed);
        result
    }

    fn on_commands(&mut self, text: &str) -> Result<(), End> {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(
                    "WebSocket client {}: received invalid JSON ({e}); closing",
                    self.conn.peer
                );
                return Err(End::Close(1007, format!("invalid JSON: {e}")));
            }
        };
        match value {
            Value::Array(cmds) => cmds.into_iter().for_each(|c| self.handle(c)),
            other => self.handle(other),
        }
        Ok(())
    }

    fn handle(&mut self, value: Value) {
        let cmd = match protocol::command(value) {
            Ok(c) => c,
            Err(answer) => {
                self.conn.send(answer);
                return;
            }
        };
        if cmd.id <= self.last_id {
            self.conn.send(protocol::error(
                json!(cmd.id),
                ERR_ID_REUSE,
                "Identifier values have to increase.",
            ));
            return;
        }
        let known = if cmd.kind.starts_with("hearth/") {
            hearth::handle(self, &cmd)
        } else if cmd.kind.starts_with("config/") {
            registries::handle(self, &cmd)
        } else if cmd.kind.starts_with("history/") {
            history::handle(self, &cmd)
        } else if cmd.kind.starts_with("nodered/") {
            nodered::handle(self, &cmd)
        } else {
            commands::handle(self, &cmd)
        };
        match known {
            Some(Ok(())) => {}
            Some(Err(f)) => {
                self.conn.send(f.answer(cmd.id));
            }
            None => {
                // As HA: an unknown command does not consume its id.
                self.conn.send(protocol::error(
                    json!(cmd.id),
                    ERR_UNKNOWN_COMMAND,
                    &format!("Unknown command: {}", cmd.kind),
                ));
                return;
            }
        }
        self.last_id = cmd.id;
    }
}
