//! Nearest-rank percentiles of latencies.

use std::time::Duration;

/// Nearest-rank percentile (`q` in 0..=1) of `sorted` (ascending); `None` when empty.
pub fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 0.5), Some(ms(50)));
        assert_eq!(percentile(&sorted, 0.9), Some(ms(90)));
        assert_eq!(percentile(&sorted, 0.99), Some(ms(99)));
        assert_eq!(percentile(&sorted, 1.0), Some(ms(100)));
        assert_eq!(percentile(&sorted, 0.0), Some(ms(1)));
    }

    #[test]
    fn small_and_empty_inputs() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[ms(7)], 0.99), Some(ms(7)));
        assert_eq!(percentile(&[ms(1), ms(9)], 0.5), Some(ms(1)));
        assert_eq!(percentile(&[ms(1), ms(9)], 0.51), Some(ms(9)));
    }
}
