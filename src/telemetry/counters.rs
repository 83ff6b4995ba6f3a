//! Counting what the workers do, without touching a shared cache line or an
//! atomic read-modify-write per request.
//!
//! Step 8 of a request's way. Per-route counters live in the snapshot
//! ([`RouteStats`], one cache-line slot per worker, each written by its worker
//! only with a plain load and store) and are carried across reloads by route
//! name ([`StatsRegistry`]). Per-worker counters and latency histograms
//! (hdrhistogram, with an exact sum of what they recorded beside them: see
//! [`Latency`]) are plain `Cell`/`RefCell` values, published to shared
//! copies by the worker's periodic tick ([`WorkerTelemetry::publish`]). The
//! admin endpoint sums them at scrape time.

use crate::telemetry::record::{Decision, Outcome};
use ahash::AHashMap;
use hdrhistogram::Histogram;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How relayed WebSockets ended, as `end` label values (index = position):
/// the client or the back end closed, idle, and the shutdown grace ran out
/// with a Close frame to both sides (`grace_close`) or to at most one
/// (`grace_cut`: a frame in flight did not end in time, or a side was gone).
pub const WEBSOCKET_ENDS: [&str; 5] = ["client", "upstream", "idle", "grace_close", "grace_cut"];

/// Status classes counted: 1xx..5xx, index = class - 1.
pub const STATUS_CLASSES: usize = 5;

/// Every decision code, in a fixed order (index = position).
pub const DECISIONS: [Decision; 36] = [
    Decision::StockResponse,
    Decision::BackendResponded,
    Decision::BackendError,
    Decision::BackendTimeout,
    Decision::BackendAborted,
    Decision::NoRoute,
    Decision::NoBackendMatch,
    Decision::MethodNotAllowed,
    Decision::BadRequest,
    Decision::HeadTooLarge,
    Decision::UriTooLong,
    Decision::BodyTooLarge,
    Decision::UnsupportedCoding,
    Decision::MethodNotImplemented,
    Decision::VersionNotSupported,
    Decision::ExpectationFailed,
    Decision::ClientTimeout,
    Decision::ClientAborted,
    Decision::NetworkDenied,
    Decision::UsageTokenMissing,
    Decision::UsageTokenUnknown,
    Decision::UsageNotEntitled,
    Decision::EntitlementRateLimited,
    Decision::QuotaExceeded,
    Decision::DeploymentRateLimited,
    Decision::QuotaBreachedAllowed,
    Decision::CorsPreflight,
    Decision::TokenMissing,
    Decision::TokenInvalid,
    Decision::ScopeDenied,
    Decision::MaxForwardsAnswered,
    Decision::ValidationFailed,
    Decision::ValidationFailedAllowed,
    Decision::BackendCredentialsUnavailable,
    Decision::AuthorizerRefused,
    Decision::AuthorizerUnavailable,
];

fn decision_index(decision: Decision) -> usize {
    DECISIONS.iter().position(|d| *d == decision).unwrap_or(0)
}

fn class_index(status: u16) -> usize {
    usize::from(status / 100).clamp(1, STATUS_CLASSES) - 1
}

/// Adds `n` to a counter that only one thread writes (no read-modify-write).
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// One worker's counters for one route, on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct RouteSlot {
    pub requests_by_class: [AtomicU64; STATUS_CLASSES],
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// A route's counters, one slot per worker.
#[derive(Debug, Default)]
pub struct RouteStats {
    slots: Box<[RouteSlot]>,
}

impl RouteStats {
    pub fn new(workers: usize) -> Self {
        RouteStats {
            slots: (0..workers).map(|_| RouteSlot::default()).collect(),
        }
    }

    /// Records a finished request (called by worker `worker` only).
    pub fn record(&self, worker: usize, outcome: &Outcome) {
        if let Some(slot) = self.slots.get(worker) {
            bump(&slot.requests_by_class[class_index(outcome.status)], 1);
            bump(&slot.bytes_in, outcome.bytes_in);
            bump(&slot.bytes_out, outcome.bytes_out);
        }
    }

    /// Requests by class, bytes in, bytes out, summed over workers.
    pub fn totals(&self) -> ([u64; STATUS_CLASSES], u64, u64) {
        let mut classes = [0; STATUS_CLASSES];
        let (mut bytes_in, mut bytes_out) = (0, 0);
        for slot in self.slots.iter() {
            for (total, counter) in classes.iter_mut().zip(&slot.requests_by_class) {
                *total += counter.load(Ordering::Relaxed);
            }
            bytes_in += slot.bytes_in.load(Ordering::Relaxed);
            bytes_out += slot.bytes_out.load(Ordering::Relaxed);
        }
        (classes, bytes_in, bytes_out)
    }
}

