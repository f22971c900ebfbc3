//! `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}` and
//! `GET /v1/responses/{id}/input_items` (docs/http-api.md, "Stored responses"): the caller's
//! team's stored turns only; another team's, an expired or a deleted id is OpenAI's 404.
//! They read the database, not the cache, so a delete made through another replica sharing
//! it is seen at once.

use bytes::Bytes;
use serde_json::value::RawValue;

use super::wire::{Deleted, ItemPage, ItemsQuery};
use super::{ConversationStore, StoreError};
use crate::error::{ProxyError, RequestError};
use crate::relay::{Ending, Reply, RequestRecord};

/// A stored-response request, as [`route`] recognised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredRequest<'a> {
    Get(&'a str),
    Delete(&'a str),
    InputItems(&'a str),
}

/// The stored-response request `method` `path` is, if it is one.
pub fn route<'a>(method: &str, path: &'a str) -> Option<StoredRequest<'a>> {
    let rest = path.strip_prefix("/v1/responses/")?;
    let (id, tail) = match rest.split_once('/') {
        Some((id, tail)) => (id, Some(tail)),
        None => (rest, None),
    };
    if id.is_empty() {
        return None;
    }
    match (method, tail) {
        ("GET", None) => Some(StoredRequest::Get(id)),
        ("DELETE", None) => Some(StoredRequest::Delete(id)),
        ("GET", Some("input_items")) => Some(StoredRequest::InputItems(id)),
        _ => None,
    }
}

/// Answers `request` for `team`, finishing `record` (called from the handler).
pub async fn serve(
    request: StoredRequest<'_>,
    team: &str,
    query: Option<&str>,
    record: RequestRecord,
) -> Result<Reply, (ProxyError, RequestRecord)> {
    let store = record.state().conversations.clone();
    match answer(&store, team, request, query).await {
        Ok(body) => {
            record.finish(Ending::Status(200), None);
            Ok(Reply::json(200, body))
        }
        Err(error) => Err((error, record)),
    }
}

/// The JSON body of a successful answer, or the error to render.
pub async fn answer(
    store: &ConversationStore,
    team: &str,
    request: StoredRequest<'_>,
    query: Option<&str>,
) -> Result<Bytes, ProxyError> {
    match request {
        StoredRequest::Get(id) => {
            let turn = found(id, store.get_current(team, id).await)?;
            Ok(Bytes::from(turn.response.clone()))
        }
        StoredRequest::Delete(id) => {
            if !store.delete(team, id).await? {
                return Err(not_found(id));
            }
            Ok(json(&Deleted::new(id)))
        }
        StoredRequest::InputItems(id) => {
            let query = ItemsQuery::from_query(query).map_err(|invalid| RequestError::Invalid {
                message: invalid.message,
                param: Some(invalid.param),
            })?;
            let turn = found(id, store.get_current(team, id).await)?;
            let items: Vec<&RawValue> =
                serde_json::from_str(&turn.input_items).map_err(|_| StoreError::Invalid {
                    id: id.to_owned(),
                    field: "input_items",
                    expected: "array",
                })?;
            let page = ItemPage::of(items, &query).map_err(|invalid| RequestError::Invalid {
                message: invalid.message,
                param: Some(invalid.param),
            })?;
            Ok(json(&page))
        }
    }
}

