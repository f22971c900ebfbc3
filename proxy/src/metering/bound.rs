//! The most a request can be billed for, in tokens (docs/spend.md, "The reservation
//! bound"): its prompt counted with the overheads upstreams add per message, content block,
//! tool and image, and its output at the cap it is sent with, times the choices it asks for.

use super::tokenizer::TextCounter;

/// Tokens an upstream adds around each message (role markers, separators; OpenAI's chat
/// format adds 3, and 4 with a `name`; Claude's fewer than 8).
pub const MESSAGE_OVERHEAD: u64 = 8;
/// Tokens around each content block beyond a message's first.
pub const BLOCK_OVERHEAD: u64 = 4;
/// Tokens that prime the reply (OpenAI: 3).
pub const REPLY_PRIMING: u64 = 8;
/// Tokens around each tool definition, beside its name, description and schema text.
pub const TOOL_OVERHEAD: u64 = 32;
/// The instructions an upstream adds once when tools are offered (Claude's tool-use system
/// prompt is 313–346 tokens).
pub const TOOLS_PREAMBLE: u64 = 512;
/// An image, whatever its size: above the most OpenAI (high detail: 1,445 for GPT-4o,
/// 2,488 patches × 1.62 for GPT-4.1 mini) and Anthropic (≤ 1,600; 4,784 for the
/// high-resolution Claude models) bill for one.
pub const IMAGE_TOKENS: u64 = 6_000;
/// A document given by URL, whose size the proxy cannot see: 100 pages at up to 1,000 tokens
/// of text each, beside their page images.
pub const URL_DOCUMENT_TOKENS: u64 = 100_000;

/// The parts of a prompt that are billed, as the request types report them
/// (`providers/metered.rs`).
#[derive(Debug, Default)]
pub struct PromptParts<'a> {
    /// Text the upstream tokenizes: system text, message text, tool calls and results,
    /// tool names, descriptions and schemas, a response schema.
    pub texts: Vec<&'a str>,
    /// Data counted at one token per byte whatever the counter (inline documents, parts the
    /// proxy does not interpret): already an upper bound, nothing to tokenize.
    pub raw_bytes: u64,
    /// Messages, system blocks included.
    pub messages: u64,
    /// Content blocks beyond each message's first.
    pub extra_blocks: u64,
    pub images: u64,
    pub url_documents: u64,
    pub tools: u64,
    /// Whether the prompt is a chat (overheads apply) rather than embeddings input.
    pub chat: bool,
}

impl PromptParts<'_> {
    /// The most prompt tokens an upstream can bill for these parts, the text counted by
    /// `counter`.
    pub fn tokens(&self, counter: TextCounter) -> u64 {
        let text: u64 = self.texts.iter().map(|t| counter.count(t)).sum();
        text.saturating_add(self.raw_bytes)
            .saturating_add(self.overhead())
    }

    /// The tokens the parts cost beside their text.
    fn overhead(&self) -> u64 {
        let media = self.images * IMAGE_TOKENS + self.url_documents * URL_DOCUMENT_TOKENS;
        if !self.chat {
            return media;
        }
        let tools = match self.tools {
            0 => 0,
            n => TOOLS_PREAMBLE + n * TOOL_OVERHEAD,
        };
        self.messages * MESSAGE_OVERHEAD
            + self.extra_blocks * BLOCK_OVERHEAD
            + REPLY_PRIMING
            + tools
            + media
    }
}

/// A request's maximum in tokens: its prompt bound and the output it may produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBound {
    pub prompt: u64,
    /// The output cap sent upstream, per choice (before any thinking budget is added).
    pub cap: u32,
    /// Output tokens beside the cap a choice may produce: a thinking budget an encoder adds
    /// to the cap (docs/messages-dialect.md), else 0.
    pub thinking: u32,
    /// Choices asked for (`n`); each may produce the whole output allowance.
    pub choices: u32,
}

impl TokenBound {
    /// Every output token the request may produce: (cap + thinking) × choices.
    pub fn output(&self) -> u64 {
        (u64::from(self.cap) + u64::from(self.thinking)) * u64::from(self.choices.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat<'a>(texts: Vec<&'a str>, messages: u64) -> PromptParts<'a> {
        PromptParts {
            texts,
            messages,
            chat: true,
            ..PromptParts::default()
        }
    }

    #[test]
    fn overheads_count_per_message_block_tool_and_image() {
        let mut parts = chat(vec!["abcd", "efgh"], 2);
        assert_eq!(
            parts.tokens(TextCounter::Bytes),
            8 + 2 * MESSAGE_OVERHEAD + REPLY_PRIMING
        );
        parts.extra_blocks = 1;
        parts.images = 1;
        parts.tools = 2;
        parts.raw_bytes = 10;
        assert_eq!(
            parts.tokens(TextCounter::Bytes),
            8 + 10
                + 2 * MESSAGE_OVERHEAD
                + BLOCK_OVERHEAD
                + IMAGE_TOKENS
                + TOOLS_PREAMBLE
                + 2 * TOOL_OVERHEAD
                + REPLY_PRIMING
        );
        let embeddings = PromptParts {
            texts: vec!["abcd"],
            ..PromptParts::default()
        };
        assert_eq!(embeddings.tokens(TextCounter::Bytes), 4);
    }

    #[test]
    fn output_is_multiplied_by_the_choices() {
        let bound = |choices| TokenBound {
            prompt: 10,
            cap: 100,
            thinking: 20,
            choices,
        };
        assert_eq!(bound(1).output(), 120);
        assert_eq!(bound(4).output(), 480);
        assert_eq!(bound(0).output(), 120, "n absent or 0 is one choice");
    }
}
