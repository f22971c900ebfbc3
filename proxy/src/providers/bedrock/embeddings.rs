//! `/v1/embeddings` on Bedrock via InvokeModel: Titan Text Embeddings (one text per call,
//! so an array input fans out into parallel calls) and Cohere Embed (one call per request).

use base64::Engine;
use serde_json::{json, Value};

use crate::api::embeddings::EmbeddingsRequest;
use crate::metering::Usage;
use crate::providers::TranslateError;

/// The model families with an InvokeModel embeddings mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Titan,
    Cohere,
}

/// Which family a Bedrock model id (or inference profile) belongs to.
pub fn family(model_id: &str) -> Option<Family> {
    if model_id.contains("amazon.titan-embed") {
        Some(Family::Titan)
    } else if model_id.contains("cohere.embed") {
        Some(Family::Cohere)
    } else {
        None
    }
}

fn refused(param: &str, message: impl Into<String>) -> TranslateError {
    TranslateError::Refused {
        param: param.to_owned(),
        message: message.into(),
    }
}

/// The texts of the request; token-id inputs have no meaning for Bedrock models.
fn texts(request: &EmbeddingsRequest) -> Result<Vec<String>, TranslateError> {
    match &request.input {
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    refused("input", "Bedrock embedding models take text, not token ids")
                })
            })
            .collect(),
        _ => Err(refused(
            "input",
            "`input` must be a string or an array of strings",
        )),
    }
}

fn wants_base64(request: &EmbeddingsRequest) -> Result<bool, TranslateError> {
    match request.extra.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => Ok(false),
        Some("base64") => Ok(true),
        Some(other) => Err(refused(
            "encoding_format",
            format!("unknown encoding_format {other:?}"),
        )),
    }
}

/// The InvokeModel bodies for `request`: one per text for Titan, one for Cohere.
pub fn bodies(model_id: &str, request: &EmbeddingsRequest) -> Result<Vec<Value>, TranslateError> {
    let family = family(model_id).ok_or_else(|| {
        refused(
            "model",
            format!("`{model_id}` is not a Bedrock embedding model this proxy maps (Titan Text Embeddings, Cohere Embed)"),
        )
    })?;
    wants_base64(request)?;
    let texts = texts(request)?;
    let dimensions = request.extra.get("dimensions").and_then(Value::as_u64);
    match family {
        Family::Titan => {
            if let Some(d) = dimensions.filter(|d| ![256, 512, 1024].contains(d)) {
                return Err(refused(
                    "dimensions",
                    format!("Titan embeddings have 256, 512 or 1024 dimensions, not {d}"),
                ));
            }
            Ok(texts
                .into_iter()
                .map(|text| {
                    let mut body = json!({"inputText": text, "normalize": true});
                    if let Some(d) = dimensions {
                        body["dimensions"] = json!(d);
                    }
                    body
                })
                .collect())
        }
        Family::Cohere => {
            if dimensions.is_some() {
                return Err(refused(
                    "dimensions",
                    "Cohere Embed v3 models have a fixed size",
                ));
            }
            if texts.len() > 96 {
                return Err(refused(
                    "input",
                    "Cohere Embed takes at most 96 texts per request",
                ));
            }
            Ok(vec![
                json!({"texts": texts, "input_type": "search_document", "truncate": "END"}),
            ])
        }
    }
}

fn parse(body: &[u8]) -> Result<Value, TranslateError> {
    serde_json::from_slice(body).map_err(|e| {
        TranslateError::BadUpstreamBody(format!("InvokeModel answer is not JSON: {e}"))
    })
}

fn floats(value: &Value) -> Result<Vec<f64>, TranslateError> {
    value
        .as_array()
        .ok_or_else(|| TranslateError::BadUpstreamBody("an embedding is not an array".into()))?
        .iter()
        .map(|v| {
            v.as_f64().ok_or_else(|| {
                TranslateError::BadUpstreamBody("an embedding holds a non-number".into())
            })
        })
        .collect()
}

