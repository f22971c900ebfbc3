//! A client operation as metering sees it ([`Metered`]): the billed parts of its prompt and
//! its output allowance. Lives on the providers' side so that `metering/` imports no provider.

use serde_json::Value;

use super::Operation;
use crate::dialects::messages::encode::effort_budget;
use crate::dialects::messages::MIN_THINKING_BUDGET;
use crate::metering::bound::PromptParts;
use crate::metering::Metered;
use crate::model::content::{DocumentSource, ToolResultContent};
use crate::model::{Block, Request, ResponseFormat};

impl Metered for Operation {
    fn prompt_bytes(&self) -> usize {
        Operation::prompt_bytes(self)
    }

    fn prompt_parts(&self) -> PromptParts<'_> {
        match self {
            Operation::Generate(generation) | Operation::CountTokens(generation) => {
                chat_parts(&generation.request)
            }
            Operation::Embeddings(embeddings) => {
                let mut parts = PromptParts::default();
                embedding_parts(&embeddings.input, &mut parts);
                parts
            }
        }
    }

    fn client_output_cap(&self) -> Option<u32> {
        Operation::max_output_tokens(self)
    }

    fn choices(&self) -> u32 {
        match self {
            Operation::Generate(generation) => generation.request.sampling.n.unwrap_or(1).max(1),
            Operation::Embeddings(_) | Operation::CountTokens(_) => 1,
        }
    }

    fn thinking_allowance(&self, cap: u32) -> u32 {
        let Operation::Generate(generation) = self else {
            return 0;
        };
        let Some(reasoning) = &generation.request.reasoning else {
            return 0;
        };
        // The largest budget an encoder may derive (docs/messages-dialect.md); the Messages
        // encoder adds it to a cap it does not fit below.
        let budget = reasoning
            .budget_tokens
            .unwrap_or(0)
            .max(reasoning.effort.map_or(0, effort_budget))
            .max(if reasoning.enabled {
                MIN_THINKING_BUDGET
            } else {
                0
            });
        if budget >= cap {
            budget
        } else {
            0
        }
    }
}

impl Operation {
    /// Sets the output cap sent upstream (every encoder writes the request's
    /// `max_output_tokens`; the pass-through bodies add it when the client gave none).
    pub fn set_output_cap(&mut self, cap: Option<u32>) {
        if let (Operation::Generate(generation), Some(cap)) = (self, cap) {
            generation.request.max_output_tokens = Some(cap);
        }
    }
}

/// The billed parts of a chat prompt.
fn chat_parts(request: &Request) -> PromptParts<'_> {
    let mut parts = PromptParts {
        chat: true,
        ..PromptParts::default()
    };
    for system in &request.system {
        parts.texts.push(&system.text);
        parts.messages += 1;
    }
    for message in &request.messages {
        parts.messages += 1;
        parts.extra_blocks += message.content.len().saturating_sub(1) as u64;
        if let Some(name) = &message.name {
            parts.texts.push(name);
        }
        for block in &message.content {
            block_parts(block, &mut parts);
        }
    }
    for tool in &request.tools {
        parts.tools += 1;
        parts.texts.push(&tool.name);
        if let Some(description) = &tool.description {
            parts.texts.push(description);
        }
        if let Some(schema) = &tool.input_schema {
            parts.texts.push(schema.get());
        }
    }
    if let Some(ResponseFormat::JsonSchema { schema, .. }) = &request.response_format {
        parts.texts.push(schema.get());
    }
    if !request.extra.is_empty() {
        // Members the proxy does not interpret may carry billed content: at their bytes.
        parts.raw_bytes += serde_json::to_string(&request.extra).map_or(0, |s| s.len()) as u64;
    }
    parts
}

fn block_parts<'a>(block: &'a Block, parts: &mut PromptParts<'a>) {
    match block {
        Block::Text { text, .. } | Block::Thinking { text, .. } => parts.texts.push(text),
        Block::Image { .. } => parts.images += 1,
        Block::Document { source, .. } => match source {
            DocumentSource::Text { data, .. } => parts.texts.push(data),
            DocumentSource::Base64 { data, .. } => parts.raw_bytes += data.len() as u64,
            DocumentSource::Url { .. } => parts.url_documents += 1,
        },
        Block::ToolCall {
            name, arguments, ..
        } => {
            parts.texts.push(name);
            parts.texts.push(arguments);
        }
        Block::ToolResult { content, .. } => match content {
            ToolResultContent::Text(text) => parts.texts.push(text),
            ToolResultContent::Blocks(blocks) => {
                parts.extra_blocks += blocks.len() as u64;
                for inner in blocks {
                    block_parts(inner, parts);
                }
            }
        },
        Block::RedactedThinking { data } => parts.raw_bytes += data.len() as u64,
        Block::Opaque { part, .. } => {
            parts.raw_bytes += serde_json::to_string(part).map_or(0, |s| s.len()) as u64;
        }
    }
}

