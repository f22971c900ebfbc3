//! `POST /v1/responses`: the request parsed and validated, the `previous_response_id` chain
//! expanded from the proxy's own store ([`chain`]), the turn decoded into the model and
//! served like any generation (budgets, rate limits, routing, failover, hedging), and the
//! turn stored before the client sees it complete ([`keep`]) unless `store: false`
//! (docs/responses-dialect.md, docs/decisions/0003-proxy-owns-conversation-state.md).

pub mod chain;
pub mod keep;

use std::sync::Arc;

use bytes::Bytes;

use crate::config::{KeyOwner, Policy};
use crate::dialects::responses::wire::{Input, InputItem};
use crate::dialects::responses::{decode_request, ResponsesRequest, TurnContext};
use crate::error::{ProxyError, RequestError};
use crate::handler::{decoded, dispatch, parse};
use crate::providers::{Generation, Operation};
use crate::relay::{Reply, RequestRecord};

/// The most earlier turns a `previous_response_id` expands to (the most recent ones).
pub const MAX_CHAIN_TURNS: usize = 512;

/// Serves one `POST /v1/responses`.
pub async fn create(
    policy: &Policy,
    owner: &KeyOwner,
    body: &Bytes,
    record: RequestRecord,
) -> Result<Reply, (ProxyError, RequestRecord)> {
    let wire = match parse::<ResponsesRequest>(body, ResponsesRequest::validate) {
        Ok(wire) => wire,
        Err(e) => return Err((e, record)),
    };
    if let Err(e) = builtin_tools_allowed(policy, &wire) {
        return Err((e, record));
    }
    let store = record.state().conversations.clone();
    let team = owner.team.name.clone();
    let earlier = match &wire.previous_response_id {
        None => chain::Earlier::default(),
        Some(id) => match chain::expand(&store, &team, id, MAX_CHAIN_TURNS).await {
            Ok(earlier) => earlier,
            Err(e) => return Err((e, record)),
        },
    };
    let mut this_turn = wire.input_items();
    chain::resolve_references(&mut this_turn, &earlier.items);
    for item in &mut this_turn {
        item.ensure_id(crate::dialects::responses::respond::new_id);
    }
    let mut items = earlier.items;
    items.extend(this_turn.iter().cloned());
    let generation = match generation(&wire, items, earlier.reasoning_from) {
        Ok(generation) => generation,
        Err(e) => return Err((e, record)),
    };
    let pending = wire.stores().then(|| keep::PendingTurn {
        store,
        team,
        model: wire.model.clone(),
        previous_response_id: wire.previous_response_id.clone(),
        input_items: this_turn,
    });
    let reply = dispatch(
        policy,
        owner,
        Operation::Generate(Box::new(generation)),
        record,
    )
    .await?;
    Ok(match pending {
        Some(pending) => keep::before_completion(pending, reply).await,
        None => reply,
    })
}

/// A built-in tool is served only where the model says `builtin_tools: allow` (and then only
/// by native targets, `providers/responses_turn.rs`).
fn builtin_tools_allowed(policy: &Policy, wire: &ResponsesRequest) -> Result<(), ProxyError> {
    let allowed = policy
        .models
        .get(&wire.model)
        .is_some_and(|model| model.responses.builtin_tools);
    let builtin = wire
        .tools
        .iter()
        .flatten()
        .enumerate()
        .find(|(_, tool)| tool.kind != "function");
    match builtin {
        Some((i, tool)) if !allowed => Err(RequestError::Invalid {
            message: format!(
                "the built-in tool `{}` is not available for the model `{}` (its policy does not \
                 say `builtin_tools: allow`)",
                tool.kind, wire.model
            ),
            param: Some(format!("tools[{i}]")),
        }
        .into()),
        _ => Ok(()),
    }
}

/// The generation of a turn whose whole input (earlier turns expanded) is `items`: the model
/// request, and the body a native upstream gets (the client's with `input` expanded).
fn generation(
    wire: &ResponsesRequest,
    items: Vec<InputItem>,
    reasoning_from: Option<String>,
) -> Result<Generation, ProxyError> {
    let request = decoded(decode_request(wire, &items))?;
    let context = TurnContext::new(wire, &items, reasoning_from);
    let mut native = wire.clone();
    native.input = Some(Input::Items(items));
    native.previous_response_id = None;
    native.store = Some(false);
    let body = serde_json::to_vec(&native).map_err(|e| RequestError::Invalid {
        message: format!("the request could not be re-encoded: {e}"),
        param: None,
    })?;
    Ok(Generation {
        request,
        body: Bytes::from(body),
        betas: Vec::new(),
        responses: Some(Arc::new(context)),
    })
}
