//! Test helpers: compile YAML text under a fixed, injected environment.

use std::path::Path;

use super::{compile_str, ConfigError, Policy};

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
