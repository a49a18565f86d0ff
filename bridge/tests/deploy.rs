//! deploy/: the static files checked against the code they describe.
//! Compose images are pinned; the Home Assistant add-on's config.yaml has
//! what the Supervisor needs (ingress to the dashboard, `mqtt:need`); the
//! Dockerfile's HEALTHCHECK runs `hearth health` on a path a real bridge
//! serves; the commands the Dockerfile and the systemd unit run parse with
//! the real CLI; the unit passes `systemd-analyze verify` with nothing on
//! stderr (required when CI=true).

use crate::common;

use common::{BrokerKind, Harness};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use yaml_rust2::{Yaml, YamlLoader};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(rel: &str) -> String {
    let path = deploy_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(rel: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(docs.len(), 1, "{rel}: one YAML document");
    docs.remove(0)
}

fn hearth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .expect("run hearth")
}

/// `image:` references must name a released version: a tag with a digit,
/// not `latest`, not a bare name.
fn assert_pinned(what: &str, image: &str) {
    let (name, tag) = match image.split_once('@') {
        Some((_, digest)) => {
            assert!(digest.starts_with("sha256:"), "{what}: `{image}`");
            return;
        }
        None => match image.rsplit_once(':') {
            // A registry port (host:5000/name) is not a tag.
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => panic!("{what}: image `{image}` has no tag (pin a version)"),
        },
    };
    assert!(!name.is_empty(), "{what}: `{image}`");
    assert!(
        tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()),
        "{what}: image `{image}` is not pinned to a version"
    );
}

#[test]
fn compose_images_are_pinned_and_mounts_exist() {
    let doc = yaml("compose.yaml");
    let services = doc["services"].as_hash().expect("compose.yaml: services");
    let mut names = Vec::new();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        names.push(name.to_string());
        let image = service["image"]
            .as_str()
            .unwrap_or_else(|| panic!("service {name} has no image"));
        assert_pinned(&format!("compose service {name}"), image);
        // Bind mounts of files this repository ships must exist (Prometheus's
        // token file is the user's to write).
        for volume in service["volumes"].as_vec().into_iter().flatten() {
            let spec = volume.as_str().unwrap();
            if let Some(source) = spec.split(':').next().filter(|s| s.starts_with("./"))
                && !source.ends_with("hearth-token")
            {
                assert!(
                    deploy_dir().join(source).exists(),
                    "service {name} mounts {source}, which deploy/ does not have"
                );
            }
        }
    }
    for expected in ["hearth", "mosquitto", "influxdb", "grafana"] {
        assert!(names.iter().any(|n| n == expected), "no {expected} service");
    }
    // Everything but Hearth is optional (a profile).
    for (name, service) in services {
        let optional = !service["profiles"].is_badvalue();
        assert_eq!(optional, name.as_str() != Some("hearth"), "{name:?}");
    }
    // Grafana gets H4's provisioning, at the path its dashboard provider reads.
    let grafana = &doc["services"]["grafana"]["volumes"];
    let mounts: Vec<&str> = grafana
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        mounts.contains(&"./grafana/provisioning:/etc/grafana/provisioning:ro"),
        "{mounts:?}"
    );
    let provider = yaml("grafana/provisioning/dashboards/hearth.yaml");
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    assert!(
        mounts.iter().any(|m| m.ends_with(&format!(":{path}:ro"))),
        "the dashboards folder is not mounted at {path}: {mounts:?}"
    );

    // The Dockerfile's base images too.
    for from in read("Dockerfile")
        .lines()
        .filter(|l| l.starts_with("FROM "))
    {
        let image = from
            .split_whitespace()
            .skip(1)
            .find(|w| !w.starts_with("--"))
            .unwrap();
        assert_pinned("deploy/Dockerfile", image);
    }
}

