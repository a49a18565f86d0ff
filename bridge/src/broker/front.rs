//! The embedded broker's front door: clients connect here, and each
//! connection is relayed to rumqttd on a loopback port of its own, packet
//! by packet, with the one rewrite [`super::wire`] explains (rumqttd would
//! otherwise let a non-retained empty publish erase a retained message).
//!
//! DESIGN.md §8: TLS is terminated here ([`super::tls`], each handshake in
//! a task of its own under a timeout), and with authentication on every
//! CONNECT is checked and every PUBLISH and SUBSCRIBE judged by
//! [`super::access`] before rumqttd sees it; rumqttd only ever sees plain
//! MQTT from this front. Unconfigured (the default), the front relays
//! anonymous plain MQTT with the rewrite alone. The front owns
//! its accept loop and relays; it runs on a thread and runtime of its own,
//! like rumqttd, so a broker started by a test or the demo outlives the
//! runtime that started it.

use super::access::{Access, ClientCert, FrontStats, Guard, LogBudget, Verdict};
use super::sessions::{DRAIN_WAIT, Sessions, TAKEOVER_WAIT, Takeover};
use super::wire::{self, Direction, WireError};
use bytes::BytesMut;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// How long a new client waits for rumqttd's loopback listener: it binds
/// in its own thread right after the front starts, well under a second.
const BROKER_READY: Duration = Duration::from_secs(5);
/// rumqttd only sends what it accepted (at most the client limit) plus
/// [`wire::EMPTY_MARK`]; this slack keeps a relay from ever refusing it.
const TO_CLIENT_SLACK: usize = 64 * 1024;
/// How long a new client may take to send its first packet (rumqttd's
/// `connection_timeout_ms` in [`super::embedded`]), unless configured.
pub const CONNECT_WAIT: Duration = Duration::from_secs(60);
/// How long one direction may stay open after the other ended (a client
/// that neither closes nor speaks after rumqttd dropped it).
const LINGER: Duration = Duration::from_secs(5);
/// At most one "connection cap reached" warning (and one "MQTT 5 is not
/// spoken here") per this interval.
const CAP_WARNING_EVERY: Duration = Duration::from_secs(10);
/// Connections at once from one non-loopback address (with a cap): one
/// LAN host cannot take every slot.
pub const PER_IP_CONNECTIONS: usize = 32;
/// Answers the front itself sends a client (acks of denied packets)
/// queued before the client's reading side waits.
const ANSWERS_QUEUED: usize = 32;

/// One listening socket of the front: plain MQTT, or MQTT over TLS.
pub struct Listener {
    pub socket: std::net::TcpListener,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// How the front treats clients. [`FrontOptions::plain`] is the default:
/// anonymous, no cap.
pub struct FrontOptions {
    /// rumqttd's `max_payload_size` (its limit on a packet's remaining
    /// length): bigger packets are refused here before buffering.
    pub max_packet: usize,
    /// Authentication and topic rights; `None`: everyone, everything.
    pub access: Option<Arc<Access>>,
    /// Connections at once from non-loopback addresses (all listeners);
    /// more are closed at once. Loopback clients (the bridge's own link,
    /// Home Assistant or devices on this host) have a cap of the same size
    /// of their own, so LAN clients cannot lock them out.
    pub max_connections: Option<usize>,
    /// Connections at once from one non-loopback address.
    pub max_per_ip: Option<usize>,
    /// With access control: the user name and password every forwarded
    /// CONNECT carries instead of the client's (rumqttd accepts only
    /// these, so nothing reaches it around the front, and a client's own
    /// password never goes past the front).
    pub upstream_login: Option<(String, String)>,
    /// Time a client has to finish its TLS handshake.
    pub handshake_timeout: Duration,
    /// Time a client has to send its first packet (CONNECT).
    pub connect_wait: Duration,
    pub stats: Arc<FrontStats>,
}

impl FrontOptions {
    pub fn plain(max_packet: usize) -> Self {
        FrontOptions {
            max_packet,
            access: None,
            max_connections: None,
            max_per_ip: None,
            upstream_login: None,
            handshake_timeout: Duration::from_secs(10),
            connect_wait: CONNECT_WAIT,
            stats: Arc::default(),
        }
    }
}

/// What every connection of one front shares.
struct Front {
    broker: SocketAddr,
    opts: FrontOptions,
    sessions: Sessions,
    admission: Admission,
    /// When the last cap warning was logged, and refusals since.
    cap_warned: Mutex<(Option<Instant>, u64)>,
    /// Same for the per-address cap, and for MQTT 5 CONNECTs.
    ip_cap_warned: Mutex<(Option<Instant>, u64)>,
    v5_warned: Mutex<(Option<Instant>, u64)>,
    /// Refusal, failed handshake and denial lines: one budget.
    refusals: LogBudget,
    /// With access control: which user each client id belongs to (see
    /// [`Front::own_client_id`]).
    owners: Mutex<HashMap<String, Owner>>,
}

/// The user a client id belongs to: while it has live connections, and
/// while rumqttd keeps its session (its last CONNECT had clean session 0).
struct Owner {
    user: String,
    live: u32,
    persistent: bool,
}

/// A live connection's hold on its client id; released when dropped.
struct OwnerHold<'a> {
    front: &'a Front,
    id: String,
}

