//! `previous_response_id` expanded by the proxy: the stored turns of the chain, oldest first,
//! each turn's input items then its output items, so the next turn can go to any target
//! whichever provider served the earlier ones. Encrypted reasoning is only worth sending to
//! the provider that produced it, so only the newest such provider's reasoning is kept, and
//! it travels with the name of that provider (docs/responses-dialect.md).

use crate::conversations::{ConversationStore, StoredResponse};
use crate::dialects::responses::wire::InputItem;
use crate::error::{ProxyError, RequestError};

/// What the earlier turns of a conversation contribute.
#[derive(Debug, Default)]
pub struct Earlier {
    /// Their items, oldest first.
    pub items: Vec<InputItem>,
    /// The provider whose encrypted reasoning the items carry.
    pub reasoning_from: Option<String>,
}

/// The chain ending at `id` for `team`; an unknown, expired or other team's id is a 404.
pub async fn expand(
    store: &ConversationStore,
    team: &str,
    id: &str,
    max_turns: usize,
) -> Result<Earlier, ProxyError> {
    let Some(turns) = store.chain(team, id, max_turns).await? else {
        return Err(RequestError::PreviousResponseNotFound { id: id.to_owned() }.into());
    };
    let mut per_turn = Vec::with_capacity(turns.len());
    for turn in &turns {
        per_turn.push((turn.provider.clone(), items_of(turn)?));
    }
    Ok(earlier(per_turn))
}

/// The turns' items, with the reasoning of every provider but the newest one that gave
/// encrypted reasoning dropped.
fn earlier(turns: Vec<(String, Vec<InputItem>)>) -> Earlier {
    let encrypted =
        |item: &InputItem| matches!(item, InputItem::Reasoning(r) if r.encrypted_content.is_some());
    let reasoning_from = turns
        .iter()
        .rev()
        .find(|(_, items)| items.iter().any(encrypted))
        .map(|(provider, _)| provider.clone());
    let items = turns
        .into_iter()
        .flat_map(|(provider, items)| {
            let keep = Some(&provider) == reasoning_from.as_ref();
            items
                .into_iter()
                .filter(move |item| keep || !encrypted(item))
        })
        .collect();
    Earlier {
        items,
        reasoning_from,
    }
}

/// A stored turn's input then output items.
fn items_of(turn: &StoredResponse) -> Result<Vec<InputItem>, ProxyError> {
    let mut items = parse_items(&turn.input_items, &turn.id)?;
    items.extend(parse_items(&turn.output_items, &turn.id)?);
    Ok(items)
}

fn parse_items(json: &str, id: &str) -> Result<Vec<InputItem>, ProxyError> {
    serde_json::from_str(json).map_err(|e| {
        RequestError::Invalid {
            message: format!("the stored response `{id}` cannot be continued: {e}"),
            param: Some("previous_response_id".to_owned()),
        }
        .into()
    })
}

/// Replaces `item_reference`s in `items` by the earlier item they point at, when known.
pub fn resolve_references(items: &mut [InputItem], earlier: &[InputItem]) {
    for item in items.iter_mut() {
        if let InputItem::ItemReference(reference) = item {
            if let Some(found) = earlier.iter().find(|e| e.id() == Some(&reference.id)) {
                *item = found.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items(value: serde_json::Value) -> Vec<InputItem> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn only_the_newest_reasoning_provider_keeps_its_reasoning() {
        let reasoning = |id: &str| {
            json!({"type": "reasoning", "id": id, "summary": [],
            "encrypted_content": "x"})
        };
        let earlier = earlier(vec![
            (
                "azure".to_owned(),
                items(json!([{"role": "user", "content": "a"}, reasoning("rs_1")])),
            ),
            (
                "aws".to_owned(),
                items(json!([{"role": "user", "content": "b"}, reasoning("rs_2")])),
            ),
            (
                "oai".to_owned(),
                items(json!([{"role": "user", "content": "c"}])),
            ),
        ]);
        assert_eq!(earlier.reasoning_from.as_deref(), Some("aws"));
        let ids: Vec<Option<&str>> = earlier.items.iter().map(InputItem::id).collect();
        assert_eq!(ids, [None, None, Some("rs_2"), None]);
        let none = super::earlier(vec![(
            "oai".to_owned(),
            items(json!([{"role": "user", "content": "c"}])),
        )]);
        assert_eq!(none.reasoning_from, None);
    }

    #[test]
    fn references_resolve_to_earlier_items() {
        let earlier =
            items(json!([{"type": "message", "id": "msg_1", "role": "user", "content": "a"}]));
        let mut this = items(json!([{"type": "item_reference", "id": "msg_1"},
            {"type": "item_reference", "id": "msg_9"}]));
        resolve_references(&mut this, &earlier);
        assert_eq!(this[0], earlier[0]);
        assert!(matches!(this[1], InputItem::ItemReference(_)));
    }
}
