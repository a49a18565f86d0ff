//! Entry points for the `cargo fuzz` targets in `fuzz/` (one function per
//! target): every parser of outside input, fed arbitrary bytes. Not part of
//! the bridge's API: the targets and their regression tests call these, so
//! a crash found by a target is reproduced by a plain `cargo test`.
//!
//! Inputs that carry a topic or a name and a payload are split at the first
//! `\n`: `<topic>\n<payload>`. Each function only checks that nothing
//! panics, overflows or allocates without bound; what the parsers accept is
//! tested where they live.

use crate::clock::Clock;
use crate::entity::{Component, Device, EntitySpec, EntityStore};
use serde_json::{Map, Value};

/// `<head>\n<rest>`; without a newline, the whole input is the head.
fn split(data: &[u8]) -> (&str, &[u8]) {
    let (head, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    (std::str::from_utf8(head).unwrap_or(""), rest)
}

/// A store with a fixed clock (the fuzzed code must not depend on time).
/// One clock for the process: [`Clock::manual`] leaks its cell, which
/// LeakSanitizer would report for every input.
fn store() -> std::sync::Arc<EntityStore> {
    static CLOCK: std::sync::OnceLock<Clock> = std::sync::OnceLock::new();
    EntityStore::new(*CLOCK.get_or_init(|| Clock::manual(1_700_000_000_000).0))
}

/// ESP32 sensor node (`hearth-node/<id>/<kind>`, drivers::esp32_node): the
/// topic, the announce / telemetry / valve-state payloads with their range
/// checks, the late-reading classification, and the device and entities an
/// announce registers in the store.
pub fn esp32_node(data: &[u8]) {
    use crate::drivers::esp32_node::{reading_time, valve_entity_id, valve_ha_state};
    use hearth_node_core::{self as node, Telemetry, TopicKind, ValveState};
    let (topic, payload) = split(data);
    let Some((id, kind)) = node::parse_topic(topic) else {
        return;
    };
    match kind {
        TopicKind::Announce => {
            let Ok(a) = serde_json::from_slice::<node::Announce<'_>>(payload) else {
                return;
            };
            let store = store();
            let device = Device {
                id: id.into(),
                name: a.name.into(),
                manufacturer: "Hearth".into(),
                model: a.model.into(),
                sw_version: Some(a.sw_version.into()),
                via_device: None,
            };
            if store.upsert_device("esp32_node", device).is_err() {
                return;
            }
            for kind in &a.sensors {
                let shape = kind.shape();
                let mut spec = EntitySpec::new(id, shape.key, Component::Sensor)
                    .named(shape.name)
                    .class(shape.device_class)
                    .measured(shape.unit, shape.state_class);
                spec.entity_category = shape.entity_category.map(str::to_string);
                let _ = store.upsert_entity(spec);
            }
            if a.valve.is_some() {
                let _ = valve_entity_id(id);
            }
        }
        TopicKind::Telemetry => {
            if let Ok(t) = serde_json::from_slice::<Telemetry>(payload)
                && t.check().is_ok()
            {
                let now = 1_700_000_000_000;
                let _ = reading_time(now, t.age_ms, now - 60_000);
                let _ = reading_time(now, t.age_ms, i64::MIN);
            }
        }
        TopicKind::ValveState => {
            if let Ok(v) = serde_json::from_slice::<ValveState>(payload)
                && v.check().is_ok()
            {
                let _ = valve_ha_state(&v);
            }
        }
        TopicKind::Status | TopicKind::ValveSet => {}
    }
}

/// Tasmota power strip (drivers::tasmota_strip): `RESULT` / `STATE` /
/// `SENSOR` payloads, `POWERn` topic levels and their texts, and the
/// per-outlet figures a reading gives (per-outlet meters, or a total split
/// over the relays that are on).
pub fn tasmota(data: &[u8]) {
    use crate::drivers::tasmota_strip::config::{MeterMode, TasmotaStripConfig};
    use crate::drivers::tasmota_strip::{outlets, payload};
    let outlets_n = 1 + usize::from(data.first().copied().unwrap_or(0) % 8);
    let relays: Vec<Option<bool>> = match payload::parse_relays(data, outlets_n) {
        Ok(states) => {
            let mut r = vec![None; outlets_n];
            for (n, on) in states {
                if let Some(slot) = n.checked_sub(1).and_then(|i| r.get_mut(i)) {
                    *slot = Some(on);
                }
            }
            r
        }
        Err(_) => vec![Some(true); outlets_n],
    };
    if let Ok(Some(reading)) = payload::parse_sensor(data) {
        for meter in [MeterMode::PerOutlet, MeterMode::Total] {
            let cfg = TasmotaStripConfig {
                id: "strip".into(),
                name: "Strip".into(),
                topic: "strip".into(),
                outlets: outlets_n,
                outlet_names: Vec::new(),
                meter,
            };
            let mut estimate = outlets::Estimate::default();
            // Twice: the second reading is split against the first.
            let _ = outlets::outlet_figures(&cfg, &reading, &relays, &mut estimate);
            let _ = outlets::outlet_figures(&cfg, &reading, &relays, &mut estimate);
        }
    }
    let (head, rest) = split(data);
    let _ = payload::relay_of_topic(head, outlets_n);
    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = payload::parse_on_off(head, text);
    }
}

