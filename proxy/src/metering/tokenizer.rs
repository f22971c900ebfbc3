//! How a target's prompt text is counted for the reservation's bound (docs/spend.md, "The
//! reservation bound"): OpenAI's own tokenizers where the upstream model is an OpenAI model
//! tiktoken knows, a margin over o200k_base (never above one token per byte) elsewhere.

use std::sync::OnceLock;

use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};
use tiktoken_rs::CoreBPE;

use crate::config::{ProviderKind, Target};

/// Other tokenizers (Claude, Llama, Mistral, Titan) are measured at 1.0–1.4× o200k_base on
/// prose and code; twice the o200k count leaves room for text they split worse.
pub const OTHER_TOKENIZER_MARGIN: u64 = 2;

/// How the text of a prompt is counted.
#[derive(Clone, Copy)]
pub enum TextCounter {
    /// One token per byte: every byte-level BPE tokenizer (OpenAI's, Claude's, Llama's)
    /// makes at most one token of each byte, so this bounds them all without tokenizing.
    Bytes,
    /// The upstream's own tokenizer: the exact count.
    Exact(&'static CoreBPE),
    /// Another vendor's tokenizer: [`OTHER_TOKENIZER_MARGIN`] × o200k_base, at most the bytes.
    Margin(&'static CoreBPE),
}

impl TextCounter {
    /// The counter for `target`: exact for an OpenAI or Azure model tiktoken knows by name,
    /// the margin for everything else.
    pub fn for_target(target: &Target) -> TextCounter {
        // Until the tokenizers are loaded no request waits for them: the byte bound holds.
        let Some(&(o200k, cl100k)) = LOADED.get() else {
            return TextCounter::Bytes;
        };
        let openai_kind = matches!(
            target.provider.kind,
            ProviderKind::OpenAi(_) | ProviderKind::Azure(_)
        );
        match get_tokenizer(&target.upstream_model) {
            Some(Tokenizer::O200kBase) if openai_kind => TextCounter::Exact(o200k),
            Some(Tokenizer::Cl100kBase) if openai_kind => TextCounter::Exact(cl100k),
            _ => TextCounter::Margin(o200k),
        }
    }

    /// Tokens of `text` under this counter.
    pub fn count(self, text: &str) -> u64 {
        let bytes = text.len() as u64;
        match self {
            TextCounter::Bytes => bytes,
            TextCounter::Exact(bpe) => bpe.encode_ordinary(text).len() as u64,
            TextCounter::Margin(bpe) => {
                (bpe.encode_ordinary(text).len() as u64 * OTHER_TOKENIZER_MARGIN).min(bytes)
            }
        }
    }

    /// Whether two counters count alike (so a prompt is tokenized once per kind of counter).
    pub fn same_as(self, other: TextCounter) -> bool {
        match (self, other) {
            (TextCounter::Bytes, TextCounter::Bytes) => true,
            (TextCounter::Exact(a), TextCounter::Exact(b))
            | (TextCounter::Margin(a), TextCounter::Margin(b)) => std::ptr::eq(a, b),
            _ => false,
        }
    }
}

/// o200k_base and cl100k_base, once [`load`] has read them.
static LOADED: OnceLock<(&'static CoreBPE, &'static CoreBPE)> = OnceLock::new();

/// Reads the tokenizers' tables (a second or more): on a thread of its own at startup
/// ([`warm_up`]), so that no request waits for it.
pub fn load() {
    LOADED.get_or_init(|| (o200k(), tiktoken_rs::cl100k_base_singleton()));
}

/// Loads the tokenizers in the background.
pub fn warm_up() {
    let _ = std::thread::Builder::new()
        .name("switchyard-tokenizers".to_owned())
        .spawn(load);
}

fn o200k() -> &'static CoreBPE {
    tiktoken_rs::o200k_base_singleton()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_bound_every_counter() {
        let text = "The quick brown fox jumps over the lazy dog. 1234567890 ünïcödé 漢字 🦀";
        let bytes = TextCounter::Bytes.count(text);
        assert_eq!(bytes, text.len() as u64);
        let exact = TextCounter::Exact(o200k()).count(text);
        assert!(exact > 0 && exact < bytes, "{exact} of {bytes}");
        let margin = TextCounter::Margin(o200k()).count(text);
        assert_eq!(margin, (exact * 2).min(bytes));
        // Text that tokenizes badly is still bounded by its bytes.
        let digits = "7 ".repeat(50);
        assert!(TextCounter::Margin(o200k()).count(&digits) <= digits.len() as u64);
    }
}
