//! The real token sources: `azure_identity` credentials (client secret, workload identity
//! federation, managed identity, Azure CLI) behind [`TokenSource`]. The credentials send
//! through the proxy's reqwest client (rustls on the process-wide ring provider) with the
//! SDK's retries off, as the refresher already retries with back-off (the VM managed identity
//! credential keeps its own IMDS retries, within the refresher's fetch timeout). Errors carry the
//! credential's message (the endpoint's `error_description`), never a secret.
//!
//! `authority_host` becomes the credentials' custom cloud. azure_identity accepts only an
//! `https` authority; an `http` one on a loopback host (the Azure simulator in tests) is
//! handed to it as `https` and switched back to plain HTTP by [`Transport`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{AsyncRawResponse, ClientOptions, HttpClient, Request, RetryOptions};
use azure_core::time::OffsetDateTime;
use azure_identity::{
    AzureCliCredential, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use super::{AccessToken, CredentialError, TokenSource};
use crate::config::{loopback_http_host, EntraCredential, EntraSettings};

/// Longest error text kept from a credential.
const MAX_ERROR_TEXT: usize = 300;

/// The source for a provider's settings. A credential that cannot be built (say, an
/// authority azure_identity rejects) becomes a source that reports why at every fetch.
pub fn source_for(settings: &EntraSettings, http: reqwest::Client) -> Arc<dyn TokenSource> {
    match credential_for(settings, http) {
        Ok(credential) => Arc::new(Credential(credential)),
        Err(error) => Arc::new(Unusable(credential_error(&error))),
    }
}

fn credential_for(
    settings: &EntraSettings,
    http: reqwest::Client,
) -> azure_core::Result<Arc<dyn TokenCredential>> {
    let (authority, plain_http) = match loopback_http_host(&settings.authority_host) {
        Some(rest) => (format!("https://{rest}"), true),
        None => (settings.authority_host.clone(), false),
    };
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = authority;
    let client_options = ClientOptions {
        transport: Some(azure_core::http::Transport::new(Arc::new(Transport {
            http,
            plain_http,
        }))),
        retry: RetryOptions::none(),
        cloud: Some(Arc::new(CloudConfiguration::from(cloud))),
        ..ClientOptions::default()
    };
    Ok(match &settings.credential {
        EntraCredential::ClientSecret {
            tenant_id,
            client_id,
            client_secret,
        } => ClientSecretCredential::new(
            tenant_id,
            client_id.clone(),
            azure_core::credentials::Secret::new(client_secret.expose().to_owned()),
            Some(ClientSecretCredentialOptions { client_options }),
        )?,
        EntraCredential::WorkloadIdentity {
            tenant_id,
            client_id,
            token_file,
        } => {
            let mut options = WorkloadIdentityCredentialOptions::default();
            options.credential_options.client_options = client_options;
            options.tenant_id = Some(tenant_id.clone());
            options.client_id = Some(client_id.clone());
            options.token_file_path = Some(token_file.clone());
            WorkloadIdentityCredential::new(Some(options))?
        }
        EntraCredential::ManagedIdentity { client_id } => {
            // IMDS and App Service are not the authority: the custom cloud does not apply.
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                client_options: ClientOptions {
                    cloud: None,
                    ..client_options
                },
            };
            ManagedIdentityCredential::new(Some(options))?
        }
        EntraCredential::AzureCli => AzureCliCredential::new(None)?,
    })
}

struct Credential(Arc<dyn TokenCredential>);

#[async_trait]
impl TokenSource for Credential {
    async fn get_token(&self, scope: &str) -> Result<AccessToken, CredentialError> {
        let token = self
            .0
            .get_token(&[scope], None)
            .await
            .map_err(|e| credential_error(&e))?;
        let left = token.expires_on - OffsetDateTime::now_utc();
        Ok(AccessToken {
            token: crate::config::Secret::new(token.token.secret()),
            expires_in: Duration::try_from(left).unwrap_or_default(),
        })
    }
}

struct Unusable(CredentialError);

#[async_trait]
impl TokenSource for Unusable {
    async fn get_token(&self, _scope: &str) -> Result<AccessToken, CredentialError> {
        Err(self.0.clone())
    }
}

/// The credential's message on one line, classified by the underlying error's kind
/// (credentials wrap it in an `ErrorKind::Credential`).
fn credential_error(error: &azure_core::Error) -> CredentialError {
    let text: String = error
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_ERROR_TEXT)
        .collect();
    let kind = error
        .downcast_ref::<azure_core::Error>()
        .map_or(error.kind(), azure_core::Error::kind);
    match kind {
        ErrorKind::Io => CredentialError::Unreachable(text),
        ErrorKind::DataConversion => CredentialError::BadAnswer(text),
        _ => CredentialError::Refused(text),
    }
}

/// The proxy's reqwest client as the credentials' transport; with `plain_http`, requests
/// the credential addresses to `https` go out over plain HTTP (loopback authorities only).
#[derive(Debug)]
struct Transport {
    http: reqwest::Client,
    plain_http: bool,
}

#[async_trait]
impl HttpClient for Transport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        if self.plain_http && request.url().scheme() == "https" {
            let mut request = request.clone();
            // https → http between special schemes always succeeds.
            let _ = request.url_mut().set_scheme("http");
            return self.http.execute_request(&request).await;
        }
        self.http.execute_request(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (Config rejects such an authority; this is the guard behind it.)
    #[tokio::test]
    async fn a_rejected_authority_is_reported_at_every_fetch() {
        let settings = EntraSettings {
            credential: EntraCredential::ClientSecret {
                tenant_id: "t".into(),
                client_id: "c".into(),
                client_secret: crate::config::Secret::new("s"),
            },
            scope: "https://cognitiveservices.azure.com/.default".into(),
            authority_host: "http://login.example.com".into(),
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let source = source_for(&settings, reqwest::Client::new());
        let error = source.get_token(&settings.scope).await.unwrap_err();
        assert!(error.to_string().contains("HTTPS"), "{error}");
    }
}
