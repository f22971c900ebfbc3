//! Virtual keys: `Authorization: Bearer <key>` (or Azure-style `api-key`, or `x-api-key` on
//! the Anthropic paths, chosen by the handler) → the owning team,
//! looked up by the key's SHA-256 so the file never holds a usable key.

use sha2::{Digest, Sha256};

use crate::config::{KeyOwner, Policy};
use crate::error::AuthError;

/// Finds who owns the presented key. The lookup is by digest, so its timing reveals nothing
/// about the key itself.
pub fn authenticate<'p>(
    policy: &'p Policy,
    authorization: Option<&str>,
    api_key_header: Option<&str>,
) -> Result<&'p KeyOwner, AuthError> {
    let key = authorization
        .and_then(bearer_token)
        .or(api_key_header.map(str::trim))
        .filter(|k| !k.is_empty())
        .ok_or(AuthError::MissingKey)?;
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    policy.keys.get(&digest).ok_or(AuthError::UnknownKey)
}

fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
