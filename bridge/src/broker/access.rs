//! Who may connect to the embedded broker, and what each client may
//! publish and subscribe to (DESIGN.md §8; rumqttd has no topic ACLs, so
//! the front decides before rumqttd sees a packet).
//!
//! - CONNECT: a username must come with its password from the password
//!   file (`<data>/mqtt/passwd`, Mosquitto's format); without a username, a
//!   client certificate signed by the CA whose CN has a `user CN` block in
//!   the ACL is the identity (Mosquitto's `use_identity_as_username`).
//!   Refusals: CONNACK 4 (bad user name or password) or 5 (not authorized:
//!   anonymous, an unknown certificate identity, a will topic the ACL
//!   denies).
//! - PUBLISH: forwarded only if the ACL lets the user write the topic;
//!   otherwise dropped, QoS 1/2 still acknowledged (as Mosquitto does).
//! - SUBSCRIBE: filters the ACL does not cover are taken out before rumqttd
//!   sees the packet and get 0x80 in the SUBACK.
//!
//! The files are read again when their modification time changes (checked
//! at each CONNECT), so `hearth certs issue` takes effect without a
//! restart; connected clients keep the rules they connected with.

use super::wire;
use crate::security::acl::Acl;
use crate::security::passwd::Passwd;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// CONNACK return codes (MQTT 3.1.1 §3.2.2.3).
pub const IDENTIFIER_REJECTED: u8 = 2;
pub const BAD_CREDENTIALS: u8 = 4;
pub const NOT_AUTHORIZED: u8 = 5;

/// Denials remembered per connection for logging once; past this, further
/// new topics are still denied but no longer logged.
const DENIALS_LOGGED_PER_CONNECTION: usize = 64;

/// What the front counts (tests and diagnostics).
#[derive(Debug, Default)]
pub struct FrontStats {
    /// CONNECTs refused with a CONNACK code.
    pub refused: AtomicU64,
    /// Denial log lines written (one per client and topic or filter).
    pub denials_logged: AtomicU64,
    /// PUBLISH packets dropped and SUBSCRIBE filters refused.
    pub denied: AtomicU64,
    /// Connections closed at once because the front was at its cap.
    pub over_cap: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub failed_handshakes: AtomicU64,
}

/// The password file and ACL, reloaded when they change.
pub struct Access {
    passwd_path: PathBuf,
    acl_path: PathBuf,
    loaded: Mutex<Loaded>,
}

struct Loaded {
    passwd: Arc<Passwd>,
    acl: Arc<Acl>,
    stamps: (Option<SystemTime>, Option<SystemTime>),
}

