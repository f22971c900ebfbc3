//! Finding an export's columns by name, whatever the spelling (`line_item_usage_type`,
//! legacy CUR's `lineItem/UsageType`, Azure's `MeterName` or `meterName`), and reading its
//! dates and amounts.

use std::collections::HashMap;

use chrono::NaiveDate;
use csv::StringRecord;

use super::ReconcileError;
use crate::metering::money::NanoUsd;

/// The header of an export: column positions by normalised name.
pub(super) struct Columns {
    format: &'static str,
    positions: HashMap<String, usize>,
    names: Vec<String>,
}

/// Lower-case letters and digits only: `lineItem/UsageType` = `line_item_usage_type`.
fn normalise(name: &str) -> String {
    name.trim_start_matches('\u{feff}')
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl Columns {
    pub(super) fn new(format: &'static str, header: &StringRecord) -> Columns {
        let mut positions = HashMap::new();
        for (i, name) in header.iter().enumerate() {
            positions.entry(normalise(name)).or_insert(i);
        }
        Columns {
            format,
            positions,
            names: header.iter().map(str::to_owned).collect(),
        }
    }

    /// The first of `names` the export has.
    pub(super) fn find(&self, names: &[&str]) -> Option<usize> {
        names
            .iter()
            .find_map(|name| self.positions.get(&normalise(name)).copied())
    }

    /// The first of `names` the export has, else an error naming the first.
    pub(super) fn require(&self, names: &[&str]) -> Result<usize, ReconcileError> {
        self.find(names)
            .ok_or_else(|| ReconcileError::MissingColumn {
                format: self.format,
                column: names.first().copied().unwrap_or_default().to_owned(),
                found: self.names.join(", "),
            })
    }
}

/// The cell at `index`, trimmed (`""` past the end of a short row).
pub(super) fn cell(record: &StringRecord, index: Option<usize>) -> &str {
    index.and_then(|i| record.get(i)).map_or("", str::trim)
}

/// The UTC day of an export's date: `2026-11-03`, `2026-11-03T00:00:00Z`,
/// `2026-11-03 00:00:00` (CUR), or `11/03/2026` (Azure's US-style dates).
pub(super) fn parse_day(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    if let Some(date) = text.get(..10) {
        if let Ok(day) = NaiveDate::parse_from_str(date, "%Y-%m-%d") {
            return Some(day);
        }
    }
    let date = text.split([' ', 'T']).next().unwrap_or(text);
    NaiveDate::parse_from_str(date, "%m/%d/%Y").ok()
}

/// An amount cell, exactly to the nano-dollar (an empty cell is 0).
pub(super) fn parse_amount(text: &str, line: u64) -> Result<NanoUsd, ReconcileError> {
    if text.is_empty() {
        return Ok(NanoUsd::ZERO);
    }
    NanoUsd::parse_decimal(text).ok_or_else(|| ReconcileError::BadRow {
        line,
        reason: format!("`{text}` is not an amount"),
    })
}

/// The line number of a record, for errors (1 is the header).
pub(super) fn line_of(record: &StringRecord) -> u64 {
    record.position().map_or(0, csv::Position::line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_found_whatever_the_spelling() {
        let header = StringRecord::from(vec!["\u{feff}lineItem/UsageType", "MeterName"]);
        let columns = Columns::new("test", &header);
        assert_eq!(columns.find(&["line_item_usage_type"]), Some(0));
        assert_eq!(columns.find(&["nope", "meterName"]), Some(1));
        let missing = columns.require(&["line_item_unblended_cost"]);
        assert!(
            matches!(&missing, Err(ReconcileError::MissingColumn { column, .. }) if column == "line_item_unblended_cost"),
            "{missing:?}"
        );
    }

    #[test]
    fn export_dates_are_days() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 3);
        for text in [
            "2026-11-03",
            "2026-11-03T00:00:00Z",
            "2026-11-03T05:00:00.000Z",
            "2026-11-03 23:59:59",
            "11/03/2026",
            "11/03/2026 00:00:00",
        ] {
            assert_eq!(parse_day(text), day, "{text}");
        }
        assert_eq!(parse_day("03.11.2026"), None);
        assert_eq!(parse_day(""), None);
    }
}
