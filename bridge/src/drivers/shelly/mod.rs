//! Shelly Gen2+ plugs (Plus Plug S and kin), `[[shelly]]`: HTTP JSON-RPC
//! for commands and polls, and, with `mqtt_prefix`, the device's own MQTT
//! push so state and power arrive within a second of a change (Shelly
//! "Gen2+ Device API": RPC Protocol, RPC Channels, Notifications; components
//! `Shelly` and `Switch`, <https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Switch>).
//!
//! | part | job |
//! |---|---|
//! | [`config`] | `[[shelly]]` keys, units and their checks |
//! | [`http`] | `POST /rpc` client (one call, 5 s, errors naming URL and method) |
//! | [`push`] | `<prefix>/events/rpc`, `<prefix>/status/switch:<n>`, `<prefix>/online` |
//! | [`limits`] | `power_limit`/`current_limit` via `Switch.SetConfig`/`GetConfig`, the host envelope |
//! | `plug` | the entities and availability |
//! | [`crate::drivers::shelly_rpc`] | frame and status parsing, shared with the Pro 4PM |
//!
//! Entities: `switch.<id>` (outlet); `sensor.<id>_power` W, `_voltage` V,
//! `_current` A, `_energy` Wh (`total_increasing`; `aenergy.total`),
//! created on their first reading (unmetered models have none);
//! `binary_sensor.<id>_problem` (on while the status carries `errors`, e.g.
//! `overpower`, listed in its `errors` attribute); with limits configured,
//! diagnostic `sensor.<id>_power_limit` W and `sensor.<id>_current_limit` A
//! (what the device read back).
//!
//! Timing: without `mqtt_prefix`, `Switch.GetStatus` every
//! `poll_interval_s`. With it, one poll at start, then a poll only when
//! push has been silent for `poll_interval_s` (the fallback), and one when
//! `<prefix>/online` turns `true`. Commands (`turn_on`/`turn_off`/`toggle`
//! → `Switch.Set`/`Switch.Toggle`) go over HTTP and are confirmed by
//! reading the state back. Limits are written once the device first
//! answers, then read back.
//!
//! Bad input: a failed or malformed HTTP answer is logged with the URL and
//! method; a malformed push frame with the device id, topic, component and
//! field (throttled); either way the last good state is kept. The device
//! is unavailable after 3 failed polls in a row, or while `<prefix>/online`
//! is `false`; any answer or live push frame brings it back (a retained
//! one does not: it may be hours old).

pub mod config;
pub mod http;
pub mod limits;
mod plug;
pub mod push;

pub use config::ShellyConfig;
pub use http::{ShellyClient, ShellyError};

use super::DriverContext;
use crate::entity::{DriverCommand, SafetyEnvelope, ServiceError};
use http::DeviceInfo;
use limits::Limits;
use plug::Plug;
use push::{Heard, Push};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Wall ms a loop turn waits at least, so a past-due poll never spins.
const MIN_WAIT_MS: f64 = 10.0;

pub fn spawn(cfg: ShellyConfig, ctx: &DriverContext) -> anyhow::Result<JoinHandle<()>> {
    let plug = Plug::new(cfg, ctx)?;
    let (tx, commands) = mpsc::channel::<DriverCommand>(16);
    ctx.router.register(
        &plug.switch_entity,
        tx,
        SafetyEnvelope {
            min_off_s: plug.cfg.min_off_s,
            ..SafetyEnvelope::default()
        },
    );
    let push = match &plug.cfg.mqtt_prefix {
        Some(prefix) => Some(Push::subscribe(&ctx.link, prefix, plug.cfg.switch_id)?),
        None => None,
    };
    let driver = Driver {
        client: ShellyClient::new(&plug.cfg.url),
        plug,
        named: false,
        limits_done: false,
        last_heard_ms: i64::MIN,
    };
    Ok(tokio::spawn(driver.run(push, commands)))
}