/// Shelly Gen1 (drivers::shelly_gen1): MQTT pushes under
/// `shellies/<id>/…` and the HTTP `/status` and `/shelly` bodies.
pub fn shelly_gen1(data: &[u8]) {
    use crate::drivers::shelly_gen1::{http, mqtt};
    let (topic, payload) = split(data);
    let _ = mqtt::parse("shellies/plug", topic, payload);
    let _ = http::parse_status(data);
    let _ = http::parse_shelly(data);
}

/// Shelly Gen2 (drivers::shelly_rpc, shelly_pro4pm, shelly_em, shelly
/// limits): `NotifyStatus` / `NotifyFullStatus` frames, RPC responses,
/// `online`, `status/switch:<id>`, EM/EM1 statuses and the plug's limits.
pub fn shelly_gen2(data: &[u8]) {
    use crate::drivers::{shelly, shelly_em, shelly_pro4pm, shelly_rpc};
    let switches = 1 + usize::from(data.first().copied().unwrap_or(0) % 4);
    let _ = shelly_rpc::parse_notification(data, switches);
    let _ = shelly_pro4pm::rpc::parse_notification(data);
    if let Ok(r) = shelly_rpc::parse_response(data)
        && let Ok(v) = &r.outcome
    {
        let _ = shelly_em::rpc::parse_em(0, v);
        let _ = shelly_em::rpc::parse_emdata(0, v);
        let _ = shelly_em::rpc::parse_em1(0, v);
        let _ = shelly_em::rpc::parse_em1data(0, v);
        let _ = shelly::limits::parse_config(v);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = shelly_rpc::parse_online(text);
    }
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        for id in 0..switches {
            if let Ok(s) = shelly_rpc::parse_switch(id, &v) {
                let mut whole = s.clone().whole();
                whole.merge(&s);
            }
        }
        if let Value::Object(m) = &v {
            let _ = shelly_rpc::parse_components(m, switches);
        }
    }
}

/// Meross plug (drivers::meross::message): a signed answer checked against
/// its request, then each namespace's payload reader.
pub fn meross(data: &[u8]) {
    use crate::drivers::meross::message::{self as m, ns};
    let key = "fuzz-key";
    for (method, namespace) in [
        ("GET", ns::SYSTEM_ALL),
        ("GET", ns::SYSTEM_ABILITY),
        ("GET", ns::ELECTRICITY),
        ("SET", ns::TOGGLEX),
        ("GET", ns::CONSUMPTIONX),
    ] {
        let _ = m::check_answer(
            data,
            "0123456789abcdef0123456789abcdef",
            method,
            namespace,
            key,
        );
    }
    // Past the signature: the payload readers on any JSON.
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let payload = v.get("payload").unwrap_or(&v);
    for channel in 0..2 {
        let _ = m::electricity(payload, channel);
        let _ = m::togglex(payload, channel);
        let _ = m::system_all(payload, channel);
    }
    if let Ok(abilities) = m::abilities(payload) {
        let _ = m::encryption(&abilities);
    }
    let _ = m::consumption(payload);
}

/// Broadlink IR gateway (drivers::broadlink::protocol): discovery replies,
/// command packets (their checksum made right half of the time, so the
/// fuzzer gets past it), the decrypted payload and its RM4 frame.
pub fn broadlink(data: &[u8]) {
    use crate::drivers::broadlink::protocol as p;
    let from: std::net::SocketAddr = ([192, 0, 2, 1], 80).into();
    let mut buf = data.to_vec();
    if buf.len() >= 0x22 && buf[0] & 1 == 1 {
        buf[0x20] = 0;
        buf[0x21] = 0;
        let c = p::checksum(&buf);
        buf[0x20..0x22].copy_from_slice(&c.to_le_bytes());
    }
    if let Ok(found) = p::parse_hello_reply(&buf, from) {
        let _ = found.mac_string();
    }
    if let Ok((header, encrypted)) = p::decode_packet("fuzz", &buf) {
        let _ = p::error_text(header.error);
        if let Ok(plain) = p::decrypt(&p::INITIAL_KEY, encrypted) {
            let _ = p::rm4_unframe(&plain);
        }
    }
    let _ = p::rm4_unframe(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = p::parse_mac(text);
    }
}

