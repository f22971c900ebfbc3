//! Local ports for the tests: free ones for the proxy's listeners, closed ones for a dead upstream.

use std::net::TcpListener;

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, read, released).
/// Another process may grab it in between; [`crate::Proxy::start`] retries when that happens.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener
        .local_addr()
        .expect("reading a local address")
        .port()
}

/// A port nothing listens on, so connecting to it is refused: an upstream that is down.
pub fn closed_port() -> u16 {
    free_port()
}
