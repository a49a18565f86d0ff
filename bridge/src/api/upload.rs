//! `POST /api/hearth/plugins/upload?name=<plugin>`: a plugin component
//! sent over HTTP, for the dashboard's "swap from a `.wasm` file" (a browser
//! cannot name a path on the bridge's machine).
//!
//! - Bearer token as every REST call (401 without a valid one).
//! - Body: the component's bytes (`application/wasm` or any type), at most
//!   [`MAX_UPLOAD`] (16 MiB; Hearth's plugins are ≈ 0.2–0.5 MiB): 413 above.
//!   It must start with the WebAssembly magic `\0asm` (400 otherwise);
//!   whether it is a valid controller is checked by `load`/`swap`, which
//!   compile it.
//! - `name`: the plugin instance it is meant for (letters, digits, `-`, `_`;
//!   1–64 characters), checked and logged; the file does not depend on it.
//! - Stored as `<data_dir>/uploads/<sha256 hex>.wasm` (content-addressed:
//!   the same bytes uploaded twice are one file), written to a temporary
//!   name and renamed, so a reader never sees half a file.
//! - Answer 200 `{"wasm": "<absolute path>", "sha256": "<hex>", "bytes": n}`:
//!   pass `wasm` to `hearth/plugins/load` or `hearth/plugins/swap`.

use super::Api;
use super::auth::TokenInfo;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Largest component accepted.
pub const MAX_UPLOAD: usize = 16 << 20;

pub const PATH: &str = "/api/hearth/plugins/upload";

pub async fn answer(
    req: Request<hyper::body::Incoming>,
    api: &Api,
    token: &TokenInfo,
) -> Response<Full<Bytes>> {
    let name = req.uri().query().unwrap_or("").split('&').find_map(|kv| {
        kv.strip_prefix("name=")
            .and_then(|v| percent_encoding::percent_decode_str(v).decode_utf8().ok())
            .map(|v| v.into_owned())
    });
    let Some(name) = name.filter(|n| valid_name(n)) else {
        return super::rest::message(
            StatusCode::BAD_REQUEST,
            "expected ?name=<plugin> (letters, digits, - and _, at most 64)",
        );
    };
    // Refused before reading when the client says it is too big.
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_UPLOAD as u64) {
        return too_big();
    }
    let body = match Limited::new(req.into_body(), MAX_UPLOAD).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_big(),
        Err(e) => {
            return super::rest::message(StatusCode::BAD_REQUEST, &format!("request body: {e}"));
        }
    };
    if !body.starts_with(b"\0asm") {
        return super::rest::message(
            StatusCode::BAD_REQUEST,
            "not a WebAssembly file (expected the \\0asm magic): send the plugin's .wasm component",
        );
    }
    let dir = api.data_dir.join("uploads");
    let result = tokio::task::spawn_blocking(move || store(&dir, &body)).await;
    match result {
        Ok(Ok((path, sha, bytes))) => {
            tracing::info!(
                "plugin upload for `{name}` by token `{}`: {} ({bytes} bytes)",
                token.name,
                path.display()
            );
            super::rest::json(
                StatusCode::OK,
                json!({"wasm": path.display().to_string(), "sha256": sha, "bytes": bytes}),
            )
        }
        Ok(Err(e)) => super::rest::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("storing the upload: {e:#}"),
        ),
        Err(e) => super::rest::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("storing the upload: {e}"),
        ),
    }
}

fn too_big() -> Response<Full<Bytes>> {
    super::rest::message(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("a plugin upload is at most {MAX_UPLOAD} bytes"),
    )
}

fn valid_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Writes `bytes` as `<dir>/<sha256>.wasm` (temp file + rename).
fn store(
    dir: &std::path::Path,
    bytes: &[u8],
) -> anyhow::Result<(std::path::PathBuf, String, usize)> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let sha: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = dir.join(format!("{sha}.wasm"));
    if !path.exists() {
        // A name of its own per upload: two of the same bytes at once do
        // not write one file.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".{sha}.{}.{n}.part", std::process::id()));
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
    }
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    Ok((path, sha, bytes.len()))
}
