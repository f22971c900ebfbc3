//! The wire shapes of the stored-response endpoints, as OpenAI answers them: the deletion
//! receipt and the `input_items` page with its query (`limit`, `order`, `after`).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::api::InvalidField;

/// Default and largest `limit` of an `input_items` page.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

/// `DELETE /v1/responses/{id}`'s answer.
#[derive(Debug, Serialize)]
pub struct Deleted<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub deleted: bool,
}

impl<'a> Deleted<'a> {
    pub fn new(id: &'a str) -> Self {
        Self {
            id,
            object: "response",
            deleted: true,
        }
    }
}

/// The order of an `input_items` page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    /// OpenAI's default: the newest (last) item first.
    Desc,
}

/// The query of `GET /v1/responses/{id}/input_items`. Other parameters (`include`) are
/// accepted and ignored: the stored items are served as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemsQuery {
    pub limit: usize,
    pub order: Order,
    /// The id of the item the page starts after (in `order`).
    pub after: Option<String>,
}

impl ItemsQuery {
    pub fn from_query(query: Option<&str>) -> Result<Self, InvalidField> {
        let mut parsed = ItemsQuery {
            limit: DEFAULT_LIMIT,
            order: Order::Desc,
            after: None,
        };
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match name.as_ref() {
                "limit" => {
                    parsed.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                        .ok_or_else(|| {
                            InvalidField::new(
                                "limit",
                                format!("`limit` must be an integer from 1 to {MAX_LIMIT}"),
                            )
                        })?;
                }
                "order" => {
                    parsed.order = match value.as_ref() {
                        "asc" => Order::Asc,
                        "desc" => Order::Desc,
                        _ => {
                            return Err(InvalidField::new(
                                "order",
                                "`order` must be `asc` or `desc`",
                            ))
                        }
                    }
                }
                "after" => parsed.after = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(parsed)
    }
}

/// One page of input items: `{"object":"list","data":[…],"first_id","last_id","has_more"}`.
#[derive(Debug, Serialize)]
pub struct ItemPage<'a> {
    pub object: &'static str,
    pub data: Vec<&'a RawValue>,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    pub has_more: bool,
}

/// What the page reads of an item: its `id` (every stored input item has one).
#[derive(Deserialize)]
struct ItemId {
    id: Option<String>,
}

fn item_id(item: &RawValue) -> Option<String> {
    serde_json::from_str::<ItemId>(item.get()).ok()?.id
}

impl<'a> ItemPage<'a> {
    /// The page of `items` (stored oldest first) that `query` asks for. An `after` that names
    /// no item is the client's error.
    pub fn of(items: Vec<&'a RawValue>, query: &ItemsQuery) -> Result<Self, InvalidField> {
        let mut items = items;
        if query.order == Order::Desc {
            items.reverse();
        }
        let start = match &query.after {
            Some(after) => {
                items
                    .iter()
                    .position(|item| item_id(item).as_deref() == Some(after.as_str()))
                    .ok_or_else(|| {
                        InvalidField::new(
                            "after",
                            format!("no input item with id `{after}` in this response"),
                        )
                    })?
                    + 1
            }
            None => 0,
        };
        let end = start.saturating_add(query.limit).min(items.len());
        let data: Vec<&RawValue> = items.get(start..end).unwrap_or_default().to_vec();
        Ok(ItemPage {
            object: "list",
            first_id: data.first().and_then(|item| item_id(item)),
            last_id: data.last().and_then(|item| item_id(item)),
            has_more: end < items.len(),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items(n: usize) -> String {
        let items: Vec<_> = (1..=n)
            .map(|i| json!({"id": format!("msg_{i}"), "type": "message", "role": "user", "content": []}))
            .collect();
        serde_json::to_string(&items).unwrap()
    }

    fn page(stored: &str, query: &str) -> Result<serde_json::Value, InvalidField> {
        let parsed: Vec<&RawValue> = serde_json::from_str(stored).unwrap();
        let query = ItemsQuery::from_query(Some(query))?;
        Ok(serde_json::to_value(ItemPage::of(parsed, &query)?).unwrap())
    }

    fn ids(page: &serde_json::Value) -> Vec<&str> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn newest_first_by_default_with_cursors() {
        let stored = items(3);
        let all = page(&stored, "").unwrap();
        assert_eq!(ids(&all), ["msg_3", "msg_2", "msg_1"]);
        assert_eq!(all["object"], "list");
        assert_eq!(all["first_id"], "msg_3");
        assert_eq!(all["last_id"], "msg_1");
        assert_eq!(all["has_more"], false);
        let asc = page(&stored, "order=asc").unwrap();
        assert_eq!(ids(&asc), ["msg_1", "msg_2", "msg_3"]);
    }

    #[test]
    fn pages_follow_after_and_limit() {
        let stored = items(5);
        let first = page(&stored, "limit=2&order=asc").unwrap();
        assert_eq!(ids(&first), ["msg_1", "msg_2"]);
        assert_eq!(first["has_more"], true);
        let second = page(&stored, "limit=2&order=asc&after=msg_2").unwrap();
        assert_eq!(ids(&second), ["msg_3", "msg_4"]);
        let last = page(&stored, "limit=2&order=asc&after=msg_4").unwrap();
        assert_eq!(ids(&last), ["msg_5"]);
        assert_eq!(last["has_more"], false);
        let desc = page(&stored, "limit=2&after=msg_4").unwrap();
        assert_eq!(ids(&desc), ["msg_3", "msg_2"]);
        assert_eq!(desc["has_more"], true);
        let end = page(&stored, "after=msg_5&order=asc").unwrap();
        assert_eq!(ids(&end), Vec::<&str>::new());
        assert_eq!(end["first_id"], serde_json::Value::Null);
        // `include` is accepted and ignored.
        assert!(page(&stored, "include[]=message.input_image.image_url").is_ok());
    }

    #[test]
    fn bad_queries_name_their_parameter() {
        let stored = items(2);
        for (query, param) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=x", "limit"),
            ("order=up", "order"),
            ("after=msg_9", "after"),
        ] {
            let err = page(&stored, query).unwrap_err();
            assert_eq!(err.param, param, "{query}");
        }
        assert_eq!(
            ItemsQuery::from_query(Some("limit=100")).unwrap().limit,
            100
        );
    }

    #[test]
    fn deletion_receipt_is_openais() {
        assert_eq!(
            serde_json::to_value(Deleted::new("resp_1")).unwrap(),
            json!({"id": "resp_1", "object": "response", "deleted": true})
        );
    }
}
