//! The `/_sim/*` control API used when the simulator runs as a separate process:
//! script faults, read and reset the stats.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Deserializer};
use serde_json::json;

use super::errors::ApiError;
use super::faults::{Fault, FaultSpec};
use super::state::SimState;

/// `POST /_sim/faults` body. `sticky` absent leaves the sticky fault alone,
/// `null` clears it; `clear: true` empties the queue before queueing `faults`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultsRequest {
    #[serde(default)]
    faults: Vec<FaultSpec>,
    #[serde(default, deserialize_with = "present")]
    sticky: Option<Option<FaultSpec>>,
    #[serde(default)]
    clear: bool,
}

/// Distinguishes a present `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<FaultSpec>>, D::Error> {
    Option::<FaultSpec>::deserialize(deserializer).map(Some)
}

pub(crate) async fn faults(
    State(sim): State<Arc<SimState>>,
    request: Result<Json<FaultsRequest>, JsonRejection>,
) -> Response {
    let Json(request) = match request {
        Ok(request) => request,
        Err(rejection) => return ApiError::unparseable(rejection.body_text()).into_response(),
    };
    if request.clear {
        sim.faults.clear_queue();
    }
    sim.faults.push(request.faults.into_iter().map(Fault::from));
    if let Some(sticky) = request.sticky {
        sim.faults.set_sticky(sticky.map(Fault::from));
    }
    let (queued, sticky) = sim.faults.snapshot();
    Json(json!({"queued": queued, "sticky": sticky})).into_response()
}

pub(crate) async fn stats(State(sim): State<Arc<SimState>>) -> Response {
    let mut stats = serde_json::to_value(sim.stats()).unwrap_or_default();
    if let Some(object) = stats.as_object_mut() {
        object.insert("in_flight".to_owned(), json!(sim.in_flight()));
    }
    Json(stats).into_response()
}

pub(crate) async fn reset(State(sim): State<Arc<SimState>>) -> Response {
    sim.reset_stats();
    Json(json!({"reset": true})).into_response()
}
