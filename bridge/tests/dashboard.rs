//! The built-in dashboard at the HTTP level (bridge/src/dashboard): the page
//! and its files with their content types, gzip, ETag/304, the CSP, 404 for
//! unknown files and traversal attempts; and the plugin upload the
//! dashboard's "swap from a .wasm" uses (POST /api/hearth/plugins/upload):
//! token, size cap, a real component uploaded then swapped in over the
//! WebSocket API, running.

use crate::common::{BrokerKind, Harness, wait_for};
use hearth::api::client::ApiClient;
use hearth::dashboard::ASSETS;
use serde_json::{Value, json};
use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn client() -> reqwest::Client {
    // reqwest here is built without its gzip feature: it neither asks for
    // nor undoes compression, so the test sees the wire. No pooled
    // connections: one the bridge closed after refusing a body it did not
    // read would break the next request.
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a valid gzip stream");
    out
}

/// The source file, as the repository has it.
fn source(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/src/dashboard/assets/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A raw request line (no client-side path normalisation): the status.
async fn raw_status(addr: SocketAddr, target: &str) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut resp))
        .await
        .expect("an answer within 15 s")
        .unwrap();
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 "), "{text}");
    text[9..12].parse().unwrap()
}

/// A POST declaring `length` bytes and sending only a few: the status.
async fn raw_post_status(addr: SocketAddr, target: &str, token: &str, length: usize) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {length}\r\n\r\n\0asm"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 12];
    tokio::time::timeout(Duration::from_secs(15), s.read_exact(&mut head))
        .await
        .expect("an answer within 15 s")
        .unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_assets_are_served_with_types_gzip_etag_and_csp() {
    let h = Harness::start(BrokerKind::Embedded, 60.0, |_| {}).await;
    let addr = h.bridge().http_addr;
    let base = format!("http://{addr}");
    let http = client();

    // The page: HTML, the CSP, no caching without revalidation.
    let resp = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/html; charset=utf-8");
    let csp = header(&resp, "content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    // Its own origin only (its WebSocket included), not any host.
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert!(!csp.contains("ws:") && !csp.contains("wss:"), "{csp}");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(header(&resp, "x-content-type-options"), "nosniff");
    assert_eq!(header(&resp, "cache-control"), "no-cache");
    let page = resp.bytes().await.unwrap();
    assert_eq!(&page[..], &source("index.html")[..]);
    let page = String::from_utf8(page.to_vec()).unwrap();
    // Relative references (they must also work under a path prefix such as
    // HA's ingress), and nothing from another origin.
    assert!(page.contains("src=\"assets/app.js\""), "{page}");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );

    // Every listed file: 200, its type, the repository's bytes; gzip when
    // asked and identical once decompressed.
    let mut gzipped = 0;
    for (path, _) in ASSETS {
        let url = format!("{base}/assets/{path}");
        let plain = http.get(&url).send().await.unwrap();
        assert_eq!(plain.status(), 200, "{path}");
        let ty = header(&plain, "content-type");
        let expected = match path.rsplit_once('.').map(|(_, e)| e) {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("html") => "text/html; charset=utf-8",
            Some("md") => "text/markdown; charset=utf-8",
            _ => "text/plain; charset=utf-8",
        };
        assert_eq!(ty, expected, "{path}");
        assert_eq!(header(&plain, "content-encoding"), "", "{path}");
        let body = plain.bytes().await.unwrap();
        assert_eq!(&body[..], &source(path)[..], "{path}");

        let zipped = http
            .get(&url)
            .header("accept-encoding", "gzip, deflate, br")
            .send()
            .await
            .unwrap();
        assert_eq!(zipped.status(), 200);
        assert_eq!(header(&zipped, "vary"), "Accept-Encoding");
        if header(&zipped, "content-encoding") == "gzip" {
            gzipped += 1;
            let wire = zipped.bytes().await.unwrap();
            assert!(
                wire.len() < body.len(),
                "{path}: gzip is kept only when smaller"
            );
            assert_eq!(gunzip(&wire), body.to_vec(), "{path}");
        }
    }
    // The big ones compress (uPlot alone is 145 kB of text).
    assert!(gzipped >= 10, "{gzipped} files gzipped");
    let z = http
        .get(format!("{base}/assets/vendor/uplot/uPlot.esm.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&z, "content-encoding"), "gzip");
    // `q=0` refuses gzip.
    let refused = http
        .get(format!("{base}/assets/app.js"))
        .header("accept-encoding", "gzip;q=0, identity")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&refused, "content-encoding"), "");

    // ETag: the same tag again → 304 without a body; another tag → 200.
    let first = http
        .get(format!("{base}/assets/app.js"))
        .send()
        .await
        .unwrap();
    let etag = header(&first, "etag");
    assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
    let again = http
        .get(format!("{base}/assets/app.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let other = http
        .get(format!("{base}/assets/app.js"))
        .header("if-none-match", "\"0123\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    let style = http
        .get(format!("{base}/assets/style.css"))
        .send()
        .await
        .unwrap();
    assert_ne!(header(&style, "etag"), etag, "tags differ per file");

    // Unknown files, traversal (raw, unnormalised request lines) and other
    // methods: 404, never a file of the machine.
    let missing = http
        .get(format!("{base}/assets/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(!header(&missing, "content-security-policy").is_empty());
    for target in [
        "/assets/../Cargo.toml",
        "/assets/../../Cargo.toml",
        "/assets/%2e%2e/%2e%2e/Cargo.toml",
        "/assets/..%2f..%2fCargo.toml",
        "/assets//etc/passwd",
        "/assets/vendor/../app.js",
        "/assets/",
        "/../../etc/passwd",
    ] {
        assert_eq!(raw_status(addr, target).await, 404, "{target}");
    }
    let post = http.post(format!("{base}/")).send().await.unwrap();
    assert_eq!(post.status(), 404);
    // The API is unchanged beside the dashboard.
    let health = http.get(format!("{base}/api/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_component_swaps_in_and_runs() {
    let h = Harness::start(BrokerKind::Embedded, 60.0, |_| {}).await;
    let (_, token) = hearth::api::auth::tokens::create(h.data_dir.path(), "dashboard").unwrap();
    let addr = h.bridge().http_addr;
    let url = format!("http://{addr}/api/hearth/plugins/upload?name=thermostat");
    let http = client();
    let component = hearth::plugins::builtin::BUILTIN
        .iter()
        .find(|(n, _)| *n == "custom-strategy")
        .map(|(_, b)| b.to_vec())
        .unwrap();

    // No token, a wrong token: 401.
    let none = http
        .post(&url)
        .body(component.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let wrong = http
        .post(&url)
        .bearer_auth("not-a-token")
        .body(component.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // Over 16 MiB: 413; not WebAssembly: 400; no name: 400.
    // (Declared in the headers: refused before any byte is read, so the
    // answer arrives while the client still holds its 16 MiB.)
    let big = raw_post_status(
        addr,
        "/api/hearth/plugins/upload?name=thermostat",
        &token,
        hearth::api::upload::MAX_UPLOAD + 1,
    )
    .await;
    assert_eq!(big, 413);
    let text = http
        .post(&url)
        .bearer_auth(&token)
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 400);
    let unnamed = http
        .post(format!("http://{addr}/api/hearth/plugins/upload"))
        .bearer_auth(&token)
        .body(component.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unnamed.status(), 400);
    let uploads = h.data_dir.path().join("uploads");
    let stored = || std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);
    assert_eq!(stored(), 0, "refused uploads leave no file");

    // The custom strategy's component, uploaded: a content-addressed file
    // with the same bytes.
    let ok = http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/wasm")
        .body(component.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let answer: Value = ok.json().await.unwrap();
    let path = answer["wasm"].as_str().unwrap().to_string();
    assert!(path.ends_with(&format!("{}.wasm", answer["sha256"].as_str().unwrap())));
    assert_eq!(answer["bytes"], component.len());
    assert_eq!(std::fs::read(&path).unwrap(), component);
    // Twice the same bytes: one file.
    let again: Value = http
        .post(&url)
        .bearer_auth(&token)
        .body(component.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["wasm"], path.as_str());
    assert_eq!(stored(), 1);

    // Swapped in over the WebSocket API, as the dashboard does.
    let mut ws = ApiClient::connect(&format!("ws://{addr}/api/websocket"), &token)
        .await
        .unwrap();
    let builtins = ws
        .command("hearth/plugins/builtins", json!({}))
        .await
        .unwrap();
    assert!(
        builtins
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b == "custom-strategy"
                && builtins.as_array().unwrap().contains(&json!("thermostat"))),
        "{builtins}"
    );
    wait_for("thermostat events", Duration::from_secs(20), || {
        (h.bridge().plugin_status("thermostat")?.events > 0).then_some(())
    })
    .await;
    let swapped = ws
        .command(
            "hearth/plugins/swap",
            json!({"name": "thermostat", "wasm": path}),
        )
        .await
        .unwrap();
    assert!(
        swapped["to"].as_str().unwrap().starts_with("pi-strategy "),
        "{swapped}"
    );
    let list = ws.command("hearth/plugins/list", json!({})).await.unwrap();
    let t = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "thermostat")
        .unwrap();
    assert_eq!(t["wasm"], path.as_str());
    // examples/custom-strategy describes itself as `pi-strategy`.
    assert_eq!(t["plugin"], "pi-strategy");
    // It runs: it receives the room's samples after the swap.
    let events_at_swap = h.bridge().plugin_status("thermostat").unwrap().events;
    wait_for(
        "events delivered to the swapped-in plugin",
        Duration::from_secs(30),
        || {
            let s = h.bridge().plugin_status("thermostat")?;
            (s.state.as_str() == "running" && s.events > events_at_swap).then_some(())
        },
    )
    .await;
    h.stop().await;
}
