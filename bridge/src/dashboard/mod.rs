//! The built-in web dashboard (issue 18, DESIGN.md §9): static files served
//! on the API's port, so HTTPS whenever the API is.
//!
//! - `GET /` (and `/index.html`) → `assets/index.html`; `GET
//!   /assets/<path>` → one of [`ASSETS`]. `HEAD` answers the same headers.
//!   Anything else under `/assets/` is 404 (`text/plain`): the table is the
//!   only source, so `..`, encoded or not, can reach no file of the machine.
//! - The files are compiled in with `include_bytes!` (no internet and no
//!   files needed at run time) and prepared once, on first use: a gzip copy
//!   (flate2, best compression) kept when smaller, and a strong ETag (the
//!   first 16 bytes of the body's SHA-256, hex, quoted).
//! - Every answer carries `Cache-Control: no-cache` (the names are not
//!   content-hashed, so the browser revalidates: `If-None-Match` → 304 with
//!   no body), `Vary: Accept-Encoding`, `X-Content-Type-Options: nosniff`,
//!   `Referrer-Policy: no-referrer` and [`CSP`].
//! - The page is a client of the bridge's own WebSocket API
//!   (`/api/websocket`, home-assistant-js-websocket): it can show and do
//!   nothing a script with a token cannot. The token stays in the browser
//!   (localStorage `hearth.token`); the files themselves need none.
//!
//! Sources of the vendored libraries: `assets/vendor/README.md`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::sync::LazyLock;

/// Scripts, styles, images and fonts only from the bridge itself; the page
/// talks only to its own origin: `connect-src 'self'` covers the bridge's
/// own WebSocket (`ws:` from an `http:` page, `wss:` from `https:`: CSP
/// Level 3's scheme upgrade, which Chromium, Firefox and Safari follow; the
/// browser test connects under it), and no other host, so a script injected
/// into the page could not send the token elsewhere (`ws: wss:` would allow
/// any host). No inline script, no plugins, no framing by other sites.
/// Preact and uPlot set styles through the CSSOM, which `style-src 'self'`
/// allows.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'self'";

macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!("assets/", $path)) as &[u8])),*]
    };
}

/// Every file the dashboard serves, by its path under `/assets/`.
pub const ASSETS: &[(&str, &[u8])] = assets![
    "index.html",
    "app.js",
    "style.css",
    "lib/hass.js",
    "lib/chart.js",
    "pages/devices.js",
    "pages/controllers.js",
    "pages/alerts.js",
    "pages/energy.js",
    "pages/weather.js",
    "vendor/README.md",
    "vendor/preact-htm.js",
    "vendor/htm/standalone.module.js",
    "vendor/htm/LICENSE",
    "vendor/htm/LICENSE-preact",
    "vendor/uplot/uPlot.esm.js",
    "vendor/uplot/uPlot.min.css",
    "vendor/uplot/LICENSE",
    "vendor/home-assistant-js-websocket/LICENSE.md",
    "vendor/home-assistant-js-websocket/auth.js",
    "vendor/home-assistant-js-websocket/collection.js",
    "vendor/home-assistant-js-websocket/commands.js",
    "vendor/home-assistant-js-websocket/config.js",
    "vendor/home-assistant-js-websocket/connection.js",
    "vendor/home-assistant-js-websocket/entities.js",
    "vendor/home-assistant-js-websocket/errors.js",
    "vendor/home-assistant-js-websocket/index.js",
    "vendor/home-assistant-js-websocket/messages.js",
    "vendor/home-assistant-js-websocket/services.js",
    "vendor/home-assistant-js-websocket/socket.js",
    "vendor/home-assistant-js-websocket/store.js",
    "vendor/home-assistant-js-websocket/types.js",
    "vendor/home-assistant-js-websocket/util.js",
];

/// One file, ready to send.
struct Prepared {
    body: Bytes,
    /// Present when gzip makes it smaller.
    gzip: Option<Bytes>,
    etag: HeaderValue,
    content_type: &'static str,
}

static PREPARED: LazyLock<HashMap<&'static str, Prepared>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|(path, bytes)| (*path, prepare(path, bytes)))
        .collect()
});

fn prepare(path: &str, bytes: &'static [u8]) -> Prepared {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let gzip = enc
        .write_all(bytes)
        .and_then(|()| enc.finish())
        .ok()
        .filter(|z| z.len() < bytes.len())
        .map(Bytes::from);
    Prepared {
        body: Bytes::from_static(bytes),
        gzip,
        etag: HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header"),
        content_type: content_type(path),
    }
}

/// By extension; `LICENSE` files (no extension) are text.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("md") => "text/markdown; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    }
}

/// Whether `path` is the dashboard's (the server routes it here).
pub fn serves(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && (path == "/" || path == "/index.html" || path.starts_with("/assets/"))
}

