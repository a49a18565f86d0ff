//! The plain-HTTP client the LAN device drivers share (Shelly Gen1 and
//! Gen2, Meross): hyper's HTTP/1 client over hyper-util's `HttpConnector`,
//! one request at a time, a wall-time limit for the answer's head and
//! another for its body, and a body size limit (`http_body_util::Limited`),
//! so a device that stalls or streams garbage can neither hang a driver nor
//! fill its memory. Each driver words the failures its own way (its URL,
//! its method) from [`HttpFailure`].

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Why no answer came back whole.
#[derive(Debug)]
pub enum HttpFailure {
    /// The request could not be built (a bad URL).
    Build(String),
    /// No answer head within the timeout.
    NoAnswer,
    /// Refused, reset, closed: the client's error (its `source` chain says
    /// more).
    Request(hyper_util::client::legacy::Error),
    /// The body did not arrive within the timeout.
    BodyTimeout,
    /// The body broke off or is larger than the limit.
    Body(String),
}

/// An answer: its status and whole body (at most the limit).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct HttpClient {
    http: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    max_body: usize,
}

impl HttpClient {
    /// `timeout` applies to the answer's head and, again, to its body;
    /// `max_body` bytes are read at most.
    pub fn new(timeout: Duration, max_body: usize) -> Self {
        HttpClient {
            http: Client::builder(TokioExecutor::new()).build_http(),
            timeout,
            max_body,
        }
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Result<Answer, HttpFailure> {
        let req = hyper::Request::get(url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| HttpFailure::Build(e.to_string()))?;
        self.send(req).await
    }

    /// `POST url` with a JSON body.
    pub async fn post_json(&self, url: &str, json: String) -> Result<Answer, HttpFailure> {
        let req = hyper::Request::post(url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(json)))
            .map_err(|e| HttpFailure::Build(e.to_string()))?;
        self.send(req).await
    }

    async fn send(&self, req: hyper::Request<Full<Bytes>>) -> Result<Answer, HttpFailure> {
        let resp = tokio::time::timeout(self.timeout, self.http.request(req))
            .await
            .map_err(|_| HttpFailure::NoAnswer)?
            .map_err(HttpFailure::Request)?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), self.max_body);
        let body = tokio::time::timeout(self.timeout, body.collect())
            .await
            .map_err(|_| HttpFailure::BodyTimeout)?
            .map_err(|e| HttpFailure::Body(e.to_string()))?
            .to_bytes();
        Ok(Answer { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves one answer with a `len`-byte body.
    async fn one_answer_of(len: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n{}",
                "x".repeat(len)
            );
            let _ = sock.write_all(answer.as_bytes()).await;
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_a_failure_and_a_dead_port_a_request_error() {
        let c = HttpClient::new(Duration::from_secs(5), 1024);
        let a = c.get(&one_answer_of(1024).await).await.unwrap();
        assert_eq!((a.status, a.body.len()), (200, 1024));
        let e = c.get(&one_answer_of(1025).await).await.unwrap_err();
        assert!(matches!(e, HttpFailure::Body(_)), "{e:?}");
        // Port 9 on loopback: nothing listens.
        let e = c.post_json("http://127.0.0.1:9/", "{}".into()).await;
        assert!(matches!(e, Err(HttpFailure::Request(_))), "{e:?}");
    }
}
