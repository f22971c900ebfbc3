//! The EC2 instance metadata service's credential paths, IMDSv2 style: `PUT
//! /latest/api/token` hands out a session token; with it, `GET
//! /latest/meta-data/iam/security-credentials/` names the instance role and
//! `…/security-credentials/{role}` answers its temporary credentials. aws-config finds it
//! through `AWS_EC2_METADATA_SERVICE_ENDPOINT`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::IdentityState;
use crate::serve::lock;

/// The instance role's name.
pub(super) const ROLE: &str = "sim-instance-role";
/// The IMDSv2 session token (one is enough for a fake).
const SESSION: &str = "sim-imds-session-token";

pub(super) async fn token(headers: HeaderMap) -> Response {
    let ttl = headers
        .get("x-aws-ec2-metadata-token-ttl-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match ttl {
        Some(ttl) => (
            [("x-aws-ec2-metadata-token-ttl-seconds", ttl.to_string())],
            SESSION,
        )
            .into_response(),
        None => (StatusCode::BAD_REQUEST, "missing token TTL").into_response(),
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("x-aws-ec2-metadata-token")
        .and_then(|v| v.to_str().ok())
        == Some(SESSION)
}

pub(super) async fn role(headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    ROLE.into_response()
}

pub(super) async fn credentials(
    State(sim): State<Arc<IdentityState>>,
    Path(role): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        sim.refused();
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if sim.failing() {
        sim.refused();
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    if role != ROLE {
        return StatusCode::NOT_FOUND.into_response();
    }
    let issued = sim.issue("EC2");
    lock(&sim.stats)
        .imds_issued
        .push(issued.access_key_id.clone());
    Json(json!({
        "Code": "Success",
        "LastUpdated": issued.issued_at(),
        "Type": "AWS-HMAC",
        "AccessKeyId": issued.access_key_id,
        "SecretAccessKey": issued.secret_access_key,
        "Token": issued.session_token,
        "Expiration": issued.expiration(),
    }))
    .into_response()
}
