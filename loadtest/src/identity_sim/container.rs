//! The ECS / EKS Pod Identity container credentials endpoint: `GET` with the task's
//! `Authorization` token, answered with temporary credentials as JSON.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::IdentityState;
use crate::serve::lock;

pub(super) async fn handle(State(sim): State<Arc<IdentityState>>, headers: HeaderMap) -> Response {
    if sim.failing() {
        sim.refused();
        let body = json!({"code": "InternalError", "message": "the credential endpoint is failing (simulated)"});
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
    }
    let token = headers.get("authorization").and_then(|v| v.to_str().ok());
    if token != Some(sim.config.container_token.as_str()) {
        sim.refused();
        let body = json!({"code": "AccessDeniedException", "message": "Authorization token is missing or invalid"});
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    let issued = sim.issue("CTR");
    lock(&sim.stats)
        .container_issued
        .push(issued.access_key_id.clone());
    Json(json!({
        "AccessKeyId": issued.access_key_id,
        "SecretAccessKey": issued.secret_access_key,
        "Token": issued.session_token,
        "Expiration": issued.expiration(),
        "RoleArn": "arn:aws:iam::123456789012:role/sim-task-role",
    }))
    .into_response()
}
