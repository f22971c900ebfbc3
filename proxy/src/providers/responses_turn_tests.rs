use super::*;
use crate::config::testing::compile_yaml;
use crate::dialects::responses::{decode_request, ResponsesRequest, TurnContext};
use crate::providers::{native_responses, Generation};
use crate::routing::{Plan, PlannedAttempt};
use serde_json::json;
use std::sync::Arc;

const YAML: &str = r#"version: 1
providers:
  oai: { kind: openai, base_url: "http://127.0.0.1:9001/v1", responses: native }
  chat: { kind: openai, base_url: "http://127.0.0.1:9002/v1" }
  claude: { kind: anthropic, base_url: "http://127.0.0.1:9003", api_key: k }
models:
  m:
    sticky_reasoning: true
    targets:
      - { provider: chat, model: gpt, price: free }
      - { provider: claude, model: claude-sonnet-4-5, price: free }
      - { provider: oai, model: gpt, price: free }
"#;

fn model() -> Arc<crate::config::Model> {
    compile_yaml(YAML, &[]).unwrap().models["m"].clone()
}

fn operation(body: serde_json::Value, reasoning_from: Option<&str>) -> Operation {
    let wire: ResponsesRequest = serde_json::from_value(body.clone()).unwrap();
    let items = wire.input_items();
    Operation::Generate(Box::new(Generation {
        request: decode_request(&wire, &items).unwrap(),
        body: body.to_string().into(),
        betas: Vec::new(),
        responses: Some(Arc::new(TurnContext::new(
            &wire,
            &items,
            reasoning_from.map(str::to_owned),
        ))),
    }))
}

fn replaying() -> serde_json::Value {
    json!({"model": "m", "input": [
        {"role": "user", "content": "q"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "t"}],
         "encrypted_content": "sig"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"}]},
        {"role": "user", "content": "more"}]})
}

#[test]
fn builtin_tools_and_items_go_only_to_native_targets() {
    let model = model();
    let [chat, claude, native] = [&model.targets[0], &model.targets[1], &model.targets[2]];
    let tools = operation(
        json!({"model": "m", "input": "q", "tools": [{"type": "web_search"}]}),
        None,
    );
    for target in [chat, claude] {
        match adapt(target, &tools, "r") {
            Err(TranslateError::Refused { param, message }) => {
                assert_eq!(param, "tools[0]");
                assert!(message.contains("web_search"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(adapt(native, &tools, "r"), Ok(None)));
    let items = operation(
        json!({"model": "m", "input": [{"role": "user", "content": "q"},
            {"type": "file_search_call", "id": "fs_1"}]}),
        None,
    );
    assert!(matches!(adapt(chat, &items, "r"),
        Err(TranslateError::Refused { param, .. }) if param == "input[1]"));
    assert!(matches!(adapt(native, &items, "r"), Ok(None)));
}

#[test]
fn reasoning_reaches_only_its_own_provider() {
    let model = model();
    let [chat, claude, native] = [&model.targets[0], &model.targets[1], &model.targets[2]];
    let from_claude = operation(replaying(), Some("claude"));
    assert!(matches!(adapt(claude, &from_claude, "r"), Ok(None)));
    let Ok(Some(Operation::Generate(stripped))) = adapt(chat, &from_claude, "r") else {
        panic!("reasoning is dropped for another provider");
    };
    assert!(!stripped.request.has_thinking());
    assert_eq!(stripped.request.messages.len(), 3);
    // The native body drops it itself.
    assert!(matches!(adapt(native, &from_claude, "r"), Ok(None)));
    let Operation::Generate(generation) = &from_claude else {
        unreachable!()
    };
    let body: serde_json::Value =
        serde_json::from_slice(&native_responses::request_body(generation, native).unwrap())
            .unwrap();
    assert_eq!(body["input"].as_array().unwrap().len(), 3);
    assert_eq!(body["store"], false);
    assert_eq!(body["model"], "gpt");
    // Reasoning of unknown origin goes to native targets only.
    let unknown = operation(replaying(), None);
    let Operation::Generate(generation) = &unknown else {
        unreachable!()
    };
    let body: serde_json::Value =
        serde_json::from_slice(&native_responses::request_body(generation, native).unwrap())
            .unwrap();
    assert_eq!(body["input"][1]["encrypted_content"], "sig");
    assert!(matches!(adapt(claude, &unknown, "r"), Ok(Some(_))));
}

#[test]
fn sticky_reasoning_puts_the_producing_provider_first() {
    let model = model();
    let plan = || Plan {
        attempts: model
            .targets
            .iter()
            .map(|target| PlannedAttempt {
                model: model.clone(),
                target: target.clone(),
            })
            .collect(),
        skipped: Vec::new(),
    };
    let order = |plan: Plan| -> Vec<String> {
        plan.attempts
            .iter()
            .map(|a| a.target.provider.name.clone())
            .collect()
    };
    let sticky_plan = sticky(plan(), &operation(replaying(), Some("oai")));
    assert_eq!(order(sticky_plan), ["oai", "chat", "claude"]);
    let plain = sticky(
        plan(),
        &operation(json!({"model": "m", "input": "q"}), Some("oai")),
    );
    assert_eq!(order(plain), ["chat", "claude", "oai"]);
}
