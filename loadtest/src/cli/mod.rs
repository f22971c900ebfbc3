//! Subcommand implementations, one file per subcommand.

pub mod bench;
pub mod demo;
pub mod latency_mix;
pub mod scenario;
pub mod sim;
