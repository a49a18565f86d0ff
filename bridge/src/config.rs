//! The bridge's configuration file (TOML), for `hearth run --config FILE`.
//! Every section is optional; command-line flags override `[mqtt]` and
//! `[http]`. See README.md "Configuration" for a full example.
//!
//! `[tariff]` and `[weather]` start the feed drivers (README "Tariff and
//! weather feeds"; every key in [`TariffConfig`] and [`WeatherConfig`]):
//!
//! ```toml
//! [tariff]
//! kind = "tempo"                # "tempo" | "tou" | "spot"
//! source = "couleur-tempo"      # tempo: "couleur-tempo" (jourTempo API) | "rte" (calendar JSON at `url`)
//! url = "http://127.0.0.1:8088/api"  # http:// or https:// (rustls, Mozilla's roots); default: the public API
//! ca_file = "/etc/hearth/relay-ca.pem"  # optional: PEM CA an https url may chain to, besides Mozilla's roots
//! poll_interval_s = 3600        # s; failures retry after retry_s (60), doubling
//! unknown_colour = "white"      # price of days not yet published: blue | white | red | none
//! [tariff.prices]               # €/kWh TTC, any of the six (defaults: regulated prices 2025-08-01)
//! red_hp = 0.6468
//!
//! [weather]                     # Open-Meteo hourly temperature_2m (°C) and shortwave_radiation (W/m²)
//! latitude = 48.86
//! longitude = 2.34
//! url = "http://127.0.0.1:8088/v1/forecast"
//! ca_file = "/etc/hearth/relay-ca.pem"  # optional, as for [tariff]
//!
//! [solar]                       # PV and base-load forecasts (crate::solar::forecast)
//! base_load_sensor = "sensor.house_power"
//! [[solar.arrays]]              # PVWatts v5 model; needs [weather]
//! kwp = 4.0
//! tilt_deg = 30
//! azimuth_deg = 180             # from north: 180 = south
//! lat = 48.86
//! lon = 2.34
//! ```
//!
//! `kind = "tou"` takes `timezone` and `windows = [{start = "HH:MM", price
//! = €/kWh}, …]` (and `[tariff.weekdays]`) instead of a source; `kind =
//! "spot"` takes `url` or `file` of a `[{start, price}, …]` list. A key of
//! another kind, an https URL or an out-of-range number is an error naming
//! the key and what was expected.

