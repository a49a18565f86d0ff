//! `hearth certs` through the real binary, then a real Mosquitto (Debian's
//! 2.0) started on the `mosquitto.conf` it wrote, with the real
//! `mosquitto_pub` / `mosquitto_sub` (OpenSSL) as clients: TLS with the CA
//! works; no CA, another CA, a wrong password or no user name are refused;
//! device A can neither publish under device B's topics nor read B's
//! commands; Home Assistant's credential sees discovery; a revoked device
//! is refused after a reload. Every client runs under a deadline.

use hearth::broker::EmbeddedBroker;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous: a loaded 2-core CI machine.
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

fn hearth(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .expect("hearth runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn hearth_ok(args: &[&str]) -> String {
    let (ok, out, err) = hearth(args);
    assert!(ok, "hearth {args:?} failed:\n{out}\n{err}");
    out
}

/// Runs a tool, killing it at the deadline: (exited 0, stdout, stderr).
fn run(tool: &str, args: &[String]) -> (bool, String, String) {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e} (apt-get install mosquitto-clients)"));
    let deadline = Instant::now() + TOOL_TIMEOUT;
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{tool} {args:?} still running after {TOOL_TIMEOUT:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn password(p: &Path) -> String {
    read(p).trim().to_string()
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `mosquitto_sub -d -v` whose lines arrive on a channel; `ready` once
/// its SUBACK came back.
struct Sub {
    _child: KillOnDrop,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Sub {
    fn start(args: Vec<String>) -> Sub {
        // Line-buffered (coreutils' stdbuf): mosquitto_sub's stdio would
        // hold its debug lines in a pipe's buffer until it exits.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "-eL", "mosquitto_sub", "-d", "-v"])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto_sub (apt-get install mosquitto-clients)");
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut sub = Sub {
            _child: KillOnDrop(child),
            lines: rx,
            seen: Vec::new(),
        };
        sub.wait_line(|l| l.contains("received SUBACK"), "its SUBACK");
        sub
    }

    fn wait_line(&mut self, want: impl Fn(&str) -> bool, what: &str) -> String {
        let deadline = Instant::now() + TOOL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if want(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "mosquitto_sub: no {what} within {TOOL_TIMEOUT:?}; saw {:?}",
                    self.seen
                ),
            }
        }
    }

    /// The `topic payload` lines received so far (not the debug lines).
    fn messages(&mut self) -> Vec<String> {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        self.seen
            .iter()
            .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed") && !l.is_empty())
            .cloned()
            .collect()
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn certs_init_issue_and_a_real_mosquitto() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let plain_port = EmbeddedBroker::free_port();
    let tls_port = EmbeddedBroker::free_port();
    let (pp, tp) = (plain_port.to_string(), tls_port.to_string());

    let out = hearth_ok(&[
        "certs",
        "init",
        "--data-dir",
        d,
        "--san",
        "hearth.test",
        "--mqtt-port",
        &pp,
        "--mqtt-tls-port",
        &tp,
    ]);
    let out_a = hearth_ok(&[
        "certs",
        "issue",
        "--device",
        "node-a",
        "--data-dir",
        d,
        "--cert",
    ]);
    let out_b = hearth_ok(&["certs", "issue", "--device", "node-b", "--data-dir", d]);
    let data = std::fs::canonicalize(&data).unwrap();
    let p = |rel: &str| -> PathBuf { data.join(rel) };

    // Where things went, with the modes of the contract.
    for f in [
        "tls/ca.key",
        "tls/server.key",
        "mqtt/passwd",
        "mqtt/bridge.password",
        "mqtt/homeassistant.password",
        "devices/node-a/password",
        "devices/node-a/client.key",
        "devices/node-b/password",
    ] {
        assert_eq!(mode(&p(f)), 0o600, "{f}");
    }
    for dir in [
        ".",
        "tls",
        "mqtt",
        "devices",
        "devices/node-a",
        "devices/node-b",
    ] {
        assert_eq!(mode(&p(dir)), 0o700, "{dir}");
    }
    for f in [
        "tls/ca.pem",
        "tls/server.pem",
        "devices/node-a/client.pem",
        "mqtt/acl",
    ] {
        assert!(p(f).is_file(), "{f}");
    }
    assert!(
        !p("devices/node-b/client.pem").exists(),
        "no --cert, no certificate"
    );
    // The output names the files, never the secrets.
    let secrets: Vec<String> = [
        "mqtt/bridge.password",
        "mqtt/homeassistant.password",
        "devices/node-a/password",
        "devices/node-b/password",
    ]
    .iter()
    .map(|f| password(&p(f)))
    .collect();
    let key = read(&p("devices/node-a/client.key"));
    for o in [&out, &out_a, &out_b] {
        for sec in &secrets {
            assert_eq!(sec.len(), 24);
            assert!(!o.contains(sec.as_str()), "a password in the output:\n{o}");
        }
        assert!(!o.contains("PRIVATE KEY") && !o.contains(key.lines().nth(1).unwrap()));
    }
    assert!(
        out.contains(&p("tls/ca.pem").display().to_string()),
        "{out}"
    );
    assert!(
        out.contains(&p("mqtt/homeassistant.password").display().to_string()),
        "{out}"
    );

    // The client and server certificates chain to the CA, for their purpose
    // (OpenSSL, independently of rcgen).
    let ca = p("tls/ca.pem").display().to_string();
    for (cert, purpose) in [
        ("tls/server.pem", "sslserver"),
        ("devices/node-a/client.pem", "sslclient"),
    ] {
        let (ok, o, e) = run(
            "openssl",
            &s(&[
                "verify",
                "-CAfile",
                &ca,
                "-purpose",
                purpose,
                p(cert).to_str().unwrap(),
            ]),
        );
        assert!(ok, "openssl verify {cert}: {o} {e}");
    }

    // An existing CA is not replaced without --force.
    let ca_before = read(&p("tls/ca.pem"));
    let (ok, _, err) = hearth(&["certs", "init", "--data-dir", d]);
    assert!(!ok && err.contains("--force"), "{err}");
    assert_eq!(read(&p("tls/ca.pem")), ca_before);
    // `certs server`: a new server certificate (another name) from the same
    // CA; Mosquitto below runs on it.
    let server_before = read(&p("tls/server.pem"));
    hearth_ok(&["certs", "server", "--data-dir", d, "--san", "renewed.test"]);
    assert_eq!(read(&p("tls/ca.pem")), ca_before);
    assert_ne!(read(&p("tls/server.pem")), server_before);
    assert_eq!(mode(&p("tls/server.key")), 0o600);
    let server_pem = p("tls/server.pem").display().to_string();
    let (ok, o, e) = run(
        "openssl",
        &s(&[
            "verify",
            "-CAfile",
            &ca,
            "-purpose",
            "sslserver",
            &server_pem,
        ]),
    );
    assert!(ok, "renewed server certificate: {o} {e}");
    let (ok, o, e) = run(
        "openssl",
        &s(&[
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            &server_pem,
        ]),
    );
    assert!(
        ok && o.contains("DNS:renewed.test") && o.contains("DNS:localhost"),
        "{o} {e}"
    );
    assert!(
        !o.contains("hearth.test"),
        "the new SANs replace the old: {o}"
    );
    // Re-issuing replaces the device's block: the ACL is the same text, the
    // password is new.
    let acl_before = read(&p("mqtt/acl"));
    let b_old = password(&p("devices/node-b/password"));
    hearth_ok(&["certs", "issue", "--device", "node-b", "--data-dir", d]);
    assert_eq!(read(&p("mqtt/acl")), acl_before);
    assert_ne!(password(&p("devices/node-b/password")), b_old);
    assert_eq!(read(&p("mqtt/passwd")).lines().count(), 4);

    // A second, unrelated CA (for the "another CA" refusal).
    let other = tmp.path().join("other");
    hearth_ok(&["certs", "init", "--data-dir", other.to_str().unwrap()]);
    let other_ca = other.join("tls/ca.pem").display().to_string();

    // Mosquitto on the generated conf. Started as root it would switch to
    // user `mosquitto`, which cannot read the 0600 files: as root (CI
    // containers), a copy of the conf keeps it root.
    let conf = p("mqtt/mosquitto.conf");
    let text = read(&conf);
    assert!(text.contains(&format!("listener {tls_port}\n")), "{text}");
    assert!(text.contains(&format!("password_file {}", p("mqtt/passwd").display())));
    let run_conf = tmp.path().join("mosquitto-run.conf");
    let root = unsafe { libc::geteuid() } == 0;
    std::fs::write(
        &run_conf,
        format!("{text}\n{}", if root { "user root\n" } else { "" }),
    )
    .unwrap();
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("mosquitto is not installed: `apt-get install -y mosquitto`");
    let log = tmp.path().join("mosquitto.log");
    let mosq = KillOnDrop(
        Command::new(bin)
            .arg("-c")
            .arg(&run_conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting mosquitto"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "mosquitto did not listen on {tls_port}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let tls = |user: &str, pw: &str| -> Vec<String> {
        s(&[
            "-h",
            "localhost",
            "-p",
            &tp,
            "--cafile",
            &ca,
            "-u",
            user,
            "-P",
            pw,
        ])
    };
    let pw_a = password(&p("devices/node-a/password"));
    let pw_b = password(&p("devices/node-b/password"));
    let pw_bridge = password(&p("mqtt/bridge.password"));
    let pw_ha = password(&p("mqtt/homeassistant.password"));
    let publish = |mut conn: Vec<String>, topic: &str, msg: &str| {
        conn.extend(s(&["-t", topic, "-m", msg, "-q", "1"]));
        run("mosquitto_pub", &conn)
    };

    // With the CA and its password, a device connects over TLS.
    let (ok, _, err) = publish(tls("node-a", &pw_a), "hearth-node/node-a/telemetry", "{}");
    assert!(ok, "node-a over TLS: {err}");
    // Refusals.
    let (ok, _, err) = publish(
        tls("node-a", "not-its-password"),
        "hearth-node/node-a/telemetry",
        "x",
    );
    assert!(
        !ok && err.contains("not authorised"),
        "wrong password: {err}"
    );
    let (ok, _, err) = publish(
        s(&["-h", "localhost", "-p", &tp, "--cafile", &ca]),
        "hearth-node/node-a/telemetry",
        "x",
    );
    assert!(!ok && err.contains("not authorised"), "anonymous: {err}");
    let (ok, _, err) = publish(
        s(&["-h", "127.0.0.1", "-p", &pp]),
        "hearth-node/node-a/telemetry",
        "x",
    );
    assert!(
        !ok && err.contains("not authorised"),
        "anonymous on the plain listener: {err}"
    );
    let (ok, _, err) = publish(
        s(&["-h", "localhost", "-p", &tp, "-u", "node-a", "-P", &pw_a]),
        "hearth-node/node-a/telemetry",
        "x",
    );
    assert!(
        !ok,
        "without the CA (plain MQTT to the TLS port) accepted: {err}"
    );
    let mut other_conn = tls("node-a", &pw_a);
    other_conn[5] = other_ca.clone();
    let (ok, _, err) = publish(other_conn, "hearth-node/node-a/telemetry", "x");
    assert!(!ok, "another CA accepted: {err}");
    let (ok, _, err) = publish(
        s(&[
            "-h",
            "localhost",
            "-p",
            &tp,
            "--capath",
            "/etc/ssl/certs",
            "-u",
            "node-a",
            "-P",
            &pw_a,
        ]),
        "hearth-node/node-a/telemetry",
        "x",
    );
    assert!(
        !ok,
        "the system's CAs accepted Hearth's server certificate: {err}"
    );

    // Topic rights. Watchers first (each ready once subscribed).
    let mut bridge_watch = Sub::start({
        let mut a = tls("hearth-bridge", &pw_bridge);
        a.extend(s(&["-t", "hearth-node/node-b/#", "-C", "2", "-W", "30"]));
        a
    });
    let mut b_cmds = Sub::start({
        let mut a = tls("node-b", &pw_b);
        a.extend(s(&[
            "-t",
            "hearth-node/node-b/valve/set",
            "-C",
            "1",
            "-W",
            "30",
        ]));
        a
    });
    // node-a tries to read node-b's commands (Mosquitto 2.0 grants the
    // subscription and filters what it delivers).
    let mut a_snoop = Sub::start({
        let mut a = tls("node-a", &pw_a);
        a.extend(s(&["-t", "hearth-node/node-b/valve/set", "-W", "30"]));
        a
    });
    let mut ha = Sub::start({
        let mut a = tls("homeassistant", &pw_ha);
        a.extend(s(&["-t", "homeassistant/#", "-C", "1", "-W", "30"]));
        a
    });
    // node-a forges node-b's telemetry and command: dropped by the broker.
    for (topic, msg) in [
        ("hearth-node/node-b/telemetry", "forged"),
        ("hearth-node/node-b/valve/set", "forged"),
    ] {
        let (ok, _, err) = publish(tls("node-a", &pw_a), topic, msg);
        assert!(
            ok,
            "the forged publish is dropped, the connection is not refused: {err}"
        );
    }
    // Then the real ones, in the same order.
    let (ok, _, err) = publish(tls("node-b", &pw_b), "hearth-node/node-b/telemetry", "real");
    assert!(ok, "{err}");
    let (ok, _, err) = publish(
        tls("hearth-bridge", &pw_bridge),
        "hearth-node/node-b/valve/set",
        "42",
    );
    assert!(ok, "{err}");
    let (ok, _, err) = publish(
        tls("hearth-bridge", &pw_bridge),
        "homeassistant/sensor/node-b/config",
        "{\"name\":\"t\"}",
    );
    assert!(ok, "{err}");

    b_cmds.wait_line(|l| l.starts_with("hearth-node/"), "valve command");
    assert_eq!(b_cmds.messages(), ["hearth-node/node-b/valve/set 42"]);
    bridge_watch.wait_line(|l| l.contains("valve/set"), "valve command");
    assert_eq!(
        bridge_watch.messages(),
        [
            "hearth-node/node-b/telemetry real",
            "hearth-node/node-b/valve/set 42"
        ],
        "node-a's forged messages reached a subscriber"
    );
    ha.wait_line(|l| l.starts_with("homeassistant/"), "discovery");
    assert_eq!(
        ha.messages(),
        ["homeassistant/sensor/node-b/config {\"name\":\"t\"}"]
    );
    // Mosquitto routes one message to every subscriber at once: node-b got
    // its command, so node-a would have by now; give it a margin.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        a_snoop.messages(),
        Vec::<String>::new(),
        "node-a read node-b's command"
    );

    // Revoked: out of the files; after a reload Mosquitto refuses it.
    let out = hearth_ok(&["certs", "revoke", "--device", "node-b", "--data-dir", d]);
    assert!(!out.contains(&pw_b), "{out}");
    assert!(!read(&p("mqtt/passwd")).contains("node-b:"));
    assert!(!read(&p("mqtt/acl")).contains("node-b"));
    assert!(!p("devices/node-b/password").exists());
    assert_eq!(unsafe { libc::kill(mosq.0.id() as i32, libc::SIGHUP) }, 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (ok, _, err) = publish(tls("node-b", &pw_b), "hearth-node/node-b/telemetry", "x");
        if !ok && err.contains("not authorised") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node-b still accepted after revoke + SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // node-a is untouched.
    let (ok, _, err) = publish(tls("node-a", &pw_a), "hearth-node/node-a/status", "online");
    assert!(ok, "node-a after node-b's revocation: {err}");
    drop(mosq);
}
