//! `hearth certs`: the CA, the server certificate, MQTT credentials and
//! topic rights under the data directory ([`SecurityPaths`]), and the
//! matching files for an external Mosquitto.
//!
//! - `init`: CA + server certificate + the bridge's and Home Assistant's
//!   credentials (passwd, acl, their password files) + mosquitto.conf.
//!   Refuses to replace an existing CA without `--force`. Existing
//!   `bridge.password` / `homeassistant.password` are kept (re-running with
//!   `--force` does not log HA out).
//! - `issue --device ID`: a generated password (always) and, with `--cert`,
//!   a client certificate; the device's `user` block in the ACL is replaced
//!   (re-issuing is idempotent on the ACL and gives a new password).
//! - `revoke --device ID`: out of passwd and acl, its files deleted.
//! - `server [--san ...]`: a new server certificate from the existing CA.
//!
//! Output says where files are and how to use them, never a secret.

use crate::security::acl::{self, Access, Rule};
use crate::security::certs::{self, Ca};
use crate::security::mosquitto::{self, Ports};
use crate::security::passwd::{self, Passwd};
use crate::security::{BRIDGE_USER, HOMEASSISTANT_USER, SecurityPaths, files};
use clap::{Args, Subcommand, ValueEnum};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    pub action: CertsAction,
    /// Directory for the bridge's data (as for `run`); default: the
    /// config's `data_dir` with `--config`, else `hearth-data`.
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// A bridge config: its bind addresses go into the server certificate,
    /// its `[mqtt] base_topic` into Home Assistant's rights.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CertsAction {
    /// Make the CA, the server certificate, the bridge's and Home
    /// Assistant's credentials, the ACL and mosquitto.conf.
    Init {
        /// Another name or IP address clients use to reach the bridge
        /// (repeatable).
        #[arg(long = "san", value_name = "NAME|IP")]
        sans: Vec<String>,
        /// Replace an existing CA (certificates it signed stop verifying).
        #[arg(long)]
        force: bool,
        /// mosquitto.conf's TLS listener port.
        #[arg(long, default_value_t = 8883)]
        mqtt_tls_port: u16,
        /// mosquitto.conf's plain listener port (127.0.0.1 only).
        #[arg(long, default_value_t = 1883)]
        mqtt_port: u16,
    },
    /// Give a device its credential and topic rights (re-issuing replaces
    /// them and makes a new password).
    Issue {
        /// The device id: its MQTT user name (and certificate CN).
        #[arg(long, value_name = "ID")]
        device: String,
        /// What the device is: its topics.
        #[arg(long, value_enum, default_value_t = DeviceKind::Node)]
        kind: DeviceKind,
        /// Tasmota: its `%topic%`; Shelly: its MQTT prefix; Shelly Gen1:
        /// its MQTT id, `shellies/<T>/…` (default: the id).
        #[arg(long, value_name = "T")]
        topic: Option<String>,
        /// Also write a client certificate and key.
        #[arg(long)]
        cert: bool,
        /// A generated password (the default; always made).
        #[arg(long)]
        password: bool,
    },
    /// Remove a device's credential and topic rights.
    Revoke {
        #[arg(long, value_name = "ID")]
        device: String,
    },
    /// A new server certificate from the existing CA (other names, or
    /// renewal before its 2 years run out); the CA and credentials stay.
    Server {
        /// Another name or IP address clients use to reach the bridge
        /// (repeatable).
        #[arg(long = "san", value_name = "NAME|IP")]
        sans: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    /// A Hearth sensor node (hearth-node/ID/...).
    Node,
    /// Tasmota (tele/T/#, stat/T/#, cmnd/T/#).
    Tasmota,
    /// Shelly Gen2 (P/#, P/rpc, P/command).
    Shelly,
    /// Shelly Gen1 (shellies/T/#; reads shellies/T/+/+/command,
    /// shellies/T/command, shellies/command).
    Shelly1,
}

