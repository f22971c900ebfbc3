//! `GET /admin/requests?team=&from=&to=&model=&limit=&cursor=` (docs/http-api.md): the audit
//! trail a page at a time. Pages follow a keyset cursor on (start time, entry id), never an
//! offset, so walking every page returns every row of the range exactly once.

use serde::Serialize;

use super::{decode_cursor, encode_cursor, AuditRecord};
use crate::metering::ledger::audit::AuditQuery;
use crate::metering::ledger::{Ledger, LedgerError};
use crate::metering::spend_report::parse_date;

/// Rows per page when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 1_000;
/// How long one page may take to read.
const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// One page of the answer.
#[derive(Debug, Serialize)]
pub struct RequestsPage {
    pub requests: Vec<AuditRecord>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Reads the query string into a query, or says in one sentence what is wrong with it.
pub fn parse_query(query: &str) -> Result<AuditQuery, String> {
    let (mut team, mut model, mut from, mut to, mut after) = (None, None, None, None, None);
    let mut limit = DEFAULT_LIMIT;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.into_owned();
        match name.as_ref() {
            "team" => team = Some(value).filter(|v| !v.is_empty()),
            "model" => model = Some(value).filter(|v| !v.is_empty()),
            "from" => from = Some(parse_date(&value).map_err(|e| format!("from: {e}"))?),
            "to" => to = Some(parse_date(&value).map_err(|e| format!("to: {e}"))?),
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}, not `{value}`")
                    })?;
            }
            "cursor" => {
                after = Some(decode_cursor(&value).ok_or_else(|| {
                    "cursor is not one this endpoint returned as next_cursor".to_owned()
                })?);
            }
            other => {
                return Err(format!(
                    "unknown parameter `{other}` (team, from, to, model, limit, cursor)"
                ))
            }
        }
    }
    let needed = |name: &str| format!("{name} is required: YYYY-MM-DD or an RFC 3339 time (UTC)");
    let from_ms = from.ok_or_else(|| needed("from"))?;
    let to_ms = to.ok_or_else(|| needed("to"))?;
    if from_ms >= to_ms {
        return Err("from must be before to".to_owned());
    }
    Ok(AuditQuery {
        from_ms,
        to_ms,
        team,
        model,
        after,
        limit,
    })
}

/// Reads the page `query` asks for, on the ledger's runtime.
pub async fn page(ledger: &Ledger, query: AuditQuery) -> Result<RequestsPage, LedgerError> {
    let limit = query.limit;
    // One row more than asked tells whether there is a next page.
    let mut probe = query;
    probe.limit = limit + 1;
    let mut rows = ledger
        .query(QUERY_TIMEOUT, move |store| async move {
            store.audit(&probe).await
        })
        .await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => Some(encode_cursor(&last.cursor())),
        _ => None,
    };
    Ok(RequestsPage {
        requests: rows.iter().map(AuditRecord::from).collect(),
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::ledger::audit::Cursor;

    #[test]
    fn a_full_query_is_read() {
        let cursor = encode_cursor(&Cursor {
            at_ms: 5,
            entry_id: "e1".to_owned(),
        });
        let query = parse_query(&format!(
            "team=alpha&model=chat&from=2026-12-01&to=2026-12-07T10%3A00%3A00Z&limit=2&cursor={cursor}"
        ))
        .unwrap();
        assert_eq!(query.team.as_deref(), Some("alpha"));
        assert_eq!(query.model.as_deref(), Some("chat"));
        assert_eq!(query.from_ms, 1_796_083_200_000);
        assert_eq!(query.to_ms, 1_796_637_600_000);
        assert_eq!(query.limit, 2);
        assert_eq!(query.after.map(|c| c.entry_id), Some("e1".to_owned()));
        let defaults = parse_query("from=2026-12-01&to=2026-12-02").unwrap();
        assert_eq!((defaults.team, defaults.limit), (None, DEFAULT_LIMIT));
    }

    #[test]
    fn bad_parameters_are_refused_with_a_reason() {
        let cases = [
            ("to=2026-12-02", "from is required"),
            ("from=2026-12-02", "to is required"),
            ("from=2026-12-02&to=2026-12-01", "from must be before to"),
            (
                "from=yesterday&to=2026-12-01",
                "from: invalid date `yesterday`",
            ),
            ("from=2026-12-01&to=2026-12-02&limit=0", "limit must be"),
            ("from=2026-12-01&to=2026-12-02&limit=1001", "limit must be"),
            ("from=2026-12-01&to=2026-12-02&limit=ten", "limit must be"),
            (
                "from=2026-12-01&to=2026-12-02&cursor=zz",
                "cursor is not one",
            ),
            (
                "from=2026-12-01&to=2026-12-02&tema=a",
                "unknown parameter `tema`",
            ),
        ];
        for (query, expected) in cases {
            let error = parse_query(query).unwrap_err();
            assert!(error.starts_with(expected), "{query}: {error}");
        }
    }
}
