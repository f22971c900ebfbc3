//! Varying latency for routing scenarios: a simulator's time to first token drawn per
//! request from a heavy-tailed (log-normal) distribution around its configured `ttft`, and
//! whole (non-streamed) answers that take their generation time too, as real models do.

use std::time::Duration;

use rand::Rng;

/// How a simulator's latency varies from request to request (off by default).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyJitter {
    /// σ of the log-normal factor on `ttft` (0: fixed; 0.5: heavy tail, p99 ≈ 3.2 × median).
    pub ttft_sigma: f64,
    /// Whole answers wait `inter_token` × completion tokens after `ttft` (streams always do).
    pub pace_whole_answers: bool,
}

impl LatencyJitter {
    /// One request's time to first token around `median`.
    pub(crate) fn ttft(&self, median: Duration) -> Duration {
        if self.ttft_sigma <= 0.0 {
            return median;
        }
        let mut rng = rand::rng();
        // Box–Muller: one standard normal draw.
        let u1: f64 = rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = rng.random();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median.mul_f64((self.ttft_sigma * z).exp().min(20.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttft_varies_around_the_median_with_a_tail() {
        let jitter = LatencyJitter {
            ttft_sigma: 0.5,
            pace_whole_answers: true,
        };
        let median = Duration::from_millis(400);
        let mut draws: Vec<Duration> = (0..2000).map(|_| jitter.ttft(median)).collect();
        draws.sort();
        let mid = draws[1000].as_millis();
        assert!((340..=470).contains(&mid), "median {mid}");
        assert!(draws[1980] > median * 2, "p99 {:?}", draws[1980]);
        let fixed = LatencyJitter {
            ttft_sigma: 0.0,
            pace_whole_answers: false,
        };
        assert_eq!(fixed.ttft(median), median);
    }
}
