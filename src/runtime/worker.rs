//! One worker per core: its own monoio runtime on the io_uring driver, its own
//! `SO_REUSEPORT` socket per listener, and all per-core state (snapshot cache,
//! upstream pool, output buffers, shutdown signal, rate-limit leases). Shared
//! between workers: the snapshot store (read lock-free), the rate-limit
//! buckets and quota counters the leases refill from (atomics), the
//! per-address connection counts of the admission check (a mutex, taken once
//! per connection open and close) and the telemetry each worker publishes per
//! tick.
//!
//! Step 1 of a request's way: accept ([`crate::runtime::accept`]), then hand the
//! connection to [`crate::runtime::conn::serve`].

use crate::net::peer::Peer;
use crate::policy::usage::LocalShares;
use crate::proxy::pool::UpstreamPool;
use crate::runtime::accept::accept_loop;
use crate::runtime::admission::AddressCounts;
use crate::runtime::conn;
use crate::runtime::dispatch::{RequestIds, RequestMeta};
use crate::service::preflight::DriverChoice;
use crate::snapshot::{Snapshot, SnapshotStore};
use crate::telemetry::access_log::{AccessLog, WorkerLog};
use crate::telemetry::counters::{SharedWorkerStats, WorkerTelemetry};
use crate::telemetry::format::{write_json_str, LogClock};
use crate::telemetry::record::{write_access_line, Decision, Outcome};
use crate::time::deadline::Deadlines;
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// io_uring submission queue size per worker.
const RING_ENTRIES: u32 = 4096;
/// How often a worker looks at the process-wide stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

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
    buffers: RefCell<Vec<Vec<u8>>>,
    pub shutdown: Shutdown,
    /// The worker's coarse clock and its tasks' timers.
    pub deadlines: Rc<Deadlines>,
    pub telemetry: WorkerTelemetry,
    /// Source of generated request ids.
    pub ids: RequestIds,
    /// This worker's leases on shared rate limits.
    pub limits: LocalShares,
    /// Open connections per client address, shared by every worker.
    pub address_counts: Arc<AddressCounts>,
    /// Timestamps for access log lines.
    log_clock: LogClock,
    /// This worker's access log buffer, if logging is on.
    access_log: RefCell<Option<WorkerLog>>,
    in_flight: Cell<usize>,
}

impl WorkerCtx {
    fn new(
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
            buffers: RefCell::new(Vec::new()),
            shutdown: Shutdown::default(),
            deadlines: Rc::new(Deadlines::default()),
            telemetry: WorkerTelemetry::new(stats),
            ids: RequestIds::new(id_prefix(id)),
            limits: LocalShares::default(),
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

/// Everything a worker thread starts with.
pub struct WorkerSetup {
    pub id: usize,
    pub core: Option<core_affinity::CoreId>,
    pub store: SnapshotStore,
    /// One bound, listening socket per listener, indexed like the snapshot's listeners.
    pub listeners: Vec<std::net::TcpListener>,
    pub stop: Arc<AtomicBool>,
    pub driver: DriverChoice,
    /// Where this worker publishes its counters.
    pub stats: Arc<SharedWorkerStats>,
    /// Counts workers that have started accepting.
    pub ready: Arc<AtomicUsize>,
    /// The access log, if on.
    pub access_log: Option<AccessLog>,
    /// Open connections per client address, shared by every worker.
    pub address_counts: Arc<AddressCounts>,
}

/// Runs a worker on the current thread until the stop flag is set and its
/// requests have drained. Returns the driver it ran on.
pub fn run(setup: WorkerSetup) -> std::io::Result<Driver> {
    if let Some(core) = setup.core {
        if !core_affinity::set_for_current(core) {
            warn!(
                worker = setup.id,
                core = core.id,
                "could not pin worker to its core"
            );
        }
    }
    let uring = match setup.driver {
        DriverChoice::Epoll => None,
        DriverChoice::IoUring => Some(uring_runtime()?),
        DriverChoice::Auto => match uring_runtime() {
            Ok(runtime) => Some(runtime),
            Err(e) => {
                warn!(worker = setup.id, error = %e, "io_uring is unavailable; falling back to the epoll driver");
                None
            }
        },
    };
    match uring {
        Some(mut runtime) => {
            info!(worker = setup.id, driver = "io_uring", "worker started");
            runtime.block_on(worker_main(setup, Driver::IoUring));
            Ok(Driver::IoUring)
        }
        None => {
            info!(worker = setup.id, driver = "epoll", "worker started");
            let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()?;
            runtime.block_on(worker_main(setup, Driver::Epoll));
            Ok(Driver::Epoll)
        }
    }
}

type UringRuntime = monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>;

/// An io_uring runtime with the setup flags that cut kernel work for a
/// single-threaded ring; plain io_uring where the kernel refuses the flags.
fn uring_runtime() -> std::io::Result<UringRuntime> {
    let mut tuned = io_uring::IoUring::builder();
    tuned.setup_coop_taskrun().setup_single_issuer();
    let built = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .with_entries(RING_ENTRIES)
        .uring_builder(tuned)
        .enable_timer()
        .build();
    match built {
        Ok(runtime) => Ok(runtime),
        Err(_) => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(RING_ENTRIES)
            .enable_timer()
            .build(),
    }
}

async fn worker_main(setup: WorkerSetup, driver: Driver) {
    let worker_log = setup.access_log.as_ref().map(AccessLog::worker);
    let ctx = Rc::new(WorkerCtx::new(
        setup.id,
        setup.store,
        setup.stats,
        worker_log,
        Arc::clone(&setup.address_counts),
        driver,
    ));
    monoio::spawn(Rc::clone(&ctx.deadlines).sweep());
    for (index, listener) in setup.listeners.into_iter().enumerate() {
        let nonblocking = driver == Driver::Epoll;
        monoio::spawn(accept_loop(Rc::clone(&ctx), listener, index, nonblocking));
    }
    setup.ready.fetch_add(1, Ordering::AcqRel);
    while !setup.stop.load(Ordering::Acquire) {
        monoio::time::sleep(STOP_POLL).await;
        ctx.telemetry.publish();
        if let Some(log) = ctx.access_log.borrow_mut().as_mut() {
            log.flush();
        }
    }
    setup.ready.fetch_sub(1, Ordering::AcqRel);
    ctx.shutdown.trigger();
    ctx.deadlines.close_idle_after(conn::DRAIN_IDLE_GRACE);
    let drain = ctx.snapshot().timeouts.drain;
    let deadline = Instant::now() + drain;
    while ctx.in_flight.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    if ctx.in_flight.get() > 0 {
        warn!(
            worker = ctx.id,
            in_flight = ctx.in_flight.get(),
            "drain timeout: closing requests still in flight"
        );
    }
    ctx.telemetry.publish();
    // Hand the last lines over and let go of the log here: tasks still pending
    // when the runtime stops may never be dropped, and the log's writer exits
    // only once every worker has let go.
    drop(ctx.access_log.borrow_mut().take());
}
