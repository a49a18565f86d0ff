//! The usage task: reads the store's changes, attributes, records,
//! publishes and enforces limits.

use super::baseline::{self, Baseline};
use super::config::{OutletConfig, UsageConfig};
use super::entities;
use super::ledger::{self, LedgerRow};
use super::limits::{self, LimitWatch};
use super::meter::Counter;
use super::periods::{Calendar, PeriodKind};
use super::{ALERT_SOURCE, NOBODY};
use crate::alerts::{AlertHub, NewAlert, Severity};
use crate::clock::Clock;
use crate::entity::{CallSource, EntityStore, ServiceCall, ServiceRouter, StoreEvent};
use crate::recorder::Recorder;
use crate::shutdown::Shutdown;
use serde_json::Map;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// What the usage task needs from the bridge.
pub struct UsageContext {
    pub store: Arc<EntityStore>,
    pub router: Arc<ServiceRouter>,
    pub alerts: Arc<AlertHub>,
    /// `None` with the recorder disabled: entities only, no ledger.
    pub recorder: Option<Arc<Recorder>>,
    pub clock: Clock,
    pub shutdown: Shutdown,
}

/// Wall time between checks for a period's end (also on a manual clock).
const TICK: Duration = Duration::from_millis(500);
/// Clock ms before an outlet that stayed on past its user's limit is
/// switched off again.
const REPEAT_OFF_MS: i64 = 30_000;
/// How far back the last recorded counter reading is looked for.
const BASELINE_LOOKBACK_MS: i64 = 31 * 86_400_000;

#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    start_ms: i64,
    end_ms: i64,
    wh: f64,
    eur: f64,
}

struct User {
    id: String,
    name: String,
    config_limits: [Option<f64>; 3],
    limit_entity: Option<(String, PeriodKind)>,
    /// Day, week, month.
    totals: [Totals; 3],
    over: Vec<PeriodKind>,
}

impl User {
    /// The limit of `kind` now (kWh) and where it comes from.
    fn limit(&self, store: &EntityStore, kind: PeriodKind) -> Option<(f64, &'static str)> {
        if let Some((id, k)) = &self.limit_entity
            && *k == kind
            && let Some(v) = store.get(id).and_then(|s| s.number())
        {
            return (v > 0.0).then_some((v, "entity"));
        }
        self.config_limits[kind as usize].map(|v| (v, "config"))
    }

    fn limit_kinds(&self) -> Vec<PeriodKind> {
        PeriodKind::ALL
            .into_iter()
            .filter(|k| {
                self.config_limits[*k as usize].is_some()
                    || self.limit_entity.as_ref().is_some_and(|(_, e)| e == k)
            })
            .collect()
    }
}

struct Outlet {
    cfg: OutletConfig,
    counter: Counter,
    last_off_ms: Option<i64>,
}

struct Usage {
    ctx: UsageContext,
    cfg: UsageConfig,
    cal: Calendar,
    users: Vec<User>,
    outlets: Vec<Outlet>,
    watch: LimitWatch,
    /// The last known tariff (€/kWh, period), for readings while the
    /// tariff sensor is unknown.
    last_tariff: Option<(f64, String)>,
    warned_no_tariff: bool,
    /// Holder and tariff states as of the event being handled (the store
    /// may be ahead of the event stream).
    seen: HashMap<String, crate::entity::State>,
}

