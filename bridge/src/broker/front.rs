//! The embedded broker's front door: clients connect here, and each
//! connection is relayed to rumqttd on a loopback port of its own, packet
//! by packet, with the one rewrite [`super::wire`] explains (rumqttd would
//! otherwise let a non-retained empty publish erase a retained message).
//!
//! This is the place DESIGN.md §8 reserves for TLS, authentication and topic
//! rights: rumqttd only ever sees plain MQTT from this front. The front owns
//! its accept loop and relays; it runs on a thread and runtime of its own,
//! like rumqttd, so a broker started by a test or the demo outlives the
//! runtime that started it.

use super::sessions::{DRAIN_WAIT, Sessions, TAKEOVER_WAIT, Takeover};
use super::wire::{self, Direction, WireError};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// How long a new client waits for rumqttd's loopback listener: it binds
/// in its own thread right after the front starts, well under a second.
const BROKER_READY: Duration = Duration::from_secs(5);
/// rumqttd only sends what it accepted (at most the client limit) plus
/// [`wire::EMPTY_MARK`]; this slack keeps a relay from ever refusing it.
const TO_CLIENT_SLACK: usize = 64 * 1024;
/// How long a new client may take to send its first packet (rumqttd's
/// `connection_timeout_ms` in [`super::embedded`]).
const CONNECT_WAIT: Duration = Duration::from_secs(60);
/// How long one direction may stay open after the other ended (a client
/// that neither closes nor speaks after rumqttd dropped it).
const LINGER: Duration = Duration::from_secs(5);

/// Starts the front on `listener`, relaying to rumqttd at `broker`.
/// `max_packet` is rumqttd's `max_payload_size` (its limit on a packet's
/// remaining length): bigger packets are refused here before buffering.
pub fn spawn(
    listener: std::net::TcpListener,
    broker: SocketAddr,
    max_packet: usize,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    std::thread::Builder::new()
        .name("mqtt-front".into())
        .spawn(move || runtime.block_on(accept(listener, broker, max_packet)))?;
    Ok(())
}

async fn accept(listener: std::net::TcpListener, broker: SocketAddr, max_packet: usize) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("embedded MQTT broker front cannot accept connections: {e}");
            return;
        }
    };
    let sessions = Sessions::default();
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                tokio::spawn(relay(client, peer, broker, max_packet, sessions.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: pause, then go on.
                tracing::warn!("embedded MQTT broker: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
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
}

async fn relay(
    client: TcpStream,
    peer: SocketAddr,
    broker: SocketAddr,
    max_packet: usize,
    sessions: Sessions,
) {
    let _ = client.set_nodelay(true);
    let (mut client_rx, mut client_tx) = client.into_split();
    // The first packet is read before rumqttd hears of the client: when it
    // is a CONNECT, an older connection with its client id goes first.
    let mut first = BytesMut::with_capacity(8 * 1024);
    let len = match tokio::time::timeout(
        CONNECT_WAIT,
        read_packet(&mut client_rx, &mut first, max_packet),
    )
    .await
    {
        Ok(Ok(Some(len))) => len,
        Ok(Ok(None)) => return,
        Ok(Err(RelayError::Wire(e))) => {
            tracing::warn!("embedded MQTT broker: client {peer} dropped: {e}");
            return;
        }
        Ok(Err(RelayError::Io(e))) => {
            tracing::debug!("embedded MQTT broker: client {peer}: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(
                "embedded MQTT broker: client {peer} sent no packet in {CONNECT_WAIT:?}"
            );
            return;
        }
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
        let to_broker = pump(
            &mut client_rx,
            &mut broker_tx,
            Direction::ToBroker,
            max_packet,
            first,
        );
        let to_client = pump(
            &mut broker_rx,
            &mut client_tx,
            Direction::ToClient,
            max_packet + TO_CLIENT_SLACK,
            BytesMut::with_capacity(8 * 1024),
        );
        let kicked = async {
            match &claim {
                Some(claim) => claim.kicked().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(to_broker, to_client, kicked);
        // A direction that ends cleanly has closed its writing side; the
        // other then ends too (rumqttd drops a client whose socket closed,
        // and a client drops a broker that closed). An error drops both.
        let ended = tokio::select! {
            r = &mut to_broker => Ended::ToBroker(r),
            r = &mut to_client => Ended::ToClient(r),
            () = &mut kicked => Ended::Kicked,
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
        };
        match error.or(rest) {
            Some(RelayError::Wire(e)) => {
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
async fn read_packet(
    from: &mut OwnedReadHalf,
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
}

/// Relays packets from `from` to `to` (starting with what `buf` already
/// holds), rewritten per [`wire::rewrite`], until `from` closes (then
/// closes `to`'s writing side).
async fn pump(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    direction: Direction,
    max_packet: usize,
    mut buf: BytesMut,
) -> Result<(), RelayError> {
    let mut out = Vec::with_capacity(8 * 1024);
    loop {
        while let Some(len) = wire::packet_len(&buf, max_packet)? {
            let packet = buf.split_to(len);
            match wire::rewrite(&packet, direction)? {
                Some(new) => out.extend_from_slice(&new),
                None => out.extend_from_slice(&packet),
            }
        }
        if !out.is_empty() {
            to.write_all(&out).await?;
            out.clear();
        }
        if from.read_buf(&mut buf).await? == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
    }
}
