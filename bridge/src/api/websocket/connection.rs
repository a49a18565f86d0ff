//! One connection's outgoing side: a bounded send queue drained by a writer
//! task. Senders never wait: a full queue means the client is not reading,
//! and the connection is dropped with a logged reason (HA's
//! `MAX_PENDING_MSG` rule) instead of stalling the bridge or buffering
//! without bound. Clients that opted into `coalesce_messages` get queued
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
    drop_reason: watch::Sender<Option<String>>,
}

impl Conn {
    pub fn new(
        peer: SocketAddr,
        capacity: usize,
    ) -> (
        Self,
        mpsc::Receiver<Outbound>,
        watch::Receiver<Option<String>>,
    ) {
        let (out, rx) = mpsc::channel(capacity.max(1));
        let (drop_reason, dropped) = watch::channel(None);
        let conn = Conn {
            peer,
            out,
            capacity,
            coalesce: Arc::default(),
            drop_reason,
        };
        (conn, rx, dropped)
    }

    /// Queues a message; `false` once the connection is going away.
    pub fn send(&self, msg: Value) -> bool {
        self.send_raw(msg.to_string())
    }

    pub fn send_raw(&self, text: String) -> bool {
        match self.out.try_send(Outbound::Json(text)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.fail(format!(
                    "client is not reading: {} messages waiting to be sent",
                    self.capacity
                ));
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
            self.fail(format!(
                "client is not reading: {} messages waiting to be sent",
                self.capacity
            ));
        }
    }

    /// Marks the connection for dropping (the first reason wins).
    pub fn fail(&self, reason: String) {
        self.drop_reason.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason);
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
pub async fn write_loop<S>(mut sink: S, mut rx: mpsc::Receiver<Outbound>, coalesce: Arc<AtomicBool>)
where
    S: Sink<Message> + Unpin,
{
    while let Some(first) = rx.recv().await {
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
            drop(conn);
            let mut frames: Vec<Message> = Vec::new();
            write_loop(&mut frames, rx, flag).await;
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
        assert!(reason.contains("2 messages waiting"), "{reason}");
    }

    #[tokio::test]
    async fn close_follows_what_was_queued() {
        let (conn, rx, _) = Conn::new("127.0.0.1:1".parse().unwrap(), 8);
        conn.send(serde_json::json!("last words"));
        conn.close(1008, "bye").await;
        let flag = conn.coalesce.clone();
        let mut frames: Vec<Message> = Vec::new();
        write_loop(&mut frames, rx, flag).await;
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
