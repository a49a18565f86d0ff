//! One connection's outgoing side: a bounded send queue drained by a writer
//! task. Senders never wait: a full queue means the client reads slower
//! than it is sent messages (it stopped reading, or it sends commands
//! faster than it reads their answers), and the connection is dropped with
//! a logged reason (HA's `MAX_PENDING_MSG` rule) instead of stalling the
//! bridge or buffering without bound. The writer then skips what is still
//! queued and tells the client why with a close frame (1008, policy
//! violation, e.g. "outgoing queue full: client too slow"); a client that
//! reads nothing at all cannot receive it, and the session gives up on it
//! after 2 s. Clients that opted into `coalesce_messages` get queued
//! messages as one JSON array per frame.

use futures_util::{Sink, SinkExt};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// Messages joined into one frame at most.
const MAX_BATCH: usize = 256;

/// The close code of a client dropped for being too slow: 1008, policy
/// violation (RFC 6455 §7.4.1), the code HA's clients already handle for
/// its other refusals; 1013 (try again later) would invite an immediate
/// reconnect that meets the same queue.
pub const CLOSE_TOO_SLOW: u16 = 1008;

/// Why a connection is dropped: a short reason for the close frame (at
/// most 123 bytes, RFC 6455 §5.5) and the detail for the log.
#[derive(Debug, Clone, PartialEq)]
pub struct DropReason {
    pub close: &'static str,
    pub detail: String,
}

pub enum Outbound {
    Json(String),
    /// A WebSocket ping (heartbeat).
    Ping,
    Close(u16, String),
}

pub struct Conn {
    pub peer: SocketAddr,
    out: mpsc::Sender<Outbound>,
    capacity: usize,
    /// Shared with the writer (which must not hold the queue's sender).
    pub coalesce: Arc<AtomicBool>,
    /// Set once, to the reason the connection must be dropped.
    drop_reason: watch::Sender<Option<DropReason>>,
    /// Set while the session handles a frame of the client's own commands:
    /// a queue that fills then was filled by their answers.
    pub answering: AtomicBool,
}

impl Conn {
    pub fn new(
        peer: SocketAddr,
        capacity: usize,
    ) -> (
        Self,
        mpsc::Receiver<Outbound>,
        watch::Receiver<Option<DropReason>>,
    ) {
        let (out, rx) = mpsc::channel(capacity.max(1));
        let (drop_reason, dropped) = watch::channel(None);
        let conn = Conn {
            peer,
            out,
            capacity,
            coalesce: Arc::default(),
            drop_reason,
            answering: AtomicBool::new(false),
        };
        (conn, rx, dropped)
    }

    /// Another view of the drop reason (the writer's: it sends the close
    /// frame).
    pub fn dropped(&self) -> watch::Receiver<Option<DropReason>> {
        self.drop_reason.subscribe()
    }

    fn queue_full(&self) {
        let waiting = self.capacity;
        let detail = if self.answering.load(Ordering::Relaxed) {
            format!(
                "outgoing queue full while answering its own commands: it sends commands faster than it reads the answers ({waiting} messages waiting to be sent)"
            )
        } else {
            format!(
                "outgoing queue full: it reads slower than it is sent messages ({waiting} messages waiting to be sent)"
            )
        };
        self.fail("outgoing queue full: client too slow", detail);
    }

    /// Queues a message; `false` once the connection is going away.
    pub fn send(&self, msg: Value) -> bool {
        self.send_raw(msg.to_string())
    }

    pub fn send_raw(&self, text: String) -> bool {
        match self.out.try_send(Outbound::Json(text)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queue_full();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Messages this connection may have waiting (its queue's bound).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues a heartbeat ping (a full queue drops the connection anyway).
    pub fn ping(&self) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.out.try_send(Outbound::Ping) {
            self.queue_full();
        }
    }

    /// Marks the connection for dropping (the first reason wins): `close`
    /// goes to the client in the close frame, `detail` to the log.
    pub fn fail(&self, close: &'static str, detail: String) {
        self.drop_reason.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(DropReason { close, detail });
                true
            } else {
                false
            }
        });
    }

    /// Queues a close frame after everything already queued.
    pub async fn close(&self, code: u16, reason: &str) {
        let _ = self
            .out
            .send(Outbound::Close(code, reason.to_string()))
            .await;
    }
}

