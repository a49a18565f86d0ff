//! `states` and the state functions of HA's template environment:
//! `states()`, `state_attr`, `is_state`, `is_state_attr`, `has_value`.

use super::Ctx;
use crate::entity::{State, domain_of};
use crate::template::datetime::DateTime;
use minijinja::value::{Kwargs, Object, ObjectRepr, Serde, Value};
use minijinja::{Environment, Error};
use std::fmt;
use std::sync::Arc;

/// Registers `states` and the state functions, filters and tests.
pub(super) fn register(env: &mut Environment<'static>, ctx: &Arc<Ctx>) {
    env.add_global("states", Value::from_object(AllStates(ctx.clone())));

    let c = ctx.clone();
    env.add_filter(
        "states",
        move |id: String, _r: Option<bool>, u: Option<bool>| states_of(&c, &id, u.unwrap_or(false)),
    );
    let c = ctx.clone();
    env.add_function("state_attr", move |id: String, attr: String| {
        attr_of(&c, &id, &attr)
    });
    let c = ctx.clone();
    env.add_filter("state_attr", move |id: String, attr: String| {
        attr_of(&c, &id, &attr)
    });
    let c = ctx.clone();
    env.add_function("is_state", move |id: String, state: Value| {
        is_state(&c, &id, &state)
    });
    let c = ctx.clone();
    env.add_filter("is_state", move |id: String, state: Value| {
        is_state(&c, &id, &state)
    });
    let c = ctx.clone();
    env.add_test("is_state", move |id: String, state: Value| {
        is_state(&c, &id, &state)
    });
    let is_state_attr = |c: Arc<Ctx>| {
        move |id: String, name: String, value: Value| {
            let v = attr_of(&c, &id, &name);
            !v.is_none() && v == value
        }
    };
    env.add_function("is_state_attr", is_state_attr(ctx.clone()));
    env.add_filter("is_state_attr", is_state_attr(ctx.clone()));
    let c = ctx.clone();
    env.add_function("has_value", move |id: String| has_value(&c, &id));
    let c = ctx.clone();
    env.add_filter("has_value", move |id: String| has_value(&c, &id));
    let c = ctx.clone();
    env.add_test("has_value", move |id: String| has_value(&c, &id));
}

/// `states`: callable (`states('sensor.x')`), by domain
/// (`states.sensor.x`), by id (`states['sensor.x']`), iterable (every
/// state, sorted by entity id).
#[derive(Debug)]
struct AllStates(Arc<Ctx>);

impl Object for AllStates {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Iterable
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        if key.contains('.') {
            return Some(state_value(&self.0, key));
        }
        if !valid_domain(key) {
            return None;
        }
        Some(Value::from_object(DomainStates(
            self.0.clone(),
            key.to_string(),
        )))
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        self.0.all();
        let ctx = self.0.clone();
        let items: Vec<Value> = ctx
            .world
            .states
            .values()
            .map(|s| Value::from_object(TemplateState(ctx.clone(), s.clone(), false)))
            .collect();
        minijinja::value::Enumerator::Values(items)
    }

    fn call(
        self: &Arc<Self>,
        _state: &mut minijinja::State<'_, '_>,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (id, _rounded, with_unit, kwargs): (String, Option<bool>, Option<bool>, Kwargs) =
            minijinja::value::from_args(args)?;
        let _ = kwargs.get::<Option<bool>>("rounded")?;
        let with_unit = with_unit.or(kwargs.get::<Option<bool>>("with_unit")?);
        kwargs.assert_all_used()?;
        Ok(states_of(&self.0, &id, with_unit.unwrap_or(false)).into())
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<template AllStates>")
    }
}

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

/// `states.sensor`: the domain's states; `.x` is `sensor.x`.
#[derive(Debug)]
struct DomainStates(Arc<Ctx>, String);

