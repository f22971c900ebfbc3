//! What an upstream answered, whichever client fetched it: the status, the headers and a body
//! that streams as it arrives. The relay reads every answer through these types, so a
//! scripted upstream's answers (unit tests) take exactly the path real ones do.

use bytes::Bytes;
use http_body::Body as _;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyDataStream;

/// Why a body stopped short: the connection broke, or (scripted) was reset.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// An answer's body, boxed once whichever client produced it.
pub type UpstreamBody = UnsyncBoxBody<Bytes, BodyError>;

/// An upstream's answer, headers in hand, body still arriving.
pub type UpstreamResponse = http::Response<UpstreamBody>;

/// An answer's body as a stream of its data pieces, in the order they arrived.
pub type ByteStream = BodyDataStream<UpstreamBody>;

/// The body of `response` as a stream of its pieces (trailers, which no provider sends, are
/// skipped).
pub fn byte_stream(response: UpstreamResponse) -> ByteStream {
    BodyDataStream::new(response.into_body())
}

/// The length the answer declared (`content-length`), when it declared one.
pub fn declared_length(response: &UpstreamResponse) -> Option<u64> {
    response.body().size_hint().exact()
}

/// A body that plays `stream`'s pieces: scripted upstreams and stream tests.
#[cfg(test)]
pub fn streamed<S, E>(stream: S) -> UpstreamBody
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<BodyError> + 'static,
{
    use futures_util::TryStreamExt;
    use http_body_util::BodyExt;
    http_body_util::StreamBody::new(stream.map_ok(http_body::Frame::data).map_err(Into::into))
        .boxed_unsync()
}

/// A body of `bytes`, whole.
#[cfg(test)]
pub fn whole(bytes: impl Into<Bytes>) -> UpstreamBody {
    use http_body_util::BodyExt;
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
