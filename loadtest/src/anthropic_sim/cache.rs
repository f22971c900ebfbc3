//! Prompt-cache accounting: which part of a prompt was written to or read from the cache.
//! A `cache_control` marker closes a prefix (tools → system → messages, Anthropic's
//! order); the first time a prefix's hash is seen its tokens are a cache write (split by the
//! marker's `ttl`), later the longest already-seen prefix is a cache read.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::serve::lock;

/// Prefix hashes remembered; the oldest is forgotten beyond this (a small in-memory cache).
const CAPACITY: usize = 4096;

/// One piece of prompt in cache order, with its token count and, if it carries a
/// `cache_control` marker, whether that marker asked for the 1-hour ttl.
#[derive(Clone, Debug)]
pub struct Segment {
    pub canonical: String,
    pub tokens: u64,
    /// `None`: no marker; `Some(false)`: 5m; `Some(true)`: 1h.
    pub marker_1h: Option<bool>,
}

/// How a prompt's tokens split between fresh input, cache writes and cache reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheSplit {
    pub input: u64,
    pub read: u64,
    pub write_5m: u64,
    pub write_1h: u64,
}

/// Remembered prefix hashes, and their insertion order for forgetting the oldest.
#[derive(Default)]
struct Seen {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

#[derive(Default)]
pub struct PromptCache {
    seen: Mutex<Seen>,
}

impl PromptCache {
    /// Splits `segments` and remembers every marked prefix (so a second identical
    /// request reads what the first wrote). `model` is part of every prefix.
    pub fn account(&self, model: &str, segments: &[Segment]) -> CacheSplit {
        let mut hasher = Sha256::new();
        hasher.update(model.as_bytes());
        let mut total = 0u64;
        // (prefix hash, tokens up to and including the marked segment, 1h?)
        let mut breakpoints = Vec::new();
        for segment in segments {
            hasher.update((segment.canonical.len() as u64).to_le_bytes());
            hasher.update(segment.canonical.as_bytes());
            total += segment.tokens;
            if let Some(one_hour) = segment.marker_1h {
                let hash: [u8; 32] = hasher.clone().finalize().into();
                breakpoints.push((hash, total, one_hour));
            }
        }
        let mut seen = lock(&self.seen);
        let hit = breakpoints
            .iter()
            .rposition(|(hash, _, _)| seen.set.contains(hash));
        let read = hit.map_or(0, |k| breakpoints[k].1);
        let mut split = CacheSplit {
            read,
            ..CacheSplit::default()
        };
        let mut boundary = read;
        for (_, upto, one_hour) in breakpoints.iter().skip(hit.map_or(0, |k| k + 1)) {
            let written = upto.saturating_sub(boundary);
            if *one_hour {
                split.write_1h += written;
            } else {
                split.write_5m += written;
            }
            boundary = boundary.max(*upto);
        }
        split.input = total - split.read - split.write_5m - split.write_1h;
        for (hash, _, _) in &breakpoints {
            if seen.set.insert(*hash) {
                seen.order.push_back(*hash);
                if seen.order.len() > CAPACITY {
                    if let Some(old) = seen.order.pop_front() {
                        seen.set.remove(&old);
                    }
                }
            }
        }
        split
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(text: &str, tokens: u64, marker_1h: Option<bool>) -> Segment {
        Segment {
            canonical: text.to_owned(),
            tokens,
            marker_1h,
        }
    }

    #[test]
    fn first_sight_writes_then_reads_the_longest_seen_prefix() {
        let cache = PromptCache::default();
        let first = [
            seg("a", 10, Some(true)),
            seg("b", 5, Some(false)),
            seg("q", 3, None),
        ];
        let split = cache.account("m", &first);
        assert_eq!(
            split,
            CacheSplit {
                input: 3,
                read: 0,
                write_5m: 5,
                write_1h: 10
            }
        );
        let again = cache.account("m", &first);
        assert_eq!(
            again,
            CacheSplit {
                input: 3,
                read: 15,
                write_5m: 0,
                write_1h: 0
            }
        );
        // Same first prefix, a different second one: read 10, write 7.
        let other = [seg("a", 10, Some(true)), seg("c", 7, Some(false))];
        let split = cache.account("m", &other);
        assert_eq!((split.read, split.write_5m, split.input), (10, 7, 0));
        // Another model shares nothing.
        assert_eq!(cache.account("other", &first).read, 0);
    }
}
