//! `${NAME}` / `${NAME:-default}` expansion inside string values of `routes.yaml`.
//!
//! Expansion happens per value after YAML parsing (never on the raw text), so a
//! variable's content can neither change the document's structure nor appear in a
//! YAML syntax error.

/// The environment lookup compile uses; injected so tests do not touch the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A value after expansion, and the variables that contributed nothing to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expanded {
    pub value: String,
    /// Variables that were unset or empty and whose default (if any) was empty too.
    pub blank: Vec<BlankVar>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlankVar {
    pub name: String,
    /// `true` when the variable exists but is the empty string.
    pub set: bool,
}

impl Expanded {
    /// Why this value is empty, in words, when an environment variable made it so.
    pub fn blank_cause(&self) -> Option<String> {
        if !self.value.is_empty() || self.blank.is_empty() {
            return None;
        }
        let causes: Vec<String> = self
            .blank
            .iter()
            .map(|var| match var.set {
                true => format!("environment variable {} is empty", var.name),
                false => format!("environment variable {} is not set", var.name),
            })
            .collect();
        Some(causes.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EnvError {
    #[error("environment variable {0} is not set (write ${{{0}:-default}} to make it optional)")]
    Missing(String),
    #[error("unclosed `${{` (a variable is written ${{NAME}} or ${{NAME:-default}}; `$$` is a literal `$`)")]
    Unclosed,
    #[error(
        "`${{{0}}}` is not a variable name (letters, digits and `_`, not starting with a digit)"
    )]
    BadName(String),
}

/// Expands every `${NAME}` and `${NAME:-default}` in `input`; `$$` is a literal `$`.
///
/// A `$` followed by anything else is kept as written, so passwords and URLs that
/// contain a lone `$` need no escaping. `:-` uses the default when the variable is
/// unset *or* empty, as in the shell.
pub(crate) fn expand(input: &str, env: EnvLookup<'_>) -> Result<Expanded, EnvError> {
    let mut out = Expanded {
        value: String::with_capacity(input.len()),
        blank: Vec::new(),
    };
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.value.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.value.push('$');
            rest = tail;
        } else if let Some(body_and_tail) = after.strip_prefix('{') {
            let close = body_and_tail.find('}').ok_or(EnvError::Unclosed)?;
            substitute(&body_and_tail[..close], env, &mut out)?;
            rest = &body_and_tail[close + 1..];
        } else {
            out.value.push('$');
            rest = after;
        }
    }
    out.value.push_str(rest);
    Ok(out)
}

/// Resolves one `NAME` or `NAME:-default` (the text between the braces) into `out`.
fn substitute(body: &str, env: EnvLookup<'_>, out: &mut Expanded) -> Result<(), EnvError> {
    let (name, default) = match body.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (body, None),
    };
    if !is_variable_name(name) {
        // Only the name part is echoed: a default could be a secret written inline.
        return Err(EnvError::BadName(name.to_owned()));
    }
    let found = env(name);
    let value = match (found.as_deref(), default) {
        (Some(value), _) if !value.is_empty() => value.to_owned(),
        (Some(_), Some(default)) | (None, Some(default)) => default.to_owned(),
        (Some(_), None) => String::new(),
        (None, None) => return Err(EnvError::Missing(name.to_owned())),
    };
    if value.is_empty() {
        out.blank.push(BlankVar {
            name: name.to_owned(),
            set: found.is_some(),
        });
    }
    out.value.push_str(&value);
    Ok(())
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    fn value(input: &str, pairs: &'static [(&'static str, &'static str)]) -> String {
        match expand(input, &env_of(pairs)) {
            Ok(expanded) => expanded.value,
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(
            value("https://api.openai.com/v1", &[]),
            "https://api.openai.com/v1"
        );
    }

    #[test]
    fn variables_are_substituted_anywhere_in_the_value() {
        let pairs = &[("HOST", "db"), ("PORT", "5432")];
        assert_eq!(
            value("postgres://${HOST}:${PORT}/x", pairs),
            "postgres://db:5432/x"
        );
    }

    #[test]
    fn default_applies_when_unset_or_empty() {
        assert_eq!(value("${A:-fallback}", &[]), "fallback");
        assert_eq!(value("${A:-fallback}", &[("A", "")]), "fallback");
        assert_eq!(value("${A:-fallback}", &[("A", "set")]), "set");
        assert_eq!(value("${A:-}", &[]), "");
    }

    #[test]
    fn default_may_contain_colons_and_slashes() {
        let url = "${U:-https://example.com:8443/v1}";
        assert_eq!(value(url, &[]), "https://example.com:8443/v1");
    }

    #[test]
    fn double_dollar_is_a_literal_dollar_and_lone_dollar_is_kept() {
        assert_eq!(value("a$$b", &[]), "a$b");
        assert_eq!(value("$${A}", &[("A", "x")]), "${A}");
        assert_eq!(value("pa$word$", &[]), "pa$word$");
    }

    #[test]
    fn missing_variable_without_default_is_an_error_naming_it() {
        let err = expand("${OPENAI_API_KEY}", &env_of(&[])).err();
        assert_eq!(err, Some(EnvError::Missing("OPENAI_API_KEY".into())));
        let message = err.map(|err| err.to_string()).unwrap_or_default();
        assert!(message.contains("OPENAI_API_KEY is not set"), "{message}");
        assert!(message.contains("${OPENAI_API_KEY:-default}"), "{message}");
    }

    #[test]
    fn unclosed_and_bad_names_are_errors() {
        assert_eq!(expand("${A", &env_of(&[])).err(), Some(EnvError::Unclosed));
        assert_eq!(
            expand("${1A}", &env_of(&[])).err(),
            Some(EnvError::BadName("1A".into()))
        );
        assert_eq!(
            expand("${}", &env_of(&[])).err(),
            Some(EnvError::BadName(String::new()))
        );
    }

    #[test]
    fn blank_variables_are_reported_with_their_cause() {
        let unset = expand("${OPENAI_API_KEY:-}", &env_of(&[])).ok();
        let cause = unset.and_then(|expanded| expanded.blank_cause());
        assert_eq!(
            cause.as_deref(),
            Some("environment variable OPENAI_API_KEY is not set")
        );

        let empty = expand("${K}", &env_of(&[("K", "")])).ok();
        let cause = empty.and_then(|expanded| expanded.blank_cause());
        assert_eq!(cause.as_deref(), Some("environment variable K is empty"));
    }

    #[test]
    fn a_non_empty_value_has_no_blank_cause() {
        let expanded = expand("x${A:-}", &env_of(&[])).ok();
        assert_eq!(expanded.and_then(|e| e.blank_cause()), None);
    }
}
