//! `POST /v1/embeddings` types: the request (`model` and `input` are read, the rest passes
//! through) and the answer, for providers whose own answer the proxy translates (Bedrock).

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::InvalidField;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EmbeddingsRequest {
    pub model: String,
    pub input: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl EmbeddingsRequest {
    pub fn validate(&self) -> Result<(), InvalidField> {
        let ok = match &self.input {
            Value::String(_) => true,
            Value::Array(items) => {
                !items.is_empty()
                    && (items.iter().all(Value::is_string)
                        || items.iter().all(Value::is_number)
                        || items.iter().all(Value::is_array))
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(InvalidField::new(
                "input",
                "`input` must be a string, a non-empty array of strings, or token arrays",
            ))
        }
    }

    /// Bytes of input text (token arrays count 4 bytes a token), for the prompt estimate.
    pub fn input_bytes(&self) -> usize {
        fn bytes(value: &Value) -> usize {
            match value {
                Value::String(s) => s.len(),
                Value::Number(_) => 4,
                Value::Array(items) => items.iter().map(bytes).sum(),
                _ => 0,
            }
        }
        bytes(&self.input)
    }
}

/// OpenAI's embeddings answer (`"object": "list"`), one entry per input in input order.
#[derive(Debug, Serialize)]
pub struct EmbeddingsResponse {
    pub object: &'static str,
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: EmbeddingsUsage,
}

#[derive(Debug, Serialize)]
pub struct Embedding {
    pub object: &'static str,
    pub index: usize,
    pub embedding: EmbeddingVector,
}

/// A vector as `encoding_format` asks: `float` (the default) is a JSON array, `base64` a
/// string of little-endian float32s.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    Float(Vec<f64>),
    Base64(String),
}

/// Embeddings have no completion, so `total_tokens` is `prompt_tokens`.
#[derive(Debug, Serialize)]
pub struct EmbeddingsUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}

impl EmbeddingVector {
    /// `vector` in the form `encoding_format` asks for.
    pub fn new(vector: Vec<f64>, base64: bool) -> Self {
        if !base64 {
            return Self::Float(vector);
        }
        let bytes: Vec<u8> = vector
            .iter()
            .flat_map(|v| (*v as f32).to_le_bytes())
            .collect();
        Self::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

impl EmbeddingsResponse {
    /// The list for `vectors` (indexed in order), answered under the client's `model` name.
    pub fn new(model: &str, vectors: Vec<EmbeddingVector>, prompt_tokens: u64) -> Self {
        let data = vectors
            .into_iter()
            .enumerate()
            .map(|(index, embedding)| Embedding {
                object: "embedding",
                index,
                embedding,
            })
            .collect();
        Self {
            object: "list",
            data,
            model: model.to_owned(),
            usage: EmbeddingsUsage {
                prompt_tokens,
                total_tokens: prompt_tokens,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_shapes() {
        let ok: EmbeddingsRequest =
            serde_json::from_value(json!({"model": "e", "input": ["a", "bc"]})).unwrap();
        assert!(ok.validate().is_ok());
        assert_eq!(ok.input_bytes(), 3);
        let bad: EmbeddingsRequest =
            serde_json::from_value(json!({"model": "e", "input": {"x": 1}})).unwrap();
        assert_eq!(bad.validate().unwrap_err().param, "input");
    }

    #[test]
    fn response_is_openai_list_in_float_or_base64() {
        let vectors = vec![
            EmbeddingVector::new(vec![0.5, -1.0], false),
            EmbeddingVector::new(vec![1.0, 0.5], true),
        ];
        let out = serde_json::to_value(EmbeddingsResponse::new("alias", vectors, 7)).unwrap();
        let mut le = 1.0f32.to_le_bytes().to_vec();
        le.extend(0.5f32.to_le_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(le);
        assert_eq!(
            out,
            json!({
                "object": "list",
                "data": [
                    {"object": "embedding", "index": 0, "embedding": [0.5, -1.0]},
                    {"object": "embedding", "index": 1, "embedding": b64},
                ],
                "model": "alias",
                "usage": {"prompt_tokens": 7, "total_tokens": 7},
            })
        );
    }
}