fn stamp(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Access {
    /// Reads both files; an error names the file and the line.
    pub fn load(passwd: &Path, acl: &Path) -> anyhow::Result<Access> {
        let loaded = Loaded {
            stamps: (stamp(passwd), stamp(acl)),
            passwd: Arc::new(Passwd::load(passwd)?),
            acl: Arc::new(Acl::load(acl)?),
        };
        Ok(Access {
            passwd_path: passwd.to_path_buf(),
            acl_path: acl.to_path_buf(),
            loaded: Mutex::new(loaded),
        })
    }

    /// The current rules, read again if a file changed (a file that no
    /// longer parses keeps the previous rules, with a warning).
    fn current(&self) -> (Arc<Passwd>, Arc<Acl>) {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let stamps = (stamp(&self.passwd_path), stamp(&self.acl_path));
        if stamps != loaded.stamps {
            loaded.stamps = stamps;
            match Passwd::load(&self.passwd_path) {
                Ok(p) => loaded.passwd = Arc::new(p),
                Err(e) => tracing::warn!("embedded MQTT broker: keeping the old passwords: {e:#}"),
            }
            match Acl::load(&self.acl_path) {
                Ok(a) => loaded.acl = Arc::new(a),
                Err(e) => tracing::warn!("embedded MQTT broker: keeping the old ACL: {e:#}"),
            }
        }
        (loaded.passwd.clone(), loaded.acl.clone())
    }

    /// Decides on a CONNECT; `cert_cn` is the CN of a verified client
    /// certificate. `Err` is the CONNACK return code to refuse with.
    pub fn authenticate(
        &self,
        connect: &wire::Connect<'_>,
        cert_cn: Option<&str>,
    ) -> Result<Guard, (u8, String)> {
        let (passwd, acl) = self.current();
        let user = match (connect.username, cert_cn) {
            (Some(user), _) => {
                let password = connect.password.unwrap_or_default();
                if !passwd.verify(user, password) {
                    return Err((
                        BAD_CREDENTIALS,
                        format!(
                            "bad user name or password for user `{}`",
                            user.escape_debug()
                        ),
                    ));
                }
                user.to_string()
            }
            (None, Some(cn)) if acl.has_user(cn) => cn.to_string(),
            (None, Some(cn)) => {
                return Err((
                    NOT_AUTHORIZED,
                    format!(
                        "client certificate CN `{}` has no entry in the ACL",
                        cn.escape_debug()
                    ),
                ));
            }
            (None, None) => {
                return Err((
                    NOT_AUTHORIZED,
                    "anonymous (no user name, no client certificate)".into(),
                ));
            }
        };
        let client_id = connect.client_id.to_string();
        if let Some(topic) = connect.will_topic {
            let id = Some(client_id.as_str()).filter(|c| !c.is_empty());
            if !acl.may_publish_client(&user, id, topic) {
                return Err((
                    NOT_AUTHORIZED,
                    format!(
                        "user `{}` may not publish its will topic `{}`",
                        user.escape_debug(),
                        topic.escape_debug()
                    ),
                ));
            }
        }
        Ok(Guard {
            user,
            clean_session: connect.clean_session,
            client_id,
            acl,
            state: Mutex::new(GuardState::default()),
        })
    }
}

/// One authenticated connection's rights and bookkeeping.
pub struct Guard {
    pub user: String,
    pub client_id: String,
    pub clean_session: bool,
    acl: Arc<Acl>,
    state: Mutex<GuardState>,
}

#[derive(Default)]
struct GuardState {
    /// Topics and filters whose denial was logged.
    logged: HashSet<String>,
    /// QoS 2 publishes dropped: their PUBREL gets our PUBCOMP.
    dropped_qos2: HashSet<u16>,
    /// SUBSCRIBEs forwarded with filters taken out: packet id → for each
    /// filter of the original, whether it was refused.
    pending: HashMap<u16, Vec<bool>>,
}

/// What the front does with one packet from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Relay it (rewritten if `Some`).
    Forward(Option<Vec<u8>>),
    /// Do not relay; send the client this answer, if any.
    Answer(Option<Vec<u8>>),
    /// Close the connection (a packet the front cannot judge).
    Close(&'static str),
}

impl Guard {
    fn client(&self) -> Option<&str> {
        Some(self.client_id.as_str()).filter(|c| !c.is_empty())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, GuardState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs a denial once per connection and topic (or filter).
    fn denied(&self, what: &str, name: &str, stats: &FrontStats) {
        stats.denied.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state();
        if state.logged.len() >= DENIALS_LOGGED_PER_CONNECTION || !state.logged.insert(name.into())
        {
            return;
        }
        stats.denials_logged.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            "embedded MQTT broker: client `{}` (user `{}`) may not {what} `{}`; denied (logged once per topic for this connection)",
            self.client_id.escape_debug(),
            self.user.escape_debug(),
            name.escape_debug()
        );
    }

    /// Judges a packet from the client (after its CONNECT).
    pub fn inspect(&self, packet: &[u8], stats: &FrontStats) -> Verdict {
        match wire::kind(packet) {
            wire::PUBLISH => {
                let Some((topic, qos, id)) = wire::parse_publish(packet) else {
                    return Verdict::Close("malformed PUBLISH");
                };
                if self
                    .acl
                    .may_publish_client(&self.user, self.client(), topic)
                {
                    return Verdict::Forward(None);
                }
                self.denied("publish to", topic, stats);
                match qos {
                    1 => Verdict::Answer(Some(wire::ack(4, id).to_vec())),
                    2 => {
                        self.state().dropped_qos2.insert(id);
                        Verdict::Answer(Some(wire::ack(5, id).to_vec()))
                    }
                    _ => Verdict::Answer(None),
                }
            }
            wire::PUBREL => match wire::ack_id(packet) {
                Some(id) if self.state().dropped_qos2.remove(&id) => {
                    Verdict::Answer(Some(wire::ack(7, id).to_vec()))
                }
                _ => Verdict::Forward(None),
            },
            wire::SUBSCRIBE => {
                let Some((id, filters)) = wire::parse_subscribe(packet) else {
                    return Verdict::Close("malformed SUBSCRIBE");
                };
                let refused: Vec<bool> = filters
                    .iter()
                    .map(|(f, _)| !self.acl.may_subscribe_client(&self.user, self.client(), f))
                    .collect();
                if !refused.iter().any(|&r| r) {
                    return Verdict::Forward(None);
                }
                for ((filter, _), _) in filters.iter().zip(&refused).filter(|(_, r)| **r) {
                    self.denied("subscribe to", filter, stats);
                }
                if refused.iter().all(|&r| r) {
                    let codes = vec![0x80; filters.len()];
                    return Verdict::Answer(Some(wire::suback(id, &codes)));
                }
                let kept: Vec<(&str, u8)> = filters
                    .iter()
                    .zip(&refused)
                    .filter(|(_, r)| !**r)
                    .map(|(f, _)| *f)
                    .collect();
                self.state().pending.insert(id, refused);
                Verdict::Forward(Some(wire::subscribe(id, &kept)))
            }
            wire::CONNECT => Verdict::Close("second CONNECT"),
            _ => Verdict::Forward(None),
        }
    }

    /// A SUBACK from rumqttd for a SUBSCRIBE with filters taken out, with
    /// 0x80 put back at their places; `None`: relay unchanged.
    pub fn patch_suback(&self, packet: &[u8]) -> Option<Vec<u8>> {
        let (id, codes) = wire::parse_suback(packet)?;
        let refused = self.state().pending.remove(&id)?;
        let mut granted = codes.iter();
        let full: Vec<u8> = refused
            .iter()
            .map(|&r| {
                if r {
                    0x80
                } else {
                    *granted.next().unwrap_or(&0x80)
                }
            })
            .collect();
        Some(wire::suback(id, &full))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACL: &str = "user node-a\ntopic write hearth-node/node-a/telemetry\ntopic read hearth-node/node-a/valve/set\n\nuser homeassistant\ntopic readwrite homeassistant/#\n";

    fn access() -> (tempfile::TempDir, Access) {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Passwd::default();
        p.set("node-a", "pw-a");
        std::fs::write(dir.path().join("passwd"), p.to_file_text()).unwrap();
        std::fs::write(dir.path().join("acl"), ACL).unwrap();
        let a = Access::load(&dir.path().join("passwd"), &dir.path().join("acl")).unwrap();
        (dir, a)
    }

    fn connect<'a>(user: Option<&'a str>, pass: Option<&'a [u8]>) -> wire::Connect<'a> {
        wire::Connect {
            client_id: "c1",
            will_topic: None,
            username: user,
            password: pass,
            clean_session: true,
        }
    }

    #[test]
    fn connects_are_refused_with_the_right_code() {
        let (_dir, a) = access();
        let code = |c: &wire::Connect<'_>, cn| a.authenticate(c, cn).err().map(|e| e.0);
        assert_eq!(code(&connect(Some("node-a"), Some(b"pw-a")), None), None);
        assert_eq!(code(&connect(Some("node-a"), Some(b"no")), None), Some(4));
        assert_eq!(code(&connect(Some("nobody"), Some(b"pw-a")), None), Some(4));
        assert_eq!(code(&connect(Some("node-a"), None), None), Some(4));
        assert_eq!(code(&connect(None, None), None), Some(5));
        assert_eq!(code(&connect(None, None), Some("node-a")), None);
        assert_eq!(code(&connect(None, None), Some("stranger")), Some(5));
        let mut will = connect(Some("node-a"), Some(b"pw-a"));
        will.will_topic = Some("hearth-node/node-b/status");
        assert_eq!(code(&will, None), Some(5));
        // The message names the user, never the password.
        let msg = a.authenticate(&connect(Some("node-a"), Some(b"wrong-pw")), None);
        let msg = msg.err().unwrap().1;
        assert!(msg.contains("node-a") && !msg.contains("wrong-pw"), "{msg}");
    }

    #[test]
    fn denied_publishes_are_acked_and_denied_filters_patched() {
        let (_dir, a) = access();
        let g = a
            .authenticate(&connect(Some("node-a"), Some(b"pw-a")), None)
            .unwrap();
        let stats = FrontStats::default();
        let publish = |topic: &str, qos: u8| {
            let mut body = (topic.len() as u16).to_be_bytes().to_vec();
            body.extend_from_slice(topic.as_bytes());
            if qos > 0 {
                body.extend_from_slice(&[0, 42]);
            }
            body.extend_from_slice(b"{}");
            let mut p = vec![0x30 | (qos << 1), body.len() as u8];
            p.extend_from_slice(&body);
            p
        };
        let own = publish("hearth-node/node-a/telemetry", 1);
        assert_eq!(g.inspect(&own, &stats), Verdict::Forward(None));
        let other = publish("hearth-node/node-b/telemetry", 1);
        for _ in 0..3 {
            assert_eq!(
                g.inspect(&other, &stats),
                Verdict::Answer(Some(vec![0x40, 2, 0, 42]))
            );
        }
        assert_eq!(stats.denials_logged.load(Ordering::Relaxed), 1);
        assert_eq!(stats.denied.load(Ordering::Relaxed), 3);
        let q2 = publish("hearth-node/node-b/telemetry", 2);
        assert_eq!(
            g.inspect(&q2, &stats),
            Verdict::Answer(Some(vec![0x50, 2, 0, 42]))
        );
        let rel = [0x62, 2, 0, 42];
        assert_eq!(
            g.inspect(&rel, &stats),
            Verdict::Answer(Some(vec![0x70, 2, 0, 42]))
        );
        assert_eq!(g.inspect(&rel, &stats), Verdict::Forward(None), "only once");
        assert_eq!(
            g.inspect(&publish("hearth-node/node-b/x", 0), &stats),
            Verdict::Answer(None)
        );

        let sub = wire::subscribe(
            5,
            &[
                ("hearth-node/node-b/valve/set", 1),
                ("hearth-node/node-a/valve/set", 1),
            ],
        );
        let Verdict::Forward(Some(kept)) = g.inspect(&sub, &stats) else {
            panic!("partly denied SUBSCRIBE is forwarded rewritten")
        };
        assert_eq!(
            kept,
            wire::subscribe(5, &[("hearth-node/node-a/valve/set", 1)])
        );
        let patched = g.patch_suback(&wire::suback(5, &[1])).unwrap();
        assert_eq!(patched, wire::suback(5, &[0x80, 1]));
        assert_eq!(g.patch_suback(&wire::suback(5, &[1])), None, "only once");
        let all = wire::subscribe(6, &[("#", 0)]);
        assert_eq!(
            g.inspect(&all, &stats),
            Verdict::Answer(Some(wire::suback(6, &[0x80])))
        );
    }
}
