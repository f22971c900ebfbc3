//! Scripted misbehaviour: the `Fault` kinds, their JSON form for the control API,
//! and the per-simulator book that hands one fault to each request.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

/// One way for a request to go wrong. Queued faults are consumed one per
/// inference request (chat or embeddings); a sticky fault applies to every
/// request while no queued fault is pending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `retry-after-ms` and `retry-after` (seconds, rounded up).
    RateLimit { retry_after_ms: u64 },
    /// That status (e.g. 500/503/529) with an OpenAI-style error body.
    Status(u16),
    /// A 4xx (400/401/403/404/422) with an OpenAI-style error body.
    ClientError(u16),
    /// Stream: send that many content chunks, then abort the connection without
    /// `[DONE]`. Non-stream: send the headers and part of the body, then abort.
    DropMidStream { after_chunks: usize },
    /// Accept the request and never answer (until the client goes away or the sim stops).
    Hang,
    /// Stream: send that many content chunks, then stall. Non-stream: send the
    /// headers and part of the body, then stall.
    HangMidStream { after_chunks: usize },
    /// 200 whose body is not JSON (non-stream) or whose SSE lines are not JSON (stream).
    Garbage,
    /// 200 whose body is JSON of the wrong shape: an error object where the completion
    /// should be (non-stream), or one `data: {"error": …}` event, then the end (stream).
    WrongShape,
    /// A hostile upstream's bill: the answer as usual, its `usage` reporting these figures
    /// (absurd, negative) instead of the real ones; `None` keeps the real figure.
    MisreportUsage {
        prompt_tokens: Option<i64>,
        completion_tokens: Option<i64>,
    },
    /// An upstream that ignores `max_tokens`: a stream goes on producing tokens until the
    /// client goes away; a complete answer is as long as if no cap had been sent.
    IgnoreCap,
}

/// JSON form of [`Fault`] used by `POST /_sim/faults`,
/// e.g. `{"kind":"rate_limit","retry_after_ms":500}` or `{"kind":"status","status":503}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum FaultSpec {
    RateLimit {
        #[serde(default = "default_retry_after_ms")]
        retry_after_ms: u64,
    },
    Status {
        status: u16,
    },
    ClientError {
        status: u16,
    },
    DropMidStream {
        #[serde(default)]
        after_chunks: usize,
    },
    // Empty struct variants rather than unit ones, so deny_unknown_fields applies to them too.
    Hang {},
    HangMidStream {
        #[serde(default)]
        after_chunks: usize,
    },
    Garbage {},
    WrongShape {},
    /// `{"kind":"absurd_usage","prompt_tokens":1e15}`: JSON numbers, so `1e15` and `-5`
    /// both read.
    AbsurdUsage {
        #[serde(default)]
        prompt_tokens: Option<f64>,
        #[serde(default)]
        completion_tokens: Option<f64>,
    },
    IgnoreCap {},
}

fn default_retry_after_ms() -> u64 {
    1000
}

impl From<FaultSpec> for Fault {
    fn from(spec: FaultSpec) -> Self {
        match spec {
            FaultSpec::RateLimit { retry_after_ms } => Fault::RateLimit { retry_after_ms },
            FaultSpec::Status { status } => Fault::Status(status),
            FaultSpec::ClientError { status } => Fault::ClientError(status),
            FaultSpec::DropMidStream { after_chunks } => Fault::DropMidStream { after_chunks },
            FaultSpec::Hang {} => Fault::Hang,
            FaultSpec::HangMidStream { after_chunks } => Fault::HangMidStream { after_chunks },
            FaultSpec::Garbage {} => Fault::Garbage,
            FaultSpec::WrongShape {} => Fault::WrongShape,
            FaultSpec::AbsurdUsage {
                prompt_tokens,
                completion_tokens,
            } => Fault::MisreportUsage {
                // Saturating: 1e30 reports i64::MAX.
                prompt_tokens: prompt_tokens.map(|n| n as i64),
                completion_tokens: completion_tokens.map(|n| n as i64),
            },
            FaultSpec::IgnoreCap {} => Fault::IgnoreCap,
        }
    }
}

impl From<&Fault> for FaultSpec {
    fn from(fault: &Fault) -> Self {
        match *fault {
            Fault::RateLimit { retry_after_ms } => FaultSpec::RateLimit { retry_after_ms },
            Fault::Status(status) => FaultSpec::Status { status },
            Fault::ClientError(status) => FaultSpec::ClientError { status },
            Fault::DropMidStream { after_chunks } => FaultSpec::DropMidStream { after_chunks },
            Fault::Hang => FaultSpec::Hang {},
            Fault::HangMidStream { after_chunks } => FaultSpec::HangMidStream { after_chunks },
            Fault::Garbage => FaultSpec::Garbage {},
            Fault::WrongShape => FaultSpec::WrongShape {},
            Fault::MisreportUsage {
                prompt_tokens,
                completion_tokens,
            } => FaultSpec::AbsurdUsage {
                prompt_tokens: prompt_tokens.map(|n| n as f64),
                completion_tokens: completion_tokens.map(|n| n as f64),
            },
            Fault::IgnoreCap => FaultSpec::IgnoreCap {},
        }
    }
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Fault>,
    sticky: Option<Fault>,
}

