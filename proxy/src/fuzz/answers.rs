//! Fuzz target: each provider's complete-answer translator (OpenAI and Azure Chat answers,
//! Bedrock Converse and Claude's native body, Anthropic Messages, embeddings and counts)
//! for clients of each dialect, and the client dialect's encoder of what it reads.

use bytes::Bytes;

use super::{fuzz, generation, json_documents, FIXTURE};
use crate::api::embeddings::EmbeddingsRequest;
use crate::dialects::encode_answer;
use crate::providers::{decode_answer, Decoded, Operation};

fn answer(body: &[u8]) {
    let bodies = [Bytes::copy_from_slice(body)];
    let embeddings: EmbeddingsRequest =
        serde_json::from_value(serde_json::json!({"model": "m", "input": ["a", "b"]}))
            .unwrap_or_else(|e| panic!("{e}"));
    for target in FIXTURE.targets() {
        for messages_dialect in [false, true] {
            let generation = generation(messages_dialect, false);
            let operation = Operation::Generate(Box::new(generation.clone()));
            if let Ok(Decoded::Answer(answer)) = decode_answer(&target, &operation, &bodies) {
                let _ = encode_answer(&generation.request, &answer);
            }
            let count = Operation::CountTokens(Box::new(generation));
            let _ = decode_answer(&target, &count, &bodies);
        }
        let operation = Operation::Embeddings(embeddings.clone());
        let _ = decode_answer(&target, &operation, &bodies);
        let _ = decode_answer(&target, &operation, &[bodies[0].clone(), bodies[0].clone()]);
    }
}

#[test]
fn provider_answers() {
    fuzz(
        "provider answer",
        "answers",
        json_documents("answers"),
        answer,
    );
}
