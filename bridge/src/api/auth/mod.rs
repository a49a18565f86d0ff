//! Who may use the API: long-lived access tokens from the data directory
//! (`tokens`), checked for the WebSocket auth phase and REST's
//! `Authorization: Bearer`, with a failed-attempt limit per address
//! (`limiter`). The token file is re-read when it changes, so a running
//! bridge sees `hearth token create`/`revoke` at once; a revoked token's open
//! WebSocket connections are closed. Secrets are never logged.

pub mod limiter;
pub mod tokens;

use limiter::Limiter;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// The token a client authenticated with (never its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
}

/// Why a credential was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthError {
    Invalid,
    /// Too many failures from this address; retry after this long.
    Blocked(Duration),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // HA's own wording, which clients may match on.
            AuthError::Invalid => f.write_str("Invalid access token or password"),
            AuthError::Blocked(d) => write!(
                f,
                "Too many failed authentication attempts from this address; retry in {} s",
                d.as_secs().max(1)
            ),
        }
    }
}

struct Loaded {
    /// (modified, length) of the file when read; `None` if it did not exist.
    stamp: Option<(SystemTime, u64)>,
    by_digest: HashMap<String, TokenInfo>,
}

pub struct Authenticator {
    data_dir: PathBuf,
    loaded: Mutex<Loaded>,
    limiter: Mutex<Limiter>,
    /// Bumped whenever the token set changes; sessions re-check theirs.
    generation: watch::Sender<u64>,
}

impl Authenticator {
    pub fn new(data_dir: &Path, max_failures: u32, window: Duration) -> anyhow::Result<Self> {
        let auth = Authenticator {
            data_dir: data_dir.to_path_buf(),
            loaded: Mutex::new(Loaded {
                stamp: None,
                by_digest: HashMap::new(),
            }),
            limiter: Mutex::new(Limiter::new(max_failures, window)),
            generation: watch::Sender::new(0),
        };
        auth.reload()?;
        let n = auth.lock_loaded().by_digest.len();
        if n == 0 {
            tracing::warn!(
                "no access tokens in {}: the WebSocket and REST APIs refuse everyone until you run `hearth token create --name NAME --data-dir {}`",
                tokens::path(data_dir).display(),
                data_dir.display()
            );
        }
        Ok(auth)
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stamp(&self) -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(tokens::path(&self.data_dir)).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }

    /// Re-reads the token file if it changed. A file that cannot be read
    /// keeps the last good set (and says why).
    pub fn reload(&self) -> anyhow::Result<()> {
        // One lock across stat, read and store: two reloads racing must not
        // store an older token set after a newer one.
        let mut loaded = self.lock_loaded();
        let stamp = self.stamp();
        if loaded.stamp == stamp && stamp.is_some() {
            return Ok(());
        }
        let records = tokens::load(&self.data_dir)?;
        let by_digest = records
            .into_iter()
            .map(|r| {
                (
                    r.sha256,
                    TokenInfo {
                        id: r.id,
                        name: r.name,
                    },
                )
            })
            .collect::<HashMap<_, _>>();
        if loaded.by_digest != by_digest {
            loaded.by_digest = by_digest;
            self.generation.send_modify(|g| *g += 1);
        }
        loaded.stamp = stamp;
        Ok(())
    }

    /// Checks a presented secret from `ip`, counting failures.
    pub fn verify(&self, secret: &str, ip: IpAddr) -> Result<TokenInfo, AuthError> {
        if let Err(e) = self.reload() {
            tracing::error!("access tokens: {e:#}; keeping the tokens read before");
        }
        let digest = tokens::digest(secret);
        // Check, look up and count under one lock, so parallel attempts from
        // one address cannot all pass the check before a failure counts.
        let mut limiter = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        limiter.check(ip, now).map_err(AuthError::Blocked)?;
        if let Some(info) = self.lock_loaded().by_digest.get(&digest) {
            return Ok(info.clone());
        }
        limiter.record_failure(ip, now);
        drop(limiter);
        tracing::warn!("failed API authentication from {ip}");
        Err(AuthError::Invalid)
    }

    /// Whether a token id is still valid (after a possible revocation).
    pub fn is_valid(&self, id: &str) -> bool {
        self.lock_loaded().by_digest.values().any(|t| t.id == id)
    }

    /// Changes whenever the token set does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Polls the token file once a second so revocations close open
    /// connections even when nobody authenticates.
    pub fn spawn_watcher(
        self: &std::sync::Arc<Self>,
        mut shutdown: crate::shutdown::Shutdown,
    ) -> tokio::task::JoinHandle<()> {
        let auth = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.wait() => break,
                }
                if let Err(e) = auth.reload() {
                    tracing::error!("access tokens: {e:#}; keeping the tokens read before");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_new_and_revoked_tokens_without_restart() {
        let dir = tempfile::tempdir().unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let auth = Authenticator::new(dir.path(), 100, Duration::from_secs(60)).unwrap();
        let (rec, secret) = tokens::create(dir.path(), "script").unwrap();
        let info = auth.verify(&secret, ip).unwrap();
        assert_eq!(info.id, rec.id);
        assert!(auth.is_valid(&rec.id));
        let changes = auth.changes();
        tokens::revoke(dir.path(), &rec.id).unwrap();
        assert_eq!(auth.verify(&secret, ip), Err(AuthError::Invalid));
        assert!(!auth.is_valid(&rec.id));
        assert!(changes.has_changed().unwrap());
    }

    #[test]
    fn blocked_addresses_are_not_even_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (_, secret) = tokens::create(dir.path(), "script").unwrap();
        let auth = Authenticator::new(dir.path(), 2, Duration::from_secs(60)).unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(auth.verify("wrong", ip), Err(AuthError::Invalid));
        assert_eq!(auth.verify("wrong", ip), Err(AuthError::Invalid));
        assert!(matches!(
            auth.verify(&secret, ip),
            Err(AuthError::Blocked(_))
        ));
        assert!(auth.verify(&secret, "192.0.2.2".parse().unwrap()).is_ok());
    }
}
