//! Fake Azure managed-identity endpoints: the VM IMDS token endpoint
//! (`GET /metadata/identity/oauth2/token`, `Metadata: true`; azure_identity calls it at
//! 169.254.169.254, so tests route it here as an HTTP proxy) and the App Service /
//! Container Apps identity endpoint (`GET /msi/token`, the `x-identity-header` secret;
//! azure_identity finds it through `IDENTITY_ENDPOINT` / `IDENTITY_HEADER`). Both issue
//! tokens the deployments accept, share the Entra endpoint's failure switch and counter,
//! and answer in the managed-identity format (`expires_on` as a string of Unix seconds).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::server::AzureState;

/// `GET /metadata/identity/oauth2/token` (VM IMDS).
pub(super) async fn imds(
    State(azure): State<Arc<AzureState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let metadata = headers.get("metadata").and_then(|v| v.to_str().ok());
    if metadata != Some("true") {
        let body = json!({"error": "invalid_request", "error_description": "Required metadata header not specified"});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    issue(&azure, &uri, "imds")
}

/// `GET /msi/token` (App Service / Container Apps).
pub(super) async fn app_service(
    State(azure): State<Arc<AzureState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let secret = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    if secret.is_none() || secret != azure.config.identity_header.as_deref() {
        let body = json!({"statusCode": 401, "message": "Unauthorized: the x-identity-header is missing or wrong"});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    issue(&azure, &uri, "app-service")
}

fn issue(azure: &AzureState, uri: &Uri, style: &str) -> Response {
    let endpoint = &azure.entra;
    let n = endpoint.count();
    if endpoint.failing() {
        let body = json!({"error": "service_unavailable", "error_description": "the identity endpoint is failing (simulated)"});
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
    }
    let query = uri.query().unwrap_or("");
    let Some(resource) = crate::form::field(query, "resource") else {
        let body = json!({"error": "invalid_request", "error_description": "resource is required"});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    };
    let token = format!("mi-{style}-token-{n}");
    endpoint.issue(&token);
    let lifetime = azure.config.token_lifetime.as_secs();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Json(json!({
        "access_token": token,
        "expires_on": (now + lifetime).to_string(),
        "expires_in": lifetime.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": crate::form::field(query, "client_id").unwrap_or_else(|| "system-assigned".to_owned()),
    }))
    .into_response()
}
