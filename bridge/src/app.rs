//! A running bridge: broker (embedded or external), MQTT link, entity store,
//! service router, discovery, drivers, plugins and the HTTP port, started in
//! that order and stopped in reverse, with `hearth/bridge/state` going
//! `offline` last (retained; it is also the MQTT last will).

use crate::api::{self, Api, ApiOptions, auth::Authenticator};
use crate::broker::embedded::bridge_credentials;
use crate::broker::{BrokerAddress, BrokerOptions, EmbeddedBroker, MqttLink, link::LinkOptions};
use crate::clock::Clock;
use crate::config::Config;
use crate::discovery::payload::BRIDGE_DEVICE;
use crate::discovery::{self, DiscoveryOptions, Topics, publisher::Publisher};
use crate::drivers::{self, DriverContext};
use crate::entity::{Component, Device, EntitySpec, EntityStore, ServiceRouter};
use crate::plugins::cache::CodeCache;
use crate::plugins::directory::PluginDirectory;
use crate::plugins::runner::RunnerContext;
use crate::plugins::{self, PluginEngine, PluginManager};
use crate::shutdown::{self, Shutdown, ShutdownTrigger};
use serde_json::Map;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the bridge keeps its data when the config names no directory.
pub const DEFAULT_DATA_DIR: &str = "hearth-data";

