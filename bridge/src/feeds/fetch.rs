//! What the feed drivers share: HTTP GETs (hyper's client over
//! hyper-util's `HttpConnector` for `http://`, [`super::https`]'s rustls
//! client with Mozilla's roots, plus a feed's `ca_file`, for `https://`),
//! file reads, retry backoff and the clock-aware wait.

use super::FeedError;
use super::https::HttpsGet;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::path::Path;
use std::time::Duration;

/// Largest answer read (a year of 15-minute spot prices is ≈ 2 MB).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// Shortest wall-time wait between two wakes of a feed loop, so a clock
/// whose sleeps return at once (a manual clock) cannot spin a core.
const MIN_WAIT: Duration = Duration::from_millis(5);

/// Checks a feed URL from the config: `http://` or `https://host[:port]/…`.
/// `key` names the config key in the error (`[tariff] url`).
pub fn check_url(key: &str, url: &str) -> Result<(), String> {
    let shown = crate::secret::redact_url(url);
    let parsed = url::Url::parse(url).map_err(|e| {
        format!("{key} `{shown}` is not a URL ({e}); expected http(s)://host[:port]/path")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "{key} `{shown}`: expected an http(s)://host[:port]/path URL"
        ));
    }
    Ok(())
}

/// A small HTTP/1 GET client with a per-request wall-time timeout;
/// `https://` URLs go through [`HttpsGet`] (Mozilla's roots).
#[derive(Clone)]
pub struct HttpGet {
    client: Client<HttpConnector, Empty<Bytes>>,
    https: HttpsGet,
    timeout: Duration,
}

impl HttpGet {
    pub fn new(timeout: Duration) -> Self {
        HttpGet {
            client: Client::builder(TokioExecutor::new()).build_http(),
            https: HttpsGet::with_public_roots(timeout),
            timeout,
        }
    }

    /// [`HttpGet::new`] that also trusts the PEM CA certificate(s) in
    /// `ca_file` for `https://` URLs (a private CA, a local relay's).
    /// `key` names the config section in errors (`[tariff]`): a file that
    /// cannot be read or holds no certificate is an error naming
    /// `<key> ca_file <path>`.
    pub fn with_ca(key: &str, ca_file: Option<&Path>, timeout: Duration) -> Result<Self, String> {
        Ok(HttpGet {
            client: Client::builder(TokioExecutor::new()).build_http(),
            https: HttpsGet::new(key, ca_file, timeout)?,
            timeout,
        })
    }

    /// The body of a `200` answer to `GET url`, as text. `expected` says
    /// what the answer should hold, for the error of a non-200 status.
    /// Every error names the URL.
    pub async fn text(&self, url: &str, expected: &str) -> Result<String, FeedError> {
        if url.starts_with("https://") {
            return self.https.text(url, expected).await;
        }
        // Named without credentials in its user info or query.
        let shown = crate::secret::redact_url(url);
        let err = |reason: String| FeedError::new(&format!("GET {shown}"), "", reason);
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| err(format!("not a valid URL ({e})")))?;
        let req = hyper::Request::get(uri)
            .header("accept", "application/json")
            .header("user-agent", concat!("hearth/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| err(e.to_string()))?;
        let secs = self.timeout.as_secs_f64();
        let resp = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| err(format!("no answer within {secs} s")))?
            .map_err(|e| err(format!("request failed: {}", error_chain(&e))))?;
        let status = resp.status();
        let body = tokio::time::timeout(
            self.timeout,
            Limited::new(resp.into_body(), MAX_BODY).collect(),
        )
        .await
        .map_err(|_| err(format!("body not received within {secs} s")))?
        .map_err(|e| err(format!("reading the body failed: {e}")))?
        .to_bytes();
        if !status.is_success() {
            return Err(err(format!(
                "HTTP {status}, expected 200 with {expected} (body `{}`)",
                crate::broker::excerpt(&body)
            )));
        }
        String::from_utf8(body.to_vec())
            .map_err(|_| err(format!("the body is not UTF-8 text; expected {expected}")))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// A file's text (a spot price list kept on disk), naming the file on
/// error. Read on the blocking pool (tokio's `fs` feature is not built).
pub async fn file_text(path: &Path) -> Result<String, FeedError> {
    let input = path.display().to_string();
    let owned = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || -> Result<String, String> {
        let meta = std::fs::metadata(&owned).map_err(|e| format!("cannot read: {e}"))?;
        if meta.len() > MAX_BODY as u64 {
            return Err(format!(
                "{} bytes, more than the {MAX_BODY} read",
                meta.len()
            ));
        }
        std::fs::read_to_string(&owned).map_err(|e| format!("cannot read as UTF-8 text: {e}"))
    })
    .await
    .map_err(|e| format!("the read did not finish: {e}"))
    .and_then(|r| r);
    read.map_err(|reason| FeedError::new(&input, "", reason))
}

/// Delays between retries after failures: `first`, doubling, at most
/// `max` (all ms of the bridge's clock).
#[derive(Debug, Clone)]
pub struct Backoff {
    first_ms: f64,
    max_ms: f64,
    next_ms: f64,
}

impl Backoff {
    pub fn new(first_ms: f64, max_ms: f64) -> Self {
        let first_ms = first_ms.min(max_ms);
        Backoff {
            first_ms,
            max_ms,
            next_ms: first_ms,
        }
    }

