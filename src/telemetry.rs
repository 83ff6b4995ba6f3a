//! Per-worker counters: plain `Cell`s on the request path, published to
//! shared atomics once per clock tick, summed across workers at scrape time.
//!
//! Step 8 of a request's way (for now: requests by status class and
//! connections). Workers never touch an atomic per request: the sweeper tick
//! ([`crate::deadline`]) calls [`WorkerTelemetry::publish`].

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Status classes counted: 1xx..5xx, index = class - 1.
pub const STATUS_CLASSES: usize = 5;

/// What one worker has counted, as seen from other threads.
#[derive(Debug, Default)]
pub struct SharedWorkerStats {
    pub requests_by_class: [AtomicU64; STATUS_CLASSES],
    pub connections_accepted: AtomicU64,
    pub connections_active: AtomicU64,
}

/// A worker's counters (`!Send`), and where they are published.
pub struct WorkerTelemetry {
    requests_by_class: [Cell<u64>; STATUS_CLASSES],
    connections_accepted: Cell<u64>,
    connections_active: Cell<u64>,
    shared: Arc<SharedWorkerStats>,
}

impl WorkerTelemetry {
    pub fn new(shared: Arc<SharedWorkerStats>) -> Self {
        WorkerTelemetry {
            requests_by_class: Default::default(),
            connections_accepted: Cell::new(0),
            connections_active: Cell::new(0),
            shared,
        }
    }

    /// Counts one answered request by its status.
    pub fn request_done(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, STATUS_CLASSES) - 1;
        let cell = &self.requests_by_class[class];
        cell.set(cell.get() + 1);
    }

    pub fn connection_opened(&self) {
        self.connections_accepted
            .set(self.connections_accepted.get() + 1);
        self.connections_active
            .set(self.connections_active.get() + 1);
    }

    pub fn connection_closed(&self) {
        self.connections_active
            .set(self.connections_active.get().saturating_sub(1));
    }

    /// Copies the counters to the shared atomics (off the request path).
    pub fn publish(&self) {
        for (shared, local) in self
            .shared
            .requests_by_class
            .iter()
            .zip(&self.requests_by_class)
        {
            shared.store(local.get(), Ordering::Relaxed);
        }
        self.shared
            .connections_accepted
            .store(self.connections_accepted.get(), Ordering::Relaxed);
        self.shared
            .connections_active
            .store(self.connections_active.get(), Ordering::Relaxed);
    }
}

/// Sum of a counter over every worker.
pub fn total(
    workers: &[Arc<SharedWorkerStats>],
    counter: impl Fn(&SharedWorkerStats) -> &AtomicU64,
) -> u64 {
    workers
        .iter()
        .map(|w| counter(w).load(Ordering::Relaxed))
        .sum()
}