impl Drop for OwnerHold<'_> {
    fn drop(&mut self) {
        let mut owners = self.front.owners.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = owners.get_mut(&self.id) {
            o.live = o.live.saturating_sub(1);
            if o.live == 0 && !o.persistent {
                owners.remove(&self.id);
            }
        }
    }
}

/// Connections held per non-loopback address.
type ByIp = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Who gets a connection slot: non-loopback peers share the cap and each
/// address has its own smaller one; loopback peers have a cap of their own.
struct Admission {
    lan: Option<Arc<Semaphore>>,
    local: Option<Arc<Semaphore>>,
    per_ip: Option<usize>,
    by_ip: ByIp,
}

/// Why a connection got no slot.
#[derive(Debug, PartialEq, Eq)]
enum NoSlot {
    Cap,
    PerIp,
}

/// A connection's slot; freed when dropped.
struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    ip: Option<(IpAddr, ByIp)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((ip, by_ip)) = &self.ip {
            let mut by_ip = by_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = by_ip.get_mut(ip) {
                *n -= 1;
                if *n == 0 {
                    by_ip.remove(ip);
                }
            }
        }
    }
}

impl Admission {
    fn new(cap: Option<usize>, per_ip: Option<usize>) -> Self {
        Admission {
            lan: cap.map(|n| Arc::new(Semaphore::new(n))),
            local: cap.map(|n| Arc::new(Semaphore::new(n))),
            per_ip,
            by_ip: Arc::default(),
        }
    }

    fn admit(&self, peer: IpAddr) -> Result<Slot, NoSlot> {
        let peer = peer.to_canonical();
        let permit = |sem: &Option<Arc<Semaphore>>| match sem {
            None => Ok(None),
            Some(s) => s
                .clone()
                .try_acquire_owned()
                .map(Some)
                .map_err(|_| NoSlot::Cap),
        };
        if peer.is_loopback() {
            return Ok(Slot {
                _permit: permit(&self.local)?,
                ip: None,
            });
        }
        let ip = match self.per_ip {
            None => None,
            Some(max) => {
                let mut by_ip = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
                let n = by_ip.entry(peer).or_insert(0);
                if *n >= max {
                    return Err(NoSlot::PerIp);
                }
                *n += 1;
                Some((peer, self.by_ip.clone()))
            }
        };
        // Built first so that a refusal by the cap gives the address slot back.
        let mut slot = Slot { _permit: None, ip };
        slot._permit = permit(&self.lan)?;
        Ok(slot)
    }
}

