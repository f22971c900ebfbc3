//! How a Bedrock request is authorized: a Bedrock API key sent as `Authorization: Bearer`
//! (no signature), or SigV4 over the final body with the provider's AWS credentials (static
//! keys, or the background-refreshed cache of `credentials.rs`). Every Bedrock request
//! (Converse, InvokeModel) goes through [`authorize`], so the choice is made in one place.

use std::time::SystemTime;

use http::header::AUTHORIZATION;
use http::HeaderMap;

use super::config::Settings;
use super::sigv4;
use crate::config::Provider;
use crate::providers::encode::secret_header;
use crate::providers::{ProviderRuntime, TranslateError};

/// What a request is authorized with; resolved once per attempt, applied to each request.
pub enum Authorizer<'a> {
    /// A Bedrock API key (`api_key:` or `AWS_BEARER_TOKEN_BEDROCK`).
    ApiKey(&'a str),
    /// AWS credentials to sign with.
    SigV4(aws_credential_types::Credentials),
}

impl<'a> Authorizer<'a> {
    /// The authorizer of `provider` now; never waits (credentials are refreshed in the
    /// background and only read here).
    pub fn of(
        provider: &'a Provider,
        settings: &'a Settings,
        runtime: &ProviderRuntime,
    ) -> Result<Self, TranslateError> {
        match &settings.api_key {
            Some(key) => Ok(Authorizer::ApiKey(key.key.expose())),
            None => runtime.aws.for_provider(provider).map(Authorizer::SigV4),
        }
    }

    /// Adds the authorization of a POST of `body` to `url` to `headers`. The header values
    /// are marked sensitive, so they never show in debug output.
    pub fn authorize(
        &self,
        url: &str,
        headers: &mut HeaderMap,
        body: &[u8],
        region: &str,
        time: SystemTime,
    ) -> Result<(), TranslateError> {
        match self {
            Authorizer::ApiKey(key) => {
                let value = secret_header(&format!("Bearer {key}"), "authorization")?;
                headers.insert(AUTHORIZATION, value);
                Ok(())
            }
            Authorizer::SigV4(credentials) => sigv4::sign_request(
                url,
                headers,
                body,
                credentials,
                region,
                sigv4::SERVICE,
                time,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Provider, ProviderKind, Secret};
    use crate::providers::bedrock::config::BedrockApiKey;

    fn provider(api_key: Option<&str>) -> Provider {
        Provider {
            name: "aws".into(),
            kind: ProviderKind::Bedrock(Settings {
                region: "us-east-1".into(),
                api_key: api_key.map(|key| BedrockApiKey {
                    key: Secret::new(key),
                    from_env: false,
                }),
                credentials: None,
                endpoint: None,
                base_url: crate::providers::bedrock::base_url("us-east-1", None).unwrap(),
                assume_role: None,
            }),
            disabled: None,
            region: Some("us-east-1".into()),
            cloud: "aws".into(),
        }
    }

    fn settings(provider: &Provider) -> &Settings {
        match &provider.kind {
            ProviderKind::Bedrock(settings) => settings,
            other => unreachable!("{other:?}"),
        }
    }

    #[test]
    fn an_api_key_is_a_sensitive_bearer_and_nothing_is_signed() {
        let p = provider(Some("ABSKexample-key"));
        let runtime = ProviderRuntime::default();
        let auth = Authorizer::of(&p, settings(&p), &runtime).unwrap();
        let mut headers = HeaderMap::new();
        auth.authorize(
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse",
            &mut headers,
            b"{}",
            "us-east-1",
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(headers["authorization"], "Bearer ABSKexample-key");
        assert!(headers["authorization"].is_sensitive());
        assert!(!format!("{headers:?}").contains("ABSKexample-key"));
        assert!(headers.get("x-amz-date").is_none(), "not signed");
    }

    #[test]
    fn a_key_that_is_not_a_header_value_is_refused_not_sent() {
        let p = provider(Some("bad\nkey"));
        let runtime = ProviderRuntime::default();
        let auth = Authorizer::of(&p, settings(&p), &runtime).unwrap();
        let err = auth
            .authorize(
                "http://x/",
                &mut HeaderMap::new(),
                b"",
                "us-east-1",
                SystemTime::now(),
            )
            .unwrap_err();
        assert_eq!(err, TranslateError::BadHeader("authorization"));
    }

    #[test]
    fn without_a_key_the_default_chain_must_be_resolved_first() {
        let p = provider(None);
        let runtime = ProviderRuntime::default();
        assert!(matches!(
            Authorizer::of(&p, settings(&p), &runtime),
            Err(TranslateError::MissingCredentials(_))
        ));
    }
}
