//! `switchyard spend --reconcile`: a provider's cost export (AWS CUR 2.0 for Bedrock, an
//! Azure cost-management export for Azure OpenAI) set against the ledger, per model and UTC
//! day: what the proxy metered, what the cloud billed, and the difference (docs/spend.md,
//! "Reconciling with the invoice").

mod aws_cur;
mod azure;
mod columns;
pub mod command;
mod matching;
mod metered;
mod render;

use std::collections::BTreeMap;
use std::io::Read;

use chrono::NaiveDate;
use thiserror::Error;

use super::ledger::LedgerError;
use super::money::NanoUsd;
use crate::config::{Policy, PriceSource, ProviderKind};

pub use matching::Candidate;
pub use metered::metered_days;
pub use render::{render, OutputFormat};

/// Which provider's export a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// AWS Data Exports "CUR 2.0" (or legacy CUR with the same snake_case columns), CSV.
    AwsCur,
    /// Azure Cost Management "cost and usage details" export, CSV.
    Azure,
}

impl ExportFormat {
    /// The `cloud` of the providers whose ledger rows this export bills.
    pub fn cloud(self) -> &'static str {
        match self {
            ExportFormat::AwsCur => "aws",
            ExportFormat::Azure => "azure",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ExportFormat::AwsCur => "aws-cur",
            ExportFormat::Azure => "azure",
        }
    }
}

/// One usage charge read from an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledLine {
    /// The UTC day the usage happened.
    pub day: NaiveDate,
    /// What names the model: a Bedrock model or inference-profile id (from the resource ARN),
    /// else the usage type without its region and token kind; Azure's meter name.
    pub key: String,
    /// Where it ran: the AWS region code, or the Azure resource (account) name.
    pub resource: String,
    pub cost: NanoUsd,
}

/// Why an export could not be reconciled.
#[derive(Debug, Error)]
pub enum ReconcileError {
    #[error("cannot read the export: {0}")]
    Csv(String),
    #[error("the {format} export has no `{column}` column (columns: {found})")]
    MissingColumn {
        format: &'static str,
        column: String,
        found: String,
    },
    #[error("export line {line}: {reason}")]
    BadRow { line: u64, reason: String },
    #[error("--map `{0}`: expected BILLED_KEY=PROVIDER/MODEL")]
    BadMapping(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<csv::Error> for ReconcileError {
    fn from(error: csv::Error) -> Self {
        ReconcileError::Csv(error.to_string())
    }
}

/// The providers of the policy on the export's cloud (whose ledger rows it bills).
pub fn providers(policy: &Policy, format: ExportFormat) -> Vec<String> {
    policy
        .providers
        .values()
        .filter(|p| p.cloud == format.cloud())
        .map(|p| p.name.clone())
        .collect()
}

/// Reads the usage charges of an export (other line types and services are skipped).
pub fn read_export(
    format: ExportFormat,
    reader: impl Read,
) -> Result<Vec<BilledLine>, ReconcileError> {
    match format {
        ExportFormat::AwsCur => aws_cur::read(reader),
        ExportFormat::Azure => azure::read(reader),
    }
}

/// What the ledger metered for one target on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeteredDay {
    pub day: NaiveDate,
    pub provider: String,
    /// `provider/upstream model` (the ledger's `target`).
    pub target: String,
    pub requests: i64,
    pub cost: NanoUsd,
}

/// One line of the reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub day: NaiveDate,
    /// `provider/upstream model`, or `(unmapped) KEY` for a billed model no target matched.
    pub target: String,
    pub requests: i64,
    pub metered: NanoUsd,
    pub billed: NanoUsd,
}

impl Reconciled {
    /// Billed minus metered: positive when the cloud charged more than the proxy counted.
    pub fn difference(&self) -> NanoUsd {
        self.billed - self.metered
    }
}

/// The targets an export's lines can be matched to: every target of the policy on a
/// provider of the export's cloud, with the names it may appear under on the bill.
pub fn candidates(policy: &Policy, format: ExportFormat) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for model in policy.models.values() {
        for target in &model.targets {
            let provider = &target.provider;
            if provider.cloud != format.cloud() || out.iter().any(|c| c.target == target.id.0) {
                continue;
            }
            let mut names = vec![target.upstream_model.clone()];
            if let PriceSource::Table { entry } = &target.price_source {
                names.push(entry.clone());
            }
            let resource = match &provider.kind {
                ProviderKind::Azure(settings) => {
                    azure::resource_of_endpoint(settings.endpoint.expose())
                }
                _ => provider.region.clone(),
            };
            out.push(Candidate::new(target.id.0.clone(), names, resource));
        }
    }
    out
}