/// Registers the users' entities, restores their totals from the ledger
/// and starts the task.
pub fn spawn(cfg: &UsageConfig, ctx: UsageContext) -> anyhow::Result<JoinHandle<()>> {
    let cal = cfg.calendar().map_err(anyhow::Error::msg)?;
    let now = ctx.clock.now_ms();
    let mut users = Vec::new();
    for u in &cfg.users {
        let user = User {
            id: u.id.clone(),
            name: u.name.clone(),
            config_limits: [u.limit_kwh_day, u.limit_kwh_week, u.limit_kwh_month],
            limit_entity: u.limit_entity.clone().map(|e| (e, u.limit_entity_period)),
            totals: [Totals::default(); 3],
            over: Vec::new(),
        };
        entities::register(&ctx.store, &user.id, &user.name, &user.limit_kinds())?;
        users.push(user);
    }
    if ctx.recorder.is_none() {
        tracing::warn!(
            "usage: the recorder is disabled: no billing ledger, totals start from zero"
        );
    }
    // One read connection for the baselines and the totals.
    let conn = ctx.recorder.as_ref().and_then(|r| {
        crate::recorder::schema::open_reader(r.path())
            .map_err(|e| tracing::warn!("usage: totals and counters start afresh: {e}"))
            .ok()
    });
    let baselines = conn
        .as_ref()
        .and_then(|c| {
            baseline::load(c)
                .map_err(|e| tracing::warn!("usage: reading the counters' baselines: {e}"))
                .ok()
        })
        .unwrap_or_default();
    let outlets = cfg
        .outlets
        .iter()
        .map(|o| {
            // Continue from what the ledger last counted: what was used
            // while the bridge was down is counted at the first new
            // reading. The recorded history is only a fallback (a database
            // from before baselines): it may lack dropped rows or already
            // hold a reading from this start.
            let last = baselines.get(&o.energy_entity).copied().or_else(|| {
                ctx.store
                    .history(&o.energy_entity, now - BASELINE_LOOKBACK_MS, now)
                    .last()
                    .map(|(_, v)| *v)
            });
            Outlet {
                cfg: o.clone(),
                counter: Counter::from_reading(last),
                last_off_ms: None,
            }
        })
        .collect();
    let mut usage = Usage {
        ctx,
        cfg: cfg.clone(),
        cal,
        users,
        outlets,
        watch: LimitWatch::default(),
        last_tariff: None,
        warned_no_tariff: false,
        seen: HashMap::new(),
    };
    usage.restore(conn.as_ref(), now);
    usage.publish_all(now);
    // Subscribed before returning: no reading falls between start and run.
    let (snapshot, events) = usage.ctx.store.subscribe();
    Ok(tokio::spawn(usage.run(snapshot, events)))
}

