//! The real `hearth` binary stops cleanly on SIGTERM (systemd, `docker
//! stop`) and SIGINT (Ctrl-C): exit status 0, the demo's summary printed,
//! the bridge's "stopped" line logged and `hearth/bridge/state` retained
//! `offline` — with and without `--for` (a `--for` demo used to sleep
//! without listening, so SIGTERM killed it mid-run).
//!
//! [`DemoProcess`] is also what the restart tests use to kill a demo.

use crate::common::{self, Observer, wait_for};
use hearth::broker::{BrokerAddress, EmbeddedBroker};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a demo may take to be up: compiling nothing (the plugin code
/// cache is per data directory, so the first start compiles: seconds on a
/// loaded 2-core machine).
const STARTUP: Duration = Duration::from_secs(90);

/// A clean stop takes ≈ 2.5 s (tasks' 2 s grace, the link's flush); this
/// bounds a machine busy with other tests.
const STOP: Duration = Duration::from_secs(30);

/// `hearth demo` as a child process; its stdout and stderr are collected.
pub struct DemoProcess {
    child: Child,
    pub http_port: u16,
    output: Arc<Mutex<String>>,
}

impl DemoProcess {
    /// `hearth demo <args> --data-dir <dir> --http-port <free>`; without
    /// `--mqtt-url` in `args`, the embedded broker gets a free port too.
    pub fn spawn(args: &[&str], data_dir: &Path) -> DemoProcess {
        Self::spawn_command("demo", args, data_dir)
    }

    /// `hearth <command> <args> …` with the same ports and data directory
    /// flags (`run` takes them too).
    pub fn spawn_command(command: &str, args: &[&str], data_dir: &Path) -> DemoProcess {
        common::init_logs();
        let http_port = EmbeddedBroker::free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
        cmd.arg(command)
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--http-port", &http_port.to_string()]);
        if !args.contains(&"--mqtt-url") {
            cmd.args(["--mqtt-port", &EmbeddedBroker::free_port().to_string()]);
        }
        let mut child = cmd
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("hearth {command} starts: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let pipes: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for mut pipe in pipes {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]);
                    if std::env::var_os("HEARTH_TEST_LOG").is_some() {
                        eprint!("{text}");
                    }
                    output.lock().unwrap().push_str(&text);
                }
            });
        }
        DemoProcess {
            child,
            http_port,
            output,
        }
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the bridge's "bridge running" line.
    pub async fn wait_running(&mut self) {
        let started = Instant::now();
        while !self.output().contains("bridge running") {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the demo exited ({status}) before running:\n{}",
                    self.output()
                );
            }
            assert!(
                started.elapsed() < STARTUP,
                "the demo was not running after {STARTUP:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(ok.success(), "kill -{signal} {}", self.pid());
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads take the last lines.
                tokio::time::sleep(Duration::from_millis(200)).await;
                return status;
            }
            if started.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "the demo did not exit within {timeout:?} of the signal:\n{}",
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What runs until the signal.
enum Under {
    /// `hearth demo`, with `--for` these seconds or without.
    Demo(Option<&'static str>),
    /// `hearth run` with a config that has no devices.
    Run,
}

/// Runs `under` against Mosquitto (so the retained state outlives the
/// process), sends `signal` once it runs, and checks the clean stop.
async fn stops_cleanly(signal: &str, under: Under) {
    let mosquitto = common::mosquitto();
    let broker = BrokerAddress::local(mosquitto.port);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("mqtt://127.0.0.1:{}", mosquitto.port);
    let config = dir.path().join("bridge.toml");
    std::fs::write(&config, "[homeassistant]\ndiscovery = \"device\"\n").unwrap();
    let config = config.to_string_lossy().to_string();
    let mut demo = match under {
        Under::Demo(run_for) => {
            let mut args = vec!["--speed", "10", "--mqtt-url", url.as_str()];
            if let Some(s) = run_for {
                args.extend(["--for", s]);
            }
            DemoProcess::spawn(&args, dir.path())
        }
        Under::Run => DemoProcess::spawn_command(
            "run",
            &["--config", config.as_str(), "--mqtt-url", url.as_str()],
            dir.path(),
        ),
    };
    demo.wait_running().await;
    let ha = Observer::connect(&broker, "hearth/bridge/state").await;
    wait_for("hearth/bridge/state online", STOP, || {
        (ha.current().get("hearth/bridge/state")?.as_slice() == b"online").then_some(())
    })
    .await;
    let sent = Instant::now();
    demo.signal(signal);
    let status = demo.wait_exit(STOP).await;
    let out = demo.output();
    assert!(
        status.success(),
        "SIG{signal} must stop the demo cleanly with status 0, got {status} after {:?}:\n{out}",
        sent.elapsed()
    );
    assert!(
        out.contains("shutting down")
            && out.contains("bridge stopped; hearth/bridge/state is offline"),
        "the clean stop is logged:\n{out}"
    );
    if matches!(under, Under::Demo(_)) {
        assert!(
            out.contains("Demo summary"),
            "the summary is printed:\n{out}"
        );
    }
    wait_for("hearth/bridge/state offline", STOP, || {
        (ha.current().get("hearth/bridge/state")?.as_slice() == b"offline").then_some(())
    })
    .await;
    // Retained for clients that connect later (HA after its own restart).
    let late = Observer::connect(&broker, "hearth/bridge/state").await;
    wait_for("retained offline", STOP, || {
        (late.current().get("hearth/bridge/state")?.as_slice() == b"offline").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_for_stops_cleanly_on_sigterm() {
    stops_cleanly("TERM", Under::Demo(Some("600"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_for_stops_cleanly_on_sigint() {
    stops_cleanly("INT", Under::Demo(Some("600"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_without_for_stops_cleanly_on_sigterm() {
    stops_cleanly("TERM", Under::Demo(None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stops_cleanly_on_sigterm_and_sigint() {
    stops_cleanly("TERM", Under::Run).await;
    stops_cleanly("INT", Under::Run).await;
}