/// Route counters by route name, so that a reload keeps the counters of the
/// routes it did not remove (Prometheus counters never go backwards).
#[derive(Debug)]
pub struct StatsRegistry {
    workers: usize,
    routes: Mutex<AHashMap<String, Arc<RouteStats>>>,
}

impl StatsRegistry {
    pub fn new(workers: usize) -> Self {
        StatsRegistry {
            workers,
            routes: Mutex::new(AHashMap::new()),
        }
    }

    /// The counters for the route named `name` (created on first use).
    pub fn for_route(&self, name: &str) -> Arc<RouteStats> {
        let mut routes = match self.routes.lock() {
            Ok(routes) => routes,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(
            routes
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(RouteStats::new(self.workers))),
        )
    }
}

/// Latency histograms in microseconds, 1 µs to 1 hour, 2 significant digits.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("constant histogram bounds are valid")
}

/// Latencies in microseconds: the histogram (buckets, count) and the exact
/// sum of the values it recorded (the histogram keeps only 2 significant
/// digits of each, so a sum derived from it would be an estimate).
#[derive(Debug, Clone)]
pub struct Latency {
    pub histogram: Histogram<u64>,
    /// Sum of every recorded value, in microseconds.
    pub sum_micros: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    pub fn new() -> Self {
        Latency {
            histogram: latency_histogram(),
            sum_micros: 0,
        }
    }

    /// Records one value (no allocation: the histogram's range is fixed);
    /// a value the histogram refuses is left out of the sum too.
    pub fn record(&mut self, micros: u64) {
        if self.histogram.record(micros).is_ok() {
            self.sum_micros = self.sum_micros.wrapping_add(micros);
        }
    }

    /// Adds another worker's latencies.
    fn add(&mut self, other: &Latency) {
        let _ = self.histogram.add(&other.histogram);
        self.sum_micros = self.sum_micros.wrapping_add(other.sum_micros);
    }

    /// Replaces these latencies with a copy of `other` (keeping the allocation).
    fn copy_from(&mut self, other: &Latency) {
        self.histogram.reset();
        let _ = self.histogram.add(&other.histogram);
        self.sum_micros = other.sum_micros;
    }
}

/// What one worker has counted, as seen from other threads.
#[derive(Debug)]
pub struct SharedWorkerStats {
    pub requests_by_class: [AtomicU64; STATUS_CLASSES],
    pub decisions: [AtomicU64; DECISIONS.len()],
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connections_active: AtomicU64,
    /// WebSockets open now, and accepted since start.
    pub websockets_active: AtomicU64,
    pub websockets_total: AtomicU64,
    /// WebSockets ended, by [`WEBSOCKET_ENDS`].
    pub websocket_ends: [AtomicU64; WEBSOCKET_ENDS.len()],
    /// Connections closed at accept: [network rule, per-address cap].
    pub connections_refused: [AtomicU64; 2],
    /// Client TLS handshakes: [completed, failed].
    pub tls_handshakes: [AtomicU64; 2],
    pub request_latency: Mutex<Latency>,
    pub backend_latency: Mutex<Latency>,
}

impl Default for SharedWorkerStats {
    fn default() -> Self {
        SharedWorkerStats {
            requests_by_class: Default::default(),
            decisions: std::array::from_fn(|_| Default::default()),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_active: AtomicU64::new(0),
            websockets_active: AtomicU64::new(0),
            websockets_total: AtomicU64::new(0),
            websocket_ends: Default::default(),
            connections_refused: Default::default(),
            tls_handshakes: Default::default(),
            request_latency: Mutex::new(Latency::new()),
            backend_latency: Mutex::new(Latency::new()),
        }
    }
}

/// A worker's counters (`!Send`), and where they are published.
pub struct WorkerTelemetry {
    requests_by_class: [Cell<u64>; STATUS_CLASSES],
    decisions: [Cell<u64>; DECISIONS.len()],
    bytes_in: Cell<u64>,
    bytes_out: Cell<u64>,
    connections_accepted: Cell<u64>,
    connections_active: Cell<u64>,
    websockets_active: Cell<u64>,
    websockets_total: Cell<u64>,
    websocket_ends: [Cell<u64>; WEBSOCKET_ENDS.len()],
    connections_refused: [Cell<u64>; 2],
    tls_handshakes: [Cell<u64>; 2],
    request_latency: RefCell<Latency>,
    backend_latency: RefCell<Latency>,
    ticks: Cell<u64>,
    shared: Arc<SharedWorkerStats>,
}

