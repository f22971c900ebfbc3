//! A fake Microsoft Entra token endpoint (`POST /{tenant}/oauth2/v2.0/token`, OAuth2 client
//! credentials): checks the client secret, issues numbered tokens that the simulator's
//! deployments then accept, and can be told to fail.

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
    lifetime: Duration,
    requests: AtomicU64,
    failing: AtomicBool,
    issued: Mutex<HashSet<String>>,
}

impl TokenEndpoint {
    pub fn new(config: &AzureSimConfig) -> Self {
        Self {
            client_secret: config.entra_client_secret.clone(),
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
    let n = endpoint.requests.fetch_add(1, Ordering::Relaxed) + 1;
    if endpoint.failing.load(Ordering::Relaxed) {
        let body = json!({"error": "temporarily_unavailable",
            "error_description": "AADSTS90033: A transient error has occurred. Please try again."});
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
    }
    let form = String::from_utf8_lossy(&body);
    let field = |name: &str| {
        form.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| percent_decode(value))
    };
    let secret_ok = match &endpoint.client_secret {
        Some(expected) => field("client_secret").as_deref() == Some(expected.as_str()),
        None => true,
    };
    if field("grant_type").as_deref() != Some("client_credentials") || !secret_ok {
        let body = json!({"error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided."});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let token = format!("entra-token-{n}");
    endpoint
        .issued
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(token.clone());
    Json(
        json!({"token_type": "Bearer", "expires_in": endpoint.lifetime.as_secs(),
        "ext_expires_in": endpoint.lifetime.as_secs(), "access_token": token}),
    )
    .into_response()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (
                    bytes.get(i + 1).and_then(|b| hex(*b)),
                    bytes.get(i + 2).and_then(|b| hex(*b)),
                ) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
