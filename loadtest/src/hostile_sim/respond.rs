//! The hostile simulator's answers, one function per [`Behaviour`].

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use super::{Behaviour, Received, Shared};

/// Bytes per piece of the `huge-body` answer.
const PIECE: usize = 64 * 1024;

pub(super) fn answer(
    behaviour: Behaviour,
    received: &Received,
    rest: &str,
    shared: &Shared,
) -> Response {
    match behaviour {
        Behaviour::Redirect307 => redirect(StatusCode::TEMPORARY_REDIRECT, shared, rest),
        Behaviour::Redirect302 => redirect(StatusCode::FOUND, shared, rest),
        Behaviour::ErrorIn200 => json_answer(
            StatusCode::OK,
            &json!({"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error", "code": null}}),
        ),
        Behaviour::HugeBody => huge_body(shared.huge_body_bytes),
        Behaviour::EchoCredentials => echo_credentials(received),
        Behaviour::AbsurdHeaders => absurd_headers(),
    }
}

pub(super) fn not_found(segment: &str) -> Response {
    let known: Vec<&str> = Behaviour::ALL.iter().map(|b| b.segment()).collect();
    let message = format!("unknown behaviour {segment:?}; one of {known:?}");
    json_answer(
        StatusCode::NOT_FOUND,
        &json!({"error": {"message": message}}),
    )
}

/// What the redirect target answers: a perfectly good completion, so that a client that
/// followed the redirect would see success.
pub(super) fn stolen_answer() -> Response {
    json_answer(StatusCode::OK, &completion("stolen"))
}

fn json_answer(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn completion(content: &str) -> serde_json::Value {
    json!({
        "id": "chatcmpl-hostile", "object": "chat.completion", "created": 1, "model": "hostile",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    })
}

fn redirect(status: StatusCode, shared: &Shared, rest: &str) -> Response {
    let location = format!("http://{}/{rest}", shared.thief);
    (status, [("location", location)], "").into_response()
}

/// A chat completion whose content is `size` bytes of `a`, made piece by piece as the
/// reader takes it.
fn huge_body(size: usize) -> Response {
    let body = completion("CONTENT").to_string();
    let (head, tail) = body.split_once("CONTENT").unwrap_or((&body, ""));
    let (head, tail) = (Bytes::from(head.to_owned()), Bytes::from(tail.to_owned()));
    let piece = Bytes::from(vec![b'a'; PIECE]);
    let full_pieces = size / PIECE;
    let last = Bytes::from(vec![b'a'; size % PIECE]);
    let pieces = std::iter::once(head)
        .chain(std::iter::repeat_n(piece, full_pieces))
        .chain([last, tail])
        .map(Ok::<_, std::io::Error>);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(futures_util::stream::iter(pieces)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A 400 that repeats the request's URL and every credential header it carried, as some
/// upstreams' "invalid key" messages do.
fn echo_credentials(received: &Received) -> Response {
    let credentials: Vec<String> = received
        .headers
        .iter()
        .filter(|(name, _)| {
            matches!(
                name.as_str(),
                "authorization" | "api-key" | "x-api-key" | "x-amz-security-token"
            )
        })
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    let message = format!(
        "Incorrect API key provided for {}: {}",
        received.uri,
        credentials.join("; ")
    );
    json_answer(
        StatusCode::BAD_REQUEST,
        &json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
    )
}

/// A good answer under headers no upstream should send.
fn absurd_headers() -> Response {
    let mut response = json_answer(StatusCode::OK, &completion("fine"));
    let headers = response.headers_mut();
    for n in 0..90 {
        if let Ok(name) = HeaderName::from_bytes(format!("x-junk-{n}").as_bytes()) {
            headers.insert(name, HeaderValue::from_static("junk"));
        }
    }
    let long = "x".repeat(16 * 1024);
    if let Ok(value) = HeaderValue::from_str(&long) {
        headers.insert("x-very-long", value);
    }
    let nonsense: [(&str, &[u8]); 6] = [
        ("retry-after", b"-1e309"),
        ("retry-after-ms", b"NaN"),
        (
            "x-ratelimit-remaining-requests",
            b"99999999999999999999999999",
        ),
        ("x-ratelimit-limit-tokens", b"-5"),
        ("x-ratelimit-reset-requests", b"1000000000000000000h"),
        ("x-ratelimit-reset-tokens", b"\xff\xfegarbage"),
    ];
    for (name, value) in nonsense {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(name, value);
        }
    }
    response
}
