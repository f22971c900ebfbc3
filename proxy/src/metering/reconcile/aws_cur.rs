//! AWS Data Exports CUR 2.0 (CSV) for Amazon Bedrock: one row per usage type per hour or
//! day, e.g. `line_item_usage_type = USE1-Claude3.5Sonnet-input-tokens`. Only `Usage` lines
//! of a Bedrock product code count; credits, refunds, taxes and fees are not per-request
//! spend (docs/spend.md, "Reconciling with the invoice").

use std::io::Read;

use super::columns::{cell, line_of, parse_amount, parse_day, Columns};
use super::{BilledLine, ReconcileError};

const FORMAT: &str = "aws-cur";

pub(super) fn read(reader: impl Read) -> Result<Vec<BilledLine>, ReconcileError> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let columns = Columns::new(FORMAT, csv.headers()?);
    let start = columns.require(&["line_item_usage_start_date"])?;
    let product = columns.require(&["line_item_product_code"])?;
    let usage_type = columns.require(&["line_item_usage_type"])?;
    let cost = columns.require(&["line_item_unblended_cost"])?;
    let line_type = columns.find(&["line_item_line_item_type"]);
    let currency = columns.find(&["line_item_currency_code"]);
    let region = columns.find(&["product_region_code", "product_region"]);
    let resource = columns.find(&["line_item_resource_id"]);

    let mut lines = Vec::new();
    for record in csv.records() {
        let record = record?;
        let line = line_of(&record);
        let is_usage = matches!(cell(&record, line_type), "" | "Usage");
        if !is_usage
            || !cell(&record, Some(product))
                .to_ascii_lowercase()
                .contains("bedrock")
        {
            continue;
        }
        let currency = cell(&record, currency);
        if !currency.is_empty() && !currency.eq_ignore_ascii_case("USD") {
            return Err(ReconcileError::BadRow {
                line,
                reason: format!("costs in {currency}: the proxy meters USD"),
            });
        }
        let day = parse_day(cell(&record, Some(start))).ok_or_else(|| ReconcileError::BadRow {
            line,
            reason: format!("`{}` is not a date", cell(&record, Some(start))),
        })?;
        lines.push(BilledLine {
            day,
            key: model_key(cell(&record, resource), cell(&record, Some(usage_type))),
            resource: cell(&record, region).to_owned(),
            cost: parse_amount(cell(&record, Some(cost)), line)?,
        });
    }
    Ok(lines)
}

/// What names the model of a Bedrock line: the model or system inference-profile id of
/// its resource ARN (`…:foundation-model/anthropic.claude-…-v1:0`,
/// `…:inference-profile/us.anthropic.claude-…`), else the usage type without its region
/// prefix and token-kind suffix (`USE1-Claude3.5Sonnet-input-tokens` → `Claude3.5Sonnet`).
fn model_key(resource_id: &str, usage_type: &str) -> String {
    if !resource_id.contains("application-inference-profile/") {
        for marker in ["foundation-model/", "inference-profile/"] {
            if let Some((_, id)) = resource_id.split_once(marker) {
                if !id.is_empty() {
                    return id.to_owned();
                }
            }
        }
    }
    let without_region = match usage_type.split_once('-') {
        Some((prefix, rest)) if is_region_prefix(prefix) => rest,
        _ => usage_type,
    };
    let lower = without_region.to_ascii_lowercase();
    let cut = [
        "-input-token",
        "-output-token",
        "-cache-read",
        "-cache-write",
        "-mantle-",
        "-inputtoken",
        "-outputtoken",
    ]
    .iter()
    .filter_map(|suffix| lower.find(suffix))
    .min()
    .unwrap_or(without_region.len());
    without_region[..cut].to_owned()
}

