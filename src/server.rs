//! The main thread: compile the first config (fail fast), bind every listener
//! once per worker with `SO_REUSEPORT`, start the workers, then wait for
//! signals: SIGHUP recompiles and publishes a new snapshot, SIGTERM/SIGINT
//! stop accepting and drain.

use crate::access_log::AccessLog;
use crate::admin::{self, AdminState};
use crate::admission::AddressCounts;
use crate::audit::spawn_security_summary;
use crate::config::{load_sources, ConfigError};
use crate::control::spawn_watcher;
use crate::reload::{load_snapshot, Reloader, Trigger};
use crate::snapshot::{ListenerSpec, Snapshot, SnapshotStore};
use crate::telemetry::{SharedWorkerStats, StatsRegistry};
use crate::usage::{flush, spawn_flusher, QuotaStore, UsageRegistry};
use crate::worker::{self, DriverChoice, WorkerSetup};
use arc_swap::ArcSwap;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tracing::{error, info, warn};

/// Batches of access log lines that may wait for the writer before lines are dropped.
const ACCESS_LOG_QUEUE: usize = 64;

/// Pending connections the kernel queues per worker socket.
const LISTEN_BACKLOG: i32 = 4096;

/// How to run the gateway.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub config_path: PathBuf,
    /// Worker threads; `None` means one per available core.
    pub workers: Option<usize>,
    pub driver: DriverChoice,
    /// Reload when the config file changes (SIGHUP reloads either way).
    pub watch: bool,
    /// How often refused connections and requests are summarised in the audit log.
    pub audit_period: std::time::Duration,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("cannot listen on {address} (listener `{listener}`): {source}")]
    Bind {
        listener: String,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot use state_dir {0} for quota counts: {1}")]
    StateDir(String, std::io::Error),
}

/// Loads and compiles the config file and its includes (no DNS: what `check` runs).
pub fn compile_file(path: &Path) -> Result<Snapshot, ConfigError> {
    let (config, sources) = load_sources(path)?;
    Snapshot::compile_sources(&config, &sources)
}

/// Runs the gateway until SIGTERM or SIGINT, then drains and returns.
pub fn run(options: &ServerOptions) -> Result<(), StartError> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let workers = options.workers.unwrap_or_else(|| cores.len().max(1)).max(1);
    let route_stats = Arc::new(StatsRegistry::new(workers));
    let mut snapshot = load_snapshot(&options.config_path, &route_stats)?;
    for warning in &snapshot.warnings {
        warn!("{warning}");
    }
    let usage = Arc::new(UsageRegistry::default());
    let quota_store = if snapshot.has_quotas() {
        let store = QuotaStore::open(&snapshot.state_dir)
            .map_err(|e| StartError::StateDir(snapshot.state_dir.display().to_string(), e))?;
        let counts = store.load();
        info!(file = %store.path().display(), counters = counts.len(), "quota counts read back");
        usage.seed(counts);
        Some(store)
    } else {
        None
    };
    usage.attach(&mut snapshot, crate::usage::now().unix_secs);
    let state_dir = snapshot.state_dir.clone();
    let access_log = match &snapshot.access_log {
        Some(destination) => {
            let log = AccessLog::start(destination.clone(), ACCESS_LOG_QUEUE)?;
            log.reopen_on_sigusr1()?;
            Some(log)
        }
        None => None,
    };
    let mut sockets: Vec<Vec<std::net::TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
    let mut bound = Vec::with_capacity(snapshot.listeners.len());
    for spec in &snapshot.listeners {
        let address = bind_for_workers(spec, &mut sockets)?;
        info!(listener = %spec.name, address = %address, "listening");
        bound.push(address);
    }
    let admin_address = snapshot.admin;
    let store: SnapshotStore = Arc::new(ArcSwap::from_pointee(snapshot));
    let reloader = Arc::new(Reloader::new(
        options.config_path.clone(),
        Arc::clone(&store),
        bound,
        Arc::clone(&route_stats),
        Arc::clone(&usage),
    ));
    let ready = Arc::new(AtomicUsize::new(0));
    let worker_stats: Vec<Arc<SharedWorkerStats>> = (0..workers).map(|_| Arc::default()).collect();
    if let Some(address) = admin_address {
        let state = AdminState {
            store: Arc::clone(&store),
            reloads: Arc::clone(&reloader.stats),
            workers: worker_stats.clone(),
            ready_workers: Arc::clone(&ready),
            access_log: access_log.as_ref().map(AccessLog::stats),
        };
        admin::spawn(address, Arc::new(state)).map_err(|source| StartError::Bind {
            listener: "admin".into(),
            address,
            source,
        })?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let address_counts = Arc::new(AddressCounts::default());
    let mut handles = Vec::with_capacity(workers);
    for (id, listeners) in sockets.into_iter().enumerate() {
        let setup = WorkerSetup {
            id,
            core: (!cores.is_empty()).then(|| cores[id % cores.len()]),
            store: Arc::clone(&store),
            listeners,
            stop: Arc::clone(&stop),
            driver: options.driver,
            stats: Arc::clone(&worker_stats[id]),
            ready: Arc::clone(&ready),
            access_log: access_log.clone(),
            address_counts: Arc::clone(&address_counts),
        };
        let handle = std::thread::Builder::new()
            .name(format!("portcullis-w{id}"))
            .spawn(move || worker::run(setup))?;
        handles.push(handle);
    }
    if options.watch {
        spawn_watcher(Arc::clone(&reloader))?;
    }
    spawn_security_summary(worker_stats.clone(), options.audit_period)?;
    spawn_flusher(Arc::clone(&usage), state_dir.clone(), quota_store.clone())?;
    info!(target: "portcullis::audit", workers, generation = store.load().generation, "started: serving");
    for signal in signals.forever() {
        match signal {
            SIGHUP => reloader.reload(Trigger::Signal),
            _ => {
                info!(
                    signal,
                    "stopping: no new connections, draining requests in flight"
                );
                stop.store(true, Ordering::Release);
                break;
            }
        }
    }
    for handle in handles {
        match handle.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => error!(error = %e, "worker failed"),
            Err(_) => error!("worker panicked"),
        }
    }
    // Quotas counted since the last flush are written before exit.
    let counted = !usage.quota_counts(crate::usage::now().unix_secs).is_empty();
    let store = quota_store.or_else(|| counted.then(|| QuotaStore::open(&state_dir).ok())?);
    if let Some(store) = store {
        match flush(&usage, &store) {
            Ok(()) => info!(file = %store.path().display(), "quota counts saved"),
            Err(e) => {
                error!(file = %store.path().display(), error = %e, "cannot save quota counts")
            }
        }
    }
    if let Some(log) = access_log {
        if !log.close(std::time::Duration::from_secs(2)) {
            warn!("access log writer did not finish within 2 s; its last lines may be lost");
        }
    }
    info!(target: "portcullis::audit", "stopped");
    Ok(())
}

/// Binds one socket per worker for `spec`; the first resolves port 0 and the
/// others join it with `SO_REUSEPORT`. Returns the bound address.
fn bind_for_workers(
    spec: &ListenerSpec,
    sockets: &mut [Vec<std::net::TcpListener>],
) -> Result<SocketAddr, StartError> {
    let bind_error = |source| StartError::Bind {
        listener: spec.name.clone(),
        address: spec.address,
        source,
    };
    let mut address = spec.address;
    for worker_sockets in sockets.iter_mut() {
        let listener = bind_one(address).map_err(bind_error)?;
        address = listener.local_addr().map_err(bind_error)?;
        worker_sockets.push(listener);
    }
    Ok(address)
}

fn bind_one(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}
