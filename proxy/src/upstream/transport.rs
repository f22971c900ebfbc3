//! Where upstream requests go: the shared HTTP client, or (in unit tests) a scripted upstream.
//!
//! An enum rather than a trait object: the real path pays one `match`, no boxing.

use tokio::time::Instant;

use super::body::UpstreamResponse;
use super::classify::{AttemptFailure, Classifier};
use super::client::UpstreamClient;
use super::UpstreamRequest;

#[derive(Debug, Clone)]
pub enum Transport {
    Http(UpstreamClient),
    /// Answers scripted per upstream host, on tokio's (paused) clock.
    #[cfg(test)]
    Scripted(std::sync::Arc<super::scripted::ScriptedUpstream>),
}

impl From<UpstreamClient> for Transport {
    fn from(client: UpstreamClient) -> Self {
        Transport::Http(client)
    }
}

impl Transport {
    /// Sends the request and waits for the response headers until `first_byte_deadline`.
    /// A non-2xx answer is read (bounded) and classified by the provider's `classify`.
    pub async fn send(
        &self,
        request: UpstreamRequest,
        first_byte_deadline: Instant,
        classify: Classifier,
    ) -> Result<UpstreamResponse, AttemptFailure> {
        match self {
            Transport::Http(client) => client.send(request, first_byte_deadline, classify).await,
            #[cfg(test)]
            Transport::Scripted(upstream) => {
                upstream.send(request, first_byte_deadline, classify).await
            }
        }
    }
}
