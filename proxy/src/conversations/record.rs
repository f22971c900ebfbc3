//! One stored Responses turn, as `put` takes it and `get`/`chain` give it back.

use std::collections::HashMap;

use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::StoreError;

/// One turn of a conversation. The JSON columns are kept as the text the client saw, so that
/// `GET` and `input_items` answer byte for byte what was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The response id the client got (`resp_…`), unique across teams.
    pub id: String,
    /// The team of the key that created it: every read is checked against it.
    pub team: String,
    /// The client-facing model name.
    pub model: String,
    /// The provider that served the turn.
    pub provider: String,
    /// The turn this one continued, if any (its own `previous_response_id`).
    pub previous_response_id: Option<String>,
    /// Unix seconds, as the response object's `created_at`; retention counts from it.
    pub created_at: i64,
    /// JSON array: this turn's own input items (not expanded), each with its `id`, exactly as
    /// `input_items` returns them.
    pub input_items: String,
    /// JSON array: the response's output items.
    pub output_items: String,
    /// JSON object: the whole response object as the client got it (what GET returns).
    pub response: String,
}

impl StoredResponse {
    /// Refuses a turn whose JSON columns the endpoints could not serve later.
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        let invalid = |field: &'static str, expected: &'static str| StoreError::Invalid {
            id: self.id.clone(),
            field,
            expected,
        };
        if serde_json::from_str::<Vec<&RawValue>>(&self.input_items).is_err() {
            return Err(invalid("input_items", "array"));
        }
        if serde_json::from_str::<Vec<&RawValue>>(&self.output_items).is_err() {
            return Err(invalid("output_items", "array"));
        }
        if serde_json::from_str::<HashMap<String, IgnoredAny>>(&self.response).is_err() {
            return Err(invalid("response", "object"));
        }
        Ok(())
    }
}

/// A valid turn for tests: one input message `msg_<id>`, created at `created_at`.
#[cfg(test)]
pub(crate) fn turn(id: &str, team: &str, previous: Option<&str>) -> StoredResponse {
    StoredResponse {
        id: id.to_owned(),
        team: team.to_owned(),
        model: "gpt".to_owned(),
        provider: "azure".to_owned(),
        previous_response_id: previous.map(str::to_owned),
        created_at: super::store::now_secs(),
        input_items: format!(
            r#"[{{"id":"msg_{id}","type":"message","role":"user","content":[{{"type":"input_text","text":"hi"}}]}}]"#
        ),
        output_items: format!(
            r#"[{{"id":"out_{id}","type":"message","role":"assistant","content":[]}}]"#
        ),
        response: format!(r#"{{"id":"{id}","object":"response","status":"completed"}}"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_columns_are_checked() {
        assert!(turn("r", "t", None).validate().is_ok());
        let mut bad = turn("r", "t", None);
        bad.input_items = "{}".to_owned();
        assert!(matches!(
            bad.validate(),
            Err(StoreError::Invalid {
                field: "input_items",
                ..
            })
        ));
        let mut bad = turn("r", "t", None);
        bad.output_items = "[".to_owned();
        assert!(matches!(
            bad.validate(),
            Err(StoreError::Invalid {
                field: "output_items",
                ..
            })
        ));
        let mut bad = turn("r", "t", None);
        bad.response = "[]".to_owned();
        assert!(matches!(
            bad.validate(),
            Err(StoreError::Invalid {
                field: "response",
                ..
            })
        ));
    }
}
