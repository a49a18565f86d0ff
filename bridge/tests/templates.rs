//! HA's templates over real sockets (issue 18 item 4): WebSocket
//! `render_template` (the result, its typing, the listeners, re-renders
//! when a state it read changes, errors as HA reports them) and REST
//! `POST /api/template`, against a bridge with helper selects.

use crate::common::{
    history::{Ws, start_bridge},
    wait_for,
};
use hearth::api::auth::tokens;
use hearth::config::Config;
use hearth::drivers::helpers::config::SelectConfig;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(15);
const MODE: &str = "select.mode";

pub fn selects(c: &mut Config) {
    for (id, options) in [("mode", ["a", "b", "c"]), ("other", ["x", "y", "z"])] {
        c.select.push(SelectConfig {
            id: id.into(),
            name: id.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            initial: None,
            icon: None,
        });
    }
}

fn render(template: &str) -> Value {
    json!({"type": "render_template", "template": template})
}

async fn select(ws: &mut Ws, entity: &str, option: &str) {
    let r = ws
        .call(
            json!({"type": "call_service", "domain": "select", "service": "select_option",
                     "service_data": {"option": option}, "target": {"entity_id": entity}}),
        )
        .await;
    assert_eq!(r["success"], true, "{r}");
}

/// Subscribes; asserts HA's `null` result first; the subscription id.
async fn subscribe(ws: &mut Ws, cmd: Value) -> u64 {
    let id = ws.send(cmd).await;
    let r = ws.result(id).await;
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["result"], Value::Null);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_template_results_listeners_and_rerenders() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let bridge = start_bridge(dir.path(), selects).await;
    let mut ws = Ws::auth(bridge.http_addr, &token).await;

    // One entity read: its listener, then a re-render when it changes.
    let sub = subscribe(&mut ws, render("{{ states('select.mode') }}")).await;
    let ev = ws.event(sub).await;
    assert_eq!(
        ev,
        json!({"result": "a", "listeners": {"all": false, "entities": [MODE], "domains": [], "time": false}})
    );
    select(&mut ws, MODE, "b").await;
    assert_eq!(ws.event(sub).await["result"], "b");
    // A change of an entity it did not read re-renders nothing.
    select(&mut ws, "select.other", "y").await;
    assert_eq!(ws.events_until_pong(sub).await, Vec::<Value>::new());

    // Results typed as HA types them: numbers, booleans, lists.
    for (template, want) in [
        ("{{ 20 + 22 }}", json!(42)),
        ("{{ 0.5 * 3 }}", json!(1.5)),
        ("{{ is_state('select.mode', 'b') }}", json!(true)),
        ("{{ states('select.mode') == 'a' }}", json!(false)),
        ("{{ ['a', 1] }}", json!(["a", 1])),
        ("0{{ 7 }}", json!("07")),
        (
            "{{ state_attr('select.mode', 'options') | join(',') }}",
            json!("a,b,c"),
        ),
        ("{{ states('select.nothing') }}", json!("unknown")),
        ("{{ 'x' | float(2) }}", json!(2)),
        ("{{ '2.5' | float }}", json!(2.5)),
        ("plain text", json!("plain text")),
    ] {
        let id = subscribe(&mut ws, render(template)).await;
        assert_eq!(ws.event(id).await["result"], want, "{template}");
    }

    // Variables.
    let id = subscribe(
        &mut ws,
        json!({"type": "render_template", "template": "{{ x * 2 }}", "variables": {"x": 21}}),
    )
    .await;
    assert_eq!(ws.event(id).await["result"], 42);

    // A domain iterated: its listener; the count follows the domain.
    let id = subscribe(
        &mut ws,
        render("{{ states.select | selectattr('state', 'eq', 'c') | list | count }}"),
    )
    .await;
    let ev = ws.event(id).await;
    assert_eq!(ev["result"], 0, "{ev}");
    assert_eq!(ev["listeners"]["domains"], json!(["select"]));
    assert_eq!(ev["listeners"]["entities"], json!([]));
    select(&mut ws, MODE, "c").await;
    assert_eq!(ws.event(sub).await["result"], "c");
    // Domain changes are rate-limited to one render a second (HA).
    let ev = ws.event(id).await;
    assert_eq!(ev["result"], 1, "{ev}");

    // Every state, and the time.
    let id = subscribe(
        &mut ws,
        render("{{ states | count > 0 }} {{ now().year > 2000 }}"),
    )
    .await;
    let ev = ws.event(id).await;
    assert_eq!(ev["result"], "True True");
    assert_eq!(
        ev["listeners"],
        json!({"all": true, "entities": [], "domains": [], "time": true})
    );

    // Unsubscribed: no more events.
    let r = ws
        .call(json!({"type": "unsubscribe_events", "subscription": sub}))
        .await;
    assert_eq!(r["success"], true, "{r}");
    select(&mut ws, MODE, "a").await;
    wait_for("select.mode = a", WAIT, || {
        (bridge.store.get(MODE)?.state == "a").then_some(())
    })
    .await;
    assert_eq!(ws.events_until_pong(sub).await, Vec::<Value>::new());
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_template_errors_as_ha_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let bridge = start_bridge(dir.path(), selects).await;
    let mut ws = Ws::auth(bridge.http_addr, &token).await;

    // Bad fields: voluptuous' invalid_format.
    let r = ws.call(json!({"type": "render_template"})).await;
    assert_eq!(r["error"]["code"], "invalid_format", "{r}");
    let r = ws
        .call(json!({"type": "render_template", "template": "x", "strict": "yes"}))
        .await;
    assert_eq!(r["error"]["code"], "invalid_format", "{r}");

    // A syntax error with report_errors: HA's error event, then the
    // subscription stands (result null) and reports it once more.
    let id = ws
        .send(json!({"type": "render_template", "template": "{{ 1 + }}", "report_errors": true}))
        .await;
    let ev = ws.event(id).await;
    assert_eq!(ev["level"], "ERROR", "{ev}");
    assert!(
        ev["error"]
            .as_str()
            .unwrap()
            .starts_with("TemplateSyntaxError"),
        "{ev}"
    );
    let r = ws.result(id).await;
    assert_eq!(r["success"], true, "{r}");

    // Without report_errors an error sends nothing (HA).
    let id = subscribe(&mut ws, render("{{ states('select.mode') | int }}")).await;
    assert_eq!(ws.events_until_pong(id).await, Vec::<Value>::new());
    // …until the template renders: the select has no int, float does.
    let id = subscribe(
        &mut ws,
        json!({"type": "render_template", "template": "{{ states('select.mode') | float }}", "report_errors": true}),
    )
    .await;
    let ev = ws.event(id).await;
    let msg = ev["error"].as_str().expect("an error event");
    assert!(
        msg.starts_with("ValueError: Template error: float got invalid input 'a'"),
        "{msg}"
    );

    // strict: the first render fails on the undefined name (reported);
    // later renders are lenient, as HA's.
    let id = ws
        .send(
            json!({"type": "render_template", "template": "x{{ nothing }}",
                     "strict": true, "report_errors": true}),
        )
        .await;
    let ev = ws.event(id).await;
    assert!(
        ev["error"].as_str().unwrap().starts_with("UndefinedError"),
        "{ev}"
    );
    assert_eq!(ws.result(id).await["success"], true);
    assert_eq!(ws.event(id).await["result"], "x");

    // timeout: a quick template renders.
    let id = subscribe(
        &mut ws,
        json!({"type": "render_template", "template": "{{ 1 }}", "timeout": 3}),
    )
    .await;
    assert_eq!(ws.event(id).await["result"], 1);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_template_with_now_rerenders_every_minute_of_the_bridges_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    crate::common::init_logs();
    let mut config = Config::default();
    config.mqtt.port = hearth::broker::EmbeddedBroker::free_port();
    config.http.port = 0;
    config.data_dir = Some(dir.path().to_path_buf());
    // 600×: a minute every 0.1 s.
    let bridge = hearth::app::Bridge::start(config, hearth::clock::Clock::simulated(600.0))
        .await
        .expect("bridge starts");
    let mut ws = Ws::auth(bridge.http_addr, &token).await;
    let id = subscribe(&mut ws, render("{{ now().hour }}:{{ now().minute }}")).await;
    let first = ws.event(id).await;
    assert_eq!(first["listeners"]["time"], true, "{first}");
    let mut seen = vec![first["result"].clone()];
    while seen.len() < 4 {
        let ev = ws.event(id).await;
        assert_ne!(
            Some(&ev["result"]),
            seen.last(),
            "sent only when it changes"
        );
        seen.push(ev["result"].clone());
    }
    bridge.stop().await;
}

