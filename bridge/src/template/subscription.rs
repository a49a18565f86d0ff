//! WebSocket `render_template` (HA's `handle_render_template` in
//! `websocket_api/commands.py`, with `async_track_template_result` in
//! `helpers/event.py`):
//!
//! - fields `template` (required), `variables`, `timeout` (seconds),
//!   `strict`, `report_errors`, `entity_ids` (accepted and unused, as HA);
//! - with `timeout`, one render first: longer than `timeout` →
//!   `template_error` "Exceeded maximum execution time of 3.0s";
//! - a first render with `strict` whose error is reported (with
//!   `report_errors`) as an event `{"error": …, "level": "ERROR"}`;
//! - the result `null`, then an event `{"result": …, "listeners": {"all",
//!   "entities", "domains", "time"}}` with the result typed as HA types it
//!   ([`super::literal`]); later renders are not strict (as HA's);
//! - re-rendered when an entity it read changes (a domain it iterated:
//!   at most once a second; every state: once a minute), at the start of
//!   each minute if it asked for the time; an event only when the result
//!   changed;
//! - a render error: an event `{"error", "level": "ERROR"}` with
//!   `report_errors`, nothing without (HA's behaviour), once until the
//!   template renders again.

use super::{Listeners, World, literal, render};
use crate::api::Api;
use crate::api::calls::Failure;
use crate::api::registry::Registry;
use crate::api::websocket::commands::Outcome;
use crate::api::websocket::protocol::{self, Command, Fields};
use crate::api::websocket::session::Session;
use crate::entity::{State, StoreEvent};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// HA's `ERR_TEMPLATE_ERROR`.
pub const ERR_TEMPLATE_ERROR: &str = "template_error";

/// Store changes a template subscription may have waiting (as
/// `subscriptions::behind`): a client too slow to read is dropped.
const BACKLOG_FACTOR: usize = 16;

/// The shortest wait for a `now()` re-render (see `next_minute`).
const MIN_TIME_WAIT: Duration = Duration::from_millis(100);

/// The world as the API sees it now, with `states` as given.
pub fn world(api: &Api, states: Arc<BTreeMap<String, State>>) -> World {
    World {
        states,
        places: Arc::new(api.places()),
        now_ms: api.store.clock().now_ms(),
        // `get_config` says UTC.
        tz: jiff::tz::TimeZone::UTC,
    }
}

/// Every state as HA shows it, by entity id.
pub fn presented_states(snapshot: &crate::entity::store::Snapshot) -> BTreeMap<String, State> {
    let reg = Registry::from_snapshot(snapshot);
    snapshot
        .entities
        .iter()
        .filter_map(|(_, s)| s.as_ref())
        .map(|s| (s.entity_id.clone(), reg.present(s)))
        .collect()
}

fn timeout_field(msg: &Map<String, Value>) -> Result<Option<f64>, Failure> {
    match msg.get("timeout") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        // vol.Coerce(float)
        Some(Value::String(s)) => s.trim().parse::<f64>().map(Some).map_err(|_| {
            Failure::from("expected float for dictionary value @ data['timeout']".to_string())
        }),
        Some(_) => Err(Failure::from(
            "expected float for dictionary value @ data['timeout']".to_string(),
        )),
    }
}