/// The faults waiting for requests. `armed` lets the common no-fault path skip the
/// mutex entirely, which matters when the sim is the upstream of a benchmark.
#[derive(Default)]
pub(crate) struct FaultBook {
    armed: AtomicBool,
    script: Mutex<Script>,
}

impl FaultBook {
    fn lock(&self) -> MutexGuard<'_, Script> {
        // A panic elsewhere cannot leave the queue half-updated, so poison is harmless.
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn rearm(&self, script: &Script) {
        let armed = !script.queue.is_empty() || script.sticky.is_some();
        self.armed.store(armed, Ordering::Release);
    }

    pub(crate) fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        let mut script = self.lock();
        script.queue.extend(faults);
        self.rearm(&script);
    }

    pub(crate) fn set_sticky(&self, fault: Option<Fault>) {
        let mut script = self.lock();
        script.sticky = fault;
        self.rearm(&script);
    }

    pub(crate) fn clear_queue(&self) {
        let mut script = self.lock();
        script.queue.clear();
        self.rearm(&script);
    }

    /// The fault for the request being handled now, if any.
    pub(crate) fn next(&self) -> Option<Fault> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let mut script = self.lock();
        let fault = script.queue.pop_front().or_else(|| script.sticky.clone());
        self.rearm(&script);
        fault
    }

    /// Queued faults and the sticky one, for the control API.
    pub(crate) fn snapshot(&self) -> (Vec<FaultSpec>, Option<FaultSpec>) {
        let script = self.lock();
        let queue = script.queue.iter().map(FaultSpec::from).collect();
        (queue, script.sticky.as_ref().map(FaultSpec::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_faults_come_before_the_sticky_one() {
        let book = FaultBook::default();
        assert_eq!(book.next(), None);
        book.set_sticky(Some(Fault::Status(503)));
        book.push([Fault::Hang]);
        assert_eq!(book.next(), Some(Fault::Hang));
        assert_eq!(book.next(), Some(Fault::Status(503)));
        assert_eq!(book.next(), Some(Fault::Status(503)));
        book.set_sticky(None);
        assert_eq!(book.next(), None);
    }

    #[test]
    fn json_form_round_trips() -> anyhow::Result<()> {
        let spec: FaultSpec =
            serde_json::from_str(r#"{"kind":"drop_mid_stream","after_chunks":2}"#)?;
        assert_eq!(Fault::from(spec), Fault::DropMidStream { after_chunks: 2 });
        let spec: FaultSpec = serde_json::from_str(r#"{"kind":"rate_limit"}"#)?;
        assert_eq!(
            Fault::from(spec),
            Fault::RateLimit {
                retry_after_ms: 1000
            }
        );
        let spec: FaultSpec = serde_json::from_str(r#"{"kind":"hang"}"#)?;
        assert_eq!(Fault::from(spec), Fault::Hang);
        let spec: FaultSpec = serde_json::from_str(r#"{"kind":"wrong_shape"}"#)?;
        assert_eq!(Fault::from(spec), Fault::WrongShape);
        let spec: FaultSpec =
            serde_json::from_str(r#"{"kind":"absurd_usage","prompt_tokens":1e15}"#)?;
        assert_eq!(
            Fault::from(spec),
            Fault::MisreportUsage {
                prompt_tokens: Some(1_000_000_000_000_000),
                completion_tokens: None
            }
        );
        let spec: FaultSpec =
            serde_json::from_str(r#"{"kind":"absurd_usage","completion_tokens":-5}"#)?;
        assert_eq!(
            Fault::from(spec),
            Fault::MisreportUsage {
                prompt_tokens: None,
                completion_tokens: Some(-5)
            }
        );
        let spec: FaultSpec = serde_json::from_str(r#"{"kind":"ignore_cap"}"#)?;
        assert_eq!(Fault::from(spec), Fault::IgnoreCap);
        // A typo must not silently become a default.
        assert!(serde_json::from_str::<FaultSpec>(r#"{"kind":"hang","after":1}"#).is_err());
        assert!(
            serde_json::from_str::<FaultSpec>(r#"{"kind":"drop_mid_stream","after":1}"#).is_err()
        );
        Ok(())
    }
}
