//! Percent-encoding of the customer's own names (Azure deployments, Bedrock model ids) and
//! form values: everything but RFC 3986's unreserved characters is escaped.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~" stay as they are.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn unreserved(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_all_but_unreserved() {
        assert_eq!(unreserved("gpt-4o_v1.2~x"), "gpt-4o_v1.2~x");
        assert_eq!(unreserved("a b/c:d"), "a%20b%2Fc%3Ad");
        assert_eq!(unreserved("é"), "%C3%A9");
    }
}
