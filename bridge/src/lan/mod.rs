//! Devices found on the network by themselves, adopted like Zigbee2MQTT's
//! permit-join: found devices are listed as **pending**; a request adopts
//! one, which writes it into the config file and starts its driver.
//!
//! - [`mdns`]: browses `_shelly._tcp` and `_http._tcp` (`shelly*` names).
//! - [`shelly_probe`]: `GET /shelly` tells Gen1 from Gen2+ and the model.
//! - [`broadlink`]: Broadlink's UDP discovery, every `interval_s`.
//! - [`pending`]: the list (id, kind, address, model, first/last seen).
//! - [`adopt`]: writes the table (toml_edit, comments kept), starts the driver.
//!
//! The list is published retained on `<base>/bridge/devices/pending` (a
//! JSON array of [`pending::PendingDevice::to_json`]) at every change, and
//! served by the WebSocket API (`hearth/devices/pending`,
//! `hearth/devices/adopt`), MQTT requests
//! (`<base>/bridge/request/device/adopt`) and the CLI (`hearth device
//! pending|adopt`), all through [`crate::api::device_ops`]. A configured
//! device (same id, address or MAC) is never listed.
//!
//! ```toml
//! [lan_discovery]
//! enabled = true                           # default false: nothing is browsed
//! mdns = true                              # browse mDNS for Shelly devices
//! broadlink = true                         # Broadlink UDP discovery
//! broadlink_broadcast = "255.255.255.255:80"  # where the discovery packet goes
//! interval_s = 60                          # s between Broadlink discoveries
//! ```

pub mod adopt;
pub mod broadlink;
pub mod mdns;
pub mod pending;
pub mod shelly_probe;

use crate::broker::MqttLink;
use crate::config::Config;
use crate::drivers::DriverContext;
use pending::{PendingDevice, PendingList};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// `[lan_discovery]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanDiscoveryConfig {
    /// Browse and list pending devices (default false).
    #[serde(default)]
    pub enabled: bool,
    /// mDNS browsing for Shelly devices (default true).
    #[serde(default = "yes")]
    pub mdns: bool,
    /// Broadlink UDP discovery (default true).
    #[serde(default = "yes")]
    pub broadlink: bool,
    /// `ip:port` the Broadlink discovery packet is sent to (default
    /// `255.255.255.255:80`, the broadcast Broadlink's app uses).
    #[serde(default = "default_broadcast")]
    pub broadlink_broadcast: String,
    /// s between Broadlink discoveries, between two probes of the same
    /// mDNS announcement (a pending Shelly is probed again each interval),
    /// and between retries of a device whose `/shelly` answer failed (for
    /// 10 intervals). A pending device not seen for 3 intervals leaves the
    /// list; the list holds at most 256 (the one seen longest ago goes).
    /// Default 60.
    #[serde(default = "default_interval")]
    pub interval_s: f64,
}

fn yes() -> bool {
    true
}
fn default_broadcast() -> String {
    "255.255.255.255:80".into()
}
fn default_interval() -> f64 {
    60.0
}

impl Default for LanDiscoveryConfig {
    fn default() -> Self {
        LanDiscoveryConfig {
            enabled: false,
            mdns: true,
            broadlink: true,
            broadlink_broadcast: default_broadcast(),
            interval_s: default_interval(),
        }
    }
}

impl LanDiscoveryConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.interval_s.is_finite() && (1.0..=86_400.0).contains(&self.interval_s)) {
            return Err(format!(
                "[lan_discovery] interval_s must be 1 to 86400 s (got {})",
                self.interval_s
            ));
        }
        self.broadlink_broadcast
            .parse::<std::net::SocketAddr>()
            .map_err(|e| {
                format!(
                    "[lan_discovery] broadlink_broadcast must be ip:port like 255.255.255.255:80 (got `{}`: {e})",
                    self.broadlink_broadcast
                )
            })?;
        Ok(())
    }
}

/// Discovery running in a bridge: the pending list and the adopter.
pub struct Lan {
    pub pending: PendingList,
    pub adopter: adopt::Adopter,
    link: MqttLink,
    topic: String,
    clock: crate::clock::Clock,
    /// Publishes of the list, in order (a later list never goes out first).
    publishing: tokio::sync::Mutex<()>,
}

