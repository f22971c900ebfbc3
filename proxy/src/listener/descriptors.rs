//! The descriptor limit: raised to the hard limit at start-up, and the client connection
//! bound kept under it, so that idle client sockets cannot starve the admin listener,
//! upstream connections or the ledger of descriptors (issue 15, item 2).

/// Descriptors kept for everything but client connections: the listeners, the admin
/// connections, the ledger and Redis pools, the runtime's own, log files.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the limit now in force.
pub fn raise_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// The most client connections `limit` descriptors carry: each connection with a request
/// in flight also holds one upstream connection, after the reserve.
pub fn connection_ceiling(limit: u64) -> usize {
    let ceiling = limit.saturating_sub(RESERVED_DESCRIPTORS) / 2;
    usize::try_from(ceiling).unwrap_or(usize::MAX).max(1)
}

/// The configured bound, lowered to what the descriptor limit carries (the caller warns).
pub fn effective_max_connections(configured: usize, limit: u64) -> usize {
    configured.min(connection_ceiling(limit))
}

#[cfg(test)]
mod tests {
    use super::{connection_ceiling, effective_max_connections};

    #[test]
    fn the_bound_leaves_a_reserve_and_an_upstream_descriptor_per_connection() {
        assert_eq!(connection_ceiling(256), 96);
        assert_eq!(connection_ceiling(1 << 20), ((1 << 20) - 64) / 2);
        assert_eq!(connection_ceiling(10), 1);
        assert_eq!(effective_max_connections(50, 256), 50);
        assert_eq!(effective_max_connections(4096, 1024), 480);
    }
}