/// `POST` over a real socket: (status, content type, body).
pub async fn post(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut resp))
        .await
        .expect("response within 15 s")
        .unwrap();
    let text = String::from_utf8(resp).unwrap();
    let status = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, ctype, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_template_renders_text_and_answers_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let bridge = start_bridge(dir.path(), selects).await;
    let addr = bridge.http_addr;
    let body = json!({"template": "{{ states('select.mode') }} is {{ 'on' if is_state('select.other', 'x') }} {{ n + 1 }}", "variables": {"n": 2}});
    let (status, ctype, text) = post(addr, "/api/template", Some(&token), &body.to_string()).await;
    assert_eq!(status, 200, "{text}");
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    assert_eq!(text, "a is on 3");
    // Not typed (HA's parse_result=False): Python's printing.
    let body = json!({"template": "{{ [1, none, true] }}"});
    let (_, _, text) = post(addr, "/api/template", Some(&token), &body.to_string()).await;
    assert_eq!(text, "[1, None, True]");

    let body = json!({"template": "{{ 'abc' | int }}"});
    let (status, ctype, text) = post(addr, "/api/template", Some(&token), &body.to_string()).await;
    assert_eq!(status, 400, "{text}");
    assert!(ctype.starts_with("application/json"));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["message"].as_str().unwrap().starts_with(
            "Error rendering template: ValueError: Template error: int got invalid input 'abc'"
        ),
        "{v}"
    );
    let (status, _, _) = post(addr, "/api/template", Some(&token), "not json").await;
    assert_eq!(status, 400);
    let (status, _, _) = post(addr, "/api/template", None, &body.to_string()).await;
    assert_eq!(status, 401);
    bridge.stop().await;
}

