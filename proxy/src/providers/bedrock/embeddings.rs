//! `/v1/embeddings` on Bedrock via InvokeModel: Titan Text Embeddings (one text per call,
//! so an array input fans out into parallel calls) and Cohere Embed (one call per request).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::api::embeddings::{EmbeddingVector, EmbeddingsRequest, EmbeddingsResponse};
use crate::metering::Usage;
use crate::providers::TranslateError;

// ---------------------------------------------------------------- wire types

/// One InvokeModel request body (the model id goes into the path).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum InvokeBody<'a> {
    Titan(TitanRequest<'a>),
    Cohere(CohereRequest<'a>),
}

/// Titan Text Embeddings v2: one text per call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TitanRequest<'a> {
    pub input_text: &'a str,
    pub normalize: bool,
    /// 256, 512 or 1024; absent means the model's default (1024).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u64>,
}

/// Cohere Embed: up to 96 texts per call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohereRequest<'a> {
    pub texts: Vec<&'a str>,
    pub input_type: CohereInputType,
    pub truncate: CohereTruncate,
}

/// OpenAI's embeddings carry no purpose; documents are the general case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CohereInputType {
    SearchDocument,
}

/// Texts longer than the model's window are cut at the end, as OpenAI's models do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CohereTruncate {
    End,
}

/// Titan's answer; `embeddingsByType` and anything newer stays in `extra`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TitanAnswer {
    pub embedding: Vec<f64>,
    /// Absent or not a whole number: the usage is estimated instead.
    #[serde(default, deserialize_with = "whole_number")]
    pub input_text_token_count: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Cohere's answer; `id`, `texts`, `response_type` and anything newer stay in `extra`.
#[derive(Debug, Deserialize)]
pub struct CohereAnswer {
    pub embeddings: CohereEmbeddings,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `embeddings_floats` answers carry the vectors as a list; `embeddings_by_type` answers
/// (when `embedding_types` was asked for) as an object keyed by type.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CohereEmbeddings {
    Floats(Vec<Vec<f64>>),
    ByType(CohereByType),
}

#[derive(Debug, Deserialize)]
pub struct CohereByType {
    pub float: Option<Vec<Vec<f64>>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Ok(Value::deserialize(deserializer)?.as_u64())
}

// ---------------------------------------------------------------- translation

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
fn texts(request: &EmbeddingsRequest) -> Result<Vec<&str>, TranslateError> {
    match &request.input {
        Value::String(text) => Ok(vec![text.as_str()]),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str().ok_or_else(|| {
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
pub fn bodies<'a>(
    model_id: &str,
    request: &'a EmbeddingsRequest,
) -> Result<Vec<InvokeBody<'a>>, TranslateError> {
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
                .map(|input_text| {
                    InvokeBody::Titan(TitanRequest {
                        input_text,
                        normalize: true,
                        dimensions,
                    })
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
            Ok(vec![InvokeBody::Cohere(CohereRequest {
                texts,
                input_type: CohereInputType::SearchDocument,
                truncate: CohereTruncate::End,
            })])
        }
    }
}

fn parse<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, TranslateError> {
    serde_json::from_slice(body).map_err(|e| {
        TranslateError::BadUpstreamBody(format!("InvokeModel answer is not valid: {e}"))
    })
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
        match family(model_id) {
            Some(Family::Titan) => {
                let answer: TitanAnswer = parse(answer)?;
                vectors.push(EmbeddingVector::new(answer.embedding, base64));
                match answer.input_text_token_count {
                    Some(n) => tokens += n,
                    None => counted = false,
                }
            }
            _ => {
                let answer: CohereAnswer = parse(answer)?;
                let list = match answer.embeddings {
                    CohereEmbeddings::Floats(list) => list,
                    CohereEmbeddings::ByType(by_type) => by_type.float.ok_or_else(|| {
                        TranslateError::BadUpstreamBody("Cohere answer has no embeddings".into())
                    })?,
                };
                vectors.extend(list.into_iter().map(|v| EmbeddingVector::new(v, base64)));
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
            cache_write_1h_tokens: 0,
            estimated: false,
        }
    } else {
        Usage::estimate(request.input_bytes(), 0)
    };
    let out = EmbeddingsResponse::new(client_model, vectors, usage.prompt_tokens);
    let bytes =
        serde_json::to_vec(&out).map_err(|e| TranslateError::BadUpstreamBody(e.to_string()))?;
    Ok((bytes, Some(usage)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use bytes::Bytes;
    use serde_json::json;

    fn request(value: Value) -> EmbeddingsRequest {
        serde_json::from_value(value).unwrap()
    }

    fn values(bodies: Vec<InvokeBody<'_>>) -> Vec<Value> {
        bodies
            .iter()
            .map(|body| serde_json::to_value(body).unwrap())
            .collect()
    }

    #[test]
    fn titan_fans_out_one_body_per_text() {
        let r = request(json!({"model": "e", "input": ["a", "b"], "dimensions": 256}));
        let titan = values(bodies("amazon.titan-embed-text-v2:0", &r).unwrap());
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
        let cohere = values(bodies("cohere.embed-english-v3", &r).unwrap());
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

    #[test]
    fn bodies_serialize_in_the_documented_field_order() {
        let titan = request(json!({"model": "e", "input": "a"}));
        let body = bodies("amazon.titan-embed-text-v2:0", &titan).unwrap();
        assert_eq!(
            serde_json::to_string(&body[0]).unwrap(),
            r#"{"inputText":"a","normalize":true}"#
        );
        let cohere = request(json!({"model": "e", "input": ["a", "b"]}));
        let body = bodies("cohere.embed-english-v3", &cohere).unwrap();
        assert_eq!(
            serde_json::to_string(&body[0]).unwrap(),
            r#"{"texts":["a","b"],"input_type":"search_document","truncate":"END"}"#
        );
    }

    #[test]
    fn cohere_by_type_answers_and_titan_without_a_count() {
        let r = request(json!({"model": "e", "input": ["a", "b"]}));
        let answer = [Bytes::from(
            json!({"embeddings": {"float": [[1.5], [2.0]], "int8": [[1], [2]]}, "response_type": "embeddings_by_type"})
                .to_string(),
        )];
        let (out, _) = translate("alias", "cohere.embed-english-v3", &r, &answer).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["data"][1]["embedding"], json!([2.0]));
        let no_float = [Bytes::from(
            json!({"embeddings": {"int8": [[1]]}}).to_string(),
        )];
        assert!(matches!(
            translate("alias", "cohere.embed-english-v3", &r, &no_float),
            Err(TranslateError::BadUpstreamBody(_))
        ));
        // A count that is not a whole number is treated as absent: the usage is estimated.
        let titan = [
            Bytes::from(json!({"embedding": [0.5], "inputTextTokenCount": 2.5, "embeddingsByType": {"float": [0.5]}}).to_string()),
            Bytes::from(json!({"embedding": [0.5]}).to_string()),
        ];
        let (_, usage) = translate("alias", "amazon.titan-embed-text-v2:0", &r, &titan).unwrap();
        assert!(usage.unwrap().estimated);
        for bad in [&b"[]"[..], b"{}", br#"{"embedding": ["x"]}"#, b"<html>"] {
            assert!(matches!(
                translate(
                    "alias",
                    "amazon.titan-embed-text-v2:0",
                    &r,
                    &[Bytes::from_static(bad)]
                ),
                Err(TranslateError::BadUpstreamBody(_))
            ));
        }
    }
}
