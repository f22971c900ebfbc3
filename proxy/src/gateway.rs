//! The only place that speaks pingora on the client side: read the request, hand it to the
//! plain-Rust [`handler`](crate::handler), write the reply (streams chunk by chunk), and give
//! the connection back for keep-alive when it is clean.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use tokio::time::Instant;

use crate::endpoint::Endpoint;
use crate::error::{ProxyError, RequestError};
use crate::handler::{error_reply, handle, Incoming};
use crate::listener::drain::Drain;
use crate::listener::request_head::{self, HeaderRead, KeptAlive};
use crate::relay::{ChatStream, Reply, RequestRecord};
use crate::state::AppState;
use crate::telemetry::RequestSpan;

/// Longest a single read of the request body or write of the response may stall.
const CLIENT_IO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

pub struct Gateway {
    state: Arc<AppState>,
    options: HttpServerOptions,
    /// Requests in flight, and whether a shutdown is draining them.
    drain: Arc<Drain>,
}

impl Gateway {
    pub fn new(state: Arc<AppState>, drain: Arc<Drain>) -> Self {
        let mut options = HttpServerOptions::default();
        options.h2c = true;
        options.h2_idle_timeout = Some(state.policy().server.client.keepalive_idle_timeout);
        Self {
            state,
            options,
            drain,
        }
    }
}

/// Why the body could not be read.
enum BodyError {
    TooLarge(usize),
    Read(String),
    /// Not complete within `server.body_read_timeout`.
    Timeout(std::time::Duration),
}

#[async_trait]
impl HttpServerApp for Gateway {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let client = self.state.policy().server.client.clone();
        let header_timeouts = &self.state.metrics.client.timeouts;
        let timed_out = || header_timeouts.with_label_values(&["header"]).inc();
        if let HeaderRead::Done = request_head::read(&mut session, &client, timed_out).await {
            return None;
        }
        let _in_flight = self.drain.request();
        if *shutdown.borrow() || self.drain.is_draining() {
            session.set_keepalive(None);
        } else if session.get_keepalive().is_some() {
            // Not when the client asked to close.
            session.set_keepalive(Some(request_head::keepalive_seconds(
                client.keepalive_idle_timeout,
            )));
        }
        // A second request sent before the first was answered is served after it.
        session.set_pipelining_enabled(true);
        // A client that stops reading or sending must not hold a task (and an upstream
        // stream) forever; live streams keep the connection busy well within these.
        session.set_read_timeout(Some(CLIENT_IO_TIMEOUT));
        session.set_write_timeout(Some(CLIENT_IO_TIMEOUT));
        let started = Instant::now();
        let mut request_id = request_id(&session);
        let policy = self.state.policy();
        let mut record = RequestRecord::new(self.state.clone(), request_id.id.clone(), started);
        record.client_request_id = (!request_id.generated).then(|| request_id.id.clone());
        record.policy_version.clone_from(&policy.version);
        let header = session.req_header();
        let method = header.method.as_str().to_owned();
        let path = header.uri.path().to_owned();
        record.trace = RequestSpan::start(&self.state.tracing, &header.headers, &method, &path);
        let query = header.uri.query().map(str::to_owned);
        let text_header = |name: &str| {
            header
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let authorization = text_header("authorization");
        let api_key = text_header("api-key");
        let x_api_key = text_header("x-api-key");
        let debug = text_header("x-switchyard-debug")
            .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes"));
        record.endpoint = Endpoint::new(&path, header.headers.contains_key("anthropic-version"));
        request_id.echo_for_anthropic = record.endpoint.is_anthropic();
        let anthropic_beta = betas(&header.headers);

        let body = tokio::time::timeout(
            client.body_read_timeout,
            read_body(&mut session, policy.server.max_request_bytes),
        )
        .await
        .unwrap_or(Err(BodyError::Timeout(client.body_read_timeout)));
        let reply = match body {
            Ok(body) => {
                record.body_read = Instant::now();
                let incoming = Incoming {
                    method,
                    path,
                    query,
                    authorization,
                    api_key,
                    x_api_key,
                    anthropic_beta,
                    debug,
                    body,
                };
                handle(policy, incoming, record).await
            }
            Err(error) => {
                // The rest of the body is unread, so the connection cannot be reused.
                session.set_keepalive(None);
                let error: ProxyError = match error {
                    BodyError::TooLarge(limit) => RequestError::BodyTooLarge { limit }.into(),
                    BodyError::Read(message) => RequestError::BodyRead(message).into(),
                    BodyError::Timeout(timeout) => {
                        self.state
                            .metrics
                            .client
                            .timeouts
                            .with_label_values(&["body"])
                            .inc();
                        RequestError::BodyTimeout { timeout }.into()
                    }
                };
                error_reply(error, record)
            }
        };
        let clean = write_reply(&mut session, &request_id, reply).await;
        if !clean {
            return None;
        }
        let mut settings = HttpPersistentSettings::for_session(&session);
        settings.set_user_context(Box::new(KeptAlive));
        match session.finish().await {
            Ok(Some(stream)) => Some(ReusedHttpStream::from_reusable_stream(stream, settings)),
            Ok(None) | Err(_) => None,
        }
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        Some(&self.options)
    }
}

/// The request's id: the client's `x-request-id` when it is one the proxy can log and echo
/// safely, else a fresh one (and `replaced` says so, in `x-switchyard-request-id-replaced`).
struct RequestId {
    id: String,
    /// The proxy made the id (the client sent none, or one it could not keep).
    generated: bool,
    replaced: bool,
    /// Also echoed as `request-id`, the header Anthropic's SDKs read (on the Anthropic paths).
    echo_for_anthropic: bool,
}

