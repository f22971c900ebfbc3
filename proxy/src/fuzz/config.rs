//! Fuzz target: the config loader (`routes.yaml` → policy), on mutated seeds of real
//! configurations and arbitrary text.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::select;

use super::{apply_edits, byte_edit, fuzz, seeds};
use crate::config::compile_str;

/// YAML fragments worth splicing into a configuration.
const FRAGMENTS: &[&str] = &[
    "\n  x: {kind: openai}\n",
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!binary ",
    "${X}",
    "${X:-}",
    "${",
    "~",
    "null",
    "1e999",
    "-1",
    "0x",
    "'",
    "\"",
    "\t",
    "\n",
    "#",
    "price: { input: -1, output: 1e308 }",
    "budget: {usd: 0, period: weekly}",
    "sha256:",
];

fn documents() -> impl Strategy<Value = Vec<u8>> {
    let raw = seeds("config");
    let texts = raw.clone();
    prop_oneof![
        3 => (select(raw), prop::collection::vec(byte_edit(), 1..6))
            .prop_map(|(seed, edits)| apply_edits(seed, &edits)),
        3 => (select(texts), prop::collection::vec((any::<usize>(), select(FRAGMENTS)), 1..4))
            .prop_map(|(mut seed, inserts)| {
                for (at, fragment) in inserts {
                    let at = at % (seed.len() + 1);
                    seed.splice(at..at, fragment.bytes());
                }
                seed
            }),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

fn load(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let env = |name: &str| (name == "X").then(|| "value".to_owned());
    if let Ok(policy) = compile_str(&text, Path::new("routes.yaml"), &env) {
        // What `--check` prints is read from every part of the policy.
        let _ = crate::config::describe(&policy);
    }
}

#[test]
fn config_loader() {
    fuzz("config loader", "config", documents(), load);
}
