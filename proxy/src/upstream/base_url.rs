//! An upstream's base URL, parsed once when the policy is compiled, and the request URLs made
//! from it with a URL type: an operation's path goes into the path (before any query a
//! `base_url` carries, e.g. `?key=…` or Azure's `api-version`), never appended to the text.
//! Shown (in `--check`, `/admin/routes`, errors and logs) without user-info or query values.

use std::fmt;

use url::Url;

/// An `http://` or `https://` URL with a host; the path's trailing slash is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl {
    url: Url,
}

impl BaseUrl {
    /// Parses `text`, refusing what is not an http(s) URL with a host, or has a fragment.
    pub fn parse(text: &str) -> Result<Self, String> {
        // `http:///v1` would parse with `v1` as its host.
        if text
            .split_once("://")
            .is_some_and(|(_, rest)| rest.starts_with('/'))
        {
            return Err("it names no host".to_owned());
        }
        let mut url = Url::parse(text).map_err(|e| e.to_string())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("the scheme is {}, not http or https", url.scheme()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("it names no host".to_owned());
        }
        if url.fragment().is_some() {
            return Err("it has a #fragment, which an HTTP request cannot carry".to_owned());
        }
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&path);
        Ok(Self { url })
    }

    /// The URL of `path` (already percent-encoded, e.g. `chat/completions` or
    /// `/model/anthropic.claude%3A0/converse`) under this base: added to the base's path,
    /// with the base's query kept after it.
    pub fn join(&self, path: &str) -> Url {
        let mut url = self.url.clone();
        let joined = format!(
            "{}/{}",
            self.url.path().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        url.set_path(&joined);
        url
    }

    /// A base one level down (`openai/deployments/{name}` under an Azure endpoint).
    pub fn nested(&self, path: &str) -> Self {
        Self {
            url: self.join(path),
        }
    }

    /// [`Self::join`] with one more query pair (form-encoded), after the base's own.
    pub fn join_with_query(&self, path: &str, name: &str, value: &str) -> Url {
        let mut url = self.join(path);
        url.query_pairs_mut().append_pair(name, value);
        url
    }

    /// Credentials the URL itself carries (a password, query values such as `?key=…`), for
    /// the policy's secret scrubber.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = self.url.password().map(str::to_owned).into_iter().collect();
        // Both as written (an upstream echoing its request line) and decoded.
        let raw = self.url.query().unwrap_or_default().split('&');
        secrets.extend(raw.filter_map(|pair| Some(pair.split_once('=')?.1.to_owned())));
        secrets.extend(self.url.query_pairs().map(|(_, value)| value.into_owned()));
        secrets.sort_unstable();
        secrets.dedup();
        secrets
    }

    /// The URL as text, secrets included: for tests and the one place that needs the real
    /// value.
    pub fn expose(&self) -> &str {
        self.url.as_str()
    }
}

/// `url` as output may show it: no user-info, every query value replaced by `redacted`.
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        let names: Vec<String> = shown
            .query_pairs()
            .map(|(name, _)| name.into_owned())
            .collect();
        shown
            .query_pairs_mut()
            .clear()
            .extend_pairs(names.iter().map(|name| (name.as_str(), "redacted")));
    }
    shown.to_string()
}

/// Redacts `text` when it parses as a URL; otherwise shows only that it was not one.
pub fn redact_url_text(text: &str) -> String {
    match Url::parse(text) {
        Ok(url) => redact_url(&url),
        Err(_) => "(not a URL)".to_owned(),
    }
}

impl fmt::Display for BaseUrl {
    /// Redacted, without the trailing slash `Url` adds to an empty path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = redact_url(&self.url);
        match (self.url.path(), self.url.query()) {
            ("/", None) => f.write_str(shown.trim_end_matches('/')),
            _ => f.write_str(&shown),
        }
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_goes_before_the_query() {
        let base = BaseUrl::parse("https://gw.example.com/v1/?key=sk-in-query").unwrap();
        assert_eq!(
            base.join("chat/completions").as_str(),
            "https://gw.example.com/v1/chat/completions?key=sk-in-query"
        );
        assert_eq!(
            base.join_with_query("embeddings", "api-version", "2024-10-21")
                .as_str(),
            "https://gw.example.com/v1/embeddings?key=sk-in-query&api-version=2024-10-21"
        );
        assert_eq!(base.secrets(), ["sk-in-query"]);
    }

    #[test]
    fn a_bare_host_and_encoded_paths_join_cleanly() {
        let base = BaseUrl::parse("http://127.0.0.1:9100").unwrap();
        assert_eq!(
            base.join("/model/a.b%3A0/converse").as_str(),
            "http://127.0.0.1:9100/model/a.b%3A0/converse"
        );
        assert_eq!(base.to_string(), "http://127.0.0.1:9100");
        assert_eq!(
            BaseUrl::parse("https://api.openai.com/v1/")
                .unwrap()
                .to_string(),
            "https://api.openai.com/v1"
        );
    }

    #[test]
    fn shown_without_user_info_or_query_values() {
        let base =
            BaseUrl::parse("https://user:pw-secret@gw.example.com/v1?key=sk-secret&x=1").unwrap();
        let shown = base.to_string();
        assert_eq!(shown, "https://gw.example.com/v1?key=redacted&x=redacted");
        assert_eq!(format!("{base:?}"), format!("BaseUrl({shown})"));
        assert_eq!(base.secrets(), ["1", "pw-secret", "sk-secret"]);
    }

    #[test]
    fn only_http_urls_with_a_host() {
        assert!(BaseUrl::parse("ftp://x").is_err());
        assert!(BaseUrl::parse("http:///v1").is_err());
        assert!(BaseUrl::parse("localhost:8000").is_err());
        assert!(BaseUrl::parse("https://x/v1#frag").is_err());
        assert!(BaseUrl::parse("http://[::1]:9/v1").is_ok());
    }
}
