//! A model's Responses options: `builtin_tools` (`allow` or `deny`, the default) and
//! `sticky_reasoning` (docs/configuration.md).

use serde_saphyr::Spanned;

use crate::config::raw::RawModel;
use crate::config::{Problem, ResponsesOptions};

pub(super) fn responses_options(raw: &RawModel, path: &str) -> Result<ResponsesOptions, Problem> {
    Ok(ResponsesOptions {
        builtin_tools: builtin_tools(raw.builtin_tools.as_ref(), path)?,
        sticky_reasoning: raw.sticky_reasoning.as_ref().is_some_and(|s| s.value),
    })
}

fn builtin_tools(raw: Option<&Spanned<String>>, path: &str) -> Result<bool, Problem> {
    match raw.map(|word| (word, word.value.as_str())) {
        None | Some((_, "deny")) => Ok(false),
        Some((_, "allow")) => Ok(true),
        Some((word, other)) => Err(Problem::spanned(
            word,
            format!("{path}.builtin_tools: `{other}` is neither `allow` nor `deny`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::compile_yaml;

    const BASE: &str = "version: 1\nproviders:\n  oai: { kind: openai, base_url: \"http://127.0.0.1:9/v1\", responses: native }\nmodels:\n  m:\n    targets: [{ provider: oai, model: gpt, price: free }]\n";

    #[test]
    fn options_default_off_and_compile_when_given() {
        let policy = compile_yaml(BASE, &[]).unwrap();
        let options = policy.models["m"].responses;
        assert!(!options.builtin_tools && !options.sticky_reasoning);
        let yaml = format!("{BASE}    builtin_tools: allow\n    sticky_reasoning: true\n");
        let options = compile_yaml(&yaml, &[]).unwrap().models["m"].responses;
        assert!(options.builtin_tools && options.sticky_reasoning);
    }

    #[test]
    fn an_unknown_word_is_named() {
        let yaml = format!("{BASE}    builtin_tools: maybe\n");
        let error = compile_yaml(&yaml, &[]).unwrap_err().to_string();
        assert!(error.contains("models.m.builtin_tools"), "{error}");
    }
}
