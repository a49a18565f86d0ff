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
//! - Quota: at most [`MAX_FILES`] files and [`MAX_TOTAL`] bytes in
//!   `uploads/`; after each upload the oldest files (by modification time)
//!   go until both hold, except the one just stored and those a loaded
//!   plugin runs or a swap back would restore (its remembered `wasm`s).
//!   A path someone has yet to pass to `load`/`swap` can be evicted by 64
//!   later uploads; uploading it again brings it back.
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

/// Most files kept in `<data_dir>/uploads`.
pub const MAX_FILES: usize = 64;

/// Most bytes kept in `<data_dir>/uploads`.
pub const MAX_TOTAL: u64 = 256 << 20;

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
    let in_use = in_use(api);
    let result = tokio::task::spawn_blocking(move || {
        let stored = store(&dir, &body)?;
        if let Err(e) = prune(&dir, &stored.0, &in_use, MAX_FILES, MAX_TOTAL) {
            tracing::warn!("plugin uploads: could not prune {}: {e}", dir.display());
        }
        Ok::<_, anyhow::Error>(stored)
    })
    .await;
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

/// The `.wasm` paths loaded plugins run, and those a swap back restores.
fn in_use(api: &Api) -> std::collections::HashSet<std::path::PathBuf> {
    let mut paths = std::collections::HashSet::new();
    for p in api.plugins.list() {
        if let Some(rc) = api.plugins.running_config(&p.name) {
            paths.extend(rc.remembered.into_iter().map(std::path::PathBuf::from));
        }
        paths.insert(std::path::PathBuf::from(p.wasm));
    }
    paths
        .into_iter()
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .collect()
}

/// Removes the oldest `.wasm` files of `dir` (by modification time) until
/// at most `max_files` and `max_bytes` remain, never `keep` nor a path in
/// `in_use`. Returns the files removed.
fn prune(
    dir: &std::path::Path,
    keep: &std::path::Path,
    in_use: &std::collections::HashSet<std::path::PathBuf>,
    max_files: usize,
    max_bytes: u64,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "wasm") {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        files.push((mtime, meta.len(), path));
    }
    let mut count = files.len();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    let mut removed = Vec::new();
    for (_, len, path) in files {
        if count <= max_files && total <= max_bytes {
            break;
        }
        if path == keep || in_use.contains(&path) {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            count -= 1;
            total = total.saturating_sub(len);
            removed.push(path);
        }
    }
    Ok(removed)
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
    std::fs::create_dir_all(dir)?;
    let sha: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = dir.join(format!("{sha}.wasm"));
    if !path.exists() {
        crate::fsutil::write_atomically(&path, bytes)?;
    }
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    Ok((path, sha, bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn put(dir: &std::path::Path, name: &str, len: usize, age_s: u64) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, vec![0u8; len]).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(age_s))
            .unwrap();
        std::fs::canonicalize(&p).unwrap()
    }

    /// Over the count or the size, the oldest go first, except the new
    /// file and those in use.
    #[test]
    fn quota_evicts_oldest_but_not_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let oldest_in_use = put(d, "a.wasm", 10, 500);
        let old = put(d, "b.wasm", 10, 400);
        let mid = put(d, "c.wasm", 10, 300);
        let young = put(d, "d.wasm", 10, 200);
        let new = put(d, "e.wasm", 10, 0);
        let other = put(d, "notes.txt", 10, 900);
        let in_use = std::collections::HashSet::from([oldest_in_use.clone()]);
        // Count: 5 files, at most 3.
        let removed = prune(d, &new, &in_use, 3, u64::MAX).unwrap();
        assert_eq!(removed, vec![old.clone(), mid.clone()]);
        assert!(oldest_in_use.exists() && young.exists() && new.exists() && other.exists());
        // Size: 30 bytes left, at most 20: `young` goes, never `new`.
        let removed = prune(d, &new, &in_use, 64, 20).unwrap();
        assert_eq!(removed, vec![young]);
        // Only protected files left over the limit: nothing more goes.
        assert!(prune(d, &new, &in_use, 1, 0).unwrap().is_empty());
        assert!(new.exists() && oldest_in_use.exists());
    }
}
