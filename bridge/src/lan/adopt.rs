//! Adoption: a pending device becomes a configured one. The device's table
//! (`[[shelly]]`, `[[shelly_pro4pm]]`, `[[shelly_em]]`, …) is appended to
//! the config file with toml_edit, so the file's comments and layout stay
//! as the user wrote them; the whole new file is checked as
//! [`Config::from_toml`] checks it at start (duplicate ids, ranges, unknown
//! keys) before it replaces the old one (written beside it, then renamed:
//! a crash leaves the old file or the new one, never half of one). Then the
//! device's driver starts with the same [`DriverContext`] as configured
//! ones, so it registers its entities and Home Assistant discovery follows.
//!
//! Refused, with the reason: a bridge started without a config file (`hearth
//! run --config FILE` has one), a device already configured (same id,
//! address or MAC), a driver this build does not have, options the table
//! does not take.

use super::pending::PendingDevice;
use crate::config::Config;
use crate::drivers::{self, DriverContext};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::task::JoinHandle;

/// Tables an adoption can write in this build (the kinds whose driver
/// exists here).
pub const ADOPTABLE: &[&str] = &[
    "shelly",
    "shelly_gen1",
    "shelly_pro4pm",
    "shelly_em",
    "broadlink",
];

/// What the config already drives: ids, `host:port` addresses, MACs.
#[derive(Debug, Default, Clone)]
pub struct Configured {
    ids: HashSet<String>,
    addresses: HashSet<String>,
    macs: HashSet<String>,
}