impl DeviceKind {
    fn name(self) -> &'static str {
        match self {
            DeviceKind::Node => "node",
            DeviceKind::Tasmota => "tasmota",
            DeviceKind::Shelly => "shelly",
            DeviceKind::Shelly1 => "shelly1",
        }
    }
}

/// The ACL rules of a device (contract of issue 16).
pub fn device_rules(id: &str, kind: DeviceKind, topic: Option<&str>) -> Vec<Rule> {
    let t = topic.unwrap_or(id);
    let w = |f: String| Rule {
        access: Access::Write,
        filter: f,
    };
    let r = |f: String| Rule {
        access: Access::Read,
        filter: f,
    };
    match kind {
        DeviceKind::Node => {
            let root = hearth_node_core::TOPIC_ROOT;
            let mut v: Vec<Rule> = ["announce", "telemetry", "status", "valve/state"]
                .iter()
                .map(|s| w(format!("{root}/{id}/{s}")))
                .collect();
            v.push(r(format!("{root}/{id}/valve/set")));
            v
        }
        DeviceKind::Tasmota => vec![
            w(format!("tele/{t}/#")),
            w(format!("stat/{t}/#")),
            r(format!("cmnd/{t}/#")),
        ],
        DeviceKind::Shelly => vec![
            w(format!("{t}/#")),
            r(format!("{t}/rpc")),
            r(format!("{t}/command")),
            // Answers to Hearth's RPC requests go to the requester's
            // `src`, `hearth-<id>` (drivers/shelly_pro4pm/mqtt.rs): issue
            // the device with its Hearth config id.
            w(format!("hearth-{id}/rpc")),
        ],
        // Gen1's fixed tree (drivers/shelly_gen1/mqtt.rs): its own
        // subtree, its relay commands, and the broadcast `announce`.
        DeviceKind::Shelly1 => vec![
            w(format!("shellies/{t}/#")),
            r(format!("shellies/{t}/+/+/command")),
            r(format!("shellies/{t}/command")),
            r("shellies/command".to_string()),
        ],
    }
}

fn role_rules(base_topic: &str) -> (Vec<Rule>, Vec<Rule>) {
    let rw = |f: &str| Rule {
        access: Access::ReadWrite,
        filter: f.to_string(),
    };
    (
        vec![rw("#")],
        vec![rw("homeassistant/#"), rw(&format!("{base_topic}/#"))],
    )
}

const ACL_HEADER: &str = "\
# Hearth's MQTT topic rights (Mosquitto acl_file format), written by `hearth certs`.
# Read by Hearth's embedded broker front and by Mosquitto (mosquitto.conf next to it).
# `hearth certs issue` / `revoke` replace or remove one `user` block; the rest is kept.

";

/// Checks a device id: 1 to 64 of [A-Za-z0-9._-], not starting with `.`
/// or `-`; for a node, node-core's `[a-z0-9_-]{1,32}`; not a role name.
fn check_device_id(id: &str, kind: DeviceKind) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with(['.', '-'])
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        anyhow::bail!(
            "device id `{}`: 1 to 64 characters of A-Z a-z 0-9 . _ -, not starting with . or -",
            id.escape_debug()
        );
    }
    if kind == DeviceKind::Node {
        hearth_node_core::validate_node_id(id)
            .map_err(|e| anyhow::anyhow!("device id `{id}`: {e}"))?;
    }
    if id == BRIDGE_USER || id == HOMEASSISTANT_USER {
        anyhow::bail!("`{id}` is a role of `hearth certs init`, not a device");
    }
    Ok(())
}

fn check_topic(t: &str) -> anyhow::Result<()> {
    if t.is_empty()
        || t.starts_with('/')
        || t.ends_with('/')
        || t.contains(['+', '#', '\0'])
        || t.chars().any(char::is_whitespace)
    {
        anyhow::bail!(
            "--topic `{}`: a topic without wildcards, spaces or a leading/trailing `/`",
            t.escape_debug()
        );
    }
    Ok(())
}

