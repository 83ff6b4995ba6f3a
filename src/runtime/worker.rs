//! One worker per core: its own monoio runtime on the io_uring driver, its own
//! `SO_REUSEPORT` socket per listener, and all per-core state (snapshot cache,
//! upstream pool, output buffers, shutdown signal, rate-limit leases, requests
//! per subscriber). Shared between workers: the snapshot store (read
//! lock-free), the rate-limit buckets and quota counters the leases refill
//! from (atomics), the per-address connection counts of the admission check
//! (64 mutex-guarded shards, one taken once per connection open and close),
//! and the telemetry and per-subscriber request counts each worker publishes
//! per tick.
//!
//! Step 1 of a request's way: accept ([`crate::runtime::accept`]), then hand the
//! connection to [`crate::runtime::open::start`].

use crate::runtime::accept::accept_loop;
use crate::runtime::admission::AddressCounts;
use crate::runtime::conn;
pub use crate::runtime::worker_ctx::Driver;
use crate::runtime::worker_ctx::WorkerCtx;
use crate::service::preflight::DriverChoice;
use crate::snapshot::SnapshotStore;
use crate::telemetry::access_log::AccessLog;
use crate::telemetry::counters::SharedWorkerStats;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// io_uring submission queue size per worker.
const RING_ENTRIES: u32 = 4096;
/// How often a worker looks at the process-wide stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

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
/// `DEFER_TASKRUN` (completions run only when the worker waits for them) was
/// tried and left out: it did not lower the system calls per request, and
/// monoio only asks for completions once its run queue is empty, so a busy
/// worker would see them late (docs/performance.md, "Lean").
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
        ctx.subscriber_requests.flush();
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
    ctx.subscriber_requests.flush();
    // Hand the last lines over and let go of the log here: tasks still pending
    // when the runtime stops may never be dropped, and the log's writer exits
    // only once every worker has let go.
    drop(ctx.access_log.borrow_mut().take());
}
