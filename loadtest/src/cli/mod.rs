//! Subcommand implementations, one file per subcommand.

pub mod bench;
pub mod demo;
pub mod scenario;
pub mod sim;
