//! Encoding what goes into upstream requests: the customer's own names (Azure deployments,
//! Bedrock model ids) and form values, percent-encoded (everything but RFC 3986's unreserved
//! characters is escaped); credentials, as header values marked sensitive.

use http::HeaderValue;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::TranslateError;

/// RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~" stay as they are.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn unreserved(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// A credential as the value of header `name`, marked sensitive so it never shows in debug
/// output (nor in HTTP/2 header compression tables).
pub fn secret_header(value: &str, name: &'static str) -> Result<HeaderValue, TranslateError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| TranslateError::BadHeader(name))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_headers_are_sensitive_and_refuse_control_characters() {
        let value = secret_header("Bearer sk-1", "authorization").unwrap();
        assert!(value.is_sensitive());
        assert_eq!(format!("{value:?}"), "Sensitive");
        assert_eq!(
            secret_header("sk\n1", "x-api-key"),
            Err(TranslateError::BadHeader("x-api-key"))
        );
    }

    #[test]
    fn escapes_all_but_unreserved() {
        assert_eq!(unreserved("gpt-4o_v1.2~x"), "gpt-4o_v1.2~x");
        assert_eq!(unreserved("a b/c:d"), "a%20b%2Fc%3Ad");
        assert_eq!(unreserved("é"), "%C3%A9");
    }
}
