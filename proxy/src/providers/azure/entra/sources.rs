//! The real token sources, speaking the identity endpoints' protocols with reqwest
//! (OAuth2 client credentials, federated client assertion, managed identity) or running
//! the Azure CLI. Errors carry the endpoint's `error_description`, never a secret.
//!
//! Not `azure_identity`: its current releases pull in a second HTTP stack and TLS setup, and
//! these four flows are small, stable protocols.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::Value;

use super::{AccessToken, CredentialError, TokenSource};
use crate::config::{EntraCredential, EntraSettings, Secret};

/// Azure Instance Metadata Service, the managed identity endpoint on VMs and AKS nodes.
const IMDS_URL: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// Longest error text kept from an identity endpoint.
const MAX_ERROR_TEXT: usize = 300;

/// The source for a provider's settings.
pub fn source_for(settings: &EntraSettings, http: reqwest::Client) -> Arc<dyn TokenSource> {
    match &settings.credential {
        EntraCredential::ClientSecret {
            tenant_id,
            client_id,
            client_secret,
        } => Arc::new(OAuthClient {
            http,
            token_url: token_url(&settings.authority_host, tenant_id),
            client_id: client_id.clone(),
            proof: Proof::Secret(client_secret.clone()),
        }),
        EntraCredential::WorkloadIdentity {
            tenant_id,
            client_id,
            token_file,
        } => Arc::new(OAuthClient {
            http,
            token_url: token_url(&settings.authority_host, tenant_id),
            client_id: client_id.clone(),
            proof: Proof::AssertionFile(token_file.clone()),
        }),
        EntraCredential::ManagedIdentity { client_id } => Arc::new(ManagedIdentity {
            http,
            client_id: client_id.clone(),
        }),
        EntraCredential::AzureCli => Arc::new(AzureCli),
    }
}

fn token_url(authority: &str, tenant: &str) -> String {
    format!(
        "{authority}/{}/oauth2/v2.0/token",
        crate::providers::encode::unreserved(tenant)
    )
}

enum Proof {
    Secret(Secret),
    /// A Kubernetes-projected token, re-read every time (it is rotated on disk).
    AssertionFile(std::path::PathBuf),
}

struct OAuthClient {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    proof: Proof,
}

#[async_trait]
impl TokenSource for OAuthClient {
    async fn get_token(&self, scope: &str) -> Result<AccessToken, CredentialError> {
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", self.client_id.clone()),
            ("scope", scope.to_owned()),
        ];
        match &self.proof {
            Proof::Secret(secret) => form.push(("client_secret", secret.expose().to_owned())),
            Proof::AssertionFile(path) => {
                let assertion = tokio::fs::read_to_string(path).await.map_err(|e| {
                    CredentialError::Unreachable(format!(
                        "reading the federated token file {}: {e}",
                        path.display()
                    ))
                })?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push(("client_assertion", assertion.trim().to_owned()));
            }
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::providers::encode::unreserved(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = self
            .http
            .post(&self.token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        token_answer(request).await
    }
}

struct ManagedIdentity {
    http: reqwest::Client,
    client_id: Option<String>,
}

#[async_trait]
impl TokenSource for ManagedIdentity {
    async fn get_token(&self, scope: &str) -> Result<AccessToken, CredentialError> {
        // Managed identity endpoints take a resource, not a scope.
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let mut query = vec![("resource", resource.to_owned())];
        if let Some(id) = &self.client_id {
            query.push(("client_id", id.clone()));
        }
        // App Service and Container Apps publish their own endpoint; VMs and AKS use IMDS.
        let request = match (
            std::env::var("IDENTITY_ENDPOINT"),
            std::env::var("IDENTITY_HEADER"),
        ) {
            (Ok(endpoint), Ok(header)) => {
                query.push(("api-version", "2019-08-01".to_owned()));
                self.http
                    .get(with_query(&endpoint, &query))
                    .header("x-identity-header", header)
            }
            _ => {
                query.push(("api-version", "2018-02-01".to_owned()));
                self.http
                    .get(with_query(IMDS_URL, &query))
                    .header("metadata", "true")
            }
        };
        token_answer(request).await
    }
}

struct AzureCli;

#[async_trait]
impl TokenSource for AzureCli {
    async fn get_token(&self, scope: &str) -> Result<AccessToken, CredentialError> {
        let output = tokio::process::Command::new("az")
            .args([
                "account",
                "get-access-token",
                "--output",
                "json",
                "--scope",
                scope,
            ])
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| CredentialError::Unreachable(format!("running `az`: {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(CredentialError::Refused(truncate(stderr.trim())));
        }
        let value: Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| CredentialError::BadAnswer(e.to_string()))?;
        parse_token(&value)
    }
}

fn with_query(url: &str, query: &[(&str, String)]) -> String {
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::providers::encode::unreserved(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!("{url}?{query}")
}

async fn token_answer(request: reqwest::RequestBuilder) -> Result<AccessToken, CredentialError> {
    let response = request
        .send()
        .await
        .map_err(|e| CredentialError::Unreachable(e.without_url().to_string()))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| CredentialError::Unreachable(e.without_url().to_string()))?;
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !status.is_success() {
        let text = |key: &str| value.get(key).and_then(Value::as_str);
        let reason = text("error_description")
            .or_else(|| text("error"))
            .or_else(|| value.pointer("/error/message").and_then(Value::as_str))
            .unwrap_or("no description");
        return Err(CredentialError::Refused(truncate(&format!(
            "HTTP {}: {reason}",
            status.as_u16()
        ))));
    }
    parse_token(&value)
}

/// `access_token`/`accessToken`, and `expires_in` (seconds, number or string) or
/// `expires_on` (epoch seconds) as the identity endpoints variously send them.
fn parse_token(value: &Value) -> Result<AccessToken, CredentialError> {
    let token = value
        .get("access_token")
        .or_else(|| value.get("accessToken"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| CredentialError::BadAnswer("no access_token".to_owned()))?;
    let seconds = |key: &str| -> Option<u64> {
        match value.get(key)? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let expires_in = match (seconds("expires_in"), seconds("expires_on")) {
        (Some(left), _) => Duration::from_secs(left),
        (None, Some(at)) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Duration::from_secs(at).saturating_sub(now)
        }
        (None, None) => return Err(CredentialError::BadAnswer("no expiry".to_owned())),
    };
    Ok(AccessToken {
        token: Secret::new(token),
        expires_in,
    })
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_ERROR_TEXT).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_answers_in_their_several_shapes() {
        let oauth =
            parse_token(&json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "a"}))
                .unwrap();
        assert_eq!(
            (oauth.token.expose(), oauth.expires_in.as_secs()),
            ("a", 3599)
        );
        let imds = parse_token(&json!({"access_token": "b", "expires_in": "3600"})).unwrap();
        assert_eq!(imds.expires_in.as_secs(), 3600);
        let far = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1000;
        let cli = parse_token(&json!({"accessToken": "c", "expires_on": far})).unwrap();
        assert!(cli.expires_in.as_secs() > 990);
        assert!(parse_token(&json!({"access_token": "d"})).is_err());
        assert!(parse_token(&json!({"error": "invalid_client"})).is_err());
    }

    #[test]
    fn urls_and_forms_are_encoded() {
        assert_eq!(
            token_url("https://login.microsoftonline.com", "t/1"),
            "https://login.microsoftonline.com/t%2F1/oauth2/v2.0/token"
        );
        assert_eq!(
            crate::providers::encode::unreserved("https://x/.default"),
            "https%3A%2F%2Fx%2F.default"
        );
    }
}
