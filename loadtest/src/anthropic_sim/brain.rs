//! The Messages "model" both the Anthropic and the Bedrock simulators run, so they cannot
//! drift: request validation (in `validate`), deterministic answers, thinking signatures,
//! token counts and prompt-cache accounting.
//!
//! Answers tests can predict: `"<name> says: <last user text>"`; after tool results
//! `"<name> read the tool results: <r1>; <r2>"`; a `tool_use` block (after a short text
//! block) when tools are given and `tool_choice` forces one or the last user text names a
//! tool or says "weather"; with thinking on, a `thinking` block first
//! (`"<name> thinks about: <text>"`) signed with HMAC-SHA256 under the brain's secret, and
//! a `redacted_thinking` block after it when the user text contains "redact".

use std::sync::atomic::{AtomicU64, Ordering};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::cache::{CacheSplit, PromptCache, Segment};
use super::validate::{self, Surface};
use super::wire::{
    CacheControl, CacheCreation, KnownBlock, Message, MessagesRequest, OutputBlock, System, Usage,
};

/// The secret both simulators sign thinking blocks with by default, so a block issued by
/// one is accepted by the other (as a proxy failing over between them needs).
pub const DEFAULT_THINKING_SECRET: &str = "switchyard-sim-thinking-secret";

/// A broken rule, worded like the API (400 `invalid_request_error` / `ValidationException`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// ceil(chars / 4): the token rule of every count the simulators report.
pub fn text_tokens(text: &str) -> u64 {
    text.chars().count().div_ceil(4) as u64
}

/// Tokens of a fixed-size image.
const IMAGE_TOKENS: u64 = 100;

pub struct Brain {
    name: String,
    secret: Vec<u8>,
    pub(crate) strict_alternation: bool,
    cache: PromptCache,
    counter: AtomicU64,
}

impl Brain {
    pub fn new(name: &str, secret: &str) -> Self {
        Self {
            name: name.to_owned(),
            secret: secret.as_bytes().to_vec(),
            strict_alternation: false,
            cache: PromptCache::default(),
            counter: AtomicU64::new(1),
        }
    }

