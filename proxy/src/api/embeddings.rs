//! `POST /v1/embeddings` request type: `model` and `input` are read, the rest passes through.

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
}
