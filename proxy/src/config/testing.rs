//! Test helpers: compile YAML text under a fixed, injected environment.

use std::path::Path;
use std::sync::Arc;

use super::{compile_str, ConfigError, Policy, Provider};

/// The file name tests' errors start with.
pub(crate) const PATH: &str = "routes.yaml";

/// An environment holding exactly `pairs`.
pub(crate) fn env_from<'a>(
    pairs: &'a [(&'a str, &'a str)],
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        pairs
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    }
}

pub(crate) fn compile_yaml(yaml: &str, env: &[(&str, &str)]) -> Result<Policy, ConfigError> {
    compile_str(yaml, Path::new(PATH), &env_from(env))
}

/// The error's display text, or a marker that the policy compiled.
pub(crate) fn error_of(yaml: &str, env: &[(&str, &str)]) -> String {
    match compile_yaml(yaml, env) {
        Ok(_) => "<compiled without error>".to_owned(),
        Err(err) => err.to_string(),
    }
}

/// Provider `p` compiled from `entry`, the lines of one `providers:` entry (indented by four).
pub(crate) fn provider(entry: &str, env: &[(&str, &str)]) -> Result<Arc<Provider>, ConfigError> {
    let policy = compile_yaml(&format!("version: 1\nproviders:\n  p:\n{entry}"), env)?;
    Ok(Arc::clone(
        policy.providers.get("p").expect("provider p is compiled"),
    ))
}

/// The error of a policy whose only provider `p` is `entry` (no environment).
pub(crate) fn provider_error(entry: &str) -> String {
    error_of(&format!("version: 1\nproviders:\n  p:\n{entry}"), &[])
}