    /// The delay before the next retry; each call doubles the following.
    pub fn next_delay_ms(&mut self) -> f64 {
        let d = self.next_ms;
        self.next_ms = (self.next_ms * 2.0).min(self.max_ms);
        d
    }

    pub fn reset(&mut self) {
        self.next_ms = self.first_ms;
    }
}

/// Longest monotonic sleep between two readings of the clock in
/// [`sleep_until`]: a step of the wall clock (NTP) is noticed within this.
pub const WALL_CHECK: Duration = Duration::from_secs(1);

/// Sleeps until the clock reads `at_ms` (at least [`MIN_WAIT`] of wall
/// time, so a loop around it never spins). It reads the clock again every
/// [`WALL_CHECK`], so a wall clock stepped past `at_ms` ends the sleep
/// then, not after the whole monotonic wait computed before the step.
pub async fn sleep_until(clock: &crate::clock::Clock, at_ms: i64) {
    while sleep_slice(clock, at_ms).await == Slept::Slice {}
}

/// [`sleep_until`], ending early too when the wall clock was stepped (by
/// more than [`STEP_TOLERANCE_MS`] or a second of the clock's time), e.g.
/// back: what the caller scheduled from the old time is to be computed
/// again (a tariff's next period change).
pub async fn sleep_until_or_step(clock: &crate::clock::Clock, at_ms: i64) {
    loop {
        let before = clock.now_ms();
        let t = std::time::Instant::now();
        if sleep_slice(clock, at_ms).await == Slept::Due {
            return;
        }
        let moved = clock.now_ms() - before;
        let expected = t.elapsed().as_secs_f64() * clock.speed() * 1000.0;
        let tolerance = (STEP_TOLERANCE_MS as f64).max(clock.speed() * 1000.0);
        if (moved as f64 - expected).abs() > tolerance {
            return;
        }
    }
}

/// A clock difference from the monotonic time slept that counts as a step.
pub const STEP_TOLERANCE_MS: i64 = 2_000;

#[derive(PartialEq)]
enum Slept {
    Due,
    Slice,
}

async fn sleep_slice(clock: &crate::clock::Clock, at_ms: i64) -> Slept {
    let ms = at_ms.saturating_sub(clock.now_ms()) as f64;
    let wait = clock.wall(ms).max(MIN_WAIT);
    if wait <= WALL_CHECK {
        tokio::time::sleep(wait).await;
        return Slept::Due;
    }
    tokio::time::sleep(WALL_CHECK).await;
    if clock.now_ms() >= at_ms {
        Slept::Due
    } else {
        Slept::Slice
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_or_https() {
        assert!(check_url("[tariff] url", "http://127.0.0.1:8080/api").is_ok());
        assert!(check_url("[tariff] url", "https://www.api-couleur-tempo.fr/api").is_ok());
        let e = check_url("[weather] url", "ftp://x/y").unwrap_err();
        assert!(
            e.contains("[weather] url") && e.contains("expected an http(s)://"),
            "{e}"
        );
        assert!(
            check_url("k", "not a url")
                .unwrap_err()
                .contains("is not a URL")
        );
    }

    #[tokio::test]
    async fn https_urls_go_through_tls() {
        // A plain TCP server that answers nothing TLS can use: the error
        // must come from the TLS handshake (hyper's plain connector would
        // refuse the scheme instead, before connecting).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            if let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\nplain").await;
            }
        });
        let url = format!("https://127.0.0.1:{port}/feed");
        let e = HttpGet::new(Duration::from_secs(5))
            .text(&url, "JSON")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(&url), "{e}");
        assert!(!e.contains("scheme is not http"), "{e}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Backoff::new(1000.0, 5000.0);
        let d: Vec<f64> = (0..5).map(|_| b.next_delay_ms()).collect();
        assert_eq!(d, vec![1000.0, 2000.0, 4000.0, 5000.0, 5000.0]);
        b.reset();
        assert_eq!(b.next_delay_ms(), 1000.0);
    }
}
