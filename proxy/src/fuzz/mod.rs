//! Bounded fuzzing of every decoder that reads bytes from outside the proxy (issue 15,
//! item 9), run by `cargo test` without a nightly toolchain: proptest generates inputs —
//! JSON trees over each format's own vocabulary, mutations of the seed corpus in
//! `proxy/fuzz-corpus/`, raw bytes — and each case runs on a thread of its own under a
//! time bound, so a panic fails the test and a hang fails it too instead of stalling CI.
//!
//! Targets: the Chat and Messages request parsers with each provider's request builder
//! ([`requests`]); SSE and AWS event-stream framing ([`framing`]); each provider's answer
//! translator ([`answers`]) and stream translator with the client dialect's encoder
//! ([`streams`]); the config loader ([`config`]). `SWITCHYARD_FUZZ_CASES` raises the number
//! of cases per target (default [`DEFAULT_CASES`]) for a longer local run.

mod answers;
mod config;
mod framing;
mod headers;
mod requests;
mod streams;

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, LazyLock};
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};

use crate::config::{compile_str, Policy, Target};

/// Cases per target in an ordinary `cargo test` run: a few seconds each.
pub const DEFAULT_CASES: u32 = 300;

/// The longest one case may take before it counts as a hang.
const CASE_TIME_BOUND: Duration = Duration::from_secs(10);

/// Runs `check` on `cases()` inputs of `strategy`, then on every file of the corpus folder
/// `corpus` as is; each call under [`CASE_TIME_BOUND`] on its own thread.
pub fn fuzz<S>(name: &str, corpus: &str, strategy: S, check: fn(&[u8]))
where
    S: Strategy<Value = Vec<u8>>,
{
    for (path, bytes) in corpus_files(corpus) {
        guarded(
            &format!("{name}: corpus file {}", path.display()),
            bytes,
            check,
        );
    }
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        // A failing case is shrunk briefly: each try may be a 10 s hang.
        max_shrink_time: 30_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |input| {
        guarded(name, input, check);
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{name}: {failure}");
    }
}

fn cases() -> u32 {
    std::env::var("SWITCHYARD_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// `check(input)` on a thread of its own: its panic is re-raised here with the input, and
/// a call still running after [`CASE_TIME_BOUND`] fails as a hang.
fn guarded(name: &str, input: Vec<u8>, check: fn(&[u8])) {
    let (done, finished) = mpsc::channel();
    let shown = String::from_utf8_lossy(&input[..input.len().min(2000)]).into_owned();
    let worker = std::thread::spawn(move || {
        check(&input);
        let _ = done.send(());
    });
    match finished.recv_timeout(CASE_TIME_BOUND) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let cause = worker.join().err().map(|panic| panic_text(&*panic));
            panic!("{name}: panicked ({cause:?}) on input {shown:?}");
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: still running after {CASE_TIME_BOUND:?} on input {shown:?}")
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// `proxy/fuzz-corpus/<folder>`.
pub fn corpus_dir(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz-corpus")
        .join(folder)
}

/// Every file of a corpus folder, sorted by name.
pub fn corpus_files(folder: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(corpus_dir(folder))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.is_file())
                .filter_map(|path| std::fs::read(&path).ok().map(|bytes| (path, bytes)))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    assert!(!files.is_empty(), "the corpus folder {folder} is empty");
    files
}

/// The seeds of a corpus folder, for mutation strategies.
pub fn seeds(folder: &str) -> Vec<Vec<u8>> {
    corpus_files(folder)
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect()
}

/// Text the formats care about: names, roles, types, numbers at their edges.
const WORDS: &[&str] = &[
    "",
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "function",
    "text",
    "image",
    "image_url",
    "input_audio",
    "file",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "auto",
    "none",
    "required",
    "any",
    "json_object",
    "json_schema",
    "stop",
    "length",
    "end_turn",
    "tool_calls",
    "max_tokens",
    "content_filter",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
    "text_delta",
    "input_json_delta",
    "thinking_delta",
    "signature_delta",
    "ephemeral",
    "base64",
    "url",
    "image/png",
    "data:image/png;base64,AAAA",
    "https://example.com/a.png",
    "{",
    "}",
    "[DONE]",
    "\u{0}",
    "\u{feff}",
    "é",
    "🙂",
    "-1",
    "1e400",
    "18446744073709551616",
    "null",
];

/// Object keys across the Chat, Messages, Converse and answer formats.
pub const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "name",
    "tools",
    "tool_choice",
    "function",
    "arguments",
    "parameters",
    "description",
    "tool_calls",
    "tool_call_id",
    "id",
    "index",
    "stream",
    "stream_options",
    "include_usage",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "n",
    "stop",
    "stop_sequences",
    "seed",
    "user",
    "response_format",
    "json_schema",
    "schema",
    "strict",
    "reasoning_effort",
    "image_url",
    "url",
    "detail",
    "source",
    "media_type",
    "data",
    "cache_control",
    "system",
    "thinking",
    "budget_tokens",
    "signature",
    "metadata",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "prompt_tokens_details",
    "cached_tokens",
    "choices",
    "message",
    "delta",
    "finish_reason",
    "logprobs",
    "object",
    "created",
    "error",
    "code",
    "param",
    "stop_reason",
    "content_block",
    "input",
    "tool_use_id",
    "is_error",
    "output",
    "stopReason",
    "toolUse",
    "toolUseId",
    "toolResult",
    "reasoningContent",
    "reasoningText",
    "contentBlockIndex",
    "start",
    "contentBlockDelta",
    "messageStart",
    "messageStop",
    "metadata",
    "inputTokens",
    "outputTokens",
    "totalTokens",
    "cacheReadInputTokens",
    "cacheWriteInputTokens",
    "status",
    "json",
    "additionalModelRequestFields",
    "p",
    "prompt_filter_results",
    "content_filter_results",
    "embedding",
    "encoding_format",
];

/// Any JSON value: leaves of every kind (vocabulary words, edge numbers, random text),
/// arrays and objects over [`KEYS`], a few levels deep.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        select(WORDS).prop_map(Value::from),
        ".{0,16}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((select(KEYS), inner), 0..8).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(key, value)| (key.to_owned(), value))
                        .collect::<Map<String, Value>>(),
                )
            }),
        ]
    })
}

