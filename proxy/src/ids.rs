//! Unique ids without a system call each: UUIDs drawn from rand's thread-local generator
//! (a CSPRNG seeded from the operating system), where `Uuid::new_v4` asks the kernel for
//! every id (docs/benchmarks.md, "Where the CPU goes").

use std::time::{SystemTime, UNIX_EPOCH};

use uuid::{Builder, Uuid};

/// A random (version 4) UUID.
pub fn random_uuid() -> Uuid {
    Builder::from_random_bytes(rand::random()).into_uuid()
}

/// A time-ordered (version 7) UUID: ids made later sort later (to the millisecond), so rows
/// keyed by them are appended to an index instead of inserted at random places in it.
pub fn time_ordered_uuid() -> Uuid {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Builder::from_unix_timestamp_millis(millis, &rand::random()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_order() {
        let a = time_ordered_uuid();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = time_ordered_uuid();
        assert_eq!(a.get_version_num(), 7);
        assert!(a.to_string() < b.to_string(), "{a} then {b}");
        let r = random_uuid();
        assert_eq!(r.get_version_num(), 4);
        assert_ne!(r, random_uuid());
    }
}