/// WebSocket command layer (api::websocket): a text frame (one command or
/// an array), the `id`/`type` check, then the fields of the commands whose
/// checking needs no running bridge: `call_service` (targets resolved
/// against an empty house), `history/history_during_period`, and the
/// common field readers.
pub fn websocket_frame(data: &[u8]) {
    use crate::api::websocket::{commands, history, protocol};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let commands = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let store = store();
    let places = crate::areas::Places::new(Default::default(), &store.snapshot());
    for c in commands {
        let Ok(cmd) = protocol::command(c) else {
            continue;
        };
        match cmd.kind.as_str() {
            "call_service" => {
                if let Ok(req) = commands::call_request(&cmd) {
                    let _ = places.resolve(&req.domain, &req.target);
                    let _ = crate::api::calls::check_service(
                        &req.domain,
                        &req.service,
                        req.return_response,
                    );
                }
            }
            "history/history_during_period" => {
                let _ = history::parse(&cmd.msg, 1_700_000_000_000);
            }
            _ => {
                if let Ok(f) = protocol::Fields::new(&cmd.msg, &["entity_ids", "event_type"]) {
                    let _ = f.strings("entity_ids");
                    let _ = f.str("event_type");
                }
            }
        }
    }
}

/// REST bodies (api): `POST /api/states/<entity_id>` applied to a store
/// (the first line is the entity id), and a path segment of
/// `/api/services/<domain>/<service>` percent-decoded.
pub fn rest_body(data: &[u8]) {
    let (entity_id, body) = split(data);
    let store = store();
    let body = bytes::Bytes::copy_from_slice(body);
    let _ = crate::api::post_state::post(&store, "fuzz", entity_id, &body);
    // Twice: the second post updates what the first created.
    let _ = crate::api::post_state::post(&store, "fuzz", entity_id, &body);
    let _ = crate::api::rest::segment(entity_id);
}

/// MQTT request and command topics: `<base>/bridge/request/<area>/<op>`
/// payloads (api::mqtt), HA command payloads for every component
/// (discovery::commands), and foreign discovery configs
/// (discovery::mirror::payload; the first line is the topic).
pub fn mqtt_request(data: &[u8]) {
    let (topic, payload) = split(data);
    if let Ok(mut request) = crate::api::mqtt::parse(payload) {
        request.remove("transaction");
    }
    let _ = crate::api::plugin_ops::Op::parse(topic);
    let _ = crate::api::device_ops::Op::parse(topic);
    for component in [
        Component::Sensor,
        Component::BinarySensor,
        Component::Switch,
        Component::Climate,
        Component::Valve,
        Component::Event,
        Component::Select,
        Component::Number,
        Component::Button,
    ] {
        let _ = crate::discovery::commands::parse_command(topic, component, "x.y", payload);
    }
    if let Some(t) = crate::discovery::mirror::payload::parse_topic(topic) {
        let _ = crate::discovery::mirror::payload::parse(&t, payload);
    }
}

/// The config file: TOML → `Config` → `validate` (inside `from_toml`).
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::config::Config::from_toml(text, "fuzz.toml");
    }
}

/// A `hearth simulate` scenario file (twin::batch::scenario), without its
/// `base` chain or data files (those are files of their own).
pub fn scenario(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::twin::batch::scenario::Scenario::parse_text(text);
    }
}

/// `hearth detect` CSV input (detect::csv).
pub fn detect_csv(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::detect::csv::parse(text);
        let _ = crate::detect::csv::parse_time_ms(text);
    }
}

/// An iCalendar feed (feeds::calendar): parsed with a default time zone,
/// then expanded over a week (recurrence rules included).
pub fn ics(data: &[u8]) {
    use crate::feeds::calendar::{ics, schedule};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tz = ics::time_zone("Europe/Paris");
    if let Ok(cal) = ics::parse(text, tz.as_ref()) {
        let from = 1_700_000_000_000;
        let occ = schedule::occurrences(&cal, from, from + 7 * 86_400_000, None);
        let _ = schedule::status(&occ, from + 3_600_000);
    }
}

/// A template (template): rendered once against an empty house, with
/// the engine's fuel limit (an endless loop is a refused template, not a
/// hang).
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let store = store();
    let world = crate::template::World {
        states: Default::default(),
        places: std::sync::Arc::new(crate::areas::Places::new(
            Default::default(),
            &store.snapshot(),
        )),
        now_ms: 1_700_000_000_000,
        tz: jiff::tz::TimeZone::UTC,
    };
    let _ = crate::template::render_here(text, &Map::new(), &world, data.len().is_multiple_of(2));
}
