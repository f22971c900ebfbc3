//! Which proxy target a billed line is for. `--map KEY=PROVIDER/MODEL` overrides come first;
//! otherwise names are compared as lower-case letters and digits: a target matches when its
//! upstream model id (or Azure deployment), that id without its geography, vendor, version
//! and date parts, or its built-in price entry, appears in the billed key or the key in it
//! (`Claude3.5Sonnet` ~ `us.anthropic.claude-3-5-sonnet-20240620-v1:0`). The longest match
//! wins; a tie is broken by the resource (AWS region, Azure account); a tie that remains
//! is left unmapped rather than guessed.

/// A target the bill may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `provider/upstream model`, as in the ledger.
    pub target: String,
    /// Normalised names the target may be billed under.
    names: Vec<String>,
    /// The provider's region or Azure account, lower-case.
    resource: Option<String>,
}

/// Keys shorter than this match nothing by containment (`4o` is in too many names).
const MIN_MATCH: usize = 4;

impl Candidate {
    pub fn new(target: String, ids: Vec<String>, resource: Option<String>) -> Candidate {
        let mut names: Vec<String> = Vec::new();
        for id in &ids {
            for alias in aliases(id) {
                let alias = normalise(&alias);
                if alias.len() >= MIN_MATCH && !names.contains(&alias) {
                    names.push(alias);
                }
            }
        }
        Candidate {
            target,
            names,
            resource: resource.map(|r| r.to_ascii_lowercase()),
        }
    }

    /// How well `key` (normalised) names this target: the length of the longest common
    /// name, 0 for none.
    fn score(&self, key: &str) -> usize {
        self.names
            .iter()
            .filter_map(|name| {
                if key.contains(name.as_str()) {
                    Some(name.len())
                } else if key.len() >= MIN_MATCH && name.contains(key) {
                    Some(key.len())
                } else {
                    None
                }
            })
            .max()
            .unwrap_or(0)
    }
}

/// The target for a billed line, if one matches unambiguously.
pub(super) fn resolve(
    key: &str,
    resource: &str,
    candidates: &[Candidate],
    overrides: &[(String, String)],
) -> Option<String> {
    if let Some((_, target)) = overrides.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
        return Some(target.clone());
    }
    let key = normalise(key);
    let scored: Vec<(usize, &Candidate)> = candidates.iter().map(|c| (c.score(&key), c)).collect();
    let best = scored
        .iter()
        .map(|(score, _)| *score)
        .max()
        .filter(|s| *s > 0)?;
    let top: Vec<&Candidate> = scored
        .iter()
        .filter(|(score, _)| *score == best)
        .map(|(_, c)| *c)
        .collect();
    if let [only] = top.as_slice() {
        return Some(only.target.clone());
    }
    let resource = resource.to_ascii_lowercase();
    let local: Vec<&&Candidate> = top
        .iter()
        .filter(|c| c.resource.as_deref() == Some(resource.as_str()))
        .collect();
    match local.as_slice() {
        [only] => Some(only.target.clone()),
        _ => None,
    }
}

fn normalise(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `us.anthropic.claude-3-5-sonnet-20240620-v1:0` → itself, `claude-3-5-sonnet-20240620-v1`,
/// `claude-3-5-sonnet-20240620`, `claude-3-5-sonnet`.
fn aliases(id: &str) -> Vec<String> {
    let mut out = vec![id.to_owned()];
    let base = id.split(':').next().unwrap_or(id);
    let mut name = base.rsplit('.').next().unwrap_or(base).to_owned();
    out.push(name.clone());
    for is_suffix in [is_version as fn(&str) -> bool, is_date] {
        if let Some((head, tail)) = name.rsplit_once('-') {
            if is_suffix(tail) {
                name = head.to_owned();
                out.push(name.clone());
            }
        }
    }
    out
}

/// `v1`, `v2`.
fn is_version(part: &str) -> bool {
    part.strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `20240620`.
fn is_date(part: &str) -> bool {
    part.len() == 8 && part.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(target: &str, resource: &str) -> Candidate {
        let (_, id) = target.split_once('/').unwrap();
        Candidate::new(
            target.to_owned(),
            vec![id.to_owned()],
            Some(resource.to_owned()),
        )
    }

    #[test]
    fn bedrock_usage_types_find_their_model() {
        let candidates = [
            candidate(
                "east/us.anthropic.claude-3-5-sonnet-20240620-v1:0",
                "us-east-1",
            ),
            candidate("east/anthropic.claude-3-haiku-20240307-v1:0", "us-east-1"),
        ];
        let resolve = |key: &str| resolve(key, "us-east-1", &candidates, &[]);
        assert_eq!(
            resolve("Claude3.5Sonnet").as_deref(),
            Some("east/us.anthropic.claude-3-5-sonnet-20240620-v1:0")
        );
        assert_eq!(
            resolve("anthropic.claude-3-haiku-20240307-v1:0").as_deref(),
            Some("east/anthropic.claude-3-haiku-20240307-v1:0")
        );
        assert_eq!(resolve("Llama3-70B"), None);
        assert_eq!(resolve("v1"), None, "too short to name anything");
    }

    #[test]
    fn the_longest_name_wins_and_regions_break_ties() {
        let candidates = [
            candidate("az-east/gpt-4o", "contoso-east"),
            candidate("az-east/gpt-4o-mini", "contoso-east"),
            candidate("az-west/gpt-4o-mini", "contoso-west"),
        ];
        assert_eq!(
            resolve(
                "gpt-4o-0806 Inp glbl Tokens",
                "contoso-east",
                &candidates,
                &[]
            )
            .as_deref(),
            Some("az-east/gpt-4o")
        );
        assert_eq!(
            resolve(
                "gpt-4o-mini-0718 Inp Tokens",
                "contoso-west",
                &candidates,
                &[]
            )
            .as_deref(),
            Some("az-west/gpt-4o-mini")
        );
        assert_eq!(
            resolve("gpt-4o-mini-0718 Inp Tokens", "elsewhere", &candidates, &[]),
            None,
            "two accounts serve it and the bill names neither"
        );
        let overrides = [("GPT-4O-MINI-0718 INP TOKENS".to_owned(), "x/y".to_owned())];
        assert_eq!(
            resolve(
                "gpt-4o-mini-0718 Inp Tokens",
                "elsewhere",
                &candidates,
                &overrides
            )
            .as_deref(),
            Some("x/y")
        );
    }

    #[test]
    fn ids_lose_geography_vendor_version_and_date() {
        assert_eq!(
            aliases("us.anthropic.claude-3-5-sonnet-20240620-v1:0"),
            [
                "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
                "claude-3-5-sonnet-20240620-v1",
                "claude-3-5-sonnet-20240620",
                "claude-3-5-sonnet"
            ]
        );
        assert_eq!(aliases("gpt-4o"), ["gpt-4o", "gpt-4o"]);
    }
}