/// A Shelly may write everything under its prefix: a prefix in Home
/// Assistant's, Hearth's or another node's tree would let it forge
/// discovery, bridge commands or another device's readings.
fn check_shelly_prefix(prefix: &str) -> anyhow::Result<()> {
    let first = prefix.split('/').next().unwrap_or_default();
    let reserved = [HOMEASSISTANT_USER, "hearth", hearth_node_core::TOPIC_ROOT];
    if first.starts_with('$') || first.starts_with("hearth-") || reserved.contains(&first) {
        anyhow::bail!(
            "Shelly MQTT prefix `{}`: its first level `{first}` is Home Assistant's or Hearth's (homeassistant, hearth, hearth-*, $…); give the device its own prefix with --topic",
            prefix.escape_debug()
        );
    }
    Ok(())
}

struct Context {
    paths: SecurityPaths,
    binds: Vec<IpAddr>,
    base_topic: String,
}

fn context(args: &CertsArgs) -> anyhow::Result<Context> {
    let config = match &args.config {
        Some(p) => Some(crate::config::Config::load(p)?),
        None => None,
    };
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.data_dir.clone()))
        .unwrap_or_else(|| PathBuf::from(crate::app::DEFAULT_DATA_DIR));
    files::ensure_dir(&data_dir)?;
    // Absolute: mosquitto.conf and the printed paths must not depend on
    // the working directory.
    let data_dir = std::fs::canonicalize(&data_dir)
        .map_err(|e| anyhow::anyhow!("--data-dir {}: {e}", data_dir.display()))?;
    let (binds, base_topic) = match &config {
        Some(c) => (
            vec![c.mqtt.bind, c.mqtt.plain_bind, c.http.bind],
            c.mqtt.base_topic.clone(),
        ),
        None => (Vec::new(), "hearth".to_string()),
    };
    Ok(Context {
        paths: SecurityPaths::new(data_dir),
        binds,
        base_topic,
    })
}

/// Runs a `hearth certs` command and prints its report.
pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    let ctx = context(&args)?;
    let report = match args.action {
        CertsAction::Init {
            sans,
            force,
            mqtt_tls_port,
            mqtt_port,
        } => init(
            &ctx,
            &sans,
            force,
            Ports {
                tls: mqtt_tls_port,
                plain: mqtt_port,
            },
        )?,
        CertsAction::Issue {
            device,
            kind,
            topic,
            cert,
            password: _,
        } => issue(&ctx.paths, &device, kind, topic.as_deref(), cert)?,
        CertsAction::Revoke { device } => revoke(&ctx.paths, &device)?,
        CertsAction::Server { sans } => server(&ctx, &sans)?,
    };
    print!("{report}");
    Ok(())
}

fn load_passwd(paths: &SecurityPaths) -> anyhow::Result<Passwd> {
    match files::read_optional(&paths.passwd())? {
        Some(text) => {
            Passwd::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", paths.passwd().display()))
        }
        None => Ok(Passwd::default()),
    }
}

fn load_acl_text(paths: &SecurityPaths) -> anyhow::Result<String> {
    let text = files::read_optional(&paths.acl())?.unwrap_or_else(|| ACL_HEADER.to_string());
    // Refuse to edit a file we could not read back.
    acl::Acl::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", paths.acl().display()))?;
    Ok(text)
}

fn save_acl(paths: &SecurityPaths, text: &str) -> anyhow::Result<()> {
    acl::Acl::parse(text).map_err(|e| anyhow::anyhow!("the ACL written would not parse: {e}"))?;
    files::write_public(&paths.acl(), text.as_bytes())
}

