//! `GET /v1/models` and `GET /v1/models/{model}` (docs/wire-formats.md §1.6), plus the
//! OpenAI-style 404 for unknown paths.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::gate::check_auth;
use super::state::{bump, SimState};

/// The sim answers for any model id; these are just what it lists.
const LISTED_MODELS: [&str; 4] = [
    "gpt-4o-mini",
    "gpt-4o",
    "text-embedding-3-small",
    "sim-model",
];
/// A fixed `created` so listings compare equal across runs.
const CREATED: u64 = 1_700_000_000;

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": CREATED, "owned_by": "sim"})
}

pub(crate) async fn list(
    State(sim): State<Arc<SimState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    bump(&sim.counters.requests, 1);
    if let Err(error) = check_auth(&sim, &headers) {
        return error.into_response();
    }
    let data: Vec<Value> = LISTED_MODELS.iter().map(|id| model_object(id)).collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

pub(crate) async fn retrieve(
    State(sim): State<Arc<SimState>>,
    headers: axum::http::HeaderMap,
    Path(model): Path<String>,
) -> Response {
    bump(&sim.counters.requests, 1);
    if let Err(error) = check_auth(&sim, &headers) {
        return error.into_response();
    }
    Json(model_object(&model)).into_response()
}

pub(crate) async fn not_found(State(sim): State<Arc<SimState>>, uri: Uri) -> Response {
    bump(&sim.counters.requests, 1);
    ApiError::not_found(format!("Invalid URL ({})", uri.path())).into_response()
}
