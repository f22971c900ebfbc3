//! A fake Microsoft Entra token endpoint (`POST /{tenant}/oauth2/v2.0/token`, OAuth2 client
//! credentials): checks the client secret, or the federated token a workload identity sends
//! as `client_assertion`, issues numbered tokens that the simulator's deployments then
//! accept, and can be told to fail. The managed-identity endpoints (`managed_identity.rs`)
//! issue into the same set.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::json;

use super::config::AzureSimConfig;
use super::server::AzureState;

pub(super) struct TokenEndpoint {
    client_secret: Option<String>,
    federated_token: Option<String>,
    lifetime: Duration,
    requests: AtomicU64,
    failing: AtomicBool,
    issued: Mutex<HashSet<String>>,
}

impl TokenEndpoint {
    pub fn new(config: &AzureSimConfig) -> Self {
        Self {
            client_secret: config.entra_client_secret.clone(),
            federated_token: config.federated_token.clone(),
            lifetime: config.token_lifetime,
            requests: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            issued: Mutex::new(HashSet::new()),
        }
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }

    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Counts a token request; its number names the token.
    pub fn count(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Records `token` as issued, so the deployments accept it.
    pub fn issue(&self, token: &str) {
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.to_owned());
    }

    /// Whether `token` was issued here.
    pub fn accepts(&self, token: &str) -> bool {
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(token)
    }
}

pub(super) async fn token(State(azure): State<Arc<AzureState>>, body: Bytes) -> Response {
    let endpoint = &azure.entra;
    let n = endpoint.count();
    if endpoint.failing() {
        let body = json!({"error": "temporarily_unavailable",
            "error_description": "AADSTS90033: A transient error has occurred. Please try again."});
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
    }
    let form = String::from_utf8_lossy(&body);
    let field = |name: &str| crate::form::field(&form, name);
    const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let secret_ok = match (field("client_assertion"), &endpoint.federated_token) {
        // Workload identity: the federated token file's content, as a JWT-bearer assertion.
        (Some(assertion), Some(expected)) => {
            field("client_assertion_type").as_deref() == Some(JWT_BEARER) && assertion == *expected
        }
        (Some(_), None) => false,
        (None, _) => match &endpoint.client_secret {
            Some(expected) => field("client_secret").as_deref() == Some(expected.as_str()),
            None => true,
        },
    };
    if field("grant_type").as_deref() != Some("client_credentials") || !secret_ok {
        let body = json!({"error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided."});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let token = format!("entra-token-{n}");
    endpoint.issue(&token);
    Json(
        json!({"token_type": "Bearer", "expires_in": endpoint.lifetime.as_secs(),
        "ext_expires_in": endpoint.lifetime.as_secs(), "access_token": token}),
    )
    .into_response()
}
