//! Pure pieces of `loadtest scenario`: what one request looked like to the client, the
//! per-second timeline, percentiles, table rendering, and the per-scenario checks. The
//! runner that starts simulators and the proxy lives in `cli::scenario`.

pub mod checks;
pub mod metrics;
pub mod percentile;
pub mod table;
pub mod timeline;

pub use checks::Check;
pub use timeline::{Outcome, Row, Totals};
