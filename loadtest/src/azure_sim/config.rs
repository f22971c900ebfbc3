//! How an Azure simulator behaves: its resource's auth, deployments and their quotas.

use std::time::Duration;

/// Static behaviour of one [`AzureSim`](super::AzureSim) (one Azure OpenAI resource).
#[derive(Clone, Debug)]
pub struct AzureSimConfig {
    /// Shown in answers and the `x-sim-name` header.
    pub name: String,
    /// The resource key: accepted as `api-key: <key>` (and, as on the v1 API, as a bearer).
    pub api_key: Option<String>,
    /// An Entra access token accepted as `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    /// The fake Entra endpoint's client secret (`POST /{tenant}/oauth2/v2.0/token`).
    pub entra_client_secret: Option<String>,
    /// The federated token (workload identity) the fake Entra endpoint accepts as
    /// `client_assertion` instead of a client secret.
    pub federated_token: Option<String>,
    /// The managed-identity endpoints' secret: the App Service endpoint (`GET /msi/token`)
    /// requires it as `x-identity-header`. The IMDS endpoint requires `Metadata: true`.
    pub identity_header: Option<String>,
    /// Lifetime of the tokens the fake Entra and managed-identity endpoints issue.
    pub token_lifetime: Duration,
    pub deployments: Vec<AzureDeployment>,
    pub ttft: Duration,
    pub inter_token: Duration,
    pub output_tokens: usize,
    /// Prompt tokens every chat answer reports as cached (see `SimConfig::cached_prompt_tokens`).
    pub cached_prompt_tokens: u64,
}

impl Default for AzureSimConfig {
    fn default() -> Self {
        Self {
            name: "azure-sim".to_owned(),
            api_key: None,
            bearer_token: None,
            entra_client_secret: None,
            federated_token: None,
            identity_header: None,
            token_lifetime: Duration::from_secs(3600),
            deployments: Vec::new(),
            ttft: Duration::ZERO,
            inter_token: Duration::ZERO,
            output_tokens: 8,
            cached_prompt_tokens: 0,
        }
    }
}

/// One deployment: its name (in URLs, or the v1 body's `model`), the model it serves
/// (reported in answers' `model`), and its quota.
#[derive(Clone, Debug)]
pub struct AzureDeployment {
    pub name: String,
    pub model: String,
    /// Requests per minute; the token quota is derived as 1,000 tokens per request.
    /// Drives `x-ratelimit-remaining-*` and the 429s with `retry-after-ms`.
    pub rpm: Option<u64>,
}

impl AzureDeployment {
    pub fn new(name: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            model: model.into(),
            rpm: None,
        }
    }

    pub fn with_rpm(mut self, rpm: u64) -> Self {
        self.rpm = Some(rpm);
        self
    }
}
