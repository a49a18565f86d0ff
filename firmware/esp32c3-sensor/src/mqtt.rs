//! A small MQTT 3.1.1 client session over any `embedded_io_async` stream
//! (here TLS over TCP), with packets encoded and decoded by `mqttrs` (a
//! no_std MQTT 3.1.1 codec). Hearth's embedded broker front speaks 3.1.1
//! only, so the MQTT 5 clients (rust-mqtt, mountain-mqtt) do not fit.
//!
//! The node only publishes (no subscriptions), so the session is simple:
//! CONNECT/CONNACK, PUBLISH QoS 1 and its PUBACK (a reading every 30 s
//! is the keep-alive traffic: no PINGREQ needed with a 90 s keep-alive). The
//! stream is only read when a reply is due and every read has a deadline;
//! a timeout or any error ends the session (the caller reconnects with
//! backoff), so no cancelled read leaves the TLS stream in a half state
//! that is used again.

use embassy_time::{Duration, with_timeout};
use embedded_io_async::{Read, Write};
use mqttrs::{
    Connect, ConnectReturnCode, LastWill, Packet, Pid, Protocol, Publish, QoS, QosPid,
    decode_slice, encode_slice,
};

/// How long a reply (CONNACK, PUBACK) or a write may take.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MqttError {
    Io,
    Closed,
    Timeout,
    /// The packet does not fit the buffers.
    Encode,
    Decode,
    /// CONNACK refused the connection.
    Refused(ConnectReturnCode),
    /// An unexpected packet (e.g. a second CONNACK).
    Protocol,
}

pub struct ConnectOptions<'a> {
    pub client_id: &'a str,
    pub username: &'a str,
    pub password: &'a [u8],
    pub keep_alive_s: u16,
    pub will_topic: &'a str,
    pub will_payload: &'a [u8],
}

pub struct Session<'b, T> {
    io: T,
    tx: &'b mut [u8],
    rx: &'b mut [u8],
    rx_len: usize,
    next_pid: Pid,
}

/// Length of the complete packet at the start of `buf`, if it is all there.
fn frame_len(buf: &[u8]) -> Result<Option<usize>, MqttError> {
    let mut len = 0usize;
    for pos in 0..4 {
        let Some(&b) = buf.get(1 + pos) else {
            return Ok(None);
        };
        len += usize::from(b & 0x7F) << (7 * pos);
        if b & 0x80 == 0 {
            let total = 2 + pos + len;
            return Ok((buf.len() >= total).then_some(total));
        }
    }
    Err(MqttError::Decode)
}

/// What the node cares about in a received packet.
enum Reply {
    Connack(ConnectReturnCode),
    Puback(u16),
    Other,
}

impl<'b, T: Read + Write> Session<'b, T> {
    /// Sends CONNECT (clean session, last will retained) and waits for CONNACK.
    pub async fn connect(
        io: T,
        tx: &'b mut [u8],
        rx: &'b mut [u8],
        opts: &ConnectOptions<'_>,
    ) -> Result<Self, MqttError> {
        let mut s = Session {
            io,
            tx,
            rx,
            rx_len: 0,
            next_pid: Pid::new(),
        };
        let connect = Packet::Connect(Connect {
            protocol: Protocol::MQTT311,
            keep_alive: opts.keep_alive_s,
            client_id: opts.client_id,
            clean_session: true,
            last_will: Some(LastWill {
                topic: opts.will_topic,
                message: opts.will_payload,
                qos: QoS::AtLeastOnce,
                retain: true,
            }),
            username: Some(opts.username),
            password: Some(opts.password),
        });
        s.send(&connect).await?;
        match s.wait_reply(|r| matches!(r, Reply::Connack(_))).await? {
            Reply::Connack(ConnectReturnCode::Accepted) => Ok(s),
            Reply::Connack(code) => Err(MqttError::Refused(code)),
            _ => Err(MqttError::Protocol),
        }
    }

    /// Publishes with QoS 1 and waits for the broker's PUBACK: when this
    /// returns Ok, the broker has the message.
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        retain: bool,
    ) -> Result<(), MqttError> {
        let pid = self.next_pid;
        self.next_pid = pid + 1;
        let publish = Packet::Publish(Publish {
            dup: false,
            qospid: QosPid::AtLeastOnce(pid),
            retain,
            topic_name: topic,
            payload,
        });
        self.send(&publish).await?;
        let want = pid.get();
        self.wait_reply(|r| matches!(r, Reply::Puback(p) if *p == want))
            .await
            .map(|_| ())
    }

    async fn send(&mut self, packet: &Packet<'_>) -> Result<(), MqttError> {
        let n = encode_slice(packet, self.tx).map_err(|_| MqttError::Encode)?;
        let io = &mut self.io;
        let tx = &self.tx[..n];
        let write = async move {
            io.write_all(tx).await.map_err(|_| MqttError::Io)?;
            io.flush().await.map_err(|_| MqttError::Io)
        };
        with_timeout(REPLY_TIMEOUT, write)
            .await
            .map_err(|_| MqttError::Timeout)?
    }

    /// Reads packets until one satisfies `want` (others are skipped), with
    /// one deadline for the whole wait.
    async fn wait_reply(&mut self, want: impl Fn(&Reply) -> bool) -> Result<Reply, MqttError> {
        with_timeout(REPLY_TIMEOUT, async {
            loop {
                let reply = self.next_packet().await?;
                if want(&reply) {
                    return Ok(reply);
                }
            }
        })
        .await
        .map_err(|_| MqttError::Timeout)?
    }

    async fn next_packet(&mut self) -> Result<Reply, MqttError> {
        loop {
            if let Some(total) = frame_len(&self.rx[..self.rx_len])? {
                let reply = match decode_slice(&self.rx[..total]) {
                    Ok(Some(Packet::Connack(c))) => Reply::Connack(c.code),
                    Ok(Some(Packet::Puback(pid))) => Reply::Puback(pid.get()),
                    Ok(Some(_)) => Reply::Other,
                    Ok(None) | Err(_) => return Err(MqttError::Decode),
                };
                self.rx.copy_within(total..self.rx_len, 0);
                self.rx_len -= total;
                return Ok(reply);
            }
            if self.rx_len == self.rx.len() {
                // A packet larger than the buffer: the node subscribes to
                // nothing, so nothing large is expected.
                return Err(MqttError::Decode);
            }
            let n = self
                .io
                .read(&mut self.rx[self.rx_len..])
                .await
                .map_err(|_| MqttError::Io)?;
            if n == 0 {
                return Err(MqttError::Closed);
            }
            self.rx_len += n;
        }
    }
}