use crate::discovery::DiscoveryMode;
use crate::drivers::{
    shelly::ShellyConfig, shelly_pro4pm::ShellyPro4pmConfig, tasmota_ir::IrAcConfig,
    tasmota_strip::TasmotaStripConfig,
};
use crate::feeds::{tariff_driver::TariffConfig, weather_driver::WeatherConfig};
use crate::plugins::{DirectoryConfig, PluginConfig};
use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub mqtt: MqttConfig,
    #[serde(default)]
    pub homeassistant: HaConfig,
    #[serde(default)]
    pub http: HttpConfig,
    /// TLS on the embedded broker (keys in [`TlsConfig`]); present: MQTT
    /// over TLS on `[mqtt] tls_port`, plain MQTT only on `[mqtt] plain_bind`.
    pub tls: Option<TlsConfig>,
    /// Directory for state the bridge keeps (default `./hearth-data`).
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub esp32: Esp32Config,
    #[serde(default)]
    pub shelly: Vec<ShellyConfig>,
    #[serde(default)]
    pub ir_ac: Vec<IrAcConfig>,
    /// Tasmota metered power strips (keys in [`TasmotaStripConfig`],
    /// behaviour in [`crate::drivers::tasmota_strip`]).
    #[serde(default)]
    pub tasmota_strip: Vec<TasmotaStripConfig>,
    /// Shelly Pro 4PM metered strips (keys in [`ShellyPro4pmConfig`],
    /// behaviour in [`crate::drivers::shelly_pro4pm`]).
    #[serde(default)]
    pub shelly_pro4pm: Vec<ShellyPro4pmConfig>,
    /// Shelly Pro 3EM / Pro EM energy meters (keys in
    /// [`crate::drivers::shelly_em::ShellyEmConfig`], behaviour in
    /// [`crate::drivers::shelly_em`]).
    #[serde(default)]
    pub shelly_em: Vec<crate::drivers::shelly_em::ShellyEmConfig>,
    /// Meross metered plugs over their local HTTP API (keys in
    /// [`crate::drivers::meross::MerossConfig`], behaviour in
    /// [`crate::drivers::meross`]).
    #[serde(default)]
    pub meross: Vec<crate::drivers::meross::MerossConfig>,
    /// Shelly Gen1 devices: Plug S, 1PM, EM (keys in
    /// [`crate::drivers::shelly_gen1::ShellyGen1Config`], behaviour in
    /// [`crate::drivers::shelly_gen1`]).
    #[serde(default)]
    pub shelly_gen1: Vec<crate::drivers::shelly_gen1::ShellyGen1Config>,
    /// Air conditioners behind Broadlink RM4 IR gateways (keys in
    /// [`crate::drivers::broadlink::BroadlinkConfig`], behaviour in
    /// [`crate::drivers::broadlink`]).
    #[serde(default)]
    pub broadlink: Vec<crate::drivers::broadlink::BroadlinkConfig>,
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<PluginConfig>,
    /// The plugin directory (`<data-dir>/plugins`) and its watch.
    #[serde(default, rename = "plugins")]
    pub plugin_dir: DirectoryConfig,
    /// Electricity prices: EDF Tempo, time of use or spot (device `tariff`;
    /// keys in [`TariffConfig`], behaviour in [`crate::feeds::tariff_driver`]).
    pub tariff: Option<TariffConfig>,
    /// Open-Meteo forecast (device `weather`; keys in [`WeatherConfig`],
    /// behaviour in [`crate::feeds::weather_driver`]).
    pub weather: Option<WeatherConfig>,
    /// PV arrays and the base-load sensor: the `pv-power` and `base-load`
    /// forecasts (keys in [`crate::solar::forecast::SolarConfig`] and
    /// [`crate::solar::PvArray`], behaviour in [`crate::solar::forecast`]).
    pub solar: Option<crate::solar::forecast::SolarConfig>,
    /// Opening hours from iCalendar feeds, one `[[calendar]]` each (device
    /// `<id>`; keys in [`crate::feeds::calendar::CalendarConfig`], behaviour
    /// in [`crate::feeds::calendar`]).
    #[serde(default)]
    pub calendar: Vec<crate::feeds::calendar::CalendarConfig>,
    /// History in SQLite (keys in [`crate::recorder::RecorderConfig`]).
    #[serde(default)]
    pub recorder: crate::recorder::RecorderConfig,
    /// Optional InfluxDB v2 export (keys in
    /// [`crate::recorder::influx::InfluxConfig`]).
    pub influxdb: Option<crate::recorder::influx::InfluxConfig>,
    /// Alert de-duplication and notifiers (keys in
    /// [`crate::alerts::AlertsConfig`]).
    #[serde(default)]
    pub alerts: crate::alerts::AlertsConfig,
    /// Foreign HA discovery configs to mirror read-only (keys in
    /// [`crate::discovery::mirror::MirrorConfig`], behaviour in
    /// [`crate::discovery::mirror`]).
    pub mirror: Option<crate::discovery::mirror::MirrorConfig>,
    /// Per-user metering and billing (keys in [`crate::usage::UsageConfig`],
    /// behaviour in [`crate::usage`]).
    pub usage: Option<crate::usage::UsageConfig>,
    /// Energy accounting like HA's Energy dashboard (device `energy`; keys
    /// in [`crate::energy::EnergyConfig`], behaviour in [`crate::energy`]).
    pub energy: Option<crate::energy::EnergyConfig>,
    /// Helper `select` entities (keys in
    /// [`crate::drivers::helpers::config::SelectConfig`], behaviour in
    /// [`crate::drivers::helpers`]).
    #[serde(default)]
    pub select: Vec<crate::drivers::helpers::config::SelectConfig>,
    /// Helper `number` entities (keys in
    /// [`crate::drivers::helpers::config::NumberConfig`]).
    #[serde(default)]
    pub number: Vec<crate::drivers::helpers::config::NumberConfig>,
    /// Devices found on the network, listed as pending and adopted on
    /// request (keys in [`crate::lan::LanDiscoveryConfig`], behaviour in
    /// [`crate::lan`]).
    #[serde(default)]
    pub lan_discovery: crate::lan::LanDiscoveryConfig,
    /// Areas with the devices and entities in them (keys in
    /// [`crate::areas::AreaConfig`], behaviour in [`crate::areas`]).
    #[serde(default, rename = "area")]
    pub areas: Vec<crate::areas::AreaConfig>,
    /// Floors areas are on ([`crate::areas::FloorConfig`]).
    #[serde(default, rename = "floor")]
    pub floors: Vec<crate::areas::FloorConfig>,
    /// Labels for areas, devices and entities ([`crate::areas::LabelConfig`]).
    #[serde(default, rename = "label")]
    pub labels: Vec<crate::areas::LabelConfig>,
    /// The file this config was read from ([`Config::load`] sets it; not a
    /// key of the file): adopted devices are written there.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// External broker, `mqtt://[user[:password]@]host[:port]` or
    /// `mqtts://…` (TLS). Unset: the embedded broker starts.
    pub url: Option<String>,
    /// The external broker's password for the url's user, kept out of the
    /// url: `"…"`, `{ file = "…" }` or `{ env = "…" }`
    /// ([`crate::secret::Secret`]).
    pub password: Option<crate::secret::Secret>,
    /// PEM CA the external broker's certificate must chain to (`mqtts://`
    /// only; e.g. `<data>/tls/ca.pem` from `hearth certs init`). Unset:
    /// Mozilla's roots.
    pub ca_file: Option<PathBuf>,
    /// Port of the embedded broker.
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    /// Address the embedded broker listens on (with `[tls]`: its TLS
    /// listener's address; plain MQTT then listens on `plain_bind`).
    #[serde(default = "default_bind")]
    pub bind: std::net::IpAddr,
    /// Root of Hearth's topics.
    #[serde(default = "default_base")]
    pub base_topic: String,
    /// Port of the embedded broker's MQTT-over-TLS listener (with `[tls]`).
    #[serde(default = "default_tls_port")]
    pub tls_port: u16,
    /// Address of the plain MQTT listener (on `port`) when `[tls]` is on.
    #[serde(default = "default_bind")]
    pub plain_bind: std::net::IpAddr,
    /// Username/password (or client certificate) and topic rights on the
    /// embedded broker; default: on with `[tls]`, off without.
    pub auth: Option<bool>,
    /// Mosquitto password file (default `<data_dir>/mqtt/passwd`).
    pub passwd_file: Option<PathBuf>,
    /// Mosquitto ACL file (default `<data_dir>/mqtt/acl`).
    pub acl_file: Option<PathBuf>,
}

