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
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                tokio::spawn(relay(client, peer, broker, max_packet));
            }
            Err(e) => {
                // Out of file descriptors and the like: pause, then go on.
                tracing::warn!("embedded MQTT broker: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn relay(client: TcpStream, peer: SocketAddr, broker: SocketAddr, max_packet: usize) {
    let Some(upstream) = connect(broker).await else {
        tracing::error!(
            "embedded MQTT broker: rumqttd is not listening on {broker}; client {peer} dropped"
        );
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_rx, client_tx) = client.into_split();
    let (broker_rx, broker_tx) = upstream.into_split();
    let to_broker = pump(client_rx, broker_tx, Direction::ToBroker, max_packet);
    let to_client = pump(
        broker_rx,
        client_tx,
        Direction::ToClient,
        max_packet + TO_CLIENT_SLACK,
    );
    tokio::pin!(to_broker, to_client);
    // A direction that ends cleanly has closed its writing side; the other
    // then ends too (rumqttd drops a client whose socket closed, and a
    // client drops a broker that closed). An error drops both at once.
    let (ended, rest) = tokio::select! {
        r = &mut to_broker => (r, false),
        r = &mut to_client => (r, true),
    };
    match ended {
        Ok(()) => {
            let rest = if rest {
                tokio::time::timeout(LINGER, &mut to_broker).await
            } else {
                tokio::time::timeout(LINGER, &mut to_client).await
            };
            if let Ok(Err(e)) = rest {
                tracing::debug!("embedded MQTT broker: client {peer}: {e}");
            }
        }
        Err(RelayError::Wire(e)) => {
            tracing::warn!("embedded MQTT broker: client {peer} dropped: {e}");
        }
        Err(RelayError::Io(e)) => tracing::debug!("embedded MQTT broker: client {peer}: {e}"),
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

/// Relays packets from `from` to `to`, rewritten per [`wire::rewrite`],
/// until `from` closes (then closes `to`'s writing side).
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    direction: Direction,
    max_packet: usize,
) -> Result<(), RelayError> {
    let mut buf = BytesMut::with_capacity(8 * 1024);
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