/// Replaces the `at`-th node (pre-order, modulo the node count) of `value` with `with`.
pub fn replace_node(value: &mut Value, at: usize, with: Value) {
    let count = count_nodes(value);
    let mut target = at % count.max(1);
    replace_nth(value, &mut target, with);
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(members) => members.values().map(count_nodes).sum(),
        _ => 0,
    }
}

fn replace_nth(value: &mut Value, target: &mut usize, with: Value) -> Option<Value> {
    if *target == 0 {
        *value = with;
        return None;
    }
    *target -= 1;
    let mut with = Some(with);
    match value {
        Value::Array(items) => {
            for item in items {
                with = replace_nth(item, target, with?);
            }
        }
        Value::Object(members) => {
            for member in members.values_mut() {
                with = replace_nth(member, target, with?);
            }
        }
        _ => {}
    }
    with
}

/// A byte-level edit of an input.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

pub fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        any::<usize>().prop_map(ByteEdit::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(at, bits)| ByteEdit::Flip(at, bits)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| ByteEdit::Insert(at, bytes)),
        (any::<usize>(), 1usize..16).prop_map(|(at, len)| ByteEdit::Remove(at, len)),
    ]
}

pub fn apply_edits(mut bytes: Vec<u8>, edits: &[ByteEdit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len();
        match edit {
            ByteEdit::Truncate(at) => bytes.truncate(at % (len + 1)),
            ByteEdit::Flip(at, bits) if len > 0 => bytes[at % len] ^= bits,
            ByteEdit::Flip(..) => {}
            ByteEdit::Insert(at, more) => {
                let at = at % (len + 1);
                bytes.splice(at..at, more.iter().copied());
            }
            ByteEdit::Remove(at, n) if len > 0 => {
                let at = at % len;
                bytes.drain(at..(at + n).min(len));
            }
            ByteEdit::Remove(..) => {}
        }
    }
    bytes
}

/// JSON documents for a parser: a seed with nodes replaced by generated values, a seed with
/// byte edits, or a generated value alone.
pub fn json_documents(folder: &str) -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Value> = seeds(folder)
        .iter()
        .filter_map(|bytes| serde_json::from_slice(bytes).ok())
        .collect();
    let raw = self::seeds(folder);
    prop_oneof![
        4 => (select(seeds), prop::collection::vec((any::<usize>(), json_value()), 1..4))
            .prop_map(|(mut seed, edits)| {
                for (at, with) in edits {
                    replace_node(&mut seed, at, with);
                }
                seed.to_string().into_bytes()
            }),
        2 => (select(raw), prop::collection::vec(byte_edit(), 1..6))
            .prop_map(|(seed, edits)| apply_edits(seed, &edits)),
        1 => json_value().prop_map(|value| value.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

/// One policy with a target of every kind and shape a decoder can be chosen for.
pub struct Fixture {
    pub policy: Policy,
}

pub static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let yaml = include_str!("fixture.yaml");
    let policy = compile_str(yaml, Path::new("fixture.yaml"), &|_| None)
        .unwrap_or_else(|e| panic!("the fuzz fixture policy: {e}"));
    Fixture { policy }
});

impl Fixture {
    /// Every target of the fixture: OpenAI, Azure, Bedrock (Converse and Claude's native
    /// body), Anthropic.
    pub fn targets(&self) -> Vec<Arc<Target>> {
        self.policy
            .models
            .values()
            .flat_map(|model| model.targets.iter().cloned())
            .collect()
    }
}

/// A client's generation in `dialect` (`chat` or `messages`), streamed or not.
pub fn generation(messages_dialect: bool, stream: bool) -> crate::providers::Generation {
    use crate::dialects::chat::{decode_request as decode_chat, ChatRequest};
    use crate::dialects::messages::{decode_request as decode_messages, MessagesRequest};
    let body = if messages_dialect {
        serde_json::json!({"model": "m", "max_tokens": 256, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]})
    } else {
        serde_json::json!({"model": "m", "stream": stream, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hi"}]})
    };
    let text = body.to_string();
    let request = if messages_dialect {
        serde_json::from_str::<MessagesRequest>(&text)
            .map_err(|e| e.to_string())
            .and_then(|wire| decode_messages(wire).map_err(|e| e.message))
    } else {
        serde_json::from_str::<ChatRequest>(&text)
            .map_err(|e| e.to_string())
            .and_then(|wire| decode_chat(wire).map_err(|e| e.message))
    };
    let request = request.unwrap_or_else(|e| panic!("the fuzz generation: {e}"));
    crate::providers::Generation {
        request,
        body: text.into(),
        betas: Vec::new(),
        responses: None,
    }
}
