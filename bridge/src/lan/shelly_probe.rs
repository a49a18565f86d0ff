//! Which Shelly is at an address: `GET http://<addr>/shelly`, which every
//! generation answers without authentication.
//!
//! - Gen1 (Shelly "Gen1 API reference", `/shelly`): `{"type": "SHPLG-S",
//!   "mac": "A4CF12F45A6B", "auth": false, "fw": "20230913-112003/v1.14.0-…"}`.
//! - Gen2+ ("Gen2+ Device API", `Shelly.GetDeviceInfo`, also served at
//!   `/shelly`): `{"id": "shellyplusplugs-a8032ab1c2d3", "mac":
//!   "A8032AB1C2D3", "model": "SNPL-00112EU", "gen": 2, "ver": "1.4.4",
//!   "app": "PlusPlugS"}`.
//!
//! The generation decides the driver: Gen1 → `[[shelly_gen1]]`; Gen2+ by
//! `app`: `Pro4PM` → `[[shelly_pro4pm]]`, `Pro3EM`/`ProEM` →
//! `[[shelly_em]]`, anything else → `[[shelly]]` (the plug driver: one
//! switch, metered or not). Errors name the address and the field.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;

/// A device answers `/shelly` within this or is not probed further (a
/// plug on Wi-Fi answers in tens of ms).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// `/shelly` is a few hundred bytes; more is not a Shelly.
const MAX_BODY: usize = 16 * 1024;
/// Longest model, type, name, id or firmware text kept from an answer
/// (real ones are under 40 characters).
pub const MAX_TEXT: usize = 64;

/// Whether a text field of the answer is fit to list and to write into a
/// config comment: 1 to [`MAX_TEXT`] characters, none of them a control
/// character (a newline in a model would start a new TOML line).
fn printable(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= MAX_TEXT && !s.chars().any(char::is_control)
}

/// What `/shelly` says.
#[derive(Debug, Clone, PartialEq)]
pub struct ShellyIdentity {
    /// 1 for Gen1, the `gen` field (2, 3, 4) otherwise.
    pub generation: u32,
    /// The device's own id: Gen2+'s `id`; for Gen1 `shelly-<mac>`
    /// (Gen1 has no id field; its mDNS name is used when it is valid).
    pub id: Option<String>,
    /// 12 lower-case hex digits.
    pub mac: String,
    /// Gen2+'s `model`, Gen1's `type`.
    pub model: String,
    /// Gen2+'s `app` (`PlusPlugS`, `Pro4PM`); `None` on Gen1.
    pub app: Option<String>,
    /// Gen2+'s `ver`, Gen1's `fw`.
    pub firmware: Option<String>,
    /// Gen2+'s `name` (the user's), when set.
    pub name: Option<String>,
}

impl ShellyIdentity {
    /// The config table an adoption writes.
    pub fn kind(&self) -> &'static str {
        match (self.generation, self.app.as_deref()) {
            (1, _) => "shelly_gen1",
            (_, Some("Pro4PM")) => "shelly_pro4pm",
            (_, Some("Pro3EM" | "ProEM")) => "shelly_em",
            _ => "shelly",
        }
    }
}

/// Reads a `/shelly` answer. `addr` only names the device in errors.
pub fn parse(addr: &str, body: &[u8]) -> Result<ShellyIdentity, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "{addr} /shelly: expected a JSON object ({e}), got `{}`",
            crate::broker::excerpt(body)
        )
    })?;
    // Text the device says about itself: kept only when printable (the
    // model and firmware end up in the config file's comment on adoption).
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| printable(s))
            .map(str::to_string)
    };
    let required = |k: &str, what: &str| {
        field(k).ok_or_else(|| match v.get(k) {
            Some(bad) => format!(
                "{addr} /shelly: `{k}` must be 1 to {MAX_TEXT} printable characters, got {}",
                crate::broker::excerpt(bad.to_string().as_bytes())
            ),
            None => format!("{addr} /shelly: {what}"),
        })
    };
    let mac = field("mac")
        .filter(|m| m.len() == 12 && m.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            format!(
                "{addr} /shelly: `mac` must be 12 hex digits, got {}",
                v["mac"]
            )
        })?
        .to_ascii_lowercase();
    match v.get("gen") {
        Some(g) => {
            let generation = g
                .as_u64()
                .filter(|g| (2..=16).contains(g))
                .ok_or_else(|| format!("{addr} /shelly: `gen` must be 2 or more, got {g}"))?
                as u32;
            let model = required("model", &format!("Gen{generation} answer without `model`"))?;
            Ok(ShellyIdentity {
                generation,
                id: field("id").map(|s| s.to_ascii_lowercase()),
                mac,
                model,
                app: field("app"),
                firmware: field("ver"),
                name: field("name").filter(|n| !n.is_empty()),
            })
        }
        None => {
            let model = required(
                "type",
                "neither `gen` (Gen2+) nor `type` (Gen1) in the answer",
            )?;
            Ok(ShellyIdentity {
                generation: 1,
                id: None,
                mac,
                model,
                app: None,
                firmware: field("fw"),
                name: None,
            })
        }
    }
}

