//! Incremental decoding of `application/vnd.amazon.eventstream` bodies (ConverseStream) on
//! `aws-smithy-eventstream`: network bytes in, whole frames out, CRCs checked.
//!
//! Reads split frames anywhere, so the decoder keeps the unfinished tail; a CRC mismatch is an
//! error because a corrupt or truncated frame would otherwise look like a short answer. The
//! 12-byte prelude (total length, headers length, prelude CRC; wire-formats §3) is checked
//! as soon as it has arrived: garbage declares a frame of any length, and waiting for it
//! would hold the attempt until the upstream closes.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{HeaderValue, Message};
use bytes::{Bytes, BytesMut};

/// Largest frame buffered; Bedrock's frames are small, a larger one means a broken stream.
const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// Total length, headers length and the CRC of those 8 bytes.
const PRELUDE_BYTES: usize = 12;
/// A frame without headers or payload: the prelude and the message CRC.
const MIN_FRAME_BYTES: usize = PRELUDE_BYTES + 4;

/// One decoded frame, with the headers Bedrock uses pulled out.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// `:message-type`: `event`, `exception` or `error`.
    pub message_type: String,
    /// `:event-type` for events, `:exception-type` for exceptions, `:error-code` for errors.
    pub event_type: String,
    /// `:error-message` of an `error` frame (its payload is usually empty).
    pub error_message: Option<String>,
    pub payload: Bytes,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventStreamError {
    #[error("invalid event-stream frame: {0}")]
    Invalid(String),
    #[error("event-stream frame exceeds {MAX_FRAME_BYTES} bytes")]
    TooLarge,
}

#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: BytesMut,
    decoder: MessageFrameDecoder,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes and returns every frame they completed, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Frame>, EventStreamError> {
        self.buffer.extend_from_slice(bytes);
        let mut frames = Vec::new();
        // The smithy decoder only sees whole frames, so the buffer always starts at a prelude.
        while let Some(prelude) = self.buffer.first_chunk::<PRELUDE_BYTES>() {
            let total = frame_length(prelude)?;
            if self.buffer.len() < total {
                break;
            }
            match self.decoder.decode_frame(&mut self.buffer) {
                Ok(DecodedFrame::Complete(message)) => frames.push(frame_of(&message)),
                Ok(DecodedFrame::Incomplete) => {
                    return Err(EventStreamError::Invalid(
                        "a whole frame did not decode".to_owned(),
                    ))
                }
                Err(e) => return Err(EventStreamError::Invalid(e.to_string())),
            }
        }
        Ok(frames)
    }
}

/// The total length a prelude declares, once its CRC and lengths are plausible.
fn frame_length(prelude: &[u8; PRELUDE_BYTES]) -> Result<usize, EventStreamError> {
    let word = |at: usize| {
        u32::from_be_bytes([
            prelude[at],
            prelude[at + 1],
            prelude[at + 2],
            prelude[at + 3],
        ])
    };
    let (total, headers, crc) = (word(0) as usize, word(4) as usize, word(8));
    if crc32fast::hash(&prelude[..8]) != crc {
        return Err(EventStreamError::Invalid(format!(
            "prelude CRC mismatch (declared length {total})"
        )));
    }
    if total > MAX_FRAME_BYTES {
        return Err(EventStreamError::TooLarge);
    }
    if total < MIN_FRAME_BYTES || headers > total - MIN_FRAME_BYTES {
        return Err(EventStreamError::Invalid(format!(
            "frame length {total} cannot hold {headers} bytes of headers"
        )));
    }
    Ok(total)
}

fn header(message: &Message, name: &str) -> Option<String> {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| match h.value() {
            HeaderValue::String(s) => Some(s.as_str().to_owned()),
            _ => None,
        })
}

