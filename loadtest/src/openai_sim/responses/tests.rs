//! The Responses shapes as the official SDK's stream accumulator reads them: item indices,
//! ids that stay the same from `added` to `done`, deltas that add up to the final text.

use serde_json::{json, Value};

use super::answer::ResponsesAnswer;
use super::request::{parse_responses, Brain, ResponsesPlan};
use super::wire::{event_frame, response_body, stream_events};
use crate::openai_sim::config::SimConfig;

fn plan(body: Value) -> ResponsesPlan {
    let brain = Brain {
        name: "openai-sim",
        output_tokens: 8,
    };
    parse_responses(body.to_string().as_bytes(), brain).expect("a valid request")
}

fn answer(plan: &ResponsesPlan) -> ResponsesAnswer {
    ResponsesAnswer::build(plan, &SimConfig::default(), "tag", 1)
}

/// The payloads of every event, with the sequence numbers a stream gives them.
fn events(plan: &ResponsesPlan) -> Vec<Value> {
    let answer = answer(plan);
    stream_events(&answer, &plan.request)
        .iter()
        .zip(0u64..)
        .map(|(event, seq)| {
            let frame = event_frame(event, seq).expect("serializable");
            let text = String::from_utf8(frame.to_vec()).expect("utf-8");
            let (head, data) = text.split_once("\ndata: ").expect("event and data lines");
            let data: Value = serde_json::from_str(data.trim_end()).expect("JSON data");
            assert_eq!(
                head,
                format!("event: {}", data["type"].as_str().unwrap_or(""))
            );
            data
        })
        .collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

#[test]
fn a_text_answer_streams_every_event_in_order() {
    let plan = plan(json!({"model": "gpt-test", "input": "hi", "stream": true}));
    let events = events(&plan);
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    expected.extend(["response.output_text.delta"; 8]);
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(types(&events), expected);
    let created = &events[0]["response"];
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["output"], json!([]));
    assert!(created["usage"].is_null());
    assert_eq!(events[2]["item"]["content"], json!([]));
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(text, "Hello from openai-sim tok4 tok5 tok6 tok7 tok8");
    for event in &events[2..events.len() - 1] {
        assert_eq!(event["output_index"], 0, "{event}");
    }
    let completed = &events[events.len() - 1]["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["id"], created["id"]);
    assert_eq!(completed["output"][0]["content"][0]["text"], text);
    assert_eq!(completed["usage"]["output_tokens"], 8);
}

#[test]
fn reasoning_comes_first_and_the_call_follows_at_the_next_index() {
    let plan = plan(
        json!({"model": "gpt-test", "input": "weather?", "stream": true,
        "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}}, "required": ["city"]}}]}),
    );
    let events = events(&plan);
    let kinds = types(&events);
    assert_eq!(kinds[2], "response.output_item.added");
    assert_eq!(events[2]["item"]["type"], "reasoning");
    assert_eq!(kinds[3], "response.reasoning_summary_part.added");
    let call_added = events
        .iter()
        .position(|e| e["type"] == "response.output_item.added" && e["output_index"] == 1)
        .expect("the call is announced");
    let call = &events[call_added]["item"];
    assert_eq!(
        (&call["type"], &call["arguments"], &call["name"]),
        (&json!("function_call"), &json!(""), &json!("get_weather"))
    );
    let arguments: String = events
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .inspect(|e| assert_eq!(e["item_id"], call["id"]))
        .map(|e| e["delta"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(arguments, r#"{"city":"sample"}"#);
    let done = events
        .iter()
        .find(|e| e["type"] == "response.function_call_arguments.done")
        .expect("arguments done");
    assert_eq!(done["name"], "get_weather");

    let response = &events[events.len() - 1]["response"];
    let output = response["output"].as_array().expect("output");
    assert_eq!(output.len(), 2);
    assert_eq!(output[0]["type"], "reasoning");
    assert!(output[0]["encrypted_content"]
        .as_str()
        .is_some_and(|c| c.starts_with("enc_openai-sim:")));
    assert_eq!(output[1]["call_id"], call["call_id"]);
    assert!(output[1]["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("fc_")));
    let usage = &response["usage"];
    let reasoning = usage["output_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .expect("reasoning tokens");
    assert!(reasoning > 0);
    assert_eq!(usage["output_tokens"].as_u64(), Some(reasoning + 5));
}

#[test]
fn the_plain_body_echoes_the_request_and_reports_usage() {
    let plan = plan(json!({"model": "gpt-test", "input": "abcd", "store": false,
        "instructions": "be brief", "max_output_tokens": 100, "temperature": 0.5,
        "metadata": {"k": "v"}, "text": {"format": {"type": "text"}, "verbosity": "low"},
        "tools": [{"type": "web_search"}]}));
    let answer = answer(&plan);
    let body: Value = serde_json::from_slice(&response_body(&answer, &plan.request).expect("body"))
        .expect("JSON");
    assert_eq!(body["object"], "response");
    assert!(body["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("resp_")));
    assert_eq!(body["status"], "completed");
    assert_eq!(body["store"], false);
    assert_eq!(body["instructions"], "be brief");
    assert_eq!(body["max_output_tokens"], 100);
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["metadata"], json!({"k": "v"}));
    assert_eq!(body["text"]["verbosity"], "low");
    assert_eq!(body["tools"], json!([{"type": "web_search"}]));
    assert_eq!(body["tool_choice"], "auto");
    assert!(body["error"].is_null() && body["previous_response_id"].is_null());
    let message = &body["output"][0];
    assert_eq!(message["type"], "message");
    assert_eq!(message["status"], "completed");
    assert_eq!(message["content"][0]["annotations"], json!([]));
    // "be brief" + "abcd" = 12 chars → 3 tokens, plus 3 for each of the two items.
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 9, "input_tokens_details": {"cached_tokens": 0},
               "output_tokens": 8, "output_tokens_details": {"reasoning_tokens": 0},
               "total_tokens": 17})
    );
}

#[test]
fn a_cut_answer_is_incomplete() {
    let plan = plan(
        json!({"model": "gpt-test", "input": "hi", "max_output_tokens": 16,
        "stream": true}),
    );
    let config = SimConfig {
        output_tokens: 20,
        ..SimConfig::default()
    };
    let answer = ResponsesAnswer::build(&plan, &config, "tag", 1);
    let events = stream_events(&answer, &plan.request);
    let last = events.last().expect("events");
    assert_eq!(last.name(), "response.incomplete");
    let body: Value = serde_json::from_slice(&response_body(&answer, &plan.request).expect("body"))
        .expect("JSON");
    assert_eq!(body["status"], "incomplete");
    assert_eq!(body["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(body["output"][0]["status"], "incomplete");
    assert_eq!(body["usage"]["output_tokens"], 16);
}
