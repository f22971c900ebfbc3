//! Tool-call ids Bedrock accepts: `[a-zA-Z0-9_.:-]{1,64}` (docs/wire-formats.md §2.2). Ids
//! from other providers' histories that do not fit are rewritten the same way for a
//! `toolUse` and its `toolResult`, and reversibly where the id is short enough, so
//! [`original`] gives the client its own id back should Bedrock ever echo one.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::Digest;

const MAX_LEN: usize = 64;
/// Prefix of a reversible rewrite: base64url (no padding) of the original id follows.
const ENCODED: &str = "sy64_";
/// Prefix of an irreversible rewrite of an id too long to encode: a hash follows.
const HASHED: &str = "syh_";

fn fits(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// The id to send Bedrock for the client's `id`. Valid ids go as they are, unless they start
/// with one of the rewrite prefixes (those are encoded too, so decoding stays unambiguous).
pub fn to_bedrock(id: &str) -> Cow<'_, str> {
    if fits(id) && !id.starts_with(ENCODED) && !id.starts_with(HASHED) {
        return Cow::Borrowed(id);
    }
    let encoded = URL_SAFE_NO_PAD.encode(id.as_bytes());
    if ENCODED.len() + encoded.len() <= MAX_LEN {
        return Cow::Owned(format!("{ENCODED}{encoded}"));
    }
    let digest = sha2::Sha256::digest(id.as_bytes());
    Cow::Owned(format!("{HASHED}{}", hex::encode(&digest[..16])))
}

/// The client's id for an id Bedrock sent: the inverse of [`to_bedrock`] for encoded ids,
/// the id itself otherwise (Bedrock's own ids, `tooluse_…`, never carry the prefix).
pub fn original(id: &str) -> Cow<'_, str> {
    id.strip_prefix(ENCODED)
        .and_then(|rest| URL_SAFE_NO_PAD.decode(rest).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map_or(Cow::Borrowed(id), Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_pass_unchanged() {
        assert_eq!(to_bedrock("call_abc-1.2:3"), "call_abc-1.2:3");
        assert_eq!(to_bedrock("tooluse_Ab12"), "tooluse_Ab12");
        assert_eq!(original("tooluse_Ab12"), "tooluse_Ab12");
    }

    #[test]
    fn invalid_ids_are_encoded_reversibly() {
        for id in [
            "call id/with spaces",
            "toolu_01€",
            "",
            "sy64_looks_encoded",
            "syh_x",
        ] {
            let sent = to_bedrock(id);
            assert!(fits(&sent), "{sent} must be a valid Bedrock id");
            assert_ne!(sent, id);
            assert_eq!(original(&sent), id);
        }
    }

    #[test]
    fn long_ids_are_hashed_consistently() {
        let long = "x".repeat(65);
        let sent = to_bedrock(&long);
        assert!(sent.starts_with(HASHED) && fits(&sent));
        assert_eq!(sent, to_bedrock(&long));
        assert_ne!(sent, to_bedrock(&"y".repeat(65)));
        assert_eq!(original(&sent), sent);
    }
}
