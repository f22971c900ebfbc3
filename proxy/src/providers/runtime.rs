//! Live state of providers that outlives a policy snapshot: credential caches refreshed in
//! the background (AWS temporary credentials, Azure Entra tokens), read by signing without
//! waiting. Keyed by provider name so a reload keeps what is still valid.

use super::azure::entra::EntraTokens;
use super::bedrock::credentials::AwsCredentials;

/// Shared by every request through `AppState`; each provider kind adds its caches here.
#[derive(Debug, Default)]
pub struct ProviderRuntime {
    /// Entra access tokens of `auth: entra` Azure providers, refreshed by `EntraService`.
    pub entra: EntraTokens,
    /// AWS credentials of Bedrock providers (default chain, assume_role), refreshed by
    /// [`super::bedrock::credentials::CredentialRefresher`].
    pub aws: AwsCredentials,
}

impl ProviderRuntime {
    pub fn new() -> Self {
        Self::default()
    }
}