/// Answers a request [`serves`] accepted.
pub fn answer(method: &Method, path: &str, headers: &HeaderMap) -> Response<Full<Bytes>> {
    let name = match path {
        "/" | "/index.html" => "index.html",
        p => &p["/assets/".len()..],
    };
    let Some(asset) = PREPARED.get(name) else {
        return not_found();
    };
    let mut resp = Response::new(Full::new(Bytes::new()));
    let h = resp.headers_mut();
    h.insert(header::ETAG, asset.etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    security_headers(h);
    if matches_etag(headers, &asset.etag) {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return resp;
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    let body = match &asset.gzip {
        Some(z) if accepts_gzip(headers) => {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            z.clone()
        }
        _ => asset.body.clone(),
    };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if method != Method::HEAD {
        *resp.body_mut() = Full::new(body);
    }
    resp
}

fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

fn not_found() -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(
        b"404: no such dashboard file",
    )));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    security_headers(h);
    resp
}

/// `If-None-Match` lists our ETag (weak comparison, RFC 9110 §13.1.2) or is `*`.
fn matches_etag(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or("");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == ours)
}

/// `Accept-Encoding` names `gzip` (or `*`) without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("").to_ascii_lowercase();
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding == "gzip" || coding == "*") && !q_zero
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn gzip_accepted_unless_q_zero() {
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br;q=1.0, *;q=0.5"
        )])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "identity")])));
        assert!(!accepts_gzip(&headers(&[])));
    }

    #[test]
    fn every_asset_has_its_type_and_scripts_import_only_listed_files() {
        for (path, _) in ASSETS {
            let ty = content_type(path);
            match path.rsplit_once('.').map(|(_, e)| e) {
                Some("js") => assert_eq!(ty, "text/javascript; charset=utf-8"),
                Some("css") => assert_eq!(ty, "text/css; charset=utf-8"),
                Some("html") => assert_eq!(ty, "text/html; charset=utf-8"),
                _ => assert!(ty.starts_with("text/"), "{path}: {ty}"),
            }
        }
        // Every relative import in a listed script, static (`from '…'`) or
        // dynamic (`import('…')`, the router's pages), names a listed file:
        // a missing entry would be a 404 in the browser.
        let listed: Vec<&str> = ASSETS.iter().map(|(p, _)| *p).collect();
        let mut dynamic = Vec::new();
        for (path, bytes) in ASSETS.iter().filter(|(p, _)| p.ends_with(".js")) {
            let text = std::str::from_utf8(bytes).unwrap();
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            for spec in relative_imports(text) {
                let resolved = resolve(dir, &spec.name);
                assert!(
                    listed.contains(&resolved.as_str()),
                    "{path} imports {} ({resolved}), not in ASSETS",
                    spec.name
                );
                if spec.dynamic {
                    dynamic.push(resolved);
                }
            }
        }
        // The pages are imported on demand, each by the router.
        for page in listed.iter().filter(|p| p.starts_with("pages/")) {
            assert!(
                dynamic.iter().any(|d| d == page),
                "{page} is not imported by the router"
            );
        }
    }

    #[test]
    fn imports_are_found_static_and_dynamic() {
        let text = "import { a } from './a.js';\nimport b from \"../b.js\";\n\
            import x from 'pkg';\nconst p = () => import('./pages/c.js');\n\
            const q = import(\"./d.js\"); // import(name) is not literal: import(name)";
        let found: Vec<(String, bool)> = relative_imports(text)
            .into_iter()
            .map(|s| (s.name, s.dynamic))
            .collect();
        assert_eq!(
            found,
            [
                ("./a.js".to_string(), false),
                ("../b.js".to_string(), false),
                ("./pages/c.js".to_string(), true),
                ("./d.js".to_string(), true),
            ]
        );
    }

    struct Import {
        name: String,
        dynamic: bool,
    }

    /// The relative specifiers of `from '…'` and `import('…')` (either
    /// quote), in the order they appear.
    fn relative_imports(text: &str) -> Vec<Import> {
        let mut found = Vec::new();
        for (pattern, dynamic) in [(" from ", false), ("import(", true)] {
            for (at, _) in text.match_indices(pattern) {
                let rest = &text[at + pattern.len()..];
                let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                    continue;
                };
                let Some(name) = rest[1..].split(quote).next() else {
                    continue;
                };
                if name.starts_with('.') {
                    found.push((at, name.to_string(), dynamic));
                }
            }
        }
        found.sort_by_key(|(at, _, _)| *at);
        found
            .into_iter()
            .map(|(_, name, dynamic)| Import { name, dynamic })
            .collect()
    }

    fn resolve(dir: &str, spec: &str) -> String {
        let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
        for seg in spec.split('/') {
            match seg {
                "." => {}
                ".." => {
                    parts.pop();
                }
                s => parts.push(s),
            }
        }
        parts.join("/")
    }
}
