//! WebSocket `render_template` (HA's `handle_render_template` in
//! `websocket_api/commands.py`, with `async_track_template_result` in
//! `helpers/event.py`):
//!
//! - fields `template` (required), `variables`, `timeout` (seconds),
//!   `strict`, `report_errors`, `entity_ids` (accepted and unused, as HA);
//! - with `timeout`, the first render must end within `timeout` seconds
//!   (a wait on its render thread, [`super::render_async`]): otherwise the
//!   command fails with `template_error` "Exceeded maximum execution time
//!   of 3.0s" (the thread finishes within its fuel, unseen);
//! - a first render with `strict` whose error is reported (with
//!   `report_errors`) as an event `{"error": …, "level": "ERROR"}`;
//! - at most [`MAX_PER_CONNECTION`] subscriptions per connection (more:
//!   `home_assistant_error`); each renders from the store's current
//!   snapshot, keeping no copy of the states;
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

use super::{Listeners, Rendered, World, literal, render_async};
use crate::api::Api;
use crate::api::calls::Failure;
use crate::api::registry::Registry;
use crate::api::websocket::commands::Outcome;
use crate::api::websocket::connection::Conn;
use crate::api::websocket::protocol::{self, Command, Fields};
use crate::api::websocket::session::Session;
use crate::entity::{State, StoreEvent};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// HA's `ERR_TEMPLATE_ERROR`.
pub const ERR_TEMPLATE_ERROR: &str = "template_error";

/// `render_template` subscriptions one connection may hold at once.
pub const MAX_PER_CONNECTION: usize = 256;

/// Open subscriptions by connection (`Arc<Conn>` address; each [`Open`]
/// holds its connection, so an address is not reused while counted).
static OPEN: Mutex<Option<HashMap<usize, usize>>> = Mutex::new(None);

/// One counted subscription; uncounted when dropped (the task ends or is
/// aborted).
struct Open {
    conn: Arc<Conn>,
}

impl Open {
    fn take(conn: &Arc<Conn>, max: usize) -> Option<Open> {
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        let n = open
            .get_or_insert_with(HashMap::new)
            .entry(Arc::as_ptr(conn) as usize)
            .or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Open { conn: conn.clone() })
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = open.as_mut() {
            let key = Arc::as_ptr(&self.conn) as usize;
            if let Some(n) = map.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&key);
                }
            }
        }
    }
}

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

/// The world as the API sees it now, states from the store's snapshot.
pub fn world_now(api: &Api) -> World {
    world(api, Arc::new(presented_states(&api.store.snapshot())))
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
    handle_capped(s, cmd, MAX_PER_CONNECTION)
}

/// [`handle`] with the per-connection cap given (tests use a small one).
pub fn handle_capped(s: &mut Session, cmd: &Command, max: usize) -> Outcome {
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
    let conn = s.conn.clone();
    let Some(open) = Open::take(&conn, max) else {
        return Err(Failure::new(
            protocol::ERR_HOME_ASSISTANT_ERROR,
            format!("at most {max} render_template subscriptions per connection"),
        ));
    };
    // Subscribed before the first render: no change is missed.
    let (snapshot, rx) = s.api.store.subscribe();
    drop(snapshot);
    let mut sub = Subscription {
        api: s.api.clone(),
        conn: conn.clone(),
        id,
        template,
        variables,
        report_errors,
        listeners: Listeners::default(),
        last: None,
        last_render: Instant::now(),
    };
    let mut rx = rx;
    let task = tokio::spawn(async move {
        let _open = open;
        let first = render_async(
            sub.template.clone(),
            sub.variables.clone(),
            world_now(&sub.api),
            strict,
        );
        let wait = timeout
            .filter(|t| *t > 0.0)
            .and_then(|t| Duration::try_from_secs_f64(t).ok().map(|d| (t, d)));
        let setup = match wait {
            Some((t, d)) => match tokio::time::timeout(d, first).await {
                Ok(r) => r,
                Err(_) => {
                    sub.conn.send(protocol::error(
                        json!(id),
                        ERR_TEMPLATE_ERROR,
                        &format!(
                            "Exceeded maximum execution time of {}s",
                            literal::py_float(t)
                        ),
                    ));
                    return;
                }
            },
            None => first.await,
        };
        if let Err(e) = &setup.result
            && report_errors
        {
            sub.conn
                .send(protocol::event(id, json!({"error": e.0, "level": "ERROR"})));
        }
        sub.conn.send(protocol::result(id, Value::Null));
        // A render that succeeded strict renders the same lenient (later
        // renders are not strict): sent as it is, not rendered again.
        let sent = if setup.result.is_ok() {
            sub.publish(setup)
        } else {
            sub.refresh().await
        };
        if !sent {
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
                    let StoreEvent::StateChanged(sc) = ev else { continue };
                    if !sub.listeners.triggers(&sc.entity_id) {
                        continue;
                    }
                    match sub.listeners.rate_limit(&sc.entity_id) {
                        Some(limit) if sub.last_render.elapsed() < limit => {
                            pending.get_or_insert(sub.last_render + limit);
                        }
                        _ => {
                            if !sub.refresh().await {
                                break;
                            }
                        }
                    }
                }
                _ = async { tokio::time::sleep_until(wake.expect("guarded")).await }, if wake.is_some() => {
                    pending = None;
                    if !sub.refresh().await {
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
    conn: Arc<Conn>,
    id: u64,
    template: String,
    variables: Map<String, Value>,
    report_errors: bool,
    listeners: Listeners,
    /// The last result sent (or error met).
    last: Option<Result<Value, String>>,
    last_render: Instant,
}

impl Subscription {
    /// Renders (not strict) from the store's current states and sends what
    /// changed; `false` once the connection is gone.
    async fn refresh(&mut self) -> bool {
        let r = render_async(
            self.template.clone(),
            self.variables.clone(),
            world_now(&self.api),
            false,
        )
        .await;
        self.publish(r)
    }

    /// Sends what changed in `r`; `false` once the connection is gone.
    fn publish(&mut self, r: Rendered) -> bool {
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