pub struct Bridge {
    pub store: Arc<EntityStore>,
    pub router: Arc<ServiceRouter>,
    pub link: MqttLink,
    pub topics: Topics,
    /// Where the broker is (the embedded one's address when it runs).
    pub broker: BrokerAddress,
    pub http_addr: SocketAddr,
    pub plugins: Arc<PluginManager>,
    pub engine: Arc<PluginEngine>,
    /// Forecast series plugins read (`forecast` import).
    pub forecasts: Arc<crate::forecast::Forecasts>,
    pub data_dir: PathBuf,
    /// History in SQLite (`None` with `[recorder] enabled = false`).
    pub recorder: Option<Arc<crate::recorder::Recorder>>,
    /// Alerts of plugins, plugin faults and the bridge; their notifiers.
    pub alerts: Arc<crate::alerts::AlertHub>,
    /// The InfluxDB v2 sink, with `[influxdb]`.
    influx: Option<crate::recorder::influx::InfluxSink>,
    /// `<data-dir>/restore_state.json`: the last commanded states.
    restorer: Arc<crate::entity::restore::Restorer>,
    trigger: ShutdownTrigger,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Bridge {
    /// Starts everything the config asks for.
    pub async fn start(config: Config, clock: Clock) -> anyhow::Result<Bridge> {
        let (trigger, shutdown) = shutdown::channel();
        // First: the parts built below count into it (`GET /metrics`).
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let mut broker_stats = None;
        let data_dir = config
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let broker = match &config.mqtt.url {
            Some(url) => {
                let mut b =
                    BrokerAddress::parse(url)?.with_ca_file(config.mqtt.ca_file.as_deref())?;
                if let Some(password) = &config.mqtt.password {
                    anyhow::ensure!(
                        b.username.is_some(),
                        "[mqtt] password needs a user in the url (mqtt://USER@host:port)"
                    );
                    anyhow::ensure!(
                        b.password.is_none(),
                        "[mqtt] password is set and the url has a password too; keep one"
                    );
                    b.password = Some(password.expose().to_string());
                }
                b
            }
            None => {
                // Unconfigured: anonymous plain MQTT, as before [tls] existed.
                let opts = BrokerOptions::from_config(&config, &data_dir)?;
                let auth = opts.access.is_some();
                let b = EmbeddedBroker::start_with(opts)?;
                broker_stats = Some(b.stats.clone());
                let mut local = BrokerAddress::local(b.addr.port());
                if config.tls.is_some() && !b.addr.ip().is_unspecified() {
                    local.host = b.addr.ip().to_string();
                }
                if auth {
                    let (user, password) = bridge_credentials(&data_dir)?;
                    local.username = Some(user);
                    local.password = Some(password);
                }
                local
            }
        };
        let topics = Topics {
            base: config.mqtt.base_topic.clone(),
            discovery_prefix: config.homeassistant.discovery_prefix.clone(),
        };
        let store = EntityStore::new(clock);
        let router = ServiceRouter::new(store.clone());
        let opts = LinkOptions {
            client_id: format!("hearth-bridge-{}", topics.base),
            will: Some((topics.bridge_state(), "offline".into())),
            birth: Some((topics.bridge_state(), "online".into())),
        };
        let link = MqttLink::connect(&broker, opts).await?;

        register_bridge_device(&store)?;
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| anyhow::anyhow!("data directory {}: {e}", data_dir.display()))?;
        // The recorder subscribes before any driver runs, so history has
        // every change from the first one.
        let recorder = crate::recorder::Recorder::for_bridge(&config.recorder, &data_dir, &store)?;
        if let Some(r) = &recorder {
            metrics.observe_recorder(r);
        }
        // The InfluxDB sink too (it buffers on disk before any send).
        let influx = match &config.influxdb {
            Some(c) => {
                Some(crate::recorder::influx::InfluxSink::start(c, &store, &data_dir).await?)
            }
            None => None,
        };
        let mut tasks = vec![metrics.watch_store(&store, shutdown.clone())];
        let dopts = DiscoveryOptions {
            topics: topics.clone(),
            mode: config.homeassistant.discovery,
        };
        let (publisher, sweep) = Publisher::spawn(
            link.for_driver("discovery"),
            store.clone(),
            dopts,
            shutdown.clone(),
        )?;
        tasks.push(publisher);
        tasks.push(discovery::commands::spawn(
            &link.for_driver("discovery"),
            topics.clone(),
            store.clone(),
            router.clone(),
            shutdown.clone(),
        )?);
        // Before the drivers and plugins: both raise alerts (an AC not
        // following its IR commands, a plugin's first outputs).
        let alerts = crate::alerts::AlertHub::start(
            &config.alerts,
            clock,
            crate::alerts::HubOptions {
                store: Some(store.clone()),
                state_file: Some(data_dir.join("alerts.json")),
            },
        )?;
        if let Some(r) = &recorder {
            tasks.push(record_alerts(&alerts, r.clone(), shutdown.clone()));
            // A full disk is an alert too, not only the problem entity.
            r.attach_alerts(alerts.clone());
        }
        let forecasts = Arc::new(crate::forecast::Forecasts::default());
        let ctx = DriverContext {
            store: store.clone(),
            router: router.clone(),
            link: link.clone(),
            broker: broker.clone(),
            clock,
            shutdown: shutdown.clone(),
            forecasts: forecasts.clone(),
            alerts: Some(alerts.clone()),
        };
        tasks.extend(drivers::start(&config, &ctx)?);
        // After the configured drivers: a device they drive is never pending.
        let lan = if config.lan_discovery.enabled {
            let (lan, lan_tasks) = crate::lan::Lan::start(&config, &ctx, &topics.base)?;
            tasks.extend(lan_tasks);
            Some(lan)
        } else {
            None
        };
        if let Some(m) = &config.mirror {
            tasks.push(discovery::mirror::spawn(m.clone(), &ctx, &topics)?);
        }
        // The last commanded states, through the router (so the envelope
        // applies), after the drivers registered and before the plugins
        // take over; late devices are restored as they appear.
        let restorer = crate::entity::restore::Restorer::load(
            &data_dir,
            store.clone(),
            router.clone(),
            shutdown.clone(),
        );
        tasks.push(restorer.spawn_watch());
        restorer.apply_ready().await;

        // Host-side, so billing does not depend on the balancing plugin.
        if let Some(u) = &config.usage {
            tasks.push(crate::usage::spawn(
                u,
                crate::usage::UsageContext {
                    store: store.clone(),
                    router: router.clone(),
                    alerts: alerts.clone(),
                    recorder: recorder.clone(),
                    clock,
                    shutdown: shutdown.clone(),
                },
            )?);
        }
        // Host-side too: the dashboard's figures whatever plugins run.
        if let Some(e) = &config.energy {
            tasks.push(crate::energy::spawn(
                e,
                crate::energy::EnergyContext {
                    store: store.clone(),
                    clock,
                    shutdown: shutdown.clone(),
                    data_dir: Some(data_dir.clone()),
                },
            )?);
        }
        let engine =
            PluginEngine::with_cache(CodeCache::new(Some(data_dir.join("cache").join("plugins"))))?;
        let plugins = Arc::new(PluginManager::new(
            RunnerContext {
                store: store.clone(),
                router: router.clone(),
                engine: engine.clone(),
                logs: Default::default(),
                forecasts: forecasts.clone(),
                shutdown: shutdown.clone(),
                alerts: alerts.clone(),
                metrics: Some(metrics.clone()),
            },
            Some(&data_dir),
        ));
        for p in &config.plugins {
            let plugins = plugins.clone();
            let p = p.clone();
            tokio::task::spawn_blocking(move || plugins.load(p)).await??;
        }
        let mut directory = PluginDirectory::new(data_dir.join("plugins"), plugins.clone());
        directory = tokio::task::spawn_blocking(move || {
            directory.load_all();
            directory
        })
        .await?;
        // The plugins compiled (if the code cache did not have them): the
        // compiler's freed memory goes back to the OS.
        crate::broker::allocator::release_free_memory();
        {
            let plugins = Arc::downgrade(&plugins);
            restorer.set_driven_check(Box::new(move |id| {
                plugins
                    .upgrade()
                    .is_some_and(|p| p.list().iter().any(|s| s.drives.iter().any(|d| d == id)))
            }));
        }
        tasks.push(plugins::saved::spawn_periodic_save(
            plugins.clone(),
            shutdown.clone(),
        ));
        tasks.push(api::mqtt::spawn(
            &link,
            &topics.base,
            plugins.clone(),
            shutdown.clone(),
        )?);
        tasks.push(api::mqtt::spawn_devices(
            &link,
            &topics.base,
            lan.clone(),
            shutdown.clone(),
        )?);
        if config.plugin_dir.watch {
            tracing::info!(
                "watching {} for plugin changes (every {} s)",
                directory.dir().display(),
                config.plugin_dir.watch_interval_s
            );
            directory.spawn_watch(
                Duration::from_secs_f64(config.plugin_dir.watch_interval_s),
                shutdown.clone(),
            );
        }
        // Everything the bridge starts with is registered: retained configs
        // of devices it no longer has can go. Sensor nodes register from
        // their retained announcements; 2 s lets those arrive first.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let _ = sweep.send(());
        });
        let auth = Arc::new(Authenticator::new(
            &data_dir,
            config.http.auth_max_failures,
            Duration::from_secs(config.http.auth_window_s),
        )?);
        tasks.push(auth.spawn_watcher(shutdown.clone()));
        metrics.watch(crate::metrics::Sources {
            link: link.clone(),
            store: store.clone(),
            plugins: Arc::downgrade(&plugins),
            recorder: recorder.clone(),
            influx: influx.as_ref().map(|i| i.watch()),
            broker: broker_stats,
            alerts: alerts.clone(),
        });
        let api = Arc::new(Api {
            store: store.clone(),
            router: router.clone(),
            auth,
            plugins: plugins.clone(),
            link: link.clone(),
            bus: {
                let bus = crate::api::events::EventBus::default();
                if let Some(r) = &recorder {
                    r.watch_bus(&bus);
                }
                bus
            },
            recorder: recorder.clone(),
            alerts: alerts.clone(),
            options: ApiOptions {
                max_pending: config.http.max_pending_messages,
                auth_timeout: Duration::from_secs_f64(config.http.auth_timeout_s),
                heartbeat: Duration::from_secs_f64(config.http.heartbeat_s),
                ..ApiOptions::default()
            },
            data_dir: data_dir.clone(),
            lan: lan.clone(),
            nodered: crate::nodered::NodeRed::new(store.clone(), router.clone(), shutdown.clone()),
            metrics: Some(metrics.clone()),
            energy_summary: api::websocket::energy::SummarySources {
                usage: config.usage.clone(),
                energy: config.energy.clone(),
            },
            areas: Arc::new(crate::areas::AreaRegistry::open(
                &data_dir,
                &config.places(),
            )?),
        });
        // Start returns once the bridge hears everything published from
        // then on (drivers subscribed above; SUBACKs are asynchronous).
        if !link.subscriptions_settled(Duration::from_secs(5)).await {
            tracing::warn!(
                "the MQTT broker {broker} did not acknowledge every subscription within 5 s; \
                 messages published meanwhile may be missed"
            );
        }
        let http = SocketAddr::new(config.http.bind, config.http.port);
        let tls = api::tls::TlsOptions::from_config(&config, &data_dir)
            .map(|o| api::tls::ApiTls::load(&o))
            .transpose()?;
        let ws_scheme = if tls.is_some() { "wss" } else { "ws" };
        let (http_addr, server) = api::server::serve(http, api, tls, shutdown.clone()).await?;
        tasks.push(server);
        tracing::info!(
            "bridge running: MQTT {broker}, base topic `{}`, HA WebSocket API {ws_scheme}://{http_addr}/api/websocket",
            topics.base
        );
        Ok(Bridge {
            store,
            router,
            link,
            topics,
            broker,
            http_addr,
            plugins,
            engine,
            forecasts,
            data_dir,
            recorder,
            alerts,
            influx,
            restorer,
            trigger,
            tasks,
        })
    }

    /// A shutdown signal tied to this bridge (for the twin or a test).
    pub fn shutdown_signal(&self) -> Shutdown {
        self.trigger.subscribe()
    }

    /// Starts one more plugin on the running bridge (blocking: it compiles).
    pub fn load_plugin(&self, cfg: plugins::PluginConfig) -> anyhow::Result<()> {
        self.plugins.load(cfg).map(|_| ())
    }

    pub fn plugin_status(&self, name: &str) -> Option<plugins::PluginStatus> {
        self.plugins.status(name)
    }

    /// Stops every part; discovery stays retained, `hearth/bridge/state`
    /// goes `offline`.
    pub async fn stop(self) {
        tracing::info!("shutting down");
        self.trigger.trigger();
        // Before the plugins stop: their safe states on the way out are not
        // what anyone commanded.
        let restorer = self.restorer.clone();
        let _ = tokio::task::spawn_blocking(move || restorer.flush()).await;
        let plugins = self.plugins.clone();
        let _ = tokio::task::spawn_blocking(move || plugins.stop_all()).await;
        // All tasks share one 2 s deadline; stragglers (a driver in the
        // middle of an HTTP request) are aborted.
        let aborts: Vec<_> = self.tasks.iter().map(|t| t.abort_handle()).collect();
        let all = join_all(self.tasks);
        if tokio::time::timeout(Duration::from_secs(2), all)
            .await
            .is_err()
        {
            aborts.iter().for_each(|a| a.abort());
        }
        // After the drivers: their last changes are recorded too.
        if let Some(r) = &self.recorder {
            r.close().await;
        }
        // Also after the drivers; finishes a POST in progress (timeout_s).
        if let Some(influx) = self.influx {
            influx.stop().await;
        }
        // After the plugins (their last alerts): undelivered notifications
        // go to the outbox for the next start.
        self.alerts.stop().await;
        if let Err(e) = self
            .link
            .publish(&self.topics.bridge_state(), "offline", true)
            .await
        {
            tracing::warn!("could not publish offline state: {e:#}");
        }
        self.link.disconnect().await;
        // Give the link a moment to flush the DISCONNECT.
        tokio::time::sleep(Duration::from_millis(200)).await;
        tracing::info!("bridge stopped; {} is offline", self.topics.bridge_state());
    }
}

