//! Areas, floors, labels and devices in HA's template environment.

use super::Ctx;
use minijinja::Environment;
use minijinja::value::{Rest, Serde, Value};
use std::sync::Arc;

/// Areas, floors, labels and devices (HA's `area_*`, `floor_*`, `label_*`,
/// `device_*` functions, each also a filter).
pub(super) fn register(env: &mut Environment<'static>, ctx: Arc<Ctx>) {
    macro_rules! both {
        ($name:literal, |$p:ident, $a:ident : $t:ty| $body:expr) => {{
            let c = ctx.clone();
            env.add_function($name, move |$a: $t| {
                let $p = &c.world.places;
                $body
            });
            let c = ctx.clone();
            env.add_filter($name, move |$a: $t| {
                let $p = &c.world.places;
                $body
            });
        }};
    }
    both!("areas", |p, _x: Rest<Value>| strings(p.area_ids()));
    both!("area_id", |p, v: Value| opt_str(&v)
        .and_then(|s| p.area_id_of(&s)));
    both!("area_name", |p, v: Value| opt_str(&v)
        .and_then(|s| p.area_name_of(&s)));
    both!("area_entities", |p, v: Value| strings(
        opt_str(&v).map(|s| p.area_entities(&s)).unwrap_or_default()
    ));
    both!("area_devices", |p, v: Value| strings(
        opt_str(&v).map(|s| p.area_devices(&s)).unwrap_or_default()
    ));
    both!("floors", |p, _x: Rest<Value>| strings(p.floor_ids()));
    both!("floor_id", |p, v: Value| opt_str(&v)
        .and_then(|s| p.floor_id_of(&s)));
    both!("floor_name", |p, v: Value| opt_str(&v)
        .and_then(|s| p.floor_name_of(&s)));
    both!("floor_areas", |p, v: Value| strings(
        opt_str(&v).map(|s| p.floor_areas(&s)).unwrap_or_default()
    ));
    both!("floor_entities", |p, v: Value| strings(
        opt_str(&v)
            .map(|s| p.floor_entities(&s))
            .unwrap_or_default()
    ));
    both!("labels", |p, v: Rest<Value>| strings(
        match v.first().and_then(opt_str) {
            None => p.label_ids(),
            Some(s) => p.labels_of(&s),
        }
    ));
    both!("label_id", |p, v: Value| opt_str(&v)
        .and_then(|s| p.label_id_of(&s)));
    both!("label_name", |p, v: Value| opt_str(&v)
        .and_then(|s| p.label_name_of(&s)));
    both!("label_entities", |p, v: Value| strings(
        opt_str(&v)
            .map(|s| p.label_entities(&s))
            .unwrap_or_default()
    ));
    both!("label_devices", |p, v: Value| strings(
        opt_str(&v).map(|s| p.label_devices(&s)).unwrap_or_default()
    ));
    both!("label_areas", |p, v: Value| strings(
        opt_str(&v).map(|s| p.label_areas(&s)).unwrap_or_default()
    ));
    both!("device_id", |p, v: Value| opt_str(&v)
        .and_then(|s| p.device_id_of(&s)));
    both!("device_entities", |p, v: Value| strings(
        opt_str(&v)
            .map(|s| p.device_entities(&s))
            .unwrap_or_default()
    ));
    let c = ctx.clone();
    let device_attr = move |id: Value, attr: String| {
        opt_str(&id)
            .and_then(|s| c.world.places.device_attr(&s, &attr))
            .map_or(Value::from(()), |v| Value::from(Serde(v)))
    };
    env.add_function("device_attr", device_attr.clone());
    env.add_filter("device_attr", device_attr);
}

fn opt_str(v: &Value) -> Option<String> {
    if v.is_none() || v.is_undefined() {
        None
    } else {
        Some(v.to_string())
    }
}

fn strings(items: Vec<String>) -> Value {
    Value::from(items)
}
