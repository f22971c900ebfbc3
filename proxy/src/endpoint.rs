//! Which client API a request calls, read from its path and headers before anything else:
//! it names the `api` label of metrics, ledger rows and access-log lines, says whether
//! `x-api-key` carries the key, and picks the dialect errors are written in
//! (docs/http-api.md#errors).

/// The client API of a request, by path. Low-cardinality on purpose: it is a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `/v1/responses*`.
    Responses,
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `GET /v1/models[/{model}]`.
    Models,
    /// Any other path (answered 404).
    Unknown,
}

impl Api {
    pub fn of(path: &str) -> Api {
        match path {
            "/v1/chat/completions" => Api::Chat,
            "/v1/messages" => Api::Messages,
            "/v1/messages/count_tokens" => Api::CountTokens,
            "/v1/embeddings" => Api::Embeddings,
            "/v1/models" => Api::Models,
            _ if path.starts_with("/v1/models/") => Api::Models,
            _ if path == "/v1/responses" || path.starts_with("/v1/responses/") => Api::Responses,
            _ => Api::Unknown,
        }
    }

    /// The `api` label of metrics, ledger rows and access-log lines.
    pub fn label(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Responses => "responses",
            Api::Messages => "messages",
            Api::CountTokens => "count_tokens",
            Api::Embeddings => "embeddings",
            Api::Models => "models",
            Api::Unknown => "unknown",
        }
    }
}

/// The shape of the error bodies a client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorDialect {
    /// `{"error": {"message", "type", "param", "code"}}`.
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}`, with Anthropic's status/type pairs.
    Anthropic,
}

/// The API a request calls and whether its client speaks Anthropic's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub api: Api,
    /// The request carries `anthropic-version` (every Anthropic SDK sends it).
    pub anthropic_version: bool,
}

impl Endpoint {
    pub fn new(path: &str, anthropic_version: bool) -> Self {
        Self {
            api: Api::of(path),
            anthropic_version,
        }
    }

    /// Whether the client speaks Anthropic's protocol here: always on `/v1/messages*`; on the
    /// models list and unknown paths when it sent `anthropic-version` (the Anthropic SDKs'
    /// `models.list()`); never on the OpenAI paths, whatever headers come along.
    pub fn is_anthropic(&self) -> bool {
        match self.api {
            Api::Messages | Api::CountTokens => true,
            Api::Models | Api::Unknown => self.anthropic_version,
            Api::Chat | Api::Responses | Api::Embeddings => false,
        }
    }

    /// Whether `x-api-key` is read as the team key (DESIGN: "as `x-api-key` too on the
    /// Anthropic paths"); `Authorization: Bearer` is read everywhere.
    pub fn takes_x_api_key(&self) -> bool {
        self.is_anthropic()
    }

    pub fn error_dialect(&self) -> ErrorDialect {
        if self.is_anthropic() {
            ErrorDialect::Anthropic
        } else {
            ErrorDialect::OpenAi
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_api() {
        for (path, api) in [
            ("/v1/chat/completions", Api::Chat),
            ("/v1/messages", Api::Messages),
            ("/v1/messages/count_tokens", Api::CountTokens),
            ("/v1/embeddings", Api::Embeddings),
            ("/v1/models", Api::Models),
            ("/v1/models/claude-sonnet", Api::Models),
            ("/v1/responses", Api::Responses),
            ("/v1/responses/resp_1/input_items", Api::Responses),
            ("/v1/messagesx", Api::Unknown),
            ("/v1/complete", Api::Unknown),
            ("/", Api::Unknown),
        ] {
            assert_eq!(Api::of(path), api, "{path}");
        }
    }

    #[test]
    fn anthropic_errors_on_messages_paths_and_anthropic_clients_only() {
        let anthropic = |path, version| Endpoint::new(path, version).is_anthropic();
        assert!(anthropic("/v1/messages", false));
        assert!(anthropic("/v1/messages/count_tokens", false));
        assert!(anthropic("/v1/models", true));
        assert!(anthropic("/v1/models/m", true));
        assert!(anthropic("/v1/nothing", true));
        assert!(!anthropic("/v1/models", false));
        assert!(!anthropic("/v1/nothing", false));
        // An OpenAI path stays OpenAI even when a client adds Anthropic's header.
        assert!(!anthropic("/v1/chat/completions", true));
        assert!(!anthropic("/v1/embeddings", true));
        assert_eq!(
            Endpoint::new("/v1/messages", false).error_dialect(),
            ErrorDialect::Anthropic
        );
        assert_eq!(
            Endpoint::new("/v1/chat/completions", true).error_dialect(),
            ErrorDialect::OpenAi
        );
        assert!(Endpoint::new("/v1/messages", false).takes_x_api_key());
        assert!(!Endpoint::new("/v1/chat/completions", false).takes_x_api_key());
    }
}
