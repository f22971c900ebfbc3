//! The client listener, owned end to end: its accept loop, the connection bound, TLS, the
//! descriptor limit and the graceful drain on `SIGTERM` (docs/operations.md, "Client
//! connections" and "Signals"). The admin listener stays pingora's own, on its own runtime.

pub mod accept;
pub mod buffered;
pub mod certificate;
pub mod descriptors;
pub mod drain;
pub mod metrics;
pub mod request_head;
pub mod signals;
