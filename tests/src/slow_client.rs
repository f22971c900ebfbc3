//! Hostile and slow clients over raw TCP, each bounded in time: a header sent a byte at a
//! time (slowloris), a connection that sends nothing, an idle kept-alive connection, a body
//! trickled in, pipelined requests and raw request bytes. Every helper gives up after its
//! `bound`, so a proxy that never closes fails the test instead of hanging it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What the peer did with a connection within the bound.
#[derive(Debug)]
pub struct Outcome {
    /// Everything the proxy wrote.
    pub received: Vec<u8>,
    /// When the proxy closed (or reset) the connection, from the helper's start; `None` if
    /// it was still open at the bound.
    pub closed_after: Option<Duration>,
}

impl Outcome {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }

    /// The status code of the first response, if one arrived.
    pub fn status(&self) -> Option<u16> {
        self.text()
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
    }

    /// The status codes of every response in order (pipelined requests).
    pub fn statuses(&self) -> Vec<u16> {
        self.text()
            .match_indices("HTTP/1.1 ")
            .filter_map(|(at, prefix)| {
                let text = self.text();
                text.get(at + prefix.len()..at + prefix.len() + 3)
                    .and_then(|code| code.parse().ok())
            })
            .collect()
    }
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr)
        .await
        .expect("connecting to the proxy")
}

/// Reads until the proxy closes the connection or `bound` passes.
pub async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> Outcome {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = started + bound;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Outcome {
                    received,
                    closed_after: Some(started.elapsed()),
                }
            }
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => {
                return Outcome {
                    received,
                    closed_after: None,
                }
            }
        }
    }
}

/// A connection that sends nothing at all.
pub async fn silent(addr: SocketAddr, bound: Duration) -> Outcome {
    let mut stream = connect(addr).await;
    read_until_closed(&mut stream, bound).await
}

/// Sends `header` one byte every `pace` (never finishing it if it is longer than the bound
/// allows) and reports when the proxy closed the connection.
pub async fn slowloris(
    addr: SocketAddr,
    header: &[u8],
    pace: Duration,
    bound: Duration,
) -> Outcome {
    let started = Instant::now();
    let mut stream = connect(addr).await;
    for byte in header {
        if started.elapsed() >= bound {
            break;
        }
        if stream.write_all(&[*byte]).await.is_err() {
            return Outcome {
                received: Vec::new(),
                closed_after: Some(started.elapsed()),
            };
        }
        // A close shows up as a readable EOF while we pace.
        let mut probe = [0u8; 1024];
        match tokio::time::timeout(pace, stream.read(&mut probe)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Outcome {
                    received: Vec::new(),
                    closed_after: Some(started.elapsed()),
                }
            }
            Ok(Ok(n)) => {
                let mut outcome =
                    read_until_closed(&mut stream, bound.saturating_sub(started.elapsed())).await;
                outcome.received.splice(0..0, probe[..n].iter().copied());
                return outcome;
            }
            Err(_) => {}
        }
    }
    let rest = bound.saturating_sub(started.elapsed());
    let mut outcome = read_until_closed(&mut stream, rest).await;
    outcome.closed_after = outcome.closed_after.map(|_| started.elapsed());
    outcome
}

/// Sends `head` (a complete request header announcing a body), then the body one byte
/// every `pace` until the proxy answers or closes, or `bound` passes.
pub async fn slow_body(
    addr: SocketAddr,
    head: &str,
    body: &[u8],
    pace: Duration,
    bound: Duration,
) -> Outcome {
    let started = Instant::now();
    let mut stream = connect(addr).await;
    stream
        .write_all(head.as_bytes())
        .await
        .expect("sending the header");
    let mut received = Vec::new();
    for byte in body {
        if started.elapsed() >= bound {
            break;
        }
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        let mut buf = [0u8; 8192];
        match tokio::time::timeout(pace, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Outcome {
                    received,
                    closed_after: Some(started.elapsed()),
                }
            }
            Ok(Ok(n)) => {
                received.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    let rest = bound.saturating_sub(started.elapsed());
    let mut outcome = read_until_closed(&mut stream, rest).await;
    outcome.received.splice(0..0, received);
    outcome.closed_after = outcome.closed_after.map(|_| started.elapsed());
    outcome
}

/// Sends `bytes` at once (one request, several pipelined, or a broken one) and reads
/// until the proxy closes or `bound` passes.
pub async fn exchange(addr: SocketAddr, bytes: &[u8], bound: Duration) -> Outcome {
    let mut stream = connect(addr).await;
    stream.write_all(bytes).await.expect("sending the request");
    read_until_closed(&mut stream, bound).await
}

/// A complete HTTP/1.1 `POST` of `body` to `path` with the client key `key`.
pub fn post_request(path: &str, key: &str, body: &str, connection: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: {connection}\r\n\r\n{body}",
        body.len()
    )
}

/// A `GET /v1/models` with the client key `key` that keeps the connection open.
pub fn models_request(key: &str) -> String {
    format!("GET /v1/models HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer {key}\r\n\r\n")
}