/// `USE1`, `EUC1`, `APN2`, `USW2`: AWS's region codes in usage types.
fn is_region_prefix(prefix: &str) -> bool {
    if !prefix.is_ascii() {
        return false;
    }
    let (letters, digits) = prefix.split_at(prefix.len().saturating_sub(1));
    (2..=4).contains(&letters.len())
        && letters.bytes().all(|b| b.is_ascii_uppercase())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::money::NanoUsd;

    const HEADER: &str =
        "identity_line_item_id,line_item_usage_start_date,line_item_usage_end_date,\
line_item_product_code,line_item_usage_type,line_item_line_item_type,line_item_resource_id,\
line_item_usage_amount,line_item_unblended_cost,line_item_currency_code,product_region_code\n";

    #[test]
    fn reads_bedrock_usage_lines_exactly() {
        let csv = format!(
            "{HEADER}\
a,2026-11-03T00:00:00Z,2026-11-03T01:00:00Z,AmazonBedrock,USE1-Claude3.5Sonnet-input-tokens,Usage,,1000,0.0030000001,USD,us-east-1\n\
b,2026-11-03T00:00:00Z,2026-11-03T01:00:00Z,AmazonBedrock,USE1-Claude3.5Sonnet-output-tokens,Usage,,100,0.0015,USD,us-east-1\n\
c,2026-11-03T00:00:00Z,2026-11-03T01:00:00Z,AmazonBedrock,USE1-Claude3.5Sonnet-input-tokens,Tax,,0,0.5,USD,us-east-1\n\
d,2026-11-03T00:00:00Z,2026-11-03T01:00:00Z,AmazonEC2,USE1-BoxUsage:t3.micro,Usage,i-1,1,0.01,USD,us-east-1\n\
e,2026-11-04T00:00:00Z,2026-11-04T01:00:00Z,AmazonBedrock,EUC1-Nova-cache-read-input-token-count,Usage,\
arn:aws:bedrock:eu-central-1:123456789012:inference-profile/eu.amazon.nova-lite-v1:0,5,2.5E-7,USD,eu-central-1\n"
        );
        let lines = read(csv.as_bytes()).unwrap();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0].key, "Claude3.5Sonnet");
        assert_eq!(lines[0].resource, "us-east-1");
        assert_eq!(lines[0].cost, NanoUsd::from_nanos(3_000_000));
        assert_eq!(lines[1].cost, NanoUsd::from_nanos(1_500_000));
        assert_eq!(lines[2].key, "eu.amazon.nova-lite-v1:0");
        assert_eq!(lines[2].cost, NanoUsd::from_nanos(250));
        assert_eq!(lines[2].day.to_string(), "2026-11-04");
    }

    #[test]
    fn other_currencies_and_missing_columns_are_errors() {
        let csv = format!(
            "{HEADER}a,2026-11-03,2026-11-03,AmazonBedrock,USE1-X-input-tokens,Usage,,1,1.0,EUR,us-east-1\n"
        );
        let error = read(csv.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("line 2") && error.contains("EUR"), "{error}");
        let error = read("line_item_usage_start_date,line_item_product_code\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(error.contains("line_item_usage_type"), "{error}");
        let csv = format!(
            "{HEADER}a,yesterday,,AmazonBedrock,USE1-X-input-tokens,Usage,,1,1.0,USD,us-east-1\n"
        );
        assert!(read(csv.as_bytes()).is_err());
    }

    #[test]
    fn usage_types_lose_region_and_token_kind() {
        for (usage_type, key) in [
            ("USE1-Claude3.5Sonnet-input-tokens", "Claude3.5Sonnet"),
            ("USW2-Llama3-70B-output-tokens", "Llama3-70B"),
            (
                "APN1-Claude4.5Haiku-cache-write-input-token-count",
                "Claude4.5Haiku",
            ),
            ("Claude3Haiku-mantle-input-tokens-flex", "Claude3Haiku"),
            ("TitanEmbeddings", "TitanEmbeddings"),
        ] {
            assert_eq!(model_key("", usage_type), key, "{usage_type}");
        }
        assert_eq!(
            model_key(
                "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
                "USE1-Claude3Haiku-input-tokens"
            ),
            "anthropic.claude-3-haiku-20240307-v1:0"
        );
        assert_eq!(
            model_key(
                "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc123",
                "USE1-Claude3Haiku-input-tokens"
            ),
            "Claude3Haiku"
        );
    }
}
