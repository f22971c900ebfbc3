//! `GET /v1/models[/{model}]`: the model names a team may use, in OpenAI's list format, or in
//! Anthropic's (paginated by `limit`, `after_id`, `before_id`) for clients that send
//! `anthropic-version`.

use serde::Serialize;

use super::InvalidField;

#[derive(Debug, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelEntry>,
}

#[derive(Debug, Serialize)]
pub struct ModelEntry {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: String,
}

impl ModelList {
    pub fn new(names: impl IntoIterator<Item = String>, created: u64) -> Self {
        let data = names
            .into_iter()
            .map(|id| ModelEntry {
                id,
                object: "model",
                created,
                owned_by: "switchyard".to_owned(),
            })
            .collect();
        Self {
            object: "list",
            data,
        }
    }
}

/// One model in Anthropic's shape (`ModelInfo`).
#[derive(Debug, Serialize)]
pub struct AnthropicModel {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    /// The proxy knows no nicer name than the one clients send.
    pub display_name: String,
    /// RFC 3339.
    pub created_at: String,
}

impl AnthropicModel {
    pub fn new(id: String, created_at: &str) -> Self {
        Self {
            kind: "model",
            display_name: id.clone(),
            id,
            created_at: created_at.to_owned(),
        }
    }
}

/// One page of Anthropic's model list.
#[derive(Debug, Serialize)]
pub struct AnthropicModelList {
    pub data: Vec<AnthropicModel>,
    pub has_more: bool,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
}

/// Anthropic's pagination parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: usize,
    pub after_id: Option<String>,
    pub before_id: Option<String>,
}

/// Anthropic's default and largest page sizes.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 1000;

impl Page {
    /// Reads `limit`, `after_id` and `before_id` from a query string; other members are
    /// ignored (the SDKs add none, and `beta=true` is routine).
    pub fn from_query(query: Option<&str>) -> Result<Page, InvalidField> {
        let mut page = Page {
            limit: DEFAULT_LIMIT,
            after_id: None,
            before_id: None,
        };
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match name.as_ref() {
                "limit" => {
                    page.limit = value
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
                "after_id" => page.after_id = Some(value.into_owned()),
                "before_id" => page.before_id = Some(value.into_owned()),
                _ => {}
            }
        }
        if page.after_id.is_some() && page.before_id.is_some() {
            return Err(InvalidField::new(
                "before_id",
                "`after_id` and `before_id` cannot be used together",
            ));
        }
        Ok(page)
    }
}

impl AnthropicModelList {
    /// The page of `names` (sorted, as the policy keeps them) that `page` asks for: the
    /// names after `after_id`, or the last ones before `before_id`, at most `limit`.
    pub fn page(names: &[String], page: &Page, created_at: &str) -> Self {
        let (slice, has_more) = match (&page.after_id, &page.before_id) {
            (_, Some(before)) => {
                let end = names.partition_point(|name| name < before);
                let start = end.saturating_sub(page.limit);
                (&names[start..end], start > 0)
            }
            (after, None) => {
                let start = after
                    .as_ref()
                    .map_or(0, |after| names.partition_point(|name| name <= after));
                let end = (start + page.limit).min(names.len());
                (&names[start..end], end < names.len())
            }
        };
        Self {
            data: slice
                .iter()
                .map(|id| AnthropicModel::new(id.clone(), created_at))
                .collect(),
            has_more,
            first_id: slice.first().cloned(),
            last_id: slice.last().cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i:02}")).collect()
    }

    #[test]
    fn anthropic_shape() {
        let list = AnthropicModelList::page(
            &names(2),
            &Page::from_query(None).unwrap(),
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(
            serde_json::to_value(&list).unwrap(),
            serde_json::json!({"data": [
                {"type": "model", "id": "m00", "display_name": "m00", "created_at": "2026-01-01T00:00:00Z"},
                {"type": "model", "id": "m01", "display_name": "m01", "created_at": "2026-01-01T00:00:00Z"}],
                "has_more": false, "first_id": "m00", "last_id": "m01"})
        );
        let empty = AnthropicModelList::page(&[], &Page::from_query(None).unwrap(), "t");
        assert_eq!(
            serde_json::to_value(&empty).unwrap(),
            serde_json::json!({"data": [], "has_more": false, "first_id": null, "last_id": null})
        );
    }

    #[test]
    fn pages_walk_forward_and_back() {
        let all = names(5);
        let ids = |list: &AnthropicModelList| -> Vec<String> {
            list.data.iter().map(|m| m.id.clone()).collect()
        };
        let first =
            AnthropicModelList::page(&all, &Page::from_query(Some("limit=2")).unwrap(), "t");
        assert_eq!(
            (ids(&first), first.has_more),
            (vec!["m00".into(), "m01".into()], true)
        );
        let query = format!("limit=2&after_id={}", first.last_id.unwrap());
        let second = AnthropicModelList::page(&all, &Page::from_query(Some(&query)).unwrap(), "t");
        assert_eq!(
            (ids(&second), second.has_more),
            (vec!["m02".into(), "m03".into()], true)
        );
        let last = AnthropicModelList::page(
            &all,
            &Page::from_query(Some("limit=2&after_id=m03&beta=true")).unwrap(),
            "t",
        );
        assert_eq!((ids(&last), last.has_more), (vec!["m04".into()], false));
        let back = AnthropicModelList::page(
            &all,
            &Page::from_query(Some("before_id=m03&limit=2")).unwrap(),
            "t",
        );
        assert_eq!(
            (ids(&back), back.has_more),
            (vec!["m01".into(), "m02".into()], true)
        );
        let start = AnthropicModelList::page(
            &all,
            &Page::from_query(Some("before_id=m01&limit=2")).unwrap(),
            "t",
        );
        assert_eq!((ids(&start), start.has_more), (vec!["m00".into()], false));
    }

    #[test]
    fn bad_paging_names_the_parameter() {
        for (query, param) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=ten", "limit"),
            ("after_id=a&before_id=b", "before_id"),
        ] {
            assert_eq!(
                Page::from_query(Some(query)).unwrap_err().param,
                param,
                "{query}"
            );
        }
        let page = Page::from_query(Some("after_id=us.anthropic%3Av1")).unwrap();
        assert_eq!(page.after_id.as_deref(), Some("us.anthropic:v1"));
    }
}
