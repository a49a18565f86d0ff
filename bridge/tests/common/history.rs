//! What the recorder's and the history API's tests share: a bridge with
//! the recorder on a temporary data directory, a metered sensor, and an
//! authenticated WebSocket client that sends one command at a time.

use futures_util::{SinkExt, StreamExt};
use hearth::app::Bridge;
use hearth::broker::EmbeddedBroker;
use hearth::clock::Clock;
use hearth::config::Config;
use hearth::entity::{Component, Device, EntitySpec, EntityStore};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

pub fn device(id: &str) -> Device {
    Device {
        id: id.into(),
        name: id.into(),
        manufacturer: "test".into(),
        model: "test".into(),
        sw_version: None,
        via_device: None,
    }
}

/// Device `meter` with `sensor.meter_power` (W, measurement).
pub fn add_meter(store: &EntityStore) {
    store.upsert_device("test", device("meter")).unwrap();
    store
        .upsert_entity(
            EntitySpec::new("meter", "power", Component::Sensor)
                .named("Power")
                .measured("W", "measurement"),
        )
        .unwrap();
}

pub async fn start_bridge(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Bridge {
    super::init_logs();
    let mut config = Config::default();
    config.mqtt.port = EmbeddedBroker::free_port();
    config.http.port = 0;
    config.data_dir = Some(dir.to_path_buf());
    tweak(&mut config);
    Bridge::start(config, Clock::real())
        .await
        .expect("bridge starts")
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// An authenticated WebSocket client. Messages read while waiting for
/// another (a result, an event) are kept, in order, for `recv`/`next`.
pub struct Ws {
    ws: Socket,
    next_id: u64,
    stash: VecDeque<Value>,
}

const WS_WAIT: Duration = Duration::from_secs(15);

impl Ws {
    pub async fn auth(addr: SocketAddr, token: &str) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/websocket"))
            .await
            .expect("WebSocket upgrade");
        let mut me = Ws {
            ws,
            next_id: 1,
            stash: VecDeque::new(),
        };
        let first = me.read().await;
        assert_eq!(first["type"], "auth_required", "{first}");
        me.ws
            .send(Message::text(
                json!({"type": "auth", "access_token": token}).to_string(),
            ))
            .await
            .unwrap();
        let ok = me.read().await;
        assert_eq!(ok["type"], "auth_ok", "{ok}");
        me
    }

    /// The next message off the socket (15 s at most).
    async fn read(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WS_WAIT, self.ws.next())
                .await
                .expect("a message within 15 s")
                .expect("connection open")
                .unwrap();
            if let Message::Text(t) = msg {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }

    /// The next message: a kept one first, else off the socket.
    pub async fn recv(&mut self) -> Value {
        match self.stash.pop_front() {
            Some(v) => v,
            None => self.read().await,
        }
    }

    /// The next message if one comes within `wait`.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        tokio::time::timeout(wait, self.recv()).await.ok()
    }

    /// Sends a command with the next id; its id.
    pub async fn send(&mut self, mut cmd: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        cmd["id"] = json!(id);
        self.ws.send(Message::text(cmd.to_string())).await.unwrap();
        id
    }

    /// The first message matching `pred` (others are kept).
    pub async fn next(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.stash.iter().position(&pred) {
            return self.stash.remove(i).unwrap();
        }
        let deadline = tokio::time::Instant::now() + WS_WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = tokio::time::timeout(left, self.read())
                .await
                .unwrap_or_else(|_| panic!("no {what} within 15 s; kept {:?}", self.stash));
            if pred(&v) {
                return v;
            }
            self.stash.push_back(v);
        }
    }

    /// The result of command `id`.
    pub async fn result(&mut self, id: u64) -> Value {
        self.next(&format!("result {id}"), |v| {
            v["type"] == "result" && v["id"] == id
        })
        .await
    }

    /// Sends a command; its result message.
    pub async fn call(&mut self, cmd: Value) -> Value {
        let id = self.send(cmd).await;
        self.result(id).await
    }

    /// The next event of subscription `id`.
    pub async fn event(&mut self, id: u64) -> Value {
        self.next(&format!("event {id}"), |v| {
            v["type"] == "event" && v["id"] == id
        })
        .await["event"]
            .clone()
    }

    /// Events of subscription `id` that arrived before a ping's pong (the
    /// server answers in order, so nothing later can be one sent before).
    pub async fn events_until_pong(&mut self, id: u64) -> Vec<Value> {
        let ping = self.send(json!({"type": "ping"})).await;
        self.next("pong", |v| v["type"] == "pong" && v["id"] == ping)
            .await;
        let (mine, rest): (Vec<Value>, Vec<Value>) = self
            .stash
            .drain(..)
            .partition(|v| v["type"] == "event" && v["id"] == id);
        self.stash = rest.into();
        mine.into_iter().map(|v| v["event"].clone()).collect()
    }
}
