//! SigV4 signing of Bedrock requests with `aws-sigv4`, over the final body.
//!
//! The URL passed in is the wire form (model id already percent-encoded once); `aws-sigv4`
//! encodes each path segment again for the canonical URI (`%3A` → `%253A`), which is what
//! Bedrock expects. The host comes from the URL, so an `endpoint` override signs for the host
//! the request really goes to.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

use crate::providers::TranslateError;

/// The signing name of Bedrock Runtime (not `bedrock-runtime`).
pub const SERVICE: &str = "bedrock";

/// Adds `x-amz-date`, `authorization` (and `x-amz-security-token` for temporary
/// credentials) to `headers` for a POST of `body` to `url`.
pub fn sign_request(
    url: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), TranslateError> {
    let identity = Identity::from(credentials.clone());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| TranslateError::Signing(e.to_string()))?
        .into();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new("POST", url, pairs.into_iter(), SignableBody::Bytes(body))
        .map_err(|e| TranslateError::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| TranslateError::Signing(e.to_string()))?
        .into_parts();
    let (added, _params) = instructions.into_parts();
    for header in added {
        let name = HeaderName::from_static(header.name());
        let mut value = HeaderValue::from_str(header.value())
            .map_err(|_| TranslateError::BadHeader("authorization"))?;
        // Keeps the signature and session token out of any header debug output.
        value.set_sensitive(
            header.sensitive() || matches!(header.name(), "authorization" | "x-amz-security-token"),
        );
        headers.insert(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::CONTENT_TYPE;
    use std::time::{Duration, UNIX_EPOCH};

    const BODY: &[u8] =
        br#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}],"inferenceConfig":{"maxTokens":64}}"#;

    fn example(session_token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token.map(str::to_owned),
            None,
            "test",
        )
    }

    /// 2024-01-01T00:00:00Z, the time of the Bedrock vectors in docs/wire-formats.md §5.4.
    fn new_year_2024() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_704_067_200)
    }

    fn signature(headers: &HeaderMap) -> String {
        let auth = headers["authorization"].to_str().unwrap();
        auth.rsplit("Signature=").next().unwrap().to_owned()
    }

    fn signed(url: &str, region: &str, token: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        sign_request(
            url,
            &mut headers,
            BODY,
            &example(token),
            region,
            SERVICE,
            new_year_2024(),
        )
        .unwrap();
        headers
    }

    #[test]
    fn bedrock_converse_vector_with_double_encoded_colon() {
        let headers = signed(
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
            "us-east-1",
            None,
        );
        assert_eq!(
            signature(&headers),
            "3a9fff4cee1b77fb33dc5c04704557806456536dfb2037630db6579f99b6601a"
        );
        let auth = headers["authorization"].to_str().unwrap();
        assert!(auth.contains("Credential=AKIDEXAMPLE/20240101/us-east-1/bedrock/aws4_request"));
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date,"));
        assert_eq!(headers["x-amz-date"], "20240101T000000Z");
        assert!(headers["authorization"].is_sensitive());
    }

    #[test]
    fn bedrock_vector_with_session_token_signs_the_token() {
        let headers = signed(
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
            "us-east-1",
            Some("EXAMPLESESSIONTOKEN"),
        );
        assert_eq!(
            signature(&headers),
            "7babdcb2ad0dd35b02dcb36b88f6d40a55c32a2bda11f644cd8edf12c50a48ed"
        );
        assert_eq!(headers["x-amz-security-token"], "EXAMPLESESSIONTOKEN");
    }

    #[test]
    fn bedrock_inference_profile_arn_vector() {
        let headers = signed(
            "https://bedrock-runtime.us-west-2.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream",
            "us-west-2",
            None,
        );
        assert_eq!(
            signature(&headers),
            "46ec039d19d395a2dbbea7cab87c74e377de954c0a8cb60a57eaa65a37679867"
        );
    }

    #[test]
    fn aws_test_suite_get_and_post_vanilla() {
        // get-vanilla is a GET; our signer only POSTs, so post-vanilla checks the same path.
        let mut headers = HeaderMap::new();
        sign_request(
            "https://example.amazonaws.com/",
            &mut headers,
            b"",
            &example(None),
            "us-east-1",
            "service",
            UNIX_EPOCH + Duration::from_secs(1_440_938_160),
        )
        .unwrap();
        assert_eq!(
            signature(&headers),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }
}
