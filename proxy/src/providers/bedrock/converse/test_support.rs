//! Test helpers: model requests written as JSON, Converse bodies read back as JSON.

use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::request::{convert_request, TargetFields};
use crate::model::{Request, ResponseFormat};
use crate::providers::TranslateError;

pub const CLAUDE: &str = "anthropic.claude-3-haiku-20240307-v1:0";

/// A model request from its serde form; `model` and `dialect` are filled in when absent.
pub fn request(mut value: Value) -> Request {
    let object = value.as_object_mut().unwrap();
    object.entry("model").or_insert(json!("m"));
    object.entry("dialect").or_insert(json!("chat"));
    let format = object.remove("response_format");
    // RawValue (tool schemas) only deserializes from text.
    let mut request: Request = serde_json::from_str(&value.to_string()).unwrap();
    request.response_format = format.map(response_format);
    request
}

/// `ResponseFormat` is internally tagged, and serde cannot buffer its `RawValue` schema, so
/// it is built by hand.
fn response_format(value: Value) -> ResponseFormat {
    match value["type"].as_str().unwrap() {
        "text" => ResponseFormat::Text,
        "json_object" => ResponseFormat::JsonObject,
        _ => ResponseFormat::JsonSchema {
            name: value["name"].as_str().unwrap().to_owned(),
            schema: RawValue::from_string(value["schema"].to_string()).unwrap(),
            strict: value["strict"].as_bool(),
            description: value["description"].as_str().map(str::to_owned),
        },
    }
}

pub fn text(role: &str, text: &str) -> Value {
    json!({"role": role, "content": [{"type": "text", "text": text}]})
}

pub fn body_for(value: Value, upstream_model: &str, additional: Option<&Value>) -> Value {
    let request = request(value);
    let target = TargetFields {
        upstream_model,
        additional,
    };
    let converse = convert_request(&request, target).unwrap();
    serde_json::to_value(&converse.body).unwrap()
}

pub fn body(value: Value) -> Value {
    body_for(value, CLAUDE, None)
}

/// The `param` of the refusal `value` gets.
pub fn refusal(value: Value) -> String {
    let request = request(value);
    let target = TargetFields {
        upstream_model: CLAUDE,
        additional: None,
    };
    match convert_request(&request, target) {
        Err(TranslateError::Refused { param, .. }) => param,
        other => panic!("expected a refusal, got {other:?}"),
    }
}