impl Object for DomainStates {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Iterable
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let id = format!("{}.{}", self.1, key.as_str()?);
        Some(state_value(&self.0, &id))
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        self.0.domain(&self.1);
        let ctx = self.0.clone();
        let prefix = format!("{}.", self.1);
        let items: Vec<Value> = ctx
            .world
            .states
            .range(prefix.clone()..)
            .take_while(|(id, _)| id.starts_with(&prefix))
            .map(|(_, s)| Value::from_object(TemplateState(ctx.clone(), s.clone(), false)))
            .collect();
        minijinja::value::Enumerator::Values(items)
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<template DomainStates('{}')>", self.1)
    }
}

fn state_value(ctx: &Arc<Ctx>, entity_id: &str) -> Value {
    match ctx.entity(entity_id) {
        Some(s) => Value::from_object(TemplateState(ctx.clone(), s.clone(), true)),
        None => Value::from(()),
    }
}

/// HA's `states(entity_id)`: the state string, `unknown` for no entity.
fn states_of(ctx: &Ctx, entity_id: &str, with_unit: bool) -> String {
    match ctx.entity(entity_id) {
        None => "unknown".into(),
        Some(s) => match s
            .attributes
            .get("unit_of_measurement")
            .and_then(|u| u.as_str())
        {
            Some(unit) if with_unit => format!("{} {unit}", s.state),
            _ => s.state.clone(),
        },
    }
}

/// HA's `TemplateState`; the flag says whether reading it is recorded
/// (not for states met iterating `states` or a domain: HA's
/// `_template_state_no_collect`, the iteration already listens).
#[derive(Debug)]
struct TemplateState(Arc<Ctx>, State, bool);

impl Object for TemplateState {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let s = &self.1;
        if self.2 {
            self.0.entity(&s.entity_id);
        }
        let utc = jiff::tz::TimeZone::UTC;
        let time = |ms: i64| DateTime::from_ms(ms, &utc).map(Value::from_object);
        Some(match key.as_str()? {
            "state" => s.state.clone().into(),
            "entity_id" => s.entity_id.clone().into(),
            "domain" => domain_of(&s.entity_id).into(),
            "object_id" => s.entity_id.split_once('.').map_or("", |(_, o)| o).into(),
            "name" => match s.attributes.get("friendly_name").and_then(|n| n.as_str()) {
                Some(n) => n.into(),
                None => s
                    .entity_id
                    .split_once('.')
                    .map_or("", |(_, o)| o)
                    .replace('_', " ")
                    .into(),
            },
            "attributes" => Value::from(Serde(&s.attributes)),
            "last_changed" => time(s.last_changed)?,
            "last_updated" | "last_reported" => time(s.last_updated)?,
            "context" => Value::from(Serde(crate::api::ha::context(&s.context))),
            "state_with_unit" => states_of(&self.0, &s.entity_id, true).into(),
            _ => return None,
        })
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.1;
        write!(
            f,
            "<template TemplateState(<state {}={}",
            s.entity_id, s.state
        )?;
        let attrs: Vec<String> = s
            .attributes
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(t) => format!("{k}={t}"),
                other => format!("{k}={other}"),
            })
            .collect();
        if !attrs.is_empty() {
            write!(f, "; {}", attrs.join(", "))?;
        }
        let when = DateTime::from_ms(s.last_changed, &jiff::tz::TimeZone::UTC)
            .map(|d| d.iso('T'))
            .unwrap_or_default();
        write!(f, " @ {when}>)>")
    }
}

fn attr_of(ctx: &Ctx, entity_id: &str, name: &str) -> Value {
    ctx.entity(entity_id)
        .and_then(|s| s.attributes.get(name))
        .map_or(Value::from(()), |v| Value::from(Serde(v)))
}

fn is_state(ctx: &Ctx, entity_id: &str, state: &Value) -> bool {
    let Some(s) = ctx.entity(entity_id) else {
        return false;
    };
    if let Some(want) = state.as_str() {
        return s.state == want;
    }
    match state.try_iter() {
        Ok(items) => items
            .into_iter()
            .take(crate::template::MAX_ITEMS)
            .any(|v| v.as_str() == Some(s.state.as_str())),
        Err(_) => false,
    }
}

fn has_value(ctx: &Ctx, entity_id: &str) -> bool {
    ctx.entity(entity_id)
        .is_some_and(|s| s.state != "unknown" && s.state != "unavailable")
}