impl MqttConfig {
    /// Whether the embedded broker authenticates clients and enforces the
    /// ACL: `auth`, else whether `[tls]` is configured.
    pub fn auth_enabled(&self, tls: bool) -> bool {
        self.auth.unwrap_or(tls)
    }
}

/// `[tls]`: certificates of the embedded broker (made by `hearth certs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA that signs client certificates (default `<data_dir>/tls/ca.pem`).
    pub ca_file: Option<PathBuf>,
    /// Server certificate chain (default `<data_dir>/tls/server.pem`).
    pub cert_file: Option<PathBuf>,
    /// Server private key (default `<data_dir>/tls/server.key`).
    pub key_file: Option<PathBuf>,
    /// Seconds a client has to finish its TLS handshake (and, on the
    /// broker, to send its CONNECT after it).
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout_s: f64,
    /// Connections the broker front keeps at once (TLS and plain); more
    /// are closed at once.
    #[serde(default = "default_tls_max_connections")]
    pub max_connections: usize,
}

fn default_tls_port() -> u16 {
    8883
}
fn default_handshake_timeout() -> f64 {
    10.0
}
fn default_tls_max_connections() -> usize {
    256
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: None,
            password: None,
            ca_file: None,
            port: default_mqtt_port(),
            bind: default_bind(),
            base_topic: default_base(),
            tls_port: default_tls_port(),
            plain_bind: default_bind(),
            auth: None,
            passwd_file: None,
            acl_file: None,
        }
    }
}

