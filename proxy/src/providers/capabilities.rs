//! What a request may need that not every target can carry, checked before a target's
//! request is built: a target that cannot carry it is skipped (the attempt loop's
//! `TranslateError::Refused`), and when no target of the model can, the client gets a 400
//! naming the feature. `/admin/routes` shows the same verdicts per target
//! (docs/messages-dialect.md).

use crate::config::{ProviderKind, Target};
use crate::providers::{Operation, TranslateError};

/// Whether `target` can replay thinking blocks with their signatures, and redacted
/// thinking: only Claude verifies them (and rejects a conversation whose signatures are
/// missing), so only Claude targets can continue such a conversation. OpenAI-format
/// upstreams have no field for them, and dropping them would silently change the
/// conversation the client sent.
pub fn replays_thinking(target: &Target) -> bool {
    match &target.provider.kind {
        ProviderKind::OpenAi(_) | ProviderKind::Azure(_) => false,
        ProviderKind::Bedrock(_) => super::bedrock::invoke::is_claude(&target.upstream_model),
        ProviderKind::Anthropic(_) => true,
    }
}

/// Refuses `operation` for `target` when it needs what the target cannot carry.
pub fn check(target: &Target, operation: &Operation) -> Result<(), TranslateError> {
    let Operation::Generate(generation) = operation else {
        return Ok(());
    };
    if let Some((i, j)) = generation.request.thinking_to_replay() {
        // A native Responses target takes the client's reasoning items in its own body.
        if !replays_thinking(target) && !super::native_responses::serves(target, operation) {
            return Err(TranslateError::Refused {
                param: "thinking".to_owned(),
                message: format!(
                    "`messages[{i}].content[{j}]` is a thinking block to replay (signed or \
                     redacted), which only Claude targets accept; a {} target cannot carry it",
                    target.provider.kind.label()
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::compile_yaml;
    use crate::dialects::messages::{decode_request, MessagesRequest};
    use crate::providers::testing::chat_operation;
    use crate::providers::Generation;
    use serde_json::json;

    /// One target per kind that matters: OpenAI-format, Claude on Bedrock, Nova on Bedrock.
    fn targets() -> Vec<std::sync::Arc<Target>> {
        let yaml = r#"version: 1
providers:
  oai: { kind: openai, base_url: "http://127.0.0.1:9001/v1" }
  rock:
    kind: bedrock
    region: us-east-1
    access_key_id: AKIDEXAMPLE
    secret_access_key: example-secret
models:
  m:
    targets:
      - { provider: oai, model: gpt, price: free }
      - { provider: rock, model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", price: free }
      - { provider: rock, model: "amazon.nova-lite-v1:0", price: free }
"#;
        let policy = compile_yaml(yaml, &[]).unwrap();
        policy.models["m"].targets.clone()
    }

    fn messages(body: serde_json::Value) -> Operation {
        let text = body.to_string();
        let wire: MessagesRequest = serde_json::from_str(&text).unwrap();
        Operation::Generate(Box::new(Generation {
            request: decode_request(wire).unwrap(),
            body: text.into(),
            betas: Vec::new(),
            responses: None,
        }))
    }

    fn replaying(block: serde_json::Value) -> Operation {
        messages(json!({"model": "m", "max_tokens": 2048, "messages": [
            {"role": "user", "content": "Is 7 prime?"},
            {"role": "assistant", "content": [block, {"type": "text", "text": "Yes."}]},
            {"role": "user", "content": "And 9?"}]}))
    }

    #[test]
    fn only_claude_targets_take_replayed_thinking() {
        let targets = targets();
        let verdicts: Vec<bool> = targets.iter().map(|t| replays_thinking(t)).collect();
        assert_eq!(verdicts, [false, true, false]);
        for block in [
            json!({"type": "thinking", "thinking": "hmm", "signature": "EqQB"}),
            json!({"type": "redacted_thinking", "data": "b3BhcXVl"}),
        ] {
            let operation = replaying(block);
            for target in &targets {
                let verdict = check(target, &operation);
                if replays_thinking(target) {
                    assert_eq!(verdict, Ok(()));
                } else {
                    match verdict {
                        Err(TranslateError::Refused { param, message }) => {
                            assert_eq!(param, "thinking");
                            assert!(message.contains("messages[1].content[0]"), "{message}");
                        }
                        other => panic!("{other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn requests_without_replayed_thinking_go_anywhere() {
        let plain = messages(json!({"model": "m", "max_tokens": 5,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "hi"}]}));
        let chat =
            chat_operation(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
        for target in &targets() {
            assert_eq!(check(target, &plain), Ok(()));
            assert_eq!(check(target, &chat), Ok(()));
        }
    }
}