/// Every raise, repeat, clear and acknowledgement goes to the recorder's
/// `alerts` table (the hub keeps only the current state of each alert).
fn record_alerts(
    hub: &crate::alerts::AlertHub,
    recorder: Arc<crate::recorder::Recorder>,
    mut shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = hub.subscribe();
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = shutdown.wait() => break,
                ev = events.recv() => ev,
            };
            match ev {
                Ok(ev) => recorder.record_alert(crate::recorder::AlertRecord {
                    time_ms: ev.alert.last_seen_ms,
                    source: ev.alert.source.clone(),
                    key: ev.alert.key.clone(),
                    severity: ev.alert.severity.as_str().into(),
                    status: ev.kind.as_str().into(),
                    message: format!("{}: {}", ev.alert.title, ev.alert.message),
                    entity_id: ev.alert.entity_id.clone(),
                    data: serde_json::json!({
                        "id": ev.alert.id,
                        "count": ev.alert.count,
                        "first_seen_ms": ev.alert.first_seen_ms,
                        "acknowledged": ev.alert.acknowledged,
                        "notified": ev.notified,
                    }),
                }),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!("recorder: {n} alert changes were not recorded (alert burst)")
                }
                Err(RecvError::Closed) => break,
            }
        }
    })
}

async fn join_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

fn register_bridge_device(store: &EntityStore) -> anyhow::Result<()> {
    store.upsert_device(
        "bridge",
        Device {
            id: BRIDGE_DEVICE.into(),
            name: "Hearth bridge".into(),
            manufacturer: "Hearth".into(),
            model: "Hearth bridge".into(),
            sw_version: Some(env!("CARGO_PKG_VERSION").into()),
            via_device: None,
        },
    )?;
    let spec = EntitySpec::new(BRIDGE_DEVICE, "connection_state", Component::BinarySensor)
        .named("Connection state")
        .class("connectivity")
        .diagnostic();
    let id = spec.entity_id.clone();
    store.upsert_entity(spec)?;
    store.set_state(&id, "on", Map::new())?;
    Ok(())
}