/// Embeddings input: strings are text; token arrays are counted by their length.
fn embedding_parts<'a>(input: &'a Value, parts: &mut PromptParts<'a>) {
    match input {
        Value::String(text) => parts.texts.push(text),
        Value::Number(_) => parts.raw_bytes += 1,
        Value::Array(items) => {
            for item in items {
                embedding_parts(item, parts);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::embeddings::EmbeddingsRequest;
    use crate::metering::bound::{MESSAGE_OVERHEAD, REPLY_PRIMING};
    use crate::metering::tokenizer::TextCounter;
    use crate::providers::testing::chat_operation;
    use serde_json::json;

    fn chat(body: Value) -> Operation {
        chat_operation(body)
    }

    #[test]
    fn a_chat_request_reports_its_prompt_its_cap_and_its_choices() {
        let op = chat(json!({"model": "m", "max_tokens": 10, "n": 3,
            "messages": [{"role": "system", "content": "be brief"},
                         {"role": "user", "content": "12345678"}]}));
        assert_eq!(Metered::prompt_bytes(&op), 16);
        assert_eq!(op.client_output_cap(), Some(10));
        assert_eq!(op.choices(), 3);
        let parts = op.prompt_parts();
        assert_eq!(
            parts.tokens(TextCounter::Bytes),
            16 + 2 * MESSAGE_OVERHEAD + REPLY_PRIMING
        );
        let uncapped = chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(uncapped.client_output_cap(), None);
        assert_eq!(uncapped.choices(), 1);
    }

    /// Issue 16: one request of 200,000 one-character messages was billed far above its
    /// reservation, which counted no per-message overhead.
    #[test]
    fn two_hundred_thousand_tiny_messages_reserve_at_least_their_billed_cost() {
        let messages: Vec<Value> = (0..200_000)
            .map(|_| json!({"role": "user", "content": "a"}))
            .collect();
        let op = chat(json!({"model": "m", "messages": messages}));
        let parts = op.prompt_parts();
        let cheap = parts.tokens(TextCounter::Bytes);
        // What OpenAI bills (its chat format: 3 tokens per message, 3 priming the reply),
        // with the real tokenizer; and what the simulator bills (ceil(chars/4) + 3 each).
        let bpe = tiktoken_rs::o200k_base_singleton();
        let openai_billed = 200_000 * (bpe.encode_ordinary("a").len() as u64 + 3) + 3;
        let sim_billed = 200_000_u64.div_ceil(4) + 3 * 200_000;
        assert!(cheap >= openai_billed, "{cheap} < {openai_billed}");
        assert!(cheap >= sim_billed, "{cheap} < {sim_billed}");
        let exact = parts.tokens(TextCounter::Exact(bpe));
        assert!(exact >= openai_billed, "{exact} < {openai_billed}");
        assert!(exact <= cheap);
    }

    #[test]
    fn images_tools_and_documents_are_counted() {
        let op = chat(json!({"model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}],
            "tools": [{"type": "function", "function": {"name": "look", "description": "d",
                "parameters": {"type": "object"}}}]}));
        let parts = op.prompt_parts();
        assert_eq!((parts.images, parts.tools, parts.extra_blocks), (1, 1, 1));
        assert!(parts.texts.contains(&"look"));
        assert!(parts.texts.iter().any(|t| t.contains("object")));
    }

    #[test]
    fn a_thinking_budget_the_encoder_adds_to_the_cap_is_allowed_for() {
        let op = chat(
            json!({"model": "m", "max_tokens": 1000, "reasoning_effort": "high",
            "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(op.thinking_allowance(1000), 4096);
        assert_eq!(
            op.thinking_allowance(8000),
            0,
            "the budget fits below the cap"
        );
        let plain = chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(plain.thinking_allowance(10), 0);
    }

    #[test]
    fn embeddings_produce_no_output_tokens() {
        let body = json!({"model": "e", "input": ["abcd", "ef"]});
        let op = Operation::Embeddings(serde_json::from_value::<EmbeddingsRequest>(body).unwrap());
        assert_eq!(op.client_output_cap(), Some(0));
        assert_eq!(op.prompt_parts().tokens(TextCounter::Bytes), 6);
    }
}
