//! Deterministic token arithmetic: prompt estimates for chat and embeddings, and
//! the words of the simulator's answers. Tests on the other side of a proxy
//! compute the same numbers, so these rules are part of the contract.

use serde_json::Value;

/// ceil(chars / 4): the usual "four characters per token" rule of thumb.
fn chars_to_tokens(chars: usize) -> u64 {
    chars.div_ceil(4) as u64
}

/// Text of a message `content`: a string, or the `text` of each text part.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

fn content_chars(content: &Value) -> usize {
    match content {
        Value::String(text) => text.chars().count(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .map(|text| text.chars().count())
            .sum(),
        _ => 0,
    }
}

/// Prompt tokens of a chat request: ceil(total characters of all message text
/// content / 4) + 3 per message, at least 1.
pub(crate) fn prompt_tokens(messages: &[Value]) -> u64 {
    let chars: usize = messages
        .iter()
        .filter_map(|message| message.get("content"))
        .map(content_chars)
        .sum();
    (chars_to_tokens(chars) + 3 * messages.len() as u64).max(1)
}

/// Prompt tokens of one embeddings input: ceil(chars / 4) for text, the length for token arrays.
pub(crate) fn embedding_input_tokens(text_chars: Option<usize>, token_count: usize) -> u64 {
    match text_chars {
        Some(chars) => chars_to_tokens(chars),
        None => token_count as u64,
    }
}

/// The `count` tokens of the simulator's ordinary answer:
/// `"Hello"`, `" from"`, `" <name>"`, `" tok4"`, `" tok5"`, …
pub(crate) fn greeting_tokens(name: &str, count: usize) -> Vec<String> {
    (1..=count)
        .map(|position| match position {
            1 => "Hello".to_owned(),
            2 => " from".to_owned(),
            3 => format!(" {name}"),
            n => format!(" tok{n}"),
        })
        .collect()
}

/// The answer text a simulator named `name` gives with `output_tokens` tokens,
/// e.g. `answer_text("openai-sim", 5) == "Hello from openai-sim tok4 tok5"`.
pub fn answer_text(name: &str, output_tokens: usize) -> String {
    greeting_tokens(name, output_tokens).concat()
}

/// Splits text into word tokens that concatenate back to it: `"a b"` → `["a", " b"]`.
pub(crate) fn word_tokens(text: &str) -> Vec<String> {
    text.split(' ')
        .enumerate()
        .map(|(i, word)| {
            if i == 0 {
                word.to_owned()
            } else {
                format!(" {word}")
            }
        })
        .collect()
}

/// Splits `text` into `parts` non-empty pieces at character boundaries (fewer if it is shorter).
pub(crate) fn split_evenly(text: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let parts = parts.clamp(1, chars.len().max(1));
    let size = chars.len().div_ceil(parts).max(1);
    let pieces: Vec<String> = chars
        .chunks(size)
        .map(|chunk| chunk.iter().collect())
        .collect();
    if pieces.is_empty() {
        vec![String::new()]
    } else {
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prompt_estimate_follows_the_documented_rule() {
        let messages = [
            json!({"role": "system", "content": "abcd"}),
            json!({"role": "user", "content": [{"type": "text", "text": "efghi"}]}),
        ];
        // 9 chars → 3 tokens, plus 3 per message.
        assert_eq!(prompt_tokens(&messages), 3 + 6);
        assert_eq!(prompt_tokens(&[]), 1);
    }

    #[test]
    fn greeting_is_deterministic() {
        assert_eq!(answer_text("s1", 5), "Hello from s1 tok4 tok5");
        assert_eq!(answer_text("s1", 1), "Hello");
        assert_eq!(answer_text("s1", 0), "");
    }

    #[test]
    fn word_tokens_concatenate_back() {
        let text = "The tool said: {\"temp\": 18}";
        assert_eq!(word_tokens(text).concat(), text);
    }

    #[test]
    fn split_evenly_keeps_every_character() {
        assert_eq!(split_evenly("{}", 4), vec!["{", "}"]);
        assert_eq!(split_evenly("abcdefg", 3).concat(), "abcdefg");
        assert_eq!(split_evenly("abcdefg", 3).len(), 3);
    }
}
