//! What one load thread measured (latency histogram, status and error counts,
//! completions per second), and the merge of all threads' figures.
//!
//! Latencies are recorded in microseconds. A request that got no complete
//! answer counts as an error of its kind and adds no latency.

use crate::exchange::ErrorKind;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Longest latency the histogram holds exactly (longer ones are clamped).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// One thread's figures (also the merged figures of a run).
pub struct Recorder {
    start: Instant,
    pub latency_us: Histogram<u64>,
    statuses: Vec<u64>,
    errors: [u64; ErrorKind::ALL.len()],
    /// Completions (answers and errors) per second since the start.
    pub per_second: Vec<u64>,
}

impl Recorder {
    pub fn new(start: Instant) -> Recorder {
        Recorder {
            start,
            latency_us: new_histogram(),
            statuses: vec![0; 600],
            errors: [0; ErrorKind::ALL.len()],
            per_second: Vec::new(),
        }
    }

    /// An answer with `status` after `latency`, complete at `done`.
    pub fn answer(&mut self, status: u16, latency: Duration, done: Instant) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us
            .saturating_record(us.clamp(1, MAX_LATENCY_US));
        if let Some(count) = self.statuses.get_mut(usize::from(status)) {
            *count += 1;
        }
        self.tick(done);
    }

    /// A request that failed with `kind` at `done`.
    pub fn error(&mut self, kind: ErrorKind, done: Instant) {
        self.errors[kind.index()] += 1;
        self.tick(done);
    }

    fn tick(&mut self, done: Instant) {
        let second = done.saturating_duration_since(self.start).as_secs() as usize;
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, 0);
        }
        self.per_second[second] += 1;
    }

    /// Adds another thread's figures to these.
    pub fn merge(&mut self, other: &Recorder) {
        let _ = self.latency_us.add(&other.latency_us);
        for (mine, theirs) in self.statuses.iter_mut().zip(&other.statuses) {
            *mine += theirs;
        }
        for (mine, theirs) in self.errors.iter_mut().zip(&other.errors) {
            *mine += theirs;
        }
        if self.per_second.len() < other.per_second.len() {
            self.per_second.resize(other.per_second.len(), 0);
        }
        for (mine, theirs) in self.per_second.iter_mut().zip(&other.per_second) {
            *mine += theirs;
        }
    }

    /// Answers by status code (only codes seen).
    pub fn statuses(&self) -> BTreeMap<String, u64> {
        self.statuses
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(code, n)| (code.to_string(), *n))
            .collect()
    }

    /// Errors by kind (only kinds seen).
    pub fn errors(&self) -> BTreeMap<String, u64> {
        ErrorKind::ALL
            .iter()
            .filter(|k| self.errors[k.index()] > 0)
            .map(|k| (k.name().to_string(), self.errors[k.index()]))
            .collect()
    }

    pub fn answers(&self) -> u64 {
        self.statuses.iter().sum()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }
}

fn new_histogram() -> Histogram<u64> {
    // Bounds are constants within hdrhistogram's limits, so this cannot fail.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Merging adds counts, statuses, errors and per-second completions.
    #[test]
    fn merge_adds_everything() {
        let start = Instant::now();
        let mut a = Recorder::new(start);
        let mut b = Recorder::new(start);
        a.answer(200, Duration::from_millis(1), start);
        b.answer(
            503,
            Duration::from_millis(2),
            start + Duration::from_secs(1),
        );
        b.error(ErrorKind::Timeout, start);
        a.merge(&b);
        assert_eq!(
            (
                a.latency_us.len(),
                a.answers(),
                a.error_count(),
                a.per_second.clone()
            ),
            (2, 2, 1, vec![2, 1])
        );
    }
}
