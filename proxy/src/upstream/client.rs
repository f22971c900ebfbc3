//! The shared upstream HTTP client (reqwest on rustls/ring, pooled, HTTP/1.1 and HTTP/2) and
//! one attempt's exchange bounded by a deadline.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::{timeout_at, Instant};

use super::base_url::redact_url;
use super::classify::{AttemptFailure, Classifier, FailureKind};
use super::scrub::{header_secrets, Scrubber};
use super::UpstreamRequest;

/// Largest error body read for classification.
const MAX_ERROR_BODY: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
}

impl UpstreamClient {
    pub fn new(connect_timeout: Duration) -> Result<Self, reqwest::Error> {
        // pingora and reqwest share rustls; the ring provider must be the process default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            // A proxy never follows an upstream's redirect: the request carries the proxy's own
            // credentials, which must not go wherever a `Location` points. A 3xx is an upstream
            // error (classified as a server error, so the request fails over).
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http })
    }

    /// Sends the request and waits for the response headers until `first_byte_deadline`.
    /// A non-2xx answer is read (bounded) and classified by the provider's `classify`.
    pub async fn send(
        &self,
        request: UpstreamRequest,
        first_byte_deadline: Instant,
        classify: Classifier,
    ) -> Result<reqwest::Response, AttemptFailure> {
        // Kept (reference-counted) so that an upstream echoing the credentials this request
        // carried, refreshed tokens included, cannot hand them on in its error.
        let sent_credentials: Vec<http::HeaderValue> = request
            .headers
            .values()
            .filter(|value| value.is_sensitive())
            .cloned()
            .collect();
        let pending = self
            .http
            .post(request.url)
            .headers(request.headers)
            .body(request.body)
            .send();
        let outcome = match timeout_at(first_byte_deadline, pending).await {
            Err(_) => Err(no_headers_in_time()),
            Ok(Err(e)) => Err(transport_failure(&e)),
            Ok(Ok(response)) => accept(response, first_byte_deadline, classify).await,
        };
        outcome.map_err(|mut failure| {
            let secrets = header_secrets(&sent_credentials);
            Scrubber::new(secrets.iter().map(String::as_str)).scrub_in_place(&mut failure.detail);
            failure
        })
    }
}

/// No response headers arrived before the attempt's first-byte deadline.
pub fn no_headers_in_time() -> AttemptFailure {
    AttemptFailure::new(
        FailureKind::Timeout,
        "no response headers before the first-byte timeout",
    )
}

/// Passes a 2xx answer on; any other is read (bounded by `deadline`) and classified. Shared
/// by every transport, so a scripted upstream's answers are judged exactly like real ones.
pub async fn accept(
    response: reqwest::Response,
    deadline: Instant,
    classify: Classifier,
) -> Result<reqwest::Response, AttemptFailure> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = read_body(response, deadline, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    Err(classify(status, &headers, &body))
}

/// Reads a whole body, bounded in size and time.
pub async fn read_body(
    response: reqwest::Response,
    deadline: Instant,
    limit: usize,
) -> Result<Bytes, AttemptFailure> {
    read_bounded(response, deadline, limit)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => AttemptFailure::new(
                FailureKind::ServerError,
                format!("the upstream's body exceeds {limit} bytes"),
            ),
            BodyError::Failed(failure) => failure,
        })
}

/// Reads a complete 2xx answer of at most `limit` bytes (`server.max_response_bytes`): a
/// larger one is refused as soon as it says so (`content-length`) or grows past the bound,
/// so the proxy never holds more of it. The attempt fails over, like any broken answer.
pub async fn read_answer(
    response: reqwest::Response,
    deadline: Instant,
    limit: usize,
) -> Result<Bytes, AttemptFailure> {
    let declared = response.content_length();
    let outcome = match declared.is_some_and(|length| length > limit as u64) {
        true => Err(BodyError::TooLarge),
        false => read_bounded(response, deadline, limit).await,
    };
    outcome.map_err(|error| match error {
        BodyError::TooLarge => AttemptFailure::new(
            FailureKind::ServerError,
            format!("the upstream's answer exceeds server.max_response_bytes ({limit} bytes)"),
        ),
        BodyError::Failed(failure) => failure,
    })
}

/// Why a bounded body read stopped.
enum BodyError {
    TooLarge,
    Failed(AttemptFailure),
}