#[test]
fn addon_config_has_ingress_and_needs_mqtt() {
    let config = yaml("homeassistant/config.yaml");
    for key in [
        "name",
        "version",
        "slug",
        "description",
        "arch",
        "ingress_port",
        "panel_icon",
    ] {
        assert!(!config[key].is_badvalue(), "config.yaml has no `{key}`");
    }
    assert_eq!(config["slug"].as_str(), Some("hearth"));
    assert_eq!(
        config["version"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "the add-on's version is the crate's"
    );
    let arch: Vec<&str> = config["arch"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        arch.contains(&"amd64") && arch.contains(&"aarch64"),
        "{arch:?}"
    );
    assert_eq!(config["ingress"].as_bool(), Some(true));
    // Ingress goes to the bridge's HTTP port (dashboard and API together).
    let port = config["ingress_port"].as_i64().unwrap();
    assert_eq!(
        port,
        i64::from(hearth::config::HttpConfig::default().port),
        "ingress_port is not the bridge's HTTP port"
    );
    let services: Vec<&str> = config["services"]
        .as_vec()
        .expect("services: a list")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(services.contains(&"mqtt:need"), "{services:?}");
    // Every option has a schema entry, and the other way round.
    let keys = |y: &Yaml| -> Vec<String> {
        let mut k: Vec<String> = y
            .as_hash()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(&config["options"]), keys(&config["schema"]));

    let build = yaml("homeassistant/build.yaml");
    for a in &arch {
        assert!(
            build["build_from"][*a].as_str().is_some(),
            "build.yaml has no base for {a}"
        );
    }
    // The run script takes the broker from the Supervisor's mqtt service.
    let run = read("homeassistant/run.sh");
    for field in ["host", "port", "username", "password"] {
        assert!(
            run.contains(&format!("bashio::services mqtt \"{field}\"")),
            "run.sh does not read the mqtt service's {field}"
        );
    }
}

/// `HEALTHCHECK … CMD ["hearth", "health", "--url", "<url>"]` → its args.
fn healthcheck_args(dockerfile: &str) -> Vec<String> {
    let text = read(dockerfile).replace("\\\n", " ");
    let line = text
        .lines()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .unwrap_or_else(|| panic!("{dockerfile} has no HEALTHCHECK"));
    let json = &line[line.find("CMD [").expect("exec-form CMD") + 4..];
    let args: Vec<String> = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(args[..2], ["hearth", "health"], "{dockerfile}: {args:?}");
    args
}

async fn hearth_async(args: Vec<String>) -> Output {
    // `hearth health` bounds its own wait (--timeout, 5 s); this bounds the test.
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            hearth(&args)
        }),
    )
    .await
    .expect("hearth health answered within 30 s")
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_runs_hearth_health_on_a_served_path() {
    let docker = healthcheck_args("Dockerfile");
    let addon = healthcheck_args("homeassistant/Dockerfile");
    assert_eq!(docker, addon);
    let url =
        url::Url::parse(&docker[docker.iter().position(|a| a == "--url").unwrap() + 1]).unwrap();
    assert_eq!(url.port(), Some(hearth::config::HttpConfig::default().port));
    let path = url.path().to_string();
    let watchdog = yaml("homeassistant/config.yaml")["watchdog"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(watchdog.ends_with(&path), "{watchdog} vs {path}");

    let h = Harness::start(BrokerKind::Embedded, 60.0, |_| {}).await;
    let addr = h.bridge().http_addr;
    let healthy = |url: String| vec!["health".to_string(), "--url".into(), url];

    let out = hearth_async(healthy(format!("http://{addr}{path}"))).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hearth health on {path}: {:?} {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let body: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(body["status"], "ok");

    // Exit 1 on a path that is not served, and once the bridge is gone.
    let out = hearth_async(healthy(format!("http://{addr}/api/nowhere"))).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    h.stop().await;
    let out = hearth_async(healthy(format!("http://{addr}{path}"))).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&path));
}

/// The command line's words after the binary, for `<args> --help`: clap
/// rejects an unknown flag before it reaches `--help`.
fn assert_cli_accepts(what: &str, args: &[&str]) {
    let mut with_help: Vec<&str> = args.to_vec();
    with_help.push("--help");
    let out = hearth(&with_help);
    assert!(
        out.status.success(),
        "{what}: `hearth {}` is refused: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dockerfile_and_unit_commands_parse() {
    let text = read("Dockerfile");
    let cmd = text.lines().find(|l| l.starts_with("CMD ")).unwrap();
    let args: Vec<String> = serde_json::from_str(&cmd[4..]).unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(args[0], "run");
    assert_cli_accepts("deploy/Dockerfile CMD", &args);
    // The image's config file parses as a Hearth config.
    let config =
        hearth::config::Config::from_toml(&read("hearth.docker.toml"), "hearth.docker.toml")
            .unwrap();
    assert!(config.http.bind.is_unspecified() && config.mqtt.bind.is_unspecified());

    let unit = read("hearth.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(words[0], "/usr/local/bin/hearth");
    assert_cli_accepts("deploy/hearth.service ExecStart", &words[1..]);
}

fn systemd_analyze_verify(unit_text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.service");
    std::fs::write(&path, unit_text).unwrap();
    Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze")
}

#[test]
fn systemd_unit_is_hardened_and_verifies_cleanly() {
    let unit = read("hearth.service");
    let settings: Vec<(&str, &str)> = unit
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let value = |key: &str| settings.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    for (key, expected) in [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("SystemCallArchitectures", "native"),
        ("StateDirectory", "hearth"),
    ] {
        assert_eq!(value(key), Some(expected), "{key}");
    }
    assert!(value("SystemCallFilter").is_some_and(|v| v.contains("@system-service")));
    assert!(value("RestrictAddressFamilies").is_some());
    // wasmtime makes compiled plugin code executable: W^X stays allowed.
    assert_eq!(value("MemoryDenyWriteExecute"), None);

    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "systemd-analyze is needed with CI=true: `apt-get install -y systemd`"
        );
        eprintln!("systemd-analyze not installed: `systemd-analyze verify` skipped");
        return;
    }
    // verify checks that ExecStart's binary exists: the one cargo built.
    let local = unit.replace(
        "ExecStart=/usr/local/bin/hearth ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_hearth")),
    );
    assert_ne!(local, unit, "ExecStart is not /usr/local/bin/hearth");
    let out = systemd_analyze_verify(&local);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // It exits 0 on an unknown key but says so on stderr: that is what the
    // empty-stderr check above catches.
    let out = systemd_analyze_verify(&local.replace("[Service]\n", "[Service]\nNoSuchKey=1\n"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NoSuchKey"),
        "systemd-analyze verify no longer reports unknown keys: {out:?}"
    );
}
