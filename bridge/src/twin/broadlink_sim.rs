//! A simulated Broadlink RM4 mini IR gateway on UDP 127.0.0.1 (a random
//! port), speaking the protocol python-broadlink implements
//! (github.com/mjg59/python-broadlink, `broadlink/device.py`,
//! `broadlink/remote.py`; the packet code is the driver's own,
//! [`crate::drivers::broadlink::protocol`]), in front of the twin's air
//! conditioner.
//!
//! - Discovery: a 0x30-byte hello (checksum checked) gets the 0x80-byte
//!   reply (device type, MAC, name).
//! - `auth` (0x65, initial key): answers a fresh session id and key,
//!   encrypted with the initial key; with [`BroadlinkSim::set_refuse_auth`]
//!   it answers error −7 ("Control key is expired") instead.
//! - Commands (0x6A, session key, RM4 framing): `send_data` (0x02) decodes
//!   the IR packet back through the same SmartIR code file (reverse
//!   lookup) and applies it to the plant's [`AcUnit`](super::AcUnit)
//!   (`off` code: remote power off; a mode/fan/temperature code: power on
//!   with those settings), so a plug on the same plant meters the AC.
//!   A wrong session id gets error −7, an unknown RM command −4, a packet
//!   with a bad checksum or length no answer (as a device drops it).
//! - Faults: [`BroadlinkSim::ignore_next`] (the AC does not react to the
//!   next n IR codes, the gateway still acknowledges them: IR is one-way),
//!   [`BroadlinkSim::set_reply_fault`] (the next replies are corrupted:
//!   bad checksum, truncated, or garbage).
//! - [`BroadlinkSim::ir_log`]: every `send_data` with its sim time, what it
//!   meant and whether the AC ignored it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

use super::plant::SharedPlant;
use super::room::{AcMode, AcSettings};
use crate::clock::Clock;
use crate::drivers::broadlink::protocol::{self, Header};
use crate::drivers::broadlink::smartir::{IrMeaning, SmartIrCodes};
use crate::shutdown::Shutdown;

/// What the twin is.
#[derive(Debug, Clone)]
pub struct BroadlinkSimConfig {
    /// The code file the AC understands (the driver's, usually).
    pub codes: SmartIrCodes,
    pub mac: [u8; 6],
    /// 0x520C: an RM4 mini (python-broadlink `rm4mini`).
    pub devtype: u16,
    pub name: String,
}

impl BroadlinkSimConfig {
    /// An RM4 mini named "RM4 mini" with a fixed MAC.
    pub fn rm4_mini(codes: SmartIrCodes) -> Self {
        BroadlinkSimConfig {
            codes,
            mac: [0x34, 0xea, 0x34, 0xb2, 0x11, 0x07],
            devtype: 0x520c,
            name: "RM4 mini".into(),
        }
    }
}

/// How the next replies are corrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyFault {
    /// One byte changed after the checksum was computed.
    BadChecksum,
    /// Cut to 0x20 bytes.
    Truncated,
    /// 7 bytes that are no Broadlink packet.
    Garbage,
}

/// One `send_data` the gateway received.
#[derive(Debug, Clone, PartialEq)]
pub struct IrEntry {
    pub sim_ms: i64,
    /// `None`: not a code of the file.
    pub meaning: Option<IrMeaning>,
    /// The AC did not react (an [`BroadlinkSim::ignore_next`] fault).
    pub ignored: bool,
}

#[derive(Default)]
struct State {
    refuse_auth: bool,
    ignore_next: u32,
    reply_fault: Option<(ReplyFault, u32)>,
    session: Option<(u32, [u8; 16])>,
    log: Vec<IrEntry>,
    auths: u32,
}

/// The running twin; clones share it.
#[derive(Clone)]
pub struct BroadlinkSim {
    addr: SocketAddr,
    cfg: Arc<BroadlinkSimConfig>,
    state: Arc<Mutex<State>>,
    plant: SharedPlant,
}

