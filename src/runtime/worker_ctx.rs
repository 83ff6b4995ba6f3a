//! A worker's state, shared by its connection tasks (`!Send` on purpose): the
//! snapshot cache, the request ids, the rate-limit leases and the count of
//! requests per subscriber, the upstream pool,
//! the free list of output buffers, the telemetry and access-log buffers, the
//! in-flight count the drain waits for, and the stop signal. A connection
//! records each finished request here ([`WorkerCtx::finish`]).

use crate::net::peer::Peer;
use crate::policy::usage::{LocalShares, RequestTally};
use crate::proxy::pool::UpstreamPool;
use crate::runtime::admission::AddressCounts;
use crate::runtime::dispatch::RequestMeta;
use crate::snapshot::{Snapshot, SnapshotStore};
use crate::telemetry::access_log::WorkerLog;
use crate::telemetry::counters::{SharedWorkerStats, WorkerTelemetry};
use crate::telemetry::format::{write_json_str, LogClock};
use crate::telemetry::record::RequestIds;
use crate::telemetry::record::{write_access_line, Decision, Outcome};
use crate::time::deadline::Deadlines;
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Instant;

/// Which event driver a worker runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    IoUring,
    Epoll,
}

/// Per-worker state shared by its connection tasks (`!Send` on purpose).
pub struct WorkerCtx {
    pub id: usize,
    cache: RefCell<arc_swap::Cache<SnapshotStore, Arc<Snapshot>>>,
    /// `Rc<Arc<_>>` on purpose: requests clone the `Rc` (a plain increment),
    /// never the `Arc` (an atomic shared by every core).
    #[allow(clippy::redundant_allocation)]
    current: RefCell<Rc<Arc<Snapshot>>>,
    pub pool: UpstreamPool,
    /// Server choice and retry budgets per back end.
    pub balance: crate::proxy::balance::WorkerBalance,
    buffers: RefCell<Vec<Vec<u8>>>,
    pub shutdown: Shutdown,
    /// The worker's coarse clock and its tasks' timers.
    pub deadlines: Rc<Deadlines>,
    pub telemetry: WorkerTelemetry,
    /// Source of generated request ids.
    pub ids: RequestIds,
    /// This worker's leases on shared rate limits.
    pub limits: LocalShares,
    /// This worker's requests per subscriber, added to the shared totals on its tick.
    pub subscriber_requests: RequestTally,
    /// Open connections per client address, shared by every worker.
    pub address_counts: Arc<AddressCounts>,
    /// Timestamps for access log lines.
    log_clock: LogClock,
    /// This worker's access log buffer, if logging is on.
    pub(super) access_log: RefCell<Option<WorkerLog>>,
    pub(super) in_flight: Cell<usize>,
}

impl WorkerCtx {
    pub(super) fn new(
        id: usize,
        store: SnapshotStore,
        stats: Arc<SharedWorkerStats>,
        access_log: Option<WorkerLog>,
        address_counts: Arc<AddressCounts>,
        driver: Driver,
    ) -> Self {
        let first = store.load_full();
        WorkerCtx {
            id,
            cache: RefCell::new(arc_swap::Cache::new(store)),
            current: RefCell::new(Rc::new(first)),
            pool: UpstreamPool::new(driver == Driver::Epoll),
            balance: Default::default(),
            buffers: RefCell::new(Vec::new()),
            shutdown: Shutdown::default(),
            deadlines: Rc::new(Deadlines::default()),
            telemetry: WorkerTelemetry::new(stats),
            ids: RequestIds::new(id_prefix(id)),
            limits: LocalShares::default(),
            subscriber_requests: RequestTally::default(),
            access_log: RefCell::new(access_log),
            address_counts,
            log_clock: LogClock::default(),
            in_flight: Cell::new(0),
        }
    }

    /// The snapshot to serve the next request with: the latest one published,
    /// seen through a per-worker cache (no shared-counter traffic per request).
    #[allow(clippy::redundant_allocation)]
    pub fn snapshot(&self) -> Rc<Arc<Snapshot>> {
        let mut cache = self.cache.borrow_mut();
        let latest = cache.load();
        let mut current = self.current.borrow_mut();
        if !Arc::ptr_eq(latest, &current) {
            *current = Rc::new(Arc::clone(latest));
        }
        Rc::clone(&current)
    }

