//! The AWS keys a simulated account believes in: long-term keys it was given, and the
//! temporary credentials the fake STS or credential endpoints issued (with their session
//! token and expiry). Shared between the identity simulator, which fills it, and the Bedrock
//! simulator, which checks every signature against it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::serve::lock;

/// One key pair as the account knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownKey {
    pub secret_access_key: String,
    /// Temporary credentials must present their session token.
    pub session_token: Option<String>,
    /// Temporary credentials stop working at this instant.
    pub expires: Option<SystemTime>,
}

/// Why a key was not accepted, with the AWS error type the services answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRefusal {
    /// `UnrecognizedClientException` / `InvalidClientTokenId`.
    Unknown,
    /// `ExpiredTokenException`.
    Expired,
    /// The session token does not belong to the key.
    WrongToken,
}

/// A cheap handle; clones share the same keys.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Arc<Mutex<HashMap<String, KnownKey>>>,
}

impl Keyring {
    /// Trusts a key pair (long-term when `expires` is `None`).
    pub fn trust(&self, access_key_id: &str, key: KnownKey) {
        lock(&self.keys).insert(access_key_id.to_owned(), key);
    }

    /// The secret to verify a signature by `access_key_id` with, if the key is usable now
    /// with `session_token`.
    pub fn check(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
        now: SystemTime,
    ) -> Result<String, KeyRefusal> {
        let keys = lock(&self.keys);
        let key = keys.get(access_key_id).ok_or(KeyRefusal::Unknown)?;
        if key.session_token.as_deref() != session_token {
            return Err(KeyRefusal::WrongToken);
        }
        if key.expires.is_some_and(|at| at <= now) {
            return Err(KeyRefusal::Expired);
        }
        Ok(key.secret_access_key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn temporary_keys_need_their_token_and_expire() {
        let ring = Keyring::default();
        let now = SystemTime::now();
        ring.trust(
            "ASIA1",
            KnownKey {
                secret_access_key: "s".into(),
                session_token: Some("t".into()),
                expires: Some(now + Duration::from_secs(5)),
            },
        );
        assert_eq!(ring.check("ASIA1", Some("t"), now), Ok("s".into()));
        assert_eq!(ring.check("ASIA1", None, now), Err(KeyRefusal::WrongToken));
        assert_eq!(
            ring.check("ASIA1", Some("t"), now + Duration::from_secs(5)),
            Err(KeyRefusal::Expired)
        );
        assert_eq!(ring.check("AKIA2", None, now), Err(KeyRefusal::Unknown));
    }
}
