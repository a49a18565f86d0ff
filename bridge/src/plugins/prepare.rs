//! Everything that can reject a plugin happens here, before it touches the
//! running system: name and limits checked, component compiled (or loaded
//! from the cache) and linked against this host's WIT version, instantiated,
//! `init` with its config, `describe`d, and its description checked (the
//! entities it may drive, the entities it declares). A load or a swap only
//! proceeds with a [`Prepared`] plugin.

use super::PluginConfig;
use super::cache::CacheOutcome;
use super::engine::{CallTime, ControllerPre, HostState, MemoryCap, PluginEngine, wit};
use super::instance::{PluginFault, PluginInstance};
use super::logbook::LogBook;
use crate::entity::{Component, EntityStore};
use anyhow::Context;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Host names of the entities every plugin device has.
pub const RESERVED_KEYS: [&str; 2] = ["status", "fault"];
/// Shortest tick period granted, ms of host time.
pub const MIN_TICK_MS: u32 = 100;
/// Most entities a plugin may declare (each is a discovery config in HA).
pub const MAX_ENTITIES: usize = 64;
/// Most entities a plugin may read or drive.
pub const MAX_ENTITY_REFS: usize = 1024;

/// A plugin that passed every check, with a live, initialised instance.
pub struct Prepared {
    pub cfg: PluginConfig,
    pub config_json: String,
    pub pre: ControllerPre<HostState>,
    pub wit_version: String,
    pub cache: CacheOutcome,
    pub instance: PluginInstance,
    pub desc: wit::Description,
    /// Compile (or cache load) + link.
    pub load_time: Duration,
    /// Everything: read, load, instantiate, init, describe, checks.
    pub prepare_time: Duration,
}

impl Prepared {
    /// The tick period granted (0 = never ticked).
    pub fn tick_ms(&self) -> u32 {
        tick_ms(&self.desc)
    }
}

pub fn tick_ms(desc: &wit::Description) -> u32 {
    match desc.tick_period_ms {
        0 => 0,
        t => t.max(MIN_TICK_MS),
    }
}

/// Reads, compiles, instantiates, initialises and describes a plugin.
pub fn prepare(
    engine: &PluginEngine,
    cfg: PluginConfig,
    host: &HostServices<'_>,
) -> anyhow::Result<Prepared> {
    let started = Instant::now();
    let name = cfg.name.clone();
    hearth_node_core::validate_node_id(&name)
        .map_err(|e| anyhow::anyhow!("plugin name `{name}`: {e}"))?;
    cfg.limits
        .validate()
        .with_context(|| format!("plugin `{name}`"))?;
    anyhow::ensure!(
        cfg.config.is_object(),
        "plugin `{name}`: config must be a table (a JSON object), got `{}`",
        cfg.config
    );
    let bytes = super::builtin::load_bytes(&cfg.wasm)?;
    let loaded = engine
        .load(&bytes)
        .with_context(|| format!("plugin `{name}` ({})", cfg.wasm))?;
    let config_json =
        serde_json::to_string(&cfg.config).context("plugin config is not representable as JSON")?;
    let mut instance = instantiate(engine, &loaded.pre, &name, host, &cfg, &config_json)
        .map_err(|f| anyhow::anyhow!("plugin `{name}` {f}"))?;
    let desc = instance
        .describe()
        .map_err(|f| anyhow::anyhow!("plugin `{name}` describe: {f}"))?;
    check_description(&name, &desc, cfg.drives.as_deref())?;
    Ok(Prepared {
        cfg,
        config_json,
        pre: loaded.pre,
        wit_version: loaded.wit_version,
        cache: loaded.cache,
        instance,
        desc,
        load_time: loaded.load_time,
        prepare_time: started.elapsed(),
    })
}

/// A fresh instance, `init`ed with the config.
/// What a plugin instance may reach on the host.
pub struct HostServices<'a> {
    pub store: &'a Arc<EntityStore>,
    pub logs: &'a Arc<LogBook>,
    pub forecasts: &'a Arc<crate::forecast::Forecasts>,
}

pub fn instantiate(
    engine: &PluginEngine,
    pre: &ControllerPre<HostState>,
    name: &str,
    host: &HostServices<'_>,
    cfg: &PluginConfig,
    config_json: &str,
) -> Result<PluginInstance, PluginFault> {
    let HostServices {
        store,
        logs,
        forecasts,
    } = *host;
    let state = HostState {
        plugin: name.into(),
        store: store.clone(),
        clock: store.clock(),
        limiter: MemoryCap::new((cfg.limits.memory_mib as usize) << 20),
        logs: logs.clone(),
        forecasts: forecasts.clone(),
        time: CallTime::new(),
        outcomes: Default::default(),
    };
    let mut instance = PluginInstance::new(&engine.engine, pre, state, &cfg.limits)?;
    instance.init(config_json)?;
    Ok(instance)
}

/// What the plugin says it reads, drives and owns, checked.
pub fn check_description(
    name: &str,
    desc: &wit::Description,
    allowed: Option<&[String]>,
) -> anyhow::Result<()> {
    if let Some(allowed) = allowed
        && let Some(bad) = desc.drives.iter().find(|d| !allowed.contains(d))
    {
        anyhow::bail!(
            "plugin `{name}` wants to drive `{bad}`, which its config does not allow (drives = {allowed:?})"
        );
    }
    for id in desc.reads.iter().chain(&desc.drives) {
        anyhow::ensure!(
            !crate::entity::domain_of(id).is_empty() && !id.ends_with('.'),
            "plugin `{name}` names `{id}`, which is not an entity id (`<domain>.<object_id>`)"
        );
    }
    anyhow::ensure!(
        desc.entities.len() <= MAX_ENTITIES,
        "plugin `{name}` declares {} entities (at most {MAX_ENTITIES})",
        desc.entities.len()
    );
    anyhow::ensure!(
        desc.reads.len() <= MAX_ENTITY_REFS && desc.drives.len() <= MAX_ENTITY_REFS,
        "plugin `{name}` reads or drives more than {MAX_ENTITY_REFS} entities"
    );
    let mut seen = HashSet::new();
    for decl in &desc.entities {
        let texts = [
            Some(&decl.name),
            decl.device_class.as_ref(),
            decl.unit_of_measurement.as_ref(),
            decl.state_class.as_ref(),
        ];
        anyhow::ensure!(
            texts.iter().flatten().all(|t| t.len() <= 255),
            "plugin `{name}` declares entity `{}` with a name, class or unit over 255 bytes",
            decl.object_id
        );
        check_object_id(&decl.object_id)
            .map_err(|e| anyhow::anyhow!("plugin `{name}` declares an invalid entity: {e}"))?;
        anyhow::ensure!(
            seen.insert(&decl.object_id),
            "plugin `{name}` declares entity `{}` twice",
            decl.object_id
        );
        Component::parse(&decl.component)
            .filter(|c| matches!(c, Component::Sensor | Component::BinarySensor))
            .with_context(|| {
                format!(
                    "plugin `{name}` declares entity `{}` as `{}`; only sensor and binary_sensor are supported",
                    decl.object_id, decl.component
                )
            })?;
    }
    Ok(())
}

/// A plugin entity's object id: `[a-z0-9_]{1,64}`, not one of the host's.
pub fn check_object_id(id: &str) -> Result<(), String> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(format!(
            "entity id `{id}` must be 1 to 64 characters of [a-z0-9_]"
        ));
    }
    if RESERVED_KEYS.contains(&id) {
        return Err(format!("entity id `{id}` is reserved for the host"));
    }
    Ok(())
}
