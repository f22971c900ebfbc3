//! Local ports for the tests: closed ones for an upstream that is down.

/// A port nothing listens on, so connecting to it is refused: an upstream that is down.
pub fn closed_port() -> u16 {
    loadtest::proxy_process::free_port().expect("binding 127.0.0.1:0")
}
