//! `hearth device pending|adopt`: devices a running bridge found on the
//! network ([`crate::lan`]), through its WebSocket API
//! (`hearth/devices/pending|adopt`, [`crate::api::device_ops`]), so the CLI
//! needs a token (`hearth token create --name cli`) and nothing else.

use serde_json::{Map, Value, json};

/// The WebSocket `adopt` request: `device_id`, `name`?, and `--option KEY=VALUE` pairs as
/// `options` (a value that parses as JSON is that: `1.5`, `true`,
/// `"text"`; anything else is a string).
pub fn adopt_request(id: &str, name: Option<&str>, options: &[String]) -> anyhow::Result<Value> {
    let mut req = json!({"device_id": id});
    if let Some(n) = name {
        req["name"] = json!(n);
    }
    if !options.is_empty() {
        let mut m = Map::new();
        for o in options {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--option `{o}`: expected KEY=VALUE"))?;
            let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
            m.insert(k.trim().to_string(), value);
        }
        req["options"] = Value::Object(m);
    }
    Ok(req)
}

/// `hearth device pending` as a table.
pub fn format_pending(list: &Value) -> String {
    let devices = list.as_array().map(Vec::as_slice).unwrap_or(&[]);
    if devices.is_empty() {
        return "no pending devices\n".into();
    }
    let mut out = format!(
        "{:<32} {:<14} {:<22} {:<16} {:<8} {}\n",
        "ID", "KIND", "ADDRESS", "MODEL", "FOUND BY", "LAST SEEN"
    );
    for d in devices {
        let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
        out.push_str(&format!(
            "{:<32} {:<14} {:<22} {:<16} {:<8} {}\n",
            s("id"),
            s("kind"),
            s("address"),
            s("model"),
            s("found_by"),
            s("last_seen")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_typed_like_json() {
        let r = adopt_request(
            "shellyplusplugs-a8032ab1c2d3",
            Some("Desk"),
            &[
                "poll_interval_s=2.5".into(),
                "codes=/etc/hearth/1109.json".into(),
            ],
        )
        .unwrap();
        assert_eq!(r["options"]["poll_interval_s"], 2.5);
        assert_eq!(r["options"]["codes"], "/etc/hearth/1109.json");
        assert_eq!(r["name"], "Desk");
        assert!(adopt_request("x", None, &["nokey".into()]).is_err());
        assert!(format_pending(&json!([])).contains("no pending"));
    }
}