impl Lan {
    /// Starts browsing as `[lan_discovery]` says. The returned tasks end
    /// with the bridge's shutdown.
    pub fn start(
        config: &Config,
        ctx: &DriverContext,
        base: &str,
    ) -> anyhow::Result<(Arc<Lan>, Vec<JoinHandle<()>>)> {
        let cfg = config.lan_discovery.clone();
        let lan = Arc::new(Lan {
            pending: PendingList::default(),
            adopter: adopt::Adopter::new(config, ctx.clone()),
            link: ctx.link.clone(),
            topic: format!("{base}/bridge/devices/pending"),
            clock: ctx.clock,
            publishing: tokio::sync::Mutex::new(()),
        });
        let mut tasks = Vec::new();
        let (found_tx, found_rx) = mpsc::channel(64);
        if cfg.mdns {
            tasks.push(mdns::spawn(found_tx.clone(), ctx.shutdown.clone())?);
        }
        if cfg.broadlink {
            tasks.push(broadlink::spawn(&cfg, lan.clone(), ctx.shutdown.clone())?);
        }
        drop(found_tx);
        tasks.push(tokio::spawn(lan.clone().run(
            found_rx,
            Duration::from_secs_f64(cfg.interval_s),
            ctx.shutdown.clone(),
        )));
        tracing::info!(
            "LAN discovery on (mDNS {}, Broadlink {}); pending devices on {}",
            if cfg.mdns { "on" } else { "off" },
            if cfg.broadlink { "on" } else { "off" },
            lan.topic
        );
        Ok((lan, tasks))
    }

    /// Lists `dev` unless it is configured; publishes the list if it changed.
    pub async fn found(&self, dev: PendingDevice) {
        if let Some(why) = self.adopter.covers(&dev) {
            tracing::debug!(
                "LAN discovery: {} at {} is configured ({why})",
                dev.id,
                dev.address
            );
            if self.pending.remove(&dev.id).is_some() {
                self.publish().await;
            }
            return;
        }
        let (id, kind, model, address) = (
            dev.id.clone(),
            dev.kind.clone(),
            dev.model.clone(),
            dev.address.clone(),
        );
        let new = self.pending.get(&id).is_none();
        if self.pending.upsert(dev) {
            if new {
                tracing::info!(
                    "LAN discovery: found {kind} `{id}` ({model}) at {address}; adopt it with `hearth device adopt {id}`"
                );
            }
            self.publish().await;
        }
    }

    /// Adopts pending device `id` (see [`adopt::Adopter::adopt`]).
    pub async fn adopt(
        &self,
        id: &str,
        req: adopt::AdoptRequest,
    ) -> Result<serde_json::Value, String> {
        let dev = self.pending.get(id).ok_or_else(|| {
            let ids: Vec<String> = self.pending.list().into_iter().map(|d| d.id).collect();
            format!("no pending device `{id}`; pending: {ids:?}")
        })?;
        let answer = self.adopter.adopt(&dev, req).await?;
        self.pending.remove(id);
        self.publish().await;
        Ok(answer)
    }

