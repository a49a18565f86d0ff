//! Writing key material: private files are created 0600 (the mode given
//! to `open`, never a chmod after, so there is no moment where the secret
//! is readable by others) and their directories 0700.
//!
//! Every write goes to a temporary file in the same directory, created
//! with its final mode, then renamed over the target: a crash leaves the
//! old file or the new one, never half of one, and an existing file with
//! looser permissions is replaced, not reused.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Mode of keys, passwords, the password file.
pub const PRIVATE: u32 = 0o600;
/// Mode of certificates, the ACL, mosquitto.conf.
pub const PUBLIC: u32 = 0o644;
/// Mode of the directories `hearth certs` creates.
pub const DIR: u32 = 0o700;

/// Creates `dir` and its missing parents with mode 0700 (existing ones are
/// left as they are).
pub fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR)
        .create(dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))
}

/// Writes a secret: mode 0600, parent directories 0700.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_with_mode(path, bytes, PRIVATE)
}

/// Writes a non-secret file (certificate, ACL, config): mode 0644, parent
/// directories 0700.
pub fn write_public(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_with_mode(path, bytes, PUBLIC)
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure_dir(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{}: not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        // A leftover of a crashed run: ours to remove (same pid is unlikely,
        // but create_new below must not fail on it).
        let _ = std::fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("writing {}: {e}", path.display())
    })
}

/// Reads a UTF-8 file if it exists (None if it does not).
pub fn read_optional(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn modes_even_over_a_loose_existing_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a/b/secret");
        write_private(&p, b"one").unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
        let loose = tmp.path().join("loose");
        std::fs::write(&loose, b"x").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o666)).unwrap();
        write_private(&loose, b"two").unwrap();
        assert_eq!(mode(&loose), 0o600);
        assert_eq!(std::fs::read(&loose).unwrap(), b"two");
        let public = tmp.path().join("c/cert.pem");
        write_public(&public, b"cert").unwrap();
        assert_eq!(mode(&public), 0o644);
        // no temporary file left behind
        assert_eq!(
            std::fs::read_dir(tmp.path().join("a/b")).unwrap().count(),
            1
        );
        assert_eq!(read_optional(&tmp.path().join("none")).unwrap(), None);
    }
}
