//! Compiled plugins on disk: a component is compiled once
//! (`Engine::precompile_component`) and loaded from the cache afterwards
//! (`Component::deserialize`, ≈ 1 ms instead of ≈ 100–200 ms), so a
//! restart or a swap back to a known version does not recompile.
//!
//! Files live in `<data-dir>/cache/plugins/<engine>-<wasm>.cwasm`, where
//! `<engine>` hashes wasmtime's own compatibility key (its version, target
//! and every setting that changes code: fuel, epochs …) and `<wasm>` is the
//! SHA-256 of the component's bytes. A different engine or a changed file
//! therefore never reads a stale entry.
//!
//! Deserializing is only sound for code this host compiled (wasmtime runs
//! it as native code), so each file starts with a header carrying an
//! HMAC-SHA256 of the artifact, keyed by a random secret in
//! `<data-dir>/cache/plugins.key` (mode 0600, outside the cached files): a
//! truncated or corrupted file, or one written by anyone who cannot read
//! that key, fails the check, is logged and rebuilt, and is never handed to
//! wasmtime. Whoever can read the key can run code as the bridge: the data
//! directory is trusted like the binary.

use anyhow::Context;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 16] = b"HEARTH-CWASM-v2\n";

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    /// Loaded from a valid cache file.
    Hit,
    /// Compiled, then written to the cache.
    Compiled,
    /// The cache file was corrupt: compiled again and rewritten.
    Rebuilt,
    /// No cache directory: compiled in memory.
    Uncached,
}

#[derive(Clone)]
pub struct CodeCache {
    dir: Option<PathBuf>,
    key: [u8; 32],
}