fn found<T>(id: &str, lookup: Result<Option<T>, StoreError>) -> Result<T, ProxyError> {
    lookup?.ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> ProxyError {
    RequestError::ResponseNotFound { id: id.to_owned() }.into()
}

fn json(value: &impl serde::Serialize) -> Bytes {
    // Serializing borrowed strings and raw JSON cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversations::record::turn;
    use crate::conversations::store::now_secs;
    use crate::conversations::{ConversationSettings, ResponsesMetrics};
    use crate::endpoint::ErrorDialect;
    use serde_json::{json, Value};

    async fn filled_store() -> ConversationStore {
        let store = ConversationStore::in_memory(
            &ConversationSettings::default(),
            ResponsesMetrics::unregistered(),
        );
        let mut first = turn("resp_a", "team-a", None);
        first.input_items = json!([
            {"id": "msg_1", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "one"}]},
            {"id": "msg_2", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "two"}]},
            {"id": "fc_out_3", "type": "function_call_output", "call_id": "call_1", "output": "42"}
        ])
        .to_string();
        first.response =
            json!({"id": "resp_a", "object": "response", "status": "completed", "output": []})
                .to_string();
        store.put(first).await.unwrap();
        store.put(turn("resp_b", "team-b", None)).await.unwrap();
        let mut expired = turn("resp_old", "team-a", None);
        expired.created_at = now_secs() - 31 * 86_400;
        store.put(expired).await.unwrap();
        store
    }

    async fn body(
        store: &ConversationStore,
        request: StoredRequest<'_>,
        query: Option<&str>,
    ) -> Value {
        let bytes = answer(store, "team-a", request, query).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// The status and OpenAI error body a client would get.
    async fn error(
        store: &ConversationStore,
        request: StoredRequest<'_>,
        query: Option<&str>,
    ) -> (u16, Value) {
        let error = answer(store, "team-a", request, query).await.unwrap_err();
        let (status, body) = error.to_response().render(ErrorDialect::OpenAi);
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[test]
    fn routes_only_the_stored_response_paths() {
        assert_eq!(
            route("GET", "/v1/responses/resp_1"),
            Some(StoredRequest::Get("resp_1"))
        );
        assert_eq!(
            route("DELETE", "/v1/responses/resp_1"),
            Some(StoredRequest::Delete("resp_1"))
        );
        assert_eq!(
            route("GET", "/v1/responses/resp_1/input_items"),
            Some(StoredRequest::InputItems("resp_1"))
        );
        for (method, path) in [
            ("POST", "/v1/responses"),
            ("GET", "/v1/responses"),
            ("GET", "/v1/responses/"),
            ("POST", "/v1/responses/resp_1"),
            ("DELETE", "/v1/responses/resp_1/input_items"),
            ("POST", "/v1/responses/resp_1/cancel"),
            ("GET", "/v1/responses/resp_1/other"),
            ("GET", "/v1/chat/completions"),
        ] {
            assert_eq!(route(method, path), None, "{method} {path}");
        }
    }

    #[tokio::test]
    async fn get_returns_the_stored_response_object() {
        let store = filled_store().await;
        let got = body(&store, StoredRequest::Get("resp_a"), None).await;
        assert_eq!(
            got,
            json!({"id": "resp_a", "object": "response", "status": "completed", "output": []})
        );
    }

    #[tokio::test]
    async fn unknown_other_teams_and_expired_ids_are_404() {
        let store = filled_store().await;
        for id in ["resp_none", "resp_b", "resp_old"] {
            for request in [
                StoredRequest::Get(id),
                StoredRequest::Delete(id),
                StoredRequest::InputItems(id),
            ] {
                let (status, body) = error(&store, request, None).await;
                assert_eq!(status, 404, "{request:?}");
                assert_eq!(body["error"]["type"], "invalid_request_error");
                assert_eq!(body["error"]["code"], "not_found");
                assert_eq!(
                    body["error"]["message"],
                    format!("Response with id '{id}' not found.")
                );
            }
        }
        // Team b's turn is untouched by team a's delete.
        assert!(store
            .get_current("team-b", "resp_b")
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test]
    async fn delete_answers_openais_receipt_then_404() {
        let store = filled_store().await;
        let deleted = body(&store, StoredRequest::Delete("resp_a"), None).await;
        assert_eq!(
            deleted,
            json!({"id": "resp_a", "object": "response", "deleted": true})
        );
        let (status, _) = error(&store, StoredRequest::Get("resp_a"), None).await;
        assert_eq!(status, 404);
        let (status, _) = error(&store, StoredRequest::Delete("resp_a"), None).await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn input_items_pages_the_stored_items() {
        let store = filled_store().await;
        let page = body(&store, StoredRequest::InputItems("resp_a"), None).await;
        assert_eq!(page["object"], "list");
        assert_eq!(page["first_id"], "fc_out_3");
        assert_eq!(page["last_id"], "msg_1");
        assert_eq!(page["has_more"], false);
        assert_eq!(
            page["data"][0]["output"], "42",
            "items are served as stored"
        );
        let asc = body(
            &store,
            StoredRequest::InputItems("resp_a"),
            Some("order=asc&limit=1&after=msg_1"),
        )
        .await;
        assert_eq!(asc["data"].as_array().unwrap().len(), 1);
        assert_eq!(asc["first_id"], "msg_2");
        assert_eq!(asc["has_more"], true);
        let (status, body) = error(
            &store,
            StoredRequest::InputItems("resp_a"),
            Some("limit=500"),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["param"], "limit");
    }

    #[tokio::test]
    async fn a_failing_store_is_a_503_without_its_details() {
        let error: ProxyError =
            StoreError::Database("connection to db.internal refused".to_owned()).into();
        let (status, body) = error.to_response().render(ErrorDialect::OpenAi);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 503);
        assert_eq!(body["error"]["code"], "conversation_store_unavailable");
        assert!(!body.to_string().contains("db.internal"), "{body}");
    }
}
