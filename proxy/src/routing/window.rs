//! Outcome counts of one target over a sliding window (six 10-second buckets), so error
//! and capacity-error rates reflect the last minute, not the process's life.

use std::time::Duration;

use tokio::time::Instant;

const BUCKETS: usize = 6;
const BUCKET: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub ok: u64,
    pub capacity: u64,
    pub errors: u64,
    /// Capacity errors of a provisioned target: its paid-for capacity is in use, which is
    /// expected and says nothing about its health, so they stay out of the error rates.
    pub provisioned_full: u64,
    /// Requests started (for locally counted rpm) and their estimated tokens (tpm).
    pub started: u64,
    pub tokens: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.ok += other.ok;
        self.capacity += other.capacity;
        self.errors += other.errors;
        self.provisioned_full += other.provisioned_full;
        self.started += other.started;
        self.tokens += other.tokens;
    }

    pub fn finished(&self) -> u64 {
        self.ok + self.capacity + self.errors
    }

    pub fn error_rate(&self) -> f64 {
        ratio(self.capacity + self.errors, self.finished())
    }

    pub fn capacity_error_rate(&self) -> f64 {
        ratio(self.capacity, self.finished())
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[derive(Debug, Clone, Default)]
pub struct OutcomeWindow {
    buckets: [Counts; BUCKETS],
    /// Index of the bucket that `current_start` belongs to.
    current: usize,
    current_start: Option<Instant>,
}

impl OutcomeWindow {
    /// The bucket for `now`, clearing buckets that fell out of the window.
    pub fn bucket(&mut self, now: Instant) -> &mut Counts {
        let start = *self.current_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        let steps = (elapsed.as_millis() / BUCKET.as_millis()) as usize;
        if steps > 0 {
            for _ in 0..steps.min(BUCKETS) {
                self.current = (self.current + 1) % BUCKETS;
                self.buckets[self.current] = Counts::default();
            }
            self.current_start = Some(start + BUCKET * steps as u32);
        }
        &mut self.buckets[self.current]
    }

    /// Totals over the window as of `now`.
    pub fn totals(&mut self, now: Instant) -> Counts {
        self.bucket(now);
        let mut total = Counts::default();
        for bucket in &self.buckets {
            total.add(bucket);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_outcomes_leave_the_window() {
        let now = Instant::now();
        let mut window = OutcomeWindow::default();
        window.bucket(now).errors += 3;
        window.bucket(now + Duration::from_secs(15)).ok += 1;
        let totals = window.totals(now + Duration::from_secs(20));
        assert_eq!((totals.errors, totals.ok), (3, 1));
        assert!((totals.error_rate() - 0.75).abs() < 1e-9);
        let later = window.totals(now + Duration::from_secs(61));
        assert_eq!((later.errors, later.ok), (0, 1), "the first bucket expired");
        assert_eq!(
            window.totals(now + Duration::from_secs(600)),
            Counts::default()
        );
    }
}
