//! The HTTP channel (Shelly "RPC Channels": HTTP): `POST /rpc` with a
//! whole request frame `{"id","method","params"}`, the answer a response
//! frame with `result` or `error` (Shelly "RPC Protocol"). One request at a
//! time, 5 s to answer, at most [`MAX_BODY`] read.

use crate::drivers::http_client::{HttpClient, HttpFailure};
use crate::drivers::shelly_rpc::{self, OutletStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read: a `Switch.GetStatus` or `Shelly.GetDeviceInfo` is
/// well under 1 kB; a larger body is cut off as an error, not collected.
pub const MAX_BODY: usize = 64 * 1024;

/// What went wrong talking to a plug.
#[derive(Debug, thiserror::Error)]
pub enum ShellyError {
    #[error("{url} {method}: HTTP request failed: {reason}")]
    Http {
        url: String,
        method: String,
        reason: String,
    },
    #[error("{url} {method}: HTTP status {status}")]
    Status {
        url: String,
        method: String,
        status: u16,
    },
    #[error("{url} {method}: answer is not valid JSON-RPC: {reason} (body `{body}`)")]
    Malformed {
        url: String,
        method: String,
        reason: String,
        body: String,
    },
    #[error("{url} {method}: device error {code}: {message}")]
    Rpc {
        url: String,
        method: String,
        code: i64,
        message: String,
    },
}

/// `Shelly.GetDeviceInfo` fields Hearth uses.
#[derive(Debug, Deserialize)]
pub struct DeviceInfo {
    pub model: Option<String>,
    pub ver: Option<String>,
    pub app: Option<String>,
}

#[derive(Deserialize)]
struct RpcFrame {
    id: Option<u64>,
    result: Option<Value>,
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct RpcError {
    code: i64,
    message: String,
}

/// A JSON-RPC client for one plug.
pub struct ShellyClient {
    url: String,
    http: HttpClient,
    next_id: u64,
}

impl ShellyClient {
    pub fn new(url: &str) -> Self {
        ShellyClient {
            url: url.trim_end_matches('/').to_string(),
            http: HttpClient::new(HTTP_TIMEOUT, MAX_BODY),
            next_id: 1,
        }
    }

    /// One RPC call; returns `result` or the device's error.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, ShellyError> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({"id": id, "method": method, "params": params}).to_string();
        let http_err = |reason: String| ShellyError::Http {
            url: self.url.clone(),
            method: method.into(),
            reason,
        };
        let answer = self
            .http
            .post_json(&format!("{}/rpc", self.url), body)
            .await
            .map_err(|f| {
                http_err(match f {
                    HttpFailure::Build(e) => e,
                    HttpFailure::NoAnswer => "no answer within 5 s".into(),
                    HttpFailure::Request(e) => e.to_string(),
                    HttpFailure::BodyTimeout => "body not received within 5 s".into(),
                    HttpFailure::Body(e) => format!("reading the body failed: {e}"),
                })
            })?;
        let (status, bytes) = (answer.status, answer.body);
        let malformed = |reason: String| ShellyError::Malformed {
            url: self.url.clone(),
            method: method.into(),
            reason,
            body: crate::broker::excerpt(&bytes),
        };
        let frame: RpcFrame = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(_) if status != 200 => {
                return Err(ShellyError::Status {
                    url: self.url.clone(),
                    method: method.into(),
                    status,
                });
            }
            Err(e) => return Err(malformed(e.to_string())),
        };
        if frame.id.is_some_and(|got| got != id) {
            return Err(malformed(format!(
                "answer id {:?} does not match request id {id}",
                frame.id
            )));
        }
        match (frame.result, frame.error) {
            (_, Some(e)) => Err(ShellyError::Rpc {
                url: self.url.clone(),
                method: method.into(),
                code: e.code,
                message: e.message,
            }),
            (Some(r), None) => Ok(r),
            (None, None) => Err(malformed("neither result nor error".into())),
        }
    }

    /// `Switch.GetStatus`, checked field by field (a whole status).
    pub async fn switch_status(&mut self, switch_id: u32) -> Result<OutletStatus, ShellyError> {
        let v = self
            .call("Switch.GetStatus", json!({"id": switch_id}))
            .await?;
        shelly_rpc::parse_switch(switch_id as usize, &v)
            .map(OutletStatus::whole)
            .map_err(|e| ShellyError::Malformed {
                url: self.url.clone(),
                method: "Switch.GetStatus".into(),
                reason: e.to_string(),
                body: crate::broker::excerpt(v.to_string().as_bytes()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves one HTTP answer whose JSON-RPC body is `len` bytes long.
    async fn one_answer_of(len: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let head = r#"{"id":1,"result":{"pad":""#;
            let tail = r#""}}"#;
            let pad = "x".repeat(len - head.len() - tail.len());
            let body = format!("{head}{pad}{tail}");
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(answer.as_bytes()).await;
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn an_answer_beyond_the_body_limit_is_an_error_not_collected() {
        let mut c = ShellyClient::new(&one_answer_of(1024).await);
        assert!(c.call("Shelly.GetDeviceInfo", json!({})).await.is_ok());
        let mut c = ShellyClient::new(&one_answer_of(4 * MAX_BODY).await);
        let e = c
            .call("Shelly.GetDeviceInfo", json!({}))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Shelly.GetDeviceInfo: HTTP request failed: reading the body failed"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_dead_address_is_named_with_the_method() {
        // Port 9 on loopback: nothing listens (connection refused).
        let mut c = ShellyClient::new("http://127.0.0.1:9/");
        let e = c
            .call("Switch.GetStatus", json!({"id": 0}))
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("http://127.0.0.1:9 Switch.GetStatus: HTTP request failed"),
            "{text}"
        );
    }
}
