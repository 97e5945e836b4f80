//! Job durations as a Prometheus histogram, kept in memory by the process that ran the jobs.

use std::sync::{Mutex, PoisonError};

/// Upper bounds of the duration buckets, in seconds.
pub const BUCKETS: [f64; 10] = [0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0];

/// One histogram: counts per bucket (cumulative when rendered), sum and count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    pub buckets: [u64; BUCKETS.len()],
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|&b| seconds <= b) {
            self.buckets[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    /// Cumulative counts per bucket, as Prometheus expects.
    pub fn cumulative(&self) -> [u64; BUCKETS.len()] {
        let mut acc = 0;
        self.buckets.map(|n| {
            acc += n;
            acc
        })
    }
}

/// Durations of attempts run by this process, by outcome.
#[derive(Debug, Default)]
pub struct JobMetrics {
    by_outcome: Mutex<Vec<(String, Histogram)>>,
}

impl JobMetrics {
    /// Record one finished attempt.
    pub fn observe(&self, outcome: &str, seconds: f64) {
        let mut v = self
            .by_outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match v.iter_mut().find(|(o, _)| o == outcome) {
            Some((_, h)) => h.observe(seconds),
            None => {
                let mut h = Histogram::default();
                h.observe(seconds);
                v.push((outcome.to_string(), h));
            }
        }
    }

    /// A copy of every histogram.
    pub fn snapshot(&self) -> Vec<(String, Histogram)> {
        self.by_outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_buckets_count_every_smaller_observation() {
        let m = JobMetrics::default();
        for s in [0.2, 3.0, 3.0, 1000.0] {
            m.observe("succeeded", s);
        }
        let snap = m.snapshot();
        let h = &snap[0].1;
        assert_eq!(h.count, 4);
        assert_eq!(h.sum, 1006.2);
        // 0.2 ≤ 0.5; the two 3.0 fall in ≤ 5; 1000 is above every bound (only in +Inf = count).
        assert_eq!(h.cumulative(), [1, 1, 1, 3, 3, 3, 3, 3, 3, 3]);
    }
}
