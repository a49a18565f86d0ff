//! A small client of the bridge's own WebSocket API, for the CLI
//! (`hearth plugin …`): connect, authenticate with a long-lived token, send
//! commands and read their results. Plain `ws://` on loopback by default.

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct ApiClient {
    socket: Socket,
    next_id: u64,
}

impl ApiClient {
    /// Connects to `url` (`ws://host:port/api/websocket`) and authenticates.
    pub async fn connect(url: &str, token: &str) -> anyhow::Result<Self> {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("connecting to {url} (is the bridge running?)"))?;
        let mut client = ApiClient { socket, next_id: 1 };
        let first = client.read().await?;
        if first["type"] != "auth_required" {
            bail!("{url} did not ask for authentication (got {first})");
        }
        client
            .socket
            .send(Message::text(
                json!({"type": "auth", "access_token": token}).to_string(),
            ))
            .await?;
        let answer = client.read().await?;
        match answer["type"].as_str() {
            Some("auth_ok") => Ok(client),
            Some("auth_invalid") => bail!(
                "the bridge refused the token: {} (create one with `hearth token create --name cli`)",
                answer["message"].as_str().unwrap_or("invalid")
            ),
            _ => bail!("unexpected answer to auth: {answer}"),
        }
    }

    async fn read(&mut self) -> anyhow::Result<Value> {
        loop {
            let msg = self
                .socket
                .next()
                .await
                .context("the bridge closed the connection")??;
            match msg {
                Message::Text(t) => {
                    return serde_json::from_str(t.as_str()).with_context(|| {
                        format!(
                            "the bridge sent a message that is not JSON: `{}`",
                            crate::broker::excerpt(t.as_bytes())
                        )
                    });
                }
                Message::Close(f) => bail!("the bridge closed the connection: {f:?}"),
                _ => continue,
            }
        }
    }

    /// Sends `{"type": kind, ...args}` and returns its `result`, or the
    /// error's message.
    pub async fn command(&mut self, kind: &str, args: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = match args {
            Value::Object(m) => m,
            Value::Null => Default::default(),
            other => bail!("command arguments must be an object, got {other}"),
        };
        msg.insert("id".into(), json!(id));
        msg.insert("type".into(), json!(kind));
        self.socket
            .send(Message::text(Value::Object(msg).to_string()))
            .await?;
        loop {
            let m = self.read().await?;
            if m["id"] != json!(id) || m["type"] != "result" {
                continue;
            }
            if m["success"] == true {
                return Ok(m["result"].clone());
            }
            bail!(
                "{} ({})",
                m["error"]["message"].as_str().unwrap_or("failed"),
                m["error"]["code"].as_str().unwrap_or("error")
            );
        }
    }
}