/// `GET http://<addr>/shelly` (`addr` is `host:port`).
pub async fn probe(addr: &str) -> Result<ShellyIdentity, String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: hyper::Uri = format!("http://{addr}/shelly")
        .parse()
        .map_err(|e| format!("{addr}: not an address ({e})"))?;
    let fetch = async {
        let resp = client
            .get(uri)
            .await
            .map_err(|e| format!("{addr} /shelly: HTTP request failed: {e}"))?;
        let status = resp.status().as_u16();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("{addr} /shelly: body: {e}"))?
            .to_bytes();
        if status != 200 {
            return Err(format!(
                "{addr} /shelly: HTTP status {status} (not a Shelly?)"
            ));
        }
        Ok(body)
    };
    let body = tokio::time::timeout(PROBE_TIMEOUT, fetch)
        .await
        .map_err(|_| format!("{addr} /shelly: no answer within {PROBE_TIMEOUT:?}"))??;
    parse(addr, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen1_and_gen2_answers_are_told_apart() {
        let g1 = br#"{"type":"SHPLG-S","mac":"A4CF12F45A6B","auth":false,"fw":"20230913-112003/v1.14.0-gcb84623","num_outputs":1}"#;
        let i = parse("10.0.0.5:80", g1).unwrap();
        assert_eq!(
            (i.generation, i.kind(), i.model.as_str()),
            (1, "shelly_gen1", "SHPLG-S")
        );
        assert_eq!(i.mac, "a4cf12f45a6b");
        let g2 = br#"{"name":null,"id":"shellyplusplugs-a8032ab1c2d3","mac":"A8032AB1C2D3","model":"SNPL-00112EU","gen":2,"ver":"1.4.4","app":"PlusPlugS"}"#;
        let i = parse("10.0.0.6:80", g2).unwrap();
        assert_eq!((i.generation, i.kind()), (2, "shelly"));
        assert_eq!(i.id.as_deref(), Some("shellyplusplugs-a8032ab1c2d3"));
        let pro = br#"{"id":"shellypro4pm-30c6f7aabbcc","mac":"30C6F7AABBCC","model":"SPSW-104PE16EU","gen":2,"app":"Pro4PM"}"#;
        assert_eq!(parse("a", pro).unwrap().kind(), "shelly_pro4pm");
    }

    #[test]
    fn bad_answers_name_the_address_and_the_field() {
        let e = parse("10.0.0.7:80", br#"{"gen":2,"mac":"xyz"}"#).unwrap_err();
        assert!(e.contains("10.0.0.7:80") && e.contains("`mac`"), "{e}");
        let e = parse(
            "10.0.0.7:80",
            br#"{"gen":"2","mac":"A8032AB1C2D3","model":"m"}"#,
        )
        .unwrap_err();
        assert!(e.contains("`gen`"), "{e}");
        let e = parse("10.0.0.7:80", br#"{"mac":"A8032AB1C2D3"}"#).unwrap_err();
        assert!(e.contains("neither `gen`"), "{e}");
        assert!(parse("a", b"{\"gen\":2,").unwrap_err().contains("JSON"));
    }

    #[test]
    fn text_with_control_characters_or_too_long_is_not_taken() {
        let inject = serde_json::json!({"type": "SHPLG-S\n[[shelly_gen1]]\nid = \"evil\"",
            "mac": "A4CF12F45A6B", "fw": "v1\r\n"})
        .to_string();
        let e = parse("10.0.0.5:80", inject.as_bytes()).unwrap_err();
        assert!(e.contains("`type` must be 1 to 64 printable"), "{e}");
        let long = serde_json::json!({"gen": 2, "mac": "A8032AB1C2D3", "model": "M".repeat(65)});
        let e = parse("10.0.0.6:80", long.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("`model`"), "{e}");
        let fine = serde_json::json!({"gen": 2, "mac": "A8032AB1C2D3", "model": "SNPL-00112EU",
            "ver": "1.0\u{7}", "name": "a\tb", "id": "x\ny"})
        .to_string();
        let i = parse("10.0.0.6:80", fine.as_bytes()).unwrap();
        assert_eq!(i.model, "SNPL-00112EU");
        assert_eq!(
            (i.firmware, i.name, i.id),
            (None, None, None),
            "bad optional text dropped"
        );
    }
}
