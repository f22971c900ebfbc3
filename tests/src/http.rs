//! Raw HTTP helpers: a reqwest client, a time bound for every call, SSE parsing and
//! the OpenAI error shape.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

/// The longest any single client call in a test may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(12);

/// Awaits `future`, failing the test if it takes longer than [`CALL_TIMEOUT`].
pub async fn within<F: Future>(future: F) -> F::Output {
    match tokio::time::timeout(CALL_TIMEOUT, future).await {
        Ok(output) => output,
        Err(_) => panic!("a client call did not finish within {CALL_TIMEOUT:?}"),
    }
}

/// A plain HTTP client for header- and byte-level checks (no proxy, bounded in time).
pub fn http_client() -> reqwest::Client {
    crate::install_crypto();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(CALL_TIMEOUT)
        .build()
        .expect("building a reqwest client")
}

/// The `data:` payloads of a server-sent-events body, in order (multi-line data joined with `\n`).
pub fn sse_data(body: &str) -> Vec<String> {
    let mut events = Vec::new();
    for block in body.replace("\r\n", "\n").split("\n\n") {
        let lines: Vec<&str> = block
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|data| data.strip_prefix(' ').unwrap_or(data))
            .collect();
        if !lines.is_empty() {
            events.push(lines.join("\n"));
        }
    }
    events
}

/// The `error` object of an OpenAI-style error body, or a description of why the body is not one.
pub fn error_of(body: &str) -> Result<Value, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("body is not JSON ({e}): {body}"))?;
    match value.get("error") {
        Some(error @ Value::Object(_)) => Ok(error.clone()),
        _ => Err(format!("body has no `error` object: {body}")),
    }
}

/// A whole HTTP response, read into memory.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The body as JSON (a test failure if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected a JSON body ({e}), got status {}: {}",
                self.status, self.body
            )
        })
    }

    /// The `error` object of an OpenAI-style error body (a test failure if it is not one).
    pub fn error(&self) -> Value {
        error_of(&self.body).unwrap_or_else(|why| panic!("status {}: {why}", self.status))
    }
}

async fn read(request: reqwest::RequestBuilder) -> Reply {
    let response = within(request.send()).await.expect("sending a request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = within(response.text())
        .await
        .expect("reading a response body");
    Reply {
        status,
        headers,
        body,
    }
}

/// `POST url` with a raw body (sent as `application/json`), an optional bearer key and extra headers.
pub async fn post(
    url: &str,
    bearer: Option<&str>,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = http_client()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = bearer {
        request = request.bearer_auth(key);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    read(request).await
}

/// `POST url` with a JSON value as body.
pub async fn post_json(url: &str, bearer: Option<&str>, body: &Value) -> Reply {
    post(url, bearer, body.to_string(), &[]).await
}

/// `GET url` with an optional bearer token.
pub async fn get(url: &str, bearer: Option<&str>) -> Reply {
    let mut request = http_client().get(url);
    if let Some(key) = bearer {
        request = request.bearer_auth(key);
    }
    read(request).await
}

/// A streamed response read to its end, tolerating a connection cut mid-body.
#[derive(Debug)]
pub struct StreamReply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// Everything that arrived before the end (or the cut).
    pub body: String,
    /// Why reading stopped early, if the connection did not end cleanly.
    pub cut: Option<String>,
}

impl StreamReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The `data:` payloads received.
    pub fn events(&self) -> Vec<String> {
        sse_data(&self.body)
    }
}

/// `POST url` with a JSON body and reads the (SSE) response chunk by chunk until it ends
/// or breaks, so a test can see what arrived before a failure.
pub async fn post_stream(url: &str, bearer: Option<&str>, body: &Value) -> StreamReply {
    post_stream_with(url, bearer, body, &[]).await
}

/// [`post_stream`] with extra request headers.
pub async fn post_stream_with(
    url: &str,
    bearer: Option<&str>,
    body: &Value,
    headers: &[(&str, &str)],
) -> StreamReply {
    let mut request = http_client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = bearer {
        request = request.bearer_auth(key);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = within(request.send()).await.expect("sending a request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut bytes = Vec::new();
    let mut cut = None;
    loop {
        match within(response.chunk()).await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(error) => {
                cut = Some(format!("{error:?}"));
                break;
            }
        }
    }
    StreamReply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        cut,
    }
}