impl WorkerTelemetry {
    pub fn new(shared: Arc<SharedWorkerStats>) -> Self {
        WorkerTelemetry {
            requests_by_class: Default::default(),
            decisions: std::array::from_fn(|_| Default::default()),
            bytes_in: Cell::new(0),
            bytes_out: Cell::new(0),
            connections_accepted: Cell::new(0),
            connections_active: Cell::new(0),
            websockets_active: Cell::new(0),
            websockets_total: Cell::new(0),
            websocket_ends: Default::default(),
            connections_refused: Default::default(),
            tls_handshakes: Default::default(),
            request_latency: RefCell::new(Latency::new()),
            backend_latency: RefCell::new(Latency::new()),
            ticks: Cell::new(0),
            shared,
        }
    }

    /// Counts one finished request.
    pub fn request_done(&self, outcome: &Outcome) {
        let add = |cell: &Cell<u64>, n: u64| cell.set(cell.get().wrapping_add(n));
        add(&self.requests_by_class[class_index(outcome.status)], 1);
        add(&self.decisions[decision_index(outcome.decision)], 1);
        add(&self.bytes_in, outcome.bytes_in);
        add(&self.bytes_out, outcome.bytes_out);
        let micros =
            |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.request_latency
            .borrow_mut()
            .record(micros(outcome.total));
        if let Some(backend) = outcome.backend {
            self.backend_latency.borrow_mut().record(micros(backend));
        }
    }

    pub fn connection_opened(&self) {
        self.connections_accepted
            .set(self.connections_accepted.get() + 1);
        self.connections_active
            .set(self.connections_active.get() + 1);
    }

    /// Counts a connection closed at accept: by the listener's network rule
    /// (`by_cap` false) or by the per-address connection cap.
    pub fn connection_refused(&self, by_cap: bool) {
        let cell = &self.connections_refused[usize::from(by_cap)];
        cell.set(cell.get() + 1);
    }

    /// Counts a client TLS handshake that completed (`ok`) or failed.
    pub fn tls_handshake(&self, ok: bool) {
        let cell = &self.tls_handshakes[usize::from(!ok)];
        cell.set(cell.get() + 1);
    }

    /// Counts a WebSocket accepted and now relayed.
    pub fn websocket_opened(&self) {
        self.websockets_total.set(self.websockets_total.get() + 1);
        self.websockets_active.set(self.websockets_active.get() + 1);
    }

    /// Counts a relayed WebSocket that ended, by its [`WEBSOCKET_ENDS`] index.
    pub fn websocket_closed(&self, end: usize) {
        self.websockets_active
            .set(self.websockets_active.get().saturating_sub(1));
        if let Some(cell) = self.websocket_ends.get(end) {
            cell.set(cell.get() + 1);
        }
    }

    pub fn connection_closed(&self) {
        self.connections_active
            .set(self.connections_active.get().saturating_sub(1));
    }

    /// Copies the counters to the shared side (off the request path): every
    /// call for counters, every 20th call for histograms.
    pub fn publish(&self) {
        let shared = &self.shared;
        let copy = |to: &AtomicU64, from: &Cell<u64>| to.store(from.get(), Ordering::Relaxed);
        for (to, from) in shared.requests_by_class.iter().zip(&self.requests_by_class) {
            copy(to, from);
        }
        for (to, from) in shared.decisions.iter().zip(&self.decisions) {
            copy(to, from);
        }
        copy(&shared.bytes_in, &self.bytes_in);
        copy(&shared.bytes_out, &self.bytes_out);
        copy(&shared.connections_accepted, &self.connections_accepted);
        copy(&shared.connections_active, &self.connections_active);
        copy(&shared.websockets_active, &self.websockets_active);
        copy(&shared.websockets_total, &self.websockets_total);
        for (to, from) in shared.websocket_ends.iter().zip(&self.websocket_ends) {
            copy(to, from);
        }
        for (to, from) in shared
            .connections_refused
            .iter()
            .zip(&self.connections_refused)
        {
            copy(to, from);
        }
        for (to, from) in shared.tls_handshakes.iter().zip(&self.tls_handshakes) {
            copy(to, from);
        }
        let tick = self.ticks.get();
        self.ticks.set(tick.wrapping_add(1));
        if tick.is_multiple_of(20) {
            for (to, from) in [
                (&shared.request_latency, &self.request_latency),
                (&shared.backend_latency, &self.backend_latency),
            ] {
                if let Ok(mut to) = to.try_lock() {
                    to.copy_from(&from.borrow());
                }
            }
        }
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

/// The latencies of every worker merged (histograms and sums).
pub fn merged(
    workers: &[Arc<SharedWorkerStats>],
    latency: impl Fn(&SharedWorkerStats) -> &Mutex<Latency>,
) -> Latency {
    let mut all = Latency::new();
    for worker in workers {
        if let Ok(l) = latency(worker).lock() {
            all.add(&l);
        }
    }
    all
}

#[cfg(test)]
#[path = "counters_tests.rs"]
mod tests;
