//! The functions, filters and objects of HA's template environment
//! (`TemplateEnvironment` in `homeassistant/helpers/template.py`), each
//! with HA's name, arguments and failure: a conversion without a default
//! fails with HA's `raise_no_default` message.

mod filters;
mod places;
mod states;

pub use filters::{MAX_REPR_DEPTH, ReprLimit, py_float, py_repr, py_str, repr};

use super::{Listeners, World};
use crate::entity::State;
use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};
use std::fmt;
use std::sync::{Arc, Mutex};

/// The start of HA's `raise_no_default` message; [`super::error`] reports
/// these as Python's `ValueError`.
pub const VALUE_ERROR: &str = "Template error:";

/// One render's world and what it read.
pub struct Ctx {
    pub world: World,
    pub seen: Mutex<Listeners>,
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ctx")
    }
}

impl Ctx {
    fn seen(&self) -> std::sync::MutexGuard<'_, Listeners> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn entity(&self, entity_id: &str) -> Option<&State> {
        self.seen().entities.insert(entity_id.to_string());
        self.world.states.get(entity_id)
    }

    fn domain(&self, domain: &str) {
        self.seen().domains.insert(domain.to_string());
    }

    fn all(&self) {
        self.seen().all = true;
    }

    fn time(&self) {
        self.seen().time = true;
    }
}

/// HA's `raise_no_default`.
fn no_default(function: &str, value: &Value) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "{VALUE_ERROR} {function} got invalid input '{}' when rendering template but no default was specified",
            py_str(value)
        ),
    )
}

/// Builds the environment for one render over `ctx`.
pub fn environment(ctx: Arc<Ctx>, strict: bool) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(if strict {
        UndefinedBehavior::Strict
    } else {
        UndefinedBehavior::Lenient
    });
    env.set_fuel(Some(super::FUEL));
    // HA's environment does not autoescape.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    // Jinja2 prints Python's str(): None, True, ['a', 1.0].
    env.set_formatter(|out, state, value| {
        use minijinja::value::ValueKind as K;
        match value.kind() {
            K::None | K::Bool | K::Number | K::Seq | K::Iterable | K::Map => {
                // Bounded: the whole output may not be longer than
                // MAX_OUTPUT, so neither may one value's text.
                let mut text = String::new();
                match repr(&mut text, value, true, 0, super::MAX_OUTPUT) {
                    Ok(()) => out
                        .write_str(&text)
                        .map_err(|_| Error::new(ErrorKind::WriteFailure, "cannot write output")),
                    Err(ReprLimit::TooLong) => Err(Error::new(
                        ErrorKind::InvalidOperation,
                        super::OUTPUT_TOO_LONG.to_string(),
                    )),
                    Err(ReprLimit::TooDeep) => Err(Error::new(
                        ErrorKind::InvalidOperation,
                        super::REPR_TOO_DEEP.to_string(),
                    )),
                }
            }
            _ => minijinja::escape_formatter(out, state, value),
        }
    });
    states::register(&mut env, &ctx);
    filters::register(&mut env, &ctx);
    places::register(&mut env, ctx);
    env
}
