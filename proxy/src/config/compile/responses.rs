//! `responses:` → [`ConversationSettings`]: how long stored Responses turns are kept and how
//! many the in-memory cache holds (docs/configuration.md, "responses").

use serde_saphyr::Spanned;

use super::Ctx;
use crate::config::error::Problem;
use crate::config::raw::RawResponses;
use crate::conversations::settings::{DEFAULT_CACHE_ENTRIES, DEFAULT_RETENTION};
use crate::conversations::{ConversationSettings, Retention};

pub(super) fn compile(ctx: &Ctx<'_>, raw: RawResponses) -> Result<ConversationSettings, Problem> {
    let retention = match &raw.retention {
        Some(value) => retention(ctx, value)?,
        None => Retention::For(DEFAULT_RETENTION),
    };
    let cache_entries = match &raw.cache_entries {
        Some(value) => u64::try_from(value.value).map_err(|_| {
            Problem::spanned(
                value,
                "responses.cache_entries must be 0 (no cache) or more",
            )
        })?,
        None => DEFAULT_CACHE_ENTRIES,
    };
    Ok(ConversationSettings {
        retention,
        cache_entries,
    })
}

/// `keep`, whole days (`30d`), or a duration of the other units (`12h`); never zero.
fn retention(ctx: &Ctx<'_>, value: &Spanned<String>) -> Result<Retention, Problem> {
    let keep = "keep turns until deleted; clients that want nothing stored send `store: false`";
    Ok(
        match super::retention::parse(ctx, value, "responses.retention", keep)? {
            Some(duration) => Retention::For(duration),
            None => Retention::Keep,
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{compile_yaml, error_of};
    use crate::conversations::{ConversationSettings, Retention};
    use std::time::Duration;

    fn settings(section: &str) -> ConversationSettings {
        compile_yaml(&format!("version: 1\nresponses:\n{section}"), &[])
            .unwrap()
            .responses
    }

    #[test]
    fn defaults_keep_30_days_and_cache_10000() {
        let policy = compile_yaml("version: 1\n", &[]).unwrap();
        assert_eq!(policy.responses, ConversationSettings::default());
        assert_eq!(
            policy.responses.retention,
            Retention::For(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(policy.responses.cache_entries, 10_000);
    }

    #[test]
    fn retention_takes_days_durations_and_keep() {
        assert_eq!(
            settings("  retention: 7d\n").retention,
            Retention::For(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(
            settings("  retention: 12h\n").retention,
            Retention::For(Duration::from_secs(12 * 3_600))
        );
        assert_eq!(settings("  retention: keep\n").retention, Retention::Keep);
        assert_eq!(settings("  cache_entries: 0\n").cache_entries, 0);
        assert_eq!(settings("  cache_entries: 500\n").cache_entries, 500);
    }

    #[test]
    fn check_shows_the_effective_settings() {
        let described = |yaml: &str| crate::config::describe(&compile_yaml(yaml, &[]).unwrap());
        let defaults = described("version: 1\n");
        assert!(
            defaults.contains("\n  retention           30d\n"),
            "{defaults}"
        );
        assert!(
            defaults.contains("\n  cache_entries       10000\n"),
            "{defaults}"
        );
        let set = described("version: 1\nresponses: {retention: 90m, cache_entries: 0}\n");
        assert!(set.contains("\n  retention           5400s\n"), "{set}");
        assert!(set.contains("\n  cache_entries       0\n"), "{set}");
        let keep = described("version: 1\nresponses: {retention: keep}\n");
        assert!(
            keep.contains("retention           keep (until deleted)"),
            "{keep}"
        );
    }

    #[test]
    fn bad_values_are_refused_at_their_position() {
        let zero = error_of("version: 1\nresponses:\n  retention: 0d\n", &[]);
        assert!(
            zero.starts_with("routes.yaml:3:14: responses.retention must be longer than 0"),
            "{zero}"
        );
        let unit = error_of("version: 1\nresponses:\n  retention: 3w\n", &[]);
        assert!(
            unit.contains("responses.retention") && unit.contains("30d"),
            "{unit}"
        );
        let negative = error_of("version: 1\nresponses:\n  cache_entries: -1\n", &[]);
        assert!(
            negative.contains("responses.cache_entries must be 0 (no cache) or more"),
            "{negative}"
        );
        let unknown = error_of("version: 1\nresponses:\n  ttl: 1d\n", &[]);
        assert!(unknown.contains("ttl"), "{unknown}");
    }
}
