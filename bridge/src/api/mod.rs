//! The bridge's HTTP port (DESIGN.md §4): Home Assistant's WebSocket API
//! (`/api/websocket`), the parts of its REST API scripts use (`/api/…`,
//! bearer tokens), and `/api/health`. Same shapes as HA, so HA clients work
//! unchanged.

pub mod auth;
pub mod calls;
pub mod client;
pub mod device_ops;
pub mod events;
pub mod ha;
pub mod health;
pub mod mqtt;
pub mod plugin_ops;
pub mod post_state;
pub mod registry;
pub mod rest;
pub mod server;
pub mod tls;
pub mod upload;
pub mod websocket;

use crate::broker::MqttLink;
use crate::entity::{EntityStore, ServiceRouter};
use crate::plugins::PluginManager;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Limits of the WebSocket API.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Messages queued for one client before it is dropped (HA: 4096).
    pub max_pending: usize,
    /// Time a client has to send `auth` (HA: 10 s).
    pub auth_timeout: Duration,
    /// Largest incoming message (HA, through aiohttp: 4 MiB).
    pub max_message_bytes: usize,
    /// WebSocket ping interval; a client silent for two is dropped (HA,
    /// through aiohttp: 55 s).
    pub heartbeat: Duration,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            max_pending: 4096,
            auth_timeout: Duration::from_secs(10),
            max_message_bytes: 4 << 20,
            heartbeat: Duration::from_secs(30),
        }
    }
}

/// Everything the API serves from.
pub struct Api {
    pub store: Arc<EntityStore>,
    pub router: Arc<ServiceRouter>,
    pub auth: Arc<auth::Authenticator>,
    pub plugins: Arc<PluginManager>,
    pub link: MqttLink,
    pub bus: events::EventBus,
    /// History in SQLite, when the recorder runs.
    pub recorder: Option<Arc<crate::recorder::Recorder>>,
    /// `hearth/alerts/list|acknowledge`.
    pub alerts: Arc<crate::alerts::AlertHub>,
    pub options: ApiOptions,
    pub data_dir: PathBuf,
    /// Devices found on the network (`None` unless `[lan_discovery]
    /// enabled`): `hearth/devices/pending|adopt`.
    pub lan: Option<Arc<crate::lan::Lan>>,
    /// Node-RED's entities and webhooks (`nodered/*`, `/api/webhook/<id>`).
    pub nodered: Arc<crate::nodered::NodeRed>,
    /// `GET /metrics` and what the API counts itself (WebSocket clients);
    /// `None`: 404.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The `[usage]` and `[energy]` sections `hearth/energy/summary` reads.
    pub energy_summary: websocket::energy::SummarySources,
    /// Areas, floors, labels and where devices and entities are
    /// ([`crate::areas`]).
    pub areas: Arc<crate::areas::AreaRegistry>,
}

impl Api {
    /// The registries joined with the store's devices and entities.
    pub fn places(&self) -> crate::areas::Places {
        crate::areas::Places::new(self.areas.get(), &self.store.snapshot())
    }

    /// Every current state, as HA shows it.
    pub fn states(&self) -> Vec<serde_json::Value> {
        let snap = self.store.snapshot();
        let reg = registry::Registry::from_snapshot(&snap);
        snap.entities
            .iter()
            .filter_map(|(_, s)| s.as_ref())
            .map(|s| ha::state(&reg.present(s)))
            .collect()
    }

    /// One state, as HA shows it.
    pub fn state(&self, entity_id: &str) -> Option<serde_json::Value> {
        let s = self.store.get(entity_id)?;
        let reg = registry::Registry::from_snapshot(&self.store.snapshot());
        Some(ha::state(&reg.present(&s)))
    }

    /// `get_config`.
    pub fn config(&self) -> serde_json::Value {
        // `nodered`: the companion Node-RED's HA nodes look for.
        let mut components: Vec<String> = ["api", "hearth", "mqtt", "nodered", "websocket_api"]
            .into_iter()
            .map(String::from)
            .collect();
        for s in self.store.states() {
            let domain = crate::entity::domain_of(&s.entity_id).to_string();
            if !components.contains(&domain) {
                components.push(domain);
            }
        }
        components.sort();
        ha::config(components, &self.data_dir.display().to_string())
    }
}