/// Parses `--map BILLED_KEY=PROVIDER/MODEL` overrides.
pub fn parse_mappings(raw: &[String]) -> Result<Vec<(String, String)>, ReconcileError> {
    raw.iter()
        .map(|text| match text.split_once('=') {
            Some((key, target)) if !key.trim().is_empty() && target.contains('/') => {
                Ok((key.trim().to_owned(), target.trim().to_owned()))
            }
            _ => Err(ReconcileError::BadMapping(text.clone())),
        })
        .collect()
}

/// Sets billed lines against metered days: billed lines are mapped to targets (overrides
/// first, then by name), both sides are added per day and target, and every day × target
/// seen on either side is one line, in day then target order.
pub fn reconcile(
    billed: &[BilledLine],
    metered: &[MeteredDay],
    candidates: &[Candidate],
    overrides: &[(String, String)],
) -> Vec<Reconciled> {
    let mut lines: BTreeMap<(NaiveDate, String), Reconciled> = BTreeMap::new();
    for m in metered {
        let entry = lines
            .entry((m.day, m.target.clone()))
            .or_insert_with(|| empty(m.day, &m.target));
        entry.requests += m.requests;
        entry.metered += m.cost;
    }
    for b in billed {
        let target = matching::resolve(&b.key, &b.resource, candidates, overrides)
            .unwrap_or_else(|| format!("(unmapped) {}", b.key));
        let entry = lines
            .entry((b.day, target.clone()))
            .or_insert_with(|| empty(b.day, &target));
        entry.billed += b.cost;
    }
    lines.into_values().collect()
}

fn empty(day: NaiveDate, target: &str) -> Reconciled {
    Reconciled {
        day,
        target: target.to_owned(),
        requests: 0,
        metered: NanoUsd::ZERO,
        billed: NanoUsd::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn nanos(n: i64) -> NanoUsd {
        NanoUsd::from_nanos(n)
    }

    #[test]
    fn metered_and_billed_meet_per_day_and_target() {
        let candidates = [
            Candidate::new(
                "bedrock-east/us.anthropic.claude-3-5-sonnet-20240620-v1:0".to_owned(),
                vec!["us.anthropic.claude-3-5-sonnet-20240620-v1:0".to_owned()],
                Some("us-east-1".to_owned()),
            ),
            Candidate::new(
                "bedrock-east/amazon.nova-lite-v1:0".to_owned(),
                vec!["amazon.nova-lite-v1:0".to_owned()],
                Some("us-east-1".to_owned()),
            ),
        ];
        let metered = [
            MeteredDay {
                day: day(3),
                provider: "bedrock-east".to_owned(),
                target: candidates[0].target.clone(),
                requests: 4,
                cost: nanos(1_000),
            },
            MeteredDay {
                day: day(4),
                provider: "bedrock-east".to_owned(),
                target: candidates[1].target.clone(),
                requests: 1,
                cost: nanos(50),
            },
        ];
        let billed = [
            BilledLine {
                day: day(3),
                key: "Claude3.5Sonnet".to_owned(),
                resource: "us-east-1".to_owned(),
                cost: nanos(600),
            },
            BilledLine {
                day: day(3),
                key: "Claude3.5Sonnet".to_owned(),
                resource: "us-east-1".to_owned(),
                cost: nanos(401),
            },
            BilledLine {
                day: day(3),
                key: "Llama3-70B".to_owned(),
                resource: "us-east-1".to_owned(),
                cost: nanos(7),
            },
        ];
        let lines = reconcile(&billed, &metered, &candidates, &[]);
        assert_eq!(lines.len(), 3, "{lines:?}");
        // Day 3: the unmapped line sorts first (`(` before letters), then the mapped one.
        assert_eq!(lines[0].target, "(unmapped) Llama3-70B");
        assert_eq!(lines[0].difference(), nanos(7));
        assert_eq!(lines[1].target, candidates[0].target);
        assert_eq!(
            (lines[1].requests, lines[1].metered, lines[1].billed),
            (4, nanos(1_000), nanos(1_001))
        );
        assert_eq!(lines[1].difference(), nanos(1));
        assert_eq!(
            (lines[2].day, lines[2].billed, lines[2].difference()),
            (day(4), NanoUsd::ZERO, nanos(-50))
        );
        // An override maps the unmapped key.
        let overrides =
            parse_mappings(&["Llama3-70B=bedrock-east/amazon.nova-lite-v1:0".to_owned()]).unwrap();
        let lines = reconcile(&billed, &metered, &candidates, &overrides);
        assert!(lines.iter().all(|l| !l.target.starts_with("(unmapped)")));
        assert!(parse_mappings(&["no-target".to_owned()]).is_err());
        assert!(parse_mappings(&["=a/b".to_owned()]).is_err());
    }
}
