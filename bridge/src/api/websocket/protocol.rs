//! Message shapes and validation of HA's WebSocket protocol
//! (`components/websocket_api/messages.py`, `const.py`, and voluptuous'
//! error wording, which clients show to users).

use serde_json::{Map, Value, json};

pub const ERR_ID_REUSE: &str = "id_reuse";
pub const ERR_INVALID_FORMAT: &str = "invalid_format";
pub const ERR_NOT_FOUND: &str = "not_found";
pub const ERR_UNKNOWN_COMMAND: &str = "unknown_command";
pub const ERR_HOME_ASSISTANT_ERROR: &str = "home_assistant_error";
pub const ERR_SERVICE_VALIDATION_ERROR: &str = "service_validation_error";

pub fn auth_required() -> Value {
    json!({"type": "auth_required", "ha_version": super::super::ha::HA_VERSION})
}

pub fn auth_ok() -> Value {
    json!({"type": "auth_ok", "ha_version": super::super::ha::HA_VERSION})
}

pub fn auth_invalid(message: &str) -> Value {
    json!({"type": "auth_invalid", "message": message})
}

pub fn result(id: u64, result: Value) -> Value {
    json!({"id": id, "type": "result", "success": true, "result": result})
}

pub fn error(id: Value, code: &str, message: &str) -> Value {
    json!({
        "id": id,
        "type": "result",
        "success": false,
        "error": {"code": code, "message": message},
    })
}

pub fn event(id: u64, event: Value) -> Value {
    json!({"id": id, "type": "event", "event": event})
}

pub fn pong(id: u64) -> Value {
    json!({"id": id, "type": "pong"})
}

/// A command whose `id` and `type` are valid.
pub struct Command {
    pub id: u64,
    pub kind: String,
    pub msg: Map<String, Value>,
}

/// Checks `id` (a positive integer) and `type` (a non-empty string), as
/// `ActiveConnection.async_handle` does; the error answer otherwise.
pub fn command(v: Value) -> Result<Command, Value> {
    let Value::Object(msg) = v else {
        return Err(error(
            json!(0),
            ERR_INVALID_FORMAT,
            "Message incorrectly formatted: expected an object with `id` and `type`",
        ));
    };
    let id = msg.get("id").and_then(Value::as_u64).filter(|id| *id > 0);
    let kind = msg
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    match (id, kind) {
        (Some(id), Some(kind)) => Ok(Command {
            id,
            kind: kind.to_string(),
            msg,
        }),
        _ => {
            let what = if id.is_none() {
                "`id` must be a positive integer"
            } else {
                "`type` must be a non-empty string"
            };
            Err(error(
                msg.get("id").cloned().unwrap_or(Value::Null),
                ERR_INVALID_FORMAT,
                &format!("Message incorrectly formatted: {what}"),
            ))
        }
    }
}

/// Field access with voluptuous' messages (`… @ data['field']`), which
/// become `invalid_format` errors.
pub struct Fields<'a> {
    msg: &'a Map<String, Value>,
}

pub type FieldError = String;

fn at(field: &str) -> String {
    format!("@ data['{field}']")
}

impl<'a> Fields<'a> {
    /// Refuses keys other than `id`, `type` and `allowed` (HA's schemas
    /// do not allow extra keys).
    pub fn new(msg: &'a Map<String, Value>, allowed: &[&str]) -> Result<Self, FieldError> {
        if let Some(extra) = msg
            .keys()
            .find(|k| *k != "id" && *k != "type" && !allowed.contains(&k.as_str()))
        {
            return Err(format!("extra keys not allowed {}", at(extra)));
        }
        Ok(Fields { msg })
    }

    pub fn str(&self, name: &str) -> Result<Option<&'a str>, FieldError> {
        match self.msg.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("expected str for dictionary value {}", at(name))),
        }
    }

    pub fn required_str(&self, name: &str) -> Result<&'a str, FieldError> {
        self.str(name)?
            .ok_or_else(|| format!("required key not provided {}", at(name)))
    }

    pub fn object(&self, name: &str) -> Result<Option<&'a Map<String, Value>>, FieldError> {
        match self.msg.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(format!("expected dict for dictionary value {}", at(name))),
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool, FieldError> {
        match self.msg.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("expected bool for dictionary value {}", at(name))),
        }
    }

    pub fn u64(&self, name: &str) -> Result<u64, FieldError> {
        match self.msg.get(name) {
            None => Err(format!("required key not provided {}", at(name))),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| format!("expected int for dictionary value {}", at(name))),
        }
    }

    /// A string or a list of strings (HA's `cv.entity_ids`).
    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, FieldError> {
        strings(self.msg.get(name), name)
    }
}

/// See [`Fields::strings`]; also used for `target` and `service_data`.
pub fn strings(v: Option<&Value>, name: &str) -> Result<Option<Vec<String>>, FieldError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        )),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| format!("expected a list of strings {}", at(name))),
        Some(_) => Err(format!(
            "expected a string or a list of strings {}",
            at(name)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_validation_matches_ha() {
        assert!(command(json!({"id": 3, "type": "ping"})).is_ok());
        for bad in [
            json!([1]),
            json!({"type": "ping"}),
            json!({"id": 0, "type": "ping"}),
            json!({"id": -1, "type": "ping"}),
            json!({"id": "1", "type": "ping"}),
            json!({"id": 1}),
            json!({"id": 1, "type": 5}),
        ] {
            let e = command(bad.clone()).err().expect("refused");
            assert_eq!(e["error"]["code"], json!(ERR_INVALID_FORMAT), "{bad}");
            assert_eq!(e["success"], json!(false));
        }
    }

    #[test]
    fn fields_name_the_offending_key() {
        let m = json!({"id": 1, "type": "x", "domain": 5, "extra": 1});
        let m = m.as_object().unwrap();
        let e = Fields::new(m, &["domain"]).err().unwrap();
        assert_eq!(e, "extra keys not allowed @ data['extra']");
        let f = Fields::new(m, &["domain", "extra"]).unwrap();
        assert_eq!(
            f.required_str("domain").unwrap_err(),
            "expected str for dictionary value @ data['domain']"
        );
        assert_eq!(
            f.required_str("service").unwrap_err(),
            "required key not provided @ data['service']"
        );
        assert_eq!(
            strings(Some(&json!("a.b, c.d")), "entity_id").unwrap(),
            Some(vec!["a.b".to_string(), "c.d".to_string()])
        );
    }
}