impl Usage {
    /// Totals of the current periods from the ledger; notifications the
    /// alert hub still holds for them.
    fn restore(&mut self, conn: Option<&rusqlite::Connection>, now: i64) {
        for u in &mut self.users {
            for kind in PeriodKind::ALL {
                let (start, end) = self.cal.period(kind, now);
                let (wh, eur) = conn
                    .and_then(|c| {
                        ledger::totals_since(c, &u.id, start)
                            .map_err(|e| tracing::warn!("usage: reading the ledger: {e}"))
                            .ok()
                    })
                    .unwrap_or((0.0, 0.0));
                u.totals[kind as usize] = Totals {
                    start_ms: start,
                    end_ms: end,
                    wh,
                    eur,
                };
                for pct in limits::THRESHOLDS {
                    let key = limits::alert_key(&u.id, kind, pct);
                    let held = self
                        .ctx
                        .alerts
                        .get(&crate::alerts::Alert::make_id(ALERT_SOURCE, &key));
                    match held {
                        Some(a) if a.active && a.first_seen_ms >= start => {
                            self.watch.mark(&u.id, kind, pct, start)
                        }
                        Some(a) if a.active => {
                            self.ctx.alerts.clear(ALERT_SOURCE, &key);
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    async fn run(
        mut self,
        snapshot: crate::entity::store::Snapshot,
        mut events: tokio::sync::mpsc::UnboundedReceiver<StoreEvent>,
    ) {
        // Readings already in the store are baselines (or continue one).
        for (_, s) in &snapshot.entities {
            if let Some(s) = s {
                self.note(s);
            }
        }
        for (_, s) in &snapshot.entities {
            if let Some(s) = s
                && let Some(i) = self.outlet_index(&s.entity_id)
            {
                self.reading(i, s);
            }
        }
        let mut shutdown = self.ctx.shutdown.clone();
        loop {
            let ev = tokio::select! {
                _ = shutdown.wait() => break,
                ev = events.recv() => match ev {
                    Some(ev) => Some(ev),
                    None => break,
                },
                _ = tokio::time::sleep(TICK) => None,
            };
            let now = self.ctx.clock.now_ms();
            self.roll_over(now);
            let Some(StoreEvent::StateChanged(c)) = ev else {
                continue;
            };
            let Some(new) = &c.new_state else {
                self.seen.remove(&c.entity_id);
                continue;
            };
            self.note(new);
            if let Some(i) = self.outlet_index(&c.entity_id) {
                self.reading(i, new);
            } else if self.users.iter().any(|u| {
                u.limit_entity
                    .as_ref()
                    .is_some_and(|(e, _)| *e == c.entity_id)
            }) {
                // A limit changed from HA.
                for u in 0..self.users.len() {
                    self.check_limits(u, now);
                }
            }
        }
    }

    /// Keeps holder and tariff states in event order.
    fn note(&mut self, s: &crate::entity::State) {
        let watched = s.entity_id == self.cfg.tariff_entity
            || self
                .outlets
                .iter()
                .any(|o| o.cfg.user_entity.as_deref() == Some(s.entity_id.as_str()));
        if watched {
            self.seen.insert(s.entity_id.clone(), s.clone());
        }
    }

    fn outlet_index(&self, entity_id: &str) -> Option<usize> {
        self.outlets
            .iter()
            .position(|o| o.cfg.energy_entity == entity_id)
    }

    /// Who holds outlet `i` now: a user's index, or `None` (nobody).
    fn holder(&self, i: usize) -> Option<usize> {
        let o = &self.outlets[i].cfg;
        let id = match (&o.user, &o.user_entity) {
            (Some(u), _) => u.clone(),
            (None, Some(e)) => self.seen.get(e)?.state.clone(),
            _ => return None,
        };
        self.users.iter().position(|u| u.id == id)
    }

    /// (€/kWh, `HP`|`HC`) in force now.
    fn tariff(&mut self) -> (f64, String) {
        let state = self.seen.get(&self.cfg.tariff_entity).cloned();
        let price = state.as_ref().and_then(|s| s.number());
        let period = state
            .as_ref()
            .and_then(|s| s.attributes.get("period"))
            .and_then(|p| p.as_str())
            .filter(|p| *p == "HP" || *p == "HC")
            .map(str::to_string);
        if let Some(p) = price {
            let t = (p, period.unwrap_or_else(|| "HP".into()));
            self.last_tariff = Some(t.clone());
            return t;
        }
        if let Some(t) = &self.last_tariff {
            return t.clone();
        }
        if !self.warned_no_tariff {
            self.warned_no_tariff = true;
            tracing::warn!(
                "usage: {} has no price (€/kWh) yet: energy is recorded at 0 €/kWh, period HP, until it has",
                self.cfg.tariff_entity
            );
        }
        (0.0, "HP".into())
    }

    fn reading(&mut self, i: usize, state: &crate::entity::State) {
        let Some(wh) = state.number() else { return };
        let before = self.outlets[i].counter.last();
        let delta = self.outlets[i].counter.advance(wh);
        let after = self.outlets[i].counter.last();
        if after == before {
            return;
        }
        let t = state.last_updated;
        let baseline = after.map(|wh| Baseline {
            entity_id: self.outlets[i].cfg.energy_entity.clone(),
            wh,
            updated_ms: t,
        });
        if delta <= 0.0 {
            // A first reading: only the baseline moves.
            if let (Some(r), Some(b)) = (&self.ctx.recorder, baseline) {
                r.record_usage(None, b);
            }
            return;
        }
        let holder = self.holder(i);
        let (price, period) = self.tariff();
        let eur = delta / 1000.0 * price;
        let user_id = holder.map_or(NOBODY.to_string(), |u| self.users[u].id.clone());
        if let (Some(r), Some(b)) = (&self.ctx.recorder, baseline) {
            r.record_usage(
                Some(LedgerRow {
                    user: user_id,
                    hour_ms: self.cal.hour_start(t),
                    date: self.cal.date(t).to_string(),
                    period,
                    wh: delta,
                    eur,
                }),
                b,
            );
        }
        let Some(u) = holder else { return };
        self.roll_over(t);
        let user = &mut self.users[u];
        for kind in PeriodKind::ALL {
            let tot = &mut user.totals[kind as usize];
            // A reading from before the current period (handled after the
            // roll-over) is in the ledger under its own period already.
            if t < tot.start_ms {
                continue;
            }
            tot.wh += delta;
            tot.eur += eur;
            entities::publish_totals(
                &self.ctx.store,
                &user.id,
                kind,
                tot.start_ms,
                tot.wh,
                tot.eur,
            );
        }
        self.check_limits(u, t);
        // Someone switched an outlet back on past the limit.
        if self.cfg.off_at_limit && !self.users[u].over.is_empty() {
            self.switch_off(i, t);
        }
    }

    /// Starts new periods whose time has come (totals back to zero). Only
    /// forward: a late reading or a clock set back never reopens a period.
    fn roll_over(&mut self, now: i64) {
        for u in 0..self.users.len() {
            let mut rolled = false;
            for kind in PeriodKind::ALL {
                let tot = self.users[u].totals[kind as usize];
                if now >= tot.end_ms {
                    let (start, end) = self.cal.period(kind, now);
                    self.users[u].totals[kind as usize] = Totals {
                        start_ms: start,
                        end_ms: end,
                        wh: 0.0,
                        eur: 0.0,
                    };
                    entities::publish_totals(
                        &self.ctx.store,
                        &self.users[u].id,
                        kind,
                        start,
                        0.0,
                        0.0,
                    );
                    // Last period's notifications are over.
                    for pct in limits::THRESHOLDS {
                        self.ctx.alerts.clear(
                            ALERT_SOURCE,
                            &limits::alert_key(&self.users[u].id, kind, pct),
                        );
                    }
                    self.watch.forget_before(kind, start);
                    rolled = true;
                }
            }
            if rolled {
                self.check_limits(u, now);
            }
        }
    }

    fn publish_all(&mut self, now: i64) {
        for u in 0..self.users.len() {
            let user = &self.users[u];
            for kind in PeriodKind::ALL {
                let tot = user.totals[kind as usize];
                entities::publish_totals(
                    &self.ctx.store,
                    &user.id,
                    kind,
                    tot.start_ms,
                    tot.wh,
                    tot.eur,
                );
            }
            self.check_limits(u, now);
        }
    }

    /// Progress, over-limit state, notifications and switching off.
    fn check_limits(&mut self, u: usize, now: i64) {
        let store = self.ctx.store.clone();
        let mut over = Vec::new();
        let mut crossings = Vec::new();
        let user = &self.users[u];
        for kind in user.limit_kinds() {
            let tot = user.totals[kind as usize];
            let limit = user.limit(&store, kind);
            let used = tot.wh / 1000.0;
            let pct = limit.map_or(0.0, |(l, _)| limits::progress_pct(used, l));
            entities::publish_progress(&store, &user.id, kind, limit, pct);
            let Some((l, _)) = limit else { continue };
            if pct + 1e-9 >= 100.0 {
                over.push(kind);
            }
            for t in self.watch.crossed(&user.id, kind, tot.start_ms, used, l) {
                crossings.push((kind, t, used, l));
            }
        }
        entities::publish_over(&store, &user.id, &over);
        let newly_over = !over.is_empty() && crossings.iter().any(|c| c.1 == 100);
        self.users[u].over = over;
        for (kind, pct, used, l) in crossings {
            self.notify(u, kind, pct, used, l);
        }
        if newly_over && self.cfg.off_at_limit {
            for i in 0..self.outlets.len() {
                if self.holder(i) == Some(u) {
                    self.switch_off(i, now);
                }
            }
        }
    }

    fn notify(&self, u: usize, kind: PeriodKind, pct: u8, used: f64, limit: f64) {
        let user = &self.users[u];
        let period = match kind {
            PeriodKind::Day => "today",
            PeriodKind::Week => "this week",
            PeriodKind::Month => "this month",
        };
        let off = if pct >= 100 && self.cfg.off_at_limit {
            " Their outlets are switched off."
        } else {
            ""
        };
        let alert = NewAlert {
            source: ALERT_SOURCE.into(),
            key: limits::alert_key(&user.id, kind, pct),
            entity_id: Some(entities::progress_id(&user.id, kind)),
            severity: if pct >= 100 {
                Severity::Critical
            } else {
                Severity::Warning
            },
            title: format!("{}: {pct} % of the {} limit", user.name, kind.as_str()),
            message: format!(
                "{} used {} kWh of {} kWh {period}.{off}",
                user.name,
                crate::entity::format_number(used, 3),
                crate::entity::format_number(limit, 3)
            ),
        };
        if let Err(e) = self.ctx.alerts.raise(alert) {
            tracing::warn!("usage: limit notification for `{}`: {e}", user.id);
        }
    }

    /// Turns outlet `i` off through the router if it is on (not more
    /// often than every [`REPEAT_OFF_MS`]).
    fn switch_off(&mut self, i: usize, now: i64) {
        let o = &mut self.outlets[i];
        let on = self
            .ctx
            .store
            .get(&o.cfg.switch_entity)
            .is_some_and(|s| s.state == "on");
        if !on
            || o.last_off_ms
                .is_some_and(|t| now - t < REPEAT_OFF_MS && now >= t)
        {
            return;
        }
        o.last_off_ms = Some(now);
        let call = ServiceCall::new(
            "switch",
            "turn_off",
            &o.cfg.switch_entity,
            Map::new(),
            CallSource::Internal,
        );
        let router = self.ctx.router.clone();
        let id = o.cfg.switch_entity.clone();
        tracing::info!("usage: switching {id} off (its user reached a limit)");
        tokio::spawn(async move {
            if let Err(e) = router.call(call).await {
                tracing::warn!("usage: switching {id} off at the user's limit: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertEventKind;
    use crate::entity::{Component, Device, EntitySpec};
    use serde_json::json;

    /// 2026-12-07 10:00 Paris.
    const T0: i64 = 1_796_634_000_000;
    const HOLDER: &str = "select.strip1_outlet1_user";
    const METER: &str = "sensor.strip1_outlet1_energy";

    fn store_with_strip(clock: Clock) -> Arc<EntityStore> {
        let store = EntityStore::new(clock);
        store
            .upsert_device(
                "strip1",
                Device {
                    id: "strip1".into(),
                    name: "Strip".into(),
                    manufacturer: "Test".into(),
                    model: "Test".into(),
                    sw_version: None,
                    via_device: None,
                },
            )
            .unwrap();
        store
            .upsert_entity(
                EntitySpec::new("strip1", "outlet1_energy", Component::Sensor)
                    .class("energy")
                    .measured("Wh", "total_increasing"),
            )
            .unwrap();
        // Only the holder's state matters here, not its component.
        let mut holder = EntitySpec::new("strip1", "outlet1_user", Component::Sensor);
        holder.entity_id = HOLDER.into();
        store.upsert_entity(holder).unwrap();
        let mut price = EntitySpec::new("strip1", "price", Component::Sensor);
        price.entity_id = "sensor.tariff_price".into();
        store.upsert_entity(price).unwrap();
        store
    }

    fn tariff(store: &EntityStore, price: f64, period: &str) {
        let mut attrs = Map::new();
        attrs.insert("period".into(), json!(period));
        store
            .set_state("sensor.tariff_price", price.to_string(), attrs)
            .unwrap();
    }

    async fn wait_state(store: &EntityStore, id: &str, want: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = store.get(id).map(|s| s.state);
            if got.as_deref() == Some(want) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{id}: want {want}, got {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn attribution_follows_the_holder_across_resets_and_limits_notify_once() {
        let (clock, hand) = Clock::manual(T0);
        let store = store_with_strip(clock);
        let alerts = AlertHub::detached(clock);
        let mut raised = alerts.subscribe();
        let (trigger, shutdown) = crate::shutdown::channel();
        let cfg: UsageConfig = toml::from_str(
            "[[users]]\nid = \"alice\"\nname = \"Alice\"\nlimit_kwh_day = 1.0\n\
             [[users]]\nid = \"bob\"\nname = \"Bob\"\n\
             [[outlets]]\nenergy_entity = \"sensor.strip1_outlet1_energy\"\nswitch_entity = \"switch.strip1_outlet1\"\nuser_entity = \"select.strip1_outlet1_user\"\n",
        )
        .unwrap();
        let task = spawn(
            &cfg,
            UsageContext {
                store: store.clone(),
                router: ServiceRouter::new(store.clone()),
                alerts: alerts.clone(),
                recorder: None,
                clock,
                shutdown,
            },
        )
        .unwrap();
        let set = |id: &str, v: &str| store.set_state(id, v, Map::new()).unwrap();
        tariff(&store, 0.2, "HC");
        set(HOLDER, "alice");
        set(METER, "100"); // baseline
        set(METER, "400"); // alice +300 Wh
        wait_state(&store, "sensor.alice_energy_today", "0.3").await;
        set(HOLDER, "bob");
        set(METER, "50"); // the strip restarted: bob +50
        set(METER, "250"); // bob +200
        wait_state(&store, "sensor.bob_energy_today", "0.25").await;
        set(HOLDER, "none");
        set(METER, "300"); // nobody's
        set(HOLDER, "alice");
        tariff(&store, 0.3, "HP");
        set(METER, "800"); // alice +500: 0.8 kWh of 1.0
        wait_state(&store, "sensor.alice_energy_today", "0.8").await;
        wait_state(&store, "sensor.alice_cost_today", "0.21").await;
        wait_state(&store, "sensor.bob_cost_today", "0.05").await;
        wait_state(&store, "sensor.alice_limit_day_progress", "80").await;
        wait_state(&store, "binary_sensor.alice_over_limit", "off").await;
        set(METER, "850");
        set(METER, "1000"); // 1.0 kWh: 100 %
        wait_state(&store, "binary_sensor.alice_over_limit", "on").await;
        set(METER, "1100");
        wait_state(&store, "sensor.alice_energy_today", "1.1").await;
        let e = store.get("sensor.alice_energy_today").unwrap();
        assert_eq!(
            e.attributes["last_reset"],
            json!(crate::clock::iso8601(T0 - 10 * 3_600_000))
        );
        let mut keys = Vec::new();
        while let Ok(ev) = raised.try_recv() {
            if ev.kind == AlertEventKind::Raised {
                keys.push(ev.alert.key);
            }
        }
        assert_eq!(keys, ["limit_alice_day_80", "limit_alice_day_100"]);
        // The next local day: totals back to zero, notified again.
        hand.set(T0 + 14 * 3_600_000);
        wait_state(&store, "sensor.alice_energy_today", "0").await;
        wait_state(&store, "binary_sensor.alice_over_limit", "off").await;
        wait_state(&store, "sensor.alice_energy_week", "1.1").await;
        set(METER, "1950"); // +850 Wh: 85 %
        wait_state(&store, "sensor.alice_energy_today", "0.85").await;
        let mut keys = Vec::new();
        while let Ok(ev) = raised.try_recv() {
            if ev.kind == AlertEventKind::Raised {
                keys.push(ev.alert.key);
            }
        }
        assert_eq!(keys, ["limit_alice_day_80"]);
        trigger.trigger();
        let _ = task.await;
    }

    #[tokio::test]
    async fn a_number_entity_overrides_the_configured_limit() {
        let (clock, _hand) = Clock::manual(T0);
        let store = store_with_strip(clock);
        let mut limit = EntitySpec::new("strip1", "alice_limit", Component::Sensor);
        limit.entity_id = "number.alice_limit".into();
        store.upsert_entity(limit).unwrap();
        let set = |id: &str, v: &str| store.set_state(id, v, Map::new()).unwrap();
        let alerts = AlertHub::detached(clock);
        let (trigger, shutdown) = crate::shutdown::channel();
        let cfg: UsageConfig = toml::from_str(
            "[[users]]\nid = \"alice\"\nname = \"Alice\"\nlimit_kwh_day = 10\n\
             limit_entity = \"number.alice_limit\"\n\
             [[outlets]]\nenergy_entity = \"sensor.strip1_outlet1_energy\"\nswitch_entity = \"switch.strip1_outlet1\"\nuser = \"alice\"\n",
        )
        .unwrap();
        let router = ServiceRouter::new(store.clone());
        let task = spawn(
            &cfg,
            UsageContext {
                store: store.clone(),
                router,
                alerts: alerts.clone(),
                recorder: None,
                clock,
                shutdown,
            },
        )
        .unwrap();
        set(METER, "0");
        set(METER, "400");
        wait_state(&store, "sensor.alice_limit_day_progress", "4").await;
        set("number.alice_limit", "0.4");
        wait_state(&store, "sensor.alice_limit_day_progress", "100").await;
        wait_state(&store, "binary_sensor.alice_over_limit", "on").await;
        let p = store.get("sensor.alice_limit_day_progress").unwrap();
        assert_eq!(p.attributes["limit_source"], json!("entity"));
        assert!(
            alerts
                .get("usage/limit_alice_day_100")
                .is_some_and(|a| a.active)
        );
        // 0 = no limit from the entity.
        set("number.alice_limit", "0");
        wait_state(&store, "sensor.alice_limit_day_progress", "unknown").await;
        wait_state(&store, "binary_sensor.alice_over_limit", "off").await;
        trigger.trigger();
        let _ = task.await;
    }

    /// Runs the usage task with a recorder on `dir` over a fresh store (a
    /// restart); `before` sets readings before the task starts.
    async fn run_with_recorder(
        dir: &std::path::Path,
        before: &[&str],
        after: &[&str],
        want_today: &str,
    ) {
        let (clock, _hand) = Clock::manual(T0);
        let store = store_with_strip(clock);
        let rec = Recorder::start(
            &crate::recorder::RecorderConfig::default(),
            dir.join("hearth.db"),
            store.clone(),
        )
        .unwrap();
        let set = |v: &str| store.set_state(METER, v, Map::new()).unwrap();
        for v in before {
            set(v);
        }
        let (trigger, shutdown) = crate::shutdown::channel();
        let cfg: UsageConfig = toml::from_str(
            "[[users]]\nid = \"alice\"\nname = \"Alice\"\n\
             [[outlets]]\nenergy_entity = \"sensor.strip1_outlet1_energy\"\nswitch_entity = \"switch.strip1_outlet1\"\nuser = \"alice\"\n",
        )
        .unwrap();
        let task = spawn(
            &cfg,
            UsageContext {
                store: store.clone(),
                router: ServiceRouter::new(store.clone()),
                alerts: AlertHub::detached(clock),
                recorder: Some(rec.clone()),
                clock,
                shutdown,
            },
        )
        .unwrap();
        for v in after {
            set(v);
        }
        wait_state(&store, "sensor.alice_energy_today", want_today).await;
        trigger.trigger();
        let _ = task.await;
        rec.flush().await.unwrap();
        rec.close().await;
    }

    fn ledger_wh(dir: &std::path::Path) -> f64 {
        let conn = crate::recorder::schema::open_reader(&dir.join("hearth.db")).unwrap();
        ledger::totals_since(&conn, "alice", 0).unwrap().0
    }

    #[tokio::test]
    async fn energy_used_while_down_is_billed_once_at_the_first_reading() {
        let dir = tempfile::tempdir().unwrap();
        // 100 Wh baseline, +300 Wh counted.
        run_with_recorder(dir.path(), &[], &["100", "400"], "0.3").await;
        assert_eq!(ledger_wh(dir.path()), 300.0);
        // The driver reads 1000 Wh before the usage task starts: the
        // 600 Wh used while down go to alice at that reading.
        run_with_recorder(dir.path(), &["1000"], &[], "0.9").await;
        assert_eq!(ledger_wh(dir.path()), 900.0);
        // The state rows of 400 and 1000 Wh were dropped (the queue was
        // full while the database refused writes; ledger rows never are):
        // the recorded history ends at 100 Wh, the ledger's baseline at
        // 1000, so 1200 Wh is +200, not +1100.
        let conn = crate::recorder::schema::open_writer(&dir.path().join("hearth.db")).unwrap();
        let n = conn
            .execute("DELETE FROM states WHERE state != '100'", [])
            .unwrap();
        assert!(n >= 2, "{n} state rows deleted");
        drop(conn);
        run_with_recorder(dir.path(), &[], &["1200"], "1.1").await;
        assert_eq!(ledger_wh(dir.path()), 1100.0);
    }
}