impl CodeCache {
    /// A cache in `dir` (created on first write), authenticated with the key
    /// in `dir.key` (created if missing); `None` disables it. A key that
    /// cannot be read or made disables the cache, with a warning.
    pub fn new(dir: Option<PathBuf>) -> Self {
        let Some(dir) = dir else {
            return CodeCache {
                dir: None,
                key: [0; 32],
            };
        };
        match load_key(&dir.with_extension("key")) {
            Ok(key) => CodeCache {
                dir: Some(dir),
                key,
            },
            Err(e) => {
                tracing::warn!(
                    "plugin code cache {}: no key ({e:#}); plugins are compiled at every load",
                    dir.display()
                );
                CodeCache {
                    dir: None,
                    key: [0; 32],
                }
            }
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The cache file for these bytes under this engine.
    pub fn path_for(&self, engine: &Engine, wasm: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let wasm_hash = hex(&Sha256::digest(wasm));
        Some(dir.join(format!("{:016x}-{}.cwasm", h.finish(), &wasm_hash[..32])))
    }

    /// The compiled component for `wasm`, from the cache when possible.
    pub fn component(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> anyhow::Result<(Component, CacheOutcome)> {
        let Some(path) = self.path_for(engine, wasm) else {
            let c = Component::new(engine, wasm).map_err(anyhow::Error::from)?;
            return Ok((c, CacheOutcome::Uncached));
        };
        let mut outcome = CacheOutcome::Compiled;
        match std::fs::read(&path) {
            Ok(file) => match verified(&self.key, &file) {
                Some(artifact) => {
                    // SAFETY: the HMAC, keyed by a secret only this user can
                    // read, proves these are bytes this cache wrote from
                    // `Engine::precompile_component`; the file name binds
                    // them to this engine's settings.
                    match unsafe { Component::deserialize(engine, artifact) } {
                        Ok(c) => return Ok((c, CacheOutcome::Hit)),
                        Err(e) => {
                            tracing::warn!(
                                "plugin cache {}: wasmtime refused it ({e}); recompiling",
                                path.display()
                            );
                            outcome = CacheOutcome::Rebuilt;
                        }
                    }
                }
                None => {
                    tracing::warn!(
                        "plugin cache {}: corrupt or not written by this bridge (bad header or HMAC); recompiling",
                        path.display()
                    );
                    outcome = CacheOutcome::Rebuilt;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("plugin cache {}: {e}; recompiling", path.display()),
        }
        let artifact = engine
            .precompile_component(wasm)
            .map_err(anyhow::Error::from)?;
        if let Err(e) = write(&self.key, &path, &artifact) {
            tracing::warn!(
                "plugin cache {}: could not write ({e:#}); the plugin runs, uncached",
                path.display()
            );
        }
        // SAFETY: compiled just now by this engine.
        let c =
            unsafe { Component::deserialize(engine, &artifact) }.map_err(anyhow::Error::from)?;
        Ok((c, outcome))
    }
}

fn mac(key: &[u8; 32]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length")
}

/// The artifact inside a cache file, if its header and HMAC hold.
fn verified<'a>(key: &[u8; 32], file: &'a [u8]) -> Option<&'a [u8]> {
    let rest = file.strip_prefix(MAGIC.as_slice())?;
    if rest.len() < 32 {
        return None;
    }
    let (tag, artifact) = rest.split_at(32);
    let mut m = mac(key);
    m.update(artifact);
    // Constant-time comparison.
    m.verify_slice(tag).ok().map(|()| artifact)
}

/// The cache's secret: 32 random bytes in a 0600 file, made on first use.
fn load_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(bytes) => bytes
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("{} is not a 32-byte key", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            use std::io::Write;
            opts.open(path)
                .and_then(|mut f| f.write_all(&key))
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes header + artifact to a temporary file, then renames it into
/// place, so a crash never leaves a half-written entry under the real name.
fn write(key: &[u8; 32], path: &Path, artifact: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("cache path has no directory")?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut m = mac(key);
    m.update(artifact);
    let mut bytes = Vec::with_capacity(MAGIC.len() + 32 + artifact.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&m.finalize().into_bytes());
    bytes.extend_from_slice(artifact);
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let mut c = wasmtime::Config::new();
        c.wasm_component_model(true);
        Engine::new(&c).unwrap()
    }

    /// The smallest component there is, in text form: an empty one.
    fn wasm() -> Vec<u8> {
        // (component) in binary: magic, component version/layer.
        vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]
    }

    #[test]
    fn compiles_once_then_hits_and_rebuilds_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache::new(Some(dir.path().join("plugins")));
        let engine = engine();
        let (_, first) = cache.component(&engine, &wasm()).unwrap();
        assert_eq!(first, CacheOutcome::Compiled);
        let (_, second) = cache.component(&engine, &wasm()).unwrap();
        assert_eq!(second, CacheOutcome::Hit);

        // Flip one byte of the artifact: detected, rebuilt, then a hit again.
        let path = cache.path_for(&engine, &wasm()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (_, third) = cache.component(&engine, &wasm()).unwrap();
        assert_eq!(third, CacheOutcome::Rebuilt);
        // Truncated to nothing: also rebuilt.
        std::fs::write(&path, b"").unwrap();
        assert_eq!(
            cache.component(&engine, &wasm()).unwrap().1,
            CacheOutcome::Rebuilt
        );
        assert_eq!(
            cache.component(&engine, &wasm()).unwrap().1,
            CacheOutcome::Hit
        );
    }

    #[test]
    fn a_file_with_a_valid_plain_checksum_but_no_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache::new(Some(dir.path().join("plugins")));
        let engine = engine();
        cache.component(&engine, &wasm()).unwrap();
        let path = cache.path_for(&engine, &wasm()).unwrap();
        // Someone who cannot read the key writes their own artifact with a
        // well-formed header: refused and rebuilt, never deserialized.
        let artifact = engine.precompile_component(&wasm()).unwrap();
        let mut forged = MAGIC.to_vec();
        forged.extend_from_slice(&Sha256::digest(&artifact));
        forged.extend_from_slice(&artifact);
        std::fs::write(&path, forged).unwrap();
        assert_eq!(
            cache.component(&engine, &wasm()).unwrap().1,
            CacheOutcome::Rebuilt
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("plugins.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn engine_settings_and_file_contents_key_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache::new(Some(dir.path().join("plugins")));
        let plain = engine();
        let mut c = wasmtime::Config::new();
        c.wasm_component_model(true);
        c.consume_fuel(true);
        let fueled = Engine::new(&c).unwrap();
        assert_ne!(
            cache.path_for(&plain, &wasm()),
            cache.path_for(&fueled, &wasm())
        );
        let mut other = wasm();
        other.push(0);
        assert_ne!(
            cache.path_for(&plain, &wasm()),
            cache.path_for(&plain, &other)
        );
    }
}
