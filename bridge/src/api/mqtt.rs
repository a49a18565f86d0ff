//! Requests over MQTT, in Zigbee2MQTT's shape: a JSON object published to
//! `<base>/bridge/request/<area>/<op>` is answered on
//! `<base>/bridge/response/<area>/<op>` with
//! `{"status": "ok" | "error", "data": …, "error": "…", "transaction": …}`
//! (`error` only on failure; `transaction` echoed when the request had one).
//! Areas: `plugin` (operations and arguments:
//! [`plugin_ops`](super::plugin_ops)) and `device` (devices found on the
//! network: [`device_ops`](super::device_ops), e.g.
//! `<base>/bridge/request/device/adopt` `{"id": "shellyplusplugs-…"}`).
//!
//! Anyone who may publish to the base topic may load plugins and adopt
//! devices: protect it with the broker's ACLs as you protect the devices'
//! command topics.

use super::device_ops;
use super::plugin_ops::{self, Op};
use crate::broker::{Message, MqttLink};
use crate::plugins::PluginManager;
use crate::shutdown::Shutdown;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Runs one request of an area: (op name, arguments) → data or error.
type Handler = Arc<
    dyn Fn(String, Map<String, Value>) -> BoxFuture<'static, Result<Value, String>> + Send + Sync,
>;

/// Requests being answered at once; more are answered "busy" at once, so
/// the MQTT link never waits for a compile.
const IN_FLIGHT: usize = 4;

/// Answers plugin requests until shutdown. Each runs in a task of its own
/// (the manager runs lifecycle operations one at a time).
pub fn spawn(
    link: &MqttLink,
    base: &str,
    manager: Arc<PluginManager>,
    shutdown: Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let handler: Handler = Arc::new(move |op_name: String, request| {
        let manager = manager.clone();
        Box::pin(async move {
            match Op::parse(&op_name) {
                Some(op) => plugin_ops::run(manager, op, request)
                    .await
                    .map_err(|f| f.message),
                None => {
                    let ops: Vec<&str> = Op::ALL.iter().map(|(n, _)| *n).collect();
                    Err(format!(
                        "unknown plugin request `{op_name}`; expected one of {ops:?}"
                    ))
                }
            }
        })
    });
    serve(link, base, "plugin", handler, shutdown)
}

/// Answers device requests (`pending`, `adopt`) until shutdown; with LAN
/// discovery off every request is answered with how to turn it on.
pub fn spawn_devices(
    link: &MqttLink,
    base: &str,
    lan: Option<Arc<crate::lan::Lan>>,
    shutdown: Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let handler: Handler = Arc::new(move |op_name: String, request| {
        let lan = lan.clone();
        Box::pin(async move {
            match device_ops::Op::parse(&op_name) {
                Some(op) => device_ops::run(lan, op, request)
                    .await
                    .map_err(|f| f.message),
                None => {
                    let ops: Vec<&str> = device_ops::Op::ALL.iter().map(|(n, _)| *n).collect();
                    Err(format!(
                        "unknown device request `{op_name}`; expected one of {ops:?}"
                    ))
                }
            }
        })
    });
    serve(link, base, "device", handler, shutdown)
}

fn serve(
    link: &MqttLink,
    base: &str,
    area: &'static str,
    handler: Handler,
    mut shutdown: Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let prefix = format!("{base}/bridge/request/{area}/");
    let mut requests = link.subscribe(&format!("{prefix}+"))?;
    let link = link.clone();
    let base = base.to_string();
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    Ok(tokio::spawn(async move {
        let mut running = tokio::task::JoinSet::new();
        let bad_input = crate::logging::Throttle::new(match area {
            "plugin" => "bad plugin requests",
            _ => "bad device requests",
        });
        loop {
            let msg = tokio::select! {
                m = requests.recv() => match m { Some(m) => m, None => break },
                _ = shutdown.wait() => break,
            };
            while running.try_join_next().is_some() {}
            let op_name = msg.topic.strip_prefix(&prefix).unwrap_or("").to_string();
            let topic = format!("{base}/bridge/response/{area}/{op_name}");
            let (handler, link, bad_input) = (handler.clone(), link.clone(), bad_input.clone());
            let permit = slots.clone().try_acquire_owned();
            running.spawn(async move {
                let reply = match permit {
                    Ok(_permit) => answer(&handler, op_name, &msg, &bad_input).await,
                    Err(_) => busy(area, &msg),
                };
                if let Err(e) = link.publish(&topic, reply.to_string(), false).await {
                    tracing::warn!("{area} request on {}: could not answer: {e:#}", msg.topic);
                }
            });
        }
        running.abort_all();
    }))
}

fn busy(area: &str, msg: &Message) -> Value {
    let mut reply = json!({
        "status": "error",
        "data": {},
        "error": format!("{IN_FLIGHT} {area} requests are already running; retry when they are answered"),
    });
    if let Ok(mut r) = parse(&msg.payload)
        && let Some(t) = r.remove("transaction")
    {
        reply["transaction"] = t;
    }
    reply
}

async fn answer(
    handler: &Handler,
    op_name: String,
    msg: &Message,
    bad_input: &crate::logging::Throttle,
) -> Value {
    let admit = || bad_input.admit(crate::logging::rate::topic_source(&msg.topic));
    // A retained request would run again at every reconnection.
    if msg.retain {
        let error = format!(
            "{}: retained requests are refused (they would run again at every reconnection); publish without the retain flag",
            msg.topic
        );
        if admit() {
            tracing::warn!("{error}");
        }
        return json!({"status": "error", "data": {}, "error": error});
    }
    let mut request = match parse(&msg.payload) {
        Ok(r) => r,
        Err(e) => {
            if admit() {
                tracing::warn!("{}: {e}", msg.topic);
            }
            return json!({"status": "error", "data": {}, "error": format!("{}: {e}", msg.topic)});
        }
    };
    let transaction = request.remove("transaction");
    let result = handler(op_name, request).await;
    let mut reply = match result {
        Ok(data) => json!({"status": "ok", "data": data}),
        Err(error) => {
            if admit() {
                tracing::warn!("{}: {error}", msg.topic);
            }
            json!({"status": "error", "data": {}, "error": error})
        }
    };
    if let Some(t) = transaction {
        reply["transaction"] = t;
    }
    reply
}

/// An empty payload is an empty request; anything else must be a JSON object.
pub(crate) fn parse(payload: &[u8]) -> Result<Map<String, Value>, String> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(format!(
            "expected a JSON object like {{\"name\": \"thermostat\"}}, got `{}`",
            crate::broker::excerpt(other.to_string().as_bytes())
        )),
        Err(e) => Err(format!(
            "expected a JSON object ({e}), got `{}`",
            crate::broker::excerpt(payload)
        )),
    }
}
