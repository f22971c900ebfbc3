//! An Azure OpenAI simulator: the OpenAI simulator's handlers and faults behind Azure's
//! URLs, auth and quirks (docs/wire-formats.md §6), the Responses API included on the v1 form
//! (`/openai/v1/responses`). A request flows: `server` (both URL forms,
//! `api-version`, `api-key` or bearer auth, deployment lookup, content-filter triggers) →
//! the deployment's own OpenAI-sim state (quota, faults, answer) → `shape` (Azure's model
//! name, filter annotations, the filter-only first stream chunk, Azure-style headers and
//! 429s). `entra` is a fake Microsoft Entra token endpoint for `auth: entra` tests (client
//! secret and workload identity); `managed_identity` fakes the IMDS and App Service
//! managed-identity endpoints.
//!
//! Trigger words in a prompt: [`FILTER_PROMPT`] answers the content-filter 400;
//! [`FILTER_COMPLETION`] ends the answer with `finish_reason: "content_filter"`.
//!
//! ```no_run
//! use loadtest::{AzureDeployment, AzureSim, AzureSimConfig};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = AzureSim::start(AzureSimConfig {
//!     api_key: Some("az-key".into()),
//!     deployments: vec![AzureDeployment::new("gpt-4o-prod", "gpt-4o-2024-08-06")],
//!     ..AzureSimConfig::default()
//! })
//! .await?;
//! // endpoint: sim.endpoint() ("http://127.0.0.1:PORT"), e.g. in routes.yaml `endpoint:`.
//! # Ok(())
//! # }
//! ```

mod config;
mod entra;
mod managed_identity;
mod server;
mod shape;

pub use config::{AzureDeployment, AzureSimConfig};
pub use server::AzureSim;
pub use shape::{FILTER_COMPLETION, FILTER_PROMPT};