/// A role's password: the one in its file if there is one, else a new one
/// written 0600.
fn role_password(file: &Path) -> anyhow::Result<String> {
    if let Some(p) = files::read_optional(file)? {
        let p = p.trim_end_matches(['\n', '\r']).to_string();
        if !p.is_empty() {
            return Ok(p);
        }
    }
    let p = passwd::generate_password();
    files::write_private(file, format!("{p}\n").as_bytes())?;
    Ok(p)
}

fn init(ctx: &Context, sans: &[String], force: bool, ports: Ports) -> anyhow::Result<String> {
    let paths = &ctx.paths;
    if !force && (paths.ca_key().exists() || paths.ca_cert().exists()) {
        anyhow::bail!(
            "a CA already exists in {} (certificates and firmware trust it); \
             --force replaces it (every certificate it signed then stops verifying); \
             `hearth certs server` makes a new server certificate with the same CA",
            paths.tls_dir().display()
        );
    }
    files::ensure_dir(&paths.tls_dir())?;
    files::ensure_dir(&paths.mqtt_dir())?;
    let host = certs::hostname();
    let ca = Ca::generate(&host)?;
    let names = certs::server_sans(&host, &ctx.binds, sans);
    let server = ca.issue_server(&names)?;
    files::write_private(&paths.ca_key(), ca.key_pem().as_bytes())?;
    files::write_public(&paths.ca_cert(), ca.cert_pem().as_bytes())?;
    files::write_private(&paths.server_key(), server.key_pem.as_bytes())?;
    files::write_public(&paths.server_cert(), server.cert_pem.as_bytes())?;

    let mut pw = load_passwd(paths)?;
    let bridge_pw = role_password(&paths.bridge_password())?;
    let ha_pw = role_password(&paths.homeassistant_password())?;
    pw.set(BRIDGE_USER, &bridge_pw);
    pw.set(HOMEASSISTANT_USER, &ha_pw);
    files::write_private(&paths.passwd(), pw.to_file_text().as_bytes())?;

    let (bridge_rules, ha_rules) = role_rules(&ctx.base_topic);
    let mut text = load_acl_text(paths)?;
    text = acl::replace_user_block(
        &text,
        BRIDGE_USER,
        &acl::user_block(BRIDGE_USER, Some("the bridge's own link"), &bridge_rules),
    );
    text = acl::replace_user_block(
        &text,
        HOMEASSISTANT_USER,
        &acl::user_block(
            HOMEASSISTANT_USER,
            Some("Home Assistant: discovery, states, commands"),
            &ha_rules,
        ),
    );
    save_acl(paths, &text)?;
    mosquitto::write_conf(paths, ports)?;

    let d = |p: PathBuf| p.display().to_string();
    let mut r = String::new();
    let _ = writeln!(
        r,
        "Hearth CA and credentials in {}",
        paths.data_dir.display()
    );
    let _ = writeln!(
        r,
        "  CA certificate  {}  (public: for Home Assistant, MQTT clients, firmware)",
        d(paths.ca_cert())
    );
    let _ = writeln!(
        r,
        "  CA key          {}  (0600; keep it safe)",
        d(paths.ca_key())
    );
    let _ = writeln!(
        r,
        "  server          {}, {} (0600)\n                  for {}",
        d(paths.server_cert()),
        d(paths.server_key()),
        names.join(", ")
    );
    let _ = writeln!(
        r,
        "  password file   {}  (users {BRIDGE_USER}, {HOMEASSISTANT_USER})",
        d(paths.passwd())
    );
    let _ = writeln!(r, "  ACL             {}", d(paths.acl()));
    let _ = writeln!(
        r,
        "  Mosquitto       {}  (mosquitto -c {0})",
        d(paths.mosquitto_conf())
    );
    let _ = writeln!(
        r,
        "Home Assistant's MQTT integration: port {}, broker certificate validation \
         \"Custom\" with {}, user `{HOMEASSISTANT_USER}`, password in {} (0600).",
        ports.tls,
        d(paths.ca_cert()),
        d(paths.homeassistant_password())
    );
    let _ = writeln!(
        r,
        "The bridge logs in as `{BRIDGE_USER}` with the password in {} (0600).",
        d(paths.bridge_password())
    );
    let _ = writeln!(
        r,
        "Devices: hearth certs issue --device ID [--kind node|tasmota|shelly] [--cert]"
    );
    if force {
        let _ = writeln!(
            r,
            "The CA was replaced: client certificates and firmware pinned to the old CA must be re-issued."
        );
    }
    Ok(r)
}

