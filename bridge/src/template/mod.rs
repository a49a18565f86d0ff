//! HA's template language (`homeassistant/helpers/template.py`) for the
//! common cases, on minijinja (a Jinja2 implementation): `states('x')`,
//! `states.domain.object` (`.state`, `.attributes`, `.last_changed`, …),
//! `state_attr`, `is_state`, `is_state_attr`, `has_value`, `now()`,
//! `utcnow()`, `today_at`, `as_local`, `as_timestamp`, `as_datetime`,
//! `average`, the `float`, `int`, `round`,
//! `bool`, `timestamp_custom`, `timestamp_local`, `timestamp_utc` filters
//! with HA's "default, or an error naming the input" semantics, and the
//! area / floor / label / device look-ups ([`functions`]).
//!
//! A render reads a [`World`] (states as HA shows them, the registries, the
//! time) and records what it read ([`Listeners`], HA's `RenderInfo`): the
//! entities it looked up, the domains it iterated, whether it iterated
//! every state, whether it asked for the time. `render_template`
//! ([`subscription`]) re-renders when one of those changes;
//! `POST /api/template` ([`rest`]) renders once.
//!
//! Not HA's: datetime arithmetic (`now() - timedelta(...)`), `expand`,
//! `distance`, `closest`, `relative_time`, translations, macros imported
//! from files.
//!
//! Bounds: a template runs on its own thread with a large stack
//! ([`RENDER_STACK`]), at most [`MAX_RENDERS`] at once, off the async
//! runtime; minijinja's fuel ([`FUEL`]) bounds its work *and* its memory
//! (minijinja 3.1 charges every byte and list slot an operator, literal or
//! filter makes, and refuses a known-size allocation that would exceed the
//! fuel left), so it also bounds how deeply a template can nest a value
//! (`namespace()` in a loop), which the thread's stack covers when the
//! value is dropped. What the bridge's own code walks is capped apart:
//! printing a value ([`functions::repr`]: [`MAX_OUTPUT`] bytes,
//! [`functions::MAX_REPR_DEPTH`]), collecting an iterable ([`MAX_ITEMS`]),
//! typing the result ([`literal::MAX_DEPTH`]). `render_template`'s
//! `timeout` is a wait on that thread ([`render_async`]).

pub mod datetime;
pub mod functions;
pub mod literal;
pub mod rest;
pub mod subscription;

use crate::entity::{State, domain_of};
use jiff::tz::TimeZone;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// HA's `MAX_TEMPLATE_OUTPUT`: a longer result is an error.
pub const MAX_OUTPUT: usize = 256 * 1024;

/// The message of a result longer than [`MAX_OUTPUT`] (HA's).
pub const OUTPUT_TOO_LONG: &str = "Template output exceeded maximum size of 262144 characters";

/// Python's message for a repr nested too deeply.
pub const REPR_TOO_DEEP: &str =
    "RecursionError: maximum recursion depth exceeded while getting the repr of an object";

/// Instructions one render may run (minijinja's fuel, 64 bytes of data
/// made per unit): a loop over every state and its attributes takes a few
/// hundred thousand; a runaway template stops with an error instead of
/// holding the connection. 1 M is at most 64 MB of data a render makes,
/// and a value nested at most about 130 000 deep.
pub const FUEL: u64 = 1_000_000;

/// The stack of a render thread: dropping or comparing a value nested as
/// deeply as [`FUEL`] allows recurses once per level (minijinja's values
/// are `Arc`s of `Vec`s). Reserved, not committed: only what a render
/// touches is memory.
pub const RENDER_STACK: usize = 512 << 20;

/// Renders running at once (each up to [`FUEL`]'s memory); more wait.
pub const MAX_RENDERS: usize = 4;

/// The most items the bridge's own functions take from one iterable.
pub const MAX_ITEMS: usize = 100_000;

static RENDERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_RENDERS);

