//! Reading `application/x-www-form-urlencoded` bodies (OAuth2 token requests, STS query
//! actions) in the simulators.

/// The decoded value of the first `name=` pair of `form`.
pub(crate) fn field(form: &str, name: &str) -> Option<String> {
    form.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_decode(value))
}

/// `+` is a space, `%XX` a byte; a stray `%` is kept.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (
                    bytes.get(i + 1).and_then(|b| hex(*b)),
                    bytes.get(i + 2).and_then(|b| hex(*b)),
                ) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_and_decoded() {
        let form = "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&Name=a+b&bad=%z";
        assert_eq!(
            field(form, "RoleArn").as_deref(),
            Some("arn:aws:iam::1:role/r")
        );
        assert_eq!(field(form, "Name").as_deref(), Some("a b"));
        assert_eq!(field(form, "bad").as_deref(), Some("%z"));
        assert_eq!(field(form, "Missing"), None);
    }
}
