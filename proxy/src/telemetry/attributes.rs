//! The attribute names Switchyard's spans carry (the OpenTelemetry GenAI and HTTP semantic
//! conventions, and `switchyard.*`), and how a request's facts map to their values. The full
//! list, with examples, is in docs/tracing.md.

use crate::config::ProviderKind;
use crate::endpoint::Api;
use crate::providers::Operation;

pub const GEN_AI_OPERATION: &str = "gen_ai.operation.name";
pub const GEN_AI_PROVIDER: &str = "gen_ai.provider.name";
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
pub const GEN_AI_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
pub const GEN_AI_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
pub const GEN_AI_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
pub const GEN_AI_STREAM: &str = "gen_ai.request.stream";
pub const HTTP_METHOD: &str = "http.request.method";
pub const HTTP_ROUTE: &str = "http.route";
pub const HTTP_STATUS: &str = "http.response.status_code";
pub const ERROR_TYPE: &str = "error.type";
pub const SERVER_ADDRESS: &str = "server.address";
pub const TEAM: &str = "switchyard.team";
pub const API: &str = "switchyard.api";
pub const REQUEST_ID: &str = "switchyard.request_id";
/// The provider's name in `routes.yaml` (`gen_ai.provider.name` is its kind).
pub const PROVIDER: &str = "switchyard.provider";
pub const TARGET: &str = "switchyard.target";
pub const MODEL: &str = "switchyard.model";
pub const ATTEMPTS: &str = "switchyard.attempts";
pub const ATTEMPT_OUTCOME: &str = "switchyard.attempt.outcome";
/// Why the attempt was made: `first`, `failover`, `hedge` or `resume`.
pub const ATTEMPT_ROLE: &str = "switchyard.attempt.role";
pub const COST_USD: &str = "switchyard.cost_usd";
pub const STATUS: &str = "switchyard.status";

/// `gen_ai.provider.name`: the GenAI conventions' well-known name of a provider kind.
pub fn gen_ai_provider(kind: &ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi(_) => "openai",
        ProviderKind::Azure(_) => "azure.ai.openai",
        ProviderKind::Bedrock(_) => "aws.bedrock",
        ProviderKind::Anthropic(_) => "anthropic",
    }
}

/// `gen_ai.operation.name` of a client API; `None` where no model is called.
pub fn gen_ai_operation(api: Api) -> Option<&'static str> {
    match api {
        Api::Chat | Api::Responses | Api::Messages => Some("chat"),
        Api::Embeddings => Some("embeddings"),
        Api::CountTokens => Some("count_tokens"),
        Api::Models | Api::Unknown => None,
    }
}

/// `gen_ai.operation.name` of an upstream attempt.
pub fn gen_ai_operation_of(operation: &Operation) -> &'static str {
    match operation {
        Operation::Generate(_) => "chat",
        Operation::Embeddings(_) => "embeddings",
        Operation::CountTokens(_) => "count_tokens",
    }
}

/// `http.route`: the path template of a client API (never the client's free text).
pub fn route(api: Api, path: &str) -> Option<&'static str> {
    match api {
        Api::Chat => Some("/v1/chat/completions"),
        Api::Responses if path == "/v1/responses" => Some("/v1/responses"),
        Api::Responses => Some("/v1/responses/{id}"),
        Api::Messages => Some("/v1/messages"),
        Api::CountTokens => Some("/v1/messages/count_tokens"),
        Api::Embeddings => Some("/v1/embeddings"),
        Api::Models if path == "/v1/models" => Some("/v1/models"),
        Api::Models => Some("/v1/models/{model}"),
        Api::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates_not_client_text() {
        assert_eq!(
            route(Api::of("/v1/responses/resp_123"), "/v1/responses/resp_123"),
            Some("/v1/responses/{id}")
        );
        assert_eq!(
            route(Api::of("/v1/models/gpt"), "/v1/models/gpt"),
            Some("/v1/models/{model}")
        );
        assert_eq!(route(Api::of("/anything"), "/anything"), None);
        assert_eq!(gen_ai_operation(Api::Messages), Some("chat"));
        assert_eq!(gen_ai_operation(Api::Models), None);
    }
}
