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

/// An authenticated WebSocket client that sends one command at a time.
pub struct Ws {
    ws: Socket,
    next_id: u64,
}

impl Ws {
    pub async fn auth(addr: SocketAddr, token: &str) -> Ws {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/websocket"))
            .await
            .expect("WebSocket upgrade");
        let mut me = Ws {
            ws: {
                let _ = ws.next().await; // auth_required
                ws.send(Message::text(
                    json!({"type": "auth", "access_token": token}).to_string(),
                ))
                .await
                .unwrap();
                ws
            },
            next_id: 1,
        };
        let ok = me.recv().await;
        assert_eq!(ok["type"], "auth_ok", "{ok}");
        me
    }

    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(15), self.ws.next())
                .await
                .expect("a message within 15 s")
                .expect("connection open")
                .unwrap();
            if let Message::Text(t) = msg {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }

    /// The next message if one comes within `wait`.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        tokio::time::timeout(wait, self.recv()).await.ok()
    }

    /// Sends a command; its result message.
    pub async fn call(&mut self, mut cmd: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        cmd["id"] = json!(id);
        self.ws.send(Message::text(cmd.to_string())).await.unwrap();
        loop {
            let v = self.recv().await;
            if v["id"] == json!(id) && v["type"] == "result" {
                return v;
            }
        }
    }
}
