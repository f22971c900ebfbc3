//! Retention values, shared by `responses.retention` and `ledger.retention`: `keep`, whole
//! days (`30d`), or a duration of the other units (`12h`); never zero.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::Ctx;
use crate::config::error::Problem;

const DAY: Duration = Duration::from_secs(86_400);

/// The retention `value` of field `what`: `None` for `keep`. `keep_means` says what `keep`
/// does, for the error messages (e.g. "keep turns until deleted").
pub(super) fn parse(
    ctx: &Ctx<'_>,
    value: &Spanned<String>,
    what: &str,
    keep_means: &str,
) -> Result<Option<Duration>, Problem> {
    let text = ctx.text(value, what)?;
    if text.eq_ignore_ascii_case("keep") {
        return Ok(None);
    }
    let days = text
        .strip_suffix('d')
        .map(str::trim)
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    let duration = match days {
        Some(digits) => {
            let days: u32 = digits
                .parse()
                .map_err(|_| Problem::spanned(value, format!("{what}: `{text}` is too long")))?;
            DAY * days
        }
        None => ctx.duration(value, what).map_err(|problem| Problem {
            message: format!(
                "{} (or whole days like 30d, or `keep` to {keep_means})",
                problem.message
            ),
            ..problem
        })?,
    };
    if duration.is_zero() {
        return Err(Problem::spanned(
            value,
            format!("{what} must be longer than 0 (`keep` to {keep_means})"),
        ));
    }
    Ok(Some(duration))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::testing::{compile_yaml, error_of};

    fn ledger_retention(yaml: &str) -> Option<Duration> {
        compile_yaml(&format!("version: 1\nledger:\n{yaml}"), &[])
            .unwrap()
            .ledger
            .retention
    }

    #[test]
    fn ledger_retention_defaults_to_keep_and_takes_days_and_durations() {
        assert_eq!(
            compile_yaml("version: 1\n", &[]).unwrap().ledger.retention,
            None
        );
        assert_eq!(ledger_retention("  retention: keep\n"), None);
        assert_eq!(
            ledger_retention("  retention: 90d\n"),
            Some(Duration::from_secs(90 * 86_400))
        );
        assert_eq!(
            ledger_retention("  retention: 36h\n"),
            Some(Duration::from_secs(36 * 3_600))
        );
        let described = crate::config::describe(
            &compile_yaml("version: 1\nledger: {retention: 90d}\n", &[]).unwrap(),
        );
        assert!(
            described.contains("\n  retention           90d\n"),
            "{described}"
        );
        let kept = crate::config::describe(&compile_yaml("version: 1\n", &[]).unwrap());
        assert!(
            kept.contains("retention           keep (every row)"),
            "{kept}"
        );
    }

    #[test]
    fn bad_ledger_retentions_are_refused_at_their_position() {
        let zero = error_of("version: 1\nledger:\n  retention: 0d\n", &[]);
        assert!(
            zero.starts_with("routes.yaml:3:14: ledger.retention must be longer than 0"),
            "{zero}"
        );
        let unit = error_of("version: 1\nledger:\n  retention: 2w\n", &[]);
        assert!(
            unit.contains("ledger.retention") && unit.contains("30d"),
            "{unit}"
        );
    }

    #[test]
    fn a_retention_shorter_than_a_budget_period_is_refused() {
        let yaml = |retention: &str, period: &str| {
            format!(
                "version: 1\nledger:\n  retention: {retention}\nteams:\n  t:\n    keys: [sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8]\n    \
                 budget: {{ usd: 10, period: {period} }}\n"
            )
        };
        let short = error_of(&yaml("30d", "monthly"), &[]);
        assert!(
            short.starts_with("routes.yaml:3:14: ledger.retention must be at least 32d")
                && short.contains("team `t`"),
            "{short}"
        );
        assert!(compile_yaml(&yaml("32d", "monthly"), &[]).is_ok());
        assert!(compile_yaml(&yaml("8d", "weekly"), &[]).is_ok());
        assert!(error_of(&yaml("36h", "daily"), &[]).contains("at least 2d"));
    }
}