/// Writes queued messages until the queue closes or a close frame is sent.
/// Once the connection is marked for dropping (`dropped`), what is still
/// queued is skipped and the close frame with the reason goes out next.
pub async fn write_loop<S>(
    mut sink: S,
    mut rx: mpsc::Receiver<Outbound>,
    coalesce: Arc<AtomicBool>,
    mut dropped: watch::Receiver<Option<DropReason>>,
) where
    S: Sink<Message> + Unpin,
{
    loop {
        let first = tokio::select! {
            biased;
            Ok(()) = dropped.changed() => {
                let close = dropped.borrow().as_ref().map(|r| r.close);
                if let Some(reason) = close {
                    let frame = CloseFrame {
                        code: CLOSE_TOO_SLOW.into(),
                        reason: reason.into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return;
                }
                continue;
            }
            msg = rx.recv() => match msg {
                Some(m) => m,
                None => return,
            },
        };
        let mut batch = Vec::new();
        let mut close = None;
        let mut ping = false;
        match first {
            Outbound::Json(s) => batch.push(s),
            Outbound::Ping => ping = true,
            Outbound::Close(c, r) => close = Some((c, r)),
        }
        while close.is_none() && !ping && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Outbound::Json(s)) => batch.push(s),
                Ok(Outbound::Ping) => ping = true,
                Ok(Outbound::Close(c, r)) => close = Some((c, r)),
                Err(_) => break,
            }
        }
        let frames = if batch.len() > 1 && coalesce.load(Ordering::Relaxed) {
            vec![format!("[{}]", batch.join(","))]
        } else {
            batch
        };
        for f in frames {
            if sink.feed(Message::text(f)).await.is_err() {
                return;
            }
        }
        if ping && sink.feed(Message::Ping(Default::default())).await.is_err() {
            return;
        }
        if sink.flush().await.is_err() {
            return;
        }
        if let Some((code, reason)) = close {
            let frame = CloseFrame {
                code: code.into(),
                reason: reason.into(),
            };
            let _ = sink.send(Message::Close(Some(frame))).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(frames: &[Message]) -> Vec<String> {
        frames
            .iter()
            .map(|m| m.to_text().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn coalesces_only_when_asked() {
        for coalesce in [false, true] {
            let (conn, rx, _) = Conn::new("127.0.0.1:1".parse().unwrap(), 16);
            conn.coalesce.store(coalesce, Ordering::Relaxed);
            for i in 0..3 {
                assert!(conn.send(serde_json::json!({"n": i})));
            }
            let flag = conn.coalesce.clone();
            let dropped = conn.dropped();
            drop(conn);
            let mut frames: Vec<Message> = Vec::new();
            write_loop(&mut frames, rx, flag, dropped).await;
            let expected = if coalesce {
                vec![r#"[{"n":0},{"n":1},{"n":2}]"#.to_string()]
            } else {
                vec![
                    r#"{"n":0}"#.into(),
                    r#"{"n":1}"#.into(),
                    r#"{"n":2}"#.into(),
                ]
            };
            assert_eq!(texts(&frames), expected);
        }
    }

    #[tokio::test]
    async fn a_full_queue_marks_the_connection_for_dropping() {
        let (conn, _rx, dropped) = Conn::new("127.0.0.1:1".parse().unwrap(), 2);
        assert!(conn.send(serde_json::json!(1)));
        assert!(conn.send(serde_json::json!(2)));
        assert!(!conn.send(serde_json::json!(3)));
        let reason = dropped.borrow().clone().expect("a reason");
        assert_eq!(reason.close, "outgoing queue full: client too slow");
        assert!(reason.detail.contains("2 messages waiting"), "{reason:?}");
        assert!(reason.detail.contains("reads slower"), "{reason:?}");
        assert!(!reason.detail.contains("not reading"), "{reason:?}");
    }

    #[tokio::test]
    async fn a_client_flooding_commands_is_told_so_not_that_it_stopped_reading() {
        let (conn, _rx, dropped) = Conn::new("127.0.0.1:1".parse().unwrap(), 1);
        conn.answering.store(true, Ordering::Relaxed);
        conn.send(serde_json::json!(1));
        conn.send(serde_json::json!(2));
        let reason = dropped.borrow().clone().expect("a reason");
        assert!(
            reason
                .detail
                .contains("sends commands faster than it reads the answers"),
            "{reason:?}"
        );
    }

    #[tokio::test]
    async fn a_dropped_client_gets_a_close_frame_with_the_reason_before_the_backlog() {
        let (conn, rx, _) = Conn::new("127.0.0.1:1".parse().unwrap(), 2);
        let dropped = conn.dropped();
        conn.send(serde_json::json!("queued"));
        conn.send(serde_json::json!("queued"));
        conn.send(serde_json::json!("one too many"));
        let flag = conn.coalesce.clone();
        let mut frames: Vec<Message> = Vec::new();
        write_loop(&mut frames, rx, flag, dropped).await;
        match frames.as_slice() {
            [Message::Close(Some(f))] => {
                assert_eq!(u16::from(f.code), CLOSE_TOO_SLOW);
                assert_eq!(f.reason.as_str(), "outgoing queue full: client too slow");
            }
            other => panic!("expected only a close frame, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn close_follows_what_was_queued() {
        let (conn, rx, _) = Conn::new("127.0.0.1:1".parse().unwrap(), 8);
        conn.send(serde_json::json!("last words"));
        conn.close(1008, "bye").await;
        let flag = conn.coalesce.clone();
        let dropped = conn.dropped();
        let mut frames: Vec<Message> = Vec::new();
        write_loop(&mut frames, rx, flag, dropped).await;
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].to_text().unwrap(), "\"last words\"");
        match &frames[1] {
            Message::Close(Some(f)) => {
                assert_eq!(u16::from(f.code), 1008);
                assert_eq!(f.reason.as_str(), "bye");
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}
