//! The shared upstream HTTP client and one attempt's exchange bounded by a deadline.
//!
//! Requests go straight through hyper's pooled client (rustls on ring with the platform's
//! trusted roots, HTTP/1.1, HTTP/2 by ALPN): the request's URL, built from the provider's
//! base parsed once (`base_url.rs`), is handed over as an `http::Uri` (a byte scan of its
//! text), never turned back into a `Url` with IDNA as reqwest does for every request.
//! When the environment names an egress proxy (`HTTP(S)_PROXY`, `ALL_PROXY`), requests go
//! through reqwest instead, which speaks to forward proxies and honours `NO_PROXY`
//! (docs/operations.md, "Egress proxies").

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{HeaderValue, AUTHORIZATION};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_platform_verifier::BuilderVerifierExt;
use tokio::time::{timeout_at, Instant};

use super::base_url::redact_url;
use super::body::{byte_stream, declared_length, BodyError, UpstreamResponse};
use super::classify::{AttemptFailure, Classifier, FailureKind};
use super::scrub::{header_secrets, Scrubber};
use super::UpstreamRequest;

/// Largest error body read for classification.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle pooled connections kept per upstream host.
const POOL_MAX_IDLE_PER_HOST: usize = 256;
/// The variables that name an egress proxy (either case), as reqwest reads them.
const PROXY_VARIABLES: [&str; 6] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

type DirectClient = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The upstream client could not be built (no usable trust roots, …).
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{0}")]
    Proxied(#[from] reqwest::Error),
}

#[derive(Debug, Clone)]
pub struct UpstreamClient {
    http: Http,
}

#[derive(Debug, Clone)]
enum Http {
    /// Boxed: hyper's client is a few hundred bytes of handles, reqwest's one pointer.
    Direct(Box<DirectClient>),
    /// Through the egress proxy the environment names.
    Proxied(reqwest::Client),
}

impl UpstreamClient {
    /// The client for this process's environment: direct, or through the egress proxy it
    /// names.
    pub fn new(connect_timeout: Duration) -> Result<Self, ClientBuildError> {
        // pingora and the upstream clients share rustls; ring must be the process default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let proxied = PROXY_VARIABLES
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
        let http = match proxied {
            true => Http::Proxied(proxied_client(connect_timeout)?),
            false => Http::Direct(Box::new(direct_client(connect_timeout)?)),
        };
        Ok(Self { http })
    }

    /// Whether requests go through an egress proxy (logged at start).
    pub fn through_egress_proxy(&self) -> bool {
        matches!(self.http, Http::Proxied(_))
    }

    /// Sends the request and waits for the response headers until `first_byte_deadline`.
    /// A non-2xx answer is read (bounded) and classified by the provider's `classify`.
    pub async fn send(
        &self,
        request: UpstreamRequest,
        first_byte_deadline: Instant,
        classify: Classifier,
    ) -> Result<UpstreamResponse, AttemptFailure> {
        // Kept (reference-counted) so that an upstream echoing the credentials this request
        // carried, refreshed tokens included, cannot hand them on in its error.
        let sent_credentials: Vec<HeaderValue> = request
            .headers
            .values()
            .filter(|value| value.is_sensitive())
            .cloned()
            .collect();
        let outcome = match &self.http {
            Http::Direct(client) => send_direct(client, request, first_byte_deadline).await,
            Http::Proxied(client) => send_proxied(client, request, first_byte_deadline).await,
        };
        let outcome = match outcome {
            Ok(response) => accept(response, first_byte_deadline, classify).await,
            Err(failure) => Err(failure),
        };
        outcome.map_err(|mut failure| {
            let secrets = header_secrets(&sent_credentials);
            Scrubber::new(secrets.iter().map(String::as_str)).scrub_in_place(&mut failure.detail);
            failure
        })
    }
}

/// hyper's pooled client on rustls (ring, the platform's roots), HTTP/1.1 and HTTP/2 by ALPN.
fn direct_client(connect_timeout: Duration) -> Result<DirectClient, ClientBuildError> {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_platform_verifier()?
    .with_no_client_auth();
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(connect_timeout));
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp);
    Ok(
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .pool_timer(TokioTimer::new())
            .build(connector),
    )
}