impl BroadlinkSim {
    /// Binds 127.0.0.1:0 and serves until `shutdown`.
    pub fn spawn(
        clock: Clock,
        cfg: BroadlinkSimConfig,
        plant: SharedPlant,
        mut shutdown: Shutdown,
    ) -> anyhow::Result<BroadlinkSim> {
        // std bind: synchronous, so the twin can start without `.await`.
        let std_sock = std::net::UdpSocket::bind(("127.0.0.1", 0))?;
        std_sock.set_nonblocking(true)?;
        let addr = std_sock.local_addr()?;
        let sim = BroadlinkSim {
            addr,
            cfg: Arc::new(cfg),
            state: Arc::default(),
            plant,
        };
        let server = sim.clone();
        tokio::spawn(async move {
            let sock = match UdpSocket::from_std(std_sock) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("broadlink twin: {e}");
                    return;
                }
            };
            let mut buf = vec![0u8; 4096];
            loop {
                tokio::select! {
                    got = sock.recv_from(&mut buf) => {
                        let Ok((n, from)) = got else { continue };
                        if let Some(reply) = server.handle(&clock, &buf[..n]) {
                            let _ = sock.send_to(&reply, from).await;
                        }
                    }
                    _ = shutdown.wait() => break,
                }
            }
        });
        Ok(sim)
    }

    /// Where it listens (UDP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn mac(&self) -> [u8; 6] {
        self.cfg.mac
    }

    pub fn devtype(&self) -> u16 {
        self.cfg.devtype
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuse (or accept again) `auth` with error −7.
    pub fn set_refuse_auth(&self, refuse: bool) {
        self.state().refuse_auth = refuse;
    }

    /// The AC ignores the next `n` IR codes (the gateway still acks them).
    pub fn ignore_next(&self, n: u32) {
        self.state().ignore_next = n;
    }

    /// Corrupts the next `count` replies (`None`: stop).
    pub fn set_reply_fault(&self, fault: Option<ReplyFault>, count: u32) {
        self.state().reply_fault = fault.map(|f| (f, count));
    }

    /// Successful authentications so far.
    pub fn auths(&self) -> u32 {
        self.state().auths
    }

    /// Every `send_data` received, oldest first.
    pub fn ir_log(&self) -> Vec<IrEntry> {
        self.state().log.clone()
    }

    /// The plant the AC is part of (a plug twin on it meters the AC).
    pub fn plant(&self) -> SharedPlant {
        self.plant.clone()
    }

    /// The AC's remote settings now.
    pub fn ac_settings(&self) -> AcSettings {
        let p = self.plant.lock().unwrap_or_else(|e| e.into_inner());
        p.ac.settings().clone()
    }

    /// One datagram in, maybe one out.
    fn handle(&self, clock: &Clock, buf: &[u8]) -> Option<Vec<u8>> {
        let reply = if protocol::is_hello(buf) {
            protocol::verify_checksum("hello", buf).ok()?;
            protocol::hello_reply(self.cfg.devtype, &self.cfg.mac, &self.cfg.name, false)
        } else {
            let (h, encrypted) = protocol::decode_packet("request", buf).ok()?;
            self.command(clock, &h, encrypted)
        };
        let mut st = self.state();
        let Some((fault, left)) = st.reply_fault else {
            return Some(reply);
        };
        st.reply_fault = (left > 1).then_some((fault, left - 1));
        Some(match fault {
            ReplyFault::BadChecksum => {
                let mut r = reply;
                let last = r.len() - 1;
                r[last] ^= 0x5a;
                r
            }
            ReplyFault::Truncated => reply[..0x20].to_vec(),
            ReplyFault::Garbage => b"garbage".to_vec(),
        })
    }

    fn command(&self, clock: &Clock, h: &Header, encrypted: &[u8]) -> Vec<u8> {
        let reply = |error: i16, payload: &[u8], key: &[u8; 16]| {
            let rh = Header {
                devtype: self.cfg.devtype,
                command: h.command.wrapping_add(900),
                count: h.count,
                mac: self.cfg.mac,
                id: h.id,
                error,
            };
            protocol::encode_packet(&rh, payload, key)
        };
        let mut st = self.state();
        match h.command {
            protocol::CMD_AUTH => {
                if st.refuse_auth {
                    return reply(-7, &[], &protocol::INITIAL_KEY);
                }
                if protocol::decrypt(&protocol::INITIAL_KEY, encrypted).is_err() {
                    return reply(-6, &[], &protocol::INITIAL_KEY);
                }
                let id = fastrand::u32(1..);
                let mut key = [0u8; 16];
                key.iter_mut().for_each(|b| *b = fastrand::u8(..));
                st.session = Some((id, key));
                st.auths += 1;
                let mut payload = id.to_le_bytes().to_vec();
                payload.extend(key);
                reply(0, &payload, &protocol::INITIAL_KEY)
            }
            protocol::CMD_COMMAND => {
                let Some((id, key)) = st.session.filter(|(id, _)| *id == h.id) else {
                    return reply(-7, &[], &protocol::INITIAL_KEY);
                };
                let _ = id;
                let Ok(plain) = protocol::decrypt(&key, encrypted) else {
                    return reply(-6, &[], &key);
                };
                let Ok((cmd, data)) = protocol::rm4_unframe(&plain) else {
                    return reply(-6, &[], &key);
                };
                if cmd != protocol::RM_SEND_DATA {
                    return reply(-4, &[], &key);
                }
                let now = clock.now_ms();
                let meaning = self.cfg.codes.lookup(data).cloned();
                let ignored = st.ignore_next > 0;
                if ignored {
                    st.ignore_next -= 1;
                } else if let Some(m) = &meaning {
                    let mut p = self.plant.lock().unwrap_or_else(|e| e.into_inner());
                    let mut s = p.ac.settings().clone();
                    match m {
                        IrMeaning::Off => s.power = false,
                        IrMeaning::Set { mode, fan, temp } => {
                            s.power = true;
                            s.mode = ac_mode(mode).unwrap_or(s.mode);
                            s.fan_speed = fan.clone();
                            s.set_temp_c = *temp;
                        }
                    }
                    p.apply_ir(s, now);
                }
                st.log.push(IrEntry {
                    sim_ms: now,
                    meaning,
                    ignored,
                });
                reply(0, &protocol::rm4_frame(cmd, &[]).unwrap_or_default(), &key)
            }
            _ => reply(-4, &[], &protocol::INITIAL_KEY),
        }
    }
}

/// HA hvac mode (SmartIR's names) → the twin AC's mode.
pub fn ac_mode(mode: &str) -> Option<AcMode> {
    Some(match mode {
        "cool" => AcMode::Cool,
        "heat" => AcMode::Heat,
        "dry" => AcMode::Dry,
        "fan_only" => AcMode::Fan,
        "auto" | "heat_cool" => AcMode::Auto,
        _ => return None,
    })
}
