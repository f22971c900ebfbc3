//! Storing a Responses turn before its response completes to the client: a complete body is
//! stored before it is sent, a stream's turn before its `response.completed` event goes out
//! (`relay::stream::CompletionHook`), so a crash never loses a turn the client saw
//! (docs/decisions/0003-proxy-owns-conversation-state.md).

use serde_json::Value;

use crate::conversations::{ConversationStore, StoredResponse};
use crate::dialects::responses::wire::InputItem;
use crate::relay::Reply;

/// A turn to store once its response is known.
pub struct PendingTurn {
    pub store: ConversationStore,
    pub team: String,
    /// The client's model name.
    pub model: String,
    pub previous_response_id: Option<String>,
    /// This turn's own input items, each with its id.
    pub input_items: Vec<InputItem>,
}

impl PendingTurn {
    /// The stored form of this turn answered by `response` (the Response object as the client
    /// reads it, `text` its JSON) from `provider`; `None` when it is not a response.
    fn stored(&self, response: &Value, text: String, provider: String) -> Option<StoredResponse> {
        let id = response.get("id")?.as_str()?.to_owned();
        // Azure writes `created_at` as a float.
        let created_at = response.get("created_at").and_then(Value::as_f64)? as i64;
        let output = response.get("output").filter(|o| o.is_array())?;
        Some(StoredResponse {
            id,
            team: self.team.clone(),
            model: self.model.clone(),
            provider,
            previous_response_id: self.previous_response_id.clone(),
            created_at,
            input_items: serde_json::to_string(&self.input_items).ok()?,
            output_items: serde_json::to_string(output).ok()?,
            response: text,
        })
    }

    async fn put(self, response: Value, text: String, provider: String) {
        let Some(turn) = self.stored(&response, text, provider) else {
            tracing::warn!("a Responses answer without id, created_at or output was not stored");
            return;
        };
        let id = turn.id.clone();
        if let Err(error) = self.store.put(turn).await {
            tracing::error!(response_id = %id, %error, "could not store the response");
        }
    }
}

/// `reply` once `pending` is stored: at once for a complete body, before the final event for
/// a stream. Errors are not stored.
pub async fn before_completion(pending: PendingTurn, reply: Reply) -> Reply {
    match reply {
        Reply::Full {
            status: 200,
            headers,
            body,
        } => {
            let provider = provider_of(&headers);
            match serde_json::from_slice::<Value>(&body) {
                Ok(response) => {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    pending.put(response, text, provider).await;
                }
                Err(error) => {
                    tracing::warn!(%error, "a Responses answer that is not JSON was not stored")
                }
            }
            Reply::Full {
                status: 200,
                headers,
                body,
            }
        }
        Reply::Stream {
            headers,
            mut stream,
        } => {
            let provider = provider_of(&headers);
            stream.on_complete(Box::new(move |response| {
                futures_util::FutureExt::boxed(async move {
                    let text = response.to_string();
                    pending.put(response, text, provider).await;
                })
            }));
            Reply::Stream { headers, stream }
        }
        other => other,
    }
}

/// The answering provider, as the reply's `x-switchyard-provider` header names it.
fn provider_of(headers: &[(&'static str, String)]) -> String {
    headers
        .iter()
        .find(|(name, _)| *name == "x-switchyard-provider")
        .map(|(_, value)| value.clone())
        .unwrap_or_default()
}
