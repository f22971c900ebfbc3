//! A client operation as metering sees it ([`Metered`]): prompt size and output allowance.
//! Lives on the providers' side so that `metering/` imports no provider.

use super::Operation;
use crate::metering::Metered;

impl Metered for Operation {
    fn prompt_bytes(&self) -> usize {
        Operation::prompt_bytes(self)
    }

    fn max_output_tokens(&self, model_default: Option<u32>) -> Option<u32> {
        Operation::max_output_tokens(self).or(model_default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::embeddings::EmbeddingsRequest;
    use crate::providers::testing::chat_operation;

    fn chat(max_tokens: Option<u32>) -> Option<Operation> {
        let mut body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "12345678"}]});
        if let Some(max) = max_tokens {
            body["max_tokens"] = max.into();
        }
        Some(chat_operation(body))
    }

    #[test]
    fn a_chat_request_reports_its_prompt_and_its_cap_else_the_models() {
        let capped = chat(Some(10));
        assert_eq!(capped.as_ref().map(Metered::prompt_bytes), Some(8));
        assert_eq!(
            capped.map(|op| Metered::max_output_tokens(&op, Some(100))),
            Some(Some(10))
        );
        let uncapped = chat(None).map(|op| Metered::max_output_tokens(&op, Some(100)));
        assert_eq!(uncapped, Some(Some(100)));
    }

    #[test]
    fn embeddings_produce_no_output_tokens() {
        let body = serde_json::json!({"model": "e", "input": "abcd"});
        let op = serde_json::from_value::<EmbeddingsRequest>(body)
            .ok()
            .map(Operation::Embeddings);
        assert_eq!(
            op.map(|op| Metered::max_output_tokens(&op, Some(100))),
            Some(Some(0))
        );
    }
}
