//! What an upstream simulator received: every simulator keeps its last
//! [`loadtest::CAPTURE_LIMIT`] inference requests (path, JSON body, arrival order), read in
//! process with [`CapturesRequests`] or over HTTP with [`fetch_captured`]; plus a
//! dialect-blind search for text in a captured body ("the second upstream got the earlier
//! turns", "the resumed attempt got the delivered text").

use std::net::SocketAddr;

pub use loadtest::{CapturedRequest, CapturedRequests, CapturesRequests, CAPTURE_LIMIT};
use serde_json::Value;

use crate::http::{http_client, within};

/// `GET /_sim/requests` of the simulator listening on `addr` (its `addr()`): for
/// simulators that run in another process. Oldest first.
pub async fn fetch_captured(addr: SocketAddr) -> Vec<CapturedRequest> {
    let url = format!("http://{addr}/_sim/requests");
    let response = within(http_client().get(&url).send())
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status().as_u16(), 200, "GET {url}");
    let captured: CapturedRequests = within(response.json())
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not a capture list: {e}"));
    captured.requests
}

/// Every string value in `body`, depth first, in document order (message texts, tool
/// arguments, model names...), whatever the dialect.
pub fn strings_in(body: &Value) -> Vec<&str> {
    let mut found = Vec::new();
    collect_strings(body, &mut found);
    found
}

fn collect_strings<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::String(text) => found.push(text),
        Value::Array(items) => items.iter().for_each(|item| collect_strings(item, found)),
        Value::Object(fields) => fields
            .values()
            .for_each(|field| collect_strings(field, found)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Whether some string in `body` contains `needle`.
pub fn body_mentions(body: &Value, needle: &str) -> bool {
    strings_in(body).iter().any(|text| text.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_text_in_any_dialect() {
        let chat = json!({"model": "m", "messages": [{"role": "user", "content": "turn one"},
            {"role": "assistant", "content": [{"type": "text", "text": "answer one"}]}]});
        assert!(body_mentions(&chat, "answer one"));
        let converse = json!({"messages": [{"role": "user", "content": [{"text": "turn one"}]}]});
        assert!(body_mentions(&converse, "turn one"));
        assert!(!body_mentions(&converse, "answer one"));
        assert_eq!(
            strings_in(&chat),
            ["m", "user", "turn one", "assistant", "text", "answer one"]
        );
    }
}