fn load_ca(paths: &SecurityPaths) -> anyhow::Result<Ca> {
    if !paths.ca_cert().exists() {
        anyhow::bail!(
            "no CA in {}: run `hearth certs init` first",
            paths.tls_dir().display()
        );
    }
    let ca_cert = std::fs::read_to_string(paths.ca_cert())
        .map_err(|e| anyhow::anyhow!("{}: {e}", paths.ca_cert().display()))?;
    let ca_key = std::fs::read_to_string(paths.ca_key())
        .map_err(|e| anyhow::anyhow!("{}: {e}", paths.ca_key().display()))?;
    Ca::load(&ca_cert, &ca_key)
}

fn server(ctx: &Context, sans: &[String]) -> anyhow::Result<String> {
    let paths = &ctx.paths;
    let ca = load_ca(paths)?;
    let names = certs::server_sans(&certs::hostname(), &ctx.binds, sans);
    let server = ca.issue_server(&names)?;
    files::write_private(&paths.server_key(), server.key_pem.as_bytes())?;
    files::write_public(&paths.server_cert(), server.cert_pem.as_bytes())?;
    Ok(format!(
        "New server certificate {}, key {} (0600), signed by {}\n  for {}\n\
         Restart the bridge / Mosquitto to use it (clients keep trusting the same CA).\n",
        paths.server_cert().display(),
        paths.server_key().display(),
        paths.ca_cert().display(),
        names.join(", ")
    ))
}

fn issue(
    paths: &SecurityPaths,
    id: &str,
    kind: DeviceKind,
    topic: Option<&str>,
    cert: bool,
) -> anyhow::Result<String> {
    check_device_id(id, kind)?;
    if let Some(t) = topic {
        if kind == DeviceKind::Node {
            anyhow::bail!(
                "--topic is for --kind tasmota, shelly or shelly1 (a node's topics come from its id)"
            );
        }
        check_topic(t)?;
    }
    if !paths.ca_cert().exists() {
        anyhow::bail!(
            "no CA in {}: run `hearth certs init` first",
            paths.tls_dir().display()
        );
    }
    if kind == DeviceKind::Shelly {
        check_shelly_prefix(topic.unwrap_or(id))?;
    }
    if kind == DeviceKind::Shelly1 && topic.unwrap_or(id).contains('/') {
        anyhow::bail!(
            "Shelly Gen1 MQTT id `{}`: one topic level (its topics are shellies/<id>/…)",
            topic.unwrap_or(id).escape_debug()
        );
    }
    let rules = device_rules(id, kind, topic);
    // Certificate first: if the CA cannot be loaded nothing is changed.
    let client = if cert {
        Some(load_ca(paths)?.issue_client(id)?)
    } else {
        None
    };
    files::ensure_dir(&paths.device_dir(id))?;
    let password = passwd::generate_password();
    files::write_private(
        &paths.device_password(id),
        format!("{password}\n").as_bytes(),
    )?;
    if let Some(c) = &client {
        files::write_private(&paths.device_key(id), c.key_pem.as_bytes())?;
        files::write_public(&paths.device_cert(id), c.cert_pem.as_bytes())?;
    }
    let mut pw = load_passwd(paths)?;
    pw.set(id, &password);
    files::write_private(&paths.passwd(), pw.to_file_text().as_bytes())?;
    let comment = match topic {
        Some(t) => format!("device ({}, topic {t})", kind.name()),
        None => format!("device ({})", kind.name()),
    };
    let text = acl::replace_user_block(
        &load_acl_text(paths)?,
        id,
        &acl::user_block(id, Some(&comment), &rules),
    );
    save_acl(paths, &text)?;

    let d = |p: PathBuf| p.display().to_string();
    let mut r = String::new();
    let _ = writeln!(r, "Device `{id}` ({}): MQTT user `{id}`", kind.name());
    let _ = writeln!(r, "  password     {}  (0600)", d(paths.device_password(id)));
    if client.is_some() {
        let _ = writeln!(
            r,
            "  certificate  {}, key {} (0600), CN {id}",
            d(paths.device_cert(id)),
            d(paths.device_key(id))
        );
    }
    let _ = writeln!(r, "  CA to verify the broker: {}", d(paths.ca_cert()));
    for rule in &rules {
        let _ = writeln!(r, "  may {:<5} {}", rule.access.word(), rule.filter);
    }
    let _ = writeln!(
        r,
        "Running brokers read the new password file and ACL on reload (Mosquitto: kill -HUP)."
    );
    Ok(r)
}

