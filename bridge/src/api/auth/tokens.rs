//! Long-lived access tokens, as `hearth token create|list|revoke` manage them.
//!
//! The file `<data-dir>/access_tokens.json` holds, per token, an id, a name,
//! the creation time and the SHA-256 digest of the secret; never the secret.
//! A secret is 256 random bits from the OS, so a plain digest is enough (a
//! slow password hash protects guessable secrets; these are not). The file
//! is replaced atomically (write, then rename) with mode 0600.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "access_tokens.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Short public id (used by `revoke` and as the context's `user_id`).
    pub id: String,
    pub name: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// Hex SHA-256 of the secret.
    pub sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    version: u32,
    tokens: Vec<TokenRecord>,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Hex SHA-256 of a presented secret.
pub fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every token in the data directory (none if the file does not exist).
pub fn load(data_dir: &Path) -> anyhow::Result<Vec<TokenRecord>> {
    let p = path(data_dir);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => anyhow::bail!("{}: {e}", p.display()),
    };
    let file: TokenFile = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a Hearth token file ({e}); expected {{\"version\":1,\"tokens\":[…]}}",
            p.display()
        )
    })?;
    Ok(file.tokens)
}

fn save(data_dir: &Path, tokens: Vec<TokenRecord>) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| anyhow::anyhow!("--data-dir {}: {e}", data_dir.display()))?;
    let p = path(data_dir);
    let text = serde_json::to_string_pretty(&TokenFile { version: 1, tokens })?;
    crate::fsutil::write_atomically_mode(&p, text.as_bytes(), Some(0o600))
        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    Ok(())
}

/// Creates a token; returns its record and the secret, which exists only
/// in this return value.
pub fn create(data_dir: &Path, name: &str) -> anyhow::Result<(TokenRecord, String)> {
    let name = name.trim();
    anyhow::ensure!(
        !name.is_empty() && name.len() <= 100,
        "--name must be 1 to 100 characters"
    );
    let mut tokens = load(data_dir)?;
    let mut secret = [0u8; 32];
    let mut id = [0u8; 4];
    getrandom::fill(&mut secret)
        .and_then(|()| getrandom::fill(&mut id))
        .map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    let secret = hex(&secret);
    let record = TokenRecord {
        id: hex(&id),
        name: name.into(),
        created: jiff::Timestamp::now()
            .round(jiff::Unit::Second)?
            .to_string(),
        sha256: digest(&secret),
    };
    tokens.push(record.clone());
    save(data_dir, tokens)?;
    Ok((record, secret))
}

/// Removes a token by id; returns it, or an error naming the known ids.
pub fn revoke(data_dir: &Path, id: &str) -> anyhow::Result<TokenRecord> {
    let mut tokens = load(data_dir)?;
    let Some(i) = tokens.iter().position(|t| t.id == id) else {
        let known: Vec<&str> = tokens.iter().map(|t| t.id.as_str()).collect();
        anyhow::bail!(
            "no token with id `{id}` in {} (known: {})",
            path(data_dir).display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    };
    let removed = tokens.remove(i);
    save(data_dir, tokens)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_revoke_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (a, secret) = create(dir.path(), "node-red").unwrap();
        let (b, _) = create(dir.path(), "script").unwrap();
        assert_eq!(secret.len(), 64);
        assert_ne!(a.id, b.id);
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        assert!(!text.contains(&secret), "the secret itself is never stored");
        assert!(text.contains(&digest(&secret)));
        assert_eq!(load(dir.path()).unwrap().len(), 2);
        assert_eq!(revoke(dir.path(), &a.id).unwrap().name, "node-red");
        let left = load(dir.path()).unwrap();
        assert_eq!(left, vec![b.clone()]);
        let err = revoke(dir.path(), "nope").unwrap_err().to_string();
        assert!(err.contains(&b.id), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_corrupt_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "{not json").unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(FILE_NAME) && err.contains("expected"), "{err}");
    }
}