/// reqwest, which reads the egress proxy (and `NO_PROXY`) from the environment.
fn proxied_client(connect_timeout: Duration) -> Result<reqwest::Client, ClientBuildError> {
    Ok(reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        .tcp_nodelay(true)
        // A proxy never follows an upstream's redirect: the request carries the proxy's own
        // credentials, which must not go wherever a `Location` points. A 3xx is an upstream
        // error (classified as a server error, so the request fails over).
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Sends `request` on hyper's client, waiting for the headers until `deadline`. hyper never
/// follows a redirect: a 3xx comes back as the answer, to be classified like any non-2xx.
async fn send_direct(
    client: &DirectClient,
    request: UpstreamRequest,
    deadline: Instant,
) -> Result<UpstreamResponse, AttemptFailure> {
    let UpstreamRequest {
        url,
        mut headers,
        body,
    } = request;
    let url = match user_info_as_basic_auth(&url) {
        None => Cow::Borrowed(&url),
        Some((bare, basic)) => {
            headers.entry(AUTHORIZATION).or_insert(basic);
            Cow::Owned(bare)
        }
    };
    let uri = http::Uri::try_from(url.as_str()).map_err(|e| {
        AttemptFailure::new(
            FailureKind::ServerError,
            format!(
                "the upstream URL {} is not a request URI: {e}",
                redact_url(&url)
            ),
        )
    })?;
    let mut outgoing = http::Request::new(Full::new(body));
    *outgoing.method_mut() = http::Method::POST;
    *outgoing.uri_mut() = uri;
    *outgoing.headers_mut() = headers;
    match timeout_at(deadline, client.request(outgoing)).await {
        Err(_) => Err(no_headers_in_time()),
        Ok(Err(e)) => Err(failure_of(e.is_connect(), &e, Some(&url))),
        Ok(Ok(response)) => Ok(response.map(|body| body.map_err(BodyError::from).boxed_unsync())),
    }
}

/// A URL's user-info, as reqwest sends it: taken out of the URL and sent as HTTP Basic
/// credentials (unless the provider sets `authorization` itself). `None` without user-info.
fn user_info_as_basic_auth(url: &url::Url) -> Option<(url::Url, HeaderValue)> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    use base64::Engine as _;
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    let credentials = format!(
        "{}:{}",
        decode(url.username()),
        url.password().map(decode).unwrap_or_default()
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    let mut basic = HeaderValue::try_from(format!("Basic {encoded}")).ok()?;
    basic.set_sensitive(true);
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    Some((bare, basic))
}

/// Sends `request` through reqwest (egress proxy), waiting for the headers until `deadline`.
async fn send_proxied(
    client: &reqwest::Client,
    request: UpstreamRequest,
    deadline: Instant,
) -> Result<UpstreamResponse, AttemptFailure> {
    let url = request.url.clone();
    let pending = client
        .post(request.url)
        .headers(request.headers)
        .body(request.body)
        .send();
    match timeout_at(deadline, pending).await {
        Err(_) => Err(no_headers_in_time()),
        // reqwest names the URL it sent to: its own copy, user-info taken out.
        Ok(Err(e)) => Err(failure_of(
            e.is_connect(),
            &e,
            Some(e.url().unwrap_or(&url)),
        )),
        Ok(Ok(response)) => {
            let response = http::Response::<reqwest::Body>::from(response);
            // reqwest's errors name the URL, whose query may hold a secret: dropped.
            Ok(response.map(|body| {
                body.map_err(|e| BodyError::from(e.without_url()))
                    .boxed_unsync()
            }))
        }
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
    response: UpstreamResponse,
    deadline: Instant,
    classify: Classifier,
) -> Result<UpstreamResponse, AttemptFailure> {
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
    response: UpstreamResponse,
    deadline: Instant,
    limit: usize,
) -> Result<Bytes, AttemptFailure> {
    read_bounded(response, deadline, limit)
        .await
        .map_err(|error| match error {
            BodyReadError::TooLarge => AttemptFailure::new(
                FailureKind::ServerError,
                format!("the upstream's body exceeds {limit} bytes"),
            ),
            BodyReadError::Failed(failure) => failure,
        })
}

/// Reads a complete 2xx answer of at most `limit` bytes (`server.max_response_bytes`): a
/// larger one is refused as soon as it says so (`content-length`) or grows past the bound,
/// so the proxy never holds more of it. The attempt fails over, like any broken answer.
pub async fn read_answer(
    response: UpstreamResponse,
    deadline: Instant,
    limit: usize,
) -> Result<Bytes, AttemptFailure> {
    let declared = declared_length(&response);
    let outcome = match declared.is_some_and(|length| length > limit as u64) {
        true => Err(BodyReadError::TooLarge),
        false => read_bounded(response, deadline, limit).await,
    };
    outcome.map_err(|error| match error {
        BodyReadError::TooLarge => AttemptFailure::new(
            FailureKind::ServerError,
            format!("the upstream's answer exceeds server.max_response_bytes ({limit} bytes)"),
        ),
        BodyReadError::Failed(failure) => failure,
    })
}

/// Why a bounded body read stopped.
enum BodyReadError {
    TooLarge,
    Failed(AttemptFailure),
}

async fn read_bounded(
    response: UpstreamResponse,
    deadline: Instant,
    limit: usize,
) -> Result<Bytes, BodyReadError> {
    let mut stream = byte_stream(response);
    // A body that arrives in one piece (most answers) is passed on as it came, uncopied.
    let mut first: Option<Bytes> = None;
    let mut body = Vec::new();
    loop {
        match timeout_at(deadline, stream.next()).await {
            Err(_) => {
                return Err(BodyReadError::Failed(AttemptFailure::new(
                    FailureKind::Timeout,
                    "the upstream's body did not arrive in time",
                )))
            }
            Ok(None) => return Ok(first.unwrap_or_else(|| Bytes::from(body))),
            Ok(Some(Err(e))) => return Err(BodyReadError::Failed(body_failure(&e))),
            Ok(Some(Ok(chunk))) => {
                let held = first.as_ref().map_or(0, Bytes::len);
                if held + body.len() + chunk.len() > limit {
                    return Err(BodyReadError::TooLarge);
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

/// A request that got no answer, or a body that broke off: a timeout is a timeout; a
/// connection that could not be made or broke is a capacity problem (another target may well
/// answer). `url`, when the error's text may name it, is shown redacted: its user-info or
/// query (`?key=…`) may hold a secret.
fn failure_of(
    connect: bool,
    error: &(dyn std::error::Error + 'static),
    url: Option<&url::Url>,
) -> AttemptFailure {
    if timed_out(error) {
        return AttemptFailure::new(FailureKind::Timeout, "upstream timed out");
    }
    let mut cause = error_chain(error);
    if let Some(url) = url {
        cause = cause.replace(url.as_str(), &redact_url(url));
    }
    connection_failure(connect, &cause)
}

/// A body that broke off after its headers arrived (its errors name no URL).
pub fn body_failure(error: &BodyError) -> AttemptFailure {
    failure_of(false, error.as_ref(), None)
}

/// Whether a timeout (a connect timeout, a socket's own) is somewhere in `error`'s chain.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        if error
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
        {
            return true;
        }
        next = error.source();
    }
    false
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
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
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
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::upstream::classify::classify_status;

    /// The two clients a process can have: direct, and the one for an egress proxy (here
    /// with none configured, so it connects directly too).
    fn both_clients() -> [(&'static str, UpstreamClient); 2] {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let timeout = Duration::from_secs(2);
        [
            (
                "direct",
                UpstreamClient {
                    http: Http::Direct(Box::new(direct_client(timeout).unwrap())),
                },
            ),
            (
                "proxied",
                UpstreamClient {
                    http: Http::Proxied(proxied_client(timeout).unwrap()),
                },
            ),
        ]
    }

    /// Answers every connection on `listener` with `answer`, keeping the first request head
    /// it read in `seen`.
    fn serve(listener: TcpListener, answer: String, seen: Arc<Mutex<Option<String>>>) {
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 8192];
                let read = socket.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..read]).into_owned();
                seen.lock().unwrap().get_or_insert(head);
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
    }

    /// A listener answering `answer` to every request; its address and the first head read.
    async fn upstream(answer: &str) -> (std::net::SocketAddr, Arc<Mutex<Option<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(None));
        serve(listener, answer.to_owned(), seen.clone());
        (addr, seen)
    }

    fn request(url: &str, headers: http::HeaderMap) -> UpstreamRequest {
        UpstreamRequest {
            url: url::Url::parse(url).unwrap(),
            headers,
            body: Bytes::from_static(b"{}"),
        }
    }

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    /// `client.send` of a request to `url` with `headers`, ten seconds to answer.
    async fn send(
        client: &UpstreamClient,
        url: &str,
        headers: http::HeaderMap,
    ) -> Result<UpstreamResponse, AttemptFailure> {
        client
            .send(request(url, headers), deadline(), classify_status)
            .await
    }

    /// Issue 15, item 3: a connection error names the upstream without its query's secrets.
    #[tokio::test]
    async fn connection_errors_do_not_show_url_secrets() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        for (name, client) in both_clients() {
            let url = format!("http://user:pw@{addr}/v1/chat/completions?key=sk-secret-in-query");
            let failure = send(&client, &url, http::HeaderMap::new())
                .await
                .expect_err("nothing listens there");
            println!("{name}: {}", failure.detail);
            assert!(
                matches!(failure.kind, FailureKind::Capacity { .. }),
                "{name}"
            );
            assert!(
                failure.detail.starts_with("could not connect"),
                "{name}: {}",
                failure.detail
            );
            assert!(
                !failure.detail.contains("sk-secret-in-query"),
                "{name}: {}",
                failure.detail
            );
            assert!(
                !failure.detail.contains("pw@"),
                "{name}: {}",
                failure.detail
            );
        }
    }

    /// Issue 15, item 1: an upstream's redirect is an upstream error that fails over; the
    /// proxy's credentials never reach the address in `Location`.
    #[tokio::test]
    async fn upstream_redirects_are_not_followed() {
        let (thief_addr, thief_seen) =
            upstream("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await;
        let redirect = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{thief_addr}/steal\r\n\
             content-length: 0\r\n\r\n"
        );
        let (upstream_addr, _) = upstream(&redirect).await;
        println!("the upstream answers 307 pointing at another listener");
        for (name, client) in both_clients() {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                AUTHORIZATION,
                HeaderValue::from_static("Bearer sk-upstream-secret"),
            );
            let url = format!("http://{upstream_addr}/v1/chat/completions");
            let failure = send(&client, &url, headers)
                .await
                .expect_err("a 307 is not an answer");
            assert_eq!(
                failure.kind,
                FailureKind::ServerError,
                "{name}: {failure:?}"
            );
            assert!(failure.fails_over());
            assert!(
                failure.detail.starts_with("HTTP 307"),
                "{name}: {}",
                failure.detail
            );
            // Following the redirect would have reached the thief before `send` returned.
            assert!(
                thief_seen.lock().unwrap().is_none(),
                "{name} followed the redirect"
            );
        }
    }

    /// A base URL's user-info is sent as HTTP Basic credentials, and not in the request line
    /// or `host`, on either path; a provider's own `authorization` wins.
    #[tokio::test]
    async fn user_info_is_sent_as_basic_credentials_unless_the_provider_authorizes() {
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        for (name, client) in both_clients() {
            let (addr, seen) = upstream(ok).await;
            let url = format!("http://us%20er:p%40ss@{addr}/v1/chat/completions?api-version=1");
            let answer = send(&client, &url, http::HeaderMap::new()).await.unwrap();
            assert_eq!(answer.status(), 200);
            let head = seen.lock().unwrap().clone().unwrap().to_ascii_lowercase();
            println!("{name}:\n{head}");
            assert!(
                head.starts_with("post /v1/chat/completions?api-version=1 http/1.1\r\n"),
                "{name}"
            );
            assert!(head.contains(&format!("\r\nhost: {addr}\r\n")), "{name}");
            // base64("us er:p@ss")
            assert!(
                head.contains("\r\nauthorization: basic dxmgzxi6cebzcw==\r\n"),
                "{name}"
            );
            assert!(
                !head.contains("p%40ss") && !head.contains("us%20er"),
                "{name}"
            );

            let (addr, seen) = upstream(ok).await;
            let url = format!("http://user:pw@{addr}/v1/chat/completions");
            let mut headers = http::HeaderMap::new();
            headers.insert(
                AUTHORIZATION,
                HeaderValue::from_static("Bearer sk-provider"),
            );
            send(&client, &url, headers).await.unwrap();
            let head = seen.lock().unwrap().clone().unwrap().to_ascii_lowercase();
            assert!(
                head.contains("\r\nauthorization: bearer sk-provider\r\n"),
                "{name}"
            );
            assert_eq!(head.matches("authorization").count(), 1, "{name}: {head}");
        }
    }

    /// An answer whose connection breaks before the body it declared is complete fails the
    /// attempt as a broken connection (a capacity problem: another target may answer).
    #[tokio::test]
    async fn a_body_cut_short_is_a_connection_failure() {
        let cut = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial\":";
        let (addr, _) = upstream(cut).await;
        for (name, client) in both_clients() {
            let url = format!("http://{addr}/v1/chat/completions");
            let answer = send(&client, &url, http::HeaderMap::new()).await.unwrap();
            assert_eq!(declared_length(&answer), Some(100), "{name}");
            let failure = read_answer(answer, deadline(), 1024).await.unwrap_err();
            println!("{name}: {}", failure.detail);
            assert!(
                matches!(failure.kind, FailureKind::Capacity { .. }),
                "{name}"
            );
            assert!(
                failure.detail.starts_with("the upstream connection failed"),
                "{name}"
            );
        }
    }

    /// A timeout anywhere in an error's chain (a connect timeout inside hyper's or reqwest's
    /// error) makes the failure a timeout; other errors are connection failures.
    #[test]
    fn a_timeout_in_the_error_chain_is_a_timeout() {
        #[derive(Debug, thiserror::Error)]
        #[error("client error (Connect)")]
        struct Outer(#[source] std::io::Error);
        let url = url::Url::parse("http://127.0.0.1:9/v1").unwrap();
        let timed_out = Outer(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "tcp connect",
        ));
        assert_eq!(
            failure_of(true, &timed_out, Some(&url)).kind,
            FailureKind::Timeout
        );
        let refused = Outer(std::io::ErrorKind::ConnectionRefused.into());
        let failure = failure_of(true, &refused, Some(&url));
        assert!(matches!(failure.kind, FailureKind::Capacity { .. }));
        assert!(
            failure.detail.contains("client error (Connect)"),
            "{}",
            failure.detail
        );
    }
}