/// Starts the front on `listeners`, relaying to rumqttd at `broker`.
pub fn spawn(
    listeners: Vec<Listener>,
    broker: SocketAddr,
    opts: FrontOptions,
) -> anyhow::Result<()> {
    for l in &listeners {
        l.socket.set_nonblocking(true)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let front = Arc::new(Front {
        broker,
        admission: Admission::new(opts.max_connections, opts.max_per_ip),
        opts,
        sessions: Sessions::default(),
        cap_warned: Mutex::new((None, 0)),
        ip_cap_warned: Mutex::new((None, 0)),
        v5_warned: Mutex::new((None, 0)),
        owners: Mutex::default(),
        refusals: LogBudget::default(),
    });
    std::thread::Builder::new()
        .name("mqtt-front".into())
        .spawn(move || {
            runtime.block_on(async move {
                if let Some(access) = front.opts.access.clone() {
                    // Revocations reach live connections without a CONNECT.
                    tokio::spawn(async move {
                        let mut tick = tokio::time::interval(super::access::RELOAD_EVERY);
                        loop {
                            tick.tick().await;
                            access.refresh();
                        }
                    });
                }
                let accepts: Vec<_> = listeners
                    .into_iter()
                    .map(|l| tokio::spawn(accept(l, front.clone())))
                    .collect();
                for a in accepts {
                    let _ = a.await;
                }
            })
        })?;
    Ok(())
}

async fn accept(listener: Listener, front: Arc<Front>) {
    let tls = listener.tls;
    let listener = match tokio::net::TcpListener::from_std(listener.socket) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("embedded MQTT broker front cannot accept connections: {e}");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                let permit = match front.admission.admit(peer.ip()) {
                    Ok(slot) => slot,
                    Err(no) => {
                        front.over_cap(peer, no);
                        continue;
                    }
                };
                let (front, tls) = (front.clone(), tls.clone());
                front.opts.stats.accepted.fetch_add(1, Ordering::Relaxed);
                front.opts.stats.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let stats = front.opts.stats.clone();
                    serve(client, peer, tls, front).await;
                    stats.connections.fetch_sub(1, Ordering::Relaxed);
                    drop(permit);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: pause, then go on.
                tracing::warn!("embedded MQTT broker: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

impl Front {
    /// Takes `guard`'s client id for its user, or says which user holds
    /// it: a client of one user may not take over (close, or inherit the
    /// kept session of) a client id another user's client is using, such
    /// as the bridge's own link. An empty id (rumqttd assigns one) holds
    /// nothing.
    fn own_client_id(&self, guard: &Guard) -> Result<Option<OwnerHold<'_>>, String> {
        if guard.client_id.is_empty() {
            return Ok(None);
        }
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let owner = owners.entry(guard.client_id.clone()).or_insert(Owner {
            user: guard.user.clone(),
            live: 0,
            persistent: false,
        });
        if owner.user != guard.user {
            return Err(owner.user.clone());
        }
        owner.live += 1;
        owner.persistent = !guard.clean_session;
        Ok(Some(OwnerHold {
            front: self,
            id: guard.client_id.clone(),
        }))
    }

    /// Whether a refusal may be logged now (the shared [`LogBudget`]).
    fn log_refusal(&self) -> bool {
        self.refusals.allow()
    }

    /// A connection over a cap was closed: warn, at most every
    /// [`CAP_WARNING_EVERY`] per cap, with the count since the last warning.
    fn over_cap(&self, peer: SocketAddr, no: NoSlot) {
        let stats = &self.opts.stats;
        let (counter, warned) = match no {
            NoSlot::Cap => (&stats.over_cap, &self.cap_warned),
            NoSlot::PerIp => (&stats.over_ip_cap, &self.ip_cap_warned),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = every_interval(warned) {
            let cap = self.opts.max_connections.unwrap_or_default();
            match no {
                NoSlot::Cap => tracing::warn!(
                    "embedded MQTT broker: {n} connection(s) closed at once (latest from {peer}): the front is at its cap of {cap} connections ([tls] max_connections; loopback clients have a cap of their own)"
                ),
                NoSlot::PerIp => tracing::warn!(
                    "embedded MQTT broker: {n} connection(s) closed at once (latest from {peer}): {} already has {} connections, the most one address may hold",
                    peer.ip(),
                    self.opts.max_per_ip.unwrap_or_default()
                ),
            }
        }
    }
}

/// Counts one event; `Some(count since the last line)` when a line may be
/// logged now (at most one per [`CAP_WARNING_EVERY`]).
fn every_interval(warned: &Mutex<(Option<Instant>, u64)>) -> Option<u64> {
    let mut warned = warned.lock().unwrap_or_else(|e| e.into_inner());
    warned.1 += 1;
    if warned.0.is_none_or(|t| t.elapsed() >= CAP_WARNING_EVERY) {
        let n = warned.1;
        *warned = (Some(Instant::now()), 0);
        return Some(n);
    }
    None
}

/// One client connection: the TLS handshake if any, then the relay.
async fn serve(
    client: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    front: Arc<Front>,
) {
    let _ = client.set_nodelay(true);
    let Some(acceptor) = tls else {
        let (rx, tx) = client.into_split();
        return relay(rx, tx, peer, None, &front).await;
    };
    let stats = &front.opts.stats;
    match tokio::time::timeout(front.opts.handshake_timeout, acceptor.accept(client)).await {
        Ok(Ok(stream)) => {
            let cert = stream.get_ref().1.peer_certificates().and_then(|chain| {
                Some(ClientCert {
                    cn: super::tls::common_name(chain)?,
                    der: chain.first()?.to_vec(),
                })
            });
            let (rx, tx) = tokio::io::split(stream);
            relay(rx, tx, peer, cert, &front).await;
        }
        Ok(Err(e)) => {
            stats.failed_handshakes.fetch_add(1, Ordering::Relaxed);
            if front.log_refusal() {
                tracing::info!("embedded MQTT broker: TLS handshake with {peer} failed: {e}");
            }
        }
        Err(_) => {
            stats.failed_handshakes.fetch_add(1, Ordering::Relaxed);
            if front.log_refusal() {
                tracing::info!(
                    "embedded MQTT broker: {peer} did not finish its TLS handshake within {:?}; closed",
                    front.opts.handshake_timeout
                );
            }
        }
    }
}

/// How one relay ended.
enum Ended {
    ToBroker(Result<(), RelayError>),
    ToClient(Result<(), RelayError>),
    /// A newer connection took the client id over.
    Kicked,
    /// Its login was revoked (why).
    Revoked(String),
}

async fn relay<R, W>(
    mut client_rx: R,
    mut client_tx: W,
    peer: SocketAddr,
    cert: Option<ClientCert>,
    front: &Front,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (broker, max_packet, sessions) = (front.broker, front.opts.max_packet, &front.sessions);
    let stats = &*front.opts.stats;
    let wait = front.opts.connect_wait;
    // The first packet is read before rumqttd hears of the client: when it
    // is a CONNECT, an older connection with its client id goes first.
    let mut first = BytesMut::with_capacity(8 * 1024);
    let mut len =
        match tokio::time::timeout(wait, read_packet(&mut client_rx, &mut first, max_packet)).await
        {
            Ok(Ok(Some(len))) => len,
            Ok(Ok(None)) => return,
            Ok(Err(RelayError::Wire(e))) => {
                tracing::warn!("embedded MQTT broker: client {peer} dropped: {e}");
                return;
            }
            Ok(Err(RelayError::Refused(e))) => {
                tracing::warn!("embedded MQTT broker: client {peer} dropped: {e}");
                return;
            }
            Ok(Err(RelayError::Io(e))) => {
                tracing::debug!("embedded MQTT broker: client {peer}: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!("embedded MQTT broker: client {peer} sent no packet in {wait:?}");
                return;
            }
        };
    // rumqttd here speaks MQTT 3.1.1 only and would drop an MQTT 5 client
    // without a word: tell it (and the user) why.
    if wire::connect_level(&first[..len]) == Some(5) {
        stats.unsupported_protocol.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = every_interval(&front.v5_warned) {
            tracing::warn!(
                "embedded MQTT broker: {n} MQTT 5 client(s) refused (latest {peer}, CONNACK 0x84 unsupported protocol version): Hearth's embedded broker speaks MQTT 3.1.1 (Home Assistant: set the MQTT integration's protocol to 3.1.1)"
            );
        }
        let _ = client_tx.write_all(&wire::CONNACK_V5_UNSUPPORTED).await;
        let _ = client_tx.flush().await;
        let _ = client_tx.shutdown().await;
        return;
    }
    // With access control, the CONNECT is judged before anything else (a
    // refused client never reaches rumqttd nor closes an older session).
    let guard = match &front.opts.access {
        None => None,
        Some(access) => {
            let verdict = match wire::parse_connect(&first[..len]) {
                Some(connect) => access.authenticate(&connect, cert.as_ref()).await,
                None => {
                    tracing::warn!(
                        "embedded MQTT broker: client {peer} dropped: its first packet is not an MQTT 3.1/3.1.1 CONNECT"
                    );
                    return;
                }
            };
            match verdict {
                Ok(guard) => {
                    // rumqttd gets the front's own login, never the client's.
                    if let Some((user, password)) = &front.opts.upstream_login {
                        let Some(connect) =
                            wire::with_login(&first[..len], user, password.as_bytes())
                        else {
                            return;
                        };
                        let rest = first.split_off(len);
                        first.clear();
                        first.extend_from_slice(&connect);
                        first.extend_from_slice(&rest);
                        len = connect.len();
                    }
                    Some(guard)
                }
                Err((code, why)) => {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    if front.log_refusal() {
                        tracing::warn!(
                            "embedded MQTT broker: client {peer} refused (CONNACK {code}): {why}"
                        );
                    }
                    let _ = client_tx.write_all(&wire::connack(code)).await;
                    let _ = client_tx.flush().await;
                    let _ = client_tx.shutdown().await;
                    return;
                }
            }
        }
    };
    let _hold = match &guard {
        None => None,
        Some(g) => match front.own_client_id(g) {
            Ok(hold) => hold,
            Err(owner) => {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                if front.log_refusal() {
                    tracing::warn!(
                        "embedded MQTT broker: client {peer} refused (CONNACK 2): user `{}` may not use client id `{}`, which belongs to user `{}`",
                        g.user.escape_debug(),
                        g.client_id.escape_debug(),
                        owner.escape_debug()
                    );
                }
                let code = super::access::IDENTIFIER_REJECTED;
                let _ = client_tx.write_all(&wire::connack(code)).await;
                let _ = client_tx.flush().await;
                let _ = client_tx.shutdown().await;
                return;
            }
        },
    };
    let claim = match wire::connect_client_id(&first[..len]) {
        Some(id) => {
            let (claim, takeover) = sessions.claim(id).await;
            match takeover {
                Takeover::None => {}
                Takeover::Superseded => {
                    tracing::info!(
                        "embedded MQTT broker: client id `{id}` connected again after {peer} did; {peer} is closed"
                    );
                    return;
                }
                Takeover::Closed => tracing::info!(
                    "embedded MQTT broker: client id `{id}` connected again from {peer}; its older connection was closed"
                ),
                Takeover::TimedOut => tracing::warn!(
                    "embedded MQTT broker: client id `{id}` connected again from {peer}; its older connection did not close within {TAKEOVER_WAIT:?}"
                ),
            }
            claim
        }
        None => None,
    };
    let Some(upstream) = connect(broker).await else {
        tracing::error!(
            "embedded MQTT broker: rumqttd is not listening on {broker}; client {peer} dropped"
        );
        return;
    };
    let _ = upstream.set_nodelay(true);
    let (mut broker_rx, mut broker_tx) = upstream.into_split();
    // Whether rumqttd closed its side (its link has ended and told its router).
    let mut broker_closed = false;
    {
        let (answer_tx, answer_rx) = match guard {
            Some(_) => {
                let (tx, rx) = mpsc::channel(ANSWERS_QUEUED);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let to_broker = pump_to_broker(
            &mut client_rx,
            &mut broker_tx,
            max_packet,
            first,
            guard
                .as_ref()
                .zip(answer_tx)
                .map(|(g, tx)| (g, tx, stats, &front.refusals)),
        );
        let to_client = pump_to_client(
            &mut broker_rx,
            &mut client_tx,
            max_packet + TO_CLIENT_SLACK,
            guard.as_ref().zip(answer_rx),
        );
        let kicked = async {
            match &claim {
                Some(claim) => claim.kicked().await,
                None => std::future::pending().await,
            }
        };
        // On each reload of the password file and ACL: still allowed?
        let revoked = async {
            let (Some(access), Some(guard)) = (&front.opts.access, &guard) else {
                return std::future::pending().await;
            };
            let mut changes = access.changes();
            loop {
                if changes.changed().await.is_err() {
                    return std::future::pending().await;
                }
                if let Err(why) = access.recheck(guard) {
                    return why;
                }
            }
        };
        tokio::pin!(to_broker, to_client, kicked, revoked);
        // A direction that ends cleanly has closed its writing side; the
        // other then ends too (rumqttd drops a client whose socket closed,
        // and a client drops a broker that closed). An error drops both.
        let ended = tokio::select! {
            r = &mut to_broker => Ended::ToBroker(r),
            r = &mut to_client => Ended::ToClient(r),
            () = &mut kicked => Ended::Kicked,
            why = &mut revoked => Ended::Revoked(why),
        };
        let (rest, error) = match ended {
            Ended::ToBroker(Ok(())) => {
                let rest = tokio::time::timeout(LINGER, &mut to_client).await;
                broker_closed = matches!(rest, Ok(Ok(())));
                (rest.ok().and_then(Result::err), None)
            }
            Ended::ToClient(Ok(())) => {
                broker_closed = true;
                // rumqttd is done with this client: a newer connection
                // with its id need not wait for the linger.
                let rest = tokio::select! {
                    r = tokio::time::timeout(LINGER, &mut to_broker) => r.ok().and_then(Result::err),
                    () = &mut kicked => None,
                };
                (rest, None)
            }
            Ended::ToBroker(Err(e)) | Ended::ToClient(Err(e)) => (None, Some(e)),
            Ended::Kicked => (None, None),
            Ended::Revoked(why) => {
                stats.revoked.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("embedded MQTT broker: client {peer} disconnected: {why}");
                (None, None)
            }
        };
        match error.or(rest) {
            Some(RelayError::Wire(e)) => {
                tracing::warn!("embedded MQTT broker: client {peer} dropped: {e}")
            }
            Some(RelayError::Refused(e)) => {
                tracing::warn!("embedded MQTT broker: client {peer} dropped: {e}")
            }
            Some(RelayError::Io(e)) => tracing::debug!("embedded MQTT broker: client {peer}: {e}"),
            None => {}
        }
    }
    if claim.is_some() && !broker_closed {
        // Close the client, then let rumqttd end its link before the claim
        // (dropped last) lets a newer connection with this id through.
        drop((client_rx, client_tx));
        let _ = broker_tx.shutdown().await;
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(DRAIN_WAIT, async {
            while matches!(broker_rx.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    }
}

/// Reads into `buf` until it holds one whole packet; its length, or `None`
/// when the peer closed first.
async fn read_packet<R: AsyncRead + Unpin>(
    from: &mut R,
    buf: &mut BytesMut,
    max_packet: usize,
) -> Result<Option<usize>, RelayError> {
    loop {
        if let Some(len) = wire::packet_len(buf, max_packet)? {
            return Ok(Some(len));
        }
        if from.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

async fn connect(broker: SocketAddr) -> Option<TcpStream> {
    let deadline = tokio::time::Instant::now() + BROKER_READY;
    loop {
        match TcpStream::connect(broker).await {
            Ok(s) => return Some(s),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => return None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A packet the access check cannot judge.
    #[error("{0}")]
    Refused(&'static str),
}

/// Relays packets from the client to rumqttd (starting with what `buf`
/// already holds: the CONNECT first), rewritten per [`wire::rewrite`] and,
/// with access control, judged by the connection's [`Guard`] (its answers
/// go to the client through the channel), until the client closes (then
/// closes rumqttd's writing side).
async fn pump_to_broker<R, W>(
    from: &mut R,
    to: &mut W,
    max_packet: usize,
    mut buf: BytesMut,
    guard: Option<(&Guard, mpsc::Sender<Vec<u8>>, &FrontStats, &LogBudget)>,
) -> Result<(), RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = Vec::with_capacity(8 * 1024);
    // The CONNECT was judged before the relay started.
    let mut connect = true;
    loop {
        while let Some(len) = wire::packet_len(&buf, max_packet)? {
            let packet = buf.split_to(len);
            let mut replaced = None;
            if let Some((guard, answers, stats, log)) = &guard
                && !std::mem::take(&mut connect)
            {
                match guard.inspect(&packet, stats, log) {
                    Verdict::Forward(new) => replaced = new,
                    Verdict::Answer(answer) => {
                        if let Some(answer) = answer {
                            // The client's side may be gone already.
                            let _ = answers.send(answer).await;
                        }
                        continue;
                    }
                    Verdict::Close(why) => return Err(RelayError::Refused(why)),
                }
            }
            let packet = replaced.as_deref().unwrap_or(&packet);
            match wire::rewrite(packet, Direction::ToBroker)? {
                Some(new) => out.extend_from_slice(&new),
                None => out.extend_from_slice(packet),
            }
        }
        if !out.is_empty() {
            to.write_all(&out).await?;
            to.flush().await?;
            out.clear();
        }
        if from.read_buf(&mut buf).await? == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
    }
}

/// Relays packets from rumqttd to the client, unmarked per
/// [`wire::rewrite`], SUBACKs patched by the connection's [`Guard`] and
/// the guard's own answers mixed in, until rumqttd closes (then closes the
/// client's writing side).
async fn pump_to_client<R, W>(
    from: &mut R,
    to: &mut W,
    max_packet: usize,
    mut guard: Option<(&Guard, mpsc::Receiver<Vec<u8>>)>,
) -> Result<(), RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut out = Vec::with_capacity(8 * 1024);
    loop {
        while let Some(len) = wire::packet_len(&buf, max_packet)? {
            let packet = buf.split_to(len);
            let patched = match &guard {
                Some((g, _)) if wire::kind(&packet) == wire::SUBACK => g.patch_suback(&packet),
                _ => None,
            };
            let packet = patched.as_deref().unwrap_or(&packet);
            match wire::rewrite(packet, Direction::ToClient)? {
                Some(new) => out.extend_from_slice(&new),
                None => out.extend_from_slice(packet),
            }
        }
        if !out.is_empty() {
            to.write_all(&out).await?;
            to.flush().await?;
            out.clear();
        }
        let answer = async {
            match &mut guard {
                Some((_, answers)) => answers.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = from.read_buf(&mut buf) => {
                if read? == 0 {
                    let _ = to.shutdown().await;
                    return Ok(());
                }
            }
            Some(answer) = answer => out.extend_from_slice(&answer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_peers_cannot_take_loopbacks_slots_nor_one_address_all_of_them() {
        let admission = Admission::new(Some(4), Some(3));
        let lan = |n: u8| IpAddr::from([192, 0, 2, n]);
        let mut held: Vec<Slot> = (0..3).map(|_| admission.admit(lan(1)).unwrap()).collect();
        assert_eq!(admission.admit(lan(1)).err(), Some(NoSlot::PerIp));
        held.push(admission.admit(lan(2)).unwrap());
        // The cap is full for LAN peers, not for loopback ones.
        assert_eq!(admission.admit(lan(3)).err(), Some(NoSlot::Cap));
        let local: Vec<Slot> = (0..4)
            .map(|_| admission.admit(IpAddr::from([127, 0, 0, 1])).unwrap())
            .collect();
        let mapped = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(admission.admit(mapped).err(), Some(NoSlot::Cap));
        drop(local);
        // A refusal by the cap did not keep lan(3)'s address slot; a freed
        // slot is reusable.
        assert_eq!(admission.by_ip.lock().unwrap().get(&lan(3)), None);
        held.remove(0);
        assert!(admission.admit(lan(1)).is_ok());
        drop(held);
        assert!(admission.by_ip.lock().unwrap().is_empty());
    }
}