fn revoke(paths: &SecurityPaths, id: &str) -> anyhow::Result<String> {
    if id == BRIDGE_USER || id == HOMEASSISTANT_USER {
        anyhow::bail!("`{id}` is a role of `hearth certs init`, not a device");
    }
    let mut pw = load_passwd(paths)?;
    let text = load_acl_text(paths)?;
    let in_acl = acl::Acl::parse(&text)
        .map(|a| a.has_user(id))
        .unwrap_or(false);
    let in_pw = pw.remove(id);
    if !in_pw && !in_acl {
        anyhow::bail!(
            "no device `{id}` in {} or {}",
            paths.passwd().display(),
            paths.acl().display()
        );
    }
    files::write_private(&paths.passwd(), pw.to_file_text().as_bytes())?;
    save_acl(paths, &acl::remove_user_blocks(&text, id))?;
    // Its credential files are of no use any more.
    let dir = paths.device_dir(id);
    let mut removed = Vec::new();
    for f in [
        paths.device_password(id),
        paths.device_key(id),
        paths.device_cert(id),
    ] {
        if std::fs::remove_file(&f).is_ok() {
            removed.push(f.display().to_string());
        }
    }
    let _ = std::fs::remove_dir(&dir);
    let mut r = String::new();
    let _ = writeln!(
        r,
        "Device `{id}` revoked: removed from {} and {}.",
        paths.passwd().display(),
        paths.acl().display()
    );
    for f in removed {
        let _ = writeln!(r, "  deleted {f}");
    }
    let _ = writeln!(
        r,
        "Its client certificate (if any) still chains to the CA, but Hearth's front only \
         accepts a certificate whose CN has an ACL entry, and Mosquitto does not take \
         certificates as identities here. Running brokers must reload (Mosquitto: kill -HUP)."
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_and_topics() {
        assert!(check_device_id("node-1", DeviceKind::Node).is_ok());
        assert!(check_device_id("Node-1", DeviceKind::Node).is_err());
        assert!(check_device_id("Plug.Kitchen", DeviceKind::Shelly).is_ok());
        assert!(check_device_id("a/b", DeviceKind::Shelly).is_err());
        assert!(check_device_id("a b", DeviceKind::Shelly).is_err());
        assert!(check_device_id("-x", DeviceKind::Shelly).is_err());
        assert!(check_device_id("", DeviceKind::Shelly).is_err());
        assert!(check_device_id(BRIDGE_USER, DeviceKind::Shelly).is_err());
        assert!(check_topic("shellies/plug-1").is_ok());
        assert!(check_shelly_prefix("shellyplus1pm-a8032ab1").is_ok());
        for bad in [
            "homeassistant",
            "hearth/x",
            "hearth-node/other",
            "hearth-bridge",
            "$SYS",
        ] {
            assert!(check_shelly_prefix(bad).is_err(), "{bad}");
        }
        assert!(check_topic("a/#").is_err());
        assert!(check_topic("/a").is_err());
    }

    #[test]
    fn device_rules_keep_devices_apart() {
        let mut text = String::from(ACL_HEADER);
        for (id, kind, topic) in [
            ("n1", DeviceKind::Node, None),
            ("n2", DeviceKind::Node, None),
            ("t1", DeviceKind::Tasmota, Some("strip")),
            ("s1", DeviceKind::Shelly, Some("shellypro4pm-a")),
            ("g1", DeviceKind::Shelly1, Some("shellyplug-s-C18B12")),
            ("g2", DeviceKind::Shelly1, None),
        ] {
            let block = acl::user_block(id, None, &device_rules(id, kind, topic));
            text = acl::replace_user_block(&text, id, &block);
        }
        let (b, h) = role_rules("hearth");
        text = acl::replace_user_block(&text, BRIDGE_USER, &acl::user_block(BRIDGE_USER, None, &b));
        text = acl::replace_user_block(
            &text,
            HOMEASSISTANT_USER,
            &acl::user_block(HOMEASSISTANT_USER, None, &h),
        );
        let a = acl::Acl::parse(&text).unwrap();
        assert!(a.may_publish("n1", "hearth-node/n1/telemetry"));
        assert!(!a.may_publish("n1", "hearth-node/n2/telemetry"));
        assert!(!a.may_publish("n1", "hearth-node/n1/valve/set"));
        assert!(a.may_subscribe("n1", "hearth-node/n1/valve/set"));
        assert!(!a.may_subscribe("n1", "hearth-node/n2/valve/set"));
        assert!(!a.may_subscribe("n1", "hearth-node/+/valve/set"));
        assert!(!a.may_subscribe("n1", "#"));
        assert!(a.may_publish("t1", "tele/strip/SENSOR"));
        assert!(a.may_subscribe("t1", "cmnd/strip/#"));
        assert!(!a.may_publish("t1", "cmnd/strip/POWER"));
        assert!(a.may_publish("s1", "shellypro4pm-a/events/rpc"));
        assert!(a.may_publish("s1", "hearth-s1/rpc"));
        assert!(a.may_subscribe("s1", "shellypro4pm-a/rpc"));
        assert!(!a.may_subscribe("s1", "shellypro4pm-a/#"));
        let g1 = "shellies/shellyplug-s-C18B12";
        assert!(a.may_publish("g1", &format!("{g1}/relay/0/energy")));
        assert!(a.may_publish("g1", &format!("{g1}/online")));
        assert!(!a.may_publish("g1", "shellies/g2/relay/0"));
        assert!(!a.may_publish("g1", "shellies/command"));
        assert!(a.may_subscribe("g1", &format!("{g1}/relay/0/command")));
        assert!(a.may_subscribe("g1", &format!("{g1}/command")));
        assert!(a.may_subscribe("g1", "shellies/command"));
        assert!(!a.may_subscribe("g1", "shellies/g2/relay/0/command"));
        assert!(!a.may_subscribe("g1", &format!("{g1}/#")));
        assert!(a.may_publish("g2", "shellies/g2/relay/0/power"));
        assert!(a.may_subscribe(HOMEASSISTANT_USER, "homeassistant/#"));
        assert!(a.may_publish(HOMEASSISTANT_USER, "hearth/light/x/set"));
        assert!(!a.may_publish(HOMEASSISTANT_USER, "hearth-node/n1/valve/set"));
        assert!(a.may_publish(BRIDGE_USER, "hearth-node/n1/valve/set"));
        assert!(a.may_subscribe(BRIDGE_USER, "#"));
    }
}
