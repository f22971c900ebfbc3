//! Why the conversation store could not do something. Mapped to HTTP in `proxy/src/error.rs`.

use std::time::Duration;

use thiserror::Error;

use crate::metering::ledger::LedgerError;

/// A store failure. Never carries the database URL (it may hold a password) nor stored content.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("conversation store database error: {0}")]
    Database(String),
    #[error("the conversation store did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the conversation store's task stopped")]
    Stopped,
    /// A turn whose JSON columns could not be served back (a bug of the caller, not the client).
    #[error("stored response `{id}`: `{field}` is not a JSON {expected}")]
    Invalid {
        id: String,
        field: &'static str,
        expected: &'static str,
    },
    /// `put` of an id another team already stored: refused, the other team's row is kept.
    #[error("response id `{id}` is already stored by another team")]
    Conflict { id: String },
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        // As the ledger's errors: configuration errors may echo the URL, keep only the kind.
        match error {
            sqlx::Error::Configuration(_) => {
                StoreError::Database("invalid ledger URL or options".to_owned())
            }
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl From<LedgerError> for StoreError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Timeout(after) => StoreError::Timeout(after),
            LedgerError::Stopped => StoreError::Stopped,
            LedgerError::Database(message) | LedgerError::Query(message) => {
                StoreError::Database(message)
            }
        }
    }
}