    /// Parses and validates a body. Serde errors become an `Invalid` naming the problem.
    pub fn parse(&self, body: &[u8], surface: Surface) -> Result<MessagesRequest, Invalid> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| Invalid(format!("invalid JSON body: {error}")))?;
        self.parse_value(value, surface)
    }

    /// [`parse`](Self::parse) for a body already read as JSON.
    pub fn parse_value(&self, value: Value, surface: Surface) -> Result<MessagesRequest, Invalid> {
        if !value.is_object() {
            return Err(Invalid("the body must be a JSON object".to_owned()));
        }
        let request: MessagesRequest = serde_json::from_value(value)
            .map_err(|error| Invalid(format!("invalid request: {error}")))?;
        validate::validate(self, &request, surface)?;
        Ok(request)
    }

    fn mac(&self, data: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.secret, data)
    }

    /// The signature of a thinking block this brain issues.
    pub fn sign_thinking(&self, thinking: &str) -> String {
        STANDARD.encode(self.mac(thinking.as_bytes()))
    }

    pub fn thinking_signature_valid(&self, thinking: &str, signature: &str) -> bool {
        STANDARD
            .decode(signature)
            .is_ok_and(|mac| mac == self.mac(thinking.as_bytes()))
    }

    /// Opaque `redacted_thinking.data`: base64 of `payload.hexmac`.
    fn redacted_data(&self, payload: &str) -> String {
        let mac = hex::encode(self.mac(payload.as_bytes()));
        STANDARD.encode(format!("{payload}.{mac}"))
    }

    pub fn redacted_data_valid(&self, data: &str) -> bool {
        let Some(text) = STANDARD
            .decode(data)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
        else {
            return false;
        };
        text.rsplit_once('.').is_some_and(|(payload, mac)| {
            hex::decode(mac).is_ok_and(|mac| mac == self.mac(payload.as_bytes()))
        })
    }

    /// The prompt in cache order, one segment per tool, system block and content block.
    pub fn segments(request: &MessagesRequest) -> Vec<Segment> {
        let mut out = Vec::new();
        let marker = |cc: Option<&CacheControl>| cc.map(|cc| cc.ttl.as_deref() == Some("1h"));
        for tool in request.tools.iter().flatten() {
            let mut plain = tool.clone();
            plain.cache_control = None;
            let canonical = serde_json::to_string(&plain).unwrap_or_default();
            out.push(Segment {
                tokens: text_tokens(&canonical),
                canonical,
                marker_1h: marker(tool.cache_control.as_ref()),
            });
        }
        match &request.system {
            Some(System::Text(text)) => out.push(Segment {
                canonical: text.clone(),
                tokens: text_tokens(text),
                marker_1h: None,
            }),
            Some(System::Blocks(blocks)) => {
                for block in blocks {
                    out.push(Segment {
                        canonical: block.text.clone(),
                        tokens: text_tokens(&block.text),
                        marker_1h: marker(block.cache_control.as_ref()),
                    });
                }
            }
            None => {}
        }
        for message in request.messages.iter().flatten() {
            for block in message.content.blocks() {
                let (tokens, cc) = match &block {
                    super::wire::Block::Known(known) => {
                        (known_block_tokens(known), known.cache_control())
                    }
                    super::wire::Block::Other(value) => (text_tokens(&value.to_string()), None),
                };
                let mut canonical = serde_json::to_value(&block).unwrap_or_default();
                if let Some(object) = canonical.as_object_mut() {
                    object.remove("cache_control");
                }
                out.push(Segment {
                    canonical: format!("{}:{canonical}", message.role),
                    tokens,
                    marker_1h: marker(cc),
                });
            }
        }
        // A top-level marker closes the prefix at the last cacheable segment.
        if let (Some(cc), Some(last)) = (&request.cache_control, out.last_mut()) {
            if last.marker_1h.is_none() {
                last.marker_1h = Some(cc.ttl.as_deref() == Some("1h"));
            }
        }
        out
    }

    /// What count_tokens answers: every token of the prompt, at least 1.
    pub fn count_tokens(request: &MessagesRequest) -> u64 {
        Self::segments(request)
            .iter()
            .map(|s| s.tokens)
            .sum::<u64>()
            .max(1)
    }

    /// The answer to a valid request, with usage (and the cache remembering its prefixes).
    /// `id_prefix` is `msg_sim_` or, for Bedrock, `msg_bdrk_sim_`.
    pub fn answer(&self, request: &MessagesRequest, model: &str, id_prefix: &str) -> Message {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let plan = plan(&self.name, request);
        let max_tokens = request.max_tokens.unwrap_or(u64::MAX);
        let mut content = Vec::new();
        let mut output_tokens = 0u64;
        if thinking_on(request) {
            let thinking = format!("{} thinks about: {}", self.name, plan.topic);
            output_tokens += text_tokens(&thinking);
            content.push(OutputBlock::Thinking {
                signature: self.sign_thinking(&thinking),
                thinking,
            });
            if plan.topic.contains("redact") {
                content.push(OutputBlock::RedactedThinking {
                    data: self.redacted_data(&format!("redacted-{}-{n}", self.name)),
                });
            }
        }
        let mut stop_reason = "end_turn";
        let mut stop_sequence = None;
        let mut text = plan.text;
        if let Some(sequence) = request
            .stop_sequences
            .iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .filter_map(|s| text.find(s.as_str()).map(|at| (at, s)))
            .min_by_key(|(at, _)| *at)
        {
            text.truncate(sequence.0);
            stop_reason = "stop_sequence";
            stop_sequence = Some(sequence.1.clone());
        }
        let room = max_tokens.saturating_sub(output_tokens);
        if text_tokens(&text) > room {
            text = text.chars().take((room * 4) as usize).collect();
            stop_reason = "max_tokens";
            stop_sequence = None;
        }
        output_tokens += text_tokens(&text);
        content.push(OutputBlock::Text { text });
        if let (Some((name, input)), "end_turn") = (plan.tool, stop_reason) {
            output_tokens += text_tokens(&input.to_string());
            content.push(OutputBlock::ToolUse {
                id: format!("toolu_sim{n:016}"),
                name,
                input,
            });
            stop_reason = "tool_use";
        }
        let split = self.cache.account(model, &Self::segments(request));
        Message {
            id: format!("{id_prefix}{n:016}"),
            kind: "message".to_owned(),
            role: "assistant".to_owned(),
            model: model.to_owned(),
            content,
            stop_reason: Some(stop_reason.to_owned()),
            stop_sequence,
            usage: usage(split, output_tokens),
        }
    }
}

fn usage(split: CacheSplit, output_tokens: u64) -> Usage {
    Usage {
        input_tokens: split.input.max(1),
        output_tokens,
        cache_creation_input_tokens: split.write_5m + split.write_1h,
        cache_read_input_tokens: split.read,
        cache_creation: CacheCreation {
            ephemeral_5m_input_tokens: split.write_5m,
            ephemeral_1h_input_tokens: split.write_1h,
        },
        service_tier: "standard".to_owned(),
    }
}