fn frame_of(message: &Message) -> Frame {
    let message_type = header(message, ":message-type").unwrap_or_else(|| "event".to_owned());
    let type_header = match message_type.as_str() {
        "exception" => ":exception-type",
        "error" => ":error-code",
        _ => ":event-type",
    };
    Frame {
        event_type: header(message, type_header).unwrap_or_default(),
        error_message: header(message, ":error-message"),
        message_type,
        payload: message.payload().clone(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// docs/wire-formats.md §3.7 vector A: a `contentBlockDelta` event.
    pub(crate) const VECTOR_A: &str = "0000009400000057b4ab9aee0b3a6576656e742d74797065070011636f6e74656e74426c6f636b44656c74610d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22636f6e74656e74426c6f636b496e646578223a302c2264656c7461223a7b2274657874223a224869227d7d1f944657";
    /// docs/wire-formats.md §3.7 vector B: a mid-stream `throttlingException`.
    const VECTOR_B: &str = "000000b2000000613590d5d30f3a657863657074696f6e2d747970650700137468726f74746c696e67457863657074696f6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74797065070009657863657074696f6e7b226d657373616765223a22546f6f206d616e792072657175657374732c20706c656173652077616974206265666f726520747279696e6720616761696e2e227de8ffb26a";
    /// The public CRT vector: no headers, payload `{'foo':'bar'}`.
    const CRT: &str = "0000001D00000000FD528C5A7B27666F6F273A27626172277DC3653936";

    pub(crate) fn bytes_of(hex_text: &str) -> Vec<u8> {
        let clean: String = hex_text.chars().filter(|c| !c.is_whitespace()).collect();
        hex::decode(clean).unwrap()
    }

    #[test]
    fn vector_a_is_a_content_block_delta() {
        let frames = FrameDecoder::new().push(&bytes_of(VECTOR_A)).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].message_type, "event");
        assert_eq!(frames[0].event_type, "contentBlockDelta");
        assert_eq!(
            &frames[0].payload[..],
            br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#
        );
    }

    #[test]
    fn vector_b_is_a_throttling_exception() {
        let frames = FrameDecoder::new().push(&bytes_of(VECTOR_B)).unwrap();
        assert_eq!(frames[0].message_type, "exception");
        assert_eq!(frames[0].event_type, "throttlingException");
        assert!(std::str::from_utf8(&frames[0].payload)
            .unwrap()
            .contains("Too many requests"));
    }

    #[test]
    fn crt_vector_without_headers() {
        let frames = FrameDecoder::new().push(&bytes_of(CRT)).unwrap();
        assert_eq!(&frames[0].payload[..], b"{'foo':'bar'}");
        assert_eq!(frames[0].message_type, "event");
    }

    #[test]
    fn frames_split_at_every_byte_boundary_decode_the_same() {
        let mut stream = bytes_of(VECTOR_A);
        stream.extend(bytes_of(VECTOR_B));
        for split in 0..=stream.len() {
            let mut decoder = FrameDecoder::new();
            let mut frames = decoder.push(&stream[..split]).unwrap();
            frames.extend(decoder.push(&stream[split..]).unwrap());
            let types: Vec<_> = frames.iter().map(|f| f.event_type.as_str()).collect();
            assert_eq!(
                types,
                vec!["contentBlockDelta", "throttlingException"],
                "split at {split}"
            );
        }
    }

    #[test]
    fn one_byte_at_a_time_decodes_too() {
        let stream = bytes_of(VECTOR_A);
        let mut decoder = FrameDecoder::new();
        let mut frames = Vec::new();
        for byte in &stream {
            frames.extend(decoder.push(&[*byte]).unwrap());
        }
        assert_eq!(frames.len(), 1);
    }

    #[test]
    fn a_corrupt_prelude_fails_after_twelve_bytes() {
        // Flip a bit of the declared length: the prelude CRC no longer matches, and the
        // decoder says so without waiting for the (now different) length to arrive.
        let mut corrupt = bytes_of(VECTOR_A);
        corrupt[2] ^= 0x01;
        let mut decoder = FrameDecoder::new();
        assert_eq!(decoder.push(&corrupt[..11]), Ok(Vec::new()));
        assert!(matches!(
            decoder.push(&corrupt[11..12]),
            Err(EventStreamError::Invalid(e)) if e.contains("prelude CRC")
        ));
        // Text where a frame should be (an HTML error page, say) is no prelude either.
        assert!(FrameDecoder::new().push(b"<html><body>").is_err());
    }

    /// A prelude declaring `total` bytes (and no headers), with a valid CRC.
    fn prelude(total: u32) -> Vec<u8> {
        let mut out = total.to_be_bytes().to_vec();
        out.extend(0u32.to_be_bytes());
        let crc = crc32fast::hash(&out);
        out.extend(crc.to_be_bytes());
        out
    }

    #[test]
    fn an_oversized_frame_fails_at_its_prelude() {
        let limit = u32::try_from(MAX_FRAME_BYTES).unwrap();
        assert_eq!(
            FrameDecoder::new().push(&prelude(limit + 1)),
            Err(EventStreamError::TooLarge)
        );
        assert_eq!(
            FrameDecoder::new().push(&prelude(1 << 30)),
            Err(EventStreamError::TooLarge)
        );
        // At the limit the frame is awaited, not refused.
        assert_eq!(FrameDecoder::new().push(&prelude(limit)), Ok(Vec::new()));
        // A length too short for the prelude and the message CRC is no frame.
        assert!(FrameDecoder::new().push(&prelude(15)).is_err());
    }

    #[test]
    fn the_prelude_check_accepts_the_vectors_preludes() {
        for vector in [VECTOR_A, VECTOR_B, CRT] {
            let bytes = bytes_of(vector);
            let prelude: &[u8; PRELUDE_BYTES] = bytes.first_chunk().unwrap();
            assert_eq!(frame_length(prelude), Ok(bytes.len()), "{vector}");
        }
    }

    #[test]
    fn crc_failures_are_errors() {
        let mut message_crc = bytes_of(VECTOR_A);
        let last = message_crc.len() - 1;
        message_crc[last] ^= 0xff;
        assert!(FrameDecoder::new().push(&message_crc).is_err());
        let mut prelude_crc = bytes_of(VECTOR_A);
        prelude_crc[9] ^= 0xff;
        assert!(FrameDecoder::new().push(&prelude_crc).is_err());
        let mut payload = bytes_of(VECTOR_A);
        payload[120] ^= 0x01;
        assert!(FrameDecoder::new().push(&payload).is_err());
    }
}
