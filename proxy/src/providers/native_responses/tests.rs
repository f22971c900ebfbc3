use super::stream::ResponsesRelay;
use crate::providers::StreamStep;
use serde_json::json;

fn text(step: &StreamStep) -> String {
    match step {
        StreamStep::Emit(bytes) | StreamStep::Last(bytes) => {
            String::from_utf8(bytes.to_vec()).unwrap()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_relayed_stream_holds_the_start_renames_the_model_and_ends_with_completed() {
    let mut relay = ResponsesRelay::new("alias");
    let created = json!({"type": "response.created", "sequence_number": 0,
        "response": {"id": "resp_1", "model": "gpt-5", "output": []}});
    assert_eq!(
        relay.on_event(Some("response.created"), &created.to_string()),
        StreamStep::Skip
    );
    let delta = r#"{"type":"response.output_text.delta","sequence_number":1,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi"}"#;
    let out = text(&relay.on_event(Some("response.output_text.delta"), delta));
    assert!(out.starts_with("event: response.created\ndata: "), "{out}");
    assert!(out.contains("\"model\":\"alias\""), "{out}");
    assert!(
        out.ends_with(&format!(
            "event: response.output_text.delta\ndata: {delta}\n\n"
        )),
        "deltas are relayed byte for byte: {out}"
    );
    let completed = json!({"type": "response.completed", "sequence_number": 2,
        "response": {"id": "resp_1", "model": "gpt-5", "output": [], "usage": {
            "input_tokens": 9, "input_tokens_details": {"cached_tokens": 4},
            "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 1},
            "total_tokens": 11}}});
    let step = relay.on_event(None, &completed.to_string());
    assert!(matches!(step, StreamStep::Last(_)));
    let usage = relay.usage().unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.cached_tokens,
            usage.completion_tokens
        ),
        (9, 4, 2)
    );
    assert_eq!(relay.completed().unwrap()["model"], "alias");
    assert_eq!(relay.content_deltas(), 1);
}

#[test]
fn failures_in_a_relayed_stream_fail_it() {
    let mut relay = ResponsesRelay::new("alias");
    let failed = json!({"type": "response.failed", "sequence_number": 3, "response": {
        "id": "resp_1", "status": "failed", "error": {"code": "rate_limit_exceeded",
        "message": "slow down"}}});
    match relay.on_event(None, &failed.to_string()) {
        StreamStep::Failed(error) => {
            assert!(error.capacity);
            assert_eq!(error.message, "slow down");
        }
        other => panic!("{other:?}"),
    }
    let error = json!({"type": "error", "code": "server_error", "message": "boom", "param": null});
    assert!(matches!(relay.on_event(Some("error"), &error.to_string()),
        StreamStep::Failed(e) if !e.capacity && e.message == "boom"));
    assert!(matches!(
        relay.on_event(None, "garbage"),
        StreamStep::Failed(_)
    ));
}
