//! Shared by the host tests: commands, ports, Mosquitto, a watching subscriber.

#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mqttrs::{Connect, Packet, Protocol, decode_slice, encode_slice};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Every network wait in the tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// (topic, payload, retain) as the watcher received them.
pub type Messages = tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>, bool)>;

pub fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .expect("spawn (openssl / mosquitto_passwd on PATH?)");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Mosquitto started on `conf`; killed (and `dir` removed) on drop.
pub struct Mosquitto {
    child: Child,
    pub dir: PathBuf,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `mosquitto -c conf` and waits until every port in `ports` accepts.
pub async fn mosquitto(dir: PathBuf, conf: &str, ports: &[u16]) -> Mosquitto {
    std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(dir.join("mosquitto.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto on PATH");
    let m = Mosquitto { child, dir };
    let ready = async {
        'wait: loop {
            for &p in ports {
                if TcpStream::connect(("127.0.0.1", p)).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue 'wait;
                }
            }
            return;
        }
    };
    timeout(WAIT, ready).await.expect("mosquitto did not start");
    m
}

/// A plain-TCP subscriber to `hearth-node/#` that collects (topic, payload, retain).
pub async fn watcher(port: u16, user: &str, password: &str) -> Messages {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = encode_slice(
        &Packet::Connect(Connect {
            protocol: Protocol::MQTT311,
            keep_alive: 60,
            client_id: "watcher",
            clean_session: true,
            last_will: None,
            username: Some(user),
            password: Some(password.as_bytes()),
        }),
        &mut buf,
    )
    .unwrap();
    tcp.write_all(&buf[..n]).await.unwrap();
    // SUBSCRIBE pid 1, "hearth-node/#" QoS 0 (encoded by hand: mqttrs's
    // no_std topic list type is private).
    let filter = b"hearth-node/#";
    let mut sub = vec![
        0x82,
        (2 + 2 + filter.len() + 1) as u8,
        0,
        1,
        0,
        filter.len() as u8,
    ];
    sub.extend_from_slice(filter);
    sub.push(0);
    tcp.write_all(&sub).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut subscribed_tx = Some(subscribed_tx);
        let mut acc: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 2048];
        loop {
            let Ok(n) = tcp.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                return;
            }
            acc.extend_from_slice(&chunk[..n]);
            while let Some(total) = frame_len(&acc) {
                match decode_slice(&acc[..total]) {
                    Ok(Some(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic_name.to_string(), p.payload.to_vec(), p.retain));
                    }
                    Ok(Some(Packet::Suback(_))) => {
                        if let Some(s) = subscribed_tx.take() {
                            let _ = s.send(());
                        }
                    }
                    _ => {}
                }
                acc.drain(..total);
            }
        }
    });
    timeout(WAIT, subscribed_rx)
        .await
        .expect("watcher SUBACK timed out")
        .unwrap();
    rx
}

pub fn frame_len(buf: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for pos in 0..4 {
        let b = *buf.get(1 + pos)?;
        len += usize::from(b & 0x7F) << (7 * pos);
        if b & 0x80 == 0 {
            let total = 2 + pos + len;
            return (buf.len() >= total).then_some(total);
        }
    }
    None
}

pub async fn next_message(rx: &mut Messages) -> (String, Vec<u8>, bool) {
    timeout(WAIT, rx.recv())
        .await
        .expect("no message within 10 s")
        .expect("watcher closed")
}