struct Driver {
    plug: Plug,
    client: ShellyClient,
    named: bool,
    /// Limits written and read back (or nothing to write).
    limits_done: bool,
    /// Clock ms of the last poll or push frame; `MIN`: poll now.
    last_heard_ms: i64,
}

impl Driver {
    async fn run(mut self, mut push: Option<Push>, mut commands: mpsc::Receiver<DriverCommand>) {
        let ctx = self.plug.ctx.clone();
        let mut shutdown = ctx.shutdown.clone();
        let interval_ms = self.plug.cfg.poll_interval_s * 1000.0;
        loop {
            let due_ms = self.last_heard_ms.saturating_add(interval_ms as i64);
            let wait_ms = (due_ms.saturating_sub(ctx.clock.now_ms()) as f64).max(0.0);
            let wait = ctx.clock.sleep_ms(wait_ms);
            let floor = tokio::time::sleep(std::time::Duration::from_millis(MIN_WAIT_MS as u64));
            tokio::select! {
                _ = async { tokio::join!(wait, floor) } => {
                    self.poll(push.as_mut()).await;
                }
                Some(msg) = async { match push.as_mut() {
                    Some(p) => p.recv().await,
                    None => std::future::pending().await,
                } } => {
                    if let Some(p) = &push {
                        self.on_push(p, &msg);
                    }
                }
                Some(cmd) = commands.recv() => {
                    if cmd.reply.is_closed() {
                        continue; // the caller gave up (timed out): do not act late
                    }
                    let result = self.execute(&cmd.service, push.as_mut()).await;
                    let _ = cmd.reply.send(result);
                }
                _ = shutdown.wait() => break,
            }
        }
    }

    fn on_push(&mut self, push: &Push, msg: &crate::broker::Message) {
        match push.read(msg) {
            Ok(Heard::Online(false)) => {
                let why = format!("{} = false", msg.topic);
                self.plug.mqtt_online(false, &why);
            }
            Ok(Heard::Online(true)) => {
                self.plug.mqtt_online(true, "");
                // Things may have changed while it was away: read now.
                self.last_heard_ms = i64::MIN;
            }
            Ok(heard) => {
                // A retained status is the broker's memory, possibly of a
                // device dead for hours (and the three topics arrive in no
                // set order at start): its state is shown, but it neither
                // counts as heard (the fallback poll stays due) nor undoes
                // `online` = false. Only a live frame proves the device.
                if !msg.retain {
                    self.last_heard_ms = self.plug.ctx.clock.now_ms();
                    if self.plug.is_mqtt_offline() {
                        self.plug.mqtt_online(true, "");
                    }
                }
                if let Heard::Status(s) = heard {
                    self.plug.apply(&s);
                }
            }
            Err(e) => self.plug.warn(&msg.topic, &e, &msg.payload),
        }
    }

    /// One HTTP round: the device's name once, the limits once, the status.
    /// Push frames queued meanwhile are taken before the status: they are
    /// older than its answer (one sender), and taken after it a stale
    /// frame would undo it (a command's read-back showing the old state).
    async fn poll(&mut self, push: Option<&mut Push>) {
        self.last_heard_ms = self.plug.ctx.clock.now_ms();
        if !self.named {
            match self.client.call("Shelly.GetDeviceInfo", json!({})).await {
                Ok(v) => match serde_json::from_value::<DeviceInfo>(v) {
                    Ok(info) => {
                        self.named = true;
                        let d = plug::device(&self.plug.cfg, Some(&info));
                        tracing::info!(
                            "Shelly `{}` is a {} (firmware {})",
                            self.plug.name(),
                            d.model,
                            d.sw_version.as_deref().unwrap_or("?")
                        );
                        let _ = self.plug.ctx.store.upsert_device(plug::OWNER, d);
                    }
                    Err(e) => tracing::warn!(
                        "shelly `{}` {} Shelly.GetDeviceInfo: unexpected shape: {e}",
                        self.plug.cfg.id,
                        self.plug.cfg.url
                    ),
                },
                Err(e) => return self.plug.http_failed(&e),
            }
        }
        if !self.limits_done {
            self.write_limits().await;
        }
        match self.client.switch_status(self.plug.cfg.switch_id).await {
            Ok(status) => {
                if let Some(p) = push {
                    while let Some(msg) = p.try_recv() {
                        self.on_push(p, &msg);
                    }
                }
                self.plug.http_ok();
                self.plug.apply(&status);
            }
            Err(e) => self.plug.http_failed(&e),
        }
    }

