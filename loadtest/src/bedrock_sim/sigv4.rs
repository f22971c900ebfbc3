//! Verifies a request's SigV4 signature the way Bedrock does: recompute it with `aws-sigv4`
//! from the headers the `Authorization` header says were signed, and compare.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use axum::http::HeaderMap;

/// Why a signature was refused, with Bedrock's error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureError {
    pub error_type: &'static str,
    pub message: String,
}

fn refuse(error_type: &'static str, message: impl Into<String>) -> SignatureError {
    SignatureError {
        error_type,
        message: message.into(),
    }
}

struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (key, val) = part.trim().split_once('=')?;
        match key {
            "Credential" => credential = Some(val),
            "SignedHeaders" => signed = Some(val),
            "Signature" => signature = Some(val),
            _ => {}
        }
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = scope.as_slice() else {
        return None;
    };
    Some(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    })
}

/// `20240101T000000Z` → the instant.
pub fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Checks the request against the configured key pair and region.
pub fn verify(
    access_key: &str,
    secret_key: &str,
    region: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), SignatureError> {
    let secret_of = |key: &str, _token: Option<&str>| {
        if key == access_key {
            Ok(secret_key.to_owned())
        } else {
            Err(refuse(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ))
        }
    };
    let scope = Scope {
        region,
        service: "bedrock",
    };
    verify_by(&secret_of, scope, path_and_query, headers, body).map(|_| ())
}

/// The access key id a SigV4 `Authorization` header names, if it is one.
pub fn access_key_of(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    parse_authorization(value).map(|auth| auth.access_key)
}

/// Where a signature must be scoped.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// Looks up the secret of an access key presented with a session token (or refuses it).
pub type SecretOf<'a> = dyn Fn(&str, Option<&str>) -> Result<String, SignatureError> + 'a;

/// Checks a POST's signature with the secret `secret_of` gives for its access key, scoped
/// to `scope`; returns the access key id that signed.
pub fn verify_by(
    secret_of: &SecretOf<'_>,
    scope: Scope<'_>,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, SignatureError> {
    let Scope { region, service } = scope;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let auth_value = header("authorization").ok_or_else(|| {
        refuse(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )
    })?;
    let auth = parse_authorization(auth_value).ok_or_else(|| {
        refuse(
            "IncompleteSignatureException",
            "Authorization header is malformed",
        )
    })?;
    let token = header("x-amz-security-token").map(str::to_owned);
    let secret_key = secret_of(auth.access_key, token.as_deref())?;
    let access_key = auth.access_key;
    if auth.service != service || auth.region != region {
        return Err(refuse(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to a valid region and service {service}, not {}/{}",
                auth.region, auth.service
            ),
        ));
    }
    let date = header("x-amz-date")
        .ok_or_else(|| refuse("IncompleteSignatureException", "x-amz-date is missing"))?;
    let time = parse_amz_date(date)
        .ok_or_else(|| refuse("IncompleteSignatureException", "x-amz-date is malformed"))?;
    if !date.starts_with(auth.date) {
        return Err(refuse(
            "InvalidSignatureException",
            "credential date does not match x-amz-date",
        ));
    }
    for required in ["host", "x-amz-date"] {
        if !auth.signed_headers.contains(&required) {
            return Err(refuse(
                "InvalidSignatureException",
                format!("{required} must be signed"),
            ));
        }
    }
    if token.is_some() && !auth.signed_headers.contains(&"x-amz-security-token") {
        return Err(refuse(
            "InvalidSignatureException",
            "x-amz-security-token must be signed",
        ));
    }
    let host =
        header("host").ok_or_else(|| refuse("IncompleteSignatureException", "host is missing"))?;
    let mut signed: Vec<(&str, &str)> = Vec::new();
    for name in &auth.signed_headers {
        let value = header(name).ok_or_else(|| {
            refuse(
                "InvalidSignatureException",
                format!("signed header {name} is missing"),
            )
        })?;
        signed.push((name, value));
    }
    let expected = recompute(
        access_key,
        &secret_key,
        token,
        scope,
        &format!("http://{host}{path_and_query}"),
        signed,
        body,
        time,
    )
    .ok_or_else(|| refuse("InvalidSignatureException", "the request cannot be signed"))?;
    if expected != auth.signature {
        return Err(refuse(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        ));
    }
    Ok(access_key.to_owned())
}

#[allow(clippy::too_many_arguments)]
fn recompute(
    access_key: &str,
    secret_key: &str,
    token: Option<String>,
    scope: Scope<'_>,
    url: &str,
    headers: Vec<(&str, &str)>,
    body: &[u8],
    time: SystemTime,
) -> Option<String> {
    let identity = Identity::from(Credentials::new(access_key, secret_key, token, None, "sim"));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .ok()?
        .into();
    let request =
        SignableRequest::new("POST", url, headers.into_iter(), SignableBody::Bytes(body)).ok()?;
    let (_, signature) = sign(request, &params).ok()?.into_parts();
    Some(signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_parse() {
        assert_eq!(
            parse_amz_date("20240101T000000Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_704_067_200))
        );
        assert!(parse_amz_date("2024-01-01").is_none());
    }

    #[test]
    fn authorization_header_parses() {
        let a = parse_authorization("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=abc").unwrap();
        assert_eq!(
            (a.access_key, a.region, a.signature),
            ("AKID", "us-east-1", "abc")
        );
        assert_eq!(a.signed_headers, vec!["content-type", "host", "x-amz-date"]);
    }
}
