//! Azure Cost Management "cost and usage details" export (CSV) for Azure OpenAI: one row per
//! meter, resource and day, e.g. `MeterName = gpt-4o-0806 Inp glbl Tokens`. Only `Usage`
//! charges of an OpenAI meter count (docs/spend.md, "Reconciling with the invoice").

use std::io::Read;

use super::columns::{cell, line_of, parse_amount, parse_day, Columns};
use super::{BilledLine, ReconcileError};

const FORMAT: &str = "azure";

pub(super) fn read(reader: impl Read) -> Result<Vec<BilledLine>, ReconcileError> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let columns = Columns::new(FORMAT, csv.headers()?);
    let date = columns.require(&["Date", "UsageDate"])?;
    let meter = columns.require(&["MeterName", "Meter"])?;
    let category = columns.find(&["MeterCategory"]);
    let subcategory = columns.find(&["MeterSubCategory", "MeterSubcategory"]);
    let charge_type = columns.find(&["ChargeType"]);
    let resource_id = columns.find(&["ResourceId", "InstanceId"]);
    let resource_name = columns.find(&["ResourceName"]);
    // USD first (what the proxy meters); else the billing currency, which must be USD.
    let (cost, currency) = match columns.find(&["CostInUsd"]) {
        Some(usd) => (usd, None),
        None => (
            columns.require(&["CostInBillingCurrency", "Cost", "PreTaxCost"])?,
            columns.find(&["BillingCurrency", "BillingCurrencyCode", "Currency"]),
        ),
    };

    let mut lines = Vec::new();
    for record in csv.records() {
        let record = record?;
        let line = line_of(&record);
        let is_usage = matches!(cell(&record, charge_type), "" | "Usage");
        let is_openai = (category.is_none() && subcategory.is_none())
            || [category, subcategory].iter().any(|c| {
                let text = cell(&record, *c).to_ascii_lowercase();
                text.contains("openai") || text.contains("foundry")
            });
        if !is_usage || !is_openai {
            continue;
        }
        let currency = cell(&record, currency);
        if !currency.is_empty() && !currency.eq_ignore_ascii_case("USD") {
            return Err(ReconcileError::BadRow {
                line,
                reason: format!("costs in {currency}: the proxy meters USD (export CostInUsd)"),
            });
        }
        let day = parse_day(cell(&record, Some(date))).ok_or_else(|| ReconcileError::BadRow {
            line,
            reason: format!("`{}` is not a date", cell(&record, Some(date))),
        })?;
        let id = cell(&record, resource_id);
        let key = deployment_of(id).unwrap_or_else(|| cell(&record, Some(meter)));
        let resource = match cell(&record, resource_name) {
            "" => account_of(id),
            name => name,
        };
        lines.push(BilledLine {
            day,
            key: key.to_owned(),
            resource: resource.to_owned(),
            cost: parse_amount(cell(&record, Some(cost)), line)?,
        });
    }
    Ok(lines)
}

/// The deployment of a resource id that names one (`…/accounts/A/deployments/D`).
fn deployment_of(resource_id: &str) -> Option<&str> {
    let lower = resource_id.to_ascii_lowercase();
    let at = lower.find("/deployments/")? + "/deployments/".len();
    resource_id[at..]
        .split('/')
        .next()
        .filter(|d| !d.is_empty())
}

/// The Azure OpenAI account of a resource id (`…/Microsoft.CognitiveServices/accounts/A`).
fn account_of(resource_id: &str) -> &str {
    let lower = resource_id.to_ascii_lowercase();
    match lower.find("/accounts/") {
        Some(at) => resource_id[at + "/accounts/".len()..]
            .split('/')
            .next()
            .unwrap_or_default(),
        None => resource_id.rsplit('/').next().unwrap_or_default(),
    }
}

/// The account name of an Azure endpoint (`https://contoso-east.openai.azure.com` →
/// `contoso-east`), which is the resource name on the bill.
pub(super) fn resource_of_endpoint(endpoint: &str) -> Option<String> {
    let host = endpoint
        .split("://")
        .nth(1)?
        .split(['/', ':'])
        .next()?
        .to_ascii_lowercase();
    let (account, domain) = host.split_once('.')?;
    domain.ends_with("azure.com").then(|| account.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::money::NanoUsd;

    const HEADER: &str = "Date,MeterCategory,MeterSubCategory,MeterName,ChargeType,ResourceId,\
ResourceLocation,Quantity,CostInBillingCurrency,BillingCurrency\n";
    const ACCOUNT: &str =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/contoso-east";

    #[test]
    fn reads_openai_usage_rows_exactly() {
        let csv = format!(
            "{HEADER}\
11/03/2026,Cognitive Services,Azure OpenAI,gpt-4o-0806 Inp glbl Tokens,Usage,{ACCOUNT},eastus,1.2,0.00300000049,USD\n\
11/03/2026,Cognitive Services,Azure OpenAI,gpt-4o-0806 Outp glbl Tokens,Usage,{ACCOUNT},eastus,0.1,0.001,USD\n\
11/03/2026,Cognitive Services,Speech,S1 Audio,Usage,{ACCOUNT},eastus,1,9.99,USD\n\
11/03/2026,Cognitive Services,Azure OpenAI,gpt-4o-0806 Inp glbl Tokens,Refund,{ACCOUNT},eastus,1,-1,USD\n\
11/04/2026,Foundry Models,Azure OpenAI,gpt-4o-mini Inp Tokens,Usage,{ACCOUNT}/deployments/chat-mini,eastus,1,0.5,usd\n"
        );
        let lines = read(csv.as_bytes()).unwrap();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0].key, "gpt-4o-0806 Inp glbl Tokens");
        assert_eq!(lines[0].resource, "contoso-east");
        assert_eq!(lines[0].cost, NanoUsd::from_nanos(3_000_000));
        assert_eq!(lines[0].day.to_string(), "2026-11-03");
        assert_eq!(
            lines[2].key, "chat-mini",
            "a deployment in the resource id names it"
        );
        assert_eq!(lines[2].cost, NanoUsd::from_nanos(500_000_000));
    }

    #[test]
    fn usd_column_wins_and_other_currencies_are_refused() {
        let csv = "date,meterName,costInUsd,costInBillingCurrency,billingCurrency\n\
2026-11-03,gpt-4o Inp Tokens,1.25,1.10,EUR\n";
        let lines = read(csv.as_bytes()).unwrap();
        assert_eq!(lines[0].cost, NanoUsd::from_nanos(1_250_000_000));
        let csv = "Date,MeterName,CostInBillingCurrency,BillingCurrency\n2026-11-03,m,1.10,EUR\n";
        let error = read(csv.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("EUR"), "{error}");
        let error = read("Date,Cost\n".as_bytes()).unwrap_err().to_string();
        assert!(error.contains("MeterName"), "{error}");
    }

    #[test]
    fn endpoints_name_their_account() {
        assert_eq!(
            resource_of_endpoint("https://contoso-east.openai.azure.com").as_deref(),
            Some("contoso-east")
        );
        assert_eq!(
            resource_of_endpoint("https://Foo.cognitiveservices.azure.com/").as_deref(),
            Some("foo")
        );
        assert_eq!(resource_of_endpoint("http://127.0.0.1:8080"), None);
    }
}