async fn read_bounded(
    response: reqwest::Response,
    deadline: Instant,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let mut stream = response.bytes_stream();
    // A body that arrives in one piece (most answers) is passed on as it came, uncopied.
    let mut first: Option<Bytes> = None;
    let mut body = Vec::new();
    loop {
        match timeout_at(deadline, stream.next()).await {
            Err(_) => {
                return Err(BodyError::Failed(AttemptFailure::new(
                    FailureKind::Timeout,
                    "the upstream's body did not arrive in time",
                )))
            }
            Ok(None) => return Ok(first.unwrap_or_else(|| Bytes::from(body))),
            Ok(Some(Err(e))) => return Err(BodyError::Failed(transport_failure(&e))),
            Ok(Some(Ok(chunk))) => {
                let held = first.as_ref().map_or(0, Bytes::len);
                if held + body.len() + chunk.len() > limit {
                    return Err(BodyError::TooLarge);
                }
                match first.take() {
                    None if body.is_empty() => first = Some(chunk),
                    earlier => {
                        body.extend_from_slice(&earlier.unwrap_or_default());
                        body.extend_from_slice(&chunk);
                    }
                }
            }
        }
    }
}

/// A transport error: refused or dropped connections are capacity problems (another target
/// may well answer); timeouts are timeouts.
pub fn transport_failure(error: &reqwest::Error) -> AttemptFailure {
    if error.is_timeout() {
        return AttemptFailure::new(FailureKind::Timeout, "upstream timed out");
    }
    // reqwest's text names the URL, whose user-info or query (`?key=…`) may hold a secret.
    let mut cause = error_chain(error);
    if let Some(url) = error.url() {
        cause = cause.replace(url.as_str(), &redact_url(url));
    }
    connection_failure(error.is_connect(), &cause)
}

/// A connection that could not be made (`connect`) or broke: a capacity problem.
pub fn connection_failure(connect: bool, cause: &str) -> AttemptFailure {
    let what = if connect {
        "could not connect to the upstream"
    } else {
        "the upstream connection failed"
    };
    AttemptFailure::new(
        FailureKind::Capacity { retry_after: None },
        format!("{what}: {cause}"),
    )
}

/// An error and all its sources, as one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use http::header::{HeaderValue, AUTHORIZATION};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::upstream::classify::classify_status;

    /// Answers every connection on `listener` with `answer`, setting `reached` first.
    fn serve(listener: TcpListener, answer: String, reached: Arc<AtomicBool>) {
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                reached.store(true, Ordering::SeqCst);
                let mut buf = vec![0u8; 8192];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
    }

    /// Issue 15, item 3: a connection error names the upstream without its query's secrets.
    #[tokio::test]
    async fn connection_errors_do_not_show_url_secrets() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let client = UpstreamClient::new(Duration::from_secs(2)).unwrap();
        let request = UpstreamRequest {
            url: url::Url::parse(&format!(
                "http://user:pw@{addr}/v1/chat/completions?key=sk-secret-in-query"
            ))
            .unwrap(),
            headers: http::HeaderMap::new(),
            body: Bytes::from_static(b"{}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let failure = client
            .send(request, deadline, classify_status)
            .await
            .expect_err("nothing listens there");
        println!("{}", failure.detail);
        assert!(matches!(failure.kind, FailureKind::Capacity { .. }));
        assert!(
            !failure.detail.contains("sk-secret-in-query"),
            "{}",
            failure.detail
        );
        assert!(!failure.detail.contains("pw@"), "{}", failure.detail);
    }

    /// Issue 15, item 1: an upstream's redirect is an upstream error that fails over; the
    /// proxy's credentials never reach the address in `Location`.
    #[tokio::test]
    async fn upstream_redirects_are_not_followed() {
        let thief = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let thief_addr = thief.local_addr().unwrap();
        let thief_reached = Arc::new(AtomicBool::new(false));
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        serve(thief, ok.to_owned(), thief_reached.clone());

        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_addr = upstream.local_addr().unwrap();
        let redirect = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{thief_addr}/steal\r\n\
             content-length: 0\r\n\r\n"
        );
        serve(upstream, redirect, Arc::new(AtomicBool::new(false)));

        println!("the upstream answers 307 pointing at another listener");
        let client = UpstreamClient::new(Duration::from_secs(2)).unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer sk-upstream-secret"),
        );
        let request = UpstreamRequest {
            url: url::Url::parse(&format!("http://{upstream_addr}/v1/chat/completions")).unwrap(),
            headers,
            body: Bytes::from_static(b"{}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let failure = client
            .send(request, deadline, classify_status)
            .await
            .expect_err("a 307 is not an answer");
        assert_eq!(failure.kind, FailureKind::ServerError, "{failure:?}");
        assert!(failure.fails_over());
        assert!(failure.detail.starts_with("HTTP 307"), "{}", failure.detail);
        // Following the redirect would have connected to the thief before `send` returned.
        assert!(
            !thief_reached.load(Ordering::SeqCst),
            "the redirect was followed"
        );
    }
}