/// Longest client request id kept.
const MAX_REQUEST_ID: usize = 128;

/// Letters, digits and `-_.:/+@`: no space, quote or `=`, so an id cannot forge fields of a
/// text log line (issue 15, item 4).
fn is_safe_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+@".contains(&b))
}

fn request_id(session: &ServerSession) -> RequestId {
    let sent = session.req_header().headers.get("x-request-id");
    match sent.map(|v| v.to_str().map(str::to_owned)) {
        Some(Ok(id)) if is_safe_request_id(&id) => RequestId {
            id,
            generated: false,
            replaced: false,
            echo_for_anthropic: false,
        },
        sent => RequestId {
            id: crate::ids::random_uuid().to_string(),
            generated: true,
            replaced: sent.is_some(),
            echo_for_anthropic: false,
        },
    }
}

/// The client's `anthropic-beta` flags: every value of every `anthropic-beta` header, split
/// at commas and trimmed, in order (Claude Code sends one comma-separated header).
fn betas(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|flag| !flag.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads the whole request body, refusing it as soon as it exceeds `limit`.
async fn read_body(session: &mut ServerSession, limit: usize) -> Result<Bytes, BodyError> {
    let declared = session
        .req_header()
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let expects_continue = session
        .req_header()
        .headers
        .get("expect")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue {
        // curl and some SDKs wait for this before sending a large body.
        session
            .write_continue_response()
            .await
            .map_err(|e| BodyError::Read(e.to_string()))?;
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(BodyError::TooLarge(limit));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(e) => return Err(BodyError::Read(e.to_string())),
        }
    }
}

/// Writes the reply; returns whether the connection is clean for reuse.
async fn write_reply(session: &mut ServerSession, request_id: &RequestId, reply: Reply) -> bool {
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let Some(mut header) = response_header(status, request_id, &headers) else {
                return false;
            };
            if header
                .insert_header("content-length", body.len().to_string())
                .is_err()
            {
                return false;
            }
            session
                .write_response_header(Box::new(header))
                .await
                .is_ok()
                && session.write_response_body(body, true).await.is_ok()
        }
        Reply::Stream { headers, stream } => {
            write_stream(session, request_id, &headers, stream).await
        }
    }
}

fn response_header(
    status: u16,
    request_id: &RequestId,
    headers: &[(&'static str, String)],
) -> Option<ResponseHeader> {
    let mut header = ResponseHeader::build(status, Some(headers.len() + 4)).ok()?;
    header.insert_header("x-request-id", &request_id.id).ok()?;
    if request_id.echo_for_anthropic {
        header.insert_header("request-id", &request_id.id).ok()?;
    }
    if request_id.replaced {
        header
            .insert_header("x-switchyard-request-id-replaced", "true")
            .ok()?;
    }
    for (name, value) in headers {
        header.append_header(*name, value.as_str()).ok()?;
    }
    Some(header)
}

/// Relays a stream: each chunk is written as soon as the upstream produced it, and a client
/// that goes away stops the upstream read at once.
async fn write_stream(
    session: &mut ServerSession,
    request_id: &RequestId,
    headers: &[(&'static str, String)],
    mut stream: Box<ChatStream>,
) -> bool {
    let Some(mut header) = response_header(200, request_id, headers) else {
        stream.client_gone();
        return false;
    };
    if header
        .insert_header("transfer-encoding", "chunked")
        .is_err()
        || session
            .write_response_header(Box::new(header))
            .await
            .is_err()
    {
        stream.client_gone();
        return false;
    }
    // A half-closed client connection means the client is gone.
    session.set_abort_on_close(true);
    loop {
        let chunk = tokio::select! {
            chunk = stream.next_chunk() => chunk,
            _ = session.read_body_or_idle(true) => {
                stream.client_gone();
                return false;
            }
        };
        match chunk {
            Some(bytes) => {
                if session.write_response_body(bytes, false).await.is_err() {
                    stream.client_gone();
                    return false;
                }
            }
            None => break,
        }
    }
    session
        .write_response_body(Bytes::new(), true)
        .await
        .is_ok()
        && session.finish_body().await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::{betas, is_safe_request_id};

    #[test]
    fn beta_flags_are_split_trimmed_and_kept_in_order() {
        let mut headers = http::HeaderMap::new();
        headers.append(
            "anthropic-beta",
            http::HeaderValue::from_static(
                "claude-code-20250219, interleaved-thinking-2025-05-14,",
            ),
        );
        headers.append(
            "anthropic-beta",
            http::HeaderValue::from_static(" context-management-2025-06-27 "),
        );
        assert_eq!(
            betas(&headers),
            [
                "claude-code-20250219",
                "interleaved-thinking-2025-05-14",
                "context-management-2025-06-27"
            ]
        );
        assert!(betas(&http::HeaderMap::new()).is_empty());
    }

    #[test]
    fn request_ids_that_could_forge_log_fields_are_refused() {
        for safe in [
            "e2e-request-42",
            "trace-7f3a:span/2",
            "a.b_c+d@e",
            &"x".repeat(128),
        ] {
            assert!(is_safe_request_id(safe), "{safe}");
        }
        for unsafe_id in [
            "",
            "FORGED team=beta",
            "a=b",
            "quote\"d",
            "tab\there",
            "new\nline",
            "ünicode",
            &"x".repeat(129),
        ] {
            assert!(!is_safe_request_id(unsafe_id), "{unsafe_id:?}");
        }
    }
}