/// HA's `ALL_STATES_RATE_LIMIT`: a template that iterates every state
/// re-renders at most once a minute for states it did not name.
pub const ALL_STATES_RATE_LIMIT: Duration = Duration::from_secs(60);

/// HA's `DOMAIN_STATES_RATE_LIMIT`: once a second for a domain it iterates.
pub const DOMAIN_STATES_RATE_LIMIT: Duration = Duration::from_secs(1);

/// What a template reads.
#[derive(Clone)]
pub struct World {
    /// Current states as HA shows them (registry attributes added), by id.
    pub states: Arc<BTreeMap<String, State>>,
    /// Areas, floors, labels and device/entity assignments.
    pub places: Arc<crate::areas::Places>,
    /// ms since epoch: `now()`.
    pub now_ms: i64,
    /// HA's configured time zone (`get_config`'s `time_zone`): `now()` and
    /// the `local` filters.
    pub tz: TimeZone,
}

/// HA's `RenderInfo` as `render_template` reports it (`listeners`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listeners {
    /// The template iterated every state (or failed: HA then listens to all).
    pub all: bool,
    pub domains: BTreeSet<String>,
    pub entities: BTreeSet<String>,
    /// `now()` or `utcnow()`: re-rendered at the start of every minute.
    pub time: bool,
}

impl Listeners {
    /// `{"all", "entities", "domains", "time"}`, lists sorted.
    pub fn json(&self) -> Value {
        let (entities, domains) = if self.all {
            (Vec::new(), Vec::new())
        } else {
            (
                self.entities.iter().cloned().collect(),
                self.domains.iter().cloned().collect(),
            )
        };
        serde_json::json!({
            "all": self.all,
            "entities": entities,
            "domains": domains,
            "time": self.time,
        })
    }

    /// Whether a change of `entity_id` re-renders (HA's
    /// `_event_triggers_rerender`).
    pub fn triggers(&self, entity_id: &str) -> bool {
        self.all || self.entities.contains(entity_id) || self.domains.contains(domain_of(entity_id))
    }

    /// How long after the last render a change of `entity_id` may re-render
    /// (HA's `_rate_limit_for_event`): named entities at once, domains once
    /// a second, "all" once a minute.
    pub fn rate_limit(&self, entity_id: &str) -> Option<Duration> {
        if self.entities.contains(entity_id) {
            None
        } else if self.all {
            Some(ALL_STATES_RATE_LIMIT)
        } else if !self.domains.is_empty() {
            Some(DOMAIN_STATES_RATE_LIMIT)
        } else {
            None
        }
    }
}

/// HA's `TemplateError`, as `str()` prints it: `<Exception class>: <message>`
/// (`UndefinedError: 'x' is undefined`, `TemplateSyntaxError: …`,
/// `ValueError: Template error: float got invalid input 'abc' …`).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError(pub String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct Rendered {
    /// The rendered text, stripped (HA strips before typing the result).
    pub result: Result<String, TemplateError>,
    pub listeners: Listeners,
}

/// HA's `is_template_string`: a template without `{{`, `{%` or `{#` is
/// static (its text is the result; nothing is listened to).
pub fn is_static(source: &str) -> bool {
    !(source.contains("{{") || source.contains("{%") || source.contains("{#"))
}