fn known_block_tokens(block: &KnownBlock) -> u64 {
    match block {
        KnownBlock::Text { text, .. } => text_tokens(text),
        KnownBlock::Image { .. } => IMAGE_TOKENS,
        KnownBlock::Document { source, .. } => text_tokens(&source.to_string()),
        KnownBlock::ToolUse { name, input, .. } => {
            text_tokens(name) + text_tokens(&input.to_string())
        }
        KnownBlock::ToolResult { content, .. } => match content {
            Some(Value::String(text)) => text_tokens(text),
            Some(other) => text_tokens(&other.to_string()),
            None => 1,
        },
        KnownBlock::Thinking { thinking, .. } => text_tokens(thinking),
        KnownBlock::RedactedThinking { data, .. } => text_tokens(data),
    }
}

pub(crate) fn thinking_on(request: &MessagesRequest) -> bool {
    request
        .thinking
        .as_ref()
        .is_some_and(|t| matches!(t.kind.as_str(), "enabled" | "adaptive"))
}

/// What the answer will say, and the tool it will call.
struct Plan {
    topic: String,
    text: String,
    tool: Option<(String, Value)>,
}

fn plan(name: &str, request: &MessagesRequest) -> Plan {
    let last_user = request
        .messages
        .iter()
        .flatten()
        .rev()
        .find(|m| m.role == "user");
    let blocks = last_user.map(|m| m.content.blocks()).unwrap_or_default();
    let mut texts = Vec::new();
    let mut results = Vec::new();
    for block in &blocks {
        match block {
            super::wire::Block::Known(KnownBlock::Text { text, .. }) => texts.push(text.clone()),
            super::wire::Block::Known(KnownBlock::ToolResult { content, .. }) => {
                results.push(tool_result_text(content.as_ref()));
            }
            _ => {}
        }
    }
    let topic = texts.join(" ");
    let tools: Vec<_> = request
        .tools
        .iter()
        .flatten()
        .filter(|t| t.kind.as_deref().is_none_or(|k| k == "custom"))
        .collect();
    let choice = request.tool_choice.as_ref().map(|c| c.kind.as_str());
    let forced = match (choice, request.tool_choice.as_ref()) {
        (Some("tool"), Some(c)) => c.name.clone(),
        (Some("any"), _) => tools.first().map(|t| t.name.clone()),
        _ => None,
    };
    let wanted = if choice == Some("none") || !results.is_empty() {
        None
    } else {
        tools
            .iter()
            .find(|t| topic.contains(t.name.as_str()))
            .or_else(|| tools.first().filter(|_| topic.contains("weather")))
            .map(|t| t.name.clone())
    };
    let tool = forced.or(wanted).and_then(|wanted| {
        tools
            .iter()
            .find(|t| t.name == wanted)
            .map(|t| (wanted.clone(), sample_input(t.input_schema.as_ref())))
    });
    let text = if let Some((tool_name, _)) = &tool {
        format!("{name} will call {tool_name}.")
    } else if !results.is_empty() {
        format!("{name} read the tool results: {}", results.join("; "))
    } else {
        format!("{name} says: {topic}")
    };
    let topic = if topic.is_empty() {
        results.join("; ")
    } else {
        topic
    };
    Plan { topic, text, tool }
}

fn tool_result_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Arguments from the schema's `required` properties: strings `"Paris"`, numbers 1,
/// booleans true, an enum's first value.
fn sample_input(schema: Option<&Value>) -> Value {
    let mut out = Map::new();
    let Some(schema) = schema else {
        return Value::Object(out);
    };
    for key in schema["required"].as_array().into_iter().flatten() {
        let Some(key) = key.as_str() else { continue };
        let property = &schema["properties"][key];
        let value = if let Some(first) = property["enum"].get(0) {
            first.clone()
        } else {
            match property["type"].as_str() {
                Some("number" | "integer") => json!(1),
                Some("boolean") => json!(true),
                Some("array") => json!([]),
                Some("object") => json!({}),
                _ => json!("Paris"),
            }
        };
        out.insert(key.to_owned(), value);
    }
    Value::Object(out)
}

/// HMAC-SHA256 (RFC 2104) over `sha2`.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signatures_verify_only_unaltered_text_under_the_same_secret() {
        let brain = Brain::new("a", "s1");
        let sig = brain.sign_thinking("hmm");
        assert!(brain.thinking_signature_valid("hmm", &sig));
        assert!(!brain.thinking_signature_valid("hmm!", &sig));
        assert!(!Brain::new("b", "s2").thinking_signature_valid("hmm", &sig));
        let data = brain.redacted_data("x-1");
        assert!(brain.redacted_data_valid(&data));
        assert!(!brain.redacted_data_valid("bm9wZQ=="));
    }
}