    /// `Switch.SetConfig` with the configured limits, then `GetConfig`.
    async fn write_limits(&mut self) {
        let cfg = &self.plug.cfg;
        let want = Limits {
            power_limit_w: cfg.power_limit_w,
            current_limit_a: cfg.current_limit_a,
        };
        if !want.any() {
            self.limits_done = true;
            return;
        }
        let id = cfg.switch_id;
        let params = limits::set_config_params(id, want);
        tracing::info!("Shelly `{}`: Switch.SetConfig {params}", cfg.name);
        if let Err(e) = self.client.call("Switch.SetConfig", params).await {
            // Retried at the next poll.
            return tracing::warn!("Shelly `{}`: limits not written: {e}", self.plug.name());
        }
        match self
            .client
            .call("Switch.GetConfig", json!({"id": id}))
            .await
            .map_err(|e| e.to_string())
            .and_then(|v| limits::parse_config(&v))
        {
            Ok(got) => {
                self.limits_done = true;
                if let Some(diff) = limits::mismatch(want, got) {
                    tracing::warn!(
                        "Shelly `{}`: the device kept other limits than configured: {diff}",
                        self.plug.name()
                    );
                }
                self.plug.show_limits(got);
            }
            Err(e) => tracing::warn!(
                "shelly `{}`: limits written but not read back: {e}",
                self.plug.cfg.id
            ),
        }
    }