fn default_mqtt_port() -> u16 {
    1883
}
fn default_bind() -> std::net::IpAddr {
    std::net::Ipv4Addr::LOCALHOST.into()
}
fn default_base() -> String {
    "hearth".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaConfig {
    #[serde(default = "default_prefix")]
    pub discovery_prefix: String,
    /// `device` (HA ≥ 2024.11) or `entity` (one config per entity).
    #[serde(default)]
    pub discovery: DiscoveryMode,
}

impl Default for HaConfig {
    fn default() -> Self {
        HaConfig {
            discovery_prefix: default_prefix(),
            discovery: DiscoveryMode::default(),
        }
    }
}

fn default_prefix() -> String {
    "homeassistant".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Port of the HA-compatible WebSocket and REST APIs and /api/health.
    #[serde(default = "default_http_port")]
    pub port: u16,
    #[serde(default = "default_bind")]
    pub bind: std::net::IpAddr,
    /// Messages queued for one WebSocket client before it is dropped.
    #[serde(default = "default_max_pending")]
    pub max_pending_messages: usize,
    /// Failed authentications from one address before it is refused…
    #[serde(default = "default_auth_failures")]
    pub auth_max_failures: u32,
    /// …for this many seconds after its oldest failure.
    #[serde(default = "default_auth_window")]
    pub auth_window_s: u64,
    /// Seconds a WebSocket client has to authenticate (HA: 10).
    #[serde(default = "default_auth_timeout")]
    pub auth_timeout_s: f64,
    /// WebSocket ping interval; a client that answers nothing for two
    /// intervals is dropped.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_s: f64,
    /// HTTPS/WSS on `port` (plain HTTP there is refused with 400). Default:
    /// on when a `[tls]` section is present (certificate and key from
    /// `<data_dir>/tls/server.pem`, `server.key` unless `[tls] cert_file`,
    /// `key_file`), off otherwise.
    pub tls: Option<bool>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            port: default_http_port(),
            bind: default_bind(),
            max_pending_messages: default_max_pending(),
            auth_max_failures: default_auth_failures(),
            auth_window_s: default_auth_window(),
            auth_timeout_s: default_auth_timeout(),
            heartbeat_s: default_heartbeat(),
            tls: None,
        }
    }
}

fn default_max_pending() -> usize {
    4096
}

fn default_auth_failures() -> u32 {
    5
}

fn default_auth_window() -> u64 {
    300
}

fn default_auth_timeout() -> f64 {
    10.0
}

fn default_heartbeat() -> f64 {
    30.0
}