/// Templates that used to crash or stall the bridge (a stack overflow
/// aborts the process) answer an error or a string, and the bridge goes
/// on answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_template_bounds_depth_memory_time_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let bridge = start_bridge(dir.path(), selects).await;
    let mut ws = Ws::auth(bridge.http_addr, &token).await;
    let errors = |t: &str| json!({"type": "render_template", "template": t, "report_errors": true});

    // 100 000 brackets: the result's typing gives up, the text stays.
    let id = subscribe(&mut ws, render("{{ '[' * 100000 }}")).await;
    assert_eq!(ws.event(id).await["result"], "[".repeat(100_000));

    // A list nested 100 000 deep (namespace in a loop): an error to print,
    // and dropped without a crash.
    let nest = "{% set ns = namespace(x=0) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}";
    let id = subscribe(&mut ws, errors(&format!("{nest}{{{{ ns.x }}}}"))).await;
    let ev = ws.event(id).await;
    assert!(
        ev["error"].as_str().unwrap().starts_with("RecursionError"),
        "{ev}"
    );
    let id = subscribe(&mut ws, render(&format!("{nest}{{{{ 'fine' }}}}"))).await;
    assert_eq!(ws.event(id).await["result"], "fine");

    // A lazy 10^8-item list: the output limit, not gigabytes of text.
    let id = subscribe(&mut ws, errors("{{ [0] * 100000000 }}")).await;
    let ev = ws.event(id).await;
    assert_eq!(
        ev["error"], "Template output exceeded maximum size of 262144 characters",
        "{ev}"
    );

    // timeout: a render running to its fuel (about a second) is a timeout
    // after 0.05 s, while the connection keeps answering.
    let slow = "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}";
    let started = std::time::Instant::now();
    let r = ws
        .call(json!({"type": "render_template", "template": slow, "timeout": 0.05}))
        .await;
    assert_eq!(r["success"], false, "{r}");
    assert_eq!(r["error"]["code"], "template_error", "{r}");
    assert_eq!(
        r["error"]["message"],
        "Exceeded maximum execution time of 0.05s"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // REST answers the same bounds as errors.
    let body = json!({"template": format!("{nest}{{{{ ns.x }}}}")});
    let (status, _, text) = post(
        bridge.http_addr,
        "/api/template",
        Some(&token),
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("RecursionError"), "{text}");

    // At most 256 subscriptions per connection (the ones above count).
    let mut ids = Vec::new();
    let open = 4;
    for _ in open..256 {
        ids.push(ws.send(render("{{ 1 }}")).await);
    }
    for id in &ids {
        assert_eq!(ws.result(*id).await["success"], true);
    }
    let r = ws.call(render("{{ 1 }}")).await;
    assert_eq!(r["error"]["code"], "home_assistant_error", "{r}");
    assert_eq!(
        r["error"]["message"],
        "at most 256 render_template subscriptions per connection"
    );
    // Another connection has its own; an unsubscribe frees one.
    let mut other = Ws::auth(bridge.http_addr, &token).await;
    let id = subscribe(&mut other, render("{{ 2 }}")).await;
    assert_eq!(other.event(id).await["result"], 2);
    let r = ws
        .call(json!({"type": "unsubscribe_events", "subscription": ids[0]}))
        .await;
    assert_eq!(r["success"], true, "{r}");
    let r = ws.call(render("{{ 3 }}")).await;
    assert_eq!(r["success"], true, "{r}");
    bridge.stop().await;
}
