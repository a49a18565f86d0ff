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
//! - A client certificate is accepted only if it is the one `hearth certs
//!   issue` wrote for its CN (`<data>/devices/<CN>/client.pem`, compared
//!   byte for byte): a re-issued or revoked id's older certificate, though
//!   it still chains to the CA, no longer logs in.
//!
//! The files are read again when they change (modification time, inode or
//! size: an atomic rename changes the inode), checked at each CONNECT and
//! every [`RELOAD_EVERY`] by the front. On a change, live connections are
//! checked again ([`Access::recheck`]): a user no longer in the password
//! file (or whose password changed), or a certificate login whose CN left
//! the ACL or whose certificate was replaced, is disconnected; the others
//! judge their next packets by the new ACL. So `hearth certs issue` and
//! `revoke` take effect without a restart.

use super::wire;
use crate::security::SecurityPaths;
use crate::security::acl::Acl;
use crate::security::passwd::Passwd;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// CONNACK return codes (MQTT 3.1.1 §3.2.2.3).
pub const IDENTIFIER_REJECTED: u8 = 2;
pub const BAD_CREDENTIALS: u8 = 4;
pub const NOT_AUTHORIZED: u8 = 5;

/// Denials remembered per connection for logging once; past this, further
/// new topics are still denied but no longer logged.
const DENIALS_LOGGED_PER_CONNECTION: usize = 64;
/// How often the front looks at the password file and ACL for changes.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);
/// Refusal and denial lines logged per [`LOG_INTERVAL`] (all connections
/// together); past this they are counted and the count logged once the
/// next interval starts, so neither a password-guessing client nor a
/// device reconnecting in a loop can fill the log.
pub const LINES_PER_INTERVAL: u32 = 10;
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

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
    /// Connections closed at once because their address was at its cap.
    pub over_ip_cap: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub failed_handshakes: AtomicU64,
    /// MQTT 5 CONNECTs answered "unsupported protocol version".
    pub unsupported_protocol: AtomicU64,
    /// Live connections closed because their login was revoked.
    pub revoked: AtomicU64,
    /// Connections given a slot (`GET /metrics`: broker connections).
    pub accepted: AtomicU64,
    /// Connections open now (accepted and not yet closed).
    pub connections: AtomicU64,
}

/// A per-interval budget of log lines shared by every connection of a
/// front: refusals, failed handshakes and topic denials.
pub struct LogBudget(Mutex<BudgetState>);

struct BudgetState {
    since: Instant,
    logged: u32,
    suppressed: u64,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget(Mutex::new(BudgetState {
            since: Instant::now(),
            logged: 0,
            suppressed: 0,
        }))
    }
}

impl LogBudget {
    /// Whether one more line may be logged now; logs the count of lines
    /// suppressed in the interval before, if any.
    pub fn allow(&self) -> bool {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if b.since.elapsed() >= LOG_INTERVAL {
            if b.suppressed > 0 {
                tracing::warn!(
                    "embedded MQTT broker: {} more refused connections, failed TLS handshakes or denied topics were not logged",
                    b.suppressed
                );
            }
            *b = BudgetState {
                since: Instant::now(),
                logged: 0,
                suppressed: 0,
            };
        }
        if b.logged < LINES_PER_INTERVAL {
            b.logged += 1;
            true
        } else {
            b.suppressed += 1;
            false
        }
    }
}

/// A verified client certificate: its leaf's CN and DER bytes.
#[derive(Clone)]
pub struct ClientCert {
    pub cn: String,
    pub der: Vec<u8>,
}

/// The password file and ACL, reloaded when they change.
pub struct Access {
    passwd_path: PathBuf,
    acl_path: PathBuf,
    /// Where each device's issued certificate is (certificate logins are
    /// refused without it).
    devices: Option<SecurityPaths>,
    loaded: Mutex<Loaded>,
    /// Bumped at each reload; live connections watch it.
    generation: watch::Sender<u64>,
}