/// Renders `source` once, on a render thread (blocking the caller until
/// it ends; async code uses [`render_async`]). `strict` makes an undefined
/// variable an error (HA's `StrictUndefined`); otherwise it prints as
/// nothing.
pub fn render(
    source: &str,
    variables: &Map<String, Value>,
    world: &World,
    strict: bool,
) -> Rendered {
    if is_static(source) {
        return render_here(source, variables, world, strict);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let job = Job {
        source: source.to_string(),
        variables: variables.clone(),
        world: world.clone(),
        strict,
    };
    match job.spawn(move |r| {
        let _ = tx.send(r);
    }) {
        Ok(()) => rx
            .recv()
            .unwrap_or_else(|_| failed("the render thread failed")),
        Err(r) => r,
    }
}

/// [`render`] for async code: waits for one of the [`MAX_RENDERS`] slots,
/// then for the render thread. Dropping the future (a timeout) leaves the
/// thread to finish (within [`FUEL`]) holding its slot.
pub async fn render_async(
    source: String,
    variables: Map<String, Value>,
    world: World,
    strict: bool,
) -> Rendered {
    if is_static(&source) {
        return render_here(&source, &variables, &world, strict);
    }
    let Ok(permit) = RENDERS.acquire().await else {
        return failed("renders are closed");
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = Job {
        source,
        variables,
        world,
        strict,
    };
    match job.spawn(move |r| {
        let _ = tx.send(r);
        drop(permit);
    }) {
        Ok(()) => rx
            .await
            .unwrap_or_else(|_| failed("the render thread failed")),
        Err(r) => r,
    }
}

struct Job {
    source: String,
    variables: Map<String, Value>,
    world: World,
    strict: bool,
}

impl Job {
    /// Runs on a new thread with [`RENDER_STACK`]; `done` gets the result
    /// there (every value the template made is dropped on that thread).
    fn spawn(self, done: impl FnOnce(Rendered) + Send + 'static) -> Result<(), Rendered> {
        std::thread::Builder::new()
            .name("template".into())
            .stack_size(RENDER_STACK)
            .spawn(move || {
                let r = render_here(&self.source, &self.variables, &self.world, self.strict);
                done(r);
            })
            .map(|_| ())
            .map_err(|e| failed(&format!("cannot start a render thread: {e}")))
    }
}

fn failed(why: &str) -> Rendered {
    Rendered {
        result: Err(TemplateError(format!("TemplateError: {why}"))),
        listeners: Listeners {
            all: true,
            ..Listeners::default()
        },
    }
}

/// Renders on the calling thread.
pub(crate) fn render_here(
    source: &str,
    variables: &Map<String, Value>,
    world: &World,
    strict: bool,
) -> Rendered {
    if is_static(source) {
        return Rendered {
            result: Ok(source.trim().to_string()),
            listeners: Listeners::default(),
        };
    }
    let ctx = Arc::new(functions::Ctx {
        world: world.clone(),
        seen: Mutex::new(Listeners::default()),
    });
    let env = functions::environment(ctx.clone(), strict);
    let vars = minijinja::Value::from(minijinja::value::Serde(variables));
    let result = match env.render_str(source, vars) {
        Ok(text) if text.len() > MAX_OUTPUT => Err(TemplateError(OUTPUT_TOO_LONG.into())),
        Ok(text) => Ok(text.trim().to_string()),
        Err(e) => Err(error(&e, source)),
    };
    let mut listeners = ctx.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if result.is_err() {
        // HA: "Previous call had an exception so we do not know which
        // states to track".
        listeners.all = true;
    }
    Rendered { result, listeners }
}

/// A minijinja error in Jinja2's exception names.
fn error(e: &minijinja::Error, source: &str) -> TemplateError {
    use minijinja::ErrorKind as K;
    let detail = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string());
    if detail.starts_with(functions::VALUE_ERROR) {
        return TemplateError(format!("ValueError: {detail}"));
    }
    if detail == OUTPUT_TOO_LONG || detail == REPR_TOO_DEEP {
        return TemplateError(detail);
    }
    let class = match e.kind() {
        K::SyntaxError | K::BadEscape | K::InvalidDelimiter => "TemplateSyntaxError",
        K::UndefinedError | K::UnknownFunction => "UndefinedError",
        K::UnknownFilter | K::UnknownTest => "TemplateAssertionError",
        K::InvalidOperation | K::NonPrimitive | K::NonKey | K::CannotUnpack => "TypeError",
        K::TooManyArguments | K::MissingArgument => "TypeError",
        _ => "TemplateError",
    };
    let line = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
    let _ = source;
    TemplateError(format!("{class}: {detail}{line}"))
}

#[cfg(test)]
mod tests;