fn default_http_port() -> u16 {
    8099
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Esp32Config {
    /// Create devices for Hearth sensor nodes that announce themselves.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for Esp32Config {
    fn default() -> Self {
        Esp32Config { enabled: true }
    }
}

fn yes() -> bool {
    true
}

/// A TOML error as `origin: line L, column C, key `k`: message`, without
/// toml's quote of the line: the line may hold a secret (`password =
/// "…"`), and error messages must never show one.
fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> anyhow::Error {
    let Some(span) = e.span() else {
        return anyhow::anyhow!("{origin}: {}", e.message());
    };
    let start = span.start.min(text.len());
    let before = &text[..start];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..start].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    // The key (left of `=`) or the table header; never a value.
    let key = if line.starts_with('[') {
        line.split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        line.split('=').next().unwrap_or("").trim().to_string()
    };
    let message = e.message().trim_end();
    if key.is_empty() {
        anyhow::anyhow!("{origin}: line {line_no}, column {column}: {message}")
    } else {
        anyhow::anyhow!("{origin}: line {line_no}, column {column}, at `{key}`: {message}")
    }
}

impl Config {
    pub fn from_toml(text: &str, origin: &str) -> anyhow::Result<Self> {
        let config: Config = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
        config.validate().with_context(|| origin.to_string())?;
        Ok(config)
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let mut config = Self::from_toml(&text, &path.display().to_string())?;
        let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(dir) = file.parent() {
            config.resolve_paths(dir);
        }
        config.file = Some(file);
        Ok(config)
    }

    /// Makes the file paths the config names relative to `dir` (the config
    /// file's directory) absolute: `[[broadlink]] codes`. An absolute path
    /// stays as it is.
    pub fn resolve_paths(&mut self, dir: &Path) {
        for b in &mut self.broadlink {
            if b.codes.is_relative() {
                b.codes = dir.join(&b.codes);
            }
        }
    }

    /// `[[area]]`, `[[floor]]` and `[[label]]` together.
    pub fn places(&self) -> crate::areas::PlacesConfig {
        crate::areas::PlacesConfig {
            areas: self.areas.clone(),
            floors: self.floors.clone(),
            labels: self.labels.clone(),
        }
    }