/// `aa:bb:cc:dd:ee:ff`, `AA-BB-…` or `aabbcc…` → 12 lower-case hex digits.
pub fn normalize_mac(mac: &str) -> String {
    mac.chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// `http://host[:port][/…]` or `host[:port]` → `host:port` (port 80 when
/// absent), lower case.
pub fn normalize_address(text: &str) -> String {
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .unwrap_or(text);
    let hostport = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    let has_port = match hostport.rfind(':') {
        Some(i) => {
            hostport[i + 1..].bytes().all(|b| b.is_ascii_digit()) && !hostport.ends_with(']')
        }
        None => false,
    };
    if has_port {
        hostport
    } else {
        format!("{hostport}:80")
    }
}

impl Configured {
    pub fn from_config(c: &Config) -> Self {
        let mut me = Configured::default();
        for s in &c.shelly {
            me.add(&s.id, Some(&s.url), None);
        }
        for s in &c.shelly_pro4pm {
            me.add(&s.id, s.host.as_deref(), None);
        }
        for s in &c.shelly_em {
            me.add(&s.id, Some(&s.host), None);
        }
        for s in &c.shelly_gen1 {
            me.add(&s.id, Some(&s.url), None);
        }
        for m in &c.meross {
            me.add(&m.id, Some(&m.url), None);
        }
        for b in &c.broadlink {
            me.add(&b.id, Some(&b.host), b.mac.as_deref());
        }
        for id in c
            .ir_ac
            .iter()
            .map(|a| &a.id)
            .chain(c.tasmota_strip.iter().map(|s| &s.id))
        {
            me.add(id, None, None);
        }
        me
    }

    pub fn add(&mut self, id: &str, address: Option<&str>, mac: Option<&str>) {
        self.ids.insert(id.to_string());
        if let Some(a) = address {
            self.addresses.insert(normalize_address(a));
        }
        if let Some(m) = mac {
            self.macs.insert(normalize_mac(m));
        }
    }

    /// Why `dev` counts as configured already, if it does.
    pub fn covers(&self, dev: &PendingDevice) -> Option<String> {
        if self.ids.contains(&dev.id) {
            return Some(format!("device id `{}` is configured", dev.id));
        }
        if self.addresses.contains(&normalize_address(&dev.address)) {
            return Some(format!("a configured device has address {}", dev.address));
        }
        match &dev.mac {
            Some(m) if self.macs.contains(&normalize_mac(m)) => {
                Some(format!("a configured device has MAC {m}"))
            }
            _ => None,
        }
    }

    pub fn has_id(&self, id: &str) -> bool {
        self.ids.contains(id)
    }
}

/// `adopt` request arguments beyond the pending id.
#[derive(Debug, Default, Clone)]
pub struct AdoptRequest {
    /// Friendly name (default: the device's own name, else its pending id).
    pub name: Option<String>,
    /// Driver keys of the table (`poll_interval_s`, `min_off_s`, `codes`,
    /// …); `id` here replaces the pending id as device id.
    pub options: Map<String, Value>,
}

/// Writes adopted devices into the config file and starts their drivers.
pub struct Adopter {
    file: Option<PathBuf>,
    ctx: DriverContext,
    pub configured: Mutex<Configured>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// One adoption at a time: each reads, edits and writes the file.
    writing: tokio::sync::Mutex<()>,
}

impl Adopter {
    pub fn new(config: &Config, ctx: DriverContext) -> Self {
        Adopter {
            file: config.file.clone(),
            ctx,
            configured: Mutex::new(Configured::from_config(config)),
            tasks: Mutex::new(Vec::new()),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn covers(&self, dev: &PendingDevice) -> Option<String> {
        self.configured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .covers(dev)
    }

    /// Adopts `dev`: returns `{id, kind, name, config_file}` or why not.
    pub async fn adopt(&self, dev: &PendingDevice, req: AdoptRequest) -> Result<Value, String> {
        let file = self.file.clone().ok_or_else(|| {
            "the bridge was started without a config file, so it has nowhere to write an adopted device (start it with `hearth run --config FILE`)".to_string()
        })?;
        if !ADOPTABLE.contains(&dev.kind.as_str()) {
            return Err(format!(
                "`{}` is a `{}` ({}), and this build has no [[{}]] driver to adopt it with",
                dev.id,
                dev.kind,
                clean(&dev.model),
                dev.kind
            ));
        }
        let mut options = req.options;
        let id = match options.remove("id") {
            None => dev.id.clone(),
            Some(Value::String(s)) => s,
            Some(other) => return Err(format!("options.id must be a string, got {other}")),
        };
        hearth_node_core::validate_node_id(&id).map_err(|e| format!("device id `{id}`: {e}"))?;
        let name = req
            .name
            .or_else(|| dev.name.clone())
            .unwrap_or_else(|| dev.id.clone());
        let table = device_table(dev, &id, &name, &options, self.ctx.clock.now_ms())?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();

        // One adoption at a time from here: the checks below and the write
        // must see the same file and the same configured set (two requests
        // at once would otherwise both pass the checks).
        let _writing = self.writing.lock().await;
        if let Some(why) = self.covers(dev) {
            return Err(format!("`{}` is already configured ({why})", dev.id));
        }
        if self
            .configured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .has_id(&id)
            || self.ctx.store.device(&id).is_some()
        {
            return Err(format!(
                "device id `{id}` is already in use; pass another in options.id"
            ));
        }
        let text = tokio::fs::read_to_string(&file)
            .await
            .map_err(|e| format!("reading config file {}: {e}", file.display()))?;
        let new_text = append_table(&text, &dev.kind, table)
            .map_err(|e| format!("config file {}: {e}", file.display()))?;
        let mut config = Config::from_toml(&new_text, &file.display().to_string())
            .map_err(|e| format!("the device's table would make the config invalid: {e:#}"))?;
        config.resolve_paths(&dir);
        // A Broadlink's code file is read (off the runtime) before anything
        // is written: a file that does not load refuses the adoption.
        let codes = match config.broadlink.iter().find(|b| b.id == id) {
            Some(b) if dev.kind == "broadlink" => Some(
                drivers::broadlink::smartir::SmartIrCodes::load_async(b.codes.clone())
                    .await
                    .map_err(|e| format!("options.codes: {e}"))?,
            ),
            _ => None,
        };
        write_replacing(&file, &new_text)
            .await
            .map_err(|e| format!("writing config file {}: {e}", file.display()))?;
        let task = self.spawn(&dev.kind, &id, &config, codes).map_err(|e| {
            format!(
                "`{id}` is written to {} but its driver did not start: {e:#}",
                file.display()
            )
        })?;
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
        self.configured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(&id, Some(&dev.address), dev.mac.as_deref());
        tracing::info!(
            "adopted {} `{id}` ({}, {}) into {}",
            dev.kind,
            clean(&dev.model),
            dev.address,
            file.display()
        );
        Ok(serde_json::json!({
            "id": id,
            "pending_id": dev.id,
            "kind": dev.kind,
            "name": name,
            "config_file": file.display().to_string(),
        }))
    }

    fn spawn(
        &self,
        kind: &str,
        id: &str,
        config: &Config,
        codes: Option<drivers::broadlink::smartir::SmartIrCodes>,
    ) -> anyhow::Result<JoinHandle<()>> {
        fn find<'a, T>(list: &'a [T], id: &str, get: impl Fn(&T) -> &str) -> anyhow::Result<&'a T> {
            list.iter()
                .find(|c| get(c) == id)
                .ok_or_else(|| anyhow::anyhow!("`{id}` is not in the written config"))
        }
        let ctx = &self.ctx;
        match kind {
            "shelly" => drivers::shelly::spawn(find(&config.shelly, id, |c| &c.id)?.clone(), ctx),
            "shelly_pro4pm" => drivers::shelly_pro4pm::spawn(
                find(&config.shelly_pro4pm, id, |c| &c.id)?.clone(),
                ctx,
            ),
            "shelly_em" => {
                drivers::shelly_em::spawn(find(&config.shelly_em, id, |c| &c.id)?.clone(), ctx)
            }
            "shelly_gen1" => {
                drivers::shelly_gen1::spawn(find(&config.shelly_gen1, id, |c| &c.id)?.clone(), ctx)
            }
            "broadlink" => {
                let cfg = find(&config.broadlink, id, |c| &c.id)?.clone();
                match codes {
                    Some(codes) => drivers::broadlink::spawn_with_codes(cfg, codes, ctx),
                    None => drivers::broadlink::spawn(cfg, ctx),
                }
            }
            other => anyhow::bail!("no driver for `{other}`"),
        }
    }

    /// The adopted drivers' tasks (they stop with the bridge's shutdown).
    pub fn take_tasks(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The table an adoption writes for `dev`, with a comment saying where it
/// came from.
fn device_table(
    dev: &PendingDevice,
    id: &str,
    name: &str,
    options: &Map<String, Value>,
    now_ms: i64,
) -> Result<toml_edit::Table, String> {
    let mut t = toml_edit::Table::new();
    t["id"] = toml_edit::value(id);
    t["name"] = toml_edit::value(name);
    match dev.kind.as_str() {
        "shelly" | "shelly_gen1" => t["url"] = toml_edit::value(format!("http://{}", dev.address)),
        "broadlink" => {
            if !options.contains_key("codes") {
                return Err(format!(
                    "a Broadlink drives an AC by its IR codes: give `options.codes`, the SmartIR climate code file (e.g. examples/ir-codes/smartir-climate-1381.json) of the AC `{}` points at",
                    dev.id
                ));
            }
            t["host"] = toml_edit::value(dev.address.as_str());
            if let Some(m) = &dev.mac {
                let colons: Vec<String> = m
                    .as_bytes()
                    .chunks(2)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                t["mac"] = toml_edit::value(colons.join(":"));
            }
        }
        _ => t["host"] = toml_edit::value(dev.address.as_str()),
    }
    for (k, v) in options {
        if IDENTITY_KEYS.contains(&k.as_str()) {
            return Err(format!(
                "options.{k} is refused: `{k}` says which device this is, and adoption takes it from the device found (`{}` at {}); to name the device use `name`, to choose its id `options.id`",
                dev.id, dev.address
            ));
        }
        if k == "codes" && !v.is_string() {
            return Err(format!(
                "options.codes must be a path (a string: the SmartIR code file, relative to the config file's directory), got {v}"
            ));
        }
        t[k.as_str()] =
            toml_edit::Item::Value(json_to_toml(v).map_err(|e| format!("options.{k}: {e}"))?);
    }
    // What the device said about itself goes into a comment: without
    // control characters (a newline would end the comment and start TOML).
    t.decor_mut().set_prefix(format!(
        "\n# Adopted from the network ({}, {} {}) on {}.\n",
        clean(&dev.found_by),
        clean(&dev.model),
        clean(dev.mac.as_deref().unwrap_or("")),
        crate::clock::iso8601(now_ms)
    ));
    Ok(t)
}

/// Keys an adoption request may not set: they say which device the table
/// drives (its address, MAC, MQTT topics), and come from the device found.
/// (`options.id` is Hearth's id for it, checked and taken apart; `name` is
/// the request's own field.)
pub const IDENTITY_KEYS: &[&str] = &["url", "host", "mac", "mqtt_id", "mqtt_prefix", "name"];

/// `text` without control characters, at most 64 characters: fit for a
/// one-line comment or a log line.
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

fn json_to_toml(v: &Value) -> Result<toml_edit::Value, String> {
    Ok(match v {
        Value::String(s) => s.as_str().into(),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().ok_or("not a number TOML can hold")?.into(),
        },
        Value::Array(a) => {
            let mut arr = toml_edit::Array::new();
            for x in a {
                arr.push(json_to_toml(x)?);
            }
            toml_edit::Value::Array(arr)
        }
        Value::Object(m) => {
            let mut t = toml_edit::InlineTable::new();
            for (k, x) in m {
                t.insert(k, json_to_toml(x)?);
            }
            toml_edit::Value::InlineTable(t)
        }
        Value::Null => return Err("TOML has no null; leave the key out".into()),
    })
}

/// `text` with `table` appended to the array of tables `key`.
pub fn append_table(text: &str, key: &str, table: toml_edit::Table) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let item = doc
        .entry(key)
        .or_insert_with(|| toml_edit::Item::ArrayOfTables(toml_edit::ArrayOfTables::new()));
    let aot = item
        .as_array_of_tables_mut()
        .ok_or_else(|| format!("`{key}` is not an array of tables ([[{key}]])"))?;
    aot.push(table);
    Ok(doc.to_string())
}

/// Writes `text` beside `file`, then renames it over `file` (keeping the
/// old file's permissions).
async fn write_replacing(file: &Path, text: &str) -> std::io::Result<()> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.toml".into());
    let tmp = file.with_file_name(format!(".{name}.adopt.tmp"));
    tokio::fs::write(&tmp, text).await?;
    if let Ok(meta) = tokio::fs::metadata(file).await {
        let _ = tokio::fs::set_permissions(&tmp, meta.permissions()).await;
    }
    tokio::fs::rename(&tmp, file).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_with_the_default_port() {
        assert_eq!(normalize_address("http://10.0.0.5"), "10.0.0.5:80");
        assert_eq!(normalize_address("http://10.0.0.5:8080/"), "10.0.0.5:8080");
        assert_eq!(normalize_address("Plug.Local"), "plug.local:80");
        assert_eq!(normalize_address("127.0.0.1:41000"), "127.0.0.1:41000");
    }

    #[test]
    fn an_appended_table_keeps_comments_and_existing_tables() {
        let text = "# my house\n[mqtt]\nport = 1883 # the broker\n\n[[shelly]]\nid = \"a\"\nname = \"A\"\nurl = \"http://10.0.0.2\"\n";
        let mut t = toml_edit::Table::new();
        t["id"] = toml_edit::value("b");
        let out = append_table(text, "shelly", t).unwrap();
        assert!(out.starts_with(text.trim_end()), "{out}");
        assert!(out.contains("port = 1883 # the broker"));
        let v: toml::Value = toml::from_str(&out).unwrap();
        assert_eq!(v["shelly"].as_array().unwrap().len(), 2);
        assert!(append_table("shelly = 1\n", "shelly", toml_edit::Table::new()).is_err());
    }

    fn plug() -> PendingDevice {
        PendingDevice {
            id: "shellyplusplugs-a8032ab1c2d3".into(),
            kind: "shelly".into(),
            address: "10.0.0.7:80".into(),
            model: "SNPL-00112EU".into(),
            name: None,
            mac: Some("a8032ab1c2d3".into()),
            firmware: None,
            found_by: "mdns".into(),
            first_seen_ms: 0,
            last_seen_ms: 0,
        }
    }

    #[test]
    fn a_model_with_a_newline_does_not_inject_a_table() {
        let mut dev = plug();
        dev.kind = "shelly_gen1".into();
        dev.model =
            "SHPLG-S\n[[shelly_gen1]]\nid = \"evil\"\nname = \"E\"\nurl = \"http://10.9.9.9\"\n#"
                .into();
        dev.mac = Some("a8032ab1c2d3\r\n[x]".into());
        let t = device_table(&dev, "kettle", "Kettle", &Map::new(), 0).unwrap();
        let out = append_table("[mqtt]\nport = 1883\n", "shelly_gen1", t).unwrap();
        let v: toml::Value = toml::from_str(&out).unwrap();
        let tables = v["shelly_gen1"].as_array().unwrap();
        assert_eq!(tables.len(), 1, "one table, not an injected second: {out}");
        assert_eq!(tables[0]["id"].as_str(), Some("kettle"));
        assert!(v.get("x").is_none(), "{out}");
        assert_eq!(
            out.matches("[[shelly_gen1]]").count(),
            2,
            "the header and the comment's text: {out}"
        );
    }

    #[test]
    fn options_cannot_say_which_device_it_is() {
        let dev = plug();
        for key in ["url", "host", "mac", "mqtt_id", "mqtt_prefix", "name"] {
            let mut opts = Map::new();
            opts.insert(key.into(), serde_json::json!("http://10.0.0.99"));
            let e = device_table(&dev, "desk", "Desk", &opts, 0).unwrap_err();
            assert!(e.starts_with(&format!("options.{key} is refused")), "{e}");
        }
        let mut opts = Map::new();
        opts.insert("codes".into(), serde_json::json!(7));
        let mut bl = dev.clone();
        bl.kind = "broadlink".into();
        let e = device_table(&bl, "ac", "AC", &opts, 0).unwrap_err();
        assert!(e.starts_with("options.codes must be a path"), "{e}");
    }

    /// Two requests at once adopting the same device under two ids: one
    /// wins, the other is told it is configured (both used to pass the
    /// checks before either wrote).
    #[tokio::test]
    async fn two_adoptions_at_once_write_one_table() {
        use crate::broker::{BrokerAddress, EmbeddedBroker};
        use crate::clock::Clock;
        use crate::entity::EntityStore;
        use std::sync::Arc;
        let port = EmbeddedBroker::free_port();
        let _broker = EmbeddedBroker::start(std::net::Ipv4Addr::LOCALHOST.into(), port).unwrap();
        let link = crate::broker::link::test_link(port, "t-adopt").await;
        let store = EntityStore::new(Clock::real());
        let (_trigger, shutdown) = crate::shutdown::channel();
        let ctx = DriverContext {
            store: store.clone(),
            router: crate::entity::ServiceRouter::new(store.clone()),
            link,
            broker: BrokerAddress::local(port),
            clock: Clock::real(),
            shutdown,
            forecasts: Arc::default(),
            alerts: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hearth.toml");
        std::fs::write(&file, "# mine\n").unwrap();
        let adopter = Adopter::new(&Config::load(&file).unwrap(), ctx);
        let mut dev = plug();
        dev.address = "127.0.0.1:9".into();
        let req = |id: &str| AdoptRequest {
            name: None,
            options: [("id".to_string(), serde_json::json!(id))]
                .into_iter()
                .collect(),
        };
        let (a, b) = tokio::join!(adopter.adopt(&dev, req("a")), adopter.adopt(&dev, req("b")));
        assert!(a.is_ok() ^ b.is_ok(), "exactly one adoption: {a:?} {b:?}");
        let e = a.err().or(b.err()).unwrap();
        assert!(e.contains("is already configured"), "{e}");
        let written = Config::load(&file).unwrap();
        assert_eq!(written.shelly.len(), 1, "{written:?}");
    }

    #[test]
    fn the_written_table_says_where_it_came_from() {
        let dev = PendingDevice {
            id: "shellyplusplugs-a8032ab1c2d3".into(),
            kind: "shelly".into(),
            address: "10.0.0.7:80".into(),
            model: "SNPL-00112EU".into(),
            name: None,
            mac: Some("a8032ab1c2d3".into()),
            firmware: None,
            found_by: "mdns".into(),
            first_seen_ms: 0,
            last_seen_ms: 0,
        };
        let mut opts = Map::new();
        opts.insert("poll_interval_s".into(), serde_json::json!(2.5));
        let t = device_table(&dev, "desk", "Desk", &opts, 1_796_659_708_000).unwrap();
        let out = append_table("[mqtt]\nport = 1883\n", "shelly", t).unwrap();
        assert!(
            out.contains(
                "\n\n# Adopted from the network (mdns, SNPL-00112EU a8032ab1c2d3) on 2026-12-07T"
            ),
            "{out}"
        );
        assert!(out.contains("[[shelly]]\nid = \"desk\"\nname = \"Desk\"\nurl = \"http://10.0.0.7:80\"\npoll_interval_s = 2.5\n"), "{out}");
        let mut bl = dev.clone();
        bl.kind = "broadlink".into();
        let e = device_table(&bl, "ac", "AC", &Map::new(), 0).unwrap_err();
        assert!(e.contains("options.codes"), "{e}");
    }
}