    /// The list, retained on `<base>/bridge/devices/pending`.
    pub async fn publish(&self) {
        let _order = self.publishing.lock().await;
        let payload = self.pending.to_json().to_string();
        if let Err(e) = self.link.publish(&self.topic, payload, true).await {
            tracing::warn!("LAN discovery: could not publish {}: {e:#}", self.topic);
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    async fn run(
        self: Arc<Self>,
        mut found: mpsc::Receiver<mdns::Found>,
        reprobe: Duration,
        mut shutdown: crate::shutdown::Shutdown,
    ) {
        self.publish().await;
        let bad = crate::logging::Throttle::new("LAN discovery probes");
        // Address → (pending id, when probed, the announcement): an
        // announcement within `reprobe` only refreshes last_seen; a listed
        // device is probed again every `reprobe` (mDNS does not re-announce
        // for a long while), which keeps it from expiring while it answers.
        let mut probed: HashMap<String, (String, Instant, mdns::Found)> = HashMap::new();
        // Announced but not answering `/shelly` well: probed again every
        // `reprobe` (a device may announce once and be busy then), for
        // RETRY_INTERVALS intervals from its first failure.
        let mut failed: HashMap<String, (mdns::Found, Instant)> = HashMap::new();
        let expire_after = reprobe * EXPIRE_INTERVALS;
        let mut retry = tokio::time::interval(reprobe);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        retry.tick().await;
        loop {
            let batch: Vec<mdns::Found> = tokio::select! {
                f = found.recv() => match f {
                    Some(f) => vec![f],
                    None => { shutdown.wait().await; break }
                },
                _ = retry.tick() => {
                    self.expire(&mut probed, &mut failed, expire_after, reprobe * RETRY_INTERVALS)
                        .await;
                    failed
                        .values()
                        .map(|(f, _)| f.clone())
                        .chain(
                            probed
                                .values()
                                .filter(|(id, at, _)| {
                                    at.elapsed() >= reprobe && self.pending.get(id).is_some()
                                })
                                .map(|(_, _, f)| f.clone()),
                        )
                        .collect()
                }
                _ = shutdown.wait() => break,
            };
            for f in batch {
                let addr = f.addr.to_string();
                let recent = probed
                    .get(&addr)
                    .filter(|(_, at, _)| at.elapsed() < reprobe)
                    .map(|(id, ..)| id.clone());
                if let Some(id) = recent {
                    if let Some(mut d) = self.pending.get(&id) {
                        d.last_seen_ms = self.now_ms();
                        self.pending.upsert(d);
                    }
                    continue;
                }
                let probe = tokio::select! {
                    p = shelly_probe::probe(&addr) => p,
                    _ = shutdown.wait() => return self.stop_adopted().await,
                };
                let ident = match probe {
                    Ok(i) => i,
                    Err(e) => {
                        if bad.admit(&addr) {
                            tracing::warn!(
                                "LAN discovery: {} announced over mDNS: {e}",
                                f.instance
                            );
                        }
                        // Kept from its first failure: it expires unless it answers.
                        let since = failed.get(&addr).map_or_else(Instant::now, |(_, t)| *t);
                        probed.remove(&addr);
                        failed.insert(addr, (f, since));
                        cap(&mut failed, |(_, t)| *t);
                        continue;
                    }
                };
                failed.remove(&addr);
                let dev = pending_shelly(&f, &ident, self.now_ms());
                probed.insert(addr, (dev.id.clone(), Instant::now(), f));
                cap(&mut probed, |(_, t, _)| *t);
                self.found(dev).await;
            }
        }
        self.stop_adopted().await;
    }

    /// Drops what has not been seen for `after`: pending devices (by
    /// last_seen), probe records; and failing announcements retried for
    /// `retry_for`. Publishes the list
    /// when it changed.
    async fn expire(
        &self,
        probed: &mut HashMap<String, (String, Instant, mdns::Found)>,
        failed: &mut HashMap<String, (mdns::Found, Instant)>,
        after: Duration,
        retry_for: Duration,
    ) {
        probed.retain(|_, (_, at, _)| at.elapsed() < after);
        failed.retain(|_, (_, since)| since.elapsed() < retry_for);
        let gone = match Instant::now().checked_sub(after) {
            Some(before) => self.pending.expire(before),
            None => Vec::new(),
        };
        if !gone.is_empty() {
            tracing::info!(
                "LAN discovery: not seen for {} s, no longer pending: {gone:?}",
                after.as_secs()
            );
            self.publish().await;
        }
    }

    async fn stop_adopted(&self) {
        // Adopted drivers obey the same shutdown; wait for them a moment.
        let tasks = self.adopter.take_tasks();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            for t in tasks {
                let _ = t.await;
            }
        })
        .await;
    }
}

/// A pending device, probe record or failing announcement not seen for
/// this many discovery intervals is dropped.
pub const EXPIRE_INTERVALS: u32 = 3;

/// A device announced but not answering `/shelly` well is retried for
/// this many intervals (then only a new announcement probes it again).
pub const RETRY_INTERVALS: u32 = 10;

/// Drops the oldest entries (by `when`) beyond [`pending::MAX_PENDING`].
fn cap<V>(map: &mut HashMap<String, V>, when: impl Fn(&V) -> Instant) {
    while map.len() > pending::MAX_PENDING {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, v)| when(v))
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        map.remove(&oldest);
    }
}

/// The pending entry of a Shelly found over mDNS and probed.
fn pending_shelly(
    f: &mdns::Found,
    ident: &shelly_probe::ShellyIdentity,
    now_ms: i64,
) -> PendingDevice {
    let valid = |s: &str| hearth_node_core::validate_node_id(s).is_ok();
    let id = ident
        .id
        .clone()
        .filter(|s| valid(s))
        .or_else(|| Some(f.instance.clone()).filter(|s| valid(s)))
        .unwrap_or_else(|| format!("shelly-{}", ident.mac));
    PendingDevice {
        id,
        kind: ident.kind().into(),
        address: f.addr.to_string(),
        model: ident.model.clone(),
        name: ident.name.clone(),
        mac: Some(ident.mac.clone()),
        firmware: ident.firmware.clone(),
        found_by: "mdns".into(),
        first_seen_ms: now_ms,
        last_seen_ms: now_ms,
    }
}