    /// Checks what serde cannot: ids, references, ranges.
    pub fn validate(&self) -> anyhow::Result<()> {
        crate::areas::validate_config(&self.places())?;
        if let Some(tls) = &self.tls {
            anyhow::ensure!(
                tls.handshake_timeout_s.is_finite()
                    && (0.1..=600.0).contains(&tls.handshake_timeout_s),
                "[tls] handshake_timeout_s must be 0.1 to 600 s (got {})",
                tls.handshake_timeout_s
            );
            anyhow::ensure!(
                (1..=100_000).contains(&tls.max_connections),
                "[tls] max_connections must be 1 to 100000 (got {})",
                tls.max_connections
            );
        }
        anyhow::ensure!(
            (16..=1_000_000).contains(&self.http.max_pending_messages),
            "[http] max_pending_messages must be 16 to 1000000 (got {})",
            self.http.max_pending_messages
        );
        anyhow::ensure!(
            self.http.auth_max_failures >= 1 && self.http.auth_window_s >= 1,
            "[http] auth_max_failures and auth_window_s must be at least 1"
        );
        anyhow::ensure!(
            self.http.auth_timeout_s.is_finite()
                && (0.1..=3600.0).contains(&self.http.auth_timeout_s),
            "[http] auth_timeout_s must be 0.1 to 3600 s (got {})",
            self.http.auth_timeout_s
        );
        anyhow::ensure!(
            self.http.heartbeat_s.is_finite() && (0.1..=3600.0).contains(&self.http.heartbeat_s),
            "[http] heartbeat_s must be 0.1 to 3600 s (got {})",
            self.http.heartbeat_s
        );
        let mut ids = std::collections::HashSet::new();
        let device_ids = self
            .shelly
            .iter()
            .map(|s| &s.id)
            .chain(self.ir_ac.iter().map(|a| &a.id))
            .chain(self.tasmota_strip.iter().map(|s| &s.id))
            .chain(self.shelly_pro4pm.iter().map(|s| &s.id))
            .chain(self.shelly_em.iter().map(|s| &s.id))
            .chain(self.shelly_gen1.iter().map(|s| &s.id));
        for id in device_ids {
            hearth_node_core::validate_node_id(id)
                .map_err(|e| anyhow::anyhow!("device id `{id}`: {e}"))?;
            anyhow::ensure!(
                id != "bridge",
                "device id `bridge` is reserved for the bridge itself"
            );
            anyhow::ensure!(ids.insert(id.clone()), "device id `{id}` is used twice");
        }
        for b in &self.broadlink {
            hearth_node_core::validate_node_id(&b.id)
                .map_err(|e| anyhow::anyhow!("device id `{}`: {e}", b.id))?;
            anyhow::ensure!(
                b.id != "bridge",
                "device id `bridge` is reserved for the bridge itself"
            );
            anyhow::ensure!(
                ids.insert(b.id.clone()),
                "device id `{}` is used twice",
                b.id
            );
            b.validate()?;
        }
        for ac in &self.ir_ac {
            for (name, v) in [
                ("min_temp", ac.min_temp),
                ("max_temp", ac.max_temp),
                ("target_temp", ac.target_temp),
                ("running_power_w", ac.running_power_w),
            ] {
                anyhow::ensure!(
                    v.is_finite(),
                    "ir_ac `{}`: {name} must be a finite number",
                    ac.id
                );
            }
            anyhow::ensure!(
                ac.min_off_s.is_finite() && (0.0..=3600.0).contains(&ac.min_off_s),
                "ir_ac `{}`: min_off_s must be between 0 and 3600 s",
                ac.id
            );
            anyhow::ensure!(
                ac.min_temp < ac.max_temp && (ac.min_temp..=ac.max_temp).contains(&ac.target_temp),
                "ir_ac `{}`: need min_temp < max_temp and target_temp within them (°C)",
                ac.id
            );
            ac.confirm()
                .validate(&format!("ir_ac `{}`", ac.id))
                .map_err(anyhow::Error::msg)?;
        }
        for strip in &self.tasmota_strip {
            strip.validate().map_err(anyhow::Error::msg)?;
        }
        for strip in &self.shelly_pro4pm {
            strip.validate().map_err(anyhow::Error::msg)?;
        }
        for meter in &self.shelly_em {
            meter.validate().map_err(anyhow::Error::msg)?;
        }
        for plug in &self.meross {
            hearth_node_core::validate_node_id(&plug.id)
                .map_err(|e| anyhow::anyhow!("meross id `{}`: {e}", plug.id))?;
            anyhow::ensure!(
                plug.id != "bridge" && ids.insert(plug.id.clone()),
                "meross id `{}` is already a device id (or `bridge`)",
                plug.id
            );
            plug.validate().map_err(anyhow::Error::msg)?;
        }
        for plug in &self.shelly_gen1 {
            plug.validate().map_err(anyhow::Error::msg)?;
        }
        for s in &self.shelly {
            s.validate().map_err(anyhow::Error::msg)?;
        }
        for cal in &self.calendar {
            hearth_node_core::validate_node_id(&cal.id)
                .map_err(|e| anyhow::anyhow!("[[calendar]] id `{}`: {e}", cal.id))?;
            anyhow::ensure!(
                cal.id != "bridge" && ids.insert(cal.id.clone()),
                "[[calendar]] id `{}` is already a device id",
                cal.id
            );
            cal.validate().map_err(anyhow::Error::msg)?;
        }
        for (configured, id) in [
            (self.tariff.is_some(), crate::feeds::tariff_driver::DEVICE),
            (self.weather.is_some(), crate::feeds::weather_driver::DEVICE),
            (self.energy.is_some(), crate::energy::entities::DEVICE),
            (self.solar.is_some(), crate::solar::forecast::DEVICE),
            (
                !self.select.is_empty() || !self.number.is_empty(),
                crate::drivers::helpers::DEVICE,
            ),
        ] {
            anyhow::ensure!(
                !configured || !ids.contains(id),
                "device id `{id}` is taken by the [{id}] feed"
            );
        }
        if let Some(t) = &self.tariff {
            t.validate().map_err(anyhow::Error::msg)?;
        }
        if let Some(w) = &self.weather {
            w.validate().map_err(anyhow::Error::msg)?;
        }
        if let Some(s) = &self.solar {
            s.validate(self.weather.is_some())
                .map_err(anyhow::Error::msg)?;
        }
        if let Some(m) = &self.mirror {
            m.validate().map_err(anyhow::Error::msg)?;
        }
        if let Some(u) = &self.usage {
            u.validate(&ids).map_err(anyhow::Error::msg)?;
        }
        if let Some(e) = &self.energy {
            e.validate().map_err(anyhow::Error::msg)?;
        }
        self.lan_discovery.validate().map_err(anyhow::Error::msg)?;
        crate::drivers::helpers::config::validate(&self.select, &self.number)
            .map_err(anyhow::Error::msg)?;
        let mut names = std::collections::HashSet::new();
        for p in &self.plugins {
            anyhow::ensure!(
                names.insert(&p.name),
                "plugin name `{}` is used twice",
                p.name
            );
            p.limits
                .validate()
                .with_context(|| format!("plugin `{}`", p.name))?;
        }
        let w = self.plugin_dir.watch_interval_s;
        anyhow::ensure!(
            w.is_finite() && (0.1..=3600.0).contains(&w),
            "plugins.watch_interval_s must be 0.1 to 3600 s (got {w})"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/server-room.toml"
        ))
        .unwrap();
        let c = Config::from_toml(&text, "examples/server-room.toml").unwrap();
        assert_eq!(c.ir_ac.len(), 1);
        assert_eq!(c.plugins.len(), 1);
    }

    #[test]
    fn tls_turns_auth_on_unless_told_otherwise() {
        let c = Config::from_toml("", "c.toml").unwrap();
        assert!(c.tls.is_none() && !c.mqtt.auth_enabled(c.tls.is_some()));
        let c = Config::from_toml("[tls]\n", "c.toml").unwrap();
        let tls = c.tls.as_ref().unwrap();
        assert_eq!((tls.handshake_timeout_s, tls.max_connections), (10.0, 256));
        assert_eq!(
            (c.mqtt.tls_port, c.mqtt.plain_bind.to_string()),
            (8883, "127.0.0.1".into())
        );
        assert!(c.mqtt.auth_enabled(true));
        let c = Config::from_toml("[tls]\n[mqtt]\nauth = false\n", "c.toml").unwrap();
        assert!(!c.mqtt.auth_enabled(true));
        let e = Config::from_toml("[tls]\nmax_connections = 0\n", "c.toml").unwrap_err();
        assert!(format!("{e:#}").contains("max_connections"), "{e:#}");
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let e = Config::from_toml("[mqtt]\nport = \"x\"\n", "my.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("my.toml:") && e.contains("port"), "{e}");
        let e = Config::from_toml(
            "[[shelly]]\nid = \"a\"\nname = \"A\"\nurl = \"ftp://x\"\n",
            "c.toml",
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("must start with http://"),
            "{e:#}"
        );
        assert!(Config::from_toml("bogus = 1", "c.toml").is_err());
        let inf =
            "[[shelly]]\nid = \"a\"\nname = \"A\"\nurl = \"http://x\"\npoll_interval_s = inf\n";
        let e = Config::from_toml(inf, "c.toml").unwrap_err();
        assert!(
            format!("{e:#}").contains("poll_interval_s must be between"),
            "{e:#}"
        );
        let nan = "[[plugin]]\nname = \"p\"\nwasm = \"builtin:thermostat\"\n[plugin.limits]\nmax_backoff_s = nan\n";
        assert!(Config::from_toml(nan, "c.toml").is_err());
    }
}