pub fn handle(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(
        &cmd.msg,
        &[
            "template",
            "entity_ids",
            "variables",
            "timeout",
            "strict",
            "report_errors",
        ],
    )?;
    let template = f.required_str("template")?.to_string();
    f.strings("entity_ids")?;
    let variables = f.object("variables")?.cloned().unwrap_or_default();
    let timeout = timeout_field(&cmd.msg)?;
    let strict = f.bool("strict")?;
    let report_errors = f.bool("report_errors")?;
    let id = cmd.id;
    let (snapshot, rx) = s.api.store.subscribe();
    let reg = Registry::from_snapshot(&snapshot);
    let states = presented_states(&snapshot);
    drop(snapshot);
    let conn = s.conn.clone();

    if let Some(t) = timeout.filter(|t| *t > 0.0) {
        let started = std::time::Instant::now();
        let r = render(
            &template,
            &variables,
            &world(&s.api, Arc::new(states.clone())),
            strict,
        );
        // A template error is not a timeout (HA: timed_out = False).
        if r.result.is_ok() && started.elapsed().as_secs_f64() > t {
            return Err(Failure::new(
                ERR_TEMPLATE_ERROR,
                format!(
                    "Exceeded maximum execution time of {}s",
                    literal::py_float(t)
                ),
            ));
        }
    }
    let setup = render(
        &template,
        &variables,
        &world(&s.api, Arc::new(states.clone())),
        strict,
    );
    if let Err(e) = &setup.result
        && report_errors
    {
        conn.send(protocol::event(id, json!({"error": e.0, "level": "ERROR"})));
    }
    conn.send(protocol::result(id, Value::Null));
    let mut sub = Subscription {
        api: s.api.clone(),
        conn: conn.clone(),
        id,
        template,
        variables,
        report_errors,
        states,
        reg,
        listeners: setup.listeners,
        last: None,
        last_render: Instant::now(),
    };
    let mut rx = rx;
    let task = tokio::spawn(async move {
        if !sub.refresh() {
            return;
        }
        let mut pending: Option<Instant> = None;
        loop {
            let minute = sub.listeners.time.then(|| sub.next_minute());
            let wake = match (pending, minute) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                ev = rx.recv() => {
                    let Some(ev) = ev else { break };
                    if rx.len() > sub.conn.capacity() * BACKLOG_FACTOR {
                        sub.conn.fail(
                            "subscription fell behind: client too slow",
                            format!("template subscription {} is {} state changes behind", sub.id, rx.len()),
                        );
                        break;
                    }
                    sub.reg.observe(&ev);
                    let StoreEvent::StateChanged(sc) = ev else { continue };
                    match &sc.new_state {
                        Some(n) => {
                            sub.states.insert(sc.entity_id.clone(), sub.reg.present(n));
                        }
                        None => {
                            sub.states.remove(&sc.entity_id);
                        }
                    }
                    if !sub.listeners.triggers(&sc.entity_id) {
                        continue;
                    }
                    match sub.listeners.rate_limit(&sc.entity_id) {
                        Some(limit) if sub.last_render.elapsed() < limit => {
                            pending.get_or_insert(sub.last_render + limit);
                        }
                        _ => {
                            if !sub.refresh() {
                                break;
                            }
                        }
                    }
                }
                _ = async { tokio::time::sleep_until(wake.expect("guarded")).await }, if wake.is_some() => {
                    pending = None;
                    if !sub.refresh() {
                        break;
                    }
                }
            }
        }
    });
    s.subscriptions.insert(id, task.abort_handle());
    Ok(())
}

struct Subscription {
    api: Arc<Api>,
    conn: Arc<crate::api::websocket::connection::Conn>,
    id: u64,
    template: String,
    variables: Map<String, Value>,
    report_errors: bool,
    states: BTreeMap<String, State>,
    reg: Registry,
    listeners: Listeners,
    /// The last result sent (or error met).
    last: Option<Result<Value, String>>,
    last_render: Instant,
}

impl Subscription {
    /// Renders (not strict) and sends what changed; `false` once the
    /// connection is gone.
    fn refresh(&mut self) -> bool {
        let world = world(&self.api, Arc::new(self.states.clone()));
        let r = render(&self.template, &self.variables, &world, false);
        self.last_render = Instant::now();
        self.listeners = r.listeners;
        let now = match r.result {
            Ok(text) if super::is_static(&self.template) => Ok(Value::String(text)),
            Ok(text) => Ok(literal::parse_result(&text)),
            Err(e) => Err(e.0),
        };
        let msg = match (&now, &self.last) {
            (a, Some(b)) if a == b => return true,
            (Err(_), Some(Err(_))) => return true,
            (Err(e), _) => self
                .report_errors
                .then(|| json!({"error": e, "level": "ERROR"})),
            (Ok(v), _) => Some(json!({"result": v, "listeners": self.listeners.json()})),
        };
        self.last = Some(now);
        match msg {
            Some(m) => self.conn.send(protocol::event(self.id, m)),
            None => true,
        }
    }

    /// The start of the next minute on the bridge's clock (HA:
    /// `async_track_utc_time_change(second=0)`); at least 100 ms away (a
    /// simulated clock set by hand does not move by itself).
    fn next_minute(&self) -> Instant {
        let clock = self.api.store.clock();
        let left = 60_000 - clock.now_ms().rem_euclid(60_000);
        Instant::now() + clock.wall(left as f64 + 1.0).max(MIN_TIME_WAIT)
    }
}
