//! A JSON object read only as deep as the proxy needs: top-level members kept as raw JSON
//! text, so relaying a stream chunk, a complete answer or a client's request body costs one
//! scan and one copy instead of building and re-serialising a whole JSON tree (the hot path
//! of the pass-through).

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The top-level members of one chunk, in order, values unparsed.
pub struct RawChunk<'a> {
    members: Vec<(&'a str, &'a RawValue)>,
}

impl<'a> RawChunk<'a> {
    /// `None` when the text is not a JSON object whose keys need no unescaping (callers then
    /// take the general path).
    pub fn parse(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// A member's raw JSON, treating `null` as absent.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.members
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.get().trim())
            .filter(|raw| *raw != "null")
    }

    /// Content deltas in `choices` (non-empty content or refusal, or tool-call fragments).
    pub fn content_deltas(&self) -> u64 {
        let Some(choices) = self.get("choices") else {
            return 0;
        };
        let Ok(choices) = serde_json::from_str::<Vec<ChoiceView<'_>>>(choices) else {
            return 0;
        };
        choices
            .iter()
            .filter_map(|choice| choice.delta.as_ref())
            .filter(|delta| {
                meaningful(delta.content)
                    || meaningful(delta.refusal)
                    || meaningful(delta.tool_calls)
            })
            .count() as u64
    }

    /// Whether `choices` is missing or empty (the usage-only chunk has none).
    pub fn has_no_choices(&self) -> bool {
        self.get("choices")
            .is_none_or(|raw| raw.trim_start_matches('[').trim_start().starts_with(']'))
    }

    /// The chunk as JSON again, with `model` replaced and, unless `keep_usage`, no `usage`.
    pub fn write(&self, client_model: &str, keep_usage: bool) -> Vec<u8> {
        let model = model_json(client_model);
        self.write_with(
            |key, _| match key {
                "usage" if !keep_usage => Edit::Drop,
                "model" => Edit::Replace(&model),
                _ => Edit::Keep,
            },
            &[],
        )
    }

    /// The object as JSON again: each member kept, dropped or replaced by `edit`, then
    /// `append`ed members (key, raw JSON value) at the end.
    pub fn write_with<'e>(
        &self,
        mut edit: impl FnMut(&str, &str) -> Edit<'e>,
        append: &[(&str, &[u8])],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.members
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>()
                + append
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 4)
                    .sum::<usize>()
                + 2,
        );
        out.push(b'{');
        let mut first = true;
        let mut member = |out: &mut Vec<u8>, key: &str, value: &[u8]| {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(value);
        };
        for (key, value) in &self.members {
            match edit(key, value.get()) {
                Edit::Keep => member(&mut out, key, value.get().as_bytes()),
                Edit::Drop => {}
                Edit::Replace(raw) => member(&mut out, key, raw),
            }
        }
        for (key, value) in append {
            member(&mut out, key, value);
        }
        out.push(b'}');
        out
    }

    /// Whether the object has a member `key` (even `null`).
    pub fn has(&self, key: &str) -> bool {
        self.members.iter().any(|(k, _)| *k == key)
    }
}

/// What [`RawChunk::write_with`] does with one member.
pub enum Edit<'a> {
    Keep,
    Drop,
    /// Write this raw JSON as the member's value.
    Replace(&'a [u8]),
}

/// A model name as a JSON string.
pub fn model_json(model: &str) -> Vec<u8> {
    // Serialising a plain string cannot fail.
    serde_json::to_vec(model).unwrap_or_default()
}

fn meaningful(raw: Option<&RawValue>) -> bool {
    raw.map(RawValue::get)
        .is_some_and(|raw| !matches!(raw.trim(), "null" | "\"\"" | "[]"))
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(borrow)]
    delta: Option<DeltaView<'a>>,
}

#[derive(Deserialize)]
struct DeltaView<'a> {
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    refusal: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_calls: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for RawChunk<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = RawChunk<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(8);
                while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
                    members.push(entry);
                }
                Ok(RawChunk { members })
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: &str = r#"{"id":"c","object":"chat.completion.chunk","model":"gpt-x","choices":[{"index":0,"delta":{"content":"hi \"there\""},"finish_reason":null}],"usage":null}"#;

    #[test]
    fn rewrites_model_and_drops_usage_keeping_everything_else_verbatim() {
        let chunk = RawChunk::parse(CHUNK).unwrap();
        let out = String::from_utf8(chunk.write("alias", false)).unwrap();
        assert_eq!(
            out,
            r#"{"id":"c","object":"chat.completion.chunk","model":"alias","choices":[{"index":0,"delta":{"content":"hi \"there\""},"finish_reason":null}]}"#
        );
        let kept = String::from_utf8(chunk.write("a\"b", true)).unwrap();
        assert!(kept.contains(r#""model":"a\"b""#) && kept.ends_with(r#""usage":null}"#));
    }

    #[test]
    fn reads_deltas_choices_and_members() {
        let chunk = RawChunk::parse(CHUNK).unwrap();
        assert_eq!(chunk.content_deltas(), 1);
        assert!(!chunk.has_no_choices());
        assert_eq!(chunk.get("usage"), None, "null counts as absent");
        let usage = RawChunk::parse(r#"{"choices": [ ], "usage": {"prompt_tokens": 1}}"#).unwrap();
        assert!(usage.has_no_choices());
        assert_eq!(usage.get("usage"), Some(r#"{"prompt_tokens": 1}"#));
        let role = RawChunk::parse(r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#)
            .unwrap();
        assert_eq!(role.content_deltas(), 0);
        let tools =
            RawChunk::parse(r#"{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}"#).unwrap();
        assert_eq!(tools.content_deltas(), 1);
    }

    #[test]
    fn non_objects_and_escaped_keys_take_the_general_path() {
        assert!(RawChunk::parse("[1]").is_none());
        assert!(RawChunk::parse("{not json").is_none());
        assert!(RawChunk::parse(r#"{"mo\u0064el":"x"}"#).is_none());
    }
}