    /// An empty output buffer from the worker's free list.
    pub fn take_buffer(&self) -> Vec<u8> {
        self.buffers
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(8192))
    }

    /// Returns an output buffer to the free list.
    pub fn give_buffer(&self, mut buf: Vec<u8>) {
        let mut free = self.buffers.borrow_mut();
        if free.len() < 256 && buf.capacity() <= 256 * 1024 && buf.capacity() > 0 {
            buf.clear();
            free.push(buf);
        }
    }

    /// Takes `client`'s read buffer back into the free list when nothing
    /// is pending in it (a connection between requests).
    pub fn reclaim_read_buffer(&self, client: &mut crate::io::buffered::BufferedStream) {
        if let Some(buf) = client.take_idle_buffer() {
            self.give_buffer(buf);
        }
    }

    /// Marks a request as being processed until the guard drops.
    pub fn begin_request(self: &Rc<Self>) -> InFlight {
        self.in_flight.set(self.in_flight.get() + 1);
        InFlight(Rc::clone(self))
    }

    pub fn draining(&self) -> bool {
        self.shutdown.is_triggered()
    }

    /// True when requests should be written to the access log.
    pub fn access_logging(&self) -> bool {
        self.access_log.borrow().is_some()
    }

    /// Records a finished request: route and worker counters, latency, and the
    /// access log line (`log_fields` holds the fields written at its head).
    pub fn finish(
        &self,
        snapshot: &Snapshot,
        meta: &RequestMeta,
        outcome: &Outcome,
        log_fields: &[u8],
    ) {
        if let Some(route) = meta.route.and_then(|r| snapshot.routes.get(r)) {
            route.stats.record(self.id, outcome);
        }
        self.telemetry.request_done(outcome);
        if let Some(log) = self.access_log.borrow_mut().as_mut() {
            log.line(|line| write_access_line(line, &self.log_clock, log_fields, outcome));
        }
    }

    /// Records a request refused before its head could be parsed.
    pub fn finish_unparsed(
        &self,
        peer: &Peer,
        status: u16,
        decision: Decision,
        bytes_in: u64,
        started: Instant,
    ) {
        let outcome = Outcome {
            status,
            decision,
            bytes_in,
            bytes_out: 0,
            total: started.elapsed(),
            backend: None,
        };
        self.telemetry.request_done(&outcome);
        if let Some(log) = self.access_log.borrow_mut().as_mut() {
            let mut fields = Vec::with_capacity(96);
            let id = self.ids.next_id();
            fields.extend_from_slice(b"\"request_id\":");
            write_json_str(&mut fields, id.as_bytes());
            fields.extend_from_slice(b",\"client\":");
            write_json_str(&mut fields, peer.ip_text());
            fields.extend_from_slice(
                b",\"method\":null,\"path\":null,\"protocol\":null,\"deployment\":null,\"route\":null,\"backend\":null",
            );
            fields.extend_from_slice(crate::runtime::dispatch::NO_SUBSCRIBER);
            fields.extend_from_slice(b",\"tls\":");
            fields.extend_from_slice(peer.tls_log_value());
            log.line(|line| write_access_line(line, &self.log_clock, &fields, &outcome));
        }
    }
}

/// A random prefix for this worker's generated request ids.
fn id_prefix(worker: usize) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_usize(worker);
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// Counts one in-flight request while alive.
pub struct InFlight(Rc<WorkerCtx>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .in_flight
            .set(self.0.in_flight.get().saturating_sub(1));
    }
}

/// A one-way, worker-local "stop accepting" signal that futures can await.
#[derive(Default)]
pub struct Shutdown {
    triggered: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl Shutdown {
    pub fn trigger(&self) {
        self.triggered.set(true);
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    pub fn is_triggered(&self) -> bool {
        self.triggered.get()
    }

    /// Resolves once the signal is triggered.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.triggered.get() {
                return Poll::Ready(());
            }
            let mut waiters = self.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}
