//! Reading a request's header block under the client-side bounds: within
//! `server.header_read_timeout` (after `server.keepalive_idle_timeout` on a kept-alive
//! connection), no larger than `server.max_header_bytes` (431), and a malformed one answered
//! 400 rather than dropped. Used by the [`Gateway`](crate::gateway::Gateway).

use std::time::Duration;

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::ServerSession;

use crate::config::ClientSettings;
use crate::endpoint::{Endpoint, ErrorDialect};
use crate::error::{ProxyError, RequestError};

/// Put in the persistent settings of a connection kept alive, so that the next request on
/// it knows to allow the idle wait before its header.
pub struct KeptAlive;

/// What reading the header gave.
pub enum HeaderRead {
    /// A request to serve.
    Request,
    /// Nothing to answer: the client closed, sent nothing in time, or was answered already.
    Done,
}

/// Keep-alive in whole seconds, as pingora takes it (rounded up, at least 1).
pub fn keepalive_seconds(idle: Duration) -> u64 {
    idle.as_millis().div_ceil(1000).max(1) as u64
}

/// Reads the request header within its bound; a too large or malformed one is answered
/// here: in the client's dialect when the header could be parsed, else in OpenAI's.
pub async fn read(
    session: &mut ServerSession,
    settings: &ClientSettings,
    timed_out: impl FnOnce(),
) -> HeaderRead {
    let kept_alive = session.take_connection_user_context().is_some();
    let bound = match kept_alive {
        true => settings.keepalive_idle_timeout + settings.header_read_timeout,
        false => settings.header_read_timeout,
    };
    let (error, dialect) = match tokio::time::timeout(bound, session.read_request()).await {
        Ok(Ok(true)) => {
            let header = session.req_header();
            if header_block_size(header) <= settings.max_header_bytes {
                return HeaderRead::Request;
            }
            let anthropic = header.headers.contains_key("anthropic-version");
            let endpoint = Endpoint::new(header.uri.path(), anthropic);
            let limit = settings.max_header_bytes;
            (
                RequestError::HeaderTooLarge { limit },
                endpoint.error_dialect(),
            )
        }
        Ok(Ok(false)) => return HeaderRead::Done,
        Ok(Err(error)) => match classify(
            matches!(error.etype(), pingora::ErrorType::InvalidHTTPHeader),
            &error.to_string(),
        ) {
            Some(error) => (error, ErrorDialect::OpenAi),
            None => return HeaderRead::Done,
        },
        Err(_) => {
            timed_out();
            return HeaderRead::Done;
        }
    };
    answer(session, error.into(), dialect).await;
    HeaderRead::Done
}

/// What pingora's header error means for the client: 431 past pingora's own 1 MiB ceiling
/// or its 256 headers, 400 for a malformed block; `None` for a broken connection.
fn classify(header_error: bool, text: &str) -> Option<RequestError> {
    if !header_error {
        return None;
    }
    let text = text.to_ascii_lowercase();
    match text.contains("larger than") || text.contains("too many headers") {
        true => Some(RequestError::HeaderTooLarge {
            limit: PINGORA_HEADER_CEILING,
        }),
        false => Some(RequestError::MalformedHeader),
    }
}

/// pingora's own bound on a header block (`MAX_HEADER_SIZE` in its HTTP/1 reader).
const PINGORA_HEADER_CEILING: usize = (1 << 20) - 1;

/// The request line and the header fields as sent, near enough: what the limit is about.
fn header_block_size(header: &RequestHeader) -> usize {
    let line = header.method.as_str().len() + header.uri.to_string().len() + 12;
    let fields: usize = header
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    line + fields + 2
}

/// Writes `error` and closes the connection (the rest of what the client sent is unread).
async fn answer(session: &mut ServerSession, error: ProxyError, dialect: ErrorDialect) {
    let response = error.to_response();
    let (status, body) = response.render(dialect);
    session.set_keepalive(None);
    let Ok(mut header) = ResponseHeader::build(status, Some(4)) else {
        return;
    };
    let built = header
        .insert_header("content-type", "application/json")
        .and_then(|()| header.insert_header("content-length", body.len().to_string()))
        .and_then(|()| header.insert_header("connection", "close"));
    if built.is_err() {
        return;
    }
    if session
        .write_response_header(Box::new(header))
        .await
        .is_ok()
    {
        let _ = session.write_response_body(Bytes::from(body), true).await;
        let _ = session.finish_body().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pingora::http::RequestHeader;

    use super::{classify, header_block_size, keepalive_seconds};
    use crate::error::RequestError;

    #[test]
    fn keepalive_rounds_up_to_whole_seconds() {
        assert_eq!(keepalive_seconds(Duration::from_millis(1)), 1);
        assert_eq!(keepalive_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(keepalive_seconds(Duration::from_secs(60)), 60);
    }

    #[test]
    fn header_errors_map_to_431_and_400() {
        assert!(matches!(
            classify(
                true,
                "InvalidHTTPHeader context: Request header larger than 1048575"
            ),
            Some(RequestError::HeaderTooLarge { .. })
        ));
        assert!(matches!(
            classify(
                true,
                "InvalidHTTPHeader context: buf: ... cause: too many headers"
            ),
            Some(RequestError::HeaderTooLarge { .. })
        ));
        assert!(matches!(
            classify(true, " InvalidHTTPHeader context: buf: GET"),
            Some(RequestError::MalformedHeader)
        ));
        assert!(classify(false, "ConnectionClosed while reading request headers").is_none());
    }

    #[test]
    fn the_size_counts_the_request_line_and_every_field() -> Result<(), Box<dyn std::error::Error>>
    {
        let mut small = RequestHeader::build("GET", b"/v1/models", None)?;
        small.insert_header("host", "x")?;
        let mut large = RequestHeader::build("GET", b"/v1/models", None)?;
        large.insert_header("host", "x")?;
        large.insert_header("x-padding", "a".repeat(70_000))?;
        assert!(header_block_size(&small) < 64);
        assert!(header_block_size(&large) > 70_000);
        Ok(())
    }
}
