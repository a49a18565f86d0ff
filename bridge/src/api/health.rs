//! `GET /api/health` → `{"status": "ok", "version", "mqtt_connected", "plugins": [...]}`.
//! Unauthenticated: it is for supervisors and load balancers.

use super::Api;
use serde_json::{Value, json};

pub fn answer(api: &Api) -> Value {
    json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "mqtt_connected": api.link.is_connected(),
        "plugins": api.plugins.list(),
    })
}
