//! Incremental Server-Sent Events decoding: network bytes in, complete `data:` payloads out
//! (with their `event:` name for upstreams that dispatch on it, like Anthropic's).
//!
//! Upstream reads split events anywhere (mid-line, mid-CRLF), so the decoder keeps the
//! unfinished tail and yields only whole events. It is pure and synchronous so it can be
//! tested byte by byte.

use bytes::{Buf, BytesMut};

/// Largest single event accepted; an upstream that sends more without a blank line is broken.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct SseDecoder {
    buffer: BytesMut,
    /// `data:` lines of the event being assembled, joined by `\n` as the SSE spec says.
    data: Option<String>,
    /// The `event:` name of the event being assembled, if it gave one.
    event: Option<String>,
}

/// One complete event: its `event:` name (if any) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("upstream event exceeds {MAX_EVENT_BYTES} bytes")]
    EventTooLarge,
    #[error("upstream event is not valid UTF-8")]
    NotUtf8,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes and returns the data of every event they completed, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, SseError> {
        self.push_with(bytes, |event| event.data)
    }

    /// Feeds bytes and returns every event they completed, with its name, in order.
    pub fn push_named(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        self.push_with(bytes, |event| event)
    }

    fn push_with<T>(
        &mut self,
        bytes: &[u8],
        mut keep: impl FnMut(SseEvent) -> T,
    ) -> Result<Vec<T>, SseError> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(newline) = self.buffer.iter().position(|&b| b == b'\n') {
            let mut line = &self.buffer[..newline];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = std::str::from_utf8(line)
                .map_err(|_| SseError::NotUtf8)?
                .to_owned();
            if let Some(event) = self.take_line(&line) {
                events.push(keep(event));
            }
            self.buffer.advance(newline + 1);
        }
        let pending = self.buffer.len() + self.data.as_ref().map_or(0, String::len);
        if pending > MAX_EVENT_BYTES {
            return Err(SseError::EventTooLarge);
        }
        Ok(events)
    }

    /// Whether bytes of an unfinished event are held (a stream that ends here was cut short).
    pub fn has_partial_event(&self) -> bool {
        !self.buffer.is_empty() || self.data.is_some()
    }

    fn take_line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            // A blank line ends the event; one without data is no event, name or not.
            let event = self.event.take();
            return self.data.take().map(|data| SseEvent { event, data });
        }
        if line.starts_with(':') {
            return None; // a comment / keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "event" {
            self.event = Some(value.to_owned());
        } else if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
        None
    }
}

/// Frames one payload as an SSE `data:` event.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let mut event = Vec::with_capacity(data.len() + 8);
    event.extend_from_slice(b"data: ");
    event.extend_from_slice(data);
    event.extend_from_slice(b"\n\n");
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "data: {\"a\":1}\r\n\r\n: keep-alive\n\nevent: x\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n";

    #[test]
    fn decodes_whole_stream() {
        let mut decoder = SseDecoder::new();
        let events = decoder.push(STREAM.as_bytes()).unwrap();
        assert_eq!(events, vec!["{\"a\":1}", "line1\nline2", "[DONE]"]);
        assert!(!decoder.has_partial_event());
    }

    #[test]
    fn split_at_every_byte_gives_the_same_events() {
        for split in 0..STREAM.len() {
            let mut decoder = SseDecoder::new();
            let mut events = decoder.push(&STREAM.as_bytes()[..split]).unwrap();
            events.extend(decoder.push(&STREAM.as_bytes()[split..]).unwrap());
            assert_eq!(
                events,
                vec!["{\"a\":1}", "line1\nline2", "[DONE]"],
                "split at {split}"
            );
        }
    }

    #[test]
    fn named_events_keep_their_names() {
        let mut decoder = SseDecoder::new();
        let events = decoder.push_named(STREAM.as_bytes()).unwrap();
        let names: Vec<_> = events.iter().map(|e| e.event.as_deref()).collect();
        assert_eq!(names, vec![None, Some("x"), None]);
        assert_eq!(events[1].data, "line1\nline2");
        // A name without data is dropped with its blank line, not carried to the next event.
        let events = decoder.push_named(b"event: ping\n\ndata: {}\n\n").unwrap();
        assert_eq!(
            events,
            vec![SseEvent {
                event: None,
                data: "{}".into()
            }]
        );
    }

    #[test]
    fn truncated_event_is_reported_as_partial() {
        let mut decoder = SseDecoder::new();
        assert!(decoder.push(b"data: {\"a\"").unwrap().is_empty());
        assert!(decoder.has_partial_event());
    }

    #[test]
    fn frame_adds_data_prefix_and_blank_line() {
        assert_eq!(frame(b"[DONE]"), b"data: [DONE]\n\n");
    }
}