    async fn execute(
        &mut self,
        service: &str,
        push: Option<&mut Push>,
    ) -> Result<(), ServiceError> {
        let id = self.plug.cfg.switch_id;
        let (method, params) = match service {
            "turn_on" => ("Switch.Set", json!({"id": id, "on": true})),
            "turn_off" => ("Switch.Set", json!({"id": id, "on": false})),
            "toggle" => ("Switch.Toggle", json!({"id": id})),
            _ => {
                return Err(ServiceError::UnknownService(
                    "switch".into(),
                    service.into(),
                ));
            }
        };
        tracing::info!("Shelly `{}`: {method} {params}", self.plug.name());
        self.client
            .call(method, params)
            .await
            .map_err(|e| ServiceError::Driver {
                entity: self.plug.switch_entity.clone(),
                reason: e.to_string(),
            })?;
        // Read back rather than assume.
        self.poll(push).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::link::test_link;
    use crate::broker::{BrokerAddress, EmbeddedBroker, Message};
    use crate::clock::Clock;
    use crate::entity::{EntityStore, ServiceRouter};
    use std::sync::Arc;

    /// A broker, a link to it and a driver context on it.
    async fn context() -> (
        DriverContext,
        u16,
        EmbeddedBroker,
        crate::shutdown::ShutdownTrigger,
    ) {
        let port = EmbeddedBroker::free_port();
        let broker = EmbeddedBroker::start(std::net::Ipv4Addr::LOCALHOST.into(), port).unwrap();
        let link = test_link(port, "t-shelly").await;
        let store = EntityStore::new(Clock::real());
        let (trigger, shutdown) = crate::shutdown::channel();
        let ctx = DriverContext {
            store: store.clone(),
            router: ServiceRouter::new(store.clone()),
            link,
            broker: BrokerAddress::local(port),
            clock: Clock::real(),
            shutdown,
            forecasts: Arc::default(),
            alerts: None,
        };
        (ctx, port, broker, trigger)
    }

    /// Answers every `POST /rpc` with `result` (no id: accepted for any).
    async fn rpc_server(result: serde_json::Value) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = json!({ "result": result }).to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
            }
        });
        format!("http://{addr}")
    }

    fn cfg(url: &str) -> ShellyConfig {
        let text = format!("id = \"plug\"\nname = \"P\"\nurl = \"{url}\"\nmqtt_prefix = \"p\"\n");
        toml::from_str(&text).unwrap()
    }

    /// A command's read-back (`off`) and, queued before it, a frame the
    /// device sent earlier (`on`): the read-back stands.
    #[tokio::test]
    async fn a_frame_queued_before_a_read_back_does_not_undo_it() {
        let (ctx, port, _broker, _trigger) = context().await;
        let url = rpc_server(json!({"id":0,"output":false,"apower":0.0})).await;
        let mut push = Push::subscribe(&ctx.link, "p", 0).unwrap();
        let mut watch = ctx.link.subscribe("p/status/switch:0").unwrap();
        assert!(
            ctx.link
                .subscriptions_settled(std::time::Duration::from_secs(5))
                .await
        );
        let device = test_link(port, "t-device").await;
        let on = r#"{"id":0,"output":true,"apower":52.0}"#;
        device
            .publish("p/status/switch:0", on, false)
            .await
            .unwrap();
        // The link hands a message to every matching subscription at once.
        tokio::time::timeout(std::time::Duration::from_secs(5), watch.recv())
            .await
            .unwrap()
            .unwrap();
        let mut d = Driver {
            client: ShellyClient::new(&url),
            plug: Plug::new(cfg(&url), &ctx).unwrap(),
            named: true,
            limits_done: true,
            last_heard_ms: 1_000,
        };
        d.poll(Some(&mut push)).await;
        // What the loop would take next.
        while let Some(m) = push.try_recv() {
            d.on_push(&push, &m);
        }
        assert_eq!(ctx.store.get("switch.plug").unwrap().state, "off");
        assert_eq!(ctx.store.get("sensor.plug_power").unwrap().state, "0");
    }

    #[tokio::test]
    async fn a_retained_status_after_the_will_neither_revives_the_plug_nor_counts_as_heard() {
        let (ctx, _port, _broker, _trigger) = context().await;
        let store = ctx.store.clone();
        let cfg = cfg("http://127.0.0.1:9");
        let push = Push::subscribe(&ctx.link, "p", 0).unwrap();
        let mut d = Driver {
            client: ShellyClient::new(&cfg.url),
            plug: Plug::new(cfg, &ctx).unwrap(),
            named: false,
            limits_done: false,
            last_heard_ms: 1_000,
        };
        let status = r#"{"id":0,"output":true,"apower":52.0,"voltage":230.0,"current":0.23,"aenergy":{"total":10.0}}"#;
        // The order the broker's retained messages may take at start: the
        // will first, then the status the device left hours ago.
        d.on_push(&push, &Message::for_test("p/online", "false", true));
        assert!(!store.device("plug").unwrap().1, "the will: offline");
        d.on_push(&push, &Message::for_test("p/status/switch:0", status, true));
        assert!(
            !store.device("plug").unwrap().1,
            "a retained status does not bring the plug back"
        );
        assert_eq!(
            d.last_heard_ms, 1_000,
            "nor does it delay the fallback poll"
        );
        assert!(!store.entity_available("switch.plug"));
        // A live frame is the device speaking: back, and heard.
        d.on_push(
            &push,
            &Message::for_test("p/status/switch:0", status, false),
        );
        assert!(store.device("plug").unwrap().1);
        assert!(d.last_heard_ms > 1_000);
        assert_eq!(store.get("switch.plug").unwrap().state, "on");
    }
}