struct Loaded {
    passwd: Arc<Passwd>,
    acl: Arc<Acl>,
    stamps: (Stamp, Stamp),
}

/// What tells a file changed: modification time, inode, size.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some((m.modified().ok()?, inode, m.len()))
}

/// How a connection logged in, as checked again on reload.
enum Login {
    /// User name and password: its password file entry then.
    Password(Arc<Passwd>),
    /// Client certificate (leaf DER).
    Certificate(Vec<u8>),
}

impl Access {
    /// Reads both files; an error names the file and the line. Certificate
    /// logins need [`Access::with_device_certs`].
    pub fn load(passwd: &Path, acl: &Path) -> anyhow::Result<Access> {
        let loaded = Loaded {
            stamps: (stamp(passwd), stamp(acl)),
            passwd: Arc::new(Passwd::load(passwd)?),
            acl: Arc::new(Acl::load(acl)?),
        };
        Ok(Access {
            passwd_path: passwd.to_path_buf(),
            acl_path: acl.to_path_buf(),
            devices: None,
            loaded: Mutex::new(loaded),
            generation: watch::channel(0).0,
        })
    }

    /// Accepts client certificates that are the ones issued in `paths`'
    /// data directory (`<data>/devices/<CN>/client.pem`).
    pub fn with_device_certs(mut self, paths: SecurityPaths) -> Access {
        self.devices = Some(paths);
        self
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
            self.generation.send_modify(|g| *g += 1);
        }
        (loaded.passwd.clone(), loaded.acl.clone())
    }

    /// Reads the files again if they changed (the front calls this every
    /// [`RELOAD_EVERY`]).
    pub fn refresh(&self) {
        let _ = self.current();
    }

    /// Changes each time the files are read again.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Whether `cert` is the certificate issued for `cn` (its DER equals
    /// the leaf of `<data>/devices/<cn>/client.pem`).
    fn issued(&self, cn: &str, der: &[u8]) -> Result<(), String> {
        let Some(paths) = &self.devices else {
            return Err("certificate logins need the data directory's device certificates".into());
        };
        if cn.is_empty() || cn == "." || cn == ".." || cn.contains(['/', '\\', '\0']) {
            return Err(format!(
                "client certificate CN `{}` is not a device id",
                cn.escape_debug()
            ));
        }
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let file = paths.device_cert(cn);
        let issued = CertificateDer::pem_file_iter(&file)
            .ok()
            .and_then(|mut it| it.next())
            .and_then(Result::ok);
        match issued {
            Some(issued) if issued.as_ref() == der => Ok(()),
            Some(_) => Err(format!(
                "client certificate for CN `{}` is not the one issued in {} (re-issued or revoked)",
                cn.escape_debug(),
                file.display()
            )),
            None => Err(format!(
                "no issued certificate for CN `{}` ({} missing or unreadable)",
                cn.escape_debug(),
                file.display()
            )),
        }
    }

    /// Decides on a CONNECT; `cert` is a verified client certificate. `Err`
    /// is the CONNACK return code to refuse with. The password hash is
    /// computed on tokio's blocking pool (PBKDF2 must not stall the front's
    /// thread and every relay on it).
    pub async fn authenticate(
        &self,
        connect: &wire::Connect<'_>,
        cert: Option<&ClientCert>,
    ) -> Result<Guard, (u8, String)> {
        let (passwd, acl) = self.current();
        let (user, login) = match (connect.username, cert) {
            (Some(user), _) => {
                let password = connect.password.unwrap_or_default().to_vec();
                let (p, u) = (passwd.clone(), user.to_string());
                let ok = tokio::task::spawn_blocking(move || p.verify(&u, &password))
                    .await
                    .unwrap_or(false);
                if !ok {
                    return Err((
                        BAD_CREDENTIALS,
                        format!(
                            "bad user name or password for user `{}`",
                            user.escape_debug()
                        ),
                    ));
                }
                (user.to_string(), Login::Password(passwd))
            }
            (None, Some(c)) if acl.has_user(&c.cn) => {
                self.issued(&c.cn, &c.der)
                    .map_err(|why| (NOT_AUTHORIZED, why))?;
                (c.cn.clone(), Login::Certificate(c.der.clone()))
            }
            (None, Some(c)) => {
                return Err((
                    NOT_AUTHORIZED,
                    format!(
                        "client certificate CN `{}` has no entry in the ACL",
                        c.cn.escape_debug()
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
            login,
            acl: Mutex::new(acl),
            state: Mutex::new(GuardState::default()),
        })
    }

    /// Checks a live connection against the current files: `Err` (why)
    /// when its login no longer holds (user gone from the password file or
    /// password changed; certificate CN gone from the ACL or certificate
    /// replaced); otherwise its next packets are judged by the current ACL.
    pub fn recheck(&self, guard: &Guard) -> Result<(), String> {
        let (passwd, acl) = self.current();
        let user = guard.user.escape_debug();
        match &guard.login {
            Login::Password(then) if !passwd.same_entry(then, &guard.user) => {
                return Err(match passwd.contains(&guard.user) {
                    true => format!("the password of user `{user}` changed"),
                    false => format!("user `{user}` is no longer in the password file"),
                });
            }
            Login::Password(_) => {}
            Login::Certificate(der) => {
                if !acl.has_user(&guard.user) {
                    return Err(format!(
                        "certificate identity `{user}` is no longer in the ACL"
                    ));
                }
                self.issued(&guard.user, der)?;
            }
        }
        *guard.acl.lock().unwrap_or_else(|e| e.into_inner()) = acl;
        Ok(())
    }
}

/// One authenticated connection's rights and bookkeeping.
pub struct Guard {
    pub user: String,
    pub client_id: String,
    pub clean_session: bool,
    login: Login,
    /// The rules its packets are judged by (replaced on reload).
    acl: Mutex<Arc<Acl>>,
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

    /// The rules now in force for this connection.
    fn acl(&self) -> Arc<Acl> {
        self.acl.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Logs a denial once per connection and topic (or filter), within the
    /// front's log budget shared by all connections.
    fn denied(&self, what: &str, name: &str, stats: &FrontStats, log: &LogBudget) {
        stats.denied.fetch_add(1, Ordering::Relaxed);
        {
            let mut state = self.state();
            if state.logged.len() >= DENIALS_LOGGED_PER_CONNECTION
                || !state.logged.insert(name.into())
            {
                return;
            }
        }
        if !log.allow() {
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
    pub fn inspect(&self, packet: &[u8], stats: &FrontStats, log: &LogBudget) -> Verdict {
        let acl = self.acl();
        match wire::kind(packet) {
            wire::PUBLISH => {
                let Some((topic, qos, id)) = wire::parse_publish(packet) else {
                    return Verdict::Close("malformed PUBLISH");
                };
                if acl.may_publish_client(&self.user, self.client(), topic) {
                    return Verdict::Forward(None);
                }
                self.denied("publish to", topic, stats, log);
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
                    .map(|(f, _)| !acl.may_subscribe_client(&self.user, self.client(), f))
                    .collect();
                if !refused.iter().any(|&r| r) {
                    return Verdict::Forward(None);
                }
                for ((filter, _), _) in filters.iter().zip(&refused).filter(|(_, r)| **r) {
                    self.denied("subscribe to", filter, stats, log);
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
        let a = Access::load(&dir.path().join("passwd"), &dir.path().join("acl"))
            .unwrap()
            .with_device_certs(SecurityPaths::new(dir.path()));
        (dir, a)
    }

    /// A self-signed certificate with CN `cn`, DER and PEM.
    fn cert(cn: &str) -> (Vec<u8>, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let c = params.self_signed(&key).unwrap();
        (c.der().to_vec(), c.pem())
    }

    fn issue(dir: &Path, cn: &str) -> ClientCert {
        let (der, pem) = cert(cn);
        let paths = SecurityPaths::new(dir);
        std::fs::create_dir_all(paths.device_dir(cn)).unwrap();
        std::fs::write(paths.device_cert(cn), pem).unwrap();
        ClientCert { cn: cn.into(), der }
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

    async fn code(a: &Access, c: &wire::Connect<'_>, cert: Option<&ClientCert>) -> Option<u8> {
        a.authenticate(c, cert).await.err().map(|e| e.0)
    }

    #[tokio::test]
    async fn connects_are_refused_with_the_right_code() {
        let (dir, a) = access();
        let node_a = issue(dir.path(), "node-a");
        let stranger = issue(dir.path(), "stranger");
        let ok = connect(Some("node-a"), Some(b"pw-a"));
        assert_eq!(code(&a, &ok, None).await, None);
        assert_eq!(
            code(&a, &connect(Some("node-a"), Some(b"no")), None).await,
            Some(4)
        );
        assert_eq!(
            code(&a, &connect(Some("nobody"), Some(b"pw-a")), None).await,
            Some(4)
        );
        assert_eq!(
            code(&a, &connect(Some("node-a"), None), None).await,
            Some(4)
        );
        assert_eq!(code(&a, &connect(None, None), None).await, Some(5));
        assert_eq!(code(&a, &connect(None, None), Some(&node_a)).await, None);
        assert_eq!(
            code(&a, &connect(None, None), Some(&stranger)).await,
            Some(5)
        );
        let mut will = connect(Some("node-a"), Some(b"pw-a"));
        will.will_topic = Some("hearth-node/node-b/status");
        assert_eq!(code(&a, &will, None).await, Some(5));
        // The message names the user, never the password.
        let wrong = connect(Some("node-a"), Some(b"wrong-pw"));
        let msg = a.authenticate(&wrong, None).await.err().unwrap().1;
        assert!(msg.contains("node-a") && !msg.contains("wrong-pw"), "{msg}");
    }

    #[tokio::test]
    async fn only_the_issued_certificate_of_a_cn_logs_in() {
        let (dir, a) = access();
        let old = issue(dir.path(), "node-a");
        // Re-issued: the old certificate (still signed by the CA) is out.
        let new = issue(dir.path(), "node-a");
        let anonymous = connect(None, None);
        assert_eq!(code(&a, &anonymous, Some(&new)).await, None);
        assert_eq!(code(&a, &anonymous, Some(&old)).await, Some(5));
        // No issued certificate file, or no device directory configured.
        std::fs::remove_file(SecurityPaths::new(dir.path()).device_cert("node-a")).unwrap();
        assert_eq!(code(&a, &anonymous, Some(&new)).await, Some(5));
        let unpinned = Access::load(&dir.path().join("passwd"), &dir.path().join("acl")).unwrap();
        assert_eq!(code(&unpinned, &anonymous, Some(&new)).await, Some(5));
    }

    #[tokio::test]
    async fn a_reload_cuts_off_revoked_logins_and_gives_the_others_new_rules() {
        let (dir, a) = access();
        let cert = issue(dir.path(), "node-a");
        let by_password = a
            .authenticate(&connect(Some("node-a"), Some(b"pw-a")), None)
            .await
            .unwrap();
        let by_cert = a
            .authenticate(&connect(None, None), Some(&cert))
            .await
            .unwrap();
        let changes = a.changes();
        let stats = FrontStats::default();
        let log = LogBudget::default();
        let sub = wire::subscribe(1, &[("hearth-node/node-a/valve/set", 0)]);
        assert_eq!(by_cert.inspect(&sub, &stats, &log), Verdict::Forward(None));
        // The ACL loses node-a's read right (replaced by rename, same size
        // and modification time: only the inode tells).
        let acl_path = dir.path().join("acl");
        let mtime = std::fs::metadata(&acl_path).unwrap().modified().unwrap();
        let tmp = dir.path().join("acl.tmp");
        std::fs::write(&tmp, ACL.replace("topic read hearth", "topic read heartX")).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        std::fs::rename(&tmp, &acl_path).unwrap();
        a.refresh();
        assert!(changes.has_changed().unwrap(), "the rename was seen");
        assert_eq!(a.recheck(&by_cert), Ok(()));
        assert_eq!(
            by_cert.inspect(&sub, &stats, &log),
            Verdict::Answer(Some(wire::suback(1, &[0x80]))),
            "the new rules apply to the next packet"
        );
        assert_eq!(a.recheck(&by_password), Ok(()));
        // Revoked: out of the password file and the ACL.
        let mut p = Passwd::load(&dir.path().join("passwd")).unwrap();
        p.remove("node-a");
        std::fs::write(dir.path().join("passwd"), p.to_file_text()).unwrap();
        let e = a.recheck(&by_password).unwrap_err();
        assert!(e.contains("no longer in the password file"), "{e}");
        std::fs::write(
            &acl_path,
            "user homeassistant\ntopic readwrite homeassistant/#\n",
        )
        .unwrap();
        let e = a.recheck(&by_cert).unwrap_err();
        assert!(e.contains("no longer in the ACL"), "{e}");
    }

    #[tokio::test]
    async fn denial_lines_share_one_budget_across_connections() {
        let (_dir, a) = access();
        let stats = FrontStats::default();
        let log = LogBudget::default();
        let mut body = 27u16.to_be_bytes().to_vec();
        body.extend_from_slice(b"hearth-node/node-b/telemetr");
        let publish = [&[0x30, body.len() as u8][..], &body].concat();
        // A device reconnecting in a loop, each time denied the same topic.
        for _ in 0..30 {
            let g = a
                .authenticate(&connect(Some("node-a"), Some(b"pw-a")), None)
                .await
                .unwrap();
            assert_eq!(g.inspect(&publish, &stats, &log), Verdict::Answer(None));
        }
        assert_eq!(stats.denied.load(Ordering::Relaxed), 30);
        assert_eq!(
            stats.denials_logged.load(Ordering::Relaxed),
            u64::from(LINES_PER_INTERVAL)
        );
    }

    #[tokio::test]
    async fn denied_publishes_are_acked_and_denied_filters_patched() {
        let (_dir, a) = access();
        let g = a
            .authenticate(&connect(Some("node-a"), Some(b"pw-a")), None)
            .await
            .unwrap();
        let stats = FrontStats::default();
        let log = LogBudget::default();
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
        assert_eq!(g.inspect(&own, &stats, &log), Verdict::Forward(None));
        let other = publish("hearth-node/node-b/telemetry", 1);
        for _ in 0..3 {
            assert_eq!(
                g.inspect(&other, &stats, &log),
                Verdict::Answer(Some(vec![0x40, 2, 0, 42]))
            );
        }
        assert_eq!(stats.denials_logged.load(Ordering::Relaxed), 1);
        assert_eq!(stats.denied.load(Ordering::Relaxed), 3);
        let q2 = publish("hearth-node/node-b/telemetry", 2);
        assert_eq!(
            g.inspect(&q2, &stats, &log),
            Verdict::Answer(Some(vec![0x50, 2, 0, 42]))
        );
        let rel = [0x62, 2, 0, 42];
        assert_eq!(
            g.inspect(&rel, &stats, &log),
            Verdict::Answer(Some(vec![0x70, 2, 0, 42]))
        );
        assert_eq!(
            g.inspect(&rel, &stats, &log),
            Verdict::Forward(None),
            "only once"
        );
        assert_eq!(
            g.inspect(&publish("hearth-node/node-b/x", 0), &stats, &log),
            Verdict::Answer(None)
        );

        let sub = wire::subscribe(
            5,
            &[
                ("hearth-node/node-b/valve/set", 1),
                ("hearth-node/node-a/valve/set", 1),
            ],
        );
        let Verdict::Forward(Some(kept)) = g.inspect(&sub, &stats, &log) else {
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
            g.inspect(&all, &stats, &log),
            Verdict::Answer(Some(wire::suback(6, &[0x80])))
        );
    }
}