fn encode(vector: Vec<f64>, base64: bool) -> Value {
    if !base64 {
        return json!(vector);
    }
    // OpenAI's base64 form: little-endian float32s.
    let bytes: Vec<u8> = vector
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Translates the answers (in request order) into OpenAI's embeddings list with usage.
/// Cohere reports no token count in its body, so its usage is the proxy's estimate.
pub fn translate(
    client_model: &str,
    model_id: &str,
    request: &EmbeddingsRequest,
    answers: &[bytes::Bytes],
) -> Result<(Vec<u8>, Option<Usage>), TranslateError> {
    let base64 = wants_base64(request)?;
    let mut vectors = Vec::new();
    let mut tokens = 0u64;
    let mut counted = true;
    for answer in answers {
        let value = parse(answer)?;
        match family(model_id) {
            Some(Family::Titan) => {
                vectors.push(floats(&value["embedding"])?);
                match value["inputTextTokenCount"].as_u64() {
                    Some(n) => tokens += n,
                    None => counted = false,
                }
            }
            _ => {
                let list = value["embeddings"]
                    .get("float")
                    .unwrap_or(&value["embeddings"])
                    .as_array()
                    .ok_or_else(|| {
                        TranslateError::BadUpstreamBody("Cohere answer has no embeddings".into())
                    })?;
                for v in list {
                    vectors.push(floats(v)?);
                }
                counted = false;
            }
        }
    }
    let usage = if counted {
        Usage {
            prompt_tokens: tokens,
            completion_tokens: 0,
            cached_tokens: 0,
            cache_write_tokens: 0,
            estimated: false,
        }
    } else {
        Usage::estimate(request.input_bytes(), 0)
    };
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| json!({"object": "embedding", "index": index, "embedding": encode(v, base64)}))
        .collect();
    let out = json!({
        "object": "list",
        "data": data,
        "model": client_model,
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens},
    });
    let bytes =
        serde_json::to_vec(&out).map_err(|e| TranslateError::BadUpstreamBody(e.to_string()))?;
    Ok((bytes, Some(usage)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn request(value: Value) -> EmbeddingsRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn titan_fans_out_one_body_per_text() {
        let r = request(json!({"model": "e", "input": ["a", "b"], "dimensions": 256}));
        let titan = bodies("amazon.titan-embed-text-v2:0", &r).unwrap();
        assert_eq!(
            titan,
            vec![
                json!({"inputText": "a", "normalize": true, "dimensions": 256}),
                json!({"inputText": "b", "normalize": true, "dimensions": 256}),
            ]
        );
        let bad = request(json!({"model": "e", "input": "a", "dimensions": 300}));
        assert!(
            matches!(bodies("amazon.titan-embed-text-v2:0", &bad), Err(TranslateError::Refused { param, .. }) if param == "dimensions")
        );
    }

    #[test]
    fn titan_answers_sum_their_token_counts() {
        let r = request(json!({"model": "e", "input": ["a", "b"]}));
        let answers = [
            Bytes::from(json!({"embedding": [0.5, 1.0], "inputTextTokenCount": 3}).to_string()),
            Bytes::from(json!({"embedding": [0.25, 0.0], "inputTextTokenCount": 4}).to_string()),
        ];
        let (out, usage) =
            translate("alias", "amazon.titan-embed-text-v2:0", &r, &answers).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            out["data"][1],
            json!({"object": "embedding", "index": 1, "embedding": [0.25, 0.0]})
        );
        assert_eq!(out["usage"], json!({"prompt_tokens": 7, "total_tokens": 7}));
        assert_eq!(out["model"], "alias");
        assert_eq!(usage.unwrap().prompt_tokens, 7);
    }

    #[test]
    fn cohere_is_one_call_and_base64_is_little_endian_f32() {
        let r = request(json!({"model": "e", "input": ["a", "b"], "encoding_format": "base64"}));
        let cohere = bodies("cohere.embed-english-v3", &r).unwrap();
        assert_eq!(cohere.len(), 1);
        assert_eq!(cohere[0]["texts"], json!(["a", "b"]));
        let answer = [Bytes::from(
            json!({"embeddings": [[1.0], [2.0]], "id": "x"}).to_string(),
        )];
        let (out, usage) = translate("alias", "cohere.embed-english-v3", &r, &answer).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode(1.0f32.to_le_bytes());
        assert_eq!(out["data"][0]["embedding"], json!(expected));
        assert!(usage.unwrap().estimated);
    }

    #[test]
    fn token_inputs_and_chat_models_are_refused() {
        let tokens = request(json!({"model": "e", "input": [1, 2]}));
        assert!(bodies("amazon.titan-embed-text-v2:0", &tokens).is_err());
        let text = request(json!({"model": "e", "input": "x"}));
        assert!(
            matches!(bodies("anthropic.claude-3", &text), Err(TranslateError::Refused { param, .. }) if param == "model")
        );
    }
}
