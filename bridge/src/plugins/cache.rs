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
//! it as native code), so each file starts with a header carrying the
//! SHA-256 of the artifact: a truncated or corrupted file fails the check,
//! is logged and rebuilt, and is never handed to wasmtime.

use anyhow::Context;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 16] = b"HEARTH-CWASM-v1\n";

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

#[derive(Debug, Clone)]
pub struct CodeCache {
    dir: Option<PathBuf>,
}

impl CodeCache {
    /// A cache in `dir` (created on first write); `None` disables it.
    pub fn new(dir: Option<PathBuf>) -> Self {
        CodeCache { dir }
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
            Ok(file) => match verified(&file) {
                Some(artifact) => {
                    // SAFETY: the checksum proves these are the bytes this
                    // cache wrote from `Engine::precompile_component`, and
                    // the file name binds them to this engine's settings.
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
                        "plugin cache {}: corrupt (bad header or checksum); recompiling",
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
        if let Err(e) = write(&path, &artifact) {
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

/// The artifact inside a cache file, if its header and checksum hold.
fn verified(file: &[u8]) -> Option<&[u8]> {
    let rest = file.strip_prefix(MAGIC.as_slice())?;
    if rest.len() < 32 {
        return None;
    }
    let (sum, artifact) = rest.split_at(32);
    (Sha256::digest(artifact).as_slice() == sum).then_some(artifact)
}

/// Writes header + artifact to a temporary file, then renames it into
/// place, so a crash never leaves a half-written entry under the real name.
fn write(path: &Path, artifact: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("cache path has no directory")?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut bytes = Vec::with_capacity(MAGIC.len() + 32 + artifact.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&Sha256::digest(artifact));
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
        let cache = CodeCache::new(Some(dir.path().to_path_buf()));
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
    fn engine_settings_and_file_contents_key_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache::new(Some(dir.path().to_path_buf()));
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
